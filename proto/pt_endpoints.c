/*  pt_endpoints — see pt_endpoints.h. */
#include "pt_endpoints.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int s_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Why entry (tcp://... or ipc://...) is not an endpoint a client can connect to,
   or NULL when it is. */
static const char *s_entry_problem(const char *entry)
{
    if (strncmp(entry, "ipc://", 6) == 0)
        return entry[6] ? NULL : "no path (expected ipc://PATH)";
    if (strncmp(entry, "tcp://", 6) != 0)
        return strstr(entry, "://")
                   ? "unsupported transport (expected tcp://HOST:PORT or ipc://PATH)"
                   : "no transport (expected tcp://HOST:PORT or ipc://PATH)";
    const char *host = entry + 6;
    const char *host_end;
    const char *colon;
    if (host[0] == '[') {
        host_end = strchr(host, ']');
        if (!host_end || host_end == host + 1)
            return "unterminated or empty [IPv6] address";
        for (const char *p = host + 1; p < host_end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return "invalid character in the [IPv6] address";
        colon = host_end + 1;
        if (*colon != ':')
            return "no port (expected tcp://HOST:PORT)";
        host_end++;
    } else {
        colon = strrchr(host, ':');
        if (!colon)
            return "no port (expected tcp://HOST:PORT)";
        host_end = colon;
        if (host_end == host)
            return "no host (expected tcp://HOST:PORT)";
        for (const char *p = host; p < host_end; p++)
            if (!s_host_char(*p))
                return *p == ':' ? "an IPv6 address needs brackets (tcp://[::1]:PORT)"
                                 : "invalid character in the host name";
    }
    const char *port = colon + 1;
    if (!*port)
        return "no port (expected tcp://HOST:PORT)";
    long value = 0;
    for (const char *p = port; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return "the port must be a number from 1 to 65535";
        value = value * 10 + (*p - '0');
        if (value > 65535)
            break;
    }
    if (value < 1 || value > 65535)
        return "the port must be a number from 1 to 65535";
    return NULL;
}

void pt_endpoints_free(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

int pt_endpoints_parse(const char *list, char ***out, size_t *n, char *err, size_t err_len)
{
    char **entries = NULL;
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!list || !*list)
        return s_fail(err, err_len, "no broker endpoint given");
    size_t total = 1;
    for (const char *p = list; *p; p++)
        total += *p == ',';
    if (total > PT_ENDPOINTS_MAX)
        return s_fail(err, err_len, "broker endpoint list: %zu entries, at most %d", total,
                      PT_ENDPOINTS_MAX);
    entries = calloc(total + 1, sizeof *entries);
    if (!entries)
        return s_fail(err, err_len, "out of memory");
    const char *at = list;
    for (size_t i = 0; i < total; i++) {
        const char *end = strchr(at, ',');
        if (!end)
            end = at + strlen(at);
        const char *from = at, *to = end;
        while (from < to && (*from == ' ' || *from == '\t'))
            from++;
        while (to > from && (to[-1] == ' ' || to[-1] == '\t'))
            to--;
        size_t len = (size_t)(to - from);
        if (len == 0 && total == 1) {
            s_fail(err, err_len, "no broker endpoint given");
            goto error;
        }
        if (len == 0) {
            s_fail(err, err_len,
                   "broker endpoint list, entry %zu of %zu is empty (a comma too many?)", i + 1,
                   total);
            goto error;
        }
        if (len > PT_ENDPOINT_MAX_LEN) {
            s_fail(err, err_len,
                   "broker endpoint list, entry %zu of %zu is longer than %d characters", i + 1,
                   total, PT_ENDPOINT_MAX_LEN);
            goto error;
        }
        entries[i] = malloc(len + 1);
        if (!entries[i]) {
            s_fail(err, err_len, "out of memory");
            goto error;
        }
        memcpy(entries[i], from, len);
        entries[i][len] = '\0';
        const char *problem = s_entry_problem(entries[i]);
        for (const char *p = entries[i]; !problem && *p; p++)
            if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
                problem = "contains a space or a control character";
        if (problem && total == 1) {
            s_fail(err, err_len, "broker endpoint '%.80s': %s", entries[i], problem);
            goto error;
        }
        if (problem) {
            s_fail(err, err_len, "broker endpoint list, entry %zu of %zu ('%.80s'): %s", i + 1,
                   total, entries[i], problem);
            goto error;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(entries[j], entries[i]) == 0) {
                s_fail(err, err_len,
                       "broker endpoint list, entry %zu of %zu ('%.80s') repeats entry %zu", i + 1,
                       total, entries[i], j + 1);
                goto error;
            }
        at = *end ? end + 1 : end;
    }
    if (n)
        *n = total;
    if (out)
        *out = entries;
    else
        pt_endpoints_free(entries);
    return 0;
error:
    pt_endpoints_free(entries);
    return -1;
}

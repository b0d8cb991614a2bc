/*  log — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "pt_crypto.h"

static pt_log_level_t s_level = PT_LOG_INFO;
static const char *s_names[] = {"debug", "info", "warn", "error"};

void pt_log_set_level(pt_log_level_t level)
{
    s_level = level;
}

void pt_log_init_from_env(void)
{
    const char *value = getenv("PUENTE_LOG_LEVEL");
    if (!value)
        return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(value, s_names[i]) == 0)
            s_level = (pt_log_level_t)i;
}

/* Appends text to out as a JSON string body (escaping quotes, backslashes, controls). */
static size_t s_escape(char *out, size_t cap, size_t at, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p && at + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[at++] = '\\';
            out[at++] = (char)*p;
        } else if (*p < 0x20) {
            at += (size_t)snprintf(out + at, cap - at, "\\u%04x", *p);
        } else {
            out[at++] = (char)*p;
        }
    }
    return at;
}

void pt_log(pt_log_level_t level, const char *component, const uint8_t *message_id,
            const char *case_token, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char text[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char line[1400];
    size_t at = (size_t)snprintf(line, sizeof line,
                                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                                 "\"component\":\"",
                                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, s_names[level]);
    at = s_escape(line, sizeof line, at, component);
    at += (size_t)snprintf(line + at, sizeof line - at, "\",\"msg\":\"");
    at = s_escape(line, sizeof line, at, text);
    at += (size_t)snprintf(line + at, sizeof line - at, "\"");
    if (message_id) {
        char uuid[PT_UUID_STR_BYTES];
        pt_uuid_format(message_id, uuid);
        at += (size_t)snprintf(line + at, sizeof line - at, ",\"message_id\":\"%s\"", uuid);
    }
    if (case_token && at < sizeof line - 40) {
        at += (size_t)snprintf(line + at, sizeof line - at, ",\"case_token\":\"");
        at = s_escape(line, sizeof line, at, case_token);
        at += (size_t)snprintf(line + at, sizeof line - at, "\"");
    }
    if (at > sizeof line - 3)
        at = sizeof line - 3;
    line[at++] = '}';
    line[at++] = '\n';
    ssize_t written = write(STDERR_FILENO, line, at);
    (void)written;
}

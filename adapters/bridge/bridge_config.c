/*  bridge_config — file, environment and flags into one struct (see bridge_config.h). */
#include "bridge_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_config.h"
#include "pt_keys.h"
#include "puente.h"

static const char s_usage[] =
    "usage: puente-bridge --org ORG --token-file PATH [options]\n"
    "HTTP/JSON bridge between one organisation's national system and the Puente broker.\n"
    "  --listen HOST:PORT          address to serve on, [IPv6]:PORT too (PUENTE_BRIDGE_LISTEN, "
    "default " PT_BRIDGE_DEFAULT_LISTEN ")\n"
    "  --org ORG                   organisation this bridge acts as (PUENTE_BRIDGE_ORG)\n"
    "  --token-file PATH           bearer token, file mode 0600 (PUENTE_BRIDGE_TOKEN_FILE)\n"
    "  --broker ENDPOINT[,...]     broker, or several comma-separated for failover\n"
    "                              (PUENTE_BROKER, default " PUENTE_DEFAULT_BROKER ")\n"
    "  --keys DIR                  key directory (PUENTE_KEYS, default " PUENTE_DEFAULT_KEYS ")\n"
    "  --state DIR                 SQLite state (PUENTE_BRIDGE_STATE, default var/bridge/ORG)\n"
    "  --webhook URL               POST each incoming message here (PUENTE_BRIDGE_WEBHOOK)\n"
    "  --webhook-secret-file PATH  HMAC-SHA256 key for X-Puente-Signature, mode 0600\n"
    "                              (PUENTE_BRIDGE_WEBHOOK_SECRET_FILE)\n"
    "  --webhook-max-attempts N    attempts per message, then webhook state failed\n"
    "                              (PUENTE_BRIDGE_WEBHOOK_MAX_ATTEMPTS, default 12)\n"
    "  --webhook-backoff TIME      wait after the first failure, doubling\n"
    "                              (PUENTE_BRIDGE_WEBHOOK_BACKOFF, default 1s)\n"
    "  --webhook-max-backoff TIME  longest wait (PUENTE_BRIDGE_WEBHOOK_MAX_BACKOFF, default 60s)\n"
    "  --max-body SIZE             largest request body (PUENTE_BRIDGE_MAX_BODY, default 1 MiB)\n"
    "  --timeout-ms TIME           broker request timeout (PUENTE_BRIDGE_TIMEOUT_MS, 10s;\n"
    "                              bare numbers are milliseconds)\n"
    "  --config PATH               INI file, [bridge] section (PUENTE_CONFIG)\n"
    "  --check-config              validate, print the effective configuration, exit 0/1\n"
    "Precedence: flags > environment > file > defaults. Sizes take KiB/MiB, times ms/s/m.\n";

const char *pt_bridge_config_usage(void)
{
    return s_usage;
}

static int s_copy(char *dst, size_t cap, const char *src, const char *what, char *err,
                  size_t err_len)
{
    if (strlen(src) >= cap) {
        snprintf(err, err_len, "%s is too long", what);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int pt_bridge_secret_read(const char *path, char *out, size_t cap, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is not a regular file", path);
        goto error;
    }
    if (st.st_mode & 077) {
        snprintf(err, err_len, "%s must not be accessible to group or others (chmod 600)", path);
        goto error;
    }
    n = read(fd, out, cap);
    if (n < 0 || (size_t) n >= cap) {
        snprintf(err, err_len, "cannot read %s (or longer than %zu bytes)", path, cap - 1);
        goto error;
    }
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    if (n == 0 || strlen(out) != (size_t) n) {
        snprintf(err, err_len, "%s is empty or holds a NUL byte", path);
        goto error;
    }
    close(fd);
    return 0;
error:
    close(fd);
    memset(out, 0, cap);
    return -1;
}

/* HOST:PORT with a numeric IPv4 host, or [IPv6]:PORT (brackets dropped in
   listen_host; bridge.c tells the two apart with inet_pton). */
static int s_parse_listen(pt_bridge_config_t *cfg, const char *text, char *err, size_t err_len)
{
    const char *colon = strrchr(text, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    const char *host = text;
    size_t host_len = colon ? (size_t)(colon - text) : 0;
    if (text[0] == '[') {
        /* [::1]:8081 */
        if (host_len < 3 || text[host_len - 1] != ']')
            host_len = 0;
        else {
            host = text + 1;
            host_len -= 2;
        }
    }
    if (!colon || host_len == 0 || host_len >= sizeof cfg->listen_host || !end || *end ||
        port < 1 || port > 65535) {
        snprintf(err, err_len, "--listen: expected HOST:PORT or [IPv6]:PORT, e.g. %s",
                 PT_BRIDGE_DEFAULT_LISTEN);
        return -1;
    }
    memcpy(cfg->listen_host, host, host_len);
    cfg->listen_host[host_len] = '\0';
    cfg->listen_port = (int) port;
    return 0;
}

static const pt_config_key_t s_keys[] = {
    {"bridge", "listen", PT_CONFIG_ENDPOINT, PT_BRIDGE_DEFAULT_LISTEN, 0, "PUENTE_BRIDGE_LISTEN",
     "listen", 0, 0, 0, "numeric IPv4 HOST:PORT or [IPv6]:PORT to serve the HTTP API on"},
    {"bridge", "org", PT_CONFIG_STRING, NULL, 0, "PUENTE_BRIDGE_ORG", "org", 0, 0, 0,
     "organisation this bridge acts as (required)"},
    {"bridge", "token_file", PT_CONFIG_PATH, NULL, 0, "PUENTE_BRIDGE_TOKEN_FILE", "token-file", 0,
     0, 0, "bearer token file, mode 0600 (required)"},
    {"bridge", "broker", PT_CONFIG_ENDPOINT_LIST, PUENTE_DEFAULT_BROKER, 0, "PUENTE_BROKER",
     "broker", 0, 0, 0, "broker endpoint, or several comma-separated (failover)"},
    {"bridge", "keys", PT_CONFIG_PATH, PUENTE_DEFAULT_KEYS, 0, "PUENTE_KEYS", "keys", 0, 0, 0,
     "key directory (ORG/ and broker/)"},
    {"bridge", "state_dir", PT_CONFIG_PATH, NULL, 0, "PUENTE_BRIDGE_STATE", "state", 0, 0, 0,
     "SQLite state directory (default var/bridge/ORG)"},
    {"bridge", "webhook", PT_CONFIG_STRING, NULL, 0, "PUENTE_BRIDGE_WEBHOOK", "webhook", 0, 0, 0,
     "http(s) URL that receives each incoming message"},
    {"bridge", "webhook_secret_file", PT_CONFIG_PATH, NULL, 0, "PUENTE_BRIDGE_WEBHOOK_SECRET_FILE",
     "webhook-secret-file", 0, 0, 0,
     "HMAC-SHA256 key for X-Puente-Signature, mode 0600 (required with a webhook)"},
    {"bridge", "webhook_max_attempts", PT_CONFIG_INT, "12", 0, "PUENTE_BRIDGE_WEBHOOK_MAX_ATTEMPTS",
     "webhook-max-attempts", 1, 1000, 0,
     "webhook attempts per message before its webhook state is failed"},
    {"bridge", "webhook_backoff", PT_CONFIG_DURATION, "1s", 0, "PUENTE_BRIDGE_WEBHOOK_BACKOFF",
     "webhook-backoff", 10, 3600000, 0, "wait after the first failed webhook attempt (doubles)"},
    {"bridge", "webhook_max_backoff", PT_CONFIG_DURATION, "60s", 0,
     "PUENTE_BRIDGE_WEBHOOK_MAX_BACKOFF", "webhook-max-backoff", 10, 86400000, 0,
     "longest wait between two webhook attempts"},
    {"bridge", "max_body", PT_CONFIG_SIZE, "1MiB", 0, "PUENTE_BRIDGE_MAX_BODY", "max-body", 1024,
     64LL * 1024 * 1024, 0, "largest request body (1KiB..64MiB)"},
    {"bridge", "broker_timeout", PT_CONFIG_DURATION, "10s", 0, "PUENTE_BRIDGE_TIMEOUT_MS",
     "timeout-ms", 100, 600000, 0, "broker request timeout (bare numbers are milliseconds)"},
};

static int s_fill(pt_bridge_config_t *cfg, pt_config_t *c, char *err, size_t err_len)
{
    const char *org = pt_config_get(c, "bridge", "org");
    const char *broker = pt_config_get(c, "bridge", "broker");
    const char *keys = pt_config_get(c, "bridge", "keys");
    const char *state = pt_config_get(c, "bridge", "state_dir");
    const char *webhook = pt_config_get(c, "bridge", "webhook");
    const char *webhook_secret = pt_config_get(c, "bridge", "webhook_secret_file");
    const char *token_file = pt_config_get(c, "bridge", "token_file");
    const char *listen = pt_config_get(c, "bridge", "listen");
    if (s_parse_listen(cfg, listen ? listen : PT_BRIDGE_DEFAULT_LISTEN, err, err_len) != 0)
        return -1;
    if (!org || !pt_org_id_valid(org)) {
        snprintf(err, err_len, "--org: an organisation id such as MX-DIF is required");
        return -1;
    }
    if (s_copy(cfg->org, sizeof cfg->org, org, "--org", err, err_len) != 0
        || s_copy(cfg->broker, sizeof cfg->broker, broker ? broker : PUENTE_DEFAULT_BROKER,
                  "--broker", err, err_len) != 0
        || s_copy(cfg->keys, sizeof cfg->keys, keys ? keys : PUENTE_DEFAULT_KEYS, "--keys", err,
                  err_len) != 0)
        return -1;
    if (state) {
        if (s_copy(cfg->state_dir, sizeof cfg->state_dir, state, "--state", err, err_len) != 0)
            return -1;
    }
    else
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "var/bridge/%s", cfg->org);
    cfg->max_body = (size_t) pt_config_number(c, "bridge", "max_body", PT_BRIDGE_DEFAULT_MAX_BODY);
    cfg->timeout_ms = (int) pt_config_number(c, "bridge", "broker_timeout", 10000);
    cfg->webhook_max_attempts = (int)pt_config_number(c, "bridge", "webhook_max_attempts",
                                                      PT_BRIDGE_DEFAULT_WEBHOOK_ATTEMPTS);
    cfg->webhook_backoff_ms =
        pt_config_number(c, "bridge", "webhook_backoff", PT_BRIDGE_DEFAULT_WEBHOOK_BACKOFF_MS);
    cfg->webhook_max_backoff_ms = pt_config_number(c, "bridge", "webhook_max_backoff",
                                                   PT_BRIDGE_DEFAULT_WEBHOOK_MAX_BACKOFF_MS);
    if (cfg->webhook_max_backoff_ms < cfg->webhook_backoff_ms) {
        snprintf(err, err_len, "webhook_max_backoff must not be shorter than webhook_backoff");
        return -1;
    }
    if (!token_file) {
        snprintf(err, err_len, "--token-file is required (a file of mode 0600 with the token)");
        return -1;
    }
    char why[512];
    if (pt_bridge_secret_read(token_file, cfg->token, sizeof cfg->token, why, sizeof why) != 0) {
        snprintf(err, err_len, "--token-file: %s", why);
        return -1;
    }
    if (strlen(cfg->token) < 16) {
        snprintf(err, err_len, "--token-file: the token must be at least 16 characters");
        return -1;
    }
    if (webhook) {
        if (strncmp(webhook, "http://", 7) != 0 && strncmp(webhook, "https://", 8) != 0) {
            snprintf(err, err_len, "--webhook: expected an http:// or https:// URL");
            return -1;
        }
        if (s_copy(cfg->webhook_url, sizeof cfg->webhook_url, webhook, "--webhook", err,
                   err_len) != 0)
            return -1;
        if (!webhook_secret) {
            snprintf(err, err_len, "--webhook needs --webhook-secret-file");
            return -1;
        }
        if (pt_bridge_secret_read(webhook_secret, cfg->webhook_secret, sizeof cfg->webhook_secret,
                                  why, sizeof why) != 0) {
            snprintf(err, err_len, "--webhook-secret-file: %s", why);
            return -1;
        }
    }
    return 0;
}

int pt_bridge_config_parse(pt_bridge_config_t *cfg, int argc, char **argv,
                           const char *(*env)(const char *name), char *err, size_t err_len)
{
    int rc = -1;
    memset(cfg, 0, sizeof *cfg);
    pt_config_t *c = pt_config_new("puente-bridge", s_keys, sizeof s_keys / sizeof s_keys[0]);
    if (!c) {
        snprintf(err, err_len, "cannot set up the configuration");
        return -1;
    }
    if (pt_config_load(c, argc, argv, env, err, err_len) != 0)
        goto done;
    if (pt_config_help_requested(c)) {
        cfg->help = 1;
        rc = 0;
        goto done;
    }
    if (s_fill(cfg, c, err, err_len) != 0)
        goto done;
    if (pt_config_check_requested(c)) {
        FILE *out = fmemopen(cfg->check_report, sizeof cfg->check_report - 1, "w");
        if (!out || pt_config_print(c, out) != 0) {
            snprintf(err, err_len, "cannot format the configuration report");
            if (out)
                fclose(out);
            goto done;
        }
        fclose(out);
        cfg->check_config = 1;
    }
    rc = 0;
done:
    pt_config_destroy(&c);
    if (rc != 0) {
        memset(cfg->token, 0, sizeof cfg->token);
        memset(cfg->webhook_secret, 0, sizeof cfg->webhook_secret);
    }
    return rc;
}

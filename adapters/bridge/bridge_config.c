/*  bridge_config — flags and environment into one struct (see bridge_config.h). */
#include "bridge_config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_keys.h"
#include "puente.h"

static const char s_usage[] =
    "usage: puente-bridge --org ORG --token-file PATH [options]\n"
    "HTTP/JSON bridge between one organisation's national system and the Puente broker.\n"
    "  --listen HOST:PORT          address to serve on (PUENTE_BRIDGE_LISTEN, default "
    PT_BRIDGE_DEFAULT_LISTEN ")\n"
    "  --org ORG                   organisation this bridge acts as (PUENTE_BRIDGE_ORG)\n"
    "  --token-file PATH           bearer token, file mode 0600 (PUENTE_BRIDGE_TOKEN_FILE)\n"
    "  --broker ENDPOINT           broker (PUENTE_BROKER, default " PUENTE_DEFAULT_BROKER ")\n"
    "  --keys DIR                  key directory (PUENTE_KEYS, default " PUENTE_DEFAULT_KEYS ")\n"
    "  --state DIR                 SQLite state (PUENTE_BRIDGE_STATE, default var/bridge/ORG)\n"
    "  --webhook URL               POST each incoming message here (PUENTE_BRIDGE_WEBHOOK)\n"
    "  --webhook-secret-file PATH  HMAC-SHA256 key for X-Puente-Signature, mode 0600\n"
    "                              (PUENTE_BRIDGE_WEBHOOK_SECRET_FILE)\n"
    "  --max-body BYTES            largest request body (PUENTE_BRIDGE_MAX_BODY, default 1 MiB)\n"
    "  --timeout-ms MS             broker request timeout (PUENTE_BRIDGE_TIMEOUT_MS, 10000)\n";

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

static int s_parse_listen(pt_bridge_config_t *cfg, const char *text, char *err, size_t err_len)
{
    const char *colon = strrchr(text, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == text || (size_t) (colon - text) >= sizeof cfg->listen_host || !end
        || *end || port < 1 || port > 65535) {
        snprintf(err, err_len, "--listen: expected HOST:PORT, e.g. %s", PT_BRIDGE_DEFAULT_LISTEN);
        return -1;
    }
    memcpy(cfg->listen_host, text, (size_t) (colon - text));
    cfg->listen_host[colon - text] = '\0';
    cfg->listen_port = (int) port;
    return 0;
}

static int s_parse_size(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int pt_bridge_config_parse(pt_bridge_config_t *cfg, int argc, char **argv,
                           const char *(*env)(const char *name), char *err, size_t err_len)
{
    static const struct option longopts[] = {
        {"listen", required_argument, 0, 'l'},      {"org", required_argument, 0, 'o'},
        {"token-file", required_argument, 0, 't'},  {"broker", required_argument, 0, 'b'},
        {"keys", required_argument, 0, 'k'},        {"state", required_argument, 0, 's'},
        {"webhook", required_argument, 0, 'w'},     {"webhook-secret-file", required_argument, 0, 'W'},
        {"max-body", required_argument, 0, 'm'},    {"timeout-ms", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    /* Flags first into this table, then the environment fills the gaps. */
    const char *v[128] = {0};
    const char *(*get)(const char *) = env ? env : (const char *(*)(const char *)) getenv;
    memset(cfg, 0, sizeof *cfg);
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            cfg->help = 1;
            return 0;
        }
        if (c == ':' || c == '?') {
            snprintf(err, err_len, "%s option %s", c == ':' ? "missing value for" : "unknown",
                     argv[optind - 1]);
            return -1;
        }
        v[c] = optarg;
    }
    if (optind < argc) {
        snprintf(err, err_len, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    static const struct { char opt; const char *name; } envs[] = {
        {'l', "PUENTE_BRIDGE_LISTEN"}, {'o', "PUENTE_BRIDGE_ORG"},
        {'t', "PUENTE_BRIDGE_TOKEN_FILE"}, {'b', "PUENTE_BROKER"}, {'k', "PUENTE_KEYS"},
        {'s', "PUENTE_BRIDGE_STATE"}, {'w', "PUENTE_BRIDGE_WEBHOOK"},
        {'W', "PUENTE_BRIDGE_WEBHOOK_SECRET_FILE"}, {'m', "PUENTE_BRIDGE_MAX_BODY"},
        {'T', "PUENTE_BRIDGE_TIMEOUT_MS"}};
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *e = v[(int) envs[i].opt] ? NULL : get(envs[i].name);
        if (e && *e)
            v[(int) envs[i].opt] = e;
    }
    if (s_parse_listen(cfg, v['l'] ? v['l'] : PT_BRIDGE_DEFAULT_LISTEN, err, err_len) != 0)
        return -1;
    if (!v['o'] || !pt_org_id_valid(v['o'])) {
        snprintf(err, err_len, "--org: an organisation id such as MX-DIF is required");
        return -1;
    }
    if (s_copy(cfg->org, sizeof cfg->org, v['o'], "--org", err, err_len) != 0
        || s_copy(cfg->broker, sizeof cfg->broker, v['b'] ? v['b'] : PUENTE_DEFAULT_BROKER,
                  "--broker", err, err_len) != 0
        || s_copy(cfg->keys, sizeof cfg->keys, v['k'] ? v['k'] : PUENTE_DEFAULT_KEYS, "--keys",
                  err, err_len) != 0)
        return -1;
    if (v['s']) {
        if (s_copy(cfg->state_dir, sizeof cfg->state_dir, v['s'], "--state", err, err_len) != 0)
            return -1;
    }
    else
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "var/bridge/%s", cfg->org);
    long n = PT_BRIDGE_DEFAULT_MAX_BODY;
    if (v['m'] && s_parse_size(v['m'], 1024, 64L * 1024 * 1024, &n) != 0) {
        snprintf(err, err_len, "--max-body: expected bytes between 1024 and 67108864");
        return -1;
    }
    cfg->max_body = (size_t) n;
    n = 10000;
    if (v['T'] && s_parse_size(v['T'], 100, 600000, &n) != 0) {
        snprintf(err, err_len, "--timeout-ms: expected milliseconds between 100 and 600000");
        return -1;
    }
    cfg->timeout_ms = (int) n;
    if (!v['t']) {
        snprintf(err, err_len, "--token-file is required (a file of mode 0600 with the token)");
        return -1;
    }
    char why[512];
    if (pt_bridge_secret_read(v['t'], cfg->token, sizeof cfg->token, why, sizeof why) != 0) {
        snprintf(err, err_len, "--token-file: %s", why);
        return -1;
    }
    if (strlen(cfg->token) < 16) {
        snprintf(err, err_len, "--token-file: the token must be at least 16 characters");
        return -1;
    }
    if (v['w']) {
        if (strncmp(v['w'], "http://", 7) != 0 && strncmp(v['w'], "https://", 8) != 0) {
            snprintf(err, err_len, "--webhook: expected an http:// or https:// URL");
            return -1;
        }
        if (s_copy(cfg->webhook_url, sizeof cfg->webhook_url, v['w'], "--webhook", err,
                   err_len) != 0)
            return -1;
        if (!v['W']) {
            snprintf(err, err_len, "--webhook needs --webhook-secret-file");
            return -1;
        }
        if (pt_bridge_secret_read(v['W'], cfg->webhook_secret, sizeof cfg->webhook_secret, why,
                                  sizeof why) != 0) {
            snprintf(err, err_len, "--webhook-secret-file: %s", why);
            return -1;
        }
    }
    return 0;
}

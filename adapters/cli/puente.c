/*  puente — the command-line client: main, subcommand dispatch and what the
    subcommands share (common flags, connecting, exit codes). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *s_usage =
    "usage: puente COMMAND [options]   (puente COMMAND --help for details)\n"
    "\n"
    "commands:\n"
    "  keygen --org ID              create an organisation's key files\n"
    "  org add ID                   register an organisation's public keys (operator)\n"
    "  org list|show|disable|enable list, inspect, disable or re-enable organisations (operator)\n"
    "  agreement add --id ID ...    register an information-sharing agreement (operator)\n"
    "  agreement list|revoke ID     list agreements, or end one now (operator)\n"
    "  queue list                   backlog per recipient: depth and oldest (operator)\n"
    "  dead-letter list|requeue|drop  deliveries given up on: list, requeue or drop (operator)\n"
    "  status                       broker version, uptime, database, queues (operator)\n"
    "  key rotate|revoke|list       an organisation's keys: rotate with overlap, revoke (operator)\n"
    "  key install --org ORG        put a new key set in place, keeping the former one\n"
    "  send --as ORG --to ORG ...   send a case message and print the broker's receipt\n"
    "  recv --as ORG [--follow]     receive, verify, open, print and acknowledge messages\n"
    "  trail --case TOKEN           show a case's trail of events\n"
    "  overdue [--as ORG]           list lifecycles past their respond-by or follow-up date\n"
    "  audit COMMAND                auditor queries, checkpoints, proofs, verify, export\n"
    "  auditor add ID --scope LIST  register an auditor (operator)\n"
    "  retention run                delete payloads past their agreement's retention (operator)\n"
    "  types                        list the message types\n"
    "  example TYPE                 print an example JSON body for a type\n"
    "\n"
    "Run from the repository root after `make run`, no flags are needed: the broker is\n"
    "the one `make run` wrote into var/endpoint, else " PUENTE_DEFAULT_BROKER "\n"
    "(--broker, env PUENTE_BROKER) and keys are in " PUENTE_DEFAULT_KEYS " (--keys, env PUENTE_KEYS).\n"
    "\n"
    "Every command but example takes --json-output (machine-readable output: one JSON\n"
    "object or array; also spelled --json except in send, where --json FILE is the body).\n"
    "\n"
    "exit codes: 0 ok\n"
    "            1 usage or input error (flags, files, local keys)\n"
    "            2 rejected by the broker (the reject code and reason are printed; for\n"
    "              REJECT_RATE_LIMITED and REJECT_QUOTA_EXCEEDED nothing was stored:\n"
    "              run the command again later)\n"
    "            3 cannot reach the broker, or the broker cannot reach its database\n"
    "              (REJECT_RETRY_LATER), or no answer in time\n"
    "            4 recv: a delivered message failed verification (not acknowledged)\n"
    "            5 audit: the trail, the log or a signature does not verify\n";

/* `make run` (deploy/run.sh) writes the endpoint it started the broker on into
   var/endpoint, next to the demo keys in var/keys: run from that directory, the CLI
   finds a broker started with PUENTE_ENDPOINT by itself. Only consulted when
   neither --broker nor PUENTE_BROKER is given; a missing, empty or odd file
   leaves PUENTE_DEFAULT_BROKER. */
#define S_LOCAL_ENDPOINT_FILE "var/endpoint"

static const char *s_local_endpoint(void)
{
    static char endpoint[256];
    FILE *f = fopen(S_LOCAL_ENDPOINT_FILE, "r");
    if (!f)
        return NULL;
    char *line = fgets(endpoint, sizeof endpoint, f);
    fclose(f);
    if (!line)
        return NULL;
    endpoint[strcspn(endpoint, "\r\n")] = '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0 && strncmp(endpoint, "ipc://", 6) != 0)
        return NULL;
    return endpoint;
}

void cli_common_init(cli_common_t *common, int default_timeout_ms)
{
    const char *env_broker = getenv("PUENTE_BROKER");
    const char *env_keys = getenv("PUENTE_KEYS");
    const char *local = env_broker && *env_broker ? NULL : s_local_endpoint();
    common->broker = env_broker && *env_broker ? env_broker : local ? local : PUENTE_DEFAULT_BROKER;
    common->keys = env_keys && *env_keys ? env_keys : PUENTE_DEFAULT_KEYS;
    common->timeout_ms = default_timeout_ms;
    common->json_output = 0;
}

int cli_common_opt(int c, const char *arg, cli_common_t *common)
{
    int64_t ms;
    switch (c) {
    case 'B': common->broker = arg; return 1;
    case 'K': common->keys = arg; return 1;
    case 'J': common->json_output = 1; return 1;
    case 'T':
        if (puente_duration_parse(arg, &ms) != 0 || ms <= 0 || ms > 24LL * 3600 * 1000) {
            fprintf(stderr, "puente: --timeout: invalid duration '%s' (e.g. 5s, 500ms, 2m)\n", arg);
            return -1;
        }
        common->timeout_ms = (int) ms;
        return 1;
    default: return 0;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    fprintf(stderr, "puente %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see puente %s --help)\n", cmd);
    return CLI_USAGE;
}

int cli_connect(const cli_common_t *common, const char *org, int receive, pt_client_t **out)
{
    pt_client_opts_t opts = { .endpoint = common->broker,
                              .keys_dir = common->keys,
                              .org_id = org,
                              .receive = receive,
                              .timeout_ms = common->timeout_ms,
                              .client_name = "puente-cli/0.1" };
    char err[PUENTE_ERR_BYTES];
    pt_client_result_t code = PT_CLIENT_OK;
    *out = pt_client_new_ex(&opts, err, sizeof err, &code);
    if (*out)
        return CLI_OK;
    fprintf(stderr, "puente: %s\n", err);
    if (code == PT_CLIENT_UNREACHABLE)
        return CLI_UNREACHABLE;
    if (code == PT_CLIENT_REJECTED)
        return CLI_REJECTED;
    return CLI_USAGE;
}

int cli_fail(pt_client_t *client, pt_client_result_t rc, const pt_reject_info_t *rej)
{
    switch (rc) {
    case PT_CLIENT_OK: return CLI_OK;
    case PT_CLIENT_REJECTED:
        if (rej && rej->code == PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER) {
            /* Nothing was stored: the broker cannot reach its database. */
            fprintf(stderr, "puente: broker's storage unavailable: %s (%d): %s\n", rej->code_name,
                    rej->code, rej->reason);
            return CLI_UNREACHABLE;
        }
        if (rej && puente_reject_retryable(rej->code)) {
            /* REJECT_RATE_LIMITED / REJECT_QUOTA_EXCEEDED after the SDK's own retries:
               a rejection like the others (exit 2), but nothing was stored and the
               same command may succeed later. */
            fprintf(stderr,
                    "rejected by the broker (a limit; nothing was stored, run the command "
                    "again later): %s (%d): %s\n",
                    rej->code_name, rej->code, rej->reason);
            return CLI_REJECTED;
        }
        if (rej && rej->code)
            fprintf(stderr, "rejected: %s (%d): %s\n", rej->code_name, rej->code, rej->reason);
        else
            fprintf(stderr, "rejected: %s\n", pt_client_error(client));
        return CLI_REJECTED;
    case PT_CLIENT_UNREACHABLE:
    case PT_CLIENT_TIMEOUT:
        fprintf(stderr, "puente: %s\n", pt_client_error(client));
        return CLI_UNREACHABLE;
    case PT_CLIENT_BAD_REPLY:
        fprintf(stderr, "puente: untrusted answer from the broker: %s\n", pt_client_error(client));
        return CLI_UNREACHABLE;
    case PT_CLIENT_REFUSED:
        fprintf(stderr, "puente: %s\n", pt_client_error(client));
        return CLI_REFUSED;
    default:
        fprintf(stderr, "puente: %s\n",
                pt_client_error(client)[0] ? pt_client_error(client) : "internal error");
        return CLI_USAGE;
    }
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "puente: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max)
                break;
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int failed = !buf || ferror(f) || n > max;
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "puente: cannot read %s: %s\n", path,
                n > max ? "larger than the limit" : "read error");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int cli_split(const char *csv, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = 1;
    for (const char *p = csv; *p; p++)
        count += *p == ',';
    char **v = calloc(count + 1, sizeof *v);
    if (!v)
        return -1;
    const char *start = csv;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t) (end - start) : strlen(start);
        if (len == 0 || !(v[i] = strndup(start, len))) {
            cli_strv_free(&v);
            return -1;
        }
        start = end ? end + 1 : start + len;
    }
    *out = v;
    *n = count;
    return 0;
}

void cli_strv_free(char ***strv_p)
{
    if (!strv_p || !*strv_p)
        return;
    for (char **p = *strv_p; *p; p++)
        free(*p);
    free(*strv_p);
    *strv_p = NULL;
}

void cli_print_json(void *json, int one_line)
{
    size_t flags = JSON_PRESERVE_ORDER | (one_line ? JSON_COMPACT : JSON_INDENT(2));
    char *text = json_dumps((json_t *) json, flags);
    if (text) {
        puts(text);
        free(text);
    }
    fflush(stdout);
}

/* Issue 6 (cmd_admin.c); declared here because cli.h is not this change's file. */
int cmd_queue(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_key(int argc, char **argv);   /* cmd_key.c */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(s_usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(s_usage, stdout);
        return CLI_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = { { "keygen", cmd_keygen }, { "org", cmd_org },     { "agreement", cmd_agreement },
                     { "send", cmd_send },     { "recv", cmd_recv },   { "trail", cmd_trail },
                     { "types", cmd_types },   { "example", cmd_example },
                     { "overdue", cmd_overdue }, { "audit", cmd_audit },
                     { "auditor", cmd_auditor }, { "retention", cmd_retention },
                     { "queue", cmd_queue },     { "status", cmd_status },
                     { "key", cmd_key },
                     { "dead-letter", cmd_dead_letter } };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "puente: unknown command '%s'\n\n%s", cmd, s_usage);
    return CLI_USAGE;
}

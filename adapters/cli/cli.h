/*  cli — what the `puente` subcommands share: exit codes, common flags, connecting,
    reading input files and printing rejects. Internal to adapters/cli. */
#ifndef PUENTE_CLI_H
#define PUENTE_CLI_H

#include <getopt.h>
#include <stddef.h>

#include "puente.h"

/* Exit codes (documented in `puente --help`). */
enum {
    CLI_OK = 0,
    CLI_USAGE = 1,       /* bad flags, unreadable or invalid input, local keys */
    CLI_REJECTED = 2,    /* the broker rejected the request (RATE_LIMITED / QUOTA_EXCEEDED too) */
    CLI_UNREACHABLE = 3, /* cannot reach the broker (or its database: REJECT_RETRY_LATER), timeout */
    CLI_REFUSED = 4,     /* recv: a delivered message failed verification (not acked) */
    CLI_TAMPERED = 5     /* audit verify: the trail, the log or a signature does not verify */
};

typedef struct {
    const char *broker;  /* --broker, PUENTE_BROKER, default */
    const char *keys;    /* --keys, PUENTE_KEYS, default */
    int timeout_ms;      /* --timeout */
    int json_output;     /* --json-output */
} cli_common_t;

/* Long options every subcommand accepts; append to a subcommand's table. */
#define CLI_COMMON_OPTIONS                                                                     \
    { "broker", required_argument, 0, 'B' }, { "keys", required_argument, 0, 'K' },           \
        { "timeout", required_argument, 0, 'T' }, { "json-output", no_argument, 0, 'J' },     \
        { "help", no_argument, 0, 'h' }

#define CLI_COMMON_HELP                                                                        \
    "  --broker URL      broker endpoint, or several comma-separated: the client moves to the\n" \
    "                    next when one is lost (env PUENTE_BROKER; else var/endpoint, written\n"  \
    "                    by make run; else " PUENTE_DEFAULT_BROKER ")\n"                           \
    "  --keys DIR        key directory (env PUENTE_KEYS, default " PUENTE_DEFAULT_KEYS ")\n"       \
    "  --timeout D       how long to wait for the broker (e.g. 10s, 500ms)\n"                    \
    "  --json-output     machine-readable output (JSON; --json for short except in send)\n"     \
    "  --help            this text\n"

/* Fills defaults from the environment (and var/endpoint, see puente.c). */
void cli_common_init(cli_common_t *common, int default_timeout_ms);

/* Handles a common option. 1 handled, 0 not a common option, -1 bad value (printed). */
int cli_common_opt(int c, const char *arg, cli_common_t *common);

/* Prints "puente CMD: unknown or incomplete option" for getopt's '?'/':'. */
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* Connects as org. CLI_OK with *out, or the exit code after printing why. */
int cli_connect(const cli_common_t *common, const char *org, int receive, pt_client_t **out);

/* Maps an SDK result to an exit code, printing the reason (and the reject). */
int cli_fail(pt_client_t *client, pt_client_result_t rc, const pt_reject_info_t *rej);

/* Reads a whole file ("-" = stdin) up to max bytes, NUL-terminated. 0 or -1 (printed). */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);

/* Splits "a,b,c" into a NULL-terminated array of new strings; empty items are
   errors. 0 or -1. Free with cli_strv_free. */
int cli_split(const char *csv, char ***out, size_t *n);
void cli_strv_free(char ***strv_p);

/* Prints a JSON value (jansson json_t *) pretty or on one line, with a newline. */
void cli_print_json(void *json, int one_line);

/* Sends an operator request whose answer is only AdminReply.result, prints that
   result (JSON {"result": ...} with --json-output) and returns the exit code
   (cmd_admin.c). */
int cli_admin_simple(const cli_common_t *common, const Puente__V1__AdminRequest *req);

/* Sends an AdminRequest as the operator (cmd_admin.c). CLI_OK with *out (free with
   puente__v1__admin_reply__free_unpacked), or the exit code after printing why. */
int cli_admin_call(const cli_common_t *common, const Puente__V1__AdminRequest *req,
                   Puente__V1__AdminReply **out);

/* Subcommands: argc/argv start at the subcommand's name. */
int cmd_keygen(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_agreement(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_trail(int argc, char **argv);
int cmd_overdue(int argc, char **argv);
int cmd_types(int argc, char **argv);
int cmd_example(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_auditor(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_dead_letter(int argc, char **argv);   /* cmd_deadletter.c (issue 6) */

/* audit verify / export (cmd_audit_verify.c: the only database reader outside
   broker/, through the read-only role puente_auditor). progress: show a progress
   line on stderr (cli_progress.h; the caller checks cli_progress_wanted). */
struct _pt_audit_verifier_t;
int cli_audit_verify_db(const char *conninfo, struct _pt_audit_verifier_t *v, int progress);
int cli_audit_report(struct _pt_audit_verifier_t *v, int json, double seconds);
/* The bundle of a case (jansson json_t *), or NULL (printed). broker_public
   (32 bytes, or NULL): the broker's key from the operator's key file; the bundle
   carries it and the checkpoint must verify with it (else NULL). NULL with
   *need_size > 0: no checkpoint in the database covers the case's last leaf yet;
   a checkpoint of at least *need_size leaves is needed (nothing printed). */
void *cli_audit_export_db(const char *conninfo, const char *case_token,
                          const uint8_t *broker_public, uint64_t *need_size);

#endif

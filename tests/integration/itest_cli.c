/*  itest_cli — the README's commands, run as a user would run them: the `puente`
    binary against a real broker and PostgreSQL. Checks outputs and exit codes. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static char s_cli[600];
static char s_out[65536], s_err[8192];

static int s_suite_init(void)
{
    const char *cli = getenv("PUENTE_CLI_BIN");
    snprintf(s_cli, sizeof s_cli, "%s", cli ? cli : "build/puente");
    s_h = pt_harness_new("cli");
    if (!s_h || pt_harness_broker_start(s_h) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

static int s_run(const char *fmt, const char *a, const char *b)
{
    char command[2200];
    char args[1500];
    snprintf(args, sizeof args, fmt, a ? a : "", b ? b : "");
    snprintf(command, sizeof command, "%s %s", s_cli, args);
    int rc = pt_harness_sh(s_h, command, s_out, sizeof s_out, s_err, sizeof s_err);
    if (rc != 0 && getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\n$ %s\n%s%s", command, s_out, s_err);
    return rc;
}

/* Registration through the CLI, as the operator (the harness has keys on disk). */
static void test_org_and_agreement_add(void)
{
    const char *orgs[] = {"MX-DIF", "GT-PGN", "US-ORR"};
    for (int i = 0; i < 3; i++) {
        /* Service types they receive (a referral needs one its recipient registered). */
        CU_ASSERT_EQUAL(s_run("org add %s --services psychosocial,legal_assistance,"
                              "tracing_focal_point%s",
                              orgs[i], NULL),
                        0);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, orgs[i]));
    }
    CU_ASSERT_EQUAL(s_run("org add %s --services psychosocial,legal_assistance,"
                          "tracing_focal_point%s",
                          "MX-DIF", NULL),
                    0); /* idempotent */
    CU_ASSERT_EQUAL(s_run("agreement add --id AGR-CLI-1 --between MX-DIF GT-PGN --purposes "
                          "service_provision,case_transfer --types 'referral.*,transfer.*'%s%s",
                          NULL, NULL),
                    0);
    /* An agreement with an unregistered party is refused by the broker: exit 2. */
    CU_ASSERT_EQUAL(s_run("agreement add --id AGR-CLI-2 --between MX-DIF HN-DINAF --purposes "
                          "service_provision --types '*'%s%s",
                          NULL, NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_INVALID_FIELD"));
}

static void test_send_recv_trail(void)
{
    char json[700];
    snprintf(json, sizeof json, "%s/referral.json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL_FATAL(s_run("example referral.request%s%s", NULL, NULL), 0);
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(s_out, file);
    fclose(file);
    CU_ASSERT_EQUAL_FATAL(s_run("send --as MX-DIF --to GT-PGN --type referral.request --case "
                                "CASE-CLI-1 --json '%s'%s",
                                json, NULL),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "message_id"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "stored_at"));

    CU_ASSERT_EQUAL_FATAL(s_run("recv --as GT-PGN --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\":\"CASE-CLI-1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"sender\":\"MX-DIF\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"referral_id\":\"TEST-REF-MX-DIF-2025-0001\""));
    /* Acknowledged: nothing left to receive. */
    CU_ASSERT_EQUAL(s_run("recv --as GT-PGN --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-CLI-1"));

    CU_ASSERT_EQUAL_FATAL(s_run("trail --case CASE-CLI-1%s%s", NULL, NULL), 0);
    const char *kinds[] = {"submitted", "stored", "delivered", "acknowledged"};
    const char *at = s_out;
    for (int i = 0; i < 4; i++) {
        const char *found = strstr(at, kinds[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(found);
        at = found; /* in this order */
    }
    /* Each line: SEQ, time (UTC, ms), event, type, actor -> counterparty, message id
       (first 8 hex digits), the event's chain hash (first 16 hex digits). */
    const char *parties[] = {"MX-DIF -> GT-PGN", "MX-DIF -> GT-PGN", "GT-PGN -> MX-DIF",
                             "GT-PGN -> MX-DIF"};
    for (int i = 0; i < 4; i++) {
        char needle[40];
        snprintf(needle, sizeof needle, " %s ", kinds[i]);
        const char *line = strstr(s_out, needle);
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        while (line > s_out && line[-1] != '\n')
            line--;
        char text[400];
        size_t len = strcspn(line, "\n");
        snprintf(text, sizeof text, "%.*s", (int)len, line);
        unsigned long long seq = 0;
        char time[64] = "", kind[64] = "", type[64] = "";
        int fields = sscanf(text, "%llu %63s %63s %63s", &seq, time, kind, type);
        CU_ASSERT_EQUAL(fields, 4);
        CU_ASSERT(seq >= 1);
        CU_ASSERT_STRING_EQUAL(kind, kinds[i]);
        CU_ASSERT_STRING_EQUAL(type, "referral.request");
        /* 2026-11-22T20:51:03.123Z */
        CU_ASSERT_EQUAL(strlen(time), 24);
        CU_ASSERT(time[4] == '-' && time[10] == 'T' && time[19] == '.' && time[23] == 'Z');
        if (!strstr(text, parties[i]))
            fprintf(stderr, "\ntrail line without '%s': %s\n", parties[i], text);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, parties[i]));
        /* The last column: 16 lower-case hex digits of the chain hash. */
        const char *hash = strrchr(text, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
        hash++;
        CU_ASSERT_EQUAL(strlen(hash), 16);
        CU_ASSERT_EQUAL(strspn(hash, "0123456789abcdef"), 16);
    }
    CU_ASSERT_EQUAL(s_run("trail --case CASE-CLI-1 --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "acknowledged"));
    /* --json is the short form of --json-output (outside send). */
    char with_long[sizeof s_out];
    snprintf(with_long, sizeof with_long, "%s", s_out);
    CU_ASSERT_EQUAL(s_run("trail --case CASE-CLI-1 --json%s%s", NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(s_out, with_long);
    CU_ASSERT_EQUAL(s_out[0], '{');

    /* Plain recv (no --json-output): the opened message as indented JSON, then acked. */
    CU_ASSERT_EQUAL_FATAL(s_run("send --as MX-DIF --to GT-PGN --type referral.request --case "
                                "CASE-CLI-5 --json '%s'%s",
                                json, NULL),
                          0);
    CU_ASSERT_EQUAL_FATAL(s_run("recv --as GT-PGN%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\": \"CASE-CLI-5\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"sender\": \"MX-DIF\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"referral_id\": \"TEST-REF-MX-DIF-2025-0001\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\n  \""));   /* indented, several lines */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-CLI-5' AND d.acked_at IS NOT NULL"),
                    1);
}

/* keygen --if-missing --json-output answers JSON whether it created the keys or not. */
static void test_keygen_if_missing_json(void)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/keygen-json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL_FATAL(s_run("keygen --org XI-ISS --keys '%s' --if-missing --json-output%s",
                                dir, NULL),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"org\":\"XI-ISS\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"created\":true"));
    const char *id = strstr(s_out, "\"sign_key_id\":\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(id);
    char first_id[65];
    snprintf(first_id, sizeof first_id, "%.64s", id + strlen("\"sign_key_id\":\""));
    CU_ASSERT_EQUAL(strspn(first_id, "0123456789abcdef"), 64);
    CU_ASSERT_EQUAL(s_run("keygen --org XI-ISS --keys '%s' --if-missing --json-output%s", dir,
                          NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"created\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, first_id));   /* the same keys, untouched */
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "already in"));
    /* Without --if-missing: refused, exit 1, nothing on stdout. */
    CU_ASSERT_EQUAL(s_run("keygen --org XI-ISS --keys '%s' --json-output%s", dir, NULL), 1);
    CU_ASSERT_EQUAL(s_out[0], '\0');
    /* Plain --if-missing stays quiet on stdout. */
    CU_ASSERT_EQUAL(s_run("keygen --org XI-ISS --keys '%s' --if-missing%s", dir, NULL), 0);
    CU_ASSERT_EQUAL(s_out[0], '\0');
}

static void test_exit_codes(void)
{
    char json[700];
    snprintf(json, sizeof json, "%s/referral.json", pt_harness_dir(s_h));
    /* 2: the broker refuses (no agreement US-ORR <-> GT-PGN in this harness). */
    CU_ASSERT_EQUAL(s_run("send --as US-ORR --to GT-PGN --type referral.request --case CASE-CLI-2 "
                          "--json '%s'%s",
                          json, NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NO_AGREEMENT"));
    /* 1: invalid JSON names the field. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.json", pt_harness_dir(s_h));
    FILE *file = fopen(bad, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs("{\"child\": {\"sex\": \"SEX_DRAGON\"}}", file);
    fclose(file);
    CU_ASSERT_EQUAL(s_run("send --as MX-DIF --to GT-PGN --type referral.request --case "
                          "CASE-CLI-3 --json '%s'%s",
                          bad, NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "child.sex"));
    /* 1: durations out of range, refused before anything is asked (an age in days
       that overflows milliseconds; an export wait over a day). */
    CU_ASSERT_EQUAL(s_run("audit items --older-than 200000000000d%s%s", NULL, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "--older-than: '200000000000d' is not a duration"));
    CU_ASSERT_EQUAL(s_run("audit export --case C --db x --wait 2d%s%s", NULL, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "at most 1d"));
    CU_ASSERT_EQUAL(s_run("send --as MX-DIF --to GT-PGN --type referral.teleport --case C "
                          "--json '%s'%s",
                          json, NULL),
                    1);
    CU_ASSERT_EQUAL(s_run("frobnicate%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("example nope.nope%s%s", NULL, NULL), 1);
    /* 3: nobody listens there. */
    CU_ASSERT_EQUAL(s_run("send --broker tcp://127.0.0.1:9 --as MX-DIF --to GT-PGN --type "
                          "referral.request --case CASE-CLI-4 --json '%s'%s",
                          json, NULL),
                    3);
    /* Nothing of the refused sends was stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-CLI-2','CASE-CLI-3','CASE-CLI-4')"),
                    0);
}

static void test_types_and_help(void)
{
    CU_ASSERT_EQUAL(s_run("types%s%s", NULL, NULL), 0);
    const char *names[] = {"referral.request", "transfer.request", "tracing.request",
                           "tracing.match", "return.notice", "reintegration.plan"};
    for (int i = 0; i < 6; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, names[i]));
    /* Each subcommand's --help names its own flags and the common ones. */
    static const struct {
        const char *command;
        const char *flags[8];
    } helps[] = {
        {"send", {"--as", "--to", "--type", "--case", "--json", "--json-output", "--broker", NULL}},
        {"recv", {"--as", "--follow", "--timeout", "--json-output", "--keys", NULL}},
        {"trail", {"--case", "--as", "--json-output", "--broker", NULL}},
        {"types", {"--json-output", NULL}},
        {"example", {"TYPE", NULL}},
        {"keygen", {"--org", "--keys", "--if-missing", "--json-output", NULL}},
        {"org", {"add", "list", "disable", "--services", "--json-output", NULL}},
        {"agreement", {"--id", "--between", "--purposes", "--types", "--json-output", NULL}},
        {"overdue", {"--as", "--json-output", NULL}},
        {"queue", {"list", "--json-output", NULL}},
        {"status", {"--json-output", NULL}},
    };
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        CU_ASSERT_EQUAL(s_run("%s --help%s", helps[i].command, NULL), 0);
        for (size_t f = 0; helps[i].flags[f]; f++) {
            if (!strstr(s_out, helps[i].flags[f]))
                fprintf(stderr, "\n`puente %s --help` does not mention %s\n", helps[i].command,
                        helps[i].flags[f]);
            CU_ASSERT_PTR_NOT_NULL(strstr(s_out, helps[i].flags[f]));
        }
    }
    /* The top-level help lists every exit code. */
    CU_ASSERT_EQUAL(s_run("--help%s%s", NULL, NULL), 0);
    const char *codes[] = {"0 ok", "1 usage", "2 rejected by the broker", "REJECT_RATE_LIMITED",
                           "3 cannot reach the broker", "4 recv", "5 audit", "--json-output"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, codes[i]));
}

/* A limit of the broker (REJECT_QUOTA_EXCEEDED here) is a rejection: exit 2, with
   the code and a text saying that nothing was stored. */
static void test_limit_rejection_exits_2(void)
{
    char json[700];
    snprintf(json, sizeof json, "%s/referral.json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    setenv("PUENTE_QUEUE_QUOTA", "1", 1);   /* read by the broker the harness starts */
    int started = pt_harness_broker_start(s_h);
    unsetenv("PUENTE_QUEUE_QUOTA");
    CU_ASSERT_EQUAL_FATAL(started, 0);
    /* GT-PGN acknowledged everything so far: one message fills its quota of 1. */
    CU_ASSERT_EQUAL(s_run("send --as MX-DIF --to GT-PGN --type referral.request --case "
                          "CASE-CLI-Q1 --json '%s'%s",
                          json, NULL),
                    0);
    CU_ASSERT_EQUAL(s_run("send --as MX-DIF --to GT-PGN --type referral.request --case "
                          "CASE-CLI-Q2 --json '%s'%s",
                          json, NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected by the broker (a limit; nothing was stored, "
                                         "run the command again later): REJECT_QUOTA_EXCEEDED "
                                         "(30)"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-CLI-Q2'"),
                    0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("cli", s_suite_init, s_suite_clean);
    CU_add_test(suite, "org add and agreement add", test_org_and_agreement_add);
    CU_add_test(suite, "send, recv, trail", test_send_recv_trail);
    CU_add_test(suite, "exit codes", test_exit_codes);
    CU_add_test(suite, "keygen --if-missing --json-output", test_keygen_if_missing_json);
    CU_add_test(suite, "types and --help", test_types_and_help);
    CU_add_test(suite, "a limit of the broker exits 2", test_limit_rejection_exits_2);
    return pt_cu_main();
}

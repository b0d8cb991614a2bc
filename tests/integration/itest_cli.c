/*  itest_cli — the README's commands, run as a user would run them: the `puente`
    binary against a real broker and PostgreSQL. Checks outputs and exit codes. */
#include <CUnit/Basic.h>
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
        CU_ASSERT_EQUAL(s_run("org add %s", orgs[i], NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, orgs[i]));
    }
    CU_ASSERT_EQUAL(s_run("org add %s", "MX-DIF", NULL), 0); /* idempotent */
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
    CU_ASSERT_EQUAL(s_run("trail --case CASE-CLI-1 --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "acknowledged"));
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
    const char *commands[] = {"send", "recv", "trail", "types", "example", "keygen", "org",
                              "agreement"};
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(s_run("%s --help%s", commands[i], NULL), 0);
        CU_ASSERT(strlen(s_out) + strlen(s_err) > 20);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("cli", s_suite_init, s_suite_clean);
    CU_add_test(suite, "org add and agreement add", test_org_and_agreement_add);
    CU_add_test(suite, "send, recv, trail", test_send_recv_trail);
    CU_add_test(suite, "exit codes", test_exit_codes);
    CU_add_test(suite, "types and --help", test_types_and_help);
    return pt_cu_main();
}

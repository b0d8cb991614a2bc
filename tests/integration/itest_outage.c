/*  itest_outage — PostgreSQL stops under a running broker and comes back. The
    broker stays up, refuses submissions with REJECT_RETRY_LATER (nothing stored,
    nothing receipted), the CLI exits 3, and once the database is back the broker
    resumes by itself: the same message goes through and is delivered. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"

static pt_harness_t *s_h;

static int s_suite_init(void)
{
    s_h = pt_harness_new("outage");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

static int s_pg(const char *verb)
{
    const char *dir = getenv("PUENTE_TEST_PGDIR");
    const char *port = getenv("PUENTE_TEST_PGPORT");
    if (!dir || !port)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tests/lib/pgcluster.sh %s '%s' %s >/dev/null 2>&1", verb, dir,
             strcmp(verb, "start") == 0 ? port : "");
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_database_outage(void)
{
    const char *type_name = "referral.request";
    const pt_type_t *type = pt_types_find(type_name);
    size_t len = 0;
    uint8_t *bytes = pt_harness_example_body(type_name, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);

    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_EQUAL_FATAL(s_pg("stop"), 0);

    const char *to[1] = {"GT-PGN"};
    /* A referral needs consent for services and disclosure (issue 3 consent gate). */
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    pt_send_t msg = {.message_type = type_name, .recipients = to, .n_recipients = 1,
                     .case_token = "CASE-OUTAGE-1", .consent = &consent, .body = bytes,
                     .body_len = len};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    /* The SDK resubmits on RETRY_LATER until its timeout, then reports the reject. */
    pt_client_result_t rc = pt_client_send(mx, &msg, &receipt, &rej);
    CU_ASSERT_EQUAL(rc, PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER);

    /* The CLI says "cannot reach the database": exit 3. */
    char out[4096], errout[4096], json[700], command[1600];
    snprintf(json, sizeof json, "%s/ref.json", pt_harness_dir(s_h));
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(type->example_json, file);
    fclose(file);
    snprintf(command, sizeof command,
             "%s send --timeout 3s --as MX-DIF --to GT-PGN --type referral.request --case "
             "CASE-OUTAGE-2 --json '%s'",
             getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente", json);
    CU_ASSERT_EQUAL(pt_harness_sh(s_h, command, out, sizeof out, errout, sizeof errout), 3);

    /* The broker is still up and answers. */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL(op);
    pt_client_destroy(&op);

    /* Database back: the broker resumes by itself. */
    CU_ASSERT_EQUAL_FATAL(s_pg("start"), 0);
    msg.case_token = "CASE-OUTAGE-3";
    rc = PT_CLIENT_REJECTED;
    for (int i = 0; i < 20 && rc != PT_CLIENT_OK; i++) {
        rc = pt_client_send(mx, &msg, &receipt, &rej);
        if (rc != PT_CLIENT_OK)
            usleep(500 * 1000);
    }
    CU_ASSERT_EQUAL_FATAL(rc, PT_CLIENT_OK);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    pt_message_t *got = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 5000, &got), PT_CLIENT_OK);
    CU_ASSERT_STRING_EQUAL(pt_message_header(got)->case_token, "CASE-OUTAGE-3");
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(got)), PT_CLIENT_OK);
    pt_message_destroy(&got);
    /* Nothing refused during the outage was stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-OUTAGE-1','CASE-OUTAGE-2')"),
                    0);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
    free(bytes);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("outage", s_suite_init, s_suite_clean);
    CU_add_test(suite, "database stopped and started under a running broker",
                test_database_outage);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

/*  itest_admin — issue 6's operator commands against a real broker and PostgreSQL,
    through the `puente` binary (outputs and exit codes) and the SDK (the refusal
    of every operation to a non-operator). */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static char s_json[700];
static char s_out[65536], s_err[8192];

static int s_run(const char *fmt, const char *a, const char *b)
{
    return pt_harness_cli(s_h, s_out, sizeof s_out, s_err, sizeof s_err, fmt, a ? a : "",
                          b ? b : "");
}

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("admin", NULL);
    if (!s_h)
        return 1;
    snprintf(s_json, sizeof s_json, "%s/referral.json", pt_harness_dir(s_h));
    if (s_run("example referral.request%s%s", NULL, NULL) != 0)
        return 1;
    FILE *file = fopen(s_json, "w");
    if (!file)
        return 1;
    fputs(s_out, file);
    fclose(file);
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

static int s_send(const char *from, const char *to, const char *case_token)
{
    char args[1200];
    snprintf(args, sizeof args,
             "send --as %s --to %s --type referral.request --case %s --json '%s'", from, to,
             case_token, s_json);
    return s_run("%s%s", args, NULL);
}

static void test_org_list_show(void)
{
    CU_ASSERT_EQUAL_FATAL(s_run("org list%s%s", NULL, NULL), 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, pt_harness_orgs[i]));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "ENABLED"));
    CU_ASSERT_EQUAL_FATAL(s_run("org list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"org_id\": \"HN-DINAF\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"enabled\": true"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "\"enabled\": false"));

    CU_ASSERT_EQUAL_FATAL(s_run("org show %s%s", "GT-PGN", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "org:          GT-PGN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "sign key id:"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "MX-DIF"));
    /* Unknown organisation: the broker refuses (2). Bad id: usage (1). */
    CU_ASSERT_EQUAL(s_run("org show %s%s", "XX-NOPE", NULL), 2);
    CU_ASSERT_EQUAL(s_run("org show %s%s", "not an id", NULL), 1);
}

static void test_org_disable(void)
{
    CU_ASSERT_EQUAL_FATAL(s_send("MX-DIF", "HN-DINAF", "CASE-ADM-1"), 0);
    /* A connection opened before the disable... */
    pt_client_t *open_before = pt_harness_client(s_h, "HN-DINAF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(open_before);
    CU_ASSERT_EQUAL(pt_client_directory_refresh(open_before, NULL, 0), PT_CLIENT_OK);
    CU_ASSERT_EQUAL_FATAL(s_run("org disable %s%s", "HN-DINAF", NULL), 0);
    /* ...is refused from then on (ZAP only checks when a connection opens). */
    CU_ASSERT_EQUAL(pt_client_directory_refresh(open_before, NULL, 0), PT_CLIENT_REJECTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(open_before), "disabled"));
    pt_client_destroy(&open_before);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "HN-DINAF disabled"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM organisations "
                                              "WHERE org_id = 'HN-DINAF' AND NOT enabled"),
                    1);
    CU_ASSERT_EQUAL(s_run("org list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"enabled\": false"));
    /* Messages to it are refused. */
    CU_ASSERT_EQUAL(s_send("MX-DIF", "HN-DINAF", "CASE-ADM-2"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_UNKNOWN_RECIPIENT"));
    /* Its client can no longer connect (ZAP refuses the key). */
    CU_ASSERT_NOT_EQUAL(s_run("recv --as %s --timeout 2s%s", "HN-DINAF", NULL), 0);
    pt_client_t *c = pt_harness_client(s_h, "HN-DINAF", 0);
    CU_ASSERT_PTR_NULL(c);
    pt_client_destroy(&c);
    /* Enabled again: both work again. */
    CU_ASSERT_EQUAL_FATAL(s_run("org enable %s%s", "HN-DINAF", NULL), 0);
    CU_ASSERT_EQUAL(s_send("MX-DIF", "HN-DINAF", "CASE-ADM-3"), 0);
    c = pt_harness_client(s_h, "HN-DINAF", 0);
    CU_ASSERT_PTR_NOT_NULL(c);
    pt_client_destroy(&c);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages "
                                              "WHERE case_token = 'CASE-ADM-2'"),
                    0);
}

static void test_agreement_list_revoke(void)
{
    CU_ASSERT_EQUAL_FATAL(s_run("agreement list%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "AGR-MX-DIF-GT-PGN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "AGR-HN-DINAF-US-ORR"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "AGR-SV-CONNA-US-ORR"));
    CU_ASSERT_EQUAL_FATAL(s_send("MX-DIF", "US-ORR", "CASE-ADM-4"), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("agreement revoke %s%s", "AGR-MX-DIF-US-ORR", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "AGR-MX-DIF-US-ORR revoked"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM agreements WHERE agreement_id "
                                              "= 'AGR-MX-DIF-US-ORR' AND valid_until <= now()"),
                    1);
    CU_ASSERT_EQUAL(s_send("MX-DIF", "US-ORR", "CASE-ADM-5"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NO_AGREEMENT"));
    /* The other agreements are untouched. */
    CU_ASSERT_EQUAL(s_send("MX-DIF", "GT-PGN", "CASE-ADM-6"), 0);
    CU_ASSERT_EQUAL(s_run("agreement list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"agreement_id\": \"AGR-MX-DIF-US-ORR\""));
    CU_ASSERT_EQUAL(s_run("agreement revoke %s%s", "AGR-NOPE", NULL), 2);
}

static void test_queue_list_and_status(void)
{
    /* Nobody received: GT-PGN, HN-DINAF and US-ORR have backlogs from the tests above. */
    CU_ASSERT_EQUAL_FATAL(s_run("queue list%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "RECIPIENT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "GT-PGN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "HN-DINAF"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "SV-CONNA"));
    CU_ASSERT_EQUAL_FATAL(s_run("queue list --json-output%s%s", NULL, NULL), 0);
    /* HN-DINAF: CASE-ADM-1 and CASE-ADM-3. */
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"recipient\": \"HN-DINAF\",\n      \"depth\": 2"));

    CU_ASSERT_EQUAL_FATAL(s_run("status%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "broker version:  0."));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "database:        reachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "migrations:      current"));
    CU_ASSERT_EQUAL_FATAL(s_run("status --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"organisations\": 5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"queued_total\": 4"));
    /* Unreachable broker: 3. */
    CU_ASSERT_EQUAL(s_run("status --broker tcp://127.0.0.1:9 --timeout 1s%s%s", NULL, NULL), 3);
}

static void test_not_operator(void)
{
    pt_client_t *c = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    Puente__V1__OrgListRequest org_list = PUENTE__V1__ORG_LIST_REQUEST__INIT;
    Puente__V1__OrgEnable enable = PUENTE__V1__ORG_ENABLE__INIT;
    enable.org_id = "GT-PGN";
    Puente__V1__AgreementListRequest ag_list = PUENTE__V1__AGREEMENT_LIST_REQUEST__INIT;
    Puente__V1__QueueListRequest q_list = PUENTE__V1__QUEUE_LIST_REQUEST__INIT;
    Puente__V1__StatusRequest status = PUENTE__V1__STATUS_REQUEST__INIT;
    for (int op = 0; op < 7; op++) {
        Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
        switch (op) {
        case 0: req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_LIST; req.org_list = &org_list; break;
        case 1: req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW; req.org_show = "GT-PGN"; break;
        case 2: req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ENABLE; req.org_enable = &enable; break;
        case 3:
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_LIST;
            req.agreement_list = &ag_list;
            break;
        case 4:
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_REVOKE;
            req.agreement_revoke = "AGR-MX-DIF-GT-PGN";
            break;
        case 5: req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST; req.queue_list = &q_list; break;
        default: req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_STATUS; req.status = &status; break;
        }
        Puente__V1__AdminReply *reply = NULL;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        CU_ASSERT_EQUAL(pt_client_admin_reply(c, &req, &reply, &rej), PT_CLIENT_REJECTED);
        CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_NOT_PERMITTED);
        CU_ASSERT_PTR_NULL(reply);
        if (reply)
            puente__v1__admin_reply__free_unpacked(reply, NULL);
    }
    pt_client_destroy(&c);
    /* Nothing changed: GT-PGN enabled, its agreement with MX-DIF open. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM organisations "
                                              "WHERE org_id = 'GT-PGN' AND enabled"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM agreements WHERE agreement_id "
                                              "= 'AGR-MX-DIF-GT-PGN' AND valid_until IS NULL"),
                    1);
}

/* SIGHUP reloads what was changed in the database behind the broker's back,
   while a client connected before the signal keeps being served. */
static void test_sighup_reload(void)
{
    pt_client_t *held = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    CU_ASSERT_EQUAL_FATAL(pt_harness_sql_exec(s_h, NULL, "UPDATE organisations SET enabled = false "
                                                         "WHERE org_id = 'SV-CONNA'"),
                          0);
    /* Not seen before the signal: the directory is the broker's. */
    CU_ASSERT_EQUAL(s_send("MX-DIF", "SV-CONNA", "CASE-ADM-7"), 0);
    CU_ASSERT_EQUAL_FATAL(kill(pt_harness_broker_pid(s_h), SIGHUP), 0);
    int seen = 0;
    for (int i = 0; i < 50 && !seen; i++) {
        usleep(100 * 1000);
        seen = s_run("org show %s --json-output%s", "SV-CONNA", NULL) == 0 &&
               strstr(s_out, "\"enabled\": false") != NULL;
    }
    CU_ASSERT_TRUE(seen);
    CU_ASSERT_EQUAL(s_send("MX-DIF", "SV-CONNA", "CASE-ADM-8"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_UNKNOWN_RECIPIENT"));
    /* The connection made before the signal is still served. */
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    CU_ASSERT_EQUAL(pt_client_trail(held, "CASE-ADM-7", &trail, &rej), PT_CLIENT_OK);
    CU_ASSERT(trail && trail->n_events >= 2);
    if (trail)
        puente__v1__trail_reply__free_unpacked(trail, NULL);
    pt_client_destroy(&held);
    /* Enabled again in the database, reloaded again: reachable again. */
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, NULL, "UPDATE organisations SET enabled = true "
                                                   "WHERE org_id = 'SV-CONNA'"),
                    0);
    CU_ASSERT_EQUAL_FATAL(kill(pt_harness_broker_pid(s_h), SIGHUP), 0);
    int back = 0;
    for (int i = 0; i < 50 && !back; i++) {
        usleep(100 * 1000);
        back = s_send("MX-DIF", "SV-CONNA", "CASE-ADM-9") == 0;
    }
    CU_ASSERT_TRUE(back);
}

static void test_help(void)
{
    const char *cmds[] = {"org --help", "agreement --help", "queue --help", "status --help"};
    const char *words[] = {"disable", "revoke", "oldest", "uptime"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(s_run("%s%s", cmds[i], NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, words[i]));
    }
    CU_ASSERT_EQUAL(s_run("queue frob%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("org frob%s%s", NULL, NULL), 1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("admin", s_suite_init, s_suite_clean);
    CU_add_test(suite, "org list and show", test_org_list_show);
    CU_add_test(suite, "org disable and enable", test_org_disable);
    CU_add_test(suite, "agreement list and revoke", test_agreement_list_revoke);
    CU_add_test(suite, "queue list and status", test_queue_list_and_status);
    CU_add_test(suite, "non-operator refused", test_not_operator);
    CU_add_test(suite, "SIGHUP reload", test_sighup_reload);
    CU_add_test(suite, "help and usage", test_help);
    return pt_cu_main();
}

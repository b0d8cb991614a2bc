/*  itest_consent — consent withdrawal fan-out and field minimisation against a real
    broker and PostgreSQL (issue 3). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

static pt_harness_t *s_h;

static int s_suite_init(void)
{
    s_h = pt_harness_new("consent");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

static pt_client_result_t s_send(pt_client_t *client, const char *const *to, size_t n_to,
                                 const char *type, const char *case_token, const char *agreement,
                                 pt_receipt_info_t *receipt, pt_reject_info_t *rej)
{
    size_t len = 0;
    uint8_t *body = pt_harness_example_body(type, &len);
    if (!body)
        return PT_CLIENT_INVALID;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.consent_for_tracing = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    pt_send_t msg = {.message_type = type, .recipients = to, .n_recipients = n_to,
                     .case_token = case_token, .agreement_id = agreement, .consent = &consent,
                     .body = body, .body_len = len};
    memset(rej, 0, sizeof *rej);
    pt_client_result_t rc = pt_client_send(client, &msg, receipt, rej);
    free(body);
    return rc;
}

/* Receives one message for client and acks it; returns its type name or "" . */
static void s_recv_ack(pt_client_t *client, const char *expected_type, const char *case_token)
{
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(client, 5000, &msg), PT_CLIENT_OK);
    CU_ASSERT_STRING_EQUAL(pt_message_type(msg)->name, expected_type);
    CU_ASSERT_STRING_EQUAL(pt_message_header(msg)->case_token, case_token);
    CU_ASSERT_EQUAL(pt_client_ack(client, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);
}

static size_t s_pending(pt_client_t *op, const char *case_token, const char *must_contain)
{
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    if (pt_client_trail(op, case_token, &trail, &rej) != PT_CLIENT_OK)
        return (size_t)-1;
    size_t n = trail->n_pending_acknowledgement;
    int found = must_contain == NULL;
    for (size_t i = 0; i < n; i++)
        if (must_contain && strcmp(trail->pending_acknowledgement[i], must_contain) == 0)
            found = 1;
    puente__v1__trail_reply__free_unpacked(trail, NULL);
    return found ? n : (size_t)-2;
}

/* `puente trail --case TOKEN` as the operator; its exit status, stdout in out. */
static int s_trail_cli(const char *case_token, char *out, size_t cap)
{
    char err[4096], command[1200];
    snprintf(command, sizeof command, "%s trail --case %s",
             getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente", case_token);
    return pt_harness_sh(s_h, command, out, cap, err, sizeof err);
}

/* Number of lines of out starting with "awaiting acknowledgement". */
static int s_awaiting_lines(const char *out)
{
    int n = 0;
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, "awaiting acknowledgement", 24) == 0;
    return n;
}

static void test_withdrawal_fans_out_and_is_tracked(void)
{
    const char *case_token = "CASE-WITHDRAW-1";
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 1);
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx && gt && hn && op);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    const char *to_gt[1] = {"GT-PGN"}, *to_hn[1] = {"HN-DINAF"};
    CU_ASSERT_EQUAL_FATAL(s_send(mx, to_gt, 1, "referral.request", case_token, NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    CU_ASSERT_EQUAL_FATAL(s_send(mx, to_hn, 1, "referral.request", case_token, NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    s_recv_ack(gt, "referral.request", case_token);
    s_recv_ack(hn, "referral.request", case_token);

    /* Who received data about the case: both, answered to a party. */
    char **orgs = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(pt_client_recipients(mx, case_token, &orgs, &n, &rej), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(n, 2);
    puente_strings_free(orgs, n);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    CU_ASSERT_EQUAL(pt_client_recipients(us, case_token, &orgs, &n, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, REJ(REJECT_NOT_PERMITTED));
    pt_client_destroy(&us);

    /* A withdrawal to a subset is refused: it must reach everyone. */
    CU_ASSERT_EQUAL(s_send(mx, to_gt, 1, "consent.withdraw", case_token, NULL, &receipt, &rej),
                    PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, REJ(REJECT_FANOUT_INCOMPLETE));

    /* No recipients given: the SDK asks the broker and seals to every one. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, NULL, 0, "consent.withdraw", case_token, NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    CU_ASSERT_EQUAL(s_pending(op, case_token, "GT-PGN"), 2);
    s_recv_ack(gt, "consent.withdraw", case_token);
    CU_ASSERT_EQUAL(s_pending(op, case_token, "HN-DINAF"), 1);
    s_recv_ack(hn, "consent.withdraw", case_token);
    CU_ASSERT_EQUAL(s_pending(op, case_token, NULL), 0);

    /* The CLI shows the list while it is not empty. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, NULL, 0, "case.erasure_request", case_token, NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    char out[16384];
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_awaiting_lines(out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nawaiting acknowledgement: GT-PGN, HN-DINAF\n"));
    s_recv_ack(gt, "case.erasure_request", case_token);
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nawaiting acknowledgement: HN-DINAF\n"));
    s_recv_ack(hn, "case.erasure_request", case_token);
    CU_ASSERT_EQUAL(s_pending(op, case_token, NULL), 0);
    /* Every acknowledgement in: the line is gone. */
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_awaiting_lines(out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "acknowledged"));

    pt_client_destroy(&op);
    pt_client_destroy(&hn);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

static void s_use_min_agreement(Puente__V1__Header *header, void *arg)
{
    (void)arg;
    header->agreement_id = "AGR-MIN";
}

static void test_field_minimisation(void)
{
    /* An agreement that lets only a few fields of a referral through. */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    char *purposes[] = {"service_provision"};
    char *types[] = {"referral.*"};
    char *fields[] = {"referral_id", "services", "child.sex", "consent"};
    Puente__V1__FieldSet set = PUENTE__V1__FIELD_SET__INIT;
    set.purpose = "service_provision";
    set.fields = fields;
    set.n_fields = 4;
    Puente__V1__FieldSet *sets[1] = {&set};
    Puente__V1__AgreementSpec spec = PUENTE__V1__AGREEMENT_SPEC__INIT;
    spec.agreement_id = "AGR-MIN";
    spec.org_a = "MX-DIF";
    spec.org_b = "SV-CONNA";
    spec.purposes = purposes;
    spec.n_purposes = 1;
    spec.message_types = types;
    spec.n_message_types = 1;
    spec.field_sets = sets;
    spec.n_field_sets = 1;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD;
    req.agreement_add = &spec;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(pt_client_admin(op, &req, NULL, &rej), PT_CLIENT_OK);
    pt_client_destroy(&op);

    /* The sending SDK refuses the full example before sealing, naming a field. */
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    const char *to_sv[1] = {"SV-CONNA"};
    pt_receipt_info_t receipt;
    CU_ASSERT_NOT_EQUAL(s_send(mx, to_sv, 1, "referral.request", "CASE-MIN-1", "AGR-MIN",
                               &receipt, &rej),
                        PT_CLIENT_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(mx), "outside the agreement"));
    pt_client_destroy(&mx);

    /* So does the CLI: exit 1. */
    char json[700], out[4096], err[4096], command[1600];
    snprintf(json, sizeof json, "%s/ref.json", pt_harness_dir(s_h));
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(pt_types_find("referral.request")->example_json, file);
    fclose(file);
    snprintf(command, sizeof command,
             "%s send --as MX-DIF --to SV-CONNA --agreement AGR-MIN --type referral.request "
             "--case CASE-MIN-2 --json '%s'",
             getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente", json);
    CU_ASSERT_EQUAL(pt_harness_sh(s_h, command, out, sizeof out, err, sizeof err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "outside the agreement"));

    /* A sender that bypasses its SDK: the broker routes it (it cannot read the
       payload), the receiving SDK refuses it and does not acknowledge it. */
    uint8_t *env = NULL;
    size_t env_len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_harness_envelope(s_h, "MX-DIF", "SV-CONNA", "referral.request",
                                              "CASE-MIN-3", s_use_min_agreement, NULL, &env,
                                              &env_len),
                          0);
    Puente__V1__Envelope *envelope = puente__v1__envelope__unpack(NULL, env_len, env);
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = envelope;
    pt_raw_t *raw = pt_raw_new(s_h, "MX-DIF");
    CU_ASSERT_EQUAL(pt_raw_send_frame(raw, &frame), 0);
    Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
    CU_ASSERT_EQUAL(reply->body_case, PUENTE__V1__BROKER_FRAME__BODY_RECEIPT);
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    pt_raw_destroy(&raw);
    puente__v1__envelope__free_unpacked(envelope, NULL);
    free(env);

    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(sv, 5000, &msg), PT_CLIENT_REFUSED);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(sv), "outside the agreement"));
    pt_client_destroy(&sv);
    usleep(200 * 1000);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-MIN-3' AND d.acked_at IS NULL"),
                    1);
}

static void test_possible_match_is_not_minimised_away(void)
{
    /* tracing.match carries only a comparison vector and an opaque token: it passes
       even a field set that names nothing personal. */
    const char *allowed[] = {"tracing_request_id", "trace_id", "candidate_token", "score",
                             "likelihood", "comparison"};
    const pt_type_t *type = pt_types_find("tracing.match");
    CU_ASSERT_PTR_NOT_NULL_FATAL(type);
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES], offending[128] = "";
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(type->descriptor, type->example_json,
                                             strlen(type->example_json), &msg, err, sizeof err),
                          0);
    CU_ASSERT_EQUAL(puente_fields_check(msg, allowed, 6, offending, sizeof offending), 0);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* A referral revocation reaches the referral's recipient (the only organisation
   that received that referral) and is tracked until it acknowledges it. */
static void test_referral_revoke_tracked(void)
{
    const char *case_token = "CASE-REVOKE-1";
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx && gt && op);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    const char *to_gt[1] = {"GT-PGN"};
    CU_ASSERT_EQUAL_FATAL(
        s_send(mx, to_gt, 1, "referral.request", case_token, NULL, &receipt, &rej), PT_CLIENT_OK);
    uint8_t correlation[16];
    memcpy(correlation, receipt.correlation_id, 16);
    s_recv_ack(gt, "referral.request", case_token);
    char out[16384];
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_awaiting_lines(out), 0); /* a referral is not tracked */
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.revoke", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    pt_send_t revoke = {.message_type = "referral.revoke",
                        .recipients = to_gt,
                        .n_recipients = 1,
                        .case_token = case_token,
                        .correlation_id = correlation,
                        .body = body,
                        .body_len = len};
    CU_ASSERT_EQUAL_FATAL(pt_client_send(mx, &revoke, &receipt, &rej), PT_CLIENT_OK);
    free(body);
    CU_ASSERT_EQUAL(s_pending(op, case_token, "GT-PGN"), 1);
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_awaiting_lines(out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nawaiting acknowledgement: GT-PGN\n"));
    s_recv_ack(gt, "referral.revoke", case_token);
    CU_ASSERT_EQUAL(s_pending(op, case_token, NULL), 0);
    CU_ASSERT_EQUAL(s_trail_cli(case_token, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_awaiting_lines(out), 0);
    /* The trail shows GT-PGN's acknowledgement of the revocation. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE "
                                              "case_token = 'CASE-REVOKE-1' AND kind = "
                                              "'acknowledged' AND actor = 'GT-PGN' AND "
                                              "message_type = 'referral.revoke'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE "
                                              "case_token = 'CASE-REVOKE-1' AND state = 'revoked'"),
                    1);
    pt_client_destroy(&op);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("consent", s_suite_init, s_suite_clean);
    CU_add_test(suite, "withdrawal fans out and acknowledgements are tracked",
                test_withdrawal_fans_out_and_is_tracked);
    CU_add_test(suite, "referral revocation tracked until acknowledged",
                test_referral_revoke_tracked);
    CU_add_test(suite, "field minimisation at sender and recipient", test_field_minimisation);
    CU_add_test(suite, "possible match carries no personal fields",
                test_possible_match_is_not_minimised_away);
    return pt_cu_main();
}

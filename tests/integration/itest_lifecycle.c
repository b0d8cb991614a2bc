/*  itest_lifecycle — case lifecycles, consent and need-to-know against a real
    broker and PostgreSQL (issue 3): one scenario per family, then the refusals.
    Final states are read from the trail's "state:*" events. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_types.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

static pt_harness_t *s_h;

/* US-ORR and SV-CONNA have no agreement in the demo set: give them one for
   family tracing only (so a referral between them is outside the agreement). */
static int s_tracing_agreement(void)
{
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    if (!op)
        return -1;
    char *purposes[] = {"family_tracing"};
    char *types[] = {"tracing.*"};
    Puente__V1__AgreementSpec spec = PUENTE__V1__AGREEMENT_SPEC__INIT;
    spec.agreement_id = "AGR-TRACING-SV-CONNA-US-ORR";
    spec.org_a = "SV-CONNA";
    spec.org_b = "US-ORR";
    spec.purposes = purposes;
    spec.n_purposes = 1;
    spec.message_types = types;
    spec.n_message_types = 1;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD;
    req.agreement_add = &spec;
    pt_reject_info_t rej;
    int rc = pt_client_admin(op, &req, NULL, &rej) == PT_CLIENT_OK ? 0 : -1;
    pt_client_destroy(&op);
    return rc;
}

static int s_suite_init(void)
{
    s_h = pt_harness_new("lifecycle");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0 ||
        s_tracing_agreement() != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

typedef struct {
    const char *type, *case_token;
    const char *to[4];
    const uint8_t *correlation;
    const char *reason, *bia;
    const Puente__V1__ConsentSummary *consent;   /* NULL = every flag given */
    int64_t respond_by_ms;
    const char *service_type;
    int64_t follow_up_due_ms;
} s_msg_t;

/* Sends m from client with the type's example body. Returns the reject code
   (0 on receipt, -1 on any other failure); *corr receives the correlation id. */
static int s_send(pt_client_t *client, const s_msg_t *m, uint8_t *corr)
{
    size_t len = 0;
    uint8_t *bytes = pt_harness_example_body(m->type, &len);
    if (!bytes)
        return -1;
    Puente__V1__ConsentSummary all = PUENTE__V1__CONSENT_SUMMARY__INIT;
    all.consent_for_services = all.disclosure_other_orgs = all.consent_for_tracing = 1;
    all.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    size_t n_to = 0;
    while (n_to < 4 && m->to[n_to])
        n_to++;
    pt_send_t msg = {.message_type = m->type,
                     .recipients = m->to,
                     .n_recipients = n_to,
                     .case_token = m->case_token,
                     .correlation_id = m->correlation,
                     .consent = m->consent ? m->consent : &all,
                     .reason_code = m->reason,
                     .best_interests_ref = m->bia,
                     .respond_by_ms = m->respond_by_ms,
                     .service_type = m->service_type,
                     .follow_up_due_ms = m->follow_up_due_ms,
                     .body = bytes,
                     .body_len = len};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_client_result_t rc = pt_client_send(client, &msg, &receipt, &rej);
    free(bytes);
    if (rc == PT_CLIENT_OK) {
        if (corr)
            memcpy(corr, receipt.correlation_id, 16);
        return 0;
    }
    if (rc == PT_CLIENT_REJECTED) {
        fprintf(stderr, "\n    (expected?) %s refused: %s %s\n", m->type, rej.code_name, rej.reason);
        return rej.code;
    }
    return -1;
}

/* Receives and acknowledges messages for a receiving client until one of
   expected_type arrives (others, e.g. a tracing request fanned out earlier or the
   twenty accepts test_answer_at_once sent to MX-DIF, are acknowledged and
   skipped). */
static void s_take(pt_client_t *receiver, const char *expected_type)
{
    int found = 0;
    for (int i = 0; i < 64 && !found; i++) {
        pt_message_t *msg = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(receiver, 5000, &msg), PT_CLIENT_OK);
        found = strcmp(pt_message_type(msg)->name, expected_type) == 0;
        CU_ASSERT_EQUAL(pt_client_ack(receiver, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
    }
    CU_ASSERT_TRUE(found);
}

/* Submits an envelope built by pt_harness_envelope (sender -> recipient, example
   body, header edited by mutate) over a raw socket: the broker's answer code (0 on
   a receipt, -1 on no answer). For headers the SDK would refuse to build. */
static int s_raw_submit(const char *sender, const char *recipient, const char *type,
                        const char *case_token, void (*mutate)(Puente__V1__Header *, void *))
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (pt_harness_envelope(s_h, sender, recipient, type, case_token, mutate, NULL, &bytes, &len) !=
        0)
        return -1;
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    free(bytes);
    pt_raw_t *raw = env ? pt_raw_new(s_h, sender) : NULL;
    int code = -1;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = env;
    if (raw && pt_raw_send_frame(raw, &frame) == 0) {
        Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 10000);
        if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT)
            code = reply->reject->code;
        else if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT)
            code = 0;
        if (reply)
            puente__v1__broker_frame__free_unpacked(reply, NULL);
    }
    pt_raw_destroy(&raw);
    if (env)
        puente__v1__envelope__free_unpacked(env, NULL);
    return code;
}

static void s_no_countries(Puente__V1__Header *h, void *arg)
{
    (void)arg;
    h->n_search_countries = 0;
}

static void s_no_service_type(Puente__V1__Header *h, void *arg)
{
    (void)arg;
    h->service_type = "";
}

/* The trail's event kinds starting with prefix, joined by ' ' (operator view);
   also checks the hash chain links. */
static void s_trail_kinds(const char *case_token, const char *prefix, char *out, size_t cap)
{
    out[0] = '\0';
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(pt_client_trail(op, case_token, &trail, &rej), PT_CLIENT_OK);
    for (size_t i = 0; i < trail->n_events; i++) {
        const Puente__V1__TrailEvent *ev = trail->events[i];
        CU_ASSERT_EQUAL(ev->seq, i + 1);
        if (i > 0)
            CU_ASSERT_EQUAL(memcmp(ev->prev_hash.data, trail->events[i - 1]->hash.data, 32), 0);
        if (strncmp(ev->kind, prefix, strlen(prefix)) != 0)
            continue;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", used ? " " : "", ev->kind + strlen(prefix));
    }
    puente__v1__trail_reply__free_unpacked(trail, NULL);
    pt_client_destroy(&op);
}

/* A recipient that holds the message can answer it at once: an accept sent the
   moment pt_client_recv returns (before any ack, perhaps before the broker
   recorded the send) is never REJECT_ILLEGAL_TRANSITION (answers are legal from
   "submitted", broker/lifecycle.c). Twenty rounds, each on a new thread. */
static void test_answer_at_once(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    int accepted = 0;
    for (int round = 0; round < 20; round++) {
        char c[40];
        snprintf(c, sizeof c, "CASE-LC-FAST-%02d", round);
        uint8_t corr[16];
        CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}}, corr), 0);
        pt_message_t *msg = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 10000, &msg), PT_CLIENT_OK);
        CU_ASSERT_STRING_EQUAL(pt_message_header(msg)->case_token, c);
        int rc = s_send(gt, &(s_msg_t){"referral.accept", c, {"MX-DIF"}, corr}, NULL);
        CU_ASSERT_EQUAL(rc, 0);
        accepted += rc == 0;
        CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
        char kinds[256];
        s_trail_kinds(c, "state:", kinds, sizeof kinds);
        CU_ASSERT_STRING_EQUAL(kinds, "submitted delivered accepted");
    }
    CU_ASSERT_EQUAL(accepted, 20);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

static void test_referral_accepted_and_done(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    uint8_t corr[16];
    const char *c = "CASE-LC-REF-1";
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}}, corr), 0);
    s_take(gt, "referral.request");
    /* Only the recipient accepts. */
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.accept", c, {"GT-PGN"}, corr}, NULL),
                    REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.accept", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.progress", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.done", c, {"MX-DIF"}, corr}, NULL), 0);
    /* Done is final: even the sender can no longer revoke. */
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.revoke", c, {"GT-PGN"}, corr}, NULL),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    char kinds[512];
    s_trail_kinds(c, "state:", kinds, sizeof kinds);
    CU_ASSERT_STRING_EQUAL(kinds, "submitted delivered received accepted in_progress done");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token "
                                              "= 'CASE-LC-REF-1' AND state = 'done'"),
                    1);

    /* A second referral: a rejection needs a reason. */
    const char *c2 = "CASE-LC-REF-2";
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c2, {"GT-PGN"}}, corr), 0);
    s_take(gt, "referral.request");
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.reject", c2, {"MX-DIF"}, corr}, NULL),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.reject", c2, {"MX-DIF"}, corr, "no_capacity"},
                           NULL),
                    0);
    s_trail_kinds(c2, "state:", kinds, sizeof kinds);
    CU_ASSERT_STRING_EQUAL(kinds, "submitted delivered received rejected");
    /* A later message of a lifecycle needs its correlation id. */
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.accept", c2, {"MX-DIF"}}, NULL),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

static void test_tracing_fan_out_to_reunification(void)
{
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    uint8_t corr[16];
    const char *c = "CASE-LC-TRACE-1";
    /* The example trace request searches GT, HN and SV (header search_countries):
       it must reach exactly their registered focal points. MX-DIF is a focal
       point, but of a country not searched; leaving SV-CONNA out is refused. */
    CU_ASSERT_EQUAL(
        s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF", "SV-CONNA", "MX-DIF"}},
               NULL),
        REJ(REJECT_NOT_FOCAL_POINT));
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF"}}, NULL),
                    REJ(REJECT_FANOUT_INCOMPLETE));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-LC-TRACE-1'"),
                    0);
    CU_ASSERT_EQUAL_FATAL(
        s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF", "SV-CONNA"}}, corr), 0);
    /* Fan-out: one delivery per focal point. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-LC-TRACE-1'"),
                    3);
    s_take(hn, "tracing.request");
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"tracing.match", c, {"US-ORR"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.verify", c, {"HN-DINAF"}, corr}, NULL), 0);
    /* Verified needs the child's agreement and the family's willingness. */
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"tracing.verification", c, {"US-ORR"}, corr,
                                          "verified,child_agrees"},
                           NULL),
                    REJ(REJECT_CONSENT_MISSING));
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"tracing.verification", c, {"US-ORR"}, corr,
                                          "verified,child_agrees,family_willing"},
                           NULL),
                    0);
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.reunification_plan", c, {"HN-DINAF"}, corr},
                           NULL),
                    REJ(REJECT_BEST_INTERESTS_REQUIRED));
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.reunification_plan", c, {"HN-DINAF"}, corr,
                                          NULL, "TEST-BID-HN-0007"},
                           NULL),
                    0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"tracing.reunify", c, {"US-ORR"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.close", c, {"HN-DINAF"}, corr}, NULL), 0);
    char kinds[512];
    s_trail_kinds(c, "state:", kinds, sizeof kinds);
    CU_ASSERT_STRING_EQUAL(kinds, "open possible_match verification_pending verified "
                                  "reunification_planned reunified closed");
    pt_client_destroy(&hn);
    pt_client_destroy(&us);
}

static void test_return_and_reintegration(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    uint8_t corr[16];
    const char *c = "CASE-LC-RETURN-1";
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"return.notice", c, {"HN-DINAF"}}, corr),
                    REJ(REJECT_BEST_INTERESTS_REQUIRED));
    CU_ASSERT_EQUAL_FATAL(
        s_send(mx, &(s_msg_t){"return.notice", c, {"HN-DINAF"}, NULL, NULL, "TEST-BID-MX-0042"},
               corr),
        0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"return.arrival", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"reintegration.plan", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"reintegration.followup", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"reintegration.followup", c, {"MX-DIF"}, corr}, NULL), 0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"reintegration.close", c, {"MX-DIF"}, corr}, NULL),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"reintegration.close", c, {"MX-DIF"}, corr,
                                          "reintegrated"},
                           NULL),
                    0);
    char kinds[512];
    s_trail_kinds(c, "state:", kinds, sizeof kinds);
    CU_ASSERT_STRING_EQUAL(kinds, "notified arrived planned implementation implementation closed");
    pt_client_destroy(&hn);
    pt_client_destroy(&mx);
}

static void test_consent_and_policy_refusals(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    const char *c = "CASE-LC-CONSENT-1";
    /* Missing consent. */
    Puente__V1__ConsentSummary cs = PUENTE__V1__CONSENT_SUMMARY__INIT;
    cs.disclosure_other_orgs = 1;
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}, NULL, NULL, NULL, &cs},
                           NULL),
                    REJ(REJECT_CONSENT_MISSING));
    /* Override without approver, then a complete one, flagged in the trail. */
    cs.overridden = 1;
    cs.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS;
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}, NULL,
                                          "imminent_risk", NULL, &cs},
                           NULL),
                    REJ(REJECT_OVERRIDE_INCOMPLETE));
    cs.override_approver = "sup-tapachula-2";
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}, NULL,
                                          "imminent_risk", NULL, &cs},
                           NULL),
                    0);
    char kinds[512];
    s_trail_kinds(c, "", kinds, sizeof kinds);
    /* The two refusals are "rejected" events of the case (issue 4), in order, with
       their codes; no message id, no payload. */
    CU_ASSERT_STRING_EQUAL(kinds,
                           "rejected rejected submitted stored consent_overridden state:submitted");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE case_token "
                                              "= 'CASE-LC-CONSENT-1' AND kind = 'rejected' AND "
                                              "message_id IS NULL AND actor = 'MX-DIF' AND "
                                              "counterparty = 'GT-PGN' AND message_type = "
                                              "'referral.request' AND ((seq = 1 AND "
                                              "substr(detail, 1, 4) = int4send(20)) OR (seq = 2 "
                                              "AND substr(detail, 1, 4) = int4send(25)))"),
                    2);
    /* Withhold-from list. */
    char *withheld[1] = {"GT-PGN"};
    Puente__V1__ConsentSummary wh = PUENTE__V1__CONSENT_SUMMARY__INIT;
    wh.consent_for_services = wh.disclosure_other_orgs = 1;
    wh.withhold_from = withheld;
    wh.n_withhold_from = 1;
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.request", "CASE-LC-CONSENT-2", {"GT-PGN"}, NULL,
                                          NULL, NULL, &wh},
                           NULL),
                    REJ(REJECT_WITHHELD));
    /* Purpose outside the agreement (US-ORR/SV-CONNA share tracing only). */
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"referral.request", "CASE-LC-CONSENT-3", {"SV-CONNA"}},
                           NULL),
                    REJ(REJECT_NO_AGREEMENT));
    /* Nothing refused was stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-LC-CONSENT-2','CASE-LC-CONSENT-3')"),
                    0);
    pt_client_destroy(&us);
    pt_client_destroy(&mx);
}

static int s_cli(const char *args, char *out, size_t cap);

static void test_former_owner_after_transfer(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    uint8_t corr[16];
    const char *c = "CASE-LC-TRANSFER-1";
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"transfer.request", c, {"GT-PGN"}}, corr), 0);
    s_take(gt, "transfer.request");
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"transfer.accept", c, {"MX-DIF"}, corr}, NULL), 0);
    /* MX-DIF no longer speaks for the case; GT-PGN does. */
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.request", c, {"HN-DINAF"}}, NULL),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"referral.request", c, {"HN-DINAF"}}, NULL), 0);
    char kinds[512];
    s_trail_kinds(c, "", kinds, sizeof kinds);
    CU_ASSERT_PTR_NOT_NULL(strstr(kinds, "state:accepted owner_changed"));
    /* The former owner's refused message is a "rejected" event (code 22). */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE case_token "
                                              "= 'CASE-LC-TRANSFER-1' AND kind = 'rejected' AND "
                                              "actor = 'MX-DIF' AND counterparty = 'HN-DINAF' AND "
                                              "message_type = 'referral.request' AND "
                                              "substr(detail, 1, 4) = int4send(22)"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_owners WHERE case_token "
                                              "= 'CASE-LC-TRANSFER-1' AND owner = 'GT-PGN' "
                                              "AND former_owners = 'MX-DIF'"),
                    1);
    /* The former owner reads the trail up to the transfer (its owner_changed
       included), not what the new owner did since (the referral to HN-DINAF);
       after it, only events that name it: its own refused referral ("rejected"). */
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(pt_client_trail(mx, c, &trail, &rej), PT_CLIENT_OK);
    char seen[1024] = "";
    for (size_t i = 0; i < trail->n_events; i++) {
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s%s", used ? " " : "", trail->events[i]->kind);
        if (strcmp(trail->events[i]->actor, "MX-DIF") != 0)
            CU_ASSERT_PTR_NULL(strstr(trail->events[i]->counterparty, "HN-DINAF"));
    }
    CU_ASSERT_STRING_EQUAL(seen, "submitted stored state:submitted delivered state:delivered "
                                 "acknowledged state:received submitted stored state:accepted "
                                 "owner_changed rejected");
    puente__v1__trail_reply__free_unpacked(trail, NULL);
    /* GT-PGN, the owner now, reads everything, HN-DINAF's referral included. */
    CU_ASSERT_EQUAL_FATAL(pt_client_trail(gt, c, &trail, &rej), PT_CLIENT_OK);
    int hn = 0;
    for (size_t i = 0; i < trail->n_events; i++)
        hn += strcmp(trail->events[i]->counterparty, "HN-DINAF") == 0;
    CU_ASSERT(hn >= 2); /* submitted, stored of the referral */
    puente__v1__trail_reply__free_unpacked(trail, NULL);
    /* An auditor (scope MX) reads the whole trail, the ownership move included. */
    char args[700], out[16384];
    snprintf(args, sizeof args, "keygen --org MX-AUDIT --keys '%s/auditors'", pt_harness_keys(s_h));
    CU_ASSERT_EQUAL_FATAL(s_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL_FATAL(s_cli("auditor add MX-AUDIT --scope MX", out, sizeof out), 0);
    CU_ASSERT_EQUAL_FATAL(
        s_cli("audit trail --case CASE-LC-TRANSFER-1 --as auditor:MX-AUDIT", out, sizeof out), 0);
    /* One line per event after the heading: seq at kind actor counterparty type hash. */
    int lines = 0, moved = 0, later = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned seq = 0;
        char kind[40], actor[40], counter[40], type[40];
        if (sscanf(line, "%u %*s %39s %39s %39s %39s", &seq, kind, actor, counter, type) != 5)
            continue;
        lines++;
        if (strcmp(kind, "owner_changed") == 0) {
            CU_ASSERT_EQUAL(seq, 11);
            CU_ASSERT_STRING_EQUAL(actor, "GT-PGN");
            CU_ASSERT_STRING_EQUAL(counter, "MX-DIF");
            CU_ASSERT_STRING_EQUAL(type, "transfer.accept");
            moved++;
        }
        if (seq == 12) {
            CU_ASSERT_STRING_EQUAL(kind, "rejected");
            CU_ASSERT_STRING_EQUAL(actor, "MX-DIF");
            later++;
        }
        if (seq == 15) {
            CU_ASSERT_STRING_EQUAL(kind, "state:submitted");
            CU_ASSERT_STRING_EQUAL(actor, "GT-PGN");
            CU_ASSERT_STRING_EQUAL(counter, "HN-DINAF");
            CU_ASSERT_STRING_EQUAL(type, "referral.request");
            later++;
        }
    }
    CU_ASSERT_EQUAL(lines, 15);
    CU_ASSERT_EQUAL(moved, 1);
    CU_ASSERT_EQUAL(later, 2);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

static void test_respond_by_expires(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    uint8_t corr[16];
    const char *c = "CASE-LC-EXPIRE-1";
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c, {"SV-CONNA"}, NULL, NULL,
                                                NULL, NULL, pt_now_ms() + 300},
                                 corr),
                          0);
    char kinds[512] = "";
    for (int i = 0; i < 40 && !strstr(kinds, "expired"); i++) {
        usleep(100 * 1000);
        s_trail_kinds(c, "state:", kinds, sizeof kinds);
    }
    CU_ASSERT_STRING_EQUAL(kinds, "submitted expired");
    /* The deadline is also an "overdue" event, just before the expiry. */
    s_trail_kinds(c, "", kinds, sizeof kinds);
    CU_ASSERT_PTR_NOT_NULL(strstr(kinds, "overdue state:expired"));
    /* Too late to answer now. */
    pt_client_destroy(&mx);
}

/* Runs the CLI built with the tests; stdout into out. Exit status or -1. */
static int s_cli(const char *args, char *out, size_t cap)
{
    const char *cli = getenv("PUENTE_CLI_BIN");
    char command[1200], err[4096];
    snprintf(command, sizeof command, "%s %s", cli ? cli : "build/puente", args);
    int rc = pt_harness_sh(s_h, command, out, cap, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n$ %s\n%s%s", command, out, err);
    return rc;
}

/* 1 if org's overdue list holds case_token with this deadline. */
static int s_overdue_has(const char *org, const char *case_token, const char *deadline)
{
    pt_client_t *client = pt_harness_client(s_h, org, 0);
    if (!client)
        return -1;
    Puente__V1__OverdueReply *reply = NULL;
    pt_reject_info_t rej;
    int found = 0;
    if (pt_client_overdue(client, &reply, &rej) != PT_CLIENT_OK) {
        pt_client_destroy(&client);
        return -1;
    }
    for (size_t i = 0; i < reply->n_items; i++)
        if (strcmp(reply->items[i]->case_token, case_token) == 0 &&
            strcmp(reply->items[i]->deadline, deadline) == 0)
            found = 1;
    puente__v1__overdue_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&client);
    return found;
}

static int s_count_kind(const char *kinds, const char *word)
{
    int n = 0;
    size_t len = strlen(word);
    for (const char *p = kinds; (p = strstr(p, word)); p += len)
        if ((p == kinds || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            n++;
    return n;
}

/* A reintegration plan's follow-up due date passes: one "overdue" event, listed
   for both parties (and the operator), not for others; the follow-up report
   clears it. The expired referral of the previous test is listed too. */
static void test_follow_up_overdue(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    uint8_t corr[16];
    const char *c = "CASE-LC-FOLLOWUP-1";
    CU_ASSERT_EQUAL_FATAL(
        s_send(mx, &(s_msg_t){"return.notice", c, {"HN-DINAF"}, NULL, NULL, "TEST-BID-MX-0043"},
               corr),
        0);
    CU_ASSERT_EQUAL(s_send(hn, &(s_msg_t){"return.arrival", c, {"MX-DIF"}, corr}, NULL), 0);
    s_msg_t plan = {"reintegration.plan", c, {"MX-DIF"}, corr};
    plan.follow_up_due_ms = pt_now_ms() + 300;
    CU_ASSERT_EQUAL(s_send(hn, &plan, NULL), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token = "
                                              "'CASE-LC-FOLLOWUP-1' AND follow_up_due_ms > 0"),
                    1);
    char kinds[1024] = "";
    for (int i = 0; i < 40 && !strstr(kinds, "overdue"); i++) {
        usleep(100 * 1000);
        s_trail_kinds(c, "", kinds, sizeof kinds);
    }
    /* Raised once: wait for more sweeps and count again. */
    usleep(1500 * 1000);
    s_trail_kinds(c, "", kinds, sizeof kinds);
    CU_ASSERT_EQUAL(s_count_kind(kinds, "overdue"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("HN-DINAF", c, "follow_up"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("MX-DIF", c, "follow_up"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("GT-PGN", c, "follow_up"), 0);
    CU_ASSERT_EQUAL(s_overdue_has("operator", c, "follow_up"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("operator", "CASE-LC-EXPIRE-1", "respond_by"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("MX-DIF", "CASE-LC-EXPIRE-1", "respond_by"), 1);
    CU_ASSERT_EQUAL(s_overdue_has("HN-DINAF", "CASE-LC-EXPIRE-1", "respond_by"), 0);
    /* The CLI shows the same, scoped the same way. */
    char out[16384];
    CU_ASSERT_EQUAL(s_cli("overdue --as HN-DINAF --json-output", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"case_token\":\"CASE-LC-FOLLOWUP-1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"deadline\":\"follow_up\""));
    CU_ASSERT_PTR_NULL(strstr(out, "CASE-LC-EXPIRE-1"));
    CU_ASSERT_EQUAL(s_cli("overdue", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CASE-LC-EXPIRE-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CASE-LC-FOLLOWUP-1"));
    /* The follow-up report (with the next due date far ahead) clears it. */
    s_msg_t followup = {"reintegration.followup", c, {"MX-DIF"}, corr};
    followup.follow_up_due_ms = pt_now_ms() + 30LL * 24 * 3600 * 1000;
    CU_ASSERT_EQUAL(s_send(hn, &followup, NULL), 0);
    CU_ASSERT_EQUAL(s_overdue_has("HN-DINAF", c, "follow_up"), 0);
    CU_ASSERT_EQUAL(s_overdue_has("MX-DIF", c, "follow_up"), 0);
    pt_client_destroy(&hn);
    pt_client_destroy(&mx);
}

/* Receives for up to wait_ms on client (want_notices on), acks every notice and
   drops messages unacked; returns how many notices for case_token came, and
   copies the last one's id, message type and correlation id. */
static int s_notices_for(pt_client_t *client, const char *case_token, int wait_ms,
                         uint64_t *notice_id, char *type, size_t type_cap, uint8_t *corr)
{
    int found = 0;
    int64_t until = pt_now_ms() + wait_ms;
    while (pt_now_ms() < until) {
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(client, 200, &m);
        if (rc == PT_CLIENT_NOTICE) {
            const Puente__V1__Notice *n = pt_message_notice(m);
            CU_ASSERT_PTR_NULL(pt_message_header(m));
            CU_ASSERT_PTR_NULL(pt_message_id(m));
            CU_ASSERT_STRING_EQUAL(n->kind, "overdue");
            CU_ASSERT_EQUAL(n->broker_signature.len, 64);
            if (strcmp(n->case_token, case_token) == 0) {
                found++;
                if (notice_id)
                    *notice_id = n->notice_id;
                if (type)
                    snprintf(type, type_cap, "%s", n->message_type);
                if (corr && n->correlation_id.len == 16)
                    memcpy(corr, n->correlation_id.data, 16);
                CU_ASSERT(n->due_at_ms > 0 && n->due_at_ms <= n->created_at_ms);
                /* Signed by the broker's key; any changed field breaks it. */
                pt_keyset_t *broker = pt_keyset_load(pt_harness_keys(s_h), "broker", 0, NULL, 0);
                CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
                CU_ASSERT_EQUAL(puente_notice_verify(n, pt_keyset_sign(broker)), 0);
                Puente__V1__Notice forged = *n;
                forged.due_at_ms += 1;
                CU_ASSERT_EQUAL(puente_notice_verify(&forged, pt_keyset_sign(broker)), -1);
                pt_keyset_destroy(&broker);
            }
            CU_ASSERT_EQUAL(pt_client_notice_ack(client, n->notice_id), PT_CLIENT_OK);
        }
        pt_message_destroy(&m);
    }
    return found;
}

/* Overdue items raise a notice to both sides: signed by the broker, sent to a
   receiving party when raised and to an offline one when it attaches, never
   again once acknowledged. `puente recv` prints and acknowledges them. */
static void test_overdue_notices(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_client_want_notices(mx, 1);
    uint8_t corr[16], got_corr[16] = {0};
    const char *c = "CASE-LC-NOTICE-1";
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c, {"SV-CONNA"}, NULL, NULL,
                                                NULL, NULL, pt_now_ms() + 300},
                                 corr),
                          0);
    /* MX-DIF is receiving: the notice comes when the sweep raises it. */
    uint64_t id = 0;
    char type[64] = "";
    CU_ASSERT_EQUAL(s_notices_for(mx, c, 3000, &id, type, sizeof type, got_corr), 1);
    CU_ASSERT_STRING_EQUAL(type, "referral.request");
    CU_ASSERT_EQUAL(memcmp(got_corr, corr, 16), 0);
    CU_ASSERT_NOT_EQUAL(id, 0);
    /* One row per party, in the transaction of the "overdue" event. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM notices WHERE case_token = "
                                              "'CASE-LC-NOTICE-1' AND kind = 'overdue'"),
                    2);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM notices WHERE case_token = "
                                              "'CASE-LC-NOTICE-1' AND org_id = 'MX-DIF' "
                                              "AND acked_at IS NOT NULL"),
                    1);
    /* Acknowledged: not sent again on the next attach. */
    pt_client_destroy(&mx);
    mx = pt_harness_client(s_h, "MX-DIF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_client_want_notices(mx, 1);
    CU_ASSERT_EQUAL(s_notices_for(mx, c, 1500, NULL, NULL, 0, NULL), 0);
    pt_client_destroy(&mx);
    /* SV-CONNA was offline: it gets the notice when it attaches, once. */
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    pt_client_want_notices(sv, 1);
    CU_ASSERT_EQUAL(s_notices_for(sv, c, 1500, NULL, type, sizeof type, NULL), 1);
    CU_ASSERT_STRING_EQUAL(type, "referral.request");
    pt_client_destroy(&sv);
    sv = pt_harness_client(s_h, "SV-CONNA", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    pt_client_want_notices(sv, 1);
    CU_ASSERT_EQUAL(s_notices_for(sv, c, 1500, NULL, NULL, 0, NULL), 0);
    pt_client_destroy(&sv);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM notices WHERE case_token = "
                                              "'CASE-LC-NOTICE-1' AND acked_at IS NULL"),
                    0);
    /* The CLI: HN-DINAF never received since its plan's follow-up became overdue. */
    char out[16384];
    CU_ASSERT_EQUAL(s_cli("recv --as HN-DINAF --timeout 2s", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "notice: overdue reintegration.followup case CASE-LC-FOLLOWUP-1 due 20"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM notices WHERE org_id = "
                                              "'HN-DINAF' AND acked_at IS NULL"),
                    0);
    /* `puente overdue` still lists the item. */
    CU_ASSERT_EQUAL(s_cli("overdue --as SV-CONNA --json-output", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CASE-LC-NOTICE-1"));
}

/* Registered service types: `puente org add ID --services` replaces them; a
   recipient receives only the service types it registered, and a referral
   needs one. */
static void test_service_types(void)
{
    char out[4096];
    CU_ASSERT_EQUAL_FATAL(s_cli("org add GT-PGN --services health,family_reunification", out,
                                sizeof out),
                          0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM organisations WHERE org_id = "
                                              "'GT-PGN' AND service_types = "
                                              "'health,family_reunification'"),
                    1);
    CU_ASSERT_NOT_EQUAL(s_cli("org add GT-PGN --services 'Bad Name'", out, sizeof out), 0);
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    s_msg_t m = {"referral.request", "CASE-LC-SERVICE-1", {"GT-PGN"}};
    m.service_type = "education";
    CU_ASSERT_EQUAL(s_send(mx, &m, NULL), REJ(REJECT_SERVICE_NOT_OFFERED));
    m.service_type = "health";
    CU_ASSERT_EQUAL(s_send(mx, &m, NULL), 0);
    /* HN-DINAF did not register education (pt_harness_services): refused. */
    s_msg_t other = {"referral.request", "CASE-LC-SERVICE-2", {"HN-DINAF"}};
    other.service_type = "education";
    CU_ASSERT_EQUAL(s_send(mx, &other, NULL), REJ(REJECT_SERVICE_NOT_OFFERED));
    /* Without --service-type the SDK takes the body's first service (psychosocial),
       which HN-DINAF registered. */
    other.service_type = NULL;
    CU_ASSERT_EQUAL(s_send(mx, &other, NULL), 0);
    /* A referral without any service type is refused. */
    CU_ASSERT_EQUAL(s_raw_submit("MX-DIF", "HN-DINAF", "referral.request", "CASE-LC-SERVICE-4",
                                 s_no_service_type),
                    REJ(REJECT_SERVICE_TYPE_MISSING));
    /* Registering again without --services: GT-PGN receives no service type. */
    CU_ASSERT_EQUAL(s_cli("org add GT-PGN", out, sizeof out), 0);
    m.case_token = "CASE-LC-SERVICE-3";
    m.service_type = "health";
    CU_ASSERT_EQUAL(s_send(mx, &m, NULL), REJ(REJECT_SERVICE_NOT_OFFERED));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-LC-SERVICE-3','CASE-LC-SERVICE-4')"),
                    0);
    /* Back to the demo registration for the tests that follow. */
    char args[600];
    snprintf(args, sizeof args, "org add GT-PGN --services %s", pt_harness_services[1]);
    CU_ASSERT_EQUAL(s_cli(args, out, sizeof out), 0);
    pt_client_destroy(&mx);
}

/* Tracing focal points are registered service types: a country searched without
   one, a recipient that is not one, a trace request naming no country. */
static void test_tracing_focal_points(void)
{
    char out[4096];
    /* A trace request with no search_countries (the SDK refuses to build one). */
    CU_ASSERT_EQUAL(
        s_raw_submit("US-ORR", "GT-PGN", "tracing.request", "CASE-LC-TRACE-2", s_no_countries),
        REJ(REJECT_COUNTRY_MISSING));
    /* SV-CONNA stops being El Salvador's tracing focal point. */
    CU_ASSERT_EQUAL_FATAL(
        s_cli("org add SV-CONNA --services child_protection,psychosocial", out, sizeof out), 0);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    const char *c = "CASE-LC-TRACE-3";
    CU_ASSERT_EQUAL(
        s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF", "SV-CONNA"}}, NULL),
        REJ(REJECT_NOT_FOCAL_POINT));
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF"}}, NULL),
                    REJ(REJECT_NO_FOCAL_POINT));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-LC-TRACE-2','CASE-LC-TRACE-3')"),
                    0);
    /* Registered again as focal point: the same request passes. */
    char args[600];
    snprintf(args, sizeof args, "org add SV-CONNA --services %s", pt_harness_services[3]);
    CU_ASSERT_EQUAL_FATAL(s_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(
        s_send(us, &(s_msg_t){"tracing.request", c, {"GT-PGN", "HN-DINAF", "SV-CONNA"}}, NULL), 0);
    pt_client_destroy(&us);
    /* The CLI: --countries must equal the body's search_countries (exit 1, nothing
       sent); the broker's refusals exit 2. */
    char json[600], command[1400];
    snprintf(json, sizeof json, "%s/trace.json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL_FATAL(s_cli("example tracing.request", out, sizeof out), 0);
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(out, file);
    fclose(file);
    snprintf(command, sizeof command,
             "send --as US-ORR --to GT-PGN,HN-DINAF,SV-CONNA --type tracing.request --case "
             "CASE-LC-TRACE-4 --json '%s' --countries GT,HN",
             json);
    CU_ASSERT_EQUAL(s_cli(command, out, sizeof out), 1);
    snprintf(command, sizeof command,
             "send --as US-ORR --to GT-PGN,HN-DINAF --type tracing.request --case "
             "CASE-LC-TRACE-4 --json '%s' --countries SV,GT,HN",
             json);
    CU_ASSERT_EQUAL(s_cli(command, out, sizeof out), 2);
    snprintf(command, sizeof command,
             "send --as US-ORR --to GT-PGN,HN-DINAF,SV-CONNA --type tracing.request --case "
             "CASE-LC-TRACE-4 --json '%s' --countries SV,GT,HN",
             json);
    CU_ASSERT_EQUAL(s_cli(command, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "message_id:"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-LC-TRACE-4'"),
                    3);
}

/* Case ownership from the first message: an outsider can neither transfer a case
   nor ask for it (the audit's reproduction), and an accepted transfer request
   starts the owner's transfer; ownership moves when the requester accepts it. */
static void test_outsider_and_transfer_request(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 1);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    const char *c = "CASE-LC-OWNER-1";
    uint8_t ref[16], ask[16];
    CU_ASSERT_EQUAL_FATAL(s_send(mx, &(s_msg_t){"referral.request", c, {"GT-PGN"}}, ref), 0);
    s_take(gt, "referral.request");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_owners WHERE case_token "
                                              "= 'CASE-LC-OWNER-1' AND owner = 'MX-DIF' AND "
                                              "former_owners = ''"),
                    1);
    /* US-ORR was never a party: it cannot transfer the case, nor ask for it. */
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"transfer.request", c, {"HN-DINAF"}}, NULL),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_send(us, &(s_msg_t){"transfer.ask", c, {"MX-DIF"}}, NULL),
                    REJ(REJECT_NOT_PERMITTED));
    /* GT-PGN (a party) cannot transfer it either; it may ask the owner, and only
       the owner; a transfer request needs disclosure consent too. */
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"transfer.request", c, {"HN-DINAF"}}, NULL),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"transfer.ask", c, {"HN-DINAF"}}, NULL),
                    REJ(REJECT_NOT_CASE_OWNER));
    Puente__V1__ConsentSummary services_only = PUENTE__V1__CONSENT_SUMMARY__INIT;
    services_only.consent_for_services = 1;
    CU_ASSERT_EQUAL(
        s_send(gt, &(s_msg_t){"transfer.ask", c, {"MX-DIF"}, NULL, NULL, NULL, &services_only},
               NULL),
        REJ(REJECT_CONSENT_MISSING));
    CU_ASSERT_EQUAL_FATAL(s_send(gt, &(s_msg_t){"transfer.ask", c, {"MX-DIF"}}, ask), 0);
    s_take(mx, "transfer.ask");
    /* The owner accepts: nothing moves yet. */
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"transfer.accept", c, {"GT-PGN"}, ask}, NULL), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_owners WHERE case_token "
                                              "= 'CASE-LC-OWNER-1' AND owner = 'MX-DIF'"),
                    1);
    /* The accept started a transfer from the owner: the owner sends it (with the
       case file) on the request's correlation id; the requester accepts. */
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"transfer.accept", c, {"MX-DIF"}, ask}, NULL),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"transfer.request", c, {"GT-PGN"}, ask}, NULL), 0);
    s_take(gt, "transfer.request");
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"transfer.accept", c, {"GT-PGN"}, ask}, NULL),
                    REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(s_send(gt, &(s_msg_t){"transfer.accept", c, {"MX-DIF"}, ask}, NULL), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_owners WHERE case_token "
                                              "= 'CASE-LC-OWNER-1' AND owner = 'GT-PGN' AND "
                                              "former_owners = 'MX-DIF'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token "
                                              "= 'CASE-LC-OWNER-1' AND kind = 'transfer_ask' AND "
                                              "state = 'transferred'"),
                    1);
    char kinds[1024];
    s_trail_kinds(c, "", kinds, sizeof kinds);
    CU_ASSERT_PTR_NOT_NULL(strstr(kinds, "state:transferring"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kinds, "state:transferred owner_changed"));
    CU_ASSERT_EQUAL(s_count_kind(kinds, "owner_changed"), 1);
    /* The former owner is silenced. */
    CU_ASSERT_EQUAL(s_send(mx, &(s_msg_t){"referral.revoke", c, {"GT-PGN"}, ref}, NULL),
                    REJ(REJECT_NOT_CASE_OWNER));
    pt_client_destroy(&us);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("lifecycle", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral MX-DIF -> GT-PGN accepted and done", test_referral_accepted_and_done);
    CU_add_test(suite, "the recipient answers the moment it has the message", test_answer_at_once);
    CU_add_test(suite, "tracing fan-out to reunification", test_tracing_fan_out_to_reunification);
    CU_add_test(suite, "return notice, plan, follow-ups, closure", test_return_and_reintegration);
    CU_add_test(suite, "consent and policy refusals", test_consent_and_policy_refusals);
    CU_add_test(suite, "former owner after a transfer", test_former_owner_after_transfer);
    CU_add_test(suite, "respond-by passes: expired", test_respond_by_expires);
    CU_add_test(suite, "follow-up due passes: overdue, listed, cleared", test_follow_up_overdue);
    CU_add_test(suite, "overdue notices to both sides", test_overdue_notices);
    CU_add_test(suite, "registered service types", test_service_types);
    CU_add_test(suite, "tracing focal points", test_tracing_focal_points);
    CU_add_test(suite, "outsider transfer refused; transfer request",
                test_outsider_and_transfer_request);
    return pt_cu_main();
}

/*  itest_core — the core promises against a real broker process, real PostgreSQL,
    real CURVE sockets and real keys (issue: Puente core).

    One broker per suite; each test uses its own case tokens. The rejection tests
    send each bad frame through a raw socket and, right after it (before its
    answer is read), a good referral from another organisation (HN-DINAF ->
    US-ORR); they assert the bad frame's exact reject code AND the good one's
    receipt and its delivery to US-ORR: a bad sender never costs another sender
    its message. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_trail.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

static pt_harness_t *s_h;
static pt_client_t *s_hn;   /* the other sender of the rejection tests (s_other_sends) */

static int s_suite_init(void)
{
    s_h = pt_harness_new("core");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_client_destroy(&s_hn);
    pt_harness_destroy(&s_h);
    return 0;
}

static pt_client_result_t s_send(pt_client_t *client, const char *to, const char *type,
                                 const char *case_token, const uint8_t *correlation,
                                 pt_receipt_info_t *receipt, pt_reject_info_t *rej)
{
    return pt_harness_send(client, type, to, case_token, correlation, 0, receipt, rej);
}

/* --- end to end --------------------------------------------------------------- */

static void test_referral_end_to_end(void)
{
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);

    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-E2E-1", NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    CU_ASSERT_FALSE(receipt.duplicate);
    CU_ASSERT(receipt.stored_at_ms > 0);

    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 5000, &msg), PT_CLIENT_OK);
    const Puente__V1__Header *header = pt_message_header(msg);
    CU_ASSERT_STRING_EQUAL(header->sender, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(header->message_type, "referral.request");
    CU_ASSERT_STRING_EQUAL(header->case_token, "CASE-E2E-1");
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipt.message_id, 16), 0);
    size_t sent_len = 0, got_len = 0;
    uint8_t *sent = pt_harness_example_body("referral.request", &sent_len);
    const uint8_t *got = pt_message_body_bytes(msg, &got_len);
    CU_ASSERT_EQUAL(sent_len, got_len);
    CU_ASSERT_EQUAL(memcmp(sent, got, sent_len), 0);
    free(sent);
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);

    /* The trail: submitted, stored, delivered, acknowledged, hash-chained, each
       followed by the referral lifecycle's state event (issue 3). */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    Puente__V1__TrailReply *trail = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_trail(op, "CASE-E2E-1", &trail, &rej), PT_CLIENT_OK);
    const char *expected[] = {"submitted", "stored",       "state:submitted", "delivered",
                              "state:delivered", "acknowledged", "state:received"};
    CU_ASSERT_EQUAL_FATAL(trail->n_events, 7);
    uint8_t prev[32] = {0};
    for (size_t i = 0; i < 7; i++) {
        const Puente__V1__TrailEvent *ev = trail->events[i];
        CU_ASSERT_STRING_EQUAL(ev->kind, expected[i]);
        CU_ASSERT_EQUAL(ev->seq, i + 1);
        CU_ASSERT_EQUAL(memcmp(ev->prev_hash.data, prev, 32), 0);
        CU_ASSERT_EQUAL(ev->message_id.len, 16);
        CU_ASSERT_EQUAL(memcmp(ev->message_id.data, receipt.message_id, 16), 0);
        memcpy(prev, ev->hash.data, 32);
        if (i > 0)
            CU_ASSERT(ev->at_ms >= trail->events[i - 1]->at_ms || i == 1);
    }
    CU_ASSERT_STRING_EQUAL(trail->events[0]->actor, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(trail->events[3]->actor, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(trail->events[5]->actor, "GT-PGN");
    /* The receipt names the "stored" event. */
    CU_ASSERT_EQUAL(memcmp(trail->events[1]->hash.data, receipt.event_hash, 32), 0);
    puente__v1__trail_reply__free_unpacked(trail, NULL);

    /* A party may read its case's trail; another organisation may not. */
    CU_ASSERT_EQUAL(pt_client_trail(mx, "CASE-E2E-1", &trail, &rej), PT_CLIENT_OK);
    if (trail)
        puente__v1__trail_reply__free_unpacked(trail, NULL);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 0);
    trail = NULL;
    CU_ASSERT_EQUAL(pt_client_trail(us, "CASE-E2E-1", &trail, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, REJ(REJECT_NOT_PERMITTED));
    pt_client_destroy(&us);
    pt_client_destroy(&op);
    pt_client_destroy(&mx);
    pt_client_destroy(&gt);
}

static void test_offline_recipient_then_online(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "HN-DINAF", "return.notice", "CASE-OFFLINE-1", NULL, &receipt,
                                 &rej),
                          PT_CLIENT_OK);
    pt_client_destroy(&mx);
    usleep(300 * 1000);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-OFFLINE-1' AND d.acked_at IS NULL"),
                    1);

    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(hn, 5000, &msg), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipt.message_id, 16), 0);
    CU_ASSERT_STRING_EQUAL(pt_message_type(msg)->name, "return.notice");
    CU_ASSERT_EQUAL(pt_client_ack(hn, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);
    pt_client_destroy(&hn);
}

static void test_duplicate_submit(void)
{
    uint8_t *env = NULL;
    size_t env_len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_harness_envelope(s_h, "MX-DIF", "GT-PGN", "referral.request",
                                              "CASE-DUP-1", NULL, NULL, &env, &env_len),
                          0);
    Puente__V1__Envelope *envelope = puente__v1__envelope__unpack(NULL, env_len, env);
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = envelope;
    pt_raw_t *raw = pt_raw_new(s_h, "MX-DIF");
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);

    Puente__V1__BrokerFrame *first = NULL, *second = NULL;
    CU_ASSERT_EQUAL(pt_raw_send_frame(raw, &frame), 0);
    first = pt_raw_recv(raw, 5000);
    CU_ASSERT_EQUAL(pt_raw_send_frame(raw, &frame), 0);
    second = pt_raw_recv(raw, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    CU_ASSERT_EQUAL_FATAL(first->body_case, PUENTE__V1__BROKER_FRAME__BODY_RECEIPT);
    CU_ASSERT_EQUAL_FATAL(second->body_case, PUENTE__V1__BROKER_FRAME__BODY_RECEIPT);
    CU_ASSERT_FALSE(first->receipt->duplicate);
    CU_ASSERT_TRUE(second->receipt->duplicate);
    CU_ASSERT_EQUAL(first->receipt->stored_at_ms, second->receipt->stored_at_ms);
    CU_ASSERT_EQUAL(memcmp(first->receipt->event_hash.data, second->receipt->event_hash.data, 32),
                    0);
    /* Each answered alone: a batch of one (format 2, empty path), verifying with
       the broker's public key; the resubmission under a new batch signature over
       the original leaf. */
    char why[256];
    pt_keyset_t *broker = pt_keyset_load(pt_harness_keys(s_h), "broker", 0, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    CU_ASSERT_EQUAL(puente_receipt_verify(first->receipt, pt_keyset_sign(broker)), 0);
    CU_ASSERT_EQUAL(puente_receipt_verify(second->receipt, pt_keyset_sign(broker)), 0);
    CU_ASSERT_EQUAL(first->receipt->format, 2);
    CU_ASSERT_EQUAL(first->receipt->batch_size, 1);
    CU_ASSERT_EQUAL(first->receipt->n_batch_path, 0);
    CU_ASSERT_EQUAL(second->receipt->format, 2);
    CU_ASSERT_EQUAL(second->receipt->batch_size, 1);
    pt_keyset_destroy(&broker);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE case_token "
                                              "= 'CASE-DUP-1' AND kind = 'stored'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-DUP-1'"),
                    1);
    puente__v1__broker_frame__free_unpacked(first, NULL);
    puente__v1__broker_frame__free_unpacked(second, NULL);
    puente__v1__envelope__free_unpacked(envelope, NULL);
    free(env);
    pt_raw_destroy(&raw);
}

/* Issue 8: one broker signature per committed batch. Three senders pipeline
   their submissions (every frame sent before any answer is read), so the broker
   commits several in one batch; every receipt verifies with the SDK against the
   broker's public key alone, and the receipts of one batch carry the same
   signature, its size and each its own index. Rounds repeat until a batch held
   more than one item (the first nearly always does). */
enum { S_SENDERS = 3, S_PER_SENDER = 6 };

static void test_receipts_share_batch_signature(void)
{
    static const char *const from[S_SENDERS] = {"MX-DIF", "HN-DINAF", "GT-PGN"};
    static const char *const to[S_SENDERS] = {"GT-PGN", "US-ORR", "HN-DINAF"};
    char why[256];
    pt_keyset_t *broker = pt_keyset_load(pt_harness_keys(s_h), "broker", 0, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    pt_raw_t *raw[S_SENDERS];
    for (int s = 0; s < S_SENDERS; s++) {
        raw[s] = pt_raw_new(s_h, from[s]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(raw[s]);
    }
    size_t best_shared = 0, receipts_seen = 0, bad = 0;
    for (int round = 0; round < 10 && best_shared < 2; round++) {
        Puente__V1__Envelope *env[S_SENDERS][S_PER_SENDER];
        for (int s = 0; s < S_SENDERS; s++)
            for (int i = 0; i < S_PER_SENDER; i++) {
                char token[64];
                snprintf(token, sizeof token, "CASE-BATCH-%d-%d-%d", round, s, i);
                uint8_t *bytes = NULL;
                size_t len = 0;
                CU_ASSERT_EQUAL_FATAL(pt_harness_envelope(s_h, from[s], to[s], "referral.request",
                                                          token, NULL, NULL, &bytes, &len),
                                      0);
                env[s][i] = puente__v1__envelope__unpack(NULL, len, bytes);
                free(bytes);
                CU_ASSERT_PTR_NOT_NULL_FATAL(env[s][i]);
            }
        for (int i = 0; i < S_PER_SENDER; i++)
            for (int s = 0; s < S_SENDERS; s++) {
                Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
                frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
                frame.submit = env[s][i];
                CU_ASSERT_EQUAL(pt_raw_send_frame(raw[s], &frame), 0);
            }
        Puente__V1__BrokerFrame *got[S_SENDERS * S_PER_SENDER] = {0};
        size_t n = 0;
        for (int s = 0; s < S_SENDERS; s++)
            for (int i = 0; i < S_PER_SENDER; i++) {
                Puente__V1__BrokerFrame *reply = pt_raw_recv(raw[s], 15000);
                CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
                got[n++] = reply;
                if (reply->body_case != PUENTE__V1__BROKER_FRAME__BODY_RECEIPT) {
                    bad++;
                    continue;
                }
                const Puente__V1__Receipt *r = reply->receipt;
                receipts_seen++;
                if (puente_receipt_verify(r, pt_keyset_sign(broker)) != 0 || r->format != 2 ||
                    r->batch_size == 0 || r->batch_index >= r->batch_size || r->duplicate)
                    bad++;
            }
        /* Group by signature: the receipts of one batch share it, its size, and
           have distinct indices. */
        for (size_t a = 0; a < n; a++) {
            if (got[a]->body_case != PUENTE__V1__BROKER_FRAME__BODY_RECEIPT)
                continue;
            const Puente__V1__Receipt *ra = got[a]->receipt;
            size_t shared = 1;
            for (size_t b = 0; b < n; b++) {
                if (b == a || got[b]->body_case != PUENTE__V1__BROKER_FRAME__BODY_RECEIPT)
                    continue;
                const Puente__V1__Receipt *rb = got[b]->receipt;
                if (rb->broker_signature.len != 64 || ra->broker_signature.len != 64 ||
                    memcmp(ra->broker_signature.data, rb->broker_signature.data, 64) != 0)
                    continue;
                shared++;
                if (rb->batch_size != ra->batch_size || rb->batch_index == ra->batch_index)
                    bad++;
            }
            if (shared > 1 && ra->batch_size < shared)
                bad++;
            if (ra->batch_size > 1 && shared > best_shared)
                best_shared = shared;
        }
        for (size_t k = 0; k < n; k++)
            puente__v1__broker_frame__free_unpacked(got[k], NULL);
        for (int s = 0; s < S_SENDERS; s++)
            for (int i = 0; i < S_PER_SENDER; i++)
                puente__v1__envelope__free_unpacked(env[s][i], NULL);
    }
    if (best_shared < 2 || bad)
        fprintf(stderr, "receipts: %zu seen, %zu bad, at most %zu share a batch signature\n",
                receipts_seen, bad, best_shared);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(receipts_seen >= S_SENDERS * S_PER_SENDER);
    CU_ASSERT(best_shared >= 2);
    for (int s = 0; s < S_SENDERS; s++)
        pt_raw_destroy(&raw[s]);
    pt_keyset_destroy(&broker);
}

static void test_restart_between_submit_and_delivery(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "SV-CONNA", "referral.request", "CASE-RESTART-1", NULL,
                                 &receipt, &rej),
                          PT_CLIENT_OK);
    pt_client_destroy(&mx);
    /* The receipt was issued: whatever happens to the broker now, it is delivered. */
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGKILL), 128 + SIGKILL);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(sv, 5000, &msg), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipt.message_id, 16), 0);
    CU_ASSERT_EQUAL(pt_client_ack(sv, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);
    pt_client_destroy(&sv);
}

static void test_order_per_correlation_and_redelivery(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    uint8_t correlation[16];
    pt_uuidv7(correlation);
    pt_receipt_info_t receipts[3];
    pt_reject_info_t rej;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(s_send(mx, "US-ORR", "referral.request", "CASE-ORDER-1", correlation,
                                     &receipts[i], &rej),
                              PT_CLIENT_OK);
    pt_client_destroy(&mx);

    /* First receiver takes message 1 and dies without acking. */
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(us, 5000, &msg), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipts[0].message_id, 16), 0);
    pt_message_destroy(&msg);
    /* Message 2 of the same correlation id waits until 1 is acknowledged. */
    CU_ASSERT_EQUAL(pt_client_recv(us, 500, &msg), PT_CLIENT_TIMEOUT);
    pt_client_destroy(&us);

    /* A new connection gets message 1 again, then 2 and 3 in order as it acks. */
    us = pt_harness_client(s_h, "US-ORR", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    for (int i = 0; i < 3; i++) {
        msg = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(us, 5000, &msg), PT_CLIENT_OK);
        CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipts[i].message_id, 16), 0);
        CU_ASSERT_EQUAL(pt_client_ack(us, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
    }
    pt_client_destroy(&us);
}

/* --- rejections ------------------------------------------------------------------ */

/* Reads the answer to a bad frame sent on raw: its reject code (reason copied into
   reason, may be NULL), or a negative value if there was none. */
static Puente__V1__RejectCode s_reject_reply(pt_raw_t *raw, char *reason, size_t reason_len)
{
    Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 5000);
    if (!reply)
        return (Puente__V1__RejectCode)-2;
    Puente__V1__RejectCode code = reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT
                                      ? reply->reject->code
                                      : (Puente__V1__RejectCode)-3;
    if (reason && reason_len)
        snprintf(reason, reason_len, "%s",
                 code >= 0 && reply->reject->reason ? reply->reject->reason : "");
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return code;
}

/* Another organisation's traffic, interleaved with a bad frame: HN-DINAF sends a
   referral to US-ORR; asserts its receipt, then that US-ORR receives exactly that
   message (verified and opened by the SDK) and acknowledges it. */
static int s_other_sends(const char *case_token)
{
    if (!s_hn)
        s_hn = pt_harness_client(s_h, "HN-DINAF", 0);   /* kept for the suite */
    pt_client_t *hn = s_hn;
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_client_result_t sent =
        s_send(hn, "US-ORR", "referral.request", case_token, NULL, &receipt, &rej);
    CU_ASSERT_EQUAL(sent, PT_CLIENT_OK);
    if (sent != PT_CLIENT_OK) {
        fprintf(stderr, "other sender refused: %s\n", rej.reason);
        return -1;
    }
    CU_ASSERT_FALSE(receipt.duplicate);
    CU_ASSERT(receipt.stored_at_ms > 0);
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(us, 10000, &msg), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipt.message_id, 16), 0);
    CU_ASSERT_STRING_EQUAL(pt_message_header(msg)->sender, "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(pt_message_header(msg)->case_token, case_token);
    CU_ASSERT_EQUAL(pt_client_ack(us, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);
    pt_client_destroy(&us);
    return 0;
}

/* Sends frames (n frames in one message) from raw, then at once the other
   organisation's referral (s_other_sends), then reads the bad frame's answer.
   Returns its reject code (reason into reason when not NULL). */
static Puente__V1__RejectCode s_interleaved(pt_raw_t *raw, const void *const *frames,
                                            const size_t *lens, size_t n, const char *other_case,
                                            char *reason, size_t reason_len)
{
    if (pt_raw_send(raw, frames, lens, n) != 0)
        return (Puente__V1__RejectCode)-1;
    CU_ASSERT_EQUAL(s_other_sends(other_case), 0);
    return s_reject_reply(raw, reason, reason_len);
}

static Puente__V1__RejectCode s_expect_reject(pt_raw_t *raw, const void *data, size_t len,
                                              const char *other_case)
{
    const void *frames[1] = {data};
    return s_interleaved(raw, frames, &len, 1, other_case, NULL, 0);
}

/* Wraps an envelope in a ClientFrame{submit}. Caller frees. */
static uint8_t *s_submit_frame(const uint8_t *env, size_t env_len, size_t *len)
{
    Puente__V1__Envelope *envelope = puente__v1__envelope__unpack(NULL, env_len, env);
    if (!envelope)
        return NULL;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = envelope;
    *len = puente__v1__client_frame__get_packed_size(&frame);
    uint8_t *out = malloc(*len);
    puente__v1__client_frame__pack(&frame, out);
    puente__v1__envelope__free_unpacked(envelope, NULL);
    return out;
}

static Puente__V1__RejectCode s_reject_of_envelope(const char *via, const char *sender,
                                                   const char *recipient, const char *case_token,
                                                   void (*mutate)(Puente__V1__Header *, void *),
                                                   int flip_signature)
{
    uint8_t *env = NULL;
    size_t env_len = 0, len = 0;
    if (pt_harness_envelope(s_h, sender, recipient, "referral.request", case_token, mutate, NULL,
                            &env, &env_len) != 0)
        return (Puente__V1__RejectCode)-4;
    if (flip_signature) {
        Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, env_len, env);
        e->header_signature.data[10] ^= 0x01;
        free(env);
        env_len = puente__v1__envelope__get_packed_size(e);
        env = malloc(env_len);
        puente__v1__envelope__pack(e, env);
        puente__v1__envelope__free_unpacked(e, NULL);
    }
    uint8_t *frame = s_submit_frame(env, env_len, &len);
    pt_raw_t *raw = pt_raw_new(s_h, via);
    char other_case[64];
    snprintf(other_case, sizeof other_case, "CASE-OTHER-%s", case_token);
    Puente__V1__RejectCode code = s_expect_reject(raw, frame, len, other_case);
    pt_raw_destroy(&raw);
    free(frame);
    free(env);
    return code;
}

static void s_expired(Puente__V1__Header *header, void *arg)
{
    (void)arg;
    header->created_at_ms = pt_now_ms() - 2 * 3600 * 1000;
    header->expires_at_ms = pt_now_ms() - 3600 * 1000;
}

static void test_reject_bad_signature(void)
{
    CU_ASSERT_EQUAL(s_reject_of_envelope("MX-DIF", "MX-DIF", "GT-PGN", "CASE-REJ-1", NULL, 1),
                    REJ(REJECT_BAD_SIGNATURE));
}

static void test_reject_spoofed_sender(void)
{
    /* Signed by MX-DIF's key, sent over GT-PGN's CURVE connection. */
    CU_ASSERT_EQUAL(s_reject_of_envelope("GT-PGN", "MX-DIF", "HN-DINAF", "CASE-REJ-2", NULL, 0),
                    REJ(REJECT_UNAUTHENTICATED));
}

static void test_reject_unknown_recipient(void)
{
    CU_ASSERT_EQUAL(s_reject_of_envelope("MX-DIF", "MX-DIF", "ZZ-ROGUE", "CASE-REJ-3", NULL, 0),
                    REJ(REJECT_UNKNOWN_RECIPIENT));
}

static void test_reject_no_agreement(void)
{
    CU_ASSERT_EQUAL(s_reject_of_envelope("SV-CONNA", "SV-CONNA", "US-ORR", "CASE-REJ-4", NULL, 0),
                    REJ(REJECT_NO_AGREEMENT));
}

static void test_reject_expired(void)
{
    CU_ASSERT_EQUAL(
        s_reject_of_envelope("MX-DIF", "MX-DIF", "GT-PGN", "CASE-REJ-5", s_expired, 0),
        REJ(REJECT_EXPIRED));
}

static void test_reject_oversize_truncated_random_empty_extra(void)
{
    pt_raw_t *raw = pt_raw_new(s_h, "MX-DIF");
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    char reason[256];
    size_t big_len = 1536 * 1024;
    uint8_t *big = calloc(1, big_len);
    const void *one[1] = {big};
    CU_ASSERT_EQUAL(s_interleaved(raw, one, &big_len, 1, "CASE-OTHER-6a", reason, sizeof reason),
                    REJ(REJECT_TOO_LARGE));
    CU_ASSERT_STRING_EQUAL(reason, "frame of 1572864 bytes is over the limit of 1048576");
    free(big);

    /* Half a valid submit frame: the bytes end inside the envelope field. */
    uint8_t *env = NULL;
    size_t env_len = 0, len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_harness_envelope(s_h, "MX-DIF", "GT-PGN", "referral.request",
                                              "CASE-REJ-6", NULL, NULL, &env, &env_len),
                          0);
    uint8_t *frame = s_submit_frame(env, env_len, &len);
    one[0] = frame;
    size_t half = len / 2;
    CU_ASSERT_EQUAL(s_interleaved(raw, one, &half, 1, "CASE-OTHER-6b", reason, sizeof reason),
                    REJ(REJECT_TRUNCATED));
    char expected[256];
    snprintf(expected, sizeof expected,
             "the frame's %zu bytes end inside a field (truncated length-delimited field in "
             "field submit): it was cut off; send the whole frame",
             half);
    CU_ASSERT_STRING_EQUAL(reason, expected);
    free(frame);
    free(env);

    /* 512 random bytes (srand 42): an unsupported wire type early on, not a cut-off frame. */
    uint8_t noise[512];
    srand(42);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)rand();
    one[0] = noise;
    size_t noise_len = sizeof noise;
    CU_ASSERT_EQUAL(
        s_interleaved(raw, one, &noise_len, 1, "CASE-OTHER-6c", reason, sizeof reason),
        REJ(REJECT_MALFORMED));
    CU_ASSERT_STRING_EQUAL(reason, "unsupported wire type");
    one[0] = "";
    size_t zero = 0;
    CU_ASSERT_EQUAL(s_interleaved(raw, one, &zero, 1, "CASE-OTHER-6d", reason, sizeof reason),
                    REJ(REJECT_MALFORMED));
    CU_ASSERT_STRING_EQUAL(reason, "empty frame");

    const void *frames[2] = {"a", "b"};
    size_t lens[2] = {1, 1};
    CU_ASSERT_EQUAL(s_interleaved(raw, frames, lens, 2, "CASE-OTHER-6e", reason, sizeof reason),
                    REJ(REJECT_MALFORMED));
    CU_ASSERT_STRING_EQUAL(reason, "a message must be exactly one frame");
    pt_raw_destroy(&raw);
    /* Nothing of the rejected cases was stored; every other sender's message was. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token "
                                              "LIKE 'CASE-REJ-%'"),
                    0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token "
                                              "LIKE 'CASE-OTHER-%' AND sender = 'HN-DINAF'"),
                    10);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token LIKE "
                                              "'CASE-OTHER-%' AND d.acked_at IS NOT NULL"),
                    10);
}

static void test_unregistered_curve_key_is_refused(void)
{
    pt_raw_t *raw = pt_raw_new(s_h, "ZZ-ROGUE");
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    Puente__V1__Heartbeat beat = PUENTE__V1__HEARTBEAT__INIT;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HEARTBEAT;
    frame.heartbeat = &beat;
    CU_ASSERT_EQUAL(pt_raw_send_frame(raw, &frame), 0);
    CU_ASSERT_EQUAL(s_other_sends("CASE-OTHER-7"), 0);
    Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 1500);
    CU_ASSERT_PTR_NULL(reply);
    if (reply)
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    pt_raw_destroy(&raw);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("core", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral end to end with trail", test_referral_end_to_end);
    CU_add_test(suite, "recipient offline then online", test_offline_recipient_then_online);
    CU_add_test(suite, "duplicate submit returns the original receipt", test_duplicate_submit);
    CU_add_test(suite, "broker killed between submit and delivery",
                test_restart_between_submit_and_delivery);
    CU_add_test(suite, "order per correlation id and redelivery",
                test_order_per_correlation_and_redelivery);
    CU_add_test(suite, "reject: bad signature", test_reject_bad_signature);
    CU_add_test(suite, "reject: sender is not the CURVE identity", test_reject_spoofed_sender);
    CU_add_test(suite, "reject: unknown recipient", test_reject_unknown_recipient);
    CU_add_test(suite, "reject: no agreement", test_reject_no_agreement);
    CU_add_test(suite, "reject: expired", test_reject_expired);
    CU_add_test(suite, "reject: oversize, truncated, random, empty, extra frames",
                test_reject_oversize_truncated_random_empty_extra);
    CU_add_test(suite, "unregistered CURVE key gets no connection",
                test_unregistered_curve_key_is_refused);
    /* Last: it leaves its messages undelivered (the others count deliveries). */
    CU_add_test(suite, "receipts of one batch share one broker signature",
                test_receipts_share_batch_signature);
    return pt_cu_main();
}

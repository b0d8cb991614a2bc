/*  itest_limits — the broker's limits (issue 7) against a real broker, restarted
    with each test's configuration through the environment (PUENTE_SUBMIT_RATE,
    PUENTE_SUBMIT_BURST, PUENTE_QUEUE_QUOTA, PUENTE_MAX_CONNECTIONS):

    1. rate: a burst of pipelined submits beyond the token bucket gets receipts
       for the burst and REJECT_RATE_LIMITED for the rest (nothing of those
       stored), while another organisation is served at once; the refused
       envelopes go through once the bucket refilled; an SDK outbox streaming
       beyond the rate ends with every message receipted (it retries).
    2. quota: the count starts from the database's backlog at start; a
       recipient's full queue refuses with REJECT_QUOTA_EXCEEDED (nothing stored)
       while other recipients are served and a resubmission of a stored message
       still gets its receipt; an acknowledgement frees a place; an outbox
       message waiting for the quota goes through once the recipient acks.
    3. connections: with max_connections reached a new organisation's handshake
       is refused and the SDK says so; the connected ones are served, the
       operator still gets in, and a freed place admits the waiting one.
    4. memory: several connections flood the broker with frames just under
       max_frame, just over it and far over its hard cap; the broker's RSS
       (/proc/PID/status VmRSS, sampled, and VmHWM) stays under a cap, the
       figures are printed, and a good sender is served afterwards.
       PUENTE_LIMITS_FLOOD_SECONDS (default 10) and PUENTE_LIMITS_RSS_CAP_MIB
       (default 128; 1024 in sanitizer builds) size it. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "pt_envelope.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

#if defined(__SANITIZE_ADDRESS__)
#define S_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_SANITIZED 1
#endif
#endif
#ifndef S_SANITIZED
#define S_SANITIZED 0
#endif

static pt_harness_t *s_h;

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("limits", NULL);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* Restarts the broker with these limits (NULL = the default). 0 or -1. */
static int s_restart(const char *rate, const char *burst, const char *quota,
                     const char *max_connections)
{
    pt_harness_broker_stop(s_h, SIGTERM);
    const char *names[4] = {"PUENTE_SUBMIT_RATE", "PUENTE_SUBMIT_BURST", "PUENTE_QUEUE_QUOTA",
                            "PUENTE_MAX_CONNECTIONS"};
    const char *values[4] = {rate, burst, quota, max_connections};
    for (int i = 0; i < 4; i++) {
        if (values[i])
            setenv(names[i], values[i], 1);
        else
            unsetenv(names[i]);
    }
    return pt_harness_broker_start(s_h);
}

/* --- envelopes and raw submits ------------------------------------------------ */

typedef struct {
    uint8_t *frame; /* ClientFrame{submit} */
    size_t len;
    uint8_t id[16];
} s_submit_t;

/* A signed, sealed referral from sender to recipient, packed as a submit frame. */
static int s_submit_new(const char *sender, const char *recipient, const char *token,
                        s_submit_t *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *env = NULL;
    size_t env_len = 0;
    if (pt_harness_envelope(s_h, sender, recipient, "referral.request", token, NULL, NULL, &env,
                            &env_len) != 0)
        return -1;
    Puente__V1__Envelope *envelope = puente__v1__envelope__unpack(NULL, env_len, env);
    Puente__V1__Header *header =
        envelope ? puente__v1__header__unpack(NULL, envelope->header.len, envelope->header.data)
                 : NULL;
    int rc = -1;
    if (header && header->message_id.len == 16) {
        memcpy(out->id, header->message_id.data, 16);
        Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
        frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
        frame.submit = envelope;
        out->len = puente__v1__client_frame__get_packed_size(&frame);
        out->frame = malloc(out->len);
        if (out->frame) {
            puente__v1__client_frame__pack(&frame, out->frame);
            rc = 0;
        }
    }
    if (header)
        puente__v1__header__free_unpacked(header, NULL);
    if (envelope)
        puente__v1__envelope__free_unpacked(envelope, NULL);
    free(env);
    return rc;
}

static int s_send(pt_raw_t *raw, const s_submit_t *s)
{
    const void *frames[1] = {s->frame};
    return pt_raw_send(raw, frames, &s->len, 1);
}

/* The answer to submission id: 0 = receipt (*duplicate set), a reject code, or -1
   if none came within timeout_ms. Other frames are skipped. */
static int s_answer(pt_raw_t *raw, const uint8_t *id, int timeout_ms, int *duplicate, char *reason,
                    size_t reason_len)
{
    int64_t deadline = pt_now_ms() + timeout_ms;
    while (pt_now_ms() < deadline) {
        Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, (int)(deadline - pt_now_ms()));
        if (!reply)
            continue;
        int answer = -2;
        if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT &&
            reply->receipt->message_id.len == 16 &&
            memcmp(reply->receipt->message_id.data, id, 16) == 0) {
            answer = 0;
            if (duplicate)
                *duplicate = reply->receipt->duplicate;
        } else if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT &&
                   reply->reject->message_id.len == 16 &&
                   memcmp(reply->reject->message_id.data, id, 16) == 0) {
            answer = reply->reject->code;
            if (reason)
                snprintf(reason, reason_len, "%s", reply->reject->reason);
        }
        puente__v1__broker_frame__free_unpacked(reply, NULL);
        if (answer != -2)
            return answer;
    }
    return -1;
}

/* The answers to n pipelined submissions, in any order: answers[i] as s_answer
   gives them (-1 for those still unanswered after timeout_ms); reason (may be
   NULL) receives the reason of the first reject. */
static void s_answers(pt_raw_t *raw, const s_submit_t *subs, int n, int *answers, int timeout_ms,
                      char *reason, size_t reason_len)
{
    int open = n;
    for (int i = 0; i < n; i++)
        answers[i] = -1;
    int64_t deadline = pt_now_ms() + timeout_ms;
    while (open > 0 && pt_now_ms() < deadline) {
        Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, (int)(deadline - pt_now_ms()));
        if (!reply)
            continue;
        const ProtobufCBinaryData *id = NULL;
        int answer = 0;
        if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT) {
            id = &reply->receipt->message_id;
        } else if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
            id = &reply->reject->message_id;
            answer = reply->reject->code;
        }
        for (int i = 0; id && id->len == 16 && i < n; i++) {
            if (answers[i] == -1 && memcmp(id->data, subs[i].id, 16) == 0) {
                answers[i] = answer;
                open--;
                if (answer && reason && !reason[0])
                    snprintf(reason, reason_len, "%s", reply->reject->reason);
            }
        }
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    }
}

/* Sends one submission and waits for its answer (see s_answer). */
static int s_submit_once(const char *via, const s_submit_t *s, int *duplicate, char *reason,
                         size_t reason_len)
{
    pt_raw_t *raw = pt_raw_new(s_h, via);
    if (!raw)
        return -1;
    int answer =
        s_send(raw, s) == 0 ? s_answer(raw, s->id, 10000, duplicate, reason, reason_len) : -1;
    pt_raw_destroy(&raw);
    return answer;
}

static long s_stored(const uint8_t *id)
{
    char sql[200], uuid[PT_UUID_STR_BYTES];
    pt_uuid_format(id, uuid);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE message_id = '%s'", uuid);
    return pt_harness_sql_count(s_h, sql);
}

static long s_log_count(const char *needle)
{
    char cmd[1200], out[64], err[64];
    snprintf(cmd, sizeof cmd, "grep -c -- '%s' '%s/broker.log'", needle, pt_harness_dir(s_h));
    if (pt_harness_sh(s_h, cmd, out, sizeof out, err, sizeof err) < 0)
        return -1;
    return strtol(out, NULL, 10);
}

static pt_outbox_t *s_outbox(const char *org, const char *name)
{
    return pt_harness_outbox(s_h, org, name, 3000);
}

static pt_client_result_t s_outbox_referral(pt_outbox_t *outbox, const char *to_org,
                                            const char *token, uint8_t id[16])
{
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    if (!body)
        return PT_CLIENT_INTERNAL;
    const char *to[1] = {to_org};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    pt_send_t msg = {.message_type = "referral.request",
                     .recipients = to,
                     .n_recipients = 1,
                     .case_token = token,
                     .consent = &consent,
                     .body = body,
                     .body_len = len};
    pt_client_result_t rc = pt_outbox_send(outbox, &msg, id);
    free(body);
    return rc;
}

/* --- 1. submission rate ------------------------------------------------------- */

#define S_RATE 5
#define S_BURST 10
#define S_RATE_FRAMES 30
#define S_OUTBOX_MESSAGES 40

static void test_rate_limit(void)
{
    CU_ASSERT_EQUAL_FATAL(s_restart("5", "10", "0", NULL), 0);
    s_submit_t subs[S_RATE_FRAMES], other;
    for (int i = 0; i < S_RATE_FRAMES; i++)
        CU_ASSERT_EQUAL_FATAL(s_submit_new("MX-DIF", "GT-PGN", "CASE-RATE-MX", &subs[i]), 0);
    CU_ASSERT_EQUAL_FATAL(s_submit_new("GT-PGN", "MX-DIF", "CASE-RATE-GT", &other), 0);

    /* The whole burst pipelined on one connection, then the other organisation. */
    pt_raw_t *raw = pt_raw_new(s_h, "MX-DIF");
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    int64_t started = pt_now_ms();
    for (int i = 0; i < S_RATE_FRAMES; i++)
        CU_ASSERT_EQUAL(s_send(raw, &subs[i]), 0);
    int duplicate = 0;
    char reason[256] = "";
    CU_ASSERT_EQUAL(s_submit_once("GT-PGN", &other, &duplicate, NULL, 0), 0);
    int answers[S_RATE_FRAMES];
    int receipted = 0, limited = 0;
    s_answers(raw, subs, S_RATE_FRAMES, answers, 20000, reason, sizeof reason);
    for (int i = 0; i < S_RATE_FRAMES; i++) {
        receipted += answers[i] == 0;
        limited += answers[i] == REJ(REJECT_RATE_LIMITED);
    }
    double elapsed_s = (double)(pt_now_ms() - started) / 1000.0;
    printf("\n    rate %d/s burst %d: %d pipelined submits -> %d receipts, %d REJECT_RATE_LIMITED "
           "in %.2f s (\"%s\")\n",
           S_RATE, S_BURST, S_RATE_FRAMES, receipted, limited, elapsed_s, reason);
    CU_ASSERT_EQUAL(receipted + limited, S_RATE_FRAMES);
    CU_ASSERT(receipted >= S_BURST);
    /* What the bucket can have refilled while the test waited for the answers. */
    CU_ASSERT(receipted <= S_BURST + (int)(elapsed_s * S_RATE) + 1);
    CU_ASSERT(limited > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "MX-DIF is over its rate of 5 submissions per second"));
    /* The refused ones are not stored; the receipted ones are. */
    for (int i = 0; i < S_RATE_FRAMES; i++)
        CU_ASSERT_EQUAL(s_stored(subs[i].id), answers[i] == 0 ? 1 : 0);

    /* Once the bucket has refilled, the refused envelopes go through unchanged. */
    usleep(1200 * 1000);
    int later = 0;
    for (int i = 0; i < S_RATE_FRAMES && later < S_RATE; i++) {
        if (answers[i] != REJ(REJECT_RATE_LIMITED))
            continue;
        CU_ASSERT_EQUAL(s_send(raw, &subs[i]), 0);
        CU_ASSERT_EQUAL(s_answer(raw, subs[i].id, 10000, NULL, NULL, 0), 0);
        CU_ASSERT_EQUAL(s_stored(subs[i].id), 1);
        later++;
    }
    CU_ASSERT(later > 0);
    pt_raw_destroy(&raw);
    for (int i = 0; i < S_RATE_FRAMES; i++)
        free(subs[i].frame);
    free(other.frame);

    /* The SDK's outbox treats RATE_LIMITED as retryable: everything ends receipted. */
    pt_outbox_t *outbox = s_outbox("HN-DINAF", "rate");
    CU_ASSERT_PTR_NOT_NULL_FATAL(outbox);
    uint8_t ids[S_OUTBOX_MESSAGES][16];
    for (int i = 0; i < S_OUTBOX_MESSAGES; i++)
        CU_ASSERT_EQUAL(s_outbox_referral(outbox, "SV-CONNA", "CASE-RATE-HN", ids[i]),
                        PT_CLIENT_OK);
    int64_t flush_started = pt_now_ms();
    CU_ASSERT_EQUAL(pt_outbox_flush(outbox, 120000), PT_CLIENT_OK);
    int submitted = 0;
    for (int i = 0; i < S_OUTBOX_MESSAGES; i++)
        submitted += pt_outbox_status(outbox, ids[i], NULL, NULL) == PT_OUTBOX_SUBMITTED;
    long limited_in_log = s_log_count("REJECT_RATE_LIMITED from HN-DINAF");
    printf("    outbox: %d messages at rate %d/s: %d receipted in %.1f s, %ld rate-limited "
           "attempts retried\n",
           S_OUTBOX_MESSAGES, S_RATE, submitted, (double)(pt_now_ms() - flush_started) / 1000.0,
           limited_in_log);
    CU_ASSERT_EQUAL(submitted, S_OUTBOX_MESSAGES);
    CU_ASSERT(limited_in_log > 0);
    pt_outbox_destroy(&outbox);
}

/* --- 2. queue quota ---------------------------------------------------------- */

#define S_QUOTA 3

static void test_queue_quota(void)
{
    CU_ASSERT_EQUAL_FATAL(s_restart("0", NULL, "3", NULL), 0);
    char reason[256] = "";
    int duplicate = 0;

    /* The count starts from the database: GT-PGN has the first test's messages
       waiting, more than the quota, so it is full from the start. */
    long waiting = pt_harness_sql_count(
        s_h, "SELECT count(*) FROM deliveries WHERE recipient = 'GT-PGN' AND state <> 'acked'");
    CU_ASSERT(waiting >= S_QUOTA);
    s_submit_t to_full;
    CU_ASSERT_EQUAL_FATAL(s_submit_new("MX-DIF", "GT-PGN", "CASE-QUOTA-GT", &to_full), 0);
    CU_ASSERT_EQUAL(s_submit_once("MX-DIF", &to_full, NULL, reason, sizeof reason),
                    REJ(REJECT_QUOTA_EXCEEDED));
    printf("\n    quota %d, GT-PGN with %ld waiting at start: \"%s\"\n", S_QUOTA, waiting, reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "GT-PGN has"));
    CU_ASSERT_EQUAL(s_stored(to_full.id), 0);
    free(to_full.frame);

    /* US-ORR: three fit, the fourth is refused; HN-DINAF is served meanwhile. */
    s_submit_t subs[5], other;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL_FATAL(s_submit_new("MX-DIF", "US-ORR", "CASE-QUOTA-US", &subs[i]), 0);
    CU_ASSERT_EQUAL_FATAL(s_submit_new("MX-DIF", "HN-DINAF", "CASE-QUOTA-HN", &other), 0);
    for (int i = 0; i < S_QUOTA; i++)
        CU_ASSERT_EQUAL(s_submit_once("MX-DIF", &subs[i], NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(s_submit_once("MX-DIF", &subs[3], NULL, reason, sizeof reason),
                    REJ(REJECT_QUOTA_EXCEEDED));
    printf("    US-ORR after %d: \"%s\"\n", S_QUOTA, reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "US-ORR has 3 messages waiting for acknowledgement "
                                          "(queue quota 3)"));
    CU_ASSERT_EQUAL(s_stored(subs[3].id), 0);
    CU_ASSERT_EQUAL(s_submit_once("MX-DIF", &other, NULL, NULL, 0), 0);
    /* A resubmission of a stored message is not a new one: its receipt, again. */
    CU_ASSERT_EQUAL(s_submit_once("MX-DIF", &subs[0], &duplicate, NULL, 0), 0);
    CU_ASSERT_EQUAL(duplicate, 1);

    /* An outbox message waiting for the quota is retried, not failed. */
    pt_outbox_t *outbox = s_outbox("MX-DIF", "quota");
    CU_ASSERT_PTR_NOT_NULL_FATAL(outbox);
    uint8_t queued[16];
    CU_ASSERT_EQUAL(s_outbox_referral(outbox, "US-ORR", "CASE-QUOTA-OUTBOX", queued), PT_CLIENT_OK);
    /* Its first attempt meets the full queue (a third QUOTA_EXCEEDED in the log) before
       anything is acknowledged; waiting for it keeps the race with the ack out of the
       test (on a loaded machine the outbox's first attempt can take a while). */
    int64_t first_try = pt_now_ms() + 60000;
    while (s_log_count("REJECT_QUOTA_EXCEEDED from MX-DIF") < 3 && pt_now_ms() < first_try)
        usleep(50 * 1000);
    CU_ASSERT_EQUAL(pt_outbox_status(outbox, queued, NULL, NULL), PT_OUTBOX_QUEUED);

    /* The recipient acknowledges one: a place is free, the refused one goes in. */
    pt_client_t *us = pt_harness_client(s_h, "US-ORR", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    pt_message_t *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(us, 10000, &m), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(pt_client_ack(us, pt_message_id(m)), PT_CLIENT_OK);
    pt_message_destroy(&m);
    /* The outbox and the refused submission compete for the freed place: one of
       them gets it, the other is refused until the next acknowledgement. */
    int answer = -1;
    for (int tries = 0; tries < 50 && answer != 0; tries++) {
        answer = s_submit_once("MX-DIF", &subs[3], NULL, NULL, 0);
        if (answer == 0)
            break;
        CU_ASSERT_EQUAL(answer, REJ(REJECT_QUOTA_EXCEEDED));
        if (pt_client_recv(us, 200, &m) == PT_CLIENT_OK) {
            CU_ASSERT_EQUAL(pt_client_ack(us, pt_message_id(m)), PT_CLIENT_OK);
            pt_message_destroy(&m);
        }
    }
    CU_ASSERT_EQUAL(answer, 0);
    CU_ASSERT_EQUAL(s_stored(subs[3].id), 1);
    /* The recipient keeps acknowledging: the outbox's message gets through. */
    int64_t deadline = pt_now_ms() + 60000;
    while (pt_outbox_status(outbox, queued, NULL, NULL) == PT_OUTBOX_QUEUED &&
           pt_now_ms() < deadline) {
        if (pt_client_recv(us, 500, &m) == PT_CLIENT_OK) {
            CU_ASSERT_EQUAL(pt_client_ack(us, pt_message_id(m)), PT_CLIENT_OK);
            pt_message_destroy(&m);
        }
    }
    CU_ASSERT_EQUAL(pt_outbox_status(outbox, queued, NULL, NULL), PT_OUTBOX_SUBMITTED);
    long refusals = s_log_count("REJECT_QUOTA_EXCEEDED from MX-DIF");
    printf("    outbox message waiting for US-ORR's quota: receipted (%ld QUOTA_EXCEEDED answers "
           "to MX-DIF in all)\n",
           refusals);
    CU_ASSERT(refusals >= 3);
    pt_outbox_destroy(&outbox);
    pt_client_destroy(&us);
    for (int i = 0; i < 5; i++)
        free(subs[i].frame);
    free(other.frame);
}

/* --- 3. connections ------------------------------------------------------------ */

#define S_MAX_CONNECTIONS 4

static void test_max_connections(void)
{
    CU_ASSERT_EQUAL_FATAL(s_restart(NULL, NULL, NULL, "4"), 0);
    const char *orgs[S_MAX_CONNECTIONS] = {"MX-DIF", "GT-PGN", "HN-DINAF", "SV-CONNA"};
    pt_client_t *clients[S_MAX_CONNECTIONS] = {NULL};
    for (int i = 0; i < S_MAX_CONNECTIONS; i++) {
        /* A connection the harness just closed may not be counted out yet. */
        for (int tries = 0; tries < 20 && !clients[i]; tries++)
            clients[i] = pt_harness_client(s_h, orgs[i], 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(clients[i]);
    }
    /* A fifth organisation is refused, clearly. */
    char err[PUENTE_ERR_BYTES] = "";
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = pt_harness_keys(s_h),
                             .org_id = "US-ORR",
                             .timeout_ms = 2000};
    pt_client_result_t code = PT_CLIENT_OK;
    pt_client_t *extra = pt_client_new_ex(&opts, err, sizeof err, &code);
    printf("\n    max_connections %d: 5th client: %s\n", S_MAX_CONNECTIONS, err);
    CU_ASSERT_PTR_NULL(extra);
    CU_ASSERT_EQUAL(code, PT_CLIENT_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "connection limit"));
    pt_client_destroy(&extra);
    /* Those connected are served. */
    for (int i = 0; i < S_MAX_CONNECTIONS; i++) {
        const char *other = orgs[(i + 1) % S_MAX_CONNECTIONS];
        CU_ASSERT_EQUAL(pt_client_directory_refresh(clients[i], &other, 1), PT_CLIENT_OK);
    }
    /* The operator is always admitted. */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL(op);
    pt_client_destroy(&op);
    CU_ASSERT(s_log_count("max_connections is 4") >= 1);
    /* A place frees: the fifth gets in. */
    pt_client_destroy(&clients[0]);
    for (int tries = 0; tries < 20 && !extra; tries++)
        extra = pt_client_new(&opts, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(extra);
    pt_client_destroy(&extra);
    for (int i = 0; i < S_MAX_CONNECTIONS; i++)
        pt_client_destroy(&clients[i]);
}

/* --- 4. memory under a flood of large frames ----------------------------------- */

#define S_FLOODERS 4
#define S_KINDS 3

static const char *const s_kind_names[S_KINDS] = {"just under max_frame", "just over max_frame",
                                                  "8 x max_frame"};
static volatile int s_flood_stop;

typedef struct {
    const char *org;
    void *ctx;
    size_t max_frame;
    long sent[S_KINDS];
    long replies;
    int failed;
} s_flooder_t;

static size_t s_put_varint4(uint8_t *p, size_t v)
{
    for (int k = 0; k < 4; k++) {
        p[k] = (uint8_t)((v & 0x7f) | (k < 3 ? 0x80 : 0));
        v >>= 7;
    }
    return 4;
}

/* ClientFrame{submit: Envelope{header: "x", payloads: [{ciphertext: n bytes}]}} of
   total about len: it decodes (the broker allocates its bytes), then fails the
   envelope check. Lengths as 4-byte varints (valid, if not minimal). */
static size_t s_big_submit(uint8_t *buf, size_t len)
{
    size_t inner = len - 18, sealed = 1 + 4 + inner, envelope = 3 + 1 + 4 + sealed;
    uint8_t *p = buf;
    *p++ = 0x0a;
    p += s_put_varint4(p, envelope);
    *p++ = 0x0a;
    *p++ = 1;
    *p++ = 'x';
    *p++ = 0x1a;
    p += s_put_varint4(p, sealed);
    *p++ = 0x2a;
    p += s_put_varint4(p, inner);
    memset(p, 0x5a, inner);
    return (size_t)(p - buf) + inner;
}

static void *s_flood_main(void *arg)
{
    s_flooder_t *f = arg;
    char why[256];
    pt_keyset_t *me = pt_keyset_load(pt_harness_keys(s_h), f->org, 1, why, sizeof why);
    pt_keyset_t *broker = pt_keyset_load(pt_harness_keys(s_h), "broker", 0, why, sizeof why);
    size_t sizes[S_KINDS] = {f->max_frame - 1024, f->max_frame + 1024, 8 * f->max_frame};
    uint8_t *buf = calloc(1, sizes[2]);
    void *sock = zmq_socket(f->ctx, ZMQ_DEALER);
    if (!me || !broker || !buf || !sock) {
        f->failed = 1;
        goto done;
    }
    int linger = 0, timeout = 100;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, pt_keyset_curve_public_z85(broker), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pt_keyset_curve_public_z85(me), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(me), 40);
    if (zmq_connect(sock, pt_harness_endpoint(s_h)) != 0) {
        f->failed = 1;
        goto done;
    }
    size_t under = s_big_submit(buf, sizes[0]);
    /* Nine frames around max_frame, then one far over the hard cap (libzmq drops
       the connection on reading its size; the socket reconnects by itself). */
    for (long i = 0; !s_flood_stop; i++) {
        int kind = i % 10 == 9 ? 2 : (int)(i % 2);
        size_t len = kind == 0 ? under : sizes[kind];
        /* (The longer kinds are refused on their size, whatever the bytes.) */
        if (zmq_send(sock, buf, len, 0) >= 0)
            f->sent[kind]++;
        /* Replies are read only now and then: a flooder is not polite. */
        if (i % 50 == 0) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            while (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
                f->replies++;
            zmq_msg_close(&msg);
        }
    }
done:
    if (sock)
        zmq_close(sock);
    free(buf);
    pt_keyset_destroy(&me);
    pt_keyset_destroy(&broker);
    return NULL;
}

static long s_status_kib(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen(path, "r");
    long value = -1;
    if (!file)
        return -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, file))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            value = strtol(line + n + 1, NULL, 10);
    fclose(file);
    return value;
}

static void test_memory_under_flood(void)
{
    CU_ASSERT_EQUAL_FATAL(s_restart(NULL, NULL, NULL, NULL), 0);
    long seconds = pt_harness_env_long("PUENTE_LIMITS_FLOOD_SECONDS", 10);
    long cap_mib = pt_harness_env_long("PUENTE_LIMITS_RSS_CAP_MIB", S_SANITIZED ? 1024 : 128);
    size_t max_frame = 1024 * 1024; /* the default */
    int pid = pt_harness_broker_pid(s_h);
    CU_ASSERT_FATAL(pid > 0);
    long start_kib = s_status_kib(pid, "VmRSS");

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    const char *orgs[S_FLOODERS] = {"MX-DIF", "GT-PGN", "HN-DINAF", "SV-CONNA"};
    s_flooder_t flooders[S_FLOODERS];
    pthread_t threads[S_FLOODERS];
    s_flood_stop = 0;
    for (int i = 0; i < S_FLOODERS; i++) {
        memset(&flooders[i], 0, sizeof flooders[i]);
        flooders[i].org = orgs[i];
        flooders[i].ctx = ctx;
        flooders[i].max_frame = max_frame;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, s_flood_main, &flooders[i]), 0);
    }
    long peak_kib = 0, samples = 0;
    int64_t end = pt_now_ms() + seconds * 1000;
    while (pt_now_ms() < end) {
        long rss = s_status_kib(pid, "VmRSS");
        if (rss > peak_kib)
            peak_kib = rss;
        samples++;
        usleep(50 * 1000);
    }
    s_flood_stop = 1;
    long sent[S_KINDS] = {0}, replies = 0;
    for (int i = 0; i < S_FLOODERS; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(flooders[i].failed, 0);
        for (int k = 0; k < S_KINDS; k++)
            sent[k] += flooders[i].sent[k];
        replies += flooders[i].replies;
    }
    zmq_ctx_term(ctx);
    long hwm_kib = s_status_kib(pid, "VmHWM");
    double mib = 1024.0;
    /* What the configured bounds would allow if the broker fell behind every
       flooder: each connection's queue of frames at the hard cap plus the one
       being read, and a loop pass's 8 MiB held three times (received, decoded,
       re-packed). It does not fall behind: refusing a frame costs it a copy,
       while each costs its sender a CURVE encryption, so the queues stay short
       and the cap below is what was measured (about 30 MiB here) with room. */
    int rcvhwm = (int)(128 * 1024 * 1024 / (2 * max_frame));
    double bound_mib = start_kib / mib + S_FLOODERS * (rcvhwm + 1) * 2.0 + 3 * 8;
    printf("\n    flood: %d connections for %ld s, max_frame 1 MiB (hard cap 2 MiB, inbound queue "
           "%d frames per connection)\n",
           S_FLOODERS, seconds, rcvhwm);
    for (int k = 0; k < S_KINDS; k++)
        printf("      %-22s %6ld frames sent\n", s_kind_names[k], sent[k]);
    printf("      replies read by the flooders: %ld\n", replies);
    printf("    broker RSS: %.1f MiB before, peak %.1f MiB (%ld samples), VmHWM %.1f MiB; cap "
           "%ld MiB%s (the queue bounds alone would allow about %.0f MiB)\n",
           start_kib / mib, peak_kib / mib, samples, hwm_kib / mib, cap_mib,
           S_SANITIZED ? ", sanitizer build" : "", bound_mib);
    CU_ASSERT(sent[0] > 0 && sent[1] > 0 && sent[2] > 0);
    CU_ASSERT(peak_kib > 0 && peak_kib < cap_mib * 1024);
    CU_ASSERT(hwm_kib > 0 && hwm_kib < cap_mib * 1024);
    CU_ASSERT_EQUAL(kill(pid, 0), 0);

    /* A good sender is served afterwards. */
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    const char *to[1] = {"HN-DINAF"};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    pt_send_t msg = {.message_type = "referral.request",
                     .recipients = to,
                     .n_recipients = 1,
                     .case_token = "CASE-AFTER-FLOOD",
                     .consent = &consent,
                     .body = body,
                     .body_len = len};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(pt_client_send(mx, &msg, &receipt, &rej), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(s_stored(receipt.message_id), 1);
    free(body);
    pt_client_destroy(&mx);
    /* Nothing of the flood was stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token "
                                              "NOT LIKE 'CASE-%'"),
                    0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("limits", s_suite_init, s_suite_clean);
    CU_add_test(suite, "submission rate per organisation (REJECT_RATE_LIMITED)", test_rate_limit);
    CU_add_test(suite, "queue quota per recipient (REJECT_QUOTA_EXCEEDED)", test_queue_quota);
    CU_add_test(suite, "maximum connections", test_max_connections);
    CU_add_test(suite, "memory bounded under a flood of large frames", test_memory_under_flood);
    return pt_cu_main();
}

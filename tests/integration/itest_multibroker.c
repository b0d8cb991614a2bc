/*  itest_multibroker — several puente-broker processes over one database (issue 9).
    Two real brokers (instance ids broker0 and broker1, tests/lib/harness.c) share
    one test database and one broker key:
    (a) a sender on broker0, the recipient connected to broker1 only, the polling
        fallback set to ten minutes: the message arrives because broker0's commit
        woke broker1 (NOTIFY), and broker1 made the one delivery;
    (b) one recipient connected to both brokers, senders on both: every delivery
        made once, by the broker whose connection got it, and a revoke never
        offered before the request of its referral was acknowledged;
    (c) broker1 SIGKILLed while it holds claims on sent, unacknowledged
        deliveries: broker0 takes them over once the lease ended, and the
        recipient, moved to broker0 with its durable inbox, hands each message to
        the application once;
    (d) the checkpoint signer is killed: the other broker takes the signer lock
        and signs the next checkpoint;
    (e) the recipient receives on broker1 and answers at once on broker0, perhaps
        before broker1 recorded the send: answers are legal from "submitted"
        (broker/lifecycle.c), so broker0 always accepts them (no
        REJECT_ILLEGAL_TRANSITION; 19 of 20 were refused before that rule).
    `puente audit verify` passes at the end of each test. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pt_envelope.h"
#include "cu_main.h"

static char s_cli[600];
static char s_out[65536], s_err[16384];

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The value of a one-number SQL query (pt_harness_sql_count), waited for: 1 once
   it equals want within timeout_ms, else 0 (and the last value is printed). */
static int s_wait_sql(pt_harness_t *h, const char *sql, long want, int timeout_ms)
{
    long got = -1;
    for (int64_t end = s_mono_ms() + timeout_ms; s_mono_ms() < end; usleep(100 * 1000))
        if ((got = pt_harness_sql_count(h, sql)) == want)
            return 1;
    fprintf(stderr, "itest_multibroker: waited for %ld, have %ld: %s\n", want, got, sql);
    return 0;
}

/* A client of org on broker index, retried until that broker's directory knows
   the organisation (brokers learn directory changes through NOTIFY). */
static pt_client_t *s_client_at(pt_harness_t *h, int index, const char *org, int receive)
{
    for (int64_t end = s_mono_ms() + 60000; s_mono_ms() < end;) {
        pt_client_t *client = pt_harness_client_at(h, index, org, receive);
        if (client)
            return client;
        usleep(200 * 1000);
    }
    return NULL;
}

/* A fresh database, brokers 0..n-1 started before the demo organisations are
   registered through broker 0, so the others learn them from the directory
   notification; returns once every broker admits MX-DIF. */
static pt_harness_t *s_setup(const char *name, int n)
{
    pt_harness_t *h = pt_harness_new(name);
    if (!h)
        return NULL;
    for (int i = 0; i < n; i++)
        if (pt_harness_broker_start_at(h, i) != 0)
            goto error;
    if (pt_harness_register_demo(h) != 0)
        goto error;
    for (int i = 1; i < n; i++) {
        pt_client_t *probe = s_client_at(h, i, "MX-DIF", 0);
        if (!probe)
            goto error;
        pt_client_destroy(&probe);
    }
    return h;
error:
    pt_harness_destroy(&h);
    return NULL;
}

static pt_client_result_t s_send(pt_client_t *client, const char *to, const char *type,
                                 const char *case_token, const uint8_t *correlation_id,
                                 pt_receipt_info_t *receipt)
{
    return pt_harness_send(client, type, to, case_token, correlation_id, 0, receipt, NULL);
}

/* Stops every broker cleanly (the last signer signs a checkpoint of everything),
   then checks the whole log with `puente audit verify --db`. */
static void s_verify_audit(pt_harness_t *h)
{
    for (int i = 0; i < PT_HARNESS_BROKERS; i++)
        if (pt_harness_broker_pid_at(h, i))
            CU_ASSERT_EQUAL(pt_harness_broker_stop_at(h, i, SIGTERM), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT max(tree_size) FROM checkpoints"),
                    pt_harness_sql_count(h, "SELECT count(*) FROM audit_log"));
    char command[2400];
    snprintf(command, sizeof command, "%s audit verify --db '%s'", s_cli, pt_harness_conninfo(h));
    int rc = pt_harness_sh(h, command, s_out, sizeof s_out, s_err, sizeof s_err);
    if (rc != 0)
        fprintf(stderr, "itest_multibroker: audit verify -> %d\n%s%s", rc, s_out, s_err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified:"));
}

/* --- (a) the recipient's broker is woken by the sender's ---------------------------- */

static void test_notify_wakes_other_broker(void)
{
    /* Polling every ten minutes: only a notification can wake broker1 in time. */
    setenv("PUENTE_DELIVERY_POLL", "10m", 1);
    pt_harness_t *h = s_setup("mb_notify", 2);
    unsetenv("PUENTE_DELIVERY_POLL");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pt_client_t *gt = s_client_at(h, 1, "GT-PGN", 1);
    pt_client_t *mx = s_client_at(h, 0, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);

    pt_receipt_info_t receipt;
    int64_t sent_ms = s_mono_ms();
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-MB-A", NULL, &receipt),
                          PT_CLIENT_OK);
    pt_message_t *msg = NULL;
    pt_client_result_t rc = PT_CLIENT_TIMEOUT;
    for (int64_t end = s_mono_ms() + 60000; rc == PT_CLIENT_TIMEOUT && s_mono_ms() < end;)
        rc = pt_client_recv(gt, 1000, &msg);
    CU_ASSERT_EQUAL_FATAL(rc, PT_CLIENT_OK);
    fprintf(stderr, "itest_multibroker: stored on broker0, delivered by broker1 after %lld ms\n",
            (long long)(s_mono_ms() - sent_ms));
    CU_ASSERT_EQUAL(memcmp(pt_message_id(msg), receipt.message_id, 16), 0);
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);

    /* One delivery, one attempt, claimed (made) by broker1; one "delivered" event. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE "
                                            "recipient = 'GT-PGN' AND state = 'acked' AND "
                                            "attempts = 1 AND claimed_by = 'broker1'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM deliveries"), 1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM case_events WHERE "
                                            "case_token = 'CASE-MB-A' AND kind = 'delivered'"),
                    1);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
    s_verify_audit(h);
    pt_harness_destroy(&h);
}

/* --- (b) one recipient connected to both brokers ------------------------------------- */

#define S_CORRS 8  /* referrals from MX-DIF: request on broker0, revoke on broker1 */
#define S_PLAIN 12 /* referrals from HN-DINAF on broker1 */
#define S_MSGS (2 * S_CORRS + S_PLAIN)
#define S_FRAMES_MAX 1024

typedef struct {
    int64_t delivery_id;
    uint32_t attempt;
    int broker; /* whose connection got it */
    uint8_t message_id[16];
} s_frame_t;

typedef struct {
    s_frame_t frames[S_FRAMES_MAX];
    size_t n;
} s_seen_t;

/* Says hello as org with receive on raw and waits for the Welcome. 0 or -1. */
static int s_raw_attach(pt_raw_t *raw, const char *org)
{
    Puente__V1__Hello hello = PUENTE__V1__HELLO__INIT;
    hello.org_id = (char *)org;
    hello.client = (char *)"itest-multibroker";
    hello.receive = 1;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HELLO;
    frame.hello = &hello;
    if (pt_raw_send_frame(raw, &frame) != 0)
        return -1;
    for (int i = 0; i < 50; i++) {
        Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 200);
        int welcome = reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_WELCOME;
        if (reply)
            puente__v1__broker_frame__free_unpacked(reply, NULL);
        if (welcome)
            return 0;
    }
    return -1;
}

/* Takes what raw has within timeout_ms: each delivery is recorded and acked. */
static void s_raw_pump(pt_raw_t *raw, int broker, int timeout_ms, s_seen_t *seen)
{
    Puente__V1__BrokerFrame *frame;
    while ((frame = pt_raw_recv(raw, timeout_ms)) != NULL) {
        timeout_ms = 0;
        if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_DELIVER &&
            frame->deliver->envelope) {
            const Puente__V1__Envelope *env = frame->deliver->envelope;
            Puente__V1__Header *header =
                puente__v1__header__unpack(NULL, env->header.len, env->header.data);
            if (header && header->message_id.len == 16 && seen->n < S_FRAMES_MAX) {
                s_frame_t *f = &seen->frames[seen->n++];
                f->delivery_id = (int64_t)frame->deliver->delivery_id;
                f->attempt = frame->deliver->attempt;
                f->broker = broker;
                memcpy(f->message_id, header->message_id.data, 16);
                Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
                ack.message_id = header->message_id;
                Puente__V1__ClientFrame out = PUENTE__V1__CLIENT_FRAME__INIT;
                out.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
                out.ack = &ack;
                CU_ASSERT_EQUAL(pt_raw_send_frame(raw, &out), 0);
            }
            if (header)
                puente__v1__header__free_unpacked(header, NULL);
        }
        puente__v1__broker_frame__free_unpacked(frame, NULL);
    }
}

/* Index of the first frame of message id, or -1. */
static long s_first_frame(const s_seen_t *seen, const uint8_t *id)
{
    for (size_t i = 0; i < seen->n; i++)
        if (memcmp(seen->frames[i].message_id, id, 16) == 0)
            return (long)i;
    return -1;
}

static void test_one_recipient_on_both_brokers(void)
{
    pt_harness_t *h = s_setup("mb_both", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pt_client_t *mx0 = s_client_at(h, 0, "MX-DIF", 0);
    pt_client_t *mx1 = s_client_at(h, 1, "MX-DIF", 0);
    pt_client_t *hn1 = s_client_at(h, 1, "HN-DINAF", 0);
    pt_raw_t *raw[2] = {pt_raw_new_at(h, 0, "GT-PGN"), pt_raw_new_at(h, 1, "GT-PGN")};
    CU_ASSERT_FATAL(mx0 && mx1 && hn1 && raw[0] && raw[1]);
    CU_ASSERT_EQUAL_FATAL(s_raw_attach(raw[0], "GT-PGN"), 0);
    CU_ASSERT_EQUAL_FATAL(s_raw_attach(raw[1], "GT-PGN"), 0);

    static s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    uint8_t ids[S_MSGS][16];
    uint8_t request_of[S_CORRS][16], revoke_of[S_CORRS][16];
    size_t n_ids = 0;
    for (int c = 0; c < S_CORRS; c++) {
        pt_receipt_info_t r;
        char case_token[32];
        snprintf(case_token, sizeof case_token, "CASE-MB-B%d", c);
        CU_ASSERT_EQUAL_FATAL(s_send(mx0, "GT-PGN", "referral.request", case_token, NULL, &r),
                              PT_CLIENT_OK);
        memcpy(ids[n_ids++], r.message_id, 16);
        memcpy(request_of[c], r.message_id, 16);
        /* The revoke goes through the other broker, on the same lifecycle. */
        uint8_t corr[16];
        memcpy(corr, r.correlation_id, 16);
        CU_ASSERT_EQUAL_FATAL(s_send(mx1, "GT-PGN", "referral.revoke", case_token, corr, &r),
                              PT_CLIENT_OK);
        memcpy(ids[n_ids++], r.message_id, 16);
        memcpy(revoke_of[c], r.message_id, 16);
        for (int k = 0; k < 2; k++)
            s_raw_pump(raw[k], k, 0, &seen);
    }
    for (int i = 0; i < S_PLAIN; i++) {
        pt_receipt_info_t r;
        char case_token[32];
        snprintf(case_token, sizeof case_token, "CASE-MB-P%d", i);
        CU_ASSERT_EQUAL_FATAL(s_send(hn1, "GT-PGN", "referral.request", case_token, NULL, &r),
                              PT_CLIENT_OK);
        memcpy(ids[n_ids++], r.message_id, 16);
        for (int k = 0; k < 2; k++)
            s_raw_pump(raw[k], k, 0, &seen);
    }
    /* Both connections take and ack until everything is acknowledged. */
    long acked = 0;
    for (int64_t end = s_mono_ms() + 90000; s_mono_ms() < end;) {
        for (int k = 0; k < 2; k++)
            s_raw_pump(raw[k], k, 100, &seen);
        acked = pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE state = 'acked'");
        if (acked == S_MSGS)
            break;
    }
    CU_ASSERT_EQUAL(acked, S_MSGS);
    for (int k = 0; k < 2; k++)
        s_raw_pump(raw[k], k, 300, &seen); /* a late duplicate would show up here */

    /* Every delivery reached exactly one connection per attempt, and the first
       attempt of each was made exactly once. */
    size_t by_broker[2] = {0, 0}, first_attempts = 0;
    for (size_t i = 0; i < seen.n; i++) {
        by_broker[seen.frames[i].broker]++;
        first_attempts += seen.frames[i].attempt == 1;
        for (size_t j = i + 1; j < seen.n; j++)
            CU_ASSERT(seen.frames[i].delivery_id != seen.frames[j].delivery_id ||
                      seen.frames[i].attempt != seen.frames[j].attempt);
    }
    CU_ASSERT_EQUAL(first_attempts, S_MSGS);
    for (size_t i = 0; i < n_ids; i++)
        CU_ASSERT(s_first_frame(&seen, ids[i]) >= 0);
    fprintf(stderr,
            "itest_multibroker: %d messages, %zu delivery frames: %zu by broker0, %zu by broker1\n",
            S_MSGS, seen.n, by_broker[0], by_broker[1]);
    /* Order per correlation id: a revoke is offered only once its request is acked. */
    for (int c = 0; c < S_CORRS; c++)
        CU_ASSERT(s_first_frame(&seen, request_of[c]) < s_first_frame(&seen, revoke_of[c]));
    /* The database names, for every delivery, the broker whose connection got its
       last attempt. */
    for (size_t i = 0; i < seen.n; i++) {
        const s_frame_t *f = &seen.frames[i];
        int last = 1;
        for (size_t j = i + 1; j < seen.n; j++)
            if (seen.frames[j].delivery_id == f->delivery_id)
                last = 0;
        if (!last)
            continue;
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM deliveries WHERE delivery_id = %lld AND "
                 "claimed_by = 'broker%d' AND attempts = %u",
                 (long long)f->delivery_id, f->broker, f->attempt);
        CU_ASSERT_EQUAL(pt_harness_sql_count(h, sql), 1);
    }
    pt_raw_destroy(&raw[0]);
    pt_raw_destroy(&raw[1]);
    pt_client_destroy(&mx0);
    pt_client_destroy(&mx1);
    pt_client_destroy(&hn1);
    s_verify_audit(h);
    pt_harness_destroy(&h);
}

/* --- (c) a broker dies holding claims -------------------------------------------------- */

#define S_TAKEOVER_MSGS 6

static pt_client_t *s_inbox_client(pt_harness_t *h, int index, const char *inbox)
{
    char err[256] = "";
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint_at(h, index),
                             .keys_dir = pt_harness_keys(h),
                             .org_id = "GT-PGN",
                             .receive = 1,
                             .timeout_ms = 1000,
                             .inbox_path = inbox};
    pt_client_t *client = pt_client_new(&opts, err, sizeof err);
    if (!client)
        fprintf(stderr, "itest_multibroker: GT-PGN on broker %d: %s\n", index, err);
    return client;
}

static void test_takeover_after_lease(void)
{
    setenv("PUENTE_DELIVERY_LEASE", "3s", 1);
    pt_harness_t *h = s_setup("mb_takeover", 2);
    unsetenv("PUENTE_DELIVERY_LEASE");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    char inbox[700];
    snprintf(inbox, sizeof inbox, "%s/gt-inbox.db", pt_harness_dir(h));
    pt_client_t *mx = s_client_at(h, 0, "MX-DIF", 0);
    pt_client_t *probe = s_client_at(h, 1, "GT-PGN", 0); /* broker1 knows GT-PGN */
    pt_client_destroy(&probe);
    pt_client_t *gt = s_inbox_client(h, 1, inbox);
    CU_ASSERT_FATAL(mx && gt);

    uint8_t ids[S_TAKEOVER_MSGS][16];
    int handed[S_TAKEOVER_MSGS] = {0};
    for (int i = 0; i < S_TAKEOVER_MSGS; i++) {
        pt_receipt_info_t r;
        char case_token[32];
        snprintf(case_token, sizeof case_token, "CASE-MB-C%d", i);
        CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", case_token, NULL, &r),
                              PT_CLIENT_OK);
        memcpy(ids[i], r.message_id, 16);
    }
    /* The application takes all six from broker1 and confirms the first half. */
    int got = 0;
    for (int64_t end = s_mono_ms() + 60000; got < S_TAKEOVER_MSGS && s_mono_ms() < end;) {
        pt_message_t *msg = NULL;
        if (pt_client_recv(gt, 500, &msg) != PT_CLIENT_OK)
            continue;
        for (int i = 0; i < S_TAKEOVER_MSGS; i++)
            if (memcmp(ids[i], pt_message_id(msg), 16) == 0)
                handed[i]++;
        got++;
        pt_message_destroy(&msg);
    }
    CU_ASSERT_EQUAL_FATAL(got, S_TAKEOVER_MSGS);
    for (int i = 0; i < S_TAKEOVER_MSGS / 2; i++)
        CU_ASSERT_EQUAL(pt_client_ack(gt, ids[i]), PT_CLIENT_OK);
    /* broker1 holds the claims of the other half: sent, not acknowledged. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE "
                                            "state = 'delivered' AND claimed_by = 'broker1'"),
                    S_TAKEOVER_MSGS / 2);

    CU_ASSERT_EQUAL(pt_harness_broker_stop_at(h, 1, SIGKILL), 128 + SIGKILL);
    /* The application stored the other half too; its confirmations reach the
       durable inbox, not the dead broker. */
    for (int i = S_TAKEOVER_MSGS / 2; i < S_TAKEOVER_MSGS; i++)
        CU_ASSERT_NOT_EQUAL(pt_client_ack(gt, ids[i]), PT_CLIENT_INTERNAL);
    pt_client_destroy(&gt);

    /* The recipient moves to broker0 with the same inbox. broker0 redelivers once
       broker1's lease ended; the SDK drops what the application confirmed and
       acks it, so nothing is handed over twice. */
    gt = s_inbox_client(h, 0, inbox);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    long acked = 0;
    for (int64_t end = s_mono_ms() + 90000; s_mono_ms() < end;) {
        pt_message_t *msg = NULL;
        if (pt_client_recv(gt, 500, &msg) == PT_CLIENT_OK) {
            for (int i = 0; i < S_TAKEOVER_MSGS; i++)
                if (memcmp(ids[i], pt_message_id(msg), 16) == 0)
                    handed[i]++;
            pt_message_destroy(&msg);
        }
        acked = pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE state = 'acked'");
        if (acked == S_TAKEOVER_MSGS)
            break;
    }
    CU_ASSERT_EQUAL(acked, S_TAKEOVER_MSGS);
    for (int i = 0; i < S_TAKEOVER_MSGS; i++)
        CU_ASSERT_EQUAL(handed[i], 1);
    /* The first half: made by broker1. The second: taken over by broker0. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE "
                                            "claimed_by = 'broker1'"),
                    S_TAKEOVER_MSGS / 2);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM deliveries WHERE "
                                            "claimed_by = 'broker0' AND attempts >= 2"),
                    S_TAKEOVER_MSGS / 2);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM case_events WHERE "
                                            "kind = 'acknowledged'"),
                    S_TAKEOVER_MSGS);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
    s_verify_audit(h);
    pt_harness_destroy(&h);
}

/* --- (d) the checkpoint signer dies ---------------------------------------------------- */

static void test_signer_takeover(void)
{
    setenv("PUENTE_CHECKPOINT_SECONDS", "1", 1);
    pt_harness_t *h = s_setup("mb_signer", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pt_client_t *mx = s_client_at(h, 0, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_receipt_info_t r;
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-MB-D1", NULL, &r),
                          PT_CLIENT_OK);
    pt_client_destroy(&mx);
    /* A checkpoint of the registrations and that message, by one broker only. */
    long leaves = pt_harness_sql_count(h, "SELECT count(*) FROM audit_log");
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM checkpoints WHERE tree_size >= %ld", leaves);
    CU_ASSERT_FATAL(s_wait_sql(h, sql, 1, 30000));
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(DISTINCT signed_by) FROM checkpoints"),
                    1);
    int holder = pt_harness_sql_count(h, "SELECT count(*) FROM checkpoints WHERE "
                                         "signed_by = 'broker0'") > 0
                     ? 0
                     : 1;
    int other = 1 - holder;
    fprintf(stderr, "itest_multibroker: broker%d signs; killing it\n", holder);
    CU_ASSERT_EQUAL(pt_harness_broker_stop_at(h, holder, SIGKILL), 128 + SIGKILL);

    /* More events through the survivor; it takes the lock and signs them. */
    mx = s_client_at(h, other, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_EQUAL(s_send(mx, "GT-PGN", "referral.request", "CASE-MB-D2", NULL, &r), PT_CLIENT_OK);
    pt_client_destroy(&mx);
    leaves = pt_harness_sql_count(h, "SELECT count(*) FROM audit_log");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM checkpoints WHERE tree_size >= %ld AND signed_by = 'broker%d'",
             leaves, other);
    CU_ASSERT(s_wait_sql(h, sql, 1, 30000));
    /* Checkpoints stay in time order whoever signed them. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM checkpoints a JOIN checkpoints b "
                                            "ON b.tree_size > a.tree_size AND b.at_ms < a.at_ms"),
                    0);
    s_verify_audit(h);
    unsetenv("PUENTE_CHECKPOINT_SECONDS");
    pt_harness_destroy(&h);
}

/* --- (e) an answer on the other broker, at once ------------------------------------- */

static void test_answer_on_other_broker(void)
{
    pt_harness_t *h = s_setup("mb_answer", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pt_client_t *gt_in = s_client_at(h, 1, "GT-PGN", 1);
    pt_client_t *gt_out = s_client_at(h, 0, "GT-PGN", 0);
    pt_client_t *mx = s_client_at(h, 0, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt_in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    int accepted = 0;
    for (int round = 0; round < 20; round++) {
        char c[40];
        snprintf(c, sizeof c, "CASE-MB-E-%02d", round);
        pt_receipt_info_t receipt;
        CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", c, NULL, &receipt),
                              PT_CLIENT_OK);
        pt_message_t *msg = NULL;
        pt_client_result_t rc = PT_CLIENT_TIMEOUT;
        for (int64_t end = s_mono_ms() + 60000; rc == PT_CLIENT_TIMEOUT && s_mono_ms() < end;)
            rc = pt_client_recv(gt_in, 1000, &msg);
        CU_ASSERT_EQUAL_FATAL(rc, PT_CLIENT_OK);
        CU_ASSERT_STRING_EQUAL(pt_message_header(msg)->case_token, c);
        /* Before the ack, through the other broker. */
        rc = s_send(gt_out, "MX-DIF", "referral.accept", c, receipt.correlation_id, NULL);
        CU_ASSERT_EQUAL(rc, PT_CLIENT_OK);
        accepted += rc == PT_CLIENT_OK;
        CU_ASSERT_EQUAL(pt_client_ack(gt_in, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
    }
    CU_ASSERT_EQUAL(accepted, 20);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, "SELECT count(*) FROM lifecycles WHERE case_token "
                                            "LIKE 'CASE-MB-E-%' AND state = 'accepted'"),
                    20);
    pt_client_destroy(&gt_in);
    pt_client_destroy(&gt_out);
    pt_client_destroy(&mx);
    s_verify_audit(h);
    pt_harness_destroy(&h);
}

int main(void)
{
    const char *cli = getenv("PUENTE_CLI_BIN");
    snprintf(s_cli, sizeof s_cli, "%s", cli ? cli : "build/puente");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("multibroker", NULL, NULL);
    CU_add_test(suite, "(a) sender on broker0, recipient on broker1: woken by NOTIFY",
                test_notify_wakes_other_broker);
    CU_add_test(suite, "(b) one recipient on both brokers: each attempt made once",
                test_one_recipient_on_both_brokers);
    CU_add_test(suite, "(c) broker killed holding claims: taken over after the lease",
                test_takeover_after_lease);
    CU_add_test(suite, "(d) checkpoint signer killed: the other signs", test_signer_takeover);
    CU_add_test(suite, "(e) the recipient answers at once on the other broker",
                test_answer_on_other_broker);
    return pt_cu_main();
}

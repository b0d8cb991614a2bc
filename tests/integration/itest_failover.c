/*  itest_failover — clients move to another broker on loss (issue 9, client side).

    Two real puente-broker processes over ONE database and one key directory: A (the
    harness's broker) and B (pt_harness_second_broker_*). Every client is given the
    list "A,B" and so starts on A:
      - MX-DIF streams N_OUTBOX messages through the durable SDK outbox;
      - HN-DINAF sends N_SYNC messages with pt_client_send, each waiting for its receipt;
      - GT-PGN receives them with a durable inbox and acks each after "storing" it.
    Broker A is SIGKILLed mid-stream: some messages receipted, some queued or in flight,
    some delivered to GT-PGN and not yet acknowledged. Every client moves to B by itself:
    the outbox submits again what has no receipt (same message ids, so B answers one
    that A had stored with the original receipt), the synchronous sender's next send
    gets its receipt from B, and the recipient says Hello to B, which offers again
    every delivery not acknowledged; the SDK drops ids it already handed over.

    Checks: every receipted message is handed to the application exactly once (none
    lost, none twice), the database holds each sender's messages once, and every
    client ends on B. Prints the counts and the failover times.

    Then a broker that hangs instead of dying: A is started again, a receiving
    client given "B,A" attaches to B, and B is stopped with SIGSTOP (its sockets stay
    open, nothing answers). The client's ZeroMQ heartbeats time out (15 s), it moves
    to A, and the message sent meanwhile through A reaches it once.

    Last, the CLI: `puente send --broker B,A` with B down sends through A, `puente
    recv` takes the list from PUENTE_BROKER, and a malformed list is a usage error
    (exit 1) naming the entry.

    The recipient is connected to one broker at a time, as every SDK client is;
    a recipient attached to two brokers at once is itest_multibroker's case (b). */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "cu_main.h"

#define N_OUTBOX 400 /* through the outbox: N_OUTBOX_BEFORE before the kill */
#define N_OUTBOX_BEFORE 150
#define N_SYNC 100 /* pt_client_send: half before the kill, half after */
#define N_TOTAL (N_OUTBOX + N_SYNC)
#define DEADLINE_MS 180000 /* generous: the machine is shared */

static pt_harness_t *s_h;
static char s_list[200]; /* "A,B" */
static char s_b[64];     /* B's endpoint */
static char s_inbox[512];
static char s_state[512];
static char s_token_outbox[64];
static char s_token_sync[64];

/* --- the recipient (a thread: it receives while the main thread kills A) ---- */

typedef struct {
    pthread_mutex_t lock;
    uint8_t ids[N_TOTAL * 2][PT_UUID_BYTES]; /* every id handed to the application */
    size_t n;
    size_t app_duplicates;       /* an id handed over a second time (must stay 0) */
    size_t ack_failures;         /* acks that got no answer (the redelivery is re-acked) */
    int connected;               /* 1 once its client is up, -1 if it could not connect */
    int64_t first_after_kill_ms; /* first message handed over after the kill */
    int64_t killed_at_ms;
    char endpoint[64]; /* where its client ended */
    unsigned long failovers;
    volatile int stop;
} s_recipient_t;

static s_recipient_t s_rx;

static void *s_recipient(void *arg)
{
    (void)arg;
    char err[PUENTE_ERR_BYTES];
    pt_client_opts_t o = {.endpoint = s_list,
                          .keys_dir = pt_harness_keys(s_h),
                          .org_id = "GT-PGN",
                          .receive = 1,
                          .timeout_ms = 15000,
                          .inbox_path = s_inbox};
    pt_client_t *c = pt_client_new(&o, err, sizeof err);
    pthread_mutex_lock(&s_rx.lock);
    s_rx.connected = c ? 1 : -1;
    pthread_mutex_unlock(&s_rx.lock);
    if (!c) {
        fprintf(stderr, "recipient: %s\n", err);
        return NULL;
    }
    while (!s_rx.stop) {
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(c, 200, &m);
        if (rc != PT_CLIENT_OK) {
            if (rc != PT_CLIENT_TIMEOUT)
                fprintf(stderr, "recipient: recv: %d %s\n", rc, pt_client_error(c));
            continue;
        }
        /* "Store" it, then ack: a second hand-over of an id is an application duplicate. */
        pthread_mutex_lock(&s_rx.lock);
        int seen = 0;
        for (size_t i = 0; i < s_rx.n && !seen; i++)
            seen = memcmp(s_rx.ids[i], pt_message_id(m), PT_UUID_BYTES) == 0;
        if (seen)
            s_rx.app_duplicates++;
        else if (s_rx.n < sizeof s_rx.ids / sizeof s_rx.ids[0])
            memcpy(s_rx.ids[s_rx.n++], pt_message_id(m), PT_UUID_BYTES);
        if (s_rx.killed_at_ms && !s_rx.first_after_kill_ms)
            s_rx.first_after_kill_ms = pt_now_ms();
        pthread_mutex_unlock(&s_rx.lock);
        if (pt_client_ack(c, pt_message_id(m)) != PT_CLIENT_OK) {
            pthread_mutex_lock(&s_rx.lock);
            s_rx.ack_failures++;
            pthread_mutex_unlock(&s_rx.lock);
        }
        pt_message_destroy(&m);
    }
    pthread_mutex_lock(&s_rx.lock);
    snprintf(s_rx.endpoint, sizeof s_rx.endpoint, "%s", pt_client_endpoint(c));
    s_rx.failovers = pt_client_failovers(c);
    pthread_mutex_unlock(&s_rx.lock);
    pt_client_destroy(&c);
    return NULL;
}

static size_t s_rx_count(void)
{
    pthread_mutex_lock(&s_rx.lock);
    size_t n = s_rx.n;
    pthread_mutex_unlock(&s_rx.lock);
    return n;
}

/* How many times the application got id (0, 1, or more is a bug). */
static int s_rx_has(const uint8_t *id)
{
    int found = 0;
    pthread_mutex_lock(&s_rx.lock);
    for (size_t i = 0; i < s_rx.n; i++)
        found += memcmp(s_rx.ids[i], id, PT_UUID_BYTES) == 0;
    pthread_mutex_unlock(&s_rx.lock);
    return found;
}

/* --- the synchronous sender (a thread: its second half starts after the kill) --- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int half_done; /* sent the first half, waiting for the gate */
    int gate_open; /* A was killed: send the second half */
    pt_receipt_info_t receipts[N_SYNC];
    pt_client_result_t results[N_SYNC];
    char endpoint[64];
    unsigned long failovers;
    int connected;
} s_sync_t;

static s_sync_t s_sync;

static pt_send_t s_message(const char *const *to, const char *token, uint8_t *body, size_t len,
                           Puente__V1__ConsentSummary *consent)
{
    consent->consent_for_services = 1;
    consent->disclosure_other_orgs = 1;
    consent->legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    pt_send_t msg = {.message_type = "referral.request",
                     .recipients = to,
                     .n_recipients = 1,
                     .case_token = token,
                     .consent = consent,
                     .body = body,
                     .body_len = len};
    return msg;
}

static void *s_sync_sender(void *arg)
{
    (void)arg;
    char err[PUENTE_ERR_BYTES];
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    /* The timeout covers a failover (about PUENTE_FAILOVER_AFTER_MS) with room to spare. */
    pt_client_opts_t o = {.endpoint = s_list,
                          .keys_dir = pt_harness_keys(s_h),
                          .org_id = "HN-DINAF",
                          .timeout_ms = 30000};
    pt_client_t *c = body ? pt_client_new(&o, err, sizeof err) : NULL;
    if (!c)
        fprintf(stderr, "sync sender: %s\n", body ? err : "no example body");
    const char *to[1] = {"GT-PGN"};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    pt_send_t msg = s_message(to, s_token_sync, body, len, &consent);
    for (int i = 0; c && i < N_SYNC; i++) {
        if (i == N_SYNC / 2) {
            pthread_mutex_lock(&s_sync.lock);
            s_sync.half_done = 1;
            pthread_cond_broadcast(&s_sync.changed);
            while (!s_sync.gate_open)
                pthread_cond_wait(&s_sync.changed, &s_sync.lock);
            pthread_mutex_unlock(&s_sync.lock);
        }
        pt_reject_info_t rej;
        s_sync.results[i] = pt_client_send(c, &msg, &s_sync.receipts[i], &rej);
        if (s_sync.results[i] != PT_CLIENT_OK)
            fprintf(stderr, "sync sender: send %d: %s\n", i, pt_client_error(c));
    }
    pthread_mutex_lock(&s_sync.lock);
    s_sync.connected = c != NULL;
    s_sync.half_done = 1; /* also when it could not start: never leave the main thread waiting */
    if (c) {
        snprintf(s_sync.endpoint, sizeof s_sync.endpoint, "%s", pt_client_endpoint(c));
        s_sync.failovers = pt_client_failovers(c);
    }
    pthread_cond_broadcast(&s_sync.changed);
    pthread_mutex_unlock(&s_sync.lock);
    pt_client_destroy(&c);
    free(body);
    return NULL;
}

/* --- the test ------------------------------------------------------------------ */

static int s_suite_init(void)
{
    s_h = pt_harness_new("failover");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0 ||
        pt_harness_second_broker_start(s_h) != 0)
        return 1;
    snprintf(s_b, sizeof s_b, "%s", pt_harness_second_broker_endpoint(s_h));
    snprintf(s_list, sizeof s_list, "%s,%s", pt_harness_endpoint(s_h), s_b);
    snprintf(s_inbox, sizeof s_inbox, "%s/inbox.db", pt_harness_dir(s_h));
    snprintf(s_state, sizeof s_state, "%s/outbox.db", pt_harness_dir(s_h));
    snprintf(s_token_outbox, sizeof s_token_outbox, "FAILOVER-OB-%ld", (long)getpid());
    snprintf(s_token_sync, sizeof s_token_sync, "FAILOVER-SY-%ld", (long)getpid());
    pthread_mutex_init(&s_rx.lock, NULL);
    pthread_mutex_init(&s_sync.lock, NULL);
    pthread_cond_init(&s_sync.changed, NULL);
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* Waits (polling, generous deadline) until done() holds. 1 if it did. */
static int s_wait_for(int (*done)(void), int64_t deadline_ms)
{
    int64_t until = pt_now_ms() + deadline_ms;
    while (!done()) {
        if (pt_now_ms() > until)
            return 0;
        usleep(5 * 1000);
    }
    return 1;
}

static pt_outbox_t *s_ob;
static long s_receipted_target;

static int s_rx_connected(void)
{
    pthread_mutex_lock(&s_rx.lock);
    int c = s_rx.connected;
    pthread_mutex_unlock(&s_rx.lock);
    return c != 0;
}

static int s_sync_half(void)
{
    pthread_mutex_lock(&s_sync.lock);
    int h = s_sync.half_done;
    pthread_mutex_unlock(&s_sync.lock);
    return h;
}

/* Mid-stream: the outbox has a third of its first batch receipted and the
   recipient has messages in hand. */
static int s_mid_stream(void)
{
    return N_OUTBOX_BEFORE - pt_outbox_pending(s_ob) >= s_receipted_target && s_rx_count() >= 10;
}

static int s_outbox_on_b(void)
{
    char at[64];
    pt_outbox_endpoint(s_ob, at, sizeof at);
    return strcmp(at, s_b) == 0;
}

static int s_all_received(void)
{
    return s_rx_count() >= N_TOTAL;
}

static void test_clients_fail_over_without_loss_or_duplicates(void)
{
    char err[PUENTE_ERR_BYTES];
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    const char *to[1] = {"GT-PGN"};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    pt_send_t msg = s_message(to, s_token_outbox, body, len, &consent);
    static uint8_t outbox_ids[N_OUTBOX][PT_UUID_BYTES];

    /* 1. Everyone on A. */
    pthread_t rx, sync;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&rx, NULL, s_recipient, NULL), 0);
    CU_ASSERT_FATAL(s_wait_for(s_rx_connected, DEADLINE_MS));
    CU_ASSERT_EQUAL_FATAL(s_rx.connected, 1);
    pt_outbox_opts_t oo = {.client = {.endpoint = s_list,
                                      .keys_dir = pt_harness_keys(s_h),
                                      .org_id = "MX-DIF",
                                      .timeout_ms = 5000},
                           .state_path = s_state};
    s_ob = pt_outbox_new(&oo, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s_ob);
    CU_ASSERT_EQUAL_FATAL(pt_outbox_wait_directory(s_ob, DEADLINE_MS), PT_CLIENT_OK);
    char at[64];
    pt_outbox_endpoint(s_ob, at, sizeof at);
    CU_ASSERT_STRING_EQUAL(at, pt_harness_endpoint(s_h));

    /* 2. The stream: the outbox's first batch, the synchronous sender's first half. */
    for (int i = 0; i < N_OUTBOX_BEFORE; i++)
        CU_ASSERT_EQUAL_FATAL(pt_outbox_send(s_ob, &msg, outbox_ids[i]), PT_CLIENT_OK);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&sync, NULL, s_sync_sender, NULL), 0);
    s_receipted_target = N_OUTBOX_BEFORE / 3;
    CU_ASSERT_FATAL(s_wait_for(s_mid_stream, DEADLINE_MS));
    CU_ASSERT_FATAL(s_wait_for(s_sync_half, DEADLINE_MS));

    /* 3. A dies. */
    long pending_at_kill = pt_outbox_pending(s_ob);
    size_t received_at_kill = s_rx_count();
    int64_t killed_at = pt_now_ms();
    pthread_mutex_lock(&s_rx.lock);
    s_rx.killed_at_ms = killed_at;
    pthread_mutex_unlock(&s_rx.lock);
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGKILL), 128 + SIGKILL);

    /* 4. The stream goes on: the synchronous sender's second half, the outbox's rest. */
    pthread_mutex_lock(&s_sync.lock);
    s_sync.gate_open = 1;
    pthread_cond_broadcast(&s_sync.changed);
    pthread_mutex_unlock(&s_sync.lock);
    for (int i = N_OUTBOX_BEFORE; i < N_OUTBOX; i++)
        CU_ASSERT_EQUAL_FATAL(pt_outbox_send(s_ob, &msg, outbox_ids[i]), PT_CLIENT_OK);
    CU_ASSERT(s_wait_for(s_outbox_on_b, DEADLINE_MS));
    int64_t outbox_moved_ms = pt_now_ms() - killed_at;

    /* 5. Everything receipted, everything received. */
    CU_ASSERT_EQUAL(pt_outbox_flush(s_ob, DEADLINE_MS), PT_CLIENT_OK);
    pthread_join(sync, NULL);
    CU_ASSERT_EQUAL(s_sync.connected, 1);
    CU_ASSERT(s_wait_for(s_all_received, DEADLINE_MS));
    /* Whatever else B offers again (acks lost with A) must not reach the application. */
    usleep(3000 * 1000);
    s_rx.stop = 1;
    pthread_join(rx, NULL);

    /* 6. The counts. */
    size_t receipted = 0, duplicate_receipts = 0, lost = 0, app_twice = 0;
    for (int i = 0; i < N_OUTBOX; i++) {
        pt_receipt_info_t r;
        pt_reject_info_t rej;
        pt_outbox_state_t st = pt_outbox_status(s_ob, outbox_ids[i], &r, &rej);
        CU_ASSERT_EQUAL(st, PT_OUTBOX_SUBMITTED);
        if (st != PT_OUTBOX_SUBMITTED)
            continue;
        receipted++;
        duplicate_receipts += r.duplicate != 0;
        int got = s_rx_has(outbox_ids[i]);
        lost += got == 0;
        app_twice += got > 1;
    }
    for (int i = 0; i < N_SYNC; i++) {
        CU_ASSERT_EQUAL(s_sync.results[i], PT_CLIENT_OK);
        if (s_sync.results[i] != PT_CLIENT_OK)
            continue;
        receipted++;
        duplicate_receipts += s_sync.receipts[i].duplicate != 0;
        int got = s_rx_has(s_sync.receipts[i].message_id);
        lost += got == 0;
        app_twice += got > 1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE case_token = '%s'",
             s_token_outbox);
    long stored_outbox = pt_harness_sql_count(s_h, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE case_token = '%s'",
             s_token_sync);
    long stored_sync = pt_harness_sql_count(s_h, sql);
    /* Offered again after the first attempt (informational: the schema may change). */
    long redelivered = pt_harness_sql_count(
        s_h, "SELECT coalesce(sum(attempts - 1), 0) FROM deliveries WHERE recipient = 'GT-PGN' "
             "AND attempts > 1");
    unsigned long ob_failovers = pt_outbox_endpoint(s_ob, at, sizeof at);

    printf("\nitest_failover: sent %d (outbox %d, pt_client_send %d); broker A SIGKILLed with %zu "
           "received, %ld queued in the outbox\n",
           N_TOTAL, N_OUTBOX, N_SYNC, received_at_kill, pending_at_kill);
    printf("itest_failover: receipted %zu (duplicate receipts %zu), delivered to the application "
           "%zu, application duplicates %zu, lost %zu\n",
           receipted, duplicate_receipts, s_rx_count(), s_rx.app_duplicates + app_twice, lost);
    printf("itest_failover: redelivery attempts dropped or re-acked by the SDK %ld, acks without "
           "an answer %zu; stored in the database: outbox %ld, pt_client_send %ld\n",
           redelivered, s_rx.ack_failures, stored_outbox, stored_sync);
    printf("itest_failover: failover time: outbox on B %lld ms after the kill, first message to "
           "the recipient via B %lld ms after it; failovers: outbox %lu, sender %lu, recipient "
           "%lu\n",
           (long long)outbox_moved_ms,
           (long long)(s_rx.first_after_kill_ms ? s_rx.first_after_kill_ms - killed_at : -1),
           ob_failovers, s_sync.failovers, s_rx.failovers);

    CU_ASSERT(pending_at_kill > 0);    /* the kill was mid-stream ... */
    CU_ASSERT(received_at_kill >= 10); /* ... for the recipient too */
    CU_ASSERT_EQUAL(receipted, N_TOTAL);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(app_twice, 0);
    CU_ASSERT_EQUAL(s_rx.app_duplicates, 0);
    CU_ASSERT_EQUAL(s_rx_count(), N_TOTAL);
    CU_ASSERT_EQUAL(stored_outbox, N_OUTBOX);
    CU_ASSERT_EQUAL(stored_sync, N_SYNC);
    /* Everyone ended on B. */
    CU_ASSERT_STRING_EQUAL(at, s_b);
    CU_ASSERT(ob_failovers >= 1);
    CU_ASSERT_STRING_EQUAL(s_sync.endpoint, s_b);
    CU_ASSERT(s_sync.failovers >= 1);
    CU_ASSERT_STRING_EQUAL(s_rx.endpoint, s_b);
    CU_ASSERT(s_rx.failovers >= 1);
    pt_outbox_destroy(&s_ob);
    free(body);
}

static void test_hung_broker_left_after_heartbeat_timeout(void)
{
    char err[PUENTE_ERR_BYTES];
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0); /* A is back */
    char list[200];
    snprintf(list, sizeof list, "%s,%s", s_b, pt_harness_endpoint(s_h));
    pt_client_opts_t o = {.endpoint = list,
                          .keys_dir = pt_harness_keys(s_h),
                          .org_id = "GT-PGN",
                          .receive = 1,
                          .timeout_ms = 15000,
                          .inbox_path = s_inbox};
    pt_client_t *rx = pt_client_new(&o, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    CU_ASSERT_STRING_EQUAL(pt_client_endpoint(rx), s_b);
    pt_message_t *m = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(rx, 500, &m), PT_CLIENT_TIMEOUT); /* attached, nothing due */

    /* B hangs. A message goes through A meanwhile. */
    pid_t b = (pid_t)pt_harness_second_broker_pid(s_h);
    CU_ASSERT_FATAL(b > 0);
    int64_t stopped_at = pt_now_ms();
    CU_ASSERT_EQUAL_FATAL(kill(b, SIGSTOP), 0);
    pt_client_t *tx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    const char *to[1] = {"GT-PGN"};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    pt_send_t msg = s_message(to, "FAILOVER-HUNG", body, len, &consent);
    pt_receipt_info_t receipt;
    CU_ASSERT_EQUAL(pt_client_send(tx, &msg, &receipt, NULL), PT_CLIENT_OK);
    pt_client_destroy(&tx);
    free(body);

    /* The receiving client notices only through its heartbeats, and moves to A. */
    int64_t until = pt_now_ms() + DEADLINE_MS;
    while (strcmp(pt_client_endpoint(rx), pt_harness_endpoint(s_h)) != 0 && pt_now_ms() < until) {
        if (pt_client_recv(rx, 500, &m) == PT_CLIENT_OK) {
            CU_FAIL("a message arrived before the client left the hung broker");
            pt_message_destroy(&m);
        }
    }
    int64_t moved_ms = pt_now_ms() - stopped_at;
    CU_ASSERT_STRING_EQUAL(pt_client_endpoint(rx), pt_harness_endpoint(s_h));
    CU_ASSERT_EQUAL(pt_client_failovers(rx), 1);
    /* B may have been frozen inside a transaction; let it finish before A needs its rows. */
    kill(b, SIGCONT);

    size_t handed = 0, others = 0;
    until = pt_now_ms() + DEADLINE_MS;
    while (handed == 0 && pt_now_ms() < until) {
        if (pt_client_recv(rx, 500, &m) != PT_CLIENT_OK)
            continue;
        if (memcmp(pt_message_id(m), receipt.message_id, PT_UUID_BYTES) == 0)
            handed++;
        else
            others++;
        CU_ASSERT_EQUAL(pt_client_ack(rx, pt_message_id(m)), PT_CLIENT_OK);
        pt_message_destroy(&m);
    }
    /* Once only. */
    while (pt_client_recv(rx, 2000, &m) == PT_CLIENT_OK) {
        if (memcmp(pt_message_id(m), receipt.message_id, PT_UUID_BYTES) == 0)
            handed++;
        pt_message_destroy(&m);
    }
    printf("\nitest_failover: hung broker (SIGSTOP) left after %lld ms (ZeroMQ heartbeats: 15 s "
           "without an answer, then %d ms without a connection); the message sent meanwhile "
           "handed over %zu time(s)\n",
           (long long)moved_ms, PUENTE_FAILOVER_AFTER_MS, handed);
    CU_ASSERT_EQUAL(handed, 1);
    CU_ASSERT_EQUAL(others, 0);
    pt_client_destroy(&rx);
    pt_harness_second_broker_stop(s_h, SIGTERM);
}

static char s_out[8192], s_err[8192];

/* Runs the CLI with args, env (may be "") put before it. Its exit status. */
static int s_cli(const char *env, const char *args)
{
    char command[2400];
    const char *cli = getenv("PUENTE_CLI_BIN");
    snprintf(command, sizeof command, "%s %s %s", env, cli ? cli : "build/puente", args);
    return pt_harness_sh(s_h, command, s_out, sizeof s_out, s_err, sizeof s_err);
}

static void test_cli_takes_the_list(void)
{
    /* B is down since the test before; A runs. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_second_broker_pid(s_h), 0);
    char json[700], args[2000], env[300];
    snprintf(json, sizeof json, "%s/referral.json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL_FATAL(s_cli("", "example referral.request"), 0);
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(s_out, file);
    fclose(file);
    snprintf(args, sizeof args,
             "send --as MX-DIF --to GT-PGN --type referral.request --case FAILOVER-CLI "
             "--json '%s' --broker '%s,%s'",
             json, s_b, pt_harness_endpoint(s_h));
    CU_ASSERT_EQUAL(s_cli("", args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "message_id"));

    /* PUENTE_BROKER with the list (overriding the harness's single endpoint). */
    snprintf(env, sizeof env, "env PUENTE_BROKER='%s,%s'", s_b, pt_harness_endpoint(s_h));
    CU_ASSERT_EQUAL(s_cli(env, "recv --as GT-PGN --json-output"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\":\"FAILOVER-CLI\""));

    /* A malformed list: exit 1, the entry named, nothing sent. */
    snprintf(args, sizeof args,
             "send --as MX-DIF --to GT-PGN --type referral.request --case FAILOVER-CLI-2 "
             "--json '%s' --broker '%s,,%s'",
             json, pt_harness_endpoint(s_h), s_b);
    CU_ASSERT_EQUAL(s_cli("", args), 1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(s_err, "broker endpoint list, entry 2 of 3 is empty (a comma too many?)"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(
                        s_h, "SELECT count(*) FROM messages WHERE case_token = 'FAILOVER-CLI-2'"),
                    0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("failover", s_suite_init, s_suite_clean);
    CU_add_test(suite,
                "broker A killed mid-stream: senders and recipient move to B, every receipted "
                "message handed over once",
                test_clients_fail_over_without_loss_or_duplicates);
    CU_add_test(suite, "a hung broker is left after the heartbeat timeout",
                test_hung_broker_left_after_heartbeat_timeout);
    CU_add_test(suite, "the CLI takes the list", test_cli_takes_the_list);
    return pt_cu_main();
}

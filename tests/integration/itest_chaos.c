/*  itest_chaos — nothing receipted is ever lost (issue 7).

    1. Broker crashes: three senders (MX-DIF, HN-DINAF, SV-CONNA) stream referral
       requests through the SDK's durable outbox (each its own state file, two
       correlation ids per sender) to two recipients (GT-PGN, US-ORR) that receive
       with a durable inbox, while the broker is killed with SIGKILL at random
       moments and restarted. Every 25th message of a sender lacks consent and must
       be refused. At the end: every receipted message reached its recipient's
       application exactly once, in order per correlation id; nothing refused was
       stored; every case's hash chain recomputes with pt_trail_hash and matches the
       trail the operator reads, and `puente audit verify --db` passes over the
       whole database (chains, Merkle log, checkpoints, signatures). Counts are
       printed.
       PUENTE_CHAOS_MESSAGES (per sender, default 200) and PUENTE_CHAOS_KILLS
       (default 5) size the run; `make chaos` runs a long one.
    2. Recipient crash mid-delivery: a receiving process confirms some messages,
       holds others unconfirmed, confirms one more while the broker cannot answer,
       and is killed; the broker is killed too. A new process with the same inbox
       gets the unconfirmed ones again, never the confirmed ones (its inbox re-acks
       them), and everything ends acknowledged once, in order. */
#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "pt_trail.h"
#include "cu_main.h"

#define N_SENDERS 3
#define N_STREAMS 2 /* per sender */
#define N_RECIPIENTS 2
#define REFUSE_EVERY 25

static pt_harness_t *s_h;
static const char *const s_senders[N_SENDERS] = {"MX-DIF", "HN-DINAF", "SV-CONNA"};
static const char *const s_recipients[N_RECIPIENTS] = {"GT-PGN", "US-ORR"};

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("chaos", NULL);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* --- what was sent and what arrived ------------------------------------------ */

typedef struct {
    uint8_t id[16];
    int stream; /* global stream index, -1 for a refused message */
} s_sent_t;

typedef struct {
    uint8_t correlation[16];
    char token[64];
    const char *sender;
    const char *recipient;
} s_stream_t;

typedef struct {
    uint8_t id[16];
    uint8_t correlation[16];
} s_got_t;

typedef struct {
    const char *org;
    char inbox[600];
    s_got_t *got; /* handed to the application, in order */
    size_t n_got, cap;
    long app_duplicates; /* ids handed over twice (must stay 0) */
    long reconnects;
    long ack_retries;
} s_receiver_t;

static volatile int s_stop_receivers;
static volatile int s_kills_done;
static long s_kills_wanted;

static int s_find(const s_got_t *got, size_t n, const uint8_t *id)
{
    for (size_t i = n; i-- > 0;)
        if (memcmp(got[i].id, id, 16) == 0)
            return (int)i;
    return -1;
}

static pt_client_t *s_connect(s_receiver_t *r)
{
    char err[PUENTE_ERR_BYTES];
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = pt_harness_keys(s_h),
                             .org_id = r->org,
                             .receive = 1,
                             .timeout_ms = 2000,
                             .inbox_path = r->inbox};
    return pt_client_new(&opts, err, sizeof err);
}

/* The recipient application: store (here: record), then confirm with an ack. */
static void *s_receiver_main(void *arg)
{
    s_receiver_t *r = arg;
    pt_client_t *client = NULL;
    while (!s_stop_receivers) {
        if (!client) {
            client = s_connect(r);
            if (!client) {
                usleep(200 * 1000);
                continue;
            }
            r->reconnects++;
        }
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(client, 300, &m);
        if (rc == PT_CLIENT_TIMEOUT || rc == PT_CLIENT_REFUSED)
            continue;
        if (rc != PT_CLIENT_OK) {
            pt_client_destroy(&client); /* socket trouble: a new connection */
            continue;
        }
        const uint8_t *id = pt_message_id(m);
        if (s_find(r->got, r->n_got, id) >= 0) {
            r->app_duplicates++;
        } else {
            if (r->n_got == r->cap) {
                r->cap = r->cap ? 2 * r->cap : 1024;
                r->got = realloc(r->got, r->cap * sizeof *r->got);
            }
            memcpy(r->got[r->n_got].id, id, 16);
            memcpy(r->got[r->n_got].correlation, pt_message_header(m)->correlation_id.data, 16);
            r->n_got++;
        }
        /* The inbox records the confirmation before the ack goes out; an ack the
           broker did not answer is sent again (a redelivery of an id handed over
           in this process is not re-acked by the SDK unless this ack succeeded). */
        while (pt_client_ack(client, id) != PT_CLIENT_OK && !s_stop_receivers) {
            r->ack_retries++;
            usleep(100 * 1000);
        }
        pt_message_destroy(&m);
    }
    pt_client_destroy(&client);
    return NULL;
}

static void *s_killer_main(void *arg)
{
    (void)arg;
    for (long k = 0; k < s_kills_wanted; k++) {
        usleep((useconds_t)(300 + rand() % 1200) * 1000);
        if (pt_harness_broker_stop(s_h, SIGKILL) != 128 + SIGKILL)
            fprintf(stderr, "chaos: broker did not die of SIGKILL\n");
        usleep((useconds_t)(rand() % 500) * 1000);
        for (int tries = 0; tries < 5 && pt_harness_broker_start(s_h) != 0; tries++)
            usleep(200 * 1000);
        s_kills_done++;
    }
    return NULL;
}

/* Recomputes a case's chain from the database and compares it with the operator's
   trail. Returns the number of events verified, -1 on any mismatch. */
static long s_verify_chain(PGconn *pg, pt_client_t *op, const char *token)
{
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    if (pt_client_trail(op, token, &trail, &rej) != PT_CLIENT_OK)
        return -1;
    const char *params[1] = {token};
    PGresult *res = PQexecParams(pg,
                                 "SELECT seq, at_ms, kind, actor, counterparty, message_type, "
                                 "uuid_send(message_id), detail, prev_hash, hash FROM case_events "
                                 "WHERE case_token = $1 ORDER BY seq",
                                 1, NULL, params, NULL, NULL, 1);
    long verified = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != trail->n_events)
        goto done;
    uint8_t prev[32] = {0};
    for (int i = 0; i < PQntuples(res); i++) {
        uint64_t seq = 0;
        int64_t at = 0;
        for (int b = 0; b < 8; b++) {
            seq = seq << 8 | (uint8_t)PQgetvalue(res, i, 0)[b];
            at = (int64_t)((uint64_t)at << 8 | (uint8_t)PQgetvalue(res, i, 1)[b]);
        }
        char *text[4];
        for (int c = 0; c < 4; c++)
            text[c] = strndup(PQgetvalue(res, i, 2 + c), (size_t)PQgetlength(res, i, 2 + c));
        pt_trail_event_t ev = {
            .seq = seq,
            .at_ms = at,
            .kind = text[0],
            .case_token = token,
            .actor = text[1],
            .counterparty = text[2],
            .message_type = text[3],
            .message_id = PQgetisnull(res, i, 6) ? NULL : (const uint8_t *)PQgetvalue(res, i, 6),
            .detail = (const uint8_t *)PQgetvalue(res, i, 7),
            .detail_len = (size_t)PQgetlength(res, i, 7)};
        uint8_t hash[32];
        int ok = pt_trail_hash(prev, &ev, hash) == 0 && seq == (uint64_t)i + 1 &&
                 PQgetlength(res, i, 8) == 32 && memcmp(PQgetvalue(res, i, 8), prev, 32) == 0 &&
                 PQgetlength(res, i, 9) == 32 && memcmp(PQgetvalue(res, i, 9), hash, 32) == 0 &&
                 trail->events[i]->hash.len == 32 &&
                 memcmp(trail->events[i]->hash.data, hash, 32) == 0 &&
                 strcmp(trail->events[i]->kind, text[0]) == 0;
        for (int c = 0; c < 4; c++)
            free(text[c]);
        if (!ok) {
            fprintf(stderr, "chaos: chain of %s breaks at seq %llu\n", token,
                    (unsigned long long)seq);
            goto done;
        }
        memcpy(prev, hash, 32);
    }
    verified = PQntuples(res);
done:
    PQclear(res);
    puente__v1__trail_reply__free_unpacked(trail, NULL);
    return verified;
}

static void test_broker_killed_under_load(void)
{
    long per_sender = pt_harness_env_long("PUENTE_CHAOS_MESSAGES", 200);
    s_kills_wanted = pt_harness_env_long("PUENTE_CHAOS_KILLS", 5);
    int64_t started = pt_now_ms();
    srand((unsigned)started);

    s_stream_t streams[N_SENDERS * N_STREAMS];
    for (int s = 0; s < N_SENDERS; s++)
        for (int k = 0; k < N_STREAMS; k++) {
            s_stream_t *st = &streams[s * N_STREAMS + k];
            pt_uuidv7(st->correlation);
            snprintf(st->token, sizeof st->token, "CHAOS-%s-%d", s_senders[s], k);
            st->sender = s_senders[s];
            /* SV-CONNA has no agreement with US-ORR in the demo set. */
            st->recipient = strcmp(s_senders[s], "SV-CONNA") == 0 ? "GT-PGN" : s_recipients[k];
        }

    /* Outboxes, each with its own state file, with a directory fetched. */
    pt_outbox_t *outbox[N_SENDERS] = {NULL};
    for (int s = 0; s < N_SENDERS; s++) {
        outbox[s] = pt_harness_outbox(s_h, s_senders[s], s_senders[s], 2000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(outbox[s]);
    }

    s_receiver_t receivers[N_RECIPIENTS];
    pthread_t rx_threads[N_RECIPIENTS], killer;
    memset(receivers, 0, sizeof receivers);
    s_stop_receivers = 0;
    s_kills_done = 0;
    for (int r = 0; r < N_RECIPIENTS; r++) {
        receivers[r].org = s_recipients[r];
        snprintf(receivers[r].inbox, sizeof receivers[r].inbox, "%s/inbox-%s.db",
                 pt_harness_dir(s_h), s_recipients[r]);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&rx_threads[r], NULL, s_receiver_main, &receivers[r]),
                              0);
    }
    CU_ASSERT_EQUAL_FATAL(pthread_create(&killer, NULL, s_killer_main, NULL), 0);

    /* Stream: one message per sender per round, round-robin over its streams. */
    size_t body_len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &body_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    s_sent_t *sent = calloc((size_t)(N_SENDERS * per_sender), sizeof *sent);
    size_t n_sent = 0, n_refused_sent = 0, send_failures = 0;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    Puente__V1__ConsentSummary no_consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    for (long i = 0; i < per_sender; i++) {
        for (int s = 0; s < N_SENDERS; s++) {
            int refused = (i + 1) % REFUSE_EVERY == 0;
            int stream = s * N_STREAMS + (int)(i % N_STREAMS);
            char token[64];
            snprintf(token, sizeof token, "CHAOS-REFUSED-%s", s_senders[s]);
            const char *to[1] = {streams[stream].recipient};
            pt_send_t msg = {.message_type = "referral.request",
                             .recipients = to,
                             .n_recipients = 1,
                             .case_token = refused ? token : streams[stream].token,
                             .correlation_id = refused ? NULL : streams[stream].correlation,
                             .consent = refused ? &no_consent : &consent,
                             .body = body,
                             .body_len = body_len};
            s_sent_t *rec = &sent[n_sent];
            if (pt_outbox_send(outbox[s], &msg, rec->id) != PT_CLIENT_OK) {
                send_failures++;
                continue;
            }
            rec->stream = refused ? -1 : stream;
            n_refused_sent += refused;
            n_sent++;
        }
        usleep(20 * 1000);
    }
    free(body);
    CU_ASSERT_EQUAL(send_failures, 0);
    pthread_join(killer, NULL);
    CU_ASSERT(s_kills_done >= s_kills_wanted);

    /* The broker is up for good: the outboxes drain, the receivers catch up. */
    for (int s = 0; s < N_SENDERS; s++)
        CU_ASSERT_EQUAL(pt_outbox_flush(outbox[s], 180000), PT_CLIENT_OK);
    size_t receipted = 0, refused = 0, other = 0;
    for (size_t i = 0; i < n_sent; i++) {
        int s = -1;
        for (int k = 0; k < N_SENDERS && s < 0; k++)
            if (pt_outbox_status(outbox[k], sent[i].id, NULL, NULL) != PT_OUTBOX_UNKNOWN)
                s = k;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        pt_outbox_state_t state =
            s >= 0 ? pt_outbox_status(outbox[s], sent[i].id, NULL, &rej) : PT_OUTBOX_UNKNOWN;
        if (state == PT_OUTBOX_SUBMITTED && sent[i].stream >= 0)
            receipted++;
        else if (state == PT_OUTBOX_REJECTED && sent[i].stream < 0 &&
                 rej.code == PUENTE__V1__REJECT_CODE__REJECT_CONSENT_MISSING)
            refused++;
        else
            other++;
    }
    int64_t deadline = pt_now_ms() + 120000;
    for (;;) {
        size_t got = receivers[0].n_got + receivers[1].n_got;
        if (got >= receipted || pt_now_ms() > deadline)
            break;
        usleep(200 * 1000);
    }
    usleep(1500 * 1000); /* room for a late duplicate to show up */
    s_stop_receivers = 1;
    for (int r = 0; r < N_RECIPIENTS; r++)
        pthread_join(rx_threads[r], NULL);
    for (int s = 0; s < N_SENDERS; s++)
        pt_outbox_destroy(&outbox[s]);

    /* Exactly once, in order per correlation id. */
    size_t delivered = 0, lost = 0, out_of_order = 0, strays = 0;
    long app_duplicates = 0;
    for (int r = 0; r < N_RECIPIENTS; r++) {
        delivered += receivers[r].n_got;
        app_duplicates += receivers[r].app_duplicates;
    }
    for (size_t st = 0; st < N_SENDERS * N_STREAMS; st++) {
        s_receiver_t *r = &receivers[strcmp(streams[st].recipient, "GT-PGN") == 0 ? 0 : 1];
        size_t pos = 0; /* next index in r->got to match for this stream */
        for (size_t i = 0; i < n_sent; i++) {
            if (sent[i].stream != (int)st)
                continue;
            int at = s_find(r->got, r->n_got, sent[i].id);
            if (at < 0) {
                lost++;
                continue;
            }
            if ((size_t)at < pos)
                out_of_order++;
            pos = (size_t)at;
        }
    }
    for (int r = 0; r < N_RECIPIENTS; r++)
        for (size_t i = 0; i < receivers[r].n_got; i++) {
            int known = 0;
            for (size_t k = 0; k < n_sent && !known; k++)
                known = sent[k].stream >= 0 && memcmp(sent[k].id, receivers[r].got[i].id, 16) == 0;
            strays += !known;
        }

    /* The database: nothing refused, every receipted message once, all acknowledged. */
    long refused_stored = pt_harness_sql_count(
        s_h, "SELECT count(*) FROM messages WHERE case_token LIKE 'CHAOS-REFUSED-%'");
    long stored = pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token LIKE "
                                            "'CHAOS-%' AND case_token NOT LIKE 'CHAOS-REFUSED-%'");
    long unacked = pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                             "USING (message_id) WHERE m.case_token LIKE 'CHAOS-%' "
                                             "AND d.acked_at IS NULL");
    long attempts = pt_harness_sql_count(s_h, "SELECT coalesce(sum(attempts), 0) FROM deliveries d "
                                              "JOIN messages m USING (message_id) WHERE "
                                              "m.case_token LIKE 'CHAOS-%'");

    /* Hash chains of every case involved. */
    PGconn *pg = PQconnectdb(pt_harness_conninfo(s_h));
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    long events = 0, chains_bad = 0;
    for (size_t st = 0; st < N_SENDERS * N_STREAMS; st++) {
        long n = s_verify_chain(pg, op, streams[st].token);
        if (n <= 0)
            chains_bad++;
        else
            events += n;
    }
    pt_client_destroy(&op);
    PQfinish(pg);

    long reconnects = 0, ack_retries = 0;
    for (int r = 0; r < N_RECIPIENTS; r++) {
        reconnects += receivers[r].reconnects;
        ack_retries += receivers[r].ack_retries;
        free(receivers[r].got);
    }
    printf("\n  chaos: %d broker kills (SIGKILL) in %.1f s\n"
           "  sent %zu (of which %zu meant to be refused), receipted %zu, refused %zu, other %zu\n"
           "  delivered to the applications %zu, duplicates handed to an application %ld, "
           "lost %zu, out of order %zu, strays %zu\n"
           "  duplicates suppressed (broker delivery attempts %ld - handed over %zu) %ld; "
           "receiver connections %ld, ack retries %ld\n"
           "  stored %ld, refused stored %ld, unacknowledged %ld; hash chains: %zu cases, "
           "%ld events recomputed with pt_trail_hash, %ld broken\n",
           s_kills_done, (double)(pt_now_ms() - started) / 1000.0, n_sent, n_refused_sent,
           receipted, refused, other, delivered, app_duplicates, lost, out_of_order, strays,
           attempts, delivered, attempts - (long)delivered, reconnects, ack_retries, stored,
           refused_stored, unacked, (size_t)(N_SENDERS * N_STREAMS), events, chains_bad);

    CU_ASSERT_EQUAL(n_sent, (size_t)(N_SENDERS * per_sender));
    CU_ASSERT_EQUAL(receipted + refused, n_sent);
    CU_ASSERT_EQUAL(refused, n_refused_sent);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT_EQUAL(delivered, receipted);
    CU_ASSERT_EQUAL(app_duplicates, 0);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(out_of_order, 0);
    CU_ASSERT_EQUAL(strays, 0);
    CU_ASSERT_EQUAL(refused_stored, 0);
    CU_ASSERT_EQUAL(stored, (long)receipted);
    CU_ASSERT_EQUAL(unacked, 0);
    CU_ASSERT_EQUAL(chains_bad, 0);
    CU_ASSERT(events >= 4 * (long)receipted); /* submitted, stored, delivered, acknowledged */
    /* The auditor's check of everything, after all the kills. */
    static char vout[8192], verr[8192];
    int verify = pt_harness_cli(s_h, vout, sizeof vout, verr, sizeof verr, "audit verify --db '%s'",
                                pt_harness_conninfo(s_h));
    printf("  puente audit verify: exit %d: %s", verify,
           strstr(vout, "verified:") ? strstr(vout, "verified:") : verr);
    CU_ASSERT_EQUAL(verify, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(vout, "verified:"));
    free(sent);
}

/* --- recipient crash mid-delivery -------------------------------------------- */

#define RC_STREAMS 4
#define RC_PER_STREAM 5
#define RC_TOTAL (RC_STREAMS * RC_PER_STREAM)
#define RC_ACK_FIRST 8

static void s_report(int fd, char kind, const uint8_t *id)
{
    uint8_t rec[17] = {(uint8_t)kind};
    if (id)
        memcpy(rec + 1, id, 16);
    if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
        _exit(2);
}

/* The crashing receiver: H = handed over, A = confirmed and acked, C = confirmed
   in the inbox while the broker could not answer, P = paused, D = done. */
static void s_crash_child(const char *inbox, int report_fd, int go_fd)
{
    char err[PUENTE_ERR_BYTES];
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = pt_harness_keys(s_h),
                             .org_id = "HN-DINAF",
                             .receive = 1,
                             .timeout_ms = 1000,
                             .inbox_path = inbox};
    pt_client_t *client = pt_client_new(&opts, err, sizeof err);
    if (!client)
        _exit(3);
    int acked = 0, held = 0;
    uint8_t held_ids[RC_STREAMS][16];
    while (held < 2) {
        pt_message_t *m = NULL;
        if (pt_client_recv(client, 3000, &m) != PT_CLIENT_OK)
            break;
        s_report(report_fd, 'H', pt_message_id(m));
        if (acked < RC_ACK_FIRST) {
            if (pt_client_ack(client, pt_message_id(m)) == PT_CLIENT_OK) {
                s_report(report_fd, 'A', pt_message_id(m));
                acked++;
            }
        } else {
            memcpy(held_ids[held++], pt_message_id(m), 16);
        }
        pt_message_destroy(&m);
    }
    s_report(report_fd, 'P', NULL);
    char go;
    if (read(go_fd, &go, 1) != 1)
        _exit(4);
    /* The broker is stopped now: the inbox records the confirmation, the ack finds
       nobody to answer it. */
    if (held > 0) {
        pt_client_ack(client, held_ids[0]);
        s_report(report_fd, 'C', held_ids[0]);
    }
    s_report(report_fd, 'D', NULL);
    for (;;)
        pause();
}

static void test_recipient_killed_mid_delivery(void)
{
    const char *token = "CHAOS-RECIPIENT-CRASH";
    char inbox[700];
    snprintf(inbox, sizeof inbox, "%s/inbox-crash.db", pt_harness_dir(s_h));

    /* 4 correlation ids x 5 messages, MX-DIF -> HN-DINAF, all receipted. */
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    size_t body_len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &body_len);
    uint8_t corr[RC_STREAMS][16], ids[RC_TOTAL][16];
    int stream_of[RC_TOTAL];
    for (int k = 0; k < RC_STREAMS; k++)
        pt_uuidv7(corr[k]);
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    const char *to[1] = {"HN-DINAF"};
    for (int i = 0; i < RC_TOTAL; i++) {
        pt_send_t msg = {.message_type = "referral.request",
                         .recipients = to,
                         .n_recipients = 1,
                         .case_token = token,
                         .correlation_id = corr[i % RC_STREAMS],
                         .consent = &consent,
                         .body = body,
                         .body_len = body_len};
        pt_receipt_info_t receipt;
        pt_reject_info_t rej;
        CU_ASSERT_EQUAL_FATAL(pt_client_send(mx, &msg, &receipt, &rej), PT_CLIENT_OK);
        memcpy(ids[i], receipt.message_id, 16);
        stream_of[i] = i % RC_STREAMS;
    }
    free(body);
    pt_client_destroy(&mx);

    int report[2], go[2];
    CU_ASSERT_EQUAL_FATAL(pipe(report), 0);
    CU_ASSERT_EQUAL_FATAL(pipe(go), 0);
    fflush(NULL);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        close(report[0]);
        close(go[1]);
        s_crash_child(inbox, report[1], go[0]);
        _exit(5);
    }
    close(report[1]);
    close(go[0]);

    /* What the application saw, in order: confirmed ids (child A/C, then ours). */
    uint8_t confirmed[RC_TOTAL * 2][16], handed_child[RC_TOTAL][16], confirmed_in_limbo[16];
    size_t n_confirmed = 0, n_handed_child = 0;
    int have_limbo = 0, done = 0;
    while (!done) {
        uint8_t rec[17];
        if (read(report[0], rec, sizeof rec) != (ssize_t)sizeof rec)
            break;
        switch (rec[0]) {
        case 'H':
            memcpy(handed_child[n_handed_child++ % RC_TOTAL], rec + 1, 16);
            break;
        case 'A':
            memcpy(confirmed[n_confirmed++], rec + 1, 16);
            break;
        case 'P':
            CU_ASSERT_EQUAL(kill(pt_harness_broker_pid(s_h), SIGSTOP), 0);
            usleep(100 * 1000);
            CU_ASSERT_EQUAL(write(go[1], "g", 1), 1);
            break;
        case 'C':
            memcpy(confirmed_in_limbo, rec + 1, 16);
            memcpy(confirmed[n_confirmed++], rec + 1, 16);
            have_limbo = 1;
            break;
        case 'D':
            done = 1;
            break;
        }
    }
    close(report[0]);
    close(go[1]);
    kill(child, SIGKILL);
    int ws = 0;
    waitpid(child, &ws, 0);
    CU_ASSERT_TRUE(done);
    CU_ASSERT_TRUE_FATAL(have_limbo);
    CU_ASSERT_EQUAL(n_confirmed, RC_ACK_FIRST + 1);
    CU_ASSERT_EQUAL(n_handed_child, RC_ACK_FIRST + 2);
    /* The broker dies stopped: the limbo ack was never read. */
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGKILL), 128 + SIGKILL);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries d JOIN messages m USING (message_id) WHERE "
             "m.case_token = '%s' AND d.acked_at IS NOT NULL",
             token);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), RC_ACK_FIRST);

    /* The restarted receiver: same inbox file. */
    char err[PUENTE_ERR_BYTES];
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = pt_harness_keys(s_h),
                             .org_id = "HN-DINAF",
                             .receive = 1,
                             .timeout_ms = 5000,
                             .inbox_path = inbox};
    pt_client_t *rx = pt_client_new(&opts, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    size_t redelivered_unconfirmed = 0, handed_again_confirmed = 0;
    int64_t deadline = pt_now_ms() + 30000;
    while (n_confirmed < RC_TOTAL && pt_now_ms() < deadline) {
        pt_message_t *m = NULL;
        if (pt_client_recv(rx, 1000, &m) != PT_CLIENT_OK)
            continue;
        const uint8_t *id = pt_message_id(m);
        int was_confirmed = 0, was_handed = 0;
        for (size_t i = 0; i < n_confirmed; i++)
            was_confirmed |= memcmp(confirmed[i], id, 16) == 0;
        for (size_t i = 0; i < n_handed_child && i < RC_TOTAL; i++)
            was_handed |= memcmp(handed_child[i], id, 16) == 0;
        handed_again_confirmed += was_confirmed;
        redelivered_unconfirmed += was_handed && !was_confirmed;
        if (!was_confirmed && pt_client_ack(rx, id) == PT_CLIENT_OK)
            memcpy(confirmed[n_confirmed++], id, 16);
        pt_message_destroy(&m);
    }
    pt_message_t *more = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(rx, 1500, &more), PT_CLIENT_TIMEOUT);
    pt_message_destroy(&more);
    pt_client_destroy(&rx);

    CU_ASSERT_EQUAL(n_confirmed, RC_TOTAL);
    CU_ASSERT_EQUAL(handed_again_confirmed, 0);  /* the inbox deduplicated the confirmed ones */
    CU_ASSERT_EQUAL(redelivered_unconfirmed, 1); /* the held, never confirmed one came back */
    /* Each id confirmed once, and per correlation id in send order. */
    size_t once = 0, in_order = 1;
    for (int i = 0; i < RC_TOTAL; i++) {
        int count = 0, at = -1;
        for (size_t k = 0; k < n_confirmed; k++)
            if (memcmp(confirmed[k], ids[i], 16) == 0) {
                count++;
                at = (int)k;
            }
        once += count == 1;
        for (int j = 0; j < i && at >= 0; j++) {
            if (stream_of[j] != stream_of[i])
                continue;
            for (size_t k = (size_t)at + 1; k < n_confirmed; k++)
                if (memcmp(confirmed[k], ids[j], 16) == 0)
                    in_order = 0;
        }
    }
    CU_ASSERT_EQUAL(once, RC_TOTAL);
    CU_ASSERT_TRUE(in_order);
    /* The limbo ack reached the broker through the new process's inbox re-ack. */
    usleep(500 * 1000);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), RC_TOTAL);
    printf("\n  recipient crash: %d handed to the killed receiver (%d confirmed, 1 confirmed "
           "only in its inbox), %zu unconfirmed redelivered, %zu confirmed handed over again\n",
           RC_ACK_FIRST + 2, RC_ACK_FIRST, redelivered_unconfirmed, handed_again_confirmed);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("chaos", s_suite_init, s_suite_clean);
    CU_add_test(suite, "broker SIGKILLed under load: receipted = delivered once, in order",
                test_broker_killed_under_load);
    CU_add_test(suite, "recipient killed mid-delivery: redelivered, inbox deduplicates",
                test_recipient_killed_mid_delivery);
    return pt_cu_main();
}

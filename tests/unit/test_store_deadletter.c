/*  Unit tests for the store's dead letters (issue 6, 009_dead_letter.sql) against a
    real PostgreSQL: the sweep's two reasons (expired wins), what a dead letter
    still holds back and what it no longer counts in, list filters, requeue and
    drop with their trail events, a late acknowledgement, and the deliver stage's
    third reason, an envelope that no longer decodes ("unreadable").

    Needs PUENTE_TEST_DB (a THROWAWAY database: its public schema is recreated),
    like test_store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>

#include "store.h"
#include "cu_main.h"
#include "pt_test_db.h"

static const char *s_conninfo;
static const char *s_sql_dir;
static PGconn *s_raw;
static pt_store_t *s_store;
static int64_t s_t0; /* "now" of the tests: every time is relative to it */

static long long s_scalar(const char *sql)
{
    return pt_test_scalar(s_raw, sql);
}

static int s_suite_init(void)
{
    if (pt_test_fresh_schema(s_conninfo, &s_raw, "test_store_deadletter") != 0 ||
        !(s_store = pt_test_store_migrated(s_conninfo, s_sql_dir, "test_store_deadletter")))
        return -1;
    s_t0 = pt_test_now_ms();
    return 0;
}

static int s_suite_clean(void)
{
    pt_store_destroy(&s_store);
    PQfinish(s_raw);
    return 0;
}

/* --- messages ---------------------------------------------------------------------- */

#define N_MSGS 7

typedef struct {
    uint8_t id[16], corr[16], header[32], envelope[24];
    char token[16];
    int64_t delivery_id;
} s_msg_t;

static s_msg_t s_m[N_MSGS];
static const char *s_to_gt[] = {"GT-PGN"};

/* m0, m1: correlation A; m2: B, expires at t0+1s; m3: C; m4: D, expires at t0+1s and
   offered twice; m5, m6: correlation E. Cases: ct-0..ct-6. */
static void test_setup(void)
{
    static const int corr[N_MSGS] = {1, 1, 2, 3, 4, 5, 5};
    pt_submission_t subs[N_MSGS];
    pt_store_receipt_t receipts[N_MSGS];
    for (int i = 0; i < N_MSGS; i++) {
        s_msg_t *m = &s_m[i];
        m->id[0] = 0x01;
        m->id[6] = 0x70;
        m->id[15] = (uint8_t)(i + 1);
        m->corr[0] = 0xC0;
        m->corr[15] = (uint8_t)corr[i];
        memset(m->header, 0xA0 + i, sizeof m->header);
        memset(m->envelope, 0xE0 + i, sizeof m->envelope);
        snprintf(m->token, sizeof m->token, "ct-%d", i);
        subs[i] = (pt_submission_t){.message_id = m->id,
                                    .correlation_id = m->corr,
                                    .message_type = "referral.request",
                                    .sender = "MX-DIF",
                                    .recipients = s_to_gt,
                                    .n_recipients = 1,
                                    .case_token = m->token,
                                    .created_at_ms = s_t0 - 10,
                                    .expires_at_ms = i == 2 || i == 4 ? s_t0 + 1000 : 0,
                                    .header_sha256 = m->header,
                                    .envelope = m->envelope,
                                    .envelope_len = sizeof m->envelope};
    }
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, subs, N_MSGS, receipts), PT_STORE_OK);
    for (int i = 0; i < N_MSGS; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT delivery_id FROM deliveries WHERE message_id = "
                 "'01000000-0000-7000-0000-0000000000%02x'",
                 i + 1);
        s_m[i].delivery_id = s_scalar(sql);
        CU_ASSERT(s_m[i].delivery_id > 0);
    }
    /* Offers: m0, m4 and m5 twice (the second retry due at t0 + 500). */
    for (int k = 0; k < 2; k++) {
        pt_store_sent_t sent[3] = {{s_m[0].delivery_id, s_t0 + 500, 0},
                                   {s_m[4].delivery_id, s_t0 + 500, 0},
                                   {s_m[5].delivery_id, s_t0 + 500, 0}};
        CU_ASSERT_EQUAL(pt_store_mark_sent_batch(s_store, sent, 3, s_t0), PT_STORE_OK);
    }
}

/* --- the sweep ------------------------------------------------------------------------- */

typedef struct {
    pt_store_dead_letter_t items[16];
    size_t n;
} s_seen_t;

static void s_collect(const pt_store_dead_letter_t *d, void *arg)
{
    s_seen_t *seen = arg;
    if (seen->n < 16)
        seen->items[seen->n++] = *d;
}

typedef struct {
    int64_t ids[16];
    size_t n;
} s_due_t;

static void s_due(const pt_store_delivery_t *d, void *arg)
{
    s_due_t *due = arg;
    if (due->n < 16)
        due->ids[due->n++] = d->delivery_id;
}

static int s_due_has(const s_due_t *due, int64_t id)
{
    for (size_t i = 0; i < due->n; i++)
        if (due->ids[i] == id)
            return 1;
    return 0;
}

static void s_depth(const pt_store_queue_stat_t *stat, void *arg)
{
    if (strcmp(stat->recipient, "GT-PGN") == 0)
        *(int64_t *)arg = stat->depth;
}

static void test_sweep(void)
{
    s_seen_t seen = {0};
    size_t count = 99;
    /* Before anything is due: nothing happens (m0's retry is due at t0 + 500). */
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_sweep(s_store, s_t0 + 100, 2, 100, s_collect, &seen, &count),
        PT_STORE_OK);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(seen.n, 0);
    /* Without an attempt limit only expiry counts. */
    CU_ASSERT_EQUAL(pt_store_dead_letter_sweep(s_store, s_t0 + 900, 0, 100, NULL, NULL, &count),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(count, 0);
    /* At t0 + 2 s: m0 and m5 offered twice; m2 expired; m4 both (expired wins). */
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_sweep(s_store, s_t0 + 2000, 2, 100, s_collect, &seen, &count),
        PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(count, 4);
    CU_ASSERT_EQUAL_FATAL(seen.n, 4);
    const int order[4] = {0, 2, 4, 5};
    const char *reasons[4] = {"attempts", "expired", "expired", "attempts"};
    for (int k = 0; k < 4; k++) {
        CU_ASSERT_EQUAL(seen.items[k].delivery_id, s_m[order[k]].delivery_id);
        CU_ASSERT_STRING_EQUAL(seen.items[k].reason, reasons[k]);
        CU_ASSERT_STRING_EQUAL(seen.items[k].recipient, "GT-PGN");
        CU_ASSERT_STRING_EQUAL(seen.items[k].case_token, s_m[order[k]].token);
        CU_ASSERT_EQUAL(seen.items[k].dead_at_ms, s_t0 + 2000);
        CU_ASSERT(memcmp(seen.items[k].message_id, s_m[order[k]].id, 16) == 0);
    }
    CU_ASSERT_EQUAL(seen.items[0].attempts, 2);
    CU_ASSERT_EQUAL(seen.items[1].attempts, 0);
    /* A second sweep finds nothing more. */
    CU_ASSERT_EQUAL(pt_store_dead_letter_sweep(s_store, s_t0 + 3000, 2, 100, NULL, NULL, &count),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(count, 0);
    /* One event each, by the broker, with the recipient and the header digest. */
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events e JOIN messages m USING "
                             "(message_id) WHERE e.kind LIKE 'dead_letter:%' AND e.actor = "
                             "'broker' AND e.counterparty = 'GT-PGN' AND e.detail = "
                             "m.header_sha256"),
                    4);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE kind = "
                             "'dead_letter:expired'"),
                    2);

    /* Queue depth: m1 (held back behind m0), m3 and m6 (held back behind m5). */
    int64_t depth = -1;
    CU_ASSERT_EQUAL(pt_store_queue_stats(s_store, s_depth, &depth), PT_STORE_OK);
    CU_ASSERT_EQUAL(depth, 3);
    /* Due: only m3. m1 and m6 wait behind their dead letters; an expired dead letter
       (m2, m4) holds nothing back. */
    s_due_t due = {0};
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, "GT-PGN", s_t0 + 3000, 16, s_due, &due),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(due.n, 1);
    CU_ASSERT(s_due_has(&due, s_m[3].delivery_id));
}

static void test_list(void)
{
    s_seen_t seen = {0};
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_list(s_store, NULL, NULL, 0, 0, 100, s_t0 + 3000, s_collect, &seen),
        PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(seen.n, 4);
    CU_ASSERT_EQUAL(seen.items[0].delivery_id, s_m[0].delivery_id);
    CU_ASSERT_EQUAL(seen.items[0].held_back, 1); /* m1 */
    CU_ASSERT_EQUAL(seen.items[1].held_back, 0); /* expired */
    CU_ASSERT_EQUAL(seen.items[3].held_back, 1); /* m6 */
    CU_ASSERT_EQUAL(seen.items[1].expires_at_ms, s_t0 + 1000);
    CU_ASSERT_EQUAL(seen.items[0].expires_at_ms, 0);
    CU_ASSERT(memcmp(seen.items[0].correlation_id, s_m[0].corr, 16) == 0);
    CU_ASSERT_STRING_EQUAL(seen.items[0].sender, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(seen.items[0].message_type, "referral.request");
    /* By message id (an unknown one matches nothing), by recipient, after an id, max. */
    uint8_t ids[32];
    memcpy(ids, s_m[4].id, 16);
    memset(ids + 16, 0x77, 16);
    seen.n = 0;
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_list(s_store, "GT-PGN", ids, 2, 0, 100, s_t0, s_collect, &seen),
        PT_STORE_OK);
    CU_ASSERT_EQUAL(seen.n, 1);
    CU_ASSERT_EQUAL(seen.items[0].delivery_id, s_m[4].delivery_id);
    seen.n = 0;
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_list(s_store, "HN-DINAF", NULL, 0, 0, 100, s_t0, s_collect, &seen),
        PT_STORE_OK);
    CU_ASSERT_EQUAL(seen.n, 0);
    seen.n = 0;
    CU_ASSERT_EQUAL(pt_store_dead_letter_list(s_store, "", NULL, 0, s_m[2].delivery_id, 1, s_t0,
                                              s_collect, &seen),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(seen.n, 1);
    CU_ASSERT_EQUAL(seen.items[0].delivery_id, s_m[4].delivery_id);
}

static void s_count(const char *recipient, int64_t count, void *arg)
{
    if (strcmp(recipient, "GT-PGN") == 0)
        *(int64_t *)arg = count;
}

static void test_requeue_and_drop(void)
{
    int64_t dead = -1;
    CU_ASSERT_EQUAL(pt_store_dead_letter_counts(s_store, s_count, &dead), PT_STORE_OK);
    CU_ASSERT_EQUAL(dead, 4);

    /* Requeue m0 (and a delivery that is not a dead letter: m3). */
    pt_store_dead_item_t items[2] = {{s_m[0].delivery_id, 0}, {s_m[3].delivery_id, 0}};
    CU_ASSERT_EQUAL(pt_store_dead_letter_requeue(s_store, items, 2, s_t0 + 4000), PT_STORE_OK);
    CU_ASSERT_EQUAL(items[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(items[1].result, PT_STORE_NOT_FOUND);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE delivery_id = %lld AND state = 'pending' "
             "AND attempts = 0 AND dead_reason IS NULL AND dead_at IS NULL",
             (long long)s_m[0].delivery_id);
    CU_ASSERT_EQUAL(s_scalar(sql), 1);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-0' AND "
                             "kind = 'dead_letter:requeued' AND actor = 'operator'"),
                    1);
    /* Offered again first in its correlation id; m1 still waits behind it. */
    s_due_t due = {0};
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, "GT-PGN", s_t0 + 4000, 16, s_due, &due),
                    PT_STORE_OK);
    CU_ASSERT(s_due_has(&due, s_m[0].delivery_id));
    CU_ASSERT(!s_due_has(&due, s_m[1].delivery_id));

    /* Drop m5: final, with the note kept in deliveries only; m6 is released. */
    pt_store_dead_item_t drop[1] = {{s_m[5].delivery_id, 0}};
    CU_ASSERT_EQUAL(pt_store_dead_letter_drop(s_store, drop, 1, "", s_t0), PT_STORE_ERROR);
    char long_note[502];
    memset(long_note, 'x', sizeof long_note - 1);
    long_note[501] = '\0';
    CU_ASSERT_EQUAL(pt_store_dead_letter_drop(s_store, drop, 1, long_note, s_t0), PT_STORE_ERROR);
    CU_ASSERT_EQUAL(pt_store_dead_letter_drop(s_store, drop, 1, "sent on paper", s_t0 + 5000),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(drop[0].result, PT_STORE_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE delivery_id = %lld AND state = 'dropped' "
             "AND drop_note = 'sent on paper' AND pt_ts_to_ms(dropped_at) = %lld",
             (long long)s_m[5].delivery_id, (long long)(s_t0 + 5000));
    CU_ASSERT_EQUAL(s_scalar(sql), 1);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-5' AND "
                             "kind = 'dead_letter:dropped' AND actor = 'operator'"),
                    1);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE kind || actor || "
                             "counterparty || message_type LIKE '%paper%'"),
                    0);
    due.n = 0;
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, "GT-PGN", s_t0 + 5000, 16, s_due, &due),
                    PT_STORE_OK);
    CU_ASSERT(s_due_has(&due, s_m[6].delivery_id));
    /* Twice: no longer a dead letter. */
    CU_ASSERT_EQUAL(pt_store_dead_letter_drop(s_store, drop, 1, "again", s_t0), PT_STORE_OK);
    CU_ASSERT_EQUAL(drop[0].result, PT_STORE_NOT_FOUND);
    dead = -1;
    CU_ASSERT_EQUAL(pt_store_dead_letter_counts(s_store, s_count, &dead), PT_STORE_OK);
    CU_ASSERT_EQUAL(dead, 2); /* m2 and m4 */

    /* A late acknowledgement of a dead letter still counts: the recipient has it. */
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "GT-PGN", s_m[2].id, s_t0 + 6000), PT_STORE_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE delivery_id = %lld AND "
             "state = 'acked'",
             (long long)s_m[2].delivery_id);
    CU_ASSERT_EQUAL(s_scalar(sql), 1);
    dead = -1;
    CU_ASSERT_EQUAL(pt_store_dead_letter_counts(s_store, s_count, &dead), PT_STORE_OK);
    CU_ASSERT_EQUAL(dead, 1);
    /* Empty input is fine; the chains stay whole (every event follows its head). */
    CU_ASSERT_EQUAL(pt_store_dead_letter_requeue(s_store, NULL, 0, s_t0), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events e WHERE e.seq > 1 AND NOT EXISTS "
                             "(SELECT 1 FROM case_events p WHERE p.case_token = e.case_token "
                             "AND p.seq = e.seq - 1 AND p.hash = e.prev_hash)"),
                    0);
}

/* A delivery whose stored envelope no longer decodes (the deliver stage's finding):
   dead at once with the reason "unreadable" and its event; only offered ones. */
static void test_unreadable(void)
{
    /* m3 is pending and due; m2 is acked, m4 dead (expired), m5 dropped. */
    s_due_t due = {0};
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, "GT-PGN", s_t0 + 7000, 16, s_due, &due),
                    PT_STORE_OK);
    CU_ASSERT_FATAL(s_due_has(&due, s_m[3].delivery_id));
    pt_store_dead_item_t items[4] = {{s_m[3].delivery_id, 0},
                                     {s_m[2].delivery_id, 0},
                                     {s_m[4].delivery_id, 0},
                                     {s_m[5].delivery_id, 0}};
    CU_ASSERT_EQUAL(pt_store_dead_letter_unreadable(s_store, items, 4, s_t0 + 7000), PT_STORE_OK);
    CU_ASSERT_EQUAL(items[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(items[1].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(items[2].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(items[3].result, PT_STORE_NOT_FOUND);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE delivery_id = %lld AND state = 'dead' "
             "AND dead_reason = 'unreadable' AND pt_ts_to_ms(dead_at) = %lld AND attempts = 0",
             (long long)s_m[3].delivery_id, (long long)(s_t0 + 7000));
    CU_ASSERT_EQUAL(s_scalar(sql), 1);
    /* The others keep their states and reasons. */
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM deliveries d JOIN messages m USING "
                             "(message_id) WHERE (m.case_token = 'ct-2' AND d.state = 'acked') "
                             "OR (m.case_token = 'ct-4' AND d.state = 'dead' AND "
                             "d.dead_reason = 'expired') OR (m.case_token = 'ct-5' AND "
                             "d.state = 'dropped')"),
                    3);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-3' AND "
                             "kind = 'dead_letter:unreadable' AND actor = 'broker' "
                             "AND counterparty = 'GT-PGN'"),
                    1);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE "
                             "kind = 'dead_letter:unreadable'"),
                    1);
    /* No longer offered; listed as a dead letter with its reason. */
    due.n = 0;
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, "GT-PGN", s_t0 + 7000, 16, s_due, &due),
                    PT_STORE_OK);
    CU_ASSERT(!s_due_has(&due, s_m[3].delivery_id));
    s_seen_t seen = {0};
    const uint8_t *id = s_m[3].id;
    CU_ASSERT_EQUAL(
        pt_store_dead_letter_list(s_store, "GT-PGN", id, 1, 0, 10, s_t0 + 7000, s_collect, &seen),
        PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(seen.n, 1);
    CU_ASSERT_STRING_EQUAL(seen.items[0].reason, PT_STORE_DEAD_UNREADABLE);
    /* Twice: no longer offered, nothing changes. */
    items[0].result = PT_STORE_ERROR;
    CU_ASSERT_EQUAL(pt_store_dead_letter_unreadable(s_store, items, 1, s_t0 + 8000), PT_STORE_OK);
    CU_ASSERT_EQUAL(items[0].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events WHERE "
                             "kind = 'dead_letter:unreadable'"),
                    1);
    CU_ASSERT_EQUAL(pt_store_dead_letter_unreadable(s_store, NULL, 0, s_t0), PT_STORE_OK);
    CU_ASSERT_EQUAL(pt_store_dead_letter_unreadable(NULL, items, 1, s_t0), PT_STORE_ERROR);
    /* The operator can requeue it (after repairing the row). */
    CU_ASSERT_EQUAL(pt_store_dead_letter_requeue(s_store, items, 1, s_t0 + 9000), PT_STORE_OK);
    CU_ASSERT_EQUAL(items[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_scalar("SELECT count(*) FROM case_events e WHERE e.seq > 1 AND NOT EXISTS "
                             "(SELECT 1 FROM case_events p WHERE p.case_token = e.case_token "
                             "AND p.seq = e.seq - 1 AND p.hash = e.prev_hash)"),
                    0);
}

int main(void)
{
    if (pt_test_db_env("test_store_deadletter", &s_conninfo, &s_sql_dir) != 0)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("store dead letters", s_suite_init, s_suite_clean);
    if (!suite || !CU_add_test(suite, "setup", test_setup) ||
        !CU_add_test(suite, "sweep", test_sweep) || !CU_add_test(suite, "list", test_list) ||
        !CU_add_test(suite, "requeue and drop", test_requeue_and_drop) ||
        !CU_add_test(suite, "unreadable envelopes", test_unreadable)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

/*  Unit tests for the backlog reader (broker/backlog.h) against a real
    PostgreSQL: its snapshot holds what the database holds (depths, oldest
    message, dead letters, the newest checkpoint); pt_backlog_take returns at once
    while a read waits on a lock, and the figures follow when the lock goes;
    stopping the reader cancels a read that waits.

    Needs PUENTE_TEST_DB (a THROWAWAY database: its public schema is recreated),
    like test_store. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libpq-fe.h>

#include "backlog.h"
#include "cu_main.h"
#include "pt_test_db.h"
#include "store.h"

static const char *s_conninfo;
static const char *s_sql_dir;
static PGconn *s_raw;
static pt_store_t *s_store;
static int64_t s_t0;

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long s_scalar(const char *sql)
{
    return pt_test_scalar(s_raw, sql);
}

static int s_command(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "test_broker_backlog: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

static int s_suite_init(void)
{
    if (pt_test_fresh_schema(s_conninfo, &s_raw, "test_broker_backlog") != 0 ||
        !(s_store = pt_test_store_migrated(s_conninfo, s_sql_dir, "test_broker_backlog")))
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

/* n messages from MX-DIF to one recipient, message ids tagged by tag. */
static int s_submit(const char *recipient, int tag, int n)
{
    const char *to[] = {recipient};
    pt_submission_t subs[8];
    pt_store_receipt_t receipts[8];
    static uint8_t ids[64][16], corr[64][16], header[64][32], envelope[64][24];
    static char tokens[64][16];
    if (n > 8)
        return -1;
    for (int i = 0; i < n; i++) {
        int k = (tag * 8 + i) % 64;
        memset(ids[k], 0, 16);
        ids[k][0] = 0x01;
        ids[k][6] = 0x70;
        ids[k][14] = (uint8_t)tag;
        ids[k][15] = (uint8_t)(i + 1);
        memset(corr[k], 0, 16);
        corr[k][0] = 0xC0;
        corr[k][14] = (uint8_t)tag;
        corr[k][15] = (uint8_t)(i + 1);
        memset(header[k], 0xA0 + i, 32);
        memset(envelope[k], 0xE0 + i, 24);
        snprintf(tokens[k], sizeof tokens[k], "bt-%d-%d", tag, i);
        subs[i] = (pt_submission_t){.message_id = ids[k],
                                    .correlation_id = corr[k],
                                    .message_type = "referral.request",
                                    .sender = "MX-DIF",
                                    .recipients = to,
                                    .n_recipients = 1,
                                    .case_token = tokens[k],
                                    .created_at_ms = s_t0 - 10,
                                    .header_sha256 = header[k],
                                    .envelope = envelope[k],
                                    .envelope_len = 24};
    }
    return pt_store_submit_batch(s_store, subs, (size_t)n, receipts) == PT_STORE_OK ? 0 : -1;
}

/* Waits (up to 20 s) for a snapshot whose read began at or after since_ms. */
static int s_take_since(pt_backlog_t *b, int64_t since_ms, pt_backlog_snapshot_t *snap)
{
    for (int i = 0; i < 2000; i++) {
        if (pt_backlog_take(b, snap)) {
            if (snap->taken_at_ms >= since_ms)
                return 1;
            pt_backlog_snapshot_clear(snap);
        }
        s_sleep_ms(10);
    }
    return 0;
}

static const pt_store_queue_stat_t *s_queue(const pt_backlog_snapshot_t *snap, const char *org)
{
    for (size_t i = 0; i < snap->n_queues; i++)
        if (strcmp(snap->queues[i].recipient, org) == 0)
            return &snap->queues[i];
    return NULL;
}

static long long s_stored_ms(const char *recipient)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT (extract(epoch FROM m.stored_at) * 1000)::bigint FROM deliveries d "
             "JOIN messages m ON m.message_id = d.message_id WHERE d.recipient = '%s' "
             "ORDER BY d.delivery_id LIMIT 1",
             recipient);
    return s_scalar(sql);
}

/* Three for GT-PGN (one then dead-lettered), two for HN-DINAF, then a checkpoint. */
static void test_snapshot_holds_the_database(void)
{
    CU_ASSERT_EQUAL_FATAL(s_submit("GT-PGN", 1, 3), 0);
    CU_ASSERT_EQUAL_FATAL(s_submit("HN-DINAF", 2, 2), 0);
    CU_ASSERT_EQUAL_FATAL(s_command(s_raw, "UPDATE deliveries SET state = 'dead', "
                                           "dead_reason = 'expired', dead_at = now() "
                                           "WHERE delivery_id = (SELECT max(delivery_id) FROM "
                                           "deliveries WHERE recipient = 'GT-PGN')"),
                          0);
    char err[256] = "";
    pt_backlog_t *b = pt_backlog_new(s_conninfo, NULL, 50, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int64_t since = pt_test_now_ms();
    pt_backlog_snapshot_t snap;
    CU_ASSERT_FATAL(s_take_since(b, since, &snap));
    CU_ASSERT_EQUAL(snap.queues_rc, PT_STORE_OK);
    CU_ASSERT_EQUAL(snap.n_queues, 2);
    const pt_store_queue_stat_t *gt = s_queue(&snap, "GT-PGN"), *hn = s_queue(&snap, "HN-DINAF");
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    CU_ASSERT_EQUAL(gt->depth, 2);
    CU_ASSERT_EQUAL(hn->depth, 2);
    CU_ASSERT_EQUAL(gt->oldest_stored_at_ms, s_stored_ms("GT-PGN"));
    CU_ASSERT_EQUAL(hn->oldest_stored_at_ms, s_stored_ms("HN-DINAF"));
    CU_ASSERT_EQUAL(snap.dead_rc, PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(snap.n_dead, 1);
    CU_ASSERT_STRING_EQUAL(snap.dead[0].recipient, "GT-PGN");
    CU_ASSERT_EQUAL(snap.dead[0].count, 1);
    CU_ASSERT_EQUAL(snap.checkpoint_rc, PT_STORE_NOT_FOUND);
    CU_ASSERT(snap.took_ms >= 0);
    pt_backlog_snapshot_clear(&snap);
    CU_ASSERT_EQUAL(snap.n_queues, 0);
    CU_ASSERT_PTR_NULL(snap.queues);

    /* A checkpoint and an acknowledgement later: the next snapshot has both. */
    pt_store_checkpoint_t cp = {.tree_size = 1, .at_ms = s_t0 + 1234, .seq = 1};
    CU_ASSERT_EQUAL_FATAL(pt_store_checkpoint_put(s_store, &cp), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(s_command(s_raw, "UPDATE deliveries SET state = 'acked', "
                                           "acked_at = now() WHERE recipient = 'HN-DINAF'"),
                          0);
    since = pt_test_now_ms();
    CU_ASSERT_FATAL(s_take_since(b, since, &snap));
    CU_ASSERT_EQUAL(snap.checkpoint_rc, PT_STORE_OK);
    CU_ASSERT_EQUAL(snap.checkpoint_at_ms, s_t0 + 1234);
    CU_ASSERT_EQUAL(snap.n_queues, 1);
    CU_ASSERT_PTR_NULL(s_queue(&snap, "HN-DINAF"));
    CU_ASSERT_PTR_NOT_NULL(s_queue(&snap, "GT-PGN"));
    pt_backlog_snapshot_clear(&snap);
    CU_ASSERT(pt_backlog_reads(b) >= 2);
    pt_backlog_destroy(&b);
    CU_ASSERT_PTR_NULL(b);
    pt_backlog_destroy(&b); /* no-op */
    CU_ASSERT_EQUAL(pt_backlog_take(NULL, &snap), 0);
}

/* Sessions waiting for a lock on deliveries (the reader's). */
static long long s_waiting_on_lock(void)
{
    return s_scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%FROM deliveries%'");
}

static void test_take_never_waits(void)
{
    char err[256] = "";
    pt_backlog_t *b = pt_backlog_new(s_conninfo, NULL, 20, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    pt_backlog_snapshot_t snap;
    CU_ASSERT_FATAL(s_take_since(b, pt_test_now_ms(), &snap));
    pt_backlog_snapshot_clear(&snap);

    /* Another session holds deliveries: the reader's next read waits for it. */
    PGconn *locker = PQconnectdb(s_conninfo);
    CU_ASSERT_FATAL(PQstatus(locker) == CONNECTION_OK);
    CU_ASSERT_EQUAL_FATAL(
        s_command(locker, "BEGIN; LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE"), 0);
    long long waiting = 0;
    for (int i = 0; i < 2000 && waiting < 1; i++) {
        s_sleep_ms(10);
        waiting = s_waiting_on_lock();
    }
    CU_ASSERT_EQUAL_FATAL(waiting, 1);
    /* A read finished before the lock may still be there: drain it. */
    if (pt_backlog_take(b, &snap))
        pt_backlog_snapshot_clear(&snap);
    uint64_t reads = pt_backlog_reads(b);
    /* The read still waits, and every take returns at once with nothing. */
    int taken = 0;
    for (int i = 0; i < 30; i++) {
        taken += pt_backlog_take(b, &snap);
        s_sleep_ms(10);
    }
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(snap.n_queues, 0);
    CU_ASSERT_EQUAL(pt_backlog_reads(b), reads);
    CU_ASSERT_EQUAL(s_waiting_on_lock(), 1);

    /* The lock goes: the read completes with the database's figures. */
    CU_ASSERT_EQUAL(s_command(locker, "COMMIT"), 0);
    int64_t since = pt_test_now_ms() - 60000; /* the waiting read began before the COMMIT */
    CU_ASSERT_FATAL(s_take_since(b, since, &snap));
    CU_ASSERT_EQUAL(snap.queues_rc, PT_STORE_OK);
    const pt_store_queue_stat_t *gt = s_queue(&snap, "GT-PGN");
    CU_ASSERT_PTR_NOT_NULL(gt);
    if (gt)
        CU_ASSERT_EQUAL(gt->depth, 2);
    pt_backlog_snapshot_clear(&snap);

    /* Stopping while a read waits on the lock cancels that read. */
    CU_ASSERT_EQUAL_FATAL(
        s_command(locker, "BEGIN; LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE"), 0);
    waiting = 0;
    for (int i = 0; i < 2000 && waiting < 1; i++) {
        s_sleep_ms(10);
        waiting = s_waiting_on_lock();
    }
    CU_ASSERT_EQUAL_FATAL(waiting, 1);
    pt_backlog_destroy(&b); /* returns although the lock is still held */
    CU_ASSERT_PTR_NULL(b);
    long long left = 1;
    for (int i = 0; i < 2000 && left > 0; i++) {
        left = s_waiting_on_lock();
        if (left > 0)
            s_sleep_ms(10);
    }
    CU_ASSERT_EQUAL(left, 0);
    CU_ASSERT_EQUAL(s_command(locker, "COMMIT"), 0);
    PQfinish(locker);
}

static void test_bad_arguments(void)
{
    char err[256] = "";
    CU_ASSERT_PTR_NULL(pt_backlog_new(NULL, NULL, 1000, err, sizeof err));
    CU_ASSERT(strstr(err, "no connection string") != NULL);
    CU_ASSERT_PTR_NULL(pt_backlog_new(s_conninfo, NULL, 0, err, sizeof err));
    pt_backlog_snapshot_clear(NULL);
    CU_ASSERT_EQUAL(pt_backlog_reads(NULL), 0);
}

/* An unreachable database: snapshots say UNAVAILABLE, the reader keeps trying. */
static void test_unreachable(void)
{
    char err[256] = "";
    pt_backlog_t *b = pt_backlog_new("host=/nonexistent-puente-test port=1 dbname=x "
                                     "connect_timeout=1",
                                     NULL, 20, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    pt_backlog_snapshot_t snap;
    CU_ASSERT_FATAL(s_take_since(b, 0, &snap));
    CU_ASSERT_EQUAL(snap.queues_rc, PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(snap.dead_rc, PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(snap.checkpoint_rc, PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(snap.n_queues, 0);
    pt_backlog_snapshot_clear(&snap);
    CU_ASSERT_FATAL(s_take_since(b, 0, &snap)); /* and again */
    CU_ASSERT_EQUAL(snap.queues_rc, PT_STORE_UNAVAILABLE);
    pt_backlog_snapshot_clear(&snap);
    pt_backlog_destroy(&b);
}

int main(void)
{
    if (pt_test_db_env("test_broker_backlog", &s_conninfo, &s_sql_dir) != 0)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("backlog reader", s_suite_init, s_suite_clean);
    if (!suite ||
        !CU_add_test(suite, "the snapshot holds the database's figures",
                     test_snapshot_holds_the_database) ||
        !CU_add_test(suite, "take never waits for a read; stop cancels it",
                     test_take_never_waits) ||
        !CU_add_test(suite, "bad arguments", test_bad_arguments) ||
        !CU_add_test(suite, "an unreachable database", test_unreachable)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

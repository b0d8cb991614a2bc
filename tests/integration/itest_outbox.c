/*  itest_outbox — the durable outbox promise (issue 5): with the broker stopped,
    a child process queues 1,000 messages through the SDK outbox and is killed
    with SIGKILL while they are all still queued; a new process opens the same
    state file, the broker starts, and all 1,000 reach the recipient once each,
    in queue order, received through a durable inbox. */
#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "cu_main.h"

#define N_MESSAGES 1000

static pt_harness_t *s_h;
static char s_state[512];
static char s_inbox[512];
static char s_token[64];

static int s_suite_init(void)
{
    s_h = pt_harness_new("outbox");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    snprintf(s_state, sizeof s_state, "%s/outbox.db", pt_harness_dir(s_h));
    snprintf(s_inbox, sizeof s_inbox, "%s/inbox.db", pt_harness_dir(s_h));
    snprintf(s_token, sizeof s_token, "OUTBOX-%ld", (long) getpid());
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

static pt_outbox_t *s_outbox(char *err, size_t err_len)
{
    pt_outbox_opts_t o = { .client = { .endpoint = pt_harness_endpoint(s_h),
                                       .keys_dir = pt_harness_keys(s_h), .org_id = "MX-DIF",
                                       .timeout_ms = 2000 },
                           .state_path = s_state };
    return pt_outbox_new(&o, err, err_len);
}

/* The child: queue N_MESSAGES while the broker is down, report, then wait to be killed. */
static void s_child(int report_fd)
{
    char err[PUENTE_ERR_BYTES];
    pt_outbox_t *ob = s_outbox(err, sizeof err);
    char status = 'F';
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    if (!ob || !body) {
        fprintf(stderr, "child: %s\n", err);
        goto done;
    }
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *to[1] = { "GT-PGN" };
    pt_send_t msg = { .message_type = "referral.request", .recipients = to, .n_recipients = 1,
                      .case_token = s_token, .consent = &consent, .body = body,
                      .body_len = len };
    for (int i = 0; i < N_MESSAGES; i++) {
        uint8_t id[PT_UUID_BYTES];
        if (pt_outbox_send(ob, &msg, id) != PT_CLIENT_OK) {
            fprintf(stderr, "child: send %d: %s\n", i, pt_outbox_error(ob));
            goto done;
        }
    }
    if (pt_outbox_pending(ob) == N_MESSAGES)
        status = 'K';
done:
    if (write(report_fd, &status, 1) != 1)
        _exit(2);
    for (;;)
        pause(); /* killed here, the outbox thread still retrying */
}

/* The message ids of the outbox file in queue order, formatted. */
static char (*s_queue_order(size_t *n, long *queued))[PT_UUID_STR_BYTES]
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char(*ids)[PT_UUID_STR_BYTES] = calloc(N_MESSAGES + 1, sizeof *ids);
    *n = 0;
    *queued = 0;
    if (sqlite3_open_v2(s_state, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(db, "SELECT message_id, state FROM outbox ORDER BY seq", -1, &st,
                              NULL)
               != SQLITE_OK) {
        sqlite3_close(db);
        return ids;
    }
    while (sqlite3_step(st) == SQLITE_ROW && *n <= N_MESSAGES) {
        if (sqlite3_column_bytes(st, 0) == PT_UUID_BYTES)
            pt_uuid_format(sqlite3_column_blob(st, 0), ids[(*n)++]);
        if (sqlite3_column_int(st, 1) == PT_OUTBOX_QUEUED)
            (*queued)++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ids;
}

static void test_outbox_survives_kill_and_broker_outage(void)
{
    char err[PUENTE_ERR_BYTES];
    /* 1. Learn the directory once while the broker is up. */
    pt_outbox_t *ob = s_outbox(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL_FATAL(pt_outbox_wait_directory(ob, 20000), PT_CLIENT_OK);
    pt_outbox_destroy(&ob);
    CU_ASSERT_PTR_NULL(ob);

    /* 2. Broker down; a child queues everything and is killed. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM) >= 0, 1);
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        s_child(fds[1]);
        _exit(3);
    }
    close(fds[1]);
    char status = 0;
    ssize_t got = read(fds[0], &status, 1);
    close(fds[0]);
    kill(pid, SIGKILL);
    int ws = 0;
    waitpid(pid, &ws, 0);
    CU_ASSERT_EQUAL(got, 1);
    CU_ASSERT_EQUAL_FATAL(status, 'K');
    CU_ASSERT(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

    size_t n_order = 0;
    long queued = 0;
    char(*order)[PT_UUID_STR_BYTES] = s_queue_order(&n_order, &queued);
    CU_ASSERT_EQUAL_FATAL(n_order, N_MESSAGES);
    CU_ASSERT_EQUAL(queued, N_MESSAGES);

    /* 3. This process reopens the same file: everything is still queued. */
    ob = s_outbox(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(pt_outbox_pending(ob), N_MESSAGES);

    /* 4. Broker back: the outbox drains by itself. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    pt_client_opts_t ro = { .endpoint = pt_harness_endpoint(s_h), .keys_dir = pt_harness_keys(s_h),
                            .org_id = "GT-PGN", .receive = 1, .inbox_path = s_inbox };
    pt_client_t *rx = pt_client_new(&ro, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    char(*seen)[PT_UUID_STR_BYTES] = calloc(N_MESSAGES, sizeof *seen);
    size_t n_seen = 0, extra = 0;
    int64_t quiet_until = pt_now_ms() + 60000;
    while (n_seen < N_MESSAGES + extra && pt_now_ms() < quiet_until) {
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(rx, 1000, &m);
        if (rc != PT_CLIENT_OK)
            continue;
        const Puente__V1__Header *hd = pt_message_header(m);
        if (strcmp(hd->case_token, s_token) == 0) {
            if (n_seen < N_MESSAGES)
                pt_uuid_format(pt_message_id(m), seen[n_seen]);
            n_seen++;
        }
        CU_ASSERT_EQUAL(pt_client_ack(rx, pt_message_id(m)), PT_CLIENT_OK);
        pt_message_destroy(&m);
        quiet_until = pt_now_ms() + 30000;
    }
    CU_ASSERT_EQUAL(pt_outbox_flush(ob, 60000), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(pt_outbox_pending(ob), 0);
    /* Nothing more may come: each id is handed over once. */
    pt_message_t *more = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(rx, 2000, &more), PT_CLIENT_TIMEOUT);
    pt_message_destroy(&more);
    CU_ASSERT_EQUAL(n_seen, N_MESSAGES);
    size_t in_order = 0;
    for (size_t i = 0; i < n_seen && i < N_MESSAGES; i++)
        in_order += strcmp(seen[i], order[i]) == 0;
    CU_ASSERT_EQUAL(in_order, N_MESSAGES);

    /* Every one a receipt in the outbox. */
    uint8_t first[PT_UUID_BYTES];
    CU_ASSERT_EQUAL(pt_uuid_parse(order[0], first), 0);
    pt_receipt_info_t receipt;
    CU_ASSERT_EQUAL(pt_outbox_status(ob, first, &receipt, NULL), PT_OUTBOX_SUBMITTED);
    CU_ASSERT(receipt.stored_at_ms > 0);
    pt_outbox_destroy(&ob);
    pt_client_destroy(&rx);

    /* 5. The broker's database: 1,000 messages with that token, no duplicate, queue order. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE case_token = '%s'", s_token);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), N_MESSAGES);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT message_id) FROM messages WHERE case_token = '%s'", s_token);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), N_MESSAGES);
    PGconn *pg = PQconnectdb(pt_harness_conninfo(s_h));
    const char *params[1] = { s_token };
    PGresult *res = PQexecParams(pg, "SELECT message_id::text FROM messages WHERE case_token = $1 "
                                     "ORDER BY seq",
                                 1, NULL, params, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    size_t db_in_order = 0;
    for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res) && i < N_MESSAGES;
         i++)
        db_in_order += strcmp(PQgetvalue(res, i, 0), order[i]) == 0;
    CU_ASSERT_EQUAL(db_in_order, N_MESSAGES);
    PQclear(res);
    PQfinish(pg);

    /* 6. The durable inbox holds 1,000 confirmed ids for this token's messages. */
    sqlite3 *idb = NULL;
    sqlite3_stmt *st = NULL;
    long confirmed = -1;
    if (sqlite3_open_v2(s_inbox, &idb, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(idb, "SELECT count(*) FROM inbox WHERE state = 2", -1, &st, NULL)
               == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        confirmed = (long) sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(idb);
    CU_ASSERT(confirmed >= N_MESSAGES);
    free(seen);
    free(order);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("outbox", s_suite_init, s_suite_clean);
    CU_add_test(suite, "1,000 queued while the broker is down, sender killed, all delivered once in order",
                test_outbox_survives_kill_and_broker_outage);
    return pt_cu_main();
}

/*  Unit tests for store against a real PostgreSQL.

    Needs PUENTE_TEST_DB, a libpq connection string to a THROWAWAY database: the
    test drops and recreates its public schema. PUENTE_SQL_DIR defaults to
    broker/sql. To run by hand:
        d=$(mktemp -d); export PUENTE_TEST_DB=$(tests/lib/pgcluster.sh start $d 55433 | tail -1)
        build/tests/test_store; tests/lib/pgcluster.sh stop $d; rm -rf $d
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "pt_trail.h"
#include "store.h"
#include "cu_main.h"
#include "pt_test_db.h"

#define APP_NAME "pt_store_test"
/* Events that do not link to the one before them in their case's chain: a first
   event whose prev_hash is not the zero hash, or a later one whose prev_hash is
   not its predecessor's hash (or has no predecessor). */
#define S_CHAIN_BREAKS_SQL                                                                         \
    "SELECT count(*) FROM case_events e LEFT JOIN case_events p "                                  \
    "ON p.case_token = e.case_token AND p.seq = e.seq - 1 "                                        \
    "WHERE (e.seq = 1 AND e.prev_hash <> decode(repeat('00', 32), 'hex')) "                        \
    "OR (e.seq > 1 AND (p.hash IS NULL OR e.prev_hash <> p.hash))"

static const char *s_conninfo;
static char s_store_conninfo[1024];
static const char *s_sql_dir;
static PGconn *s_raw;          /* superuser connection for checks the API cannot make */
static pt_store_t *s_store;

static int64_t s_now(void)
{
    return pt_test_now_ms();
}


/* First column of the first row as a number, or -1. */
/* Runs sql on conn; returns the SQLSTATE of a failure ("" if OK). */
static const char *s_exec_on(PGconn *conn, const char *sql)
{
    static char state[6];
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    state[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(state, sizeof state, "%s", s ? s : "?????");
    }
    PQclear(res);
    return state;
}

/* Runs SQL on the raw connection; returns the SQLSTATE of a failure ("" if OK). */
static const char *s_raw_exec(const char *sql)
{
    return s_exec_on(s_raw, sql);
}

static long long s_raw_scalar(const char *sql)
{
    return pt_test_scalar(s_raw, sql);
}

static int s_suite_init(void)
{
    char err[256] = "";
    if (pt_test_fresh_schema(s_conninfo, &s_raw, "test_store") != 0)
        return -1;
    snprintf(s_store_conninfo, sizeof s_store_conninfo, "%s application_name=%s", s_conninfo,
             APP_NAME);
    s_store = pt_store_new(s_store_conninfo, err, sizeof err);
    if (!s_store) {
        fprintf(stderr, "test_store: pt_store_new: %s\n", err);
        return -1;
    }
    return 0;
}

static int s_suite_clean(void)
{
    pt_store_destroy(&s_store);
    PQfinish(s_raw);
    s_raw = NULL;
    return 0;
}

/* --- connection and migrations --------------------------------------------- */

static void test_bad_conninfo(void)
{
    char err[256] = "";
    pt_store_t *store = pt_store_new("host=/nonexistent/puente port=1 dbname=x connect_timeout=2",
                                     err, sizeof err);
    CU_ASSERT_PTR_NULL(store);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot connect"));
    memset(err, 0, sizeof err);
    store = pt_store_new("this is not a conninfo", err, sizeof err);
    CU_ASSERT_PTR_NULL(store);
    CU_ASSERT(strlen(err) > 0);
    pt_store_destroy(&store);   /* no-op on NULL */
    CU_ASSERT_PTR_NULL(store);
}

static void test_migrate(void)
{
    char err[256] = "";
    CU_ASSERT_EQUAL(pt_store_migrations_current(s_store, s_sql_dir), 0);
    int rc = pt_store_migrate(s_store, s_sql_dir, err, sizeof err);
    if (rc)
        fprintf(stderr, "\nmigrate: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(pt_store_migrations_current(s_store, s_sql_dir), 1);
    long long applied = s_raw_scalar("SELECT count(*) FROM schema_migrations");
    CU_ASSERT(applied >= 1);
    /* Second run: nothing applied again, nothing fails. */
    CU_ASSERT_EQUAL(pt_store_migrate(s_store, s_sql_dir, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM schema_migrations"), applied);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM schema_migrations WHERE version = 1"), 1);
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);
    /* A missing directory is an error with a reason. */
    err[0] = '\0';
    CU_ASSERT_EQUAL(pt_store_migrate(s_store, "/nonexistent/sql", err, sizeof err), -1);
    CU_ASSERT(strlen(err) > 0);
    CU_ASSERT_EQUAL(pt_store_migrations_current(s_store, "/nonexistent/sql"), -1);
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);
}

/* --- directory ------------------------------------------------------------------ */

static pt_store_org_t s_org(const char *id, uint8_t seed, int enabled)
{
    pt_store_org_t org;
    memset(&org, 0, sizeof org);
    snprintf(org.org_id, sizeof org.org_id, "%s", id);
    memset(org.sign_public, seed, 32);
    memset(org.seal_public, seed + 1, 32);
    memset(org.curve_public, seed + 2, 32);
    org.enabled = enabled;
    return org;
}

typedef struct {
    int n;
    pt_store_org_t orgs[8];
} s_orgs_t;

static void s_collect_org(const pt_store_org_t *org, void *arg)
{
    s_orgs_t *c = arg;
    if (c->n < 8)
        c->orgs[c->n] = *org;
    c->n++;
}

static void test_orgs(void)
{
    pt_store_org_t mx = s_org("MX-DIF", 0x10, 1), gt = s_org("GT-PGN", 0x20, 1),
                   hn = s_org("HN-DINAF", 0x30, 0);
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &mx), PT_STORE_OK);
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &gt), PT_STORE_OK);
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &hn), PT_STORE_OK);

    s_orgs_t c = {0};
    CU_ASSERT_EQUAL(pt_store_load_orgs(s_store, s_collect_org, &c), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 3);
    /* Ordered by id. */
    CU_ASSERT_STRING_EQUAL(c.orgs[0].org_id, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(c.orgs[1].org_id, "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(c.orgs[2].org_id, "MX-DIF");
    CU_ASSERT_EQUAL(memcmp(c.orgs[0].sign_public, gt.sign_public, 32), 0);
    CU_ASSERT_EQUAL(memcmp(c.orgs[0].seal_public, gt.seal_public, 32), 0);
    CU_ASSERT_EQUAL(memcmp(c.orgs[0].curve_public, gt.curve_public, 32), 0);
    CU_ASSERT_EQUAL(c.orgs[0].enabled, 1);
    CU_ASSERT_EQUAL(c.orgs[1].enabled, 0);
    CU_ASSERT_EQUAL(memcmp(c.orgs[1].curve_public, hn.curve_public, 32), 0);
    CU_ASSERT_EQUAL(c.orgs[2].enabled, 1);

    /* Same keys again: no new key row. New sign key: old row retired, kept. */
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &mx), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM org_keys WHERE org_id = 'MX-DIF'"), 1);
    mx.sign_public[0] = 0xEE;
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &mx), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM org_keys WHERE org_id = 'MX-DIF'"), 2);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM org_keys WHERE org_id = 'MX-DIF' "
                                 "AND valid_until IS NULL AND get_byte(sign_public, 0) = 238"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM org_keys WHERE org_id = 'MX-DIF' "
                                 "AND valid_until IS NOT NULL AND get_byte(sign_public, 0) = 16"),
                    1);
    /* Key id is SHA-256 of the public key. */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM org_keys WHERE sign_key_id <> "
                                 "sha256(sign_public)"),
                    0);
    c.n = 0;
    CU_ASSERT_EQUAL(pt_store_load_orgs(s_store, s_collect_org, &c), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 3);
    CU_ASSERT_EQUAL(c.orgs[2].sign_public[0], 0xEE);

    /* Disabling keeps the keys. */
    hn.enabled = 1;
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &hn), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM organisations WHERE enabled"), 3);

    pt_store_org_t bad = s_org("", 1, 1);
    CU_ASSERT_EQUAL(pt_store_org_put(s_store, &bad), PT_STORE_ERROR);
}

typedef struct {
    int n;
    char ids[4][PT_STORE_TEXT_MAX];
    char purposes[4][4][64];
    size_t n_purposes[4];
    char types[4][4][64];
    size_t n_types[4];
    int64_t from[4], until[4];
} s_agreements_t;

static void s_collect_agreement(const pt_store_agreement_t *a, void *arg)
{
    s_agreements_t *c = arg;
    if (c->n >= 4)
        return;
    int i = c->n++;
    snprintf(c->ids[i], sizeof c->ids[i], "%s", a->agreement_id);
    c->n_purposes[i] = a->n_purposes;
    for (size_t k = 0; k < a->n_purposes && k < 4; k++)
        snprintf(c->purposes[i][k], 64, "%s", a->purposes[k]);
    c->n_types[i] = a->n_message_types;
    for (size_t k = 0; k < a->n_message_types && k < 4; k++)
        snprintf(c->types[i][k], 64, "%s", a->message_types[k]);
    c->from[i] = a->valid_from_ms;
    c->until[i] = a->valid_until_ms;
}

static void test_agreements(void)
{
    const char *purposes[] = {"service_provision", "case_transfer"};
    const char *types[] = {"referral.*", "odd \"quoted\", {comma} \\ back", "tracing.request"};
    pt_store_agreement_t a = {.purposes = purposes,
                              .n_purposes = 2,
                              .message_types = types,
                              .n_message_types = 3,
                              .valid_from_ms = 1700000000123LL,
                              .valid_until_ms = 0};
    snprintf(a.agreement_id, sizeof a.agreement_id, "AG-MX-GT-1");
    snprintf(a.org_a, sizeof a.org_a, "MX-DIF");
    snprintf(a.org_b, sizeof a.org_b, "GT-PGN");
    CU_ASSERT_EQUAL(pt_store_agreement_put(s_store, &a), PT_STORE_OK);

    pt_store_agreement_t b = a;
    snprintf(b.agreement_id, sizeof b.agreement_id, "AG-MX-HN-1");
    snprintf(b.org_b, sizeof b.org_b, "HN-DINAF");
    b.n_purposes = 0;
    b.n_message_types = 1;
    b.valid_until_ms = 1800000000999LL;
    CU_ASSERT_EQUAL(pt_store_agreement_put(s_store, &b), PT_STORE_OK);

    s_agreements_t c = {0};
    CU_ASSERT_EQUAL(pt_store_load_agreements(s_store, s_collect_agreement, &c), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_STRING_EQUAL(c.ids[0], "AG-MX-GT-1");
    CU_ASSERT_EQUAL(c.n_purposes[0], 2);
    CU_ASSERT_STRING_EQUAL(c.purposes[0][1], "case_transfer");
    CU_ASSERT_EQUAL(c.n_types[0], 3);
    CU_ASSERT_STRING_EQUAL(c.types[0][0], "referral.*");
    CU_ASSERT_STRING_EQUAL(c.types[0][1], types[1]);
    CU_ASSERT_STRING_EQUAL(c.types[0][2], "tracing.request");
    CU_ASSERT_EQUAL(c.from[0], 1700000000123LL);
    CU_ASSERT_EQUAL(c.until[0], 0);
    CU_ASSERT_STRING_EQUAL(c.ids[1], "AG-MX-HN-1");
    CU_ASSERT_EQUAL(c.n_purposes[1], 0);
    CU_ASSERT_EQUAL(c.n_types[1], 1);
    CU_ASSERT_EQUAL(c.until[1], 1800000000999LL);

    /* Replace by id. */
    a.n_purposes = 1;
    a.purposes = purposes + 1;
    CU_ASSERT_EQUAL(pt_store_agreement_put(s_store, &a), PT_STORE_OK);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(pt_store_load_agreements(s_store, s_collect_agreement, &c), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_EQUAL(c.n_purposes[0], 1);
    CU_ASSERT_STRING_EQUAL(c.purposes[0][0], "case_transfer");

    /* Unknown organisation: permanent error, and the store stays usable. */
    pt_store_agreement_t bad = a;
    snprintf(bad.agreement_id, sizeof bad.agreement_id, "AG-BAD");
    snprintf(bad.org_b, sizeof bad.org_b, "ZZ-NOBODY");
    CU_ASSERT_EQUAL(pt_store_agreement_put(s_store, &bad), PT_STORE_ERROR);
    CU_ASSERT(strlen(pt_store_last_error(s_store)) > 0);
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);
}

/* --- submissions -------------------------------------------------------------------- */

typedef struct {
    uint8_t id[16];
    uint8_t corr[16];
    uint8_t header[32];
    uint8_t envelope[40];
    char case_token[32];
} s_msg_data_t;

static const char *s_to_gt[] = {"GT-PGN"};
static const char *s_to_two[] = {"GT-PGN", "HN-DINAF"};

static pt_submission_t s_sub(s_msg_data_t *d, unsigned int n, unsigned int corr,
                             const char *case_token, int64_t expires_at_ms)
{
    memset(d, 0, sizeof *d);
    d->id[0] = 0x01;
    d->id[6] = 0x70;   /* looks like a UUIDv7 */
    d->id[14] = (uint8_t)(n >> 8);
    d->id[15] = (uint8_t)n;
    d->corr[0] = 0xC0;
    d->corr[15] = (uint8_t)corr;
    memset(d->header, (int)(n & 0xFF), sizeof d->header);
    d->header[0] = 0x5A;
    memset(d->envelope, 0xE0 ^ (int)(n & 0xFF), sizeof d->envelope);
    snprintf(d->case_token, sizeof d->case_token, "%s", case_token);
    pt_submission_t s = {.message_id = d->id,
                         .correlation_id = d->corr,
                         .causation_id = NULL,
                         .message_type = "referral.request",
                         .sender = "MX-DIF",
                         .recipients = s_to_gt,
                         .n_recipients = 1,
                         .case_token = d->case_token,
                         .purpose = "service_provision",
                         .agreement_id = "AG-MX-GT-1",
                         .created_at_ms = s_now() - 5,
                         .expires_at_ms = expires_at_ms,
                         .header_sha256 = d->header,
                         .envelope = d->envelope,
                         .envelope_len = sizeof d->envelope};
    return s;
}

/* Submission state shared by the delivery and trail tests. */
static s_msg_data_t s_data[3];
static pt_submission_t s_subs[3];
static pt_store_receipt_t s_receipts[3];

static void test_submit_and_duplicates(void)
{
    uint8_t zero[32] = {0};
    /* m0 and m1 share correlation id 1 and case ct-A; m2 is correlation 2, case ct-B. */
    s_subs[0] = s_sub(&s_data[0], 1, 1, "ct-A", 0);
    s_subs[1] = s_sub(&s_data[1], 2, 1, "ct-A", 0);
    s_subs[2] = s_sub(&s_data[2], 3, 2, "ct-B", 0);
    uint8_t causation[16];
    memcpy(causation, s_data[0].id, 16);
    s_subs[1].causation_id = causation;
    s_subs[1].purpose = NULL;

    int64_t before = s_now();
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, s_subs, 3, s_receipts), PT_STORE_OK);
    int64_t after = s_now();
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(s_receipts[i].result, PT_STORE_OK);
        CU_ASSERT(s_receipts[i].stored_at_ms >= before && s_receipts[i].stored_at_ms <= after);
        CU_ASSERT_EQUAL(memcmp(s_receipts[i].header_sha256, s_data[i].header, 32), 0);
        CU_ASSERT_NOT_EQUAL(memcmp(s_receipts[i].event_hash, zero, 32), 0);
    }
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), 3);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM deliveries WHERE state = 'pending'"), 3);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events"), 6);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT max(seq) FROM case_events WHERE case_token = 'ct-A'"), 4);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages WHERE causation_id IS NOT NULL "
                                 "AND purpose IS NULL"),
                    1);
    /* Stored time round-trips exactly. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM messages WHERE pt_ts_to_ms(stored_at) = %lld",
             (long long)s_receipts[0].stored_at_ms);
    CU_ASSERT_EQUAL(s_raw_scalar(sql), 3);

    /* The same batch again: DUPLICATE with the original receipt, nothing added. */
    pt_store_receipt_t again[3];
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, s_subs, 3, again), PT_STORE_OK);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(again[i].result, PT_STORE_DUPLICATE);
        CU_ASSERT_EQUAL(again[i].stored_at_ms, s_receipts[i].stored_at_ms);
        CU_ASSERT_EQUAL(memcmp(again[i].event_hash, s_receipts[i].event_hash, 32), 0);
        CU_ASSERT_EQUAL(memcmp(again[i].header_sha256, s_data[i].header, 32), 0);
    }
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), 3);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events"), 6);

    /* Same id, other header: CONFLICT, with the original values. A new message
       in the same batch still goes in, and its id repeated in the batch is a
       DUPLICATE of the first occurrence. */
    s_msg_data_t other, fresh;
    pt_submission_t mixed[3];
    mixed[0] = s_sub(&other, 1, 1, "ct-A", 0);
    other.header[5] ^= 0xFF;
    mixed[1] = s_sub(&fresh, 50, 9, "ct-C", 0);
    mixed[1].recipients = s_to_two;
    mixed[1].n_recipients = 2;
    mixed[2] = mixed[1];
    pt_store_receipt_t r[3];
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, mixed, 3, r), PT_STORE_OK);
    CU_ASSERT_EQUAL(r[0].result, PT_STORE_CONFLICT);
    CU_ASSERT_EQUAL(r[0].stored_at_ms, s_receipts[0].stored_at_ms);
    CU_ASSERT_EQUAL(memcmp(r[0].header_sha256, s_data[0].header, 32), 0);
    CU_ASSERT_EQUAL(r[1].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(r[2].result, PT_STORE_DUPLICATE);
    CU_ASSERT_EQUAL(r[2].stored_at_ms, r[1].stored_at_ms);
    CU_ASSERT_EQUAL(memcmp(r[2].event_hash, r[1].event_hash, 32), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), 4);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM deliveries WHERE recipient = 'HN-DINAF'"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-A'"), 4);

    /* Incomplete input is refused before touching the database. */
    pt_submission_t broken = s_subs[0];
    broken.case_token = NULL;
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, &broken, 1, r), PT_STORE_ERROR);
    broken = s_subs[0];
    broken.n_recipients = 0;
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, &broken, 1, r), PT_STORE_ERROR);
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, NULL, 0, NULL), PT_STORE_OK);
}

/* A batch larger than one pipeline chunk, several items per case. */
static void test_submit_large_batch(void)
{
    enum { N = 300 };
    static s_msg_data_t data[N];
    static pt_submission_t subs[N];
    static pt_store_receipt_t receipts[N];
    char tokens[5][16];
    for (int t = 0; t < 5; t++)
        snprintf(tokens[t], sizeof tokens[t], "ct-bulk-%d", t);
    for (int i = 0; i < N; i++)
        subs[i] = s_sub(&data[i], 1000 + (unsigned)i, 100 + (unsigned)(i % 7), tokens[i % 5], 0);
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, subs, N, receipts), PT_STORE_OK);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += receipts[i].result == PT_STORE_OK;
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE case_token LIKE "
                                 "'ct-bulk-%'"),
                    2 * N);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT max(seq) FROM case_events WHERE case_token = 'ct-bulk-3'"),
                    2 * N / 5);
    /* Sequence numbers are contiguous in every chain. */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM (SELECT case_token, max(seq) m, count(*) c "
                                 "FROM case_events GROUP BY case_token) x WHERE m <> c"),
                    0);
    /* Submission order is kept in messages.seq. */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY "
                                 "get_byte(uuid_send(message_id), 14) * 256 + "
                                 "get_byte(uuid_send(message_id), 15)) p FROM messages WHERE "
                                 "case_token LIKE 'ct-bulk-%') x WHERE p > seq"),
                    0);
}

/* A statement failing inside the pipeline (here: bytes that are not UTF-8, which
   the server refuses) rolls the whole batch back, and the store stays usable. */
static void test_submit_error_rolls_back(void)
{
    s_msg_data_t good, bad;
    pt_submission_t subs[2] = {s_sub(&good, 80, 80, "ct-X", 0), s_sub(&bad, 81, 81, "ct-X", 0)};
    pt_store_receipt_t r[2];
    long long events = s_raw_scalar("SELECT count(*) FROM case_events");

    static const char not_utf8[] = {'r', 'e', 'f', (char)0xFF, 0};
    subs[1].message_type = not_utf8;            /* fails in the second round trip */
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, subs, 2, r), PT_STORE_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_store_last_error(s_store), "22021"));
    CU_ASSERT_EQUAL(r[0].stored_at_ms, 0);   /* receipts cleared: nothing stored */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages WHERE case_token = 'ct-X'"), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-X'"), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events"), events);

    subs[1] = s_sub(&bad, 81, 81, "ct-X", 0);
    static const char bad_token[] = {'c', 't', (char)0xC3, 0};
    subs[1].case_token = bad_token;             /* fails in the first round trip */
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, subs, 2, r), PT_STORE_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_store_last_error(s_store), "22021"));
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages WHERE case_token = 'ct-X'"), 0);

    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);
    subs[1] = s_sub(&bad, 81, 81, "ct-X", 0);
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, subs, 2, r), PT_STORE_OK);
    CU_ASSERT_EQUAL(r[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(r[1].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT max(seq) FROM case_events WHERE case_token = 'ct-X'"), 4);
}

/* --- deliveries ---------------------------------------------------------------------- */

typedef struct {
    int n;
    int64_t ids[16];
    uint8_t message_ids[16][16];
    uint32_t attempts[16];
    size_t envelope_len[16];
    uint8_t envelope_first[16];
} s_due_t;

static void s_collect_due(const pt_store_delivery_t *d, void *arg)
{
    s_due_t *c = arg;
    if (c->n >= 16)
        return;
    c->ids[c->n] = d->delivery_id;
    memcpy(c->message_ids[c->n], d->message_id, 16);
    c->attempts[c->n] = d->attempts;
    c->envelope_len[c->n] = d->envelope_len;
    c->envelope_first[c->n] = d->envelope_len ? d->envelope[0] : 0;
    c->n++;
}

static s_due_t s_due(const char *recipient, int64_t now, size_t max)
{
    s_due_t c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(pt_store_due_deliveries(s_store, recipient, now, max, s_collect_due, &c),
                    PT_STORE_OK);
    return c;
}

typedef struct {
    int n;
    char names[8][PT_STORE_ORG_ID_MAX];
} s_names_t;

static void s_collect_name(const char *name, void *arg)
{
    s_names_t *c = arg;
    if (c->n < 8)
        snprintf(c->names[c->n], sizeof c->names[c->n], "%s", name);
    c->n++;
}

static void test_deliveries(void)
{
    int64_t now = s_now();
    /* The bulk messages also go to GT-PGN, later: look at the first ones only. */
    s_due_t c = s_due("GT-PGN", now, 3);
    /* m0 (corr 1) and m2 (corr 2) are offered; m1 waits behind m0. Then the
       fresh message of corr 9. */
    CU_ASSERT_EQUAL_FATAL(c.n, 3);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[0], s_data[0].id, 16), 0);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[1], s_data[2].id, 16), 0);
    CU_ASSERT_EQUAL(c.attempts[0], 0);
    CU_ASSERT_EQUAL(c.envelope_len[0], sizeof s_data[0].envelope);
    CU_ASSERT_EQUAL(c.envelope_first[0], s_data[0].envelope[0]);
    CU_ASSERT(c.ids[0] < c.ids[1] && c.ids[1] < c.ids[2]);
    int64_t d0 = c.ids[0], d2 = c.ids[1];

    /* Not due before the message existed... */
    s_due_t early = s_due("GT-PGN", s_receipts[0].stored_at_ms - 1000, 10);
    CU_ASSERT_EQUAL(early.n, 0);
    /* ... and nothing for an organisation without deliveries. */
    s_due_t none = s_due("SV-CONNA", now, 10);
    CU_ASSERT_EQUAL(none.n, 0);

    /* m0 sent, retry in a minute: m0 is not due, and m1 still waits behind it. */
    CU_ASSERT_EQUAL(pt_store_mark_sent(s_store, d0, now, now + 60000), PT_STORE_OK);
    c = s_due("GT-PGN", now, 2);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_EQUAL(c.ids[0], d2);
    CU_ASSERT_NOT_EQUAL(memcmp(c.message_ids[1], s_data[1].id, 16), 0);
    /* A minute later m0 is due again with one attempt made. */
    c = s_due("GT-PGN", now + 60000, 1);
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    CU_ASSERT_EQUAL(c.ids[0], d0);
    CU_ASSERT_EQUAL(c.attempts[0], 1);
    /* Second send: attempts 2, still one "delivered" event. */
    CU_ASSERT_EQUAL(pt_store_mark_sent(s_store, d0, now + 60000, now + 120000), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT attempts FROM deliveries WHERE delivery_id = "
                                 "(SELECT min(delivery_id) FROM deliveries)"),
                    2);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE kind = 'delivered'"), 1);
    CU_ASSERT_EQUAL(pt_store_mark_sent(s_store, 999999999, now, now), PT_STORE_NOT_FOUND);

    /* Ack m0: m1 becomes the head of correlation 1 and comes first. */
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "GT-PGN", s_data[0].id, now + 1), PT_STORE_OK);
    c = s_due("GT-PGN", now, 2);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[0], s_data[1].id, 16), 0);
    CU_ASSERT_EQUAL(c.ids[1], d2);

    /* Acks: repeated, unknown id, wrong recipient. */
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "GT-PGN", s_data[0].id, now + 2), PT_STORE_DUPLICATE);
    uint8_t unknown[16] = {0xFF};
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "GT-PGN", unknown, now), PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "HN-DINAF", s_data[0].id, now), PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE kind = 'acknowledged'"),
                    1);

    /* m2 (case ct-B) through its whole life: sent, acknowledged. */
    CU_ASSERT_EQUAL(pt_store_mark_sent(s_store, d2, now + 3, now + 60000), PT_STORE_OK);
    CU_ASSERT_EQUAL(pt_store_ack(s_store, "GT-PGN", s_data[2].id, now + 4), PT_STORE_OK);

    /* An expired message is never offered, and does not block its correlation. */
    s_msg_data_t exp_data, next_data;
    pt_submission_t subs[2] = {s_sub(&exp_data, 60, 60, "ct-E", now - 1),
                               s_sub(&next_data, 61, 60, "ct-E", 0)};
    subs[0].recipients = subs[1].recipients = (const char *const[]){"SV-CONNA"};
    pt_store_receipt_t r[2];
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, subs, 2, r), PT_STORE_OK);
    c = s_due("SV-CONNA", s_now(), 10);
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[0], next_data.id, 16), 0);

    /* Retry sweep helpers. */
    CU_ASSERT(pt_store_next_due_ms(s_store) <= s_now());
    s_names_t names = {0};
    CU_ASSERT_EQUAL(pt_store_recipients_with_due(s_store, s_now(), s_collect_name, &names),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(names.n, 3);
    CU_ASSERT_STRING_EQUAL(names.names[0], "GT-PGN");
    CU_ASSERT_STRING_EQUAL(names.names[1], "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(names.names[2], "SV-CONNA");
}

/* --- trail ---------------------------------------------------------------------------- */

typedef struct {
    int n;
    int chain_ok;
    uint8_t last[32];
    char kinds[16][24];
    char actors[16][PT_STORE_ORG_ID_MAX];
    uint8_t hashes[16][32];
    uint64_t seqs[16];
} s_trail_t;

static void s_collect_event(const pt_store_event_t *e, void *arg)
{
    s_trail_t *t = arg;
    uint8_t h[32];
    if (memcmp(e->prev_hash, t->last, 32) != 0 || pt_trail_hash(e->prev_hash, &e->event, h) != 0 ||
        memcmp(h, e->hash, 32) != 0 || e->event.seq != (uint64_t)t->n + 1)
        t->chain_ok = 0;
    memcpy(t->last, e->hash, 32);
    if (t->n < 16) {
        snprintf(t->kinds[t->n], sizeof t->kinds[t->n], "%s", e->event.kind);
        snprintf(t->actors[t->n], sizeof t->actors[t->n], "%s", e->event.actor);
        memcpy(t->hashes[t->n], e->hash, 32);
        t->seqs[t->n] = e->event.seq;
    }
    t->n++;
}

static s_trail_t s_trail(const char *case_token)
{
    s_trail_t t;
    memset(&t, 0, sizeof t);
    t.chain_ok = 1;
    CU_ASSERT_EQUAL(pt_store_trail(s_store, case_token, s_collect_event, &t), PT_STORE_OK);
    return t;
}

static void test_trail(void)
{
    s_trail_t t = s_trail("ct-B");
    CU_ASSERT_EQUAL_FATAL(t.n, 4);
    CU_ASSERT(t.chain_ok);
    CU_ASSERT_STRING_EQUAL(t.kinds[0], "submitted");
    CU_ASSERT_STRING_EQUAL(t.kinds[1], "stored");
    CU_ASSERT_STRING_EQUAL(t.kinds[2], "delivered");
    CU_ASSERT_STRING_EQUAL(t.kinds[3], "acknowledged");
    CU_ASSERT_STRING_EQUAL(t.actors[0], "MX-DIF");
    CU_ASSERT_STRING_EQUAL(t.actors[3], "GT-PGN");
    /* The receipt's event hash is the "stored" event. */
    CU_ASSERT_EQUAL(memcmp(t.hashes[1], s_receipts[2].event_hash, 32), 0);

    /* ct-A: two messages, then m0 delivered and acknowledged. */
    t = s_trail("ct-A");
    CU_ASSERT_EQUAL_FATAL(t.n, 6);
    CU_ASSERT(t.chain_ok);
    const char *expect[] = {"submitted", "stored", "submitted", "stored", "delivered",
                            "acknowledged"};
    for (int i = 0; i < 6; i++)
        CU_ASSERT_STRING_EQUAL(t.kinds[i], expect[i]);
    CU_ASSERT_EQUAL(memcmp(t.hashes[1], s_receipts[0].event_hash, 32), 0);
    CU_ASSERT_EQUAL(memcmp(t.hashes[3], s_receipts[1].event_hash, 32), 0);

    t = s_trail("ct-bulk-0");
    CU_ASSERT_EQUAL(t.n, 120);
    CU_ASSERT(t.chain_ok);

    t = s_trail("no-such-case");
    CU_ASSERT_EQUAL(t.n, 0);

    /* Every event links to the one before it in its chain (020: the head is read
       from the events). */
    CU_ASSERT_EQUAL(s_raw_scalar(S_CHAIN_BREAKS_SQL), 0);
}

/* One submission on another thread (test_chain_head_lock). */
typedef struct {
    pt_submission_t sub;
    pt_store_receipt_t receipt;
    pt_store_result_t rc;
    volatile int done;
} s_blocked_submit_t;

static void *s_blocked_submit(void *arg)
{
    s_blocked_submit_t *b = arg;
    b->rc = pt_store_submit_batch(s_store, &b->sub, 1, &b->receipt);
    b->done = 1;
    return NULL;
}

/* Appends to one case are serialised by the case's advisory lock, and the head is
   read after the lock is granted (020_chain_heads_from_events.sql): while another
   session holds the lock and appends an event, a submission to that case waits,
   then chains after that event. Read in the same statement as the lock, the head
   would predate the other append and the submission would fail on UNIQUE
   (case_token, seq). */
static void test_chain_head_lock(void)
{
    s_msg_data_t d[2];
    pt_submission_t first = s_sub(&d[0], 140, 140, "ct-LOCK", 0);
    pt_store_receipt_t r;
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, &first, 1, &r), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT max(seq) FROM case_events WHERE case_token = 'ct-LOCK'"),
                    2);
    /* Another session (as another broker would) takes the case's lock and appends. */
    CU_ASSERT_STRING_EQUAL_FATAL(s_raw_exec("BEGIN"), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("SELECT pg_advisory_xact_lock(20580, hashtext('ct-LOCK'))"),
                           "");
    CU_ASSERT_STRING_EQUAL(
        s_raw_exec("INSERT INTO case_events (case_token, seq, kind, at_ms, actor, prev_hash, hash) "
                   "SELECT case_token, 3, 'owner_changed', at_ms, 'MX-DIF', hash, sha256(hash) "
                   "FROM case_events WHERE case_token = 'ct-LOCK' AND seq = 2"),
        "");
    s_blocked_submit_t b;
    memset(&b, 0, sizeof b);
    b.sub = s_sub(&d[1], 141, 141, "ct-LOCK", 0);
    pthread_t thread;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, s_blocked_submit, &b), 0);
    struct timespec wait = {0, 300 * 1000000L};
    nanosleep(&wait, NULL);
    CU_ASSERT_EQUAL(b.done, 0); /* waiting for the lock */
    CU_ASSERT_STRING_EQUAL(s_raw_exec("COMMIT"), "");
    pthread_join(thread, NULL);
    CU_ASSERT_EQUAL(b.rc, PT_STORE_OK);
    CU_ASSERT_EQUAL(b.receipt.result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT max(seq) FROM case_events WHERE case_token = 'ct-LOCK'"),
                    5);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events e JOIN case_events p "
                                 "ON p.case_token = e.case_token AND p.seq = 3 "
                                 "WHERE e.case_token = 'ct-LOCK' AND e.seq = 4 "
                                 "AND e.prev_hash = p.hash"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar(S_CHAIN_BREAKS_SQL), 0);
}

/* --- append-only ------------------------------------------------------------------------- */

/* --- batched group commit, sends and acks (issue 8) ------------------------------------ */

/* A batch where lifecycle 70 is created and moved again (one statement per change,
   in order) and lifecycles 71 and 72 are created once each (one multi-row
   statement); then every send of the batch in one transaction and every ack in
   one; then a batch whose move finds the lifecycle already moved fails whole. */
static void test_batched_paths(void)
{
    int64_t now = s_now();
    static const char *to_sv[] = {"SV-CONNA"};
    s_msg_data_t d[4];
    pt_submission_t subs[4];
    pt_store_receipt_t r[4];
    subs[0] = s_sub(&d[0], 700, 70, "ct-L", 0);
    subs[1] = s_sub(&d[1], 701, 70, "ct-L", 0);
    subs[2] = s_sub(&d[2], 702, 71, "ct-M", 0);
    subs[3] = s_sub(&d[3], 703, 72, "ct-M", 0);
    for (int i = 0; i < 4; i++) {
        subs[i].recipients = to_sv;
        subs[i].lifecycle_kind = "referral";
        subs[i].lifecycle_from = "";
        subs[i].lifecycle_to = "submitted";
        subs[i].lifecycle_initiator = "MX-DIF";
        subs[i].lifecycle_counterparty = "SV-CONNA";
    }
    subs[1].lifecycle_from = "submitted";
    subs[1].lifecycle_to = "revoked";
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, subs, 4, r), PT_STORE_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(r[i].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM lifecycles WHERE correlation_id IN "
                                 "(SELECT correlation_id FROM messages WHERE case_token IN "
                                 "('ct-L', 'ct-M'))"),
                    3);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM lifecycles l JOIN messages m ON "
                                 "m.correlation_id = l.correlation_id WHERE m.case_token = 'ct-L' "
                                 "AND l.state = 'revoked'"),
                    2);
    /* ct-M: submitted, stored, state:submitted for each message, chained in order. */
    s_trail_t t = s_trail("ct-M");
    CU_ASSERT_EQUAL(t.n, 6);
    CU_ASSERT(t.chain_ok);
    CU_ASSERT_STRING_EQUAL(t.kinds[2], "state:submitted");
    CU_ASSERT_STRING_EQUAL(t.kinds[5], "state:submitted");
    /* Delivery ids follow submission order. */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM (SELECT delivery_id, seq, lag(seq) OVER "
                                 "(ORDER BY delivery_id) AS prev FROM deliveries) x "
                                 "WHERE prev > seq"),
                    0);

    /* Due: 700 (corr 70; 701 waits behind it), 702, 703; plus ct-E's earlier one. */
    now = s_now();
    s_due_t c = s_due("SV-CONNA", now, 10);
    CU_ASSERT_EQUAL_FATAL(c.n, 4);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[1], d[0].id, 16), 0);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[2], d[2].id, 16), 0);
    CU_ASSERT_EQUAL(memcmp(c.message_ids[3], d[3].id, 16), 0);
    /* One transaction for three sends (one twice) and an unknown id. */
    pt_store_sent_t sent[5] = {{.delivery_id = c.ids[2], .retry_at_ms = now + 60000},
                               {.delivery_id = c.ids[3], .retry_at_ms = now + 60000},
                               {.delivery_id = 987654321, .retry_at_ms = now},
                               {.delivery_id = c.ids[3], .retry_at_ms = now + 60000},
                               {.delivery_id = c.ids[1], .retry_at_ms = now + 60000}};
    CU_ASSERT_EQUAL(pt_store_mark_sent_batch(s_store, sent, 5, now), PT_STORE_OK);
    CU_ASSERT_EQUAL(sent[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(sent[1].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(sent[2].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(sent[3].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(sent[4].result, PT_STORE_OK);
    /* 702 and 703 were the initiator's, lifecycles "submitted": both delivered. */
    t = s_trail("ct-M");
    CU_ASSERT_EQUAL_FATAL(t.n, 10);
    CU_ASSERT(t.chain_ok);
    CU_ASSERT_STRING_EQUAL(t.kinds[6], "delivered");
    CU_ASSERT_STRING_EQUAL(t.actors[6], "SV-CONNA");
    CU_ASSERT_STRING_EQUAL(t.kinds[7], "state:delivered");
    CU_ASSERT_STRING_EQUAL(t.kinds[8], "delivered");
    CU_ASSERT_STRING_EQUAL(t.kinds[9], "state:delivered");
    /* 700's lifecycle was already revoked: delivered, no state move. */
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-L' "
                                 "AND kind LIKE 'state:deliv%'"),
                    0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE case_token = 'ct-L' "
                                 "AND kind = 'delivered'"),
                    1);

    /* One transaction for acks: good, repeated in the batch, unknown, wrong recipient. */
    uint8_t unknown[16] = {0xEE};
    pt_store_ack_item_t acks[5] = {{.recipient = "SV-CONNA"}, {.recipient = "SV-CONNA"},
                                   {.recipient = "SV-CONNA"}, {.recipient = "GT-PGN"},
                                   {.recipient = "SV-CONNA"}};
    memcpy(acks[0].message_id, d[2].id, 16);
    memcpy(acks[1].message_id, d[2].id, 16);
    memcpy(acks[2].message_id, unknown, 16);
    memcpy(acks[3].message_id, d[3].id, 16);
    memcpy(acks[4].message_id, d[3].id, 16);
    CU_ASSERT_EQUAL(pt_store_ack_batch(s_store, acks, 5, now + 5), PT_STORE_OK);
    CU_ASSERT_EQUAL(acks[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(acks[1].result, PT_STORE_DUPLICATE);
    CU_ASSERT_EQUAL(acks[2].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(acks[3].result, PT_STORE_NOT_FOUND);
    CU_ASSERT_EQUAL(acks[4].result, PT_STORE_OK);
    t = s_trail("ct-M");
    CU_ASSERT_EQUAL_FATAL(t.n, 14);
    CU_ASSERT(t.chain_ok);
    CU_ASSERT_STRING_EQUAL(t.kinds[10], "acknowledged");
    CU_ASSERT_STRING_EQUAL(t.kinds[11], "state:received");
    CU_ASSERT_STRING_EQUAL(t.kinds[12], "acknowledged");
    CU_ASSERT_STRING_EQUAL(t.kinds[13], "state:received");
    /* The same acks again: all already done, nothing appended. */
    CU_ASSERT_EQUAL(pt_store_ack_batch(s_store, acks, 2, now + 6), PT_STORE_OK);
    CU_ASSERT_EQUAL(acks[0].result, PT_STORE_DUPLICATE);
    CU_ASSERT_EQUAL(acks[1].result, PT_STORE_DUPLICATE);
    CU_ASSERT_EQUAL(s_trail("ct-M").n, 14);

    /* A move from a state the lifecycle is no longer in (another broker moved it):
       the whole batch fails as UNAVAILABLE and nothing of it is stored. */
    s_msg_data_t e[2];
    pt_submission_t late[2] = {s_sub(&e[0], 710, 73, "ct-N", 0), s_sub(&e[1], 711, 71, "ct-M", 0)};
    late[1].lifecycle_kind = "referral";
    late[1].lifecycle_from = "submitted";   /* it is "received" now */
    late[1].lifecycle_to = "revoked";
    late[1].lifecycle_initiator = "MX-DIF";
    late[1].lifecycle_counterparty = "SV-CONNA";
    long long before = s_raw_scalar("SELECT count(*) FROM messages");
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, late, 2, r), PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), before);
    CU_ASSERT_EQUAL(s_trail("ct-M").n, 14);
    /* A create that finds the lifecycle already there fails the same way. */
    late[1] = late[0];
    late[1].message_id = e[1].id;
    late[1].correlation_id = d[2].corr;
    late[1].lifecycle_kind = "referral";
    late[1].lifecycle_from = "";
    late[1].lifecycle_to = "submitted";
    late[1].lifecycle_initiator = "MX-DIF";
    late[1].lifecycle_counterparty = "SV-CONNA";
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, late, 2, r), PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), before);
    /* The store is usable right after. */
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, late, 1, r), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages"), before + 1);
}

/* Rows an EXPLAIN (ANALYZE, FORMAT JSON) plan touched over and over: for every
   node run more than once, (rows returned + rows its filter removed) x loops;
   for every join, the rows its join filter removed. A plan that probes the
   whole backlog once per candidate shows here as candidates x backlog; one scan
   of a table (the planner's choice for a small one) does not count. */
/* A database of its own (dropped first if left over), migrated by the store; a
   superuser connection to it, or NULL (the failure is asserted here). The caller
   closes it and drops the database. */
static PGconn *s_own_db(const char *dbname)
{
    char err[256] = "", ci[1200], sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    if (*s_raw_exec(sql)) {
        CU_FAIL("cannot create a database of its own");
        return NULL;
    }
    snprintf(ci, sizeof ci, "%s dbname=%s", s_store_conninfo, dbname);
    pt_store_t *store = pt_store_new(ci, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(store);
    CU_ASSERT_EQUAL(store ? pt_store_migrate(store, s_sql_dir, err, sizeof err) : -1, 0);
    pt_store_destroy(&store);
    PGconn *conn = PQconnectdb(ci);
    if (PQstatus(conn) != CONNECTION_OK) {
        CU_FAIL("cannot connect to the database of its own");
        PQfinish(conn);
        return NULL;
    }
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    return conn;
}

/* Seeds n messages straight into conn's tables, one delivery each, every one its own
   correlation id and case (<prefix>-1..n), from <prefix>-S to <prefix>-R, in state
   `state` with `attempts`, due a minute ago. The SQLSTATE of a failure, "" if OK. */
static const char *s_seed_deliveries(PGconn *conn, const char *prefix, int n, const char *state,
                                     int attempts)
{
    char sql[1200];
    snprintf(sql, sizeof sql,
             "WITH m AS (INSERT INTO messages (message_id, correlation_id, message_type, "
             "sender, recipients, case_token, created_at, stored_at, header_sha256, envelope) "
             "SELECT gen_random_uuid(), gen_random_uuid(), 'referral.request', '%s-S', "
             "ARRAY['%s-R'], '%s-' || i, now(), now(), sha256(int4send(i)), '\\x0a00'::bytea "
             "FROM generate_series(1, %d) AS i ORDER BY i "
             "RETURNING message_id, correlation_id, seq) "
             "INSERT INTO deliveries (message_id, recipient, correlation_id, seq, state, "
             "attempts, next_attempt_at) SELECT message_id, '%s-R', correlation_id, seq, '%s', "
             "%d, now() - interval '1 minute' FROM m ORDER BY seq",
             prefix, prefix, prefix, n, prefix, state, attempts);
    return s_exec_on(conn, sql);
}

static double s_plan_repeated_rows(const json_t *node)
{
    double rows = 0;
    if (json_is_array(node)) {
        size_t i;
        const json_t *v;
        json_array_foreach(node, i, v) rows += s_plan_repeated_rows(v);
        return rows;
    }
    if (!json_is_object(node))
        return 0;
    double loops = json_number_value(json_object_get(node, "Actual Loops"));
    double out = json_number_value(json_object_get(node, "Actual Rows"));
    double removed = json_number_value(json_object_get(node, "Rows Removed by Filter"));
    double join_removed = json_number_value(json_object_get(node, "Rows Removed by Join Filter"));
    if (loops > 1)
        rows += (out + removed) * loops;
    rows += join_removed * (loops > 1 ? loops : 1);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)node, key, v)
    {
        if (json_is_array(v) || json_is_object(v))
            rows += s_plan_repeated_rows(v);
    }
    return rows;
}

/* Runs an EXPLAIN (FORMAT JSON) statement on conn with n text parameters (values
   may be NULL when n is 0). The parsed plan (the caller json_decref's it), or NULL
   with the reason on stderr; either way asserted. */
static json_t *s_explain_json(PGconn *conn, const char *explain, int n,
                              const char *const *values)
{
    json_t *plan = NULL;
    PGresult *res = PQexecParams(conn, explain, n, NULL, values, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        json_error_t jerr;
        plan = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL(plan);
    } else {
        fprintf(stderr, "%.60s: %s\n", explain, PQerrorMessage(conn));
    }
    PQclear(res);
    return plan;
}

/* EXPLAIN (ANALYZE, BUFFERS) of the store's due statement, prepared on conn as
   `name`, for one pass of `recipient` (256 at most, window 1024, retries on), in a
   transaction rolled back afterwards (the pass claims what it finds), with
   `settings` (SQL, or NULL) run first in it: the store runs the due statement in a
   transaction of its own under pt_store_hot_txn_sql (pt_store_due_deliveries_ex).
   The parsed plan (the caller json_decref's it), or NULL with the reason on
   stderr. */
static json_t *s_explain_due(PGconn *conn, const char *name, const char *recipient,
                             const char *settings)
{
    char sql[300];
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "BEGIN"), "");
    if (settings)
        CU_ASSERT_STRING_EQUAL(s_exec_on(conn, settings), "");
    snprintf(sql, sizeof sql,
             "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE %s('%s', %lld, 256, "
             "'plan-test', 30000, 1024, true)",
             name, recipient, (long long)s_now());
    json_t *plan = s_explain_json(conn, sql, 0, NULL);
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "ROLLBACK"), "");
    return plan;
}

/* Prepares the store's due statement on conn as `name` (asserted). */
static void s_prepare_due(PGconn *conn, const char *name)
{
    PGresult *res = PQprepare(conn, name, pt_store_statement_sql("pt_due"), 0, NULL);
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
}

/* Asserts that the statement prepared on conn as `name` ran `generic` times on a
   generic plan and never on a custom one (pg_prepared_statements). */
static void s_assert_generic(PGconn *conn, const char *name, long generic)
{
    const char *values[1] = {name};
    PGresult *res = PQexecParams(conn,
                                 "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                 "WHERE name = $1",
                                 1, NULL, values, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(res), 1);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        CU_ASSERT_EQUAL(atol(PQgetvalue(res, 0, 0)), generic);
        CU_ASSERT_EQUAL(atol(PQgetvalue(res, 0, 1)), 0);
    }
    PQclear(res);
}

/* Due deliveries stay O(backlog) when the statistics say nothing is waiting
   (016_due_plans.sql): a long acknowledged history analysed, then a backlog of
   S_PLAN_PENDING never-sent and S_PLAN_RETRY sent deliveries. The store's own
   due statement (pt_store_statement_sql), run as the store runs it (a generic
   plan under the hot settings), must not re-read the backlog for each candidate: the anti-join plan
   it replaced did (4 000 waiting over 100 000 acknowledged: 13 million rows
   re-read, 6.2 s per pass). */
#define S_PLAN_HISTORY 100000
#define S_PLAN_PENDING 3000
#define S_PLAN_RETRY 1000
#define S_PLAN_DB "puente_plan_test"

/* Audit log invariants (006 + 017): every event has its leaf, leaves follow event
   order without gaps, each leaf hash is the documented one, the head's size counts
   them, and no transaction's marker is left in audit_pending. */
static void s_check_audit_log(void)
{
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events e LEFT JOIN audit_log a "
                                 "USING (event_id) WHERE a.event_id IS NULL"),
                    0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM (SELECT leaf_index, lag(leaf_index) "
                                 "OVER (ORDER BY event_id) AS p FROM audit_log) x "
                                 "WHERE x.p IS NOT NULL AND x.p <> x.leaf_index - 1"),
                    0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT min(leaf_index) FROM audit_log"), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log a JOIN case_events e "
                                 "USING (event_id) WHERE a.leaf_hash <> sha256('\\x00'::bytea "
                                 "|| convert_to('puente.v1 leaf', 'UTF8') || '\\x00'::bytea "
                                 "|| e.hash || int8send(e.event_id))"),
                    0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT size FROM audit_head"),
                    s_raw_scalar("SELECT count(*) FROM audit_log"));
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_pending"), 0);
}

/* Issue 8: first owners of a batch in one statement (S_OWNER_FIRST_MANY), the
   audit append once per transaction (017_audit_append_fast.sql). */
static void test_owners_and_audit_append(void)
{
    s_check_audit_log();
    long long leaves = s_raw_scalar("SELECT count(*) FROM audit_log");
    /* Two messages open ct-OWN in one batch: the earlier one's sender owns it. */
    s_msg_data_t d[3];
    pt_submission_t subs[3];
    pt_store_receipt_t r[3];
    subs[0] = s_sub(&d[0], 800, 80, "ct-OWN", 0);
    subs[1] = s_sub(&d[1], 801, 81, "ct-OWN", 0);
    subs[2] = s_sub(&d[2], 802, 82, "ct-OWN2", 0);
    subs[0].owner_first = "MX-DIF";
    subs[1].sender = "GT-SBS";
    subs[1].owner_first = "GT-SBS";
    subs[2].owner_first = "MX-DIF";
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, subs, 3, r), PT_STORE_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(r[i].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_owners WHERE case_token = 'ct-OWN' "
                                 "AND owner = 'MX-DIF' AND former_owners = ''"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_owners WHERE case_token = 'ct-OWN2' "
                                 "AND owner = 'MX-DIF'"),
                    1);
    /* A later first owner does not replace it; in a batch where an owner moves, each
       change keeps its own statement, in batch order. */
    s_msg_data_t e[2];
    pt_submission_t more[2];
    pt_store_receipt_t r2[2];
    more[0] = s_sub(&e[0], 803, 83, "ct-OWN2", 0);
    more[0].sender = "GT-SBS";
    more[0].owner_first = "GT-SBS";
    more[1] = s_sub(&e[1], 804, 84, "ct-OWN", 0);
    more[1].owner_to = "GT-SBS";
    more[1].owner_from = "MX-DIF";
    more[1].former_owners = "MX-DIF";
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, more, 2, r2), PT_STORE_OK);
    CU_ASSERT_EQUAL(r2[0].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(r2[1].result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_owners WHERE case_token = 'ct-OWN2' "
                                 "AND owner = 'MX-DIF'"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_owners WHERE case_token = 'ct-OWN' "
                                 "AND owner = 'GT-SBS' AND former_owners = 'MX-DIF'"),
                    1);
    s_check_audit_log();
    CU_ASSERT(s_raw_scalar("SELECT count(*) FROM audit_log") > leaves);

    /* Several statements in one transaction: one append at COMMIT takes them all, in
       event order; a rolled-back transaction appends nothing and leaves no marker. */
    leaves = s_raw_scalar("SELECT count(*) FROM audit_log");
    static const char ev[] =
        "INSERT INTO case_events (case_token, seq, kind, at_ms, actor, prev_hash, hash) "
        "VALUES ('ct-AUD', %d, 'note', 1, 'MX-DIF', sha256('p%d'::bytea), sha256('h%d'::bytea))";
    char sql[400];
    CU_ASSERT_STRING_EQUAL(s_raw_exec("BEGIN"), "");
    for (int k = 1; k <= 3; k++) {
        snprintf(sql, sizeof sql, ev, k, k, k);
        CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    }
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_pending"), 1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log"), leaves); /* at COMMIT */
    CU_ASSERT_STRING_EQUAL(s_raw_exec("COMMIT"), "");
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log"), leaves + 3);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log a JOIN case_events e "
                                 "USING (event_id) WHERE e.case_token = 'ct-AUD'"),
                    3);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("BEGIN"), "");
    snprintf(sql, sizeof sql, ev, 4, 4, 4);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("ROLLBACK"), "");
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log"), leaves + 3);
    /* A savepoint rolled back takes its events and its note with it. */
    CU_ASSERT_STRING_EQUAL(s_raw_exec("BEGIN"), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("SAVEPOINT a"), "");
    snprintf(sql, sizeof sql, ev, 4, 4, 4);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("ROLLBACK TO SAVEPOINT a"), "");
    snprintf(sql, sizeof sql, ev, 5, 5, 5);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("COMMIT"), "");
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log"), leaves + 4);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM audit_log a JOIN case_events e "
                                 "USING (event_id) WHERE e.case_token = 'ct-AUD' AND e.seq = 5"),
                    1);
    s_check_audit_log();
}

static void test_due_plan(void)
{
    const char *due = pt_store_statement_sql("pt_due");
    CU_ASSERT_PTR_NOT_NULL_FATAL(due);
    CU_ASSERT_PTR_NULL(pt_store_statement_sql("no such statement"));

    /* A database of its own, migrated by the store: the other tests' waiting
       deliveries would otherwise show in the statistics. */
    PGconn *conn = s_own_db(S_PLAN_DB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);

    PGresult *res = PQexec(conn, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM "
                                 "pg_indexes WHERE tablename = 'deliveries' AND indexname IN "
                                 "('deliveries_pending', 'deliveries_retry', "
                                 "'deliveries_unacked_order', 'deliveries_live_next', "
                                 "'deliveries_unacked_next')");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0),
                               "deliveries_live_next,deliveries_pending,deliveries_retry,"
                               "deliveries_unacked_order");
    PQclear(res);

    /* One message per delivery, each its own correlation id. The history,
       acknowledged and vacuumed, as autovacuum leaves it... */
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "PLAN", S_PLAN_HISTORY, "acked", 1), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE deliveries"), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE messages"), "");
    /* ...then a backlog the statistics have not seen (a surge after an outage). */
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "PLAN", S_PLAN_PENDING, "pending", 0), "");
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "PLAN", S_PLAN_RETRY, "delivered", 1), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, pt_store_session_sql()), "");
    s_prepare_due(conn, "plan_due");
    json_t *plan = s_explain_due(conn, "plan_due", "PLAN-R", pt_store_hot_txn_sql());
    if (plan) {
        const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
        /* The pass claims a full batch... */
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(top, "Actual Rows")), 256);
        /* ...probing each candidate's correlation id by index: at most a row or
           two per waiting delivery (measured: 0, none is held back); the anti-join
           plan it replaced: the whole backlog per candidate (13 million rows). */
        double rows = s_plan_repeated_rows(plan);
        CU_ASSERT(rows <= 2.0 * (S_PLAN_PENDING + S_PLAN_RETRY));
        if (getenv("PT_TEST_VERBOSE") || !(rows <= 2.0 * (S_PLAN_PENDING + S_PLAN_RETRY)))
            fprintf(stderr, "test_due_plan: %.0f rows re-read\n", rows);
        json_decref(plan);
    }
    s_assert_generic(conn, "plan_due", 1);

    /* Never compiled (S_SESSION_SQL sets jit off). jit_above_cost = 0 stands in for
       the estimate a large backlog gives the generic plan (millions: 50 ms of
       compiling per pass, measured); the server can compile, so the check can fail. */
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "SET jit_above_cost = 0"), "");
    s_prepare_due(conn, "plan_due_cost0"); /* planned now: the decision is the planner's */
    plan = s_explain_due(conn, "plan_due_cost0", "PLAN-R", pt_store_hot_txn_sql());
    CU_ASSERT_PTR_NOT_NULL(plan);
    if (plan) {
        CU_ASSERT_PTR_NULL(json_object_get(json_array_get(plan, 0), "JIT"));
        json_decref(plan);
    }
    /* The test's own check: with jit on, the same plan is compiled. */
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "SET jit = on"), "");
    PGresult *jit = PQexec(conn, "SELECT pg_jit_available()");
    CU_ASSERT_EQUAL(PQresultStatus(jit), PGRES_TUPLES_OK);
    if (PQresultStatus(jit) == PGRES_TUPLES_OK && PQntuples(jit) == 1)
        CU_ASSERT_STRING_EQUAL(PQgetvalue(jit, 0, 0), "t");
    PQclear(jit);
    s_prepare_due(conn, "plan_due_jit");
    plan = s_explain_due(conn, "plan_due_jit", "PLAN-R", pt_store_hot_txn_sql());
    CU_ASSERT_PTR_NOT_NULL(plan);
    if (plan) {
        CU_ASSERT_PTR_NOT_NULL(json_object_get(json_array_get(plan, 0), "JIT"));
        json_decref(plan);
    }
    PQfinish(conn);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DROP DATABASE " S_PLAN_DB), "");
}

/* The number of nodes of a plan whose `field` ("Node Type", "Index Name", ...)
   starts with `prefix`. */
static int s_plan_count(const json_t *node, const char *field, const char *prefix)
{
    int count = 0;
    if (json_is_array(node)) {
        size_t i;
        const json_t *v;
        json_array_foreach(node, i, v) count += s_plan_count(v, field, prefix);
        return count;
    }
    if (!json_is_object(node))
        return 0;
    const char *t = json_string_value(json_object_get(node, field));
    if (t && strncmp(t, prefix, strlen(prefix)) == 0)
        count++;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)node, key, v)
    {
        if (json_is_array(v) || json_is_object(v))
            count += s_plan_count(v, field, prefix);
    }
    return count;
}

/* Appends the plan's nodes, depth first, as "Node Type[index]" separated by
   spaces, to out (cap bytes, truncated). */
static void s_plan_shape(const json_t *node, char *out, size_t cap)
{
    if (json_is_array(node)) {
        size_t i;
        const json_t *v;
        json_array_foreach(node, i, v) s_plan_shape(v, out, cap);
        return;
    }
    if (!json_is_object(node))
        return;
    const char *type = json_string_value(json_object_get(node, "Node Type"));
    const char *index = json_string_value(json_object_get(node, "Index Name"));
    size_t len = strlen(out);
    if (type && len < cap)
        snprintf(out + len, cap - len, "%s%s%s%s", len ? " " : "", type, index ? ":" : "",
                 index ? index : "");
    s_plan_shape(json_object_get(node, "Plan"), out, cap);
    s_plan_shape(json_object_get(node, "Plans"), out, cap);
}

/* The due pass after churn that no VACUUM has cleaned yet (store.c,
   S_SESSION_SQL): a recipient's history and backlog analysed, then nearly all of
   the backlog acknowledged, so the partial queue indexes still hold an entry per
   departed row. Under the store's session settings the pass uses no bitmap scan,
   and once a pass has marked the dead entries the next one reads less. */
#define S_CHURN_DB "puente_churn_test"
#define S_CHURN_HISTORY 200000
#define S_CHURN_ROWS 5000
static void test_due_after_churn(void)
{
    const char *due = pt_store_statement_sql("pt_due");
    CU_ASSERT_PTR_NOT_NULL_FATAL(due);
    CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(pt_store_session_sql(), "enable_bitmapscan = off"));
    char sql[1024];
    PGconn *conn = s_own_db(S_CHURN_DB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
    /* Autovacuum off for this table: the test is about the time before it runs. */
    CU_ASSERT_STRING_EQUAL(
        s_exec_on(conn, "ALTER TABLE deliveries SET (autovacuum_enabled = false)"), "");
    /* An acknowledged history, then a backlog, both in the statistics... */
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "CHURN", S_CHURN_HISTORY, "acked", 1), "");
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "CHURN", S_CHURN_ROWS, "pending", 0), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE deliveries"), "");
    /* ...then all of the backlog but its last 10 delivered and acknowledged: no
       VACUUM since. */
    snprintf(sql, sizeof sql,
             "UPDATE deliveries SET state = 'acked', attempts = 1, acked_at = now() "
             "WHERE state = 'pending' AND delivery_id <= (SELECT max(delivery_id) - 10 "
             "FROM deliveries)");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, sql), "");
    s_prepare_due(conn, "churn_due");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, pt_store_session_sql()), "");
    double buffers[2] = {0, 0};
    int bitmaps = 0;
    for (int pass = 0; pass < 2; pass++) {
        json_t *plan = s_explain_due(conn, "churn_due", "CHURN-R", pt_store_hot_txn_sql());
        if (!plan)
            continue;
        const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(top, "Actual Rows")), 10);
        double hit = json_number_value(json_object_get(top, "Shared Hit Blocks"));
        double read = json_number_value(json_object_get(top, "Shared Read Blocks"));
        buffers[pass] = hit + read;
        bitmaps += s_plan_count(plan, "Node Type", "Bitmap");
        json_decref(plan);
    }
    CU_ASSERT_EQUAL(bitmaps, 0);
    s_assert_generic(conn, "churn_due", 2);
    /* The second pass reads less than the first, which marked the departed
       entries (measured: 257 then 166 buffers); the bitmap plan this replaced read
       the departed rows' heap pages on every pass (242 then 242 here; 4 000 pages,
       22 ms a pass, with 5 million messages stored). */
    CU_ASSERT(buffers[1] > 0 && buffers[1] < buffers[0]);
    if (getenv("PT_TEST_VERBOSE") || !(buffers[1] < buffers[0]) || bitmaps)
        fprintf(stderr, "test_due_after_churn: buffers %.0f then %.0f, %d bitmap nodes\n",
                buffers[0], buffers[1], bitmaps);
    PQfinish(conn);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DROP DATABASE " S_CHURN_DB), "");
}

/* EXPLAIN (FORMAT JSON) of the store's statement `name` (pt_store_statement_sql)
   on conn with n text parameters: how many plan nodes use `index`; the number of
   sequential scans in *seq_scans unless it is NULL. */
static int s_statement_index_uses(PGconn *conn, const char *name, int n, const char *const *values,
                                  const char *index, int *seq_scans)
{
    const char *sql = pt_store_statement_sql(name);
    CU_ASSERT_PTR_NOT_NULL(sql);
    if (!sql)
        return -1;
    char explain[1200];
    snprintf(explain, sizeof explain, "EXPLAIN (FORMAT JSON) %s", sql);
    json_t *plan = s_explain_json(conn, explain, n, values);
    int used = s_plan_count(plan, "Index Name", index);
    if (seq_scans)
        *seq_scans = s_plan_count(plan, "Node Type", "Seq Scan");
    json_decref(plan);
    return used;
}

/* The due pass when the statistics predate a surge (018_due_plans_stale_stats.sql):
   an acknowledged history analysed while nothing waited, so every partial queue
   index is recorded as empty; then a surge for one recipient the statistics have
   not seen, S_SURGE_INFLIGHT of it sent and not yet due again. The pass walks
   deliveries_pending in order and stops at what the delivery window leaves
   (1 024 - S_SURGE_INFLIGHT); it never touches deliveries_live_next, which the
   two "what is due" statements still use. Before 018 the planner read the whole
   backlog through deliveries_live_next and sorted it: 41 545 buffers for 24 rows
   with this data, 47-66 ms a pass in the long mode. */
#define S_SURGE_DB "puente_surge_test"
#define S_SURGE_HISTORY 60000
#define S_SURGE_PENDING 20000
#define S_SURGE_INFLIGHT 1000
static void test_due_after_surge(void)
{
    const char *due = pt_store_statement_sql("pt_due");
    CU_ASSERT_PTR_NOT_NULL_FATAL(due);
    PGconn *conn = s_own_db(S_SURGE_DB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
    CU_ASSERT_STRING_EQUAL(
        s_exec_on(conn, "ALTER TABLE deliveries SET (autovacuum_enabled = false)"), "");
    /* History: another recipient's and this one's, all acknowledged, analysed. */
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "SINK", S_SURGE_HISTORY, "acked", 1), "");
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "SURGE", S_SURGE_HISTORY / 3, "acked", 1), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE deliveries"), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE messages"), "");
    /* The surge: in flight first (sent, next try in an hour), then never sent. */
    CU_ASSERT_STRING_EQUAL(
        s_seed_deliveries(conn, "SURGE", S_SURGE_INFLIGHT, "delivered", 1), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "UPDATE deliveries SET next_attempt_at = now() + "
                                           "interval '1 hour' WHERE state = 'delivered'"),
                           "");
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "SURGE", S_SURGE_PENDING, "pending", 0), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, pt_store_session_sql()), "");
    s_prepare_due(conn, "surge_due");
    json_t *plan = s_explain_due(conn, "surge_due", "SURGE-R", pt_store_hot_txn_sql());
    if (plan) {
        const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(top, "Actual Rows")),
                        1024 - S_SURGE_INFLIGHT);
        int live_next = s_plan_count(plan, "Index Name", "deliveries_live_next");
        int pending = s_plan_count(plan, "Index Name", "deliveries_pending");
        double buffers = json_number_value(json_object_get(top, "Shared Hit Blocks")) +
                         json_number_value(json_object_get(top, "Shared Read Blocks"));
        CU_ASSERT_EQUAL(live_next, 0);
        CU_ASSERT_EQUAL(pending, 1);
        /* Measured: about 170 buffers; the whole backlog is over 40 000. */
        CU_ASSERT(buffers > 0 && buffers < 2000);
        if (getenv("PT_TEST_VERBOSE") || live_next || pending != 1 || !(buffers < 2000))
            fprintf(stderr, "test_due_after_surge: %.0f buffers, live_next %d, pending %d\n",
                    buffers, live_next, pending);
        json_decref(plan);
    }
    s_assert_generic(conn, "surge_due", 1);
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)s_now());
    /* The statements that should use deliveries_live_next still do. */
    const char *live[1] = {now};
    CU_ASSERT_EQUAL(
        s_statement_index_uses(conn, "pt_next_due", 1, live, "deliveries_live_next", NULL), 1);
    CU_ASSERT_EQUAL(
        s_statement_index_uses(conn, "pt_recipients_due", 1, live, "deliveries_live_next", NULL),
        1);
    /* The queue statistics (once a second) and a connection's release of its
       claims read what is not acknowledged through deliveries_unacked_order, not
       the whole history (019 keeps that index for the statements that say
       "attempts >= 0"). */
    const char *release[3] = {"SURGE-R", "plan-test", now};
    int scans[2] = {-1, -1};
    int used[2] = {s_statement_index_uses(conn, "pt_queue_stats", 0, NULL,
                                          "deliveries_unacked_order", &scans[0]),
                   s_statement_index_uses(conn, "pt_claims_release", 3, release,
                                          "deliveries_unacked_order", &scans[1])};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(used[i], 1);
        CU_ASSERT_EQUAL(scans[i], 0);
    }
    if (getenv("PT_TEST_VERBOSE") || used[0] != 1 || used[1] != 1 || scans[0] || scans[1])
        fprintf(stderr,
                "test_due_after_surge: unacked_order in queue stats %d (seq scans %d), claims "
                "release %d (%d)\n",
                used[0], scans[0], used[1], scans[1]);
    PQfinish(conn);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DROP DATABASE " S_SURGE_DB), "");
}

/* The hot transactions' statements (pt_store_hot_txn_sql: one generic plan each,
   made at their first run in a session and kept until the next ANALYZE) are index
   probes whatever their parameters, even when planned on a nearly empty database,
   as a fresh broker's are: with S_HOT_ROWS analysed messages, deliveries, events,
   chain heads, lifecycles and owners, none of their generic plans holds a
   sequential scan, a hash join or a merge join, and none walks a partial index
   without a condition (all of it: its size at the last ANALYZE decided the plan,
   and here, as after any quiet spell, every partial queue index was empty; the ack
   batch walked deliveries_unacked_order before 019_hot_statement_indexes.sql).
   Under force_generic_plan alone the same statements plan sequential scans and
   hash joins here (measured: 24 nodes), which would stay while the tables grow.
   The due statement runs under the same settings (pt_store_due_deliveries_ex):
   its generic plan, made here on 10 rows and kept, still walks deliveries_pending
   in order when a surge of S_HOT_SURGE arrives that no ANALYZE has seen. */
#define S_HOT_DB "puente_hot_test"
/* The number of index scans of a plan that walk a partial index of the
   comma-separated list `partial` (",name,name,") without a condition: all of it,
   however many rows it holds now (its size at the last ANALYZE decided the
   plan). */
static int s_index_walks(const json_t *node, const char *partial)
{
    int count = 0;
    if (json_is_array(node)) {
        size_t i;
        const json_t *v;
        json_array_foreach(node, i, v) count += s_index_walks(v, partial);
        return count;
    }
    if (!json_is_object(node))
        return 0;
    const char *type = json_string_value(json_object_get(node, "Node Type"));
    const char *index = json_string_value(json_object_get(node, "Index Name"));
    char key[80];
    snprintf(key, sizeof key, ",%s,", index ? index : "");
    if (type && index && strncmp(type, "Index", 5) == 0 && !json_object_get(node, "Index Cond") &&
        strstr(partial, key))
        count++;
    count += s_index_walks(json_object_get(node, "Plan"), partial);
    count += s_index_walks(json_object_get(node, "Plans"), partial);
    return count;
}

#define S_HOT_SURGE 20000
#define S_HOT_ROWS 10
static int s_hot_bad_nodes(PGconn *conn, const char *prefix, const char *settings, int verbose,
                           int *stored_index)
{
    static const char *const names[] = {
        "pt_heads_init",
        "pt_heads_lock",
        "pt_msgs_find",
        "pt_msgs_insert_many",
        "pt_events_insert_many",
        "pt_lc_create_many",
        "pt_lc_move_many",
        "pt_owner_first_many",
        "pt_mark_sent_batch",
        "pt_ack_batch",
        "pt_ack_exists_batch",
        "pt_lc_delivered",
        "pt_lc_received",
        "pt_due",
        "pt_lc_load",
        "pt_owner_load",
        "pt_leaves_find",
    };
    int bad = 0;
    char partial[2048] = ",";
    PGresult *res = PQexec(conn, "SELECT string_agg(c.relname, ',') FROM pg_index i "
                                 "JOIN pg_class c ON c.oid = i.indexrelid "
                                 "WHERE i.indpred IS NOT NULL");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(partial, sizeof partial, ",%s,", PQgetvalue(res, 0, 0));
    PQclear(res);
    CU_ASSERT_PTR_NOT_NULL(strstr(partial, ",deliveries_unacked_order,"));
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "BEGIN"), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, settings), "");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *sql = pt_store_statement_sql(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sql);
        char stmt[32];
        snprintf(stmt, sizeof stmt, "%s_%zu", prefix, i);
        res = PQprepare(conn, stmt, sql, 0, NULL);
        CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fprintf(stderr, "test_hot_plans: %s: %s", names[i], PQerrorMessage(conn));
        PQclear(res);
        res = PQdescribePrepared(conn, stmt);
        int n = PQresultStatus(res) == PGRES_COMMAND_OK ? PQnparams(res) : -1;
        PQclear(res);
        CU_ASSERT(n > 0 && n <= 20);
        if (n <= 0 || n > 20)
            continue;
        char explain[400];
        int len = snprintf(explain, sizeof explain, "EXPLAIN (FORMAT JSON) EXECUTE %s(", stmt);
        for (int k = 0; k < n; k++)
            len += snprintf(explain + len, sizeof explain - (size_t)len, "%sNULL", k ? ", " : "");
        snprintf(explain + len, sizeof explain - (size_t)len, ")");
        json_t *plan = s_explain_json(conn, explain, 0, NULL);
        int here = s_plan_count(plan, "Node Type", "Seq Scan") +
                   s_plan_count(plan, "Node Type", "Hash Join") +
                   s_plan_count(plan, "Node Type", "Merge Join") + s_index_walks(plan, partial);
        if (here && verbose)
            fprintf(stderr,
                    "test_hot_plans: %s: %d sequential scans, hash/merge joins or walks of a "
                    "partial index\n",
                    names[i], here);
        bad += here;
        if (stored_index)
            *stored_index += s_plan_count(plan, "Index Name", "case_events_stored");
        json_decref(plan);
    }
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "ROLLBACK"), "");
    return bad;
}

static void test_hot_plans(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(pt_store_hot_txn_sql(), "force_generic_plan"));
    PGconn *conn = s_own_db(S_HOT_DB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
    char sql[1400];
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "HOT", S_HOT_ROWS, "acked", 1), "");
    /* A case with its lifecycle, owner and events per message (bulk, triggers
       off: this database only serves the planner). */
    snprintf(sql, sizeof sql,
             "SET session_replication_role = replica; "
             "INSERT INTO lifecycles (correlation_id, kind, state, initiator, counterparty, "
             "case_token, respond_by_ms, follow_up_due_ms, created_at, updated_at) "
             "SELECT correlation_id, 'referral', 'received', sender, 'HOT-R', case_token, 0, 0, "
             "now(), now() FROM messages; "
             "INSERT INTO case_owners (case_token, owner, former_owners, updated_at) "
             "SELECT case_token, sender, '', now() FROM messages; "
             "INSERT INTO case_events (case_token, seq, kind, at_ms, actor, message_id, "
             "prev_hash, hash) SELECT m.case_token, k, CASE k WHEN 1 THEN 'submitted' "
             "ELSE 'stored' END, 1, m.sender, m.message_id, sha256(int4send(k)), "
             "sha256(convert_to(m.case_token || k, 'UTF8')) FROM messages m, "
             "generate_series(1, 2) AS k; "
             "SET session_replication_role = origin");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, sql), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, "VACUUM ANALYZE"), "");
    int verbose = getenv("PT_TEST_VERBOSE") != NULL;
    int stored_index = 0;
    int bad = s_hot_bad_nodes(conn, "hot", pt_store_hot_txn_sql(), 1, &stored_index);
    int generic_only = s_hot_bad_nodes(
        conn, "generic", "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)",
        verbose, NULL);
    CU_ASSERT_EQUAL(bad, 0);
    /* The lookups of a message's "stored" event (pt_msgs_find, pt_leaves_find) use
       019's partial index, the only index of case_events on message ids. */
    CU_ASSERT_EQUAL(stored_index, 2);
    if (stored_index != 2)
        fprintf(stderr, "test_hot_plans: case_events_stored in %d plan nodes\n", stored_index);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = "
                                 "'case_events' AND indexdef LIKE '%message_id%'"),
                    1);
    CU_ASSERT(generic_only > 0);
    if (verbose || bad || !(generic_only > 0))
        fprintf(stderr, "test_hot_plans: %d with the hot settings, %d with generic plans alone\n",
                bad, generic_only);

    /* The due statement's generic plan, made now (nothing waits)... */
    CU_ASSERT_STRING_EQUAL(
        s_exec_on(conn, "ALTER TABLE deliveries SET (autovacuum_enabled = false)"), "");
    CU_ASSERT_STRING_EQUAL(s_exec_on(conn, pt_store_session_sql()), "");
    s_prepare_due(conn, "hot_due");
    json_t *plan = s_explain_due(conn, "hot_due", "HOT-R", pt_store_hot_txn_sql());
    if (plan) {
        const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(top, "Actual Rows")), 0);
        json_decref(plan);
    }
    /* ...then a surge: the same plan takes a batch from the front of the queue,
       node for node the plan made for these parameters (custom, the session's
       setting) takes. */
    CU_ASSERT_STRING_EQUAL(s_seed_deliveries(conn, "HOT", S_HOT_SURGE, "pending", 0), "");
    s_prepare_due(conn, "custom_due");
    json_t *custom = s_explain_due(conn, "custom_due", "HOT-R", NULL);
    plan = s_explain_due(conn, "hot_due", "HOT-R", pt_store_hot_txn_sql());
    if (plan && custom) {
        const json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(top, "Actual Rows")), 256);
        char shape[2048] = "", custom_shape[2048] = "";
        s_plan_shape(plan, shape, sizeof shape);
        s_plan_shape(custom, custom_shape, sizeof custom_shape);
        CU_ASSERT_STRING_EQUAL(shape, custom_shape);
        CU_ASSERT_EQUAL(s_plan_count(plan, "Index Name", "deliveries_pending"), 1);
        if (verbose || strcmp(shape, custom_shape) != 0)
            fprintf(stderr, "test_hot_plans: due after the surge, generic: %s\ncustom: %s\n", shape,
                    custom_shape);
    }
    json_decref(plan);
    json_decref(custom);
    s_assert_generic(conn, "hot_due", 2);
    PQfinish(conn);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DROP DATABASE " S_HOT_DB), "");
}

/* The delivery window (pt_store_set_delivery_window): new messages are offered
   only while fewer than the window are in flight (sent, unacknowledged); an ack
   makes room, a retry falling due does not (the recipient still holds it); retries
   are offered whatever the count; 0 lifts the limit. */
static void test_delivery_window(void)
{
    CU_ASSERT_STRING_EQUAL_FATAL(s_seed_deliveries(s_raw, "WIN", 10, "pending", 0), "");
    int64_t now = s_now();
    pt_store_set_delivery_window(s_store, 4);
    s_due_t first = s_due("WIN-R", now, 16);
    CU_ASSERT_EQUAL_FATAL(first.n, 4);
    pt_store_sent_t sent[4];
    memset(sent, 0, sizeof sent);
    for (int i = 0; i < 4; i++) {
        sent[i].delivery_id = first.ids[i];
        sent[i].retry_at_ms = now + 60000;
    }
    CU_ASSERT_EQUAL(pt_store_mark_sent_batch(s_store, sent, 4, now), PT_STORE_OK);
    /* Four in flight: nothing new. */
    CU_ASSERT_EQUAL(s_due("WIN-R", now, 16).n, 0);
    /* The first is acknowledged: room for one, the fifth. */
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE deliveries SET state = 'acked' WHERE delivery_id = %lld",
             (long long)first.ids[0]);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    s_due_t fifth = s_due("WIN-R", now, 16);
    CU_ASSERT_EQUAL_FATAL(fifth.n, 1);
    CU_ASSERT(fifth.ids[0] > first.ids[3]);
    CU_ASSERT_EQUAL(fifth.attempts[0], 0);
    pt_store_sent_t one = {.delivery_id = fifth.ids[0], .retry_at_ms = now + 60000};
    CU_ASSERT_EQUAL(pt_store_mark_sent_batch(s_store, &one, 1, now), PT_STORE_OK);
    /* The second's retry falls due: it is offered again, and nothing new (four are
       still in flight: the second to the fifth). */
    snprintf(sql, sizeof sql,
             "UPDATE deliveries SET next_attempt_at = now() - interval '1 second' "
             "WHERE delivery_id = %lld",
             (long long)first.ids[1]);
    CU_ASSERT_STRING_EQUAL(s_raw_exec(sql), "");
    /* Without retries (a recipient still acknowledging, deliver.c): nothing. */
    s_due_t none;
    memset(&none, 0, sizeof none);
    CU_ASSERT_EQUAL(pt_store_due_deliveries_ex(s_store, "WIN-R", now, 16, 0, s_collect_due, &none),
                    PT_STORE_OK);
    CU_ASSERT_EQUAL(none.n, 0);
    s_due_t mixed = s_due("WIN-R", now, 16);
    CU_ASSERT_EQUAL_FATAL(mixed.n, 1);
    CU_ASSERT_EQUAL(mixed.ids[0], first.ids[1]);
    CU_ASSERT_EQUAL(mixed.attempts[0], 1);
    /* No window: the retry and the five never offered. */
    pt_store_set_delivery_window(s_store, 0);
    CU_ASSERT_EQUAL(s_due("WIN-R", now, 16).n, 6);
    CU_ASSERT_STRING_EQUAL(
        s_raw_exec("UPDATE deliveries SET state = 'acked' WHERE recipient = 'WIN-R'"), "");
}

/* --- several brokers (issue 9, 010_multi_broker.sql) ---------------------------------- */

typedef struct {
    int n;
    char channel[8][32];
    char payload[8][40];
    int pid[8];
} s_notes_t;

static void s_collect_note(const char *channel, const char *payload, int pid, void *arg)
{
    s_notes_t *c = arg;
    if (c->n >= 8)
        return;
    snprintf(c->channel[c->n], sizeof c->channel[c->n], "%s", channel);
    snprintf(c->payload[c->n], sizeof c->payload[c->n], "%s", payload);
    c->pid[c->n++] = pid;
}

/* Polls session until a notification on channel arrived (up to 5 s). */
static s_notes_t s_wait_note(pt_store_session_t *session, const char *channel)
{
    s_notes_t notes;
    memset(&notes, 0, sizeof notes);
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(pt_store_session_poll(session, s_now(), s_collect_note, &notes, NULL),
                        PT_STORE_OK);
        for (int k = 0; k < notes.n; k++)
            if (strcmp(notes.channel[k], channel) == 0)
                return notes;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return notes;
}

static s_due_t s_due_of(pt_store_t *store, const char *recipient, int64_t now, size_t max)
{
    s_due_t c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(pt_store_due_deliveries(store, recipient, now, max, s_collect_due, &c),
                    PT_STORE_OK);
    return c;
}

/* Two broker instances over one database: a claim keeps the other out until it
   expires; renewing extends it; releasing hands it over and notifies; order per
   correlation id holds across instances; one signer lock. */
static void test_claims(void)
{
    char err[256] = "", other_conninfo[1100];
    /* Another application name: test_unavailable_then_recovers counts ours. */
    snprintf(other_conninfo, sizeof other_conninfo, "%s application_name=%s_b", s_conninfo,
             APP_NAME);
    pt_store_t *b = pt_store_new(other_conninfo, err, sizeof err);
    pt_store_session_t *listen = pt_store_session_new(other_conninfo, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(listen);
    CU_ASSERT(pt_store_session_socket(listen) >= 0);
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CU_ASSERT_EQUAL(pt_store_set_instance(b, "", 1000), -1);
    CU_ASSERT_EQUAL(pt_store_set_instance(b, long_id, 1000), -1);
    CU_ASSERT_EQUAL(pt_store_set_instance(b, "inst-b", 0), -1);
    CU_ASSERT_EQUAL(pt_store_set_instance(s_store, "inst-a", 10000), 0);
    CU_ASSERT_EQUAL(pt_store_set_instance(b, "inst-b", 10000), 0);
    CU_ASSERT_STRING_EQUAL(pt_store_instance(b), "inst-b");

    /* m0, m1 on correlation 90; m2 on 91; all to XI-ISS. Storing notifies. */
    static const char *to_iss[] = {"XI-ISS"};
    s_msg_data_t d[3];
    pt_submission_t subs[3] = {s_sub(&d[0], 90, 90, "ct-CL", 0), s_sub(&d[1], 91, 90, "ct-CL", 0),
                               s_sub(&d[2], 92, 91, "ct-CL2", 0)};
    for (int i = 0; i < 3; i++)
        subs[i].recipients = to_iss;
    pt_store_receipt_t r[3];
    CU_ASSERT_EQUAL_FATAL(pt_store_submit_batch(s_store, subs, 3, r), PT_STORE_OK);
    s_notes_t notes = s_wait_note(listen, PT_STORE_CHANNEL_DELIVERY);
    CU_ASSERT_EQUAL_FATAL(notes.n, 1);
    CU_ASSERT_STRING_EQUAL(notes.payload[0], "XI-ISS");
    CU_ASSERT_EQUAL(notes.pid[0], pt_store_backend_pid(s_store));

    int64_t now = s_now();
    /* a takes the head of 90; b gets 91's only: m0 is a's, m1 waits behind it. */
    s_due_t a1 = s_due_of(s_store, "XI-ISS", now, 1);
    CU_ASSERT_EQUAL_FATAL(a1.n, 1);
    CU_ASSERT_EQUAL(memcmp(a1.message_ids[0], d[0].id, 16), 0);
    s_due_t b1 = s_due_of(b, "XI-ISS", now, 10);
    CU_ASSERT_EQUAL_FATAL(b1.n, 1);
    CU_ASSERT_EQUAL(memcmp(b1.message_ids[0], d[2].id, 16), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM deliveries WHERE recipient = 'XI-ISS' "
                                 "AND claimed_by = 'inst-a'"),
                    1);
    /* a sees its own claim again (not sent yet), not b's. */
    s_due_t a2 = s_due_of(s_store, "XI-ISS", now, 10);
    CU_ASSERT_EQUAL_FATAL(a2.n, 1);
    CU_ASSERT_EQUAL(a2.ids[0], a1.ids[0]);

    /* a sends m0 (retry in 1 s): its claim holds past the retry time. */
    CU_ASSERT_EQUAL(pt_store_mark_sent(s_store, a1.ids[0], now, now + 1000), PT_STORE_OK);
    CU_ASSERT_EQUAL(pt_store_mark_sent(b, b1.ids[0], now, now + 1000), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_due_of(b, "XI-ISS", now + 2000, 10).n, 1); /* its own m2 only */
    /* a renews at +9 s: b still cannot take m0 at +12 s. */
    const char *iss[] = {"XI-ISS"};
    CU_ASSERT_EQUAL(pt_store_claims_renew(s_store, iss, 1, now + 9000), PT_STORE_OK);
    s_due_t b2 = s_due_of(b, "XI-ISS", now + 12000, 10);
    CU_ASSERT_EQUAL_FATAL(b2.n, 1);
    CU_ASSERT_EQUAL(b2.ids[0], b1.ids[0]);
    /* a stops renewing (dies): past its lease b takes m0 over, with its attempt count. */
    s_due_t b3 = s_due_of(b, "XI-ISS", now + 19001, 10);
    CU_ASSERT_EQUAL_FATAL(b3.n, 2);
    CU_ASSERT_EQUAL(b3.ids[0], a1.ids[0]);
    CU_ASSERT_EQUAL(b3.attempts[0], 1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM deliveries WHERE recipient = 'XI-ISS' "
                                 "AND claimed_by = 'inst-b'"),
                    2);
    CU_ASSERT_EQUAL(s_due_of(s_store, "XI-ISS", now + 19001, 10).n, 0);

    /* b's connection goes: it releases, a can take both at once, and the
       release was notified by b's connection. */
    CU_ASSERT_EQUAL(pt_store_claims_release(b, "XI-ISS", now + 19002), PT_STORE_OK);
    notes = s_wait_note(listen, PT_STORE_CHANNEL_DELIVERY);
    CU_ASSERT_EQUAL_FATAL(notes.n, 1);
    CU_ASSERT_STRING_EQUAL(notes.payload[0], "XI-ISS");
    CU_ASSERT_EQUAL(notes.pid[0], pt_store_backend_pid(b));
    CU_ASSERT_EQUAL(s_due_of(s_store, "XI-ISS", now + 19002, 10).n, 2);
    /* Releasing what one does not hold notifies nobody (checked below: the next
       notification to arrive is the directory's alone). */
    CU_ASSERT_EQUAL(pt_store_claims_release(b, "XI-ISS", now + 19003), PT_STORE_OK);

    /* Acknowledging m0 frees m1 (and notifies nobody); a broker's explicit
       notification arrives alone. */
    CU_ASSERT_EQUAL(pt_store_ack(b, "XI-ISS", d[0].id, now + 19004), PT_STORE_OK);
    s_due_t b4 = s_due_of(b, "XI-ISS", now + 40000, 10);
    CU_ASSERT_EQUAL_FATAL(b4.n, 2);
    CU_ASSERT_EQUAL(memcmp(b4.message_ids[0], d[1].id, 16), 0);
    CU_ASSERT_EQUAL(pt_store_notify(b, PT_STORE_CHANNEL_DIRECTORY, "admin"), PT_STORE_OK);
    notes = s_wait_note(listen, PT_STORE_CHANNEL_DIRECTORY);
    CU_ASSERT_EQUAL(notes.n, 1);
    CU_ASSERT_STRING_EQUAL(notes.payload[0], "admin");
    CU_ASSERT_EQUAL(notes.pid[0], pt_store_backend_pid(b));

    /* The checkpoint signer: one session at a time; free again when it ends. */
    pt_store_session_t *other = pt_store_session_new(other_conninfo, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT_EQUAL(pt_store_session_signer(listen), 1);
    CU_ASSERT_EQUAL(pt_store_session_signer(listen), 1);
    CU_ASSERT_EQUAL(pt_store_session_signer(other), 0);
    pt_store_session_destroy(&listen);
    CU_ASSERT_PTR_NULL(listen);
    int held = 0;
    for (int i = 0; i < 100 && held != 1; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        held = pt_store_session_signer(other);
    }
    CU_ASSERT_EQUAL(held, 1);
    /* A checkpoint records who signed it. */
    pt_store_checkpoint_t cp;
    memset(&cp, 0, sizeof cp);
    cp.tree_size = 999999;
    cp.at_ms = now;
    CU_ASSERT_EQUAL(pt_store_checkpoint_put(b, &cp), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM checkpoints WHERE tree_size = 999999 "
                                 "AND signed_by = 'inst-b'"),
                    1);
    CU_ASSERT_STRING_EQUAL(s_raw_exec("ALTER TABLE checkpoints DISABLE TRIGGER USER; "
                                      "DELETE FROM checkpoints WHERE tree_size = 999999; "
                                      "ALTER TABLE checkpoints ENABLE TRIGGER USER"),
                           "");
    pt_store_session_destroy(&other);
    pt_store_destroy(&b);
}

static void test_append_only(void)
{
    /* Even the superuser cannot change history (trigger). */
    CU_ASSERT_STRING_EQUAL(s_raw_exec("UPDATE messages SET purpose = 'x'"), "P0001");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DELETE FROM messages"), "P0001");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DELETE FROM case_events"), "P0001");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("UPDATE case_events SET kind = 'x'"), "P0001");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("TRUNCATE case_events"), "P0001");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("TRUNCATE messages CASCADE"), "P0001");
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE kind = 'x'"), 0);

    /* The broker's role: refused by privileges before any trigger runs. */
    CU_ASSERT_STRING_EQUAL_FATAL(s_raw_exec("SET ROLE puente_broker"), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("UPDATE messages SET purpose = 'x'"), "42501");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DELETE FROM case_events"), "42501");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DELETE FROM deliveries"), "42501");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("DROP TABLE messages"), "42501");
    /* What it needs still works. */
    CU_ASSERT_STRING_EQUAL(s_raw_exec("SELECT count(*) FROM messages"), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("UPDATE deliveries SET attempts = attempts WHERE false"), "");
    CU_ASSERT_STRING_EQUAL(s_raw_exec("RESET ROLE"), "");
}

/* --- the broker's database role (issue 2) ---------------------------------------------- */


/* The production setup (README "Installing"): the broker logs in as a non-superuser
   LOGIN role that is a member of the NOLOGIN role puente_broker, and takes it. */
static void test_non_superuser_login_role(void)
{
    CU_ASSERT_STRING_EQUAL_FATAL(
        s_raw_exec("DO $$ BEGIN "
                   "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pt_unit_broker_login') "
                   "THEN CREATE ROLE pt_unit_broker_login LOGIN NOSUPERUSER; END IF; "
                   "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pt_unit_outsider') "
                   "THEN CREATE ROLE pt_unit_outsider LOGIN NOSUPERUSER; END IF; END $$"),
        "");
    CU_ASSERT_STRING_EQUAL_FATAL(s_raw_exec("GRANT puente_broker TO pt_unit_broker_login"), "");
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM pg_roles WHERE rolname = "
                                 "'pt_unit_broker_login' AND NOT rolsuper AND rolcanlogin"),
                    1);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM pg_roles WHERE rolname = 'puente_broker' "
                                 "AND NOT rolcanlogin"),
                    1);
    char conninfo[1200], err[512] = "";
    /* A later keyword wins in a libpq connection string. */
    snprintf(conninfo, sizeof conninfo,
             "%s user=pt_unit_broker_login application_name=pt_store_role_test", s_conninfo);

    /* The store as that login, with the role configured: it takes it and works. The
       migrations are all applied (by the tables' owner): starting needs no DDL. */
    pt_store_t *store = pt_store_new(conninfo, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(store);
    err[0] = '\0';
    CU_ASSERT_EQUAL(pt_store_migrate(store, s_sql_dir, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(pt_store_role_check(store, "puente_broker", err, sizeof err), 0);
    CU_ASSERT_EQUAL(pt_store_role_in_effect(store), 1);
    s_msg_data_t d;
    pt_submission_t sub = s_sub(&d, 2300, 230, "ct-ROLE", 0);
    pt_store_receipt_t r;
    CU_ASSERT_EQUAL(pt_store_submit_batch(store, &sub, 1, &r), PT_STORE_OK);
    CU_ASSERT_EQUAL(r.result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                 "'pt_store_role_test' AND usename = 'pt_unit_broker_login'"),
                    1);
    pt_store_destroy(&store);

    /* What that connection may not do: UPDATE / DELETE history, by privileges (42501)
       or, for the one column retention may rewrite, by the guard trigger (P0001). */
    PGconn *login = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(login), CONNECTION_OK);
    CU_ASSERT_STRING_EQUAL(s_exec_on(login, "SET client_min_messages = warning"), "");
    for (int as_role = 0; as_role < 2; as_role++) {
        if (as_role)
            CU_ASSERT_STRING_EQUAL_FATAL(s_exec_on(login, "SET ROLE puente_broker"), "");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "UPDATE messages SET purpose = 'x'"), "42501");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "DELETE FROM messages"), "42501");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "UPDATE case_events SET kind = 'x'"), "42501");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "DELETE FROM case_events"), "42501");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "TRUNCATE case_events"), "42501");
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "UPDATE messages SET envelope = envelope "
                                                "WHERE case_token = 'ct-ROLE'"),
                               "P0001");
        /* It cannot make itself a superuser or leave for one. */
        CU_ASSERT_STRING_EQUAL(s_exec_on(login, "SET ROLE postgres"), "42501");
    }
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM case_events WHERE kind = 'x'"), 0);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages WHERE case_token = 'ct-ROLE'"), 1);
    PQfinish(login);

    /* A login that is not a member: a configured role refuses to start, the default
       runs on with a warning and without the role. */
    snprintf(conninfo, sizeof conninfo,
             "%s user=pt_unit_outsider application_name=pt_store_role_test", s_conninfo);
    store = pt_store_new(conninfo, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(store);
    err[0] = '\0';
    CU_ASSERT_EQUAL(pt_store_role_check(store, "puente_broker", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "cannot take the configured database role puente_broker: login "
                                "role pt_unit_outsider is not a member of puente_broker (GRANT "
                                "puente_broker TO pt_unit_outsider)");
    CU_ASSERT_EQUAL(pt_store_role_in_effect(store), 0);
    err[0] = '\0';
    CU_ASSERT_EQUAL(pt_store_role_check(store, "puente_nope", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "cannot take the configured database role puente_nope: role "
                                "puente_nope does not exist (migration 001 creates "
                                "puente_broker)");
    CU_ASSERT_EQUAL(pt_store_role_check(store, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(pt_store_role_in_effect(store), 0);
    pt_store_destroy(&store);

    /* The superuser of the tests takes the role too (and is warned about). */
    CU_ASSERT_EQUAL(pt_store_role_check(s_store, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(pt_store_role_in_effect(s_store), 1);
}

/* --- transient failures ------------------------------------------------------------------ */

static int s_kill_store_backend(void)
{
    return (int)s_raw_scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE application_name = '" APP_NAME "'");
}

static void test_unavailable_then_recovers(void)
{
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);
    CU_ASSERT_EQUAL_FATAL(s_kill_store_backend(), 1);
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(pt_store_ping(s_store), PT_STORE_OK);

    /* A batch on a dead connection: UNAVAILABLE, nothing stored; the retry runs
       on a new connection and stores it once. */
    s_msg_data_t d;
    pt_submission_t s = s_sub(&d, 70, 70, "ct-R", 0);
    pt_store_receipt_t r;
    CU_ASSERT_EQUAL_FATAL(s_kill_store_backend(), 1);
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, &s, 1, &r), PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM messages WHERE case_token = 'ct-R'"), 0);
    CU_ASSERT_EQUAL(pt_store_submit_batch(s_store, &s, 1, &r), PT_STORE_OK);
    CU_ASSERT_EQUAL(r.result, PT_STORE_OK);
    CU_ASSERT_EQUAL(s_raw_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = '"
                                 APP_NAME "' AND usename = 'postgres'"),
                    1);
    s_trail_t t = s_trail("ct-R");
    CU_ASSERT_EQUAL(t.n, 2);
    CU_ASSERT(t.chain_ok);
}

int main(void)
{
    if (pt_test_db_env("test_store", &s_conninfo, &s_sql_dir) != 0)
        return 1;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("store", s_suite_init, s_suite_clean);
    if (!suite || !CU_add_test(suite, "bad conninfo", test_bad_conninfo) ||
        !CU_add_test(suite, "migrate (idempotent)", test_migrate) ||
        !CU_add_test(suite, "organisations", test_orgs) ||
        !CU_add_test(suite, "agreements", test_agreements) ||
        !CU_add_test(suite, "submit, duplicate, conflict", test_submit_and_duplicates) ||
        !CU_add_test(suite, "submit 300 in one batch", test_submit_large_batch) ||
        !CU_add_test(suite, "failed batch rolls back", test_submit_error_rolls_back) ||
        !CU_add_test(suite, "deliveries and acks", test_deliveries) ||
        !CU_add_test(suite, "trail", test_trail) ||
        !CU_add_test(suite, "one case's appends wait for its lock", test_chain_head_lock) ||
        !CU_add_test(suite, "batched lifecycles, sends and acks", test_batched_paths) ||
        !CU_add_test(suite, "first owners and the audit append", test_owners_and_audit_append) ||
        !CU_add_test(suite, "due deliveries use the queue indexes", test_due_plan) ||
        !CU_add_test(suite, "due pass after churn no VACUUM cleaned", test_due_after_churn) ||
        !CU_add_test(suite, "due pass after a surge the statistics missed", test_due_after_surge) ||
        !CU_add_test(suite, "hot transactions plan index probes", test_hot_plans) ||
        !CU_add_test(suite, "delivery window", test_delivery_window) ||
        !CU_add_test(suite, "claims of two broker instances", test_claims) ||
        !CU_add_test(suite, "append-only", test_append_only) ||
        !CU_add_test(suite, "a non-superuser login role", test_non_superuser_login_role) ||
        !CU_add_test(suite, "unavailable, then recovers", test_unavailable_then_recovers)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

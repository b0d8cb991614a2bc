/*  itest_audit — the auditor's trail (issue 4) against a real broker and a real
    PostgreSQL: receipts carry leaf indexes, checkpoints and proofs verify, an
    auditor sees only its scope (and its refusals are logged), queries answer,
    retention keeps everything verifiable, `puente audit verify --db` passes on
    an untouched database and fails, naming the row, on each kind of tampering
    (done as superuser on a copy of the database), and an exported bundle
    verifies offline until one byte changes. Then the checkpoint chain: the
    events cadence ([broker] checkpoint_events), an export right after an event
    (the broker signs a covering checkpoint on request), a bundle with no anchor
    or re-signed with another key, and tampering with checkpoints: a deleted
    middle one, a truncated tail (caught with --trusted-checkpoint only),
    reordered leaves, one re-signed with another key, an inserted one, a forged
    one named by its row. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "harness.h"
#include "pt_audit.h"
#include "pt_audit_query.h"
#include "pt_keys.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static char s_out[262144], s_err[16384];
static int64_t s_leaf_gt = -1;
static uint8_t s_event_hash_gt[32];

static int s_suite_init(void)
{
    /* Checkpoints every second so that the tests do not wait 10 s. */
    setenv("PUENTE_CHECKPOINT_SECONDS", "1", 1);
    s_h = pt_harness_new("audit");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* Runs the CLI with args; output in s_out / s_err. Returns the exit status. */
static int s_run(const char *args)
{
    return pt_harness_cli(s_h, s_out, sizeof s_out, s_err, sizeof s_err, "%s", args);
}

static pt_client_result_t s_send(pt_client_t *client, const char *to, const char *type,
                                 const char *case_token, pt_receipt_info_t *receipt)
{
    return pt_harness_send(client, type, to, case_token, NULL, 0, receipt, NULL);
}

/* The latest checkpoint's size through the CLI, or -1. */
static long long s_checkpoint_size(void)
{
    if (s_run("audit checkpoint --json") != 0)
        return -1;
    json_error_t jerr;
    json_t *doc = json_loads(s_out, 0, &jerr);
    long long size = -1;
    if (doc && json_is_true(json_object_get(doc, "signature_valid")))
        size = (long long)json_integer_value(json_object_get(doc, "tree_size"));
    json_decref(doc);
    return size;
}

static long long s_wait_checkpoint_above(long long size)
{
    for (int i = 0; i < 50; i++) {
        long long now = s_checkpoint_size();
        if (now > size)
            return now;
        usleep(200 * 1000);
    }
    return -1;
}

/* --- traffic, receipts, checkpoints, proofs ---------------------------------------- */

static void test_receipts_carry_leaf_indexes(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    pt_receipt_info_t r1, r2, r3;
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-AUD-GT", &r1), PT_CLIENT_OK);
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "US-ORR", "referral.request", "CASE-AUD-MXUS", &r2),
                          PT_CLIENT_OK);
    /* submitted, stored, state:submitted: the stored event is the 2nd of each. */
    CU_ASSERT(r1.leaf_index >= 1);
    CU_ASSERT(r2.leaf_index > r1.leaf_index);
    s_leaf_gt = r1.leaf_index;
    memcpy(s_event_hash_gt, r1.event_hash, 32);
    /* A duplicate gets the same leaf index. */
    pt_message_t *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 5000, &msg), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
    pt_message_destroy(&msg);
    CU_ASSERT_EQUAL(s_send(mx, "GT-PGN", "referral.request", "CASE-AUD-GT2", &r3), PT_CLIENT_OK);
    CU_ASSERT(r3.leaf_index > r2.leaf_index);
    /* The leaf of the stored event is the one the database holds for it. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT a.leaf_index FROM audit_log a JOIN case_events e ON e.event_id = a.event_id "
             "WHERE e.case_token = 'CASE-AUD-GT' AND e.kind = 'stored'");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), r1.leaf_index);
    /* Every case event is in the log, once (one statement, one snapshot: the broker
       may commit the acknowledgement's event between two queries). */
    CU_ASSERT(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events") > 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT (SELECT count(*) FROM case_events) - "
                                              "(SELECT count(*) FROM audit_log)"),
                    0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT (SELECT size FROM audit_head) - "
                                              "(SELECT count(*) FROM audit_log)"),
                    0);
    pt_client_destroy(&mx);
    pt_client_destroy(&gt);
}

static void test_checkpoints_and_proofs(void)
{
    long long first = s_wait_checkpoint_above(s_leaf_gt);
    CU_ASSERT_FATAL(first > s_leaf_gt);
    char args[256];
    snprintf(args, sizeof args, "audit proof --leaf %lld --json", (long long)s_leaf_gt);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"inclusion_valid\": true"));
    /* The proven leaf is the receipt's stored event. */
    char event_hex[65];
    pt_hex(s_event_hash_gt, 32, event_hex);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, event_hex));
    /* More traffic, a later checkpoint, and a consistency proof between the two. */
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_receipt_info_t r;
    CU_ASSERT_EQUAL(s_send(mx, "HN-DINAF", "referral.request", "CASE-AUD-HN", &r), PT_CLIENT_OK);
    pt_client_destroy(&mx);
    long long second = s_wait_checkpoint_above(first);
    CU_ASSERT_FATAL(second > first);
    snprintf(args, sizeof args, "audit proof --leaf %lld --size %lld --old-size %lld",
             (long long)s_leaf_gt, second, first);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "inclusion proven"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "consistency proven"));
    /* A leaf past the checkpoint has no proof in it. */
    snprintf(args, sizeof args, "audit proof --leaf %lld --size %lld", second + 5, second);
    CU_ASSERT_EQUAL(s_run(args), 2);
}

/* --- auditors and their scope -------------------------------------------------------- */

static void test_auditor_scope(void)
{
    char args[700];
    snprintf(args, sizeof args, "keygen --org GT-OMBUDS --keys '%s/auditors'", pt_harness_keys(s_h));
    CU_ASSERT_EQUAL_FATAL(s_run(args), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("auditor add GT-OMBUDS --scope GT"), 0);
    /* In scope: a case GT-PGN took part in. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as auditor:GT-OMBUDS --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"kind\": \"stored\""));
    /* Out of scope: MX <-> US. Refused, and the refusal is in the log. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-MXUS --as auditor:GT-OMBUDS"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NOT_PERMITTED"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE "
                                              "kind = 'audit_query_refused' AND actor = "
                                              "'auditor:GT-OMBUDS' AND counterparty = "
                                              "'CASE-AUD-MXUS'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE "
                                              "kind = 'audit_query' AND actor = "
                                              "'auditor:GT-OMBUDS'"),
                    1);
    /* The logged queries are in the Merkle log too. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events e LEFT JOIN "
                                              "audit_log a ON a.event_id = e.event_id WHERE "
                                              "a.leaf_index IS NULL"),
                    0);
    /* Another organisation's activity is out of scope; GT-PGN's is not. */
    CU_ASSERT_EQUAL(s_run("audit activity --org US-ORR --as auditor:GT-OMBUDS"), 2);
    CU_ASSERT_EQUAL(s_run("audit activity --org GT-PGN --as auditor:GT-OMBUDS --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-AUD-GT"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-AUD-MXUS"));
    /* Organisations cannot query at all. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as MX-DIF"), 2);
}

static void test_queries(void)
{
    /* Referrals not moved since 0 s: every open one; the GT auditor sees only GT's. */
    CU_ASSERT_EQUAL(s_run("audit items --type referral --as auditor:GT-OMBUDS --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-AUD-GT2"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-AUD-MXUS"));
    /* Pending for more than 30 days: none yet. */
    CU_ASSERT_EQUAL(s_run("audit items --type referral --older-than 30d --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"rows\": []"));
    CU_ASSERT_EQUAL(s_run("audit corridors --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"from\": \"MX\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"to\": \"GT\""));
    CU_ASSERT_EQUAL(s_run("audit corridors"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "median_accept_ms"));
}

/* --- retention ------------------------------------------------------------------------- */

static void test_retention_keeps_trail_verifiable(void)
{
    /* The MX-DIF / HN-DINAF agreement again, now with a retention of one day. */
    CU_ASSERT_EQUAL_FATAL(s_run("agreement add --id AGR-MX-DIF-HN-DINAF --between MX-DIF,HN-DINAF "
                                "--purposes service_provision,case_transfer,social_inquiry,"
                                "family_tracing,reintegration --types '*' --valid-from 2020-01-01 "
                                "--retention-days 1"),
                          0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT retention_days FROM agreements WHERE "
                                              "agreement_id = 'AGR-MX-DIF-HN-DINAF'"),
                    1);
    /* Two days from now, the MX-DIF -> HN-DINAF referral's payload is due. */
    char now[40], args[128];
    puente_time_format(pt_now_ms() + 2 * 86400000LL, now, sizeof now);
    snprintf(args, sizeof args, "retention run --now %s", now);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "deleted the payloads of 1 messages"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE "
                                              "payload_deleted_at IS NOT NULL"),
                    1);
    /* The append-only guard allows that one change and nothing else. */
    CU_ASSERT_NOT_EQUAL(pt_harness_sql_exec(s_h, NULL, "UPDATE messages SET sender = 'ZZ-X' "
                                                       "WHERE case_token = 'CASE-AUD-HN'"),
                        0);
    CU_ASSERT_NOT_EQUAL(pt_harness_sql_exec(s_h, NULL, "UPDATE messages SET payload_deleted_at = "
                                                       "NULL WHERE case_token = 'CASE-AUD-HN'"),
                        0);
    CU_ASSERT_NOT_EQUAL(pt_harness_sql_exec(s_h, NULL, "DELETE FROM audit_log"), 0);
}

/* --- verify --db: untouched, then each kind of tampering on a copy -------------------- */

static void test_verify_untouched(void)
{
    /* A clean shutdown signs a checkpoint of everything. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT max(tree_size) FROM checkpoints"),
                    pt_harness_sql_count(s_h, "SELECT count(*) FROM audit_log"));
    char args[1600];
    snprintf(args, sizeof args, "audit verify --db '%s' --json", pt_harness_conninfo(s_h));
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"ok\": true"));
    snprintf(args, sizeof args, "audit verify --db '%s'", pt_harness_conninfo(s_h));
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified:"));
}

typedef struct {
    const char *name;
    const char *sql;
    const char *expect[3];      /* substrings of the report */
} s_tamper_t;

static const s_tamper_t s_tampers[] = {
    {"modified event",
     "ALTER TABLE case_events DISABLE TRIGGER USER; "
     "UPDATE case_events SET actor = 'ZZ-EVIL' WHERE case_token = 'CASE-AUD-GT' AND seq = 2; "
     "ALTER TABLE case_events ENABLE TRIGGER USER;",
     {"FAIL case_events", "case CASE-AUD-GT seq 2", "row modified"}},
    {"deleted event",
     "ALTER TABLE case_events DISABLE TRIGGER USER; "
     "DELETE FROM case_events WHERE case_token = 'CASE-AUD-GT' AND seq = 3; "
     "ALTER TABLE case_events ENABLE TRIGGER USER;",
     {"case CASE-AUD-GT seq 4", "missing", "not in case_events (deleted)"}},
    {"reordered events",
     "ALTER TABLE case_events DISABLE TRIGGER USER; "
     "UPDATE case_events SET seq = 1000 WHERE case_token = 'CASE-AUD-GT' AND seq = 2; "
     "UPDATE case_events SET seq = 2 WHERE case_token = 'CASE-AUD-GT' AND seq = 3; "
     "UPDATE case_events SET seq = 3 WHERE case_token = 'CASE-AUD-GT' AND seq = 1000; "
     "ALTER TABLE case_events ENABLE TRIGGER USER;",
     {"case CASE-AUD-GT seq 2", "prev_hash", "row modified"}},
    {"inserted event",
     "ALTER TABLE case_events DISABLE TRIGGER USER; "
     "INSERT INTO case_events (case_token, seq, kind, at_ms, actor, prev_hash, hash) "
     "SELECT case_token, seq + 1, 'acknowledged', at_ms + 1, 'GT-PGN', hash, sha256(hash) "
     "FROM case_events WHERE case_token = 'CASE-AUD-GT2' ORDER BY seq DESC LIMIT 1; "
     "ALTER TABLE case_events ENABLE TRIGGER USER;",
     {"case CASE-AUD-GT2", "not in the Merkle log", "FAIL case_events"}},
    {"deleted message",
     "ALTER TABLE messages DISABLE TRIGGER USER; "
     "DELETE FROM deliveries WHERE message_id IN (SELECT message_id FROM messages WHERE "
     "case_token = 'CASE-AUD-MXUS'); "
     "DELETE FROM messages WHERE case_token = 'CASE-AUD-MXUS'; "
     "ALTER TABLE messages ENABLE TRIGGER USER;",
     {"case CASE-AUD-MXUS", "messages row deleted", "FAIL case_events"}},
    {"modified message",
     "ALTER TABLE messages DISABLE TRIGGER USER; "
     "UPDATE messages SET header_sha256 = sha256(header_sha256) WHERE case_token = 'CASE-AUD-GT2'; "
     "ALTER TABLE messages ENABLE TRIGGER USER;",
     {"FAIL messages", "case CASE-AUD-GT2", "header_sha256"}},
    {"forged checkpoint",
     "ALTER TABLE checkpoints DISABLE TRIGGER USER; "
     "UPDATE checkpoints SET root = sha256(root) WHERE tree_size = (SELECT max(tree_size) FROM "
     "checkpoints); "
     "ALTER TABLE checkpoints ENABLE TRIGGER USER;",
     {"FAIL checkpoints", "signature does not verify", "root differs"}},
    {"deleted leaf",
     "ALTER TABLE audit_log DISABLE TRIGGER USER; DELETE FROM audit_log WHERE leaf_index = 3; "
     "ALTER TABLE audit_log ENABLE TRIGGER USER;",
     {"FAIL audit_log row 4", "leaf deleted or inserted", "not in the Merkle log"}},
};

static void test_verify_names_tampering(void)
{
    for (size_t i = 0; i < sizeof s_tampers / sizeof s_tampers[0]; i++) {
        const s_tamper_t *t = &s_tampers[i];
        char copy[96], sql[256], conninfo[1400], args[1600];
        snprintf(copy, sizeof copy, "%s_t%zu", pt_harness_dbname(s_h), i);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE %s", copy, pt_harness_dbname(s_h));
        CU_ASSERT_EQUAL_FATAL(pt_harness_sql_exec(s_h, "postgres", sql), 0);
        CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, copy, t->sql), 0);
        pt_harness_conninfo_for(s_h, copy, conninfo, sizeof conninfo);
        snprintf(args, sizeof args, "audit verify --db '%s'", conninfo);
        int rc = s_run(args);
        if (rc != 5)
            fprintf(stderr, "\ntamper '%s': exit %d\n%s%s", t->name, rc, s_out, s_err);
        CU_ASSERT_EQUAL(rc, 5);
        for (int k = 0; k < 3 && t->expect[k]; k++) {
            if (!strstr(s_out, t->expect[k]))
                fprintf(stderr, "\ntamper '%s': '%s' not named in:\n%s", t->name, t->expect[k],
                        s_out);
            CU_ASSERT_PTR_NOT_NULL(strstr(s_out, t->expect[k]));
        }
        snprintf(args, sizeof args, "audit verify --db '%s' --json", conninfo);
        CU_ASSERT_EQUAL(s_run(args), 5);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"ok\": false"));
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", copy);
        CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, "postgres", sql), 0);
    }
}

/* --- bundles ---------------------------------------------------------------------------- */

static void test_bundle_round_trip(void)
{
    char path[600], args[2000];
    snprintf(path, sizeof path, "%s/case.bundle.json", pt_harness_dir(s_h));
    snprintf(args, sizeof args, "audit export --case CASE-AUD-GT --db '%s' --out %s",
             pt_harness_conninfo(s_h), path);
    CU_ASSERT_EQUAL_FATAL(s_run(args), 0);
    snprintf(args, sizeof args, "audit verify --bundle %s", path);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified:"));
    /* A payload-deleted message's bundle verifies too (headers stay). */
    char hn[600];
    snprintf(hn, sizeof hn, "%s/hn.bundle.json", pt_harness_dir(s_h));
    snprintf(args, sizeof args, "audit export --case CASE-AUD-HN --db '%s' --out %s",
             pt_harness_conninfo(s_h), hn);
    CU_ASSERT_EQUAL(s_run(args), 0);
    snprintf(args, sizeof args, "audit verify --bundle %s --json", hn);
    CU_ASSERT_EQUAL(s_run(args), 0);

    /* Flip one byte at many places: each copy fails. */
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    CU_ASSERT_FATAL(len > 100 && len < sizeof text);
    char flipped[620];
    snprintf(flipped, sizeof flipped, "%s.flip", path);
    int tried = 0, failed = 0;
    for (size_t at = 7; at < len; at += len / 23 + 1) {
        text[at] ^= 0x01;
        f = fopen(flipped, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fwrite(text, 1, len, f);
        fclose(f);
        text[at] ^= 0x01;
        snprintf(args, sizeof args, "audit verify --bundle %s", flipped);
        int rc = s_run(args);
        tried++;
        if (rc == 5)
            failed++;
        else
            fprintf(stderr, "\nflip at %zu ('%c') still verifies (exit %d)\n", at, text[at], rc);
    }
    CU_ASSERT(tried >= 20);
    CU_ASSERT_EQUAL(failed, tried);
    /* FHIR R4 AuditEvent export. */
    snprintf(args, sizeof args, "audit export --case CASE-AUD-GT --db '%s' --format fhir",
             pt_harness_conninfo(s_h));
    CU_ASSERT_EQUAL(s_run(args), 0);
    json_error_t jerr;
    json_t *doc = json_loads(s_out, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "resourceType")), "Bundle");
    json_t *first = json_object_get(json_array_get(json_object_get(doc, "entry"), 0), "resource");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "resourceType")), "AuditEvent");
    CU_ASSERT(json_array_size(json_object_get(doc, "entry")) >= 5);
    json_decref(doc);
}


/* --- the checkpoint chain, cadence, export on a running broker (issue 4 follow-up) ----- */

static char s_trusted_path[600];
static long long s_trusted_seq = -1;

/* Reads the JSON of the latest checkpoint (`audit checkpoint --json`) into s_out;
   its seq, or -1. */
static long long s_checkpoint_seq(void)
{
    if (s_run("audit checkpoint --json") != 0)
        return -1;
    json_t *doc = json_loads(s_out, 0, NULL);
    long long seq = doc && json_is_true(json_object_get(doc, "signature_valid"))
                        ? (long long)json_integer_value(json_object_get(doc, "seq"))
                        : -1;
    json_decref(doc);
    return seq;
}

static void test_cadence_and_export_while_running(void)
{
    /* Events only: a checkpoint every 5 leaves, and never by time in this test. */
    setenv("PUENTE_CHECKPOINT_SECONDS", "3600", 1);
    setenv("PUENTE_CHECKPOINT_EVENTS", "5", 1);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    long long before = s_checkpoint_size();
    CU_ASSERT_EQUAL_FATAL(before, pt_harness_sql_count(s_h, "SELECT size FROM audit_head"));
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    pt_receipt_info_t r;
    /* One referral: submitted, stored, state (3 leaves < 5): no checkpoint yet. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-AUD-CAD", &r), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT size FROM audit_head"), before + 3);
    CU_ASSERT_EQUAL(s_checkpoint_size(), before);
    /* A second one: 6 leaves >= 5, a checkpoint of exactly the log. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "referral.request", "CASE-AUD-CAD2", &r), PT_CLIENT_OK);
    long long after = s_wait_checkpoint_above(before);
    CU_ASSERT_EQUAL(after, before + 6);
    /* A new event, exported at once: no checkpoint covers it yet (3 leaves < 5), so
       export asks the broker to sign one, and the bundle verifies. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "HN-DINAF", "referral.request", "CASE-AUD-EXP", &r), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(s_checkpoint_size(), after);
    char path[600], args[2000];
    snprintf(path, sizeof path, "%s/exp.bundle.json", pt_harness_dir(s_h));
    snprintf(args, sizeof args, "audit export --case CASE-AUD-EXP --db '%s' --out %s",
             pt_harness_conninfo(s_h), path);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_EQUAL(s_checkpoint_size(), after + 3);
    snprintf(args, sizeof args, "audit verify --bundle %s", path);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified: 3 events in 3 leaves"));
    /* The summary's root is the checkpoint's, not SHA-256 of nothing. */
    CU_ASSERT_PTR_NULL(strstr(s_out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    /* The auditor keeps the latest checkpoint they saw. */
    s_trusted_seq = s_checkpoint_seq();
    CU_ASSERT_FATAL(s_trusted_seq >= 3);
    snprintf(s_trusted_path, sizeof s_trusted_path, "%s/trusted.json", pt_harness_dir(s_h));
    FILE *f = fopen(s_trusted_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(s_out, f);
    fclose(f);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT max(seq) FROM checkpoints"), s_trusted_seq);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM checkpoints"), s_trusted_seq);
    pt_client_destroy(&mx);
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    snprintf(args, sizeof args, "audit verify --db '%s' --trusted-checkpoint %s",
             pt_harness_conninfo(s_h), s_trusted_path);
    int rc = s_run(args);
    if (rc != 0)
        fprintf(stderr, "\nverify --trusted-checkpoint: exit %d\n%s%s", rc, s_out, s_err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified:"));
}

static void test_bundle_anchor(void)
{
    char path[600], args[2000];
    snprintf(path, sizeof path, "%s/exp.bundle.json", pt_harness_dir(s_h));
    /* No anchor (no --broker-key and no KEYS/broker/sign.pub): refused. */
    snprintf(args, sizeof args, "audit verify --bundle %s --keys %s/nowhere", path,
             pt_harness_dir(s_h));
    CU_ASSERT_EQUAL(s_run(args), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "unanchored: pass --broker-key"));
    /* The same bundle re-signed with an attacker's key, the key inside: fails. */
    pt_sign_key_t *evil = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(evil);
    json_t *doc = json_load_file(path, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *cp = json_object_get(doc, "checkpoint");
    pt_audit_checkpoint_t fields = {
        .seq = (uint64_t)json_integer_value(json_object_get(cp, "seq")),
        .tree_size = (uint64_t)json_integer_value(json_object_get(cp, "tree_size")),
        .at_ms = json_integer_value(json_object_get(cp, "at_ms"))};
    CU_ASSERT_EQUAL(pt_unhex(json_string_value(json_object_get(cp, "root")), fields.root, 32), 0);
    CU_ASSERT_EQUAL(
        pt_unhex(json_string_value(json_object_get(cp, "prev_hash")), fields.prev_hash, 32), 0);
    uint8_t sig[64], pub[32];
    char sig_hex[129], pub_hex[65];
    CU_ASSERT_EQUAL(pt_audit_checkpoint2_sign(evil, &fields, sig), 0);
    pt_sign_key_public(evil, pub);
    pt_hex(sig, 64, sig_hex);
    pt_hex(pub, 32, pub_hex);
    json_object_set_new(cp, "signature", json_string(sig_hex));
    json_object_set_new(doc, "broker_sign_public", json_string(pub_hex));
    char evil_path[620];
    snprintf(evil_path, sizeof evil_path, "%s.evil", path);
    CU_ASSERT_EQUAL_FATAL(json_dump_file(doc, evil_path, 0), 0);
    json_decref(doc);
    pt_sign_key_destroy(&evil);
    snprintf(args, sizeof args, "audit verify --bundle %s", evil_path);
    CU_ASSERT_EQUAL(s_run(args), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "not the broker's key you gave"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "checkpoint signature does not verify"));
    /* With the broker's key given explicitly, the genuine one verifies. */
    snprintf(args, sizeof args, "audit verify --bundle %s --broker-key %s/broker/sign.pub", path,
             pt_harness_keys(s_h));
    CU_ASSERT_EQUAL(s_run(args), 0);
}

/* Recomputes audit_head from the audit_log rows left (as pt_audit_append_events does):
   what a careful forger does after truncating the log. */
#define S_REWRITE_HEAD                                                                            \
    "DO $$ DECLARE f bytea := '\\x'::bytea; c bytea; b bigint; n bigint := 0; l integer; "       \
    "r record; BEGIN FOR r IN SELECT leaf_hash FROM audit_log ORDER BY leaf_index LOOP "          \
    "c := r.leaf_hash; b := n; WHILE (b & 1) = 1 LOOP l := length(f); "                          \
    "c := sha256('\\x01'::bytea || substring(f FROM l - 31 FOR 32) || c); "                      \
    "f := substring(f FROM 1 FOR l - 32); b := b >> 1; END LOOP; f := f || c; n := n + 1; "      \
    "END LOOP; UPDATE audit_head SET size = n, frontier = f WHERE id = 1; END $$;"

/* Runs sql on a copy of the database, then verify with extra arguments; returns the
   exit status with the report in s_out. */
static int s_tamper_copy(const char *name, const char *sql, const char *extra)
{
    char copy[96], stmt[256], conninfo[1400], args[2400];
    static int n;
    snprintf(copy, sizeof copy, "%s_c%d", pt_harness_dbname(s_h), n++);
    snprintf(stmt, sizeof stmt, "CREATE DATABASE %s TEMPLATE %s", copy, pt_harness_dbname(s_h));
    if (pt_harness_sql_exec(s_h, "postgres", stmt) != 0)
        return -1;
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, copy, sql), 0);
    pt_harness_conninfo_for(s_h, copy, conninfo, sizeof conninfo);
    snprintf(args, sizeof args, "audit verify --db '%s' %s", conninfo, extra ? extra : "");
    int rc = s_run(args);
    if (getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\ntamper '%s': exit %d\n%s%s", name, rc, s_out, s_err);
    snprintf(stmt, sizeof stmt, "DROP DATABASE %s WITH (FORCE)", copy);
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, "postgres", stmt), 0);
    return rc;
}

static void s_expect(const char *name, const char *what)
{
    if (!strstr(s_out, what))
        fprintf(stderr, "\ntamper '%s': '%s' not named in:\n%s", name, what, s_out);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, what));
}

static void test_verify_checkpoint_chain_tampering(void)
{
    CU_ASSERT_FATAL(s_trusted_seq >= 3);
    long long last_size = pt_harness_sql_count(s_h, "SELECT max(tree_size) FROM checkpoints");
    long long seq2_size = pt_harness_sql_count(s_h, "SELECT tree_size FROM checkpoints WHERE seq = 2");
    char sql[2048], want[160], extra[800];
    snprintf(extra, sizeof extra, "--trusted-checkpoint %s", s_trusted_path);
    /* Deleted middle checkpoint. */
    CU_ASSERT_EQUAL(s_tamper_copy("deleted middle checkpoint",
                                  "SET session_replication_role = replica; "
                                  "DELETE FROM checkpoints WHERE seq = 2;", NULL),
                    5);
    snprintf(want, sizeof want, "FAIL checkpoints row %lld: seq 3 follows seq 1", (long long)
             pt_harness_sql_count(s_h, "SELECT tree_size FROM checkpoints WHERE seq = 3"));
    s_expect("deleted middle checkpoint", want);
    /* Truncated tail: every checkpoint from the trusted one on deleted, with the
       events and leaves after the previous one, the messages left without events
       and audit_head recomputed. Consistent in itself... */
    snprintf(sql, sizeof sql,
             "SET session_replication_role = replica; "
             "CREATE TEMP TABLE cut AS SELECT tree_size AS k FROM checkpoints WHERE seq = %lld; "
             "DELETE FROM checkpoints WHERE seq >= %lld; "
             "DELETE FROM case_events WHERE event_id IN (SELECT event_id FROM audit_log WHERE "
             "leaf_index >= (SELECT k FROM cut)); "
             "DELETE FROM audit_log WHERE leaf_index >= (SELECT k FROM cut); "
             "DELETE FROM messages m WHERE NOT EXISTS (SELECT 1 FROM case_events e WHERE "
             "e.message_id = m.message_id); " S_REWRITE_HEAD,
             s_trusted_seq - 1, s_trusted_seq);
    CU_ASSERT_EQUAL(s_tamper_copy("truncated tail", sql, NULL), 0);
    /* ...but not with the checkpoint the auditor kept. */
    CU_ASSERT_EQUAL(s_tamper_copy("truncated tail, trusted checkpoint", sql, extra), 5);
    snprintf(want, sizeof want, "FAIL trusted row seq %lld size %lld: the log holds", s_trusted_seq,
             last_size);
    s_expect("truncated tail", want);
    s_expect("truncated tail", "its tail was truncated");
    s_expect("truncated tail", "checkpoints were deleted");
    /* Leaves 1 and 2 swapped in audit_log. */
    CU_ASSERT_EQUAL(s_tamper_copy("reordered leaves",
                                  "SET session_replication_role = replica; "
                                  "UPDATE audit_log a SET event_id = -b.event_id, leaf_hash = "
                                  "b.leaf_hash FROM audit_log b WHERE a.leaf_index IN (1, 2) AND "
                                  "b.leaf_index = 3 - a.leaf_index; "
                                  "UPDATE audit_log SET event_id = -event_id WHERE leaf_index IN "
                                  "(1, 2);", NULL),
                    5);
    s_expect("reordered leaves", "FAIL audit_head row 1: frontier root differs");
    s_expect("reordered leaves", "root differs from the Merkle root");
    /* The latest checkpoint re-signed with another key (signer column too). */
    pt_sign_key_t *evil = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(evil);
    pt_audit_checkpoint_t fields = {.seq = (uint64_t)s_trusted_seq};
    {
        char q[256];
        snprintf(q, sizeof q, "SELECT tree_size FROM checkpoints WHERE seq = %lld", s_trusted_seq);
        fields.tree_size = (uint64_t)pt_harness_sql_count(s_h, q);
        snprintf(q, sizeof q, "SELECT at_ms FROM checkpoints WHERE seq = %lld", s_trusted_seq);
        fields.at_ms = pt_harness_sql_count(s_h, q);
    }
    json_t *trusted = json_load_file(s_trusted_path, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(trusted);
    CU_ASSERT_EQUAL(pt_unhex(json_string_value(json_object_get(trusted, "root")), fields.root, 32), 0);
    CU_ASSERT_EQUAL(pt_unhex(json_string_value(json_object_get(trusted, "prev_hash")),
                             fields.prev_hash, 32), 0);
    json_decref(trusted);
    uint8_t sig[64], pub[32];
    char sig_hex[129], pub_hex[65];
    CU_ASSERT_EQUAL(pt_audit_checkpoint2_sign(evil, &fields, sig), 0);
    pt_sign_key_public(evil, pub);
    pt_hex(sig, 64, sig_hex);
    pt_hex(pub, 32, pub_hex);
    pt_sign_key_destroy(&evil);
    snprintf(sql, sizeof sql,
             "SET session_replication_role = replica; UPDATE checkpoints SET signer = '\\x%s', "
             "signature = '\\x%s' WHERE seq = %lld;", pub_hex, sig_hex, s_trusted_seq);
    CU_ASSERT_EQUAL(s_tamper_copy("re-signed checkpoint", sql, NULL), 5);
    snprintf(want, sizeof want, "FAIL checkpoints row %lld: signer is not the broker's key",
             (long long)fields.tree_size);
    s_expect("re-signed checkpoint", want);
    /* An inserted checkpoint (a copy of seq 2, one leaf smaller, numbered after the last). */
    CU_ASSERT_EQUAL(s_tamper_copy("inserted checkpoint",
                                  "SET session_replication_role = replica; "
                                  "INSERT INTO checkpoints (tree_size, root, at_ms, signer, "
                                  "signature, seq, prev_hash) SELECT tree_size - 1, root, at_ms, "
                                  "signer, signature, (SELECT max(seq) + 1 FROM checkpoints), "
                                  "prev_hash FROM checkpoints WHERE seq = 2;", NULL),
                    5);
    snprintf(want, sizeof want, "FAIL checkpoints row %lld: tree size %lld does not grow",
             seq2_size - 1, seq2_size - 1);
    s_expect("inserted checkpoint", want);
    s_expect("inserted checkpoint", "broken link");
    s_expect("inserted checkpoint", "signature does not verify");
    /* The forged checkpoint names its row. */
    CU_ASSERT_EQUAL(s_tamper_copy("forged checkpoint",
                                  "SET session_replication_role = replica; "
                                  "UPDATE checkpoints SET root = sha256(root) WHERE seq = 1;", NULL),
                    5);
    snprintf(want, sizeof want, "FAIL checkpoints row %lld: signature does not verify",
             (long long)pt_harness_sql_count(s_h, "SELECT tree_size FROM checkpoints WHERE seq = 1"));
    s_expect("forged checkpoint", want);
    /* A trusted checkpoint that is not a checkpoint file: usage error. */
    CU_ASSERT_EQUAL(s_tamper_copy("bad trusted file", "SELECT 1;", "--trusted-checkpoint /dev/null"),
                    1);
}

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

/* --- auditor queries (issue 4, second audit): signatures, logging first, paging,
   exact statistics, organisation scope, table output, FHIR fields ---------------------- */

/* A raw CURVE socket as auditor:ID (keys in KEYS/auditors/ID) sending one AuditQuery
   as given (no SDK signing); returns the broker's reject code, 0 for an AuditReply
   (rows in *n_rows), -1 on no answer. */
static int s_raw_query(const char *auditor_id, const Puente__V1__AuditQuery *q, size_t *n_rows)
{
    char dir[700], why[256];
    snprintf(dir, sizeof dir, "%s/auditors", pt_harness_keys(s_h));
    pt_keyset_t *mine = pt_keyset_load(dir, auditor_id, 1, why, sizeof why);
    pt_keyset_t *broker = pt_keyset_load(pt_harness_keys(s_h), "broker", 0, why, sizeof why);
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int result = -1;
    uint8_t *data = NULL;
    if (!mine || !broker || !sock)
        goto done;
    int linger = 0, rcvtimeo = 10000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, pt_keyset_curve_public_z85(broker), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pt_keyset_curve_public_z85(mine), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(mine), 40);
    if (zmq_connect(sock, pt_harness_endpoint(s_h)) != 0)
        goto done;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_AUDIT;
    frame.audit = (Puente__V1__AuditQuery *)q;
    size_t len = puente__v1__client_frame__get_packed_size(&frame);
    data = malloc(len);
    if (!data)
        goto done;
    puente__v1__client_frame__pack(&frame, data);
    if (zmq_send(sock, data, len, 0) < 0)
        goto done;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) >= 0) {
        Puente__V1__BrokerFrame *reply = puente__v1__broker_frame__unpack(
            NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
            result = reply->reject->code;
        } else if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_AUDIT) {
            result = 0;
            if (n_rows)
                *n_rows = reply->audit->n_rows;
        }
        if (reply)
            puente__v1__broker_frame__free_unpacked(reply, NULL);
    }
    zmq_msg_close(&msg);
done:
    free(data);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    pt_keyset_destroy(&mine);
    pt_keyset_destroy(&broker);
    return result;
}

static long s_refusals(const char *actor, int code)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM case_events WHERE kind = 'audit_query_refused' AND actor = "
             "'%s' AND case_token = '%s' AND length(detail) = 68 AND substr(detail, 65, 4) = "
             "int4send(%d)",
             actor, actor, code);
    return pt_harness_sql_count(s_h, sql);
}

static void test_query_signatures(void)
{
    /* test_verify_untouched stopped the broker. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    const char *me = "auditor:GT-OMBUDS";
    char dir[700], why[256];
    snprintf(dir, sizeof dir, "%s/auditors", pt_harness_keys(s_h));
    pt_keyset_t *keys = pt_keyset_load(dir, "GT-OMBUDS", 1, why, sizeof why);
    pt_keyset_t *other = pt_keyset_load(pt_harness_keys(s_h), "GT-PGN", 1, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    Puente__V1__AuditQuery q = PUENTE__V1__AUDIT_QUERY__INIT;
    q.request_id = 7;
    q.kind = "trail";
    q.case_token = "CASE-AUD-GT";
    uint8_t nonce[16], sig[64];
    size_t rows = 0;
    long bad_before = s_refusals(me, REJ(REJECT_BAD_QUERY_SIGNATURE));
    long stale_before = s_refusals(me, REJ(REJECT_STALE_QUERY));
    long answered_before = pt_harness_sql_count(
        s_h, "SELECT count(*) FROM case_events WHERE kind = 'audit_query' AND actor = "
             "'auditor:GT-OMBUDS'");
    /* Unsigned. */
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, NULL), REJ(REJECT_BAD_QUERY_SIGNATURE));
    /* Signed by another key (GT-PGN's). */
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(pt_keyset_sign(other), &q, pt_now_ms(), nonce, sig), 0);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, NULL), REJ(REJECT_BAD_QUERY_SIGNATURE));
    /* Signed by the auditor, then a field changed. */
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(pt_keyset_sign(keys), &q, pt_now_ms(), nonce, sig), 0);
    q.case_token = "CASE-AUD-GT2";
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, NULL), REJ(REJECT_BAD_QUERY_SIGNATURE));
    q.case_token = "CASE-AUD-GT";
    CU_ASSERT_EQUAL(s_refusals(me, REJ(REJECT_BAD_QUERY_SIGNATURE)), bad_before + 3);
    /* Signed ten minutes ago: stale. */
    CU_ASSERT_EQUAL_FATAL(
        pt_audit_query_sign(pt_keyset_sign(keys), &q, pt_now_ms() - 600000, nonce, sig), 0);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, NULL), REJ(REJECT_STALE_QUERY));
    /* A good signature is answered once; the same query again is a replay. */
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(pt_keyset_sign(keys), &q, pt_now_ms(), nonce, sig), 0);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, &rows), 0);
    CU_ASSERT(rows >= 3);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &q, NULL), REJ(REJECT_STALE_QUERY));
    CU_ASSERT_EQUAL(s_refusals(me, REJ(REJECT_STALE_QUERY)), stale_before + 2);
    /* The answered query's event records the signature's digest. */
    char hex[129], sql[600];
    pt_hex(sig, 64, hex);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM case_events WHERE kind = 'audit_query' AND actor = "
             "'auditor:GT-OMBUDS' AND counterparty = 'CASE-AUD-GT' AND message_type = "
             "'audit.trail' AND substr(detail, 33, 32) = sha256('\\x%s'::bytea) AND "
             "substr(detail, 65, 4) = int4send(0)",
             hex);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), 1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE kind = "
                                              "'audit_query' AND actor = 'auditor:GT-OMBUDS'"),
                    answered_before + 1);
    /* The CLI signs by itself (KEYS/auditors/GT-OMBUDS). */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as auditor:GT-OMBUDS --json"), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE kind = "
                                              "'audit_query' AND actor = 'auditor:GT-OMBUDS'"),
                    answered_before + 2);
    /* Well signed but out of range: a trail cursor that is not a sequence number
       ("-1" would wrap around), an items age before 1970 (INT64_MIN would
       overflow): refused as invalid, not answered. */
    Puente__V1__AuditQuery bad = PUENTE__V1__AUDIT_QUERY__INIT;
    bad.request_id = 8;
    bad.kind = "trail";
    bad.case_token = "CASE-AUD-GT";
    bad.after = "-1";
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(pt_keyset_sign(keys), &bad, pt_now_ms(), nonce, sig), 0);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &bad, NULL), REJ(REJECT_INVALID_FIELD));
    bad.request_id = 9;
    bad.kind = "items";
    bad.case_token = "";
    bad.after = "";
    bad.older_than_ms = INT64_MIN;
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(pt_keyset_sign(keys), &bad, pt_now_ms(), nonce, sig), 0);
    CU_ASSERT_EQUAL(s_raw_query("GT-OMBUDS", &bad, NULL), REJ(REJECT_INVALID_FIELD));
    /* Every refusal is in the Merkle log too. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events e LEFT JOIN "
                                              "audit_log a ON a.event_id = e.event_id WHERE "
                                              "a.leaf_index IS NULL"),
                    0);
    pt_keyset_destroy(&keys);
    pt_keyset_destroy(&other);
}

static void test_query_not_answered_unless_logged(void)
{
    /* Appending audit_query events fails (a trigger installed here): nothing answered
       (REJECT_RETRY_LATER: the CLI exits 3, try later). */
    CU_ASSERT_EQUAL_FATAL(
        pt_harness_sql_exec(s_h, NULL,
                            "CREATE FUNCTION itest_no_query_log() RETURNS trigger LANGUAGE plpgsql "
                            "AS $$ BEGIN IF NEW.kind = 'audit_query' THEN RAISE EXCEPTION "
                            "'itest: no query log'; END IF; RETURN NEW; END $$; "
                            "CREATE TRIGGER itest_no_query_log BEFORE INSERT ON case_events "
                            "FOR EACH ROW EXECUTE FUNCTION itest_no_query_log()"),
        0);
    CU_ASSERT_EQUAL(s_run("audit items --json"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_RETRY_LATER"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-AUD"));
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as auditor:GT-OMBUDS --json"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_RETRY_LATER"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "stored"));
    CU_ASSERT_EQUAL(s_run("audit activity --org GT-PGN --json"), 3);
    CU_ASSERT_EQUAL(s_run("audit corridors --json"), 3);
    CU_ASSERT_PTR_NULL(strstr(s_out, "\"from\""));
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, NULL,
                                        "DROP TRIGGER itest_no_query_log ON case_events; "
                                        "DROP FUNCTION itest_no_query_log()"),
                    0);
    CU_ASSERT_EQUAL(s_run("audit items --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-AUD"));
}

static void test_refused_and_malformed_queries_logged(void)
{
    long before = s_refusals("MX-DIF", REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as MX-DIF"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NOT_PERMITTED"));
    CU_ASSERT_EQUAL(s_refusals("MX-DIF", REJ(REJECT_NOT_PERMITTED)), before + 1);
    /* What a non-auditor asked for is not copied: only the digest. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE actor = "
                                              "'MX-DIF' AND kind = 'audit_query_refused' AND "
                                              "counterparty <> ''"),
                    0);
    /* A malformed query (unknown kind) from the operator. */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    Puente__V1__AuditQuery q = PUENTE__V1__AUDIT_QUERY__INIT;
    q.kind = "everything<script>";
    Puente__V1__AuditReply *reply = NULL;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(pt_client_audit(op, &q, &reply, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, REJ(REJECT_INVALID_FIELD));
    q.kind = "items";
    q.after = "not-a-cursor";
    CU_ASSERT_EQUAL(pt_client_audit(op, &q, &reply, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, REJ(REJECT_INVALID_FIELD));
    /* Cursors of the wrong shape (no SQL error: refused before any query). */
    CU_ASSERT_EQUAL(s_run("audit items --after 5:0000000-00000-0000-0000-000000000000"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_INVALID_FIELD"));
    CU_ASSERT_EQUAL(s_run("audit activity --org GT-PGN --after 1:12abc"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_INVALID_FIELD"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE kind = "
                                              "'audit_query_malformed' AND actor = 'operator' AND "
                                              "counterparty = '' AND substr(detail, 65, 4) = "
                                              "int4send(14) AND message_type IN "
                                              "('audit.unknown', 'audit.items', "
                                              "'audit.activity')"),
                    4);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE message_type "
                                              "LIKE '%script%'"),
                    0);
    pt_client_destroy(&op);
}

/* Sends type from `from` to `to` on a case; corr (16 bytes) in/out as for pt_send_t. */
static int s_send_corr(pt_client_t *client, const char *to, const char *type, const char *token,
                       const uint8_t *corr_in, const char *reason, uint8_t *corr_out)
{
    size_t len = 0;
    uint8_t *body = pt_harness_example_body(type, &len);
    if (!body)
        return -1;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.consent_for_tracing = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *recipients[1] = {to};
    pt_send_t msg = {.message_type = type, .recipients = recipients, .n_recipients = 1,
                     .case_token = token, .consent = &consent, .body = body, .body_len = len,
                     .correlation_id = corr_in, .reason_code = reason};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_send(client, &msg, &receipt, &rej);
    free(body);
    if (rc == PT_CLIENT_OK && corr_out)
        memcpy(corr_out, receipt.correlation_id, 16);
    return rc == PT_CLIENT_OK ? 0 : rc == PT_CLIENT_REJECTED ? rej.code : -1;
}

static void s_take_all(pt_client_t *receiver, int n)
{
    for (int i = 0; i < n; i++) {
        pt_message_t *msg = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(receiver, 5000, &msg), PT_CLIENT_OK);
        CU_ASSERT_EQUAL(pt_client_ack(receiver, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
    }
}

static json_t *s_json_rows(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(s_out, 0, &jerr);
    return doc;
}

/* The corridor row from -> to of family in a corridors --json answer, or NULL. */
static json_t *s_corridor(json_t *doc, const char *from, const char *to, const char *family)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "rows"), i, row) {
        if (strcmp(json_string_value(json_object_get(row, "from")), from) == 0 &&
            strcmp(json_string_value(json_object_get(row, "to")), to) == 0 &&
            strcmp(json_string_value(json_object_get(row, "family")), family) == 0)
            return row;
    }
    return NULL;
}

static int s_near(double a, double b)
{
    return a - b < 1e-9 && b - a < 1e-9;
}

static void test_corridors_exact(void)
{
    /* SV-CONNA -> GT-PGN referrals: 3 accepted after 60 s, 120 s and 600 s (the
       lifecycles' created times are moved back by that much), 2 rejected for
       no_capacity, 1 for out_of_scope, 1 still pending: 7 opened. */
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    static const char *const answer[7] = {"accept", "accept", "accept", "no_capacity",
                                          "no_capacity", "out_of_scope", NULL};
    static const long delay_s[3] = {60, 600, 120};
    for (int i = 0; i < 7; i++) {
        char token[32];
        uint8_t corr[16];
        snprintf(token, sizeof token, "CASE-COR-%d", i + 1);
        CU_ASSERT_EQUAL_FATAL(s_send_corr(sv, "GT-PGN", "referral.request", token, NULL, NULL,
                                          corr),
                              0);
        s_take_all(gt, 1);
        if (!answer[i])
            continue;
        int accept = strcmp(answer[i], "accept") == 0;
        CU_ASSERT_EQUAL(s_send_corr(gt, "SV-CONNA", accept ? "referral.accept" : "referral.reject",
                                    token, corr, accept ? NULL : answer[i], NULL),
                        0);
        if (accept) {
            char sql[600];
            snprintf(sql, sizeof sql,
                     "UPDATE lifecycles l SET created_at = pt_ms_to_ts((SELECT min(e.at_ms) FROM "
                     "case_events e WHERE e.case_token = l.case_token AND e.kind = "
                     "'state:accepted') - %ld) WHERE case_token = '%s'",
                     delay_s[i] * 1000, token);
            CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, NULL, sql), 0);
        }
    }
    CU_ASSERT_EQUAL(s_run("audit corridors --json"), 0);
    json_t *doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *row = s_corridor(doc, "SV", "GT", "referral");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "opened")), "7");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "accepted")), "3");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "median_accept_ms")), "120000");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "rejected")), "3");
    json_t *reasons = json_object_get(row, "rejected_by_reason");
    CU_ASSERT_EQUAL_FATAL(json_array_size(reasons), 2);
    json_t *r0 = json_array_get(reasons, 0), *r1 = json_array_get(reasons, 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r0, "reason")), "no_capacity");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r0, "count")), 2);
    CU_ASSERT(s_near(json_real_value(json_object_get(r0, "share")), 0.2857));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r1, "reason")), "out_of_scope");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r1, "count")), 1);
    CU_ASSERT(s_near(json_real_value(json_object_get(r1, "share")), 0.1429));
    CU_ASSERT_FALSE(json_is_true(json_object_get(doc, "truncated")));
    json_decref(doc);
    /* The same in the table: header, and the corridor's row with the shares. */
    CU_ASSERT_EQUAL(s_run("audit corridors"), 0);
    CU_ASSERT_EQUAL(strncmp(s_out, "from  to  family    opened  accepted  median_accept_ms  "
                                   "rejected  rejected_by_reason",
                            strlen("from  to  family    opened  accepted  median_accept_ms  "
                                   "rejected  rejected_by_reason")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\nSV    GT  referral  7       3         120000            "
                                         "3         no_capacity 2 (28.6%), out_of_scope 1 (14.3%)\n"));
    pt_client_destroy(&sv);
    pt_client_destroy(&gt);
}

static void test_items_older_than_and_paging(void)
{
    /* One rejected referral not moved for 40 days is listed; the fresh rejected ones
       (CASE-COR-4, CASE-COR-5) are not. */
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, NULL, "UPDATE lifecycles SET created_at = now() - "
                                                   "interval '41 days', updated_at = now() - "
                                                   "interval '40 days' WHERE case_token = "
                                                   "'CASE-COR-6'"),
                    0);
    CU_ASSERT_EQUAL(s_run("audit items --type referral --state rejected --older-than 30d --json"),
                    0);
    json_t *doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "rows")), 1);
    json_t *row = json_array_get(json_object_get(doc, "rows"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "case_token")), "CASE-COR-6");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "state")), "rejected");
    json_decref(doc);
    /* Without the age: all three rejected ones. */
    CU_ASSERT_EQUAL(s_run("audit items --type referral --state rejected --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-COR-4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-COR-5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-COR-6"));
    CU_ASSERT_EQUAL(s_run("audit items --type referral --state rejected --older-than 30d"), 0);
    CU_ASSERT_EQUAL(strncmp(s_out, "case_token  kind      state     initiator  counterparty  "
                                   "updated_ms",
                            strlen("case_token  kind      state     initiator  counterparty  "
                                   "updated_ms")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\nCASE-COR-6  referral  rejected  SV-CONNA   GT-PGN  "));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-COR-5"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "truncated"));

    /* Pages of 2 over every lifecycle: each row once, in order, then no cursor. */
    long total = pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles");
    CU_ASSERT_FATAL(total >= 10);
    char after[80] = "", args[200];
    long seen = 0;
    int pages = 0;
    for (;;) {
        snprintf(args, sizeof args, "audit items --limit 2 --json%s%s", after[0] ? " --after " : "",
                 after);
        CU_ASSERT_EQUAL_FATAL(s_run(args), 0);
        doc = s_json_rows();
        CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
        size_t n = json_array_size(json_object_get(doc, "rows"));
        seen += (long)n;
        pages++;
        int more = json_is_true(json_object_get(doc, "truncated"));
        CU_ASSERT_EQUAL(n, more ? 2 : (size_t)(total - (pages - 1) * 2));
        if (more)
            snprintf(after, sizeof after, "%s",
                     json_string_value(json_object_get(doc, "next_after")));
        json_decref(doc);
        if (!more || pages > 100)
            break;
    }
    CU_ASSERT_EQUAL(seen, total);
    CU_ASSERT_EQUAL(pages, (int)((total + 1) / 2));
    /* Table output says it was cut off and how to go on. */
    CU_ASSERT_EQUAL(s_run("audit items --limit 3"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "(truncated after 3 rows; next page: --after "));
    /* Scope is applied before the limit: make every MX <-> US lifecycle the oldest;
       the GT auditor's first row is still one of its own. */
    CU_ASSERT_EQUAL(pt_harness_sql_exec(s_h, NULL, "UPDATE lifecycles SET updated_at = now() - "
                                                   "interval '400 days' WHERE initiator = "
                                                   "'MX-DIF' AND counterparty = 'US-ORR'"),
                    0);
    CU_ASSERT_EQUAL(s_run("audit items --limit 1 --as auditor:GT-OMBUDS --json"), 0);
    doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "rows")), 1);
    row = json_array_get(json_object_get(doc, "rows"), 0);
    const char *a = json_string_value(json_object_get(row, "initiator"));
    const char *b = json_string_value(json_object_get(row, "counterparty"));
    CU_ASSERT((a && strncmp(a, "GT-", 3) == 0) || (b && strstr(b, "GT-")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(doc, "truncated")));
    json_decref(doc);
    /* Trail pages by seq. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-COR-1 --limit 2 --json"), 0);
    doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "rows")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "next_after")), "2");
    json_decref(doc);
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-COR-1 --after 2 --limit 1 --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"seq\": \"3\""));
    CU_ASSERT_PTR_NULL(strstr(s_out, "\"seq\": \"2\""));
}

static void test_activity_range_and_tables(void)
{
    /* SV-CONNA -> HN-DINAF (nobody receiving): 1 referral before the range, 2 in it,
       1 after; each is 3 events (submitted, stored, state:submitted). */
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    CU_ASSERT_EQUAL(s_send_corr(sv, "HN-DINAF", "referral.request", "CASE-ACT-1", NULL, NULL, NULL),
                    0);
    usleep(20 * 1000);
    int64_t from = pt_now_ms();
    usleep(20 * 1000);
    CU_ASSERT_EQUAL(s_send_corr(sv, "HN-DINAF", "referral.request", "CASE-ACT-2", NULL, NULL, NULL),
                    0);
    CU_ASSERT_EQUAL(s_send_corr(sv, "HN-DINAF", "referral.request", "CASE-ACT-3", NULL, NULL, NULL),
                    0);
    usleep(20 * 1000);
    int64_t until = pt_now_ms();
    usleep(20 * 1000);
    CU_ASSERT_EQUAL(s_send_corr(sv, "HN-DINAF", "referral.request", "CASE-ACT-4", NULL, NULL, NULL),
                    0);
    pt_client_destroy(&sv);
    char f[40], u[40], args[300];
    puente_time_format(from, f, sizeof f);
    puente_time_format(until, u, sizeof u);
    snprintf(args, sizeof args, "audit activity --org HN-DINAF --from %s --until %s --json", f, u);
    CU_ASSERT_EQUAL(s_run(args), 0);
    json_t *doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *rows = json_object_get(doc, "rows");
    CU_ASSERT_EQUAL(json_array_size(rows), 6);
    size_t i;
    json_t *row;
    int act2 = 0, act3 = 0;
    json_array_foreach(rows, i, row) {
        const char *token = json_string_value(json_object_get(row, "case_token"));
        act2 += strcmp(token, "CASE-ACT-2") == 0;
        act3 += strcmp(token, "CASE-ACT-3") == 0;
    }
    CU_ASSERT_EQUAL(act2, 3);
    CU_ASSERT_EQUAL(act3, 3);
    json_decref(doc);
    /* Paged: 4 + 2, the second page after the first's cursor. */
    snprintf(args, sizeof args,
             "audit activity --org HN-DINAF --from %s --until %s --limit 4 --json", f, u);
    CU_ASSERT_EQUAL(s_run(args), 0);
    doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "rows")), 4);
    CU_ASSERT_TRUE(json_is_true(json_object_get(doc, "truncated")));
    char cursor[80];
    snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(doc, "next_after")));
    json_decref(doc);
    snprintf(args, sizeof args,
             "audit activity --org HN-DINAF --from %s --until %s --after %s --json", f, u, cursor);
    CU_ASSERT_EQUAL(s_run(args), 0);
    doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "rows")), 2);
    CU_ASSERT_FALSE(json_is_true(json_object_get(doc, "truncated")));
    json_decref(doc);
    /* Table: header and a row. */
    snprintf(args, sizeof args, "audit activity --org HN-DINAF --from %s --until %s", f, u);
    CU_ASSERT_EQUAL(s_run(args), 0);
    CU_ASSERT_EQUAL(strncmp(s_out, "event_id  at_ms  ", strlen("event_id  at_ms  ")) == 0 ||
                        strncmp(s_out, "event_id  at_ms ", strlen("event_id  at_ms ")) == 0,
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-ACT-2"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-ACT-1"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "CASE-ACT-4"));
    /* trail table: header and the first event. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-ACT-1"), 0);
    CU_ASSERT_EQUAL(strncmp(s_out, "seq  at_ms", strlen("seq  at_ms")), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "submitted  SV-CONNA  HN-DINAF      referral.request"));
}

static void test_auditor_scoped_to_organisation(void)
{
    char args[700];
    snprintf(args, sizeof args, "keygen --org HN-WATCH --keys '%s/auditors'", pt_harness_keys(s_h));
    CU_ASSERT_EQUAL_FATAL(s_run(args), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("auditor add HN-WATCH --scope HN-DINAF"), 0);
    /* HN-DINAF's cases: yes. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-ACT-1 --as auditor:HN-WATCH --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"kind\": \"stored\""));
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-HN --as auditor:HN-WATCH --json"), 0);
    /* Others, even in the same corridor family: no, and logged. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-AUD-GT --as auditor:HN-WATCH"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NOT_PERMITTED"));
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-COR-1 --as auditor:HN-WATCH"), 2);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE kind = "
                                              "'audit_query_refused' AND actor = "
                                              "'auditor:HN-WATCH' AND counterparty IN "
                                              "('CASE-AUD-GT', 'CASE-COR-1')"),
                    2);
    CU_ASSERT_EQUAL(s_run("audit activity --org HN-DINAF --as auditor:HN-WATCH --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-ACT-2"));
    CU_ASSERT_EQUAL(s_run("audit activity --org SV-CONNA --as auditor:HN-WATCH"), 2);
    /* Items: only lifecycles HN-DINAF is party to (5: CASE-AUD-HN, CASE-ACT-1..4). */
    CU_ASSERT_EQUAL(s_run("audit items --as auditor:HN-WATCH --json"), 0);
    json_t *doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    size_t i;
    json_t *row;
    size_t n = 0;
    /* This test's own five must be among them (earlier tests add others). */
    static const char *const mine[] = {"CASE-AUD-HN", "CASE-ACT-1", "CASE-ACT-2", "CASE-ACT-3",
                                       "CASE-ACT-4"};
    int seen[5] = {0};
    json_array_foreach(json_object_get(doc, "rows"), i, row) {
        const char *a = json_string_value(json_object_get(row, "initiator"));
        const char *b = json_string_value(json_object_get(row, "counterparty"));
        const char *t = json_string_value(json_object_get(row, "case_token"));
        CU_ASSERT(strcmp(a, "HN-DINAF") == 0 || strstr(b, "HN-DINAF") != NULL);
        for (size_t k = 0; t && k < 5; k++)
            seen[k] += strcmp(t, mine[k]) == 0;
        n++;
    }
    CU_ASSERT_EQUAL(n, (size_t)pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE "
                                                         "initiator = 'HN-DINAF' OR counterparty "
                                                         "LIKE '%HN-DINAF%'"));
    for (size_t k = 0; k < 5; k++)
        CU_ASSERT_EQUAL(seen[k], 1);
    json_decref(doc);
    /* Corridor statistics are per country: an organisation's auditor sees none. */
    CU_ASSERT_EQUAL(s_run("audit corridors --as auditor:HN-WATCH --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"rows\": []"));
}

static void test_fhir_fields(void)
{
    char args[1600];
    snprintf(args, sizeof args, "audit export --case CASE-AUD-GT --db '%s' --format fhir",
             pt_harness_conninfo(s_h));
    CU_ASSERT_EQUAL_FATAL(s_run(args), 0);
    json_t *doc = s_json_rows();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    /* The case's first event: "submitted" by MX-DIF. */
    json_t *ev = json_object_get(json_array_get(json_object_get(doc, "entry"), 0), "resource");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    json_t *type = json_object_get(ev, "type");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(type, "system")),
                           "http://terminology.hl7.org/CodeSystem/audit-event-type");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(type, "code")), "rest");
    json_t *sub = json_array_get(json_object_get(ev, "subtype"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(sub, "code")), "submitted");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev, "action")), "C");
    char at[40];
    puente_time_format(pt_harness_sql_count(s_h, "SELECT at_ms FROM case_events WHERE case_token "
                                                 "= 'CASE-AUD-GT' AND seq = 1"),
                       at, sizeof at);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev, "recorded")), at);
    json_t *who = json_object_get(
        json_object_get(json_array_get(json_object_get(ev, "agent"), 0), "who"), "identifier");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(who, "system")), "urn:puente:org");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(who, "value")), "MX-DIF");
    json_t *observer = json_object_get(
        json_object_get(json_object_get(ev, "source"), "observer"), "identifier");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(observer, "value")), "puente-broker");
    json_t *what = json_object_get(
        json_object_get(json_array_get(json_object_get(ev, "entity"), 0), "what"), "identifier");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(what, "system")),
                           "urn:puente:case-token");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(what, "value")), "CASE-AUD-GT");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "entry")),
                    (size_t)pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE "
                                                      "case_token = 'CASE-AUD-GT'"));
    json_decref(doc);
}

static void test_rejections_in_trail_verify(void)
{
    /* SV-CONNA and US-ORR have no agreement: refused by policy after the signature
       verified, so a "rejected" event of the case, in the Merkle log. */
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    CU_ASSERT_EQUAL(s_send_corr(sv, "US-ORR", "referral.request", "CASE-REJ-AUD", NULL, NULL, NULL),
                    REJ(REJECT_NO_AGREEMENT));
    pt_client_destroy(&sv);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events e JOIN audit_log a "
                                              "USING (event_id) WHERE e.case_token = "
                                              "'CASE-REJ-AUD' AND e.kind = 'rejected' AND e.actor "
                                              "= 'SV-CONNA' AND e.counterparty = 'US-ORR' AND "
                                              "e.message_type = 'referral.request' AND "
                                              "e.message_id IS NULL AND substr(e.detail, 1, 4) = "
                                              "int4send(7)"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-REJ-AUD'"),
                    0);
    /* The operator reads it in the case's trail; a US-scoped auditor would too. */
    CU_ASSERT_EQUAL(s_run("audit trail --case CASE-REJ-AUD"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "rejected  SV-CONNA  US-ORR"));
    /* And the whole trail, rejections and logged queries included, still verifies. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    char args[1600];
    snprintf(args, sizeof args, "audit verify --db '%s' --json", pt_harness_conninfo(s_h));
    int rc = s_run(args);
    if (rc != 0)
        fprintf(stderr, "\n%s%s", s_out, s_err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"ok\": true"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("audit", s_suite_init, s_suite_clean);
    CU_add_test(s, "receipts carry leaf indexes; every event is in the log", test_receipts_carry_leaf_indexes);
    CU_add_test(s, "signed checkpoints, inclusion and consistency proofs", test_checkpoints_and_proofs);
    CU_add_test(s, "auditor scope: GT cannot read MX<->US, refusal logged", test_auditor_scope);
    CU_add_test(s, "queries: items, corridors", test_queries);
    CU_add_test(s, "retention deletes payloads only", test_retention_keeps_trail_verifiable);
    CU_add_test(s, "verify --db: untouched database verifies", test_verify_untouched);
    CU_add_test(s, "verify --db: each tampering fails and is named", test_verify_names_tampering);
    CU_add_test(s, "bundle: export, verify offline, flip a byte", test_bundle_round_trip);
    CU_add_test(s, "cadence by events; export right after an event; trusted checkpoint",
                test_cadence_and_export_while_running);
    CU_add_test(s, "bundle: no anchor, or re-signed with another key, fails", test_bundle_anchor);
    CU_add_test(s, "verify --db: checkpoint chain tampering is named",
                test_verify_checkpoint_chain_tampering);
    CU_add_test(s, "queries: unsigned, forged, stale, replayed refused and logged", test_query_signatures);
    CU_add_test(s, "queries: not answered when the query cannot be logged", test_query_not_answered_unless_logged);
    CU_add_test(s, "queries: non-auditors and malformed queries logged", test_refused_and_malformed_queries_logged);
    CU_add_test(s, "corridors: exact median time to accept and shares by reason", test_corridors_exact);
    CU_add_test(s, "items: older than 30 days, paging, scope before the limit", test_items_older_than_and_paging);
    CU_add_test(s, "activity: --from/--until exact, paging, table output", test_activity_range_and_tables);
    CU_add_test(s, "auditor scoped to one organisation", test_auditor_scoped_to_organisation);
    CU_add_test(s, "FHIR export: fields of a known event", test_fhir_fields);
    CU_add_test(s, "rejections are trail events; the log still verifies", test_rejections_in_trail_verify);
    return pt_cu_main();
}

/*  itest_audit — the auditor's trail (issue 4) against a real broker and a real
    PostgreSQL: receipts carry leaf indexes, checkpoints and proofs verify, an
    auditor sees only its scope (and its refusals are logged), queries answer,
    retention keeps everything verifiable, `puente audit verify --db` passes on
    an untouched database and fails, naming the row, on each kind of tampering
    (done as superuser on a copy of the database), and an exported bundle
    verifies offline until one byte changes. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
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
    size_t len = 0;
    uint8_t *body = pt_harness_example_body(type, &len);
    if (!body)
        return PT_CLIENT_INVALID;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.consent_for_tracing = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *recipients[1] = {to};
    pt_send_t msg = {.message_type = type, .recipients = recipients, .n_recipients = 1,
                     .case_token = case_token, .consent = &consent, .body = body,
                     .body_len = len};
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_send(client, &msg, receipt, &rej);
    free(body);
    return rc;
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
    /* Every case event is in the log, once. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events"),
                    pt_harness_sql_count(s_h, "SELECT count(*) FROM audit_log"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT size FROM audit_head"),
                    pt_harness_sql_count(s_h, "SELECT count(*) FROM audit_log"));
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
    return pt_cu_main();
}

/*  test_sdk_outbox — the outbox's SQLite layer (pt_outbox_db) and the state-file
    checks: queue order, status transitions, reopen keeps queued rows, corrupt and
    foreign files refused with a clear error. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_sdk_internal.h"
#include "cu_main.h"

static char s_dir[64];

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", s_dir, name);
}

static int s_init(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/pt-outbox-test.XXXXXX");
    return mkdtemp(s_dir) ? 0 : 1;
}

static int s_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", s_dir);
    return system(cmd) == 0 ? 0 : 1;
}

static void s_id(uint8_t id[PT_UUID_BYTES], uint8_t fill)
{
    memset(id, fill, PT_UUID_BYTES);
}

static void test_queue_order_and_transitions(void)
{
    char path[128], err[256] = "";
    s_path(path, sizeof path, "order.db");
    pt_outbox_db_t *db = pt_outbox_db_open(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    uint8_t a[PT_UUID_BYTES], b[PT_UUID_BYTES], c[PT_UUID_BYTES], got[PT_UUID_BYTES];
    s_id(a, 0xa1);
    s_id(b, 0xb2);
    s_id(c, 0xc3);
    int64_t sa = 0, sb = 0, sc = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_enqueue(db, a, (const uint8_t *) "env-a", 5, &sa), 0);
    CU_ASSERT_EQUAL(pt_outbox_db_enqueue(db, b, (const uint8_t *) "env-bb", 6, &sb), 0);
    CU_ASSERT_EQUAL(pt_outbox_db_enqueue(db, c, (const uint8_t *) "env-ccc", 7, &sc), 0);
    CU_ASSERT(sa < sb && sb < sc);
    /* The same message id twice is refused (the envelope is fixed at enqueue time). */
    CU_ASSERT_EQUAL(pt_outbox_db_enqueue(db, a, (const uint8_t *) "other", 5, NULL), -1);
    CU_ASSERT_EQUAL(pt_outbox_db_pending(db), 3);

    int64_t seq = 0;
    uint8_t *env = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_next(db, &seq, got, &env, &len), 1);
    CU_ASSERT_EQUAL(seq, sa);
    CU_ASSERT_EQUAL(memcmp(got, a, PT_UUID_BYTES), 0);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_EQUAL(memcmp(env, "env-a", 5), 0);
    free(env);
    CU_ASSERT_EQUAL(pt_outbox_db_status(db, a, NULL, NULL), PT_OUTBOX_QUEUED);

    pt_receipt_info_t r;
    memset(&r, 0, sizeof r);
    r.stored_at_ms = 1740830400250;
    memset(r.header_sha256, 0x11, sizeof r.header_sha256);
    memset(r.event_hash, 0x22, sizeof r.event_hash);
    memset(r.correlation_id, 0x33, sizeof r.correlation_id);
    r.duplicate = 1;
    CU_ASSERT_EQUAL(pt_outbox_db_submitted(db, sa, &r), 0);
    pt_receipt_info_t back;
    CU_ASSERT_EQUAL(pt_outbox_db_status(db, a, &back, NULL), PT_OUTBOX_SUBMITTED);
    CU_ASSERT_EQUAL(back.stored_at_ms, 1740830400250);
    CU_ASSERT_EQUAL(memcmp(back.header_sha256, r.header_sha256, PT_SHA256_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(back.event_hash, r.event_hash, PT_SHA256_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(back.correlation_id, r.correlation_id, PT_UUID_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(back.message_id, a, PT_UUID_BYTES), 0);
    CU_ASSERT_EQUAL(back.duplicate, 1);
    /* A final state is final: a later reject of the same row changes nothing. */
    CU_ASSERT_EQUAL(pt_outbox_db_rejected(db, sa, 7, "late"), 0);
    CU_ASSERT_EQUAL(pt_outbox_db_status(db, a, NULL, NULL), PT_OUTBOX_SUBMITTED);

    CU_ASSERT_EQUAL(pt_outbox_db_next(db, &seq, got, &env, &len), 1);
    CU_ASSERT_EQUAL(seq, sb);
    CU_ASSERT_EQUAL(memcmp(got, b, PT_UUID_BYTES), 0);
    free(env);
    CU_ASSERT_EQUAL(pt_outbox_db_rejected(db, sb, 7, "no agreement between MX-DIF and XX"), 0);
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(pt_outbox_db_status(db, b, NULL, &rej), PT_OUTBOX_REJECTED);
    CU_ASSERT_EQUAL(rej.code, 7);
    CU_ASSERT_STRING_EQUAL(rej.reason, "no agreement between MX-DIF and XX");
    CU_ASSERT_STRING_EQUAL(rej.code_name, puente_reject_name(7));

    CU_ASSERT_EQUAL(pt_outbox_db_pending(db), 1);
    uint8_t none[PT_UUID_BYTES];
    s_id(none, 0x00);
    CU_ASSERT_EQUAL(pt_outbox_db_status(db, none, NULL, NULL), PT_OUTBOX_UNKNOWN);
    pt_outbox_db_close(&db);
    CU_ASSERT_PTR_NULL(db);
    pt_outbox_db_close(&db); /* no-op on NULL */
}

static void test_reopen_keeps_queued_rows(void)
{
    char path[128], err[256] = "";
    s_path(path, sizeof path, "reopen.db");
    pt_outbox_db_t *db = pt_outbox_db_open(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    uint8_t id[PT_UUID_BYTES];
    for (int i = 0; i < 10; i++) {
        s_id(id, (uint8_t) (i + 1));
        CU_ASSERT_EQUAL(pt_outbox_db_enqueue(db, id, id, sizeof id, NULL), 0);
    }
    CU_ASSERT_EQUAL(pt_outbox_db_directory_save(db, (const uint8_t *) "entries", 7,
                                                (const uint8_t *) "sig", 3),
                    0);
    pt_outbox_db_close(&db);

    db = pt_outbox_db_open(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(pt_outbox_db_pending(db), 10);
    int64_t seq = 0;
    uint8_t got[PT_UUID_BYTES], *env = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_next(db, &seq, got, &env, &len), 1);
    s_id(id, 1);
    CU_ASSERT_EQUAL(memcmp(got, id, PT_UUID_BYTES), 0);
    free(env);
    uint8_t *entries = NULL, *sig = NULL;
    size_t elen = 0, slen = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_directory_load(db, &entries, &elen, &sig, &slen), 1);
    CU_ASSERT_EQUAL(elen, 7);
    CU_ASSERT_EQUAL(slen, 3);
    CU_ASSERT(entries && memcmp(entries, "entries", 7) == 0);
    CU_ASSERT(sig && memcmp(sig, "sig", 3) == 0);
    free(entries);
    free(sig);
    pt_outbox_db_close(&db);
}

static void test_empty_file_has_no_directory(void)
{
    char path[128], err[256] = "";
    s_path(path, sizeof path, "empty.db");
    pt_outbox_db_t *db = pt_outbox_db_open(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    uint8_t *entries = NULL, *sig = NULL, got[PT_UUID_BYTES];
    size_t elen = 0, slen = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_directory_load(db, &entries, &elen, &sig, &slen), 0);
    CU_ASSERT_PTR_NULL(entries);
    int64_t seq = 0;
    CU_ASSERT_EQUAL(pt_outbox_db_next(db, &seq, got, &entries, &elen), 0);
    CU_ASSERT_EQUAL(pt_outbox_db_pending(db), 0);
    pt_outbox_db_close(&db);
}

static void test_corrupt_and_foreign_files_refused(void)
{
    char path[128], err[256] = "";
    s_path(path, sizeof path, "corrupt.db");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 512; i++)
        fputs("not a database ", f);
    fclose(f);
    CU_ASSERT_PTR_NULL(pt_outbox_db_open(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an SQLite database"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));

    /* Another application's SQLite file. */
    s_path(path, sizeof path, "foreign.db");
    sqlite3 *other = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &other), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(other, "CREATE TABLE contacts (name TEXT)", NULL, NULL, NULL),
                    SQLITE_OK);
    sqlite3_close(other);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(pt_outbox_db_open(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another application"));

    /* An inbox file is not an outbox file (different application id). */
    s_path(path, sizeof path, "inbox.db");
    sqlite3 *inbox = pt_sdk_db_open(path, 0x50544942, "inbox", "CREATE TABLE IF NOT EXISTS t (x)",
                                    err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inbox);
    sqlite3_close(inbox);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(pt_outbox_db_open(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a Puente outbox"));

    err[0] = '\0';
    CU_ASSERT_PTR_NULL(pt_outbox_db_open("", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no outbox state file"));
}

static void test_outbox_new_needs_org_and_file(void)
{
    char err[256] = "";
    pt_outbox_opts_t o = { .client = { .org_id = "MX-DIF" }, .state_path = NULL };
    CU_ASSERT_PTR_NULL(pt_outbox_new(&o, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "state file"));
    o.state_path = "/nonexistent/x.db";
    o.client.keys_dir = "/nonexistent-keys";
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(pt_outbox_new(&o, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot load keys of MX-DIF"));
    pt_outbox_t *none = NULL;
    pt_outbox_destroy(&none);
    CU_ASSERT_EQUAL(pt_outbox_pending(NULL), -1);
    CU_ASSERT_EQUAL(pt_outbox_send(NULL, NULL, NULL), PT_CLIENT_INVALID);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("sdk_outbox", s_init, s_clean);
    CU_add_test(suite, "queue order and status transitions", test_queue_order_and_transitions);
    CU_add_test(suite, "reopen keeps queued rows and the directory", test_reopen_keeps_queued_rows);
    CU_add_test(suite, "empty file: nothing queued, no directory", test_empty_file_has_no_directory);
    CU_add_test(suite, "corrupt and foreign files refused", test_corrupt_and_foreign_files_refused);
    CU_add_test(suite, "pt_outbox_new argument and key errors", test_outbox_new_needs_org_and_file);
    return pt_cu_main();
}

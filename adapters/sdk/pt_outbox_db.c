/*  pt_outbox_db — the outbox's rows in SQLite. See pt_sdk_internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_sdk_internal.h"

#define S_OUTBOX_APP_ID 0x50544F42 /* "PTOB": SQLite application_id of an outbox file */

/* state: 1 queued, 2 submitted, 3 rejected (= pt_outbox_state_t). */
static const char *const s_schema =
    "CREATE TABLE IF NOT EXISTS outbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id BLOB NOT NULL UNIQUE CHECK (length(message_id) = 16),"
    " envelope BLOB NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 1 CHECK (state IN (1, 2, 3)),"
    " queued_at_ms INTEGER NOT NULL,"
    " done_at_ms INTEGER,"
    " stored_at_ms INTEGER, header_sha256 BLOB, event_hash BLOB, duplicate INTEGER,"
    " correlation_id BLOB, reject_code INTEGER, reject_reason TEXT, leaf_index INTEGER);"
    "CREATE INDEX IF NOT EXISTS outbox_queued ON outbox (seq) WHERE state = 1;"
    "CREATE TABLE IF NOT EXISTS directory ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), entries BLOB NOT NULL, signature BLOB NOT NULL,"
    " fetched_at_ms INTEGER NOT NULL);";

struct _pt_outbox_db_t {
    sqlite3 *db;
};

pt_outbox_db_t *pt_outbox_db_open(const char *path, char *err, size_t err_len)
{
    pt_outbox_db_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    self->db = pt_sdk_db_open(path, S_OUTBOX_APP_ID, "outbox", s_schema, err, err_len);
    if (!self->db) {
        free(self);
        return NULL;
    }
    /* Files made before the receipt's leaf index was kept gain the column; any
       failure other than "it is there already" (a busy or read-only file) fails
       the open, rather than every later status call. */
    if (sqlite3_exec(self->db, "ALTER TABLE outbox ADD COLUMN leaf_index INTEGER", NULL, NULL,
                     NULL) != SQLITE_OK &&
        !strstr(sqlite3_errmsg(self->db), "duplicate column name")) {
        snprintf(err, err_len, "outbox %s: cannot add column leaf_index: %s", path,
                 sqlite3_errmsg(self->db));
        sqlite3_close(self->db);
        free(self);
        return NULL;
    }
    return self;
}

void pt_outbox_db_close(pt_outbox_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sqlite3_close((*self_p)->db);
    free(*self_p);
    *self_p = NULL;
}

const char *pt_outbox_db_error(pt_outbox_db_t *self)
{
    return self ? sqlite3_errmsg(self->db) : "no outbox file";
}

static sqlite3_stmt *s_prepare(pt_outbox_db_t *self, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

/* Steps a write to completion and finalises it. 0 or -1. */
static int s_done(sqlite3_stmt *st, int bind_ok)
{
    int rc = bind_ok && sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

int pt_outbox_db_enqueue(pt_outbox_db_t *self, const uint8_t message_id[PT_UUID_BYTES],
                         const uint8_t *env, size_t env_len, int64_t *seq)
{
    sqlite3_stmt *st = s_prepare(self, "INSERT INTO outbox (message_id, envelope, queued_at_ms) "
                                       "VALUES (?, ?, ?)");
    if (!st || env_len > 0x7fffffff)
        return sqlite3_finalize(st), -1;
    int ok = sqlite3_bind_blob(st, 1, message_id, PT_UUID_BYTES, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_bind_blob(st, 2, env, (int) env_len, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_bind_int64(st, 3, pt_now_ms()) == SQLITE_OK;
    if (s_done(st, ok))
        return -1;
    if (seq)
        *seq = sqlite3_last_insert_rowid(self->db);
    return 0;
}

int pt_outbox_db_next(pt_outbox_db_t *self, int64_t *seq, uint8_t message_id[PT_UUID_BYTES],
                      uint8_t **env, size_t *env_len)
{
    *env = NULL;
    *env_len = 0;
    sqlite3_stmt *st = s_prepare(self, "SELECT seq, message_id, envelope FROM outbox "
                                       "WHERE state = 1 ORDER BY seq LIMIT 1");
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 1) != PT_UUID_BYTES) {
        sqlite3_finalize(st);
        return -1;
    }
    *seq = sqlite3_column_int64(st, 0);
    memcpy(message_id, sqlite3_column_blob(st, 1), PT_UUID_BYTES);
    int n = sqlite3_column_bytes(st, 2);
    const void *data = sqlite3_column_blob(st, 2);
    *env = malloc(n > 0 ? (size_t) n : 1);
    if (!*env) {
        sqlite3_finalize(st);
        return -1;
    }
    if (n > 0)
        memcpy(*env, data, (size_t) n);
    *env_len = (size_t) n;
    sqlite3_finalize(st);
    return 1;
}

int pt_outbox_db_submitted(pt_outbox_db_t *self, int64_t seq, const pt_receipt_info_t *r)
{
    sqlite3_stmt *st =
        s_prepare(self, "UPDATE outbox SET state = 2, done_at_ms = ?, stored_at_ms = ?,"
                        " header_sha256 = ?, event_hash = ?, duplicate = ?,"
                        " correlation_id = ?, leaf_index = ? WHERE seq = ? AND state = 1");
    if (!st)
        return -1;
    int ok =
        sqlite3_bind_int64(st, 1, pt_now_ms()) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, r->stored_at_ms) == SQLITE_OK &&
        sqlite3_bind_blob(st, 3, r->header_sha256, PT_SHA256_BYTES, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_blob(st, 4, r->event_hash, PT_SHA256_BYTES, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int(st, 5, r->duplicate) == SQLITE_OK &&
        sqlite3_bind_blob(st, 6, r->correlation_id, PT_UUID_BYTES, SQLITE_STATIC) == SQLITE_OK &&
        (r->leaf_index >= 0 ? sqlite3_bind_int64(st, 7, r->leaf_index)
                            : sqlite3_bind_null(st, 7)) == SQLITE_OK &&
        sqlite3_bind_int64(st, 8, seq) == SQLITE_OK;
    return s_done(st, ok);
}

int pt_outbox_db_rejected(pt_outbox_db_t *self, int64_t seq, int code, const char *reason)
{
    sqlite3_stmt *st = s_prepare(self, "UPDATE outbox SET state = 3, done_at_ms = ?,"
                                       " reject_code = ?, reject_reason = ?"
                                       " WHERE seq = ? AND state = 1");
    if (!st)
        return -1;
    int ok = sqlite3_bind_int64(st, 1, pt_now_ms()) == SQLITE_OK
             && sqlite3_bind_int(st, 2, code) == SQLITE_OK
             && sqlite3_bind_text(st, 3, reason ? reason : "", -1, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_bind_int64(st, 4, seq) == SQLITE_OK;
    return s_done(st, ok);
}

static void s_copy_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
    if (sqlite3_column_bytes(st, col) == (int) len)
        memcpy(out, sqlite3_column_blob(st, col), len);
}

int pt_outbox_db_status(pt_outbox_db_t *self, const uint8_t message_id[PT_UUID_BYTES],
                        pt_receipt_info_t *receipt, pt_reject_info_t *rej)
{
    sqlite3_stmt *st = s_prepare(self, "SELECT state, stored_at_ms, header_sha256, event_hash,"
                                       " duplicate, correlation_id, reject_code, reject_reason,"
                                       " leaf_index FROM outbox WHERE message_id = ?");
    if (!st)
        return -1;
    if (sqlite3_bind_blob(st, 1, message_id, PT_UUID_BYTES, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    int rc = sqlite3_step(st);
    int state = rc == SQLITE_DONE ? PT_OUTBOX_UNKNOWN : -1;
    if (rc == SQLITE_ROW) {
        state = sqlite3_column_int(st, 0);
        if (state == PT_OUTBOX_SUBMITTED && receipt) {
            memset(receipt, 0, sizeof *receipt);
            memcpy(receipt->message_id, message_id, PT_UUID_BYTES);
            receipt->stored_at_ms = sqlite3_column_int64(st, 1);
            s_copy_blob(st, 2, receipt->header_sha256, PT_SHA256_BYTES);
            s_copy_blob(st, 3, receipt->event_hash, PT_SHA256_BYTES);
            receipt->duplicate = sqlite3_column_int(st, 4);
            s_copy_blob(st, 5, receipt->correlation_id, PT_UUID_BYTES);
            receipt->leaf_index =
                sqlite3_column_type(st, 8) == SQLITE_INTEGER ? sqlite3_column_int64(st, 8) : -1;
        }
        if (state == PT_OUTBOX_REJECTED && rej) {
            memset(rej, 0, sizeof *rej);
            rej->code = sqlite3_column_int(st, 6);
            snprintf(rej->code_name, sizeof rej->code_name, "%s", puente_reject_name(rej->code));
            const unsigned char *why = sqlite3_column_text(st, 7);
            snprintf(rej->reason, sizeof rej->reason, "%s", why ? (const char *) why : "");
            memcpy(rej->message_id, message_id, PT_UUID_BYTES);
        }
        if (state < PT_OUTBOX_QUEUED || state > PT_OUTBOX_REJECTED)
            state = -1;
    }
    sqlite3_finalize(st);
    return state;
}

long pt_outbox_db_pending(pt_outbox_db_t *self)
{
    sqlite3_stmt *st = s_prepare(self, "SELECT count(*) FROM outbox WHERE state = 1");
    long n = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = (long) sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int pt_outbox_db_directory_save(pt_outbox_db_t *self, const uint8_t *entries, size_t entries_len,
                                const uint8_t *signature, size_t signature_len)
{
    if (entries_len > 0x7fffffff || signature_len > 0x7fffffff)
        return -1;
    sqlite3_stmt *st = s_prepare(self, "INSERT OR REPLACE INTO directory"
                                       " (id, entries, signature, fetched_at_ms) VALUES (1, ?, ?, ?)");
    if (!st)
        return -1;
    /* zeroblob keeps NOT NULL satisfied for an empty directory. */
    int ok = (entries_len ? sqlite3_bind_blob(st, 1, entries, (int) entries_len, SQLITE_STATIC)
                          : sqlite3_bind_zeroblob(st, 1, 0))
                 == SQLITE_OK
             && sqlite3_bind_blob(st, 2, signature, (int) signature_len, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_bind_int64(st, 3, pt_now_ms()) == SQLITE_OK;
    return s_done(st, ok);
}

static int s_dup_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
    int n = sqlite3_column_bytes(st, col);
    const void *data = sqlite3_column_blob(st, col);
    *out = malloc(n > 0 ? (size_t) n : 1);
    if (!*out)
        return -1;
    if (n > 0)
        memcpy(*out, data, (size_t) n);
    *len = (size_t) n;
    return 0;
}

int pt_outbox_db_directory_load(pt_outbox_db_t *self, uint8_t **entries, size_t *entries_len,
                                uint8_t **signature, size_t *signature_len)
{
    *entries = *signature = NULL;
    sqlite3_stmt *st = s_prepare(self, "SELECT entries, signature FROM directory WHERE id = 1");
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int result = rc == SQLITE_DONE ? 0 : -1;
    if (rc == SQLITE_ROW) {
        if (s_dup_blob(st, 0, entries, entries_len) == 0
            && s_dup_blob(st, 1, signature, signature_len) == 0)
            result = 1;
        else {
            free(*entries);
            *entries = NULL;
        }
    }
    sqlite3_finalize(st);
    return result;
}

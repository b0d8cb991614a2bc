/*  bridge_store — SQLite state of puente-bridge (see bridge_store.h). Every
    statement is prepared with bound parameters; nothing is built from input. */
#include "bridge_store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "puente.h"

struct _pt_bridge_store_t {
    sqlite3 *db;
    pthread_mutex_t lock;
};

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS inbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  correlation_id TEXT, causation_id TEXT,"
    "  message_json TEXT,"
    "  received_at INTEGER NOT NULL,"
    "  app_acked_at INTEGER, broker_acked_at INTEGER,"
    "  webhook_state TEXT NOT NULL, webhook_attempts INTEGER NOT NULL DEFAULT 0,"
    "  webhook_next_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS inbox_corr ON inbox(correlation_id);"
    "CREATE TABLE IF NOT EXISTS outbound ("
    "  local_id TEXT PRIMARY KEY,"
    "  message_id TEXT UNIQUE,"
    "  type TEXT NOT NULL, case_token TEXT NOT NULL, to_json TEXT NOT NULL,"
    "  correlation_id TEXT, state TEXT NOT NULL,"
    "  reject_code INTEGER, reject_name TEXT, reason TEXT,"
    "  receipt_json TEXT, lifecycle TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS outbound_corr ON outbound(correlation_id);"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    "  key TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL, message_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);";

pt_bridge_store_t *pt_bridge_store_open(const char *dir, char *err, size_t err_len)
{
    pt_bridge_store_t *self = calloc(1, sizeof *self);
    char path[1200];
    if (!self) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    /* Creates missing parents one by one (var/bridge/MX-DIF). */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0700);
            *p = '/';
        }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        goto error;
    }
    snprintf(path, sizeof path, "%s/bridge.db", dir);
    if (sqlite3_open_v2(path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL)
        != SQLITE_OK) {
        snprintf(err, err_len, "cannot open %s: %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
        goto error;
    }
    chmod(path, 0600);
    sqlite3_busy_timeout(self->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(self->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK
        || sqlite3_exec(self->db, s_schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "cannot prepare %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        goto error;
    }
    return self;
error:
    pt_bridge_store_destroy(&self);
    return NULL;
}

void pt_bridge_store_destroy(pt_bridge_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_bridge_store_t *self = *self_p;
    if (self->db)
        sqlite3_close(self->db);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* Runs sql with text/NULL parameters (NULL pointer binds NULL; "#123" is not
   special: integers go through s_exec_i). Returns sqlite3_changes or -1. */
static int s_exec(pt_bridge_store_t *self, const char *sql, const char *const *params, int n,
                  const int64_t *ints, int n_ints)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto done;
    for (int i = 0; i < n; i++)
        if ((params[i] ? sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT)
                       : sqlite3_bind_null(st, i + 1)) != SQLITE_OK)
            goto done;
    for (int i = 0; i < n_ints; i++)
        if (sqlite3_bind_int64(st, n + i + 1, ints[i]) != SQLITE_OK)
            goto done;
    if (sqlite3_step(st) != SQLITE_DONE)
        goto done;
    rc = sqlite3_changes(self->db);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_inbox_put(pt_bridge_store_t *self, const char *message_id, const char *correlation_id,
                        const char *causation_id, const char *message_json, int webhook)
{
    const char *p[] = {message_id, correlation_id, causation_id, message_json,
                       webhook ? "pending" : "none"};
    int64_t now = pt_now_ms();
    int64_t ints[] = {now};
    return s_exec(self,
                  "INSERT OR IGNORE INTO inbox (message_id, correlation_id, causation_id, "
                  "message_json, webhook_state, received_at) VALUES (?,?,?,?,?,?)",
                  p, 5, ints, 1);
}

int pt_bridge_inbox_list(pt_bridge_store_t *self, int64_t since, int limit, json_t **messages,
                         int64_t *next_cursor)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    json_t *list = json_array();
    *next_cursor = since;
    pthread_mutex_lock(&self->lock);
    if (!list ||
        sqlite3_prepare_v2(self->db,
                           "SELECT seq, message_json, webhook_state, webhook_attempts FROM "
                           "inbox WHERE seq > ? AND app_acked_at IS NULL ORDER BY seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int(st, 2, limit);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const char *text = (const char *) sqlite3_column_text(st, 1);
        json_t *m = text ? json_loads(text, 0, NULL) : NULL;
        *next_cursor = seq;
        if (!m)
            continue;
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%lld", (long long) seq);
        json_object_set_new(m, "cursor", json_string(cursor));
        const char *hook = (const char *)sqlite3_column_text(st, 2);
        if (hook && strcmp(hook, "none") != 0)
            json_object_set_new(
                m, "webhook",
                json_pack("{s:s, s:i}", "state", hook, "attempts", sqlite3_column_int(st, 3)));
        json_array_append_new(list, m);
    }
    if (step != SQLITE_DONE)
        goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    if (rc == 0)
        *messages = list;
    else
        json_decref(list);
    return rc;
}

/* One text column of the first row of sql(param): 1 found, 0 none, -1 error. */
static int s_query_text(pt_bridge_store_t *self, const char *sql, const char *param, char *out,
                        size_t out_len, int *is_null)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        goto done;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW) {
        const char *t = (const char *) sqlite3_column_text(st, 0);
        if (is_null)
            *is_null = t == NULL;
        snprintf(out, out_len, "%s", t ? t : "");
        rc = 1;
    }
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_inbox_app_ack(pt_bridge_store_t *self, const char *message_id, int *already)
{
    char text[24];
    int is_null = 1;
    int found = s_query_text(self, "SELECT app_acked_at FROM inbox WHERE message_id = ?",
                             message_id, text, sizeof text, &is_null);
    if (found <= 0)
        return found;
    *already = !is_null;
    if (*already)
        return 1;
    const char *p[] = {message_id};
    int64_t ints[] = {pt_now_ms()};
    /* Parameter order: message_id is ?1, the time ?2. */
    return s_exec(self,
                  "UPDATE inbox SET app_acked_at = ?2, message_json = NULL, "
                  "webhook_state = CASE webhook_state WHEN 'pending' THEN 'none' ELSE "
                  "webhook_state END WHERE message_id = ?1",
                  p, 1, ints, 1) < 0 ? -1 : 1;
}

int pt_bridge_inbox_broker_acked(pt_bridge_store_t *self, const char *message_id)
{
    const char *p[] = {message_id};
    int64_t ints[] = {pt_now_ms()};
    return s_exec(self, "UPDATE inbox SET broker_acked_at = ?2 WHERE message_id = ?1", p, 1, ints,
                  1) < 0 ? -1 : 0;
}

int pt_bridge_inbox_pending_acks(pt_bridge_store_t *self, char (*ids)[37], int max)
{
    sqlite3_stmt *st = NULL;
    int n = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT message_id FROM inbox WHERE app_acked_at IS NOT NULL AND "
                           "broker_acked_at IS NULL ORDER BY seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_int(st, 1, max);
    n = 0;
    while (n < max && sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *) sqlite3_column_text(st, 0);
        snprintf(ids[n], 37, "%s", t ? t : "");
        n++;
    }
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return n;
}

int pt_bridge_webhook_next(pt_bridge_store_t *self, int64_t now_ms, int64_t *seq, char **json,
                           int *attempts)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT seq, message_json, webhook_attempts FROM inbox WHERE "
                           "webhook_state = 'pending' AND webhook_next_at <= ? AND message_json "
                           "IS NOT NULL ORDER BY seq LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_int64(st, 1, now_ms);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        *json = strdup((const char *) sqlite3_column_text(st, 1));
        *attempts = sqlite3_column_int(st, 2);
        rc = *json ? 1 : -1;
    }
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_webhook_next_due(pt_bridge_store_t *self, int64_t *due_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT min(webhook_next_at) FROM inbox WHERE webhook_state = 'pending' "
                           "AND message_json IS NOT NULL",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto done;
    rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : 1;
    if (rc == 1)
        *due_ms = sqlite3_column_int64(st, 0);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_webhook_result(pt_bridge_store_t *self, int64_t seq, int delivered, int64_t next_ms)
{
    const char *state = delivered ? "delivered" : next_ms < 0 ? "failed" : "pending";
    const char *p[] = {state};
    int64_t ints[] = {next_ms < 0 ? 0 : next_ms, seq};
    return s_exec(self,
                  "UPDATE inbox SET webhook_state = ?1, webhook_attempts = webhook_attempts + 1, "
                  "webhook_next_at = ?2 WHERE seq = ?3 AND webhook_state = 'pending'",
                  p, 1, ints, 2) < 0 ? -1 : 0;
}

int pt_bridge_webhook_state(pt_bridge_store_t *self, const char *message_id, char *out,
                            size_t out_len)
{
    return s_query_text(self, "SELECT webhook_state FROM inbox WHERE message_id = ?", message_id,
                        out, out_len, NULL) == 1 ? 0 : -1;
}

int pt_bridge_out_put(pt_bridge_store_t *self, const char *local_id, const char *type,
                      const char *case_token, const char *to_json)
{
    const char *p[] = {local_id, type, case_token, to_json};
    int64_t now = pt_now_ms();
    int64_t ints[] = {now, now};
    return s_exec(self,
                  "INSERT INTO outbound (local_id, type, case_token, to_json, state, created_at, "
                  "updated_at) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)",
                  p, 4, ints, 2) == 1 ? 0 : -1;
}

int pt_bridge_out_submitted(pt_bridge_store_t *self, const char *local_id, const char *message_id,
                            const char *correlation_id, const char *receipt_json)
{
    const char *p[] = {local_id, message_id, correlation_id, receipt_json};
    int64_t ints[] = {pt_now_ms()};
    return s_exec(self,
                  "UPDATE outbound SET state = 'submitted', message_id = ?2, correlation_id = ?3, "
                  "receipt_json = ?4, updated_at = ?5 WHERE local_id = ?1",
                  p, 4, ints, 1) == 1 ? 0 : -1;
}

int pt_bridge_out_failed(pt_bridge_store_t *self, const char *local_id, const char *state,
                         int reject_code, const char *reject_name, const char *reason,
                         const char *message_id)
{
    const char *p[] = {local_id, state, reject_name, reason, message_id};
    int64_t ints[] = {reject_code, pt_now_ms()};
    return s_exec(self,
                  "UPDATE outbound SET state = ?2, reject_name = ?3, reason = ?4, "
                  "message_id = COALESCE(?5, message_id), reject_code = NULLIF(?6, 0), "
                  "updated_at = ?7 WHERE local_id = ?1",
                  p, 5, ints, 2) == 1 ? 0 : -1;
}

int pt_bridge_out_progress(pt_bridge_store_t *self, const char *local_id, const char *state,
                           const char *lifecycle)
{
    const char *p[] = {local_id, state, lifecycle && *lifecycle ? lifecycle : NULL};
    int64_t ints[] = {pt_now_ms()};
    return s_exec(self,
                  "UPDATE outbound SET state = ?2, lifecycle = COALESCE(?3, lifecycle), "
                  "updated_at = ?4 WHERE local_id = ?1",
                  p, 3, ints, 1) < 0 ? -1 : 0;
}

static void s_col_text(json_t *o, const char *name, sqlite3_stmt *st, int col)
{
    const char *t = (const char *) sqlite3_column_text(st, col);
    if (t)
        json_object_set_new(o, name, json_string(t));
}

static void s_col_json(json_t *o, const char *name, sqlite3_stmt *st, int col)
{
    const char *t = (const char *) sqlite3_column_text(st, col);
    json_t *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
    if (v)
        json_object_set_new(o, name, v);
}

static void s_col_time(json_t *o, const char *name, sqlite3_stmt *st, int col);

int pt_bridge_out_get(pt_bridge_store_t *self, const char *id, json_t **row)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT local_id, message_id, type, case_token, to_json, "
                           "correlation_id, state, reject_code, reject_name, reason, "
                           "receipt_json, lifecycle, created_at, updated_at FROM outbound "
                           "WHERE local_id = ?1 OR message_id = ?1",
                           -1, &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        goto done;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = 0;
        goto done;
    }
    if (step != SQLITE_ROW)
        goto done;
    json_t *o = json_object();
    s_col_text(o, "id", st, 0);
    s_col_text(o, "message_id", st, 1);
    s_col_text(o, "type", st, 2);
    s_col_text(o, "case_token", st, 3);
    s_col_json(o, "to", st, 4);
    s_col_text(o, "correlation_id", st, 5);
    s_col_text(o, "status", st, 6);
    if (sqlite3_column_type(st, 7) == SQLITE_INTEGER) {
        json_object_set_new(o, "reject_code", json_integer(sqlite3_column_int(st, 7)));
        s_col_text(o, "reject_code_name", st, 8);
    }
    s_col_text(o, "reason", st, 9);
    s_col_json(o, "receipt", st, 10);
    s_col_text(o, "lifecycle_state", st, 11);
    s_col_time(o, "created_at", st, 12);
    s_col_time(o, "updated_at", st, 13);
    *row = o;
    rc = 1;
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static void s_col_time(json_t *o, const char *name, sqlite3_stmt *st, int col)
{
    char at[40];
    puente_time_format(sqlite3_column_int64(st, col), at, sizeof at);
    json_object_set_new(o, name, json_string(at));
}

int pt_bridge_thread(pt_bridge_store_t *self, const char *correlation_id, const char *caused_by,
                     json_t **ids, json_t **replies)
{
    sqlite3_stmt *st = NULL, *st2 = NULL;
    int rc = -1;
    json_t *list = json_array(), *rep = json_array();
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT message_id FROM inbox WHERE correlation_id = ?1 UNION ALL "
                           "SELECT message_id FROM outbound WHERE correlation_id = ?1 AND "
                           "message_id IS NOT NULL",
                           -1, &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, correlation_id ? correlation_id : "", -1, SQLITE_TRANSIENT)
               != SQLITE_OK)
        goto done;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_string((const char *) sqlite3_column_text(st, 0)));
    /* The replies' JSON may be gone after the app acked them; ids and thread stay. */
    if (sqlite3_prepare_v2(self->db,
                           "SELECT message_id, message_json FROM inbox WHERE causation_id = ?1 "
                           "ORDER BY seq",
                           -1, &st2, NULL) != SQLITE_OK
        || sqlite3_bind_text(st2, 1, caused_by ? caused_by : "", -1, SQLITE_TRANSIENT)
               != SQLITE_OK)
        goto done;
    while (sqlite3_step(st2) == SQLITE_ROW) {
        json_t *r = json_pack("{s:s}", "id", (const char *) sqlite3_column_text(st2, 0));
        const char *t = (const char *) sqlite3_column_text(st2, 1);
        json_t *m = t ? json_loads(t, 0, NULL) : NULL;
        if (m) {
            json_object_set(r, "type", json_object_get(m, "type"));
            json_object_set(r, "sender", json_object_get(m, "sender"));
            json_decref(m);
        }
        json_array_append_new(rep, r);
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    sqlite3_finalize(st2);
    pthread_mutex_unlock(&self->lock);
    if (rc == 0) {
        *ids = list;
        *replies = rep;
    }
    else {
        json_decref(list);
        json_decref(rep);
    }
    return rc;
}

int pt_bridge_out_queued(pt_bridge_store_t *self, const char *message_id,
                         const char *correlation_id, const char *type, const char *case_token,
                         const char *to_json, const char *idem_key, const char *idem_sha256)
{
    sqlite3_stmt *st = NULL, *st2 = NULL;
    int rc = -1, began = 0;
    int64_t now = pt_now_ms();
    pthread_mutex_lock(&self->lock);
    /* One transaction: a key never names a message that is not in the table. */
    if (sqlite3_exec(self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    began = 1;
    if (sqlite3_prepare_v2(self->db,
                           "INSERT INTO outbound (local_id, message_id, type, case_token, "
                           "to_json, correlation_id, state, created_at, updated_at) VALUES "
                           "(?1, ?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)",
                           -1, &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, message_id, -1, SQLITE_TRANSIENT) != SQLITE_OK
        || sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT) != SQLITE_OK
        || sqlite3_bind_text(st, 3, case_token, -1, SQLITE_TRANSIENT) != SQLITE_OK
        || sqlite3_bind_text(st, 4, to_json, -1, SQLITE_TRANSIENT) != SQLITE_OK
        || sqlite3_bind_text(st, 5, correlation_id, -1, SQLITE_TRANSIENT) != SQLITE_OK
        || sqlite3_bind_int64(st, 6, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        goto done;
    if (idem_key) {
        if (sqlite3_prepare_v2(self->db,
                               "INSERT INTO idempotency (key, body_sha256, message_id, "
                               "created_at) VALUES (?1, ?2, ?3, ?4)",
                               -1, &st2, NULL) != SQLITE_OK
            || sqlite3_bind_text(st2, 1, idem_key, -1, SQLITE_TRANSIENT) != SQLITE_OK
            || sqlite3_bind_text(st2, 2, idem_sha256 ? idem_sha256 : "", -1, SQLITE_TRANSIENT)
                   != SQLITE_OK
            || sqlite3_bind_text(st2, 3, message_id, -1, SQLITE_TRANSIENT) != SQLITE_OK
            || sqlite3_bind_int64(st2, 4, now) != SQLITE_OK || sqlite3_step(st2) != SQLITE_DONE)
            goto done;
    }
    if (sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    began = 0;
    rc = 0;
done:
    sqlite3_finalize(st);
    sqlite3_finalize(st2);
    if (began)
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_idem_get(pt_bridge_store_t *self, const char *key, char *sha256_out,
                       size_t sha256_len, char *message_id_out, size_t message_id_len)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT body_sha256, message_id FROM idempotency WHERE key = ?1", -1,
                           &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        goto done;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW) {
        const char *h = (const char *) sqlite3_column_text(st, 0);
        const char *m = (const char *) sqlite3_column_text(st, 1);
        snprintf(sha256_out, sha256_len, "%s", h ? h : "");
        snprintf(message_id_out, message_id_len, "%s", m ? m : "");
        rc = 1;
    }
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_inbox_ack_state(pt_bridge_store_t *self, const char *message_id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (sqlite3_prepare_v2(self->db,
                           "SELECT app_acked_at IS NOT NULL, broker_acked_at IS NOT NULL FROM "
                           "inbox WHERE message_id = ?1",
                           -1, &st, NULL) != SQLITE_OK
        || sqlite3_bind_text(st, 1, message_id, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        goto done;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW)
        rc = !sqlite3_column_int(st, 0) ? 0 : sqlite3_column_int(st, 1) ? 2 : 1;
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int pt_bridge_inbox_broker_ack_reset(pt_bridge_store_t *self, const char *message_id)
{
    const char *p[] = {message_id};
    return s_exec(self,
                  "UPDATE inbox SET broker_acked_at = NULL WHERE message_id = ?1 AND "
                  "app_acked_at IS NOT NULL",
                  p, 1, NULL, 0) < 0 ? -1 : 0;
}

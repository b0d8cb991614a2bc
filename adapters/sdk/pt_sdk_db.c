/*  pt_sdk_db — opening the SDK's SQLite state files (outbox, inbox) the same
    careful way: WAL with synchronous=FULL so that a committed row survives a
    crash of the process and of the machine, and a clear refusal of files that
    belong to something else. */
#include <stdio.h>
#include <string.h>

#include "pt_sdk_internal.h"

int pt_sdk_db_exec(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* One integer from a query without parameters; -1 on failure. */
static long long s_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

sqlite3 *pt_sdk_db_open(const char *path, int32_t app_id, const char *what, const char *schema_sql,
                        char *err, size_t err_len)
{
    sqlite3 *db = NULL;
    char why[200] = "";
    if (!path || !*path) {
        snprintf(err, err_len, "no %s state file given", what);
        return NULL;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL)
        != SQLITE_OK) {
        snprintf(why, sizeof why, "%s", db ? sqlite3_errmsg(db) : "out of memory");
        goto error;
    }
    sqlite3_busy_timeout(db, 5000);
    /* Reading the schema is the first access: a file that is not SQLite fails here. */
    long long tables = s_int(db, "SELECT count(*) FROM sqlite_master");
    long long id = s_int(db, "PRAGMA application_id");
    if (tables < 0 || id < 0) {
        snprintf(why, sizeof why, "not an SQLite database (%s)", sqlite3_errmsg(db));
        goto error;
    }
    if (id != app_id && (id != 0 || tables > 0)) {
        snprintf(why, sizeof why, "an SQLite file of another application, not a Puente %s", what);
        goto error;
    }
    if (pt_sdk_db_exec(db, "PRAGMA journal_mode=WAL", why, sizeof why)
        || pt_sdk_db_exec(db, "PRAGMA synchronous=FULL", why, sizeof why))
        goto error;
    if (id == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id=%ld", (long) app_id);
        if (pt_sdk_db_exec(db, sql, why, sizeof why))
            goto error;
    }
    if (pt_sdk_db_exec(db, schema_sql, why, sizeof why))
        goto error;
    return db;
error:
    snprintf(err, err_len, "cannot use %s as %s state file: %s", path, what, why);
    sqlite3_close(db);
    return NULL;
}

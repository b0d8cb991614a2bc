/*  pt_test_db — what the unit tests that run against a real PostgreSQL share:
    their environment, a fresh public schema on PUENTE_TEST_DB (a THROWAWAY
    database), a migrated store, the broker's clock and a scalar query on a raw
    connection. Header-only, like cu_main.h,
    because unit tests do not link tests/lib.
*/
#ifndef PT_TEST_DB_H
#define PT_TEST_DB_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "store.h"

/* Milliseconds since the Unix epoch (CLOCK_REALTIME), as pt_now_ms. */
static inline int64_t pt_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* First column of the first row of sql on conn as a number, or -1 (no row, NULL
   or an error). */
static inline long long pt_test_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    long long v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0))
        v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* The environment of such a test: PUENTE_TEST_DB (required; `who` fails with
   how to set it when it is not) and PUENTE_SQL_DIR (default broker/sql). 0, or
   1 (the test's exit status) when PUENTE_TEST_DB is missing. */
static inline int pt_test_db_env(const char *who, const char **conninfo, const char **sql_dir)
{
    *conninfo = getenv("PUENTE_TEST_DB");
    if (!*conninfo || !**conninfo) {
        fprintf(stderr,
                "%s: FAIL: PUENTE_TEST_DB is not set. It must be a libpq connection string to "
                "a THROWAWAY database, e.g.\n  export PUENTE_TEST_DB=$(tests/lib/pgcluster.sh "
                "start $(mktemp -d) 55433 | tail -1)\n",
                who);
        return 1;
    }
    *sql_dir = getenv("PUENTE_SQL_DIR");
    if (!*sql_dir || !**sql_dir)
        *sql_dir = "broker/sql";
    return 0;
}

/* Connects *raw to conninfo (a superuser, for the checks the API cannot make)
   and recreates the public schema empty. 0, or -1 with the reason on stderr
   after `who` (*raw is then NULL). */
static inline int pt_test_fresh_schema(const char *conninfo, PGconn **raw, const char *who)
{
    *raw = PQconnectdb(conninfo);
    if (PQstatus(*raw) != CONNECTION_OK) {
        fprintf(stderr, "%s: cannot connect to PUENTE_TEST_DB: %s", who, PQerrorMessage(*raw));
        goto error;
    }
    PQclear(PQexec(*raw, "SET client_min_messages = warning"));
    PGresult *res = PQexec(*raw, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        fprintf(stderr, "%s: cannot reset the schema: %s", who, PQerrorMessage(*raw));
        goto error;
    }
    return 0;

error:
    PQfinish(*raw);
    *raw = NULL;
    return -1;
}

/* A store on conninfo with every migration of sql_dir applied, or NULL with the
   reason on stderr after `who`. */
static inline pt_store_t *pt_test_store_migrated(const char *conninfo, const char *sql_dir,
                                                 const char *who)
{
    char err[256] = "";
    pt_store_t *store = pt_store_new(conninfo, err, sizeof err);
    if (!store || pt_store_migrate(store, sql_dir, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", who, err);
        pt_store_destroy(&store);
    }
    return store;
}

#endif

/*  ha_writer — the client side of `make ha-test` (tests/ha/ha_test.sh).

    Inserts rows 1, 2, 3 ... one transaction each through a libpq multi-host
    connection string (target_session_attrs=read-write) until SIGTERM or SIGINT.
    A failed transaction is retried on a new connection until it commits: the
    insert is idempotent (ON CONFLICT DO NOTHING on the primary key), so a commit
    whose answer was lost with the primary is neither lost nor doubled. A row
    counts as acknowledged only when its COMMIT returned success.

    At the end it reconnects, reads every row from the primary (and from each
    node that answers, to show what the standbys hold), and prints on stdout:
      committed=N retried=R outages=K failover_ms=MS lost=L in_doubt_present=D
    failover_ms is the longest outage: from the first failed transaction to the
    first one committed after it. Progress lines go to stderr. Exit 0 when no
    acknowledged row is missing, 1 when one is, 2 on usage or setup errors.

    usage: ha_writer CONNINFO
*/
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !s_stop)
        ;
}

/* Keeps the first line of a libpq message. */
static void s_trim(char *s)
{
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' '))
        s[--l] = '\0';
}

/* Connects, retrying every 50 ms for up to timeout_ms. NULL on timeout or stop. */
static PGconn *s_connect(const char *conninfo, double timeout_ms)
{
    double deadline = s_now_ms() + timeout_ms;
    char last[256] = "";
    for (;;) {
        PGconn *conn = PQconnectdb(conninfo);
        if (conn && PQstatus(conn) == CONNECTION_OK)
            return conn;
        if (conn) {
            snprintf(last, sizeof last, "%s", PQerrorMessage(conn));
            PQfinish(conn);
        }
        if (s_stop || s_now_ms() > deadline) {
            s_trim(last);
            fprintf(stderr, "ha_writer: cannot connect: %s\n", last);
            return NULL;
        }
        s_sleep_ms(50);
    }
}

/* Runs one parameterless command. 0 or -1 (the error is printed). */
static int s_command(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        s_trim(msg);
        fprintf(stderr, "ha_writer: %s: %s\n", sql, msg);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/* One transaction: the row with this id. 0 when COMMIT succeeded, -1 otherwise. */
static int s_insert(PGconn *conn, int64_t id, char *err, size_t err_len)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, id);
    const char *values[1] = {text};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO ha_rows (id) VALUES ($1::bigint) "
                                 "ON CONFLICT (id) DO NOTHING",
                                 1, NULL, values, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        snprintf(err, err_len, "%s", PQerrorMessage(conn));
        s_trim(err);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/* Marks in present[] (size cap) the ids the connected server holds. -1 on error. */
static long s_read_rows(PGconn *conn, uint8_t *present, int64_t cap)
{
    PGresult *res = PQexecParams(conn, "SELECT id FROM ha_rows", 0, NULL, NULL, NULL, NULL, 0);
    long n = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        n = PQntuples(res);
        for (long i = 0; i < n; i++) {
            int64_t id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
            if (id > 0 && id < cap)
                present[id] = 1;
        }
    } else {
        fprintf(stderr, "ha_writer: SELECT: %s", PQerrorMessage(conn));
    }
    PQclear(res);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ha_writer CONNINFO\n");
        return 2;
    }
    const char *conninfo = argv[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = 2;
    int64_t cap = 1 << 22;
    uint8_t *acked = calloc((size_t)cap, 1);
    uint8_t *present = calloc((size_t)cap, 1);
    PGconn *conn = NULL;
    if (!acked || !present)
        goto error;

    conn = s_connect(conninfo, 60000);
    if (!conn)
        goto error;
    if (s_command(conn, "CREATE TABLE IF NOT EXISTS ha_rows ("
                        " id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())") != 0 ||
        s_command(conn, "TRUNCATE ha_rows") != 0)
        goto error;

    int64_t committed = 0, retried = 0, outages = 0;
    double outage_start = 0, longest = 0;
    int64_t id = 1;
    fprintf(stderr, "ha_writer: writing\n");
    while (!s_stop && id < cap) {
        char err[256] = "";
        if (conn && s_insert(conn, id, err, sizeof err) == 0) {
            acked[id] = 1;
            committed++;
            if (outage_start > 0) {
                double ms = s_now_ms() - outage_start;
                if (ms > longest)
                    longest = ms;
                fprintf(stderr, "ha_writer: recovered after %.0f ms on %s:%s (row %" PRId64 ")\n", ms,
                        PQhost(conn), PQport(conn), id);
                outage_start = 0;
            }
            if (committed % 500 == 0)
                fprintf(stderr, "ha_writer: committed %" PRId64 "\n", committed);
            id++;
            continue;
        }
        /* The row is in flight: it may or may not have committed. Retry it on a
           new connection; the insert is idempotent. */
        retried++;
        if (outage_start == 0) {
            outage_start = s_now_ms();
            outages++;
            fprintf(stderr, "ha_writer: row %" PRId64 " failed: %s\n", id, err[0] ? err : "no connection");
        }
        if (conn)
            PQfinish(conn);
        conn = s_connect(conninfo, 120000);
        if (!conn && !s_stop) {
            fprintf(stderr, "ha_writer: no read-write server for 120 s\n");
            break;
        }
    }
    if (outage_start > 0) {
        fprintf(stderr, "ha_writer: stopped during an outage\n");
        longest = s_now_ms() - outage_start;
    }

    /* Verification on the primary: every acknowledged row must be there. */
    s_stop = 0;
    if (conn)
        PQfinish(conn);
    conn = s_connect(conninfo, 60000);
    if (!conn)
        goto error;
    long rows = s_read_rows(conn, present, cap);
    if (rows < 0)
        goto error;
    int64_t lost = 0, in_doubt = 0;
    for (int64_t i = 1; i < cap; i++) {
        if (acked[i] && !present[i]) {
            if (lost < 10)
                fprintf(stderr, "ha_writer: LOST acknowledged row %" PRId64 "\n", i);
            lost++;
        }
    }
    in_doubt = (int64_t)rows - committed;
    fprintf(stderr, "ha_writer: primary %s:%s holds %ld rows\n", PQhost(conn), PQport(conn), rows);
    printf("committed=%" PRId64 " retried=%" PRId64 " outages=%" PRId64 " failover_ms=%.0f lost=%" PRId64
           " in_doubt_present=%" PRId64 "\n",
           committed, retried, outages, longest, lost, in_doubt);
    fflush(stdout);
    rc = lost == 0 ? 0 : 1;

error:
    if (conn)
        PQfinish(conn);
    free(acked);
    free(present);
    return rc;
}

/*  puente audit verify / export — the one place outside broker/ that reads the
    database (DESIGN.md, Trust): an auditor must not have to trust the broker. It
    connects with the auditor's own libpq connection string, switches to the
    read-only role puente_auditor (006_audit_log.sql: SELECT only) and reads one
    REPEATABLE READ snapshot. This file only reads rows; every hash, proof and
    signature check is proto/pt_audit.c and proto/pt_merkle.c, the code the broker
    writes with. */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "envelope.pb-c.h"
#include "cli_progress.h"
#include "pt_audit.h"
#include "pt_merkle.h"

#define S_FETCH_ROWS "10000"

static uint64_t s_be64(const char *p)
{
    const unsigned char *b = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* A bigint column in binary format; 0 with *ok = 0 when NULL or malformed. */
static int64_t s_int(const PGresult *res, int row, int col, int *ok)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8) {
        *ok = 0;
        return 0;
    }
    return (int64_t)s_be64(PQgetvalue(res, row, col));
}

static const uint8_t *s_bin(const PGresult *res, int row, int col, size_t *len)
{
    *len = PQgetisnull(res, row, col) ? 0 : (size_t)PQgetlength(res, row, col);
    return PQgetisnull(res, row, col) ? NULL : (const uint8_t *)PQgetvalue(res, row, col);
}

static const char *s_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

typedef void(s_row_fn)(const PGresult *res, int row, void *arg);

/* The progress line of a verification (cli_progress.h): rows read so far, updated
   after each fetch. NULL: none. */
typedef struct {
    cli_progress_t *line;
    uint64_t rows;
} s_progress_t;

/* Runs sql through a binary cursor, S_FETCH_ROWS at a time, so a log of millions of
   rows never sits in memory as one result. 0 or -1 (printed). */
static int s_scan_progress(PGconn *conn, const char *sql, int n_params,
                           const char *const *params, s_row_fn *fn, void *arg,
                           s_progress_t *progress)
{
    char declare[2048];
    snprintf(declare, sizeof declare, "DECLARE pt_scan BINARY NO SCROLL CURSOR FOR %s", sql);
    PGresult *res = PQexecParams(conn, declare, n_params, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "puente audit: %s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    for (;;) {
        res = PQexecParams(conn, "FETCH " S_FETCH_ROWS " FROM pt_scan", 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "puente audit: %s", PQerrorMessage(conn));
            PQclear(res);
            return -1;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n; i++)
            fn(res, i, arg);
        PQclear(res);
        if (progress) {
            progress->rows += (uint64_t)n;
            cli_progress_update(progress->line, progress->rows);
        }
        if (n == 0)
            break;
    }
    res = PQexec(conn, "CLOSE pt_scan");
    PQclear(res);
    return 0;
}

static int s_scan(PGconn *conn, const char *sql, int n_params, const char *const *params,
                  s_row_fn *fn, void *arg)
{
    return s_scan_progress(conn, sql, n_params, params, fn, arg, NULL);
}

/* Connects, takes the read-only role and opens one consistent snapshot. */
static PGconn *s_open(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "puente audit: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *res = PQexec(conn, "SET ROLE puente_auditor");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fprintf(stderr, "puente audit: warning: cannot SET ROLE puente_auditor (%s); reading "
                        "with the login role, read-only\n",
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                    : "?");
    PQclear(res);
    res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "puente audit: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

/* --- verify --db ------------------------------------------------------------------------ */

static void s_key_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t len;
    const uint8_t *pub = s_bin(res, row, 1, &len);
    int64_t from = s_int(res, row, 2, &ok);
    int64_t until = PQgetisnull(res, row, 3) ? 0 : s_int(res, row, 3, &ok);
    int64_t revoked = PQgetisnull(res, row, 4) ? 0 : s_int(res, row, 4, &ok);
    pt_audit_verifier_key_set(arg, s_text(res, row, 0), pub, len, from, until, revoked);
}

static void s_message_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t id_len, sha_len, env_len;
    const uint8_t *id = s_bin(res, row, 0, &id_len);
    int64_t stored = s_int(res, row, 3, &ok);
    const uint8_t *sha = s_bin(res, row, 4, &sha_len);
    const uint8_t *env = s_bin(res, row, 5, &env_len);
    pt_audit_verifier_message(arg, id, id_len, s_text(res, row, 1), s_text(res, row, 2), stored,
                              sha, sha_len, env, env_len);
}

static void s_event_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t id_len, detail_len, prev_len, hash_len;
    int64_t event_id = s_int(res, row, 0, &ok);
    pt_trail_event_t ev = {.case_token = s_text(res, row, 1),
                           .seq = (uint64_t)s_int(res, row, 2, &ok),
                           .kind = s_text(res, row, 3),
                           .at_ms = s_int(res, row, 4, &ok),
                           .actor = s_text(res, row, 5),
                           .counterparty = s_text(res, row, 6),
                           .message_type = s_text(res, row, 7)};
    const uint8_t *mid = s_bin(res, row, 8, &id_len);
    ev.message_id = id_len == 16 ? mid : NULL;
    ev.detail = s_bin(res, row, 9, &detail_len);
    ev.detail_len = detail_len;
    const uint8_t *prev = s_bin(res, row, 10, &prev_len);
    const uint8_t *hash = s_bin(res, row, 11, &hash_len);
    pt_audit_verifier_event(arg, event_id, &ev, prev, prev_len, hash, hash_len);
}

static void s_checkpoint_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t root_len, signer_len, sig_len, prev_len;
    int64_t size = s_int(res, row, 0, &ok);
    const uint8_t *root = s_bin(res, row, 1, &root_len);
    int64_t at = s_int(res, row, 2, &ok);
    const uint8_t *signer = s_bin(res, row, 3, &signer_len);
    const uint8_t *sig = s_bin(res, row, 4, &sig_len);
    int64_t seq = PQgetisnull(res, row, 5) ? 0 : s_int(res, row, 5, &ok);
    const uint8_t *prev = s_bin(res, row, 6, &prev_len);
    pt_audit_verifier_checkpoint2(arg, seq > 0 ? (uint64_t)seq : 0, (uint64_t)size, root,
                                  root_len, at, prev, prev_len, signer, signer_len, sig, sig_len);
}

static void s_leaf_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t len;
    int64_t index = s_int(res, row, 0, &ok);
    int64_t event_id = s_int(res, row, 1, &ok);
    const uint8_t *leaf = s_bin(res, row, 2, &len);
    pt_audit_verifier_leaf(arg, (uint64_t)index, event_id, leaf, len);
}

static void s_head_row(const PGresult *res, int row, void *arg)
{
    int ok = 1;
    size_t len;
    int64_t size = s_int(res, row, 0, &ok);
    const uint8_t *frontier = s_bin(res, row, 1, &len);
    pt_audit_verifier_head(arg, (uint64_t)size, frontier, len);
}

static const char *const s_queries[] = {
    /* The whole key history with revocations (008_key_windows.sql). */
    "SELECT org_id, sign_public, pt_ts_to_ms(valid_from), pt_ts_to_ms(valid_until), "
    "pt_ts_to_ms(revoked_at) FROM org_keys ORDER BY key_set_id",
    "SELECT message_id, sender, case_token, pt_ts_to_ms(stored_at), header_sha256, envelope "
    "FROM messages ORDER BY seq",
    "SELECT event_id, case_token, seq, kind, at_ms, actor, counterparty, message_type, "
    "message_id, detail, prev_hash, hash FROM case_events ORDER BY case_token COLLATE \"C\", seq, "
    "event_id",
    /* Version 1 rows (seq NULL, before 013) first, then the chain in seq order. */
    "SELECT tree_size, root, at_ms, signer, signature, seq, prev_hash FROM checkpoints "
    "ORDER BY seq NULLS FIRST, tree_size",
    "SELECT leaf_index, event_id, leaf_hash FROM audit_log ORDER BY leaf_index",
    "SELECT size, frontier FROM audit_head",
};

/* The rows the scans will read, in the same snapshot (only when a progress line
   is shown: counting costs a pass over the tables). 0 when unknown. */
static uint64_t s_rows_total(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT (SELECT count(*) FROM org_keys) + "
                                 "(SELECT count(*) FROM messages) + (SELECT count(*) FROM "
                                 "case_events) + (SELECT count(*) FROM checkpoints) + "
                                 "(SELECT size FROM audit_head) + 1");
    uint64_t total = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        total = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return total;
}

/* Reads everything into v in the verifier's order. 0 or -1 (printed). */
int cli_audit_verify_db(const char *conninfo, pt_audit_verifier_t *v, int progress)
{
    static const char *const phases[] = {"verify: keys", "verify: messages", "verify: events",
                                         "verify: checkpoints", "verify: leaves", "verify: head"};
    PGconn *conn = s_open(conninfo);
    if (!conn)
        return -1;
    s_row_fn *fns[] = {s_key_row, s_message_row, s_event_row, s_checkpoint_row, s_leaf_row,
                       s_head_row};
    s_progress_t line = {0};
    if (progress)
        line.line = cli_progress_new(phases[0], s_rows_total(conn), stderr, 1, NULL, NULL);
    int rc = 0;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0] && rc == 0; i++) {
        cli_progress_phase(line.line, phases[i]);
        rc = s_scan_progress(conn, s_queries[i], 0, NULL, fns[i], v, line.line ? &line : NULL);
    }
    cli_progress_done(&line.line);
    if (rc == 0)
        pt_audit_verifier_finish(v);
    PQfinish(conn);
    return rc;
}

/* Prints the verifier's result (table or JSON). Returns the exit code. */
int cli_audit_report(pt_audit_verifier_t *v, int json, double seconds)
{
    uint64_t events, leaves, checkpoints, messages;
    pt_merkle_hash_t root;
    char root_hex[65];
    pt_audit_verifier_totals(v, &events, &leaves, &checkpoints, &messages, root);
    pt_hex(root, 32, root_hex);
    size_t n = pt_audit_verifier_count(v);
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_boolean(n == 0));
        json_object_set_new(doc, "events", json_integer((json_int_t)events));
        json_object_set_new(doc, "leaves", json_integer((json_int_t)leaves));
        json_object_set_new(doc, "checkpoints", json_integer((json_int_t)checkpoints));
        json_object_set_new(doc, "messages", json_integer((json_int_t)messages));
        json_object_set_new(doc, "root", json_string(root_hex));
        json_object_set_new(doc, "seconds", json_real(seconds));
        json_object_set_new(doc, "problems", json_integer((json_int_t)n));
        json_t *list = json_array();
        for (size_t i = 0; i < pt_audit_verifier_kept(v); i++) {
            const pt_audit_finding_t *f = pt_audit_verifier_finding(v, i);
            json_t *o = json_object();
            json_object_set_new(o, "table", json_string(f->table));
            json_object_set_new(o, "row", json_string(f->row));
            json_object_set_new(o, "case_token", f->case_token[0] ? json_string(f->case_token)
                                                                  : json_null());
            json_object_set_new(o, "seq", f->seq ? json_integer((json_int_t)f->seq) : json_null());
            json_object_set_new(o, "problem", json_string(f->problem));
            json_array_append_new(list, o);
        }
        json_object_set_new(doc, "findings", list);
        cli_print_json(doc, 0);
        json_decref(doc);
    } else {
        for (size_t i = 0; i < pt_audit_verifier_kept(v); i++) {
            const pt_audit_finding_t *f = pt_audit_verifier_finding(v, i);
            printf("FAIL %s row %s", f->table, f->row);
            if (f->case_token[0])
                printf(" case %s", f->case_token);
            if (f->seq)
                printf(" seq %llu", (unsigned long long)f->seq);
            printf(": %s\n", f->problem);
        }
        printf("%s: %llu events in %llu leaves, %llu checkpoints, %llu messages; root %s "
               "(%.2f s)%s\n",
               n == 0 ? "verified" : "NOT VERIFIED", (unsigned long long)events,
               (unsigned long long)leaves, (unsigned long long)checkpoints,
               (unsigned long long)messages, root_hex, seconds,
               n ? "" : "");
        if (n > pt_audit_verifier_kept(v))
            printf("... and %zu more problems\n", n - pt_audit_verifier_kept(v));
    }
    return n == 0 ? CLI_OK : CLI_TAMPERED;
}

/* --- export --case ------------------------------------------------------------------------ */

typedef struct {
    json_t *events;
    json_t *messages;
    int failed;
    /* The message being exported: one row per key set of its sender arrives
       (LEFT JOIN org_keys); the one whose key id the header names is kept. */
    json_t *last;                 /* borrowed from messages */
    uint8_t last_id[16];
    uint8_t last_key_id[32];
    int last_key_known;
} s_export_t;

static json_t *s_hex_json(const uint8_t *b, size_t n)
{
    char *hex = malloc(2 * n + 1);
    if (!hex)
        return json_null();
    pt_hex(b, n, hex);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static void s_export_event(const PGresult *res, int row, void *arg)
{
    s_export_t *x = arg;
    int ok = 1;
    size_t id_len, detail_len, prev_len, hash_len;
    json_t *o = json_object();
    json_object_set_new(o, "event_id", json_integer(s_int(res, row, 0, &ok)));
    json_object_set_new(o, "seq", json_integer(s_int(res, row, 2, &ok)));
    json_object_set_new(o, "kind", json_string(s_text(res, row, 3)));
    json_object_set_new(o, "at_ms", json_integer(s_int(res, row, 4, &ok)));
    json_object_set_new(o, "actor", json_string(s_text(res, row, 5)));
    json_object_set_new(o, "counterparty", json_string(s_text(res, row, 6)));
    json_object_set_new(o, "message_type", json_string(s_text(res, row, 7)));
    const uint8_t *mid = s_bin(res, row, 8, &id_len);
    json_object_set_new(o, "message_id", id_len == 16 ? s_hex_json(mid, 16) : json_null());
    const uint8_t *detail = s_bin(res, row, 9, &detail_len);
    json_object_set_new(o, "detail", s_hex_json(detail ? detail : (const uint8_t *)"", detail_len));
    const uint8_t *prev = s_bin(res, row, 10, &prev_len);
    const uint8_t *hash = s_bin(res, row, 11, &hash_len);
    json_object_set_new(o, "prev_hash", s_hex_json(prev ? prev : (const uint8_t *)"", prev_len));
    json_object_set_new(o, "hash", s_hex_json(hash ? hash : (const uint8_t *)"", hash_len));
    json_object_set_new(o, "leaf_index",
                        PQgetisnull(res, row, 12) ? json_null()
                                                  : json_integer(s_int(res, row, 12, &ok)));
    if (!ok)
        x->failed = 1;
    json_array_append_new(x->events, o);
}

/* Sets the message's sender_sign_public when pub is the key its header names. */
static void s_export_key(s_export_t *x, const uint8_t *pub, size_t pub_len)
{
    uint8_t id[32];
    if (!x->last || !x->last_key_known || !pub || pub_len != 32)
        return;
    pt_sha256(pub, 32, id);
    if (memcmp(id, x->last_key_id, 32) == 0)
        json_object_set_new(x->last, "sender_sign_public", s_hex_json(pub, pub_len));
}

static void s_export_message(const PGresult *res, int row, void *arg)
{
    s_export_t *x = arg;
    size_t id_len, env_len, pub_len;
    const uint8_t *id = s_bin(res, row, 0, &id_len);
    const uint8_t *env = s_bin(res, row, 2, &env_len);
    const uint8_t *pub = s_bin(res, row, 3, &pub_len);
    if (x->last && id_len == 16 && memcmp(id, x->last_id, 16) == 0) {
        s_export_key(x, pub, pub_len);   /* another key set of the same sender */
        return;
    }
    uint8_t *header = NULL, *sig = NULL;
    size_t header_len = 0, sig_len = 0;
    if (id_len != 16 ||
        pt_audit_envelope_header(env, env_len, &header, &header_len, &sig, &sig_len) != 0) {
        x->failed = 1;
        return;
    }
    Puente__V1__Header *h = puente__v1__header__unpack(NULL, header_len, header);
    x->last_key_known = h && h->sender_key_id.len == 32;
    if (x->last_key_known)
        memcpy(x->last_key_id, h->sender_key_id.data, 32);
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "message_id", s_hex_json(id, id_len));
    json_object_set_new(o, "sender", json_string(s_text(res, row, 1)));
    json_object_set_new(o, "header", s_hex_json(header, header_len));
    json_object_set_new(o, "header_signature", s_hex_json(sig, sig_len));
    json_object_set_new(o, "sender_sign_public", json_null());
    json_array_append_new(x->messages, o);
    x->last = o;
    memcpy(x->last_id, id, 16);
    s_export_key(x, pub, pub_len);
    free(header);
    free(sig);
}

typedef struct {
    uint8_t *leaves;
    size_t at;
} s_leaves_t;

static void s_leaf_collect(const PGresult *res, int row, void *arg)
{
    s_leaves_t *l = arg;
    size_t len;
    const uint8_t *leaf = s_bin(res, row, 0, &len);
    if (len == 32)
        memcpy(l->leaves + l->at * 32, leaf, 32);
    l->at++;
}

/* Builds the bundle of case_token (pt_audit.h, "Bundle"). NULL on failure (printed). */
void *cli_audit_export_db(const char *conninfo, const char *case_token,
                          const uint8_t *broker_public, uint64_t *need_size)
{
    *need_size = 0;
    PGconn *conn = s_open(conninfo);
    json_t *doc = NULL;
    s_export_t x = {.events = json_array(), .messages = json_array()};
    s_leaves_t leaves = {0};
    PGresult *res = NULL;
    if (!conn)
        goto done;
    const char *params[1] = {case_token};
    if (s_scan(conn,
               "SELECT e.event_id, e.case_token, e.seq, e.kind, e.at_ms, e.actor, e.counterparty, "
               "e.message_type, e.message_id, e.detail, e.prev_hash, e.hash, a.leaf_index "
               "FROM case_events e LEFT JOIN audit_log a ON a.event_id = e.event_id "
               "WHERE e.case_token = $1 ORDER BY e.seq",
               1, params, s_export_event, &x) != 0 ||
        s_scan(conn,
               "SELECT m.message_id, m.sender, m.envelope, k.sign_public FROM messages m "
               "LEFT JOIN org_keys k ON k.org_id = m.sender "
               "WHERE m.case_token = $1 ORDER BY m.seq, k.key_set_id",
               1, params, s_export_message, &x) != 0)
        goto done;
    if (x.failed || json_array_size(x.events) == 0) {
        fprintf(stderr, "puente audit export: %s\n",
                x.failed ? "a stored row does not decode" : "no events for this case");
        goto done;
    }
    /* The checkpoint must cover the case's last leaf, or that event has no proof. */
    uint64_t need = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(x.events, i, ev) {
        json_t *li = json_object_get(ev, "leaf_index");
        if (!json_is_integer(li)) {
            fprintf(stderr, "puente audit export: event seq %lld is not in the audit log\n",
                    (long long)json_integer_value(json_object_get(ev, "seq")));
            goto done;
        }
        if ((uint64_t)json_integer_value(li) + 1 > need)
            need = (uint64_t)json_integer_value(li) + 1;
    }
    res = PQexecParams(conn,
                       "SELECT tree_size, root, at_ms, signer, signature, seq, prev_hash "
                       "FROM checkpoints ORDER BY tree_size DESC LIMIT 1",
                       0, NULL, NULL, NULL, NULL, 1);
    int ok = 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        (uint64_t)s_int(res, 0, 0, &ok) < need) {
        *need_size = need;   /* the caller asks the broker for a covering checkpoint */
        goto done;
    }
    uint64_t size = (uint64_t)s_int(res, 0, 0, &ok);
    size_t root_len, signer_len, sig_len, prev_len;
    const uint8_t *root = s_bin(res, 0, 1, &root_len);
    const uint8_t *signer = s_bin(res, 0, 3, &signer_len);
    const uint8_t *sig = s_bin(res, 0, 4, &sig_len);
    int64_t seq = PQgetisnull(res, 0, 5) ? 0 : s_int(res, 0, 5, &ok);
    const uint8_t *prev = s_bin(res, 0, 6, &prev_len);
    if (root_len != 32 || signer_len != 32 || sig_len != 64 || (seq > 0 && prev_len != 32)) {
        fprintf(stderr, "puente audit export: the latest checkpoint row is malformed\n");
        goto done;
    }
    /* The broker's key: the operator's key file when there is one (the signer
       column is only what the database says). */
    if (broker_public) {
        pt_audit_checkpoint_t signed_cp = {.seq = seq > 0 ? (uint64_t)seq : 0,
                                           .tree_size = size,
                                           .at_ms = s_int(res, 0, 2, &ok)};
        memcpy(signed_cp.root, root, 32);
        if (seq > 0)
            memcpy(signed_cp.prev_hash, prev, 32);
        pt_sign_key_t *k = pt_sign_key_from_public(broker_public, 32);
        int valid = k && pt_audit_checkpoint2_verify(k, &signed_cp, sig, sig_len) == 0;
        pt_sign_key_destroy(&k);
        if (!valid) {
            fprintf(stderr, "puente audit export: the checkpoint of %llu leaves does not verify "
                            "with the broker's key file: refusing to export\n",
                    (unsigned long long)size);
            goto done;
        }
    }
    json_t *cp = json_object();
    if (seq > 0)
        json_object_set_new(cp, "seq", json_integer((json_int_t)seq));
    json_object_set_new(cp, "tree_size", json_integer((json_int_t)size));
    json_object_set_new(cp, "root", s_hex_json(root, root_len));
    json_object_set_new(cp, "at_ms", json_integer(s_int(res, 0, 2, &ok)));
    if (seq > 0)
        json_object_set_new(cp, "prev_hash", s_hex_json(prev, 32));
    json_object_set_new(cp, "signature", s_hex_json(sig, sig_len));
    json_t *broker_key = s_hex_json(broker_public ? broker_public : signer, 32);
    PQclear(res);
    res = NULL;
    /* Proofs need the leaves of the checkpoint's tree: O(size) once per export. */
    leaves.leaves = malloc(size ? size * 32 : 1);
    char limit[24];
    snprintf(limit, sizeof limit, "%llu", (unsigned long long)size);
    const char *lp[1] = {limit};
    if (!leaves.leaves ||
        s_scan(conn, "SELECT leaf_hash FROM audit_log WHERE leaf_index < $1::bigint ORDER BY leaf_index",
               1, lp, s_leaf_collect, &leaves) != 0 ||
        leaves.at != size) {
        fprintf(stderr, "puente audit export: the log holds fewer leaves than its checkpoint\n");
        json_decref(cp);
        json_decref(broker_key);
        goto done;
    }
    json_array_foreach(x.events, i, ev) {
        json_t *li = json_object_get(ev, "leaf_index");
        json_t *path = json_array();
        if (json_is_integer(li) && (uint64_t)json_integer_value(li) < size) {
            pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF];
            size_t n = 0;
            if (pt_merkle_inclusion_proof((const pt_merkle_hash_t *)leaves.leaves, size,
                                          (size_t)json_integer_value(li), proof, &n) == 0)
                for (size_t k = 0; k < n; k++)
                    json_array_append_new(path, s_hex_json(proof[k], 32));
        }
        json_object_set_new(ev, "inclusion", path);
    }
    doc = json_object();
    json_object_set_new(doc, "format", json_string(PT_AUDIT_BUNDLE_FORMAT));
    json_object_set_new(doc, "case_token", json_string(case_token));
    json_object_set_new(doc, "broker_sign_public", broker_key);
    json_object_set_new(doc, "checkpoint", cp);
    json_object_set_new(doc, "events", x.events);
    json_object_set_new(doc, "messages", x.messages);
    x.events = x.messages = NULL;
done:
    PQclear(res);
    free(leaves.leaves);
    json_decref(x.events);
    json_decref(x.messages);
    if (conn)
        PQfinish(conn);
    return doc;
}

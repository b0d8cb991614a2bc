/*  puente-primero — one process per organisation between a Primero v2 instance
    and Puente (README "Primero adapter").

    Outbound: every --poll-interval, GET /api/v2/cases?service_response_types=
    referral_to_other_country (paged) and send one referral.request per service
    row flagged "referral_to_other_country" whose service_implementing_agency is a
    Puente organisation id, unless the state file says it was sent already; then
    the transitions of known referrals/transfers, remote transfers (cases with
    status "transferred"), tracing requests (to the --focal-point organisations of
    their search_countries) and the follow-ups and closure of received returns
    (docs/primero.md). Every send goes through the SDK's durable outbox: the id is
    fixed and recorded in `sent` when queued, and polling goes on while the broker
    is away.
    Inbound: messages from pt_client_recv are mapped to Primero shape and POSTed
    or PATCHed into the local instance; the message is acked to Puente only after
    Primero answered 2xx (and the state file recorded it), otherwise it is kept
    and retried.

    Logs carry system ids (case ids, message ids, referral ids) and code-list
    values, never names or notes.
*/
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mapping.h"
#include "pt_crypto.h"
#include "puente.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"

#define S_MAX_REFERRALS 32
#define S_MAX_PENDING 64
#define S_MAX_RESPONSE (16 * 1024 * 1024)
#define S_PAGE_SIZE 100

typedef struct {
    const char *org;
    const char *broker;
    const char *keys;
    const char *primero;
    const char *token_file;
    const char *codelists;
    const char *version;
    const char *state;
    int64_t poll_ms;
    int once;
    const char *webhook_listen;   /* HOST:PORT for Primero webhooks, NULL = none */
    const char *webhook_key_file; /* the api_key Primero sends as x-api-key */
    const char *outbox;           /* the SDK outbox's state file, NULL = <state>.outbox */
} s_opts_t;

typedef struct {
    s_opts_t opts;
    char token[1024];
    pt_primero_codelists_t *lists;
    sqlite3 *db;
    pt_client_t *client;  /* receives */
    pt_outbox_t *outbox;  /* sends: durable, ids fixed when queued */
    const char *focal[32]; /* --focal-point CC=ORG[+ORG...] */
    size_t n_focal;
    CURL *curl;
    pt_message_t *pending[S_MAX_PENDING];
    size_t n_pending;
} s_app_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static const char *s_org_for_log = "?";

static void s_log(const char *fmt, ...)
{
    char when[40];
    puente_time_format((int64_t) time(NULL) * 1000, when, sizeof when);
    fprintf(stderr, "%s puente-primero[%s] ", when, s_org_for_log);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* --- state file --------------------------------------------------------------- */

static int s_db_open(s_app_t *app)
{
    if (sqlite3_open(app->opts.state, &app->db) != SQLITE_OK) {
        s_log("state %s: %s", app->opts.state, app->db ? sqlite3_errmsg(app->db) : "cannot open");
        return -1;
    }
    const char *schema =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS sent (ref TEXT PRIMARY KEY, message_type TEXT NOT NULL,"
        "  recipient TEXT NOT NULL, message_id TEXT, outcome TEXT NOT NULL, at_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS received (message_id TEXT PRIMARY KEY,"
        "  message_type TEXT NOT NULL, at_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS links (puente_ref TEXT PRIMARY KEY, record_id TEXT NOT NULL,"
        "  case_token TEXT NOT NULL);"
        /* The Puente thread of each referral/transfer this adapter sent ('out') or
           received ('in'): what a later transition answers or revokes. */
        "CREATE TABLE IF NOT EXISTS threads (puente_ref TEXT PRIMARY KEY,"
        "  message_type TEXT NOT NULL, peer TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        "  message_id TEXT NOT NULL, case_token TEXT NOT NULL, direction TEXT NOT NULL);";
    char *err = NULL;
    if (sqlite3_exec(app->db, schema, NULL, NULL, &err) != SQLITE_OK) {
        s_log("state %s: %s", app->opts.state, err ? err : "schema failed");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* 1 if the query with one text parameter returns a row, 0 if not, -1 on error. */
static int s_db_exists(s_app_t *app, const char *sql, const char *param)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(app->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(stmt, 1, param, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Runs sql with up to 5 text parameters (NULL = SQL NULL). 0 or -1. */
static int s_db_exec(s_app_t *app, const char *sql, const char *const *params, int n)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(app->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        s_log("state: %s", sqlite3_errmsg(app->db));
        return -1;
    }
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(stmt, i + 1, params[i], -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        s_log("state: %s", sqlite3_errmsg(app->db));
        return -1;
    }
    return 0;
}

static char *s_db_link(s_app_t *app, const char *ref)
{
    sqlite3_stmt *stmt = NULL;
    char *record_id = NULL;
    if (sqlite3_prepare_v2(app->db, "SELECT record_id FROM links WHERE puente_ref = ?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(stmt, 1, ref, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        record_id = strdup((const char *) sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return record_id;
}

/* --- HTTP to Primero ---------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    int overflow;
} s_buf_t;

static size_t s_on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *buf = arg;
    size_t n = size * nmemb;
    if (buf->len + n > S_MAX_RESPONSE) {
        buf->overflow = 1;
        return 0;
    }
    char *grown = realloc(buf->data, buf->len + n + 1);
    if (!grown)
        return 0;
    buf->data = grown;
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

/* method path (appended to --primero) with an optional JSON body. Returns the HTTP
   status (0 when there was no answer) and the parsed JSON answer in *reply (may
   be NULL; caller decrefs). */
static long s_http(s_app_t *app, const char *method, const char *path, json_t *body,
                   json_t **reply)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", app->opts.primero, path);
    s_buf_t buf = {NULL, 0, 0};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *headers = NULL;
    char auth[1100];
    long status = 0;
    if (reply)
        *reply = NULL;
    if (app->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", app->token);
        headers = curl_slist_append(headers, auth);
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    if (text)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    CURL *curl = app->curl;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    if (text)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        s_log("primero %s %s: %s", method, path, curl_easy_strerror(rc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (reply && buf.data) {
        json_error_t jerr;
        *reply = json_loadb(buf.data, buf.len, 0, &jerr);
    }
done:
    curl_slist_free_all(headers);
    free(text);
    free(buf.data);
    return status;
}

/* --- outbound ------------------------------------------------------------------------ */

/* A case token is a pseudonym, not the local case number: a hash of org and case id. */
static void s_case_token(const char *org, const char *case_id, char out[40])
{
    uint8_t digest[PT_SHA256_BYTES];
    const void *parts[] = {"puente-primero:", org, ":", case_id};
    size_t lens[] = {15, strlen(org), 1, strlen(case_id)};
    memset(digest, 0, sizeof digest);
    pt_sha256_parts(parts, lens, 4, digest);
    strcpy(out, "PP-");
    for (int i = 0; i < 16; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", digest[i]);
}

static int s_uuid_set(const uint8_t id[PT_UUID_BYTES])
{
    for (int i = 0; i < PT_UUID_BYTES; i++)
        if (id[i])
            return 1;
    return 0;
}

/* Records the thread of a request sent or received. */
static void s_thread_put(s_app_t *app, const char *ref, const char *type, const char *peer,
                         const uint8_t *correlation, const char *message_id, const char *token,
                         const char *direction)
{
    char cid[PT_UUID_STR_BYTES];
    pt_uuid_format(correlation, cid);
    const char *params[] = {ref, type, peer, cid, message_id, token, direction};
    s_db_exec(app,
              "INSERT OR REPLACE INTO threads (puente_ref, message_type, peer, correlation_id,"
              " message_id, case_token, direction) VALUES (?, ?, ?, ?, ?, ?, ?)",
              params, 7);
}

/* The header's reason_code the broker's lifecycle rules read (README "Case
   lifecycles"): the reject or revoke reason of a response, else NULL. */
static const char *s_reason_of(const pt_primero_out_t *out)
{
    const ProtobufCMessageDescriptor *d = out->body->descriptor;
    const char *reason = NULL;
    if (d == &puente__v1__referral_rejection__descriptor)
        reason = ((const Puente__V1__ReferralRejection *) out->body)->rejected_reason;
    else if (d == &puente__v1__transfer_response__descriptor)
        reason = ((const Puente__V1__TransferResponse *) out->body)->rejected_reason;
    else if (d == &puente__v1__reintegration_closure__descriptor)
        reason = ((const Puente__V1__ReintegrationClosure *) out->body)->closure_reason;
    return reason && reason[0] ? reason : NULL;
}

/* Queues one mapped message for the recipients in the durable outbox (the SDK's
   pt_outbox: sealed, signed and committed with its message id before this
   returns; its thread submits in queue order whenever the broker is reachable),
   and records the id in `sent` under key in the same pass. correlation and
   causation (16 bytes) may be NULL (a new thread: its correlation id is the
   message id). 0 queued or refused for good (recorded; the id in id_out when
   queued, zero when refused), -1 try later (nothing recorded: no directory yet,
   or the state file could not be written). */
static int s_send_to(s_app_t *app, pt_primero_out_t *out, const char *key,
                     const char *const *to, size_t n_to, const char *token,
                     const uint8_t *correlation, const uint8_t *causation,
                     const char *reason_code, uint8_t id_out[PT_UUID_BYTES])
{
    if (id_out)
        memset(id_out, 0, PT_UUID_BYTES);
    if (pt_outbox_wait_directory(app->outbox, 0) != PT_CLIENT_OK) {
        s_log("send %s %s: no broker directory yet (will retry)", out->message_type, out->ref);
        return -1;
    }
    size_t len = protobuf_c_message_get_packed_size(out->body);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        return -1;
    protobuf_c_message_pack(out->body, bytes);
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    puente_consent_derive(out->body, &consent);
    pt_send_t msg = {.message_type = out->message_type,
                     .recipients = to,
                     .n_recipients = n_to,
                     .case_token = token,
                     .consent = &consent,
                     .service_type = out->service_type,
                     .correlation_id = correlation,
                     .causation_id = causation,
                     .body = bytes,
                     .body_len = len};
    if (!reason_code)
        reason_code = s_reason_of(out);
    msg.reason_code = reason_code;
    uint8_t mid[PT_UUID_BYTES];
    pt_client_result_t rc = pt_outbox_send(app->outbox, &msg, mid);
    free(bytes);
    char recipients[512] = "";
    for (size_t i = 0; i < n_to; i++)
        snprintf(recipients + strlen(recipients), sizeof recipients - strlen(recipients), "%s%s",
                 i ? "," : "", to[i]);
    if (rc == PT_CLIENT_OK) {
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(mid, id);
        s_log("queued %s %s to %s: message %s", out->message_type, out->ref, recipients, id);
        const char *params[] = {key, out->message_type, recipients, id, "queued"};
        s_db_exec(app,
                  "INSERT OR REPLACE INTO sent (ref, message_type, recipient, message_id, outcome,"
                  " at_ms) VALUES (?, ?, ?, ?, ?, strftime('%s','now') * 1000)",
                  params, 5);
        if (id_out)
            memcpy(id_out, mid, PT_UUID_BYTES);
        return 0;
    }
    if (rc == PT_CLIENT_INVALID) {
        /* The same message would be refused again (a recipient not in the broker's
           directory, a field the agreement does not allow): record it; an operator
           fixes the agreement or the record, then deletes the row to resend. */
        s_log("refused %s %s to %s: INVALID %s", out->message_type, out->ref, recipients,
              pt_outbox_error(app->outbox));
        const char *params[] = {key, out->message_type, recipients, "INVALID"};
        s_db_exec(app,
                  "INSERT OR REPLACE INTO sent (ref, message_type, recipient, message_id, outcome,"
                  " at_ms) VALUES (?, ?, ?, NULL, ?, strftime('%s','now') * 1000)",
                  params, 4);
        return 0;
    }
    s_log("send %s %s: %s (will retry)", out->message_type, out->ref, pt_outbox_error(app->outbox));
    return -1;
}

static int s_send(s_app_t *app, pt_primero_out_t *out, const char *key, const char *to,
                  const char *token, const uint8_t *correlation, const uint8_t *causation,
                  uint8_t id_out[PT_UUID_BYTES])
{
    const char *recipients[] = {to};
    return s_send_to(app, out, key, recipients, 1, token, correlation, causation, NULL, id_out);
}

/* The `sent` rows still "queued": the outbox knows whether the broker stored them
   ("stored") or refused them for good (the reject code's name) since. */
static void s_sent_refresh(s_app_t *app)
{
    char ids[64][PT_UUID_STR_BYTES];
    size_t n = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(app->db, "SELECT message_id FROM sent WHERE outcome = 'queued'"
                                    " AND message_id IS NOT NULL ORDER BY at_ms LIMIT 64",
                           -1, &stmt, NULL) != SQLITE_OK)
        return;
    while (n < 64 && sqlite3_step(stmt) == SQLITE_ROW) {
        const char *v = (const char *) sqlite3_column_text(stmt, 0);
        snprintf(ids[n++], PT_UUID_STR_BYTES, "%s", v ? v : "");
    }
    sqlite3_finalize(stmt);
    for (size_t i = 0; i < n; i++) {
        uint8_t uuid[PT_UUID_BYTES];
        if (pt_uuid_parse(ids[i], uuid) != 0)
            continue;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        pt_outbox_state_t st = pt_outbox_status(app->outbox, uuid, NULL, &rej);
        const char *outcome = st == PT_OUTBOX_SUBMITTED  ? "stored"
                              : st == PT_OUTBOX_REJECTED ? rej.code_name
                                                         : NULL;
        if (!outcome)
            continue;
        if (st == PT_OUTBOX_REJECTED)
            s_log("refused message %s: %s", ids[i], rej.code_name);
        const char *params[] = {outcome, ids[i]};
        s_db_exec(app, "UPDATE sent SET outcome = ? WHERE message_id = ?", params, 2);
    }
}

/* Sends one mapped referral. 0 sent or refused for good (recorded), -1 try later. */
static int s_send_referral(s_app_t *app, const json_t *record, pt_primero_out_t *out)
{
    const Puente__V1__ReferralRequest *r = (const Puente__V1__ReferralRequest *) out->body;
    if (r->n_services != 1 || !r->services[0]->implementing_agency[0])
        return 0;
    const char *to = r->services[0]->implementing_agency;
    const char *case_id = json_string_value(json_object_get(record, "id"));
    char token[40];
    s_case_token(app->opts.org, case_id ? case_id : out->ref, token);
    char ref[sizeof out->ref];
    snprintf(ref, sizeof ref, "%s", out->ref);
    uint8_t mid[PT_UUID_BYTES];
    int rc = s_send(app, out, ref, to, token, NULL, NULL, mid);
    if (rc == 0 && s_uuid_set(mid)) {
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(mid, id);
        s_thread_put(app, ref, "referral.request", to, mid, id, token, "out");
    }
    return rc;
}

/* --- transitions -------------------------------------------------------------------- */

#define S_MAX_THREADS 256

typedef struct {
    char ref[160], type[40], peer[64], correlation[40], message_id[40], token[64], direction[4];
    char record_id[160];
} s_thread_t;

/* A transition this side may originate: the recipient of a referral answers it
   (in_progress, accepted, rejected, done), its sender revokes it; a transfer's
   recipient accepts or rejects it. */
static int s_transition_ours(const s_thread_t *t, const char *status)
{
    int referral = strcmp(t->type, "referral.request") == 0;
    if (strcmp(t->direction, "out") == 0)
        return strcmp(status, "revoked") == 0; /* a referral's or a transfer's sender */
    if (!referral)
        return strcmp(status, "accepted") == 0 || strcmp(status, "rejected") == 0;
    return strcmp(status, "in_progress") == 0 || strcmp(status, "accepted") == 0
           || strcmp(status, "rejected") == 0 || strcmp(status, "done") == 0;
}

/* The transitions of one thread's record in the local Primero
   (GET /api/v2/cases/:id/referrals or /transfers, as Primero v2 serves them):
   each new status this side may originate is mapped and sent into the thread. */
static void s_poll_thread(s_app_t *app, const s_thread_t *t)
{
    int referral = strcmp(t->type, "referral.request") == 0;
    /* The original ids: "<case id>#<service id>" (referral) or "<case id>" (transfer)
       in the sender's instance. */
    char original_record[160], original_service[160] = "";
    snprintf(original_record, sizeof original_record, "%.159s", t->ref);
    char *hash = strrchr(original_record, '#');
    if (hash) {
        snprintf(original_service, sizeof original_service, "%.159s", hash + 1);
        *hash = '\0';
    }
    const char *local = strcmp(t->direction, "in") == 0 ? t->record_id : original_record;
    if (!local[0])
        return;
    char *escaped = curl_easy_escape(app->curl, local, 0);
    char path[512];
    snprintf(path, sizeof path, "/api/v2/cases/%s/%s", escaped ? escaped : "",
             referral ? "referrals" : "transfers");
    curl_free(escaped);
    json_t *reply = NULL;
    long status = s_http(app, "GET", path, NULL, &reply);
    if (status < 200 || status > 299 || !reply) {
        if (status && status != 404)
            s_log("primero GET %s: HTTP %ld", path, status);
        json_decref(reply);
        return;
    }
    uint8_t correlation[PT_UUID_BYTES], causation[PT_UUID_BYTES];
    if (pt_uuid_parse(t->correlation, correlation) != 0
        || pt_uuid_parse(t->message_id, causation) != 0) {
        json_decref(reply);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(reply, "data"), i, row)
    {
        const char *row_status = json_string_value(json_object_get(row, "status"));
        const char *row_service = json_string_value(json_object_get(row, "service_record_id"));
        if (!row_status || !s_transition_ours(t, row_status))
            continue;
        /* On the sending side a case has a row per referred service: only ours. */
        if (strcmp(t->direction, "out") == 0 && referral
            && (!row_service || strcmp(row_service, original_service) != 0))
            continue;
        /* A sent transfer: only the remote transition to that peer. */
        const char *row_remote = json_string_value(json_object_get(row, "transitioned_to_remote"));
        if (strcmp(t->direction, "out") == 0 && !referral && row_remote
            && strcmp(row_remote, t->peer) != 0)
            continue;
        char key[256];
        snprintf(key, sizeof key, "transition:%.159s:%.40s", t->ref, row_status);
        if (s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", key) != 0)
            continue;
        /* Answer in the sender's terms: its record and service ids name the referral. */
        json_t *copy = json_deep_copy(row);
        json_object_set_new(copy, "type", json_string(referral ? "Referral" : "Transfer"));
        json_object_set_new(copy, "record_id", json_string(original_record));
        if (referral)
            json_object_set_new(copy, "service_record_id", json_string(original_service));
        pt_primero_out_t out;
        char err[PT_PRIMERO_ERR_BYTES];
        if (pt_primero_transition_to_puente(app->lists, copy, app->opts.org, &out, err,
                                            sizeof err) != 0) {
            s_log("transition %s %s not sent: %s", t->ref, row_status, err);
            json_decref(copy);
            continue;
        }
        json_decref(copy);
        s_send(app, &out, key, t->peer, t->token, correlation, causation, NULL);
        pt_primero_out_clear(&out);
    }
    json_decref(reply);
}

/* Polls the transitions of every referral and transfer thread this adapter knows. */
static void s_poll_transitions(s_app_t *app)
{
    static s_thread_t threads[S_MAX_THREADS];
    size_t n = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(app->db,
                           "SELECT t.puente_ref, t.message_type, t.peer, t.correlation_id,"
                           " t.message_id, t.case_token, t.direction, COALESCE(l.record_id, '')"
                           " FROM threads t LEFT JOIN links l ON l.puente_ref = t.puente_ref"
                           " WHERE t.message_type IN ('referral.request', 'transfer.request')"
                           " ORDER BY t.rowid",
                           -1, &stmt, NULL) != SQLITE_OK)
        return;
    /* Read first, then talk HTTP: no statement stays open across the sends. */
    while (n < S_MAX_THREADS && sqlite3_step(stmt) == SQLITE_ROW) {
        s_thread_t *t = &threads[n++];
        char *fields[] = {t->ref, t->type, t->peer, t->correlation, t->message_id, t->token,
                          t->direction, t->record_id};
        size_t caps[] = {sizeof t->ref, sizeof t->type, sizeof t->peer, sizeof t->correlation,
                         sizeof t->message_id, sizeof t->token, sizeof t->direction,
                         sizeof t->record_id};
        for (int k = 0; k < 8; k++) {
            const char *v = (const char *) sqlite3_column_text(stmt, k);
            snprintf(fields[k], caps[k], "%s", v ? v : "");
        }
    }
    sqlite3_finalize(stmt);
    for (size_t i = 0; i < n && !s_stop; i++)
        s_poll_thread(app, &threads[i]);
}

static void s_poll_transitions(s_app_t *app);

/* Sends the cross-border referrals of one case record not sent before. */
static void s_case_referrals(s_app_t *app, const json_t *record)
{
    pt_primero_out_t out[S_MAX_REFERRALS];
    char err[PT_PRIMERO_ERR_BYTES];
    int n = pt_primero_case_to_referrals(app->lists, record, app->opts.org, NULL, out,
                                         S_MAX_REFERRALS, err, sizeof err);
    if (n < 0) {
        const char *id = json_string_value(json_object_get(record, "id"));
        s_log("case %s not sent: %s", id ? id : "?", err);
        return;
    }
    for (int k = 0; k < n; k++) {
        if (s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", out[k].ref) == 0)
            s_send_referral(app, record, &out[k]);
        pt_primero_out_clear(&out[k]);
    }
}

/* --- webhooks from Primero ------------------------------------------------------------- */

/* Primero's WebhookConnector POSTs {"data": {"record_id", "record_type", ...fields}}
   on case.create and case.update, with its api_key in an "x-api-key" header. The
   HTTP threads only queue the record; the main loop handles it like a polled one. */
#define S_WEBHOOK_QUEUE 256
#define S_WEBHOOK_MAX_BODY (1024 * 1024)

typedef struct {
    char *buf;
    size_t len;
    int too_large;
} s_hook_upload_t;

static pthread_mutex_t s_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *s_hook_queue[S_WEBHOOK_QUEUE];
static size_t s_hook_n;
static char s_hook_key[1024];

static enum MHD_Result s_hook_reply(struct MHD_Connection *c, unsigned int status,
                                    const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Constant time in the length of the expected key. */
static int s_key_ok(const char *given)
{
    size_t want = strlen(s_hook_key);
    if (!given || strlen(given) != want || want == 0)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char) (given[i] ^ s_hook_key[i]);
    return diff == 0;
}

static enum MHD_Result s_hook_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *data,
                                      size_t *size, void **con_cls)
{
    (void) cls;
    (void) version;
    s_hook_upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (u->len + *size > S_WEBHOOK_MAX_BODY)
            u->too_large = 1;
        if (!u->too_large) {
            char *grown = realloc(u->buf, u->len + *size + 1);
            if (!grown)
                return MHD_NO;
            u->buf = grown;
            memcpy(u->buf + u->len, data, *size);
            u->len += *size;
            u->buf[u->len] = '\0';
        }
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/primero/webhook") != 0)
        return s_hook_reply(c, 404, "{\"error\":\"not found\"}");
    if (strcmp(method, "POST") != 0)
        return s_hook_reply(c, 405, "{\"error\":\"POST only\"}");
    if (!s_key_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key")))
        return s_hook_reply(c, 401, "{\"error\":\"bad or missing x-api-key\"}");
    if (u->too_large)
        return s_hook_reply(c, 413, "{\"error\":\"body too large\"}");
    json_error_t jerr;
    json_t *root = u->buf ? json_loadb(u->buf, u->len, 0, &jerr) : NULL;
    json_t *record = json_object_get(root, "data");
    const char *type = json_string_value(json_object_get(record, "record_type"));
    if (!json_is_object(record) || (type && strcmp(type, "case") != 0)) {
        json_decref(root);
        return s_hook_reply(c, 400, "{\"error\":\"expected {data: {record_id, record_type: case}}\"}");
    }
    json_t *copy = json_deep_copy(record);
    json_decref(root);
    /* The webhook names the record "record_id"; the API's records call it "id". */
    if (copy && !json_object_get(copy, "id") && json_object_get(copy, "record_id"))
        json_object_set(copy, "id", json_object_get(copy, "record_id"));
    int queued = 0;
    pthread_mutex_lock(&s_hook_lock);
    if (copy && s_hook_n < S_WEBHOOK_QUEUE) {
        s_hook_queue[s_hook_n++] = copy;
        queued = 1;
    }
    pthread_mutex_unlock(&s_hook_lock);
    if (!queued) {
        json_decref(copy);
        return s_hook_reply(c, 503, "{\"error\":\"queue full, retry later\"}");
    }
    return s_hook_reply(c, 202, "{\"status\":\"queued\"}");
}

static void s_hook_done(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) c;
    (void) toe;
    s_hook_upload_t *u = *con_cls;
    if (u)
        free(u->buf);
    free(u);
    *con_cls = NULL;
}

/* Handles the queued webhook records. 1 if there were any. */
static int s_hook_drain(s_app_t *app)
{
    json_t *batch[S_WEBHOOK_QUEUE];
    pthread_mutex_lock(&s_hook_lock);
    size_t n = s_hook_n;
    memcpy(batch, s_hook_queue, n * sizeof batch[0]);
    s_hook_n = 0;
    pthread_mutex_unlock(&s_hook_lock);
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(batch[i], "id"));
        s_log("webhook: case %s", id ? id : "?");
        s_case_referrals(app, batch[i]);
        json_decref(batch[i]);
    }
    /* A case update may be a transition on a referral or transfer: look now. */
    if (n)
        s_poll_transitions(app);
    return n > 0;
}

/* GET path (paged, per S_PAGE_SIZE) and calls each(app, record) on every record
   of "data". An HTTP error is logged, a 404 only unless quiet_404 (a Primero
   without that resource). */
static void s_poll_pages(s_app_t *app, const char *path_fmt,
                         void (*each)(s_app_t *, const json_t *), int quiet_404)
{
    for (int page = 1; page < 10000 && !s_stop; page++) {
        char path[256];
        snprintf(path, sizeof path, path_fmt, page, S_PAGE_SIZE);
        json_t *reply = NULL;
        long status = s_http(app, "GET", path, NULL, &reply);
        if (status < 200 || status > 299 || !reply) {
            if (status && (status != 404 || !quiet_404))
                s_log("primero GET %s: HTTP %ld", path, status);
            json_decref(reply);
            return;
        }
        json_t *records = json_object_get(reply, "data");
        size_t i;
        json_t *record;
        json_array_foreach(records, i, record)
            each(app, record);
        size_t got = json_array_size(records);
        json_int_t total = json_integer_value(
            json_object_get(json_object_get(reply, "metadata"), "total"));
        json_decref(reply);
        if (got < S_PAGE_SIZE || (json_int_t) page * S_PAGE_SIZE >= total)
            return;
    }
}

/* One poll of the local Primero. */
static void s_poll(s_app_t *app)
{
    s_poll_pages(app,
                 "/api/v2/cases?service_response_types=referral_to_other_country&page=%d&per=%d",
                 s_case_referrals, 0);
}

/* A remotely transferred case (Primero's perform_remote_transfer sets status
   "transferred"): its Transfer transition in_progress whose transitioned_to_remote
   is a Puente organisation becomes a transfer.request to it, once. */
static void s_case_transfer(s_app_t *app, const json_t *record)
{
    const char *case_id = json_string_value(json_object_get(record, "id"));
    if (!case_id || s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", case_id) != 0)
        return;
    char *escaped = curl_easy_escape(app->curl, case_id, 0);
    char path[512];
    snprintf(path, sizeof path, "/api/v2/cases/%s/transfers", escaped ? escaped : "");
    curl_free(escaped);
    json_t *reply = NULL;
    long status = s_http(app, "GET", path, NULL, &reply);
    if (status < 200 || status > 299 || !reply) {
        json_decref(reply);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(reply, "data"), i, row)
    {
        const char *type = json_string_value(json_object_get(row, "type"));
        const char *row_status = json_string_value(json_object_get(row, "status"));
        const char *to = json_string_value(json_object_get(row, "transitioned_to_remote"));
        if ((type && strcmp(type, "Transfer") != 0) || !row_status
            || strcmp(row_status, "in_progress") != 0 || !to || !to[0]
            || !json_is_true(json_object_get(row, "remote")))
            continue;
        pt_primero_out_t out;
        char err[PT_PRIMERO_ERR_BYTES];
        if (pt_primero_case_to_transfer(app->lists, record, app->opts.org, &out, err,
                                        sizeof err) != 0) {
            s_log("case %s transfer not sent: %s", case_id, err);
            break;
        }
        char token[40];
        s_case_token(app->opts.org, case_id, token);
        uint8_t mid[PT_UUID_BYTES];
        if (s_send(app, &out, case_id, to, token, NULL, NULL, mid) == 0 && s_uuid_set(mid)) {
            char id[PT_UUID_STR_BYTES];
            pt_uuid_format(mid, id);
            s_thread_put(app, case_id, "transfer.request", to, mid, id, token, "out");
        }
        pt_primero_out_clear(&out);
        break; /* one remote transfer per case at a time */
    }
    json_decref(reply);
}

#define S_MAX_FOCAL 64

/* Appends the tracing focal points of country (from --focal-point CC=ORG[+ORG...])
   to names[n..], skipping ones already there. Returns the new count. */
static size_t s_focal_points(const s_app_t *app, const char *country,
                             char names[S_MAX_FOCAL][64], size_t n)
{
    size_t len = strlen(country);
    for (size_t i = 0; i < app->n_focal; i++) {
        const char *spec = app->focal[i];
        if (strncmp(spec, country, len) != 0 || spec[len] != '=')
            continue;
        for (const char *p = spec + len + 1; *p && n < S_MAX_FOCAL;) {
            const char *end = strchr(p, '+');
            size_t k = end ? (size_t) (end - p) : strlen(p);
            if (k && k < 64) {
                int dup = 0;
                for (size_t j = 0; j < n; j++)
                    dup |= strlen(names[j]) == k && memcmp(names[j], p, k) == 0;
                if (!dup) {
                    memcpy(names[n], p, k);
                    names[n++][k] = '\0';
                }
            }
            if (!end)
                break;
            p = end + 1;
        }
    }
    return n;
}

/* A tracing request with search_countries becomes a tracing.request to the
   tracing focal points of those countries, once. */
static void s_tracing_request(s_app_t *app, const json_t *record)
{
    const char *tr_id = json_string_value(json_object_get(record, "tracing_request_id"));
    const json_t *countries = json_object_get(record, "search_countries");
    if (!tr_id || !json_array_size(countries))
        return;
    char key[200];
    snprintf(key, sizeof key, "tracing:%.180s", tr_id);
    if (s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", key) != 0)
        return;
    static char names[S_MAX_FOCAL][64];
    const char *to[S_MAX_FOCAL];
    size_t n_to = 0;
    size_t i;
    const json_t *country;
    json_array_foreach(countries, i, country)
    {
        const char *cc = json_string_value(country);
        size_t before = n_to;
        if (cc)
            n_to = s_focal_points(app, cc, names, n_to);
        if (!cc || n_to == before) {
            s_log("tracing request %s not sent: no --focal-point for country %s", tr_id,
                  cc ? cc : "?");
            return;
        }
    }
    for (size_t k = 0; k < n_to; k++)
        to[k] = names[k];
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES];
    if (pt_primero_tracing_to_puente(app->lists, record, app->opts.org, &out, err, sizeof err)
        != 0) {
        s_log("tracing request %s not sent: %s", tr_id, err);
        return;
    }
    char token[40];
    s_case_token(app->opts.org, tr_id, token);
    uint8_t mid[PT_UUID_BYTES];
    if (s_send_to(app, &out, key, to, n_to, token, NULL, NULL, NULL, mid) == 0 && s_uuid_set(mid)) {
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(mid, id);
        s_thread_put(app, tr_id, "tracing.request", to[0], mid, id, token, "out");
    }
    pt_primero_out_clear(&out);
}

/* Follow-ups and closure of the cases this side received by a return notice:
   each new followup_subform_section row and the closure go to the organisation
   the threads table records for that return, into its thread. */
static void s_poll_returns(s_app_t *app)
{
    static s_thread_t threads[S_MAX_THREADS];
    size_t n = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(app->db,
                           "SELECT t.puente_ref, t.peer, t.correlation_id, t.message_id,"
                           " t.case_token, l.record_id FROM threads t JOIN links l"
                           " ON l.puente_ref = t.puente_ref WHERE t.message_type = 'return.notice'"
                           " AND t.direction = 'in' ORDER BY t.rowid",
                           -1, &stmt, NULL) != SQLITE_OK)
        return;
    while (n < S_MAX_THREADS && sqlite3_step(stmt) == SQLITE_ROW) {
        s_thread_t *t = &threads[n++];
        char *fields[] = {t->ref, t->peer, t->correlation, t->message_id, t->token, t->record_id};
        size_t caps[] = {sizeof t->ref, sizeof t->peer, sizeof t->correlation,
                         sizeof t->message_id, sizeof t->token, sizeof t->record_id};
        for (int k = 0; k < 6; k++) {
            const char *v = (const char *) sqlite3_column_text(stmt, k);
            snprintf(fields[k], caps[k], "%s", v ? v : "");
        }
    }
    sqlite3_finalize(stmt);
    for (size_t i = 0; i < n && !s_stop; i++) {
        const s_thread_t *t = &threads[i];
        uint8_t correlation[PT_UUID_BYTES], causation[PT_UUID_BYTES];
        if (pt_uuid_parse(t->correlation, correlation) != 0
            || pt_uuid_parse(t->message_id, causation) != 0)
            continue;
        char *escaped = curl_easy_escape(app->curl, t->record_id, 0);
        char path[512];
        snprintf(path, sizeof path, "/api/v2/cases/%s", escaped ? escaped : "");
        curl_free(escaped);
        json_t *reply = NULL;
        long status = s_http(app, "GET", path, NULL, &reply);
        json_t *record = json_object_get(reply, "data");
        if (status < 200 || status > 299 || !json_is_object(record)) {
            json_decref(reply);
            continue;
        }
        /* Answer in the sender's terms: the return id it sent. */
        json_object_set_new(record, "puente_return_id", json_string(t->ref));
        json_t *rows = json_object_get(record, "followup_subform_section");
        for (size_t r = 0; r < json_array_size(rows); r++) {
            const char *row_id = json_string_value(json_object_get(json_array_get(rows, r),
                                                                   "unique_id"));
            /* A row is sent once, keyed by its id: a row without one (or with one
               too long to key on whole) could be sent twice or skipped when rows
               move, so it is not sent. */
            if (!row_id || !row_id[0] || strlen(row_id) > 100) {
                s_log("follow-up %zu of return %s not sent: its unique_id is missing or "
                      "longer than 100 bytes",
                      r, t->ref);
                continue;
            }
            char key[300];
            snprintf(key, sizeof key, "followup:%.160s:%s", t->ref, row_id);
            if (s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", key) != 0)
                continue;
            pt_primero_out_t out;
            char err[PT_PRIMERO_ERR_BYTES];
            if (pt_primero_followup_to_puente(app->lists, record, r, app->opts.org, &out, err,
                                              sizeof err) != 0) {
                s_log("follow-up %s not sent: %s", key, err);
                continue;
            }
            s_send(app, &out, key, t->peer, t->token, correlation, causation, NULL);
            pt_primero_out_clear(&out);
        }
        const char *case_status = json_string_value(json_object_get(record, "status"));
        char key[300];
        snprintf(key, sizeof key, "closure:%.200s", t->ref);
        if (case_status && strcmp(case_status, "closed") == 0
            && json_object_get(record, "closure_reason")
            && s_db_exists(app, "SELECT 1 FROM sent WHERE ref = ?", key) == 0) {
            pt_primero_out_t out;
            char err[PT_PRIMERO_ERR_BYTES];
            if (pt_primero_closure_to_puente(app->lists, record, app->opts.org, &out, err,
                                             sizeof err) != 0)
                s_log("closure %s not sent: %s", t->ref, err);
            else
                s_send(app, &out, key, t->peer, t->token, correlation, causation, NULL);
            pt_primero_out_clear(&out);
        }
        json_decref(reply);
    }
}

/* The other record kinds of one poll: remote transfers, tracing requests, and
   follow-ups and closures of received returns. */
static void s_poll_more(s_app_t *app)
{
    s_poll_pages(app, "/api/v2/cases?status=transferred&page=%d&per=%d", s_case_transfer, 1);
    if (app->n_focal)
        s_poll_pages(app, "/api/v2/tracing_requests?page=%d&per=%d", s_tracing_request, 1);
    s_poll_returns(app);
    s_sent_refresh(app);
}

/* --- inbound ------------------------------------------------------------------------------ */

typedef enum { S_DONE, S_RETRY, S_STUCK } s_outcome_t;

/* Puts one received message into the local Primero. */
static s_outcome_t s_deliver(s_app_t *app, pt_message_t *msg)
{
    const Puente__V1__Header *header = pt_message_header(msg);
    const pt_type_t *type = pt_message_type(msg);
    char id[PT_UUID_STR_BYTES];
    pt_uuid_format(pt_message_id(msg), id);
    if (s_db_exists(app, "SELECT 1 FROM received WHERE message_id = ?", id) == 1)
        return S_DONE; /* posted before a crash, not acked yet: do not post twice */
    char err[PT_PRIMERO_ERR_BYTES];
    json_t *data = pt_primero_from_puente(app->lists, type->name, pt_message_body(msg), err,
                                          sizeof err);
    if (!data) {
        s_log("message %s (%s) cannot be mapped, left unacknowledged: %s", id, type->name, err);
        return S_STUCK;
    }
    char path[1024];
    const char *method = "POST";
    const char *ref = NULL;
    char *record_id = NULL;
    if (strcmp(type->name, "referral.request") == 0 || strcmp(type->name, "transfer.request") == 0) {
        snprintf(path, sizeof path, "/api/v2/cases");
        ref = json_string_value(json_object_get(
            data, type->name[0] == 'r' ? "puente_referral_id" : "puente_transfer_id"));
        json_object_set_new(data, "puente_case_token", json_string(header->case_token));
    } else if (strcmp(type->name, "return.notice") == 0) {
        snprintf(path, sizeof path, "/api/v2/cases");
        ref = json_string_value(json_object_get(data, "puente_return_id"));
        json_object_set_new(data, "puente_case_token", json_string(header->case_token));
    } else if (strcmp(type->name, "tracing.request") == 0) {
        snprintf(path, sizeof path, "/api/v2/tracing_requests");
        ref = json_string_value(json_object_get(data, "tracing_request_id"));
        json_object_set_new(data, "puente_case_token", json_string(header->case_token));
    } else if (json_object_get(data, "type")) {
        /* A transition: the case and the service row it answers are in the
           referral id this adapter sent; a remote transition has no id of its own
           in the sending instance, so the service row's id names it. */
        const char *record = json_string_value(json_object_get(data, "record_id"));
        const char *service = json_string_value(json_object_get(data, "service_record_id"));
        int referral = strcmp(json_string_value(json_object_get(data, "type")), "Referral") == 0;
        /* A revoke reaches the recipient: its own copy of the case (links). */
        char puente_ref[400];
        snprintf(puente_ref, sizeof puente_ref, "%s%s%s", record ? record : "",
                 referral && service ? "#" : "", referral && service ? service : "");
        record_id = s_db_link(app, puente_ref);
        if (record_id) {
            if (!referral)
                service = record_id;
            record = record_id;
        }
        char *escaped_record = curl_easy_escape(app->curl, record ? record : "", 0);
        char *escaped_sub = curl_easy_escape(app->curl, referral && service ? service : record, 0);
        snprintf(path, sizeof path, "/api/v2/cases/%s/%s/%s", escaped_record,
                 referral ? "referrals" : "transfers", escaped_sub);
        curl_free(escaped_record);
        curl_free(escaped_sub);
        method = "PATCH";
    } else {
        /* Return progress, follow-up or closure: onto the case created from that
           return (links), else the sender's own case (return_id = its case id). */
        const char *return_id = json_string_value(json_object_get(data, "puente_return_id"));
        record_id = return_id ? s_db_link(app, return_id) : NULL;
        char *escaped = curl_easy_escape(app->curl, record_id ? record_id : return_id ? return_id : "", 0);
        snprintf(path, sizeof path, "/api/v2/cases/%s", escaped ? escaped : "");
        curl_free(escaped);
        method = "PATCH";
    }
    json_t *body = json_pack("{s:O}", "data", data);
    json_t *reply = NULL;
    long status = s_http(app, method, path, body, &reply);
    json_decref(body);
    free(record_id);
    s_outcome_t outcome = S_RETRY;
    if (status >= 200 && status <= 299) {
        const char *params[] = {id, type->name};
        s_db_exec(app,
                  "INSERT OR IGNORE INTO received (message_id, message_type, at_ms)"
                  " VALUES (?, ?, strftime('%s','now') * 1000)",
                  params, 2);
        const char *new_id = json_string_value(json_object_get(json_object_get(reply, "data"), "id"));
        if (ref && new_id) {
            const char *link[] = {ref, new_id, header->case_token};
            s_db_exec(app,
                      "INSERT OR REPLACE INTO links (puente_ref, record_id, case_token)"
                      " VALUES (?, ?, ?)",
                      link, 3);
            if (header->correlation_id.len == PT_UUID_BYTES)
                s_thread_put(app, ref, type->name, header->sender, header->correlation_id.data,
                             id, header->case_token, "in");
        }
        s_log("posted message %s (%s) to primero: HTTP %ld", id, type->name, status);
        outcome = S_DONE;
    } else if (status) {
        s_log("primero %s %s for message %s: HTTP %ld (will retry)", method, path, id, status);
    }
    json_decref(reply);
    json_decref(data);
    return outcome;
}

/* Delivers the pending messages in order; acks each one Primero accepted. */
static void s_flush_pending(s_app_t *app)
{
    size_t kept = 0;
    for (size_t i = 0; i < app->n_pending; i++) {
        pt_message_t *msg = app->pending[i];
        s_outcome_t outcome = kept ? S_RETRY : s_deliver(app, msg);
        if (outcome == S_DONE) {
            if (pt_client_ack(app->client, pt_message_id(msg)) != PT_CLIENT_OK)
                s_log("ack: %s (the broker redelivers; the state file stops a second post)",
                      pt_client_error(app->client));
            pt_message_destroy(&msg);
        } else if (outcome == S_STUCK) {
            pt_message_destroy(&msg);
        } else {
            app->pending[kept++] = msg; /* keep order: later ones wait behind it */
        }
    }
    app->n_pending = kept;
}

/* --- main ------------------------------------------------------------------------------------ */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: puente-primero --org ORG --primero URL [options]\n"
            "  --org ORG                 organisation id this process acts for (MX-DIF)\n"
            "  --broker ENDPOINT[,...]   broker, or several comma-separated: moves to the next\n"
            "                            when one is lost (default %s)\n"
            "  --keys DIR                key directory (default %s)\n"
            "  --primero URL             base URL of the Primero instance (http://host:port)\n"
            "  --primero-token-file FILE bearer token for the Primero API\n"
            "  --codelists DIR           code lists (default adapters/primero/codelists)\n"
            "  --codelist-version V      code-list version (default v1)\n"
            "  --state FILE              SQLite state file (default puente-primero-ORG.db)\n"
            "  --poll-interval DURATION  Primero poll interval (default 60s; 500ms, 5m, ...)\n"
            "  --once                    one poll and one receive pass, then exit\n"
            "  --webhook-listen IP:PORT  also receive Primero webhooks (POST /primero/webhook)\n"
            "  --webhook-key-file FILE   the webhook's api_key (sent as x-api-key; required\n"
            "                            with --webhook-listen, mode 0600)\n"
            "  --focal-point CC=ORG[+ORG] tracing focal points of country CC (repeatable): a\n"
            "                            tracing request with search_countries goes to them\n"
            "  --outbox FILE             the durable outbox (default STATE.outbox)\n",
            PUENTE_DEFAULT_BROKER, PUENTE_DEFAULT_KEYS);
}

static int s_read_token(s_app_t *app)
{
    if (!app->opts.token_file)
        return 0;
    FILE *file = fopen(app->opts.token_file, "r");
    if (!file) {
        s_log("token file %s: %s", app->opts.token_file, strerror(errno));
        return -1;
    }
    if (!fgets(app->token, sizeof app->token, file))
        app->token[0] = '\0';
    fclose(file);
    app->token[strcspn(app->token, "\r\n")] = '\0';
    return 0;
}

/* Reads the webhook key and starts the webhook listener. 0 or -1 (logged). */
static int s_hook_start(s_app_t *app, struct MHD_Daemon **daemon)
{
    char host[64];
    const char *colon = strrchr(app->opts.webhook_listen, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t) port);
    if (!colon || port < 1 || port > 65535 || (size_t) (colon - app->opts.webhook_listen) >= sizeof host) {
        s_log("--webhook-listen: expected IPv4:PORT");
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int) (colon - app->opts.webhook_listen),
             app->opts.webhook_listen);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        s_log("--webhook-listen: %s is not an IPv4 address", host);
        return -1;
    }
    struct stat st;
    FILE *file = app->opts.webhook_key_file ? fopen(app->opts.webhook_key_file, "r") : NULL;
    if (!file) {
        s_log("--webhook-key-file: required with --webhook-listen and readable");
        return -1;
    }
    if (fstat(fileno(file), &st) != 0 || (st.st_mode & 077) != 0) {
        s_log("--webhook-key-file: must not be readable by group or others");
        fclose(file);
        return -1;
    }
    if (!fgets(s_hook_key, sizeof s_hook_key, file))
        s_hook_key[0] = '\0';
    fclose(file);
    s_hook_key[strcspn(s_hook_key, "\r\n")] = '\0';
    if (!s_hook_key[0]) {
        s_log("--webhook-key-file: empty key");
        return -1;
    }
    *daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t) port, NULL, NULL,
                               s_hook_handler, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *) &addr, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                               MHD_OPTION_NOTIFY_COMPLETED, s_hook_done, NULL, MHD_OPTION_END);
    if (!*daemon) {
        s_log("--webhook-listen: cannot listen on %s", app->opts.webhook_listen);
        return -1;
    }
    s_log("webhooks on %s/primero/webhook", app->opts.webhook_listen);
    return 0;
}

int main(int argc, char **argv)
{
    static char state_default[300];
    s_app_t app;
    memset(&app, 0, sizeof app);
    app.opts.codelists = "adapters/primero/codelists";
    app.opts.version = "v1";
    app.opts.poll_ms = 60000;
    static const struct option options[] = {{"org", required_argument, NULL, 'o'},
                                            {"broker", required_argument, NULL, 'b'},
                                            {"keys", required_argument, NULL, 'k'},
                                            {"primero", required_argument, NULL, 'p'},
                                            {"primero-token-file", required_argument, NULL, 't'},
                                            {"codelists", required_argument, NULL, 'c'},
                                            {"codelist-version", required_argument, NULL, 'v'},
                                            {"state", required_argument, NULL, 's'},
                                            {"poll-interval", required_argument, NULL, 'i'},
                                            {"once", no_argument, NULL, '1'},
                                            {"webhook-listen", required_argument, NULL, 'w'},
                                            {"webhook-key-file", required_argument, NULL, 'K'},
                                            {"focal-point", required_argument, NULL, 'F'},
                                            {"outbox", required_argument, NULL, 'O'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'o': app.opts.org = optarg; break;
        case 'b': app.opts.broker = optarg; break;
        case 'k': app.opts.keys = optarg; break;
        case 'p': app.opts.primero = optarg; break;
        case 't': app.opts.token_file = optarg; break;
        case 'c': app.opts.codelists = optarg; break;
        case 'v': app.opts.version = optarg; break;
        case 's': app.opts.state = optarg; break;
        case '1': app.opts.once = 1; break;
        case 'w': app.opts.webhook_listen = optarg; break;
        case 'K': app.opts.webhook_key_file = optarg; break;
        case 'O': app.opts.outbox = optarg; break;
        case 'F':
            if (app.n_focal == sizeof app.focal / sizeof app.focal[0] || !strchr(optarg, '=')) {
                fprintf(stderr, "puente-primero: --focal-point: expected CC=ORG[+ORG...] (at most 32)\n");
                return 1;
            }
            app.focal[app.n_focal++] = optarg;
            break;
        case 'i':
            if (puente_duration_parse(optarg, &app.opts.poll_ms) != 0 || app.opts.poll_ms <= 0) {
                fprintf(stderr, "puente-primero: --poll-interval: invalid duration\n");
                return 1;
            }
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 1;
        }
    }
    if (!app.opts.org || !app.opts.primero) {
        s_usage(stderr);
        return 1;
    }
    s_org_for_log = app.opts.org;
    if (!app.opts.state) {
        snprintf(state_default, sizeof state_default, "puente-primero-%s.db", app.opts.org);
        app.opts.state = state_default;
    }
    int exit_code = 1;
    struct MHD_Daemon *hook = NULL;
    char err[PUENTE_ERR_BYTES];
    if (s_read_token(&app) != 0)
        goto done;
    app.lists = pt_primero_codelists_load(app.opts.codelists, app.opts.version, err, sizeof err);
    if (!app.lists) {
        s_log("code lists: %s", err);
        goto done;
    }
    if (s_db_open(&app) != 0)
        goto done;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(app.curl = curl_easy_init())) {
        s_log("libcurl initialisation failed");
        goto done;
    }
    pt_client_opts_t copts = {.endpoint = app.opts.broker,
                              .keys_dir = app.opts.keys,
                              .org_id = app.opts.org,
                              .receive = 1,
                              .client_name = "puente-primero/0.1"};
    app.client = pt_client_new(&copts, err, sizeof err);
    if (!app.client) {
        s_log("broker: %s", err);
        goto done;
    }
    s_log("broker: connected to %s", pt_client_endpoint(app.client));
    static char outbox_default[320];
    if (!app.opts.outbox) {
        snprintf(outbox_default, sizeof outbox_default, "%s.outbox", app.opts.state);
        app.opts.outbox = outbox_default;
    }
    pt_outbox_opts_t oopts = {.client = copts, .state_path = app.opts.outbox};
    oopts.client.receive = 0;
    oopts.client.client_name = "puente-primero/0.1 outbox";
    app.outbox = pt_outbox_new(&oopts, err, sizeof err);
    if (!app.outbox) {
        s_log("outbox %s: %s", app.opts.outbox, err);
        goto done;
    }
    unsigned long failovers = 0;
    if (app.opts.webhook_listen && s_hook_start(&app, &hook) != 0)
        goto done;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    s_log("running: primero %s, code lists %s, state %s", app.opts.primero, app.opts.version,
          app.opts.state);
    int64_t next_poll = 0;
    while (!s_stop) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_ms = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
        if (s_hook_drain(&app))
            s_flush_pending(&app);
        if (now_ms >= next_poll) {
            s_poll(&app);
            s_poll_transitions(&app);
            s_poll_more(&app);
            s_flush_pending(&app);
            next_poll = now_ms + app.opts.poll_ms;
        }
        int wait_ms = app.opts.once ? 1000 : (int) (app.opts.poll_ms < 500 ? app.opts.poll_ms : 500);
        pt_message_t *msg = NULL;
        pt_client_result_t rc = pt_client_recv(app.client, wait_ms, &msg);
        if (pt_client_failovers(app.client) != failovers) {
            failovers = pt_client_failovers(app.client);
            s_log("broker: moved to %s (failover %lu)", pt_client_endpoint(app.client), failovers);
        }
        if (rc == PT_CLIENT_OK) {
            if (app.n_pending < S_MAX_PENDING) {
                app.pending[app.n_pending++] = msg;
                s_flush_pending(&app);
            } else {
                /* Full: not acked, so the broker keeps it for a later session. */
                pt_message_destroy(&msg);
            }
        } else if (rc == PT_CLIENT_REFUSED) {
            s_log("delivery refused: %s", pt_client_error(app.client));
        } else if (rc != PT_CLIENT_TIMEOUT) {
            /* Broker away: Primero is still polled and sends still queue in the
               outbox; do not spin. */
            usleep((useconds_t) wait_ms * 1000);
        }
        if (app.opts.once && rc == PT_CLIENT_TIMEOUT)
            break;
    }
    exit_code = app.n_pending ? 2 : 0;
done:
    if (hook)
        MHD_stop_daemon(hook);
    for (size_t i = 0; i < s_hook_n; i++)
        json_decref(s_hook_queue[i]);
    s_hook_n = 0;
    memset(s_hook_key, 0, sizeof s_hook_key);
    for (size_t i = 0; i < app.n_pending; i++)
        pt_message_destroy(&app.pending[i]);
    pt_outbox_destroy(&app.outbox);
    pt_client_destroy(&app.client);
    if (app.curl) {
        curl_easy_cleanup(app.curl);
        curl_global_cleanup();
    }
    if (app.db)
        sqlite3_close(app.db);
    pt_primero_codelists_destroy(&app.lists);
    return exit_code;
}

/*  bridge — HTTP server, broker clients and background threads of puente-bridge
    (see bridge.h). Request validation and JSON shapes live in bridge_http.c,
    state in bridge_store.c. */
#include "bridge.h"

#include <curl/curl.h>
#include <errno.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge_http.h"
#include "bridge_store.h"
#include "puente.h"

#define S_RETRY_AFTER "5"
#define S_ACK_BATCH 32
/* The HTTP server's threads, and how many of them may wait on Prefer: wait at
   once: the others keep answering (a waiter beyond it is answered at once). */
#define S_HTTP_THREADS 4u
#define S_PREFER_WAITERS_MAX 2

struct _pt_bridge_t {
    pt_bridge_config_t cfg;
    pt_bridge_store_t *store;
    struct MHD_Daemon *httpd;
    pthread_mutex_t client_lock;   /* guards client: one thread at a time (puente.h) */
    pt_client_t *client;           /* request client (send, trail, ack); NULL until needed */
    pthread_t receiver, webhook;
    int receiver_started, webhook_started;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;           /* a new inbox message for the webhook, or stop */
    volatile int stop;
    pthread_mutex_t submit_lock;   /* Idempotency-Key check + outbox send + record */
    pt_outbox_t *outbox;           /* durable outbound queue (state_dir/outbox.db) */
    char inbox_path[1200];         /* the receiver's durable inbox (state_dir/inbox.db) */
    char broker_request[256];      /* last logged broker of each connection (issue 9: with */
    char broker_receiver[256];     /* several endpoints each may move on its own) */
    char broker_outbox[256];
    int offline;                   /* pt_bridge_new_offline: no server, threads or client */
    atomic_int prefer_waiters;     /* requests waiting on Prefer: wait now */
};

/* Per-request state: the body as it arrives. */
typedef struct {
    char *body;
    size_t len, cap;
    int too_large;
} s_request_t;

static void s_log(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* JSON lines without payload content (ids, codes and reasons only). */
static void s_log(const char *level, const char *event, const char *fmt, ...)
{
    char text[512], at[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    puente_time_format(pt_now_ms(), at, sizeof at);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "at", at, "level", level, "event", event, "msg",
                          text);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
}

/* Logs which broker a connection uses when that changes (start, or a failover to
   another endpoint of the --broker list). last holds the previous one. */
static void s_log_broker(const char *who, const char *endpoint, unsigned long failovers,
                         char *last, size_t last_len)
{
    if (!endpoint[0] || strcmp(endpoint, last) == 0)
        return;
    if (last[0])
        s_log("warn", "broker", "%s moved from %s to %s (failover %lu)", who, last, endpoint,
              failovers);
    else
        s_log("info", "broker", "%s connected to %s", who, endpoint);
    snprintf(last, last_len, "%s", endpoint);
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* --- HTTP responses ------------------------------------------------------------- */

/* The answer goes into out (pt_bridge_handle); s_handler hands it to libmicrohttpd.
   These take text (malloc'ed) over; -1 only when out of memory. */
static int s_send(pt_bridge_response_t *out, int status, const char *content_type, char *text,
                  const char *retry_after, const char *allow, int bearer_challenge)
{
    if (!text)
        return -1;
    out->status = status;
    out->content_type = content_type;
    out->body = text;
    out->retry_after = retry_after;
    snprintf(out->allow, sizeof out->allow, "%s", allow ? allow : "");
    out->bearer_challenge = bearer_challenge;
    return 0;
}

static int s_json(pt_bridge_response_t *c, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        text = strdup("{}");
    return s_send(c, status, "application/json", text, NULL, NULL, 0);
}

static int s_problem(pt_bridge_response_t *c, const pt_problem_t *p, const json_t *extra,
                     const char *allow)
{
    json_t *o = pt_problem_json(p, extra);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int status = p->status;
    if (!text) { /* out of memory: say so, with the status the body names */
        text = strdup("{\"status\":503}");
        status = 503;
    }
    return s_send(c, status, "application/problem+json", text,
                  status == 503 ? S_RETRY_AFTER : NULL, allow, status == 401);
}

/* --- the request client --------------------------------------------------------- */

/* Returns the connected request client (call with client_lock held), connecting
   if needed; NULL with a problem (503) when the broker cannot be reached. */
static pt_client_t *s_client(pt_bridge_t *self, pt_problem_t *problem)
{
    if (self->client) {
        s_log_broker("request client", pt_client_endpoint(self->client),
                     pt_client_failovers(self->client), self->broker_request,
                     sizeof self->broker_request);
        return self->client;
    }
    if (self->offline) {
        pt_problem_set(problem, 503, "broker-unreachable", "", "cannot reach the broker");
        return NULL;
    }
    pt_client_opts_t opts = {.endpoint = self->cfg.broker, .keys_dir = self->cfg.keys,
                             .org_id = self->cfg.org, .receive = 0,
                             .timeout_ms = self->cfg.timeout_ms,
                             .client_name = "puente-bridge/0.1"};
    char err[PUENTE_ERR_BYTES];
    pt_client_result_t code = PT_CLIENT_UNREACHABLE;
    self->client = pt_client_new_ex(&opts, err, sizeof err, &code);
    if (!self->client) {
        s_log("warn", "broker", "request client: %s", err);
        if (code == PT_CLIENT_UNREACHABLE)
            pt_problem_set(problem, 503, "broker-unreachable", "", "cannot reach the broker");
        else
            pt_problem_set(problem, 503, "internal", "", "cannot start a broker client: %s", err);
    }
    else
        s_log_broker("request client", pt_client_endpoint(self->client),
                     pt_client_failovers(self->client), self->broker_request,
                     sizeof self->broker_request);
    return self->client;
}

/* After a failed exchange the connection may be stale: start afresh next time. */
static void s_client_drop(pt_bridge_t *self)
{
    pt_client_destroy(&self->client);
}

/* --- handlers ------------------------------------------------------------------------ */

#define S_IDEM_KEY_MAX 255

static void s_outbox_progress(pt_bridge_t *self, json_t *row);

/* The answer for a message in the outbox (new, or replayed for a repeated
   Idempotency-Key): 201 with the receipt once the broker stored the message,
   else 202. receipt is borrowed (NULL: none yet). */
static int s_accepted(pt_bridge_response_t *c, const char *mid, const char *cid, const char *status,
                      json_t *receipt, int replayed)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", mid, "message_id", mid, "status", status);
    if (o && cid && cid[0])
        json_object_set_new(o, "correlation_id", json_string(cid));
    if (o && json_is_object(receipt))
        json_object_set(o, "receipt", receipt);
    if (o && replayed)
        json_object_set_new(o, "idempotent_replay", json_true());
    return s_json(c, json_is_object(receipt) ? 201 : 202, o);
}

/* Answers for message mid from its outbound row, brought up to date with the
   outbox (s_outbox_progress): 201 + receipt once submitted, 422 problem
   "rejected" when the broker refused it, else 202 queued. */
static int s_answer_row(pt_bridge_t *self, pt_bridge_response_t *c, const char *mid,
                        const char *cid, int replayed)
{
    json_t *row = NULL;
    if (pt_bridge_out_get(self->store, mid, &row) != 1)
        return s_accepted(c, mid, cid, "queued", NULL, replayed);
    s_outbox_progress(self, row);
    const char *status = json_string_value(json_object_get(row, "status"));
    const char *row_cid = json_string_value(json_object_get(row, "correlation_id"));
    int rc;
    if (status && strcmp(status, "rejected") == 0 && !replayed) {
        pt_problem_t p;
        pt_problem_set(&p, 422, "rejected", "", "%s",
                       json_string_value(json_object_get(row, "reason"))
                           ? json_string_value(json_object_get(row, "reason"))
                           : "the broker refused the message");
        p.reject_code = (int)json_integer_value(json_object_get(row, "reject_code"));
        snprintf(p.reject_name, sizeof p.reject_name, "%s",
                 json_string_value(json_object_get(row, "reject_code_name"))
                     ? json_string_value(json_object_get(row, "reject_code_name"))
                     : "");
        json_t *extra = json_pack("{s:s, s:s}", "message_id", mid, "status", "rejected");
        rc = s_problem(c, &p, extra, NULL);
        json_decref(extra);
    } else
        rc = s_accepted(c, mid, row_cid && row_cid[0] ? row_cid : cid, status ? status : "queued",
                        json_object_get(row, "receipt"), replayed);
    json_decref(row);
    return rc;
}

/* Prefer: wait=N (RFC 7240) on a new message: waits up to wait_s seconds for
   the outbox to get the broker's receipt or refusal, then answers from the row. */
static int s_answer_new(pt_bridge_t *self, pt_bridge_response_t *c, const char *mid,
                        const char *cid, int wait_s)
{
    uint8_t id[PT_UUID_BYTES];
    if (wait_s <= 0)
        return s_accepted(c, mid, cid, "queued", NULL, 0);
    if (atomic_fetch_add(&self->prefer_waiters, 1) < S_PREFER_WAITERS_MAX &&
        pt_uuid_parse(mid, id) == 0) {
        int64_t until = pt_now_ms() + (int64_t)wait_s * 1000;
        while (pt_now_ms() < until && !self->stop &&
               pt_outbox_status(self->outbox, id, NULL, NULL) == PT_OUTBOX_QUEUED)
            s_sleep_ms(20);
    }
    atomic_fetch_sub(&self->prefer_waiters, 1);
    return s_answer_row(self, c, mid, cid, 0);
}

/* POST /v1/messages: validated, sealed and committed to the SDK outbox before
   the answer (202, status "queued"); the outbox's thread submits it whenever the
   broker is reachable, and GET /v1/messages/{id} follows it from there. With
   Prefer: wait=N (N <= PT_BRIDGE_PREFER_WAIT_MAX s) the answer waits for the
   broker's receipt: 201 with it, 422 "rejected", or 202 when N ran out. A
   repeated Idempotency-Key answers from the message's row: 201 with the receipt
   once submitted. */
static int s_submit(pt_bridge_t *self, const pt_bridge_request_t *req, pt_bridge_response_t *c)
{
    pt_problem_t p;
    const char *ctype = req->content_type;
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0
        || (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        pt_problem_set(&p, 415, "unsupported-media-type", "", "send Content-Type: application/json");
        return s_problem(c, &p, NULL, NULL);
    }
    if (req->body_too_large) {
        pt_problem_set(&p, 413, "body-too-large", "", "the body exceeds %zu bytes",
                       self->cfg.max_body);
        return s_problem(c, &p, NULL, NULL);
    }
    const char *key = req->idempotency_key;
    if (key) {
        size_t klen = strlen(key);
        int printable = klen > 0 && klen <= S_IDEM_KEY_MAX;
        for (size_t i = 0; printable && i < klen; i++)
            printable = key[i] > 0x20 && key[i] < 0x7f;
        if (!printable) {
            pt_problem_set(&p, 400, "invalid-header", "Idempotency-Key",
                           "Idempotency-Key must be 1 to %d visible ASCII characters",
                           S_IDEM_KEY_MAX);
            return s_problem(c, &p, NULL, NULL);
        }
    }
    pt_submit_req_t *sub = NULL;
    if (pt_submit_req_parse(req->body ? req->body : "", req->body_len, &sub, &p) != 0)
        return s_problem(c, &p, NULL, NULL);

    int rc, queued = 0;
    char mid[PT_UUID_STR_BYTES] = "", cid[PT_UUID_STR_BYTES] = "";
    uint8_t digest[PT_SHA256_BYTES];
    char body_hash[2 * PT_SHA256_BYTES + 1];
    pt_sha256(req->body ? req->body : "", req->body_len, digest);
    pt_hex(digest, PT_SHA256_BYTES, body_hash);
    json_t *to = json_array();
    for (size_t i = 0; i < sub->n_to; i++)
        json_array_append_new(to, json_string(sub->to[i]));
    char *to_text = json_dumps(to, JSON_COMPACT);
    json_decref(to);
    /* Check-then-send under one lock so that two requests with the same key cannot
       both create a message. */
    pthread_mutex_lock(&self->submit_lock);
    if (!to_text) {
        pt_problem_set(&p, 503, "internal", "", "out of memory");
        rc = s_problem(c, &p, NULL, NULL);
        goto done;
    }
    if (key) {
        char was_hash[80], was_mid[64];
        int known = pt_bridge_idem_get(self->store, key, was_hash, sizeof was_hash, was_mid,
                                       sizeof was_mid);
        if (known < 0) {
            pt_problem_set(&p, 503, "storage-unavailable", "", "cannot read the idempotency keys");
            rc = s_problem(c, &p, NULL, NULL);
            goto done;
        }
        if (known == 1 && strcmp(was_hash, body_hash) != 0) {
            pt_problem_set(&p, 409, "idempotency-key-reused", "Idempotency-Key",
                           "this Idempotency-Key was used with a different body");
            json_t *extra = json_pack("{s:s}", "message_id", was_mid);
            rc = s_problem(c, &p, extra, NULL);
            json_decref(extra);
            goto done;
        }
        if (known == 1) {
            s_log("info", "replayed", "Idempotency-Key repeated for %s", was_mid);
            rc = s_answer_row(self, c, was_mid, NULL, 1);
            goto done;
        }
    }
    if (pt_outbox_wait_directory(self->outbox, 0) != PT_CLIENT_OK) {
        /* A fresh state file and a broker never reached: nothing to seal with yet. */
        pt_problem_set(&p, 503, "broker-unreachable", "",
                       "the bridge has not reached the broker yet (no key directory); send "
                       "again later");
        rc = s_problem(c, &p, NULL, NULL);
        goto done;
    }
    pt_send_t msg;
    pt_submit_req_to_send(sub, &msg);
    /* The bridge picks the thread id so that it can answer with it at once (the
       outbox would otherwise tell it only with the receipt). */
    uint8_t correlation[PT_UUID_BYTES];
    if (!sub->has_correlation) {
        if (pt_uuidv7(correlation) != 0) {
            pt_problem_set(&p, 503, "internal", "", "cannot allocate a thread id");
            rc = s_problem(c, &p, NULL, NULL);
            goto done;
        }
        msg.correlation_id = correlation;
    }
    uint8_t id[PT_UUID_BYTES];
    pt_client_result_t sr = pt_outbox_send(self->outbox, &msg, id);
    if (sr == PT_CLIENT_OK) {
        pt_uuid_format(id, mid);
        pt_uuid_format(msg.correlation_id, cid);
        if (pt_bridge_out_queued(self->store, mid, cid, sub->type->name, sub->case_token, to_text,
                                 key, body_hash) != 0)
            /* The message is durable in the outbox and will be sent; GET falls back
               on the outbox for its status. Only the key is lost. */
            s_log("error", "queued", "%s %s is in the outbox but not in bridge.db",
                  sub->type->name, mid);
        s_log("info", "queued", "%s %s", sub->type->name, mid);
        queued = 1;
        rc = 0;
        goto done;
    }
    const char *why = pt_outbox_error(self->outbox);
    if (sr == PT_CLIENT_INVALID && strstr(why, "directory")) {
        pt_problem_set(&p, 422, "rejected", "to", "%s", why);
        p.reject_code = PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_RECIPIENT;
        snprintf(p.reject_name, sizeof p.reject_name, "%s",
                 puente_reject_name(PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_RECIPIENT));
    }
    else if (sr == PT_CLIENT_INVALID)
        pt_problem_set(&p, 422, "refused-locally", "", "%s", why);
    else
        pt_problem_set(&p, 503, "storage-unavailable", "", "cannot queue the message: %s", why);
    s_log("info", "refused", "%s: %s", sub->type->name, why);
    rc = s_problem(c, &p, NULL, NULL);
done:
    pthread_mutex_unlock(&self->submit_lock);
    /* Outside the lock: a client that waits holds up no other POST. */
    if (queued)
        rc = s_answer_new(self, c, mid, cid, pt_bridge_prefer_wait(req->prefer));
    free(to_text);
    pt_submit_req_destroy(&sub);
    return rc;
}

static int s_inbox(pt_bridge_t *self, const pt_bridge_request_t *req, pt_bridge_response_t *c)
{
    pt_problem_t p;
    int64_t since;
    int limit;
    if (pt_inbox_query_parse(req->since, req->limit, &since, &limit, &p) != 0)
        return s_problem(c, &p, NULL, NULL);
    json_t *list = NULL;
    int64_t next = since;
    if (pt_bridge_inbox_list(self->store, since, limit, &list, &next) != 0) {
        pt_problem_set(&p, 503, "storage-unavailable", "", "cannot read the inbox");
        return s_problem(c, &p, NULL, NULL);
    }
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long) next);
    return s_json(c, 200, json_pack("{s:o, s:s}", "messages", list, "next_cursor", cursor));
}

/* Fetches a trail with the request client: OK and *out, or a problem. */
static int s_trail_fetch(pt_bridge_t *self, const char *token, Puente__V1__TrailReply **out,
                         pt_problem_t *p)
{
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pthread_mutex_lock(&self->client_lock);
    pt_client_t *client = s_client(self, p);
    pt_client_result_t rc = PT_CLIENT_UNREACHABLE;
    if (client) {
        rc = pt_client_trail(client, token, out, &rej);
        if (rc == PT_CLIENT_UNREACHABLE || rc == PT_CLIENT_BAD_REPLY)
            s_client_drop(self);
    }
    pthread_mutex_unlock(&self->client_lock);
    if (rc == PT_CLIENT_OK)
        return 0;
    if (rc == PT_CLIENT_REJECTED) {
        int not_found = rej.code == PUENTE__V1__REJECT_CODE__REJECT_NOT_FOUND;
        pt_problem_set(p, not_found ? 404 : 403, not_found ? "not-found" : "rejected", "", "%s",
                       rej.reason);
        p->reject_code = rej.code;
        snprintf(p->reject_name, sizeof p->reject_name, "%s", rej.code_name);
    }
    else if (client)
        pt_problem_set(p, 503, "broker-unreachable", "", "the broker did not answer");
    return -1;
}

static int s_trail(pt_bridge_t *self, pt_bridge_response_t *c, const char *token)
{
    pt_problem_t p;
    Puente__V1__TrailReply *t = NULL;
    if (s_trail_fetch(self, token, &t, &p) != 0)
        return s_problem(c, &p, NULL, NULL);
    json_t *o = pt_bridge_trail_json(t);
    puente__v1__trail_reply__free_unpacked(t, NULL);
    return s_json(c, 200, o);
}

/* A row still "queued" here: the outbox knows whether the broker took it since. */
static void s_outbox_progress(pt_bridge_t *self, json_t *row)
{
    const char *status = json_string_value(json_object_get(row, "status"));
    const char *mid = json_string_value(json_object_get(row, "message_id"));
    uint8_t id[PT_UUID_BYTES];
    if (!status || strcmp(status, "queued") != 0 || !mid || pt_uuid_parse(mid, id) != 0)
        return;
    char local[PT_UUID_STR_BYTES];
    snprintf(local, sizeof local, "%s", json_string_value(json_object_get(row, "id")));
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_outbox_state_t st = pt_outbox_status(self->outbox, id, &receipt, &rej);
    if (st == PT_OUTBOX_SUBMITTED) {
        char cid[PT_UUID_STR_BYTES];
        pt_uuid_format(receipt.correlation_id, cid);
        json_t *r = pt_bridge_receipt_json(&receipt);
        char *rtext = r ? json_dumps(r, JSON_COMPACT) : NULL;
        pt_bridge_out_submitted(self->store, local, local, cid, rtext ? rtext : "{}");
        free(rtext);
        json_object_set_new(row, "status", json_string("submitted"));
        json_object_set_new(row, "correlation_id", json_string(cid));
        if (r)
            json_object_set_new(row, "receipt", r);
    }
    else if (st == PT_OUTBOX_REJECTED) {
        pt_bridge_out_failed(self->store, local, "rejected", rej.code, rej.code_name, rej.reason,
                             NULL);
        json_object_set_new(row, "status", json_string("rejected"));
        json_object_set_new(row, "reject_code", json_integer(rej.code));
        json_object_set_new(row, "reject_code_name", json_string(rej.code_name));
        json_object_set_new(row, "reason", json_string(rej.reason));
    }
}

static int s_status(pt_bridge_t *self, pt_bridge_response_t *c, const char *id)
{
    pt_problem_t p;
    json_t *row = NULL;
    int found = pt_bridge_out_get(self->store, id, &row);
    if (found < 0) {
        pt_problem_set(&p, 503, "storage-unavailable", "", "cannot read the outbound table");
        return s_problem(c, &p, NULL, NULL);
    }
    uint8_t uuid[PT_UUID_BYTES];
    if (found == 0 && pt_uuid_parse(id, uuid) == 0) {
        /* Queued in the outbox but not recorded in bridge.db (a crash between the two
           commits): the outbox still knows it. */
        pt_receipt_info_t receipt;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        pt_outbox_state_t st = pt_outbox_status(self->outbox, uuid, &receipt, &rej);
        if (st != PT_OUTBOX_UNKNOWN) {
            json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "message_id", id, "status",
                                  st == PT_OUTBOX_QUEUED      ? "queued"
                                  : st == PT_OUTBOX_SUBMITTED ? "submitted"
                                                              : "rejected");
            if (o && st == PT_OUTBOX_SUBMITTED)
                json_object_set_new(o, "receipt", pt_bridge_receipt_json(&receipt));
            if (o && st == PT_OUTBOX_REJECTED) {
                json_object_set_new(o, "reject_code", json_integer(rej.code));
                json_object_set_new(o, "reject_code_name", json_string(rej.code_name));
            }
            return s_json(c, 200, o);
        }
    }
    if (found == 0) {
        pt_problem_set(&p, 404, "message-not-found", "", "no message sent through this bridge "
                                                         "has this id");
        return s_problem(c, &p, NULL, NULL);
    }
    s_outbox_progress(self, row);
    const char *status = json_string_value(json_object_get(row, "status"));
    const char *mid = json_string_value(json_object_get(row, "message_id"));
    const char *cid = json_string_value(json_object_get(row, "correlation_id"));
    const char *token = json_string_value(json_object_get(row, "case_token"));
    json_t *ids = NULL, *replies = NULL;
    if (mid && pt_bridge_thread(self->store, cid, mid, &ids, &replies) == 0)
        json_object_set_new(row, "replies", replies);
    int live = status && mid && token
               && (strcmp(status, "submitted") == 0 || strcmp(status, "delivered") == 0
                   || strcmp(status, "acknowledged") == 0);
    if (live) {
        Puente__V1__TrailReply *t = NULL;
        pt_problem_t tp;
        if (s_trail_fetch(self, token, &t, &tp) == 0) {
            json_t *to = json_object_get(row, "to");
            size_t n = json_array_size(to), n_ids = json_array_size(ids);
            char **orgs = calloc(n + 1, sizeof *orgs);
            const char **related = calloc(n_ids + 1, sizeof *related);
            if (orgs && related) {
                for (size_t i = 0; i < n; i++)
                    orgs[i] = (char *) json_string_value(json_array_get(to, i));
                for (size_t i = 0; i < n_ids; i++)
                    related[i] = json_string_value(json_array_get(ids, i));
                const char *overall = "submitted";
                char lifecycle[64] = "";
                json_t *per = pt_bridge_status_from_trail(t, mid, orgs, n, related, n_ids,
                                                          &overall, lifecycle, sizeof lifecycle);
                json_object_set_new(row, "recipients", per);
                json_object_set_new(row, "status", json_string(overall));
                if (lifecycle[0])
                    json_object_set_new(row, "lifecycle_state", json_string(lifecycle));
                /* Copy before the row's strings change under us. */
                char local[PT_UUID_STR_BYTES];
                snprintf(local, sizeof local, "%s",
                         json_string_value(json_object_get(row, "id")));
                pt_bridge_out_progress(self->store, local, overall, lifecycle);
            }
            free(orgs);
            free(related);
            puente__v1__trail_reply__free_unpacked(t, NULL);
        }
        else
            json_object_set_new(row, "stale", json_true()); /* broker unreachable: last known */
    }
    json_decref(ids);
    return s_json(c, 200, row);
}

static int s_ack(pt_bridge_t *self, pt_bridge_response_t *c, const char *id)
{
    pt_problem_t p;
    uint8_t mid[PT_UUID_BYTES];
    int already = 0;
    int found = pt_uuid_parse(id, mid) == 0 ? pt_bridge_inbox_app_ack(self->store, id, &already)
                                            : 0;
    if (found < 0) {
        pt_problem_set(&p, 503, "storage-unavailable", "", "cannot record the acknowledgement");
        return s_problem(c, &p, NULL, NULL);
    }
    if (found == 0) {
        pt_problem_set(&p, 404, "message-not-found", "", "no received message has this id");
        return s_problem(c, &p, NULL, NULL);
    }
    /* Recorded durably first; the receiver thread sends the broker ack with its
       client, whose durable inbox records the confirmation (a restarted bridge
       never hands this message over again). Wait briefly for it to go out. */
    pthread_mutex_lock(&self->wake_lock);
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->wake_lock);
    int state = 1;
    int wait_ms = self->cfg.timeout_ms < 2000 ? self->cfg.timeout_ms : 2000;
    if (self->offline)
        wait_ms = -1; /* no receiver thread: nothing to wait for */
    for (int waited = 0; waited <= wait_ms; waited += 20) {
        state = pt_bridge_inbox_ack_state(self->store, id);
        if (state != 1)
            break;
        s_sleep_ms(20);
    }
    int done = state == 2;
    return s_json(c, done ? 200 : 202,
                  json_pack("{s:s, s:s, s:b}", "id", id, "status",
                            done ? "acknowledged" : "ack_pending", "already_acked", already));
}

/* --- dispatch ----------------------------------------------------------------------- */

int pt_bridge_handle(pt_bridge_t *self, const pt_bridge_request_t *req, pt_bridge_response_t *c)
{
    memset(c, 0, sizeof *c);
    pt_problem_t p;
    char param[PT_BRIDGE_MAX_TOKEN + 8], allow[64];
    pt_route_t route =
        pt_bridge_route_match(req->method, req->path, param, sizeof param, allow, sizeof allow);
    if (route == PT_ROUTE_OPENAPI)
        return s_send(c, 200, "application/json", strdup(pt_bridge_openapi), NULL, NULL, 0);
    /* Everything but the API description needs the token, unknown paths included:
       an unauthenticated caller learns nothing about what exists. */
    if (!pt_bridge_bearer_ok(req->authorization, self->cfg.token)) {
        pt_problem_set(&p, 401, "unauthorized", "", "send Authorization: Bearer <token>");
        return s_problem(c, &p, NULL, NULL);
    }
    switch (route) {
    case PT_ROUTE_SUBMIT: return s_submit(self, req, c);
    case PT_ROUTE_INBOX: return s_inbox(self, req, c);
    case PT_ROUTE_STATUS: return s_status(self, c, param);
    case PT_ROUTE_ACK: return s_ack(self, c, param);
    case PT_ROUTE_TRAIL: return s_trail(self, c, param);
    case PT_ROUTE_BAD_METHOD:
        pt_problem_set(&p, 405, "method-not-allowed", "", "%s is not allowed here (allowed: %s)",
                       req->method, allow);
        return s_problem(c, &p, NULL, allow);
    default:
        pt_problem_set(&p, 404, "not-found", "", "no such resource");
        return s_problem(c, &p, NULL, NULL);
    }
}

void pt_bridge_response_clear(pt_bridge_response_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

/* libmicrohttpd's access handler: gathers the body, then answers through
   pt_bridge_handle. */
static enum MHD_Result s_handler(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    pt_bridge_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (length && strtoull(length, NULL, 10) > self->cfg.max_body)
            req->too_large = 1;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* An oversize body is read and dropped so that the answer is a clean 413. */
        if (!req->too_large && req->len + *upload_data_size > self->cfg.max_body)
            req->too_large = 1;
        if (!req->too_large) {
            if (req->len + *upload_data_size + 1 > req->cap) {
                size_t cap = req->cap ? req->cap : 4096;
                while (cap < req->len + *upload_data_size + 1)
                    cap *= 2;
                char *grown = realloc(req->body, cap);
                if (!grown)
                    return MHD_NO;
                req->body = grown;
                req->cap = cap;
            }
            memcpy(req->body + req->len, upload_data, *upload_data_size);
            req->len += *upload_data_size;
            req->body[req->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    pt_bridge_request_t in = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
        .idempotency_key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key"),
        .prefer = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Prefer"),
        .since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
        .limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
        .body = req->body,
        .body_len = req->len,
        .body_too_large = req->too_large};
    pt_bridge_response_t out;
    if (pt_bridge_handle(self, &in, &out) != 0)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(out.body), out.body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        pt_bridge_response_clear(&out);
        return MHD_NO;
    }
    out.body = NULL; /* the response owns it now */
    MHD_add_response_header(r, "Content-Type", out.content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (out.retry_after)
        MHD_add_response_header(r, "Retry-After", out.retry_after);
    if (out.allow[0])
        MHD_add_response_header(r, "Allow", out.allow);
    if (out.bearer_challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"puente-bridge\"");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned int) out.status, r);
    MHD_destroy_response(r);
    return rc;
}

static void s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) c;
    (void) toe;
    s_request_t *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* --- receiver thread ------------------------------------------------------------------ */

static void s_flush_acks(pt_bridge_t *self, pt_client_t *client)
{
    char ids[S_ACK_BATCH][37];
    int n = pt_bridge_inbox_pending_acks(self->store, ids, S_ACK_BATCH);
    for (int i = 0; i < n; i++) {
        uint8_t mid[PT_UUID_BYTES];
        if (pt_uuid_parse(ids[i], mid) != 0)
            continue;
        pt_client_result_t rc = pt_client_ack(client, mid);
        if (rc == PT_CLIENT_OK || rc == PT_CLIENT_REJECTED)
            pt_bridge_inbox_broker_acked(self->store, ids[i]);
        else
            break;
    }
}

static void s_take(pt_bridge_t *self, pt_message_t *m)
{
    const Puente__V1__Header *h = pt_message_header(m);
    json_t *o = pt_bridge_message_json(h, pt_message_body(m));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    char mid[PT_UUID_STR_BYTES], cid[PT_UUID_STR_BYTES] = "", cause[PT_UUID_STR_BYTES] = "";
    pt_uuid_format(pt_message_id(m), mid);
    if (h->correlation_id.len == PT_UUID_BYTES)
        pt_uuid_format(h->correlation_id.data, cid);
    if (h->causation_id.len == PT_UUID_BYTES)
        pt_uuid_format(h->causation_id.data, cause);
    /* Not stored = not acked: the broker offers it again. */
    int put = text ? pt_bridge_inbox_put(self->store, mid, cid[0] ? cid : NULL,
                                         cause[0] ? cause : NULL, text,
                                         self->cfg.webhook_url[0] != '\0')
                   : -1;
    if (!text)
        s_log("error", "inbox", "%s cannot be rendered as JSON; left unacknowledged", mid);
    else if (put < 0)
        s_log("error", "inbox", "%s cannot be stored; left unacknowledged", mid);
    else if (put == 0) {
        /* Offered again: if the national system acked it, our broker ack was lost. */
        if (pt_bridge_inbox_ack_state(self->store, mid) == 2)
            pt_bridge_inbox_broker_ack_reset(self->store, mid);
    }
    else {
        s_log("info", "received", "%s %s from %s", h->message_type, mid, h->sender);
        pthread_mutex_lock(&self->wake_lock);
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->wake_lock);
    }
    free(text);
    json_decref(o);
}

static void *s_receiver(void *arg)
{
    pt_bridge_t *self = arg;
    pt_client_t *client = NULL;
    int backoff = 500;
    pt_client_opts_t opts = {.endpoint = self->cfg.broker, .keys_dir = self->cfg.keys,
                             .org_id = self->cfg.org, .receive = 1,
                             .timeout_ms = self->cfg.timeout_ms,
                             .client_name = "puente-bridge/0.1 receiver",
                             .inbox_path = self->inbox_path};
    while (!self->stop) {
        if (!client) {
            char err[PUENTE_ERR_BYTES];
            client = pt_client_new(&opts, err, sizeof err);
            if (!client) {
                s_log("warn", "broker", "receiver: %s; retrying in %d ms", err, backoff);
                for (int waited = 0; waited < backoff && !self->stop; waited += 100)
                    s_sleep_ms(100);
                backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
                continue;
            }
            backoff = 500;
        }
        s_log_broker("receiver", pt_client_endpoint(client), pt_client_failovers(client),
                     self->broker_receiver, sizeof self->broker_receiver);
        char outbox_at[256];
        unsigned long outbox_moves = pt_outbox_endpoint(self->outbox, outbox_at, sizeof outbox_at);
        s_log_broker("outbox", outbox_at, outbox_moves, self->broker_outbox,
                     sizeof self->broker_outbox);
        s_flush_acks(self, client);
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(client, 100, &m);
        if (rc == PT_CLIENT_OK) {
            s_take(self, m);
            pt_message_destroy(&m);
        }
        else if (rc == PT_CLIENT_REFUSED)
            s_log("warn", "refused", "%s", pt_client_error(client));
        else if (rc == PT_CLIENT_UNREACHABLE)
            pt_client_destroy(&client);
    }
    pt_client_destroy(&client);
    return NULL;
}

/* --- webhook thread --------------------------------------------------------------------- */

static size_t s_discard(char *data, size_t size, size_t n, void *user)
{
    (void) data;
    (void) user;
    return size * n;
}

/* POSTs one message; the HTTP status, or 0 when there was no answer. */
static long s_webhook_post(pt_bridge_t *self, const char *body)
{
    char sig[128], header[160];
    if (pt_bridge_sign(self->cfg.webhook_secret, strlen(self->cfg.webhook_secret),
                       (int64_t) time(NULL), body, strlen(body), sig, sizeof sig) != 0)
        return 0;
    CURL *curl = curl_easy_init();
    if (!curl)
        return 0;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(header, sizeof header, "X-Puente-Signature: %s", sig);
    headers = curl_slist_append(headers, header);
    curl_easy_setopt(curl, CURLOPT_URL, self->cfg.webhook_url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

static void *s_webhook(void *arg)
{
    pt_bridge_t *self = arg;
    while (!self->stop) {
        int64_t seq = 0;
        char *body = NULL;
        int attempts = 0;
        int r = pt_bridge_webhook_next(self->store, pt_now_ms(), &seq, &body, &attempts);
        if (r == 1) {
            long status = s_webhook_post(self, body);
            free(body);
            if (status >= 200 && status < 300)
                pt_bridge_webhook_result(self->store, seq, 1, 0);
            else {
                /* webhook_backoff, doubling, at most webhook_max_backoff. */
                int64_t delay = self->cfg.webhook_backoff_ms;
                for (int i = 0; i < attempts && delay < self->cfg.webhook_max_backoff_ms; i++)
                    delay *= 2;
                if (delay > self->cfg.webhook_max_backoff_ms)
                    delay = self->cfg.webhook_max_backoff_ms;
                int give_up = attempts + 1 >= self->cfg.webhook_max_attempts;
                pt_bridge_webhook_result(self->store, seq, 0, give_up ? -1 : pt_now_ms() + delay);
                s_log("warn", "webhook", "inbox #%lld: HTTP %ld (attempt %d)%s", (long long) seq,
                      status, attempts + 1, give_up ? "; giving up, it stays in the inbox" : "");
            }
            continue;
        }
        /* Nothing due: sleep until a new message, the next retry, or at most a
           second. */
        int64_t wait_ms = 1000, due_ms = 0;
        if (r == 0 && pt_bridge_webhook_next_due(self->store, &due_ms) == 1) {
            int64_t left = due_ms - pt_now_ms();
            wait_ms = left < 1 ? 1 : left < wait_ms ? left : wait_ms;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        until.tv_sec += (time_t)(wait_ms / 1000) + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&self->wake_lock);
        if (!self->stop)
            pthread_cond_timedwait(&self->wake, &self->wake_lock, &until);
        pthread_mutex_unlock(&self->wake_lock);
    }
    return NULL;
}

/* --- life cycle ----------------------------------------------------------------------- */

static pt_bridge_t *s_new(const pt_bridge_config_t *cfg, int offline, char *err, size_t err_len)
{
    pt_bridge_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->offline = offline;
    pthread_mutex_init(&self->client_lock, NULL);
    pthread_mutex_init(&self->wake_lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_mutex_init(&self->submit_lock, NULL);
    self->store = pt_bridge_store_open(cfg->state_dir, err, err_len);
    if (!self->store)
        goto error;
    char outbox_path[1200];
    snprintf(outbox_path, sizeof outbox_path, "%s/outbox.db", cfg->state_dir);
    snprintf(self->inbox_path, sizeof self->inbox_path, "%s/inbox.db", cfg->state_dir);
    pt_outbox_opts_t oopts = {.client = {.endpoint = cfg->broker, .keys_dir = cfg->keys,
                                         .org_id = cfg->org, .timeout_ms = cfg->timeout_ms,
                                         .client_name = "puente-bridge/0.1 outbox"},
                              .state_path = outbox_path};
    self->outbox = pt_outbox_new(&oopts, err, err_len);
    if (!self->outbox)
        goto error;
    if (offline)
        return self;
    /* Numeric IPv4, or IPv6 (--listen [::1]:8081). */
    struct sockaddr_in addr;
    struct sockaddr_in6 addr6;
    memset(&addr, 0, sizeof addr);
    memset(&addr6, 0, sizeof addr6);
    struct sockaddr *sa = NULL;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, cfg->listen_host, &addr.sin_addr) == 1) {
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)cfg->listen_port);
        sa = (struct sockaddr *)&addr;
    } else if (inet_pton(AF_INET6, cfg->listen_host, &addr6.sin6_addr) == 1) {
        addr6.sin6_family = AF_INET6;
        addr6.sin6_port = htons((uint16_t)cfg->listen_port);
        sa = (struct sockaddr *)&addr6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, err_len, "--listen: %s is not a numeric IPv4 or IPv6 address",
                 cfg->listen_host);
        goto error;
    }
    self->httpd =
        MHD_start_daemon(flags, (uint16_t)cfg->listen_port, NULL, NULL, s_handler, self,
                         MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, S_HTTP_THREADS,
                         MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_END);
    if (!self->httpd) {
        snprintf(err, err_len, "cannot listen on %s%s%s:%d",
                 sa == (struct sockaddr *)&addr6 ? "[" : "", cfg->listen_host,
                 sa == (struct sockaddr *)&addr6 ? "]" : "", cfg->listen_port);
        goto error;
    }
    if (pthread_create(&self->receiver, NULL, s_receiver, self) != 0) {
        snprintf(err, err_len, "cannot start the receiver thread");
        goto error;
    }
    self->receiver_started = 1;
    if (cfg->webhook_url[0]) {
        if (pthread_create(&self->webhook, NULL, s_webhook, self) != 0) {
            snprintf(err, err_len, "cannot start the webhook thread");
            goto error;
        }
        self->webhook_started = 1;
    }
    s_log("info", "start", "serving %s on %s:%d", cfg->org, cfg->listen_host, cfg->listen_port);
    return self;
error:
    pt_bridge_destroy(&self);
    return NULL;
}

pt_bridge_t *pt_bridge_new(const pt_bridge_config_t *cfg, char *err, size_t err_len)
{
    return s_new(cfg, 0, err, err_len);
}

pt_bridge_t *pt_bridge_new_offline(const pt_bridge_config_t *cfg, char *err, size_t err_len)
{
    return s_new(cfg, 1, err, err_len);
}

void pt_bridge_destroy(pt_bridge_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_bridge_t *self = *self_p;
    if (self->httpd)
        MHD_stop_daemon(self->httpd);
    pthread_mutex_lock(&self->wake_lock);
    self->stop = 1;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->wake_lock);
    if (self->receiver_started)
        pthread_join(self->receiver, NULL);
    if (self->webhook_started)
        pthread_join(self->webhook, NULL);
    pt_client_destroy(&self->client);
    pt_outbox_destroy(&self->outbox);
    pt_bridge_store_destroy(&self->store);
    pthread_mutex_destroy(&self->submit_lock);
    pthread_mutex_destroy(&self->client_lock);
    pthread_mutex_destroy(&self->wake_lock);
    pthread_cond_destroy(&self->wake);
    memset(self->cfg.token, 0, sizeof self->cfg.token);
    memset(self->cfg.webhook_secret, 0, sizeof self->cfg.webhook_secret);
    free(self);
    *self_p = NULL;
}

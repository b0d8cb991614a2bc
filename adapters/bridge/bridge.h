/*  bridge — puente-bridge, the HTTP/JSON bridge of one organisation.

    Threads: libmicrohttpd's pool serves requests. POST /v1/messages commits to
    ONE SDK outbox (pt_outbox_t, state_dir/outbox.db; its own thread submits in
    order while the broker is reachable), under a mutex that makes the
    Idempotency-Key check and the send atomic. Trail and status share ONE request
    client under a mutex, because a pt_client_t is single-threaded. A receiver
    thread owns its own receiving client with the SDK's durable inbox
    (state_dir/inbox.db): it stores each delivery in the local inbox (SQLite) and
    never acks by itself; the broker ack is sent by that thread once the national
    system acked through POST /v1/messages/{id}/ack. A webhook thread POSTs each
    inbox message to the configured URL, signed, with retries and backoff; a 2xx
    there does NOT ack the message (see docs/bridge.md).
*/
#ifndef PT_BRIDGE_H
#define PT_BRIDGE_H

#include <stddef.h>

#include "bridge_config.h"

typedef struct _pt_bridge_t pt_bridge_t;

/* The OpenAPI document served at /v1/openapi.json (adapters/bridge/openapi.json,
   embedded at build time). */
extern const char pt_bridge_openapi[];

/* Opens the state, starts the receiver and webhook threads and the HTTP server
   on cfg's address (cfg is copied). The broker need not be up: clients connect
   when needed. NULL with err on failure (address in use, state not writable). */
pt_bridge_t *pt_bridge_new(const pt_bridge_config_t *cfg, char *err, size_t err_len);

/* Stops the server and the threads (waits for them) and frees everything.
   No-op on NULL; nulls *self_p. */
void pt_bridge_destroy(pt_bridge_t **self_p);

/* --- request handling without a socket ----------------------------------------------
   The HTTP server hands every complete request to pt_bridge_handle, which does all
   the routing, authentication and validation and runs the handler; tests and the
   fuzz harness (tests/fuzz/fuzz_bridge.c) call it directly. */

/* One request as libmicrohttpd delivers it. method and path are required (the
   path without its query, percent-decoded); a header or query argument the
   client did not send is NULL. */
typedef struct {
    const char *method;
    const char *path;
    const char *authorization;    /* header Authorization */
    const char *content_type;     /* header Content-Type */
    const char *idempotency_key;  /* header Idempotency-Key */
    const char *prefer;           /* header Prefer (RFC 7240; only wait=N is used) */
    const char *since, *limit;    /* query arguments of GET /v1/messages */
    const char *body;             /* body_len bytes, no NUL needed; NULL if none */
    size_t body_len;
    int body_too_large;           /* the body passed cfg.max_body and was dropped */
} pt_bridge_request_t;

/* One answer: status, content type, body (NUL-terminated, owned) and the
   optional headers. Free with pt_bridge_response_clear. */
typedef struct {
    int status;
    const char *content_type;     /* static */
    char *body;
    const char *retry_after;      /* Retry-After value, static, or NULL */
    char allow[64];               /* Allow value, "" for none */
    int bearer_challenge;         /* send WWW-Authenticate: Bearer */
} pt_bridge_response_t;

/* Answers req (thread-safe, as the server's threads call it): 0 and *resp
   filled, or -1 out of memory (nothing to free). Blocks as the handler does:
   a storage commit, a broker round trip for trails and status, up to 2 s for
   an ack, up to N s (at most 10) for a POST with Prefer: wait=N. */
int pt_bridge_handle(pt_bridge_t *self, const pt_bridge_request_t *req, pt_bridge_response_t *resp);

/* Frees resp's body and zeroes it; no-op on NULL. */
void pt_bridge_response_clear(pt_bridge_response_t *resp);

/* A bridge for pt_bridge_handle alone: opens the state as pt_bridge_new does
   (bridge.db, the SDK outbox with its thread, which sends whenever cfg's broker
   is reachable), but starts no HTTP server, no receiver and no webhook thread,
   and never opens the request client: trails and the progress of submitted
   messages answer 503 broker-unreachable at once, and an ack answers 202
   ack_pending at once. Destroy with pt_bridge_destroy. NULL with err. */
pt_bridge_t *pt_bridge_new_offline(const pt_bridge_config_t *cfg, char *err, size_t err_len);

#endif

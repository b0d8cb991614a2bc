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

#endif

/*  broker — the puente-broker daemon: owns the ZeroMQ context, the transport, the
    store, the directory and the delivery stage, and runs the loop that moves each
    client frame through the pipeline (see stage.h and docs/architecture.md).

    Submissions received in one loop pass are committed together (group commit)
    and each sender gets its receipt only after that COMMIT returned.
*/
#ifndef PT_BROKER_H
#define PT_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "transport.h"

#define PT_BROKER_VERSION "0.1.0"
#define PT_BROKER_DEFAULT_ENDPOINT "tcp://127.0.0.1:7550"
#define PT_BROKER_DEFAULT_MAX_FRAME (1024 * 1024)
#define PT_BROKER_BATCH_MAX 256
/* [broker] max_delivery_attempts: offers without an acknowledgement before a
   delivery is dead-lettered (about 15 minutes of a connected recipient that never
   acknowledges, with the 1 s..60 s backoff). 0 = never. */
#define PT_BROKER_DEFAULT_MAX_DELIVERY_ATTEMPTS 20
#define PT_BROKER_DEFAULT_DELIVERY_WINDOW 1024
/* Limits' defaults (README "Limits"). */
#define PT_BROKER_DEFAULT_MAX_CONNECTIONS 512
#define PT_BROKER_DEFAULT_SUBMIT_RATE 500
#define PT_BROKER_DEFAULT_SUBMIT_BURST 1000
#define PT_BROKER_DEFAULT_QUEUE_QUOTA 100000

typedef struct {
    const char *endpoint;        /* ZeroMQ endpoint to bind */
    const char *conninfo;        /* libpq connection string */
    const char *db_role;         /* [broker] db_role: required database role; NULL/"" = take
                                    puente_broker if possible, warn if not (pt_store_role_check) */
    const char *keys_dir;        /* holds broker/ and operator/ key sets */
    const char *sql_dir;         /* migrations */
    size_t max_frame_bytes;
    /* Both borrowed, may be NULL (no metrics). The loop fills the families and
       sets readiness in the registry: not ready while the database is unreachable. */
    pt_metrics_t *metrics;
    pt_broker_metrics_t *families;
    /* Issue 6: a key set is due for replacement this many days after it was
       registered (puente_key_expiry_days; advisory, nothing is refused); 0 = never. */
    int key_rotation_days;
    /* Issue 6: dead letters (009_dead_letter.sql). 0 = never for attempts;
       expired messages are dead-lettered whatever it is. */
    uint32_t max_delivery_attempts;
    /* Several brokers over one database (issue 9; docs/ha.md). NULL / 0 = default. */
    const char *instance_id;     /* unique per broker; default "<hostname>:<endpoint port>" */
    int64_t delivery_lease_ms;   /* claim lease; default PT_STORE_DEFAULT_LEASE_MS */
    int64_t delivery_poll_ms;    /* polling fallback; default PT_DELIVER_SWEEP_MS */
    /* Issue 8: first offers in flight per recipient (pt_store_set_delivery_window);
       0 = no limit. main.c's default: PT_BROKER_DEFAULT_DELIVERY_WINDOW. */
    int64_t delivery_window;
    /* Limits (issue 7, broker/admission.h, transport.h); 0 = none. */
    size_t max_connections; /* open client connections */
    double submit_rate;     /* submissions per second per organisation */
    double submit_burst;    /* token bucket size */
    int64_t queue_quota;    /* waiting deliveries per recipient */
    /* Checkpoint cadence (issue 4, audit.h); 0 = default (1000 leaves, 10 s). */
    uint64_t checkpoint_events;
    int64_t checkpoint_seconds;
} pt_broker_config_t;

typedef struct _pt_broker_t pt_broker_t;

/* Loads keys, connects to PostgreSQL (waiting for it while *stop is 0), applies
   migrations, loads the directory and binds the endpoint. NULL on failure (err). */
pt_broker_t *pt_broker_new(const pt_broker_config_t *config, volatile sig_atomic_t *stop,
                           char *err, size_t err_len);

/* Serves until *stop becomes non-zero, then finishes the current batch (commits
   and receipts) and returns 0; -1 on a fatal socket error. */
int pt_broker_run(pt_broker_t *self, volatile sig_atomic_t *stop);

void pt_broker_destroy(pt_broker_t **self_p);

/* Test seam (tests/fuzz/fuzz_broker.c): one loop pass of pt_broker_run over n
   client messages given instead of read from the socket, each built as
   pt_transport_recv builds it (transport.h: pt_inbound_begin/add/end). Runs
   decode, envelope check, authn, verify, policy, consent, lifecycle, the group
   commit with its receipts and the pass's acks; replies go out on the
   transport as usual (dropped for a routing id no peer has). Takes over every
   inbound's data; at most PT_BROKER_BATCH_MAX are run, the rest are released. */
void pt_broker_pass(pt_broker_t *self, pt_inbound_t *inbound, size_t n);

#endif

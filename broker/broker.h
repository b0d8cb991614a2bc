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

#define PT_BROKER_VERSION "0.1.0"
#define PT_BROKER_DEFAULT_ENDPOINT "tcp://127.0.0.1:7550"
#define PT_BROKER_DEFAULT_MAX_FRAME (1024 * 1024)
#define PT_BROKER_BATCH_MAX 256
/* Limits' defaults (README "Limits"). */
#define PT_BROKER_DEFAULT_MAX_CONNECTIONS 512
#define PT_BROKER_DEFAULT_SUBMIT_RATE 500
#define PT_BROKER_DEFAULT_SUBMIT_BURST 1000
#define PT_BROKER_DEFAULT_QUEUE_QUOTA 100000

typedef struct {
    const char *endpoint;        /* ZeroMQ endpoint to bind */
    const char *conninfo;        /* libpq connection string */
    const char *keys_dir;        /* holds broker/ and operator/ key sets */
    const char *sql_dir;         /* migrations */
    size_t max_frame_bytes;
    /* Both borrowed, may be NULL (no metrics). The loop fills the families and
       sets readiness in the registry: not ready while the database is unreachable. */
    pt_metrics_t *metrics;
    pt_broker_metrics_t *families;
    /* Limits (issue 7, broker/admission.h, transport.h); 0 = none. */
    size_t max_connections; /* open client connections */
    double submit_rate;     /* submissions per second per organisation */
    double submit_burst;    /* token bucket size */
    int64_t queue_quota;    /* waiting deliveries per recipient */
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

#endif

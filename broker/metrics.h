/*  metrics — the broker's counters, gauges and histograms, their Prometheus text
    exposition (format 0.0.4), and a small HTTP endpoint (libmicrohttpd, its own
    thread) serving /metrics, /healthz and /readyz.

    Labels: a family declares its label names once; series are created on first
    use. Label values must come from closed sets the broker owns (stage names,
    reject codes, registered organisation ids) — never from message content. As a
    second guard each family holds at most PT_METRICS_MAX_SERIES series and a value
    is at most PT_METRICS_LABEL_MAX bytes; updates past that are dropped and counted
    in puente_metrics_series_dropped_total.

    Thread-safety: every function may be called from any thread (one mutex per
    registry; the loop thread updates, the HTTP thread renders).
*/
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include <stddef.h>

#define PT_METRICS_MAX_LABELS 4
#define PT_METRICS_MAX_SERIES 512
#define PT_METRICS_LABEL_MAX 64
#define PT_METRICS_DEFAULT_LISTEN "127.0.0.1:9750"

typedef struct _pt_metrics_t pt_metrics_t;
typedef struct _pt_metric_t pt_metric_t;
typedef struct _pt_metrics_http_t pt_metrics_http_t;

/* An empty registry (it holds only puente_metrics_series_dropped_total). NULL on
   failure. */
pt_metrics_t *pt_metrics_new(void);

/* Frees the registry and every family; families' pointers become invalid. */
void pt_metrics_destroy(pt_metrics_t **self_p);

/* Registers a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*, unique; help: one line;
   label_names: n_labels (<= PT_METRICS_MAX_LABELS) valid label names, copied.
   Histograms take n_buckets strictly increasing upper bounds (copied; +Inf is
   implicit). Returns a pointer owned by the registry, or NULL (bad argument,
   duplicate name, no memory). */
pt_metric_t *pt_metrics_counter(pt_metrics_t *self, const char *name, const char *help,
                                const char *const *label_names, size_t n_labels);
pt_metric_t *pt_metrics_gauge(pt_metrics_t *self, const char *name, const char *help,
                              const char *const *label_names, size_t n_labels);
pt_metric_t *pt_metrics_histogram(pt_metrics_t *self, const char *name, const char *help,
                                  const char *const *label_names, size_t n_labels,
                                  const double *buckets, size_t n_buckets);

/* The family registered under name, or NULL. */
pt_metric_t *pt_metrics_find(pt_metrics_t *self, const char *name);

/* label_values: one value per label name of the family (NULL when it has none).
   Counter: adds v (v >= 0). Gauge: adds v (may be negative). 0, or -1 when the
   family is of another kind, v is invalid, or the series was dropped (cap). */
int pt_metric_add(pt_metric_t *metric, const char *const *label_values, double v);

/* Gauge: sets the series to v. 0 or -1 as above. */
int pt_metric_set(pt_metric_t *metric, const char *const *label_values, double v);

/* Histogram: records one observation v (seconds for latencies). 0 or -1. */
int pt_metric_observe(pt_metric_t *metric, const char *const *label_values, double v);

/* Gauge: forgets a series (e.g. a recipient whose queue emptied and who was
   disabled). 0, or -1 if it did not exist. */
int pt_metric_remove(pt_metric_t *metric, const char *const *label_values);

/* Counter/gauge value, or a histogram's observation count; 0 for a series that
   does not exist. For tests and `puente status`. */
double pt_metric_value(pt_metric_t *metric, const char *const *label_values);

/* The whole registry in the Prometheus text format 0.0.4: families in
   registration order, series in creation order. Caller frees. NULL on no memory. */
char *pt_metrics_render(pt_metrics_t *self);

/* Readiness kept in the registry, for the broker loop to set and the built-in
   ready callback (pt_metrics_ready_state) to read. reason (copied, may be NULL)
   says why it is not ready. Starts as not ready: "starting". */
void pt_metrics_set_ready(pt_metrics_t *self, int ready, const char *reason);

/* --- the broker's metric families ------------------------------------------------ */

/* The families every puente-broker exposes, all registered by
   pt_metrics_broker_new. Label values the broker passes:
     stage    receive decode authenticate verify policy persist receipt deliver ack
     outcome  ok rejected error
     code     RejectCode names without the prefix (e.g. "bad_signature")
     operation  commit query prepare listen admin
     recipient, org  registered organisation ids (from the directory only)     */
typedef struct {
    pt_metric_t *messages;           /* puente_messages_total{stage,outcome} */
    pt_metric_t *rejects;            /* puente_rejects_total{code} */
    pt_metric_t *submit_to_receipt;  /* puente_submit_to_receipt_seconds */
    pt_metric_t *submit_to_delivery; /* puente_submit_to_delivery_seconds */
    pt_metric_t *queue_depth;        /* puente_queue_depth{recipient} */
    pt_metric_t *queue_oldest_age;   /* puente_queue_oldest_age_seconds{recipient} */
    pt_metric_t *db_round_trips;     /* puente_db_round_trips_total{operation} */
    pt_metric_t *db_errors;          /* puente_db_errors_total{operation} */
    pt_metric_t *checkpoint_age;     /* puente_checkpoint_age_seconds */
    pt_metric_t *connected_orgs;     /* puente_connected_organisations */
    pt_metric_t *key_expiry_days;    /* puente_key_expiry_days{org} */
    pt_metric_t *ready;              /* puente_ready (1/0, mirrors /readyz) */
    pt_metric_t *start_time;         /* puente_start_time_seconds */
    pt_metric_t *build_info;         /* puente_build_info{version} = 1 */
    pt_metric_t *dead_letters;       /* puente_dead_letters{recipient} (issue 6) */
    /* Limits (issue 7). */
    pt_metric_t *connections;         /* puente_connections (open client connections) */
    pt_metric_t *connections_refused; /* puente_connections_refused_total (max_connections) */
} pt_broker_metrics_t;

/* Registers the families above into self and fills out (pointers owned by
   self). Sets build_info{version} and start_time. 0, or -1 if any failed. */
int pt_metrics_broker_register(pt_metrics_t *self, const char *version,
                               pt_broker_metrics_t *out);

/* --- HTTP --------------------------------------------------------------------------- */

/* Says whether the service is ready: 1, or 0 with a short reason written into
   reason (no personal data; shown to whoever can reach the endpoint). Called
   from the HTTP thread. */
typedef int (*pt_metrics_ready_fn)(void *arg, char *reason, size_t reason_len);

/* The ready callback that reads pt_metrics_set_ready's state; arg is the
   pt_metrics_t. */
int pt_metrics_ready_state(void *arg, char *reason, size_t reason_len);

/* Serves GET /metrics (text/plain; version=0.0.4), /healthz (200 "ok" while the
   process runs) and /readyz (200 "ready" when ready(arg) says so, 503 with the
   reason otherwise) on listen = HOST:PORT (numeric IPv4/IPv6 or localhost; port 0
   picks a free one) in its own thread. metrics and arg are borrowed and must
   outlive the server. ready NULL = pt_metrics_ready_state on metrics. NULL on
   failure (err says why). */
pt_metrics_http_t *pt_metrics_http_new(pt_metrics_t *metrics, const char *listen,
                                       pt_metrics_ready_fn ready, void *arg, char *err,
                                       size_t err_len);

/* The port actually bound. */
int pt_metrics_http_port(const pt_metrics_http_t *self);

/* Stops the thread (waits for requests in flight) and frees. */
void pt_metrics_http_destroy(pt_metrics_http_t **self_p);

#endif

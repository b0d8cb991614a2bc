/*  harness — integration-test scaffolding: a fresh database in the throwaway
    cluster that tests/run.sh started (PUENTE_TEST_DB), a key directory with the
    broker's, the operator's and the demo organisations' keys, a real
    puente-broker process on a free loopback port, SDK clients and raw CURVE
    sockets that can send arbitrary frames.
*/
#ifndef PT_HARNESS_H
#define PT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "puente.h"

typedef struct _pt_harness_t pt_harness_t;

/* Brokers one harness can run over its database (issue 9): 0 and the others. */
#define PT_HARNESS_BROKERS 3
typedef struct _pt_raw_t pt_raw_t;

/* The five demo organisations; every pair has an agreement except SV-CONNA/US-ORR. */
extern const char *const pt_harness_orgs[5];
/* Their registered service types (','-joined), in the same order. */
extern const char *const pt_harness_services[5];

/* Creates the database, the key directory (keys for broker, operator, the demo orgs
   and the unregistered "ZZ-ROGUE") and picks a port. NULL on failure (printed). */
pt_harness_t *pt_harness_new(const char *name);

/* Starts puente-broker (logs to <dir>/broker.log) and waits until it answers. 0 or -1. */
int pt_harness_broker_start(pt_harness_t *self);

/* Sends sig to the broker and waits for it to exit. Returns its exit status (or
   128 + signal). */
int pt_harness_broker_stop(pt_harness_t *self, int sig);

/* Registers the demo organisations and agreements through the operator client. 0 or -1. */
int pt_harness_register_demo(pt_harness_t *self);

/* An SDK client for org (or "operator"). NULL on failure. */
pt_client_t *pt_harness_client(pt_harness_t *self, const char *org, int receive);

const char *pt_harness_endpoint(const pt_harness_t *self);
const char *pt_harness_keys(const pt_harness_t *self);
const char *pt_harness_dir(const pt_harness_t *self);
const char *pt_harness_conninfo(const pt_harness_t *self);

/* Runs a shell command with PUENTE_BROKER and PUENTE_KEYS set for this harness,
   capturing stdout and stderr (each up to cap bytes, NUL-terminated). Returns the
   exit status, or -1. */
int pt_harness_sh(pt_harness_t *self, const char *command, char *out, size_t out_cap, char *err,
                  size_t err_cap);

/* Lines of <dir>/broker.log that contain text, and also `also` when it is not NULL.
   -1 when the log cannot be read. */
int pt_harness_log_count(pt_harness_t *self, const char *text, const char *also);

/* Counts rows of a SQL query's first column as an integer (test inspection). -1 on error. */
long pt_harness_sql_count(pt_harness_t *self, const char *sql);

/* Stops the broker, drops the database, removes the directory. */
void pt_harness_destroy(pt_harness_t **self_p);

/* --- raw sockets ------------------------------------------------------------- */

/* A DEALER with org's CURVE keys (any org in the key directory). */
pt_raw_t *pt_raw_new(pt_harness_t *harness, const char *org);
void pt_raw_destroy(pt_raw_t **self_p);

/* Sends n frames as one message (frames may be empty). 0 or -1. */
int pt_raw_send(pt_raw_t *self, const void *const *frames, const size_t *lens, size_t n);

/* Packs and sends a ClientFrame. 0 or -1. */
int pt_raw_send_frame(pt_raw_t *self, const Puente__V1__ClientFrame *frame);

/* Receives one BrokerFrame within timeout_ms. NULL on timeout or if it does not
   decode. Caller frees with puente__v1__broker_frame__free_unpacked. */
Puente__V1__BrokerFrame *pt_raw_recv(pt_raw_t *self, int timeout_ms);

/* The packed example body of message_type (pt_types' example JSON). NULL if the
   type is unknown. Caller frees. */
uint8_t *pt_harness_example_body(const char *message_type, size_t *len);

/* An SDK outbox for org on the harness's first broker, its state in
   DIR/outbox-NAME.db, client timeout timeout_ms, with the directory fetched
   (up to 20 s). NULL, with the reason on stderr, otherwise. */
pt_outbox_t *pt_harness_outbox(pt_harness_t *self, const char *org, const char *name,
                               int timeout_ms);

/* Sends the example body of message `type` from `from` (an SDK client) to `to` on
   case_token, with every consent granted (services, disclosure, tracing; legal
   basis consent) and a best-interests reference (TEST-BIA-0001, which
   return.notice needs), so that only what the test arranges can refuse it; correlation
   NULL = a new one, expires_in_ms 0 = no expiry. Fills *receipt and *rej (either
   may be NULL). Returns pt_client_send's result (PT_CLIENT_INVALID if the type
   has no example body); anything but PT_CLIENT_OK is also written to stderr. */
pt_client_result_t pt_harness_send(pt_client_t *from, const char *type, const char *to,
                                   const char *case_token, const uint8_t *correlation,
                                   int64_t expires_in_ms, pt_receipt_info_t *receipt,
                                   pt_reject_info_t *rej);

/* Builds a sealed, signed envelope from sender to recipient with the example body
   of message_type, using keys from the harness key directory (sealing key of the
   recipient read from its files). expires_at_ms 0 = none. Caller frees *out. 0 or -1.
   mutate (may be NULL) is called on the header before sealing. */
int pt_harness_envelope(pt_harness_t *self, const char *sender, const char *recipient,
                        const char *message_type, const char *case_token,
                        void (*mutate)(Puente__V1__Header *header, void *arg), void *arg,
                        uint8_t **out, size_t *out_len);

/* --- added for the crash and secrets tests (issue 7) -------------------------- */

/* Pid of the running broker, or 0 when none runs (for SIGSTOP / SIGKILL timing in
   crash tests; stop it with pt_harness_broker_stop so that it is reaped). */
int pt_harness_broker_pid(const pt_harness_t *self);

/* Starts puente-broker as pt_harness_broker_start does (same arguments, output
   appended to <dir>/broker.log) but expects it to exit by itself, e.g. because
   it refuses its keys. Returns its exit status (128 + signal if a signal ended
   it), or -1 if it could not be started or was still running after timeout_ms
   (it is then killed and reaped). */
int pt_harness_broker_run_to_exit(pt_harness_t *self, int timeout_ms);

/* --- added for the audit tests (issue 4) ------------------------------------ */

/* Runs one SQL script (several statements allowed) as the cluster's superuser in
   database dbname of the test cluster (NULL = this harness's database). 0 or -1
   (the error is printed). */
int pt_harness_sql_exec(pt_harness_t *self, const char *dbname, const char *sql);

/* This harness's database name, and the conninfo of another database of the same
   cluster (written into out). */
const char *pt_harness_dbname(const pt_harness_t *self);
void pt_harness_conninfo_for(const pt_harness_t *self, const char *dbname, char *out, size_t cap);

/* --- added for the metrics tests (issue 6) ---------------------------------- */

/* Picks a free loopback port for the broker's metrics endpoint and exports
   PUENTE_METRICS_LISTEN=127.0.0.1:PORT, so every broker this process starts
   afterwards (pt_harness_broker_start) serves /metrics there. Returns the base
   URL "http://127.0.0.1:PORT" (static storage: one per process), or NULL. Call
   before starting the broker. */
const char *pt_harness_metrics_url(pt_harness_t *self);

/* --- added for several brokers over one database (issue 9) ------------------- */

/* Starts broker number index (0..PT_HARNESS_BROKERS-1) over this harness's
   database and key directory, with --instance-id broker<index>, on its own free
   port (index 0: the port of pt_harness_endpoint), logging to <dir>/broker.log
   (index 0) or <dir>/broker<index>.log, and waits until it answers. The
   environment of the test process (PUENTE_DELIVERY_LEASE, ...) reaches it. 0 or
   -1. pt_harness_destroy stops every broker still running. */
int pt_harness_broker_start_at(pt_harness_t *self, int index);

/* Sends sig to broker index and reaps it (exit status, or 128 + signal; -1 if it
   does not run). */
int pt_harness_broker_stop_at(pt_harness_t *self, int index, int sig);

/* Pid of broker index, 0 when it does not run. */
int pt_harness_broker_pid_at(const pt_harness_t *self, int index);

/* Endpoint of broker index (static in the harness), NULL for a bad index. */
const char *pt_harness_endpoint_at(const pt_harness_t *self, int index);

/* An SDK client of org (or "operator") connected to broker index. NULL on failure. */
pt_client_t *pt_harness_client_at(pt_harness_t *self, int index, const char *org, int receive);

/* A raw DEALER with org's CURVE keys connected to broker index. */
pt_raw_t *pt_raw_new_at(pt_harness_t *harness, int index, const char *org);

/* The client failover test's names for broker 1 (pt_harness_broker_*_at(self, 1)):
   a second broker over the same database and keys, on its own port. */
int pt_harness_second_broker_start(pt_harness_t *self);
int pt_harness_second_broker_stop(pt_harness_t *self, int sig);
/* Its endpoint ("" for none) and pid (0 when not running). */
const char *pt_harness_second_broker_endpoint(const pt_harness_t *self);
int pt_harness_second_broker_pid(const pt_harness_t *self);

/* --- shared helpers of the integration tests ------------------------------- */

/* A harness (pt_harness_new(name)) with its broker started and the demo
   organisations registered: what most suites' init does. If metrics_url_out is
   not NULL, the metrics endpoint is set up first (pt_harness_metrics_url) and
   *metrics_url_out receives its base URL. NULL on failure (the half-built
   harness is destroyed). */
pt_harness_t *pt_harness_new_started(const char *name, const char **metrics_url_out);

/* Runs the `puente` CLI (PUENTE_CLI_BIN, default build/puente) with the
   printf-style arguments fmt through pt_harness_sh (this harness's broker and
   keys), stdout and stderr into out and err as there. With PUENTE_TEST_VERBOSE
   set, prints the command, its exit status and both outputs to stderr. Returns
   the exit status, or -1. Arguments longer than 4 KiB are cut. */
int pt_harness_cli(pt_harness_t *self, char *out, size_t out_cap, char *err, size_t err_cap,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The environment variable name as a positive whole number; fallback when it is
   unset, not a number, zero or negative. */
long pt_harness_env_long(const char *name, long fallback);

/* GETs url with libcurl, waiting at most timeout_ms. Returns the HTTP status, or
   -1 when no answer came (refused, timed out, out of memory). If body_out is not
   NULL, *body_out receives the body NUL-terminated ("" when there was none; NULL
   only when out of memory), which the caller frees. */
long pt_harness_http_get(const char *url, int timeout_ms, char **body_out);

/* The value of series (a metric name with its labels as the exposition writes
   them, e.g. `puente_rejects_total{code="no_agreement"}`) in a Prometheus text
   exposition: the number after the first line that starts with series and a
   space. 0 with *value_out set, -1 when absent (text may be NULL). O(len(text)). */
int pt_harness_metric_value(const char *text, const char *series, double *value_out);

/* Scrapes base_url + "/metrics" (base_url as pt_harness_metrics_url returns it)
   within timeout_ms and reads series as pt_harness_metric_value does. 0 with
   *value_out set; -1 when the endpoint did not answer 200 or series is absent. */
int pt_harness_metric_scrape(const char *base_url, const char *series, int timeout_ms,
                             double *value_out);

#endif

/*  metrics — registry, Prometheus text exposition and the HTTP endpoint (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_kind_t;

typedef struct s_series_t {
    char *labels[PT_METRICS_MAX_LABELS];
    double value;          /* counter / gauge; histogram sum */
    unsigned long long count;   /* histogram */
    unsigned long long *buckets; /* histogram, non-cumulative, n_buckets + 1 (+Inf) */
    struct s_series_t *next;
} s_series_t;

struct _pt_metric_t {
    pt_metrics_t *registry;
    s_kind_t kind;
    char *name;
    char *help;
    char *label_names[PT_METRICS_MAX_LABELS];
    size_t n_labels;
    double *bounds;
    size_t n_buckets;
    s_series_t *series, *last;
    size_t n_series;
    pt_metric_t *next;
};

struct _pt_metrics_t {
    pthread_mutex_t lock;
    pt_metric_t *families, *last;
    pt_metric_t *dropped;
    int ready;
    char reason[200];
};

/* ---- registry --------------------------------------------------------------------- */

static int s_valid_name(const char *name, int allow_colon)
{
    if (!name || !name[0])
        return 0;
    for (const char *p = name; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'
                    || (allow_colon && *p == ':');
        if (!alpha && !(p > name && *p >= '0' && *p <= '9'))
            return 0;
    }
    return 1;
}

static void s_series_free(s_series_t *series)
{
    for (size_t i = 0; i < PT_METRICS_MAX_LABELS; i++)
        free(series->labels[i]);
    free(series->buckets);
    free(series);
}

static void s_family_free(pt_metric_t *family)
{
    for (s_series_t *s = family->series, *next; s; s = next) {
        next = s->next;
        s_series_free(s);
    }
    for (size_t i = 0; i < PT_METRICS_MAX_LABELS; i++)
        free(family->label_names[i]);
    free(family->bounds);
    free(family->name);
    free(family->help);
    free(family);
}

static pt_metric_t *s_register(pt_metrics_t *self, s_kind_t kind, const char *name,
                               const char *help, const char *const *label_names,
                               size_t n_labels, const double *bounds, size_t n_buckets)
{
    if (!self || !s_valid_name(name, 1) || !help || n_labels > PT_METRICS_MAX_LABELS
        || (n_labels && !label_names))
        return NULL;
    for (size_t i = 0; i < n_labels; i++)
        if (!s_valid_name(label_names[i], 0) || strncmp(label_names[i], "__", 2) == 0
            || (kind == S_HISTOGRAM && strcmp(label_names[i], "le") == 0))
            return NULL;
    for (size_t i = 1; i < n_buckets; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    pt_metric_t *family = calloc(1, sizeof *family);
    if (!family)
        return NULL;
    family->registry = self;
    family->kind = kind;
    family->n_labels = n_labels;
    family->n_buckets = n_buckets;
    family->name = strdup(name);
    family->help = strdup(help);
    if (!family->name || !family->help)
        goto error;
    for (size_t i = 0; i < n_labels; i++)
        if (!(family->label_names[i] = strdup(label_names[i])))
            goto error;
    if (n_buckets) {
        if (!(family->bounds = malloc(n_buckets * sizeof *family->bounds)))
            goto error;
        memcpy(family->bounds, bounds, n_buckets * sizeof *bounds);
    }
    pthread_mutex_lock(&self->lock);
    for (pt_metric_t *f = self->families; f; f = f->next)
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&self->lock);
            goto error;
        }
    if (self->last)
        self->last->next = family;
    else
        self->families = family;
    self->last = family;
    pthread_mutex_unlock(&self->lock);
    return family;
error:
    s_family_free(family);
    return NULL;
}

pt_metrics_t *pt_metrics_new(void)
{
    pt_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    snprintf(self->reason, sizeof self->reason, "starting");
    self->dropped = s_register(self, S_COUNTER, "puente_metrics_series_dropped_total",
                               "Metric updates dropped because a family reached its series cap "
                               "or a label value was too long.",
                               NULL, 0, NULL, 0);
    if (!self->dropped)
        pt_metrics_destroy(&self);
    return self;
}

void pt_metrics_destroy(pt_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_metrics_t *self = *self_p;
    for (pt_metric_t *f = self->families, *next; f; f = next) {
        next = f->next;
        s_family_free(f);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

pt_metric_t *pt_metrics_counter(pt_metrics_t *self, const char *name, const char *help,
                                const char *const *label_names, size_t n_labels)
{
    return s_register(self, S_COUNTER, name, help, label_names, n_labels, NULL, 0);
}

pt_metric_t *pt_metrics_gauge(pt_metrics_t *self, const char *name, const char *help,
                              const char *const *label_names, size_t n_labels)
{
    return s_register(self, S_GAUGE, name, help, label_names, n_labels, NULL, 0);
}

pt_metric_t *pt_metrics_histogram(pt_metrics_t *self, const char *name, const char *help,
                                  const char *const *label_names, size_t n_labels,
                                  const double *buckets, size_t n_buckets)
{
    if (!buckets || !n_buckets)
        return NULL;
    return s_register(self, S_HISTOGRAM, name, help, label_names, n_labels, buckets, n_buckets);
}

pt_metric_t *pt_metrics_find(pt_metrics_t *self, const char *name)
{
    pthread_mutex_lock(&self->lock);
    pt_metric_t *f = self->families;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    pthread_mutex_unlock(&self->lock);
    return f;
}

/* Under the lock. The series for label_values, created if create; NULL if absent
   or if it cannot be created (cap, long value, no memory — counted as dropped). */
static s_series_t *s_series(pt_metric_t *family, const char *const *values, int create)
{
    for (s_series_t *s = family->series; s; s = s->next) {
        size_t i = 0;
        while (i < family->n_labels && strcmp(s->labels[i], values[i]) == 0)
            i++;
        if (i == family->n_labels)
            return s;
    }
    if (!create)
        return NULL;
    s_series_t *s = NULL;
    if (family->n_series >= PT_METRICS_MAX_SERIES)
        goto dropped;
    for (size_t i = 0; i < family->n_labels; i++)
        if (!values[i] || strlen(values[i]) > PT_METRICS_LABEL_MAX)
            goto dropped;
    if (!(s = calloc(1, sizeof *s)))
        goto dropped;
    for (size_t i = 0; i < family->n_labels; i++)
        if (!(s->labels[i] = strdup(values[i])))
            goto dropped;
    if (family->kind == S_HISTOGRAM
        && !(s->buckets = calloc(family->n_buckets + 1, sizeof *s->buckets)))
        goto dropped;
    if (family->last)
        family->last->next = s;
    else
        family->series = s;
    family->last = s;
    family->n_series++;
    return s;
dropped:
    if (s)
        s_series_free(s);
    pt_metric_t *d = family->registry->dropped;
    if (d && d != family) {
        s_series_t *ds = s_series(d, NULL, 1);
        if (ds)
            ds->value += 1;
    }
    return NULL;
}

static int s_labels_ok(const pt_metric_t *family, const char *const *values)
{
    if (family->n_labels && !values)
        return 0;
    for (size_t i = 0; i < family->n_labels; i++)
        if (!values[i])
            return 0;
    return 1;
}

static int s_update(pt_metric_t *family, const char *const *values, double v, int op)
{
    /* op: 0 add, 1 set, 2 observe */
    if (!family || !s_labels_ok(family, values) || isnan(v))
        return -1;
    if ((op == 0 && family->kind == S_HISTOGRAM) || (op == 0 && family->kind == S_COUNTER && v < 0)
        || (op == 1 && family->kind != S_GAUGE) || (op == 2 && family->kind != S_HISTOGRAM))
        return -1;
    pt_metrics_t *registry = family->registry;
    pthread_mutex_lock(&registry->lock);
    s_series_t *s = s_series(family, values, 1);
    if (s) {
        if (op == 0)
            s->value += v;
        else if (op == 1)
            s->value = v;
        else {
            size_t b = 0;
            while (b < family->n_buckets && v > family->bounds[b])
                b++;
            s->buckets[b]++;
            s->count++;
            s->value += v;
        }
    }
    pthread_mutex_unlock(&registry->lock);
    return s ? 0 : -1;
}

int pt_metric_add(pt_metric_t *metric, const char *const *label_values, double v)
{
    return s_update(metric, label_values, v, 0);
}

int pt_metric_set(pt_metric_t *metric, const char *const *label_values, double v)
{
    return s_update(metric, label_values, v, 1);
}

int pt_metric_observe(pt_metric_t *metric, const char *const *label_values, double v)
{
    return s_update(metric, label_values, v, 2);
}

int pt_metric_remove(pt_metric_t *metric, const char *const *label_values)
{
    if (!metric || metric->kind != S_GAUGE || !s_labels_ok(metric, label_values))
        return -1;
    pthread_mutex_lock(&metric->registry->lock);
    s_series_t *target = s_series(metric, label_values, 0), *prev = NULL;
    for (s_series_t *s = metric->series; target && s != target; s = s->next)
        prev = s;
    if (target) {
        if (prev)
            prev->next = target->next;
        else
            metric->series = target->next;
        if (metric->last == target)
            metric->last = prev;
        metric->n_series--;
        s_series_free(target);
    }
    pthread_mutex_unlock(&metric->registry->lock);
    return target ? 0 : -1;
}

double pt_metric_value(pt_metric_t *metric, const char *const *label_values)
{
    if (!metric || !s_labels_ok(metric, label_values))
        return 0;
    pthread_mutex_lock(&metric->registry->lock);
    s_series_t *s = s_series(metric, label_values, 0);
    double v = !s ? 0 : metric->kind == S_HISTOGRAM ? (double) s->count : s->value;
    pthread_mutex_unlock(&metric->registry->lock);
    return v;
}

void pt_metrics_set_ready(pt_metrics_t *self, int ready, const char *reason)
{
    pthread_mutex_lock(&self->lock);
    self->ready = ready ? 1 : 0;
    snprintf(self->reason, sizeof self->reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&self->lock);
}

int pt_metrics_ready_state(void *arg, char *reason, size_t reason_len)
{
    pt_metrics_t *self = arg;
    pthread_mutex_lock(&self->lock);
    int ready = self->ready;
    if (reason && reason_len)
        snprintf(reason, reason_len, "%s", self->reason);
    pthread_mutex_unlock(&self->lock);
    return ready;
}

/* ---- exposition -------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} s_buf_t;

static void s_put(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_put(s_buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t) n < b->cap - b->len) {
            b->len += (size_t) n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t) n;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
}

/* Escapes for a label value (quote too) or a HELP text (quote kept as is). */
static void s_put_escaped(s_buf_t *b, const char *text, int quote)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            s_put(b, "\\\\");
        else if (*p == '\n')
            s_put(b, "\\n");
        else if (quote && *p == '"')
            s_put(b, "\\\"");
        else
            s_put(b, "%c", *p);
    }
}

static void s_put_number(s_buf_t *b, double v)
{
    if (isinf(v))
        s_put(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        s_put(b, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        s_put(b, "%.0f", v);
    else
        s_put(b, "%.17g", v);
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels at all. */
static void s_put_labels(s_buf_t *b, const pt_metric_t *f, const s_series_t *s, const char *le)
{
    if (!f->n_labels && !le)
        return;
    s_put(b, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        s_put(b, "%s%s=\"", i ? "," : "", f->label_names[i]);
        s_put_escaped(b, s->labels[i], 1);
        s_put(b, "\"");
    }
    if (le)
        s_put(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    s_put(b, "}");
}

char *pt_metrics_render(pt_metrics_t *self)
{
    s_buf_t b = {.cap = 4096};
    if (!(b.data = malloc(b.cap)))
        return NULL;
    b.data[0] = '\0';
    pthread_mutex_lock(&self->lock);
    for (const pt_metric_t *f = self->families; f; f = f->next) {
        s_put(&b, "# HELP %s ", f->name);
        s_put_escaped(&b, f->help, 0);
        s_put(&b, "\n# TYPE %s %s\n", f->name,
              f->kind == S_COUNTER ? "counter" : f->kind == S_GAUGE ? "gauge" : "histogram");
        /* A family without labels shows 0 before its first update, so that
           dashboards and alerts see it exists. */
        if (!f->series && !f->n_labels) {
            if (f->kind == S_HISTOGRAM) {
                s_put(&b, "%s_bucket{le=\"+Inf\"} 0\n%s_sum 0\n%s_count 0\n", f->name, f->name,
                      f->name);
            }
            else
                s_put(&b, "%s 0\n", f->name);
        }
        for (const s_series_t *s = f->series; s; s = s->next) {
            if (f->kind != S_HISTOGRAM) {
                s_put(&b, "%s", f->name);
                s_put_labels(&b, f, s, NULL);
                s_put(&b, " ");
                s_put_number(&b, s->value);
                s_put(&b, "\n");
                continue;
            }
            unsigned long long cumulative = 0;
            for (size_t i = 0; i <= f->n_buckets; i++) {
                char le[64];
                if (i < f->n_buckets)
                    snprintf(le, sizeof le, "%.6g", f->bounds[i]);
                else
                    snprintf(le, sizeof le, "+Inf");
                cumulative += s->buckets[i];
                s_put(&b, "%s_bucket", f->name);
                s_put_labels(&b, f, s, le);
                s_put(&b, " %llu\n", cumulative);
            }
            s_put(&b, "%s_sum", f->name);
            s_put_labels(&b, f, s, NULL);
            s_put(&b, " ");
            s_put_number(&b, s->value);
            s_put(&b, "\n%s_count", f->name);
            s_put_labels(&b, f, s, NULL);
            s_put(&b, " %llu\n", s->count);
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ---- the broker's families ----------------------------------------------------------- */

int pt_metrics_broker_register(pt_metrics_t *self, const char *version, pt_broker_metrics_t *out)
{
    static const double latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30, 60};
    static const double delivery[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600,
                                      21600, 86400};
    static const char *const stage_outcome[] = {"stage", "outcome"};
    static const char *const code[] = {"code"};
    static const char *const recipient[] = {"recipient"};
    static const char *const operation[] = {"operation"};
    static const char *const org_label[] = {"org"};
    static const char *const version_label[] = {"version"};
    memset(out, 0, sizeof *out);
    out->messages = pt_metrics_counter(
        self, "puente_messages_total",
        "Messages that left a pipeline stage, by stage and outcome (ok, rejected, error).",
        stage_outcome, 2);
    out->rejects = pt_metrics_counter(self, "puente_rejects_total",
                                      "Rejected submissions by reject code.", code, 1);
    out->submit_to_receipt = pt_metrics_histogram(
        self, "puente_submit_to_receipt_seconds",
        "Time from a submission's arrival to its receipt being sent (after COMMIT).", NULL, 0,
        latency, sizeof latency / sizeof latency[0]);
    out->submit_to_delivery = pt_metrics_histogram(
        self, "puente_submit_to_delivery_seconds",
        "Time from a submission's arrival to the recipient's acknowledgement of its delivery.",
        NULL, 0, delivery, sizeof delivery / sizeof delivery[0]);
    out->queue_depth = pt_metrics_gauge(self, "puente_queue_depth",
                                        "Deliveries waiting for acknowledgement, per recipient.",
                                        recipient, 1);
    out->queue_oldest_age = pt_metrics_gauge(
        self, "puente_queue_oldest_age_seconds",
        "Age of the oldest unacknowledged delivery, per recipient.", recipient, 1);
    out->db_round_trips = pt_metrics_counter(self, "puente_db_round_trips_total",
                                             "PostgreSQL round trips, by operation.", operation, 1);
    out->db_errors = pt_metrics_counter(self, "puente_db_errors_total",
                                        "PostgreSQL errors (failed queries, lost connections), "
                                        "by operation.",
                                        operation, 1);
    out->checkpoint_age = pt_metrics_gauge(self, "puente_checkpoint_age_seconds",
                                           "Age of the latest signed log checkpoint.", NULL, 0);
    out->connected_orgs = pt_metrics_gauge(
        self, "puente_connected_organisations",
        "Organisations with a live connection (seen within the heartbeat window).", NULL, 0);
    out->key_expiry_days = pt_metrics_gauge(
        self, "puente_key_expiry_days",
        "Days until the organisation's current key set is due for replacement: its revocation "
        "time, or key_rotation_days after it was registered (advisory); negative once past; "
        "+Inf when it never expires (key_rotation_days = 0).",
        org_label, 1);
    out->ready = pt_metrics_gauge(self, "puente_ready",
                                  "1 when the database is reachable and migrations are current.",
                                  NULL, 0);
    out->start_time = pt_metrics_gauge(self, "puente_start_time_seconds",
                                       "Unix time the broker process started.", NULL, 0);
    out->build_info = pt_metrics_gauge(self, "puente_build_info",
                                       "Always 1; the version label is the broker's.",
                                       version_label, 1);
    out->dead_letters = pt_metrics_gauge(
        self, "puente_dead_letters",
        "Dead letters (deliveries no longer offered: too many attempts or expired) waiting "
        "for the operator to requeue or drop them, per recipient.",
        recipient, 1);
    out->connections = pt_metrics_gauge(
        self, "puente_connections",
        "Client connections open on the broker's socket (handshakes in progress included).", NULL,
        0);
    out->connections_refused = pt_metrics_counter(
        self, "puente_connections_refused_total",
        "CURVE handshakes refused because max_connections connections were open.", NULL, 0);
    pt_metric_t *all[] = {out->dead_letters,       out->messages,        out->rejects,
                          out->submit_to_receipt,  out->submit_to_delivery,
                          out->queue_depth,        out->queue_oldest_age, out->db_round_trips,
                          out->db_errors,          out->checkpoint_age,  out->connected_orgs,
                          out->key_expiry_days,    out->ready,           out->start_time,
                          out->build_info,         out->connections,     out->connections_refused};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!all[i])
            return -1;
    const char *v[] = {version ? version : "unknown"};
    pt_metric_set(out->build_info, v, 1);
    pt_metric_set(out->start_time, NULL, (double) time(NULL));
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

struct _pt_metrics_http_t {
    struct MHD_Daemon *daemon;
    pt_metrics_t *metrics;
    pt_metrics_ready_fn ready;
    void *arg;
    int port;
};

static enum MHD_Result s_reply(struct MHD_Connection *connection, unsigned int status,
                               const char *content_type, char *body, int take)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(
        strlen(body), body, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!response) {
        if (take)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", content_type);
    MHD_add_response_header(response, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result s_on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) con_cls;
    pt_metrics_http_t *self = cls;
    static const char text[] = "text/plain; charset=utf-8";
    if (*upload_data_size) {
        *upload_data_size = 0; /* bodies are not read: every endpoint is GET */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return s_reply(connection, 405, text, "method not allowed\n", 0);
    if (strcmp(url, "/metrics") == 0) {
        char *body = pt_metrics_render(self->metrics);
        if (!body)
            return s_reply(connection, 500, text, "out of memory\n", 0);
        return s_reply(connection, 200, "text/plain; version=0.0.4; charset=utf-8", body, 1);
    }
    if (strcmp(url, "/healthz") == 0)
        return s_reply(connection, 200, text, "ok\n", 0);
    if (strcmp(url, "/readyz") == 0) {
        char reason[256] = "";
        int ready = self->ready(self->arg, reason, sizeof reason);
        char body[300];
        snprintf(body, sizeof body, "%s%s%s\n", ready ? "ready" : "not ready",
                 !ready && reason[0] ? ": " : "", ready ? "" : reason);
        return s_reply(connection, ready ? 200 : 503, text, body, 0);
    }
    return s_reply(connection, 404, text, "not found (try /metrics, /healthz, /readyz)\n", 0);
}

pt_metrics_http_t *pt_metrics_http_new(pt_metrics_t *metrics, const char *listen,
                                       pt_metrics_ready_fn ready, void *arg, char *err,
                                       size_t err_len)
{
    pt_metrics_http_t *self = NULL;
    struct addrinfo *ai = NULL;
    char host[256];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!metrics || !colon || colon == listen || (size_t) (colon - listen) >= sizeof host) {
        snprintf(err, err_len, "metrics listen address: expected HOST:PORT, got '%s'",
                 listen ? listen : "");
        goto error;
    }
    memcpy(host, listen, (size_t) (colon - listen));
    host[colon - listen] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        snprintf(err, err_len, "metrics listen address %s: %s", listen, gai_strerror(gai));
        goto error;
    }
    if (!(self = calloc(1, sizeof *self))) {
        snprintf(err, err_len, "out of memory");
        goto error;
    }
    self->metrics = metrics;
    self->ready = ready ? ready : pt_metrics_ready_state;
    self->arg = ready ? arg : metrics;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, s_on_request, self, MHD_OPTION_SOCK_ADDR,
                                    ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 32,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
                                    MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, err_len, "cannot serve metrics on %s (address in use?)", listen);
        goto error;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? (int) info->port : 0;
    freeaddrinfo(ai);
    return self;
error:
    if (ai)
        freeaddrinfo(ai);
    pt_metrics_http_destroy(&self);
    return NULL;
}

int pt_metrics_http_port(const pt_metrics_http_t *self)
{
    return self->port;
}

void pt_metrics_http_destroy(pt_metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_metrics_http_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    free(self);
    *self_p = NULL;
}

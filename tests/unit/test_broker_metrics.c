/*  test_broker_metrics — broker/metrics: exact exposition text, histogram
    buckets, label escaping, the series cap, concurrent updates while scraping,
    and the HTTP endpoint (/metrics, /healthz, /readyz) scraped with libcurl. */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "cu_main.h"

static void test_exposition_exact(void)
{
    pt_metrics_t *m = pt_metrics_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    static const char *const so[] = {"stage", "outcome"};
    pt_metric_t *msgs = pt_metrics_counter(m, "puente_messages_total", "Messages by stage.", so, 2);
    pt_metric_t *conn = pt_metrics_gauge(m, "puente_connected_organisations", "Connected.", NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msgs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
    const char *a[] = {"persist", "ok"}, *b[] = {"policy", "rejected"};
    CU_ASSERT_EQUAL(pt_metric_add(msgs, a, 1), 0);
    CU_ASSERT_EQUAL(pt_metric_add(msgs, b, 2), 0);
    CU_ASSERT_EQUAL(pt_metric_add(msgs, a, 3), 0);
    CU_ASSERT_EQUAL(pt_metric_set(conn, NULL, 2.5), 0);
    char *text = pt_metrics_render(m);
    CU_ASSERT_STRING_EQUAL(text,
        "# HELP puente_metrics_series_dropped_total Metric updates dropped because a family "
        "reached its series cap or a label value was too long.\n"
        "# TYPE puente_metrics_series_dropped_total counter\n"
        "puente_metrics_series_dropped_total 0\n"
        "# HELP puente_messages_total Messages by stage.\n"
        "# TYPE puente_messages_total counter\n"
        "puente_messages_total{stage=\"persist\",outcome=\"ok\"} 4\n"
        "puente_messages_total{stage=\"policy\",outcome=\"rejected\"} 2\n"
        "# HELP puente_connected_organisations Connected.\n"
        "# TYPE puente_connected_organisations gauge\n"
        "puente_connected_organisations 2.5\n");
    free(text);
    /* wrong kinds and bad values are refused */
    CU_ASSERT_EQUAL(pt_metric_set(msgs, a, 1), -1);
    CU_ASSERT_EQUAL(pt_metric_add(msgs, a, -1), -1);
    CU_ASSERT_EQUAL(pt_metric_observe(conn, NULL, 1), -1);
    CU_ASSERT_EQUAL(pt_metric_add(msgs, NULL, 1), -1);
    CU_ASSERT_EQUAL(pt_metric_add(conn, NULL, -1), 0);
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(conn, NULL), 1.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(msgs, a), 4, 1e-9);
    /* duplicate and invalid names */
    CU_ASSERT_PTR_NULL(pt_metrics_gauge(m, "puente_messages_total", "again", NULL, 0));
    CU_ASSERT_PTR_NULL(pt_metrics_gauge(m, "9starts_with_digit", "x", NULL, 0));
    static const char *const bad_label[] = {"with-dash"};
    CU_ASSERT_PTR_NULL(pt_metrics_gauge(m, "ok_name", "x", bad_label, 1));
    CU_ASSERT_PTR_EQUAL(pt_metrics_find(m, "puente_messages_total"), msgs);
    pt_metrics_destroy(&m);
    CU_ASSERT_PTR_NULL(m);
    pt_metrics_destroy(&m);
}

static void test_histogram_buckets(void)
{
    pt_metrics_t *m = pt_metrics_new();
    static const double bounds[] = {0.1, 0.5, 1};
    static const char *const lbl[] = {"kind"};
    pt_metric_t *h = pt_metrics_histogram(m, "lat_seconds", "Latency.", lbl, 1, bounds, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const char *k[] = {"x"};
    double obs[] = {0.05, 0.1, 0.3, 0.7, 2, 0.5};
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(pt_metric_observe(h, k, obs[i]), 0);
    static const double unordered[] = {1, 0.5};
    CU_ASSERT_PTR_NULL(pt_metrics_histogram(m, "bad_seconds", "x", NULL, 0, unordered, 2));
    static const char *const le[] = {"le"};
    CU_ASSERT_PTR_NULL(pt_metrics_histogram(m, "bad2_seconds", "x", le, 1, bounds, 3));
    pt_metric_t *empty = pt_metrics_histogram(m, "empty_seconds", "Nothing yet.", NULL, 0,
                                              bounds, 3);
    CU_ASSERT_PTR_NOT_NULL(empty);
    char *text = pt_metrics_render(m);
    const char *body = strstr(text, "# HELP lat_seconds");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_STRING_EQUAL(body,
        "# HELP lat_seconds Latency.\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{kind=\"x\",le=\"0.1\"} 2\n"   /* le is inclusive */
        "lat_seconds_bucket{kind=\"x\",le=\"0.5\"} 4\n"
        "lat_seconds_bucket{kind=\"x\",le=\"1\"} 5\n"
        "lat_seconds_bucket{kind=\"x\",le=\"+Inf\"} 6\n"
        "lat_seconds_sum{kind=\"x\"} 3.6499999999999999\n"
        "lat_seconds_count{kind=\"x\"} 6\n"
        "# HELP empty_seconds Nothing yet.\n"
        "# TYPE empty_seconds histogram\n"
        "empty_seconds_bucket{le=\"+Inf\"} 0\n"
        "empty_seconds_sum 0\n"
        "empty_seconds_count 0\n");
    free(text);
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(h, k), 6, 1e-9);
    pt_metrics_destroy(&m);
}

static void test_label_escaping_and_cap(void)
{
    pt_metrics_t *m = pt_metrics_new();
    static const char *const lbl[] = {"recipient"};
    pt_metric_t *g = pt_metrics_gauge(m, "q", "Help with \\ and\nnewline \"quoted\".", lbl, 1);
    const char *v[] = {"a\"b\\c\nd"};
    CU_ASSERT_EQUAL(pt_metric_set(g, v, 7), 0);
    char *text = pt_metrics_render(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# HELP q Help with \\\\ and\\nnewline \"quoted\".\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q{recipient=\"a\\\"b\\\\c\\nd\"} 7\n"));
    free(text);
    /* remove */
    CU_ASSERT_EQUAL(pt_metric_remove(g, v), 0);
    CU_ASSERT_EQUAL(pt_metric_remove(g, v), -1);
    /* the cap: PT_METRICS_MAX_SERIES series, then drops are counted */
    char name[32];
    for (int i = 0; i < PT_METRICS_MAX_SERIES; i++) {
        snprintf(name, sizeof name, "org-%d", i);
        const char *one[] = {name};
        CU_ASSERT_EQUAL_FATAL(pt_metric_set(g, one, i), 0);
    }
    const char *extra[] = {"one-too-many"};
    CU_ASSERT_EQUAL(pt_metric_set(g, extra, 1), -1);
    char too_long[PT_METRICS_LABEL_MAX + 2];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    pt_metric_t *g2 = pt_metrics_gauge(m, "q2", "x", lbl, 1);
    const char *tl[] = {too_long};
    CU_ASSERT_EQUAL(pt_metric_set(g2, tl, 1), -1);
    pt_metric_t *dropped = pt_metrics_find(m, "puente_metrics_series_dropped_total");
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(dropped, NULL), 2, 1e-9);
    pt_metrics_destroy(&m);
}

/* ---- two writer threads while a third scrapes ------------------------------------- */

#define S_ROUNDS 20000
typedef struct {
    pt_metric_t *counter, *hist;
    const char *stage;
} s_writer_t;

static void *s_write_loop(void *arg)
{
    s_writer_t *w = arg;
    const char *labels[] = {w->stage, "ok"};
    for (int i = 0; i < S_ROUNDS; i++) {
        pt_metric_add(w->counter, labels, 1);
        pt_metric_observe(w->hist, NULL, 0.001 * (i % 100));
    }
    return NULL;
}

static void test_concurrent_updates(void)
{
    pt_metrics_t *m = pt_metrics_new();
    pt_broker_metrics_t f;
    CU_ASSERT_EQUAL_FATAL(pt_metrics_broker_register(m, "9.9.9", &f), 0);
    s_writer_t w1 = {f.messages, f.submit_to_receipt, "persist"};
    s_writer_t w2 = {f.messages, f.submit_to_receipt, "receipt"};
    pthread_t t1, t2;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t1, NULL, s_write_loop, &w1), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t2, NULL, s_write_loop, &w2), 0);
    int scrapes = 0;
    for (int i = 0; i < 50; i++) {
        char *text = pt_metrics_render(m);
        CU_ASSERT_PTR_NOT_NULL(text);
        scrapes += text && strstr(text, "puente_submit_to_receipt_seconds_count") != NULL;
        free(text);
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CU_ASSERT_EQUAL(scrapes, 50);
    const char *p[] = {"persist", "ok"}, *r[] = {"receipt", "ok"};
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(f.messages, p), S_ROUNDS, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(f.messages, r), S_ROUNDS, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(pt_metric_value(f.submit_to_receipt, NULL), 2 * S_ROUNDS, 1e-9);
    char *text = pt_metrics_render(m);
    char want[128];
    snprintf(want, sizeof want, "puente_submit_to_receipt_seconds_count %d\n", 2 * S_ROUNDS);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    snprintf(want, sizeof want, "puente_submit_to_receipt_seconds_bucket{le=\"+Inf\"} %d\n",
             2 * S_ROUNDS);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    /* every issue-6 family is declared with help, even before the broker fills it */
    const char *names[] = {"puente_messages_total", "puente_rejects_total",
                           "puente_submit_to_receipt_seconds", "puente_submit_to_delivery_seconds",
                           "puente_queue_depth", "puente_queue_oldest_age_seconds",
                           "puente_db_round_trips_total", "puente_db_errors_total",
                           "puente_checkpoint_age_seconds", "puente_connected_organisations",
                           "puente_key_expiry_days", "puente_ready"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(want, sizeof want, "# HELP %s ", names[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "puente_build_info{version=\"9.9.9\"} 1\n"));
    free(text);
    pt_metrics_destroy(&m);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

typedef struct {
    char data[65536];
    size_t len;
} s_body_t;

static size_t s_collect(char *ptr, size_t size, size_t n, void *arg)
{
    s_body_t *b = arg;
    size_t len = size * n;
    if (b->len + len >= sizeof b->data)
        return 0;
    memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

static long s_get(int port, const char *path, s_body_t *body, char *content_type, size_t ct_len)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *curl = curl_easy_init();
    body->len = 0;
    body->data[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        char *ct = NULL;
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        if (content_type)
            snprintf(content_type, ct_len, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(curl);
    return status;
}

static volatile int s_db_up = 0; /* written here, read by the HTTP thread between requests */
static int s_ready(void *arg, char *reason, size_t reason_len)
{
    (void) arg;
    if (!s_db_up)
        snprintf(reason, reason_len, "database unreachable");
    return s_db_up;
}

static void test_http_endpoint(void)
{
    pt_metrics_t *m = pt_metrics_new();
    pt_broker_metrics_t f;
    CU_ASSERT_EQUAL_FATAL(pt_metrics_broker_register(m, "1.2.3", &f), 0);
    const char *code[] = {"bad_signature"};
    pt_metric_add(f.rejects, code, 3);
    char err[256];
    pt_metrics_http_t *http = pt_metrics_http_new(m, "127.0.0.1:0", s_ready, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(http);
    int port = pt_metrics_http_port(http);
    CU_ASSERT_TRUE(port > 0);
    s_body_t *body = calloc(1, sizeof *body);
    char ct[128];
    CU_ASSERT_EQUAL(s_get(port, "/metrics", body, ct, sizeof ct), 200);
    CU_ASSERT_STRING_EQUAL(ct, "text/plain; version=0.0.4; charset=utf-8");
    CU_ASSERT_PTR_NOT_NULL(strstr(body->data, "puente_rejects_total{code=\"bad_signature\"} 3\n"));
    CU_ASSERT_EQUAL(s_get(port, "/healthz", body, NULL, 0), 200);
    CU_ASSERT_STRING_EQUAL(body->data, "ok\n");
    s_db_up = 0;
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 503);
    CU_ASSERT_STRING_EQUAL(body->data, "not ready: database unreachable\n");
    s_db_up = 1;
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 200);
    CU_ASSERT_STRING_EQUAL(body->data, "ready\n");
    s_db_up = 0;
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 503);
    CU_ASSERT_EQUAL(s_get(port, "/nope", body, NULL, 0), 404);
    /* the same port twice fails with a reason */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pt_metrics_http_t *again = pt_metrics_http_new(m, listen, NULL, NULL, err, sizeof err);
    CU_ASSERT_PTR_NULL(again);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot serve metrics"));
    CU_ASSERT_PTR_NULL(pt_metrics_http_new(m, "no-port", NULL, NULL, err, sizeof err));
    pt_metrics_http_destroy(&http);
    CU_ASSERT_PTR_NULL(http);

    /* the built-in callback follows pt_metrics_set_ready */
    http = pt_metrics_http_new(m, "127.0.0.1:0", NULL, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(http);
    port = pt_metrics_http_port(http);
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 503);
    CU_ASSERT_STRING_EQUAL(body->data, "not ready: starting\n");
    pt_metrics_set_ready(m, 1, NULL);
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 200);
    pt_metrics_set_ready(m, 0, "migrations pending");
    CU_ASSERT_EQUAL(s_get(port, "/readyz", body, NULL, 0), 503);
    CU_ASSERT_STRING_EQUAL(body->data, "not ready: migrations pending\n");
    pt_metrics_http_destroy(&http);
    free(body);
    pt_metrics_destroy(&m);
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker_metrics", NULL, NULL);
    if (!suite || !CU_add_test(suite, "exposition text exact", test_exposition_exact)
        || !CU_add_test(suite, "histogram buckets", test_histogram_buckets)
        || !CU_add_test(suite, "label escaping and the series cap", test_label_escaping_and_cap)
        || !CU_add_test(suite, "two writers while scraping", test_concurrent_updates)
        || !CU_add_test(suite, "HTTP /metrics /healthz /readyz", test_http_endpoint)) {
        CU_cleanup_registry();
        return 1;
    }
    int status = pt_cu_main();
    curl_global_cleanup();
    return status;
}

/*  itest_metrics — observability of a real broker (issue 6) and SIGTERM during a
    stream (issues 6 and 7):
    (a) referrals sent, received and acknowledged, then /metrics scraped over HTTP
        with libcurl and its values checked against what was sent; a deliberately
        refused send is counted under its reject code; /healthz answers 200;
    (b) /readyz flips to 503 "database unreachable" within seconds of PostgreSQL
        stopping (no traffic needed), submits get REJECT_RETRY_LATER, and it
        flips back to 200 once PostgreSQL is started again, when a submit works;
    (c) an SDK outbox streams 300 referrals while the broker gets SIGTERM; after a
        restart every receipted message is in the database exactly once and is
        delivered to the recipient exactly once.
    PUENTE_METRICS_OUTAGE_SECONDS (default 5) sets the length of the outage in (b). */
#include <CUnit/Basic.h>
#include <curl/curl.h> /* curl_global_init: the harness scrapes with libcurl */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cu_main.h"

#define N_REFERRALS 20
#define N_STREAM 300

static pt_harness_t *s_h;
static const char *s_url;

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("metrics", &s_url);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* --- HTTP ----------------------------------------------------------------------- */

/* GET s_url + path: the HTTP status (-1 if unreachable) and the body (caller frees). */
static long s_get(const char *path, char **body_out)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s_url, path);
    return pt_harness_http_get(url, 3000, body_out);
}

/* The value of one series, e.g. `puente_rejects_total{code="no_agreement"}`, in
   an exposition; -1 when absent. */
static double s_value(const char *text, const char *series)
{
    double value = -1;
    return pt_harness_metric_value(text, series, &value) == 0 ? value : -1;
}

static double s_scrape(const char *series)
{
    double value = -1;
    return pt_harness_metric_scrape(s_url, series, 3000, &value) == 0 ? value : -1;
}

/* Polls the series until its value is at least min, or at most max (generous
   deadline: the queue gauges follow the backlog reader, broker/backlog.c, about
   once a second); the last value (-1: no such series). */
static double s_wait_metric_within(const char *series, double min, double max)
{
    double v = -1;
    for (int i = 0; i < 150 && !((v = s_scrape(series)) >= min && v <= max); i++)
        usleep(200 * 1000);
    return v;
}

/* Polls path until it answers want (or timeout_ms passes); the last status. */
static long s_wait_status(const char *path, long want, int timeout_ms, char **body_out)
{
    long status = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        free(body_out ? *body_out : NULL);
        if (body_out)
            *body_out = NULL;
        status = s_get(path, body_out);
        if (status == want)
            break;
        usleep(200 * 1000);
    }
    return status;
}

/* --- messages ------------------------------------------------------------------- */

static Puente__V1__ConsentSummary s_consent;

static pt_send_t s_referral(const char *to[1], const char *case_token, uint8_t *body, size_t len)
{
    puente__v1__consent_summary__init(&s_consent);
    s_consent.consent_for_services = 1;
    s_consent.disclosure_other_orgs = 1;
    s_consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    pt_send_t msg = {.message_type = "referral.request", .recipients = to, .n_recipients = 1,
                     .case_token = case_token, .consent = &s_consent, .body = body,
                     .body_len = len};
    return msg;
}

/* "REJECT_NO_AGREEMENT" -> `puente_rejects_total{code="no_agreement"}`. */
static void s_reject_series(Puente__V1__RejectCode code, char *out, size_t cap)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&puente__v1__reject_code__descriptor, (int)code);
    const char *name = v ? v->name : "REJECT_UNKNOWN";
    if (strncmp(name, "REJECT_", 7) == 0)
        name += 7;
    char lower[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    lower[i] = '\0';
    snprintf(out, cap, "puente_rejects_total{code=\"%s\"}", lower);
}

/* --- (a) values against what was sent ---------------------------------------------- */

static void test_metrics_match_traffic(void)
{
    CU_ASSERT_EQUAL(s_get("/healthz", NULL), 200);
    CU_ASSERT_EQUAL(s_wait_status("/readyz", 200, 5000, NULL), 200);
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    const char *to[1] = {"GT-PGN"};
    int sent = 0;
    for (int i = 0; i < N_REFERRALS; i++) {
        char token[40];
        snprintf(token, sizeof token, "CASE-METRICS-%d", i);
        pt_send_t msg = s_referral(to, token, body, len);
        pt_receipt_info_t receipt;
        pt_reject_info_t rej;
        if (pt_client_send(mx, &msg, &receipt, &rej) == PT_CLIENT_OK)
            sent++;
    }
    CU_ASSERT_EQUAL(sent, N_REFERRALS);
    int acked = 0;
    for (int i = 0; i < N_REFERRALS; i++) {
        pt_message_t *got = NULL;
        if (pt_client_recv(gt, 5000, &got) != PT_CLIENT_OK)
            break;
        if (pt_client_ack(gt, pt_message_id(got)) == PT_CLIENT_OK)
            acked++;
        pt_message_destroy(&got);
    }
    CU_ASSERT_EQUAL(acked, N_REFERRALS);

    /* A refused send: SV-CONNA and US-ORR have no agreement. */
    pt_client_t *sv = pt_harness_client(s_h, "SV-CONNA", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    const char *to_us[1] = {"US-ORR"};
    pt_send_t refused = s_referral(to_us, "CASE-METRICS-REFUSED", body, len);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    CU_ASSERT_EQUAL(pt_client_send(sv, &refused, &receipt, &rej), PT_CLIENT_REJECTED);
    char reject_series[160];
    s_reject_series(rej.code, reject_series, sizeof reject_series);

    /* Queue gauges follow the backlog reader: everything was acknowledged, so
       GT-PGN's queue empties. */
    CU_ASSERT_EQUAL(s_wait_metric_within("puente_queue_depth{recipient=\"GT-PGN\"}", 0, 0), 0);
    char *text = NULL;
    CU_ASSERT_EQUAL_FATAL(s_get("/metrics", &text), 200);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"receive\",outcome=\"ok\"}") >=
              2 * N_REFERRALS + 1);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"verify\",outcome=\"ok\"}") >=
              N_REFERRALS + 1);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"policy\",outcome=\"ok\"}") >=
              N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"policy\",outcome=\"rejected\"}") >= 1);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"persist\",outcome=\"ok\"}") >=
              N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"receipt\",outcome=\"ok\"}") >=
              N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"deliver\",outcome=\"ok\"}") >=
              N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_messages_total{stage=\"ack\",outcome=\"ok\"}") >= N_REFERRALS);
    CU_ASSERT(s_value(text, reject_series) >= 1);
    CU_ASSERT(s_value(text, "puente_submit_to_receipt_seconds_count") >= N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_submit_to_delivery_seconds_count") >= N_REFERRALS);
    CU_ASSERT(s_value(text, "puente_db_round_trips_total{operation=\"commit\"}") >= 1);
    CU_ASSERT(s_value(text, "puente_connected_organisations") >= 1);
    /* Everything was acknowledged: GT-PGN's queue is empty. */
    CU_ASSERT_EQUAL(s_value(text, "puente_queue_depth{recipient=\"GT-PGN\"}"), 0);
    CU_ASSERT_EQUAL(s_value(text, "puente_ready"), 1);
    /* Nothing personal: the case tokens are not in the exposition. */
    CU_ASSERT_PTR_NULL(strstr(text, "CASE-METRICS"));
    free(text);

    /* A message not acknowledged shows in the queue gauges of its recipient. */
    pt_client_destroy(&gt);
    pt_send_t waiting = s_referral(to, "CASE-METRICS-WAITING", body, len);
    CU_ASSERT_EQUAL(pt_client_send(mx, &waiting, &receipt, &rej), PT_CLIENT_OK);
    CU_ASSERT(s_wait_metric_within("puente_queue_depth{recipient=\"GT-PGN\"}", 1, 1e9) >= 1);
    CU_ASSERT(s_scrape("puente_queue_oldest_age_seconds{recipient=\"GT-PGN\"}") > 0);
    pt_client_destroy(&sv);
    pt_client_destroy(&mx);
    free(body);
}

/* --- (b) readiness follows PostgreSQL ----------------------------------------------- */

static int s_pg(const char *verb)
{
    const char *dir = getenv("PUENTE_TEST_PGDIR");
    const char *port = getenv("PUENTE_TEST_PGPORT");
    if (!dir || !port)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tests/lib/pgcluster.sh %s '%s' %s >/dev/null 2>&1", verb, dir,
             strcmp(verb, "start") == 0 ? port : "");
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_readiness_follows_database(void)
{
    const char *env = getenv("PUENTE_METRICS_OUTAGE_SECONDS");
    int outage = env ? atoi(env) : 5;
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_EQUAL(s_wait_status("/readyz", 200, 5000, NULL), 200);

    CU_ASSERT_EQUAL_FATAL(s_pg("stop"), 0);
    int64_t stopped = pt_now_ms();
    char *reason = NULL;
    /* No traffic: the broker's idle check alone must notice. */
    CU_ASSERT_EQUAL(s_wait_status("/readyz", 503, 8000, &reason), 503);
    CU_ASSERT_PTR_NOT_NULL(reason ? strstr(reason, "database unreachable") : NULL);
    free(reason);
    CU_ASSERT_EQUAL(s_scrape("puente_ready"), 0);
    CU_ASSERT(s_scrape("puente_db_errors_total{operation=\"query\"}") >= 1);
    CU_ASSERT_EQUAL(s_get("/healthz", NULL), 200);

    const char *to[1] = {"GT-PGN"};
    pt_send_t msg = s_referral(to, "CASE-READY-1", body, len);
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    CU_ASSERT_EQUAL(pt_client_send(mx, &msg, &receipt, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER);

    int64_t left = (int64_t)outage * 1000 - (pt_now_ms() - stopped);
    if (left > 0)
        usleep((useconds_t)left * 1000);
    CU_ASSERT_EQUAL_FATAL(s_pg("start"), 0);
    CU_ASSERT_EQUAL(s_wait_status("/readyz", 200, 10000, NULL), 200);
    CU_ASSERT_EQUAL(s_scrape("puente_ready"), 1);
    msg.case_token = "CASE-READY-2";
    pt_client_result_t rc = PT_CLIENT_REJECTED;
    for (int i = 0; i < 10 && rc != PT_CLIENT_OK; i++) {
        rc = pt_client_send(mx, &msg, &receipt, &rej);
        if (rc != PT_CLIENT_OK)
            usleep(500 * 1000);
    }
    CU_ASSERT_EQUAL(rc, PT_CLIENT_OK);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-READY-1'"),
                    0);
    pt_client_destroy(&mx);
    free(body);
}

/* --- (c) SIGTERM during a stream ------------------------------------------------------ */

static void s_hex_uuid(const uint8_t id[16], char out[37])
{
    static const char digits[] = "0123456789abcdef";
    size_t w = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[w++] = '-';
        out[w++] = digits[id[i] >> 4];
        out[w++] = digits[id[i] & 15];
    }
    out[w] = '\0';
}

static void test_sigterm_during_stream(void)
{
    pt_outbox_t *ob = pt_harness_outbox(s_h, "HN-DINAF", "stream", 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    static uint8_t ids[N_STREAM][16];
    const char *to[1] = {"GT-PGN"};
    pt_send_t msg = s_referral(to, "CASE-STREAM", body, len);
    int queued = 0;
    for (int i = 0; i < N_STREAM; i++)
        queued += pt_outbox_send(ob, &msg, ids[i]) == PT_CLIENT_OK;
    CU_ASSERT_EQUAL_FATAL(queued, N_STREAM);

    /* SIGTERM once the stream is under way, before it ends. */
    for (int waited = 0; waited < 30000 && pt_outbox_pending(ob) > N_STREAM * 2 / 3;
         waited += 2)
        usleep(2000);
    long pending_at_stop = pt_outbox_pending(ob);
    CU_ASSERT_EQUAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    printf("\n  SIGTERM with %ld of %d still queued\n", pending_at_stop, N_STREAM);
    CU_ASSERT(pending_at_stop > 0);

    /* Every message the sender holds a receipt for is committed, exactly once. */
    int receipted = 0, missing = 0;
    for (int i = 0; i < N_STREAM; i++) {
        if (pt_outbox_status(ob, ids[i], NULL, NULL) != PT_OUTBOX_SUBMITTED)
            continue;
        receipted++;
        char uuid[37], sql[200];
        s_hex_uuid(ids[i], uuid);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE message_id = '%s'", uuid);
        missing += pt_harness_sql_count(s_h, sql) != 1;
    }
    printf("  %d receipted before the restart, %d of them missing\n", receipted, missing);
    CU_ASSERT(receipted > 0);
    CU_ASSERT_EQUAL(missing, 0);

    /* Restarted, the broker takes the rest; the recipient gets each once. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    CU_ASSERT_EQUAL(pt_outbox_flush(ob, 60000), PT_CLIENT_OK);
    int submitted = 0;
    for (int i = 0; i < N_STREAM; i++)
        submitted += pt_outbox_status(ob, ids[i], NULL, NULL) == PT_OUTBOX_SUBMITTED;
    CU_ASSERT_EQUAL(submitted, N_STREAM);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-STREAM'"),
                    N_STREAM);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    static uint8_t seen[N_STREAM];
    int distinct = 0, duplicates = 0, strangers = 0;
    memset(seen, 0, sizeof seen);
    while (distinct < N_STREAM) {
        pt_message_t *got = NULL;
        if (pt_client_recv(gt, 10000, &got) != PT_CLIENT_OK)
            break;
        const uint8_t *id = pt_message_id(got);
        int k = -1;
        for (int i = 0; i < N_STREAM && k < 0; i++)
            if (memcmp(ids[i], id, 16) == 0)
                k = i;
        if (k < 0)
            strangers++;   /* CASE-METRICS-WAITING and CASE-READY-2, never acked */
        else if (seen[k]++)
            duplicates++;
        else
            distinct++;
        pt_client_ack(gt, id);
        pt_message_destroy(&got);
    }
    printf("  delivered %d distinct, %d duplicates\n", distinct, duplicates);
    CU_ASSERT_EQUAL(distinct, N_STREAM);
    CU_ASSERT_EQUAL(duplicates, 0);
    CU_ASSERT(strangers <= 2);
    pt_client_destroy(&gt);
    pt_outbox_destroy(&ob);
    free(body);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("metrics", s_suite_init, s_suite_clean);
    CU_add_test(suite, "metrics scraped over HTTP match the traffic sent",
                test_metrics_match_traffic);
    CU_add_test(suite, "readyz flips with PostgreSQL stopped and started",
                test_readiness_follows_database);
    CU_add_test(suite, "SIGTERM during an outbox stream loses no receipted message",
                test_sigterm_during_stream);
    int status = pt_cu_main();
    curl_global_cleanup();
    return status;
}

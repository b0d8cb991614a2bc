/*  itest_outage — PostgreSQL stops under a running broker and comes back.

    1. Idle: the broker stays up, refuses submissions with REJECT_RETRY_LATER
       (nothing stored, nothing receipted), the CLI exits 3, and once the
       database is back the broker resumes by itself: the same message goes
       through and is delivered.
    2. Under load (issue 7): three senders stream referrals through the SDK's
       durable outbox to a receiving recipient while PostgreSQL is stopped for
       PUENTE_OUTAGE_SECONDS (default 30), PUENTE_OUTAGE_CYCLES times (default
       1; `make chaos` runs longer ones), then started. The broker process stays
       the same, /readyz answers 503 during each outage and 200 after it,
       submissions are answered REJECT_RETRY_LATER meanwhile, and afterwards
       everything resumes by itself: every message ends receipted, and every
       receipted message reached the recipient's application exactly once and
       is stored once. Counts are printed (sent, receipted, delivered,
       duplicates suppressed, lost). */
#include <CUnit/Basic.h>
#include <curl/curl.h> /* curl_global_init: the harness scrapes with libcurl */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static const char *s_url;

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("outage", &s_url);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

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

static void test_database_outage(void)
{
    const char *type_name = "referral.request";
    const pt_type_t *type = pt_types_find(type_name);
    size_t len = 0;
    uint8_t *bytes = pt_harness_example_body(type_name, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);

    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_EQUAL_FATAL(s_pg("stop"), 0);

    const char *to[1] = {"GT-PGN"};
    /* A referral needs consent for services and disclosure (issue 3 consent gate). */
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    pt_send_t msg = {.message_type = type_name, .recipients = to, .n_recipients = 1,
                     .case_token = "CASE-OUTAGE-1", .consent = &consent, .body = bytes,
                     .body_len = len};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    /* The SDK resubmits on RETRY_LATER until its timeout, then reports the reject. */
    pt_client_result_t rc = pt_client_send(mx, &msg, &receipt, &rej);
    CU_ASSERT_EQUAL(rc, PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER);

    /* The CLI says "cannot reach the database": exit 3. */
    char out[4096], errout[4096], json[700], command[1600];
    snprintf(json, sizeof json, "%s/ref.json", pt_harness_dir(s_h));
    FILE *file = fopen(json, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(type->example_json, file);
    fclose(file);
    snprintf(command, sizeof command,
             "%s send --timeout 3s --as MX-DIF --to GT-PGN --type referral.request --case "
             "CASE-OUTAGE-2 --json '%s'",
             getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente", json);
    CU_ASSERT_EQUAL(pt_harness_sh(s_h, command, out, sizeof out, errout, sizeof errout), 3);

    /* The broker is still up and answers. */
    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL(op);
    pt_client_destroy(&op);

    /* Database back: the broker resumes by itself. */
    CU_ASSERT_EQUAL_FATAL(s_pg("start"), 0);
    msg.case_token = "CASE-OUTAGE-3";
    rc = PT_CLIENT_REJECTED;
    for (int i = 0; i < 20 && rc != PT_CLIENT_OK; i++) {
        rc = pt_client_send(mx, &msg, &receipt, &rej);
        if (rc != PT_CLIENT_OK)
            usleep(500 * 1000);
    }
    CU_ASSERT_EQUAL_FATAL(rc, PT_CLIENT_OK);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    pt_message_t *got = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 5000, &got), PT_CLIENT_OK);
    CU_ASSERT_STRING_EQUAL(pt_message_header(got)->case_token, "CASE-OUTAGE-3");
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(got)), PT_CLIENT_OK);
    pt_message_destroy(&got);
    /* Nothing refused during the outage was stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token IN "
                                              "('CASE-OUTAGE-1','CASE-OUTAGE-2')"),
                    0);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
    free(bytes);
}

/* --- 2. an outage under load ------------------------------------------------------ */

#define N_SENDERS 3
#define S_RECIPIENT "GT-PGN"
#define S_SEND_INTERVAL_MS 50 /* per sender: 20 messages a second */
#define S_RUN_MS 3000         /* streaming with the database up, before and after */

static const char *const s_senders[N_SENDERS] = {"MX-DIF", "HN-DINAF", "SV-CONNA"};

/* GET s_url + path: the HTTP status (-1 if unreachable); the body into out. */
static long s_get(const char *path, char *out, size_t out_len)
{
    char url[256];
    char *body = NULL;
    snprintf(url, sizeof url, "%s%s", s_url, path);
    long status = pt_harness_http_get(url, 3000, &body);
    if (out && out_len)
        snprintf(out, out_len, "%s", body ? body : "");
    free(body);
    return status;
}

/* --- the recipient application ---------------------------------------------------- */

typedef struct {
    uint8_t (*got)[16]; /* ids handed to the application, in order */
    size_t n_got, cap;
    long app_duplicates; /* ids handed over twice (must stay 0) */
    long ack_retries;    /* acks the broker could not record (its database was down) */
    long reconnects;
    pthread_mutex_t lock;
} s_app_t;

static volatile int s_stop_app;

static int s_app_has(const s_app_t *app, const uint8_t *id)
{
    for (size_t i = app->n_got; i-- > 0;)
        if (memcmp(app->got[i], id, 16) == 0)
            return 1;
    return 0;
}

static void *s_app_main(void *arg)
{
    s_app_t *app = arg;
    char inbox[700], err[PUENTE_ERR_BYTES];
    snprintf(inbox, sizeof inbox, "%s/inbox-%s.db", pt_harness_dir(s_h), S_RECIPIENT);
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = pt_harness_keys(s_h),
                             .org_id = S_RECIPIENT,
                             .receive = 1,
                             .timeout_ms = 2000,
                             .inbox_path = inbox};
    pt_client_t *client = NULL;
    while (!s_stop_app) {
        if (!client) {
            client = pt_client_new(&opts, err, sizeof err);
            if (!client) {
                usleep(200 * 1000);
                continue;
            }
            app->reconnects++;
        }
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(client, 300, &m);
        if (rc == PT_CLIENT_TIMEOUT || rc == PT_CLIENT_REFUSED)
            continue;
        if (rc != PT_CLIENT_OK) {
            pt_client_destroy(&client);
            continue;
        }
        const uint8_t *id = pt_message_id(m);
        pthread_mutex_lock(&app->lock);
        if (s_app_has(app, id)) {
            app->app_duplicates++;
        } else {
            if (app->n_got == app->cap) {
                app->cap = app->cap ? 2 * app->cap : 1024;
                app->got = realloc(app->got, app->cap * sizeof *app->got);
            }
            memcpy(app->got[app->n_got++], id, 16);
        }
        pthread_mutex_unlock(&app->lock);
        /* Stored by the application (here: recorded), then confirmed. While the
           broker's database is down the ack is refused (RETRY_LATER): again. */
        while (pt_client_ack(client, id) != PT_CLIENT_OK && !s_stop_app) {
            app->ack_retries++;
            usleep(200 * 1000);
        }
        pt_message_destroy(&m);
    }
    pt_client_destroy(&client);
    return NULL;
}

/* --- the test ------------------------------------------------------------------------ */

typedef struct {
    uint8_t id[16];
    int sender;
} s_sent_t;

static void test_database_outage_under_load(void)
{
    long outage_ms = pt_harness_env_long("PUENTE_OUTAGE_SECONDS", 30) * 1000;
    long cycles = pt_harness_env_long("PUENTE_OUTAGE_CYCLES", 1);
    int broker_pid = pt_harness_broker_pid(s_h);
    char text[512] = "";
    CU_ASSERT_EQUAL_FATAL(s_get("/readyz", text, sizeof text), 200);

    pt_outbox_t *outbox[N_SENDERS] = {NULL};
    for (int s = 0; s < N_SENDERS; s++) {
        outbox[s] = pt_harness_outbox(s_h, s_senders[s], s_senders[s], 3000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(outbox[s]);
    }
    s_app_t app;
    memset(&app, 0, sizeof app);
    pthread_mutex_init(&app.lock, NULL);
    s_stop_app = 0;
    pthread_t app_thread;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&app_thread, NULL, s_app_main, &app), 0);

    size_t body_len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &body_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *to[1] = {S_RECIPIENT};
    size_t cap =
        (size_t)(N_SENDERS * (cycles * (outage_ms + S_RUN_MS) + S_RUN_MS) / S_SEND_INTERVAL_MS +
                 64);
    s_sent_t *sent = calloc(cap, sizeof *sent);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sent);
    size_t n_sent = 0, send_failures = 0, sent_in_outage = 0;

    /* The schedule: run, then per cycle: stop, outage_ms down, start, run. */
    int64_t started = pt_now_ms();
    int64_t phase_end = started + S_RUN_MS;
    long cycle = 0;
    int down = 0, saw_not_ready = 0, retry_later_answered = 0;
    long ready_after_ms = -1, readyz_503 = 0;
    char not_ready_reason[256] = "";
    int64_t next_probe = 0;
    for (;;) {
        int64_t now = pt_now_ms();
        if (now >= phase_end) {
            if (!down && cycle == cycles)
                break;
            if (!down) {
                CU_ASSERT_EQUAL_FATAL(s_pg("stop"), 0);
                down = 1;
                phase_end = pt_now_ms() + outage_ms;
                printf("%s    outage %ld: PostgreSQL stopped at %.1f s\n", cycle ? "" : "\n",
                       cycle + 1, (double)(pt_now_ms() - started) / 1000.0);
            } else {
                CU_ASSERT_EQUAL_FATAL(s_pg("start"), 0);
                int64_t back = pt_now_ms();
                down = 0;
                cycle++;
                /* Ready again by itself. */
                long status = -1;
                while ((status = s_get("/readyz", NULL, 0)) != 200 && pt_now_ms() - back < 30000)
                    usleep(100 * 1000);
                CU_ASSERT_EQUAL(status, 200);
                ready_after_ms = (long)(pt_now_ms() - back);
                printf("    outage %ld: PostgreSQL started at %.1f s; /readyz 200 again after "
                       "%ld ms\n",
                       cycle, (double)(back - started) / 1000.0, ready_after_ms);
                phase_end = pt_now_ms() + S_RUN_MS;
            }
            continue;
        }
        /* One message per sender per tick; the outbox commits it locally at once. */
        for (int s = 0; s < N_SENDERS && n_sent < cap; s++) {
            char token[64];
            snprintf(token, sizeof token, "CASE-LOAD-%s", s_senders[s]);
            pt_send_t msg = {.message_type = "referral.request",
                             .recipients = to,
                             .n_recipients = 1,
                             .case_token = token,
                             .consent = &consent,
                             .body = body,
                             .body_len = body_len};
            if (pt_outbox_send(outbox[s], &msg, sent[n_sent].id) != PT_CLIENT_OK) {
                send_failures++;
                continue;
            }
            sent[n_sent].sender = s;
            n_sent++;
            sent_in_outage += down;
        }
        /* During an outage: not ready, and a submission is answered RETRY_LATER. */
        if (down && pt_now_ms() >= next_probe) {
            next_probe = pt_now_ms() + 1000;
            char reason[256] = "";
            long status = s_get("/readyz", reason, sizeof reason);
            CU_ASSERT(status == 503 || status == 200); /* 200 only until the broker noticed */
            if (status == 503) {
                readyz_503++;
                if (!saw_not_ready)
                    snprintf(not_ready_reason, sizeof not_ready_reason, "%.*s",
                             (int)strcspn(reason, "\r\n"), reason);
                saw_not_ready = 1;
            }
            if (saw_not_ready && !retry_later_answered) {
                pt_client_t *probe = pt_harness_client(s_h, "US-ORR", 0);
                CU_ASSERT_PTR_NOT_NULL(probe);
                pt_receipt_info_t receipt;
                pt_reject_info_t rej;
                memset(&rej, 0, sizeof rej);
                if (probe) {
                    CU_ASSERT_EQUAL(pt_harness_send(probe, "referral.request", "MX-DIF",
                                                    "CASE-LOAD-PROBE", NULL, 0, &receipt, &rej),
                                    PT_CLIENT_REJECTED);
                    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER);
                    retry_later_answered = rej.code == PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER;
                }
                pt_client_destroy(&probe);
            }
        }
        usleep(S_SEND_INTERVAL_MS * 1000);
    }
    free(body);
    CU_ASSERT_EQUAL(send_failures, 0);
    CU_ASSERT(saw_not_ready);
    CU_ASSERT_PTR_NOT_NULL(strstr(not_ready_reason, "database unreachable"));
    CU_ASSERT(retry_later_answered);

    /* The database is back for good: the outboxes drain, the application catches up. */
    int64_t drain_started = pt_now_ms();
    for (int s = 0; s < N_SENDERS; s++)
        CU_ASSERT_EQUAL(pt_outbox_flush(outbox[s], 180000), PT_CLIENT_OK);
    long drained_ms = (long)(pt_now_ms() - drain_started);
    size_t receipted = 0, other = 0;
    for (size_t i = 0; i < n_sent; i++) {
        if (pt_outbox_status(outbox[sent[i].sender], sent[i].id, NULL, NULL) == PT_OUTBOX_SUBMITTED)
            receipted++;
        else
            other++;
    }
    int64_t deadline = pt_now_ms() + 180000;
    for (;;) {
        pthread_mutex_lock(&app.lock);
        size_t got = app.n_got;
        pthread_mutex_unlock(&app.lock);
        if (got >= receipted || pt_now_ms() > deadline)
            break;
        usleep(200 * 1000);
    }
    usleep(1500 * 1000); /* room for a late duplicate to show up */
    s_stop_app = 1;
    pthread_join(app_thread, NULL);
    for (int s = 0; s < N_SENDERS; s++)
        pt_outbox_destroy(&outbox[s]);

    size_t lost = 0, strays = 0;
    for (size_t i = 0; i < n_sent; i++)
        lost += !s_app_has(&app, sent[i].id);
    for (size_t k = 0; k < app.n_got; k++) {
        int known = 0;
        for (size_t i = 0; i < n_sent && !known; i++)
            known = memcmp(sent[i].id, app.got[k], 16) == 0;
        strays += !known;
    }
    long stored = pt_harness_sql_count(
        s_h, "SELECT count(*) FROM messages WHERE case_token LIKE 'CASE-LOAD-%' AND case_token "
             "<> 'CASE-LOAD-PROBE'");
    long probe_stored = pt_harness_sql_count(
        s_h, "SELECT count(*) FROM messages WHERE case_token = 'CASE-LOAD-PROBE'");
    long unacked = pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                             "USING (message_id) WHERE m.case_token LIKE "
                                             "'CASE-LOAD-%' AND d.acked_at IS NULL");
    long attempts = pt_harness_sql_count(s_h, "SELECT coalesce(sum(attempts), 0) FROM deliveries d "
                                              "JOIN messages m USING (message_id) WHERE "
                                              "m.case_token LIKE 'CASE-LOAD-%'");
    char log_cmd[800], count[64], err[64];
    snprintf(log_cmd, sizeof log_cmd, "grep -c 'rejected REJECT_RETRY_LATER' '%s/broker.log'",
             pt_harness_dir(s_h));
    pt_harness_sh(s_h, log_cmd, count, sizeof count, err, sizeof err);
    long retry_later = strtol(count, NULL, 10);

    printf("    %ld outage(s) of %ld s under %d senders at %d messages/s each; broker pid %d "
           "throughout: %s\n"
           "    /readyz 503 on %ld probes (\"%s\"); %ld submissions answered REJECT_RETRY_LATER\n"
           "    sent %zu (%zu while the database was down), receipted %zu, other %zu; outboxes "
           "drained %ld ms after the last restart\n"
           "    delivered to the application %zu, duplicates handed over %ld, lost %zu, strays "
           "%zu; duplicates suppressed (delivery attempts %ld - delivered %zu) %ld; ack "
           "retries %ld, receiver connections %ld\n"
           "    stored %ld, unacknowledged %ld\n",
           cycles, outage_ms / 1000, N_SENDERS, 1000 / S_SEND_INTERVAL_MS, broker_pid,
           pt_harness_broker_pid(s_h) == broker_pid && kill(broker_pid, 0) == 0 ? "yes" : "NO",
           readyz_503, not_ready_reason, retry_later, n_sent, sent_in_outage, receipted, other,
           drained_ms, app.n_got, app.app_duplicates, lost, strays, attempts, app.n_got,
           attempts - (long)app.n_got, app.ack_retries, app.reconnects, stored, unacked);

    CU_ASSERT_EQUAL(pt_harness_broker_pid(s_h), broker_pid);
    CU_ASSERT_EQUAL(kill(broker_pid, 0), 0);
    CU_ASSERT(sent_in_outage > 0);
    CU_ASSERT(retry_later > 0);
    CU_ASSERT_EQUAL(receipted, n_sent);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT_EQUAL(app.n_got, receipted);
    CU_ASSERT_EQUAL(app.app_duplicates, 0);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(strays, 0);
    CU_ASSERT_EQUAL(stored, (long)receipted);
    CU_ASSERT_EQUAL(probe_stored, 0);
    CU_ASSERT_EQUAL(unacked, 0);
    free(app.got);
    free(sent);
    pthread_mutex_destroy(&app.lock);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CU_pSuite suite = CU_add_suite("outage", s_suite_init, s_suite_clean);
    CU_add_test(suite, "database stopped and started under a running broker",
                test_database_outage);
    CU_add_test(suite, "database stopped for a while under streaming senders",
                test_database_outage_under_load);
    int status = pt_cu_main();
    curl_global_cleanup();
    return status;
}

/*  itest_bridge — two puente-bridge processes (MX-DIF, GT-PGN) over one real
    broker: a referral POSTed at MX (202, queued in the SDK outbox) reaches GT's
    webhook (HMAC checked), GT acks and accepts through its bridge, MX sees the
    acceptance in status and trail. With the broker stopped, POSTs are still
    queued (202), a repeated Idempotency-Key creates no second message, and the
    message is delivered and acknowledged once the broker is back.
    Then a table of bad requests, each with its status and problem type, and a
    bridge whose broker is down (503 with Retry-After). Prefer: wait=N gives 201
    with the broker's receipt (also GET and a replayed key), 422 for a refusal,
    202 when N runs out. GT's webhook answering 500 three times is retried after
    growing gaps (0.5, 1, 2 s) and then delivered; always 500 ends in webhook
    state "failed" after 4 attempts. GT's inbox is paged with limit=1 through
    next_cursor to its end. A bridge listens on [::1]. libcurl is the client;
    the webhook receiver is a small libmicrohttpd server inside the test. */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge_http.h"
#include "harness.h"
#include "cu_main.h"

#define S_TOKEN "itest-bridge-token-0123456789"
#define S_SECRET "itest-webhook-secret"

static pt_harness_t *s_h;
static pid_t s_pid[4];
static int s_port[4]; /* MX, GT, dead-broker bridge, IPv6 bridge */
static const char *s_host[4] = {"127.0.0.1", "127.0.0.1", "127.0.0.1", "[::1]"};
static struct MHD_Daemon *s_hook;
static int s_hook_port;
static pthread_mutex_t s_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_hook_body[65536];
static int s_hook_count, s_hook_bad_sig;
/* Failure injection: calls for messages of case s_hook_fail_case are answered 500,
   s_hook_fail_left more times (-1: always). Every call is logged. */
static char s_hook_fail_case[64];
static int s_hook_fail_left;
typedef struct {
    int64_t at_ms; /* CLOCK_MONOTONIC */
    char id[40];
    int status;
} s_hook_call_t;
static s_hook_call_t s_hook_log[512];
static int s_hook_n;

/* --- webhook receiver ----------------------------------------------------------- */

typedef struct {
    char buf[65536];
    size_t len;
} s_upload_t;

static enum MHD_Result s_hook_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *data,
                                      size_t *size, void **con_cls)
{
    (void) cls; (void) url; (void) method; (void) version;
    s_upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        size_t n = *size < sizeof u->buf - 1 - u->len ? *size : sizeof u->buf - 1 - u->len;
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        *size = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Puente-Signature");
    int ok = pt_bridge_verify(S_SECRET, strlen(S_SECRET), sig, u->buf, u->len, time(NULL), 300) == 0;
    json_t *msg = ok ? json_loads(u->buf, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(msg, "id"));
    const char *ct = json_string_value(json_object_get(msg, "case_token"));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int status = ok ? 200 : 401;
    pthread_mutex_lock(&s_hook_lock);
    if (ok && ct && s_hook_fail_case[0] && strcmp(ct, s_hook_fail_case) == 0 &&
        s_hook_fail_left != 0) {
        status = 500;
        if (s_hook_fail_left > 0)
            s_hook_fail_left--;
    }
    if (status == 200) {
        memcpy(s_hook_body, u->buf, u->len + 1);
        s_hook_count++;
    } else if (!ok)
        s_hook_bad_sig++;
    if (s_hook_n < (int)(sizeof s_hook_log / sizeof s_hook_log[0])) {
        s_hook_call_t *call = &s_hook_log[s_hook_n++];
        call->at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        snprintf(call->id, sizeof call->id, "%s", id ? id : "");
        call->status = status;
    }
    pthread_mutex_unlock(&s_hook_lock);
    json_decref(msg);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned int)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void s_hook_done(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void) cls; (void) c; (void) toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* --- HTTP client ------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len;
} s_buf_t;

static size_t s_collect(char *p, size_t size, size_t n, void *user)
{
    s_buf_t *b = user;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

static size_t s_header(char *p, size_t size, size_t n, void *user)
{
    if (strncasecmp(p, "Retry-After:", 12) == 0)
        *(int *) user = 1;
    return size * n;
}

/* One request to bridge i; returns the status and *out (parsed JSON or NULL). */
static long s_http_ex(int i, const char *method, const char *path, const char *auth,
                      const char *ctype, const char *extra_header, const char *body,
                      size_t body_len, json_t **out, int *retry_after);

static long s_http(int i, const char *method, const char *path, const char *auth,
                   const char *ctype, const char *body, size_t body_len, json_t **out,
                   int *retry_after)
{
    return s_http_ex(i, method, path, auth, ctype, NULL, body, body_len, out, retry_after);
}

/* As s_http, with one more request header line ("Idempotency-Key: k"). */
static long s_http_ex(int i, const char *method, const char *path, const char *auth,
                      const char *ctype, const char *extra_header, const char *body,
                      size_t body_len, json_t **out, int *retry_after)
{
    char url[512];
    snprintf(url, sizeof url, "http://%s:%d%s", s_host[i], s_port[i], path);
    CURL *curl = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[256];
    if (auth) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        h = curl_slist_append(h, line);
    }
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    h = curl_slist_append(h, "Expect:");
    s_buf_t b = {0};
    int ra = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ra);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (out)
        *out = b.data ? json_loads(b.data, 0, NULL) : NULL;
    if (retry_after)
        *retry_after = ra;
    if (getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\n%s %s -> %ld %s\n", method, path, status, b.data ? b.data : "");
    free(b.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    return status;
}

static const char *s_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* --- processes -------------------------------------------------------------------- */

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) != 0
        || getsockname(fd, (struct sockaddr *) &a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int s_write_secret(const char *name, const char *value, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", pt_harness_dir(s_h), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", value);
    fclose(f);
    return chmod(path, 0600);
}

static int s_bridge_start(int i, const char *org, const char *broker, int webhook)
{
    const char *bin = getenv("PUENTE_BRIDGE_BIN") ? getenv("PUENTE_BRIDGE_BIN")
                                                  : "build/puente-bridge";
    char token[600], secret[600], listen[64], state[600], hook[128], log[600];
    if (s_write_secret("token", S_TOKEN, token, sizeof token) != 0
        || s_write_secret("secret", S_SECRET, secret, sizeof secret) != 0)
        return -1;
    s_port[i] = s_free_port();
    snprintf(listen, sizeof listen, "%s:%d", s_host[i], s_port[i]);
    snprintf(state, sizeof state, "%s/bridge-%s", pt_harness_dir(s_h), org);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", s_hook_port);
    snprintf(log, sizeof log, "%s/bridge-%s.log", pt_harness_dir(s_h), org);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A test that dies (assertion crash, SIGPIPE) must not leave bridges behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        FILE *l = freopen(log, "a", stderr);
        (void) l;
        char *argv[30] = {(char *)bin,
                          "--org",
                          (char *)org,
                          "--listen",
                          listen,
                          "--token-file",
                          token,
                          "--broker",
                          (char *)broker,
                          "--keys",
                          (char *)pt_harness_keys(s_h),
                          "--state",
                          state,
                          "--timeout-ms",
                          "3000"};
        int n = 15;
        if (webhook) {
            argv[n++] = "--webhook";
            argv[n++] = hook;
            argv[n++] = "--webhook-secret-file";
            argv[n++] = secret;
            /* Small retry limits for test_webhook_retries: 0.5 s, 1 s, 2 s, then failed. */
            argv[n++] = "--webhook-backoff";
            argv[n++] = "500ms";
            argv[n++] = "--webhook-max-backoff";
            argv[n++] = "10s";
            argv[n++] = "--webhook-max-attempts";
            argv[n++] = "4";
        }
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    s_pid[i] = pid;
    for (int t = 0; t < 100; t++) {
        if (s_http(i, "GET", "/v1/openapi.json", NULL, NULL, NULL, 0, NULL, NULL) == 200)
            return 0;
        usleep(100000);
    }
    fprintf(stderr, "bridge %s did not start (see %s)\n", org, log);
    return -1;
}

static int s_suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_h = pt_harness_new("bridge");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    s_hook = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_hook_handler,
                              NULL, MHD_OPTION_NOTIFY_COMPLETED, s_hook_done, NULL, MHD_OPTION_END);
    if (!s_hook)
        return 1;
    s_hook_port = MHD_get_daemon_info(s_hook, MHD_DAEMON_INFO_BIND_PORT)->port;
    if (s_bridge_start(0, "MX-DIF", pt_harness_endpoint(s_h), 0) != 0
        || s_bridge_start(1, "GT-PGN", pt_harness_endpoint(s_h), 1) != 0
        || s_bridge_start(2, "HN-DINAF", "tcp://127.0.0.1:9", 0) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    for (int i = 0; i < 4; i++)
        if (s_pid[i] > 0) {
            int status;
            kill(s_pid[i], SIGTERM);
            waitpid(s_pid[i], &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "bridge %d exited badly (status %d)\n", i, status);
        }
    if (s_hook)
        MHD_stop_daemon(s_hook);
    pt_harness_destroy(&s_h);
    curl_global_cleanup();
    return 0;
}

/* Polls GET /v1/messages/{id} at bridge i (up to 60 s) until its status is no
   longer `from` (until == 0) or is `until` (until == 1). 0 and the status (and
   reject code) copied out, -1 on timeout. */
static int s_wait_status(int i, const char *id, const char *status, int until, char *out,
                         size_t out_len, int *reject_code)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    for (int t = 0; t < 600; t++) {
        json_t *r = NULL;
        if (s_http(i, "GET", path, "Bearer " S_TOKEN, NULL, NULL, 0, &r, NULL) == 200) {
            const char *now = s_str(r, "status");
            int done = until ? strcmp(now, status) == 0 : strcmp(now, status) != 0;
            if (done) {
                snprintf(out, out_len, "%s", now);
                if (reject_code)
                    *reject_code = (int) json_integer_value(json_object_get(r, "reject_code"));
                json_decref(r);
                return 0;
            }
        }
        json_decref(r);
        usleep(100000);
    }
    return -1;
}

/* A receipt as the bridge answers it: the message's ids, the broker's stored
   time, hashes and the audit-log leaf. */
static void s_assert_receipt(json_t *receipt, const char *mid, const char *cid)
{
    CU_ASSERT_FATAL(json_is_object(receipt));
    CU_ASSERT_STRING_EQUAL(s_str(receipt, "message_id"), mid);
    if (cid)
        CU_ASSERT_STRING_EQUAL(s_str(receipt, "correlation_id"), cid);
    CU_ASSERT_EQUAL(strlen(s_str(receipt, "stored_at")), 24); /* 2026-11-22T20:41:05.123Z */
    CU_ASSERT_EQUAL(s_str(receipt, "stored_at")[23], 'Z');
    CU_ASSERT_EQUAL(strlen(s_str(receipt, "header_sha256")), 64);
    CU_ASSERT_EQUAL(strlen(s_str(receipt, "event_hash")), 64);
    CU_ASSERT(json_is_false(json_object_get(receipt, "duplicate")));
    CU_ASSERT(json_is_integer(json_object_get(receipt, "leaf_index")));
    CU_ASSERT(json_integer_value(json_object_get(receipt, "leaf_index")) >= 0);
}

/* --- the referral end to end ------------------------------------------------------- */

static void test_referral_through_bridges(void)
{
    const char *auth = "Bearer " S_TOKEN;
    json_t *body = json_loads(pt_types_find("referral.request")->example_json, 0, NULL);
    json_t *req = json_pack("{s:s, s:[s], s:s, s:s, s:o}", "type", "referral.request", "to",
                            "GT-PGN", "case_token", "CASE-BRIDGE-1", "service_type",
                            "psychosocial", "body", body);
    char *text = json_dumps(req, 0);
    json_decref(req);
    json_t *r = NULL;
    CU_ASSERT_EQUAL_FATAL(s_http(0, "POST", "/v1/messages", auth, "application/json", text,
                                 strlen(text), &r, NULL), 202);
    free(text);
    char mid[64], cid[64], local[64];
    snprintf(mid, sizeof mid, "%s", s_str(r, "message_id"));
    snprintf(cid, sizeof cid, "%s", s_str(r, "correlation_id"));
    snprintf(local, sizeof local, "%s", s_str(r, "id"));
    CU_ASSERT_EQUAL(strlen(mid), 36);
    CU_ASSERT_EQUAL(strlen(cid), 36);
    CU_ASSERT_STRING_EQUAL(local, mid); /* one id: the Puente message id */
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "queued");
    json_decref(r);

    /* GT's webhook receives it, signed. */
    int got = 0;
    for (int t = 0; t < 150 && !got; t++) {
        pthread_mutex_lock(&s_hook_lock);
        got = s_hook_count > 0;
        pthread_mutex_unlock(&s_hook_lock);
        if (!got)
            usleep(100000);
    }
    CU_ASSERT_FATAL(got);
    json_t *hooked = json_loads(s_hook_body, 0, NULL);
    CU_ASSERT_STRING_EQUAL(s_str(hooked, "id"), mid);
    CU_ASSERT_STRING_EQUAL(s_str(hooked, "sender"), "MX-DIF");
    CU_ASSERT_STRING_EQUAL(s_str(json_object_get(json_object_get(hooked, "body"), "child"),
                                 "name_first"), "Ana Lucía");
    json_decref(hooked);
    CU_ASSERT_EQUAL(s_hook_bad_sig, 0);

    /* GT's inbox lists it until GT acks; the ack goes to the broker. */
    CU_ASSERT_EQUAL(s_http(1, "GET", "/v1/messages?since=0&limit=10", auth, NULL, NULL, 0, &r,
                           NULL), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "messages")), 1);
    CU_ASSERT_STRING_EQUAL(s_str(json_array_get(json_object_get(r, "messages"), 0), "id"), mid);
    json_decref(r);
    char path[200];
    snprintf(path, sizeof path, "/v1/messages/%s/ack", mid);
    CU_ASSERT_EQUAL(s_http(1, "POST", path, auth, NULL, NULL, 0, &r, NULL), 200);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "acknowledged");
    json_decref(r);
    CU_ASSERT_EQUAL(s_http(1, "GET", "/v1/messages", auth, NULL, NULL, 0, &r, NULL), 200);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "messages")), 0);
    json_decref(r);

    /* GT accepts through its bridge. */
    req = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:{s:s, s:s}}", "type", "referral.accept", "to",
                    "MX-DIF", "case_token", "CASE-BRIDGE-1", "correlation_id", cid,
                    "causation_id", mid, "body", "referral_id", "TEST-REF-MX-DIF-2025-0001",
                    "status", "accepted");
    text = json_dumps(req, 0);
    json_decref(req);
    /* GT answers the moment its webhook fired: the broker committed the request's
       lifecycle move to "delivered" before it handed the frame over, so the
       accept is legal at once (no REJECT_ILLEGAL_TRANSITION, no retry). */
    char final[32] = "", accept_id[64];
    r = NULL;
    CU_ASSERT_EQUAL_FATAL(
        s_http(1, "POST", "/v1/messages", auth, "application/json", text, strlen(text), &r, NULL),
        202);
    snprintf(accept_id, sizeof accept_id, "%s", s_str(r, "id"));
    json_decref(r);
    int code = 0;
    CU_ASSERT_EQUAL(s_wait_status(1, accept_id, "queued", 0, final, sizeof final, &code), 0);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT(strcmp(final, "submitted") == 0 || strcmp(final, "delivered") == 0
              || strcmp(final, "acknowledged") == 0);
    free(text);

    /* MX sees the acceptance in the status of its referral and in the trail. */
    snprintf(path, sizeof path, "/v1/messages/%s", local);
    int accepted = 0;
    for (int t = 0; t < 150 && !accepted; t++) {
        r = NULL;
        if (s_http(0, "GET", path, auth, NULL, NULL, 0, &r, NULL) == 200)
            accepted = strcmp(s_str(r, "lifecycle_state"), "accepted") == 0
                       && json_array_size(json_object_get(r, "replies")) == 1;
        if (accepted) {
            CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "acknowledged");
            CU_ASSERT_STRING_EQUAL(s_str(r, "message_id"), mid);
            /* The broker's receipt, as the SDK recorded it. */
            s_assert_receipt(json_object_get(r, "receipt"), mid, cid);
        }
        json_decref(r);
        if (!accepted)
            usleep(100000);
    }
    CU_ASSERT(accepted);
    snprintf(path, sizeof path, "/v1/messages/%s", mid); /* by Puente message id too */
    CU_ASSERT_EQUAL(s_http(0, "GET", path, auth, NULL, NULL, 0, NULL, NULL), 200);
    CU_ASSERT_EQUAL(s_http(0, "GET", "/v1/cases/CASE-BRIDGE-1/trail", auth, NULL, NULL, 0, &r,
                           NULL), 200);
    int saw_accept = 0, saw_ack = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(r, "events"), i, ev) {
        saw_accept |= strcmp(s_str(ev, "kind"), "state:accepted") == 0;
        saw_ack |= strcmp(s_str(ev, "kind"), "acknowledged") == 0
                   && strcmp(s_str(ev, "message_id"), mid) == 0;
    }
    CU_ASSERT(saw_accept);
    CU_ASSERT(saw_ack);
    json_decref(r);
}

/* --- bad requests -------------------------------------------------------------------- */

static const struct {
    int bridge;
    const char *method, *path;
    int auth;               /* 1 good token, 0 none, -1 wrong token */
    const char *ctype, *body;
    long status;
    const char *type;
} s_bad[] = {
    {0, "GET", "/v1/messages", 0, NULL, NULL, 401, "unauthorized"},
    {0, "GET", "/v1/messages", -1, NULL, NULL, 401, "unauthorized"},
    {0, "POST", "/v1/messages", 0, "application/json", "{}", 401, "unauthorized"},
    {0, "GET", "/v1/nothing", 1, NULL, NULL, 404, "not-found"},
    {0, "GET", "/", 1, NULL, NULL, 404, "not-found"},
    {0, "DELETE", "/v1/messages", 1, NULL, NULL, 405, "method-not-allowed"},
    {0, "PUT", "/v1/messages/x/ack", 1, NULL, NULL, 405, "method-not-allowed"},
    {0, "POST", "/v1/openapi.json", 1, NULL, NULL, 405, "method-not-allowed"},
    {0, "GET", "/v1/messages/0190f6a8-0000-7000-8000-00000000beef", 1, NULL, NULL, 404,
     "message-not-found"},
    {0, "POST", "/v1/messages/0190f6a8-0000-7000-8000-00000000beef/ack", 1, NULL, NULL, 404,
     "message-not-found"},
    {0, "POST", "/v1/messages/not-a-uuid/ack", 1, NULL, NULL, 404, "message-not-found"},
    {0, "GET", "/v1/messages?limit=0", 1, NULL, NULL, 400, "invalid-query"},
    {0, "GET", "/v1/messages?since=abc", 1, NULL, NULL, 400, "invalid-query"},
    {0, "POST", "/v1/messages", 1, "text/plain", "{}", 415, "unsupported-media-type"},
    {0, "POST", "/v1/messages", 1, NULL, "{}", 415, "unsupported-media-type"},
    {0, "POST", "/v1/messages", 1, "application/json", "{\"type\":", 400, "invalid-json"},
    {0, "POST", "/v1/messages", 1, "application/json", "", 400, "invalid-json"},
    {0, "POST", "/v1/messages", 1, "application/json", "{\"tipo\":1}", 400, "unknown-field"},
    {0, "POST", "/v1/messages", 1, "application/json", "{\"type\":[]}", 400, "wrong-type"},
    {0, "POST", "/v1/messages", 1, "application/json", "{\"type\":\"referral.accept\"}", 400,
     "missing-field"},
    {0, "POST", "/v1/messages", 1, "application/json",
     "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],\"case_token\":\"C\",\"body\":{\"x\":1}}",
     400, "unknown-field"},
    {0, "POST", "/v1/messages", 1, "application/json",
     "{\"type\":\"referral.accept\",\"to\":[\"gt\"],\"case_token\":\"C\",\"body\":{}}", 400,
     "invalid-value"},
    {0, "POST", "/v1/messages", 1, "application/json; charset=utf-8",
     "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],\"case_token\":\"C\","
     "\"body\":{\"by\":{\"organisation\":false}}}", 400, "wrong-type"},
    /* Recipient not in the directory: refused before sealing. */
    {0, "POST", "/v1/messages", 1, "application/json",
     "{\"type\":\"referral.accept\",\"to\":[\"ZZ-NOBODY\"],\"case_token\":\"C\",\"body\":{}}",
     422, "rejected"},
    {0, "GET", "/v1/cases/CASE-NOT-MINE/trail", 1, NULL, NULL, 403, "rejected"},
    /* The bridge whose broker is down. */
    {2, "POST", "/v1/messages", 1, "application/json",
     "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],\"case_token\":\"C\",\"body\":{}}", 503,
     "broker-unreachable"},
    {2, "GET", "/v1/cases/C/trail", 1, NULL, NULL, 503, "broker-unreachable"},
};

static void test_bad_requests(void)
{
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        json_t *r = NULL;
        int retry_after = 0;
        const char *auth = s_bad[i].auth > 0 ? "Bearer " S_TOKEN
                           : s_bad[i].auth < 0 ? "Bearer wrong-token-0000000000000" : NULL;
        long status = s_http(s_bad[i].bridge, s_bad[i].method, s_bad[i].path, auth,
                             s_bad[i].ctype, s_bad[i].body,
                             s_bad[i].body ? strlen(s_bad[i].body) : 0, &r, &retry_after);
        char want[128];
        snprintf(want, sizeof want, PT_BRIDGE_PROBLEM_BASE "%s", s_bad[i].type);
        if (status != s_bad[i].status || strcmp(s_str(r, "type"), want) != 0)
            fprintf(stderr, "\n  case %zu (%s %s): got %ld %s\n", i, s_bad[i].method,
                    s_bad[i].path, status, s_str(r, "type"));
        CU_ASSERT_EQUAL(status, s_bad[i].status);
        CU_ASSERT_STRING_EQUAL(s_str(r, "type"), want);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "status")), s_bad[i].status);
        if (s_bad[i].status == 503)
            CU_ASSERT(retry_after);
        if (strcmp(s_bad[i].type, "rejected") == 0)
            CU_ASSERT(json_integer_value(json_object_get(r, "reject_code")) > 0);
        json_decref(r);
    }
    /* Oversize: 2 MiB against the 1 MiB default. */
    size_t big = 2 * 1024 * 1024;
    char *text = malloc(big + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    text[big] = '\0';
    json_t *r = NULL;
    CU_ASSERT_EQUAL(s_http(0, "POST", "/v1/messages", "Bearer " S_TOKEN, "application/json", text,
                           big, &r, NULL), 413);
    CU_ASSERT_STRING_EQUAL(s_str(r, "type"), PT_BRIDGE_PROBLEM_BASE "body-too-large");
    json_decref(r);
    free(text);
    /* Every documented route is served (not 404/405) on a live bridge. */
    size_t n;
    const pt_route_entry_t *routes = pt_bridge_routes(&n);
    for (size_t k = 0; k < n; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s", routes[k].path);
        char *brace = strstr(path, "{id}");
        if (brace)
            memcpy(brace, "abcd", 4);
        brace = strstr(path, "{token}");
        if (brace)
            memmove(brace, "CASE-BRIDGE-1", 14), strcat(path, "/trail");
        long status = s_http(0, routes[k].method, path, "Bearer " S_TOKEN, "application/json",
                             strcmp(routes[k].method, "POST") == 0 ? "{}" : NULL, 2, &r, NULL);
        json_t *type = json_object_get(r, "type");
        CU_ASSERT(status != 405);
        CU_ASSERT(status != 404 || strcmp(json_string_value(type), PT_BRIDGE_PROBLEM_BASE
                                          "message-not-found") == 0);
        json_decref(r);
    }
    /* The bridges are still up after all that. */
    CU_ASSERT_EQUAL(s_http(0, "GET", "/v1/messages", "Bearer " S_TOKEN, NULL, NULL, 0, NULL, NULL),
                    200);
    CU_ASSERT_EQUAL(kill(s_pid[0], 0), 0);
}

/* --- the broker down: durable queue, idempotency, later delivery ----------------- */

static void test_outage_and_idempotency(void)
{
    const char *auth = "Bearer " S_TOKEN;
    json_t *body = json_loads(pt_types_find("referral.request")->example_json, 0, NULL);
    json_t *req = json_pack("{s:s, s:[s], s:s, s:s, s:o}", "type", "referral.request", "to",
                            "GT-PGN", "case_token", "CASE-BRIDGE-OUT", "service_type",
                            "psychosocial", "body", body);
    char *text = json_dumps(req, 0);
    json_object_set_new(req, "case_token", json_string("CASE-BRIDGE-OTHER"));
    char *other = json_dumps(req, 0);
    json_decref(req);

    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    json_t *r = NULL;
    CU_ASSERT_EQUAL_FATAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                                    "Idempotency-Key: outage-1", text, strlen(text), &r, NULL),
                          202);
    char mid[64];
    snprintf(mid, sizeof mid, "%s", s_str(r, "id"));
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "queued");
    CU_ASSERT_EQUAL(strlen(mid), 36);
    json_decref(r);
    char path[200];
    snprintf(path, sizeof path, "/v1/messages/%s", mid);
    CU_ASSERT_EQUAL(s_http(0, "GET", path, auth, NULL, NULL, 0, &r, NULL), 200);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "queued");
    json_decref(r);
    /* The national system did not hear the answer and retries: same id, no second message. */
    CU_ASSERT_EQUAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                              "Idempotency-Key: outage-1", text, strlen(text), &r, NULL),
                    202);
    CU_ASSERT_STRING_EQUAL(s_str(r, "id"), mid);
    CU_ASSERT(json_is_true(json_object_get(r, "idempotent_replay")));
    json_decref(r);
    /* The same key with another body is a client bug: 409, nothing queued. */
    CU_ASSERT_EQUAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                              "Idempotency-Key: outage-1", other, strlen(other), &r, NULL),
                    409);
    CU_ASSERT_STRING_EQUAL(s_str(r, "type"), PT_BRIDGE_PROBLEM_BASE "idempotency-key-reused");
    CU_ASSERT_STRING_EQUAL(s_str(r, "message_id"), mid);
    json_decref(r);
    /* A lifecycle the broker will refuse is still accepted locally while it is down. */
    const char *bad = "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],"
                      "\"case_token\":\"CASE-BRIDGE-X\",\"body\":{\"referral_id\":\"R\"}}";
    CU_ASSERT_EQUAL(s_http(0, "POST", "/v1/messages", auth, "application/json", bad, strlen(bad),
                           &r, NULL), 202);
    char bad_id[64];
    snprintf(bad_id, sizeof bad_id, "%s", s_str(r, "id"));
    json_decref(r);
    sleep(2); /* the outbox keeps trying against a dead broker */

    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    char final[32] = "";
    int code = 0;
    CU_ASSERT_EQUAL(s_wait_status(0, bad_id, "queued", 0, final, sizeof final, &code), 0);
    CU_ASSERT_STRING_EQUAL(final, "rejected");
    CU_ASSERT(code > 0);
    /* Delivered to GT (its bridge stored it), then acknowledged once GT acks. */
    CU_ASSERT_EQUAL(s_wait_status(0, mid, "delivered", 1, final, sizeof final, NULL), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-BRIDGE-OUT'"), 1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-BRIDGE-OTHER'"), 0);
    snprintf(path, sizeof path, "/v1/messages/%s/ack", mid);
    CU_ASSERT_EQUAL(s_http(1, "POST", path, auth, NULL, NULL, 0, &r, NULL), 200);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "acknowledged");
    json_decref(r);
    CU_ASSERT_EQUAL(s_wait_status(0, mid, "acknowledged", 1, final, sizeof final, NULL), 0);
    /* Retried after delivery: still the one message, now 201 with its receipt. */
    CU_ASSERT_EQUAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                              "Idempotency-Key: outage-1", text, strlen(text), &r, NULL),
                    201);
    CU_ASSERT_STRING_EQUAL(s_str(r, "id"), mid);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "acknowledged");
    CU_ASSERT(json_is_true(json_object_get(r, "idempotent_replay")));
    s_assert_receipt(json_object_get(r, "receipt"), mid, NULL);
    json_decref(r);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-BRIDGE-OUT'"), 1);
    free(text);
    free(other);
}

/* --- Prefer: wait, the receipt in the POST answer -------------------------------- */

/* A referral.request from MX to GT on case_token (thread cid, NULL = new): its
   JSON text (caller frees). */
static char *s_referral_text(const char *case_token, const char *cid)
{
    json_t *body = json_loads(pt_types_find("referral.request")->example_json, 0, NULL);
    json_t *req =
        json_pack("{s:s, s:[s], s:s, s:s, s:o}", "type", "referral.request", "to", "GT-PGN",
                  "case_token", case_token, "service_type", "psychosocial", "body", body);
    if (cid)
        json_object_set_new(req, "correlation_id", json_string(cid));
    char *text = json_dumps(req, 0);
    json_decref(req);
    return text;
}

/* POSTs a referral at MX; returns the HTTP status, the message id in mid. */
static long s_post_referral(const char *case_token, const char *cid, const char *extra_header,
                            char *mid, size_t mid_len, json_t **out)
{
    char *text = s_referral_text(case_token, cid);
    json_t *r = NULL;
    long status = s_http_ex(0, "POST", "/v1/messages", "Bearer " S_TOKEN, "application/json",
                            extra_header, text, strlen(text), &r, NULL);
    free(text);
    snprintf(mid, mid_len, "%s", s_str(r, "id"));
    if (out)
        *out = r;
    else
        json_decref(r);
    return status;
}

static void test_prefer_wait_receipt(void)
{
    const char *auth = "Bearer " S_TOKEN;
    char mid[64], path[200];
    json_t *r = NULL;
    /* The broker is up: the answer waits for the receipt and carries it. */
    CU_ASSERT_EQUAL(
        s_post_referral("CASE-BRIDGE-WAIT", NULL, "Prefer: wait=10", mid, sizeof mid, &r), 201);
    CU_ASSERT_EQUAL(strlen(mid), 36);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "submitted");
    s_assert_receipt(json_object_get(r, "receipt"), mid, s_str(r, "correlation_id"));
    CU_ASSERT_PTR_NULL(json_object_get(r, "idempotent_replay"));
    json_decref(r);
    /* GET has the same receipt. */
    snprintf(path, sizeof path, "/v1/messages/%s", mid);
    CU_ASSERT_EQUAL(s_http(0, "GET", path, auth, NULL, NULL, 0, &r, NULL), 200);
    s_assert_receipt(json_object_get(r, "receipt"), mid, NULL);
    json_decref(r);
    /* A replayed Idempotency-Key once submitted: 201 with the receipt. */
    char again[64];
    CU_ASSERT_EQUAL(s_post_referral("CASE-BRIDGE-WAIT2", NULL, "Idempotency-Key: wait-replay-1",
                                    again, sizeof again, &r),
                    202);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "queued");
    CU_ASSERT_PTR_NULL(json_object_get(r, "receipt"));
    json_decref(r);
    char final[32] = "";
    CU_ASSERT_EQUAL(s_wait_status(0, again, "queued", 0, final, sizeof final, NULL), 0);
    char replay[64];
    CU_ASSERT_EQUAL(s_post_referral("CASE-BRIDGE-WAIT2", NULL, "Idempotency-Key: wait-replay-1",
                                    replay, sizeof replay, &r),
                    201);
    CU_ASSERT_STRING_EQUAL(replay, again);
    CU_ASSERT(json_is_true(json_object_get(r, "idempotent_replay")));
    s_assert_receipt(json_object_get(r, "receipt"), again, NULL);
    json_decref(r);
    /* A refusal the broker gives within the wait: 422 rejected with the message id
       (referral.accept of a thread that does not exist). */
    const char *bad = "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],"
                      "\"case_token\":\"CASE-BRIDGE-WAIT3\",\"body\":{\"referral_id\":\"R\"}}";
    CU_ASSERT_EQUAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                              "Prefer: respond-async, wait=10", bad, strlen(bad), &r, NULL),
                    422);
    CU_ASSERT_STRING_EQUAL(s_str(r, "type"), PT_BRIDGE_PROBLEM_BASE "rejected");
    CU_ASSERT_EQUAL(strlen(s_str(r, "message_id")), 36);
    CU_ASSERT(json_integer_value(json_object_get(r, "reject_code")) > 0);
    json_decref(r);
    /* The broker down: the wait runs out, 202 queued, no receipt. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    CU_ASSERT_EQUAL(
        s_post_referral("CASE-BRIDGE-WAIT4", NULL, "Prefer: wait=1", mid, sizeof mid, &r), 202);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "queued");
    CU_ASSERT_PTR_NULL(json_object_get(r, "receipt"));
    json_decref(r);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    CU_ASSERT_EQUAL(s_wait_status(0, mid, "queued", 0, final, sizeof final, NULL), 0);
    CU_ASSERT_STRING_NOT_EQUAL(final, "rejected");
}

/* --- webhook retries and give-up, inbox paging ---------------------------------- */

/* The hook calls logged for message id: count, statuses and times copied out. */
static int s_hook_calls(const char *id, int *status, int64_t *at_ms, int cap)
{
    int n = 0;
    pthread_mutex_lock(&s_hook_lock);
    for (int i = 0; i < s_hook_n; i++)
        if (strcmp(s_hook_log[i].id, id) == 0) {
            if (n < cap) {
                status[n] = s_hook_log[i].status;
                at_ms[n] = s_hook_log[i].at_ms;
            }
            n++;
        }
    pthread_mutex_unlock(&s_hook_lock);
    return n;
}

/* GT's inbox entry for id (a page from 0 of up to 500), or NULL; caller json_decref. */
static json_t *s_inbox_entry(const char *id)
{
    json_t *r = NULL, *found = NULL;
    if (s_http(1, "GET", "/v1/messages?limit=500", "Bearer " S_TOKEN, NULL, NULL, 0, &r, NULL) !=
        200) {
        json_decref(r);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r, "messages"), i, m)
    {
        if (strcmp(s_str(m, "id"), id) == 0)
            found = json_incref(m);
    }
    json_decref(r);
    return found;
}

static void s_ack_at_gt(const char *id)
{
    char path[200];
    json_t *r = NULL;
    snprintf(path, sizeof path, "/v1/messages/%s/ack", id);
    CU_ASSERT_EQUAL(s_http(1, "POST", path, "Bearer " S_TOKEN, NULL, NULL, 0, &r, NULL), 200);
    json_decref(r);
}

static void test_webhook_retries(void)
{
    /* GT's bridge runs with webhook_backoff 500ms, webhook_max_attempts 4. */
    char mid[64];
    int status[16];
    int64_t at[16];
    /* 500 three times, then 200: four calls, gaps of at least 0.5, 1 and 2 s. */
    pthread_mutex_lock(&s_hook_lock);
    snprintf(s_hook_fail_case, sizeof s_hook_fail_case, "CASE-HOOK-RETRY");
    s_hook_fail_left = 3;
    pthread_mutex_unlock(&s_hook_lock);
    CU_ASSERT_EQUAL_FATAL(s_post_referral("CASE-HOOK-RETRY", NULL, NULL, mid, sizeof mid, NULL),
                          202);
    int n = 0;
    for (int t = 0; t < 600; t++) {
        n = s_hook_calls(mid, status, at, 16);
        if (n > 0 && status[n < 16 ? n - 1 : 15] == 200)
            break;
        usleep(100000);
    }
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_EQUAL(status[0], 500);
    CU_ASSERT_EQUAL(status[1], 500);
    CU_ASSERT_EQUAL(status[2], 500);
    CU_ASSERT_EQUAL(status[3], 200);
    int64_t g1 = at[1] - at[0], g2 = at[2] - at[1], g3 = at[3] - at[2];
    if (getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\n  webhook gaps: %lld %lld %lld ms\n", (long long)g1, (long long)g2,
                (long long)g3);
    /* Never earlier than the backoff (ms clocks on both sides: 5 ms of slack). */
    CU_ASSERT(g1 >= 495);
    CU_ASSERT(g2 >= 995);
    CU_ASSERT(g3 >= 1995);
    CU_ASSERT(g1 < g2);
    CU_ASSERT(g2 < g3);
    json_t *e = s_inbox_entry(mid);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(s_str(json_object_get(e, "webhook"), "state"), "delivered");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(e, "webhook"), "attempts")),
                    4);
    json_decref(e);
    s_ack_at_gt(mid);

    /* Always 500: four attempts, then the webhook state is failed and the message
       stays in the inbox for the national system to fetch. */
    pthread_mutex_lock(&s_hook_lock);
    snprintf(s_hook_fail_case, sizeof s_hook_fail_case, "CASE-HOOK-FAIL");
    s_hook_fail_left = -1;
    pthread_mutex_unlock(&s_hook_lock);
    CU_ASSERT_EQUAL_FATAL(s_post_referral("CASE-HOOK-FAIL", NULL, NULL, mid, sizeof mid, NULL),
                          202);
    int failed = 0;
    for (int t = 0; t < 600 && !failed; t++) {
        e = s_inbox_entry(mid);
        failed = strcmp(s_str(json_object_get(e, "webhook"), "state"), "failed") == 0;
        if (failed)
            CU_ASSERT_EQUAL(
                json_integer_value(json_object_get(json_object_get(e, "webhook"), "attempts")), 4);
        json_decref(e);
        if (!failed)
            usleep(100000);
    }
    CU_ASSERT_FATAL(failed);
    n = s_hook_calls(mid, status, at, 16);
    CU_ASSERT_EQUAL(n, 4);
    for (int i = 0; i < n && i < 16; i++)
        CU_ASSERT_EQUAL(status[i], 500);
    pthread_mutex_lock(&s_hook_lock);
    s_hook_fail_case[0] = '\0';
    pthread_mutex_unlock(&s_hook_lock);
    s_ack_at_gt(mid);
}

static void test_inbox_paging(void)
{
    const char *auth = "Bearer " S_TOKEN;
    json_t *r = NULL;
    /* Where GT's inbox ends now. */
    CU_ASSERT_EQUAL_FATAL(s_http(1, "GET", "/v1/messages?limit=500", auth, NULL, NULL, 0, &r, NULL),
                          200);
    char start[24];
    snprintf(start, sizeof start, "%s", s_str(r, "next_cursor"));
    json_decref(r);
    /* Three messages on three threads (on one thread the broker would hold the
       second back until GT acked the first): the outbox submits them in this
       order and the broker delivers in submission order. */
    char ids[3][64], cids[3][64];
    for (int i = 0; i < 3; i++) {
        json_t *a = NULL;
        CU_ASSERT_EQUAL_FATAL(
            s_post_referral("CASE-BRIDGE-PAGE", NULL, NULL, ids[i], sizeof ids[i], &a), 202);
        snprintf(cids[i], sizeof cids[i], "%s", s_str(a, "correlation_id"));
        json_decref(a);
    }
    int there = 0;
    for (int t = 0; t < 600 && !there; t++) {
        json_t *e = s_inbox_entry(ids[2]);
        there = e != NULL;
        json_decref(e);
        if (!there)
            usleep(100000);
    }
    CU_ASSERT_FATAL(there);
    /* Page by one from the start cursor: the three in order, then the end. */
    char since[24];
    snprintf(since, sizeof since, "%s", start);
    for (int page = 0; page < 4; page++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/messages?limit=1&since=%s", since);
        CU_ASSERT_EQUAL_FATAL(s_http(1, "GET", path, auth, NULL, NULL, 0, &r, NULL), 200);
        json_t *list = json_object_get(r, "messages");
        const char *next = s_str(r, "next_cursor");
        if (page < 3) {
            CU_ASSERT_EQUAL(json_array_size(list), 1);
            json_t *m = json_array_get(list, 0);
            CU_ASSERT_STRING_EQUAL(s_str(m, "id"), ids[page]);
            CU_ASSERT_STRING_EQUAL(s_str(m, "correlation_id"), cids[page]);
            CU_ASSERT_STRING_EQUAL(s_str(m, "cursor"), next);
            CU_ASSERT(strtoll(next, NULL, 10) > strtoll(since, NULL, 10));
        } else {
            /* The end: an empty page, the cursor stays. */
            CU_ASSERT_EQUAL(json_array_size(list), 0);
            CU_ASSERT_STRING_EQUAL(next, since);
        }
        snprintf(since, sizeof since, "%s", next);
        json_decref(r);
    }
    for (int i = 0; i < 3; i++)
        s_ack_at_gt(ids[i]);
}

/* --listen [::1]:PORT: the bridge serves on IPv6 loopback (skipped where the
   machine has no ::1). */
static void test_listen_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int v6 = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    if (!v6) {
        fprintf(stderr, "\n  no IPv6 loopback here: skipped\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(s_bridge_start(3, "SV-CONNA", "tcp://127.0.0.1:9", 0), 0);
    json_t *r = NULL;
    CU_ASSERT_EQUAL(s_http(3, "GET", "/v1/messages", "Bearer " S_TOKEN, NULL, NULL, 0, &r, NULL),
                    200);
    CU_ASSERT_STRING_EQUAL(s_str(r, "next_cursor"), "0");
    json_decref(r);
    CU_ASSERT_EQUAL(s_http(3, "GET", "/v1/openapi.json", NULL, NULL, NULL, 0, NULL, NULL), 200);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("bridge", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral MX -> GT webhook, GT ack + accept, MX status and trail",
                test_referral_through_bridges);
    CU_add_test(suite, "broker down: 202 queued, Idempotency-Key, delivered and acked later",
                test_outage_and_idempotency);
    CU_add_test(suite, "bad requests: status and problem type", test_bad_requests);
    CU_add_test(suite, "Prefer: wait: 201 with the receipt, 422 rejected, 202 when it runs out",
                test_prefer_wait_receipt);
    CU_add_test(suite, "webhook: retries with growing gaps, then success; always failing: failed",
                test_webhook_retries);
    CU_add_test(suite, "inbox paging with limit=1 and next_cursor to the end", test_inbox_paging);
    CU_add_test(suite, "--listen [::1]:PORT", test_listen_ipv6);
    return pt_cu_main();
}

/*  itest_bridge — two puente-bridge processes (MX-DIF, GT-PGN) over one real
    broker: a referral POSTed at MX (202, queued in the SDK outbox) reaches GT's
    webhook (HMAC checked), GT acks and accepts through its bridge, MX sees the
    acceptance in status and trail. With the broker stopped, POSTs are still
    queued (202), a repeated Idempotency-Key creates no second message, and the
    message is delivered and acknowledged once the broker is back.
    Then a table of bad requests, each with its status and problem type, and a
    bridge whose broker is down (503 with Retry-After). libcurl is the client;
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
static pid_t s_pid[3];
static int s_port[3];                /* MX, GT, dead-broker bridge */
static struct MHD_Daemon *s_hook;
static int s_hook_port;
static pthread_mutex_t s_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_hook_body[65536];
static int s_hook_count, s_hook_bad_sig;

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
    pthread_mutex_lock(&s_hook_lock);
    if (ok) {
        memcpy(s_hook_body, u->buf, u->len + 1);
        s_hook_count++;
    }
    else
        s_hook_bad_sig++;
    pthread_mutex_unlock(&s_hook_lock);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, ok ? 200 : 401, r);
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
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s_port[i], path);
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
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s_port[i]);
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
        char *argv[20] = {(char *) bin, "--org", (char *) org, "--listen", listen,
                          "--token-file", token, "--broker", (char *) broker, "--keys",
                          (char *) pt_harness_keys(s_h), "--state", state, "--timeout-ms", "3000"};
        int n = 15;
        if (webhook) {
            argv[n++] = "--webhook";
            argv[n++] = hook;
            argv[n++] = "--webhook-secret-file";
            argv[n++] = secret;
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
    for (int i = 0; i < 3; i++)
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
    /* The broker may still be committing the request's delivery when GT answers
       at once (REJECT_ILLEGAL_TRANSITION from state submitted): a national system
       retries such a refusal; so does the test, briefly. */
    char final[32] = "";
    for (int t = 0; t < 50; t++) {
        char accept_id[64];
        r = NULL;
        CU_ASSERT_EQUAL_FATAL(s_http(1, "POST", "/v1/messages", auth, "application/json", text,
                                     strlen(text), &r, NULL), 202);
        snprintf(accept_id, sizeof accept_id, "%s", s_str(r, "id"));
        json_decref(r);
        int code = 0;
        if (s_wait_status(1, accept_id, "queued", 0, final, sizeof final, &code) != 0)
            break;
        if (strcmp(final, "rejected") != 0 || code != 19)
            break;
        usleep(100000);
    }
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
    /* Retried after delivery: still the one message. */
    CU_ASSERT_EQUAL(s_http_ex(0, "POST", "/v1/messages", auth, "application/json",
                              "Idempotency-Key: outage-1", text, strlen(text), &r, NULL),
                    202);
    CU_ASSERT_STRING_EQUAL(s_str(r, "id"), mid);
    CU_ASSERT_STRING_EQUAL(s_str(r, "status"), "acknowledged");
    json_decref(r);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-BRIDGE-OUT'"), 1);
    free(text);
    free(other);
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
    return pt_cu_main();
}

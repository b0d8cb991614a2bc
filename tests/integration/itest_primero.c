/*  itest_primero — Primero records crossing between a Primero in Mexico and one
    in Guatemala: two fake Primero v2 servers (libmicrohttpd, in this process,
    serving fixtures shaped like Primero v2 API answers from tests/fixtures/primero/
    and recording every POST and PATCH), a real broker and PostgreSQL (harness),
    and two puente-primero processes (MX-DIF and GT-PGN). Kinds carried: referral
    and its acceptance, remote transfer, its acceptance and a revoke, tracing
    requests both ways (focal points from --focal-point), a return's follow-up and
    closure, and referrals queued while the broker is down (durable outbox: each
    delivered once, in order). */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "puente.h"
#include "reintegration.pb-c.h"
#include "cu_main.h"

#define S_TOKEN "test-primero-api-token"
#define S_MAX_SEEN 48
#define S_HOOK_KEY "test-primero-webhook-api-key"
#define S_TRANSFER_1 "TEST-5e0c7a11-3b2d-4f6e-8a90-1c2d3e4f0010"
#define S_TRANSFER_2 "TEST-5e0c7a11-3b2d-4f6e-8a90-1c2d3e4f0011"

typedef struct {
    const char *name;
    char *cases_json;             /* served on GET /api/v2/cases, NULL = empty list */
    json_t *routes;               /* GET path (or "/api/v2/cases?status=X") -> answer */
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int n_get, n_unauthorised;
    int n_posts;
    char *posts[S_MAX_SEEN];      /* bodies of POST /api/v2/cases and /tracing_requests */
    char *post_urls[S_MAX_SEEN];
    int n_patches;
    char *patch_urls[S_MAX_SEEN], *patch_bodies[S_MAX_SEEN]; /* PATCH requests received */
} s_fake_t;

typedef struct {
    char *buf;
    size_t len;
} s_upload_t;

static pt_harness_t *s_h;
static s_fake_t s_mx = {.name = "MX"}, s_gt = {.name = "GT"};
static pid_t s_pid[2];
static char s_log[2][600];
static int s_hook_port;

static enum MHD_Result s_reply(struct MHD_Connection *c, int status, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body,
                                                             MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

#define S_EMPTY_LIST "{\"data\":[],\"metadata\":{\"total\":0,\"per\":100,\"page\":1}}"

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **con_cls)
{
    (void) version;
    s_fake_t *fake = cls;
    s_upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        char *grown = realloc(u->buf, u->len + *size + 1);
        if (!grown)
            return MHD_NO;
        u->buf = grown;
        memcpy(u->buf + u->len, data, *size);
        u->len += *size;
        u->buf[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&fake->lock);
    if (!auth || strcmp(auth, "Bearer " S_TOKEN) != 0) {
        fake->n_unauthorised++;
        pthread_mutex_unlock(&fake->lock);
        return s_reply(c, 401, "{\"errors\":[{\"status\":401,\"message\":\"unauthorized\"}]}");
    }
    if (strcmp(method, "GET") == 0) {
        const char *page = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
        const char *filter = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
        char key[600];
        snprintf(key, sizeof key, "%s%s%s", url, filter ? "?status=" : "", filter ? filter : "");
        json_t *route = json_object_get(fake->routes, key);
        char *copy = NULL;
        if (strcmp(url, "/api/v2/cases") == 0)
            fake->n_get++;
        if (page && strcmp(page, "1") != 0)
            copy = strdup(S_EMPTY_LIST);
        else if (route)
            copy = json_dumps(route, JSON_COMPACT);
        else if (strcmp(url, "/api/v2/cases") == 0 && !filter && fake->cases_json)
            copy = strdup(fake->cases_json);
        else if (strcmp(url, "/api/v2/cases") == 0 || strcmp(url, "/api/v2/tracing_requests") == 0)
            copy = strdup(S_EMPTY_LIST);
        else if (strstr(url, "/referrals") || strstr(url, "/transfers"))
            copy = strdup("{\"data\":[]}");
        pthread_mutex_unlock(&fake->lock);
        if (!copy)
            return s_reply(c, 404, "{\"errors\":[{\"status\":404,\"message\":\"not found\"}]}");
        enum MHD_Result rc = s_reply(c, 200, copy);
        free(copy);
        return rc;
    }
    if (strcmp(method, "PATCH") == 0 && strncmp(url, "/api/v2/cases/", 14) == 0) {
        if (fake->n_patches < S_MAX_SEEN) {
            fake->patch_urls[fake->n_patches] = strdup(url);
            fake->patch_bodies[fake->n_patches++] = u->buf ? strdup(u->buf) : strdup("");
        }
        pthread_mutex_unlock(&fake->lock);
        return s_reply(c, 200, "{\"data\":{\"status\":\"ok\"}}");
    }
    if (strcmp(method, "POST") == 0
        && (strcmp(url, "/api/v2/cases") == 0 || strcmp(url, "/api/v2/tracing_requests") == 0)) {
        int n = fake->n_posts;
        if (n < S_MAX_SEEN) {
            fake->post_urls[n] = strdup(url);
            fake->posts[fake->n_posts++] = u->buf ? strdup(u->buf) : strdup("");
        }
        pthread_mutex_unlock(&fake->lock);
        char body[200];
        snprintf(body, sizeof body, "{\"data\":{\"id\":\"TEST-%s-LOCAL-%d\",\"status\":\"open\"}}",
                 fake->name, n + 1);
        return s_reply(c, 200, body);
    }
    pthread_mutex_unlock(&fake->lock);
    return s_reply(c, 404, "{\"errors\":[{\"status\":404,\"message\":\"not found\"}]}");
}

/* Serves value (stolen) on GET path from now on. */
static void s_route(s_fake_t *fake, const char *path, json_t *value)
{
    pthread_mutex_lock(&fake->lock);
    json_object_set_new(fake->routes, path, value);
    pthread_mutex_unlock(&fake->lock);
}

/* The "data" of a fixture file (new reference), NULL if it does not load. */
static json_t *s_fixture_data(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "tests/fixtures/primero/%s", name);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *data = json_incref(json_object_get(root, "data"));
    json_decref(root);
    return data;
}

/* Index of the POST to url whose data[key] is value, waiting up to 30 s; -1. */
static int s_wait_post(s_fake_t *fake, const char *url, const char *key, const char *value)
{
    for (int t = 0; t < 300; t++) {
        int found = -1;
        pthread_mutex_lock(&fake->lock);
        for (int i = 0; i < fake->n_posts && found < 0; i++) {
            if (strcmp(fake->post_urls[i], url) != 0)
                continue;
            json_t *root = json_loads(fake->posts[i], 0, NULL);
            const char *v = json_string_value(json_object_get(json_object_get(root, "data"), key));
            if (v && strcmp(v, value) == 0)
                found = i;
            json_decref(root);
        }
        pthread_mutex_unlock(&fake->lock);
        if (found >= 0)
            return found;
        usleep(100000);
    }
    return -1;
}

/* The "data" of POST i (new reference). */
static json_t *s_post_data(s_fake_t *fake, int i)
{
    pthread_mutex_lock(&fake->lock);
    json_t *root = json_loads(fake->posts[i], 0, NULL);
    pthread_mutex_unlock(&fake->lock);
    json_t *data = json_incref(json_object_get(root, "data"));
    json_decref(root);
    return data;
}

/* Number of PATCHes to exactly url; with data_out the last one's "data". */
static int s_patches_to(s_fake_t *fake, const char *url, json_t **data_out)
{
    int n = 0;
    pthread_mutex_lock(&fake->lock);
    for (int i = 0; i < fake->n_patches; i++)
        if (strcmp(fake->patch_urls[i], url) == 0) {
            n++;
            if (data_out) {
                json_decref(*data_out);
                json_t *root = json_loads(fake->patch_bodies[i], 0, NULL);
                *data_out = json_incref(json_object_get(root, "data"));
                json_decref(root);
            }
        }
    pthread_mutex_unlock(&fake->lock);
    return n;
}

static int s_wait_patch(s_fake_t *fake, const char *url, json_t **data_out)
{
    for (int t = 0; t < 300 && s_patches_to(fake, url, NULL) < 1; t++)
        usleep(100000);
    return s_patches_to(fake, url, data_out);
}

static const char *s_str(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "(missing)";
}

static void s_done(void *cls, struct MHD_Connection *c, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
    (void) cls; (void) c; (void) toe;
    s_upload_t *u = *con_cls;
    if (u)
        free(u->buf);
    free(u);
    *con_cls = NULL;
}

static int s_fake_start(s_fake_t *fake)
{
    pthread_mutex_init(&fake->lock, NULL);
    fake->routes = json_object();
    fake->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_handler,
                                    fake, MHD_OPTION_NOTIFY_COMPLETED, s_done, NULL,
                                    MHD_OPTION_END);
    if (!fake->daemon)
        return -1;
    fake->port = MHD_get_daemon_info(fake->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static void s_fake_stop(s_fake_t *fake)
{
    if (fake->daemon)
        MHD_stop_daemon(fake->daemon);
    fake->daemon = NULL;
    for (int i = 0; i < fake->n_posts; i++) {
        free(fake->posts[i]);
        free(fake->post_urls[i]);
    }
    fake->n_posts = 0;
    for (int i = 0; i < fake->n_patches; i++) {
        free(fake->patch_urls[i]);
        free(fake->patch_bodies[i]);
    }
    fake->n_patches = 0;
    json_decref(fake->routes);
    fake->routes = NULL;
    free(fake->cases_json);
    fake->cases_json = NULL;
}

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

static int s_patches(s_fake_t *fake)
{
    pthread_mutex_lock(&fake->lock);
    int n = fake->n_patches;
    pthread_mutex_unlock(&fake->lock);
    return n;
}

static int s_posts(s_fake_t *fake)
{
    pthread_mutex_lock(&fake->lock);
    int n = fake->n_posts;
    pthread_mutex_unlock(&fake->lock);
    return n;
}

static const char *s_bin(void)
{
    static char path[600];
    if (getenv("PUENTE_PRIMERO_BIN"))
        return getenv("PUENTE_PRIMERO_BIN");
    const char *cli = getenv("PUENTE_CLI_BIN");
    if (cli && strrchr(cli, '/')) {
        snprintf(path, sizeof path, "%.*s/puente-primero", (int) (strrchr(cli, '/') - cli), cli);
        return path;
    }
    return "build/puente-primero";
}

static int s_adapter_start(int i, const char *org, const s_fake_t *fake)
{
    char token[600], url[64], state[600];
    snprintf(token, sizeof token, "%s/primero-token", pt_harness_dir(s_h));
    FILE *file = fopen(token, "w");
    if (!file)
        return -1;
    fprintf(file, "%s\n", S_TOKEN);
    fclose(file);
    chmod(token, 0600);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake->port);
    snprintf(state, sizeof state, "%s/primero-%s.db", pt_harness_dir(s_h), org);
    snprintf(s_log[i], sizeof s_log[i], "%s/primero-%s.log", pt_harness_dir(s_h), org);
    char hook_listen[64], hook_key[600];
    snprintf(hook_listen, sizeof hook_listen, "127.0.0.1:%d", s_hook_port);
    snprintf(hook_key, sizeof hook_key, "%s/primero-webhook-key", pt_harness_dir(s_h));
    file = fopen(hook_key, "w");
    if (!file)
        return -1;
    fprintf(file, "%s\n", S_HOOK_KEY);
    fclose(file);
    chmod(hook_key, 0600);
    const char *bin = s_bin();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *log = freopen(s_log[i], "a", stderr);
        (void) log;
        char *argv[28] = {(char *) bin, "--org", (char *) org, "--broker",
                          (char *) pt_harness_endpoint(s_h), "--keys",
                          (char *) pt_harness_keys(s_h), "--primero", url,
                          "--primero-token-file", token, "--codelists",
                          "adapters/primero/codelists", "--codelist-version", "v1", "--state",
                          state, "--poll-interval", "300ms", "--focal-point",
                          i == 0 ? "GT=GT-PGN" : "MX=MX-DIF", NULL};
        if (i == 0) {
            argv[21] = "--webhook-listen";
            argv[22] = hook_listen;
            argv[23] = "--webhook-key-file";
            argv[24] = hook_key;
            argv[25] = NULL;
        }
        execv(bin, argv);
        _exit(127);
    }
    s_pid[i] = pid;
    return 0;
}

static int s_suite_init(void)
{
    json_error_t jerr;
    json_t *fixture = json_load_file("tests/fixtures/primero/case_referral.json", 0, &jerr);
    if (!fixture)
        return 1;
    s_mx.cases_json = json_dumps(fixture, JSON_COMPACT);
    json_decref(fixture);
    s_h = pt_harness_new("primero");
    if (!s_h || pt_harness_broker_start(s_h) != 0 || pt_harness_register_demo(s_h) != 0)
        return 1;
    if (s_fake_start(&s_mx) != 0 || s_fake_start(&s_gt) != 0)
        return 1;
    s_hook_port = s_free_port();
    if (s_hook_port < 0 || s_adapter_start(0, "MX-DIF", &s_mx) != 0 || s_adapter_start(1, "GT-PGN", &s_gt) != 0)
        return 1;
    return 0;
}

static int s_suite_clean(void)
{
    for (int i = 0; i < 2; i++)
        if (s_pid[i] > 0) {
            int status = 0;
            kill(s_pid[i], SIGTERM);
            waitpid(s_pid[i], &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "puente-primero %d exited badly (status %d), log %s\n", i, status,
                        s_log[i]);
        }
    s_fake_stop(&s_mx);
    s_fake_stop(&s_gt);
    pt_harness_destroy(&s_h);
    return 0;
}

static char s_token[64];

static void test_referral_mx_to_gt(void)
{
    /* Two services are flagged for GT-PGN: two Primero cases arrive in GT. */
    for (int t = 0; t < 300 && s_posts(&s_gt) < 2; t++)
        usleep(100000);
    CU_ASSERT_EQUAL_FATAL(s_posts(&s_gt), 2);
    const char *want_services[] = {"psychosocial", "family_seunification_service"};
    int seen[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        json_error_t jerr;
        json_t *root = json_loads(s_gt.posts[i], 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(root);
        json_t *data = json_object_get(root, "data");
        CU_ASSERT_PTR_NOT_NULL_FATAL(data);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "name_first")), "Ana Lucía");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "name_last")),
                               "Prueba Ejemplo");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "sex")), "female");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "date_of_birth")),
                               "2010-03-14");
        CU_ASSERT(json_is_true(json_object_get(data, "estimated")));
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(data, "nationality"), 0)),
            "guatemala");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "protection_status")),
                               "unaccompanied");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(data, "protection_concerns"), 1)),
            "trafficked_smuggled");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "risk_level")), "high");
        CU_ASSERT(json_is_true(json_object_get(data, "consent_for_services")));
        CU_ASSERT(json_is_true(json_object_get(data, "disclosure_other_orgs")));
        CU_ASSERT(json_is_true(json_object_get(data, "consent_for_tracing")));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_sender")),
                               "MX-DIF");
        json_t *services = json_object_get(data, "services_section");
        CU_ASSERT_EQUAL_FATAL(json_array_size(services), 1);
        const char *type =
            json_string_value(json_object_get(json_array_get(services, 0), "service_type"));
        CU_ASSERT_PTR_NOT_NULL_FATAL(type);
        for (int k = 0; k < 2; k++)
            if (strcmp(type, want_services[k]) == 0)
                seen[k]++;
        const char *token = json_string_value(json_object_get(data, "puente_case_token"));
        CU_ASSERT_PTR_NOT_NULL_FATAL(token);
        CU_ASSERT_EQUAL(strncmp(token, "PP-", 3), 0);
        /* The case token is a pseudonym, not MX's case id. */
        CU_ASSERT_PTR_NULL(strstr(token, "2b7e1f1c"));
        snprintf(s_token, sizeof s_token, "%s", token);
        json_decref(root);
    }
    CU_ASSERT_EQUAL(seen[0], 1);
    CU_ASSERT_EQUAL(seen[1], 1);
    /* The local (non-referral) service did not cross, and nothing was sent twice
       although MX's Primero was polled again and again. */
    usleep(1500000);
    CU_ASSERT_EQUAL(s_posts(&s_gt), 2);
    pthread_mutex_lock(&s_mx.lock);
    CU_ASSERT(s_mx.n_get >= 3);
    CU_ASSERT_EQUAL(s_mx.n_unauthorised, 0);
    pthread_mutex_unlock(&s_mx.lock);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE case_token = '%s'", s_token);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), 2);
}

static void test_trail(void)
{
    CU_ASSERT_FATAL(s_token[0] != '\0');
    const char *cli = getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente";
    char command[800];
    snprintf(command, sizeof command, "%s trail --case %s", cli, s_token);
    static char out[65536], err[8192];
    /* Acknowledged once GT's Primero answered 2xx; wait for it. */
    int rc = -1;
    for (int t = 0; t < 50; t++) {
        rc = pt_harness_sh(s_h, command, out, sizeof out, err, sizeof err);
        if (rc == 0 && strstr(out, "acknowledged"))
            break;
        usleep(200000);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const char *kinds[] = {"submitted", "stored", "delivered", "acknowledged"};
    const char *at = out;
    for (int i = 0; i < 4; i++) {
        const char *found = strstr(at, kinds[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(found);
        at = found;
    }
}

/* GT's Primero marks the received referral accepted: MX's Primero receives the
   transition (PATCH onto its case's referral) and the trail shows state:accepted. */
static void test_transition_gt_to_mx(void)
{
    CU_ASSERT_FATAL(s_token[0] != '\0');
    s_route(&s_gt, "/api/v2/cases/TEST-GT-LOCAL-1/referrals",
            json_loads("{\"data\":[{\"id\":\"TEST-gt-transition-1\",\"type\":\"Referral\","
                       "\"status\":\"accepted\",\"record_type\":\"case\",\"record_id\":"
                       "\"TEST-GT-LOCAL-1\",\"service_record_id\":\"TEST-gt-svc-1\","
                       "\"notes\":\"Accepted (test).\"}]}",
                       0, NULL));
    for (int t = 0; t < 300 && s_patches(&s_mx) < 1; t++)
        usleep(100000);
    CU_ASSERT_EQUAL_FATAL(s_patches(&s_mx), 1);
    pthread_mutex_lock(&s_mx.lock);
    const char *prefix = "/api/v2/cases/TEST-2b7e1f1c-5a8d-4c3e-9f10-6d4f6f0a0001/referrals/"
                         "TEST-svc-000";
    CU_ASSERT_EQUAL(strncmp(s_mx.patch_urls[0], prefix, strlen(prefix)), 0);
    json_t *root = json_loads(s_mx.patch_bodies[0], 0, NULL);
    pthread_mutex_unlock(&s_mx.lock);
    json_t *data = json_object_get(root, "data");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "status")), "accepted");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "type")), "Referral");
    json_decref(root);
    /* Polled again and again: the acceptance crossed once. */
    usleep(1500000);
    CU_ASSERT_EQUAL(s_patches(&s_mx), 1);
    const char *cli = getenv("PUENTE_CLI_BIN") ? getenv("PUENTE_CLI_BIN") : "build/puente";
    char command[800];
    snprintf(command, sizeof command, "%s trail --case %s", cli, s_token);
    static char out[65536], err[8192];
    CU_ASSERT_EQUAL(pt_harness_sh(s_h, command, out, sizeof out, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "state:accepted"));
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM messages WHERE case_token = '%s' AND message_type = "
             "'referral.accept'",
             s_token);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), 1);
}

static long s_hook_post(const char *key, const char *body)
{
    char url[128], line[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/primero/webhook", s_hook_port);
    CURL *curl = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(line, sizeof line, "x-api-key: %s", key);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, null);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (null)
        fclose(null);
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    return status;
}

/* A case.create webhook from MX's Primero (a case its case list does not serve)
   sends its referral as polling would; a wrong api_key is refused. */
static void test_webhook(void)
{
    json_t *fixture = json_load_file("tests/fixtures/primero/case_referral.json", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fixture);
    json_t *record = json_deep_copy(json_array_get(json_object_get(fixture, "data"), 0));
    json_decref(fixture);
    json_object_del(record, "id");
    json_object_set_new(record, "record_id", json_string("TEST-WEBHOOK-CASE-1"));
    json_object_set_new(record, "record_type", json_string("case"));
    json_array_remove(json_object_get(record, "services_section"), 1); /* one referral */
    json_t *root = json_pack("{s:o}", "data", record);
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    int before = s_posts(&s_gt);
    CU_ASSERT_EQUAL(s_hook_post(NULL, body), 401);
    CU_ASSERT_EQUAL(s_hook_post("wrong-key", body), 401);
    CU_ASSERT_EQUAL(s_hook_post(S_HOOK_KEY, "{\"data\":[]}"), 400);
    CU_ASSERT_EQUAL(s_hook_post(S_HOOK_KEY, "not json"), 400);
    usleep(1000000);
    CU_ASSERT_EQUAL(s_posts(&s_gt), before);
    CU_ASSERT_EQUAL(s_hook_post(S_HOOK_KEY, body), 202);
    for (int t = 0; t < 300 && s_posts(&s_gt) < before + 1; t++)
        usleep(100000);
    CU_ASSERT_EQUAL_FATAL(s_posts(&s_gt), before + 1);
    /* The same webhook again (Primero resends on every update): no second referral. */
    CU_ASSERT_EQUAL(s_hook_post(S_HOOK_KEY, body), 202);
    usleep(1500000);
    CU_ASSERT_EQUAL(s_posts(&s_gt), before + 1);
    pthread_mutex_lock(&s_gt.lock);
    json_t *got = json_loads(s_gt.posts[before], 0, NULL);
    pthread_mutex_unlock(&s_gt.lock);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(got, "data"),
                                                             "puente_referral_id")),
                           "TEST-WEBHOOK-CASE-1#TEST-svc-0001-psychosocial");
    json_decref(got);
    free(body);
}

static int s_gt_transfer_post = -1;

/* MX's Primero transfers a case remotely (status "transferred", a Transfer
   transition in_progress to GT-PGN): it arrives as a case in GT's Primero. */
static void test_transfer_mx_to_gt(void)
{
    json_t *list = json_load_file("tests/fixtures/primero/case_transfer.json", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    json_t *second = json_deep_copy(json_array_get(json_object_get(list, "data"), 0));
    json_object_set_new(second, "id", json_string(S_TRANSFER_2));
    json_object_set_new(second, "case_id", json_string(S_TRANSFER_2));
    json_array_append_new(json_object_get(list, "data"), second);
    json_t *row = s_fixture_data("transfer_in_progress.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    json_t *row2 = json_deep_copy(row);
    json_object_set_new(row2, "record_id", json_string(S_TRANSFER_2));
    s_route(&s_mx, "/api/v2/cases/" S_TRANSFER_1 "/transfers", json_pack("{s:[o]}", "data", row));
    s_route(&s_mx, "/api/v2/cases/" S_TRANSFER_2 "/transfers", json_pack("{s:[o]}", "data", row2));
    s_route(&s_mx, "/api/v2/cases?status=transferred", list);
    int i = s_wait_post(&s_gt, "/api/v2/cases", "puente_transfer_id", S_TRANSFER_1);
    CU_ASSERT_FATAL(i >= 0);
    s_gt_transfer_post = i;
    json_t *data = s_post_data(&s_gt, i);
    CU_ASSERT_STRING_EQUAL(s_str(data, "name_first"), "Brenda");
    CU_ASSERT_STRING_EQUAL(s_str(data, "name_last"), "Traslado Ejemplo");
    CU_ASSERT_STRING_EQUAL(s_str(data, "sex"), "female");
    CU_ASSERT_STRING_EQUAL(s_str(data, "date_of_birth"), "2011-08-02");
    CU_ASSERT_STRING_EQUAL(s_str(data, "risk_level"), "medium");
    CU_ASSERT_STRING_EQUAL(s_str(data, "protection_status"), "unaccompanied");
    CU_ASSERT_STRING_EQUAL(s_str(data, "transfer_reason"),
                           "Child returned to Guatemala; case management continues with PGN.");
    CU_ASSERT_STRING_EQUAL(s_str(data, "transfer_notes"),
                           "Escorted return on 2025-05-20 (FICTIONAL TEST DATA).");
    CU_ASSERT_STRING_EQUAL(s_str(data, "puente_sender"), "MX-DIF");
    CU_ASSERT(json_is_true(json_object_get(data, "disclosure_other_orgs")));
    CU_ASSERT_EQUAL(strncmp(s_str(data, "puente_case_token"), "PP-", 3), 0);
    CU_ASSERT_PTR_NULL(json_object_get(data, "services_section"));
    json_decref(data);
    CU_ASSERT(s_wait_post(&s_gt, "/api/v2/cases", "puente_transfer_id", S_TRANSFER_2) >= 0);
    usleep(1500000);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE message_type"
                                              " = 'transfer.request'"),
                    2);
}

/* GT's Primero accepts the first transfer: MX's Primero gets the Transfer
   transition PATCHed onto its case; the broker moves ownership to GT-PGN. */
static void test_transfer_accept_gt_to_mx(void)
{
    CU_ASSERT_FATAL(s_gt_transfer_post >= 0);
    char local[64], path[200];
    snprintf(local, sizeof local, "TEST-GT-LOCAL-%d", s_gt_transfer_post + 1);
    json_t *row = s_fixture_data("transfer_accepted.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    json_object_set_new(row, "record_id", json_string(local));
    snprintf(path, sizeof path, "/api/v2/cases/%s/transfers", local);
    s_route(&s_gt, path, json_pack("{s:[o]}", "data", row));
    json_t *data = NULL;
    CU_ASSERT_EQUAL_FATAL(
        s_wait_patch(&s_mx, "/api/v2/cases/" S_TRANSFER_1 "/transfers/" S_TRANSFER_1, &data), 1);
    CU_ASSERT_STRING_EQUAL(s_str(data, "type"), "Transfer");
    CU_ASSERT_STRING_EQUAL(s_str(data, "status"), "accepted");
    CU_ASSERT_STRING_EQUAL(s_str(data, "record_id"), S_TRANSFER_1);
    CU_ASSERT(json_is_true(json_object_get(data, "remote")));
    json_decref(data);
    usleep(1500000);
    CU_ASSERT_EQUAL(
        s_patches_to(&s_mx, "/api/v2/cases/" S_TRANSFER_1 "/transfers/" S_TRANSFER_1, NULL), 1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE message_type"
                                              " = 'transfer.accept'"),
                    1);
}

/* MX's Primero revokes the second transfer before GT answers: transfer.revoke,
   PATCHed onto GT's own copy of the case with status revoked and the reason. */
static void test_transfer_revoke_mx_to_gt(void)
{
    int i = s_wait_post(&s_gt, "/api/v2/cases", "puente_transfer_id", S_TRANSFER_2);
    CU_ASSERT_FATAL(i >= 0);
    json_t *row = s_fixture_data("transfer_revoked.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    json_object_set_new(row, "record_id", json_string(S_TRANSFER_2));
    s_route(&s_mx, "/api/v2/cases/" S_TRANSFER_2 "/transfers", json_pack("{s:[o]}", "data", row));
    char url[200];
    snprintf(url, sizeof url, "/api/v2/cases/TEST-GT-LOCAL-%d/transfers/TEST-GT-LOCAL-%d", i + 1,
             i + 1);
    json_t *data = NULL;
    CU_ASSERT_EQUAL_FATAL(s_wait_patch(&s_gt, url, &data), 1);
    CU_ASSERT_STRING_EQUAL(s_str(data, "type"), "Transfer");
    CU_ASSERT_STRING_EQUAL(s_str(data, "status"), "revoked");
    CU_ASSERT_STRING_EQUAL(s_str(data, "rejected_reason"), "other");
    json_decref(data);
    usleep(1500000);
    CU_ASSERT_EQUAL(s_patches_to(&s_gt, url, NULL), 1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE message_type"
                                              " = 'transfer.revoke'"),
                    1);
}

static void s_check_tracing(const json_t *data, const char *sender, const char *country)
{
    CU_ASSERT_STRING_EQUAL(s_str(data, "puente_sender"), sender);
    CU_ASSERT_STRING_EQUAL(s_str(data, "relation_name"), "María Prueba");
    CU_ASSERT_STRING_EQUAL(s_str(data, "relation"), "mother");
    CU_ASSERT_STRING_EQUAL(s_str(data, "relation_sex"), "female");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(data, "relation_age")), 38);
    CU_ASSERT_STRING_EQUAL(s_str(data, "inquiry_date"), "2025-04-02");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_array_get(json_object_get(data, "relation_nationality"), 0)),
        "guatemala");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(data,
                                                                            "search_countries"),
                                                            0)),
                           country);
    CU_ASSERT(json_is_true(json_object_get(data, "consent_for_tracing")));
    json_t *traces = json_object_get(data, "tracing_request_subform_section");
    CU_ASSERT_EQUAL_FATAL(json_array_size(traces), 2);
    json_t *first = json_array_get(traces, 0);
    CU_ASSERT_STRING_EQUAL(s_str(first, "unique_id"), "TEST-trace-0001");
    CU_ASSERT_STRING_EQUAL(s_str(first, "name"), "Ana Lucía Prueba");
    CU_ASSERT_STRING_EQUAL(s_str(first, "sex"), "female");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(first, "age")), 15);
    CU_ASSERT_STRING_EQUAL(s_str(first, "date_of_birth"), "2010-03-14");
    CU_ASSERT_STRING_EQUAL(s_str(first, "date_of_separation"), "2025-01-20");
    CU_ASSERT_STRING_EQUAL(s_str(first, "separation_cause"), "migration");
    CU_ASSERT_STRING_EQUAL(s_str(first, "location_separation"), "Tecún Umán");
    CU_ASSERT_STRING_EQUAL(s_str(first, "location_last"), "Tapachula");
    CU_ASSERT_STRING_EQUAL(s_str(json_array_get(traces, 1), "name"), "José Prueba");
    CU_ASSERT_EQUAL(strncmp(s_str(data, "puente_case_token"), "PP-", 3), 0);
}

/* A tracing request in MX's Primero searching GT reaches GT's focal point as a
   Primero tracing request; one in GT's searching MX comes back the other way. */
static void test_tracing_both_ways(void)
{
    json_t *mx_tr = s_fixture_data("tracing_request.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx_tr);
    json_t *gt_tr = json_deep_copy(mx_tr);
    json_object_set_new(mx_tr, "tracing_request_id", json_string("TEST-TR-MX-2025-0101"));
    json_object_set_new(mx_tr, "search_countries", json_pack("[s]", "GT"));
    json_object_set_new(gt_tr, "search_countries", json_pack("[s]", "MX"));
    s_route(&s_mx, "/api/v2/tracing_requests",
            json_pack("{s:[o],s:{s:i}}", "data", mx_tr, "metadata", "total", 1));
    s_route(&s_gt, "/api/v2/tracing_requests",
            json_pack("{s:[o],s:{s:i}}", "data", gt_tr, "metadata", "total", 1));
    int i = s_wait_post(&s_gt, "/api/v2/tracing_requests", "tracing_request_id",
                        "TEST-TR-MX-2025-0101");
    CU_ASSERT_FATAL(i >= 0);
    json_t *data = s_post_data(&s_gt, i);
    s_check_tracing(data, "MX-DIF", "GT");
    json_decref(data);
    i = s_wait_post(&s_mx, "/api/v2/tracing_requests", "tracing_request_id",
                    "TEST-TR-GT-2025-0007");
    CU_ASSERT_FATAL(i >= 0);
    data = s_post_data(&s_mx, i);
    s_check_tracing(data, "GT-PGN", "MX");
    json_decref(data);
    usleep(1500000);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE message_type"
                                              " = 'tracing.request'"),
                    2);
}

/* Sends message_type with body JSON as org (a test client), in thread corr (NULL
   = new). 0 and the receipt, or -1. */
static int s_send_as(const char *org, const char *to, const char *message_type,
                     const ProtobufCMessageDescriptor *desc, const char *json,
                     const char *case_token, const uint8_t *corr, const char *bia,
                     pt_receipt_info_t *receipt)
{
    ProtobufCMessage *body = NULL;
    char err[256];
    if (pt_json_to_message(desc, json, strlen(json), &body, err, sizeof err) != 0) {
        fprintf(stderr, "s_send_as: %s\n", err);
        return -1;
    }
    size_t len = protobuf_c_message_get_packed_size(body);
    uint8_t *bytes = malloc(len + 1);
    protobuf_c_message_pack(body, bytes);
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    puente_consent_derive(body, &consent);
    pt_client_t *client = pt_harness_client(s_h, org, 0);
    const char *recipients[] = {to};
    pt_send_t msg = {.message_type = message_type, .recipients = recipients, .n_recipients = 1,
                     .case_token = case_token, .consent = &consent, .correlation_id = corr,
                     .best_interests_ref = bia, .body = bytes, .body_len = len};
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_client_result_t rc = client ? pt_client_send(client, &msg, receipt, &rej) : PT_CLIENT_INTERNAL;
    if (rc != PT_CLIENT_OK)
        fprintf(stderr, "s_send_as %s: %d %s %s\n", message_type, rc, rej.code_name, rej.reason);
    pt_client_destroy(&client);
    free(bytes);
    protobuf_c_message_free_unpacked(body, NULL);
    return rc == PT_CLIENT_OK ? 0 : -1;
}

/* A child returns from Mexico to Guatemala: return.notice (sent by a test client
   as MX-DIF; return_id = MX's case id) arrives in GT's Primero as a case; the
   arrival and the plan (sent by a test client as GT-PGN) and then the follow-up
   and the closure GT's Primero records (sent by GT's adapter into the return's
   thread, to the organisation its threads table names) are PATCHed onto MX's
   case as Primero-shaped records. */
static void test_followup_closure_gt_to_mx(void)
{
    const char *token = "TEST-RET-TOKEN-MX-0001";
    const char *mx_case = "TEST-MX-RETURN-CASE-0001";
    pt_receipt_info_t notice;
    CU_ASSERT_EQUAL_FATAL(
        s_send_as("MX-DIF", "GT-PGN", "return.notice", &puente__v1__return_notice__descriptor,
                  "{\"return_id\":\"TEST-MX-RETURN-CASE-0001\",\"sent_by\":{\"organisation\":"
                  "\"MX-DIF\"},\"child\":{\"name_first\":\"Carla\",\"sex\":\"SEX_FEMALE\","
                  "\"date_of_birth\":{\"year\":2012,\"month\":1,\"day\":9}},\"consent\":{"
                  "\"consent_for_services\":true,\"disclosure_other_orgs\":true},"
                  "\"planned_return_date\":{\"year\":2025,\"month\":6,\"day\":1}}",
                  token, NULL, "TEST-BID-MX-0003", &notice),
        0);
    int i = s_wait_post(&s_gt, "/api/v2/cases", "puente_return_id", mx_case);
    CU_ASSERT_FATAL(i >= 0);
    json_t *data = s_post_data(&s_gt, i);
    CU_ASSERT_STRING_EQUAL(s_str(data, "name_first"), "Carla");
    CU_ASSERT_STRING_EQUAL(s_str(data, "sex"), "female");
    CU_ASSERT_STRING_EQUAL(s_str(data, "date_of_birth"), "2012-01-09");
    CU_ASSERT_STRING_EQUAL(s_str(data, "date_of_return"), "2025-06-01");
    CU_ASSERT_STRING_EQUAL(s_str(data, "puente_sender"), "MX-DIF");
    CU_ASSERT_STRING_EQUAL(s_str(data, "puente_case_token"), token);
    json_decref(data);
    /* Arrival and plan, as GT-PGN: the adapter writes them onto MX's case. */
    pt_receipt_info_t r;
    CU_ASSERT_EQUAL_FATAL(s_send_as("GT-PGN", "MX-DIF", "return.arrival",
                                    &puente__v1__arrival_confirmation__descriptor,
                                    "{\"return_id\":\"TEST-MX-RETURN-CASE-0001\",\"arrival_date\":"
                                    "{\"year\":2025,\"month\":6,\"day\":2}}",
                                    token, notice.correlation_id, NULL, &r),
                          0);
    CU_ASSERT_EQUAL_FATAL(s_send_as("GT-PGN", "MX-DIF", "reintegration.plan",
                                    &puente__v1__reintegration_plan__descriptor,
                                    "{\"return_id\":\"TEST-MX-RETURN-CASE-0001\",\"version\":1,"
                                    "\"child_participation\":\"CHILD_PARTICIPATION_YES\"}",
                                    token, notice.correlation_id, NULL, &r),
                          0);
    char url[200];
    snprintf(url, sizeof url, "/api/v2/cases/%s", mx_case);
    for (int t = 0; t < 300 && s_patches_to(&s_mx, url, NULL) < 2; t++)
        usleep(100000);
    data = NULL;
    CU_ASSERT_EQUAL_FATAL(s_patches_to(&s_mx, url, &data), 2);
    CU_ASSERT_STRING_EQUAL(s_str(data, "puente_return_status"), "planned");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(data, "puente_plan_version")), 1);
    json_decref(data);
    /* GT's Primero records a follow-up visit and closes the case. */
    json_t *record = s_fixture_data("followup.json");
    json_t *closure = s_fixture_data("closure.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(record);
    CU_ASSERT_PTR_NOT_NULL_FATAL(closure);
    char local[64], path[200];
    snprintf(local, sizeof local, "TEST-GT-LOCAL-%d", i + 1);
    json_object_set_new(record, "id", json_string(local));
    json_object_del(record, "puente_return_id");
    json_t *want_row = json_deep_copy(
        json_array_get(json_object_get(record, "followup_subform_section"), 0));
    const char *keys[] = {"status", "closure_reason", "date_closure", "closure_comments"};
    for (int k = 0; k < 4; k++)
        json_object_set(record, keys[k], json_object_get(closure, keys[k]));
    snprintf(path, sizeof path, "/api/v2/cases/%s", local);
    s_route(&s_gt, path, json_pack("{s:o}", "data", record));
    for (int t = 0; t < 300 && s_patches_to(&s_mx, url, NULL) < 4; t++)
        usleep(100000);
    CU_ASSERT_EQUAL_FATAL(s_patches_to(&s_mx, url, NULL), 4);
    /* The third PATCH is the follow-up, the fourth the closure (in thread order). */
    pthread_mutex_lock(&s_mx.lock);
    json_t *fu = NULL, *cl = NULL;
    int seen = 0;
    for (int k = 0; k < s_mx.n_patches; k++)
        if (strcmp(s_mx.patch_urls[k], url) == 0 && ++seen >= 3) {
            json_t *root = json_loads(s_mx.patch_bodies[k], 0, NULL);
            if (seen == 3)
                fu = json_incref(json_object_get(root, "data"));
            else
                cl = json_incref(json_object_get(root, "data"));
            json_decref(root);
        }
    pthread_mutex_unlock(&s_mx.lock);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fu);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    CU_ASSERT_STRING_EQUAL(s_str(fu, "puente_return_id"), mx_case);
    json_t *row = json_array_get(json_object_get(fu, "followup_subform_section"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    const char *fields[] = {"followup_type", "followup_date", "child_was_seen",
                            "reason_child_not_seen", "risk_level", "followup_needed_by_date"};
    for (int k = 0; k < 6; k++)
        CU_ASSERT(json_equal(json_object_get(row, fields[k]), json_object_get(want_row, fields[k])));
    CU_ASSERT_STRING_EQUAL(s_str(cl, "puente_return_id"), mx_case);
    CU_ASSERT_STRING_EQUAL(s_str(cl, "status"), "closed");
    /* formal_closing -> reintegrated -> the first Primero row: formal_closing. */
    CU_ASSERT_STRING_EQUAL(s_str(cl, "closure_reason"), "formal_closing");
    CU_ASSERT_STRING_EQUAL(s_str(cl, "date_closure"), "2025-09-30");
    CU_ASSERT_STRING_EQUAL(s_str(cl, "closure_comments"), "Reintegration plan completed.");
    json_decref(fu);
    json_decref(cl);
    json_decref(want_row);
    json_decref(closure);
    usleep(1500000);
    CU_ASSERT_EQUAL(s_patches_to(&s_mx, url, NULL), 4);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE message_type"
                                              " IN ('reintegration.followup', 'reintegration.close')"
                                              " AND sender = 'GT-PGN'"),
                    2);
}

/* Rows of MX's state file table `sent` whose ref starts with prefix and whose
   outcome is outcome; -1 on error. */
static int s_sent_rows(const char *prefix, const char *outcome)
{
    char path[600];
    snprintf(path, sizeof path, "%s/primero-MX-DIF.db", pt_harness_dir(s_h));
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, "SELECT count(*) FROM sent WHERE substr(ref, 1, length(?1)) = ?1"
                                  " AND outcome = ?2",
                              -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, outcome, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) == SQLITE_ROW)
            n = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* Lines of the MX adapter's log containing needle. */
static int s_log_count(int i, const char *needle)
{
    FILE *file = fopen(s_log[i], "r");
    char line[2048];
    int n = 0;
    while (file && fgets(line, sizeof line, file))
        if (strstr(line, needle))
            n++;
    if (file)
        fclose(file);
    return n;
}

/* Broker stopped: MX's adapter keeps polling and queues each new referral once
   (ids fixed in its outbox); broker started: each arrives in GT exactly once, in
   the order queued. */
static void test_outbox_broker_down(void)
{
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    json_t *list = json_load_file("tests/fixtures/primero/case_referral.json", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    json_t *record = json_deep_copy(json_array_get(json_object_get(list, "data"), 0));
    json_object_set_new(record, "id", json_string("TEST-OUTBOX-CASE-1"));
    json_t *services = json_array();
    const char *svc[] = {"TEST-svc-ob-1", "TEST-svc-ob-2", "TEST-svc-ob-3"};
    const char *types[] = {"psychosocial", "legal_assistance", "education"};
    for (int k = 0; k < 3; k++)
        json_array_append_new(services,
                              json_pack("{s:s,s:s,s:s,s:s}", "unique_id", svc[k],
                                        "service_response_type", "referral_to_other_country",
                                        "service_type", types[k], "service_implementing_agency",
                                        "GT-PGN"));
    json_object_set_new(record, "services_section", services);
    json_array_append_new(json_object_get(list, "data"), record);
    json_object_set_new(list, "metadata", json_pack("{s:i,s:i,s:i}", "total", 2, "per", 100,
                                                    "page", 1));
    char *text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    pthread_mutex_lock(&s_mx.lock);
    free(s_mx.cases_json);
    s_mx.cases_json = text;
    int gets = s_mx.n_get;
    pthread_mutex_unlock(&s_mx.lock);
    for (int t = 0; t < 300 && s_log_count(0, "queued referral.request TEST-OUTBOX-CASE-1#") < 3;
         t++)
        usleep(100000);
    CU_ASSERT_EQUAL_FATAL(s_log_count(0, "queued referral.request TEST-OUTBOX-CASE-1#"), 3);
    /* Polled again and again while the broker is down: nothing queued twice. */
    for (int t = 0; t < 300; t++) {
        pthread_mutex_lock(&s_mx.lock);
        int now = s_mx.n_get;
        pthread_mutex_unlock(&s_mx.lock);
        if (now >= gets + 5)
            break;
        usleep(100000);
    }
    CU_ASSERT_EQUAL(s_log_count(0, "queued referral.request TEST-OUTBOX-CASE-1#"), 3);
    /* Recorded in the state file when queued: the ids are fixed before the broker saw them. */
    CU_ASSERT_EQUAL(s_sent_rows("TEST-OUTBOX-CASE-1#", "queued"), 3);
    pthread_mutex_lock(&s_gt.lock);
    for (int k = 0; k < s_gt.n_posts; k++)
        CU_ASSERT_PTR_NULL(strstr(s_gt.posts[k], "TEST-OUTBOX-CASE-1#"));
    pthread_mutex_unlock(&s_gt.lock);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    int at[3];
    for (int k = 0; k < 3; k++) {
        char ref[100];
        snprintf(ref, sizeof ref, "TEST-OUTBOX-CASE-1#%s", svc[k]);
        at[k] = s_wait_post(&s_gt, "/api/v2/cases", "puente_referral_id", ref);
        CU_ASSERT(at[k] >= 0);
    }
    CU_ASSERT(at[0] < at[1] && at[1] < at[2]);
    usleep(2000000);
    int n = 0;
    pthread_mutex_lock(&s_gt.lock);
    for (int k = 0; k < s_gt.n_posts; k++)
        if (strstr(s_gt.posts[k], "TEST-OUTBOX-CASE-1#"))
            n++;
    pthread_mutex_unlock(&s_gt.lock);
    CU_ASSERT_EQUAL(n, 3);
    /* The receipts reached the state file: the rows moved to "stored". */
    for (int t = 0; t < 300 && s_sent_rows("TEST-OUTBOX-CASE-1#", "stored") < 3; t++)
        usleep(100000);
    CU_ASSERT_EQUAL(s_sent_rows("TEST-OUTBOX-CASE-1#", "stored"), 3);
    CU_ASSERT_EQUAL(s_sent_rows("TEST-OUTBOX-CASE-1#", "queued"), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages m1, messages m2,"
                                              " messages m3 WHERE m1.message_type ="
                                              " 'referral.request' AND m1.seq < m2.seq AND"
                                              " m2.seq < m3.seq AND m2.message_type ="
                                              " 'referral.request' AND m3.message_type ="
                                              " 'referral.request' AND m1.seq > (SELECT"
                                              " max(seq) FROM messages WHERE message_type ="
                                              " 'tracing.request')"),
                    1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("primero", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral from MX Primero arrives as a case in GT Primero",
                test_referral_mx_to_gt);
    CU_add_test(suite, "trail: submitted, stored, delivered, acknowledged", test_trail);
    CU_add_test(suite, "GT Primero accepts: MX Primero gets the transition, trail state:accepted",
                test_transition_gt_to_mx);
    CU_add_test(suite, "Primero webhook (x-api-key) sends a new case's referral",
                test_webhook);
    CU_add_test(suite, "remote transfer in MX Primero arrives as a case in GT Primero",
                test_transfer_mx_to_gt);
    CU_add_test(suite, "GT Primero accepts the transfer: MX Primero gets the transition",
                test_transfer_accept_gt_to_mx);
    CU_add_test(suite, "MX Primero revokes a transfer: GT Primero gets transfer revoked",
                test_transfer_revoke_mx_to_gt);
    CU_add_test(suite, "tracing requests to the focal points, MX to GT and GT to MX",
                test_tracing_both_ways);
    CU_add_test(suite, "return: follow-up and closure from GT Primero PATCHed onto MX's case",
                test_followup_closure_gt_to_mx);
    CU_add_test(suite, "broker down: referrals queued once, delivered once in order",
                test_outbox_broker_down);
    return pt_cu_main();
}

/*  itest_primero — a referral from a Primero in Mexico arriving as a Primero
    record in Guatemala: two fake Primero v2 servers (libmicrohttpd, in this
    process), a real broker and PostgreSQL (harness), and two puente-primero
    processes (MX-DIF and GT-PGN). MX's fake serves tests/fixtures/primero/
    case_referral.json (two services flagged "referral_to_other_country" for
    GT-PGN, one local); GT's fake records what it receives. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
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
#include "cu_main.h"

#define S_TOKEN "test-primero-api-token"
#define S_MAX_SEEN 16
#define S_HOOK_KEY "test-primero-webhook-api-key"

typedef struct {
    const char *name;
    char *cases_json;             /* served on GET /api/v2/cases, NULL = empty list */
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int n_get, n_unauthorised;
    int n_posts;
    char *posts[S_MAX_SEEN];      /* bodies of POST /api/v2/cases */
    char *transition_case;        /* a case whose GET .../referrals serves transitions_json */
    char *transitions_json;
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
    if (strcmp(method, "GET") == 0 && strcmp(url, "/api/v2/cases") == 0) {
        fake->n_get++;
        const char *page = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
        const char *body = fake->cases_json && (!page || strcmp(page, "1") == 0)
                               ? fake->cases_json
                               : "{\"data\":[],\"metadata\":{\"total\":0,\"per\":100,\"page\":1}}";
        char *copy = strdup(body);
        pthread_mutex_unlock(&fake->lock);
        enum MHD_Result rc = s_reply(c, 200, copy);
        free(copy);
        return rc;
    }
    if (strcmp(method, "GET") == 0 && strncmp(url, "/api/v2/cases/", 14) == 0
        && (strstr(url, "/referrals") || strstr(url, "/transfers"))) {
        char want[300] = "";
        if (fake->transition_case)
            snprintf(want, sizeof want, "/api/v2/cases/%s/referrals", fake->transition_case);
        char *copy = strdup(fake->transitions_json && strcmp(url, want) == 0
                                ? fake->transitions_json
                                : "{\"data\":[]}");
        pthread_mutex_unlock(&fake->lock);
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
    if (strcmp(method, "POST") == 0 && strcmp(url, "/api/v2/cases") == 0) {
        int n = fake->n_posts;
        if (n < S_MAX_SEEN)
            fake->posts[fake->n_posts++] = u->buf ? strdup(u->buf) : strdup("");
        pthread_mutex_unlock(&fake->lock);
        char body[200];
        snprintf(body, sizeof body, "{\"data\":{\"id\":\"TEST-GT-LOCAL-%d\",\"status\":\"open\"}}",
                 n + 1);
        return s_reply(c, 200, body);
    }
    pthread_mutex_unlock(&fake->lock);
    return s_reply(c, 404, "{\"errors\":[{\"status\":404,\"message\":\"not found\"}]}");
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
    for (int i = 0; i < fake->n_posts; i++)
        free(fake->posts[i]);
    fake->n_posts = 0;
    for (int i = 0; i < fake->n_patches; i++) {
        free(fake->patch_urls[i]);
        free(fake->patch_bodies[i]);
    }
    fake->n_patches = 0;
    free(fake->transition_case);
    free(fake->transitions_json);
    fake->transition_case = fake->transitions_json = NULL;
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
        char *argv[24] = {(char *) bin, "--org", (char *) org, "--broker",
                          (char *) pt_harness_endpoint(s_h), "--keys",
                          (char *) pt_harness_keys(s_h), "--primero", url,
                          "--primero-token-file", token, "--codelists",
                          "adapters/primero/codelists", "--codelist-version", "v1", "--state",
                          state, "--poll-interval", "300ms", NULL};
        if (i == 0) {
            argv[19] = "--webhook-listen";
            argv[20] = hook_listen;
            argv[21] = "--webhook-key-file";
            argv[22] = hook_key;
            argv[23] = NULL;
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
    pthread_mutex_lock(&s_gt.lock);
    s_gt.transition_case = strdup("TEST-GT-LOCAL-1");
    s_gt.transitions_json = strdup(
        "{\"data\":[{\"id\":\"TEST-gt-transition-1\",\"type\":\"Referral\","
        "\"status\":\"accepted\",\"record_type\":\"case\",\"record_id\":\"TEST-GT-LOCAL-1\","
        "\"service_record_id\":\"TEST-gt-svc-1\",\"notes\":\"Accepted (test).\"}]}");
    pthread_mutex_unlock(&s_gt.lock);
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
    return pt_cu_main();
}

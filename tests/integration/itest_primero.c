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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define S_TOKEN "test-primero-api-token"
#define S_MAX_SEEN 16

typedef struct {
    const char *name;
    char *cases_json;             /* served on GET /api/v2/cases, NULL = empty list */
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int n_get, n_unauthorised;
    int n_posts;
    char *posts[S_MAX_SEEN];      /* bodies of POST /api/v2/cases */
} s_fake_t;

typedef struct {
    char *buf;
    size_t len;
} s_upload_t;

static pt_harness_t *s_h;
static s_fake_t s_mx = {.name = "MX"}, s_gt = {.name = "GT"};
static pid_t s_pid[2];
static char s_log[2][600];

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
    free(fake->cases_json);
    fake->cases_json = NULL;
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
    const char *bin = s_bin();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *log = freopen(s_log[i], "a", stderr);
        (void) log;
        char *argv[] = {(char *) bin, "--org", (char *) org, "--broker",
                        (char *) pt_harness_endpoint(s_h), "--keys", (char *) pt_harness_keys(s_h),
                        "--primero", url, "--primero-token-file", token, "--codelists",
                        "adapters/primero/codelists", "--codelist-version", "v1", "--state",
                        state, "--poll-interval", "300ms", NULL};
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
    if (s_adapter_start(0, "MX-DIF", &s_mx) != 0 || s_adapter_start(1, "GT-PGN", &s_gt) != 0)
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("primero", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral from MX Primero arrives as a case in GT Primero",
                test_referral_mx_to_gt);
    CU_add_test(suite, "trail: submitted, stored, delivered, acknowledged", test_trail);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

/*  itest_local_stack — deploy/local-stack.sh brings up PostgreSQL, the broker, the
    MX-DIF and GT-PGN bridges and a webhook target in a scratch directory; a
    referral POSTed to MX-DIF's bridge (curl) shows in GT-PGN's inbox and reaches
    the webhook; the broker's /readyz and /metrics answer; the stack's INI file
    passes --check-config with the db masked, and a bad key is refused with its
    line; `down` stops everything and `status` then says so. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pt_types.h"
#include "cu_main.h"

static char s_dir[512];
static char s_bin[512];
static int s_up = 0;

/* Runs a shell command, output into out (may be NULL); returns the exit status. */
static int s_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char sink[4096];
    char *buf = out ? out : sink;
    size_t bcap = out ? cap : sizeof sink;
    size_t got;
    while ((got = fread(buf + (out ? n : 0), 1, bcap - 1 - (out ? n : 0), p)) > 0)
        if (out)
            n += got;
    if (out)
        out[n] = '\0';
    int status = pclose(p);
    if (status != 0 && getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\n[%s] -> %d\n%s\n", cmd, status, out ? out : "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int s_env_port(const char *name)
{
    char out[64];
    if (s_sh(out, sizeof out, ". '%s/stack.env' && echo \"$%s\"", s_dir, name) != 0)
        return -1;
    return atoi(out);
}

static void test_up(void)
{
    char out[8192];
    int rc = s_sh(out, sizeof out, "PUENTE_STACK_BIN='%s' deploy/local-stack.sh up '%s' 2>&1",
                  s_bin, s_dir);
    if (rc != 0)
        fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    s_up = 1;
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "MX-DIF bridge   http://127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "metrics         http://127.0.0.1:"));
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "deploy/local-stack.sh status '%s'", s_dir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "broker /readyz: ready"));
}

static void test_referral_crosses(void)
{
    CU_ASSERT_FATAL(s_up);
    int mx = s_env_port("PUENTE_STACK_MX_PORT"), gt = s_env_port("PUENTE_STACK_GT_PORT");
    CU_ASSERT_FATAL(mx > 0 && gt > 0);
    json_t *body = json_loads(pt_types_find("referral.request")->example_json, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    json_t *req = json_pack("{s:s, s:[s], s:s, s:s, s:o}", "type", "referral.request", "to",
                            "GT-PGN", "case_token", "CASE-STACK-1", "service_type",
                            "psychosocial", "body", body);
    char path[600];
    snprintf(path, sizeof path, "%s/request.json", s_dir);
    CU_ASSERT_EQUAL_FATAL(json_dump_file(req, path, 0), 0);
    json_decref(req);
    char out[65536];
    CU_ASSERT_EQUAL_FATAL(
        s_sh(out, sizeof out,
             "curl -sS -w '\\n%%{http_code}' -H \"Authorization: Bearer $(cat '%s/secrets/MX-DIF.token')\" "
             "-H 'Content-Type: application/json' --data-binary @'%s' "
             "http://127.0.0.1:%d/v1/messages",
             s_dir, path, mx), 0);
    char *code = strrchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(code);
    CU_ASSERT_STRING_EQUAL(code + 1, "202");
    *code = '\0';
    json_t *answer = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(answer);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(answer, "message_id")));
    json_decref(answer);
    CU_ASSERT_EQUAL(strlen(id), 36);

    /* GT-PGN's inbox lists it (the broker delivered it to GT's bridge) */
    int found = 0;
    for (int t = 0; t < 150 && !found; t++) {
        if (s_sh(out, sizeof out,
                 "curl -sS -H \"Authorization: Bearer $(cat '%s/secrets/GT-PGN.token')\" "
                 "http://127.0.0.1:%d/v1/messages", s_dir, gt) == 0) {
            json_t *inbox = json_loads(out, 0, NULL);
            json_t *first = json_array_get(json_object_get(inbox, "messages"), 0);
            if (first) {
                found = 1;
                CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "id")), id);
                CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "sender")),
                                       "MX-DIF");
                CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "case_token")),
                                       "CASE-STACK-1");
            }
            json_decref(inbox);
        }
        if (!found)
            usleep(100000);
    }
    CU_ASSERT_FATAL(found);
    /* and GT's webhook target received it */
    int hooked = 0;
    for (int t = 0; t < 100 && !hooked; t++) {
        hooked = s_sh(NULL, 0, "grep -q '%s' '%s/webhook/received.jsonl' 2>/dev/null", id,
                      s_dir) == 0;
        if (!hooked)
            usleep(100000);
    }
    CU_ASSERT(hooked);
}

static void test_metrics_and_config(void)
{
    CU_ASSERT_FATAL(s_up);
    int metrics = s_env_port("PUENTE_STACK_METRICS_PORT");
    char out[65536];
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "curl -sS http://127.0.0.1:%d/healthz", metrics), 0);
    CU_ASSERT_STRING_EQUAL(out, "ok\n");
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "curl -sS http://127.0.0.1:%d/readyz", metrics), 0);
    CU_ASSERT_STRING_EQUAL(out, "ready\n");
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "curl -sS http://127.0.0.1:%d/metrics", metrics), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\npuente_ready 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE puente_submit_to_receipt_seconds histogram\n"));

    /* the stack's file passes --check-config, db masked, sources named */
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "'%s/puente-broker' --config '%s/puente.conf' "
                         "--check-config", s_bin, s_dir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "db = ********"));
    CU_ASSERT_PTR_NULL(strstr(out, "dbname=puente"));
    char want[700];
    snprintf(want, sizeof want, "; %s/puente.conf:4\n", s_dir); /* db is on line 4 */
    char *db_line = strstr(out, "db = ********");
    CU_ASSERT_FATAL(db_line != NULL);
    CU_ASSERT_EQUAL(strncmp(strchr(db_line, ';'), want, strlen(want)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "log_level = info"));
    /* the bridge reads the same file, flags on top */
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "'%s/puente-bridge' --config '%s/puente.conf' "
                         "--org MX-DIF --token-file '%s/secrets/MX-DIF.token' --check-config",
                         s_bin, s_dir, s_dir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "org = MX-DIF"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "broker_timeout = 5s"));
    /* a bad value is refused with file, line and key; the exit status is 1 */
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "cp '%s/puente.conf' '%s/bad.conf' && "
                         "sed -i 's/^sql_dir = .*/max_frame = lots/' '%s/bad.conf' && "
                         "'%s/puente-broker' --config '%s/bad.conf' --check-config 2>&1",
                         s_dir, s_dir, s_dir, s_bin, s_dir), 1);
    snprintf(want, sizeof want,
             "%s/bad.conf:6: [broker] max_frame: expected a size like 1MiB, got 'lots'", s_dir);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
}

static void test_down(void)
{
    char out[8192];
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "deploy/local-stack.sh down '%s' 2>&1", s_dir), 0);
    s_up = 0;
    CU_ASSERT_EQUAL(s_sh(out, sizeof out, "deploy/local-stack.sh status '%s' 2>&1", s_dir), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "broker: stopped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "postgresql: stopped"));
}

int main(void)
{
    const char *tmp = getenv("PUENTE_TEST_TMP") ? getenv("PUENTE_TEST_TMP") : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/local-stack.XXXXXX", tmp);
    if (!mkdtemp(s_dir))
        return 1;
    char broker_bin[512];
    snprintf(broker_bin, sizeof broker_bin, "%s",
             getenv("PUENTE_BROKER_BIN") ? getenv("PUENTE_BROKER_BIN") : "build/puente-broker");
    char *absolute = realpath(dirname(broker_bin), NULL);
    snprintf(s_bin, sizeof s_bin, "%s", absolute ? absolute : "build");
    free(absolute);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("local_stack", NULL, NULL);
    if (!suite || !CU_add_test(suite, "up", test_up)
        || !CU_add_test(suite, "a referral crosses the stack", test_referral_crosses)
        || !CU_add_test(suite, "metrics, health and the config file", test_metrics_and_config)
        || !CU_add_test(suite, "down", test_down)) {
        CU_cleanup_registry();
        return 1;
    }
    int status = pt_cu_main();
    if (s_up) /* a failed test left it running */
        s_sh(NULL, 0, "deploy/local-stack.sh down '%s' >/dev/null 2>&1", s_dir);
    s_sh(NULL, 0, "rm -rf '%s'", s_dir);
    return status;
}

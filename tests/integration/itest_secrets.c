/*  itest_secrets — secrets stay secret (issue 7):
    (a) the broker refuses to start when its private signing key is readable by
        others (mode 0644), exits non-zero and says why;
    (b) after the example referral (child "Ana Lucía Prueba Ejemplo", born
        2010-03-14, proto/pt_types.c) went through the broker by the SDK and by the
        CLI (send, recv), no log of the run — broker.log with debug logging, the
        CLI's stderr — holds the child's names or date of birth. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pt_json.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static char s_cli[600];
static char *s_cli_stderr; /* every CLI stderr of the run, concatenated */
static size_t s_cli_stderr_len;

static int s_suite_init(void)
{
    const char *cli = getenv("PUENTE_CLI_BIN");
    snprintf(s_cli, sizeof s_cli, "%s", cli ? cli : "build/puente");
    /* The most talkative broker: whatever it logs is searched. */
    setenv("PUENTE_LOG_LEVEL", "debug", 1);
    s_h = pt_harness_new("secrets");
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    free(s_cli_stderr);
    return 0;
}

static char *s_read_all(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    char *buf = NULL;
    *len = 0;
    if (!file)
        return NULL;
    if (fseek(file, 0, SEEK_END) == 0) {
        long size = ftell(file);
        rewind(file);
        buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
        if (buf) {
            *len = fread(buf, 1, (size_t)size, file);
            buf[*len] = '\0';
        }
    }
    fclose(file);
    return buf;
}

static void test_world_readable_key_refused(void)
{
    char key[700], log[700];
    snprintf(key, sizeof key, "%s/broker/sign.key", pt_harness_keys(s_h));
    snprintf(log, sizeof log, "%s/broker.log", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL_FATAL(chmod(key, 0644), 0);
    int status = pt_harness_broker_run_to_exit(s_h, 10000);
    CU_ASSERT(status > 0 && status < 128); /* exited by itself, non-zero */
    size_t len = 0;
    char *text = s_read_all(log, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* A clear message: which file, and what is wrong with it. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "sign.key"));
    CU_ASSERT(strstr(text, "readable") != NULL || strstr(text, "chmod") != NULL ||
              strstr(text, "permission") != NULL || strstr(text, "mode") != NULL);
    printf("\n  broker refused a 0644 key: exit %d\n", status);
    free(text);

    /* With 0600 again it starts and serves. */
    CU_ASSERT_EQUAL_FATAL(chmod(key, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(s_h), 0);
    CU_ASSERT_EQUAL_FATAL(pt_harness_register_demo(s_h), 0);
}

static int s_cli_run(const char *args, char *out, size_t out_cap)
{
    char command[2048], err[16384];
    snprintf(command, sizeof command, "%s %s", s_cli, args);
    int rc = pt_harness_sh(s_h, command, out, out_cap, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  $ puente %s -> exit %d\n%s", args, rc, err);
    size_t add = strlen(err);
    char *grown = realloc(s_cli_stderr, s_cli_stderr_len + add + 1);
    if (grown) {
        memcpy(grown + s_cli_stderr_len, err, add + 1);
        s_cli_stderr = grown;
        s_cli_stderr_len += add;
    }
    return rc;
}

static void test_logs_hold_no_payload(void)
{
    /* The example really is about the child searched for below. */
    const char *example = pt_types_find("referral.request")->example_json;
    CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(example, "\"Ana Lucía\""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(example, "\"Prueba Ejemplo\""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(example, "{\"year\": 2010, \"month\": 3, \"day\": 14}"));

    /* 1. The SDK: send, receive, open, ack. */
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    size_t len = 0;
    uint8_t *body = pt_harness_example_body("referral.request", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *to[1] = {"GT-PGN"};
    pt_send_t msg = {.message_type = "referral.request", .recipients = to, .n_recipients = 1,
                     .case_token = "SECRETS-SDK-1", .consent = &consent, .body = body,
                     .body_len = len};
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(pt_client_send(mx, &msg, &receipt, &rej), PT_CLIENT_OK);
    pt_message_t *got = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 5000, &got), PT_CLIENT_OK);
    size_t got_len = 0;
    const uint8_t *got_body = pt_message_body_bytes(got, &got_len);
    CU_ASSERT(got_len == len && memcmp(got_body, body, len) == 0);
    CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(got)), PT_CLIENT_OK);
    pt_message_destroy(&got);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
    free(body);

    /* 2. The CLI: example, send, recv (recv prints the child on stdout: that is its
       output, not a log; its stderr is searched). */
    static char out[65536];
    char args[1200];
    CU_ASSERT_EQUAL(s_cli_run("example referral.request", out, sizeof out), 0);
    char json_path[700];
    snprintf(json_path, sizeof json_path, "%s/referral.json", pt_harness_dir(s_h));
    FILE *json = fopen(json_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    fputs(out, json);
    fclose(json);
    snprintf(args, sizeof args,
             "send --as MX-DIF --to GT-PGN --type referral.request --case SECRETS-CLI-1 "
             "--json '%s/referral.json'",
             pt_harness_dir(s_h));
    CU_ASSERT_EQUAL(s_cli_run(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(s_cli_run("recv --as GT-PGN", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Ana Luc")); /* it did carry the child's data */
    CU_ASSERT_EQUAL(s_cli_run("trail --case SECRETS-CLI-1", out, sizeof out), 0);

    /* 3. Search every log of the run. */
    char path[700];
    snprintf(path, sizeof path, "%s/broker.log", pt_harness_dir(s_h));
    size_t log_len = 0;
    char *log = s_read_all(path, &log_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    /* Positive control: the broker did log these messages (by case token). */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "SECRETS-SDK-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "SECRETS-CLI-1"));
    const char *needles[] = {
        "Ana Luc",         "Lucía",          "Luc\\u00eda",     "Prueba Ejemplo", "Prueba",
        "Ejemplo",         "Anita",          "2010-03-14",      "14/03/2010",     "03/14/2010",
        "14.03.2010",      "20100314",       "\"year\":2010",   "\"year\": 2010", "year: 2010",
        "TEST-MX-DIF-000123", /* the child's case-system id */
    };
    const struct {
        const char *name;
        const char *text;
    } logs[] = {{"broker.log", log}, {"CLI stderr", s_cli_stderr ? s_cli_stderr : ""}};
    size_t hits = 0;
    for (size_t l = 0; l < sizeof logs / sizeof logs[0]; l++)
        for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
            if (strstr(logs[l].text, needles[i])) {
                printf("\n  FOUND \"%s\" in %s", needles[i], logs[l].name);
                hits++;
            }
    printf("\n  searched %zu bytes of broker.log and %zu bytes of CLI stderr for %zu patterns: "
           "%zu found\n",
           log_len, s_cli_stderr_len, sizeof needles / sizeof needles[0], hits);
    CU_ASSERT_EQUAL(hits, 0);
    free(log);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("secrets", s_suite_init, s_suite_clean);
    CU_add_test(suite, "broker refuses a private key readable by others",
                test_world_readable_key_refused);
    CU_add_test(suite, "no payload data in any log of a run", test_logs_hold_no_payload);
    return pt_cu_main();
}

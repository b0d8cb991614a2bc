/*  test_config — proto/pt_config: the INI file, each kind of error with its key
    and line, env over file, flags over env, --check-config output, masking. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_config.h"
#include "cu_main.h"

static const pt_config_key_t s_keys[] = {
    {"broker", "endpoint", PT_CONFIG_ENDPOINT, "tcp://127.0.0.1:7550", 0, "T_ENDPOINT", "endpoint",
     0, 0, 0, "bind"},
    {"broker", "db", PT_CONFIG_STRING, NULL, 1, "T_DB", "db", 0, 0, 1, "conninfo"},
    {"broker", "max_frame", PT_CONFIG_SIZE, "1MiB", 0, "T_MAX_FRAME", "max-frame", 1024,
     64LL * 1024 * 1024, 0, "frame"},
    {"broker", "retry", PT_CONFIG_DURATION, "1s", 0, "T_RETRY", "retry", 0, 0, 0, "retry"},
    {"broker", "workers", PT_CONFIG_INT, "4", 0, "T_WORKERS", "workers", 1, 64, 0, "workers"},
    {"broker", "strict", PT_CONFIG_BOOL, "false", 0, "T_STRICT", "strict", 0, 0, 0, "strict"},
    {"broker", "keys", PT_CONFIG_PATH, "var/keys", 0, "T_KEYS", "keys", 0, 0, 0, "keys"},
};
#define N_KEYS (sizeof s_keys / sizeof s_keys[0])

static char s_dir[] = "/tmp/test_configXXXXXX";
static char s_path[256];

/* The fake environment: name=value pairs, NULL-terminated. */
static const char *const *s_env_pairs;
static const char *s_env(const char *name)
{
    for (size_t i = 0; s_env_pairs && s_env_pairs[i]; i += 2)
        if (strcmp(s_env_pairs[i], name) == 0)
            return s_env_pairs[i + 1];
    return NULL;
}

static void s_write(const char *text)
{
    FILE *f = fopen(s_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* Loads s_path with argv extra flags; returns rc and leaves *out (caller destroys). */
static int s_load(pt_config_t **out, char **flags, int n_flags, char *err, size_t err_len)
{
    char *argv[16] = {"prog", "--config", s_path};
    int argc = 3;
    for (int i = 0; i < n_flags; i++)
        argv[argc++] = flags[i];
    *out = pt_config_new("prog", s_keys, N_KEYS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*out);
    err[0] = '\0';
    return pt_config_load(*out, argc, argv, s_env, err, err_len);
}

static void test_valid_file(void)
{
    s_env_pairs = NULL;
    s_write("# comment\n"
            "[broker]\n"
            "db = host=/tmp dbname=puente\n"
            "max_frame = 2MiB   ; inline comment\n"
            "retry = 5m\n"
            "workers = 8\n"
            "strict = yes\n"
            "\n"
            "[bridge]\n"
            "anything = is the bridge's business\n"
            "[cli]\n"
            "broker = tcp://x:1\n");
    pt_config_t *c;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(s_load(&c, NULL, 0, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "broker", "db"), "host=/tmp dbname=puente");
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "max_frame", 0), 2 * 1024 * 1024);
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "retry", 0), 300000);
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "workers", 0), 8);
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "strict", -1), 1);
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "broker", "endpoint"), "tcp://127.0.0.1:7550");
    CU_ASSERT_EQUAL(pt_config_source(c, "broker", "endpoint"), PT_CONFIG_FROM_DEFAULT);
    CU_ASSERT_EQUAL(pt_config_source(c, "broker", "workers"), PT_CONFIG_FROM_FILE);
    CU_ASSERT_STRING_EQUAL(pt_config_file(c), s_path);
    CU_ASSERT_PTR_NULL(pt_config_get(c, "broker", "nope"));
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "nope", 77), 77);
    pt_config_destroy(&c);
    CU_ASSERT_PTR_NULL(c);
    pt_config_destroy(&c); /* no-op on NULL */
}

static void s_expect_error(const char *file, const char *expected)
{
    s_env_pairs = NULL;
    s_write(file);
    pt_config_t *c;
    char err[512];
    CU_ASSERT_EQUAL(s_load(&c, NULL, 0, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s%s", s_path, expected);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", err, want);
    CU_ASSERT_STRING_EQUAL(err, want);
    pt_config_destroy(&c);
}

static void test_errors_name_key_and_line(void)
{
    s_expect_error("[broker]\ndb = x\n\nmax_frame = lots\n",
                   ":4: [broker] max_frame: expected a size like 1MiB, got 'lots'");
    s_expect_error("[broker]\ndb = x\nmax_frm = 1\n", ":3: [broker] max_frm: unknown key");
    s_expect_error("[brokr]\ndb = x\n",
                   ":2: [brokr]: unknown section (known: broker, bridge, cli)");
    s_expect_error("db = x\n", ":1: db: key outside a section (start with [broker])");
    s_expect_error("[broker]\ndb = x\nworkers = 100\n",
                   ":3: [broker] workers: 100 is outside 1..64");
    s_expect_error("[broker]\ndb = x\nworkers = 4x\n",
                   ":3: [broker] workers: expected an integer, got '4x'");
    s_expect_error("[broker]\ndb = x\nstrict = maybe\n",
                   ":3: [broker] strict: expected true or false, got 'maybe'");
    s_expect_error("[broker]\ndb = x\nretry = soon\n",
                   ":3: [broker] retry: expected a duration like 10s or 500ms, got 'soon'");
    s_expect_error("[broker]\ndb = x\nendpoint = tcp://nowhere\n",
                   ":3: [broker] endpoint: expected an endpoint like tcp://127.0.0.1:7550 or "
                   "127.0.0.1:9750, got 'tcp://nowhere'");
    s_expect_error("[broker]\ndb = x\nmax_frame = 10\n",
                   ":3: [broker] max_frame: 10 is outside 1024..67108864 bytes");
    s_expect_error("[broker]\ndb = x\ndb = y\n", ":3: [broker] db: set twice (first on line 2)");
    s_expect_error("[broker]\ndb = x\nthis line has no equals sign\n",
                   ":3: syntax error: expected [section], key = value or a comment");
    char long_line[400];
    memset(long_line, 'a', sizeof long_line);
    memcpy(long_line, "[broker]\ndb = ", 14);
    strcpy(long_line + sizeof long_line - 2, "\n");
    s_expect_error(long_line, ":2: line longer than 199 characters");
    /* a secret's bad value is not echoed */
    static const pt_config_key_t secret_int[] = {
        {"cli", "pin", PT_CONFIG_INT, NULL, 1, NULL, NULL, 0, 0, 0, "pin"}};
    pt_config_t *c = pt_config_new("p", secret_int, 1);
    char err[300];
    CU_ASSERT_EQUAL(pt_config_set(c, "cli", "pin", "hunter2", PT_CONFIG_FROM_ENV, "PIN", err,
                                  sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "PIN: [cli] pin: expected an integer, got '********'");
    pt_config_destroy(&c);
    /* a missing file, a missing required key */
    pt_config_t *d = pt_config_new("p", s_keys, N_KEYS);
    CU_ASSERT_EQUAL(pt_config_load_file(d, "/nonexistent/puente.conf", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/puente.conf: cannot open"));
    char *argv[] = {"prog"};
    s_env_pairs = NULL;
    CU_ASSERT_EQUAL(pt_config_load(d, 1, argv, s_env, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "[broker] db is required (config file, env T_DB, flag --db)");
    pt_config_destroy(&d);
    /* a bad table: default that does not parse, unknown section */
    static const pt_config_key_t bad[] = {
        {"broker", "x", PT_CONFIG_SIZE, "lots", 0, NULL, NULL, 0, 0, 0, "x"}};
    static const pt_config_key_t bad_section[] = {
        {"nowhere", "x", PT_CONFIG_STRING, NULL, 0, NULL, NULL, 0, 0, 0, "x"}};
    CU_ASSERT_PTR_NULL(pt_config_new("p", bad, 1));
    CU_ASSERT_PTR_NULL(pt_config_new("p", bad_section, 1));
}

static void test_precedence(void)
{
    s_write("[broker]\ndb = file-db\nworkers = 2\nretry = 2s\nkeys = /file/keys\n");
    static const char *const env[] = {"T_WORKERS", "3", "T_RETRY", "250ms", "T_DB", "", NULL};
    s_env_pairs = env;
    pt_config_t *c;
    char err[512];
    char *flags[] = {"--workers", "5"};
    CU_ASSERT_EQUAL_FATAL(s_load(&c, flags, 2, err, sizeof err), 0);
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "workers", 0), 5);    /* flag > env > file */
    CU_ASSERT_EQUAL(pt_config_source(c, "broker", "workers"), PT_CONFIG_FROM_FLAG);
    CU_ASSERT_EQUAL(pt_config_number(c, "broker", "retry", 0), 250);    /* env > file */
    CU_ASSERT_EQUAL(pt_config_source(c, "broker", "retry"), PT_CONFIG_FROM_ENV);
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "broker", "db"), "file-db"); /* empty env ignored */
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "broker", "keys"), "/file/keys");
    pt_config_destroy(&c);
    /* a bad environment value names the variable; a bad flag names the flag */
    static const char *const bad_env[] = {"T_MAX_FRAME", "huge", NULL};
    s_env_pairs = bad_env;
    CU_ASSERT_EQUAL(s_load(&c, NULL, 0, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "T_MAX_FRAME: [broker] max_frame: expected a size like 1MiB, "
                                "got 'huge'");
    pt_config_destroy(&c);
    s_env_pairs = NULL;
    char *bad_flag[] = {"--strict", "perhaps"};
    CU_ASSERT_EQUAL(s_load(&c, bad_flag, 2, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "--strict: [broker] strict: expected true or false, got "
                                "'perhaps'");
    pt_config_destroy(&c);
    char *unknown[] = {"--nope"};
    CU_ASSERT_EQUAL(s_load(&c, unknown, 1, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "unknown option --nope");
    pt_config_destroy(&c);
    /* PUENTE_CONFIG names the file when --config is absent */
    static const char *const via_env[] = {"PUENTE_CONFIG", s_path, NULL};
    s_env_pairs = via_env;
    c = pt_config_new("prog", s_keys, N_KEYS);
    char *argv[] = {"prog"};
    CU_ASSERT_EQUAL(pt_config_load(c, 1, argv, s_env, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "broker", "db"), "file-db");
    pt_config_destroy(&c);
}

static void test_check_config_output(void)
{
    s_write("[broker]\ndb = password=secret host=db\nworkers = 2\n");
    static const char *const env[] = {"T_RETRY", "3s", NULL};
    s_env_pairs = env;
    pt_config_t *c;
    char err[512];
    char *flags[] = {"--check-config", "--strict", "on"};
    CU_ASSERT_EQUAL_FATAL(s_load(&c, flags, 3, err, sizeof err), 0);
    CU_ASSERT_TRUE(pt_config_check_requested(c));
    CU_ASSERT_FALSE(pt_config_help_requested(c));
    char text[4096] = "";
    FILE *out = fmemopen(text, sizeof text - 1, "w");
    CU_ASSERT_EQUAL(pt_config_print(c, out), 0);
    fclose(out);
    char want[4096];
    snprintf(want, sizeof want,
             "# prog: effective configuration (file: %s)\n"
             "[broker]\n"
             "endpoint = tcp://127.0.0.1:7550         ; default\n"
             "db = ********                           ; %s:2\n"
             "max_frame = 1MiB                        ; default\n"
             "retry = 3s                              ; env T_RETRY\n"
             "workers = 2                             ; %s:3\n"
             "strict = on                             ; flag --strict\n"
             "keys = var/keys                         ; default\n",
             s_path, s_path, s_path);
    CU_ASSERT_STRING_EQUAL(text, want);
    CU_ASSERT_PTR_NULL(strstr(text, "secret"));
    pt_config_destroy(&c);
    char *help[] = {"--help"};
    s_env_pairs = NULL;
    s_write("[broker]\n");
    CU_ASSERT_EQUAL(s_load(&c, help, 1, err, sizeof err), 0); /* no required check with --help */
    CU_ASSERT_TRUE(pt_config_help_requested(c));
    pt_config_destroy(&c);
}

static void test_types(void)
{
    pt_config_t *c = pt_config_new("prog", s_keys, N_KEYS);
    char err[300];
    struct { const char *name, *value; long long want; } ok[] = {
        {"max_frame", "1024", 1024}, {"max_frame", "64KiB", 65536}, {"max_frame", "3 M", 3145728},
        {"max_frame", "16MiB", 16777216}, {"retry", "500ms", 500}, {"retry", "750", 750},
        {"retry", "2h", 7200000}, {"strict", "TRUE", 1}, {"strict", "off", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CU_ASSERT_EQUAL(pt_config_set(c, "broker", ok[i].name, ok[i].value, PT_CONFIG_FROM_FLAG,
                                      "t", err, sizeof err), 0);
        CU_ASSERT_EQUAL(pt_config_number(c, "broker", ok[i].name, -1), ok[i].want);
    }
    const char *endpoints_ok[] = {"tcp://0.0.0.0:7550", "tcp://127.0.0.1:*", "ipc:///run/p.sock",
                                  "127.0.0.1:9750", "[::1]:9750", "localhost:1"};
    for (size_t i = 0; i < sizeof endpoints_ok / sizeof endpoints_ok[0]; i++)
        CU_ASSERT_EQUAL(pt_config_set(c, "broker", "endpoint", endpoints_ok[i],
                                      PT_CONFIG_FROM_FLAG, "t", err, sizeof err), 0);
    const char *endpoints_bad[] = {"tcp://host", "127.0.0.1:0", "x:70000", "ftp://x:1", ":80",
                                   "tcp://:7550"};
    for (size_t i = 0; i < sizeof endpoints_bad / sizeof endpoints_bad[0]; i++)
        CU_ASSERT_EQUAL(pt_config_set(c, "broker", "endpoint", endpoints_bad[i],
                                      PT_CONFIG_FROM_FLAG, "t", err, sizeof err), -1);
    CU_ASSERT_EQUAL(pt_config_set(c, "broker", "max_frame", "99999999999999999999G",
                                  PT_CONFIG_FROM_FLAG, "t", err, sizeof err), -1);
    CU_ASSERT_EQUAL(pt_config_set(c, "broker", "max_frame", "-5", PT_CONFIG_FROM_FLAG, "t", err,
                                  sizeof err), -1);
    /* an empty value unsets */
    CU_ASSERT_EQUAL(pt_config_set(c, "broker", "keys", "", PT_CONFIG_FROM_FLAG, "t", err,
                                  sizeof err), 0);
    CU_ASSERT_PTR_NULL(pt_config_get(c, "broker", "keys"));
    CU_ASSERT_EQUAL(pt_config_set(c, "broker", "missing", "1", PT_CONFIG_FROM_FLAG, "t", err,
                                  sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "t: [broker] missing: unknown key");
    pt_config_destroy(&c);
}

int main(void)
{
    if (!mkdtemp(s_dir))
        return 1;
    snprintf(s_path, sizeof s_path, "%s/puente.conf", s_dir);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("config", NULL, NULL);
    if (!suite || !CU_add_test(suite, "a valid file", test_valid_file)
        || !CU_add_test(suite, "errors name the key and the line", test_errors_name_key_and_line)
        || !CU_add_test(suite, "flags over env over file", test_precedence)
        || !CU_add_test(suite, "--check-config output, secrets masked", test_check_config_output)
        || !CU_add_test(suite, "value types", test_types)) {
        CU_cleanup_registry();
        return 1;
    }
    int status = pt_cu_main();
    unlink(s_path);
    rmdir(s_dir);
    return status;
}

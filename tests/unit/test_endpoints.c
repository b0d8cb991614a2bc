/*  Unit tests of pt_endpoints (the broker endpoint list clients take, issue 9) and of
    the configuration type that uses it (PT_CONFIG_ENDPOINT_LIST): good lists parse
    to trimmed entries in order, and every bad entry gets an error that names it. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_config.h"
#include "pt_endpoints.h"
#include "cu_main.h"

static void test_single_and_lists(void)
{
    char **list = NULL;
    size_t n = 0;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(pt_endpoints_parse("tcp://127.0.0.1:7550", &list, &n, err, sizeof err),
                          0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(list[0], "tcp://127.0.0.1:7550");
    CU_ASSERT_PTR_NULL(list[1]);
    pt_endpoints_free(list);

    const char *text = " tcp://broker1.example.org:7550 ,\ttcp://10.0.0.2:7551,"
                       "tcp://[2001:db8::7]:7552,ipc:///run/puente/broker.sock ";
    CU_ASSERT_EQUAL_FATAL(pt_endpoints_parse(text, &list, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(list[0], "tcp://broker1.example.org:7550");
    CU_ASSERT_STRING_EQUAL(list[1], "tcp://10.0.0.2:7551");
    CU_ASSERT_STRING_EQUAL(list[2], "tcp://[2001:db8::7]:7552");
    CU_ASSERT_STRING_EQUAL(list[3], "ipc:///run/puente/broker.sock");
    CU_ASSERT_PTR_NULL(list[4]);
    pt_endpoints_free(list);
    pt_endpoints_free(NULL);

    /* Validation only. */
    CU_ASSERT_EQUAL(pt_endpoints_parse("tcp://a:1,tcp://b:2", NULL, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(pt_endpoints_parse("tcp://a:1,tcp://b:2", NULL, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(pt_endpoints_parse("tcp://a:65535", NULL, NULL, err, sizeof err), 0);

    /* The largest list allowed, and one more. */
    char big[16 * 24 + 32] = "";
    for (int i = 0; i < PT_ENDPOINTS_MAX; i++) {
        char one[32];
        snprintf(one, sizeof one, "%stcp://h%d:%d", i ? "," : "", i, 7000 + i);
        strcat(big, one);
    }
    CU_ASSERT_EQUAL(pt_endpoints_parse(big, NULL, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL(n, PT_ENDPOINTS_MAX);
    strcat(big, ",tcp://h99:7099");
    CU_ASSERT_EQUAL(pt_endpoints_parse(big, NULL, &n, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "broker endpoint list: 17 entries, at most 16");
    CU_ASSERT_EQUAL(n, 0);
}

static void test_errors_name_the_entry(void)
{
    struct {
        const char *list, *error;
    } bad[] = {
        {"", "no broker endpoint given"},
        {"  ", "no broker endpoint given"},
        {"tcp://a:1,,tcp://b:2", "broker endpoint list, entry 2 of 3 is empty (a comma too many?)"},
        {"tcp://a:1,", "broker endpoint list, entry 2 of 2 is empty (a comma too many?)"},
        {",tcp://a:1", "broker endpoint list, entry 1 of 2 is empty (a comma too many?)"},
        {"tcp://a:1,tcp://b", "broker endpoint list, entry 2 of 2 ('tcp://b'): no port (expected "
                              "tcp://HOST:PORT)"},
        {"tcp://a:1,tcp://b:0,tcp://c:3", "broker endpoint list, entry 2 of 3 ('tcp://b:0'): the "
                                          "port must be a number from 1 to 65535"},
        {"tcp://a:1,tcp://b:70000", "broker endpoint list, entry 2 of 2 ('tcp://b:70000'): the "
                                    "port must be a number from 1 to 65535"},
        {"tcp://a:1,tcp://b:12x", "broker endpoint list, entry 2 of 2 ('tcp://b:12x'): the port "
                                  "must be a number from 1 to 65535"},
        {"tcp://a:1,tcp://b:*", "broker endpoint list, entry 2 of 2 ('tcp://b:*'): the port must "
                                "be a number from 1 to 65535"},
        {"tcp://:7550,tcp://a:1", "broker endpoint list, entry 1 of 2 ('tcp://:7550'): no host "
                                  "(expected tcp://HOST:PORT)"},
        {"tcp://a:1,b.example.org:7550", "broker endpoint list, entry 2 of 2 "
                                         "('b.example.org:7550'): no transport (expected "
                                         "tcp://HOST:PORT or ipc://PATH)"},
        {"tcp://a:1,udp://b:1", "broker endpoint list, entry 2 of 2 ('udp://b:1'): unsupported "
                                "transport (expected tcp://HOST:PORT or ipc://PATH)"},
        {"tcp://a:1,ipc://", "broker endpoint list, entry 2 of 2 ('ipc://'): no path (expected "
                             "ipc://PATH)"},
        {"tcp://a:1,tcp://::1:7550", "broker endpoint list, entry 2 of 2 ('tcp://::1:7550'): an "
                                     "IPv6 address needs brackets (tcp://[::1]:PORT)"},
        {"tcp://a:1,tcp://[::1]", "broker endpoint list, entry 2 of 2 ('tcp://[::1]'): no port "
                                  "(expected tcp://HOST:PORT)"},
        {"tcp://a:1,tcp://[zz]:1", "broker endpoint list, entry 2 of 2 ('tcp://[zz]:1'): invalid "
                                   "character in the [IPv6] address"},
        {"tcp://a:1,tcp://*:7550", "broker endpoint list, entry 2 of 2 ('tcp://*:7550'): invalid "
                                   "character in the host name"},
        {"tcp://a:1,tcp://eth0;b:7550", "broker endpoint list, entry 2 of 2 "
                                        "('tcp://eth0;b:7550'): invalid character in the host "
                                        "name"},
        {"tcp://a b:1", "broker endpoint 'tcp://a b:1': invalid character in the host name"},
        {"ipc:///run/a b", "broker endpoint 'ipc:///run/a b': contains a space or a control "
                           "character"},
        {"tcp://a:1,tcp://b:2,tcp://a:1", "broker endpoint list, entry 3 of 3 ('tcp://a:1') "
                                          "repeats entry 1"},
        {"tcp://b", "broker endpoint 'tcp://b': no port (expected tcp://HOST:PORT)"},
        {"localhost:7550", "broker endpoint 'localhost:7550': no transport (expected "
                           "tcp://HOST:PORT or ipc://PATH)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        char **list = (char **)1;
        size_t n = 99;
        int rc = pt_endpoints_parse(bad[i].list, &list, &n, err, sizeof err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(list);
        CU_ASSERT_EQUAL(n, 0);
        if (strcmp(err, bad[i].error) != 0)
            fprintf(stderr, "\n  list '%s'\n  got  '%s'\n  want '%s'\n", bad[i].list, err,
                    bad[i].error);
        CU_ASSERT_STRING_EQUAL(err, bad[i].error);
    }
    char err[256];
    CU_ASSERT_EQUAL(pt_endpoints_parse(NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "no broker endpoint given");

    /* An entry longer than the limit is named, not copied. */
    char longer[PT_ENDPOINT_MAX_LEN + 40] = "tcp://a:1,tcp://";
    while (strlen(longer) < sizeof longer - 6)
        strcat(longer, "h");
    strcat(longer, ":1");
    CU_ASSERT_EQUAL(pt_endpoints_parse(longer, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "broker endpoint list, entry 2 of 2 is longer than 255 characters");
}

/* The configuration type: the bridge's [bridge] broker key is one of these. */
static const pt_config_key_t s_keys[] = {
    {"bridge", "broker", PT_CONFIG_ENDPOINT_LIST, "tcp://127.0.0.1:7550", 0, "PUENTE_BROKER",
     "broker", 0, 0, 0, "broker endpoints"},
};

static void test_config_type(void)
{
    pt_config_t *c = pt_config_new("prog", s_keys, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[300] = "";
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "bridge", "broker"), "tcp://127.0.0.1:7550");
    CU_ASSERT_EQUAL(pt_config_set(c, "bridge", "broker", "tcp://10.0.0.1:7550,tcp://10.0.0.2:7550",
                                  PT_CONFIG_FROM_ENV, "PUENTE_BROKER", err, sizeof err),
                    0);
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "bridge", "broker"),
                           "tcp://10.0.0.1:7550,tcp://10.0.0.2:7550");
    CU_ASSERT_EQUAL(pt_config_set(c, "bridge", "broker", "tcp://10.0.0.1:7550,tcp//10.0.0.2:7550",
                                  PT_CONFIG_FROM_FILE, "puente.conf:7", err, sizeof err),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "puente.conf:7: [bridge] broker: broker endpoint list, entry 2 of "
                                "2 ('tcp//10.0.0.2:7550'): no transport (expected tcp://HOST:PORT "
                                "or ipc://PATH)");
    /* A failed set keeps the value before it. */
    CU_ASSERT_STRING_EQUAL(pt_config_get(c, "bridge", "broker"),
                           "tcp://10.0.0.1:7550,tcp://10.0.0.2:7550");
    pt_config_destroy(&c);

    /* A default that does not parse is a bad table. */
    pt_config_key_t bad = s_keys[0];
    bad.default_value = "tcp://a:1,,";
    CU_ASSERT_PTR_NULL(pt_config_new("prog", &bad, 1));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("endpoints", NULL, NULL);
    if (!suite || !CU_add_test(suite, "one endpoint and lists", test_single_and_lists) ||
        !CU_add_test(suite, "errors name the entry", test_errors_name_the_entry) ||
        !CU_add_test(suite, "configuration type", test_config_type)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

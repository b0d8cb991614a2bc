/*  test_broker_policy — the authn, verify-key and policy stages and the directory
    they read, table-driven over one header mutated per case. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "deliver.h"
#include "directory.h"
#include "policy.h"
#include "pt_crypto.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

static pt_directory_t *s_dir;
static const int64_t NOW = 1760000000000LL;

static int s_add_org_services(const char *id, int enabled, const char *services)
{
    pt_sign_key_t *key = pt_sign_key_generate();
    pt_store_org_t org = {0};
    strcpy(org.org_id, id);
    pt_sign_key_public(key, org.sign_public);
    memset(org.curve_public, id[0], 32);
    org.curve_public[1] = (uint8_t)id[1];
    org.enabled = enabled;
    snprintf(org.service_types, sizeof org.service_types, "%s", services);
    int rc = pt_directory_put_org(s_dir, &org);
    pt_sign_key_destroy(&key);
    return rc;
}

static int s_add_org(const char *id, int enabled)
{
    return s_add_org_services(id, enabled, "");
}

static int s_init(void)
{
    s_dir = pt_directory_new();
    if (s_add_org("MX-DIF", 1) || s_add_org_services("GT-PGN", 1, "psychosocial") ||
        s_add_org("HN-DINAF", 1) || s_add_org("SV-CONNA", 0))
        return 1;
    const char *purposes[] = {"service_provision", "family_tracing"};
    const char *types[] = {"referral.*", "tracing.request"};
    pt_store_agreement_t ag = {.purposes = purposes, .n_purposes = 2, .message_types = types,
                               .n_message_types = 2, .valid_from_ms = NOW - 1000,
                               .valid_until_ms = NOW + 100000};
    strcpy(ag.agreement_id, "AGR-1");
    strcpy(ag.org_a, "MX-DIF");
    strcpy(ag.org_b, "GT-PGN");
    pt_directory_put_agreement(s_dir, &ag);
    strcpy(ag.agreement_id, "AGR-2");
    strcpy(ag.org_b, "HN-DINAF");
    ag.valid_until_ms = NOW - 1; /* lapsed */
    pt_directory_put_agreement(s_dir, &ag);
    uint8_t operator_key[32];
    memset(operator_key, 0x42, 32);
    pt_directory_add_operator(s_dir, operator_key);
    return 0;
}

static int s_clean(void)
{
    pt_directory_destroy(&s_dir);
    return 0;
}

typedef struct {
    const char *name;
    const char *type, *sender, *recipient, *second_recipient, *case_token, *purpose, *agreement;
    uint32_t schema;
    int64_t created_offset, expires_offset;
    Puente__V1__RejectCode expected;
} s_case_t;

static void test_policy_table(void)
{
    s_case_t cases[] = {
        {"legal referral", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1", "service_provision",
         "", 1, 0, 0, 0},
        {"legal reverse direction", "referral.accept", "GT-PGN", "MX-DIF", NULL, "C-1",
         "service_provision", "", 1, 0, 0, 0},
        {"named agreement", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "AGR-1", 1, 0, 0, 0},
        {"wrong named agreement", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "AGR-2", 1, 0, 0, REJ(REJECT_NO_AGREEMENT)},
        {"schema 2", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1", "service_provision", "",
         2, 0, 0, REJ(REJECT_BAD_SCHEMA_VERSION)},
        {"unknown type", "referral.teleport", "MX-DIF", "GT-PGN", NULL, "C-1", "service_provision",
         "", 1, 0, 0, REJ(REJECT_UNKNOWN_TYPE)},
        {"empty case token", "referral.request", "MX-DIF", "GT-PGN", NULL, "", "service_provision",
         "", 1, 0, 0, REJ(REJECT_INVALID_FIELD)},
        {"SQL in case token", "referral.request", "MX-DIF", "GT-PGN", NULL,
         "x'; DROP TABLE messages;--", "service_provision", "", 1, 0, 0, REJ(REJECT_INVALID_FIELD)},
        {"unknown purpose", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1", "marketing", "", 1,
         0, 0, REJ(REJECT_INVALID_FIELD)},
        {"purpose outside agreement", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "reintegration", "", 1, 0, 0, REJ(REJECT_NO_AGREEMENT)},
        {"type outside agreement", "return.notice", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_NO_AGREEMENT)},
        {"lapsed agreement", "referral.request", "MX-DIF", "HN-DINAF", NULL, "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_NO_AGREEMENT)},
        {"disabled recipient", "referral.request", "MX-DIF", "SV-CONNA", NULL, "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_UNKNOWN_RECIPIENT)},
        {"unknown recipient", "referral.request", "MX-DIF", "ZZ-NOBODY", NULL, "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_UNKNOWN_RECIPIENT)},
        {"to self", "referral.request", "MX-DIF", "MX-DIF", NULL, "C-1", "service_provision", "", 1,
         0, 0, REJ(REJECT_SELF_ADDRESSED)},
        {"fan-out outside tracing", "referral.request", "MX-DIF", "GT-PGN", "HN-DINAF", "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_INVALID_FIELD)},
        {"same recipient twice", "tracing.request", "MX-DIF", "GT-PGN", "GT-PGN", "C-1",
         "family_tracing", "", 1, 0, 0, REJ(REJECT_INVALID_FIELD)},
        {"far future", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1", "service_provision", "",
         1, 3600 * 1000, 0, REJ(REJECT_CLOCK_SKEW)},
        {"small skew tolerated", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "", 1, 60 * 1000, 0, 0},
        {"expired", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1", "service_provision", "", 1,
         -7200 * 1000, 3600 * 1000, REJ(REJECT_EXPIRED)},
        {"default TTL passed", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "", 1, -PT_POLICY_DEFAULT_TTL_MS - 1, 0, REJ(REJECT_EXPIRED)},
        {"no service type", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "", 1, 0, 0, REJ(REJECT_SERVICE_TYPE_MISSING)},
        {"expires before created", "referral.request", "MX-DIF", "GT-PGN", NULL, "C-1",
         "service_provision", "", 1, 0, -1, REJ(REJECT_INVALID_FIELD)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_case_t *c = &cases[i];
        char *recipients[2] = {(char *)c->recipient, (char *)c->second_recipient};
        Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
        h.schema_version = c->schema;
        h.message_type = (char *)c->type;
        h.sender = (char *)c->sender;
        h.recipients = recipients;
        h.n_recipients = c->second_recipient ? 2 : 1;
        h.case_token = (char *)c->case_token;
        h.purpose = (char *)c->purpose;
        h.agreement_id = (char *)c->agreement;
        h.created_at_ms = NOW + c->created_offset;
        h.expires_at_ms = c->expires_offset ? h.created_at_ms + c->expires_offset : 0;
        h.service_type =
            strcmp(c->type, "referral.request") == 0 && strcmp(c->name, "no service type") != 0
                ? "psychosocial"
                : "";
        pt_verdict_t verdict = {0};
        char agreement[PT_STORE_TEXT_MAX] = "";
        Puente__V1__RejectCode got = pt_policy_check(s_dir, &h, NOW, agreement, &verdict);
        if (got != c->expected)
            fprintf(stderr, "\n  case '%s': expected %d got %d (%s)\n", c->name, c->expected,
                    got, verdict.reason);
        CU_ASSERT_EQUAL(got, c->expected);
        if (c->expected == 0) {
            CU_ASSERT_STRING_EQUAL(agreement, "AGR-1");
        } else {
            CU_ASSERT(strlen(verdict.reason) > 0);
        }
    }
}

/* Splits a ','-joined list into v (pointers into buf); returns the count. */
static size_t s_split(const char *list, char *buf, size_t cap, char **v, size_t max)
{
    size_t n = 0;
    snprintf(buf, cap, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < max;
         t = strtok_r(NULL, ",", &save))
        v[n++] = t;
    return n;
}

/* Registered service types: a recipient receives only the service types it
   registered (one that registered none receives no typed message); a
   referral.request needs a service_type. */
static void test_service_types(void)
{
    CU_ASSERT_EQUAL_FATAL(s_add_org_services("GT-PGN", 1, "health,family_reunification"), 0);
    struct {
        const char *services, *service;
        Puente__V1__RejectCode expected;
    } cases[] = {
        {"health,family_reunification", "health", 0},
        {"health,family_reunification", "family_reunification", 0},
        {"health,family_reunification", "education", REJ(REJECT_SERVICE_NOT_OFFERED)},
        {"health,family_reunification", "healt", REJ(REJECT_SERVICE_NOT_OFFERED)},
        {"health,family_reunification", "health,education", REJ(REJECT_SERVICE_NOT_OFFERED)},
        {"health,family_reunification", "", REJ(REJECT_SERVICE_TYPE_MISSING)},
        {"", "health", REJ(REJECT_SERVICE_NOT_OFFERED)}, /* registered nothing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(s_add_org_services("GT-PGN", 1, cases[i].services), 0);
        char *recipients[1] = {"GT-PGN"};
        Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
        h.schema_version = 1;
        h.message_type = "referral.request";
        h.sender = "MX-DIF";
        h.recipients = recipients;
        h.n_recipients = 1;
        h.case_token = "C-S";
        h.purpose = "service_provision";
        h.created_at_ms = NOW;
        h.service_type = (char *)cases[i].service;
        pt_verdict_t verdict = {0};
        char agreement[PT_STORE_TEXT_MAX] = "";
        Puente__V1__RejectCode got = pt_policy_check(s_dir, &h, NOW, agreement, &verdict);
        if (got != cases[i].expected)
            fprintf(stderr, "\n  service case %zu: expected %d got %d (%s)\n", i, cases[i].expected,
                    got, verdict.reason);
        CU_ASSERT_EQUAL(got, cases[i].expected);
        if (got == REJ(REJECT_SERVICE_NOT_OFFERED))
            CU_ASSERT_PTR_NOT_NULL(strstr(verdict.reason, "GT-PGN"));
    }
    /* Tracing fan-out: the recipients are exactly the enabled tracing focal points
       of search_countries (SV-CONNA is disabled; MX-DIF is the sender). An
       agreement MX-DIF/HN-DINAF is valid here, one for SV-CONNA none. */
    pt_store_agreement_t ag = {0};
    const char *purposes[] = {"family_tracing"};
    const char *types[] = {"tracing.request"};
    ag.purposes = purposes;
    ag.n_purposes = 1;
    ag.message_types = types;
    ag.n_message_types = 1;
    ag.valid_from_ms = NOW - 1000;
    ag.valid_until_ms = NOW + 100000;
    strcpy(ag.agreement_id, "AGR-3");
    strcpy(ag.org_a, "MX-DIF");
    strcpy(ag.org_b, "HN-DINAF");
    CU_ASSERT_EQUAL_FATAL(pt_directory_put_agreement(s_dir, &ag), 0);
    const char *focal = "tracing_focal_point,health";
    struct {
        const char *name, *gt, *hn, *mx, *type, *countries, *recipients;
        Puente__V1__RejectCode expected;
    } traces[] = {
        {"one country", focal, focal, "", "tracing.request", "GT", "GT-PGN", 0},
        {"two countries", focal, focal, "", "tracing.request", "GT,HN", "GT-PGN,HN-DINAF", 0},
        {"order free", focal, focal, "", "tracing.request", "HN,GT", "GT-PGN,HN-DINAF", 0},
        {"own country searched by the sender", focal, focal, focal, "tracing.request", "GT,MX",
         "GT-PGN", 0},
        {"recipient not a focal point", "health", focal, "", "tracing.request", "GT", "GT-PGN",
         REJ(REJECT_NOT_FOCAL_POINT)},
        {"registered nothing is no focal point", "", focal, "", "tracing.request", "GT,HN",
         "GT-PGN,HN-DINAF", REJ(REJECT_NOT_FOCAL_POINT)},
        {"focal point of a country not named", focal, focal, "", "tracing.request", "HN",
         "GT-PGN,HN-DINAF", REJ(REJECT_NOT_FOCAL_POINT)},
        {"a focal point left out", focal, focal, "", "tracing.request", "GT,HN", "GT-PGN",
         REJ(REJECT_FANOUT_INCOMPLETE)},
        {"no countries", focal, focal, "", "tracing.request", "", "GT-PGN",
         REJ(REJECT_COUNTRY_MISSING)},
        {"country without focal point", focal, focal, "", "tracing.request", "GT,SV", "GT-PGN",
         REJ(REJECT_NO_FOCAL_POINT)},
        {"lower-case country", focal, focal, "", "tracing.request", "gt", "GT-PGN",
         REJ(REJECT_INVALID_FIELD)},
        {"country twice", focal, focal, "", "tracing.request", "GT,GT", "GT-PGN",
         REJ(REJECT_INVALID_FIELD)},
        {"countries on another type", focal, focal, "", "referral.request", "GT", "GT-PGN",
         REJ(REJECT_INVALID_FIELD)},
    };
    for (size_t i = 0; i < sizeof traces / sizeof traces[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(s_add_org_services("GT-PGN", 1, traces[i].gt), 0);
        CU_ASSERT_EQUAL_FATAL(s_add_org_services("HN-DINAF", 1, traces[i].hn), 0);
        CU_ASSERT_EQUAL_FATAL(s_add_org_services("MX-DIF", 1, traces[i].mx), 0);
        char rbuf[100], cbuf[100], *recipients[4], *countries[4];
        Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
        h.schema_version = 1;
        h.message_type = (char *)traces[i].type;
        h.sender = "MX-DIF";
        h.recipients = recipients;
        h.n_recipients = s_split(traces[i].recipients, rbuf, sizeof rbuf, recipients, 4);
        h.search_countries = countries;
        h.n_search_countries = s_split(traces[i].countries, cbuf, sizeof cbuf, countries, 4);
        h.case_token = "C-T";
        h.purpose = "family_tracing";
        h.service_type = strcmp(traces[i].type, "referral.request") == 0 ? "health" : "";
        h.created_at_ms = NOW;
        pt_verdict_t verdict = {0};
        char agreement[PT_STORE_TEXT_MAX] = "";
        Puente__V1__RejectCode got = pt_policy_check(s_dir, &h, NOW, agreement, &verdict);
        if (got != traces[i].expected)
            fprintf(stderr, "\n  trace case '%s': expected %d got %d (%s)\n", traces[i].name,
                    traces[i].expected, got, verdict.reason);
        CU_ASSERT_EQUAL(got, traces[i].expected);
    }
    /* Put the directory back as s_init left it. */
    CU_ASSERT_EQUAL_FATAL(s_add_org_services("GT-PGN", 1, "psychosocial"), 0);
    CU_ASSERT_EQUAL_FATAL(s_add_org("HN-DINAF", 1), 0);
    CU_ASSERT_EQUAL_FATAL(s_add_org("MX-DIF", 1), 0);
}

static void test_authn(void)
{
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.sender = "MX-DIF";
    pt_verdict_t verdict = {0};
    CU_ASSERT_EQUAL(pt_authn_check("MX-DIF", &h, &verdict), 0);
    CU_ASSERT_EQUAL(pt_authn_check("GT-PGN", &h, &verdict), REJ(REJECT_UNAUTHENTICATED));
    CU_ASSERT_EQUAL(pt_authn_check("", &h, &verdict), REJ(REJECT_UNAUTHENTICATED));
    CU_ASSERT_EQUAL(pt_authn_check(NULL, &h, &verdict), REJ(REJECT_UNAUTHENTICATED));
    CU_ASSERT_EQUAL(pt_authn_check("operator", &h, &verdict), REJ(REJECT_NOT_PERMITTED));
}

static void test_directory_identity(void)
{
    uint8_t key[32];
    memset(key, 'M', 32);
    key[1] = 'X';
    CU_ASSERT_STRING_EQUAL(pt_directory_identity_for_curve(s_dir, key), "MX-DIF");
    memset(key, 'S', 32);
    key[1] = 'V';
    CU_ASSERT_PTR_NULL(pt_directory_identity_for_curve(s_dir, key)); /* disabled */
    memset(key, 0x42, 32);
    CU_ASSERT_STRING_EQUAL(pt_directory_identity_for_curve(s_dir, key), "operator");
    memset(key, 0, 32);
    CU_ASSERT_PTR_NULL(pt_directory_identity_for_curve(s_dir, key));
    CU_ASSERT_EQUAL(pt_directory_org_count(s_dir), 4);
    CU_ASSERT_PTR_NULL(pt_directory_org(s_dir, "US-ORR"));
    /* Replacing an org keeps one entry. */
    CU_ASSERT_EQUAL(s_add_org("MX-DIF", 1), 0);
    CU_ASSERT_EQUAL(pt_directory_org_count(s_dir), 4);
}

static void test_backoff(void)
{
    CU_ASSERT_EQUAL(pt_deliver_backoff_ms(0), 1000);
    CU_ASSERT_EQUAL(pt_deliver_backoff_ms(1), 2000);
    CU_ASSERT_EQUAL(pt_deliver_backoff_ms(5), 32000);
    CU_ASSERT_EQUAL(pt_deliver_backoff_ms(6), 60000);
    CU_ASSERT_EQUAL(pt_deliver_backoff_ms(4000000000u), 60000);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker stages", s_init, s_clean);
    CU_add_test(suite, "policy table", test_policy_table);
    CU_add_test(suite, "registered service types", test_service_types);
    CU_add_test(suite, "authn", test_authn);
    CU_add_test(suite, "directory identities", test_directory_identity);
    CU_add_test(suite, "delivery backoff", test_backoff);
    return pt_cu_main();
}

/*  test_bridge_http — puente-bridge's pure parts: routes (and that the OpenAPI
    document lists exactly the served routes), request validation with problem
    types and paths, inbox queries, webhook signatures, bearer tokens, options. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "bridge_config.h"
#include "bridge_http.h"
#include "cu_main.h"

static void test_routes(void)
{
    char param[64], allow[64];
    CU_ASSERT_EQUAL(pt_bridge_route_match("POST", "/v1/messages", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_SUBMIT);
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/messages", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_INBOX);
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/messages/abc", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_STATUS);
    CU_ASSERT_STRING_EQUAL(param, "abc");
    CU_ASSERT_EQUAL(pt_bridge_route_match("POST", "/v1/messages/x-1/ack", param, sizeof param,
                                          allow, sizeof allow), PT_ROUTE_ACK);
    CU_ASSERT_STRING_EQUAL(param, "x-1");
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/cases/CASE-1/trail", param, sizeof param,
                                          allow, sizeof allow), PT_ROUTE_TRAIL);
    CU_ASSERT_STRING_EQUAL(param, "CASE-1");
    CU_ASSERT_EQUAL(pt_bridge_route_match("DELETE", "/v1/messages", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST, GET");
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/messages/a/ack", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_BAD_METHOD);
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/nothing", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_NONE);
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/messages//ack", param, sizeof param, allow,
                                          sizeof allow), PT_ROUTE_NONE);
    CU_ASSERT_EQUAL(pt_bridge_route_match("GET", "/v1/cases/A/B/trail", param, sizeof param,
                                          allow, sizeof allow), PT_ROUTE_NONE);
}

/* Every (method, path) of the embedded OpenAPI document is served and vice versa. */
static void test_openapi_matches_routes(void)
{
    json_error_t e;
    json_t *doc = json_loads(pt_bridge_openapi, 0, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    size_t n_routes;
    const pt_route_entry_t *routes = pt_bridge_routes(&n_routes);
    size_t in_doc = 0;
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            char upper[16];
            size_t i = 0;
            for (; method[i] && i < sizeof upper - 1; i++)
                upper[i] = (char) (method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
            upper[i] = '\0';
            int found = 0;
            for (size_t r = 0; r < n_routes; r++)
                found |= strcmp(routes[r].method, upper) == 0 && strcmp(routes[r].path, path) == 0;
            if (!found)
                fprintf(stderr, "\n  in openapi.json but not served: %s %s\n", upper, path);
            CU_ASSERT(found);
            in_doc++;
        }
    }
    CU_ASSERT_EQUAL(in_doc, n_routes);
    json_decref(doc);
}

/* The problem types of the code: every string literal in the type argument (the
   third) of each pt_problem_set call in the bridge sources. Appends to types
   (n of cap); -1 if a file cannot be read. */
static int s_emitted_types(const char *file, char (*types)[48], size_t *n, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    for (char *at = strstr(text, "pt_problem_set("); at; at = strstr(at + 1, "pt_problem_set(")) {
        char *q = at + strlen("pt_problem_set(");
        int depth = 1, arg = 0;
        while (*q && depth > 0) {
            if (*q == '"') {
                char *end = q + 1;
                while (*end && *end != '"')
                    end += *end == '\\' ? 2 : 1;
                if (arg == 2 && depth == 1 && end - q - 1 < 48) {
                    char lit[48];
                    snprintf(lit, sizeof lit, "%.*s", (int)(end - q - 1), q + 1);
                    int seen = 0;
                    for (size_t i = 0; i < *n; i++)
                        seen |= strcmp(types[i], lit) == 0;
                    if (!seen && *n < cap)
                        snprintf(types[(*n)++], 48, "%s", lit);
                }
                q = *end ? end + 1 : end;
                continue;
            }
            if (*q == '(')
                depth++;
            else if (*q == ')')
                depth--;
            else if (*q == ',' && depth == 1)
                arg++;
            q++;
        }
    }
    return 0;
}

/* One table of problem types: what the code passes to pt_problem_set, the table
   it draws titles from, and openapi.json's Problem.type enum are the same set. */
static void test_problem_types_match_openapi(void)
{
    size_t n_table;
    const pt_problem_type_t *table = pt_bridge_problem_types(&n_table);
    char emitted[64][48];
    size_t n_emitted = 0;
    CU_ASSERT_EQUAL_FATAL(s_emitted_types("adapters/bridge/bridge.c", emitted, &n_emitted, 64), 0);
    CU_ASSERT_EQUAL_FATAL(s_emitted_types("adapters/bridge/bridge_http.c", emitted, &n_emitted, 64),
                          0);
    json_t *doc = json_loads(pt_bridge_openapi, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *en = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                                "Problem"),
                "properties"),
            "type"),
        "enum");
    CU_ASSERT_FATAL(json_is_array(en));
    size_t base = strlen(PT_BRIDGE_PROBLEM_BASE);
    /* openapi -> table */
    size_t i;
    json_t *v;
    json_array_foreach(en, i, v)
    {
        const char *uri = json_string_value(v);
        CU_ASSERT_FATAL(uri && strncmp(uri, PT_BRIDGE_PROBLEM_BASE, base) == 0);
        int found = 0;
        for (size_t k = 0; k < n_table; k++)
            found |= strcmp(table[k].type, uri + base) == 0;
        if (!found)
            fprintf(stderr, "\n  in openapi.json, not in the table: %s\n", uri + base);
        CU_ASSERT(found);
    }
    /* table -> openapi, table -> code */
    for (size_t k = 0; k < n_table; k++) {
        int in_doc = 0, in_code = 0;
        json_array_foreach(en, i, v) in_doc |=
            strcmp(json_string_value(v) + base, table[k].type) == 0;
        for (size_t e = 0; e < n_emitted; e++)
            in_code |= strcmp(emitted[e], table[k].type) == 0;
        if (!in_doc || !in_code)
            fprintf(stderr, "\n  problem type %s: in openapi.json %d, emitted by the code %d\n",
                    table[k].type, in_doc, in_code);
        CU_ASSERT(in_doc);
        CU_ASSERT(in_code);
    }
    /* code -> table */
    for (size_t e = 0; e < n_emitted; e++) {
        int found = 0;
        for (size_t k = 0; k < n_table; k++)
            found |= strcmp(table[k].type, emitted[e]) == 0;
        if (!found)
            fprintf(stderr, "\n  emitted but not in the table: %s\n", emitted[e]);
        CU_ASSERT(found);
    }
    CU_ASSERT_EQUAL(json_array_size(en), n_table);
    CU_ASSERT(n_emitted >= 15); /* the scan found the calls */
    json_decref(doc);
}

/* Prefer: wait=N (RFC 7240). */
static void test_prefer_wait(void)
{
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait(NULL), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait(""), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=5"), 5);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("respond-async, wait=3"), 3);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("Wait = \"7\""), 7);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=600"), PT_BRIDGE_PREFER_WAIT_MAX);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=99999999999999"), PT_BRIDGE_PREFER_WAIT_MAX);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=abc"), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=5x"), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("waiting=5"), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("return=minimal"), 0);
    CU_ASSERT_EQUAL(pt_bridge_prefer_wait("wait=0"), 0);
}

static const char *s_valid =
    "{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"CASE-1\","
    "\"correlation_id\":\"0190f6a8-0000-7000-8000-000000000001\",\"respond_by\":\"2030-01-01\","
    "\"body\":{\"referral_id\":\"R-1\",\"status\":\"accepted\"}}";

static void test_submit_valid(void)
{
    pt_submit_req_t *req = NULL;
    pt_problem_t p;
    CU_ASSERT_EQUAL_FATAL(pt_submit_req_parse(s_valid, strlen(s_valid), &req, &p), 0);
    CU_ASSERT_STRING_EQUAL(req->type->name, "referral.accept");
    CU_ASSERT_EQUAL(req->n_to, 1);
    CU_ASSERT_STRING_EQUAL(req->to[0], "MX-DIF");
    CU_ASSERT_EQUAL(req->has_correlation, 1);
    CU_ASSERT_EQUAL(req->correlation_id[15], 1);
    CU_ASSERT_EQUAL(req->respond_by_ms, 1893456000000LL);
    CU_ASSERT(req->packed_len > 0);
    pt_send_t msg;
    pt_submit_req_to_send(req, &msg);
    CU_ASSERT_STRING_EQUAL(msg.case_token, "CASE-1");
    CU_ASSERT_PTR_EQUAL(msg.body, req->packed);
    CU_ASSERT_PTR_NOT_NULL(msg.consent);
    pt_submit_req_destroy(&req);
    CU_ASSERT_PTR_NULL(req);
    pt_submit_req_destroy(&req);
}

static void test_submit_consent(void)
{
    const char *with = "{\"type\":\"referral.request\",\"to\":[\"GT-PGN\"],\"case_token\":\"C\","
                       "\"consent\":{\"consent_for_services\":true,\"legal_basis\":"
                       "\"LEGAL_BASIS_VITAL_INTERESTS\"},\"body\":{\"referral_id\":\"R\"}}";
    pt_submit_req_t *req = NULL;
    pt_problem_t p;
    CU_ASSERT_EQUAL_FATAL(pt_submit_req_parse(with, strlen(with), &req, &p), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req->consent_given);
    CU_ASSERT_EQUAL(req->consent_given->consent_for_services, 1);
    CU_ASSERT_EQUAL(req->consent_given->legal_basis, PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS);
    pt_submit_req_destroy(&req);
    const pt_type_t *t = pt_types_find("referral.request");
    json_t *body = json_loads(t->example_json, 0, NULL);
    json_t *o = json_pack("{s:s, s:[s], s:s, s:o}", "type", "referral.request", "to", "GT-PGN",
                          "case_token", "C", "body", body);
    char *text = json_dumps(o, 0);
    CU_ASSERT_EQUAL_FATAL(pt_submit_req_parse(text, strlen(text), &req, &p), 0);
    CU_ASSERT_PTR_NULL(req->consent_given);
    CU_ASSERT_EQUAL(req->consent_derived.consent_for_services, 1);
    CU_ASSERT_EQUAL(req->consent_derived.disclosure_other_orgs, 1);
    pt_submit_req_destroy(&req);
    free(text);
    json_decref(o);
}

static const struct {
    const char *body;
    const char *type;
    const char *path;
} s_bad[] = {
    {"{", "invalid-json", ""},
    {"", "invalid-json", ""},
    {"[1]", "wrong-type", ""},
    {"{\"type\":\"referral.accept\",\"type\":\"x\"}", "invalid-json", ""},
    {"{\"typo\":1}", "unknown-field", "typo"},
    {"{\"type\":5}", "wrong-type", "type"},
    {"{\"type\":\"referral.accept\",\"to\":\"MX-DIF\"}", "wrong-type", "to"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\",3]}", "wrong-type", "to[1]"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"body\":{}}", "missing-field",
     "case_token"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\"}", "missing-field",
     "body"},
    {"{\"type\":\"no.such\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\",\"body\":{}}",
     "invalid-value", "type"},
    {"{\"type\":\"referral.accept\",\"case_token\":\"C\",\"body\":{}}", "missing-field", "to"},
    {"{\"type\":\"referral.accept\",\"to\":[],\"case_token\":\"C\",\"body\":{}}", "invalid-value",
     "to"},
    {"{\"type\":\"referral.accept\",\"to\":[\"mx\"],\"case_token\":\"C\",\"body\":{}}",
     "invalid-value", "to[0]"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\",\"MX-DIF\"],\"case_token\":\"C\","
     "\"body\":{}}", "invalid-value", "to[1]"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"\",\"body\":{}}",
     "invalid-value", "case_token"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\",\"purpose\":\"fun\","
     "\"body\":{}}", "invalid-value", "purpose"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"correlation_id\":\"nope\",\"body\":{}}", "invalid-value", "correlation_id"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"respond_by\":\"tomorrow\",\"body\":{}}", "invalid-value", "respond_by"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"body\":{\"nope\":1}}", "unknown-field", "body.nope"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"body\":{\"by\":{\"organisation\":7}}}", "wrong-type", "body.by.organisation"},
    {"{\"type\":\"referral.request\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"body\":{\"child\":{\"date_of_birth\":{\"month\":\"x\"}}}}", "wrong-type",
     "body.child.date_of_birth.month"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"consent\":{\"consent_for_services\":\"yes\"},\"body\":{}}", "wrong-type",
     "consent.consent_for_services"},
    {"{\"type\":\"referral.accept\",\"to\":[\"MX-DIF\"],\"case_token\":\"C\","
     "\"expires_in\":\"-1d\",\"body\":{}}", "invalid-value", "expires_in"},
};

static void test_submit_bad(void)
{
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        pt_submit_req_t *req = NULL;
        pt_problem_t p;
        int rc = pt_submit_req_parse(s_bad[i].body, strlen(s_bad[i].body), &req, &p);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(req);
        if (rc != -1)
            continue;
        CU_ASSERT_EQUAL(p.status, 400);
        if (strcmp(p.type, s_bad[i].type) != 0 || strcmp(p.path, s_bad[i].path) != 0)
            fprintf(stderr, "\n  case %zu: got %s at '%s' (%s)\n", i, p.type, p.path, p.detail);
        CU_ASSERT_STRING_EQUAL(p.type, s_bad[i].type);
        CU_ASSERT_STRING_EQUAL(p.path, s_bad[i].path);
    }
}

static void test_problem_json(void)
{
    pt_problem_t p;
    pt_problem_set(&p, 422, "rejected", "", "no agreement");
    p.reject_code = 9;
    snprintf(p.reject_name, sizeof p.reject_name, "REJECT_NO_AGREEMENT");
    json_t *extra = json_pack("{s:s}", "id", "X");
    json_t *o = pt_problem_json(&p, extra);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "type")),
                           "https://puente.example/problems/rejected");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "status")), 422);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "reject_code")), 9);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "title")),
                           "The broker refused the message");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "id")), "X");
    json_decref(o);
    json_decref(extra);
    /* Every type the bridge sends has a title of its own (these two fell back on
       the type name). */
    pt_problem_set(&p, 400, "invalid-header", "Idempotency-Key", "bad key");
    CU_ASSERT_STRING_EQUAL(p.title, "Header is not valid");
    pt_problem_set(&p, 409, "idempotency-key-reused", "Idempotency-Key", "other body");
    CU_ASSERT_STRING_EQUAL(p.title, "Idempotency-Key already used with another body");
}

/* Found by fuzz_bridge: a 405 echoing a method of invalid UTF-8 (or a detail cut
   inside a multi-byte character) made jansson refuse the whole document, and the
   bridge answered with a bare {"status":503} under another HTTP status. */
static void test_problem_invalid_utf8(void)
{
    pt_problem_t p;
    pt_problem_set(&p, 405, "method-not-allowed", "a\xc3", "%s is not allowed here",
                   "P\xff\xfeST\xe2\x82");
    CU_ASSERT_STRING_EQUAL(p.detail, "P??ST?? is not allowed here");
    CU_ASSERT_STRING_EQUAL(p.path, "a?");
    json_t *o = pt_problem_json(&p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "detail")),
                           "P??ST?? is not allowed here");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "status")), 405);
    json_decref(o);
    /* Valid multi-byte text is kept; one cut by the detail's size loses only the
       cut character. Overlong forms and surrogates are not UTF-8. */
    char field[400] = "";
    for (int i = 0; i < 199; i++)
        strcat(field, "\xc3\xa9"); /* é */
    pt_problem_set(&p, 400, "unknown-field", "", "xy%s", field);
    CU_ASSERT_EQUAL(strlen(p.detail), sizeof p.detail - 1);
    CU_ASSERT_EQUAL(p.detail[sizeof p.detail - 2], '?');
    CU_ASSERT_EQUAL(memcmp(p.detail, "xy\xc3\xa9\xc3\xa9", 6), 0);
    o = pt_problem_json(&p, NULL);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_decref(o);
    pt_problem_set(&p, 400, "unknown-field", "",
                   "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xf0\x9f\x98\x80");
    CU_ASSERT_STRING_EQUAL(p.detail, "??|???|????|\xf0\x9f\x98\x80");
}

static void test_inbox_query(void)
{
    int64_t since;
    int limit;
    pt_problem_t p;
    CU_ASSERT_EQUAL(pt_inbox_query_parse(NULL, NULL, &since, &limit, &p), 0);
    CU_ASSERT_EQUAL(since, 0);
    CU_ASSERT_EQUAL(limit, PT_BRIDGE_LIST_DEFAULT);
    CU_ASSERT_EQUAL(pt_inbox_query_parse("17", "3", &since, &limit, &p), 0);
    CU_ASSERT_EQUAL(since, 17);
    CU_ASSERT_EQUAL(limit, 3);
    CU_ASSERT_EQUAL(pt_inbox_query_parse("-1", NULL, &since, &limit, &p), -1);
    CU_ASSERT_STRING_EQUAL(p.path, "since");
    CU_ASSERT_EQUAL(pt_inbox_query_parse(NULL, "0", &since, &limit, &p), -1);
    CU_ASSERT_EQUAL(pt_inbox_query_parse(NULL, "501", &since, &limit, &p), -1);
    CU_ASSERT_STRING_EQUAL(p.type, "invalid-query");
}

static void test_signature(void)
{
    char sig[128];
    const char *body = "{\"a\":1}";
    CU_ASSERT_EQUAL_FATAL(pt_bridge_sign("whsec-test", 10, 1700000000, body, strlen(body), sig,
                                         sizeof sig), 0);
    /* Python: hmac.new(b'whsec-test', b'1700000000.{"a":1}', sha256).hexdigest() */
    CU_ASSERT_STRING_EQUAL(sig, "t=1700000000,v1=fed7a1a6c799a6367d73724d76bc70c16678908a32a87"
                                "9cd1ded6565ac05cece");
    CU_ASSERT_EQUAL(pt_bridge_verify("whsec-test", 10, sig, body, strlen(body), 1700000100, 300), 0);
    CU_ASSERT_EQUAL(pt_bridge_verify("whsec-test", 10, sig, body, strlen(body), 1700001000, 300), -1);
    CU_ASSERT_EQUAL(pt_bridge_verify("whsec-tesT", 10, sig, body, strlen(body), 1700000000, 300), -1);
    CU_ASSERT_EQUAL(pt_bridge_verify("whsec-test", 10, sig, "{\"a\":2}", 7, 1700000000, 300), -1);
    CU_ASSERT_EQUAL(pt_bridge_verify("whsec-test", 10, "t=1,v1=zz", body, 7, 1, 300), -1);
}

static void test_bearer(void)
{
    CU_ASSERT_EQUAL(pt_bridge_bearer_ok("Bearer s3cret-token-0123456", "s3cret-token-0123456"), 1);
    CU_ASSERT_EQUAL(pt_bridge_bearer_ok("Bearer s3cret-token-012345", "s3cret-token-0123456"), 0);
    CU_ASSERT_EQUAL(pt_bridge_bearer_ok("bearer s3cret-token-0123456", "s3cret-token-0123456"), 0);
    CU_ASSERT_EQUAL(pt_bridge_bearer_ok(NULL, "s3cret-token-0123456"), 0);
    CU_ASSERT_EQUAL(pt_bridge_bearer_ok("Bearer ", ""), 0);
}

static const char *s_env(const char *name)
{
    if (strcmp(name, "PUENTE_BRIDGE_ORG") == 0)
        return "GT-PGN";
    if (strcmp(name, "PUENTE_BRIDGE_LISTEN") == 0)
        return "127.0.0.1:9999";
    return NULL;
}

static void test_config(void)
{
    char dir[] = "/tmp/test_bridge_cfgXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char token[600];
    snprintf(token, sizeof token, "%s/token", dir);
    FILE *f = fopen(token, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("0123456789abcdef-token\n", f);
    fclose(f);
    chmod(token, 0600);
    pt_bridge_config_t cfg;
    char err[256];
    char *argv1[] = {"puente-bridge", "--org", "MX-DIF", "--token-file", token, "--listen",
                     "127.0.0.1:8099", "--state", dir, NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 9, argv1, s_env, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.org, "MX-DIF");            /* the flag beats the environment */
    CU_ASSERT_EQUAL(cfg.listen_port, 8099);
    CU_ASSERT_STRING_EQUAL(cfg.token, "0123456789abcdef-token");
    CU_ASSERT_EQUAL(cfg.max_body, PT_BRIDGE_DEFAULT_MAX_BODY);
    char *argv2[] = {"puente-bridge", "--token-file", token, NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 3, argv2, s_env, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.org, "GT-PGN");
    CU_ASSERT_EQUAL(cfg.listen_port, 9999);
    CU_ASSERT_STRING_EQUAL(cfg.state_dir, "var/bridge/GT-PGN");
    chmod(token, 0644);
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 3, argv2, s_env, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
    chmod(token, 0600);
    char *argv3[] = {"puente-bridge", "--token-file", token, "--webhook", "http://x/", NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 5, argv3, s_env, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "webhook-secret-file"));
    char *argv4[] = {"puente-bridge", "--token-file", token, "--listen", "nope", NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 5, argv4, s_env, err, sizeof err), -1);
    /* Defaults of the webhook retries; IPv6 in brackets. */
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 9, argv1, s_env, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.webhook_max_attempts, 12);
    CU_ASSERT_EQUAL(cfg.webhook_backoff_ms, 1000);
    CU_ASSERT_EQUAL(cfg.webhook_max_backoff_ms, 60000);
    char *argv5[] = {"puente-bridge", "--token-file",           token, "--listen",
                     "[::1]:8098",    "--webhook-max-attempts", "4",   "--webhook-backoff",
                     "500ms",         "--webhook-max-backoff",  "10s", NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 11, argv5, s_env, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.listen_host, "::1");
    CU_ASSERT_EQUAL(cfg.listen_port, 8098);
    CU_ASSERT_EQUAL(cfg.webhook_max_attempts, 4);
    CU_ASSERT_EQUAL(cfg.webhook_backoff_ms, 500);
    CU_ASSERT_EQUAL(cfg.webhook_max_backoff_ms, 10000);
    char *argv6[] = {"puente-bridge",         "--token-file", token, "--webhook-backoff", "2m",
                     "--webhook-max-backoff", "1m",           NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 7, argv6, s_env, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "webhook_max_backoff"));
    char *argv7[] = {"puente-bridge", "--token-file", token, "--listen", "[::1:8098", NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 5, argv7, s_env, err, sizeof err), -1);
    char *argv8[] = {"puente-bridge", "--token-file", token, "--webhook-max-attempts", "0", NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 5, argv8, s_env, err, sizeof err), -1);
    /* The same keys from the [bridge] section of an INI file. */
    char ini[600];
    snprintf(ini, sizeof ini, "%s/puente.conf", dir);
    f = fopen(ini, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("[bridge]\nlisten = [::1]:8097\nwebhook_max_attempts = 3\nwebhook_backoff = 250ms\n", f);
    /* (the environment's PUENTE_BRIDGE_LISTEN beats the file's listen) */
    fclose(f);
    char *argv9[] = {"puente-bridge", "--token-file", token, "--config", ini, NULL};
    CU_ASSERT_EQUAL(pt_bridge_config_parse(&cfg, 5, argv9, s_env, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.listen_port, 9999);
    CU_ASSERT_EQUAL(cfg.webhook_max_attempts, 3);
    CU_ASSERT_EQUAL(cfg.webhook_backoff_ms, 250);
    unlink(ini);
    unlink(token);
    rmdir(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("bridge_http", NULL, NULL);
    CU_add_test(s, "routes", test_routes);
    CU_add_test(s, "openapi.json lists exactly the served routes", test_openapi_matches_routes);
    CU_add_test(s, "problem types: code, table and openapi.json agree",
                test_problem_types_match_openapi);
    CU_add_test(s, "Prefer: wait=N", test_prefer_wait);
    CU_add_test(s, "valid submit request", test_submit_valid);
    CU_add_test(s, "consent given or derived from the body", test_submit_consent);
    CU_add_test(s, "bad submit requests: problem type and path", test_submit_bad);
    CU_add_test(s, "problem+json", test_problem_json);
    CU_add_test(s, "problem+json from invalid UTF-8", test_problem_invalid_utf8);
    CU_add_test(s, "inbox query", test_inbox_query);
    CU_add_test(s, "webhook signature", test_signature);
    CU_add_test(s, "bearer token", test_bearer);
    CU_add_test(s, "options from flags and environment", test_config);
    return pt_cu_main();
}

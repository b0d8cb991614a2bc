/*  bridge_http — routes, validation, problems, signatures and JSON shapes of
    puente-bridge (see bridge_http.h). Pure functions, no I/O. */
#include "bridge_http.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_json.h"

/* --- routes --------------------------------------------------------------- */

static const pt_route_entry_t s_routes[] = {
    {"GET", "/v1/openapi.json", PT_ROUTE_OPENAPI},
    {"POST", "/v1/messages", PT_ROUTE_SUBMIT},
    {"GET", "/v1/messages", PT_ROUTE_INBOX},
    {"GET", "/v1/messages/{id}", PT_ROUTE_STATUS},
    {"POST", "/v1/messages/{id}/ack", PT_ROUTE_ACK},
    {"GET", "/v1/cases/{token}/trail", PT_ROUTE_TRAIL},
};

const pt_route_entry_t *pt_bridge_routes(size_t *n)
{
    *n = sizeof s_routes / sizeof s_routes[0];
    return s_routes;
}

/* Matches a path against a template segment by segment; a "{x}" segment takes
   any non-empty segment of printable ASCII (no '/'), copied into param. */
static int s_template_match(const char *tpl, const char *path, char *param, size_t param_len)
{
    while (*tpl && *path) {
        if (*tpl == '{') {
            const char *tend = strchr(tpl, '}');
            const char *pend = strchr(path, '/');
            size_t n = pend ? (size_t) (pend - path) : strlen(path);
            if (!tend || n == 0 || n >= param_len)
                return 0;
            for (size_t i = 0; i < n; i++)
                if ((unsigned char) path[i] <= 0x20 || (unsigned char) path[i] >= 0x7f)
                    return 0;
            memcpy(param, path, n);
            param[n] = '\0';
            tpl = tend + 1;
            path += n;
            continue;
        }
        if (*tpl != *path)
            return 0;
        tpl++;
        path++;
    }
    return *tpl == '\0' && *path == '\0';
}

pt_route_t pt_bridge_route_match(const char *method, const char *path, char *param,
                                 size_t param_len, char *allow, size_t allow_len)
{
    char scratch[256];
    int path_known = 0;
    if (allow && allow_len)
        allow[0] = '\0';
    if (!method || !path)
        return PT_ROUTE_NONE;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        scratch[0] = '\0';
        if (!s_template_match(s_routes[i].path, path, scratch, sizeof scratch))
            continue;
        path_known = 1;
        if (allow && allow_len) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", s_routes[i].method);
        }
        if (strcmp(method, s_routes[i].method) == 0) {
            if (strlen(scratch) >= param_len && strchr(s_routes[i].path, '{'))
                return PT_ROUTE_NONE;
            if (param && param_len)
                snprintf(param, param_len, "%s", strchr(s_routes[i].path, '{') ? scratch : "");
            return s_routes[i].route;
        }
    }
    return path_known ? PT_ROUTE_BAD_METHOD : PT_ROUTE_NONE;
}

/* --- problems --------------------------------------------------------------- */

/* THE list of problem types: pt_problem_set emits nothing else, and
   openapi.json's Problem.type enum must name exactly these
   (tests/unit/test_bridge_http.c checks both directions). */
static const pt_problem_type_t s_problem_types[] = {
    {"invalid-json", "Request body is not valid JSON"},
    {"unknown-field", "Unknown field"},
    {"wrong-type", "Field has the wrong type"},
    {"missing-field", "Required field missing"},
    {"invalid-value", "Field value is not valid"},
    {"invalid-query", "Query parameter is not valid"},
    {"invalid-header", "Header is not valid"},
    {"idempotency-key-reused", "Idempotency-Key already used with another body"},
    {"body-too-large", "Request body too large"},
    {"unsupported-media-type", "Content-Type must be application/json"},
    {"unauthorized", "Missing or invalid bearer token"},
    {"not-found", "No such resource"},
    {"method-not-allowed", "Method not allowed on this resource"},
    {"message-not-found", "No such message"},
    {"rejected", "The broker refused the message"},
    {"refused-locally", "The message cannot be sent as given"},
    {"broker-unreachable", "The broker cannot be reached"},
    {"storage-unavailable", "The bridge's local storage failed"},
    {"internal", "Internal error"},
};

const pt_problem_type_t *pt_bridge_problem_types(size_t *n)
{
    *n = sizeof s_problem_types / sizeof s_problem_types[0];
    return s_problem_types;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if none starts there
   (overlong forms, surrogates and code points above U+10FFFF are invalid, as
   for jansson). */
static size_t s_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = 0;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n == 0 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Problem details and paths echo client bytes (a method, a field name), and
   snprintf may cut a multi-byte character in two; jansson refuses invalid
   UTF-8, which would lose the whole document. Each byte that starts no valid
   sequence becomes '?'. In place, O(n). */
static void s_utf8_clean(char *text)
{
    unsigned char *s = (unsigned char *) text;
    while (*s) {
        size_t n = s_utf8_len(s);
        if (n == 0) {
            *s++ = '?';
            continue;
        }
        s += n;
    }
}

void pt_problem_set(pt_problem_t *p, int status, const char *type, const char *path,
                    const char *fmt, ...)
{
    memset(p, 0, sizeof *p);
    p->status = status;
    const pt_problem_type_t *known = NULL;
    for (size_t i = 0; i < sizeof s_problem_types / sizeof s_problem_types[0]; i++)
        if (strcmp(s_problem_types[i].type, type) == 0)
            known = &s_problem_types[i];
    /* A type missing from the table is a programmer error; without asserts the
       client still gets a documented type. */
    assert(known);
    if (!known)
        known = &s_problem_types[sizeof s_problem_types / sizeof s_problem_types[0] - 1];
    snprintf(p->type, sizeof p->type, "%s", known->type);
    snprintf(p->title, sizeof p->title, "%s", known->title);
    if (path)
        snprintf(p->path, sizeof p->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    s_utf8_clean(p->path);
    s_utf8_clean(p->detail);
}

json_t *pt_problem_json(const pt_problem_t *p, const json_t *extra)
{
    char uri[128];
    snprintf(uri, sizeof uri, PT_BRIDGE_PROBLEM_BASE "%s", p->type);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "type", uri, "title", p->title, "status",
                          p->status, "detail", p->detail);
    if (!o)
        return NULL;
    if (p->path[0])
        json_object_set_new(o, "path", json_string(p->path));
    if (p->reject_code) {
        json_object_set_new(o, "reject_code", json_integer(p->reject_code));
        json_object_set_new(o, "reject_code_name", json_string(p->reject_name));
    }
    if (extra)
        json_object_update(o, (json_t *) extra);
    return o;
}

int pt_bridge_prefer_wait(const char *prefer)
{
    const char *p = prefer;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, "wait", 4) == 0) {
            const char *q = p + 4;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '=') {
                q++;
                while (*q == ' ' || *q == '\t')
                    q++;
                int quoted = *q == '"';
                q += quoted;
                long n = 0;
                int digits = 0;
                while (*q >= '0' && *q <= '9') { /* saturates: only the cap matters */
                    n = n > 1000000 ? n : n * 10 + (*q - '0');
                    q++;
                    digits++;
                }
                if (quoted && *q == '"')
                    q++;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (digits > 0 && (*q == '\0' || *q == ',' || *q == ';'))
                    return n > PT_BRIDGE_PREFER_WAIT_MAX ? PT_BRIDGE_PREFER_WAIT_MAX : (int)n;
            }
        }
        p = strchr(p, ',');
    }
    return 0;
}

/* --- POST /v1/messages ------------------------------------------------------ */

typedef enum { S_STR, S_STRV, S_OBJ } s_kind_t;

static const struct {
    const char *name;
    s_kind_t kind;
} s_fields[] = {
    {"type", S_STR},          {"to", S_STRV},           {"case_token", S_STR},
    {"purpose", S_STR},       {"agreement_id", S_STR},  {"correlation_id", S_STR},
    {"causation_id", S_STR},  {"consent", S_OBJ},       {"service_type", S_STR},
    {"best_interests_ref", S_STR}, {"reason_code", S_STR}, {"respond_by", S_STR},
    {"expires_in", S_STR},    {"follow_up_due", S_STR}, {"body", S_OBJ},
};

static const char *s_kind_name(s_kind_t k)
{
    return k == S_STR ? "string" : k == S_STRV ? "array of strings" : "object";
}

/* A pt_json error is "path: reason" or just "reason" at the top level. */
static void s_json_problem(pt_problem_t *p, const char *prefix, const char *err)
{
    static const char *const reasons[] = {"expected", "unknown", "integer", "number", "invalid",
                                          "null", "nesting", "field given", "another member",
                                          "out of memory", "unsupported", "input larger"};
    char path[160];
    const char *reason = err;
    snprintf(path, sizeof path, "%s", prefix);
    int has_path = 1;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strncmp(err, reasons[i], strlen(reasons[i])) == 0)
            has_path = 0;
    const char *sep = has_path ? strstr(err, ": ") : NULL;
    if (sep) {
        snprintf(path, sizeof path, "%s.%.*s", prefix, (int) (sep - err), err);
        reason = sep + 2;
    }
    const char *type = "invalid-value";
    if (strncmp(reason, "unknown field \"", 15) == 0) {
        type = "unknown-field";
        const char *name = reason + 15, *end = strchr(name, '"');
        size_t used = strlen(path);
        if (end)
            snprintf(path + used, sizeof path - used, ".%.*s", (int) (end - name), name);
    }
    else if (strncmp(reason, "expected", 8) == 0)
        type = "wrong-type";
    pt_problem_set(p, 400, type, path, "%s: %s", path, reason);
}

static char *s_dup_field(json_t *root, const char *name)
{
    json_t *v = json_object_get(root, name);
    return v ? strdup(json_string_value(v)) : NULL;
}

void pt_submit_req_destroy(pt_submit_req_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_submit_req_t *self = *self_p;
    for (size_t i = 0; i < self->n_to; i++)
        free(self->to[i]);
    free(self->to);
    free(self->case_token);
    free(self->purpose);
    free(self->agreement_id);
    free(self->service_type);
    free(self->best_interests_ref);
    free(self->reason_code);
    if (self->body)
        protobuf_c_message_free_unpacked(self->body, NULL);
    if (self->consent_given)
        protobuf_c_message_free_unpacked(&self->consent_given->base, NULL);
    free(self->packed);
    free(self);
    *self_p = NULL;
}

/* Parses a nested object member with the proto3 JSON mapping into desc. */
static int s_parse_nested(json_t *value, const char *name, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out, pt_problem_t *problem)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        pt_problem_set(problem, 400, "invalid-value", name, "%s: cannot be re-encoded", name);
        return -1;
    }
    char err[PT_JSON_ERR_BYTES] = "";
    int rc = pt_json_to_message(desc, text, strlen(text), out, err, sizeof err);
    free(text);
    if (rc != 0)
        s_json_problem(problem, name, err);
    return rc;
}

static int s_uuid_field(json_t *root, const char *name, uint8_t out[PT_UUID_BYTES], int *has,
                        pt_problem_t *problem)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (pt_uuid_parse(json_string_value(v), out) != 0) {
        pt_problem_set(problem, 400, "invalid-value", name, "%s: expected a UUID", name);
        return -1;
    }
    *has = 1;
    return 0;
}

static int s_time_field(json_t *root, const char *name, int64_t *out, pt_problem_t *problem)
{
    json_t *v = json_object_get(root, name);
    if (v && puente_time_parse(json_string_value(v), out) != 0) {
        pt_problem_set(problem, 400, "invalid-value", name,
                       "%s: expected ISO 8601 time, e.g. 2025-06-30T17:00:00Z", name);
        return -1;
    }
    return 0;
}

/* Plain printable text without control characters, 1..max bytes. */
static int s_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int pt_submit_req_parse(const char *text, size_t len, pt_submit_req_t **out, pt_problem_t *problem)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    pt_submit_req_t *req = NULL;
    if (!root) {
        pt_problem_set(problem, 400, "invalid-json", "", "line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        pt_problem_set(problem, 400, "wrong-type", "", "the request body must be a JSON object");
        goto error;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        size_t i = 0, n = sizeof s_fields / sizeof s_fields[0];
        while (i < n && strcmp(s_fields[i].name, key) != 0)
            i++;
        if (i == n) {
            char shown[64];
            size_t k = 0;
            for (; key[k] && k < sizeof shown - 1; k++)
                shown[k] = ((unsigned char) key[k] >= 0x20 && (unsigned char) key[k] < 0x7f)
                               ? key[k] : '?';
            shown[k] = '\0';
            pt_problem_set(problem, 400, "unknown-field", shown, "unknown field \"%s\"", shown);
            goto error;
        }
        int ok = s_fields[i].kind == S_STR    ? json_is_string(value)
                 : s_fields[i].kind == S_OBJ ? json_is_object(value)
                                             : json_is_array(value);
        if (!ok) {
            pt_problem_set(problem, 400, "wrong-type", key, "%s: expected %s", key,
                           s_kind_name(s_fields[i].kind));
            goto error;
        }
        if (s_fields[i].kind == S_STRV) {
            size_t j;
            json_t *item;
            json_array_foreach(value, j, item) {
                if (!json_is_string(item)) {
                    char path[64];
                    snprintf(path, sizeof path, "%s[%zu]", key, j);
                    pt_problem_set(problem, 400, "wrong-type", path, "%s: expected string", path);
                    goto error;
                }
            }
        }
    }
    static const char *const required[] = {"type", "case_token", "body"};
    for (size_t i = 0; i < 3; i++)
        if (!json_object_get(root, required[i])) {
            pt_problem_set(problem, 400, "missing-field", required[i], "%s is required",
                           required[i]);
            goto error;
        }
    req = calloc(1, sizeof *req);
    if (!req) {
        pt_problem_set(problem, 503, "internal", "", "out of memory");
        goto error;
    }
    const char *type_name = json_string_value(json_object_get(root, "type"));
    req->type = pt_types_find(type_name);
    if (!req->type) {
        pt_problem_set(problem, 400, "invalid-value", "type",
                       "type: unknown message type (GET /v1/openapi.json lists them)");
        goto error;
    }
    json_t *to = json_object_get(root, "to");
    size_t n_to = to ? json_array_size(to) : 0;
    /* Withdrawal and erasure may leave "to" out: the SDK asks the broker. */
    if (n_to == 0 && strcmp(req->type->family, "consent") != 0) {
        pt_problem_set(problem, 400, to ? "invalid-value" : "missing-field", "to",
                       "to: at least one recipient organisation is required");
        goto error;
    }
    if (n_to > PT_BRIDGE_MAX_RECIPIENTS) {
        pt_problem_set(problem, 400, "invalid-value", "to", "to: at most %d recipients",
                       PT_BRIDGE_MAX_RECIPIENTS);
        goto error;
    }
    req->to = calloc(n_to ? n_to : 1, sizeof *req->to);
    if (!req->to) {
        pt_problem_set(problem, 503, "internal", "", "out of memory");
        goto error;
    }
    for (size_t j = 0; j < n_to; j++) {
        const char *org = json_string_value(json_array_get(to, j));
        char path[32];
        snprintf(path, sizeof path, "to[%zu]", j);
        if (!pt_org_id_valid(org)) {
            pt_problem_set(problem, 400, "invalid-value", path,
                           "%s: not an organisation id (CC-NAME)", path);
            goto error;
        }
        for (size_t k = 0; k < j; k++)
            if (strcmp(req->to[k], org) == 0) {
                pt_problem_set(problem, 400, "invalid-value", path, "%s: listed twice", path);
                goto error;
            }
        req->to[j] = strdup(org);
        req->n_to = j + 1;
        if (!req->to[j]) {
            pt_problem_set(problem, 503, "internal", "", "out of memory");
            goto error;
        }
    }
    req->case_token = s_dup_field(root, "case_token");
    if (!req->case_token || !s_text_ok(req->case_token, PT_BRIDGE_MAX_TOKEN)
        || strchr(req->case_token, '/')) {
        pt_problem_set(problem, 400, "invalid-value", "case_token",
                       "case_token: 1 to %d printable characters without '/'", PT_BRIDGE_MAX_TOKEN);
        goto error;
    }
    req->purpose = s_dup_field(root, "purpose");
    if (req->purpose && !pt_purpose_valid(req->purpose)) {
        pt_problem_set(problem, 400, "invalid-value", "purpose", "purpose: unknown purpose");
        goto error;
    }
    static const char *const texts[] = {"agreement_id", "service_type", "best_interests_ref",
                                        "reason_code"};
    char **slots[] = {&req->agreement_id, &req->service_type, &req->best_interests_ref,
                      &req->reason_code};
    for (size_t i = 0; i < 4; i++) {
        *slots[i] = s_dup_field(root, texts[i]);
        if (*slots[i] && !s_text_ok(*slots[i], 256)) {
            pt_problem_set(problem, 400, "invalid-value", texts[i],
                           "%s: 1 to 256 printable characters", texts[i]);
            goto error;
        }
    }
    if (s_uuid_field(root, "correlation_id", req->correlation_id, &req->has_correlation, problem)
        || s_uuid_field(root, "causation_id", req->causation_id, &req->has_causation, problem)
        || s_time_field(root, "respond_by", &req->respond_by_ms, problem)
        || s_time_field(root, "follow_up_due", &req->follow_up_due_ms, problem))
        goto error;
    json_t *expires = json_object_get(root, "expires_in");
    if (expires && (puente_duration_parse(json_string_value(expires), &req->expires_in_ms) != 0
                    || req->expires_in_ms <= 0)) {
        pt_problem_set(problem, 400, "invalid-value", "expires_in",
                       "expires_in: expected a duration such as 7d or 12h");
        goto error;
    }
    if (s_parse_nested(json_object_get(root, "body"), "body", req->type->descriptor, &req->body,
                       problem) != 0)
        goto error;
    json_t *consent = json_object_get(root, "consent");
    if (consent) {
        ProtobufCMessage *cm = NULL;
        if (s_parse_nested(consent, "consent", &puente__v1__consent_summary__descriptor, &cm,
                           problem) != 0)
            goto error;
        req->consent_given = (Puente__V1__ConsentSummary *) cm;
    }
    else
        puente_consent_derive(req->body, &req->consent_derived);
    req->packed_len = protobuf_c_message_get_packed_size(req->body);
    req->packed = malloc(req->packed_len ? req->packed_len : 1);
    if (!req->packed) {
        pt_problem_set(problem, 503, "internal", "", "out of memory");
        goto error;
    }
    protobuf_c_message_pack(req->body, req->packed);
    json_decref(root);
    *out = req;
    return 0;
error:
    pt_submit_req_destroy(&req);
    json_decref(root);
    return -1;
}

void pt_submit_req_to_send(const pt_submit_req_t *req, pt_send_t *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->message_type = req->type->name;
    msg->recipients = (const char *const *) req->to;
    msg->n_recipients = req->n_to;
    msg->case_token = req->case_token;
    msg->purpose = req->purpose;
    msg->agreement_id = req->agreement_id;
    msg->correlation_id = req->has_correlation ? req->correlation_id : NULL;
    msg->causation_id = req->has_causation ? req->causation_id : NULL;
    msg->expires_in_ms = req->expires_in_ms;
    msg->respond_by_ms = req->respond_by_ms;
    msg->consent = req->consent_given ? req->consent_given : &req->consent_derived;
    msg->service_type = req->service_type;
    msg->best_interests_ref = req->best_interests_ref;
    msg->reason_code = req->reason_code;
    msg->body = req->packed;
    msg->body_len = req->packed_len;
    msg->follow_up_due_ms = req->follow_up_due_ms;
}

/* --- GET /v1/messages query -------------------------------------------------- */

static int s_int_param(const char *text, long long min, long long max, long long *out)
{
    if (!text || !*text || strlen(text) > 18)
        return -1;
    long long v = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        v = v * 10 + (*c - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int pt_inbox_query_parse(const char *since, const char *limit, int64_t *since_out, int *limit_out,
                         pt_problem_t *problem)
{
    long long s = 0, l = PT_BRIDGE_LIST_DEFAULT;
    if (since && s_int_param(since, 0, 999999999999999999LL, &s) != 0) {
        pt_problem_set(problem, 400, "invalid-query", "since",
                       "since: expected a cursor (next_cursor of the previous page)");
        return -1;
    }
    if (limit && s_int_param(limit, 1, PT_BRIDGE_LIST_MAX, &l) != 0) {
        pt_problem_set(problem, 400, "invalid-query", "limit", "limit: expected 1 to %d",
                       PT_BRIDGE_LIST_MAX);
        return -1;
    }
    *since_out = (int64_t) s;
    *limit_out = (int) l;
    return 0;
}

/* --- signatures and tokens ---------------------------------------------------- */

static int s_hmac(const char *key, size_t key_len, const char *prefix, const char *body,
                  size_t body_len, unsigned char mac[32])
{
    int rc = -1;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    if (!ctx || !EVP_MAC_init(ctx, (const unsigned char *) key, key_len, params)
        || !EVP_MAC_update(ctx, (const unsigned char *) prefix, strlen(prefix))
        || !EVP_MAC_update(ctx, (const unsigned char *) body, body_len)
        || !EVP_MAC_final(ctx, mac, &out_len, 32) || out_len != 32)
        goto error;
    rc = 0;
error:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return rc;
}

int pt_bridge_sign(const char *key, size_t key_len, int64_t timestamp, const char *body,
                   size_t body_len, char *out, size_t out_len)
{
    char prefix[32];
    unsigned char mac[32];
    char hex[65];
    snprintf(prefix, sizeof prefix, "%lld.", (long long) timestamp);
    if (out_len < 96 || s_hmac(key, key_len, prefix, body ? body : "", body_len, mac) != 0)
        return -1;
    pt_hex(mac, 32, hex);
    snprintf(out, out_len, "t=%lld,v1=%s", (long long) timestamp, hex);
    return 0;
}

int pt_bridge_verify(const char *key, size_t key_len, const char *header, const char *body,
                     size_t body_len, int64_t now_s, int64_t tolerance_s)
{
    long long t = 0;
    char hex[65];
    int used = 0;
    if (!header || sscanf(header, "t=%18lld,v1=%64[0-9a-f]%n", &t, hex, &used) != 2
        || header[used] != '\0' || strlen(hex) != 64)
        return -1;
    if (t > now_s + tolerance_s || t < now_s - tolerance_s)
        return -1;
    char expect[128];
    if (pt_bridge_sign(key, key_len, t, body, body_len, expect, sizeof expect) != 0)
        return -1;
    const char *mine = strstr(expect, "v1=") + 3;
    return CRYPTO_memcmp(mine, hex, 64) == 0 ? 0 : -1;
}

int pt_bridge_bearer_ok(const char *header, const char *token)
{
    if (!header || !token || strncmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *given = header + 7;
    size_t n = strlen(token);
    if (strlen(given) != n || n == 0)
        return 0;
    return CRYPTO_memcmp(given, token, n) == 0;
}

/* --- JSON shapes ---------------------------------------------------------------- */

static void s_set_uuid(json_t *o, const char *name, const ProtobufCBinaryData *id)
{
    char text[PT_UUID_STR_BYTES];
    if (id->len != PT_UUID_BYTES)
        return;
    pt_uuid_format(id->data, text);
    json_object_set_new(o, name, json_string(text));
}

static void s_set_text(json_t *o, const char *name, const char *value)
{
    if (value && *value)
        json_object_set_new(o, name, json_string(value));
}

static void s_set_time(json_t *o, const char *name, int64_t ms)
{
    char at[40];
    if (ms <= 0)
        return;
    puente_time_format(ms, at, sizeof at);
    json_object_set_new(o, name, json_string(at));
}

json_t *pt_bridge_message_json(const Puente__V1__Header *h, const ProtobufCMessage *body)
{
    char *text = pt_json_from_message(body, 0);
    json_t *b = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    free(text);
    if (!b)
        return NULL;
    json_t *o = json_object();
    s_set_uuid(o, "id", &h->message_id);
    s_set_text(o, "type", h->message_type);
    s_set_text(o, "sender", h->sender);
    json_t *to = json_array();
    for (size_t i = 0; i < h->n_recipients; i++)
        json_array_append_new(to, json_string(h->recipients[i]));
    json_object_set_new(o, "to", to);
    s_set_text(o, "case_token", h->case_token);
    s_set_uuid(o, "correlation_id", &h->correlation_id);
    s_set_uuid(o, "causation_id", &h->causation_id);
    s_set_text(o, "purpose", h->purpose);
    s_set_text(o, "agreement_id", h->agreement_id);
    s_set_time(o, "created_at", h->created_at_ms);
    s_set_time(o, "expires_at", h->expires_at_ms);
    s_set_time(o, "respond_by", h->respond_by_ms);
    s_set_time(o, "follow_up_due", h->follow_up_due_ms);
    s_set_text(o, "service_type", h->service_type);
    s_set_text(o, "best_interests_ref", h->best_interests_ref);
    s_set_text(o, "reason_code", h->reason_code);
    if (h->consent) {
        char *ct = pt_json_from_message(&h->consent->base, 0);
        json_t *c = ct ? json_loads(ct, 0, NULL) : NULL;
        free(ct);
        if (c)
            json_object_set_new(o, "consent", c);
    }
    json_object_set_new(o, "body", b);
    return o;
}

json_t *pt_bridge_receipt_json(const pt_receipt_info_t *r)
{
    char mid[PT_UUID_STR_BYTES], cid[PT_UUID_STR_BYTES], at[40];
    char hsha[2 * PT_SHA256_BYTES + 1], ehash[2 * PT_SHA256_BYTES + 1];
    pt_uuid_format(r->message_id, mid);
    pt_uuid_format(r->correlation_id, cid);
    puente_time_format(r->stored_at_ms, at, sizeof at);
    pt_hex(r->header_sha256, PT_SHA256_BYTES, hsha);
    pt_hex(r->event_hash, PT_SHA256_BYTES, ehash);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "message_id", mid, "correlation_id",
                          cid, "stored_at", at, "header_sha256", hsha, "event_hash", ehash,
                          "duplicate", r->duplicate);
    if (o && r->leaf_index >= 0)
        json_object_set_new(o, "leaf_index", json_integer((json_int_t)r->leaf_index));
    return o;
}

json_t *pt_bridge_trail_json(const Puente__V1__TrailReply *t)
{
    json_t *events = json_array();
    for (size_t i = 0; i < t->n_events; i++) {
        const Puente__V1__TrailEvent *e = t->events[i];
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t) e->seq));
        s_set_text(o, "kind", e->kind);
        s_set_time(o, "at", e->at_ms);
        s_set_uuid(o, "message_id", &e->message_id);
        s_set_text(o, "message_type", e->message_type);
        s_set_text(o, "actor", e->actor);
        s_set_text(o, "counterparty", e->counterparty);
        if (e->hash.len == PT_SHA256_BYTES) {
            char hex[2 * PT_SHA256_BYTES + 1];
            pt_hex(e->hash.data, PT_SHA256_BYTES, hex);
            json_object_set_new(o, "hash", json_string(hex));
        }
        if (e->prev_hash.len == PT_SHA256_BYTES) {
            char hex[2 * PT_SHA256_BYTES + 1];
            pt_hex(e->prev_hash.data, PT_SHA256_BYTES, hex);
            json_object_set_new(o, "prev_hash", json_string(hex));
        }
        json_array_append_new(events, o);
    }
    json_t *pending = json_array();
    for (size_t i = 0; i < t->n_pending_acknowledgement; i++)
        json_array_append_new(pending, json_string(t->pending_acknowledgement[i]));
    return json_pack("{s:s, s:o, s:o}", "case_token", t->case_token ? t->case_token : "",
                     "events", events, "pending_acknowledgement", pending);
}

static int s_id_is(const ProtobufCBinaryData *id, const uint8_t want[PT_UUID_BYTES])
{
    return id->len == PT_UUID_BYTES && memcmp(id->data, want, PT_UUID_BYTES) == 0;
}

json_t *pt_bridge_status_from_trail(const Puente__V1__TrailReply *t, const char *message_id,
                                    char *const *recipients, size_t n_recipients,
                                    const char *const *related, size_t n_related,
                                    const char **overall, char *lifecycle_out,
                                    size_t lifecycle_len)
{
    static const char *const names[] = {"submitted", "delivered", "acknowledged"};
    uint8_t mid[PT_UUID_BYTES];
    int have_mid = pt_uuid_parse(message_id, mid) == 0;
    json_t *list = json_array();
    int least = 2;
    for (size_t r = 0; r < n_recipients; r++) {
        int level = 0;
        for (size_t i = 0; have_mid && i < t->n_events; i++) {
            const Puente__V1__TrailEvent *e = t->events[i];
            if (!s_id_is(&e->message_id, mid) || !e->actor || strcmp(e->actor, recipients[r]) != 0)
                continue;
            if (strcmp(e->kind, "acknowledged") == 0)
                level = 2;
            else if (strcmp(e->kind, "delivered") == 0 && level < 1)
                level = 1;
        }
        if (level < least)
            least = level;
        json_array_append_new(list, json_pack("{s:s, s:s}", "org", recipients[r], "status",
                                              names[level]));
    }
    if (n_recipients == 0)
        least = 0;
    *overall = names[least];
    if (lifecycle_out && lifecycle_len) {
        lifecycle_out[0] = '\0';
        for (size_t i = 0; i < t->n_events; i++) {
            const Puente__V1__TrailEvent *e = t->events[i];
            if (!e->kind || strncmp(e->kind, "state:", 6) != 0)
                continue;
            int ours = have_mid && s_id_is(&e->message_id, mid);
            for (size_t k = 0; !ours && k < n_related; k++) {
                uint8_t rid[PT_UUID_BYTES];
                ours = pt_uuid_parse(related[k], rid) == 0 && s_id_is(&e->message_id, rid);
            }
            if (ours)
                snprintf(lifecycle_out, lifecycle_len, "%s", e->kind + 6);
        }
    }
    return list;
}

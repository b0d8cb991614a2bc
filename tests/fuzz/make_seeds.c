/*  make_seeds — writes the seed corpora of the fuzz harnesses into DIR
    (tests/fuzz/corpus): sealed envelopes made with the fixed keys of fuzz_keys.h,
    the ClientFrames that carry them, their headers, and every registered type's
    example as JSON and as packed bytes (first byte = the type's index, as the
    harnesses read it). Usage: make_seeds DIR. Run by `make fuzz-seeds`; the
    output is committed, so rerun it only when the schemas or examples change.
*/
#include "fuzz_keys.h"
#include "control.pb-c.h"
#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_dir;

static int s_write(const char *sub, const char *name, uint8_t prefix, int with_prefix,
                   const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    snprintf(path, sizeof path, "%s/%s/%s", s_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = (!with_prefix || fwrite(&prefix, 1, 1, f) == 1) &&
             (len == 0 || fwrite(data, 1, len, f) == len);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int s_write_frame(const char *name, Puente__V1__ClientFrame *frame)
{
    size_t len = puente__v1__client_frame__get_packed_size(frame);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    puente__v1__client_frame__pack(frame, buf);
    int rc = s_write("frame", name, 0, 0, buf, len);
    free(buf);
    return rc;
}

/* One sealed envelope to the first n fixed recipients, carrying the example of
   referral.request; written as envelope, frame and header seeds. */
static int s_envelope(size_t n, const pt_sign_key_t *sender, pt_seal_key_t *const *keys,
                      const uint8_t *body, size_t body_len)
{
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    uint8_t message_id[16], correlation_id[16];
    if (pt_uuidv7(message_id) != 0 || pt_uuidv7(correlation_id) != 0)
        return -1;
    h.message_id = (ProtobufCBinaryData){16, message_id};
    h.correlation_id = (ProtobufCBinaryData){16, correlation_id};
    h.message_type = "referral.request";
    h.sender = FUZZ_SENDER;
    h.n_recipients = n;
    h.recipients = (char **)fuzz_recipient_names;
    h.created_at_ms = pt_now_ms();
    h.purpose = "service_provision";
    h.agreement_id = "AGR-MX-GT-2025-01";
    h.case_token = "ct_7f3a9c";
    consent.consent_for_services = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    h.consent = &consent;

    uint8_t *env_bytes = NULL;
    size_t env_len = 0;
    if (pt_envelope_seal(&h, body, body_len, sender, (const pt_seal_key_t *const *)keys, n,
                         &env_bytes, &env_len) != PT_ENV_OK)
        return -1;
    char name[64];
    int rc = -1;
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, env_len, env_bytes);
    if (!env)
        goto done;
    snprintf(name, sizeof name, "envelope-%zu", n);
    if (s_write("open", name, 0, 0, env_bytes, env_len) != 0)
        goto done;
    snprintf(name, sizeof name, "header-%zu", n);
    if (s_write("header", name, 0, 0, env->header.data, env->header.len) != 0)
        goto done;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = env;
    snprintf(name, sizeof name, "submit-%zu", n);
    rc = s_write_frame(name, &frame);

done:
    if (env)
        puente__v1__envelope__free_unpacked(env, NULL);
    free(env_bytes);
    return rc;
}

static int s_control_frames(void)
{
    uint8_t id[16];
    if (pt_uuidv7(id) != 0)
        return -1;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
    ack.message_id = (ProtobufCBinaryData){16, id};
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
    frame.ack = &ack;
    if (s_write_frame("ack", &frame) != 0)
        return -1;
    Puente__V1__Hello hello = PUENTE__V1__HELLO__INIT;
    hello.org_id = "GT-PGN";
    hello.client = "puente-cli/0.1";
    hello.receive = 1;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HELLO;
    frame.hello = &hello;
    if (s_write_frame("hello", &frame) != 0)
        return -1;
    Puente__V1__Heartbeat heartbeat = PUENTE__V1__HEARTBEAT__INIT;
    heartbeat.time_ms = pt_now_ms();
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HEARTBEAT;
    frame.heartbeat = &heartbeat;
    return s_write_frame("heartbeat", &frame);
}

/* Every type's example: JSON for fuzz_json, packed bytes for fuzz_family. The
   packed example of referral.request is returned as the envelopes' body. */
static int s_types(uint8_t **body_p, size_t *body_len)
{
    for (size_t i = 0; i < pt_types_count(); i++) {
        const pt_type_t *t = pt_types_at(i);
        char name[96], err[PT_JSON_ERR_BYTES];
        snprintf(name, sizeof name, "%02zu-%s.json", i, t->name);
        if (s_write("json", name, (uint8_t)i, 1, t->example_json, strlen(t->example_json)) != 0)
            return -1;
        ProtobufCMessage *m = NULL;
        if (pt_json_to_message(t->descriptor, t->example_json, strlen(t->example_json), &m, err,
                               sizeof err) != 0) {
            fprintf(stderr, "make_seeds: example of %s does not parse: %s\n", t->name, err);
            return -1;
        }
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            protobuf_c_message_free_unpacked(m, NULL);
            return -1;
        }
        protobuf_c_message_pack(m, buf);
        protobuf_c_message_free_unpacked(m, NULL);
        snprintf(name, sizeof name, "%02zu-%s.pb", i, t->name);
        int rc = s_write("family", name, (uint8_t)i, 1, buf, len);
        if (rc == 0 && strcmp(t->name, "referral.request") == 0 && !*body_p) {
            *body_p = buf;
            *body_len = len;
        } else
            free(buf);
        if (rc != 0)
            return -1;
    }
    return *body_p ? 0 : -1;
}

/* --- fuzz_bridge: HTTP requests (format in fuzz_bridge.c) -------------------------- */

#define S_AUTH "Authorization: Bearer " FUZZ_BRIDGE_TOKEN "\r\n"
#define S_JSON "Content-Type: application/json\r\n"

/* Appends one request; with_length: a Content-Length header (for a request that
   another follows). Returns the new text (caller frees) or NULL. */
static char *s_req(char *text, const char *method, const char *target, const char *headers,
                   const char *body, int with_length)
{
    size_t old = text ? strlen(text) : 0, blen = body ? strlen(body) : 0;
    size_t cap = old + strlen(method) + strlen(target) + strlen(headers) + blen + 128;
    char *out = realloc(text, cap);
    if (!out) {
        free(text);
        return NULL;
    }
    int n = snprintf(out + old, cap - old, "%s %s HTTP/1.1\r\n%s", method, target, headers);
    if (with_length)
        n += snprintf(out + old + n, cap - old - n, "Content-Length: %zu\r\n", blen);
    snprintf(out + old + n, cap - old - n, "\r\n%s", body ? body : "");
    return out;
}

static int s_bridge_write(const char *name, char *text)
{
    if (!text)
        return -1;
    int rc = s_write("bridge", name, 0, 0, text, strlen(text));
    free(text);
    return rc;
}

/* A submit body for type t: its example as body, addressed to `to`. extra: more
   members ("" or starting with ','). */
static char *s_submit_body(const pt_type_t *t, const char *to, const char *extra)
{
    size_t cap = strlen(t->example_json) + strlen(extra) + 512;
    char *body = malloc(cap);
    if (body)
        snprintf(body, cap,
                 "{\"type\":\"%s\",\"to\":[%s],\"case_token\":\"" FUZZ_BRIDGE_CASE
                 "\",\"purpose\":\"%s\"%s,\"body\":%s}",
                 t->name, to, t->default_purpose, extra, t->example_json);
    return body;
}

static int s_bridge_seeds(void)
{
    char name[128], target[160];
    int rc = 0;
    /* One submit per registered type, with its example as body. */
    for (size_t i = 0; i < pt_types_count() && rc == 0; i++) {
        const pt_type_t *t = pt_types_at(i);
        int many = strcmp(t->name, "tracing.request") == 0;
        char *body = s_submit_body(t, many ? "\"GT-PGN\",\"XI-ISS\"" : "\"GT-PGN\"", "");
        snprintf(name, sizeof name, "submit-%02zu-%s", i, t->name);
        rc = s_bridge_write(name, s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, body, 0));
        free(body);
    }
    if (rc)
        return rc;
    const pt_type_t *referral = pt_types_find("referral.request");
    const pt_type_t *accept = pt_types_find("referral.accept");
    const pt_type_t *inquiry = pt_types_find("inquiry.request");
    if (!referral || !accept || !inquiry)
        return -1;
    /* Every optional member. */
    char *full = s_submit_body(
        referral, "\"GT-PGN\"",
        ",\"agreement_id\":\"AGR-MX-GT-2025-01\",\"correlation_id\":\"" FUZZ_BRIDGE_THREAD
        "\",\"causation_id\":\"0190f6a8-0000-7000-8000-00000000a001\",\"service_type\":"
        "\"psychosocial\",\"respond_by\":\"2025-05-14T12:00:00Z\",\"follow_up_due\":"
        "\"2025-06-01\",\"expires_in\":\"7d\",\"best_interests_ref\":\"BIA-1\","
        "\"reason_code\":\"other\",\"consent\":{\"consent_for_services\":true,"
        "\"disclosure_other_orgs\":true,\"legal_basis\":\"LEGAL_BASIS_CONSENT\","
        "\"withhold_from\":[\"XI-ISS\"]}");
    rc |=
        s_bridge_write("submit-full", s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, full, 0));
    /* The same Idempotency-Key: new, replayed, then with another body (409). */
    char *other = s_submit_body(accept, "\"GT-PGN\"", "");
    char *t =
        s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n", full, 1);
    t = t ? s_req(t, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n", full, 1)
          : NULL;
    t = t ? s_req(t, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n", other, 1)
          : NULL;
    rc |= s_bridge_write("submit-idempotency", t);
    /* The key of a row already there (queued, with another body hash). */
    rc |= s_bridge_write("submit-known-key",
                         s_req(NULL, "POST", "/v1/messages",
                               S_AUTH S_JSON "Idempotency-Key: seed-key-1\r\n", other, 0));
    rc |= s_bridge_write("submit-bad-key",
                         s_req(NULL, "POST", "/v1/messages",
                               S_AUTH S_JSON "Idempotency-Key: two words\r\n", other, 0));
    free(full);
    /* Field minimisation: the agreement with GT-PGN lets only some fields through. */
    char *inq = s_submit_body(inquiry, "\"GT-PGN\"", "");
    rc |= s_bridge_write("submit-field-set",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, inq, 0));
    free(inq);
    /* Recipients: unknown, disabled, several, none; a withdrawal without "to". */
    char *unknown = s_submit_body(accept, "\"ZZ-NOBODY\"", "");
    rc |= s_bridge_write("submit-unknown-recipient",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, unknown, 0));
    free(unknown);
    char *disabled = s_submit_body(accept, "\"SV-CONNA\"", "");
    rc |= s_bridge_write("submit-disabled-recipient",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, disabled, 0));
    free(disabled);
    rc |= s_bridge_write("submit-withdraw-no-to",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON,
                               "{\"type\":\"consent.withdraw\",\"case_token\":\"" FUZZ_BRIDGE_CASE
                               "\",\"body\":{}}",
                               0));
    /* Malformed bodies and headers. */
    rc |= s_bridge_write("submit-invalid-json",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, "{\"type\":", 0));
    rc |= s_bridge_write("submit-not-object",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, "[1,2,3]", 0));
    rc |= s_bridge_write("submit-unknown-field",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON,
                               "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],"
                               "\"case_token\":\"C\",\"body\":{\"x\":1}}",
                               0));
    rc |=
        s_bridge_write("submit-text-plain", s_req(NULL, "POST", "/v1/messages",
                                                  S_AUTH "Content-Type: text/plain\r\n", other, 0));
    rc |=
        s_bridge_write("submit-charset",
                       s_req(NULL, "POST", "/v1/messages",
                             S_AUTH "Content-Type: application/json; charset=utf-8\r\n", other, 0));
    rc |= s_bridge_write("submit-too-large",
                         s_req(NULL, "POST", "/v1/messages",
                               S_AUTH S_JSON "Content-Length: 99999999\r\n", other, 0));
    free(other);
    /* Inbox paging, acks, status, trail. */
    t = s_req(NULL, "GET", "/v1/messages?since=0&limit=2", S_AUTH, NULL, 1);
    t = t ? s_req(t, "GET", "/v1/messages?since=1&limit=500", S_AUTH, NULL, 1) : NULL;
    t = t ? s_req(t, "GET", "/v1/messages?limit=1&since=2&since=9", S_AUTH, NULL, 1) : NULL;
    rc |= s_bridge_write("inbox-pages", t);
    rc |= s_bridge_write("inbox-bad-query",
                         s_req(NULL, "GET", "/v1/messages?since=-1&limit=0x10", S_AUTH, NULL, 0));
    snprintf(target, sizeof target, "/v1/messages/%s/ack", fuzz_bridge_inbox_ids[0]);
    t = s_req(NULL, "POST", target, S_AUTH, NULL, 1);
    t = t ? s_req(t, "POST", target, S_AUTH, NULL, 1) : NULL;
    t = t ? s_req(t, "GET", "/v1/messages", S_AUTH, NULL, 1) : NULL;
    rc |= s_bridge_write("ack-twice-then-list", t);
    snprintf(target, sizeof target, "/v1/messages/%s/ack", fuzz_bridge_inbox_ids[2]);
    t = s_req(NULL, "POST", target, S_AUTH, NULL, 1);
    t = t ? s_req(t, "POST", "/v1/messages/0190f6a8-0000-7000-8000-00000000ffff/ack", S_AUTH, NULL,
                  1)
          : NULL;
    t = t ? s_req(t, "POST", "/v1/messages/not-a-uuid/ack", S_AUTH, NULL, 1) : NULL;
    rc |= s_bridge_write("ack-acked-unknown-invalid", t);
    const char *ids[] = {FUZZ_BRIDGE_OUT_QUEUED,
                         FUZZ_BRIDGE_OUT_SUBMITTED,
                         FUZZ_BRIDGE_OUT_REJECTED,
                         FUZZ_BRIDGE_OUTBOX_ONLY,
                         "0190f6a8-0000-7000-8000-00000000ffff",
                         "%2e%2e"};
    const char *names[] = {"status-queued",      "status-submitted", "status-rejected",
                           "status-outbox-only", "status-unknown",   "status-escaped"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(target, sizeof target, "/v1/messages/%s", ids[i]);
        rc |= s_bridge_write(names[i], s_req(NULL, "GET", target, S_AUTH, NULL, 0));
    }
    rc |= s_bridge_write(
        "trail", s_req(NULL, "GET", "/v1/cases/" FUZZ_BRIDGE_CASE "/trail", S_AUTH, NULL, 0));
    /* Authentication and routing. */
    rc |= s_bridge_write("openapi", s_req(NULL, "GET", "/v1/openapi.json", "", NULL, 0));
    rc |= s_bridge_write("no-token", s_req(NULL, "GET", "/v1/messages", "", NULL, 0));
    rc |= s_bridge_write("wrong-token",
                         s_req(NULL, "GET", "/v1/messages",
                               "Authorization: Bearer " FUZZ_BRIDGE_TOKEN "x\r\n", NULL, 0));
    rc |= s_bridge_write("lowercase-scheme",
                         s_req(NULL, "GET", "/v1/messages",
                               "authorization: bearer " FUZZ_BRIDGE_TOKEN "\r\n", NULL, 0));
    rc |= s_bridge_write("method-not-allowed",
                         s_req(NULL, "DELETE", "/v1/messages", S_AUTH, NULL, 0));
    rc |= s_bridge_write("not-found", s_req(NULL, "GET", "/v1/messages/a/b/c", S_AUTH, NULL, 0));
    return rc;
}

/* --- fuzz_broker: raw client messages (format in fuzz_broker.c) ------------------ */

/* Identity indexes of fuzz_broker's table. */
enum {
    S_ID_MX = 0,
    S_ID_GT = 1,
    S_ID_XI = 2,
    S_ID_HN = 3,
    S_ID_OPERATOR = 5,
    S_ID_AUDITOR = 6,
    S_ID_NONE = 7
};

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} s_buf_t;

static void s_put(s_buf_t *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* One message: identity, pass break, routing id, the frames. */
static void s_msg(s_buf_t *b, int identity, int new_pass, const char *rid, size_t n_frames,
                  const uint8_t *const *frames, const size_t *lens)
{
    uint8_t head[3] = {(uint8_t)(identity | (new_pass ? 0x80 : 0)), (uint8_t)n_frames,
                       (uint8_t)strlen(rid)};
    s_put(b, head, 3);
    s_put(b, rid, strlen(rid));
    for (size_t i = 0; i < n_frames; i++) {
        uint8_t len[2] = {(uint8_t)(lens[i] >> 8), (uint8_t)lens[i]};
        s_put(b, len, 2);
        s_put(b, frames[i], lens[i]);
    }
}

/* A ClientFrame as one message. */
static void s_frame_msg(s_buf_t *b, int identity, int new_pass, const char *rid,
                        const Puente__V1__ClientFrame *frame)
{
    size_t len = puente__v1__client_frame__get_packed_size(frame);
    uint8_t *packed = malloc(len ? len : 1);
    if (!packed) {
        b->failed = 1;
        return;
    }
    puente__v1__client_frame__pack(frame, packed);
    const uint8_t *frames[1] = {packed};
    s_msg(b, identity, new_pass, rid, 1, frames, &len);
    free(packed);
}

static int s_broker_write(const char *name, uint8_t flags, s_buf_t *b)
{
    int rc = b->failed ? -1 : s_write("broker", name, flags, 1, b->data, b->len);
    free(b->data);
    memset(b, 0, sizeof *b);
    return rc;
}

/* Deterministic UUIDv7 ids: FUZZ_EPOCH_MS, then n. */
static void s_uuid(uint8_t id[16], unsigned n)
{
    memset(id, 0, 16);
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)((unsigned long long)FUZZ_EPOCH_MS >> (40 - 8 * i));
    id[6] = 0x70;
    id[8] = 0x80;
    id[14] = (uint8_t)(n >> 8);
    id[15] = (uint8_t)n;
}

typedef struct {
    const char *type;
    int from;       /* 0 MX-DIF, 1 GT-PGN, 2 XI-ISS */
    const char *to; /* ','-joined recipients */
    int new_pass;
    const char *reason_code, *best_interests_ref;
    int64_t respond_by, follow_up_due; /* offsets from FUZZ_EPOCH_MS, 0 = none */
} s_step_t;

static const char *s_names[3] = {FUZZ_SENDER, "GT-PGN", "XI-ISS"};

/* 1 for the types that open a lifecycle (they answer no earlier message). */
static int s_opens(const char *type)
{
    static const char *const opening[] = {"referral.request", "transfer.request", "transfer.ask",
                                          "inquiry.request",  "tracing.request",  "return.notice"};
    for (size_t i = 0; i < sizeof opening / sizeof opening[0]; i++)
        if (strcmp(type, opening[i]) == 0)
            return 1;
    return 0;
}

static pt_seal_key_t *s_seal_key(const char *org)
{
    if (strcmp(org, FUZZ_SENDER) == 0)
        return pt_seal_key_from_private(fuzz_sender_seal_private, 32);
    for (size_t i = 0; i < FUZZ_N_RECIPIENTS; i++)
        if (strcmp(org, fuzz_recipient_names[i]) == 0)
            return pt_seal_key_from_private(fuzz_recipient_private[i], 32);
    return pt_seal_key_generate(); /* not in the directory: any key */
}

/* The packed example of a type (caller frees). */
static uint8_t *s_example(const pt_type_t *t, size_t *len)
{
    ProtobufCMessage *m = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (pt_json_to_message(t->descriptor, t->example_json, strlen(t->example_json), &m, err,
                           sizeof err) != 0)
        return NULL;
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    return buf;
}

/* Options of one envelope beyond its step. */
typedef struct {
    unsigned id; /* message id number (s_uuid) */
    unsigned correlation;
    const char *case_token;
    int identity;    /* -1: the sender's own */
    int consent;     /* 0: everything given; 1: none; 2: override without approver;
                        3: withhold GT-PGN */
    int64_t created; /* offset from FUZZ_EPOCH_MS */
} s_env_opts_t;

/* The ClientFrame carrying step's envelope, packed (caller frees), or NULL. */
static uint8_t *s_submit(const s_step_t *step, const s_env_opts_t *o, size_t *len)
{
    const pt_type_t *t = pt_types_find(step->type);
    if (!t)
        return NULL;
    size_t body_len = 0;
    uint8_t *body = s_example(t, &body_len);
    char to_copy[200], *to[8];
    size_t n_to = 0;
    snprintf(to_copy, sizeof to_copy, "%s", step->to);
    char *save = NULL;
    for (char *r = strtok_r(to_copy, ",", &save); r && n_to < 8; r = strtok_r(NULL, ",", &save))
        to[n_to++] = r;
    pt_seal_key_t *keys[8] = {NULL};
    int ok = body != NULL;
    for (size_t i = 0; i < n_to; i++)
        ok = ok && (keys[i] = s_seal_key(to[i])) != NULL;
    const uint8_t *seed =
        step->from == 0 ? fuzz_sender_seed : fuzz_recipient_sign_seed[step->from - 1];
    pt_sign_key_t *sender = pt_sign_key_from_private(seed, 32);
    uint8_t id[16], correlation[16], cause[16];
    s_uuid(id, o->id);
    s_uuid(correlation, 0x1000 + o->correlation);
    s_uuid(cause, o->id - 1);
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    char *withhold[] = {"GT-PGN"};
    h.message_id = (ProtobufCBinaryData){16, id};
    h.correlation_id = (ProtobufCBinaryData){16, correlation};
    if (o->id > 1 && !s_opens(step->type))
        h.causation_id = (ProtobufCBinaryData){16, cause};
    h.message_type = (char *)step->type;
    h.sender = (char *)s_names[step->from];
    h.recipients = to;
    h.n_recipients = n_to;
    h.created_at_ms = FUZZ_EPOCH_MS + o->created;
    h.purpose = (char *)t->default_purpose;
    h.case_token = (char *)(o->case_token ? o->case_token : "ct_fuzz_1");
    h.reason_code = (char *)(step->reason_code ? step->reason_code : "");
    h.best_interests_ref = (char *)(step->best_interests_ref ? step->best_interests_ref : "");
    h.respond_by_ms = step->respond_by ? FUZZ_EPOCH_MS + step->respond_by : 0;
    h.follow_up_due_ms = step->follow_up_due ? FUZZ_EPOCH_MS + step->follow_up_due : 0;
    h.schema_version = 1;
    consent.consent_for_services = consent.disclosure_other_orgs = consent.consent_for_tracing =
        o->consent != 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    if (o->consent == 2) {
        consent.overridden = 1;
        consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS;
    }
    if (o->consent == 3) {
        consent.withhold_from = withhold;
        consent.n_withhold_from = 1;
    }
    h.consent = &consent;
    uint8_t *env = NULL, *out = NULL;
    size_t env_len = 0;
    if (ok && sender &&
        pt_envelope_seal(&h, body, body_len, sender, (const pt_seal_key_t *const *)keys, n_to, &env,
                         &env_len) == PT_ENV_OK) {
        Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, env_len, env);
        if (e) {
            Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
            frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
            frame.submit = e;
            *len = puente__v1__client_frame__get_packed_size(&frame);
            out = malloc(*len ? *len : 1);
            if (out)
                puente__v1__client_frame__pack(&frame, out);
            puente__v1__envelope__free_unpacked(e, NULL);
        }
    }
    free(env);
    free(body);
    pt_sign_key_destroy(&sender);
    for (size_t i = 0; i < n_to; i++)
        pt_seal_key_destroy(&keys[i]);
    return out;
}

/* A lifecycle's steps as one input: each from its sender's own connection. */
static int s_scenario(const char *name, uint8_t flags, const s_step_t *steps, size_t n,
                      unsigned correlation, int all_in_one_pass)
{
    s_buf_t b = {0};
    for (size_t i = 0; i < n; i++) {
        s_env_opts_t o = {.id = 0x100 * correlation + (unsigned)i + 1,
                          .correlation = correlation,
                          .identity = -1};
        size_t len = 0;
        uint8_t *frame = s_submit(&steps[i], &o, &len);
        if (!frame)
            return -1;
        const uint8_t *frames[1] = {frame};
        s_msg(&b, steps[i].from, !all_in_one_pass && steps[i].new_pass, s_names[steps[i].from], 1,
              frames, &len);
        free(frame);
        /* The recipient acks an opening message that waits for delivery (the fake
           store moves its lifecycle to received). */
        if (s_opens(steps[i].type) && strcmp(steps[i].type, "tracing.request") != 0 &&
            strcmp(steps[i].type, "return.notice") != 0) {
            uint8_t id[16];
            s_uuid(id, o.id);
            Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
            ack.message_id = (ProtobufCBinaryData){16, id};
            Puente__V1__ClientFrame f = PUENTE__V1__CLIENT_FRAME__INIT;
            f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
            f.ack = &ack;
            int to = strcmp(steps[i].to, FUZZ_SENDER) == 0 ? 0
                     : strcmp(steps[i].to, "GT-PGN") == 0  ? 1
                                                           : 2;
            s_frame_msg(&b, to, !all_in_one_pass, s_names[to], &f);
        }
    }
    return s_broker_write(name, flags, &b);
}

/* One submission with options, alone (or twice: dup 1 = same bytes, 2 = same id
   with another header). */
static int s_single(const char *name, uint8_t flags, const s_step_t *step, s_env_opts_t o, int dup)
{
    s_buf_t b = {0};
    size_t len = 0, len2 = 0;
    uint8_t *frame = s_submit(step, &o, &len);
    if (!frame)
        return -1;
    const uint8_t *frames[1] = {frame};
    s_msg(&b, o.identity >= 0 ? o.identity : step->from, 0, "peer-1", 1, frames, &len);
    if (dup) {
        o.case_token = dup == 2 ? "ct_fuzz_other" : o.case_token;
        uint8_t *again = dup == 2 ? s_submit(step, &o, &len2) : NULL;
        const uint8_t *frames2[1] = {again ? again : frame};
        s_msg(&b, o.identity >= 0 ? o.identity : step->from, 1, "peer-1", 1, frames2,
              again ? &len2 : &len);
        free(again);
    }
    free(frame);
    return s_broker_write(name, flags, &b);
}

static int s_broker_seeds(void)
{
    int rc = 0;
    const int64_t day = 86400000LL;
    /* Lifecycles, each step in its own pass (the fake store reads back what the
       earlier ones stored) and again all in one pass (the broker's batch copy). */
    static const s_step_t referral[] = {
        {"referral.request", 0, "GT-PGN", 0, NULL, NULL, 7 * day, 0},
        {"referral.accept", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"referral.progress", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"referral.done", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0}};
    static const s_step_t referral_no[] = {
        {"referral.request", 0, "GT-PGN", 0, NULL, NULL, 0, 0},
        {"referral.reject", 1, FUZZ_SENDER, 1, "no_capacity", NULL, 0, 0},
        {"referral.revoke", 0, "GT-PGN", 1, NULL, NULL, 0, 0}};
    static const s_step_t transfer[] = {{"transfer.request", 0, "GT-PGN", 0, NULL, NULL, 0, 0},
                                        {"transfer.accept", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
                                        {"referral.request", 0, "GT-PGN", 1, NULL, NULL, 0, 0}};
    static const s_step_t ask[] = {
        {"transfer.ask", 1, FUZZ_SENDER, 0, NULL, NULL, 0, 0},
        {"transfer.reject", 0, "GT-PGN", 1, "not_in_best_interests", NULL, 0, 0}};
    static const s_step_t inquiry[] = {{"inquiry.request", 0, "GT-PGN", 0, NULL, NULL, 14 * day, 0},
                                       {"inquiry.accept", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
                                       {"inquiry.report", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
                                       {"inquiry.close", 0, "GT-PGN", 1, NULL, NULL, 0, 0}};
    static const s_step_t tracing[] = {
        {"tracing.request", 0, "GT-PGN,XI-ISS", 0, NULL, NULL, 0, 0},
        {"tracing.progress", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"tracing.match", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"tracing.verify", 0, "GT-PGN", 1, NULL, NULL, 0, 0},
        {"tracing.verification", 0, "GT-PGN", 1, "verified,child_agrees,family_willing", NULL, 0,
         0},
        {"tracing.reunification_plan", 0, "GT-PGN", 1, NULL, "BID-GT-2025-7", 0, 0},
        {"tracing.reunify", 0, "GT-PGN", 1, NULL, NULL, 0, 0},
        {"tracing.close", 0, "GT-PGN", 1, NULL, NULL, 0, 0}};
    static const s_step_t reintegration[] = {
        {"return.notice", 0, "GT-PGN", 0, NULL, "BID-MX-2025-3", 0, 0},
        {"return.arrival", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"reintegration.assessment", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 0},
        {"reintegration.plan", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 30 * day},
        {"reintegration.followup", 1, FUZZ_SENDER, 1, NULL, NULL, 0, 60 * day},
        {"reintegration.close", 1, FUZZ_SENDER, 1, "reintegrated", NULL, 0, 0},
        {"reintegration.reopen", 0, "GT-PGN", 1, NULL, NULL, 0, 0}};
    static const s_step_t withdraw[] = {
        {"referral.request", 0, "GT-PGN", 0, NULL, NULL, 0, 0},
        {"consent.withdraw", 0, "GT-PGN", 1, NULL, NULL, 0, 0},
        {"case.erasure_request", 0, "GT-PGN,XI-ISS", 1, NULL, NULL, 0, 0}};
    struct {
        const char *name;
        const s_step_t *steps;
        size_t n;
    } lifecycles[] = {{"referral", referral, 4},
                      {"referral-reject", referral_no, 3},
                      {"transfer", transfer, 3},
                      {"transfer-ask", ask, 2},
                      {"inquiry", inquiry, 4},
                      {"tracing", tracing, 8},
                      {"reintegration", reintegration, 7},
                      {"withdrawal", withdraw, 3}};
    char name[96];
    for (size_t i = 0; i < sizeof lifecycles / sizeof lifecycles[0]; i++) {
        snprintf(name, sizeof name, "lifecycle-%s", lifecycles[i].name);
        rc |= s_scenario(name, 4, lifecycles[i].steps, lifecycles[i].n, (unsigned)i + 1, 0);
        snprintf(name, sizeof name, "batch-%s", lifecycles[i].name);
        rc |= s_scenario(name, 4, lifecycles[i].steps, lifecycles[i].n, (unsigned)i + 1, 1);
    }
    /* The first steps as sent, byte for byte (expired by now), and with the store
       down or refusing. */
    rc |= s_scenario("raw-referral", 0, referral, 2, 1, 0);
    rc |= s_scenario("store-down-referral", 4 | 2, referral, 2, 1, 0);
    rc |= s_scenario("store-refusing-referral", 4 | 3, referral, 2, 1, 0);

    /* Single submissions the stages refuse (and two that pass twice). */
    const s_step_t request = {"referral.request", 0, "GT-PGN", 0, NULL, NULL, 0, 0};
    const s_env_opts_t plain = {.id = 0x900, .correlation = 0x90, .identity = -1};
    s_env_opts_t o = plain;
    rc |= s_single("submit-duplicate", 4, &request, o, 1);
    rc |= s_single("submit-conflict", 4, &request, o, 2);
    o.identity = S_ID_GT;
    rc |= s_single("submit-spoofed-sender", 4, &request, o, 0);
    o.identity = S_ID_OPERATOR;
    rc |= s_single("submit-as-operator", 4, &request, o, 0);
    o.identity = S_ID_NONE;
    rc |= s_single("submit-no-identity", 4, &request, o, 0);
    o = plain;
    o.consent = 1;
    rc |= s_single("submit-no-consent", 4, &request, o, 0);
    o.consent = 2;
    rc |= s_single("submit-override-incomplete", 4, &request, o, 0);
    o.consent = 3;
    rc |= s_single("submit-withheld", 4, &request, o, 0);
    o = plain;
    o.created = 3600000LL; /* an hour ahead */
    rc |= s_single("submit-future", 4, &request, o, 0);
    o.created = -40 * day;
    rc |= s_single("submit-expired", 4, &request, o, 0);
    o = plain;
    o.case_token = "ct'; DROP TABLE messages;--";
    rc |= s_single("submit-sql-in-token", 4, &request, o, 0);
    const s_step_t self_addressed = {"referral.request", 0, FUZZ_SENDER, 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-self", 4, &self_addressed, plain, 0);
    const s_step_t unknown = {"referral.request", 0, "ZZ-NOBODY", 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-unknown-recipient", 4, &unknown, plain, 0);
    const s_step_t disabled = {"referral.request", 0, "SV-CONNA", 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-disabled-recipient", 4, &disabled, plain, 0);
    const s_step_t expired_agreement = {"referral.request", 0, "HN-DINAF", 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-agreement-ended", 4, &expired_agreement, plain, 0);
    const s_step_t illegal = {"referral.done", 1, FUZZ_SENDER, 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-illegal-transition", 4, &illegal, plain, 0);
    const s_step_t no_reason = {"tracing.close", 0, "GT-PGN", 0, NULL, NULL, 0, 0};
    rc |= s_single("submit-reason-required", 4, &no_reason, plain, 0);

    /* Frames the transport classifies, and bytes that are not a frame. */
    s_buf_t b = {0};
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x12};
    const uint8_t *frames[3] = {junk, junk, junk};
    const size_t lens[3] = {sizeof junk, 0, sizeof junk};
    s_msg(&b, S_ID_MX, 0, "peer-1", 0, frames, lens);         /* no frame */
    s_msg(&b, S_ID_MX, 0, "peer-2", 1, frames + 1, lens + 1); /* empty frame */
    s_msg(&b, S_ID_MX, 0, "peer-3", 3, frames, lens);         /* extra frames */
    s_msg(&b, S_ID_MX, 0, "peer-4", 1, frames, lens);         /* not a ClientFrame */
    rc |= s_broker_write("frames-malformed", 0, &b);
    uint8_t *big = calloc(1, 20000);
    if (!big)
        return -1;
    big[0] = 0x0a; /* field 1, length-delimited */
    const uint8_t *bigs[1] = {big};
    const size_t big_len = 20000;
    char long_rid[256];
    memset(long_rid, 'r', 255);
    long_rid[255] = '\0';
    s_msg(&b, S_ID_MX, 0, long_rid, 1, bigs, &big_len);
    free(big);
    rc |= s_broker_write("frame-too-large", 0, &b);

    /* Requests other than submissions. */
    Puente__V1__ClientFrame f = PUENTE__V1__CLIENT_FRAME__INIT;
    Puente__V1__Hello hello = PUENTE__V1__HELLO__INIT;
    hello.org_id = "GT-PGN";
    hello.client = "fuzz/1";
    hello.receive = 1;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HELLO;
    f.hello = &hello;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f); /* names another identity */
    Puente__V1__Heartbeat beat = PUENTE__V1__HEARTBEAT__INIT;
    beat.time_ms = FUZZ_EPOCH_MS;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HEARTBEAT;
    f.heartbeat = &beat;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    rc |= s_broker_write("hello-heartbeat", 0, &b);

    /* A referral, then its recipient acks it (and an unknown id, and a short one). */
    s_env_opts_t first = {.id = 0xa01, .correlation = 0xa0, .identity = -1};
    const s_step_t request_by = {"referral.request", 0, "GT-PGN", 0, NULL, NULL, 7 * day, 0};
    size_t len = 0;
    uint8_t *submit = s_submit(&request_by, &first, &len);
    if (!submit)
        return -1;
    const uint8_t *sub_frames[1] = {submit};
    s_msg(&b, S_ID_MX, 0, "peer-mx", 1, sub_frames, &len);
    uint8_t acked_id[16], unknown_id[16];
    s_uuid(acked_id, 0xa01);
    s_uuid(unknown_id, 0xbad);
    Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
    f.ack = &ack;
    ack.message_id = (ProtobufCBinaryData){16, acked_id};
    s_frame_msg(&b, S_ID_GT, 1, "peer-gt", &f);
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f); /* again in the same pass */
    s_frame_msg(&b, S_ID_XI, 0, "peer-xi", &f); /* not a recipient */
    ack.message_id = (ProtobufCBinaryData){16, unknown_id};
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    ack.message_id = (ProtobufCBinaryData){8, unknown_id};
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    /* The trail, recipients and overdue items of the case, by a party and not. */
    Puente__V1__TrailRequest trail = PUENTE__V1__TRAIL_REQUEST__INIT;
    trail.case_token = "ct_fuzz_1";
    trail.request_id = 7;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_TRAIL;
    f.trail = &trail;
    s_frame_msg(&b, S_ID_MX, 1, "peer-mx", &f);
    s_frame_msg(&b, S_ID_HN, 0, "peer-hn", &f);
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    Puente__V1__RecipientsRequest recipients = PUENTE__V1__RECIPIENTS_REQUEST__INIT;
    recipients.case_token = "ct_fuzz_1";
    recipients.request_id = 8;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_RECIPIENTS;
    f.recipients = &recipients;
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    Puente__V1__OverdueRequest overdue = PUENTE__V1__OVERDUE_REQUEST__INIT;
    overdue.request_id = 9;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_OVERDUE;
    f.overdue = &overdue;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    Puente__V1__NoticeAck notice = PUENTE__V1__NOTICE_ACK__INIT;
    notice.notice_id = 5;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_NOTICE_ACK;
    f.notice_ack = &notice;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    notice.notice_id = 1;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    /* The operator's view of the queues now that a message waits. */
    Puente__V1__AdminRequest queues = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__QueueListRequest queue_req = PUENTE__V1__QUEUE_LIST_REQUEST__INIT;
    queues.op_case = PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST;
    queues.queue_list = &queue_req;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ADMIN;
    f.admin = &queues;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    rc |= s_broker_write("ack-trail-recipients", 4, &b);
    free(submit);

    /* The directory, as an organisation (all, some) and as the operator. */
    Puente__V1__DirectoryRequest dir = PUENTE__V1__DIRECTORY_REQUEST__INIT;
    char *some[] = {"GT-PGN", "ZZ-NOBODY"};
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_DIRECTORY;
    f.directory = &dir;
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    dir.org_ids = some;
    dir.n_org_ids = 2;
    s_frame_msg(&b, S_ID_GT, 0, "peer-gt", &f);
    rc |= s_broker_write("directory", 0, &b);

    /* The audit log: checkpoint, proofs, queries (as the auditor and as others). */
    Puente__V1__CheckpointRequest cp = PUENTE__V1__CHECKPOINT_REQUEST__INIT;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_CHECKPOINT;
    f.checkpoint = &cp;
    s_frame_msg(&b, S_ID_AUDITOR, 0, "peer-aud", &f);
    Puente__V1__ProofRequest proof = PUENTE__V1__PROOF_REQUEST__INIT;
    proof.leaf_index = 3;
    proof.tree_size = 10;
    proof.old_size = 4;
    proof.inclusion = 1;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_PROOF;
    f.proof = &proof;
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    Puente__V1__AuditQuery query = PUENTE__V1__AUDIT_QUERY__INIT;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_AUDIT;
    f.audit = &query;
    const char *kinds[] = {"trail", "activity", "items", "corridors", "rejects", "nonsense"};
    for (size_t i = 0; i < 6; i++) {
        query.kind = (char *)kinds[i];
        query.case_token = "ct_fuzz_1";
        query.org_id = "GT-PGN";
        query.lifecycle_kind = "referral";
        query.state = "submitted";
        query.from_ms = FUZZ_EPOCH_MS - day;
        query.older_than_ms = day;
        s_frame_msg(&b, S_ID_AUDITOR, 0, "peer-aud", &f);
    }
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    rc |= s_broker_write("audit", 0, &b);

    /* Administration by the operator, each change followed by a submission that
       depends on it in the same pass (the directory is stale for it), and by an
       organisation (refused). */
    Puente__V1__AdminRequest admin = PUENTE__V1__ADMIN_REQUEST__INIT;
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ADMIN;
    f.admin = &admin;
    Puente__V1__OrgListRequest org_list = PUENTE__V1__ORG_LIST_REQUEST__INIT;
    Puente__V1__AgreementListRequest agreement_list = PUENTE__V1__AGREEMENT_LIST_REQUEST__INIT;
    Puente__V1__QueueListRequest queue_list = PUENTE__V1__QUEUE_LIST_REQUEST__INIT;
    Puente__V1__StatusRequest status = PUENTE__V1__STATUS_REQUEST__INIT;
    Puente__V1__RetentionRun retention = PUENTE__V1__RETENTION_RUN__INIT;
    admin.request_id = 1;
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_LIST;
    admin.org_list = &org_list;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_LIST;
    admin.agreement_list = &agreement_list;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST;
    admin.queue_list = &queue_list;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_STATUS;
    admin.status = &status;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW;
    admin.org_show = "GT-PGN";
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_RETENTION_RUN;
    admin.retention_run = &retention;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    rc |= s_broker_write("admin-read", 0, &b);

    s_env_opts_t after = {.id = 0xc01, .correlation = 0xc0, .identity = -1};
    submit = s_submit(&request, &after, &len);
    if (!submit)
        return -1;
    sub_frames[0] = submit;
    Puente__V1__OrgEnable enable = PUENTE__V1__ORG_ENABLE__INIT;
    enable.org_id = "GT-PGN";
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ENABLE;
    admin.org_enable = &enable;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    s_msg(&b, S_ID_MX, 0, "peer-mx", 1, sub_frames, &len);
    rc |= s_broker_write("admin-disable-then-submit", 4, &b);
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_REVOKE;
    admin.agreement_revoke = FUZZ_AGREEMENT;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    s_msg(&b, S_ID_MX, 0, "peer-mx", 1, sub_frames, &len);
    rc |= s_broker_write("admin-revoke-then-submit", 4, &b);
    free(submit);

    uint8_t key[32];
    memset(key, 0x5a, sizeof key);
    pt_sign_key_t *hn = pt_sign_key_from_private(key, 32);
    uint8_t hn_public[32];
    if (!hn)
        return -1;
    pt_sign_key_public(hn, hn_public);
    pt_sign_key_destroy(&hn);
    char *services[] = {"psychosocial"};
    Puente__V1__OrgKeys org = PUENTE__V1__ORG_KEYS__INIT;
    org.org_id = "HN-DINAF";
    org.sign_public = (ProtobufCBinaryData){32, hn_public};
    org.seal_public = (ProtobufCBinaryData){32, key};
    org.curve_public = (ProtobufCBinaryData){32, key};
    org.enabled = 1;
    org.service_types = services;
    org.n_service_types = 1;
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ADD;
    admin.org_add = &org;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    char *purposes[] = {"service_provision", "family_tracing"}, *types[] = {"referral.*"};
    char *fields[] = {"referral_id", "child.name_first"};
    Puente__V1__FieldSet set = PUENTE__V1__FIELD_SET__INIT;
    set.purpose = "service_provision";
    set.fields = fields;
    set.n_fields = 2;
    Puente__V1__FieldSet *sets[] = {&set};
    Puente__V1__AgreementSpec spec = PUENTE__V1__AGREEMENT_SPEC__INIT;
    spec.agreement_id = "AGR-MX-HN-NEW";
    spec.org_a = FUZZ_SENDER;
    spec.org_b = "HN-DINAF";
    spec.purposes = purposes;
    spec.n_purposes = 2;
    spec.message_types = types;
    spec.n_message_types = 1;
    spec.valid_from_ms = FUZZ_EPOCH_MS;
    spec.field_sets = sets;
    spec.n_field_sets = 1;
    spec.retention_days = 365;
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD;
    admin.agreement_add = &spec;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    char *scope[] = {"HN", "MX-DIF"};
    Puente__V1__AuditorSpec auditor = PUENTE__V1__AUDITOR_SPEC__INIT;
    auditor.auditor_id = "HN-OMBUDS";
    auditor.scope = scope;
    auditor.n_scope = 2;
    auditor.sign_public = (ProtobufCBinaryData){32, hn_public};
    auditor.curve_public = (ProtobufCBinaryData){32, key};
    admin.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AUDITOR_ADD;
    admin.auditor_add = &auditor;
    s_frame_msg(&b, S_ID_OPERATOR, 0, "peer-op", &f);
    f.body_case = PUENTE__V1__CLIENT_FRAME__BODY_DIRECTORY;
    f.directory = &dir;
    dir.n_org_ids = 0;
    s_frame_msg(&b, S_ID_MX, 0, "peer-mx", &f);
    rc |= s_broker_write("admin-add", 0, &b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 1;
    }
    s_dir = argv[1];
    if (mkdir(s_dir, 0755) != 0 && errno != EEXIST) {
        perror(s_dir);
        return 1;
    }
    int rc = 1;
    uint8_t *body = NULL;
    size_t body_len = 0;
    pt_sign_key_t *sender = pt_sign_key_from_private(fuzz_sender_seed, sizeof fuzz_sender_seed);
    pt_seal_key_t *keys[FUZZ_N_RECIPIENTS] = {NULL, NULL};
    for (size_t i = 0; i < FUZZ_N_RECIPIENTS; i++)
        keys[i] = pt_seal_key_from_private(fuzz_recipient_private[i], 32);
    if (!sender || !keys[0] || !keys[1])
        goto done;
    if (s_types(&body, &body_len) != 0 || s_control_frames() != 0 || s_bridge_seeds() != 0 ||
        s_broker_seeds() != 0)
        goto done;
    for (size_t n = 1; n <= FUZZ_N_RECIPIENTS; n++)
        if (s_envelope(n, sender, keys, body, body_len) != 0)
            goto done;
    rc = 0;

done:
    if (rc)
        fprintf(stderr, "make_seeds: failed\n");
    free(body);
    pt_sign_key_destroy(&sender);
    for (size_t i = 0; i < FUZZ_N_RECIPIENTS; i++)
        pt_seal_key_destroy(&keys[i]);
    return rc;
}

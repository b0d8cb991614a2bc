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
    h.recipients = (char **) fuzz_recipient_names;
    h.created_at_ms = pt_now_ms();
    h.purpose = "service_provision";
    h.agreement_id = "AGR-MX-GT-2025-01";
    h.case_token = "ct_7f3a9c";
    consent.consent_for_services = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    h.consent = &consent;

    uint8_t *env_bytes = NULL;
    size_t env_len = 0;
    if (pt_envelope_seal(&h, body, body_len, sender, (const pt_seal_key_t *const *) keys, n,
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
        if (s_write("json", name, (uint8_t) i, 1, t->example_json, strlen(t->example_json)) != 0)
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
        int rc = s_write("family", name, (uint8_t) i, 1, buf, len);
        if (rc == 0 && strcmp(t->name, "referral.request") == 0 && !*body_p) {
            *body_p = buf;
            *body_len = len;
        }
        else
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
    rc |= s_bridge_write("submit-full", s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, full, 0));
    /* The same Idempotency-Key: new, replayed, then with another body (409). */
    char *other = s_submit_body(accept, "\"GT-PGN\"", "");
    char *t = s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n",
                    full, 1);
    t = t ? s_req(t, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n", full, 1)
          : NULL;
    t = t ? s_req(t, "POST", "/v1/messages", S_AUTH S_JSON "Idempotency-Key: key-1\r\n", other,
                  1)
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
    rc |= s_bridge_write("submit-field-set", s_req(NULL, "POST", "/v1/messages",
                                                    S_AUTH S_JSON, inq, 0));
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
    rc |= s_bridge_write(
        "submit-withdraw-no-to",
        s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON,
              "{\"type\":\"consent.withdraw\",\"case_token\":\"" FUZZ_BRIDGE_CASE
              "\",\"body\":{}}",
              0));
    /* Malformed bodies and headers. */
    rc |= s_bridge_write("submit-invalid-json", s_req(NULL, "POST", "/v1/messages",
                                                       S_AUTH S_JSON, "{\"type\":", 0));
    rc |= s_bridge_write("submit-not-object",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON, "[1,2,3]", 0));
    rc |= s_bridge_write("submit-unknown-field",
                         s_req(NULL, "POST", "/v1/messages", S_AUTH S_JSON,
                               "{\"type\":\"referral.accept\",\"to\":[\"GT-PGN\"],"
                               "\"case_token\":\"C\",\"body\":{\"x\":1}}",
                               0));
    rc |= s_bridge_write("submit-text-plain",
                         s_req(NULL, "POST", "/v1/messages",
                               S_AUTH "Content-Type: text/plain\r\n", other, 0));
    rc |= s_bridge_write("submit-charset",
                         s_req(NULL, "POST", "/v1/messages",
                               S_AUTH "Content-Type: application/json; charset=utf-8\r\n", other,
                               0));
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
    t = t ? s_req(t, "POST", "/v1/messages/0190f6a8-0000-7000-8000-00000000ffff/ack", S_AUTH,
                  NULL, 1)
          : NULL;
    t = t ? s_req(t, "POST", "/v1/messages/not-a-uuid/ack", S_AUTH, NULL, 1) : NULL;
    rc |= s_bridge_write("ack-acked-unknown-invalid", t);
    const char *ids[] = {FUZZ_BRIDGE_OUT_QUEUED, FUZZ_BRIDGE_OUT_SUBMITTED,
                         FUZZ_BRIDGE_OUT_REJECTED, FUZZ_BRIDGE_OUTBOX_ONLY,
                         "0190f6a8-0000-7000-8000-00000000ffff", "%2e%2e"};
    const char *names[] = {"status-queued", "status-submitted", "status-rejected",
                           "status-outbox-only", "status-unknown", "status-escaped"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(target, sizeof target, "/v1/messages/%s", ids[i]);
        rc |= s_bridge_write(names[i], s_req(NULL, "GET", target, S_AUTH, NULL, 0));
    }
    rc |= s_bridge_write("trail", s_req(NULL, "GET", "/v1/cases/" FUZZ_BRIDGE_CASE "/trail",
                                        S_AUTH, NULL, 0));
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
    if (s_types(&body, &body_len) != 0 || s_control_frames() != 0 || s_bridge_seeds() != 0)
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

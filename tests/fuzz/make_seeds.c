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
    if (s_types(&body, &body_len) != 0 || s_control_frames() != 0)
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

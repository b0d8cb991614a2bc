/*  fuzz_header — raw bytes as the serialised Header of an envelope, through the
    header decode of pt_envelope_check. Then the same bytes decoded WITHOUT the
    check are handed to pt_envelope_open with payloads shaped to match, because
    pt_envelope_open promises not to read out of bounds on a header that did not
    come from pt_envelope_check.
*/
#include "pt_envelope.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pt_seal_key_t *s_seal_key;
static pt_sign_key_t *s_sign_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_seal_key) {
        static const uint8_t seed[32] = {7};
        s_seal_key = pt_seal_key_from_private(seed, sizeof seed);
        s_sign_key = pt_sign_key_from_private(seed, sizeof seed);
        if (!s_seal_key || !s_sign_key)
            abort();
    }
    Puente__V1__Envelope env = PUENTE__V1__ENVELOPE__INIT;
    env.header.data = (uint8_t *) data;
    env.header.len = size;
    Puente__V1__Header *h = NULL;
    pt_env_result_t r = pt_envelope_check(&env, &h);
    /* Without payloads no header can pass: at least one recipient is required. */
    if (r == PT_ENV_OK || h)
        abort();
    if (r != PT_ENV_MALFORMED && r != PT_ENV_PAYLOAD_MISMATCH)
        abort();

    /* Unchecked header, payloads of the right shape for every recipient. */
    Puente__V1__Header *raw = puente__v1__header__unpack(NULL, size, data);
    if (!raw)
        return 0;
    size_t n = raw->n_recipients;
    if (n > 0 && n <= 64) {
        Puente__V1__SealedPayload sealed[64];
        Puente__V1__SealedPayload *sealed_p[64];
        static uint8_t zeros[64];
        for (size_t i = 0; i < n; i++) {
            puente__v1__sealed_payload__init(&sealed[i]);
            sealed[i].recipient = raw->recipients[i];
            sealed[i].recipient_key_id = (ProtobufCBinaryData){32, zeros};
            sealed[i].ephemeral_public = (ProtobufCBinaryData){32, zeros};
            sealed[i].nonce = (ProtobufCBinaryData){12, zeros};
            sealed[i].ciphertext = (ProtobufCBinaryData){16, zeros};
            sealed_p[i] = &sealed[i];
        }
        env.n_payloads = n;
        env.payloads = sealed_p;
        uint8_t *body = NULL;
        size_t body_len = 0;
        r = pt_envelope_open(&env, raw, raw->recipients[0], s_seal_key, s_sign_key, &body,
                             &body_len);
        /* Zero ciphertext never authenticates, and the digests cannot match. */
        if (r == PT_ENV_OK || body)
            abort();
        if (pt_envelope_check(&env, &h) == PT_ENV_OK)
            puente__v1__header__free_unpacked(h, NULL);
    }
    puente__v1__header__free_unpacked(raw, NULL);
    return 0;
}

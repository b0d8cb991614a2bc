/*  fuzz_open — raw bytes as an Envelope, through everything a recipient does:
    bounded decode, pt_envelope_check, pt_envelope_verify_header and
    pt_envelope_open with the fixed keys of fuzz_keys.h (the seed envelopes are
    sealed with them, so mutations reach decryption and the payload decode), then
    the opened body decoded as its message type and printed as JSON.
    pt_envelope_open is tried even when the header signature fails: it must be
    safe on any envelope that passed pt_envelope_check.
*/
#include "fuzz_keys.h"
#include "pt_decode.h"
#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_types.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pt_sign_key_t *s_sender;
static pt_seal_key_t *s_recipients[FUZZ_N_RECIPIENTS];

static void s_keys(void)
{
    if (s_sender)
        return;
    s_sender = pt_sign_key_from_private(fuzz_sender_seed, sizeof fuzz_sender_seed);
    for (size_t i = 0; i < FUZZ_N_RECIPIENTS; i++)
        s_recipients[i] = pt_seal_key_from_private(fuzz_recipient_private[i], 32);
    if (!s_sender || !s_recipients[0] || !s_recipients[1])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_keys();
    pt_decode_limits_t limits = pt_decode_default_limits(1024 * 1024);
    ProtobufCMessage *msg = NULL;
    if (pt_decode_message(&puente__v1__envelope__descriptor, data, size, &limits, &msg, NULL, 0) !=
        PT_DECODE_OK)
        return 0;
    Puente__V1__Envelope *env = (Puente__V1__Envelope *) msg;
    Puente__V1__Header *h = NULL;
    if (pt_envelope_check(env, &h) != PT_ENV_OK) {
        if (h)
            abort();
        pt_decode_free(&msg);
        return 0;
    }
    pt_env_result_t verified = pt_envelope_verify_header(env, s_sender);
    if (verified != PT_ENV_OK && verified != PT_ENV_BAD_SIGNATURE)
        abort();
    const pt_type_t *type = pt_types_find(h->message_type);
    for (size_t i = 0; i < FUZZ_N_RECIPIENTS; i++) {
        uint8_t *body = NULL;
        size_t body_len = 0;
        pt_env_result_t r = pt_envelope_open(env, h, fuzz_recipient_names[i], s_recipients[i],
                                             s_sender, &body, &body_len);
        if ((r == PT_ENV_OK) != (body != NULL))
            abort();
        if (!body)
            continue;
        if (type) {
            ProtobufCMessage *payload = NULL;
            if (pt_decode_message(type->descriptor, body, body_len, &limits, &payload, NULL, 0) ==
                PT_DECODE_OK) {
                free(pt_json_from_message(payload, 0));
                pt_decode_free(&payload);
            }
        }
        free(body);
    }
    puente__v1__header__free_unpacked(h, NULL);
    pt_decode_free(&msg);
    return 0;
}

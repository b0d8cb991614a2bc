/*  fuzz_frame — raw bytes as the broker receives them: a ClientFrame decoded under
    the broker's default limits (1 MiB frame); a submit's envelope then goes through
    pt_envelope_check, as in the broker's decode and envelope-check stages.
*/
#include "pt_decode.h"
#include "pt_envelope.h"
#include "control.pb-c.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_decode_limits_t limits = pt_decode_default_limits(1024 * 1024);
    ProtobufCMessage *msg = NULL;
    char why[128];
    pt_decode_result_t rc = pt_decode_message(&puente__v1__client_frame__descriptor, data, size,
                                              &limits, &msg, why, sizeof why);
    if (rc != PT_DECODE_OK) {
        /* Contract: no message and a reason on every failure. */
        if (msg || why[0] == '\0')
            abort();
        return 0;
    }
    if (!msg || !protobuf_c_message_check(msg))
        abort();
    Puente__V1__ClientFrame *frame = (Puente__V1__ClientFrame *) msg;
    if (frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT && frame->submit) {
        Puente__V1__Header *h = NULL;
        pt_env_result_t r = pt_envelope_check(frame->submit, &h);
        if ((r == PT_ENV_OK) != (h != NULL))
            abort();
        if (h) {
            /* What the broker goes on to index without further checks. */
            if (h->n_recipients == 0 || h->n_recipients != frame->submit->n_payloads ||
                h->n_payload_sha256 != h->n_recipients || h->message_id.len != 16 ||
                h->sender_key_id.len != 32)
                abort();
            puente__v1__header__free_unpacked(h, NULL);
        }
    }
    pt_decode_free(&msg);
    if (msg)
        abort();
    return 0;
}

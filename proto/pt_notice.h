/*  pt_notice — the bytes a broker signs for a notice (overdue deadlines, ...),
    shared by the broker (which signs) and the SDK (which verifies):
        notice_id (be64) || lp16(kind) || lp16(case_token) || correlation_id (16) ||
        lp16(message_type) || be64(due_at_ms) || be64(created_at_ms)
    where lp16(x) = be16(len(x)) || x. Signed with the domain PT_DOMAIN_NOTICE.
*/
#ifndef PT_NOTICE_H
#define PT_NOTICE_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "pt_crypto.h"

#define PT_NOTICE_SIGNED_MAX 512

/* Writes the signed bytes of n into out. Returns their length, or 0 if the
   notice is malformed (correlation id not 16 bytes) or does not fit in cap. */
size_t pt_notice_signed_bytes(const Puente__V1__Notice *n, uint8_t *out, size_t cap);

/* Signs n with the broker's key into sig. 0 or -1. */
int pt_notice_sign(const pt_sign_key_t *broker, const Puente__V1__Notice *n,
                   uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies n->broker_signature (hostile input: every length checked). 0 if valid. */
int pt_notice_verify(const pt_sign_key_t *broker, const Puente__V1__Notice *n);

#endif

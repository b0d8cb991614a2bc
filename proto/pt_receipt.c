/*  pt_receipt — see pt_receipt.h. */
#include "pt_receipt.h"

#include <string.h>

void pt_receipt_signed_bytes(const uint8_t message_id[16], int64_t stored_at_ms,
                             const uint8_t header_sha256[32], const uint8_t event_hash[32],
                             uint8_t out[PT_RECEIPT_SIGNED_BYTES])
{
    memcpy(out, message_id, 16);
    uint64_t at = (uint64_t)stored_at_ms;
    for (int i = 0; i < 8; i++)
        out[16 + i] = (uint8_t)(at >> (56 - 8 * i));
    memcpy(out + 24, header_sha256, 32);
    memcpy(out + 56, event_hash, 32);
}

int pt_receipt_sign(const pt_sign_key_t *broker, const uint8_t message_id[16], int64_t stored_at_ms,
                    const uint8_t header_sha256[32], const uint8_t event_hash[32],
                    uint8_t sig[PT_ED25519_SIG_BYTES])
{
    uint8_t bytes[PT_RECEIPT_SIGNED_BYTES];
    pt_receipt_signed_bytes(message_id, stored_at_ms, header_sha256, event_hash, bytes);
    return pt_sign(broker, PT_DOMAIN_RECEIPT, bytes, sizeof bytes, sig);
}

int pt_receipt_verify(const pt_sign_key_t *broker, const uint8_t *message_id, size_t id_len,
                      int64_t stored_at_ms, const uint8_t *header_sha256, size_t header_len,
                      const uint8_t *event_hash, size_t event_len, const uint8_t *sig,
                      size_t sig_len)
{
    if (id_len != 16 || header_len != 32 || event_len != 32)
        return -1;
    uint8_t bytes[PT_RECEIPT_SIGNED_BYTES];
    pt_receipt_signed_bytes(message_id, stored_at_ms, header_sha256, event_hash, bytes);
    return pt_verify(broker, PT_DOMAIN_RECEIPT, bytes, sizeof bytes, sig, sig_len);
}

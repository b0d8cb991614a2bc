/*  pt_receipt — the bytes a broker signs for a receipt, shared by the broker
    (which signs) and clients and verifiers (which check):
        "puente.v1 receipt" || 0x00 || message_id(16) || be64(stored_at_ms) ||
        header_sha256(32) || event_hash(32)
*/
#ifndef PT_RECEIPT_H
#define PT_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "pt_crypto.h"

#define PT_RECEIPT_SIGNED_BYTES (16 + 8 + 32 + 32)

/* Writes the signed part (without the domain prefix, which pt_sign adds). */
void pt_receipt_signed_bytes(const uint8_t message_id[16], int64_t stored_at_ms,
                             const uint8_t header_sha256[32], const uint8_t event_hash[32],
                             uint8_t out[PT_RECEIPT_SIGNED_BYTES]);

/* Signs a receipt with the broker's key. 0 or -1. */
int pt_receipt_sign(const pt_sign_key_t *broker, const uint8_t message_id[16], int64_t stored_at_ms,
                    const uint8_t header_sha256[32], const uint8_t event_hash[32],
                    uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a receipt signature; every length is checked (hostile input). 0 if valid. */
int pt_receipt_verify(const pt_sign_key_t *broker, const uint8_t *message_id, size_t id_len,
                      int64_t stored_at_ms, const uint8_t *header_sha256, size_t header_len,
                      const uint8_t *event_hash, size_t event_len, const uint8_t *sig,
                      size_t sig_len);

#endif

/*  pt_receipt — the bytes a broker signs for receipts, shared by the broker
    (which signs) and clients and verifiers (which check). Two formats
    (Receipt.format, docs/protocol.md "Receipt signature"):

    Format 1 (and 0, receipts from before issue 8): broker_signature is over
        "puente.v1 receipt" || 0x00 || message_id(16) || be64(stored_at_ms) ||
        header_sha256(32) || event_hash(32)

    Format 2 (issue 8, one signature per committed batch): those same bytes are
    the receipt's leaf in an RFC 6962 Merkle tree (pt_merkle.h) over the batch's
    receipts,
        leaf = SHA-256(0x00 || "puente.v1 receipt" || 0x00 || message_id(16) ||
                       be64(stored_at_ms) || header_sha256(32) || event_hash(32))
        node = SHA-256(0x01 || left || right)
    and broker_signature is over
        "puente.v2 receipt batch" || 0x00 || be32(batch_size) || batch_root(32)
    A receipt carries batch_index (its leaf), batch_size and batch_path (the
    sibling hashes from the leaf up to the root, RFC 6962 PATH order).
*/
#ifndef PT_RECEIPT_H
#define PT_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "pt_crypto.h"
#include "pt_merkle.h"

#define PT_RECEIPT_SIGNED_BYTES (16 + 8 + 32 + 32)
#define PT_RECEIPT_BATCH_SIGNED_BYTES (4 + 32)

#define PT_RECEIPT_FORMAT_SINGLE 1
#define PT_RECEIPT_FORMAT_BATCH 2
/* The largest batch_size a verifier accepts (paths of at most 12 hashes); the
   broker's batches are at most PT_BROKER_BATCH_MAX (256) today. */
#define PT_RECEIPT_BATCH_MAX 4096

/* Writes the signed part (without the domain prefix, which pt_sign adds). */
void pt_receipt_signed_bytes(const uint8_t message_id[16], int64_t stored_at_ms,
                             const uint8_t header_sha256[32], const uint8_t event_hash[32],
                             uint8_t out[PT_RECEIPT_SIGNED_BYTES]);

/* Signs a receipt with the broker's key (format 1). 0 or -1. */
int pt_receipt_sign(const pt_sign_key_t *broker, const uint8_t message_id[16], int64_t stored_at_ms,
                    const uint8_t header_sha256[32], const uint8_t event_hash[32],
                    uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a format 1 receipt signature; every length is checked (hostile
   input). 0 if valid. */
int pt_receipt_verify(const pt_sign_key_t *broker, const uint8_t *message_id, size_t id_len,
                      int64_t stored_at_ms, const uint8_t *header_sha256, size_t header_len,
                      const uint8_t *event_hash, size_t event_len, const uint8_t *sig,
                      size_t sig_len);

/* The format 2 leaf hash of a receipt (above). Two SHA-256 blocks. */
void pt_receipt_leaf_hash(const uint8_t message_id[16], int64_t stored_at_ms,
                          const uint8_t header_sha256[32], const uint8_t event_hash[32],
                          pt_merkle_hash_t out);

/* Writes be32(batch_size) || batch_root, the part of a batch signature after
   the domain prefix. */
void pt_receipt_batch_signed_bytes(uint32_t batch_size, const pt_merkle_hash_t batch_root,
                                   uint8_t out[PT_RECEIPT_BATCH_SIGNED_BYTES]);

/* Signs a batch root (format 2) with the broker's key. 0, or -1 on a library
   failure or a batch_size of 0 or above PT_RECEIPT_BATCH_MAX. */
int pt_receipt_batch_sign(const pt_sign_key_t *broker, uint32_t batch_size,
                          const pt_merkle_hash_t batch_root, uint8_t sig[PT_ED25519_SIG_BYTES]);

/* The last format 2 batch signature a verifier checked: a receipt of the same
   batch (same size, root and signature under the same key) then costs its
   path's hashes and no Ed25519 verification. Zero it (memset) before first
   use; one per thread. */
typedef struct {
    int valid;
    uint8_t broker_public[PT_ED25519_PUBLIC_BYTES];
    uint32_t batch_size;
    pt_merkle_hash_t batch_root;
    uint8_t sig[PT_ED25519_SIG_BYTES];
} pt_receipt_cache_t;

/* Verifies a Receipt message against the broker's key (borrowed): format 0 or
   1 (no batch fields may be set) as pt_receipt_verify; format 2 by recomputing
   the leaf, folding batch_path (exactly the path length that batch_index and
   batch_size imply, each 32 bytes; 1 <= batch_size <= PT_RECEIPT_BATCH_MAX,
   batch_index < batch_size) into the root and verifying broker_signature over
   size and root. Any other format fails. Hostile input: never asserts, every
   length checked. cache: NULL, or updated as described above. 0 if valid, -1
   otherwise. Cost: one Ed25519 verification (none on a cache hit) and at most
   2 + 12 SHA-256. */
int pt_receipt_verify_message(const pt_sign_key_t *broker, const Puente__V1__Receipt *receipt,
                              pt_receipt_cache_t *cache);

#endif

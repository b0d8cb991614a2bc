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
    if (!message_id || !header_sha256 || !event_hash || id_len != 16 || header_len != 32 ||
        event_len != 32)
        return -1;
    uint8_t bytes[PT_RECEIPT_SIGNED_BYTES];
    pt_receipt_signed_bytes(message_id, stored_at_ms, header_sha256, event_hash, bytes);
    return pt_verify(broker, PT_DOMAIN_RECEIPT, bytes, sizeof bytes, sig, sig_len);
}

void pt_receipt_leaf_hash(const uint8_t message_id[16], int64_t stored_at_ms,
                          const uint8_t header_sha256[32], const uint8_t event_hash[32],
                          pt_merkle_hash_t out)
{
    /* The leaf is the format 1 signed message itself, domain prefix included. */
    uint8_t bytes[sizeof PT_DOMAIN_RECEIPT + PT_RECEIPT_SIGNED_BYTES];
    memcpy(bytes, PT_DOMAIN_RECEIPT, sizeof PT_DOMAIN_RECEIPT); /* with its 0x00 */
    pt_receipt_signed_bytes(message_id, stored_at_ms, header_sha256, event_hash,
                            bytes + sizeof PT_DOMAIN_RECEIPT);
    pt_merkle_leaf_hash(bytes, sizeof bytes, out);
}

void pt_receipt_batch_signed_bytes(uint32_t batch_size, const pt_merkle_hash_t batch_root,
                                   uint8_t out[PT_RECEIPT_BATCH_SIGNED_BYTES])
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(batch_size >> (24 - 8 * i));
    memcpy(out + 4, batch_root, PT_MERKLE_HASH_BYTES);
}

int pt_receipt_batch_sign(const pt_sign_key_t *broker, uint32_t batch_size,
                          const pt_merkle_hash_t batch_root, uint8_t sig[PT_ED25519_SIG_BYTES])
{
    if (batch_size == 0 || batch_size > PT_RECEIPT_BATCH_MAX)
        return -1;
    uint8_t bytes[PT_RECEIPT_BATCH_SIGNED_BYTES];
    pt_receipt_batch_signed_bytes(batch_size, batch_root, bytes);
    return pt_sign(broker, PT_DOMAIN_RECEIPT_BATCH, bytes, sizeof bytes, sig);
}

/* The number of siblings on the path of leaf index in a tree of n leaves: one
   per level where the node is not the lone last one. */
static size_t s_path_len(uint32_t index, uint32_t n)
{
    size_t len = 0;
    while (n > 1) {
        if ((index ^ 1u) < n)
            len++;
        index /= 2;
        n = (n + 1) / 2;
    }
    return len;
}

static int s_verify_batch(const pt_sign_key_t *broker, const Puente__V1__Receipt *r,
                          pt_receipt_cache_t *cache)
{
    uint32_t size = r->batch_size, index = r->batch_index;
    if (size == 0 || size > PT_RECEIPT_BATCH_MAX || index >= size ||
        r->n_batch_path != s_path_len(index, size) || (r->n_batch_path > 0 && !r->batch_path) ||
        r->broker_signature.len != PT_ED25519_SIG_BYTES || !r->broker_signature.data)
        return -1;
    pt_merkle_hash_t path[PT_MERKLE_MAX_PROOF];
    for (size_t i = 0; i < r->n_batch_path; i++) {
        if (r->batch_path[i].len != PT_MERKLE_HASH_BYTES || !r->batch_path[i].data)
            return -1;
        memcpy(path[i], r->batch_path[i].data, PT_MERKLE_HASH_BYTES);
    }
    pt_merkle_hash_t leaf, root;
    pt_receipt_leaf_hash(r->message_id.data, r->stored_at_ms, r->header_sha256.data,
                         r->event_hash.data, leaf);
    if (pt_merkle_inclusion_root(index, size, leaf, (const pt_merkle_hash_t *)path, r->n_batch_path,
                                 root) != 0)
        return -1;
    uint8_t pub[PT_ED25519_PUBLIC_BYTES];
    if (cache) {
        pt_sign_key_public(broker, pub);
        /* Equal to a triple verified before: the signature holds for this root. */
        if (cache->valid && cache->batch_size == size &&
            memcmp(cache->broker_public, pub, sizeof pub) == 0 &&
            memcmp(cache->batch_root, root, sizeof root) == 0 &&
            memcmp(cache->sig, r->broker_signature.data, PT_ED25519_SIG_BYTES) == 0)
            return 0;
    }
    uint8_t bytes[PT_RECEIPT_BATCH_SIGNED_BYTES];
    pt_receipt_batch_signed_bytes(size, root, bytes);
    if (pt_verify(broker, PT_DOMAIN_RECEIPT_BATCH, bytes, sizeof bytes, r->broker_signature.data,
                  r->broker_signature.len) != 0)
        return -1;
    if (cache) {
        cache->valid = 1;
        memcpy(cache->broker_public, pub, sizeof pub);
        cache->batch_size = size;
        memcpy(cache->batch_root, root, sizeof root);
        memcpy(cache->sig, r->broker_signature.data, PT_ED25519_SIG_BYTES);
    }
    return 0;
}

int pt_receipt_verify_message(const pt_sign_key_t *broker, const Puente__V1__Receipt *receipt,
                              pt_receipt_cache_t *cache)
{
    if (!broker || !receipt || receipt->message_id.len != 16 || !receipt->message_id.data ||
        receipt->header_sha256.len != 32 || !receipt->header_sha256.data ||
        receipt->event_hash.len != 32 || !receipt->event_hash.data)
        return -1;
    switch (receipt->format) {
    case 0:
    case PT_RECEIPT_FORMAT_SINGLE:
        /* A single-signature receipt carries no batch: a batch field set is not one. */
        if (receipt->batch_size != 0 || receipt->batch_index != 0 || receipt->n_batch_path != 0)
            return -1;
        return pt_receipt_verify(broker, receipt->message_id.data, 16, receipt->stored_at_ms,
                                 receipt->header_sha256.data, 32, receipt->event_hash.data, 32,
                                 receipt->broker_signature.data, receipt->broker_signature.len);
    case PT_RECEIPT_FORMAT_BATCH:
        return s_verify_batch(broker, receipt, cache);
    default:
        return -1;
    }
}

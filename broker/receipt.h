/*  receipt — stage 8: the signed answer to a sender after its batch's COMMIT
    returned. Each stored item's receipt is a leaf (proto/pt_receipt.h, format 2)
        SHA-256(0x00 || "puente.v1 receipt" || 0x00 || message_id(16) ||
                be64(stored_at_ms) || header_sha256(32) || event_hash(32))
    of an RFC 6962 Merkle tree over the batch's stored items (in batch order),
    and the broker signs once per batch, with its Ed25519 key,
        "puente.v2 receipt batch" || 0x00 || be32(batch_size) || batch_root(32)
    Each receipt carries that signature, batch_size, its batch_index and its
    batch_path (the sibling hashes leaf to root), so it verifies on its own
    (docs/protocol.md "Receipt signature"). The values are those the store
    committed (pt_store_receipt_t): for a repeated message id (DUPLICATE) the
    ORIGINAL stored time and hashes, so a resubmission gets the original leaf
    (under the signature of the batch that answered it). Receipt.duplicate,
    in_log and leaf_index are sent but not signed (leaf_index is proven by an
    inclusion proof against a signed checkpoint instead).

    A batch costs one Ed25519 signature and about 2n SHA-256 (n leaves, n - 1
    nodes), on the caller's thread, after the commit. If the signature failed,
    no item of the batch is signed and the broker answers each
    REJECT_RETRY_LATER instead of a receipt (the messages are stored;
    resubmitting the same envelope returns the receipt).

    Single-threaded. The broker key is borrowed and must outlive the receipts
    object.
*/
#ifndef PT_BROKER_RECEIPT_H
#define PT_BROKER_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "pt_crypto.h"
#include "store.h"

typedef struct _pt_receipts_t pt_receipts_t;

/* Receipts for batches of up to `capacity` items (at most
   PT_RECEIPT_BATCH_MAX), signed with broker_key (borrowed; must hold the
   private key). Signing runs on the caller's thread: one signature per batch
   is not worth a pool. NULL out of memory, if capacity is 0 or above
   PT_RECEIPT_BATCH_MAX. */
pt_receipts_t *pt_receipts_new(const pt_sign_key_t *broker_key, size_t capacity);

/* No-op on NULL; nulls the pointer. */
void pt_receipts_destroy(pt_receipts_t **self_p);

/* Forgets the previous batch and signs the receipts of this one: the items
   k < n with stored[k].result OK or DUPLICATE become the leaves (in order of k)
   of message_ids[k] (16 bytes) and stored[k]'s values; the tree's root is
   signed once. Other items stay unsigned; if the signature fails, all do.
   stored and message_ids are read during the call only. n above the capacity:
   the items past it stay unsigned. Cost: one Ed25519 signature and about 2n
   SHA-256. */
void pt_receipts_sign(pt_receipts_t *self, const pt_store_receipt_t *stored,
                      const uint8_t *const *message_ids, size_t n);

/* 1 if item k of the last batch was signed, else 0. */
int pt_receipts_signed(const pt_receipts_t *self, size_t k);

/* The BrokerFrame{receipt} (format 2: the batch signature, batch_size,
   batch_index and batch_path of item k) for item k of the last batch, packed
   into a new buffer the caller frees (*frame, *frame_len). message_id and
   stored must be the ones signed for k. 0, or -1 if item k is unsigned or out
   of memory (nothing allocated). O(log n). */
int pt_receipts_frame(const pt_receipts_t *self, size_t k, const uint8_t message_id[16],
                      const pt_store_receipt_t *stored, uint8_t **frame, size_t *frame_len);

#endif

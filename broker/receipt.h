/*  receipt — stage 8: the signed answer to a sender after its batch's COMMIT
    returned. The broker signs, with its Ed25519 key, exactly the bytes
    (proto/pt_receipt.h):
        "puente.v1 receipt" || 0x00 || message_id(16) || be64(stored_at_ms) ||
        header_sha256(32) || event_hash(32)
    where the values are those the store committed (pt_store_receipt_t): for a
    repeated message id (DUPLICATE) the ORIGINAL stored time and hashes, so a
    resubmission gets the original receipt. Receipt.duplicate, in_log and
    leaf_index are sent but not signed (leaf_index is proven by an inclusion
    proof against a signed checkpoint instead).

    One batch's signatures are computed on the worker pool (workers.h), one per
    stored item, after the commit; a signature that failed leaves that item
    unsigned and the broker answers REJECT_RETRY_LATER instead of a receipt
    (the message is stored; resubmitting the same envelope returns the receipt).

    Single-threaded except inside pt_receipts_sign. The broker key and the pool
    are borrowed and must outlive the receipts object.
*/
#ifndef PT_BROKER_RECEIPT_H
#define PT_BROKER_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "pt_crypto.h"
#include "store.h"
#include "workers.h"

typedef struct _pt_receipts_t pt_receipts_t;

/* Signatures for up to `capacity` receipts per batch, signed with broker_key
   (borrowed; must hold the private key) on workers (borrowed; NULL = on the
   caller's thread). NULL out of memory or if capacity is 0. */
pt_receipts_t *pt_receipts_new(const pt_sign_key_t *broker_key, pt_workers_t *workers,
                               size_t capacity);

/* No-op on NULL; nulls the pointer. */
void pt_receipts_destroy(pt_receipts_t **self_p);

/* Forgets the previous batch and signs the receipts of this one: for each k < n
   with stored[k].result OK or DUPLICATE, the signature over message_ids[k] (16
   bytes) and stored[k]'s values. Other items stay unsigned. stored and
   message_ids are read during the call only. n above the capacity: the items
   past it stay unsigned. Cost: n Ed25519 signatures spread over the pool. */
void pt_receipts_sign(pt_receipts_t *self, const pt_store_receipt_t *stored,
                      const uint8_t *const *message_ids, size_t n);

/* 1 if item k of the last batch was signed, else 0. */
int pt_receipts_signed(const pt_receipts_t *self, size_t k);

/* The BrokerFrame{receipt} for item k of the last batch, packed into a new
   buffer the caller frees (*frame, *frame_len). message_id and stored must be
   the ones signed for k. 0, or -1 if item k is unsigned or out of memory
   (nothing allocated). */
int pt_receipts_frame(const pt_receipts_t *self, size_t k, const uint8_t message_id[16],
                      const pt_store_receipt_t *stored, uint8_t **frame, size_t *frame_len);

#endif

/*  receipt — see receipt.h. */
#include "receipt.h"

#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "pt_merkle.h"
#include "pt_receipt.h"

/* Item k of a batch that is not a leaf of its tree. */
#define S_NO_LEAF SIZE_MAX

struct _pt_receipts_t {
    const pt_sign_key_t *broker_key;
    size_t capacity;
    /* The last batch: items k < items, leaf_of[k] = item k's leaf index or S_NO_LEAF. */
    size_t items;
    size_t *leaf_of;
    size_t leaves;           /* batch_size; 0 = nothing signed */
    pt_merkle_hash_t *nodes; /* every level of its tree (pt_merkle_tree_build) */
    uint8_t sig[PT_ED25519_SIG_BYTES];
};

pt_receipts_t *pt_receipts_new(const pt_sign_key_t *broker_key, size_t capacity)
{
    if (!broker_key || capacity == 0 || capacity > PT_RECEIPT_BATCH_MAX)
        return NULL;
    pt_receipts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->leaf_of = calloc(capacity, sizeof *self->leaf_of);
    self->nodes = calloc(pt_merkle_tree_hashes(capacity), sizeof *self->nodes);
    if (!self->leaf_of || !self->nodes)
        goto error;
    self->broker_key = broker_key;
    self->capacity = capacity;
    return self;
error:
    pt_receipts_destroy(&self);
    return NULL;
}

void pt_receipts_destroy(pt_receipts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->leaf_of);
    free((*self_p)->nodes);
    free(*self_p);
    *self_p = NULL;
}

void pt_receipts_sign(pt_receipts_t *self, const pt_store_receipt_t *stored,
                      const uint8_t *const *message_ids, size_t n)
{
    self->leaves = 0;
    self->items = 0;
    if (n > self->capacity)
        n = self->capacity;
    size_t leaves = 0;
    for (size_t k = 0; k < n; k++) {
        const pt_store_receipt_t *r = &stored[k];
        if (r->result != PT_STORE_OK && r->result != PT_STORE_DUPLICATE) {
            self->leaf_of[k] = S_NO_LEAF;
            continue;
        }
        pt_receipt_leaf_hash(message_ids[k], r->stored_at_ms, r->header_sha256, r->event_hash,
                             self->nodes[leaves]);
        self->leaf_of[k] = leaves++;
    }
    if (leaves == 0)
        return;
    pt_merkle_hash_t root;
    pt_merkle_tree_build(self->nodes, leaves, root);
    if (pt_receipt_batch_sign(self->broker_key, (uint32_t)leaves, root, self->sig) != 0)
        return; /* every item unsigned: each is answered REJECT_RETRY_LATER */
    self->leaves = leaves;
    self->items = n;
}

int pt_receipts_signed(const pt_receipts_t *self, size_t k)
{
    return self && k < self->items && self->leaf_of[k] < self->leaves;
}

int pt_receipts_frame(const pt_receipts_t *self, size_t k, const uint8_t message_id[16],
                      const pt_store_receipt_t *stored, uint8_t **frame, size_t *frame_len)
{
    if (!pt_receipts_signed(self, k))
        return -1;
    size_t index = self->leaf_of[k];
    pt_merkle_hash_t path[PT_MERKLE_MAX_PROOF];
    ProtobufCBinaryData path_items[PT_MERKLE_MAX_PROOF];
    size_t path_len = 0;
    if (pt_merkle_tree_path((const pt_merkle_hash_t *)self->nodes, self->leaves, index, path,
                            &path_len) != 0)
        return -1;
    for (size_t i = 0; i < path_len; i++)
        path_items[i] = (ProtobufCBinaryData){PT_MERKLE_HASH_BYTES, path[i]};
    Puente__V1__Receipt receipt = PUENTE__V1__RECEIPT__INIT;
    receipt.message_id.data = (uint8_t *)message_id;
    receipt.message_id.len = 16;
    receipt.stored_at_ms = stored->stored_at_ms;
    receipt.header_sha256.data = (uint8_t *)stored->header_sha256;
    receipt.header_sha256.len = 32;
    receipt.event_hash.data = (uint8_t *)stored->event_hash;
    receipt.event_hash.len = 32;
    receipt.duplicate = stored->result == PT_STORE_DUPLICATE;
    receipt.in_log = stored->leaf_index >= 0;
    receipt.leaf_index = stored->leaf_index >= 0 ? (uint64_t)stored->leaf_index : 0;
    receipt.broker_signature.data = (uint8_t *)self->sig;
    receipt.broker_signature.len = PT_ED25519_SIG_BYTES;
    receipt.format = PT_RECEIPT_FORMAT_BATCH;
    receipt.batch_size = (uint32_t)self->leaves;
    receipt.batch_index = (uint32_t)index;
    receipt.n_batch_path = path_len;
    receipt.batch_path = path_len ? path_items : NULL;
    Puente__V1__BrokerFrame out = PUENTE__V1__BROKER_FRAME__INIT;
    out.body_case = PUENTE__V1__BROKER_FRAME__BODY_RECEIPT;
    out.receipt = &receipt;
    size_t len = puente__v1__broker_frame__get_packed_size(&out);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    puente__v1__broker_frame__pack(&out, buf);
    *frame = buf;
    *frame_len = len;
    return 0;
}

/*  receipt — see receipt.h. */
#include "receipt.h"

#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "pt_receipt.h"

typedef struct {
    uint8_t sig[PT_ED25519_SIG_BYTES];
    int ok;
} s_sig_t;

struct _pt_receipts_t {
    const pt_sign_key_t *broker_key;
    pt_workers_t *workers;
    size_t capacity;
    s_sig_t *sigs;
    /* The batch being signed (valid during pt_receipts_sign only). */
    const pt_store_receipt_t *stored;
    const uint8_t *const *message_ids;
};

pt_receipts_t *pt_receipts_new(const pt_sign_key_t *broker_key, pt_workers_t *workers,
                               size_t capacity)
{
    if (!broker_key || capacity == 0)
        return NULL;
    pt_receipts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sigs = calloc(capacity, sizeof *self->sigs);
    if (!self->sigs)
        goto error;
    self->broker_key = broker_key;
    self->workers = workers;
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
    free((*self_p)->sigs);
    free(*self_p);
    *self_p = NULL;
}

/* Pool item k: writes only sigs[k]. The signing key is immutable. */
static void s_sign_one(size_t k, void *arg)
{
    pt_receipts_t *self = arg;
    const pt_store_receipt_t *r = &self->stored[k];
    if (r->result != PT_STORE_OK && r->result != PT_STORE_DUPLICATE)
        return;
    self->sigs[k].ok = pt_receipt_sign(self->broker_key, self->message_ids[k], r->stored_at_ms,
                                       r->header_sha256, r->event_hash, self->sigs[k].sig) == 0;
}

void pt_receipts_sign(pt_receipts_t *self, const pt_store_receipt_t *stored,
                      const uint8_t *const *message_ids, size_t n)
{
    memset(self->sigs, 0, self->capacity * sizeof *self->sigs);
    if (n > self->capacity)
        n = self->capacity;
    if (n == 0)
        return;
    self->stored = stored;
    self->message_ids = message_ids;
    if (self->workers)
        pt_workers_run(self->workers, n, s_sign_one, self);
    else
        for (size_t k = 0; k < n; k++)
            s_sign_one(k, self);
    self->stored = NULL;
    self->message_ids = NULL;
}

int pt_receipts_signed(const pt_receipts_t *self, size_t k)
{
    return self && k < self->capacity && self->sigs[k].ok;
}

int pt_receipts_frame(const pt_receipts_t *self, size_t k, const uint8_t message_id[16],
                      const pt_store_receipt_t *stored, uint8_t **frame, size_t *frame_len)
{
    if (!pt_receipts_signed(self, k))
        return -1;
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
    receipt.broker_signature.data = (uint8_t *)self->sigs[k].sig;
    receipt.broker_signature.len = PT_ED25519_SIG_BYTES;
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

/*  ack — see ack.h. */
#include "ack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

/* An acknowledgement that waits for the commit of its loop pass. */
typedef struct {
    uint8_t routing_id[PT_ROUTING_ID_MAX];
    size_t routing_id_len;
    char identity[PT_STORE_ORG_ID_MAX];
} s_wait_t;

struct _pt_acks_t {
    size_t capacity;
    size_t n;
    s_wait_t *waits;            /* waits[i] answers items[i] */
    pt_store_ack_item_t *items; /* items[i].recipient points into waits[i] */
};

pt_acks_t *pt_acks_new(size_t capacity)
{
    if (capacity == 0)
        return NULL;
    pt_acks_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->waits = calloc(capacity, sizeof *self->waits);
    self->items = calloc(capacity, sizeof *self->items);
    if (!self->waits || !self->items)
        goto error;
    self->capacity = capacity;
    return self;
error:
    pt_acks_destroy(&self);
    return NULL;
}

void pt_acks_destroy(pt_acks_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->waits);
    free((*self_p)->items);
    free(*self_p);
    *self_p = NULL;
}

Puente__V1__RejectCode pt_acks_queue(pt_acks_t *self, const pt_inbound_t *in,
                                     const Puente__V1__Ack *ack, pt_verdict_t *verdict)
{
    if (ack->message_id.len != 16)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "ack message_id must be 16 bytes");
    if (strnlen(in->identity, sizeof in->identity) >= PT_STORE_ORG_ID_MAX)
        return pt_verdict_reject(verdict, REJ(REJECT_NOT_FOUND),
                                 "no delivery of this message to you");
    if (self->n == self->capacity)
        return pt_verdict_reject(verdict, REJ(REJECT_RETRY_LATER),
                                 "too many acks in one pass; ack again");
    s_wait_t *wait = &self->waits[self->n];
    pt_store_ack_item_t *item = &self->items[self->n];
    memcpy(wait->routing_id, in->routing_id, in->routing_id_len);
    wait->routing_id_len = in->routing_id_len;
    snprintf(wait->identity, sizeof wait->identity, "%s", in->identity);
    memset(item, 0, sizeof *item);
    item->recipient = wait->identity;
    memcpy(item->message_id, ack->message_id.data, 16);
    self->n++;
    return REJ(REJECT_UNSPECIFIED);
}

size_t pt_acks_count(const pt_acks_t *self)
{
    return self ? self->n : 0;
}

int pt_acks_full(const pt_acks_t *self)
{
    return self && self->n == self->capacity;
}

pt_store_result_t pt_acks_commit(pt_acks_t *self, pt_store_t *store, int64_t now_ms,
                                 pt_ack_answer_fn *answer, void *arg)
{
    if (self->n == 0)
        return PT_STORE_OK;
    pt_store_result_t batch = pt_store_ack_batch(store, self->items, self->n, now_ms);
    for (size_t i = 0; i < self->n; i++) {
        const s_wait_t *wait = &self->waits[i];
        const pt_store_ack_item_t *item = &self->items[i];
        pt_store_result_t rc = batch == PT_STORE_OK ? item->result : batch;
        pt_ack_outcome_t out;
        memset(&out, 0, sizeof out);
        out.routing_id = wait->routing_id;
        out.routing_id_len = wait->routing_id_len;
        out.identity = wait->identity;
        out.message_id = item->message_id;
        out.first = rc == PT_STORE_OK;
        if (rc == PT_STORE_NOT_FOUND)
            pt_verdict_reject(&out.verdict, REJ(REJECT_NOT_FOUND),
                              "no delivery of this message to you");
        else if (rc != PT_STORE_OK && rc != PT_STORE_DUPLICATE)
            pt_verdict_reject(&out.verdict, REJ(REJECT_RETRY_LATER),
                              "storage unavailable; ack again");
        if (answer)
            answer(&out, arg);
    }
    self->n = 0;
    return batch;
}

int pt_ack_acked_frame(const uint8_t message_id[16], uint8_t **frame, size_t *frame_len)
{
    Puente__V1__Acked acked = PUENTE__V1__ACKED__INIT;
    acked.message_id.data = (uint8_t *)message_id;
    acked.message_id.len = 16;
    Puente__V1__BrokerFrame out = PUENTE__V1__BROKER_FRAME__INIT;
    out.body_case = PUENTE__V1__BROKER_FRAME__BODY_ACKED;
    out.acked = &acked;
    size_t len = puente__v1__broker_frame__get_packed_size(&out);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    puente__v1__broker_frame__pack(&out, buf);
    *frame = buf;
    *frame_len = len;
    return 0;
}

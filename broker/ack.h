/*  ack — stage 10: a recipient's acknowledgement of a delivered message.

    The broker queues the acks of one loop pass (pt_acks_queue) and commits them
    together in ONE transaction at the end of the pass (pt_acks_commit →
    pt_store_ack_batch): the event "acknowledged" once per delivery, the
    delivery done, the lifecycle moved on where an ack does that (store.h,
    pt_store_ack). Each ack is answered only after COMMIT returned: Acked for a
    first or repeated ack, REJECT_NOT_FOUND when the organisation has no
    delivery of that message, REJECT_RETRY_LATER when the commit failed (nothing
    was recorded; the SDK acks again). An ack is never answered before its pass
    commits, so an Acked is durable.

    What an ack is checked for before it is queued: a 16-byte message id, and an
    identity that fits the store (else REJECT_INVALID_FIELD / REJECT_NOT_FOUND,
    answered at once). Who may ack is decided by the store: only a recipient of
    the message has a delivery to acknowledge.

    Single-threaded: driven by the broker loop.
*/
#ifndef PT_BROKER_ACK_H
#define PT_BROKER_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "stage.h"
#include "store.h"
#include "transport.h"

typedef struct _pt_acks_t pt_acks_t;

/* A queue for up to `capacity` acks per commit. NULL out of memory or if
   capacity is 0. */
pt_acks_t *pt_acks_new(size_t capacity);

/* No-op on NULL; nulls the pointer. Queued acks are dropped unanswered. */
void pt_acks_destroy(pt_acks_t **self_p);

/* Checks ack from connection in and queues it (its routing id, identity and
   message id are copied). Returns 0 when queued; otherwise the reject code
   with *verdict filled, and nothing queued. The caller commits first when
   pt_acks_full says so; queueing into a full queue is REJECT_RETRY_LATER. */
Puente__V1__RejectCode pt_acks_queue(pt_acks_t *self, const pt_inbound_t *in,
                                     const Puente__V1__Ack *ack, pt_verdict_t *verdict);

/* Number of acks queued, and whether the queue is full. */
size_t pt_acks_count(const pt_acks_t *self);
int pt_acks_full(const pt_acks_t *self);

/* The outcome of one committed ack, handed to the answer callback. Pointers are
   valid during the call only. */
typedef struct {
    const uint8_t *routing_id;
    size_t routing_id_len;
    const char *identity;      /* the acknowledging organisation */
    const uint8_t *message_id; /* 16 bytes */
    int first;                 /* 1: recorded now (not a repeated ack) */
    pt_verdict_t verdict;      /* code 0: answer Acked; else answer this reject */
} pt_ack_outcome_t;

typedef void(pt_ack_answer_fn)(const pt_ack_outcome_t *outcome, void *arg);

/* Commits every queued ack in one transaction (store borrowed), then calls
   answer(outcome, arg) for each in the order queued, and empties the queue.
   Returns the store's result for the batch (PT_STORE_OK also when the queue
   was empty; then nothing is called). Cost: one pt_store_ack_batch. */
pt_store_result_t pt_acks_commit(pt_acks_t *self, pt_store_t *store, int64_t now_ms,
                                 pt_ack_answer_fn *answer, void *arg);

/* Packs BrokerFrame{acked} for message_id (16 bytes) into a new buffer the
   caller frees. 0, or -1 out of memory (nothing allocated). */
int pt_ack_acked_frame(const uint8_t message_id[16], uint8_t **frame, size_t *frame_len);

#endif

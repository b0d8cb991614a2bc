/*  deliver — stage 7: hands stored messages to their recipients' receiving
    connections, in submission order per correlation id, and offers unacknowledged
    ones again with backoff (1 s doubling to 60 s) once the recipient has stopped
    acknowledging for a second, or every 5 s while it keeps acknowledging
    (pt_deliver_acked); new messages only while fewer than the delivery window
    are in flight (store.h, pt_store_set_delivery_window). Delivery state lives in the
    database (store.c), so a broker restart or a recipient reconnect loses nothing:
    the in-memory part is only which connection receives for which organisation.
    Single-threaded: driven by the broker loop.

    Several brokers (issue 9): each delivery pass claims what it sends for this
    broker instance (pt_store_due_deliveries), so two brokers holding connections
    of one organisation never make the same attempt. Claims last a lease; every
    third of it the claims of the organisations still connected here are renewed
    (pt_store_claims_renew), and those of a connection that went are given up
    (pt_store_claims_release). A broker that dies stops renewing and the others
    take its deliveries over when the lease ends.
*/
#ifndef PT_DELIVER_H
#define PT_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "transport.h"

#define PT_DELIVER_BATCH 256
#define PT_DELIVER_SWEEP_MS 1000
#define PT_DELIVER_BACKOFF_MIN_MS 1000
#define PT_DELIVER_BACKOFF_MAX_MS 60000
/* While a recipient keeps acknowledging, its due retries wait (pt_deliver_acked)
   at most this long. */
#define PT_DELIVER_RETRY_FORCE_MS 5000

typedef struct _pt_deliver_t pt_deliver_t;

/* store and transport are borrowed. */
pt_deliver_t *pt_deliver_new(pt_store_t *store, pt_transport_t *transport);
void pt_deliver_destroy(pt_deliver_t **self_p);

/* Issue 9: the polling fallback (a pass for every attached organisation every
   poll_ms; default PT_DELIVER_SWEEP_MS) and the claim lease of the store (claims
   are renewed every lease_ms / 3). Values <= 0 keep the current one. */
void pt_deliver_configure(pt_deliver_t *self, int64_t poll_ms, int64_t lease_ms);

/* Schedules a pass for every attached organisation (wake-ups may have been
   missed, e.g. the notification session was reconnected). */
void pt_deliver_wake_all(pt_deliver_t *self);

/* Makes routing_id the receiving connection of org (replacing an older one) and
   schedules a delivery pass for it. */
int pt_deliver_attach(pt_deliver_t *self, const char *org, const uint8_t *routing_id,
                      size_t routing_id_len);

/* Issue 6: forgets org's receiving connection if it is routing_id (its CURVE key
   was revoked or its window ended); nothing more is delivered there. 1 if it was
   forgotten, 0 otherwise. */
int pt_deliver_detach(pt_deliver_t *self, const char *org, const uint8_t *routing_id,
                      size_t routing_id_len);

/* Schedules a delivery pass for org (new message stored, or an ack freed the next
   message of a correlation id). No-op if org has no receiving connection. */
void pt_deliver_wake(pt_deliver_t *self, const char *org);

/* An acknowledgement from org was committed at now_ms: schedules a pass (the
   next message of that correlation id may be due) and holds back retries to org
   while it keeps acknowledging (see PT_DELIVER_RETRY_FORCE_MS). */
void pt_deliver_acked(pt_deliver_t *self, const char *org, int64_t now_ms);

/* The receiving connection of org: 0 and *routing_id (borrowed, valid until the
   next attach) and *routing_id_len, or -1 when org has none. */
int pt_deliver_routing_id(const pt_deliver_t *self, const char *org, const uint8_t **routing_id,
                          size_t *routing_id_len);

/* Runs the scheduled passes and, every poll interval (PT_DELIVER_SWEEP_MS unless
   configured), a pass for every attached organisation (retries), and renews
   claims when due. Returns PT_STORE_UNAVAILABLE if the database
   could not be reached (passes stay scheduled). */
pt_store_result_t pt_deliver_run(pt_deliver_t *self, int64_t now_ms);

/* Milliseconds until pt_deliver_run has work (0 = now). */
int64_t pt_deliver_timeout_ms(const pt_deliver_t *self, int64_t now_ms);

/* Backoff before attempt number attempts+1. */
int64_t pt_deliver_backoff_ms(uint32_t attempts);

/* Frames handed to recipients' connections since creation (the broker adds the
   growth to puente_messages_total{deliver,ok}; a counter here keeps this module
   free of the metrics library). */
uint64_t pt_deliver_sent_count(const pt_deliver_t *self);

/* Organisations with a receiving connection now (puente_connected_organisations). */
size_t pt_deliver_receiving_count(const pt_deliver_t *self);

/* Issue 6: a delivery already offered max_attempts times is not offered again
   (the broker's dead-letter sweep, pt_store_dead_letter_sweep, moves it aside
   once the wait after its last offer passed). 0 = no limit (the default). */
void pt_deliver_set_max_attempts(pt_deliver_t *self, uint32_t max_attempts);

#endif

/*  fanout — who must hear of a consent withdrawal or an erasure request, and who
    has not acknowledged one yet. Pure bookkeeping over a case's trail events
    (store.h, in chain order): no SQL, no clock.

    Parties of a case token: every organisation that is the actor or a
    counterparty of a "stored" event of that case, i.e. that sent or was sent a
    message about it. A consent.withdraw / case.erasure_request (family
    "consent" in pt_types) must be addressed to every party except its sender
    (REJECT_FANOUT_INCOMPLETE otherwise), and only to parties.

    Pending acknowledgement: for every stored message of family "consent" and
    every referral.revoke (pt_fanout_tracked), its recipients that have no
    "acknowledged" event for that message id. A referral revocation reaches the
    referral's recipient (a lifecycle rule: only parties of that referral), not
    every party of the case: it withdraws what that referral disclosed, and
    telling the case's other organisations about it would itself disclose it.
*/
#ifndef PT_FANOUT_H
#define PT_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "stage.h"

typedef struct _pt_fanout_t pt_fanout_t;

/* 1 if message_type is one the broker fans out (family "consent"). */
int pt_fanout_type(const char *message_type);

/* 1 if the recipients' acknowledgements of message_type are tracked until they
   come (the fan-out types and referral.revoke). */
int pt_fanout_tracked(const char *message_type);

pt_fanout_t *pt_fanout_new(void);
void pt_fanout_destroy(pt_fanout_t **self_p);

/* Feeds one trail event (strings copied as needed; message_id 16 bytes or NULL).
   counterparty may be a ','-joined list. 0 or -1 (out of memory: the fanout is
   then unusable and every later call fails). */
int pt_fanout_add_event(pt_fanout_t *self, const char *kind, const char *message_type,
                        const uint8_t *message_id, const char *actor, const char *counterparty);

/* 1 if org is a party of the case. */
int pt_fanout_is_party(const pt_fanout_t *self, const char *org);

/* Number of parties, and the i-th in order of first appearance (NULL past the end).
   Owned by the fanout. */
size_t pt_fanout_party_count(const pt_fanout_t *self);
const char *pt_fanout_party_at(const pt_fanout_t *self, size_t i);

/* The policy for a fan-out message from sender to recipients: 0 (pass),
   REJECT_NOT_PERMITTED (the sender is not a party of the case, or a recipient
   is not), REJECT_FANOUT_INCOMPLETE (a party other than the sender is missing,
   named in the reason). O(parties x recipients). */
Puente__V1__RejectCode pt_fanout_check(const pt_fanout_t *self, const char *sender,
                                       const char *const *recipients, size_t n_recipients,
                                       pt_verdict_t *verdict);

/* Number of organisations that have not acknowledged a fan-out message (computes
   the list that pt_fanout_pending_at then reads: call it first), and the i-th
   (in order of the messages, each once). */
size_t pt_fanout_pending_count(pt_fanout_t *self);
const char *pt_fanout_pending_at(const pt_fanout_t *self, size_t i);

#endif

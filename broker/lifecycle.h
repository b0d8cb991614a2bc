/*  lifecycle — stage 5: is this message a legal step of its case lifecycle?
    Pure functions over in-memory state (no SQL, no clock): the broker loads the
    current state of every correlation id in a batch (store.h), runs
    pt_lifecycle_check on each message in submission order against that copy, and
    hands the resulting transition to pt_store_submit_batch, which persists it in
    the same transaction as the message.

    A lifecycle is keyed by the header's correlation_id. Its first message
    (referral.request, transfer.request, transfer.ask, inquiry.request,
    tracing.request, return.notice) creates it with the sender as initiator and the
    recipients as counterparty (for tracing: the focal points). Every later
    message must carry the same correlation_id, come from a party and be addressed
    to parties only. The kinds, states and transitions are listed in README.md
    ("Case lifecycles"); the states "delivered" and "received" are set by the
    store when the opening message is delivered / acknowledged, "expired" by the
    respond-by sweep.

    Header conventions the rules read (the broker cannot read the payload):
      reason_code         required on *.reject, on tracing.close / reintegration.close
                          (except tracing.close after reunification) and on
                          inquiry.close before a report; closure codes are checked
                          against the family's list.
      tracing.verification  reason_code is a comma-separated list of codes; the
                          first is the outcome: "verified", "falsely_attributed" or
                          "rejected". "verified" also needs the codes
                          "child_agrees" and "family_willing" in the list.
      best_interests_ref  required on return.notice and tracing.reunification_plan.
      respond_by_ms       read from the opening message: the respond-by deadline.
      follow_up_due_ms    read from reintegration.plan / reintegration.followup:
                          the next follow-up due date (0 = none), replacing the
                          previous one.
*/
#ifndef PT_LIFECYCLE_H
#define PT_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

#include "stage.h"
#include "store.h"

#define PT_LIFECYCLE_NAME_MAX PT_STORE_NAME_MAX
#define PT_LIFECYCLE_PARTIES_MAX PT_STORE_PARTIES_MAX

typedef enum {
    PT_LIFECYCLE_ROLE_INITIATOR = 0,
    PT_LIFECYCLE_ROLE_COUNTERPARTY = 1,   /* recipient of the opening message */
    PT_LIFECYCLE_ROLE_FOCAL_POINT = 2,    /* tracing: a recipient of the tracing.request */
    PT_LIFECYCLE_ROLE_OTHER = 3           /* not a party */
} pt_lifecycle_role_t;

/* The current state of one lifecycle (kind[0] == 0: none yet) and the owner of
   a case token: the store's rows, used as the in-memory copy of a batch. */
typedef pt_store_lifecycle_t pt_lifecycle_t;
typedef pt_store_case_owner_t pt_case_owner_t;

/* What an accepted message does, for the store. Strings point into the struct. */
typedef struct {
    int changes;                          /* 1 if the lifecycle row is created or moved */
    char from[PT_LIFECYCLE_NAME_MAX];     /* "" when the message creates the lifecycle */
    char to[PT_LIFECYCLE_NAME_MAX];
    char owner_to[PT_STORE_ORG_ID_MAX];   /* non-empty: case ownership moves to this org */
    char owner_from[PT_STORE_ORG_ID_MAX]; /* the owner it moves from */
    char owner_first[PT_STORE_ORG_ID_MAX]; /* non-empty: the case had no owner and this
                                             opening message's sender becomes it */
} pt_lifecycle_effect_t;

/* The lifecycle kind a message type belongs to ("referral", ...), or NULL for an
   unknown type. Static strings. */
const char *pt_lifecycle_kind_of(const char *message_type);

/* 1 if message_type opens a lifecycle of its kind. */
int pt_lifecycle_opens(const char *message_type);

/* The sender's role in lc (kind must be set). */
pt_lifecycle_role_t pt_lifecycle_role(const pt_lifecycle_t *lc, const char *sender);

/* The transition table alone: in state (NULL or "" = no lifecycle yet) of kind, a
   message of header->message_type from a sender with role. On pass returns 0 and
   *next_state is the new state (a static string); otherwise a reject code:
   ILLEGAL_TRANSITION (type not allowed in that state, or of another kind),
   NOT_PERMITTED (allowed in that state but not for this role), REASON_REQUIRED,
   BEST_INTERESTS_REQUIRED, CONSENT_MISSING (verification without the child's
   agreement and the family's willingness), INVALID_FIELD (unknown outcome or
   closure code). Reads only message_type, reason_code and best_interests_ref. */
Puente__V1__RejectCode pt_lifecycle_step(const char *kind, const char *state,
                                         pt_lifecycle_role_t role,
                                         const Puente__V1__Header *header,
                                         const char **next_state, pt_verdict_t *verdict);

/* Checks header against lc (the state as left by every earlier message of the
   batch) and, on pass, updates lc in place and fills effect. Also checks that the
   recipients are parties and, for a first message, records initiator,
   counterparty, case token and respond-by; records the follow-up due date of a
   plan or follow-up report. owner (may be NULL) is the case owner, updated in
   place: the sender of the first opening message of a case token becomes its
   owner (effect->owner_first), and ownership moves when a transfer is accepted
   (transfer: to the acceptor; transfer_ask: to the requester when it accepts
   the owner's transfer.request, state "transferred"). NOT_CASE_OWNER: a former
   owner sends, a transfer.request not from the owner, a transfer.ask not
   addressed to the owner or about a case without owner. 0 or a reject code (see
   pt_lifecycle_step). Whether a transfer.ask comes from a party of the case is
   checked by the broker (broker.c, from the trail). */
Puente__V1__RejectCode pt_lifecycle_check(pt_lifecycle_t *lc, pt_case_owner_t *owner,
                                          const Puente__V1__Header *header,
                                          pt_lifecycle_effect_t *effect, pt_verdict_t *verdict);

/* 1 if org appears in a ','-joined list. */
int pt_lifecycle_list_has(const char *list, const char *org);

#endif

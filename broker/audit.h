/*  audit — the broker's side of the global audit log (issue 4): signed
    checkpoints at a cadence, inclusion and consistency proofs, and scoped
    auditor queries, each of which is itself a case event.

    Checkpoint cadence ([broker] checkpoint_events and checkpoint_seconds, env
    PUENTE_CHECKPOINT_EVENTS / PUENTE_CHECKPOINT_SECONDS, pt_audit_set_cadence):
      checkpoint_events   (default 1000) leaves since the last checkpoint
      checkpoint_seconds  (default 10)   seconds since the last checkpoint
    whichever comes first, checked at most every 200 ms, at clean shutdown
    (pt_audit_tick with force) and when a CheckpointRequest asks for one covering
    a size with sign_now. Only a log that grew gets a new checkpoint. Checkpoints
    are version 2 (pt_audit.h): seq and the previous checkpoint's hash signed.

    Several brokers (issue 9): with a session (pt_audit_set_session), checkpoints
    are signed only while that session holds the signer lock (an advisory lock,
    pt_store_session_signer), so one broker signs at a time; the others try to
    take the lock once a second and the first to get it after the holder's
    session ended signs the next checkpoint. Every broker signs with the same
    broker key (docs/ha.md).

    Every answer is either a packed BrokerFrame or a reject code with a reason.
    Single-threaded: owned by the broker loop.
*/
#ifndef PT_BROKER_AUDIT_H
#define PT_BROKER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "directory.h"
#include "pt_crypto.h"
#include "store.h"

typedef struct _pt_audit_t pt_audit_t;

typedef struct {
    uint8_t *frame;                  /* packed BrokerFrame to send (malloc'd), or NULL */
    size_t len;
    Puente__V1__RejectCode code;     /* when frame is NULL */
    char reason[200];
} pt_audit_answer_t;

/* Borrowed: store, the broker's signing key (private), directory. NULL on OOM. */
pt_audit_t *pt_audit_new(pt_store_t *store, const pt_sign_key_t *broker_key,
                         const pt_directory_t *directory);
void pt_audit_destroy(pt_audit_t **self_p);

#define PT_AUDIT_DEFAULT_CHECKPOINT_EVENTS 1000
#define PT_AUDIT_DEFAULT_CHECKPOINT_SECONDS 10

/* Sets the cadence: a checkpoint after events new leaves or seconds since the
   last one, whichever first. 0 keeps the current value. */
void pt_audit_set_cadence(pt_audit_t *self, uint64_t events, int64_t seconds);

/* Checkpoints are signed only while session (borrowed, may be NULL = always)
   holds the signer lock. */
void pt_audit_set_session(pt_audit_t *self, pt_store_session_t *session);

/* Signs and stores a checkpoint of the log if one is due (force: whenever the log
   grew since the last one). Failures are logged and retried on a later tick. */
void pt_audit_tick(pt_audit_t *self, int64_t now_ms, int force);

/* CheckpointRequest: any authenticated identity. tree_size N: that checkpoint;
   covering_size N: the earliest checkpoint with tree_size >= N, signing one now
   when sign_now and the log already holds N leaves (else REJECT_NOT_FOUND). */
void pt_audit_checkpoint_request(pt_audit_t *self, const Puente__V1__CheckpointRequest *request,
                                 pt_audit_answer_t *out);

/* ProofRequest: any authenticated identity (proofs reveal only hashes). Reads
   the first tree_size leaves: O(tree_size). */
void pt_audit_proof_request(pt_audit_t *self, const Puente__V1__ProofRequest *request,
                            pt_audit_answer_t *out);

/* AuditQuery from identity: auditors within their scope, the operator for all;
   anyone else REJECT_NOT_PERMITTED. An auditor's query must carry its signature
   (pt_audit_query.h; REJECT_BAD_QUERY_SIGNATURE), signed_at_ms within
   PT_AUDIT_QUERY_WINDOW_MS of now and a nonce not seen in that window
   (REJECT_STALE_QUERY). Every query, from anyone, is appended as a case event on
   the chain named after the identity: "audit_query" BEFORE it is run (if that
   append fails: REJECT_RETRY_LATER and nothing is answered), or
   "audit_query_refused" / "audit_query_malformed" with the reject code; detail =
   SHA-256(signed bytes) || SHA-256(signature) || be32(code) (docs/protocol.md
   "Auditor queries"). trail, activity and items answer at most query->limit rows
   (0 = 10000) after query->after, with truncated / next_after; items filters by
   scope in SQL. */
void pt_audit_query(pt_audit_t *self, const char *identity, const Puente__V1__AuditQuery *query,
                    pt_audit_answer_t *out);

/* Frees out->frame and resets out. */
void pt_audit_answer_clear(pt_audit_answer_t *out);

#endif

/* Issue 4, "rejections are case events": appends a "rejected" event for a
   submission that passed authentication and signature verification but was
   refused by policy, consent, fan-out or lifecycle rules, on the chain of its
   case token (so it is in the Merkle log too): actor = sender, counterparty =
   recipients joined by ',', message_type, message_id NULL, detail = be32(code)
   || header_sha256 (32) || message_id (16). No payload, no personal data. One
   insert in its own transaction; a failure is logged (the refusal stands).
   Nothing is appended when the case token is not well formed. */
void pt_audit_log_rejected(pt_audit_t *self, const Puente__V1__Header *header,
                           const uint8_t header_sha256[32], Puente__V1__RejectCode code);

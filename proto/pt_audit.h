/*  pt_audit — the global audit log's formats and its verifier, shared by the
    broker (which writes through broker/sql/006_audit_log.sql and signs
    checkpoints) and by `puente audit verify` (which trusts neither).

    Leaf encoding (PT_AUDIT_LEAF_BYTES = 55 bytes), one per case event:
        "puente.v1 leaf" || 0x00 || event_hash(32) || be64(event_id)
    leaf hash = pt_merkle_leaf_hash(encoding) = SHA-256(0x00 || encoding).
    The event hash (pt_trail.h) already covers case token, seq, time, kind,
    parties, message id and header digest; event_id binds the leaf to its row.
    Leaf index = position in commit order (audit_log.leaf_index).

    Checkpoint (signed tree head), signed with the broker's Ed25519 key under
    PT_DOMAIN_CHECKPOINT2 (pt_sign adds "puente.v2 checkpoint" || 0x00):
        be64(seq) || be64(tree_size) || root(32) || be64(at_ms) || prev_hash(32)
                                                            (88 bytes)
    seq numbers the checkpoints 1, 2, 3, ... without gaps; prev_hash is the
    checkpoint hash of checkpoint seq - 1 (32 zero bytes for seq 1), where
        checkpoint hash = SHA-256(the 88 signed bytes || signature(64)).
    So the checkpoints form a signed hash chain: deleting, inserting or
    reordering one breaks a seq or a link that only the broker's key can mend.
    Version 1 (before 013_checkpoint_chain.sql; seq 0 here, NULL in SQL) signed
        be64(tree_size) || root(32) || be64(at_ms)          (48 bytes)
    under "puente.v1 checkpoint"; such rows still verify, and the chain starts
    at the first version 2 checkpoint.

    Frontier as stored in audit_head.frontier: the roots of the perfect subtrees
    of the tree of `size` leaves, largest (leftmost) first, 32 bytes each, one per
    bit set in size.

    The verifier (pt_audit_verifier_t) is fed rows in a fixed order and collects
    findings that name table, row id, case token and seq; it never reads a
    database itself (the CLI does, through the read-only role puente_auditor).
*/
#ifndef PT_AUDIT_H
#define PT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "pt_crypto.h"
#include "pt_merkle.h"
#include "pt_trail.h"

#define PT_DOMAIN_CHECKPOINT "puente.v1 checkpoint"
#define PT_AUDIT_LEAF_BYTES (15 + 32 + 8)
#define PT_AUDIT_CHECKPOINT_BYTES (8 + 32 + 8)
#define PT_DOMAIN_CHECKPOINT2 "puente.v2 checkpoint"
#define PT_AUDIT_CHECKPOINT2_BYTES (8 + 8 + 32 + 8 + 32)

/* A checkpoint as signed (version 2; seq 0 = a version 1 checkpoint, whose
   prev_hash is ignored). */
typedef struct {
    uint64_t seq;
    uint64_t tree_size;
    uint8_t root[32];
    int64_t at_ms;
    uint8_t prev_hash[32];
} pt_audit_checkpoint_t;

/* Writes the canonical leaf encoding of one case event. */
void pt_audit_leaf_encode(const uint8_t event_hash[32], int64_t event_id,
                          uint8_t out[PT_AUDIT_LEAF_BYTES]);

/* The Merkle leaf hash of one case event (RFC 6962 leaf prefix over the encoding). */
void pt_audit_leaf_hash(const uint8_t event_hash[32], int64_t event_id, pt_merkle_hash_t out);

/* Rebuilds a frontier from audit_head (size, frontier bytes). 0, or -1 if len is not
   32 x popcount(size) (hostile input: every length checked). O(log size). */
int pt_audit_frontier_decode(uint64_t size, const uint8_t *bytes, size_t len,
                             pt_merkle_frontier_t *out);

/* The 48 signed bytes of a checkpoint (without the domain prefix). */
void pt_audit_checkpoint_bytes(uint64_t tree_size, const uint8_t root[32], int64_t at_ms,
                               uint8_t out[PT_AUDIT_CHECKPOINT_BYTES]);

/* Signs a checkpoint with the broker's private key. 0 or -1. */
int pt_audit_checkpoint_sign(const pt_sign_key_t *broker, uint64_t tree_size,
                             const uint8_t root[32], int64_t at_ms,
                             uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a checkpoint signature; every length is checked. 0 if valid. */
int pt_audit_checkpoint_verify(const pt_sign_key_t *broker, uint64_t tree_size,
                               const uint8_t *root, size_t root_len, int64_t at_ms,
                               const uint8_t *sig, size_t sig_len);

/* The 88 signed bytes of a version 2 checkpoint (without the domain prefix). */
void pt_audit_checkpoint2_bytes(const pt_audit_checkpoint_t *cp,
                                uint8_t out[PT_AUDIT_CHECKPOINT2_BYTES]);

/* Signs cp (version 2 when cp->seq > 0, else version 1). 0 or -1. */
int pt_audit_checkpoint2_sign(const pt_sign_key_t *broker, const pt_audit_checkpoint_t *cp,
                              uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies the signature of cp (version 2 when cp->seq > 0, else version 1);
   sig is hostile (length checked). 0 if valid. */
int pt_audit_checkpoint2_verify(const pt_sign_key_t *broker, const pt_audit_checkpoint_t *cp,
                                const uint8_t *sig, size_t sig_len);

/* The checkpoint hash that the next checkpoint's prev_hash names:
   SHA-256(signed bytes || sig). sig must be 64 bytes. */
void pt_audit_checkpoint2_hash(const pt_audit_checkpoint_t *cp,
                               const uint8_t sig[PT_ED25519_SIG_BYTES], uint8_t out[32]);

/* Retention: a copy of the packed Envelope with every sealed payload's ciphertext,
   ephemeral key and nonce emptied; header bytes, header signature, recipients and
   key ids stay, so the header still verifies and the trail still proves what was
   sent. *out_p is malloc'd (caller frees). 0, or -1 if env does not decode. */
int pt_audit_strip_payloads(const uint8_t *env, size_t len, uint8_t **out_p, size_t *out_len);

/* --- the verifier -------------------------------------------------------------- */

typedef struct _pt_audit_verifier_t pt_audit_verifier_t;

/* One problem found: where (table and row id, plus case token and seq when the
   row belongs to a case) and what. Strings are NUL-terminated. */
typedef struct {
    char table[24];           /* case_events, audit_log, audit_head, checkpoints, messages */
    char row[48];             /* event_id, leaf_index, tree_size or message id */
    char case_token[129];
    uint64_t seq;             /* 0 when not a case event */
    char problem[192];
} pt_audit_finding_t;

/* A verifier. broker_key (borrowed, may be NULL): the broker's signing key that
   every checkpoint must be signed with; NULL trusts the signer recorded with the
   first checkpoint (and then requires every other one to match). NULL on OOM. */
pt_audit_verifier_t *pt_audit_verifier_new(const pt_sign_key_t *broker_key);
void pt_audit_verifier_destroy(pt_audit_verifier_t **self_p);

/* Feed order: org keys, messages, events, checkpoints, leaves, head, then finish.
   Each returns 0, or -1 only on out of memory / order misuse (findings are not
   errors). Byte arguments are hostile: every length is checked. */

/* One org_keys row: window [valid_from_ms, valid_until_ms) (0 = still current) and
   revocation time (0 = not revoked), as in proto/pt_key_window.h. */
int pt_audit_verifier_key_set(pt_audit_verifier_t *self, const char *org_id,
                              const uint8_t *sign_public, size_t len, int64_t valid_from_ms,
                              int64_t valid_until_ms, int64_t revoked_at_ms);

/* Same, for a row without revocation (before 008_key_windows.sql). */
int pt_audit_verifier_org_key(pt_audit_verifier_t *self, const char *org_id,
                              const uint8_t *sign_public, size_t len, int64_t valid_from_ms,
                              int64_t valid_until_ms);

/* One messages row. Checks SHA-256(envelope.header) = header_sha256, the header's
   message id, sender and case token against the row, and the header signature with
   the sender's key the header names (sender_key_id), which must have been usable
   for it: pt_key_window_check(window, the header's created time, stored_at_ms) is
   OK, so a key replaced or revoked later still verifies what it signed before. A
   message whose payload was deleted by retention is checked the same way (the
   header stays). */
int pt_audit_verifier_message(pt_audit_verifier_t *self, const uint8_t *message_id, size_t id_len,
                              const char *sender, const char *case_token, int64_t stored_at_ms,
                              const uint8_t *header_sha256, size_t sha_len,
                              const uint8_t *envelope, size_t envelope_len);

/* One case_events row, in (case_token, seq) order. Checks seq continuity, prev_hash
   = the previous event's hash, hash = pt_trail_hash, and for message events that the
   message is stored with detail = its header SHA-256. */
int pt_audit_verifier_event(pt_audit_verifier_t *self, int64_t event_id,
                            const pt_trail_event_t *ev, const uint8_t *prev_hash,
                            size_t prev_len, const uint8_t *hash, size_t hash_len);

/* One version 1 checkpoints row (seq NULL): pt_audit_verifier_checkpoint2 with
   seq 0. */
int pt_audit_verifier_checkpoint(pt_audit_verifier_t *self, uint64_t tree_size,
                                 const uint8_t *root, size_t root_len, int64_t at_ms,
                                 const uint8_t *signer, size_t signer_len, const uint8_t *sig,
                                 size_t sig_len);

/* One checkpoints row, in (seq NULLS FIRST, tree_size) order: signature, signer;
   for version 2 rows (seq > 0) also seq = previous seq + 1 (else "deleted or
   inserted"), prev_hash = hash of the previous row (else "broken link"), and a
   tree size larger than the previous checkpoint's (else "shrinks"). Roots are
   compared when the leaves reach tree_size. prev_hash is hostile (length
   checked); ignored when seq is 0. */
int pt_audit_verifier_checkpoint2(pt_audit_verifier_t *self, uint64_t seq, uint64_t tree_size,
                                  const uint8_t *root, size_t root_len, int64_t at_ms,
                                  const uint8_t *prev_hash, size_t prev_len,
                                  const uint8_t *signer, size_t signer_len, const uint8_t *sig,
                                  size_t sig_len);

/* A checkpoint the auditor saw earlier and kept (`verify --trusted-checkpoint`),
   given before any checkpoints row. Its signature must verify with the pinned
   broker key (a verifier without one: -1). The log must extend it: its root is
   the root of the first tree_size leaves, the log holds at least that many, and
   the checkpoints table holds the same checkpoint under the same seq; otherwise
   findings in table "trusted" (row "seq N size M") say what is missing. 0, or -1
   on misuse / no pinned key. */
int pt_audit_verifier_trust(pt_audit_verifier_t *self, const pt_audit_checkpoint_t *cp,
                            const uint8_t *sig, size_t sig_len);

/* One audit_log row, in leaf_index order: index contiguous, event exists, leaf hash
   recomputed from the event, each event in the log once; roots at checkpoint sizes. */
int pt_audit_verifier_leaf(pt_audit_verifier_t *self, uint64_t leaf_index, int64_t event_id,
                           const uint8_t *leaf_hash, size_t len);

/* The audit_head row: size = number of leaves, frontier root = recomputed root. */
int pt_audit_verifier_head(pt_audit_verifier_t *self, uint64_t size, const uint8_t *frontier,
                           size_t len);

/* Final checks (events missing from the log, checkpoints past the log, messages
   without events). Call once, last. */
int pt_audit_verifier_finish(pt_audit_verifier_t *self);

/* Findings so far (up to the first 1000 are kept; count counts all). */
size_t pt_audit_verifier_count(const pt_audit_verifier_t *self);
size_t pt_audit_verifier_kept(const pt_audit_verifier_t *self);
const pt_audit_finding_t *pt_audit_verifier_finding(const pt_audit_verifier_t *self, size_t i);

/* --- bundles (`puente audit export --case`, `puente audit verify --bundle`) ---------
   A JSON object, self-contained, checked with no database and no broker:
     format "puente.audit.bundle.v1", case_token, broker_sign_public (hex),
     checkpoint {tree_size, root, at_ms, signature},
     events [{event_id, seq, kind, at_ms, actor, counterparty, message_type,
              message_id|null, detail, prev_hash, hash, leaf_index, inclusion[hex]}]
              (the case's whole chain, seq 1..n),
     messages [{message_id, sender, header, header_signature, sender_sign_public}]
   (binary values as lower-case hex). */
#define PT_AUDIT_BUNDLE_FORMAT "puente.audit.bundle.v1"
#define PT_AUDIT_BUNDLE_MAX_BYTES (64u * 1024 * 1024)

/* The signed header bytes and header signature of a packed Envelope (both
   malloc'd, caller frees). 0, or -1 if env does not decode. */
int pt_audit_envelope_header(const uint8_t *env, size_t len, uint8_t **header, size_t *header_len,
                             uint8_t **sig, size_t *sig_len);

/* Verifies a bundle (hostile bytes: any length, any content). Problems become
   findings of v (table "bundle"); the broker key pinned in v, if any, must be the
   bundle's. Returns 0 (see pt_audit_verifier_count), -1 only on out of memory. */
int pt_audit_bundle_verify(pt_audit_verifier_t *v, const char *json, size_t len);

/* Totals checked: events, leaves, checkpoints, messages; and the root of all leaves. */
void pt_audit_verifier_totals(const pt_audit_verifier_t *self, uint64_t *events, uint64_t *leaves,
                              uint64_t *checkpoints, uint64_t *messages, pt_merkle_hash_t root);

#endif

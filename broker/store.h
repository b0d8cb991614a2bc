/*  store — everything the broker keeps in PostgreSQL. The only module that builds
    SQL; only parameterised statements. Not thread-safe: one pt_store_t per thread.

    Durability contract: a function that returns PT_STORE_OK has seen COMMIT
    succeed; only then may the caller send a receipt or act on the result.
    PT_STORE_UNAVAILABLE means the database could not be reached or the
    transaction failed for a transient reason; nothing was committed and the call
    may be retried (the connection is reset on the next call).

    Messages and case events are append-only (grants + triggers, see
    broker/sql/). Every case event is chained per case token (pt_trail.h) and,
    at COMMIT of the transaction that wrote it, appended to the global Merkle log
    (audit_log, by the triggers of 006_audit_log.sql; formats in pt_audit.h).
    The one change allowed to a messages row is retention's payload deletion.

    Restricted role: after connecting and after migrating, the store runs
    SET ROLE puente_broker (or the role given to pt_store_role_check) when that
    role exists and the login role is a member of it (SELECT/INSERT only on
    messages and case_events). pt_store_migrate switches back to the login role
    for the DDL. Without a configured role, a login role that is not a member
    keeps its own rights (pt_store_role_check warns; the triggers still forbid
    UPDATE/DELETE/TRUNCATE); with one, the store refuses to work without it.

    Times: every *_ms is milliseconds since the Unix epoch from the BROKER's
    clock: the caller's now_ms, or the store's own CLOCK_REALTIME for the
    "stored" time of submit_batch and for org key validity. The database clock
    is never used for values the broker reads back.

    Case events written by the store (actor / counterparty), all with the
    message type, message id and detail = header SHA-256:
      submitted     sender / recipients joined by ','   at created_at_ms
      stored        sender / recipients joined by ','   at the store's clock
      delivered     recipient / sender                  at now_ms of the first mark_sent
      acknowledged  recipient / sender                  at now_ms of the ack

    Transient errors (PT_STORE_UNAVAILABLE): lost connection (class 08, 57P0x),
    serialization failure, deadlock, lock not available, insufficient resources
    (class 53), and unique violations, which here can only be a race with another
    connection (a retry then sees the committed row).
*/
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pt_merkle.h"
#include "pt_trail.h"

typedef struct _pt_store_t pt_store_t;

typedef enum {
    PT_STORE_OK = 0,
    PT_STORE_DUPLICATE = 1,     /* message id seen before with the same header: original receipt returned */
    PT_STORE_UNAVAILABLE = -1,  /* transient: connection lost, serialization failure; retry */
    PT_STORE_CONFLICT = -2,     /* message id seen before with a different header */
    PT_STORE_NOT_FOUND = -3,
    PT_STORE_ERROR = -4         /* permanent: constraint violation, bad input */
} pt_store_result_t;

#define PT_STORE_ORG_ID_MAX 33
#define PT_STORE_TEXT_MAX 129
#define PT_STORE_SERVICES_MAX 513

/* Connects with a libpq connection string. NULL on failure, with the reason in err. */
pt_store_t *pt_store_new(const char *conninfo, char *err, size_t err_len);
void pt_store_destroy(pt_store_t **self_p);

/* The last failure's SQLSTATE and primary message (no DETAIL, so no row values),
   for logs. Valid until the next call on self; "" if none. */
const char *pt_store_last_error(const pt_store_t *self);

/* The SQL text the store prepares under name (for example "pt_due"; also
   "pt_queue_stats" and "pt_claims_release", which run unprepared), or NULL if
   it has no statement of that name. Static storage; no connection needed. For
   tests that EXPLAIN the store's own statements against a real database. */
const char *pt_store_statement_sql(const char *name);

/* The settings the store applies to each of its sessions (SQL; for tests that
   run its statements on another connection). */
const char *pt_store_session_sql(void);

/* The settings of its hot transactions (submit, mark sent, ack), applied after
   their BEGIN (SQL; for tests that run those statements on another connection):
   one generic plan per statement, without sequential scans, hash or merge joins. */
const char *pt_store_hot_txn_sql(void);

/* Applies every broker/sql/NNN_*.sql in sql_dir not yet recorded in
   schema_migrations, in order, each in its own transaction, under an advisory lock
   (several brokers may start at once). Files are named NNN_name.sql (NNN
   decimal, unique); a file that is already recorded is not read again, so never
   edit an applied migration: add a new one. 0 or -1 (reason in err). */
int pt_store_migrate(pt_store_t *self, const char *sql_dir, char *err, size_t err_len);

/* 1 if every migration in sql_dir is applied, 0 if some are pending, -1 on error. */
int pt_store_migrations_current(pt_store_t *self, const char *sql_dir);

/* Checks the connection (SELECT 1), resetting it if broken. PT_STORE_OK or UNAVAILABLE. */
pt_store_result_t pt_store_ping(pt_store_t *self);

/* One recipient's backlog: deliveries not acknowledged, not expired and not dead
   letters (a dead letter's held-back successors count). */
typedef struct {
    char recipient[PT_STORE_ORG_ID_MAX];
    int64_t depth;
    int64_t oldest_stored_at_ms;     /* stored_at of the first waiting one in submission order */
} pt_store_queue_stat_t;

typedef void(pt_store_queue_stat_fn)(const pt_store_queue_stat_t *stat, void *arg);

/* Calls fn once per recipient with a backlog (metrics, `puente queue list`). One
   grouped query over the partial index deliveries_unacked_order (005): O(backlog),
   not O(history). */
pt_store_result_t pt_store_queue_stats(pt_store_t *self, pt_store_queue_stat_fn *fn, void *arg);

/* --- directory: organisations and agreements ---------------------------- */

typedef struct {
    char org_id[PT_STORE_ORG_ID_MAX];
    uint8_t sign_public[32];
    uint8_t seal_public[32];
    uint8_t curve_public[32];
    int enabled;
    /* Service types it receives, joined by ','; "" = accepts every service type. */
    char service_types[PT_STORE_SERVICES_MAX];
} pt_store_org_t;

typedef struct {
    char agreement_id[PT_STORE_TEXT_MAX];
    char org_a[PT_STORE_ORG_ID_MAX];
    char org_b[PT_STORE_ORG_ID_MAX];
    const char *const *purposes;   /* on load: valid during the callback only */
    size_t n_purposes;
    const char *const *message_types;  /* "*", "referral.*" or exact names */
    size_t n_message_types;
    int64_t valid_from_ms;
    int64_t valid_until_ms;        /* 0 = open-ended */
    /* Field minimisation (004_field_sets.sql): one "purpose=path1,path2" string
       per purpose that has a field set; none = no restriction. On load: valid
       during the callback only. */
    const char *const *field_sets;
    size_t n_field_sets;
    /* Retention (006_audit_log.sql): sealed payloads are deleted this many days
       after storing; 0 = kept. Written by agreement_put (not loaded). */
    int32_t retention_days;
} pt_store_agreement_t;

/* Registers an organisation or replaces its current keys (the previous keys stay
   recorded with valid_until = now, so old signatures remain checkable). */
pt_store_result_t pt_store_org_put(pt_store_t *self, const pt_store_org_t *org);

/* Adds or replaces an agreement (by id). */
pt_store_result_t pt_store_agreement_put(pt_store_t *self, const pt_store_agreement_t *agreement);

typedef void(pt_store_org_fn)(const pt_store_org_t *org, void *arg);
typedef void(pt_store_agreement_fn)(const pt_store_agreement_t *agreement, void *arg);

/* Calls fn for every organisation (current keys) / every agreement. */
pt_store_result_t pt_store_load_orgs(pt_store_t *self, pt_store_org_fn *fn, void *arg);
pt_store_result_t pt_store_load_agreements(pt_store_t *self, pt_store_agreement_fn *fn, void *arg);

/* Issue 6: disables or re-enables an organisation (its keys stay). PT_STORE_OK,
   NOT_FOUND if org_id is not registered, UNAVAILABLE or ERROR. */
pt_store_result_t pt_store_org_set_enabled(pt_store_t *self, const char *org_id, int enabled);

/* Issue 6: ends an agreement at until_ms (valid_until = until_ms unless it already
   ends earlier). PT_STORE_OK, NOT_FOUND if there is no such agreement, UNAVAILABLE
   or ERROR. */
pt_store_result_t pt_store_agreement_revoke(pt_store_t *self, const char *agreement_id,
                                            int64_t until_ms);

/* --- submissions ---------------------------------------------------------- */

typedef struct {
    const uint8_t *message_id;       /* 16 bytes */
    const uint8_t *correlation_id;   /* 16 bytes */
    const uint8_t *causation_id;     /* 16 bytes or NULL */
    const char *message_type;
    const char *sender;
    const char *const *recipients;
    size_t n_recipients;
    const char *case_token;
    const char *purpose;
    const char *agreement_id;
    int64_t created_at_ms;
    int64_t expires_at_ms;
    const uint8_t *header_sha256;    /* 32 bytes: SHA-256 of the signed header bytes */
    const uint8_t *envelope;         /* packed Envelope exactly as received */
    size_t envelope_len;
    /* What the message does to its lifecycle and case (lifecycle.h); all NULL/0
       for none. Applied only if the message is new (never for a duplicate). */
    const char *lifecycle_kind;      /* non-NULL: create or move the lifecycle of correlation_id */
    const char *lifecycle_from;      /* state read before ("" = create the lifecycle) */
    const char *lifecycle_to;
    const char *lifecycle_initiator;
    const char *lifecycle_counterparty;  /* ids joined by ',' (after this message) */
    int64_t respond_by_ms;           /* the lifecycle's respond-by (0 = none) */
    int64_t follow_up_due_ms;        /* the lifecycle's next follow-up due (0 = none) */
    const char *owner_to;            /* non-NULL: ownership of case_token moves to this org */
    const char *owner_from;
    const char *former_owners;       /* former owners joined by ',' after the move */
    const char *owner_first;         /* non-NULL (and owner_to NULL): the case had no owner;
                                        record this org as its first (no event; a row
                                        already there wins) */
    int consent_overridden;          /* 1: append the event "consent_overridden" */
} pt_submission_t;

typedef struct {
    pt_store_result_t result;        /* OK, DUPLICATE or CONFLICT for each item */
    int64_t stored_at_ms;
    uint8_t header_sha256[32];
    uint8_t event_hash[32];          /* hash of the "stored" event */
    int64_t leaf_index;              /* its leaf in the global audit log; -1 = unknown */
} pt_store_receipt_t;

/* Stores n submissions in ONE transaction (group commit): for each new one the
   message row, one delivery per recipient (state pending) and the case events
   "submitted" (at created_at_ms, actor sender) and "stored" (at commit time),
   then, at the stored time and in this order: "consent_overridden" if flagged,
   "state:<lifecycle_to>" and the lifecycle row if lifecycle_kind is set,
   "owner_changed" (actor the new owner, counterparty the former) and the
   case_owners row if owner_to is set. A lifecycle row that is no longer in
   lifecycle_from (another broker moved it) fails the whole batch with
   PT_STORE_UNAVAILABLE: nothing is committed and the caller re-checks.
   Items whose message id already exists get DUPLICATE (same header_sha256,
   original receipt values) or CONFLICT (receipt holds the ORIGINAL header_sha256
   and stored_at), and add nothing; the same id twice in one batch is treated the
   same way against its first occurrence. expires_at_ms 0 = never expires.
   causation_id, purpose and agreement_id may be NULL; the other pointers are
   required, and a recipient id may not contain ','. Cost: two round trips
   (messages with their deliveries, events and chain heads each one multi-row
   statement; lifecycle and ownership changes one statement each), one commit. A batch without new items commits nothing. Returns PT_STORE_OK when
   the transaction committed (then receipts[i].result is set for every i), or
   PT_STORE_UNAVAILABLE / PT_STORE_ERROR when nothing was committed. */
pt_store_result_t pt_store_submit_batch(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                        pt_store_receipt_t *receipts);

/* --- lifecycles (current state; issue 3) --------------------------------- */

#define PT_STORE_NAME_MAX 32
#define PT_STORE_PARTIES_MAX 400

/* One lifecycle row. kind[0] == 0: no lifecycle for that correlation id. */
typedef struct {
    char kind[PT_STORE_NAME_MAX];     /* referral, transfer, transfer_ask, inquiry, tracing, return */
    char state[PT_STORE_NAME_MAX];
    char initiator[PT_STORE_ORG_ID_MAX];
    char counterparty[PT_STORE_PARTIES_MAX];  /* ids joined by ',' */
    char case_token[PT_STORE_TEXT_MAX];
    int64_t respond_by_ms;            /* 0 = none */
    int64_t follow_up_due_ms;         /* reintegration plans: next follow-up due, 0 = none */
} pt_store_lifecycle_t;

/* The owner of a case token. owner[0] == 0: no message about it yet. */
typedef struct {
    char owner[PT_STORE_ORG_ID_MAX];
    char former[PT_STORE_PARTIES_MAX];   /* former owners joined by ',' */
} pt_store_case_owner_t;

/* For each of the n submissions: lifecycles[i] = the lifecycle of its
   correlation id, owners[i] = the owner of its case token (zeroed when none),
   known[i] = 1 if its message id is already stored (a resubmission, which must
   not be checked or applied again). Read in a transaction of its own, not
   submit_batch's: the state may move before submit_batch, which then fails as
   UNAVAILABLE. One round trip (pipelined). */
pt_store_result_t pt_store_lifecycle_load(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                          pt_store_lifecycle_t *lifecycles,
                                          pt_store_case_owner_t *owners, int *known);

/* Respond-by sweep: moves up to max lifecycles whose respond_by_ms <= now_ms and
   that still wait for an answer (submitted, delivered, received) to "expired",
   marks them overdue (deadline "respond_by") and appends the case events
   "overdue" and "state:expired" (actor "broker", counterparty the initiator and
   the counterparty). *expired receives how many. One transaction. */
pt_store_result_t pt_store_lifecycle_expire(pt_store_t *self, int64_t now_ms, size_t max,
                                            size_t *expired);

/* Follow-up sweep: marks up to max return lifecycles in state planned or
   implementation whose follow_up_due_ms <= now_ms and that are not yet marked
   overdue (deadline "follow_up"), each with the case event "overdue" (actor
   "broker", message type "reintegration.followup", counterparty every party).
   Raised once: the mark is cleared only when the lifecycle moves again (a
   follow-up report). *raised receives how many. One transaction. */
pt_store_result_t pt_store_lifecycle_follow_up_overdue(pt_store_t *self, int64_t now_ms,
                                                       size_t max, size_t *raised);

/* One overdue lifecycle (see pt_store_overdue_list). */
typedef struct {
    char case_token[PT_STORE_TEXT_MAX];
    uint8_t correlation_id[16];
    char kind[PT_STORE_NAME_MAX];
    char state[PT_STORE_NAME_MAX];
    char deadline[PT_STORE_NAME_MAX];   /* "respond_by" or "follow_up" */
    int64_t due_at_ms;
    int64_t overdue_since_ms;
    char initiator[PT_STORE_ORG_ID_MAX];
    char counterparty[PT_STORE_PARTIES_MAX];
} pt_store_overdue_t;

typedef void(pt_store_overdue_fn)(const pt_store_overdue_t *item, void *arg);

/* Calls fn for up to max lifecycles currently marked overdue, oldest mark first:
   all of them when org is NULL or "", else those org is the initiator or a
   counterparty of. */
pt_store_result_t pt_store_overdue_list(pt_store_t *self, const char *org, size_t max,
                                        pt_store_overdue_fn *fn, void *arg);

/* --- notices (007_notices.sql) --------------------------------------------
   The deadline sweeps above also insert one notice ("overdue") per party of each
   lifecycle they raise, in the same transaction as its "overdue" event. */

/* One notice to org_id. */
typedef struct {
    int64_t notice_id;
    char org_id[PT_STORE_ORG_ID_MAX];
    char kind[PT_STORE_NAME_MAX];          /* "overdue" */
    char case_token[PT_STORE_TEXT_MAX];
    uint8_t correlation_id[16];
    char message_type[PT_STORE_TEXT_MAX];  /* "" when unknown */
    int64_t due_at_ms;
    int64_t created_at_ms;
} pt_store_notice_t;

typedef void(pt_store_notice_fn)(const pt_store_notice_t *notice, void *arg);

/* Calls fn for up to max unacknowledged notices, oldest first: those of org, or
   of every organisation when org is NULL or ""; with unsent_only, only those
   never marked sent (just created). One round trip. */
pt_store_result_t pt_store_notices_pending(pt_store_t *self, const char *org, int unsent_only,
                                           size_t max, pt_store_notice_fn *fn, void *arg);

/* Records that notice_id was handed to its party's receiving connection at now_ms. */
pt_store_result_t pt_store_notice_sent(pt_store_t *self, int64_t notice_id, int64_t now_ms);

/* Records org's acknowledgement of notice_id (idempotent: the first time is kept).
   NOT_FOUND when org has no such notice. */
pt_store_result_t pt_store_notice_ack(pt_store_t *self, const char *org, int64_t notice_id,
                                      int64_t now_ms);

/* --- deliveries ----------------------------------------------------------- */

typedef struct {
    int64_t delivery_id;
    uint8_t message_id[16];
    const uint8_t *envelope;         /* valid during the callback only */
    size_t envelope_len;
    uint32_t attempts;               /* attempts made before this one */
} pt_store_delivery_t;

typedef void(pt_store_delivery_fn)(const pt_store_delivery_t *delivery, void *arg);

/* Claims and hands to fn, in submission order, up to max deliveries to recipient
   that are not acknowledged, not expired and due (next_attempt_at <= now_ms),
   taking for each correlation id only its oldest unacknowledged delivery (order
   is kept per correlation id: the next one is offered once this one is
   acknowledged), and leaving out those another broker instance holds a live
   claim on (010_multi_broker.sql). Those handed over are claimed for this
   store's instance (pt_store_set_instance) until now_ms + lease, in the same
   statement (FOR UPDATE SKIP LOCKED: two brokers running this at once for one
   recipient get disjoint deliveries). One statement, committed on return.
   Cost: index range scans, O(max + deliveries waiting behind an older one of
   their correlation id), whatever the backlog (005_delivery_queue.sql). */
pt_store_result_t pt_store_due_deliveries(pt_store_t *self, const char *recipient, int64_t now_ms,
                                          size_t max, pt_store_delivery_fn *fn, void *arg);

/* pt_store_due_deliveries, with retries = 0: only deliveries never sent are
   handed over (first offers), none whose retry fell due. The deliver stage's way
   of not offering again what a recipient that is still acknowledging probably
   holds in its queue (deliver.c). retries != 0: exactly pt_store_due_deliveries. */
pt_store_result_t pt_store_due_deliveries_ex(pt_store_t *self, const char *recipient,
                                             int64_t now_ms, size_t max, int retries,
                                             pt_store_delivery_fn *fn, void *arg);

/* Records that a delivery was sent: attempts + 1, next_attempt_at = retry_at_ms;
   on the first attempt also appends the case event "delivered", and if the
   message is its lifecycle's initiator's and the lifecycle is "submitted", moves
   it to "delivered" (event "state:delivered"). NOT_FOUND if there is no such
   delivery. */
pt_store_result_t pt_store_mark_sent(pt_store_t *self, int64_t delivery_id, int64_t now_ms,
                                     int64_t retry_at_ms);

/* One send to record (pt_store_mark_sent_batch). */
typedef struct {
    int64_t delivery_id;
    int64_t retry_at_ms;             /* next_attempt_at if no ack comes */
    pt_store_result_t result;        /* out: OK or NOT_FOUND */
} pt_store_sent_t;

/* pt_store_mark_sent for n deliveries in ONE transaction: one UPDATE for all,
   then the "delivered" events and lifecycle moves of the first attempts in the
   order of items (as n calls would). Per-item outcome in items[i].result.
   Returns PT_STORE_OK when the transaction committed, else the failure (then
   nothing was recorded and every result holds it). Cost: about four round trips
   whatever n is. */
pt_store_result_t pt_store_mark_sent_batch(pt_store_t *self, pt_store_sent_t *items, size_t n,
                                           int64_t now_ms);

/* Records the recipient's acknowledgement of message_id and appends the case event
   "acknowledged" (once; a repeated ack returns DUPLICATE and adds nothing); an
   initiator's message acknowledged in lifecycle state "delivered" moves it to
   "received" (event "state:received").
   NOT_FOUND if recipient has no delivery of that message. */
pt_store_result_t pt_store_ack(pt_store_t *self, const char *recipient, const uint8_t *message_id,
                               int64_t now_ms);

/* One acknowledgement to record (pt_store_ack_batch). */
typedef struct {
    const char *recipient;           /* borrowed */
    uint8_t message_id[16];
    pt_store_result_t result;        /* out: OK, DUPLICATE or NOT_FOUND */
} pt_store_ack_item_t;

/* pt_store_ack for n acknowledgements in ONE transaction (events in the order
   of items; the same ack twice: the second is DUPLICATE). Per-item outcome in
   items[i].result. Returns PT_STORE_OK when committed (or when nothing needed
   committing), else the failure (nothing recorded; every result holds it).
   Cost: about five round trips whatever n is. */
pt_store_result_t pt_store_ack_batch(pt_store_t *self, pt_store_ack_item_t *items, size_t n,
                                     int64_t now_ms);

/* Earliest next_attempt_at among unacknowledged, unexpired deliveries of any
   recipient, or INT64_MAX if none (or on error). Used to sleep until the next retry.
   "Unexpired" is judged by the store's clock. It may name a delivery that waits
   behind an older one of its correlation id: an early wake-up, never a late one. */
int64_t pt_store_next_due_ms(pt_store_t *self);

/* Recipients that have due deliveries (for retry sweeps): calls fn(recipient, arg). */
pt_store_result_t pt_store_recipients_with_due(pt_store_t *self, int64_t now_ms,
                                               void (*fn)(const char *recipient, void *arg),
                                               void *arg);

/* --- trail ---------------------------------------------------------------- */

typedef struct {
    pt_trail_event_t event;          /* strings valid during the callback only */
    uint8_t prev_hash[32];
    uint8_t hash[32];
} pt_store_event_t;

typedef void(pt_store_event_fn)(const pt_store_event_t *event, void *arg);

/* Calls fn for every event of case_token in chain order. */
pt_store_result_t pt_store_trail(pt_store_t *self, const char *case_token, pt_store_event_fn *fn,
                                 void *arg);

/* --- audit log, checkpoints, auditors, retention (issue 4) ------------------
   Every case event joins the global Merkle log at COMMIT (006_audit_log.sql,
   formats in pt_audit.h); these functions read it and record checkpoints. */

typedef struct {
    uint64_t tree_size;
    uint8_t root[32];
    int64_t at_ms;
    uint8_t signer[32];              /* the broker's Ed25519 public key */
    uint8_t signature[64];
    uint64_t seq;                    /* 0: a version 1 row (before 013) */
    uint8_t prev_hash[32];           /* pt_audit.h "checkpoint hash" of seq - 1 */
} pt_store_checkpoint_t;
/* (checkpoint_put also records this store's instance id as signed_by, 010.) */

/* Size and root of the log now, from audit_head's frontier (no leaves read). O(log n). */
pt_store_result_t pt_store_audit_root(pt_store_t *self, uint64_t *size, uint8_t root[32]);

/* Records a signed checkpoint (a second one of the same size is ignored). */
pt_store_result_t pt_store_checkpoint_put(pt_store_t *self, const pt_store_checkpoint_t *cp);

/* The checkpoint of exactly tree_size, or the latest when tree_size is 0.
   NOT_FOUND if none. (With PT_STORE_CHECKPOINT_COVERING | n: the smallest one
   whose tree_size >= n.) */
#define PT_STORE_CHECKPOINT_COVERING ((uint64_t)1 << 63)
pt_store_result_t pt_store_checkpoint_get(pt_store_t *self, uint64_t tree_size,
                                          pt_store_checkpoint_t *out);

/* The first n leaf hashes, 32 bytes each, in *leaves_p (caller frees). ERROR if
   the log holds fewer. O(n): proofs are built from the leaves. */
pt_store_result_t pt_store_audit_leaves(pt_store_t *self, uint64_t n, uint8_t **leaves_p);

/* The case event behind leaf leaf_index: its event_id and chain hash. NOT_FOUND if
   the log has no such leaf. */
pt_store_result_t pt_store_leaf_event(pt_store_t *self, uint64_t leaf_index, int64_t *event_id,
                                      uint8_t event_hash[32]);

/* Appends one case event (seq and hashes computed here) in its own transaction;
   used for events that come with no message (auditor queries). */
pt_store_result_t pt_store_event_append(pt_store_t *self, const pt_trail_event_t *ev);

typedef struct {
    char auditor_id[PT_STORE_ORG_ID_MAX];
    char scope[PT_STORE_SERVICES_MAX];   /* "GT,HN-DINAF": countries and organisations */
    uint8_t sign_public[32];
    uint8_t curve_public[32];
} pt_store_auditor_t;

typedef void(pt_store_auditor_fn)(const pt_store_auditor_t *auditor, void *arg);

/* Registers or replaces an auditor. */
pt_store_result_t pt_store_auditor_put(pt_store_t *self, const pt_store_auditor_t *auditor);
/* Calls fn for every enabled auditor. */
pt_store_result_t pt_store_load_auditors(pt_store_t *self, pt_store_auditor_fn *fn, void *arg);

/* Calls fn for every organisation that sent or received a message of case_token,
   or sent or was addressed by a submission of it refused by policy ("rejected"). */
pt_store_result_t pt_store_case_parties(pt_store_t *self, const char *case_token,
                                        void (*fn)(const char *org, void *arg), void *arg);

/* A result row of an audit query, as text cells (valid during the callback). */
typedef void(pt_store_row_fn)(const char *const *cells, size_t n, void *arg);

/* Case events org took part in with from_ms <= at_ms < until_ms and (at_ms,
   event_id) after (after_at_ms, after_event_id) (INT64_MIN, 0 = from the start),
   oldest first, up to max: event_id, at_ms, case_token, seq, kind, actor,
   counterparty, message_type. Scans case_events (no time index yet). */
pt_store_result_t pt_store_audit_activity(pt_store_t *self, const char *org, int64_t from_ms,
                                          int64_t until_ms, int64_t after_at_ms,
                                          int64_t after_event_id, size_t max, pt_store_row_fn *fn,
                                          void *arg);

/* Lifecycles of kind ("" = any) in state ("" = any) not moved since
   updated_before_ms, with a party in scope ("GT,HN-DINAF"; NULL or "" = any; the
   filter is in SQL, before the limit), ordered by (updated ms, correlation id)
   and after (after_updated_ms, after_correlation) (INT64_MIN and the nil UUID =
   from the start), up to max: case_token, kind, state, initiator, counterparty,
   updated_ms, created_ms, correlation_id (the cursor's second part). */
pt_store_result_t pt_store_audit_items(pt_store_t *self, const char *kind, const char *state,
                                       int64_t updated_before_ms, const char *scope,
                                       int64_t after_updated_ms, const char *after_correlation,
                                       size_t max, pt_store_row_fn *fn, void *arg);

/* Lifecycles opened in [from_ms, until_ms) grouped by sender country, recipient
   country and kind: country, country, kind, count, accepted, median ms to accept
   (-1 = none), rejected. */
pt_store_result_t pt_store_audit_corridors(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                           pt_store_row_fn *fn, void *arg);

typedef void(pt_store_reject_fn)(const char *sender, const char *recipient, const char *kind,
                                 const uint8_t *envelope, size_t envelope_len, void *arg);

/* Every *.reject message of the lifecycles opened in [from_ms, until_ms) with its
   stored envelope (the reason code is in the signed header). */
pt_store_result_t pt_store_audit_rejects(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                         pt_store_reject_fn *fn, void *arg);

/* Deletes the sealed payload bytes of up to max messages whose agreement's
   retention_days passed at now_ms (envelope rewritten by pt_audit_strip_payloads,
   header and signature kept; payload_deleted_at set). *deleted receives how many. */
pt_store_result_t pt_store_retention_run(pt_store_t *self, int64_t now_ms, size_t max,
                                         size_t *deleted);

/* --- issue 6: key history, rotation and revocation (008_key_windows.sql) -------

   Every key set an organisation ever registered, with its window; the rule for
   using one is proto/pt_key_window.h. */

#define PT_STORE_REASON_MAX 201      /* revoke_reason: 1-200 characters */
#define PT_STORE_KEY_OVERLAP_MAX_MS (366LL * 86400 * 1000)

typedef struct {
    int64_t key_set_id;
    char org_id[PT_STORE_ORG_ID_MAX];
    uint8_t sign_public[32];
    uint8_t seal_public[32];
    uint8_t curve_public[32];
    int64_t valid_from_ms;
    int64_t valid_until_ms;          /* 0 = the current set */
    int64_t revoked_at_ms;           /* 0 = not revoked */
    char revoke_reason[PT_STORE_REASON_MAX];   /* "" when not revoked */
} pt_store_key_set_t;

typedef void(pt_store_key_set_fn)(const pt_store_key_set_t *set, void *arg);

/* Calls fn for every key set of org_id (NULL or "" = of every organisation),
   ordered by organisation and then oldest first. O(key sets). */
pt_store_result_t pt_store_load_key_sets(pt_store_t *self, const char *org_id,
                                         pt_store_key_set_fn *fn, void *arg);

/* Rotation, in one transaction: the current set of org_id ends at
   max(its valid_from, min(now_ms + overlap_ms, its revoked_at)), a set of the three public keys
   becomes current from now_ms, and the event "key_rotated" (actor "operator",
   counterparty org_id, detail = the new signing key id) joins the chain
   "keys:<ORG>". overlap_ms in [0, PT_STORE_KEY_OVERLAP_MAX_MS]. NOT_FOUND: org_id
   is not registered; CONFLICT: one of the keys was registered before, by any
   organisation (a key set is never reused). */
pt_store_result_t pt_store_key_rotate(pt_store_t *self, const char *org_id,
                                      const uint8_t sign_public[32], const uint8_t seal_public[32],
                                      const uint8_t curve_public[32], int64_t now_ms,
                                      int64_t overlap_ms);

/* Revocation, in one transaction: key set key_set_id of org_id gets revoked_at =
   at_ms (or keeps an earlier one; the reason of the earliest is kept) and the
   event "key_revoked" (detail = its signing key id) joins "keys:<ORG>" at now_ms.
   reason: 1-200 characters. NOT_FOUND: no such set of that organisation. */
pt_store_result_t pt_store_key_revoke(pt_store_t *self, const char *org_id, int64_t key_set_id,
                                      int64_t at_ms, const char *reason, int64_t now_ms);

/* Issue 6: how many messages retention would still delete at now_ms (their
   payload held, their agreement's retention passed). One scan of messages: for
   a progress total, not for every batch. */
pt_store_result_t pt_store_retention_pending(pt_store_t *self, int64_t now_ms, int64_t *count);

/* --- dead letters (issue 6; 009_dead_letter.sql) ----------------------------
   A delivery the broker stopped offering (state 'dead'), with its reason:
   "attempts" (offered max_attempts times, the wait after the last offer passed
   without an ack), "expired" (the message's expires_at passed first) or
   "unreadable" (its stored envelope no longer decodes: damaged in the database,
   021_dead_unreadable.sql; offering it again would fail the same way). It is
   not offered and not in pt_store_queue_stats, but still holds back the later
   deliveries of its correlation id to the same recipient (order is kept) until
   it is requeued (pending again, attempts 0) or dropped (final). Every change
   appends a case event in its transaction, actor / counterparty, with the
   message type, message id and detail = header SHA-256:
     dead_letter:attempts, dead_letter:expired,
     dead_letter:unreadable                      broker / recipient
     dead_letter:requeued, dead_letter:dropped   operator / recipient
   An acknowledgement that arrives later still counts (pt_store_ack_batch
   accepts it in any state but acked). */

#define PT_STORE_DEAD_ATTEMPTS "attempts"
#define PT_STORE_DEAD_EXPIRED "expired"
#define PT_STORE_DEAD_UNREADABLE "unreadable"

/* One dead letter. */
typedef struct {
    int64_t delivery_id;
    uint8_t message_id[16];
    uint8_t correlation_id[16];
    char case_token[PT_STORE_TEXT_MAX];
    char message_type[PT_STORE_TEXT_MAX];
    char sender[PT_STORE_ORG_ID_MAX];
    char recipient[PT_STORE_ORG_ID_MAX];
    char reason[PT_STORE_NAME_MAX];   /* PT_STORE_DEAD_ATTEMPTS, _EXPIRED or _UNREADABLE */
    uint32_t attempts;                /* offers made */
    int64_t dead_at_ms;
    int64_t stored_at_ms;
    int64_t expires_at_ms;            /* 0 = never */
    int64_t held_back;                /* later deliveries of its correlation id behind it
                                         (0 once expired: it no longer holds them back) */
} pt_store_dead_letter_t;

typedef void(pt_store_dead_letter_fn)(const pt_store_dead_letter_t *dead, void *arg);

/* Dead-letters up to max deliveries: those not acknowledged whose expires_at is
   <= now_ms ("expired"), and, when max_attempts > 0, those offered max_attempts
   times or more whose next_attempt_at is <= now_ms ("attempts"); expired wins
   when both hold. Rows another broker holds locked are skipped (SKIP LOCKED).
   One transaction with the events; fn (may be NULL) is then called for each,
   after COMMIT, in delivery order (held_back not filled).
   *count (may be NULL) receives how many. Cost: two index range scans
   (deliveries_expiry, and the in-flight deliveries) plus the events. */
pt_store_result_t pt_store_dead_letter_sweep(pt_store_t *self, int64_t now_ms,
                                             uint32_t max_attempts, size_t max,
                                             pt_store_dead_letter_fn *fn, void *arg,
                                             size_t *count);

/* Calls fn for up to max dead letters with a delivery id above after_id (0 =
   from the first), in delivery (submission) order: those of recipient (NULL or
   "" = every recipient) and, when n_ids > 0, only those whose message id is one
   of message_ids (n_ids * 16 bytes). held_back is judged at now_ms. One round
   trip over deliveries_dead. */
pt_store_result_t pt_store_dead_letter_list(pt_store_t *self, const char *recipient,
                                            const uint8_t *message_ids, size_t n_ids,
                                            int64_t after_id, size_t max, int64_t now_ms,
                                            pt_store_dead_letter_fn *fn, void *arg);

/* One dead letter to requeue or drop (by delivery id). */
typedef struct {
    int64_t delivery_id;
    pt_store_result_t result;         /* out: OK, or NOT_FOUND when it is no longer dead
                                         (acknowledged meanwhile, or changed by another
                                         operator) */
} pt_store_dead_item_t;

/* Puts n dead letters back in the queue as never sent (state pending, attempts 0,
   due at now_ms, reason cleared), each with the event dead_letter:requeued; the
   due query offers them again in submission order. One transaction. Returns OK
   when it committed (per-item outcome in items[i].result), else the failure
   (nothing changed, every result holds it). */
pt_store_result_t pt_store_dead_letter_requeue(pt_store_t *self, pt_store_dead_item_t *items,
                                               size_t n, int64_t now_ms);

/* Drops n dead letters for good (state dropped, dropped_at = now_ms, drop_note =
   note: 1-500 bytes, kept in deliveries only), each with the event
   dead_letter:dropped. Same transaction and results as requeue. */
pt_store_result_t pt_store_dead_letter_drop(pt_store_t *self, pt_store_dead_item_t *items,
                                            size_t n, const char *note, int64_t now_ms);

/* Dead-letters the deliveries among items still offered (pending or delivered)
   with the reason "unreadable": the deliver stage found their stored envelope
   does not decode. Each gets the event dead_letter:unreadable (actor broker);
   they stop blocking the recipient's queue (a damaged row at its head was offered,
   failed and offered again forever), and hold back only their own correlation id.
   Same transaction and results as requeue (NOT_FOUND: no longer offered). */
pt_store_result_t pt_store_dead_letter_unreadable(pt_store_t *self, pt_store_dead_item_t *items,
                                                  size_t n, int64_t now_ms);

/* Calls fn(recipient, count, arg) for each recipient with dead letters (metrics).
   One grouped query over the partial index deliveries_dead. */
pt_store_result_t pt_store_dead_letter_counts(pt_store_t *self,
                                              void (*fn)(const char *recipient, int64_t count,
                                                         void *arg),
                                              void *arg);

/* --- several brokers over one database (issue 9, 010_multi_broker.sql) -------
   Any number of brokers may share one database. Deliveries are claimed per
   broker instance with a lease (pt_store_due_deliveries); brokers wake each other
   with NOTIFY (triggers of 010) heard on a pt_store_session_t; checkpoints are
   signed by the holder of an advisory lock taken on that session. */

#define PT_STORE_INSTANCE_MAX 129
#define PT_STORE_DEFAULT_LEASE_MS 30000

/* Sets the instance id this store claims deliveries and records checkpoints as
   (1..128 bytes, unique among the brokers of the database; default
   "<hostname>:<pid>") and the claim lease in ms (> 0). 0, or -1 on a bad value
   (nothing changed). */
int pt_store_set_instance(pt_store_t *self, const char *instance_id, int64_t lease_ms);

/* The instance id (owned by the store). */
const char *pt_store_instance(const pt_store_t *self);

/* Delivery window (issue 8; [broker] delivery_window): pt_store_due_deliveries
   offers a recipient new messages only while fewer than window of its deliveries
   are in flight (sent and not yet acknowledged, dead-lettered or dropped),
   counted over every broker sharing the database. Retries are offered whatever
   the count.
   Keeps a slow or stalled recipient from being flooded (the frames would only
   queue in memory and time out into retries). window <= 0: no limit (the
   default of a new store). */
void pt_store_set_delivery_window(pt_store_t *self, int64_t window);

/* Extends to now_ms + lease this instance's claims on the deliveries it sent and
   that wait for an acknowledgement, for the n recipients it still has a
   receiving connection to; claims of other recipients are left to expire. One
   statement; O(sent and unacknowledged deliveries of those recipients). */
pt_store_result_t pt_store_claims_renew(pt_store_t *self, const char *const *recipients, size_t n,
                                        int64_t now_ms);

/* Gives up this instance's claims on recipient's unacknowledged deliveries (they
   expire at now_ms) and, if there were any, notifies the other brokers
   (channel PT_STORE_CHANNEL_DELIVERY) so that one holding a connection of the
   recipient takes them over. Used when the recipient's connection here is gone. */
pt_store_result_t pt_store_claims_release(pt_store_t *self, const char *recipient,
                                          int64_t now_ms);

/* Sends a notification (channel, payload) to every listening broker, at once (its
   own transaction). Used for what no trigger sees: an operator's directory change
   (PT_STORE_CHANNEL_DIRECTORY). */
pt_store_result_t pt_store_notify(pt_store_t *self, const char *channel, const char *payload);

/* The server process id of the store's connection (0 when there is none):
   notifications caused by this store's transactions carry it. */
int pt_store_backend_pid(const pt_store_t *self);

/* Notification channels (payloads in 010_multi_broker.sql). */
#define PT_STORE_CHANNEL_DELIVERY "puente_delivery"    /* payload: recipient org id */
#define PT_STORE_CHANNEL_NOTICE "puente_notice"        /* payload: party org id */
#define PT_STORE_CHANNEL_DIRECTORY "puente_directory"  /* payload: "admin" */

/* A dedicated database session of one broker: it LISTENs on the three channels
   and may hold the checkpoint signer's advisory lock, which PostgreSQL releases
   when the session ends (broker crash or lost connection). Not thread-safe. */
typedef struct _pt_store_session_t pt_store_session_t;

/* Connects (libpq conninfo) and LISTENs. NULL only when out of memory: a session
   that cannot connect now keeps trying in pt_store_session_poll (err says why). */
pt_store_session_t *pt_store_session_new(const char *conninfo, char *err, size_t err_len);
void pt_store_session_destroy(pt_store_session_t **self_p);

/* The socket to wait on for notifications (zmq_poll), or -1 while disconnected. */
int pt_store_session_socket(const pt_store_session_t *self);

typedef void(pt_store_notify_fn)(const char *channel, const char *payload, int sender_pid,
                                 void *arg);

/* Reads what arrived without waiting and calls fn for each notification, with
   the server pid of the session whose transaction sent it. Every few seconds it
   also checks the session with a round trip. A lost session is reconnected (at
   most one attempt per second, blocking for libpq's connect time) and LISTENs
   again; *reconnected is then 1: notifications may have been missed and the
   signer lock is no longer held. PT_STORE_OK, or PT_STORE_UNAVAILABLE while the
   session is down. */
pt_store_result_t pt_store_session_poll(pt_store_session_t *self, int64_t now_ms,
                                        pt_store_notify_fn *fn, void *arg, int *reconnected);

/* Whether this session holds the checkpoint signer's lock, taking it if it is
   free (pg_try_advisory_lock; one round trip unless already held): 1 held, 0 held
   by another session, -1 session down. */
int pt_store_session_signer(pt_store_session_t *self);

/* The last failure of the session, for logs ("" if none). */
const char *pt_store_session_error(const pt_store_session_t *self);

/* --- the database role (issue 2) ------------------------------------------------ */

#define PT_STORE_DEFAULT_ROLE "puente_broker"
#define PT_STORE_ROLE_MAX 64

/* Sets the role the store works as and checks it now, after the migrations.
   role non-empty (a configured role): every connection must take it (SET ROLE),
   or the store refuses to work: -1 here with the reason in err (the broker then
   refuses to start), and later reconnections that cannot take it answer
   PT_STORE_UNAVAILABLE. role NULL or "": PT_STORE_DEFAULT_ROLE when the login
   role is a member, else the login role's own rights with a warning in the log
   naming the reason. In both cases a superuser login is logged as a warning.
   0 or -1. */
int pt_store_role_check(pt_store_t *self, const char *role, char *err, size_t err_len);

/* pt_store_role_check without its warnings, for a broker's further connections
   (backlog.h): the same role rules, 0 or -1 with the reason in err. */
int pt_store_role_take(pt_store_t *self, const char *role, char *err, size_t err_len);

/* 1 if the store's connection works as the restricted role now, else 0. */
int pt_store_role_in_effect(const pt_store_t *self);

/* Plans this connection's statements without parallel workers, now and after
   every reconnection: for a reader in the background whose share of the CPU must
   stay what its cadence allows (backlog.h), not three processes' worth. */
void pt_store_serial(pt_store_t *self);

/* --- cancelling from another thread ------------------------------------------- */

typedef struct _pt_store_canceller_t pt_store_canceller_t;

/* A handle that cancels the statement under way on self's connection as it is
   now, for another thread (backlog.h: the reader is stopped while a read waits
   on a lock). Made by the thread that owns self; a reconnection (a new server
   process) needs a new one. NULL if self is not connected or out of memory. */
pt_store_canceller_t *pt_store_canceller_new(pt_store_t *self);

/* Asks the server to cancel what that connection runs now; nothing happens if it
   is idle. Safe from any thread. 0, or -1 if the request could not be sent. */
int pt_store_cancel(pt_store_canceller_t *canceller);

/* No-op on NULL; nulls the pointer. */
void pt_store_canceller_destroy(pt_store_canceller_t **canceller_p);

#endif

/*  puente.h — the Puente client SDK (libpuente), first version.

    A client is one DEALER connection to the broker, authenticated with CURVE
    under an organisation's keys (or the operator's). It sends sealed, signed
    envelopes and waits for the broker's signed receipt; receives deliveries,
    verifies and opens them; acknowledges what the application has stored; and
    asks the broker for the key directory, case trails and administration.

    Trust: the only keys the client trusts are its own and the broker's public
    keys read from <keys>/broker/. Recipients' and senders' keys come from the
    broker's directory and are used only after the broker's signature over the
    directory verified. Receipts are verified the same way.

    Thread-safety: a pt_client_t is used by one thread at a time (it owns one
    ZeroMQ socket, which is not thread-safe). Different clients may be used from
    different threads. The helper functions (puente_*) are thread-safe.

    Errors: functions returning pt_client_result_t give PT_CLIENT_OK (0) on
    success and a negative code otherwise; pt_client_error() then holds a short
    reason (no payload content).

    Several brokers (issue 9): opts.endpoint may list the brokers of one
    deployment, comma-separated, in order of preference:
        "tcp://10.0.0.1:7550,tcp://10.0.0.2:7550"
    (tcp://HOST:PORT or ipc://PATH each, at most 16; see proto/pt_endpoints.h).
    They work over one database and share one key pair, so the client trusts
    each of them with the same <keys>/broker/ keys. The client connects to ONE
    at a time: the first entry at start. When the current one has had no
    working connection for PUENTE_FAILOVER_AFTER_MS (refused or unanswered
    connection attempts, a connection closed by the peer, or ZeroMQ heartbeats
    missed for 15 s), it moves to the next entry, wrapping round; after a whole
    round without a working connection the wait per endpoint doubles, up to
    PUENTE_FAILOVER_MAX_MS. It stays where it is as long as that connection
    works (no return to an earlier entry), so to spread clients over the
    brokers give them the list in different orders. The move happens inside
    whatever call is waiting on the broker (pt_client_new included): a request
    in flight is sent again to the new broker (every request is idempotent: a
    resubmitted message id gets the original receipt, flagged duplicate); a
    receiving client says Hello again there and the new broker offers every
    delivery not yet acknowledged, which the inbox drops if already handed over.
    A single endpoint behaves as before: ZeroMQ reconnects to it for ever.
    pt_client_endpoint and pt_client_failovers tell where a client is.

    ONE header: an application includes <puente.h> only (installed under
    <includedir>/puente/, found through `pkg-config --cflags libpuente`). It
    includes, and so makes part of the public API, these installed headers:
        pt_crypto.h   Ed25519/X25519 keys, SHA-256, random bytes, UUIDv7, hex
        pt_keys.h     an organisation's key set (pt_keyset_t)
        pt_types.h    the registry of message types (pt_type_t, pt_types_find)
        pt_json.h     the proto3 JSON mapping (pt_json_to_message / _from_message)
        *.pb-c.h      the protobuf-c code generated from the .proto files: control and
                      envelope (the wire), common, consent, referral, tracing and
                      reintegration (the family messages an application packs);
                      their functions follow protobuf-c's generated API
                      (NAME__pack, NAME__unpack, NAME__free_unpacked, NAME__init).
    Every function declared in puente.h, pt_crypto.h, pt_keys.h, pt_types.h and
    pt_json.h carries its contract (what it does, ownership, errors and, where it
    differs from the rule above, thread-safety) in a comment right above it.
    Nothing else of the source tree (pt_envelope.h, pt_audit.h, ...) is public.
*/
#ifndef PUENTE_H
#define PUENTE_H

#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "consent.pb-c.h"
#include "control.pb-c.h"
#include "envelope.pb-c.h"
#include "pt_crypto.h"
#include "pt_json.h"
#include "pt_keys.h"
#include "pt_types.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"

#define PUENTE_DEFAULT_BROKER "tcp://127.0.0.1:7550"
#define PUENTE_DEFAULT_KEYS "var/keys"
#define PUENTE_DEFAULT_TIMEOUT_MS 10000
#define PUENTE_OPERATOR "operator"
#define PUENTE_ERR_BYTES 256
#define PUENTE_FAILOVER_AFTER_MS 2000 /* without a working connection, then the next endpoint */
#define PUENTE_FAILOVER_MAX_MS 16000  /* the longest wait per endpoint (all of them down) */

typedef struct _pt_client_t pt_client_t;
typedef struct _pt_message_t pt_message_t;

typedef enum {
    PT_CLIENT_OK = 0,
    PT_CLIENT_REJECTED = -1,    /* the broker answered with a Reject (see pt_reject_info_t) */
    PT_CLIENT_UNREACHABLE = -2, /* no answer from the broker within the timeout */
    PT_CLIENT_TIMEOUT = -3,     /* pt_client_recv: nothing arrived within its timeout */
    PT_CLIENT_INVALID = -4,     /* bad arguments or local configuration (keys, type, sizes) */
    PT_CLIENT_REFUSED = -5,     /* a delivered message failed a check; it was NOT acked */
    PT_CLIENT_BAD_REPLY = -6,   /* the broker's answer failed its signature check or decode */
    PT_CLIENT_INTERNAL = -7,    /* allocation or library failure */
    PT_CLIENT_NOTICE = 1        /* pt_client_recv: *out is a broker notice (opts.want_notices) */
} pt_client_result_t;

typedef struct {
    const char *endpoint;    /* a broker endpoint, or several comma-separated in order of
                                preference (failover, see above); NULL = PUENTE_DEFAULT_BROKER.
                                A malformed list fails pt_client_new (INVALID) naming the entry */
    const char *keys_dir;    /* NULL = PUENTE_DEFAULT_KEYS */
    const char *org_id;      /* organisation id or PUENTE_OPERATOR; required */
    int receive;             /* 1: ask the broker to deliver this org's messages here */
    int timeout_ms;          /* per request; <= 0 = PUENTE_DEFAULT_TIMEOUT_MS */
    const char *client_name; /* Hello.client; NULL = "puente-sdk/0.1" */
    const char *inbox_path;  /* durable inbox (SQLite state file, created if absent) for
                                pt_client_recv/pt_client_ack; NULL = in-memory only */
    int want_notices;        /* 1: pt_client_recv also hands over broker notices (result
                                PT_CLIENT_NOTICE; confirm with pt_client_notice_ack);
                                0: they are verified and acknowledged silently */
} pt_client_opts_t;

/* What the caller wants sent. Strings are borrowed for the duration of the call. */
typedef struct {
    const char *message_type;        /* required, a name known to pt_types */
    const char *const *recipients;   /* required, n_recipients >= 1; for consent.withdraw and
                                        case.erasure_request, 0 = every party of the case
                                        (pt_client_recipients) */
    size_t n_recipients;
    const char *case_token;          /* required */
    const char *purpose;             /* NULL = the type's default purpose */
    const char *agreement_id;        /* NULL = let the broker pick */
    const uint8_t *correlation_id;   /* 16 bytes, NULL = a new UUIDv7 */
    const uint8_t *causation_id;     /* 16 bytes or NULL */
    int64_t expires_in_ms;           /* 0 = broker default */
    int64_t respond_by_ms;           /* absolute Unix ms, 0 = none */
    const Puente__V1__ConsentSummary *consent; /* NULL = all false / unspecified */
    const char *service_type;        /* NULL = none; referral.request: NULL = the body's
                                        first services[].service_type (the broker
                                        requires one on a referral.request) */
    const char *best_interests_ref;  /* NULL = none */
    const char *reason_code;         /* NULL = none */
    const uint8_t *body;             /* packed family message of message_type */
    size_t body_len;
    int64_t follow_up_due_ms;        /* reintegration.plan / .followup: next follow-up
                                        due, absolute Unix ms, 0 = none */
    const char *const *search_countries; /* tracing.request: the countries to search
                                        (header search_countries); n == 0 = the body's
                                        TraceRequest.search_countries. Given, they must
                                        equal the body's set (else PT_CLIENT_INVALID).
                                        The recipients must be exactly the countries'
                                        tracing focal points (the broker checks). */
    size_t n_search_countries;
} pt_send_t;

typedef struct {
    uint8_t message_id[PT_UUID_BYTES];
    uint8_t correlation_id[PT_UUID_BYTES];
    int64_t stored_at_ms;
    uint8_t header_sha256[PT_SHA256_BYTES];
    uint8_t event_hash[PT_SHA256_BYTES];
    int duplicate;
    int64_t leaf_index;              /* the "stored" event's leaf in the audit log; -1 = unknown */
} pt_receipt_info_t;

typedef struct {
    int code;                        /* Puente__V1__RejectCode value */
    char code_name[48];              /* "REJECT_NO_AGREEMENT" */
    char reason[PUENTE_ERR_BYTES];
    uint8_t message_id[PT_UUID_BYTES];  /* zero when the broker did not say */
} pt_reject_info_t;

/* --- Connection --------------------------------------------------------- */

/* Loads opts->org_id's key set (private parts) and the broker's public keys from
   keys_dir, connects with CURVE, sends Hello and waits for Welcome. NULL on
   failure with a reason in err (e.g. "cannot reach broker at tcp://..."). Blocks
   up to the timeout. */
pt_client_t *pt_client_new(const pt_client_opts_t *opts, char *err, size_t err_len);

/* As pt_client_new; on failure *err_code (if not NULL) receives
   PT_CLIENT_UNREACHABLE or PT_CLIENT_INVALID/INTERNAL, so callers can tell an
   unreachable broker from a local configuration error. */
pt_client_t *pt_client_new_ex(const pt_client_opts_t *opts, char *err, size_t err_len,
                              pt_client_result_t *err_code);

/* Closes the socket (short linger) and frees everything, the durable inbox file
   handle included (its rows stay on disk). Messages obtained from the client
   stay valid (each is destroyed on its own). No-op on NULL; nulls *self_p. */
void pt_client_destroy(pt_client_t **self_p);

/* The last error's reason ("" if none; never payload content). Owned by the
   client; valid until the next call on it. */
const char *pt_client_error(const pt_client_t *client);

/* The organisation id this client acts as (opts.org_id). Owned by the client,
   valid until pt_client_destroy. */
const char *pt_client_org(const pt_client_t *client);

/* Issue 9: the endpoint the client's connection uses now, one entry of
   opts.endpoint (for logs, metrics and tests; it changes only inside calls that
   wait on the broker). Owned by the client; valid until the next call on it. */
const char *pt_client_endpoint(const pt_client_t *client);

/* How many times the client moved to another endpoint since pt_client_new
   (always 0 with a single endpoint). Never fails. */
unsigned long pt_client_failovers(const pt_client_t *client);

/* --- Directory ---------------------------------------------------------- */

/* Public keys of org_id from the broker's signed directory, fetched and verified on
   first use and cached. NULL if the org is unknown/disabled or the broker cannot be
   reached or its signature fails (see pt_client_error). Owned by the client. */
const pt_keyset_t *pt_client_directory_keys(pt_client_t *client, const char *org_id);

/* Drops the cache and refetches the entries of the given orgs (n == 0: all);
   org_ids is borrowed. OK, or UNREACHABLE / BAD_REPLY (signature or decode
   failure; the cache is then empty and refetched on next use), INTERNAL.
   Pointers from pt_client_directory_keys become invalid. */
pt_client_result_t pt_client_directory_refresh(pt_client_t *client, const char *const *org_ids,
                                               size_t n);

/* --- Sending ------------------------------------------------------------ */

/* Builds, seals, signs and submits msg, then waits for the verified Receipt or a
   Reject. On timeout the SAME envelope is resubmitted (the broker deduplicates by
   message id) until the client timeout; so it is every 0.5 s after
   REJECT_RETRY_LATER or REJECT_RATE_LIMITED. Returns OK (receipt filled), REJECTED
   (rej filled; puente_reject_retryable says whether to try again later),
   UNREACHABLE (also when the broker refuses the connection at its connection
   limit: pt_client_error says so), INVALID, BAD_REPLY. receipt and rej may be NULL. */
pt_client_result_t pt_client_send(pt_client_t *client, const pt_send_t *msg,
                                  pt_receipt_info_t *receipt, pt_reject_info_t *rej);

/* --- Receiving ---------------------------------------------------------- */

/* Waits up to timeout_ms (< 0: forever) for the next delivery (needs opts.receive),
   checks the envelope, verifies the header signature with the sender's directory
   keys, opens the payload and decodes the body. OK: *out (caller destroys) is the
   message; it still needs pt_client_ack once the application stored it. TIMEOUT:
   nothing came. REFUSED: a delivery failed a check and was not acked; the reason is
   in pt_client_error, and a message that fails is never handed over. Ids already
   handed over in this process are dropped (and re-acked if already acked).
   Field minimisation on the receive side too: the body must fit the field set
   of the agreement between the sender and this organisation for the header's
   purpose (puente_field_set_for on the directory's agreements, fetched and
   refreshed as needed, then puente_fields_check); a body with a field outside
   it, or agreements that cannot be fetched, is REFUSED ("field ... is outside
   the agreement's field set"), not handed over and not acked. The broker cannot
   check this (it never sees the payload), so the recipient does.
   With opts.inbox_path (the durable inbox) every handed-over id is recorded in
   that SQLite file (WAL, synchronous=FULL) before it is returned, and an id the
   application already confirmed with pt_client_ack is re-acked and dropped, in
   this process and in any later one that opens the same file. An id handed over
   but never confirmed (the application crashed before storing it) is handed over
   again: at-least-once towards the application, exactly-once once confirmed.
   Other results: UNREACHABLE (connection lost; the client reconnects on the next
   call), NOTICE (opts.want_notices, below), INTERNAL (the inbox file cannot
   record the id: nothing handed over). */
pt_client_result_t pt_client_recv(pt_client_t *client, int timeout_ms, pt_message_t **out);

/* Sends Ack for a handed-over message id (16 bytes) and waits for Acked. Call it
   only AFTER the application durably stored the message: the ack tells the broker
   (and the durable inbox, which records the confirmation first) never to offer it
   again. INTERNAL if the inbox file cannot record it (nothing was acked then);
   UNREACHABLE leaves it unacked: call again (an ack is idempotent); REJECTED
   (rej-less: reason in pt_client_error) if the broker refuses it, e.g. no such
   delivery for this organisation. */
pt_client_result_t pt_client_ack(pt_client_t *client, const uint8_t *message_id);

/* Notices (issue 3; docs/protocol.md "Notices"): the broker tells both parties of a
   lifecycle that a deadline passed ("overdue"). Each carries the broker's signature,
   checked by pt_client_recv against the broker key in keys_dir (a notice that fails
   is dropped, with the reason in pt_client_error). With opts.want_notices,
   pt_client_recv returns PT_CLIENT_NOTICE and *out is a message whose header, type
   and id are NULL; read it with pt_message_notice. The broker sends an
   unacknowledged notice again on every attach (at-least-once).
   pt_client_notice_ack confirms notice_id and waits for the broker's Acked. */
pt_client_result_t pt_client_notice_ack(pt_client_t *client, uint64_t notice_id);

/* Sets opts.want_notices after connecting (1 or 0); notices not yet handed over
   follow the new setting. Never fails. */
void pt_client_want_notices(pt_client_t *client, int want);

/* The verified notice of a PT_CLIENT_NOTICE result, NULL for a delivered message.
   Owned by msg. */
const Puente__V1__Notice *pt_message_notice(const pt_message_t *msg);

/* Verifies a Notice's broker_signature (see docs/protocol.md) with the broker's
   signing key; both borrowed. 0 if valid, -1 otherwise (never asserts on the
   notice's bytes). Thread-safe. */
int puente_notice_verify(const Puente__V1__Notice *notice, const pt_sign_key_t *broker);

/* A pt_message_t is immutable once handed over: its accessors may be called
   from any thread, and what they return is owned by the message and valid until
   pt_message_destroy. */

/* The verified header (sender, recipients, ids, type, purpose, consent
   summary ...). NULL for a notice. */
const Puente__V1__Header *pt_message_header(const pt_message_t *msg);

/* The message's type from the registry (a static entry). NULL for a notice. */
const pt_type_t *pt_message_type(const pt_message_t *msg);

/* The decoded family message (cast it to the type's generated struct, e.g.
   Puente__V1__ReferralRequest for "referral.request"). NULL for a notice. */
const ProtobufCMessage *pt_message_body(const pt_message_t *msg);

/* The verified, decrypted body bytes (the packed family message); *len receives
   their length. NULL (and *len 0) for a notice. */
const uint8_t *pt_message_body_bytes(const pt_message_t *msg, size_t *len);

/* 16-byte message id, the one pt_client_ack takes (NULL for a notice). */
const uint8_t *pt_message_id(const pt_message_t *msg);

/* Frees a message from pt_client_recv (its decoded body and plaintext bytes
   included; they are not wiped) and sets *self_p to NULL; no-op on NULL.
   Destroying does NOT ack: ack first if the application stored it. Independent
   of the client: a message may outlive the client that received it. */
void pt_message_destroy(pt_message_t **self_p);

/* --- Audit and administration ------------------------------------------- */

/* The case's trail events. OK: *out (caller frees with
   puente__v1__trail_reply__free_unpacked(r, NULL)). REJECTED with rej filled. */
pt_client_result_t pt_client_trail(pt_client_t *client, const char *case_token,
                                   Puente__V1__TrailReply **out, pt_reject_info_t *rej);

/* Fan-out (issue 3): the organisations other than this client's that sent or
   received a message about case_token, i.e. who a consent.withdraw or
   case.erasure_request must be addressed to. OK: *orgs (caller frees with
   puente_strings_free(orgs, n)) and *n. REJECTED (NOT_PERMITTED when this
   organisation is not a party of the case) with rej filled. */
pt_client_result_t pt_client_recipients(pt_client_t *client, const char *case_token, char ***orgs,
                                        size_t *n, pt_reject_info_t *rej);

/* Frees a list returned by pt_client_recipients (each string, then the array).
   No-op on NULL. Thread-safe. */
void puente_strings_free(char **list, size_t n);

/* Overdue lifecycles (respond-by passed, or a reintegration plan's follow-up due
   date passed) this client's organisation is a party to; the operator gets all.
   OK: *out (caller frees with puente__v1__overdue_reply__free_unpacked(r, NULL)).
   REJECTED with rej filled. */
pt_client_result_t pt_client_overdue(pt_client_t *client, Puente__V1__OverdueReply **out,
                                     pt_reject_info_t *rej);

/* Sends an administrative request (operator identity); request_id is set by the
   client on a copy. OK: *result (caller frees, may be NULL) is the broker's result text. */
pt_client_result_t pt_client_admin(pt_client_t *client, const Puente__V1__AdminRequest *req,
                                   char **result, pt_reject_info_t *rej);

/* Issue 6: like pt_client_admin, but OK gives the whole reply (orgs, agreements,
   queues, status): caller frees with puente__v1__admin_reply__free_unpacked(r, NULL). */
pt_client_result_t pt_client_admin_reply(pt_client_t *client, const Puente__V1__AdminRequest *req,
                                         Puente__V1__AdminReply **out, pt_reject_info_t *rej);

/* --- Audit log (issue 4) ------------------------------------------------------
   An auditor connects with org_id "auditor:<ID>" (ID an organisation-style id of
   at most PUENTE_AUDITOR_ID_MAX characters); its keys are read from
   <keys>/auditors/<ID>/ (puente keygen --org ID --keys <keys>/auditors). */
#define PUENTE_AUDITOR_PREFIX "auditor:"
#define PUENTE_AUDITOR_ID_MAX 24

/* The checkpoint of tree_size (0 = latest). OK: *out (caller frees with
   puente__v1__checkpoint_reply__free_unpacked(r, NULL)); verify it with
   pt_audit_checkpoint2_verify (pt_audit.h: seq, tree_size, root, at_ms,
   prev_hash) and the broker's key. */
pt_client_result_t pt_client_checkpoint(pt_client_t *client, uint64_t tree_size,
                                        Puente__V1__CheckpointReply **out, pt_reject_info_t *rej);

/* The earliest checkpoint with tree_size >= covering_size (> 0); with sign_now
   the broker signs one now if none covers it yet and its log is that long.
   PT_CLIENT_REJECTED with REJECT_NOT_FOUND: none yet (ask again). As above. */
pt_client_result_t pt_client_checkpoint_covering(pt_client_t *client, uint64_t covering_size,
                                                 int sign_now,
                                                 Puente__V1__CheckpointReply **out,
                                                 pt_reject_info_t *rej);

/* An inclusion and/or consistency proof (see ProofRequest). OK: *out (caller frees
   with puente__v1__proof_reply__free_unpacked(r, NULL)). */
pt_client_result_t pt_client_proof(pt_client_t *client, const Puente__V1__ProofRequest *req,
                                   Puente__V1__ProofReply **out, pt_reject_info_t *rej);

/* An auditor query (auditor identities and the operator). An auditor's client
   signs it (signed_at_ms, nonce, signature: pt_audit_query.h) with the auditor's
   signing key; fields set by the caller there are replaced. At most query->limit
   rows (0 = 10000); reply->truncated with reply->next_after when more follow
   (ask again with query->after = next_after). OK: *out (caller frees with
   puente__v1__audit_reply__free_unpacked(r, NULL)); REJECTED NOT_PERMITTED out of
   scope (the broker logs the refusal too), BAD_QUERY_SIGNATURE / STALE_QUERY,
   RETRY_LATER when the broker could not log the query (nothing answered). */
pt_client_result_t pt_client_audit(pt_client_t *client, const Puente__V1__AuditQuery *query,
                                   Puente__V1__AuditReply **out, pt_reject_info_t *rej);

/* --- Helpers (no client needed; thread-safe) ---------------------------- */

/* Name of a reject code ("REJECT_NO_AGREEMENT"; a static string, never free
   it), "REJECT_UNKNOWN" if out of range. */
const char *puente_reject_name(int code);

/* 1 if a reject with this code is temporary: nothing was stored and the same
   envelope should be submitted again later (REJECT_RETRY_LATER: the broker's
   database is unreachable; REJECT_RATE_LIMITED: the organisation is over its
   submission rate; REJECT_QUOTA_EXCEEDED: a recipient has its quota of messages
   waiting). The outbox retries these; every other code is final (0). */
int puente_reject_retryable(int code);

/* Verifies a DirectoryReply with the broker's signing key and unpacks its entries.
   0 and *entries_p (caller frees with puente__v1__directory_entries__free_unpacked)
   or -1 when the signature fails or the entries do not decode. */
int puente_directory_verify(const Puente__V1__DirectoryReply *reply, const pt_sign_key_t *broker,
                            Puente__V1__DirectoryEntries **entries_p);

/* Verifies a Receipt's broker_signature (docs/protocol.md "Receipt signature")
   with the broker's signing key; both borrowed. Both formats verify:
   format 1 (or 0: receipts of brokers from before issue 8), one
   signature over "puente.v1 receipt\0" || message_id || be64(stored_at_ms) ||
   header_sha256 || event_hash; and format 2, one signature per batch: the
   receipt's leaf SHA-256(0x00 || those same bytes) is folded up batch_path
   (exactly the length batch_index and batch_size imply; 32-byte hashes;
   batch_index < batch_size <= 4096) to the root, and the
   signature must be over "puente.v2 receipt batch\0" || be32(batch_size) ||
   root. 0 if valid, -1 otherwise (never asserts on the receipt's bytes). One
   Ed25519 verification (pt_client_send and the outbox instead remember, per
   client, the last batch signature verified: a later receipt of the same batch
   costs only its path's hashes). */
int puente_receipt_verify(const Puente__V1__Receipt *receipt, const pt_sign_key_t *broker);

/* Fills out (all fields borrowed from body, valid while body lives) from the
   family message's "consent" field (a ConsentBlock): consent_for_services,
   disclosure_other_orgs, consent_for_tracing, the first legitimate_basis,
   withhold_from, and override approver (overridden when an override names an
   approver or a justification code; its legal_basis, when set, replaces the first
   legitimate_basis). 1 if the body has a consent block, 0 if
   not (out is then reset to defaults). */
int puente_consent_derive(const ProtobufCMessage *body, Puente__V1__ConsentSummary *out);

/* Field minimisation (issue 3). 0 if every set field of body (proto3: a value
   other than the default; repeated: non-empty) is allowed by the field paths
   ("child.name_first", "services"; a message path allows everything below it;
   repeated fields are named without an index); else -1 and the first offending
   path (depth-first, in field order) in offending. An empty allowed list allows
   nothing. Cost: one walk of the message. */
int puente_fields_check(const ProtobufCMessage *body, const char *const *allowed, size_t n_allowed,
                        char *offending, size_t offending_len);

/* The field set that applies to a message between a and b: the agreement the
   broker would route it under (agreement_id if non-empty, else the first one in
   the list valid at now_ms covering message_type and purpose), then that
   agreement's FieldSet for purpose. NULL: no such agreement or no field set for
   that purpose, i.e. no restriction. Borrowed from agreements. */
const Puente__V1__FieldSet *puente_field_set_for(Puente__V1__AgreementSpec *const *agreements,
                                                 size_t n, const char *a, const char *b,
                                                 const char *message_type, const char *purpose,
                                                 const char *agreement_id, int64_t now_ms);

/* Payload rules the broker cannot check (it never reads payloads), applied by
   the sending SDK before sealing (pt_client_send, the outbox). Today:
   reintegration.plan needs version >= 1 and child_participation other than
   UNSPECIFIED, and the deprecated child_participated may be true only with
   CHILD_PARTICIPATION_YES. Whether a plan's version grows from one plan to the
   next is not checked (the header carries no plan version; see README "Case
   lifecycles"). 0 if body passes (any other type passes), else -1 with the
   reason in why (may be NULL). */
int puente_payload_check(const char *message_type, const ProtobufCMessage *body, char *why,
                         size_t why_len);

/* Parses a LegalBasis name: "consent", "vital_interests", ..., or the full enum
   name "LEGAL_BASIS_CONSENT". -1 if unknown, else the enum value. */
int puente_legal_basis_parse(const char *text);

/* Parses a duration: an integer followed by ms, s, m, h or d ("7d", "500ms");
   a bare integer is seconds. 0 and *ms, or -1 (negative, overflow, junk). */
int puente_duration_parse(const char *text, int64_t *ms);

/* Parses ISO 8601 UTC or with offset: "2025-03-01", "2025-03-01T12:00:00Z",
   "2025-03-01T12:00:00.250+02:00". 0 and *ms (Unix ms), or -1. */
int puente_time_parse(const char *text, int64_t *ms);

/* Formats Unix ms as "2025-03-01T12:00:00.250Z" into out (caller's buffer, at
   least 32 bytes; "?" if the time cannot be represented). Never fails. */
void puente_time_format(int64_t ms, char *out, size_t out_len);

/* ===========================================================================
   Durable outbox (issue 5)

   pt_outbox_send seals and signs a message at once and commits the envelope to
   a local SQLite state file (WAL, synchronous=FULL) before it returns; a
   background thread, with its own connection to the broker, submits the queued
   envelopes one at a time in the order they were queued (global FIFO, so also
   per correlation id), records each verified receipt, and records final rejects
   with their code (never retried). Retryable rejects (puente_reject_retryable:
   REJECT_RETRY_LATER, REJECT_RATE_LIMITED, REJECT_QUOTA_EXCEEDED) are retried
   forever with backoff 0.5 s doubling to 5 s; timeouts and an unreachable broker
   with backoff 0.5 s doubling to 30 s. The queue is one FIFO: a message waiting
   for a full recipient queue holds back the messages queued after it.
   Queued messages survive a crash or pt_outbox_destroy and are sent by the next
   process that opens the same state file; since the envelope (and its message
   id) is fixed when queued, a resubmission after a crash returns the broker's
   original receipt: exactly-once effect.

   Recipients' keys and the agreements (field sets) come from the broker's
   signed directory, fetched by the background thread on every (re)connection
   and cached, signature included, in the state file: sealing works while the
   broker is down, with the keys of the last successful fetch. The cache is
   re-verified with <keys>/broker/sign.pub whenever it is loaded.

   Thread-safety: every pt_outbox_* function except pt_outbox_destroy may be
   called from any thread at the same time (sends are serialised inside). One
   state file is for one outbox object at a time (one process). pt_outbox_destroy
   must not race with other calls on the same outbox.
   =========================================================================== */

typedef struct _pt_outbox_t pt_outbox_t;

typedef struct {
    pt_client_opts_t client; /* endpoint (one or a list: the background connection fails
                                over as a client does, and an envelope in flight is submitted
                                again to the next broker: same message id, one effect),
                                keys_dir, org_id, client_name; timeout_ms is per
                                submit attempt and connection attempt (<= 0: 5000);
                                receive and inbox_path are ignored */
    const char *state_path;  /* required: the SQLite state file, created if absent */
} pt_outbox_opts_t;

typedef enum {
    PT_OUTBOX_UNKNOWN = 0,   /* not in this state file */
    PT_OUTBOX_QUEUED = 1,    /* committed locally, not yet acknowledged by the broker */
    PT_OUTBOX_SUBMITTED = 2, /* the broker's verified receipt is recorded */
    PT_OUTBOX_REJECTED = 3   /* a final reject is recorded (code, reason) */
} pt_outbox_state_t;

/* Opens (or creates) the state file, loads the organisation's keys and the
   broker's public keys, loads the cached directory if any, and starts the
   background thread. Does not wait for the broker. NULL with a reason in err
   (a malformed endpoint list; unreadable keys; a state file that is corrupt or
   belongs to something else). */
pt_outbox_t *pt_outbox_new(const pt_outbox_opts_t *opts, char *err, size_t err_len);

/* Stops the background thread (waits for an attempt in flight, at most about the
   timeout), closes the file and frees. Queued messages stay in the file. No-op on
   NULL; nulls *self_p. */
void pt_outbox_destroy(pt_outbox_t **self_p);

/* The calling thread's last error of a pt_outbox_* call ("" if none). */
const char *pt_outbox_error(const pt_outbox_t *outbox);

/* Builds, checks (field minimisation), seals and signs msg with the cached
   directory, and commits it to the state file. OK: it is durable and message_id
   (may be NULL) holds its id. INVALID: bad message, no explicit recipients (the
   fan-out of consent.withdraw needs the broker: use pt_client_send), or a
   recipient absent from the last fetched directory (or no directory fetched
   yet); INTERNAL: the file could not be written. Never waits for the broker.
   Cost: one seal and one fsync'ed commit. */
pt_client_result_t pt_outbox_send(pt_outbox_t *outbox, const pt_send_t *msg,
                                  uint8_t message_id[PT_UUID_BYTES]);

/* The state of a message queued in this state file; receipt (SUBMITTED: ids,
   stored_at_ms, header and event hashes, duplicate, leaf_index or -1 when the
   broker named none) and rej (REJECTED) are filled when not NULL. UNKNOWN also
   on a read error. Thread-safe. */
pt_outbox_state_t pt_outbox_status(pt_outbox_t *outbox, const uint8_t *message_id,
                                   pt_receipt_info_t *receipt, pt_reject_info_t *rej);

/* Number of queued (not yet submitted or rejected) messages; -1 on error. */
long pt_outbox_pending(pt_outbox_t *outbox);

/* Waits until nothing is queued: OK, or TIMEOUT after timeout_ms (< 0: forever). */
pt_client_result_t pt_outbox_flush(pt_outbox_t *outbox, int timeout_ms);

/* Issue 9: copies the endpoint the background connection uses now into out
   ("" before it first connected) and returns how many times the outbox moved
   to another endpoint since pt_outbox_new. Thread-safe. */
unsigned long pt_outbox_endpoint(pt_outbox_t *outbox, char *out, size_t out_len);

/* Waits until a verified directory is available (cached from an earlier
   process or fetched now): OK, or TIMEOUT after timeout_ms (< 0: forever).
   Useful before a first pt_outbox_send on a fresh state file. */
pt_client_result_t pt_outbox_wait_directory(pt_outbox_t *outbox, int timeout_ms);

#endif

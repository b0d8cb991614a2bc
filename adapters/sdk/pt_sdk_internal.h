/*  pt_sdk_internal — seams between the SDK's own modules (pt_client, pt_outbox).
    Not installed, not part of the public API (puente.h is). */
#ifndef PT_SDK_INTERNAL_H
#define PT_SDK_INTERNAL_H

#include "puente.h"

/* Builds, checks and seals msg without touching the network: type, recipients,
   case token and purpose are validated, the body is checked against the field set
   of the agreements (entries->agreements; entries NULL = agreements unknown, which
   refuses), then the header is signed with me's key and the payload sealed to
   recipient_keys[i] (one per msg->recipients[i], none NULL). msg->n_recipients must
   be >= 1 (the fan-out lookup is the caller's). OK with *env (caller frees),
   message_id and correlation_id filled; else INVALID/INTERNAL with err set. */
pt_client_result_t pt_sdk_seal(const char *org, const pt_keyset_t *me, const pt_send_t *msg,
                               const pt_keyset_t *const *recipient_keys,
                               const Puente__V1__DirectoryEntries *entries,
                               uint32_t max_frame_bytes, uint8_t **env, size_t *env_len,
                               uint8_t message_id[PT_UUID_BYTES],
                               uint8_t correlation_id[PT_UUID_BYTES], char *err, size_t err_len);

/* Submits an envelope built by pt_sdk_seal (sent byte for byte) and waits until
   deadline_ms (absolute) for the verified Receipt or a Reject. REJECT_RETRY_LATER
   is retried while the deadline allows, then returned as REJECTED. Same results as
   pt_client_send. */
pt_client_result_t pt_sdk_submit(pt_client_t *client, const uint8_t *env, size_t env_len,
                                 int64_t deadline_ms, pt_receipt_info_t *receipt,
                                 pt_reject_info_t *rej);

/* The bytes and signature of the last directory reply that verified (NULL if
   none yet). Owned by the client, valid until its next directory request. */
const uint8_t *pt_sdk_directory_signed(const pt_client_t *client, size_t *entries_len,
                                       const uint8_t **signature, size_t *signature_len);

/* The broker's frame limit announced in Welcome. */
uint32_t pt_sdk_max_frame(const pt_client_t *client);

/* --- Key history (issue 6, pt_verify.c) ------------------------------------------ */
#include "pt_key_window.h"

/* 1 if the set of o's current sealing key (o->seal_public) is in o->key_sets and
   revoked at now_ms: nothing may be sealed to it (the broker refuses it too). */
int pt_sdk_org_revoked(const Puente__V1__OrgKeys *o, int64_t now_ms);

/* The window of the set in o->key_sets whose signing key id is key_id (32 bytes):
   1 with *window and *sign_public (borrowed from o), 0 if o has no such set. The
   set's sign_public must hash to its sign_key_id (signed by the broker, checked
   anyway). */
int pt_sdk_org_key_set(const Puente__V1__OrgKeys *o, const uint8_t *key_id, size_t key_id_len,
                       pt_key_window_t *window, const uint8_t **sign_public);

/* --- SQLite state files (pt_sdk_db.c) ---------------------------------------- */
#include <sqlite3.h>

/* Opens or creates the state file at path for `what` ("outbox", "inbox"): WAL,
   synchronous=FULL, busy timeout, application_id app_id. A file that is not
   SQLite, or an SQLite file of another application (different application_id,
   or tables without our id), is refused with a clear err. schema_sql (CREATE
   TABLE IF NOT EXISTS ...) is then run. NULL on failure. */
sqlite3 *pt_sdk_db_open(const char *path, int32_t app_id, const char *what, const char *schema_sql,
                        char *err, size_t err_len);

/* Runs one statement with no result rows. 0 or -1 with err set. */
int pt_sdk_db_exec(sqlite3 *db, const char *sql, char *err, size_t err_len);

/* --- The outbox's SQLite layer (pt_outbox_db.c) -------------------------------
   One connection per thread: the file is shared through SQLite's own locking
   (WAL: readers never block the writer). Every write is one committed,
   fsync'ed transaction when the function returns 0. */
typedef struct _pt_outbox_db_t pt_outbox_db_t;

/* Opens or creates an outbox state file (see pt_sdk_db_open). NULL with err. */
pt_outbox_db_t *pt_outbox_db_open(const char *path, char *err, size_t err_len);
void pt_outbox_db_close(pt_outbox_db_t **self_p);
/* The last SQLite error of this connection. */
const char *pt_outbox_db_error(pt_outbox_db_t *self);

/* Appends a queued envelope; *seq (may be NULL) gets its position. 0 or -1. */
int pt_outbox_db_enqueue(pt_outbox_db_t *self, const uint8_t message_id[PT_UUID_BYTES],
                         const uint8_t *env, size_t env_len, int64_t *seq);

/* The oldest queued envelope: 1 with *seq, message_id and *env (caller frees),
   0 when nothing is queued, -1 on error. */
int pt_outbox_db_next(pt_outbox_db_t *self, int64_t *seq, uint8_t message_id[PT_UUID_BYTES],
                      uint8_t **env, size_t *env_len);

/* Final states of a queued row (a row that is no longer queued is left alone). */
int pt_outbox_db_submitted(pt_outbox_db_t *self, int64_t seq, const pt_receipt_info_t *receipt);
int pt_outbox_db_rejected(pt_outbox_db_t *self, int64_t seq, int code, const char *reason);

/* The state of message_id (PT_OUTBOX_UNKNOWN when absent), filling receipt / rej
   (may be NULL) for submitted / rejected rows. -1 on error. */
int pt_outbox_db_status(pt_outbox_db_t *self, const uint8_t message_id[PT_UUID_BYTES],
                        pt_receipt_info_t *receipt, pt_reject_info_t *rej);

/* Number of queued rows, -1 on error. */
long pt_outbox_db_pending(pt_outbox_db_t *self);

/* The last verified directory reply (entries bytes + broker signature), kept so
   that sealing works while the broker is unreachable. load: 1 with copies
   (caller frees), 0 if none was ever saved, -1 on error. */
int pt_outbox_db_directory_save(pt_outbox_db_t *self, const uint8_t *entries, size_t entries_len,
                                const uint8_t *signature, size_t signature_len);
int pt_outbox_db_directory_load(pt_outbox_db_t *self, uint8_t **entries, size_t *entries_len,
                                uint8_t **signature, size_t *signature_len);

#endif

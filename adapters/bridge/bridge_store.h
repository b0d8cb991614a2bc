/*  bridge_store — puente-bridge's local state in SQLite (WAL, synchronous=FULL):
    the inbox (messages received from the broker, kept until the national system
    acks them) and the status of outbound messages.

    Inbox rows: seq (the paging cursor), message id, thread ids, the message JSON
    (dropped once the national system acked it: the bridge keeps no child data
    longer than it must), app ack time, broker ack time, webhook state.
    Outbound rows: the bridge's id, the Puente message id once known, state
    (queued, submitted, delivered, acknowledged, rejected, not_sent), reject code,
    receipt, lifecycle state.

    Thread-safety: every function may be called from any thread; one mutex
    serialises them. Functions return 0 on success and -1 on a storage error
    unless stated otherwise.
*/
#ifndef PT_BRIDGE_STORE_H
#define PT_BRIDGE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _pt_bridge_store_t pt_bridge_store_t;

/* Opens (creating dir, mode 0700, and the schema) dir/bridge.db. NULL with err. */
pt_bridge_store_t *pt_bridge_store_open(const char *dir, char *err, size_t err_len);

/* Closes; no-op on NULL; nulls *self_p. */
void pt_bridge_store_destroy(pt_bridge_store_t **self_p);

/* Stores a received message (message_json: its full JSON text). 1 inserted, 0
   already there (a redelivery), -1 error. webhook: 1 to queue it for the webhook. */
int pt_bridge_inbox_put(pt_bridge_store_t *self, const char *message_id, const char *correlation_id,
                        const char *causation_id, const char *message_json, int webhook);

/* Messages not yet acked by the national system with seq > since, oldest first,
   at most limit. *messages (caller json_decref) is an array of the message
   objects each with "cursor" and, when a webhook is configured,
   "webhook": {state ("pending", "delivered", "failed"), attempts}; *next_cursor the last seq
   returned (or since). */
int pt_bridge_inbox_list(pt_bridge_store_t *self, int64_t since, int limit, json_t **messages,
                         int64_t *next_cursor);

/* The national system stored message_id: records it and drops the JSON.
   1 done (or done before: *already set), 0 no such inbox message, -1 error. */
int pt_bridge_inbox_app_ack(pt_bridge_store_t *self, const char *message_id, int *already);

/* Records that the broker accepted our ack. */
int pt_bridge_inbox_broker_acked(pt_bridge_store_t *self, const char *message_id);

/* Up to max ids (37-byte texts) acked by the application but not yet by the broker. */
int pt_bridge_inbox_pending_acks(pt_bridge_store_t *self, char (*ids)[37], int max);

/* The next message due for the webhook at now_ms: 1 with *seq and *json (caller
   frees) and *attempts, 0 none, -1 error. */
int pt_bridge_webhook_next(pt_bridge_store_t *self, int64_t now_ms, int64_t *seq, char **json,
                           int *attempts);

/* The earliest time a pending webhook is due: 1 with *due_ms, 0 none pending,
   -1 error. */
int pt_bridge_webhook_next_due(pt_bridge_store_t *self, int64_t *due_ms);

/* Result of a webhook attempt: delivered (1), or retry at next_ms, or give up
   (next_ms < 0: state "failed"; the message stays in the inbox). */
int pt_bridge_webhook_result(pt_bridge_store_t *self, int64_t seq, int delivered, int64_t next_ms);

/* Webhook state of an inbox message ("pending", "delivered", "failed", "none"),
   into out; 0 found, -1 not found or error. */
int pt_bridge_webhook_state(pt_bridge_store_t *self, const char *message_id, char *out,
                            size_t out_len);

/* A new outbound message in state "queued". to_json is a JSON array text. */
int pt_bridge_out_put(pt_bridge_store_t *self, const char *local_id, const char *type,
                      const char *case_token, const char *to_json);

/* A message committed to the SDK outbox (message_id is also the row's id), in
   state "queued", and, when idem_key is not NULL, the Idempotency-Key that made
   it with the SHA-256 (hex) of its request body: both in one transaction. -1 on
   a storage error or a key or id already recorded. */
int pt_bridge_out_queued(pt_bridge_store_t *self, const char *message_id,
                         const char *correlation_id, const char *type, const char *case_token,
                         const char *to_json, const char *idem_key, const char *idem_sha256);

/* The message an Idempotency-Key made: 1 with the body hash and message id
   copied out, 0 unknown key, -1 error. */
int pt_bridge_idem_get(pt_bridge_store_t *self, const char *key, char *sha256_out,
                       size_t sha256_len, char *message_id_out, size_t message_id_len);

/* Ack state of an inbox message: 0 not acked by the national system (or
   unknown), 1 acked by it but not yet by the broker, 2 both, -1 error. */
int pt_bridge_inbox_ack_state(pt_bridge_store_t *self, const char *message_id);

/* The broker offered an app-acked message again (our ack was lost): mark its
   broker ack as pending so the receiver sends it again. */
int pt_bridge_inbox_broker_ack_reset(pt_bridge_store_t *self, const char *message_id);

/* Receipted: state "submitted", message id, thread id, receipt JSON text. */
int pt_bridge_out_submitted(pt_bridge_store_t *self, const char *local_id, const char *message_id,
                            const char *correlation_id, const char *receipt_json);

/* Ended without a receipt: state ("rejected", "not_sent"), reject code and name
   (0/NULL if none), reason, message id if the broker named one (NULL if not). */
int pt_bridge_out_failed(pt_bridge_store_t *self, const char *local_id, const char *state,
                         int reject_code, const char *reject_name, const char *reason,
                         const char *message_id);

/* Progress learnt from the trail: state and lifecycle ("" keeps it). */
int pt_bridge_out_progress(pt_bridge_store_t *self, const char *local_id, const char *state,
                           const char *lifecycle);

/* The outbound row whose bridge id or Puente message id is id, as a JSON object
   {id, message_id, type, case_token, to, correlation_id, status, reject_code,
   reject_code_name, reason, receipt, lifecycle_state, created_at, updated_at}.
   1 and *row (caller json_decref), 0 not found, -1 error. */
int pt_bridge_out_get(pt_bridge_store_t *self, const char *id, json_t **row);

/* Message ids (inbox and outbound) of the thread correlation_id: a json array of
   strings (caller json_decref), plus in *replies the inbox messages whose
   causation id is caused_by ([{id, type, sender}]). */
int pt_bridge_thread(pt_bridge_store_t *self, const char *correlation_id, const char *caused_by,
                     json_t **ids, json_t **replies);

#endif

/*  store — PostgreSQL storage for the broker (contract in store.h).

    Conventions inside this file:
    - every statement is prepared once per connection (lazily, on first use) and
      executed with parameters; bytea/uuid parameters are sent binary, numbers and
      text as text. Every result is requested in binary format, so bytea and uuid
      arrive raw and every length is checked before it is used.
    - any failure inside a transaction ends with ROLLBACK (or a connection reset);
      s_ready() at the start of each public function repairs the connection.
    - times are milliseconds since the Unix epoch from the broker's clock.
*/
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "pt_audit.h"

/* Statements are prepared under these names; the index is their bit in
   self->prepared. */
typedef enum {
    S_PING,
    S_HEADS_INIT,
    S_HEADS_LOCK,
    S_MSGS_FIND,
    S_DUE,
    S_NEXT_DUE,
    S_RECIPIENTS_DUE,
    S_TRAIL,
    S_ORG_UPSERT,
    S_ORG_KEY_CURRENT,
    S_ORG_KEY_RETIRE,
    S_ORG_KEY_INSERT,
    S_ORG_LOAD,
    S_AGR_UPSERT,
    S_AGR_LOAD,
    S_LC_APPLY,
    S_OWNER_SET,
    S_OWNER_FIRST,
    S_LC_LOAD,
    S_OWNER_LOAD,
    S_LC_DELIVERED,
    S_LC_RECEIVED,
    S_MARK_SENT_BATCH,
    S_MSGS_INSERT_MANY,
    S_EVENTS_INSERT_MANY,
    S_LC_CREATE_MANY,
    S_LC_MOVE_MANY,
    S_OWNER_FIRST_MANY,
    S_ACK_BATCH,
    S_ACK_EXISTS_BATCH,
    S_LC_EXPIRE,
    S_LC_FOLLOW_UP_OVERDUE,
    S_OVERDUE_LIST,
    S_NOTICES_PENDING,
    S_NOTICE_SENT,
    S_NOTICE_ACK,
    S_LEAVES_FIND,
    S_AUDIT_HEAD,
    S_CHECKPOINT_PUT,
    S_CHECKPOINT_GET,
    S_AUDIT_LEAVES,
    S_AUDITOR_PUT,
    S_AUDITOR_LOAD,
    S_CASE_PARTIES,
    S_Q_ACTIVITY,
    S_Q_ITEMS,
    S_Q_CORRIDORS,
    S_Q_REJECTS,
    S_RETENTION_DUE,
    S_RETENTION_SET,
    S_LEAF_EVENT,
    S_HOT_TXN,
    S_COUNT
} s_stmt_id_t;
_Static_assert(S_COUNT <= 64, "self->prepared holds one bit per statement");

typedef struct {
    const char *name;
    const char *sql;
} s_stmt_t;

#define S_ZERO_HASH_SQL "decode(repeat('00', 32), 'hex')"
/* The advisory lock class of the chain heads (S_HEADS_INIT): the two-key form,
   apart from the one-key locks of migrations and the checkpoint signer. */
#define S_HEAD_LOCK_CLASS "20580"

/* Tail of the deadline sweeps (007_notices.sql): the CTE "moved" holds the
   lifecycles just raised; one "overdue" notice per distinct party is inserted by
   the same statement, so in the transaction of the "overdue" event. type_sql is
   the SQL for the notice's message type. Returns the rows s_deadline_sweep reads. */
#define S_NOTICES_INSERT(type_sql)                                                            \
    ", sent AS (INSERT INTO notices (org_id, kind, case_token, correlation_id, message_type, " \
    "due_at, created_at) SELECT p.org, 'overdue', m.case_token, m.correlation_id, "           \
    "COALESCE(" type_sql ", ''), pt_ms_to_ts(m.due_ms), pt_ms_to_ts($1::bigint) "             \
    "FROM moved m, LATERAL (SELECT DISTINCT unnest(string_to_array(m.initiator || ',' || "    \
    "m.counterparty, ',')) AS org) p WHERE p.org <> '') "                                     \
    "SELECT case_token, kind, initiator, counterparty FROM moved"

/* The settings of the hot transactions (pt_store_submit_batch,
   pt_store_mark_sent_batch, pt_store_ack_batch), for those transactions only
   (set_config(..., true) is SET LOCAL). Every statement in them, the audit
   append at COMMIT and the foreign-key checks included, finds its rows through a
   primary or unique key the parameters give. Planning them again for every
   execution (the session's force_custom_plan, S_SESSION_SQL) cost as much
   PostgreSQL time as running them when a batch holds one or two messages (issue 8:
   planning was 45 % of PostgreSQL's time per message at 200 msg/s offered), so
   they keep one generic plan per statement instead. A generic plan does not see
   the parameters: it estimated "key = ANY($1)" at a few percent of the table and
   chose sequential scans (tried with plan_cache_mode auto: 86 ms a call), so
   sequential scans, hash and merge joins are off here, which leaves each
   statement the plan it was written for, an index probe per key. The due
   statement runs under them too, in a transaction of its own
   (pt_store_due_deliveries_ex): it cost 1 ms of planning per pass at 200 msg/s,
   and under these settings its generic plan walks the same queue indexes as the
   custom one, whether it was made on a nearly empty database or with statistics
   that predate a surge (test_store "hot transactions plan index probes" and the
   three due-pass tests). The sweeps and every query of the auditors keep plans
   made for their parameters. The settings are themselves a prepared statement
   (S_HOT_TXN, no parameters: planned once per session; s_begin_hot), not text
   planned again in every transaction. */
#define S_HOT_TXN_SQL                                                                       \
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), "                    \
    "set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), " \
    "set_config('enable_mergejoin', 'off', true)"

static const s_stmt_t s_stmts[S_COUNT] = {
    [S_PING] = {"pt_ping", "SELECT 1"},
    [S_HOT_TXN] = {"pt_hot_txn", S_HOT_TXN_SQL},
    /* The chain heads of the cases a transaction appends to (020_chain_heads_
       from_events.sql): first a transaction-scoped advisory lock per case (class
       S_HEAD_LOCK_CLASS, key hashtext(case token); taken in key order, so that
       concurrent transactions, of any broker, wait and never deadlock; two cases
       whose keys collide only share a lock), then, in the next statement (a
       snapshot taken after the locks were granted, so every append that held
       them has committed), each case's last event: its seq and hash, or 0 and
       the zero hash for a new case. The tokens come sorted (byte order); one row
       each. The UNIQUE (case_token, seq) of case_events refuses a fork anyway. */
    [S_HEADS_INIT] = {"pt_heads_init",
                      "SELECT count(pg_advisory_xact_lock(" S_HEAD_LOCK_CLASS ", x.k)) "
                      "FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest($1::text[]) AS t "
                      "ORDER BY 1 OFFSET 0) x"},
    [S_HEADS_LOCK] = {"pt_heads_lock",
                      "SELECT t.tok, COALESCE(h.seq, 0), COALESCE(h.hash, " S_ZERO_HASH_SQL ") "
                      "FROM unnest($1::text[]) AS t(tok) LEFT JOIN LATERAL (SELECT e.seq, "
                      "e.hash FROM case_events e WHERE e.case_token = t.tok "
                      "ORDER BY e.seq DESC LIMIT 1) h ON true ORDER BY t.tok COLLATE \"C\""},
    [S_MSGS_FIND] = {"pt_msgs_find",
                     "SELECT m.message_id, m.header_sha256, pt_ts_to_ms(m.stored_at), e.hash "
                     "FROM messages m LEFT JOIN case_events e "
                     "ON e.message_id = m.message_id AND e.kind = 'stored' "
                     "WHERE m.message_id = ANY($1::uuid[])"},
    /* Index-driven (005_delivery_queue.sql): never-sent deliveries walk
       deliveries_pending in submission order, retries walk deliveries_retry by due
       time, and each candidate's "is it the oldest unacked of its correlation id"
       test is one probe of deliveries_unacked_order. Cost O(max + deliveries
       blocked behind an older one), not O(everything unacknowledged).
       Claims (010_multi_broker.sql): a candidate someone else claimed is skipped
       until that claim expires; the candidates are locked (SKIP LOCKED: another
       broker claiming the same recipient's deliveries right now keeps its rows)
       and claimed for $4 until $2 + $5 ms in the same statement. A concurrent
       claim that committed first is seen by the lock's recheck of the row.
       "OFFSET 0" keeps each probe a correlated subplan on
       deliveries_unacked_order (016_due_plans.sql: with a long history the
       statistics say nothing is waiting, and the anti-join the planner would
       otherwise choose reads the whole backlog once per candidate). The probes
       say "attempts >= 0" (always true) because deliveries_unacked_order serves
       only statements that do (019_hot_statement_indexes.sql).
       Delivery window ($6, pt_store_set_delivery_window): first offers are limited
       to $6 minus the recipient's deliveries in flight (sent and not acknowledged,
       dead-lettered or dropped; counted on deliveries_retry); retries are not limited (they
       are in flight already). $6 <= 0: no window. $7 false: no retries this pass
       (pt_store_due_deliveries_ex). */
    [S_DUE] = {"pt_due",
               "WITH p AS (SELECT p.delivery_id FROM deliveries p "
               "WHERE p.recipient = $1 AND p.state = 'pending' "
               "AND p.next_attempt_at <= pt_ms_to_ts($2::bigint) "
               "AND (p.expires_at IS NULL OR p.expires_at > pt_ms_to_ts($2::bigint)) "
               "AND (p.claimed_by IS NULL OR p.claimed_by = $4 "
               "OR p.claim_expires_at <= pt_ms_to_ts($2::bigint)) "
               "AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.recipient = p.recipient "
               "AND e.correlation_id = p.correlation_id AND e.delivery_id < p.delivery_id "
               "AND e.state <> 'acked' AND e.state <> 'dropped' AND e.attempts >= 0 "
               "AND (e.expires_at IS NULL OR e.expires_at > pt_ms_to_ts($2::bigint)) OFFSET 0) "
               "ORDER BY p.delivery_id LIMIT CASE WHEN $6::bigint <= 0 THEN $3::bigint "
               "ELSE LEAST($3::bigint, GREATEST(0, $6::bigint - (SELECT count(*) "
               "FROM deliveries w WHERE w.recipient = $1 AND w.state = 'delivered'))) END "
               "FOR UPDATE SKIP LOCKED), "
               "r AS (SELECT r.delivery_id FROM deliveries r "
               "WHERE r.recipient = $1 AND r.state = 'delivered' "
               "AND r.next_attempt_at <= pt_ms_to_ts($2::bigint) "
               "AND (r.expires_at IS NULL OR r.expires_at > pt_ms_to_ts($2::bigint)) "
               "AND (r.claimed_by IS NULL OR r.claimed_by = $4 "
               "OR r.claim_expires_at <= pt_ms_to_ts($2::bigint)) "
               "AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.recipient = r.recipient "
               "AND e.correlation_id = r.correlation_id AND e.delivery_id < r.delivery_id "
               "AND e.state <> 'acked' AND e.state <> 'dropped' AND e.attempts >= 0 "
               "AND (e.expires_at IS NULL OR e.expires_at > pt_ms_to_ts($2::bigint)) OFFSET 0) "
               "ORDER BY r.next_attempt_at LIMIT CASE WHEN $7::boolean THEN $3::bigint ELSE 0 END "
               "FOR UPDATE SKIP LOCKED), "
               "d AS (SELECT delivery_id FROM p UNION ALL SELECT delivery_id FROM r "
               "ORDER BY delivery_id LIMIT $3::bigint), "
               "c AS (UPDATE deliveries x SET claimed_by = $4, "
               "claim_expires_at = pt_ms_to_ts($2::bigint + $5::bigint) FROM d "
               "WHERE x.delivery_id = d.delivery_id "
               "RETURNING x.delivery_id, x.message_id, x.attempts) "
               "SELECT c.delivery_id, c.message_id, m.envelope, c.attempts::bigint FROM c "
               "JOIN messages m ON m.message_id = c.message_id ORDER BY c.delivery_id"},
    /* "attempts >= 0" (always true) lets these two use deliveries_live_next, which
       the due pass cannot (018_due_plans_stale_stats.sql). */
    [S_NEXT_DUE] = {"pt_next_due",
                    "SELECT pt_ts_to_ms(min(next_attempt_at)) FROM deliveries "
                    "WHERE state IN ('pending', 'delivered') AND attempts >= 0 "
                    "AND (expires_at IS NULL OR expires_at > pt_ms_to_ts($1::bigint))"},
    [S_RECIPIENTS_DUE] = {"pt_recipients_due",
                          "SELECT DISTINCT recipient FROM deliveries "
                          "WHERE state IN ('pending', 'delivered') AND attempts >= 0 "
                          "AND next_attempt_at <= pt_ms_to_ts($1::bigint) "
                          "AND (expires_at IS NULL OR expires_at > pt_ms_to_ts($1::bigint)) "
                          "ORDER BY recipient"},
    [S_TRAIL] = {"pt_trail",
                 "SELECT seq, at_ms, kind, case_token, actor, counterparty, message_type, "
                 "message_id, detail, prev_hash, hash FROM case_events "
                 "WHERE case_token = $1 ORDER BY seq"},
    [S_ORG_UPSERT] = {"pt_org_upsert",
                      "INSERT INTO organisations (org_id, enabled, service_types) "
                      "VALUES ($1, $2::boolean, $3) ON CONFLICT (org_id) DO UPDATE SET "
                      "enabled = EXCLUDED.enabled, service_types = EXCLUDED.service_types"},
    [S_ORG_KEY_CURRENT] = {"pt_org_key_current",
                           "SELECT sign_public, seal_public, curve_public FROM org_keys "
                           "WHERE org_id = $1 AND valid_until IS NULL FOR UPDATE"},
    [S_ORG_KEY_RETIRE] = {"pt_org_key_retire",
                          "UPDATE org_keys SET valid_until = "
                          "GREATEST(valid_from, pt_ms_to_ts($2::bigint)) "
                          "WHERE org_id = $1 AND valid_until IS NULL"},
    [S_ORG_KEY_INSERT] = {"pt_org_key_insert",
                          "INSERT INTO org_keys (org_id, sign_public, seal_public, curve_public, "
                          "valid_from) VALUES ($1, $2::bytea, $3::bytea, $4::bytea, "
                          "pt_ms_to_ts($5::bigint))"},
    [S_ORG_LOAD] = {"pt_org_load",
                    "SELECT o.org_id, o.enabled, k.sign_public, k.seal_public, k.curve_public, "
                    "o.service_types "
                    "FROM organisations o JOIN org_keys k "
                    "ON k.org_id = o.org_id AND k.valid_until IS NULL ORDER BY o.org_id"},
    [S_AGR_UPSERT] = {"pt_agr_upsert",
                      "INSERT INTO agreements (agreement_id, org_a, org_b, purposes, "
                      "message_types, valid_from, valid_until, field_sets, retention_days) "
                      "VALUES ($1, $2, $3, "
                      "$4::text[], $5::text[], pt_ms_to_ts($6::bigint), pt_ms_to_ts($7::bigint), "
                      "$8::text[], $9::integer) "
                      "ON CONFLICT (agreement_id) DO UPDATE SET org_a = EXCLUDED.org_a, "
                      "org_b = EXCLUDED.org_b, purposes = EXCLUDED.purposes, "
                      "message_types = EXCLUDED.message_types, valid_from = EXCLUDED.valid_from, "
                      "valid_until = EXCLUDED.valid_until, field_sets = EXCLUDED.field_sets, "
                      "retention_days = EXCLUDED.retention_days, updated_at = now()"},
    [S_AGR_LOAD] = {"pt_agr_load",
                    "SELECT agreement_id, org_a, org_b, purposes, message_types, "
                    "pt_ts_to_ms(valid_from), pt_ts_to_ms(valid_until), field_sets "
                    "FROM agreements ORDER BY agreement_id"},
    /* Lifecycles (002_lifecycle.sql): the functions raise 40001 when the row moved. */
    [S_LC_APPLY] = {"pt_lc_apply",
                    "SELECT pt_lifecycle_apply($1::uuid, $2, $3, $4, $5, $6, $7, $8::bigint, "
                    "$9::bigint, $10::bigint)"},
    [S_OWNER_SET] = {"pt_owner_set", "SELECT pt_case_owner_set($1, $2, $3, $4::bigint)"},
    [S_OWNER_FIRST] = {"pt_owner_first", "SELECT pt_case_owner_first($1, $2, $3::bigint)"},
    [S_LC_LOAD] = {"pt_lc_load",
                   "SELECT correlation_id, kind, state, initiator, counterparty, case_token, "
                   "respond_by_ms, follow_up_due_ms FROM lifecycles "
                   "WHERE correlation_id = ANY($1::uuid[])"},
    [S_OWNER_LOAD] = {"pt_owner_load",
                      "SELECT case_token, owner, former_owners FROM case_owners "
                      "WHERE case_token = ANY($1::text[])"},
    /* Only the initiator's message moves a waiting lifecycle (the opening message
       or its amendment). */
    [S_LC_DELIVERED] = {"pt_lc_delivered",
                        "UPDATE lifecycles l SET state = 'delivered', "
                        "updated_at = pt_ms_to_ts($2::bigint) FROM messages m "
                        "WHERE m.message_id = ANY($1::uuid[]) AND l.correlation_id = m.correlation_id "
                        "AND l.state = 'submitted' AND l.initiator = m.sender "
                        "RETURNING l.correlation_id, l.initiator"},
    [S_LC_RECEIVED] = {"pt_lc_received",
                       "UPDATE lifecycles l SET state = 'received', "
                       "updated_at = pt_ms_to_ts($2::bigint) FROM messages m "
                       "WHERE m.message_id = ANY($1::uuid[]) AND l.correlation_id = m.correlation_id "
                       "AND l.state = 'delivered' AND l.initiator = m.sender "
                       "RETURNING l.correlation_id, l.initiator"},
    /* Group commit, multi-row (binary array parameters, one element per new
       message): the messages, then one pending delivery per distinct recipient
       (recipients joined by ','; an id cannot hold one), in batch order and
       recipient order, so delivery ids follow submission order. */
    [S_MSGS_INSERT_MANY] = {"pt_msgs_insert_many",
                            "WITH m AS (INSERT INTO messages (message_id, correlation_id, "
                            "causation_id, message_type, sender, recipients, case_token, purpose, "
                            "agreement_id, created_at, expires_at, stored_at, header_sha256, "
                            "envelope) SELECT u.id, u.corr, u.cause, u.mtype, u.sender, "
                            "string_to_array(u.rcpt, ','), u.tok, u.purpose, u.agr, "
                            "pt_ms_to_ts(u.created), pt_ms_to_ts(u.expires), pt_ms_to_ts(u.stored), "
                            "u.sha, u.env FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], "
                            "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], "
                            "$10::int8[], $11::int8[], $12::int8[], $13::bytea[], $14::bytea[]) "
                            "WITH ORDINALITY AS u(id, corr, cause, mtype, sender, rcpt, tok, purpose, "
                            "agr, created, expires, stored, sha, env, o) ORDER BY u.o "
                            "RETURNING message_id, seq, correlation_id, expires_at, stored_at, "
                            "recipients) "
                            "INSERT INTO deliveries (message_id, recipient, correlation_id, seq, state, "
                            "attempts, next_attempt_at, expires_at) "
                            "SELECT m.message_id, r.recipient, m.correlation_id, m.seq, 'pending', 0, "
                            "m.stored_at, m.expires_at FROM m CROSS JOIN LATERAL "
                            "(SELECT x AS recipient, min(o) AS o FROM unnest(m.recipients) "
                            "WITH ORDINALITY AS v(x, o) GROUP BY x) AS r ORDER BY m.seq, r.o"},
    [S_EVENTS_INSERT_MANY] = {"pt_events_insert_many",
                              "INSERT INTO case_events (case_token, seq, kind, at_ms, actor, "
                              "counterparty, message_type, message_id, detail, prev_hash, hash) "
                              "SELECT u.tok, u.seq, u.kind, u.at, u.actor, u.cp, u.mtype, u.id, "
                              "u.detail, u.prev, u.hash FROM unnest($1::text[], $2::int8[], "
                              "$3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], "
                              "$8::uuid[], $9::bytea[], $10::bytea[], $11::bytea[]) WITH ORDINALITY "
                              "AS u(tok, seq, kind, at, actor, cp, mtype, id, detail, prev, hash, o) "
                              "ORDER BY u.o"},
    /* The lifecycle changes of a batch whose correlation id changes once in it
       ($1 = how many rows must be created / moved; fewer: another broker moved
       one, see pt_lifecycle_conflict in 005_delivery_queue.sql). */
    [S_LC_CREATE_MANY] = {"pt_lc_create_many",
                          "WITH c AS (INSERT INTO lifecycles (correlation_id, kind, state, "
                          "initiator, counterparty, case_token, respond_by_ms, follow_up_due_ms, "
                          "created_at, updated_at) SELECT u.corr, u.kind, u.new, u.init, u.cp, "
                          "u.tok, u.rb, u.fu, pt_ms_to_ts(u.at), pt_ms_to_ts(u.at) "
                          "FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], "
                          "$7::text[], $8::int8[], $9::int8[], $10::int8[]) "
                          "AS u(corr, kind, new, init, cp, tok, rb, fu, at) "
                          "ON CONFLICT (correlation_id) DO NOTHING RETURNING 1) "
                          "SELECT CASE WHEN count(*) = $1::bigint THEN 0 "
                          "ELSE pt_lifecycle_conflict() END FROM c"},
    [S_LC_MOVE_MANY] = {"pt_lc_move_many",
                        "WITH m AS (UPDATE lifecycles l SET state = u.new, counterparty = u.cp, "
                        "respond_by_ms = u.rb, follow_up_due_ms = u.fu, overdue_at_ms = 0, "
                        "overdue_deadline = '', updated_at = pt_ms_to_ts(u.at) "
                        "FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], "
                        "$7::int8[], $8::int8[], $9::int8[]) "
                        "AS u(corr, kind, old, new, cp, rb, fu, at) "
                        "WHERE l.correlation_id = u.corr AND l.state = u.old AND l.kind = u.kind "
                        "RETURNING 1) "
                        "SELECT CASE WHEN count(*) = $1::bigint THEN 0 "
                        "ELSE pt_lifecycle_conflict() END FROM m"},
    /* First owners of a batch (012_case_owner_first.sql, one statement instead of
       one pt_case_owner_first call per message): rows in batch order, so of two
       messages opening the same case token the earlier one owns it; a row already
       there (another broker, a transfer) wins. */
    [S_OWNER_FIRST_MANY] = {"pt_owner_first_many",
                            "INSERT INTO case_owners (case_token, owner, former_owners, updated_at) "
                            "SELECT u.tok, u.owner, '', pt_ms_to_ts(u.at) "
                            "FROM unnest($1::text[], $2::text[], $3::int8[]) WITH ORDINALITY "
                            "AS u(tok, owner, at, o) ORDER BY u.o "
                            "ON CONFLICT (case_token) DO NOTHING"},
    /* A batch of sends / acks: one statement each (unnest of parallel arrays). */
    [S_MARK_SENT_BATCH] = {"pt_mark_sent_batch",
                           "UPDATE deliveries d SET attempts = d.attempts + 1, "
                           "next_attempt_at = pt_ms_to_ts(s.retry_at), "
                           "state = CASE WHEN d.state = 'pending' THEN 'delivered' ELSE d.state END, "
                           "first_delivered_at = COALESCE(d.first_delivered_at, "
                           "pt_ms_to_ts($3::bigint)) "
                           "FROM messages m, unnest($1::bigint[], $2::bigint[]) AS s(id, retry_at) "
                           "WHERE d.delivery_id = s.id AND m.message_id = d.message_id "
                           "RETURNING d.delivery_id, d.attempts::bigint, d.recipient, m.message_id, "
                           "m.case_token, m.sender, m.message_type, m.header_sha256, "
                           "m.correlation_id"},
    [S_ACK_BATCH] = {"pt_ack_batch",
                     "UPDATE deliveries d SET state = 'acked', acked_at = pt_ms_to_ts($3::bigint) "
                     "FROM messages m, unnest($1::text[], $2::uuid[]) AS a(recipient, id) "
                     "WHERE d.recipient = a.recipient AND d.message_id = a.id "
                     "AND d.state <> 'acked' AND m.message_id = d.message_id "
                     "RETURNING d.recipient, m.message_id, m.case_token, m.sender, "
                     "m.message_type, m.header_sha256, m.correlation_id"},
    [S_ACK_EXISTS_BATCH] = {"pt_ack_exists_batch",
                            "SELECT d.recipient, d.message_id FROM deliveries d "
                            "JOIN unnest($1::text[], $2::uuid[]) AS a(recipient, id) "
                            "ON d.recipient = a.recipient AND d.message_id = a.id"},
    [S_LC_EXPIRE] = {"pt_lc_expire",
                     "WITH moved AS (UPDATE lifecycles SET state = 'expired', updated_at = pt_ms_to_ts($1::bigint), "
                     "overdue_at_ms = $1::bigint, overdue_deadline = 'respond_by' "
                     "WHERE correlation_id IN (SELECT correlation_id FROM lifecycles "
                     "WHERE respond_by_ms > 0 AND respond_by_ms <= $1::bigint "
                     "AND state IN ('submitted', 'delivered', 'received') "
                     "ORDER BY respond_by_ms LIMIT $2::bigint FOR UPDATE SKIP LOCKED) "
                     "RETURNING correlation_id, case_token, kind, initiator, counterparty, "
                     "respond_by_ms AS due_ms) "
                     S_NOTICES_INSERT("(SELECT x.message_type FROM messages x "
                                      "WHERE x.correlation_id = m.correlation_id "
                                      "ORDER BY x.seq LIMIT 1)")},
    /* A plan's follow-up due date passed while the plan is being implemented:
       raised once (overdue_at_ms), cleared by the next move of the lifecycle. */
    [S_LC_FOLLOW_UP_OVERDUE] = {"pt_lc_follow_up_overdue",
                                "WITH moved AS (UPDATE lifecycles SET overdue_at_ms = $1::bigint, "
                                "overdue_deadline = 'follow_up' "
                                "WHERE correlation_id IN (SELECT correlation_id FROM lifecycles "
                                "WHERE follow_up_due_ms > 0 AND follow_up_due_ms <= $1::bigint "
                                "AND overdue_at_ms = 0 AND kind = 'return' "
                                "AND state IN ('planned', 'implementation') "
                                "ORDER BY follow_up_due_ms LIMIT $2::bigint "
                                "FOR UPDATE SKIP LOCKED) "
                                "RETURNING correlation_id, case_token, kind, initiator, "
                                "counterparty, follow_up_due_ms AS due_ms) "
                                S_NOTICES_INSERT("'reintegration.followup'")},
    /* $1 = '' for every item (operator), else only the items org $1 is a party to. */
    [S_OVERDUE_LIST] = {"pt_overdue_list",
                        "SELECT case_token, correlation_id, kind, state, overdue_deadline, "
                        "CASE WHEN overdue_deadline = 'follow_up' THEN follow_up_due_ms "
                        "ELSE respond_by_ms END, overdue_at_ms, initiator, counterparty "
                        "FROM lifecycles WHERE overdue_at_ms > 0 AND ($1 = '' OR initiator = $1 "
                        "OR $1 = ANY(string_to_array(counterparty, ','))) "
                        "ORDER BY overdue_at_ms, correlation_id LIMIT $2::bigint"},
    /* --- notices (007_notices.sql) --- */
    [S_NOTICES_PENDING] = {"pt_notices_pending",
                           "SELECT notice_id, org_id, kind, case_token, correlation_id, "
                           "message_type, pt_ts_to_ms(due_at), pt_ts_to_ms(created_at) "
                           "FROM notices WHERE acked_at IS NULL AND ($1 = '' OR org_id = $1) "
                           "AND (NOT $2::boolean OR delivered_at IS NULL) "
                           "ORDER BY notice_id LIMIT $3::bigint"},
    [S_NOTICE_SENT] = {"pt_notice_sent",
                       "UPDATE notices SET delivered_at = pt_ms_to_ts($2::bigint) "
                       "WHERE notice_id = $1::bigint"},
    [S_NOTICE_ACK] = {"pt_notice_ack",
                      "UPDATE notices SET acked_at = COALESCE(acked_at, pt_ms_to_ts($3::bigint)) "
                      "WHERE notice_id = $1::bigint AND org_id = $2 RETURNING notice_id"},
    /* --- audit log (006_audit_log.sql) --- */
    /* Leaf of each message's "stored" event; run after COMMIT, when the deferred
       trigger has assigned it (NULL if it has none). A subquery, not a join: the
       events are found by message id first, and each leaf by its event id, also
       in a generic plan made on a nearly empty database (a join then walked the
       whole of audit_log's event index; test_store "hot transactions plan index
       probes"). */
    [S_LEAVES_FIND] = {"pt_leaves_find",
                       "SELECT e.message_id, (SELECT a.leaf_index FROM audit_log a "
                       "WHERE a.event_id = e.event_id) FROM case_events e "
                       "WHERE e.message_id = ANY($1::uuid[]) AND e.kind = 'stored'"},
    [S_AUDIT_HEAD] = {"pt_audit_head", "SELECT size, frontier FROM audit_head WHERE id = 1"},
    [S_CHECKPOINT_PUT] = {"pt_checkpoint_put",
                          "INSERT INTO checkpoints (tree_size, root, at_ms, signer, signature, "
                          "signed_by, seq, prev_hash) VALUES ($1::bigint, $2::bytea, $3::bigint, "
                          "$4::bytea, $5::bytea, $6, nullif($7::bigint, 0), "
                          "CASE WHEN $7::bigint = 0 THEN NULL ELSE $8::bytea END) "
                          "ON CONFLICT DO NOTHING"},
    [S_CHECKPOINT_GET] = {"pt_checkpoint_get",
                          "SELECT tree_size, root, at_ms, signer, signature, coalesce(seq, 0), "
                          "coalesce(prev_hash, '\\x'::bytea) FROM checkpoints "
                          "WHERE $1::bigint = 0 OR tree_size = $1::bigint "
                          "OR ($2::bigint > 0 AND tree_size >= $2::bigint) "
                          "ORDER BY CASE WHEN $2::bigint > 0 THEN tree_size END ASC, "
                          "tree_size DESC LIMIT 1"},
    [S_AUDIT_LEAVES] = {"pt_audit_leaves",
                        "SELECT leaf_hash FROM audit_log WHERE leaf_index < $1::bigint "
                        "ORDER BY leaf_index"},
    [S_AUDITOR_PUT] = {"pt_auditor_put",
                       "INSERT INTO auditors (auditor_id, scope, sign_public, curve_public) "
                       "VALUES ($1, string_to_array($2, ','), $3::bytea, $4::bytea) "
                       "ON CONFLICT (auditor_id) DO UPDATE SET scope = EXCLUDED.scope, "
                       "sign_public = EXCLUDED.sign_public, curve_public = EXCLUDED.curve_public, "
                       "enabled = true"},
    [S_AUDITOR_LOAD] = {"pt_auditor_load",
                        "SELECT auditor_id, array_to_string(scope, ','), sign_public, curve_public "
                        "FROM auditors WHERE enabled ORDER BY auditor_id"},
    [S_CASE_PARTIES] = {"pt_case_parties",
                        "SELECT sender FROM messages WHERE case_token = $1 UNION "
                        "SELECT unnest(recipients) FROM messages WHERE case_token = $1 UNION "
                        "SELECT unnest(string_to_array(actor || ',' || counterparty, ',')) "
                        "FROM case_events WHERE case_token = $1 AND kind = 'rejected'"},
    [S_Q_ACTIVITY] = {"pt_q_activity",
                      "SELECT event_id, at_ms, case_token, seq, kind, actor, counterparty, "
                      "message_type FROM case_events WHERE at_ms >= $2::bigint "
                      "AND at_ms < $3::bigint AND (actor = $1 "
                      "OR $1 = ANY(string_to_array(counterparty, ','))) "
                      "AND (at_ms, event_id) > ($5::bigint, $6::bigint) "
                      "ORDER BY at_ms, event_id LIMIT $4::bigint"},
    [S_Q_ITEMS] = {"pt_q_items",
                   "SELECT case_token, kind, state, initiator, counterparty, "
                   "pt_ts_to_ms(updated_at), pt_ts_to_ms(created_at), correlation_id::text "
                   "FROM lifecycles "
                   "WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR state = $2) "
                   "AND updated_at <= pt_ms_to_ts($3::bigint) "
                   /* Scope ("" = everything): a party is listed, or its country is. */
                   "AND ($5 = '' OR EXISTS (SELECT 1 FROM unnest(string_to_array(initiator "
                   "|| ',' || counterparty, ',')) AS p(o) WHERE p.o = ANY(string_to_array($5, "
                   "',')) OR (substr(p.o, 3, 1) = '-' AND left(p.o, 2) = "
                   "ANY(string_to_array($5, ','))))) "
                   "AND (pt_ts_to_ms(updated_at), correlation_id) > ($6::bigint, $7::uuid) "
                   "ORDER BY pt_ts_to_ms(updated_at), correlation_id LIMIT $4::bigint"},
    /* Per lifecycle opened in the range: sender country, recipient country, kind,
       and the time to its first "state:accepted" event (NULL if none). */
    [S_Q_CORRIDORS] = {"pt_q_corridors",
                       "SELECT left(l.initiator, 2), left(r.cp, 2), l.kind, count(*), "
                       "count(a.at_ms), "
                       "COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY a.at_ms - "
                       "pt_ts_to_ms(l.created_at)), -1)::bigint, "
                       "count(*) FILTER (WHERE l.state = 'rejected') "
                       "FROM lifecycles l CROSS JOIN LATERAL unnest(string_to_array(l.counterparty, ',')) "
                       "AS r(cp) LEFT JOIN LATERAL (SELECT min(e.at_ms) AS at_ms FROM case_events e "
                       "JOIN messages m ON m.message_id = e.message_id "
                       "WHERE e.case_token = l.case_token AND e.kind = 'state:accepted' "
                       "AND m.correlation_id = l.correlation_id) AS a ON true "
                       "WHERE l.created_at >= pt_ms_to_ts($1::bigint) "
                       "AND l.created_at < pt_ms_to_ts($2::bigint) "
                       "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"},
    /* Rejections in the range with their signed headers (reason_code is read
       from the header: it is not a column). */
    [S_Q_REJECTS] = {"pt_q_rejects",
                     "SELECT m.sender, m.recipients[1], l.kind, m.envelope FROM messages m "
                     "JOIN lifecycles l ON l.correlation_id = m.correlation_id "
                     "WHERE m.message_type LIKE '%.reject' "
                     "AND l.created_at >= pt_ms_to_ts($1::bigint) "
                     "AND l.created_at < pt_ms_to_ts($2::bigint) ORDER BY m.seq"},
    /* Messages whose agreement's retention passed and whose payload is still held. */
    [S_RETENTION_DUE] = {"pt_retention_due",
                         "SELECT m.message_id, m.envelope FROM messages m "
                         "JOIN agreements a ON a.agreement_id = m.agreement_id "
                         "WHERE a.retention_days > 0 AND m.payload_deleted_at IS NULL "
                         "AND m.stored_at + a.retention_days * interval '1 day' "
                         "<= pt_ms_to_ts($1::bigint) ORDER BY m.seq LIMIT $2::bigint"},
    [S_RETENTION_SET] = {"pt_retention_set",
                         "UPDATE messages SET envelope = $2::bytea, "
                         "payload_deleted_at = pt_ms_to_ts($3::bigint) WHERE message_id = $1::uuid "
                         "AND payload_deleted_at IS NULL"},
    [S_LEAF_EVENT] = {"pt_leaf_event",
                      "SELECT e.event_id, e.hash FROM audit_log a JOIN case_events e "
                      "ON e.event_id = a.event_id WHERE a.leaf_index = $1::bigint"},
};

/* Key of the advisory lock that serialises migrations across brokers ("puente"). */
#define S_MIGRATE_LOCK_KEY "123584536261221"
#define S_MAX_PARAMS 16
#define S_MIGRATION_MAX_BYTES (4 * 1024 * 1024)

struct _pt_store_t {
    PGconn *conn;
    uint64_t prepared;      /* bit per s_stmt_id_t prepared on this connection */
    int needs_reset;        /* a transient failure happened: reset before next use */
    char last_error[256];
    char instance[PT_STORE_INSTANCE_MAX];   /* claims and checkpoints (issue 9) */
    int64_t lease_ms;
    int64_t delivery_window; /* 0: none (pt_store_set_delivery_window) */
    /* The restricted role (s_restrict, pt_store_role_check). */
    char role[PT_STORE_ROLE_MAX];           /* "" = PT_STORE_DEFAULT_ROLE, not required */
    int role_required;                      /* configured: never run without it */
    int role_taken;                         /* the last s_restrict switched to it */
    int serial;                             /* pt_store_serial: no parallel workers */
    int session_superuser;                  /* the login role is a superuser */
    char session_user[PT_STORE_ROLE_MAX];
    char role_why[640];                     /* why the role was not taken */
};

/* --- small helpers ---------------------------------------------------------- */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_set_error(pt_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->last_error, sizeof self->last_error, fmt, ap);
    va_end(ap);
}

static void s_copy_err(char *err, size_t err_len, const char *msg)
{
    if (err && err_len > 0)
        snprintf(err, err_len, "%s", msg);
}

/* Parameters of one statement: text values point into num[] or the caller's
   strings; binary values point at the caller's bytes. */
typedef struct {
    int n;
    const char *values[S_MAX_PARAMS];
    int lengths[S_MAX_PARAMS];
    int formats[S_MAX_PARAMS];
    char num[S_MAX_PARAMS][24];
} s_params_t;

static void s_p_text(s_params_t *p, const char *s)
{
    p->values[p->n] = s;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

static void s_p_bin(s_params_t *p, const void *data, size_t len)
{
    /* libpq wants a non-NULL pointer even for a zero-length value (NULL = SQL NULL). */
    p->values[p->n] = data ? (const char *)data : "";
    p->lengths[p->n] = (int)len;
    p->formats[p->n] = 1;
    p->n++;
}

static void s_p_null(s_params_t *p)
{
    p->values[p->n] = NULL;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

static void s_p_int(s_params_t *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    s_p_text(p, p->num[p->n]);
}

/* --- binary array parameters (array_send format) ------------------------------ */

/* A one-dimensional array parameter built in PostgreSQL's binary format, so
   multi-row statements take bytea, uuid and text values without escaping:
   header (ndim, has-null flag, element type), dimension (count, lower bound 1),
   then each element as a length (-1 = NULL) and its bytes, big-endian. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint32_t n;
    int has_null;
    int failed;
} s_arr_t;

#define S_OID_BYTEA 17
#define S_OID_INT8 20
#define S_OID_TEXT 25
#define S_OID_UUID 2950
#define S_ARR_HEADER 20

static void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void s_arr_init(s_arr_t *a, uint32_t oid)
{
    memset(a, 0, sizeof *a);
    a->cap = 256;
    a->buf = malloc(a->cap);
    if (!a->buf) {
        a->failed = 1;
        return;
    }
    memset(a->buf, 0, S_ARR_HEADER);
    s_put32(a->buf, 1);          /* ndim */
    s_put32(a->buf + 8, oid);
    s_put32(a->buf + 16, 1);     /* lower bound */
    a->len = S_ARR_HEADER;
}

static void s_arr_add(s_arr_t *a, const void *data, size_t len)
{
    if (a->failed)
        return;
    if (len > INT32_MAX || a->len + 4 + len > INT32_MAX) {
        a->failed = 1;
        return;
    }
    if (a->len + 4 + len > a->cap) {
        size_t cap = a->cap;
        while (cap < a->len + 4 + len)
            cap *= 2;
        uint8_t *grown = realloc(a->buf, cap);
        if (!grown) {
            a->failed = 1;
            return;
        }
        a->buf = grown;
        a->cap = cap;
    }
    s_put32(a->buf + a->len, data ? (uint32_t)len : UINT32_MAX);
    a->len += 4;
    if (data) {
        memcpy(a->buf + a->len, data, len);
        a->len += len;
    } else {
        a->has_null = 1;
    }
    a->n++;
}

static void s_arr_text(s_arr_t *a, const char *s)
{
    s_arr_add(a, s, s ? strlen(s) : 0);
}

static void s_arr_int(s_arr_t *a, int64_t v)
{
    uint8_t b[8];
    for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)((uint64_t)v >> (56 - 8 * k));
    s_arr_add(a, b, 8);
}

/* Finishes the header and appends the array as a binary parameter (a stays
   owned by the caller until the statement is sent). */
static void s_p_arr(s_params_t *p, s_arr_t *a)
{
    if (!a->failed) {
        s_put32(a->buf + 4, a->has_null ? 1 : 0);
        s_put32(a->buf + 12, a->n);
    }
    s_p_bin(p, a->buf, a->len);
}

static void s_arr_free(s_arr_t *a)
{
    free(a->buf);
    a->buf = NULL;
}

/* --- binary result accessors: never trust a length from the wire ----------- */

static uint64_t s_be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static uint32_t s_be32(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static int s_get_int64(const PGresult *res, int row, int col, int64_t *out)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return -1;
    *out = (int64_t)s_be64((const unsigned char *)PQgetvalue(res, row, col));
    return 0;
}

static int s_get_fixed(const PGresult *res, int row, int col, uint8_t *out, int len)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != len)
        return -1;
    memcpy(out, PQgetvalue(res, row, col), (size_t)len);
    return 0;
}

/* Text column: libpq NUL-terminates binary values too; text cannot hold a NUL. */
static const char *s_get_text(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    const char *v = PQgetvalue(res, row, col);
    if (strlen(v) != (size_t)PQgetlength(res, row, col))
        return NULL;
    return v;
}

static int s_copy_text(const PGresult *res, int row, int col, char *out, size_t out_len)
{
    const char *v = s_get_text(res, row, col);
    if (!v || strlen(v) >= out_len)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* Decodes a binary one-dimensional text[] (array_send format) into a vector of
   strings that point into one allocation (*block_p, caller frees). */
static int s_parse_text_array(const PGresult *res, int row, int col, char ***items_p, size_t *n_p)
{
    const unsigned char *b = (const unsigned char *)PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
    size_t pos = 12, n = 0, total = 0;
    char **items = NULL;
    char *text;

    *items_p = NULL;
    *n_p = 0;
    if (PQgetisnull(res, row, col) || len < 12)
        return -1;
    uint32_t ndim = s_be32(b);
    if (ndim > 1)
        return -1;
    if (ndim == 1) {
        if (len < 20)
            return -1;
        n = s_be32(b + 12);
        pos = 20;
        if (n > len)   /* each element needs at least 4 bytes */
            return -1;
    }
    /* First pass: validate and size. */
    size_t p = pos;
    for (size_t i = 0; i < n; i++) {
        if (len - p < 4)
            return -1;
        int32_t elen = (int32_t)s_be32(b + p);
        p += 4;
        if (elen < 0 || (size_t)elen > len - p || memchr(b + p, 0, (size_t)elen))
            return -1;
        p += (size_t)elen;
        total += (size_t)elen + 1;
    }
    if (p != len)
        return -1;
    /* One block: the pointer vector followed by the strings. */
    items = malloc((n + 1) * sizeof(char *) + total);
    if (!items)
        return -1;
    text = (char *)(items + n + 1);
    p = pos;
    for (size_t i = 0; i < n; i++) {
        size_t elen = s_be32(b + p);
        p += 4;
        items[i] = text;
        memcpy(text, b + p, elen);
        text[elen] = '\0';
        text += elen + 1;
        p += elen;
    }
    items[n] = NULL;
    *items_p = items;
    *n_p = n;
    return 0;
}

/* Builds a PostgreSQL text[] literal, quoting every element. NULL on failure
   (NULL element or out of memory). Caller frees. */
static char *s_text_array(const char *const *items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) {
        if (!items[i])
            return NULL;
        cap += 2 * strlen(items[i]) + 3;
    }
    char *out = malloc(cap);
    if (!out)
        return NULL;
    char *w = out;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        *w++ = '"';
        for (const char *c = items[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *w++ = '\\';
            *w++ = *c;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

static void s_uuid_text(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *w = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *w++ = '-';
        *w++ = hex[id[i] >> 4];
        *w++ = hex[id[i] & 15];
    }
    *w = '\0';
}

/* --- connection state and error classification ------------------------------ */

/* Whether an error is worth retrying: the connection, or a conflict with a
   concurrent transaction. A unique violation can only come from a race in this
   module (every insert is checked first under a lock or ON CONFLICT), so it is
   transient too: the retry sees the committed row. */
static pt_store_result_t s_classify(pt_store_t *self, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    s_set_error(self, "%s%s%s", state ? state : "", state ? ": " : "",
                primary ? primary : PQerrorMessage(self->conn));
    if (PQstatus(self->conn) != CONNECTION_OK || !state) {
        self->needs_reset = 1;
        return PT_STORE_UNAVAILABLE;
    }
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        self->needs_reset = 1;
        return PT_STORE_UNAVAILABLE;
    }
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "23505") == 0 ||
        strncmp(state, "53", 2) == 0)
        return PT_STORE_UNAVAILABLE;
    return PT_STORE_ERROR;
}

/* Runs a parameterless utility command (BEGIN, COMMIT, ROLLBACK, SET ROLE ...). */
static pt_store_result_t s_command(pt_store_t *self, const char *sql)
{
    PGresult *res = PQexec(self->conn, sql);
    pt_store_result_t rc = PT_STORE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = s_classify(self, res);
    PQclear(res);
    return rc;
}

/* Ends an open transaction after a failure. If even that fails, the connection
   is reset before its next use. */
static void s_rollback(pt_store_t *self)
{
    if (PQpipelineStatus(self->conn) != PQ_PIPELINE_OFF) {
        self->needs_reset = 1;
        return;
    }
    if (PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        return;
    if (s_command(self, "ROLLBACK") != PT_STORE_OK)
        self->needs_reset = 1;
}

/* The store's session settings (s_restrict; pt_store_session_sql).
   plan_cache_mode: see s_restrict.
   enable_bitmapscan off: the queue's partial indexes (deliveries_pending,
   deliveries_retry, ...) keep an entry for every row that left the state until
   VACUUM removes it, and autovacuum reaches a table of millions of rows only
   after a fifth of them changed. A plain index scan marks the entries of dead
   rows as it passes them (LP_DEAD), so the next scan skips them; a bitmap scan
   never does. With 5 million stored messages the planner chose a BitmapAnd for
   the due pass and read 4 000 heap pages for 7 waiting deliveries, 22 ms on
   every pass; with plain index scans the first pass read 11 550 buffers and the
   next ones 160 (2 ms). The store's statements are point and short-range
   lookups, which plain index scans serve as well.
   jit off: PostgreSQL compiles a plan whose estimated cost passes jit_above_cost
   (100 000) on EVERY execution, a cached generic plan included. With a backlog of
   300 000 messages for one recipient (an outage), the due statement's generic plan
   for any recipient is estimated at millions (its selectivity is the average
   recipient's), and each delivery pass compiled for 50 ms to run for 2 (measured:
   47 ms per pass, receipt p50 121 ms at 200 msg/s). No statement of the store is
   long enough for compiling to pay. */
#define S_SESSION_SQL                                                                      \
    "SET plan_cache_mode = force_custom_plan; SET enable_bitmapscan = off; SET jit = off"

const char *pt_store_session_sql(void)
{
    return S_SESSION_SQL;
}

const char *pt_store_hot_txn_sql(void)
{
    return S_HOT_TXN_SQL;
}

/* Switches to the restricted role (self->role, default PT_STORE_DEFAULT_ROLE) when
   it exists and the login role is a member; records whether it did, why not, and
   whether the login role is a superuser (pt_store_role_check reports them).
   Not taking it is no error here: a configured role is enforced by s_ready and
   pt_store_role_check. Also plans every prepared statement for its parameters
   (custom plans): a generic plan is cached after five runs and kept until the
   next ANALYZE, and one made while the tables were nearly empty (a fresh
   database, the first minute of a broker) turned the due-delivery query's index
   probes into a scan of the whole backlog per row (10 s per pass at 20 000
   pending, measured, with sequential scans allowed). The hot transactions and
   the due statement are the exception: they keep one generic plan per statement
   with sequential scans and hash and merge joins off (S_HOT_TXN_SQL). */
static void s_restrict(pt_store_t *self)
{
    (void)s_command(self, S_SESSION_SQL);
    if (self->serial)
        (void)s_command(self, "SET max_parallel_workers_per_gather = 0");
    const char *role = self->role[0] ? self->role : PT_STORE_DEFAULT_ROLE;
    self->role_taken = 0;
    const char *params[1] = {role};
    PGresult *res = PQexecParams(
        self->conn,
        "SELECT session_user, "
        "COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false), "
        "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), "
        "COALESCE((SELECT pg_has_role(session_user, oid, 'MEMBER') FROM pg_roles "
        "WHERE rolname = $1), false)",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        snprintf(self->role_why, sizeof self->role_why, "cannot read the database's roles: %s",
                 PQerrorMessage(self->conn));
        PQclear(res);
        return;
    }
    snprintf(self->session_user, sizeof self->session_user, "%s", PQgetvalue(res, 0, 0));
    self->session_superuser = PQgetvalue(res, 0, 1)[0] == 't';
    int exists = PQgetvalue(res, 0, 2)[0] == 't';
    int member = PQgetvalue(res, 0, 3)[0] == 't';
    PQclear(res);
    if (!exists) {
        snprintf(self->role_why, sizeof self->role_why,
                 "role %s does not exist (migration 001 creates puente_broker)", role);
        return;
    }
    if (!member) {
        snprintf(self->role_why, sizeof self->role_why,
                 "login role %s is not a member of %s (GRANT %s TO %s)", self->session_user, role,
                 role, self->session_user);
        return;
    }
    /* SET ROLE, parameterised: the role name comes from the configuration. */
    res = PQexecParams(self->conn, "SELECT set_config('role', $1, false)", 1, NULL, params, NULL,
                       NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(self->role_why, sizeof self->role_why, "SET ROLE %s failed: %s", role,
                 PQerrorMessage(self->conn));
        PQclear(res);
        return;
    }
    PQclear(res);
    self->role_taken = 1;
    self->role_why[0] = '\0';
}

/* Makes the connection usable: resets it after a transient failure, closes a
   transaction left open, and re-applies the session setup. */
static pt_store_result_t s_ready(pt_store_t *self)
{
    if (!self->needs_reset && PQstatus(self->conn) == CONNECTION_OK &&
        PQpipelineStatus(self->conn) == PQ_PIPELINE_OFF &&
        PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        return PT_STORE_OK;
    if (!self->needs_reset && PQstatus(self->conn) == CONNECTION_OK &&
        PQpipelineStatus(self->conn) == PQ_PIPELINE_OFF) {
        s_rollback(self);
        if (!self->needs_reset)
            return PT_STORE_OK;
    }
    PQreset(self->conn);
    self->prepared = 0;
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_set_error(self, "connection: %s", PQerrorMessage(self->conn));
        self->needs_reset = 1;
        return PT_STORE_UNAVAILABLE;
    }
    self->needs_reset = 0;
    s_restrict(self);
    if (self->role_required && !self->role_taken) {
        /* Never run with other rights than the configured role's. */
        s_set_error(self, "cannot take the database role %s: %s", self->role, self->role_why);
        self->needs_reset = 1;
        return PT_STORE_UNAVAILABLE;
    }
    return PT_STORE_OK;
}

int pt_store_role_take(pt_store_t *self, const char *role, char *err, size_t err_len)
{
    int required = role && *role;
    if (required && strlen(role) >= sizeof self->role) {
        s_copy_err(err, err_len, "role name too long");
        return -1;
    }
    snprintf(self->role, sizeof self->role, "%s", required ? role : "");
    self->role_required = required;
    if (s_ready(self) != PT_STORE_OK) {
        s_copy_err(err, err_len, self->last_error);
        return -1;
    }
    s_restrict(self);
    if (required && !self->role_taken) {
        char msg[800];
        snprintf(msg, sizeof msg, "cannot take the configured database role %s: %s", role,
                 self->role_why);
        s_copy_err(err, err_len, msg);
        return -1;
    }
    return 0;
}

int pt_store_role_check(pt_store_t *self, const char *role, char *err, size_t err_len)
{
    if (pt_store_role_take(self, role, err, err_len) != 0)
        return -1;
    const char *name = role && *role ? role : PT_STORE_DEFAULT_ROLE;
    if (!self->role_taken)
        pt_log(PT_LOG_WARN, "store", NULL, NULL,
               "the broker runs with the rights of its database login %s, not as %s: %s; "
               "messages and case events are then append-only by their triggers alone "
               "(README \"Installing\": a non-superuser login role, member of puente_broker)",
               self->session_user, name, self->role_why);
    if (self->session_superuser)
        pt_log(PT_LOG_WARN, "store", NULL, NULL,
               "the broker's database login %s is a superuser%s: it can leave the role "
               "(RESET ROLE) and bypass every grant and trigger; in production connect as a "
               "non-superuser login role that is a member of puente_broker and set [broker] "
               "db_role (README \"Installing\")",
               self->session_user, self->role_taken ? " (its statements run as the role)" : "");
    return 0;
}

int pt_store_role_in_effect(const pt_store_t *self)
{
    return self && self->role_taken;
}

void pt_store_serial(pt_store_t *self)
{
    if (!self)
        return;
    self->serial = 1;
    (void)s_command(self, "SET max_parallel_workers_per_gather = 0");
}

struct _pt_store_canceller_t {
    PGcancel *cancel;
};

pt_store_canceller_t *pt_store_canceller_new(pt_store_t *self)
{
    if (!self || !self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return NULL;
    pt_store_canceller_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cancel = PQgetCancel(self->conn);
    if (!c->cancel) {
        free(c);
        return NULL;
    }
    return c;
}

int pt_store_cancel(pt_store_canceller_t *canceller)
{
    char errbuf[256];
    if (!canceller)
        return -1;
    return PQcancel(canceller->cancel, errbuf, (int)sizeof errbuf) ? 0 : -1;
}

void pt_store_canceller_destroy(pt_store_canceller_t **canceller_p)
{
    if (!canceller_p || !*canceller_p)
        return;
    PQfreeCancel((*canceller_p)->cancel);
    free(*canceller_p);
    *canceller_p = NULL;
}

static pt_store_result_t s_prepare(pt_store_t *self, s_stmt_id_t id)
{
    if (self->prepared & (UINT64_C(1) << id))
        return PT_STORE_OK;
    PGresult *res = PQprepare(self->conn, s_stmts[id].name, s_stmts[id].sql, 0, NULL);
    pt_store_result_t rc = PT_STORE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = s_classify(self, res);
    else
        self->prepared |= UINT64_C(1) << id;
    PQclear(res);
    return rc;
}

/* Executes a prepared statement synchronously (binary results). On success
   *res_p holds the result (caller PQclears); on failure it is NULL. */
static pt_store_result_t s_exec(pt_store_t *self, s_stmt_id_t id, const s_params_t *p,
                                PGresult **res_p)
{
    *res_p = NULL;
    pt_store_result_t rc = s_prepare(self, id);
    if (rc != PT_STORE_OK)
        return rc;
    PGresult *res = PQexecPrepared(self->conn, s_stmts[id].name, p ? p->n : 0,
                                   p ? p->values : NULL, p ? p->lengths : NULL,
                                   p ? p->formats : NULL, 1);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = s_classify(self, res);
        PQclear(res);
        return rc;
    }
    *res_p = res;
    return PT_STORE_OK;
}

/* Same, discarding the result. */
static pt_store_result_t s_exec0(pt_store_t *self, s_stmt_id_t id, const s_params_t *p)
{
    PGresult *res = NULL;
    pt_store_result_t rc = s_exec(self, id, p, &res);
    PQclear(res);
    return rc;
}

/* Queues a prepared statement in pipeline mode. */
static pt_store_result_t s_send(pt_store_t *self, s_stmt_id_t id, const s_params_t *p)
{
    if (!PQsendQueryPrepared(self->conn, s_stmts[id].name, p ? p->n : 0, p ? p->values : NULL,
                             p ? p->lengths : NULL, p ? p->formats : NULL, 1))
        return s_classify(self, NULL);
    return PT_STORE_OK;
}

static pt_store_result_t s_send_sql(pt_store_t *self, const char *sql)
{
    if (!PQsendQueryParams(self->conn, sql, 0, NULL, NULL, NULL, NULL, 1))
        return s_classify(self, NULL);
    return PT_STORE_OK;
}

/* Sends a Sync and collects the results of the nq queries queued since the last
   one into results[] (caller PQclears every entry, NULL or not). The first
   failing query decides the return code; later ones are PIPELINE_ABORTED. The
   connection stays in pipeline mode. */
static pt_store_result_t s_pipe_collect(pt_store_t *self, size_t nq, PGresult **results)
{
    pt_store_result_t rc = PT_STORE_OK;
    for (size_t i = 0; i < nq; i++)
        results[i] = NULL;
    if (!PQpipelineSync(self->conn))
        return s_classify(self, NULL);
    for (size_t i = 0; i < nq; i++) {
        PGresult *res = PQgetResult(self->conn);
        if (!res) {
            s_set_error(self, "pipeline: missing result");
            self->needs_reset = 1;
            return PT_STORE_UNAVAILABLE;
        }
        results[i] = res;
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && rc == PT_STORE_OK) {
            rc = st == PGRES_PIPELINE_ABORTED ? PT_STORE_UNAVAILABLE : s_classify(self, res);
            if (st == PGRES_PIPELINE_ABORTED)
                s_set_error(self, "pipeline aborted");
        }
        /* Each query's results end with NULL. */
        PGresult *extra;
        while ((extra = PQgetResult(self->conn)) != NULL)
            PQclear(extra);
        if (PQstatus(self->conn) != CONNECTION_OK) {
            s_classify(self, NULL);
            return PT_STORE_UNAVAILABLE;
        }
    }
    PGresult *sync = PQgetResult(self->conn);
    int synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced) {
        s_set_error(self, "pipeline: no sync");
        self->needs_reset = 1;
        return PT_STORE_UNAVAILABLE;
    }
    return rc;
}

static void s_clear_all(PGresult **results, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        PQclear(results[i]);
        results[i] = NULL;
    }
}

/* Leaves pipeline mode; if that is impossible the connection is reset later. */
static void s_pipe_exit(pt_store_t *self)
{
    if (PQpipelineStatus(self->conn) == PQ_PIPELINE_OFF)
        return;
    if (!PQexitPipelineMode(self->conn))
        self->needs_reset = 1;
}

/* Enters pipeline mode; UNAVAILABLE (and a reset before the next use) if libpq
   cannot. */
static pt_store_result_t s_pipe_enter(pt_store_t *self)
{
    if (PQenterPipelineMode(self->conn))
        return PT_STORE_OK;
    s_set_error(self, "cannot enter pipeline mode");
    self->needs_reset = 1;
    return PT_STORE_UNAVAILABLE;
}

/* Queues BEGIN and the hot transactions' settings (S_HOT_TXN, prepared by the
   caller): two results. */
static pt_store_result_t s_send_begin_hot(pt_store_t *self)
{
    pt_store_result_t rc = s_send_sql(self, "BEGIN");
    return rc == PT_STORE_OK ? s_send(self, S_HOT_TXN, NULL) : rc;
}

/* BEGIN and the hot transactions' settings in one round trip; the caller rolls
   back on failure. */
static pt_store_result_t s_begin_hot(pt_store_t *self)
{
    PGresult *results[2] = {NULL, NULL};
    pt_store_result_t rc = s_prepare(self, S_HOT_TXN);
    if (rc != PT_STORE_OK || (rc = s_pipe_enter(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_send_begin_hot(self)) == PT_STORE_OK)
        rc = s_pipe_collect(self, 2, results);
    s_clear_all(results, 2);
    s_pipe_exit(self);
    return rc;
}

/* --- lifecycle ------------------------------------------------------------- */

/* "<hostname>:<pid>": unique among the brokers of one database as long as each
   runs on its own host or with its own pid (issue 9). */
static void s_default_instance(char *out, size_t cap)
{
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out, cap, "%s:%ld", host, (long)getpid());
}

/* Server NOTICEs ("relation already exists, skipping") are not for the broker's
   stderr; errors reach the caller through result codes and last_error. */
static void s_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

pt_store_t *pt_store_new(const char *conninfo, char *err, size_t err_len)
{
    pt_store_t *self = NULL;
    if (!conninfo) {
        s_copy_err(err, err_len, "no connection string");
        goto error;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        s_copy_err(err, err_len, "out of memory");
        goto error;
    }
    self->conn = PQconnectdb(conninfo);
    if (!self->conn) {
        s_copy_err(err, err_len, "out of memory");
        goto error;
    }
    if (PQstatus(self->conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot connect to PostgreSQL: %s", PQerrorMessage(self->conn));
        size_t l = strlen(msg);
        while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
            msg[--l] = '\0';
        s_copy_err(err, err_len, msg);
        goto error;
    }
    PQsetNoticeProcessor(self->conn, s_ignore_notice, NULL);
    s_restrict(self);
    s_default_instance(self->instance, sizeof self->instance);
    self->lease_ms = PT_STORE_DEFAULT_LEASE_MS;
    return self;

error:
    pt_store_destroy(&self);
    return NULL;
}

void pt_store_destroy(pt_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_store_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self);
    *self_p = NULL;
}

const char *pt_store_last_error(const pt_store_t *self)
{
    return self ? self->last_error : "";
}

static const char *s_unprepared_sql(const char *name);

const char *pt_store_statement_sql(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < S_COUNT; i++)
        if (s_stmts[i].name && strcmp(s_stmts[i].name, name) == 0)
            return s_stmts[i].sql;
    return s_unprepared_sql(name);
}

pt_store_result_t pt_store_ping(pt_store_t *self)
{
    if (!self)
        return PT_STORE_ERROR;
    if (s_ready(self) != PT_STORE_OK)
        return PT_STORE_UNAVAILABLE;
    pt_store_result_t rc = s_exec0(self, S_PING, NULL);
    return rc == PT_STORE_OK ? PT_STORE_OK : PT_STORE_UNAVAILABLE;
}

/* Not a prepared statement, so that it needs no slot in s_stmts: it runs once a
   second at most and has no parameters. Per recipient: how many deliveries wait, and the storage time of the first of them
   in submission order (lowest delivery id). Counting touches deliveries only; messages
   is read once per recipient, not once per waiting delivery (with a backlog of 129 000
   and a million stored messages the former join took 0.9 s, on the broker's loop). */
#define S_QUEUE_STATS_SQL                                                                  \
    "WITH q AS (SELECT recipient, count(*)::bigint AS n, min(delivery_id) AS first"        \
    " FROM deliveries"                                                                     \
    " WHERE state <> 'acked' AND state <> 'dead' AND state <> 'dropped' AND attempts >= 0" \
    " AND (expires_at IS NULL OR expires_at > now())"                                      \
    " GROUP BY recipient)"                                                                 \
    " SELECT q.recipient, q.n, (extract(epoch FROM m.stored_at) * 1000)::bigint"           \
    " FROM q JOIN deliveries d ON d.delivery_id = q.first"                                 \
    " JOIN messages m ON m.message_id = d.message_id"

pt_store_result_t pt_store_queue_stats(pt_store_t *self, pt_store_queue_stat_fn *fn, void *arg)
{
    if (!self || !fn)
        return PT_STORE_ERROR;
    pt_store_result_t rc = s_ready(self);
    if (rc != PT_STORE_OK)
        return rc;
    PGresult *res = PQexecParams(self->conn, S_QUEUE_STATS_SQL, 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = s_classify(self, res);
        PQclear(res);
        return rc;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_queue_stat_t stat;
        memset(&stat, 0, sizeof stat);
        if (s_copy_text(res, i, 0, stat.recipient, sizeof stat.recipient) != 0 ||
            s_get_int64(res, i, 1, &stat.depth) != 0 ||
            s_get_int64(res, i, 2, &stat.oldest_stored_at_ms) != 0)
            continue;   /* an over-long recipient id is not a registered one */
        fn(&stat, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- issue 6: organisation and agreement administration ------------------------ */

/* Runs one parameterised UPDATE (text parameters): OK, NOT_FOUND when no row
   matched, or the classified failure. */
static pt_store_result_t s_update_one(pt_store_t *self, const char *sql, int n,
                                      const char *const *values)
{
    pt_store_result_t rc = s_ready(self);
    if (rc != PT_STORE_OK)
        return rc;
    PGresult *res = PQexecParams(self->conn, sql, n, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = s_classify(self, res);
        PQclear(res);
        return rc;
    }
    const char *tuples = PQcmdTuples(res);
    rc = tuples && strcmp(tuples, "0") != 0 ? PT_STORE_OK : PT_STORE_NOT_FOUND;
    PQclear(res);
    return rc;
}

pt_store_result_t pt_store_org_set_enabled(pt_store_t *self, const char *org_id, int enabled)
{
    if (!self || !org_id || !org_id[0] || strlen(org_id) >= PT_STORE_ORG_ID_MAX)
        return PT_STORE_ERROR;
    const char *values[2] = { org_id, enabled ? "true" : "false" };
    return s_update_one(self, "UPDATE organisations SET enabled = $2::boolean WHERE org_id = $1",
                        2, values);
}

pt_store_result_t pt_store_agreement_revoke(pt_store_t *self, const char *agreement_id,
                                            int64_t until_ms)
{
    if (!self || !agreement_id || !agreement_id[0] || strlen(agreement_id) >= PT_STORE_TEXT_MAX)
        return PT_STORE_ERROR;
    char until[32];
    snprintf(until, sizeof until, "%lld", (long long) until_ms);
    const char *values[2] = { agreement_id, until };
    /* LEAST keeps an earlier end: revoking never extends an agreement. */
    return s_update_one(self,
                        "UPDATE agreements SET valid_until = CASE WHEN valid_until IS NULL "
                        "THEN pt_ms_to_ts($2::bigint) "
                        "ELSE LEAST(valid_until, pt_ms_to_ts($2::bigint)) END, "
                        "updated_at = now() WHERE agreement_id = $1",
                        2, values);
}

/* --- migrations -------------------------------------------------------------- */

typedef struct {
    int version;
    char name[256];
} s_migration_t;

static int s_migration_cmp(const void *a, const void *b)
{
    const s_migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Lists sql_dir/NNN_name.sql sorted by version. Duplicate versions are refused. */
static int s_list_migrations(const char *sql_dir, s_migration_t **list_p, size_t *n_p, char *err,
                             size_t err_len)
{
    DIR *dir = opendir(sql_dir);
    s_migration_t *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    *list_p = NULL;
    *n_p = 0;
    if (!dir) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open migrations directory %s: %s", sql_dir,
                 strerror(errno));
        s_copy_err(err, err_len, msg);
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm), digits = 0;
        while (nm[digits] >= '0' && nm[digits] <= '9')
            digits++;
        if (digits == 0 || digits > 6 || nm[digits] != '_' || len < digits + 6 ||
            strcmp(nm + len - 4, ".sql") != 0 || len >= sizeof list[0].name)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            s_migration_t *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                s_copy_err(err, err_len, "out of memory");
                goto error;
            }
            list = grown;
        }
        list[n].version = atoi(nm);
        memcpy(list[n].name, nm, len + 1);
        n++;
    }
    closedir(dir);
    dir = NULL;
    if (n > 0)
        qsort(list, n, sizeof *list, s_migration_cmp);
    for (size_t i = 1; i < n; i++)
        if (list[i].version == list[i - 1].version) {
            char msg[600];
            snprintf(msg, sizeof msg, "two migrations with version %d: %s and %s",
                     list[i].version, list[i - 1].name, list[i].name);
            s_copy_err(err, err_len, msg);
            goto error;
        }
    *list_p = list;
    *n_p = n;
    return 0;

error:
    if (dir)
        closedir(dir);
    free(list);
    return -1;
}

static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    if (!f)
        return NULL;
    buf = malloc(S_MIGRATION_MAX_BYTES + 1);
    if (!buf)
        goto done;
    len = fread(buf, 1, S_MIGRATION_MAX_BYTES + 1, f);
    if (ferror(f) || len > S_MIGRATION_MAX_BYTES || memchr(buf, 0, len)) {
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[len] = '\0';
done:
    fclose(f);
    return buf;
}

/* Runs sql (text, no parameters) and reports a failure as "what: message". */
static int s_exec_simple(pt_store_t *self, const char *sql, const char *what, char *err,
                         size_t err_len)
{
    PGresult *res = PQexec(self->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    char msg[600];
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(msg, sizeof msg, "%s: %s", what, primary ? primary : PQerrorMessage(self->conn));
    s_copy_err(err, err_len, msg);
    (void)s_classify(self, res);
    PQclear(res);
    return -1;
}

/* 1 applied, 0 not, -1 error. */
static int s_migration_applied(pt_store_t *self, int version)
{
    char num[16];
    snprintf(num, sizeof num, "%d", version);
    const char *values[1] = {num};
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT 1 FROM schema_migrations WHERE version = $1::integer", 1,
                                 NULL, values, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
    if (rc < 0)
        (void)s_classify(self, res);
    PQclear(res);
    return rc;
}

int pt_store_migrate(pt_store_t *self, const char *sql_dir, char *err, size_t err_len)
{
    s_migration_t *list = NULL;
    size_t n = 0;
    char *sql = NULL;

    if (!self || !sql_dir) {
        s_copy_err(err, err_len, "bad arguments");
        return -1;
    }
    if (s_ready(self) != PT_STORE_OK) {
        s_copy_err(err, err_len, self->last_error);
        return -1;
    }
    /* Everything applied already (the usual start): no DDL at all, so a broker whose
       login role may not create anything (README "Installing": migrations run as the
       tables' owner) starts without it. */
    if (pt_store_migrations_current(self, sql_dir) == 1)
        return 0;
    if (s_list_migrations(sql_dir, &list, &n, err, err_len))
        return -1;
    /* Migrations need the login role's rights (DDL, CREATE ROLE); the restricted
       role is taken again at the end. */
    if (s_exec_simple(self, "RESET ROLE", "reset role", err, err_len))
        goto error;
    /* Concurrent CREATE TABLE IF NOT EXISTS can still collide: take the lock. */
    if (s_exec_simple(self,
                      "BEGIN; SELECT pg_advisory_xact_lock(" S_MIGRATE_LOCK_KEY "); "
                      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                      "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); COMMIT",
                      "schema_migrations", err, err_len))
        goto error;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", sql_dir, list[i].name);
        if (s_exec_simple(self, "BEGIN", "begin", err, err_len) ||
            s_exec_simple(self, "SELECT pg_advisory_xact_lock(" S_MIGRATE_LOCK_KEY ")",
                          "advisory lock", err, err_len))
            goto error;
        int applied = s_migration_applied(self, list[i].version);
        if (applied < 0) {
            s_copy_err(err, err_len, self->last_error);
            goto error;
        }
        if (applied) {
            if (s_exec_simple(self, "COMMIT", "commit", err, err_len))
                goto error;
            continue;
        }
        sql = s_read_file(path);
        if (!sql) {
            char msg[4200];
            snprintf(msg, sizeof msg, "cannot read %s (missing, unreadable, >4 MiB or binary)", path);
            s_copy_err(err, err_len, msg);
            goto error;
        }
        /* A migration file is ours, not input: it runs as a multi-statement script. */
        if (s_exec_simple(self, sql, list[i].name, err, err_len))
            goto error;
        free(sql);
        sql = NULL;
        char num[16];
        snprintf(num, sizeof num, "%d", list[i].version);
        const char *values[2] = {num, list[i].name};
        PGresult *res = PQexecParams(self->conn,
                                     "INSERT INTO schema_migrations (version, name) "
                                     "VALUES ($1::integer, $2)",
                                     2, NULL, values, NULL, NULL, 0);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            (void)s_classify(self, res);
            s_copy_err(err, err_len, self->last_error);
        }
        PQclear(res);
        if (!ok || s_exec_simple(self, "COMMIT", "commit", err, err_len))
            goto error;
    }
    free(list);
    /* Tables may have changed under statements prepared earlier. */
    if (s_exec_simple(self, "DEALLOCATE ALL", "deallocate", err, err_len))
        goto error_restrict;
    self->prepared = 0;
    s_restrict(self);
    return 0;

error:
    free(sql);
    free(list);
    s_rollback(self);
error_restrict:
    if (!self->needs_reset) {
        self->prepared = 0;
        (void)s_command(self, "DEALLOCATE ALL");
        s_restrict(self);
    }
    return -1;
}

int pt_store_migrations_current(pt_store_t *self, const char *sql_dir)
{
    s_migration_t *list = NULL;
    size_t n = 0;
    int rc = 1;
    if (!self || !sql_dir || s_ready(self) != PT_STORE_OK)
        return -1;
    if (s_list_migrations(sql_dir, &list, &n, NULL, 0))
        return -1;
    PGresult *res = PQexecParams(self->conn, "SELECT to_regclass('schema_migrations') IS NOT NULL",
                                 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        (void)s_classify(self, res);
        rc = -1;
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rc = n == 0 ? 1 : 0;
        n = 0;
    }
    PQclear(res);
    for (size_t i = 0; i < n && rc == 1; i++) {
        int applied = s_migration_applied(self, list[i].version);
        if (applied < 0)
            rc = -1;
        else if (!applied)
            rc = 0;
    }
    free(list);
    return rc;
}

/* --- directory ----------------------------------------------------------------- */

static int s_org_valid(const char *id)
{
    return id && id[0] && strlen(id) < PT_STORE_ORG_ID_MAX;
}

pt_store_result_t pt_store_org_put(pt_store_t *self, const pt_store_org_t *org)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !org || !s_org_valid(org->org_id))
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_text(&p, org->org_id);
    s_p_text(&p, org->enabled ? "true" : "false");
    s_p_text(&p, org->service_types);
    if ((rc = s_exec0(self, S_ORG_UPSERT, &p)) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_text(&p, org->org_id);
    if ((rc = s_exec(self, S_ORG_KEY_CURRENT, &p, &res)) != PT_STORE_OK)
        goto error;
    int same = PQntuples(res) == 1;
    if (same) {
        uint8_t keys[3][32];
        if (s_get_fixed(res, 0, 0, keys[0], 32) || s_get_fixed(res, 0, 1, keys[1], 32) ||
            s_get_fixed(res, 0, 2, keys[2], 32))
            same = 0;
        else
            same = !memcmp(keys[0], org->sign_public, 32) &&
                   !memcmp(keys[1], org->seal_public, 32) &&
                   !memcmp(keys[2], org->curve_public, 32);
    }
    PQclear(res);
    res = NULL;
    if (!same) {
        int64_t now = s_now_ms();
        p.n = 0;
        s_p_text(&p, org->org_id);
        s_p_int(&p, now);
        if ((rc = s_exec0(self, S_ORG_KEY_RETIRE, &p)) != PT_STORE_OK)
            goto error;
        p.n = 0;
        s_p_text(&p, org->org_id);
        s_p_bin(&p, org->sign_public, 32);
        s_p_bin(&p, org->seal_public, 32);
        s_p_bin(&p, org->curve_public, 32);
        s_p_int(&p, now);
        if ((rc = s_exec0(self, S_ORG_KEY_INSERT, &p)) != PT_STORE_OK)
            goto error;
    }
    if ((rc = s_command(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    return PT_STORE_OK;

error:
    PQclear(res);
    s_rollback(self);
    return rc;
}

pt_store_result_t pt_store_agreement_put(pt_store_t *self, const pt_store_agreement_t *agreement)
{
    char *purposes = NULL, *types = NULL, *field_sets = NULL;
    s_params_t p;
    pt_store_result_t rc = PT_STORE_ERROR;
    const pt_store_agreement_t *a = agreement;
    if (!self || !a || !a->agreement_id[0] || !s_org_valid(a->org_a) || !s_org_valid(a->org_b) ||
        (a->n_purposes && !a->purposes) || (a->n_message_types && !a->message_types) ||
        (a->n_field_sets && !a->field_sets) || a->valid_until_ms < 0)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    purposes = s_text_array(a->purposes, a->n_purposes);
    types = s_text_array(a->message_types, a->n_message_types);
    field_sets = s_text_array(a->field_sets, a->n_field_sets);
    if (!purposes || !types || !field_sets) {
        rc = PT_STORE_ERROR;
        goto done;
    }
    p.n = 0;
    s_p_text(&p, a->agreement_id);
    s_p_text(&p, a->org_a);
    s_p_text(&p, a->org_b);
    s_p_text(&p, purposes);
    s_p_text(&p, types);
    s_p_int(&p, a->valid_from_ms);
    if (a->valid_until_ms)
        s_p_int(&p, a->valid_until_ms);
    else
        s_p_null(&p);
    s_p_text(&p, field_sets);
    s_p_int(&p, a->retention_days);
    rc = s_exec0(self, S_AGR_UPSERT, &p);   /* one statement: its own transaction */
done:
    free(purposes);
    free(types);
    free(field_sets);
    return rc;
}

pt_store_result_t pt_store_load_orgs(pt_store_t *self, pt_store_org_fn *fn, void *arg)
{
    PGresult *res = NULL;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_exec(self, S_ORG_LOAD, NULL, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_org_t org;
        memset(&org, 0, sizeof org);
        if (s_copy_text(res, i, 0, org.org_id, sizeof org.org_id) ||
            PQgetlength(res, i, 1) != 1 || s_get_fixed(res, i, 2, org.sign_public, 32) ||
            s_get_fixed(res, i, 3, org.seal_public, 32) ||
            s_get_fixed(res, i, 4, org.curve_public, 32) ||
            s_copy_text(res, i, 5, org.service_types, sizeof org.service_types)) {
            s_set_error(self, "organisation row %d is malformed", i);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        org.enabled = PQgetvalue(res, i, 1)[0] != 0;
        fn(&org, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_load_agreements(pt_store_t *self, pt_store_agreement_fn *fn, void *arg)
{
    PGresult *res = NULL;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_exec(self, S_AGR_LOAD, NULL, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_agreement_t a;
        char **purposes = NULL, **types = NULL, **field_sets = NULL;
        memset(&a, 0, sizeof a);
        int bad = s_copy_text(res, i, 0, a.agreement_id, sizeof a.agreement_id) ||
                  s_copy_text(res, i, 1, a.org_a, sizeof a.org_a) ||
                  s_copy_text(res, i, 2, a.org_b, sizeof a.org_b) ||
                  s_parse_text_array(res, i, 3, &purposes, &a.n_purposes) ||
                  s_parse_text_array(res, i, 4, &types, &a.n_message_types) ||
                  s_get_int64(res, i, 5, &a.valid_from_ms) ||
                  (!PQgetisnull(res, i, 6) && s_get_int64(res, i, 6, &a.valid_until_ms)) ||
                  s_parse_text_array(res, i, 7, &field_sets, &a.n_field_sets);
        if (!bad) {
            a.purposes = (const char *const *)purposes;
            a.message_types = (const char *const *)types;
            a.field_sets = (const char *const *)field_sets;
            fn(&a, arg);
        }
        free(purposes);
        free(types);
        free(field_sets);
        if (bad) {
            s_set_error(self, "agreement row %d is malformed", i);
            PQclear(res);
            return PT_STORE_ERROR;
        }
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- submissions ---------------------------------------------------------------- */

typedef struct {
    const char *token;
    uint64_t last_seq;
    uint8_t last_hash[32];
} s_head_t;

/* Queues the chain heads' lock and read (S_HEADS_INIT, S_HEADS_LOCK, prepared by
   the caller) for token_array, the distinct case tokens in byte order: two
   results, the second the heads. */
static pt_store_result_t s_send_heads(pt_store_t *self, const char *token_array)
{
    s_params_t p;
    p.n = 0;
    s_p_text(&p, token_array);
    pt_store_result_t rc = s_send(self, S_HEADS_INIT, &p);
    return rc == PT_STORE_OK ? s_send(self, S_HEADS_LOCK, &p) : rc;
}

/* Fills heads[0..n_tokens) from the result of S_HEADS_LOCK: one row per token of
   tokens (byte order), its last seq and hash. */
static pt_store_result_t s_heads_from(pt_store_t *self, const PGresult *res,
                                      const char *const *tokens, size_t n_tokens, s_head_t *heads)
{
    if (PQntuples(res) != (int)n_tokens) {
        s_set_error(self, "case heads: expected %zu rows, got %d", n_tokens, PQntuples(res));
        return PT_STORE_UNAVAILABLE;   /* a concurrent change; retrying is safe */
    }
    for (size_t t = 0; t < n_tokens; t++) {
        int64_t last_seq;
        const char *tok = s_get_text(res, (int)t, 0);
        if (!tok || strcmp(tok, tokens[t]) != 0 || s_get_int64(res, (int)t, 1, &last_seq) ||
            last_seq < 0 || s_get_fixed(res, (int)t, 2, heads[t].last_hash, 32)) {
            s_set_error(self, "case head row %zu is malformed", t);
            return PT_STORE_ERROR;
        }
        heads[t].token = tokens[t];
        heads[t].last_seq = (uint64_t)last_seq;
    }
    return PT_STORE_OK;
}

/* submitted, stored, consent_overridden, state:<to>, owner_changed */
#define S_ITEM_EVENTS_MAX 5

typedef struct {
    int is_new;
    int64_t stored_at_ms;
    char *counterparty;     /* recipients joined by ',' */
    uint64_t seq;           /* of the "submitted" event; the others follow */
    uint8_t prev[32];
    size_t n_events;
    char state_kind[PT_STORE_NAME_MAX + 8];   /* "state:<to>" */
    int lc_single;          /* its lifecycle changes only once in the batch */
    uint8_t hashes[S_ITEM_EVENTS_MAX][32];
} s_item_t;

static int s_token_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int s_head_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const s_head_t *)elem)->token);
}

static int s_submission_valid(const pt_submission_t *s)
{
    if (!s->message_id || !s->correlation_id || !s->message_type || !s->message_type[0] ||
        !s_org_valid(s->sender) || !s->case_token || !s->case_token[0] || !s->recipients ||
        s->n_recipients == 0 || !s->header_sha256 || !s->envelope || s->envelope_len == 0 ||
        s->envelope_len > INT32_MAX || s->expires_at_ms < 0)
        return 0;
    for (size_t r = 0; r < s->n_recipients; r++)
        if (!s_org_valid(s->recipients[r]) || strchr(s->recipients[r], ','))
            return 0;
    if (s->lifecycle_kind &&
        (!s->lifecycle_from || !s->lifecycle_to || !s->lifecycle_to[0] ||
         strlen(s->lifecycle_to) >= PT_STORE_NAME_MAX || !s->lifecycle_initiator ||
         !s->lifecycle_counterparty))
        return 0;
    if (s->owner_to && (!s_org_valid(s->owner_to) || !s->owner_from || !s->former_owners))
        return 0;
    if (s->owner_first && !s_org_valid(s->owner_first))
        return 0;
    return 1;
}

static char *s_join(const char *const *items, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    char *out = malloc(len), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        size_t l = strlen(items[i]);
        memcpy(w, items[i], l);
        w += l;
    }
    *w = '\0';
    return out;
}

/* The events of a new item, in chain order: "submitted", "stored", then
   "consent_overridden", "state:<to>", "owner_changed" when they apply. Returns
   how many (it->state_kind must be set). */
static size_t s_item_events(const pt_submission_t *s, const s_item_t *it,
                            pt_trail_event_t ev[S_ITEM_EVENTS_MAX])
{
    const char *kinds[S_ITEM_EVENTS_MAX];
    size_t n = 0;
    kinds[n++] = "submitted";
    kinds[n++] = "stored";
    if (s->consent_overridden)
        kinds[n++] = "consent_overridden";
    if (s->lifecycle_kind)
        kinds[n++] = it->state_kind;
    if (s->owner_to)
        kinds[n++] = "owner_changed";
    for (size_t k = 0; k < n; k++) {
        int owner = s->owner_to && k == n - 1;
        ev[k] = (pt_trail_event_t){.seq = it->seq + (uint64_t)k,
                                   .at_ms = k == 0 ? s->created_at_ms : it->stored_at_ms,
                                   .kind = kinds[k],
                                   .case_token = s->case_token,
                                   .actor = owner ? s->owner_to : s->sender,
                                   .counterparty = owner ? s->owner_from : it->counterparty,
                                   .message_type = s->message_type,
                                   .message_id = s->message_id,
                                   .detail = s->header_sha256,
                                   .detail_len = 32};
    }
    return n;
}

pt_store_result_t pt_store_submit_batch(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                        pt_store_receipt_t *receipts)
{
    pt_store_result_t rc = PT_STORE_ERROR;
    const char **tokens = NULL;
    s_head_t *heads = NULL;
    s_item_t *items = NULL;
    char *token_array = NULL, *id_array = NULL;
    PGresult **results = NULL;
    size_t n_tokens = 0, n_results = 0, n_new = 0;
    PGresult *existing = NULL;
    s_params_t p;
    s_arr_t marr[14], earr[11];
    int arrays_ready = 0;

    if (!self || (n > 0 && (!subs || !receipts)))
        return PT_STORE_ERROR;
    if (n == 0)
        return PT_STORE_OK;
    if (n > (size_t)INT32_MAX / 64)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < n; i++)
        if (!s_submission_valid(&subs[i])) {
            s_set_error(self, "submission %zu is incomplete", i);
            return PT_STORE_ERROR;
        }
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    rc = PT_STORE_ERROR;
    memset(receipts, 0, n * sizeof *receipts);

    tokens = malloc(n * sizeof *tokens);
    items = calloc(n, sizeof *items);
    id_array = malloc(n * 37 + 3);
    results = calloc(2 * n + 16, sizeof *results);
    if (!tokens || !items || !id_array || !results)
        goto error;
    /* Distinct case tokens in byte order: the order in which heads are locked. */
    for (size_t i = 0; i < n; i++)
        tokens[i] = subs[i].case_token;
    qsort(tokens, n, sizeof *tokens, s_token_cmp);
    for (size_t i = 0; i < n; i++)
        if (n_tokens == 0 || strcmp(tokens[n_tokens - 1], tokens[i]) != 0)
            tokens[n_tokens++] = tokens[i];
    token_array = s_text_array(tokens, n_tokens);
    heads = calloc(n_tokens, sizeof *heads);
    if (!token_array || !heads)
        goto error;
    char *w = id_array;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        s_uuid_text(subs[i].message_id, w);
        w += 36;
    }
    *w++ = '}';
    *w = '\0';

    if ((rc = s_prepare(self, S_HOT_TXN)) != PT_STORE_OK)
        goto error;
    for (int id = S_HEADS_INIT; id <= S_MSGS_FIND; id++)
        if ((rc = s_prepare(self, (s_stmt_id_t)id)) != PT_STORE_OK)
            goto error;
    if ((rc = s_prepare(self, S_LC_CREATE_MANY)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_LC_MOVE_MANY)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_OWNER_FIRST_MANY)) != PT_STORE_OK)
        goto error;
    if ((rc = s_prepare(self, S_MSGS_INSERT_MANY)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_EVENTS_INSERT_MANY)) != PT_STORE_OK)
        goto error;
    if ((rc = s_prepare(self, S_LC_APPLY)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_OWNER_SET)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_OWNER_FIRST)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_LEAVES_FIND)) != PT_STORE_OK)
        goto error;

    /* Round trip 1: begin, lock the chain heads, find message ids already stored. */
    if ((rc = s_pipe_enter(self)) != PT_STORE_OK || (rc = s_send_begin_hot(self)) != PT_STORE_OK ||
        (rc = s_send_heads(self, token_array)) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_text(&p, id_array);
    if ((rc = s_send(self, S_MSGS_FIND, &p)) != PT_STORE_OK)
        goto error;
    n_results = 5;
    if ((rc = s_pipe_collect(self, n_results, results)) != PT_STORE_OK)
        goto error;

    if ((rc = s_heads_from(self, results[3], tokens, n_tokens, heads)) != PT_STORE_OK)
        goto error;
    existing = results[4];
    results[4] = NULL;
    s_clear_all(results, n_results);

    int64_t stored_at = s_now_ms();
    for (size_t i = 0; i < n; i++) {
        const pt_submission_t *s = &subs[i];
        pt_store_receipt_t *r = &receipts[i];
        int found = 0;
        /* Stored by an earlier transaction? */
        for (int row = 0; row < PQntuples(existing) && !found; row++) {
            uint8_t id[16];
            if (s_get_fixed(existing, row, 0, id, 16) || memcmp(id, s->message_id, 16) != 0)
                continue;
            found = 1;
            if (s_get_fixed(existing, row, 1, r->header_sha256, 32) ||
                s_get_int64(existing, row, 2, &r->stored_at_ms) ||
                (!PQgetisnull(existing, row, 3) && s_get_fixed(existing, row, 3, r->event_hash, 32))) {
                s_set_error(self, "stored message row is malformed");
                rc = PT_STORE_ERROR;
                goto error;
            }
        }
        /* Or earlier in this batch? */
        for (size_t j = 0; j < i && !found; j++) {
            if (memcmp(subs[j].message_id, s->message_id, 16) != 0)
                continue;
            found = 1;
            memcpy(r->header_sha256, receipts[j].header_sha256, 32);
            r->stored_at_ms = receipts[j].stored_at_ms;
            memcpy(r->event_hash, receipts[j].event_hash, 32);
        }
        if (found) {
            r->result = memcmp(r->header_sha256, s->header_sha256, 32) == 0 ? PT_STORE_DUPLICATE
                                                                              : PT_STORE_CONFLICT;
            continue;
        }
        s_item_t *it = &items[i];
        s_head_t *h = bsearch(s->case_token, heads, n_tokens, sizeof *heads, s_head_cmp);
        it->counterparty = s_join(s->recipients, s->n_recipients);
        if (!h || !it->counterparty) {
            rc = PT_STORE_ERROR;
            goto error;
        }
        it->is_new = 1;
        it->stored_at_ms = stored_at;
        it->seq = h->last_seq + 1;
        memcpy(it->prev, h->last_hash, 32);
        if (s->lifecycle_kind)
            snprintf(it->state_kind, sizeof it->state_kind, "state:%s", s->lifecycle_to);
        pt_trail_event_t ev[S_ITEM_EVENTS_MAX];
        it->n_events = s_item_events(s, it, ev);
        for (size_t k = 0; k < it->n_events; k++) {
            if (pt_trail_hash(k == 0 ? it->prev : it->hashes[k - 1], &ev[k], it->hashes[k])) {
                rc = PT_STORE_ERROR;
                goto error;
            }
        }
        h->last_seq = it->seq + it->n_events - 1;
        memcpy(h->last_hash, it->hashes[it->n_events - 1], 32);
        n_new++;
        r->result = PT_STORE_OK;
        r->stored_at_ms = stored_at;
        memcpy(r->header_sha256, s->header_sha256, 32);
        memcpy(r->event_hash, it->hashes[1], 32);
    }
    PQclear(existing);
    existing = NULL;

    /* Round trip 2: every new message with its deliveries in one statement, every
       case event in one, the lifecycle and ownership changes in batch order, and
       COMMIT (the chain heads are the events themselves, 020). Multi-row
       statements cost a fraction of one statement per row (issue 8: ~125 us of
       PostgreSQL time per message as one statement each). Nothing new: just end
       the transaction. */
    enum { S_M_N = 14, S_E_N = 11 };
    static const uint32_t m_oids[S_M_N] = {S_OID_UUID,  S_OID_UUID,  S_OID_UUID, S_OID_TEXT,
                                           S_OID_TEXT,  S_OID_TEXT,  S_OID_TEXT, S_OID_TEXT,
                                           S_OID_TEXT,  S_OID_INT8,  S_OID_INT8, S_OID_INT8,
                                           S_OID_BYTEA, S_OID_BYTEA};
    static const uint32_t e_oids[S_E_N] = {S_OID_TEXT, S_OID_INT8, S_OID_TEXT,  S_OID_INT8,
                                           S_OID_TEXT, S_OID_TEXT, S_OID_TEXT,  S_OID_UUID,
                                           S_OID_BYTEA, S_OID_BYTEA, S_OID_BYTEA};
    for (int k = 0; k < S_M_N; k++)
        s_arr_init(&marr[k], m_oids[k]);
    for (int k = 0; k < S_E_N; k++)
        s_arr_init(&earr[k], e_oids[k]);
    arrays_ready = 1;
    size_t queued = 0;
    if (n_new) {
        for (size_t i = 0; i < n; i++) {
            const pt_submission_t *s = &subs[i];
            const s_item_t *it = &items[i];
            if (!it->is_new)
                continue;
            s_arr_add(&marr[0], s->message_id, 16);
            s_arr_add(&marr[1], s->correlation_id, 16);
            s_arr_add(&marr[2], s->causation_id, s->causation_id ? 16 : 0);
            s_arr_text(&marr[3], s->message_type);
            s_arr_text(&marr[4], s->sender);
            s_arr_text(&marr[5], it->counterparty);   /* recipients joined by ',' */
            s_arr_text(&marr[6], s->case_token);
            s_arr_text(&marr[7], s->purpose);
            s_arr_text(&marr[8], s->agreement_id);
            s_arr_int(&marr[9], s->created_at_ms);
            if (s->expires_at_ms)
                s_arr_int(&marr[10], s->expires_at_ms);
            else
                s_arr_add(&marr[10], NULL, 0);
            s_arr_int(&marr[11], it->stored_at_ms);
            s_arr_add(&marr[12], s->header_sha256, 32);
            s_arr_add(&marr[13], s->envelope, s->envelope_len);
            pt_trail_event_t ev[S_ITEM_EVENTS_MAX];
            size_t n_ev = s_item_events(s, it, ev);
            for (size_t k = 0; k < n_ev; k++) {
                s_arr_text(&earr[0], ev[k].case_token);
                s_arr_int(&earr[1], (int64_t)ev[k].seq);
                s_arr_text(&earr[2], ev[k].kind);
                s_arr_int(&earr[3], ev[k].at_ms);
                s_arr_text(&earr[4], ev[k].actor ? ev[k].actor : "");
                s_arr_text(&earr[5], ev[k].counterparty ? ev[k].counterparty : "");
                s_arr_text(&earr[6], ev[k].message_type ? ev[k].message_type : "");
                s_arr_add(&earr[7], ev[k].message_id, ev[k].message_id ? 16 : 0);
                s_arr_add(&earr[8], ev[k].detail, ev[k].detail_len);
                s_arr_add(&earr[9], k == 0 ? it->prev : it->hashes[k - 1], 32);
                s_arr_add(&earr[10], it->hashes[k], 32);
            }
        }
        int failed = 0;
        for (int k = 0; k < S_M_N; k++)
            failed |= marr[k].failed;
        for (int k = 0; k < S_E_N; k++)
            failed |= earr[k].failed;
        if (failed) {
            s_set_error(self, "out of memory building the batch");
            rc = PT_STORE_ERROR;
            goto error;
        }
        p.n = 0;
        for (int k = 0; k < S_M_N; k++)
            s_p_arr(&p, &marr[k]);
        if ((rc = s_send(self, S_MSGS_INSERT_MANY, &p)) != PT_STORE_OK)
            goto error;
        queued++;
        p.n = 0;
        for (int k = 0; k < S_E_N; k++)
            s_p_arr(&p, &earr[k]);
        if ((rc = s_send(self, S_EVENTS_INSERT_MANY, &p)) != PT_STORE_OK)
            goto error;
        queued++;
        /* Lifecycles changed once in this batch: two multi-row statements (rows of
           different correlation ids are independent). One changed twice or more
           keeps one statement per change, in order, below. */
        s_arr_t ca[9], ma[8];
        static const uint32_t c_oids[9] = {S_OID_UUID, S_OID_TEXT, S_OID_TEXT,
                                           S_OID_TEXT, S_OID_TEXT, S_OID_TEXT,
                                           S_OID_INT8, S_OID_INT8, S_OID_INT8};
        static const uint32_t mv_oids[8] = {S_OID_UUID, S_OID_TEXT, S_OID_TEXT, S_OID_TEXT,
                                            S_OID_TEXT, S_OID_INT8, S_OID_INT8, S_OID_INT8};
        for (int k = 0; k < 9; k++)
            s_arr_init(&ca[k], c_oids[k]);
        for (int k = 0; k < 8; k++)
            s_arr_init(&ma[k], mv_oids[k]);
        for (size_t i = 0; i < n; i++) {
            const pt_submission_t *s = &subs[i];
            if (!items[i].is_new || !s->lifecycle_kind)
                continue;
            items[i].lc_single = 1;
            for (size_t j = 0; j < n && items[i].lc_single; j++)
                if (j != i && items[j].is_new && subs[j].lifecycle_kind &&
                    memcmp(subs[j].correlation_id, s->correlation_id, 16) == 0)
                    items[i].lc_single = 0;
            if (!items[i].lc_single)
                continue;
            if (!s->lifecycle_from[0]) {
                s_arr_add(&ca[0], s->correlation_id, 16);
                s_arr_text(&ca[1], s->lifecycle_kind);
                s_arr_text(&ca[2], s->lifecycle_to);
                s_arr_text(&ca[3], s->lifecycle_initiator);
                s_arr_text(&ca[4], s->lifecycle_counterparty);
                s_arr_text(&ca[5], s->case_token);
                s_arr_int(&ca[6], s->respond_by_ms);
                s_arr_int(&ca[7], s->follow_up_due_ms);
                s_arr_int(&ca[8], items[i].stored_at_ms);
            } else {
                s_arr_add(&ma[0], s->correlation_id, 16);
                s_arr_text(&ma[1], s->lifecycle_kind);
                s_arr_text(&ma[2], s->lifecycle_from);
                s_arr_text(&ma[3], s->lifecycle_to);
                s_arr_text(&ma[4], s->lifecycle_counterparty);
                s_arr_int(&ma[5], s->respond_by_ms);
                s_arr_int(&ma[6], s->follow_up_due_ms);
                s_arr_int(&ma[7], items[i].stored_at_ms);
            }
        }
        int lc_failed = 0;
        for (int k = 0; k < 9; k++)
            lc_failed |= ca[k].failed;
        for (int k = 0; k < 8; k++)
            lc_failed |= ma[k].failed;
        if (!lc_failed && ca[0].n > 0) {
            p.n = 0;
            s_p_int(&p, (int64_t)ca[0].n);
            for (int k = 0; k < 9; k++)
                s_p_arr(&p, &ca[k]);
            if ((rc = s_send(self, S_LC_CREATE_MANY, &p)) == PT_STORE_OK)
                queued++;
        }
        if (!lc_failed && rc == PT_STORE_OK && ma[0].n > 0) {
            p.n = 0;
            s_p_int(&p, (int64_t)ma[0].n);
            for (int k = 0; k < 8; k++)
                s_p_arr(&p, &ma[k]);
            if ((rc = s_send(self, S_LC_MOVE_MANY, &p)) == PT_STORE_OK)
                queued++;
        }
        /* libpq has copied the parameters into its output buffer by now. */
        for (int k = 0; k < 9; k++)
            s_arr_free(&ca[k]);
        for (int k = 0; k < 8; k++)
            s_arr_free(&ma[k]);
        if (lc_failed) {
            s_set_error(self, "out of memory building the batch");
            rc = PT_STORE_ERROR;
        }
        if (rc != PT_STORE_OK)
            goto error;
        /* First owners in one statement, unless an owner moves in this batch
           (then every owner change keeps its own statement, in batch order). */
        int owners_moved = 0;
        for (size_t i = 0; i < n; i++)
            owners_moved |= items[i].is_new && subs[i].owner_to != NULL;
        if (!owners_moved) {
            s_arr_t oa[3];
            static const uint32_t o_oids[3] = {S_OID_TEXT, S_OID_TEXT, S_OID_INT8};
            int o_failed = 0;
            for (int k = 0; k < 3; k++)
                s_arr_init(&oa[k], o_oids[k]);
            for (size_t i = 0; i < n; i++) {
                if (!items[i].is_new || !subs[i].owner_first)
                    continue;
                s_arr_text(&oa[0], subs[i].case_token);
                s_arr_text(&oa[1], subs[i].owner_first);
                s_arr_int(&oa[2], items[i].stored_at_ms);
            }
            for (int k = 0; k < 3; k++)
                o_failed |= oa[k].failed;
            if (!o_failed && oa[0].n > 0) {
                p.n = 0;
                for (int k = 0; k < 3; k++)
                    s_p_arr(&p, &oa[k]);
                if ((rc = s_send(self, S_OWNER_FIRST_MANY, &p)) == PT_STORE_OK)
                    queued++;
            }
            for (int k = 0; k < 3; k++)
                s_arr_free(&oa[k]);
            if (o_failed) {
                s_set_error(self, "out of memory building the batch");
                rc = PT_STORE_ERROR;
            }
            if (rc != PT_STORE_OK)
                goto error;
        }
        for (size_t i = 0; i < n; i++) {
            const pt_submission_t *s = &subs[i];
            const s_item_t *it = &items[i];
            if (!it->is_new)
                continue;
            if (s->lifecycle_kind && !it->lc_single) {
                p.n = 0;
                s_p_bin(&p, s->correlation_id, 16);
                s_p_text(&p, s->lifecycle_kind);
                s_p_text(&p, s->lifecycle_from);
                s_p_text(&p, s->lifecycle_to);
                s_p_text(&p, s->lifecycle_initiator);
                s_p_text(&p, s->lifecycle_counterparty);
                s_p_text(&p, s->case_token);
                s_p_int(&p, s->respond_by_ms);
                s_p_int(&p, it->stored_at_ms);
                s_p_int(&p, s->follow_up_due_ms);
                if ((rc = s_send(self, S_LC_APPLY, &p)) != PT_STORE_OK)
                    goto error;
                queued++;
            }
            if (s->owner_to) {
                p.n = 0;
                s_p_text(&p, s->case_token);
                s_p_text(&p, s->owner_to);
                s_p_text(&p, s->former_owners);
                s_p_int(&p, it->stored_at_ms);
                if ((rc = s_send(self, S_OWNER_SET, &p)) != PT_STORE_OK)
                    goto error;
                queued++;
            } else if (s->owner_first && owners_moved) {
                p.n = 0;
                s_p_text(&p, s->case_token);
                s_p_text(&p, s->owner_first);
                s_p_int(&p, it->stored_at_ms);
                if ((rc = s_send(self, S_OWNER_FIRST, &p)) != PT_STORE_OK)
                    goto error;
                queued++;
            }
        }
    }
    if ((rc = s_send_sql(self, n_new ? "COMMIT" : "ROLLBACK")) != PT_STORE_OK)
        goto error;
    size_t committed = queued++;
    /* After COMMIT, in the same round trip: the leaf index the audit log's
       deferred trigger gave each message's "stored" event (new or duplicate), in
       a read of its own under the hot settings (a key lookup: its generic plan). */
    p.n = 0;
    s_p_text(&p, id_array);
    if ((rc = s_send_begin_hot(self)) != PT_STORE_OK ||
        (rc = s_send(self, S_LEAVES_FIND, &p)) != PT_STORE_OK ||
        (rc = s_send_sql(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    queued += 4;
    n_results = queued;
    if ((rc = s_pipe_collect(self, n_results, results)) != PT_STORE_OK)
        goto error;
    if (n_new && strcmp(PQcmdStatus(results[committed]), "COMMIT") != 0) {
        s_set_error(self, "commit did not commit");
        rc = PT_STORE_UNAVAILABLE;
        goto error;
    }
    for (size_t i = 0; i < n; i++)
        receipts[i].leaf_index = -1;
    {
        const PGresult *leaves = results[queued - 2];
        for (int row = 0; row < PQntuples(leaves); row++) {
            uint8_t id[16];
            int64_t leaf;
            if (s_get_fixed(leaves, row, 0, id, 16) || s_get_int64(leaves, row, 1, &leaf))
                continue;
            for (size_t i = 0; i < n; i++)
                if (receipts[i].result != PT_STORE_CONFLICT &&
                    memcmp(subs[i].message_id, id, 16) == 0)
                    receipts[i].leaf_index = leaf;
        }
    }
    s_clear_all(results, n_results);
    n_results = 0;

    s_pipe_exit(self);
    rc = PT_STORE_OK;
    goto done;

error:
    if (results)
        s_clear_all(results, n_results);
    PQclear(existing);
    existing = NULL;
    /* After an SQL error every result up to the Sync has been read, so pipeline
       mode can be left and the transaction rolled back. If results are still
       pending (a send failed half-way), the reset discards them and the server
       aborts the transaction with the session. */
    s_pipe_exit(self);
    s_rollback(self);
    if (receipts)
        memset(receipts, 0, n * sizeof *receipts);
done:
    if (arrays_ready) {
        for (int k = 0; k < 14; k++)
            s_arr_free(&marr[k]);
        for (int k = 0; k < 11; k++)
            s_arr_free(&earr[k]);
    }
    if (items)
        for (size_t k = 0; k < n; k++)
            free(items[k].counterparty);
    free(items);
    free(tokens);
    free(heads);
    free(token_array);
    free(id_array);
    free(results);
    return rc;
}

/* --- lifecycles ----------------------------------------------------------------- */


static int s_uuid_array(const pt_submission_t *subs, size_t n, int correlation, char **out)
{
    char *a = malloc(n * 37 + 3), *w = a;
    if (!a)
        return -1;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        s_uuid_text(correlation ? subs[i].correlation_id : subs[i].message_id, w);
        w += 36;
    }
    *w++ = '}';
    *w = '\0';
    *out = a;
    return 0;
}

pt_store_result_t pt_store_lifecycle_load(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                          pt_store_lifecycle_t *lifecycles,
                                          pt_store_case_owner_t *owners, int *known)
{
    pt_store_result_t rc;
    PGresult *results[6] = {NULL, NULL, NULL, NULL, NULL, NULL}, *res;
    char *ids = NULL, *corrs = NULL, *tokens = NULL;
    const char **token_list = NULL;
    s_params_t p;
    if (!self || (n > 0 && (!subs || !lifecycles || !owners || !known)))
        return PT_STORE_ERROR;
    if (n == 0)
        return PT_STORE_OK;
    memset(lifecycles, 0, n * sizeof *lifecycles);
    memset(owners, 0, n * sizeof *owners);
    memset(known, 0, n * sizeof *known);
    for (size_t i = 0; i < n; i++)
        if (!subs[i].message_id || !subs[i].correlation_id || !subs[i].case_token)
            return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    rc = PT_STORE_ERROR;
    token_list = malloc(n * sizeof *token_list);
    if (!token_list || s_uuid_array(subs, n, 1, &corrs) || s_uuid_array(subs, n, 0, &ids))
        goto done;
    for (size_t i = 0; i < n; i++)
        token_list[i] = subs[i].case_token;
    if (!(tokens = s_text_array((const char *const *)token_list, n)))
        goto done;
    if ((rc = s_prepare(self, S_HOT_TXN)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_LC_LOAD)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_OWNER_LOAD)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_MSGS_FIND)) != PT_STORE_OK)
        goto done;

    /* One round trip, the three reads in a transaction under the hot settings
       (S_HOT_TXN_SQL: key lookups, one generic plan each). */
    p.n = 0;
    s_p_text(&p, corrs);
    if ((rc = s_pipe_enter(self)) != PT_STORE_OK || (rc = s_send_begin_hot(self)) != PT_STORE_OK ||
        (rc = s_send(self, S_LC_LOAD, &p)) != PT_STORE_OK)
        goto done;
    p.n = 0;
    s_p_text(&p, tokens);
    if ((rc = s_send(self, S_OWNER_LOAD, &p)) != PT_STORE_OK)
        goto done;
    p.n = 0;
    s_p_text(&p, ids);
    if ((rc = s_send(self, S_MSGS_FIND, &p)) != PT_STORE_OK ||
        (rc = s_send_sql(self, "COMMIT")) != PT_STORE_OK ||
        (rc = s_pipe_collect(self, 6, results)) != PT_STORE_OK)
        goto done;
    s_pipe_exit(self);
    rc = PT_STORE_ERROR;

    res = results[2];
    for (int row = 0; row < PQntuples(res); row++) {
        uint8_t id[16];
        pt_store_lifecycle_t lc;
        memset(&lc, 0, sizeof lc);
        if (s_get_fixed(res, row, 0, id, 16) || s_copy_text(res, row, 1, lc.kind, sizeof lc.kind) ||
            s_copy_text(res, row, 2, lc.state, sizeof lc.state) ||
            s_copy_text(res, row, 3, lc.initiator, sizeof lc.initiator) ||
            s_copy_text(res, row, 4, lc.counterparty, sizeof lc.counterparty) ||
            s_copy_text(res, row, 5, lc.case_token, sizeof lc.case_token) ||
            s_get_int64(res, row, 6, &lc.respond_by_ms) ||
            s_get_int64(res, row, 7, &lc.follow_up_due_ms)) {
            s_set_error(self, "lifecycle row %d is malformed", row);
            rc = PT_STORE_ERROR;
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            if (memcmp(subs[i].correlation_id, id, 16) == 0)
                lifecycles[i] = lc;
    }
    res = results[3];
    for (int row = 0; row < PQntuples(res); row++) {
        char token[PT_STORE_TEXT_MAX];
        pt_store_case_owner_t owner;
        memset(&owner, 0, sizeof owner);
        if (s_copy_text(res, row, 0, token, sizeof token) ||
            s_copy_text(res, row, 1, owner.owner, sizeof owner.owner) ||
            s_copy_text(res, row, 2, owner.former, sizeof owner.former)) {
            s_set_error(self, "case owner row %d is malformed", row);
            rc = PT_STORE_ERROR;
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(subs[i].case_token, token) == 0)
                owners[i] = owner;
    }
    res = results[4];
    for (int row = 0; row < PQntuples(res); row++) {
        uint8_t id[16];
        if (s_get_fixed(res, row, 0, id, 16))
            continue;
        for (size_t i = 0; i < n; i++)
            if (memcmp(subs[i].message_id, id, 16) == 0)
                known[i] = 1;
    }
    rc = PT_STORE_OK;
done:
    s_clear_all(results, 6);
    if (rc != PT_STORE_OK) {
        s_pipe_exit(self);
        s_rollback(self);
    }
    free(token_list);
    free(ids);
    free(corrs);
    free(tokens);
    return rc;
}

/* One deadline sweep in one transaction: runs stmt (now_ms, max), which moves or
   marks lifecycles and returns (case_token, kind, initiator, counterparty), and
   appends the events kinds[0..n_kinds) for each row, actor "broker", counterparty
   every party, message type message_type. *count receives the rows. */
/* Appends n events (in this order; seq and hashes are filled in) to their case
   chains inside the caller's open transaction (pipeline mode off): locks the
   cases in key order and reads their heads (S_HEADS_INIT, S_HEADS_LOCK), then one
   multi-row insert for the events. Two round trips whatever n is. */
static pt_store_result_t s_append_events(pt_store_t *self, pt_trail_event_t *evs, size_t n)
{
    pt_store_result_t rc = PT_STORE_ERROR;
    const char **tokens = malloc((n ? n : 1) * sizeof *tokens);
    s_head_t *heads = calloc(n ? n : 1, sizeof *heads);
    char *token_array = NULL;
    PGresult *results[4] = {NULL, NULL, NULL, NULL};
    size_t n_tokens = 0, n_results = 0;
    s_arr_t earr[11];
    static const uint32_t e_oids[11] = {S_OID_TEXT, S_OID_INT8, S_OID_TEXT,  S_OID_INT8,
                                        S_OID_TEXT, S_OID_TEXT, S_OID_TEXT,  S_OID_UUID,
                                        S_OID_BYTEA, S_OID_BYTEA, S_OID_BYTEA};
    s_params_t p;
    for (int k = 0; k < 11; k++)
        s_arr_init(&earr[k], e_oids[k]);
    if (n == 0) {
        rc = PT_STORE_OK;
        goto done;
    }
    if (!tokens || !heads)
        goto done;
    for (size_t i = 0; i < n; i++)
        tokens[i] = evs[i].case_token;
    qsort(tokens, n, sizeof *tokens, s_token_cmp);
    for (size_t i = 0; i < n; i++)
        if (n_tokens == 0 || strcmp(tokens[n_tokens - 1], tokens[i]) != 0)
            tokens[n_tokens++] = tokens[i];
    if (!(token_array = s_text_array(tokens, n_tokens)))
        goto done;
    if ((rc = s_prepare(self, S_HEADS_INIT)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_HEADS_LOCK)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_EVENTS_INSERT_MANY)) != PT_STORE_OK)
        goto done;
    if ((rc = s_pipe_enter(self)) != PT_STORE_OK ||
        (rc = s_send_heads(self, token_array)) != PT_STORE_OK)
        goto done;
    n_results = 2;
    if ((rc = s_pipe_collect(self, n_results, results)) != PT_STORE_OK ||
        (rc = s_heads_from(self, results[1], tokens, n_tokens, heads)) != PT_STORE_OK)
        goto done;
    s_clear_all(results, n_results);
    n_results = 0;
    for (size_t i = 0; i < n; i++) {
        pt_trail_event_t *ev = &evs[i];
        s_head_t *h = bsearch(ev->case_token, heads, n_tokens, sizeof *heads, s_head_cmp);
        uint8_t hash[32];
        if (!h) {
            rc = PT_STORE_ERROR;
            goto done;
        }
        ev->seq = h->last_seq + 1;
        if (pt_trail_hash(h->last_hash, ev, hash)) {
            rc = PT_STORE_ERROR;
            goto done;
        }
        s_arr_text(&earr[0], ev->case_token);
        s_arr_int(&earr[1], (int64_t)ev->seq);
        s_arr_text(&earr[2], ev->kind);
        s_arr_int(&earr[3], ev->at_ms);
        s_arr_text(&earr[4], ev->actor ? ev->actor : "");
        s_arr_text(&earr[5], ev->counterparty ? ev->counterparty : "");
        s_arr_text(&earr[6], ev->message_type ? ev->message_type : "");
        s_arr_add(&earr[7], ev->message_id, ev->message_id ? 16 : 0);
        s_arr_add(&earr[8], ev->detail ? ev->detail : (const uint8_t *)"", ev->detail_len);
        s_arr_add(&earr[9], h->last_hash, 32);
        s_arr_add(&earr[10], hash, 32);
        h->last_seq = ev->seq;
        memcpy(h->last_hash, hash, 32);
    }
    int failed = 0;
    for (int k = 0; k < 11; k++)
        failed |= earr[k].failed;
    if (failed) {
        s_set_error(self, "out of memory building events");
        rc = PT_STORE_ERROR;
        goto done;
    }
    p.n = 0;
    for (int k = 0; k < 11; k++)
        s_p_arr(&p, &earr[k]);
    if ((rc = s_send(self, S_EVENTS_INSERT_MANY, &p)) != PT_STORE_OK)
        goto done;
    n_results = 1;
    rc = s_pipe_collect(self, n_results, results);
done:
    s_clear_all(results, n_results);
    s_pipe_exit(self);
    for (int k = 0; k < 11; k++)
        s_arr_free(&earr[k]);
    free(token_array);
    free(heads);
    free(tokens);
    return rc;
}

static pt_store_result_t s_deadline_sweep(pt_store_t *self, s_stmt_id_t stmt, int64_t now_ms,
                                          size_t max, const char *const *kinds, size_t n_kinds,
                                          const char *message_type, size_t *count_out)
{
    PGresult *res = NULL;
    pt_trail_event_t *evs = NULL;
    char (*parties)[PT_STORE_ORG_ID_MAX + PT_STORE_PARTIES_MAX + 2] = NULL;
    s_params_t p;
    pt_store_result_t rc;
    size_t count = 0;
    if (count_out)
        *count_out = 0;
    if (!self)
        return PT_STORE_ERROR;
    if (max == 0)
        return PT_STORE_OK;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_int(&p, now_ms);
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    if ((rc = s_exec(self, stmt, &p, &res)) != PT_STORE_OK)
        goto error;
    /* Every event of the sweep in one multi-row append (s_append_events). */
    size_t n_rows = (size_t)PQntuples(res);
    evs = calloc(n_rows * n_kinds + 1, sizeof *evs);
    parties = calloc(n_rows + 1, sizeof *parties);
    if (!evs || !parties) {
        rc = PT_STORE_ERROR;
        goto error;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        const char *token = s_get_text(res, row, 0), *kind = s_get_text(res, row, 1),
                   *initiator = s_get_text(res, row, 2), *counterparty = s_get_text(res, row, 3);
        if (!token || !kind || !initiator || !counterparty) {
            s_set_error(self, "lifecycle row %d of a deadline sweep is malformed", row);
            rc = PT_STORE_ERROR;
            goto error;
        }
        snprintf(parties[row], sizeof parties[row], "%s,%s", initiator, counterparty);
        for (size_t k = 0; k < n_kinds; k++)
            evs[count * n_kinds + k] = (pt_trail_event_t){.at_ms = now_ms,
                                                          .kind = kinds[k],
                                                          .case_token = token,
                                                          .actor = "broker",
                                                          .counterparty = parties[row],
                                                          .message_type = message_type,
                                                          .message_id = NULL,
                                                          .detail = (const uint8_t *)"",
                                                          .detail_len = 0};
        count++;
    }
    if ((rc = s_append_events(self, evs, count * n_kinds)) != PT_STORE_OK)
        goto error;
    PQclear(res);
    res = NULL;
    free(evs);
    free(parties);
    if (count == 0) {
        s_rollback(self);
        return PT_STORE_OK;
    }
    if ((rc = s_command(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    if (count_out)
        *count_out = count;
    return PT_STORE_OK;

error:
    PQclear(res);
    free(evs);
    free(parties);
    s_rollback(self);
    return rc;
}

pt_store_result_t pt_store_lifecycle_expire(pt_store_t *self, int64_t now_ms, size_t max,
                                            size_t *expired)
{
    static const char *const kinds[] = {"overdue", "state:expired"};
    return s_deadline_sweep(self, S_LC_EXPIRE, now_ms, max, kinds, 2, "", expired);
}

pt_store_result_t pt_store_lifecycle_follow_up_overdue(pt_store_t *self, int64_t now_ms,
                                                       size_t max, size_t *raised)
{
    static const char *const kinds[] = {"overdue"};
    return s_deadline_sweep(self, S_LC_FOLLOW_UP_OVERDUE, now_ms, max, kinds, 1,
                            "reintegration.followup", raised);
}

pt_store_result_t pt_store_overdue_list(pt_store_t *self, const char *org, size_t max,
                                        pt_store_overdue_fn *fn, void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, org ? org : "");
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    if ((rc = s_exec(self, S_OVERDUE_LIST, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int row = 0; row < PQntuples(res); row++) {
        pt_store_overdue_t item;
        memset(&item, 0, sizeof item);
        if (s_copy_text(res, row, 0, item.case_token, sizeof item.case_token) ||
            s_get_fixed(res, row, 1, item.correlation_id, 16) ||
            s_copy_text(res, row, 2, item.kind, sizeof item.kind) ||
            s_copy_text(res, row, 3, item.state, sizeof item.state) ||
            s_copy_text(res, row, 4, item.deadline, sizeof item.deadline) ||
            s_get_int64(res, row, 5, &item.due_at_ms) ||
            s_get_int64(res, row, 6, &item.overdue_since_ms) ||
            s_copy_text(res, row, 7, item.initiator, sizeof item.initiator) ||
            s_copy_text(res, row, 8, item.counterparty, sizeof item.counterparty)) {
            s_set_error(self, "overdue row %d is malformed", row);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        fn(&item, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- notices (007_notices.sql) ---------------------------------------------------- */

pt_store_result_t pt_store_notices_pending(pt_store_t *self, const char *org, int unsent_only,
                                           size_t max, pt_store_notice_fn *fn, void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, org ? org : "");
    s_p_text(&p, unsent_only ? "true" : "false");
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    if ((rc = s_exec(self, S_NOTICES_PENDING, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int row = 0; row < PQntuples(res); row++) {
        pt_store_notice_t notice;
        memset(&notice, 0, sizeof notice);
        if (s_get_int64(res, row, 0, &notice.notice_id) ||
            s_copy_text(res, row, 1, notice.org_id, sizeof notice.org_id) ||
            s_copy_text(res, row, 2, notice.kind, sizeof notice.kind) ||
            s_copy_text(res, row, 3, notice.case_token, sizeof notice.case_token) ||
            s_get_fixed(res, row, 4, notice.correlation_id, 16) ||
            s_copy_text(res, row, 5, notice.message_type, sizeof notice.message_type) ||
            s_get_int64(res, row, 6, &notice.due_at_ms) ||
            s_get_int64(res, row, 7, &notice.created_at_ms)) {
            s_set_error(self, "notice row %d is malformed", row);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        fn(&notice, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_notice_sent(pt_store_t *self, int64_t notice_id, int64_t now_ms)
{
    s_params_t p;
    pt_store_result_t rc;
    if (!self)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, notice_id);
    s_p_int(&p, now_ms);
    return s_exec0(self, S_NOTICE_SENT, &p);
}

pt_store_result_t pt_store_notice_ack(pt_store_t *self, const char *org, int64_t notice_id,
                                      int64_t now_ms)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !org)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, notice_id);
    s_p_text(&p, org);
    s_p_int(&p, now_ms);
    if ((rc = s_exec(self, S_NOTICE_ACK, &p, &res)) != PT_STORE_OK)
        return rc;
    rc = PQntuples(res) == 1 ? PT_STORE_OK : PT_STORE_NOT_FOUND;
    PQclear(res);
    return rc;
}

/* --- deliveries ----------------------------------------------------------------- */

pt_store_result_t pt_store_due_deliveries(pt_store_t *self, const char *recipient, int64_t now_ms,
                                          size_t max, pt_store_delivery_fn *fn, void *arg)
{
    return pt_store_due_deliveries_ex(self, recipient, now_ms, max, 1, fn, arg);
}

pt_store_result_t pt_store_due_deliveries_ex(pt_store_t *self, const char *recipient,
                                             int64_t now_ms, size_t max, int retries,
                                             pt_store_delivery_fn *fn, void *arg)
{
    PGresult *results[4] = {NULL, NULL, NULL, NULL};
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !recipient || !fn)
        return PT_STORE_ERROR;
    if (max == 0)
        return PT_STORE_OK;
    if ((rc = s_ready(self)) != PT_STORE_OK || (rc = s_prepare(self, S_HOT_TXN)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_DUE)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, recipient);
    s_p_int(&p, now_ms);
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    s_p_text(&p, self->instance);
    s_p_int(&p, self->lease_ms);
    s_p_int(&p, self->delivery_window);
    s_p_text(&p, retries ? "true" : "false");
    /* One round trip: the statement in a transaction of its own under the hot
       settings (S_HOT_TXN_SQL: its generic plan, not 1 ms of planning per pass). */
    if ((rc = s_pipe_enter(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_send_begin_hot(self)) != PT_STORE_OK ||
        (rc = s_send(self, S_DUE, &p)) != PT_STORE_OK ||
        (rc = s_send_sql(self, "COMMIT")) != PT_STORE_OK ||
        (rc = s_pipe_collect(self, 4, results)) != PT_STORE_OK)
        goto error;
    if (strcmp(PQcmdStatus(results[3]), "COMMIT") != 0) {
        s_set_error(self, "commit did not commit");
        rc = PT_STORE_UNAVAILABLE;
        goto error;
    }
    s_pipe_exit(self);
    const PGresult *res = results[2];
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_delivery_t d;
        int64_t attempts;
        memset(&d, 0, sizeof d);
        if (s_get_int64(res, i, 0, &d.delivery_id) || s_get_fixed(res, i, 1, d.message_id, 16) ||
            PQgetisnull(res, i, 2) || s_get_int64(res, i, 3, &attempts) || attempts < 0 ||
            attempts > UINT32_MAX) {
            s_set_error(self, "delivery row %d is malformed", i);
            s_clear_all(results, 4);
            return PT_STORE_ERROR;
        }
        d.envelope = (const uint8_t *)PQgetvalue(res, i, 2);
        d.envelope_len = (size_t)PQgetlength(res, i, 2);
        d.attempts = (uint32_t)attempts;
        fn(&d, arg);
    }
    s_clear_all(results, 4);
    return PT_STORE_OK;

error:
    s_clear_all(results, 4);
    s_pipe_exit(self);
    s_rollback(self);
    return rc;
}

/* One event that follows a delivery ("delivered" or "acknowledged"), pointing
   into the result of the UPDATE that caused it. */
typedef struct {
    size_t item;                 /* index into the caller's items */
    const char *case_token;
    const char *actor;           /* the recipient */
    const char *counterparty;    /* the sender */
    const char *message_type;
    uint8_t message_id[16];
    uint8_t header[32];
    uint8_t correlation_id[16];
    int lifecycle_moved;         /* append "state:<...>" right after it */
} s_follow_t;

/* Inside the caller's open transaction (pipeline mode off): locks the chain
   heads of every follow's case (sorted, like submit_batch, then the lifecycle
   rows, in that order), moves the lifecycles that wait for exactly this
   (lc_stmt: only the initiator's message), appends for each follow, in order,
   its event `kind` and, if its lifecycle moved, `state_kind`, and COMMITs.
   Three round trips whatever n is. */
static pt_store_result_t s_follow_commit(pt_store_t *self, s_follow_t *f, size_t n, int64_t at_ms,
                                         const char *kind, s_stmt_id_t lc_stmt,
                                         const char *state_kind)
{
    pt_store_result_t rc = PT_STORE_ERROR;
    const char **tokens = malloc((n ? n : 1) * sizeof *tokens);
    s_head_t *heads = calloc(n ? n : 1, sizeof *heads);
    char *ids = malloc(n * 37 + 3), *token_array = NULL;
    PGresult **results = calloc(8, sizeof *results);
    size_t n_tokens = 0, n_results = 0;
    s_arr_t earr[11];
    int arrays_ready = 0;
    s_params_t p;
    if (!tokens || !heads || !ids || !results)
        goto done;
    for (size_t i = 0; i < n; i++)
        tokens[i] = f[i].case_token;
    qsort(tokens, n, sizeof *tokens, s_token_cmp);
    for (size_t i = 0; i < n; i++)
        if (n_tokens == 0 || strcmp(tokens[n_tokens - 1], tokens[i]) != 0)
            tokens[n_tokens++] = tokens[i];
    if (!(token_array = s_text_array(tokens, n_tokens)))
        goto done;
    char *w = ids;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        s_uuid_text(f[i].message_id, w);
        w += 36;
    }
    *w++ = '}';
    *w = '\0';
    if ((rc = s_prepare(self, S_HEADS_INIT)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_HEADS_LOCK)) != PT_STORE_OK ||
        (rc = s_prepare(self, S_EVENTS_INSERT_MANY)) != PT_STORE_OK ||
        (rc = s_prepare(self, lc_stmt)) != PT_STORE_OK)
        goto done;
    if ((rc = s_pipe_enter(self)) != PT_STORE_OK ||
        (rc = s_send_heads(self, token_array)) != PT_STORE_OK)
        goto done;
    p.n = 0;
    s_p_text(&p, ids);
    s_p_int(&p, at_ms);
    if ((rc = s_send(self, lc_stmt, &p)) != PT_STORE_OK)
        goto done;
    n_results = 3;
    if ((rc = s_pipe_collect(self, n_results, results)) != PT_STORE_OK)
        goto done;
    PGresult *moved = results[2];
    if ((rc = s_heads_from(self, results[1], tokens, n_tokens, heads)) != PT_STORE_OK)
        goto done;
    /* A lifecycle moved once; the move belongs to the first message of the batch
       (in order) that could have moved it, as if they had been applied one by one. */
    for (int row = 0; row < PQntuples(moved); row++) {
        uint8_t correlation[16];
        const char *initiator = s_get_text(moved, row, 1);
        if (s_get_fixed(moved, row, 0, correlation, 16) || !initiator) {
            s_set_error(self, "lifecycle row is malformed");
            rc = PT_STORE_ERROR;
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            if (memcmp(f[i].correlation_id, correlation, 16) == 0 &&
                strcmp(f[i].counterparty, initiator) == 0) {
                f[i].lifecycle_moved = 1;
                break;
            }
    }
    s_clear_all(results, n_results);
    n_results = 0;

    size_t queued = 0;
    static const uint32_t e_oids[11] = {S_OID_TEXT, S_OID_INT8, S_OID_TEXT,  S_OID_INT8,
                                        S_OID_TEXT, S_OID_TEXT, S_OID_TEXT,  S_OID_UUID,
                                        S_OID_BYTEA, S_OID_BYTEA, S_OID_BYTEA};
    for (int k = 0; k < 11; k++)
        s_arr_init(&earr[k], e_oids[k]);
    arrays_ready = 1;
    for (size_t i = 0; i < n; i++) {
        s_head_t *h = bsearch(f[i].case_token, heads, n_tokens, sizeof *heads, s_head_cmp);
        if (!h) {
            rc = PT_STORE_ERROR;
            goto done;
        }
        for (int k = 0; k < 1 + f[i].lifecycle_moved; k++) {
            pt_trail_event_t ev = {.seq = h->last_seq + 1,
                                   .at_ms = at_ms,
                                   .kind = k == 0 ? kind : state_kind,
                                   .case_token = f[i].case_token,
                                   .actor = f[i].actor,
                                   .counterparty = f[i].counterparty,
                                   .message_type = f[i].message_type,
                                   .message_id = f[i].message_id,
                                   .detail = f[i].header,
                                   .detail_len = 32};
            uint8_t hash[32];
            if (pt_trail_hash(h->last_hash, &ev, hash)) {
                rc = PT_STORE_ERROR;
                goto done;
            }
            s_arr_text(&earr[0], ev.case_token);
            s_arr_int(&earr[1], (int64_t)ev.seq);
            s_arr_text(&earr[2], ev.kind);
            s_arr_int(&earr[3], ev.at_ms);
            s_arr_text(&earr[4], ev.actor);
            s_arr_text(&earr[5], ev.counterparty);
            s_arr_text(&earr[6], ev.message_type);
            s_arr_add(&earr[7], ev.message_id, 16);
            s_arr_add(&earr[8], ev.detail, 32);
            s_arr_add(&earr[9], h->last_hash, 32);
            s_arr_add(&earr[10], hash, 32);
            h->last_seq = ev.seq;
            memcpy(h->last_hash, hash, 32);
        }
    }
    int failed = 0;
    for (int k = 0; k < 11; k++)
        failed |= earr[k].failed;
    if (failed) {
        s_set_error(self, "out of memory building events");
        rc = PT_STORE_ERROR;
        goto done;
    }
    p.n = 0;
    for (int k = 0; k < 11; k++)
        s_p_arr(&p, &earr[k]);
    if ((rc = s_send(self, S_EVENTS_INSERT_MANY, &p)) != PT_STORE_OK)
        goto done;
    queued++;
    if ((rc = s_send_sql(self, "COMMIT")) != PT_STORE_OK)
        goto done;
    queued++;
    n_results = queued;
    if ((rc = s_pipe_collect(self, n_results, results)) != PT_STORE_OK)
        goto done;
    if (strcmp(PQcmdStatus(results[queued - 1]), "COMMIT") != 0) {
        s_set_error(self, "commit did not commit");
        rc = PT_STORE_UNAVAILABLE;
        goto done;
    }
    rc = PT_STORE_OK;
done:
    if (arrays_ready) {
        for (int k = 0; k < 11; k++)
            s_arr_free(&earr[k]);
    }
    if (results)
        s_clear_all(results, n_results);
    s_pipe_exit(self);
    free(results);
    free(token_array);
    free(ids);
    free(heads);
    free(tokens);
    return rc;
}

/* Reads one follow from columns first.. of an UPDATE ... RETURNING row:
   recipient, message_id, case_token, sender, message_type, header_sha256,
   correlation_id. */
static int s_follow_from(const PGresult *res, int row, int first, s_follow_t *f)
{
    memset(f, 0, sizeof *f);
    f->actor = s_get_text(res, row, first);
    f->case_token = s_get_text(res, row, first + 2);
    f->counterparty = s_get_text(res, row, first + 3);
    f->message_type = s_get_text(res, row, first + 4);
    if (!f->actor || !f->case_token || !f->counterparty || !f->message_type ||
        s_get_fixed(res, row, first + 1, f->message_id, 16) ||
        s_get_fixed(res, row, first + 5, f->header, 32) ||
        s_get_fixed(res, row, first + 6, f->correlation_id, 16))
        return -1;
    return 0;
}

/* A bigint[] literal of n values. Caller frees; NULL when out of memory. */
static char *s_int_array(const int64_t *values, size_t stride, size_t n)
{
    char *out = malloc(n * 21 + 3), *w = out;
    if (!out)
        return NULL;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        const int64_t *v = (const int64_t *)((const char *)values + i * stride);
        w += sprintf(w, i ? ",%lld" : "%lld", (long long)*v);
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

pt_store_result_t pt_store_mark_sent_batch(pt_store_t *self, pt_store_sent_t *items, size_t n,
                                           int64_t now_ms)
{
    PGresult *res = NULL;
    s_follow_t *f = NULL;
    char *ids = NULL, *retry = NULL;
    size_t nf = 0;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || (n > 0 && !items) || n > (size_t)INT32_MAX / 64)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < n; i++)
        items[i].result = PT_STORE_NOT_FOUND;
    if (n == 0)
        return PT_STORE_OK;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    rc = PT_STORE_ERROR;
    ids = s_int_array(&items[0].delivery_id, sizeof *items, n);
    retry = s_int_array(&items[0].retry_at_ms, sizeof *items, n);
    f = calloc(n, sizeof *f);
    if (!ids || !retry || !f)
        goto error;
    if ((rc = s_begin_hot(self)) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_text(&p, ids);
    s_p_text(&p, retry);
    s_p_int(&p, now_ms);
    if ((rc = s_exec(self, S_MARK_SENT_BATCH, &p, &res)) != PT_STORE_OK)
        goto error;
    /* Events in the caller's order, not the order rows came back in. */
    for (size_t i = 0; i < n; i++) {
        for (int row = 0; row < PQntuples(res); row++) {
            int64_t id, attempts;
            if (s_get_int64(res, row, 0, &id) || s_get_int64(res, row, 1, &attempts)) {
                s_set_error(self, "delivery row is malformed");
                rc = PT_STORE_ERROR;
                goto error;
            }
            if (id != items[i].delivery_id)
                continue;
            int seen = 0;   /* the same id twice: one update, one event */
            for (size_t j = 0; j < i && !seen; j++)
                seen = items[j].delivery_id == id;
            items[i].result = PT_STORE_OK;
            if (attempts == 1 && !seen) {
                if (s_follow_from(res, row, 2, &f[nf])) {
                    s_set_error(self, "delivery row is malformed");
                    rc = PT_STORE_ERROR;
                    goto error;
                }
                f[nf++].item = i;
            }
            break;
        }
    }
    if (nf == 0) {
        rc = s_command(self, "COMMIT");
    } else {
        rc = s_follow_commit(self, f, nf, now_ms, "delivered", S_LC_DELIVERED, "state:delivered");
    }
    if (rc != PT_STORE_OK)
        goto error;
    PQclear(res);
    free(f);
    free(ids);
    free(retry);
    return PT_STORE_OK;

error:
    PQclear(res);
    free(f);
    free(ids);
    free(retry);
    s_rollback(self);
    for (size_t i = 0; i < n; i++)
        items[i].result = rc;
    return rc;
}

pt_store_result_t pt_store_mark_sent(pt_store_t *self, int64_t delivery_id, int64_t now_ms,
                                     int64_t retry_at_ms)
{
    pt_store_sent_t item = {.delivery_id = delivery_id, .retry_at_ms = retry_at_ms};
    pt_store_result_t rc = pt_store_mark_sent_batch(self, &item, 1, now_ms);
    return rc == PT_STORE_OK ? item.result : rc;
}

pt_store_result_t pt_store_ack_batch(pt_store_t *self, pt_store_ack_item_t *items, size_t n,
                                     int64_t now_ms)
{
    PGresult *res = NULL, *exists = NULL;
    s_follow_t *f = NULL;
    char *ids = NULL, *recipients = NULL;
    const char **names = NULL;
    size_t nf = 0;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || (n > 0 && !items) || n > (size_t)INT32_MAX / 64)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].recipient)
            return PT_STORE_ERROR;
        items[i].result = PT_STORE_NOT_FOUND;
    }
    if (n == 0)
        return PT_STORE_OK;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    rc = PT_STORE_ERROR;
    names = malloc(n * sizeof *names);
    ids = malloc(n * 37 + 3);
    f = calloc(n, sizeof *f);
    if (!names || !ids || !f)
        goto error;
    char *w = ids;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        names[i] = items[i].recipient;
        if (i)
            *w++ = ',';
        s_uuid_text(items[i].message_id, w);
        w += 36;
    }
    *w++ = '}';
    *w = '\0';
    if (!(recipients = s_text_array(names, n)))
        goto error;
    if ((rc = s_begin_hot(self)) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_text(&p, recipients);
    s_p_text(&p, ids);
    s_p_int(&p, now_ms);
    if ((rc = s_exec(self, S_ACK_BATCH, &p, &res)) != PT_STORE_OK)
        goto error;
    size_t n_missing = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;   /* acked earlier in this batch: a repeated ack */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(items[j].recipient, items[i].recipient) == 0 &&
                   memcmp(items[j].message_id, items[i].message_id, 16) == 0;
        if (seen) {
            items[i].result = PT_STORE_DUPLICATE;
            continue;
        }
        for (int row = 0; row < PQntuples(res); row++) {
            if (s_follow_from(res, row, 0, &f[nf])) {
                s_set_error(self, "delivery row is malformed");
                rc = PT_STORE_ERROR;
                goto error;
            }
            if (strcmp(f[nf].actor, items[i].recipient) != 0 ||
                memcmp(f[nf].message_id, items[i].message_id, 16) != 0)
                continue;
            items[i].result = PT_STORE_OK;
            f[nf++].item = i;
            break;
        }
        if (items[i].result != PT_STORE_OK)
            n_missing++;   /* not updated: already acked, or no such delivery */
    }
    if (n_missing > 0) {
        /* Same arrays: tells an old ack (DUPLICATE) from a wrong one (NOT_FOUND). */
        p.n = 2;
        if ((rc = s_exec(self, S_ACK_EXISTS_BATCH, &p, &exists)) != PT_STORE_OK)
            goto error;
        for (size_t i = 0; i < n; i++) {
            if (items[i].result != PT_STORE_NOT_FOUND)
                continue;
            for (int row = 0; row < PQntuples(exists); row++) {
                const char *r = s_get_text(exists, row, 0);
                uint8_t id[16];
                if (r && !s_get_fixed(exists, row, 1, id, 16) &&
                    strcmp(r, items[i].recipient) == 0 && memcmp(id, items[i].message_id, 16) == 0) {
                    items[i].result = PT_STORE_DUPLICATE;
                    break;
                }
            }
        }
    }
    if (nf == 0)
        rc = s_command(self, "ROLLBACK");   /* nothing changed */
    else
        rc = s_follow_commit(self, f, nf, now_ms, "acknowledged", S_LC_RECEIVED, "state:received");
    if (rc != PT_STORE_OK)
        goto error;
    PQclear(res);
    PQclear(exists);
    free(f);
    free(ids);
    free(names);
    free(recipients);
    return PT_STORE_OK;

error:
    PQclear(res);
    PQclear(exists);
    free(f);
    free(ids);
    free(names);
    free(recipients);
    s_rollback(self);
    for (size_t i = 0; i < n; i++)
        items[i].result = rc;
    return rc;
}

pt_store_result_t pt_store_ack(pt_store_t *self, const char *recipient, const uint8_t *message_id,
                               int64_t now_ms)
{
    if (!recipient || !message_id)
        return PT_STORE_ERROR;
    pt_store_ack_item_t item = {.recipient = recipient};
    memcpy(item.message_id, message_id, 16);
    pt_store_result_t rc = pt_store_ack_batch(self, &item, 1, now_ms);
    return rc == PT_STORE_OK ? item.result : rc;
}

int64_t pt_store_next_due_ms(pt_store_t *self)
{
    PGresult *res = NULL;
    s_params_t p;
    int64_t next = INT64_MAX;
    if (!self || s_ready(self) != PT_STORE_OK)
        return INT64_MAX;
    p.n = 0;
    s_p_int(&p, s_now_ms());
    if (s_exec(self, S_NEXT_DUE, &p, &res) != PT_STORE_OK)
        return INT64_MAX;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) || s_get_int64(res, 0, 0, &next))
        next = INT64_MAX;
    PQclear(res);
    return next;
}

pt_store_result_t pt_store_recipients_with_due(pt_store_t *self, int64_t now_ms,
                                               void (*fn)(const char *recipient, void *arg),
                                               void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, now_ms);
    if ((rc = s_exec(self, S_RECIPIENTS_DUE, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *r = s_get_text(res, i, 0);
        if (r)
            fn(r, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- trail ------------------------------------------------------------------------- */

pt_store_result_t pt_store_trail(pt_store_t *self, const char *case_token, pt_store_event_fn *fn,
                                 void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !case_token || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, case_token);
    if ((rc = s_exec(self, S_TRAIL, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_event_t e;
        int64_t seq;
        uint8_t message_id[16];
        memset(&e, 0, sizeof e);
        e.event.kind = s_get_text(res, i, 2);
        e.event.case_token = s_get_text(res, i, 3);
        e.event.actor = s_get_text(res, i, 4);
        e.event.counterparty = s_get_text(res, i, 5);
        e.event.message_type = s_get_text(res, i, 6);
        int bad = s_get_int64(res, i, 0, &seq) || seq < 1 ||
                  s_get_int64(res, i, 1, &e.event.at_ms) || !e.event.kind ||
                  !e.event.case_token || !e.event.actor || !e.event.counterparty ||
                  !e.event.message_type || PQgetisnull(res, i, 8) ||
                  s_get_fixed(res, i, 9, e.prev_hash, 32) || s_get_fixed(res, i, 10, e.hash, 32);
        if (!bad && !PQgetisnull(res, i, 7)) {
            bad = s_get_fixed(res, i, 7, message_id, 16);
            e.event.message_id = message_id;
        }
        if (bad) {
            s_set_error(self, "case event row %d is malformed", i);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        e.event.seq = (uint64_t)seq;
        e.event.detail = (const uint8_t *)PQgetvalue(res, i, 8);
        e.event.detail_len = (size_t)PQgetlength(res, i, 8);
        fn(&e, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- audit log, checkpoints, auditors, retention (issue 4) --------------------------- */

pt_store_result_t pt_store_audit_root(pt_store_t *self, uint64_t *size, uint8_t root[32])
{
    PGresult *res = NULL;
    pt_store_result_t rc;
    pt_merkle_frontier_t frontier;
    int64_t n;
    if (!self || !size || !root)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_exec(self, S_AUDIT_HEAD, NULL, &res)) != PT_STORE_OK)
        return rc;
    if (PQntuples(res) != 1 || s_get_int64(res, 0, 0, &n) || n < 0 || PQgetisnull(res, 0, 1) ||
        pt_audit_frontier_decode((uint64_t)n, (const uint8_t *)PQgetvalue(res, 0, 1),
                                 (size_t)PQgetlength(res, 0, 1), &frontier) != 0) {
        s_set_error(self, "audit_head row is malformed");
        PQclear(res);
        return PT_STORE_ERROR;
    }
    PQclear(res);
    *size = (uint64_t)n;
    pt_merkle_frontier_root(&frontier, root);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_checkpoint_put(pt_store_t *self, const pt_store_checkpoint_t *cp)
{
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !cp || cp->tree_size > INT64_MAX)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, (int64_t)cp->tree_size);
    s_p_bin(&p, cp->root, 32);
    s_p_int(&p, cp->at_ms);
    s_p_bin(&p, cp->signer, 32);
    s_p_bin(&p, cp->signature, 64);
    s_p_text(&p, self->instance);
    s_p_int(&p, (int64_t)cp->seq);
    s_p_bin(&p, cp->prev_hash, 32);
    return s_exec0(self, S_CHECKPOINT_PUT, &p);
}

pt_store_result_t pt_store_checkpoint_get(pt_store_t *self, uint64_t tree_size,
                                          pt_store_checkpoint_t *out)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    int64_t size, seq = 0;
    if (!self || !out)
        return PT_STORE_ERROR;
    memset(out, 0, sizeof *out);
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    uint64_t covering = 0;
    if (tree_size & PT_STORE_CHECKPOINT_COVERING) {
        covering = tree_size & ~PT_STORE_CHECKPOINT_COVERING;
        tree_size = 0;
        if (covering == 0)
            covering = 1;
    }
    p.n = 0;
    s_p_int(&p, covering ? -1 : (int64_t)tree_size);
    s_p_int(&p, (int64_t)covering);
    if ((rc = s_exec(self, S_CHECKPOINT_GET, &p, &res)) != PT_STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PT_STORE_NOT_FOUND;
    }
    if (s_get_int64(res, 0, 0, &size) || size < 0 || s_get_fixed(res, 0, 1, out->root, 32) ||
        s_get_int64(res, 0, 2, &out->at_ms) || s_get_fixed(res, 0, 3, out->signer, 32) ||
        s_get_fixed(res, 0, 4, out->signature, 64) || s_get_int64(res, 0, 5, &seq) || seq < 0 ||
        (seq > 0 && s_get_fixed(res, 0, 6, out->prev_hash, 32))) {
        s_set_error(self, "checkpoint row is malformed");
        PQclear(res);
        return PT_STORE_ERROR;
    }
    out->tree_size = (uint64_t)size;
    out->seq = (uint64_t)seq;
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_leaves(pt_store_t *self, uint64_t n, uint8_t **leaves_p)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    uint8_t *leaves = NULL;
    if (!self || !leaves_p || n > INT32_MAX)
        return PT_STORE_ERROR;
    *leaves_p = NULL;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, (int64_t)n);
    if ((rc = s_exec(self, S_AUDIT_LEAVES, &p, &res)) != PT_STORE_OK)
        return rc;
    if ((uint64_t)PQntuples(res) != n || !(leaves = malloc(n ? n * 32 : 1))) {
        s_set_error(self, "audit log: expected %llu leaves, got %d", (unsigned long long)n,
                    PQntuples(res));
        PQclear(res);
        return PT_STORE_ERROR;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (s_get_fixed(res, (int)i, 0, leaves + i * 32, 32)) {
            s_set_error(self, "audit log leaf %llu is malformed", (unsigned long long)i);
            free(leaves);
            PQclear(res);
            return PT_STORE_ERROR;
        }
    }
    PQclear(res);
    *leaves_p = leaves;
    return PT_STORE_OK;
}

pt_store_result_t pt_store_event_append(pt_store_t *self, const pt_trail_event_t *ev)
{
    pt_store_result_t rc;
    if (!self || !ev || !ev->kind || !ev->case_token || !ev->case_token[0])
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    pt_trail_event_t copy = *ev;
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK)
        return rc;
    if ((rc = s_append_events(self, &copy, 1)) != PT_STORE_OK ||
        (rc = s_command(self, "COMMIT")) != PT_STORE_OK) {
        s_rollback(self);
        return rc;
    }
    return PT_STORE_OK;
}

pt_store_result_t pt_store_auditor_put(pt_store_t *self, const pt_store_auditor_t *auditor)
{
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !auditor || !auditor->auditor_id[0] || !auditor->scope[0])
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, auditor->auditor_id);
    s_p_text(&p, auditor->scope);
    s_p_bin(&p, auditor->sign_public, 32);
    s_p_bin(&p, auditor->curve_public, 32);
    return s_exec0(self, S_AUDITOR_PUT, &p);
}

pt_store_result_t pt_store_load_auditors(pt_store_t *self, pt_store_auditor_fn *fn, void *arg)
{
    PGresult *res = NULL;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_exec(self, S_AUDITOR_LOAD, NULL, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_auditor_t a;
        memset(&a, 0, sizeof a);
        if (s_copy_text(res, i, 0, a.auditor_id, sizeof a.auditor_id) ||
            s_copy_text(res, i, 1, a.scope, sizeof a.scope) ||
            s_get_fixed(res, i, 2, a.sign_public, 32) || s_get_fixed(res, i, 3, a.curve_public, 32))
            continue;
        fn(&a, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_case_parties(pt_store_t *self, const char *case_token,
                                        void (*fn)(const char *org, void *arg), void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !case_token || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, case_token);
    if ((rc = s_exec(self, S_CASE_PARTIES, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *org = s_get_text(res, i, 0);
        if (org)
            fn(org, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* Runs a read-only query with TEXT results and hands every row to fn as strings
   (NULL -> ""). */
static pt_store_result_t s_rows(pt_store_t *self, s_stmt_id_t id, const s_params_t *p,
                                pt_store_row_fn *fn, void *arg)
{
    pt_store_result_t rc;
    if ((rc = s_ready(self)) != PT_STORE_OK || (rc = s_prepare(self, id)) != PT_STORE_OK)
        return rc;
    PGresult *res = PQexecPrepared(self->conn, s_stmts[id].name, p->n, p->values, p->lengths,
                                   p->formats, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = s_classify(self, res);
        PQclear(res);
        return rc;
    }
    int cols = PQnfields(res);
    const char *cells[16];
    if (cols > 16)
        cols = 16;
    for (int i = 0; i < PQntuples(res); i++) {
        for (int c = 0; c < cols; c++)
            cells[c] = PQgetisnull(res, i, c) ? "" : PQgetvalue(res, i, c);
        fn(cells, (size_t)cols, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_activity(pt_store_t *self, const char *org, int64_t from_ms,
                                          int64_t until_ms, int64_t after_at_ms,
                                          int64_t after_event_id, size_t max, pt_store_row_fn *fn,
                                          void *arg)
{
    s_params_t p;
    if (!self || !org || !fn)
        return PT_STORE_ERROR;
    p.n = 0;
    s_p_text(&p, org);
    s_p_int(&p, from_ms);
    s_p_int(&p, until_ms);
    s_p_int(&p, (int64_t)max);
    s_p_int(&p, after_at_ms);
    s_p_int(&p, after_event_id);
    return s_rows(self, S_Q_ACTIVITY, &p, fn, arg);
}

pt_store_result_t pt_store_audit_items(pt_store_t *self, const char *kind, const char *state,
                                       int64_t updated_before_ms, const char *scope,
                                       int64_t after_updated_ms, const char *after_correlation,
                                       size_t max, pt_store_row_fn *fn, void *arg)
{
    s_params_t p;
    if (!self || !fn || !after_correlation)
        return PT_STORE_ERROR;
    p.n = 0;
    s_p_text(&p, kind ? kind : "");
    s_p_text(&p, state ? state : "");
    s_p_int(&p, updated_before_ms);
    s_p_int(&p, (int64_t)max);
    s_p_text(&p, scope ? scope : "");
    s_p_int(&p, after_updated_ms);
    s_p_text(&p, after_correlation);
    return s_rows(self, S_Q_ITEMS, &p, fn, arg);
}

pt_store_result_t pt_store_audit_corridors(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                           pt_store_row_fn *fn, void *arg)
{
    s_params_t p;
    if (!self || !fn)
        return PT_STORE_ERROR;
    p.n = 0;
    s_p_int(&p, from_ms);
    s_p_int(&p, until_ms);
    return s_rows(self, S_Q_CORRIDORS, &p, fn, arg);
}

pt_store_result_t pt_store_audit_rejects(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                         pt_store_reject_fn *fn, void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, from_ms);
    s_p_int(&p, until_ms);
    if ((rc = s_exec(self, S_Q_REJECTS, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *sender = s_get_text(res, i, 0), *recipient = s_get_text(res, i, 1);
        const char *kind = s_get_text(res, i, 2);
        if (!sender || !recipient || !kind || PQgetisnull(res, i, 3))
            continue;
        fn(sender, recipient, kind, (const uint8_t *)PQgetvalue(res, i, 3),
           (size_t)PQgetlength(res, i, 3), arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_retention_run(pt_store_t *self, int64_t now_ms, size_t max,
                                         size_t *deleted)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    size_t done = 0;
    if (!self || !deleted)
        return PT_STORE_ERROR;
    *deleted = 0;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, now_ms);
    s_p_int(&p, (int64_t)max);
    if ((rc = s_exec(self, S_RETENTION_DUE, &p, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == PT_STORE_OK; i++) {
        uint8_t id[16];
        uint8_t *stripped = NULL;
        size_t stripped_len = 0;
        if (s_get_fixed(res, i, 0, id, 16) || PQgetisnull(res, i, 1) ||
            pt_audit_strip_payloads((const uint8_t *)PQgetvalue(res, i, 1),
                                    (size_t)PQgetlength(res, i, 1), &stripped,
                                    &stripped_len) != 0) {
            s_set_error(self, "stored envelope %d does not decode; left as it is", i);
            continue;
        }
        s_params_t u;
        u.n = 0;
        s_p_bin(&u, id, 16);
        s_p_bin(&u, stripped, stripped_len);
        s_p_int(&u, now_ms);
        rc = s_exec0(self, S_RETENTION_SET, &u);
        free(stripped);
        if (rc == PT_STORE_OK)
            done++;
    }
    PQclear(res);
    *deleted = done;
    return rc;
}

pt_store_result_t pt_store_leaf_event(pt_store_t *self, uint64_t leaf_index, int64_t *event_id,
                                      uint8_t event_hash[32])
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !event_id || !event_hash || leaf_index > INT64_MAX)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, (int64_t)leaf_index);
    if ((rc = s_exec(self, S_LEAF_EVENT, &p, &res)) != PT_STORE_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return PT_STORE_NOT_FOUND;
    }
    if (s_get_int64(res, 0, 0, event_id) || s_get_fixed(res, 0, 1, event_hash, 32)) {
        s_set_error(self, "leaf event row is malformed");
        PQclear(res);
        return PT_STORE_ERROR;
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- issue 6: key history, rotation and revocation ------------------------------- */

/* Runs an unprepared parameterised statement (binary results): for the rare
   administrative statements, so they take no bit of self->prepared. */
static pt_store_result_t s_exec_sql(pt_store_t *self, const char *sql, const s_params_t *p,
                                    PGresult **res_p)
{
    *res_p = NULL;
    PGresult *res = PQexecParams(self->conn, sql, p ? p->n : 0, NULL, p ? p->values : NULL,
                                 p ? p->lengths : NULL, p ? p->formats : NULL, 1);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pt_store_result_t rc = s_classify(self, res);
        PQclear(res);
        return rc;
    }
    *res_p = res;
    return PT_STORE_OK;
}

pt_store_result_t pt_store_load_key_sets(pt_store_t *self, const char *org_id,
                                         pt_store_key_set_fn *fn, void *arg)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn || (org_id && strlen(org_id) >= PT_STORE_ORG_ID_MAX))
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_text(&p, org_id ? org_id : "");
    rc = s_exec_sql(self,
                    "SELECT key_set_id, org_id, sign_public, seal_public, curve_public, "
                    "pt_ts_to_ms(valid_from), pt_ts_to_ms(valid_until), pt_ts_to_ms(revoked_at), "
                    "revoke_reason FROM org_keys WHERE $1 = '' OR org_id = $1 "
                    "ORDER BY org_id, key_set_id",
                    &p, &res);
    if (rc != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_key_set_t set;
        memset(&set, 0, sizeof set);
        if (s_get_int64(res, i, 0, &set.key_set_id) ||
            s_copy_text(res, i, 1, set.org_id, sizeof set.org_id) ||
            s_get_fixed(res, i, 2, set.sign_public, 32) ||
            s_get_fixed(res, i, 3, set.seal_public, 32) ||
            s_get_fixed(res, i, 4, set.curve_public, 32) ||
            s_get_int64(res, i, 5, &set.valid_from_ms) ||
            (!PQgetisnull(res, i, 6) && s_get_int64(res, i, 6, &set.valid_until_ms)) ||
            (!PQgetisnull(res, i, 7) && s_get_int64(res, i, 7, &set.revoked_at_ms)) ||
            (!PQgetisnull(res, i, 8) &&
             s_copy_text(res, i, 8, set.revoke_reason, sizeof set.revoke_reason))) {
            s_set_error(self, "org_keys row %d is malformed", i);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        /* An end at the Unix epoch would read as "none": never written, but be exact. */
        if (!PQgetisnull(res, i, 6) && set.valid_until_ms == 0)
            set.valid_until_ms = 1;
        if (!PQgetisnull(res, i, 7) && set.revoked_at_ms == 0)
            set.revoked_at_ms = 1;
        fn(&set, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* Appends one key event to the chain "keys:<ORG>" inside the caller's transaction. */
static pt_store_result_t s_key_event(pt_store_t *self, const char *kind, const char *org_id,
                                     const uint8_t sign_key_id[32], int64_t now_ms)
{
    char token[PT_STORE_ORG_ID_MAX + 8];
    char type[32];
    snprintf(token, sizeof token, "keys:%s", org_id);
    snprintf(type, sizeof type, "admin.%s", kind);
    pt_trail_event_t ev = {.at_ms = now_ms,
                           .kind = kind,
                           .case_token = token,
                           .actor = "operator",
                           .counterparty = org_id,
                           .message_type = type,
                           .detail = sign_key_id,
                           .detail_len = 32};
    return s_append_events(self, &ev, 1);
}

pt_store_result_t pt_store_key_rotate(pt_store_t *self, const char *org_id,
                                      const uint8_t sign_public[32], const uint8_t seal_public[32],
                                      const uint8_t curve_public[32], int64_t now_ms,
                                      int64_t overlap_ms)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    uint8_t sign_id[32], seal_id[32];
    if (!self || !s_org_valid(org_id) || !sign_public || !seal_public || !curve_public ||
        now_ms <= 0 || overlap_ms < 0 || overlap_ms > PT_STORE_KEY_OVERLAP_MAX_MS)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    pt_sha256(sign_public, 32, sign_id);
    pt_sha256(seal_public, 32, seal_id);
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK)
        goto error;
    /* The organisation's row lock serialises rotations and revocations of one org
       (several brokers may share the database). */
    p.n = 0;
    s_p_text(&p, org_id);
    if ((rc = s_exec_sql(self, "SELECT 1 FROM organisations WHERE org_id = $1 FOR UPDATE", &p,
                         &res)) != PT_STORE_OK)
        goto error;
    if (PQntuples(res) != 1) {
        rc = PT_STORE_NOT_FOUND;
        goto error;
    }
    PQclear(res);
    res = NULL;
    p.n = 0;
    s_p_bin(&p, sign_id, 32);
    s_p_bin(&p, seal_id, 32);
    s_p_bin(&p, curve_public, 32);
    if ((rc = s_exec_sql(self,
                         "SELECT 1 FROM org_keys WHERE sign_key_id = $1::bytea "
                         "OR seal_key_id = $2::bytea OR curve_public = $3::bytea LIMIT 1",
                         &p, &res)) != PT_STORE_OK)
        goto error;
    if (PQntuples(res) != 0) {
        s_set_error(self, "a key of the new set was registered before");
        rc = PT_STORE_CONFLICT;
        goto error;
    }
    PQclear(res);
    res = NULL;
    p.n = 0;
    s_p_text(&p, org_id);
    s_p_int(&p, now_ms + overlap_ms);
    if ((rc = s_exec_sql(self,
                         /* A revoked set's window ends at its revocation
                            (LEAST skips a NULL revoked_at). */
                         "UPDATE org_keys SET valid_until = "
                         "GREATEST(valid_from, LEAST(pt_ms_to_ts($2::bigint), revoked_at)) "
                         "WHERE org_id = $1 AND valid_until IS NULL",
                         &p, &res)) != PT_STORE_OK)
        goto error;
    PQclear(res);
    res = NULL;
    p.n = 0;
    s_p_text(&p, org_id);
    s_p_bin(&p, sign_public, 32);
    s_p_bin(&p, seal_public, 32);
    s_p_bin(&p, curve_public, 32);
    s_p_int(&p, now_ms);
    if ((rc = s_exec_sql(self,
                         "INSERT INTO org_keys (org_id, sign_public, seal_public, curve_public, "
                         "valid_from) VALUES ($1, $2::bytea, $3::bytea, $4::bytea, "
                         "pt_ms_to_ts($5::bigint))",
                         &p, &res)) != PT_STORE_OK)
        goto error;
    PQclear(res);
    res = NULL;
    if ((rc = s_key_event(self, "key_rotated", org_id, sign_id, now_ms)) != PT_STORE_OK ||
        (rc = s_command(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    return PT_STORE_OK;

error:
    PQclear(res);
    s_rollback(self);
    return rc;
}

pt_store_result_t pt_store_key_revoke(pt_store_t *self, const char *org_id, int64_t key_set_id,
                                      int64_t at_ms, const char *reason, int64_t now_ms)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    uint8_t sign_id[32];
    if (!self || !s_org_valid(org_id) || key_set_id <= 0 || at_ms <= 0 || now_ms <= 0 ||
        !reason || !reason[0] || strlen(reason) >= PT_STORE_REASON_MAX)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK)
        goto error;
    p.n = 0;
    s_p_int(&p, key_set_id);
    s_p_text(&p, org_id);
    s_p_int(&p, at_ms);
    s_p_text(&p, reason);
    /* The right-hand sides read the row as it was: an earlier revocation (and its
       reason) is kept. */
    if ((rc = s_exec_sql(self,
                         "UPDATE org_keys SET "
                         "revoke_reason = CASE WHEN revoked_at IS NULL "
                         "OR revoked_at > pt_ms_to_ts($3::bigint) THEN $4 ELSE revoke_reason END, "
                         "revoked_at = CASE WHEN revoked_at IS NULL "
                         "OR revoked_at > pt_ms_to_ts($3::bigint) THEN pt_ms_to_ts($3::bigint) "
                         "ELSE revoked_at END "
                         "WHERE key_set_id = $1::bigint AND org_id = $2 RETURNING sign_key_id",
                         &p, &res)) != PT_STORE_OK)
        goto error;
    if (PQntuples(res) != 1) {
        rc = PT_STORE_NOT_FOUND;
        goto error;
    }
    if (s_get_fixed(res, 0, 0, sign_id, 32)) {
        s_set_error(self, "org_keys: sign_key_id is not 32 bytes");
        rc = PT_STORE_ERROR;
        goto error;
    }
    PQclear(res);
    res = NULL;
    if ((rc = s_key_event(self, "key_revoked", org_id, sign_id, now_ms)) != PT_STORE_OK ||
        (rc = s_command(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    return PT_STORE_OK;

error:
    PQclear(res);
    s_rollback(self);
    return rc;
}

/* --- dead letters (issue 6; 009_dead_letter.sql) ----------------------------------
   Rare, operator-paced or once-a-second statements: run unprepared (s_exec_sql above)
   so that they need no slot in s_stmts. */

/* The columns every dead-letter statement returns, in this order. */
#define S_DEAD_COLUMNS                                                                     \
    "d.delivery_id, m.message_id, m.correlation_id, m.case_token, m.message_type, "        \
    "m.sender, d.recipient, COALESCE(d.dead_reason, ''), d.attempts::bigint, "             \
    "COALESCE(pt_ts_to_ms(d.dead_at), 0), pt_ts_to_ms(m.stored_at), "                      \
    "COALESCE(pt_ts_to_ms(d.expires_at), 0), m.header_sha256"

/* Reads one row of S_DEAD_COLUMNS (plus held_back in column 13 when present). */
static int s_dead_from(const PGresult *res, int row, pt_store_dead_letter_t *out,
                       uint8_t header[32])
{
    int64_t attempts;
    memset(out, 0, sizeof *out);
    if (s_get_int64(res, row, 0, &out->delivery_id) ||
        s_get_fixed(res, row, 1, out->message_id, 16) ||
        s_get_fixed(res, row, 2, out->correlation_id, 16) ||
        s_copy_text(res, row, 3, out->case_token, sizeof out->case_token) ||
        s_copy_text(res, row, 4, out->message_type, sizeof out->message_type) ||
        s_copy_text(res, row, 5, out->sender, sizeof out->sender) ||
        s_copy_text(res, row, 6, out->recipient, sizeof out->recipient) ||
        s_copy_text(res, row, 7, out->reason, sizeof out->reason) ||
        s_get_int64(res, row, 8, &attempts) || attempts < 0 || attempts > UINT32_MAX ||
        s_get_int64(res, row, 9, &out->dead_at_ms) ||
        s_get_int64(res, row, 10, &out->stored_at_ms) ||
        s_get_int64(res, row, 11, &out->expires_at_ms) || s_get_fixed(res, row, 12, header, 32))
        return -1;
    out->attempts = (uint32_t)attempts;
    if (PQnfields(res) > 13 && s_get_int64(res, row, 13, &out->held_back))
        return -1;
    return 0;
}

typedef struct {
    pt_store_dead_letter_t dead;
    uint8_t header[32];
    char kind[PT_STORE_NAME_MAX + 16];
} s_dead_row_t;

static int s_dead_row_cmp(const void *a, const void *b)
{
    const s_dead_row_t *x = a, *y = b;
    return (x->dead.delivery_id > y->dead.delivery_id) - (x->dead.delivery_id < y->dead.delivery_id);
}

/* Runs an UPDATE ... RETURNING S_DEAD_COLUMNS in its own transaction and appends,
   in delivery order, one event per returned row: kind (NULL = "dead_letter:" and
   the row's reason), actor, counterparty the recipient, at now_ms. Marks
   items[i].result OK for the returned ids (NOT_FOUND otherwise) and, after
   COMMIT, hands each row to fn. *count: rows changed. */
static pt_store_result_t s_dead_change(pt_store_t *self, const char *sql, const s_params_t *p,
                                       const char *kind, const char *actor, int64_t now_ms,
                                       pt_store_dead_item_t *items, size_t n_items,
                                       pt_store_dead_letter_fn *fn, void *arg, size_t *count)
{
    PGresult *res = NULL;
    s_dead_row_t *rows = NULL;
    pt_trail_event_t *evs = NULL;
    size_t n = 0;
    pt_store_result_t rc;
    if (count)
        *count = 0;
    for (size_t i = 0; i < n_items; i++)
        items[i].result = PT_STORE_NOT_FOUND;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        goto failed;
    if ((rc = s_command(self, "BEGIN")) != PT_STORE_OK ||
        (rc = s_exec_sql(self, sql, p, &res)) != PT_STORE_OK)
        goto error;
    n = (size_t)PQntuples(res);
    rows = calloc(n ? n : 1, sizeof *rows);
    evs = calloc(n ? n : 1, sizeof *evs);
    if (!rows || !evs) {
        s_set_error(self, "out of memory");
        rc = PT_STORE_ERROR;
        goto error;
    }
    for (size_t i = 0; i < n; i++)
        if (s_dead_from(res, (int)i, &rows[i].dead, rows[i].header) != 0) {
            s_set_error(self, "dead letter row %zu is malformed", i);
            rc = PT_STORE_ERROR;
            goto error;
        }
    PQclear(res);
    res = NULL;
    if (n == 0) {
        s_rollback(self);
        goto done;
    }
    qsort(rows, n, sizeof *rows, s_dead_row_cmp);
    for (size_t i = 0; i < n; i++) {
        s_dead_row_t *r = &rows[i];
        snprintf(r->kind, sizeof r->kind, "%s%s", kind ? kind : "dead_letter:",
                 kind ? "" : r->dead.reason);
        evs[i] = (pt_trail_event_t){.at_ms = now_ms,
                                    .kind = r->kind,
                                    .case_token = r->dead.case_token,
                                    .actor = actor,
                                    .counterparty = r->dead.recipient,
                                    .message_type = r->dead.message_type,
                                    .message_id = r->dead.message_id,
                                    .detail = r->header,
                                    .detail_len = 32};
    }
    if ((rc = s_append_events(self, evs, n)) != PT_STORE_OK ||
        (rc = s_command(self, "COMMIT")) != PT_STORE_OK)
        goto error;
    for (size_t i = 0; i < n_items; i++) {
        s_dead_row_t key = {.dead.delivery_id = items[i].delivery_id};
        if (bsearch(&key, rows, n, sizeof *rows, s_dead_row_cmp))
            items[i].result = PT_STORE_OK;
    }
    if (count)
        *count = n;
    for (size_t i = 0; fn && i < n; i++)
        fn(&rows[i].dead, arg);
done:
    free(evs);
    free(rows);
    return PT_STORE_OK;

error:
    PQclear(res);
    free(evs);
    free(rows);
    s_rollback(self);
failed:
    for (size_t i = 0; i < n_items; i++)
        items[i].result = rc;
    return rc;
}

/* Candidates: expired (priority 1) through deliveries_expiry, offered too often
   (priority 2) among the in-flight deliveries; then locked in delivery order,
   skipping rows another broker holds, and changed only if still offered. */
#define S_DEAD_SWEEP_SQL                                                                    \
    "WITH cand AS ((SELECT x.delivery_id, 1 AS prio FROM deliveries x "                      \
    "WHERE x.state IN ('pending', 'delivered') AND x.expires_at IS NOT NULL "                \
    "AND x.expires_at <= pt_ms_to_ts($1::bigint) ORDER BY x.expires_at LIMIT $3::bigint) "   \
    "UNION ALL (SELECT x.delivery_id, 2 FROM deliveries x WHERE x.state = 'delivered' "     \
    "AND $2::bigint > 0 AND x.attempts >= $2::bigint "                                      \
    "AND x.next_attempt_at <= pt_ms_to_ts($1::bigint) ORDER BY x.next_attempt_at "          \
    "LIMIT $3::bigint)), "                                                                  \
    "pick AS (SELECT delivery_id, min(prio) AS prio FROM cand GROUP BY delivery_id "        \
    "ORDER BY delivery_id LIMIT $3::bigint), "                                              \
    "locked AS (SELECT x.delivery_id, p.prio FROM deliveries x JOIN pick p "                \
    "ON p.delivery_id = x.delivery_id WHERE x.state IN ('pending', 'delivered') "           \
    "ORDER BY x.delivery_id FOR UPDATE OF x SKIP LOCKED) "                                  \
    "UPDATE deliveries d SET state = 'dead', dead_reason = CASE WHEN l.prio = 1 "           \
    "THEN '" PT_STORE_DEAD_EXPIRED "' ELSE '" PT_STORE_DEAD_ATTEMPTS "' END, "             \
    "dead_at = pt_ms_to_ts($1::bigint) FROM locked l, messages m "                          \
    "WHERE d.delivery_id = l.delivery_id AND m.message_id = d.message_id "                  \
    "RETURNING " S_DEAD_COLUMNS

pt_store_result_t pt_store_dead_letter_sweep(pt_store_t *self, int64_t now_ms,
                                             uint32_t max_attempts, size_t max,
                                             pt_store_dead_letter_fn *fn, void *arg,
                                             size_t *count)
{
    s_params_t p;
    if (count)
        *count = 0;
    if (!self)
        return PT_STORE_ERROR;
    if (max == 0)
        return PT_STORE_OK;
    p.n = 0;
    s_p_int(&p, now_ms);
    s_p_int(&p, (int64_t)max_attempts);
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return s_dead_change(self, S_DEAD_SWEEP_SQL, &p, NULL, "broker", now_ms, NULL, 0, fn, arg,
                         count);
}

pt_store_result_t pt_store_dead_letter_list(pt_store_t *self, const char *recipient,
                                            const uint8_t *message_ids, size_t n_ids,
                                            int64_t after_id, size_t max, int64_t now_ms,
                                            pt_store_dead_letter_fn *fn, void *arg)
{
    PGresult *res = NULL;
    char *ids = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !fn || (n_ids > 0 && !message_ids) || n_ids > (size_t)INT32_MAX / 64 ||
        (recipient && strlen(recipient) >= PT_STORE_ORG_ID_MAX))
        return PT_STORE_ERROR;
    if (max == 0)
        return PT_STORE_OK;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if (n_ids > 0) {
        char *w = ids = malloc(n_ids * 37 + 3);
        if (!ids)
            return PT_STORE_ERROR;
        *w++ = '{';
        for (size_t i = 0; i < n_ids; i++) {
            if (i)
                *w++ = ',';
            s_uuid_text(message_ids + 16 * i, w);
            w += 36;
        }
        *w++ = '}';
        *w = '\0';
    }
    p.n = 0;
    s_p_text(&p, recipient ? recipient : "");
    if (ids)
        s_p_text(&p, ids);
    else
        s_p_null(&p);
    s_p_int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    s_p_int(&p, now_ms);
    s_p_int(&p, after_id);
    /* held_back probes deliveries_unacked_order (005); an expired dead letter no
       longer holds anything back (see S_DUE). */
    rc = s_exec_sql(self,
                    "SELECT " S_DEAD_COLUMNS ", CASE WHEN d.expires_at IS NOT NULL "
                    "AND d.expires_at <= pt_ms_to_ts($4::bigint) THEN 0::bigint ELSE "
                    "(SELECT count(*) FROM deliveries h WHERE h.recipient = d.recipient "
                    "AND h.correlation_id = d.correlation_id AND h.delivery_id > d.delivery_id "
                    "AND h.state <> 'acked' AND h.attempts >= 0 "
                    "AND h.state IN ('pending', 'delivered')) END "
                    "FROM deliveries d JOIN messages m ON m.message_id = d.message_id "
                    "WHERE d.state = 'dead' AND d.delivery_id > $5::bigint "
                    "AND ($1 = '' OR d.recipient = $1) "
                    "AND ($2::uuid[] IS NULL OR d.message_id = ANY($2::uuid[])) "
                    "ORDER BY d.delivery_id LIMIT $3::bigint",
                    &p, &res);
    free(ids);
    if (rc != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        pt_store_dead_letter_t dead;
        uint8_t header[32];
        if (s_dead_from(res, i, &dead, header) != 0) {
            s_set_error(self, "dead letter row %d is malformed", i);
            PQclear(res);
            return PT_STORE_ERROR;
        }
        fn(&dead, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* Requeue, drop and the unreadable: the deliveries among items in one of the states
   of in_states (SQL list), locked in delivery order, changed by set_sql ($2: now_ms,
   $3: note when not NULL), with the event kind (NULL: from the new reason) by actor. */
static pt_store_result_t s_dead_resolve(pt_store_t *self, pt_store_dead_item_t *items, size_t n,
                                        const char *in_states, const char *set_sql,
                                        const char *note, const char *kind, const char *actor,
                                        int64_t now_ms)
{
    s_params_t p;
    char sql[1024];
    if (!self || (n > 0 && !items) || n > (size_t)INT32_MAX / 64)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < n; i++)
        items[i].result = PT_STORE_NOT_FOUND;
    if (n == 0)
        return PT_STORE_OK;
    char *ids = s_int_array(&items[0].delivery_id, sizeof *items, n);
    if (!ids)
        return PT_STORE_ERROR;
    snprintf(sql, sizeof sql,
             "WITH l AS (SELECT delivery_id FROM deliveries WHERE delivery_id = ANY($1::bigint[]) "
             "AND state IN (%s) ORDER BY delivery_id FOR UPDATE) "
             "UPDATE deliveries d SET %s FROM l, messages m WHERE d.delivery_id = l.delivery_id "
             "AND m.message_id = d.message_id RETURNING " S_DEAD_COLUMNS,
             in_states, set_sql);
    p.n = 0;
    s_p_text(&p, ids);
    s_p_int(&p, now_ms);
    if (note)
        s_p_text(&p, note);
    pt_store_result_t rc =
        s_dead_change(self, sql, &p, kind, actor, now_ms, items, n, NULL, NULL, NULL);
    free(ids);
    return rc;
}

pt_store_result_t pt_store_dead_letter_requeue(pt_store_t *self, pt_store_dead_item_t *items,
                                               size_t n, int64_t now_ms)
{
    /* RETURNING sees the new row: the reason is cleared, so the event kind is fixed. */
    return s_dead_resolve(self, items, n, "'dead'",
                          "state = 'pending', attempts = 0, next_attempt_at = "
                          "pt_ms_to_ts($2::bigint), dead_reason = NULL, dead_at = NULL",
                          NULL, "dead_letter:requeued", "operator", now_ms);
}

pt_store_result_t pt_store_dead_letter_drop(pt_store_t *self, pt_store_dead_item_t *items,
                                            size_t n, const char *note, int64_t now_ms)
{
    if (!note || !note[0] || strlen(note) > 500)
        return PT_STORE_ERROR;
    return s_dead_resolve(self, items, n, "'dead'",
                          "state = 'dropped', dropped_at = pt_ms_to_ts($2::bigint), "
                          "drop_note = $3",
                          note, "dead_letter:dropped", "operator", now_ms);
}

pt_store_result_t pt_store_dead_letter_unreadable(pt_store_t *self, pt_store_dead_item_t *items,
                                                  size_t n, int64_t now_ms)
{
    return s_dead_resolve(self, items, n, "'pending', 'delivered'",
                          "state = 'dead', dead_reason = '" PT_STORE_DEAD_UNREADABLE "', "
                          "dead_at = pt_ms_to_ts($2::bigint)",
                          NULL, NULL, "broker", now_ms);
}

pt_store_result_t pt_store_dead_letter_counts(pt_store_t *self,
                                              void (*fn)(const char *recipient, int64_t count,
                                                         void *arg),
                                              void *arg)
{
    PGresult *res = NULL;
    pt_store_result_t rc;
    if (!self || !fn)
        return PT_STORE_ERROR;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    if ((rc = s_exec_sql(self,
                         "SELECT recipient, count(*)::bigint FROM deliveries "
                         "WHERE state = 'dead' GROUP BY recipient ORDER BY recipient",
                         NULL, &res)) != PT_STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *recipient = s_get_text(res, i, 0);
        int64_t count;
        if (recipient && s_get_int64(res, i, 1, &count) == 0)
            fn(recipient, count, arg);
    }
    PQclear(res);
    return PT_STORE_OK;
}

/* --- retention progress (issue 6) --------------------------------------------------- */

pt_store_result_t pt_store_retention_pending(pt_store_t *self, int64_t now_ms, int64_t *count)
{
    PGresult *res = NULL;
    s_params_t p;
    pt_store_result_t rc;
    if (!self || !count)
        return PT_STORE_ERROR;
    *count = 0;
    if ((rc = s_ready(self)) != PT_STORE_OK)
        return rc;
    p.n = 0;
    s_p_int(&p, now_ms);
    /* The predicate of S_RETENTION_DUE. */
    if ((rc = s_exec_sql(self,
                         "SELECT count(*)::bigint FROM messages m JOIN agreements a "
                         "ON a.agreement_id = m.agreement_id WHERE a.retention_days > 0 "
                         "AND m.payload_deleted_at IS NULL "
                         "AND m.stored_at + a.retention_days * interval '1 day' "
                         "<= pt_ms_to_ts($1::bigint)",
                         &p, &res)) != PT_STORE_OK)
        return rc;
    if (PQntuples(res) != 1 || s_get_int64(res, 0, 0, count) != 0) {
        s_set_error(self, "retention count is malformed");
        rc = PT_STORE_ERROR;
    }
    PQclear(res);
    return rc;
}

/* --- several brokers over one database (issue 9, 010_multi_broker.sql) ---------------- */

/* Rare statements of this section run unprepared (no slot in s_stmts): renewals
   every third of a lease, releases when a connection goes. */
#define S_CLAIMS_RENEW_SQL                                                                   \
    "UPDATE deliveries SET claim_expires_at = pt_ms_to_ts($3::bigint) "                      \
    "WHERE recipient = ANY($1::text[]) AND state = 'delivered' AND claimed_by = $2"
#define S_CLAIMS_RELEASE_SQL                                                                 \
    "WITH x AS (UPDATE deliveries SET claim_expires_at = pt_ms_to_ts($3::bigint) "           \
    "WHERE recipient = $1 AND state <> 'acked' AND attempts >= 0 AND claimed_by = $2 "       \
    "AND claim_expires_at > pt_ms_to_ts($3::bigint) RETURNING 1) "                           \
    "SELECT pg_notify('" PT_STORE_CHANNEL_DELIVERY "', $1) WHERE EXISTS (SELECT 1 FROM x)"
/* Key of the session-level advisory lock whose holder signs checkpoints. */
#define S_SIGNER_LOCK_KEY "123584536261222"
#define S_SESSION_RETRY_MS 1000
#define S_SESSION_PING_MS 5000

int pt_store_set_instance(pt_store_t *self, const char *instance_id, int64_t lease_ms)
{
    if (!self || !instance_id || !instance_id[0] || strlen(instance_id) >= PT_STORE_INSTANCE_MAX ||
        lease_ms <= 0)
        return -1;
    snprintf(self->instance, sizeof self->instance, "%s", instance_id);
    self->lease_ms = lease_ms;
    return 0;
}

void pt_store_set_delivery_window(pt_store_t *self, int64_t window)
{
    if (self)
        self->delivery_window = window > 0 ? window : 0;
}

const char *pt_store_instance(const pt_store_t *self)
{
    return self ? self->instance : "";
}

int pt_store_backend_pid(const pt_store_t *self)
{
    return self && self->conn && PQstatus(self->conn) == CONNECTION_OK ? PQbackendPID(self->conn)
                                                                       : 0;
}

/* Runs one unprepared statement with text parameters, discarding its rows. */
static pt_store_result_t s_exec_text(pt_store_t *self, const char *sql, int n,
                                     const char *const *values)
{
    pt_store_result_t rc = s_ready(self);
    if (rc != PT_STORE_OK)
        return rc;
    PGresult *res = PQexecParams(self->conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = s_classify(self, res);
    PQclear(res);
    return rc;
}

pt_store_result_t pt_store_claims_renew(pt_store_t *self, const char *const *recipients, size_t n,
                                        int64_t now_ms)
{
    if (!self || (n > 0 && !recipients))
        return PT_STORE_ERROR;
    if (n == 0)
        return PT_STORE_OK;
    char *array = s_text_array(recipients, n);
    char until[24];
    if (!array)
        return PT_STORE_ERROR;
    snprintf(until, sizeof until, "%lld", (long long)(now_ms + self->lease_ms));
    const char *values[3] = {array, self->instance, until};
    pt_store_result_t rc = s_exec_text(self, S_CLAIMS_RENEW_SQL, 3, values);
    free(array);
    return rc;
}

pt_store_result_t pt_store_notify(pt_store_t *self, const char *channel, const char *payload)
{
    if (!self || !channel || !payload)
        return PT_STORE_ERROR;
    const char *values[2] = {channel, payload};
    return s_exec_text(self, "SELECT pg_notify($1, $2)", 2, values);
}

pt_store_result_t pt_store_claims_release(pt_store_t *self, const char *recipient,
                                          int64_t now_ms)
{
    if (!self || !recipient)
        return PT_STORE_ERROR;
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)now_ms);
    const char *values[3] = {recipient, self->instance, at};
    return s_exec_text(self, S_CLAIMS_RELEASE_SQL, 3, values);
}

struct _pt_store_session_t {
    PGconn *conn;            /* NULL or broken: reconnected by poll */
    char *conninfo;
    int holds_signer;        /* the advisory lock is held on this connection */
    int64_t last_attempt_ms; /* last connection attempt */
    int64_t last_check_ms;   /* last round trip that succeeded or connection made */
    char last_error[256];
};

static void s_session_fail(pt_store_session_t *self, const char *what)
{
    snprintf(self->last_error, sizeof self->last_error, "%s: %s", what,
             self->conn ? PQerrorMessage(self->conn) : "no connection");
    size_t len = strlen(self->last_error);
    while (len > 0 && (self->last_error[len - 1] == '\n' || self->last_error[len - 1] == ' '))
        self->last_error[--len] = '\0';
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->holds_signer = 0;
}

/* Runs a constant command (no parameters) on the session; 0 or -1 (session dropped). */
static int s_session_command(pt_store_session_t *self, const char *sql, PGresult **res_p)
{
    PGresult *res = PQexec(self->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        PQclear(res);
        s_session_fail(self, "session");
        return -1;
    }
    if (res_p)
        *res_p = res;
    else
        PQclear(res);
    return 0;
}

static int s_session_connect(pt_store_session_t *self, int64_t now_ms)
{
    self->last_attempt_ms = now_ms;
    self->holds_signer = 0;
    self->conn = PQconnectdb(self->conninfo);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        s_session_fail(self, "cannot connect the session");
        return -1;
    }
    PQsetNoticeProcessor(self->conn, s_ignore_notice, NULL);
    if (s_session_command(self, "LISTEN " PT_STORE_CHANNEL_DELIVERY "; LISTEN "
                                PT_STORE_CHANNEL_NOTICE "; LISTEN " PT_STORE_CHANNEL_DIRECTORY,
                          NULL) != 0)
        return -1;
    self->last_check_ms = now_ms;
    self->last_error[0] = '\0';
    return 0;
}

pt_store_session_t *pt_store_session_new(const char *conninfo, char *err, size_t err_len)
{
    pt_store_session_t *self = calloc(1, sizeof *self);
    if (!self || !conninfo || !(self->conninfo = strdup(conninfo))) {
        s_copy_err(err, err_len, "out of memory");
        free(self);
        return NULL;
    }
    if (s_session_connect(self, s_now_ms()) != 0)
        s_copy_err(err, err_len, self->last_error);
    return self;
}

void pt_store_session_destroy(pt_store_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_store_session_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

int pt_store_session_socket(const pt_store_session_t *self)
{
    return self && self->conn ? PQsocket(self->conn) : -1;
}

const char *pt_store_session_error(const pt_store_session_t *self)
{
    return self ? self->last_error : "";
}

pt_store_result_t pt_store_session_poll(pt_store_session_t *self, int64_t now_ms,
                                        pt_store_notify_fn *fn, void *arg, int *reconnected)
{
    if (reconnected)
        *reconnected = 0;
    if (!self)
        return PT_STORE_ERROR;
    if (self->conn && PQstatus(self->conn) != CONNECTION_OK)
        s_session_fail(self, "session lost");
    if (!self->conn) {
        if (now_ms - self->last_attempt_ms < S_SESSION_RETRY_MS ||
            s_session_connect(self, now_ms) != 0)
            return PT_STORE_UNAVAILABLE;
        if (reconnected)
            *reconnected = 1;
    }
    /* A round trip now and then: a session whose server went away without closing
       the socket is noticed (and with it the loss of the signer lock). */
    if (now_ms - self->last_check_ms >= S_SESSION_PING_MS) {
        if (s_session_command(self, "SELECT 1", NULL) != 0)
            return PT_STORE_UNAVAILABLE;
        self->last_check_ms = now_ms;
    }
    if (!PQconsumeInput(self->conn)) {
        s_session_fail(self, "session lost");
        return PT_STORE_UNAVAILABLE;
    }
    PGnotify *note;
    while ((note = PQnotifies(self->conn)) != NULL) {
        if (fn)
            fn(note->relname, note->extra ? note->extra : "", note->be_pid, arg);
        PQfreemem(note);
    }
    return PT_STORE_OK;
}

int pt_store_session_signer(pt_store_session_t *self)
{
    if (!self || !self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return -1;
    if (self->holds_signer)
        return 1;
    PGresult *res = NULL;
    if (s_session_command(self, "SELECT pg_try_advisory_lock(" S_SIGNER_LOCK_KEY ")", &res) != 0)
        return -1;
    self->holds_signer = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return self->holds_signer;
}

/* The statements that run unprepared, under the names pt_store_statement_sql
   gives them. They say "attempts >= 0" (always true) so that they keep
   deliveries_unacked_order (019_hot_statement_indexes.sql), which holds only what
   is not acknowledged; test_store checks they use it. */
static const char *s_unprepared_sql(const char *name)
{
    if (strcmp(name, "pt_queue_stats") == 0)
        return S_QUEUE_STATS_SQL;
    if (strcmp(name, "pt_claims_release") == 0)
        return S_CLAIMS_RELEASE_SQL;
    return NULL;
}

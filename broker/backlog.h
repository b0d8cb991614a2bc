/*  backlog — the queue figures read off the loop: every recipient's backlog, the
    dead letters per recipient and the newest checkpoint's time, read by a thread
    of its own on a database connection of its own, so the broker loop never
    waits for them.

    Why: counting the backlog is O(deliveries waiting). With a million messages
    waiting for a recipient that is down (an outage, the case issue 8 names),
    one count takes 0.2-0.6 s on the development VM; run on the loop once a
    second, as before, it held every submission and ack for that long, every
    second. Here the loop takes the newest snapshot when one is ready
    (pt_backlog_take, a pointer swap under a mutex) and applies it: queue
    gauges, the queue quota's counts, dead-letter gauges, checkpoint age.

    Cadence: a read starts period_ms after the previous one started, or ten
    times the previous read's duration if that is longer, so the counting costs
    PostgreSQL at most about a tenth of one core however large the backlog (its
    connection plans without parallel workers, pt_store_serial, so a read is one
    process).

    Staleness: a snapshot is as of its read's start (taken_at_ms). The queue
    quota's counts, reset from it, miss the submissions and acks the loop
    committed while the read ran (a fraction of a second of traffic); the next
    snapshot corrects them. Brokers sharing a database already see each other's
    traffic only at these resynchronisations.

    Failures: a read that fails is logged once (and its recovery once); its
    snapshot carries the result, and the loop keeps the figures it had. The
    reader's connection is checked before each read (pt_store_ping) and reset
    when broken, then tried again at the next read. It works as
    the same database role as the loop's store (pt_store_role_take).

    Threads: pt_backlog_new starts the reader; pt_backlog_take and
    pt_backlog_destroy are for one thread (the loop). The reader touches only
    its own store and the snapshot slot under the mutex.
*/
#ifndef PT_BROKER_BACKLOG_H
#define PT_BROKER_BACKLOG_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct _pt_backlog_t pt_backlog_t;

/* Dead letters of one recipient (pt_store_dead_letter_counts). */
typedef struct {
    char recipient[PT_STORE_ORG_ID_MAX];
    int64_t count;
} pt_backlog_dead_t;

/* One read. Each part has its own result; its rows are valid only when it is
   PT_STORE_OK. Owned by the caller of pt_backlog_take: pt_backlog_snapshot_clear. */
typedef struct {
    int64_t taken_at_ms; /* broker clock when the read began */
    int64_t took_ms;     /* how long the read took */
    pt_store_result_t queues_rc;
    pt_store_queue_stat_t *queues; /* recipients with a backlog, depth > 0 */
    size_t n_queues;
    pt_store_result_t dead_rc;
    pt_backlog_dead_t *dead; /* recipients with dead letters */
    size_t n_dead;
    pt_store_result_t checkpoint_rc; /* NOT_FOUND: no checkpoint yet */
    int64_t checkpoint_at_ms;
} pt_backlog_snapshot_t;

#define PT_BACKLOG_DUTY 10 /* a read starts at least this many times its duration apart */

/* Starts the reader on its own connection (conninfo), working as role (the
   broker's [broker] db_role; NULL or "" = the store's default, as
   pt_store_role_take). The first read starts at once. period_ms >= 1. NULL on
   failure with the reason in err (out of memory, no thread). A database that
   cannot be reached is not a failure: the reader keeps trying every period. */
pt_backlog_t *pt_backlog_new(const char *conninfo, const char *role, int64_t period_ms, char *err,
                             size_t err_len);

/* Stops the reader: cancels the read under way, if any (pt_store_cancel: a read
   waiting on a lock ends at once), and waits for the thread. Frees an untaken
   snapshot. No-op on NULL; nulls the pointer. */
void pt_backlog_destroy(pt_backlog_t **self_p);

/* Never waits for a read: 1 and the newest snapshot not yet taken moved into
   *out (the caller clears it), or 0 and *out zeroed when there is none. A
   snapshot that was not taken before a newer one arrived is dropped. */
int pt_backlog_take(pt_backlog_t *self, pt_backlog_snapshot_t *out);

/* The queue part of a read, on the caller's store and thread (the broker's
   synchronous read at start uses it too): snap->queues and n_queues appended,
   snap->queues_rc the outcome (PT_STORE_ERROR when out of memory: the rows are
   then incomplete). Returns the store's result. */
pt_store_result_t pt_backlog_read_queues(pt_store_t *store, pt_backlog_snapshot_t *snap);

/* Frees the rows and zeroes *snap. No-op on NULL. */
void pt_backlog_snapshot_clear(pt_backlog_snapshot_t *snap);

/* Reads done so far (snapshots made, whatever their result). For tests. */
uint64_t pt_backlog_reads(pt_backlog_t *self);

#endif

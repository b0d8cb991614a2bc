/*  admission — per-organisation admission limits of the broker (issue 7):

    - submission rate: a token bucket per sending organisation (the CURVE
      identity), refilled at submit_rate tokens per second up to submit_burst;
      every submit frame takes one token, and a submit that finds the bucket
      empty is refused with REJECT_RATE_LIMITED;
    - queue quota: at most queue_quota deliveries per recipient that are not
      acknowledged and not expired. The depth is an in-memory counter per
      recipient, seeded from the database (pt_admission_queue_reset / _set with
      pt_store_queue_stats) at start and about once a second, and kept in step
      between those: +1 per recipient when a new message is admitted (undone if
      it is then not stored), -1 per acknowledgement. Expiries and the traffic
      of other broker processes on the same database are picked up by the next
      resynchronisation, so with several brokers the quota holds to within
      about a second's traffic.

    Both checks are O(1) (a hash table keyed by organisation id, which only
    holds identities the ZAP handler admitted and recipients that passed the
    policy stage). A failed allocation admits (limits fail open; the broker
    logs nothing per message for it).

    Not thread-safe: used by the broker loop thread only.
*/
#ifndef PT_ADMISSION_H
#define PT_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double submit_rate;  /* tokens per second per organisation; <= 0: no rate limit */
    double submit_burst; /* bucket size (a full bucket at first sight); < 1 counts as 1 */
    int64_t queue_quota; /* deliveries waiting per recipient; <= 0: no quota */
} pt_admission_config_t;

typedef struct _pt_admission_t pt_admission_t;

/* A limiter with a copy of config. NULL when out of memory. */
pt_admission_t *pt_admission_new(const pt_admission_config_t *config);
void pt_admission_destroy(pt_admission_t **self_p);

/* Takes one submission token of org at now_ms (a monotonic or wall clock in ms;
   it only has to move forward). 1 = admitted. 0 = over the rate: *retry_ms
   (may be NULL) receives the milliseconds until a token is back. Always 1 when
   there is no rate limit. O(1). */
int pt_admission_submit_take(pt_admission_t *self, const char *org, int64_t now_ms,
                             int64_t *retry_ms);

/* 1 when a queue quota is configured. */
int pt_admission_queue_enabled(const pt_admission_t *self);

/* Admits one more waiting delivery to each of the n recipients if every one of
   them stays within the quota, and counts them (all or none). 1 = admitted;
   0 = refused, *full (may be NULL) = the first recipient at its quota (borrowed
   from recipients) and *depth (may be NULL) its current depth. Always 1 without
   a quota. O(n). */
int pt_admission_queue_admit(pt_admission_t *self, const char *const *recipients, size_t n,
                             const char **full, int64_t *depth);

/* Counts one more waiting delivery to each of the n recipients without checking
   the quota (messages that must never wait for it, e.g. consent withdrawals);
   undone by pt_admission_queue_release like an admit. */
void pt_admission_queue_count(pt_admission_t *self, const char *const *recipients, size_t n);

/* Undoes one pt_admission_queue_admit of the same recipients (the message was then
   not stored as new: rejected later, a duplicate, or the commit failed). */
void pt_admission_queue_release(pt_admission_t *self, const char *const *recipients, size_t n);

/* One delivery to recipient was acknowledged (-1, never below 0). */
void pt_admission_queue_acked(pt_admission_t *self, const char *recipient);

/* Resynchronisation from the database: _reset sets every depth to 0, then _set
   gives each recipient with a backlog its depth. */
void pt_admission_queue_reset(pt_admission_t *self);
void pt_admission_queue_set(pt_admission_t *self, const char *recipient, int64_t depth);

/* The current depth counted for recipient (0 if unknown), for logs and tests. */
int64_t pt_admission_queue_depth(const pt_admission_t *self, const char *recipient);

#endif

/*  backlog — see backlog.h. One reader thread, one mutex, one condition
    variable (stopping, done); the newest snapshot sits in one slot the loop
    swaps out. */
#include "backlog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pt_crypto.h"

struct _pt_backlog_t {
    char *conninfo;
    char *role;
    int64_t period_ms;
    pthread_t thread;
    int have_lock, have_cond, started;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* stopping (to the reader), done (to pt_backlog_destroy) */
    int stopping, done;
    pt_backlog_snapshot_t *latest;   /* under lock; NULL once taken */
    pt_store_canceller_t *canceller; /* under lock: cancels the read under way */
    uint64_t reads;                  /* under lock */
    /* The reader's own (only the reader thread touches these). */
    pt_store_t *store;
    int failing;
};

/* Appends one slot of `size` bytes to *items (n of them): rows are few, one per
   recipient, so they grow one at a time. The new slot, or NULL with *rc set to
   PT_STORE_ERROR (out of memory; an earlier failure also gives NULL). */
static void *s_append(void **items, size_t *n, size_t size, pt_store_result_t *rc)
{
    if (*rc != PT_STORE_OK)
        return NULL;
    char *grown = realloc(*items, (*n + 1) * size);
    if (!grown) {
        *rc = PT_STORE_ERROR;
        return NULL;
    }
    *items = grown;
    return grown + (*n)++ * size;
}

static void s_queue_row(const pt_store_queue_stat_t *stat, void *arg)
{
    pt_backlog_snapshot_t *snap = arg;
    pt_store_queue_stat_t *q =
        s_append((void **)&snap->queues, &snap->n_queues, sizeof *snap->queues, &snap->queues_rc);
    if (q)
        *q = *stat;
}

static void s_dead_row(const char *recipient, int64_t count, void *arg)
{
    pt_backlog_snapshot_t *snap = arg;
    pt_backlog_dead_t *d =
        s_append((void **)&snap->dead, &snap->n_dead, sizeof *snap->dead, &snap->dead_rc);
    if (!d)
        return;
    snprintf(d->recipient, sizeof d->recipient, "%s", recipient);
    d->count = count;
}

pt_store_result_t pt_backlog_read_queues(pt_store_t *store, pt_backlog_snapshot_t *snap)
{
    if (!snap)
        return PT_STORE_ERROR;
    snap->queues_rc = PT_STORE_OK;
    pt_store_result_t rc = pt_store_queue_stats(store, s_queue_row, snap);
    if (snap->queues_rc == PT_STORE_OK)
        snap->queues_rc = rc;
    return rc;
}

void pt_backlog_snapshot_clear(pt_backlog_snapshot_t *snap)
{
    if (!snap)
        return;
    free(snap->queues);
    free(snap->dead);
    memset(snap, 0, sizeof *snap);
}

/* The reader's store, connected (pt_store_ping resets a broken connection), with
   a canceller for its connection as it is now; NULL while the database cannot
   be reached, or when stopping. */
static pt_store_t *s_store(pt_backlog_t *self, char *why, size_t why_len)
{
    if (!self->store) {
        self->store = pt_store_new(self->conninfo, why, why_len);
        if (self->store && pt_store_role_take(self->store, self->role, why, why_len) != 0)
            pt_store_destroy(&self->store);
        pt_store_serial(self->store); /* one process: the cadence bounds its share */
    } else if (pt_store_ping(self->store) != PT_STORE_OK) {
        snprintf(why, why_len, "%s", pt_store_last_error(self->store));
        return NULL; /* reset: tried again at the next read */
    }
    /* The connection's server process may be new: so is its cancel key. */
    pt_store_canceller_t *canceller = pt_store_canceller_new(self->store);
    pthread_mutex_lock(&self->lock);
    pt_store_canceller_destroy(&self->canceller);
    self->canceller = canceller;
    int stopping = self->stopping;
    pthread_mutex_unlock(&self->lock);
    return stopping ? NULL : self->store;
}

static int s_stopping(pt_backlog_t *self)
{
    pthread_mutex_lock(&self->lock);
    int stopping = self->stopping;
    pthread_mutex_unlock(&self->lock);
    return stopping;
}

/* One read into a new snapshot (NULL: out of memory). */
static pt_backlog_snapshot_t *s_read(pt_backlog_t *self)
{
    pt_backlog_snapshot_t *snap = calloc(1, sizeof *snap);
    if (!snap)
        return NULL;
    char why[512] = "";
    snap->taken_at_ms = pt_now_ms();
    pt_store_t *store = s_store(self, why, sizeof why);
    if (!store) {
        snap->queues_rc = snap->dead_rc = snap->checkpoint_rc = PT_STORE_UNAVAILABLE;
    } else {
        /* Each statement only while not stopping: a cancelled one ends the read. */
        snap->dead_rc = snap->checkpoint_rc = PT_STORE_UNAVAILABLE;
        (void)pt_backlog_read_queues(store, snap);
        if (!s_stopping(self)) {
            snap->dead_rc = PT_STORE_OK;
            pt_store_result_t rc = pt_store_dead_letter_counts(store, s_dead_row, snap);
            if (snap->dead_rc == PT_STORE_OK)
                snap->dead_rc = rc;
        }
        pt_store_checkpoint_t cp;
        if (!s_stopping(self))
            snap->checkpoint_rc = pt_store_checkpoint_get(store, 0, &cp);
        snap->checkpoint_at_ms = snap->checkpoint_rc == PT_STORE_OK ? cp.at_ms : 0;
        snprintf(why, sizeof why, "%s", pt_store_last_error(store));
    }
    snap->took_ms = pt_now_ms() - snap->taken_at_ms;
    int stopping = s_stopping(self); /* a cancelled read is not a failure to report */
    int failed =
        !stopping &&
        (snap->queues_rc != PT_STORE_OK || snap->dead_rc != PT_STORE_OK ||
         (snap->checkpoint_rc != PT_STORE_OK && snap->checkpoint_rc != PT_STORE_NOT_FOUND));
    if (failed && !self->failing)
        pt_log(PT_LOG_WARN, "backlog", NULL, NULL,
               "reading the queue figures failed (%s); the gauges keep their last values",
               why[0] ? why : "out of memory");
    else if (!failed && self->failing)
        pt_log(PT_LOG_INFO, "backlog", NULL, NULL, "reading the queue figures again");
    self->failing = failed;
    return snap;
}

/* Waits on the condition variable until deadline_ms (broker clock) or stop.
   Called with the lock held. */
static void s_wait_until(pt_backlog_t *self, int64_t deadline_ms)
{
    while (!self->stopping) {
        int64_t left = deadline_ms - pt_now_ms();
        if (left <= 0)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&self->wake, &self->lock, &ts);
    }
}

static void *s_thread(void *arg)
{
    pt_backlog_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        pthread_mutex_unlock(&self->lock);
        pt_backlog_snapshot_t *snap = s_read(self);
        pthread_mutex_lock(&self->lock);
        int64_t started = snap ? snap->taken_at_ms : pt_now_ms();
        int64_t gap = snap && snap->took_ms * PT_BACKLOG_DUTY > self->period_ms
                          ? snap->took_ms * PT_BACKLOG_DUTY
                          : self->period_ms;
        if (snap) {
            if (self->latest) {
                pt_backlog_snapshot_clear(self->latest);
                free(self->latest);
            }
            self->latest = snap;
            self->reads++;
        }
        s_wait_until(self, started + gap);
    }
    pthread_mutex_unlock(&self->lock);
    pt_store_destroy(&self->store);
    pthread_mutex_lock(&self->lock);
    pt_store_canceller_destroy(&self->canceller);
    self->done = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

pt_backlog_t *pt_backlog_new(const char *conninfo, const char *role, int64_t period_ms, char *err,
                             size_t err_len)
{
    pt_backlog_t *self = NULL;
    if (!conninfo || period_ms < 1) {
        snprintf(err, err_len, "backlog reader: no connection string or no period");
        goto error;
    }
    self = calloc(1, sizeof *self);
    if (!self || !(self->conninfo = strdup(conninfo)) || !(self->role = strdup(role ? role : ""))) {
        snprintf(err, err_len, "out of memory");
        goto error;
    }
    self->period_ms = period_ms;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        snprintf(err, err_len, "backlog reader: no mutex");
        goto error;
    }
    self->have_lock = 1;
    if (pthread_cond_init(&self->wake, NULL) != 0) {
        snprintf(err, err_len, "backlog reader: no condition variable");
        goto error;
    }
    self->have_cond = 1;
    int rc = pthread_create(&self->thread, NULL, s_thread, self);
    if (rc != 0) {
        snprintf(err, err_len, "backlog reader: cannot start a thread: %s", strerror(rc));
        goto error;
    }
    self->started = 1;
    return self;

error:
    pt_backlog_destroy(&self);
    return NULL;
}

void pt_backlog_destroy(pt_backlog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_backlog_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock(&self->lock);
        self->stopping = 1;
        pthread_cond_signal(&self->wake);
        /* A read waiting on a lock ends now; again every 100 ms, for a statement
           that began just after a cancel found the connection idle. */
        while (!self->done) {
            pt_store_cancel(self->canceller);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&self->wake, &self->lock, &ts);
        }
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    if (self->have_cond)
        pthread_cond_destroy(&self->wake);
    if (self->have_lock)
        pthread_mutex_destroy(&self->lock);
    if (self->latest) {
        pt_backlog_snapshot_clear(self->latest);
        free(self->latest);
    }
    free(self->conninfo);
    free(self->role);
    free(self);
    *self_p = NULL;
}

int pt_backlog_take(pt_backlog_t *self, pt_backlog_snapshot_t *out)
{
    if (!out)
        return 0;
    memset(out, 0, sizeof *out);
    if (!self)
        return 0;
    pthread_mutex_lock(&self->lock);
    pt_backlog_snapshot_t *snap = self->latest;
    self->latest = NULL;
    pthread_mutex_unlock(&self->lock);
    if (!snap)
        return 0;
    *out = *snap;
    free(snap);
    return 1;
}

uint64_t pt_backlog_reads(pt_backlog_t *self)
{
    if (!self)
        return 0;
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->reads;
    pthread_mutex_unlock(&self->lock);
    return n;
}

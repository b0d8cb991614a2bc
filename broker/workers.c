/*  workers — see workers.h. One mutex and two condition variables; items are
    handed out through an atomic counter so a slow item never holds up the rest. */
#include "workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define S_MAX_PARALLELISM 64

struct _pt_workers_t {
    pthread_t *threads;
    size_t n_threads;
    pthread_mutex_t lock;
    pthread_cond_t start;      /* a new batch (generation moved) or stopping */
    pthread_cond_t done;       /* the last helper finished the batch */
    uint64_t generation;
    int stopping;
    size_t busy;               /* helpers still inside the current batch */
    int started;               /* pt_workers_start handed out a batch not yet waited for */
    /* The current batch: written under lock before generation moves. */
    pt_workers_fn *fn;
    void *arg;
    size_t n;
    atomic_size_t next;
};

static void s_drain(pt_workers_t *self)
{
    size_t i;
    while ((i = atomic_fetch_add_explicit(&self->next, 1, memory_order_relaxed)) < self->n)
        self->fn(i, self->arg);
}

static void *s_thread(void *arg)
{
    pt_workers_t *self = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->stopping && self->generation == seen)
            pthread_cond_wait(&self->start, &self->lock);
        if (self->stopping)
            break;
        seen = self->generation;
        pthread_mutex_unlock(&self->lock);
        s_drain(self);
        pthread_mutex_lock(&self->lock);
        if (--self->busy == 0)
            pthread_cond_signal(&self->done);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

pt_workers_t *pt_workers_new(size_t parallelism)
{
    pt_workers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (parallelism > S_MAX_PARALLELISM)
        parallelism = S_MAX_PARALLELISM;
    atomic_init(&self->next, 0);
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    if (pthread_cond_init(&self->start, NULL) != 0) {
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    if (pthread_cond_init(&self->done, NULL) != 0) {
        pthread_cond_destroy(&self->start);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    size_t wanted = parallelism > 1 ? parallelism - 1 : 0;
    if (wanted) {
        self->threads = calloc(wanted, sizeof *self->threads);
        if (!self->threads)
            goto error;
    }
    for (; self->n_threads < wanted; self->n_threads++)
        if (pthread_create(&self->threads[self->n_threads], NULL, s_thread, self) != 0)
            goto error;
    return self;
error:
    pt_workers_destroy(&self);
    return NULL;
}

void pt_workers_destroy(pt_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_workers_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast(&self->start);
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < self->n_threads; i++)
        pthread_join(self->threads[i], NULL);
    free(self->threads);
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->start);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* Hands the batch to the helper threads (under lock, then wakes them). */
static void s_hand_out(pt_workers_t *self, size_t n, pt_workers_fn *fn, void *arg)
{
    pthread_mutex_lock(&self->lock);
    self->fn = fn;
    self->arg = arg;
    self->n = n;
    atomic_store_explicit(&self->next, 0, memory_order_relaxed);
    self->busy = self->n_threads;
    self->generation++;
    pthread_cond_broadcast(&self->start);
    pthread_mutex_unlock(&self->lock);
}

/* The caller takes what is left of the batch, then waits for the helpers. */
static void s_join(pt_workers_t *self)
{
    s_drain(self);
    pthread_mutex_lock(&self->lock);
    while (self->busy > 0)
        pthread_cond_wait(&self->done, &self->lock);
    pthread_mutex_unlock(&self->lock);
}

void pt_workers_run(pt_workers_t *self, size_t n, pt_workers_fn *fn, void *arg)
{
    if (n == 0)
        return;
    if (!self || self->n_threads == 0 || n == 1 || self->started) {
        for (size_t i = 0; i < n; i++)
            fn(i, arg);
        return;
    }
    s_hand_out(self, n, fn, arg);
    s_join(self);
}

void pt_workers_start(pt_workers_t *self, size_t n, pt_workers_fn *fn, void *arg)
{
    if (n == 0 || !self || self->started)
        return;
    if (self->n_threads == 0) {
        for (size_t i = 0; i < n; i++)
            fn(i, arg);
        return;
    }
    self->started = 1;
    s_hand_out(self, n, fn, arg);
}

void pt_workers_wait(pt_workers_t *self)
{
    if (!self || !self->started)
        return;
    s_join(self);
    self->started = 0;
}

size_t pt_workers_parallelism(const pt_workers_t *self)
{
    return self ? self->n_threads + 1 : 1;
}

size_t pt_workers_default(void)
{
    const char *env = getenv("PUENTE_WORKERS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v >= 1 && v <= S_MAX_PARALLELISM)
            return (size_t)v;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        return 1;
    return cpus > S_MAX_PARALLELISM ? S_MAX_PARALLELISM : (size_t)cpus;
}

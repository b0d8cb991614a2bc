/*  workers — a fork-join pool for the broker's CPU-bound pure work: decoding and
    verifying a batch of submissions, signing a batch of receipts. The loop thread
    hands a batch to pt_workers_run, takes part in it, and continues only when
    every item is done, so whatever the items read (the directory, the broker's
    signing key) cannot change under them: the loop thread, the only writer, is
    inside pt_workers_run the whole time. Items must not write shared state except
    their own slot of the caller's arrays. pt_workers_start / pt_workers_wait
    split a batch in two so that the caller can work while the helpers do; the
    caller then promises not to write what the items read until the wait.
*/
#ifndef PT_WORKERS_H
#define PT_WORKERS_H

#include <stddef.h>

typedef struct _pt_workers_t pt_workers_t;

typedef void(pt_workers_fn)(size_t index, void *arg);

/* A pool running batches on `parallelism` threads in all, the caller's included
   (so parallelism - 1 threads are started; 0 or 1 = everything on the caller's
   thread). NULL on failure (out of memory, thread creation refused). */
pt_workers_t *pt_workers_new(size_t parallelism);

/* Stops and joins the threads. No-op on NULL; nulls the pointer. */
void pt_workers_destroy(pt_workers_t **self_p);

/* Calls fn(i, arg) once for every i in [0, n), spread over the pool and the
   calling thread, in no particular order; returns when every call has returned.
   Not reentrant: one batch at a time, from one thread. */
void pt_workers_run(pt_workers_t *self, size_t n, pt_workers_fn *fn, void *arg);

/* The same batch as pt_workers_run, started on the helper threads only: returns
   at once, so the caller can do other work (the broker's loop commits the
   previous pass meanwhile); pt_workers_wait finishes it. Until then the caller
   must not write what the items read, and a pt_workers_run in between runs its
   batch on the caller's thread alone. With no helper threads (parallelism 1)
   the batch runs here, before returning. A second start before the wait is
   ignored (the caller's bug; the items are not run). */
void pt_workers_start(pt_workers_t *self, size_t n, pt_workers_fn *fn, void *arg);

/* Takes part in the started batch until every item has returned. No-op when
   nothing was started. */
void pt_workers_wait(pt_workers_t *self);

/* Total parallelism (threads started + the caller). */
size_t pt_workers_parallelism(const pt_workers_t *self);

/* The parallelism to use: PUENTE_WORKERS if set to 1..64, else the number of
   online CPUs (at least 1, at most 64). */
size_t pt_workers_default(void);

#endif

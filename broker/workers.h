/*  workers — a fork-join pool for the broker's CPU-bound pure work: decoding and
    verifying a batch of submissions, signing a batch of receipts. The loop thread
    hands a batch to pt_workers_run, takes part in it, and continues only when
    every item is done, so whatever the items read (the directory, the broker's
    signing key) cannot change under them: the loop thread, the only writer, is
    inside pt_workers_run the whole time. Items must not write shared state except
    their own slot of the caller's arrays.
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

/* Total parallelism (threads started + the caller). */
size_t pt_workers_parallelism(const pt_workers_t *self);

/* The parallelism to use: PUENTE_WORKERS if set to 1..64, else the number of
   online CPUs (at least 1, at most 64). */
size_t pt_workers_default(void);

#endif

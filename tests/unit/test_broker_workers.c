/*  Unit tests for workers (the broker's fork-join pool). */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers.h"
#include "cu_main.h"

#define N_ITEMS 10000

typedef struct {
    atomic_int calls[N_ITEMS];
    uint64_t out[N_ITEMS];
    atomic_int total;
} s_job_t;

static void s_square(size_t i, void *arg)
{
    s_job_t *job = arg;
    atomic_fetch_add(&job->calls[i], 1);
    atomic_fetch_add(&job->total, 1);
    job->out[i] = (uint64_t)i * i;
}

static void s_check(s_job_t *job, size_t n)
{
    int once = 1, right = 1;
    for (size_t i = 0; i < n; i++) {
        once &= atomic_load(&job->calls[i]) == 1;
        right &= job->out[i] == (uint64_t)i * i;
    }
    CU_ASSERT(once);
    CU_ASSERT(right);
    CU_ASSERT_EQUAL(atomic_load(&job->total), (int)n);
}

static s_job_t *s_job(void)
{
    s_job_t *job = calloc(1, sizeof *job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    return job;
}

static void test_every_item_once(void)
{
    pt_workers_t *pool = pt_workers_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(pt_workers_parallelism(pool), 4);
    /* Many batches of varying size through the same pool: no item lost or run twice,
       and each batch is complete when run returns. */
    for (size_t round = 0; round < 200; round++) {
        size_t n = (round * 37) % N_ITEMS + 1;
        s_job_t *job = s_job();
        pt_workers_run(pool, n, s_square, job);
        s_check(job, n);
        free(job);
    }
    s_job_t *job = s_job();
    pt_workers_run(pool, 0, s_square, job);
    CU_ASSERT_EQUAL(atomic_load(&job->total), 0);
    free(job);
    pt_workers_destroy(&pool);
    CU_ASSERT_PTR_NULL(pool);
    pt_workers_destroy(&pool);   /* no-op */
    pt_workers_destroy(NULL);
}

static void test_serial_pool(void)
{
    pt_workers_t *pool = pt_workers_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_EQUAL(pt_workers_parallelism(pool), 1);
    s_job_t *job = s_job();
    pt_workers_run(pool, N_ITEMS, s_square, job);
    s_check(job, N_ITEMS);
    free(job);
    pt_workers_destroy(&pool);
    /* No pool at all: the caller's thread does everything. */
    job = s_job();
    pt_workers_run(NULL, 100, s_square, job);
    s_check(job, 100);
    free(job);
}

/* Items that wait until the caller opens the gate: they can only finish if
   pt_workers_start returned while they were still running. */
typedef struct {
    atomic_int gate;
    atomic_int started;
    atomic_int done;
    pthread_t caller;
    atomic_int on_caller;
} s_gated_t;

static void s_gated(size_t i, void *arg)
{
    (void)i;
    s_gated_t *g = arg;
    atomic_fetch_add(&g->started, 1);
    while (!atomic_load(&g->gate))
        usleep(100);
    atomic_fetch_add(&g->done, 1);
}

static pthread_t s_runner;
static atomic_int s_inline_calls, s_inline_elsewhere;

static void s_note_thread(size_t i, void *arg)
{
    (void)i;
    (void)arg;
    atomic_fetch_add(&s_inline_calls, 1);
    if (!pthread_equal(pthread_self(), s_runner))
        atomic_fetch_add(&s_inline_elsewhere, 1);
}

static void test_start_then_wait(void)
{
    pt_workers_t *pool = pt_workers_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    s_gated_t g = {0};
    /* start returns while the helper thread is still inside the batch. */
    pt_workers_start(pool, 4, s_gated, &g);
    for (int i = 0; i < 5000 && atomic_load(&g.started) == 0; i++)
        usleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&g.started), 1); /* one helper thread, one item at a time */
    CU_ASSERT_EQUAL(atomic_load(&g.done), 0);
    /* A run meanwhile: on the caller's thread alone, every item once. */
    s_runner = pthread_self();
    atomic_store(&s_inline_calls, 0);
    atomic_store(&s_inline_elsewhere, 0);
    pt_workers_run(pool, 50, s_note_thread, NULL);
    CU_ASSERT_EQUAL(atomic_load(&s_inline_calls), 50);
    CU_ASSERT_EQUAL(atomic_load(&s_inline_elsewhere), 0);
    /* A second start before the wait is refused: its items never run. */
    s_job_t *ignored = s_job();
    pt_workers_start(pool, 10, s_square, ignored);
    atomic_store(&g.gate, 1);
    pt_workers_wait(pool);
    CU_ASSERT_EQUAL(atomic_load(&g.done), 4);
    CU_ASSERT_EQUAL(atomic_load(&ignored->total), 0);
    free(ignored);
    pt_workers_wait(pool); /* nothing started: no-op */
    /* After the wait the pool is whole again: batches split in two, many times. */
    for (size_t round = 0; round < 100; round++) {
        size_t n = (round * 53) % 3000 + 1;
        s_job_t *job = s_job();
        pt_workers_start(pool, n, s_square, job);
        pt_workers_wait(pool);
        s_check(job, n);
        free(job);
        job = s_job();
        pt_workers_run(pool, n, s_square, job);
        s_check(job, n);
        free(job);
    }
    pt_workers_destroy(&pool);
    /* No helper threads: start runs the batch before it returns. */
    pool = pt_workers_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    s_job_t *job = s_job();
    pt_workers_start(pool, 100, s_square, job);
    s_check(job, 100);
    pt_workers_wait(pool);
    CU_ASSERT_EQUAL(atomic_load(&job->total), 100);
    free(job);
    pt_workers_destroy(&pool);
}

static void test_default_from_env(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t expected = cpus < 1 ? 1 : cpus > 64 ? 64 : (size_t)cpus;
    setenv("PUENTE_WORKERS", "3", 1);
    CU_ASSERT_EQUAL(pt_workers_default(), 3);
    setenv("PUENTE_WORKERS", "0", 1);
    CU_ASSERT_EQUAL(pt_workers_default(), expected);
    setenv("PUENTE_WORKERS", "65", 1);
    CU_ASSERT_EQUAL(pt_workers_default(), expected);
    setenv("PUENTE_WORKERS", "2x", 1);
    CU_ASSERT_EQUAL(pt_workers_default(), expected);
    unsetenv("PUENTE_WORKERS");
    CU_ASSERT_EQUAL(pt_workers_default(), expected);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker_workers", NULL, NULL);
    if (!suite ||
        !CU_add_test(suite, "every item exactly once, batch after batch", test_every_item_once) ||
        !CU_add_test(suite, "serial pool and no pool", test_serial_pool) ||
        !CU_add_test(suite, "start, work meanwhile, wait", test_start_then_wait) ||
        !CU_add_test(suite, "PUENTE_WORKERS", test_default_from_env)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

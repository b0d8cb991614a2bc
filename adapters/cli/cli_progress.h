/*  cli_progress — one updating status line on a terminal for long operations
    (`puente audit verify`, `puente retention run`, the bench programs):

        verify events: 412,000/1,000,000 (41%)  85,310/s  ETA 7s

    Shown only when asked for and the stream is a terminal (cli_progress_wanted):
    scripts, tests, pipes and --json-output see exactly the output they saw
    before. Redraws are throttled (first after CLI_PROGRESS_DELAY_MS, then at
    most every CLI_PROGRESS_INTERVAL_MS) so a tight loop may call update on every
    row. cli_progress_done erases the line, so the command's own result follows
    on a clean line. Depends only on libc, so bench programs link it too.
    Not thread-safe: one progress per thread. */
#ifndef PUENTE_CLI_PROGRESS_H
#define PUENTE_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define CLI_PROGRESS_DELAY_MS 300
#define CLI_PROGRESS_INTERVAL_MS 100

typedef struct _cli_progress_t cli_progress_t;

/* Milliseconds from any fixed origin (a monotonic clock; tests pass their own). */
typedef int64_t (*cli_progress_clock_fn)(void *arg);

/* 1 if a progress line belongs on out: it is a terminal, json_output is 0 and
   PUENTE_PROGRESS is not "0"; else 0. */
int cli_progress_wanted(FILE *out, int json_output);

/* A progress line labelled label (copied, at most 40 bytes kept) towards total
   (0 = unknown: no percentage or ETA). enabled 0 makes every call a no-op that
   writes nothing (pass cli_progress_wanted(out, ...)). clock NULL = monotonic
   clock. NULL only when out of memory (the callers then run without one: every
   function accepts NULL). */
cli_progress_t *cli_progress_new(const char *label, uint64_t total, FILE *out, int enabled,
                                 cli_progress_clock_fn clock, void *clock_arg);

/* Changes the label (a new phase; copied); done and the rate keep counting
   from the start. */
void cli_progress_phase(cli_progress_t *self, const char *label);

/* Changes the total (0 = unknown), e.g. once it is known. */
void cli_progress_total(cli_progress_t *self, uint64_t total);

/* Records done (so far, not an increment) and redraws if it is time. O(1). */
void cli_progress_update(cli_progress_t *self, uint64_t done);

/* Erases the line if one was drawn, frees, sets *self_p to NULL. */
void cli_progress_done(cli_progress_t **self_p);

/* Lines drawn so far (tests). */
unsigned cli_progress_draws(const cli_progress_t *self);

/* The text of one line (no "\r", no escape codes), at most cap - 1 bytes:
   "LABEL: DONE/TOTAL (P%)  RATE/s  ETA T" with thousands separators; without
   TOTAL (0): "LABEL: DONE  RATE/s"; rate and ETA only once elapsed_ms >= 1000
   and something was done. Returns the length written. Pure (unit-tested). */
size_t cli_progress_format(char *buf, size_t cap, const char *label, uint64_t done, uint64_t total,
                           int64_t elapsed_ms);

#endif

/*  Unit tests for cli_progress: the line's text, the throttling of redraws (with
    a fake clock into a memory stream: no terminal needed), that a disabled
    progress writes nothing, and when one is wanted (a pipe no, a pseudo-terminal
    yes unless --json-output or PUENTE_PROGRESS=0). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cli_progress.h"
#include "cu_main.h"

static void test_format(void)
{
    char buf[256];
    size_t n = cli_progress_format(buf, sizeof buf, "verify", 412000, 1000000, 4830);
    CU_ASSERT_STRING_EQUAL(buf, "verify: 412,000/1,000,000 (41%)  85,300/s  ETA 7s");
    CU_ASSERT_EQUAL(n, strlen(buf));
    /* Before a second has passed: no rate, no ETA. */
    cli_progress_format(buf, sizeof buf, "verify", 5, 10, 999);
    CU_ASSERT_STRING_EQUAL(buf, "verify: 5/10 (50%)");
    /* Unknown total. */
    cli_progress_format(buf, sizeof buf, "retention", 1234, 0, 500);
    CU_ASSERT_STRING_EQUAL(buf, "retention: 1,234");
    cli_progress_format(buf, sizeof buf, "retention", 1234, 0, 2000);
    CU_ASSERT_STRING_EQUAL(buf, "retention: 1,234  617/s");
    /* Slow: one decimal. Long: minutes, hours. */
    cli_progress_format(buf, sizeof buf, "x", 5, 0, 2000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 5  2.5/s");
    cli_progress_format(buf, sizeof buf, "x", 1, 10000, 1000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 1/10,000 (0%)  1.0/s  ETA 2h46m");
    cli_progress_format(buf, sizeof buf, "x", 100, 200, 10000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 100/200 (50%)  10/s  ETA 10s");
    cli_progress_format(buf, sizeof buf, "x", 100, 2000, 10000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 100/2,000 (5%)  10/s  ETA 3m10s");
    /* Nothing done yet: no rate. Past the total: 100%, no ETA. */
    cli_progress_format(buf, sizeof buf, "x", 0, 7, 5000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 0/7 (0%)");
    cli_progress_format(buf, sizeof buf, "x", 9, 7, 1000);
    CU_ASSERT_STRING_EQUAL(buf, "x: 9/7 (100%)  9.0/s");
    cli_progress_format(buf, sizeof buf, "x", 999, 1000, 0);
    CU_ASSERT_STRING_EQUAL(buf, "x: 999/1,000 (99%)");
    /* Truncated to the buffer, always terminated. */
    n = cli_progress_format(buf, 10, "verify", 412000, 1000000, 4830);
    CU_ASSERT_EQUAL(n, 9);
    CU_ASSERT_STRING_EQUAL(buf, "verify: 4");
    CU_ASSERT_EQUAL(cli_progress_format(NULL, 10, "x", 1, 1, 1), 0);
}

static int64_t s_fake_ms;

static int64_t s_fake_clock(void *arg)
{
    (void)arg;
    return s_fake_ms;
}

static size_t s_count(const char *text, size_t len, const char *what)
{
    size_t n = 0, w = strlen(what);
    for (size_t i = 0; i + w <= len; i++)
        if (memcmp(text + i, what, w) == 0)
            n++;
    return n;
}

static void test_throttle(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    s_fake_ms = 1000;
    cli_progress_t *p = cli_progress_new("work", 100, out, 1, s_fake_clock, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* Quick operations never show a line: nothing before the first delay. */
    for (int i = 0; i < 1000; i++)
        cli_progress_update(p, 1);
    s_fake_ms += CLI_PROGRESS_DELAY_MS - 1;
    cli_progress_update(p, 2);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 0);
    s_fake_ms += 1;
    cli_progress_update(p, 3);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 1);
    /* Then at most one redraw per interval, whatever the number of updates. */
    for (int i = 0; i < 1000; i++)
        cli_progress_update(p, 4);
    s_fake_ms += CLI_PROGRESS_INTERVAL_MS - 1;
    cli_progress_update(p, 5);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 1);
    s_fake_ms += 1;
    cli_progress_update(p, 6);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 2);
    /* Ten seconds of updates every 10 ms: about one draw per 100 ms. */
    for (int i = 0; i < 1000; i++) {
        s_fake_ms += 10;
        cli_progress_update(p, 7 + (uint64_t)i / 20);
    }
    CU_ASSERT(cli_progress_draws(p) >= 99 && cli_progress_draws(p) <= 102);
    /* A new phase shows on the next draw. */
    cli_progress_phase(p, "phase two");
    cli_progress_total(p, 0);
    s_fake_ms += CLI_PROGRESS_INTERVAL_MS;
    cli_progress_update(p, 60);
    unsigned draws = cli_progress_draws(p);
    cli_progress_done(&p);
    CU_ASSERT_PTR_NULL(p);
    fclose(out);
    /* Each draw: "\r", the text, erase to the end; done erases the line. */
    CU_ASSERT_EQUAL(s_count(text, len, "\r"), draws + 1);
    CU_ASSERT_EQUAL(s_count(text, len, "\033[K"), draws + 1);
    CU_ASSERT(len >= 4 && memcmp(text + len - 4, "\r\033[K", 4) == 0);
    CU_ASSERT_EQUAL(s_count(text, len, "\n"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\rwork: 3/100 (3%)\033[K"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\rphase two: 60  "));
    free(text);
}

/* The non-terminal case: nothing at all reaches the stream. */
static void test_disabled_writes_nothing(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    s_fake_ms = 0;
    cli_progress_t *p = cli_progress_new("quiet", 10, out, 0, s_fake_clock, NULL);
    for (int i = 0; i < 100; i++) {
        s_fake_ms += 1000;
        cli_progress_update(p, (uint64_t)i);
    }
    cli_progress_phase(p, "still quiet");
    cli_progress_total(p, 5);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 0);
    cli_progress_done(&p);
    fclose(out);
    CU_ASSERT_EQUAL(len, 0);
    free(text);
    /* NULL everywhere is a no-op (an allocation failure runs without a line). */
    cli_progress_update(NULL, 1);
    cli_progress_phase(NULL, "x");
    cli_progress_total(NULL, 1);
    cli_progress_done(NULL);
    p = NULL;
    cli_progress_done(&p);
    CU_ASSERT_EQUAL(cli_progress_draws(NULL), 0);
}

static void test_wanted(void)
{
    unsetenv("PUENTE_PROGRESS");
    /* A pipe (scripts, tests, `| tee`) and a memory stream: no. */
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    FILE *piped = fdopen(fds[1], "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(piped);
    CU_ASSERT_EQUAL(cli_progress_wanted(piped, 0), 0);
    fclose(piped);
    close(fds[0]);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CU_ASSERT_EQUAL(cli_progress_wanted(mem, 0), 0);
    fclose(mem);
    free(text);
    CU_ASSERT_EQUAL(cli_progress_wanted(NULL, 0), 0);
    /* A terminal (a pseudo-terminal here): yes, unless JSON or PUENTE_PROGRESS=0. */
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        fprintf(stderr, "(no pseudo-terminal here: terminal case skipped) ");
        if (master >= 0)
            close(master);
        return;
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    CU_ASSERT_FATAL(slave >= 0);
    FILE *tty = fdopen(slave, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tty);
    CU_ASSERT_EQUAL(cli_progress_wanted(tty, 0), 1);
    CU_ASSERT_EQUAL(cli_progress_wanted(tty, 1), 0);
    setenv("PUENTE_PROGRESS", "0", 1);
    CU_ASSERT_EQUAL(cli_progress_wanted(tty, 0), 0);
    setenv("PUENTE_PROGRESS", "1", 1);
    CU_ASSERT_EQUAL(cli_progress_wanted(tty, 0), 1);
    unsetenv("PUENTE_PROGRESS");
    /* On the terminal, a real line is drawn and erased. */
    cli_progress_t *p = cli_progress_new("tty", 3, tty, 1, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(p);
    usleep((CLI_PROGRESS_DELAY_MS + 20) * 1000);
    cli_progress_update(p, 2);
    CU_ASSERT_EQUAL(cli_progress_draws(p), 1);
    cli_progress_done(&p);
    fclose(tty);
    /* The terminal delivers what was written; wait for it (a generous deadline). */
    char seen[256] = "";
    struct pollfd pfd = {master, POLLIN, 0};
    ssize_t got = poll(&pfd, 1, 10000) == 1 ? read(master, seen, sizeof seen - 1) : -1;
    CU_ASSERT(got > 0);
    if (got > 0) {
        seen[got] = '\0';
        CU_ASSERT_PTR_NOT_NULL(strstr(seen, "tty: 2/3 (66%)"));
    }
    close(master);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("cli_progress", NULL, NULL);
    if (!suite || !CU_add_test(suite, "format", test_format) ||
        !CU_add_test(suite, "throttle", test_throttle) ||
        !CU_add_test(suite, "disabled writes nothing", test_disabled_writes_nothing) ||
        !CU_add_test(suite, "wanted only on a terminal", test_wanted)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

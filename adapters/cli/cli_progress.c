/*  cli_progress — see cli_progress.h. */
#include "cli_progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define S_LABEL_MAX 41

struct _cli_progress_t {
    FILE *out;
    int enabled;
    char label[S_LABEL_MAX];
    uint64_t total;
    uint64_t done;
    cli_progress_clock_fn clock;
    void *clock_arg;
    int64_t start_ms;
    int64_t last_draw_ms;
    unsigned draws;
    int columns; /* the terminal's width: a wrapped line could not be redrawn */
};

static int64_t s_monotonic_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_progress_wanted(FILE *out, int json_output)
{
    const char *env = getenv("PUENTE_PROGRESS");
    if (!out || json_output || (env && strcmp(env, "0") == 0))
        return 0;
    return isatty(fileno(out)) ? 1 : 0;
}

cli_progress_t *cli_progress_new(const char *label, uint64_t total, FILE *out, int enabled,
                                 cli_progress_clock_fn clock, void *clock_arg)
{
    cli_progress_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->out = out;
    self->enabled = enabled && out;
    snprintf(self->label, sizeof self->label, "%s", label ? label : "");
    self->total = total;
    self->clock = clock ? clock : s_monotonic_ms;
    self->clock_arg = clock_arg;
    self->start_ms = self->clock(self->clock_arg);
    self->last_draw_ms = self->start_ms;
    self->columns = 80;
    struct winsize ws;
    if (self->enabled && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        self->columns = ws.ws_col;
    return self;
}

void cli_progress_phase(cli_progress_t *self, const char *label)
{
    if (self && label)
        snprintf(self->label, sizeof self->label, "%s", label);
}

void cli_progress_total(cli_progress_t *self, uint64_t total)
{
    if (self)
        self->total = total;
}

/* 1234567 -> "1,234,567". */
static void s_thousands(uint64_t v, char *out, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t w = 0;
    for (int i = 0; i < n && w + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[w++] = ',';
        out[w++] = digits[i];
    }
    out[w] = '\0';
}

static void s_duration(uint64_t seconds, char *out, size_t cap)
{
    if (seconds < 60)
        snprintf(out, cap, "%llus", (unsigned long long)seconds);
    else if (seconds < 3600)
        snprintf(out, cap, "%llum%02llus", (unsigned long long)(seconds / 60),
                 (unsigned long long)(seconds % 60));
    else
        snprintf(out, cap, "%lluh%02llum", (unsigned long long)(seconds / 3600),
                 (unsigned long long)(seconds / 60 % 60));
}

size_t cli_progress_format(char *buf, size_t cap, const char *label, uint64_t done, uint64_t total,
                           int64_t elapsed_ms)
{
    char d[32], t[32], r[40] = "", eta[48] = "", pct[16] = "";
    if (!buf || cap == 0)
        return 0;
    s_thousands(done, d, sizeof d);
    s_thousands(total, t, sizeof t);
    if (total > 0)
        snprintf(pct, sizeof pct, " (%u%%)",
                 (unsigned)(done >= total ? 100 : (double)done * 100.0 / (double)total));
    if (elapsed_ms >= 1000 && done > 0) {
        double rate = (double)done * 1000.0 / (double)elapsed_ms;
        char rate_text[32];
        if (rate < 10)
            snprintf(rate_text, sizeof rate_text, "%.1f", rate);
        else
            s_thousands((uint64_t)(rate + 0.5), rate_text, sizeof rate_text);
        snprintf(r, sizeof r, "  %s/s", rate_text);
        if (total > done) {
            char left[24];
            s_duration((uint64_t)((double)(total - done) / rate + 0.999), left, sizeof left);
            snprintf(eta, sizeof eta, "  ETA %s", left);
        }
    }
    int n = total > 0 ? snprintf(buf, cap, "%s: %s/%s%s%s%s", label ? label : "", d, t, pct, r, eta)
                      : snprintf(buf, cap, "%s: %s%s", label ? label : "", d, r);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static void s_draw(cli_progress_t *self, int64_t now)
{
    char line[256];
    size_t len = cli_progress_format(line, sizeof line, self->label, self->done, self->total,
                                     now - self->start_ms);
    if (len >= (size_t)self->columns)
        line[self->columns - 1] = '\0';
    /* Back to the start of the line, the text, then erase what a longer line left. */
    fprintf(self->out, "\r%s\033[K", line);
    fflush(self->out);
    self->last_draw_ms = now;
    self->draws++;
}

void cli_progress_update(cli_progress_t *self, uint64_t done)
{
    if (!self)
        return;
    self->done = done;
    if (!self->enabled)
        return;
    int64_t now = self->clock(self->clock_arg);
    if (now - self->start_ms < CLI_PROGRESS_DELAY_MS)
        return;
    if (self->draws > 0 && now - self->last_draw_ms < CLI_PROGRESS_INTERVAL_MS)
        return;
    s_draw(self, now);
}

void cli_progress_done(cli_progress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cli_progress_t *self = *self_p;
    if (self->enabled && self->draws > 0) {
        fputs("\r\033[K", self->out);
        fflush(self->out);
    }
    free(self);
    *self_p = NULL;
}

unsigned cli_progress_draws(const cli_progress_t *self)
{
    return self ? self->draws : 0;
}

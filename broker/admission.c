/*  admission — see admission.h. One open-addressing hash table (FNV-1a, linear
    probing, grown at half full) holds, per organisation id, its token bucket
    and its queue depth. Entries are never removed: the keys are identities and
    recipients of the directory, a bounded set. */
#include "admission.h"

#include <stdlib.h>
#include <string.h>

#define S_ID_MAX 33 /* PT_STORE_ORG_ID_MAX: org ids and "auditor:<ID>" */
#define S_INITIAL_SLOTS 64

typedef struct {
    char id[S_ID_MAX]; /* "" = free slot */
    double tokens;
    int64_t refilled_ms; /* when tokens was last brought up to date; 0 = never */
    int64_t depth;       /* deliveries waiting for this recipient */
} s_entry_t;

struct _pt_admission_t {
    pt_admission_config_t config;
    s_entry_t *slots;
    size_t n_slots; /* a power of two */
    size_t n_used;
};

static uint64_t s_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot of id, or the free slot where it would go. */
static s_entry_t *s_probe(s_entry_t *slots, size_t n_slots, const char *id)
{
    size_t i = (size_t)s_hash(id) & (n_slots - 1);
    while (slots[i].id[0] && strcmp(slots[i].id, id) != 0)
        i = (i + 1) & (n_slots - 1);
    return &slots[i];
}

static int s_grow(pt_admission_t *self)
{
    size_t n = self->n_slots * 2;
    s_entry_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->n_slots; i++)
        if (self->slots[i].id[0])
            *s_probe(slots, n, self->slots[i].id) = self->slots[i];
    free(self->slots);
    self->slots = slots;
    self->n_slots = n;
    return 0;
}

/* The entry of id, created if absent (create = 1). NULL if id is too long,
   absent (create = 0) or memory ran out. */
static s_entry_t *s_entry(pt_admission_t *self, const char *id, int create)
{
    if (!id || !id[0] || strlen(id) >= S_ID_MAX)
        return NULL;
    s_entry_t *e = s_probe(self->slots, self->n_slots, id);
    if (e->id[0] || !create)
        return e->id[0] ? e : NULL;
    if (2 * (self->n_used + 1) > self->n_slots) {
        if (s_grow(self) != 0)
            return NULL;
        e = s_probe(self->slots, self->n_slots, id);
    }
    memcpy(e->id, id, strlen(id) + 1);
    self->n_used++;
    return e;
}

pt_admission_t *pt_admission_new(const pt_admission_config_t *config)
{
    pt_admission_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (self->config.submit_burst < 1)
        self->config.submit_burst = 1;
    self->n_slots = S_INITIAL_SLOTS;
    self->slots = calloc(self->n_slots, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void pt_admission_destroy(pt_admission_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

int pt_admission_submit_take(pt_admission_t *self, const char *org, int64_t now_ms,
                             int64_t *retry_ms)
{
    if (retry_ms)
        *retry_ms = 0;
    double rate = self->config.submit_rate, burst = self->config.submit_burst;
    if (rate <= 0)
        return 1;
    s_entry_t *e = s_entry(self, org, 1);
    if (!e)
        return 1;
    if (e->refilled_ms == 0) {
        e->tokens = burst;
    } else if (now_ms > e->refilled_ms) {
        e->tokens += (double)(now_ms - e->refilled_ms) * rate / 1000.0;
        if (e->tokens > burst)
            e->tokens = burst;
    }
    if (now_ms > e->refilled_ms)
        e->refilled_ms = now_ms;
    if (e->tokens >= 1) {
        e->tokens -= 1;
        return 1;
    }
    if (retry_ms)
        *retry_ms = (int64_t)((1 - e->tokens) * 1000.0 / rate) + 1;
    return 0;
}

int pt_admission_queue_enabled(const pt_admission_t *self)
{
    return self->config.queue_quota > 0;
}

int pt_admission_queue_admit(pt_admission_t *self, const char *const *recipients, size_t n,
                             const char **full, int64_t *depth)
{
    if (self->config.queue_quota <= 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        s_entry_t *e = s_entry(self, recipients[i], 1);
        if (e && e->depth >= self->config.queue_quota) {
            if (full)
                *full = recipients[i];
            if (depth)
                *depth = e->depth;
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        s_entry_t *e = s_entry(self, recipients[i], 0);
        if (e)
            e->depth++;
    }
    return 1;
}

void pt_admission_queue_count(pt_admission_t *self, const char *const *recipients, size_t n)
{
    if (self->config.queue_quota <= 0)
        return;
    for (size_t i = 0; i < n; i++) {
        s_entry_t *e = s_entry(self, recipients[i], 1);
        if (e)
            e->depth++;
    }
}

void pt_admission_queue_release(pt_admission_t *self, const char *const *recipients, size_t n)
{
    if (self->config.queue_quota <= 0)
        return;
    for (size_t i = 0; i < n; i++)
        pt_admission_queue_acked(self, recipients[i]);
}

void pt_admission_queue_acked(pt_admission_t *self, const char *recipient)
{
    s_entry_t *e = s_entry(self, recipient, 0);
    if (e && e->depth > 0)
        e->depth--;
}

void pt_admission_queue_reset(pt_admission_t *self)
{
    for (size_t i = 0; i < self->n_slots; i++)
        self->slots[i].depth = 0;
}

void pt_admission_queue_set(pt_admission_t *self, const char *recipient, int64_t depth)
{
    s_entry_t *e = s_entry(self, recipient, 1);
    if (e)
        e->depth = depth > 0 ? depth : 0;
}

int64_t pt_admission_queue_depth(const pt_admission_t *self, const char *recipient)
{
    s_entry_t *e = s_entry((pt_admission_t *)self, recipient, 0);
    return e ? e->depth : 0;
}

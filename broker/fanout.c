/*  fanout — see fanout.h. Linear lists: a case has a handful of parties. */
#include "fanout.h"

#include <stdlib.h>
#include <string.h>

#include "pt_types.h"
#include "store.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

typedef struct {
    uint8_t message_id[16];
    char org[PT_STORE_ORG_ID_MAX];
    int acked;
} s_wait_t;

struct _pt_fanout_t {
    char (*parties)[PT_STORE_ORG_ID_MAX];
    size_t n_parties, cap_parties;
    s_wait_t *waits;
    size_t n_waits, cap_waits;
    char (*pending)[PT_STORE_ORG_ID_MAX];   /* built by s_pending_build */
    size_t n_pending;
    int failed;
};

int pt_fanout_type(const char *message_type)
{
    const pt_type_t *type = pt_types_find(message_type);
    return type && strcmp(type->family, "consent") == 0;
}

int pt_fanout_tracked(const char *message_type)
{
    return pt_fanout_type(message_type) ||
           (message_type && strcmp(message_type, "referral.revoke") == 0);
}

pt_fanout_t *pt_fanout_new(void)
{
    return calloc(1, sizeof(pt_fanout_t));
}

void pt_fanout_destroy(pt_fanout_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_fanout_t *self = *self_p;
    free(self->parties);
    free(self->waits);
    free(self->pending);
    free(self);
    *self_p = NULL;
}

static int s_party_add(pt_fanout_t *self, const char *org, size_t len)
{
    if (len == 0 || len >= PT_STORE_ORG_ID_MAX)
        return 0;   /* "broker" and empty actors are not organisations here */
    for (size_t i = 0; i < self->n_parties; i++)
        if (strlen(self->parties[i]) == len && memcmp(self->parties[i], org, len) == 0)
            return 0;
    if (self->n_parties == self->cap_parties) {
        size_t cap = self->cap_parties ? self->cap_parties * 2 : 8;
        void *grown = realloc(self->parties, cap * sizeof *self->parties);
        if (!grown)
            return -1;
        self->parties = grown;
        self->cap_parties = cap;
    }
    memcpy(self->parties[self->n_parties], org, len);
    self->parties[self->n_parties][len] = '\0';
    self->n_parties++;
    return 0;
}

static int s_wait_add(pt_fanout_t *self, const uint8_t *id, const char *org, size_t len)
{
    if (len == 0 || len >= PT_STORE_ORG_ID_MAX)
        return 0;
    if (self->n_waits == self->cap_waits) {
        size_t cap = self->cap_waits ? self->cap_waits * 2 : 8;
        s_wait_t *grown = realloc(self->waits, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->waits = grown;
        self->cap_waits = cap;
    }
    s_wait_t *w = &self->waits[self->n_waits++];
    memset(w, 0, sizeof *w);
    memcpy(w->message_id, id, 16);
    memcpy(w->org, org, len);
    return 0;
}

/* Calls add(self, ..., item, len) for every item of a ','-joined list. */
static int s_each(pt_fanout_t *self, const char *list, const uint8_t *id, int wait)
{
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int rc = wait ? s_wait_add(self, id, p, len) : s_party_add(self, p, len);
        if (rc != 0)
            return -1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int pt_fanout_add_event(pt_fanout_t *self, const char *kind, const char *message_type,
                        const uint8_t *message_id, const char *actor, const char *counterparty)
{
    if (!self || self->failed)
        return -1;
    if (!kind || !actor || !counterparty)
        return 0;
    int rc = 0;
    if (strcmp(kind, "stored") == 0) {
        rc = s_party_add(self, actor, strlen(actor)) || s_each(self, counterparty, NULL, 0);
        if (!rc && message_id && pt_fanout_tracked(message_type))
            rc = s_each(self, counterparty, message_id, 1);
    } else if (strcmp(kind, "acknowledged") == 0 && message_id) {
        for (size_t i = 0; i < self->n_waits; i++)
            if (memcmp(self->waits[i].message_id, message_id, 16) == 0 &&
                strcmp(self->waits[i].org, actor) == 0)
                self->waits[i].acked = 1;
    }
    if (rc)
        self->failed = 1;
    return rc ? -1 : 0;
}

int pt_fanout_is_party(const pt_fanout_t *self, const char *org)
{
    for (size_t i = 0; self && org && i < self->n_parties; i++)
        if (strcmp(self->parties[i], org) == 0)
            return 1;
    return 0;
}

size_t pt_fanout_party_count(const pt_fanout_t *self)
{
    return self && !self->failed ? self->n_parties : 0;
}

const char *pt_fanout_party_at(const pt_fanout_t *self, size_t i)
{
    return i < pt_fanout_party_count(self) ? self->parties[i] : NULL;
}

Puente__V1__RejectCode pt_fanout_check(const pt_fanout_t *self, const char *sender,
                                       const char *const *recipients, size_t n_recipients,
                                       pt_verdict_t *verdict)
{
    if (!pt_fanout_is_party(self, sender))
        return pt_verdict_reject(verdict, REJ(REJECT_NOT_PERMITTED),
                                 "%s is not a party to this case", sender);
    for (size_t i = 0; i < n_recipients; i++)
        if (!pt_fanout_is_party(self, recipients[i]))
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_PERMITTED),
                                     "%.40s never sent or received a message about this case",
                                     recipients[i]);
    for (size_t k = 0; k < self->n_parties; k++) {
        const char *party = self->parties[k];
        if (strcmp(party, sender) == 0)
            continue;
        int listed = 0;
        for (size_t i = 0; i < n_recipients && !listed; i++)
            listed = strcmp(recipients[i], party) == 0;
        if (!listed)
            return pt_verdict_reject(verdict, REJ(REJECT_FANOUT_INCOMPLETE),
                                     "%s received data about this case and must be a recipient "
                                     "(see `puente recipients`)",
                                     party);
    }
    return REJ(REJECT_UNSPECIFIED);
}

/* The pending list, deduplicated, in the order of the waits. Built lazily. */
static void s_pending_build(pt_fanout_t *self)
{
    free(self->pending);
    self->pending = NULL;
    self->n_pending = 0;
    if (self->failed || self->n_waits == 0)
        return;
    self->pending = calloc(self->n_waits, sizeof *self->pending);
    if (!self->pending) {
        self->failed = 1;
        return;
    }
    for (size_t i = 0; i < self->n_waits; i++) {
        if (self->waits[i].acked)
            continue;
        int seen = 0;
        for (size_t k = 0; k < self->n_pending && !seen; k++)
            seen = strcmp(self->pending[k], self->waits[i].org) == 0;
        if (!seen)
            memcpy(self->pending[self->n_pending++], self->waits[i].org, PT_STORE_ORG_ID_MAX);
    }
}

size_t pt_fanout_pending_count(pt_fanout_t *self)
{
    if (!self)
        return 0;
    s_pending_build(self);
    return self->failed ? 0 : self->n_pending;
}

const char *pt_fanout_pending_at(const pt_fanout_t *self, size_t i)
{
    if (!self || self->failed || !self->pending || i >= self->n_pending)
        return NULL;
    return self->pending[i];
}

/*  deliver — see deliver.h. */
#include "deliver.h"

#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "log.h"

typedef struct {
    char org[PT_STORE_ORG_ID_MAX];
    uint8_t routing_id[PT_ROUTING_ID_MAX];
    size_t routing_id_len;
    int scheduled;
    int64_t last_ack_ms;   /* pt_deliver_acked; 0 = none yet */
    int64_t last_retry_ms; /* last pass that offered retries */
} s_session_t;

struct _pt_deliver_t {
    pt_store_t *store;
    pt_transport_t *transport;
    s_session_t *sessions;
    size_t n_sessions;
    int64_t last_sweep_ms;
    int64_t paused_until_ms;    /* database unavailable: wait before trying again */
    uint64_t sent_count;
    uint32_t max_attempts;      /* 0 = no limit; see pt_deliver_set_max_attempts */
    int64_t poll_ms;            /* a pass for every session this often (fallback) */
    int64_t renew_ms;           /* claims renewed this often (a third of the lease) */
    int64_t last_renew_ms;
};

typedef struct {
    int64_t delivery_id;
    uint8_t message_id[16];
    uint8_t *envelope;
    size_t envelope_len;
    uint32_t attempts;
} s_due_t;

typedef struct {
    s_due_t items[PT_DELIVER_BATCH];
    size_t n;
    int failed;
} s_due_list_t;

pt_deliver_t *pt_deliver_new(pt_store_t *store, pt_transport_t *transport)
{
    pt_deliver_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->transport = transport;
    self->poll_ms = PT_DELIVER_SWEEP_MS;
    self->renew_ms = PT_STORE_DEFAULT_LEASE_MS / 3;
    return self;
}

void pt_deliver_configure(pt_deliver_t *self, int64_t poll_ms, int64_t lease_ms)
{
    if (!self)
        return;
    if (poll_ms > 0)
        self->poll_ms = poll_ms;
    if (lease_ms > 0)
        self->renew_ms = lease_ms / 3 > 0 ? lease_ms / 3 : 1;
}

void pt_deliver_wake_all(pt_deliver_t *self)
{
    for (size_t i = 0; self && i < self->n_sessions; i++)
        self->sessions[i].scheduled = 1;
}

void pt_deliver_destroy(pt_deliver_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->sessions);
    free(*self_p);
    *self_p = NULL;
}

static s_session_t *s_session(pt_deliver_t *self, const char *org)
{
    for (size_t i = 0; i < self->n_sessions; i++)
        if (strcmp(self->sessions[i].org, org) == 0)
            return &self->sessions[i];
    return NULL;
}

static void s_detach(pt_deliver_t *self, s_session_t *session)
{
    size_t index = (size_t)(session - self->sessions);
    self->sessions[index] = self->sessions[--self->n_sessions];
}

int pt_deliver_attach(pt_deliver_t *self, const char *org, const uint8_t *routing_id,
                      size_t routing_id_len)
{
    s_session_t *session = s_session(self, org);
    if (!session) {
        s_session_t *grown = realloc(self->sessions, (self->n_sessions + 1) * sizeof *grown);
        if (!grown)
            return -1;
        self->sessions = grown;
        session = &self->sessions[self->n_sessions++];
        memset(session, 0, sizeof *session);
        strncpy(session->org, org, sizeof session->org - 1);
    }
    memcpy(session->routing_id, routing_id, routing_id_len);
    session->routing_id_len = routing_id_len;
    session->scheduled = 1;
    return 0;
}

int pt_deliver_detach(pt_deliver_t *self, const char *org, const uint8_t *routing_id,
                      size_t routing_id_len)
{
    s_session_t *session = s_session(self, org);
    if (!session || session->routing_id_len != routing_id_len ||
        memcmp(session->routing_id, routing_id, routing_id_len) != 0)
        return 0;
    s_detach(self, session);
    return 1;
}

void pt_deliver_wake(pt_deliver_t *self, const char *org)
{
    s_session_t *session = s_session(self, org);
    if (session)
        session->scheduled = 1;
}

void pt_deliver_acked(pt_deliver_t *self, const char *org, int64_t now_ms)
{
    s_session_t *session = s_session(self, org);
    if (!session)
        return;
    session->scheduled = 1;
    session->last_ack_ms = now_ms;
}

int pt_deliver_routing_id(const pt_deliver_t *self, const char *org, const uint8_t **routing_id,
                          size_t *routing_id_len)
{
    for (size_t i = 0; self && org && i < self->n_sessions; i++)
        if (strcmp(self->sessions[i].org, org) == 0) {
            *routing_id = self->sessions[i].routing_id;
            *routing_id_len = self->sessions[i].routing_id_len;
            return 0;
        }
    return -1;
}

int64_t pt_deliver_backoff_ms(uint32_t attempts)
{
    int64_t backoff = PT_DELIVER_BACKOFF_MIN_MS;
    for (uint32_t i = 0; i < attempts && backoff < PT_DELIVER_BACKOFF_MAX_MS; i++)
        backoff *= 2;
    return backoff < PT_DELIVER_BACKOFF_MAX_MS ? backoff : PT_DELIVER_BACKOFF_MAX_MS;
}

static void s_collect(const pt_store_delivery_t *delivery, void *arg)
{
    s_due_list_t *list = arg;
    if (list->n >= PT_DELIVER_BATCH)
        return;
    s_due_t *item = &list->items[list->n];
    item->envelope = malloc(delivery->envelope_len ? delivery->envelope_len : 1);
    if (!item->envelope) {
        list->failed = 1;
        return;
    }
    memcpy(item->envelope, delivery->envelope, delivery->envelope_len);
    item->envelope_len = delivery->envelope_len;
    item->delivery_id = delivery->delivery_id;
    item->attempts = delivery->attempts;
    memcpy(item->message_id, delivery->message_id, 16);
    list->n++;
}

/* Packs a BrokerFrame{deliver} into *out (*len bytes). The stored envelope is our
   own earlier output, re-encoded unchanged: the signed header travels as the same
   bytes. 0; 1 when the stored envelope does not decode (damaged in the database:
   protobuf-c gives NULL for a failed allocation too, but a pass whose own
   allocations succeeded is not where a 1 KiB envelope's fail); -1 when the frame
   cannot be allocated (nothing wrong with the delivery). */
static int s_pack_deliver(const s_due_t *item, uint8_t **out, size_t *len)
{
    *out = NULL;
    Puente__V1__Envelope *envelope =
        puente__v1__envelope__unpack(NULL, item->envelope_len, item->envelope);
    if (!envelope)
        return 1;
    Puente__V1__Deliver deliver = PUENTE__V1__DELIVER__INIT;
    deliver.envelope = envelope;
    deliver.delivery_id = (uint64_t)item->delivery_id;
    deliver.attempt = item->attempts + 1;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_DELIVER;
    frame.deliver = &deliver;
    *len = puente__v1__broker_frame__get_packed_size(&frame);
    *out = malloc(*len);
    if (*out)
        puente__v1__broker_frame__pack(&frame, *out);
    puente__v1__envelope__free_unpacked(envelope, NULL);
    return *out ? 0 : -1;
}

/* One pass for one session. Returns the store result; sets *more when the batch
   was full (another pass is needed). */
static pt_store_result_t s_pass(pt_deliver_t *self, s_session_t *session, int64_t now_ms,
                                int *more, int *gone)
{
    s_due_list_t *list = calloc(1, sizeof *list);
    if (!list)
        return PT_STORE_ERROR;
    /* Retries only once the recipient stopped acknowledging for the shortest
       backoff, or every PT_DELIVER_RETRY_FORCE_MS whatever it does: a recipient
       still acknowledging is working through what it was sent (its queue), and
       offering that again would only make it drop duplicates (stop 11 measured
       1 671 messages taking 4 525 offers after an outage). A frame really lost
       on a busy connection waits at most PT_DELIVER_RETRY_FORCE_MS. */
    int retries = now_ms - session->last_ack_ms >= PT_DELIVER_BACKOFF_MIN_MS ||
                  now_ms - session->last_retry_ms >= PT_DELIVER_RETRY_FORCE_MS;
    if (retries)
        session->last_retry_ms = now_ms;
    pt_store_result_t rc = pt_store_due_deliveries_ex(self->store, session->org, now_ms,
                                                      PT_DELIVER_BATCH, retries, s_collect, list);
    *more = rc == PT_STORE_OK && list->n == PT_DELIVER_BATCH;
    /* Send the whole batch, then record every send in one transaction. A crash in
       between only means those are sent again (at-least-once; the SDK drops
       redelivered ids). */
    pt_store_sent_t *sent = rc == PT_STORE_OK && list->n ? calloc(list->n, sizeof *sent) : NULL;
    pt_store_dead_item_t unreadable[PT_DELIVER_BATCH]; /* list->n <= PT_DELIVER_BATCH */
    size_t n_sent = 0, n_unreadable = 0;
    if (rc == PT_STORE_OK && list->n && !sent)
        rc = PT_STORE_ERROR;
    size_t n_spent = 0;
    int no_memory = 0;
    for (size_t i = 0; sent && i < list->n; i++) {
        s_due_t *item = &list->items[i];
        if (self->max_attempts && item->attempts >= self->max_attempts) {
            n_spent++;   /* the dead-letter sweep takes it (within a second) */
            continue;
        }
        size_t len = 0;
        uint8_t *frame = NULL;
        int packed = s_pack_deliver(item, &frame, &len);
        if (packed < 0) {
            /* Out of memory: this and the rest stay pending for the next pass. */
            pt_log(PT_LOG_ERROR, "deliver", item->message_id, NULL,
                   "out of memory packing delivery %lld to %s; it waits",
                   (long long)item->delivery_id, session->org);
            no_memory = 1;
            *more = 0;
            break;
        }
        if (packed > 0) {
            /* Damaged in the database (it decoded when stored): offered again it
               fails again, and a batch of them would stop the queue for good. */
            pt_log(PT_LOG_ERROR, "deliver", item->message_id, NULL,
                   "stored envelope of delivery %lld to %s does not decode; dead-lettered "
                   "(unreadable)",
                   (long long)item->delivery_id, session->org);
            unreadable[n_unreadable++].delivery_id = item->delivery_id;
            continue;
        }
        int failed = pt_transport_send(self->transport, session->routing_id,
                                       session->routing_id_len, frame, len);
        free(frame);
        if (failed != 0) {
            /* Connection gone or not reading: keep everything in the database. */
            *gone = 1;
            *more = 0;
            break;
        }
        self->sent_count++;
        sent[n_sent].delivery_id = item->delivery_id;
        sent[n_sent].retry_at_ms = now_ms + pt_deliver_backoff_ms(item->attempts);
        n_sent++;
        pt_log(PT_LOG_DEBUG, "deliver", item->message_id, NULL, "delivered to %s (attempt %u)",
               session->org, item->attempts + 1);
    }
    /* A full batch of spent deliveries would only come back at once: the next
       pass waits for the periodic sweep instead. */
    if (n_spent > 0)
        *more = 0;
    if (n_sent > 0)
        rc = pt_store_mark_sent_batch(self->store, sent, n_sent, now_ms);
    if (n_unreadable > 0) {
        pt_store_result_t dead =
            pt_store_dead_letter_unreadable(self->store, unreadable, n_unreadable, now_ms);
        if (rc == PT_STORE_OK)
            rc = dead;
    }
    if (no_memory && rc == PT_STORE_OK)
        rc = PT_STORE_ERROR;
    free(sent);
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i].envelope);
    free(list);
    return rc;
}

/* Renews this instance's claims for the organisations still attached here (the
   others' claims expire, or were given up when their connection went). */
static pt_store_result_t s_renew(pt_deliver_t *self, int64_t now_ms)
{
    if (now_ms - self->last_renew_ms < self->renew_ms)
        return PT_STORE_OK;
    const char **orgs = malloc((self->n_sessions ? self->n_sessions : 1) * sizeof *orgs);
    if (!orgs)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < self->n_sessions; i++)
        orgs[i] = self->sessions[i].org;
    pt_store_result_t rc = pt_store_claims_renew(self->store, orgs, self->n_sessions, now_ms);
    free(orgs);
    if (rc == PT_STORE_OK)
        self->last_renew_ms = now_ms;
    return rc;
}

pt_store_result_t pt_deliver_run(pt_deliver_t *self, int64_t now_ms)
{
    if (now_ms < self->paused_until_ms)
        return PT_STORE_OK;
    pt_store_result_t renewed = s_renew(self, now_ms);
    if (renewed == PT_STORE_UNAVAILABLE) {
        self->paused_until_ms = now_ms + PT_DELIVER_SWEEP_MS;
        return renewed;
    }
    if (now_ms - self->last_sweep_ms >= self->poll_ms) {
        for (size_t i = 0; i < self->n_sessions; i++)
            self->sessions[i].scheduled = 1;
        self->last_sweep_ms = now_ms;
    }
    pt_store_result_t result = renewed;
    for (size_t i = 0; i < self->n_sessions;) {
        s_session_t *session = &self->sessions[i];
        if (!session->scheduled) {
            i++;
            continue;
        }
        int more = 0, gone = 0;
        pt_store_result_t rc = s_pass(self, session, now_ms, &more, &gone);
        if (rc == PT_STORE_UNAVAILABLE) {
            /* Stays scheduled; try again in a second rather than spinning. */
            self->paused_until_ms = now_ms + PT_DELIVER_SWEEP_MS;
            return rc;
        }
        if (rc != PT_STORE_OK)
            result = rc;
        if (gone) {
            pt_log(PT_LOG_INFO, "deliver", NULL, NULL,
                   "receiving connection of %s is gone; deliveries wait for it", session->org);
            /* Another broker may hold a connection of it: let that one retry now
               rather than when our lease ends. Best effort: the lease ends anyway. */
            (void)pt_store_claims_release(self->store, session->org, now_ms);
            s_detach(self, session);
            continue; /* the slot now holds another session */
        }
        session->scheduled = more;
        i++;
    }
    return result;
}

void pt_deliver_set_max_attempts(pt_deliver_t *self, uint32_t max_attempts)
{
    self->max_attempts = max_attempts;
}

uint64_t pt_deliver_sent_count(const pt_deliver_t *self)
{
    return self->sent_count;
}

size_t pt_deliver_receiving_count(const pt_deliver_t *self)
{
    return self->n_sessions;
}

int64_t pt_deliver_timeout_ms(const pt_deliver_t *self, int64_t now_ms)
{
    if (now_ms < self->paused_until_ms)
        return self->paused_until_ms - now_ms;
    for (size_t i = 0; i < self->n_sessions; i++)
        if (self->sessions[i].scheduled)
            return 0;
    int64_t until_sweep = self->last_sweep_ms + self->poll_ms - now_ms;
    int64_t until_renew = self->last_renew_ms + self->renew_ms - now_ms;
    if (until_renew < until_sweep)
        until_sweep = until_renew;
    return until_sweep > 0 ? until_sweep : 0;
}

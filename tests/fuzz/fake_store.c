/*  fake_store — see fake_store.h. Implements every function of broker/store.h. */
#include "fake_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_crypto.h"

#define S_MESSAGES 512
#define S_EVENTS 2048
#define S_ROWS 256
#define S_LIST 2400 /* recipients joined by ',' */

typedef struct {
    uint8_t id[16];
    uint8_t correlation[16];
    uint8_t sha[32];
    int64_t stored_at_ms;
    char type[PT_STORE_TEXT_MAX];
    char sender[PT_STORE_ORG_ID_MAX];
    char token[PT_STORE_TEXT_MAX];
    char recipients[S_LIST];
    uint8_t *envelope; /* a copy, for fake_store_message_at */
    size_t envelope_len;
} s_message_t;

typedef struct {
    char kind[PT_STORE_NAME_MAX + 8]; /* "state:" + a state name */
    char token[PT_STORE_TEXT_MAX];
    char actor[PT_STORE_ORG_ID_MAX];
    char counterparty[S_LIST];
    char type[PT_STORE_TEXT_MAX];
    uint8_t message_id[16];
    int has_id;
    int64_t at_ms;
    uint8_t detail[32];
    int has_detail;
} s_event_t;

typedef struct {
    uint8_t correlation[16];
    pt_store_lifecycle_t row;
} s_lifecycle_row_t;

typedef struct {
    char token[PT_STORE_TEXT_MAX];
    pt_store_case_owner_t row;
} s_owner_row_t;

struct _pt_store_t {
    int unused;
};

static fake_store_mode_t s_mode;
static s_message_t s_messages[S_MESSAGES];
static size_t s_n_messages;
static s_event_t s_events[S_EVENTS];
static size_t s_n_events;
static s_lifecycle_row_t s_lifecycles[S_ROWS], s_lifecycles_saved[S_ROWS];
static size_t s_n_lifecycles;
static s_owner_row_t s_owners[S_ROWS], s_owners_saved[S_ROWS];
static size_t s_n_owners;

static const pt_store_org_t *s_orgs;
static size_t s_n_orgs;
static const pt_store_agreement_t *s_agreements;
static size_t s_n_agreements;
static const pt_store_auditor_t *s_auditors;
static size_t s_n_auditors;

/* --- harness interface ------------------------------------------------------------- */

void fake_store_directory(const pt_store_org_t *orgs, size_t n_orgs,
                          const pt_store_agreement_t *agreements, size_t n_agreements,
                          const pt_store_auditor_t *auditors, size_t n_auditors)
{
    s_orgs = orgs;
    s_n_orgs = n_orgs;
    s_agreements = agreements;
    s_n_agreements = n_agreements;
    s_auditors = auditors;
    s_n_auditors = n_auditors;
}

/* Forgets the messages from index `from` on. */
static void s_messages_truncate(size_t from)
{
    for (size_t i = from; i < s_n_messages; i++)
        free(s_messages[i].envelope);
    s_n_messages = from;
}

void fake_store_reset(fake_store_mode_t mode)
{
    s_mode = mode;
    s_messages_truncate(0);
    s_n_events = s_n_lifecycles = s_n_owners = 0;
}

size_t fake_store_message_count(void)
{
    return s_n_messages;
}

int fake_store_message_at(size_t i, fake_store_message_t *out)
{
    if (i >= s_n_messages)
        return -1;
    const s_message_t *m = &s_messages[i];
    out->sender = m->sender;
    out->recipients = m->recipients;
    out->message_type = m->type;
    out->case_token = m->token;
    out->header_sha256 = m->sha;
    out->envelope = m->envelope;
    out->envelope_len = m->envelope_len;
    return 0;
}

/* --- helpers -------------------------------------------------------------------------- */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define S_DOWN_CHECK()                                                                             \
    do {                                                                                           \
        if (s_mode == FAKE_STORE_DOWN)                                                             \
            return PT_STORE_UNAVAILABLE;                                                           \
    } while (0)

static s_message_t *s_message(const uint8_t id[16])
{
    for (size_t i = 0; i < s_n_messages; i++)
        if (memcmp(s_messages[i].id, id, 16) == 0)
            return &s_messages[i];
    return NULL;
}

static s_lifecycle_row_t *s_lifecycle(const uint8_t correlation[16])
{
    for (size_t i = 0; i < s_n_lifecycles; i++)
        if (memcmp(s_lifecycles[i].correlation, correlation, 16) == 0)
            return &s_lifecycles[i];
    return NULL;
}

static s_owner_row_t *s_owner(const char *token)
{
    for (size_t i = 0; i < s_n_owners; i++)
        if (strcmp(s_owners[i].token, token) == 0)
            return &s_owners[i];
    return NULL;
}

/* 1 if org is in the ','-joined list. */
static int s_list_has(const char *list, const char *org)
{
    size_t n = strlen(org);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, org, n) == 0)
            return 1;
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

/* Appends an event; -1 when full. */
static int s_event(const char *kind, const char *token, const char *actor, const char *counterparty,
                   const char *type, const uint8_t *message_id, int64_t at_ms,
                   const uint8_t *detail)
{
    if (s_n_events == S_EVENTS)
        return -1;
    s_event_t *ev = &s_events[s_n_events++];
    memset(ev, 0, sizeof *ev);
    snprintf(ev->kind, sizeof ev->kind, "%s", kind);
    snprintf(ev->token, sizeof ev->token, "%s", token ? token : "");
    snprintf(ev->actor, sizeof ev->actor, "%s", actor ? actor : "");
    snprintf(ev->counterparty, sizeof ev->counterparty, "%s", counterparty ? counterparty : "");
    snprintf(ev->type, sizeof ev->type, "%s", type ? type : "");
    if (message_id) {
        memcpy(ev->message_id, message_id, 16);
        ev->has_id = 1;
    }
    if (detail) {
        memcpy(ev->detail, detail, 32);
        ev->has_detail = 1;
    }
    ev->at_ms = at_ms;
    return 0;
}

/* --- connection, migrations ---------------------------------------------------------- */

pt_store_t *pt_store_new(const char *conninfo, char *err, size_t err_len)
{
    (void)conninfo;
    pt_store_t *self = calloc(1, sizeof *self);
    if (!self && err && err_len)
        snprintf(err, err_len, "out of memory");
    return self;
}

void pt_store_destroy(pt_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

const char *pt_store_last_error(const pt_store_t *self)
{
    (void)self;
    return s_mode == FAKE_STORE_DOWN ? "fake store: down" : "";
}

void pt_store_set_delivery_window(pt_store_t *self, int64_t window)
{
    (void)self;
    (void)window;
}

const char *pt_store_statement_sql(const char *name)
{
    (void)name;
    return NULL;
}

int pt_store_migrate(pt_store_t *self, const char *sql_dir, char *err, size_t err_len)
{
    (void)self;
    (void)sql_dir;
    (void)err;
    (void)err_len;
    return 0;
}

int pt_store_migrations_current(pt_store_t *self, const char *sql_dir)
{
    (void)self;
    (void)sql_dir;
    return 1;
}

int pt_store_role_check(pt_store_t *self, const char *role, char *err, size_t err_len)
{
    (void)self;
    (void)role;
    (void)err;
    (void)err_len;
    return 0;   /* no database, no role */
}

int pt_store_role_in_effect(const pt_store_t *self)
{
    (void)self;
    return 1;
}

int pt_store_role_take(pt_store_t *self, const char *role, char *err, size_t err_len)
{
    return pt_store_role_check(self, role, err, err_len);
}

void pt_store_serial(pt_store_t *self)
{
    (void)self;
}

/* Nothing runs long here: a canceller that cancels nothing. */
pt_store_canceller_t *pt_store_canceller_new(pt_store_t *self)
{
    (void)self;
    return NULL;
}

int pt_store_cancel(pt_store_canceller_t *canceller)
{
    (void)canceller;
    return -1;
}

void pt_store_canceller_destroy(pt_store_canceller_t **canceller_p)
{
    if (canceller_p)
        *canceller_p = NULL;
}

pt_store_result_t pt_store_ping(pt_store_t *self)
{
    (void)self;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* 1 if org acknowledged message m. */
static int s_acked(const s_message_t *m, const char *org)
{
    for (size_t i = 0; i < s_n_events; i++)
        if (s_events[i].has_id && memcmp(s_events[i].message_id, m->id, 16) == 0 &&
            strcmp(s_events[i].kind, "acknowledged") == 0 && strcmp(s_events[i].actor, org) == 0)
            return 1;
    return 0;
}

/* One row per recipient with unacknowledged messages. */
pt_store_result_t pt_store_queue_stats(pt_store_t *self, pt_store_queue_stat_fn *fn, void *arg)
{
    (void)self;
    S_DOWN_CHECK();
    for (size_t i = 0; i < s_n_orgs; i++) {
        pt_store_queue_stat_t stat;
        memset(&stat, 0, sizeof stat);
        snprintf(stat.recipient, sizeof stat.recipient, "%s", s_orgs[i].org_id);
        for (size_t k = 0; k < s_n_messages; k++) {
            const s_message_t *m = &s_messages[k];
            if (!s_list_has(m->recipients, stat.recipient) || s_acked(m, stat.recipient))
                continue;
            if (stat.depth++ == 0)
                stat.oldest_stored_at_ms = m->stored_at_ms;
        }
        if (stat.depth)
            fn(&stat, arg);
    }
    return PT_STORE_OK;
}

/* --- directory ------------------------------------------------------------------------- */

pt_store_result_t pt_store_org_put(pt_store_t *self, const pt_store_org_t *org)
{
    (void)self;
    S_DOWN_CHECK();
    return org && org->org_id[0] ? PT_STORE_OK : PT_STORE_ERROR;
}

pt_store_result_t pt_store_agreement_put(pt_store_t *self, const pt_store_agreement_t *agreement)
{
    (void)self;
    S_DOWN_CHECK();
    return agreement && agreement->agreement_id[0] ? PT_STORE_OK : PT_STORE_ERROR;
}

pt_store_result_t pt_store_load_orgs(pt_store_t *self, pt_store_org_fn *fn, void *arg)
{
    (void)self;
    for (size_t i = 0; i < s_n_orgs; i++)
        fn(&s_orgs[i], arg);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_load_agreements(pt_store_t *self, pt_store_agreement_fn *fn, void *arg)
{
    (void)self;
    for (size_t i = 0; i < s_n_agreements; i++)
        fn(&s_agreements[i], arg);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_org_set_enabled(pt_store_t *self, const char *org_id, int enabled)
{
    (void)self;
    (void)enabled;
    S_DOWN_CHECK();
    for (size_t i = 0; i < s_n_orgs; i++)
        if (strcmp(s_orgs[i].org_id, org_id) == 0)
            return PT_STORE_OK;
    return PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_agreement_revoke(pt_store_t *self, const char *agreement_id,
                                            int64_t until_ms)
{
    (void)self;
    (void)until_ms;
    S_DOWN_CHECK();
    for (size_t i = 0; i < s_n_agreements; i++)
        if (strcmp(s_agreements[i].agreement_id, agreement_id) == 0)
            return PT_STORE_OK;
    return PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_auditor_put(pt_store_t *self, const pt_store_auditor_t *auditor)
{
    (void)self;
    S_DOWN_CHECK();
    return auditor && auditor->auditor_id[0] ? PT_STORE_OK : PT_STORE_ERROR;
}

pt_store_result_t pt_store_load_auditors(pt_store_t *self, pt_store_auditor_fn *fn, void *arg)
{
    (void)self;
    for (size_t i = 0; i < s_n_auditors; i++)
        fn(&s_auditors[i], arg);
    return PT_STORE_OK;
}

/* --- submissions, lifecycles ----------------------------------------------------------- */

/* The checks store.c makes before any SQL (required fields, no ',' in a recipient). */
static int s_submission_valid(const pt_submission_t *s)
{
    if (!s->message_id || !s->correlation_id || !s->message_type || !s->sender || !s->case_token ||
        !s->header_sha256 || !s->envelope || (s->n_recipients > 0 && !s->recipients))
        return 0;
    for (size_t i = 0; i < s->n_recipients; i++)
        if (!s->recipients[i] || strchr(s->recipients[i], ','))
            return 0;
    return 1;
}

/* Stores one new submission (events, lifecycle, owner). PT_STORE_OK, UNAVAILABLE
   (the lifecycle moved away from lifecycle_from) or ERROR (full). */
static pt_store_result_t s_store_one(const pt_submission_t *s, int64_t now,
                                     pt_store_receipt_t *receipt)
{
    if (s_n_messages == S_MESSAGES)
        return PT_STORE_ERROR;
    s_message_t *m = &s_messages[s_n_messages];
    memset(m, 0, sizeof *m);
    memcpy(m->id, s->message_id, 16);
    memcpy(m->correlation, s->correlation_id, 16);
    memcpy(m->sha, s->header_sha256, 32);
    m->stored_at_ms = now;
    snprintf(m->type, sizeof m->type, "%s", s->message_type);
    snprintf(m->sender, sizeof m->sender, "%s", s->sender);
    snprintf(m->token, sizeof m->token, "%s", s->case_token);
    m->envelope = malloc(s->envelope_len ? s->envelope_len : 1);
    if (!m->envelope)
        return PT_STORE_ERROR;
    memcpy(m->envelope, s->envelope, s->envelope_len);
    m->envelope_len = s->envelope_len;
    s_n_messages++; /* counted now so that a failure below frees the copy */
    size_t used = 0;
    for (size_t i = 0; i < s->n_recipients; i++) {
        int n = snprintf(m->recipients + used, sizeof m->recipients - used, "%s%s", i ? "," : "",
                         s->recipients[i]);
        if (n < 0 || (size_t)n >= sizeof m->recipients - used)
            return PT_STORE_ERROR;
        used += (size_t)n;
    }
    if (s->lifecycle_kind) {
        s_lifecycle_row_t *lc = s_lifecycle(s->correlation_id);
        const char *from = s->lifecycle_from ? s->lifecycle_from : "";
        if (from[0] ? !lc || strcmp(lc->row.state, from) != 0 : lc != NULL)
            return PT_STORE_UNAVAILABLE;
        if (!lc) {
            if (s_n_lifecycles == S_ROWS)
                return PT_STORE_ERROR;
            lc = &s_lifecycles[s_n_lifecycles++];
            memset(lc, 0, sizeof *lc);
            memcpy(lc->correlation, s->correlation_id, 16);
        }
        snprintf(lc->row.kind, sizeof lc->row.kind, "%s", s->lifecycle_kind);
        snprintf(lc->row.state, sizeof lc->row.state, "%s", s->lifecycle_to ? s->lifecycle_to : "");
        snprintf(lc->row.initiator, sizeof lc->row.initiator, "%s",
                 s->lifecycle_initiator ? s->lifecycle_initiator : "");
        snprintf(lc->row.counterparty, sizeof lc->row.counterparty, "%s",
                 s->lifecycle_counterparty ? s->lifecycle_counterparty : "");
        snprintf(lc->row.case_token, sizeof lc->row.case_token, "%s", s->case_token);
        lc->row.respond_by_ms = s->respond_by_ms;
        lc->row.follow_up_due_ms = s->follow_up_due_ms;
    }
    if (s->owner_to) {
        s_owner_row_t *o = s_owner(s->case_token);
        if (!o) {
            if (s_n_owners == S_ROWS)
                return PT_STORE_ERROR;
            o = &s_owners[s_n_owners++];
            memset(o, 0, sizeof *o);
            snprintf(o->token, sizeof o->token, "%s", s->case_token);
        }
        snprintf(o->row.owner, sizeof o->row.owner, "%s", s->owner_to);
        snprintf(o->row.former, sizeof o->row.former, "%s",
                 s->former_owners ? s->former_owners : "");
    }
    char state[PT_STORE_NAME_MAX + 8];
    snprintf(state, sizeof state, "state:%s", s->lifecycle_to ? s->lifecycle_to : "");
    if (s_event("submitted", s->case_token, s->sender, m->recipients, s->message_type,
                s->message_id, s->created_at_ms, s->header_sha256) ||
        s_event("stored", s->case_token, s->sender, m->recipients, s->message_type, s->message_id,
                now, s->header_sha256) ||
        (s->consent_overridden &&
         s_event("consent_overridden", s->case_token, s->sender, m->recipients, s->message_type,
                 s->message_id, now, s->header_sha256)) ||
        (s->lifecycle_kind && s_event(state, s->case_token, s->sender, m->recipients,
                                      s->message_type, s->message_id, now, s->header_sha256)) ||
        (s->owner_to &&
         s_event("owner_changed", s->case_token, s->owner_to, s->owner_from ? s->owner_from : "",
                 s->message_type, s->message_id, now, s->header_sha256)))
        return PT_STORE_ERROR;
    receipt->result = PT_STORE_OK;
    receipt->stored_at_ms = now;
    memcpy(receipt->header_sha256, s->header_sha256, 32);
    pt_sha256(s_events[s_n_events - 1].detail, 32, receipt->event_hash);
    receipt->leaf_index = -1;
    return PT_STORE_OK;
}

pt_store_result_t pt_store_submit_batch(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                        pt_store_receipt_t *receipts)
{
    if (!self || (n > 0 && (!subs || !receipts)))
        return PT_STORE_ERROR;
    for (size_t i = 0; i < n; i++)
        if (!s_submission_valid(&subs[i]))
            return PT_STORE_ERROR;
    S_DOWN_CHECK();
    if (s_mode == FAKE_STORE_REFUSE)
        return PT_STORE_ERROR;
    /* One transaction: on any failure nothing stays. */
    size_t n_messages = s_n_messages, n_events = s_n_events;
    size_t n_lifecycles = s_n_lifecycles, n_owners = s_n_owners;
    memcpy(s_lifecycles_saved, s_lifecycles, n_lifecycles * sizeof *s_lifecycles);
    memcpy(s_owners_saved, s_owners, n_owners * sizeof *s_owners);
    int64_t now = s_now_ms();
    pt_store_result_t rc = PT_STORE_OK;
    for (size_t i = 0; i < n && rc == PT_STORE_OK; i++) {
        memset(&receipts[i], 0, sizeof receipts[i]);
        const s_message_t *old = s_message(subs[i].message_id);
        if (old) {
            receipts[i].result = memcmp(old->sha, subs[i].header_sha256, 32) == 0
                                     ? PT_STORE_DUPLICATE
                                     : PT_STORE_CONFLICT;
            receipts[i].stored_at_ms = old->stored_at_ms;
            memcpy(receipts[i].header_sha256, old->sha, 32);
            pt_sha256(old->sha, 32, receipts[i].event_hash);
            receipts[i].leaf_index = -1;
            continue;
        }
        rc = s_store_one(&subs[i], now, &receipts[i]);
    }
    if (rc != PT_STORE_OK) {
        s_messages_truncate(n_messages);
        s_n_events = n_events;
        s_n_lifecycles = n_lifecycles;
        s_n_owners = n_owners;
        memcpy(s_lifecycles, s_lifecycles_saved, n_lifecycles * sizeof *s_lifecycles);
        memcpy(s_owners, s_owners_saved, n_owners * sizeof *s_owners);
    }
    return rc;
}

pt_store_result_t pt_store_lifecycle_load(pt_store_t *self, const pt_submission_t *subs, size_t n,
                                          pt_store_lifecycle_t *lifecycles,
                                          pt_store_case_owner_t *owners, int *known)
{
    if (!self || (n > 0 && (!subs || !lifecycles || !owners || !known)))
        return PT_STORE_ERROR;
    if (n == 0)
        return PT_STORE_OK;
    memset(lifecycles, 0, n * sizeof *lifecycles);
    memset(owners, 0, n * sizeof *owners);
    memset(known, 0, n * sizeof *known);
    for (size_t i = 0; i < n; i++)
        if (!subs[i].message_id || !subs[i].correlation_id || !subs[i].case_token)
            return PT_STORE_ERROR;
    S_DOWN_CHECK();
    for (size_t i = 0; i < n; i++) {
        const s_lifecycle_row_t *lc = s_lifecycle(subs[i].correlation_id);
        if (lc)
            lifecycles[i] = lc->row;
        const s_owner_row_t *o = s_owner(subs[i].case_token);
        if (o)
            owners[i] = o->row;
        known[i] = s_message(subs[i].message_id) != NULL;
    }
    return PT_STORE_OK;
}

pt_store_result_t pt_store_lifecycle_expire(pt_store_t *self, int64_t now_ms, size_t max,
                                            size_t *expired)
{
    (void)self;
    (void)now_ms;
    (void)max;
    *expired = 0;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_lifecycle_follow_up_overdue(pt_store_t *self, int64_t now_ms, size_t max,
                                                       size_t *raised)
{
    (void)self;
    (void)now_ms;
    (void)max;
    *raised = 0;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* Every lifecycle with a respond-by date counts as overdue (the sweep that would
   mark it does not run here). */
pt_store_result_t pt_store_overdue_list(pt_store_t *self, const char *org, size_t max,
                                        pt_store_overdue_fn *fn, void *arg)
{
    (void)self;
    S_DOWN_CHECK();
    size_t n = 0;
    for (size_t i = 0; i < s_n_lifecycles && n < max; i++) {
        const pt_store_lifecycle_t *lc = &s_lifecycles[i].row;
        if (!lc->respond_by_ms || (org && org[0] && strcmp(lc->initiator, org) != 0 &&
                                   !s_list_has(lc->counterparty, org)))
            continue;
        pt_store_overdue_t item;
        memset(&item, 0, sizeof item);
        snprintf(item.case_token, sizeof item.case_token, "%s", lc->case_token);
        memcpy(item.correlation_id, s_lifecycles[i].correlation, 16);
        snprintf(item.kind, sizeof item.kind, "%s", lc->kind);
        snprintf(item.state, sizeof item.state, "%s", lc->state);
        snprintf(item.deadline, sizeof item.deadline, "respond_by");
        item.due_at_ms = lc->respond_by_ms;
        item.overdue_since_ms = lc->respond_by_ms;
        snprintf(item.initiator, sizeof item.initiator, "%s", lc->initiator);
        snprintf(item.counterparty, sizeof item.counterparty, "%s", lc->counterparty);
        fn(&item, arg);
        n++;
    }
    return PT_STORE_OK;
}

/* --- notices ----------------------------------------------------------------------------- */

/* Every organisation has one notice, id 1, not acknowledged (a hello that
   receives sends it). */
pt_store_result_t pt_store_notices_pending(pt_store_t *self, const char *org, int unsent_only,
                                           size_t max, pt_store_notice_fn *fn, void *arg)
{
    (void)self;
    (void)unsent_only;
    S_DOWN_CHECK();
    if (!org || !org[0] || max == 0)
        return PT_STORE_OK;
    pt_store_notice_t notice;
    memset(&notice, 0, sizeof notice);
    notice.notice_id = 1;
    snprintf(notice.org_id, sizeof notice.org_id, "%s", org);
    snprintf(notice.kind, sizeof notice.kind, "overdue");
    snprintf(notice.case_token, sizeof notice.case_token, "ct_fuzz_1");
    snprintf(notice.message_type, sizeof notice.message_type, "referral.request");
    notice.due_at_ms = notice.created_at_ms = s_now_ms();
    fn(&notice, arg);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_notice_sent(pt_store_t *self, int64_t notice_id, int64_t now_ms)
{
    (void)self;
    (void)now_ms;
    S_DOWN_CHECK();
    return notice_id == 1 ? PT_STORE_OK : PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_notice_ack(pt_store_t *self, const char *org, int64_t notice_id,
                                      int64_t now_ms)
{
    (void)self;
    (void)org;
    (void)now_ms;
    S_DOWN_CHECK();
    return notice_id == 1 ? PT_STORE_OK : PT_STORE_NOT_FOUND;
}

/* --- deliveries and acks ------------------------------------------------------------------- */

pt_store_result_t pt_store_due_deliveries_ex(pt_store_t *self, const char *recipient,
                                             int64_t now_ms, size_t max, int retries,
                                             pt_store_delivery_fn *fn, void *arg)
{
    (void)retries;
    return pt_store_due_deliveries(self, recipient, now_ms, max, fn, arg);
}

pt_store_result_t pt_store_due_deliveries(pt_store_t *self, const char *recipient, int64_t now_ms,
                                          size_t max, pt_store_delivery_fn *fn, void *arg)
{
    (void)self;
    (void)recipient;
    (void)now_ms;
    (void)max;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_mark_sent(pt_store_t *self, int64_t delivery_id, int64_t now_ms,
                                     int64_t retry_at_ms)
{
    (void)self;
    (void)delivery_id;
    (void)now_ms;
    (void)retry_at_ms;
    S_DOWN_CHECK();
    return PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_mark_sent_batch(pt_store_t *self, pt_store_sent_t *items, size_t n,
                                           int64_t now_ms)
{
    (void)self;
    (void)now_ms;
    pt_store_result_t rc = s_mode == FAKE_STORE_DOWN ? PT_STORE_UNAVAILABLE : PT_STORE_OK;
    for (size_t i = 0; i < n; i++)
        items[i].result = rc == PT_STORE_OK ? PT_STORE_NOT_FOUND : rc;
    return rc;
}

/* One ack against the stored messages (not counting the others of its batch). */
static pt_store_result_t s_ack_one(const char *recipient, const uint8_t *message_id, int64_t now_ms)
{
    const s_message_t *m = s_message(message_id);
    if (!recipient || !m || !s_list_has(m->recipients, recipient))
        return PT_STORE_NOT_FOUND;
    for (size_t i = 0; i < s_n_events; i++)
        if (s_events[i].has_id && memcmp(s_events[i].message_id, message_id, 16) == 0 &&
            strcmp(s_events[i].kind, "acknowledged") == 0 &&
            strcmp(s_events[i].actor, recipient) == 0)
            return PT_STORE_DUPLICATE;
    if (s_event("acknowledged", m->token, recipient, m->sender, m->type, message_id, now_ms,
                m->sha))
        return PT_STORE_ERROR;
    /* No delivery pass runs here, so an ack of the initiator's opening message
       stands for both moves the store makes: submitted -> delivered (first
       delivery) -> received (ack). */
    s_lifecycle_row_t *lc = s_lifecycle(m->correlation);
    if (lc && strcmp(lc->row.initiator, m->sender) == 0 &&
        (strcmp(lc->row.state, "submitted") == 0 || strcmp(lc->row.state, "delivered") == 0)) {
        snprintf(lc->row.state, sizeof lc->row.state, "received");
        if (s_event("state:received", m->token, recipient, m->sender, m->type, message_id, now_ms,
                    m->sha))
            return PT_STORE_ERROR;
    }
    return PT_STORE_OK;
}

pt_store_result_t pt_store_ack(pt_store_t *self, const char *recipient, const uint8_t *message_id,
                               int64_t now_ms)
{
    (void)self;
    S_DOWN_CHECK();
    if (s_mode == FAKE_STORE_REFUSE)
        return PT_STORE_ERROR;
    return s_ack_one(recipient, message_id, now_ms);
}

pt_store_result_t pt_store_ack_batch(pt_store_t *self, pt_store_ack_item_t *items, size_t n,
                                     int64_t now_ms)
{
    (void)self;
    pt_store_result_t rc = s_mode == FAKE_STORE_DOWN     ? PT_STORE_UNAVAILABLE
                           : s_mode == FAKE_STORE_REFUSE ? PT_STORE_ERROR
                                                         : PT_STORE_OK;
    size_t n_events = s_n_events;
    for (size_t i = 0; i < n && rc == PT_STORE_OK; i++) {
        items[i].result = s_ack_one(items[i].recipient, items[i].message_id, now_ms);
        if (items[i].result == PT_STORE_ERROR)
            rc = PT_STORE_ERROR;
    }
    if (rc != PT_STORE_OK) {
        s_n_events = n_events;
        for (size_t i = 0; i < n; i++)
            items[i].result = rc;
    }
    return rc;
}

int64_t pt_store_next_due_ms(pt_store_t *self)
{
    (void)self;
    return INT64_MAX;
}

pt_store_result_t pt_store_recipients_with_due(pt_store_t *self, int64_t now_ms,
                                               void (*fn)(const char *recipient, void *arg),
                                               void *arg)
{
    (void)self;
    (void)now_ms;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* --- trail and audit -------------------------------------------------------------------------- */

pt_store_result_t pt_store_trail(pt_store_t *self, const char *case_token, pt_store_event_fn *fn,
                                 void *arg)
{
    (void)self;
    S_DOWN_CHECK();
    if (!case_token)
        return PT_STORE_ERROR;
    uint8_t prev[32] = {0};
    uint64_t seq = 0;
    for (size_t i = 0; i < s_n_events; i++) {
        const s_event_t *e = &s_events[i];
        if (strcmp(e->token, case_token) != 0)
            continue;
        pt_store_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.event.seq = ++seq;
        ev.event.at_ms = e->at_ms;
        ev.event.kind = e->kind;
        ev.event.case_token = e->token;
        ev.event.actor = e->actor;
        ev.event.counterparty = e->counterparty;
        ev.event.message_type = e->type;
        ev.event.message_id = e->has_id ? e->message_id : NULL;
        ev.event.detail = e->has_detail ? e->detail : NULL;
        ev.event.detail_len = e->has_detail ? 32 : 0;
        memcpy(ev.prev_hash, prev, 32);
        if (pt_trail_hash(prev, &ev.event, ev.hash) != 0)
            return PT_STORE_ERROR;
        memcpy(prev, ev.hash, 32);
        fn(&ev, arg);
    }
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_root(pt_store_t *self, uint64_t *size, uint8_t root[32])
{
    (void)self;
    S_DOWN_CHECK();
    *size = 0;
    memset(root, 0, 32);
    return PT_STORE_OK;
}

pt_store_result_t pt_store_checkpoint_put(pt_store_t *self, const pt_store_checkpoint_t *cp)
{
    (void)self;
    (void)cp;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_checkpoint_get(pt_store_t *self, uint64_t tree_size,
                                          pt_store_checkpoint_t *out)
{
    (void)self;
    (void)tree_size;
    (void)out;
    S_DOWN_CHECK();
    return PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_audit_leaves(pt_store_t *self, uint64_t n, uint8_t **leaves_p)
{
    (void)self;
    S_DOWN_CHECK();
    *leaves_p = NULL;
    return n == 0 ? PT_STORE_OK : PT_STORE_ERROR;
}

pt_store_result_t pt_store_leaf_event(pt_store_t *self, uint64_t leaf_index, int64_t *event_id,
                                      uint8_t event_hash[32])
{
    (void)self;
    (void)leaf_index;
    (void)event_id;
    (void)event_hash;
    S_DOWN_CHECK();
    return PT_STORE_NOT_FOUND;
}

pt_store_result_t pt_store_event_append(pt_store_t *self, const pt_trail_event_t *ev)
{
    (void)self;
    S_DOWN_CHECK();
    if (!ev || !ev->kind || !ev->case_token)
        return PT_STORE_ERROR;
    return s_event(ev->kind, ev->case_token, ev->actor, ev->counterparty, ev->message_type,
                   ev->message_id, ev->at_ms, NULL)
               ? PT_STORE_ERROR
               : PT_STORE_OK;
}

pt_store_result_t pt_store_case_parties(pt_store_t *self, const char *case_token,
                                        void (*fn)(const char *org, void *arg), void *arg)
{
    (void)self;
    S_DOWN_CHECK();
    if (!case_token)
        return PT_STORE_ERROR;
    /* Each organisation once, senders and recipients of the case's messages. */
    static char seen[S_MESSAGES * 4][PT_STORE_ORG_ID_MAX];
    size_t n_seen = 0;
    for (size_t i = 0; i < s_n_messages; i++) {
        const s_message_t *m = &s_messages[i];
        if (strcmp(m->token, case_token) != 0)
            continue;
        char list[S_LIST + PT_STORE_ORG_ID_MAX + 2];
        snprintf(list, sizeof list, "%s,%s", m->sender, m->recipients);
        char *save = NULL;
        for (char *org = strtok_r(list, ",", &save); org; org = strtok_r(NULL, ",", &save)) {
            size_t k = 0;
            while (k < n_seen && strcmp(seen[k], org) != 0)
                k++;
            if (k < n_seen || n_seen == sizeof seen / sizeof seen[0])
                continue;
            snprintf(seen[n_seen++], sizeof seen[0], "%s", org);
            fn(org, arg);
        }
    }
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_activity(pt_store_t *self, const char *org, int64_t from_ms,
                                          int64_t until_ms, int64_t after_at_ms,
                                          int64_t after_event_id, size_t max, pt_store_row_fn *fn,
                                          void *arg)
{
    (void)after_at_ms;
    (void)after_event_id;
    (void)self;
    (void)org;
    (void)from_ms;
    (void)until_ms;
    (void)max;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_items(pt_store_t *self, const char *kind, const char *state,
                                       int64_t updated_before_ms, const char *scope,
                                       int64_t after_updated_ms, const char *after_correlation,
                                       size_t max, pt_store_row_fn *fn, void *arg)
{
    (void)scope;
    (void)after_updated_ms;
    (void)after_correlation;
    (void)self;
    (void)kind;
    (void)state;
    (void)updated_before_ms;
    (void)max;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_corridors(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                           pt_store_row_fn *fn, void *arg)
{
    (void)self;
    (void)from_ms;
    (void)until_ms;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_audit_rejects(pt_store_t *self, int64_t from_ms, int64_t until_ms,
                                         pt_store_reject_fn *fn, void *arg)
{
    (void)self;
    (void)from_ms;
    (void)until_ms;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_retention_run(pt_store_t *self, int64_t now_ms, size_t max,
                                         size_t *deleted)
{
    (void)self;
    (void)now_ms;
    (void)max;
    *deleted = 0;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* --- issue 6: key history (one current set per organisation, from the directory) --- */

pt_store_result_t pt_store_load_key_sets(pt_store_t *self, const char *org_id,
                                         pt_store_key_set_fn *fn, void *arg)
{
    (void)self;
    S_DOWN_CHECK();
    for (size_t i = 0; i < s_n_orgs; i++) {
        if (org_id && org_id[0] && strcmp(s_orgs[i].org_id, org_id) != 0)
            continue;
        pt_store_key_set_t set;
        memset(&set, 0, sizeof set);
        set.key_set_id = (int64_t)i + 1;
        snprintf(set.org_id, sizeof set.org_id, "%s", s_orgs[i].org_id);
        memcpy(set.sign_public, s_orgs[i].sign_public, 32);
        memcpy(set.seal_public, s_orgs[i].seal_public, 32);
        memcpy(set.curve_public, s_orgs[i].curve_public, 32);
        fn(&set, arg);
    }
    return PT_STORE_OK;
}

/* Rotation and revocation would change the fixed directory the harness checks
   signatures against: refused like a database that cannot commit. */
pt_store_result_t pt_store_key_rotate(pt_store_t *self, const char *org_id,
                                      const uint8_t sign_public[32], const uint8_t seal_public[32],
                                      const uint8_t curve_public[32], int64_t now_ms,
                                      int64_t overlap_ms)
{
    (void)self;
    (void)org_id;
    (void)sign_public;
    (void)seal_public;
    (void)curve_public;
    (void)now_ms;
    (void)overlap_ms;
    S_DOWN_CHECK();
    return PT_STORE_UNAVAILABLE;
}

pt_store_result_t pt_store_key_revoke(pt_store_t *self, const char *org_id, int64_t key_set_id,
                                      int64_t at_ms, const char *reason, int64_t now_ms)
{
    (void)self;
    (void)org_id;
    (void)key_set_id;
    (void)at_ms;
    (void)reason;
    (void)now_ms;
    S_DOWN_CHECK();
    return PT_STORE_UNAVAILABLE;
}

pt_store_result_t pt_store_retention_pending(pt_store_t *self, int64_t now_ms, int64_t *count)
{
    (void)self;
    (void)now_ms;
    *count = 0;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* --- issue 6: dead letters (the fake store never dead-letters a delivery) --------- */

pt_store_result_t pt_store_dead_letter_sweep(pt_store_t *self, int64_t now_ms,
                                             uint32_t max_attempts, size_t max,
                                             pt_store_dead_letter_fn *fn, void *arg,
                                             size_t *count)
{
    (void)self;
    (void)now_ms;
    (void)max_attempts;
    (void)max;
    (void)fn;
    (void)arg;
    if (count)
        *count = 0;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_dead_letter_list(pt_store_t *self, const char *recipient,
                                            const uint8_t *message_ids, size_t n_ids,
                                            int64_t after_id, size_t max, int64_t now_ms,
                                            pt_store_dead_letter_fn *fn, void *arg)
{
    (void)self;
    (void)recipient;
    (void)message_ids;
    (void)n_ids;
    (void)after_id;
    (void)max;
    (void)now_ms;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_dead_letter_requeue(pt_store_t *self, pt_store_dead_item_t *items,
                                               size_t n, int64_t now_ms)
{
    (void)self;
    (void)now_ms;
    S_DOWN_CHECK();
    for (size_t i = 0; i < n; i++)
        items[i].result = PT_STORE_NOT_FOUND; /* none is dead here */
    return PT_STORE_OK;
}

pt_store_result_t pt_store_dead_letter_unreadable(pt_store_t *self, pt_store_dead_item_t *items,
                                                  size_t n, int64_t now_ms)
{
    (void)self;
    (void)now_ms;
    S_DOWN_CHECK();
    for (size_t i = 0; i < n; i++)
        items[i].result = PT_STORE_OK; /* the fake's deliveries are all still offered */
    return PT_STORE_OK;
}

pt_store_result_t pt_store_dead_letter_drop(pt_store_t *self, pt_store_dead_item_t *items,
                                            size_t n, const char *note, int64_t now_ms)
{
    (void)self;
    (void)note;
    (void)now_ms;
    S_DOWN_CHECK();
    for (size_t i = 0; i < n; i++)
        items[i].result = PT_STORE_NOT_FOUND; /* none is dead here */
    return PT_STORE_OK;
}

pt_store_result_t pt_store_dead_letter_counts(pt_store_t *self,
                                              void (*fn)(const char *recipient, int64_t count,
                                                         void *arg),
                                              void *arg)
{
    (void)self;
    (void)fn;
    (void)arg;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

/* --- issue 9: several brokers (one broker here: no claims, no notifications) ------ */

static char s_instance[PT_STORE_INSTANCE_MAX] = "fuzz";

int pt_store_set_instance(pt_store_t *self, const char *instance_id, int64_t lease_ms)
{
    (void)self;
    if (!instance_id || !instance_id[0] || strlen(instance_id) >= sizeof s_instance ||
        lease_ms <= 0)
        return -1;
    snprintf(s_instance, sizeof s_instance, "%s", instance_id);
    return 0;
}

const char *pt_store_instance(const pt_store_t *self)
{
    (void)self;
    return s_instance;
}

pt_store_result_t pt_store_claims_renew(pt_store_t *self, const char *const *recipients, size_t n,
                                        int64_t now_ms)
{
    (void)self;
    (void)recipients;
    (void)n;
    (void)now_ms;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_claims_release(pt_store_t *self, const char *recipient,
                                          int64_t now_ms)
{
    (void)self;
    (void)recipient;
    (void)now_ms;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

pt_store_result_t pt_store_notify(pt_store_t *self, const char *channel, const char *payload)
{
    (void)self;
    (void)channel;
    (void)payload;
    S_DOWN_CHECK();
    return PT_STORE_OK;
}

int pt_store_backend_pid(const pt_store_t *self)
{
    (void)self;
    return 0;
}

/* The session: never connected (the broker polls instead), always the signer. */
struct _pt_store_session_t {
    int unused;
};

pt_store_session_t *pt_store_session_new(const char *conninfo, char *err, size_t err_len)
{
    (void)conninfo;
    if (err && err_len)
        err[0] = '\0';
    return calloc(1, sizeof(pt_store_session_t));
}

void pt_store_session_destroy(pt_store_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int pt_store_session_socket(const pt_store_session_t *self)
{
    (void)self;
    return -1;
}

pt_store_result_t pt_store_session_poll(pt_store_session_t *self, int64_t now_ms,
                                        pt_store_notify_fn *fn, void *arg, int *reconnected)
{
    (void)self;
    (void)now_ms;
    (void)fn;
    (void)arg;
    if (reconnected)
        *reconnected = 0;
    return PT_STORE_OK;
}

int pt_store_session_signer(pt_store_session_t *self)
{
    (void)self;
    return 1;
}

const char *pt_store_session_error(const pt_store_session_t *self)
{
    (void)self;
    return "";
}

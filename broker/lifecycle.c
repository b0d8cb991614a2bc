/*  lifecycle — see lifecycle.h. The rules are one table; a row is
    (kind, states it applies in, message type, roles allowed) → next state, with
    the header fields it needs. */
#include "lifecycle.h"

#include <stdio.h>
#include <string.h>

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

#define I (1u << PT_LIFECYCLE_ROLE_INITIATOR)
#define C (1u << PT_LIFECYCLE_ROLE_COUNTERPARTY)
#define F (1u << PT_LIFECYCLE_ROLE_FOCAL_POINT)

enum {
    S_NEED_REASON = 1u << 0,       /* reason_code must be present */
    S_NEED_BIA = 1u << 1,          /* best_interests_ref must be present */
    S_TRACING_CLOSURE = 1u << 2,   /* reason_code from s_tracing_closures */
    S_REINT_CLOSURE = 1u << 3,     /* reason_code from s_reintegration_closures */
    S_VERIFIED = 1u << 4,          /* outcome "verified": child_agrees + family_willing */
    S_NOT_VERIFIED = 1u << 5,      /* outcome falsely_attributed / rejected */
};

typedef struct {
    const char *kind;
    const char *states;    /* ','-separated states the row applies in; "" = no lifecycle yet */
    const char *type;
    unsigned roles;
    const char *next;
    unsigned needs;
} s_rule_t;

/* The states before an answer. The recipient's answers are legal from
   "submitted" too: the lifecycle moves to "delivered" when the delivery pass
   records its sends, after the frame went out, and an answer (which proves the
   message arrived) may reach the database first, through this broker's next
   pass or another broker (docs/ha.md "An answer through another broker"). */
#define PRE "submitted,delivered,received"

static const s_rule_t s_rules[] = {
    /* Service referral. The sender may amend its request until the recipient acts,
       and revoke at any non-final point; only the recipient answers. */
    {"referral", "", "referral.request", I, "submitted", 0},
    {"referral", PRE, "referral.request", I, "submitted", 0},
    {"referral", PRE, "referral.accept", C, "accepted", 0},
    {"referral", PRE, "referral.reject", C, "rejected", S_NEED_REASON},
    {"referral", "accepted,in_progress", "referral.progress", C, "in_progress", 0},
    {"referral", "accepted,in_progress", "referral.done", C, "done", 0},
    {"referral", PRE ",accepted,in_progress", "referral.revoke", I, "revoked", 0},
    /* Case transfer: ownership moves to the recipient when it accepts. */
    {"transfer", "", "transfer.request", I, "submitted", 0},
    {"transfer", PRE, "transfer.request", I, "submitted", 0},
    {"transfer", PRE, "transfer.accept", C, "accepted", 0},
    {"transfer", PRE, "transfer.reject", C, "rejected", S_NEED_REASON},
    /* The sender withdraws a transfer the recipient has not answered (issue 5). */
    {"transfer", "delivered,received", "transfer.revoke", I, "revoked", 0},
    /* Transfer request: the owner's acceptance starts a transfer from the owner to
       the requester on the same correlation id (the owner's transfer.request
       carries the case file); ownership moves when the requester accepts it. */
    {"transfer_ask", "", "transfer.ask", I, "submitted", 0},
    {"transfer_ask", PRE, "transfer.ask", I, "submitted", 0},
    {"transfer_ask", PRE, "transfer.accept", C, "accepted", 0},
    {"transfer_ask", PRE, "transfer.reject", C, "rejected", S_NEED_REASON},
    {"transfer_ask", "accepted", "transfer.request", C, "transferring", 0},
    {"transfer_ask", "transferring", "transfer.accept", I, "transferred", 0},
    {"transfer_ask", "transferring", "transfer.reject", I, "rejected", S_NEED_REASON},
    /* Social inquiry / home study. */
    {"inquiry", "", "inquiry.request", I, "submitted", 0},
    {"inquiry", PRE, "inquiry.request", I, "submitted", 0},
    {"inquiry", PRE, "inquiry.accept", C, "accepted", 0},
    {"inquiry", "accepted", "inquiry.report", C, "reported", 0},
    {"inquiry", "reported", "inquiry.close", I, "closed", 0},
    {"inquiry", PRE ",accepted", "inquiry.close", I, "closed", S_NEED_REASON},
    /* Family tracing: the recipients of the request are focal points. */
    {"tracing", "", "tracing.request", I, "open", 0},
    {"tracing", "open", "tracing.request", I, "open", 0},
    {"tracing", "open,tracing", "tracing.progress", F, "tracing", 0},
    {"tracing", "open,tracing,possible_match", "tracing.match", F, "possible_match", 0},
    {"tracing", "possible_match", "tracing.verify", I, "verification_pending", 0},
    {"tracing", "verification_pending", "tracing.verification", I | F, "verified",
     S_NEED_REASON | S_VERIFIED},
    {"tracing", "verification_pending", "tracing.verification", I | F, "tracing",
     S_NEED_REASON | S_NOT_VERIFIED},
    {"tracing", "verified", "tracing.reunification_plan", I | F, "reunification_planned",
     S_NEED_BIA},
    {"tracing", "reunification_planned", "tracing.reunify", I | F, "reunified", 0},
    {"tracing", "reunified", "tracing.close", I, "closed", 0},
    {"tracing",
     "open,tracing,possible_match,verification_pending,verified,reunification_planned",
     "tracing.close", I, "closed", S_NEED_REASON | S_TRACING_CLOSURE},
    /* Return and reintegration: the receiving country (counterparty) reports. */
    {"return", "", "return.notice", I, "notified", S_NEED_BIA},
    {"return", "notified", "return.notice", I, "notified", S_NEED_BIA},
    {"return", "notified", "return.arrival", C, "arrived", 0},
    {"return", "arrived,assessed,reopened", "reintegration.assessment", C, "assessed", 0},
    {"return", "arrived,assessed,planned,implementation,reopened", "reintegration.plan", C,
     "planned", 0},
    {"return", "planned,implementation", "reintegration.followup", C, "implementation", 0},
    {"return", "notified,arrived,assessed,planned,implementation,reopened",
     "reintegration.close", C, "closed", S_NEED_REASON | S_REINT_CLOSURE},
    {"return", "closed", "reintegration.reopen", I | C, "reopened", 0},
};

#undef PRE

typedef struct {
    const char *type;
    const char *kind;
    int opens;
} s_type_kind_t;

static const s_type_kind_t s_type_kinds[] = {
    {"referral.request", "referral", 1},     {"referral.accept", "referral", 0},
    {"referral.progress", "referral", 0},    {"referral.done", "referral", 0},
    {"referral.revoke", "referral", 0},      {"referral.reject", "referral", 0},
    {"transfer.request", "transfer", 1},     {"transfer.ask", "transfer_ask", 1},
    {"transfer.revoke", "transfer", 0},
    {"inquiry.request", "inquiry", 1},       {"inquiry.accept", "inquiry", 0},
    {"inquiry.report", "inquiry", 0},        {"inquiry.close", "inquiry", 0},
    {"tracing.request", "tracing", 1},       {"tracing.progress", "tracing", 0},
    {"tracing.verify", "tracing", 0},        {"tracing.reunify", "tracing", 0},
    {"tracing.close", "tracing", 0},         {"tracing.match", "tracing", 0},
    {"tracing.verification", "tracing", 0},  {"tracing.reunification_plan", "tracing", 0},
    {"return.notice", "return", 1},          {"return.arrival", "return", 0},
    {"reintegration.assessment", "return", 0}, {"reintegration.plan", "return", 0},
    {"reintegration.followup", "return", 0}, {"reintegration.close", "return", 0},
    {"reintegration.reopen", "return", 0},
};

static const char *const s_tracing_closures[] = {"unsuccessful", "withdrawn", "consent_withdrawn",
                                                 "deceased", NULL};
static const char *const s_reintegration_closures[] = {
    "reintegrated", "transferred", "re_migrated", "lost_contact", "death", "other", NULL};

int pt_lifecycle_list_has(const char *list, const char *org)
{
    size_t len = strlen(org);
    if (!list || len == 0)
        return 0;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, org, len) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* transfer.accept is shared by two kinds: the message type alone names the kind
   of the lifecycle it may open, not of the one it answers. */
const char *pt_lifecycle_kind_of(const char *message_type)
{
    if (!message_type)
        return NULL;
    if (strcmp(message_type, "transfer.accept") == 0 || strcmp(message_type, "transfer.reject") == 0)
        return "transfer";
    for (size_t i = 0; i < sizeof s_type_kinds / sizeof s_type_kinds[0]; i++)
        if (strcmp(s_type_kinds[i].type, message_type) == 0)
            return s_type_kinds[i].kind;
    return NULL;
}

int pt_lifecycle_opens(const char *message_type)
{
    for (size_t i = 0; message_type && i < sizeof s_type_kinds / sizeof s_type_kinds[0]; i++)
        if (strcmp(s_type_kinds[i].type, message_type) == 0)
            return s_type_kinds[i].opens;
    return 0;
}

pt_lifecycle_role_t pt_lifecycle_role(const pt_lifecycle_t *lc, const char *sender)
{
    if (strcmp(lc->initiator, sender) == 0)
        return PT_LIFECYCLE_ROLE_INITIATOR;
    if (pt_lifecycle_list_has(lc->counterparty, sender))
        return strcmp(lc->kind, "tracing") == 0 ? PT_LIFECYCLE_ROLE_FOCAL_POINT
                                                : PT_LIFECYCLE_ROLE_COUNTERPARTY;
    return PT_LIFECYCLE_ROLE_OTHER;
}

static int s_in_list(const char *const *list, const char *value)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], value) == 0)
            return 1;
    return 0;
}

/* The first ','-separated code of reason_code, copied into out. */
static void s_first_code(const char *reason, char *out, size_t cap)
{
    const char *end = strchr(reason, ',');
    size_t n = end ? (size_t)(end - reason) : strlen(reason);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, reason, n);
    out[n] = '\0';
}

static int s_state_in(const char *states, const char *state)
{
    if (states[0] == '\0')
        return state[0] == '\0';
    return state[0] != '\0' && pt_lifecycle_list_has(states, state);
}

Puente__V1__RejectCode pt_lifecycle_step(const char *kind, const char *state,
                                         pt_lifecycle_role_t role,
                                         const Puente__V1__Header *header,
                                         const char **next_state, pt_verdict_t *verdict)
{
    const char *type = header->message_type ? header->message_type : "";
    const char *reason = header->reason_code ? header->reason_code : "";
    const char *bia = header->best_interests_ref ? header->best_interests_ref : "";
    if (!state)
        state = "";
    *next_state = NULL;
    const s_rule_t *matched[4];
    size_t n_matched = 0;
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules[0]; i++) {
        const s_rule_t *r = &s_rules[i];
        if (strcmp(r->kind, kind) == 0 && strcmp(r->type, type) == 0 &&
            s_state_in(r->states, state) && n_matched < 4)
            matched[n_matched++] = r;
    }
    if (n_matched == 0) {
        if (state[0] == '\0')
            return pt_verdict_reject(verdict, REJ(REJECT_ILLEGAL_TRANSITION),
                                     "%s cannot start a %s lifecycle: no lifecycle with this "
                                     "correlation id",
                                     type, kind);
        return pt_verdict_reject(verdict, REJ(REJECT_ILLEGAL_TRANSITION),
                                 "%s is not allowed in state %s of this %s lifecycle", type, state,
                                 kind);
    }
    if (!(matched[0]->roles & (1u << role)))
        return pt_verdict_reject(verdict, REJ(REJECT_NOT_PERMITTED),
                                 "%s in state %s may only come from the %s", type,
                                 state[0] ? state : "(new)",
                                 matched[0]->roles & I
                                     ? (matched[0]->roles & (C | F) ? "parties" : "initiator")
                                     : (matched[0]->roles & F ? "focal points" : "counterparty"));
    unsigned needs = matched[0]->needs;
    if ((needs & S_NEED_REASON) && reason[0] == '\0')
        return pt_verdict_reject(verdict, REJ(REJECT_REASON_REQUIRED),
                                 "%s needs a reason_code", type);
    if ((needs & S_NEED_BIA) && bia[0] == '\0')
        return pt_verdict_reject(verdict, REJ(REJECT_BEST_INTERESTS_REQUIRED),
                                 "%s needs a best_interests_ref", type);
    if (needs & (S_VERIFIED | S_NOT_VERIFIED)) {
        char outcome[40];
        s_first_code(reason, outcome, sizeof outcome);
        const s_rule_t *pick = NULL;
        for (size_t k = 0; k < n_matched; k++) {
            if ((matched[k]->needs & S_VERIFIED) && strcmp(outcome, "verified") == 0)
                pick = matched[k];
            if ((matched[k]->needs & S_NOT_VERIFIED) &&
                (strcmp(outcome, "falsely_attributed") == 0 || strcmp(outcome, "rejected") == 0))
                pick = matched[k];
        }
        if (!pick)
            return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                     "%s: the first reason code must be verified, "
                                     "falsely_attributed or rejected",
                                     type);
        if ((pick->needs & S_VERIFIED) && !(pt_lifecycle_list_has(reason, "child_agrees") &&
                                             pt_lifecycle_list_has(reason, "family_willing")))
            return pt_verdict_reject(verdict, REJ(REJECT_CONSENT_MISSING),
                                     "verified needs the codes child_agrees and family_willing");
        *next_state = pick->next;
        return REJ(REJECT_UNSPECIFIED);
    }
    if ((needs & S_TRACING_CLOSURE) && !s_in_list(s_tracing_closures, reason))
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "tracing.close reason_code must be unsuccessful, withdrawn, "
                                 "consent_withdrawn or deceased");
    if ((needs & S_REINT_CLOSURE) && !s_in_list(s_reintegration_closures, reason))
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "reintegration.close reason_code must be reintegrated, "
                                 "transferred, re_migrated, lost_contact, death or other");
    *next_state = matched[0]->next;
    return REJ(REJECT_UNSPECIFIED);
}

/* Joins the header's recipients; -1 if they do not fit. */
static int s_join_recipients(const Puente__V1__Header *header, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < header->n_recipients; i++) {
        size_t len = strlen(header->recipients[i]);
        if (used + len + 2 > cap)
            return -1;
        if (i)
            out[used++] = ',';
        memcpy(out + used, header->recipients[i], len + 1);
        used += len;
    }
    return 0;
}

/* Moves ownership of the case to new_owner, remembering from as a former owner. */
static void s_move_owner(pt_case_owner_t *owner, const char *new_owner, const char *from)
{
    char former[PT_LIFECYCLE_PARTIES_MAX] = "";
    size_t used = 0;
    /* Keep every former owner except the new one, then add the previous owner. */
    for (const char *p = owner->former; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int is_new = n == strlen(new_owner) && memcmp(p, new_owner, n) == 0;
        if (!is_new && n > 0 && used + n + 2 < sizeof former) {
            if (used)
                former[used++] = ',';
            memcpy(former + used, p, n);
            used += n;
            former[used] = '\0';
        }
        if (!end)
            break;
        p = end + 1;
    }
    size_t n = strlen(from);
    if (n && strcmp(from, new_owner) != 0 && !pt_lifecycle_list_has(former, from) &&
        used + n + 2 < sizeof former) {
        if (used)
            former[used++] = ',';
        memcpy(former + used, from, n + 1);
    }
    memcpy(owner->former, former, sizeof former);
    snprintf(owner->owner, sizeof owner->owner, "%s", new_owner);
}

Puente__V1__RejectCode pt_lifecycle_check(pt_lifecycle_t *lc, pt_case_owner_t *owner,
                                          const Puente__V1__Header *header,
                                          pt_lifecycle_effect_t *effect, pt_verdict_t *verdict)
{
    const char *type = header->message_type;
    const char *sender = header->sender;
    memset(effect, 0, sizeof *effect);
    const char *kind = pt_lifecycle_kind_of(type);
    if (!kind)
        return pt_verdict_reject(verdict, REJ(REJECT_UNKNOWN_TYPE), "unknown message type");
    if (header->n_recipients == 0)
        return pt_verdict_reject(verdict, REJ(REJECT_UNKNOWN_RECIPIENT), "no recipient");

    /* Ownership: the first sender of an opening message of a case token owns it
       (recorded below when the message passes); a transfer request needs an owner. */
    if (owner && !owner->owner[0] && strcmp(type, "transfer.ask") == 0)
        return pt_verdict_reject(verdict, REJ(REJECT_NOT_CASE_OWNER),
                                 "this case has no owner to ask for a transfer");
    /* Need-to-know after a transfer: the former owner's trail stays, its voice does not. */
    if (owner && owner->owner[0]) {
        if (strcmp(owner->owner, sender) != 0 && pt_lifecycle_list_has(owner->former, sender))
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_CASE_OWNER),
                                     "%s transferred this case to %s and can no longer send "
                                     "updates for it",
                                     sender, owner->owner);
        if (strcmp(type, "transfer.request") == 0 && strcmp(owner->owner, sender) != 0)
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_CASE_OWNER),
                                     "only the case owner %s may transfer this case",
                                     owner->owner);
        if (strcmp(type, "transfer.ask") == 0 && strcmp(owner->owner, header->recipients[0]) != 0)
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_CASE_OWNER),
                                     "a transfer request goes to the case owner %s",
                                     owner->owner);
    }

    int exists = lc->kind[0] != '\0';
    if (exists) {
        /* transfer.accept / transfer.reject answer either kind of transfer. */
        /* transfer.request in a transfer_ask lifecycle is the owner's transfer
           that an accepted request starts. */
        int same = strcmp(lc->kind, kind) == 0 ||
                   (strcmp(kind, "transfer") == 0 && strcmp(lc->kind, "transfer_ask") == 0 &&
                    (!pt_lifecycle_opens(type) || strcmp(type, "transfer.request") == 0));
        if (!same)
            return pt_verdict_reject(verdict, REJ(REJECT_ILLEGAL_TRANSITION),
                                     "correlation id belongs to a %s lifecycle, not %s", lc->kind,
                                     type);
        if (strcmp(lc->case_token, header->case_token) != 0)
            return pt_verdict_reject(verdict, REJ(REJECT_ILLEGAL_TRANSITION),
                                     "this correlation id belongs to another case token");
        kind = lc->kind;
    } else if (strcmp(type, "transfer.ask") == 0) {
        kind = "transfer_ask";
    }
    pt_lifecycle_role_t role =
        exists ? pt_lifecycle_role(lc, sender) : PT_LIFECYCLE_ROLE_INITIATOR;
    if (exists && role == PT_LIFECYCLE_ROLE_OTHER)
        return pt_verdict_reject(verdict, REJ(REJECT_NOT_PERMITTED),
                                 "%s is not a party to this %s lifecycle", sender, kind);
    const char *next = NULL;
    Puente__V1__RejectCode code =
        pt_lifecycle_step(kind, exists ? lc->state : "", role, header, &next, verdict);
    if (code)
        return code;

    char recipients[PT_LIFECYCLE_PARTIES_MAX];
    if (s_join_recipients(header, recipients, sizeof recipients) != 0)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "too many recipients for one lifecycle");
    int opening = pt_lifecycle_opens(type);
    if (exists) {
        int tracing = strcmp(kind, "tracing") == 0;
        for (size_t i = 0; i < header->n_recipients; i++) {
            const char *r = header->recipients[i];
            /* A tracing request may widen the search to further focal points. */
            if (opening && tracing)
                continue;
            if (strcmp(r, lc->initiator) != 0 && !pt_lifecycle_list_has(lc->counterparty, r))
                return pt_verdict_reject(verdict, REJ(REJECT_ILLEGAL_TRANSITION),
                                         "recipient %s is not a party to this %s lifecycle", r,
                                         kind);
        }
        if (opening && tracing) {
            for (size_t i = 0; i < header->n_recipients; i++) {
                const char *r = header->recipients[i];
                size_t used = strlen(lc->counterparty), len = strlen(r);
                if (pt_lifecycle_list_has(lc->counterparty, r))
                    continue;
                if (used + len + 2 > sizeof lc->counterparty)
                    return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                             "too many focal points for one lifecycle");
                lc->counterparty[used] = ',';
                memcpy(lc->counterparty + used + 1, r, len + 1);
            }
        }
        snprintf(effect->from, sizeof effect->from, "%s", lc->state);
    } else {
        snprintf(lc->kind, sizeof lc->kind, "%s", kind);
        snprintf(lc->initiator, sizeof lc->initiator, "%s", sender);
        memcpy(lc->counterparty, recipients, sizeof lc->counterparty);
        snprintf(lc->case_token, sizeof lc->case_token, "%s", header->case_token);
    }
    if (opening && header->respond_by_ms > 0)
        lc->respond_by_ms = header->respond_by_ms;
    /* Each plan (revision) and follow-up report sets the next follow-up due date;
       without one the plan has no pending deadline. */
    if (strcmp(type, "reintegration.plan") == 0 || strcmp(type, "reintegration.followup") == 0)
        lc->follow_up_due_ms = header->follow_up_due_ms > 0 ? header->follow_up_due_ms : 0;
    snprintf(lc->state, sizeof lc->state, "%s", next);
    snprintf(effect->to, sizeof effect->to, "%s", next);
    effect->changes = 1;

    /* transfer: the acceptor takes the case; transfer_ask: the asker, when it
       accepts the transfer the owner sent it ("transferred"). */
    int moves = strcmp(type, "transfer.accept") == 0 &&
                (strcmp(kind, "transfer") == 0 || strcmp(next, "transferred") == 0);
    if (moves && owner) {
        const char *giver = strcmp(kind, "transfer") == 0 ? lc->initiator : lc->counterparty;
        snprintf(effect->owner_from, sizeof effect->owner_from, "%.*s",
                 (int)sizeof effect->owner_from - 1, owner->owner[0] ? owner->owner : giver);
        snprintf(effect->owner_to, sizeof effect->owner_to, "%s", sender);
        s_move_owner(owner, sender, effect->owner_from);
    } else if (owner && !owner->owner[0] && opening) {
        snprintf(owner->owner, sizeof owner->owner, "%s", sender);
        snprintf(effect->owner_first, sizeof effect->owner_first, "%s", sender);
    }
    return REJ(REJECT_UNSPECIFIED);
}

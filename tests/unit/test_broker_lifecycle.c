/*  Unit tests: broker/lifecycle.c (transition tables, need-to-know) and
    broker/consent.c (consent gate, override, withhold list).

    The transition test walks the full cross product (kind x state x message type x
    sender role) and compares with s_expected below, written out one state per row
    from the issue text, independently of the implementation's compressed table. */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "consent.h"
#include "lifecycle.h"
#include "pt_types.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

typedef struct {
    const char *kind, *state, *type, *roles, *next;   /* roles: I, C, F letters; state "" = none */
} s_row_t;

static const s_row_t s_expected[] = {
    /* service referral */
    {"referral", "", "referral.request", "I", "submitted"},
    {"referral", "submitted", "referral.request", "I", "submitted"},
    {"referral", "delivered", "referral.request", "I", "submitted"},
    {"referral", "received", "referral.request", "I", "submitted"},
    {"referral", "submitted", "referral.accept", "C", "accepted"}, /* answer before "delivered" was recorded */
    {"referral", "delivered", "referral.accept", "C", "accepted"},
    {"referral", "received", "referral.accept", "C", "accepted"},
    {"referral", "submitted", "referral.reject", "C", "rejected"},
    {"referral", "delivered", "referral.reject", "C", "rejected"},
    {"referral", "received", "referral.reject", "C", "rejected"},
    {"referral", "accepted", "referral.progress", "C", "in_progress"},
    {"referral", "in_progress", "referral.progress", "C", "in_progress"},
    {"referral", "accepted", "referral.done", "C", "done"},
    {"referral", "in_progress", "referral.done", "C", "done"},
    {"referral", "submitted", "referral.revoke", "I", "revoked"},
    {"referral", "delivered", "referral.revoke", "I", "revoked"},
    {"referral", "received", "referral.revoke", "I", "revoked"},
    {"referral", "accepted", "referral.revoke", "I", "revoked"},
    {"referral", "in_progress", "referral.revoke", "I", "revoked"},
    /* case transfer */
    {"transfer", "", "transfer.request", "I", "submitted"},
    {"transfer", "submitted", "transfer.request", "I", "submitted"},
    {"transfer", "delivered", "transfer.request", "I", "submitted"},
    {"transfer", "received", "transfer.request", "I", "submitted"},
    {"transfer", "submitted", "transfer.accept", "C", "accepted"},
    {"transfer", "delivered", "transfer.accept", "C", "accepted"},
    {"transfer", "received", "transfer.accept", "C", "accepted"},
    {"transfer", "submitted", "transfer.reject", "C", "rejected"},
    {"transfer", "delivered", "transfer.reject", "C", "rejected"},
    {"transfer", "received", "transfer.reject", "C", "rejected"},
    {"transfer", "delivered", "transfer.revoke", "I", "revoked"},
    {"transfer", "received", "transfer.revoke", "I", "revoked"},
    /* transfer request */
    {"transfer_ask", "", "transfer.ask", "I", "submitted"},
    {"transfer_ask", "submitted", "transfer.ask", "I", "submitted"},
    {"transfer_ask", "delivered", "transfer.ask", "I", "submitted"},
    {"transfer_ask", "received", "transfer.ask", "I", "submitted"},
    {"transfer_ask", "submitted", "transfer.accept", "C", "accepted"},
    {"transfer_ask", "delivered", "transfer.accept", "C", "accepted"},
    {"transfer_ask", "received", "transfer.accept", "C", "accepted"},
    {"transfer_ask", "submitted", "transfer.reject", "C", "rejected"},
    {"transfer_ask", "delivered", "transfer.reject", "C", "rejected"},
    {"transfer_ask", "received", "transfer.reject", "C", "rejected"},
    /* ... the accept starts the owner's transfer to the requester */
    {"transfer_ask", "accepted", "transfer.request", "C", "transferring"},
    {"transfer_ask", "transferring", "transfer.accept", "I", "transferred"},
    {"transfer_ask", "transferring", "transfer.reject", "I", "rejected"},
    /* social inquiry */
    {"inquiry", "", "inquiry.request", "I", "submitted"},
    {"inquiry", "submitted", "inquiry.request", "I", "submitted"},
    {"inquiry", "delivered", "inquiry.request", "I", "submitted"},
    {"inquiry", "received", "inquiry.request", "I", "submitted"},
    {"inquiry", "submitted", "inquiry.accept", "C", "accepted"},
    {"inquiry", "delivered", "inquiry.accept", "C", "accepted"},
    {"inquiry", "received", "inquiry.accept", "C", "accepted"},
    {"inquiry", "accepted", "inquiry.report", "C", "reported"},
    {"inquiry", "reported", "inquiry.close", "I", "closed"},
    {"inquiry", "submitted", "inquiry.close", "I", "closed"},
    {"inquiry", "delivered", "inquiry.close", "I", "closed"},
    {"inquiry", "received", "inquiry.close", "I", "closed"},
    {"inquiry", "accepted", "inquiry.close", "I", "closed"},
    /* family tracing (verification: the "verified" outcome; the other outcomes below) */
    {"tracing", "", "tracing.request", "I", "open"},
    {"tracing", "open", "tracing.request", "I", "open"},
    {"tracing", "open", "tracing.progress", "F", "tracing"},
    {"tracing", "tracing", "tracing.progress", "F", "tracing"},
    {"tracing", "open", "tracing.match", "F", "possible_match"},
    {"tracing", "tracing", "tracing.match", "F", "possible_match"},
    {"tracing", "possible_match", "tracing.match", "F", "possible_match"},
    {"tracing", "possible_match", "tracing.verify", "I", "verification_pending"},
    {"tracing", "verification_pending", "tracing.verification", "IF", "verified"},
    {"tracing", "verified", "tracing.reunification_plan", "IF", "reunification_planned"},
    {"tracing", "reunification_planned", "tracing.reunify", "IF", "reunified"},
    {"tracing", "reunified", "tracing.close", "I", "closed"},
    {"tracing", "open", "tracing.close", "I", "closed"},
    {"tracing", "tracing", "tracing.close", "I", "closed"},
    {"tracing", "possible_match", "tracing.close", "I", "closed"},
    {"tracing", "verification_pending", "tracing.close", "I", "closed"},
    {"tracing", "verified", "tracing.close", "I", "closed"},
    {"tracing", "reunification_planned", "tracing.close", "I", "closed"},
    /* return and reintegration */
    {"return", "", "return.notice", "I", "notified"},
    {"return", "notified", "return.notice", "I", "notified"},
    {"return", "notified", "return.arrival", "C", "arrived"},
    {"return", "arrived", "reintegration.assessment", "C", "assessed"},
    {"return", "assessed", "reintegration.assessment", "C", "assessed"},
    {"return", "reopened", "reintegration.assessment", "C", "assessed"},
    {"return", "arrived", "reintegration.plan", "C", "planned"},
    {"return", "assessed", "reintegration.plan", "C", "planned"},
    {"return", "planned", "reintegration.plan", "C", "planned"},
    {"return", "implementation", "reintegration.plan", "C", "planned"},
    {"return", "reopened", "reintegration.plan", "C", "planned"},
    {"return", "planned", "reintegration.followup", "C", "implementation"},
    {"return", "implementation", "reintegration.followup", "C", "implementation"},
    {"return", "notified", "reintegration.close", "C", "closed"},
    {"return", "arrived", "reintegration.close", "C", "closed"},
    {"return", "assessed", "reintegration.close", "C", "closed"},
    {"return", "planned", "reintegration.close", "C", "closed"},
    {"return", "implementation", "reintegration.close", "C", "closed"},
    {"return", "reopened", "reintegration.close", "C", "closed"},
    {"return", "closed", "reintegration.reopen", "IC", "reopened"},
};

typedef struct {
    const char *kind;
    const char *states[12];
} s_kind_states_t;

static const s_kind_states_t s_states[] = {
    {"referral",
     {"", "submitted", "delivered", "received", "accepted", "in_progress", "done", "rejected",
      "revoked", "expired", NULL}},
    {"transfer",
     {"", "submitted", "delivered", "received", "accepted", "rejected", "expired", NULL}},
    {"transfer_ask",
     {"", "submitted", "delivered", "received", "accepted", "transferring", "transferred",
      "rejected", "expired", NULL}},
    {"inquiry",
     {"", "submitted", "delivered", "received", "accepted", "reported", "closed", "expired", NULL}},
    {"tracing",
     {"", "open", "tracing", "possible_match", "verification_pending", "verified",
      "reunification_planned", "reunified", "closed", NULL}},
    {"return",
     {"", "notified", "arrived", "assessed", "planned", "implementation", "closed", "reopened",
      NULL}},
};

static const char s_role_letter[] = {'I', 'C', 'F', 'O'};

/* A header with every field any transition needs, so only legality decides. */
static void s_good_header(Puente__V1__Header *h, const char *type)
{
    puente__v1__header__init(h);
    h->message_type = (char *)type;
    h->best_interests_ref = "TEST-BIA-1";
    if (strcmp(type, "tracing.verification") == 0)
        h->reason_code = "verified,child_agrees,family_willing";
    else if (strcmp(type, "tracing.close") == 0)
        h->reason_code = "unsuccessful";
    else if (strcmp(type, "reintegration.close") == 0)
        h->reason_code = "reintegrated";
    else
        h->reason_code = "no_capacity";
}

static void test_transition_cross_product(void)
{
    size_t checked = 0, legal = 0, rows_seen = 0;
    for (size_t k = 0; k < sizeof s_states / sizeof s_states[0]; k++) {
        const char *kind = s_states[k].kind;
        for (size_t si = 0; s_states[k].states[si]; si++) {
            const char *state = s_states[k].states[si];
            for (size_t t = 0; t < pt_types_count(); t++) {
                const char *type = pt_types_at(t)->name;
                const s_row_t *row = NULL;
                for (size_t r = 0; r < sizeof s_expected / sizeof s_expected[0]; r++)
                    if (strcmp(s_expected[r].kind, kind) == 0 &&
                        strcmp(s_expected[r].state, state) == 0 &&
                        strcmp(s_expected[r].type, type) == 0)
                        row = &s_expected[r];
                for (int role = 0; role < 4; role++) {
                    Puente__V1__Header h;
                    s_good_header(&h, type);
                    pt_verdict_t verdict = {0};
                    const char *next = "unset";
                    Puente__V1__RejectCode got =
                        pt_lifecycle_step(kind, state, (pt_lifecycle_role_t)role, &h, &next, &verdict);
                    Puente__V1__RejectCode want = REJ(REJECT_ILLEGAL_TRANSITION);
                    if (row)
                        want = strchr(row->roles, s_role_letter[role]) ? REJ(REJECT_UNSPECIFIED)
                                                                       : REJ(REJECT_NOT_PERMITTED);
                    if (got != want || (want == 0 && (!next || strcmp(next, row->next) != 0)))
                        fprintf(stderr, "\n  %s/%s/%s/%c: want %d %s, got %d %s (%s)", kind,
                                state[0] ? state : "-", type, s_role_letter[role], want,
                                row ? row->next : "", got, got == 0 && next ? next : "",
                                verdict.reason);
                    CU_ASSERT_EQUAL(got, want);
                    if (want == 0) {
                        CU_ASSERT_PTR_NOT_NULL(next);
                        if (next)
                            CU_ASSERT_STRING_EQUAL(next, row->next);
                        legal++;
                    } else {
                        CU_ASSERT(strlen(verdict.reason) > 0);
                        CU_ASSERT_PTR_NULL(next);
                    }
                    checked++;
                }
                if (row)
                    rows_seen++;
            }
        }
    }
    /* Every expected row was reached by the walk (no typo in a state or type name). */
    CU_ASSERT_EQUAL(rows_seen, sizeof s_expected / sizeof s_expected[0]);
    CU_ASSERT_EQUAL(checked, (size_t)(10 + 7 + 9 + 8 + 9 + 8) * pt_types_count() * 4);
    CU_ASSERT(legal >= sizeof s_expected / sizeof s_expected[0]);
}

static Puente__V1__RejectCode s_step(const char *kind, const char *state, pt_lifecycle_role_t role,
                                     const char *type, const char *reason, const char *bia,
                                     const char **next)
{
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_type = (char *)type;
    h.reason_code = (char *)reason;
    h.best_interests_ref = (char *)bia;
    pt_verdict_t verdict = {0};
    return pt_lifecycle_step(kind, state, role, &h, next, &verdict);
}

static void test_required_fields(void)
{
    const char *next = NULL;
    pt_lifecycle_role_t I = PT_LIFECYCLE_ROLE_INITIATOR, C = PT_LIFECYCLE_ROLE_COUNTERPARTY,
                        F = PT_LIFECYCLE_ROLE_FOCAL_POINT;
    /* Rejections need a reason. */
    CU_ASSERT_EQUAL(s_step("referral", "received", C, "referral.reject", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("transfer", "delivered", C, "transfer.reject", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("referral", "received", C, "referral.reject", "no_capacity", "", &next), 0);
    CU_ASSERT_STRING_EQUAL(next, "rejected");
    /* Accepting needs nothing more; a revoke never marks a service done. */
    CU_ASSERT_EQUAL(s_step("referral", "accepted", I, "referral.revoke", "", "", &next), 0);
    CU_ASSERT_STRING_EQUAL(next, "revoked");
    /* Return notice and reunification plan need a best-interests reference. */
    CU_ASSERT_EQUAL(s_step("return", "", I, "return.notice", "", "", &next),
                    REJ(REJECT_BEST_INTERESTS_REQUIRED));
    CU_ASSERT_EQUAL(s_step("return", "", I, "return.notice", "", "BID-7", &next), 0);
    CU_ASSERT_STRING_EQUAL(next, "notified");
    CU_ASSERT_EQUAL(s_step("tracing", "verified", F, "tracing.reunification_plan", "", "", &next),
                    REJ(REJECT_BEST_INTERESTS_REQUIRED));
    /* Verification outcomes. */
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", F, "tracing.verification", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", F, "tracing.verification",
                           "verified,child_agrees", "", &next),
                    REJ(REJECT_CONSENT_MISSING));
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", I, "tracing.verification",
                           "verified,family_willing,child_agrees", "", &next),
                    0);
    CU_ASSERT_STRING_EQUAL(next, "verified");
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", F, "tracing.verification",
                           "falsely_attributed", "", &next),
                    0);
    CU_ASSERT_STRING_EQUAL(next, "tracing");
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", F, "tracing.verification",
                           "rejected", "", &next),
                    0);
    CU_ASSERT_STRING_EQUAL(next, "tracing");
    CU_ASSERT_EQUAL(s_step("tracing", "verification_pending", F, "tracing.verification",
                           "maybe", "", &next),
                    REJ(REJECT_INVALID_FIELD));
    /* Closure codes. */
    CU_ASSERT_EQUAL(s_step("tracing", "tracing", I, "tracing.close", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("tracing", "tracing", I, "tracing.close", "bored", "", &next),
                    REJ(REJECT_INVALID_FIELD));
    const char *tracing_codes[] = {"unsuccessful", "withdrawn", "consent_withdrawn", "deceased"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(s_step("tracing", "open", I, "tracing.close", tracing_codes[i], "", &next), 0);
    CU_ASSERT_EQUAL(s_step("tracing", "reunified", I, "tracing.close", "", "", &next), 0);
    CU_ASSERT_EQUAL(s_step("return", "implementation", C, "reintegration.close", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("return", "implementation", C, "reintegration.close", "bored", "", &next),
                    REJ(REJECT_INVALID_FIELD));
    const char *closures[] = {"reintegrated", "transferred", "re_migrated", "lost_contact", "death",
                              "other"};
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(s_step("return", "planned", C, "reintegration.close", closures[i], "", &next),
                        0);
    /* Closing an inquiry before its report needs a reason; after it, none. */
    CU_ASSERT_EQUAL(s_step("inquiry", "accepted", I, "inquiry.close", "", "", &next),
                    REJ(REJECT_REASON_REQUIRED));
    CU_ASSERT_EQUAL(s_step("inquiry", "reported", I, "inquiry.close", "", "", &next), 0);
}

/* --- pt_lifecycle_check: parties, recipients, ownership ------------------------ */

static Puente__V1__RejectCode s_check(pt_lifecycle_t *lc, pt_case_owner_t *owner, const char *type,
                                      const char *sender, const char *to, const char *to2,
                                      const char *reason, pt_lifecycle_effect_t *effect)
{
    char *recipients[2] = {(char *)to, (char *)to2};
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_type = (char *)type;
    h.sender = (char *)sender;
    h.recipients = recipients;
    h.n_recipients = to2 ? 2 : 1;
    h.case_token = "CASE-1";
    h.reason_code = (char *)reason;
    h.best_interests_ref = "BIA-1";
    pt_verdict_t verdict = {0};
    return pt_lifecycle_check(lc, owner, &h, effect, &verdict);
}

static void test_check_parties(void)
{
    pt_lifecycle_t lc;
    pt_case_owner_t owner;
    pt_lifecycle_effect_t effect;
    memset(&lc, 0, sizeof lc);
    memset(&owner, 0, sizeof owner);
    /* A later message without a lifecycle is illegal. */
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "GT-PGN", "MX-DIF", NULL, "", &effect),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.request", "MX-DIF", "GT-PGN", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(lc.kind, "referral");
    CU_ASSERT_STRING_EQUAL(lc.state, "submitted");
    CU_ASSERT_STRING_EQUAL(lc.initiator, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(lc.counterparty, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(effect.from, "");
    CU_ASSERT_STRING_EQUAL(effect.to, "submitted");
    CU_ASSERT_EQUAL(effect.changes, 1);
    snprintf(lc.state, sizeof lc.state, "received");   /* as the store sets it */
    /* An outsider, a wrong role, a recipient outside the lifecycle, another kind. */
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "HN-DINAF", "MX-DIF", NULL, "", &effect),
                    REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "MX-DIF", "GT-PGN", NULL, "", &effect),
                    REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "GT-PGN", "HN-DINAF", NULL, "", &effect),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "tracing.match", "GT-PGN", "MX-DIF", NULL, "", &effect),
                    REJ(REJECT_ILLEGAL_TRANSITION));
    CU_ASSERT_STRING_EQUAL(lc.state, "received");   /* rejects change nothing */
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "GT-PGN", "MX-DIF", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(effect.from, "received");
    CU_ASSERT_STRING_EQUAL(lc.state, "accepted");
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.accept", "GT-PGN", "MX-DIF", NULL, "", &effect),
                    REJ(REJECT_ILLEGAL_TRANSITION));

    /* Tracing: fan-out to focal points, each may report; a re-sent request widens. */
    memset(&lc, 0, sizeof lc);
    CU_ASSERT_EQUAL(s_check(&lc, NULL, "tracing.request", "US-ORR", "GT-PGN", "HN-DINAF", "", &effect), 0);
    CU_ASSERT_EQUAL(pt_lifecycle_role(&lc, "HN-DINAF"), PT_LIFECYCLE_ROLE_FOCAL_POINT);
    CU_ASSERT_EQUAL(s_check(&lc, NULL, "tracing.request", "US-ORR", "SV-CONNA", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(lc.counterparty, "GT-PGN,HN-DINAF,SV-CONNA");
    CU_ASSERT_EQUAL(s_check(&lc, NULL, "tracing.match", "SV-CONNA", "US-ORR", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(lc.state, "possible_match");
    CU_ASSERT_EQUAL(pt_lifecycle_role(&lc, "MX-DIF"), PT_LIFECYCLE_ROLE_OTHER);
}

/* Deadlines: the opening message sets respond-by; each plan / follow-up report
   sets the next follow-up due date (0 = none); other messages keep it. */
static void test_deadlines(void)
{
    pt_lifecycle_t lc;
    pt_lifecycle_effect_t effect;
    pt_verdict_t verdict = {0};
    char *to_hn[1] = {"HN-DINAF"}, *to_mx[1] = {"MX-DIF"};
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    memset(&lc, 0, sizeof lc);
    h.message_type = "return.notice";
    h.sender = "MX-DIF";
    h.recipients = to_hn;
    h.n_recipients = 1;
    h.case_token = "CASE-D";
    h.best_interests_ref = "BID-1";
    h.respond_by_ms = 1000;
    h.follow_up_due_ms = 5000;   /* ignored on a return notice */
    CU_ASSERT_EQUAL_FATAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.respond_by_ms, 1000);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 0);
    h.sender = "HN-DINAF";
    h.recipients = to_mx;
    h.respond_by_ms = 0;
    h.message_type = "return.arrival";
    CU_ASSERT_EQUAL_FATAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 0);
    CU_ASSERT_EQUAL(lc.respond_by_ms, 1000);   /* only an opening message sets it */
    h.message_type = "reintegration.plan";
    h.follow_up_due_ms = 7000;
    CU_ASSERT_EQUAL_FATAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 7000);
    h.message_type = "reintegration.followup";
    h.follow_up_due_ms = 9000;
    CU_ASSERT_EQUAL_FATAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 9000);
    CU_ASSERT_STRING_EQUAL(lc.state, "implementation");
    h.follow_up_due_ms = -5;   /* nonsense counts as none */
    CU_ASSERT_EQUAL_FATAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 0);
    /* A rejected message changes no deadline. */
    h.message_type = "reintegration.reopen";
    h.follow_up_due_ms = 12345;
    CU_ASSERT_NOT_EQUAL(pt_lifecycle_check(&lc, NULL, &h, &effect, &verdict), 0);
    CU_ASSERT_EQUAL(lc.follow_up_due_ms, 0);
}

static void test_check_ownership(void)
{
    pt_lifecycle_t lc;
    pt_case_owner_t owner;
    pt_lifecycle_effect_t effect;
    memset(&lc, 0, sizeof lc);
    memset(&owner, 0, sizeof owner);
    /* Nobody owns the case yet: nobody can be asked for it. */
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "transfer.ask", "US-ORR", "MX-DIF", NULL, "", &effect),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(lc.kind[0], '\0');
    CU_ASSERT_EQUAL(owner.owner[0], '\0');
    /* The first opening message makes its sender the owner (no owner_changed). */
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "referral.request", "MX-DIF", "GT-PGN", NULL, "", &effect),
                    0);
    CU_ASSERT_STRING_EQUAL(effect.owner_first, "MX-DIF");
    CU_ASSERT_EQUAL(effect.owner_to[0], '\0');
    CU_ASSERT_STRING_EQUAL(owner.owner, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(owner.former, "");
    /* An outsider (the audit's reproduction: US-ORR) cannot transfer it. */
    pt_lifecycle_t outsider;
    memset(&outsider, 0, sizeof outsider);
    CU_ASSERT_EQUAL(
        s_check(&outsider, &owner, "transfer.request", "US-ORR", "SV-CONNA", NULL, "", &effect),
        REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(outsider.kind[0], '\0');
    /* Neither can the recipient of the referral. */
    CU_ASSERT_EQUAL(
        s_check(&outsider, &owner, "transfer.request", "GT-PGN", "MX-DIF", NULL, "", &effect),
        REJ(REJECT_NOT_CASE_OWNER));
    memset(&lc, 0, sizeof lc);
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "transfer.request", "MX-DIF", "GT-PGN", NULL, "", &effect), 0);
    CU_ASSERT_EQUAL(effect.owner_to[0], '\0');
    CU_ASSERT_EQUAL(effect.owner_first[0], '\0'); /* already owned */
    snprintf(lc.state, sizeof lc.state, "delivered");
    CU_ASSERT_EQUAL(s_check(&lc, &owner, "transfer.accept", "GT-PGN", "MX-DIF", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(effect.owner_to, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(effect.owner_from, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(owner.owner, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(owner.former, "MX-DIF");
    /* The former owner is silenced on this case, the new one is not. */
    pt_lifecycle_t other;
    memset(&other, 0, sizeof other);
    CU_ASSERT_EQUAL(s_check(&other, &owner, "referral.request", "MX-DIF", "HN-DINAF", NULL, "", &effect),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(other.kind[0], '\0');
    /* Only the owner transfers; a transfer request goes to the owner. */
    CU_ASSERT_EQUAL(s_check(&other, &owner, "transfer.request", "HN-DINAF", "SV-CONNA", NULL, "", &effect),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_check(&other, &owner, "transfer.ask", "HN-DINAF", "SV-CONNA", NULL, "", &effect),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_check(&other, &owner, "transfer.ask", "HN-DINAF", "GT-PGN", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(other.kind, "transfer_ask");
    snprintf(other.state, sizeof other.state, "received");
    /* The owner accepts the ask: nothing moves yet, the accept starts a transfer. */
    CU_ASSERT_EQUAL(s_check(&other, &owner, "transfer.accept", "GT-PGN", "HN-DINAF", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(other.state, "accepted");
    CU_ASSERT_EQUAL(effect.owner_to[0], '\0');
    CU_ASSERT_STRING_EQUAL(owner.owner, "GT-PGN");
    /* Only the owner sends that transfer, on the same correlation id, to the requester. */
    CU_ASSERT_EQUAL(
        s_check(&other, &owner, "transfer.request", "HN-DINAF", "GT-PGN", NULL, "", &effect),
        REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(
        s_check(&other, &owner, "transfer.request", "GT-PGN", "HN-DINAF", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(other.state, "transferring");
    CU_ASSERT_STRING_EQUAL(other.kind, "transfer_ask");
    CU_ASSERT_EQUAL(effect.owner_to[0], '\0');
    /* The owner cannot accept its own transfer; the requester does, and owns the case. */
    CU_ASSERT_EQUAL(
        s_check(&other, &owner, "transfer.accept", "GT-PGN", "HN-DINAF", NULL, "", &effect),
        REJ(REJECT_NOT_PERMITTED));
    CU_ASSERT_EQUAL(
        s_check(&other, &owner, "transfer.accept", "HN-DINAF", "GT-PGN", NULL, "", &effect), 0);
    CU_ASSERT_STRING_EQUAL(other.state, "transferred");
    CU_ASSERT_STRING_EQUAL(owner.owner, "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(owner.former, "MX-DIF,GT-PGN");
    CU_ASSERT_STRING_EQUAL(effect.owner_to, "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(effect.owner_from, "GT-PGN");
    pt_lifecycle_t third;
    memset(&third, 0, sizeof third);
    CU_ASSERT_EQUAL(s_check(&third, &owner, "referral.request", "GT-PGN", "HN-DINAF", NULL, "", &effect),
                    REJ(REJECT_NOT_CASE_OWNER));
    CU_ASSERT_EQUAL(s_check(&third, &owner, "referral.request", "HN-DINAF", "MX-DIF", NULL, "", &effect), 0);
}

/* --- consent ------------------------------------------------------------------ */

typedef struct {
    const char *name, *type, *to, *withheld, *approver, *reason;
    int services, disclosure, tracing, overridden;
    Puente__V1__LegalBasis basis;
    Puente__V1__RejectCode expected;
} s_consent_case_t;

static void test_consent(void)
{
    const Puente__V1__LegalBasis CONSENT = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT,
                                 VITAL = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS,
                                 BEST = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_BEST_INTERESTS;
    s_consent_case_t cases[] = {
        {"referral with consent", "referral.request", "GT-PGN", NULL, "", "", 1, 1, 0, 0, CONSENT, 0},
        {"referral without services", "referral.request", "GT-PGN", NULL, "", "", 0, 1, 0, 0, CONSENT, REJ(REJECT_CONSENT_MISSING)},
        {"referral without disclosure", "referral.request", "GT-PGN", NULL, "", "", 1, 0, 0, 0, CONSENT, REJ(REJECT_CONSENT_MISSING)},
        {"transfer with disclosure", "transfer.request", "GT-PGN", NULL, "", "", 0, 1, 0, 0, CONSENT, 0},
        {"transfer without disclosure", "transfer.request", "GT-PGN", NULL, "", "", 1, 0, 1, 0, CONSENT, REJ(REJECT_CONSENT_MISSING)},
        {"tracing with consent", "tracing.request", "GT-PGN", NULL, "", "", 0, 0, 1, 0, CONSENT, 0},
        {"tracing without consent", "tracing.request", "GT-PGN", NULL, "", "", 1, 1, 0, 0, CONSENT, REJ(REJECT_CONSENT_MISSING)},
        {"accept needs no consent flags", "referral.accept", "MX-DIF", NULL, "", "", 0, 0, 0, 0, 0, 0},
        {"override, vital interests", "referral.request", "GT-PGN", NULL, "sup-4", "imminent_risk", 0, 0, 0, 1, VITAL, 0},
        {"override, best interests", "tracing.request", "GT-PGN", NULL, "sup-4", "child_unable", 0, 0, 0, 1, BEST, 0},
        {"override without approver", "referral.request", "GT-PGN", NULL, "", "imminent_risk", 0, 0, 0, 1, VITAL, REJ(REJECT_OVERRIDE_INCOMPLETE)},
        {"override with consent basis", "referral.request", "GT-PGN", NULL, "sup-4", "imminent_risk", 0, 0, 0, 1, CONSENT, REJ(REJECT_OVERRIDE_INCOMPLETE)},
        {"override without justification", "referral.request", "GT-PGN", NULL, "sup-4", "", 0, 0, 0, 1, BEST, REJ(REJECT_OVERRIDE_INCOMPLETE)},
        {"withheld recipient", "referral.request", "GT-PGN", "GT-PGN", "", "", 1, 1, 0, 0, CONSENT, REJ(REJECT_WITHHELD)},
        {"withheld even with override", "referral.request", "GT-PGN", "GT-PGN", "sup-4", "x", 0, 0, 0, 1, VITAL, REJ(REJECT_WITHHELD)},
        {"someone else withheld", "referral.request", "GT-PGN", "HN-DINAF", "", "", 1, 1, 0, 0, CONSENT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_consent_case_t *c = &cases[i];
        char *recipients[1] = {(char *)c->to};
        char *withheld[1] = {(char *)c->withheld};
        Puente__V1__ConsentSummary cs = PUENTE__V1__CONSENT_SUMMARY__INIT;
        cs.consent_for_services = c->services;
        cs.disclosure_other_orgs = c->disclosure;
        cs.consent_for_tracing = c->tracing;
        cs.legal_basis = c->basis;
        cs.overridden = c->overridden;
        cs.override_approver = (char *)c->approver;
        cs.withhold_from = withheld;
        cs.n_withhold_from = c->withheld ? 1 : 0;
        Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
        h.message_type = (char *)c->type;
        h.recipients = recipients;
        h.n_recipients = 1;
        h.consent = &cs;
        h.reason_code = (char *)c->reason;
        pt_verdict_t verdict = {0};
        Puente__V1__RejectCode got = pt_consent_check(&h, &verdict);
        if (got != c->expected)
            fprintf(stderr, "\n  case '%s': expected %d got %d (%s)", c->name, c->expected, got,
                    verdict.reason);
        CU_ASSERT_EQUAL(got, c->expected);
        CU_ASSERT_EQUAL(pt_consent_overridden(&h), c->overridden);
    }
    /* No consent summary at all: nothing consented. */
    char *to[1] = {"GT-PGN"};
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_type = "referral.request";
    h.recipients = to;
    h.n_recipients = 1;
    pt_verdict_t verdict = {0};
    CU_ASSERT_EQUAL(pt_consent_check(&h, &verdict), REJ(REJECT_CONSENT_MISSING));
    CU_ASSERT_EQUAL(pt_consent_overridden(&h), 0);
}

static void test_kinds_and_reject_codes(void)
{
    /* Every registered message type belongs to a lifecycle, except the fan-out
       types (consent.withdraw, case.erasure_request), which belong to the case. */
    for (size_t t = 0; t < pt_types_count(); t++) {
        const pt_type_t *type = pt_types_at(t);
        int fanout = strcmp(type->family, "consent") == 0;
        CU_ASSERT_EQUAL(pt_lifecycle_kind_of(type->name) == NULL, fanout);
    }
    CU_ASSERT_PTR_NULL(pt_lifecycle_kind_of("referral.teleport"));
    const char *openers[] = {"referral.request", "transfer.request", "transfer.ask",
                             "inquiry.request", "tracing.request", "return.notice"};
    size_t n_open = 0;
    for (size_t t = 0; t < pt_types_count(); t++)
        n_open += (size_t)pt_lifecycle_opens(pt_types_at(t)->name);
    CU_ASSERT_EQUAL(n_open, 6);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_TRUE(pt_lifecycle_opens(openers[i]));
    /* The new codes are stable and distinct. */
    CU_ASSERT_EQUAL(REJ(REJECT_ILLEGAL_TRANSITION), 19);
    CU_ASSERT_EQUAL(REJ(REJECT_CONSENT_MISSING), 20);
    CU_ASSERT_EQUAL(REJ(REJECT_WITHHELD), 21);
    CU_ASSERT_EQUAL(REJ(REJECT_NOT_CASE_OWNER), 22);
    CU_ASSERT_EQUAL(REJ(REJECT_REASON_REQUIRED), 23);
    CU_ASSERT_EQUAL(REJ(REJECT_BEST_INTERESTS_REQUIRED), 24);
    CU_ASSERT_EQUAL(REJ(REJECT_OVERRIDE_INCOMPLETE), 25);
    CU_ASSERT_STRING_EQUAL(pt_reject_name(REJ(REJECT_NOT_CASE_OWNER)), "REJECT_NOT_CASE_OWNER");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker_lifecycle", NULL, NULL);
    CU_add_test(suite, "every (state, type, role) of every lifecycle", test_transition_cross_product);
    CU_add_test(suite, "required header fields", test_required_fields);
    CU_add_test(suite, "parties and recipients", test_check_parties);
    CU_add_test(suite, "case ownership after transfers", test_check_ownership);
    CU_add_test(suite, "respond-by and follow-up due dates", test_deadlines);
    CU_add_test(suite, "consent gate, override, withhold list", test_consent);
    CU_add_test(suite, "kinds and reject codes", test_kinds_and_reject_codes);
    return pt_cu_main();
}

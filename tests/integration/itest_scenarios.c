/*  itest_scenarios — issue 3's end-to-end scenarios, one per family, driven ONLY
    through the `puente` CLI (as a caseworker's script would) against a real
    broker and PostgreSQL: every step's exit code, the final lifecycle state from
    `puente trail` and the `lifecycles` row, and the trail's events in order with
    their parties. Payloads are `puente example TYPE` edited with jansson.
    Then three refusals through the CLI: a purpose outside the agreement, a field
    outside the agreement's field set (`agreement add --fields`), and a
    reintegration plan without a version or a recorded child participation. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu_main.h"
#include "harness.h"

/* The countries the trace request searches (signed header search_countries): the
   broker requires its recipients to be exactly their registered focal points. */
#define S_TRACE_COUNTRIES " --countries GT,HN,SV"

static pt_harness_t *s_h;
static char s_out[65536], s_err[16384];

/* Runs `puente ARGS` (printf-style) for this harness; output in s_out / s_err. */
static int s_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_cli(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = pt_harness_cli(s_h, s_out, sizeof s_out, s_err, sizeof s_err, "%s", args);
    return rc;
}

/* Prints the last command's output when an expected exit code was not met. */
static void s_expect(int rc, int expected, const char *what)
{
    if (rc != expected)
        fprintf(stderr,
                "\n    %s: exit %d, expected %d\n    stdout: %.2000s\n    stderr: %.2000s\n", what,
                rc, expected, s_out, s_err);
    CU_ASSERT_EQUAL(rc, expected);
}

/* CU_ASSERT_STRING_EQUAL that shows both strings when they differ. */
#define S_ASSERT_STR(actual, expected)                                                             \
    do {                                                                                           \
        if (strcmp((actual), (expected)) != 0)                                                     \
            fprintf(stderr, "\n    got:      %s\n    expected: %s\n", (actual), (expected));       \
        CU_ASSERT_STRING_EQUAL((actual), (expected));                                              \
    } while (0)

/* Writes `puente example TYPE` with the top-level keys of overrides (a JSON
   object text, may be NULL) replaced, and removes the keys named in drop
   (comma-separated, may be NULL), to <dir>/<name>.json; path into path. */
static void s_body(const char *type, const char *overrides, const char *drop, const char *name,
                   char *path, size_t cap)
{
    CU_ASSERT_EQUAL_FATAL(s_cli("example %s", type), 0);
    json_error_t jerr;
    json_t *body = json_loads(s_out, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    if (overrides) {
        json_t *o = json_loads(overrides, 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL_FATAL(json_object_update(body, o), 0);
        json_decref(o);
    }
    if (drop) {
        char keys[512];
        snprintf(keys, sizeof keys, "%s", drop);
        char *save = NULL;
        for (char *k = strtok_r(keys, ",", &save); k; k = strtok_r(NULL, ",", &save))
            CU_ASSERT_EQUAL(json_object_del(body, k), 0);
    }
    snprintf(path, cap, "%s/%s.json", pt_harness_dir(s_h), name);
    CU_ASSERT_EQUAL_FATAL(json_dump_file(body, path, JSON_INDENT(2)), 0);
    json_decref(body);
}

/* `puente send ... --json-output EXTRA`; the receipt's correlation id into corr
   (may be NULL) when it exits 0. Returns the exit status. */
static int s_send(const char *as, const char *to, const char *type, const char *case_token,
                  const char *body, const char *extra, char *corr, size_t corr_cap)
{
    int rc = s_cli("send --as %s --to %s --type %s --case %s --json '%s' --json-output%s%s", as, to,
                   type, case_token, body, extra && *extra ? " " : "", extra ? extra : "");
    if (rc == 0 && corr) {
        json_t *r = json_loads(s_out, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL(r);
        const char *id = r ? json_string_value(json_object_get(r, "correlation_id")) : NULL;
        snprintf(corr, corr_cap, "%s", id ? id : "");
        CU_ASSERT_EQUAL(strlen(corr), 36);
        json_decref(r);
    }
    return rc;
}

/* `puente recv --as ORG --json-output` until n messages of case_token came
   (at most a few rounds): "type<sender" of each, in order, joined by ' ' into
   out; notices are skipped. Each message's correlation id must be corr. */
static void s_recv(const char *as, const char *case_token, const char *corr, int n, char *out,
                   size_t cap)
{
    out[0] = '\0';
    int got = 0;
    for (int round = 0; round < 4 && got < n; round++) {
        int rc = s_cli("recv --as %s --json-output --timeout 3s", as);
        s_expect(rc, 0, "recv");
        char *save = NULL;
        for (char *line = strtok_r(s_out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_t *m = json_loads(line, 0, NULL);
            CU_ASSERT_PTR_NOT_NULL(m);
            if (!m)
                continue;
            const char *type = json_string_value(json_object_get(m, "type"));
            const char *c = json_string_value(json_object_get(m, "case_token"));
            if (type && c && strcmp(c, case_token) == 0) {
                const char *sender = json_string_value(json_object_get(m, "sender"));
                const char *cid = json_string_value(json_object_get(m, "correlation_id"));
                CU_ASSERT_STRING_EQUAL(cid ? cid : "", corr);
                size_t used = strlen(out);
                snprintf(out + used, cap - used, "%s%s<%s", used ? " " : "", type,
                         sender ? sender : "?");
                got++;
            }
            json_decref(m);
        }
    }
}

/* `puente trail --case C --json-output` (operator): every event kind joined by
   ' ' into kinds; the state events as "state:X type actor>counterparty" joined
   by "; " into states. Checks that seq counts up from 1 and each prev_hash is
   the previous event's hash. */
static void s_trail(const char *case_token, char *kinds, size_t kinds_cap, char *states,
                    size_t states_cap)
{
    kinds[0] = states[0] = '\0';
    int rc = s_cli("trail --case %s --json-output", case_token);
    s_expect(rc, 0, "trail");
    json_t *doc = json_loads(s_out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "case_token")), case_token);
    json_t *events = json_object_get(doc, "events");
    size_t i;
    json_t *ev;
    const char *prev_hash = NULL;
    json_array_foreach(events, i, ev)
    {
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "seq")), (json_int_t)i + 1);
        const char *hash = json_string_value(json_object_get(ev, "hash"));
        if (prev_hash)
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev, "prev_hash")), prev_hash);
        prev_hash = hash;
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        size_t used = strlen(kinds);
        snprintf(kinds + used, kinds_cap - used, "%s%s", used ? " " : "", kind);
        if (strncmp(kind, "state:", 6) != 0)
            continue;
        used = strlen(states);
        snprintf(states + used, states_cap - used, "%s%s %s %s>%s", used ? "; " : "", kind,
                 json_string_value(json_object_get(ev, "message_type")),
                 json_string_value(json_object_get(ev, "actor")),
                 json_string_value(json_object_get(ev, "counterparty")));
    }
    json_decref(doc);
}

/* The same state events as s_trail's, read from the table `puente trail --case C`
   prints (columns SEQ TIME EVENT TYPE "ACTOR -> COUNTERPARTY" MESSAGE HASH). */
static void s_trail_text_states(const char *case_token, char *states, size_t cap)
{
    states[0] = '\0';
    int rc = s_cli("trail --case %s", case_token);
    s_expect(rc, 0, "trail (table)");
    char *save = NULL;
    int line_no = 0;
    for (char *line = strtok_r(s_out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line_no++ == 0) {
            CU_ASSERT_EQUAL(strncmp(line, "SEQ ", 4), 0);
            continue;
        }
        char kind[64], type[64], actor[64], counterparty[256];
        if (sscanf(line, "%*s %*s %63s %63s %63s -> %255s", kind, type, actor, counterparty) != 4) {
            CU_FAIL("trail line does not parse");
            continue;
        }
        if (strncmp(kind, "state:", 6) != 0)
            continue;
        size_t used = strlen(states);
        snprintf(states + used, cap - used, "%s%s %s %s>%s", used ? "; " : "", kind, type, actor,
                 counterparty);
    }
}

/* The last "state:" event of the trail (the final lifecycle state). */
static const char *s_last_state(const char *kinds, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = kinds; (p = strstr(p, "state:")); p++) {
        size_t len = strcspn(p, " ");
        snprintf(out, cap, "%.*s", (int)len, p);
    }
    return out;
}

/* 1 if `puente overdue --as ORG --json-output` lists case_token with this
   deadline ("respond_by", "follow_up"), 0 if not. */
static int s_overdue_lists(const char *as, const char *case_token, const char *deadline)
{
    int rc = s_cli("overdue --as %s --json-output", as);
    s_expect(rc, 0, "overdue");
    json_t *doc = json_loads(s_out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *items = json_object_get(doc, "overdue");
    CU_ASSERT_TRUE(json_is_array(items));
    int found = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *c = json_string_value(json_object_get(it, "case_token"));
        const char *d = json_string_value(json_object_get(it, "deadline"));
        if (c && d && strcmp(c, case_token) == 0 && strcmp(d, deadline) == 0)
            found = 1;
    }
    json_decref(doc);
    return found;
}

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("scenarios", NULL);
    if (!s_h)
        return 1;
    /* The tracing focal points of GT, HN and SV, registered again through the CLI
       (the harness's service list, which names tracing_focal_point: `org add`
       replaces the whole list). */
    const char *focal[] = {"GT-PGN", "HN-DINAF", "SV-CONNA"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++)
            if (strcmp(pt_harness_orgs[k], focal[i]) == 0 &&
                s_cli("org add %s --services %s", focal[i], pt_harness_services[k]) != 0) {
                fprintf(stderr, "org add %s: %s", focal[i], s_err);
                return 1;
            }
    /* US-ORR and SV-CONNA have no agreement in the demo set: one for family
       tracing only, through the CLI. */
    if (s_cli("agreement add --id AGR-SC-TRACING --between US-ORR SV-CONNA --purposes "
              "family_tracing --types 'tracing.*'") != 0) {
        fprintf(stderr, "agreement add: %s", s_err);
        return 1;
    }
    return 0;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* a. MX-DIF refers a child to GT-PGN, who accepts and completes. */
static void test_referral_scenario(void)
{
    const char *c = "CASE-SC-REF-1";
    char req[600], accept[600], progress[600], done[600], revoke[600], corr[64], flags[200];
    s_body("referral.request", NULL, NULL, "sc-ref-request", req, sizeof req);
    s_body("referral.accept", NULL, NULL, "sc-ref-accept", accept, sizeof accept);
    s_body("referral.progress", NULL, NULL, "sc-ref-progress", progress, sizeof progress);
    s_body("referral.done", NULL, NULL, "sc-ref-done", done, sizeof done);
    s_body("referral.revoke", NULL, NULL, "sc-ref-revoke", revoke, sizeof revoke);

    int rc = s_send("MX-DIF", "GT-PGN", "referral.request", c, req, NULL, corr, sizeof corr);
    s_expect(rc, 0, "referral.request");
    CU_ASSERT_FATAL(rc == 0);
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    char got[1024];
    s_recv("GT-PGN", c, corr, 1, got, sizeof got);
    S_ASSERT_STR(got, "referral.request<MX-DIF");
    /* Only the recipient accepts: MX-DIF's accept is refused (exit 2). */
    rc = s_send("MX-DIF", "GT-PGN", "referral.accept", c, accept, flags, NULL, 0);
    s_expect(rc, 2, "referral.accept by the sender");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_NOT_PERMITTED (17)"));
    s_expect(s_send("GT-PGN", "MX-DIF", "referral.accept", c, accept, flags, NULL, 0), 0,
             "referral.accept");
    s_expect(s_send("GT-PGN", "MX-DIF", "referral.progress", c, progress, flags, NULL, 0), 0,
             "referral.progress");
    s_expect(s_send("GT-PGN", "MX-DIF", "referral.done", c, done, flags, NULL, 0), 0,
             "referral.done");
    /* Done is final: the sender can no longer revoke. */
    rc = s_send("MX-DIF", "GT-PGN", "referral.revoke", c, revoke, flags, NULL, 0);
    s_expect(rc, 2, "referral.revoke after done");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_ILLEGAL_TRANSITION (19)"));
    s_recv("MX-DIF", c, corr, 3, got, sizeof got);
    S_ASSERT_STR(got, "referral.accept<GT-PGN referral.progress<GT-PGN "
                      "referral.done<GT-PGN");

    char kinds[4096], states[4096], last[64];
    s_trail(c, kinds, sizeof kinds, states, sizeof states);
    char table_states[4096];
    s_trail_text_states(c, table_states, sizeof table_states);
    S_ASSERT_STR(table_states, states);
    CU_ASSERT_STRING_EQUAL(s_last_state(kinds, last, sizeof last), "state:done");
    /* delivered: the broker's event names the organisation it reached as actor. */
    S_ASSERT_STR(states, "state:submitted referral.request MX-DIF>GT-PGN; "
                         "state:delivered referral.request GT-PGN>MX-DIF; "
                         "state:received referral.request GT-PGN>MX-DIF; "
                         "state:accepted referral.accept GT-PGN>MX-DIF; "
                         "state:in_progress referral.progress GT-PGN>MX-DIF; "
                         "state:done referral.done GT-PGN>MX-DIF");
    S_ASSERT_STR(kinds, "submitted stored state:submitted delivered state:delivered "
                        "acknowledged state:received "
                        "rejected " /* MX-DIF's accept: REJECT_NOT_PERMITTED */
                        "submitted stored state:accepted "
                        "submitted stored state:in_progress "
                        "submitted stored state:done "
                        "rejected " /* the revoke after done: REJECT_ILLEGAL_TRANSITION */
                        "delivered acknowledged delivered acknowledged delivered "
                        "acknowledged");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token = "
                                              "'CASE-SC-REF-1' AND kind = 'referral' AND state = "
                                              "'done' AND initiator = 'MX-DIF' AND counterparty = "
                                              "'GT-PGN'"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token = "
                                              "'CASE-SC-REF-1'"),
                    1);
    /* The refused accept and revoke were not stored. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-SC-REF-1'"),
                    4);
}

/* b. US-ORR asks the focal points of GT, HN and SV to trace a child's family;
   HN-DINAF reports a possible match, verification, reunification, closure. */
static void test_tracing_scenario(void)
{
    const char *c = "CASE-SC-TRACE-1";
    char req[600], match[600], verify[600], verification[600], plan[600], reunify[600],
        close_body[600], corr[64], flags[300];
    s_body("tracing.request", NULL, NULL, "sc-tr-request", req, sizeof req);
    s_body("tracing.match", NULL, NULL, "sc-tr-match", match, sizeof match);
    s_body("tracing.verify", NULL, NULL, "sc-tr-verify", verify, sizeof verify);
    s_body("tracing.verification",
           "{\"status\": \"verified\", \"child_agrees\": true, \"family_willing\": true}", NULL,
           "sc-tr-verification", verification, sizeof verification);
    s_body("tracing.reunification_plan", "{\"best_interests_ref\": \"TEST-BID-HN-0007\"}", NULL,
           "sc-tr-plan", plan, sizeof plan);
    s_body("tracing.reunify", NULL, NULL, "sc-tr-reunify", reunify, sizeof reunify);
    s_body("tracing.close", NULL, NULL, "sc-tr-close", close_body, sizeof close_body);

    int rc = s_send("US-ORR", "GT-PGN,HN-DINAF,SV-CONNA", "tracing.request", c, req,
                    "--consent tracing" S_TRACE_COUNTRIES, corr, sizeof corr);
    s_expect(rc, 0, "tracing.request");
    CU_ASSERT_FATAL(rc == 0);
    /* Fan-out: one delivery to each focal point, to no one else. */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-SC-TRACE-1' AND d.recipient IN "
                                              "('GT-PGN','HN-DINAF','SV-CONNA')"),
                    3);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries d JOIN messages m "
                                              "USING (message_id) WHERE m.case_token = "
                                              "'CASE-SC-TRACE-1'"),
                    3);
    char got[1024];
    s_recv("HN-DINAF", c, corr, 1, got, sizeof got);
    S_ASSERT_STR(got, "tracing.request<US-ORR");
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    s_expect(s_send("HN-DINAF", "US-ORR", "tracing.match", c, match, flags, NULL, 0), 0,
             "tracing.match");
    s_expect(s_send("US-ORR", "HN-DINAF", "tracing.verify", c, verify, flags, NULL, 0), 0,
             "tracing.verify");
    /* Verified needs the child's agreement and the family's willingness. */
    snprintf(flags, sizeof flags, "--correlation %s --reason verified,child_agrees", corr);
    rc = s_send("HN-DINAF", "US-ORR", "tracing.verification", c, verification, flags, NULL, 0);
    s_expect(rc, 2, "tracing.verification without family_willing");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_CONSENT_MISSING (20)"));
    snprintf(flags, sizeof flags, "--correlation %s --reason verified,child_agrees,family_willing",
             corr);
    s_expect(s_send("HN-DINAF", "US-ORR", "tracing.verification", c, verification, flags, NULL, 0),
             0, "tracing.verification");
    /* Reunification planned needs a best-interests reference. */
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    rc = s_send("US-ORR", "HN-DINAF", "tracing.reunification_plan", c, plan, flags, NULL, 0);
    s_expect(rc, 2, "tracing.reunification_plan without best interests");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_BEST_INTERESTS_REQUIRED (24)"));
    snprintf(flags, sizeof flags, "--correlation %s --best-interests TEST-BID-HN-0007", corr);
    s_expect(s_send("US-ORR", "HN-DINAF", "tracing.reunification_plan", c, plan, flags, NULL, 0), 0,
             "tracing.reunification_plan");
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    s_expect(s_send("HN-DINAF", "US-ORR", "tracing.reunify", c, reunify, flags, NULL, 0), 0,
             "tracing.reunify");
    s_expect(s_send("US-ORR", "HN-DINAF", "tracing.close", c, close_body, flags, NULL, 0), 0,
             "tracing.close");
    s_recv("US-ORR", c, corr, 3, got, sizeof got);
    S_ASSERT_STR(got, "tracing.match<HN-DINAF tracing.verification<HN-DINAF "
                      "tracing.reunify<HN-DINAF");

    char kinds[4096], states[4096], last[64];
    s_trail(c, kinds, sizeof kinds, states, sizeof states);
    char table_states[4096];
    s_trail_text_states(c, table_states, sizeof table_states);
    S_ASSERT_STR(table_states, states);
    CU_ASSERT_STRING_EQUAL(s_last_state(kinds, last, sizeof last), "state:closed");
    CU_ASSERT_STRING_EQUAL(states, "state:open tracing.request US-ORR>GT-PGN,HN-DINAF,SV-CONNA; "
                                   "state:possible_match tracing.match HN-DINAF>US-ORR; "
                                   "state:verification_pending tracing.verify US-ORR>HN-DINAF; "
                                   "state:verified tracing.verification HN-DINAF>US-ORR; "
                                   "state:reunification_planned tracing.reunification_plan "
                                   "US-ORR>HN-DINAF; "
                                   "state:reunified tracing.reunify HN-DINAF>US-ORR; "
                                   "state:closed tracing.close US-ORR>HN-DINAF");
    S_ASSERT_STR(kinds, "submitted stored state:open delivered acknowledged "
                        "submitted stored state:possible_match "
                        "submitted stored state:verification_pending "
                        "rejected " /* verification without family_willing */
                        "submitted stored state:verified "
                        "rejected " /* reunification plan without a best-interests ref */
                        "submitted stored state:reunification_planned "
                        "submitted stored state:reunified "
                        "submitted stored state:closed "
                        "delivered acknowledged delivered acknowledged delivered "
                        "acknowledged");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token = "
                                              "'CASE-SC-TRACE-1' AND kind = 'tracing' AND state = "
                                              "'closed' AND initiator = 'US-ORR' AND counterparty "
                                              "= 'GT-PGN,HN-DINAF,SV-CONNA'"),
                    1);
}

/* c. MX-DIF sends a return notice to HN-DINAF: arrival, assessment, plan, two
   follow-ups (the first's due date passes: overdue, then cleared by the
   second), closure with a reason. */
static void test_return_scenario(void)
{
    const char *c = "CASE-SC-RETURN-1";
    char notice[600], arrival[600], assessment[600], plan[600], plan_v0[600], plan_unrecorded[600],
        followup[600], close_body[600], corr[64], flags[300];
    s_body("return.notice", NULL, NULL, "sc-ret-notice", notice, sizeof notice);
    s_body("return.arrival", NULL, NULL, "sc-ret-arrival", arrival, sizeof arrival);
    s_body("reintegration.assessment", NULL, NULL, "sc-ret-assessment", assessment,
           sizeof assessment);
    s_body("reintegration.plan", NULL, NULL, "sc-ret-plan", plan, sizeof plan);
    s_body("reintegration.plan", "{\"version\": 0}", NULL, "sc-ret-plan-v0", plan_v0,
           sizeof plan_v0);
    s_body("reintegration.plan", NULL, "child_participation", "sc-ret-plan-unrecorded",
           plan_unrecorded, sizeof plan_unrecorded);
    s_body("reintegration.followup", NULL, NULL, "sc-ret-followup", followup, sizeof followup);
    s_body("reintegration.close", "{\"closure_reason\": \"reintegrated\"}", NULL, "sc-ret-close",
           close_body, sizeof close_body);

    /* A return notice needs a best-interests decision reference. */
    int rc = s_send("MX-DIF", "HN-DINAF", "return.notice", c, notice, NULL, NULL, 0);
    s_expect(rc, 2, "return.notice without best interests");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_BEST_INTERESTS_REQUIRED (24)"));
    rc = s_send("MX-DIF", "HN-DINAF", "return.notice", c, notice,
                "--best-interests TEST-BID-MX-0042", corr, sizeof corr);
    s_expect(rc, 0, "return.notice");
    CU_ASSERT_FATAL(rc == 0);
    char got[1024];
    s_recv("HN-DINAF", c, corr, 1, got, sizeof got);
    S_ASSERT_STR(got, "return.notice<MX-DIF");
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    s_expect(s_send("HN-DINAF", "MX-DIF", "return.arrival", c, arrival, flags, NULL, 0), 0,
             "return.arrival");
    s_expect(
        s_send("HN-DINAF", "MX-DIF", "reintegration.assessment", c, assessment, flags, NULL, 0), 0,
        "reintegration.assessment");
    /* The SDK refuses, before sealing, a plan without a version or without a
       recorded child participation (exit 1; nothing reaches the broker). */
    snprintf(flags, sizeof flags, "--correlation %s --follow-up-due 2099-01-15T09:00:00Z", corr);
    rc = s_send("HN-DINAF", "MX-DIF", "reintegration.plan", c, plan_v0, flags, NULL, 0);
    s_expect(rc, 1, "reintegration.plan version 0");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "refused before sealing: reintegration.plan: version "
                                         "must be 1 or more"));
    rc = s_send("HN-DINAF", "MX-DIF", "reintegration.plan", c, plan_unrecorded, flags, NULL, 0);
    s_expect(rc, 1, "reintegration.plan without child participation");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "refused before sealing: reintegration.plan: "
                                         "child_participation must be recorded"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-SC-RETURN-1' AND message_type = "
                                              "'reintegration.plan'"),
                    0);
    s_expect(s_send("HN-DINAF", "MX-DIF", "reintegration.plan", c, plan, flags, NULL, 0), 0,
             "reintegration.plan");
    CU_ASSERT_EQUAL(s_overdue_lists("MX-DIF", c, "follow_up"), 0);
    /* First follow-up: the next one due in two seconds. */
    char due[40];
    puente_time_format(pt_now_ms() + 2000, due, sizeof due);
    snprintf(flags, sizeof flags, "--correlation %s --follow-up-due %s", corr, due);
    s_expect(s_send("HN-DINAF", "MX-DIF", "reintegration.followup", c, followup, flags, NULL, 0), 0,
             "reintegration.followup 1");
    int listed = 0;
    for (int i = 0; i < 60 && !listed; i++) {
        listed = s_overdue_lists("MX-DIF", c, "follow_up");
        if (!listed)
            usleep(500 * 1000);
    }
    CU_ASSERT_EQUAL(listed, 1);
    CU_ASSERT_EQUAL(s_overdue_lists("HN-DINAF", c, "follow_up"), 1);
    CU_ASSERT_EQUAL(s_overdue_lists("GT-PGN", c, "follow_up"), 0);
    /* Second follow-up, next due far ahead: no longer overdue. */
    snprintf(flags, sizeof flags, "--correlation %s --follow-up-due 2099-06-15T09:00:00Z", corr);
    s_expect(s_send("HN-DINAF", "MX-DIF", "reintegration.followup", c, followup, flags, NULL, 0), 0,
             "reintegration.followup 2");
    CU_ASSERT_EQUAL(s_overdue_lists("MX-DIF", c, "follow_up"), 0);
    CU_ASSERT_EQUAL(s_overdue_lists("HN-DINAF", c, "follow_up"), 0);
    /* Closure needs a reason. */
    snprintf(flags, sizeof flags, "--correlation %s", corr);
    rc = s_send("HN-DINAF", "MX-DIF", "reintegration.close", c, close_body, flags, NULL, 0);
    s_expect(rc, 2, "reintegration.close without reason");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_REASON_REQUIRED (23)"));
    snprintf(flags, sizeof flags, "--correlation %s --reason reintegrated", corr);
    s_expect(s_send("HN-DINAF", "MX-DIF", "reintegration.close", c, close_body, flags, NULL, 0), 0,
             "reintegration.close");
    s_recv("MX-DIF", c, corr, 6, got, sizeof got);
    S_ASSERT_STR(got, "return.arrival<HN-DINAF reintegration.assessment<HN-DINAF "
                      "reintegration.plan<HN-DINAF reintegration.followup<HN-DINAF "
                      "reintegration.followup<HN-DINAF reintegration.close<HN-DINAF");

    char kinds[4096], states[4096], last[64];
    s_trail(c, kinds, sizeof kinds, states, sizeof states);
    char table_states[4096];
    s_trail_text_states(c, table_states, sizeof table_states);
    S_ASSERT_STR(table_states, states);
    CU_ASSERT_STRING_EQUAL(s_last_state(kinds, last, sizeof last), "state:closed");
    CU_ASSERT_STRING_EQUAL(states, "state:notified return.notice MX-DIF>HN-DINAF; "
                                   "state:arrived return.arrival HN-DINAF>MX-DIF; "
                                   "state:assessed reintegration.assessment HN-DINAF>MX-DIF; "
                                   "state:planned reintegration.plan HN-DINAF>MX-DIF; "
                                   "state:implementation reintegration.followup HN-DINAF>MX-DIF; "
                                   "state:implementation reintegration.followup HN-DINAF>MX-DIF; "
                                   "state:closed reintegration.close HN-DINAF>MX-DIF");
    S_ASSERT_STR(kinds, "rejected " /* the return notice without a best-interests ref */
                        "submitted stored state:notified delivered acknowledged "
                        "submitted stored state:arrived "
                        "submitted stored state:assessed "
                        "submitted stored state:planned "
                        "submitted stored state:implementation overdue "
                        "submitted stored state:implementation "
                        "rejected " /* the close without a reason */
                        "submitted stored state:closed "
                        "delivered acknowledged delivered acknowledged "
                        "delivered acknowledged delivered acknowledged "
                        "delivered acknowledged delivered acknowledged");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM lifecycles WHERE case_token = "
                                              "'CASE-SC-RETURN-1' AND kind = 'return' AND state = "
                                              "'closed' AND initiator = 'MX-DIF' AND counterparty "
                                              "= 'HN-DINAF'"),
                    1);
}

/* A tracing message under a purpose the tracing-only agreement does not cover:
   refused for the purpose, while the same message under family_tracing passes
   the agreement check (and only meets the lifecycle's rule). */
static void test_purpose_outside_agreement(void)
{
    const char *c = "CASE-SC-PURPOSE-1";
    char progress[600];
    s_body("tracing.progress", NULL, NULL, "sc-purpose-progress", progress, sizeof progress);
    int rc = s_send("SV-CONNA", "US-ORR", "tracing.progress", c, progress,
                    "--purpose reintegration", NULL, 0);
    s_expect(rc, 2, "tracing.progress for purpose reintegration");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_NO_AGREEMENT (7): no valid agreement "
                                         "between SV-CONNA and US-ORR covers tracing.progress for "
                                         "purpose reintegration\n"));
    /* Control: the purpose is the only difference. */
    rc = s_send("SV-CONNA", "US-ORR", "tracing.progress", c, progress, "--purpose family_tracing",
                NULL, 0);
    s_expect(rc, 2, "tracing.progress for purpose family_tracing");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "rejected: REJECT_ILLEGAL_TRANSITION (19)"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-SC-PURPOSE-1'"),
                    0);
}

/* `agreement add --fields`: the sending SDK refuses a field outside the set. */
static void test_agreement_field_set(void)
{
    int rc = s_cli("agreement add --id AGR-SC-FIELDS --between US-ORR SV-CONNA --purposes "
                   "service_provision --types 'referral.*' --fields "
                   "service_provision=referral_id,child.name_first,child.age,services,consent");
    s_expect(rc, 0, "agreement add --fields");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM agreements WHERE agreement_id "
                                              "= 'AGR-SC-FIELDS' AND field_sets::text LIKE "
                                              "'%child.name_first%'"),
                    1);
    const char *c = "CASE-SC-FIELDS-1";
    char full[600], minimal[600], child[600];
    s_body("referral.request", NULL, NULL, "sc-fields-full", full, sizeof full);
    /* referred_by is the first field outside the set. */
    rc = s_send("US-ORR", "SV-CONNA", "referral.request", c, full, NULL, NULL, 0);
    s_expect(rc, 1, "referral.request with fields outside the set");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "refused before sealing: field referred_by is outside "
                                         "the agreement's field set for service_provision with "
                                         "SV-CONNA"));
    /* Without the fields outside the set, but the child's last name kept. */
    s_body("referral.request",
           "{\"child\": {\"name_first\": \"Ana Lucia\", \"name_last\": \"Prueba\", \"age\": 15}}",
           "referred_by,protection,best_interests,care,urgency,respond_by,notes", "sc-fields-child",
           child, sizeof child);
    rc = s_send("US-ORR", "SV-CONNA", "referral.request", c, child, NULL, NULL, 0);
    s_expect(rc, 1, "referral.request with child.name_last");
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "refused before sealing: field child.name_last is "
                                         "outside the agreement's field set"));
    s_body("referral.request", "{\"child\": {\"name_first\": \"Ana Lucia\", \"age\": 15}}",
           "referred_by,protection,best_interests,care,urgency,respond_by,notes",
           "sc-fields-minimal", minimal, sizeof minimal);
    char corr[64];
    rc = s_send("US-ORR", "SV-CONNA", "referral.request", c, minimal, NULL, corr, sizeof corr);
    s_expect(rc, 0, "referral.request within the set");
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token = "
                                              "'CASE-SC-FIELDS-1'"),
                    1);
    /* The recipient's SDK accepts it (its own check passes). */
    char got[256];
    s_recv("SV-CONNA", c, corr, 1, got, sizeof got);
    S_ASSERT_STR(got, "referral.request<US-ORR");
}

/* `puente trail --help` explains the awaiting-acknowledgement line. */
static void test_trail_help(void)
{
    CU_ASSERT_EQUAL(s_cli("trail --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\n  awaiting acknowledgement: GT-PGN, HN-DINAF\n"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("scenarios", s_suite_init, s_suite_clean);
    CU_add_test(suite, "referral MX-DIF -> GT-PGN through the CLI", test_referral_scenario);
    CU_add_test(suite, "tracing US-ORR -> GT/HN/SV focal points through the CLI",
                test_tracing_scenario);
    CU_add_test(suite, "return MX-DIF -> HN-DINAF through the CLI", test_return_scenario);
    CU_add_test(suite, "purpose outside the agreement (CLI)", test_purpose_outside_agreement);
    CU_add_test(suite, "agreement add --fields refuses a field outside (CLI)",
                test_agreement_field_set);
    CU_add_test(suite, "trail --help names the awaiting acknowledgement line", test_trail_help);
    return pt_cu_main();
}

/*  test_primero_mapping — Primero v2 fixtures (tests/fixtures/primero: a case,
    a remotely transferred case, a transition per kind and status, a tracing
    request, a follow-up, a closure) mapped to
    Puente messages, packed and unpacked as on the wire, and mapped back: every
    mapped field must come back with its value. Unknown lookup values and broken
    code lists fail with the field and the value named. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapping.h"
#include "pt_json.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"
#include "cu_main.h"

#define S_FIXTURES "tests/fixtures/primero"
#define S_CODELISTS "adapters/primero/codelists"

static pt_primero_codelists_t *s_lists;

static int s_init(void)
{
    char err[PT_PRIMERO_ERR_BYTES];
    s_lists = pt_primero_codelists_load(S_CODELISTS, "v1", err, sizeof err);
    if (!s_lists)
        fprintf(stderr, "codelists: %s\n", err);
    return s_lists ? 0 : 1;
}

static int s_clean(void)
{
    pt_primero_codelists_destroy(&s_lists);
    return 0;
}

/* The "data" of a fixture (for a list response, its first record). Caller decrefs
   the returned root; *data is borrowed from it. */
static json_t *s_fixture(const char *name, json_t **data)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", S_FIXTURES, name);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fprintf(stderr, "%s: %s\n", path, jerr.text);
        return NULL;
    }
    json_t *d = json_object_get(root, "data");
    *data = json_is_array(d) ? json_array_get(d, 0) : d;
    return root;
}

/* Packs and unpacks the body, as the wire does; replaces out->body. */
static void s_wire(pt_primero_out_t *out)
{
    size_t len = protobuf_c_message_get_packed_size(out->body);
    uint8_t *bytes = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    protobuf_c_message_pack(out->body, bytes);
    const ProtobufCMessageDescriptor *desc = out->body->descriptor;
    protobuf_c_message_free_unpacked(out->body, NULL);
    out->body = protobuf_c_message_unpack(desc, NULL, len, bytes);
    free(bytes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out->body);
}

/* The field has the same value on both sides (and is present in the original). */
static int s_same(const json_t *orig, const json_t *back, const char *key)
{
    const json_t *a = json_object_get(orig, key), *b = json_object_get(back, key);
    int same = a && b && json_equal(a, b);
    if (!same)
        fprintf(stderr, "\n  field %s differs\n", key);
    return same;
}

static void test_codelists(void)
{
    CU_ASSERT_STRING_EQUAL(pt_primero_codelists_version(s_lists), "v1");
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_puente(s_lists, "sex", "female"), "SEX_FEMALE");
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_puente(s_lists, "service_type", "health_medical"),
                           "health");
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_puente(s_lists, "followup_type", "for_assesment"),
                           "for_assessment");
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_primero(s_lists, "nationality", "GT"), "guatemala");
    /* Two Primero values on one Puente value: the first row answers back. */
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_puente(s_lists, "closure_reason", "repatriated"),
                           "reintegrated");
    CU_ASSERT_STRING_EQUAL(pt_primero_code_to_primero(s_lists, "closure_reason", "reintegrated"),
                           "formal_closing");
    CU_ASSERT_PTR_NULL(pt_primero_code_to_puente(s_lists, "sex", "dragon"));
    CU_ASSERT_PTR_NULL(pt_primero_code_to_puente(s_lists, "no_such_list", "female"));

    char err[PT_PRIMERO_ERR_BYTES] = "";
    CU_ASSERT_PTR_NULL(pt_primero_codelists_load(S_CODELISTS, "v99", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "v99"));
    CU_ASSERT_PTR_NULL(pt_primero_codelists_load(S_CODELISTS, "../v1", err, sizeof err));

    /* A broken list: duplicate Primero value, named with file and line. */
    char dir[] = "/tmp/pt_primero_lists_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/v1", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/v1/sex.csv", dir);
    FILE *file = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs("primero_value,puente_value\nfemale,SEX_FEMALE\nfemale,SEX_MALE\n", file);
    fclose(file);
    CU_ASSERT_PTR_NULL(pt_primero_codelists_load(dir, "v1", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sex.csv:3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate"));
    /* A valid list but the others missing. */
    file = fopen(path, "w");
    fputs("primero_value,puente_value\nfemale,SEX_FEMALE\n", file);
    fclose(file);
    CU_ASSERT_PTR_NULL(pt_primero_codelists_load(dir, "v1", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing"));
    unlink(path);
    snprintf(path, sizeof path, "%s/v1", dir);
    rmdir(path);
    rmdir(dir);
}

static void test_case_to_referrals(void)
{
    json_t *data = NULL;
    json_t *root = s_fixture("case_referral.json", &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out[4];
    char err[PT_PRIMERO_ERR_BYTES] = "";
    int n = pt_primero_case_to_referrals(s_lists, data, "MX-DIF", "GT-PGN", out, 4, err,
                                         sizeof err);
    if (n < 0)
        fprintf(stderr, "\n  %s\n", err);
    /* Two services are cross-border referrals; the third is local. */
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(out[0].message_type, "referral.request");
    CU_ASSERT_STRING_EQUAL(out[0].service_type, "psychosocial");
    CU_ASSERT_STRING_EQUAL(out[1].service_type, "family_reunification");
    CU_ASSERT_STRING_EQUAL(out[0].ref,
                           "TEST-2b7e1f1c-5a8d-4c3e-9f10-6d4f6f0a0001#TEST-svc-0001-psychosocial");
    for (int i = 0; i < n; i++)
        s_wire(&out[i]);

    const Puente__V1__ReferralRequest *r = (const Puente__V1__ReferralRequest *) out[0].body;
    CU_ASSERT_STRING_EQUAL(r->referral_id, out[0].ref);
    CU_ASSERT_STRING_EQUAL(r->referred_by->organisation, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(r->child->name_first, "Ana Lucía");
    CU_ASSERT_STRING_EQUAL(r->child->name_last, "Prueba Ejemplo");
    CU_ASSERT_EQUAL(r->child->sex, PUENTE__V1__SEX__SEX_FEMALE);
    CU_ASSERT_EQUAL(r->child->date_of_birth->year, 2010);
    CU_ASSERT_EQUAL(r->child->date_of_birth->month, 3);
    CU_ASSERT_EQUAL(r->child->date_of_birth->day, 14);
    CU_ASSERT_EQUAL(r->child->age, 15);
    CU_ASSERT_EQUAL(r->child->estimated, 1);
    CU_ASSERT_EQUAL_FATAL(r->child->n_nationality, 1);
    CU_ASSERT_STRING_EQUAL(r->child->nationality[0], "GT");
    CU_ASSERT_EQUAL(r->protection->protection_status,
                    PUENTE__V1__PROTECTION_STATUS__PROTECTION_STATUS_UNACCOMPANIED);
    CU_ASSERT_EQUAL_FATAL(r->protection->n_protection_concerns, 2);
    CU_ASSERT_STRING_EQUAL(r->protection->protection_concerns[1], "trafficked_smuggled");
    CU_ASSERT_EQUAL(r->protection->risk_level, PUENTE__V1__RISK_LEVEL__RISK_LEVEL_HIGH);
    CU_ASSERT_EQUAL(r->protection->urgent_protection_concern, 1);
    CU_ASSERT_EQUAL(r->consent->interview_subject,
                    PUENTE__V1__INTERVIEW_SUBJECT__INTERVIEW_SUBJECT_INDIVIDUAL);
    CU_ASSERT_EQUAL(r->consent->consent_for_services, 1);
    CU_ASSERT_EQUAL(r->consent->disclosure_other_orgs, 1);
    CU_ASSERT_EQUAL(r->consent->consent_for_tracing, 1);
    CU_ASSERT_EQUAL_FATAL(r->consent->n_legitimate_basis, 2);
    CU_ASSERT_EQUAL(r->consent->legitimate_basis[1],
                    PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_BEST_INTERESTS);
    CU_ASSERT_EQUAL_FATAL(r->n_services, 1);
    CU_ASSERT_STRING_EQUAL(r->services[0]->service_type, "psychosocial");
    CU_ASSERT_STRING_EQUAL(r->services[0]->implementing_agency, "GT-PGN");

    /* Back to a Primero case, as puente-primero POSTs it in GT. */
    for (int i = 0; i < n; i++) {
        json_t *back = pt_primero_from_puente(s_lists, out[i].message_type, out[i].body, err,
                                              sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(back);
        const char *fields[] = {"name_first",         "name_last",
                                "sex",                "date_of_birth",
                                "age",                "estimated",
                                "nationality",        "protection_status",
                                "protection_concerns", "risk_level",
                                "urgent_protection_concern", "interview_subject",
                                "consent_for_services", "disclosure_other_orgs",
                                "consent_for_tracing", "legitimate_basis"};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            CU_ASSERT(s_same(data, back, fields[f]));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(back, "puente_referral_id")),
                               out[i].ref);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(back, "puente_sender")),
                               "MX-DIF");
        json_t *rows = json_object_get(back, "services_section");
        CU_ASSERT_EQUAL_FATAL(json_array_size(rows), 1);
        json_t *orig_row = json_array_get(json_object_get(data, "services_section"), i);
        json_t *row = json_array_get(rows, 0);
        const char *row_fields[] = {"unique_id", "service_type", "service_implementing_agency",
                                    "service_referral_notes", "service_response_type"};
        for (size_t f = 0; f < 5; f++)
            CU_ASSERT(s_same(orig_row, row, row_fields[f]));
        CU_ASSERT(json_is_true(json_object_get(row, "service_status_referred")));
        json_decref(back);
    }
    for (int i = 0; i < n; i++)
        pt_primero_out_clear(&out[i]);
    CU_ASSERT_PTR_NULL(out[0].body);

    /* Referrals to another organisation only: none here. */
    CU_ASSERT_EQUAL(
        pt_primero_case_to_referrals(s_lists, data, "MX-DIF", "HN-DINAF", out, 4, err, sizeof err),
        0);
    /* Not enough room is an error, not a silent truncation. */
    CU_ASSERT_EQUAL(
        pt_primero_case_to_referrals(s_lists, data, "MX-DIF", NULL, out, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "services_section"));
    json_decref(root);
}

static void s_case_to_transfer(const char *fixture, const char *want_id,
                               Puente__V1__RiskLevel want_risk);

static void test_case_to_transfer(void)
{
    s_case_to_transfer("case_referral.json", "TEST-2b7e1f1c-5a8d-4c3e-9f10-6d4f6f0a0001",
                       PUENTE__V1__RISK_LEVEL__RISK_LEVEL_HIGH);
    s_case_to_transfer("case_transfer.json", "TEST-5e0c7a11-3b2d-4f6e-8a90-1c2d3e4f0010",
                       PUENTE__V1__RISK_LEVEL__RISK_LEVEL_MEDIUM);
}

static void s_case_to_transfer(const char *fixture, const char *want_id,
                               Puente__V1__RiskLevel want_risk)
{
    json_t *data = NULL;
    json_t *root = s_fixture(fixture, &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    CU_ASSERT_EQUAL_FATAL(
        pt_primero_case_to_transfer(s_lists, data, "MX-DIF", &out, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, "transfer.request");
    s_wire(&out);
    const Puente__V1__CaseTransfer *t = (const Puente__V1__CaseTransfer *) out.body;
    CU_ASSERT_STRING_EQUAL(t->transfer_id, want_id);
    CU_ASSERT_STRING_EQUAL(t->from->organisation, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(t->child->name_first,
                           json_string_value(json_object_get(data, "name_first")));
    CU_ASSERT_EQUAL(t->child->sex, PUENTE__V1__SEX__SEX_FEMALE);
    CU_ASSERT_EQUAL(t->protection->risk_level, want_risk);
    CU_ASSERT_EQUAL(t->protection->protection_status,
                    PUENTE__V1__PROTECTION_STATUS__PROTECTION_STATUS_UNACCOMPANIED);
    CU_ASSERT_EQUAL(t->consent->disclosure_other_orgs, 1);
    CU_ASSERT_EQUAL(t->consent->consent_for_services, 1);
    CU_ASSERT_STRING_EQUAL(t->transfer_reason,
                           "Child returned to Guatemala; case management continues with PGN.");
    CU_ASSERT_STRING_EQUAL(t->notes, "Escorted return on 2025-05-20 (FICTIONAL TEST DATA).");
    json_t *back = pt_primero_from_puente(s_lists, "transfer.request", out.body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    const char *fields[] = {"name_first", "name_last", "sex", "date_of_birth", "nationality",
                            "protection_status", "protection_concerns", "risk_level",
                            "disclosure_other_orgs", "consent_for_services",
                            "consent_for_tracing", "interview_subject", "legitimate_basis",
                            "age", "transfer_reason", "transfer_notes"};
    /* proto3: a false "estimated" is unset, and is written back only when true. */
    CU_ASSERT_EQUAL(json_is_true(json_object_get(back, "estimated")),
                    json_is_true(json_object_get(data, "estimated")));
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        CU_ASSERT(s_same(data, back, fields[f]));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(back, "puente_transfer_id")),
                           t->transfer_id);
    CU_ASSERT_PTR_NULL(json_object_get(back, "services_section"));
    json_decref(back);
    pt_primero_out_clear(&out);
    json_decref(root);
}

/* One transition fixture per kind and status, both directions: Primero row ->
   Puente message (type, ids, status, reasons, notes, by) -> wire -> Primero row
   with every mapped field equal to the fixture's. */
static void s_transition_round_trip(const char *fixture, const char *want_type)
{
    json_t *data = NULL;
    json_t *root = s_fixture(fixture, &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    int rc = pt_primero_transition_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  %s: %s\n", fixture, err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, want_type);
    s_wire(&out);
    const char *kind = json_string_value(json_object_get(data, "type"));
    const char *status = json_string_value(json_object_get(data, "status"));
    const char *record = json_string_value(json_object_get(data, "record_id"));
    const char *service = json_string_value(json_object_get(data, "service_record_id"));
    const char *reason = json_string_value(json_object_get(data, "rejected_reason"));
    const char *notes = json_string_value(json_object_get(data, "notes"));
    char referral_id[200];
    snprintf(referral_id, sizeof referral_id, "%s#%s", record, service ? service : "");
    /* Puente side, field by field. */
    if (strcmp(kind, "Referral") == 0 && strcmp(status, "rejected") == 0) {
        const Puente__V1__ReferralRejection *r = (const Puente__V1__ReferralRejection *) out.body;
        CU_ASSERT_STRING_EQUAL(r->referral_id, referral_id);
        CU_ASSERT_STRING_EQUAL(r->rejected_reason, reason);
        CU_ASSERT_STRING_EQUAL(r->rejection_note,
                               json_string_value(json_object_get(data, "rejection_note")));
        CU_ASSERT_STRING_EQUAL(r->by->organisation, "GT-PGN");
    } else if (strcmp(kind, "Referral") == 0) {
        const Puente__V1__ReferralUpdate *u = (const Puente__V1__ReferralUpdate *) out.body;
        CU_ASSERT_STRING_EQUAL(u->referral_id, referral_id);
        CU_ASSERT_STRING_EQUAL(u->status, status);
        CU_ASSERT_STRING_EQUAL(u->note, notes ? notes : "");
        CU_ASSERT_STRING_EQUAL(u->by->organisation, "GT-PGN");
    } else {
        const Puente__V1__TransferResponse *t = (const Puente__V1__TransferResponse *) out.body;
        CU_ASSERT_STRING_EQUAL(t->transfer_id, record);
        CU_ASSERT_EQUAL(t->accepted, strcmp(status, "accepted") == 0);
        CU_ASSERT_STRING_EQUAL(t->rejected_reason, reason ? reason : "");
        CU_ASSERT_STRING_EQUAL(t->by->organisation, "GT-PGN");
    }
    /* And back: the Primero row. */
    json_t *back = pt_primero_from_puente(s_lists, out.message_type, out.body, err, sizeof err);
    if (!back)
        fprintf(stderr, "\n  %s back: %s\n", fixture, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(s_same(data, back, "type"));
    CU_ASSERT(s_same(data, back, "status"));
    CU_ASSERT(s_same(data, back, "record_id"));
    CU_ASSERT(json_is_true(json_object_get(back, "remote")));
    if (strcmp(kind, "Referral") == 0) {
        CU_ASSERT(s_same(data, back, "service_record_id"));
        if (reason) {
            CU_ASSERT(s_same(data, back, "rejected_reason"));
            CU_ASSERT(s_same(data, back, "rejection_note"));
        } else {
            CU_ASSERT(s_same(data, back, "notes"));
        }
    } else {
        CU_ASSERT_PTR_NULL(json_object_get(back, "service_record_id"));
        if (reason) {
            CU_ASSERT(s_same(data, back, "rejected_reason"));
        } else {
            CU_ASSERT_PTR_NULL(json_object_get(back, "rejected_reason"));
        }
    }
    json_decref(back);
    pt_primero_out_clear(&out);
    json_decref(root);
}

static void test_transitions(void)
{
    /* Every status of both kinds Primero has (app/models/transition.rb; a remote
       Transfer has no done, and in_progress is the request itself). */
    s_transition_round_trip("transition_in_progress.json", "referral.progress");
    s_transition_round_trip("transition_accepted.json", "referral.accept");
    s_transition_round_trip("transition_rejected.json", "referral.reject");
    s_transition_round_trip("transition_done.json", "referral.done");
    s_transition_round_trip("transition_revoked.json", "referral.revoke");
    s_transition_round_trip("transfer_accepted.json", "transfer.accept");
    s_transition_round_trip("transfer_rejected.json", "transfer.reject");
    s_transition_round_trip("transfer_revoked.json", "transfer.revoke");

    json_t *data = NULL;
    json_t *root = s_fixture("transition_rejected.json", &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    /* A revoke without a reason: no rejected_reason either way. */
    json_t *revoke = json_pack("{s:s,s:s,s:s}", "type", "Transfer", "status", "revoked",
                               "record_id", "TEST-case-1");
    CU_ASSERT_EQUAL(
        pt_primero_transition_to_puente(s_lists, revoke, "MX-DIF", &out, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, "transfer.revoke");
    CU_ASSERT_STRING_EQUAL(((Puente__V1__TransferResponse *) out.body)->rejected_reason, "");
    json_t *back = pt_primero_from_puente(s_lists, out.message_type, out.body, err, sizeof err);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(back, "status")), "revoked");
    CU_ASSERT_PTR_NULL(json_object_get(back, "rejected_reason"));
    json_decref(back);
    pt_primero_out_clear(&out);
    /* A Transfer in_progress or done has no response message: it starts from the case. */
    const char *none[] = {"in_progress", "done"};
    for (int i = 0; i < 2; i++) {
        json_object_set_new(revoke, "status", json_string(none[i]));
        CU_ASSERT_EQUAL(
            pt_primero_transition_to_puente(s_lists, revoke, "MX-DIF", &out, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, none[i]));
    }
    json_decref(revoke);
    /* Unknown status and rejection without a reason. */
    json_object_set_new(data, "status", json_string("teleported"));
    CU_ASSERT_EQUAL(pt_primero_transition_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "status"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "teleported"));
    json_object_set_new(data, "status", json_string("rejected"));
    json_object_del(data, "rejected_reason");
    CU_ASSERT_EQUAL(pt_primero_transition_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "rejected_reason"));
    json_object_set_new(data, "type", json_string("Transfer"));
    CU_ASSERT_EQUAL(pt_primero_transition_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "rejected_reason"));
    json_decref(root);
}

static void test_tracing(void)
{
    json_t *data = NULL;
    json_t *root = s_fixture("tracing_request.json", &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    int rc = pt_primero_tracing_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, "tracing.request");
    s_wire(&out);
    const Puente__V1__TraceRequest *t = (const Puente__V1__TraceRequest *) out.body;
    CU_ASSERT_STRING_EQUAL(t->tracing_request_id, "TEST-TR-GT-2025-0007");
    CU_ASSERT_STRING_EQUAL(t->inquirer->relation_name, "María Prueba");
    CU_ASSERT_STRING_EQUAL(t->inquirer->relation, "mother");
    CU_ASSERT_EQUAL(t->inquirer->relation_age, 38);
    CU_ASSERT_EQUAL(t->inquirer->relation_sex, PUENTE__V1__SEX__SEX_FEMALE);
    CU_ASSERT_EQUAL(t->inquirer->inquiry_date->month, 4);
    CU_ASSERT_EQUAL_FATAL(t->n_sought, 2);
    CU_ASSERT_STRING_EQUAL(t->sought[1]->trace_id, "TEST-trace-0002");
    CU_ASSERT_STRING_EQUAL(t->sought[1]->identity->name_first, "José Prueba");
    CU_ASSERT_EQUAL(t->sought[1]->identity->sex, PUENTE__V1__SEX__SEX_MALE);
    CU_ASSERT_EQUAL(t->sought[1]->identity->age, 12);
    CU_ASSERT_STRING_EQUAL(t->sought[0]->separation->separation_cause, "migration");
    CU_ASSERT_EQUAL(t->sought[0]->separation->date_of_separation->day, 20);
    CU_ASSERT_EQUAL_FATAL(t->n_search_countries, 2);
    CU_ASSERT_STRING_EQUAL(t->search_countries[1], "US");
    CU_ASSERT_EQUAL(t->consent->consent_for_tracing, 1);

    json_t *back = pt_primero_from_puente(s_lists, out.message_type, out.body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    const char *fields[] = {"tracing_request_id", "inquiry_date",   "relation_name",
                            "relation",           "relation_age",   "relation_sex",
                            "relation_nationality", "disclosure_other_orgs", "consent_for_tracing",
                            "search_countries"};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        CU_ASSERT(s_same(data, back, fields[f]));
    /* Every trace field that maps comes back, row by row. */
    json_t *orig_rows = json_object_get(data, "tracing_request_subform_section");
    json_t *rows = json_object_get(back, "tracing_request_subform_section");
    CU_ASSERT_EQUAL_FATAL(json_array_size(rows), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *orig = json_array_get(orig_rows, i);
        const char *key;
        json_t *value;
        json_object_foreach(orig, key, value) CU_ASSERT(s_same(orig, json_array_get(rows, i), key));
        CU_ASSERT_EQUAL(json_object_size(json_array_get(rows, i)), json_object_size(orig));
    }
    json_decref(back);
    pt_primero_out_clear(&out);
    json_decref(root);
}

static void test_followup_and_closure(void)
{
    json_t *data = NULL;
    json_t *root = s_fixture("followup.json", &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    pt_primero_out_t out;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    CU_ASSERT_EQUAL_FATAL(
        pt_primero_followup_to_puente(s_lists, data, 0, "GT-PGN", &out, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, "reintegration.followup");
    s_wire(&out);
    const Puente__V1__FollowUpReport *f = (const Puente__V1__FollowUpReport *) out.body;
    CU_ASSERT_STRING_EQUAL(f->return_id, "TEST-RET-MX-GT-2025-0003");
    CU_ASSERT_STRING_EQUAL(f->followup_type, "after_reunification");
    CU_ASSERT_EQUAL(f->followup_date->year, 2025);
    CU_ASSERT_EQUAL(f->child_seen, 0);
    CU_ASSERT_EQUAL(f->risk_level, PUENTE__V1__RISK_LEVEL__RISK_LEVEL_MEDIUM);
    CU_ASSERT_EQUAL(f->next_follow_up_due->month, 7);
    CU_ASSERT_EQUAL(f->followup_date->month, 6);
    CU_ASSERT_EQUAL(f->followup_date->day, 10);
    CU_ASSERT_STRING_EQUAL(f->not_seen_reason, "At school during the visit.");
    CU_ASSERT_STRING_EQUAL(f->by->organisation, "GT-PGN");
    json_t *back = pt_primero_from_puente(s_lists, out.message_type, out.body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(s_same(data, back, "puente_return_id"));
    json_t *orig_row = json_array_get(json_object_get(data, "followup_subform_section"), 0);
    json_t *row = json_array_get(json_object_get(back, "followup_subform_section"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    const char *fields[] = {"followup_type", "followup_date", "child_was_seen",
                            "reason_child_not_seen", "risk_level", "followup_needed_by_date"};
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT(s_same(orig_row, row, fields[i]));
    json_decref(back);
    pt_primero_out_clear(&out);
    CU_ASSERT_EQUAL(
        pt_primero_followup_to_puente(s_lists, data, 1, "GT-PGN", &out, err, sizeof err), -1);
    json_decref(root);

    root = s_fixture("closure.json", &data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL_FATAL(
        pt_primero_closure_to_puente(s_lists, data, "GT-PGN", &out, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out.message_type, "reintegration.close");
    s_wire(&out);
    const Puente__V1__ReintegrationClosure *c = (const Puente__V1__ReintegrationClosure *) out.body;
    CU_ASSERT_STRING_EQUAL(c->closure_reason, "reintegrated");
    CU_ASSERT_EQUAL(c->date_closure->day, 30);
    CU_ASSERT_EQUAL(c->date_closure->month, 9);
    CU_ASSERT_STRING_EQUAL(c->return_id, "TEST-RET-MX-GT-2025-0003");
    CU_ASSERT_STRING_EQUAL(c->note, "Reintegration plan completed.");
    CU_ASSERT_STRING_EQUAL(c->by->organisation, "GT-PGN");
    back = pt_primero_from_puente(s_lists, out.message_type, out.body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    const char *cfields[] = {"puente_return_id", "status", "closure_reason", "date_closure",
                             "closure_comments"};
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT(s_same(data, back, cfields[i]));
    json_decref(back);
    pt_primero_out_clear(&out);
    json_decref(root);
}

/* return.notice -> the Primero case the follow-ups and closure are reported on. */
static void test_return_notice(void)
{
    const char *json = "{\"return_id\":\"TEST-RET-1\",\"sent_by\":{\"organisation\":\"HN-DINAF\"},"
                       "\"child\":{\"name_first\":\"Carla\",\"sex\":\"SEX_FEMALE\","
                       "\"nationality\":[\"GT\"]},\"protection\":{\"risk_level\":"
                       "\"RISK_LEVEL_LOW\"},\"consent\":{\"consent_for_services\":true},"
                       "\"planned_return_date\":{\"year\":2025,\"month\":6,\"day\":1}}";
    ProtobufCMessage *body = NULL;
    char err[PT_PRIMERO_ERR_BYTES] = "";
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(&puente__v1__return_notice__descriptor, json,
                                             strlen(json), &body, err, sizeof err),
                          0);
    json_t *data = pt_primero_from_puente(s_lists, "return.notice", body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_return_id")),
                           "TEST-RET-1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_sender")), "HN-DINAF");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "name_first")), "Carla");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "sex")), "female");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_array_get(json_object_get(data, "nationality"), 0)), "guatemala");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "risk_level")), "low");
    CU_ASSERT(json_is_true(json_object_get(data, "consent_for_services")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "date_of_return")),
                           "2025-06-01");
    json_decref(data);
    protobuf_c_message_free_unpacked(body, NULL);

    /* The return's progress, for the sender's case. */
    const char *arrival = "{\"return_id\":\"TEST-RET-1\",\"arrival_date\":{\"year\":2025,"
                          "\"month\":6,\"day\":2}}";
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(&puente__v1__arrival_confirmation__descriptor, arrival,
                                             strlen(arrival), &body, err, sizeof err),
                          0);
    data = pt_primero_from_puente(s_lists, "return.arrival", body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_return_id")),
                           "TEST-RET-1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_return_status")),
                           "arrived");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "date_of_arrival")),
                           "2025-06-02");
    json_decref(data);
    protobuf_c_message_free_unpacked(body, NULL);
    const char *plan = "{\"return_id\":\"TEST-RET-1\",\"version\":2,\"next_follow_up_due\":"
                       "{\"year\":2025,\"month\":7,\"day\":10}}";
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(&puente__v1__reintegration_plan__descriptor, plan,
                                             strlen(plan), &body, err, sizeof err),
                          0);
    data = pt_primero_from_puente(s_lists, "reintegration.plan", body, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "puente_return_status")),
                           "planned");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(data, "puente_plan_version")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "followup_needed_by_date")),
                           "2025-07-10");
    json_decref(data);
    protobuf_c_message_free_unpacked(body, NULL);
}

/* Unknown lookup values: the field and the value are named; nothing is mapped. */
static void test_unknown_values(void)
{
    struct {
        const char *fixture, *field, *value, *want_field;
        int in_service;
    } cases[] = {
        {"case_referral.json", "sex", "dragon", "sex", 0},
        {"case_referral.json", "risk_level", "extreme", "risk_level", 0},
        {"case_referral.json", "protection_status", "lost", "protection_status", 0},
        {"case_referral.json", "service_type", "teleportation", "service_type", 1},
        {"closure.json", "closure_reason", "abducted_by_aliens", "closure_reason", 0},
        {"followup.json", "followup_type", "for_fun", "followup_type", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *data = NULL;
        json_t *root = s_fixture(cases[i].fixture, &data);
        CU_ASSERT_PTR_NOT_NULL_FATAL(root);
        json_t *target = data;
        if (cases[i].in_service == 1)
            target = json_array_get(json_object_get(data, "services_section"), 0);
        if (cases[i].in_service == 2)
            target = json_array_get(json_object_get(data, "followup_subform_section"), 0);
        json_object_set_new(target, cases[i].field, json_string(cases[i].value));
        char err[PT_PRIMERO_ERR_BYTES] = "";
        pt_primero_out_t out[4];
        int rc;
        if (strcmp(cases[i].fixture, "closure.json") == 0)
            rc = pt_primero_closure_to_puente(s_lists, data, "MX-DIF", out, err, sizeof err);
        else if (strcmp(cases[i].fixture, "followup.json") == 0)
            rc = pt_primero_followup_to_puente(s_lists, data, 0, "MX-DIF", out, err, sizeof err);
        else
            rc = pt_primero_case_to_referrals(s_lists, data, "MX-DIF", NULL, out, 4, err,
                                              sizeof err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want_field));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].value));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown value"));
        json_decref(root);
    }
    /* A multi-select with one unknown value among known ones. */
    json_t *data = NULL;
    json_t *root = s_fixture("case_referral.json", &data);
    json_object_set_new(data, "nationality", json_pack("[s,s]", "guatemala", "atlantis"));
    char err[PT_PRIMERO_ERR_BYTES] = "";
    pt_primero_out_t out[4];
    CU_ASSERT_EQUAL(
        pt_primero_case_to_referrals(s_lists, data, "MX-DIF", NULL, out, 4, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nationality"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "atlantis"));
    /* Wrong types and bad dates are errors too, without echoing the value. */
    json_object_set_new(data, "nationality", json_pack("[s]", "guatemala"));
    json_object_set_new(data, "date_of_birth", json_string("14/03/2010"));
    CU_ASSERT_EQUAL(
        pt_primero_case_to_referrals(s_lists, data, "MX-DIF", NULL, out, 4, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "date_of_birth"));
    CU_ASSERT_PTR_NULL(strstr(err, "14/03"));
    json_object_set_new(data, "date_of_birth", json_string("2010-03-14"));
    json_object_set_new(data, "sex", json_integer(2));
    CU_ASSERT_EQUAL(
        pt_primero_case_to_referrals(s_lists, data, "MX-DIF", NULL, out, 4, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sex: expected a string"));
    json_decref(root);

    /* The way back: a Puente value with no Primero row is named too. */
    Puente__V1__ReintegrationClosure closure = PUENTE__V1__REINTEGRATION_CLOSURE__INIT;
    closure.return_id = "TEST-RET-1";
    closure.closure_reason = "re_migrated";
    CU_ASSERT_PTR_NULL(pt_primero_from_puente(s_lists, "reintegration.close", &closure.base, err,
                                              sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "closure_reason"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "re_migrated"));
    CU_ASSERT_PTR_NULL(
        pt_primero_from_puente(s_lists, "return.notice", &closure.base, err, sizeof err));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("primero_mapping", s_init, s_clean);
    CU_add_test(suite, "code lists load, look up, refuse broken files", test_codelists);
    CU_add_test(suite, "case -> referral.request per service -> case", test_case_to_referrals);
    CU_add_test(suite, "case -> transfer.request -> case", test_case_to_transfer);
    CU_add_test(suite, "transitions <-> referral/transfer responses", test_transitions);
    CU_add_test(suite, "tracing request with traces round trip", test_tracing);
    CU_add_test(suite, "follow-up and closure round trip", test_followup_and_closure);
    CU_add_test(suite, "return.notice -> case, arrival and plan -> its progress", test_return_notice);
    CU_add_test(suite, "unknown lookup values are named errors", test_unknown_values);
    return pt_cu_main();
}

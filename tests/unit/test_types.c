/*  test_types — the message type registry: every type resolves, is well formed,
    and its example is valid input for its own descriptor. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "pt_json.h"
#include "pt_types.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"
#include "cu_main.h"

static const char *const s_expected_names[] = {
    "referral.request", "referral.accept", "referral.progress", "referral.done", "referral.revoke",
    "referral.reject", "transfer.request", "transfer.ask", "transfer.accept", "transfer.reject",
    "transfer.revoke", "inquiry.request", "inquiry.accept", "inquiry.report", "inquiry.close", "tracing.request",
    "tracing.progress", "tracing.verify", "tracing.reunify", "tracing.close", "tracing.match",
    "tracing.verification", "tracing.reunification_plan", "return.notice", "return.arrival",
    "reintegration.assessment", "reintegration.plan", "reintegration.followup", "reintegration.close",
    "reintegration.reopen", "consent.withdraw", "case.erasure_request",
};
#define S_EXPECTED_COUNT (sizeof s_expected_names / sizeof s_expected_names[0])

static void
test_every_type_resolves(void)
{
    CU_ASSERT_EQUAL(pt_types_count(), S_EXPECTED_COUNT);
    for (size_t i = 0; i < S_EXPECTED_COUNT; i++) {
        const pt_type_t *type = pt_types_find(s_expected_names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(type);
        CU_ASSERT_STRING_EQUAL(type->name, s_expected_names[i]);
    }
    //  pt_types_at walks the same table, in order, and stops at the end.
    for (size_t i = 0; i < pt_types_count(); i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(pt_types_at(i));
        CU_ASSERT_PTR_EQUAL(pt_types_find(pt_types_at(i)->name), pt_types_at(i));
    }
    CU_ASSERT_PTR_NULL(pt_types_at(pt_types_count()));
    CU_ASSERT_PTR_NULL(pt_types_at((size_t) -1));
}

static void
test_unknown_names(void)
{
    CU_ASSERT_PTR_NULL(pt_types_find("referral.unknown"));
    CU_ASSERT_PTR_NULL(pt_types_find("referral"));
    CU_ASSERT_PTR_NULL(pt_types_find("Referral.Request"));
    CU_ASSERT_PTR_NULL(pt_types_find("referral.request "));
    CU_ASSERT_PTR_NULL(pt_types_find(""));
    CU_ASSERT_PTR_NULL(pt_types_find(NULL));
}

static void
test_names_unique(void)
{
    for (size_t i = 0; i < pt_types_count(); i++)
        for (size_t j = i + 1; j < pt_types_count(); j++)
            CU_ASSERT(strcmp(pt_types_at(i)->name, pt_types_at(j)->name) != 0);
}

static void
test_families_and_purposes(void)
{
    CU_ASSERT_TRUE(pt_purpose_valid("service_provision"));
    CU_ASSERT_TRUE(pt_purpose_valid("case_transfer"));
    CU_ASSERT_TRUE(pt_purpose_valid("social_inquiry"));
    CU_ASSERT_TRUE(pt_purpose_valid("family_tracing"));
    CU_ASSERT_TRUE(pt_purpose_valid("reintegration"));
    CU_ASSERT_FALSE(pt_purpose_valid("marketing"));
    CU_ASSERT_FALSE(pt_purpose_valid(""));
    CU_ASSERT_FALSE(pt_purpose_valid("Reintegration"));
    CU_ASSERT_FALSE(pt_purpose_valid(NULL));

    for (size_t i = 0; i < pt_types_count(); i++) {
        const pt_type_t *type = pt_types_at(i);
        CU_ASSERT_TRUE(pt_purpose_valid(type->default_purpose));
        CU_ASSERT_PTR_NOT_NULL(type->descriptor);
        CU_ASSERT(type->summary && strlen(type->summary) > 10);
        const char *family = type->family;
        int known = strcmp(family, "referral") == 0 || strcmp(family, "tracing") == 0
                    || strcmp(family, "reintegration") == 0 || strcmp(family, "consent") == 0;
        CU_ASSERT_TRUE(known);
        //  The type name's prefix agrees with its family.
        if (strcmp(family, "tracing") == 0) {
            CU_ASSERT_EQUAL(strncmp(type->name, "tracing.", 8), 0);
            CU_ASSERT_STRING_EQUAL(type->default_purpose, "family_tracing");
        }
        if (strcmp(family, "reintegration") == 0) {
            CU_ASSERT(strncmp(type->name, "return.", 7) == 0 || strncmp(type->name, "reintegration.", 14) == 0);
            CU_ASSERT_STRING_EQUAL(type->default_purpose, "reintegration");
        }
    }
    //  Types grouped by family: a family never reappears after another began.
    for (size_t i = 2; i < pt_types_count(); i++)
        if (strcmp(pt_types_at(i)->family, pt_types_at(i - 1)->family) != 0)
            for (size_t j = 0; j + 1 < i; j++)
                CU_ASSERT(strcmp(pt_types_at(j)->family, pt_types_at(i)->family) != 0);
}

static void
test_descriptors_and_purposes_match_design(void)
{
    struct {
        const char *name;
        const ProtobufCMessageDescriptor *descriptor;
        const char *purpose;
    } expected[] = {
        {"referral.request", &puente__v1__referral_request__descriptor, "service_provision"},
        {"referral.revoke", &puente__v1__referral_update__descriptor, "service_provision"},
        {"referral.reject", &puente__v1__referral_rejection__descriptor, "service_provision"},
        {"transfer.request", &puente__v1__case_transfer__descriptor, "case_transfer"},
        {"transfer.ask", &puente__v1__transfer_ask__descriptor, "case_transfer"},
        {"transfer.reject", &puente__v1__transfer_response__descriptor, "case_transfer"},
        {"transfer.revoke", &puente__v1__transfer_response__descriptor, "case_transfer"},
        {"inquiry.request", &puente__v1__social_inquiry_request__descriptor, "social_inquiry"},
        {"inquiry.accept", &puente__v1__referral_update__descriptor, "social_inquiry"},
        {"inquiry.report", &puente__v1__social_inquiry_report__descriptor, "social_inquiry"},
        {"inquiry.close", &puente__v1__referral_update__descriptor, "social_inquiry"},
        {"tracing.request", &puente__v1__trace_request__descriptor, "family_tracing"},
        {"tracing.match", &puente__v1__possible_match__descriptor, "family_tracing"},
        {"tracing.verification", &puente__v1__trace_update__descriptor, "family_tracing"},
        {"tracing.reunification_plan", &puente__v1__trace_update__descriptor, "family_tracing"},
        {"return.notice", &puente__v1__return_notice__descriptor, "reintegration"},
        {"return.arrival", &puente__v1__arrival_confirmation__descriptor, "reintegration"},
        {"reintegration.assessment", &puente__v1__reintegration_assessment__descriptor, "reintegration"},
        {"reintegration.plan", &puente__v1__reintegration_plan__descriptor, "reintegration"},
        {"reintegration.followup", &puente__v1__follow_up_report__descriptor, "reintegration"},
        {"reintegration.reopen", &puente__v1__reintegration_closure__descriptor, "reintegration"},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const pt_type_t *type = pt_types_find(expected[i].name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(type);
        CU_ASSERT_PTR_EQUAL(type->descriptor, expected[i].descriptor);
        CU_ASSERT_STRING_EQUAL(type->default_purpose, expected[i].purpose);
    }
}

static void
test_every_example_parses(void)
{
    for (size_t i = 0; i < pt_types_count(); i++) {
        const pt_type_t *type = pt_types_at(i);
        ProtobufCMessage *msg = NULL;
        char err[PT_JSON_ERR_BYTES] = "";
        int rc = pt_json_to_message(type->descriptor, type->example_json, strlen(type->example_json), &msg, err,
                                    sizeof err);
        if (rc != 0)
            fprintf(stderr, "\n%s: %s\n", type->name, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(msg);
        if (msg) {
            CU_ASSERT_PTR_EQUAL(msg->descriptor, type->descriptor);
            //  A complete example fills most of its message's fields.
            char *back = pt_json_from_message(msg, 0);
            CU_ASSERT_PTR_NOT_NULL(back);
            size_t present = 0;
            for (unsigned f = 0; back && f < type->descriptor->n_fields; f++) {
                char quoted[128];
                snprintf(quoted, sizeof quoted, "\"%s\":", type->descriptor->fields[f].name);
                present += strstr(back, quoted) != NULL;
            }
            CU_ASSERT(present * 2 >= type->descriptor->n_fields);
            free(back);
            protobuf_c_message_free_unpacked(msg, NULL);
        }
    }
}

static void
test_example_contents(void)
{
    //  The referral example is the one partners read first: check its substance.
    const pt_type_t *type = pt_types_find("referral.request");
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES];
    CU_ASSERT_EQUAL_FATAL(
        pt_json_to_message(type->descriptor, type->example_json, strlen(type->example_json), &msg, err, sizeof err),
        0);
    Puente__V1__ReferralRequest *rr = (Puente__V1__ReferralRequest *) msg;
    CU_ASSERT_STRING_EQUAL(rr->referred_by->organisation, "MX-DIF");
    CU_ASSERT_EQUAL(rr->child->sex, PUENTE__V1__SEX__SEX_FEMALE);
    CU_ASSERT_EQUAL(rr->child->age, 15);
    CU_ASSERT_STRING_EQUAL(rr->child->nationality[0], "GT");
    CU_ASSERT_EQUAL(rr->protection->protection_status, PUENTE__V1__PROTECTION_STATUS__PROTECTION_STATUS_UNACCOMPANIED);
    CU_ASSERT_EQUAL_FATAL(rr->protection->n_protection_concerns, 2);
    CU_ASSERT_STRING_EQUAL(rr->protection->protection_concerns[0], "migrant");
    CU_ASSERT_STRING_EQUAL(rr->protection->protection_concerns[1], "trafficked_smuggled");
    CU_ASSERT_EQUAL_FATAL(rr->n_services, 2);
    CU_ASSERT_STRING_EQUAL(rr->services[0]->service_type, "psychosocial");
    CU_ASSERT_STRING_EQUAL(rr->services[1]->service_type, "legal_assistance");
    CU_ASSERT_TRUE(rr->consent->consent_for_services);
    CU_ASSERT_TRUE(rr->consent->disclosure_other_orgs);
    CU_ASSERT(strlen(rr->best_interests->reference) > 0);
    protobuf_c_message_free_unpacked(msg, NULL);

    type = pt_types_find("tracing.request");
    CU_ASSERT_EQUAL_FATAL(
        pt_json_to_message(type->descriptor, type->example_json, strlen(type->example_json), &msg, err, sizeof err),
        0);
    Puente__V1__TraceRequest *tr = (Puente__V1__TraceRequest *) msg;
    CU_ASSERT_EQUAL(tr->n_sought, 2);
    CU_ASSERT_EQUAL_FATAL(tr->n_search_countries, 3);
    CU_ASSERT_STRING_EQUAL(tr->search_countries[0], "GT");
    CU_ASSERT_STRING_EQUAL(tr->search_countries[1], "HN");
    CU_ASSERT_STRING_EQUAL(tr->search_countries[2], "SV");
    CU_ASSERT_TRUE(tr->consent->consent_for_tracing);
    protobuf_c_message_free_unpacked(msg, NULL);
}

int
main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("types", NULL, NULL);
    if (!suite || !CU_add_test(suite, "every type resolves", test_every_type_resolves)
        || !CU_add_test(suite, "unknown names", test_unknown_names)
        || !CU_add_test(suite, "names unique", test_names_unique)
        || !CU_add_test(suite, "families and purposes", test_families_and_purposes)
        || !CU_add_test(suite, "descriptors and purposes match design", test_descriptors_and_purposes_match_design)
        || !CU_add_test(suite, "every example parses", test_every_example_parses)
        || !CU_add_test(suite, "example contents", test_example_contents)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

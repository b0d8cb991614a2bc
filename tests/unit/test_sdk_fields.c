/*  test_sdk_fields — field minimisation in the SDK (adapters/sdk/pt_fields.c):
    the descriptor-driven walk, the choice of the agreement's field set, and
    possible matches that carry no personal data by construction. */
#include <string.h>

#include <CUnit/Basic.h>

#include "pt_json.h"
#include "puente.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"
#include "cu_main.h"

static ProtobufCMessage *s_example(const char *type_name)
{
    const pt_type_t *type = pt_types_find(type_name);
    CU_ASSERT_FATAL(type != NULL);
    ProtobufCMessage *msg = NULL;
    char err[200];
    CU_ASSERT_FATAL(pt_json_to_message(type->descriptor, type->example_json,
                                       strlen(type->example_json), &msg, err, sizeof err) == 0);
    return msg;
}

static void test_walk(void)
{
    ProtobufCMessage *body = s_example("referral.request");
    char bad[200];
    const char *everything[] = {"referral_id", "referred_by", "child", "protection", "consent",
                                "best_interests", "services", "care", "urgency", "respond_by",
                                "notes"};
    CU_ASSERT_EQUAL(puente_fields_check(body, everything, 11, bad, sizeof bad), 0);
    CU_ASSERT_STRING_EQUAL(bad, "");
    /* Only a child's first name and the services: the referral id is the first extra. */
    const char *minimal[] = {"child.name_first", "services"};
    CU_ASSERT_EQUAL(puente_fields_check(body, minimal, 2, bad, sizeof bad), -1);
    CU_ASSERT_STRING_EQUAL(bad, "referral_id");
    /* Entering "child" because a path below it is allowed: name_last is outside. */
    const char *most[] = {"referral_id", "referred_by", "child.name_first", "protection",
                          "consent", "best_interests", "services", "care", "urgency",
                          "respond_by", "notes"};
    CU_ASSERT_EQUAL(puente_fields_check(body, most, 11, bad, sizeof bad), -1);
    CU_ASSERT_STRING_EQUAL(bad, "child.name_last");
    /* Repeated messages: every element is walked. */
    const char *services_part[] = {"referral_id", "referred_by", "child", "protection", "consent",
                                   "best_interests", "services.service_type", "services.reason",
                                   "services.implementing_agency", "services.response_timeframe",
                                   "care", "urgency", "respond_by", "notes"};
    CU_ASSERT_EQUAL(puente_fields_check(body, services_part, 14, bad, sizeof bad), -1);
    CU_ASSERT_STRING_EQUAL(bad, "services.notes");
    /* A prefix of a name is not a parent path. */
    const char *prefix[] = {"ref"};
    CU_ASSERT_EQUAL(puente_fields_check(body, prefix, 1, bad, sizeof bad), -1);
    CU_ASSERT_STRING_EQUAL(bad, "referral_id");
    /* Unset fields never offend. */
    Puente__V1__ReferralRequest empty = PUENTE__V1__REFERRAL_REQUEST__INIT;
    CU_ASSERT_EQUAL(puente_fields_check(&empty.base, NULL, 0, bad, sizeof bad), 0);
    protobuf_c_message_free_unpacked(body, NULL);
}

static void test_field_set_for(void)
{
    char *purposes[] = {"service_provision"};
    char *types[] = {"referral.*"};
    char *fields[] = {"child.name_first", "services"};
    Puente__V1__FieldSet set = PUENTE__V1__FIELD_SET__INIT;
    set.purpose = "service_provision";
    set.fields = fields;
    set.n_fields = 2;
    Puente__V1__FieldSet *sets[] = {&set};
    Puente__V1__AgreementSpec plain = PUENTE__V1__AGREEMENT_SPEC__INIT;
    plain.agreement_id = "AGR-PLAIN";
    plain.org_a = "MX-DIF";
    plain.org_b = "HN-DINAF";
    plain.purposes = purposes;
    plain.n_purposes = 1;
    plain.message_types = types;
    plain.n_message_types = 1;
    plain.valid_from_ms = 1000;
    Puente__V1__AgreementSpec minimised = plain;
    minimised.agreement_id = "AGR-MIN";
    minimised.org_a = "GT-PGN";
    minimised.org_b = "MX-DIF";
    minimised.field_sets = sets;
    minimised.n_field_sets = 1;
    Puente__V1__AgreementSpec *list[] = {&plain, &minimised};
    CU_ASSERT_PTR_EQUAL(puente_field_set_for(list, 2, "MX-DIF", "GT-PGN", "referral.request",
                                             "service_provision", "", 5000),
                        &set);
    CU_ASSERT_PTR_EQUAL(puente_field_set_for(list, 2, "GT-PGN", "MX-DIF", "referral.accept",
                                             "service_provision", NULL, 5000),
                        &set);
    /* No field set for the pair, the purpose or the type: no restriction. */
    CU_ASSERT_PTR_NULL(puente_field_set_for(list, 2, "MX-DIF", "HN-DINAF", "referral.request",
                                            "service_provision", "", 5000));
    CU_ASSERT_PTR_NULL(puente_field_set_for(list, 2, "MX-DIF", "GT-PGN", "tracing.request",
                                            "service_provision", "", 5000));
    CU_ASSERT_PTR_NULL(puente_field_set_for(list, 2, "MX-DIF", "GT-PGN", "referral.request",
                                            "family_tracing", "", 5000));
    /* Not yet valid, or another agreement named. */
    CU_ASSERT_PTR_NULL(puente_field_set_for(list, 2, "MX-DIF", "GT-PGN", "referral.request",
                                            "service_provision", "", 10));
    CU_ASSERT_PTR_NULL(puente_field_set_for(list, 2, "MX-DIF", "GT-PGN", "referral.request",
                                            "service_provision", "AGR-PLAIN", 5000));
}

/* Names of messages that carry a person's identity or contact data. */
static int s_personal(const ProtobufCMessageDescriptor *d)
{
    return strcmp(d->short_name, "ChildIdentity") == 0 || strcmp(d->short_name, "Inquirer") == 0 ||
           strcmp(d->short_name, "Date") == 0 || strcmp(d->short_name, "ExternalId") == 0;
}

static void s_no_personal(const ProtobufCMessageDescriptor *d, int depth)
{
    CU_ASSERT_FALSE(s_personal(d));
    CU_ASSERT_FATAL(depth < 8);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        /* Word-level: "candidate_token" is not a date. */
        CU_ASSERT_PTR_NULL(strstr(f->name, "name_"));
        CU_ASSERT_PTR_NULL(strstr(f->name, "relation_name"));
        CU_ASSERT_PTR_NULL(strstr(f->name, "birth"));
        CU_ASSERT(strncmp(f->name, "date", 4) != 0 && !strstr(f->name, "_date"));
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            s_no_personal(f->descriptor, depth + 1);
    }
}

static void test_possible_match(void)
{
    const pt_type_t *type = pt_types_find("tracing.match");
    CU_ASSERT_FATAL(type != NULL);
    CU_ASSERT_PTR_EQUAL(type->descriptor, &puente__v1__possible_match__descriptor);
    s_no_personal(type->descriptor, 0);
    /* The walk itself would find a ChildIdentity: the check above is not vacuous. */
    CU_ASSERT_TRUE(s_personal(&puente__v1__child_identity__descriptor));
    /* A field set naming the whole message refuses nothing of the example. */
    ProtobufCMessage *body = s_example("tracing.match");
    const char *all[] = {"tracing_request_id", "trace_id", "candidate_token", "score",
                         "likelihood", "comparison"};
    char bad[200];
    CU_ASSERT_EQUAL(puente_fields_check(body, all, 6, bad, sizeof bad), 0);
    protobuf_c_message_free_unpacked(body, NULL);
}

/* Every field path of d with its type ("path:type", nested messages flattened),
   space-separated, in field order. */
static void s_flatten(const ProtobufCMessageDescriptor *d, const char *prefix, int depth,
                      char *out, size_t cap)
{
    CU_ASSERT_FATAL(depth < 8);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char path[200];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", f->name);
        const char *type = "other";
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: type = "string"; break;
        case PROTOBUF_C_TYPE_DOUBLE: type = "double"; break;
        case PROTOBUF_C_TYPE_ENUM:
            type = ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name;
            break;
        case PROTOBUF_C_TYPE_MESSAGE:
            type = ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name;
            break;
        default: break;
        }
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s:%s%s", used ? " " : "", path, type,
                 f->label == PROTOBUF_C_LABEL_REPEATED ? "[]" : "");
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            s_flatten(f->descriptor, path, depth + 1, out, cap);
    }
}

/* The whole PossibleMatch, pinned: any field added to it (given_name, phone,
   address, a nested message...) fails here and must be argued for in review,
   because a possible match never carries the other side's personal data. */
static void test_possible_match_fields_pinned(void)
{
    char fields[2048] = "";
    s_flatten(&puente__v1__possible_match__descriptor, "", 0, fields, sizeof fields);
    CU_ASSERT_STRING_EQUAL(fields, "tracing_request_id:string trace_id:string "
                                   "candidate_token:string score:double likelihood:string "
                                   "comparison:FieldComparison[] comparison.field_name:string "
                                   "comparison.match:FieldMatch");
    /* The flattening sees nested fields: ChildIdentity's would show. */
    char child[2048] = "";
    s_flatten(&puente__v1__child_identity__descriptor, "", 0, child, sizeof child);
    CU_ASSERT_PTR_NOT_NULL(strstr(child, "name_first:string"));
}

static Puente__V1__ReintegrationPlan *s_plan(void)
{
    return (Puente__V1__ReintegrationPlan *)s_example("reintegration.plan");
}

/* reintegration.plan: versioned (>= 1) and child participation recorded. */
static void test_plan_rules(void)
{
    char why[200];
    /* `puente example reintegration.plan` passes and records participation. */
    Puente__V1__ReintegrationPlan *plan = s_plan();
    CU_ASSERT_EQUAL(plan->version, 1);
    CU_ASSERT_EQUAL(plan->child_participation,
                    PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_YES);
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(why, "");
    /* Version 0 is refused. */
    plan->version = 0;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "reintegration.plan: version must be 1 or more (plans are "
                                "versioned)");
    plan->version = 2;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), 0);
    /* Not recorded is refused, whatever the deprecated bool says. */
    plan->child_participation = PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_UNSPECIFIED;
    plan->child_participated = 1;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "reintegration.plan: child_participation must be recorded "
                                "(CHILD_PARTICIPATION_YES, _NO or _NOT_APPROPRIATE)");
    plan->child_participated = 0;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), -1);
    /* A number outside the enum (proto3 enums are open) is not a recorded answer. */
    plan->child_participation = (Puente__V1__ChildParticipation)7;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), -1);
    /* NO and NOT_APPROPRIATE are answers. */
    plan->child_participation = PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_NO;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), 0);
    plan->child_participation =
        PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_NOT_APPROPRIATE;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), 0);
    /* The deprecated bool may not contradict the answer... */
    plan->child_participated = 1;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "reintegration.plan: child_participated (deprecated) is true but "
                                "child_participation is CHILD_PARTICIPATION_NOT_APPROPRIATE");
    /* ... and may accompany YES for older receivers. */
    plan->child_participation = PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_YES;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &plan->base, why, sizeof why), 0);
    /* The rule is the plan's: a follow-up or another type is not checked by it, and a
       body of another message type under the plan's name is refused. */
    plan->version = 0;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.followup", &plan->base, why, sizeof why),
                    0);
    ProtobufCMessage *followup = s_example("reintegration.followup");
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.followup", followup, NULL, 0), 0);
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", followup, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "reintegration.plan: body is not a ReintegrationPlan");
    protobuf_c_message_free_unpacked(followup, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    /* An old sender's plan (no child_participation on the wire) decodes as UNSPECIFIED. */
    Puente__V1__ReintegrationPlan old = PUENTE__V1__REINTEGRATION_PLAN__INIT;
    old.version = 1;
    old.child_participated = 1;
    CU_ASSERT_EQUAL(puente_payload_check("reintegration.plan", &old.base, NULL, 0), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("sdk_fields", NULL, NULL);
    CU_add_test(suite, "field path walk", test_walk);
    CU_add_test(suite, "field set of the routing agreement", test_field_set_for);
    CU_add_test(suite, "possible match has no personal data", test_possible_match);
    CU_add_test(suite, "possible match: exact field list", test_possible_match_fields_pinned);
    CU_add_test(suite, "reintegration plan: version and child participation", test_plan_rules);
    return pt_cu_main();
}

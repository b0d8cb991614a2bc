/*  pt_types — the static registry of Puente message types and their examples.

    The examples are complete, realistic but entirely fictional messages (every
    identifier starts with TEST-, the names are invented). They are C string
    literals so the binary needs no data files; test_types checks that each one
    parses into its descriptor.
*/
#include "pt_types.h"

#include <string.h>

#include "consent.pb-c.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"

// clang-format off
static const char s_ex_referral_request[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0001\",\n"
    "  \"referred_by\": {\n"
    "    \"organisation\": \"MX-DIF\",\n"
    "    \"pseudonym\": \"cw-tapachula-07\",\n"
    "    \"intake_point\": \"MX-DIF-TAPACHULA\"\n"
    "  },\n"
    "  \"child\": {\n"
    "    \"name_first\": \"Ana Lucía\",\n"
    "    \"name_last\": \"Prueba Ejemplo\",\n"
    "    \"name_nickname\": \"Anita\",\n"
    "    \"sex\": \"SEX_FEMALE\",\n"
    "    \"date_of_birth\": {\"year\": 2010, \"month\": 3, \"day\": 14},\n"
    "    \"age\": 15,\n"
    "    \"nationality\": [\"GT\"],\n"
    "    \"languages\": [\"es\", \"mam\"],\n"
    "    \"external_ids\": [\n"
    "      {\n"
    "        \"id_type\": \"cpims_id\",\n"
    "        \"value\": \"TEST-MX-DIF-000123\",\n"
    "        \"issuer\": \"MX-DIF\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  \"protection\": {\n"
    "    \"protection_status\": \"PROTECTION_STATUS_UNACCOMPANIED\",\n"
    "    \"protection_concerns\": [\"migrant\", \"trafficked_smuggled\"],\n"
    "    \"risk_level\": \"RISK_LEVEL_HIGH\",\n"
    "    \"urgent_protection_concern\": true,\n"
    "    \"displacement_status\": \"migrant_in_transit\"\n"
    "  },\n"
    "  \"consent\": {\n"
    "    \"interview_subject\": \"INTERVIEW_SUBJECT_INDIVIDUAL\",\n"
    "    \"consent_for_services\": true,\n"
    "    \"disclosure_other_orgs\": true,\n"
    "    \"consent_info_sharing\": [\"authorities\", \"other_organizations\"],\n"
    "    \"legitimate_basis\": [\"LEGAL_BASIS_CONSENT\", \"LEGAL_BASIS_BEST_INTERESTS\"],\n"
    "    \"withhold_from\": [\"XI-TEST-WITHHELD\"],\n"
    "    \"consent_date\": {\"year\": 2025, \"month\": 5, \"day\": 6}\n"
    "  },\n"
    "  \"best_interests\": {\n"
    "    \"reference\": \"TEST-BIA-MX-2025-0042\",\n"
    "    \"decision_kind\": \"bia\",\n"
    "    \"decision_date\": {\"year\": 2025, \"month\": 5, \"day\": 7},\n"
    "    \"child_views\": \"She wishes to contact her aunt and to receive legal advice (FICTIONAL TEST DATA).\"\n"
    "  },\n"
    "  \"services\": [\n"
    "    {\n"
    "      \"service_type\": \"psychosocial\",\n"
    "      \"reason\": \"Distress after the journey; needs psychosocial first aid.\",\n"
    "      \"implementing_agency\": \"GT-PGN\",\n"
    "      \"response_timeframe\": \"three_days\",\n"
    "      \"notes\": \"FICTIONAL TEST DATA\"\n"
    "    },\n"
    "    {\n"
    "      \"service_type\": \"legal_assistance\",\n"
    "      \"reason\": \"Representation in the protection proceedings.\",\n"
    "      \"implementing_agency\": \"GT-PGN\",\n"
    "      \"response_timeframe\": \"one_day\"\n"
    "    }\n"
    "  ],\n"
    "  \"care\": {\n"
    "    \"care_arrangements_type\": \"residential_care\",\n"
    "    \"relationship_caregiver\": \"shelter_staff\",\n"
    "    \"started\": {\"year\": 2025, \"month\": 5, \"day\": 5}\n"
    "  },\n"
    "  \"urgency\": \"urgent\",\n"
    "  \"respond_by\": {\"year\": 2025, \"month\": 5, \"day\": 14},\n"
    "  \"notes\": \"Unaccompanied girl identified at the southern border. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_referral_accept[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0001\",\n"
    "  \"status\": \"accepted\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-guatemala-12\",\n"
    "    \"intake_point\": \"GT-PGN-CENTRAL\"\n"
    "  },\n"
    "  \"note\": \"Case assigned to the psychosocial team. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_referral_progress[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0001\",\n"
    "  \"status\": \"in_progress\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-guatemala-12\",\n"
    "    \"intake_point\": \"GT-PGN-CENTRAL\"\n"
    "  },\n"
    "  \"note\": \"First psychosocial session held; legal intake scheduled.\"\n"
    "}\n";

static const char s_ex_referral_done[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0001\",\n"
    "  \"status\": \"done\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-guatemala-12\",\n"
    "    \"intake_point\": \"GT-PGN-CENTRAL\"\n"
    "  },\n"
    "  \"note\": \"Both services delivered.\",\n"
    "  \"service_implemented_on\": {\"year\": 2025, \"month\": 6, \"day\": 20}\n"
    "}\n";

static const char s_ex_referral_revoke[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0001\",\n"
    "  \"status\": \"revoked\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"MX-DIF\",\n"
    "    \"pseudonym\": \"cw-tapachula-07\",\n"
    "    \"intake_point\": \"MX-DIF-TAPACHULA\"\n"
    "  },\n"
    "  \"note\": \"Child moved to another state; referral withdrawn by sender. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_referral_reject[] =
    "{\n"
    "  \"referral_id\": \"TEST-REF-MX-DIF-2025-0002\",\n"
    "  \"rejected_reason\": \"no_capacity\",\n"
    "  \"rejection_note\": \"No legal aid capacity in the department this month; please refer to XI-ISS. FICTIONAL TEST DATA.\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-guatemala-12\",\n"
    "    \"intake_point\": \"GT-PGN-CENTRAL\"\n"
    "  }\n"
    "}\n";

static const char s_ex_transfer_request[] =
    "{\n"
    "  \"transfer_id\": \"TEST-TRF-US-ORR-2025-0107\",\n"
    "  \"from\": {\n"
    "    \"organisation\": \"US-ORR\",\n"
    "    \"pseudonym\": \"cw-orr-case-31\",\n"
    "    \"intake_point\": \"US-ORR-HOUSTON\"\n"
    "  },\n"
    "  \"child\": {\n"
    "    \"name_first\": \"Kevin\",\n"
    "    \"name_last\": \"Ficticio Muestra\",\n"
    "    \"sex\": \"SEX_MALE\",\n"
    "    \"date_of_birth\": {\"year\": 2012, \"month\": 8, \"day\": 2},\n"
    "    \"age\": 13,\n"
    "    \"nationality\": [\"HN\"],\n"
    "    \"languages\": [\"es\"],\n"
    "    \"external_ids\": [\n"
    "      {\n"
    "        \"id_type\": \"other\",\n"
    "        \"value\": \"TEST-A-000-000-001\",\n"
    "        \"issuer\": \"US-ORR\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  \"protection\": {\n"
    "    \"protection_status\": \"PROTECTION_STATUS_SEPARATED\",\n"
    "    \"protection_concerns\": [\"migrant\", \"separated\"],\n"
    "    \"risk_level\": \"RISK_LEVEL_MEDIUM\",\n"
    "    \"displacement_status\": \"returnee\"\n"
    "  },\n"
    "  \"consent\": {\n"
    "    \"interview_subject\": \"INTERVIEW_SUBJECT_CAREGIVER\",\n"
    "    \"consent_for_services\": true,\n"
    "    \"disclosure_other_orgs\": true,\n"
    "    \"consent_info_sharing\": [\"authorities\"],\n"
    "    \"legitimate_basis\": [\"LEGAL_BASIS_LEGAL_OBLIGATION\"],\n"
    "    \"consent_date\": {\"year\": 2025, \"month\": 4, \"day\": 22}\n"
    "  },\n"
    "  \"best_interests\": {\n"
    "    \"reference\": \"TEST-ORR-RELEASE-2025-0107\",\n"
    "    \"decision_kind\": \"orr_release\",\n"
    "    \"decision_date\": {\"year\": 2025, \"month\": 4, \"day\": 28}\n"
    "  },\n"
    "  \"transfer_reason\": \"Child repatriated; case management continues with the national authority.\",\n"
    "  \"notes\": \"FICTIONAL TEST DATA\"\n"
    "}\n";

static const char s_ex_transfer_ask[] =
    "{\n"
    "  \"transfer_request_id\": \"TEST-TRQ-HN-DINAF-2025-0009\",\n"
    "  \"requested_by\": {\n"
    "    \"organisation\": \"HN-DINAF\",\n"
    "    \"pseudonym\": \"cw-dinaf-sps-04\",\n"
    "    \"intake_point\": \"HN-DINAF-SPS\"\n"
    "  },\n"
    "  \"justification\": \"The child now lives in San Pedro Sula with his grandmother; DINAF is competent. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_transfer_accept[] =
    "{\n"
    "  \"transfer_id\": \"TEST-TRF-US-ORR-2025-0107\",\n"
    "  \"accepted\": true,\n"
    "  \"by\": {\n"
    "    \"organisation\": \"HN-DINAF\",\n"
    "    \"pseudonym\": \"cw-dinaf-sps-04\",\n"
    "    \"intake_point\": \"HN-DINAF-SPS\"\n"
    "  }\n"
    "}\n";

static const char s_ex_transfer_revoke[] =
    "{\n"
    "  \"transfer_id\": \"TEST-TRF-US-ORR-2025-0109\",\n"
    "  \"rejected_reason\": \"other\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"US-ORR\",\n"
    "    \"pseudonym\": \"cw-orr-houston-02\",\n"
    "    \"intake_point\": \"US-ORR-HOUSTON\"\n"
    "  }\n"
    "}\n";

static const char s_ex_transfer_reject[] =
    "{\n"
    "  \"transfer_id\": \"TEST-TRF-US-ORR-2025-0108\",\n"
    "  \"rejected_reason\": \"not_competent\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"HN-DINAF\",\n"
    "    \"pseudonym\": \"cw-dinaf-sps-04\",\n"
    "    \"intake_point\": \"HN-DINAF-SPS\"\n"
    "  }\n"
    "}\n";

static const char s_ex_inquiry_request[] =
    "{\n"
    "  \"inquiry_id\": \"TEST-INQ-US-ORR-2025-0031\",\n"
    "  \"requested_by\": {\n"
    "    \"organisation\": \"US-ORR\",\n"
    "    \"pseudonym\": \"cw-orr-case-31\",\n"
    "    \"intake_point\": \"US-ORR-HOUSTON\"\n"
    "  },\n"
    "  \"child\": {\n"
    "    \"name_first\": \"Marisol\",\n"
    "    \"name_last\": \"Ejemplar Demo\",\n"
    "    \"sex\": \"SEX_FEMALE\",\n"
    "    \"date_of_birth\": {\"year\": 2011, \"month\": 11},\n"
    "    \"age\": 14,\n"
    "    \"estimated\": true,\n"
    "    \"nationality\": [\"SV\"],\n"
    "    \"languages\": [\"es\"]\n"
    "  },\n"
    "  \"consent\": {\n"
    "    \"interview_subject\": \"INTERVIEW_SUBJECT_CAREGIVER\",\n"
    "    \"consent_for_services\": true,\n"
    "    \"disclosure_other_orgs\": true,\n"
    "    \"legitimate_basis\": [\"LEGAL_BASIS_BEST_INTERESTS\"],\n"
    "    \"consent_date\": {\"year\": 2025, \"month\": 3, \"day\": 18}\n"
    "  },\n"
    "  \"inquiry_kind\": \"home_study\",\n"
    "  \"questions\": [\"Is the maternal grandmother willing and able to care for the child?\", \"Are there protection risks in the household or community?\", \"Which schools and health services are available nearby?\"],\n"
    "  \"household_contact_via\": \"SV-CONNA-SAN-MIGUEL\",\n"
    "  \"respond_by\": {\"year\": 2025, \"month\": 4, \"day\": 30}\n"
    "}\n";

static const char s_ex_inquiry_accept[] =
    "{\n"
    "  \"referral_id\": \"TEST-INQ-US-ORR-2025-0031\",\n"
    "  \"status\": \"accepted\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"SV-CONNA\",\n"
    "    \"pseudonym\": \"cw-conna-sm-02\",\n"
    "    \"intake_point\": \"SV-CONNA-SAN-MIGUEL\"\n"
    "  },\n"
    "  \"note\": \"Home visit planned within two weeks. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_inquiry_report[] =
    "{\n"
    "  \"inquiry_id\": \"TEST-INQ-US-ORR-2025-0031\",\n"
    "  \"reported_by\": {\n"
    "    \"organisation\": \"SV-CONNA\",\n"
    "    \"pseudonym\": \"cw-conna-sm-02\",\n"
    "    \"intake_point\": \"SV-CONNA-SAN-MIGUEL\"\n"
    "  },\n"
    "  \"recommendation\": \"conditional\",\n"
    "  \"summary\": \"Grandmother willing; household suitable if school enrolment and psychosocial follow-up are arranged. FICTIONAL TEST DATA.\",\n"
    "  \"visit_date\": {\"year\": 2025, \"month\": 4, \"day\": 9}\n"
    "}\n";

static const char s_ex_inquiry_close[] =
    "{\n"
    "  \"referral_id\": \"TEST-INQ-US-ORR-2025-0031\",\n"
    "  \"status\": \"done\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"US-ORR\",\n"
    "    \"pseudonym\": \"cw-orr-case-31\",\n"
    "    \"intake_point\": \"US-ORR-HOUSTON\"\n"
    "  },\n"
    "  \"note\": \"Report received and reviewed; inquiry closed.\"\n"
    "}\n";

static const char s_ex_tracing_request[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"requested_by\": {\n"
    "    \"organisation\": \"XI-ISS\",\n"
    "    \"pseudonym\": \"cw-iss-geneva-09\",\n"
    "    \"intake_point\": \"XI-ISS-GVA\"\n"
    "  },\n"
    "  \"inquirer\": {\n"
    "    \"relation_name\": \"Rosa Ejemplo Ficticia\",\n"
    "    \"relation\": \"mother\",\n"
    "    \"relation_age\": 38,\n"
    "    \"relation_sex\": \"SEX_FEMALE\",\n"
    "    \"relation_language\": [\"es\"],\n"
    "    \"relation_nationality\": [\"GT\"],\n"
    "    \"contact_via\": \"XI-ISS-GVA\",\n"
    "    \"inquiry_date\": {\"year\": 2025, \"month\": 2, \"day\": 10}\n"
    "  },\n"
    "  \"sought\": [\n"
    "    {\n"
    "      \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "      \"relation\": \"son\",\n"
    "      \"identity\": {\n"
    "        \"name_first\": \"Mateo\",\n"
    "        \"name_last\": \"Ejemplo Ficticio\",\n"
    "        \"sex\": \"SEX_MALE\",\n"
    "        \"age\": 12,\n"
    "        \"estimated\": true,\n"
    "        \"nationality\": [\"GT\"],\n"
    "        \"languages\": [\"es\", \"kiche\"]\n"
    "      },\n"
    "      \"separation\": {\n"
    "        \"date_of_separation\": {\"year\": 2024, \"month\": 11},\n"
    "        \"separation_cause\": \"migration\",\n"
    "        \"location_separation\": \"Tecún Umán, GT\",\n"
    "        \"location_last\": \"Tapachula, MX\"\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-2\",\n"
    "      \"relation\": \"daughter\",\n"
    "      \"identity\": {\n"
    "        \"name_first\": \"Lucía\",\n"
    "        \"name_last\": \"Ejemplo Ficticio\",\n"
    "        \"sex\": \"SEX_FEMALE\",\n"
    "        \"age\": 16,\n"
    "        \"nationality\": [\"GT\"],\n"
    "        \"languages\": [\"es\"]\n"
    "      },\n"
    "      \"separation\": {\n"
    "        \"date_of_separation\": {\"year\": 2024, \"month\": 11},\n"
    "        \"separation_cause\": \"migration\",\n"
    "        \"location_separation\": \"Tecún Umán, GT\",\n"
    "        \"location_last\": \"San Pedro Sula, HN\"\n"
    "      }\n"
    "    }\n"
    "  ],\n"
    "  \"search_countries\": [\"GT\", \"HN\", \"SV\"],\n"
    "  \"consent\": {\n"
    "    \"interview_subject\": \"INTERVIEW_SUBJECT_CAREGIVER\",\n"
    "    \"consent_for_tracing\": true,\n"
    "    \"disclosure_other_orgs\": true,\n"
    "    \"legitimate_basis\": [\"LEGAL_BASIS_CONSENT\"],\n"
    "    \"consent_date\": {\"year\": 2025, \"month\": 2, \"day\": 10}\n"
    "  },\n"
    "  \"wishes_child_family_tracing\": true\n"
    "}\n";

static const char s_ex_tracing_progress[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"tracing_in_progress\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-ftr-guatemala-03\",\n"
    "    \"intake_point\": \"GT-PGN-FTR\"\n"
    "  },\n"
    "  \"note\": \"Shelter records in Tapachula being checked. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_tracing_verify[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"pending_verification\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-ftr-guatemala-03\",\n"
    "    \"intake_point\": \"GT-PGN-FTR\"\n"
    "  },\n"
    "  \"note\": \"Possible match found; verification interview requested.\"\n"
    "}\n";

static const char s_ex_tracing_reunify[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"reunified\",\n"
    "  \"child_agrees\": true,\n"
    "  \"family_willing\": true,\n"
    "  \"best_interests_ref\": \"TEST-BID-GT-2025-0077\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-ftr-guatemala-03\",\n"
    "    \"intake_point\": \"GT-PGN-FTR\"\n"
    "  },\n"
    "  \"note\": \"Child reunified with his mother. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_tracing_close[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"closed\",\n"
    "  \"closure_reason\": \"reunified\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"XI-ISS\",\n"
    "    \"pseudonym\": \"cw-iss-geneva-09\",\n"
    "    \"intake_point\": \"XI-ISS-GVA\"\n"
    "  },\n"
    "  \"note\": \"Tracing closed after reunification.\"\n"
    "}\n";

static const char s_ex_tracing_match[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"candidate_token\": \"TEST-CAND-7f3a9c\",\n"
    "  \"score\": 0.87,\n"
    "  \"likelihood\": \"likely\",\n"
    "  \"comparison\": [\n"
    "    {\n"
    "      \"field_name\": \"name_first\",\n"
    "      \"match\": \"FIELD_MATCH_MATCH\"\n"
    "    },\n"
    "    {\n"
    "      \"field_name\": \"name_last\",\n"
    "      \"match\": \"FIELD_MATCH_MATCH\"\n"
    "    },\n"
    "    {\n"
    "      \"field_name\": \"sex\",\n"
    "      \"match\": \"FIELD_MATCH_MATCH\"\n"
    "    },\n"
    "    {\n"
    "      \"field_name\": \"age\",\n"
    "      \"match\": \"FIELD_MATCH_MATCH\"\n"
    "    },\n"
    "    {\n"
    "      \"field_name\": \"date_of_birth\",\n"
    "      \"match\": \"FIELD_MATCH_BLANK\"\n"
    "    },\n"
    "    {\n"
    "      \"field_name\": \"location_last\",\n"
    "      \"match\": \"FIELD_MATCH_MISMATCH\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char s_ex_tracing_verification[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"verified\",\n"
    "  \"child_agrees\": true,\n"
    "  \"family_willing\": true,\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-ftr-guatemala-03\",\n"
    "    \"intake_point\": \"GT-PGN-FTR\"\n"
    "  },\n"
    "  \"note\": \"Mother and child recognised each other by video call with caseworkers present. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_tracing_reunification_plan[] =
    "{\n"
    "  \"tracing_request_id\": \"TEST-TR-XI-ISS-2025-0005\",\n"
    "  \"trace_id\": \"TEST-TR-XI-ISS-2025-0005-1\",\n"
    "  \"status\": \"reunification_planned\",\n"
    "  \"child_agrees\": true,\n"
    "  \"family_willing\": true,\n"
    "  \"best_interests_ref\": \"TEST-BID-GT-2025-0077\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-ftr-guatemala-03\",\n"
    "    \"intake_point\": \"GT-PGN-FTR\"\n"
    "  },\n"
    "  \"note\": \"Escorted return to Quetzaltenango planned; home visit done.\"\n"
    "}\n";

static const char s_ex_return_notice[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"sent_by\": {\n"
    "    \"organisation\": \"MX-DIF\",\n"
    "    \"pseudonym\": \"cw-tapachula-07\",\n"
    "    \"intake_point\": \"MX-DIF-TAPACHULA\"\n"
    "  },\n"
    "  \"child\": {\n"
    "    \"name_first\": \"Ana Lucía\",\n"
    "    \"name_last\": \"Prueba Ejemplo\",\n"
    "    \"name_nickname\": \"Anita\",\n"
    "    \"sex\": \"SEX_FEMALE\",\n"
    "    \"date_of_birth\": {\"year\": 2010, \"month\": 3, \"day\": 14},\n"
    "    \"age\": 15,\n"
    "    \"nationality\": [\"GT\"],\n"
    "    \"languages\": [\"es\", \"mam\"],\n"
    "    \"external_ids\": [\n"
    "      {\n"
    "        \"id_type\": \"cpims_id\",\n"
    "        \"value\": \"TEST-MX-DIF-000123\",\n"
    "        \"issuer\": \"MX-DIF\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  \"protection\": {\n"
    "    \"protection_status\": \"PROTECTION_STATUS_UNACCOMPANIED\",\n"
    "    \"protection_concerns\": [\"migrant\", \"trafficked_smuggled\"],\n"
    "    \"risk_level\": \"RISK_LEVEL_HIGH\",\n"
    "    \"urgent_protection_concern\": true,\n"
    "    \"displacement_status\": \"migrant_in_transit\"\n"
    "  },\n"
    "  \"consent\": {\n"
    "    \"interview_subject\": \"INTERVIEW_SUBJECT_INDIVIDUAL\",\n"
    "    \"consent_for_services\": true,\n"
    "    \"disclosure_other_orgs\": true,\n"
    "    \"consent_info_sharing\": [\"authorities\", \"other_organizations\"],\n"
    "    \"legitimate_basis\": [\"LEGAL_BASIS_CONSENT\", \"LEGAL_BASIS_BEST_INTERESTS\"],\n"
    "    \"withhold_from\": [\"XI-TEST-WITHHELD\"],\n"
    "    \"consent_date\": {\"year\": 2025, \"month\": 5, \"day\": 6}\n"
    "  },\n"
    "  \"best_interests\": {\n"
    "    \"reference\": \"TEST-PR-MX-2025-0042\",\n"
    "    \"decision_kind\": \"plan_restitucion\",\n"
    "    \"decision_date\": {\"year\": 2025, \"month\": 6, \"day\": 2},\n"
    "    \"child_views\": \"She wishes to return to live with her aunt in Quetzaltenango (FICTIONAL TEST DATA).\"\n"
    "  },\n"
    "  \"planned_return_date\": {\"year\": 2025, \"month\": 6, \"day\": 18},\n"
    "  \"return_mode\": \"land\",\n"
    "  \"port_of_entry\": \"Tecún Umán\",\n"
    "  \"escorted\": true,\n"
    "  \"receiving_authority\": \"GT-PGN\",\n"
    "  \"reception_centre\": \"TEST Casa Nuestras Raíces Quetzaltenango\",\n"
    "  \"family_assessment_outcome\": \"Aunt assessed as willing and suitable.\",\n"
    "  \"urgent_health_needs\": [\"follow_up_dental_care\"]\n"
    "}\n";

static const char s_ex_return_arrival[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"arrival_date\": {\"year\": 2025, \"month\": 6, \"day\": 18},\n"
    "  \"handed_over_to\": \"aunt\",\n"
    "  \"received_by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  }\n"
    "}\n";

static const char s_ex_reintegration_assessment[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"assessments\": [\n"
    "    {\n"
    "      \"assessment_type\": \"vulnerability\",\n"
    "      \"outcome\": \"medium\",\n"
    "      \"date\": {\"year\": 2025, \"month\": 6, \"day\": 25}\n"
    "    },\n"
    "    {\n"
    "      \"assessment_type\": \"family\",\n"
    "      \"outcome\": \"supportive_caregiver\",\n"
    "      \"date\": {\"year\": 2025, \"month\": 6, \"day\": 25}\n"
    "    },\n"
    "    {\n"
    "      \"assessment_type\": \"rss\",\n"
    "      \"outcome\": \"TEST reintegration sustainability score 0.62\",\n"
    "      \"date\": {\"year\": 2025, \"month\": 7, \"day\": 2}\n"
    "    }\n"
    "  ],\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  }\n"
    "}\n";

static const char s_ex_reintegration_plan[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"plan_id\": \"TEST-PLAN-GT-2025-0019\",\n"
    "  \"version\": 1,\n"
    "  \"child_participation\": \"CHILD_PARTICIPATION_YES\",\n"
    "  \"objectives\": [\"Re-enrol in secondary school\", \"Psychosocial recovery\", \"Family livelihood support\"],\n"
    "  \"actions\": [\n"
    "    {\n"
    "      \"action_id\": \"A1\",\n"
    "      \"dimension\": \"social\",\n"
    "      \"service_type\": \"education\",\n"
    "      \"provider\": \"TEST Instituto Básico Xela\",\n"
    "      \"responsible\": \"cw-reint-xela-05\",\n"
    "      \"due\": {\"year\": 2025, \"month\": 7, \"day\": 15},\n"
    "      \"status\": \"in_progress\"\n"
    "    },\n"
    "    {\n"
    "      \"action_id\": \"A2\",\n"
    "      \"dimension\": \"psychosocial\",\n"
    "      \"service_type\": \"psychosocial\",\n"
    "      \"provider\": \"GT-PGN\",\n"
    "      \"responsible\": \"cw-reint-xela-05\",\n"
    "      \"due\": {\"year\": 2025, \"month\": 9, \"day\": 30},\n"
    "      \"status\": \"planned\"\n"
    "    },\n"
    "    {\n"
    "      \"action_id\": \"A3\",\n"
    "      \"dimension\": \"economic\",\n"
    "      \"service_type\": \"livelihoods\",\n"
    "      \"provider\": \"XI-IOM\",\n"
    "      \"responsible\": \"cw-iom-gt-01\",\n"
    "      \"due\": {\"year\": 2025, \"month\": 10, \"day\": 31},\n"
    "      \"status\": \"planned\"\n"
    "    }\n"
    "  ],\n"
    "  \"next_follow_up_due\": {\"year\": 2025, \"month\": 8, \"day\": 18},\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  }\n"
    "}\n";

static const char s_ex_reintegration_followup[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"followup_type\": \"after_reunification\",\n"
    "  \"followup_date\": {\"year\": 2025, \"month\": 8, \"day\": 18},\n"
    "  \"child_seen\": true,\n"
    "  \"same_caregiver\": true,\n"
    "  \"current_care_type\": \"kinship_care_extended_family\",\n"
    "  \"services_received\": [\"education\", \"psychosocial\"],\n"
    "  \"risk_level\": \"RISK_LEVEL_LOW\",\n"
    "  \"next_follow_up_due\": {\"year\": 2025, \"month\": 11, \"day\": 18},\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  }\n"
    "}\n";

static const char s_ex_reintegration_close[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"closure_reason\": \"reintegrated\",\n"
    "  \"date_closure\": {\"year\": 2026, \"month\": 2, \"day\": 20},\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  },\n"
    "  \"note\": \"Plan objectives met; closed after three follow-ups. FICTIONAL TEST DATA.\"\n"
    "}\n";

static const char s_ex_reintegration_reopen[] =
    "{\n"
    "  \"return_id\": \"TEST-RET-MX-DIF-2025-0019\",\n"
    "  \"closure_reason\": \"other\",\n"
    "  \"date_closure\": {\"year\": 2026, \"month\": 4, \"day\": 3},\n"
    "  \"by\": {\n"
    "    \"organisation\": \"GT-PGN\",\n"
    "    \"pseudonym\": \"cw-reint-xela-05\",\n"
    "    \"intake_point\": \"GT-PGN-XELA\"\n"
    "  },\n"
    "  \"note\": \"Reopened: school dropout reported by the family.\"\n"
    "}\n";


static const char s_ex_consent_withdraw[] =
    "{\n"
    "  \"case_ref\": \"TEST-MX-DIF-000123\",\n"
    "  \"withdrawn_scopes\": [\"disclosure\", \"tracing\"],\n"
    "  \"effective_date\": {\"year\": 2025, \"month\": 7, \"day\": 1},\n"
    "  \"reason_code\": \"subject_request\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"MX-DIF\",\n"
    "    \"pseudonym\": \"cw-tapachula-07\",\n"
    "    \"intake_point\": \"MX-DIF-TAPACHULA\"\n"
    "  }\n"
    "}\n";

static const char s_ex_case_erasure_request[] =
    "{\n"
    "  \"case_ref\": \"TEST-MX-DIF-000123\",\n"
    "  \"scopes\": [\"all\"],\n"
    "  \"legal_basis_ref\": \"TEST-LGPDPPSO-ART-46\",\n"
    "  \"requested_on\": {\"year\": 2025, \"month\": 7, \"day\": 2},\n"
    "  \"reason_code\": \"subject_request\",\n"
    "  \"by\": {\n"
    "    \"organisation\": \"MX-DIF\",\n"
    "    \"pseudonym\": \"cw-tapachula-07\",\n"
    "    \"intake_point\": \"MX-DIF-TAPACHULA\"\n"
    "  }\n"
    "}\n";

static const pt_type_t s_types[] = {
    {"referral.request", "referral", &puente__v1__referral_request__descriptor, "service_provision",
     "Refer a child or a service need to the competent agency of another country", s_ex_referral_request},
    {"referral.accept", "referral", &puente__v1__referral_update__descriptor, "service_provision",
     "The recipient accepts a service referral", s_ex_referral_accept},
    {"referral.progress", "referral", &puente__v1__referral_update__descriptor, "service_provision",
     "Progress on an accepted service referral", s_ex_referral_progress},
    {"referral.done", "referral", &puente__v1__referral_update__descriptor, "service_provision",
     "The referred services have been delivered", s_ex_referral_done},
    {"referral.revoke", "referral", &puente__v1__referral_update__descriptor, "service_provision",
     "The sender withdraws a service referral", s_ex_referral_revoke},
    {"referral.reject", "referral", &puente__v1__referral_rejection__descriptor, "service_provision",
     "The recipient declines a service referral, with a reason code", s_ex_referral_reject},
    {"transfer.request", "referral", &puente__v1__case_transfer__descriptor, "case_transfer",
     "Transfer case management of a child to the recipient", s_ex_transfer_request},
    {"transfer.ask", "referral", &puente__v1__transfer_ask__descriptor, "case_transfer",
     "Ask the agency that owns a case to transfer it", s_ex_transfer_ask},
    {"transfer.accept", "referral", &puente__v1__transfer_response__descriptor, "case_transfer",
     "The recipient accepts a case transfer", s_ex_transfer_accept},
    {"transfer.reject", "referral", &puente__v1__transfer_response__descriptor, "case_transfer",
     "The recipient declines a case transfer, with a reason code", s_ex_transfer_reject},
    {"transfer.revoke", "referral", &puente__v1__transfer_response__descriptor, "case_transfer",
     "The sender withdraws a case transfer not yet accepted (ownership unchanged)", s_ex_transfer_revoke},
    {"inquiry.request", "referral", &puente__v1__social_inquiry_request__descriptor, "social_inquiry",
     "Request a social inquiry or intercountry home study", s_ex_inquiry_request},
    {"inquiry.accept", "referral", &puente__v1__referral_update__descriptor, "social_inquiry",
     "The recipient accepts a social inquiry", s_ex_inquiry_accept},
    {"inquiry.report", "referral", &puente__v1__social_inquiry_report__descriptor, "social_inquiry",
     "Report and recommendation of a social inquiry", s_ex_inquiry_report},
    {"inquiry.close", "referral", &puente__v1__referral_update__descriptor, "social_inquiry",
     "The requester closes a social inquiry", s_ex_inquiry_close},
    {"tracing.request", "tracing", &puente__v1__trace_request__descriptor, "family_tracing",
     "Ask the tracing focal points of several countries to trace family members", s_ex_tracing_request},
    {"tracing.progress", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "Progress of a trace", s_ex_tracing_progress},
    {"tracing.verify", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "Ask for verification of a possible match", s_ex_tracing_verify},
    {"tracing.reunify", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "The child has been reunified with the family", s_ex_tracing_reunify},
    {"tracing.close", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "Close a tracing request, with a closure reason", s_ex_tracing_close},
    {"tracing.match", "tracing", &puente__v1__possible_match__descriptor, "family_tracing",
     "A possible match: comparison vector and candidate token, no personal data", s_ex_tracing_match},
    {"tracing.verification", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "Outcome of a verification: verified, falsely_attributed or rejected", s_ex_tracing_verification},
    {"tracing.reunification_plan", "tracing", &puente__v1__trace_update__descriptor, "family_tracing",
     "Reunification planned, with the best-interests reference", s_ex_tracing_reunification_plan},
    {"return.notice", "reintegration", &puente__v1__return_notice__descriptor, "reintegration",
     "Notice of a child's planned return to the receiving country", s_ex_return_notice},
    {"return.arrival", "reintegration", &puente__v1__arrival_confirmation__descriptor, "reintegration",
     "The receiving authority confirms the child's arrival", s_ex_return_arrival},
    {"reintegration.assessment", "reintegration", &puente__v1__reintegration_assessment__descriptor, "reintegration",
     "Assessments made after the return", s_ex_reintegration_assessment},
    {"reintegration.plan", "reintegration", &puente__v1__reintegration_plan__descriptor, "reintegration",
     "The reintegration plan, versioned", s_ex_reintegration_plan},
    {"reintegration.followup", "reintegration", &puente__v1__follow_up_report__descriptor, "reintegration",
     "A follow-up visit report", s_ex_reintegration_followup},
    {"reintegration.close", "reintegration", &puente__v1__reintegration_closure__descriptor, "reintegration",
     "Close the reintegration case, with a closure reason", s_ex_reintegration_close},
    {"reintegration.reopen", "reintegration", &puente__v1__reintegration_closure__descriptor, "reintegration",
     "Reopen a closed reintegration case", s_ex_reintegration_reopen},
    /* Family "consent": the broker fans these out to every organisation that holds
       data about the case token (docs/protocol.md). Revoking a referral is
       referral.revoke, not one of these. */
    {"consent.withdraw", "consent", &puente__v1__consent_withdrawal__descriptor, "data_protection",
     "Consent withdrawn: reaches every organisation that received the case", s_ex_consent_withdraw},
    {"case.erasure_request", "consent", &puente__v1__erasure_request__descriptor, "data_protection",
     "Ask every organisation that received the case to erase its data", s_ex_case_erasure_request},
};
// clang-format on

static const char *const s_purposes[] = {
    "service_provision", "case_transfer", "social_inquiry", "family_tracing", "reintegration",
    "data_protection",
};

const pt_type_t *
pt_types_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (strcmp(s_types[i].name, name) == 0)
            return &s_types[i];
    return NULL;
}

size_t
pt_types_count(void)
{
    return sizeof s_types / sizeof s_types[0];
}

const pt_type_t *
pt_types_at(size_t i)
{
    return i < pt_types_count() ? &s_types[i] : NULL;
}

int
pt_purpose_valid(const char *purpose)
{
    if (!purpose)
        return 0;
    for (size_t i = 0; i < sizeof s_purposes / sizeof s_purposes[0]; i++)
        if (strcmp(s_purposes[i], purpose) == 0)
            return 1;
    return 0;
}

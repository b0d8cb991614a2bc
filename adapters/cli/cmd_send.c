/*  puente send — parse a family message from JSON, seal, submit, print the receipt. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pt_json.h"

static const char *s_help =
    "usage: puente send --as ORG --to ORG[,ORG...] --type TYPE --case TOKEN --json FILE|-\n"
    "(consent.withdraw and case.erasure_request: without --to, every organisation that\n"
    " sent or received a message about the case)\n"
    "                   [options]\n"
    "Parses the JSON body as TYPE (see `puente example TYPE`), seals it to each recipient,\n"
    "submits it and prints the broker's signed receipt.\n"
    "  --purpose P            purpose (default: the type's)\n"
    "  --agreement ID         agreement to route under\n"
    "  --correlation UUID     thread id (default: a new one)\n"
    "  --causation UUID       the message this one answers\n"
    "  --consent LIST         services,disclosure,tracing (or none): replaces the consent\n"
    "                         flags taken from the body's consent block\n"
    "  --legal-basis B        consent|contract|vital_interests|best_interests|\n"
    "                         legal_obligation|other_legitimate_interests\n"
    "  --withhold ORG,...     organisations that must never receive this case\n"
    "  --override-approver X  consent overridden, approved by pseudonymous id X\n"
    "  --service-type T       service type (service referrals; default: the body's\n"
    "                         first services[].service_type)\n"
    "  --countries CC,...     tracing.request: countries to search (default: the body's\n"
    "                         search_countries; must equal them); --to names their\n"
    "                         registered tracing focal points, all of them\n"
    "  --best-interests REF   best-interests decision reference\n"
    "  --reason CODE          reason code (rejections, closures)\n"
    "  --expires-in D         e.g. 7d, 12h (default: the broker's)\n"
    "  --respond-by ISO8601   deadline for an answer\n"
    "  --follow-up-due ISO8601  reintegration.plan / .followup: next follow-up due\n"
    "Without flags, the consent summary comes from the body's consent block.\n" CLI_COMMON_HELP;

typedef struct {
    const char *as, *to, *type, *case_token, *json_path, *purpose, *agreement, *correlation,
        *causation, *consent, *legal_basis, *withhold, *override_approver, *service_type,
        *best_interests, *reason, *expires_in, *respond_by, *follow_up_due, *countries;
} s_args_t;

static int s_apply_consent_flags(const s_args_t *a, Puente__V1__ConsentSummary *cs,
                                 char ***withhold_v)
{
    if (a->consent) {
        char **v = NULL;
        size_t n = 0;
        if (cli_split(a->consent, &v, &n) != 0)
            return cli_usage_error("send", "--consent: expected services,disclosure,tracing or none");
        cs->consent_for_services = cs->disclosure_other_orgs = cs->consent_for_tracing = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i], "services") == 0)
                cs->consent_for_services = 1;
            else if (strcmp(v[i], "disclosure") == 0)
                cs->disclosure_other_orgs = 1;
            else if (strcmp(v[i], "tracing") == 0)
                cs->consent_for_tracing = 1;
            else if (strcmp(v[i], "none") != 0) {
                int code = cli_usage_error("send", "--consent: unknown item '%s'", v[i]);
                cli_strv_free(&v);
                return code;
            }
        }
        cli_strv_free(&v);
    }
    if (a->legal_basis) {
        int b = puente_legal_basis_parse(a->legal_basis);
        if (b < 0)
            return cli_usage_error("send", "--legal-basis: unknown basis '%s'", a->legal_basis);
        cs->legal_basis = (Puente__V1__LegalBasis) b;
    }
    if (a->withhold) {
        size_t n = 0;
        if (cli_split(a->withhold, withhold_v, &n) != 0)
            return cli_usage_error("send", "--withhold: expected ORG,ORG,...");
        for (size_t i = 0; i < n; i++)
            if (!pt_org_id_valid((*withhold_v)[i]))
                return cli_usage_error("send", "--withhold: '%s' is not an organisation id",
                                       (*withhold_v)[i]);
        cs->n_withhold_from = n;
        cs->withhold_from = *withhold_v;
    }
    if (a->override_approver) {
        cs->overridden = 1;
        cs->override_approver = (char *) a->override_approver;
    }
    return CLI_OK;
}

static void s_print_receipt(const pt_receipt_info_t *r, int json_output)
{
    char mid[PT_UUID_STR_BYTES], cid[PT_UUID_STR_BYTES], at[40];
    char hsha[2 * PT_SHA256_BYTES + 1], ehash[2 * PT_SHA256_BYTES + 1];
    pt_uuid_format(r->message_id, mid);
    pt_uuid_format(r->correlation_id, cid);
    puente_time_format(r->stored_at_ms, at, sizeof at);
    pt_hex(r->header_sha256, PT_SHA256_BYTES, hsha);
    pt_hex(r->event_hash, PT_SHA256_BYTES, ehash);
    if (json_output) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "message_id", mid,
                              "correlation_id", cid, "stored_at", at, "header_sha256", hsha,
                              "event_hash", ehash, "duplicate", r->duplicate);
        cli_print_json(o, 1);
        json_decref(o);
        return;
    }
    printf("message_id:     %s\n", mid);
    printf("correlation_id: %s\n", cid);
    printf("stored_at:      %s\n", at);
    printf("header_sha256:  %s\n", hsha);
    printf("event_hash:     %s\n", ehash);
    if (r->duplicate)
        printf("duplicate:      yes (already stored; this is the original receipt)\n");
}

int cmd_send(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "as", required_argument, 0, 'a' },          { "to", required_argument, 0, 'o' },
        { "type", required_argument, 0, 't' },        { "case", required_argument, 0, 'c' },
        { "json", required_argument, 0, 'j' },        { "purpose", required_argument, 0, 'p' },
        { "agreement", required_argument, 0, 'g' },   { "correlation", required_argument, 0, 'r' },
        { "causation", required_argument, 0, 'u' },   { "consent", required_argument, 0, 'n' },
        { "legal-basis", required_argument, 0, 'l' }, { "withhold", required_argument, 0, 'w' },
        { "override-approver", required_argument, 0, 'v' },
        { "service-type", required_argument, 0, 's' },
        { "best-interests", required_argument, 0, 'i' },
        { "reason", required_argument, 0, 'e' },      { "expires-in", required_argument, 0, 'x' },
        { "respond-by", required_argument, 0, 'y' },
        { "follow-up-due", required_argument, 0, 'F' },
        { "countries", required_argument, 0, 'C' }, CLI_COMMON_OPTIONS,
        { 0, 0, 0, 0 }
    };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    s_args_t a = { 0 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'a': a.as = optarg; break;
        case 'o': a.to = optarg; break;
        case 't': a.type = optarg; break;
        case 'c': a.case_token = optarg; break;
        case 'j': a.json_path = optarg; break;
        case 'p': a.purpose = optarg; break;
        case 'g': a.agreement = optarg; break;
        case 'r': a.correlation = optarg; break;
        case 'u': a.causation = optarg; break;
        case 'n': a.consent = optarg; break;
        case 'l': a.legal_basis = optarg; break;
        case 'w': a.withhold = optarg; break;
        case 'v': a.override_approver = optarg; break;
        case 's': a.service_type = optarg; break;
        case 'i': a.best_interests = optarg; break;
        case 'e': a.reason = optarg; break;
        case 'x': a.expires_in = optarg; break;
        case 'y': a.respond_by = optarg; break;
        case 'F': a.follow_up_due = optarg; break;
        case 'C': a.countries = optarg; break;
        case 'h': fputs(s_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("send", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("send", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("send", "unexpected argument '%s'", argv[optind]);
    if (!a.as || !a.type || !a.case_token || !a.json_path)
        return cli_usage_error("send", "--as, --to, --type, --case and --json are required");
    if (!pt_org_id_valid(a.as))
        return cli_usage_error("send", "--as: '%s' is not an organisation id", a.as);
    const pt_type_t *type = pt_types_find(a.type);
    if (!type)
        return cli_usage_error("send", "--type: unknown type '%s' (puente types lists them)",
                               a.type);
    if (a.purpose && !pt_purpose_valid(a.purpose))
        return cli_usage_error("send", "--purpose: unknown purpose '%s'", a.purpose);
    uint8_t correlation[PT_UUID_BYTES], causation[PT_UUID_BYTES];
    if (a.correlation && pt_uuid_parse(a.correlation, correlation) != 0)
        return cli_usage_error("send", "--correlation: '%s' is not a UUID", a.correlation);
    if (a.causation && pt_uuid_parse(a.causation, causation) != 0)
        return cli_usage_error("send", "--causation: '%s' is not a UUID", a.causation);
    int64_t expires_in = 0, respond_by = 0, follow_up_due = 0;
    if (a.follow_up_due && puente_time_parse(a.follow_up_due, &follow_up_due) != 0)
        return cli_usage_error("send",
                               "--follow-up-due: '%s' is not ISO 8601 (e.g. 2025-07-15T09:00:00Z)",
                               a.follow_up_due);
    if (a.expires_in && (puente_duration_parse(a.expires_in, &expires_in) != 0 || expires_in <= 0))
        return cli_usage_error("send", "--expires-in: '%s' is not a duration (e.g. 7d, 12h)",
                               a.expires_in);
    if (a.respond_by && puente_time_parse(a.respond_by, &respond_by) != 0)
        return cli_usage_error("send", "--respond-by: '%s' is not ISO 8601 (e.g. 2025-06-30T17:00:00Z)",
                               a.respond_by);

    int code = CLI_USAGE;
    char **to = NULL, **withhold = NULL, **countries = NULL, *text = NULL;
    size_t n_to = 0, n_countries = 0, text_len = 0;
    ProtobufCMessage *body = NULL;
    uint8_t *packed = NULL;
    pt_client_t *client = NULL;
    /* consent.withdraw / case.erasure_request without --to: the SDK asks the
       broker for every organisation that holds data about the case. */
    if (!a.to && strcmp(type->family, "consent") != 0) {
        code = cli_usage_error("send", "--as, --to, --type, --case and --json are required");
        goto done;
    }
    if (a.to && cli_split(a.to, &to, &n_to) != 0) {
        code = cli_usage_error("send", "--to: expected ORG[,ORG...]");
        goto done;
    }
    for (size_t i = 0; i < n_to; i++)
        if (!pt_org_id_valid(to[i])) {
            code = cli_usage_error("send", "--to: '%s' is not an organisation id", to[i]);
            goto done;
        }
    if (a.countries && (cli_split(a.countries, &countries, &n_countries) != 0 || n_countries == 0)) {
        code = cli_usage_error("send", "--countries: expected CC[,CC...] (e.g. GT,HN,SV)");
        goto done;
    }
    if (cli_read_file(a.json_path, PT_JSON_MAX_BYTES, &text, &text_len) != 0)
        goto done;
    char jerr[PT_JSON_ERR_BYTES];
    if (pt_json_to_message(type->descriptor, text, text_len, &body, jerr, sizeof jerr) != 0) {
        fprintf(stderr, "puente send: %s is not a valid %s: %s\n",
                strcmp(a.json_path, "-") == 0 ? "stdin" : a.json_path, type->name, jerr);
        goto done;
    }
    size_t packed_len = protobuf_c_message_get_packed_size(body);
    packed = malloc(packed_len ? packed_len : 1);
    if (!packed)
        goto done;
    protobuf_c_message_pack(body, packed);

    /* The caseworker's consent in the payload is what the broker gates on. */
    Puente__V1__ConsentSummary consent;
    puente_consent_derive(body, &consent);
    code = s_apply_consent_flags(&a, &consent, &withhold);
    if (code != CLI_OK)
        goto done;

    pt_send_t msg = { .message_type = type->name,
                      .recipients = (const char *const *) to,
                      .n_recipients = n_to,
                      .case_token = a.case_token,
                      .purpose = a.purpose,
                      .agreement_id = a.agreement,
                      .correlation_id = a.correlation ? correlation : NULL,
                      .causation_id = a.causation ? causation : NULL,
                      .expires_in_ms = expires_in,
                      .respond_by_ms = respond_by,
                      .consent = &consent,
                      .service_type = a.service_type,
                      .best_interests_ref = a.best_interests,
                      .reason_code = a.reason,
                      .body = packed,
                      .body_len = packed_len,
                      .follow_up_due_ms = follow_up_due,
                      .search_countries = (const char *const *) countries,
                      .n_search_countries = n_countries };
    code = cli_connect(&common, a.as, 0, &client);
    if (code != CLI_OK)
        goto done;
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_send(client, &msg, &receipt, &rej);
    if (rc == PT_CLIENT_OK)
        s_print_receipt(&receipt, common.json_output);
    code = cli_fail(client, rc, &rej);
done:
    pt_client_destroy(&client);
    if (body)
        protobuf_c_message_free_unpacked(body, NULL);
    free(packed);
    free(text);
    cli_strv_free(&to);
    cli_strv_free(&withhold);
    cli_strv_free(&countries);
    return code;
}

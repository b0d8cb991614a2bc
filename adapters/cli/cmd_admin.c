/*  puente keygen / org add|list|show|disable|enable / agreement add|list|revoke /
    queue list / status — key files and operator administration. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* --- keygen -------------------------------------------------------------- */

static const char *s_keygen_help =
    "usage: puente keygen --org ID [--keys DIR] [--if-missing] [--json-output]\n"
    "Creates DIR/ID/{sign,seal,curve}.{key,pub}. Refuses to overwrite existing keys\n"
    "(--if-missing: do nothing, successfully, when they exist). Prints the key ids;\n"
    "with --json-output one JSON object {org, dir, sign_key_id, seal_key_id,\n"
    "curve_public, created}, also when --if-missing found keys (created false).\n"
    "  --org ID          the organisation (or operator, broker)\n"
    "  --if-missing      succeed without change when DIR/ID/ holds keys\n"
    "ID is an organisation id (MX-DIF, XI-ISS), 'operator' or 'broker'.\n" CLI_COMMON_HELP;

static int s_mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Prints the key ids of ks (in dir); created: 1 new, 0 already there (--if-missing).
   -1 (reason on stderr) if the JSON could not be made (dir not valid UTF-8). */
static int s_print_keys(const pt_keyset_t *ks, const char *dir, int json_output, int created)
{
    uint8_t sign_id[PT_KEY_ID_BYTES], seal_id[PT_KEY_ID_BYTES];
    char sign_hex[2 * PT_KEY_ID_BYTES + 1], seal_hex[2 * PT_KEY_ID_BYTES + 1];
    pt_sign_key_id(pt_keyset_sign(ks), sign_id);
    pt_seal_key_id(pt_keyset_seal(ks), seal_id);
    pt_hex(sign_id, sizeof sign_id, sign_hex);
    pt_hex(seal_id, sizeof seal_id, seal_hex);
    if (json_output) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "org", pt_keyset_org(ks), "dir",
                              dir, "sign_key_id", sign_hex, "seal_key_id", seal_hex,
                              "curve_public", pt_keyset_curve_public_z85(ks), "created", created);
        if (!o) {
            fprintf(stderr, "puente keygen: cannot print %s as JSON (not UTF-8?)\n", dir);
            return -1;
        }
        cli_print_json(o, 1);
        json_decref(o);
        return 0;
    }
    printf("org:          %s\n", pt_keyset_org(ks));
    printf("keys:         %s/%s/\n", dir, pt_keyset_org(ks));
    printf("sign key id:  %s\n", sign_hex);
    printf("seal key id:  %s\n", seal_hex);
    printf("curve public: %s\n", pt_keyset_curve_public_z85(ks));
    return 0;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = { { "org", required_argument, 0, 'o' },
                                              { "if-missing", no_argument, 0, 'm' },
                                              CLI_COMMON_OPTIONS,
                                              { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *org = NULL;
    int if_missing = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'o': org = optarg; break;
        case 'm': if_missing = 1; break;
        case 'h': fputs(s_keygen_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("keygen", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("keygen", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (!org)
        return cli_usage_error("keygen", "--org is required");
    if (!pt_org_id_valid(org))
        return cli_usage_error("keygen", "--org: '%s' is not a valid organisation id (e.g. MX-DIF)",
                               org);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/sign.pub", common.keys, org);
    if (access(path, F_OK) == 0) {
        if (if_missing) {
            fprintf(stderr, "keys of %s already in %s/%s/; left as they are\n", org, common.keys,
                    org);
            if (!common.json_output)
                return CLI_OK;
            char why[256] = "";
            pt_keyset_t *existing = pt_keyset_load(common.keys, org, 0, why, sizeof why);
            if (!existing) {
                fprintf(stderr, "puente keygen: cannot read the keys in %s/%s/: %s\n",
                        common.keys, org, why);
                return CLI_USAGE;
            }
            int printed = s_print_keys(existing, common.keys, 1, 0);
            pt_keyset_destroy(&existing);
            return printed == 0 ? CLI_OK : CLI_USAGE;
        }
        fprintf(stderr, "puente keygen: %s/%s/ already holds keys; refusing to overwrite\n",
                common.keys, org);
        return CLI_USAGE;
    }
    if (s_mkdir_p(common.keys) != 0) {
        fprintf(stderr, "puente keygen: cannot create %s: %s\n", common.keys, strerror(errno));
        return CLI_USAGE;
    }
    pt_keyset_t *ks = pt_keyset_generate(org);
    if (!ks) {
        fprintf(stderr, "puente keygen: key generation failed\n");
        return CLI_USAGE;
    }
    if (pt_keyset_save(ks, common.keys) != 0) {
        int e = errno;
        fprintf(stderr, "puente keygen: cannot write %s/%s/: %s\n", common.keys, org,
                e == EEXIST ? "keys already exist; refusing to overwrite" : strerror(e));
        pt_keyset_destroy(&ks);
        return CLI_USAGE;
    }
    int printed = s_print_keys(ks, common.keys, common.json_output, 1);
    pt_keyset_destroy(&ks);
    return printed == 0 ? CLI_OK : CLI_USAGE;
}

/* --- org add ------------------------------------------------------------- */

static int s_org_admin(const cli_common_t *common, const char *verb, const char *org);
static int s_agreement_admin(const cli_common_t *common, const char *revoke_id);

static const char *s_org_help =
    "usage: puente org add ID [--services a,b] [--keys DIR] [--broker URL]\n"
    "       puente org list | show ID | disable ID | enable ID [--json-output]\n"
    "add: registers organisation ID with the public keys in DIR/ID/*.pub, acting as the\n"
    "operator (keys in DIR/operator/). Idempotent; registering again replaces the\n"
    "service types (and enables it again).\n"
    "list: every organisation (enabled, connected, services); show: one, with its key id.\n"
    "disable: new connections with its key are refused and messages to it are refused\n"
    "(REJECT_UNKNOWN_RECIPIENT); enable undoes it. All act as the operator.\n"
    "  --services LIST   service types it receives (lower-case, e.g.\n"
    "                    health,education); none = receives no message that names a service type\n" CLI_COMMON_HELP;

int cli_admin_simple(const cli_common_t *common, const Puente__V1__AdminRequest *req)
{
    pt_client_t *client = NULL;
    int code = cli_connect(common, PUENTE_OPERATOR, 0, &client);
    if (code != CLI_OK)
        return code;
    char *result = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_admin(client, req, &result, &rej);
    if (rc == PT_CLIENT_OK) {
        if (common->json_output) {
            json_t *o = json_pack("{s:s}", "result", result ? result : "");
            cli_print_json(o, 1);
            json_decref(o);
        }
        else
            printf("%s\n", result && *result ? result : "ok");
    }
    code = cli_fail(client, rc, &rej);
    free(result);
    pt_client_destroy(&client);
    return code;
}

int cmd_org(int argc, char **argv)
{
    static const struct option longopts[] = { { "services", required_argument, 0, 's' },
                                              CLI_COMMON_OPTIONS, { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *services = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        if (c == 's') {
            services = optarg;
            continue;
        }
        if (c == 'h') {
            fputs(s_org_help, stdout);
            return CLI_OK;
        }
        if (c == ':')
            return cli_usage_error("org", "option %s needs a value", argv[optind - 1]);
        return cli_usage_error("org", "unknown option %s", argv[optind - 1]);
    }
    if (argc - optind == 1 && strcmp(argv[optind], "list") == 0)
        return s_org_admin(&common, "list", NULL);
    if (argc - optind == 2 && (strcmp(argv[optind], "show") == 0 ||
                               strcmp(argv[optind], "disable") == 0 ||
                               strcmp(argv[optind], "enable") == 0)) {
        if (!pt_org_id_valid(argv[optind + 1]))
            return cli_usage_error("org", "'%s' is not a valid organisation id (e.g. MX-DIF)",
                                   argv[optind + 1]);
        return s_org_admin(&common, argv[optind], argv[optind + 1]);
    }
    if (argc - optind != 2 || strcmp(argv[optind], "add") != 0)
        return cli_usage_error("org", "expected: org add ID | list | show ID | disable ID | enable ID");
    const char *org = argv[optind + 1];
    if (!pt_org_id_valid(org) || strcmp(org, "broker") == 0 || strcmp(org, "operator") == 0)
        return cli_usage_error("org", "'%s' is not a valid organisation id (e.g. MX-DIF)", org);
    char err[200] = "";
    pt_keyset_t *ks = pt_keyset_load(common.keys, org, 0, err, sizeof err);
    if (!ks) {
        fprintf(stderr, "puente org: cannot read the public keys of %s in %s/%s/: %s\n", org,
                common.keys, org, err);
        return CLI_USAGE;
    }
    uint8_t sign_pub[PT_ED25519_PUBLIC_BYTES], seal_pub[PT_X25519_PUBLIC_BYTES],
        curve_pub[PT_CURVE_KEY_BYTES];
    pt_sign_key_public(pt_keyset_sign(ks), sign_pub);
    pt_seal_key_public(pt_keyset_seal(ks), seal_pub);
    memcpy(curve_pub, pt_keyset_curve_public(ks), sizeof curve_pub);
    pt_keyset_destroy(&ks);

    Puente__V1__OrgKeys keys = PUENTE__V1__ORG_KEYS__INIT;
    keys.org_id = (char *) org;
    keys.sign_public = (ProtobufCBinaryData) { sizeof sign_pub, sign_pub };
    keys.seal_public = (ProtobufCBinaryData) { sizeof seal_pub, seal_pub };
    keys.curve_public = (ProtobufCBinaryData) { sizeof curve_pub, curve_pub };
    keys.enabled = 1;
    char **service_v = NULL;
    size_t n_services = 0;
    if (services && cli_split(services, &service_v, &n_services) != 0)
        return cli_usage_error("org", "--services: expected a comma-separated list");
    keys.service_types = service_v;
    keys.n_service_types = n_services;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ADD;
    req.org_add = &keys;
    int code = cli_admin_simple(&common, &req);
    cli_strv_free(&service_v);
    return code;
}

/* --- agreement add ------------------------------------------------------- */

static const char *s_agreement_help =
    "usage: puente agreement add --id AGR-ID --between ORG_A ORG_B --purposes p1,p2\n"
    "                            --types \"referral.*,tracing.request\"\n"
    "                            [--valid-from ISO8601] [--valid-until ISO8601]\n"
    "                            [--fields PURPOSE=path1,path2 ...] [--retention-days N]\n"
    "Registers an information-sharing agreement, acting as the operator.\n"
    "--between also accepts ORG_A,ORG_B. Types may be \"*\" or a family prefix \"referral.*\".\n"
    "Purposes: service_provision, case_transfer, social_inquiry, family_tracing, reintegration.\n"
    "Valid from now (or --valid-from) and open-ended unless --valid-until.\n"
    "--fields (repeatable, one per purpose) limits the payload fields sent for that purpose:\n"
    "paths like child.name_first or services (a message path allows all below it). The\n"
    "SDKs of both sides refuse anything else; a purpose without --fields is unrestricted.\n"
    "--retention-days N: `puente retention run` deletes the sealed payloads of its messages\n"
    "N days after they were stored (headers, signatures and the trail stay); 0 = kept.\n"
    "\n"
    "usage: puente agreement list [--json-output]\n"
    "       puente agreement revoke ID\n"
    "list: every agreement with its parties, validity (* = ended) and purposes.\n"
    "revoke: ends it now (valid_until = now); later messages under it are refused\n"
    "with REJECT_NO_AGREEMENT. Both act as the operator.\n"
    CLI_COMMON_HELP;

int cmd_agreement(int argc, char **argv)
{
    static const struct option longopts[] = { { "id", required_argument, 0, 'i' },
                                              { "between", required_argument, 0, 'b' },
                                              { "purposes", required_argument, 0, 'p' },
                                              { "types", required_argument, 0, 't' },
                                              { "valid-from", required_argument, 0, 'f' },
                                              { "valid-until", required_argument, 0, 'u' },
                                              { "fields", required_argument, 0, 'F' },
                                              { "retention-days", required_argument, 0, 'R' },
                                              CLI_COMMON_OPTIONS,
                                              { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *id = NULL, *org_a = NULL, *org_b = NULL, *purposes = NULL, *types = NULL;
    int64_t valid_from = pt_now_ms(), valid_until = 0;
    uint32_t retention_days = 0;
    char **pv = NULL, **tv = NULL, *between_copy = NULL;
    size_t np = 0, nt = 0;
    /* --fields PURPOSE=a,b: up to 16, split in place in a copy of each value. */
    enum { S_MAX_FIELD_SETS = 16 };
    char *field_text[S_MAX_FIELD_SETS] = { 0 };
    char **field_paths[S_MAX_FIELD_SETS] = { 0 };
    Puente__V1__FieldSet field_sets[S_MAX_FIELD_SETS];
    Puente__V1__FieldSet *field_set_ptrs[S_MAX_FIELD_SETS];
    size_t n_field_sets = 0;
    int code = CLI_USAGE, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            goto done;
        if (r > 0)
            continue;
        switch (c) {
        case 'i': id = optarg; break;
        case 'b':
            free(between_copy);
            between_copy = strdup(optarg);
            if (!between_copy)
                goto done;
            org_a = between_copy;
            char *comma = strchr(between_copy, ',');
            if (comma) {
                *comma = '\0';
                org_b = comma + 1;
            }
            /* "--between A B": take B from the next word; the GNU getopt permutation
               would otherwise leave it as a stray positional argument. */
            else if (optind < argc && argv[optind][0] != '-')
                org_b = argv[optind++];
            break;
        case 'p': purposes = optarg; break;
        case 't': types = optarg; break;
        case 'F': {
            char *eq = strchr(optarg, '=');
            if (n_field_sets == S_MAX_FIELD_SETS || !eq || eq == optarg || !eq[1]) {
                code = cli_usage_error("agreement", "--fields: expected PURPOSE=path1,path2 (at most %d)",
                                       S_MAX_FIELD_SETS);
                goto done;
            }
            size_t k = n_field_sets;
            field_text[k] = strdup(optarg);
            if (!field_text[k])
                goto done;
            field_text[k][eq - optarg] = '\0';
            size_t n_paths = 0;
            if (!pt_purpose_valid(field_text[k])
                || cli_split(field_text[k] + (eq - optarg) + 1, &field_paths[k], &n_paths) != 0) {
                code = cli_usage_error("agreement", "--fields: '%s' needs a known purpose and paths",
                                       optarg);
                n_field_sets++;
                goto done;
            }
            puente__v1__field_set__init(&field_sets[k]);
            field_sets[k].purpose = field_text[k];
            field_sets[k].fields = field_paths[k];
            field_sets[k].n_fields = n_paths;
            field_set_ptrs[k] = &field_sets[k];
            n_field_sets++;
            break;
        }
        case 'f':
            if (puente_time_parse(optarg, &valid_from) != 0) {
                code = cli_usage_error("agreement", "--valid-from: '%s' is not ISO 8601 (e.g. 2025-01-31 or 2025-01-31T00:00:00Z)", optarg);
                goto done;
            }
            break;
        case 'u':
            if (puente_time_parse(optarg, &valid_until) != 0) {
                code = cli_usage_error("agreement", "--valid-until: '%s' is not ISO 8601 (e.g. 2026-12-31 or 2026-12-31T23:59:59Z)", optarg);
                goto done;
            }
            break;
        case 'R': {
            char *end = NULL;
            unsigned long days = strtoul(optarg, &end, 10);
            if (!*optarg || !end || *end || days > 365000) {
                code = cli_usage_error("agreement", "--retention-days: '%s' is not a number of days", optarg);
                goto done;
            }
            retention_days = (uint32_t) days;
            break;
        }
        case 'h': fputs(s_agreement_help, stdout); code = CLI_OK; goto done;
        case ':': code = cli_usage_error("agreement", "option %s needs a value", argv[optind - 1]); goto done;
        default: code = cli_usage_error("agreement", "unknown option %s", argv[optind - 1]); goto done;
        }
    }
    if (argc - optind == 1 && strcmp(argv[optind], "list") == 0) {
        code = s_agreement_admin(&common, NULL);
        goto done;
    }
    if (argc - optind == 2 && strcmp(argv[optind], "revoke") == 0) {
        code = argv[optind + 1][0] ? s_agreement_admin(&common, argv[optind + 1])
                                   : cli_usage_error("agreement", "revoke needs an agreement id");
        goto done;
    }
    if (argc - optind != 1 || strcmp(argv[optind], "add") != 0) {
        code = cli_usage_error("agreement", "expected: agreement add --id ID --between A B ... | list | revoke ID");
        goto done;
    }
    if (!id || !*id) {
        code = cli_usage_error("agreement", "--id is required");
        goto done;
    }
    if (!org_a || !org_b || !pt_org_id_valid(org_a) || !pt_org_id_valid(org_b)) {
        code = cli_usage_error("agreement", "--between needs two valid organisation ids");
        goto done;
    }
    if (!purposes || cli_split(purposes, &pv, &np) != 0) {
        code = cli_usage_error("agreement", "--purposes needs a comma-separated list");
        goto done;
    }
    for (size_t i = 0; i < np; i++)
        if (!pt_purpose_valid(pv[i])) {
            code = cli_usage_error("agreement", "--purposes: unknown purpose '%s'", pv[i]);
            goto done;
        }
    if (!types || cli_split(types, &tv, &nt) != 0) {
        code = cli_usage_error("agreement", "--types needs a comma-separated list");
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        size_t len = strlen(tv[i]);
        int pattern = strcmp(tv[i], "*") == 0 || (len > 2 && strcmp(tv[i] + len - 2, ".*") == 0);
        if (!pattern && !pt_types_find(tv[i])) {
            code = cli_usage_error("agreement", "--types: unknown type '%s' (see puente types)",
                                   tv[i]);
            goto done;
        }
    }
    if (valid_until && valid_until <= valid_from) {
        code = cli_usage_error("agreement", "--valid-until must be after the start of validity");
        goto done;
    }
    Puente__V1__AgreementSpec spec = PUENTE__V1__AGREEMENT_SPEC__INIT;
    spec.agreement_id = (char *) id;
    spec.org_a = (char *) org_a;
    spec.org_b = (char *) org_b;
    spec.n_purposes = np;
    spec.purposes = pv;
    spec.n_message_types = nt;
    spec.message_types = tv;
    spec.valid_from_ms = valid_from;
    spec.valid_until_ms = valid_until;
    spec.field_sets = field_set_ptrs;
    spec.n_field_sets = n_field_sets;
    spec.retention_days = retention_days;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD;
    req.agreement_add = &spec;
    code = cli_admin_simple(&common, &req);
done:
    cli_strv_free(&pv);
    cli_strv_free(&tv);
    for (size_t i = 0; i < n_field_sets; i++) {
        cli_strv_free(&field_paths[i]);
        free(field_text[i]);
    }
    free(between_copy);
    return code;
}

/* --- issue 6: org list/show/disable/enable, agreement list/revoke, queue list,
   status. Each sends one AdminRequest and prints the structured AdminReply as a
   table or (--json-output) one JSON document. */

/* Sends req as the operator; CLI_OK with *out (free with
   puente__v1__admin_reply__free_unpacked), or the exit code after printing why. */
static int s_admin_call(const cli_common_t *common, const Puente__V1__AdminRequest *req,
                        Puente__V1__AdminReply **out)
{
    pt_client_t *client = NULL;
    *out = NULL;
    int code = cli_connect(common, PUENTE_OPERATOR, 0, &client);
    if (code != CLI_OK)
        return code;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_client_result_t rc = pt_client_admin_reply(client, req, out, &rej);
    code = cli_fail(client, rc, &rej);
    pt_client_destroy(&client);
    return code;
}

int cli_admin_call(const cli_common_t *common, const Puente__V1__AdminRequest *req,
                   Puente__V1__AdminReply **out)
{
    return s_admin_call(common, req, out);
}

static void s_time_or(int64_t ms, const char *none, char *out, size_t out_len)
{
    if (ms <= 0)
        snprintf(out, out_len, "%s", none);
    else
        puente_time_format(ms, out, out_len);
}

static json_t *s_strings_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void s_print_orgs(const Puente__V1__AdminReply *reply, int json_output, int detail)
{
    if (json_output) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < reply->n_orgs; i++) {
            const Puente__V1__OrgInfo *o = reply->orgs[i];
            char key_id[2 * 32 + 1] = "";
            if (o->sign_key_id.len == 32)
                pt_hex(o->sign_key_id.data, 32, key_id);
            json_array_append_new(
                a, json_pack("{s:s, s:b, s:b, s:o, s:s}", "org_id", o->org_id, "enabled",
                             (int) o->enabled, "connected", (int) o->connected, "service_types",
                             s_strings_json(o->service_types, o->n_service_types), "sign_key_id",
                             key_id));
        }
        json_t *doc = detail && reply->n_orgs == 1 ? json_incref(json_array_get(a, 0))
                                                   : json_pack("{s:o}", "orgs", json_incref(a));
        cli_print_json(doc, 0);
        json_decref(doc);
        json_decref(a);
        return;
    }
    if (!detail)
        printf("%-24s %-8s %-9s %s\n", "ORG", "ENABLED", "CONNECTED", "SERVICES");
    for (size_t i = 0; i < reply->n_orgs; i++) {
        const Puente__V1__OrgInfo *o = reply->orgs[i];
        char services[600] = "";
        size_t used = 0;
        for (size_t k = 0; k < o->n_service_types && used < sizeof services; k++)
            used += (size_t) snprintf(services + used, sizeof services - used, "%s%s",
                                      k ? "," : "", o->service_types[k]);
        if (!detail) {
            printf("%-24s %-8s %-9s %s\n", o->org_id, o->enabled ? "yes" : "no",
                   o->connected ? "yes" : "no", services[0] ? services : "(all)");
            continue;
        }
        char key_id[2 * 32 + 1] = "";
        if (o->sign_key_id.len == 32)
            pt_hex(o->sign_key_id.data, 32, key_id);
        printf("org:          %s\n", o->org_id);
        printf("enabled:      %s\n", o->enabled ? "yes" : "no");
        printf("connected:    %s\n", o->connected ? "yes" : "no");
        printf("services:     %s\n", services[0] ? services : "(all)");
        printf("sign key id:  %s\n", key_id);
    }
}

static int s_org_admin(const cli_common_t *common, const char *verb, const char *org)
{
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__OrgListRequest list = PUENTE__V1__ORG_LIST_REQUEST__INIT;
    Puente__V1__OrgEnable enable = PUENTE__V1__ORG_ENABLE__INIT;
    int detail = 1;
    if (strcmp(verb, "list") == 0) {
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_LIST;
        req.org_list = &list;
        detail = 0;
    }
    else if (strcmp(verb, "show") == 0) {
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW;
        req.org_show = (char *) org;
    }
    else {
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ENABLE;
        enable.org_id = (char *) org;
        enable.enabled = strcmp(verb, "enable") == 0;
        req.org_enable = &enable;
    }
    Puente__V1__AdminReply *reply = NULL;
    int code = s_admin_call(common, &req, &reply);
    if (code != CLI_OK)
        return code;
    if (req.op_case == PUENTE__V1__ADMIN_REQUEST__OP_ORG_ENABLE && !common->json_output)
        printf("%s\n", reply->result ? reply->result : "ok");
    else
        s_print_orgs(reply, common->json_output, detail);
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

static int s_agreement_admin(const cli_common_t *common, const char *revoke_id)
{
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__AgreementListRequest list = PUENTE__V1__AGREEMENT_LIST_REQUEST__INIT;
    if (revoke_id) {
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_REVOKE;
        req.agreement_revoke = (char *) revoke_id;
    }
    else {
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_LIST;
        req.agreement_list = &list;
    }
    Puente__V1__AdminReply *reply = NULL;
    int code = s_admin_call(common, &req, &reply);
    if (code != CLI_OK)
        return code;
    if (common->json_output) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < reply->n_agreements; i++) {
            const Puente__V1__AgreementSpec *g = reply->agreements[i];
            json_array_append_new(
                a, json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "agreement_id",
                             g->agreement_id, "org_a", g->org_a, "org_b", g->org_b, "purposes",
                             s_strings_json(g->purposes, g->n_purposes), "message_types",
                             s_strings_json(g->message_types, g->n_message_types),
                             "valid_from_ms", (json_int_t) g->valid_from_ms, "valid_until_ms",
                             (json_int_t) g->valid_until_ms));
        }
        json_t *doc = json_pack("{s:s, s:o}", "result", reply->result ? reply->result : "",
                                "agreements", a);
        cli_print_json(doc, 0);
        json_decref(doc);
    }
    else if (revoke_id)
        printf("%s\n", reply->result ? reply->result : "ok");
    else {
        printf("%-20s %-14s %-14s %-22s %-22s %s\n", "AGREEMENT", "ORG_A", "ORG_B",
               "VALID_FROM", "VALID_UNTIL", "PURPOSES");
        int64_t now = pt_now_ms();
        for (size_t i = 0; i < reply->n_agreements; i++) {
            const Puente__V1__AgreementSpec *g = reply->agreements[i];
            char from[40], until[48], purposes[300] = "";
            s_time_or(g->valid_from_ms, "-", from, sizeof from);
            s_time_or(g->valid_until_ms, "(open)", until, sizeof until);
            if (g->valid_until_ms > 0 && g->valid_until_ms <= now)
                strncat(until, "*", sizeof until - strlen(until) - 1);
            size_t used = 0;
            for (size_t k = 0; k < g->n_purposes && used < sizeof purposes; k++)
                used += (size_t) snprintf(purposes + used, sizeof purposes - used, "%s%s",
                                          k ? "," : "", g->purposes[k]);
            printf("%-20s %-14s %-14s %-22s %-22s %s\n", g->agreement_id, g->org_a, g->org_b,
                   from, until, purposes);
        }
    }
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

/* Parses only the common options; the positional words are left in argv[optind..]. */
static int s_common_only(const char *cmd, const char *help, int argc, char **argv,
                         cli_common_t *common, int *done)
{
    static const struct option longopts[] = { CLI_COMMON_OPTIONS, { 0, 0, 0, 0 } };
    cli_common_init(common, PUENTE_DEFAULT_TIMEOUT_MS);
    *done = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        *done = 1;
        if (c == 'h') {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (c == ':')
            return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
    }
    return CLI_OK;
}

static const char *s_queue_help =
    "usage: puente queue list [--json-output]\n"
    "Lists each recipient's backlog (deliveries neither acknowledged nor expired):\n"
    "depth and the storage time of its oldest message. Acts as the operator.\n" CLI_COMMON_HELP;

int cmd_queue(int argc, char **argv)
{
    cli_common_t common;
    int done = 0;
    int code = s_common_only("queue", s_queue_help, argc, argv, &common, &done);
    if (code != CLI_OK || done)
        return code;
    if (argc - optind != 1 || strcmp(argv[optind], "list") != 0)
        return cli_usage_error("queue", "expected: queue list");
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__QueueListRequest list = PUENTE__V1__QUEUE_LIST_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST;
    req.queue_list = &list;
    Puente__V1__AdminReply *reply = NULL;
    if ((code = s_admin_call(&common, &req, &reply)) != CLI_OK)
        return code;
    int64_t now = pt_now_ms();
    if (common.json_output) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < reply->n_queues; i++) {
            const Puente__V1__QueueStat *q = reply->queues[i];
            json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I}", "recipient", q->recipient,
                                               "depth", (json_int_t) q->depth,
                                               "oldest_stored_at_ms",
                                               (json_int_t) q->oldest_stored_at_ms, "oldest_age_ms",
                                               (json_int_t) (now - q->oldest_stored_at_ms)));
        }
        json_t *doc = json_pack("{s:o}", "queues", a);
        cli_print_json(doc, 0);
        json_decref(doc);
    }
    else {
        printf("%-24s %8s  %-22s %s\n", "RECIPIENT", "DEPTH", "OLDEST", "AGE");
        for (size_t i = 0; i < reply->n_queues; i++) {
            const Puente__V1__QueueStat *q = reply->queues[i];
            char oldest[40];
            s_time_or(q->oldest_stored_at_ms, "-", oldest, sizeof oldest);
            printf("%-24s %8lld  %-22s %llds\n", q->recipient, (long long) q->depth, oldest,
                   (long long) ((now - q->oldest_stored_at_ms) / 1000));
        }
    }
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

static const char *s_status_help =
    "usage: puente status [--json-output]\n"
    "The broker's version, uptime, whether its database is reachable and its\n"
    "migrations current, queue totals and the connected organisations. Acts as the\n"
    "operator. Exit 3 when the broker (or its database) cannot be reached.\n" CLI_COMMON_HELP;

int cmd_status(int argc, char **argv)
{
    cli_common_t common;
    int done = 0;
    int code = s_common_only("status", s_status_help, argc, argv, &common, &done);
    if (code != CLI_OK || done)
        return code;
    if (argc - optind != 0)
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__StatusRequest sreq = PUENTE__V1__STATUS_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_STATUS;
    req.status = &sreq;
    Puente__V1__AdminReply *reply = NULL;
    if ((code = s_admin_call(&common, &req, &reply)) != CLI_OK)
        return code;
    const Puente__V1__BrokerStatus *st = reply->status;
    if (!st) {
        fprintf(stderr, "puente status: the broker sent no status (older broker?)\n");
        puente__v1__admin_reply__free_unpacked(reply, NULL);
        return CLI_UNREACHABLE;
    }
    if (common.json_output) {
        json_t *doc = json_pack(
            "{s:s, s:I, s:I, s:b, s:b, s:I, s:i, s:i, s:i, s:o}", "broker_version",
            st->broker_version, "started_at_ms", (json_int_t) st->started_at_ms, "uptime_ms",
            (json_int_t) st->uptime_ms, "database_reachable", (int) st->database_reachable,
            "migrations_current", (int) st->migrations_current, "queued_total",
            (json_int_t) st->queued_total, "recipients_with_backlog",
            (int) st->recipients_with_backlog, "organisations", (int) st->organisations,
            "agreements", (int) st->agreements, "connected_orgs",
            s_strings_json(st->connected_orgs, st->n_connected_orgs));
        cli_print_json(doc, 0);
        json_decref(doc);
    }
    else {
        char started[40];
        s_time_or(st->started_at_ms, "-", started, sizeof started);
        printf("broker version:  %s\n", st->broker_version);
        printf("started:         %s (up %llds)\n", started, (long long) (st->uptime_ms / 1000));
        printf("database:        %s\n", st->database_reachable ? "reachable" : "UNREACHABLE");
        printf("migrations:      %s\n", st->migrations_current ? "current" : "PENDING or unknown");
        printf("queued:          %lld message deliveries for %u recipients\n",
               (long long) st->queued_total, st->recipients_with_backlog);
        printf("organisations:   %u (%zu connected", st->organisations, st->n_connected_orgs);
        for (size_t i = 0; i < st->n_connected_orgs; i++)
            printf("%s%s", i ? ", " : ": ", st->connected_orgs[i]);
        printf(")\n");
        printf("agreements:      %u\n", st->agreements);
    }
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

/*  puente key rotate | revoke | list | install — an organisation's key history
    (issue 6). rotate, revoke and list act as the operator through the broker
    (AdminRequest key_rotate / key_revoke / key_list); install is local: it puts a
    new key set in place in an organisation's key directory and keeps the former
    one under <keys>/<ORG>/retired/ so that messages sealed to it still open. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define S_DEFAULT_OVERLAP "7d"
#define S_DAY_MS (86400LL * 1000)

static const char *s_help =
    "usage: puente key rotate --org ORG [--keys-from DIR] [--overlap DURATION]\n"
    "       puente key revoke --org ORG [--key-id HEX] [--at TIME] --reason TEXT\n"
    "       puente key list --org ORG [--json-output]\n"
    "       puente key install --org ORG --from DIR\n"
    "\n"
    "rotate (operator): registers the key set in DIR/ORG/*.pub (default: the --keys\n"
    "  directory; make one with `puente keygen --org ORG --keys DIR`) as ORG's current\n"
    "  keys. The previous set stays valid for DURATION more (default " S_DEFAULT_OVERLAP
    ", at most 366d,\n"
    "  0 = ends now): what it signed with a created time before then is still accepted\n"
    "  (an agency's outbox gets through) and its CURVE key still connects until then;\n"
    "  from now on the directory gives senders the new keys. A key set is never reused.\n"
    "revoke (operator): from TIME (default now; ISO 8601, may be in the past, e.g. the\n"
    "  time of a compromise) messages signed with the set are refused with\n"
    "  REJECT_UNKNOWN_KEY, and its CURVE key is no longer admitted; what it signed\n"
    "  before TIME and was stored stays verifiable (puente audit verify). --key-id: the\n"
    "  set's signing key id or its first 8+ hex digits (see key list); default the\n"
    "  current set, which leaves ORG unable to send or connect until a rotate.\n"
    "  --reason is kept with the key history: no personal data.\n"
    "list (operator): every key set of ORG: key id, state, validity, revocation.\n"
    "install (the organisation, on its own host): makes DIR/ORG/ its keys in --keys,\n"
    "  moving the current ones to KEYS/ORG/retired/<KEY-ID>/, where the SDK finds the\n"
    "  former sealing key to open messages still sealed to it. Run it after "
    "rotate.\n" CLI_COMMON_HELP;

enum { S_ROTATE, S_REVOKE, S_LIST, S_INSTALL };

/* "current", "replaced, valid until ...", "revoked" ... as of now. */
static const char *s_state(const Puente__V1__KeySetInfo *k, int64_t now)
{
    if (k->revoked_at_ms && now >= k->revoked_at_ms)
        return "revoked";
    if (k->revoked_at_ms)
        return k->valid_until_ms == 0 ? "current, revocation due" : "replaced, revocation due";
    if (k->valid_until_ms == 0)
        return "current";
    return now < k->valid_until_ms ? "replaced, in overlap" : "replaced";
}

static void s_time_or(int64_t ms, const char *none, char *out, size_t len)
{
    if (ms <= 0)
        snprintf(out, len, "%s", none);
    else
        puente_time_format(ms, out, len);
}

static json_t *s_hex_json(const ProtobufCBinaryData *b)
{
    char hex[2 * 32 + 1] = "";
    if (b->len == 32)
        pt_hex(b->data, 32, hex);
    return json_string(hex);
}

static void s_print_keys(const char *org, const Puente__V1__AdminReply *reply, int json_output)
{
    int64_t now = pt_now_ms();
    if (json_output) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < reply->n_keys; i++) {
            const Puente__V1__KeySetInfo *k = reply->keys[i];
            json_t *o = json_object();
            json_object_set_new(o, "sign_key_id", s_hex_json(&k->sign_key_id));
            json_object_set_new(o, "seal_key_id", s_hex_json(&k->seal_key_id));
            json_object_set_new(o, "state", json_string(s_state(k, now)));
            json_object_set_new(o, "valid_from_ms", json_integer(k->valid_from_ms));
            json_object_set_new(o, "valid_until_ms",
                                k->valid_until_ms ? json_integer(k->valid_until_ms) : json_null());
            json_object_set_new(o, "revoked_at_ms",
                                k->revoked_at_ms ? json_integer(k->revoked_at_ms) : json_null());
            json_object_set_new(o, "revoke_reason",
                                k->revoke_reason && k->revoke_reason[0]
                                    ? json_string(k->revoke_reason)
                                    : json_null());
            json_array_append_new(a, o);
        }
        json_t *doc = json_object();
        json_object_set_new(doc, "org", json_string(org));
        json_object_set_new(doc, "result", json_string(reply->result ? reply->result : ""));
        json_object_set_new(doc, "keys", a);
        cli_print_json(doc, 0);
        json_decref(doc);
        return;
    }
    printf("%-16s  %-24s %-24s %-24s %-24s %s\n", "KEY ID", "STATE", "VALID_FROM", "VALID_UNTIL",
           "REVOKED_AT", "REASON");
    for (size_t i = 0; i < reply->n_keys; i++) {
        const Puente__V1__KeySetInfo *k = reply->keys[i];
        char id[2 * 32 + 1] = "?", from[40], until[40], revoked[40];
        if (k->sign_key_id.len == 32)
            pt_hex(k->sign_key_id.data, 32, id);
        id[16] = '\0';
        s_time_or(k->valid_from_ms, "-", from, sizeof from);
        s_time_or(k->valid_until_ms, "(current)", until, sizeof until);
        s_time_or(k->revoked_at_ms, "-", revoked, sizeof revoked);
        printf("%-16s  %-24s %-24s %-24s %-24s %s\n", id, s_state(k, now), from, until, revoked,
               k->revoke_reason && k->revoke_reason[0] ? k->revoke_reason : "-");
    }
}

/* Parses 8 to 64 hex digits (an even number) into out. The byte count, or -1. */
static int s_key_id_parse(const char *text, uint8_t out[32])
{
    size_t len = strlen(text);
    if (len < 8 || len > 64 || len % 2)
        return -1;
    char lower[65];
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)text[i]))
            return -1;
        lower[i] = (char)tolower((unsigned char)text[i]);
    }
    lower[len] = '\0';
    return pt_unhex(lower, out, len / 2) == 0 ? (int)(len / 2) : -1;
}

/* Sends req as the operator; prints the result and the key sets. */
static int s_call(const cli_common_t *common, const char *org, const Puente__V1__AdminRequest *req,
                  int show_result)
{
    pt_client_t *client = NULL;
    int code = cli_connect(common, PUENTE_OPERATOR, 0, &client);
    if (code != CLI_OK)
        return code;
    Puente__V1__AdminReply *reply = NULL;
    pt_reject_info_t rej;
    memset(&rej, 0, sizeof rej);
    pt_client_result_t rc = pt_client_admin_reply(client, req, &reply, &rej);
    code = cli_fail(client, rc, &rej);
    pt_client_destroy(&client);
    if (code != CLI_OK)
        return code;
    if (show_result && !common->json_output)
        printf("%s\n\n", reply->result ? reply->result : "ok");
    s_print_keys(org, reply, common->json_output);
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

int cmd_key(int argc, char **argv)
{
    static const struct option longopts[] = {{"org", required_argument, 0, 'o'},
                                             {"keys-from", required_argument, 0, 'F'},
                                             {"from", required_argument, 0, 'f'},
                                             {"overlap", required_argument, 0, 'O'},
                                             {"key-id", required_argument, 0, 'k'},
                                             {"at", required_argument, 0, 'a'},
                                             {"reason", required_argument, 0, 'r'},
                                             CLI_COMMON_OPTIONS,
                                             {0, 0, 0, 0}};
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *org = NULL, *keys_from = NULL, *from = NULL, *overlap = S_DEFAULT_OVERLAP,
               *key_id = NULL, *at = NULL, *reason = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'o':
            org = optarg;
            break;
        case 'F':
            keys_from = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'O':
            overlap = optarg;
            break;
        case 'k':
            key_id = optarg;
            break;
        case 'a':
            at = optarg;
            break;
        case 'r':
            reason = optarg;
            break;
        case 'h':
            fputs(s_help, stdout);
            return CLI_OK;
        case ':':
            return cli_usage_error("key", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("key", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("key", "expected: key rotate | revoke | list | install");
    const char *verb = argv[optind];
    int op = strcmp(verb, "rotate") == 0    ? S_ROTATE
             : strcmp(verb, "revoke") == 0  ? S_REVOKE
             : strcmp(verb, "list") == 0    ? S_LIST
             : strcmp(verb, "install") == 0 ? S_INSTALL
                                            : -1;
    if (op < 0)
        return cli_usage_error("key", "unknown action '%s' (rotate, revoke, list, install)", verb);
    if (!org)
        return cli_usage_error("key", "--org is required");
    if (!pt_org_id_valid(org) || strcmp(org, "broker") == 0 || strcmp(org, "operator") == 0)
        return cli_usage_error("key", "--org: '%s' is not an organisation id (e.g. MX-DIF)", org);
    if ((keys_from && op != S_ROTATE) || (from && op != S_INSTALL) ||
        ((key_id || at || reason) && op != S_REVOKE))
        return cli_usage_error("key", "an option does not apply to key %s (see --help)", verb);

    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    switch (op) {
    case S_LIST: {
        Puente__V1__KeyListRequest list = PUENTE__V1__KEY_LIST_REQUEST__INIT;
        list.org_id = (char *)org;
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_KEY_LIST;
        req.key_list = &list;
        return s_call(&common, org, &req, 0);
    }
    case S_ROTATE: {
        int64_t overlap_ms = 0;
        if (puente_duration_parse(overlap, &overlap_ms) != 0 || overlap_ms > 366 * S_DAY_MS)
            return cli_usage_error("key",
                                   "--overlap: expected a duration up to 366d (e.g. 7d, "
                                   "12h, 0), got '%s'",
                                   overlap);
        const char *dir = keys_from ? keys_from : common.keys;
        char err[300] = "";
        pt_keyset_t *ks = pt_keyset_load(dir, org, 0, err, sizeof err);
        if (!ks) {
            fprintf(stderr,
                    "puente key rotate: cannot read the new public keys of %s in %s/%s/: "
                    "%s\n",
                    org, dir, org, err);
            return CLI_USAGE;
        }
        uint8_t sign_pub[PT_ED25519_PUBLIC_BYTES], seal_pub[PT_X25519_PUBLIC_BYTES],
            curve_pub[PT_CURVE_KEY_BYTES];
        pt_sign_key_public(pt_keyset_sign(ks), sign_pub);
        pt_seal_key_public(pt_keyset_seal(ks), seal_pub);
        memcpy(curve_pub, pt_keyset_curve_public(ks), sizeof curve_pub);
        pt_keyset_destroy(&ks);
        Puente__V1__KeyRotate rotate = PUENTE__V1__KEY_ROTATE__INIT;
        rotate.org_id = (char *)org;
        rotate.sign_public = (ProtobufCBinaryData){sizeof sign_pub, sign_pub};
        rotate.seal_public = (ProtobufCBinaryData){sizeof seal_pub, seal_pub};
        rotate.curve_public = (ProtobufCBinaryData){sizeof curve_pub, curve_pub};
        rotate.overlap_ms = overlap_ms;
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_KEY_ROTATE;
        req.key_rotate = &rotate;
        int code = s_call(&common, org, &req, 1);
        if (code == CLI_OK && !common.json_output && keys_from)
            printf("\nNext, on %s's host: puente key install --org %s --from %s --keys KEYS\n"
                   "(keeps the former keys in KEYS/%s/retired/ to open messages sealed to them).\n",
                   org, org, keys_from, org);
        return code;
    }
    case S_REVOKE: {
        if (!reason || !reason[0] || strlen(reason) > 200)
            return cli_usage_error("key", "--reason is required (1-200 characters, no personal "
                                          "data)");
        uint8_t id[32];
        int id_len = 0;
        if (key_id && (id_len = s_key_id_parse(key_id, id)) < 0)
            return cli_usage_error("key", "--key-id: expected 8 to 64 hex digits, got '%s'",
                                   key_id);
        int64_t at_ms = 0;
        if (at && strcmp(at, "now") != 0 && (puente_time_parse(at, &at_ms) != 0 || at_ms <= 0))
            return cli_usage_error("key",
                                   "--at: expected an ISO 8601 time such as "
                                   "2026-03-01T12:00:00Z, got '%s'",
                                   at);
        Puente__V1__KeyRevoke revoke = PUENTE__V1__KEY_REVOKE__INIT;
        revoke.org_id = (char *)org;
        revoke.sign_key_id = (ProtobufCBinaryData){(size_t)id_len, id};
        revoke.at_ms = at_ms;
        revoke.reason = (char *)reason;
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_KEY_REVOKE;
        req.key_revoke = &revoke;
        return s_call(&common, org, &req, 1);
    }
    default: {
        if (!from)
            return cli_usage_error("key", "install needs --from DIR (the new key set's directory)");
        char err[600] = "", retired[17] = "";
        if (pt_keyset_install(common.keys, org, from, retired, err, sizeof err) != 0) {
            fprintf(stderr, "puente key install: %s\n", err);
            return CLI_USAGE;
        }
        pt_keyset_t *ks = pt_keyset_load(common.keys, org, 1, err, sizeof err);
        uint8_t sign_id[PT_KEY_ID_BYTES];
        char hex[2 * PT_KEY_ID_BYTES + 1] = "?";
        if (ks) {
            pt_sign_key_id(pt_keyset_sign(ks), sign_id);
            pt_hex(sign_id, sizeof sign_id, hex);
        }
        pt_keyset_destroy(&ks);
        if (common.json_output) {
            json_t *doc = json_object();
            json_object_set_new(doc, "org", json_string(org));
            json_object_set_new(doc, "sign_key_id", json_string(hex));
            json_object_set_new(doc, "retired", retired[0] ? json_string(retired) : json_null());
            cli_print_json(doc, 0);
            json_decref(doc);
        } else {
            printf("installed the key set %.16s as %s/%s/\n", hex, common.keys, org);
            if (retired[0])
                printf("the former set is kept in %s/%s/retired/%s/ (its sealing key opens "
                       "messages still sealed to it)\n",
                       common.keys, org, retired);
            printf("restart %s's adapters (bridge, SDK clients) so that they use the new keys\n",
                   org);
        }
        return CLI_OK;
    }
    }
}

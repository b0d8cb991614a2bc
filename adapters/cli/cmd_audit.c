/*  puente audit / auditor / retention — auditor queries and proofs over the broker
    socket, offline verification (cmd_audit_verify.c reads the database), bundles,
    auditor registration and the retention run (operator). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_progress.h"
#include "pt_audit.h"
#include "pt_keys.h"
#include "pt_merkle.h"

static const char *s_audit_help =
    "usage: puente audit COMMAND [options]\n"
    "Queries (over the broker socket; --as auditor:ID or operator, default operator;\n"
    "an auditor's query is signed with KEYS/auditors/ID/sign.key; every query is\n"
    "logged before it is answered (not logged = exit 3, nothing answered); out of\n"
    "scope = exit 2, REJECT_NOT_PERMITTED):\n"
    "  trail --case TOKEN                          the case's events\n"
    "  activity --org ORG [--from T] [--until T]   events an organisation took part in\n"
    "  items [--type KIND] [--state S] [--older-than 30d]   lifecycles not moved since\n"
    "  corridors [--from T] [--until T]            counts, median time to accept, share\n"
    "                                              rejected by reason code\n"
    "  (trail, activity, items: at most --limit N rows, default and most 10000; a cut-off\n"
    "  answer says so and names the cursor for the next page: --after CURSOR)\n"
    "  checkpoint [--size N]                       the latest (or size N) signed checkpoint\n"
    "  proof --leaf I [--size N] [--old-size M]    inclusion / consistency proof, checked\n"
    "Offline (no broker; export asks it only for a checkpoint covering the case):\n"
    "  verify --db CONNINFO [--broker-key FILE] [--trusted-checkpoint FILE]\n"
    "                                              recompute chains, the Merkle log, the\n"
    "                                              checkpoint chain, checkpoint and message\n"
    "                                              signatures (key default:\n"
    "                                              KEYS/broker/sign.pub); the log must extend\n"
    "                                              the checkpoint you kept (the saved output\n"
    "                                              of audit checkpoint --json)\n"
    "  verify --bundle FILE [--broker-key FILE]    check an exported bundle (needs the\n"
    "                                              broker key: the bundle's own proves nothing)\n"
    "  export --case TOKEN --db CONNINFO [--format bundle|fhir] [--out FILE] [--wait D]\n"
    "                                              asks the broker (socket) for a checkpoint\n"
    "                                              covering the case when the latest does not\n"
    "                                              (waits up to --wait, default 15s: with several\n"
    "                                              brokers only the signer signs, at its cadence)\n"
    "Times are ISO 8601 (2025-07-15T09:00:00Z); durations like 30d, 12h, 10s.\n"
    "--json (or --json-output) prints JSON. Exit 5: verification failed.\n"
    "verify --db shows a progress line on stderr when it is a terminal (not with --json;\n"
    "PUENTE_PROGRESS=0 turns it off).\n" CLI_COMMON_HELP;

typedef struct {
    cli_common_t common;
    const char *as, *case_token, *org, *type, *state, *db, *bundle, *broker_key, *format, *out;
    const char *trusted, *after;
    int64_t from_ms, until_ms, older_than_ms, wait_ms;
    uint64_t size, old_size, leaf, limit;
    int has_leaf;
} s_opts_t;

static int s_parse(int argc, char **argv, const char *cmd, s_opts_t *o)
{
    static const struct option longopts[] = {
        {"as", required_argument, 0, 'a'},        {"case", required_argument, 0, 'c'},
        {"org", required_argument, 0, 'o'},       {"type", required_argument, 0, 't'},
        {"state", required_argument, 0, 's'},     {"from", required_argument, 0, 'f'},
        {"until", required_argument, 0, 'u'},     {"older-than", required_argument, 0, 'O'},
        {"db", required_argument, 0, 'd'},        {"bundle", required_argument, 0, 'b'},
        {"broker-key", required_argument, 0, 'k'}, {"format", required_argument, 0, 'F'},
        {"out", required_argument, 0, 'w'},       {"size", required_argument, 0, 'S'},
        {"old-size", required_argument, 0, 'M'},  {"leaf", required_argument, 0, 'l'},
        {"json", no_argument, 0, 'j'},            {"trusted-checkpoint", required_argument, 0, 'C'},
        {"wait", required_argument, 0, 'W'},      {"limit", required_argument, 0, 'L'},
        {"after", required_argument, 0, 'A'},     CLI_COMMON_OPTIONS,
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &o->common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        char *end = NULL;
        switch (c) {
        case 'a': o->as = optarg; break;
        case 'c': o->case_token = optarg; break;
        case 'o': o->org = optarg; break;
        case 't': o->type = optarg; break;
        case 's': o->state = optarg; break;
        case 'd': o->db = optarg; break;
        case 'b': o->bundle = optarg; break;
        case 'k': o->broker_key = optarg; break;
        case 'F': o->format = optarg; break;
        case 'w': o->out = optarg; break;
        case 'C': o->trusted = optarg; break;
        case 'W':
            if (puente_duration_parse(optarg, &o->wait_ms) != 0 || o->wait_ms < 0 ||
                o->wait_ms > 86400000)
                return cli_usage_error(cmd, "--wait: '%s' is not a duration of at most 1d",
                                       optarg);
            break;
        case 'A': o->after = optarg; break;
        case 'j': o->common.json_output = 1; break;
        case 'f':
        case 'u':
            if (puente_time_parse(optarg, c == 'f' ? &o->from_ms : &o->until_ms) != 0)
                return cli_usage_error(cmd, "--%s: '%s' is not an ISO 8601 time",
                                       c == 'f' ? "from" : "until", optarg);
            break;
        case 'O': {
            /* "30d" is not a puente_duration_parse unit: days are handled here. */
            size_t n = strlen(optarg);
            if (n > 1 && optarg[n - 1] == 'd') {
                long long days = strtoll(optarg, &end, 10);
                if (end != optarg + n - 1 || days < 0 || days > INT64_MAX / 86400000LL)
                    return cli_usage_error(cmd, "--older-than: '%s' is not a duration", optarg);
                o->older_than_ms = days * 86400000LL;
            } else if (puente_duration_parse(optarg, &o->older_than_ms) != 0) {
                return cli_usage_error(cmd, "--older-than: '%s' is not a duration", optarg);
            }
            break;
        }
        case 'S':
        case 'M':
        case 'L':
        case 'l': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (!end || *end || !*optarg || (c == 'L' && (v == 0 || v > 10000)))
                return cli_usage_error(cmd, "'%s' is not a number%s", optarg,
                                       c == 'L' ? " from 1 to 10000" : "");
            if (c == 'L')
                o->limit = v;
            else if (c == 'S')
                o->size = v;
            else if (c == 'M')
                o->old_size = v;
            else {
                o->leaf = v;
                o->has_leaf = 1;
            }
            break;
        }
        case 'h': fputs(s_audit_help, stdout); return -2;
        case ':': return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return CLI_OK;
}

static int s_connect_as(s_opts_t *o, const char *cmd, pt_client_t **client)
{
    const char *as = o->as ? o->as : PUENTE_OPERATOR;
    const char *id = strncmp(as, PUENTE_AUDITOR_PREFIX, strlen(PUENTE_AUDITOR_PREFIX)) == 0
                         ? as + strlen(PUENTE_AUDITOR_PREFIX)
                         : as;
    if (!pt_org_id_valid(id))
        return cli_usage_error(cmd, "--as: '%s' is not auditor:ID, operator or an organisation", as);
    return cli_connect(&o->common, as, 0, client);
}

/* --- queries ------------------------------------------------------------------------------ */

/* rejected_by_reason cells come as "reason:count:share,..." (share of the
   corridor's opened lifecycles, 4 decimals). JSON: [{reason, count, share}]. */
static json_t *s_reasons_json(const char *cell)
{
    json_t *list = json_array();
    char *copy = strdup(cell);
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *share = strrchr(tok, ':');
        if (!share)
            continue;
        *share++ = '\0';
        char *count = strrchr(tok, ':');
        if (!count)
            continue;
        *count++ = '\0';
        json_array_append_new(list, json_pack("{s:s, s:I, s:f}", "reason", tok, "count",
                                              (json_int_t)strtoll(count, NULL, 10), "share",
                                              strtod(share, NULL)));
    }
    free(copy);
    return list;
}

/* Table form: "reason 2 (50.0%), other 1 (25.0%)". */
static void s_reasons_text(const char *cell, char *out, size_t cap)
{
    char copy[512];
    out[0] = '\0';
    snprintf(copy, sizeof copy, "%s", cell);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *share = strrchr(tok, ':');
        char *count = share ? (*share++ = '\0', strrchr(tok, ':')) : NULL;
        if (!count)
            continue;
        *count++ = '\0';
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s %s (%.1f%%)", used ? ", " : "", tok, count,
                 strtod(share, NULL) * 100.0);
    }
}

static void s_print_table(const Puente__V1__AuditReply *r, int json)
{
    int reasons_col = -1;
    for (size_t c = 0; c < r->n_columns; c++)
        if (strcmp(r->columns[c], "rejected_by_reason") == 0)
            reasons_col = (int)c;
    if (json) {
        json_t *rows = json_array();
        for (size_t i = 0; i < r->n_rows; i++) {
            json_t *o = json_object();
            for (size_t c = 0; c < r->n_columns && c < r->rows[i]->n_cells; c++)
                json_object_set_new(o, r->columns[c],
                                    (int)c == reasons_col
                                        ? s_reasons_json(r->rows[i]->cells[c])
                                        : json_string(r->rows[i]->cells[c]));
            json_array_append_new(rows, o);
        }
        json_t *doc = json_object();
        json_object_set_new(doc, "rows", rows);
        json_object_set_new(doc, "truncated", json_boolean(r->truncated));
        if (r->truncated)
            json_object_set_new(doc, "next_after", json_string(r->next_after));
        cli_print_json(doc, 0);
        json_decref(doc);
        return;
    }
    size_t width[16] = {0};
    size_t cols = r->n_columns < 16 ? r->n_columns : 16;
    char **text = calloc(r->n_rows ? r->n_rows : 1, sizeof *text);
    for (size_t i = 0; text && reasons_col >= 0 && i < r->n_rows; i++) {
        if ((size_t)reasons_col < r->rows[i]->n_cells && (text[i] = malloc(512)))
            s_reasons_text(r->rows[i]->cells[reasons_col], text[i], 512);
    }
#define S_CELL(i, c)                                                                      \
    ((int)(c) == reasons_col && text && text[i] ? text[i]                                 \
     : (c) < r->rows[i]->n_cells               ? r->rows[i]->cells[c]                     \
                                               : "")
    for (size_t c = 0; c < cols; c++)
        width[c] = strlen(r->columns[c]);
    for (size_t i = 0; i < r->n_rows; i++)
        for (size_t c = 0; c < cols; c++) {
            size_t w = strlen(S_CELL(i, c));
            if (w > width[c])
                width[c] = w > 64 ? 64 : w;
        }
    for (size_t c = 0; c < cols; c++)
        printf("%-*s%s", (int)width[c], r->columns[c], c + 1 < cols ? "  " : "\n");
    for (size_t i = 0; i < r->n_rows; i++)
        for (size_t c = 0; c < cols; c++)
            printf("%-*.*s%s", (int)width[c], 64, S_CELL(i, c), c + 1 < cols ? "  " : "\n");
#undef S_CELL
    for (size_t i = 0; text && i < r->n_rows; i++)
        free(text[i]);
    free(text);
    if (r->truncated)
        printf("(truncated after %zu rows; next page: --after %s)\n", r->n_rows, r->next_after);
    if (r->n_rows == 0)
        fprintf(stderr, "no rows\n");
}

static int s_query(s_opts_t *o, const char *kind)
{
    Puente__V1__AuditQuery q = PUENTE__V1__AUDIT_QUERY__INIT;
    q.kind = (char *)kind;
    q.case_token = (char *)(o->case_token ? o->case_token : "");
    q.org_id = (char *)(o->org ? o->org : "");
    q.lifecycle_kind = (char *)(o->type ? o->type : "");
    q.state = (char *)(o->state ? o->state : "");
    q.from_ms = o->from_ms;
    q.until_ms = o->until_ms;
    q.older_than_ms = o->older_than_ms;
    q.limit = (uint32_t)o->limit;
    q.after = (char *)(o->after ? o->after : "");
    if (strcmp(kind, "trail") == 0 && !q.case_token[0])
        return cli_usage_error("audit trail", "--case is required");
    if (strcmp(kind, "activity") == 0 && !q.org_id[0])
        return cli_usage_error("audit activity", "--org is required");
    pt_client_t *client = NULL;
    int code = s_connect_as(o, "audit", &client);
    if (code != CLI_OK)
        return code;
    Puente__V1__AuditReply *reply = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_audit(client, &q, &reply, &rej);
    code = cli_fail(client, rc, &rej);
    if (rc == PT_CLIENT_OK)
        s_print_table(reply, o->common.json_output);
    if (reply)
        puente__v1__audit_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&client);
    return code;
}

/* --- checkpoint and proofs ---------------------------------------------------------------- */

static pt_sign_key_t *s_broker_key(const s_opts_t *o)
{
    char path[4096];
    if (o->broker_key)
        snprintf(path, sizeof path, "%s", o->broker_key);
    else
        snprintf(path, sizeof path, "%s/broker/sign.pub", o->common.keys);
    pt_sign_key_t *k = pt_sign_key_load(path);
    if (!k)
        fprintf(stderr, "puente audit: cannot read the broker's public key %s\n", path);
    return k;
}

/* The checkpoint as signed; -1 if a field has the wrong length. */
static int s_checkpoint_fields(const Puente__V1__Checkpoint *cp, pt_audit_checkpoint_t *out)
{
    memset(out, 0, sizeof *out);
    if (!cp || cp->root.len != 32 || (cp->seq > 0 && cp->prev_hash.len != 32))
        return -1;
    out->seq = cp->seq;
    out->tree_size = cp->tree_size;
    out->at_ms = cp->at_ms;
    memcpy(out->root, cp->root.data, 32);
    if (cp->seq > 0)
        memcpy(out->prev_hash, cp->prev_hash.data, 32);
    return 0;
}

static int s_checkpoint_ok(const pt_sign_key_t *broker, const Puente__V1__Checkpoint *cp)
{
    pt_audit_checkpoint_t fields;
    return s_checkpoint_fields(cp, &fields) == 0 &&
           pt_audit_checkpoint2_verify(broker, &fields, cp->signature.data, cp->signature.len) == 0;
}

static void s_hex_print(const char *label, ProtobufCBinaryData b)
{
    char hex[129] = "";
    if (b.len <= 64)
        pt_hex(b.data, b.len, hex);
    printf("%s%s\n", label, hex);
}

static int s_checkpoint(s_opts_t *o)
{
    pt_sign_key_t *broker = s_broker_key(o);
    if (!broker)
        return CLI_USAGE;
    pt_client_t *client = NULL;
    int code = s_connect_as(o, "audit", &client);
    if (code != CLI_OK) {
        pt_sign_key_destroy(&broker);
        return code;
    }
    Puente__V1__CheckpointReply *reply = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_checkpoint(client, o->size, &reply, &rej);
    code = cli_fail(client, rc, &rej);
    if (rc == PT_CLIENT_OK) {
        const Puente__V1__Checkpoint *cp = reply->checkpoint;
        int ok = s_checkpoint_ok(broker, cp);
        if (o->common.json_output) {
            /* Everything signed, so that the saved output is a trusted checkpoint
               for `audit verify --trusted-checkpoint`. */
            char root[65] = "", prev[65] = "", sig[129] = "";
            if (cp && cp->root.len == 32)
                pt_hex(cp->root.data, 32, root);
            if (cp && cp->prev_hash.len == 32)
                pt_hex(cp->prev_hash.data, 32, prev);
            if (cp && cp->signature.len == 64)
                pt_hex(cp->signature.data, 64, sig);
            json_t *doc = json_object();
            json_object_set_new(doc, "seq", json_integer(cp ? (json_int_t)cp->seq : 0));
            json_object_set_new(doc, "tree_size", json_integer(cp ? (json_int_t)cp->tree_size : 0));
            json_object_set_new(doc, "root", json_string(root));
            json_object_set_new(doc, "at_ms", json_integer(cp ? cp->at_ms : 0));
            json_object_set_new(doc, "prev_hash", json_string(prev));
            json_object_set_new(doc, "signature", json_string(sig));
            json_object_set_new(doc, "signature_valid", json_boolean(ok));
            cli_print_json(doc, 0);
            json_decref(doc);
        } else if (cp) {
            char at[40];
            puente_time_format(cp->at_ms, at, sizeof at);
            printf("checkpoint %llu: tree size %llu at %s\n", (unsigned long long)cp->seq,
                   (unsigned long long)cp->tree_size, at);
            s_hex_print("root      ", cp->root);
            printf("signature %s\n", ok ? "valid (broker key)" : "INVALID");
        }
        if (!ok)
            code = CLI_TAMPERED;
    }
    if (reply)
        puente__v1__checkpoint_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&client);
    pt_sign_key_destroy(&broker);
    return code;
}

static int s_proof(s_opts_t *o)
{
    if (!o->has_leaf && !o->old_size)
        return cli_usage_error("audit proof", "--leaf or --old-size is required");
    pt_sign_key_t *broker = s_broker_key(o);
    if (!broker)
        return CLI_USAGE;
    pt_client_t *client = NULL;
    int code = s_connect_as(o, "audit", &client);
    if (code != CLI_OK) {
        pt_sign_key_destroy(&broker);
        return code;
    }
    Puente__V1__ProofRequest req = PUENTE__V1__PROOF_REQUEST__INIT;
    req.leaf_index = o->leaf;
    req.inclusion = o->has_leaf;
    req.tree_size = o->size;
    req.old_size = o->old_size;
    Puente__V1__ProofReply *reply = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_proof(client, &req, &reply, &rej);
    code = cli_fail(client, rc, &rej);
    if (rc == PT_CLIENT_OK) {
        const Puente__V1__Checkpoint *cp = reply->checkpoint;
        int cp_ok = s_checkpoint_ok(broker, cp);
        int inc_ok = -1, con_ok = -1;
        char event_hex[65] = "";
        pt_merkle_hash_t path[PT_MERKLE_MAX_PROOF];
        if (cp_ok && o->has_leaf) {
            int shape = reply->leaf_hash.len == 32 && reply->n_inclusion <= PT_MERKLE_MAX_PROOF;
            for (size_t i = 0; shape && i < reply->n_inclusion; i++) {
                shape = reply->inclusion[i].len == 32;
                if (shape)
                    memcpy(path[i], reply->inclusion[i].data, 32);
            }
            inc_ok = shape && pt_merkle_inclusion_verify(reply->leaf_index, cp->tree_size,
                                                         reply->leaf_hash.data, path,
                                                         reply->n_inclusion, cp->root.data) == 0;
            /* The leaf is the event the broker names: compare event_hash with a receipt. */
            if (inc_ok && reply->event_hash.len == 32) {
                pt_merkle_hash_t expect;
                pt_audit_leaf_hash(reply->event_hash.data, reply->event_id, expect);
                inc_ok = memcmp(expect, reply->leaf_hash.data, 32) == 0;
                pt_hex(reply->event_hash.data, 32, event_hex);
            }
        }
        if (cp_ok && o->old_size) {
            const Puente__V1__Checkpoint *old = reply->old_checkpoint;
            int shape = s_checkpoint_ok(broker, old) && reply->n_consistency <= PT_MERKLE_MAX_PROOF;
            for (size_t i = 0; shape && i < reply->n_consistency; i++) {
                shape = reply->consistency[i].len == 32;
                if (shape)
                    memcpy(path[i], reply->consistency[i].data, 32);
            }
            con_ok = shape && pt_merkle_consistency_verify(old->tree_size, cp->tree_size,
                                                           old->root.data, cp->root.data, path,
                                                           reply->n_consistency) == 0;
        }
        if (o->common.json_output) {
            json_t *doc = json_object();
            json_object_set_new(doc, "tree_size", json_integer(cp ? (json_int_t)cp->tree_size : 0));
            json_object_set_new(doc, "checkpoint_signature_valid", json_boolean(cp_ok));
            if (inc_ok >= 0) {
                json_object_set_new(doc, "inclusion_valid", json_boolean(inc_ok));
                json_object_set_new(doc, "event_hash", json_string(event_hex));
            }
            if (con_ok >= 0)
                json_object_set_new(doc, "consistency_valid", json_boolean(con_ok));
            cli_print_json(doc, 0);
            json_decref(doc);
        } else {
            printf("checkpoint %llu: signature %s\n", cp ? (unsigned long long)cp->tree_size : 0ULL,
                   cp_ok ? "valid" : "INVALID");
            if (inc_ok >= 0)
                printf("leaf %llu: inclusion %s (%zu hashes); event hash %s\n",
                       (unsigned long long)o->leaf, inc_ok ? "proven" : "NOT PROVEN",
                       reply->n_inclusion, event_hex[0] ? event_hex : "?");
            if (con_ok >= 0)
                printf("checkpoint %llu -> %llu: consistency %s (%zu hashes)\n",
                       (unsigned long long)o->old_size,
                       cp ? (unsigned long long)cp->tree_size : 0ULL,
                       con_ok ? "proven" : "NOT PROVEN", reply->n_consistency);
        }
        if (!cp_ok || inc_ok == 0 || con_ok == 0)
            code = CLI_TAMPERED;
    }
    if (reply)
        puente__v1__proof_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&client);
    pt_sign_key_destroy(&broker);
    return code;
}

/* --- verify, export -------------------------------------------------------------------------- */

static double s_seconds(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* Reads a trusted checkpoint: the saved output of `puente audit checkpoint --json`
   (seq, tree_size, root, at_ms, prev_hash, signature). 0 or -1 (printed). */
static int s_trusted_load(const char *path, pt_audit_checkpoint_t *cp, uint8_t sig[64])
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    json_t *doc = NULL;
    int rc = -1;
    memset(cp, 0, sizeof *cp);
    if (cli_read_file(path, 65536, &text, &len) != 0)
        goto done;
    doc = json_loadb(text, len, 0, &jerr);
    const char *root = json_string_value(json_object_get(doc, "root"));
    const char *prev = json_string_value(json_object_get(doc, "prev_hash"));
    const char *signature = json_string_value(json_object_get(doc, "signature"));
    json_t *seq = json_object_get(doc, "seq"), *size = json_object_get(doc, "tree_size"),
           *at = json_object_get(doc, "at_ms");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1 || !json_is_integer(size) ||
        json_integer_value(size) < 0 || !json_is_integer(at) || !root || !prev || !signature ||
        strlen(root) != 64 || strlen(prev) != 64 || strlen(signature) != 128 ||
        pt_unhex(root, cp->root, 32) != 0 || pt_unhex(prev, cp->prev_hash, 32) != 0 ||
        pt_unhex(signature, sig, 64) != 0)
        goto done;
    cp->seq = (uint64_t)json_integer_value(seq);
    cp->tree_size = (uint64_t)json_integer_value(size);
    cp->at_ms = (int64_t)json_integer_value(at);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "puente audit verify: %s is not a saved `puente audit checkpoint --json` "
                        "(seq, tree_size, root, at_ms, prev_hash, signature)\n", path);
    json_decref(doc);
    free(text);
    return rc;
}

static int s_verify(s_opts_t *o)
{
    if (!o->db == !o->bundle)
        return cli_usage_error("audit verify", "give either --db CONNINFO or --bundle FILE");
    if (o->trusted && !o->db)
        return cli_usage_error("audit verify", "--trusted-checkpoint goes with --db");
    /* Checkpoints are checked against the broker's key: --broker-key, else
       KEYS/broker/sign.pub when present. Without either, --db checks them against
       the key recorded in the database itself (said on stderr); a bundle or a
       trusted checkpoint needs the anchor. */
    pt_sign_key_t *broker = NULL;
    if (o->broker_key && !(broker = s_broker_key(o)))
        return CLI_USAGE;
    char path[4096];
    if (!broker) {
        snprintf(path, sizeof path, "%s/broker/sign.pub", o->common.keys);
        broker = pt_sign_key_load(path);
    }
    if (!broker && (o->bundle || o->trusted)) {
        fprintf(stderr, "puente audit verify: unanchored: pass --broker-key FILE (the broker's "
                        "sign.pub, obtained from the operator out of band; %s is absent). A %s "
                        "cannot vouch for itself.\n",
                path, o->bundle ? "bundle's own key" : "trusted checkpoint");
        return CLI_USAGE;
    }
    if (!broker)
        fprintf(stderr, "puente audit verify: warning: no broker key (--broker-key FILE or %s): "
                        "checkpoints are checked against the signer the database records, so a "
                        "database rewritten and re-signed with another key would pass\n",
                path);
    pt_audit_verifier_t *v = pt_audit_verifier_new(broker);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int code = CLI_OK;
    if (!v) {
        code = CLI_USAGE;
    } else if (o->db) {
        pt_audit_checkpoint_t trusted;
        uint8_t sig[64];
        if (o->trusted && (s_trusted_load(o->trusted, &trusted, sig) != 0 ||
                           pt_audit_verifier_trust(v, &trusted, sig, 64) != 0))
            code = CLI_USAGE;
        else if (cli_audit_verify_db(o->db, v,
                                     cli_progress_wanted(stderr, o->common.json_output)) != 0)
            code = CLI_UNREACHABLE;
    } else {
        char *text = NULL;
        size_t len = 0;
        if (cli_read_file(o->bundle, PT_AUDIT_BUNDLE_MAX_BYTES, &text, &len) != 0)
            code = CLI_USAGE;
        else if (pt_audit_bundle_verify(v, text, len) != 0)
            code = CLI_USAGE;
        free(text);
    }
    if (code == CLI_OK)
        code = cli_audit_report(v, o->common.json_output, s_seconds(&start));
    pt_audit_verifier_destroy(&v);
    pt_sign_key_destroy(&broker);
    return code;
}

/* FHIR R4 AuditEvent (one per case event) in a collection Bundle. The action and
   outcome codes follow the AuditEvent value sets; the entity is the case token,
   never a person. */
static json_t *s_fhir(json_t *bundle)
{
    json_t *entries = json_array();
    const char *token = json_string_value(json_object_get(bundle, "case_token"));
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(bundle, "events"), i, ev) {
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        char at[40], id[48];
        puente_time_format((int64_t)json_integer_value(json_object_get(ev, "at_ms")), at, sizeof at);
        snprintf(id, sizeof id, "puente-event-%lld",
                 (long long)json_integer_value(json_object_get(ev, "event_id")));
        const char *action = kind && (strcmp(kind, "submitted") == 0 || strcmp(kind, "stored") == 0)
                                 ? "C"
                                 : kind && strncmp(kind, "audit_query", 11) == 0 ? "R" : "U";
        json_t *r = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}], s:s, s:s, s:s, s:s, "
            "s:[{s:{s:{s:s, s:s}}, s:b}], s:{s:{s:{s:s, s:s}}, s:[{s:s, s:s}]}, "
            "s:[{s:{s:{s:s, s:s}}, s:{s:s, s:s}, s:[{s:s, s:s}]}]}",
            "resourceType", "AuditEvent", "id", id,
            "type", "system", "http://terminology.hl7.org/CodeSystem/audit-event-type", "code",
            "rest", "display", "RESTful Operation",
            "subtype", "system", "urn:puente:event-kind", "code", kind ? kind : "", "display",
            kind ? kind : "",
            "action", action, "recorded", at, "outcome", "0", "outcomeDesc",
            json_string_value(json_object_get(ev, "message_type")),
            "agent", "who", "identifier", "system", "urn:puente:org",
            "value", json_string_value(json_object_get(ev, "actor")), "requestor", 1,
            "source", "observer", "identifier", "system", "urn:puente:broker", "value",
            "puente-broker", "type", "system",
            "http://terminology.hl7.org/CodeSystem/security-source-type", "code", "4",
            "entity", "what", "identifier", "system", "urn:puente:case-token", "value",
            token ? token : "", "type", "system",
            "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code", "2",
            "detail", "type", "event_hash", "valueString",
            json_string_value(json_object_get(ev, "hash")));
        if (!r)
            continue;
        json_array_append_new(entries, json_pack("{s:o}", "resource", r));
    }
    return json_pack("{s:s, s:s, s:o}", "resourceType", "Bundle", "type", "collection", "entry",
                     entries);
}

/* Asks the broker for a checkpoint of at least need leaves, signed now if none
   exists yet, until one comes or wait_ms passed. CLI_OK or the exit code (printed). */
static int s_export_covering(s_opts_t *o, uint64_t need)
{
    pt_client_t *client = NULL;
    int code = s_connect_as(o, "audit export", &client);
    if (code != CLI_OK) {
        fprintf(stderr, "puente audit export: no checkpoint covers this case's last event (leaf "
                        "%llu) yet, and the broker could not be asked to sign one\n",
                (unsigned long long)(need - 1));
        return code;
    }
    int64_t deadline = pt_now_ms() + (o->wait_ms > 0 ? o->wait_ms : 15000);
    for (;;) {
        Puente__V1__CheckpointReply *reply = NULL;
        pt_reject_info_t rej;
        pt_client_result_t rc = pt_client_checkpoint_covering(client, need, 1, &reply, &rej);
        if (reply)
            puente__v1__checkpoint_reply__free_unpacked(reply, NULL);
        if (rc == PT_CLIENT_OK)
            break;
        if (!(rc == PT_CLIENT_REJECTED && rej.code == PUENTE__V1__REJECT_CODE__REJECT_NOT_FOUND) ||
            pt_now_ms() >= deadline) {
            code = cli_fail(client, rc, &rej);
            fprintf(stderr, "puente audit export: no checkpoint covering leaf %llu of this case "
                            "could be obtained from the broker%s\n",
                    (unsigned long long)(need - 1),
                    pt_now_ms() >= deadline ? " in time (--wait)" : "");
            if (code == CLI_OK)
                code = CLI_UNREACHABLE;
            break;
        }
        usleep(200 * 1000);
    }
    pt_client_destroy(&client);
    return code;
}

static int s_export(s_opts_t *o)
{
    if (!o->case_token || !o->db)
        return cli_usage_error("audit export", "--case TOKEN and --db CONNINFO are required");
    int fhir = o->format && strcmp(o->format, "fhir") == 0;
    if (o->format && !fhir && strcmp(o->format, "bundle") != 0)
        return cli_usage_error("audit export", "--format is bundle or fhir");
    /* The broker key from the operator's key file when there is one (--broker-key
       or KEYS/broker/sign.pub): the checkpoint must verify with it. */
    uint8_t broker_public[32];
    int have_key = 0;
    pt_sign_key_t *key = NULL;
    if (o->broker_key && !(key = s_broker_key(o)))
        return CLI_USAGE;
    if (!key) {
        char path[4096];
        snprintf(path, sizeof path, "%s/broker/sign.pub", o->common.keys);
        key = pt_sign_key_load(path);
    }
    if (key) {
        pt_sign_key_public(key, broker_public);
        have_key = 1;
        pt_sign_key_destroy(&key);
    }
    uint64_t need = 0;
    json_t *bundle = cli_audit_export_db(o->db, o->case_token, have_key ? broker_public : NULL,
                                         &need);
    if (!bundle && need > 0) {
        int code = s_export_covering(o, need);
        if (code != CLI_OK)
            return code;
        uint64_t still = 0;
        bundle = cli_audit_export_db(o->db, o->case_token, have_key ? broker_public : NULL,
                                     &still);
        if (!bundle && still > 0)
            fprintf(stderr, "puente audit export: the broker answered, but the database holds "
                            "no checkpoint of %llu leaves\n", (unsigned long long)still);
    }
    if (!bundle)
        return CLI_UNREACHABLE;
    json_t *doc = fhir ? s_fhir(bundle) : json_incref(bundle);
    json_decref(bundle);
    int code = CLI_OK;
    if (!doc) {
        code = CLI_USAGE;
    } else if (o->out) {
        if (json_dump_file(doc, o->out, JSON_INDENT(1)) != 0) {
            fprintf(stderr, "puente audit export: cannot write %s\n", o->out);
            code = CLI_USAGE;
        }
    } else {
        cli_print_json(doc, 0);
    }
    json_decref(doc);
    return code;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(s_audit_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    s_opts_t o;
    memset(&o, 0, sizeof o);
    cli_common_init(&o.common, PUENTE_DEFAULT_TIMEOUT_MS);
    int rc = s_parse(argc - 1, argv + 1, "audit", &o);
    if (rc == -2)
        return CLI_OK;
    if (rc != CLI_OK)
        return rc;
    if (strcmp(sub, "trail") == 0 || strcmp(sub, "activity") == 0 || strcmp(sub, "items") == 0 ||
        strcmp(sub, "corridors") == 0)
        return s_query(&o, sub);
    if (strcmp(sub, "checkpoint") == 0)
        return s_checkpoint(&o);
    if (strcmp(sub, "proof") == 0)
        return s_proof(&o);
    if (strcmp(sub, "verify") == 0)
        return s_verify(&o);
    if (strcmp(sub, "export") == 0)
        return s_export(&o);
    return cli_usage_error("audit", "unknown command '%s' (see puente audit --help)", sub);
}

/* --- auditor add, retention run (operator) --------------------------------------------------- */

static const char *s_auditor_help =
    "usage: puente auditor add ID --scope GT,HN-DINAF [--keys DIR] [--broker URL]\n"
    "Registers auditor ID (like GT-OMBUDS, at most 24 characters) with the public keys in\n"
    "DIR/auditors/ID/*.pub (make them with: puente keygen --org ID --keys DIR/auditors),\n"
    "scoped to the listed countries and organisations. It then connects as auditor:ID.\n"
    CLI_COMMON_HELP;

int cmd_auditor(int argc, char **argv)
{
    static const struct option longopts[] = {{"scope", required_argument, 0, 's'},
                                              CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        fputs(s_auditor_help, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CLI_OK : CLI_USAGE;
    }
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *scope = NULL, *id = NULL;
    int c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 's': scope = optarg; break;
        case 'h': fputs(s_auditor_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("auditor", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("auditor", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        id = argv[optind++];
    if (!id || optind < argc)
        return cli_usage_error("auditor", "usage: puente auditor add ID --scope LIST");
    if (!pt_org_id_valid(id) || strlen(id) > PUENTE_AUDITOR_ID_MAX)
        return cli_usage_error("auditor", "'%s' is not a valid auditor id (like GT-OMBUDS)", id);
    if (!scope)
        return cli_usage_error("auditor", "--scope is required");
    char **items = NULL;
    size_t n = 0;
    if (cli_split(scope, &items, &n) != 0)
        return CLI_USAGE;
    char dir[4096], why[256] = "";
    snprintf(dir, sizeof dir, "%s/auditors", common.keys);
    pt_keyset_t *ks = pt_keyset_load(dir, id, 0, why, sizeof why);
    if (!ks) {
        fprintf(stderr, "puente auditor: cannot read the keys of %s in %s/%s: %s\n", id, dir, id,
                why);
        cli_strv_free(&items);
        return CLI_USAGE;
    }
    uint8_t sign_public[32];
    pt_sign_key_public(pt_keyset_sign(ks), sign_public);
    Puente__V1__AuditorSpec spec = PUENTE__V1__AUDITOR_SPEC__INIT;
    spec.auditor_id = (char *)id;
    spec.scope = items;
    spec.n_scope = n;
    spec.sign_public = (ProtobufCBinaryData){32, sign_public};
    spec.curve_public = (ProtobufCBinaryData){32, (uint8_t *)pt_keyset_curve_public(ks)};
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AUDITOR_ADD;
    req.auditor_add = &spec;
    int code = cli_admin_simple(&common, &req);
    pt_keyset_destroy(&ks);
    cli_strv_free(&items);
    return code;
}

/* Issue 6: the run in steps of S_RETENTION_BATCH (RetentionRun.batch), so that no
   request holds the broker's loop for long or outlasts --timeout, with a progress
   line on a terminal (the total is counted once, with the first step). Prints the
   same one line as a single request did. */
#define S_RETENTION_BATCH 1000

static int s_retention_batches(const cli_common_t *common, Puente__V1__AdminRequest *req,
                               Puente__V1__RetentionRun *run)
{
    pt_client_t *client = NULL;
    int code = cli_connect(common, PUENTE_OPERATOR, 0, &client);
    if (code != CLI_OK)
        return code;
    int show = cli_progress_wanted(stderr, common->json_output);
    cli_progress_t *line = cli_progress_new("retention", 0, stderr, show, NULL, NULL);
    unsigned long long deleted = 0;
    char *single = NULL;   /* an older broker's answer: it did everything at once */
    run->batch = S_RETENTION_BATCH;
    for (int first = 1;; first = 0) {
        run->count_remaining = first && show;
        Puente__V1__AdminReply *reply = NULL;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        pt_client_result_t rc = pt_client_admin_reply(client, req, &reply, &rej);
        if (rc != PT_CLIENT_OK) {
            cli_progress_done(&line);
            code = cli_fail(client, rc, &rej);
            break;
        }
        const Puente__V1__RetentionProgress *step = reply->retention;
        if (!step) {
            single = strdup(reply->result ? reply->result : "ok");
            puente__v1__admin_reply__free_unpacked(reply, NULL);
            break;
        }
        deleted += step->deleted;
        if (step->counted)
            cli_progress_total(line, deleted + step->remaining);
        cli_progress_update(line, deleted);
        int more = step->deleted >= S_RETENTION_BATCH;
        puente__v1__admin_reply__free_unpacked(reply, NULL);
        if (!more)
            break;
    }
    cli_progress_done(&line);
    if (code == CLI_OK) {
        if (single)
            printf("%s\n", single);
        else
            printf("retention: deleted the payloads of %llu messages\n", deleted);
    }
    free(single);
    pt_client_destroy(&client);
    return code;
}

static const char *s_retention_help =
    "usage: puente retention run [--now ISO-TIME]\n"
    "Deletes the sealed payload bytes of messages whose agreement's retention period\n"
    "(agreement add --retention-days N) has passed; headers, signatures, the trail and\n"
    "every proof stay verifiable. Operator identity. Runs in steps of 1000 messages;\n"
    "on a terminal a progress line shows on stderr.\n" CLI_COMMON_HELP;

int cmd_retention(int argc, char **argv)
{
    static const struct option longopts[] = {{"now", required_argument, 0, 'n'},
                                              CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "run") != 0) {
        fputs(s_retention_help, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CLI_OK : CLI_USAGE;
    }
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    int64_t now = 0;
    int c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'n':
            if (puente_time_parse(optarg, &now) != 0)
                return cli_usage_error("retention", "--now: '%s' is not an ISO 8601 time", optarg);
            break;
        case 'h': fputs(s_retention_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("retention", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("retention", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("retention", "unexpected argument '%s'", argv[optind]);
    Puente__V1__RetentionRun run = PUENTE__V1__RETENTION_RUN__INIT;
    run.now_ms = now;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_RETENTION_RUN;
    req.retention_run = &run;
    return s_retention_batches(&common, &req, &run);
}

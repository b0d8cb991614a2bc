/*  puente trail — a case's trail of events, as the broker records it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *s_help =
    "usage: puente trail --case TOKEN [--as ORG] [--json-output]\n"
    "Shows the case's events: seq, time (UTC), event, type, actor -> counterparty,\n"
    "message id (short) and event hash (first 16 hex digits). --json-output gives full\n"
    "values. Default identity: operator (keys in KEYS/operator); an organisation sees\n"
    "the trail of cases it is party to. While a consent withdrawal or erasure request\n"
    "of the case waits for recipients to acknowledge it, a last line names them:\n"
    "  awaiting acknowledgement: GT-PGN, HN-DINAF\n"
    "(pending_acknowledgement in --json-output).\n" CLI_COMMON_HELP;

static json_t *s_hex_json(ProtobufCBinaryData b)
{
    char *hex = malloc(2 * b.len + 1);
    if (!hex)
        return json_null();
    pt_hex(b.data, b.len, hex);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

int cmd_trail(int argc, char **argv)
{
    static const struct option longopts[] = { { "case", required_argument, 0, 'c' },
                                              { "as", required_argument, 0, 'a' },
                                              CLI_COMMON_OPTIONS,
                                              { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *case_token = NULL, *as = PUENTE_OPERATOR;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'c': case_token = optarg; break;
        case 'a': as = optarg; break;
        case 'h': fputs(s_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("trail", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("trail", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("trail", "unexpected argument '%s'", argv[optind]);
    if (!case_token || !*case_token)
        return cli_usage_error("trail", "--case is required");
    if (!pt_org_id_valid(as))
        return cli_usage_error("trail", "--as: '%s' is not an organisation id", as);
    pt_client_t *client = NULL;
    int code = cli_connect(&common, as, 0, &client);
    if (code != CLI_OK)
        return code;
    Puente__V1__TrailReply *trail = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_trail(client, case_token, &trail, &rej);
    code = cli_fail(client, rc, &rej);
    if (rc == PT_CLIENT_OK && common.json_output) {
        json_t *events = json_array();
        for (size_t i = 0; i < trail->n_events; i++) {
            const Puente__V1__TrailEvent *e = trail->events[i];
            char at[40], mid[PT_UUID_STR_BYTES] = "";
            puente_time_format(e->at_ms, at, sizeof at);
            if (e->message_id.len == PT_UUID_BYTES)
                pt_uuid_format(e->message_id.data, mid);
            json_t *o = json_object();
            json_object_set_new(o, "seq", json_integer((json_int_t) e->seq));
            json_object_set_new(o, "at", json_string(at));
            json_object_set_new(o, "kind", json_string(e->kind));
            json_object_set_new(o, "message_type", json_string(e->message_type));
            json_object_set_new(o, "actor", json_string(e->actor));
            json_object_set_new(o, "counterparty", json_string(e->counterparty));
            json_object_set_new(o, "message_id", mid[0] ? json_string(mid) : json_null());
            json_object_set_new(o, "prev_hash", s_hex_json(e->prev_hash));
            json_object_set_new(o, "hash", s_hex_json(e->hash));
            json_array_append_new(events, o);
        }
        json_t *doc = json_object();
        json_object_set_new(doc, "case_token", json_string(trail->case_token));
        json_object_set_new(doc, "events", events);
        json_t *pending = json_array();
        for (size_t i = 0; i < trail->n_pending_acknowledgement; i++)
            json_array_append_new(pending, json_string(trail->pending_acknowledgement[i]));
        json_object_set_new(doc, "pending_acknowledgement", pending);
        cli_print_json(doc, 1);
        json_decref(doc);
    }
    else if (rc == PT_CLIENT_OK) {
        printf("%-4s %-24s %-22s %-28s %-30s %-9s %s\n", "SEQ", "TIME (UTC)", "EVENT", "TYPE",
               "ACTOR -> COUNTERPARTY", "MESSAGE", "HASH");
        for (size_t i = 0; i < trail->n_events; i++) {
            const Puente__V1__TrailEvent *e = trail->events[i];
            char at[40], mid[PT_UUID_STR_BYTES] = "-", hash[2 * PT_SHA256_BYTES + 1] = "-";
            char parties[80];
            puente_time_format(e->at_ms, at, sizeof at);
            if (e->message_id.len == PT_UUID_BYTES) {
                pt_uuid_format(e->message_id.data, mid);
                mid[8] = '\0';
            }
            if (e->hash.len == PT_SHA256_BYTES) {
                pt_hex(e->hash.data, e->hash.len, hash);
                hash[16] = '\0';
            }
            snprintf(parties, sizeof parties, "%s -> %s", e->actor,
                     e->counterparty && *e->counterparty ? e->counterparty : "-");
            printf("%-4llu %-24s %-22s %-28s %-30s %-9s %s\n", (unsigned long long) e->seq, at,
                   e->kind, e->message_type && *e->message_type ? e->message_type : "-", parties,
                   mid, hash);
        }
        if (trail->n_events == 0)
            fprintf(stderr, "no events for this case\n");
        /* Withdrawals and erasure requests stay open until every recipient acked. */
        if (trail->n_pending_acknowledgement) {
            printf("awaiting acknowledgement: ");
            for (size_t i = 0; i < trail->n_pending_acknowledgement; i++)
                printf("%s%s", i ? ", " : "", trail->pending_acknowledgement[i]);
            printf("\n");
        }
    }
    if (trail)
        puente__v1__trail_reply__free_unpacked(trail, NULL);
    pt_client_destroy(&client);
    return code;
}

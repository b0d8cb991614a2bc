/*  puente overdue — lifecycles whose respond-by or follow-up due date passed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *s_help =
    "usage: puente overdue [--as ORG] [--json-output]\n"
    "Lists the lifecycles that passed a deadline without the expected answer: a\n"
    "referral, transfer or inquiry past its respond-by (now expired), or a\n"
    "reintegration plan whose follow-up due date passed with no follow-up report.\n"
    "Each raised the case event \"overdue\" in the trail once. Default identity:\n"
    "operator (sees all); an organisation sees the items it is a party to.\n" CLI_COMMON_HELP;

int cmd_overdue(int argc, char **argv)
{
    static const struct option longopts[] = { { "as", required_argument, 0, 'a' },
                                              CLI_COMMON_OPTIONS,
                                              { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *as = PUENTE_OPERATOR;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'a': as = optarg; break;
        case 'h': fputs(s_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("overdue", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("overdue", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("overdue", "unexpected argument '%s'", argv[optind]);
    if (!pt_org_id_valid(as))
        return cli_usage_error("overdue", "--as: '%s' is not an organisation id", as);
    pt_client_t *client = NULL;
    int code = cli_connect(&common, as, 0, &client);
    if (code != CLI_OK)
        return code;
    Puente__V1__OverdueReply *reply = NULL;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_overdue(client, &reply, &rej);
    code = cli_fail(client, rc, &rej);
    if (rc == PT_CLIENT_OK && common.json_output) {
        json_t *items = json_array();
        for (size_t i = 0; i < reply->n_items; i++) {
            const Puente__V1__OverdueItem *it = reply->items[i];
            char due[40], since[40], corr[PT_UUID_STR_BYTES] = "";
            puente_time_format(it->due_at_ms, due, sizeof due);
            puente_time_format(it->overdue_since_ms, since, sizeof since);
            if (it->correlation_id.len == PT_UUID_BYTES)
                pt_uuid_format(it->correlation_id.data, corr);
            json_t *o = json_object();
            json_object_set_new(o, "case_token", json_string(it->case_token));
            json_object_set_new(o, "correlation_id", corr[0] ? json_string(corr) : json_null());
            json_object_set_new(o, "kind", json_string(it->kind));
            json_object_set_new(o, "state", json_string(it->state));
            json_object_set_new(o, "deadline", json_string(it->deadline));
            json_object_set_new(o, "due_at", json_string(due));
            json_object_set_new(o, "overdue_since", json_string(since));
            json_object_set_new(o, "initiator", json_string(it->initiator));
            json_object_set_new(o, "counterparty", json_string(it->counterparty));
            json_array_append_new(items, o);
        }
        json_t *doc = json_object();
        json_object_set_new(doc, "overdue", items);
        cli_print_json(doc, 1);
        json_decref(doc);
    }
    else if (rc == PT_CLIENT_OK) {
        printf("%-24s %-10s %-15s %-11s %-24s %-20s %s\n", "CASE", "KIND", "STATE", "DEADLINE",
               "DUE (UTC)", "INITIATOR", "COUNTERPARTY");
        for (size_t i = 0; i < reply->n_items; i++) {
            const Puente__V1__OverdueItem *it = reply->items[i];
            char due[40];
            puente_time_format(it->due_at_ms, due, sizeof due);
            printf("%-24s %-10s %-15s %-11s %-24s %-20s %s\n", it->case_token, it->kind, it->state,
                   it->deadline, due, it->initiator, it->counterparty);
        }
        if (reply->n_items == 0)
            fprintf(stderr, "nothing overdue\n");
    }
    if (reply)
        puente__v1__overdue_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&client);
    return code;
}

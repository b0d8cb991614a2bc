/*  puente dead-letter list|requeue|drop — deliveries the broker stopped offering
    (too many attempts without an acknowledgement, expired, or an envelope damaged in
    the database), and the operator's
    two ways out: back to the queue, or dropped for good. One AdminRequest each
    (control.proto DeadLetter*); the broker changes nothing when an id is unknown. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *s_help =
    "usage: puente dead-letter list [--recipient ORG] [--limit N] [--json|--json-output]\n"
    "       puente dead-letter requeue ID... [--recipient ORG]\n"
    "       puente dead-letter requeue --recipient ORG --all\n"
    "       puente dead-letter drop ID... --reason TEXT [--recipient ORG]\n"
    "       puente dead-letter drop --recipient ORG --all --reason TEXT\n"
    "A delivery becomes a dead letter when it was offered [broker] max_delivery_attempts\n"
    "times (default 20) without an acknowledgement, when its message expired first, or\n"
    "when its stored envelope no longer decodes (damaged in the database: unreadable).\n"
    "It is no longer offered nor counted in `puente queue list`, and the later messages of\n"
    "its correlation id to that recipient wait behind it (HELD) until it is requeued or\n"
    "dropped. Each change is an event in the case trail.\n"
    "list: message id, case token, type, sender, recipient, reason (attempts, expired,\n"
    "  unreadable), attempts, since when; at most N (default and maximum 1000).\n"
    "requeue: back to the queue as never sent (attempts 0), offered again in submission\n"
    "  order. Expired messages cannot be requeued: drop them.\n"
    "drop: never offered again; TEXT (1-500 characters, no personal data) is kept with\n"
    "  the delivery, and the trail records dead_letter:dropped by the operator.\n"
    "ID is a message id (UUID); with --recipient only that recipient's delivery of it.\n"
    "An ID that names no dead letter is an error (exit 2) and then nothing changes.\n"
    "All act as the operator.\n"
    "  --recipient ORG   only this recipient's dead letters\n"
    "  --all             every dead letter of --recipient (at most 10000 per run)\n"
    "  --reason TEXT     why they are dropped (required by drop)\n"
    "  --limit N         list at most N\n" CLI_COMMON_HELP;

static json_t *s_hex_json(const ProtobufCBinaryData *b)
{
    char text[PT_UUID_STR_BYTES] = "";
    if (b->len == 16)
        pt_uuid_format(b->data, text);
    return json_string(text);
}

static void s_print(const Puente__V1__AdminReply *reply, int json_output, int listing)
{
    if (json_output) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < reply->n_dead_letters; i++) {
            const Puente__V1__DeadLetterInfo *d = reply->dead_letters[i];
            char since[40];
            puente_time_format(d->dead_at_ms, since, sizeof since);
            json_array_append_new(
                a, json_pack("{s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:I, s:I, s:I}",
                             "message_id", s_hex_json(&d->message_id), "correlation_id",
                             s_hex_json(&d->correlation_id), "case_token", d->case_token,
                             "message_type", d->message_type, "sender", d->sender, "recipient",
                             d->recipient, "reason", d->reason, "attempts", (int)d->attempts,
                             "dead_at_ms", (json_int_t)d->dead_at_ms, "dead_at", since,
                             "stored_at_ms", (json_int_t)d->stored_at_ms, "expires_at_ms",
                             (json_int_t)d->expires_at_ms, "held_back", (json_int_t)d->held_back));
        }
        json_t *doc = json_pack("{s:s, s:o}", "result", reply->result ? reply->result : "",
                                "dead_letters", a);
        cli_print_json(doc, 0);
        json_decref(doc);
        return;
    }
    if (!listing)
        printf("%s\n", reply->result && *reply->result ? reply->result : "ok");
    if (reply->n_dead_letters == 0) {
        if (listing)
            printf("no dead letters\n");
        return;
    }
    printf("%-36s  %-20s %-26s %-10s %-10s %-9s %8s  %-24s %s\n", "MESSAGE ID", "CASE", "TYPE",
           "SENDER", "RECIPIENT", "REASON", "ATTEMPTS", "SINCE", "HELD");
    for (size_t i = 0; i < reply->n_dead_letters; i++) {
        const Puente__V1__DeadLetterInfo *d = reply->dead_letters[i];
        char id[PT_UUID_STR_BYTES] = "?", since[40];
        if (d->message_id.len == 16)
            pt_uuid_format(d->message_id.data, id);
        puente_time_format(d->dead_at_ms, since, sizeof since);
        printf("%-36s  %-20s %-26s %-10s %-10s %-9s %8u  %-24s %lld\n", id, d->case_token,
               d->message_type, d->sender, d->recipient, d->reason[0] ? d->reason : "-",
               d->attempts, since, (long long)d->held_back);
    }
    if (listing && reply->result && strstr(reply->result, "first"))
        printf("(%s)\n", reply->result);
}

int cmd_dead_letter(int argc, char **argv)
{
    static const struct option longopts[] = {{"recipient", required_argument, 0, 'r'},
                                             {"all", no_argument, 0, 'a'},
                                             {"reason", required_argument, 0, 'R'},
                                             {"limit", required_argument, 0, 'l'},
                                             /* as in `puente audit`: --json = --json-output */
                                             {"json", no_argument, 0, 'J'},
                                             CLI_COMMON_OPTIONS,
                                             {0, 0, 0, 0}};
    cli_common_t common;
    cli_common_init(&common, PUENTE_DEFAULT_TIMEOUT_MS);
    const char *recipient = "", *reason = NULL;
    int all = 0, c;
    unsigned long limit = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'r':
            if (!pt_org_id_valid(optarg))
                return cli_usage_error("dead-letter",
                                       "--recipient: '%s' is not a valid organisation id", optarg);
            recipient = optarg;
            break;
        case 'a':
            all = 1;
            break;
        case 'R':
            reason = optarg;
            break;
        case 'l': {
            char *end = NULL;
            limit = strtoul(optarg, &end, 10);
            if (!*optarg || *end || limit == 0 || limit > 1000)
                return cli_usage_error("dead-letter", "--limit: expected 1..1000, got '%s'",
                                       optarg);
            break;
        }
        case 'h':
            fputs(s_help, stdout);
            return CLI_OK;
        case ':':
            return cli_usage_error("dead-letter", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("dead-letter", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("dead-letter", "expected: dead-letter list | requeue | drop");
    const char *verb = argv[optind++];
    int n_ids = argc - optind;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    Puente__V1__DeadLetterListRequest list = PUENTE__V1__DEAD_LETTER_LIST_REQUEST__INIT;
    Puente__V1__DeadLetterRequeue requeue = PUENTE__V1__DEAD_LETTER_REQUEUE__INIT;
    Puente__V1__DeadLetterDrop drop = PUENTE__V1__DEAD_LETTER_DROP__INIT;
    int listing = strcmp(verb, "list") == 0;
    if (listing) {
        if (n_ids > 0)
            return cli_usage_error("dead-letter", "list takes no arguments ('%s')", argv[optind]);
        if (all || reason)
            return cli_usage_error("dead-letter", "--all and --reason are for requeue and drop");
        list.recipient = (char *)recipient;
        list.limit = (uint32_t)limit;
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_LIST;
        req.dead_letter_list = &list;
    } else if (strcmp(verb, "requeue") == 0 || strcmp(verb, "drop") == 0) {
        int is_drop = verb[0] == 'd';
        if (limit)
            return cli_usage_error("dead-letter", "--limit is for list");
        if (all == (n_ids > 0))
            return cli_usage_error("dead-letter", "%s needs message ids, or --recipient ORG --all",
                                   verb);
        if (all && !recipient[0])
            return cli_usage_error("dead-letter", "--all needs --recipient ORG");
        if (n_ids > 1000)
            return cli_usage_error("dead-letter", "at most 1000 message ids at once");
        if (is_drop && (!reason || !*reason || strlen(reason) > 500 || strchr(reason, '\n')))
            return cli_usage_error("dead-letter", "drop needs --reason TEXT (1-500 characters, "
                                                  "one line)");
        if (!is_drop && reason)
            return cli_usage_error("dead-letter", "--reason is for drop");
        uint8_t(*ids)[PT_UUID_BYTES] = calloc(n_ids ? (size_t)n_ids : 1, sizeof *ids);
        ProtobufCBinaryData *bins = calloc(n_ids ? (size_t)n_ids : 1, sizeof *bins);
        if (!ids || !bins) {
            free(ids);
            free(bins);
            fprintf(stderr, "puente dead-letter: out of memory\n");
            return CLI_USAGE;
        }
        for (int i = 0; i < n_ids; i++) {
            if (pt_uuid_parse(argv[optind + i], ids[i]) != 0) {
                free(ids);
                free(bins);
                return cli_usage_error("dead-letter", "'%s' is not a message id (UUID)",
                                       argv[optind + i]);
            }
            bins[i] = (ProtobufCBinaryData){PT_UUID_BYTES, ids[i]};
        }
        if (is_drop) {
            drop.message_ids = bins;
            drop.n_message_ids = (size_t)n_ids;
            drop.recipient = (char *)recipient;
            drop.all = all;
            drop.reason = (char *)reason;
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_DROP;
            req.dead_letter_drop = &drop;
        } else {
            requeue.message_ids = bins;
            requeue.n_message_ids = (size_t)n_ids;
            requeue.recipient = (char *)recipient;
            requeue.all = all;
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_REQUEUE;
            req.dead_letter_requeue = &requeue;
        }
        Puente__V1__AdminReply *reply = NULL;
        int code = cli_admin_call(&common, &req, &reply);
        free(ids);
        free(bins);
        if (code != CLI_OK)
            return code;
        s_print(reply, common.json_output, 0);
        puente__v1__admin_reply__free_unpacked(reply, NULL);
        return CLI_OK;
    } else
        return cli_usage_error("dead-letter", "unknown subcommand '%s' (list, requeue, drop)",
                               verb);
    Puente__V1__AdminReply *reply = NULL;
    int code = cli_admin_call(&common, &req, &reply);
    if (code != CLI_OK)
        return code;
    s_print(reply, common.json_output, 1);
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}

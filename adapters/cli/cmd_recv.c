/*  puente recv — receive, verify, open, print and acknowledge messages. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pt_json.h"

static const char *s_help =
    "usage: puente recv --as ORG [--follow] [--timeout 2s] [--json-output]\n"
    "Prints each delivered message after checking the envelope, verifying the sender's\n"
    "signature with the broker's signed directory and opening the payload, as a JSON\n"
    "object {message_id, type, sender, case_token, correlation_id, created_at, body},\n"
    "then acknowledges it. A message that fails a check is reported on stderr and NOT\n"
    "acknowledged (exit 4). Without --follow, exits when nothing arrives for the\n"
    "--timeout (default 2s); with --follow, waits until interrupted (Ctrl-C).\n"
    "Broker notices (a deadline of a case passed) are printed as\n"
    "  notice: overdue referral.request case CASE-1 due 2026-...\n"
    "(JSON {notice_id, notice, message_type, case_token, correlation_id, due_at,\n"
    "created_at} with --json-output) and acknowledged.\n" CLI_COMMON_HELP;

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static json_t *s_message_json(const pt_message_t *m)
{
    const Puente__V1__Header *h = pt_message_header(m);
    char mid[PT_UUID_STR_BYTES], cid[PT_UUID_STR_BYTES] = "", at[40];
    pt_uuid_format(h->message_id.data, mid);
    if (h->correlation_id.len == PT_UUID_BYTES)
        pt_uuid_format(h->correlation_id.data, cid);
    puente_time_format(h->created_at_ms, at, sizeof at);
    char *body_text = pt_json_from_message(pt_message_body(m), 0);
    json_t *body = body_text ? json_loads(body_text, JSON_DECODE_ANY, NULL) : NULL;
    free(body_text);
    if (!body)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "message_id", json_string(mid));
    json_object_set_new(o, "type", json_string(h->message_type));
    json_object_set_new(o, "sender", json_string(h->sender));
    json_object_set_new(o, "case_token", json_string(h->case_token));
    json_object_set_new(o, "correlation_id", json_string(cid));
    json_object_set_new(o, "created_at", json_string(at));
    json_object_set_new(o, "body", body);
    return o;
}

/* Prints a verified broker notice; returns 0 once printed. */
static int s_print_notice(const Puente__V1__Notice *n, int json_output)
{
    char due[40], created[40], cid[PT_UUID_STR_BYTES] = "";
    puente_time_format(n->due_at_ms, due, sizeof due);
    puente_time_format(n->created_at_ms, created, sizeof created);
    if (n->correlation_id.len == PT_UUID_BYTES)
        pt_uuid_format(n->correlation_id.data, cid);
    if (!json_output) {
        printf("notice: %s %s case %s due %s\n", n->kind, n->message_type[0] ? n->message_type : "-",
               n->case_token, due);
        fflush(stdout);
        return 0;
    }
    json_t *o = json_object();
    if (!o)
        return -1;
    json_object_set_new(o, "notice_id", json_integer((json_int_t) n->notice_id));
    json_object_set_new(o, "notice", json_string(n->kind));
    json_object_set_new(o, "message_type", json_string(n->message_type));
    json_object_set_new(o, "case_token", json_string(n->case_token));
    json_object_set_new(o, "correlation_id", json_string(cid));
    json_object_set_new(o, "due_at", json_string(due));
    json_object_set_new(o, "created_at", json_string(created));
    cli_print_json(o, 1);
    json_decref(o);
    return 0;
}

int cmd_recv(int argc, char **argv)
{
    static const struct option longopts[] = { { "as", required_argument, 0, 'a' },
                                              { "follow", no_argument, 0, 'f' },
                                              CLI_COMMON_OPTIONS,
                                              { 0, 0, 0, 0 } };
    cli_common_t common;
    cli_common_init(&common, 2000);
    const char *as = NULL;
    int follow = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = cli_common_opt(c, optarg, &common);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case 'a': as = optarg; break;
        case 'f': follow = 1; break;
        case 'h': fputs(s_help, stdout); return CLI_OK;
        case ':': return cli_usage_error("recv", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("recv", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("recv", "unexpected argument '%s'", argv[optind]);
    if (!as)
        return cli_usage_error("recv", "--as is required");
    if (!pt_org_id_valid(as))
        return cli_usage_error("recv", "--as: '%s' is not an organisation id", as);

    /* No SA_RESTART: the signal must interrupt the poll so --follow ends promptly. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int idle_ms = common.timeout_ms;
    /* Hello and acks get at least the default request timeout. */
    cli_common_t conn = common;
    if (conn.timeout_ms < PUENTE_DEFAULT_TIMEOUT_MS)
        conn.timeout_ms = PUENTE_DEFAULT_TIMEOUT_MS;
    pt_client_t *client = NULL;
    int code = cli_connect(&conn, as, 1, &client);
    if (code != CLI_OK)
        return code;
    pt_client_want_notices(client, 1);
    size_t received = 0, refused = 0;
    while (!s_stop) {
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(client, follow ? 1000 : idle_ms, &m);
        if (rc == PT_CLIENT_TIMEOUT) {
            if (follow)
                continue;
            break;
        }
        if (rc == PT_CLIENT_REFUSED) {
            fprintf(stderr, "puente recv: %s (not acknowledged)\n", pt_client_error(client));
            refused++;
            continue;
        }
        if (rc == PT_CLIENT_NOTICE) {
            /* Printed is our "recorded", as for messages. */
            int printed = s_print_notice(pt_message_notice(m), common.json_output);
            uint64_t notice_id = pt_message_notice(m)->notice_id;
            pt_message_destroy(&m);
            if (printed == 0 && (rc = pt_client_notice_ack(client, notice_id)) != PT_CLIENT_OK) {
                code = cli_fail(client, rc, NULL);
                break;
            }
            received++;
            continue;
        }
        if (rc != PT_CLIENT_OK) {
            code = cli_fail(client, rc, NULL);
            break;
        }
        json_t *o = s_message_json(m);
        if (!o) {
            fprintf(stderr, "puente recv: cannot render a message as JSON; not acknowledged\n");
            refused++;
            pt_message_destroy(&m);
            continue;
        }
        cli_print_json(o, common.json_output);
        json_decref(o);
        /* Printed is our "stored": only now may the broker forget it. */
        rc = pt_client_ack(client, pt_message_id(m));
        pt_message_destroy(&m);
        if (rc != PT_CLIENT_OK) {
            code = cli_fail(client, rc, NULL);
            break;
        }
        received++;
    }
    if (code == CLI_OK && received == 0 && refused == 0)
        fprintf(stderr, "no messages\n");
    if (code == CLI_OK && refused > 0)
        code = CLI_REFUSED;
    pt_client_destroy(&client);
    return code;
}

/*  itest_deadletter — dead letters end to end (issue 6) against a real broker
    started with max_delivery_attempts = 2 (PUENTE_MAX_DELIVERY_ATTEMPTS), real
    PostgreSQL and real CURVE sockets, through the `puente` binary:
    (a) a recipient that is connected but never acknowledges gets its message
        dead-lettered after two offers; `dead-letter list` shows it (with the
        message of the same correlation id held back behind it), the queue no
        longer counts it, the trail records it, /metrics counts it;
    (b) unknown or malformed ids are errors and change nothing;
    (c) requeue: the recipient receives it, in order before the held-back one,
        and acknowledges it exactly once;
    (d) drop: gone from the list and the queue, recorded in the trail as dropped
        by the operator (the operator's text stays out of the trail); an expired
        message is a dead letter "expired" and cannot be requeued;
    (e) retention runs in steps (RetentionRun.batch, the CLI's progress line) and the
        CLI prints exactly what it printed before when not on a terminal;
    (f) only the operator may use any of it; the audit log still verifies, with no
        progress output off a terminal;
    (g) a stored envelope damaged in the database (it no longer decodes) is a dead
        letter "unreadable" at its first offer, logged once, and the recipient
        receives the messages behind it. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static const char *s_url;
static char s_out[65536], s_err[8192];

/* The message ids of (a)-(d), as text. */
static char s_first[PT_UUID_STR_BYTES], s_second[PT_UUID_STR_BYTES];
static char s_stuck[PT_UUID_STR_BYTES], s_expired[PT_UUID_STR_BYTES];

static int s_run(const char *fmt, const char *a, const char *b)
{
    return pt_harness_cli(s_h, s_out, sizeof s_out, s_err, sizeof s_err, fmt, a ? a : "",
                          b ? b : "");
}

static int s_suite_init(void)
{
    /* Two offers, then a dead letter: (1 s + 2 s of backoff) instead of minutes. */
    if (setenv("PUENTE_MAX_DELIVERY_ATTEMPTS", "2", 1) != 0)
        return 1;
    s_h = pt_harness_new_started("deadletter", &s_url);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* --- helpers ------------------------------------------------------------------------ */

/* The value of one series in the broker's /metrics; -1 when absent or unreachable. */
static double s_scrape(const char *series)
{
    double value = -1;
    return pt_harness_metric_scrape(s_url, series, 3000, &value) == 0 ? value : -1;
}

/* Polls the series until it equals want (generous deadline); the last value. */
static double s_wait_metric(const char *series, double want)
{
    double v = -1;
    for (int i = 0; i < 150 && (v = s_scrape(series)) != want; i++)
        usleep(200 * 1000);
    return v;
}

static long s_sql(const char *fmt, const char *a)
{
    char sql[1024];
    snprintf(sql, sizeof sql, fmt, a ? a : "");
    return pt_harness_sql_count(s_h, sql);
}

/* Sends a referral.request from `from` to `to` (correlation: NULL = new) and
   writes its message id into id_text. 0 or -1. */
static int s_send(pt_client_t *from, const char *to, const char *case_token,
                  const uint8_t *correlation, int64_t expires_in_ms, char *id_text,
                  uint8_t *correlation_out)
{
    pt_receipt_info_t receipt;
    if (pt_harness_send(from, "referral.request", to, case_token, correlation, expires_in_ms,
                        &receipt, NULL) != PT_CLIENT_OK)
        return -1;
    pt_uuid_format(receipt.message_id, id_text);
    if (correlation_out)
        memcpy(correlation_out, receipt.correlation_id, 16);
    return 0;
}

/* Polls `dead-letter list --json-output` until it names id (or the deadline). */
static int s_wait_dead(const char *id)
{
    for (int i = 0; i < 150; i++) {
        if (s_run("dead-letter list --json-output%s%s", NULL, NULL) == 0 && strstr(s_out, id))
            return 1;
        usleep(200 * 1000);
    }
    return 0;
}

/* --- (a) dead-lettered after max attempts ----------------------------------------- */

static void test_dead_lettered_after_attempts(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    /* GT-PGN is connected and receiving but never reads nor acknowledges. */
    pt_client_t *deaf = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deaf);
    uint8_t correlation[16];
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "CASE-DL-1", NULL, 0, s_first, correlation), 0);
    /* The sender amends it: same correlation id, so it waits behind the first. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "GT-PGN", "CASE-DL-1", correlation, 0, s_second, NULL), 0);

    CU_ASSERT_FATAL(s_wait_dead(s_first));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\": \"CASE-DL-1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"message_type\": \"referral.request\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"sender\": \"MX-DIF\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"recipient\": \"GT-PGN\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"reason\": \"attempts\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"attempts\": 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"held_back\": 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"dead_at\": \"20"));
    /* The second was never offered: it waits behind the first. */
    CU_ASSERT_PTR_NULL(strstr(s_out, s_second));
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'pending' AND attempts = 0",
                          s_second),
                    1);
    /* Exactly two offers were made. */
    CU_ASSERT_EQUAL(s_sql("SELECT attempts FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'dead' AND dead_reason = 'attempts'",
                          s_first),
                    2);

    /* The table: one line per dead letter. */
    CU_ASSERT_EQUAL(s_run("dead-letter list --recipient GT-PGN%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "MESSAGE ID"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, s_first));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "CASE-DL-1"));
    CU_ASSERT_EQUAL(s_run("dead-letter list --recipient HN-DINAF%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "no dead letters"));

    /* Not in the queue depth: only the held-back second one is queued. */
    CU_ASSERT_EQUAL(s_run("queue list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"recipient\": \"GT-PGN\",\n      \"depth\": 1"));

    /* The trail records it once, by the broker, with the recipient. */
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE case_token = 'CASE-DL-1' "
                          "AND kind = 'dead_letter:attempts' AND actor = 'broker' "
                          "AND counterparty = 'GT-PGN' AND message_id = '%s'",
                          s_first),
                    1);
    CU_ASSERT_EQUAL(s_run("trail --case CASE-DL-1%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "dead_letter:attempts"));

    /* /metrics counts it per recipient (label values from the directory only). */
    CU_ASSERT_EQUAL(s_wait_metric("puente_dead_letters{recipient=\"GT-PGN\"}", 1), 1);
    CU_ASSERT_EQUAL(s_scrape("puente_dead_letters{recipient=\"HN-DINAF\"}"), 0);

    /* The deaf receiver never got more than the two offers: nothing else was sent. */
    pt_client_destroy(&deaf);
    pt_client_destroy(&mx);
}

/* --- (b) bad commands change nothing ------------------------------------------------- */

static void test_unknown_ids(void)
{
    const char *unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    CU_ASSERT_EQUAL(s_run("dead-letter requeue %s%s", unknown, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_NOT_FOUND"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, unknown));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "nothing changed"));
    /* A known id next to an unknown one: nothing changes either. */
    char args[200];
    snprintf(args, sizeof args, "%s %s", s_first, unknown);
    CU_ASSERT_EQUAL(s_run("dead-letter requeue %s%s", args, NULL), 2);
    CU_ASSERT_EQUAL(s_run("dead-letter drop %s --reason 'wrong one'%s", args, NULL), 2);
    /* The right id for the wrong recipient. */
    CU_ASSERT_EQUAL(s_run("dead-letter requeue %s --recipient HN-DINAF%s", s_first, NULL), 2);
    CU_ASSERT_EQUAL(s_run("dead-letter requeue --recipient XX-NOPE --all%s%s", NULL, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_UNKNOWN_RECIPIENT"));
    /* Local usage errors (exit 1). */
    CU_ASSERT_EQUAL(s_run("dead-letter requeue not-a-uuid%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("dead-letter drop %s%s", s_first, NULL), 1); /* no --reason */
    CU_ASSERT_EQUAL(s_run("dead-letter requeue --all%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("dead-letter requeue%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("dead-letter frob%s%s", NULL, NULL), 1);
    CU_ASSERT_EQUAL(s_run("dead-letter --help%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "requeue"));
    /* Still exactly as it was. */
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'dead' AND attempts = 2",
                          s_first),
                    1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE case_token = 'CASE-DL-1' "
                          "AND kind LIKE 'dead_letter:%%'%s",
                          NULL),
                    1);
}

/* --- (c) requeue: received and acknowledged exactly once, in order ------------------ */

static void test_requeue(void)
{
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    CU_ASSERT_EQUAL_FATAL(s_run("dead-letter requeue %s%s", s_first, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "requeued 1 dead letter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, s_first));
    /* First the requeued one, then the one held behind it; each acknowledged. */
    const char *expected[2] = {s_first, s_second};
    int first_seen = 0;
    for (int i = 0; i < 2; i++) {
        pt_message_t *got = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(gt, 20000, &got), PT_CLIENT_OK);
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(pt_message_id(got), id);
        CU_ASSERT_STRING_EQUAL(id, expected[i]);
        first_seen += strcmp(id, s_first) == 0;
        CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(got)), PT_CLIENT_OK);
        pt_message_destroy(&got);
    }
    /* Nothing more comes: it was received exactly once. */
    pt_message_t *extra = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(gt, 3000, &extra), PT_CLIENT_TIMEOUT);
    if (extra) {
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(pt_message_id(extra), id);
        first_seen += strcmp(id, s_first) == 0;
        pt_message_destroy(&extra);
    }
    CU_ASSERT_EQUAL(first_seen, 1);
    pt_client_destroy(&gt);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE message_id = '%s' "
                          "AND kind = 'acknowledged'",
                          s_first),
                    1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE message_id = '%s' "
                          "AND kind = 'dead_letter:requeued' AND actor = 'operator'",
                          s_first),
                    1);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE recipient = 'GT-PGN' AND state = 'acked' "
             "AND message_id IN ('%s', '%s')",
             s_first, s_second);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, sql), 2);
    /* Gone from the list and, once the gauges refresh, from /metrics. */
    CU_ASSERT_EQUAL(s_run("dead-letter list --recipient GT-PGN --json%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NULL(strstr(s_out, s_first));
    CU_ASSERT_EQUAL(s_wait_metric("puente_dead_letters{recipient=\"GT-PGN\"}", 0), 0);
}

/* --- (d) drop, and expired messages ---------------------------------------------------- */

static void test_drop_and_expired(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *deaf = pt_harness_client(s_h, "HN-DINAF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deaf);
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "HN-DINAF", "CASE-DL-2", NULL, 0, s_stuck, NULL), 0);
    /* US-ORR is not connected; its message expires in two seconds. */
    CU_ASSERT_EQUAL_FATAL(s_send(mx, "US-ORR", "CASE-DL-3", NULL, 2000, s_expired, NULL), 0);
    CU_ASSERT_FATAL(s_wait_dead(s_stuck));
    CU_ASSERT_FATAL(s_wait_dead(s_expired));
    pt_client_destroy(&deaf);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'dead' AND dead_reason = 'expired' AND attempts = 0",
                          s_expired),
                    1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE message_id = '%s' "
                          "AND kind = 'dead_letter:expired'",
                          s_expired),
                    1);
    CU_ASSERT_EQUAL(s_wait_metric("puente_dead_letters{recipient=\"US-ORR\"}", 1), 1);

    /* An expired message cannot be requeued: it is refused and stays as it is. */
    CU_ASSERT_EQUAL(s_run("dead-letter requeue %s%s", s_expired, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "REJECT_EXPIRED"));
    CU_ASSERT_EQUAL(s_run("dead-letter requeue --recipient US-ORR --all%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "requeued 0 dead letters"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "1 expired left"));
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'dead'",
                          s_expired),
                    1);

    /* Drop, with the operator's reason kept out of the trail. */
    CU_ASSERT_EQUAL_FATAL(
        s_run("dead-letter drop %s --reason 'adapter rejects it; resent by fax'%s", s_stuck, NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "dropped 1 dead letter"));
    CU_ASSERT_EQUAL(s_run("dead-letter list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NULL(strstr(s_out, s_stuck));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, s_expired));
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' AND "
                          "state = 'dropped' AND drop_note = 'adapter rejects it; resent by fax'",
                          s_stuck),
                    1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE case_token = 'CASE-DL-2' "
                          "AND kind = 'dead_letter:dropped' AND actor = 'operator' "
                          "AND message_id = '%s'",
                          s_stuck),
                    1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE kind || actor || counterparty "
                          "|| message_type || encode(detail, 'escape') LIKE '%%fax%%'%s",
                          NULL),
                    0);
    /* Not queued either, and dropping it again is an error. */
    CU_ASSERT_EQUAL(s_run("queue list --json-output%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NULL(strstr(s_out, "\"recipient\": \"HN-DINAF\""));
    CU_ASSERT_EQUAL(s_run("dead-letter drop %s --reason again%s", s_stuck, NULL), 2);
    CU_ASSERT_EQUAL(s_run("dead-letter requeue %s%s", s_stuck, NULL), 2);
    /* A recipient that connects now is not offered the dropped one. */
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 1);
    CU_ASSERT_PTR_NOT_NULL(hn);
    pt_message_t *got = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(hn, 3000, &got), PT_CLIENT_TIMEOUT);
    pt_message_destroy(&got);
    pt_client_destroy(&hn);

    /* --all drops the expired one. */
    CU_ASSERT_EQUAL(
        s_run("dead-letter drop --recipient US-ORR --all --reason expired --json-output%s%s", NULL,
              NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "dropped 1 dead letter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, s_expired));
    CU_ASSERT_EQUAL(s_wait_metric("puente_dead_letters{recipient=\"US-ORR\"}", 0), 0);
    CU_ASSERT_EQUAL(s_wait_metric("puente_dead_letters{recipient=\"HN-DINAF\"}", 0), 0);
    CU_ASSERT_EQUAL(s_run("dead-letter list%s%s", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "no dead letters"));
    pt_client_destroy(&mx);
}

/* --- (e) retention in steps (the progress protocol), output unchanged off a terminal ----- */

static void test_retention_steps(void)
{
    /* MX-DIF / SV-CONNA now keep payloads for one day; three referrals under it. */
    CU_ASSERT_EQUAL_FATAL(s_run("agreement add --id AGR-MX-DIF-SV-CONNA --between MX-DIF,SV-CONNA "
                                "--purposes service_provision --types '*' --valid-from 2020-01-01 "
                                "--retention-days 1%s%s",
                                NULL, NULL),
                          0);
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    char id[PT_UUID_STR_BYTES];
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(s_send(mx, "SV-CONNA", "CASE-DL-RET", NULL, 0, id, NULL), 0);
    pt_client_destroy(&mx);
    int64_t later = pt_now_ms() + 2 * 86400000LL;

    pt_client_t *op = pt_harness_client(s_h, "operator", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    Puente__V1__RetentionRun run = PUENTE__V1__RETENTION_RUN__INIT;
    run.now_ms = later;
    run.batch = 2;
    run.count_remaining = 1;
    Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
    req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_RETENTION_RUN;
    req.retention_run = &run;
    Puente__V1__AdminReply *reply = NULL;
    pt_reject_info_t rej;
    /* A step of two, with what remains counted; then the last one. */
    CU_ASSERT_EQUAL_FATAL(pt_client_admin_reply(op, &req, &reply, &rej), PT_CLIENT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply->retention);
    CU_ASSERT_EQUAL(reply->retention->deleted, 2);
    CU_ASSERT_EQUAL(reply->retention->remaining, 1);
    CU_ASSERT_TRUE(reply->retention->counted);
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    run.count_remaining = 0;
    CU_ASSERT_EQUAL_FATAL(pt_client_admin_reply(op, &req, &reply, &rej), PT_CLIENT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply->retention);
    CU_ASSERT_EQUAL(reply->retention->deleted, 1);
    CU_ASSERT_FALSE(reply->retention->counted);
    CU_ASSERT_STRING_EQUAL(reply->result, "retention: deleted the payloads of 1 messages");
    puente__v1__admin_reply__free_unpacked(reply, NULL);
    pt_client_destroy(&op);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM messages WHERE case_token = 'CASE-DL-RET' "
                          "AND payload_deleted_at IS NOT NULL%s",
                          NULL),
                    3);

    /* The CLI (in steps now) prints exactly the line it printed before, and nothing
       on stderr when it is not a terminal. */
    char now[40];
    puente_time_format(later, now, sizeof now);
    CU_ASSERT_EQUAL(s_run("retention run --now %s%s", now, NULL), 0);
    CU_ASSERT_STRING_EQUAL(s_out, "retention: deleted the payloads of 0 messages\n");
    CU_ASSERT_STRING_EQUAL(s_err, "");
    CU_ASSERT_EQUAL(s_run("retention run --now %s --json-output%s", now, NULL), 0);
    CU_ASSERT_STRING_EQUAL(s_out, "retention: deleted the payloads of 0 messages\n");
    CU_ASSERT_STRING_EQUAL(s_err, "");
}

/* --- (f) operator only; the log still verifies ------------------------------------------ */

static void test_operator_only_and_verify(void)
{
    pt_client_t *c = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    Puente__V1__DeadLetterListRequest list = PUENTE__V1__DEAD_LETTER_LIST_REQUEST__INIT;
    Puente__V1__DeadLetterRequeue requeue = PUENTE__V1__DEAD_LETTER_REQUEUE__INIT;
    Puente__V1__DeadLetterDrop drop = PUENTE__V1__DEAD_LETTER_DROP__INIT;
    requeue.recipient = "GT-PGN";
    requeue.all = 1;
    drop.recipient = "GT-PGN";
    drop.all = 1;
    drop.reason = "not mine to drop";
    for (int op = 0; op < 3; op++) {
        Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
        if (op == 0) {
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_LIST;
            req.dead_letter_list = &list;
        } else if (op == 1) {
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_REQUEUE;
            req.dead_letter_requeue = &requeue;
        } else {
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_DROP;
            req.dead_letter_drop = &drop;
        }
        Puente__V1__AdminReply *reply = NULL;
        pt_reject_info_t rej;
        memset(&rej, 0, sizeof rej);
        CU_ASSERT_EQUAL(pt_client_admin_reply(c, &req, &reply, &rej), PT_CLIENT_REJECTED);
        CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_NOT_PERMITTED);
        if (reply)
            puente__v1__admin_reply__free_unpacked(reply, NULL);
    }
    pt_client_destroy(&c);
    /* Every dead-letter event is a message event of the chain: the verifier
       recomputes them (and their detail = header digest) like any other. */
    char args[1200];
    snprintf(args, sizeof args, "audit verify --db '%s' --broker-key '%s/broker/sign.pub'",
             pt_harness_conninfo(s_h), pt_harness_keys(s_h));
    CU_ASSERT_EQUAL(s_run("%s%s", args, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "verified: "));
    /* Not a terminal: no progress line (no carriage return, no escape code), and
       stderr is empty; one result line on stdout. */
    CU_ASSERT_STRING_EQUAL(s_err, "");
    CU_ASSERT_PTR_NULL(strchr(s_out, '\r'));
    CU_ASSERT_PTR_NULL(strchr(s_out, '\033'));
    CU_ASSERT_EQUAL(strchr(s_out, '\n'), s_out + strlen(s_out) - 1);
}

/* --- (g) an envelope that no longer decodes ------------------------------------------ */

static void test_unreadable_envelope(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    /* Three messages for HN-DINAF (offline), each its own correlation id. */
    char ids[3][PT_UUID_STR_BYTES];
    const char *tokens[3] = {"CASE-UR-1", "CASE-UR-2", "CASE-UR-3"};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(s_send(mx, "HN-DINAF", tokens[i], NULL, 0, ids[i], NULL), 0);
    pt_client_destroy(&mx);
    /* The first one's row is damaged: a length-delimited field cut short. */
    char sql[400];
    snprintf(sql, sizeof sql,
             "SET session_replication_role = replica; "
             "UPDATE messages SET envelope = '\\x0aff01'::bytea WHERE message_id = '%s'",
             ids[0]);
    CU_ASSERT_EQUAL_FATAL(pt_harness_sql_exec(s_h, NULL, sql), 0);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM messages WHERE message_id = '%s' "
                          "AND length(envelope) = 3",
                          ids[0]),
                    1);

    /* The recipient comes: it gets the other two, in submission order. */
    pt_client_t *hn = pt_harness_client(s_h, "HN-DINAF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hn);
    for (int i = 1; i < 3; i++) {
        pt_message_t *got = NULL;
        CU_ASSERT_EQUAL_FATAL(pt_client_recv(hn, 20000, &got), PT_CLIENT_OK);
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(pt_message_id(got), id);
        CU_ASSERT_STRING_EQUAL(id, ids[i]);
        CU_ASSERT_EQUAL(pt_client_ack(hn, pt_message_id(got)), PT_CLIENT_OK);
        pt_message_destroy(&got);
    }
    /* The damaged one is a dead letter with its reason, by the broker, in the trail. */
    CU_ASSERT_FATAL(s_wait_dead(ids[0]));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"reason\": \"unreadable\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"recipient\": \"HN-DINAF\""));
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM case_events WHERE case_token = 'CASE-UR-1' "
                          "AND kind = 'dead_letter:unreadable' AND actor = 'broker' "
                          "AND counterparty = 'HN-DINAF' AND message_id = '%s'",
                          ids[0]),
                    1);
    /* Offered once, not again on every pass: the log says it once, after more
       passes than it takes (the deliver stage sweeps every second). */
    pt_message_t *extra = NULL;
    CU_ASSERT_EQUAL(pt_client_recv(hn, 3000, &extra), PT_CLIENT_TIMEOUT);
    pt_message_destroy(&extra);
    CU_ASSERT_EQUAL(pt_harness_log_count(s_h, "does not decode", ids[0]), 1);
    CU_ASSERT_EQUAL(s_sql("SELECT count(*) FROM deliveries WHERE message_id = '%s' "
                          "AND state = 'dead' AND dead_reason = 'unreadable'",
                          ids[0]),
                    1);
    pt_client_destroy(&hn);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("deadletter", s_suite_init, s_suite_clean);
    CU_add_test(suite, "dead-lettered after max attempts", test_dead_lettered_after_attempts);
    CU_add_test(suite, "unknown ids change nothing", test_unknown_ids);
    CU_add_test(suite, "requeue: received and acked once", test_requeue);
    CU_add_test(suite, "drop, and expired messages", test_drop_and_expired);
    CU_add_test(suite, "retention in steps", test_retention_steps);
    CU_add_test(suite, "operator only; the log verifies", test_operator_only_and_verify);
    CU_add_test(suite, "an unreadable envelope", test_unreadable_envelope);
    return pt_cu_main();
}

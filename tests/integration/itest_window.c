/*  itest_window — the delivery window (issue 8; [broker] delivery_window, env
    PUENTE_DELIVERY_WINDOW) against a real broker, real PostgreSQL and real CURVE
    sockets: with a window of 3, a recipient that is connected but never
    acknowledges is offered exactly 3 of 8 waiting messages (their retries go on;
    the other 5 are never sent, so nothing piles up in the broker's outbound
    queue); a receiver that acknowledges then gets all 8, each acknowledged once. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu_main.h"
#include "harness.h"

#define S_WINDOW 3
#define S_MESSAGES 8

static pt_harness_t *s_h;

static int s_suite_init(void)
{
    if (setenv("PUENTE_DELIVERY_WINDOW", "3", 1) != 0)
        return 1;
    s_h = pt_harness_new_started("window", NULL);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* A referral.request from MX-DIF to GT-PGN on its own case (its own correlation
   id, so none waits behind another). 0 or -1. */
static int s_send(pt_client_t *from, int i)
{
    char case_token[32];
    snprintf(case_token, sizeof case_token, "CASE-WIN-%d", i);
    return pt_harness_send(from, "referral.request", "GT-PGN", case_token, NULL, 0, NULL, NULL) ==
                   PT_CLIENT_OK
               ? 0
               : -1;
}

static long s_count(const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries d JOIN messages m USING (message_id) WHERE "
             "m.case_token LIKE 'CASE-WIN-%%' AND %s",
             where);
    return pt_harness_sql_count(s_h, sql);
}

static void test_window(void)
{
    pt_client_t *mx = pt_harness_client(s_h, "MX-DIF", 0);
    pt_client_t *deaf = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deaf);
    for (int i = 0; i < S_MESSAGES; i++)
        CU_ASSERT_EQUAL_FATAL(s_send(mx, i), 0);
    /* The first offers go out... */
    long offered = 0;
    for (int i = 0; i < 150 && (offered = s_count("d.attempts >= 1")) < S_WINDOW; i++)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL(offered, S_WINDOW);
    /* ...and stay at the window through two retry rounds (1 s, then 2 s of backoff):
       the retries are made, nothing new is offered while none is acknowledged. */
    long retried = 0;
    for (int i = 0; i < 150 && (retried = s_count("d.attempts >= 2")) < S_WINDOW; i++)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL(retried, S_WINDOW);
    CU_ASSERT_EQUAL(s_count("d.attempts >= 1"), S_WINDOW);
    CU_ASSERT_EQUAL(s_count("d.state = 'pending' AND d.attempts = 0"), S_MESSAGES - S_WINDOW);
    pt_client_destroy(&deaf);

    /* A receiver that acknowledges: every message, once each. */
    pt_client_t *gt = pt_harness_client(s_h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    int got = 0;
    for (int i = 0; i < 4 * S_MESSAGES && got < S_MESSAGES; i++) {
        pt_message_t *msg = NULL;
        if (pt_client_recv(gt, 5000, &msg) != PT_CLIENT_OK)
            continue;
        got += strncmp(pt_message_header(msg)->case_token, "CASE-WIN-", 9) == 0;
        CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
    }
    CU_ASSERT_EQUAL(got, S_MESSAGES);
    long acked = 0;
    for (int i = 0; i < 150 && (acked = s_count("d.state = 'acked'")) < S_MESSAGES; i++)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL(acked, S_MESSAGES);
    pt_client_destroy(&gt);
    pt_client_destroy(&mx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("window", s_suite_init, s_suite_clean);
    if (!suite ||
        !CU_add_test(suite, "a stalled recipient is offered the window, then everything",
                     test_window)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

/*  test_bridge_store — puente-bridge's SQLite state: outbound rows queued with an
    Idempotency-Key in one transaction, key lookups, inbox ack states. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge_store.h"
#include "cu_main.h"

static char s_dir[64];

static pt_bridge_store_t *s_open(void)
{
    char err[256];
    pt_bridge_store_t *st = pt_bridge_store_open(s_dir, err, sizeof err);
    if (!st)
        fprintf(stderr, "\n  %s\n", err);
    return st;
}

static void test_queued_with_key(void)
{
    pt_bridge_store_t *st = s_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    const char *m1 = "0190f6a8-0000-7000-8000-000000000001";
    const char *m2 = "0190f6a8-0000-7000-8000-000000000002";
    const char *c1 = "0190f6a8-0000-7000-8000-0000000000c1";
    char hash[80], mid[64];
    CU_ASSERT_EQUAL(pt_bridge_idem_get(st, "k1", hash, sizeof hash, mid, sizeof mid), 0);
    CU_ASSERT_EQUAL(pt_bridge_out_queued(st, m1, c1, "referral.request", "CASE-1", "[\"GT-PGN\"]",
                                         "k1", "aa11"), 0);
    CU_ASSERT_EQUAL(pt_bridge_idem_get(st, "k1", hash, sizeof hash, mid, sizeof mid), 1);
    CU_ASSERT_STRING_EQUAL(hash, "aa11");
    CU_ASSERT_STRING_EQUAL(mid, m1);
    /* The same key again: refused as a whole, no second outbound row. */
    CU_ASSERT_EQUAL(pt_bridge_out_queued(st, m2, c1, "referral.request", "CASE-1", "[\"GT-PGN\"]",
                                         "k1", "bb22"), -1);
    json_t *row = NULL;
    CU_ASSERT_EQUAL(pt_bridge_out_get(st, m2, &row), 0);
    CU_ASSERT_EQUAL(pt_bridge_out_get(st, m1, &row), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "status")), "queued");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "id")), m1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "message_id")), m1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "correlation_id")), c1);
    json_decref(row);
    /* Without a key: just the row. */
    CU_ASSERT_EQUAL(pt_bridge_out_queued(st, m2, c1, "referral.accept", "CASE-1", "[\"GT-PGN\"]",
                                         NULL, NULL), 0);
    CU_ASSERT_EQUAL(pt_bridge_out_submitted(st, m2, m2, c1, "{\"stored_at\":\"x\"}"), 0);
    CU_ASSERT_EQUAL(pt_bridge_out_get(st, m2, &row), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "status")), "submitted");
    json_decref(row);
    pt_bridge_store_destroy(&st);
    CU_ASSERT_PTR_NULL(st);
    /* Durable: a reopened store still knows the key. */
    st = s_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pt_bridge_idem_get(st, "k1", hash, sizeof hash, mid, sizeof mid), 1);
    CU_ASSERT_STRING_EQUAL(mid, m1);
    pt_bridge_store_destroy(&st);
}

static void test_inbox_ack_state(void)
{
    pt_bridge_store_t *st = s_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    const char *m = "0190f6a8-0000-7000-8000-0000000000a1";
    CU_ASSERT_EQUAL(pt_bridge_inbox_ack_state(st, m), 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_put(st, m, NULL, NULL, "{}", 0), 1);
    CU_ASSERT_EQUAL(pt_bridge_inbox_put(st, m, NULL, NULL, "{}", 0), 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_ack_state(st, m), 0);
    int already = -1;
    CU_ASSERT_EQUAL(pt_bridge_inbox_app_ack(st, m, &already), 1);
    CU_ASSERT_EQUAL(already, 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_ack_state(st, m), 1);
    CU_ASSERT_EQUAL(pt_bridge_inbox_broker_acked(st, m), 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_ack_state(st, m), 2);
    /* A redelivery after a lost broker ack puts it back in the pending list. */
    char ids[4][37];
    CU_ASSERT_EQUAL(pt_bridge_inbox_pending_acks(st, ids, 4), 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_broker_ack_reset(st, m), 0);
    CU_ASSERT_EQUAL(pt_bridge_inbox_ack_state(st, m), 1);
    CU_ASSERT_EQUAL(pt_bridge_inbox_pending_acks(st, ids, 4), 1);
    CU_ASSERT_STRING_EQUAL(ids[0], m);
    pt_bridge_store_destroy(&st);
}

int main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/test_bridge_store.XXXXXX");
    if (!mkdtemp(s_dir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("bridge_store", NULL, NULL);
    CU_add_test(s, "queued rows and Idempotency-Keys", test_queued_with_key);
    CU_add_test(s, "inbox ack states", test_inbox_ack_state);
    int status = pt_cu_main();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
    return status;
}

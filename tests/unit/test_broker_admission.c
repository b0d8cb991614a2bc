/*  Unit tests for admission (the broker's submission rate and queue quota). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "admission.h"
#include "cu_main.h"

static void test_token_bucket(void)
{
    pt_admission_config_t config = {.submit_rate = 10, .submit_burst = 5, .queue_quota = 0};
    pt_admission_t *a = pt_admission_new(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    int64_t t = 1000000, retry = -1;
    /* A full bucket at first sight: the burst, then refused. */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t, &retry), 1);
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t, &retry), 0);
    CU_ASSERT(retry > 0 && retry <= 101); /* one token at 10/s: 100 ms */
    /* Another organisation has its own bucket. */
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "GT-PGN", t, NULL), 1);
    /* 250 ms later: 2.5 tokens, so two. */
    t += 250;
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t, NULL), 1);
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t, NULL), 1);
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t, &retry), 0);
    CU_ASSERT(retry > 0 && retry <= 51); /* half a token left: 50 ms */
    /* A long pause refills to the burst, not beyond. */
    t += 60000;
    int taken = 0;
    while (pt_admission_submit_take(a, "MX-DIF", t, NULL))
        taken++;
    CU_ASSERT_EQUAL(taken, 5);
    /* A clock that goes back takes nothing away and gives nothing. */
    CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", t - 5000, NULL), 0);
    pt_admission_destroy(&a);
    CU_ASSERT_PTR_NULL(a);
}

static void test_no_limits(void)
{
    pt_admission_config_t config = {0};
    pt_admission_t *a = pt_admission_new(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (int i = 0; i < 10000; i++)
        CU_ASSERT_EQUAL(pt_admission_submit_take(a, "MX-DIF", 1, NULL), 1);
    CU_ASSERT_EQUAL(pt_admission_queue_enabled(a), 0);
    const char *to[1] = {"GT-PGN"};
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(pt_admission_queue_admit(a, to, 1, NULL, NULL), 1);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "GT-PGN"), 0);
    /* Identities too long to be an organisation are admitted (fail open). */
    pt_admission_config_t rate = {.submit_rate = 1, .submit_burst = 1};
    pt_admission_t *b = pt_admission_new(&rate);
    char long_id[64];
    memset(long_id, 'X', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(pt_admission_submit_take(b, long_id, 1, NULL), 1);
    pt_admission_destroy(&b);
    pt_admission_destroy(&a);
    pt_admission_destroy(&a); /* no-op on NULL */
}

static void test_queue_quota(void)
{
    pt_admission_config_t config = {.queue_quota = 3};
    pt_admission_t *a = pt_admission_new(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(pt_admission_queue_enabled(a), 1);
    const char *one[1] = {"GT-PGN"};
    const char *two[2] = {"HN-DINAF", "GT-PGN"};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(pt_admission_queue_admit(a, one, 1, NULL, NULL), 1);
    const char *full = NULL;
    int64_t depth = 0;
    CU_ASSERT_EQUAL(pt_admission_queue_admit(a, one, 1, &full, &depth), 0);
    CU_ASSERT_STRING_EQUAL(full, "GT-PGN");
    CU_ASSERT_EQUAL(depth, 3);
    /* All or nothing: HN-DINAF is not counted when GT-PGN is full. */
    CU_ASSERT_EQUAL(pt_admission_queue_admit(a, two, 2, &full, NULL), 0);
    CU_ASSERT_STRING_EQUAL(full, "GT-PGN");
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "HN-DINAF"), 0);
    /* An ack frees a place; a release undoes an admit. */
    pt_admission_queue_acked(a, "GT-PGN");
    CU_ASSERT_EQUAL(pt_admission_queue_admit(a, two, 2, NULL, NULL), 1);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "HN-DINAF"), 1);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "GT-PGN"), 3);
    pt_admission_queue_release(a, two, 2);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "HN-DINAF"), 0);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "GT-PGN"), 2);
    /* Counted without a check (withdrawals), even beyond the quota. */
    pt_admission_queue_count(a, one, 1);
    pt_admission_queue_count(a, one, 1);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "GT-PGN"), 4);
    /* Never below zero. */
    for (int i = 0; i < 10; i++)
        pt_admission_queue_acked(a, "HN-DINAF");
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "HN-DINAF"), 0);
    pt_admission_queue_acked(a, "US-ORR"); /* unknown: nothing */
    /* Resynchronisation: everything to 0, then the rows. */
    pt_admission_queue_reset(a);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "GT-PGN"), 0);
    pt_admission_queue_set(a, "US-ORR", 7);
    CU_ASSERT_EQUAL(pt_admission_queue_depth(a, "US-ORR"), 7);
    const char *us[1] = {"US-ORR"};
    CU_ASSERT_EQUAL(pt_admission_queue_admit(a, us, 1, NULL, NULL), 0);
    pt_admission_destroy(&a);
}

static void test_many_organisations(void)
{
    pt_admission_config_t config = {.submit_rate = 1, .submit_burst = 2, .queue_quota = 1};
    pt_admission_t *a = pt_admission_new(&config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* Beyond the initial table: every organisation keeps its own state. */
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "XX-ORG%d", i);
        const char *to[1] = {id};
        CU_ASSERT_EQUAL(pt_admission_submit_take(a, id, 5, NULL), 1);
        CU_ASSERT_EQUAL(pt_admission_queue_admit(a, to, 1, NULL, NULL), 1);
    }
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "XX-ORG%d", i);
        const char *to[1] = {id};
        ok &= pt_admission_submit_take(a, id, 5, NULL) == 1;
        ok &= pt_admission_submit_take(a, id, 5, NULL) == 0;
        ok &= pt_admission_queue_admit(a, to, 1, NULL, NULL) == 0;
        ok &= pt_admission_queue_depth(a, id) == 1;
    }
    CU_ASSERT(ok);
    pt_admission_destroy(&a);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker_admission", NULL, NULL);
    if (!suite || !CU_add_test(suite, "token bucket per organisation", test_token_bucket) ||
        !CU_add_test(suite, "limits off; over-long ids fail open", test_no_limits) ||
        !CU_add_test(suite, "queue quota: admit, release, ack, resync", test_queue_quota) ||
        !CU_add_test(suite, "a thousand organisations", test_many_organisations)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

/*  test_key_window — the validity rule of key sets (proto/pt_key_window.c), the
    one the broker's verify stage, the SDK and `puente audit verify` share. */
#include <CUnit/Basic.h>

#include "pt_key_window.h"
#include "cu_main.h"

#define T0 1760000000000LL /* registration of the set */
#define DAY (86400LL * 1000)

static void test_current_set(void)
{
    pt_key_window_t w = {.valid_from_ms = T0};
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0, T0), PT_KEY_WINDOW_OK);
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 400 * DAY, T0 + 400 * DAY), PT_KEY_WINDOW_OK);
    /* Created a little before registration (clocks, outboxes): the set was registered
       when it was presented, so it is accepted. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 - 60000, T0 + 1), PT_KEY_WINDOW_OK);
    /* Presented before registration: not yet valid. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 - 2, T0 - 1), PT_KEY_WINDOW_NOT_YET_VALID);
    /* A recipient does not know when the broker accepted it (at 0). */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 - 2, 0), PT_KEY_WINDOW_OK);
    CU_ASSERT_EQUAL(pt_key_window_check(NULL, T0, T0), PT_KEY_WINDOW_NOT_YET_VALID);
}

static void test_replaced_set(void)
{
    /* Rotated at T0 + 10 days with a 7-day overlap. */
    pt_key_window_t w = {.valid_from_ms = T0, .valid_until_ms = T0 + 17 * DAY};
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 16 * DAY, T0 + 16 * DAY), PT_KEY_WINDOW_OK);
    /* Signed inside the window, submitted after it (an outbox): accepted. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 17 * DAY - 1, T0 + 30 * DAY), PT_KEY_WINDOW_OK);
    /* Created at or after the end: refused, whenever presented. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 17 * DAY, T0 + 17 * DAY), PT_KEY_WINDOW_REPLACED);
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 18 * DAY, T0 + 16 * DAY), PT_KEY_WINDOW_REPLACED);
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 18 * DAY, 0), PT_KEY_WINDOW_REPLACED);
}

static void test_revoked_set(void)
{
    pt_key_window_t w = {.valid_from_ms = T0, .revoked_at_ms = T0 + 5 * DAY};
    /* Before the revocation time: accepted. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + DAY, T0 + DAY), PT_KEY_WINDOW_OK);
    /* Presented from the revocation time on: refused, even if created before. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + DAY, T0 + 5 * DAY), PT_KEY_WINDOW_REVOKED);
    /* Dated after the revocation (a backdated revocation, or a forged date): refused. */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 5 * DAY, T0 + 4 * DAY), PT_KEY_WINDOW_REVOKED);
    /* A stored message signed before it stays verifiable for an auditor (at = stored time)
       and a recipient (at unknown). */
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + DAY, T0 + DAY + 5), PT_KEY_WINDOW_OK);
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + DAY, 0), PT_KEY_WINDOW_OK);
    CU_ASSERT_EQUAL(pt_key_window_check(&w, T0 + 6 * DAY, 0), PT_KEY_WINDOW_REVOKED);
    /* Revoked inside an overlap: the earlier end counts. */
    pt_key_window_t both = {
        .valid_from_ms = T0, .valid_until_ms = T0 + 7 * DAY, .revoked_at_ms = T0 + 3 * DAY};
    CU_ASSERT_EQUAL(pt_key_window_check(&both, T0 + 4 * DAY, T0 + DAY), PT_KEY_WINDOW_REVOKED);
    CU_ASSERT_EQUAL(pt_key_window_check(&both, T0 + 2 * DAY, T0 + 2 * DAY), PT_KEY_WINDOW_OK);
}

static void test_admits(void)
{
    pt_key_window_t current = {.valid_from_ms = T0};
    pt_key_window_t replaced = {.valid_from_ms = T0, .valid_until_ms = T0 + DAY};
    pt_key_window_t revoked = {.valid_from_ms = T0, .revoked_at_ms = T0 + DAY};
    CU_ASSERT_TRUE(pt_key_window_admits(&current, T0));
    CU_ASSERT_FALSE(pt_key_window_admits(&current, T0 - 1));
    CU_ASSERT_TRUE(pt_key_window_admits(&replaced, T0 + DAY - 1));
    CU_ASSERT_FALSE(pt_key_window_admits(&replaced, T0 + DAY));
    CU_ASSERT_TRUE(pt_key_window_admits(&revoked, T0 + DAY - 1));
    CU_ASSERT_FALSE(pt_key_window_admits(&revoked, T0 + DAY));
    CU_ASSERT_FALSE(pt_key_window_admits(NULL, T0));
    CU_ASSERT_STRING_EQUAL(pt_key_window_result_str(PT_KEY_WINDOW_REVOKED), "revoked");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("key_window", NULL, NULL);
    CU_add_test(suite, "current set", test_current_set);
    CU_add_test(suite, "replaced set: created time against the window", test_replaced_set);
    CU_add_test(suite, "revoked set: created and presented time", test_revoked_set);
    CU_add_test(suite, "CURVE admission", test_admits);
    return pt_cu_main();
}

/*  test_broker_fanout — the fan-out set of a case and pending acknowledgements,
    computed from trail events (broker/fanout.c). */
#include <string.h>

#include <CUnit/Basic.h>

#include "fanout.h"
#include "cu_main.h"

static const uint8_t s_ref[16] = {1};
static const uint8_t s_withdraw[16] = {2};

/* MX-DIF referred the case to GT-PGN and HN-DINAF, then withdrew consent. */
static pt_fanout_t *s_case(void)
{
    pt_fanout_t *f = pt_fanout_new();
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(pt_fanout_add_event(f, "submitted", "referral.request", s_ref, "MX-DIF", "GT-PGN"), 0);
    CU_ASSERT_EQUAL(pt_fanout_add_event(f, "stored", "referral.request", s_ref, "MX-DIF", "GT-PGN"), 0);
    CU_ASSERT_EQUAL(pt_fanout_add_event(f, "stored", "tracing.request", s_ref, "MX-DIF", "HN-DINAF,GT-PGN"), 0);
    CU_ASSERT_EQUAL(pt_fanout_add_event(f, "acknowledged", "referral.request", s_ref, "GT-PGN", "MX-DIF"), 0);
    return f;
}

static void test_parties(void)
{
    pt_fanout_t *f = s_case();
    CU_ASSERT_EQUAL(pt_fanout_party_count(f), 3);
    CU_ASSERT_STRING_EQUAL(pt_fanout_party_at(f, 0), "MX-DIF");
    CU_ASSERT_STRING_EQUAL(pt_fanout_party_at(f, 1), "GT-PGN");
    CU_ASSERT_STRING_EQUAL(pt_fanout_party_at(f, 2), "HN-DINAF");
    CU_ASSERT_PTR_NULL(pt_fanout_party_at(f, 3));
    CU_ASSERT_TRUE(pt_fanout_is_party(f, "HN-DINAF"));
    CU_ASSERT_FALSE(pt_fanout_is_party(f, "US-ORR"));
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 0);   /* no withdrawal yet */
    pt_fanout_destroy(&f);
    CU_ASSERT_PTR_NULL(f);
    pt_fanout_destroy(&f);
}

static void test_check(void)
{
    pt_fanout_t *f = s_case();
    pt_verdict_t v = {0};
    const char *both[] = {"GT-PGN", "HN-DINAF"};
    const char *one[] = {"GT-PGN"};
    const char *stranger[] = {"GT-PGN", "HN-DINAF", "US-ORR"};
    CU_ASSERT_EQUAL(pt_fanout_check(f, "MX-DIF", both, 2, &v), 0);
    CU_ASSERT_EQUAL(pt_fanout_check(f, "MX-DIF", one, 1, &v),
                    PUENTE__V1__REJECT_CODE__REJECT_FANOUT_INCOMPLETE);
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, "HN-DINAF"));
    CU_ASSERT_EQUAL(pt_fanout_check(f, "MX-DIF", stranger, 3, &v),
                    PUENTE__V1__REJECT_CODE__REJECT_NOT_PERMITTED);
    CU_ASSERT_EQUAL(pt_fanout_check(f, "US-ORR", both, 2, &v),
                    PUENTE__V1__REJECT_CODE__REJECT_NOT_PERMITTED);
    /* From a recipient: it must reach the original sender and the other recipient. */
    const char *others[] = {"MX-DIF", "HN-DINAF"};
    CU_ASSERT_EQUAL(pt_fanout_check(f, "GT-PGN", others, 2, &v), 0);
    CU_ASSERT_EQUAL(pt_fanout_check(f, "GT-PGN", one + 0, 0, &v),
                    PUENTE__V1__REJECT_CODE__REJECT_FANOUT_INCOMPLETE);
    pt_fanout_destroy(&f);
}

static void test_pending(void)
{
    pt_fanout_t *f = s_case();
    CU_ASSERT_TRUE(pt_fanout_type("consent.withdraw"));
    CU_ASSERT_TRUE(pt_fanout_type("case.erasure_request"));
    CU_ASSERT_FALSE(pt_fanout_type("referral.revoke"));
    CU_ASSERT_FALSE(pt_fanout_type(NULL));
    pt_fanout_add_event(f, "stored", "consent.withdraw", s_withdraw, "MX-DIF", "GT-PGN,HN-DINAF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 2);
    CU_ASSERT_STRING_EQUAL(pt_fanout_pending_at(f, 0), "GT-PGN");
    CU_ASSERT_STRING_EQUAL(pt_fanout_pending_at(f, 1), "HN-DINAF");
    /* An ack of another message does not count. */
    pt_fanout_add_event(f, "acknowledged", "referral.request", s_ref, "HN-DINAF", "MX-DIF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 2);
    pt_fanout_add_event(f, "acknowledged", "consent.withdraw", s_withdraw, "GT-PGN", "MX-DIF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 1);
    CU_ASSERT_STRING_EQUAL(pt_fanout_pending_at(f, 0), "HN-DINAF");
    CU_ASSERT_PTR_NULL(pt_fanout_pending_at(f, 1));
    pt_fanout_add_event(f, "acknowledged", "consent.withdraw", s_withdraw, "HN-DINAF", "MX-DIF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 0);
    pt_fanout_destroy(&f);
}

/* A referral revocation is not fanned out (it is a lifecycle step to the
   referral's recipient) but its acknowledgement is tracked like a withdrawal's. */
static void test_revoke_tracked(void)
{
    static const uint8_t revoke[16] = {3};
    CU_ASSERT_TRUE(pt_fanout_tracked("referral.revoke"));
    CU_ASSERT_TRUE(pt_fanout_tracked("consent.withdraw"));
    CU_ASSERT_TRUE(pt_fanout_tracked("case.erasure_request"));
    CU_ASSERT_FALSE(pt_fanout_tracked("referral.request"));
    CU_ASSERT_FALSE(pt_fanout_tracked(NULL));
    pt_fanout_t *f = s_case();
    pt_fanout_add_event(f, "stored", "referral.revoke", revoke, "MX-DIF", "GT-PGN");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 1);
    CU_ASSERT_STRING_EQUAL(pt_fanout_pending_at(f, 0), "GT-PGN");
    /* "delivered" is not an acknowledgement. */
    pt_fanout_add_event(f, "delivered", "referral.revoke", revoke, "GT-PGN", "MX-DIF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 1);
    pt_fanout_add_event(f, "acknowledged", "referral.revoke", revoke, "GT-PGN", "MX-DIF");
    CU_ASSERT_EQUAL(pt_fanout_pending_count(f), 0);
    pt_fanout_destroy(&f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker_fanout", NULL, NULL);
    CU_add_test(suite, "parties of a case", test_parties);
    CU_add_test(suite, "fan-out check", test_check);
    CU_add_test(suite, "pending acknowledgements", test_pending);
    CU_add_test(suite, "referral revocation acknowledgements", test_revoke_tracked);
    return pt_cu_main();
}

/*  test_notice — the signed bytes of broker notices (proto/pt_notice.c). */
#include <CUnit/Basic.h>
#include <string.h>

#include "pt_notice.h"
#include "cu_main.h"

static uint8_t s_corr[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void s_fill(Puente__V1__Notice *n)
{
    puente__v1__notice__init(n);
    n->notice_id = 0x0102030405060708ULL;
    n->kind = "overdue";
    n->case_token = "CASE-1";
    n->correlation_id = (ProtobufCBinaryData){16, s_corr};
    n->message_type = "referral.request";
    n->due_at_ms = 1760000000000LL;
    n->created_at_ms = 1760000001000LL;
}

static void test_layout(void)
{
    Puente__V1__Notice n;
    s_fill(&n);
    uint8_t out[PT_NOTICE_SIGNED_MAX];
    size_t len = pt_notice_signed_bytes(&n, out, sizeof out);
    /* 8 + (2+7) + (2+6) + 16 + (2+16) + 8 + 8 */
    CU_ASSERT_EQUAL_FATAL(len, 75);
    static const uint8_t head[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 7, 'o', 'v', 'e', 'r', 'd', 'u', 'e',
                                   0, 6, 'C', 'A', 'S', 'E', '-', '1'};
    CU_ASSERT_EQUAL(memcmp(out, head, sizeof head), 0);
    CU_ASSERT_EQUAL(memcmp(out + sizeof head, s_corr, 16), 0);
    CU_ASSERT_EQUAL(out[len - 1], (uint8_t)(1760000001000LL & 0xff));
    /* Too small a buffer or a bad correlation id: 0, never an overrun. */
    CU_ASSERT_EQUAL(pt_notice_signed_bytes(&n, out, 74), 0);
    n.correlation_id.len = 15;
    CU_ASSERT_EQUAL(pt_notice_signed_bytes(&n, out, sizeof out), 0);
}

static void test_sign_verify_tamper(void)
{
    pt_sign_key_t *broker = pt_sign_key_generate();
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    Puente__V1__Notice n;
    s_fill(&n);
    uint8_t sig[PT_ED25519_SIG_BYTES];
    CU_ASSERT_EQUAL_FATAL(pt_notice_sign(broker, &n, sig), 0);
    n.broker_signature = (ProtobufCBinaryData){sizeof sig, sig};
    CU_ASSERT_EQUAL(pt_notice_verify(broker, &n), 0);
    CU_ASSERT_EQUAL(pt_notice_verify(other, &n), -1);
    n.due_at_ms++;
    CU_ASSERT_EQUAL(pt_notice_verify(broker, &n), -1);
    n.due_at_ms--;
    n.case_token = "CASE-2";
    CU_ASSERT_EQUAL(pt_notice_verify(broker, &n), -1);
    n.case_token = "CASE-1";
    n.broker_signature.len = 63;
    CU_ASSERT_EQUAL(pt_notice_verify(broker, &n), -1);
    n.broker_signature.len = 64;
    /* A receipt signature over the same bytes is not a notice signature. */
    uint8_t bytes[PT_NOTICE_SIGNED_MAX];
    size_t len = pt_notice_signed_bytes(&n, bytes, sizeof bytes);
    CU_ASSERT_EQUAL(pt_sign(broker, PT_DOMAIN_RECEIPT, bytes, len, sig), 0);
    CU_ASSERT_EQUAL(pt_notice_verify(broker, &n), -1);
    CU_ASSERT_EQUAL(pt_notice_verify(NULL, &n), -1);
    pt_sign_key_destroy(&other);
    pt_sign_key_destroy(&broker);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("notice", NULL, NULL);
    CU_add_test(suite, "signed byte layout", test_layout);
    CU_add_test(suite, "sign, verify, tamper", test_sign_verify_tamper);
    return pt_cu_main();
}

/*  test_audit_query — the bytes an auditor signs for an AuditQuery
    (proto/pt_audit_query.c): exact layout, sign/verify, every field covered. */
#include <CUnit/Basic.h>
#include <string.h>

#include "cu_main.h"
#include "pt_audit_query.h"

static uint8_t s_nonce[16] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                              0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};

static void s_fill(Puente__V1__AuditQuery *q)
{
    puente__v1__audit_query__init(q);
    q->request_id = 0x0102030405060708ULL;
    q->signed_at_ms = 1760000000000LL;
    q->nonce = (ProtobufCBinaryData){16, s_nonce};
    q->kind = "items";
    q->case_token = "";
    q->org_id = "GT-PGN";
    q->from_ms = 1;
    q->until_ms = 2;
    q->lifecycle_kind = "referral";
    q->state = "";
    q->older_than_ms = 2592000000LL;
    q->limit = 50;
    q->after = "7";
}

static void test_layout(void)
{
    Puente__V1__AuditQuery q;
    s_fill(&q);
    uint8_t out[PT_AUDIT_QUERY_SIGNED_MAX];
    size_t len = pt_audit_query_signed_bytes(&q, out, sizeof out);
    /* 8 + 8 + (2+16) + (2+5) + (2+0) + (2+6) + 8 + 8 + (2+8) + (2+0) + 8 + 4 + (2+1) */
    CU_ASSERT_EQUAL_FATAL(len, 94);
    static const uint8_t head[] = {1, 2,    3,    4,    5,    6,    7,    8, 0,
                                   0, 0x01, 0x99, 0xc8, 0x2c, 0xc0, 0x00, 0, 16};
    CU_ASSERT_EQUAL(memcmp(out, head, sizeof head), 0);
    CU_ASSERT_EQUAL(memcmp(out + 18, s_nonce, 16), 0);
    static const uint8_t mid[] = {0,   5,   'i', 't', 'e', 'm', 's', 0, 0, 0, 6,
                                  'G', 'T', '-', 'P', 'G', 'N', 0,   0, 0, 0, 0,
                                  0,   0,   1,   0,   0,   0,   0,   0, 0, 0, 2};
    CU_ASSERT_EQUAL(memcmp(out + 34, mid, sizeof mid), 0);
    static const uint8_t tail[] = {0, 0, 0, 0, 0x9a, 0x7e, 0xc8, 0x00, 0, 0, 0, 50, 0, 1, '7'};
    CU_ASSERT_EQUAL(memcmp(out + len - sizeof tail, tail, sizeof tail), 0);
    /* Too small a buffer: 0, never an overrun. */
    CU_ASSERT_EQUAL(pt_audit_query_signed_bytes(&q, out, 93), 0);
}

static void test_sign_verify_tamper(void)
{
    pt_sign_key_t *auditor = pt_sign_key_generate();
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(auditor);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    Puente__V1__AuditQuery q;
    s_fill(&q);
    uint8_t nonce[16], sig[64];
    CU_ASSERT_EQUAL_FATAL(pt_audit_query_sign(auditor, &q, 1760000000123LL, nonce, sig), 0);
    CU_ASSERT_EQUAL(q.signed_at_ms, 1760000000123LL);
    CU_ASSERT_EQUAL(q.nonce.len, 16);
    CU_ASSERT_EQUAL(q.signature.len, 64);
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &q), 0);
    CU_ASSERT_EQUAL(pt_audit_query_verify(other, &q), -1);
    /* Every field is covered. */
    Puente__V1__AuditQuery t = q;
    t.request_id++;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.signed_at_ms++;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.kind = "trail";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.case_token = "CASE-1";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.org_id = "GT-PGM";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.until_ms = 3;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.state = "submitted";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.older_than_ms = 0;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.limit = 51;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.after = "8";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    /* A field moved from one string to the next is not the same query. */
    t = q;
    t.lifecycle_kind = "";
    t.state = "referral";
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    uint8_t flipped[16];
    memcpy(flipped, nonce, 16);
    flipped[0] ^= 1;
    t = q;
    t.nonce.data = flipped;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    /* Unsigned, short signature, short nonce: refused without reading past them. */
    t = q;
    t.signature.len = 0;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.signature.len = 63;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    t = q;
    t.nonce.len = 15;
    CU_ASSERT_EQUAL(pt_audit_query_verify(auditor, &t), -1);
    pt_sign_key_destroy(&auditor);
    pt_sign_key_destroy(&other);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("audit_query", NULL, NULL);
    CU_add_test(s, "signed bytes: exact layout", test_layout);
    CU_add_test(s, "sign, verify, every field covered", test_sign_verify_tamper);
    return pt_cu_main();
}

/*  Unit tests for pt_trail: the per-case hash chain format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "pt_trail.h"
#include "cu_main.h"

/* Known answers, computed independently of this code with Python's hashlib:

    import hashlib, struct
    def lp(b): return struct.pack('>I', len(b)) + b
    detail = hashlib.sha256(b'header').digest()
    m = (b'puente.v1 event\x00' + bytes(32) + struct.pack('>Q', 1) + struct.pack('>q', 1700000000123)
         + lp(b'submitted') + lp(b'ct-0001') + lp(b'MX-DIF') + lp(b'GT-PGN')
         + lp(b'referral.request') + lp(bytes(range(16))) + lp(detail))
    h1 = hashlib.sha256(m).hexdigest()
    m2 = (b'puente.v1 event\x00' + bytes.fromhex(h1) + struct.pack('>Q', 2)
          + struct.pack('>q', 1700000000456) + lp(b'note') + lp(b'ct-0001') + lp(b'MX-DIF')
          + lp(b'') + lp(b'') + lp(b'') + lp(b''))
    h2 = hashlib.sha256(m2).hexdigest()
*/
static const char *s_detail_hex = "1e0584a25d9f43bf5cbd0aec01eb1af2220ed085b4e7f1837b0d89958cae353a";
static const char *s_h1_hex = "4c209e4e3d8df71742ec00a6338d63b14605fcced181355ccd671e846e581ab4";
static const char *s_h2_hex = "56378fd92797a97926fe41038dda2bc3901bf74885c107a3a51c8c84385ad81f";

static void s_unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned int byte = 0;
        sscanf(hex + 2 * i, "%2x", &byte);
        out[i] = (uint8_t)byte;
    }
}

static uint8_t s_zero[32];
static uint8_t s_mid[16];
static uint8_t s_detail[32];

static pt_trail_event_t s_first_event(void)
{
    pt_trail_event_t ev = {
        .seq = 1,
        .at_ms = 1700000000123LL,
        .kind = "submitted",
        .case_token = "ct-0001",
        .actor = "MX-DIF",
        .counterparty = "GT-PGN",
        .message_type = "referral.request",
        .message_id = s_mid,
        .detail = s_detail,
        .detail_len = sizeof s_detail,
    };
    return ev;
}

static int s_init(void)
{
    for (int i = 0; i < 16; i++)
        s_mid[i] = (uint8_t)i;
    s_unhex(s_detail_hex, s_detail, 32);
    return 0;
}

static void test_known_answer(void)
{
    uint8_t expect[32], out[32];
    pt_trail_event_t ev = s_first_event();
    s_unhex(s_h1_hex, expect, 32);
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, out), 0);
    CU_ASSERT_EQUAL(memcmp(out, expect, 32), 0);
}

static void test_chain_known_answer(void)
{
    uint8_t h1[32], h2[32], expect[32];
    pt_trail_event_t ev = s_first_event();
    CU_ASSERT_EQUAL_FATAL(pt_trail_hash(s_zero, &ev, h1), 0);
    pt_trail_event_t note = {.seq = 2,
                             .at_ms = 1700000000456LL,
                             .kind = "note",
                             .case_token = "ct-0001",
                             .actor = "MX-DIF",
                             .counterparty = "",
                             .message_type = "",
                             .message_id = NULL,
                             .detail = NULL,
                             .detail_len = 0};
    CU_ASSERT_EQUAL(pt_trail_hash(h1, &note, h2), 0);
    s_unhex(s_h2_hex, expect, 32);
    CU_ASSERT_EQUAL(memcmp(h2, expect, 32), 0);

    /* The same event after another predecessor hashes differently. */
    uint8_t other[32];
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &note, other), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(other, h2, 32), 0);
}

static void test_deterministic(void)
{
    uint8_t a[32], b[32];
    pt_trail_event_t ev = s_first_event();
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, a), 0);
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, b), 0);
    CU_ASSERT_EQUAL(memcmp(a, b, 32), 0);
}

/* Changing any single field, or any byte of prev_hash, must change the hash. */
static void test_every_field_matters(void)
{
    uint8_t base[32], out[32];
    const pt_trail_event_t ev0 = s_first_event();
    CU_ASSERT_EQUAL_FATAL(pt_trail_hash(s_zero, &ev0, base), 0);

    uint8_t mid2[16], detail2[32];
    memcpy(mid2, s_mid, 16);
    mid2[15] ^= 1;
    memcpy(detail2, s_detail, 32);
    detail2[0] ^= 0x80;

    for (int field = 0; field < 11; field++) {
        pt_trail_event_t ev = ev0;
        switch (field) {
        case 0: ev.seq = 2; break;
        case 1: ev.at_ms = ev0.at_ms + 1; break;
        case 2: ev.kind = "stored"; break;
        case 3: ev.case_token = "ct-0002"; break;
        case 4: ev.actor = "GT-PGN"; break;
        case 5: ev.counterparty = "MX-DIF"; break;
        case 6: ev.message_type = "referral.accept"; break;
        case 7: ev.message_id = mid2; break;
        case 8: ev.detail = detail2; break;
        case 9: ev.detail_len = 31; break;
        case 10: ev.message_id = NULL; break;
        }
        CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, out), 0);
        if (memcmp(out, base, 32) == 0)
            printf("\n  field %d did not change the hash\n", field);
        CU_ASSERT_NOT_EQUAL(memcmp(out, base, 32), 0);
    }
    uint8_t prev[32] = {0};
    prev[31] = 1;
    CU_ASSERT_EQUAL(pt_trail_hash(prev, &ev0, out), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(out, base, 32), 0);
}

/* Length prefixes keep field boundaries: moving a byte between adjacent fields
   must not collide ("ab"+"c" vs "a"+"bc"). */
static void test_field_boundaries(void)
{
    uint8_t a[32], b[32];
    pt_trail_event_t ev = s_first_event();
    ev.actor = "MX-DIFG";
    ev.counterparty = "T-PGN";
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, a), 0);
    ev.actor = "MX-DIF";
    ev.counterparty = "GT-PGN";
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, b), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, 32), 0);
}

/* NULL message id hashes as lp("") (length 0): the same as NULL detail with
   detail_len 0, and different from a 16-byte all-zero id. NULL optional strings
   hash as "". */
static void test_null_handling(void)
{
    uint8_t with_null[32], with_zero_id[32], with_empty[32];
    uint8_t zero_id[16] = {0};
    pt_trail_event_t ev = s_first_event();
    ev.message_id = NULL;
    ev.detail = NULL;
    ev.detail_len = 0;
    ev.counterparty = NULL;
    ev.message_type = NULL;
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, with_null), 0);

    ev.counterparty = "";
    ev.message_type = "";
    ev.detail = s_detail;   /* pointer ignored when detail_len is 0 */
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, with_empty), 0);
    CU_ASSERT_EQUAL(memcmp(with_null, with_empty, 32), 0);

    ev.message_id = zero_id;
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, with_zero_id), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(with_null, with_zero_id, 32), 0);
}

static void test_bad_arguments(void)
{
    uint8_t out[32];
    memset(out, 0xAA, sizeof out);
    pt_trail_event_t ev = s_first_event();
    CU_ASSERT_EQUAL(pt_trail_hash(NULL, &ev, out), -1);
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, NULL, out), -1);
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, NULL), -1);
    ev.kind = NULL;
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, out), -1);
    ev = s_first_event();
    ev.case_token = NULL;
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, out), -1);
    ev = s_first_event();
    ev.detail = NULL;   /* detail_len 32 with no bytes */
    CU_ASSERT_EQUAL(pt_trail_hash(s_zero, &ev, out), -1);
    /* A failed call never leaves a plausible hash behind. */
    uint8_t zero[32] = {0};
    CU_ASSERT_EQUAL(memcmp(out, zero, 32), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("pt_trail", s_init, NULL);
    if (!suite || !CU_add_test(suite, "known answer", test_known_answer) ||
        !CU_add_test(suite, "chain known answer", test_chain_known_answer) ||
        !CU_add_test(suite, "deterministic", test_deterministic) ||
        !CU_add_test(suite, "every field matters", test_every_field_matters) ||
        !CU_add_test(suite, "field boundaries", test_field_boundaries) ||
        !CU_add_test(suite, "NULL handling", test_null_handling) ||
        !CU_add_test(suite, "bad arguments", test_bad_arguments)) {
        CU_cleanup_registry();
        return 2;
    }
    return pt_cu_main();
}

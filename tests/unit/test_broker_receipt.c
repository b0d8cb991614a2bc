/*  test_broker_receipt — broker/receipt.c: the receipts of one batch are signed
    over exactly the documented bytes
        "puente.v1 receipt" || 0x00 || message_id(16) || be64(stored_at_ms) ||
        header_sha256(32) || event_hash(32)
    (checked here with OpenSSL directly, not with proto/pt_receipt.c's own
    encoder), every field is covered by the signature, the frame carries the
    stored values, and only stored (OK / DUPLICATE) items are signed. */
#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "pt_crypto.h"
#include "pt_receipt.h"
#include "receipt.h"
#include "workers.h"
#include "cu_main.h"

static pt_sign_key_t *s_key;
static pt_workers_t *s_pool;

static int s_init(void)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(0xA0 + i);
    s_key = pt_sign_key_from_private(seed, sizeof seed);
    s_pool = pt_workers_new(2);
    return s_key && s_pool ? 0 : -1;
}

static int s_clean(void)
{
    pt_sign_key_destroy(&s_key);
    pt_workers_destroy(&s_pool);
    return 0;
}

/* The documented bytes, written out here field by field. */
static size_t s_documented(const uint8_t id[16], int64_t at, const uint8_t hs[32],
                           const uint8_t ev[32], uint8_t *out)
{
    static const char prefix[] = "puente.v1 receipt";
    size_t n = 0;
    memcpy(out, prefix, sizeof prefix); /* with its terminating 0x00 */
    n += sizeof prefix;
    memcpy(out + n, id, 16);
    n += 16;
    for (int i = 7; i >= 0; i--)
        out[n++] = (uint8_t)((uint64_t)at >> (8 * i));
    memcpy(out + n, hs, 32);
    n += 32;
    memcpy(out + n, ev, 32);
    n += 32;
    return n;
}

/* 1 if sig is a valid Ed25519 signature of msg by the test key (OpenSSL only). */
static int s_openssl_verifies(const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    uint8_t pub[PT_ED25519_PUBLIC_BYTES];
    pt_sign_key_public(s_key, pub);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = pkey && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

static void s_fill(pt_store_receipt_t *r, pt_store_result_t result, int64_t at, uint8_t seed,
                   int64_t leaf)
{
    memset(r, 0, sizeof *r);
    r->result = result;
    r->stored_at_ms = at;
    for (int i = 0; i < 32; i++) {
        r->header_sha256[i] = (uint8_t)(seed + i);
        r->event_hash[i] = (uint8_t)(0xF0 ^ (seed + 3 * i));
    }
    r->leaf_index = leaf;
}

static Puente__V1__Receipt *s_unpack(Puente__V1__BrokerFrame **frame_p, const uint8_t *buf,
                                     size_t len)
{
    *frame_p = puente__v1__broker_frame__unpack(NULL, len, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*frame_p);
    CU_ASSERT_EQUAL_FATAL((*frame_p)->body_case, PUENTE__V1__BROKER_FRAME__BODY_RECEIPT);
    return (*frame_p)->receipt;
}

static void test_signed_bytes_known_answer(void)
{
    pt_receipts_t *receipts = pt_receipts_new(s_key, s_pool, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(receipts);
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0x10 + i);
    pt_store_receipt_t stored[1];
    s_fill(&stored[0], PT_STORE_OK, 1795000000123LL, 0x33, 41);
    const uint8_t *ids[1] = {id};
    pt_receipts_sign(receipts, stored, ids, 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 0), 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_receipts_frame(receipts, 0, id, &stored[0], &buf, &len), 0);
    Puente__V1__BrokerFrame *frame = NULL;
    Puente__V1__Receipt *r = s_unpack(&frame, buf, len);
    CU_ASSERT_EQUAL(r->message_id.len, 16);
    CU_ASSERT_EQUAL(memcmp(r->message_id.data, id, 16), 0);
    CU_ASSERT_EQUAL(r->stored_at_ms, 1795000000123LL);
    CU_ASSERT_EQUAL(memcmp(r->header_sha256.data, stored[0].header_sha256, 32), 0);
    CU_ASSERT_EQUAL(memcmp(r->event_hash.data, stored[0].event_hash, 32), 0);
    CU_ASSERT_EQUAL(r->duplicate, 0);
    CU_ASSERT_EQUAL(r->in_log, 1);
    CU_ASSERT_EQUAL(r->leaf_index, 41);
    CU_ASSERT_EQUAL_FATAL(r->broker_signature.len, PT_ED25519_SIG_BYTES);

    /* Exactly the documented bytes: 18 + 16 + 8 + 32 + 32. */
    uint8_t doc[128];
    size_t doc_len =
        s_documented(id, 1795000000123LL, stored[0].header_sha256, stored[0].event_hash, doc);
    CU_ASSERT_EQUAL(doc_len, 18 + PT_RECEIPT_SIGNED_BYTES);
    CU_ASSERT_EQUAL(doc[17], 0x00);
    CU_ASSERT_EQUAL(doc[34], 0x00); /* be64: the top byte of the time first */
    CU_ASSERT_EQUAL(doc[41], (uint8_t)(1795000000123LL & 0xff));
    CU_ASSERT(s_openssl_verifies(doc, doc_len, r->broker_signature.data, r->broker_signature.len));
    /* Without the 0x00 after the prefix, or little-endian time: not what was signed. */
    uint8_t no_nul[128];
    memcpy(no_nul, doc, 17);
    memcpy(no_nul + 17, doc + 18, doc_len - 18);
    CU_ASSERT_FALSE(s_openssl_verifies(no_nul, doc_len - 1, r->broker_signature.data, 64));

    /* Each field is covered: a flipped bit anywhere in it fails. */
    static const struct {
        const char *field;
        size_t offset, len;
    } fields[] = {{"prefix", 0, 18},
                  {"message_id", 18, 16},
                  {"stored_at_ms", 34, 8},
                  {"header_sha256", 42, 32},
                  {"event_hash", 74, 32}};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        for (size_t at = fields[f].offset; at < fields[f].offset + fields[f].len; at++) {
            doc[at] ^= 0x01;
            int verifies = s_openssl_verifies(doc, doc_len, r->broker_signature.data, 64);
            if (verifies)
                fprintf(stderr, "a flip in %s (byte %zu) still verifies\n", fields[f].field, at);
            CU_ASSERT_FALSE(verifies);
            doc[at] ^= 0x01;
        }
    }
    CU_ASSERT(s_openssl_verifies(doc, doc_len, r->broker_signature.data, 64));

    /* The shared verifier agrees, and refuses each changed field. */
    const uint8_t *sig = r->broker_signature.data;
    pt_sign_key_t *pub = NULL;
    uint8_t raw[32];
    pt_sign_key_public(s_key, raw);
    pub = pt_sign_key_from_public(raw, 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    uint8_t other[32];
    memcpy(other, stored[0].header_sha256, 32);
    other[31] ^= 0x80;
    CU_ASSERT_EQUAL(pt_receipt_verify(pub, id, 16, 1795000000123LL, stored[0].header_sha256, 32,
                                      stored[0].event_hash, 32, sig, 64),
                    0);
    CU_ASSERT_NOT_EQUAL(pt_receipt_verify(pub, id, 16, 1795000000124LL, stored[0].header_sha256, 32,
                                          stored[0].event_hash, 32, sig, 64),
                        0);
    CU_ASSERT_NOT_EQUAL(pt_receipt_verify(pub, id, 16, 1795000000123LL, other, 32,
                                          stored[0].event_hash, 32, sig, 64),
                        0);
    CU_ASSERT_NOT_EQUAL(pt_receipt_verify(pub, id, 16, 1795000000123LL, stored[0].header_sha256, 32,
                                          other, 32, sig, 64),
                        0);
    uint8_t id2[16];
    memcpy(id2, id, 16);
    id2[0] ^= 1;
    CU_ASSERT_NOT_EQUAL(pt_receipt_verify(pub, id2, 16, 1795000000123LL, stored[0].header_sha256,
                                          32, stored[0].event_hash, 32, sig, 64),
                        0);
    pt_sign_key_destroy(&pub);
    puente__v1__broker_frame__free_unpacked(frame, NULL);
    free(buf);
    pt_receipts_destroy(&receipts);
    CU_ASSERT_PTR_NULL(receipts);
    pt_receipts_destroy(&receipts); /* no-op on NULL */
}

static void test_batch_signs_only_stored(void)
{
    enum { N = 5 };
    pt_receipts_t *receipts = pt_receipts_new(s_key, s_pool, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(receipts);
    uint8_t ids[N][16];
    const uint8_t *id_p[N];
    pt_store_receipt_t stored[N];
    pt_store_result_t results[N] = {PT_STORE_OK, PT_STORE_DUPLICATE, PT_STORE_CONFLICT,
                                    PT_STORE_ERROR, PT_STORE_OK};
    for (int k = 0; k < N; k++) {
        memset(ids[k], 0x40 + k, 16);
        id_p[k] = ids[k];
        s_fill(&stored[k], results[k], 1795000000000LL + k, (uint8_t)(k * 7), k == 4 ? -1 : k);
    }
    pt_receipts_sign(receipts, stored, id_p, N);
    int expect_signed[N] = {1, 1, 0, 0, 1};
    for (int k = 0; k < N; k++) {
        CU_ASSERT_EQUAL(pt_receipts_signed(receipts, (size_t)k), expect_signed[k]);
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = pt_receipts_frame(receipts, (size_t)k, ids[k], &stored[k], &buf, &len);
        CU_ASSERT_EQUAL(rc, expect_signed[k] ? 0 : -1);
        if (rc != 0) {
            CU_ASSERT_PTR_NULL(buf);
            continue;
        }
        Puente__V1__BrokerFrame *frame = NULL;
        Puente__V1__Receipt *r = s_unpack(&frame, buf, len);
        CU_ASSERT_EQUAL(r->duplicate, results[k] == PT_STORE_DUPLICATE);
        CU_ASSERT_EQUAL(r->in_log, k != 4);
        CU_ASSERT_EQUAL(r->leaf_index, k == 4 ? 0 : (uint64_t)k);
        uint8_t doc[128];
        size_t doc_len = s_documented(ids[k], stored[k].stored_at_ms, stored[k].header_sha256,
                                      stored[k].event_hash, doc);
        CU_ASSERT(
            s_openssl_verifies(doc, doc_len, r->broker_signature.data, r->broker_signature.len));
        puente__v1__broker_frame__free_unpacked(frame, NULL);
        free(buf);
    }
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, N), 0); /* past the capacity */
    /* A new batch forgets the previous one. */
    pt_receipts_sign(receipts, stored, id_p, 0);
    for (int k = 0; k < N; k++)
        CU_ASSERT_EQUAL(pt_receipts_signed(receipts, (size_t)k), 0);
    pt_receipts_destroy(&receipts);
    /* Without a pool: the same signatures on the caller's thread (Ed25519 is deterministic). */
    pt_receipts_t *alone = pt_receipts_new(s_key, NULL, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(alone);
    pt_receipts_sign(alone, stored, id_p, 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(alone, 0), 1);
    pt_receipts_destroy(&alone);
    CU_ASSERT_PTR_NULL(pt_receipts_new(s_key, NULL, 0));
    CU_ASSERT_PTR_NULL(pt_receipts_new(NULL, NULL, 1));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker receipt", s_init, s_clean);
    CU_add_test(suite, "signed bytes: known answer, every field covered",
                test_signed_bytes_known_answer);
    CU_add_test(suite, "a batch signs only stored items", test_batch_signs_only_stored);
    return pt_cu_main();
}

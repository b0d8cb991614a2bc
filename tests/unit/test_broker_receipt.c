/*  test_broker_receipt — broker/receipt.c: one broker signature per batch
    (issue 8). Each stored item's receipt is the leaf
        SHA-256(0x00 || "puente.v1 receipt" || 0x00 || message_id(16) ||
                be64(stored_at_ms) || header_sha256(32) || event_hash(32))
    of an RFC 6962 tree over the batch, and the broker signs
        "puente.v2 receipt batch" || 0x00 || be32(batch_size) || root(32)
    once. Checked here with OpenSSL directly (SHA-256, Ed25519) and an
    independent recursive RFC 6962 root, not with proto/pt_receipt.c's or
    pt_merkle.c's own encoders: every receipt of batches of 1, 2, 3, 5, 8 and 256
    verifies, a change to any byte of a leaf field, the path, batch_index,
    batch_size or the signature fails, a receipt does not verify under another
    batch's signature, only stored (OK / DUPLICATE) items are leaves, and a
    failed batch signature leaves every item unsigned. */
#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "pt_crypto.h"
#include "pt_receipt.h"
#include "receipt.h"
#include "cu_main.h"

static pt_sign_key_t *s_key;
static pt_sign_key_t *s_pub; /* the broker's public key alone, as clients hold it */

static int s_init(void)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(0xA0 + i);
    s_key = pt_sign_key_from_private(seed, sizeof seed);
    if (!s_key)
        return -1;
    uint8_t raw[PT_ED25519_PUBLIC_BYTES];
    pt_sign_key_public(s_key, raw);
    s_pub = pt_sign_key_from_public(raw, sizeof raw);
    return s_pub ? 0 : -1;
}

static int s_clean(void)
{
    pt_sign_key_destroy(&s_key);
    pt_sign_key_destroy(&s_pub);
    return 0;
}

/* The documented leaf bytes (before the 0x00 leaf prefix), field by field. */
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

static void s_sha256(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                     const uint8_t *c, size_t c_len, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, a, a_len) == 1 && EVP_DigestUpdate(ctx, b, b_len) == 1 &&
             EVP_DigestUpdate(ctx, c, c_len) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    CU_ASSERT_FATAL(ok && len == 32);
}

/* SHA-256(0x00 || documented bytes). */
static void s_leaf(const uint8_t id[16], int64_t at, const uint8_t hs[32], const uint8_t ev[32],
                   uint8_t out[32])
{
    static const uint8_t zero = 0x00;
    uint8_t doc[128];
    size_t len = s_documented(id, at, hs, ev, doc);
    s_sha256(&zero, 1, doc, len, NULL, 0, out);
}

/* MTH of RFC 6962 §2.1, recursively: split at the largest power of two < n. */
static void s_mth(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    static const uint8_t one = 0x01;
    uint8_t left[32], right[32];
    s_mth(leaves, k, left);
    s_mth(leaves + k, n - k, right);
    s_sha256(&one, 1, left, 32, right, 32, out);
}

/* "puente.v2 receipt batch" || 0x00 || be32(size) || root. */
static size_t s_batch_message(uint32_t size, const uint8_t root[32], uint8_t *out)
{
    static const char prefix[] = "puente.v2 receipt batch";
    memcpy(out, prefix, sizeof prefix);
    size_t n = sizeof prefix;
    out[n++] = (uint8_t)(size >> 24);
    out[n++] = (uint8_t)(size >> 16);
    out[n++] = (uint8_t)(size >> 8);
    out[n++] = (uint8_t)size;
    memcpy(out + n, root, 32);
    return n + 32;
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

/* Item k's receipt of the last batch, unpacked (free with frame). */
static Puente__V1__Receipt *s_receipt(pt_receipts_t *receipts, size_t k, const uint8_t *id,
                                      const pt_store_receipt_t *stored,
                                      Puente__V1__BrokerFrame **frame)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_receipts_frame(receipts, k, id, stored, &buf, &len), 0);
    Puente__V1__Receipt *r = s_unpack(frame, buf, len);
    free(buf);
    return r;
}

static void test_signed_bytes_known_answer(void)
{
    pt_receipts_t *receipts = pt_receipts_new(s_key, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(receipts);
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0x10 + i);
    pt_store_receipt_t stored[1];
    s_fill(&stored[0], PT_STORE_OK, 1795000000123LL, 0x33, 41);
    const uint8_t *ids[1] = {id};
    pt_receipts_sign(receipts, stored, ids, 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 0), 1);
    Puente__V1__BrokerFrame *frame = NULL;
    Puente__V1__Receipt *r = s_receipt(receipts, 0, id, &stored[0], &frame);
    CU_ASSERT_EQUAL(r->message_id.len, 16);
    CU_ASSERT_EQUAL(memcmp(r->message_id.data, id, 16), 0);
    CU_ASSERT_EQUAL(r->stored_at_ms, 1795000000123LL);
    CU_ASSERT_EQUAL(memcmp(r->header_sha256.data, stored[0].header_sha256, 32), 0);
    CU_ASSERT_EQUAL(memcmp(r->event_hash.data, stored[0].event_hash, 32), 0);
    CU_ASSERT_EQUAL(r->duplicate, 0);
    CU_ASSERT_EQUAL(r->in_log, 1);
    CU_ASSERT_EQUAL(r->leaf_index, 41);
    CU_ASSERT_EQUAL(r->format, 2);
    CU_ASSERT_EQUAL(r->batch_size, 1);
    CU_ASSERT_EQUAL(r->batch_index, 0);
    CU_ASSERT_EQUAL(r->n_batch_path, 0);
    CU_ASSERT_EQUAL_FATAL(r->broker_signature.len, PT_ED25519_SIG_BYTES);

    /* The leaf: exactly the documented bytes, 18 + 16 + 8 + 32 + 32. */
    uint8_t doc[128];
    size_t doc_len =
        s_documented(id, 1795000000123LL, stored[0].header_sha256, stored[0].event_hash, doc);
    CU_ASSERT_EQUAL(doc_len, 18 + PT_RECEIPT_SIGNED_BYTES);
    CU_ASSERT_EQUAL(doc[17], 0x00);
    CU_ASSERT_EQUAL(doc[34], 0x00); /* be64: the top byte of the time first */
    CU_ASSERT_EQUAL(doc[41], (uint8_t)(1795000000123LL & 0xff));
    uint8_t leaf[32];
    s_leaf(id, 1795000000123LL, stored[0].header_sha256, stored[0].event_hash, leaf);
    pt_merkle_hash_t shared;
    pt_receipt_leaf_hash(id, 1795000000123LL, stored[0].header_sha256, stored[0].event_hash,
                         shared);
    CU_ASSERT_EQUAL(memcmp(shared, leaf, 32), 0);

    /* One leaf: the root is the leaf. The signature is over the documented batch bytes. */
    uint8_t msg[64];
    size_t msg_len = s_batch_message(1, leaf, msg);
    CU_ASSERT_EQUAL(msg_len, 24 + 4 + 32);
    CU_ASSERT_EQUAL(msg[23], 0x00);
    CU_ASSERT_EQUAL(msg[27], 0x01); /* be32(1) */
    CU_ASSERT(s_openssl_verifies(msg, msg_len, r->broker_signature.data, 64));
    /* Not the format 1 bytes, nor the batch bytes without their 0x00, nor the
       leaf without its 0x00 prefix. */
    CU_ASSERT_FALSE(s_openssl_verifies(doc, doc_len, r->broker_signature.data, 64));
    uint8_t no_nul[64];
    memcpy(no_nul, msg, 23);
    memcpy(no_nul + 23, msg + 24, msg_len - 24);
    CU_ASSERT_FALSE(s_openssl_verifies(no_nul, msg_len - 1, r->broker_signature.data, 64));
    uint8_t bare[32];
    s_sha256(doc, doc_len, NULL, 0, NULL, 0, bare);
    s_batch_message(1, bare, no_nul);
    CU_ASSERT_FALSE(s_openssl_verifies(no_nul, msg_len, r->broker_signature.data, 64));
    /* Each byte of the signed message is covered. */
    size_t uncovered = 0;
    for (size_t at = 0; at < msg_len; at++) {
        msg[at] ^= 0x01;
        uncovered += (size_t)s_openssl_verifies(msg, msg_len, r->broker_signature.data, 64);
        msg[at] ^= 0x01;
    }
    CU_ASSERT_EQUAL(uncovered, 0);
    /* The shared verifier agrees. */
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, r, NULL), 0);

    puente__v1__broker_frame__free_unpacked(frame, NULL);
    pt_receipts_destroy(&receipts);
    CU_ASSERT_PTR_NULL(receipts);
    pt_receipts_destroy(&receipts); /* no-op on NULL */
}

/* Counts the changes to r that still verify (each must fail). */
static size_t s_tamper(Puente__V1__Receipt *r)
{
    size_t still = 0;
    ProtobufCBinaryData *fields[] = {&r->message_id, &r->header_sha256, &r->event_hash,
                                     &r->broker_signature};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (size_t at = 0; at < fields[f]->len; at++) {
            fields[f]->data[at] ^= 0x01;
            still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
            fields[f]->data[at] ^= 0x01;
        }
    for (int byte = 0; byte < 8; byte++) {
        r->stored_at_ms ^= (int64_t)1 << (8 * byte);
        still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
        r->stored_at_ms ^= (int64_t)1 << (8 * byte);
    }
    for (size_t p = 0; p < r->n_batch_path; p++)
        for (size_t at = 0; at < r->batch_path[p].len; at++) {
            r->batch_path[p].data[at] ^= 0x80;
            still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
            r->batch_path[p].data[at] ^= 0x80;
        }
    uint32_t index = r->batch_index, size = r->batch_size;
    const uint32_t indices[] = {index ^ 1, index + 1, index - 1, size, size - 1, 0};
    for (size_t i = 0; i < sizeof indices / sizeof indices[0]; i++) {
        if (indices[i] == index)
            continue;
        r->batch_index = indices[i];
        still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
    }
    r->batch_index = index;
    const uint32_t sizes[] = {size + 1,  size - 1, size * 2, 0, PT_RECEIPT_BATCH_MAX + 1u,
                              UINT32_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        r->batch_size = sizes[i];
        still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
    }
    r->batch_size = size;
    r->format = 1;
    still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
    r->format = 3;
    still += pt_receipt_verify_message(s_pub, r, NULL) == 0;
    r->format = 2;
    return still;
}

static void test_batch_sizes(void)
{
    const size_t sizes[] = {1, 2, 3, 5, 8, 256};
    pt_receipts_t *receipts = pt_receipts_new(s_key, 256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(receipts);
    uint8_t(*ids)[16] = calloc(256, 16);
    const uint8_t **id_p = calloc(256, sizeof *id_p);
    pt_store_receipt_t *stored = calloc(256, sizeof *stored);
    uint8_t(*leaves)[32] = calloc(256, 32);
    CU_ASSERT_FATAL(ids && id_p && stored && leaves);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        for (size_t k = 0; k < n; k++) {
            memset(ids[k], (int)(k * 13 + n), 16);
            ids[k][0] = (uint8_t)k;
            ids[k][1] = (uint8_t)n;
            id_p[k] = ids[k];
            s_fill(&stored[k], k % 4 == 3 ? PT_STORE_DUPLICATE : PT_STORE_OK,
                   1795000000000LL + (int64_t)(k * 7), (uint8_t)(k * 5 + n), (int64_t)(100 + k));
            s_leaf(ids[k], stored[k].stored_at_ms, stored[k].header_sha256, stored[k].event_hash,
                   leaves[k]);
        }
        uint8_t root[32], msg[64];
        s_mth((const uint8_t(*)[32])leaves, n, root);
        size_t msg_len = s_batch_message((uint32_t)n, root, msg);
        pt_receipts_sign(receipts, stored, id_p, n);
        uint8_t first_sig[64];
        size_t verified = 0, tampered = 0, tamper_checked = 0, shared_sig = 0;
        for (size_t k = 0; k < n; k++) {
            CU_ASSERT_EQUAL(pt_receipts_signed(receipts, k), 1);
            Puente__V1__BrokerFrame *frame = NULL;
            Puente__V1__Receipt *r = s_receipt(receipts, k, ids[k], &stored[k], &frame);
            CU_ASSERT_EQUAL(r->format, 2);
            CU_ASSERT_EQUAL(r->batch_size, n);
            CU_ASSERT_EQUAL(r->batch_index, k);
            CU_ASSERT_EQUAL(r->duplicate, k % 4 == 3);
            CU_ASSERT_EQUAL(r->leaf_index, 100 + k);
            /* The path length is the depth of leaf k: 8 for every leaf of 256. */
            if (n == 256)
                CU_ASSERT_EQUAL(r->n_batch_path, 8);
            if (n == 5)
                CU_ASSERT_EQUAL(r->n_batch_path, k == 4 ? 1 : 3);
            if (k == 0)
                memcpy(first_sig, r->broker_signature.data, 64);
            shared_sig += r->broker_signature.len == 64 &&
                          memcmp(r->broker_signature.data, first_sig, 64) == 0;
            verified += pt_receipt_verify_message(s_pub, r, NULL) == 0 &&
                        s_openssl_verifies(msg, msg_len, r->broker_signature.data, 64);
            if (n < 256 || k % 37 == 0 || k == n - 1) {
                tampered += s_tamper(r);
                tamper_checked++;
                CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, r, NULL), 0); /* restored */
            }
            puente__v1__broker_frame__free_unpacked(frame, NULL);
        }
        if (verified != n || shared_sig != n || tampered != 0)
            fprintf(stderr,
                    "batch of %zu: %zu verified, %zu share the signature, %zu tampered "
                    "still verify\n",
                    n, verified, shared_sig, tampered);
        CU_ASSERT_EQUAL(verified, n);
        CU_ASSERT_EQUAL(shared_sig, n);
        CU_ASSERT_EQUAL(tampered, 0);
        CU_ASSERT_EQUAL(tamper_checked, n < 256 ? n : 8);
    }
    pt_receipts_destroy(&receipts);
    free(leaves);
    free(stored);
    free(id_p);
    free(ids);
}

/* A receipt under another batch's signature (or path) does not verify. */
static void test_other_batch(void)
{
    enum { N = 3 };
    pt_receipts_t *a = pt_receipts_new(s_key, N);
    pt_receipts_t *b = pt_receipts_new(s_key, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint8_t ids_a[N][16], ids_b[N][16];
    const uint8_t *pa[N], *pb[N];
    pt_store_receipt_t sa[N], sb[N];
    for (int k = 0; k < N; k++) {
        memset(ids_a[k], 0x20 + k, 16);
        memset(ids_b[k], 0x60 + k, 16);
        pa[k] = ids_a[k];
        pb[k] = ids_b[k];
        s_fill(&sa[k], PT_STORE_OK, 1795000000000LL, (uint8_t)k, k);
        s_fill(&sb[k], PT_STORE_OK, 1795000000000LL, (uint8_t)(k + 9), k + 3);
    }
    /* Batch b shares item 0 with a: the same leaf in a different tree. */
    memcpy(ids_b[0], ids_a[0], 16);
    sb[0] = sa[0];
    pt_receipts_sign(a, sa, pa, N);
    pt_receipts_sign(b, sb, pb, N);
    Puente__V1__BrokerFrame *fa = NULL, *fb = NULL, *fb0 = NULL;
    Puente__V1__Receipt *ra = s_receipt(a, 1, ids_a[1], &sa[1], &fa);
    Puente__V1__Receipt *rb = s_receipt(b, 1, ids_b[1], &sb[1], &fb);
    Puente__V1__Receipt *rb0 = s_receipt(b, 0, ids_b[0], &sb[0], &fb0);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, NULL), 0);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb, NULL), 0);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb0, NULL), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(ra->broker_signature.data, rb->broker_signature.data, 64), 0);
    uint8_t *sig_a = ra->broker_signature.data;
    ra->broker_signature.data = rb->broker_signature.data;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, NULL), -1);
    ra->broker_signature.data = sig_a;
    /* b's item 0 is a's item 0: with a's path and index but b's signature it fails,
       and a's item 1 with b's item 0 path fails as well. */
    Puente__V1__BrokerFrame *fa0 = NULL;
    Puente__V1__Receipt *ra0 = s_receipt(a, 0, ids_a[0], &sa[0], &fa0);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra0, NULL), 0);
    uint8_t *sig_a0 = ra0->broker_signature.data;
    ra0->broker_signature.data = rb0->broker_signature.data;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra0, NULL), -1);
    ra0->broker_signature.data = sig_a0;
    ProtobufCBinaryData *path_a = ra->batch_path;
    CU_ASSERT_EQUAL_FATAL(ra->n_batch_path, rb0->n_batch_path);
    ra->batch_path = rb0->batch_path;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, NULL), -1);
    ra->batch_path = path_a;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, NULL), 0);

    /* The cache: a second receipt of a verified batch verifies without Ed25519,
       and nothing the cache holds makes a changed receipt verify. */
    pt_receipt_cache_t cache;
    memset(&cache, 0, sizeof cache);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb, &cache), 0);
    CU_ASSERT_EQUAL(cache.valid, 1);
    CU_ASSERT_EQUAL(cache.batch_size, N);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb0, &cache), 0);
    rb0->event_hash.data[5] ^= 1;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb0, &cache), -1);
    rb0->event_hash.data[5] ^= 1;
    rb0->broker_signature.data[0] ^= 1;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, rb0, &cache), -1);
    rb0->broker_signature.data[0] ^= 1;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, &cache), 0); /* another batch */
    CU_ASSERT_EQUAL(memcmp(cache.sig, ra->broker_signature.data, 64), 0);
    ra->batch_path = rb0->batch_path;
    CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, ra, &cache), -1);
    ra->batch_path = path_a;
    /* Another key with the same cached triple: verified again, and refused. */
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT_EQUAL(pt_receipt_verify_message(other, ra, &cache), -1);
    pt_sign_key_destroy(&other);

    puente__v1__broker_frame__free_unpacked(fa, NULL);
    puente__v1__broker_frame__free_unpacked(fa0, NULL);
    puente__v1__broker_frame__free_unpacked(fb, NULL);
    puente__v1__broker_frame__free_unpacked(fb0, NULL);
    pt_receipts_destroy(&a);
    pt_receipts_destroy(&b);
}

static void test_batch_signs_only_stored(void)
{
    enum { N = 5 };
    pt_receipts_t *receipts = pt_receipts_new(s_key, N);
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
    /* The stored items 0, 1 and 4 are the leaves 0, 1 and 2 of one tree of 3. */
    uint8_t leaves[3][32], root[32], msg[64];
    const int leaf_items[3] = {0, 1, 4};
    for (int i = 0; i < 3; i++) {
        int k = leaf_items[i];
        s_leaf(ids[k], stored[k].stored_at_ms, stored[k].header_sha256, stored[k].event_hash,
               leaves[i]);
    }
    s_mth((const uint8_t(*)[32])leaves, 3, root);
    size_t msg_len = s_batch_message(3, root, msg);
    int expect_signed[N] = {1, 1, 0, 0, 1};
    int expect_index[N] = {0, 1, -1, -1, 2};
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
        CU_ASSERT_EQUAL(r->batch_size, 3);
        CU_ASSERT_EQUAL(r->batch_index, (uint32_t)expect_index[k]);
        CU_ASSERT_EQUAL(r->n_batch_path, k == 4 ? 1 : 2);
        CU_ASSERT(
            s_openssl_verifies(msg, msg_len, r->broker_signature.data, r->broker_signature.len));
        CU_ASSERT_EQUAL(pt_receipt_verify_message(s_pub, r, NULL), 0);
        puente__v1__broker_frame__free_unpacked(frame, NULL);
        free(buf);
    }
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, N), 0); /* past the capacity */
    /* A new batch forgets the previous one. */
    pt_receipts_sign(receipts, stored, id_p, 0);
    for (int k = 0; k < N; k++)
        CU_ASSERT_EQUAL(pt_receipts_signed(receipts, (size_t)k), 0);
    /* A shorter batch: the items past it are not signed (nothing stale). */
    pt_receipts_sign(receipts, stored, id_p, N);
    pt_receipts_sign(receipts, stored, id_p, 2);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 0), 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 1), 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 4), 0);
    /* Nothing stored: nothing signed. */
    pt_store_receipt_t failed[2];
    s_fill(&failed[0], PT_STORE_ERROR, 1, 1, -1);
    s_fill(&failed[1], PT_STORE_CONFLICT, 1, 1, -1);
    pt_receipts_sign(receipts, failed, id_p, 2);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 0), 0);
    CU_ASSERT_EQUAL(pt_receipts_signed(receipts, 1), 0);
    pt_receipts_destroy(&receipts);
    /* Without a pool: the same signature (Ed25519 is deterministic). */
    pt_receipts_t *alone = pt_receipts_new(s_key, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(alone);
    pt_receipts_sign(alone, stored, id_p, 1);
    CU_ASSERT_EQUAL(pt_receipts_signed(alone, 0), 1);
    pt_receipts_destroy(&alone);
    CU_ASSERT_PTR_NULL(pt_receipts_new(s_key, 0));
    CU_ASSERT_PTR_NULL(pt_receipts_new(NULL, 1));
    CU_ASSERT_PTR_NULL(pt_receipts_new(s_key, PT_RECEIPT_BATCH_MAX + 1));
    pt_receipts_t *max = pt_receipts_new(s_key, PT_RECEIPT_BATCH_MAX);
    CU_ASSERT_PTR_NOT_NULL(max);
    pt_receipts_destroy(&max);
}

/* The batch signature failed (here: a key without its private half): no item
   of the batch is signed, so the broker answers each REJECT_RETRY_LATER. */
static void test_failed_signature(void)
{
    pt_receipts_t *receipts = pt_receipts_new(s_pub, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(receipts);
    uint8_t ids[3][16];
    const uint8_t *id_p[3];
    pt_store_receipt_t stored[3];
    for (int k = 0; k < 3; k++) {
        memset(ids[k], 0x70 + k, 16);
        id_p[k] = ids[k];
        s_fill(&stored[k], PT_STORE_OK, 1795000000000LL, (uint8_t)k, k);
    }
    pt_receipts_sign(receipts, stored, id_p, 3);
    for (size_t k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(pt_receipts_signed(receipts, k), 0);
        uint8_t *buf = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL(pt_receipts_frame(receipts, k, ids[k], &stored[k], &buf, &len), -1);
        CU_ASSERT_PTR_NULL(buf);
    }
    pt_receipts_destroy(&receipts);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker receipt", s_init, s_clean);
    CU_add_test(suite, "signed bytes: known answer, every byte covered",
                test_signed_bytes_known_answer);
    CU_add_test(suite, "batches of 1, 2, 3, 5, 8, 256: verify, tampering fails", test_batch_sizes);
    CU_add_test(suite, "another batch's signature or path fails; the cache", test_other_batch);
    CU_add_test(suite, "a batch signs only stored items", test_batch_signs_only_stored);
    CU_add_test(suite, "a failed batch signature signs nothing", test_failed_signature);
    return pt_cu_main();
}

/*  test_crypto — known-answer and tamper tests for pt_crypto. */
#include "pt_crypto.h"
#include "cu_main.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses hex into a fresh buffer of exactly strlen(hex)/2 bytes (test helper). */
static uint8_t *s_bytes(const char *hex, size_t *len_p)
{
    size_t len = strlen(hex) / 2;
    uint8_t *out = malloc(len ? len : 1);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(pt_unhex(hex, out, len) == 0);
    if (len_p)
        *len_p = len;
    return out;
}

static void s_assert_hex(const uint8_t *data, size_t len, const char *expected)
{
    char *hex = malloc(2 * len + 1);
    CU_ASSERT_FATAL(hex != NULL);
    pt_hex(data, len, hex);
    CU_ASSERT_STRING_EQUAL(hex, expected);
    free(hex);
}

/* --- RFC 8032 section 7.1, tests 1-3 ------------------------------------- */

static const struct {
    const char *secret, *public_key, *message, *signature;
} s_ed25519_vectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
     "b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1"
     "1d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984d"
     "c6594a7c15e9716ed28dc027beceea1ec40a"},
};

static void test_ed25519_rfc8032(void)
{
    for (size_t v = 0; v < sizeof s_ed25519_vectors / sizeof s_ed25519_vectors[0]; v++) {
        size_t seed_len, msg_len, pub_len;
        uint8_t *seed = s_bytes(s_ed25519_vectors[v].secret, &seed_len);
        uint8_t *msg = s_bytes(s_ed25519_vectors[v].message, &msg_len);
        uint8_t *pub = s_bytes(s_ed25519_vectors[v].public_key, &pub_len);
        pt_sign_key_t *key = pt_sign_key_from_private(seed, seed_len);
        CU_ASSERT_FATAL(key != NULL);
        CU_ASSERT_EQUAL(pt_sign_key_has_private(key), 1);
        uint8_t public_key[PT_ED25519_PUBLIC_BYTES];
        pt_sign_key_public(key, public_key);
        s_assert_hex(public_key, sizeof public_key, s_ed25519_vectors[v].public_key);

        uint8_t sig[PT_ED25519_SIG_BYTES];
        CU_ASSERT_EQUAL(pt_sign_raw(key, msg, msg_len, sig), 0);
        s_assert_hex(sig, sizeof sig, s_ed25519_vectors[v].signature);

        /* The public half alone verifies; the prefixed API does not accept a raw signature. */
        pt_sign_key_t *verifier = pt_sign_key_from_public(pub, pub_len);
        CU_ASSERT_FATAL(verifier != NULL);
        CU_ASSERT_EQUAL(pt_sign_key_has_private(verifier), 0);
        CU_ASSERT_EQUAL(pt_verify_raw(verifier, msg, msg_len, sig, sizeof sig), 0);
        CU_ASSERT_EQUAL(pt_verify(verifier, "", msg, msg_len, sig, sizeof sig), -1);
        CU_ASSERT_EQUAL(pt_sign_raw(verifier, msg, msg_len, sig), -1);

        /* Key id = SHA-256(raw public). */
        uint8_t id[PT_KEY_ID_BYTES], expected_id[PT_SHA256_BYTES];
        pt_sign_key_id(verifier, id);
        CU_ASSERT_EQUAL(pt_sha256(pub, pub_len, expected_id), 0);
        CU_ASSERT_EQUAL(memcmp(id, expected_id, sizeof id), 0);

        pt_sign_key_destroy(&key);
        pt_sign_key_destroy(&verifier);
        CU_ASSERT_PTR_NULL(key);
        free(seed);
        free(msg);
        free(pub);
    }
    pt_sign_key_destroy(NULL); /* no-op */
    uint8_t short_key[31] = {0};
    CU_ASSERT_PTR_NULL(pt_sign_key_from_public(short_key, sizeof short_key));
    CU_ASSERT_PTR_NULL(pt_sign_key_from_private(short_key, sizeof short_key));
}

static void test_sign_domain_separation(void)
{
    pt_sign_key_t *key = pt_sign_key_generate();
    CU_ASSERT_FATAL(key != NULL);
    const uint8_t msg[] = "case event 42";
    uint8_t sig[PT_ED25519_SIG_BYTES];
    CU_ASSERT_EQUAL(pt_sign(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig), 0);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig), 0);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_PAYLOAD, msg, sizeof msg, sig, sizeof sig), -1);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_RECEIPT, msg, sizeof msg, sig, sizeof sig), -1);
    CU_ASSERT_EQUAL(pt_verify(key, "puente.v1 heade", msg, sizeof msg, sig, sizeof sig), -1);
    /* What is signed is exactly domain || 0x00 || msg. */
    CU_ASSERT_EQUAL(pt_verify_raw(key, msg, sizeof msg, sig, sizeof sig), -1);
    uint8_t prefixed[sizeof PT_DOMAIN_HEADER + sizeof msg];
    memcpy(prefixed, PT_DOMAIN_HEADER, sizeof PT_DOMAIN_HEADER); /* with its NUL */
    memcpy(prefixed + sizeof PT_DOMAIN_HEADER, msg, sizeof msg);
    CU_ASSERT_EQUAL(pt_verify_raw(key, prefixed, sizeof prefixed, sig, sizeof sig), 0);
    /* Wrong lengths are refused, not read past. */
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig - 1), -1);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, NULL, 64), -1);
    /* Another key does not verify. */
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_FATAL(other != NULL);
    CU_ASSERT_EQUAL(pt_verify(other, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig), -1);
    /* An empty message signs and verifies. */
    CU_ASSERT_EQUAL(pt_sign(key, PT_DOMAIN_RECEIPT, NULL, 0, sig), 0);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_RECEIPT, NULL, 0, sig, sizeof sig), 0);
    pt_sign_key_destroy(&key);
    pt_sign_key_destroy(&other);
}

static void test_sign_bit_flips(void)
{
    pt_sign_key_t *key = pt_sign_key_generate();
    CU_ASSERT_FATAL(key != NULL);
    uint8_t msg[48];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t) (i * 7 + 3);
    uint8_t sig[PT_ED25519_SIG_BYTES];
    CU_ASSERT_FATAL(pt_sign(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig) == 0);
    CU_ASSERT_FATAL(pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig) == 0);
    int accepted = 0;
    for (size_t bit = 0; bit < 8 * sizeof msg; bit++) {
        msg[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        accepted += pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig) == 0;
        msg[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 8 * sizeof sig; bit++) {
        sig[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        accepted += pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig) == 0;
        sig[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(accepted, 0);
    CU_ASSERT_EQUAL(pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig), 0);
    pt_sign_key_destroy(&key);
}

/* --- RFC 7748 section 6.1 ------------------------------------------------- */

static void test_x25519_rfc7748(void)
{
    size_t len;
    uint8_t *alice_priv = s_bytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", &len);
    pt_seal_key_t *alice = pt_seal_key_from_private(alice_priv, len);
    uint8_t *bob_priv = s_bytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", &len);
    pt_seal_key_t *bob = pt_seal_key_from_private(bob_priv, len);
    CU_ASSERT_FATAL(alice && bob);
    uint8_t pub[PT_X25519_PUBLIC_BYTES];
    pt_seal_key_public(alice, pub);
    s_assert_hex(pub, sizeof pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    pt_seal_key_public(bob, pub);
    s_assert_hex(pub, sizeof pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    pt_seal_key_t *bob_public = pt_seal_key_from_public(pub, sizeof pub);
    CU_ASSERT_FATAL(bob_public != NULL);
    CU_ASSERT_EQUAL(pt_seal_key_has_private(bob_public), 0);

    uint8_t k1[32], k2[32];
    CU_ASSERT_EQUAL(pt_x25519_shared(alice, bob_public, k1), 0);
    CU_ASSERT_EQUAL(pt_x25519_shared(bob, alice, k2), 0);
    s_assert_hex(k1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    CU_ASSERT_EQUAL(memcmp(k1, k2, 32), 0);
    /* A public-only key cannot derive. */
    CU_ASSERT_EQUAL(pt_x25519_shared(bob_public, alice, k1), -1);
    /* A low-order peer point (here 0) gives the all-zero secret: refused. */
    uint8_t zero[32] = {0};
    pt_seal_key_t *bad_peer = pt_seal_key_from_public(zero, sizeof zero);
    if (bad_peer) /* OpenSSL may already refuse to build it, which is as good */
        CU_ASSERT_EQUAL(pt_x25519_shared(alice, bad_peer, k1), -1);
    pt_seal_key_destroy(&bad_peer);
    pt_seal_key_destroy(&alice);
    pt_seal_key_destroy(&bob);
    pt_seal_key_destroy(&bob_public);
    free(alice_priv);
    free(bob_priv);
}

/* --- RFC 5869 test case 1 ------------------------------------------------- */

static void test_hkdf_rfc5869(void)
{
    size_t ikm_len, salt_len, info_len;
    uint8_t *ikm = s_bytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", &ikm_len);
    uint8_t *salt = s_bytes("000102030405060708090a0b0c", &salt_len);
    uint8_t *info = s_bytes("f0f1f2f3f4f5f6f7f8f9", &info_len);
    uint8_t okm[42];
    CU_ASSERT_EQUAL(pt_hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len, okm, sizeof okm), 0);
    s_assert_hex(okm, sizeof okm,
                 "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    /* RFC 5869 test case 3: no salt, no info. */
    CU_ASSERT_EQUAL(pt_hkdf_sha256(ikm, ikm_len, NULL, 0, NULL, 0, okm, sizeof okm), 0);
    s_assert_hex(okm, sizeof okm,
                 "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    CU_ASSERT_EQUAL(pt_hkdf_sha256(ikm, ikm_len, NULL, 0, NULL, 0, okm, 0), -1);
    free(ikm);
    free(salt);
    free(info);
}

/* --- Sealing -------------------------------------------------------------- */

/* Fixed inputs of the seal KAT: recipient = RFC 7748 Bob, ephemeral = RFC 7748 Alice. */
#define KAT_RECIPIENT "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define KAT_EPHEMERAL "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
static const uint8_t s_kat_nonce[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const char s_kat_aad[] = "aad for the KAT";
static const char s_kat_plaintext[] = "Puente known-answer test plaintext";

/* info = "puente.v1 seal" 0x00 || 01..10 || "MX-DIF", as pt_envelope builds it. */
static size_t s_kat_info(uint8_t info[64])
{
    memcpy(info, PT_DOMAIN_SEAL, sizeof PT_DOMAIN_SEAL);
    for (int i = 0; i < 16; i++)
        info[sizeof PT_DOMAIN_SEAL + i] = (uint8_t) (i + 1);
    memcpy(info + sizeof PT_DOMAIN_SEAL + 16, "MX-DIF", 6);
    return sizeof PT_DOMAIN_SEAL + 16 + 6;
}

/* Expected ciphertext || tag. Obtained independently of this code with Python's
   `cryptography` 48 (X25519PrivateKey.exchange, HKDF(SHA256, 32, salt = eph_pub ||
   rcpt_pub, info), AESGCM(key).encrypt(nonce, plaintext, aad)); the HKDF key
   bbc9fba8...a0601328 was also reproduced with `openssl kdf -keylen 32 -kdfopt
   digest:SHA256 -kdfopt hexkey:<RFC 7748 shared> -kdfopt hexsalt:<alice_pub||bob_pub>
   -kdfopt hexinfo:<info> HKDF`. */
static const char s_kat_ciphertext[] =
    "17ebe5097b2516bd68e2bf62d3c2f5501482ee44dcf8f81fd969cfe07fc9ad77208d6d25416e0694d48cd306716d01"
    "9aad46";

static void test_seal_kat(void)
{
    size_t len;
    uint8_t *rpriv = s_bytes(KAT_RECIPIENT, &len);
    pt_seal_key_t *recipient = pt_seal_key_from_private(rpriv, len);
    uint8_t *epriv = s_bytes(KAT_EPHEMERAL, &len);
    pt_seal_key_t *ephemeral = pt_seal_key_from_private(epriv, len);
    CU_ASSERT_FATAL(recipient && ephemeral);
    uint8_t rpub[32], epub[32];
    pt_seal_key_public(recipient, rpub);
    pt_seal_key_public(ephemeral, epub);
    pt_seal_key_t *recipient_public = pt_seal_key_from_public(rpub, sizeof rpub);
    CU_ASSERT_FATAL(recipient_public != NULL);

    uint8_t info[64];
    size_t info_len = s_kat_info(info);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    CU_ASSERT_FATAL(pt_seal_with(recipient_public, ephemeral, s_kat_nonce, info, info_len,
                                 (const uint8_t *) s_kat_aad, strlen(s_kat_aad),
                                 (const uint8_t *) s_kat_plaintext, strlen(s_kat_plaintext), &ct,
                                 &ct_len) == 0);
    CU_ASSERT_EQUAL(ct_len, strlen(s_kat_plaintext) + PT_GCM_TAG_BYTES);
    s_assert_hex(ct, ct_len, s_kat_ciphertext);

    uint8_t *pt = NULL;
    size_t pt_len = 0;
    CU_ASSERT_EQUAL(pt_open(recipient, epub, sizeof epub, s_kat_nonce, sizeof s_kat_nonce, info,
                            info_len, (const uint8_t *) s_kat_aad, strlen(s_kat_aad), ct, ct_len,
                            &pt, &pt_len),
                    0);
    CU_ASSERT_EQUAL(pt_len, strlen(s_kat_plaintext));
    CU_ASSERT(pt && memcmp(pt, s_kat_plaintext, pt_len) == 0);
    free(pt);
    pt = NULL;
    /* A public-only key cannot open. */
    CU_ASSERT_EQUAL(pt_open(recipient_public, epub, sizeof epub, s_kat_nonce, sizeof s_kat_nonce,
                            info, info_len, (const uint8_t *) s_kat_aad, strlen(s_kat_aad), ct,
                            ct_len, &pt, &pt_len),
                    -1);
    CU_ASSERT_PTR_NULL(pt);
    free(ct);
    pt_seal_key_destroy(&recipient);
    pt_seal_key_destroy(&recipient_public);
    pt_seal_key_destroy(&ephemeral);
    free(rpriv);
    free(epriv);
}

/* Flips every bit of ciphertext, nonce, ephemeral key, AAD and info in turn; each
   must make pt_open fail and leave *plaintext_p untouched. */
static void test_seal_bit_flips(void)
{
    pt_seal_key_t *recipient = pt_seal_key_generate();
    CU_ASSERT_FATAL(recipient != NULL);
    uint8_t info[64];
    size_t info_len = s_kat_info(info);
    uint8_t aad[48];
    for (size_t i = 0; i < sizeof aad; i++)
        aad[i] = (uint8_t) (0xA5 ^ i);
    const uint8_t plaintext[] = "a child's data, which must stay sealed";
    uint8_t eph[32], nonce[12];
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    CU_ASSERT_FATAL(pt_seal(recipient, info, info_len, aad, sizeof aad, plaintext,
                            sizeof plaintext, eph, nonce, &ct, &ct_len) == 0);
    CU_ASSERT_FATAL(ct_len == sizeof plaintext + 16);
    /* The ciphertext is not the plaintext. */
    CU_ASSERT(memcmp(ct, plaintext, sizeof plaintext) != 0);

    uint8_t *pt = NULL;
    size_t pt_len = 0;
    CU_ASSERT_FATAL(pt_open(recipient, eph, 32, nonce, 12, info, info_len, aad, sizeof aad, ct,
                            ct_len, &pt, &pt_len) == 0);
    CU_ASSERT(pt_len == sizeof plaintext && memcmp(pt, plaintext, pt_len) == 0);
    free(pt);

    struct {
        uint8_t *buf;
        size_t len;
    } parts[] = {{ct, ct_len}, {nonce, 12}, {eph, 32}, {aad, sizeof aad}, {info, info_len}};
    size_t tried = 0, accepted = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        for (size_t bit = 0; bit < 8 * parts[p].len; bit++) {
            parts[p].buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
            pt = NULL;
            int rc = pt_open(recipient, eph, 32, nonce, 12, info, info_len, aad, sizeof aad, ct,
                             ct_len, &pt, &pt_len);
            if (rc == 0 || pt != NULL) {
                accepted++;
                free(pt);
            }
            tried++;
            parts[p].buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
    }
    CU_ASSERT_EQUAL(tried, 8 * (ct_len + 12 + 32 + sizeof aad + info_len));
    CU_ASSERT_EQUAL(accepted, 0);
    /* Truncation and wrong sizes fail too. */
    pt = NULL;
    CU_ASSERT_EQUAL(pt_open(recipient, eph, 32, nonce, 12, info, info_len, aad, sizeof aad, ct,
                            ct_len - 1, &pt, &pt_len), -1);
    CU_ASSERT_EQUAL(pt_open(recipient, eph, 32, nonce, 12, info, info_len, aad, sizeof aad, ct,
                            15, &pt, &pt_len), -1);
    CU_ASSERT_EQUAL(pt_open(recipient, eph, 31, nonce, 12, info, info_len, aad, sizeof aad, ct,
                            ct_len, &pt, &pt_len), -1);
    CU_ASSERT_EQUAL(pt_open(recipient, eph, 32, nonce, 11, info, info_len, aad, sizeof aad, ct,
                            ct_len, &pt, &pt_len), -1);
    CU_ASSERT_PTR_NULL(pt);
    /* Unchanged, it still opens (the flips were all undone). */
    CU_ASSERT_EQUAL(pt_open(recipient, eph, 32, nonce, 12, info, info_len, aad, sizeof aad, ct,
                            ct_len, &pt, &pt_len), 0);
    free(pt);
    free(ct);
    pt_seal_key_destroy(&recipient);
}

static void test_seal_fresh_and_empty(void)
{
    pt_seal_key_t *recipient = pt_seal_key_generate();
    pt_seal_key_t *other = pt_seal_key_generate();
    CU_ASSERT_FATAL(recipient && other);
    uint8_t eph1[32], eph2[32], n1[12], n2[12];
    uint8_t *c1 = NULL, *c2 = NULL;
    size_t l1 = 0, l2 = 0;
    const uint8_t msg[] = "same plaintext";
    CU_ASSERT_FATAL(pt_seal(recipient, NULL, 0, NULL, 0, msg, sizeof msg, eph1, n1, &c1, &l1) == 0);
    CU_ASSERT_FATAL(pt_seal(recipient, NULL, 0, NULL, 0, msg, sizeof msg, eph2, n2, &c2, &l2) == 0);
    /* Fresh ephemeral key and nonce each time. */
    CU_ASSERT(memcmp(eph1, eph2, 32) != 0);
    CU_ASSERT(memcmp(n1, n2, 12) != 0);
    CU_ASSERT(memcmp(c1, c2, l1) != 0);
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    /* Wrong recipient key. */
    CU_ASSERT_EQUAL(pt_open(other, eph1, 32, n1, 12, NULL, 0, NULL, 0, c1, l1, &pt, &pt_len), -1);
    CU_ASSERT_PTR_NULL(pt);
    free(c1);
    free(c2);
    /* Empty plaintext: 16-byte tag only, still authenticated. */
    CU_ASSERT_FATAL(pt_seal(recipient, NULL, 0, NULL, 0, NULL, 0, eph1, n1, &c1, &l1) == 0);
    CU_ASSERT_EQUAL(l1, 16);
    CU_ASSERT_EQUAL(pt_open(recipient, eph1, 32, n1, 12, NULL, 0, NULL, 0, c1, l1, &pt, &pt_len), 0);
    CU_ASSERT_EQUAL(pt_len, 0);
    CU_ASSERT_PTR_NOT_NULL(pt);
    free(pt);
    c1[0] ^= 1;
    pt = NULL;
    CU_ASSERT_EQUAL(pt_open(recipient, eph1, 32, n1, 12, NULL, 0, NULL, 0, c1, l1, &pt, &pt_len), -1);
    free(c1);
    pt_seal_key_destroy(&recipient);
    pt_seal_key_destroy(&other);
}

/* --- PEM files ------------------------------------------------------------ */

static char s_tmpdir[64];

static char *s_tmp_path(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", s_tmpdir, name);
    return path;
}

static unsigned s_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0xFFFF;
    return st.st_mode & 07777;
}

static void test_pem_round_trip(void)
{
    char priv[128], pub[128];
    pt_sign_key_t *key = pt_sign_key_generate();
    CU_ASSERT_FATAL(key != NULL);
    snprintf(priv, sizeof priv, "%s", s_tmp_path("sign.key"));
    snprintf(pub, sizeof pub, "%s", s_tmp_path("sign.pub"));
    CU_ASSERT_EQUAL(pt_sign_key_save(key, priv, pub), 0);
    CU_ASSERT_EQUAL(s_mode(priv), 0600);
    CU_ASSERT_EQUAL(s_mode(pub), 0644);
    CU_ASSERT_EQUAL(access(s_tmp_path("sign.key.new"), F_OK), -1);

    pt_sign_key_t *loaded = pt_sign_key_load(priv);
    CU_ASSERT_FATAL(loaded != NULL);
    CU_ASSERT_EQUAL(pt_sign_key_has_private(loaded), 1);
    pt_sign_key_t *loaded_pub = pt_sign_key_load(pub);
    CU_ASSERT_FATAL(loaded_pub != NULL);
    CU_ASSERT_EQUAL(pt_sign_key_has_private(loaded_pub), 0);
    uint8_t a[32], b[32], c[32];
    pt_sign_key_public(key, a);
    pt_sign_key_public(loaded, b);
    pt_sign_key_public(loaded_pub, c);
    CU_ASSERT(memcmp(a, b, 32) == 0 && memcmp(a, c, 32) == 0);
    /* The loaded private key signs what the original verifies. */
    uint8_t sig[64];
    CU_ASSERT_EQUAL(pt_sign(loaded, PT_DOMAIN_DIRECTORY, a, 32, sig), 0);
    CU_ASSERT_EQUAL(pt_verify(loaded_pub, PT_DOMAIN_DIRECTORY, a, 32, sig, 64), 0);
    /* A public-only key cannot be saved as private. */
    CU_ASSERT_EQUAL(pt_sign_key_save(loaded_pub, s_tmp_path("x.key"), NULL), -1);

    /* Group/other bits on a private key file: refused with EPERM. */
    CU_ASSERT_FATAL(chmod(priv, 0640) == 0);
    errno = 0;
    CU_ASSERT_PTR_NULL(pt_sign_key_load(priv));
    CU_ASSERT_EQUAL(errno, EPERM);
    CU_ASSERT_FATAL(chmod(priv, 0604) == 0);
    CU_ASSERT_PTR_NULL(pt_sign_key_load(priv));
    CU_ASSERT_FATAL(chmod(priv, 0400) == 0);
    pt_sign_key_t *again = pt_sign_key_load(priv);
    CU_ASSERT_PTR_NOT_NULL(again);
    pt_sign_key_destroy(&again);

    /* A sealing key file is not a signing key, and vice versa. */
    errno = 0;
    CU_ASSERT_PTR_NULL(pt_seal_key_load(pub));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(pt_sign_key_load(s_tmp_path("missing.key")));
    CU_ASSERT_EQUAL(errno, ENOENT);

    pt_sign_key_destroy(&key);
    pt_sign_key_destroy(&loaded);
    pt_sign_key_destroy(&loaded_pub);
    unlink(priv);
    unlink(pub);
}

static void test_pem_seal_round_trip(void)
{
    char priv[128], pub[128];
    pt_seal_key_t *key = pt_seal_key_generate();
    CU_ASSERT_FATAL(key != NULL);
    snprintf(priv, sizeof priv, "%s", s_tmp_path("seal.key"));
    snprintf(pub, sizeof pub, "%s", s_tmp_path("seal.pub"));
    /* Overwrites a stale file and a stale .new with loose permissions. */
    FILE *f = fopen(s_tmp_path("seal.key.new"), "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("stale", f);
    fclose(f);
    chmod(s_tmp_path("seal.key.new"), 0666);
    CU_ASSERT_EQUAL(pt_seal_key_save(key, priv, pub), 0);
    CU_ASSERT_EQUAL(s_mode(priv), 0600);
    CU_ASSERT_EQUAL(access(s_tmp_path("seal.key.new"), F_OK), -1);
    pt_seal_key_t *loaded = pt_seal_key_load(priv);
    pt_seal_key_t *loaded_pub = pt_seal_key_load(pub);
    CU_ASSERT_FATAL(loaded && loaded_pub);
    CU_ASSERT_EQUAL(pt_seal_key_has_private(loaded), 1);
    CU_ASSERT_EQUAL(pt_seal_key_has_private(loaded_pub), 0);
    /* Seal to the loaded public key, open with the loaded private one. */
    uint8_t eph[32], nonce[12];
    uint8_t *ct = NULL, *pt = NULL;
    size_t ct_len = 0, pt_len = 0;
    CU_ASSERT_FATAL(pt_seal(loaded_pub, NULL, 0, NULL, 0, (const uint8_t *) "hi", 2, eph, nonce,
                            &ct, &ct_len) == 0);
    CU_ASSERT_EQUAL(pt_open(loaded, eph, 32, nonce, 12, NULL, 0, NULL, 0, ct, ct_len, &pt, &pt_len), 0);
    CU_ASSERT(pt_len == 2 && pt && memcmp(pt, "hi", 2) == 0);
    uint8_t id1[32], id2[32];
    pt_seal_key_id(key, id1);
    pt_seal_key_id(loaded_pub, id2);
    CU_ASSERT_EQUAL(memcmp(id1, id2, 32), 0);
    free(ct);
    free(pt);
    /* Garbage is refused. */
    CU_ASSERT_EQUAL(pt_file_write_durable(s_tmp_path("junk.pub"), "not a key\n", 10, 0644), 0);
    CU_ASSERT_PTR_NULL(pt_seal_key_load(s_tmp_path("junk.pub")));
    unlink(s_tmp_path("junk.pub"));
    pt_seal_key_destroy(&key);
    pt_seal_key_destroy(&loaded);
    pt_seal_key_destroy(&loaded_pub);
    unlink(priv);
    unlink(pub);
}

/* --- Hashing, ids, hex ---------------------------------------------------- */

static void test_sha256(void)
{
    uint8_t out[32];
    CU_ASSERT_EQUAL(pt_sha256("abc", 3, out), 0);
    s_assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CU_ASSERT_EQUAL(pt_sha256(NULL, 0, out), 0);
    s_assert_hex(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const void *parts[] = {"a", "", "bc"};
    const size_t lens[] = {1, 0, 2};
    CU_ASSERT_EQUAL(pt_sha256_parts(parts, lens, 3, out), 0);
    s_assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_random(void)
{
    uint8_t a[32] = {0}, b[32] = {0};
    CU_ASSERT_EQUAL(pt_random(a, sizeof a), 0);
    CU_ASSERT_EQUAL(pt_random(b, sizeof b), 0);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    CU_ASSERT_EQUAL(pt_random(NULL, 0), 0);
}

static uint64_t s_uuid_ms(const uint8_t u[16])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | u[i];
    return ms;
}

static void test_uuidv7(void)
{
    uint8_t prev[16], cur[16];
    int64_t before = pt_now_ms();
    CU_ASSERT(before > 1700000000000LL); /* after Nov 2023: the clock is in ms, not s */
    CU_ASSERT_FATAL(pt_uuidv7(prev) == 0);
    int ordered = 1, bits_ok = 1;
    for (int i = 0; i < 5000; i++) {
        CU_ASSERT_FATAL(pt_uuidv7(cur) == 0);
        if ((cur[6] >> 4) != 7 || (cur[8] >> 6) != 2)
            bits_ok = 0;
        if (memcmp(prev, cur, 16) >= 0 || s_uuid_ms(cur) < s_uuid_ms(prev))
            ordered = 0;
        memcpy(prev, cur, 16);
    }
    int64_t after = pt_now_ms();
    CU_ASSERT(bits_ok);
    CU_ASSERT(ordered);
    /* 5000 ids may borrow a few ms from the future (counter exhaustion), not more. */
    CU_ASSERT((int64_t) s_uuid_ms(cur) >= before);
    CU_ASSERT((int64_t) s_uuid_ms(cur) <= after + 5);
}

static void test_uuid_format_parse(void)
{
    const uint8_t u[16] = {0x01, 0x8f, 0x3a, 0x5b, 0x7c, 0x9d, 0x7e, 0xf0,
                           0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    char text[PT_UUID_STR_BYTES];
    pt_uuid_format(u, text);
    CU_ASSERT_STRING_EQUAL(text, "018f3a5b-7c9d-7ef0-8123-456789abcdef");
    uint8_t back[16];
    CU_ASSERT_EQUAL(pt_uuid_parse(text, back), 0);
    CU_ASSERT_EQUAL(memcmp(u, back, 16), 0);
    memset(back, 0, sizeof back);
    CU_ASSERT_EQUAL(pt_uuid_parse("018F3A5B-7C9D-7EF0-8123-456789ABCDEF", back), 0);
    CU_ASSERT_EQUAL(memcmp(u, back, 16), 0);

    const char *bad[] = {"",
                         "018f3a5b7c9d7ef08123456789abcdef",
                         "018f3a5b-7c9d-7ef0-8123-456789abcde",
                         "018f3a5b-7c9d-7ef0-8123-456789abcdef0",
                         "018f3a5b-7c9d-7ef0-8123-456789abcdeg",
                         "018f3a5b-7c9d-7ef0-8123_456789abcdef",
                         "018f3a5-b7c9d-7ef0-8123-456789abcdef",
                         "{018f3a5b-7c9d-7ef0-8123-456789abcdef}",
                         " 018f3a5b-7c9d-7ef0-8123-456789abcdef",
                         "018f3a5b-7c9d-7ef0-8123-456789abcdef\n"};
    uint8_t untouched[16];
    memset(untouched, 0xEE, sizeof untouched);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(pt_uuid_parse(bad[i], untouched), -1);
    }
    CU_ASSERT_EQUAL(untouched[0], 0xEE);
    CU_ASSERT_EQUAL(untouched[15], 0xEE);
    CU_ASSERT_EQUAL(pt_uuid_parse(NULL, untouched), -1);
}

static void test_hex(void)
{
    const uint8_t data[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    char text[11];
    pt_hex(data, sizeof data, text);
    CU_ASSERT_STRING_EQUAL(text, "0001abff7f");
    uint8_t back[5];
    CU_ASSERT_EQUAL(pt_unhex("0001ABff7f", back, 5), 0);
    CU_ASSERT_EQUAL(memcmp(back, data, 5), 0);
    CU_ASSERT_EQUAL(pt_unhex("0001abff7", back, 5), -1);   /* short */
    CU_ASSERT_EQUAL(pt_unhex("0001abff7f0", back, 5), -1); /* long */
    CU_ASSERT_EQUAL(pt_unhex("0001abxf7f", back, 5), -1);  /* not hex */
    CU_ASSERT_EQUAL(pt_unhex(" 001abff7f", back, 5), -1);
    CU_ASSERT_EQUAL(pt_unhex("", back, 0), 0);
    pt_hex(data, 0, text);
    CU_ASSERT_STRING_EQUAL(text, "");
}

static void test_durable_write(void)
{
    const char *path = s_tmp_path("durable.txt");
    CU_ASSERT_EQUAL(pt_file_write_durable(path, "one", 3, 0640), 0);
    CU_ASSERT_EQUAL(s_mode(path), 0640);
    CU_ASSERT_EQUAL(pt_file_write_durable(path, "second", 6, 0600), 0);
    CU_ASSERT_EQUAL(s_mode(path), 0600);
    char buf[16] = {0};
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(buf, 1, sizeof buf - 1, f), 6);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "second");
    unlink(path);
    errno = 0;
    CU_ASSERT_EQUAL(pt_file_write_durable("/nonexistent-dir/x", "a", 1, 0600), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
}

int main(void)
{
    snprintf(s_tmpdir, sizeof s_tmpdir, "/tmp/test_crypto.XXXXXX");
    if (!mkdtemp(s_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("pt_crypto", NULL, NULL);
    if (!suite)
        goto fail;
    struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"Ed25519 RFC 8032 vectors 1-3", test_ed25519_rfc8032},
        {"domain separation", test_sign_domain_separation},
        {"signature: every flipped bit of msg and sig fails", test_sign_bit_flips},
        {"X25519 RFC 7748 6.1", test_x25519_rfc7748},
        {"HKDF-SHA256 RFC 5869 cases 1 and 3", test_hkdf_rfc5869},
        {"seal known-answer test", test_seal_kat},
        {"seal: every flipped bit fails to open", test_seal_bit_flips},
        {"seal: fresh per call, wrong key, empty", test_seal_fresh_and_empty},
        {"Ed25519 PEM round trip and modes", test_pem_round_trip},
        {"X25519 PEM round trip", test_pem_seal_round_trip},
        {"SHA-256", test_sha256},
        {"random", test_random},
        {"UUIDv7 bits and order", test_uuidv7},
        {"UUID format/parse", test_uuid_format_parse},
        {"hex", test_hex},
        {"durable write", test_durable_write},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto fail;
    int status = pt_cu_main();
    rmdir(s_tmpdir);
    return status;

fail:
    CU_cleanup_registry();
    rmdir(s_tmpdir);
    return 2;
}

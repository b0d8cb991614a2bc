/*  test_envelope — seal/check/verify/open round trips and hostile envelopes. */
#include "pt_envelope.h"
#include "pt_keys.h"
#include "cu_main.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sender MX-DIF and three recipients, generated once for the whole binary. */
static pt_sign_key_t *s_sender;
static pt_sign_key_t *s_other_signer;
static pt_seal_key_t *s_rkeys[3];
static char *s_rnames[3] = {"GT-PGN", "XI-ISS", "HN-DINAF"};

static const uint8_t s_body[] = "{\"name_first\":\"Ana\",\"age\":12} -- a child's data, sealed";

typedef struct {
    Puente__V1__Header header;
    Puente__V1__ConsentSummary consent;
    uint8_t message_id[16];
    uint8_t correlation_id[16];
} s_template_t;

/* A template as a sender fills it. The last field set is schema_version (15),
   which the test of truncation relies on. */
static void s_template(s_template_t *t, size_t n_recipients)
{
    puente__v1__header__init(&t->header);
    puente__v1__consent_summary__init(&t->consent);
    CU_ASSERT_FATAL(pt_uuidv7(t->message_id) == 0);
    CU_ASSERT_FATAL(pt_uuidv7(t->correlation_id) == 0);
    t->header.message_id = (ProtobufCBinaryData){16, t->message_id};
    t->header.correlation_id = (ProtobufCBinaryData){16, t->correlation_id};
    t->header.message_type = "referral.request";
    t->header.sender = "MX-DIF";
    t->header.n_recipients = n_recipients;
    t->header.recipients = s_rnames;
    t->header.created_at_ms = pt_now_ms();
    t->header.purpose = "service_provision";
    t->header.agreement_id = "AGR-MX-GT-2025-01";
    t->header.case_token = "ct_7f3a9c";
    t->consent.consent_for_services = 1;
    t->consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    t->header.consent = &t->consent;
}

static uint8_t *s_seal(const Puente__V1__Header *h, size_t n, const pt_sign_key_t *sender,
                       size_t *len)
{
    uint8_t *out = NULL;
    pt_env_result_t r = pt_envelope_seal(h, s_body, sizeof s_body, sender,
                                         (const pt_seal_key_t *const *) s_rkeys, n, &out, len);
    CU_ASSERT_EQUAL_FATAL(r, PT_ENV_OK);
    CU_ASSERT_FATAL(out != NULL);
    return out;
}

/* check + verify + open as recipient i; returns the first non-OK result. */
static pt_env_result_t s_receive(const uint8_t *bytes, size_t len, size_t i,
                                 const pt_seal_key_t *key, const pt_sign_key_t *sender,
                                 uint8_t **body, size_t *body_len)
{
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    if (!env)
        return PT_ENV_MALFORMED;
    Puente__V1__Header *h = NULL;
    pt_env_result_t r = pt_envelope_check(env, &h);
    if (r == PT_ENV_OK)
        r = pt_envelope_verify_header(env, sender);
    if (r == PT_ENV_OK)
        r = pt_envelope_open(env, h, s_rnames[i], key, sender, body, body_len);
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    puente__v1__envelope__free_unpacked(env, NULL);
    return r;
}

static void s_round_trip(size_t n)
{
    s_template_t t;
    s_template(&t, n);
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, n, s_sender, &len);
    /* The caller's template is not written. */
    CU_ASSERT_EQUAL(t.header.n_payload_sha256, 0);
    CU_ASSERT_EQUAL(t.header.schema_version, 0);
    CU_ASSERT_EQUAL(t.header.sender_key_id.len, 0);

    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    CU_ASSERT_FATAL(env != NULL);
    CU_ASSERT_EQUAL(env->n_payloads, n);
    Puente__V1__Header *h = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_envelope_check(env, &h), PT_ENV_OK);
    CU_ASSERT_FATAL(h != NULL);
    CU_ASSERT_EQUAL(h->schema_version, PT_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(h->n_payload_sha256, n);
    CU_ASSERT_EQUAL(memcmp(h->message_id.data, t.message_id, 16), 0);
    CU_ASSERT_STRING_EQUAL(h->sender, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(h->case_token, "ct_7f3a9c");
    uint8_t kid[32];
    pt_sign_key_id(s_sender, kid);
    CU_ASSERT(h->sender_key_id.len == 32 && memcmp(h->sender_key_id.data, kid, 32) == 0);
    /* The header the broker sees does not contain the body. */
    CU_ASSERT_PTR_NULL(memmem(env->header.data, env->header.len, "Ana", 3));
    CU_ASSERT_PTR_NULL(memmem(bytes, len, "Ana", 3));
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_sender), PT_ENV_OK);

    for (size_t i = 0; i < n; i++) {
        uint8_t *body = NULL;
        size_t body_len = 0;
        CU_ASSERT_EQUAL(pt_envelope_open(env, h, s_rnames[i], s_rkeys[i], s_sender, &body,
                                         &body_len), PT_ENV_OK);
        CU_ASSERT(body_len == sizeof s_body && body && memcmp(body, s_body, body_len) == 0);
        free(body);
        body = NULL;
        /* My name, someone else's key: the key id does not match. */
        CU_ASSERT_EQUAL(pt_envelope_open(env, h, s_rnames[i], s_rkeys[(i + 1) % 3], s_sender,
                                         &body, &body_len), PT_ENV_OPEN_FAILED);
        /* Payload signature checked with the wrong sender key. */
        CU_ASSERT_EQUAL(pt_envelope_open(env, h, s_rnames[i], s_rkeys[i], s_other_signer, &body,
                                         &body_len), PT_ENV_BAD_SIGNATURE);
        CU_ASSERT_PTR_NULL(body);
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    CU_ASSERT_EQUAL(pt_envelope_open(env, h, "US-ORR", s_rkeys[0], s_sender, &body, &body_len),
                    PT_ENV_NOT_FOR_ME);
    if (n < 3)
        CU_ASSERT_EQUAL(pt_envelope_open(env, h, s_rnames[2], s_rkeys[2], s_sender, &body,
                                         &body_len), PT_ENV_NOT_FOR_ME);
    CU_ASSERT_PTR_NULL(body);
    puente__v1__header__free_unpacked(h, NULL);
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
}

static void test_one_recipient(void)
{
    s_round_trip(1);
}

static void test_three_recipients(void)
{
    s_round_trip(3);
}

static void test_wrong_key_open_failed(void)
{
    /* Opening GT-PGN's payload with a key that is not the one it was sealed to
       (a stranger's, or another recipient's): the key id differs, so OPEN_FAILED
       without trying to decrypt. Decryption failure proper is covered by
       test_payload_bound_to_message and the bit flips. */
    s_template_t t;
    s_template(&t, 1);
    pt_seal_key_t *impostor = pt_seal_key_generate();
    CU_ASSERT_FATAL(impostor != NULL);
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, 1, s_sender, &len);
    uint8_t *body = NULL;
    size_t body_len = 0;
    CU_ASSERT_EQUAL(s_receive(bytes, len, 0, impostor, s_sender, &body, &body_len),
                    PT_ENV_OPEN_FAILED);
    CU_ASSERT_EQUAL(s_receive(bytes, len, 0, s_rkeys[1], s_sender, &body, &body_len),
                    PT_ENV_OPEN_FAILED);
    CU_ASSERT_PTR_NULL(body);
    CU_ASSERT_EQUAL(s_receive(bytes, len, 0, s_rkeys[0], s_sender, &body, &body_len), PT_ENV_OK);
    free(body);
    pt_seal_key_destroy(&impostor);
    free(bytes);
}

static void test_header_signed_by_other(void)
{
    s_template_t t;
    s_template(&t, 2);
    size_t len = 0;
    /* Everything consistent, but made by another key than the registered sender's. */
    uint8_t *bytes = s_seal(&t.header, 2, s_other_signer, &len);
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    CU_ASSERT_FATAL(env != NULL);
    Puente__V1__Header *h = NULL;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_OK);
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_sender), PT_ENV_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_other_signer), PT_ENV_OK);
    /* A signature for the right bytes under the wrong domain is not a header signature. */
    uint8_t sig[64];
    CU_ASSERT_FATAL(pt_sign(s_sender, PT_DOMAIN_PAYLOAD, env->header.data, env->header.len, sig) == 0);
    memcpy(env->header_signature.data, sig, 64);
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_sender), PT_ENV_BAD_SIGNATURE);
    CU_ASSERT_FATAL(pt_sign(s_sender, PT_DOMAIN_HEADER, env->header.data, env->header.len, sig) == 0);
    memcpy(env->header_signature.data, sig, 64);
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_sender), PT_ENV_OK);
    env->header_signature.len = 63;
    CU_ASSERT_EQUAL(pt_envelope_verify_header(env, s_sender), PT_ENV_BAD_SIGNATURE);
    puente__v1__header__free_unpacked(h, NULL);
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
}

static void test_payload_mismatch(void)
{
    s_template_t t;
    s_template(&t, 3);
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, 3, s_sender, &len);
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    CU_ASSERT_FATAL(env != NULL);
    Puente__V1__Header *h = NULL;

    /* Swapped order. */
    Puente__V1__SealedPayload *tmp = env->payloads[0];
    env->payloads[0] = env->payloads[1];
    env->payloads[1] = tmp;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    CU_ASSERT_PTR_NULL(h);
    /* Swapped order with the names swapped back: the digests still catch it. */
    char *name = env->payloads[0]->recipient;
    env->payloads[0]->recipient = env->payloads[1]->recipient;
    env->payloads[1]->recipient = name;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    env->payloads[1]->recipient = env->payloads[0]->recipient;
    env->payloads[0]->recipient = name;
    env->payloads[1] = env->payloads[0];
    env->payloads[0] = tmp;
    CU_ASSERT_EQUAL_FATAL(pt_envelope_check(env, &h), PT_ENV_OK);
    puente__v1__header__free_unpacked(h, NULL);
    h = NULL;

    /* One payload missing. */
    env->n_payloads = 2;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    env->n_payloads = 3;
    /* Wrong sizes. */
    Puente__V1__SealedPayload *p = env->payloads[1];
    p->nonce.len = 11;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->nonce.len = 12;
    p->ephemeral_public.len = 31;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->ephemeral_public.len = 32;
    p->recipient_key_id.len = 16;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->recipient_key_id.len = 32;
    size_t ct_len = p->ciphertext.len;
    p->ciphertext.len = 15;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->ciphertext.len = ct_len - 1; /* right size class, wrong digest */
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->ciphertext.len = ct_len;
    p->ciphertext.data[0] ^= 0x80;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_PAYLOAD_MISMATCH);
    p->ciphertext.data[0] ^= 0x80;
    CU_ASSERT_EQUAL_FATAL(pt_envelope_check(env, &h), PT_ENV_OK);
    puente__v1__header__free_unpacked(h, NULL);
    h = NULL;
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
}

/* A payload sealed for one message cannot be carried by another, even with a
   header the sender signed for it: the message id is bound into HKDF info and AAD. */
static void test_payload_bound_to_message(void)
{
    s_template_t t1, t2;
    s_template(&t1, 1);
    s_template(&t2, 1);
    size_t len1 = 0, len2 = 0;
    uint8_t *b1 = s_seal(&t1.header, 1, s_sender, &len1);
    uint8_t *b2 = s_seal(&t2.header, 1, s_sender, &len2);
    Puente__V1__Envelope *e1 = puente__v1__envelope__unpack(NULL, len1, b1);
    Puente__V1__Envelope *e2 = puente__v1__envelope__unpack(NULL, len2, b2);
    CU_ASSERT_FATAL(e1 && e2);
    Puente__V1__Header *h1 = puente__v1__header__unpack(NULL, e1->header.len, e1->header.data);
    Puente__V1__Header *h2 = puente__v1__header__unpack(NULL, e2->header.len, e2->header.data);
    CU_ASSERT_FATAL(h1 && h2);
    /* Header of message 1 re-signed with message 2's payload digest. */
    ProtobufCBinaryData saved = h1->payload_sha256[0];
    h1->payload_sha256[0] = h2->payload_sha256[0];
    size_t hlen = puente__v1__header__get_packed_size(h1);
    uint8_t *hbytes = malloc(hlen);
    CU_ASSERT_FATAL(hbytes && puente__v1__header__pack(h1, hbytes) == hlen);
    h1->payload_sha256[0] = saved;
    uint8_t sig[64];
    CU_ASSERT_FATAL(pt_sign(s_sender, PT_DOMAIN_HEADER, hbytes, hlen, sig) == 0);
    Puente__V1__Envelope forged = PUENTE__V1__ENVELOPE__INIT;
    forged.header = (ProtobufCBinaryData){hlen, hbytes};
    forged.header_signature = (ProtobufCBinaryData){64, sig};
    forged.n_payloads = 1;
    forged.payloads = e2->payloads;
    Puente__V1__Header *h = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_envelope_check(&forged, &h), PT_ENV_OK);
    CU_ASSERT_EQUAL(pt_envelope_verify_header(&forged, s_sender), PT_ENV_OK);
    uint8_t *body = NULL;
    size_t body_len = 0;
    CU_ASSERT_EQUAL(pt_envelope_open(&forged, h, s_rnames[0], s_rkeys[0], s_sender, &body,
                                     &body_len), PT_ENV_OPEN_FAILED);
    CU_ASSERT_PTR_NULL(body);
    /* A header from another envelope does not fit this envelope's payloads. */
    CU_ASSERT_EQUAL(pt_envelope_open(e1, h2, s_rnames[0], s_rkeys[0], s_sender, &body, &body_len),
                    PT_ENV_PAYLOAD_MISMATCH);
    puente__v1__header__free_unpacked(h, NULL);
    puente__v1__header__free_unpacked(h1, NULL);
    puente__v1__header__free_unpacked(h2, NULL);
    puente__v1__envelope__free_unpacked(e1, NULL);
    puente__v1__envelope__free_unpacked(e2, NULL);
    free(hbytes);
    free(b1);
    free(b2);
}

static void test_truncated_header(void)
{
    s_template_t t;
    s_template(&t, 2);
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, 2, s_sender, &len);
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    CU_ASSERT_FATAL(env != NULL);
    size_t full = env->header.len;
    size_t not_malformed = 0;
    /* Every proper prefix either fails to decode or loses schema_version (field 15,
       the last one the template sets). */
    for (size_t cut = 0; cut < full; cut++) {
        env->header.len = cut;
        Puente__V1__Header *h = NULL;
        pt_env_result_t r = pt_envelope_check(env, &h);
        if (r != PT_ENV_MALFORMED) {
            not_malformed++;
            fprintf(stderr, "\n  header cut at %zu/%zu: %s", cut, full, pt_env_result_str(r));
        }
        if (h)
            puente__v1__header__free_unpacked(h, NULL);
    }
    CU_ASSERT_EQUAL(not_malformed, 0);
    env->header.len = full;
    Puente__V1__Header *h = NULL;
    CU_ASSERT_EQUAL(pt_envelope_check(env, &h), PT_ENV_OK);
    puente__v1__header__free_unpacked(h, NULL);
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
}

/* Seals t and runs pt_envelope_check on the result. */
static pt_env_result_t s_check_template(const Puente__V1__Header *header, size_t n)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    pt_env_result_t r = pt_envelope_seal(header, s_body, sizeof s_body, s_sender,
                                         (const pt_seal_key_t *const *) s_rkeys, n, &bytes, &len);
    if (r != PT_ENV_OK)
        return r;
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    Puente__V1__Header *h = NULL;
    r = env ? pt_envelope_check(env, &h) : PT_ENV_MALFORMED;
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
    return r;
}

static void test_header_limits(void)
{
    s_template_t t;
    s_template(&t, 1);
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_OK);

    uint8_t short_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    t.header.correlation_id = (ProtobufCBinaryData){8, short_id};
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.header.correlation_id = (ProtobufCBinaryData){16, t.correlation_id};
    t.header.causation_id = (ProtobufCBinaryData){8, short_id};
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.header.causation_id = (ProtobufCBinaryData){16, t.correlation_id};
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_OK);
    /* Seal itself refuses a message id that is not 16 bytes. */
    t.header.message_id = (ProtobufCBinaryData){8, short_id};
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.header.message_id = (ProtobufCBinaryData){16, t.message_id};

    /* Strings: 256 bytes pass, 257 do not. */
    char long_str[258];
    memset(long_str, 'a', sizeof long_str);
    long_str[256] = '\0';
    t.header.purpose = long_str;
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_OK);
    long_str[256] = 'a';
    long_str[257] = '\0';
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.header.purpose = "service_provision";
    char *withhold[] = {long_str};
    t.consent.n_withhold_from = 1;
    t.consent.withhold_from = withhold;
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.consent.n_withhold_from = 0;

    /* Sender and recipients must be organisation ids; recipients unique. */
    t.header.sender = "mx-dif";
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    t.header.sender = "MX-DIF";
    char *dup[] = {"GT-PGN", "GT-PGN"};
    t.header.recipients = dup;
    t.header.n_recipients = 2;
    CU_ASSERT_EQUAL(s_check_template(&t.header, 2), PT_ENV_MALFORMED);
    t.header.recipients = s_rnames;
    t.header.n_recipients = 1;

    /* More than 64 recipients: seal refuses to build it. */
    char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = "GT-PGN";
    t.header.recipients = many;
    t.header.n_recipients = 65;
    const pt_seal_key_t *keys65[65];
    for (int i = 0; i < 65; i++)
        keys65[i] = s_rkeys[0];
    uint8_t *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL(pt_envelope_seal(&t.header, s_body, sizeof s_body, s_sender, keys65, 65, &out,
                                     &out_len), PT_ENV_MALFORMED);
    CU_ASSERT_PTR_NULL(out);
    t.header.recipients = s_rnames;
    t.header.n_recipients = 1;
    /* Count mismatch between template and keys. */
    CU_ASSERT_EQUAL(pt_envelope_seal(&t.header, s_body, sizeof s_body, s_sender,
                                     (const pt_seal_key_t *const *) s_rkeys, 2, &out, &out_len),
                    PT_ENV_MALFORMED);
    /* A public-only sender key cannot seal. */
    uint8_t pub[32];
    pt_sign_key_public(s_sender, pub);
    pt_sign_key_t *pub_only = pt_sign_key_from_public(pub, 32);
    CU_ASSERT_NOT_EQUAL(pt_envelope_seal(&t.header, s_body, sizeof s_body, pub_only,
                                         (const pt_seal_key_t *const *) s_rkeys, 1, &out,
                                         &out_len), PT_ENV_OK);
    pt_sign_key_destroy(&pub_only);
    CU_ASSERT_PTR_NULL(out);
}

/* Envelope with 65 recipients built by hand (seal refuses): check says MALFORMED. */
static void test_too_many_recipients_check(void)
{
    s_template_t t;
    s_template(&t, 1);
    char *many[65];
    char names[65][8];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], "MX-%d", i);
        many[i] = names[i];
    }
    t.header.recipients = many;
    t.header.n_recipients = 65;
    t.header.schema_version = PT_SCHEMA_VERSION;
    uint8_t kid[32] = {0};
    t.header.sender_key_id = (ProtobufCBinaryData){32, kid};
    size_t hlen = puente__v1__header__get_packed_size(&t.header);
    uint8_t *hbytes = malloc(hlen);
    CU_ASSERT_FATAL(hbytes && puente__v1__header__pack(&t.header, hbytes) == hlen);
    Puente__V1__Envelope env = PUENTE__V1__ENVELOPE__INIT;
    env.header = (ProtobufCBinaryData){hlen, hbytes};
    Puente__V1__Header *h = NULL;
    CU_ASSERT_EQUAL(pt_envelope_check(&env, &h), PT_ENV_MALFORMED);
    /* With 64 it is no longer the recipient count that fails but the missing payloads. */
    t.header.n_recipients = 64;
    hlen = puente__v1__header__pack(&t.header, hbytes);
    env.header.len = hlen;
    CU_ASSERT_EQUAL(pt_envelope_check(&env, &h), PT_ENV_PAYLOAD_MISMATCH);
    CU_ASSERT_PTR_NULL(h);
    free(hbytes);
    /* No header at all. */
    Puente__V1__Envelope empty = PUENTE__V1__ENVELOPE__INIT;
    CU_ASSERT_EQUAL(pt_envelope_check(&empty, &h), PT_ENV_MALFORMED);
    CU_ASSERT_EQUAL(pt_envelope_check(NULL, &h), PT_ENV_MALFORMED);
}

/* Replaces env->header with header || extra and runs check. */
static pt_env_result_t s_check_with_suffix(Puente__V1__Envelope *env, const uint8_t *extra,
                                           size_t extra_len)
{
    ProtobufCBinaryData saved = env->header;
    uint8_t *buf = malloc(saved.len + extra_len);
    CU_ASSERT_FATAL(buf != NULL);
    memcpy(buf, saved.data, saved.len);
    memcpy(buf + saved.len, extra, extra_len);
    env->header = (ProtobufCBinaryData){saved.len + extra_len, buf};
    Puente__V1__Header *h = NULL;
    pt_env_result_t r = pt_envelope_check(env, &h);
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    env->header = saved;
    free(buf);
    return r;
}

static void test_hostile_strings(void)
{
    s_template_t t;
    s_template(&t, 1);
    /* Measured: protobuf-c 1.4.1 unpacks a proto3 string that is not UTF-8 without
       complaint, so pt_envelope_check must validate UTF-8 itself. If this first
       assertion ever fails, protobuf-c started checking and the note in
       pt_envelope.c can say so. */
    t.header.purpose = "\xff\xfe not utf-8";
    t.header.schema_version = PT_SCHEMA_VERSION;
    size_t hlen = puente__v1__header__get_packed_size(&t.header);
    uint8_t *hbytes = malloc(hlen);
    CU_ASSERT_FATAL(hbytes && puente__v1__header__pack(&t.header, hbytes) == hlen);
    Puente__V1__Header *raw = puente__v1__header__unpack(NULL, hlen, hbytes);
    CU_ASSERT_PTR_NOT_NULL(raw);
    if (raw)
        puente__v1__header__free_unpacked(raw, NULL);
    free(hbytes);
    t.header.schema_version = 0;
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    const char *bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        t.header.case_token = (char *) bad_utf8[i];
        CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_MALFORMED);
    }
    t.header.case_token = "niño-ñ-€-😀"; /* valid multi-byte UTF-8 passes */
    t.header.purpose = "service_provision";
    CU_ASSERT_EQUAL(s_check_template(&t.header, 1), PT_ENV_OK);

    /* Bytes the decoded header would not say: an embedded NUL (protobuf-c cuts the
       string there) or a duplicated field (last one wins). */
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, 1, s_sender, &len);
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
    CU_ASSERT_FATAL(env != NULL);
    const uint8_t nul_in_service_type[] = {0x82, 0x01, 0x03, 'a', 0x00, 'b'}; /* field 16 */
    CU_ASSERT_EQUAL(s_check_with_suffix(env, nul_in_service_type, sizeof nul_in_service_type),
                    PT_ENV_MALFORMED);
    const uint8_t second_sender[] = {0x2a, 0x06, 'G', 'T', '-', 'P', 'G', 'N'}; /* field 5 */
    CU_ASSERT_EQUAL(s_check_with_suffix(env, second_sender, sizeof second_sender),
                    PT_ENV_MALFORMED);
    /* An unknown field (a newer schema) is kept, not refused. */
    const uint8_t unknown_field[] = {0x98, 0x06, 0x01}; /* field 99, varint 1 */
    CU_ASSERT_EQUAL(s_check_with_suffix(env, unknown_field, sizeof unknown_field), PT_ENV_OK);
    /* Garbage. */
    const uint8_t garbage[] = {0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(s_check_with_suffix(env, garbage, sizeof garbage), PT_ENV_MALFORMED);
    puente__v1__envelope__free_unpacked(env, NULL);
    free(bytes);
}

/* Every single-bit flip of the packed envelope: if it still decodes, check, verify
   and open must not all succeed. */
static void test_envelope_bit_flips(void)
{
    s_template_t t;
    s_template(&t, 2);
    size_t len = 0;
    uint8_t *bytes = s_seal(&t.header, 2, s_sender, &len);
    uint8_t *body = NULL;
    size_t body_len = 0;
    CU_ASSERT_EQUAL_FATAL(s_receive(bytes, len, 0, s_rkeys[0], s_sender, &body, &body_len),
                          PT_ENV_OK);
    free(body);
    size_t accepted = 0, decoded = 0;
    for (size_t bit = 0; bit < 8 * len; bit++) {
        bytes[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, bytes);
        if (env) {
            decoded++;
            puente__v1__envelope__free_unpacked(env, NULL);
        }
        for (size_t i = 0; i < 2; i++) {
            body = NULL;
            if (s_receive(bytes, len, i, s_rkeys[i], s_sender, &body, &body_len) == PT_ENV_OK) {
                accepted++;
                fprintf(stderr, "\n  bit %zu accepted for recipient %zu", bit, i);
                free(body);
            }
        }
        bytes[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(accepted, 0);
    /* The flips exercised the checks, not only the decoder. */
    CU_ASSERT(decoded > len);
    CU_ASSERT_EQUAL(s_receive(bytes, len, 1, s_rkeys[1], s_sender, &body, &body_len), PT_ENV_OK);
    free(body);
    free(bytes);
}

static void test_result_str(void)
{
    CU_ASSERT_STRING_EQUAL(pt_env_result_str(PT_ENV_OK), "ok");
    CU_ASSERT_STRING_EQUAL(pt_env_result_str(PT_ENV_PAYLOAD_MISMATCH), "payload mismatch");
    CU_ASSERT_STRING_EQUAL(pt_env_result_str((pt_env_result_t) 42), "unknown");
}

static int s_suite_init(void)
{
    s_sender = pt_sign_key_generate();
    s_other_signer = pt_sign_key_generate();
    for (int i = 0; i < 3; i++)
        s_rkeys[i] = pt_seal_key_generate();
    return (s_sender && s_other_signer && s_rkeys[0] && s_rkeys[1] && s_rkeys[2]) ? 0 : -1;
}

static int s_suite_clean(void)
{
    pt_sign_key_destroy(&s_sender);
    pt_sign_key_destroy(&s_other_signer);
    for (int i = 0; i < 3; i++)
        pt_seal_key_destroy(&s_rkeys[i]);
    return 0;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("pt_envelope", s_suite_init, s_suite_clean);
    if (!suite)
        goto fail;
    struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"seal/check/verify/open, 1 recipient", test_one_recipient},
        {"seal/check/verify/open, 3 recipients", test_three_recipients},
        {"wrong recipient key: OPEN_FAILED", test_wrong_key_open_failed},
        {"header signed by another key: BAD_SIGNATURE", test_header_signed_by_other},
        {"payload order, counts, sizes, digests: PAYLOAD_MISMATCH", test_payload_mismatch},
        {"payload bound to its message id", test_payload_bound_to_message},
        {"every truncation of the header: MALFORMED", test_truncated_header},
        {"header limits", test_header_limits},
        {"more than 64 recipients, empty envelope", test_too_many_recipients_check},
        {"UTF-8, embedded NUL, duplicate and unknown fields", test_hostile_strings},
        {"every bit flip of the packed envelope is refused", test_envelope_bit_flips},
        {"result strings", test_result_str},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto fail;
    return pt_cu_main();

fail:
    CU_cleanup_registry();
    return 2;
}

/*  Unit tests of the SDK helpers that need no broker: durations, ISO 8601 times,
    legal basis and reject names, consent derivation, directory and receipt
    signature checks (with a locally generated broker key). */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "pt_json.h"
#include "pt_receipt.h"
#include "puente.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "pt_sdk_internal.h"
#include "pt_types.h"
#include "referral.pb-c.h"
#include "cu_main.h"

static void test_duration(void)
{
    int64_t ms = 0;
    CU_ASSERT_EQUAL(puente_duration_parse("7d", &ms), 0);
    CU_ASSERT_EQUAL(ms, 7LL * 86400 * 1000);
    CU_ASSERT_EQUAL(puente_duration_parse("500ms", &ms), 0);
    CU_ASSERT_EQUAL(ms, 500);
    CU_ASSERT_EQUAL(puente_duration_parse("5", &ms), 0);
    CU_ASSERT_EQUAL(ms, 5000);
    CU_ASSERT_EQUAL(puente_duration_parse("5s", &ms), 0);
    CU_ASSERT_EQUAL(ms, 5000);
    CU_ASSERT_EQUAL(puente_duration_parse("2m", &ms), 0);
    CU_ASSERT_EQUAL(ms, 120000);
    CU_ASSERT_EQUAL(puente_duration_parse("12h", &ms), 0);
    CU_ASSERT_EQUAL(ms, 12LL * 3600 * 1000);
    ms = 42;
    CU_ASSERT_EQUAL(puente_duration_parse("", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("d", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("5x", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("-1s", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("5 s", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("99999999999999999999d", &ms), -1);
    CU_ASSERT_EQUAL(puente_duration_parse("200000000000000d", &ms), -1);
    CU_ASSERT_EQUAL(ms, 42); /* untouched on failure */
}

static void test_time_parse(void)
{
    int64_t ms = -1;
    CU_ASSERT_EQUAL(puente_time_parse("1970-01-01T00:00:00Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, 0);
    /* 2025-03-01T12:00:00Z = 1740830400 s */
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T12:00:00.250Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1740830400250LL);
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T14:00:00+02:00", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1740830400000LL);
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T06:00-06:00", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1740830400000LL);
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1740787200000LL);
    CU_ASSERT_EQUAL(puente_time_parse("2024-02-29T00:00:00Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1709164800000LL);
    ms = 7;
    CU_ASSERT_EQUAL(puente_time_parse("2025-02-29", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("2025-04-31", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("2025-13-01", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T12:00:00", &ms), -1); /* no zone */
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T25:00:00Z", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("2025-03-01T12:00:00Zjunk", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("25-03-01", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse("", &ms), -1);
    CU_ASSERT_EQUAL(puente_time_parse(NULL, &ms), -1);
    CU_ASSERT_EQUAL(ms, 7);
}

static void test_time_format(void)
{
    char out[40];
    puente_time_format(0, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00.000Z");
    puente_time_format(1740830400250LL, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "2025-03-01T12:00:00.250Z");
    int64_t back = 0;
    CU_ASSERT_EQUAL(puente_time_parse(out, &back), 0);
    CU_ASSERT_EQUAL(back, 1740830400250LL);
}

static void test_names(void)
{
    CU_ASSERT_EQUAL(puente_legal_basis_parse("consent"), PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT);
    CU_ASSERT_EQUAL(puente_legal_basis_parse("vital_interests"),
                    PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS);
    CU_ASSERT_EQUAL(puente_legal_basis_parse("best-interests"),
                    PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_BEST_INTERESTS);
    CU_ASSERT_EQUAL(puente_legal_basis_parse("LEGAL_BASIS_LEGAL_OBLIGATION"),
                    PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_LEGAL_OBLIGATION);
    CU_ASSERT_EQUAL(puente_legal_basis_parse("unspecified"), -1);
    CU_ASSERT_EQUAL(puente_legal_basis_parse("bogus"), -1);
    CU_ASSERT_EQUAL(puente_legal_basis_parse(""), -1);
    CU_ASSERT_STRING_EQUAL(puente_reject_name(7), "REJECT_NO_AGREEMENT");
    CU_ASSERT_STRING_EQUAL(puente_reject_name(16), "REJECT_RETRY_LATER");
    CU_ASSERT_STRING_EQUAL(puente_reject_name(999), "REJECT_UNKNOWN");
}

static void test_consent_derive(void)
{
    Puente__V1__ReferralRequest req = PUENTE__V1__REFERRAL_REQUEST__INIT;
    Puente__V1__ConsentBlock block = PUENTE__V1__CONSENT_BLOCK__INIT;
    Puente__V1__ConsentOverride ov = PUENTE__V1__CONSENT_OVERRIDE__INIT;
    Puente__V1__LegalBasis bases[] = { PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT,
                                       PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS };
    char *withhold[] = { "HN-DINAF", "SV-CONNA" };
    block.consent_for_services = 1;
    block.disclosure_other_orgs = 0;
    block.consent_for_tracing = 1;
    block.n_legitimate_basis = 2;
    block.legitimate_basis = bases;
    block.n_withhold_from = 2;
    block.withhold_from = withhold;
    req.consent = &block;

    Puente__V1__ConsentSummary cs;
    CU_ASSERT_EQUAL(puente_consent_derive(&req.base, &cs), 1);
    CU_ASSERT_EQUAL(cs.consent_for_services, 1);
    CU_ASSERT_EQUAL(cs.disclosure_other_orgs, 0);
    CU_ASSERT_EQUAL(cs.consent_for_tracing, 1);
    CU_ASSERT_EQUAL(cs.legal_basis, PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT);
    CU_ASSERT_EQUAL(cs.n_withhold_from, 2);
    CU_ASSERT_STRING_EQUAL(cs.withhold_from[1], "SV-CONNA");
    CU_ASSERT_EQUAL(cs.overridden, 0);

    ov.approver = "sup-7";
    ov.justification_code = "imminent_risk";
    ov.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS;
    block.override = &ov;
    CU_ASSERT_EQUAL(puente_consent_derive(&req.base, &cs), 1);
    CU_ASSERT_EQUAL(cs.overridden, 1);
    CU_ASSERT_STRING_EQUAL(cs.override_approver, "sup-7");
    CU_ASSERT_EQUAL(cs.legal_basis, PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS);

    /* An empty override is no override. */
    Puente__V1__ConsentOverride empty = PUENTE__V1__CONSENT_OVERRIDE__INIT;
    block.override = &empty;
    CU_ASSERT_EQUAL(puente_consent_derive(&req.base, &cs), 1);
    CU_ASSERT_EQUAL(cs.overridden, 0);

    /* No consent block: defaults, return 0. */
    req.consent = NULL;
    cs.consent_for_services = 1;
    CU_ASSERT_EQUAL(puente_consent_derive(&req.base, &cs), 0);
    CU_ASSERT_EQUAL(cs.consent_for_services, 0);
    CU_ASSERT_EQUAL(cs.n_withhold_from, 0);

    /* A message type without a consent field at all. */
    Puente__V1__ReferralRejection rj = PUENTE__V1__REFERRAL_REJECTION__INIT;
    CU_ASSERT_EQUAL(puente_consent_derive(&rj.base, &cs), 0);
    CU_ASSERT_EQUAL(puente_consent_derive(NULL, &cs), 0);
}

/* The example body every caseworker starts from: its consent reaches the header. */
static void test_consent_from_example_json(void)
{
    const pt_type_t *t = pt_types_find("referral.request");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES];
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(t->descriptor, t->example_json,
                                             strlen(t->example_json), &msg, err, sizeof err),
                          0);
    const Puente__V1__ReferralRequest *req = (const Puente__V1__ReferralRequest *) msg;
    Puente__V1__ConsentSummary cs;
    int has = puente_consent_derive(msg, &cs);
    CU_ASSERT_EQUAL(has, req->consent != NULL);
    if (req->consent) {
        CU_ASSERT_EQUAL(cs.consent_for_services, req->consent->consent_for_services);
        CU_ASSERT_EQUAL(cs.disclosure_other_orgs, req->consent->disclosure_other_orgs);
        CU_ASSERT_EQUAL(cs.consent_for_tracing, req->consent->consent_for_tracing);
        CU_ASSERT_EQUAL(cs.n_withhold_from, req->consent->n_withhold_from);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static uint8_t *s_pack_entries(const Puente__V1__DirectoryEntries *e, size_t *len)
{
    *len = puente__v1__directory_entries__get_packed_size(e);
    uint8_t *buf = malloc(*len + 1);
    puente__v1__directory_entries__pack(e, buf);
    return buf;
}

static void test_directory_verify(void)
{
    pt_sign_key_t *broker = pt_sign_key_generate();
    pt_sign_key_t *other = pt_sign_key_generate();
    pt_keyset_t *org = pt_keyset_generate("GT-PGN");
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT_PTR_NOT_NULL_FATAL(org);
    uint8_t sign_pub[32], seal_pub[32], curve_pub[32];
    pt_sign_key_public(pt_keyset_sign(org), sign_pub);
    pt_seal_key_public(pt_keyset_seal(org), seal_pub);
    memcpy(curve_pub, pt_keyset_curve_public(org), 32);

    Puente__V1__OrgKeys keys = PUENTE__V1__ORG_KEYS__INIT;
    keys.org_id = "GT-PGN";
    keys.sign_public = (ProtobufCBinaryData) { 32, sign_pub };
    keys.seal_public = (ProtobufCBinaryData) { 32, seal_pub };
    keys.curve_public = (ProtobufCBinaryData) { 32, curve_pub };
    keys.enabled = 1;
    Puente__V1__OrgKeys *list[] = { &keys };
    Puente__V1__DirectoryEntries entries = PUENTE__V1__DIRECTORY_ENTRIES__INIT;
    entries.n_orgs = 1;
    entries.orgs = list;
    entries.issued_at_ms = 1740830400000LL;
    size_t len;
    uint8_t *packed = s_pack_entries(&entries, &len);
    uint8_t sig[PT_ED25519_SIG_BYTES];
    CU_ASSERT_EQUAL_FATAL(pt_sign(broker, PT_DOMAIN_DIRECTORY, packed, len, sig), 0);

    Puente__V1__DirectoryReply reply = PUENTE__V1__DIRECTORY_REPLY__INIT;
    reply.entries = (ProtobufCBinaryData) { len, packed };
    reply.signature = (ProtobufCBinaryData) { sizeof sig, sig };
    Puente__V1__DirectoryEntries *out = NULL;
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, broker, &out), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(out->n_orgs, 1);
    CU_ASSERT_STRING_EQUAL(out->orgs[0]->org_id, "GT-PGN");
    CU_ASSERT_EQUAL(memcmp(out->orgs[0]->seal_public.data, seal_pub, 32), 0);
    CU_ASSERT_EQUAL(out->issued_at_ms, 1740830400000LL);
    puente__v1__directory_entries__free_unpacked(out, NULL);

    /* Another key, a tampered entry, a truncated signature: all refused. */
    out = NULL;
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, other, &out), -1);
    CU_ASSERT_PTR_NULL(out);
    packed[len - 1] ^= 1;
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, broker, &out), -1);
    packed[len - 1] ^= 1;
    reply.signature.len = 63;
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, broker, &out), -1);
    reply.signature.len = 64;
    /* A signature made for another purpose does not transfer. */
    uint8_t wrong[PT_ED25519_SIG_BYTES];
    pt_sign(broker, PT_DOMAIN_RECEIPT, packed, len, wrong);
    reply.signature.data = wrong;
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, broker, &out), -1);
    free(packed);

    /* Signed but malformed: a 31-byte key is refused, not passed on. */
    keys.seal_public.len = 31;
    packed = s_pack_entries(&entries, &len);
    pt_sign(broker, PT_DOMAIN_DIRECTORY, packed, len, sig);
    reply.entries = (ProtobufCBinaryData) { len, packed };
    reply.signature = (ProtobufCBinaryData) { sizeof sig, sig };
    CU_ASSERT_EQUAL(puente_directory_verify(&reply, broker, &out), -1);
    CU_ASSERT_PTR_NULL(out);
    free(packed);

    pt_keyset_destroy(&org);
    pt_sign_key_destroy(&broker);
    pt_sign_key_destroy(&other);
}

static void test_receipt_verify(void)
{
    pt_sign_key_t *broker = pt_sign_key_generate();
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    uint8_t id[16], hsha[32], ehash[32], sig[64];
    pt_uuidv7(id);
    pt_random(hsha, sizeof hsha);
    pt_random(ehash, sizeof ehash);
    int64_t at = 1740830400250LL;
    CU_ASSERT_EQUAL_FATAL(pt_receipt_sign(broker, id, at, hsha, ehash, sig), 0);
    Puente__V1__Receipt r = PUENTE__V1__RECEIPT__INIT;
    r.message_id = (ProtobufCBinaryData) { 16, id };
    r.stored_at_ms = at;
    r.header_sha256 = (ProtobufCBinaryData) { 32, hsha };
    r.event_hash = (ProtobufCBinaryData) { 32, ehash };
    r.broker_signature = (ProtobufCBinaryData) { 64, sig };
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
    r.duplicate = 1; /* not signed: a duplicate repeats the original signature */
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, other), -1);
    r.stored_at_ms = at + 1;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.stored_at_ms = at;
    ehash[0] ^= 0x80;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    ehash[0] ^= 0x80;
    r.message_id.len = 15;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.message_id.len = 16;
    r.broker_signature.len = 0;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    CU_ASSERT_EQUAL(puente_receipt_verify(NULL, broker), -1);
    r.broker_signature.len = 64;
    /* Format 1 said outright verifies as well; with a batch field set it is not one. */
    r.format = 1;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
    r.batch_size = 1;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.batch_size = 0;
    r.batch_index = 1;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.batch_index = 0;
    /* A single signature read as a batch of one (another domain) fails. */
    r.format = 2;
    r.batch_size = 1;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.format = 3;
    r.batch_size = 0;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.format = 0;
    r.message_id.data = NULL;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
    r.message_id.data = id;
    CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
    pt_sign_key_destroy(&broker);
    pt_sign_key_destroy(&other);
}

/* Format 2: five receipts under one batch signature (built as the broker does,
   with pt_receipt and pt_merkle); malformed batch fields are refused. */
static void test_receipt_verify_batch(void)
{
    enum { N = 5 };
    pt_sign_key_t *broker = pt_sign_key_generate();
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(broker);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    uint8_t ids[N][16], hsha[N][32], ehash[N][32], sig[64];
    int64_t at = 1740830400250LL;
    pt_merkle_hash_t nodes[16], root;
    CU_ASSERT_FATAL(pt_merkle_tree_hashes(N) <= 16);
    for (int k = 0; k < N; k++) {
        pt_uuidv7(ids[k]);
        pt_random(hsha[k], 32);
        pt_random(ehash[k], 32);
        pt_receipt_leaf_hash(ids[k], at + k, hsha[k], ehash[k], nodes[k]);
    }
    pt_merkle_tree_build(nodes, N, root);
    CU_ASSERT_EQUAL_FATAL(pt_receipt_batch_sign(broker, N, root, sig), 0);
    CU_ASSERT_EQUAL(pt_receipt_batch_sign(broker, 0, root, sig + 0), -1);
    CU_ASSERT_EQUAL(pt_receipt_batch_sign(broker, PT_RECEIPT_BATCH_MAX + 1, root, sig), -1);
    CU_ASSERT_EQUAL_FATAL(pt_receipt_batch_sign(broker, N, root, sig), 0);
    size_t verified = 0;
    for (int k = 0; k < N; k++) {
        pt_merkle_hash_t path[PT_MERKLE_MAX_PROOF];
        ProtobufCBinaryData items[PT_MERKLE_MAX_PROOF];
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(pt_merkle_tree_path(nodes, N, (size_t)k, path, &len), 0);
        CU_ASSERT_EQUAL(len, k == 4 ? 1u : 3u);
        for (size_t i = 0; i < len; i++)
            items[i] = (ProtobufCBinaryData){32, path[i]};
        Puente__V1__Receipt r = PUENTE__V1__RECEIPT__INIT;
        r.message_id = (ProtobufCBinaryData){16, ids[k]};
        r.stored_at_ms = at + k;
        r.header_sha256 = (ProtobufCBinaryData){32, hsha[k]};
        r.event_hash = (ProtobufCBinaryData){32, ehash[k]};
        r.broker_signature = (ProtobufCBinaryData){64, sig};
        r.format = 2;
        r.batch_size = N;
        r.batch_index = (uint32_t)k;
        r.n_batch_path = len;
        r.batch_path = items;
        verified += puente_receipt_verify(&r, broker) == 0;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, other), -1);
        if (k != 2)
            continue;
        /* Leaf 2 of 5: a path of 3. One hash short or one too many: refused. */
        r.n_batch_path = 2;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        items[3] = items[0];
        r.n_batch_path = 4;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        /* A count far past the array: refused before any item is read. */
        r.n_batch_path = 100000;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.n_batch_path = 3;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
        /* Path hashes of 31 or 33 bytes, or no bytes at all. */
        items[1].len = 31;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        items[1].len = 33;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        items[1].len = 32;
        uint8_t *keep = items[1].data;
        items[1].data = NULL;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        items[1].data = keep;
        r.batch_path = NULL;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.batch_path = items;
        /* Index and size out of range, or not the signed ones. */
        const uint32_t bad_index[] = {5, 6, 3, 1, UINT32_MAX};
        for (size_t i = 0; i < sizeof bad_index / sizeof bad_index[0]; i++) {
            r.batch_index = bad_index[i];
            CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        }
        r.batch_index = 2;
        /* 6, 7 and 8 give leaf 2 a path of 3 too: refused by the signed size. */
        const uint32_t bad_size[] = {0, 2, 4, 6, 7, 8, PT_RECEIPT_BATCH_MAX + 1, UINT32_MAX};
        for (size_t i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++) {
            r.batch_size = bad_size[i];
            CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        }
        r.batch_size = N;
        r.format = 1;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.format = 0;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.format = 2;
        r.broker_signature.len = 63;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.broker_signature.len = 64;
        r.event_hash.len = 31;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), -1);
        r.event_hash.len = 32;
        CU_ASSERT_EQUAL(puente_receipt_verify(&r, broker), 0);
    }
    CU_ASSERT_EQUAL(verified, N);
    /* A batch size over the bound with a path of the implied length (13 hashes
       for leaf 0 of 4097 leaves): refused as too large, whatever it signs. */
    pt_merkle_hash_t zeros[13];
    ProtobufCBinaryData items[13];
    memset(zeros, 0, sizeof zeros);
    for (size_t i = 0; i < 13; i++)
        items[i] = (ProtobufCBinaryData){32, zeros[i]};
    Puente__V1__Receipt big = PUENTE__V1__RECEIPT__INIT;
    big.message_id = (ProtobufCBinaryData){16, ids[0]};
    big.header_sha256 = (ProtobufCBinaryData){32, hsha[0]};
    big.event_hash = (ProtobufCBinaryData){32, ehash[0]};
    big.broker_signature = (ProtobufCBinaryData){64, sig};
    big.format = 2;
    big.batch_size = PT_RECEIPT_BATCH_MAX + 1;
    big.n_batch_path = 13;
    big.batch_path = items;
    CU_ASSERT_EQUAL(puente_receipt_verify(&big, broker), -1);
    pt_sign_key_destroy(&broker);
    pt_sign_key_destroy(&other);
}

/* Seals msg (the example body of its type) from US-ORR to GT-PGN and returns the
   header the broker would read, or NULL with *rc the refusal. */
static Puente__V1__Header *s_sealed_header(pt_send_t *msg, pt_client_result_t *rc, char *err,
                                           size_t cap)
{
    const pt_type_t *t = pt_types_find(msg->message_type);
    ProtobufCMessage *body = NULL;
    char jerr[PT_JSON_ERR_BYTES];
    CU_ASSERT_EQUAL_FATAL(pt_json_to_message(t->descriptor, t->example_json,
                                             strlen(t->example_json), &body, jerr, sizeof jerr),
                          0);
    size_t len = protobuf_c_message_get_packed_size(body);
    uint8_t *bytes = malloc(len);
    protobuf_c_message_pack(body, bytes);
    protobuf_c_message_free_unpacked(body, NULL);
    pt_keyset_t *me = pt_keyset_generate("US-ORR"), *to = pt_keyset_generate("GT-PGN");
    const pt_keyset_t *keys[1] = {to};
    const char *recipients[1] = {"GT-PGN"};
    Puente__V1__DirectoryEntries entries = PUENTE__V1__DIRECTORY_ENTRIES__INIT;
    msg->recipients = recipients;
    msg->n_recipients = 1;
    msg->case_token = "CASE-SEAL-1";
    msg->body = bytes;
    msg->body_len = len;
    uint8_t *env = NULL, id[16], corr[16];
    size_t env_len = 0;
    *rc = pt_sdk_seal("US-ORR", me, msg, keys, &entries, 1 << 20, &env, &env_len, id, corr, err,
                      cap);
    Puente__V1__Header *header = NULL;
    if (*rc == PT_CLIENT_OK) {
        Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, env_len, env);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        CU_ASSERT_EQUAL(pt_envelope_check(e, &header), PT_ENV_OK);
        puente__v1__envelope__free_unpacked(e, NULL);
    }
    free(env);
    free(bytes);
    pt_keyset_destroy(&me);
    pt_keyset_destroy(&to);
    return header;
}

/* The header fields the broker routes by come from the body unless given, and a
   given search_countries must equal the trace request's. */
static void test_seal_routing_fields(void)
{
    char err[PUENTE_ERR_BYTES];
    pt_client_result_t rc;
    pt_send_t msg = {.message_type = "tracing.request"};
    Puente__V1__Header *h = s_sealed_header(&msg, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, PT_CLIENT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL_FATAL(h->n_search_countries, 3);
    CU_ASSERT_STRING_EQUAL(h->search_countries[0], "GT");
    CU_ASSERT_STRING_EQUAL(h->search_countries[1], "HN");
    CU_ASSERT_STRING_EQUAL(h->search_countries[2], "SV");
    puente__v1__header__free_unpacked(h, NULL);
    const char *same[] = {"SV", "GT", "HN"}, *fewer[] = {"GT", "HN"}, *other[] = {"GT", "HN", "MX"};
    msg = (pt_send_t){.message_type = "tracing.request", .search_countries = same,
                      .n_search_countries = 3};
    h = s_sealed_header(&msg, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, PT_CLIENT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(h->n_search_countries, 3);
    CU_ASSERT_STRING_EQUAL(h->search_countries[0], "SV");
    puente__v1__header__free_unpacked(h, NULL);
    msg = (pt_send_t){.message_type = "tracing.request", .search_countries = fewer,
                      .n_search_countries = 2};
    CU_ASSERT_PTR_NULL(s_sealed_header(&msg, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, PT_CLIENT_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "search countries differ"));
    msg = (pt_send_t){.message_type = "tracing.request", .search_countries = other,
                      .n_search_countries = 3};
    CU_ASSERT_PTR_NULL(s_sealed_header(&msg, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, PT_CLIENT_INVALID);
    msg = (pt_send_t){.message_type = "referral.request", .search_countries = fewer,
                      .n_search_countries = 2};
    CU_ASSERT_PTR_NULL(s_sealed_header(&msg, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, PT_CLIENT_INVALID);
    /* A country listed twice (three entries, as many as the body's), and a count
       without a list: refused before sealing. */
    const char *twice[] = {"GT", "GT", "HN"};
    msg = (pt_send_t){.message_type = "tracing.request", .search_countries = twice,
                      .n_search_countries = 3};
    CU_ASSERT_PTR_NULL(s_sealed_header(&msg, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, PT_CLIENT_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "search country GT is listed twice"));
    msg = (pt_send_t){.message_type = "tracing.request", .n_search_countries = 2};
    CU_ASSERT_PTR_NULL(s_sealed_header(&msg, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, PT_CLIENT_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "search_countries is NULL"));
    /* A referral's service type: the body's first service unless given. */
    msg = (pt_send_t){.message_type = "referral.request"};
    h = s_sealed_header(&msg, &rc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_STRING_EQUAL(h->service_type, "psychosocial");
    CU_ASSERT_EQUAL(h->n_search_countries, 0);
    puente__v1__header__free_unpacked(h, NULL);
    msg = (pt_send_t){.message_type = "referral.request", .service_type = "legal_assistance"};
    h = s_sealed_header(&msg, &rc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_STRING_EQUAL(h->service_type, "legal_assistance");
    puente__v1__header__free_unpacked(h, NULL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("sdk_helpers", NULL, NULL);
    CU_add_test(s, "duration parsing", test_duration);
    CU_add_test(s, "ISO 8601 parsing", test_time_parse);
    CU_add_test(s, "ISO 8601 formatting", test_time_format);
    CU_add_test(s, "legal basis and reject names", test_names);
    CU_add_test(s, "consent summary from a consent block", test_consent_derive);
    CU_add_test(s, "consent summary from the example JSON", test_consent_from_example_json);
    CU_add_test(s, "directory signature", test_directory_verify);
    CU_add_test(s, "receipt signature", test_receipt_verify);
    CU_add_test(s, "receipt batch signature (format 2)", test_receipt_verify_batch);
    CU_add_test(s, "routing fields sealed from the body", test_seal_routing_fields);
    return pt_cu_main();
}

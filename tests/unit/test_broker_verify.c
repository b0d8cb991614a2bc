/*  test_broker_verify — broker/verify.c, stage 3, against a directory loaded from a
    real store (PUENTE_TEST_DB; its own database puente_unit_verify) so that key
    histories are the real ones: registration, rotation, revocation.

    Times: the store stamps a registration with the database's now; the test
    rotates and revokes at T + offsets (T = now), and asks verify about headers
    created, and presented, at chosen points of those windows. */
#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "store.h"
#include "verify.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code
#define DB_NAME "puente_unit_verify"

static const char *s_conninfo;
static const char *s_sql_dir;
static pt_store_t *s_store;
static pt_directory_t *s_dir;
static int64_t T;                  /* the test's origin */
static pt_keyset_t *s_mx1, *s_mx2; /* MX-DIF: replaced at T+1000 by mx2 */
static pt_keyset_t *s_gt1, *s_gt2; /* GT-PGN: replaced at T+1000, gt1 revoked at T+2000 */
static pt_keyset_t *s_hn1;         /* HN-DINAF: revoked at T+3000 */
static pt_keyset_t *s_rogue;       /* registered nowhere */

static int s_admin(const char *sql)
{
    PGconn *c = PQconnectdb(s_conninfo);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "test_broker_verify: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static int s_register(const char *org_id, const pt_keyset_t *keys)
{
    pt_store_org_t org;
    memset(&org, 0, sizeof org);
    snprintf(org.org_id, sizeof org.org_id, "%s", org_id);
    pt_sign_key_public(pt_keyset_sign(keys), org.sign_public);
    pt_seal_key_public(pt_keyset_seal(keys), org.seal_public);
    memcpy(org.curve_public, pt_keyset_curve_public(keys), 32);
    org.enabled = 1;
    return pt_store_org_put(s_store, &org) == PT_STORE_OK ? 0 : -1;
}

static int s_rotate(const char *org_id, const pt_keyset_t *keys, int64_t at)
{
    uint8_t sign[32], seal[32];
    pt_sign_key_public(pt_keyset_sign(keys), sign);
    pt_seal_key_public(pt_keyset_seal(keys), seal);
    return pt_store_key_rotate(s_store, org_id, sign, seal, pt_keyset_curve_public(keys), at, 0) ==
                   PT_STORE_OK
               ? 0
               : -1;
}

/* Revokes the key set of org_id whose signing key is that of keys, from at. */
static int s_revoke(const char *org_id, const pt_keyset_t *keys, int64_t at)
{
    if (pt_directory_load(s_dir, s_store) != PT_STORE_OK)
        return -1;
    const pt_directory_org_t *org = pt_directory_org(s_dir, org_id);
    uint8_t id[32];
    pt_sign_key_id(pt_keyset_sign(keys), id);
    const pt_directory_key_set_t *set = org ? pt_directory_key_set(org, id, 32) : NULL;
    if (!set)
        return -1;
    return pt_store_key_revoke(s_store, org_id, set->key_set_id, at, "key file lost", at) ==
                   PT_STORE_OK
               ? 0
               : -1;
}

static int s_init(void)
{
    if (s_admin("DROP DATABASE IF EXISTS " DB_NAME) || s_admin("CREATE DATABASE " DB_NAME))
        return -1;
    char conninfo[1024], err[256] = "";
    /* A later keyword wins in a libpq connection string. */
    snprintf(conninfo, sizeof conninfo, "%s dbname=" DB_NAME, s_conninfo);
    s_store = pt_store_new(conninfo, err, sizeof err);
    if (!s_store || pt_store_migrate(s_store, s_sql_dir, err, sizeof err) != 0) {
        fprintf(stderr, "test_broker_verify: store: %s\n", err);
        return -1;
    }
    s_mx1 = pt_keyset_generate("MX-DIF");
    s_mx2 = pt_keyset_generate("MX-DIF");
    s_gt1 = pt_keyset_generate("GT-PGN");
    s_gt2 = pt_keyset_generate("GT-PGN");
    s_hn1 = pt_keyset_generate("HN-DINAF");
    s_rogue = pt_keyset_generate("MX-DIF");
    s_dir = pt_directory_new();
    if (!s_mx1 || !s_mx2 || !s_gt1 || !s_gt2 || !s_hn1 || !s_rogue || !s_dir)
        return -1;
    T = pt_now_ms() + 1000; /* after the registrations' database now */
    if (s_register("MX-DIF", s_mx1) || s_register("GT-PGN", s_gt1) ||
        s_register("HN-DINAF", s_hn1) || s_rotate("MX-DIF", s_mx2, T + 1000) ||
        s_rotate("GT-PGN", s_gt2, T + 1000) || s_revoke("GT-PGN", s_gt1, T + 2000) ||
        s_revoke("HN-DINAF", s_hn1, T + 3000))
        return -1;
    return pt_directory_load(s_dir, s_store) == PT_STORE_OK ? 0 : -1;
}

static int s_clean(void)
{
    pt_directory_destroy(&s_dir);
    pt_store_destroy(&s_store);
    pt_keyset_t **all[] = {&s_mx1, &s_mx2, &s_gt1, &s_gt2, &s_hn1, &s_rogue};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_keyset_destroy(all[i]);
    return 0;
}

typedef struct {
    Puente__V1__Envelope *envelope;
    Puente__V1__Header *header;
} s_sealed_t;

/* An envelope from sender (signed with sign_keys) to recipient (sealed to
   seal_keys), created at created_ms; checked (pt_envelope_check) as the broker
   does before verify. */
static s_sealed_t s_seal(const char *sender, const pt_keyset_t *sign_keys, const char *recipient,
                         const pt_keyset_t *seal_keys, int64_t created_ms)
{
    s_sealed_t out = {NULL, NULL};
    uint8_t message_id[16], correlation_id[16];
    pt_uuidv7(message_id);
    pt_uuidv7(correlation_id);
    char *recipients[1] = {(char *)recipient};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_id = (ProtobufCBinaryData){16, message_id};
    h.correlation_id = (ProtobufCBinaryData){16, correlation_id};
    h.message_type = "referral.request";
    h.sender = (char *)sender;
    h.recipients = recipients;
    h.n_recipients = 1;
    h.created_at_ms = created_ms;
    h.purpose = "service_provision";
    h.case_token = "ct_verify";
    h.consent = &consent;
    const uint8_t body[] = "opaque body";
    const pt_seal_key_t *seal[1] = {pt_keyset_seal(seal_keys)};
    uint8_t *packed = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(
        pt_envelope_seal(&h, body, sizeof body, pt_keyset_sign(sign_keys), seal, 1, &packed, &len),
        PT_ENV_OK);
    out.envelope = puente__v1__envelope__unpack(NULL, len, packed);
    free(packed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out.envelope);
    CU_ASSERT_EQUAL_FATAL(pt_envelope_check(out.envelope, &out.header), PT_ENV_OK);
    return out;
}

static void s_sealed_free(s_sealed_t *s)
{
    puente__v1__envelope__free_unpacked(s->envelope, NULL);
    puente__v1__header__free_unpacked(s->header, NULL);
}

/* Runs verify at now_ms; asserts the code and, when reason_part, that the
   reason contains it. */
static void s_expect(const char *what, s_sealed_t s, int64_t now_ms, Puente__V1__RejectCode code,
                     const char *reason_part)
{
    pt_verdict_t verdict;
    memset(&verdict, 0, sizeof verdict);
    Puente__V1__RejectCode got = pt_verify_check(s_dir, s.envelope, s.header, now_ms, &verdict);
    if (got != code || (reason_part && !strstr(verdict.reason, reason_part)))
        fprintf(stderr, "\n  %s: got %d \"%s\", expected %d \"%s\"\n", what, got, verdict.reason,
                code, reason_part ? reason_part : "");
    CU_ASSERT_EQUAL(got, code);
    CU_ASSERT_EQUAL(verdict.code, code);
    if (reason_part)
        CU_ASSERT_PTR_NOT_NULL(strstr(verdict.reason, reason_part));
}

static void test_current_key_passes(void)
{
    s_sealed_t s = s_seal("MX-DIF", s_mx2, "GT-PGN", s_gt2, T + 1500);
    s_expect("current key", s, T + 1500, 0, NULL);
    s_sealed_free(&s);
    /* A replaced key still verifies what it signed inside its window. */
    s = s_seal("MX-DIF", s_mx1, "GT-PGN", s_gt2, T + 500);
    s_expect("replaced key, created inside its window", s, T + 1500, 0, NULL);
    s_sealed_free(&s);
}

static void test_unknown_key(void)
{
    s_sealed_t s = s_seal("MX-DIF", s_rogue, "GT-PGN", s_gt2, T + 1500);
    s_expect("unregistered signing key", s, T + 1500, REJ(REJECT_UNKNOWN_KEY),
             "sender key id is not a registered signing key of MX-DIF");
    s_sealed_free(&s);
    s = s_seal("SV-CONNA", s_rogue, "GT-PGN", s_gt2, T + 1500);
    s_expect("unregistered sender", s, T + 1500, REJ(REJECT_UNKNOWN_KEY),
             "sender SV-CONNA is not registered");
    s_sealed_free(&s);
}

static void test_replaced_and_revoked(void)
{
    s_sealed_t s = s_seal("MX-DIF", s_mx1, "GT-PGN", s_gt2, T + 1500);
    s_expect("replaced key, created after its window", s, T + 1500, REJ(REJECT_UNKNOWN_KEY),
             "the signing key of MX-DIF was replaced");
    s_sealed_free(&s);
    /* HN-DINAF's only key, revoked from T+3000: nothing created after, and nothing
       presented after, even if created before. */
    s = s_seal("HN-DINAF", s_hn1, "GT-PGN", s_gt2, T + 3500);
    s_expect("revoked key, created after the revocation", s, T + 3500, REJ(REJECT_UNKNOWN_KEY),
             "the signing key of HN-DINAF was revoked from");
    s_sealed_free(&s);
    s = s_seal("HN-DINAF", s_hn1, "GT-PGN", s_gt2, T + 2500);
    s_expect("revoked key, created before, presented after", s, T + 3500, REJ(REJECT_UNKNOWN_KEY),
             "was revoked from");
    s_expect("revoked key, presented before the revocation", s, T + 2600, 0, NULL);
    s_sealed_free(&s);
    /* A payload sealed to GT-PGN's revoked sealing key. */
    s = s_seal("MX-DIF", s_mx2, "GT-PGN", s_gt1, T + 2500);
    s_expect("sealed to a revoked key", s, T + 2500, REJ(REJECT_UNKNOWN_KEY),
             "the payload for GT-PGN is sealed to a revoked key");
    s_expect("sealed to a key revoked later", s, T + 1900, 0, NULL);
    s_sealed_free(&s);
}

static void test_bad_signature(void)
{
    s_sealed_t s = s_seal("MX-DIF", s_mx2, "GT-PGN", s_gt2, T + 1500);
    for (size_t i = 0; i < s.envelope->header_signature.len; i += 13) {
        s.envelope->header_signature.data[i] ^= 0x04;
        s_expect("flipped header signature", s, T + 1500, REJ(REJECT_BAD_SIGNATURE),
                 "header signature does not verify with the key of MX-DIF");
        s.envelope->header_signature.data[i] ^= 0x04;
    }
    s_expect("restored signature", s, T + 1500, 0, NULL);
    /* Signed with GT-PGN's key while naming MX-DIF as sender: the header's key id
       is none of MX-DIF's keys. */
    s_sealed_t other = s_seal("MX-DIF", s_gt2, "GT-PGN", s_gt2, T + 1500);
    s_expect("another organisation's key", other, T + 1500, REJ(REJECT_UNKNOWN_KEY),
             "sender key id is not a registered signing key of MX-DIF");
    /* MX-DIF's key id with a signature made over another header by the same key. */
    memcpy(s.envelope->header_signature.data, other.envelope->header_signature.data, 64);
    s_sealed_t mine = s_seal("MX-DIF", s_mx2, "GT-PGN", s_gt2, T + 1500);
    memcpy(s.envelope->header_signature.data, mine.envelope->header_signature.data, 64);
    s_expect("signature of another header", s, T + 1500, REJ(REJECT_BAD_SIGNATURE), NULL);
    s_sealed_free(&mine);
    s_sealed_free(&other);
    s_sealed_free(&s);
}

int main(void)
{
    s_conninfo = getenv("PUENTE_TEST_DB");
    if (!s_conninfo || !*s_conninfo) {
        fprintf(stderr, "test_broker_verify: FAIL: PUENTE_TEST_DB is not set (tests/run.sh "
                        "sets it)\n");
        return 1;
    }
    s_sql_dir = getenv("PUENTE_SQL_DIR");
    if (!s_sql_dir || !*s_sql_dir)
        s_sql_dir = "broker/sql";
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker verify", s_init, s_clean);
    CU_add_test(suite, "current key; replaced key inside its window", test_current_key_passes);
    CU_add_test(suite, "unknown key id, unknown sender", test_unknown_key);
    CU_add_test(suite, "key window replaced, revoked; sealed to a revoked key",
                test_replaced_and_revoked);
    CU_add_test(suite, "bad header signature", test_bad_signature);
    return pt_cu_main();
}

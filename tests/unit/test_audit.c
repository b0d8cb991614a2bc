/*  test_audit — the audit log's formats (pt_audit.h): leaf encoding and checkpoint
    known answers (independent Python hashlib transcription of the formats), the
    frontier as stored in audit_head, checkpoint signatures, the verifier on a
    synthetic log (clean, then each kind of tampering), retention's payload strip,
    and bundles: a synthetic round trip, every single-byte flip, and hostile input. */
#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "pt_audit.h"
#include "pt_crypto.h"
#include "pt_envelope.h"
#include "pt_merkle.h"
#include "pt_trail.h"
#include "cu_main.h"

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    pt_hex(b, n, out);
}

static void test_leaf_kat(void)
{
    uint8_t event_hash[32], leaf[PT_AUDIT_LEAF_BYTES];
    char hex[2 * PT_AUDIT_LEAF_BYTES + 1];
    for (int i = 0; i < 32; i++)
        event_hash[i] = (uint8_t)i;
    pt_audit_leaf_encode(event_hash, 0x0102030405060708LL, leaf);
    s_hex(leaf, sizeof leaf, hex);
    CU_ASSERT_STRING_EQUAL(hex, "7075656e74652e7631206c65616600000102030405060708090a0b0c0d0e0f1011"
                                "12131415161718191a1b1c1d1e1f0102030405060708");
    pt_merkle_hash_t h;
    char hh[65];
    pt_audit_leaf_hash(event_hash, 0x0102030405060708LL, h);
    s_hex(h, 32, hh);
    CU_ASSERT_STRING_EQUAL(hh, "56b0f1886aeb682cb206f9e4f2ce4316d674a02d41802c1acd2dea8c122507d4");
    /* Another event id is another leaf. */
    pt_merkle_hash_t other;
    pt_audit_leaf_hash(event_hash, 0x0102030405060709LL, other);
    CU_ASSERT_NOT_EQUAL(memcmp(h, other, 32), 0);
}

static void s_kat_leaves(pt_merkle_hash_t leaves[3])
{
    for (int i = 1; i <= 3; i++) {
        uint8_t eh[32];
        memset(eh, i, 32);
        pt_audit_leaf_hash(eh, i, leaves[i - 1]);
    }
}

static void test_frontier_decode(void)
{
    pt_merkle_hash_t leaves[3], root, decoded_root;
    char hex[65];
    s_kat_leaves(leaves);
    pt_merkle_root(leaves, 3, root);
    s_hex(root, 32, hex);
    CU_ASSERT_STRING_EQUAL(hex, "9c16f3ba4a29d577f921b0a651d925cb60f42b1b20b62385b74b64663cee527a");
    /* audit_head's form for 3 leaves: node(l0,l1) (level 1) then l2 (level 0). */
    uint8_t stored[64];
    pt_merkle_node_hash(leaves[0], leaves[1], stored);
    memcpy(stored + 32, leaves[2], 32);
    pt_merkle_frontier_t f;
    CU_ASSERT_EQUAL_FATAL(pt_audit_frontier_decode(3, stored, 64, &f), 0);
    pt_merkle_frontier_root(&f, decoded_root);
    CU_ASSERT_EQUAL(memcmp(root, decoded_root, 32), 0);
    /* Appending to the decoded frontier equals the tree of four. */
    pt_merkle_hash_t four[4], r4, f4;
    memcpy(four, leaves, sizeof leaves);
    memset(four[3], 0x44, 32);
    pt_merkle_root(four, 4, r4);
    pt_merkle_frontier_append(&f, four[3]);
    pt_merkle_frontier_root(&f, f4);
    CU_ASSERT_EQUAL(memcmp(r4, f4, 32), 0);
    /* Hostile lengths. */
    CU_ASSERT_EQUAL(pt_audit_frontier_decode(3, stored, 32, &f), -1);
    CU_ASSERT_EQUAL(pt_audit_frontier_decode(3, stored, 96, &f), -1);
    CU_ASSERT_EQUAL(pt_audit_frontier_decode(3, NULL, 64, &f), -1);
    CU_ASSERT_EQUAL(pt_audit_frontier_decode(0, NULL, 0, &f), 0);
    CU_ASSERT_EQUAL(pt_audit_frontier_decode(UINT64_MAX, stored, 64, &f), -1);
}

static void test_checkpoint_signature(void)
{
    pt_sign_key_t *key = pt_sign_key_generate(), *other = pt_sign_key_generate();
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    uint8_t root[32], sig[64], bytes[PT_AUDIT_CHECKPOINT_BYTES];
    memset(root, 0xab, 32);
    pt_audit_checkpoint_bytes(0x0102, root, 0x0a0b, bytes);
    CU_ASSERT_EQUAL(bytes[6], 0x01);
    CU_ASSERT_EQUAL(bytes[7], 0x02);
    CU_ASSERT_EQUAL(bytes[8], 0xab);
    CU_ASSERT_EQUAL(bytes[46], 0x0a);
    CU_ASSERT_EQUAL(bytes[47], 0x0b);
    CU_ASSERT_EQUAL_FATAL(pt_audit_checkpoint_sign(key, 10, root, 1234, sig), 0);
    CU_ASSERT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 32, 1234, sig, 64), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 11, root, 32, 1234, sig, 64), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 32, 1235, sig, 64), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 31, 1234, sig, 64), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 32, 1234, sig, 63), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(other, 10, root, 32, 1234, sig, 64), 0);
    root[5] ^= 1;
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 32, 1234, sig, 64), 0);
    root[5] ^= 1;
    /* Not a receipt: the domains differ. */
    uint8_t receipt_sig[64];
    pt_audit_checkpoint_bytes(10, root, 1234, bytes);
    CU_ASSERT_EQUAL(pt_sign(key, PT_DOMAIN_RECEIPT, bytes, sizeof bytes, receipt_sig), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint_verify(key, 10, root, 32, 1234, receipt_sig, 64), 0);
    pt_sign_key_destroy(&key);
    pt_sign_key_destroy(&other);
}

/* --- a synthetic log: two cases, five events, one checkpoint ------------------------ */

#define S_N 5

typedef struct {
    int64_t event_id;
    const char *token;
    uint64_t seq;
    const char *kind;
    uint8_t prev[32], hash[32];
    pt_merkle_hash_t leaf;
} s_ev_t;

static s_ev_t s_log[S_N];
static pt_sign_key_t *s_broker;

static pt_trail_event_t s_trail(const s_ev_t *e)
{
    return (pt_trail_event_t){.seq = e->seq, .at_ms = 1000 + e->event_id, .kind = e->kind,
                              .case_token = e->token, .actor = "MX-DIF",
                              .counterparty = "GT-PGN", .message_type = "referral.request"};
}

static void s_build_log(void)
{
    const char *tokens[S_N] = {"C-A", "C-B", "C-A", "C-A", "C-B"};
    const char *kinds[S_N] = {"submitted", "submitted", "stored", "delivered", "stored"};
    uint8_t last_a[32] = {0}, last_b[32] = {0};
    uint64_t seq_a = 0, seq_b = 0;
    for (int i = 0; i < S_N; i++) {
        s_ev_t *e = &s_log[i];
        e->event_id = 100 + i;
        e->token = tokens[i];
        e->kind = kinds[i];
        int a = strcmp(tokens[i], "C-A") == 0;
        e->seq = a ? ++seq_a : ++seq_b;
        memcpy(e->prev, a ? last_a : last_b, 32);
        pt_trail_event_t t = s_trail(e);
        CU_ASSERT_EQUAL_FATAL(pt_trail_hash(e->prev, &t, e->hash), 0);
        memcpy(a ? last_a : last_b, e->hash, 32);
        pt_audit_leaf_hash(e->hash, e->event_id, e->leaf);
    }
}

/* Feeds the synthetic log (optionally changed by mutate) into a verifier pinned to
   pin; returns the number of findings. */
typedef struct {
    int skip_event;             /* index not fed as an event, or -1 */
    int modify_event;           /* index whose actor changes, or -1 */
    int swap_leaves;            /* swap leaves 1 and 2 */
    int forge_checkpoint;       /* sign the checkpoint with another key */
    int wrong_head;
} s_mutation_t;

static size_t s_verify(const s_mutation_t *m, const pt_sign_key_t *pin)
{
    pt_audit_verifier_t *v = pt_audit_verifier_new(pin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    /* Events in (case_token, seq) order. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < S_N; i++) {
            const s_ev_t *e = &s_log[i];
            if (strcmp(e->token, pass == 0 ? "C-A" : "C-B") != 0 || i == m->skip_event)
                continue;
            pt_trail_event_t t = s_trail(e);
            if (i == m->modify_event)
                t.actor = "ZZ-EVIL";
            CU_ASSERT_EQUAL(pt_audit_verifier_event(v, e->event_id, &t, e->prev, 32, e->hash, 32), 0);
        }
    pt_merkle_hash_t leaves[S_N], root;
    for (int i = 0; i < S_N; i++)
        memcpy(leaves[i], s_log[i].leaf, 32);
    pt_merkle_root(leaves, S_N, root);
    uint8_t signer[32], sig[64];
    pt_sign_key_t *forger = m->forge_checkpoint ? pt_sign_key_generate() : NULL;
    const pt_sign_key_t *k = forger ? forger : s_broker;
    pt_sign_key_public(k, signer);
    CU_ASSERT_EQUAL(pt_audit_checkpoint_sign(k, S_N, root, 5000, sig), 0);
    CU_ASSERT_EQUAL(pt_audit_verifier_checkpoint(v, S_N, root, 32, 5000, signer, 32, sig, 64), 0);
    pt_sign_key_destroy(&forger);
    for (int i = 0; i < S_N; i++) {
        int j = m->swap_leaves && (i == 1 || i == 2) ? 3 - i : i;
        CU_ASSERT_EQUAL(pt_audit_verifier_leaf(v, (uint64_t)i, s_log[j].event_id, s_log[j].leaf, 32), 0);
    }
    pt_merkle_frontier_t f;
    pt_merkle_frontier_init(&f);
    for (int i = 0; i < S_N; i++)
        pt_merkle_frontier_append(&f, leaves[i]);
    uint8_t stored[64 * 32];
    size_t at = 0;
    for (int level = 63; level >= 0; level--)
        if (f.size & ((uint64_t)1 << level)) {
            memcpy(stored + at, f.nodes[level], 32);
            at += 32;
        }
    CU_ASSERT_EQUAL(pt_audit_verifier_head(v, m->wrong_head ? S_N + 1 : S_N, stored, at), 0);
    CU_ASSERT_EQUAL(pt_audit_verifier_finish(v), 0);
    size_t n = pt_audit_verifier_count(v);
    for (size_t i = 0; i < pt_audit_verifier_kept(v) && getenv("PUENTE_TEST_VERBOSE"); i++)
        fprintf(stderr, "  %s %s %s %llu: %s\n", pt_audit_verifier_finding(v, i)->table,
                pt_audit_verifier_finding(v, i)->row, pt_audit_verifier_finding(v, i)->case_token,
                (unsigned long long)pt_audit_verifier_finding(v, i)->seq,
                pt_audit_verifier_finding(v, i)->problem);
    if (n > 0) {
        const pt_audit_finding_t *f0 = pt_audit_verifier_finding(v, 0);
        CU_ASSERT(f0->table[0] != '\0' && f0->problem[0] != '\0');
    }
    pt_audit_verifier_destroy(&v);
    CU_ASSERT_PTR_NULL(v);
    return n;
}

static void test_verifier(void)
{
    s_build_log();
    s_mutation_t clean = {.skip_event = -1, .modify_event = -1};
    CU_ASSERT_EQUAL(s_verify(&clean, s_broker), 0);
    CU_ASSERT_EQUAL(s_verify(&clean, NULL), 0);   /* trusts the recorded signer */
    s_mutation_t m = clean;
    m.modify_event = 2;
    CU_ASSERT(s_verify(&m, s_broker) >= 1);
    m = clean;
    m.skip_event = 2;      /* deleted: C-A seq 3 follows seq 1, its leaf names a missing row */
    CU_ASSERT(s_verify(&m, s_broker) >= 2);
    m = clean;
    m.swap_leaves = 1;     /* reordered log: the root no longer matches the checkpoint */
    CU_ASSERT(s_verify(&m, s_broker) >= 1);
    m = clean;
    m.forge_checkpoint = 1;
    CU_ASSERT(s_verify(&m, s_broker) >= 1);
    m = clean;
    m.wrong_head = 1;
    CU_ASSERT(s_verify(&m, s_broker) >= 1);
    /* Misuse of the feed order is refused. */
    pt_audit_verifier_t *v = pt_audit_verifier_new(NULL);
    CU_ASSERT_EQUAL(pt_audit_verifier_finish(v), 0);
    CU_ASSERT_EQUAL(pt_audit_verifier_org_key(v, "MX-DIF", s_log[0].hash, 32, 0, 0), -1);
    CU_ASSERT_EQUAL(pt_audit_verifier_count(v), 1);   /* the head row is missing */
    pt_audit_verifier_destroy(&v);
    pt_audit_verifier_destroy(&v);   /* no-op on NULL */
}


/* --- the checkpoint chain (version 2) ------------------------------------------------- */

typedef struct {
    pt_audit_checkpoint_t cp;
    uint8_t sig[64];
} s_signed_cp_t;

/* Signs a chain of checkpoints of the synthetic log at sizes[0..n), seq 1.., each
   linked to the previous one, by key. */
static void s_chain(const uint64_t *sizes, size_t n, const pt_sign_key_t *key, s_signed_cp_t *out)
{
    pt_merkle_hash_t leaves[S_N];
    for (int i = 0; i < S_N; i++)
        memcpy(leaves[i], s_log[i].leaf, 32);
    uint8_t prev[32] = {0};
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].cp.seq = i + 1;
        out[i].cp.tree_size = sizes[i];
        out[i].cp.at_ms = 5000 + (int64_t)i;
        pt_merkle_root(leaves, (size_t)sizes[i], out[i].cp.root);
        memcpy(out[i].cp.prev_hash, prev, 32);
        CU_ASSERT_EQUAL(pt_audit_checkpoint2_sign(key, &out[i].cp, out[i].sig), 0);
        pt_audit_checkpoint2_hash(&out[i].cp, out[i].sig, prev);
    }
}

/* Feeds the synthetic log's first n_leaves leaves with the checkpoints cps (in the
   order given) and an optional trusted checkpoint; returns the findings count and
   whether one of them contains expect (in table). */
static size_t s_chain_verify(const s_signed_cp_t *cps, size_t n_cps, size_t n_leaves,
                             const s_signed_cp_t *trusted, const char *table, const char *expect,
                             int *found)
{
    pt_audit_verifier_t *v = pt_audit_verifier_new(s_broker);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    if (trusted)
        CU_ASSERT_EQUAL(pt_audit_verifier_trust(v, &trusted->cp, trusted->sig, 64), 0);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n_leaves; i++) {
            const s_ev_t *e = &s_log[i];
            if (strcmp(e->token, pass == 0 ? "C-A" : "C-B") != 0)
                continue;
            pt_trail_event_t t = s_trail(e);
            CU_ASSERT_EQUAL(pt_audit_verifier_event(v, e->event_id, &t, e->prev, 32, e->hash, 32), 0);
        }
    uint8_t signer[32];
    pt_sign_key_public(s_broker, signer);
    for (size_t i = 0; i < n_cps; i++)
        CU_ASSERT_EQUAL(pt_audit_verifier_checkpoint2(v, cps[i].cp.seq, cps[i].cp.tree_size,
                                                      cps[i].cp.root, 32, cps[i].cp.at_ms,
                                                      cps[i].cp.prev_hash, 32, signer, 32,
                                                      cps[i].sig, 64),
                        0);
    pt_merkle_frontier_t f;
    pt_merkle_frontier_init(&f);
    for (size_t i = 0; i < n_leaves; i++) {
        CU_ASSERT_EQUAL(pt_audit_verifier_leaf(v, i, s_log[i].event_id, s_log[i].leaf, 32), 0);
        pt_merkle_frontier_append(&f, s_log[i].leaf);
    }
    uint8_t stored[64 * 32];
    size_t at = 0;
    for (int level = 63; level >= 0; level--)
        if (f.size & ((uint64_t)1 << level)) {
            memcpy(stored + at, f.nodes[level], 32);
            at += 32;
        }
    CU_ASSERT_EQUAL(pt_audit_verifier_head(v, n_leaves, stored, at), 0);
    CU_ASSERT_EQUAL(pt_audit_verifier_finish(v), 0);
    *found = 0;
    for (size_t i = 0; i < pt_audit_verifier_kept(v); i++) {
        const pt_audit_finding_t *x = pt_audit_verifier_finding(v, i);
        if (getenv("PUENTE_TEST_VERBOSE"))
            fprintf(stderr, "  %s %s: %s\n", x->table, x->row, x->problem);
        if (expect && strcmp(x->table, table) == 0 && strstr(x->problem, expect))
            *found = 1;
    }
    size_t n = pt_audit_verifier_count(v);
    pt_audit_verifier_destroy(&v);
    return n;
}

static void test_checkpoint_chain(void)
{
    s_build_log();
    /* Known layout of the 88 signed bytes. */
    pt_audit_checkpoint_t k = {.seq = 0x0102, .tree_size = 0x0304, .at_ms = 0x0506};
    memset(k.root, 0xab, 32);
    memset(k.prev_hash, 0xcd, 32);
    uint8_t bytes[PT_AUDIT_CHECKPOINT2_BYTES];
    pt_audit_checkpoint2_bytes(&k, bytes);
    CU_ASSERT_EQUAL(bytes[6], 0x01);
    CU_ASSERT_EQUAL(bytes[7], 0x02);
    CU_ASSERT_EQUAL(bytes[15], 0x04);
    CU_ASSERT_EQUAL(bytes[16], 0xab);
    CU_ASSERT_EQUAL(bytes[55], 0x06);
    CU_ASSERT_EQUAL(bytes[56], 0xcd);
    CU_ASSERT_EQUAL(bytes[87], 0xcd);
    /* Version 2 signatures cover seq and prev_hash; version 1 ones do not pass as 2. */
    uint8_t sig[64];
    CU_ASSERT_EQUAL(pt_audit_checkpoint2_sign(s_broker, &k, sig), 0);
    CU_ASSERT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, sig, 64), 0);
    k.seq++;
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, sig, 64), 0);
    k.seq--;
    k.prev_hash[31] ^= 1;
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, sig, 64), 0);
    k.prev_hash[31] ^= 1;
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, sig, 63), 0);
    uint8_t v1[64];
    CU_ASSERT_EQUAL(pt_audit_checkpoint_sign(s_broker, k.tree_size, k.root, k.at_ms, v1), 0);
    CU_ASSERT_NOT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, v1, 64), 0);
    k.seq = 0;
    CU_ASSERT_EQUAL(pt_audit_checkpoint2_verify(s_broker, &k, v1, 64), 0);

    static const uint64_t sizes[3] = {2, 4, 5};
    s_signed_cp_t cps[3];
    s_chain(sizes, 3, s_broker, cps);
    int found = 0;
    CU_ASSERT_EQUAL(s_chain_verify(cps, 3, S_N, NULL, NULL, NULL, &found), 0);
    /* A deleted middle checkpoint: a gap in seq. */
    s_signed_cp_t gap[2] = {cps[0], cps[2]};
    CU_ASSERT(s_chain_verify(gap, 2, S_N, NULL, "checkpoints", "seq 3 follows seq 1", &found) >= 1);
    CU_ASSERT(found);
    /* A checkpoint re-numbered to close the gap: the link breaks (and its signature). */
    s_signed_cp_t renumbered[2] = {cps[0], cps[2]};
    renumbered[1].cp.seq = 2;
    CU_ASSERT(s_chain_verify(renumbered, 2, S_N, NULL, "checkpoints", "broken link", &found) >= 2);
    CU_ASSERT(found);
    /* A chain whose sizes shrink, properly signed: named. */
    static const uint64_t shrinking[3] = {2, 5, 4};
    s_signed_cp_t shrink[3];
    s_chain(shrinking, 3, s_broker, shrink);
    CU_ASSERT_EQUAL(s_chain_verify(shrink, 3, S_N, NULL, "checkpoints", "the log shrank", &found), 1);
    CU_ASSERT(found);
    /* An inserted checkpoint signed by another key. */
    pt_sign_key_t *other = pt_sign_key_generate();
    s_signed_cp_t forged[3];
    s_chain(sizes, 3, other, forged);
    s_signed_cp_t inserted[4] = {cps[0], cps[1], cps[2], forged[2]};
    inserted[3].cp.seq = 4;
    CU_ASSERT(s_chain_verify(inserted, 4, S_N, NULL, "checkpoints", "signature does not verify",
                             &found) >= 2);
    CU_ASSERT(found);
    /* The trusted checkpoint: the whole log extends it... */
    CU_ASSERT_EQUAL(s_chain_verify(cps, 3, S_N, &cps[2], NULL, NULL, &found), 0);
    CU_ASSERT_EQUAL(s_chain_verify(cps, 3, S_N, &cps[1], NULL, NULL, &found), 0);
    /* ...a truncated tail (last checkpoint and leaf gone, consistent otherwise) does not. */
    CU_ASSERT_EQUAL(s_chain_verify(cps, 2, 4, NULL, NULL, NULL, &found), 0);
    CU_ASSERT(s_chain_verify(cps, 2, 4, &cps[2], "trusted", "tail was truncated", &found) >= 2);
    CU_ASSERT(found);
    s_chain_verify(cps, 2, 4, &cps[2], "trusted", "no checkpoint seq 3", &found);
    CU_ASSERT(found);
    /* A trusted checkpoint signed by another key is refused. */
    CU_ASSERT(s_chain_verify(cps, 3, S_N, &forged[2], "trusted", "does not verify", &found) >= 1);
    CU_ASSERT(found);
    pt_audit_verifier_t *nopin = pt_audit_verifier_new(NULL);
    CU_ASSERT_EQUAL(pt_audit_verifier_trust(nopin, &cps[0].cp, cps[0].sig, 64), -1);
    pt_audit_verifier_destroy(&nopin);
    pt_sign_key_destroy(&other);
}

/* --- retention ---------------------------------------------------------------------------- */

static void test_strip_payloads(void)
{
    uint8_t header[] = {1, 2, 3, 4}, sig[64], ct[40], eph[32], nonce[12];
    memset(sig, 7, sizeof sig);
    memset(ct, 9, sizeof ct);
    memset(eph, 5, sizeof eph);
    memset(nonce, 6, sizeof nonce);
    Puente__V1__SealedPayload p = PUENTE__V1__SEALED_PAYLOAD__INIT;
    p.recipient = "GT-PGN";
    p.ciphertext = (ProtobufCBinaryData){sizeof ct, ct};
    p.ephemeral_public = (ProtobufCBinaryData){sizeof eph, eph};
    p.nonce = (ProtobufCBinaryData){sizeof nonce, nonce};
    Puente__V1__SealedPayload *ps[1] = {&p};
    Puente__V1__Envelope env = PUENTE__V1__ENVELOPE__INIT;
    env.header = (ProtobufCBinaryData){sizeof header, header};
    env.header_signature = (ProtobufCBinaryData){sizeof sig, sig};
    env.payloads = ps;
    env.n_payloads = 1;
    uint8_t packed[256];
    size_t len = puente__v1__envelope__pack(&env, packed);
    uint8_t *out = NULL;
    size_t out_len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_audit_strip_payloads(packed, len, &out, &out_len), 0);
    CU_ASSERT(out_len < len);
    Puente__V1__Envelope *back = puente__v1__envelope__unpack(NULL, out_len, out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(back->header.len, sizeof header);
    CU_ASSERT_EQUAL(memcmp(back->header.data, header, sizeof header), 0);
    CU_ASSERT_EQUAL(back->header_signature.len, 64);
    CU_ASSERT_EQUAL(back->n_payloads, 1);
    CU_ASSERT_STRING_EQUAL(back->payloads[0]->recipient, "GT-PGN");
    CU_ASSERT_EQUAL(back->payloads[0]->ciphertext.len, 0);
    CU_ASSERT_EQUAL(back->payloads[0]->nonce.len, 0);
    puente__v1__envelope__free_unpacked(back, NULL);
    uint8_t *h = NULL, *s = NULL;
    size_t hl = 0, sl = 0;
    CU_ASSERT_EQUAL(pt_audit_envelope_header(out, out_len, &h, &hl, &s, &sl), 0);
    CU_ASSERT_EQUAL(hl, sizeof header);
    CU_ASSERT_EQUAL(sl, 64);
    free(h);
    free(s);
    free(out);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CU_ASSERT_EQUAL(pt_audit_strip_payloads(junk, sizeof junk, &out, &out_len), -1);
    CU_ASSERT_EQUAL(pt_audit_envelope_header(junk, sizeof junk, &h, &hl, &s, &sl), -1);
}

/* --- bundles ------------------------------------------------------------------------------- */

static json_t *s_hexj(const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    pt_hex(b, n, hex);
    return json_string(hex);
}

/* A bundle of case C-A from the synthetic log (no message events). */
static char *s_bundle(void)
{
    pt_merkle_hash_t leaves[S_N], root;
    for (int i = 0; i < S_N; i++)
        memcpy(leaves[i], s_log[i].leaf, 32);
    pt_merkle_root(leaves, S_N, root);
    uint8_t pub[32], sig[64];
    pt_sign_key_public(s_broker, pub);
    pt_audit_checkpoint_sign(s_broker, S_N, root, 5000, sig);
    json_t *events = json_array();
    for (int i = 0; i < S_N; i++) {
        const s_ev_t *e = &s_log[i];
        if (strcmp(e->token, "C-A") != 0)
            continue;
        pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF];
        size_t n = 0;
        pt_merkle_inclusion_proof(leaves, S_N, (size_t)i, proof, &n);
        json_t *path = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(path, s_hexj(proof[k], 32));
        json_array_append_new(
            events, json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:n, s:s, s:o, s:o, s:I, s:o}",
                              "event_id", (json_int_t)e->event_id, "seq", (json_int_t)e->seq,
                              "kind", e->kind, "at_ms", (json_int_t)(1000 + e->event_id), "actor",
                              "MX-DIF", "counterparty", "GT-PGN", "message_type",
                              "referral.request", "message_id", "detail", "", "prev_hash",
                              s_hexj(e->prev, 32), "hash", s_hexj(e->hash, 32), "leaf_index",
                              (json_int_t)i, "inclusion", path));
    }
    json_t *doc = json_pack("{s:s, s:s, s:o, s:{s:I, s:o, s:I, s:o}, s:o, s:[]}", "format",
                            PT_AUDIT_BUNDLE_FORMAT, "case_token", "C-A", "broker_sign_public",
                            s_hexj(pub, 32), "checkpoint", "tree_size", (json_int_t)S_N, "root",
                            s_hexj(root, 32), "at_ms", (json_int_t)5000, "signature",
                            s_hexj(sig, 64), "events", events, "messages");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    char *text = json_dumps(doc, JSON_INDENT(1));
    json_decref(doc);
    return text;
}

static size_t s_bundle_findings(const char *text, size_t len, const pt_sign_key_t *pin);

/* The bundle with its checkpoint re-signed by key (and key's public key in it). */
static char *s_bundle_resigned(const char *text, const pt_sign_key_t *key)
{
    json_t *doc = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *cp = json_object_get(doc, "checkpoint");
    uint8_t root[32], pub[32], sig[64];
    CU_ASSERT_EQUAL_FATAL(pt_unhex(json_string_value(json_object_get(cp, "root")), root, 32), 0);
    pt_audit_checkpoint_sign(key, (uint64_t)json_integer_value(json_object_get(cp, "tree_size")),
                             root, json_integer_value(json_object_get(cp, "at_ms")), sig);
    pt_sign_key_public(key, pub);
    json_object_set_new(cp, "signature", s_hexj(sig, 64));
    json_object_set_new(doc, "broker_sign_public", s_hexj(pub, 32));
    char *out = json_dumps(doc, 0);
    json_decref(doc);
    return out;
}

static size_t s_bundle_findings(const char *text, size_t len, const pt_sign_key_t *pin)
{
    pt_audit_verifier_t *v = pt_audit_verifier_new(pin);
    CU_ASSERT_EQUAL(pt_audit_bundle_verify(v, text, len), 0);
    size_t n = pt_audit_verifier_count(v);
    pt_audit_verifier_destroy(&v);
    return n;
}

static void test_bundle_round_trip_and_flips(void)
{
    s_build_log();
    char *text = s_bundle();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t len = strlen(text);
    CU_ASSERT_EQUAL(s_bundle_findings(text, len, s_broker), 0);
    /* No anchor: refused (the bundle's own key proves nothing). */
    pt_audit_verifier_t *unanchored = pt_audit_verifier_new(NULL);
    CU_ASSERT_EQUAL(pt_audit_bundle_verify(unanchored, text, len), 0);
    CU_ASSERT_EQUAL(pt_audit_verifier_count(unanchored), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_audit_verifier_finding(unanchored, 0)->problem, "unanchored"));
    pt_audit_verifier_destroy(&unanchored);
    /* Another pinned key: refused. */
    pt_sign_key_t *other = pt_sign_key_generate();
    CU_ASSERT(s_bundle_findings(text, len, other) >= 1);
    /* Re-signed with another key (an attacker's), its key inside: refused under the
       broker's key, and only that key's own holder would accept it. */
    char *resigned = s_bundle_resigned(text, other);
    CU_ASSERT(s_bundle_findings(resigned, strlen(resigned), s_broker) >= 2);
    CU_ASSERT_EQUAL(s_bundle_findings(resigned, strlen(resigned), other), 0);
    free(resigned);
    pt_sign_key_destroy(&other);
    /* Every single-byte change that is not whitespace fails. */
    size_t flips = 0, caught = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\n')
            continue;
        text[i] ^= 0x01;
        flips++;
        if (s_bundle_findings(text, len, s_broker) > 0)
            caught++;
        else
            fprintf(stderr, "\nflip at %zu not caught: ...%.30s...\n", i, text + (i > 10 ? i - 10 : 0));
        text[i] ^= 0x01;
    }
    CU_ASSERT(flips > 500);
    CU_ASSERT_EQUAL(caught, flips);
    /* What a bundle proves: the chain from seq 1 without a gap. Dropping a middle
       event fails; dropping the last events is a shorter trail that still verifies
       (the documented limit, README "Auditing": absence is not proven). */
    json_t *doc = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *events = json_object_get(doc, "events");
    CU_ASSERT_EQUAL_FATAL(json_array_size(events), 3);
    json_t *copy = json_deep_copy(doc);
    json_array_remove(json_object_get(copy, "events"), 1);
    char *middle = json_dumps(copy, 0);
    CU_ASSERT(s_bundle_findings(middle, strlen(middle), s_broker) >= 1);
    json_decref(copy);
    json_array_remove(events, 2);
    char *tail = json_dumps(doc, 0);
    CU_ASSERT_EQUAL(s_bundle_findings(tail, strlen(tail), s_broker), 0);
    free(middle);
    free(tail);
    json_decref(doc);
    free(text);
}

static void test_bundle_hostile(void)
{
    static const char *inputs[] = {
        "", "{", "[]", "{}", "null", "\"x\"", "{\"format\":\"puente.audit.bundle.v1\"}",
        "{\"format\":\"puente.audit.bundle.v1\",\"case_token\":\"C\",\"broker_sign_public\":\"zz\"}",
        "{\"format\":\"puente.audit.bundle.v1\",\"case_token\":\"C\",\"broker_sign_public\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"checkpoint\":{\"tree_size\":-1,\"root\":\"00\",\"at_ms\":1,\"signature\":\"00\"}}",
        "{\"format\":\"puente.audit.bundle.v1\",\"format\":\"x\"}",
        "{\"a\":1e99999}",
        "{\"format\":\"puente.audit.bundle.v1\",\"case_token\":\"C\\u0000D\"}",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        CU_ASSERT(s_bundle_findings(inputs[i], strlen(inputs[i]), s_broker) >= 1);
    /* Deep nesting and random bytes. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    CU_ASSERT(s_bundle_findings(deep, 2 * depth, s_broker) >= 1);
    free(deep);
    uint8_t noise[4096];
    pt_random(noise, sizeof noise);
    CU_ASSERT(s_bundle_findings((const char *)noise, sizeof noise, s_broker) >= 1);
    /* A valid bundle with its events' hex in upper case or its proof cut short. */
    s_build_log();
    char *text = s_bundle();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    json_t *doc = json_loads(text, 0, NULL);
    json_t *ev0 = json_array_get(json_object_get(doc, "events"), 0);
    json_array_clear(json_object_get(ev0, "inclusion"));
    char *cut = json_dumps(doc, 0);
    CU_ASSERT(s_bundle_findings(cut, strlen(cut), s_broker) >= 1);
    json_object_set_new(ev0, "seq", json_integer(INT64_MAX));
    char *big = json_dumps(doc, 0);
    CU_ASSERT(s_bundle_findings(big, strlen(big), s_broker) >= 1);
    json_object_set_new(doc, "events", json_array());
    char *empty = json_dumps(doc, 0);
    CU_ASSERT(s_bundle_findings(empty, strlen(empty), s_broker) >= 1);
    free(cut);
    free(big);
    free(empty);
    json_decref(doc);
    free(text);
}

/* --- key windows (issue 6): replaced and revoked keys ------------------------------ */

#define S_T0 1760000000000LL

/* A referral from MX-DIF signed by key, created at created_ms; id_byte makes the
   message id. Caller frees *env. */
static int s_signed(const pt_sign_key_t *key, const pt_seal_key_t *to, int64_t created_ms,
                    uint8_t id_byte, uint8_t **env, size_t *len, uint8_t sha[32], uint8_t id[16])
{
    memset(id, id_byte, 16);
    uint8_t corr[16];
    memset(corr, 0x77, 16);
    char *recipients[1] = {"GT-PGN"};
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_id = (ProtobufCBinaryData){16, id};
    h.correlation_id = (ProtobufCBinaryData){16, corr};
    h.message_type = "referral.request";
    h.sender = "MX-DIF";
    h.recipients = recipients;
    h.n_recipients = 1;
    h.created_at_ms = created_ms;
    h.purpose = "service_provision";
    h.case_token = "CASE-KW";
    const uint8_t body[] = {0x0a, 0x01, 0x41};
    if (pt_envelope_seal(&h, body, sizeof body, key, &to, 1, env, len) != PT_ENV_OK)
        return -1;
    Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, *len, *env);
    if (!e)
        return -1;
    pt_sha256(e->header.data, e->header.len, sha);
    puente__v1__envelope__free_unpacked(e, NULL);
    return 0;
}

typedef struct {
    int64_t created, stored;
    int ok;
} s_kw_case_t;

static void test_key_windows(void)
{
    pt_sign_key_t *key = pt_sign_key_generate();
    pt_seal_key_t *to = pt_seal_key_generate();
    CU_ASSERT_FATAL(key && to);
    uint8_t pub[32];
    pt_sign_key_public(key, pub);
    /* Replaced at +100 (its window), revoked at +50; then the same key unrevoked. */
    const s_kw_case_t revoked[] = {
        {S_T0 + 10, S_T0 + 20, 1},   /* signed and stored before the revocation */
        {S_T0 + 60, S_T0 + 70, 0},   /* created after the revocation */
        {S_T0 + 10, S_T0 + 55, 0},   /* stored after the revocation */
        {S_T0 - 10, S_T0 - 5, 0},    /* stored before the set was registered */
    };
    const s_kw_case_t replaced[] = {
        {S_T0 + 90, S_T0 + 500, 1},  /* created in the window, stored after it (an outbox) */
        {S_T0 + 100, S_T0 + 101, 0}, /* created at the end of the window */
    };
    for (int round = 0; round < 2; round++) {
        pt_audit_verifier_t *v = pt_audit_verifier_new(NULL);
        CU_ASSERT_FATAL(v != NULL);
        CU_ASSERT_EQUAL(pt_audit_verifier_key_set(v, "MX-DIF", pub, 32, S_T0, S_T0 + 100,
                                                  round == 0 ? S_T0 + 50 : 0),
                        0);
        const s_kw_case_t *cases = round == 0 ? revoked : replaced;
        size_t n = round == 0 ? sizeof revoked / sizeof revoked[0]
                              : sizeof replaced / sizeof replaced[0];
        for (size_t i = 0; i < n; i++) {
            uint8_t *env = NULL, sha[32], id[16];
            size_t len = 0;
            CU_ASSERT_FATAL(s_signed(key, to, cases[i].created, (uint8_t)(i + 1), &env, &len, sha,
                                     id) == 0);
            size_t before = pt_audit_verifier_count(v);
            CU_ASSERT_EQUAL(pt_audit_verifier_message(v, id, 16, "MX-DIF", "CASE-KW",
                                                      cases[i].stored, sha, 32, env, len),
                            0);
            size_t found = pt_audit_verifier_count(v) - before;
            CU_ASSERT_EQUAL(found, cases[i].ok ? 0 : 1);
            if (found) {
                const pt_audit_finding_t *f = pt_audit_verifier_finding(v, before);
                const char *want = round == 1 ? "replaced" : i == 3 ? "not yet valid" : "revoked";
                CU_ASSERT_PTR_NOT_NULL(f && strstr(f->problem, want));
            }
            free(env);
        }
        pt_audit_verifier_destroy(&v);
    }
    pt_sign_key_destroy(&key);
    pt_seal_key_destroy(&to);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s_broker = pt_sign_key_generate();
    CU_pSuite s = CU_add_suite("audit", NULL, NULL);
    CU_add_test(s, "leaf encoding and hash (known answer)", test_leaf_kat);
    CU_add_test(s, "frontier as stored in audit_head", test_frontier_decode);
    CU_add_test(s, "checkpoint signature", test_checkpoint_signature);
    CU_add_test(s, "verifier: clean log, then each tampering", test_verifier);
    CU_add_test(s, "checkpoint chain: gaps, links, shrinking, trusted checkpoint",
                test_checkpoint_chain);
    CU_add_test(s, "retention strips payload bytes only", test_strip_payloads);
    CU_add_test(s, "bundle round trip; every byte flip fails", test_bundle_round_trip_and_flips);
    CU_add_test(s, "bundle parse under hostile input", test_bundle_hostile);
    CU_add_test(s, "verifier: replaced and revoked keys (key windows)", test_key_windows);
    int status = pt_cu_main();
    pt_sign_key_destroy(&s_broker);
    return status;
}

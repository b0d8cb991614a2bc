/*  test_merkle — RFC 6962 / 9162 Merkle hashing and proofs.
    Known answers: the certificate-transparency reference vectors (eight leaves
    "", 00, 10, 2021, 3031, 40414243, 50..57, 60..6f; the roots of each prefix,
    audit paths and consistency proofs), cross-checked with an independent Python
    transcription of RFC 6962 §2.1 (hashlib). */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "pt_crypto.h"
#include "pt_merkle.h"
#include "cu_main.h"

static pt_merkle_hash_t s_leaves[8];

static void s_from_hex(const char *hex, pt_merkle_hash_t out)
{
    CU_ASSERT_EQUAL_FATAL(pt_unhex(hex, out, 32), 0);
}

static int s_init(void)
{
    static const uint8_t l3[] = {0x20, 0x21}, l4[] = {0x30, 0x31}, l5[] = {0x40, 0x41, 0x42, 0x43};
    uint8_t l6[8], l7[16];
    for (int i = 0; i < 8; i++)
        l6[i] = (uint8_t)(0x50 + i);
    for (int i = 0; i < 16; i++)
        l7[i] = (uint8_t)(0x60 + i);
    pt_merkle_leaf_hash("", 0, s_leaves[0]);
    pt_merkle_leaf_hash("\x00", 1, s_leaves[1]);
    pt_merkle_leaf_hash("\x10", 1, s_leaves[2]);
    pt_merkle_leaf_hash(l3, 2, s_leaves[3]);
    pt_merkle_leaf_hash(l4, 2, s_leaves[4]);
    pt_merkle_leaf_hash(l5, 4, s_leaves[5]);
    pt_merkle_leaf_hash(l6, 8, s_leaves[6]);
    pt_merkle_leaf_hash(l7, 16, s_leaves[7]);
    return 0;
}

static const char *s_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void test_roots(void)
{
    pt_merkle_hash_t root, expected;
    pt_merkle_root(s_leaves, 0, root);
    s_from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", expected);
    CU_ASSERT_EQUAL(memcmp(root, expected, 32), 0);
    pt_merkle_frontier_t frontier;
    pt_merkle_frontier_init(&frontier);
    for (size_t n = 1; n <= 8; n++) {
        s_from_hex(s_roots[n - 1], expected);
        pt_merkle_root(s_leaves, n, root);
        CU_ASSERT_EQUAL(memcmp(root, expected, 32), 0);
        pt_merkle_frontier_append(&frontier, s_leaves[n - 1]);
        pt_merkle_frontier_root(&frontier, root);
        CU_ASSERT_EQUAL(memcmp(root, expected, 32), 0);
    }
}

static void s_assert_proof(const pt_merkle_hash_t *proof, size_t len, const char *const *hex,
                           size_t n)
{
    CU_ASSERT_EQUAL_FATAL(len, n);
    for (size_t i = 0; i < n; i++) {
        pt_merkle_hash_t expected;
        s_from_hex(hex[i], expected);
        CU_ASSERT_EQUAL(memcmp(proof[i], expected, 32), 0);
    }
}

static void test_known_proofs(void)
{
    pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF], root;
    size_t len = 0;
    const char *path0_8[] = {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
    CU_ASSERT_EQUAL(pt_merkle_inclusion_proof(s_leaves, 8, 0, proof, &len), 0);
    s_assert_proof(proof, len, path0_8, 3);
    const char *path5_8[] = {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    CU_ASSERT_EQUAL(pt_merkle_inclusion_proof(s_leaves, 8, 5, proof, &len), 0);
    s_assert_proof(proof, len, path5_8, 3);
    s_from_hex(s_roots[7], root);
    CU_ASSERT_EQUAL(pt_merkle_inclusion_verify(5, 8, s_leaves[5], proof, len, root), 0);
    const char *path2_3[] = {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"};
    CU_ASSERT_EQUAL(pt_merkle_inclusion_proof(s_leaves, 3, 2, proof, &len), 0);
    s_assert_proof(proof, len, path2_3, 1);

    const char *cons1_8[] = {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
    CU_ASSERT_EQUAL(pt_merkle_consistency_proof(s_leaves, 8, 1, proof, &len), 0);
    s_assert_proof(proof, len, cons1_8, 3);
    const char *cons6_8[] = {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    CU_ASSERT_EQUAL(pt_merkle_consistency_proof(s_leaves, 8, 6, proof, &len), 0);
    s_assert_proof(proof, len, cons6_8, 3);
    pt_merkle_hash_t old_root;
    s_from_hex(s_roots[5], old_root);
    CU_ASSERT_EQUAL(pt_merkle_consistency_verify(6, 8, old_root, root, proof, len), 0);
    const char *cons2_5[] = {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"};
    CU_ASSERT_EQUAL(pt_merkle_consistency_proof(s_leaves, 5, 2, proof, &len), 0);
    s_assert_proof(proof, len, cons2_5, 2);
}

/* Every proof of every tree up to 70 leaves verifies; any change breaks it. */
static void test_exhaustive(void)
{
    enum { N = 70 };
    pt_merkle_hash_t *leaves = calloc(N, sizeof *leaves);
    for (size_t i = 0; i < N; i++) {
        uint8_t data[8] = {(uint8_t)i, 0xab};
        pt_merkle_leaf_hash(data, 2, leaves[i]);
    }
    pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF], roots[N + 1];
    for (size_t n = 1; n <= N; n++)
        pt_merkle_root(leaves, n, roots[n]);
    size_t failures = 0;
    for (size_t n = 1; n <= N; n++) {
        for (size_t i = 0; i < n; i++) {
            size_t len = 0;
            if (pt_merkle_inclusion_proof(leaves, n, i, proof, &len) != 0 ||
                pt_merkle_inclusion_verify(i, n, leaves[i], proof, len, roots[n]) != 0)
                failures++;
            if (n > 1 && pt_merkle_inclusion_verify((i + 1) % n, n, leaves[i], proof, len,
                                                    roots[n]) == 0)
                failures++; /* wrong index */
            /* (A size whose path has the same shape verifies against the same root:
               the size is bound by the signed checkpoint, not by the path.) */
            if (pt_merkle_inclusion_verify(i, 2 * n + 2, leaves[i], proof, len, roots[n]) == 0)
                failures++; /* a size with a longer path */
            if (len > 0) {
                proof[len / 2][7] ^= 0x10;
                if (pt_merkle_inclusion_verify(i, n, leaves[i], proof, len, roots[n]) == 0)
                    failures++;
            }
        }
        for (size_t m = 1; m <= n; m++) {
            size_t len = 0;
            if (pt_merkle_consistency_proof(leaves, n, m, proof, &len) != 0 ||
                pt_merkle_consistency_verify(m, n, roots[m], roots[n], proof, len) != 0)
                failures++;
            if (m < n && pt_merkle_consistency_verify(m, n, roots[m == 1 ? 2 : m - 1], roots[n],
                                                      proof, len) == 0)
                failures++; /* another old root */
            if (m < n && len > 0) {
                proof[0][0] ^= 1;
                if (pt_merkle_consistency_verify(m, n, roots[m], roots[n], proof, len) == 0)
                    failures++;
            }
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    size_t len;
    CU_ASSERT_EQUAL(pt_merkle_inclusion_proof(leaves, 5, 5, proof, &len), -1);
    CU_ASSERT_EQUAL(pt_merkle_consistency_proof(leaves, 5, 0, proof, &len), -1);
    CU_ASSERT_EQUAL(pt_merkle_consistency_proof(leaves, 5, 6, proof, &len), -1);
    CU_ASSERT_EQUAL(pt_merkle_consistency_verify(3, 5, roots[3], roots[5], proof, 0), -1);
    CU_ASSERT_EQUAL(pt_merkle_inclusion_verify(0, 0, leaves[0], proof, 0, roots[1]), -1);
    free(leaves);
}

/* The level-by-level tree (the receipts of one batch) has the same root and the
   same proofs as the RFC 6962 recursion, for every size up to 70 and 255..257. */
static void test_tree_levels(void)
{
    enum { N = 257 };
    pt_merkle_hash_t *leaves = calloc(N, sizeof *leaves);
    pt_merkle_hash_t *nodes = calloc(pt_merkle_tree_hashes(N), sizeof *nodes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(leaves);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nodes);
    CU_ASSERT_EQUAL(pt_merkle_tree_hashes(1), 1);
    CU_ASSERT_EQUAL(pt_merkle_tree_hashes(2), 3);
    CU_ASSERT_EQUAL(pt_merkle_tree_hashes(3), 6); /* 3 + 2 + 1 */
    CU_ASSERT_EQUAL(pt_merkle_tree_hashes(256), 511);
    CU_ASSERT(pt_merkle_tree_hashes(N) < 2 * N + 64);
    for (size_t i = 0; i < N; i++) {
        uint8_t data[2] = {(uint8_t)i, (uint8_t)(i >> 8)};
        pt_merkle_leaf_hash(data, 2, leaves[i]);
    }
    size_t failures = 0, checked = 0;
    for (size_t n = 1; n <= N; n++) {
        if (n > 70 && n < 255)
            continue;
        memcpy(nodes, leaves, n * sizeof *leaves);
        pt_merkle_hash_t root, expected;
        pt_merkle_tree_build(nodes, n, root);
        pt_merkle_root(leaves, n, expected);
        if (memcmp(root, expected, 32) != 0)
            failures++;
        for (size_t i = 0; i < n; i++) {
            pt_merkle_hash_t want[PT_MERKLE_MAX_PROOF], got[PT_MERKLE_MAX_PROOF];
            size_t want_len = 0, got_len = 0;
            if (pt_merkle_inclusion_proof(leaves, n, i, want, &want_len) != 0 ||
                pt_merkle_tree_path(nodes, n, i, got, &got_len) != 0 || got_len != want_len ||
                memcmp(got, want, got_len * sizeof *got) != 0 ||
                pt_merkle_inclusion_verify(i, n, leaves[i], got, got_len, root) != 0)
                failures++;
            checked++;
        }
        size_t len = 99;
        pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF];
        if (pt_merkle_tree_path(nodes, n, n, proof, &len) != -1 || len != 0)
            failures++;
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(checked, 70 * 71 / 2 + 255 + 256 + 257);
    /* The reference vectors: the path of leaf 5 of 8. */
    memcpy(nodes, s_leaves, sizeof s_leaves);
    pt_merkle_hash_t root, proof[PT_MERKLE_MAX_PROOF];
    size_t len = 0;
    pt_merkle_tree_build(nodes, 8, root);
    CU_ASSERT_EQUAL(pt_merkle_tree_path(nodes, 8, 5, proof, &len), 0);
    const char *path5_8[] = {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    s_assert_proof(proof, len, path5_8, 3);
    pt_merkle_hash_t expected;
    s_from_hex(s_roots[7], expected);
    CU_ASSERT_EQUAL(memcmp(root, expected, 32), 0);
    free(nodes);
    free(leaves);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("merkle", s_init, NULL);
    CU_add_test(suite, "roots (RFC 6962 vectors) and frontier", test_roots);
    CU_add_test(suite, "known inclusion and consistency proofs", test_known_proofs);
    CU_add_test(suite, "every proof up to 70 leaves, and tampering", test_exhaustive);
    CU_add_test(suite, "level-by-level tree: same roots and proofs", test_tree_levels);
    return pt_cu_main();
}

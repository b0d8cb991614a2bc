/*  pt_merkle — see pt_merkle.h. Proof generation follows RFC 6962 §2.1.1-2.1.2
    (PATH and SUBPROOF); verification follows RFC 9162 §2.1.3.2 and §2.1.4.2. */
#include "pt_merkle.h"

#include <string.h>

#include "pt_crypto.h"

void pt_merkle_leaf_hash(const void *data, size_t len, pt_merkle_hash_t out)
{
    static const uint8_t prefix = 0x00;
    const void *parts[2] = {&prefix, data ? data : ""};
    size_t lens[2] = {1, len};
    pt_sha256_parts(parts, lens, 2, out);
}

void pt_merkle_node_hash(const pt_merkle_hash_t left, const pt_merkle_hash_t right,
                         pt_merkle_hash_t out)
{
    static const uint8_t prefix = 0x01;
    const void *parts[3] = {&prefix, left, right};
    size_t lens[3] = {1, PT_MERKLE_HASH_BYTES, PT_MERKLE_HASH_BYTES};
    pt_sha256_parts(parts, lens, 3, out);
}

/* Largest power of two strictly smaller than n (n >= 2). */
static size_t s_split(size_t n)
{
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

void pt_merkle_root(const pt_merkle_hash_t *leaves, size_t n, pt_merkle_hash_t out)
{
    if (n == 0) {
        pt_sha256("", 0, out);
        return;
    }
    /* Folding leaves into a frontier gives MTH without recursion. */
    pt_merkle_frontier_t frontier;
    pt_merkle_frontier_init(&frontier);
    for (size_t i = 0; i < n; i++)
        pt_merkle_frontier_append(&frontier, leaves[i]);
    pt_merkle_frontier_root(&frontier, out);
}

static int s_push(pt_merkle_hash_t *proof, size_t *len, const pt_merkle_hash_t hash)
{
    if (*len >= PT_MERKLE_MAX_PROOF)
        return -1;
    memcpy(proof[(*len)++], hash, PT_MERKLE_HASH_BYTES);
    return 0;
}

/* PATH(m, D[n]) of RFC 6962 §2.1.1, bottom-up order. */
static int s_path(const pt_merkle_hash_t *leaves, size_t n, size_t m, pt_merkle_hash_t *proof,
                  size_t *len)
{
    if (n <= 1)
        return 0;
    size_t k = s_split(n);
    pt_merkle_hash_t other;
    if (m < k) {
        if (s_path(leaves, k, m, proof, len) != 0)
            return -1;
        pt_merkle_root(leaves + k, n - k, other);
    } else {
        if (s_path(leaves + k, n - k, m - k, proof, len) != 0)
            return -1;
        pt_merkle_root(leaves, k, other);
    }
    return s_push(proof, len, other);
}

int pt_merkle_inclusion_proof(const pt_merkle_hash_t *leaves, size_t n, size_t index,
                              pt_merkle_hash_t *proof, size_t *proof_len)
{
    *proof_len = 0;
    if (index >= n)
        return -1;
    return s_path(leaves, n, index, proof, proof_len);
}

size_t pt_merkle_tree_hashes(size_t n)
{
    size_t total = 0;
    while (n > 1) {
        total += n;
        n = (n + 1) / 2;
    }
    return total + 1;
}

void pt_merkle_tree_build(pt_merkle_hash_t *nodes, size_t n, pt_merkle_hash_t root)
{
    if (n == 0)
        return;
    pt_merkle_hash_t *level = nodes;
    while (n > 1) {
        pt_merkle_hash_t *up = level + n;
        for (size_t i = 0; i + 1 < n; i += 2)
            pt_merkle_node_hash(level[i], level[i + 1], up[i / 2]);
        /* A lone last node is the root of the right subtree RFC 6962 splits off. */
        if (n & 1)
            memcpy(up[n / 2], level[n - 1], PT_MERKLE_HASH_BYTES);
        level = up;
        n = (n + 1) / 2;
    }
    memcpy(root, level[0], PT_MERKLE_HASH_BYTES);
}

int pt_merkle_tree_path(const pt_merkle_hash_t *nodes, size_t n, size_t index,
                        pt_merkle_hash_t *proof, size_t *proof_len)
{
    *proof_len = 0;
    if (index >= n)
        return -1;
    const pt_merkle_hash_t *level = nodes;
    while (n > 1) {
        size_t sibling = index ^ 1;
        if (sibling < n && s_push(proof, proof_len, level[sibling]) != 0)
            return -1;
        level += n;
        index /= 2;
        n = (n + 1) / 2;
    }
    return 0;
}

/* SUBPROOF(m, D[n], b) of RFC 6962 §2.1.2. */
static int s_subproof(const pt_merkle_hash_t *leaves, size_t n, size_t m, int complete,
                      pt_merkle_hash_t *proof, size_t *len)
{
    pt_merkle_hash_t hash;
    if (m == n) {
        if (complete)
            return 0;
        pt_merkle_root(leaves, n, hash);
        return s_push(proof, len, hash);
    }
    size_t k = s_split(n);
    if (m <= k) {
        if (s_subproof(leaves, k, m, complete, proof, len) != 0)
            return -1;
        pt_merkle_root(leaves + k, n - k, hash);
    } else {
        if (s_subproof(leaves + k, n - k, m - k, 0, proof, len) != 0)
            return -1;
        pt_merkle_root(leaves, k, hash);
    }
    return s_push(proof, len, hash);
}

int pt_merkle_consistency_proof(const pt_merkle_hash_t *leaves, size_t n, size_t m,
                                pt_merkle_hash_t *proof, size_t *proof_len)
{
    *proof_len = 0;
    if (m == 0 || m > n)
        return -1;
    return s_subproof(leaves, n, m, 1, proof, proof_len);
}

int pt_merkle_inclusion_verify(uint64_t index, uint64_t n, const pt_merkle_hash_t leaf_hash,
                               const pt_merkle_hash_t *proof, size_t proof_len,
                               const pt_merkle_hash_t root)
{
    pt_merkle_hash_t r;
    return pt_merkle_inclusion_root(index, n, leaf_hash, proof, proof_len, r) == 0 &&
                   memcmp(r, root, PT_MERKLE_HASH_BYTES) == 0
               ? 0
               : -1;
}

int pt_merkle_inclusion_root(uint64_t index, uint64_t n, const pt_merkle_hash_t leaf_hash,
                             const pt_merkle_hash_t *proof, size_t proof_len, pt_merkle_hash_t root)
{
    if (index >= n || proof_len > PT_MERKLE_MAX_PROOF)
        return -1;
    uint64_t fn = index, sn = n - 1;
    pt_merkle_hash_t r;
    memcpy(r, leaf_hash, PT_MERKLE_HASH_BYTES);
    for (size_t i = 0; i < proof_len; i++) {
        if (sn == 0)
            return -1;
        if ((fn & 1) || fn == sn) {
            pt_merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            pt_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return -1;
    memcpy(root, r, PT_MERKLE_HASH_BYTES);
    return 0;
}

int pt_merkle_consistency_verify(uint64_t m, uint64_t n, const pt_merkle_hash_t old_root,
                                 const pt_merkle_hash_t new_root, const pt_merkle_hash_t *proof,
                                 size_t proof_len)
{
    if (m == 0 || m > n || proof_len > PT_MERKLE_MAX_PROOF)
        return -1;
    if (m == n)
        return proof_len == 0 && memcmp(old_root, new_root, PT_MERKLE_HASH_BYTES) == 0 ? 0 : -1;
    if (proof_len == 0)
        return -1;
    /* When m is a power of two the old root itself starts the path. */
    pt_merkle_hash_t path[PT_MERKLE_MAX_PROOF + 1];
    size_t len = 0;
    if ((m & (m - 1)) == 0)
        memcpy(path[len++], old_root, PT_MERKLE_HASH_BYTES);
    memcpy(path[len], proof, proof_len * PT_MERKLE_HASH_BYTES);
    len += proof_len;

    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    pt_merkle_hash_t fr, sr;
    memcpy(fr, path[0], PT_MERKLE_HASH_BYTES);
    memcpy(sr, path[0], PT_MERKLE_HASH_BYTES);
    for (size_t i = 1; i < len; i++) {
        if (sn == 0)
            return -1;
        if ((fn & 1) || fn == sn) {
            pt_merkle_node_hash(path[i], fr, fr);
            pt_merkle_node_hash(path[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            pt_merkle_node_hash(sr, path[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, PT_MERKLE_HASH_BYTES) == 0 &&
                   memcmp(sr, new_root, PT_MERKLE_HASH_BYTES) == 0
               ? 0
               : -1;
}

void pt_merkle_frontier_init(pt_merkle_frontier_t *frontier)
{
    memset(frontier, 0, sizeof *frontier);
}

void pt_merkle_frontier_append(pt_merkle_frontier_t *frontier, const pt_merkle_hash_t leaf_hash)
{
    pt_merkle_hash_t carry;
    memcpy(carry, leaf_hash, PT_MERKLE_HASH_BYTES);
    unsigned level = 0;
    while (frontier->size & ((uint64_t)1 << level)) {
        pt_merkle_node_hash(frontier->nodes[level], carry, carry);
        level++;
    }
    memcpy(frontier->nodes[level], carry, PT_MERKLE_HASH_BYTES);
    frontier->size++;
}

void pt_merkle_frontier_root(const pt_merkle_frontier_t *frontier, pt_merkle_hash_t out)
{
    if (frontier->size == 0) {
        pt_sha256("", 0, out);
        return;
    }
    int have = 0;
    pt_merkle_hash_t acc;
    for (unsigned level = 0; level < 64; level++) {
        if (!(frontier->size & ((uint64_t)1 << level)))
            continue;
        if (!have) {
            memcpy(acc, frontier->nodes[level], PT_MERKLE_HASH_BYTES);
            have = 1;
        } else {
            pt_merkle_node_hash(frontier->nodes[level], acc, acc);
        }
    }
    memcpy(out, acc, PT_MERKLE_HASH_BYTES);
}

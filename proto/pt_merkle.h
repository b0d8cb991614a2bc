/*  pt_merkle — the global audit log's Merkle tree, RFC 6962 / RFC 9162 §2.1:
        leaf hash  = SHA-256(0x00 || leaf bytes)
        node hash  = SHA-256(0x01 || left || right)
        MTH(D[n])  splits at k, the largest power of two smaller than n;
                   MTH of the empty list = SHA-256("")
    Shared by the broker (which appends) and verifiers (which recompute roots and
    check proofs without trusting the broker). Pure functions; thread-safe.

    Proof generation works from the list of leaf hashes (O(n log n) hashing);
    the frontier (pt_merkle_frontier_t) keeps the root of a growing log in
    O(log n) per append without the leaves.
*/
#ifndef PT_MERKLE_H
#define PT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define PT_MERKLE_HASH_BYTES 32
#define PT_MERKLE_MAX_PROOF 128   /* longest proof for any tree under 2^63 leaves */

typedef uint8_t pt_merkle_hash_t[PT_MERKLE_HASH_BYTES];

void pt_merkle_leaf_hash(const void *data, size_t len, pt_merkle_hash_t out);
void pt_merkle_node_hash(const pt_merkle_hash_t left, const pt_merkle_hash_t right,
                         pt_merkle_hash_t out);

/* MTH over the first n leaf hashes. O(n). */
void pt_merkle_root(const pt_merkle_hash_t *leaves, size_t n, pt_merkle_hash_t out);

/* Inclusion proof (audit path) of leaf index in the tree of the first n leaves.
   Writes up to PT_MERKLE_MAX_PROOF hashes into proof. 0, or -1 if index >= n. */
int pt_merkle_inclusion_proof(const pt_merkle_hash_t *leaves, size_t n, size_t index,
                              pt_merkle_hash_t *proof, size_t *proof_len);

/* RFC 9162 §2.1.3.2. 0 if leaf_hash is at index in the tree of size n with root. */
int pt_merkle_inclusion_verify(uint64_t index, uint64_t n, const pt_merkle_hash_t leaf_hash,
                               const pt_merkle_hash_t *proof, size_t proof_len,
                               const pt_merkle_hash_t root);

/* The root that proof folds leaf_hash at index of a tree of size n up to (the
   first half of pt_merkle_inclusion_verify). 0 and root, or -1 (index >= n, or
   proof_len is not the path length for index and n; root untouched). */
int pt_merkle_inclusion_root(uint64_t index, uint64_t n, const pt_merkle_hash_t leaf_hash,
                             const pt_merkle_hash_t *proof, size_t proof_len,
                             pt_merkle_hash_t root);

/* A whole small tree kept level by level, for the proofs of every leaf at once
   (the receipts of one batch): level 0 is the n leaf hashes, each next level
   pairs the one below ((0,1), (2,3), ...) and a lone last node moves up
   unchanged, which is exactly the RFC 6962 split. pt_merkle_tree_hashes(n)
   hashes of storage hold every level (under 2n + 64). */
size_t pt_merkle_tree_hashes(size_t n);

/* nodes[0..n-1] hold the n >= 1 leaf hashes; writes the levels above them into
   the rest of nodes (pt_merkle_tree_hashes(n) hashes) and the root (MTH) into
   root. n - 1 node hashes. No-op with n == 0. */
void pt_merkle_tree_build(pt_merkle_hash_t *nodes, size_t n, pt_merkle_hash_t root);

/* The inclusion proof (bottom-up, the same hashes as pt_merkle_inclusion_proof)
   of leaf index in a tree built by pt_merkle_tree_build with the same n; at most
   PT_MERKLE_MAX_PROOF hashes into proof. 0, or -1 if index >= n. O(log n), no
   hashing. */
int pt_merkle_tree_path(const pt_merkle_hash_t *nodes, size_t n, size_t index,
                        pt_merkle_hash_t *proof, size_t *proof_len);

/* Consistency proof between the trees of the first m and the first n leaves
   (0 < m <= n). 0, or -1 on bad sizes. */
int pt_merkle_consistency_proof(const pt_merkle_hash_t *leaves, size_t n, size_t m,
                                pt_merkle_hash_t *proof, size_t *proof_len);

/* RFC 9162 §2.1.4.2. 0 if the tree of size m with old_root is a prefix of the
   tree of size n with new_root. */
int pt_merkle_consistency_verify(uint64_t m, uint64_t n, const pt_merkle_hash_t old_root,
                                 const pt_merkle_hash_t new_root, const pt_merkle_hash_t *proof,
                                 size_t proof_len);

/* The right frontier of a growing tree: the roots of its perfect subtrees. */
typedef struct {
    uint64_t size;
    pt_merkle_hash_t nodes[64];   /* nodes[i] valid when bit i of size is set */
} pt_merkle_frontier_t;

void pt_merkle_frontier_init(pt_merkle_frontier_t *frontier);
/* Appends one leaf hash. O(log n). */
void pt_merkle_frontier_append(pt_merkle_frontier_t *frontier, const pt_merkle_hash_t leaf_hash);
/* The root of the tree of frontier->size leaves. O(log n). */
void pt_merkle_frontier_root(const pt_merkle_frontier_t *frontier, pt_merkle_hash_t out);

#endif

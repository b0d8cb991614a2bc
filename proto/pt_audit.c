/*  pt_audit — audit log formats and verifier (see pt_audit.h). */
#include "pt_audit.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "envelope.pb-c.h"
#include "pt_envelope.h"
#include "pt_key_window.h"

static const char s_leaf_domain[] = "puente.v1 leaf";   /* hashed with its NUL */

static void s_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

void pt_audit_leaf_encode(const uint8_t event_hash[32], int64_t event_id,
                          uint8_t out[PT_AUDIT_LEAF_BYTES])
{
    memcpy(out, s_leaf_domain, sizeof s_leaf_domain);
    memcpy(out + sizeof s_leaf_domain, event_hash, 32);
    s_be64(out + sizeof s_leaf_domain + 32, (uint64_t)event_id);
}

void pt_audit_leaf_hash(const uint8_t event_hash[32], int64_t event_id, pt_merkle_hash_t out)
{
    uint8_t leaf[PT_AUDIT_LEAF_BYTES];
    pt_audit_leaf_encode(event_hash, event_id, leaf);
    pt_merkle_leaf_hash(leaf, sizeof leaf, out);
}

int pt_audit_frontier_decode(uint64_t size, const uint8_t *bytes, size_t len,
                             pt_merkle_frontier_t *out)
{
    if (!out || (len > 0 && !bytes))
        return -1;
    size_t need = (size_t)__builtin_popcountll(size) * PT_MERKLE_HASH_BYTES;
    if (len != need)
        return -1;
    pt_merkle_frontier_init(out);
    out->size = size;
    size_t at = 0;
    for (int level = 63; level >= 0; level--) {
        if (!(size & ((uint64_t)1 << level)))
            continue;
        memcpy(out->nodes[level], bytes + at, PT_MERKLE_HASH_BYTES);
        at += PT_MERKLE_HASH_BYTES;
    }
    return 0;
}

void pt_audit_checkpoint_bytes(uint64_t tree_size, const uint8_t root[32], int64_t at_ms,
                               uint8_t out[PT_AUDIT_CHECKPOINT_BYTES])
{
    s_be64(out, tree_size);
    memcpy(out + 8, root, 32);
    s_be64(out + 40, (uint64_t)at_ms);
}

int pt_audit_checkpoint_sign(const pt_sign_key_t *broker, uint64_t tree_size,
                             const uint8_t root[32], int64_t at_ms,
                             uint8_t sig[PT_ED25519_SIG_BYTES])
{
    uint8_t bytes[PT_AUDIT_CHECKPOINT_BYTES];
    if (!broker || !root || !sig)
        return -1;
    pt_audit_checkpoint_bytes(tree_size, root, at_ms, bytes);
    return pt_sign(broker, PT_DOMAIN_CHECKPOINT, bytes, sizeof bytes, sig);
}

int pt_audit_checkpoint_verify(const pt_sign_key_t *broker, uint64_t tree_size,
                               const uint8_t *root, size_t root_len, int64_t at_ms,
                               const uint8_t *sig, size_t sig_len)
{
    uint8_t bytes[PT_AUDIT_CHECKPOINT_BYTES];
    if (!broker || !root || root_len != 32 || !sig || sig_len != PT_ED25519_SIG_BYTES)
        return -1;
    pt_audit_checkpoint_bytes(tree_size, root, at_ms, bytes);
    return pt_verify(broker, PT_DOMAIN_CHECKPOINT, bytes, sizeof bytes, sig, sig_len);
}

void pt_audit_checkpoint2_bytes(const pt_audit_checkpoint_t *cp,
                                uint8_t out[PT_AUDIT_CHECKPOINT2_BYTES])
{
    s_be64(out, cp->seq);
    s_be64(out + 8, cp->tree_size);
    memcpy(out + 16, cp->root, 32);
    s_be64(out + 48, (uint64_t)cp->at_ms);
    memcpy(out + 56, cp->prev_hash, 32);
}

int pt_audit_checkpoint2_sign(const pt_sign_key_t *broker, const pt_audit_checkpoint_t *cp,
                              uint8_t sig[PT_ED25519_SIG_BYTES])
{
    uint8_t bytes[PT_AUDIT_CHECKPOINT2_BYTES];
    if (!broker || !cp || !sig)
        return -1;
    if (cp->seq == 0)
        return pt_audit_checkpoint_sign(broker, cp->tree_size, cp->root, cp->at_ms, sig);
    pt_audit_checkpoint2_bytes(cp, bytes);
    return pt_sign(broker, PT_DOMAIN_CHECKPOINT2, bytes, sizeof bytes, sig);
}

int pt_audit_checkpoint2_verify(const pt_sign_key_t *broker, const pt_audit_checkpoint_t *cp,
                                const uint8_t *sig, size_t sig_len)
{
    uint8_t bytes[PT_AUDIT_CHECKPOINT2_BYTES];
    if (!broker || !cp || !sig || sig_len != PT_ED25519_SIG_BYTES)
        return -1;
    if (cp->seq == 0)
        return pt_audit_checkpoint_verify(broker, cp->tree_size, cp->root, 32, cp->at_ms, sig,
                                          sig_len);
    pt_audit_checkpoint2_bytes(cp, bytes);
    return pt_verify(broker, PT_DOMAIN_CHECKPOINT2, bytes, sizeof bytes, sig, sig_len);
}

void pt_audit_checkpoint2_hash(const pt_audit_checkpoint_t *cp,
                               const uint8_t sig[PT_ED25519_SIG_BYTES], uint8_t out[32])
{
    uint8_t bytes[PT_AUDIT_CHECKPOINT2_BYTES + PT_ED25519_SIG_BYTES];
    pt_audit_checkpoint2_bytes(cp, bytes);
    memcpy(bytes + PT_AUDIT_CHECKPOINT2_BYTES, sig, PT_ED25519_SIG_BYTES);
    pt_sha256(bytes, sizeof bytes, out);
}

int pt_audit_strip_payloads(const uint8_t *env, size_t len, uint8_t **out_p, size_t *out_len)
{
    if (!env || !out_p || !out_len)
        return -1;
    *out_p = NULL;
    *out_len = 0;
    Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, len, env);
    if (!e)
        return -1;
    for (size_t i = 0; i < e->n_payloads; i++) {
        /* The strings stay owned by the unpacked message; only lengths change. */
        e->payloads[i]->ciphertext.len = 0;
        e->payloads[i]->ephemeral_public.len = 0;
        e->payloads[i]->nonce.len = 0;
    }
    size_t n = puente__v1__envelope__get_packed_size(e);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) {
        puente__v1__envelope__free_unpacked(e, NULL);
        return -1;
    }
    puente__v1__envelope__pack(e, out);
    puente__v1__envelope__free_unpacked(e, NULL);
    *out_p = out;
    *out_len = n;
    return 0;
}

/* --- verifier ---------------------------------------------------------------------- */

#define S_KEPT_MAX 1000

typedef struct {
    int64_t event_id;
    uint8_t hash[32];
    const char *case_token;    /* interned in self->tokens */
    uint64_t seq;
    int in_log;
} s_event_t;

typedef struct {
    uint8_t id[16];
    uint8_t header_sha256[32];
    int has_event;
} s_message_t;

typedef struct {
    char org_id[33];
    uint8_t sign_public[32];
    uint8_t key_id[32];
    pt_key_window_t window;
} s_key_t;

typedef struct {
    uint64_t tree_size;
    uint8_t root[32];
} s_checkpoint_t;

static int s_checkpoint_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_checkpoint_t *)a)->tree_size, y = ((const s_checkpoint_t *)b)->tree_size;
    return x < y ? -1 : x > y;
}

enum { S_PHASE_KEYS, S_PHASE_MESSAGES, S_PHASE_EVENTS, S_PHASE_CHECKPOINTS, S_PHASE_LEAVES,
       S_PHASE_HEAD, S_PHASE_DONE };

struct _pt_audit_verifier_t {
    const pt_sign_key_t *pinned;
    pt_sign_key_t *first_signer;
    uint8_t first_signer_raw[32];
    int phase;
    s_key_t *keys;
    size_t n_keys, cap_keys;
    s_message_t *messages;
    size_t n_messages, cap_messages;
    s_event_t *events;
    size_t n_events, cap_events;
    char **tokens;
    size_t n_tokens, cap_tokens;
    /* the chain being walked */
    const char *cur_token;
    uint64_t cur_seq;
    uint8_t cur_hash[32];
    s_checkpoint_t *checkpoints;
    size_t n_checkpoints, cap_checkpoints, next_checkpoint;
    /* the checkpoint chain (version 2) being walked */
    uint64_t chain_seq;            /* seq of the last version 2 row, 0 = none yet */
    uint8_t chain_hash[32];        /* its checkpoint hash */
    uint64_t chain_size;           /* tree size of the last row (any version) */
    int chain_any;
    /* the auditor's trusted checkpoint (pt_audit_verifier_trust) */
    int has_trusted, trusted_row_seen, trusted_root_checked;
    pt_audit_checkpoint_t trusted;
    int bundle_root_set;           /* a bundle: its checkpoint's root is the root */
    uint8_t bundle_root[32];
    pt_merkle_frontier_t frontier;
    uint64_t leaves;
    int head_seen;
    pt_audit_finding_t kept[S_KEPT_MAX];
    size_t n_kept, n_findings;
    int oom;
};

static void s_find(pt_audit_verifier_t *self, const char *table, const char *row,
                   const char *case_token, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void s_find(pt_audit_verifier_t *self, const char *table, const char *row,
                   const char *case_token, uint64_t seq, const char *fmt, ...)
{
    self->n_findings++;
    if (self->n_kept >= S_KEPT_MAX)
        return;
    pt_audit_finding_t *f = &self->kept[self->n_kept++];
    memset(f, 0, sizeof *f);
    snprintf(f->table, sizeof f->table, "%s", table);
    snprintf(f->row, sizeof f->row, "%s", row ? row : "");
    snprintf(f->case_token, sizeof f->case_token, "%s", case_token ? case_token : "");
    f->seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->problem, sizeof f->problem, fmt, ap);
    va_end(ap);
}

static int s_grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t next = *cap ? *cap * 2 : 256;
    void *grown = realloc(*items, next * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = next;
    return 0;
}

static void s_uuid_text(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[w++] = '-';
        out[w++] = hex[id[i] >> 4];
        out[w++] = hex[id[i] & 15];
    }
    out[w] = '\0';
}

pt_audit_verifier_t *pt_audit_verifier_new(const pt_sign_key_t *broker_key)
{
    pt_audit_verifier_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pinned = broker_key;
    pt_merkle_frontier_init(&self->frontier);
    return self;
}

void pt_audit_verifier_destroy(pt_audit_verifier_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_audit_verifier_t *self = *self_p;
    for (size_t i = 0; i < self->n_tokens; i++)
        free(self->tokens[i]);
    free(self->tokens);
    free(self->keys);
    free(self->messages);
    free(self->events);
    free(self->checkpoints);
    pt_sign_key_destroy(&self->first_signer);
    free(self);
    *self_p = NULL;
}

static int s_phase(pt_audit_verifier_t *self, int phase)
{
    if (self->oom || phase < self->phase)
        return -1;
    self->phase = phase;
    return 0;
}

int pt_audit_verifier_key_set(pt_audit_verifier_t *self, const char *org_id,
                              const uint8_t *sign_public, size_t len, int64_t valid_from_ms,
                              int64_t valid_until_ms, int64_t revoked_at_ms)
{
    if (!self || !org_id || s_phase(self, S_PHASE_KEYS))
        return -1;
    if (!sign_public || len != 32 || strlen(org_id) > 32) {
        s_find(self, "org_keys", org_id, NULL, 0, "signing key of %.40s is not 32 bytes", org_id);
        return 0;
    }
    if (s_grow((void **)&self->keys, &self->cap_keys, self->n_keys, sizeof *self->keys)) {
        self->oom = 1;
        return -1;
    }
    s_key_t *k = &self->keys[self->n_keys++];
    snprintf(k->org_id, sizeof k->org_id, "%s", org_id);
    memcpy(k->sign_public, sign_public, 32);
    pt_sha256(sign_public, 32, k->key_id);
    k->window.valid_from_ms = valid_from_ms;
    k->window.valid_until_ms = valid_until_ms;
    k->window.revoked_at_ms = revoked_at_ms;
    return 0;
}

int pt_audit_verifier_org_key(pt_audit_verifier_t *self, const char *org_id,
                              const uint8_t *sign_public, size_t len, int64_t valid_from_ms,
                              int64_t valid_until_ms)
{
    return pt_audit_verifier_key_set(self, org_id, sign_public, len, valid_from_ms,
                                     valid_until_ms, 0);
}

int pt_audit_verifier_message(pt_audit_verifier_t *self, const uint8_t *message_id, size_t id_len,
                              const char *sender, const char *case_token, int64_t stored_at_ms,
                              const uint8_t *header_sha256, size_t sha_len,
                              const uint8_t *envelope, size_t envelope_len)
{
    char row[37] = "?";
    Puente__V1__Envelope *env = NULL;
    Puente__V1__Header *header = NULL;
    if (!self || s_phase(self, S_PHASE_MESSAGES))
        return -1;
    if (!message_id || id_len != 16) {
        s_find(self, "messages", "?", case_token, 0, "message id is not 16 bytes");
        return 0;
    }
    s_uuid_text(message_id, row);
    if (s_grow((void **)&self->messages, &self->cap_messages, self->n_messages,
               sizeof *self->messages)) {
        self->oom = 1;
        return -1;
    }
    s_message_t *m = &self->messages[self->n_messages++];
    memset(m, 0, sizeof *m);
    memcpy(m->id, message_id, 16);
    if (!header_sha256 || sha_len != 32) {
        s_find(self, "messages", row, case_token, 0, "header_sha256 is not 32 bytes");
        return 0;
    }
    memcpy(m->header_sha256, header_sha256, 32);
    env = envelope ? puente__v1__envelope__unpack(NULL, envelope_len, envelope) : NULL;
    if (!env || env->header.len == 0) {
        s_find(self, "messages", row, case_token, 0, "envelope does not decode");
        goto done;
    }
    uint8_t digest[32];
    pt_sha256(env->header.data, env->header.len, digest);
    if (memcmp(digest, header_sha256, 32) != 0) {
        s_find(self, "messages", row, case_token, 0,
               "header_sha256 differs from the SHA-256 of the stored header bytes");
        goto done;
    }
    header = puente__v1__header__unpack(NULL, env->header.len, env->header.data);
    if (!header) {
        s_find(self, "messages", row, case_token, 0, "signed header does not decode");
        goto done;
    }
    if (header->message_id.len != 16 || memcmp(header->message_id.data, message_id, 16) != 0 ||
        !sender || strcmp(header->sender, sender) != 0 || !case_token ||
        strcmp(header->case_token, case_token) != 0) {
        s_find(self, "messages", row, case_token, 0,
               "message id, sender or case token of the row differ from the signed header");
        goto done;
    }
    /* The key named by the header, used inside its window: created before the set
       was replaced or revoked, stored while registered and before any revocation
       (pt_key_window.h, the broker's rule with the stored time for "now"). */
    const s_key_t *key = NULL;
    pt_key_window_result_t why = PT_KEY_WINDOW_NOT_YET_VALID;
    int named = 0;
    for (size_t i = 0; i < self->n_keys && !key; i++) {
        const s_key_t *k = &self->keys[i];
        if (strcmp(k->org_id, sender) != 0 || header->sender_key_id.len != 32 ||
            memcmp(header->sender_key_id.data, k->key_id, 32) != 0)
            continue;
        named = 1;
        why = pt_key_window_check(&k->window, header->created_at_ms, stored_at_ms);
        if (why == PT_KEY_WINDOW_OK)
            key = k;
    }
    if (!key) {
        if (named)
            s_find(self, "messages", row, case_token, 0,
                   "signed with a key of %.40s that was %s when the message was created or "
                   "stored", sender, pt_key_window_result_str(why));
        else
            s_find(self, "messages", row, case_token, 0,
                   "no signing key of %.40s matches the header's key id", sender);
        goto done;
    }
    pt_sign_key_t *pub = pt_sign_key_from_public(key->sign_public, 32);
    int ok = pub && pt_envelope_verify_header(env, pub) == PT_ENV_OK;
    pt_sign_key_destroy(&pub);
    if (!ok)
        s_find(self, "messages", row, case_token, 0,
               "header signature does not verify with the key of %.40s", sender);
done:
    if (header)
        puente__v1__header__free_unpacked(header, NULL);
    if (env)
        puente__v1__envelope__free_unpacked(env, NULL);
    return 0;
}

static int s_message_cmp(const void *a, const void *b)
{
    return memcmp(((const s_message_t *)a)->id, ((const s_message_t *)b)->id, 16);
}

static int s_event_cmp(const void *a, const void *b)
{
    int64_t x = ((const s_event_t *)a)->event_id, y = ((const s_event_t *)b)->event_id;
    return x < y ? -1 : x > y;
}

/* qsort and bsearch with an empty (possibly NULL) array: C leaves that undefined. */
static void s_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 0)
        qsort(base, n, size, cmp);
}

static void *s_search(const void *key, void *base, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
    return n > 0 ? bsearch(key, base, n, size, cmp) : NULL;
}

int pt_audit_verifier_event(pt_audit_verifier_t *self, int64_t event_id,
                            const pt_trail_event_t *ev, const uint8_t *prev_hash,
                            size_t prev_len, const uint8_t *hash, size_t hash_len)
{
    char row[24];
    if (!self || !ev || !ev->case_token || !ev->kind)
        return -1;
    if (self->phase < S_PHASE_EVENTS) {
        if (s_phase(self, S_PHASE_EVENTS))
            return -1;
        s_sort(self->messages, self->n_messages, sizeof *self->messages, s_message_cmp);
    } else if (s_phase(self, S_PHASE_EVENTS)) {
        return -1;
    }
    snprintf(row, sizeof row, "%lld", (long long)event_id);
    if (!self->cur_token || strcmp(self->cur_token, ev->case_token) != 0) {
        if (s_grow((void **)&self->tokens, &self->cap_tokens, self->n_tokens, sizeof *self->tokens)) {
            self->oom = 1;
            return -1;
        }
        char *copy = strdup(ev->case_token);
        if (!copy) {
            self->oom = 1;
            return -1;
        }
        self->tokens[self->n_tokens++] = copy;
        self->cur_token = copy;
        self->cur_seq = 0;
        memset(self->cur_hash, 0, 32);
    }
    const char *tok = self->cur_token;
    if (s_grow((void **)&self->events, &self->cap_events, self->n_events, sizeof *self->events)) {
        self->oom = 1;
        return -1;
    }
    s_event_t *e = &self->events[self->n_events++];
    memset(e, 0, sizeof *e);
    e->event_id = event_id;
    e->case_token = tok;
    e->seq = ev->seq;
    if (!hash || hash_len != 32 || !prev_hash || prev_len != 32) {
        s_find(self, "case_events", row, tok, ev->seq, "hash or prev_hash is not 32 bytes");
        self->cur_seq = ev->seq;
        return 0;
    }
    memcpy(e->hash, hash, 32);
    if (ev->seq != self->cur_seq + 1)
        s_find(self, "case_events", row, tok, ev->seq,
               "seq %llu follows seq %llu: an event is missing or was inserted",
               (unsigned long long)ev->seq, (unsigned long long)self->cur_seq);
    else if (memcmp(prev_hash, self->cur_hash, 32) != 0)
        s_find(self, "case_events", row, tok, ev->seq,
               "prev_hash is not the hash of the previous event (reordered, deleted or inserted)");
    uint8_t computed[32];
    if (pt_trail_hash(prev_hash, ev, computed) != 0 || memcmp(computed, hash, 32) != 0)
        s_find(self, "case_events", row, tok, ev->seq,
               "hash does not match the event's contents (row modified)");
    if (ev->message_id) {
        s_message_t key;
        memcpy(key.id, ev->message_id, 16);
        s_message_t *m = s_search(&key, self->messages, self->n_messages, sizeof *self->messages,
                                  s_message_cmp);
        if (!m)
            s_find(self, "case_events", row, tok, ev->seq,
                   "event refers to a message that is not stored (messages row deleted?)");
        else {
            m->has_event = 1;
            if (ev->detail_len != 32 || memcmp(ev->detail, m->header_sha256, 32) != 0)
                s_find(self, "case_events", row, tok, ev->seq,
                       "detail differs from the stored message's header_sha256");
        }
    }
    self->cur_seq = ev->seq;
    memcpy(self->cur_hash, hash, 32);
    return 0;
}

int pt_audit_verifier_checkpoint(pt_audit_verifier_t *self, uint64_t tree_size,
                                 const uint8_t *root, size_t root_len, int64_t at_ms,
                                 const uint8_t *signer, size_t signer_len, const uint8_t *sig,
                                 size_t sig_len)
{
    return pt_audit_verifier_checkpoint2(self, 0, tree_size, root, root_len, at_ms, NULL, 0,
                                         signer, signer_len, sig, sig_len);
}

int pt_audit_verifier_trust(pt_audit_verifier_t *self, const pt_audit_checkpoint_t *cp,
                            const uint8_t *sig, size_t sig_len)
{
    if (!self || !cp || !self->pinned || self->phase > S_PHASE_EVENTS || cp->seq == 0)
        return -1;
    self->has_trusted = 1;
    self->trusted = *cp;
    if (pt_audit_checkpoint2_verify(self->pinned, cp, sig, sig_len) != 0) {
        char row[48];
        snprintf(row, sizeof row, "seq %llu size %llu", (unsigned long long)cp->seq,
                 (unsigned long long)cp->tree_size);
        s_find(self, "trusted", row, NULL, 0,
               "your trusted checkpoint's signature does not verify with the broker's key");
    }
    return 0;
}

static void s_trusted_row(const pt_audit_verifier_t *self, char row[48])
{
    snprintf(row, 48, "seq %llu size %llu", (unsigned long long)self->trusted.seq,
             (unsigned long long)self->trusted.tree_size);
}

int pt_audit_verifier_checkpoint2(pt_audit_verifier_t *self, uint64_t seq, uint64_t tree_size,
                                  const uint8_t *root, size_t root_len, int64_t at_ms,
                                  const uint8_t *prev_hash, size_t prev_len,
                                  const uint8_t *signer, size_t signer_len, const uint8_t *sig,
                                  size_t sig_len)
{
    char row[24];
    if (!self || s_phase(self, S_PHASE_CHECKPOINTS))
        return -1;
    snprintf(row, sizeof row, "%llu", (unsigned long long)tree_size);
    if (!root || root_len != 32 || !signer || signer_len != 32 ||
        (seq > 0 && (!prev_hash || prev_len != 32))) {
        s_find(self, "checkpoints", row, NULL, 0, "root, prev_hash or signer is not 32 bytes");
        return 0;
    }
    pt_audit_checkpoint_t cp = {.seq = seq, .tree_size = tree_size, .at_ms = at_ms};
    memcpy(cp.root, root, 32);
    if (seq > 0)
        memcpy(cp.prev_hash, prev_hash, 32);
    /* The chain: sizes grow; version 2 rows count 1, 2, 3 and link to the previous. */
    if (self->chain_any && tree_size <= self->chain_size)
        s_find(self, "checkpoints", row, NULL, 0,
               "tree size %llu does not grow past the previous checkpoint's %llu (the log shrank)",
               (unsigned long long)tree_size, (unsigned long long)self->chain_size);
    if (seq == 0 && self->chain_seq > 0) {
        s_find(self, "checkpoints", row, NULL, 0,
               "a version 1 checkpoint (no seq) after version 2 ones (inserted)");
    } else if (seq > 0) {
        if (seq != self->chain_seq + 1)
            s_find(self, "checkpoints", row, NULL, 0,
                   "seq %llu follows seq %llu: checkpoint(s) deleted or inserted",
                   (unsigned long long)seq, (unsigned long long)self->chain_seq);
        else if (memcmp(cp.prev_hash, self->chain_hash, 32) != 0)
            s_find(self, "checkpoints", row, NULL, 0,
                   "seq %llu: prev_hash does not link to checkpoint seq %llu (broken link: "
                   "deleted, inserted or modified)",
                   (unsigned long long)seq, (unsigned long long)self->chain_seq);
        self->chain_seq = seq;
        if (sig && sig_len == PT_ED25519_SIG_BYTES)
            pt_audit_checkpoint2_hash(&cp, sig, self->chain_hash);
        else
            memset(self->chain_hash, 0xff, 32);
    }
    self->chain_any = 1;
    self->chain_size = tree_size;
    if (self->has_trusted && seq > 0 && seq == self->trusted.seq) {
        self->trusted_row_seen = 1;
        if (tree_size != self->trusted.tree_size || memcmp(root, self->trusted.root, 32) != 0 ||
            at_ms != self->trusted.at_ms ||
            memcmp(cp.prev_hash, self->trusted.prev_hash, 32) != 0) {
            char trow[48];
            s_trusted_row(self, trow);
            s_find(self, "trusted", trow, NULL, 0,
                   "the database's checkpoint seq %llu differs from your trusted checkpoint "
                   "(the log was rewritten)",
                   (unsigned long long)seq);
        }
    }
    const pt_sign_key_t *key = self->pinned;
    if (!key) {
        if (!self->first_signer) {
            self->first_signer = pt_sign_key_from_public(signer, 32);
            memcpy(self->first_signer_raw, signer, 32);
        }
        key = self->first_signer;
        if (key && memcmp(signer, self->first_signer_raw, 32) != 0) {
            s_find(self, "checkpoints", row, NULL, 0, "signed by another key than earlier checkpoints");
            return 0;
        }
    } else {
        uint8_t pinned_raw[32];
        pt_sign_key_public(key, pinned_raw);
        if (memcmp(pinned_raw, signer, 32) != 0)
            s_find(self, "checkpoints", row, NULL, 0, "signer is not the broker's key");
    }
    if (!key || pt_audit_checkpoint2_verify(key, &cp, sig, sig_len) != 0)
        s_find(self, "checkpoints", row, NULL, 0,
               "signature does not verify with the broker's key (forged or modified)");
    if (s_grow((void **)&self->checkpoints, &self->cap_checkpoints, self->n_checkpoints,
               sizeof *self->checkpoints)) {
        self->oom = 1;
        return -1;
    }
    s_checkpoint_t *c = &self->checkpoints[self->n_checkpoints++];
    c->tree_size = tree_size;
    memcpy(c->root, root, 32);
    return 0;
}

/* Compares the roots of every checkpoint whose size the leaves have reached. */
static void s_check_roots(pt_audit_verifier_t *self)
{
    if (self->has_trusted && !self->trusted_root_checked &&
        self->leaves == self->trusted.tree_size) {
        pt_merkle_hash_t root;
        pt_merkle_frontier_root(&self->frontier, root);
        self->trusted_root_checked = 1;
        if (memcmp(root, self->trusted.root, 32) != 0) {
            char row[48];
            s_trusted_row(self, row);
            s_find(self, "trusted", row, NULL, 0,
                   "the log's first %llu leaves do not have your trusted checkpoint's root "
                   "(the log was rewritten)",
                   (unsigned long long)self->trusted.tree_size);
        }
    }
    while (self->next_checkpoint < self->n_checkpoints &&
           self->checkpoints[self->next_checkpoint].tree_size <= self->leaves) {
        const s_checkpoint_t *c = &self->checkpoints[self->next_checkpoint++];
        if (c->tree_size != self->leaves)
            continue;   /* duplicate sizes are impossible (PRIMARY KEY) */
        pt_merkle_hash_t root;
        pt_merkle_frontier_root(&self->frontier, root);
        if (memcmp(root, c->root, 32) != 0) {
            char row[24];
            snprintf(row, sizeof row, "%llu", (unsigned long long)c->tree_size);
            s_find(self, "checkpoints", row, NULL, 0,
                   "root differs from the Merkle root of the first %llu leaves",
                   (unsigned long long)c->tree_size);
        }
    }
}

int pt_audit_verifier_leaf(pt_audit_verifier_t *self, uint64_t leaf_index, int64_t event_id,
                           const uint8_t *leaf_hash, size_t len)
{
    char row[24];
    if (!self)
        return -1;
    if (self->phase < S_PHASE_LEAVES) {
        if (s_phase(self, S_PHASE_LEAVES))
            return -1;
        s_sort(self->events, self->n_events, sizeof *self->events, s_event_cmp);
        /* Rows came in seq order; roots are compared in size order. */
        s_sort(self->checkpoints, self->n_checkpoints, sizeof *self->checkpoints,
               s_checkpoint_cmp);
        s_check_roots(self);   /* a checkpoint of size 0 */
    } else if (s_phase(self, S_PHASE_LEAVES)) {
        return -1;
    }
    snprintf(row, sizeof row, "%llu", (unsigned long long)leaf_index);
    if (leaf_index != self->leaves)
        s_find(self, "audit_log", row, NULL, 0, "leaf index %llu where %llu was expected (leaf deleted or inserted)",
               (unsigned long long)leaf_index, (unsigned long long)self->leaves);
    s_event_t key = {.event_id = event_id};
    s_event_t *e = s_search(&key, self->events, self->n_events, sizeof *self->events, s_event_cmp);
    pt_merkle_hash_t leaf;
    if (!leaf_hash || len != 32) {
        s_find(self, "audit_log", row, e ? e->case_token : NULL, e ? e->seq : 0,
               "leaf_hash is not 32 bytes");
        memset(leaf, 0, sizeof leaf);
    } else {
        memcpy(leaf, leaf_hash, 32);
    }
    if (!e) {
        s_find(self, "audit_log", row, NULL, 0, "leaf names event %lld, which is not in case_events (deleted)",
               (long long)event_id);
    } else {
        if (e->in_log)
            s_find(self, "audit_log", row, e->case_token, e->seq, "event %lld is in the log twice",
                   (long long)event_id);
        e->in_log = 1;
        pt_merkle_hash_t expect;
        pt_audit_leaf_hash(e->hash, e->event_id, expect);
        if (len == 32 && memcmp(expect, leaf_hash, 32) != 0)
            s_find(self, "audit_log", row, e->case_token, e->seq,
                   "leaf hash differs from the hash of event %lld (event or leaf modified)",
                   (long long)event_id);
    }
    /* The root is computed over the stored leaf hashes: what the checkpoints signed. */
    pt_merkle_frontier_append(&self->frontier, leaf);
    self->leaves++;
    s_check_roots(self);
    return 0;
}

int pt_audit_verifier_head(pt_audit_verifier_t *self, uint64_t size, const uint8_t *frontier,
                           size_t len)
{
    if (!self)
        return -1;
    if (self->phase < S_PHASE_LEAVES) {
        s_sort(self->events, self->n_events, sizeof *self->events, s_event_cmp);
        /* Rows came in seq order; roots are compared in size order. */
        s_sort(self->checkpoints, self->n_checkpoints, sizeof *self->checkpoints,
               s_checkpoint_cmp);
        s_check_roots(self);
    }
    if (s_phase(self, S_PHASE_HEAD))
        return -1;
    self->head_seen = 1;
    pt_merkle_frontier_t decoded;
    if (size != self->leaves) {
        s_find(self, "audit_head", "1", NULL, 0, "size %llu but the log holds %llu leaves",
               (unsigned long long)size, (unsigned long long)self->leaves);
    } else if (pt_audit_frontier_decode(size, frontier, len, &decoded) != 0) {
        s_find(self, "audit_head", "1", NULL, 0, "frontier has the wrong length");
    } else {
        pt_merkle_hash_t a, b;
        pt_merkle_frontier_root(&decoded, a);
        pt_merkle_frontier_root(&self->frontier, b);
        if (memcmp(a, b, 32) != 0)
            s_find(self, "audit_head", "1", NULL, 0, "frontier root differs from the log's root");
    }
    return 0;
}

int pt_audit_verifier_finish(pt_audit_verifier_t *self)
{
    if (!self)
        return -1;
    if (self->phase < S_PHASE_LEAVES) {
        s_sort(self->events, self->n_events, sizeof *self->events, s_event_cmp);
        /* Rows came in seq order; roots are compared in size order. */
        s_sort(self->checkpoints, self->n_checkpoints, sizeof *self->checkpoints,
               s_checkpoint_cmp);
        s_check_roots(self);
    }
    if (s_phase(self, S_PHASE_DONE))
        return -1;
    if (!self->head_seen)
        s_find(self, "audit_head", "1", NULL, 0, "the log's head row is missing");
    if (self->has_trusted) {
        char row[48];
        s_trusted_row(self, row);
        if (self->leaves < self->trusted.tree_size)
            s_find(self, "trusted", row, NULL, 0,
                   "the log holds %llu leaves, fewer than the %llu of your trusted checkpoint "
                   "(its tail was truncated)",
                   (unsigned long long)self->leaves, (unsigned long long)self->trusted.tree_size);
        if (!self->trusted_row_seen)
            s_find(self, "trusted", row, NULL, 0,
                   "the checkpoints table has no checkpoint seq %llu (latest is seq %llu): "
                   "checkpoints were deleted",
                   (unsigned long long)self->trusted.seq, (unsigned long long)self->chain_seq);
    }
    for (size_t i = 0; i < self->n_events; i++) {
        const s_event_t *e = &self->events[i];
        if (!e->in_log) {
            char row[24];
            snprintf(row, sizeof row, "%lld", (long long)e->event_id);
            s_find(self, "case_events", row, e->case_token, e->seq,
                   "event is not in the Merkle log (inserted afterwards)");
        }
    }
    for (size_t i = self->next_checkpoint; i < self->n_checkpoints; i++) {
        char row[24];
        snprintf(row, sizeof row, "%llu", (unsigned long long)self->checkpoints[i].tree_size);
        s_find(self, "checkpoints", row, NULL, 0,
               "checkpoint covers %llu leaves but the log holds %llu (leaves deleted?)",
               (unsigned long long)self->checkpoints[i].tree_size,
               (unsigned long long)self->leaves);
    }
    for (size_t i = 0; i < self->n_messages; i++) {
        if (self->messages[i].has_event)
            continue;
        char row[37];
        s_uuid_text(self->messages[i].id, row);
        s_find(self, "messages", row, NULL, 0, "message has no case event (events deleted?)");
    }
    return 0;
}

size_t pt_audit_verifier_count(const pt_audit_verifier_t *self)
{
    return self ? self->n_findings + (size_t)self->oom : 0;
}

size_t pt_audit_verifier_kept(const pt_audit_verifier_t *self)
{
    return self ? self->n_kept : 0;
}

const pt_audit_finding_t *pt_audit_verifier_finding(const pt_audit_verifier_t *self, size_t i)
{
    return self && i < self->n_kept ? &self->kept[i] : NULL;
}

void pt_audit_verifier_totals(const pt_audit_verifier_t *self, uint64_t *events, uint64_t *leaves,
                              uint64_t *checkpoints, uint64_t *messages, pt_merkle_hash_t root)
{
    if (events)
        *events = self->n_events;
    if (leaves)
        *leaves = self->leaves;
    if (checkpoints)
        *checkpoints = self->n_checkpoints;
    if (messages)
        *messages = self->n_messages;
    if (root && self->bundle_root_set)
        memcpy(root, self->bundle_root, 32);
    else if (root)
        pt_merkle_frontier_root(&self->frontier, root);
}

/* --- bundles --------------------------------------------------------------------------- */


int pt_audit_envelope_header(const uint8_t *env, size_t len, uint8_t **header, size_t *header_len,
                             uint8_t **sig, size_t *sig_len)
{
    if (!env || !header || !header_len || !sig || !sig_len)
        return -1;
    *header = *sig = NULL;
    Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, len, env);
    if (!e)
        return -1;
    *header = malloc(e->header.len ? e->header.len : 1);
    *sig = malloc(e->header_signature.len ? e->header_signature.len : 1);
    if (!*header || !*sig) {
        free(*header);
        free(*sig);
        *header = *sig = NULL;
        puente__v1__envelope__free_unpacked(e, NULL);
        return -1;
    }
    if (e->header.len)
        memcpy(*header, e->header.data, e->header.len);
    if (e->header_signature.len)
        memcpy(*sig, e->header_signature.data, e->header_signature.len);
    *header_len = e->header.len;
    *sig_len = e->header_signature.len;
    puente__v1__envelope__free_unpacked(e, NULL);
    return 0;
}

static int s_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;   /* upper case is not what export writes: refuse it too */
}

/* Decodes a lower-case hex JSON string. want: exact byte count, or SIZE_MAX for
   any. Returns a malloc'd buffer (caller frees) or NULL. */
static uint8_t *s_unhex(const json_t *s, size_t want, size_t *out_len)
{
    if (!json_is_string(s))
        return NULL;
    const char *t = json_string_value(s);
    size_t n = json_string_length(s);
    if (n % 2 || (want != SIZE_MAX && n != 2 * want))
        return NULL;
    uint8_t *out = malloc(n / 2 ? n / 2 : 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = s_nibble(t[2 * i]), lo = s_nibble(t[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (out_len)
        *out_len = n / 2;
    return out;
}

static int s_get_int(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static const char *s_get_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)
               ? json_string_value(v)
               : NULL;
}

typedef struct {
    uint8_t id[16];
    uint8_t sha[32];
    int valid;
} s_bundle_msg_t;

int pt_audit_bundle_verify(pt_audit_verifier_t *v, const char *json, size_t len)
{
    if (!v || (!json && len))
        return -1;
    json_error_t jerr;
    json_t *doc = NULL;
    s_bundle_msg_t *msgs = NULL;
    size_t n_msgs = 0;
    uint8_t *tmp = NULL;
    uint8_t root[32];
    int64_t tree_size = -1;
    if (len > PT_AUDIT_BUNDLE_MAX_BYTES) {
        s_find(v, "bundle", "", NULL, 0, "bundle larger than %u bytes", PT_AUDIT_BUNDLE_MAX_BYTES);
        return 0;
    }
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        s_find(v, "bundle", "", NULL, 0, "not a JSON object: %.120s", doc ? "" : jerr.text);
        goto done;
    }
    const char *format = s_get_str(doc, "format");
    const char *token = s_get_str(doc, "case_token");
    if (!format || strcmp(format, PT_AUDIT_BUNDLE_FORMAT) != 0 || !token || !token[0] ||
        strlen(token) >= sizeof v->kept[0].case_token) {
        s_find(v, "bundle", "", NULL, 0, "not a %s bundle (format or case_token)",
               PT_AUDIT_BUNDLE_FORMAT);
        goto done;
    }
    /* The broker's key: the auditor's own copy (pinned) is the anchor; the key the
       bundle carries is only compared with it, never trusted. */
    if (!v->pinned) {
        s_find(v, "bundle", "broker_sign_public", token, 0,
               "unanchored: pass --broker-key (the bundle's own key proves nothing)");
        goto done;
    }
    tmp = s_unhex(json_object_get(doc, "broker_sign_public"), 32, NULL);
    if (!tmp) {
        s_find(v, "bundle", "broker_sign_public", token, 0, "missing or not 32 bytes of hex");
        goto done;
    }
    uint8_t pinned[32];
    pt_sign_key_public(v->pinned, pinned);
    if (memcmp(pinned, tmp, 32) != 0)
        s_find(v, "bundle", "broker_sign_public", token, 0, "not the broker's key you gave");
    free(tmp);
    tmp = NULL;
    /* The checkpoint (version 2 with seq and prev_hash; version 1 without). */
    const json_t *cp = json_object_get(doc, "checkpoint");
    int64_t cp_at = 0, cp_seq = 0;
    uint8_t *cp_root = cp ? s_unhex(json_object_get(cp, "root"), 32, NULL) : NULL;
    uint8_t *cp_sig = cp ? s_unhex(json_object_get(cp, "signature"), 64, NULL) : NULL;
    uint8_t *cp_prev = cp ? s_unhex(json_object_get(cp, "prev_hash"), 32, NULL) : NULL;
    int has_seq = cp && json_object_get(cp, "seq") != NULL;
    if (!json_is_object(cp) || s_get_int(cp, "tree_size", &tree_size) || tree_size < 0 ||
        s_get_int(cp, "at_ms", &cp_at) || !cp_root || !cp_sig ||
        (has_seq && (s_get_int(cp, "seq", &cp_seq) || cp_seq < 1 || !cp_prev))) {
        s_find(v, "bundle", "checkpoint", token, 0, "checkpoint missing or malformed");
        free(cp_root);
        free(cp_sig);
        free(cp_prev);
        tree_size = -1;
        goto done;
    }
    memcpy(root, cp_root, 32);
    memcpy(v->bundle_root, cp_root, 32);
    v->bundle_root_set = 1;
    pt_audit_checkpoint_t signed_cp = {.seq = (uint64_t)cp_seq, .tree_size = (uint64_t)tree_size,
                                       .at_ms = cp_at};
    memcpy(signed_cp.root, cp_root, 32);
    if (cp_prev)
        memcpy(signed_cp.prev_hash, cp_prev, 32);
    if (pt_audit_checkpoint2_verify(v->pinned, &signed_cp, cp_sig, 64) != 0)
        s_find(v, "bundle", "checkpoint", token, 0,
               "checkpoint signature does not verify with the broker's key");
    free(cp_root);
    free(cp_sig);
    free(cp_prev);
    v->n_checkpoints = 1;
    /* The messages: header digest and signature. */
    const json_t *messages = json_object_get(doc, "messages");
    if (!json_is_array(messages)) {
        s_find(v, "bundle", "messages", token, 0, "messages missing");
        goto done;
    }
    msgs = calloc(json_array_size(messages) + 1, sizeof *msgs);
    if (!msgs)
        goto done;
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m) {
        char row[40];
        snprintf(row, sizeof row, "messages[%zu]", i);
        size_t header_len = 0, sig_len = 0;
        uint8_t *id = json_is_object(m) ? s_unhex(json_object_get(m, "message_id"), 16, NULL) : NULL;
        uint8_t *header = json_is_object(m) ? s_unhex(json_object_get(m, "header"), SIZE_MAX, &header_len) : NULL;
        uint8_t *sig = json_is_object(m) ? s_unhex(json_object_get(m, "header_signature"), SIZE_MAX, &sig_len) : NULL;
        uint8_t *pub = json_is_object(m) ? s_unhex(json_object_get(m, "sender_sign_public"), 32, NULL) : NULL;
        const char *sender = json_is_object(m) ? s_get_str(m, "sender") : NULL;
        Puente__V1__Header *h = header ? puente__v1__header__unpack(NULL, header_len, header) : NULL;
        s_bundle_msg_t *bm = &msgs[n_msgs++];
        v->n_messages++;
        if (!id || !header || !sig || !pub || !sender || !h) {
            s_find(v, "bundle", row, token, 0, "message entry missing a field or not decodable");
        } else {
            memcpy(bm->id, id, 16);
            pt_sha256(header, header_len, bm->sha);
            uint8_t key_id[32];
            pt_sha256(pub, 32, key_id);
            pt_sign_key_t *k = pt_sign_key_from_public(pub, 32);
            if (h->message_id.len != 16 || memcmp(h->message_id.data, id, 16) != 0 ||
                strcmp(h->sender, sender) != 0 || strcmp(h->case_token, token) != 0)
                s_find(v, "bundle", row, token, 0,
                       "message id, sender or case token differ from the signed header");
            else if (h->sender_key_id.len != 32 || memcmp(h->sender_key_id.data, key_id, 32) != 0)
                s_find(v, "bundle", row, token, 0, "sender key is not the one the header names");
            else if (!k || pt_verify(k, PT_DOMAIN_HEADER, header, header_len, sig, sig_len) != 0)
                s_find(v, "bundle", row, token, 0, "header signature does not verify");
            else
                bm->valid = 1;
            pt_sign_key_destroy(&k);
        }
        if (h)
            puente__v1__header__free_unpacked(h, NULL);
        free(id);
        free(header);
        free(sig);
        free(pub);
    }
    /* The events: the whole chain, each in the checkpoint's tree. */
    const json_t *events = json_object_get(doc, "events");
    if (!json_is_array(events) || json_array_size(events) == 0) {
        s_find(v, "bundle", "events", token, 0, "events missing");
        goto done;
    }
    uint8_t prev[32];
    memset(prev, 0, sizeof prev);
    const json_t *e;
    json_array_foreach(events, i, e) {
        char row[40];
        snprintf(row, sizeof row, "events[%zu]", i);
        int64_t event_id = 0, seq = 0, at = 0, leaf_index = -1;
        size_t detail_len = 0;
        uint8_t *mid = NULL, *detail = NULL, *prev_hash = NULL, *hash = NULL;
        const json_t *mid_json = json_is_object(e) ? json_object_get(e, "message_id") : NULL;
        int bad = !json_is_object(e) || s_get_int(e, "event_id", &event_id) ||
                  s_get_int(e, "seq", &seq) || s_get_int(e, "at_ms", &at) ||
                  s_get_int(e, "leaf_index", &leaf_index) || !s_get_str(e, "kind") ||
                  !s_get_str(e, "actor") || !s_get_str(e, "counterparty") ||
                  !s_get_str(e, "message_type") || !mid_json;
        if (!bad) {
            mid = json_is_null(mid_json) ? NULL : s_unhex(mid_json, 16, NULL);
            detail = s_unhex(json_object_get(e, "detail"), SIZE_MAX, &detail_len);
            prev_hash = s_unhex(json_object_get(e, "prev_hash"), 32, NULL);
            hash = s_unhex(json_object_get(e, "hash"), 32, NULL);
            bad = (!json_is_null(mid_json) && !mid) || !detail || !prev_hash || !hash;
        }
        v->n_events++;
        if (bad) {
            s_find(v, "bundle", row, token, (uint64_t)(seq > 0 ? seq : 0), "event entry missing a field");
        } else {
            pt_trail_event_t ev = {.seq = (uint64_t)seq,
                                   .at_ms = at,
                                   .kind = s_get_str(e, "kind"),
                                   .case_token = token,
                                   .actor = s_get_str(e, "actor"),
                                   .counterparty = s_get_str(e, "counterparty"),
                                   .message_type = s_get_str(e, "message_type"),
                                   .message_id = mid,
                                   .detail = detail,
                                   .detail_len = detail_len};
            uint8_t computed[32];
            if (seq != (int64_t)i + 1)
                s_find(v, "bundle", row, token, (uint64_t)seq, "seq is not %zu: the chain is incomplete", i + 1);
            else if (memcmp(prev_hash, prev, 32) != 0)
                s_find(v, "bundle", row, token, (uint64_t)seq, "prev_hash is not the previous event's hash");
            if (pt_trail_hash(prev_hash, &ev, computed) != 0 || memcmp(computed, hash, 32) != 0)
                s_find(v, "bundle", row, token, (uint64_t)seq, "hash does not match the event's contents");
            memcpy(prev, hash, 32);
            if (mid) {
                const s_bundle_msg_t *found = NULL;
                for (size_t k = 0; k < n_msgs && !found; k++)
                    if (msgs[k].valid && memcmp(msgs[k].id, mid, 16) == 0)
                        found = &msgs[k];
                if (!found)
                    s_find(v, "bundle", row, token, (uint64_t)seq, "its message is not in the bundle (or does not verify)");
                else if (detail_len != 32 || memcmp(detail, found->sha, 32) != 0)
                    s_find(v, "bundle", row, token, (uint64_t)seq, "detail is not the message's header digest");
            }
            /* Inclusion in the checkpoint's tree. */
            const json_t *path = json_object_get(e, "inclusion");
            size_t n_path = json_is_array(path) ? json_array_size(path) : 0;
            pt_merkle_hash_t proof[PT_MERKLE_MAX_PROOF];
            int proof_ok = json_is_array(path) && n_path <= PT_MERKLE_MAX_PROOF;
            for (size_t k = 0; proof_ok && k < n_path; k++) {
                uint8_t *node = s_unhex(json_array_get(path, k), 32, NULL);
                proof_ok = node != NULL;
                if (node)
                    memcpy(proof[k], node, 32);
                free(node);
            }
            pt_merkle_hash_t leaf;
            pt_audit_leaf_hash(hash, event_id, leaf);
            if (!proof_ok || leaf_index < 0 || leaf_index >= tree_size ||
                pt_merkle_inclusion_verify((uint64_t)leaf_index, (uint64_t)tree_size, leaf, proof,
                                           n_path, root) != 0)
                s_find(v, "bundle", row, token, (uint64_t)seq,
                       "not proven in the checkpoint's tree (leaf %lld)", (long long)leaf_index);
            else
                v->leaves++;
        }
        free(mid);
        free(detail);
        free(prev_hash);
        free(hash);
    }
done:
    free(msgs);
    json_decref(doc);
    v->phase = S_PHASE_DONE;
    return 0;
}

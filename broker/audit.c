/*  audit — see audit.h. */
#include "audit.h"

#include <inttypes.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "log.h"
#include "policy.h"
#include "pt_audit.h"
#include "pt_audit_query.h"
#include "pt_keys.h"
#include "pt_merkle.h"

#define S_TICK_MS 200
#define S_LOCK_TRY_MS 1000
#define S_QUERY_ROWS_MAX 10000
#define S_NONCES_MAX 4096          /* query nonces remembered for the replay window */
#define S_PROOF_LEAVES_MAX ((uint64_t)1 << 24)
#define REJ(code) PUENTE__V1__REJECT_CODE__##code

struct _pt_audit_t {
    pt_store_t *store;
    const pt_sign_key_t *key;
    const pt_directory_t *directory;
    uint64_t every_events;
    int64_t every_ms;
    uint64_t last_size;          /* of the last checkpoint */
    int64_t last_ms;
    uint64_t last_seq;           /* 0: none yet, or a version 1 one (chain starts at 1) */
    uint8_t last_hash[32];       /* its checkpoint hash (pt_audit.h), prev_hash of the next */
    int64_t last_tick_ms;
    int64_t last_forced_ms; /* a CheckpointRequest with sign_now: at most one per S_TICK_MS */
    int loaded;
    pt_store_session_t *session;   /* signer lock (issue 9), or NULL */
    int signer;                    /* held the lock at the last tick */
    int64_t last_lock_try_ms;
    /* Nonces of signed queries seen in the last PT_AUDIT_QUERY_WINDOW_MS (a ring). */
    struct {
        uint8_t nonce[PT_AUDIT_QUERY_NONCE_BYTES];
        int64_t seen_ms;
    } nonces[S_NONCES_MAX];
    size_t next_nonce;
};

pt_audit_t *pt_audit_new(pt_store_t *store, const pt_sign_key_t *broker_key,
                         const pt_directory_t *directory)
{
    pt_audit_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->key = broker_key;
    self->directory = directory;
    self->every_events = PT_AUDIT_DEFAULT_CHECKPOINT_EVENTS;
    self->every_ms = (int64_t)PT_AUDIT_DEFAULT_CHECKPOINT_SECONDS * 1000;
    return self;
}

void pt_audit_set_cadence(pt_audit_t *self, uint64_t events, int64_t seconds)
{
    if (!self)
        return;
    if (events > 0)
        self->every_events = events;
    if (seconds > 0)
        self->every_ms = seconds * 1000;
}

void pt_audit_set_session(pt_audit_t *self, pt_store_session_t *session)
{
    if (self)
        self->session = session;
}

/* 1 when this broker may sign now: it holds the signer lock, or took it (tried
   at most once a second unless force). */
static int s_may_sign(pt_audit_t *self, int64_t now_ms, int force)
{
    if (!self->session)
        return 1;
    if (!self->signer && !force && now_ms - self->last_lock_try_ms < S_LOCK_TRY_MS)
        return 0;
    self->last_lock_try_ms = now_ms;
    int held = pt_store_session_signer(self->session) == 1;
    if (held && !self->signer) {
        pt_log(PT_LOG_INFO, "audit", NULL, NULL, "this broker signs the checkpoints now");
        self->loaded = 0;   /* another broker may have signed since we last looked */
    } else if (!held && self->signer) {
        pt_log(PT_LOG_WARN, "audit", NULL, NULL, "lost the checkpoint signer lock: %s",
               pt_store_session_error(self->session));
    }
    self->signer = held;
    return held;
}

void pt_audit_destroy(pt_audit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void pt_audit_answer_clear(pt_audit_answer_t *out)
{
    if (!out)
        return;
    free(out->frame);
    memset(out, 0, sizeof *out);
}

static void s_refuse(pt_audit_answer_t *out, Puente__V1__RejectCode code, const char *reason)
{
    out->frame = NULL;
    out->len = 0;
    out->code = code;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
}

static void s_pack(pt_audit_answer_t *out, const Puente__V1__BrokerFrame *frame)
{
    size_t len = puente__v1__broker_frame__get_packed_size(frame);
    out->frame = malloc(len ? len : 1);
    if (!out->frame) {
        s_refuse(out, REJ(REJECT_RETRY_LATER), "broker out of memory");
        return;
    }
    puente__v1__broker_frame__pack(frame, out->frame);
    out->len = len;
}

/* --- checkpoints --------------------------------------------------------------------- */

void pt_audit_tick(pt_audit_t *self, int64_t now_ms, int force)
{
    if (!self || !self->key)
        return;
    if (!force && now_ms - self->last_tick_ms < S_TICK_MS)
        return;
    self->last_tick_ms = now_ms;
    if (!s_may_sign(self, now_ms, force))
        return;
    if (!self->loaded) {
        pt_store_checkpoint_t last;
        pt_store_result_t rc = pt_store_checkpoint_get(self->store, 0, &last);
        if (rc == PT_STORE_OK) {
            self->last_size = last.tree_size;
            self->last_ms = last.at_ms;
            self->last_seq = last.seq;
            memset(self->last_hash, 0, 32);
            if (last.seq > 0) {
                pt_audit_checkpoint_t signed_cp = {.seq = last.seq, .tree_size = last.tree_size,
                                                   .at_ms = last.at_ms};
                memcpy(signed_cp.root, last.root, 32);
                memcpy(signed_cp.prev_hash, last.prev_hash, 32);
                pt_audit_checkpoint2_hash(&signed_cp, last.signature, self->last_hash);
            }
        } else if (rc != PT_STORE_NOT_FOUND) {
            return;
        }
        self->loaded = 1;
    }
    uint64_t size;
    uint8_t root[32];
    if (pt_store_audit_root(self->store, &size, root) != PT_STORE_OK)
        return;
    if (size <= self->last_size)
        return;
    if (!force && size - self->last_size < self->every_events && now_ms - self->last_ms < self->every_ms)
        return;
    /* Version 2 (pt_audit.h): the next seq, linked to the previous checkpoint. */
    pt_audit_checkpoint_t signed_cp = {.seq = self->last_seq + 1, .tree_size = size,
                                       .at_ms = now_ms};
    memcpy(signed_cp.root, root, 32);
    memcpy(signed_cp.prev_hash, self->last_hash, 32);
    pt_store_checkpoint_t cp;
    memset(&cp, 0, sizeof cp);
    cp.tree_size = size;
    memcpy(cp.root, root, 32);
    cp.at_ms = now_ms;
    cp.seq = signed_cp.seq;
    memcpy(cp.prev_hash, signed_cp.prev_hash, 32);
    pt_sign_key_public(self->key, cp.signer);
    if (pt_audit_checkpoint2_sign(self->key, &signed_cp, cp.signature) != 0) {
        pt_log(PT_LOG_ERROR, "audit", NULL, NULL, "cannot sign a checkpoint");
        return;
    }
    if (pt_store_checkpoint_put(self->store, &cp) != PT_STORE_OK) {
        pt_log(PT_LOG_WARN, "audit", NULL, NULL, "cannot store the checkpoint of %" PRIu64 ": %s",
               size, pt_store_last_error(self->store));
        return;
    }
    /* Another broker may have stored the same seq or size first (ON CONFLICT DO
       NOTHING): reload the latest from the database on the next tick. */
    pt_store_checkpoint_t stored;
    if (pt_store_checkpoint_get(self->store, 0, &stored) != PT_STORE_OK ||
        stored.seq != cp.seq || memcmp(stored.signature, cp.signature, 64) != 0) {
        self->loaded = 0;
        return;
    }
    self->last_size = size;
    self->last_ms = now_ms;
    self->last_seq = signed_cp.seq;
    pt_audit_checkpoint2_hash(&signed_cp, cp.signature, self->last_hash);
    pt_log(PT_LOG_DEBUG, "audit", NULL, NULL, "checkpoint of %" PRIu64 " leaves", size);
}

static void s_checkpoint_msg(const pt_store_checkpoint_t *cp, Puente__V1__Checkpoint *msg)
{
    puente__v1__checkpoint__init(msg);
    msg->tree_size = cp->tree_size;
    msg->root = (ProtobufCBinaryData){32, (uint8_t *)cp->root};
    msg->at_ms = cp->at_ms;
    msg->signature = (ProtobufCBinaryData){64, (uint8_t *)cp->signature};
    msg->seq = cp->seq;
    if (cp->seq > 0)
        msg->prev_hash = (ProtobufCBinaryData){32, (uint8_t *)cp->prev_hash};
}

void pt_audit_checkpoint_request(pt_audit_t *self, const Puente__V1__CheckpointRequest *request,
                                 pt_audit_answer_t *out)
{
    memset(out, 0, sizeof *out);
    pt_store_checkpoint_t cp;
    uint64_t which = request->tree_size;
    if (which >= PT_STORE_CHECKPOINT_COVERING) {
        s_refuse(out, REJ(REJECT_INVALID_FIELD), "tree_size out of range");
        return;
    }
    if (request->covering_size > 0) {
        if (request->covering_size >= PT_STORE_CHECKPOINT_COVERING) {
            s_refuse(out, REJ(REJECT_INVALID_FIELD), "covering_size out of range");
            return;
        }
        which = PT_STORE_CHECKPOINT_COVERING | request->covering_size;
    }
    pt_store_result_t rc = pt_store_checkpoint_get(self->store, which, &cp);
    int64_t now = pt_now_ms();
    if (rc == PT_STORE_NOT_FOUND && request->covering_size > 0 && request->sign_now &&
        now - self->last_forced_ms >= S_TICK_MS) {
        /* The log may already hold covering_size leaves: sign it now (only a log
           that grew past the latest checkpoint is signed, so at most one
           checkpoint per event whoever asks; and at most one forced attempt per
           S_TICK_MS, so requests cannot keep the loop at the signer lock). */
        self->last_forced_ms = now;
        pt_audit_tick(self, now, 1);
        rc = pt_store_checkpoint_get(self->store, which, &cp);
    }
    if (rc == PT_STORE_NOT_FOUND) {
        s_refuse(out, REJ(REJECT_NOT_FOUND),
                 request->covering_size > 0
                     ? "no checkpoint covers that size yet (the log is shorter, or another "
                       "broker signs: ask again)"
                     : "no checkpoint of that size");
        return;
    }
    if (rc != PT_STORE_OK) {
        s_refuse(out, REJ(REJECT_RETRY_LATER), "storage unavailable");
        return;
    }
    Puente__V1__Checkpoint msg;
    s_checkpoint_msg(&cp, &msg);
    Puente__V1__CheckpointReply reply = PUENTE__V1__CHECKPOINT_REPLY__INIT;
    reply.request_id = request->request_id;
    reply.checkpoint = &msg;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_CHECKPOINT;
    frame.checkpoint = &reply;
    s_pack(out, &frame);
}

/* --- proofs ---------------------------------------------------------------------------- */

void pt_audit_proof_request(pt_audit_t *self, const Puente__V1__ProofRequest *request,
                            pt_audit_answer_t *out)
{
    memset(out, 0, sizeof *out);
    pt_store_checkpoint_t cp, old;
    uint8_t *leaves = NULL;
    pt_merkle_hash_t inclusion[PT_MERKLE_MAX_PROOF], consistency[PT_MERKLE_MAX_PROOF];
    ProtobufCBinaryData inc_bin[PT_MERKLE_MAX_PROOF], con_bin[PT_MERKLE_MAX_PROOF];
    size_t n_inc = 0, n_con = 0;
    if (request->tree_size >= PT_STORE_CHECKPOINT_COVERING ||
        request->old_size >= PT_STORE_CHECKPOINT_COVERING) {
        s_refuse(out, REJ(REJECT_INVALID_FIELD), "tree_size out of range");
        return;
    }
    pt_store_result_t rc = pt_store_checkpoint_get(self->store, request->tree_size, &cp);
    if (rc == PT_STORE_NOT_FOUND) {
        s_refuse(out, REJ(REJECT_NOT_FOUND), "no checkpoint of that size");
        return;
    }
    if (rc != PT_STORE_OK) {
        s_refuse(out, REJ(REJECT_RETRY_LATER), "storage unavailable");
        return;
    }
    if (cp.tree_size > S_PROOF_LEAVES_MAX) {
        s_refuse(out, REJ(REJECT_TOO_LARGE), "tree too large for a proof from this broker");
        return;
    }
    if (request->inclusion && request->leaf_index >= cp.tree_size) {
        s_refuse(out, REJ(REJECT_NOT_FOUND), "leaf not in that checkpoint (ask a later one)");
        return;
    }
    if (request->old_size > 0) {
        if (request->old_size > cp.tree_size) {
            s_refuse(out, REJ(REJECT_INVALID_FIELD), "old_size is larger than tree_size");
            return;
        }
        rc = pt_store_checkpoint_get(self->store, request->old_size, &old);
        if (rc != PT_STORE_OK) {
            s_refuse(out, rc == PT_STORE_NOT_FOUND ? REJ(REJECT_NOT_FOUND) : REJ(REJECT_RETRY_LATER),
                     "no checkpoint of old_size");
            return;
        }
    }
    if (pt_store_audit_leaves(self->store, cp.tree_size, &leaves) != PT_STORE_OK) {
        s_refuse(out, REJ(REJECT_RETRY_LATER), "storage unavailable");
        return;
    }
    const pt_merkle_hash_t *hashes = (const pt_merkle_hash_t *)leaves;
    if (request->inclusion &&
        pt_merkle_inclusion_proof(hashes, cp.tree_size, request->leaf_index, inclusion, &n_inc) != 0) {
        free(leaves);
        s_refuse(out, REJ(REJECT_INVALID_FIELD), "cannot build the inclusion proof");
        return;
    }
    if (request->old_size > 0 &&
        pt_merkle_consistency_proof(hashes, cp.tree_size, request->old_size, consistency, &n_con) != 0) {
        free(leaves);
        s_refuse(out, REJ(REJECT_INVALID_FIELD), "cannot build the consistency proof");
        return;
    }
    for (size_t i = 0; i < n_inc; i++)
        inc_bin[i] = (ProtobufCBinaryData){32, inclusion[i]};
    for (size_t i = 0; i < n_con; i++)
        con_bin[i] = (ProtobufCBinaryData){32, consistency[i]};
    Puente__V1__Checkpoint cp_msg, old_msg;
    s_checkpoint_msg(&cp, &cp_msg);
    Puente__V1__ProofReply reply = PUENTE__V1__PROOF_REPLY__INIT;
    reply.request_id = request->request_id;
    reply.checkpoint = &cp_msg;
    int64_t event_id = 0;
    uint8_t event_hash[32];
    if (request->inclusion &&
        pt_store_leaf_event(self->store, request->leaf_index, &event_id, event_hash) == PT_STORE_OK) {
        reply.event_id = event_id;
        reply.event_hash = (ProtobufCBinaryData){32, event_hash};
    }
    if (request->inclusion) {
        reply.leaf_index = request->leaf_index;
        reply.leaf_hash = (ProtobufCBinaryData){32, leaves + request->leaf_index * 32};
        reply.inclusion = inc_bin;
        reply.n_inclusion = n_inc;
    }
    if (request->old_size > 0) {
        s_checkpoint_msg(&old, &old_msg);
        reply.old_checkpoint = &old_msg;
        reply.consistency = con_bin;
        reply.n_consistency = n_con;
    }
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_PROOF;
    frame.proof = &reply;
    s_pack(out, &frame);
    free(leaves);
}

/* --- auditor queries ------------------------------------------------------------------ */

typedef struct {
    char **cells;                /* n_rows x n_cols, strdup'd */
    size_t n_rows, cap_rows, n_cols;
    size_t limit;                /* rows wanted in this page (0 = no paging) */
    int truncated;               /* a row past limit was seen */
    char next_after[64];         /* cursor of the last row kept */
    int failed;
} s_table_t;

static void s_table_add(s_table_t *t, const char *const *cells)
{
    if (t->failed)
        return;
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
        char **grown = realloc(t->cells, cap * t->n_cols * sizeof *grown);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->cells = grown;
        t->cap_rows = cap;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        t->cells[t->n_rows * t->n_cols + c] = strdup(cells[c] ? cells[c] : "");
        if (!t->cells[t->n_rows * t->n_cols + c])
            t->failed = 1;
    }
    t->n_rows++;
}

/* Adds a row of a paged answer: past t->limit only marks the table truncated;
   otherwise the row is kept and cursor becomes next_after. */
static void s_table_page_add(s_table_t *t, const char *const *cells, const char *cursor)
{
    if (t->limit && t->n_rows >= t->limit) {
        t->truncated = 1;
        return;
    }
    s_table_add(t, cells);
    snprintf(t->next_after, sizeof t->next_after, "%s", cursor);
}

static void s_table_free(s_table_t *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* Packs columns and the table into an AuditReply frame. */
static void s_table_answer(const s_table_t *t, const char *const *columns, uint64_t request_id,
                           pt_audit_answer_t *out)
{
    Puente__V1__AuditRow *rows = calloc(t->n_rows ? t->n_rows : 1, sizeof *rows);
    Puente__V1__AuditRow **row_ptrs = calloc(t->n_rows ? t->n_rows : 1, sizeof *row_ptrs);
    if (!rows || !row_ptrs || t->failed) {
        free(rows);
        free(row_ptrs);
        s_refuse(out, REJ(REJECT_RETRY_LATER), "broker out of memory");
        return;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        puente__v1__audit_row__init(&rows[r]);
        rows[r].cells = &t->cells[r * t->n_cols];
        rows[r].n_cells = t->n_cols;
        row_ptrs[r] = &rows[r];
    }
    Puente__V1__AuditReply reply = PUENTE__V1__AUDIT_REPLY__INIT;
    reply.request_id = request_id;
    reply.columns = (char **)columns;
    reply.n_columns = t->n_cols;
    reply.rows = row_ptrs;
    reply.n_rows = t->n_rows;
    reply.truncated = t->truncated;
    reply.next_after = t->truncated ? (char *)t->next_after : "";
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_AUDIT;
    frame.audit = &reply;
    s_pack(out, &frame);
    free(rows);
    free(row_ptrs);
}

typedef struct {
    const char *scope;           /* NULL: operator, everything */
    int in_scope;
    int any;
} s_parties_t;

static void s_party(const char *org, void *arg)
{
    s_parties_t *p = arg;
    p->any = 1;
    if (!p->scope || pt_directory_in_scope(p->scope, org))
        p->in_scope = 1;
}

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

typedef struct {
    s_table_t *t;
    uint64_t after_seq;
} s_trail_page_t;

static void s_trail_row(const pt_store_event_t *ev, void *arg)
{
    s_trail_page_t *page = arg;
    if (ev->event.seq <= page->after_seq)
        return;
    char seq[24], at[24], hash[65];
    snprintf(seq, sizeof seq, "%" PRIu64, ev->event.seq);
    snprintf(at, sizeof at, "%" PRId64, ev->event.at_ms);
    s_hex(ev->hash, 32, hash);
    const char *cells[7] = {seq, at, ev->event.kind, ev->event.actor, ev->event.counterparty,
                            ev->event.message_type, hash};
    s_table_page_add(page->t, cells, seq);
}

typedef struct {
    s_table_t *t;
    const char *scope;
    int mode;                    /* 0 activity (cursor at_ms:event_id), 1 items (cursor
                                    updated_ms:correlation_id), 2 corridors (scope filter) */
} s_rows_t;

static int s_country_in_scope(const char *scope, const char *cc)
{
    char probe[8];
    snprintf(probe, sizeof probe, "%.2s-", cc);
    return pt_directory_in_scope(scope, probe) && strlen(cc) == 2;
}

static void s_row(const char *const *cells, size_t n, void *arg)
{
    s_rows_t *r = arg;
    char cursor[64];
    if (r->mode == 2) {
        if (n < r->t->n_cols)
            return;
        if (r->scope && !s_country_in_scope(r->scope, cells[0]) &&
            !s_country_in_scope(r->scope, cells[1]))
            return;
        s_table_add(r->t, cells);
        return;
    }
    /* items: the SQL adds the cursor's second part after the table's columns. */
    if (n < r->t->n_cols + (r->mode == 1))
        return;
    if (r->mode == 0)
        snprintf(cursor, sizeof cursor, "%s:%s", cells[1], cells[0]);
    else
        snprintf(cursor, sizeof cursor, "%s:%s", cells[5], cells[7]);
    s_table_page_add(r->t, cells, cursor);
}

/* Parses a cursor "N:REST" (REST at most rest_cap-1 characters, digits and '-'
   only); "" = from the start (*n = INT64_MIN, rest = fallback). 0 or -1. */
static int s_cursor_parse(const char *after, int64_t *n, char *rest, size_t rest_cap,
                          const char *fallback)
{
    *n = INT64_MIN;
    snprintf(rest, rest_cap, "%s", fallback);
    if (!after || !after[0])
        return 0;
    char *end = NULL;
    long long v = strtoll(after, &end, 10);
    if (!end || end == after || *end != ':' || strlen(end + 1) == 0 ||
        strlen(end + 1) >= rest_cap)
        return -1;
    for (const char *c = end + 1; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '-'))
            return -1;
    *n = v;
    snprintf(rest, rest_cap, "%s", end + 1);
    return 0;
}

/* 1 if s is a lower-case UUID in its text form (8-4-4-4-12), or (uuid = 0) only digits. */
static int s_cursor_rest_ok(const char *s, int uuid)
{
    size_t n = strlen(s);
    if (uuid && n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = uuid && (i == 8 || i == 13 || i == 18 || i == 23);
        int ok = dash ? s[i] == '-'
                      : (s[i] >= '0' && s[i] <= '9') || (uuid && s[i] >= 'a' && s[i] <= 'f');
        if (!ok)
            return 0;
    }
    return n > 0;
}

/* Rejection reasons per corridor: "cc|cc|kind" -> "reason:count,..." */
typedef struct {
    char key[48];
    char reasons[256];
} s_reason_t;

typedef struct {
    s_reason_t *items;
    size_t n, cap;
} s_reasons_t;

static void s_reject_row(const char *sender, const char *recipient, const char *kind,
                         const uint8_t *envelope, size_t len, void *arg)
{
    s_reasons_t *rs = arg;
    Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, len, envelope);
    Puente__V1__Header *h = env ? puente__v1__header__unpack(NULL, env->header.len, env->header.data)
                                : NULL;
    const char *reason = h && h->reason_code && h->reason_code[0] ? h->reason_code : "unspecified";
    /* The reject goes from the counterparty back to the initiator: the corridor is
       the initiator's (recipient's) country to the rejecter's. */
    char key[48];
    snprintf(key, sizeof key, "%.2s|%.2s|%s", recipient, sender, kind);
    s_reason_t *slot = NULL;
    for (size_t i = 0; i < rs->n && !slot; i++)
        if (strcmp(rs->items[i].key, key) == 0)
            slot = &rs->items[i];
    if (!slot && rs->n < rs->cap) {
        slot = &rs->items[rs->n++];
        memset(slot, 0, sizeof *slot);
        snprintf(slot->key, sizeof slot->key, "%s", key);
    }
    if (slot) {
        /* Counts are kept inline: "reason:n" entries, updated in place. */
        char updated[256] = "";
        int found = 0;
        char copy[256];
        snprintf(copy, sizeof copy, "%s", slot->reasons);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char *colon = strrchr(tok, ':');
            if (!colon)
                continue;
            *colon = '\0';
            long count = strtol(colon + 1, NULL, 10);
            if (strcmp(tok, reason) == 0) {
                count++;
                found = 1;
            }
            size_t used = strlen(updated);
            snprintf(updated + used, sizeof updated - used, "%s%s:%ld", used ? "," : "", tok, count);
        }
        if (!found) {
            size_t used = strlen(updated);
            snprintf(updated + used, sizeof updated - used, "%s%.40s:1", used ? "," : "", reason);
        }
        memcpy(slot->reasons, updated, sizeof updated);
    }
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    if (env)
        puente__v1__envelope__free_unpacked(env, NULL);
}

/* "reason:count,..." -> "reason:count:share,..." with share = count / opened
   (4 decimals), the corridor's lifecycles opened in the range. */
static void s_reason_shares(const char *counts, const char *opened_text, char *out, size_t cap)
{
    long opened = strtol(opened_text, NULL, 10);
    char copy[256];
    out[0] = '\0';
    snprintf(copy, sizeof copy, "%s", counts);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon)
            continue;
        *colon = '\0';
        long count = strtol(colon + 1, NULL, 10);
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s:%ld:%.4f", used ? "," : "", tok, count,
                 opened > 0 ? (double)count / (double)opened : 0.0);
    }
}

/* Outcome codes of a logged query (the detail's last 4 bytes): 0 answered, else
   the reject code it was refused with. */

/* Appends a query event on the chain named after the identity: kind, the
   target (a case token, a pseudonym, or an organisation id; "" when the query
   is malformed or from an identity that is not an auditor) and a detail of
   SHA-256(query fields) || SHA-256(signature, zeros if unsigned) || be32(code).
   No personal data. PT_STORE_OK or the store's failure. */
static pt_store_result_t s_log_query(pt_audit_t *self, const char *identity,
                                     const Puente__V1__AuditQuery *q, const char *kind,
                                     const char *target, Puente__V1__RejectCode code)
{
    uint8_t detail[68];
    uint8_t bytes[PT_AUDIT_QUERY_SIGNED_MAX];
    char type[48];
    size_t len = pt_audit_query_signed_bytes(q, bytes, sizeof bytes);
    pt_sha256(bytes, len, detail);
    memset(detail + 32, 0, 32);
    if (q->signature.len)
        pt_sha256(q->signature.data, q->signature.len, detail + 32);
    for (int i = 0; i < 4; i++)
        detail[64 + i] = (uint8_t)((uint32_t)code >> (24 - 8 * i));
    static const char *const kinds[] = {"trail", "activity", "items", "corridors"};
    const char *qkind = "unknown";
    for (size_t i = 0; i < 4; i++)
        if (q->kind && strcmp(q->kind, kinds[i]) == 0)
            qkind = kinds[i];
    snprintf(type, sizeof type, "audit.%s", qkind);
    pt_trail_event_t ev = {.at_ms = pt_now_ms(),
                           .kind = kind,
                           .case_token = identity,
                           .actor = identity,
                           .counterparty = target,
                           .message_type = type,
                           .detail = detail,
                           .detail_len = sizeof detail};
    pt_store_result_t rc = pt_store_event_append(self->store, &ev);
    if (rc != PT_STORE_OK)
        pt_log(PT_LOG_WARN, "audit", NULL, NULL, "could not log the query of %s: %s", identity,
               pt_store_last_error(self->store));
    return rc;
}

/* Refuses the query and logs the refusal (a failure to log is logged, the
   refusal stands). */
static void s_refuse_logged(pt_audit_t *self, const char *identity, const Puente__V1__AuditQuery *q,
                            const char *kind, const char *target, pt_audit_answer_t *out,
                            Puente__V1__RejectCode code, const char *reason)
{
    s_log_query(self, identity, q, kind, target, code);
    s_refuse(out, code, reason);
}

/* Logs an answered query before anything is read: 0, or -1 with out refused
   REJECT_RETRY_LATER (an unlogged query is never answered). */
static int s_log_answered(pt_audit_t *self, const char *identity, const Puente__V1__AuditQuery *q,
                          const char *target, pt_audit_answer_t *out)
{
    if (s_log_query(self, identity, q, "audit_query", target, 0) == PT_STORE_OK)
        return 0;
    s_refuse(out, REJ(REJECT_RETRY_LATER), "could not log the query, so it is not answered; retry");
    return -1;
}

static int s_text_ok(const char *s, size_t max)
{
    return s && strlen(s) <= max;
}

/* Checks the auditor's signature, the time and the nonce (remembered when new).
   0, or a reject code with *why. */
static Puente__V1__RejectCode s_check_signed(pt_audit_t *self, const pt_directory_auditor_t *a,
                                             const Puente__V1__AuditQuery *q, int64_t now,
                                             const char **why)
{
    if (q->signature.len == 0) {
        *why = "audit queries must be signed by the auditor's key";
        return REJ(REJECT_BAD_QUERY_SIGNATURE);
    }
    pt_sign_key_t *key = pt_sign_key_from_public(a->sign_public, 32);
    int ok = key && pt_audit_query_verify(key, q) == 0;
    pt_sign_key_destroy(&key);
    if (!ok) {
        *why = "the query's signature does not verify with the auditor's key";
        return REJ(REJECT_BAD_QUERY_SIGNATURE);
    }
    if (q->signed_at_ms < now - PT_AUDIT_QUERY_WINDOW_MS ||
        q->signed_at_ms > now + PT_AUDIT_QUERY_WINDOW_MS) {
        *why = "signed_at_ms is more than 5 minutes from the broker's clock";
        return REJ(REJECT_STALE_QUERY);
    }
    for (size_t i = 0; i < S_NONCES_MAX; i++) {
        if (self->nonces[i].seen_ms >= now - PT_AUDIT_QUERY_WINDOW_MS &&
            memcmp(self->nonces[i].nonce, q->nonce.data, PT_AUDIT_QUERY_NONCE_BYTES) == 0) {
            *why = "this query was already answered (replayed nonce)";
            return REJ(REJECT_STALE_QUERY);
        }
    }
    /* A full ring forgets its oldest nonce; 4096 queries in 5 minutes is far above
       what auditors ask, and a replay is still a signed, logged, scoped query. */
    memcpy(self->nonces[self->next_nonce].nonce, q->nonce.data, PT_AUDIT_QUERY_NONCE_BYTES);
    self->nonces[self->next_nonce].seen_ms = now;
    self->next_nonce = (self->next_nonce + 1) % S_NONCES_MAX;
    return 0;
}

void pt_audit_query(pt_audit_t *self, const char *identity, const Puente__V1__AuditQuery *q,
                    pt_audit_answer_t *out)
{
    memset(out, 0, sizeof *out);
    const char *scope = NULL;
    int operator = strcmp(identity, PT_OPERATOR_ID) == 0;
    int64_t now = pt_now_ms();
    const pt_directory_auditor_t *auditor = NULL;
    if (!operator) {
        auditor = pt_directory_auditor(self->directory, identity);
        if (!auditor) {
            s_refuse_logged(self, identity, q, "audit_query_refused", "", out,
                            REJ(REJECT_NOT_PERMITTED), "audit queries need an auditor identity");
            return;
        }
        scope = auditor->scope;
    }
    if (!s_text_ok(q->kind, 32) || !s_text_ok(q->case_token, 128) || !s_text_ok(q->org_id, 32) ||
        !s_text_ok(q->lifecycle_kind, 31) || !s_text_ok(q->state, 31) || !s_text_ok(q->after, 63) ||
        q->nonce.len > 64 || q->signature.len > 128) {
        s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                        REJ(REJECT_INVALID_FIELD), "audit query field too long");
        return;
    }
    if (auditor) {
        const char *why = "";
        Puente__V1__RejectCode code = s_check_signed(self, auditor, q, now, &why);
        if (code) {
            s_refuse_logged(self, identity, q, "audit_query_refused", "", out, code, why);
            return;
        }
    }
    size_t limit = q->limit && q->limit < S_QUERY_ROWS_MAX ? q->limit : S_QUERY_ROWS_MAX;
    int64_t until = q->until_ms > 0 ? q->until_ms : now + 1;
    s_table_t t = {.limit = limit};
    pt_store_result_t rc = PT_STORE_OK;
    if (strcmp(q->kind, "trail") == 0) {
        static const char *const cols[] = {"seq", "at_ms", "kind", "actor", "counterparty",
                                           "message_type", "hash"};
        char *end = NULL;
        errno = 0;
        unsigned long long after_seq = q->after[0] ? strtoull(q->after, &end, 10) : 0;
        if (!q->case_token[0] || !pt_policy_case_token_valid(q->case_token) ||
            (q->after[0] &&
             (!isdigit((unsigned char)q->after[0]) || !end || *end || errno == ERANGE))) {
            s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                            REJ(REJECT_INVALID_FIELD), "trail needs a valid case token (and a "
                                                       "numeric --after)");
            return;
        }
        s_parties_t parties = {.scope = scope, .in_scope = scope == NULL};
        rc = pt_store_case_parties(self->store, q->case_token, s_party, &parties);
        if (rc != PT_STORE_OK) {
            s_refuse(out, REJ(REJECT_RETRY_LATER), "storage unavailable");
            return;
        }
        if (!parties.in_scope) {
            s_refuse_logged(self, identity, q, "audit_query_refused", q->case_token, out,
                            REJ(REJECT_NOT_PERMITTED), "case not in your scope (query logged)");
            return;
        }
        if (s_log_answered(self, identity, q, q->case_token, out) != 0)
            return;
        t.n_cols = 7;
        s_trail_page_t page = {.t = &t, .after_seq = after_seq};
        rc = pt_store_trail(self->store, q->case_token, s_trail_row, &page);
        if (rc == PT_STORE_OK)
            s_table_answer(&t, cols, q->request_id, out);
    } else if (strcmp(q->kind, "activity") == 0) {
        static const char *const cols[] = {"event_id", "at_ms", "case_token", "seq", "kind",
                                           "actor", "counterparty", "message_type"};
        int64_t after_at;
        char after_id[24];
        if (!q->org_id[0] || !pt_org_id_valid(q->org_id) ||
            s_cursor_parse(q->after, &after_at, after_id, sizeof after_id, "0") != 0 ||
            !s_cursor_rest_ok(after_id, 0)) {
            s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                            REJ(REJECT_INVALID_FIELD), "activity needs an organisation (and "
                                                       "--after from an earlier page)");
            return;
        }
        if (scope && !pt_directory_in_scope(scope, q->org_id)) {
            s_refuse_logged(self, identity, q, "audit_query_refused", q->org_id, out,
                            REJ(REJECT_NOT_PERMITTED),
                            "organisation not in your scope (query logged)");
            return;
        }
        if (s_log_answered(self, identity, q, q->org_id, out) != 0)
            return;
        t.n_cols = 8;
        s_rows_t r = {.t = &t, .scope = NULL, .mode = 0};
        rc = pt_store_audit_activity(self->store, q->org_id, q->from_ms, until, after_at,
                                     strtoll(after_id, NULL, 10), limit + 1, s_row, &r);
        if (rc == PT_STORE_OK)
            s_table_answer(&t, cols, q->request_id, out);
    } else if (strcmp(q->kind, "items") == 0) {
        static const char *const cols[] = {"case_token", "kind", "state", "initiator",
                                           "counterparty", "updated_ms", "created_ms"};
        int64_t after_ms;
        char after_id[40];
        if (s_cursor_parse(q->after, &after_ms, after_id, sizeof after_id,
                           "00000000-0000-0000-0000-000000000000") != 0 ||
            !s_cursor_rest_ok(after_id, 1)) {
            s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                            REJ(REJECT_INVALID_FIELD), "--after is not a cursor of an earlier page");
            return;
        }
        if (q->older_than_ms < 0 || q->older_than_ms > now) {
            s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                            REJ(REJECT_INVALID_FIELD),
                            "older_than must be between 0 and the time since 1970");
            return;
        }
        if (s_log_answered(self, identity, q, "", out) != 0)
            return;
        t.n_cols = 7;
        s_rows_t r = {.t = &t, .scope = scope, .mode = 1};
        rc = pt_store_audit_items(self->store, q->lifecycle_kind, q->state, now - q->older_than_ms,
                                  scope, after_ms, after_id, limit + 1, s_row, &r);
        if (rc == PT_STORE_OK)
            s_table_answer(&t, cols, q->request_id, out);
    } else if (strcmp(q->kind, "corridors") == 0) {
        static const char *const cols[] = {"from", "to", "family", "opened", "accepted",
                                           "median_accept_ms", "rejected", "rejected_by_reason"};
        if (s_log_answered(self, identity, q, "", out) != 0)
            return;
        s_table_t raw = {.n_cols = 7};
        s_rows_t r = {.t = &raw, .scope = scope, .mode = 2};
        rc = pt_store_audit_corridors(self->store, q->from_ms, until, s_row, &r);
        s_reasons_t reasons = {.items = calloc(256, sizeof(s_reason_t)), .cap = 256};
        if (rc == PT_STORE_OK && reasons.items)
            rc = pt_store_audit_rejects(self->store, q->from_ms, until, s_reject_row, &reasons);
        t.n_cols = 8;
        t.limit = 0;   /* one row per corridor and family: small, never paged */
        for (size_t i = 0; rc == PT_STORE_OK && i < raw.n_rows; i++) {
            char *const *c = &raw.cells[i * 7];
            char key[48], why[512] = "";
            snprintf(key, sizeof key, "%.2s|%.2s|%s", c[0], c[1], c[2]);
            for (size_t k = 0; k < reasons.n; k++)
                if (strcmp(reasons.items[k].key, key) == 0)
                    s_reason_shares(reasons.items[k].reasons, c[3], why, sizeof why);
            const char *cells[8] = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], why};
            s_table_add(&t, cells);
        }
        free(reasons.items);
        s_table_free(&raw);
        if (rc == PT_STORE_OK)
            s_table_answer(&t, cols, q->request_id, out);
    } else {
        s_refuse_logged(self, identity, q, "audit_query_malformed", "", out,
                        REJ(REJECT_INVALID_FIELD),
                        "unknown audit query (trail, activity, items, corridors)");
        return;
    }
    if (rc != PT_STORE_OK)
        s_refuse(out, REJ(REJECT_RETRY_LATER), "storage unavailable");
    s_table_free(&t);
}

/* --- rejections (issue 4) ------------------------------------------------------------- */

void pt_audit_log_rejected(pt_audit_t *self, const Puente__V1__Header *header,
                           const uint8_t header_sha256[32], Puente__V1__RejectCode code)
{
    if (!self || !header || !header_sha256 || !pt_policy_case_token_valid(header->case_token) ||
        header->message_id.len != 16)
        return;
    char to[PT_STORE_PARTIES_MAX] = "";
    for (size_t i = 0; i < header->n_recipients; i++) {
        size_t used = strlen(to);
        if (used + strlen(header->recipients[i]) + 2 > sizeof to)
            break;
        snprintf(to + used, sizeof to - used, "%s%s", used ? "," : "", header->recipients[i]);
    }
    uint8_t detail[52];
    for (int i = 0; i < 4; i++)
        detail[i] = (uint8_t)((uint32_t)code >> (24 - 8 * i));
    memcpy(detail + 4, header_sha256, 32);
    memcpy(detail + 36, header->message_id.data, 16);
    pt_trail_event_t ev = {.at_ms = pt_now_ms(),
                           .kind = "rejected",
                           .case_token = header->case_token,
                           .actor = header->sender,
                           .counterparty = to,
                           .message_type = header->message_type,
                           .detail = detail,
                           .detail_len = sizeof detail};
    if (pt_store_event_append(self->store, &ev) != PT_STORE_OK)
        pt_log(PT_LOG_WARN, "audit", header->message_id.data, NULL,
               "could not record the rejection in the trail: %s", pt_store_last_error(self->store));
}

/*  broker — see broker.h. The loop is single-threaded; everything it calls is
    non-blocking except the store, whose round trips are batched. */
#include "broker.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ack.h"
#include "admission.h"
#include "backlog.h"
#include "authn.h"
#include "consent.h"
#include "deliver.h"
#include "directory.h"
#include "fanout.h"
#include "lifecycle.h"
#include "log.h"
#include "policy.h"
#include "pt_decode.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "pt_notice.h"
#include "pt_types.h"
#include "audit.h"
#include "receipt.h"
#include "stage.h"
#include "store.h"
#include "transport.h"
#include "verify.h"
#include "workers.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

/* A submission that passed every stage and waits for the group commit. */
typedef struct {
    uint8_t routing_id[PT_ROUTING_ID_MAX];
    size_t routing_id_len;
    Puente__V1__Header *header;
    uint8_t *envelope;
    size_t envelope_len;
    uint8_t header_sha256[32];
    char agreement_id[PT_STORE_TEXT_MAX];
    int consent_overridden;
    int64_t arrived_ms;                 /* loop pass that received it (latency metric) */
} s_pending_t;

/* What the worker pool worked out for one received frame (s_prepare_frame):
   the decoded frame and, for a submission, stages 1-3 (envelope check, authn,
   verify) and the header digest. The loop thread then runs the rest in order. */
typedef struct {
    ProtobufCMessage *decoded;          /* NULL unless decode_rc == PT_DECODE_OK */
    pt_decode_result_t decode_rc;
    char why[160];
    int checked;                        /* a submission: the fields below are set */
    Puente__V1__Header *header;         /* owned until queued or rejected */
    pt_env_result_t env;
    pt_verdict_t verdict;
    uint8_t header_sha256[32];
    const char *failed_stage;           /* "authenticate" or "verify" when verdict.code */
} s_prepared_t;

/* A receiving connection and the CURVE key it was admitted with (issue 6). */
typedef struct {
    char org[PT_STORE_ORG_ID_MAX];
    uint8_t routing_id[PT_ROUTING_ID_MAX];
    size_t routing_id_len;
    uint8_t curve_public[32];
} s_receiver_t;
/* Inbound bytes one loop pass takes off the socket at most (plus the frame that
   crosses it): what is received is copied, decoded and, for a submission,
   re-packed before the pass's commit, so this bounds the pass's memory together
   with PT_BROKER_BATCH_MAX. The rest waits in the connections' queues (bounded
   by their ZMQ_RCVHWM, transport.h). */
#define S_PASS_BYTES_MIN (8u * 1024 * 1024)

/* Respond-by sweep: how often, and how many lifecycles per pass. */
#define S_EXPIRE_SWEEP_MS 1000
#define S_EXPIRE_SWEEP_MAX 100

struct _pt_broker_t {
    pt_broker_config_t config;
    void *zmq_context;
    pt_keyset_t *keys;
    pt_store_t *store;
    pt_directory_t *directory;
    pt_transport_t *transport;
    pt_deliver_t *deliver;
    pt_audit_t *audit;
    pt_store_session_t *session;        /* LISTEN and the signer lock (issue 9) */
    pt_admission_t *admission; /* rate limit and queue quota (admission.h) */
    pt_decode_limits_t limits;
    s_pending_t pending[PT_BROKER_BATCH_MAX];
    size_t n_pending;
    int64_t started_ms;
    int64_t last_expire_sweep_ms;
    /* The lifecycle stage's in-memory copy of one batch (see s_lifecycle_stage):
       per item, the state as left by that item (or as loaded). */
    pt_lifecycle_t lifecycles[PT_BROKER_BATCH_MAX];
    pt_case_owner_t owners[PT_BROKER_BATCH_MAX];
    pt_lifecycle_effect_t effects[PT_BROKER_BATCH_MAX];
    int known[PT_BROKER_BATCH_MAX];
    /* Per item of the batch in s_flush: its recipients were counted against the
       queue quota (given back unless it is stored as new). */
    int quota_taken[PT_BROKER_BATCH_MAX];
    /* Acks received in this loop pass, committed together by s_flush_acks (ack.h). */
    pt_acks_t *acks;
    /* The worker pool and what one loop pass received and prepared with it. */
    pt_workers_t *workers;
    pt_inbound_t inbound[PT_BROKER_BATCH_MAX];
    s_prepared_t prepared[PT_BROKER_BATCH_MAX];
    size_t n_inbound;
    /* s_flush's receipts: one signature per batch, on the loop thread (receipt.h). */
    pt_receipts_t *receipts;
    /* Metrics and readiness (config.metrics / config.families, may be NULL). */
    int64_t received_ms;                /* when this loop pass drained the socket */
    int64_t last_db_ms;                 /* last store call, for the idle ping */
    int64_t last_stats_ms;              /* connection gauges, once a second */
    pt_backlog_t *backlog;              /* reads the queue figures off the loop */
    uint64_t delivered_counted;         /* pt_deliver_sent_count already in the counter */
    uint64_t refused_counted;           /* pt_transport_refused_count already in the counter */
    int db_down;
    /* Issue 6: the CURVE key of each organisation's receiving connection, so that
       a revocation (or the end of a window) also stops deliveries to it. */
    s_receiver_t *receivers;
    size_t n_receivers;
    int64_t last_evict_ms;
    int64_t last_dead_sweep_ms;         /* dead-letter sweep, once a second */
    int session_down;                   /* logged once per outage of the session */
    int notices_waiting;                /* another broker created notices (push them) */
};

/* Makes room for one more element in a growable array of n elements of size bytes
   (capacity *cap, doubled from 16 when full). 0, or -1 out of memory (unchanged). */
static int s_grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t next = *cap ? *cap * 2 : 16;
    void *grown = realloc(*items, next * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = next;
    return 0;
}

/* s_grow for a collecting callback: -1 (and *failed = 1) if an earlier append
   failed or this one cannot grow; the list is then incomplete and the caller
   answers with an error instead of a partial list. */
static int s_grow_collect(void **items, size_t *cap, size_t n, size_t size, int *failed)
{
    if (*failed || s_grow(items, cap, n, size) != 0) {
        *failed = 1;
        return -1;
    }
    return 0;
}

/* --- replies ---------------------------------------------------------------- */

static void s_send_frame(pt_broker_t *self, const uint8_t *rid, size_t rid_len,
                         const Puente__V1__BrokerFrame *frame)
{
    size_t len = puente__v1__broker_frame__get_packed_size(frame);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    puente__v1__broker_frame__pack(frame, buf);
    if (pt_transport_send(self->transport, rid, rid_len, buf, len) != 0)
        pt_log(PT_LOG_DEBUG, "broker", NULL, NULL, "reply dropped: peer gone");
    free(buf);
}

/* --- metrics and readiness ------------------------------------------------------ */

/* How often the loop checks an otherwise idle database, so /readyz flips
   without traffic. */
#define S_DB_PING_MS 2000
#define S_QUEUE_STATS_MS 1000

static void s_count(pt_broker_t *self, const char *stage, const char *outcome)
{
    if (self->config.families)
        pt_metric_add(self->config.families->messages, (const char *const[]){stage, outcome}, 1);
}

static void s_set_ready(pt_broker_t *self, int ready, const char *reason)
{
    if (self->config.metrics)
        pt_metrics_set_ready(self->config.metrics, ready, reason);
    if (self->config.families)
        pt_metric_set(self->config.families->ready, NULL, ready ? 1 : 0);
}

/* Records the outcome of one store call. UNAVAILABLE is confirmed with a ping
   (a serialization failure is not an outage) before readiness drops; the next
   call the database answers brings it back. */
static void s_db(pt_broker_t *self, const char *operation, pt_store_result_t rc)
{
    self->last_db_ms = pt_now_ms();
    pt_broker_metrics_t *m = self->config.families;
    if (m)
        pt_metric_add(m->db_round_trips, (const char *const[]){operation}, 1);
    if (rc == PT_STORE_UNAVAILABLE || rc == PT_STORE_ERROR) {
        if (m)
            pt_metric_add(m->db_errors, (const char *const[]){operation}, 1);
        if (rc == PT_STORE_ERROR)
            return;
        if (!self->db_down && pt_store_ping(self->store) == PT_STORE_OK)
            return;
        if (!self->db_down)
            pt_log(PT_LOG_WARN, "store", NULL, NULL, "database unreachable: not ready");
        self->db_down = 1;
        s_set_ready(self, 0, "database unreachable");
    } else if (self->db_down) {
        self->db_down = 0;
        pt_log(PT_LOG_INFO, "store", NULL, NULL, "database reachable again: ready");
        s_set_ready(self, 1, NULL);
    }
}

/* "REJECT_BAD_SIGNATURE" -> "bad_signature" (a closed set: the enum's names). */
static void s_count_reject(pt_broker_t *self, Puente__V1__RejectCode code)
{
    if (!self->config.families)
        return;
    const char *name = pt_reject_name(code);
    if (strncmp(name, "REJECT_", 7) == 0)
        name += 7;
    char lower[PT_METRICS_LABEL_MAX];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    lower[i] = '\0';
    pt_metric_add(self->config.families->rejects, (const char *const[]){lower}, 1);
}

/* Message ids are UUIDv7 (DESIGN.md): their first 48 bits are the sender's
   creation time in ms. -1 for anything else. */
static int64_t s_uuid7_ms(const uint8_t id[16])
{
    if ((id[6] >> 4) != 7)
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id[i];
    return ms;
}

static void s_reject(pt_broker_t *self, const uint8_t *rid, size_t rid_len,
                     const uint8_t *message_id, size_t id_len, uint64_t request_id,
                     Puente__V1__RejectCode code, const char *reason, const char *identity)
{
    s_count_reject(self, code);
    Puente__V1__Reject reject = PUENTE__V1__REJECT__INIT;
    if (message_id && id_len == 16) {
        reject.message_id.data = (uint8_t *)message_id;
        reject.message_id.len = 16;
    }
    reject.code = code;
    reject.reason = (char *)reason;
    reject.request_id = request_id;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_REJECT;
    frame.reject = &reject;
    s_send_frame(self, rid, rid_len, &frame);
    pt_log(PT_LOG_INFO, "broker", message_id && id_len == 16 ? message_id : NULL, NULL,
           "rejected %s from %s: %s", pt_reject_name(code), identity && identity[0] ? identity : "?",
           reason);
}

/* Sends the receipt of batch item k (signed by the pool in s_flush), or, when
   its signature failed, a retryable reject (receipt.h). */
static void s_receipt(pt_broker_t *self, const s_pending_t *item, const pt_store_receipt_t *stored,
                      size_t k)
{
    const uint8_t *message_id = item->header->message_id.data;
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    if (pt_receipts_frame(self->receipts, k, message_id, stored, &frame, &frame_len) != 0) {
        s_reject(self, item->routing_id, item->routing_id_len, message_id, 16, 0,
                 REJ(REJECT_RETRY_LATER), "broker could not sign the receipt; resubmit",
                 item->header->sender);
        return;
    }
    if (pt_transport_send(self->transport, item->routing_id, item->routing_id_len, frame,
                          frame_len) != 0)
        pt_log(PT_LOG_DEBUG, "broker", NULL, NULL, "reply dropped: peer gone");
    free(frame);
    s_count(self, "receipt", "ok");
}

/* --- fan-out: who holds data about a case --------------------------------------- */

static void s_fanout_event(const pt_store_event_t *ev, void *arg)
{
    pt_fanout_add_event(arg, ev->event.kind, ev->event.message_type, ev->event.message_id,
                        ev->event.actor, ev->event.counterparty);
}

/* The parties of case_token from its trail, or NULL with *rc set (UNAVAILABLE,
   or ERROR when out of memory). Reads the whole trail: withdrawals are rare. */
static pt_fanout_t *s_case_fanout(pt_broker_t *self, const char *case_token,
                                  pt_store_result_t *rc)
{
    pt_fanout_t *fanout = pt_fanout_new();
    if (!fanout) {
        *rc = PT_STORE_ERROR;
        return NULL;
    }
    *rc = pt_store_trail(self->store, case_token, s_fanout_event, fanout);
    if (*rc == PT_STORE_OK && pt_fanout_add_event(fanout, "", "", NULL, "", "") != 0)
        *rc = PT_STORE_ERROR;
    if (*rc != PT_STORE_OK)
        pt_fanout_destroy(&fanout);
    return fanout;
}

static void s_flush(pt_broker_t *self);

/* --- submit: stages 1-4, then queue for the group commit ---------------------- */

static void s_pending_clear(s_pending_t *item)
{
    if (item->header)
        puente__v1__header__free_unpacked(item->header, NULL);
    free(item->envelope);
    memset(item, 0, sizeof *item);
}

/* Stages 1-3 of a submission: pure (reads the directory, writes only *pre), so
   the pool runs them for a whole batch at once. */
static void s_precheck(const pt_broker_t *self, const pt_inbound_t *in,
                       const Puente__V1__Envelope *envelope, s_prepared_t *pre)
{
    pre->checked = 1;
    pre->header = NULL;
    memset(&pre->verdict, 0, sizeof pre->verdict);
    pre->env = pt_envelope_check(envelope, &pre->header);
    if (pre->env != PT_ENV_OK)
        return;
    pre->failed_stage = "authenticate";
    if (pt_authn_check(in->identity, pre->header, &pre->verdict))
        return;
    pre->failed_stage = "verify";
    if (pt_verify_check(self->directory, envelope, pre->header, pt_now_ms(), &pre->verdict))
        return;
    pre->failed_stage = NULL;
    pt_sha256(envelope->header.data, envelope->header.len, pre->header_sha256);
}

static void s_handle_submit(pt_broker_t *self, const pt_inbound_t *in,
                            const Puente__V1__Envelope *envelope, s_prepared_t *pre)
{
    Puente__V1__Header *header = pre->header;
    pt_verdict_t verdict = pre->verdict;
    pt_env_result_t env = pre->env;
    pre->header = NULL;   /* ours now */
    s_count(self, "decode", env == PT_ENV_OK ? "ok" : "rejected");
    if (env == PT_ENV_OK) {
        s_count(self, "authenticate",
                verdict.code && strcmp(pre->failed_stage ? pre->failed_stage : "", "authenticate") == 0
                    ? "rejected" : "ok");
        if (!verdict.code || strcmp(pre->failed_stage ? pre->failed_stage : "", "verify") == 0)
            s_count(self, "verify", verdict.code ? "rejected" : "ok");
    }
    if (env != PT_ENV_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0,
                 env == PT_ENV_PAYLOAD_MISMATCH ? REJ(REJECT_PAYLOAD_MISMATCH)
                                                : REJ(REJECT_MALFORMED),
                 env == PT_ENV_PAYLOAD_MISMATCH
                     ? "sealed payloads do not match the recipients or digests in the header"
                     : "header does not decode or has malformed ids",
                 in->identity);
        return;
    }
    int64_t now = pt_now_ms();
    char agreement_id[PT_STORE_TEXT_MAX] = "";
    if (verdict.code ||
        pt_policy_check(self->directory, header, now, agreement_id, &verdict) ||
        pt_consent_check(header, &verdict)) {
        if (!pre->verdict.code) {
            s_count(self, "policy", "rejected");
            pt_audit_log_rejected(self->audit, header, pre->header_sha256, verdict.code);
        }
        s_reject(self, in->routing_id, in->routing_id_len, header->message_id.data,
                 header->message_id.len, 0, verdict.code, verdict.reason, in->identity);
        puente__v1__header__free_unpacked(header, NULL);
        return;
    }
    int ask = strcmp(header->message_type, "transfer.ask") == 0;
    if (pt_fanout_type(header->message_type) || ask) {
        /* Everything queued before it is committed first, so that a message to a
           new party in the same batch counts. A transfer request (transfer.ask)
           must come from a party of the case. */
        s_flush(self);
        pt_store_result_t rc = PT_STORE_OK;
        pt_fanout_t *fanout = s_case_fanout(self, header->case_token, &rc);
        if (!fanout)
            pt_verdict_reject(&verdict, REJ(REJECT_RETRY_LATER),
                              "storage unavailable, nothing was stored; resubmit");
        else if (ask && !pt_fanout_is_party(fanout, header->sender))
            pt_verdict_reject(&verdict, REJ(REJECT_NOT_PERMITTED),
                              "%s never sent or received a message about this case and cannot "
                              "ask for its transfer",
                              header->sender);
        else if (!ask)
            pt_fanout_check(fanout, header->sender, (const char *const *)header->recipients,
                            header->n_recipients, &verdict);
        pt_fanout_destroy(&fanout);
        s_db(self, "query", rc);
        if (verdict.code) {
            s_count(self, "policy", "rejected");
            if (verdict.code != REJ(REJECT_RETRY_LATER))
                pt_audit_log_rejected(self->audit, header, pre->header_sha256, verdict.code);
            s_reject(self, in->routing_id, in->routing_id_len, header->message_id.data,
                     header->message_id.len, 0, verdict.code, verdict.reason, in->identity);
            puente__v1__header__free_unpacked(header, NULL);
            return;
        }
    }
    s_count(self, "policy", "ok");
    s_pending_t *item = &self->pending[self->n_pending];
    memset(item, 0, sizeof *item);
    item->arrived_ms = self->received_ms ? self->received_ms : now;
    memcpy(item->routing_id, in->routing_id, in->routing_id_len);
    item->routing_id_len = in->routing_id_len;
    item->header = header;
    item->consent_overridden = pt_consent_overridden(header);
    memcpy(item->agreement_id, agreement_id, sizeof item->agreement_id);
    memcpy(item->header_sha256, pre->header_sha256, 32);
    item->envelope_len = puente__v1__envelope__get_packed_size(envelope);
    item->envelope = malloc(item->envelope_len);
    if (!item->envelope) {
        s_reject(self, in->routing_id, in->routing_id_len, header->message_id.data, 16, 0,
                 REJ(REJECT_RETRY_LATER), "broker out of memory; resubmit", in->identity);
        s_pending_clear(item);
        return;
    }
    puente__v1__envelope__pack(envelope, item->envelope);
    self->n_pending++;
}

static void s_submission_from(const s_pending_t *item, pt_submission_t *sub)
{
    const Puente__V1__Header *h = item->header;
    memset(sub, 0, sizeof *sub);
    sub->message_id = h->message_id.data;
    sub->correlation_id = h->correlation_id.data;
    sub->causation_id = h->causation_id.len == 16 ? h->causation_id.data : NULL;
    sub->message_type = h->message_type;
    sub->sender = h->sender;
    sub->recipients = (const char *const *)h->recipients;
    sub->n_recipients = h->n_recipients;
    sub->case_token = h->case_token;
    sub->purpose = h->purpose;
    sub->agreement_id = item->agreement_id;
    sub->created_at_ms = h->created_at_ms;
    sub->expires_at_ms =
        h->expires_at_ms ? h->expires_at_ms : h->created_at_ms + PT_POLICY_DEFAULT_TTL_MS;
    sub->header_sha256 = item->header_sha256;
    sub->envelope = item->envelope;
    sub->envelope_len = item->envelope_len;
    sub->consent_overridden = item->consent_overridden;
}

static void s_answer_stored(pt_broker_t *self, s_pending_t *item, const pt_store_receipt_t *r,
                            size_t signed_k)
{
    const Puente__V1__Header *h = item->header;
    if (r->result == PT_STORE_OK || r->result == PT_STORE_DUPLICATE) {
        s_count(self, "persist", "ok");
        s_receipt(self, item, r, signed_k);
        if (self->config.families && pt_receipts_signed(self->receipts, signed_k))
            pt_metric_observe(self->config.families->submit_to_receipt, NULL,
                              (double)(pt_now_ms() - item->arrived_ms) / 1000.0);
        if (r->result == PT_STORE_OK) {
            pt_log(PT_LOG_INFO, "persist", h->message_id.data, h->case_token, "stored %s from %s",
                   h->message_type, h->sender);
            for (size_t k = 0; k < h->n_recipients; k++)
                pt_deliver_wake(self->deliver, h->recipients[k]);
        }
    } else if (r->result == PT_STORE_CONFLICT) {
        s_count(self, "persist", "rejected");
        s_reject(self, item->routing_id, item->routing_id_len, h->message_id.data, 16, 0,
                 REJ(REJECT_DUPLICATE_CONFLICT),
                 "this message id was already used for a different message", h->sender);
    } else {
        s_count(self, "persist", "error");
        s_reject(self, item->routing_id, item->routing_id_len, h->message_id.data, 16, 0,
                 REJ(REJECT_INVALID_FIELD), "storage refused the message", h->sender);
    }
}

/* Queue quota (admission.h) of batch item i, a new message that passed every other
   stage: admitted only if each recipient stays within its quota (consent
   withdrawals and erasure requests are counted but never refused: they must not
   wait behind a backlog). The count is given back by s_flush unless the message
   is stored as new. 1 = admitted; 0 = refused (answered here). */
static int s_quota_admit(pt_broker_t *self, size_t i)
{
    s_pending_t *item = &self->pending[i];
    const Puente__V1__Header *h = item->header;
    const char *const *to = (const char *const *)h->recipients;
    const char *full = NULL;
    int64_t depth = 0;
    if (pt_fanout_type(h->message_type)) {
        pt_admission_queue_count(self->admission, to, h->n_recipients);
    } else if (!pt_admission_queue_admit(self->admission, to, h->n_recipients, &full, &depth)) {
        char reason[200];
        snprintf(reason, sizeof reason,
                 "%s has %lld messages waiting for acknowledgement (queue quota %lld); nothing "
                 "was stored; resubmit later",
                 full ? full : "a recipient", (long long)depth,
                 (long long)self->config.queue_quota);
        s_count(self, "limits", "rejected");
        s_reject(self, item->routing_id, item->routing_id_len, h->message_id.data, 16, 0,
                 REJ(REJECT_QUOTA_EXCEEDED), reason, h->sender);
        return 0;
    }
    self->quota_taken[i] = 1;
    return 1;
}

/* Stage 5, lifecycle: runs on the whole batch because it needs the stored state
   of every correlation id and case token. Checks the items in submission order
   against an in-memory copy (an item sees what earlier items of the batch did),
   rejects the illegal ones, and fills the transition of each legal one into its
   submission. Resubmissions (message id already stored, or earlier in the
   batch) are not checked and apply nothing: the store answers them with the
   original receipt. keep[i] says whether subs[i] goes on to the store. Returns
   PT_STORE_OK, or the store's failure (then nothing was decided). */
static pt_store_result_t s_lifecycle_stage(pt_broker_t *self, pt_submission_t *subs, size_t n,
                                           int *keep)
{
    pt_store_result_t rc = pt_store_lifecycle_load(self->store, subs, n, self->lifecycles,
                                                   self->owners, self->known);
    if (rc != PT_STORE_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        s_pending_t *item = &self->pending[i];
        const Puente__V1__Header *h = item->header;
        keep[i] = 1;
        int resubmitted = self->known[i];
        for (size_t j = 0; j < i && !resubmitted; j++)
            resubmitted = keep[j] && memcmp(subs[j].message_id, subs[i].message_id, 16) == 0;
        if (resubmitted) {
            self->known[i] = 1;   /* so later items never take their state from it */
            continue;
        }
        /* The latest earlier item of this batch on the same lifecycle / case. */
        for (size_t j = i; j-- > 0;) {
            if (keep[j] && !self->known[j] &&
                memcmp(subs[j].correlation_id, subs[i].correlation_id, 16) == 0) {
                self->lifecycles[i] = self->lifecycles[j];
                break;
            }
        }
        for (size_t j = i; j-- > 0;) {
            if (keep[j] && !self->known[j] && strcmp(subs[j].case_token, subs[i].case_token) == 0) {
                self->owners[i] = self->owners[j];
                break;
            }
        }
        if (pt_fanout_type(h->message_type)) {
            keep[i] = s_quota_admit(self, i);
            continue;   /* withdrawals and erasure requests belong to no lifecycle */
        }
        pt_verdict_t verdict = {0};
        if (pt_lifecycle_check(&self->lifecycles[i], &self->owners[i], h, &self->effects[i],
                               &verdict)) {
            s_count(self, "policy", "rejected");
            pt_audit_log_rejected(self->audit, h, item->header_sha256, verdict.code);
            s_reject(self, item->routing_id, item->routing_id_len, h->message_id.data, 16, 0,
                     verdict.code, verdict.reason, h->sender);
            keep[i] = 0;
            continue;
        }
        /* After the lifecycle check, so that a message that can never pass gets
           its final reject rather than a retryable one. Later items take their
           state only from kept ones, so refusing here is safe. */
        if (!s_quota_admit(self, i)) {
            keep[i] = 0;
            continue;
        }
        const pt_lifecycle_t *lc = &self->lifecycles[i];
        const pt_lifecycle_effect_t *effect = &self->effects[i];
        subs[i].lifecycle_kind = lc->kind;
        subs[i].lifecycle_from = effect->from;
        subs[i].lifecycle_to = effect->to;
        subs[i].lifecycle_initiator = lc->initiator;
        subs[i].lifecycle_counterparty = lc->counterparty;
        subs[i].respond_by_ms = lc->respond_by_ms;
        subs[i].follow_up_due_ms = lc->follow_up_due_ms;
        if (effect->owner_to[0]) {
            subs[i].owner_to = effect->owner_to;
            subs[i].owner_from = effect->owner_from;
            subs[i].former_owners = self->owners[i].former;
        } else if (effect->owner_first[0]) {
            subs[i].owner_first = effect->owner_first;
        }
    }
    return PT_STORE_OK;
}

/* Group commit: one transaction for everything that passed the stages in this loop
   pass. If the batch fails permanently, each item is retried alone so one bad
   message cannot cost other senders theirs. */
static void s_flush(pt_broker_t *self)
{
    size_t n_all = self->n_pending;
    if (n_all == 0)
        return;
    pt_submission_t all[PT_BROKER_BATCH_MAX], subs[PT_BROKER_BATCH_MAX];
    pt_store_receipt_t receipts[PT_BROKER_BATCH_MAX];
    int keep[PT_BROKER_BATCH_MAX];
    size_t index[PT_BROKER_BATCH_MAX], n = 0;
    for (size_t i = 0; i < n_all; i++)
        s_submission_from(&self->pending[i], &all[i]);
    memset(self->quota_taken, 0, sizeof self->quota_taken);
    pt_store_result_t rc = s_lifecycle_stage(self, all, n_all, keep);
    if (rc != PT_STORE_OK) {
        for (size_t i = 0; i < n_all; i++)
            keep[i] = 1;   /* answered below with the store's failure */
    }
    for (size_t i = 0; i < n_all; i++) {
        if (keep[i]) {
            index[n] = i;
            subs[n++] = all[i];
        }
    }
    memset(receipts, 0, sizeof receipts);
    if (rc != PT_STORE_OK)
        s_db(self, "query", rc);
    if (rc == PT_STORE_OK && n > 0) {
        rc = pt_store_submit_batch(self->store, subs, n, receipts);
        s_db(self, "commit", rc);
    }
    if (rc == PT_STORE_ERROR && n > 1) {
        for (size_t i = 0; i < n; i++) {
            pt_store_result_t one = pt_store_submit_batch(self->store, &subs[i], 1, &receipts[i]);
            if (one != PT_STORE_OK)
                receipts[i].result = one;
        }
        rc = PT_STORE_OK;
    }
    /* One broker signature for the batch's receipts, after COMMIT (receipt.h). */
    const uint8_t *sign_ids[PT_BROKER_BATCH_MAX];
    for (size_t k = 0; k < n; k++)
        sign_ids[k] = self->pending[index[k]].header->message_id.data;
    pt_receipts_sign(self->receipts, receipts, sign_ids, rc == PT_STORE_OK ? n : 0);
    for (size_t k = 0; k < n; k++) {
        size_t i = index[k];
        s_pending_t *item = &self->pending[i];
        const pt_store_receipt_t *r = &receipts[k];
        if (rc == PT_STORE_OK) {
            s_answer_stored(self, item, r, k);
        } else if (rc == PT_STORE_UNAVAILABLE) {
            s_count(self, "persist", "error");
            s_reject(self, item->routing_id, item->routing_id_len, item->header->message_id.data,
                     16, 0, REJ(REJECT_RETRY_LATER),
                     "storage unavailable, nothing was stored; resubmit the same envelope",
                     item->header->sender);
        } else {
            s_count(self, "persist", "error");
            s_reject(self, item->routing_id, item->routing_id_len, item->header->message_id.data,
                     16, 0, REJ(REJECT_INVALID_FIELD), "storage refused the message",
                     item->header->sender);
        }
    }
    /* The queue quota keeps the counts of the messages stored as new only. */
    int stored_new[PT_BROKER_BATCH_MAX] = {0};
    for (size_t k = 0; rc == PT_STORE_OK && k < n; k++)
        stored_new[index[k]] = receipts[k].result == PT_STORE_OK;
    for (size_t i = 0; i < n_all; i++) {
        const Puente__V1__Header *h = self->pending[i].header;
        if (self->quota_taken[i] && !stored_new[i])
            pt_admission_queue_release(self->admission, (const char *const *)h->recipients,
                                       h->n_recipients);
    }
    for (size_t i = 0; i < n_all; i++)
        s_pending_clear(&self->pending[i]);
    self->n_pending = 0;
}

/* --- notices (007_notices.sql, docs/protocol.md "Notices") ------------------- */

/* Unacknowledged notices sent per party and pass; notices are few (one per
   party and overdue deadline), the rest go on the next attach. */
#define S_NOTICES_MAX 256

/* Appends a 2-byte big-endian length and the string; -1 if it does not fit. */
/* Where s_notice_send sends: rid NULL = the party's receiving connection, if any. */
typedef struct {
    pt_broker_t *self;
    const uint8_t *rid;
    size_t rid_len;
} s_notice_push_t;

/* Signs and sends one notice; marks it sent once the socket took it. */
static void s_notice_send(const pt_store_notice_t *notice, void *arg)
{
    s_notice_push_t *push = arg;
    pt_broker_t *self = push->self;
    const uint8_t *rid = push->rid;
    size_t rid_len = push->rid_len;
    if (!rid && pt_deliver_routing_id(self->deliver, notice->org_id, &rid, &rid_len) != 0)
        return;   /* not receiving now: it gets the notice when it attaches */
    Puente__V1__Notice msg = PUENTE__V1__NOTICE__INIT;
    msg.notice_id = (uint64_t)notice->notice_id;
    msg.kind = (char *)notice->kind;
    msg.case_token = (char *)notice->case_token;
    msg.correlation_id = (ProtobufCBinaryData){16, (uint8_t *)notice->correlation_id};
    msg.message_type = (char *)notice->message_type;
    msg.due_at_ms = notice->due_at_ms;
    msg.created_at_ms = notice->created_at_ms;
    uint8_t sig[PT_ED25519_SIG_BYTES];
    if (pt_notice_sign(pt_keyset_sign(self->keys), &msg, sig) != 0) {
        pt_log(PT_LOG_WARN, "notice", NULL, NULL, "could not sign notice %lld",
               (long long)notice->notice_id);
        return;
    }
    msg.broker_signature = (ProtobufCBinaryData){sizeof sig, sig};
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_NOTICE;
    frame.notice = &msg;
    size_t packed_len = puente__v1__broker_frame__get_packed_size(&frame);
    uint8_t *packed = malloc(packed_len ? packed_len : 1);
    if (!packed)
        return;
    puente__v1__broker_frame__pack(&frame, packed);
    int failed = pt_transport_send(self->transport, rid, rid_len, packed, packed_len);
    free(packed);
    if (!failed)
        (void)pt_store_notice_sent(self->store, notice->notice_id, pt_now_ms());
}

/* Sends org's unacknowledged notices on rid (an attach), or, with org NULL, the
   notices never sent yet to every party that is receiving (just created). */
static void s_notices_push(pt_broker_t *self, const char *org, const uint8_t *rid,
                           size_t rid_len)
{
    s_notice_push_t push = {self, rid, rid_len};
    pt_store_result_t rc =
        pt_store_notices_pending(self->store, org, org == NULL, S_NOTICES_MAX, s_notice_send, &push);
    if (rc != PT_STORE_OK && rc != PT_STORE_UNAVAILABLE)
        pt_log(PT_LOG_WARN, "notice", NULL, NULL, "loading notices failed: %s",
               pt_store_last_error(self->store));
}

/* The party recorded a notice: it is not sent again. */
static void s_handle_notice_ack(pt_broker_t *self, const pt_inbound_t *in,
                                const Puente__V1__NoticeAck *ack)
{
    if (ack->notice_id == 0 || ack->notice_id > INT64_MAX) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_INVALID_FIELD),
                 "notice_ack needs a notice id", in->identity);
        return;
    }
    pt_store_result_t rc =
        pt_store_notice_ack(self->store, in->identity, (int64_t)ack->notice_id, pt_now_ms());
    if (rc == PT_STORE_NOT_FOUND) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_NOT_FOUND),
                 "no such notice for this organisation", in->identity);
        return;
    }
    if (rc != PT_STORE_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_RETRY_LATER),
                 "storage unavailable; ack the notice again", in->identity);
        return;
    }
    Puente__V1__Acked acked = PUENTE__V1__ACKED__INIT;
    acked.notice_id = ack->notice_id;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_ACKED;
    frame.acked = &acked;
    s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
}

/* Respond-by deadlines: lifecycles still waiting for an answer expire. */
static void s_expire_sweep(pt_broker_t *self, int64_t now)
{
    if (now - self->last_expire_sweep_ms < S_EXPIRE_SWEEP_MS)
        return;
    self->last_expire_sweep_ms = now;
    size_t expired = 0;
    pt_store_result_t rc = pt_store_lifecycle_expire(self->store, now, S_EXPIRE_SWEEP_MAX, &expired);
    s_db(self, "query", rc);
    if (rc == PT_STORE_OK && expired > 0)
        pt_log(PT_LOG_INFO, "lifecycle", NULL, NULL, "%zu lifecycles passed their respond-by",
               expired);
    else if (rc != PT_STORE_OK && rc != PT_STORE_UNAVAILABLE)
        pt_log(PT_LOG_WARN, "lifecycle", NULL, NULL, "respond-by sweep failed: %s",
               pt_store_last_error(self->store));
    size_t raised = 0;
    rc = pt_store_lifecycle_follow_up_overdue(self->store, now, S_EXPIRE_SWEEP_MAX, &raised);
    if (rc == PT_STORE_OK && raised > 0)
        pt_log(PT_LOG_INFO, "lifecycle", NULL, NULL, "%zu reintegration plans have a follow-up overdue",
               raised);
    else if (rc != PT_STORE_OK && rc != PT_STORE_UNAVAILABLE)
        pt_log(PT_LOG_WARN, "lifecycle", NULL, NULL, "follow-up sweep failed: %s",
               pt_store_last_error(self->store));
    /* The sweeps created a notice per party in their transactions. */
    if (expired + raised > 0)
        s_notices_push(self, NULL, NULL, 0);
}

/* --- other requests ---------------------------------------------------------- */

/* --- issue 6: connections whose CURVE key is no longer admitted ------------------ */

/* Remembers the key of org's new receiving connection (replacing the older one). */
static void s_receiver_note(pt_broker_t *self, const pt_inbound_t *in)
{
    if (!in->has_curve_public)
        return;
    s_receiver_t *r = NULL;
    for (size_t i = 0; i < self->n_receivers && !r; i++)
        if (strcmp(self->receivers[i].org, in->identity) == 0)
            r = &self->receivers[i];
    if (!r) {
        s_receiver_t *grown =
            realloc(self->receivers, (self->n_receivers + 1) * sizeof *self->receivers);
        if (!grown)
            return;
        self->receivers = grown;
        r = &self->receivers[self->n_receivers++];
    }
    memset(r, 0, sizeof *r);
    snprintf(r->org, sizeof r->org, "%s", in->identity);
    memcpy(r->routing_id, in->routing_id, in->routing_id_len);
    r->routing_id_len = in->routing_id_len;
    memcpy(r->curve_public, in->curve_public, 32);
}

/* 1 unless in comes from an organisation's connection that is no longer admitted:
   the organisation was disabled, or the connection's CURVE key was revoked or is
   past its window. ZAP checks only when a connection opens; this holds connections
   opened before. Operators and auditors have no key history. */
static int s_connection_admitted(const pt_broker_t *self, const pt_inbound_t *in, int64_t now)
{
    const pt_directory_org_t *org =
        in->has_curve_public ? pt_directory_org(self->directory, in->identity) : NULL;
    return !org || (org->enabled && pt_directory_curve_admitted(org, in->curve_public, now));
}

/* Stops deliveries to receiving connections whose key is no longer admitted. Runs
   after key changes, after a reload, and once a second (windows end by themselves). */
static void s_evict_receivers(pt_broker_t *self, int64_t now)
{
    self->last_evict_ms = now;
    size_t kept = 0;
    for (size_t i = 0; i < self->n_receivers; i++) {
        s_receiver_t *r = &self->receivers[i];
        const pt_directory_org_t *org = pt_directory_org(self->directory, r->org);
        if (org && (!org->enabled || !pt_directory_curve_admitted(org, r->curve_public, now))) {
            if (pt_deliver_detach(self->deliver, r->org, r->routing_id, r->routing_id_len))
                pt_log(PT_LOG_WARN, "deliver", NULL, NULL,
                       "stopped delivering to a connection of %s: %s", r->org,
                       org->enabled ? "its CURVE key was revoked or its window ended"
                                    : "the organisation was disabled");
            continue;
        }
        self->receivers[kept++] = *r;
    }
    self->n_receivers = kept;
}

static void s_handle_hello(pt_broker_t *self, const pt_inbound_t *in, const Puente__V1__Hello *hello)
{
    if (strcmp(hello->org_id, in->identity) != 0) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_UNAUTHENTICATED),
                 "hello names another identity than the connection's key", in->identity);
        return;
    }
    if (hello->receive && strcmp(in->identity, PT_OPERATOR_ID) != 0) {
        pt_deliver_attach(self->deliver, in->identity, in->routing_id, in->routing_id_len);
        s_receiver_note(self, in);
        pt_log(PT_LOG_INFO, "deliver", NULL, NULL, "%s is receiving", in->identity);
    }
    Puente__V1__Welcome welcome = PUENTE__V1__WELCOME__INIT;
    welcome.broker_version = PT_BROKER_VERSION;
    welcome.time_ms = pt_now_ms();
    welcome.max_frame_bytes = (uint32_t)self->config.max_frame_bytes;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_WELCOME;
    frame.welcome = &welcome;
    s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
    /* After the Welcome: every notice not acknowledged yet, on each attach. */
    if (hello->receive && strcmp(in->identity, PT_OPERATOR_ID) != 0)
        s_notices_push(self, in->identity, in->routing_id, in->routing_id_len);
}

static void s_flush_acks(pt_broker_t *self);

/* Queues the ack for the commit at the end of this loop pass (s_flush_acks). */
static void s_handle_ack(pt_broker_t *self, const pt_inbound_t *in, const Puente__V1__Ack *ack)
{
    if (pt_acks_full(self->acks))
        s_flush_acks(self);
    pt_verdict_t verdict = {0};
    if (pt_acks_queue(self->acks, in, ack, &verdict))
        s_reject(self, in->routing_id, in->routing_id_len,
                 ack->message_id.len == 16 ? ack->message_id.data : NULL, ack->message_id.len, 0,
                 verdict.code, verdict.reason, in->identity);
}

/* Answers one committed ack (pt_acks_commit's callback). */
static void s_ack_answer(const pt_ack_outcome_t *out, void *arg)
{
    pt_broker_t *self = arg;
    if (out->verdict.code) {
        s_reject(self, out->routing_id, out->routing_id_len, out->message_id, 16, 0,
                 out->verdict.code, out->verdict.reason, out->identity);
        return;
    }
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    if (pt_ack_acked_frame(out->message_id, &frame, &frame_len) == 0) {
        if (pt_transport_send(self->transport, out->routing_id, out->routing_id_len, frame,
                              frame_len) != 0)
            pt_log(PT_LOG_DEBUG, "broker", NULL, NULL, "reply dropped: peer gone");
        free(frame);
    }
    if (!out->first)
        return;
    s_count(self, "ack", "ok");
    pt_admission_queue_acked(self->admission, out->identity);
    int64_t created = s_uuid7_ms(out->message_id), now = pt_now_ms();
    if (self->config.families && created > 0 && created <= now)
        pt_metric_observe(self->config.families->submit_to_delivery, NULL,
                          (double)(now - created) / 1000.0);
    pt_log(PT_LOG_INFO, "ack", out->message_id, NULL, "acknowledged by %s", out->identity);
    pt_deliver_acked(self->deliver, out->identity, now); /* next of that correlation id */
}

/* Commits every queued ack in one transaction, then answers each: Acked only
   after COMMIT returned. */
static void s_flush_acks(pt_broker_t *self)
{
    if (pt_acks_count(self->acks) == 0)
        return;
    pt_store_result_t batch =
        pt_acks_commit(self->acks, self->store, pt_now_ms(), s_ack_answer, self);
    s_db(self, "commit", batch);
}

/* The agreements served in a directory reply, with their field sets split back
   out of "purpose=path,path": one allocation per agreement. */
typedef struct {
    Puente__V1__AgreementSpec **list;
    size_t n;
} s_agreements_t;

static void s_agreements_free(s_agreements_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->list[i]);
    free(a->list);
    a->list = NULL;
    a->n = 0;
}

/* One block: spec, field set structs and pointers, then a copy of each set's
   text cut at '=' and ','. */
static Puente__V1__AgreementSpec *s_agreement_spec(const pt_store_agreement_t *ag)
{
    size_t n_sets = ag->n_field_sets, n_paths = 0, text = 0;
    for (size_t i = 0; i < n_sets; i++) {
        text += strlen(ag->field_sets[i]) + 1;
        n_paths += 1;
        for (const char *p = ag->field_sets[i]; *p; p++)
            n_paths += *p == ',';
    }
    /* The ids are copied too: ag is the caller's loop variable, reused per agreement. */
    text += strlen(ag->agreement_id) + strlen(ag->org_a) + strlen(ag->org_b) + 3;
    size_t size = sizeof(Puente__V1__AgreementSpec) + n_sets * sizeof(Puente__V1__FieldSet) +
                  n_sets * sizeof(Puente__V1__FieldSet *) + n_paths * sizeof(char *) + text;
    Puente__V1__AgreementSpec *spec = calloc(1, size);
    if (!spec)
        return NULL;
    puente__v1__agreement_spec__init(spec);
    spec->purposes = (char **)ag->purposes;
    spec->n_purposes = ag->n_purposes;
    spec->message_types = (char **)ag->message_types;
    spec->n_message_types = ag->n_message_types;
    spec->valid_from_ms = ag->valid_from_ms;
    spec->valid_until_ms = ag->valid_until_ms;
    Puente__V1__FieldSet *sets = (Puente__V1__FieldSet *)(spec + 1);
    Puente__V1__FieldSet **set_ptrs = (Puente__V1__FieldSet **)(sets + n_sets);
    char **paths = (char **)(set_ptrs + n_sets);
    char *w = (char *)(paths + n_paths);
    spec->agreement_id = strcpy(w, ag->agreement_id);
    w += strlen(w) + 1;
    spec->org_a = strcpy(w, ag->org_a);
    w += strlen(w) + 1;
    spec->org_b = strcpy(w, ag->org_b);
    w += strlen(w) + 1;
    for (size_t i = 0; i < n_sets; i++) {
        Puente__V1__FieldSet *set = &sets[i];
        puente__v1__field_set__init(set);
        char *copy = strcpy(w, ag->field_sets[i]);
        w += strlen(copy) + 1;
        char *eq = strchr(copy, '=');
        if (!eq) {
            free(spec);
            return NULL;
        }
        *eq = '\0';
        set->purpose = copy;
        set->fields = paths;
        for (char *p = eq + 1; p;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            paths[set->n_fields++] = p;
            p = comma ? comma + 1 : NULL;
        }
        paths += set->n_fields;
        set_ptrs[i] = set;
    }
    spec->field_sets = set_ptrs;
    spec->n_field_sets = n_sets;
    return spec;
}

/* The agreements requester is a party to (all for the operator). 0 or -1. */
static int s_directory_agreements(pt_broker_t *self, const char *requester, s_agreements_t *out)
{
    size_t n = pt_directory_agreement_count(self->directory);
    out->list = calloc(n ? n : 1, sizeof *out->list);
    if (!out->list)
        return -1;
    int operator = strcmp(requester, PT_OPERATOR_ID) == 0;
    for (size_t i = 0; i < n; i++) {
        pt_store_agreement_t ag;
        if (pt_directory_agreement_at(self->directory, i, &ag) != 0)
            continue;
        if (!operator && strcmp(ag.org_a, requester) != 0 && strcmp(ag.org_b, requester) != 0)
            continue;
        Puente__V1__AgreementSpec *spec = s_agreement_spec(&ag);
        if (!spec)
            return -1;
        out->list[out->n++] = spec;
    }
    return 0;
}

/* Fills info from one key set of org_id; everything borrowed from set. The
   revocation reason is the operator's text: only admin replies carry it. */
static void s_key_set_info(const char *org_id, const pt_directory_key_set_t *set, int with_reason,
                           Puente__V1__KeySetInfo *info)
{
    puente__v1__key_set_info__init(info);
    info->org_id = (char *)org_id;
    info->sign_key_id = (ProtobufCBinaryData){32, (uint8_t *)set->sign_key_id};
    info->seal_key_id = (ProtobufCBinaryData){32, (uint8_t *)set->seal_key_id};
    info->sign_public = (ProtobufCBinaryData){32, (uint8_t *)set->sign_public};
    info->seal_public = (ProtobufCBinaryData){32, (uint8_t *)set->seal_public};
    info->curve_public = (ProtobufCBinaryData){32, (uint8_t *)set->curve_public};
    info->valid_from_ms = set->window.valid_from_ms;
    info->valid_until_ms = set->window.valid_until_ms;
    info->revoked_at_ms = set->window.revoked_at_ms;
    if (with_reason)
        info->revoke_reason = (char *)set->revoke_reason;
}

static void s_handle_directory(pt_broker_t *self, const pt_inbound_t *in,
                               const Puente__V1__DirectoryRequest *request)
{
    size_t n = pt_directory_org_count(self->directory);
    s_agreements_t agreements = {0};
    Puente__V1__OrgKeys *keys = calloc(n ? n : 1, sizeof *keys);
    Puente__V1__OrgKeys **list = calloc(n ? n : 1, sizeof *list);
    /* Service types split out of each org's ','-joined list: one copy per org. */
    char **service_copy = calloc(n ? n : 1, sizeof *service_copy);
    char ***service_lists = calloc(n ? n : 1, sizeof *service_lists);
    /* Issue 6: each organisation's key history (OrgKeys.key_sets). */
    Puente__V1__KeySetInfo **set_infos = calloc(n ? n : 1, sizeof *set_infos);
    Puente__V1__KeySetInfo ***set_lists = calloc(n ? n : 1, sizeof *set_lists);
    uint8_t *packed = NULL;
    if (!keys || !list || !service_copy || !service_lists || !set_infos || !set_lists)
        goto done;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const pt_directory_org_t *org = pt_directory_org_at(self->directory, i);
        int wanted = request->n_org_ids == 0;
        for (size_t k = 0; k < request->n_org_ids && !wanted; k++)
            wanted = strcmp(request->org_ids[k], org->org_id) == 0;
        if (!wanted)
            continue;
        Puente__V1__OrgKeys *entry = &keys[count];
        puente__v1__org_keys__init(entry);
        entry->org_id = (char *)org->org_id;
        entry->sign_public = (ProtobufCBinaryData){32, (uint8_t *)org->sign_public};
        entry->seal_public = (ProtobufCBinaryData){32, (uint8_t *)org->seal_public};
        entry->curve_public = (ProtobufCBinaryData){32, (uint8_t *)org->curve_public};
        entry->enabled = org->enabled;
        if (org->n_key_sets) {
            set_infos[count] = calloc(org->n_key_sets, sizeof *set_infos[count]);
            set_lists[count] = calloc(org->n_key_sets, sizeof *set_lists[count]);
            if (!set_infos[count] || !set_lists[count])
                goto done;
            for (size_t k = 0; k < org->n_key_sets; k++) {
                s_key_set_info(org->org_id, &org->key_sets[k], 0, &set_infos[count][k]);
                set_lists[count][k] = &set_infos[count][k];
            }
            entry->key_sets = set_lists[count];
            entry->n_key_sets = org->n_key_sets;
        }
        if (org->service_types[0]) {
            size_t n_types = 1;
            for (const char *p = org->service_types; *p; p++)
                n_types += *p == ',';
            service_copy[count] = strdup(org->service_types);
            service_lists[count] = calloc(n_types, sizeof(char *));
            if (!service_copy[count] || !service_lists[count])
                goto done;
            char *save = NULL;
            size_t k = 0;
            for (char *t = strtok_r(service_copy[count], ",", &save); t && k < n_types;
                 t = strtok_r(NULL, ",", &save))
                service_lists[count][k++] = t;
            entry->service_types = service_lists[count];
            entry->n_service_types = k;
        }
        list[count++] = entry;
    }
    Puente__V1__DirectoryEntries entries = PUENTE__V1__DIRECTORY_ENTRIES__INIT;
    entries.orgs = list;
    entries.n_orgs = count;
    if (s_directory_agreements(self, in->identity, &agreements) != 0)
        goto done;
    entries.agreements = agreements.list;
    entries.n_agreements = agreements.n;
    entries.issued_at_ms = pt_now_ms();
    size_t len = puente__v1__directory_entries__get_packed_size(&entries);
    packed = malloc(len ? len : 1);
    if (!packed)
        goto done;
    puente__v1__directory_entries__pack(&entries, packed);
    uint8_t sig[PT_ED25519_SIG_BYTES];
    if (pt_sign(pt_keyset_sign(self->keys), PT_DOMAIN_DIRECTORY, packed, len, sig) != 0)
        goto done;
    Puente__V1__DirectoryReply reply = PUENTE__V1__DIRECTORY_REPLY__INIT;
    reply.entries = (ProtobufCBinaryData){len, packed};
    reply.signature = (ProtobufCBinaryData){sizeof sig, sig};
    reply.request_id = request->request_id;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_DIRECTORY;
    frame.directory = &reply;
    s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
done:
    for (size_t i = 0; i < n && service_copy && service_lists; i++) {
        free(service_copy[i]);
        free(service_lists[i]);
    }
    for (size_t i = 0; i < n && set_infos && set_lists; i++) {
        free(set_infos[i]);
        free(set_lists[i]);
    }
    free(set_infos);
    free(set_lists);
    free(service_copy);
    free(service_lists);
    s_agreements_free(&agreements);
    free(packed);
    free(list);
    free(keys);
}

typedef struct {
    Puente__V1__TrailEvent **events;
    size_t n, cap;
    const char *requester;
    int party;
    int failed;
    int handed_over;       /* the requester transferred the case away (owner_changed) */
    pt_fanout_t *fanout;   /* pending acknowledgements of withdrawals / erasures */
} s_trail_t;

static void s_trail_event(const pt_store_event_t *ev, void *arg)
{
    s_trail_t *trail = arg;
    if (trail->failed)
        return;
    if (strcmp(ev->event.actor, trail->requester) == 0 ||
        strcmp(ev->event.counterparty, trail->requester) == 0)
        trail->party = 1;
    if (pt_fanout_add_event(trail->fanout, ev->event.kind, ev->event.message_type,
                            ev->event.message_id, ev->event.actor, ev->event.counterparty) != 0) {
        trail->failed = 1;
        return;
    }
    /* Need-to-know after a transfer: a former owner reads the trail up to and
       including the owner_changed that took the case from it, and later only the
       events it is named in (auditors read everything: audit.c). */
    int named = strcmp(ev->event.actor, trail->requester) == 0 ||
                pt_lifecycle_list_has(ev->event.counterparty, trail->requester);
    if (trail->handed_over && !named)
        return;
    if (strcmp(ev->event.kind, "owner_changed") == 0 &&
        strcmp(ev->event.counterparty, trail->requester) == 0)
        trail->handed_over = 1;
    else if (strcmp(ev->event.kind, "owner_changed") == 0 &&
             strcmp(ev->event.actor, trail->requester) == 0)
        trail->handed_over = 0;   /* the case came back to it */
    if (trail->n == trail->cap) {
        size_t cap = trail->cap ? trail->cap * 2 : 16;
        Puente__V1__TrailEvent **grown = realloc(trail->events, cap * sizeof *grown);
        if (!grown) {
            trail->failed = 1;
            return;
        }
        trail->events = grown;
        trail->cap = cap;
    }
    /* One block per event: struct, then the copied strings and hashes. */
    size_t kind = strlen(ev->event.kind) + 1, type = strlen(ev->event.message_type) + 1;
    size_t actor = strlen(ev->event.actor) + 1, counter = strlen(ev->event.counterparty) + 1;
    Puente__V1__TrailEvent *out =
        malloc(sizeof *out + kind + type + actor + counter + 16 + 32 + 32);
    if (!out) {
        trail->failed = 1;
        return;
    }
    puente__v1__trail_event__init(out);
    char *p = (char *)(out + 1);
    out->seq = ev->event.seq;
    out->at_ms = ev->event.at_ms;
    out->kind = memcpy(p, ev->event.kind, kind), p += kind;
    out->message_type = memcpy(p, ev->event.message_type, type), p += type;
    out->actor = memcpy(p, ev->event.actor, actor), p += actor;
    out->counterparty = memcpy(p, ev->event.counterparty, counter), p += counter;
    if (ev->event.message_id) {
        out->message_id = (ProtobufCBinaryData){16, memcpy(p, ev->event.message_id, 16)};
    }
    p += 16;
    out->prev_hash = (ProtobufCBinaryData){32, memcpy(p, ev->prev_hash, 32)};
    p += 32;
    out->hash = (ProtobufCBinaryData){32, memcpy(p, ev->hash, 32)};
    trail->events[trail->n++] = out;
}

static void s_handle_trail(pt_broker_t *self, const pt_inbound_t *in,
                           const Puente__V1__TrailRequest *request)
{
    if (!pt_policy_case_token_valid(request->case_token)) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_INVALID_FIELD), "invalid case token", in->identity);
        return;
    }
    s_trail_t trail = {.requester = in->identity, .fanout = pt_fanout_new()};
    const char **pending = NULL;
    pt_store_result_t rc = trail.fanout ? pt_store_trail(self->store, request->case_token,
                                                         s_trail_event, &trail)
                                        : PT_STORE_ERROR;
    size_t n_pending = rc == PT_STORE_OK ? pt_fanout_pending_count(trail.fanout) : 0;
    if (n_pending && !(pending = calloc(n_pending, sizeof *pending)))
        trail.failed = 1;
    for (size_t i = 0; pending && i < n_pending; i++)
        pending[i] = pt_fanout_pending_at(trail.fanout, i);
    if (rc != PT_STORE_OK || trail.failed) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_RETRY_LATER), "storage unavailable", in->identity);
    } else if (strcmp(in->identity, PT_OPERATOR_ID) != 0 && !trail.party) {
        /* Same answer whether or not the case exists: no probing for case tokens. */
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_NOT_PERMITTED), "not a party to this case", in->identity);
    } else {
        Puente__V1__TrailReply reply = PUENTE__V1__TRAIL_REPLY__INIT;
        reply.case_token = request->case_token;
        reply.events = trail.events;
        reply.n_events = trail.n;
        reply.request_id = request->request_id;
        reply.pending_acknowledgement = (char **)pending;
        reply.n_pending_acknowledgement = pending ? n_pending : 0;
        Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
        frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_TRAIL;
        frame.trail = &reply;
        s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
    }
    for (size_t i = 0; i < trail.n; i++)
        free(trail.events[i]);
    free(trail.events);
    free(pending);
    pt_fanout_destroy(&trail.fanout);
}

/* Fan-out recipients: the parties of a case other than the requester, answered
   only to a party (or the operator), with the same refusal whether or not the
   case exists. */
static void s_handle_recipients(pt_broker_t *self, const pt_inbound_t *in,
                                const Puente__V1__RecipientsRequest *request)
{
    if (!pt_policy_case_token_valid(request->case_token)) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_INVALID_FIELD), "invalid case token", in->identity);
        return;
    }
    pt_store_result_t rc = PT_STORE_OK;
    pt_fanout_t *fanout = s_case_fanout(self, request->case_token, &rc);
    size_t n = pt_fanout_party_count(fanout), count = 0;
    const char **orgs = calloc(n ? n : 1, sizeof *orgs);
    if (!fanout || !orgs) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_RETRY_LATER), "storage unavailable", in->identity);
    } else if (strcmp(in->identity, PT_OPERATOR_ID) != 0 &&
               !pt_fanout_is_party(fanout, in->identity)) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_NOT_PERMITTED), "not a party to this case", in->identity);
    } else {
        for (size_t i = 0; i < n; i++)
            if (strcmp(pt_fanout_party_at(fanout, i), in->identity) != 0)
                orgs[count++] = pt_fanout_party_at(fanout, i);
        Puente__V1__RecipientsReply reply = PUENTE__V1__RECIPIENTS_REPLY__INIT;
        reply.case_token = request->case_token;
        reply.orgs = (char **)orgs;
        reply.n_orgs = count;
        reply.request_id = request->request_id;
        Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
        frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_RECIPIENTS;
        frame.recipients = &reply;
        s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
    }
    free(orgs);
    pt_fanout_destroy(&fanout);
}

/* Overdue items: one block per item (struct, then its strings) so that the
   reply's strings can point into it. */
typedef struct {
    Puente__V1__OverdueItem **items;
    size_t n, cap;
    int failed;
} s_overdue_t;

static void s_overdue_item(const pt_store_overdue_t *item, void *arg)
{
    s_overdue_t *list = arg;
    if (list->failed)
        return;
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        Puente__V1__OverdueItem **grown = realloc(list->items, cap * sizeof *grown);
        if (!grown) {
            list->failed = 1;
            return;
        }
        list->items = grown;
        list->cap = cap;
    }
    Puente__V1__OverdueItem *out = malloc(sizeof *out + sizeof *item);
    if (!out) {
        list->failed = 1;
        return;
    }
    pt_store_overdue_t *copy = memcpy(out + 1, item, sizeof *item);
    puente__v1__overdue_item__init(out);
    out->case_token = copy->case_token;
    out->correlation_id = (ProtobufCBinaryData){16, copy->correlation_id};
    out->kind = copy->kind;
    out->state = copy->state;
    out->deadline = copy->deadline;
    out->due_at_ms = copy->due_at_ms;
    out->overdue_since_ms = copy->overdue_since_ms;
    out->initiator = copy->initiator;
    out->counterparty = copy->counterparty;
    list->items[list->n++] = out;
}

/* The reply must fit in one frame: at most this many items. */
#define S_OVERDUE_MAX 500

static void s_handle_overdue(pt_broker_t *self, const pt_inbound_t *in,
                             const Puente__V1__OverdueRequest *request)
{
    s_overdue_t list = {0};
    const char *scope = strcmp(in->identity, PT_OPERATOR_ID) == 0 ? NULL : in->identity;
    pt_store_result_t rc =
        pt_store_overdue_list(self->store, scope, S_OVERDUE_MAX, s_overdue_item, &list);
    if (rc != PT_STORE_OK || list.failed) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, request->request_id,
                 REJ(REJECT_RETRY_LATER), "storage unavailable", in->identity);
    } else {
        Puente__V1__OverdueReply reply = PUENTE__V1__OVERDUE_REPLY__INIT;
        reply.items = list.items;
        reply.n_items = list.n;
        reply.request_id = request->request_id;
        Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
        frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_OVERDUE;
        frame.overdue = &reply;
        s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
    }
    for (size_t i = 0; i < list.n; i++)
        free(list.items[i]);
    free(list.items);
}

static void s_admin_reply(pt_broker_t *self, const pt_inbound_t *in, uint64_t request_id,
                          const char *result)
{
    Puente__V1__AdminReply reply = PUENTE__V1__ADMIN_REPLY__INIT;
    reply.request_id = request_id;
    reply.result = (char *)result;
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_ADMIN;
    frame.admin = &reply;
    s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
}

/* Joins keys->service_types with ',' into out after checking each name (Primero
   lookup values: lower-case words with '_'). 0 or -1. */
static int s_service_types_join(const Puente__V1__OrgKeys *keys, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < keys->n_service_types; i++) {
        const char *name = keys->service_types[i];
        size_t len = strlen(name);
        if (len == 0 || len > 64 || used + len + 2 > cap)
            return -1;
        for (size_t k = 0; k < len; k++)
            if (!((name[k] >= 'a' && name[k] <= 'z') || (name[k] >= '0' && name[k] <= '9') ||
                  name[k] == '_'))
                return -1;
        if (pt_lifecycle_list_has(out, name))
            continue;
        if (used)
            out[used++] = ',';
        memcpy(out + used, name, len + 1);
        used += len;
    }
    return 0;
}

static void s_field_sets_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

/* Field sets of an AgreementSpec as the store keeps them: "purpose=path,path".
   Checks every purpose (known, once) and path (1-64 of a-z 0-9 _ .). 0 and
   *out (caller frees with s_field_sets_free, n = spec->n_field_sets), or -1. */
static int s_field_sets_join(const Puente__V1__AgreementSpec *spec, char ***out)
{
    *out = NULL;
    if (spec->n_field_sets > 16)
        return -1;
    char **list = calloc(spec->n_field_sets ? spec->n_field_sets : 1, sizeof *list);
    if (!list)
        return -1;
    for (size_t i = 0; i < spec->n_field_sets; i++) {
        const Puente__V1__FieldSet *set = spec->field_sets[i];
        if (!pt_purpose_valid(set->purpose) || set->n_fields == 0 || set->n_fields > 64)
            goto error;
        for (size_t k = 0; k < i; k++)
            if (strcmp(spec->field_sets[k]->purpose, set->purpose) == 0)
                goto error;
        size_t len = strlen(set->purpose) + 1;
        for (size_t k = 0; k < set->n_fields; k++) {
            const char *path = set->fields[k];
            size_t plen = strlen(path);
            if (plen == 0 || plen > 64 || path[0] == '.' || path[plen - 1] == '.')
                goto error;
            for (size_t c = 0; c < plen; c++)
                if (!((path[c] >= 'a' && path[c] <= 'z') || (path[c] >= '0' && path[c] <= '9') ||
                      path[c] == '_' || path[c] == '.'))
                    goto error;
            len += plen + 1;
        }
        list[i] = malloc(len + 1);
        if (!list[i])
            goto error;
        char *w = list[i] + sprintf(list[i], "%s=", set->purpose);
        for (size_t k = 0; k < set->n_fields; k++)
            w += sprintf(w, "%s%s", k ? "," : "", set->fields[k]);
    }
    *out = list;
    return 0;
error:
    s_field_sets_free(list, spec->n_field_sets);
    return -1;
}

/* --- issue 6: operations (org list/show/enable, agreement list/revoke, queue
   list, status). Answers carry structured AdminReply fields; result is a one-line
   summary for older clients. */

static void s_admin_send(pt_broker_t *self, const pt_inbound_t *in,
                         Puente__V1__AdminReply *reply)
{
    Puente__V1__BrokerFrame frame = PUENTE__V1__BROKER_FRAME__INIT;
    frame.body_case = PUENTE__V1__BROKER_FRAME__BODY_ADMIN;
    frame.admin = reply;
    s_send_frame(self, in->routing_id, in->routing_id_len, &frame);
}

/* Fills info from a directory entry. service_types are split in place into
   buf/ptrs (at most cap names); everything borrowed from org and buf. */
static void s_org_info_fill(const pt_broker_t *self, const pt_directory_org_t *org,
                            Puente__V1__OrgInfo *info, char *buf, size_t buf_len, char **ptrs,
                            size_t cap)
{
    puente__v1__org_info__init(info);
    info->org_id = (char *)org->org_id;
    info->enabled = org->enabled ? 1 : 0;
    info->sign_key_id.data = (uint8_t *)org->sign_key_id;
    info->sign_key_id.len = 32;
    info->curve_public.data = (uint8_t *)org->curve_public;
    info->curve_public.len = 32;
    const uint8_t *rid = NULL;
    size_t rid_len = 0;
    info->connected = pt_deliver_routing_id(self->deliver, org->org_id, &rid, &rid_len) == 0;
    snprintf(buf, buf_len, "%s", org->service_types);
    size_t n = 0;
    for (char *p = buf; *p && n < cap;) {
        ptrs[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    info->service_types = ptrs;
    info->n_service_types = n;
}

typedef struct {
    Puente__V1__QueueStat *items;
    size_t n, cap;
    int failed;
} s_queue_list_t;

static void s_queue_collect(const pt_store_queue_stat_t *stat, void *arg)
{
    s_queue_list_t *list = arg;
    if (s_grow_collect((void **)&list->items, &list->cap, list->n,
                       sizeof *list->items, &list->failed) != 0)
        return;
    Puente__V1__QueueStat *q = &list->items[list->n];
    puente__v1__queue_stat__init(q);
    q->recipient = strdup(stat->recipient);
    if (!q->recipient) {
        list->failed = 1;
        return;
    }
    q->depth = stat->depth;
    q->oldest_stored_at_ms = stat->oldest_stored_at_ms;
    list->n++;
}

static void s_queue_list_clear(s_queue_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i].recipient);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* 1 if the request was one of these operations (answered), 0 otherwise. */
static int s_handle_admin_ops(pt_broker_t *self, const pt_inbound_t *in,
                              const Puente__V1__AdminRequest *request)
{
    uint64_t rid = request->request_id;
    char result[512];
    Puente__V1__AdminReply reply = PUENTE__V1__ADMIN_REPLY__INIT;
    reply.request_id = rid;
    reply.result = result;
    switch (request->op_case) {
    case PUENTE__V1__ADMIN_REQUEST__OP_ORG_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW: {
        const char *only = request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW
                               ? request->org_show
                               : NULL;
        if (only && !pt_directory_org(self->directory, only)) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_UNKNOWN_RECIPIENT), "no such organisation", in->identity);
            return 1;
        }
        size_t n = pt_directory_org_count(self->directory);
        Puente__V1__OrgInfo *infos = calloc(n ? n : 1, sizeof *infos);
        Puente__V1__OrgInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        char(*bufs)[PT_STORE_SERVICES_MAX] = calloc(n ? n : 1, sizeof *bufs);
        char *(*names)[64] = calloc(n ? n : 1, sizeof *names);
        if (!infos || !ptrs || !bufs || !names) {
            free(infos);
            free(ptrs);
            free(bufs);
            free(names);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "out of memory", in->identity);
            return 1;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const pt_directory_org_t *org = pt_directory_org_at(self->directory, i);
            if (!org || (only && strcmp(org->org_id, only) != 0))
                continue;
            s_org_info_fill(self, org, &infos[k], bufs[k], sizeof bufs[k], names[k], 64);
            ptrs[k] = &infos[k];
            k++;
        }
        reply.orgs = ptrs;
        reply.n_orgs = k;
        snprintf(result, sizeof result, "%zu organisation%s", k, k == 1 ? "" : "s");
        s_admin_send(self, in, &reply);
        free(infos);
        free(ptrs);
        free(bufs);
        free(names);
        return 1;
    }
    case PUENTE__V1__ADMIN_REQUEST__OP_ORG_ENABLE: {
        const Puente__V1__OrgEnable *op = request->org_enable;
        const pt_directory_org_t *org = pt_directory_org(self->directory, op->org_id);
        if (!org) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_UNKNOWN_RECIPIENT), "no such organisation", in->identity);
            return 1;
        }
        /* Stored first: the directory must never admit what the database refuses. */
        if (pt_store_org_set_enabled(self->store, op->org_id, op->enabled) != PT_STORE_OK ||
            pt_directory_set_org_enabled(self->directory, op->org_id, op->enabled) != 0) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not store the organisation", in->identity);
            return 1;
        }
        if (!op->enabled)
            s_evict_receivers(self, pt_now_ms());   /* its open connections stop receiving */
        snprintf(result, sizeof result, "organisation %s %s", org->org_id,
                 op->enabled ? "enabled" : "disabled");
        pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        Puente__V1__OrgInfo info;
        Puente__V1__OrgInfo *info_p = &info;
        char buf[PT_STORE_SERVICES_MAX];
        char *names[64];
        s_org_info_fill(self, org, &info, buf, sizeof buf, names, 64);
        reply.orgs = &info_p;
        reply.n_orgs = 1;
        s_admin_send(self, in, &reply);
        return 1;
    }
    case PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_REVOKE: {
        const char *only = NULL;
        if (request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_REVOKE) {
            only = request->agreement_revoke;
            int held = 0;
            pt_store_agreement_t ag;
            for (size_t i = 0; !held && i < pt_directory_agreement_count(self->directory); i++)
                held = pt_directory_agreement_at(self->directory, i, &ag) == 0 &&
                       strcmp(ag.agreement_id, only) == 0;
            if (!held) {
                s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                         REJ(REJECT_NO_AGREEMENT), "no such agreement", in->identity);
                return 1;
            }
            int64_t now = pt_now_ms();
            if (pt_store_agreement_revoke(self->store, only, now) != PT_STORE_OK ||
                pt_directory_agreement_revoke(self->directory, only, now) != 0) {
                s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                         REJ(REJECT_RETRY_LATER), "could not store the agreement", in->identity);
                return 1;
            }
            snprintf(result, sizeof result, "agreement %.128s revoked", only);
            pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        }
        size_t n = pt_directory_agreement_count(self->directory);
        Puente__V1__AgreementSpec *specs = calloc(n ? n : 1, sizeof *specs);
        Puente__V1__AgreementSpec **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        pt_store_agreement_t *views = calloc(n ? n : 1, sizeof *views);
        if (!specs || !ptrs || !views) {
            free(specs);
            free(ptrs);
            free(views);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "out of memory", in->identity);
            return 1;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            pt_store_agreement_t *ag = &views[k];
            if (pt_directory_agreement_at(self->directory, i, ag) != 0 ||
                (only && strcmp(ag->agreement_id, only) != 0))
                continue;
            Puente__V1__AgreementSpec *spec = &specs[k];
            puente__v1__agreement_spec__init(spec);
            spec->agreement_id = ag->agreement_id;
            spec->org_a = ag->org_a;
            spec->org_b = ag->org_b;
            spec->purposes = (char **)ag->purposes;
            spec->n_purposes = ag->n_purposes;
            spec->message_types = (char **)ag->message_types;
            spec->n_message_types = ag->n_message_types;
            spec->valid_from_ms = ag->valid_from_ms;
            spec->valid_until_ms = ag->valid_until_ms;
            ptrs[k] = spec;
            k++;
        }
        reply.agreements = ptrs;
        reply.n_agreements = k;
        if (!only)
            snprintf(result, sizeof result, "%zu agreement%s", k, k == 1 ? "" : "s");
        s_admin_send(self, in, &reply);
        free(specs);
        free(ptrs);
        free(views);
        return 1;
    }
    case PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_STATUS: {
        int status = request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_STATUS;
        s_queue_list_t list = {0};
        pt_store_result_t qrc = pt_store_queue_stats(self->store, s_queue_collect, &list);
        if (!status && (qrc != PT_STORE_OK || list.failed)) {
            s_queue_list_clear(&list);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not read the queues", in->identity);
            return 1;
        }
        Puente__V1__QueueStat **qptrs = calloc(list.n ? list.n : 1, sizeof *qptrs);
        size_t n_orgs = pt_directory_org_count(self->directory);
        char **connected = calloc(n_orgs ? n_orgs : 1, sizeof *connected);
        if (!qptrs || !connected) {
            free(qptrs);
            free(connected);
            s_queue_list_clear(&list);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "out of memory", in->identity);
            return 1;
        }
        int64_t total = 0;
        for (size_t i = 0; i < list.n; i++) {
            qptrs[i] = &list.items[i];
            total += list.items[i].depth;
        }
        reply.queues = qptrs;
        reply.n_queues = list.n;
        Puente__V1__BrokerStatus st = PUENTE__V1__BROKER_STATUS__INIT;
        if (status) {
            int64_t now = pt_now_ms();
            st.broker_version = PT_BROKER_VERSION;
            st.started_at_ms = self->started_ms;
            st.uptime_ms = now - self->started_ms;
            st.database_reachable = qrc == PT_STORE_OK || pt_store_ping(self->store) == PT_STORE_OK;
            st.migrations_current = st.database_reachable && self->config.sql_dir &&
                                    pt_store_migrations_current(self->store,
                                                                self->config.sql_dir) == 1;
            st.queued_total = total;
            st.recipients_with_backlog = (uint32_t)list.n;
            st.organisations = (uint32_t)n_orgs;
            st.agreements = (uint32_t)pt_directory_agreement_count(self->directory);
            size_t c = 0;
            for (size_t i = 0; i < n_orgs; i++) {
                const pt_directory_org_t *org = pt_directory_org_at(self->directory, i);
                const uint8_t *r = NULL;
                size_t r_len = 0;
                if (org && pt_deliver_routing_id(self->deliver, org->org_id, &r, &r_len) == 0)
                    connected[c++] = (char *)org->org_id;
            }
            st.connected_orgs = connected;
            st.n_connected_orgs = c;
            reply.status = &st;
            snprintf(result, sizeof result, "broker %s up %llds, database %s, %lld queued",
                     PT_BROKER_VERSION, (long long)(st.uptime_ms / 1000),
                     st.database_reachable ? "reachable" : "unreachable", (long long)total);
        } else {
            snprintf(result, sizeof result, "%lld queued for %zu recipient%s", (long long)total,
                     list.n, list.n == 1 ? "" : "s");
        }
        s_admin_send(self, in, &reply);
        free(qptrs);
        free(connected);
        s_queue_list_clear(&list);
        return 1;
    }
    default: return 0;
    }
}

/* --- issue 6: key rotation, revocation and listing ------------------------------ */

/* 1 if text is 1..max_len bytes of valid UTF-8 without control characters. */
static int s_reason_ok(const char *text, size_t max_len)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > max_len)
        return 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)) || (n == 2 && *p < 0xC2) ||
            (n == 4 && *p > 0xF4))
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        /* Overlong 3/4-byte forms and UTF-16 surrogates. */
        if ((n == 3 && ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] >= 0xA0))) ||
            (n == 4 && ((*p == 0xF0 && p[1] < 0x90) || (*p == 0xF4 && p[1] >= 0x90))))
            return 0;
        p += n;
    }
    return 1;
}

/* The first 16 hex digits of a key id: what `puente key list` shows. */
static void s_key_id_short(const uint8_t id[32], char out[17])
{
    char full[65];
    pt_hex(id, 32, full);
    memcpy(out, full, 16);
    out[16] = '\0';
}

static void s_time_text(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char secs[32];
    if (ms < 0 || !gmtime_r(&t, &tm) || strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, len, "%lld ms", (long long)ms);
    else
        snprintf(out, len, "%s.%03dZ", secs, (int)(ms % 1000));
}

/* Sends the key sets of org (all, or the ones listed by key_set_id) in an AdminReply. */
static void s_key_reply(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                        const char *result, const pt_directory_org_t *org,
                        const int64_t *only_ids, size_t n_only)
{
    Puente__V1__AdminReply reply = PUENTE__V1__ADMIN_REPLY__INIT;
    size_t n = org->n_key_sets;
    Puente__V1__KeySetInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Puente__V1__KeySetInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_RETRY_LATER),
                 "out of memory", in->identity);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int wanted = n_only == 0;
        for (size_t j = 0; j < n_only && !wanted; j++)
            wanted = org->key_sets[i].key_set_id == only_ids[j];
        if (!wanted)
            continue;
        s_key_set_info(org->org_id, &org->key_sets[i], 1, &infos[k]);
        ptrs[k] = &infos[k];
        k++;
    }
    reply.request_id = rid;
    reply.result = (char *)result;
    reply.keys = ptrs;
    reply.n_keys = k;
    s_admin_send(self, in, &reply);
    free(infos);
    free(ptrs);
}

/* Refreshes org's key history from the store (another broker may have changed it)
   and returns the organisation, or NULL after rejecting. */
static const pt_directory_org_t *s_key_org(pt_broker_t *self, const pt_inbound_t *in,
                                           uint64_t rid, const char *org_id)
{
    const pt_directory_org_t *org = org_id ? pt_directory_org(self->directory, org_id) : NULL;
    if (!org) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                 REJ(REJECT_UNKNOWN_RECIPIENT), "no such organisation", in->identity);
        return NULL;
    }
    if (pt_directory_load_key_sets(self->directory, self->store, org_id) != PT_STORE_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                 REJ(REJECT_RETRY_LATER), "could not read the key history", in->identity);
        return NULL;
    }
    return org;
}

static void s_key_rotate(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                         const Puente__V1__KeyRotate *op)
{
    char result[512];
    const pt_directory_org_t *org = s_key_org(self, in, rid, op->org_id);
    if (!org)
        return;
    pt_sign_key_t *check = op->sign_public.len == 32
                               ? pt_sign_key_from_public(op->sign_public.data, 32) : NULL;
    pt_seal_key_t *check_seal = op->seal_public.len == 32
                                    ? pt_seal_key_from_public(op->seal_public.data, 32) : NULL;
    int valid = check && check_seal && op->curve_public.len == 32 && op->overlap_ms >= 0 &&
                op->overlap_ms <= PT_STORE_KEY_OVERLAP_MAX_MS;
    pt_sign_key_destroy(&check);
    pt_seal_key_destroy(&check_seal);
    if (!valid) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_INVALID_FIELD),
                 "key_rotate needs three valid 32-byte public keys and an overlap of 0 to 366 "
                 "days", in->identity);
        return;
    }
    const pt_directory_key_set_t *old = pt_directory_current_key_set(org);
    int64_t old_id = old ? old->key_set_id : 0;
    int64_t now = pt_now_ms();
    pt_store_result_t rc = pt_store_key_rotate(self->store, op->org_id, op->sign_public.data,
                                               op->seal_public.data, op->curve_public.data, now,
                                               op->overlap_ms);
    if (rc == PT_STORE_CONFLICT) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_INVALID_FIELD),
                 "a key of this set was registered before (key sets are never reused): make "
                 "a new one with puente keygen", in->identity);
        return;
    }
    if (rc != PT_STORE_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_RETRY_LATER),
                 "could not store the key set", in->identity);
        return;
    }
    /* The directory follows the database: the new set is current, the old one keeps
       its window (and stays in the history that verify and ZAP read). */
    pt_store_org_t put = {0};
    snprintf(put.org_id, sizeof put.org_id, "%s", org->org_id);
    memcpy(put.sign_public, op->sign_public.data, 32);
    memcpy(put.seal_public, op->seal_public.data, 32);
    memcpy(put.curve_public, op->curve_public.data, 32);
    put.enabled = org->enabled;
    snprintf(put.service_types, sizeof put.service_types, "%s", org->service_types);
    if (pt_directory_put_org(self->directory, &put) != 0 ||
        pt_directory_load_key_sets(self->directory, self->store, put.org_id) != PT_STORE_OK)
        pt_log(PT_LOG_ERROR, "admin", NULL, NULL,
               "key rotation of %s stored but the directory was not updated; send SIGHUP",
               put.org_id);
    org = pt_directory_org(self->directory, put.org_id);
    const pt_directory_key_set_t *fresh = pt_directory_current_key_set(org);
    char new_id[17] = "?", old_text[17] = "", until[40] = "";
    if (fresh)
        s_key_id_short(fresh->sign_key_id, new_id);
    int64_t ids[2] = {fresh ? fresh->key_set_id : 0, old_id};
    const pt_directory_key_set_t *replaced = NULL;
    for (size_t k = 0; org && k < org->n_key_sets; k++)
        if (org->key_sets[k].key_set_id == old_id)
            replaced = &org->key_sets[k];
    if (replaced && replaced->window.revoked_at_ms != 0) {
        s_key_id_short(replaced->sign_key_id, old_text);
        snprintf(result, sizeof result,
                 "rotated the keys of %s: key set %s is current; the previous set %s stays "
                 "revoked", put.org_id, new_id, old_text);
    } else if (replaced) {
        s_key_id_short(replaced->sign_key_id, old_text);
        s_time_text(replaced->window.valid_until_ms, until, sizeof until);
        snprintf(result, sizeof result,
                 "rotated the keys of %s: key set %s is current; the previous set %s signs "
                 "messages created until %s and its CURVE key connects until then",
                 put.org_id, new_id, old_text, until);
    } else {
        snprintf(result, sizeof result, "rotated the keys of %s: key set %s is current",
                 put.org_id, new_id);
    }
    pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
    s_key_reply(self, in, rid, result, org, ids, replaced ? 2 : 1);
}

static void s_key_revoke(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                         const Puente__V1__KeyRevoke *op)
{
    char result[512];
    if (!s_reason_ok(op->reason, PT_STORE_REASON_MAX - 1) || op->at_ms < 0 ||
        (op->sign_key_id.len != 0 && (op->sign_key_id.len < 4 || op->sign_key_id.len > 32))) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_INVALID_FIELD),
                 "key_revoke needs a reason (1-200 characters, no control characters), a key "
                 "id of 4 to 32 bytes or none (the current set), and a time >= 0",
                 in->identity);
        return;
    }
    const pt_directory_org_t *org = s_key_org(self, in, rid, op->org_id);
    if (!org)
        return;
    const pt_directory_key_set_t *set = NULL;
    size_t matches = 0;
    if (op->sign_key_id.len == 0) {
        set = pt_directory_current_key_set(org);
        matches = set ? 1 : 0;
    } else {
        for (size_t k = 0; k < org->n_key_sets; k++)
            if (memcmp(org->key_sets[k].sign_key_id, op->sign_key_id.data,
                       op->sign_key_id.len) == 0) {
                set = &org->key_sets[k];
                matches++;
            }
    }
    if (matches != 1) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                 matches ? REJ(REJECT_INVALID_FIELD) : REJ(REJECT_NOT_FOUND),
                 matches ? "several key sets start with that key id: give more of it"
                         : "no key set of that organisation has that key id",
                 in->identity);
        return;
    }
    int64_t now = pt_now_ms();
    int64_t at = op->at_ms ? op->at_ms : now;
    int64_t set_id = set->key_set_id;
    int current = set->window.valid_until_ms == 0;
    char org_id[PT_STORE_ORG_ID_MAX];
    snprintf(org_id, sizeof org_id, "%s", org->org_id);
    pt_store_result_t rc = pt_store_key_revoke(self->store, org_id, set_id, at, op->reason, now);
    if (rc != PT_STORE_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                 rc == PT_STORE_NOT_FOUND ? REJ(REJECT_NOT_FOUND) : REJ(REJECT_RETRY_LATER),
                 rc == PT_STORE_NOT_FOUND ? "no key set of that organisation has that key id"
                                          : "could not store the revocation",
                 in->identity);
        return;
    }
    if (pt_directory_load_key_sets(self->directory, self->store, org_id) != PT_STORE_OK)
        pt_log(PT_LOG_ERROR, "admin", NULL, NULL,
               "revocation of a key set of %s stored but the directory was not updated; send "
               "SIGHUP", org_id);
    org = pt_directory_org(self->directory, org_id);
    set = NULL;
    for (size_t k = 0; org && k < org->n_key_sets; k++)
        if (org->key_sets[k].key_set_id == set_id)
            set = &org->key_sets[k];
    char id_text[17] = "?", from[40] = "";
    if (set) {
        s_key_id_short(set->sign_key_id, id_text);
        s_time_text(set->window.revoked_at_ms, from, sizeof from);
    }
    int used = snprintf(result, sizeof result,
                        "revoked key set %s of %s from %s: messages signed with it are refused "
                        "(REJECT_UNKNOWN_KEY) and its CURVE key is no longer admitted",
                        id_text, org_id, from);
    if (current && used > 0 && (size_t)used < sizeof result)
        snprintf(result + used, sizeof result - (size_t)used,
                 ". It was the current key set: %s cannot send or connect until `puente key "
                 "rotate --org %s` registers new keys",
                 org_id, org_id);
    pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
    if (org)
        s_key_reply(self, in, rid, result, org, &set_id, 1);
}

/* 1 if the request was a key operation (answered), 0 otherwise. */
static int s_handle_key_admin(pt_broker_t *self, const pt_inbound_t *in,
                              const Puente__V1__AdminRequest *request)
{
    uint64_t rid = request->request_id;
    switch (request->op_case) {
    case PUENTE__V1__ADMIN_REQUEST__OP_KEY_ROTATE:
        s_key_rotate(self, in, rid, request->key_rotate);
        s_evict_receivers(self, pt_now_ms());
        return 1;
    case PUENTE__V1__ADMIN_REQUEST__OP_KEY_REVOKE:
        s_key_revoke(self, in, rid, request->key_revoke);
        s_evict_receivers(self, pt_now_ms());
        return 1;
    case PUENTE__V1__ADMIN_REQUEST__OP_KEY_LIST: {
        const pt_directory_org_t *org = s_key_org(self, in, rid, request->key_list->org_id);
        if (org) {
            char result[128];
            snprintf(result, sizeof result, "%zu key set%s of %s", org->n_key_sets,
                     org->n_key_sets == 1 ? "" : "s", org->org_id);
            s_key_reply(self, in, rid, result, org, NULL, 0);
        }
        return 1;
    }
    default: return 0;
    }
}

/* --- issue 6: dead letters (009_dead_letter.sql; store.h "dead letters") ----------
   The sweep runs in the loop once a second; list, requeue and drop are operator
   requests answered with AdminReply.dead_letters. Requeue and drop first read the
   dead letters they name and refuse the whole request (nothing changed) when an
   id names none, so a mistyped id never half-applies. */

#define S_DEAD_SWEEP_MS 1000
#define S_DEAD_SWEEP_MAX 500
/* Entries in one reply: the SDK decodes at most 1024 elements of a repeated field. */
#define S_DEAD_REPLY_MAX 1000
/* Changed by one requeue / drop request (ten transactions of S_DEAD_REPLY_MAX):
   bounds how long one request holds the loop; --all says what remains. */
#define S_DEAD_CHANGE_MAX 10000
#define S_DEAD_NOTE_MAX 500

static void s_dead_logged(const pt_store_dead_letter_t *dead, void *arg)
{
    (void)arg;
    pt_log(PT_LOG_WARN, "deliver", dead->message_id, dead->case_token,
           "dead-lettered for %s: %s (%u attempts)", dead->recipient, dead->reason,
           dead->attempts);
}

/* Moves spent and expired deliveries aside, once a second. */
static void s_dead_letter_sweep(pt_broker_t *self, int64_t now)
{
    if (now - self->last_dead_sweep_ms < S_DEAD_SWEEP_MS)
        return;
    self->last_dead_sweep_ms = now;
    pt_store_result_t rc =
        pt_store_dead_letter_sweep(self->store, now, self->config.max_delivery_attempts,
                                   S_DEAD_SWEEP_MAX, s_dead_logged, NULL, NULL);
    s_db(self, "query", rc);
    if (rc != PT_STORE_OK && rc != PT_STORE_UNAVAILABLE)
        pt_log(PT_LOG_WARN, "deliver", NULL, NULL, "dead-letter sweep failed: %s",
               pt_store_last_error(self->store));
}

/* puente_dead_letters{recipient} for every registered organisation (0 when none),
   from the backlog reader's snapshot. */
static void s_dead_letter_gauges(pt_broker_t *self, pt_broker_metrics_t *m,
                                 const pt_backlog_snapshot_t *snap)
{
    for (size_t i = 0; i < pt_directory_org_count(self->directory); i++) {
        const char *org = pt_directory_org_at(self->directory, i)->org_id;
        double count = 0;
        for (size_t k = 0; k < snap->n_dead; k++)
            if (strcmp(snap->dead[k].recipient, org) == 0)
                count = (double)snap->dead[k].count;
        pt_metric_set(m->dead_letters, (const char *const[]){org}, count);
    }
}

typedef struct {
    pt_store_dead_letter_t *items;
    size_t n, cap;
    int failed;
} s_dead_list_t;

static void s_dead_collect(const pt_store_dead_letter_t *dead, void *arg)
{
    s_dead_list_t *list = arg;
    if (s_grow_collect((void **)&list->items, &list->cap, list->n,
                       sizeof *list->items, &list->failed) != 0)
        return;
    list->items[list->n++] = *dead;
}

static void s_dead_list_clear(s_dead_list_t *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

static void s_dead_total(const char *recipient, int64_t count, void *arg)
{
    (void)recipient;
    *(int64_t *)arg += count;
}

/* Sends the first S_DEAD_REPLY_MAX entries of list (strings borrowed) with result. */
static void s_dead_reply(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                         const s_dead_list_t *list, const char *result)
{
    size_t n = list->n < S_DEAD_REPLY_MAX ? list->n : S_DEAD_REPLY_MAX;
    Puente__V1__DeadLetterInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Puente__V1__DeadLetterInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_RETRY_LATER),
                 "out of memory", in->identity);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        pt_store_dead_letter_t *d = &list->items[i];
        Puente__V1__DeadLetterInfo *info = &infos[i];
        puente__v1__dead_letter_info__init(info);
        info->message_id = (ProtobufCBinaryData){16, d->message_id};
        info->correlation_id = (ProtobufCBinaryData){16, d->correlation_id};
        info->case_token = d->case_token;
        info->message_type = d->message_type;
        info->sender = d->sender;
        info->recipient = d->recipient;
        info->reason = d->reason;
        info->attempts = d->attempts;
        info->dead_at_ms = d->dead_at_ms;
        info->stored_at_ms = d->stored_at_ms;
        info->expires_at_ms = d->expires_at_ms;
        info->held_back = d->held_back;
        ptrs[i] = info;
    }
    Puente__V1__AdminReply reply = PUENTE__V1__ADMIN_REPLY__INIT;
    reply.request_id = rid;
    reply.result = (char *)result;
    reply.dead_letters = ptrs;
    reply.n_dead_letters = n;
    s_admin_send(self, in, &reply);
    free(infos);
    free(ptrs);
}

/* The selection of a requeue / drop: explicit message ids, or every dead letter of
   recipient. 0, or -1 after rejecting the request. */
static int s_dead_selection_ok(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                               ProtobufCBinaryData *ids, size_t n_ids, const char *recipient,
                               int all)
{
    const char *why = NULL;
    if (all && n_ids > 0)
        why = "give either message ids or --all, not both";
    else if (all && !recipient[0])
        why = "--all needs a recipient";
    else if (!all && n_ids == 0)
        why = "give message ids, or a recipient with --all";
    else if (n_ids > S_DEAD_REPLY_MAX)
        why = "at most 1000 message ids per request";
    for (size_t i = 0; !why && i < n_ids; i++)
        if (ids[i].len != 16)
            why = "a message id is not 16 bytes";
    if (why) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_INVALID_FIELD),
                 why, in->identity);
        return -1;
    }
    return 0;
}

/* Rejects an unknown recipient. 0 if recipient is "" or registered. */
static int s_dead_recipient_ok(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                               const char *recipient)
{
    if (!recipient[0] || (pt_org_id_valid(recipient) && pt_directory_org(self->directory, recipient)))
        return 0;
    s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_UNKNOWN_RECIPIENT),
             "no such organisation", in->identity);
    return -1;
}

/* Requeue (note NULL) or drop: reads the selection (the ids, else every dead
   letter of recipient), checks it, changes it in transactions of
   S_DEAD_REPLY_MAX and answers with what changed. */
static void s_dead_change_request(pt_broker_t *self, const pt_inbound_t *in, uint64_t rid,
                                  ProtobufCBinaryData *ids, size_t n_ids, const char *recipient,
                                  const char *note)
{
    int requeue = note == NULL;
    char result[512];
    s_dead_list_t list = {0}, changed = {0};
    uint8_t *flat = n_ids ? malloc(n_ids * 16) : NULL;
    pt_store_dead_item_t *items = calloc(S_DEAD_REPLY_MAX, sizeof *items);
    int64_t now = pt_now_ms();
    size_t skipped_expired = 0, vanished = 0;
    int more = 0;
    if ((n_ids && !flat) || !items)
        goto oom;
    for (size_t i = 0; i < n_ids; i++)
        memcpy(flat + 16 * i, ids[i].data, 16);
    /* Read first (explicit ids: all of them, at most S_DEAD_CHANGE_MAX rows). */
    pt_store_result_t rc = pt_store_dead_letter_list(self->store, recipient, flat, n_ids, 0,
                                                     S_DEAD_CHANGE_MAX + 1, now, s_dead_collect,
                                                     &list);
    s_db(self, "admin", rc);
    if (rc != PT_STORE_OK || list.failed) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_RETRY_LATER),
                 "could not read the dead letters", in->identity);
        goto done;
    }
    if (list.n > S_DEAD_CHANGE_MAX) {
        more = 1;
        list.n = S_DEAD_CHANGE_MAX;
    }
    /* Every id must name a dead letter; a requeue of explicit ids must not name an
       expired one (it would only die again). Otherwise nothing changes. */
    for (size_t i = 0; i < n_ids; i++) {
        int found = 0;
        char text[PT_UUID_STR_BYTES];
        for (size_t k = 0; k < list.n && !found; k++)
            found = memcmp(list.items[k].message_id, flat + 16 * i, 16) == 0;
        pt_uuid_format(flat + 16 * i, text);
        if (!found) {
            snprintf(result, sizeof result, "no dead letter with message id %s%s%s; nothing changed",
                     text, recipient[0] ? " to " : "", recipient);
            s_reject(self, in->routing_id, in->routing_id_len, flat + 16 * i, 16, rid,
                     REJ(REJECT_NOT_FOUND), result, in->identity);
            goto done;
        }
    }
    for (size_t k = 0; requeue && n_ids && k < list.n; k++) {
        const pt_store_dead_letter_t *d = &list.items[k];
        if (d->expires_at_ms > 0 && d->expires_at_ms <= now) {
            char text[PT_UUID_STR_BYTES];
            pt_uuid_format(d->message_id, text);
            snprintf(result, sizeof result,
                     "message %s has expired and cannot be delivered: drop it instead; "
                     "nothing changed",
                     text);
            s_reject(self, in->routing_id, in->routing_id_len, d->message_id, 16, rid,
                     REJ(REJECT_EXPIRED), result, in->identity);
            goto done;
        }
    }
    /* Change them, S_DEAD_REPLY_MAX per transaction, in delivery order. */
    for (size_t k = 0; k < list.n;) {
        size_t n = 0;
        size_t first = k;
        for (; k < list.n && n < S_DEAD_REPLY_MAX; k++) {
            const pt_store_dead_letter_t *d = &list.items[k];
            if (requeue && d->expires_at_ms > 0 && d->expires_at_ms <= now) {
                skipped_expired++;   /* --all: expired ones stay dead letters */
                continue;
            }
            items[n++].delivery_id = d->delivery_id;
        }
        rc = requeue ? pt_store_dead_letter_requeue(self->store, items, n, now)
                     : pt_store_dead_letter_drop(self->store, items, n, note, now);
        s_db(self, "admin", rc);
        if (rc != PT_STORE_OK) {
            snprintf(result, sizeof result, "%s failed after %zu of %zu dead letters; run it again",
                     requeue ? "requeue" : "drop", changed.n, list.n);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), result, in->identity);
            goto done;
        }
        for (size_t i = 0, j = first; i < n && j < list.n; j++) {
            const pt_store_dead_letter_t *d = &list.items[j];
            if (d->delivery_id != items[i].delivery_id)
                continue;
            if (items[i].result == PT_STORE_OK) {
                s_dead_collect(d, &changed);
                if (requeue)
                    pt_deliver_wake(self->deliver, d->recipient);
            } else {
                vanished++;   /* acknowledged (or changed by another operator) meanwhile */
            }
            i++;
        }
    }
    size_t used = (size_t)snprintf(result, sizeof result, "%s %zu dead letter%s",
                                   requeue ? "requeued" : "dropped", changed.n,
                                   changed.n == 1 ? "" : "s");
    if (skipped_expired)
        used += (size_t)snprintf(result + used, sizeof result - used,
                                 "; %zu expired left as dead letters (drop them)", skipped_expired);
    if (vanished)
        used += (size_t)snprintf(result + used, sizeof result - used,
                                 "; %zu no longer dead (acknowledged meanwhile)", vanished);
    if (more)
        snprintf(result + used, sizeof result - used, "; more remain: run it again");
    pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s%s%s", result, recipient[0] ? " for " : "",
           recipient);
    s_dead_reply(self, in, rid, &changed, result);
    goto done;
oom:
    s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_RETRY_LATER),
             "out of memory", in->identity);
done:
    s_dead_list_clear(&list);
    s_dead_list_clear(&changed);
    free(items);
    free(flat);
}

/* 1 if the request was a dead-letter operation (answered), 0 otherwise. */
static int s_handle_dead_letter(pt_broker_t *self, const pt_inbound_t *in,
                                const Puente__V1__AdminRequest *request)
{
    uint64_t rid = request->request_id;
    switch (request->op_case) {
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_LIST: {
        const Puente__V1__DeadLetterListRequest *op = request->dead_letter_list;
        size_t limit = op->limit == 0 || op->limit > S_DEAD_REPLY_MAX ? S_DEAD_REPLY_MAX : op->limit;
        if (s_dead_recipient_ok(self, in, rid, op->recipient) != 0)
            return 1;
        s_dead_list_t list = {0};
        int64_t total = 0;
        pt_store_result_t rc = pt_store_dead_letter_list(self->store, op->recipient, NULL, 0, 0,
                                                         limit, pt_now_ms(), s_dead_collect, &list);
        if (rc == PT_STORE_OK && !op->recipient[0])
            rc = pt_store_dead_letter_counts(self->store, s_dead_total, &total);
        s_db(self, "admin", rc);
        if (rc != PT_STORE_OK || list.failed) {
            s_dead_list_clear(&list);
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not read the dead letters", in->identity);
            return 1;
        }
        char result[160];
        if (op->recipient[0] || total <= (int64_t)list.n)
            snprintf(result, sizeof result, "%zu dead letter%s", list.n, list.n == 1 ? "" : "s");
        else
            snprintf(result, sizeof result, "%lld dead letters, the first %zu listed",
                     (long long)total, list.n);
        if (op->recipient[0] && list.n == limit)
            snprintf(result, sizeof result, "the first %zu dead letters listed (there may be more)",
                     list.n);
        s_dead_reply(self, in, rid, &list, result);
        s_dead_list_clear(&list);
        return 1;
    }
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_REQUEUE: {
        Puente__V1__DeadLetterRequeue *op = request->dead_letter_requeue;
        if (s_dead_selection_ok(self, in, rid, op->message_ids, op->n_message_ids, op->recipient,
                                op->all) != 0 ||
            s_dead_recipient_ok(self, in, rid, op->recipient) != 0)
            return 1;
        s_dead_change_request(self, in, rid, op->message_ids, op->n_message_ids, op->recipient,
                              NULL);
        return 1;
    }
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_DROP: {
        Puente__V1__DeadLetterDrop *op = request->dead_letter_drop;
        size_t len = strlen(op->reason);
        int note_ok = len > 0 && len <= S_DEAD_NOTE_MAX &&
                      pt_utf8_valid((const uint8_t *)op->reason, len);
        for (size_t i = 0; note_ok && i < len; i++)
            note_ok = (unsigned char)op->reason[i] >= 0x20 && op->reason[i] != 0x7f;
        if (!note_ok) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "drop needs a reason: 1-500 bytes of UTF-8 text on one line",
                     in->identity);
            return 1;
        }
        if (s_dead_selection_ok(self, in, rid, op->message_ids, op->n_message_ids, op->recipient,
                                op->all) != 0 ||
            s_dead_recipient_ok(self, in, rid, op->recipient) != 0)
            return 1;
        s_dead_change_request(self, in, rid, op->message_ids, op->n_message_ids, op->recipient,
                              op->reason);
        return 1;
    }
    default: return 0;
    }
}

static void s_handle_admin(pt_broker_t *self, const pt_inbound_t *in,
                           const Puente__V1__AdminRequest *request)
{
    char result[512];
    uint64_t rid = request->request_id;
    if (strcmp(in->identity, PT_OPERATOR_ID) != 0) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_NOT_PERMITTED),
                 "administration needs the operator identity", in->identity);
        return;
    }
    if (s_handle_admin_ops(self, in, request) || s_handle_dead_letter(self, in, request))
        return;
    if (s_handle_key_admin(self, in, request))
        return;
    if (request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_ORG_ADD) {
        const Puente__V1__OrgKeys *keys = request->org_add;
        pt_store_org_t org = {0};
        if (!pt_org_id_valid(keys->org_id) || strcmp(keys->org_id, PT_OPERATOR_ID) == 0 ||
            strcmp(keys->org_id, "broker") == 0 || keys->sign_public.len != 32 ||
            keys->seal_public.len != 32 || keys->curve_public.len != 32) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "org_add needs a valid organisation id (CC-NAME) and three 32-byte keys",
                     in->identity);
            return;
        }
        if (s_service_types_join(keys, org.service_types, sizeof org.service_types) != 0) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "org_add: service types are 1-64 characters of a-z 0-9 _ (at most 512 "
                     "characters together)",
                     in->identity);
            return;
        }
        snprintf(org.org_id, sizeof org.org_id, "%s", keys->org_id);
        memcpy(org.sign_public, keys->sign_public.data, 32);
        memcpy(org.seal_public, keys->seal_public.data, 32);
        memcpy(org.curve_public, keys->curve_public.data, 32);
        org.enabled = 1;
        pt_sign_key_t *check = pt_sign_key_from_public(org.sign_public, 32);
        pt_seal_key_t *check_seal = pt_seal_key_from_public(org.seal_public, 32);
        int keys_ok = check && check_seal;
        pt_sign_key_destroy(&check);
        pt_seal_key_destroy(&check_seal);
        if (!keys_ok) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD), "org_add: a public key is not valid",
                     in->identity);
            return;
        }
        pt_store_result_t rc = pt_store_org_put(self->store, &org);
        if (rc != PT_STORE_OK || pt_directory_put_org(self->directory, &org) != 0) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not store the organisation", in->identity);
            return;
        }
        /* Issue 6: its key history (new keys end the previous set now). */
        if (pt_directory_load_key_sets(self->directory, self->store, org.org_id) != PT_STORE_OK)
            pt_log(PT_LOG_ERROR, "admin", NULL, NULL,
                   "could not load the key history of %s; send SIGHUP", org.org_id);
        snprintf(result, sizeof result, "organisation %s registered", org.org_id);
        pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        s_admin_reply(self, in, rid, result);
    } else if (request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD) {
        const Puente__V1__AgreementSpec *spec = request->agreement_add;
        int valid = spec->agreement_id[0] && strlen(spec->agreement_id) < PT_STORE_TEXT_MAX &&
                    pt_directory_org(self->directory, spec->org_a) &&
                    pt_directory_org(self->directory, spec->org_b) &&
                    strcmp(spec->org_a, spec->org_b) != 0 && spec->n_purposes > 0 &&
                    spec->n_message_types > 0 &&
                    (spec->valid_until_ms == 0 || spec->valid_until_ms > spec->valid_from_ms);
        for (size_t i = 0; valid && i < spec->n_purposes; i++)
            valid = pt_purpose_valid(spec->purposes[i]);
        char **field_sets = NULL;
        if (valid && s_field_sets_join(spec, &field_sets) != 0) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "agreement_add: a field set needs a known purpose (once) and 1-64 field "
                     "paths of a-z 0-9 _ . (at most 64 characters each)",
                     in->identity);
            return;
        }
        if (!valid) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "agreement_add needs an id, two distinct registered organisations, known "
                     "purposes, message types and a valid period",
                     in->identity);
            return;
        }
        pt_store_agreement_t agreement = {0};
        snprintf(agreement.agreement_id, sizeof agreement.agreement_id, "%s", spec->agreement_id);
        snprintf(agreement.org_a, sizeof agreement.org_a, "%s", spec->org_a);
        snprintf(agreement.org_b, sizeof agreement.org_b, "%s", spec->org_b);
        agreement.purposes = (const char *const *)spec->purposes;
        agreement.n_purposes = spec->n_purposes;
        agreement.message_types = (const char *const *)spec->message_types;
        agreement.n_message_types = spec->n_message_types;
        agreement.valid_from_ms = spec->valid_from_ms;
        agreement.valid_until_ms = spec->valid_until_ms;
        agreement.field_sets = (const char *const *)field_sets;
        agreement.n_field_sets = spec->n_field_sets;
        agreement.retention_days = spec->retention_days > INT32_MAX ? INT32_MAX
                                                                    : (int32_t)spec->retention_days;
        int stored = pt_store_agreement_put(self->store, &agreement) == PT_STORE_OK &&
                     pt_directory_put_agreement(self->directory, &agreement) == 0;
        s_field_sets_free(field_sets, spec->n_field_sets);
        if (!stored) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not store the agreement", in->identity);
            return;
        }
        snprintf(result, sizeof result, "agreement %s between %s and %s registered",
                 agreement.agreement_id, agreement.org_a, agreement.org_b);
        pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        s_admin_reply(self, in, rid, result);
    } else if (request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_AUDITOR_ADD) {
        const Puente__V1__AuditorSpec *spec = request->auditor_add;
        pt_store_auditor_t auditor = {0};
        int valid = spec->auditor_id[0] && strlen(spec->auditor_id) <= PT_DIRECTORY_AUDITOR_ID_MAX &&
                    spec->sign_public.len == 32 && spec->curve_public.len == 32 &&
                    spec->n_scope > 0;
        /* Same shape as organisation ids (CC-NAME): the SDK keeps auditor keys under
           <keys>/auditors/<ID>/ and loads them like an organisation's. */
        valid = valid && pt_org_id_valid(spec->auditor_id) &&
                strcmp(spec->auditor_id, PT_OPERATOR_ID) != 0 &&
                strcmp(spec->auditor_id, "broker") != 0;
        size_t used = 0;
        for (size_t i = 0; valid && i < spec->n_scope; i++) {
            const char *e = spec->scope[i];
            valid = (strlen(e) == 2 || pt_org_id_valid(e)) && !strchr(e, ',') &&
                    used + strlen(e) + 2 < sizeof auditor.scope;
            if (valid)
                used += (size_t)snprintf(auditor.scope + used, sizeof auditor.scope - used, "%s%s",
                                         i ? "," : "", e);
        }
        pt_sign_key_t *check = valid ? pt_sign_key_from_public(spec->sign_public.data, 32) : NULL;
        valid = valid && check;
        pt_sign_key_destroy(&check);
        if (!valid) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_INVALID_FIELD),
                     "auditor_add needs an id like GT-OMBUDS (at most 24 characters), a scope of country codes "
                     "or organisation ids, and two 32-byte public keys",
                     in->identity);
            return;
        }
        snprintf(auditor.auditor_id, sizeof auditor.auditor_id, "%s", spec->auditor_id);
        memcpy(auditor.sign_public, spec->sign_public.data, 32);
        memcpy(auditor.curve_public, spec->curve_public.data, 32);
        if (pt_store_auditor_put(self->store, &auditor) != PT_STORE_OK ||
            pt_directory_put_auditor(self->directory, &auditor) != 0) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "could not store the auditor", in->identity);
            return;
        }
        snprintf(result, sizeof result, "auditor %s registered with scope %.400s",
                 auditor.auditor_id, auditor.scope);
        pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        s_admin_reply(self, in, rid, result);
    } else if (request->op_case == PUENTE__V1__ADMIN_REQUEST__OP_RETENTION_RUN) {
        const Puente__V1__RetentionRun *run = request->retention_run;
        int64_t now = run->now_ms > 0 ? run->now_ms : pt_now_ms();
        /* batch > 0 (issue 6): one bounded step; the client repeats it. */
        size_t step = run->batch > 0 && run->batch < 1000 ? run->batch : 1000;
        size_t deleted = 0, batch = 0;
        pt_store_result_t rc;
        do {
            rc = pt_store_retention_run(self->store, now, step, &batch);
            deleted += batch;
        } while (rc == PT_STORE_OK && batch == step && run->batch == 0);
        int64_t remaining = 0;
        if (rc == PT_STORE_OK && run->count_remaining)
            rc = pt_store_retention_pending(self->store, now, &remaining);
        if (rc != PT_STORE_OK) {
            s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid,
                     REJ(REJECT_RETRY_LATER), "retention run failed; run it again", in->identity);
            return;
        }
        snprintf(result, sizeof result, "retention: deleted the payloads of %zu messages", deleted);
        if (deleted > 0 || run->batch == 0)
            pt_log(PT_LOG_INFO, "admin", NULL, NULL, "%s", result);
        Puente__V1__RetentionProgress progress = PUENTE__V1__RETENTION_PROGRESS__INIT;
        progress.deleted = deleted;
        progress.remaining = (uint64_t)remaining;
        progress.counted = run->count_remaining;
        Puente__V1__AdminReply reply = PUENTE__V1__ADMIN_REPLY__INIT;
        reply.request_id = rid;
        reply.result = result;
        reply.retention = &progress;
        s_admin_send(self, in, &reply);
    } else {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, REJ(REJECT_MALFORMED),
                 "unknown admin operation", in->identity);
    }
}

/* Audit log requests (audit.h): the answer is a packed frame or a reject. */
static void s_handle_audit(pt_broker_t *self, const pt_inbound_t *in,
                           const Puente__V1__ClientFrame *frame)
{
    pt_audit_answer_t answer;
    uint64_t rid = 0;
    if (frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_CHECKPOINT) {
        rid = frame->checkpoint->request_id;
        pt_audit_checkpoint_request(self->audit, frame->checkpoint, &answer);
    } else if (frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_PROOF) {
        rid = frame->proof->request_id;
        pt_audit_proof_request(self->audit, frame->proof, &answer);
    } else {
        rid = frame->audit->request_id;
        pt_audit_query(self->audit, in->identity, frame->audit, &answer);
    }
    if (answer.frame) {
        if (pt_transport_send(self->transport, in->routing_id, in->routing_id_len, answer.frame,
                              answer.len) != 0)
            pt_log(PT_LOG_DEBUG, "broker", NULL, NULL, "reply dropped: peer gone");
    } else {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, rid, answer.code,
                 answer.reason, in->identity);
    }
    pt_audit_answer_clear(&answer);
}

/* --- dispatch ----------------------------------------------------------------- */

/* Pool item: decodes received frame i and, if it is a submission, runs stages
   1-3 on it. Reads only the frame, the decode limits and the directory. */
static void s_prepare_frame(size_t i, void *arg)
{
    pt_broker_t *self = arg;
    const pt_inbound_t *in = &self->inbound[i];
    s_prepared_t *pre = &self->prepared[i];
    memset(pre, 0, sizeof *pre);
    if (in->status != PT_INBOUND_OK)
        return;
    pre->decode_rc = pt_decode_message(&puente__v1__client_frame__descriptor, in->data, in->len,
                                       &self->limits, &pre->decoded, pre->why, sizeof pre->why);
    if (pre->decode_rc != PT_DECODE_OK)
        return;
    const Puente__V1__ClientFrame *frame = (const Puente__V1__ClientFrame *)pre->decoded;
    if (frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT)
        s_precheck(self, in, frame->submit, pre);
}

static void s_prepared_clear(s_prepared_t *pre)
{
    if (pre->header)
        puente__v1__header__free_unpacked(pre->header, NULL);
    pre->header = NULL;
    pt_decode_free(&pre->decoded);
}

/* Submission rate (admission.h): every submit frame of an identity takes a token, in
   arrival order on the loop thread, whatever it holds. Runs after the pool
   decoded and verified the frame (the reject carries the message id the client
   waits for); what it saves is the database work, the commit and the recipients.
   1 = refused (answered here). */
static int s_rate_limited(pt_broker_t *self, const pt_inbound_t *in, const s_prepared_t *pre)
{
    int64_t retry_ms = 0;
    if (pt_admission_submit_take(self->admission, in->identity, pt_now_ms(), &retry_ms))
        return 0;
    char reason[200];
    snprintf(reason, sizeof reason,
             "%s is over its rate of %g submissions per second (burst %g); nothing was stored; "
             "resubmit in %lld ms or later",
             in->identity[0] ? in->identity : "this identity", self->config.submit_rate,
             self->config.submit_burst, (long long)retry_ms);
    const Puente__V1__Header *h = pre->header;
    s_count(self, "limits", "rejected");
    s_reject(self, in->routing_id, in->routing_id_len, h ? h->message_id.data : NULL,
             h ? h->message_id.len : 0, 0, REJ(REJECT_RATE_LIMITED), reason, in->identity);
    return 1;
}

/* Runs frame in through the pipeline, in arrival order, with what the pool
   prepared. stale: the directory changed since the pool verified it (an admin
   request earlier in this pass), so stages 1-3 are run again here. */
/* --- other brokers (issue 9) ------------------------------------------------------ */

/* After an operator's request that may have changed organisations, keys, agreements
   or auditors, tells the other brokers to reload their directory (they skip
   nothing: this broker's own notification is skipped by itself). Changes made
   with SQL behind the brokers' backs still need SIGHUP, as with one broker. */
static void s_admin_notify(pt_broker_t *self, const pt_inbound_t *in,
                           const Puente__V1__AdminRequest *request)
{
    if (strcmp(in->identity, PT_OPERATOR_ID) != 0)
        return;
    switch (request->op_case) {
    case PUENTE__V1__ADMIN_REQUEST__OP_ORG_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_ORG_SHOW:
    case PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_QUEUE_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_STATUS:
    case PUENTE__V1__ADMIN_REQUEST__OP_RETENTION_RUN:
    case PUENTE__V1__ADMIN_REQUEST__OP_KEY_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_LIST:
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_REQUEUE:
    case PUENTE__V1__ADMIN_REQUEST__OP_DEAD_LETTER_DROP:
        return;   /* read the directory, or do not touch it */
    default:
        break;    /* a change, or an operation this list does not know yet */
    }
    pt_store_result_t rc = pt_store_notify(self->store, PT_STORE_CHANNEL_DIRECTORY, "admin");
    if (rc != PT_STORE_OK)
        pt_log(PT_LOG_WARN, "admin", NULL, NULL,
               "could not tell the other brokers to reload their directory (%s); SIGHUP them",
               pt_store_last_error(self->store));
}

/* A notification from the session: another broker stored deliveries or notices
   for an organisation, gave up its claims, or changed the directory. Our own
   (sent by our store's connection) are skipped: the loop acted on them already. */
static void s_on_notify(const char *channel, const char *payload, int sender_pid, void *arg)
{
    pt_broker_t *self = arg;
    if (sender_pid != 0 && sender_pid == pt_store_backend_pid(self->store))
        return;
    if (strcmp(channel, PT_STORE_CHANNEL_DELIVERY) == 0)
        pt_deliver_wake(self->deliver, payload);
    else if (strcmp(channel, PT_STORE_CHANNEL_NOTICE) == 0)
        self->notices_waiting = 1;
    else if (strcmp(channel, PT_STORE_CHANNEL_DIRECTORY) == 0)
        pt_directory_request_reload();
}

static void s_dispatch(pt_broker_t *self, const pt_inbound_t *in, s_prepared_t *pre, int stale)
{
    if (in->status != PT_INBOUND_OK || pre->decode_rc != PT_DECODE_OK)
        s_count(self, "decode", "rejected");
    switch (in->status) {
    case PT_INBOUND_EMPTY:
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_MALFORMED),
                 "empty frame", in->identity);
        return;
    case PT_INBOUND_EXTRA_FRAMES:
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_MALFORMED),
                 "a message must be exactly one frame", in->identity);
        return;
    case PT_INBOUND_TOO_LARGE: {
        char reason[120];
        snprintf(reason, sizeof reason, "frame of %zu bytes is over the limit of %zu", in->len,
                 self->config.max_frame_bytes);
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_TOO_LARGE),
                 reason, in->identity);
        return;
    }
    case PT_INBOUND_OK:
        break;
    }
    pt_decode_result_t rc = pre->decode_rc;
    if (rc == PT_DECODE_TRUNCATED) {
        char reason[256];
        snprintf(reason, sizeof reason,
                 "the frame's %zu bytes end inside a field (%s): it was cut off; send the "
                 "whole frame",
                 in->len, pre->why);
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_TRUNCATED),
                 reason, in->identity);
        return;
    }
    if (rc != PT_DECODE_OK) {
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0,
                 rc == PT_DECODE_TOO_LARGE ? REJ(REJECT_TOO_LARGE) : REJ(REJECT_MALFORMED),
                 pre->why, in->identity);
        return;
    }
    const Puente__V1__ClientFrame *frame = (const Puente__V1__ClientFrame *)pre->decoded;
    if (!s_connection_admitted(self, in, pt_now_ms())) {
        /* request_id 0 without a message id answers whatever the client waits for;
           a submission gets its message id (the pool decoded the header). */
        const Puente__V1__Header *h =
            frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT ? pre->header : NULL;
        pt_deliver_detach(self->deliver, in->identity, in->routing_id, in->routing_id_len);
        s_reject(self, in->routing_id, in->routing_id_len, h ? h->message_id.data : NULL,
                 h ? h->message_id.len : 0, 0,
                 REJ(REJECT_UNAUTHENTICATED),
                 "this connection is no longer admitted: the organisation was disabled, or "
                 "its CURVE key was revoked or its window ended (connect with the current keys)",
                 in->identity);
        return;
    }
    switch (frame->body_case) {
    case PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT:
        if (stale || !pre->checked) {
            if (pre->header)
                puente__v1__header__free_unpacked(pre->header, NULL);
            s_precheck(self, in, frame->submit, pre);
        }
        if (s_rate_limited(self, in, pre))
            break;
        s_handle_submit(self, in, frame->submit, pre);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_ACK:
        s_handle_ack(self, in, frame->ack);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_HELLO:
        s_handle_hello(self, in, frame->hello);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_HEARTBEAT: {
        Puente__V1__Heartbeat beat = PUENTE__V1__HEARTBEAT__INIT;
        beat.time_ms = pt_now_ms();
        Puente__V1__BrokerFrame reply = PUENTE__V1__BROKER_FRAME__INIT;
        reply.body_case = PUENTE__V1__BROKER_FRAME__BODY_HEARTBEAT;
        reply.heartbeat = &beat;
        s_send_frame(self, in->routing_id, in->routing_id_len, &reply);
        break;
    }
    case PUENTE__V1__CLIENT_FRAME__BODY_DIRECTORY:
        s_handle_directory(self, in, frame->directory);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_TRAIL:
        s_handle_trail(self, in, frame->trail);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_ADMIN:
        s_handle_admin(self, in, frame->admin);
        s_admin_notify(self, in, frame->admin);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_OVERDUE:
        s_handle_overdue(self, in, frame->overdue);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_RECIPIENTS:
        s_handle_recipients(self, in, frame->recipients);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_NOTICE_ACK:
        s_handle_notice_ack(self, in, frame->notice_ack);
        break;
    case PUENTE__V1__CLIENT_FRAME__BODY_CHECKPOINT:
    case PUENTE__V1__CLIENT_FRAME__BODY_PROOF:
    case PUENTE__V1__CLIENT_FRAME__BODY_AUDIT:
        s_handle_audit(self, in, frame);
        break;
    default:
        s_reject(self, in->routing_id, in->routing_id_len, NULL, 0, 0, REJ(REJECT_MALFORMED),
                 "frame has no known body", in->identity);
        break;
    }
}

/* --- life cycle ---------------------------------------------------------------- */

static int s_sleep_ms(int ms, volatile sig_atomic_t *stop)
{
    for (int waited = 0; waited < ms && !*stop; waited += 100) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return *stop ? -1 : 0;
}

static int s_load_operator(pt_broker_t *self, char *err, size_t err_len)
{
    char why[256] = "";
    pt_keyset_t *operator_keys = pt_keyset_load(self->config.keys_dir, PT_OPERATOR_ID, 0, why,
                                                sizeof why);
    if (!operator_keys) {
        pt_log(PT_LOG_WARN, "broker", NULL, NULL,
               "no operator keys in %s/operator (%s): administration is disabled",
               self->config.keys_dir, why);
        return 0;
    }
    int rc = pt_directory_add_operator(self->directory, pt_keyset_curve_public(operator_keys));
    pt_keyset_destroy(&operator_keys);
    if (rc != 0)
        snprintf(err, err_len, "out of memory");
    return rc;
}

/* The default instance id: "HOSTNAME:PORT" (the endpoint's port; the whole
   endpoint when it has none, e.g. ipc://). Two brokers on one host bind different
   endpoints, and a broker restarted on the same endpoint gets its id back, so it
   resumes its own claims at once instead of waiting for their lease to end. */
static void s_default_instance(const char *endpoint, char *out, size_t cap)
{
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    const char *colon = endpoint ? strrchr(endpoint, ':') : NULL;
    int port = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1);
    snprintf(out, cap, "%s:%s", host, port ? colon + 1 : endpoint ? endpoint : "");
}

/* --- queue backlog: metrics and the queue quota --------------------------------- */

/* With a queue quota, sets the quota's counts to the backlog in rows. */
static void s_quota_from(pt_broker_t *self, const pt_store_queue_stat_t *rows, size_t n)
{
    if (!pt_admission_queue_enabled(self->admission))
        return;
    pt_admission_queue_reset(self->admission);
    for (size_t i = 0; i < n; i++)
        pt_admission_queue_set(self->admission, rows[i].recipient, rows[i].depth);
}

/* At start, before the backlog reader: every recipient's backlog read on the
   loop's store (one grouped query, O(backlog)) and, with a queue quota, the
   quota's counts set to it. */
static pt_store_result_t s_queue_sync(pt_broker_t *self)
{
    pt_backlog_snapshot_t snap = {0};
    pt_store_result_t rc = pt_backlog_read_queues(self->store, &snap);
    s_db(self, "query", rc);
    if (rc == PT_STORE_OK && snap.queues_rc == PT_STORE_OK)
        s_quota_from(self, snap.queues, snap.n_queues);
    pt_backlog_snapshot_clear(&snap);
    return rc;
}

pt_broker_t *pt_broker_new(const pt_broker_config_t *config, volatile sig_atomic_t *stop,
                           char *err, size_t err_len)
{
    pt_broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->limits = pt_decode_default_limits(config->max_frame_bytes);
    self->started_ms = pt_now_ms();
    char why[256] = "";
    self->keys = pt_keyset_load(config->keys_dir, "broker", 1, why, sizeof why);
    if (!self->keys) {
        snprintf(err, err_len, "cannot load the broker's keys from %s/broker: %s",
                 config->keys_dir, why);
        goto error;
    }
    self->workers = pt_workers_new(pt_workers_default());
    if (!self->workers) {
        snprintf(err, err_len, "cannot start the worker threads");
        goto error;
    }
    self->receipts = pt_receipts_new(pt_keyset_sign(self->keys), PT_BROKER_BATCH_MAX);
    self->acks = pt_acks_new(PT_BROKER_BATCH_MAX);
    if (!self->receipts || !self->acks) {
        snprintf(err, err_len, "out of memory");
        goto error;
    }
    self->directory = pt_directory_new();
    if (!self->directory || s_load_operator(self, err, err_len) != 0)
        goto error;

    /* PostgreSQL may still be starting (or failing over): wait for it. */
    for (int attempt = 0; !self->store; attempt++) {
        self->store = pt_store_new(config->conninfo, why, sizeof why);
        if (self->store)
            break;
        if (attempt % 10 == 0)
            pt_log(PT_LOG_WARN, "store", NULL, NULL, "database not reachable yet: %s", why);
        if (s_sleep_ms(attempt < 10 ? 200 : 1000, stop) != 0) {
            snprintf(err, err_len, "stopped while waiting for the database");
            goto error;
        }
    }
    if (pt_store_migrate(self->store, config->sql_dir, why, sizeof why) != 0) {
        snprintf(err, err_len, "migrations failed: %s", why);
        goto error;
    }
    /* The role the broker works as (issue 2): refused start without a configured
       one, warnings for a superuser login or rights of the login role. */
    if (pt_store_role_check(self->store, config->db_role, why, sizeof why) != 0) {
        snprintf(err, err_len, "database role: %s", why);
        goto error;
    }
    /* Issue 9: this broker's identity among those sharing the database, and its
       own session for wake-ups and the checkpoint signer lock. A session that
       cannot connect now keeps trying from the loop (polling covers meanwhile). */
    char instance[PT_STORE_INSTANCE_MAX];
    if (config->instance_id)
        snprintf(instance, sizeof instance, "%s", config->instance_id);
    else
        s_default_instance(config->endpoint, instance, sizeof instance);
    if ((config->instance_id && strlen(config->instance_id) >= sizeof instance) ||
        pt_store_set_instance(self->store, instance,
                              config->delivery_lease_ms > 0 ? config->delivery_lease_ms
                                                            : PT_STORE_DEFAULT_LEASE_MS) != 0) {
        snprintf(err, err_len, "instance id must be 1 to %d bytes", PT_STORE_INSTANCE_MAX - 1);
        goto error;
    }
    self->session = pt_store_session_new(config->conninfo, why, sizeof why);
    if (!self->session) {
        snprintf(err, err_len, "out of memory");
        goto error;
    }
    if (pt_store_session_socket(self->session) < 0)
        pt_log(PT_LOG_WARN, "store", NULL, NULL, "notification session not connected yet: %s",
               why);
    if (pt_directory_load(self->directory, self->store) != PT_STORE_OK) {
        snprintf(err, err_len, "cannot load organisations and agreements");
        goto error;
    }
    self->zmq_context = zmq_ctx_new();
    if (!self->zmq_context) {
        snprintf(err, err_len, "cannot create a ZeroMQ context");
        goto error;
    }
    self->transport = pt_transport_new(self->zmq_context, config->endpoint, self->keys,
                                       self->directory, config->max_frame_bytes, err, err_len);
    if (!self->transport)
        goto error;
    pt_transport_set_max_connections(self->transport, config->max_connections);
    self->deliver = pt_deliver_new(self->store, self->transport);
    self->audit = pt_audit_new(self->store, pt_keyset_sign(self->keys), self->directory);
    pt_admission_config_t limits = {.submit_rate = config->submit_rate,
                                    .submit_burst = config->submit_burst,
                                    .queue_quota = config->queue_quota};
    self->admission = pt_admission_new(&limits);
    if (!self->deliver || !self->audit || !self->admission) {
        snprintf(err, err_len, "out of memory");
        goto error;
    }
    pt_deliver_set_max_attempts(self->deliver, config->max_delivery_attempts);
    pt_deliver_configure(self->deliver, config->delivery_poll_ms, config->delivery_lease_ms);
    pt_store_set_delivery_window(self->store, config->delivery_window);
    pt_audit_set_session(self->audit, self->session);
    pt_audit_set_cadence(self->audit, config->checkpoint_events, config->checkpoint_seconds);
    /* The queue quota's counts start from the database's backlog. */
    if (pt_admission_queue_enabled(self->admission) && s_queue_sync(self) != PT_STORE_OK) {
        snprintf(err, err_len, "cannot read the delivery queues: %s",
                 pt_store_last_error(self->store));
        goto error;
    }
    /* The queue figures from then on: read off the loop (backlog.h). */
    if ((config->families || pt_admission_queue_enabled(self->admission)) &&
        !(self->backlog = pt_backlog_new(config->conninfo, config->db_role, S_QUEUE_STATS_MS,
                                         why, sizeof why))) {
        snprintf(err, err_len, "%s", why);
        goto error;
    }
    pt_log(PT_LOG_INFO, "broker", NULL, NULL,
           "puente-broker %s listening on %s with %zu organisations, %zu crypto threads, "
           "instance %s",
           PT_BROKER_VERSION, config->endpoint, pt_directory_org_count(self->directory),
           pt_workers_parallelism(self->workers), pt_store_instance(self->store));
    pt_log(PT_LOG_INFO, "broker", NULL, NULL,
           "limits: max_connections %zu, submit_rate %g/s burst %g per organisation, "
           "queue_quota %lld per recipient, max_frame %zu (inbound queue %d frames per "
           "connection)",
           config->max_connections, config->submit_rate, config->submit_burst,
           (long long)config->queue_quota, config->max_frame_bytes,
           pt_transport_rcvhwm(config->max_frame_bytes));
    return self;
error:
    pt_broker_destroy(&self);
    return NULL;
}

/* puente_key_expiry_days{org}: days until the current key set of each
   organisation is due for replacement (its revocation time, or key_rotation_days
   after its valid_from); +Inf when neither applies. From the directory only. */
static void s_key_expiry(pt_broker_t *self, int64_t now)
{
    pt_broker_metrics_t *m = self->config.families;
    const double day_ms = 86400.0 * 1000.0;
    for (size_t i = 0; i < pt_directory_org_count(self->directory); i++) {
        const pt_directory_org_t *org = pt_directory_org_at(self->directory, i);
        const pt_directory_key_set_t *cur = pt_directory_current_key_set(org);
        if (!cur)
            continue;
        double end = INFINITY;
        if (self->config.key_rotation_days > 0)
            end = (double)cur->window.valid_from_ms + self->config.key_rotation_days * day_ms;
        if (cur->window.revoked_at_ms != 0 && (double)cur->window.revoked_at_ms < end)
            end = (double)cur->window.revoked_at_ms;
        pt_metric_set(m->key_expiry_days, (const char *const[]){org->org_id},
                      isinf(end) ? INFINITY : (end - (double)now) / day_ms);
    }
}

/* Once a second: the connection gauges; and in the first loop pass after the
   backlog reader made a snapshot (backlog.h), the queue gauges for every
   registered organisation (0 when its queue is empty), the queue quota's
   counts, the dead-letter gauges and the checkpoint age. The loop never waits
   for the database here. Label values come from the directory only. */
static void s_queue_stats(pt_broker_t *self, int64_t now)
{
    pt_broker_metrics_t *m = self->config.families;
    if (m && now - self->last_stats_ms >= S_QUEUE_STATS_MS) {
        self->last_stats_ms = now;
        s_key_expiry(self, now);
        pt_metric_set(m->connected_orgs, NULL, (double)pt_deliver_receiving_count(self->deliver));
        pt_metric_set(m->connections, NULL, (double)pt_transport_connections(self->transport));
        uint64_t refused = pt_transport_refused_count(self->transport);
        if (refused > self->refused_counted)
            pt_metric_add(m->connections_refused, NULL, (double)(refused - self->refused_counted));
        self->refused_counted = refused;
    }
    pt_backlog_snapshot_t snap;
    if (!pt_backlog_take(self->backlog, &snap))
        return;
    if (snap.queues_rc == PT_STORE_OK) {
        s_quota_from(self, snap.queues, snap.n_queues);
        for (size_t i = 0; m && i < pt_directory_org_count(self->directory); i++) {
            const char *org = pt_directory_org_at(self->directory, i)->org_id;
            double depth = 0, age = 0;
            for (size_t k = 0; k < snap.n_queues; k++) {
                if (strcmp(snap.queues[k].recipient, org) == 0) {
                    depth = (double)snap.queues[k].depth;
                    int64_t oldest = snap.queues[k].oldest_stored_at_ms;
                    age = oldest > 0 && oldest < now ? (double)(now - oldest) / 1000.0 : 0;
                }
            }
            pt_metric_set(m->queue_depth, (const char *const[]){org}, depth);
            pt_metric_set(m->queue_oldest_age, (const char *const[]){org}, age);
        }
    }
    if (m && snap.dead_rc == PT_STORE_OK)
        s_dead_letter_gauges(self, m, &snap);
    if (m && snap.checkpoint_rc == PT_STORE_OK)
        pt_metric_set(m->checkpoint_age, NULL,
                      snap.checkpoint_at_ms < now ? (double)(now - snap.checkpoint_at_ms) / 1000.0
                                                  : 0);
    pt_backlog_snapshot_clear(&snap);
}

/* One loop pass over self->inbound: decode and verify it on the pool; run the
   rest of the pipeline in arrival order; commit it together, then the acks. */
/* Stages after the pool's (s_prepare_frame) for every frame of self->inbound, in
   arrival order, on the loop thread: submissions join self->pending (committed by
   the next s_flush), acks self->acks, everything else is answered here. */
static void s_dispatch_inbound(pt_broker_t *self)
{
    int stale = 0;
    for (size_t i = 0; i < self->n_inbound; i++) {
        pt_inbound_t *in = &self->inbound[i];
        s_prepared_t *pre = &self->prepared[i];
        s_count(self, "receive", "ok");
        if (self->n_pending == PT_BROKER_BATCH_MAX)
            s_flush(self);
        s_dispatch(self, in, pre, stale);
        if (pre->decoded &&
            ((const Puente__V1__ClientFrame *)pre->decoded)->body_case ==
                PUENTE__V1__CLIENT_FRAME__BODY_ADMIN)
            stale = 1;
        s_prepared_clear(pre);
        pt_inbound_release(in);
    }
    self->n_inbound = 0;
}

/* Whether the router socket holds a frame the next pass would read (ZMQ_EVENTS;
   an error counts as waiting, which keeps the overlapped order). */
static int s_frames_waiting(pt_broker_t *self)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(pt_transport_router(self->transport), ZMQ_EVENTS, &events, &len) != 0)
        return 1;
    return (events & ZMQ_POLLIN) != 0;
}

/* One pass, start to end: what pt_broker_pass (the tests' seam) runs. */
static void s_pass(pt_broker_t *self)
{
    pt_workers_run(self->workers, self->n_inbound, s_prepare_frame, self);
    s_dispatch_inbound(self);
    s_flush(self);
    s_flush_acks(self);
}

/* The loop's pass, overlapped (issue 8): the pool decodes and verifies this pass's
   frames while the loop thread commits the previous pass's submissions and acks
   and sends their receipts, then the loop thread takes part in what is left of
   the verification and dispatches. The new submissions wait in self->pending for
   the next pass, which the loop runs at once (pt_broker_run polls without a
   timeout while anything is pending). What the pool reads (the directory, the
   configuration, self->inbound) is written only by the loop thread's own stages:
   s_flush and s_flush_acks write none of it; the receipts' one signature per batch
   is made on the loop thread (receipt.h), not on the pool.
   When no frame is waiting on the socket there is nothing to verify while the next
   pass commits, so this pass commits its own submissions and acks at once: their
   receipts go out now, and the delivery pass that follows in the same loop
   iteration offers them, instead of both waiting a whole iteration (under light
   load that iteration was most of a message's latency: README "Performance"). */
static void s_pass_overlapped(pt_broker_t *self)
{
    pt_workers_start(self->workers, self->n_inbound, s_prepare_frame, self);
    s_flush(self);
    s_flush_acks(self);
    pt_workers_wait(self->workers);
    s_dispatch_inbound(self);
    if ((self->n_pending > 0 || pt_acks_count(self->acks) > 0) && !s_frames_waiting(self)) {
        s_flush(self);
        s_flush_acks(self);
    }
}

void pt_broker_pass(pt_broker_t *self, pt_inbound_t *inbound, size_t n)
{
    self->received_ms = pt_now_ms();
    self->n_inbound = 0;
    for (size_t i = 0; i < n; i++) {
        if (self->n_inbound < PT_BROKER_BATCH_MAX)
            self->inbound[self->n_inbound++] = inbound[i];
        else
            pt_inbound_release(&inbound[i]);
        inbound[i].data = NULL;
    }
    s_pass(self);
}

/* Reads the session's notifications (after a reconnect, when some may have been
   missed: every delivery pass, the notices and the directory). */
static void s_session_poll(pt_broker_t *self)
{
    int reconnected = 0;
    pt_store_result_t rc =
        pt_store_session_poll(self->session, pt_now_ms(), s_on_notify, self, &reconnected);
    if (reconnected) {
        pt_log(PT_LOG_INFO, "store", NULL, NULL, "notification session connected");
        pt_deliver_wake_all(self->deliver);
        pt_directory_request_reload();
        self->notices_waiting = 1;
        self->session_down = 0;
    } else if (rc != PT_STORE_OK && !self->session_down) {
        pt_log(PT_LOG_WARN, "store", NULL, NULL,
               "notification session lost (%s); polling until it is back",
               pt_store_session_error(self->session));
        self->session_down = 1;
    }
    if (self->notices_waiting) {
        self->notices_waiting = 0;
        s_notices_push(self, NULL, NULL, 0);
    }
}

/* The inbound bytes of one loop pass (see S_PASS_BYTES_MIN): at least two frames. */
static size_t s_pass_bytes_max(const pt_broker_t *self)
{
    size_t two = 2 * self->config.max_frame_bytes;
    return two > S_PASS_BYTES_MIN ? two : S_PASS_BYTES_MIN;
}

int pt_broker_run(pt_broker_t *self, volatile sig_atomic_t *stop)
{
    zmq_pollitem_t items[3] = {
        {pt_transport_router(self->transport), 0, ZMQ_POLLIN, 0},
        {pt_transport_zap(self->transport), 0, ZMQ_POLLIN, 0},
        {NULL, -1, 0, 0},
    };
    while (!*stop) {
        /* SIGHUP (main.c): between batches, so no stage sees a half-loaded directory;
           connections stay open. A failed load keeps the old directory. */
        if (pt_directory_reload_requested()) {
            pt_store_result_t reloaded = pt_directory_reload(self->directory, self->store);
            pt_log(reloaded == PT_STORE_OK ? PT_LOG_INFO : PT_LOG_ERROR, "broker", NULL, NULL,
                   reloaded == PT_STORE_OK
                       ? "reloaded the directory: %zu organisations, %zu agreements"
                       : "directory reload failed; keeping the previous one (%zu, %zu)",
                   pt_directory_org_count(self->directory),
                   pt_directory_agreement_count(self->directory));
            s_evict_receivers(self, pt_now_ms());
        }
        int64_t now = pt_now_ms();
        int64_t timeout = pt_deliver_timeout_ms(self->deliver, now);
        if (timeout > 1000)
            timeout = 1000;
        if (self->n_pending > 0 || pt_acks_count(self->acks) > 0)
            timeout = 0; /* the last pass's submissions and acks wait for their commit */
        /* The session's socket (it changes when the session reconnects). */
        items[2].fd = pt_store_session_socket(self->session);
        items[2].events = items[2].fd >= 0 ? ZMQ_POLLIN : 0;
        int rc = zmq_poll(items, items[2].fd >= 0 ? 3 : 2, (long)timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            pt_log(PT_LOG_ERROR, "broker", NULL, NULL, "poll failed: %s", zmq_strerror(errno));
            return -1;
        }
        if (items[1].revents & ZMQ_POLLIN)
            pt_transport_handle_zap(self->transport);
        /* Drain what is waiting, up to one batch, and run it through the pipeline. */
        self->n_inbound = 0;
        self->received_ms = pt_now_ms();
        size_t pass_bytes = 0;
        while (self->n_inbound < PT_BROKER_BATCH_MAX && pass_bytes < s_pass_bytes_max(self) &&
               pt_transport_recv(self->transport, &self->inbound[self->n_inbound]) > 0) {
            pass_bytes +=
                self->inbound[self->n_inbound].data ? self->inbound[self->n_inbound].len : 0;
            self->n_inbound++;
        }
        s_pass_overlapped(self);
        s_expire_sweep(self, pt_now_ms());
        s_dead_letter_sweep(self, pt_now_ms());
        s_session_poll(self);
        pt_audit_tick(self->audit, pt_now_ms(), 0);
        pt_store_result_t delivered = pt_deliver_run(self->deliver, pt_now_ms());
        if (delivered == PT_STORE_UNAVAILABLE)
            pt_log(PT_LOG_WARN, "deliver", NULL, NULL, "database unavailable; deliveries wait");
        if (delivered != PT_STORE_OK)   /* OK may mean no pass ran: not a sign of health */
            s_db(self, "query", delivered);
        uint64_t sent = pt_deliver_sent_count(self->deliver);
        if (self->config.families && sent > self->delivered_counted)
            pt_metric_add(self->config.families->messages, (const char *const[]){"deliver", "ok"},
                          (double)(sent - self->delivered_counted));
        self->delivered_counted = sent;
        s_queue_stats(self, pt_now_ms());
        if (pt_now_ms() - self->last_evict_ms >= S_QUEUE_STATS_MS)
            s_evict_receivers(self, pt_now_ms());
        if (pt_now_ms() - self->last_db_ms >= S_DB_PING_MS)
            s_db(self, "query", pt_store_ping(self->store));
    }
    s_flush(self);
    s_flush_acks(self);
    pt_audit_tick(self->audit, pt_now_ms(), 1);   /* the last events get a checkpoint */
    pt_log(PT_LOG_INFO, "broker", NULL, NULL, "stopped");
    return 0;
}

void pt_broker_destroy(pt_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_broker_t *self = *self_p;
    for (size_t i = 0; i < self->n_pending; i++)
        s_pending_clear(&self->pending[i]);
    pt_backlog_destroy(&self->backlog);
    pt_receipts_destroy(&self->receipts);
    pt_acks_destroy(&self->acks);
    pt_workers_destroy(&self->workers);
    pt_deliver_destroy(&self->deliver);
    pt_audit_destroy(&self->audit);
    pt_store_session_destroy(&self->session);
    pt_admission_destroy(&self->admission);
    pt_transport_destroy(&self->transport);
    if (self->zmq_context)
        zmq_ctx_term(self->zmq_context);
    pt_store_destroy(&self->store);
    pt_directory_destroy(&self->directory);
    free(self->receivers);
    pt_keyset_destroy(&self->keys);
    free(self);
    *self_p = NULL;
}

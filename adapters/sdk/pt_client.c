/*  pt_client — one DEALER connection to the broker: hello, directory, send with
    receipt, receive/verify/open, ack, trail, admin. See puente.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <zmq.h>

#include "pt_audit_query.h"
#include "pt_endpoints.h"
#include "pt_envelope.h"
#include "puente.h"
#include "pt_decode.h"
#include "pt_notice.h"
#include "pt_receipt.h"
#include "pt_sdk_internal.h"
#include "referral.pb-c.h"
#include "tracing.pb-c.h"

#define S_RESEND_MS 2000          /* resend an unanswered request this often */
#define S_SEND_WAIT_LIST_MS 250   /* with several endpoints, a send waits at most this long for
                                     a connection, so that a lost broker is noticed in time */
#define S_RETRY_LATER_MS 500      /* pause after REJECT_RETRY_LATER or REJECT_RATE_LIMITED */
#define S_MAX_FRAME_IN (8u << 20) /* largest frame accepted from the broker */
#define S_DEFAULT_MAX_FRAME (1u << 20)
#define S_MAX_QUEUED 10000        /* deliveries held while waiting for a reply */
#define S_MAX_SEEN 200000         /* handed-over ids remembered in memory */
#define S_AGREEMENTS_TTL_MS 60000 /* refetch agreements (field sets) older than this */
#define S_INBOX_APP_ID 0x50544942 /* "PTIB": SQLite application_id of an inbox file */
#define S_INBOX_SCHEMA                                                                    \
    "CREATE TABLE IF NOT EXISTS inbox (message_id BLOB PRIMARY KEY,"                      \
    " state INTEGER NOT NULL," /* 1 handed over, 2 confirmed (acked) */                   \
    " handed_at_ms INTEGER NOT NULL, acked_at_ms INTEGER) WITHOUT ROWID"

typedef struct s_queued {
    Puente__V1__BrokerFrame *frame;
    struct s_queued *next;
} s_queued_t;

typedef struct {
    uint8_t id[PT_UUID_BYTES];
    int acked;
} s_seen_t;

typedef struct {
    char org[PT_ORG_ID_MAX + 1];
    uint8_t key_id[PT_KEY_ID_BYTES];
    pt_sign_key_t *key;
    pt_key_window_t window;
} s_history_t;

struct _pt_client_t {
    char *endpoint;     /* opts.endpoint as given: one endpoint or the list (messages) */
    char **endpoints;   /* the parsed list (pt_endpoints), in order of preference */
    size_t n_endpoints;
    size_t current;     /* endpoints[current] is where the socket connects */
    unsigned generation;          /* sockets made so far: names monitors, marks a move */
    unsigned long failovers;      /* moves to another endpoint */
    int64_t lost_since_ms;        /* 0: the socket has a working connection; else since when
                                     it has none (never had one, or lost it) */
    int64_t failover_after_ms;    /* an endpoint gets this long without a working connection
                                     before the next is tried; doubles after a whole round */
    size_t tried_in_round;        /* endpoints moved past since the last working connection */
    char *keys_dir;
    char org[PT_ORG_ID_MAX + 1];
    int receive;
    int want_notices;   /* hand notices to the application (else ack them silently) */
    int timeout_ms;
    pt_keyset_t *me;
    pt_keyset_t *broker;
    void *ctx;
    void *sock;
    void *monitor;
    uint8_t *hello_frame;
    size_t hello_len;
    int welcomed;       /* pt_client_new got the broker's Welcome */
    int auth_failed;    /* the broker's ZAP handler refused the handshake: its ZAP status
                           (400 key not admitted, 500 connection cap reached), else 0 */
    int rehello;        /* a new connection after the Welcome: the broker (maybe another one)
                           needs our Hello again; kept until the Hello went out */
    uint64_t next_request_id;
    pt_receipt_cache_t receipt_cache; /* the last batch signature verified (pt_receipt.h) */
    uint32_t max_frame_bytes;
    s_queued_t *queue_head;
    s_queued_t *queue_tail;
    size_t queue_len;
    pt_keyset_t **directory;
    size_t n_directory;
    /* Issue 6: every signing key of the organisations fetched (OrgKeys.key_sets),
       with its window, so a message signed before a rotation still verifies; and
       our own former sealing keys (<keys>/<ORG>/retired/NAME/), to open what was sealed
       to them. */
    s_history_t *history;
    size_t n_history;
    pt_seal_key_t **retired_seal;
    size_t n_retired_seal;
    Puente__V1__DirectoryEntries *entries; /* last verified directory: its agreements */
    int64_t entries_at_ms;
    uint8_t *entries_raw; /* the signed bytes of that directory and the signature */
    size_t entries_raw_len;
    uint8_t *entries_sig;
    size_t entries_sig_len;
    sqlite3 *inbox;       /* durable record of handed-over ids, or NULL */
    s_seen_t *seen;
    size_t n_seen;
    size_t cap_seen;
    char error[PUENTE_ERR_BYTES];
};

struct _pt_message_t {
    Puente__V1__BrokerFrame *frame; /* owns the envelope, or the notice */
    const Puente__V1__Notice *notice; /* a PT_CLIENT_NOTICE result: in frame; else NULL */
    Puente__V1__Header *header;
    const pt_type_t *type;
    ProtobufCMessage *body;
    uint8_t *body_bytes;
    size_t body_len;
};

/* --- Bounded decoding ---------------------------------------------------- */

/* Bytes from the socket or from another organisation are decoded under limits
   (pt_decode: wire validity, depth, counts, sizes, allocation budget). Results are
   plain malloc memory, freed with the default allocator (NULL). */
static ProtobufCMessage *s_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                  size_t len)
{
    pt_decode_limits_t limits = pt_decode_default_limits(S_MAX_FRAME_IN);
    ProtobufCMessage *msg = NULL;
    if (pt_decode_message(desc, data, len, &limits, &msg, NULL, 0) != PT_DECODE_OK)
        return NULL;
    return msg;
}

static void s_set_error(pt_client_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
}

static void s_fill_reject(pt_reject_info_t *rej, const Puente__V1__Reject *r)
{
    if (!rej)
        return;
    memset(rej, 0, sizeof *rej);
    rej->code = r->code;
    snprintf(rej->code_name, sizeof rej->code_name, "%s", puente_reject_name(r->code));
    snprintf(rej->reason, sizeof rej->reason, "%s", r->reason ? r->reason : "");
    if (r->message_id.len == PT_UUID_BYTES)
        memcpy(rej->message_id, r->message_id.data, PT_UUID_BYTES);
}

static int64_t s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : pt_now_ms() + timeout_ms;
}

/* --- Socket plumbing ----------------------------------------------------- */

static void s_drain_monitor(pt_client_t *self)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&msg) >= 6) {
            memcpy(&event, zmq_msg_data(&msg), sizeof event);
            memcpy(&value, (const uint8_t *) zmq_msg_data(&msg) + 2, sizeof value);
        }
        /* The monitor belongs to the current socket (a move makes a new one), so
           every event is about endpoints[current]. */
        int more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        while (more) {
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, self->monitor, 0) < 0) {
                zmq_msg_close(&msg);
                break;
            }
            more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->auth_failed = 0;
            self->lost_since_ms = 0;
            self->tried_in_round = 0;
            self->failover_after_ms = PUENTE_FAILOVER_AFTER_MS;
            if (self->welcomed)
                self->rehello = 1;
        }
        else if (event == ZMQ_EVENT_DISCONNECTED) {
            /* The peer closed, or missed heartbeats for ZMQ_HEARTBEAT_TIMEOUT. */
            if (!self->lost_since_ms)
                self->lost_since_ms = pt_now_ms();
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            self->auth_failed = value ? (int) value : 400;
    }
}

/* One send attempt; a failure (no connection within wait_ms) is not fatal because
   callers resend until their deadline. */
static int s_send_raw(pt_client_t *self, const uint8_t *data, size_t len, int wait_ms)
{
    if (!self->sock)
        return -1;
    if (wait_ms < 0)
        wait_ms = 0;
    zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &wait_ms, sizeof wait_ms);
    return zmq_send(self->sock, data, len, 0) < 0 ? -1 : 0;
}

static int s_pack_client_frame(const Puente__V1__ClientFrame *frame, uint8_t **out, size_t *len)
{
    size_t n = puente__v1__client_frame__get_packed_size(frame);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    puente__v1__client_frame__pack(frame, buf);
    *out = buf;
    *len = n;
    return 0;
}

static void s_failover_check(pt_client_t *self);

/* Reads the monitor's news, moves to the next endpoint when the current one has
   been without a working connection for too long, and sends a pending Hello. */
static void s_connection_upkeep(pt_client_t *self)
{
    if (self->monitor)
        s_drain_monitor(self);
    s_failover_check(self);
    /* Kept until it went out: the broker must attach us again after a reconnect. */
    if (self->rehello && self->hello_frame
        && s_send_raw(self, self->hello_frame, self->hello_len, 0) == 0)
        self->rehello = 0;
}

/* Waits up to wait_ms for one frame. 1 with *out, 0 on timeout (or when the client
   just moved to another endpoint), -2 when a signal interrupted the wait, -1 on a
   socket error. Malformed frames are dropped (the broker never sends them). */
static int s_recv_one(pt_client_t *self, int wait_ms, Puente__V1__BrokerFrame **out)
{
    *out = NULL;
    unsigned generation = self->generation;
    zmq_pollitem_t items[2] = { { self->sock, 0, ZMQ_POLLIN, 0 },
                                { self->monitor, 0, ZMQ_POLLIN, 0 } };
    int rc = zmq_poll(items, self->monitor ? 2 : 1, wait_ms);
    int poll_errno = errno;
    s_connection_upkeep(self);
    if (self->generation != generation)
        return 0; /* moved on: whatever the old socket held is offered again by the new broker */
    if (rc < 0)
        return poll_errno == EINTR ? -2 : -1;
    if (!(items[0].revents & ZMQ_POLLIN))
        return 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, self->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    int more = zmq_msg_more(&msg);
    Puente__V1__BrokerFrame *frame = NULL;
    if (!more)
        frame = (Puente__V1__BrokerFrame *) s_unpack(&puente__v1__broker_frame__descriptor,
                                                     zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    while (more) { /* the protocol is one frame per message: drop the rest */
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->sock, 0) < 0)
            more = 0;
        else
            more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
    }
    *out = frame;
    return frame ? 1 : 0;
}

/* A frame that answers nothing we wait for: deliveries are kept for recv, the
   rest (late duplicates, heartbeats, welcomes after reconnect) dropped. */
static void s_stash(pt_client_t *self, Puente__V1__BrokerFrame *frame)
{
    if (((frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_DELIVER && frame->deliver)
         || (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_NOTICE && frame->notice))
        && self->queue_len < S_MAX_QUEUED) {
        s_queued_t *q = malloc(sizeof *q);
        if (q) {
            q->frame = frame;
            q->next = NULL;
            if (self->queue_tail)
                self->queue_tail->next = q;
            else
                self->queue_head = q;
            self->queue_tail = q;
            self->queue_len++;
            return;
        }
    }
    /* A dropped delivery is offered again by the broker: nothing is lost. */
    puente__v1__broker_frame__free_unpacked(frame, NULL);
}

static Puente__V1__BrokerFrame *s_dequeue(pt_client_t *self)
{
    s_queued_t *q = self->queue_head;
    if (!q)
        return NULL;
    self->queue_head = q->next;
    if (!self->queue_head)
        self->queue_tail = NULL;
    self->queue_len--;
    Puente__V1__BrokerFrame *frame = q->frame;
    free(q);
    return frame;
}

typedef struct {
    int body_case;              /* expected answer */
    uint64_t request_id;        /* 0 = match by message id */
    const uint8_t *message_id;  /* NULL = match by request id */
    uint64_t notice_id;         /* Acked of a NoticeAck (message_id NULL) */
} s_match_t;

static int s_bytes_eq(ProtobufCBinaryData b, const uint8_t *id)
{
    return b.len == PT_UUID_BYTES && memcmp(b.data, id, PT_UUID_BYTES) == 0;
}

static uint64_t s_frame_request_id(const Puente__V1__BrokerFrame *f)
{
    switch (f->body_case) {
    case PUENTE__V1__BROKER_FRAME__BODY_RECEIPT: return f->receipt ? f->receipt->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_DIRECTORY:
        return f->directory ? f->directory->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_TRAIL: return f->trail ? f->trail->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_ADMIN: return f->admin ? f->admin->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_OVERDUE: return f->overdue ? f->overdue->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_RECIPIENTS:
        return f->recipients ? f->recipients->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_CHECKPOINT:
        return f->checkpoint ? f->checkpoint->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_PROOF: return f->proof ? f->proof->request_id : 0;
    case PUENTE__V1__BROKER_FRAME__BODY_AUDIT: return f->audit ? f->audit->request_id : 0;
    default: return 0;
    }
}

static int s_matches(const Puente__V1__BrokerFrame *f, const s_match_t *m)
{
    if (f->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        const Puente__V1__Reject *r = f->reject;
        if (!r)
            return 0;
        if (m->message_id)
            return s_bytes_eq(r->message_id, m->message_id);
        if (m->request_id)
            return r->request_id == m->request_id
                   || (r->request_id == 0 && r->message_id.len == 0);
        return r->request_id == 0 && r->message_id.len == 0;
    }
    if ((int) f->body_case != m->body_case)
        return 0;
    switch (f->body_case) {
    case PUENTE__V1__BROKER_FRAME__BODY_RECEIPT:
        return f->receipt && m->message_id && s_bytes_eq(f->receipt->message_id, m->message_id);
    case PUENTE__V1__BROKER_FRAME__BODY_ACKED:
        if (m->notice_id)
            return f->acked && f->acked->notice_id == m->notice_id;
        return f->acked && m->message_id && s_bytes_eq(f->acked->message_id, m->message_id);
    case PUENTE__V1__BROKER_FRAME__BODY_WELCOME: return f->welcome != NULL;
    default:
        /* A broker that does not echo request ids still answers in order. */
        return s_frame_request_id(f) == m->request_id || s_frame_request_id(f) == 0;
    }
}

/* Sends data, resending every S_RESEND_MS (all requests are idempotent), until an
   answer that matches m arrives or deadline passes. */
static pt_client_result_t s_request(pt_client_t *self, const uint8_t *data, size_t len,
                                    const s_match_t *m, int64_t deadline,
                                    Puente__V1__BrokerFrame **out)
{
    *out = NULL;
    int64_t next_send = 0;
    s_connection_upkeep(self); /* a broker lost while we were idle: move on before sending */
    unsigned generation = self->generation;
    for (;;) {
        int64_t now = pt_now_ms();
        if (now >= deadline)
            break;
        if (now >= next_send) {
            /* With ZMQ_IMMEDIATE a send waits for a connection. With several
               endpoints it waits briefly, so that the failover check runs. */
            int64_t wait = deadline - now < S_RESEND_MS ? deadline - now : S_RESEND_MS;
            if (self->n_endpoints > 1 && wait > S_SEND_WAIT_LIST_MS)
                wait = S_SEND_WAIT_LIST_MS;
            int sent = s_send_raw(self, data, len, (int) wait) == 0;
            /* Not sent (no connection yet): try again right after the next look. */
            next_send = sent ? pt_now_ms() + S_RESEND_MS : pt_now_ms();
        }
        now = pt_now_ms();
        int64_t until = next_send < deadline ? next_send : deadline;
        int64_t wait = until > now ? until - now : 0;
        Puente__V1__BrokerFrame *frame = NULL;
        int rc = s_recv_one(self, (int) wait, &frame);
        if (self->generation != generation) {
            /* Moved to another broker: send the (idempotent) request there at once. */
            generation = self->generation;
            next_send = 0;
        }
        if (rc == -1)
            break;
        if (rc <= 0)
            continue;
        if (s_matches(frame, m)) {
            *out = frame;
            return PT_CLIENT_OK;
        }
        s_stash(self, frame);
    }
    const char *at = self->endpoints[self->current];
    if (self->auth_failed == 500)
        s_set_error(self,
                    "broker at %s refused the connection: it has reached its connection limit "
                    "(max_connections); try again later",
                    at);
    else if (self->auth_failed)
        s_set_error(self, "broker at %s refused the CURVE key of %s (not registered or disabled?)",
                    at, self->org);
    else if (self->n_endpoints == 1)
        s_set_error(self, "cannot reach broker at %s (no answer within %d ms)", at,
                    self->timeout_ms);
    else
        s_set_error(self, "cannot reach any of %zu brokers (%.120s; last tried %s, no answer "
                    "within %d ms)", self->n_endpoints, self->endpoint, at, self->timeout_ms);
    return PT_CLIENT_UNREACHABLE;
}

/* --- Lifecycle ----------------------------------------------------------- */

static int s_setopt_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof value);
}

/* A DEALER with our CURVE keys and its monitor (NULL if monitoring is not
   available: the client then never moves on by itself), connected to endpoint.
   OK, or INVALID / INTERNAL with self->error set; on failure nothing is left open. */
static pt_client_result_t s_socket_open(pt_client_t *self, const char *endpoint, void **sock_out,
                                        void **monitor_out)
{
    pt_client_result_t rc = PT_CLIENT_INTERNAL;
    void *monitor = NULL;
    void *sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!sock) {
        s_set_error(self, "cannot create a socket: %s", zmq_strerror(errno));
        goto error;
    }
    const char *server = pt_keyset_curve_public_z85(self->broker);
    const char *pub = pt_keyset_curve_public_z85(self->me);
    const char *sec = pt_keyset_curve_secret_z85(self->me);
    int64_t max_in = S_MAX_FRAME_IN;
    /* Every broker of a deployment has the same keys (<keys>/broker/), so the server
       key is the same whichever endpoint this is. */
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, strlen(server))
        || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, strlen(pub))
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, strlen(sec))) {
        s_set_error(self, "invalid CURVE keys for %s or the broker", self->org);
        rc = PT_CLIENT_INVALID;
        goto error;
    }
    /* Short linger: unsent frames are resent by the next process anyway. */
    if (s_setopt_int(sock, ZMQ_LINGER, 200) || s_setopt_int(sock, ZMQ_IMMEDIATE, 1)
        || s_setopt_int(sock, ZMQ_HEARTBEAT_IVL, 5000)
        || s_setopt_int(sock, ZMQ_HEARTBEAT_TIMEOUT, 15000)
        || s_setopt_int(sock, ZMQ_HEARTBEAT_TTL, 20000)
        || s_setopt_int(sock, ZMQ_RECONNECT_IVL, 100)
        || s_setopt_int(sock, ZMQ_RECONNECT_IVL_MAX, 5000)
        || zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_in, sizeof max_in)) {
        s_set_error(self, "cannot set socket options: %s", zmq_strerror(errno));
        goto error;
    }
    char mon_ep[80];
    snprintf(mon_ep, sizeof mon_ep, "inproc://pt-client-monitor-%p-%u", (void *) self,
             self->generation);
    if (zmq_socket_monitor(sock, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                               | ZMQ_EVENT_DISCONNECTED)
        == 0) {
        monitor = zmq_socket(self->ctx, ZMQ_PAIR);
        if (monitor && zmq_connect(monitor, mon_ep) != 0) {
            zmq_close(monitor);
            monitor = NULL;
        }
    }
    if (zmq_connect(sock, endpoint) != 0) {
        s_set_error(self, "invalid broker endpoint %s: %s", endpoint, zmq_strerror(errno));
        rc = PT_CLIENT_INVALID;
        goto error;
    }
    *sock_out = sock;
    *monitor_out = monitor;
    return PT_CLIENT_OK;
error:
    if (sock) {
        s_setopt_int(sock, ZMQ_LINGER, 0);
        zmq_socket_monitor(sock, NULL, 0);
        zmq_close(sock);
    }
    if (monitor)
        zmq_close(monitor);
    return rc;
}

/* Closes the current socket and its monitor, dropping what it still held. */
static void s_socket_close(pt_client_t *self, int linger_ms)
{
    if (self->sock) {
        s_setopt_int(self->sock, ZMQ_LINGER, linger_ms);
        zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->sock);
        self->sock = NULL;
    }
    if (self->monitor) {
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
}

static pt_client_result_t s_connect(pt_client_t *self)
{
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        return PT_CLIENT_INTERNAL;
    self->lost_since_ms = pt_now_ms(); /* no working connection yet */
    return s_socket_open(self, self->endpoints[self->current], &self->sock, &self->monitor);
}

/* Failover (issue 9; puente.h "Several brokers"): the current endpoint has had no
   working connection (no completed CURVE handshake since the socket was made, or
   none since it was lost) for failover_after_ms: a new socket goes to the next
   endpoint in the list, wrapping round. After a whole round without a working
   connection the wait per endpoint doubles, up to PUENTE_FAILOVER_MAX_MS. The
   old socket is dropped with what it held: requests are resent by s_request (all
   are idempotent), unacknowledged deliveries are offered again by the broker the
   client moves to, after the Hello that the new handshake triggers. */
static void s_failover_check(pt_client_t *self)
{
    if (self->n_endpoints < 2 || !self->monitor || !self->lost_since_ms)
        return;
    int64_t now = pt_now_ms();
    if (now - self->lost_since_ms < self->failover_after_ms)
        return;
    size_t next = (self->current + 1) % self->n_endpoints;
    void *sock = NULL, *monitor = NULL;
    self->generation++;
    if (s_socket_open(self, self->endpoints[next], &sock, &monitor) != PT_CLIENT_OK) {
        self->lost_since_ms = now; /* try again after another wait */
        return;
    }
    s_socket_close(self, 0);
    self->sock = sock;
    self->monitor = monitor;
    self->current = next;
    self->failovers++;
    self->lost_since_ms = now;
    self->auth_failed = 0;
    self->rehello = 0; /* the new connection's handshake asks for it */
    if (++self->tried_in_round >= self->n_endpoints) {
        self->tried_in_round = 0;
        self->failover_after_ms *= 2;
        if (self->failover_after_ms > PUENTE_FAILOVER_MAX_MS)
            self->failover_after_ms = PUENTE_FAILOVER_MAX_MS;
    }
}

pt_client_t *pt_client_new_ex(const pt_client_opts_t *opts, char *err, size_t err_len,
                              pt_client_result_t *err_code)
{
    pt_client_result_t code = PT_CLIENT_INVALID;
    char reason[PUENTE_ERR_BYTES] = "";
    pt_client_t *self = NULL;
    Puente__V1__BrokerFrame *reply = NULL;
    /* An auditor connects as "auditor:<ID>" with keys in <keys>/auditors/<ID>/. */
    int auditor = opts && opts->org_id &&
                  strncmp(opts->org_id, PUENTE_AUDITOR_PREFIX, strlen(PUENTE_AUDITOR_PREFIX)) == 0;
    const char *key_name = auditor ? opts->org_id + strlen(PUENTE_AUDITOR_PREFIX)
                                   : (opts ? opts->org_id : NULL);
    if (!opts || !opts->org_id || !pt_org_id_valid(key_name) ||
        (auditor && strlen(key_name) > PUENTE_AUDITOR_ID_MAX)) {
        snprintf(reason, sizeof reason, "invalid organisation id");
        goto error;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        code = PT_CLIENT_INTERNAL;
        goto error;
    }
    self->endpoint = strdup(opts->endpoint ? opts->endpoint : PUENTE_DEFAULT_BROKER);
    self->keys_dir = strdup(opts->keys_dir ? opts->keys_dir : PUENTE_DEFAULT_KEYS);
    if (!self->endpoint || !self->keys_dir) {
        code = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (pt_endpoints_parse(self->endpoint, &self->endpoints, &self->n_endpoints, reason,
                           sizeof reason)
        != 0)
        goto error;
    self->failover_after_ms = PUENTE_FAILOVER_AFTER_MS;
    snprintf(self->org, sizeof self->org, "%s", opts->org_id);
    self->receive = opts->receive ? 1 : 0;
    self->want_notices = opts->want_notices ? 1 : 0;
    self->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : PUENTE_DEFAULT_TIMEOUT_MS;
    self->max_frame_bytes = S_DEFAULT_MAX_FRAME;
    self->next_request_id = 1;

    char kerr[200] = "";
    char auditor_dir[4096];
    snprintf(auditor_dir, sizeof auditor_dir, "%s/auditors", self->keys_dir);
    self->me = pt_keyset_load(auditor ? auditor_dir : self->keys_dir, key_name, 1, kerr,
                              sizeof kerr);
    if (!self->me) {
        snprintf(reason, sizeof reason, "cannot load keys of %s from %s/%s: %s", self->org,
                 self->keys_dir, self->org, kerr[0] ? kerr : "unreadable");
        goto error;
    }
    kerr[0] = '\0';
    if (!auditor && pt_keyset_load_retired_seal(self->keys_dir, key_name, &self->retired_seal,
                                                &self->n_retired_seal, kerr, sizeof kerr) != 0) {
        snprintf(reason, sizeof reason, "cannot load the former keys of %s: %s", self->org,
                 kerr[0] ? kerr : "unreadable");
        goto error;
    }
    kerr[0] = '\0';
    self->broker = pt_keyset_load(self->keys_dir, "broker", 0, kerr, sizeof kerr);
    if (!self->broker) {
        snprintf(reason, sizeof reason, "cannot load the broker's public keys from %s/broker: %s",
                 self->keys_dir, kerr[0] ? kerr : "unreadable");
        goto error;
    }
    if (opts->inbox_path) {
        self->inbox = pt_sdk_db_open(opts->inbox_path, S_INBOX_APP_ID, "inbox", S_INBOX_SCHEMA,
                                     reason, sizeof reason);
        if (!self->inbox)
            goto error;
    }
    code = s_connect(self);
    if (code != PT_CLIENT_OK) {
        snprintf(reason, sizeof reason, "%s", self->error[0] ? self->error : "socket setup failed");
        goto error;
    }

    Puente__V1__Hello hello = PUENTE__V1__HELLO__INIT;
    hello.org_id = self->org;
    hello.client = (char *) (opts->client_name ? opts->client_name : "puente-sdk/0.1");
    hello.receive = self->receive;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HELLO;
    frame.hello = &hello;
    if (s_pack_client_frame(&frame, &self->hello_frame, &self->hello_len)) {
        code = PT_CLIENT_INTERNAL;
        goto error;
    }
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_WELCOME };
    code = s_request(self, self->hello_frame, self->hello_len, &m, s_deadline(self->timeout_ms),
                     &reply);
    if (code != PT_CLIENT_OK) {
        snprintf(reason, sizeof reason, "%s", self->error);
        goto error;
    }
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        code = PT_CLIENT_REJECTED;
        snprintf(reason, sizeof reason, "broker refused hello: %s (%d): %s",
                 puente_reject_name(reply->reject->code), reply->reject->code,
                 reply->reject->reason ? reply->reject->reason : "");
        goto error;
    }
    if (reply->welcome->max_frame_bytes > 0)
        self->max_frame_bytes = reply->welcome->max_frame_bytes;
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    self->welcomed = 1;
    if (err && err_len)
        err[0] = '\0';
    if (err_code)
        *err_code = PT_CLIENT_OK;
    return self;

error:
    if (reply)
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    if (err && err_len)
        snprintf(err, err_len, "%s", reason[0] ? reason : "out of memory");
    if (err_code)
        *err_code = code == PT_CLIENT_OK ? PT_CLIENT_INTERNAL : code;
    pt_client_destroy(&self);
    return NULL;
}

pt_client_t *pt_client_new(const pt_client_opts_t *opts, char *err, size_t err_len)
{
    return pt_client_new_ex(opts, err, err_len, NULL);
}

void pt_client_destroy(pt_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_client_t *self = *self_p;
    Puente__V1__BrokerFrame *f;
    while ((f = s_dequeue(self)))
        puente__v1__broker_frame__free_unpacked(f, NULL);
    for (size_t i = 0; i < self->n_directory; i++)
        pt_keyset_destroy(&self->directory[i]);
    free(self->directory);
    for (size_t i = 0; i < self->n_history; i++)
        pt_sign_key_destroy(&self->history[i].key);
    free(self->history);
    for (size_t i = 0; i < self->n_retired_seal; i++)
        pt_seal_key_destroy(&self->retired_seal[i]);
    free(self->retired_seal);
    if (self->entries)
        puente__v1__directory_entries__free_unpacked(self->entries, NULL);
    free(self->seen);
    free(self->entries_raw);
    free(self->entries_sig);
    if (self->inbox)
        sqlite3_close(self->inbox);
    s_socket_close(self, 200);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    pt_keyset_destroy(&self->me);
    pt_keyset_destroy(&self->broker);
    free(self->hello_frame);
    pt_endpoints_free(self->endpoints);
    free(self->endpoint);
    free(self->keys_dir);
    free(self);
    *self_p = NULL;
}

const char *pt_client_error(const pt_client_t *client)
{
    return client ? client->error : "no client";
}

const char *pt_client_org(const pt_client_t *client)
{
    return client ? client->org : "";
}

const char *pt_client_endpoint(const pt_client_t *client)
{
    return client && client->endpoints ? client->endpoints[client->current] : "";
}

unsigned long pt_client_failovers(const pt_client_t *client)
{
    return client ? client->failovers : 0;
}

const uint8_t *pt_sdk_directory_signed(const pt_client_t *client, size_t *entries_len,
                                       const uint8_t **signature, size_t *signature_len)
{
    if (!client || !client->entries_raw)
        return NULL;
    *entries_len = client->entries_raw_len;
    *signature = client->entries_sig;
    *signature_len = client->entries_sig_len;
    return client->entries_raw;
}

uint32_t pt_sdk_max_frame(const pt_client_t *client)
{
    return client ? client->max_frame_bytes : S_DEFAULT_MAX_FRAME;
}

/* --- Directory ----------------------------------------------------------- */

static const pt_keyset_t *s_directory_find(const pt_client_t *self, const char *org)
{
    for (size_t i = 0; i < self->n_directory; i++)
        if (strcmp(pt_keyset_org(self->directory[i]), org) == 0)
            return self->directory[i];
    return NULL;
}

static void s_directory_drop(pt_client_t *self, const char *org)
{
    for (size_t i = 0; i < self->n_directory; i++)
        if (strcmp(pt_keyset_org(self->directory[i]), org) == 0) {
            pt_keyset_destroy(&self->directory[i]);
            self->directory[i] = self->directory[--self->n_directory];
            return;
        }
}

/* Forgets the key history of org (NULL = of everyone). */
static void s_history_drop(pt_client_t *self, const char *org)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n_history; i++) {
        if (!org || strcmp(self->history[i].org, org) == 0)
            pt_sign_key_destroy(&self->history[i].key);
        else
            self->history[kept++] = self->history[i];
    }
    self->n_history = kept;
}

/* Records the signing keys of o's key history. 0, or -1 out of memory. */
static int s_history_add(pt_client_t *self, const Puente__V1__OrgKeys *o)
{
    for (size_t i = 0; i < o->n_key_sets; i++) {
        const Puente__V1__KeySetInfo *k = o->key_sets[i];
        const uint8_t *pub = NULL;
        s_history_t h;
        memset(&h, 0, sizeof h);
        if (!k || k->sign_public.len != PT_ED25519_PUBLIC_BYTES ||
            pt_sha256(k->sign_public.data, PT_ED25519_PUBLIC_BYTES, h.key_id) != 0 ||
            !pt_sdk_org_key_set(o, h.key_id, sizeof h.key_id, &h.window, &pub))
            continue;
        h.key = pt_sign_key_from_public(pub, PT_ED25519_PUBLIC_BYTES);
        if (!h.key)
            continue; /* a key OpenSSL refuses verifies nothing */
        snprintf(h.org, sizeof h.org, "%s", o->org_id);
        s_history_t *grown = realloc(self->history, (self->n_history + 1) * sizeof *grown);
        if (!grown) {
            pt_sign_key_destroy(&h.key);
            return -1;
        }
        self->history = grown;
        self->history[self->n_history++] = h;
    }
    return 0;
}

static pt_client_result_t s_directory_fetch(pt_client_t *self, const char *const *org_ids, size_t n)
{
    Puente__V1__DirectoryRequest req = PUENTE__V1__DIRECTORY_REQUEST__INIT;
    req.n_org_ids = n;
    req.org_ids = (char **) org_ids;
    req.request_id = self->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_DIRECTORY;
    frame.directory = &req;
    uint8_t *data = NULL;
    size_t len = 0;
    Puente__V1__BrokerFrame *reply = NULL;
    Puente__V1__DirectoryEntries *entries = NULL;
    pt_client_result_t rc = PT_CLIENT_INTERNAL;
    if (s_pack_client_frame(&frame, &data, &len))
        goto error;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_DIRECTORY,
                    .request_id = req.request_id };
    rc = s_request(self, data, len, &m, s_deadline(self->timeout_ms), &reply);
    if (rc != PT_CLIENT_OK)
        goto error;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_set_error(self, "directory request rejected: %s: %s",
                    puente_reject_name(reply->reject->code), reply->reject->reason);
        rc = PT_CLIENT_REJECTED;
        goto error;
    }
    if (puente_directory_verify(reply->directory, pt_keyset_sign(self->broker), &entries) != 0) {
        s_set_error(self, "the broker's directory signature does not verify with %s/broker/sign.pub",
                    self->keys_dir);
        rc = PT_CLIENT_BAD_REPLY;
        goto error;
    }
    int64_t now = pt_now_ms();
    for (size_t i = 0; i < entries->n_orgs; i++) {
        const Puente__V1__OrgKeys *o = entries->orgs[i];
        s_directory_drop(self, o->org_id);
        s_history_drop(self, o->org_id);
        if (s_history_add(self, o) != 0) {
            rc = PT_CLIENT_INTERNAL;
            goto error;
        }
        /* Disabled, or its current keys revoked: nothing may be sealed to it (what
           it signed before stays verifiable through the history). */
        if (!o->enabled || pt_sdk_org_revoked(o, now))
            continue;
        pt_keyset_t *ks = pt_keyset_from_public(o->org_id, o->sign_public.data,
                                                o->seal_public.data, o->curve_public.data);
        if (!ks)
            continue; /* a key OpenSSL refuses is as good as absent */
        pt_keyset_t **grown = realloc(self->directory, (self->n_directory + 1) * sizeof *grown);
        if (!grown) {
            pt_keyset_destroy(&ks);
            rc = PT_CLIENT_INTERNAL;
            goto error;
        }
        self->directory = grown;
        self->directory[self->n_directory++] = ks;
    }
    /* Every reply carries all our agreements, whatever orgs were asked for. */
    uint8_t *raw = malloc(reply->directory->entries.len + 1);
    uint8_t *sig = malloc(reply->directory->signature.len + 1);
    if (!raw || !sig) {
        free(raw);
        free(sig);
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (reply->directory->entries.len)
        memcpy(raw, reply->directory->entries.data, reply->directory->entries.len);
    memcpy(sig, reply->directory->signature.data, reply->directory->signature.len);
    free(self->entries_raw);
    free(self->entries_sig);
    self->entries_raw = raw;
    self->entries_raw_len = reply->directory->entries.len;
    self->entries_sig = sig;
    self->entries_sig_len = reply->directory->signature.len;
    if (self->entries)
        puente__v1__directory_entries__free_unpacked(self->entries, NULL);
    self->entries = entries;
    self->entries_at_ms = pt_now_ms();
    entries = NULL;
    rc = PT_CLIENT_OK;
error:
    puente__v1__directory_entries__free_unpacked(entries, NULL);
    if (reply)
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    free(data);
    return rc;
}

pt_client_result_t pt_client_directory_refresh(pt_client_t *client, const char *const *org_ids,
                                               size_t n)
{
    if (!client)
        return PT_CLIENT_INVALID;
    if (n == 0) {
        for (size_t i = 0; i < client->n_directory; i++)
            pt_keyset_destroy(&client->directory[i]);
        client->n_directory = 0;
        s_history_drop(client, NULL);
    }
    else
        for (size_t i = 0; i < n; i++)
            s_directory_drop(client, org_ids[i]);
    return s_directory_fetch(client, org_ids, n);
}

const pt_keyset_t *pt_client_directory_keys(pt_client_t *client, const char *org_id)
{
    if (!client || !org_id)
        return NULL;
    const pt_keyset_t *ks = s_directory_find(client, org_id);
    if (ks)
        return ks;
    if (s_directory_fetch(client, &org_id, 1) != PT_CLIENT_OK)
        return NULL;
    ks = s_directory_find(client, org_id);
    if (!ks)
        s_set_error(client, "%s is not in the broker's directory (unknown, disabled or its keys "
                            "revoked)", org_id);
    return ks;
}

/* --- Field minimisation ---------------------------------------------------- */

/* The agreements from the signed directory, refetched when stale. NULL with
   self->error set when the broker cannot be asked. */
static const Puente__V1__DirectoryEntries *s_agreements(pt_client_t *self)
{
    if (!self->entries || pt_now_ms() - self->entries_at_ms > S_AGREEMENTS_TTL_MS) {
        const char *mine = self->org;
        if (s_directory_fetch(self, &mine, 1) != PT_CLIENT_OK)
            return NULL;
    }
    return self->entries;
}

/* 0 if body fits the field set of the agreement between me and peer for this
   header, else -1 with the offending path (or the reason) in why. */
static int s_fields_ok(pt_client_t *self, const char *peer, const char *type, const char *purpose,
                       const char *agreement_id, const ProtobufCMessage *body, char *why,
                       size_t why_len)
{
    const Puente__V1__DirectoryEntries *e = s_agreements(self);
    if (!e) {
        snprintf(why, why_len, "agreements unavailable: %.150s", self->error);
        return -1;
    }
    const Puente__V1__FieldSet *set =
        puente_field_set_for(e->agreements, e->n_agreements, self->org, peer, type, purpose,
                             agreement_id, pt_now_ms());
    if (!set)
        return 0;
    char path[200];
    if (puente_fields_check(body, (const char *const *) set->fields, set->n_fields, path,
                            sizeof path) == 0)
        return 0;
    snprintf(why, why_len, "field %.80s is outside the agreement's field set for %.32s with %.32s", path,
             purpose, peer);
    return -1;
}

/* --- Sending ------------------------------------------------------------- */

static char *s_str(const char *s)
{
    return (char *) (s ? s : "");
}

/* The Envelope field of ClientFrame, encoded by hand so that the envelope bytes
   (and the signed header inside) are sent exactly as sealed, never re-encoded. */
static uint8_t *s_submit_frame(const uint8_t *env, size_t env_len, size_t *out_len)
{
    uint8_t *buf = malloc(env_len + 11);
    if (!buf)
        return NULL;
    size_t at = 0;
    buf[at++] = (PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT << 3) | 2;
    uint64_t v = env_len;
    while (v >= 0x80) {
        buf[at++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    buf[at++] = (uint8_t) v;
    memcpy(buf + at, env, env_len);
    *out_len = at + env_len;
    return buf;
}

static void s_local_reject(pt_reject_info_t *rej, int code, const char *reason)
{
    if (!rej)
        return;
    memset(rej, 0, sizeof *rej);
    rej->code = code;
    snprintf(rej->code_name, sizeof rej->code_name, "%s", puente_reject_name(code));
    snprintf(rej->reason, sizeof rej->reason, "%s", reason);
}

pt_client_result_t pt_sdk_seal(const char *org, const pt_keyset_t *me, const pt_send_t *msg,
                               const pt_keyset_t *const *recipient_keys,
                               const Puente__V1__DirectoryEntries *entries,
                               uint32_t max_frame_bytes, uint8_t **env_out, size_t *env_len_out,
                               uint8_t message_id[PT_UUID_BYTES],
                               uint8_t correlation_id[PT_UUID_BYTES], char *err, size_t err_len)
{
    pt_client_result_t rc = PT_CLIENT_INVALID;
    const pt_seal_key_t **seal = NULL;
    ProtobufCMessage *check = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    *env_out = NULL;
    *env_len_out = 0;
    const pt_type_t *type = msg ? pt_types_find(msg->message_type) : NULL;
    if (!type) {
        snprintf(err, err_len, "unknown message type %s (see `puente types`)",
                 msg && msg->message_type ? msg->message_type : "(none)");
        goto error;
    }
    if (!msg->recipients || msg->n_recipients == 0 || msg->n_recipients > 64) {
        snprintf(err, err_len, "between 1 and 64 recipients are needed");
        goto error;
    }
    for (size_t i = 0; i < msg->n_recipients; i++)
        if (!msg->recipients[i] || !pt_org_id_valid(msg->recipients[i])) {
            snprintf(err, err_len, "invalid recipient id %s", s_str(msg->recipients[i]));
            goto error;
        }
    if (!msg->case_token || !*msg->case_token) {
        snprintf(err, err_len, "a case token is required");
        goto error;
    }
    const char *purpose = msg->purpose && *msg->purpose ? msg->purpose : type->default_purpose;
    if (!pt_purpose_valid(purpose)) {
        snprintf(err, err_len, "unknown purpose %s", purpose);
        goto error;
    }
    check = s_unpack(type->descriptor, msg->body, msg->body_len);
    if (!check) {
        snprintf(err, err_len, "body is not a valid %s message", type->name);
        goto error;
    }
    char rule[200];
    if (puente_payload_check(type->name, check, rule, sizeof rule) != 0) {
        snprintf(err, err_len, "refused before sealing: %s", rule);
        goto error;
    }
    /* Header fields the broker routes by must agree with the sealed body. */
    const char *service_type = s_str(msg->service_type);
    if (strcmp(type->name, "referral.request") == 0 && !service_type[0]) {
        const Puente__V1__ReferralRequest *rr = (const Puente__V1__ReferralRequest *) check;
        if (rr->n_services > 0 && rr->services[0])
            service_type = s_str(rr->services[0]->service_type);
    }
    char **countries = (char **) msg->search_countries;
    size_t n_countries = msg->n_search_countries;
    if (n_countries > 0 && !countries) {
        snprintf(err, err_len, "n_search_countries is set but search_countries is NULL");
        goto error;
    }
    for (size_t i = 0; i < n_countries; i++)
        for (size_t k = 0; k < i; k++)
            if (countries[i] && countries[k] && strcmp(countries[i], countries[k]) == 0) {
                snprintf(err, err_len, "search country %s is listed twice", countries[i]);
                goto error;
            }
    if (n_countries > 0 && strcmp(type->name, "tracing.request") != 0) {
        snprintf(err, err_len, "search countries are only for tracing.request");
        goto error;
    }
    if (strcmp(type->name, "tracing.request") == 0) {
        const Puente__V1__TraceRequest *tr = (const Puente__V1__TraceRequest *) check;
        if (n_countries == 0) {
            countries = tr->search_countries;
            n_countries = tr->n_search_countries;
        }
        int same = n_countries == tr->n_search_countries;
        for (size_t i = 0; same && i < n_countries; i++) {
            int found = 0;
            for (size_t k = 0; k < tr->n_search_countries && !found; k++)
                found = countries[i] && strcmp(countries[i], s_str(tr->search_countries[k])) == 0;
            same = found;
        }
        if (!same) {
            snprintf(err, err_len,
                     "the search countries differ from the trace request's search_countries");
            goto error;
        }
        if (n_countries == 0) {
            snprintf(err, err_len, "a trace request names the countries to search");
            goto error;
        }
    }
    if (!entries) {
        snprintf(err, err_len, "refused before sealing: agreements unavailable");
        goto error;
    }
    /* Field minimisation: nothing leaves that an agreement does not let through. */
    for (size_t i = 0; i < msg->n_recipients; i++) {
        const Puente__V1__FieldSet *set = puente_field_set_for(
            entries->agreements, entries->n_agreements, org, msg->recipients[i], type->name,
            purpose, s_str(msg->agreement_id), pt_now_ms());
        char path[200];
        if (set
            && puente_fields_check(check, (const char *const *) set->fields, set->n_fields, path,
                                   sizeof path)
                   != 0) {
            snprintf(err, err_len,
                     "refused before sealing: field %.80s is outside the agreement's field set "
                     "for %.32s with %.32s",
                     path, purpose, msg->recipients[i]);
            goto error;
        }
    }
    seal = calloc(msg->n_recipients, sizeof *seal);
    if (!seal) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    for (size_t i = 0; i < msg->n_recipients; i++) {
        if (!recipient_keys[i]) {
            snprintf(err, err_len, "no sealing key for %s", msg->recipients[i]);
            goto error;
        }
        seal[i] = pt_keyset_seal(recipient_keys[i]);
    }
    if (pt_uuidv7(message_id)) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (msg->correlation_id)
        memcpy(correlation_id, msg->correlation_id, PT_UUID_BYTES);
    else
        memcpy(correlation_id, message_id, PT_UUID_BYTES); /* starts its own thread */
    Puente__V1__ConsentSummary no_consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_id = (ProtobufCBinaryData) { PT_UUID_BYTES, message_id };
    h.correlation_id = (ProtobufCBinaryData) { PT_UUID_BYTES, correlation_id };
    if (msg->causation_id)
        h.causation_id = (ProtobufCBinaryData) { PT_UUID_BYTES, (uint8_t *) msg->causation_id };
    h.message_type = (char *) type->name;
    h.sender = (char *) org;
    h.n_recipients = msg->n_recipients;
    h.recipients = (char **) msg->recipients;
    h.created_at_ms = pt_now_ms();
    h.expires_at_ms = msg->expires_in_ms > 0 ? h.created_at_ms + msg->expires_in_ms : 0;
    h.purpose = (char *) purpose;
    h.agreement_id = s_str(msg->agreement_id);
    h.case_token = (char *) msg->case_token;
    h.consent = (Puente__V1__ConsentSummary *) (msg->consent ? msg->consent : &no_consent);
    h.schema_version = PT_SCHEMA_VERSION;
    h.service_type = (char *) service_type;
    h.search_countries = countries;
    h.n_search_countries = n_countries;
    h.respond_by_ms = msg->respond_by_ms;
    h.follow_up_due_ms = msg->follow_up_due_ms;
    h.best_interests_ref = s_str(msg->best_interests_ref);
    h.reason_code = s_str(msg->reason_code);

    pt_env_result_t er = pt_envelope_seal(&h, msg->body, msg->body_len, pt_keyset_sign(me), seal,
                                          msg->n_recipients, &env, &env_len);
    if (er != PT_ENV_OK) {
        snprintf(err, err_len, "cannot seal the envelope: %s", pt_env_result_str(er));
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (env_len + 16 > max_frame_bytes) {
        snprintf(err, err_len, "envelope of %zu bytes exceeds the broker's limit of %u", env_len,
                 max_frame_bytes);
        goto error;
    }
    *env_out = env;
    *env_len_out = env_len;
    env = NULL;
    rc = PT_CLIENT_OK;
error:
    if (check)
        protobuf_c_message_free_unpacked(check, NULL);
    free(env);
    free(seal);
    return rc;
}

pt_client_result_t pt_sdk_submit(pt_client_t *client, const uint8_t *env, size_t env_len,
                                 int64_t deadline, pt_receipt_info_t *receipt,
                                 pt_reject_info_t *rej)
{
    if (!client || !env)
        return PT_CLIENT_INVALID;
    pt_client_t *self = client;
    pt_client_result_t rc = PT_CLIENT_INTERNAL;
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    Puente__V1__Envelope *sealed = NULL;
    Puente__V1__Header *hdr = NULL;
    Puente__V1__BrokerFrame *reply = NULL;
    if (rej)
        memset(rej, 0, sizeof *rej);
    /* Our own bytes (possibly read back from an outbox file): checked, and used to
       match the receipt to this very header. */
    sealed = (Puente__V1__Envelope *) s_unpack(&puente__v1__envelope__descriptor, env, env_len);
    uint8_t header_sha[PT_SHA256_BYTES];
    if (!sealed || pt_envelope_check(sealed, &hdr) != PT_ENV_OK
        || pt_sha256(sealed->header.data, sealed->header.len, header_sha)) {
        s_set_error(self, "the envelope to submit does not decode");
        rc = PT_CLIENT_INVALID;
        goto error;
    }
    uint8_t message_id[PT_UUID_BYTES];
    memcpy(message_id, hdr->message_id.data, PT_UUID_BYTES);
    frame = s_submit_frame(env, env_len, &frame_len);
    if (!frame)
        goto error;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_RECEIPT, .message_id = message_id };
    for (;;) {
        rc = s_request(self, frame, frame_len, &m, deadline, &reply);
        if (rc != PT_CLIENT_OK)
            goto error;
        /* Storage unavailable or over the submission rate: the same envelope again
           after a pause, until the deadline (a full recipient queue is reported at
           once: it does not clear in seconds; the outbox retries it). */
        if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT
            && (reply->reject->code == PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER
                || reply->reject->code == PUENTE__V1__REJECT_CODE__REJECT_RATE_LIMITED)
            && pt_now_ms() + S_RETRY_LATER_MS < deadline) {
            puente__v1__broker_frame__free_unpacked(reply, NULL);
            reply = NULL;
            Puente__V1__BrokerFrame *other = NULL;
            int64_t pause_until = pt_now_ms() + S_RETRY_LATER_MS;
            while (pt_now_ms() < pause_until) {
                if (s_recv_one(self, (int) (pause_until - pt_now_ms()), &other) == 1)
                    s_stash(self, other);
            }
            continue;
        }
        break;
    }
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(self, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
        goto error;
    }
    const Puente__V1__Receipt *r = reply->receipt;
    if (pt_receipt_verify_message(pt_keyset_sign(self->broker), r, &self->receipt_cache) != 0) {
        s_set_error(self, "the broker's receipt signature does not verify");
        rc = PT_CLIENT_BAD_REPLY;
        goto error;
    }
    if (r->header_sha256.len != PT_SHA256_BYTES
        || memcmp(r->header_sha256.data, header_sha, PT_SHA256_BYTES) != 0) {
        s_set_error(self, "the receipt names a different header than the one sent");
        rc = PT_CLIENT_BAD_REPLY;
        goto error;
    }
    if (receipt) {
        memset(receipt, 0, sizeof *receipt);
        memcpy(receipt->message_id, message_id, PT_UUID_BYTES);
        if (hdr->correlation_id.len == PT_UUID_BYTES)
            memcpy(receipt->correlation_id, hdr->correlation_id.data, PT_UUID_BYTES);
        receipt->stored_at_ms = r->stored_at_ms;
        memcpy(receipt->header_sha256, r->header_sha256.data, PT_SHA256_BYTES);
        if (r->event_hash.len == PT_SHA256_BYTES)
            memcpy(receipt->event_hash, r->event_hash.data, PT_SHA256_BYTES);
        receipt->duplicate = r->duplicate ? 1 : 0;
        receipt->leaf_index = r->in_log && r->leaf_index <= INT64_MAX ? (int64_t)r->leaf_index : -1;
    }
    rc = PT_CLIENT_OK;
error:
    if (reply)
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    if (hdr)
        puente__v1__header__free_unpacked(hdr, NULL);
    if (sealed)
        protobuf_c_message_free_unpacked(&sealed->base, NULL);
    free(frame);
    return rc;
}

pt_client_result_t pt_client_send(pt_client_t *client, const pt_send_t *msg,
                                  pt_receipt_info_t *receipt, pt_reject_info_t *rej)
{
    if (!client)
        return PT_CLIENT_INVALID;
    pt_client_t *self = client;
    pt_client_result_t rc = PT_CLIENT_INVALID;
    const pt_keyset_t **keys = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    char **fanout = NULL;
    size_t n_fanout = 0;
    self->error[0] = '\0';
    if (rej)
        memset(rej, 0, sizeof *rej);

    const pt_type_t *type = msg ? pt_types_find(msg->message_type) : NULL;
    if (!type) {
        s_set_error(self, "unknown message type %s (see `puente types`)",
                    msg && msg->message_type ? msg->message_type : "(none)");
        goto error;
    }
    pt_send_t filled;
    if (msg->n_recipients == 0 && strcmp(type->family, "consent") == 0 && msg->case_token
        && *msg->case_token) {
        /* A withdrawal goes to every party of the case: ask the broker who. */
        rc = pt_client_recipients(self, msg->case_token, &fanout, &n_fanout, rej);
        if (rc != PT_CLIENT_OK)
            goto error;
        if (n_fanout == 0) {
            s_set_error(self, "no other organisation holds data about this case");
            rc = PT_CLIENT_INVALID;
            goto error;
        }
        filled = *msg;
        filled.recipients = (const char *const *) fanout;
        filled.n_recipients = n_fanout;
        msg = &filled;
        rc = PT_CLIENT_INVALID;
    }
    if (!msg->recipients || msg->n_recipients == 0 || msg->n_recipients > 64) {
        s_set_error(self, "between 1 and 64 recipients are needed");
        goto error;
    }
    for (size_t i = 0; i < msg->n_recipients; i++)
        if (!msg->recipients[i] || !pt_org_id_valid(msg->recipients[i])) {
            s_set_error(self, "invalid recipient id %s", s_str(msg->recipients[i]));
            goto error;
        }
    const Puente__V1__DirectoryEntries *entries = s_agreements(self);
    if (!entries) {
        char why[PUENTE_ERR_BYTES];
        memcpy(why, self->error, sizeof why);
        s_set_error(self, "refused before sealing: agreements unavailable: %.150s", why);
        goto error;
    }

    /* Fetch every unknown recipient in one directory request. */
    const char **missing = calloc(msg->n_recipients, sizeof *missing);
    keys = calloc(msg->n_recipients, sizeof *keys);
    if (!missing || !keys) {
        free(missing);
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    size_t n_missing = 0;
    for (size_t i = 0; i < msg->n_recipients; i++)
        if (!s_directory_find(self, msg->recipients[i]))
            missing[n_missing++] = msg->recipients[i];
    if (n_missing) {
        rc = s_directory_fetch(self, missing, n_missing);
        free(missing);
        if (rc != PT_CLIENT_OK)
            goto error;
    }
    else
        free(missing);
    for (size_t i = 0; i < msg->n_recipients; i++) {
        keys[i] = s_directory_find(self, msg->recipients[i]);
        if (!keys[i]) {
            char reason[128];
            snprintf(reason, sizeof reason,
                     "%s is not in the broker's directory (unknown, disabled or its keys revoked)",
                     msg->recipients[i]);
            s_local_reject(rej, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_RECIPIENT, reason);
            s_set_error(self, "%s", reason);
            rc = PT_CLIENT_REJECTED;
            goto error;
        }
    }
    uint8_t message_id[PT_UUID_BYTES], correlation_id[PT_UUID_BYTES];
    rc = pt_sdk_seal(self->org, self->me, msg, keys, self->entries, self->max_frame_bytes, &env,
                     &env_len, message_id, correlation_id, self->error, sizeof self->error);
    if (rc != PT_CLIENT_OK)
        goto error;
    rc = pt_sdk_submit(self, env, env_len, s_deadline(self->timeout_ms), receipt, rej);
error:
    puente_strings_free(fanout, n_fanout);
    free(env);
    free(keys);
    return rc;
}

/* Takes the oneof body out of a reply, which the caller then frees as usual: the
   body (a separately allocated sub-message) is the caller's. NULL if none. */
static void *s_detach_body(Puente__V1__BrokerFrame *reply)
{
    const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field(
        &puente__v1__broker_frame__descriptor, (unsigned) reply->body_case);
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    void **slot = (void **) ((char *) reply + field->offset);
    void *body = *slot;
    *slot = NULL;
    reply->body_case = PUENTE__V1__BROKER_FRAME__BODY__NOT_SET;
    return body;
}

/* --- Receiving ----------------------------------------------------------- */

static s_seen_t *s_seen_find(pt_client_t *self, const uint8_t *id)
{
    for (size_t i = self->n_seen; i-- > 0;)
        if (memcmp(self->seen[i].id, id, PT_UUID_BYTES) == 0)
            return &self->seen[i];
    return NULL;
}

static int s_seen_add(pt_client_t *self, const uint8_t *id)
{
    if (self->n_seen == S_MAX_SEEN) { /* forget the oldest half */
        memmove(self->seen, self->seen + S_MAX_SEEN / 2, (S_MAX_SEEN / 2) * sizeof *self->seen);
        self->n_seen = S_MAX_SEEN / 2;
    }
    if (self->n_seen == self->cap_seen) {
        size_t cap = self->cap_seen ? self->cap_seen * 2 : 64;
        s_seen_t *grown = realloc(self->seen, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->seen = grown;
        self->cap_seen = cap;
    }
    memcpy(self->seen[self->n_seen].id, id, PT_UUID_BYTES);
    self->seen[self->n_seen].acked = 0;
    self->n_seen++;
    return 0;
}

static void s_pack_ack(const uint8_t *id, uint8_t **data, size_t *len)
{
    Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
    ack.message_id = (ProtobufCBinaryData) { PT_UUID_BYTES, (uint8_t *) id };
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
    frame.ack = &ack;
    if (s_pack_client_frame(&frame, data, len))
        *data = NULL;
}

/* The durable state of id: 0 unknown, 1 handed over, 2 confirmed; -1 on error. */
static int s_inbox_state(pt_client_t *self, const uint8_t *id)
{
    sqlite3_stmt *st = NULL;
    int state = -1;
    if (sqlite3_prepare_v2(self->inbox, "SELECT state FROM inbox WHERE message_id = ?", -1, &st,
                           NULL)
            == SQLITE_OK
        && sqlite3_bind_blob(st, 1, id, PT_UUID_BYTES, SQLITE_STATIC) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            state = sqlite3_column_int(st, 0);
        else if (rc == SQLITE_DONE)
            state = 0;
    }
    sqlite3_finalize(st);
    return state;
}

/* Records id as handed over (1) or confirmed (2); a confirmation is never
   downgraded. 0 or -1 (the reason in self->error). */
static int s_inbox_record(pt_client_t *self, const uint8_t *id, int state)
{
    sqlite3_stmt *st = NULL;
    int ok = 0;
    const char *sql = state == 2
                          ? "INSERT INTO inbox (message_id, state, handed_at_ms, acked_at_ms) "
                            "VALUES (?1, 2, ?2, ?2) ON CONFLICT (message_id) DO UPDATE SET "
                            "state = 2, acked_at_ms = ?2"
                          : "INSERT INTO inbox (message_id, state, handed_at_ms) VALUES (?1, 1, ?2) "
                            "ON CONFLICT (message_id) DO NOTHING";
    if (sqlite3_prepare_v2(self->inbox, sql, -1, &st, NULL) == SQLITE_OK
        && sqlite3_bind_blob(st, 1, id, PT_UUID_BYTES, SQLITE_STATIC) == SQLITE_OK
        && sqlite3_bind_int64(st, 2, pt_now_ms()) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        ok = 1;
    if (!ok)
        s_set_error(self, "inbox file: %s", sqlite3_errmsg(self->inbox));
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* The signing key hdr names for its sender: from the key history (window checked
   with the created time; a recipient does not know the stored time), else the
   current directory key when the broker sent no history. OK with *key_p (borrowed)
   or with NULL when the id is unknown; another result when the key is known but
   not usable for this message. */
static pt_key_window_result_t s_sender_key(pt_client_t *self, const Puente__V1__Header *hdr,
                                           const pt_sign_key_t **key_p)
{
    *key_p = NULL;
    if (hdr->sender_key_id.len != PT_KEY_ID_BYTES)
        return PT_KEY_WINDOW_OK;
    int known = 0;
    pt_key_window_result_t why = PT_KEY_WINDOW_OK;
    for (size_t i = 0; i < self->n_history; i++) {
        const s_history_t *h = &self->history[i];
        if (strcmp(h->org, hdr->sender) != 0)
            continue;
        known = 1;
        if (memcmp(h->key_id, hdr->sender_key_id.data, PT_KEY_ID_BYTES) != 0)
            continue;
        why = pt_key_window_check(&h->window, hdr->created_at_ms, 0);
        if (why == PT_KEY_WINDOW_OK) {
            *key_p = h->key;
            return why;
        }
    }
    if (why != PT_KEY_WINDOW_OK || known)
        return why;
    /* No history for this sender (an older broker): its current key only. */
    const pt_keyset_t *sender = pt_client_directory_keys(self, hdr->sender);
    uint8_t key_id[PT_KEY_ID_BYTES];
    if (sender) {
        pt_sign_key_id(pt_keyset_sign(sender), key_id);
        if (memcmp(hdr->sender_key_id.data, key_id, PT_KEY_ID_BYTES) == 0)
            *key_p = pt_keyset_sign(sender);
    }
    return PT_KEY_WINDOW_OK;
}

/* Verifies, opens and decodes one delivery. PT_CLIENT_OK with *out, REFUSED with
   the reason in self->error, or TIMEOUT for a duplicate that was skipped. */
static pt_client_result_t s_accept(pt_client_t *self, Puente__V1__BrokerFrame *frame,
                                   pt_message_t **out)
{
    pt_client_result_t rc = PT_CLIENT_REFUSED;
    Puente__V1__Header *hdr = NULL;
    pt_message_t *m = NULL;
    uint8_t *body = NULL;
    size_t body_len = 0;
    char idtext[PT_UUID_STR_BYTES] = "(unknown id)";
    const Puente__V1__Envelope *env = frame->deliver->envelope;
    if (!env) {
        s_set_error(self, "refused delivery: no envelope");
        goto error;
    }
    pt_env_result_t er = pt_envelope_check(env, &hdr);
    if (er != PT_ENV_OK) {
        s_set_error(self, "refused delivery: envelope check failed: %s", pt_env_result_str(er));
        goto error;
    }
    pt_uuid_format(hdr->message_id.data, idtext);
    s_seen_t *seen = s_seen_find(self, hdr->message_id.data);
    if (seen) {
        /* Redelivered: the broker missed our ack, or the app still holds it. */
        if (seen->acked) {
            uint8_t *data = NULL;
            size_t len = 0;
            s_pack_ack(hdr->message_id.data, &data, &len);
            if (data)
                s_send_raw(self, data, len, 0);
            free(data);
        }
        rc = PT_CLIENT_TIMEOUT;
        goto error;
    }
    if (self->inbox) {
        int state = s_inbox_state(self, hdr->message_id.data);
        if (state < 0) {
            s_set_error(self, "refused %s for now: inbox file unreadable: %s", idtext,
                        sqlite3_errmsg(self->inbox));
            goto error;
        }
        if (state == 2) {
            /* Confirmed by the application before (maybe by an earlier process). */
            uint8_t *data = NULL;
            size_t len = 0;
            s_pack_ack(hdr->message_id.data, &data, &len);
            if (data)
                s_send_raw(self, data, len, 0);
            free(data);
            rc = PT_CLIENT_TIMEOUT;
            goto error;
        }
    }
    const pt_type_t *type = pt_types_find(hdr->message_type);
    if (!type) {
        s_set_error(self, "refused %s: unknown message type", idtext);
        goto error;
    }
    if (!pt_org_id_valid(hdr->sender)) {
        s_set_error(self, "refused %s: invalid sender id", idtext);
        goto error;
    }
    /* The signing key the header names: the sender's current one, or one of its key
       history used inside its window (issue 6); unknown ids refresh the directory
       once (the sender may have rotated since we cached it). */
    const pt_sign_key_t *sender_key = NULL;
    pt_key_window_result_t window = PT_KEY_WINDOW_OK;
    for (int attempt = 0; attempt < 2 && !sender_key && window == PT_KEY_WINDOW_OK; attempt++) {
        if (attempt == 1) {
            const char *one = hdr->sender;
            if (pt_client_directory_refresh(self, &one, 1) != PT_CLIENT_OK)
                break;
        }
        window = s_sender_key(self, hdr, &sender_key);
    }
    if (!sender_key) {
        if (window != PT_KEY_WINDOW_OK)
            s_set_error(self, "refused %s: the signing key of %s was %s when it was created",
                        idtext, hdr->sender, pt_key_window_result_str(window));
        else
            s_set_error(self, "refused %s: sender key id of %s is not in the directory", idtext,
                        hdr->sender);
        goto error;
    }
    er = pt_envelope_verify_header(env, sender_key);
    if (er != PT_ENV_OK) {
        s_set_error(self, "refused %s: header signature of %s: %s", idtext, hdr->sender,
                    pt_env_result_str(er));
        goto error;
    }
    er = pt_envelope_open(env, hdr, self->org, pt_keyset_seal(self->me), sender_key, &body,
                          &body_len);
    /* Sealed to one of our former keys (a sender's outbox, or a queue older than our
       rotation): pt_envelope_open compares key ids before decrypting. */
    for (size_t k = 0; er == PT_ENV_OPEN_FAILED && k < self->n_retired_seal; k++)
        er = pt_envelope_open(env, hdr, self->org, self->retired_seal[k], sender_key, &body,
                              &body_len);
    if (er != PT_ENV_OK) {
        s_set_error(self, "refused %s: cannot open payload: %s", idtext, pt_env_result_str(er));
        goto error;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    m->body = s_unpack(type->descriptor, body, body_len);
    if (!m->body) {
        s_set_error(self, "refused %s: body does not decode as %s", idtext, type->name);
        goto error;
    }
    char why[PUENTE_ERR_BYTES];
    if (s_fields_ok(self, hdr->sender, type->name, hdr->purpose, hdr->agreement_id, m->body, why,
                    sizeof why) != 0) {
        s_set_error(self, "refused %s: %.190s", idtext, why);
        goto error;
    }
    if (self->inbox && s_inbox_record(self, hdr->message_id.data, 1) != 0) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (s_seen_add(self, hdr->message_id.data)) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    m->frame = frame;
    m->header = hdr;
    m->type = type;
    m->body_bytes = body;
    m->body_len = body_len;
    *out = m;
    return PT_CLIENT_OK;
error:
    if (m) {
        if (m->body)
            protobuf_c_message_free_unpacked(m->body, NULL);
        free(m);
    }
    free(body);
    if (hdr)
        puente__v1__header__free_unpacked(hdr, NULL);
    puente__v1__broker_frame__free_unpacked(frame, NULL);
    return rc;
}

/* --- Notices ---------------------------------------------------------------- */

int puente_notice_verify(const Puente__V1__Notice *notice, const pt_sign_key_t *broker)
{
    return pt_notice_verify(broker, notice);
}

static void s_pack_notice_ack(uint64_t notice_id, uint8_t **data, size_t *len)
{
    Puente__V1__NoticeAck ack = PUENTE__V1__NOTICE_ACK__INIT;
    ack.notice_id = notice_id;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_NOTICE_ACK;
    frame.notice_ack = &ack;
    if (s_pack_client_frame(&frame, data, len) != 0)
        *data = NULL;
}

/* A Notice frame (owned): verified, then handed over (NOTICE, *out owns the frame)
   when the application wants notices, else acknowledged without waiting (TIMEOUT:
   look for the next frame; a lost ack only means the notice comes again). */
static pt_client_result_t s_notice(pt_client_t *self, Puente__V1__BrokerFrame *frame,
                                   pt_message_t **out)
{
    const Puente__V1__Notice *notice = frame->notice;
    if (puente_notice_verify(notice, pt_keyset_sign(self->broker)) != 0) {
        s_set_error(self, "notice %llu dropped: the broker signature does not verify",
                    (unsigned long long) notice->notice_id);
        puente__v1__broker_frame__free_unpacked(frame, NULL);
        return PT_CLIENT_TIMEOUT;
    }
    if (!self->want_notices) {
        uint8_t *data = NULL;
        size_t len = 0;
        s_pack_notice_ack(notice->notice_id, &data, &len);
        if (data)
            s_send_raw(self, data, len, 0);
        free(data);
        puente__v1__broker_frame__free_unpacked(frame, NULL);
        return PT_CLIENT_TIMEOUT;
    }
    pt_message_t *msg = calloc(1, sizeof *msg);
    if (!msg) {
        puente__v1__broker_frame__free_unpacked(frame, NULL);
        return PT_CLIENT_INTERNAL;
    }
    msg->frame = frame;
    msg->notice = notice;
    *out = msg;
    return PT_CLIENT_NOTICE;
}

pt_client_result_t pt_client_notice_ack(pt_client_t *client, uint64_t notice_id)
{
    if (!client || notice_id == 0)
        return PT_CLIENT_INVALID;
    uint8_t *data = NULL;
    size_t len = 0;
    s_pack_notice_ack(notice_id, &data, &len);
    if (!data)
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_ACKED, .notice_id = notice_id };
    pt_client_result_t rc =
        s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_set_error(client, "notice ack rejected: %s (%d): %s",
                    puente_reject_name(reply->reject->code), reply->reject->code,
                    s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
    }
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return rc;
}

void pt_client_want_notices(pt_client_t *client, int want)
{
    if (client)
        client->want_notices = want ? 1 : 0;
}

const Puente__V1__Notice *pt_message_notice(const pt_message_t *msg)
{
    return msg ? msg->notice : NULL;
}

pt_client_result_t pt_client_recv(pt_client_t *client, int timeout_ms, pt_message_t **out)
{
    if (!client || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    client->error[0] = '\0';
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        Puente__V1__BrokerFrame *frame = s_dequeue(client);
        while (!frame) {
            int64_t now = pt_now_ms();
            if (now >= deadline)
                return PT_CLIENT_TIMEOUT;
            /* Wake at least every second so reconnects get their Hello promptly. */
            int wait = deadline - now > 1000 ? 1000 : (int) (deadline - now);
            int rc = s_recv_one(client, wait, &frame);
            if (rc == -1)
                return PT_CLIENT_UNREACHABLE;
            if (rc == -2)
                return PT_CLIENT_TIMEOUT; /* a signal: let the caller decide */
            if (rc == 0)
                continue;
            if ((frame->body_case != PUENTE__V1__BROKER_FRAME__BODY_DELIVER || !frame->deliver)
                && (frame->body_case != PUENTE__V1__BROKER_FRAME__BODY_NOTICE || !frame->notice)) {
                puente__v1__broker_frame__free_unpacked(frame, NULL);
                frame = NULL;
            }
        }
        if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_NOTICE) {
            pt_client_result_t rc = s_notice(client, frame, out);
            if (rc == PT_CLIENT_TIMEOUT)
                continue; /* dropped or acknowledged silently */
            return rc;
        }
        pt_client_result_t rc = s_accept(client, frame, out);
        if (rc == PT_CLIENT_TIMEOUT)
            continue; /* a duplicate: look for the next one */
        return rc;
    }
}

pt_client_result_t pt_client_ack(pt_client_t *client, const uint8_t *message_id)
{
    if (!client || !message_id)
        return PT_CLIENT_INVALID;
    /* The confirmation is recorded first: after a crash between the two steps the
       redelivery is re-acked, never handed over again. */
    if (client->inbox && s_inbox_record(client, message_id, 2) != 0)
        return PT_CLIENT_INTERNAL;
    /* Likewise in memory, before the broker answers: the application has stored the
       message, so if this ack is lost (timeout, reconnect) the redelivery must be
       re-acked, not dropped unanswered (which would stall its correlation id). */
    s_seen_t *confirmed = s_seen_find(client, message_id);
    if (confirmed)
        confirmed->acked = 1;
    uint8_t *data = NULL;
    size_t len = 0;
    s_pack_ack(message_id, &data, &len);
    if (!data)
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_ACKED, .message_id = message_id };
    pt_client_result_t rc =
        s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_set_error(client, "ack rejected: %s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
    }
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return rc;
}

const Puente__V1__Header *pt_message_header(const pt_message_t *msg)
{
    return msg ? msg->header : NULL;
}

const pt_type_t *pt_message_type(const pt_message_t *msg)
{
    return msg ? msg->type : NULL;
}

const ProtobufCMessage *pt_message_body(const pt_message_t *msg)
{
    return msg ? msg->body : NULL;
}

const uint8_t *pt_message_body_bytes(const pt_message_t *msg, size_t *len)
{
    if (len)
        *len = msg ? msg->body_len : 0;
    return msg ? msg->body_bytes : NULL;
}

const uint8_t *pt_message_id(const pt_message_t *msg)
{
    return msg && msg->header ? msg->header->message_id.data : NULL;
}

void pt_message_destroy(pt_message_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_message_t *self = *self_p;
    if (self->body)
        protobuf_c_message_free_unpacked(self->body, NULL);
    if (self->header)
        puente__v1__header__free_unpacked(self->header, NULL);
    if (self->frame)
        puente__v1__broker_frame__free_unpacked(self->frame, NULL);
    free(self->body_bytes);
    free(self);
    *self_p = NULL;
}

/* --- Trail and admin ------------------------------------------------------ */

pt_client_result_t pt_client_trail(pt_client_t *client, const char *case_token,
                                   Puente__V1__TrailReply **out, pt_reject_info_t *rej)
{
    if (!client || !case_token || !*case_token || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__TrailRequest req = PUENTE__V1__TRAIL_REQUEST__INIT;
    req.case_token = (char *) case_token;
    req.request_id = client->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_TRAIL;
    frame.trail = &req;
    uint8_t *data = NULL;
    size_t len = 0;
    if (s_pack_client_frame(&frame, &data, &len))
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_TRAIL,
                    .request_id = req.request_id };
    pt_client_result_t rc =
        s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(client, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
    }
    else {
        *out = s_detach_body(reply);
    }
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return rc;
}

void puente_strings_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

pt_client_result_t pt_client_recipients(pt_client_t *client, const char *case_token, char ***orgs,
                                        size_t *n, pt_reject_info_t *rej)
{
    if (!client || !case_token || !orgs || !n)
        return PT_CLIENT_INVALID;
    pt_client_t *self = client;
    *orgs = NULL;
    *n = 0;
    Puente__V1__RecipientsRequest req = PUENTE__V1__RECIPIENTS_REQUEST__INIT;
    req.case_token = (char *) case_token;
    req.request_id = self->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_RECIPIENTS;
    frame.recipients = &req;
    uint8_t *data = NULL;
    size_t len = 0;
    Puente__V1__BrokerFrame *reply = NULL;
    pt_client_result_t rc = PT_CLIENT_INTERNAL;
    if (s_pack_client_frame(&frame, &data, &len))
        goto error;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_RECIPIENTS,
                    .request_id = req.request_id };
    rc = s_request(self, data, len, &m, s_deadline(self->timeout_ms), &reply);
    if (rc != PT_CLIENT_OK)
        goto error;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(self, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
        goto error;
    }
    const Puente__V1__RecipientsReply *r = reply->recipients;
    char **list = calloc(r->n_orgs ? r->n_orgs : 1, sizeof *list);
    rc = PT_CLIENT_INTERNAL;
    if (!list)
        goto error;
    for (size_t i = 0; i < r->n_orgs; i++) {
        if (!pt_org_id_valid(r->orgs[i]) || !(list[i] = strdup(r->orgs[i]))) {
            puente_strings_free(list, i);
            s_set_error(self, "the broker named an invalid organisation id");
            rc = PT_CLIENT_BAD_REPLY;
            goto error;
        }
    }
    *orgs = list;
    *n = r->n_orgs;
    rc = PT_CLIENT_OK;
error:
    if (reply)
        puente__v1__broker_frame__free_unpacked(reply, NULL);
    free(data);
    return rc;
}

pt_client_result_t pt_client_overdue(pt_client_t *client, Puente__V1__OverdueReply **out,
                                     pt_reject_info_t *rej)
{
    if (!client || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__OverdueRequest req = PUENTE__V1__OVERDUE_REQUEST__INIT;
    req.request_id = client->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_OVERDUE;
    frame.overdue = &req;
    uint8_t *data = NULL;
    size_t len = 0;
    if (s_pack_client_frame(&frame, &data, &len))
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_OVERDUE,
                    .request_id = req.request_id };
    pt_client_result_t rc =
        s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(client, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
    }
    else {
        *out = s_detach_body(reply);
    }
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return rc;
}

pt_client_result_t pt_client_admin_reply(pt_client_t *client, const Puente__V1__AdminRequest *req,
                                         Puente__V1__AdminReply **out, pt_reject_info_t *rej)
{
    if (!client || !req || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__AdminRequest copy = *req;
    copy.request_id = client->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ADMIN;
    frame.admin = &copy;
    uint8_t *data = NULL;
    size_t len = 0;
    if (s_pack_client_frame(&frame, &data, &len))
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = { .body_case = PUENTE__V1__BROKER_FRAME__BODY_ADMIN,
                    .request_id = copy.request_id };
    pt_client_result_t rc =
        s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(client, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        rc = PT_CLIENT_REJECTED;
    }
    else {
        *out = s_detach_body(reply);
    }
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return rc;
}

pt_client_result_t pt_client_admin(pt_client_t *client, const Puente__V1__AdminRequest *req,
                                   char **result, pt_reject_info_t *rej)
{
    if (result)
        *result = NULL;
    Puente__V1__AdminReply *reply = NULL;
    pt_client_result_t rc = pt_client_admin_reply(client, req, &reply, rej);
    if (rc == PT_CLIENT_OK && result) {
        *result = strdup(reply->result ? reply->result : "");
        if (!*result)
            rc = PT_CLIENT_INTERNAL;
    }
    if (reply)
        puente__v1__admin_reply__free_unpacked(reply, NULL);
    return rc;
}

/* --- Audit log (issue 4) ------------------------------------------------------------ */

/* Sends frame (request id already set) and waits for body_case or a reject. On OK
   *body_p holds the reply's body, detached from its frame (caller frees it with its
   type's free_unpacked). */
static pt_client_result_t s_audit_call(pt_client_t *client, const Puente__V1__ClientFrame *frame,
                                       uint64_t request_id, Puente__V1__BrokerFrame__BodyCase body,
                                       void **body_p, pt_reject_info_t *rej)
{
    uint8_t *data = NULL;
    size_t len = 0;
    *body_p = NULL;
    if (s_pack_client_frame(frame, &data, &len))
        return PT_CLIENT_INTERNAL;
    Puente__V1__BrokerFrame *reply = NULL;
    s_match_t m = {.body_case = body, .request_id = request_id};
    pt_client_result_t rc = s_request(client, data, len, &m, s_deadline(client->timeout_ms), &reply);
    free(data);
    if (rc != PT_CLIENT_OK)
        return rc;
    if (reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
        s_fill_reject(rej, reply->reject);
        s_set_error(client, "%s (%d): %s", puente_reject_name(reply->reject->code),
                    reply->reject->code, s_str(reply->reject->reason));
        puente__v1__broker_frame__free_unpacked(reply, NULL);
        return PT_CLIENT_REJECTED;
    }
    if (reply->body_case != body) {
        s_set_error(client, "unexpected answer from the broker");
        puente__v1__broker_frame__free_unpacked(reply, NULL);
        return PT_CLIENT_BAD_REPLY;
    }
    *body_p = s_detach_body(reply);
    puente__v1__broker_frame__free_unpacked(reply, NULL);
    return PT_CLIENT_OK;
}

pt_client_result_t pt_client_checkpoint(pt_client_t *client, uint64_t tree_size,
                                        Puente__V1__CheckpointReply **out, pt_reject_info_t *rej)
{
    if (!client || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__CheckpointRequest req = PUENTE__V1__CHECKPOINT_REQUEST__INIT;
    req.request_id = client->next_request_id++;
    req.tree_size = tree_size;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_CHECKPOINT;
    frame.checkpoint = &req;
    return s_audit_call(client, &frame, req.request_id, PUENTE__V1__BROKER_FRAME__BODY_CHECKPOINT,
                        (void **)out, rej);
}

pt_client_result_t pt_client_checkpoint_covering(pt_client_t *client, uint64_t covering_size,
                                                 int sign_now,
                                                 Puente__V1__CheckpointReply **out,
                                                 pt_reject_info_t *rej)
{
    if (!client || !out || covering_size == 0)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__CheckpointRequest req = PUENTE__V1__CHECKPOINT_REQUEST__INIT;
    req.request_id = client->next_request_id++;
    req.covering_size = covering_size;
    req.sign_now = sign_now != 0;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_CHECKPOINT;
    frame.checkpoint = &req;
    return s_audit_call(client, &frame, req.request_id, PUENTE__V1__BROKER_FRAME__BODY_CHECKPOINT,
                        (void **)out, rej);
}

pt_client_result_t pt_client_proof(pt_client_t *client, const Puente__V1__ProofRequest *req,
                                   Puente__V1__ProofReply **out, pt_reject_info_t *rej)
{
    if (!client || !req || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__ProofRequest copy = *req;
    copy.request_id = client->next_request_id++;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_PROOF;
    frame.proof = &copy;
    return s_audit_call(client, &frame, copy.request_id, PUENTE__V1__BROKER_FRAME__BODY_PROOF,
                        (void **)out, rej);
}

pt_client_result_t pt_client_audit(pt_client_t *client, const Puente__V1__AuditQuery *query,
                                   Puente__V1__AuditReply **out, pt_reject_info_t *rej)
{
    if (!client || !query || !out)
        return PT_CLIENT_INVALID;
    *out = NULL;
    Puente__V1__AuditQuery copy = *query;
    copy.request_id = client->next_request_id++;
    /* Auditors sign every query with their signing key (pt_audit_query.h); the
       operator is authenticated by its CURVE key alone. */
    uint8_t nonce[PT_AUDIT_QUERY_NONCE_BYTES], sig[PT_ED25519_SIG_BYTES];
    if (strncmp(client->org, PUENTE_AUDITOR_PREFIX, strlen(PUENTE_AUDITOR_PREFIX)) == 0 &&
        pt_audit_query_sign(pt_keyset_sign(client->me), &copy, pt_now_ms(), nonce, sig) != 0) {
        s_set_error(client, "cannot sign the audit query");
        return PT_CLIENT_INTERNAL;
    }
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_AUDIT;
    frame.audit = &copy;
    return s_audit_call(client, &frame, copy.request_id, PUENTE__V1__BROKER_FRAME__BODY_AUDIT,
                        (void **)out, rej);
}

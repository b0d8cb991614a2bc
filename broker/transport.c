/*  transport — see transport.h. */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "pt_crypto.h"

/* A refused handshake is logged at most this often (a refused client retries on
   its reconnect interval); the lines in between are counted in the next one. */
#define S_REFUSAL_LOG_MS 10000

struct _pt_transport_t {
    void *router;
    void *zap;
    void *monitor; /* PAIR receiving the ROUTER's accept/disconnect events */
    const pt_directory_t *directory;
    size_t max_frame_bytes;
    size_t max_connections; /* 0 = no cap */
    size_t open;            /* TCP connections open on the ROUTER */
    uint64_t refused;
    uint64_t refusals_unlogged;
    int64_t refusal_logged_ms;
};

int64_t pt_transport_hard_cap(size_t max_frame_bytes)
{
    return (int64_t)max_frame_bytes * 2;
}

int pt_transport_rcvhwm(size_t max_frame_bytes)
{
    int64_t hwm = (int64_t)PT_TRANSPORT_INBOUND_BYTES / pt_transport_hard_cap(max_frame_bytes);
    return hwm < 4 ? 4 : hwm > 1000 ? 1000 : (int)hwm;
}

/* The ROUTER's monitor: events are two frames, (u16 event, u32 value) and the
   endpoint. Accepted and disconnected are both emitted once per TCP connection
   (a refused handshake ends in a disconnect too), so their difference is the
   number open. Events are queued in order, and an accept is queued before that
   connection's handshake can reach the ZAP handler. */
static void s_drain_monitor(pt_transport_t *self)
{
    while (self->monitor) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&msg) >= 6)
            memcpy(&event, zmq_msg_data(&msg), sizeof event);
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
        if (event == ZMQ_EVENT_ACCEPTED)
            self->open++;
        else if (event == ZMQ_EVENT_DISCONNECTED && self->open > 0)
            self->open--;
    }
}

/* Watches the ROUTER's connections (before it binds). 0 or -1. */
static int s_monitor_start(pt_transport_t *self, void *zmq_context)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://puente-router-monitor-%p", (void *)self);
    if (zmq_socket_monitor(self->router, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) !=
        0)
        return -1;
    self->monitor = zmq_socket(zmq_context, ZMQ_PAIR);
    /* No high-water mark: a lost event would leave the count wrong for good. */
    int unlimited = 0, linger = 0;
    if (!self->monitor ||
        zmq_setsockopt(self->monitor, ZMQ_RCVHWM, &unlimited, sizeof unlimited) != 0 ||
        zmq_setsockopt(self->monitor, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(self->monitor, endpoint) != 0)
        return -1;
    return 0;
}

pt_transport_t *pt_transport_new(void *zmq_context, const char *endpoint,
                                 const pt_keyset_t *broker_keys, const pt_directory_t *directory,
                                 size_t max_frame_bytes, char *err, size_t err_len)
{
    pt_transport_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    self->directory = directory;
    self->max_frame_bytes = max_frame_bytes;

    /* The ZAP socket must be bound before any CURVE socket exists in this context. */
    self->zap = zmq_socket(zmq_context, ZMQ_REP);
    if (!self->zap || zmq_bind(self->zap, "inproc://zeromq.zap.01") != 0) {
        snprintf(err, err_len, "cannot bind the ZAP handler: %s", zmq_strerror(errno));
        goto error;
    }
    self->router = zmq_socket(zmq_context, ZMQ_ROUTER);
    if (!self->router) {
        snprintf(err, err_len, "cannot create ROUTER: %s", zmq_strerror(errno));
        goto error;
    }
    int one = 1, zero = 0, linger = 0;
    int64_t hard_cap = pt_transport_hard_cap(max_frame_bytes);
    int hwm = 100000, rcvhwm = pt_transport_rcvhwm(max_frame_bytes);
    int heartbeat_ivl = 5000, heartbeat_timeout = 15000;
    if (zmq_setsockopt(self->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->router, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(broker_keys),
                       PT_Z85_KEY_CHARS) != 0 ||
        zmq_setsockopt(self->router, ZMQ_ZAP_DOMAIN, "puente", 6) != 0 ||
        zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &hard_cap, sizeof hard_cap) != 0 ||
        zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0 ||
        zmq_setsockopt(self->router, ZMQ_HEARTBEAT_IVL, &heartbeat_ivl, sizeof heartbeat_ivl) !=
            0 ||
        zmq_setsockopt(self->router, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout,
                       sizeof heartbeat_timeout) != 0 ||
        zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->router, ZMQ_IPV6, &zero, sizeof zero) != 0) {
        snprintf(err, err_len, "cannot configure ROUTER: %s", zmq_strerror(errno));
        goto error;
    }
    if (s_monitor_start(self, zmq_context) != 0) {
        snprintf(err, err_len, "cannot monitor the ROUTER's connections: %s", zmq_strerror(errno));
        goto error;
    }
    if (zmq_bind(self->router, endpoint) != 0) {
        snprintf(err, err_len, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        goto error;
    }
    return self;
error:
    pt_transport_destroy(&self);
    return NULL;
}

void pt_transport_destroy(pt_transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_transport_t *self = *self_p;
    if (self->router && self->monitor)
        zmq_socket_monitor(self->router, NULL, 0);
    if (self->monitor)
        zmq_close(self->monitor);
    if (self->router)
        zmq_close(self->router);
    if (self->zap)
        zmq_close(self->zap);
    free(self);
    *self_p = NULL;
}

void pt_transport_set_max_connections(pt_transport_t *self, size_t max_connections)
{
    self->max_connections = max_connections;
}

size_t pt_transport_connections(pt_transport_t *self)
{
    s_drain_monitor(self);
    return self->open;
}

uint64_t pt_transport_refused_count(const pt_transport_t *self)
{
    return self->refused;
}

/* Over the cap: refuses the handshake (the caller answers ZAP 500) and logs it,
   at most every S_REFUSAL_LOG_MS. */
static void s_refuse_over_cap(pt_transport_t *self, const char *identity, const char *address)
{
    self->refused++;
    self->refusals_unlogged++;
    int64_t now = pt_now_ms();
    if (now - self->refusal_logged_ms < S_REFUSAL_LOG_MS)
        return;
    pt_log(PT_LOG_WARN, "transport", NULL, NULL,
           "refused a connection of %s from %s: %zu connections open, max_connections is %zu "
           "(%llu refused since the last such line)",
           identity, address, self->open, self->max_connections,
           (unsigned long long)(self->refusals_unlogged - 1));
    self->refusals_unlogged = 0;
    self->refusal_logged_ms = now;
}

void *pt_transport_router(pt_transport_t *self)
{
    return self->router;
}

void *pt_transport_zap(pt_transport_t *self)
{
    return self->zap;
}

/* ZAP (RFC 27): request = version, request id, domain, address, identity,
   mechanism, credentials...; reply = version, request id, status code, status
   text, user id, metadata. */
void pt_transport_handle_zap(pt_transport_t *self)
{
    for (;;) {
        s_drain_monitor(self);
        zmq_msg_t frames[8];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, self->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&part);
                for (int i = 0; i < n && i < 8; i++)
                    zmq_msg_close(&frames[i]);
                return; /* EAGAIN: nothing pending */
            }
            more = zmq_msg_more(&part);
            if (n < 8)
                frames[n] = part;
            else
                zmq_msg_close(&part);
            n++;
        }
        const char *status = "400", *text = "No access";
        const char *identity = NULL;
        int count = n < 8 ? n : 8;
        char address[64] = "";
        if (count >= 4) {
            size_t len = zmq_msg_size(&frames[3]);
            snprintf(address, sizeof address, "%.*s", (int)(len < 63 ? len : 63),
                     (const char *)zmq_msg_data(&frames[3]));
        }
        if (count >= 7 && zmq_msg_size(&frames[5]) == 5 &&
            memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 && zmq_msg_size(&frames[6]) == 32) {
            identity = pt_directory_identity_for_curve(self->directory, zmq_msg_data(&frames[6]));
            if (identity) {
                status = "200";
                text = "OK";
            }
        }
        if (!identity) {
            pt_log(PT_LOG_WARN, "transport", NULL, NULL,
                   "refused a connection from %s: CURVE key not registered", address);
        } else if (self->max_connections && self->open > self->max_connections &&
                   strcmp(identity, PT_OPERATOR_ID) != 0) {
            /* The open count includes this connection (its accept came first). */
            s_refuse_over_cap(self, identity, address);
            identity = NULL;
            status = "500";
            text = "Too many connections";
        }
        /* version and request id echo frames 0 and 1 */
        zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
        if (count >= 2)
            zmq_send(self->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE);
        else
            zmq_send(self->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(self->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(self->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(self->zap, identity ? identity : "", identity ? strlen(identity) : 0, ZMQ_SNDMORE);
        /* Metadata (ZMTP property list: name length, name, be32 value length, value):
           the client's CURVE key, Z85, for pt_transport_recv. */
        uint8_t meta[1 + 11 + 4 + PT_Z85_KEY_CHARS];
        char z85[PT_Z85_KEY_CHARS + 1];
        if (identity && zmq_z85_encode(z85, zmq_msg_data(&frames[6]), 32)) {
            meta[0] = 11;
            memcpy(meta + 1, "X-Curve-Key", 11);
            meta[12] = meta[13] = meta[14] = 0;
            meta[15] = PT_Z85_KEY_CHARS;
            memcpy(meta + 16, z85, PT_Z85_KEY_CHARS);
            zmq_send(self->zap, meta, sizeof meta, 0);
        } else {
            zmq_send(self->zap, "", 0, 0);
        }
        for (int i = 0; i < count; i++)
            zmq_msg_close(&frames[i]);
    }
}

void pt_inbound_begin(pt_inbound_t *in, const void *routing_id, size_t len)
{
    memset(in, 0, sizeof *in);
    if (len > PT_ROUTING_ID_MAX)
        len = PT_ROUTING_ID_MAX;
    if (len)
        memcpy(in->routing_id, routing_id, len);
    in->routing_id_len = len;
}

void pt_inbound_add(pt_inbound_t *in, const void *data, size_t size, const char *user_id,
                    size_t max_frame_bytes)
{
    if (in->frames++ > 0) {
        in->status = PT_INBOUND_EXTRA_FRAMES;
        return;
    }
    if (user_id)
        snprintf(in->identity, sizeof in->identity, "%s", user_id);
    in->len = size;
    if (size == 0) {
        in->status = PT_INBOUND_EMPTY;
    } else if (size > max_frame_bytes) {
        in->status = PT_INBOUND_TOO_LARGE;
    } else {
        in->data = malloc(size);
        if (!in->data) {
            in->status = PT_INBOUND_TOO_LARGE;
        } else {
            memcpy(in->data, data, size);
        }
    }
}

void pt_inbound_end(pt_inbound_t *in)
{
    if (in->frames == 0)
        in->status = PT_INBOUND_EMPTY;
    if (in->status != PT_INBOUND_OK) {
        free(in->data);
        in->data = NULL;
    }
}

int pt_transport_recv(pt_transport_t *self, pt_inbound_t *in)
{
    memset(in, 0, sizeof *in);
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, self->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return errno == EAGAIN ? 0 : -1;
    }
    /* First frame: the routing id ROUTER prepends. */
    pt_inbound_begin(in, zmq_msg_data(&part), zmq_msg_size(&part));
    int more = zmq_msg_more(&part);
    zmq_msg_close(&part);
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->router, 0) < 0) {
            zmq_msg_close(&part);
            pt_inbound_release(in);
            return -1;
        }
        more = zmq_msg_more(&part);
        if (in->frames == 0) {
            /* Issue 6: the connection's CURVE key (ZAP metadata), so that a key revoked
               after the connection opened is still refused. */
            const char *curve = zmq_msg_gets(&part, "X-Curve-Key");
            in->has_curve_public = curve && strlen(curve) == PT_Z85_KEY_CHARS &&
                                   zmq_z85_decode(in->curve_public, curve) != NULL;
        }
        pt_inbound_add(in, zmq_msg_data(&part), zmq_msg_size(&part),
                       in->frames == 0 ? zmq_msg_gets(&part, "User-Id") : NULL,
                       self->max_frame_bytes);
        zmq_msg_close(&part);
    }
    pt_inbound_end(in);
    return 1;
}

void pt_inbound_release(pt_inbound_t *in)
{
    free(in->data);
    in->data = NULL;
    in->len = 0;
}

int pt_transport_send(pt_transport_t *self, const uint8_t *routing_id, size_t routing_id_len,
                      const uint8_t *data, size_t len)
{
    if (zmq_send(self->router, routing_id, routing_id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send(self->router, data, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

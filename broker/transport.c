/*  transport — see transport.h. */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

struct _pt_transport_t {
    void *router;
    void *zap;
    const pt_directory_t *directory;
    size_t max_frame_bytes;
};

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
    int64_t hard_cap = (int64_t)max_frame_bytes * 4;
    int hwm = 100000;
    int heartbeat_ivl = 5000, heartbeat_timeout = 15000;
    if (zmq_setsockopt(self->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->router, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(broker_keys),
                       PT_Z85_KEY_CHARS) != 0 ||
        zmq_setsockopt(self->router, ZMQ_ZAP_DOMAIN, "puente", 6) != 0 ||
        zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &hard_cap, sizeof hard_cap) != 0 ||
        zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->router, ZMQ_HEARTBEAT_IVL, &heartbeat_ivl, sizeof heartbeat_ivl) != 0 ||
        zmq_setsockopt(self->router, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout,
                       sizeof heartbeat_timeout) != 0 ||
        zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->router, ZMQ_IPV6, &zero, sizeof zero) != 0) {
        snprintf(err, err_len, "cannot configure ROUTER: %s", zmq_strerror(errno));
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
    if (self->router)
        zmq_close(self->router);
    if (self->zap)
        zmq_close(self->zap);
    free(self);
    *self_p = NULL;
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
        if (count >= 7 && zmq_msg_size(&frames[5]) == 5 &&
            memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 && zmq_msg_size(&frames[6]) == 32) {
            identity = pt_directory_identity_for_curve(self->directory, zmq_msg_data(&frames[6]));
            if (identity) {
                status = "200";
                text = "OK";
            }
        }
        if (!identity) {
            char address[64] = "";
            if (count >= 4) {
                size_t len = zmq_msg_size(&frames[3]);
                snprintf(address, sizeof address, "%.*s", (int)(len < 63 ? len : 63),
                         (const char *)zmq_msg_data(&frames[3]));
            }
            pt_log(PT_LOG_WARN, "transport", NULL, NULL,
                   "refused a connection from %s: CURVE key not registered", address);
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

/*  transport — the broker's ROUTER socket (CURVE server) and its ZAP handler.

    The ZAP handler (inproc://zeromq.zap.01, answered from the broker loop) admits
    a connection only if its CURVE public key belongs to an enabled organisation or
    an operator in the directory, and sets the ZeroMQ User-Id of everything that
    connection sends to that identity. pt_transport_recv reads it back per message:
    the broker never trusts an identity written in a frame. The ZAP reply also
    carries the key itself as the metadata property X-Curve-Key (Z85), read back
    into pt_inbound_t.curve_public: an organisation's key sets have windows and
    can be revoked (issue 6), and the broker refuses frames from a connection
    whose key is no longer admitted.

    Frames: a client message must be exactly one non-empty frame of at most
    max_frame_bytes. Larger frames up to a hard cap (2 x max_frame_bytes, the
    socket's ZMQ_MAXMSGSIZE) are received and refused with a reject code; above the
    cap libzmq drops the connection when it reads the frame's size, before it
    allocates anything for it.

    Memory (issue 7): each connection's inbound queue holds at most
    pt_transport_rcvhwm() messages (ZMQ_RCVHWM, derived from the hard cap so that
    one connection buffers at most PT_TRANSPORT_INBOUND_BYTES, plus the one frame
    libzmq is reading); when it is full libzmq stops reading that connection's
    socket (TCP back-pressure), it drops nothing. The queues fill only while the
    broker loop is slower than the peers; frames it refuses (too large, malformed,
    over the rate) cost it little more than a copy.

    Connections (issue 7): a socket monitor counts the TCP connections open on
    the ROUTER (accepted minus disconnected, handshakes in progress included).
    With a cap set (pt_transport_set_max_connections), the ZAP handler refuses a
    new CURVE handshake while more than the cap are open, with ZAP status 500
    ("Too many connections"): the client's libzmq reports
    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH with status 500 and retries on its own
    reconnect interval. Connections already admitted are not touched, and the
    operator is always admitted (so that it can still administer a full broker).
*/
#ifndef PT_TRANSPORT_H
#define PT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "directory.h"
#include "pt_keys.h"

#define PT_ROUTING_ID_MAX 256
/* Inbound bytes one connection may have queued in the broker when every frame is
   at the hard cap (see above): 64 frames at the default max_frame of 1 MiB, so
   that a loop pass still gathers a full batch of small frames from a few
   pipelining clients (a count, not a byte limit, is all libzmq offers). */
#define PT_TRANSPORT_INBOUND_BYTES (128u * 1024 * 1024)

typedef struct _pt_transport_t pt_transport_t;

typedef enum {
    PT_INBOUND_OK = 0,          /* one frame within limits */
    PT_INBOUND_EMPTY,           /* zero-length frame */
    PT_INBOUND_EXTRA_FRAMES,    /* more than one frame */
    PT_INBOUND_TOO_LARGE        /* frame over max_frame_bytes */
} pt_inbound_status_t;

typedef struct {
    uint8_t routing_id[PT_ROUTING_ID_MAX];
    size_t routing_id_len;
    char identity[PT_STORE_ORG_ID_MAX];   /* from ZAP; "" if none */
    /* Issue 6: the connection's CURVE public key (ZAP metadata X-Curve-Key), so a
       connection opened with a key revoked since can be refused. */
    uint8_t curve_public[32];
    int has_curve_public;
    pt_inbound_status_t status;
    uint8_t *data;                        /* the frame (owned; free with pt_inbound_release) */
    size_t len;
    size_t frames;                        /* frames after the routing id (pt_inbound_add) */
} pt_inbound_t;

/* Binds a ROUTER on endpoint as CURVE server with the broker's keys. The
   directory is borrowed and must outlive the transport. NULL on failure (err). */
pt_transport_t *pt_transport_new(void *zmq_context, const char *endpoint,
                                 const pt_keyset_t *broker_keys, const pt_directory_t *directory,
                                 size_t max_frame_bytes, char *err, size_t err_len);
void pt_transport_destroy(pt_transport_t **self_p);

/* Caps the open client connections (0 = no cap; the default). */
void pt_transport_set_max_connections(pt_transport_t *self, size_t max_connections);

/* Client connections open now (handshakes in progress included), after reading
   the monitor's pending events. */
size_t pt_transport_connections(pt_transport_t *self);

/* Handshakes refused because of the connection cap since creation. */
uint64_t pt_transport_refused_count(const pt_transport_t *self);

/* The ZMQ_RCVHWM (messages) and ZMQ_MAXMSGSIZE (bytes) the ROUTER uses for
   max_frame_bytes. */
int pt_transport_rcvhwm(size_t max_frame_bytes);
int64_t pt_transport_hard_cap(size_t max_frame_bytes);

/* Sockets to poll for ZMQ_POLLIN. */
void *pt_transport_router(pt_transport_t *self);
void *pt_transport_zap(pt_transport_t *self);

/* Answers every pending ZAP request (non-blocking). */
void pt_transport_handle_zap(pt_transport_t *self);

/* Receives one client message without blocking. 1 = got one (release it after use),
   0 = nothing pending, -1 = socket error. */
int pt_transport_recv(pt_transport_t *self, pt_inbound_t *in);
void pt_inbound_release(pt_inbound_t *in);

/* How pt_transport_recv turns the frames of one client message into a
   pt_inbound_t, one frame at a time (also the seam of tests/fuzz/fuzz_broker.c):
   begin with the routing id ROUTER prepends (cut at PT_ROUTING_ID_MAX), add each
   frame the client sent (the first is the message: its size is checked against
   max_frame_bytes and it is copied; user_id is the ZAP User-Id stamped on it,
   NULL if none; any later frame makes the message EXTRA_FRAMES), then end (no
   frame at all is EMPTY; a message that is not OK keeps no data). */
void pt_inbound_begin(pt_inbound_t *in, const void *routing_id, size_t len);
void pt_inbound_add(pt_inbound_t *in, const void *data, size_t size, const char *user_id,
                    size_t max_frame_bytes);
void pt_inbound_end(pt_inbound_t *in);

/* Sends one frame to routing_id. 0, or -1 if the peer is gone (EHOSTUNREACH) or the
   send would block (the peer is not reading; the message stays in the database). */
int pt_transport_send(pt_transport_t *self, const uint8_t *routing_id, size_t routing_id_len,
                      const uint8_t *data, size_t len);

#endif

/*  test_broker_transport — the ZAP admission decision of broker/transport.c
    (pt_transport_handle_zap), driven through its real inproc ZAP socket with RFC 27
    requests as libzmq would send them, against a directory built in memory:
    a registered organisation's CURVE key (200, User-Id = the organisation, the key
    as X-Curve-Key metadata), an unknown key (400), a disabled organisation (400),
    a non-CURVE mechanism (400), the operator, and the connection cap (500 while
    more than max_connections TCP connections are open; the operator still 200).
    Open connections are real TCP connections to the ROUTER, counted by its
    socket monitor. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "directory.h"
#include "pt_keys.h"
#include "transport.h"
#include "cu_main.h"

static void *s_ctx;
static pt_keyset_t *s_broker, *s_mx, *s_gt, *s_rogue, *s_operator;
static pt_directory_t *s_dir;
static pt_transport_t *s_transport;
static void *s_zap_client; /* REQ to inproc://zeromq.zap.01, as libzmq's CURVE server */
static int s_port;

static int s_put_org(const char *id, const pt_keyset_t *keys, int enabled)
{
    pt_store_org_t org;
    memset(&org, 0, sizeof org);
    snprintf(org.org_id, sizeof org.org_id, "%s", id);
    pt_sign_key_public(pt_keyset_sign(keys), org.sign_public);
    pt_seal_key_public(pt_keyset_seal(keys), org.seal_public);
    memcpy(org.curve_public, pt_keyset_curve_public(keys), 32);
    org.enabled = enabled;
    return pt_directory_put_org(s_dir, &org);
}

static int s_init(void)
{
    s_ctx = zmq_ctx_new();
    s_broker = pt_keyset_generate("broker");
    s_mx = pt_keyset_generate("MX-DIF");
    s_gt = pt_keyset_generate("GT-PGN");
    s_rogue = pt_keyset_generate("ZZ-ROGUE");
    s_operator = pt_keyset_generate("operator");
    s_dir = pt_directory_new();
    if (!s_ctx || !s_broker || !s_mx || !s_gt || !s_rogue || !s_operator || !s_dir)
        return -1;
    if (s_put_org("MX-DIF", s_mx, 1) || s_put_org("GT-PGN", s_gt, 0) ||
        pt_directory_add_operator(s_dir, pt_keyset_curve_public(s_operator)))
        return -1;
    char err[256] = "";
    s_transport =
        pt_transport_new(s_ctx, "tcp://127.0.0.1:*", s_broker, s_dir, 1 << 20, err, sizeof err);
    if (!s_transport) {
        fprintf(stderr, "test_broker_transport: %s\n", err);
        return -1;
    }
    char endpoint[128];
    size_t len = sizeof endpoint;
    if (zmq_getsockopt(pt_transport_router(s_transport), ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        return -1;
    const char *colon = strrchr(endpoint, ':');
    s_port = colon ? atoi(colon + 1) : 0;
    s_zap_client = zmq_socket(s_ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(s_zap_client, ZMQ_LINGER, &linger, sizeof linger);
    return s_port > 0 && zmq_connect(s_zap_client, "inproc://zeromq.zap.01") == 0 ? 0 : -1;
}

static int s_clean(void)
{
    if (s_zap_client)
        zmq_close(s_zap_client);
    pt_transport_destroy(&s_transport);
    if (s_ctx)
        zmq_ctx_term(s_ctx);
    pt_directory_destroy(&s_dir);
    pt_keyset_t **all[] = {&s_broker, &s_mx, &s_gt, &s_rogue, &s_operator};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pt_keyset_destroy(all[i]);
    return 0;
}

typedef struct {
    char status[8];
    char user_id[64];
    char curve_meta[64]; /* the X-Curve-Key value, "" if none */
    int frames;
} s_reply_t;

/* Sends one ZAP request (mechanism, and the 32-byte key for CURVE), lets the
   transport answer it, and reads the reply. */
static s_reply_t s_zap(const char *mechanism, const uint8_t *key)
{
    s_reply_t r;
    memset(&r, 0, sizeof r);
    zmq_send(s_zap_client, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s_zap_client, "42", 2, ZMQ_SNDMORE);
    zmq_send(s_zap_client, "puente", 6, ZMQ_SNDMORE);
    zmq_send(s_zap_client, "127.0.0.1", 9, ZMQ_SNDMORE);
    zmq_send(s_zap_client, "", 0, ZMQ_SNDMORE);
    zmq_send(s_zap_client, mechanism, strlen(mechanism), key ? ZMQ_SNDMORE : 0);
    if (key)
        zmq_send(s_zap_client, key, 32, 0);
    /* The request is in the transport's inproc queue once zmq_send returned. */
    pt_transport_handle_zap(s_transport);
    char buf[256];
    int more = 1;
    while (more) {
        int n = zmq_recv(s_zap_client, buf, sizeof buf - 1, 0);
        if (n < 0)
            break;
        buf[n < (int)sizeof buf - 1 ? n : (int)sizeof buf - 1] = '\0';
        if (r.frames == 1)
            CU_ASSERT_STRING_EQUAL(buf, "42"); /* request id echoed */
        if (r.frames == 2)
            snprintf(r.status, sizeof r.status, "%.7s", buf);
        if (r.frames == 4)
            snprintf(r.user_id, sizeof r.user_id, "%.63s", buf);
        if (r.frames == 5 && n == 16 + PT_Z85_KEY_CHARS && memcmp(buf + 1, "X-Curve-Key", 11) == 0)
            snprintf(r.curve_meta, sizeof r.curve_meta, "%.*s", PT_Z85_KEY_CHARS, buf + 16);
        r.frames++;
        int m = 0;
        size_t ml = sizeof m;
        zmq_getsockopt(s_zap_client, ZMQ_RCVMORE, &m, &ml);
        more = m;
    }
    return r;
}

static void test_admission(void)
{
    s_reply_t r = s_zap("CURVE", pt_keyset_curve_public(s_mx));
    CU_ASSERT_EQUAL(r.frames, 6);
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    CU_ASSERT_STRING_EQUAL(r.user_id, "MX-DIF");
    CU_ASSERT_STRING_EQUAL(r.curve_meta, pt_keyset_curve_public_z85(s_mx));

    r = s_zap("CURVE", pt_keyset_curve_public(s_rogue)); /* unknown key */
    CU_ASSERT_STRING_EQUAL(r.status, "400");
    CU_ASSERT_STRING_EQUAL(r.user_id, "");
    CU_ASSERT_STRING_EQUAL(r.curve_meta, "");

    r = s_zap("CURVE", pt_keyset_curve_public(s_gt)); /* registered, disabled */
    CU_ASSERT_STRING_EQUAL(r.status, "400");
    CU_ASSERT_STRING_EQUAL(r.user_id, "");

    r = s_zap("NULL", NULL); /* not CURVE */
    CU_ASSERT_STRING_EQUAL(r.status, "400");
    r = s_zap("PLAIN", pt_keyset_curve_public(s_mx)); /* MX-DIF's key, wrong mechanism */
    CU_ASSERT_STRING_EQUAL(r.status, "400");

    r = s_zap("CURVE", pt_keyset_curve_public(s_operator));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    CU_ASSERT_STRING_EQUAL(r.user_id, PT_OPERATOR_ID);

    /* Enabling GT-PGN admits its key. */
    CU_ASSERT_EQUAL(pt_directory_set_org_enabled(s_dir, "GT-PGN", 1), 0);
    r = s_zap("CURVE", pt_keyset_curve_public(s_gt));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    CU_ASSERT_STRING_EQUAL(r.user_id, "GT-PGN");
}

static int s_tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Waits (generously) until the monitor counted `want` open connections. */
static size_t s_wait_open(size_t want)
{
    size_t open = 0;
    for (int i = 0; i < 1000 && (open = pt_transport_connections(s_transport)) != want; i++)
        usleep(10 * 1000);
    return open;
}

static void test_connection_cap(void)
{
    pt_transport_set_max_connections(s_transport, 1);
    CU_ASSERT_EQUAL(s_wait_open(0), 0);
    int a = s_tcp_connect();
    CU_ASSERT_FATAL(a >= 0);
    CU_ASSERT_EQUAL(s_wait_open(1), 1);
    /* One open (this handshake's own): within the cap. */
    s_reply_t r = s_zap("CURVE", pt_keyset_curve_public(s_mx));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    int b = s_tcp_connect();
    CU_ASSERT_FATAL(b >= 0);
    CU_ASSERT_EQUAL(s_wait_open(2), 2);
    uint64_t refused = pt_transport_refused_count(s_transport);
    r = s_zap("CURVE", pt_keyset_curve_public(s_mx));
    CU_ASSERT_STRING_EQUAL(r.status, "500");
    CU_ASSERT_STRING_EQUAL(r.user_id, "");
    CU_ASSERT_EQUAL(pt_transport_refused_count(s_transport), refused + 1);
    /* The operator is always admitted; an unknown key is still 400, not 500. */
    r = s_zap("CURVE", pt_keyset_curve_public(s_operator));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    r = s_zap("CURVE", pt_keyset_curve_public(s_rogue));
    CU_ASSERT_STRING_EQUAL(r.status, "400");
    /* A connection closes: admitted again. */
    close(b);
    CU_ASSERT_EQUAL(s_wait_open(1), 1);
    r = s_zap("CURVE", pt_keyset_curve_public(s_mx));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    /* No cap: never 500. */
    int c = s_tcp_connect();
    CU_ASSERT_EQUAL(s_wait_open(2), 2);
    pt_transport_set_max_connections(s_transport, 0);
    r = s_zap("CURVE", pt_keyset_curve_public(s_mx));
    CU_ASSERT_STRING_EQUAL(r.status, "200");
    close(a);
    if (c >= 0)
        close(c);
    CU_ASSERT_EQUAL(s_wait_open(0), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker transport (ZAP)", s_init, s_clean);
    CU_add_test(suite, "registered, unknown, disabled, operator", test_admission);
    CU_add_test(suite, "connection cap", test_connection_cap);
    return pt_cu_main();
}

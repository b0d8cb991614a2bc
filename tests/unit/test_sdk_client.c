/*  Unit tests of the client against a scripted fake broker (a ROUTER with CURVE in a
    thread): hello, directory, send with verified receipt, bad receipts, rejects,
    retry-later resubmission of the same envelope, receive/verify/open, refusal of a
    tampered delivery, dedup of redeliveries, connection errors; and, with a second
    fake broker on the same keys, failover across an endpoint list (issue 9). */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_receipt.h"
#include "puente.h"
#include "cu_main.h"

enum { MODE_GOOD, MODE_BAD_SIG, MODE_REJECT, MODE_RETRY_ONCE, MODE_SILENT };

typedef struct {
    char endpoint[64];
    pt_keyset_t *broker;
    pt_keyset_t *orgs[2];
    volatile int mode;
    int retry_sent;
    uint8_t *deliver[4];
    size_t deliver_len[4];
    int n_deliver;
    volatile int submits;
    volatile int same_id;
    uint8_t first_id[16];
    volatile int acks;
    volatile int hellos;
    void *ctx;
    void *router;
    volatile int stop;
    pthread_t thread;
} fake_t;

static char s_keys_dir[] = "/tmp/test_sdk_client_XXXXXX";
static fake_t s_fake;

static void s_reply(fake_t *f, zmq_msg_t *ident, const Puente__V1__BrokerFrame *bf)
{
    size_t len = puente__v1__broker_frame__get_packed_size(bf);
    uint8_t *buf = malloc(len + 1);
    puente__v1__broker_frame__pack(bf, buf);
    zmq_send(f->router, zmq_msg_data(ident), zmq_msg_size(ident), ZMQ_SNDMORE);
    zmq_send(f->router, buf, len, 0);
    free(buf);
}

static void s_handle(fake_t *f, zmq_msg_t *ident, const uint8_t *data, size_t len)
{
    Puente__V1__ClientFrame *cf = puente__v1__client_frame__unpack(NULL, len, data);
    if (!cf)
        return;
    Puente__V1__BrokerFrame bf = PUENTE__V1__BROKER_FRAME__INIT;
    switch (cf->body_case) {
    case PUENTE__V1__CLIENT_FRAME__BODY_HELLO: {
        f->hellos++;
        Puente__V1__Welcome w = PUENTE__V1__WELCOME__INIT;
        w.broker_version = "fake";
        w.max_frame_bytes = 1 << 20;
        bf.body_case = PUENTE__V1__BROKER_FRAME__BODY_WELCOME;
        bf.welcome = &w;
        s_reply(f, ident, &bf);
        for (int i = 0; cf->hello->receive && i < f->n_deliver; i++) {
            Puente__V1__Envelope *env =
                puente__v1__envelope__unpack(NULL, f->deliver_len[i], f->deliver[i]);
            Puente__V1__Deliver d = PUENTE__V1__DELIVER__INIT;
            d.envelope = env;
            d.delivery_id = (uint64_t) i + 1;
            d.attempt = 1;
            Puente__V1__BrokerFrame df = PUENTE__V1__BROKER_FRAME__INIT;
            df.body_case = PUENTE__V1__BROKER_FRAME__BODY_DELIVER;
            df.deliver = &d;
            s_reply(f, ident, &df);
            puente__v1__envelope__free_unpacked(env, NULL);
        }
        break;
    }
    case PUENTE__V1__CLIENT_FRAME__BODY_DIRECTORY: {
        Puente__V1__OrgKeys keys[2], *list[2];
        uint8_t pubs[2][3][32];
        for (int i = 0; i < 2; i++) {
            puente__v1__org_keys__init(&keys[i]);
            keys[i].org_id = (char *) pt_keyset_org(f->orgs[i]);
            pt_sign_key_public(pt_keyset_sign(f->orgs[i]), pubs[i][0]);
            pt_seal_key_public(pt_keyset_seal(f->orgs[i]), pubs[i][1]);
            memcpy(pubs[i][2], pt_keyset_curve_public(f->orgs[i]), 32);
            keys[i].sign_public = (ProtobufCBinaryData) { 32, pubs[i][0] };
            keys[i].seal_public = (ProtobufCBinaryData) { 32, pubs[i][1] };
            keys[i].curve_public = (ProtobufCBinaryData) { 32, pubs[i][2] };
            keys[i].enabled = 1;
            list[i] = &keys[i];
        }
        Puente__V1__DirectoryEntries e = PUENTE__V1__DIRECTORY_ENTRIES__INIT;
        e.n_orgs = 2;
        e.orgs = list;
        size_t elen = puente__v1__directory_entries__get_packed_size(&e);
        uint8_t *ebuf = malloc(elen + 1), sig[64];
        puente__v1__directory_entries__pack(&e, ebuf);
        pt_sign(pt_keyset_sign(f->broker), PT_DOMAIN_DIRECTORY, ebuf, elen, sig);
        Puente__V1__DirectoryReply r = PUENTE__V1__DIRECTORY_REPLY__INIT;
        r.entries = (ProtobufCBinaryData) { elen, ebuf };
        r.signature = (ProtobufCBinaryData) { 64, sig };
        r.request_id = cf->directory->request_id;
        bf.body_case = PUENTE__V1__BROKER_FRAME__BODY_DIRECTORY;
        bf.directory = &r;
        s_reply(f, ident, &bf);
        free(ebuf);
        break;
    }
    case PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT: {
        Puente__V1__Envelope *env = cf->submit;
        Puente__V1__Header *h =
            puente__v1__header__unpack(NULL, env->header.len, env->header.data);
        if (!h)
            break;
        if (f->submits == 0)
            memcpy(f->first_id, h->message_id.data, 16);
        else
            f->same_id = memcmp(f->first_id, h->message_id.data, 16) == 0;
        f->submits++;
        int mode = f->mode;
        if (mode == MODE_SILENT) {
            puente__v1__header__free_unpacked(h, NULL);
            break;
        }
        if (mode == MODE_REJECT || (mode == MODE_RETRY_ONCE && !f->retry_sent)) {
            f->retry_sent = 1;
            Puente__V1__Reject rj = PUENTE__V1__REJECT__INIT;
            rj.message_id = h->message_id;
            rj.code = mode == MODE_REJECT ? PUENTE__V1__REJECT_CODE__REJECT_NO_AGREEMENT
                                          : PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER;
            rj.reason = "scripted";
            bf.body_case = PUENTE__V1__BROKER_FRAME__BODY_REJECT;
            bf.reject = &rj;
            s_reply(f, ident, &bf);
            puente__v1__header__free_unpacked(h, NULL);
            break;
        }
        uint8_t hsha[32], ehash[32], sig[64];
        pt_sha256(env->header.data, env->header.len, hsha);
        memset(ehash, 0xab, sizeof ehash);
        Puente__V1__Receipt r = PUENTE__V1__RECEIPT__INIT;
        r.message_id = h->message_id;
        r.stored_at_ms = 1740830400250LL;
        pt_receipt_sign(pt_keyset_sign(f->broker), h->message_id.data, r.stored_at_ms, hsha,
                        ehash, sig);
        if (mode == MODE_BAD_SIG)
            sig[10] ^= 1;
        r.header_sha256 = (ProtobufCBinaryData) { 32, hsha };
        r.event_hash = (ProtobufCBinaryData) { 32, ehash };
        r.broker_signature = (ProtobufCBinaryData) { 64, sig };
        bf.body_case = PUENTE__V1__BROKER_FRAME__BODY_RECEIPT;
        bf.receipt = &r;
        s_reply(f, ident, &bf);
        puente__v1__header__free_unpacked(h, NULL);
        break;
    }
    case PUENTE__V1__CLIENT_FRAME__BODY_ACK: {
        f->acks++;
        Puente__V1__Acked a = PUENTE__V1__ACKED__INIT;
        a.message_id = cf->ack->message_id;
        bf.body_case = PUENTE__V1__BROKER_FRAME__BODY_ACKED;
        bf.acked = &a;
        s_reply(f, ident, &bf);
        break;
    }
    default: break;
    }
    puente__v1__client_frame__free_unpacked(cf, NULL);
}

static void *s_fake_run(void *arg)
{
    fake_t *f = arg;
    while (!f->stop) {
        zmq_pollitem_t item = { f->router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        zmq_msg_t ident, body;
        zmq_msg_init(&ident);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&ident, f->router, 0) >= 0 && zmq_msg_more(&ident)
            && zmq_msg_recv(&body, f->router, 0) >= 0)
            s_handle(f, &ident, zmq_msg_data(&body), zmq_msg_size(&body));
        zmq_msg_close(&ident);
        zmq_msg_close(&body);
    }
    return NULL;
}

/* Binds f's ROUTER (with f->broker's keys) on a free loopback port and starts its thread. */
static int s_fake_start(fake_t *f)
{
    f->stop = 0;
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    const char *sec = pt_keyset_curve_secret_z85(f->broker);
    zmq_setsockopt(f->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(f->router, ZMQ_CURVE_SECRETKEY, sec, strlen(sec));
    zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(f->router, "tcp://127.0.0.1:*") != 0)
        return -1;
    size_t len = sizeof f->endpoint;
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
    return pthread_create(&f->thread, NULL, s_fake_run, f) == 0 ? 0 : -1;
}

/* Stops the thread and closes the socket: the broker is gone (its port refuses). */
static void s_fake_stop(fake_t *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    f->router = NULL;
    f->ctx = NULL;
}

static int s_suite_init(void)
{
    if (!mkdtemp(s_keys_dir))
        return -1;
    fake_t *f = &s_fake;
    f->broker = pt_keyset_generate("broker");
    f->orgs[0] = pt_keyset_generate("MX-DIF");
    f->orgs[1] = pt_keyset_generate("GT-PGN");
    if (!f->broker || !f->orgs[0] || !f->orgs[1] || pt_keyset_save(f->broker, s_keys_dir)
        || pt_keyset_save(f->orgs[0], s_keys_dir) || pt_keyset_save(f->orgs[1], s_keys_dir))
        return -1;
    return s_fake_start(f);
}

static int s_suite_clean(void)
{
    fake_t *f = &s_fake;
    s_fake_stop(f);
    for (int i = 0; i < f->n_deliver; i++)
        free(f->deliver[i]);
    pt_keyset_destroy(&f->broker);
    pt_keyset_destroy(&f->orgs[0]);
    pt_keyset_destroy(&f->orgs[1]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_keys_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static pt_client_t *s_client(const char *org, int receive)
{
    pt_client_opts_t opts = { .endpoint = s_fake.endpoint,
                              .keys_dir = s_keys_dir,
                              .org_id = org,
                              .receive = receive,
                              .timeout_ms = 3000 };
    char err[PUENTE_ERR_BYTES];
    pt_client_t *c = pt_client_new(&opts, err, sizeof err);
    if (!c)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* A packed referral.request from the type's example. */
static uint8_t *s_example_body(size_t *len)
{
    const pt_type_t *t = pt_types_find("referral.request");
    ProtobufCMessage *m = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (!t || pt_json_to_message(t->descriptor, t->example_json, strlen(t->example_json), &m, err,
                                 sizeof err))
        return NULL;
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    return buf;
}

static pt_client_result_t s_send_one(pt_client_t *c, pt_receipt_info_t *rcpt, pt_reject_info_t *rej)
{
    size_t len = 0;
    uint8_t *body = s_example_body(&len);
    const char *to[] = { "GT-PGN" };
    pt_send_t msg = { .message_type = "referral.request",
                      .recipients = to,
                      .n_recipients = 1,
                      .case_token = "CASE-T1",
                      .body = body,
                      .body_len = len };
    pt_client_result_t rc = pt_client_send(c, &msg, rcpt, rej);
    free(body);
    return rc;
}

static void test_connect_errors(void)
{
    char err[PUENTE_ERR_BYTES];
    pt_client_result_t code = PT_CLIENT_OK;
    pt_client_opts_t opts = { .endpoint = s_fake.endpoint, .keys_dir = s_keys_dir,
                              .org_id = "HN-DINAF", .timeout_ms = 300 };
    CU_ASSERT_PTR_NULL(pt_client_new_ex(&opts, err, sizeof err, &code));
    CU_ASSERT_EQUAL(code, PT_CLIENT_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "HN-DINAF"));
    opts.org_id = "MX-DIF";
    opts.endpoint = "tcp://127.0.0.1:1";
    CU_ASSERT_PTR_NULL(pt_client_new_ex(&opts, err, sizeof err, &code));
    CU_ASSERT_EQUAL(code, PT_CLIENT_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot reach broker at tcp://127.0.0.1:1"));
    opts.org_id = "not an org";
    CU_ASSERT_PTR_NULL(pt_client_new_ex(&opts, err, sizeof err, &code));
    CU_ASSERT_EQUAL(code, PT_CLIENT_INVALID);
}

static void test_send_receipt(void)
{
    s_fake.mode = MODE_GOOD;
    s_fake.submits = 0;
    pt_client_t *c = s_client("MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const pt_keyset_t *gt = pt_client_directory_keys(c, "GT-PGN");
    CU_ASSERT_PTR_NOT_NULL(gt);
    CU_ASSERT_PTR_NULL(pt_client_directory_keys(c, "SV-CONNA"));
    pt_receipt_info_t r;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(s_send_one(c, &r, &rej), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(r.stored_at_ms, 1740830400250LL);
    CU_ASSERT_EQUAL(r.event_hash[0], 0xab);
    CU_ASSERT_EQUAL(memcmp(r.message_id, s_fake.first_id, 16), 0);
    /* No correlation given: the message starts its own thread. */
    CU_ASSERT_EQUAL(memcmp(r.correlation_id, r.message_id, 16), 0);
    CU_ASSERT_EQUAL(s_fake.submits, 1);

    s_fake.mode = MODE_BAD_SIG;
    CU_ASSERT_EQUAL(s_send_one(c, &r, &rej), PT_CLIENT_BAD_REPLY);

    s_fake.mode = MODE_REJECT;
    CU_ASSERT_EQUAL(s_send_one(c, &r, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_NO_AGREEMENT);
    CU_ASSERT_STRING_EQUAL(rej.code_name, "REJECT_NO_AGREEMENT");
    CU_ASSERT_STRING_EQUAL(rej.reason, "scripted");

    /* RETRY_LATER: the same envelope (same id) is submitted again. */
    s_fake.mode = MODE_RETRY_ONCE;
    s_fake.retry_sent = 0;
    s_fake.submits = 0;
    s_fake.same_id = 0;
    CU_ASSERT_EQUAL(s_send_one(c, &r, &rej), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(s_fake.submits, 2);
    CU_ASSERT_EQUAL(s_fake.same_id, 1);

    /* Unknown type and a body that is not the type: refused locally. */
    const char *to[] = { "GT-PGN" };
    uint8_t junk[] = { 0xff, 0xff, 0xff };
    pt_send_t bad = { .message_type = "referral.nope", .recipients = to, .n_recipients = 1,
                      .case_token = "C", .body = junk, .body_len = sizeof junk };
    CU_ASSERT_EQUAL(pt_client_send(c, &bad, &r, &rej), PT_CLIENT_INVALID);
    bad.message_type = "referral.request";
    CU_ASSERT_EQUAL(pt_client_send(c, &bad, &r, &rej), PT_CLIENT_INVALID);
    /* A recipient the directory does not know is a reject, not a crash. */
    const char *unknown[] = { "SV-CONNA" };
    size_t len;
    uint8_t *body = s_example_body(&len);
    pt_send_t msg = { .message_type = "referral.request", .recipients = unknown,
                      .n_recipients = 1, .case_token = "C", .body = body, .body_len = len };
    CU_ASSERT_EQUAL(pt_client_send(c, &msg, &r, &rej), PT_CLIENT_REJECTED);
    CU_ASSERT_EQUAL(rej.code, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_RECIPIENT);
    free(body);
    pt_client_destroy(&c);
    CU_ASSERT_PTR_NULL(c);
}

static void test_send_timeout(void)
{
    s_fake.mode = MODE_SILENT;
    s_fake.submits = 0;
    s_fake.same_id = 0;
    pt_client_t *c = s_client("MX-DIF", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    pt_receipt_info_t r;
    pt_reject_info_t rej;
    CU_ASSERT_EQUAL(s_send_one(c, &r, &rej), PT_CLIENT_UNREACHABLE);
    /* 3 s timeout, resent every 2 s: at least twice, always the same id. */
    CU_ASSERT(s_fake.submits >= 2);
    CU_ASSERT_EQUAL(s_fake.same_id, 1);
    pt_client_destroy(&c);
    s_fake.mode = MODE_GOOD;
}

/* An envelope from GT-PGN to MX-DIF, sealed as a real sender would. */
static uint8_t *s_envelope_for_mx(size_t *out_len)
{
    size_t blen;
    uint8_t *body = s_example_body(&blen);
    uint8_t id[16];
    pt_uuidv7(id);
    char *recips[] = { "MX-DIF" };
    Puente__V1__ConsentSummary cs = PUENTE__V1__CONSENT_SUMMARY__INIT;
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_id = (ProtobufCBinaryData) { 16, id };
    h.correlation_id = (ProtobufCBinaryData) { 16, id };
    h.message_type = "referral.request";
    h.sender = "GT-PGN";
    h.n_recipients = 1;
    h.recipients = recips;
    h.created_at_ms = pt_now_ms();
    h.purpose = "service_provision";
    h.case_token = "CASE-T2";
    h.consent = &cs;
    const pt_seal_key_t *seal[] = { pt_keyset_seal(s_fake.orgs[0]) };
    uint8_t *env = NULL;
    if (pt_envelope_seal(&h, body, blen, pt_keyset_sign(s_fake.orgs[1]), seal, 1, &env, out_len)
        != PT_ENV_OK)
        env = NULL;
    free(body);
    return env;
}

static void test_receive(void)
{
    size_t len[3];
    uint8_t *good = s_envelope_for_mx(&len[0]);
    uint8_t *tampered = s_envelope_for_mx(&len[1]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tampered);
    /* Flip a bit of the header signature (the last field's last byte region). */
    Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, len[1], tampered);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    e->header_signature.data[5] ^= 1;
    size_t tlen = puente__v1__envelope__get_packed_size(e);
    uint8_t *t2 = malloc(tlen);
    puente__v1__envelope__pack(e, t2);
    puente__v1__envelope__free_unpacked(e, NULL);
    free(tampered);
    uint8_t *dup = malloc(len[0]);
    memcpy(dup, good, len[0]);
    s_fake.deliver[0] = good;
    s_fake.deliver_len[0] = len[0];
    s_fake.deliver[1] = t2;
    s_fake.deliver_len[1] = tlen;
    s_fake.deliver[2] = dup; /* a redelivery of the first */
    s_fake.deliver_len[2] = len[0];
    s_fake.n_deliver = 3;
    s_fake.acks = 0;

    pt_client_t *c = s_client("MX-DIF", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    pt_message_t *m = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_client_recv(c, 2000, &m), PT_CLIENT_OK);
    CU_ASSERT_STRING_EQUAL(pt_message_header(m)->sender, "GT-PGN");
    CU_ASSERT_STRING_EQUAL(pt_message_type(m)->name, "referral.request");
    CU_ASSERT_PTR_EQUAL(pt_message_body(m)->descriptor, pt_types_find("referral.request")->descriptor);
    size_t blen = 0;
    CU_ASSERT_PTR_NOT_NULL(pt_message_body_bytes(m, &blen));
    CU_ASSERT(blen > 0);
    CU_ASSERT_EQUAL(pt_client_ack(c, pt_message_id(m)), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(s_fake.acks, 1);
    pt_message_destroy(&m);
    CU_ASSERT_PTR_NULL(m);

    /* The tampered one is refused, never handed over, and not acked. */
    CU_ASSERT_EQUAL(pt_client_recv(c, 2000, &m), PT_CLIENT_REFUSED);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(c), "signature"));
    /* The redelivery of an acked id is re-acked silently, not handed over again. */
    CU_ASSERT_EQUAL(pt_client_recv(c, 500, &m), PT_CLIENT_TIMEOUT);
    CU_ASSERT_PTR_NULL(m);
    usleep(100 * 1000);
    CU_ASSERT_EQUAL(s_fake.acks, 2);
    pt_client_destroy(&c);
    s_fake.n_deliver = 0;
    free(good);
    free(t2);
    free(dup);
    s_fake.deliver[0] = s_fake.deliver[1] = s_fake.deliver[2] = NULL;
}

/* Issue 9: a list of two brokers with the same keys. The client starts on the
   first, moves to the second when the first goes away (inside the send that
   needs it, which then gets its receipt there), says Hello there again, and
   reports where it is. A first endpoint that refuses at start is skipped. */
static void test_failover(void)
{
    fake_t second;
    memset(&second, 0, sizeof second);
    second.broker = s_fake.broker; /* one deployment: one broker key pair */
    second.orgs[0] = s_fake.orgs[0];
    second.orgs[1] = s_fake.orgs[1];
    CU_ASSERT_EQUAL_FATAL(s_fake_start(&second), 0);
    s_fake.mode = MODE_GOOD;
    s_fake.submits = 0;
    s_fake.hellos = 0;
    char list[200];
    snprintf(list, sizeof list, "%s, %s", second.endpoint, s_fake.endpoint);
    pt_client_opts_t opts = { .endpoint = list, .keys_dir = s_keys_dir, .org_id = "MX-DIF",
                              .receive = 1, .timeout_ms = 15000 };
    char err[PUENTE_ERR_BYTES];
    pt_client_t *c = pt_client_new(&opts, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(pt_client_endpoint(c), second.endpoint);
    CU_ASSERT_EQUAL(pt_client_failovers(c), 0);
    pt_receipt_info_t r;
    CU_ASSERT_EQUAL(s_send_one(c, &r, NULL), PT_CLIENT_OK);
    CU_ASSERT_EQUAL(second.submits, 1);
    CU_ASSERT_EQUAL(second.hellos, 1);

    s_fake_stop(&second); /* the first broker dies */
    CU_ASSERT_EQUAL(s_send_one(c, &r, NULL), PT_CLIENT_OK);
    CU_ASSERT_STRING_EQUAL(pt_client_endpoint(c), s_fake.endpoint);
    CU_ASSERT_EQUAL(pt_client_failovers(c), 1);
    CU_ASSERT_EQUAL(s_fake.submits, 1);
    /* The receiving session is set up again on the new broker. */
    pt_message_t *m = NULL;
    for (int i = 0; i < 50 && s_fake.hellos == 0; i++)
        CU_ASSERT_EQUAL(pt_client_recv(c, 100, &m), PT_CLIENT_TIMEOUT);
    CU_ASSERT_EQUAL(s_fake.hellos, 1);
    pt_client_destroy(&c);

    /* A dead first entry at start: pt_client_new moves on by itself. */
    snprintf(list, sizeof list, "%s,%s", second.endpoint, s_fake.endpoint);
    opts.receive = 0;
    c = pt_client_new(&opts, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(pt_client_endpoint(c), s_fake.endpoint);
    CU_ASSERT_EQUAL(pt_client_failovers(c), 1);
    pt_client_destroy(&c);

    /* Nobody there at all: unreachable, naming the list. */
    opts.endpoint = "tcp://127.0.0.1:1,tcp://127.0.0.1:2";
    opts.timeout_ms = 2500;
    pt_client_result_t code = PT_CLIENT_OK;
    CU_ASSERT_PTR_NULL(pt_client_new_ex(&opts, err, sizeof err, &code));
    CU_ASSERT_EQUAL(code, PT_CLIENT_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot reach any of 2 brokers"));
    /* A malformed list is a local error naming the entry. */
    opts.endpoint = "tcp://127.0.0.1:1,tcp://127.0.0.1";
    CU_ASSERT_PTR_NULL(pt_client_new_ex(&opts, err, sizeof err, &code));
    CU_ASSERT_EQUAL(code, PT_CLIENT_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "broker endpoint list, entry 2 of 2 ('tcp://127.0.0.1'): no port "
                                "(expected tcp://HOST:PORT)");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("sdk_client", s_suite_init, s_suite_clean);
    CU_add_test(s, "connection errors", test_connect_errors);
    CU_add_test(s, "send, receipt, rejects, retry-later", test_send_receipt);
    CU_add_test(s, "resubmits the same envelope until the timeout", test_send_timeout);
    CU_add_test(s, "receive, verify, refuse, dedup", test_receive);
    CU_add_test(s, "fails over across an endpoint list", test_failover);
    return pt_cu_main();
}

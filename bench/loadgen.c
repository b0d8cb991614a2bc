/*  loadgen — the Puente benchmark (`make bench`, driven by bench/run.sh).

    Measures a real puente-broker on a real PostgreSQL (durable commits) over real
    CURVE sockets, and, in the same run, the limits of the parts it is made of:
    Ed25519 verification with pt_verify, the store's insert path without crypto
    (pt_store_submit_batch), and a ZeroMQ CURVE DEALER/ROUTER round trip.

    Every envelope (1 KiB body, sealed and signed) is built BEFORE the timed
    window, so the generator does not compete with the broker for the CPU while
    it signs. Senders are raw DEALER sockets (one per sending organisation) kept
    busy up to a window of outstanding submits; a receiver thread on its own
    DEALER acks each delivery, without opening it (throughput modes) or after
    checking, verifying and opening it (end-to-end mode).

    Message ids are UUIDv7 whose last four bytes carry the message's index in
    the run, so a receipt or a delivery finds its submit time without a lookup.

    Needs PUENTE_TEST_DB (a cluster's admin conninfo) and PUENTE_BROKER_BIN /
    PUENTE_SQL_DIR like the integration tests: tests/lib/harness.c creates the
    database, the keys and the broker. Figures go to stdout as a table and to
    --json as one JSON object; --dat gets the latency-versus-offered-rate points.
*/
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli_progress.h"
#include "control.pb-c.h"
#include "harness.h"
#include "pt_envelope.h"
#include "pt_json.h"
#include "pt_keys.h"
#include "pt_types.h"
#include "store.h"

#define BENCH_BODY_BYTES 1024
#define BENCH_RECEIVER "GT-PGN"
/* The two-broker modes' receiver: one without the backlog earlier modes may leave
   (the paced modes fall behind on a busy machine), so they measure the same thing. */
#define BENCH_RECEIVER_2B "HN-DINAF"
#define BENCH_SINK "US-ORR" /* ingest-only target: nobody ever receives for it */
#define BENCH_MESSAGE_TYPE "referral.request"
#define BENCH_MAX_SENDERS 3

static const char *const s_senders_to_receiver[BENCH_MAX_SENDERS] = {"MX-DIF", "HN-DINAF",
                                                                     "SV-CONNA"};
static const char *const s_senders_to_receiver_2b[BENCH_MAX_SENDERS] = {"MX-DIF", "GT-PGN",
                                                                        "SV-CONNA"};
/* SV-CONNA has no agreement with US-ORR in the demo set. */
static const char *const s_senders_to_sink[BENCH_MAX_SENDERS] = {"MX-DIF", "HN-DINAF", "GT-PGN"};

/* --- small helpers ---------------------------------------------------------- */

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t n;
    double p50_us, p95_us, p99_us, max_us;
} s_pct_t;

/* Percentiles of samples (ns), sorted in place. */
static s_pct_t s_percentiles(int64_t *samples, size_t n)
{
    s_pct_t p = {n, 0, 0, 0, 0};
    if (n == 0)
        return p;
    qsort(samples, n, sizeof *samples, s_cmp_i64);
    p.p50_us = samples[(size_t)(0.50 * (double)(n - 1))] / 1000.0;
    p.p95_us = samples[(size_t)(0.95 * (double)(n - 1))] / 1000.0;
    p.p99_us = samples[(size_t)(0.99 * (double)(n - 1))] / 1000.0;
    p.max_us = samples[n - 1] / 1000.0;
    return p;
}

/* Writes the key and length of protobuf field 1, length-delimited, for len bytes
   of content, at out (room for 11); returns the bytes written. */
static size_t s_field1_head(uint8_t *out, size_t len)
{
    size_t at = 0;
    out[at++] = 0x0A;
    for (size_t v = len;; v >>= 7) {
        out[at++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        if (v <= 0x7F)
            break;
    }
    return at;
}

static uint32_t s_index_of(const uint8_t *id)
{
    return (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 | (uint32_t)id[14] << 8 | id[15];
}

/* --- the broker process (a child started by the harness) -------------------- */

static pid_t s_find_broker(void)
{
    DIR *dir = opendir("/proc");
    pid_t found = 0;
    if (!dir)
        return 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && !found) {
        char path[300], buf[512];
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *file = fopen(path, "r");
        if (!file)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, file);
        fclose(file);
        buf[len] = '\0';
        char *close_paren = strrchr(buf, ')');
        if (!close_paren || !strstr(buf, "(puente-broker)"))
            continue;
        int ppid = 0;
        char state;
        if (sscanf(close_paren + 2, "%c %d", &state, &ppid) == 2 && ppid == getpid())
            found = (pid_t)atoi(entry->d_name);
    }
    closedir(dir);
    return found;
}

/* utime + stime of pid in microseconds, -1 if unreadable. */
static int64_t s_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, file);
    fclose(file);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* Fields after the command: state(3) ... utime(14) stime(15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (int64_t)(utime + stime) * 1000000LL / sysconf(_SC_CLK_TCK);
}

/* CPU of the PostgreSQL cluster in microseconds: the postmaster with its reaped
   children (cutime, cstime) plus the live backends. -1 without a pid file. */
static int64_t s_pg_cpu_us(void)
{
    const char *pidfile = getenv("BENCH_PG_PIDFILE");
    FILE *file = pidfile ? fopen(pidfile, "r") : NULL;
    int postmaster = 0;
    if (!file)
        return -1;
    if (fscanf(file, "%d", &postmaster) != 1)
        postmaster = 0;
    fclose(file);
    if (postmaster <= 0)
        return -1;
    int64_t total = 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return -1;
    struct dirent *entry;
    long tick = sysconf(_SC_CLK_TCK);
    while ((entry = readdir(dir)) != NULL) {
        char path[300], buf[1024];
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *stat = fopen(path, "r");
        if (!stat)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, stat);
        fclose(stat);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        int ppid = 0;
        unsigned long utime = 0, stime = 0;
        long cutime = 0, cstime = 0;
        if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ppid,
                         &utime, &stime, &cutime, &cstime) != 5)
            continue;
        int pid = atoi(entry->d_name);
        if (pid == postmaster)
            total += (int64_t)(utime + stime) + cutime + cstime;
        else if (ppid == postmaster)
            total += (int64_t)(utime + stime);
    }
    closedir(dir);
    return total * 1000000LL / tick;
}

/* Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
static void s_machine_jiffies(int64_t *busy, int64_t *total)
{
    unsigned long long v[8] = {0};
    FILE *file = fopen("/proc/stat", "r");
    *busy = *total = 0;
    if (!file)
        return;
    if (fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += (int64_t)v[i];
        *busy = *total - (int64_t)(v[3] + v[4]); /* minus idle and iowait */
    }
    fclose(file);
}

/* A "Vm...:" value of /proc/pid/status in KiB, -1 if absent. */
static long s_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    long value = -1;
    if (!file)
        return -1;
    size_t key_len = strlen(key);
    while (fgets(line, sizeof line, file))
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ':')
            value = strtol(line + key_len + 1, NULL, 10);
    fclose(file);
    return value;
}

/* --- envelopes built before the timed window -------------------------------- */

typedef struct {
    uint8_t *frame; /* packed ClientFrame{submit}, ready to send */
    size_t frame_len;
    uint8_t message_id[16];
    int sender; /* index into the mode's sender list */
} s_msg_t;

/* The example body of the type, padded to exactly BENCH_BODY_BYTES with an unknown
   length-delimited field (number 1000), which decoders skip. */
static uint8_t *s_body(size_t *len_out)
{
    const pt_type_t *type = pt_types_find(BENCH_MESSAGE_TYPE);
    ProtobufCMessage *body = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (!type || pt_json_to_message(type->descriptor, type->example_json,
                                    strlen(type->example_json), &body, err, sizeof err) != 0)
        return NULL;
    size_t len = protobuf_c_message_get_packed_size(body);
    uint8_t *out = calloc(1, BENCH_BODY_BYTES);
    if (!out || len + 4 > BENCH_BODY_BYTES) {
        protobuf_c_message_free_unpacked(body, NULL);
        free(out);
        return NULL;
    }
    protobuf_c_message_pack(body, out);
    protobuf_c_message_free_unpacked(body, NULL);
    size_t pad = BENCH_BODY_BYTES - len - 2 /* tag */ - 2 /* 2-byte varint length */;
    out[len] = 0xC2; /* (1000 << 3) | 2 as a varint */
    out[len + 1] = 0x3E;
    out[len + 2] = (uint8_t)(0x80 | (pad & 0x7F));
    out[len + 3] = (uint8_t)(pad >> 7);
    memset(out + len + 4, 'x', pad);
    *len_out = BENCH_BODY_BYTES;
    return out;
}

/* Builds n envelopes from senders[i % n_senders] to recipient, tagged with run. */
static s_msg_t *s_build(const char *keys_dir, const char *const *senders, int n_senders,
                        const char *recipient, const char *run, size_t n)
{
    char why[256];
    pt_keyset_t *from[BENCH_MAX_SENDERS] = {0};
    pt_keyset_t *to = pt_keyset_load(keys_dir, recipient, 0, why, sizeof why);
    size_t body_len = 0;
    uint8_t *body = s_body(&body_len);
    s_msg_t *msgs = calloc(n ? n : 1, sizeof *msgs);
    int ok = to && body && msgs;
    for (int s = 0; ok && s < n_senders; s++)
        ok = (from[s] = pt_keyset_load(keys_dir, senders[s], 1, why, sizeof why)) != NULL;
    const pt_type_t *type = pt_types_find(BENCH_MESSAGE_TYPE);
    uint32_t tag;
    pt_random(&tag, sizeof tag);
    for (size_t i = 0; ok && i < n; i++) {
        s_msg_t *m = &msgs[i];
        m->sender = (int)(i % (size_t)n_senders);
        uint8_t correlation_id[16];
        pt_uuidv7(m->message_id);
        pt_uuidv7(correlation_id);
        memcpy(m->message_id + 8, &tag, 4);
        m->message_id[8] = (uint8_t)(0x80 | (m->message_id[8] & 0x3F)); /* RFC 9562 variant */
        m->message_id[12] = (uint8_t)(i >> 24);
        m->message_id[13] = (uint8_t)(i >> 16);
        m->message_id[14] = (uint8_t)(i >> 8);
        m->message_id[15] = (uint8_t)i;
        char case_token[64];
        snprintf(case_token, sizeof case_token, "BENCH-%s-%zu", run, i);
        char *recipients[1] = {(char *)recipient};
        Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
        consent.consent_for_services = 1;
        consent.disclosure_other_orgs = 1;
        consent.consent_for_tracing = 1;
        consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
        Puente__V1__Header header = PUENTE__V1__HEADER__INIT;
        header.message_id = (ProtobufCBinaryData){16, m->message_id};
        header.correlation_id = (ProtobufCBinaryData){16, correlation_id};
        header.message_type = (char *)BENCH_MESSAGE_TYPE;
        header.sender = (char *)senders[m->sender];
        header.recipients = recipients;
        header.n_recipients = 1;
        header.created_at_ms = pt_now_ms();
        header.purpose = (char *)type->default_purpose;
        header.case_token = case_token;
        header.consent = &consent;
        header.service_type = "psychosocial";   /* required on a referral (issue 3) */
        const pt_seal_key_t *seal = pt_keyset_seal(to);
        uint8_t *env = NULL;
        size_t env_len = 0;
        if (pt_envelope_seal(&header, body, body_len, pt_keyset_sign(from[m->sender]), &seal, 1,
                             &env, &env_len) != PT_ENV_OK) {
            ok = 0;
            break;
        }
        /* ClientFrame{submit = 1: Envelope}, encoded by hand around the packed bytes. */
        m->frame = malloc(env_len + 11);
        if (!m->frame) {
            free(env);
            ok = 0;
            break;
        }
        size_t at = s_field1_head(m->frame, env_len);
        memcpy(m->frame + at, env, env_len);
        m->frame_len = at + env_len;
        free(env);
    }
    for (int s = 0; s < n_senders; s++)
        pt_keyset_destroy(&from[s]);
    pt_keyset_destroy(&to);
    free(body);
    if (!ok && msgs) {
        for (size_t i = 0; i < n; i++)
            free(msgs[i].frame);
        free(msgs);
        fprintf(stderr, "loadgen: cannot build envelopes (%s)\n", why);
        return NULL;
    }
    return msgs;
}

static void s_msgs_free(s_msg_t **msgs_p, size_t n)
{
    if (!msgs_p || !*msgs_p)
        return;
    for (size_t i = 0; i < n; i++)
        free((*msgs_p)[i].frame);
    free(*msgs_p);
    *msgs_p = NULL;
}

/* --- raw CURVE DEALER sockets ------------------------------------------------ */

static void *s_dealer(void *ctx, const char *keys_dir, const char *endpoint, const char *org)
{
    char why[256];
    pt_keyset_t *mine = pt_keyset_load(keys_dir, org, 1, why, sizeof why);
    pt_keyset_t *broker = pt_keyset_load(keys_dir, "broker", 0, why, sizeof why);
    void *sock = NULL;
    if (!mine || !broker)
        goto done;
    sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, pt_keyset_curve_public_z85(broker), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pt_keyset_curve_public_z85(mine), 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(mine), 40);
    if (zmq_connect(sock, endpoint) != 0) {
        zmq_close(sock);
        sock = NULL;
    }
done:
    if (!sock)
        fprintf(stderr, "loadgen: no socket for %s (%s)\n", org, why);
    pt_keyset_destroy(&mine);
    pt_keyset_destroy(&broker);
    return sock;
}

static int s_send_packed(void *sock, const ProtobufCMessage *msg)
{
    uint8_t buf[256];
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > sizeof buf)
        return -1;
    protobuf_c_message_pack(msg, buf);
    return zmq_send(sock, buf, len, 0) < 0 ? -1 : 0;
}

/* Receives one BrokerFrame without waiting; NULL if none or undecodable. */
static Puente__V1__BrokerFrame *s_recv_frame(void *sock)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return NULL;
    }
    Puente__V1__BrokerFrame *frame =
        puente__v1__broker_frame__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    return frame;
}

/* --- the receiver thread ---------------------------------------------------- */

typedef struct {
    void *ctx;
    const char *keys_dir;
    const char *endpoint;
    const char *org; /* the receiving organisation */
    const s_msg_t *msgs;
    size_t n;
    int open; /* 1: check, verify, open before acking */
    const char *const *senders;
    int n_senders;
    int64_t *deliver_ns; /* per index: first delivery seen */
    int64_t *acked_ns;   /* per index: broker's Acked */
    size_t delivered, acked, open_failures, redeliveries;
    size_t other_acked;    /* Acked for messages not of this mode, and when the last */
    int64_t other_last_ns; /* came (atomic: read by the mode's thread during a drain) */
    volatile int stop;
    volatile int ready;
    int failed;
} s_receiver_t;

static int s_receiver_index(const s_receiver_t *self, const ProtobufCBinaryData *id)
{
    if (id->len != 16)
        return -1;
    uint32_t idx = s_index_of(id->data);
    if (idx >= self->n || memcmp(self->msgs[idx].message_id, id->data, 16) != 0)
        return -1; /* from an earlier mode */
    return (int)idx;
}

static void *s_receiver_run(void *arg)
{
    s_receiver_t *self = arg;
    char why[256];
    pt_keyset_t *me = pt_keyset_load(self->keys_dir, self->org, 1, why, sizeof why);
    pt_keyset_t *from[BENCH_MAX_SENDERS] = {0};
    for (int s = 0; me && s < self->n_senders; s++)
        from[s] = pt_keyset_load(self->keys_dir, self->senders[s], 0, why, sizeof why);
    void *sock = me ? s_dealer(self->ctx, self->keys_dir, self->endpoint, self->org) : NULL;
    if (!sock) {
        self->failed = 1;
        self->ready = 1;
        goto done;
    }
    Puente__V1__Hello hello = PUENTE__V1__HELLO__INIT;
    hello.org_id = (char *)self->org;
    hello.client = (char *)"puente-bench/0.1";
    hello.receive = 1;
    Puente__V1__ClientFrame hello_frame = PUENTE__V1__CLIENT_FRAME__INIT;
    hello_frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HELLO;
    hello_frame.hello = &hello;
    s_send_packed(sock, &hello_frame.base);
    while (!self->stop) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        Puente__V1__BrokerFrame *frame;
        while ((frame = s_recv_frame(sock)) != NULL) {
            int64_t now = s_now_ns();
            if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_WELCOME) {
                self->ready = 1;
            } else if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_DELIVER &&
                       frame->deliver->envelope) {
                const Puente__V1__Envelope *env = frame->deliver->envelope;
                Puente__V1__Header *header = NULL;
                int good;
                if (self->open) {
                    good = pt_envelope_check(env, &header) == PT_ENV_OK;
                    const pt_keyset_t *sender = NULL;
                    for (int s = 0; good && s < self->n_senders; s++)
                        if (from[s] && strcmp(header->sender, self->senders[s]) == 0)
                            sender = from[s];
                    uint8_t *body = NULL;
                    size_t body_len = 0;
                    good =
                        good && sender &&
                        pt_envelope_verify_header(env, pt_keyset_sign(sender)) == PT_ENV_OK &&
                        pt_envelope_open(env, header, self->org, pt_keyset_seal(me),
                                         pt_keyset_sign(sender), &body, &body_len) == PT_ENV_OK &&
                        body_len == BENCH_BODY_BYTES;
                    free(body);
                } else {
                    header = puente__v1__header__unpack(NULL, env->header.len, env->header.data);
                    good = header != NULL;
                }
                if (header && header->message_id.len == 16) {
                    int idx = s_receiver_index(self, &header->message_id);
                    if (idx >= 0 && !good)
                        self->open_failures++;
                    if (idx >= 0 && good) {
                        if (self->deliver_ns[idx] == 0) {
                            self->deliver_ns[idx] = now;
                            self->delivered++;
                        } else {
                            self->redeliveries++;
                        }
                    }
                    /* Ack everything, also leftovers of an earlier mode, so nothing
                       stays pending into the next one. A refused message is acked
                       too: the benchmark counts it and must not stall on it. */
                    Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
                    ack.message_id = header->message_id;
                    Puente__V1__ClientFrame out = PUENTE__V1__CLIENT_FRAME__INIT;
                    out.body_case = PUENTE__V1__CLIENT_FRAME__BODY_ACK;
                    out.ack = &ack;
                    s_send_packed(sock, &out.base);
                }
                if (header)
                    puente__v1__header__free_unpacked(header, NULL);
            } else if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_ACKED) {
                int idx = s_receiver_index(self, &frame->acked->message_id);
                if (idx >= 0 && self->acked_ns[idx] == 0) {
                    self->acked_ns[idx] = now;
                    self->acked++;
                } else if (idx < 0 && frame->acked->message_id.len == 16) {
                    __atomic_add_fetch(&self->other_acked, 1, __ATOMIC_RELAXED);
                    __atomic_store_n(&self->other_last_ns, now, __ATOMIC_RELAXED);
                }
            }
            puente__v1__broker_frame__free_unpacked(frame, NULL);
        }
    }
done:
    if (sock)
        zmq_close(sock);
    for (int s = 0; s < self->n_senders; s++)
        pt_keyset_destroy(&from[s]);
    pt_keyset_destroy(&me);
    return NULL;
}

/* --- one mode ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t n;        /* messages */
    double rate;     /* offered msgs/s; 0 = saturation */
    int receiver;    /* 0 none, 1 ack only, 2 open + verify + ack */
    size_t window;   /* outstanding submits over all senders */
    int brokers;     /* 2: every sender alternates between two brokers over the database
                        (issue 9); the receiver stays on the first. 0 or 1: one broker */
    double max_s;    /* wall-time cap of the sending phase; 0: 45 s (15 s quick) */
    double sample_s; /* > 0: sample the broker's VmRSS this often into s_bench_t.rss */
    size_t backlog;  /* > 0: runs with this many messages seeded waiting for the sink
                        (s_seed_backlog); not a point of the latency plot */
    int drain;       /* 1: the sink comes back when the window opens (a receiver that
                        acks without opening) and drains its backlog meanwhile */
} s_mode_t;

/* One sample of the broker's memory during a mode with sample_s > 0. */
typedef struct {
    double t_s; /* since the mode's start */
    long rss_kib, hwm_kib;
    size_t receipts; /* answered so far */
} s_rss_sample_t;

typedef struct {
    s_mode_t mode;
    int complete;
    size_t receipts, rejects, delivered, acked, open_failures, redeliveries, late_sends;
    int first_reject_code;
    double seconds_ingest, seconds_e2e;
    double ingest_per_s, e2e_per_s, achieved_offered_per_s;
    s_pct_t receipt, delivery;
    long long drain_waiting, drain_left; /* the sink's unacked deliveries before, after */
    size_t drained;                      /* acks the sink's receiver got in the window */
    double drain_s, drain_per_s;         /* the window: from the sink's hello to the end */
    double broker_cpu_us_per_msg, broker_cpu_share;
    double pg_cpu_us_per_msg, pg_cpu_share, machine_busy_share;
    long broker_hwm_kib, broker_rss_kib;
} s_result_t;

typedef struct {
    pt_harness_t *harness;
    void *ctx;
    pid_t broker;
    pid_t broker2; /* the second broker over the same database, once started */
    int quick;
    const char *perf_out; /* perf data file for the saturation mode, or NULL */
    double perf_seconds;
    s_rss_sample_t *rss; /* samples of the last mode with sample_s > 0 */
    size_t n_rss, cap_rss;
} s_bench_t;

/* Appends one VmRSS sample of the broker (long mode's memory run). */
static void s_rss_sample(s_bench_t *bench, double t_s, size_t receipts)
{
    if (bench->n_rss == bench->cap_rss) {
        size_t cap = bench->cap_rss ? bench->cap_rss * 2 : 256;
        s_rss_sample_t *grown = realloc(bench->rss, cap * sizeof *grown);
        if (!grown)
            return;
        bench->rss = grown;
        bench->cap_rss = cap;
    }
    bench->rss[bench->n_rss++] = (s_rss_sample_t){t_s, s_status_kib(bench->broker, "VmRSS"),
                                                  s_status_kib(bench->broker, "VmHWM"), receipts};
}

/* PostgreSQL's side of a mode (BENCH_PGSS_OUT, set by bench/run.sh with BENCH_PGSS=1, which
   also loads pg_stat_statements): statistics reset before the mode, and after it the
   statements by total execution time, in microseconds per message of the mode, written to
   <BENCH_PGSS_OUT>-<mode>.txt. Commit (WAL flush) time is not in them. */
static void s_pgss(const char *mode, size_t messages, int reset)
{
    const char *out = getenv("BENCH_PGSS_OUT");
    const char *conninfo = getenv("PUENTE_TEST_DB");
    if (!out || !out[0] || !conninfo)
        return;
    PGconn *conn = PQconnectdb(conninfo);
    PGresult *res = NULL;
    FILE *f = NULL;
    if (PQstatus(conn) != CONNECTION_OK)
        goto done;
    if (reset) {
        PQclear(PQexec(conn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"));
        PQclear(PQexec(conn, "SELECT pg_stat_statements_reset()"));
        goto done;
    }
    /* total_plan_time is 0 unless pg_stat_statements.track_planning is on (bench/lib.sh) */
    res = PQexec(conn, "SELECT calls, total_exec_time, rows, "
                       "shared_blks_hit + shared_blks_read + shared_blks_dirtied, "
                       "left(regexp_replace(query, '\\s+', ' ', 'g'), 160), total_plan_time "
                       "FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' "
                       "ORDER BY total_exec_time + total_plan_time DESC LIMIT 25");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto done;
    char path[600];
    snprintf(path, sizeof path, "%s-%s.txt", out, mode);
    if (!(f = fopen(path, "w")))
        goto done;
    double per = messages ? 1000.0 / (double)messages : 0; /* ms in all -> us per message */
    double total = 0, total_plan = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        total += atof(PQgetvalue(res, r, 1));
        total_plan += atof(PQgetvalue(res, r, 5));
    }
    fprintf(f,
            "# pg_stat_statements during mode '%s' (%zu messages): execution and planning "
            "time, not commit\n# %10s %10s %10s %10s %10s %8s  statement\n",
            mode, messages, "us/msg", "plan us/msg", "calls", "ms/call", "rows", "blocks");
    for (int r = 0; r < PQntuples(res); r++) {
        double calls = atof(PQgetvalue(res, r, 0)), ms = atof(PQgetvalue(res, r, 1));
        fprintf(f, "  %10.1f %11.1f %10.0f %10.3f %10s %8s  %s\n", ms * per,
                atof(PQgetvalue(res, r, 5)) * per, calls, calls > 0 ? ms / calls : 0,
                PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4));
    }
    fprintf(f, "  %10.1f %11.1f  (the statements above)\n", total * per, total_plan * per);
    printf("PostgreSQL statements in mode %s: %s\n", mode, path);
done:
    if (f)
        fclose(f);
    PQclear(res);
    PQfinish(conn);
}

/* perf record (DWARF call graphs) on the broker for perf_seconds, into <perf_out>.<mode>. */
static pid_t s_perf_start(const s_bench_t *bench, const char *mode)
{
    if (!bench->perf_out)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        char target[32], secs[32], out[600];
        snprintf(target, sizeof target, "%d", (int)bench->broker);
        snprintf(secs, sizeof secs, "%.1f", bench->perf_seconds);
        snprintf(out, sizeof out, "%s.%s", bench->perf_out, mode);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        /* DWARF unwinding: the broker is built without frame pointers. */
        execlp("perf", "perf", "record", "-q", "--call-graph", "dwarf,16384", "-F", "499", "-o",
               out, "-p", target, "--", "sleep", secs, (char *)NULL);
        _exit(127);
    }
    return pid > 0 ? pid : 0;
}

/* The sink's deliveries not acknowledged yet (its backlog), -1 if unreadable. */
static long long s_sink_waiting(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    long long n = -1;
    PGresult *res =
        PQstatus(conn) == CONNECTION_OK
            ? PQexec(conn, "SELECT count(*) FROM deliveries WHERE recipient = '" BENCH_SINK
                           "' AND state <> 'acked'")
            : NULL;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return n;
}

static int s_run_mode(s_bench_t *bench, const s_mode_t *mode, s_result_t *result)
{
    const char *keys = pt_harness_keys(bench->harness);
    const char *endpoint = pt_harness_endpoint(bench->harness);
    size_t nb = mode->brokers > 1 ? 2 : 1; /* sockets per sender: one per broker */
    size_t n_socks = BENCH_MAX_SENDERS * nb;
    const char *const *senders = !mode->receiver ? s_senders_to_sink
                                 : mode->brokers > 1 ? s_senders_to_receiver_2b
                                                     : s_senders_to_receiver;
    const char *recipient = !mode->receiver      ? BENCH_SINK
                            : mode->brokers > 1 ? BENCH_RECEIVER_2B
                                                : BENCH_RECEIVER;
    size_t n = mode->n;
    int rc = -1;
    memset(result, 0, sizeof *result);
    result->mode = *mode;

    fprintf(stderr, "loadgen: %s: building %zu envelopes...\n", mode->name, n);
    s_msg_t *msgs = s_build(keys, senders, BENCH_MAX_SENDERS, recipient, mode->name, n);
    int64_t *submit_ns = calloc(n, sizeof(int64_t));
    int64_t *receipt_ns = calloc(n, sizeof(int64_t));
    int64_t *deliver_ns = calloc(n, sizeof(int64_t));
    int64_t *acked_ns = calloc(n, sizeof(int64_t));
    int64_t *samples = calloc(n, sizeof(int64_t));
    void *socks[BENCH_MAX_SENDERS * 2] = {0};
    s_receiver_t receiver = {0}, drain = {0};
    pthread_t thread, drain_thread;
    int thread_started = 0, drain_started = 0;
    pid_t perf = 0;
    cli_progress_t *line = NULL;   /* progress on a terminal (cli_progress.h) */
    if (!msgs || !submit_ns || !receipt_ns || !deliver_ns || !acked_ns || !samples)
        goto done;
    for (size_t k = 0; k < n_socks; k++)
        if (!(socks[k] =
                  s_dealer(bench->ctx, keys, pt_harness_endpoint_at(bench->harness, (int)(k % nb)),
                           senders[k / nb])))
            goto done;
    if (mode->receiver) {
        receiver = (s_receiver_t){.ctx = bench->ctx,
                                  .keys_dir = keys,
                                  .endpoint = endpoint,
                                  .org = recipient,
                                  .msgs = msgs,
                                  .n = n,
                                  .open = mode->receiver == 2,
                                  .senders = senders,
                                  .n_senders = BENCH_MAX_SENDERS,
                                  .deliver_ns = deliver_ns,
                                  .acked_ns = acked_ns};
        if (pthread_create(&thread, NULL, s_receiver_run, &receiver) != 0)
            goto done;
        thread_started = 1;
        for (int i = 0; i < 500 && !receiver.ready; i++)
            usleep(10 * 1000);
        if (!receiver.ready || receiver.failed) {
            fprintf(stderr, "loadgen: receiver did not get a welcome\n");
            goto done;
        }
        usleep(200 * 1000); /* let leftovers of earlier modes drain */
    }
    /* CURVE handshakes done before the window: one heartbeat per socket. */
    for (size_t s = 0; s < n_socks; s++) {
        Puente__V1__Heartbeat beat = PUENTE__V1__HEARTBEAT__INIT;
        Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
        frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_HEARTBEAT;
        frame.heartbeat = &beat;
        s_send_packed(socks[s], &frame.base);
        zmq_pollitem_t item = {socks[s], 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 5000) <= 0) {
            fprintf(stderr, "loadgen: %s gets no answer from the broker\n", senders[s / nb]);
            goto done;
        }
        Puente__V1__BrokerFrame *reply = s_recv_frame(socks[s]);
        if (reply)
            puente__v1__broker_frame__free_unpacked(reply, NULL);
    }

    fprintf(stderr, "loadgen: %s: running\n", mode->name);
    if (mode->rate == 0 && mode->receiver < 2 && nb == 1)
        perf = s_perf_start(bench, mode->name);
    int64_t cpu_before = s_cpu_us(bench->broker);
    if (nb == 2 && cpu_before >= 0)
        cpu_before = s_cpu_us(bench->broker2) >= 0 ? cpu_before + s_cpu_us(bench->broker2) : -1;
    s_pgss(mode->name, 0, 1);
    int64_t pg_before = s_pg_cpu_us();
    int64_t busy_before, total_before;
    s_machine_jiffies(&busy_before, &total_before);
    if (mode->drain) {
        /* The sink comes back: from its hello on, the broker delivers its backlog. */
        result->drain_waiting = s_sink_waiting(pt_harness_conninfo(bench->harness));
        drain = (s_receiver_t){.ctx = bench->ctx,
                               .keys_dir = keys,
                               .endpoint = endpoint,
                               .org = BENCH_SINK,
                               .senders = s_senders_to_sink,
                               .n_senders = BENCH_MAX_SENDERS};
        if (pthread_create(&drain_thread, NULL, s_receiver_run, &drain) != 0)
            goto done;
        drain_started = 1;
    }
    int64_t start = s_now_ns();
    int64_t interval_ns = mode->rate > 0 ? (int64_t)(1e9 / mode->rate) : 0;
    /* Bounded wall time per mode: a broker that falls behind gives partial figures
       (flagged "complete": false), never a run that blocks other people's work. */
    int64_t deadline = start + (int64_t)((mode->max_s > 0 ? mode->max_s
                                          : bench->quick  ? 15
                                                          : 45) *
                                         1e9);
    int64_t sample_ns = mode->sample_s > 0 ? (int64_t)(mode->sample_s * 1e9) : 0;
    int64_t next_sample = start;
    if (sample_ns)
        bench->n_rss = 0;
    size_t next = 0, answered = 0, outstanding = 0;
    int64_t last_receipt = start;
    /* Receipts so far, then acks, on one line while stderr is a terminal
       (cli_progress.h); nothing otherwise. */
    char label[64];
    snprintf(label, sizeof label, "loadgen: %s: receipts", mode->name);
    line = cli_progress_new(label, n, stderr, cli_progress_wanted(stderr, 0), NULL, NULL);
    while (answered < n && s_now_ns() < deadline) {
        cli_progress_update(line, answered);
        int64_t now = s_now_ns();
        if (sample_ns && now >= next_sample) {
            s_rss_sample(bench, (double)(now - start) / 1e9, answered);
            next_sample += sample_ns;
        }
        while (next < n && outstanding < mode->window) {
            if (interval_ns) {
                int64_t due = start + (int64_t)next * interval_ns;
                if (due > now)
                    break;
                if (now - due > 1000000)
                    result->late_sends++;
            }
            const s_msg_t *m = &msgs[next];
            submit_ns[next] = s_now_ns();
            if (zmq_send(socks[(size_t)m->sender * nb + next % nb], m->frame, m->frame_len, 0) <
                0) {
                fprintf(stderr, "loadgen: send failed: %s\n", zmq_strerror(errno));
                goto done;
            }
            next++;
            outstanding++;
        }
        long timeout_ms = sample_ns ? 20 : 100;
        if (interval_ns && next < n && outstanding < mode->window) {
            int64_t wait = start + (int64_t)next * interval_ns - s_now_ns();
            timeout_ms = wait <= 0 ? 0 : (long)(wait / 1000000) + 0;
        }
        zmq_pollitem_t items[BENCH_MAX_SENDERS * 2];
        for (size_t s = 0; s < n_socks; s++)
            items[s] = (zmq_pollitem_t){socks[s], 0, ZMQ_POLLIN, 0};
        if (zmq_poll(items, (int)n_socks, timeout_ms) <= 0)
            continue;
        for (size_t s = 0; s < n_socks; s++) {
            if (!(items[s].revents & ZMQ_POLLIN))
                continue;
            Puente__V1__BrokerFrame *frame;
            while ((frame = s_recv_frame(socks[s])) != NULL) {
                int64_t t = s_now_ns();
                const ProtobufCBinaryData *id = NULL;
                if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT)
                    id = &frame->receipt->message_id;
                else if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT)
                    id = &frame->reject->message_id;
                uint32_t idx = id && id->len == 16 ? s_index_of(id->data) : UINT32_MAX;
                if (idx < n && memcmp(msgs[idx].message_id, id->data, 16) == 0 &&
                    receipt_ns[idx] == 0) {
                    receipt_ns[idx] = t;
                    last_receipt = t;
                    answered++;
                    outstanding--;
                    if (frame->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT) {
                        result->receipts++;
                    } else {
                        if (result->rejects++ == 0) {
                            result->first_reject_code = frame->reject->code;
                            fprintf(stderr, "loadgen: rejected: %d %s\n", frame->reject->code,
                                    frame->reject->reason);
                        }
                        receipt_ns[idx] = -1;
                    }
                }
                puente__v1__broker_frame__free_unpacked(frame, NULL);
            }
        }
    }
    /* End to end: wait for the acks of everything receipted. */
    int64_t wait_until = s_now_ns() + (int64_t)((bench->quick ? 10 : 20) * 1e9);
    snprintf(label, sizeof label, "loadgen: %s: acks", mode->name);
    cli_progress_phase(line, label);
    while (mode->receiver && receiver.acked < result->receipts && s_now_ns() < wait_until) {
        cli_progress_update(line, receiver.acked);
        usleep(2000);
    }
    cli_progress_done(&line);
    if (sample_ns)
        s_rss_sample(bench, (double)(s_now_ns() - start) / 1e9, answered);
    int64_t end = s_now_ns();
    if (drain_started) {
        result->drained = __atomic_load_n(&drain.other_acked, __ATOMIC_RELAXED);
        result->drain_s = (double)(end - start) / 1e9;
        /* emptied within the window: the rate up to the last ack */
        int64_t last = __atomic_load_n(&drain.other_last_ns, __ATOMIC_RELAXED);
        if (result->drain_waiting >= 0 && result->drained >= (size_t)result->drain_waiting &&
            last > start)
            result->drain_s = (double)(last - start) / 1e9;
        result->drain_per_s = (double)result->drained / result->drain_s;
    }
    int64_t cpu_after = s_cpu_us(bench->broker);
    if (nb == 2 && cpu_after >= 0)
        cpu_after = s_cpu_us(bench->broker2) >= 0 ? cpu_after + s_cpu_us(bench->broker2) : -1;
    int64_t pg_after = s_pg_cpu_us();
    int64_t busy_after, total_after;
    s_machine_jiffies(&busy_after, &total_after);
    if (total_after > total_before)
        result->machine_busy_share =
            (double)(busy_after - busy_before) / (double)(total_after - total_before);
    if (perf) {
        int status;
        waitpid(perf, &status, 0);
    }
    if (mode->receiver) {
        receiver.stop = 1;
        pthread_join(thread, NULL);
        thread_started = 0;
    }
    if (drain_started) {
        drain.stop = 1;
        pthread_join(drain_thread, NULL);
        drain_started = 0;
        if (drain.failed)
            fprintf(stderr, "loadgen: %s: the sink's receiver could not connect\n", mode->name);
        result->drain_left = s_sink_waiting(pt_harness_conninfo(bench->harness));
    }
    s_pgss(mode->name, answered + result->drained, 0);

    int64_t last_acked = start;
    for (size_t i = 0; i < n; i++)
        if (acked_ns[i] > last_acked)
            last_acked = acked_ns[i];
    result->delivered = receiver.delivered;
    result->acked = receiver.acked;
    result->open_failures = receiver.open_failures;
    result->redeliveries = receiver.redeliveries;
    result->seconds_ingest = (double)(last_receipt - start) / 1e9;
    result->seconds_e2e = (double)(last_acked - start) / 1e9;
    result->ingest_per_s =
        result->seconds_ingest > 0 ? result->receipts / result->seconds_ingest : 0;
    result->e2e_per_s =
        mode->receiver && result->seconds_e2e > 0 ? result->acked / result->seconds_e2e : 0;
    result->achieved_offered_per_s =
        next > 1 ? (double)(next - 1) / ((double)(submit_ns[next - 1] - start) / 1e9) : 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (receipt_ns[i] > 0)
            samples[k++] = receipt_ns[i] - submit_ns[i];
    result->receipt = s_percentiles(samples, k);
    k = 0;
    for (size_t i = 0; i < n; i++)
        if (deliver_ns[i] > 0)
            samples[k++] = deliver_ns[i] - submit_ns[i];
    result->delivery = s_percentiles(samples, k);
    /* a drained message costs a delivery and an ack, not a submit: counted all the same */
    size_t done_msgs = (mode->receiver ? result->acked : result->receipts) + result->drained;
    if (cpu_before >= 0 && cpu_after >= 0 && done_msgs > 0) {
        result->broker_cpu_us_per_msg = (double)(cpu_after - cpu_before) / (double)done_msgs;
        result->broker_cpu_share = (double)(cpu_after - cpu_before) / ((double)(end - start) / 1e3);
    }
    if (pg_before >= 0 && pg_after >= 0 && done_msgs > 0) {
        result->pg_cpu_us_per_msg = (double)(pg_after - pg_before) / (double)done_msgs;
        result->pg_cpu_share = (double)(pg_after - pg_before) / ((double)(end - start) / 1e3);
    }
    result->broker_hwm_kib = s_status_kib(bench->broker, "VmHWM");
    result->broker_rss_kib = s_status_kib(bench->broker, "VmRSS");
    result->complete = result->receipts == n && (!mode->receiver || result->acked == n);
    rc = result->complete ? 0 : -1;
    if (rc)
        fprintf(stderr, "loadgen: %s: %zu of %zu receipted (%zu rejected), %zu acked in time\n",
                mode->name, result->receipts, n, result->rejects, result->acked);
done:
    cli_progress_done(&line);
    if (thread_started) {
        receiver.stop = 1;
        pthread_join(thread, NULL);
    }
    if (drain_started) {
        drain.stop = 1;
        pthread_join(drain_thread, NULL);
    }
    for (size_t s = 0; s < n_socks; s++)
        if (socks[s])
            zmq_close(socks[s]);
    s_msgs_free(&msgs, n);
    free(submit_ns);
    free(receipt_ns);
    free(deliver_ns);
    free(acked_ns);
    free(samples);
    return rc;
}

/* --- component limits ----------------------------------------------------------- */

typedef struct {
    double verify_per_s, sign_per_s;
    double store_msgs_per_s;
    size_t store_batch;
    double zmq_rtt_p50_us, zmq_rtt_p99_us, zmq_roundtrips_per_s;
} s_limits_t;

static int s_limit_ed25519(double seconds, s_limits_t *out)
{
    pt_sign_key_t *key = pt_sign_key_generate();
    uint8_t msg[BENCH_BODY_BYTES], sig[PT_ED25519_SIG_BYTES];
    if (!key)
        return -1;
    pt_random(msg, sizeof msg);
    int64_t start = s_now_ns(), stop = start + (int64_t)(seconds * 1e9);
    size_t count = 0;
    while (s_now_ns() < stop)
        for (int i = 0; i < 50; i++, count++)
            pt_sign(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig);
    out->sign_per_s = (double)count / ((double)(s_now_ns() - start) / 1e9);
    start = s_now_ns();
    stop = start + (int64_t)(seconds * 1e9);
    count = 0;
    int bad = 0;
    while (s_now_ns() < stop)
        for (int i = 0; i < 20; i++, count++)
            bad |= pt_verify(key, PT_DOMAIN_HEADER, msg, sizeof msg, sig, sizeof sig) != 0;
    out->verify_per_s = (double)count / ((double)(s_now_ns() - start) / 1e9);
    pt_sign_key_destroy(&key);
    return bad ? -1 : 0;
}

/* The broker's insert path without crypto: batches of PT_BROKER_BATCH_MAX-sized
   groups of prepared submissions, each batch one transaction, as s_flush does. */
static int s_limit_store(const char *conninfo, size_t n, size_t batch, s_limits_t *out)
{
    char err[256];
    pt_store_t *store = pt_store_new(conninfo, err, sizeof err);
    if (!store) {
        fprintf(stderr, "loadgen: store: %s\n", err);
        return -1;
    }
    uint8_t *ids = malloc(n * 32);
    uint8_t envelope[1300];
    pt_submission_t *subs = calloc(batch, sizeof *subs);
    pt_store_receipt_t *receipts = calloc(batch, sizeof *receipts);
    char(*tokens)[48] = calloc(n, 48);
    int rc = -1;
    if (!ids || !subs || !receipts || !tokens)
        goto done;
    pt_random(envelope, sizeof envelope);
    uint32_t tag;
    pt_random(&tag, sizeof tag);
    for (size_t i = 0; i < n; i++) {
        pt_uuidv7(ids + i * 32);
        pt_uuidv7(ids + i * 32 + 16);
        snprintf(tokens[i], 48, "BENCH-STORE-%08x-%zu", tag, i);
    }
    static const char *const recipients[1] = {BENCH_SINK};
    uint8_t header_sha[32];
    pt_random(header_sha, sizeof header_sha);
    int64_t now_ms = pt_now_ms();
    int64_t start = s_now_ns();
    for (size_t done_n = 0; done_n < n;) {
        size_t m = n - done_n < batch ? n - done_n : batch;
        for (size_t j = 0; j < m; j++) {
            size_t i = done_n + j;
            subs[j] = (pt_submission_t){.message_id = ids + i * 32,
                                        .correlation_id = ids + i * 32 + 16,
                                        .message_type = BENCH_MESSAGE_TYPE,
                                        .sender = "MX-DIF",
                                        .recipients = recipients,
                                        .n_recipients = 1,
                                        .case_token = tokens[i],
                                        .purpose = "service_provision",
                                        .agreement_id = "AGR-MX-DIF-US-ORR",
                                        .created_at_ms = now_ms,
                                        .expires_at_ms = now_ms + 86400000LL,
                                        .header_sha256 = header_sha,
                                        .envelope = envelope,
                                        .envelope_len = sizeof envelope};
        }
        if (pt_store_submit_batch(store, subs, m, receipts) != PT_STORE_OK) {
            fprintf(stderr, "loadgen: store batch failed: %s\n", pt_store_last_error(store));
            goto done;
        }
        done_n += m;
    }
    out->store_msgs_per_s = (double)n / ((double)(s_now_ns() - start) / 1e9);
    out->store_batch = batch;
    rc = 0;
done:
    free(ids);
    free(subs);
    free(receipts);
    free(tokens);
    pt_store_destroy(&store);
    return rc;
}

typedef struct {
    void *ctx;
    char endpoint[128];
    char server_secret[41];
    volatile int ready;
} s_echo_t;

static void *s_echo_run(void *arg)
{
    s_echo_t *self = arg;
    void *router = zmq_socket(self->ctx, ZMQ_ROUTER);
    int one = 1, linger = 0, hwm = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, self->server_secret, 40);
    zmq_bind(router, "tcp://127.0.0.1:*");
    size_t len = sizeof self->endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    self->ready = 1;
    for (;;) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&rid, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            break;
        }
        int stop = zmq_msg_size(&body) == 0;
        zmq_msg_send(&rid, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        if (stop)
            break;
    }
    zmq_close(router);
    return NULL;
}

/* CURVE DEALER/ROUTER echo of 1 KiB frames: sequential round trips (latency) and
   pipelined ones with a window of 256 (round trips per second). */
static int s_limit_zmq(size_t n_latency, size_t n_throughput, s_limits_t *out)
{
    char server_public[41], client_public[41], client_secret[41];
    s_echo_t echo = {0};
    echo.ctx = zmq_ctx_new();
    if (zmq_curve_keypair(server_public, echo.server_secret) != 0 ||
        zmq_curve_keypair(client_public, client_secret) != 0)
        return -1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_echo_run, &echo) != 0)
        return -1;
    while (!echo.ready)
        usleep(1000);
    void *dealer = zmq_socket(echo.ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, server_public, 40);
    zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, client_public, 40);
    zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, client_secret, 40);
    zmq_connect(dealer, echo.endpoint);
    uint8_t buf[BENCH_BODY_BYTES];
    memset(buf, 'x', sizeof buf);
    int64_t *rtt = calloc(n_latency, sizeof *rtt);
    int rc = -1;
    if (!rtt)
        goto done;
    for (size_t i = 0; i < 100; i++) { /* warm-up, handshake */
        zmq_send(dealer, buf, sizeof buf, 0);
        zmq_recv(dealer, buf, sizeof buf, 0);
    }
    for (size_t i = 0; i < n_latency; i++) {
        int64_t t0 = s_now_ns();
        zmq_send(dealer, buf, sizeof buf, 0);
        if (zmq_recv(dealer, buf, sizeof buf, 0) < 0)
            goto done;
        rtt[i] = s_now_ns() - t0;
    }
    s_pct_t p = s_percentiles(rtt, n_latency);
    out->zmq_rtt_p50_us = p.p50_us;
    out->zmq_rtt_p99_us = p.p99_us;
    size_t sent = 0, got = 0;
    int64_t start = s_now_ns();
    while (got < n_throughput) {
        while (sent < n_throughput && sent - got < 256) {
            zmq_send(dealer, buf, sizeof buf, 0);
            sent++;
        }
        if (zmq_recv(dealer, buf, sizeof buf, 0) < 0)
            goto done;
        got++;
    }
    out->zmq_roundtrips_per_s = (double)n_throughput / ((double)(s_now_ns() - start) / 1e9);
    rc = 0;
done:
    zmq_send(dealer, "", 0, 0); /* stops the echo thread */
    pthread_join(thread, NULL);
    zmq_close(dealer);
    zmq_ctx_term(echo.ctx);
    free(rtt);
    return rc;
}

/* --- output ----------------------------------------------------------------------- */

static void s_json_mode(FILE *f, const s_result_t *r, int last)
{
    fprintf(f,
            "    {\"name\": \"%s\", \"brokers\": %d, \"backlog\": %zu, \"messages\": %zu, "
            "\"offered_per_s\": %.0f, "
            "\"achieved_offered_per_s\": %.1f, \"receiver\": \"%s\", \"window\": %zu,\n"
            "     \"receipts\": %zu, \"rejects\": %zu, \"delivered\": %zu, \"acked\": %zu, "
            "\"open_failures\": %zu, \"redeliveries\": %zu, \"late_sends\": %zu,\n"
            "     \"ingest_per_s\": %.1f, \"e2e_per_s\": %.1f,\n"
            "     \"receipt_latency_us\": {\"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, "
            "\"max\": %.1f},\n"
            "     \"delivery_latency_us\": {\"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, "
            "\"max\": %.1f},\n"
            "     \"broker_cpu_us_per_msg\": %.1f, \"broker_cpu_cores\": %.2f, "
            "\"broker_vmhwm_kib\": %ld, \"broker_vmrss_kib\": %ld,\n"
            "     \"postgres_cpu_us_per_msg\": %.1f, \"postgres_cpu_cores\": %.2f, "
            "\"machine_busy_fraction\": %.2f,\n"
            "     \"drain\": {\"waiting\": %lld, \"acked\": %zu, \"per_s\": %.1f, "
            "\"left\": %lld}, \"complete\": %s}%s\n",
            r->mode.name, r->mode.brokers > 1 ? 2 : 1, r->mode.backlog, r->mode.n, r->mode.rate,
            r->achieved_offered_per_s,
            r->mode.receiver == 0   ? "none"
            : r->mode.receiver == 1 ? "ack"
                                    : "open+verify+ack",
            r->mode.window, r->receipts, r->rejects, r->delivered, r->acked, r->open_failures,
            r->redeliveries, r->late_sends, r->ingest_per_s, r->e2e_per_s, r->receipt.p50_us,
            r->receipt.p95_us, r->receipt.p99_us, r->receipt.max_us, r->delivery.p50_us,
            r->delivery.p95_us, r->delivery.p99_us, r->delivery.max_us, r->broker_cpu_us_per_msg,
            r->broker_cpu_share, r->broker_hwm_kib, r->broker_rss_kib, r->pg_cpu_us_per_msg,
            r->pg_cpu_share, r->machine_busy_share, r->drain_waiting, r->drained, r->drain_per_s,
            r->drain_left, r->complete ? "true" : "false", last ? "" : ",");
}

/* Issue 8's targets were set on a 2-core machine whose core verifies about 14 330
   Ed25519 signatures per second (research/limits.md): ingest 12 000/s, end to end
   8 000/s, p99 receipt 5 ms and delivery 10 ms at 2 000/s offered. On another machine
   the same design is held to the same fractions of its own measured verification rate. */
#define S_ISSUE_VERIFY_PER_S 14330.0
#define S_TARGET_INGEST 12000.0
#define S_TARGET_E2E 8000.0
#define S_TARGET_RATE 2000.0

typedef struct {
    double scale;                         /* this machine's verify rate / the issue's */
    double ingest_target, e2e_target;     /* msg/s, scaled */
    double rate;                          /* offered rate of the latency target, scaled */
    double receipt_p99_ms, delivery_p99_ms; /* measured at rate (mode rate-scaled) */
} s_scaled_targets_t;

static void s_scaled_targets(const s_limits_t *limits, const s_result_t *paced,
                             s_scaled_targets_t *out)
{
    memset(out, 0, sizeof *out);
    out->scale = limits->verify_per_s / S_ISSUE_VERIFY_PER_S;
    out->ingest_target = S_TARGET_INGEST * out->scale;
    out->e2e_target = S_TARGET_E2E * out->scale;
    out->rate = paced ? paced->mode.rate : S_TARGET_RATE * out->scale;
    out->receipt_p99_ms = paced ? paced->receipt.p99_us / 1000 : 0;
    out->delivery_p99_ms = paced ? paced->delivery.p99_us / 1000 : 0;
}

static void s_print_table(const s_result_t *results, size_t n, const s_limits_t *limits)
{
    printf("\n%-13s %7s %8s %7s | %8s %7s %7s | %8s %7s %7s | %6s %5s %6s %5s | %7s %4s\n", "mode",
           "offered", "ingest/s", "e2e/s", "rcpt p50", "p95", "p99", "dlv p50", "p95", "p99",
           "broker", "cores", "pg", "cores", "HWM", "busy");
    printf("%-13s %7s %8s %7s | %8s %7s %7s | %8s %7s %7s | %6s %5s %6s %5s | %7s %4s\n", "",
           "msg/s", "", "", "ms", "ms", "ms", "ms", "ms", "ms", "us/msg", "", "us/msg", "", "MiB",
           "");
    for (size_t i = 0; i < n; i++) {
        const s_result_t *r = &results[i];
        char offered[16];
        if (r->mode.rate > 0)
            snprintf(offered, sizeof offered, "%.0f", r->mode.rate);
        else
            snprintf(offered, sizeof offered, "max");
        printf("%-13s %7s %8.0f %7.0f | %8.2f %7.2f %7.2f | %8.2f %7.2f %7.2f | %6.0f %5.2f %6.0f "
               "%5.2f | %7.1f %3.0f%%\n",
               r->mode.name, offered, r->ingest_per_s, r->e2e_per_s, r->receipt.p50_us / 1000,
               r->receipt.p95_us / 1000, r->receipt.p99_us / 1000, r->delivery.p50_us / 1000,
               r->delivery.p95_us / 1000, r->delivery.p99_us / 1000, r->broker_cpu_us_per_msg,
               r->broker_cpu_share, r->pg_cpu_us_per_msg, r->pg_cpu_share,
               r->broker_hwm_kib / 1024.0, r->machine_busy_share * 100);
        if (!r->complete)
            printf("%-13s   (incomplete: %zu of %zu receipted, %zu acked within the time limit)\n",
                   "", r->receipts, r->mode.n, r->acked);
    }
    if (!limits)
        return;
    printf("\ncomponent limits (same run, this machine):\n");
    printf("  Ed25519 verify, 1 KiB, one core (pt_verify)     %10.0f /s   (sign %.0f /s)\n",
           limits->verify_per_s, limits->sign_per_s);
    printf("  store insert path, no crypto (submit_batch %3zu) %10.0f msg/s\n", limits->store_batch,
           limits->store_msgs_per_s);
    printf("  ZeroMQ CURVE DEALER/ROUTER 1 KiB round trip     p50 %.1f us, p99 %.1f us; "
           "%.0f round trips/s with 256 in flight\n",
           limits->zmq_rtt_p50_us, limits->zmq_rtt_p99_us, limits->zmq_roundtrips_per_s);
}

/* --- long mode (make bench-long, bench/long.sh) ----------------------------------- */

/*  The database is seeded with `rows` stored messages by bulk SQL on the harness's
    admin connection, not through the broker (hours at 10 million). Every seeded
    message is a copy of one real message of the run (a "through-empty" message:
    submitted, delivered, acknowledged; for a backlog, one still pending) with its
    own ids, case token, header hash, times and envelope: one messages row, its deliveries, its case
   events (the template's whole chain), its lifecycle, its case head and one audit_log leaf per
   event, so tables and indexes have the rows a real database of that many acknowledged messages
   would have. Approximated, and said in the output: the triggers are off while seeding
   (session_replication_role = replica: no per-row audit append, no NOTIFY, no foreign-key checks),
   the event hashes are not a real chain (hash = SHA-256(index || seq)), audit leaves are appended
    directly and audit_head's frontier is zeros of the right length, so
    `puente audit verify` fails on this database (it is thrown away). One message
    per case, ids UUIDv7 1 ms apart ending a day before the run.
    The envelope is the template's bytes followed by a second header field: the
    template's header followed by a second message_id field holding the seeded
    id. Protobuf keeps the last value of a field that appears twice, so the
    broker delivers the copy under its own id and a receiver that acks without
    opening acks it (backlog drain); the header signature no longer matches, so
    it does not verify. */

#define S_SEED_CHUNK 100000

typedef struct {
    size_t rows;
    double seed_s, vacuum_s;
    long long db_bytes, messages_bytes, deliveries_bytes, events_bytes, audit_bytes;
    long long events, audit_leaves;
} s_seed_t;

/* Runs one statement; returns 0 if it succeeded (command or rows). */
static int s_pg(PGconn *conn, const char *sql, int n, const char *const *values, const int *lengths,
                const int *formats, PGresult **res_out)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, values, lengths, formats, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "loadgen: seed: %s\n  in: %.120s\n", PQerrorMessage(conn), sql);
        PQclear(res);
        return -1;
    }
    if (res_out)
        *res_out = res;
    else
        PQclear(res);
    return 0;
}

static long long s_pg_ll(PGconn *conn, const char *sql)
{
    PGresult *res = NULL;
    long long v = -1;
    if (s_pg(conn, sql, 0, NULL, NULL, NULL, &res) == 0 && PQntuples(res) == 1 &&
        !PQgetisnull(res, 0, 0))
        v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* The template: tables bench_seed_* holding the rows of the first message whose
   case token starts with prefix and whose delivery is in state ("acked" for the
   long mode, "pending" for a backlog), and the id function. */
static int s_seed_template(PGconn *conn, const char *prefix, const char *state)
{
    char pattern[128], token[128] = "";
    snprintf(pattern, sizeof pattern, "%s%%", prefix);
    const char *pv[2] = {pattern, state};
    PGresult *found = NULL;
    if (s_pg(conn,
             "SELECT m.case_token FROM messages m JOIN deliveries d ON d.message_id = m.message_id "
             "WHERE m.case_token LIKE $1 AND d.state = $2 ORDER BY m.seq LIMIT 1",
             2, pv, NULL, NULL, &found) != 0)
        return -1;
    if (PQntuples(found) == 1)
        snprintf(token, sizeof token, "%s", PQgetvalue(found, 0, 0));
    PQclear(found);
    if (!token[0]) {
        fprintf(stderr, "loadgen: seed: no message %s... with a delivery %s to copy\n", prefix,
                state);
        return -1;
    }
    char *lit = PQescapeLiteral(conn, token, strlen(token));
    char *state_lit = PQescapeLiteral(conn, state, strlen(state));
    if (!lit || !state_lit) {
        PQfreemem(lit);
        PQfreemem(state_lit);
        return -1;
    }
    char sql[4][600];
    snprintf(sql[0], sizeof sql[0],
             "CREATE TABLE bench_seed_msg AS SELECT m.*, pt_ts_to_ms(m.created_at) AS tmpl_ms "
             "FROM messages m WHERE m.case_token = %s",
             lit);
    snprintf(sql[1], sizeof sql[1],
             "CREATE TABLE bench_seed_dlv AS SELECT d.*, m.stored_at AS msg_stored_at "
             "FROM deliveries d JOIN messages m ON m.message_id = d.message_id "
             "WHERE m.case_token = %s AND d.state = %s",
             lit, state_lit);
    snprintf(sql[2], sizeof sql[2],
             "CREATE TABLE bench_seed_ev AS SELECT e.*, "
             "(SELECT tmpl_ms FROM bench_seed_msg) AS tmpl_ms FROM case_events e "
             "WHERE e.case_token = %s",
             lit);
    snprintf(sql[3], sizeof sql[3],
             "CREATE TABLE bench_seed_lc AS SELECT l.*, (SELECT tmpl_ms FROM bench_seed_msg) "
             "AS tmpl_ms FROM lifecycles l WHERE l.case_token = %s",
             lit);
    PQfreemem(lit);
    PQfreemem(state_lit);
    static const char *const setup[] = {
        "DROP TABLE IF EXISTS bench_seed_msg, bench_seed_dlv, bench_seed_ev, bench_seed_lc",
        /* UUIDv7 shape: 48-bit ms, version 7, variant 10, the rest from md5 (inlined). */
        "CREATE OR REPLACE FUNCTION bench_seed_uuid(ms bigint, i bigint, salt int) RETURNS uuid "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN (lpad(to_hex(ms), 12, '0') || '7' || "
        "substr(overlay(md5(i::text || ':' || salt) PLACING '8' FROM 4 FOR 1), 1, 19))::uuid"};
    for (size_t i = 0; i < 2; i++)
        if (s_pg(conn, setup[i], 0, NULL, NULL, NULL, NULL) != 0)
            return -1;
    for (size_t i = 0; i < 4; i++)
        if (s_pg(conn, sql[i], 0, NULL, NULL, NULL, NULL) != 0)
            return -1;
    long long m = s_pg_ll(conn, "SELECT count(*) FROM bench_seed_msg");
    long long d = s_pg_ll(conn, "SELECT count(*) FROM bench_seed_dlv");
    long long e = s_pg_ll(conn, "SELECT count(*) FROM bench_seed_ev");
    long long l = s_pg_ll(conn, "SELECT count(*) FROM bench_seed_lc");
    fprintf(stderr,
            "loadgen: seed template %s: %lld message, %lld %s delivery, %lld case events, "
            "%lld lifecycle\n",
            token, m, d, state, e, l);
    if (m != 1 || d < 1 || e < 2) {
        fprintf(stderr, "loadgen: seed: the template message is not stored with a %s delivery\n",
                state);
        return -1;
    }
    return 0;
}

/* One chunk [lo, hi) of seeded messages, one transaction. */
static const char *const s_seed_chunk_sql[] = {
    /* messages and their deliveries */
    "WITH m AS (INSERT INTO messages (message_id, correlation_id, causation_id, message_type, "
    "sender, recipients, case_token, purpose, agreement_id, created_at, expires_at, stored_at, "
    "header_sha256, envelope) "
    "SELECT bench_seed_uuid($3::bigint + i, i, 1), bench_seed_uuid($3::bigint + i, i, 2), NULL, "
    "t.message_type, t.sender, t.recipients, 'SEED-' || i, t.purpose, t.agreement_id, "
    "t.created_at + d.iv, t.expires_at + d.iv, t.stored_at + d.iv, sha256(int8send(i)), "
    "$4::bytea || uuid_send(bench_seed_uuid($3::bigint + i, i, 1)) "
    "FROM generate_series($1::bigint, $2::bigint - 1) AS i, bench_seed_msg t, "
    "LATERAL (SELECT ($3::bigint + i - t.tmpl_ms) * interval '1 millisecond' AS iv) d "
    "ORDER BY i RETURNING message_id, correlation_id, seq, stored_at) "
    "INSERT INTO deliveries (message_id, recipient, correlation_id, seq, state, attempts, "
    "next_attempt_at, first_delivered_at, acked_at, expires_at, claimed_by, claim_expires_at) "
    "SELECT m.message_id, t.recipient, m.correlation_id, m.seq, t.state, t.attempts, "
    "t.next_attempt_at + (m.stored_at - t.msg_stored_at), "
    "t.first_delivered_at + (m.stored_at - t.msg_stored_at), "
    "t.acked_at + (m.stored_at - t.msg_stored_at), t.expires_at + (m.stored_at - t.msg_stored_at), "
    "t.claimed_by, t.claim_expires_at + (m.stored_at - t.msg_stored_at) "
    "FROM m, bench_seed_dlv t ORDER BY m.seq",
    /* the case's chain of events (not a real hash chain: see above) and their audit
       leaves, appended after the log's current size in event id order */
    "WITH e AS (INSERT INTO case_events (case_token, seq, kind, at_ms, actor, counterparty, "
    "message_type, message_id, detail, prev_hash, hash) "
    "SELECT g.tok, e.seq, e.kind, e.at_ms + ($3::bigint + g.i - e.tmpl_ms), e.actor, "
    "e.counterparty, e.message_type, CASE WHEN e.message_id IS NULL THEN NULL ELSE g.mid END, "
    "CASE WHEN length(e.detail) = 32 THEN g.hs ELSE e.detail END, "
    "CASE WHEN e.seq = 1 THEN e.prev_hash ELSE sha256(g.ib || int4send(e.seq::int - 1)) END, "
    "sha256(g.ib || int4send(e.seq::int)) "
    /* OFFSET 0: the per-message values once per message, not once per event */
    "FROM (SELECT i, 'SEED-' || i AS tok, bench_seed_uuid($3::bigint + i, i, 1) AS mid, "
    "int8send(i) AS ib, sha256(int8send(i)) AS hs "
    "FROM generate_series($1::bigint, $2::bigint - 1) AS i OFFSET 0) g, bench_seed_ev e "
    "ORDER BY g.i, e.seq RETURNING event_id, hash) "
    "INSERT INTO audit_log (leaf_index, event_id, leaf_hash) "
    "SELECT h.size + row_number() OVER (ORDER BY e.event_id) - 1, e.event_id, "
    "pt_audit_leaf_hash(e.hash, e.event_id) FROM e, audit_head h WHERE h.id = 1 "
    "ORDER BY e.event_id",
    "INSERT INTO lifecycles (correlation_id, kind, state, initiator, counterparty, case_token, "
    "respond_by_ms, follow_up_due_ms, overdue_at_ms, overdue_deadline, created_at, updated_at) "
    /* A deadline that passed was raised long ago: the lifecycle is "expired" with its
       overdue mark, as the broker's sweep (store.c, S_LC_EXPIRE) leaves it (its event
       and notices are not seeded). Left "received", every seeded lifecycle would be
       expired by the sweep during the measurement. */
    "SELECT bench_seed_uuid($3::bigint + i, i, 2), l.kind, "
    "CASE WHEN l.respond_by_ms > 0 THEN 'expired' ELSE l.state END, l.initiator, "
    "l.counterparty, 'SEED-' || i, "
    "CASE WHEN l.respond_by_ms > 0 THEN l.respond_by_ms + ($3::bigint + i - l.tmpl_ms) ELSE 0 "
    "END, 0, "
    "CASE WHEN l.respond_by_ms > 0 THEN l.respond_by_ms + ($3::bigint + i - l.tmpl_ms) ELSE 0 "
    "END, CASE WHEN l.respond_by_ms > 0 THEN 'respond_by' ELSE '' END, "
    "l.created_at + ($3::bigint + i - l.tmpl_ms) * interval '1 millisecond', "
    "l.updated_at + ($3::bigint + i - l.tmpl_ms) * interval '1 millisecond' "
    "FROM generate_series($1::bigint, $2::bigint - 1) AS i, bench_seed_lc l",
};

/* The audit head after the chunk's leaves. frontier: one 32-byte root per bit set
   in size (zeros: see above). */
static const char s_seed_audit_head_sql[] =
    "UPDATE audit_head SET size = s.n, frontier = decode(repeat('00', 32 * "
    "length(replace(s.n::bit(64)::text, '0', ''))), 'hex') "
    "FROM (SELECT max(leaf_index) + 1 AS n FROM audit_log) s WHERE id = 1";

/* The seeded envelope without its last 16 bytes (the seeded message id, appended
   by the seeding SQL): the template's envelope, then a header field (tag 1) holding
   the template's header and a message_id field (tag 1, 16 bytes). Both repeat a
   field already there, and protobuf keeps the last. NULL on failure. */
static uint8_t *s_seed_envelope_prefix(PGconn *conn, size_t *len_out)
{
    PGresult *res =
        PQexecParams(conn, "SELECT envelope FROM bench_seed_msg", 0, NULL, NULL, NULL, NULL, 1);
    Puente__V1__Envelope *env = NULL;
    uint8_t *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !(env = puente__v1__envelope__unpack(NULL, (size_t)PQgetlength(res, 0, 0),
                                             (const uint8_t *)PQgetvalue(res, 0, 0)))) {
        fprintf(stderr, "loadgen: seed: the template's envelope does not decode\n");
        goto done;
    }
    size_t env_len = (size_t)PQgetlength(res, 0, 0);
    if (!(out = malloc(env_len + 11 + env->header.len + 2)))
        goto done;
    memcpy(out, PQgetvalue(res, 0, 0), env_len);
    size_t at = env_len;
    at += s_field1_head(out + at, env->header.len + 2 + 16);
    memcpy(out + at, env->header.data, env->header.len);
    at += env->header.len;
    at += s_field1_head(out + at, 16); /* Header.message_id: the seeding SQL appends it */
    *len_out = at;
done:
    if (env)
        puente__v1__envelope__free_unpacked(env, NULL);
    PQclear(res);
    return out;
}

static int s_seed(const char *conninfo, const char *prefix, const char *state, size_t rows,
                  s_seed_t *out)
{
    PGconn *conn = PQconnectdb(conninfo);
    PGresult *res = NULL;
    uint8_t *blob = NULL;
    cli_progress_t *line = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->rows = rows;
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "loadgen: seed: %s\n", PQerrorMessage(conn));
        goto done;
    }
    /* Superuser only: triggers (audit note, NOTIFY) and foreign keys off. */
    if (s_pg(conn, "SET session_replication_role = replica", 0, NULL, NULL, NULL, NULL) != 0 ||
        s_pg(conn, "SET client_min_messages = warning", 0, NULL, NULL, NULL, NULL) != 0 ||
        s_seed_template(conn, prefix, state) != 0)
        goto done;
    size_t env_len = 0;
    if (!(blob = s_seed_envelope_prefix(conn, &env_len)))
        goto done;
    char base[32], lo_s[32], hi_s[32];
    snprintf(base, sizeof base, "%lld", (long long)(pt_now_ms() - (int64_t)rows - 86400000LL));
    int env_len_i = (int)env_len;
    line = cli_progress_new("loadgen: seeding messages", rows, stderr,
                            cli_progress_wanted(stderr, 0), NULL, NULL);
    int64_t start = s_now_ns();
    int64_t step_ns[5] = {0}; /* messages+deliveries, events, lifecycles, audit, commit */
    for (size_t lo = 1; lo <= rows; lo += S_SEED_CHUNK) {
        size_t hi = lo + S_SEED_CHUNK > rows + 1 ? rows + 1 : lo + S_SEED_CHUNK;
        cli_progress_update(line, lo - 1);
        snprintf(lo_s, sizeof lo_s, "%zu", lo);
        snprintf(hi_s, sizeof hi_s, "%zu", hi);
        if (s_pg(conn, "BEGIN", 0, NULL, NULL, NULL, NULL) != 0)
            goto done;
        const char *values[4] = {lo_s, hi_s, base, (const char *)blob};
        const int lengths[4] = {0, 0, 0, env_len_i}, formats[4] = {0, 0, 0, 1};
        static const int n_params[] = {4, 3, 3}; /* of each s_seed_chunk_sql */
        _Static_assert(sizeof n_params / sizeof n_params[0] ==
                           sizeof s_seed_chunk_sql / sizeof s_seed_chunk_sql[0],
                       "one parameter count per seeding statement");
        int64_t t0 = s_now_ns();
        for (size_t k = 0; k < sizeof s_seed_chunk_sql / sizeof s_seed_chunk_sql[0]; k++) {
            if (s_pg(conn, s_seed_chunk_sql[k], n_params[k], values, lengths, formats, NULL) != 0)
                goto done;
            int64_t t1 = s_now_ns();
            step_ns[k] += t1 - t0;
            t0 = t1;
        }
        if (s_pg(conn, s_seed_audit_head_sql, 0, NULL, NULL, NULL, NULL) != 0)
            goto done;
        step_ns[3] += s_now_ns() - t0;
        t0 = s_now_ns();
        if (s_pg(conn, "COMMIT", 0, NULL, NULL, NULL, NULL) != 0)
            goto done;
        step_ns[4] += s_now_ns() - t0;
        size_t every = rows / S_SEED_CHUNK / 10 ? rows / S_SEED_CHUNK / 10 : 1; /* ~10 lines */
        if (!cli_progress_wanted(stderr, 0) && ((lo - 1) / S_SEED_CHUNK) % every == every - 1)
            fprintf(stderr, "loadgen: seeded %zu of %zu messages (%.0f s)\n", hi - 1, rows,
                    (double)(s_now_ns() - start) / 1e9);
    }
    cli_progress_done(&line);
    out->seed_s = (double)(s_now_ns() - start) / 1e9;
    fprintf(stderr,
            "loadgen: seeded %zu messages in %.1f s (messages+deliveries %.1f s, case_events "
            "and audit_log %.1f s, lifecycles %.1f s, audit_head %.1f s, commits %.1f s); "
            "VACUUM ANALYZE, CHECKPOINT...\n",
            rows, out->seed_s, step_ns[0] / 1e9, step_ns[1] / 1e9, step_ns[2] / 1e9,
            step_ns[3] / 1e9, step_ns[4] / 1e9);
    /* What autovacuum would have done to a database that grew over months. */
    start = s_now_ns();
    static const char *const after[] = {
        "VACUUM (ANALYZE) messages",    "VACUUM (ANALYZE) deliveries",
        "VACUUM (ANALYZE) case_events", "VACUUM (ANALYZE) lifecycles",
        "VACUUM (ANALYZE) audit_log",   "CHECKPOINT"};
    for (size_t k = 0; k < sizeof after / sizeof after[0]; k++)
        if (s_pg(conn, after[k], 0, NULL, NULL, NULL, NULL) != 0)
            goto done;
    out->vacuum_s = (double)(s_now_ns() - start) / 1e9;
    out->db_bytes = s_pg_ll(conn, "SELECT pg_database_size(current_database())");
    out->messages_bytes = s_pg_ll(conn, "SELECT pg_total_relation_size('messages')");
    out->deliveries_bytes = s_pg_ll(conn, "SELECT pg_total_relation_size('deliveries')");
    out->events_bytes = s_pg_ll(conn, "SELECT pg_total_relation_size('case_events')");
    out->audit_bytes = s_pg_ll(conn, "SELECT pg_total_relation_size('audit_log')");
    out->events = s_pg_ll(conn, "SELECT count(*) FROM case_events");
    out->audit_leaves = s_pg_ll(conn, "SELECT size FROM audit_head");
    rc = 0;
done:
    cli_progress_done(&line);
    PQclear(res);
    free(blob);
    PQfinish(conn);
    return rc;
}

/* The ingest modes leave their messages pending for the sink, which nobody receives:
   the sink "acknowledges" them here (SQL on the admin connection), so that every
   ingest run of the long mode starts with the same, empty, backlog. Without it the
   backlog grows by one mode's messages per run, and the broker's once-a-second queue
   gauge (store.c, S_QUEUE_STATS_SQL), which reads every unacknowledged delivery,
   weighs on the later runs: it would measure the backlog, not the stored history.
   With token_like, only the messages whose case token is LIKE it: the store limit's
   rows (s_limit_store), whose envelopes are random bytes no recipient could take. */
static int s_drain_sink(const char *conninfo, const char *token_like)
{
    PGconn *conn = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "loadgen: drain: %s\n", PQerrorMessage(conn));
        goto done;
    }
    const char *like[1] = {token_like};
    if (s_pg(conn,
             "UPDATE deliveries d SET state = 'acked', attempts = 1, first_delivered_at = now(), "
             "acked_at = now() WHERE d.recipient = '" BENCH_SINK "' AND d.state <> 'acked' "
             "AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM messages m "
             "WHERE m.message_id = d.message_id AND m.case_token LIKE $1))",
             1, like, NULL, NULL, NULL) != 0 ||
        s_pg(conn, "VACUUM (ANALYZE) deliveries", 0, NULL, NULL, NULL, NULL) != 0)
        goto done;
    rc = 0;
done:
    PQfinish(conn);
    return rc;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of the ingest (or e2e) rate of n results. */
static double s_median_rate(const s_result_t *r, size_t n, int e2e)
{
    double v[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 16; i++)
        v[k++] = e2e ? r[i].e2e_per_s : r[i].ingest_per_s;
    if (k == 0)
        return 0;
    qsort(v, k, sizeof v[0], s_cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* Least-squares slope of RSS (MiB per minute) over samples [from, to). */
static double s_rss_slope(const s_rss_sample_t *s, size_t from, size_t to)
{
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = from; i < to; i++) {
        if (s[i].rss_kib < 0)
            continue;
        double x = s[i].t_s / 60.0, y = s[i].rss_kib / 1024.0;
        n++;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double den = n * sxx - sx * sx;
    return n >= 2 && den > 0 ? (n * sxy - sx * sy) / den : 0;
}

typedef struct {
    size_t rows;
    double minutes, rate, sample_s;
    int repeats;
    const char *json_path, *dat_path;
} s_long_opts_t;

static int s_long_main(s_bench_t *bench, const s_long_opts_t *o)
{
    enum { MAXR = 16 };
    s_result_t empty[MAXR], full[MAXR], thr_empty, thr_full, mem;
    size_t n_empty = 0, n_full = 0;
    s_seed_t seed;
    int repeats = o->repeats < 1 ? 1 : o->repeats > MAXR ? MAXR : o->repeats;
    size_t sat_n = bench->quick ? 6000 : 40000;
    char names[2][MAXR][24];
    memset(&thr_empty, 0, sizeof thr_empty);
    memset(&thr_full, 0, sizeof thr_full);
    memset(&mem, 0, sizeof mem);

    for (int r = 0; r < repeats; r++) {
        snprintf(names[0][r], sizeof names[0][r], "ingest-empty%d", r + 1);
        s_mode_t m = {names[0][r], sat_n, 0, 0, 512};
        if (s_drain_sink(pt_harness_conninfo(bench->harness), NULL) != 0)
            return -1;
        if (s_run_mode(bench, &m, &empty[n_empty]) != 0)
            fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", m.name);
        n_empty++;
    }
    s_mode_t te = {"through-empty", sat_n / 2, 0, 1, 512};
    if (s_drain_sink(pt_harness_conninfo(bench->harness), NULL) != 0)
        return -1;
    if (s_run_mode(bench, &te, &thr_empty) != 0)
        fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", te.name);

    fprintf(stderr, "loadgen: seeding %zu stored messages (bulk SQL, not through the broker)...\n",
            o->rows);
    if (s_seed(pt_harness_conninfo(bench->harness), "BENCH-through-empty-", "acked", o->rows,
               &seed) != 0)
        return -1;
    printf("seeded %zu stored messages in %.1f s (%.0f msg/s; bulk SQL, triggers off) + VACUUM "
           "ANALYZE and CHECKPOINT %.1f s\n",
           seed.rows, seed.seed_s, seed.seed_s > 0 ? seed.rows / seed.seed_s : 0, seed.vacuum_s);
    printf("database %.2f GiB: messages %.2f GiB, deliveries %.2f GiB, case_events %.2f GiB "
           "(%lld events), audit_log %.2f GiB (%lld leaves)\n",
           seed.db_bytes / 1073741824.0, seed.messages_bytes / 1073741824.0,
           seed.deliveries_bytes / 1073741824.0, seed.events_bytes / 1073741824.0, seed.events,
           seed.audit_bytes / 1073741824.0, seed.audit_leaves);
    fflush(stdout);

    for (int r = 0; r < repeats; r++) {
        snprintf(names[1][r], sizeof names[1][r], "ingest-full%d", r + 1);
        s_mode_t m = {names[1][r], sat_n, 0, 0, 512};
        if (s_drain_sink(pt_harness_conninfo(bench->harness), NULL) != 0)
            return -1;
        if (s_run_mode(bench, &m, &full[n_full]) != 0)
            fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", m.name);
        n_full++;
    }
    s_mode_t tf = {"through-full", sat_n / 2, 0, 1, 512};
    if (s_drain_sink(pt_harness_conninfo(bench->harness), NULL) != 0)
        return -1;
    if (s_run_mode(bench, &tf, &thr_full) != 0)
        fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", tf.name);

    /* Memory: a paced load for `minutes`, the receiver acking, VmRSS sampled. Rate 0:
       what this machine sustains end to end, 60 % of through-full's acks/s in steps of
       50, at most 1 000/s, so that a growing backlog does not pass for a leak. */
    double secs = o->minutes * 60;
    double rate = o->rate;
    if (rate <= 0) {
        rate = floor(0.6 * thr_full.e2e_per_s / 50) * 50;
        rate = rate < 50 ? 50 : rate > 1000 ? 1000 : rate;
    }
    s_mode_t mm = {"memory",
                   (size_t)(rate * secs),
                   rate,
                   1,
                   (size_t)(rate * 2 > 1000 ? rate * 2 : 1000),
                   1,
                   secs + 60,
                   o->sample_s};
    fprintf(stderr, "loadgen: memory run: %.0f msg/s%s for %.1f min, VmRSS every %.0f s\n", rate,
            o->rate <= 0 ? " (60 % of through-full's acks/s, at most 1000)" : "", o->minutes,
            o->sample_s);
    if (s_drain_sink(pt_harness_conninfo(bench->harness), NULL) != 0)
        return -1;
    if (s_run_mode(bench, &mm, &mem) != 0)
        fprintf(stderr, "loadgen: mode memory incomplete (figures kept)\n");

    s_result_t all[2 * MAXR + 3];
    size_t n_all = 0;
    for (size_t i = 0; i < n_empty; i++)
        all[n_all++] = empty[i];
    all[n_all++] = thr_empty;
    for (size_t i = 0; i < n_full; i++)
        all[n_all++] = full[i];
    all[n_all++] = thr_full;
    all[n_all++] = mem;
    s_print_table(all, n_all, NULL);

    double ie = s_median_rate(empty, n_empty, 0), ifull = s_median_rate(full, n_full, 0);
    double ingest_ratio = ie > 0 ? ifull / ie : 0;
    double thr_ratio = thr_empty.e2e_per_s > 0 ? thr_full.e2e_per_s / thr_empty.e2e_per_s : 0;
    printf("\ningest with %zu stored / empty database: %.3f (median of %d: %.0f vs %.0f msg/s; "
           "target >= 0.90)\n",
           o->rows, ingest_ratio, repeats, ifull, ie);
    printf("end to end (ack receiver) with %zu stored / empty: %.3f (%.0f vs %.0f msg/s)\n",
           o->rows, thr_ratio, thr_full.e2e_per_s, thr_empty.e2e_per_s);

    const s_rss_sample_t *s = bench->rss;
    size_t ns = bench->n_rss;
    long rss_max = 0;
    for (size_t i = 0; i < ns; i++)
        if (s[i].rss_kib > rss_max)
            rss_max = s[i].rss_kib;
    double slope = s_rss_slope(s, 0, ns), slope2 = s_rss_slope(s, ns / 2, ns);
    if (ns > 0)
        printf("broker memory over %.1f min at %.0f msg/s offered (%.0f achieved, %zu receipts, "
               "%zu acked): VmRSS start %.1f MiB, end %.1f MiB, max %.1f MiB, VmHWM %.1f MiB; "
               "slope %+.3f MiB/min (second half %+.3f MiB/min); %zu samples\n",
               o->minutes, rate, mem.achieved_offered_per_s, mem.receipts, mem.acked,
               s[0].rss_kib / 1024.0, s[ns - 1].rss_kib / 1024.0, rss_max / 1024.0,
               s[ns - 1].hwm_kib / 1024.0, slope, slope2, ns);
    printf("approximated: seeded rows are copies of one real message with their triggers off; "
           "their hash chains and audit leaves are not real (`puente audit verify` fails on this "
           "throwaway database)\n");

    if (o->json_path) {
        FILE *f = fopen(o->json_path, "w");
        if (!f) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", o->json_path, strerror(errno));
            return -1;
        }
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        time_t t = time(NULL);
        char when[64];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        fprintf(f,
                "{\n  \"benchmark\": \"puente loadgen long\", \"version\": 1, \"time\": \"%s\", "
                "\"host\": \"%s\", \"cpus\": %ld, \"quick\": %s,\n",
                when, host, sysconf(_SC_NPROCESSORS_ONLN), bench->quick ? "true" : "false");
        fprintf(f, "  \"payload_bytes\": %d, \"message_type\": \"%s\", \"repeats\": %d,\n",
                BENCH_BODY_BYTES, BENCH_MESSAGE_TYPE, repeats);
        fprintf(f,
                "  \"seed\": {\"messages\": %zu, \"seconds\": %.2f, \"messages_per_s\": %.0f, "
                "\"vacuum_analyze_checkpoint_seconds\": %.2f, \"case_events\": %lld, "
                "\"audit_leaves\": %lld,\n    \"database_bytes\": %lld, \"messages_bytes\": %lld, "
                "\"deliveries_bytes\": %lld, \"case_events_bytes\": %lld, \"audit_log_bytes\": "
                "%lld,\n    \"approximated\": \"bulk SQL with triggers off (no per-row audit "
                "append, NOTIFY or FK checks); copies of one real acknowledged message; hash "
                "chains, audit leaves and audit_head frontier not real: puente audit verify "
                "fails on this database\"},\n",
                seed.rows, seed.seed_s, seed.seed_s > 0 ? seed.rows / seed.seed_s : 0,
                seed.vacuum_s, seed.events, seed.audit_leaves, seed.db_bytes, seed.messages_bytes,
                seed.deliveries_bytes, seed.events_bytes, seed.audit_bytes);
        fprintf(f,
                "  \"ratios\": {\"ingest_full_over_empty\": %.4f, \"ingest_empty_median_per_s\": "
                "%.1f, \"ingest_full_median_per_s\": %.1f, \"e2e_full_over_empty\": %.4f},\n",
                ingest_ratio, ie, ifull, thr_ratio);
        fprintf(f,
                "  \"memory\": {\"minutes\": %.2f, \"offered_per_s\": %.0f, \"sample_s\": %.1f, "
                "\"start_rss_kib\": %ld, \"end_rss_kib\": %ld, \"max_rss_kib\": %ld, "
                "\"vmhwm_kib\": %ld, \"slope_mib_per_min\": %.4f, "
                "\"slope_second_half_mib_per_min\": %.4f,\n    \"samples\": [",
                o->minutes, rate, o->sample_s, ns ? s[0].rss_kib : -1, ns ? s[ns - 1].rss_kib : -1,
                rss_max, ns ? s[ns - 1].hwm_kib : -1, slope, slope2);
        for (size_t i = 0; i < ns; i++)
            fprintf(f, "%s[%.1f, %ld, %zu]", i ? ", " : "", s[i].t_s, s[i].rss_kib, s[i].receipts);
        fprintf(f, "],\n    \"sample_fields\": [\"t_s\", \"vmrss_kib\", \"receipts\"]},\n");
        fprintf(f, "  \"modes\": [\n");
        for (size_t i = 0; i < n_all; i++)
            s_json_mode(f, &all[i], i + 1 == n_all);
        fprintf(f, "  ]\n}\n");
        fclose(f);
    }
    if (o->dat_path) {
        FILE *f = fopen(o->dat_path, "w");
        if (f) {
            fprintf(f, "# broker VmRSS during the memory run: t_s rss_mib receipts\n");
            for (size_t i = 0; i < ns; i++)
                fprintf(f, "%.1f %.2f %zu\n", s[i].t_s, s[i].rss_kib / 1024.0, s[i].receipts);
            fclose(f);
        }
    }
    return 0;
}

static void s_usage(void)
{
    fprintf(stderr, "usage: loadgen [--quick] [--json FILE] [--dat FILE] [--perf FILE]\n"
                    "       loadgen --long ROWS [--minutes M] [--rate R] [--repeats N] "
                    "[--sample S] [--quick] [--json FILE] [--dat FILE]\n"
                    "needs PUENTE_TEST_DB, PUENTE_BROKER_BIN, PUENTE_SQL_DIR (see bench/run.sh, "
                    "bench/long.sh)\n");
}

int main(int argc, char **argv)
{
    const char *json_path = NULL, *dat_path = NULL;
    s_bench_t bench = {0};
    s_long_opts_t long_opts = {0, 10, 0, 5, 3, NULL, NULL}; /* rate 0: auto */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            bench.quick = 1;
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--dat") == 0 && i + 1 < argc)
            dat_path = argv[++i];
        else if (strcmp(argv[i], "--perf") == 0 && i + 1 < argc)
            bench.perf_out = argv[++i];
        else if (strcmp(argv[i], "--long") == 0 && i + 1 < argc)
            long_opts.rows = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--minutes") == 0 && i + 1 < argc)
            long_opts.minutes = atof(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            long_opts.rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc)
            long_opts.repeats = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sample") == 0 && i + 1 < argc)
            long_opts.sample_s = atof(argv[++i]);
        else {
            s_usage();
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int quick = bench.quick;
    s_limits_t limits = {0};
    s_result_t results[13];
    size_t n_results = 0;
    int rc = 1;

    if (long_opts.rows > 0) {
        if (long_opts.minutes <= 0 || long_opts.sample_s <= 0 ||
            long_opts.rate < 0 || long_opts.rate * long_opts.minutes * 60 > 4e9) {
            s_usage();
            return 1;
        }
        long_opts.json_path = json_path;
        long_opts.dat_path = dat_path;
        bench.perf_out = NULL;
        bench.harness = pt_harness_new("benchlong");
        if (bench.harness && pt_harness_broker_start(bench.harness) == 0 &&
            pt_harness_register_demo(bench.harness) == 0 && (bench.broker = s_find_broker()) &&
            (bench.ctx = zmq_ctx_new()) != NULL)
            rc = s_long_main(&bench, &long_opts) == 0 ? 0 : 1;
        else
            fprintf(stderr, "loadgen: cannot start the broker\n");
        goto done;
    }

    fprintf(stderr, "loadgen: component limits...\n");
    if (s_limit_ed25519(quick ? 0.5 : 2.0, &limits) != 0 ||
        s_limit_zmq(quick ? 2000 : 10000, quick ? 50000 : 200000, &limits) != 0) {
        fprintf(stderr, "loadgen: component measurement failed\n");
        return 1;
    }

    bench.harness = pt_harness_new("bench");
    if (!bench.harness || pt_harness_broker_start(bench.harness) != 0 ||
        pt_harness_register_demo(bench.harness) != 0)
        goto done;
    bench.broker = s_find_broker();
    if (!bench.broker) {
        fprintf(stderr, "loadgen: cannot find the broker's pid\n");
        goto done;
    }
    bench.ctx = zmq_ctx_new();

    /* Store limit: same database and schema as the broker, its own connection,
       before the broker modes so both see a comparable (near empty) table. */
    if (s_limit_store(pt_harness_conninfo(bench.harness), quick ? 10240 : 51200, 256, &limits) !=
            0 ||
        s_drain_sink(pt_harness_conninfo(bench.harness), "BENCH-STORE-%") != 0)
        goto done;

    size_t sat_n = quick ? 6000 : 40000;
    double paced_s = quick ? 3.0 : 10.0;
    /* The issue's latency targets hold at 2 000/s on a core verifying S_ISSUE_VERIFY_PER_S;
       "rate-scaled" offers the same fraction of this machine's measured rate (steps of 10),
       "rate-200" shows the floor under light load. */
    double scaled = S_TARGET_RATE / S_ISSUE_VERIFY_PER_S * limits.verify_per_s;
    scaled = scaled < 10 ? 10 : 10 * (double)(long)(scaled / 10 + 0.5);
    s_mode_t modes[] = {
        {"ingest", sat_n, 0, 0, 512},
        {"throughput", sat_n / 2, 0, 1, 512},
        {"e2e", sat_n / 4, 0, 2, 512},
        {"rate-200", (size_t)(200 * paced_s), 200, 1, 400},
        {"rate-scaled", (size_t)(scaled * paced_s), scaled, 1, (size_t)(2 * scaled)},
        {"rate-1000", (size_t)(1000 * paced_s), 1000, 1, 2000},
        {"rate-2000", (size_t)(2000 * paced_s), 2000, 1, 4000},
        {"rate-5000", (size_t)(5000 * paced_s), 5000, 1, 10000},
    };
    bench.perf_seconds = quick ? 2.0 : 5.0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (s_run_mode(&bench, &modes[i], &results[n_results]) != 0)
            fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", modes[i].name);
        n_results++;
    }

    /* Issue 9: a second broker over the same database; every sender alternates
       between the two, the receiver stays on the first (messages stored by the
       second reach it through the database: claim + NOTIFY). */
    size_t one_broker_results = n_results;
    if (pt_harness_broker_start_at(bench.harness, 1) != 0 ||
        !(bench.broker2 = pt_harness_broker_pid_at(bench.harness, 1))) {
        fprintf(stderr, "loadgen: cannot start the second broker\n");
        goto done;
    }
    s_mode_t two[] = {
        {"ingest-2b", sat_n, 0, 0, 512, 2},
        {"throughput-2b", sat_n / 2, 0, 1, 512, 2},
    };
    _Static_assert(sizeof modes / sizeof modes[0] + sizeof two / sizeof two[0] + 2 <=
                       sizeof results / sizeof results[0],
                   "results[] holds every mode");
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++) {
        if (s_run_mode(&bench, &two[i], &results[n_results]) != 0)
            fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", two[i].name);
        n_results++;
    }

    /* A recipient that is down with a backlog (the outage of issue 8): BENCH_BACKLOG
       messages (default 300 000 quick, 1 000 000 full; 0: skipped) seeded waiting for
       the sink, then 200 msg/s offered as in rate-200, one broker. */
    const char *backlog_env = getenv("BENCH_BACKLOG");
    size_t backlog = backlog_env && *backlog_env ? (size_t)strtoull(backlog_env, NULL, 10)
                     : quick                     ? 300000
                                                 : 1000000;
    const s_result_t *with_backlog = NULL, *draining = NULL;
    s_seed_t backlog_seed = {0};
    if (backlog > 0) {
        pt_harness_broker_stop_at(bench.harness, 1, SIGTERM);
        bench.broker2 = 0;
        fprintf(stderr, "loadgen: backlog: seeding %zu messages waiting for %s...\n", backlog,
                BENCH_SINK);
        if (s_seed(pt_harness_conninfo(bench.harness), "BENCH-ingest-", "pending", backlog,
                   &backlog_seed) != 0) {
            fprintf(stderr, "loadgen: backlog: seeding failed; mode skipped\n");
        } else {
            s_mode_t m = {"backlog-200", (size_t)(200 * paced_s), 200, 1, 400};
            m.backlog = backlog;
            if (s_run_mode(&bench, &m, &results[n_results]) != 0)
                fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", m.name);
            with_backlog = &results[n_results++];
            /* The sink comes back and drains while the others keep their 200 msg/s:
               a fixed window (20 s quick, 60 s full), with the drain rate and the
               others' latency meanwhile. */
            double drain_s = quick ? 20 : 60;
            s_mode_t d = {"drain-200", (size_t)(200 * drain_s), 200, 1, 400};
            d.backlog = backlog;
            d.drain = 1;
            d.max_s = drain_s + 15;
            if (s_run_mode(&bench, &d, &results[n_results]) != 0)
                fprintf(stderr, "loadgen: mode %s incomplete (figures kept)\n", d.name);
            draining = &results[n_results++];
        }
    }
    s_print_table(results, n_results, &limits);

    const s_result_t *ingest = &results[0], *e2e = &results[1];
    printf(
        "\nratios: ingest / Ed25519 verify on one core = %.2f; ingest / store insert path = "
        "%.2f; ingest / CURVE round trips = %.3f; end to end / ingest = %.2f\n",
        ingest->ingest_per_s / limits.verify_per_s, ingest->ingest_per_s / limits.store_msgs_per_s,
        ingest->ingest_per_s / limits.zmq_roundtrips_per_s, e2e->e2e_per_s / ingest->ingest_per_s);
    const s_result_t *ingest2 = &results[one_broker_results],
                     *e2e2 = &results[one_broker_results + 1];
    printf("two brokers over one database / one broker: ingest %.2f (%.0f vs %.0f msg/s), "
           "end to end %.2f (%.0f vs %.0f msg/s)\n",
           ingest2->ingest_per_s / ingest->ingest_per_s, ingest2->ingest_per_s,
           ingest->ingest_per_s, e2e2->e2e_per_s / e2e->e2e_per_s, e2e2->e2e_per_s, e2e->e2e_per_s);
    const s_result_t *paced = NULL;
    for (size_t i = 0; i < one_broker_results; i++)
        if (strcmp(results[i].mode.name, "rate-scaled") == 0)
            paced = &results[i];
    const s_result_t *light = NULL;
    for (size_t i = 0; i < one_broker_results; i++)
        if (strcmp(results[i].mode.name, "rate-200") == 0)
            light = &results[i];
    if (with_backlog && light)
        printf("with %zu messages waiting for a recipient that is down (seeded in %.0f s), "
               "200 msg/s: receipt p99 %.1f ms (%.1f without), delivery p99 %.1f ms (%.1f)\n",
               backlog, backlog_seed.seed_s, with_backlog->receipt.p99_us / 1000,
               light->receipt.p99_us / 1000, with_backlog->delivery.p99_us / 1000,
               light->delivery.p99_us / 1000);
    if (draining && light)
        printf("the recipient back after the outage (%lld waiting): %zu acks in %.1f s, "
               "%.0f/s (empty in about %.0f s at that rate; %lld left), while the others' "
               "200 msg/s had receipt p99 %.1f ms, delivery p99 %.1f ms%s\n",
               draining->drain_waiting, draining->drained, draining->drain_s, draining->drain_per_s,
               draining->drain_per_s > 0 ? (double)draining->drain_waiting / draining->drain_per_s
                                         : 0,
               draining->drain_left, draining->receipt.p99_us / 1000,
               draining->delivery.p99_us / 1000, draining->complete ? "" : " (did not keep up)");
    s_scaled_targets_t tg;
    s_scaled_targets(&limits, paced, &tg);
    printf("issue 8's targets scaled to this machine (x %.3f: one core verifies %.0f/s here, "
           "%.0f/s where they were set):\n"
           "  ingest >= %.0f/s: %.0f (%.2f of it); end to end >= %.0f/s: %.0f (%.2f of it)\n"
           "  at %.0f/s offered: receipt p99 <= 5 ms: %.1f ms; delivery p99 <= 10 ms: %.1f ms%s\n",
           tg.scale, limits.verify_per_s, S_ISSUE_VERIFY_PER_S, tg.ingest_target,
           ingest->ingest_per_s, ingest->ingest_per_s / tg.ingest_target, tg.e2e_target,
           e2e->e2e_per_s, e2e->e2e_per_s / tg.e2e_target, tg.rate, tg.receipt_p99_ms,
           tg.delivery_p99_ms, paced && !paced->complete ? " (did not keep up)" : "");

    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", json_path, strerror(errno));
            goto done;
        }
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        time_t t = time(NULL);
        char when[64];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        fprintf(f,
                "{\n  \"benchmark\": \"puente loadgen\", \"version\": 1, \"time\": \"%s\", "
                "\"host\": \"%s\", \"cpus\": %ld, \"quick\": %s,\n",
                when, host, sysconf(_SC_NPROCESSORS_ONLN), quick ? "true" : "false");
        fprintf(f, "  \"payload_bytes\": %d, \"message_type\": \"%s\", \"senders\": %d,\n",
                BENCH_BODY_BYTES, BENCH_MESSAGE_TYPE, BENCH_MAX_SENDERS);
        fprintf(f,
                "  \"limits\": {\"ed25519_verify_per_s\": %.0f, \"ed25519_sign_per_s\": %.0f, "
                "\"store_msgs_per_s\": %.0f, \"store_batch\": %zu, "
                "\"zmq_curve_rtt_p50_us\": %.1f, \"zmq_curve_rtt_p99_us\": %.1f, "
                "\"zmq_curve_roundtrips_per_s\": %.0f},\n",
                limits.verify_per_s, limits.sign_per_s, limits.store_msgs_per_s, limits.store_batch,
                limits.zmq_rtt_p50_us, limits.zmq_rtt_p99_us, limits.zmq_roundtrips_per_s);
        fprintf(f,
                "  \"ratios\": {\"ingest_over_verify\": %.3f, \"ingest_over_store\": %.3f, "
                "\"ingest_over_zmq_roundtrips\": %.4f, \"e2e_over_ingest\": %.3f, "
                "\"two_brokers_ingest_over_one\": %.3f, \"two_brokers_e2e_over_one\": %.3f},\n",
                ingest->ingest_per_s / limits.verify_per_s,
                ingest->ingest_per_s / limits.store_msgs_per_s,
                ingest->ingest_per_s / limits.zmq_roundtrips_per_s,
                e2e->e2e_per_s / ingest->ingest_per_s, ingest2->ingest_per_s / ingest->ingest_per_s,
                e2e2->e2e_per_s / e2e->e2e_per_s);
        fprintf(f,
                "  \"scaled_targets\": {\"scale\": %.4f, \"issue_verify_per_s\": %.0f, "
                "\"ingest_per_s\": %.0f, \"ingest_ratio\": %.3f, \"e2e_per_s\": %.0f, "
                "\"e2e_ratio\": %.3f, \"paced_rate\": %.0f, \"receipt_p99_ms\": %.2f, "
                "\"delivery_p99_ms\": %.2f},\n",
                tg.scale, S_ISSUE_VERIFY_PER_S, tg.ingest_target,
                ingest->ingest_per_s / tg.ingest_target, tg.e2e_target,
                e2e->e2e_per_s / tg.e2e_target, tg.rate, tg.receipt_p99_ms, tg.delivery_p99_ms);
        fprintf(f, "  \"modes\": [\n");
        for (size_t i = 0; i < n_results; i++)
            s_json_mode(f, &results[i], i + 1 == n_results);
        fprintf(f, "  ]\n}\n");
        fclose(f);
    }
    if (dat_path) {
        FILE *f = fopen(dat_path, "w");
        if (f) {
            fprintf(f, "# offered_per_s achieved_per_s receipt_p50_ms receipt_p99_ms "
                       "delivery_p50_ms delivery_p99_ms\n");
            /* Paced points in rising order, then saturation (offered = achieved). */
            size_t order[sizeof results / sizeof results[0]];
            for (size_t i = 0; i < n_results; i++)
                order[i] = i;
            for (size_t i = 1; i < n_results; i++)
                for (size_t j = i; j > 0 && results[order[j - 1]].mode.rate >
                                                results[order[j]].mode.rate; j--) {
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
            for (size_t pass = 0; pass < 2; pass++) {
                if (pass == 1)
                    fprintf(f, "\n\n# saturation (offered = achieved)\n");
                for (size_t k = 0; k < n_results; k++) {
                    const s_result_t *r = &results[order[k]];
                    if (r->mode.receiver != 1 || (pass == 0) != (r->mode.rate > 0) ||
                        r->mode.brokers > 1 || r->mode.backlog > 0)
                        continue;
                    double offered = r->mode.rate > 0 ? r->mode.rate : r->ingest_per_s;
                    fprintf(f, "%.0f %.0f %.3f %.3f %.3f %.3f\n", offered, r->ingest_per_s,
                            r->receipt.p50_us / 1000, r->receipt.p99_us / 1000,
                            r->delivery.p50_us / 1000, r->delivery.p99_us / 1000);
                }
            }
            fclose(f);
        }
    }
    rc = 0;
done:
    if (bench.ctx)
        zmq_ctx_term(bench.ctx);
    pt_harness_destroy(&bench.harness);
    free(bench.rss);
    return rc;
}

/*  rabbit — the Puente benchmark's workload through RabbitMQ (`make bench-compare`).

    Same shape as loadgen: 1 KiB messages, a window of unconfirmed publishes,
    a consumer that acks every message. RabbitMQ side: a quorum queue (durable,
    Raft WAL fsynced before confirm), persistent messages (delivery_mode 2),
    publisher confirms, consumer prefetch 1000 and manual acks.

      rabbit PORT N WINDOW RATE NAME    (RATE 0 = saturation)

    Prints one JSON object on stdout. BENCH_BROKER_PID (beam.smp) gives CPU and
    peak memory. Not a Puente module: a measuring tool only.
*/
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BODY_BYTES 1024
#define QUEUE "puente-bench"

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void s_pct(int64_t *v, size_t n, double out[4])
{
    memset(out, 0, 4 * sizeof out[0]);
    if (!n)
        return;
    qsort(v, n, sizeof *v, s_cmp);
    out[0] = v[(size_t)(0.50 * (double)(n - 1))] / 1000.0;
    out[1] = v[(size_t)(0.95 * (double)(n - 1))] / 1000.0;
    out[2] = v[(size_t)(0.99 * (double)(n - 1))] / 1000.0;
    out[3] = v[n - 1] / 1000.0;
}

static int64_t s_cpu_us(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * 1000000LL / sysconf(_SC_CLK_TCK);
}

static long s_hwm_kib(int pid)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    fclose(f);
    return v;
}

static int s_ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    fprintf(stderr, "rabbit: %s failed (reply type %d)\n", what, r.reply_type);
    return 0;
}

static amqp_connection_state_t s_connect(int port)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock || amqp_socket_open(sock, "127.0.0.1", port) != AMQP_STATUS_OK) {
        fprintf(stderr, "rabbit: cannot connect to 127.0.0.1:%d\n", port);
        amqp_destroy_connection(conn);
        return NULL;
    }
    if (!s_ok(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
              "login")) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, 1);
    if (!s_ok(amqp_get_rpc_reply(conn), "channel.open")) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

typedef struct {
    int port;
    size_t n;
    int64_t *deliver_ns;
    volatile size_t delivered;
    volatile int stop;
    volatile int ready;
} s_consumer_t;

static void *s_consume(void *arg)
{
    s_consumer_t *self = arg;
    amqp_connection_state_t conn = s_connect(self->port);
    if (!conn) {
        self->ready = -1;
        return NULL;
    }
    amqp_basic_qos(conn, 1, 0, 1000, 0);
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (!s_ok(amqp_get_rpc_reply(conn), "basic.consume")) {
        self->ready = -1;
        amqp_destroy_connection(conn);
        return NULL;
    }
    self->ready = 1;
    while (!self->stop && self->delivered < self->n) {
        amqp_envelope_t env;
        struct timeval tv = {0, 100000};
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            continue;
        int64_t t = s_now_ns();
        uint64_t idx = UINT64_MAX;
        if (env.message.body.len >= 8)
            memcpy(&idx, env.message.body.bytes, 8);
        if (idx < self->n && self->deliver_ns[idx] == 0) {
            self->deliver_ns[idx] = t;
            self->delivered++;
        }
        amqp_basic_ack(conn, 1, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
    }
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: rabbit PORT N WINDOW RATE NAME\n");
        return 1;
    }
    int port = atoi(argv[1]);
    size_t n = strtoul(argv[2], NULL, 10), window = strtoul(argv[3], NULL, 10);
    double rate = atof(argv[4]);
    const char *name = argv[5];
    int pid = getenv("BENCH_BROKER_PID") ? atoi(getenv("BENCH_BROKER_PID")) : 0;
    int64_t *submit_ns = calloc(n, sizeof(int64_t)), *confirm_ns = calloc(n, sizeof(int64_t));
    int64_t *deliver_ns = calloc(n, sizeof(int64_t)), *tmp = calloc(n, sizeof(int64_t));
    uint8_t body[BODY_BYTES];
    memset(body, 'x', sizeof body);
    if (!submit_ns || !confirm_ns || !deliver_ns || !tmp)
        return 1;

    amqp_connection_state_t conn = s_connect(port);
    if (!conn)
        return 1;
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(QUEUE), 0, 0);
    amqp_get_rpc_reply(conn);
    amqp_table_entry_t qtype = {amqp_cstring_bytes("x-queue-type"),
                                {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes("quorum")}}};
    amqp_table_t args = {1, &qtype};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(QUEUE), 0, 1, 0, 0, args);
    if (!s_ok(amqp_get_rpc_reply(conn), "queue.declare"))
        return 1;
    amqp_confirm_select(conn, 1);
    if (!s_ok(amqp_get_rpc_reply(conn), "confirm.select"))
        return 1;

    s_consumer_t consumer = {.port = port, .n = n, .deliver_ns = deliver_ns};
    pthread_t thread;
    pthread_create(&thread, NULL, s_consume, &consumer);
    while (consumer.ready == 0)
        usleep(1000);
    if (consumer.ready < 0)
        return 1;

    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/octet-stream");
    int64_t cpu0 = pid ? s_cpu_us(pid) : -1;
    int64_t start = s_now_ns(), interval = rate > 0 ? (int64_t)(1e9 / rate) : 0;
    int64_t deadline = start + (int64_t)120e9, last_confirm = start;
    size_t next = 0, confirmed = 0, nacked = 0;
    while (confirmed < n && s_now_ns() < deadline) {
        int64_t now = s_now_ns();
        while (next < n && next - confirmed < window &&
               (!interval || start + (int64_t)next * interval <= now)) {
            uint64_t idx = next;
            memcpy(body, &idx, 8);
            submit_ns[next] = s_now_ns();
            if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(QUEUE), 0, 0,
                                   &props, (amqp_bytes_t){sizeof body, body}) != AMQP_STATUS_OK) {
                fprintf(stderr, "rabbit: publish failed\n");
                return 1;
            }
            next++;
        }
        amqp_frame_t frame;
        struct timeval tv = {0, interval ? 500 : 100000};
        int rc = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
        if (rc != AMQP_STATUS_OK || frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        int64_t t = s_now_ns();
        uint64_t tag = 0;
        int multiple = 0;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            tag = ack->delivery_tag;
            multiple = ack->multiple;
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *nack = frame.payload.method.decoded;
            tag = nack->delivery_tag;
            multiple = nack->multiple;
            nacked++;
        } else {
            continue;
        }
        /* Delivery tags are 1-based publish sequence numbers. */
        size_t from = multiple ? 0 : (size_t)(tag - 1);
        for (size_t i = from; i < tag && i < n; i++)
            if (confirm_ns[i] == 0) {
                confirm_ns[i] = t;
                confirmed++;
            }
        last_confirm = t;
    }
    int64_t wait_until = s_now_ns() + (int64_t)30e9;
    while (consumer.delivered < confirmed && s_now_ns() < wait_until)
        usleep(2000);
    int64_t end = s_now_ns();
    int64_t cpu1 = pid ? s_cpu_us(pid) : -1;
    consumer.stop = 1;
    pthread_join(thread, NULL);
    int64_t last_deliver = start;
    for (size_t i = 0; i < n; i++)
        if (deliver_ns[i] > last_deliver)
            last_deliver = deliver_ns[i];
    double c[4], d[4];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (confirm_ns[i])
            tmp[k++] = confirm_ns[i] - submit_ns[i];
    s_pct(tmp, k, c);
    k = 0;
    for (size_t i = 0; i < n; i++)
        if (deliver_ns[i])
            tmp[k++] = deliver_ns[i] - submit_ns[i];
    s_pct(tmp, k, d);
    double ingest = confirmed / ((double)(last_confirm - start) / 1e9);
    double e2e = consumer.delivered / ((double)(last_deliver - start) / 1e9);
    printf("{\"name\": \"%s\", \"messages\": %zu, \"offered_per_s\": %.0f, \"window\": %zu, "
           "\"confirmed\": %zu, \"nacked\": %zu, \"delivered\": %zu, \"ingest_per_s\": %.1f, "
           "\"e2e_per_s\": %.1f, \"confirm_latency_us\": {\"p50\": %.1f, \"p95\": %.1f, "
           "\"p99\": %.1f, \"max\": %.1f}, \"delivery_latency_us\": {\"p50\": %.1f, \"p95\": "
           "%.1f, \"p99\": %.1f, \"max\": %.1f}, \"broker_cpu_us_per_msg\": %.1f, "
           "\"broker_cpu_cores\": %.2f, \"broker_vmhwm_kib\": %ld}\n",
           name, n, rate, window, confirmed, nacked, consumer.delivered, ingest, e2e, c[0], c[1],
           c[2], c[3], d[0], d[1], d[2], d[3],
           cpu0 >= 0 && cpu1 >= 0 && consumer.delivered ? (double)(cpu1 - cpu0) / consumer.delivered
                                                        : 0,
           cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / ((double)(end - start) / 1e3) : 0,
           pid ? s_hwm_kib(pid) : -1);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(QUEUE), 0, 0);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(submit_ns);
    free(confirm_ns);
    free(deliver_ns);
    free(tmp);
    return confirmed == n && consumer.delivered == n ? 0 : 2;
}

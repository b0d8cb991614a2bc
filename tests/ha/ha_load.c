/*  ha_load — the SDK side of `make ha-test` (tests/ha/ha_test.sh, issue 9).

    Three senders (MX-DIF, HN-DINAF, SV-CONNA) stream referral requests through
    the SDK's durable outbox to two recipients (GT-PGN, US-ORR), which receive
    with a durable inbox and acknowledge each message after "storing" it. Every
    client is given the same list of broker endpoints and fails over by itself.
    Each sender sends PER_SENDER messages at RATE per second, alternating between
    the recipients; meanwhile the script kills the PostgreSQL primary and then a
    broker. The senders then wait until their outboxes hold a receipt for every
    message, and the recipients until each receipted message was handed over.

    usage: ha_load ENDPOINTS KEYS_DIR STATE_DIR [PER_SENDER [RATE [RECIPIENT_ENDPOINTS]]]
    RECIPIENT_ENDPOINTS (default ENDPOINTS) is the recipients' list: given in
    another order, the recipients start on another broker than the senders.
    Needs agreements MX-DIF<->GT-PGN, HN-DINAF<->US-ORR, SV-CONNA<->GT-PGN and
    SV-CONNA<->US-ORR covering referral.request.

    Prints progress on stderr ("sent N" once the stream is complete) and, on
    stdout, one line:
      sent=S receipted=R rejected=J delivered=D app_duplicates=A lost=L
    Exit 0 when every message was receipted and handed to its recipient's
    application exactly once (lost 0, duplicates 0, rejected 0), 1 otherwise,
    2 on usage or setup errors. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "puente.h"
#include "pt_crypto.h"
#include "pt_json.h"
#include "pt_types.h"

#define N_SENDERS 3
#define N_RECIPIENTS 2
#define MAX_PER_SENDER 5000
#define DEADLINE_MS (10 * 60 * 1000) /* generous: two failovers on a shared machine */

static const char *const s_senders[N_SENDERS] = {"MX-DIF", "HN-DINAF", "SV-CONNA"};
static const char *const s_recipients[N_RECIPIENTS] = {"GT-PGN", "US-ORR"};
/* Which recipients a sender may reach (its agreements): MX-DIF only GT-PGN,
   HN-DINAF only US-ORR, SV-CONNA both. */
static const int s_reaches[N_SENDERS][N_RECIPIENTS] = {{1, 0}, {0, 1}, {1, 1}};

static const char *s_endpoints;
static const char *s_rx_endpoints;
static const char *s_keys;
static const char *s_state_dir;
static int s_per_sender = 300;
static int s_rate = 25;
static uint8_t *s_body;
static size_t s_body_len;

typedef struct {
    int index;
    pt_outbox_t *outbox;
    uint8_t ids[MAX_PER_SENDER][PT_UUID_BYTES];
    int to[MAX_PER_SENDER]; /* recipient index */
    int n;
    int failed;
} s_sender_t;

typedef struct {
    int index;
    pthread_mutex_t lock;
    uint8_t (*ids)[PT_UUID_BYTES]; /* handed to the application, in order */
    size_t n, cap;
    size_t app_duplicates;
    int connected; /* 1 up, -1 failed */
    volatile int stop;
} s_recipient_t;

static s_sender_t s_tx[N_SENDERS];
static s_recipient_t s_rx[N_RECIPIENTS];

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint8_t *s_example_body(size_t *len)
{
    const pt_type_t *type = pt_types_find("referral.request");
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (!type || pt_json_to_message(type->descriptor, type->example_json,
                                    strlen(type->example_json), &msg, err, sizeof err) != 0)
        return NULL;
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out)
        protobuf_c_message_pack(msg, out);
    protobuf_c_message_free_unpacked(msg, NULL);
    return out;
}

static void *s_recipient(void *arg)
{
    s_recipient_t *self = arg;
    char err[PUENTE_ERR_BYTES], inbox[512];
    snprintf(inbox, sizeof inbox, "%s/inbox-%s.db", s_state_dir, s_recipients[self->index]);
    pt_client_opts_t o = {.endpoint = s_rx_endpoints,
                          .keys_dir = s_keys,
                          .org_id = s_recipients[self->index],
                          .receive = 1,
                          .timeout_ms = 15000,
                          .inbox_path = inbox};
    pt_client_t *c = NULL;
    int64_t until = pt_now_ms() + 60000;
    while (!c && pt_now_ms() < until) {
        c = pt_client_new(&o, err, sizeof err);
        if (!c)
            s_sleep_ms(500);
    }
    pthread_mutex_lock(&self->lock);
    self->connected = c ? 1 : -1;
    pthread_mutex_unlock(&self->lock);
    if (!c) {
        fprintf(stderr, "ha_load: recipient %s: %s\n", s_recipients[self->index], err);
        return NULL;
    }
    while (!self->stop) {
        pt_message_t *m = NULL;
        pt_client_result_t rc = pt_client_recv(c, 200, &m);
        if (rc != PT_CLIENT_OK)
            continue;
        pthread_mutex_lock(&self->lock);
        int seen = 0;
        for (size_t i = 0; i < self->n && !seen; i++)
            seen = memcmp(self->ids[i], pt_message_id(m), PT_UUID_BYTES) == 0;
        if (seen) {
            self->app_duplicates++;
        } else {
            if (self->n == self->cap) {
                size_t cap = self->cap ? self->cap * 2 : 1024;
                void *grown = realloc(self->ids, cap * PT_UUID_BYTES);
                if (grown) {
                    self->ids = grown;
                    self->cap = cap;
                }
            }
            if (self->n < self->cap)
                memcpy(self->ids[self->n++], pt_message_id(m), PT_UUID_BYTES);
        }
        pthread_mutex_unlock(&self->lock);
        /* An ack without an answer is fine: the redelivery is dropped and re-acked. */
        pt_client_ack(c, pt_message_id(m));
        pt_message_destroy(&m);
    }
    char at[128];
    snprintf(at, sizeof at, "%s", pt_client_endpoint(c));
    fprintf(stderr, "ha_load: recipient %s ends on %s after %lu failovers\n",
            s_recipients[self->index], at, pt_client_failovers(c));
    pt_client_destroy(&c);
    return NULL;
}

/* How many times recipient r's application got id. */
static int s_received(int r, const uint8_t *id)
{
    int found = 0;
    pthread_mutex_lock(&s_rx[r].lock);
    for (size_t i = 0; i < s_rx[r].n; i++)
        found += memcmp(s_rx[r].ids[i], id, PT_UUID_BYTES) == 0;
    pthread_mutex_unlock(&s_rx[r].lock);
    return found;
}

static void *s_sender(void *arg)
{
    s_sender_t *self = arg;
    char err[PUENTE_ERR_BYTES], state[512];
    snprintf(state, sizeof state, "%s/outbox-%s.db", s_state_dir, s_senders[self->index]);
    pt_outbox_opts_t oo = {.client = {.endpoint = s_endpoints,
                                      .keys_dir = s_keys,
                                      .org_id = s_senders[self->index],
                                      .timeout_ms = 5000},
                           .state_path = state};
    self->outbox = pt_outbox_new(&oo, err, sizeof err);
    if (!self->outbox || pt_outbox_wait_directory(self->outbox, 60000) != PT_CLIENT_OK) {
        fprintf(stderr, "ha_load: sender %s: %s\n", s_senders[self->index],
                self->outbox ? pt_outbox_error(self->outbox) : err);
        self->failed = 1;
        return NULL;
    }
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    char token[64];
    snprintf(token, sizeof token, "HA-%s-%ld", s_senders[self->index], (long)getpid());
    long gap_ms = s_rate > 0 ? 1000 / s_rate : 0;
    int turn = 0;
    for (int i = 0; i < s_per_sender; i++) {
        int r;
        do
            r = turn++ % N_RECIPIENTS;
        while (!s_reaches[self->index][r]);
        const char *to[1] = {s_recipients[r]};
        pt_send_t msg = {.message_type = "referral.request",
                         .recipients = to,
                         .n_recipients = 1,
                         .case_token = token,
                         .consent = &consent,
                         .body = s_body,
                         .body_len = s_body_len};
        if (pt_outbox_send(self->outbox, &msg, self->ids[i]) != PT_CLIENT_OK) {
            fprintf(stderr, "ha_load: sender %s: send %d: %s\n", s_senders[self->index], i,
                    pt_outbox_error(self->outbox));
            self->failed = 1;
            return NULL;
        }
        self->to[i] = r;
        self->n = i + 1;
        if (gap_ms)
            s_sleep_ms(gap_ms);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 7) {
        fprintf(stderr, "usage: ha_load ENDPOINTS KEYS_DIR STATE_DIR [PER_SENDER [RATE "
                        "[RECIPIENT_ENDPOINTS]]]\n");
        return 2;
    }
    s_endpoints = argv[1];
    s_rx_endpoints = argc > 6 ? argv[6] : argv[1];
    s_keys = argv[2];
    s_state_dir = argv[3];
    if (argc > 4)
        s_per_sender = atoi(argv[4]);
    if (argc > 5)
        s_rate = atoi(argv[5]);
    if (s_per_sender < 1 || s_per_sender > MAX_PER_SENDER || s_rate < 0) {
        fprintf(stderr, "ha_load: PER_SENDER must be 1..%d and RATE >= 0\n", MAX_PER_SENDER);
        return 2;
    }
    s_body = s_example_body(&s_body_len);
    if (!s_body) {
        fprintf(stderr, "ha_load: no example referral.request body\n");
        return 2;
    }
    pthread_t rx[N_RECIPIENTS], tx[N_SENDERS];
    for (int r = 0; r < N_RECIPIENTS; r++) {
        s_rx[r].index = r;
        pthread_mutex_init(&s_rx[r].lock, NULL);
        if (pthread_create(&rx[r], NULL, s_recipient, &s_rx[r]) != 0)
            return 2;
    }
    for (int s = 0; s < N_SENDERS; s++) {
        s_tx[s].index = s;
        if (pthread_create(&tx[s], NULL, s_sender, &s_tx[s]) != 0)
            return 2;
    }
    int setup_failed = 0;
    for (int s = 0; s < N_SENDERS; s++) {
        pthread_join(tx[s], NULL);
        setup_failed |= s_tx[s].failed;
    }
    fprintf(stderr, "ha_load: sent %d\n", N_SENDERS * s_per_sender);

    /* Every message receipted (or finally rejected), then every receipted one received. */
    int64_t until = pt_now_ms() + DEADLINE_MS;
    for (int s = 0; s < N_SENDERS; s++)
        if (s_tx[s].outbox &&
            pt_outbox_flush(s_tx[s].outbox, (int)(until - pt_now_ms())) != PT_CLIENT_OK)
            fprintf(stderr, "ha_load: %s: outbox not flushed before the deadline (%ld queued)\n",
                    s_senders[s], pt_outbox_pending(s_tx[s].outbox));
    fprintf(stderr, "ha_load: outboxes flushed\n");
    long sent = 0, receipted = 0, rejected = 0, delivered = 0, lost = 0, twice = 0;
    for (;;) {
        sent = receipted = rejected = delivered = lost = twice = 0;
        for (int s = 0; s < N_SENDERS; s++)
            for (int i = 0; i < s_tx[s].n; i++) {
                sent++;
                pt_outbox_state_t st = pt_outbox_status(s_tx[s].outbox, s_tx[s].ids[i], NULL, NULL);
                if (st == PT_OUTBOX_REJECTED)
                    rejected++;
                if (st != PT_OUTBOX_SUBMITTED)
                    continue;
                receipted++;
                int got = s_received(s_tx[s].to[i], s_tx[s].ids[i]);
                delivered += got > 0;
                lost += got == 0;
                twice += got > 1;
            }
        if (lost == 0 || pt_now_ms() > until)
            break;
        s_sleep_ms(200);
    }
    /* Whatever the brokers offer again now (acks lost in a failover) must not reach
       the applications. */
    s_sleep_ms(3000);
    size_t app_duplicates = 0;
    for (int r = 0; r < N_RECIPIENTS; r++) {
        s_rx[r].stop = 1;
        pthread_join(rx[r], NULL);
        app_duplicates += s_rx[r].app_duplicates;
    }
    for (int s = 0; s < N_SENDERS; s++) {
        if (s_tx[s].outbox) {
            char at[128];
            unsigned long moves = pt_outbox_endpoint(s_tx[s].outbox, at, sizeof at);
            fprintf(stderr, "ha_load: sender %s ends on %s after %lu failovers\n", s_senders[s],
                    at, moves);
        }
        pt_outbox_destroy(&s_tx[s].outbox);
    }
    for (int r = 0; r < N_RECIPIENTS; r++)
        free(s_rx[r].ids);
    free(s_body);
    printf("sent=%ld receipted=%ld rejected=%ld delivered=%ld app_duplicates=%zu lost=%ld\n", sent,
           receipted, rejected, delivered, app_duplicates + (size_t)twice, lost);
    int ok = !setup_failed && sent == (long)N_SENDERS * s_per_sender && receipted == sent &&
             lost == 0 && twice == 0 && app_duplicates == 0;
    return ok ? 0 : 1;
}

/*  pt_outbox — the durable outbox: seal now, commit to SQLite, submit in the
    background in queue order. See puente.h ("Durable outbox"). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_decode.h"
#include "pt_endpoints.h"
#include "pt_sdk_internal.h"

#define S_BACKOFF_MIN_MS 500
#define S_BACKOFF_MAX_MS 30000
/* After a retryable reject (puente_reject_retryable) the broker is up and answers
   cheaply: retry sooner, so that the queue resumes within seconds once its
   database is back, its rate allows or the recipient's queue drains. */
#define S_BACKOFF_ANSWERED_MAX_MS 5000
#define S_DEFAULT_ATTEMPT_MS 5000
#define S_DIRECTORY_REFRESH_MS (10 * 60 * 1000) /* refetch keys this often while connected */
#define S_MAX_FRAME (1u << 20) /* the broker's default; its Welcome may say more */

/* Errors are per calling thread: any thread may use the outbox at any time. */
static _Thread_local char s_error[PUENTE_ERR_BYTES];

struct _pt_outbox_t {
    char *endpoint;
    char *keys_dir;
    char *client_name;
    char *state_path;
    char org[PT_ORG_ID_MAX + 1];
    int attempt_ms;
    pt_keyset_t *me;
    pt_keyset_t *broker;
    pthread_mutex_t lock;     /* guards everything below and the caller-side db */
    pthread_cond_t changed;   /* a row left the queue, or the directory arrived */
    pthread_cond_t work;      /* something was queued, or stop */
    pt_outbox_db_t *db;       /* callers' connection; the worker has its own */
    pt_keyset_t **keys;       /* recipients' keys from the cached directory */
    size_t n_keys;
    Puente__V1__DirectoryEntries *entries;
    uint32_t max_frame_bytes;
    char current_endpoint[PT_ENDPOINT_MAX_LEN + 1]; /* the worker's connection, "" = none yet */
    unsigned long failovers;  /* moves of the worker's clients, for pt_outbox_endpoint */
    int stop;
    int thread_started;
    pthread_t thread;
};

static void s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_error, sizeof s_error, fmt, ap);
    va_end(ap);
}

const char *pt_outbox_error(const pt_outbox_t *outbox)
{
    (void) outbox;
    return s_error;
}

/* --- The directory cache --------------------------------------------------- */

/* Verifies signed directory bytes with the broker's key and makes them the cache.
   Called with the lock held. 0 or -1. */
static int s_cache_install(pt_outbox_t *self, const uint8_t *raw, size_t raw_len,
                           const uint8_t *sig, size_t sig_len)
{
    Puente__V1__DirectoryReply reply = PUENTE__V1__DIRECTORY_REPLY__INIT;
    reply.entries = (ProtobufCBinaryData) { raw_len, (uint8_t *) raw };
    reply.signature = (ProtobufCBinaryData) { sig_len, (uint8_t *) sig };
    Puente__V1__DirectoryEntries *entries = NULL;
    if (puente_directory_verify(&reply, pt_keyset_sign(self->broker), &entries) != 0)
        return -1;
    pt_keyset_t **keys = calloc(entries->n_orgs ? entries->n_orgs : 1, sizeof *keys);
    if (!keys) {
        puente__v1__directory_entries__free_unpacked(entries, NULL);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < entries->n_orgs; i++) {
        const Puente__V1__OrgKeys *o = entries->orgs[i];
        if (!o->enabled || pt_sdk_org_revoked(o, pt_now_ms()))   /* nothing sealed to revoked keys */
            continue;
        keys[n] = pt_keyset_from_public(o->org_id, o->sign_public.data, o->seal_public.data,
                                        o->curve_public.data);
        if (keys[n])
            n++;
    }
    for (size_t i = 0; i < self->n_keys; i++)
        pt_keyset_destroy(&self->keys[i]);
    free(self->keys);
    if (self->entries)
        puente__v1__directory_entries__free_unpacked(self->entries, NULL);
    self->keys = keys;
    self->n_keys = n;
    self->entries = entries;
    return 0;
}

static const pt_keyset_t *s_cache_find(const pt_outbox_t *self, const char *org)
{
    for (size_t i = 0; i < self->n_keys; i++)
        if (strcmp(pt_keyset_org(self->keys[i]), org) == 0)
            return self->keys[i];
    return NULL;
}

/* --- The background thread ------------------------------------------------- */

static int64_t s_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Waits on cond until ms passed or stop. Called with the lock held. */
static void s_wait_ms(pt_outbox_t *self, pthread_cond_t *cond, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, &self->lock, &ts);
}

static int s_stopping(pt_outbox_t *self)
{
    pthread_mutex_lock(&self->lock);
    int stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static void s_pause(pt_outbox_t *self, int64_t ms)
{
    pthread_mutex_lock(&self->lock);
    if (!self->stop)
        s_wait_ms(self, &self->work, ms);
    pthread_mutex_unlock(&self->lock);
}

/* Fetches the whole directory and caches it (file, then memory). */
static void s_refresh_directory(pt_outbox_t *self, pt_client_t *client, pt_outbox_db_t *db)
{
    if (pt_client_directory_refresh(client, NULL, 0) != PT_CLIENT_OK)
        return;
    size_t raw_len = 0, sig_len = 0;
    const uint8_t *sig = NULL;
    const uint8_t *raw = pt_sdk_directory_signed(client, &raw_len, &sig, &sig_len);
    if (!raw || pt_outbox_db_directory_save(db, raw, raw_len, sig, sig_len) != 0)
        return;
    pthread_mutex_lock(&self->lock);
    if (s_cache_install(self, raw, raw_len, sig, sig_len) == 0) {
        uint32_t max = pt_sdk_max_frame(client);
        if (max)
            self->max_frame_bytes = max;
    }
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}

static void s_notify(pt_outbox_t *self)
{
    pthread_mutex_lock(&self->lock);
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}

/* Publishes where the worker's client is connected (pt_outbox_endpoint). The
   worker keeps one client for its whole life, so its count is the outbox's. */
static void s_track_endpoint(pt_outbox_t *self, const pt_client_t *client)
{
    pthread_mutex_lock(&self->lock);
    snprintf(self->current_endpoint, sizeof self->current_endpoint, "%s",
             pt_client_endpoint(client));
    self->failovers = pt_client_failovers(client);
    pthread_mutex_unlock(&self->lock);
}

static void *s_worker(void *arg)
{
    pt_outbox_t *self = arg;
    char err[PUENTE_ERR_BYTES];
    pt_outbox_db_t *db = pt_outbox_db_open(self->state_path, err, sizeof err);
    pt_client_t *client = NULL;
    int64_t backoff = S_BACKOFF_MIN_MS;
    int64_t directory_at = 0;
    pt_client_opts_t copts = { .endpoint = self->endpoint, .keys_dir = self->keys_dir,
                               .org_id = self->org, .receive = 0,
                               .timeout_ms = self->attempt_ms,
                               .client_name = self->client_name };
    while (db && !s_stopping(self)) {
        if (!client) {
            client = pt_client_new(&copts, err, sizeof err);
            if (!client) {
                s_pause(self, backoff);
                backoff = s_min64(backoff * 2, S_BACKOFF_MAX_MS);
                continue;
            }
            directory_at = 0;
            s_track_endpoint(self, client);
        }
        if (pt_now_ms() - directory_at > S_DIRECTORY_REFRESH_MS) {
            directory_at = pt_now_ms();
            s_refresh_directory(self, client, db);
        }
        int64_t seq = 0;
        uint8_t id[PT_UUID_BYTES];
        uint8_t *env = NULL;
        size_t env_len = 0;
        int found = pt_outbox_db_next(db, &seq, id, &env, &env_len);
        if (found <= 0) {
            /* Empty (or the file is busy): sleep until a send wakes us. */
            pthread_mutex_lock(&self->lock);
            if (!self->stop)
                s_wait_ms(self, &self->work, found == 0 ? 1000 : backoff);
            pthread_mutex_unlock(&self->lock);
            continue;
        }
        pt_receipt_info_t receipt;
        pt_reject_info_t rej;
        /* A broker lost during the attempt: the client moves to the next endpoint and
           sends the same envelope there (same message id: one effect, maybe a
           duplicate receipt); an attempt that still fails is retried below. */
        pt_client_result_t rc =
            pt_sdk_submit(client, env, env_len, pt_now_ms() + self->attempt_ms, &receipt, &rej);
        free(env);
        s_track_endpoint(self, client);
        int retry = 0;
        int64_t backoff_max = S_BACKOFF_MAX_MS;
        if (rc == PT_CLIENT_OK) {
            if (memcmp(receipt.message_id, id, PT_UUID_BYTES) != 0
                || pt_outbox_db_submitted(db, seq, &receipt) != 0)
                retry = 1;
        }
        else if (rc == PT_CLIENT_REJECTED && puente_reject_retryable(rej.code)) {
            retry = 1; /* RETRY_LATER, RATE_LIMITED, QUOTA_EXCEEDED: nothing was stored */
            backoff_max = S_BACKOFF_ANSWERED_MAX_MS;
        }
        else if (rc == PT_CLIENT_REJECTED) {
            if (pt_outbox_db_rejected(db, seq, rej.code, rej.reason) != 0)
                retry = 1;
        }
        else if (rc == PT_CLIENT_INVALID) {
            /* Our own row does not decode: it can never be sent; do not block the rest. */
            if (pt_outbox_db_rejected(db, seq, PUENTE__V1__REJECT_CODE__REJECT_MALFORMED,
                                      "local: the queued envelope is unreadable")
                != 0)
                retry = 1;
        }
        else
            retry = 1; /* unreachable, a receipt that did not verify */
        if (retry) {
            backoff = s_min64(backoff, backoff_max);
            s_pause(self, backoff);
            backoff = s_min64(backoff * 2, backoff_max);
        }
        else {
            backoff = S_BACKOFF_MIN_MS;
            s_notify(self);
        }
    }
    pt_client_destroy(&client);
    pt_outbox_db_close(&db);
    return NULL;
}

/* --- Public API ------------------------------------------------------------- */

pt_outbox_t *pt_outbox_new(const pt_outbox_opts_t *opts, char *err, size_t err_len)
{
    char reason[PUENTE_ERR_BYTES] = "out of memory";
    pt_outbox_t *self = NULL;
    uint8_t *raw = NULL, *sig = NULL;
    if (!opts || !opts->client.org_id || !pt_org_id_valid(opts->client.org_id)
        || !opts->state_path || !*opts->state_path) {
        snprintf(reason, sizeof reason, "an organisation id and a state file are required");
        goto error;
    }
    self = calloc(1, sizeof *self);
    if (!self)
        goto error;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->changed, NULL);
    pthread_cond_init(&self->work, NULL);
    snprintf(self->org, sizeof self->org, "%s", opts->client.org_id);
    self->endpoint = strdup(opts->client.endpoint ? opts->client.endpoint : PUENTE_DEFAULT_BROKER);
    self->keys_dir = strdup(opts->client.keys_dir ? opts->client.keys_dir : PUENTE_DEFAULT_KEYS);
    self->client_name =
        strdup(opts->client.client_name ? opts->client.client_name : "puente-sdk-outbox/0.1");
    self->state_path = strdup(opts->state_path);
    self->attempt_ms = opts->client.timeout_ms > 0 ? opts->client.timeout_ms : S_DEFAULT_ATTEMPT_MS;
    self->max_frame_bytes = S_MAX_FRAME;
    if (!self->endpoint || !self->keys_dir || !self->client_name || !self->state_path)
        goto error;
    /* A bad list would make the worker fail for ever: refuse it here. */
    if (pt_endpoints_parse(self->endpoint, NULL, NULL, reason, sizeof reason) != 0)
        goto error;
    char kerr[200] = "";
    self->me = pt_keyset_load(self->keys_dir, self->org, 1, kerr, sizeof kerr);
    if (!self->me) {
        snprintf(reason, sizeof reason, "cannot load keys of %s from %s: %s", self->org,
                 self->keys_dir, kerr[0] ? kerr : "unreadable");
        goto error;
    }
    self->broker = pt_keyset_load(self->keys_dir, "broker", 0, kerr, sizeof kerr);
    if (!self->broker) {
        snprintf(reason, sizeof reason, "cannot load the broker's public keys from %s/broker: %s",
                 self->keys_dir, kerr[0] ? kerr : "unreadable");
        goto error;
    }
    self->db = pt_outbox_db_open(self->state_path, reason, sizeof reason);
    if (!self->db)
        goto error;
    size_t raw_len = 0, sig_len = 0;
    int have = pt_outbox_db_directory_load(self->db, &raw, &raw_len, &sig, &sig_len);
    if (have < 0) {
        snprintf(reason, sizeof reason, "cannot read the outbox state file %s: %s",
                 self->state_path, pt_outbox_db_error(self->db));
        goto error;
    }
    if (have == 1 && s_cache_install(self, raw, raw_len, sig, sig_len) != 0) {
        snprintf(reason, sizeof reason,
                 "the directory cached in %s does not verify with %s/broker/sign.pub",
                 self->state_path, self->keys_dir);
        goto error;
    }
    free(raw);
    free(sig);
    raw = sig = NULL;
    if (pthread_create(&self->thread, NULL, s_worker, self) != 0) {
        snprintf(reason, sizeof reason, "cannot start the outbox thread");
        goto error;
    }
    self->thread_started = 1;
    if (err && err_len)
        err[0] = '\0';
    return self;
error:
    free(raw);
    free(sig);
    if (err && err_len)
        snprintf(err, err_len, "%s", reason);
    pt_outbox_destroy(&self);
    return NULL;
}

void pt_outbox_destroy(pt_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_outbox_t *self = *self_p;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stop = 1;
        pthread_cond_broadcast(&self->work);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    for (size_t i = 0; i < self->n_keys; i++)
        pt_keyset_destroy(&self->keys[i]);
    free(self->keys);
    if (self->entries)
        puente__v1__directory_entries__free_unpacked(self->entries, NULL);
    pt_outbox_db_close(&self->db);
    pt_keyset_destroy(&self->me);
    pt_keyset_destroy(&self->broker);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self->endpoint);
    free(self->keys_dir);
    free(self->client_name);
    free(self->state_path);
    free(self);
    *self_p = NULL;
}

pt_client_result_t pt_outbox_send(pt_outbox_t *outbox, const pt_send_t *msg,
                                  uint8_t message_id[PT_UUID_BYTES])
{
    s_error[0] = '\0';
    if (!outbox || !msg) {
        s_fail("no outbox or no message");
        return PT_CLIENT_INVALID;
    }
    pt_outbox_t *self = outbox;
    pt_client_result_t rc = PT_CLIENT_INVALID;
    const pt_keyset_t **keys = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    pthread_mutex_lock(&self->lock);
    if (!msg->recipients || msg->n_recipients == 0 || msg->n_recipients > 64) {
        s_fail("the outbox needs 1 to 64 explicit recipients (a withdrawal's fan-out needs the "
               "broker: use pt_client_send)");
        goto error;
    }
    if (!self->entries) {
        s_fail("no directory yet: the outbox must reach the broker once to learn the "
               "recipients' keys (pt_outbox_wait_directory)");
        goto error;
    }
    keys = calloc(msg->n_recipients, sizeof *keys);
    if (!keys) {
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    for (size_t i = 0; i < msg->n_recipients; i++) {
        const char *to = msg->recipients[i];
        if (!to || !pt_org_id_valid(to)) {
            s_fail("invalid recipient id %s", to ? to : "(null)");
            goto error;
        }
        keys[i] = s_cache_find(self, to);
        if (!keys[i]) {
            s_fail("recipient %s was not in the broker's directory at the last fetch (unknown, "
                   "disabled, its keys revoked, or registered since)",
                   to);
            goto error;
        }
    }
    uint8_t id[PT_UUID_BYTES], correlation[PT_UUID_BYTES];
    rc = pt_sdk_seal(self->org, self->me, msg, keys, self->entries, self->max_frame_bytes, &env,
                     &env_len, id, correlation, s_error, sizeof s_error);
    if (rc != PT_CLIENT_OK)
        goto error;
    if (pt_outbox_db_enqueue(self->db, id, env, env_len, NULL) != 0) {
        s_fail("cannot write the outbox state file %s: %s", self->state_path,
               pt_outbox_db_error(self->db));
        rc = PT_CLIENT_INTERNAL;
        goto error;
    }
    if (message_id)
        memcpy(message_id, id, PT_UUID_BYTES);
    pthread_cond_broadcast(&self->work);
    rc = PT_CLIENT_OK;
error:
    pthread_mutex_unlock(&self->lock);
    free(env);
    free(keys);
    return rc;
}

pt_outbox_state_t pt_outbox_status(pt_outbox_t *outbox, const uint8_t *message_id,
                                   pt_receipt_info_t *receipt, pt_reject_info_t *rej)
{
    if (!outbox || !message_id)
        return PT_OUTBOX_UNKNOWN;
    pthread_mutex_lock(&outbox->lock);
    int state = pt_outbox_db_status(outbox->db, message_id, receipt, rej);
    if (state < 0)
        s_fail("cannot read the outbox state file: %s", pt_outbox_db_error(outbox->db));
    pthread_mutex_unlock(&outbox->lock);
    return state < 0 ? PT_OUTBOX_UNKNOWN : (pt_outbox_state_t) state;
}

long pt_outbox_pending(pt_outbox_t *outbox)
{
    if (!outbox)
        return -1;
    pthread_mutex_lock(&outbox->lock);
    long n = pt_outbox_db_pending(outbox->db);
    pthread_mutex_unlock(&outbox->lock);
    return n;
}

/* Waits (lock held) until ready(self) or the deadline. */
static pt_client_result_t s_wait_until(pt_outbox_t *self, int (*ready)(pt_outbox_t *),
                                       int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : pt_now_ms() + timeout_ms;
    pthread_mutex_lock(&self->lock);
    pt_client_result_t rc = PT_CLIENT_TIMEOUT;
    for (;;) {
        if (ready(self)) {
            rc = PT_CLIENT_OK;
            break;
        }
        int64_t now = pt_now_ms();
        if (now >= deadline)
            break;
        /* Bounded waits: a row another connection changed wakes nobody. */
        s_wait_ms(self, &self->changed, s_min64(deadline - now, 200));
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static int s_empty(pt_outbox_t *self)
{
    return pt_outbox_db_pending(self->db) == 0;
}

static int s_has_directory(pt_outbox_t *self)
{
    return self->entries != NULL;
}

pt_client_result_t pt_outbox_flush(pt_outbox_t *outbox, int timeout_ms)
{
    if (!outbox)
        return PT_CLIENT_INVALID;
    return s_wait_until(outbox, s_empty, timeout_ms);
}

unsigned long pt_outbox_endpoint(pt_outbox_t *outbox, char *out, size_t out_len)
{
    if (!outbox) {
        if (out && out_len)
            out[0] = '\0';
        return 0;
    }
    pthread_mutex_lock(&outbox->lock);
    if (out && out_len)
        snprintf(out, out_len, "%s", outbox->current_endpoint);
    unsigned long failovers = outbox->failovers;
    pthread_mutex_unlock(&outbox->lock);
    return failovers;
}

pt_client_result_t pt_outbox_wait_directory(pt_outbox_t *outbox, int timeout_ms)
{
    if (!outbox)
        return PT_CLIENT_INVALID;
    return s_wait_until(outbox, s_has_directory, timeout_ms);
}

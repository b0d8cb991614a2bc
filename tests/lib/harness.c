/*  harness — see harness.h. Test code: failures print why and return errors. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "pt_envelope.h"
#include "pt_json.h"

const char *const pt_harness_orgs[5] = {"MX-DIF", "GT-PGN", "HN-DINAF", "SV-CONNA", "US-ORR"};

/* Registered service types (Puente service-type codes: Primero's lookup-service-type as mapped by
   adapters/primero/codelists/v1/service_type.csv) of the demo
   organisations; every national authority is its country's tracing focal point.
   HN-DINAF deliberately does not register education (itest_lifecycle). The same
   lists are in deploy/run.sh. */
const char *const pt_harness_services[5] = {
    "child_protection,safehouse,psychosocial,legal_assistance,health,family_mediation,"
    "family_reunification,education,tracing_focal_point",
    "child_protection,psychosocial,legal_assistance,health,family_mediation,"
    "family_reunification,education,tracing_focal_point",
    "child_protection,safehouse,psychosocial,legal_assistance,health,"
    "family_reunification,tracing_focal_point",
    "child_protection,psychosocial,legal_assistance,health,family_reunification,"
    "tracing_focal_point",
    "safehouse,health,psychosocial,legal_assistance,education,"
    "family_reunification,tracing_focal_point"};

struct _pt_harness_t {
    char dir[512];
    char keys[600];
    char dbname[64];
    char conninfo[1024];
    char admin_conninfo[1024];
    /* Broker 0 is the one of pt_harness_broker_start; the others (issue 9) share
       its database and keys (pt_harness_broker_start_at). */
    char endpoint[PT_HARNESS_BROKERS][64];
    pid_t broker[PT_HARNESS_BROKERS];
    void *zmq;
};

struct _pt_raw_t {
    void *socket;
};

static int s_free_port(void)
{
    for (int i = 0; i < 100; i++) {
        int port = 30000 + (int)((unsigned)rand() % 20000);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null", port);
        if (system(cmd) != 0)
            return port;
    }
    return -1;
}

static int s_exec_admin(pt_harness_t *self, const char *sql)
{
    PGconn *conn = PQconnectdb(self->admin_conninfo);
    int rc = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
    } else {
        fprintf(stderr, "harness: cannot connect: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return rc;
}

pt_harness_t *pt_harness_new(const char *name)
{
    const char *base = getenv("PUENTE_TEST_DB");
    const char *tmp = getenv("PUENTE_TEST_TMP");
    if (!base) {
        fprintf(stderr, "harness: PUENTE_TEST_DB is not set: run through `make test`\n");
        return NULL;
    }
    srand((unsigned)(time(NULL) ^ getpid()));
    pt_harness_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->dir, sizeof self->dir, "%s/%s.XXXXXX", tmp ? tmp : "/tmp", name);
    if (!mkdtemp(self->dir)) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        free(self);
        return NULL;
    }
    snprintf(self->keys, sizeof self->keys, "%s/keys", self->dir);
    snprintf(self->dbname, sizeof self->dbname, "it_%s_%d", name, (int)getpid());
    for (char *p = self->dbname; *p; p++)
        if (*p == '-')
            *p = '_';
    snprintf(self->admin_conninfo, sizeof self->admin_conninfo, "%s", base);
    snprintf(self->conninfo, sizeof self->conninfo, "%s dbname=%s", base, self->dbname);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", self->dbname);
    if (s_exec_admin(self, sql) != 0)
        goto error;
    mkdir(self->keys, 0700);
    const char *ids[] = {"broker", "operator", "MX-DIF", "GT-PGN", "HN-DINAF", "SV-CONNA",
                         "US-ORR", "ZZ-ROGUE"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        pt_keyset_t *keys = pt_keyset_generate(ids[i]);
        int rc = keys ? pt_keyset_save(keys, self->keys) : -1;
        pt_keyset_destroy(&keys);
        if (rc != 0) {
            fprintf(stderr, "harness: cannot create keys for %s\n", ids[i]);
            goto error;
        }
    }
    int port = s_free_port();
    snprintf(self->endpoint[0], sizeof self->endpoint[0], "tcp://127.0.0.1:%d", port);
    self->zmq = zmq_ctx_new();
    return self;
error:
    pt_harness_destroy(&self);
    return NULL;
}

static int s_broker_start_once(pt_harness_t *self, int index, int named);

static void s_broker_log(const pt_harness_t *self, int index, char *out, size_t cap)
{
    if (index == 0)
        snprintf(out, cap, "%s/broker.log", self->dir);
    else
        snprintf(out, cap, "%s/broker%d.log", self->dir, index);
}

/* Random free ports can be taken between the check and the broker's bind (another
   test's process, the PostgreSQL cluster): on "Address already in use" the broker
   gets a new port, up to three times. Clients must be created after this returns. */
static int s_broker_start(pt_harness_t *self, int index, int named)
{
    if (!self->endpoint[index][0])
        snprintf(self->endpoint[index], sizeof self->endpoint[index], "tcp://127.0.0.1:%d",
                 s_free_port());
    for (int attempt = 0;; attempt++) {
        char log[600], cmd[800];
        s_broker_log(self, index, log, sizeof log);
        int rc = s_broker_start_once(self, index, named);
        if (rc == 0 || attempt == 2)
            return rc;
        snprintf(cmd, sizeof cmd, "tail -n 5 '%s' | grep -q 'Address already in use'", log);
        if (system(cmd) != 0)
            return rc;
        snprintf(self->endpoint[index], sizeof self->endpoint[index], "tcp://127.0.0.1:%d",
                 s_free_port());
        fprintf(stderr, "harness: port taken, retrying broker %d on %s\n", index,
                self->endpoint[index]);
    }
}

int pt_harness_broker_start(pt_harness_t *self)
{
    return s_broker_start(self, 0, 0);
}

static int s_broker_start_once(pt_harness_t *self, int index, int named)
{
    const char *bin = getenv("PUENTE_BROKER_BIN");
    const char *sql = getenv("PUENTE_SQL_DIR");
    char log[600], instance[32];
    s_broker_log(self, index, log, sizeof log);
    snprintf(instance, sizeof instance, "broker%d", index);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        if (named)
            execl(bin ? bin : "build/puente-broker", "puente-broker", "--endpoint",
                  self->endpoint[index], "--db", self->conninfo, "--keys", self->keys, "--sql",
                  sql ? sql : "broker/sql", "--instance-id", instance, (char *)NULL);
        else
            execl(bin ? bin : "build/puente-broker", "puente-broker", "--endpoint",
                  self->endpoint[index], "--db", self->conninfo, "--keys", self->keys, "--sql",
                  sql ? sql : "broker/sql", (char *)NULL);
        _exit(127);
    }
    self->broker[index] = pid;
    /* Ready when the operator can say hello. */
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "harness: broker exited at start (see %s); its log ends:\n", log);
            char tail[1200];
            snprintf(tail, sizeof tail, "tail -n 8 '%s' >&2", log);
            if (system(tail) != 0)
                fprintf(stderr, "harness: (no log)\n");
            self->broker[index] = 0;
            return -1;
        }
        char err[256];
        pt_client_opts_t opts = {.endpoint = self->endpoint[index],
                                 .keys_dir = self->keys,
                                 .org_id = "operator",
                                 .timeout_ms = 300};
        pt_client_t *client = pt_client_new(&opts, err, sizeof err);
        if (client) {
            pt_client_destroy(&client);
            return 0;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "harness: broker did not answer (see %s)\n", log);
    return -1;
}

static int s_broker_stop(pt_harness_t *self, int index, int sig)
{
    if (!self->broker[index])
        return -1;
    kill(self->broker[index], sig);
    int status = 0;
    waitpid(self->broker[index], &status, 0);
    self->broker[index] = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int pt_harness_broker_stop(pt_harness_t *self, int sig)
{
    return s_broker_stop(self, 0, sig);
}

static pt_client_t *s_client(pt_harness_t *self, int index, const char *org, int receive)
{
    char err[256] = "";
    pt_client_opts_t opts = {.endpoint = self->endpoint[index],
                             .keys_dir = self->keys,
                             .org_id = org,
                             .receive = receive,
                             .timeout_ms = 5000};
    pt_client_t *client = pt_client_new(&opts, err, sizeof err);
    if (!client)
        fprintf(stderr, "harness: client %s: %s\n", org, err);
    return client;
}

pt_client_t *pt_harness_client(pt_harness_t *self, const char *org, int receive)
{
    return s_client(self, 0, org, receive);
}

int pt_harness_register_demo(pt_harness_t *self)
{
    pt_client_t *op = pt_harness_client(self, "operator", 0);
    if (!op)
        return -1;
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++) {
        char why[256];
        pt_keyset_t *keys = pt_keyset_load(self->keys, pt_harness_orgs[i], 0, why, sizeof why);
        if (!keys) {
            rc = -1;
            break;
        }
        uint8_t sign_pub[32], seal_pub[32];
        pt_sign_key_public(pt_keyset_sign(keys), sign_pub);
        pt_seal_key_public(pt_keyset_seal(keys), seal_pub);
        Puente__V1__OrgKeys org = PUENTE__V1__ORG_KEYS__INIT;
        org.org_id = (char *)pt_harness_orgs[i];
        org.sign_public = (ProtobufCBinaryData){32, sign_pub};
        org.seal_public = (ProtobufCBinaryData){32, seal_pub};
        org.curve_public = (ProtobufCBinaryData){32, (uint8_t *)pt_keyset_curve_public(keys)};
        org.enabled = 1;
        char services[400], *service_v[32];
        size_t n_services = 0;
        snprintf(services, sizeof services, "%s", pt_harness_services[i]);
        for (char *save = NULL, *t = strtok_r(services, ",", &save); t && n_services < 32;
             t = strtok_r(NULL, ",", &save))
            service_v[n_services++] = t;
        org.service_types = service_v;
        org.n_service_types = n_services;
        Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
        req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_ORG_ADD;
        req.org_add = &org;
        pt_reject_info_t rej;
        if (pt_client_admin(op, &req, NULL, &rej) != PT_CLIENT_OK) {
            fprintf(stderr, "harness: org add %s: %s\n", pt_harness_orgs[i], rej.reason);
            rc = -1;
        }
        pt_keyset_destroy(&keys);
    }
    char *purposes[] = {"service_provision", "case_transfer", "social_inquiry", "family_tracing",
                        "reintegration"};
    char *types[] = {"*"};
    for (int i = 0; i < 5 && rc == 0; i++) {
        for (int j = i + 1; j < 5 && rc == 0; j++) {
            if (strcmp(pt_harness_orgs[i], "SV-CONNA") == 0 &&
                strcmp(pt_harness_orgs[j], "US-ORR") == 0)
                continue;
            char id[80];
            snprintf(id, sizeof id, "AGR-%s-%s", pt_harness_orgs[i], pt_harness_orgs[j]);
            Puente__V1__AgreementSpec spec = PUENTE__V1__AGREEMENT_SPEC__INIT;
            spec.agreement_id = id;
            spec.org_a = (char *)pt_harness_orgs[i];
            spec.org_b = (char *)pt_harness_orgs[j];
            spec.purposes = purposes;
            spec.n_purposes = 5;
            spec.message_types = types;
            spec.n_message_types = 1;
            Puente__V1__AdminRequest req = PUENTE__V1__ADMIN_REQUEST__INIT;
            req.op_case = PUENTE__V1__ADMIN_REQUEST__OP_AGREEMENT_ADD;
            req.agreement_add = &spec;
            pt_reject_info_t rej;
            if (pt_client_admin(op, &req, NULL, &rej) != PT_CLIENT_OK) {
                fprintf(stderr, "harness: agreement %s: %s\n", id, rej.reason);
                rc = -1;
            }
        }
    }
    pt_client_destroy(&op);
    return rc;
}

const char *pt_harness_endpoint(const pt_harness_t *self)
{
    return self->endpoint[0];
}

const char *pt_harness_keys(const pt_harness_t *self)
{
    return self->keys;
}

const char *pt_harness_dir(const pt_harness_t *self)
{
    return self->dir;
}

const char *pt_harness_conninfo(const pt_harness_t *self)
{
    return self->conninfo;
}

static void s_read_file(const char *path, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    out[0] = '\0';
    FILE *file = fopen(path, "r");
    if (!file)
        return;
    size_t n = fread(out, 1, cap - 1, file);
    out[n] = '\0';
    fclose(file);
}

int pt_harness_sh(pt_harness_t *self, const char *command, char *out, size_t out_cap, char *err,
                  size_t err_cap)
{
    size_t len = strlen(command) + 2048;
    char *full = malloc(len);
    if (!full)
        return -1;
    snprintf(full, len,
             "cd %s && PUENTE_BROKER='%s' PUENTE_KEYS='%s' %s >'%s/sh.out' 2>'%s/sh.err'",
             getenv("PUENTE_TEST_ROOT") ? getenv("PUENTE_TEST_ROOT") : ".", self->endpoint[0],
             self->keys, command, self->dir, self->dir);
    int status = system(full);
    free(full);
    char path[600];
    snprintf(path, sizeof path, "%s/sh.out", self->dir);
    s_read_file(path, out, out_cap);
    snprintf(path, sizeof path, "%s/sh.err", self->dir);
    s_read_file(path, err, err_cap);
    if (status == -1 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int pt_harness_log_count(pt_harness_t *self, const char *text, const char *also)
{
    char path[700], line[4096];
    snprintf(path, sizeof path, "%s/broker.log", self->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL && (!also || strstr(line, also) != NULL);
    fclose(f);
    return n;
}

long pt_harness_sql_count(pt_harness_t *self, const char *sql)
{
    PGconn *conn = PQconnectdb(self->conninfo);
    long value = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        else
            fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
    }
    PQfinish(conn);
    return value;
}

void pt_harness_destroy(pt_harness_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_harness_t *self = *self_p;
    for (int i = 0; i < PT_HARNESS_BROKERS; i++)
        if (self->broker[i])
            s_broker_stop(self, i, SIGTERM);
    if (self->zmq)
        zmq_ctx_term(self->zmq);
    if (self->dbname[0]) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", self->dbname);
        s_exec_admin(self, sql);
    }
    if (self->dir[0] && !getenv("PUENTE_KEEP_TEST_DIRS")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", self->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "harness: could not remove %s\n", self->dir);
    }
    free(self);
    *self_p = NULL;
}

/* --- raw sockets ------------------------------------------------------------ */

static pt_raw_t *s_raw_new(pt_harness_t *harness, int index, const char *org);

pt_raw_t *pt_raw_new(pt_harness_t *harness, const char *org)
{
    return s_raw_new(harness, 0, org);
}

static pt_raw_t *s_raw_new(pt_harness_t *harness, int index, const char *org)
{
    char why[256];
    pt_keyset_t *mine = pt_keyset_load(harness->keys, org, 1, why, sizeof why);
    pt_keyset_t *broker = pt_keyset_load(harness->keys, "broker", 0, why, sizeof why);
    pt_raw_t *self = calloc(1, sizeof *self);
    if (!mine || !broker || !self)
        goto error;
    self->socket = zmq_socket(harness->zmq, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(self->socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->socket, ZMQ_CURVE_SERVERKEY, pt_keyset_curve_public_z85(broker), 40);
    zmq_setsockopt(self->socket, ZMQ_CURVE_PUBLICKEY, pt_keyset_curve_public_z85(mine), 40);
    zmq_setsockopt(self->socket, ZMQ_CURVE_SECRETKEY, pt_keyset_curve_secret_z85(mine), 40);
    if (zmq_connect(self->socket, harness->endpoint[index]) != 0)
        goto error;
    pt_keyset_destroy(&mine);
    pt_keyset_destroy(&broker);
    return self;
error:
    fprintf(stderr, "harness: raw socket for %s failed\n", org);
    pt_keyset_destroy(&mine);
    pt_keyset_destroy(&broker);
    pt_raw_destroy(&self);
    return NULL;
}

void pt_raw_destroy(pt_raw_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->socket)
        zmq_close((*self_p)->socket);
    free(*self_p);
    *self_p = NULL;
}

int pt_raw_send(pt_raw_t *self, const void *const *frames, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (zmq_send(self->socket, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

int pt_raw_send_frame(pt_raw_t *self, const Puente__V1__ClientFrame *frame)
{
    size_t len = puente__v1__client_frame__get_packed_size(frame);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    puente__v1__client_frame__pack(frame, buf);
    const void *frames[1] = {buf};
    int rc = pt_raw_send(self, frames, &len, 1);
    free(buf);
    return rc;
}

Puente__V1__BrokerFrame *pt_raw_recv(pt_raw_t *self, int timeout_ms)
{
    zmq_pollitem_t item = {self->socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, self->socket, 0) < 0) {
        zmq_msg_close(&msg);
        return NULL;
    }
    Puente__V1__BrokerFrame *frame =
        puente__v1__broker_frame__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    return frame;
}

uint8_t *pt_harness_example_body(const char *message_type, size_t *len)
{
    const pt_type_t *type = pt_types_find(message_type);
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

pt_outbox_t *pt_harness_outbox(pt_harness_t *self, const char *org, const char *name,
                               int timeout_ms)
{
    char state[700], err[PUENTE_ERR_BYTES] = "";
    snprintf(state, sizeof state, "%s/outbox-%s.db", pt_harness_dir(self), name);
    pt_outbox_opts_t o = {.client = {.endpoint = pt_harness_endpoint(self),
                                     .keys_dir = pt_harness_keys(self),
                                     .org_id = org,
                                     .timeout_ms = timeout_ms},
                          .state_path = state};
    pt_outbox_t *outbox = pt_outbox_new(&o, err, sizeof err);
    if (!outbox)
        fprintf(stderr, "harness: outbox %s: %s\n", org, err);
    else if (pt_outbox_wait_directory(outbox, 20000) != PT_CLIENT_OK) {
        fprintf(stderr, "harness: outbox %s: no directory within 20 s\n", org);
        pt_outbox_destroy(&outbox);
    }
    return outbox;
}

pt_client_result_t pt_harness_send(pt_client_t *from, const char *type, const char *to,
                                   const char *case_token, const uint8_t *correlation,
                                   int64_t expires_in_ms, pt_receipt_info_t *receipt,
                                   pt_reject_info_t *rej)
{
    size_t len = 0;
    uint8_t *body = pt_harness_example_body(type, &len);
    if (!body)
        return PT_CLIENT_INVALID;
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.consent_for_tracing = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *recipients[1] = {to};
    pt_send_t msg = {.message_type = type,
                     .recipients = recipients,
                     .n_recipients = 1,
                     .case_token = case_token,
                     .correlation_id = correlation,
                     .expires_in_ms = expires_in_ms,
                     .consent = &consent,
                     .body = body,
                     .body_len = len,
                     /* return.notice needs a best-interests reference (issue 3). */
                     .best_interests_ref = "TEST-BIA-0001"};
    pt_receipt_info_t local_receipt;
    pt_reject_info_t local_rej;
    pt_reject_info_t *r = rej ? rej : &local_rej;
    memset(r, 0, sizeof *r);
    pt_client_result_t rc = pt_client_send(from, &msg, receipt ? receipt : &local_receipt, r);
    free(body);
    if (rc != PT_CLIENT_OK)
        fprintf(stderr, "harness: %s to %s not sent: %d %s %s\n", type, to, rc, r->code_name,
                r->reason);
    return rc;
}

int pt_harness_envelope(pt_harness_t *self, const char *sender, const char *recipient,
                        const char *message_type, const char *case_token,
                        void (*mutate)(Puente__V1__Header *header, void *arg), void *arg,
                        uint8_t **out, size_t *out_len)
{
    char why[256];
    int rc = -1;
    pt_keyset_t *from = pt_keyset_load(self->keys, sender, 1, why, sizeof why);
    pt_keyset_t *to = pt_keyset_load(self->keys, recipient, 0, why, sizeof why);
    const pt_type_t *type = pt_types_find(message_type);
    size_t body_len = 0;
    uint8_t *body_bytes = NULL;
    if (!from || !to || !type)
        goto done;
    body_bytes = pt_harness_example_body(message_type, &body_len);
    if (!body_bytes)
        goto done;

    uint8_t message_id[16], correlation_id[16];
    pt_uuidv7(message_id);
    pt_uuidv7(correlation_id);
    char *recipients[1] = {(char *)recipient};
    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.consent_for_tracing = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    Puente__V1__Header header = PUENTE__V1__HEADER__INIT;
    header.message_id = (ProtobufCBinaryData){16, message_id};
    header.correlation_id = (ProtobufCBinaryData){16, correlation_id};
    header.message_type = (char *)message_type;
    header.sender = (char *)sender;
    header.recipients = recipients;
    header.n_recipients = 1;
    header.created_at_ms = pt_now_ms();
    header.purpose = (char *)type->default_purpose;
    header.case_token = (char *)case_token;
    header.consent = &consent;
    /* The broker requires them (the example bodies' first service, and the
       example trace request's countries). */
    char *countries[3] = {"GT", "HN", "SV"};
    if (strcmp(message_type, "referral.request") == 0)
        header.service_type = "psychosocial";
    if (strcmp(message_type, "tracing.request") == 0) {
        header.search_countries = countries;
        header.n_search_countries = 3;
    }
    if (mutate)
        mutate(&header, arg);
    const pt_seal_key_t *seal = pt_keyset_seal(to);
    if (pt_envelope_seal(&header, body_bytes, body_len, pt_keyset_sign(from), &seal, 1, out,
                         out_len) == PT_ENV_OK)
        rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "harness: cannot build envelope %s -> %s (%s)\n", sender, recipient, why);
    free(body_bytes);
    pt_keyset_destroy(&from);
    pt_keyset_destroy(&to);
    return rc;
}

/* --- added for the crash and secrets tests (issue 7) ------------------------- */

int pt_harness_broker_pid(const pt_harness_t *self)
{
    return self ? (int)self->broker[0] : 0;
}

int pt_harness_broker_run_to_exit(pt_harness_t *self, int timeout_ms)
{
    if (!self || self->broker[0])
        return -1;
    const char *bin = getenv("PUENTE_BROKER_BIN");
    const char *sql = getenv("PUENTE_SQL_DIR");
    char log[600];
    snprintf(log, sizeof log, "%s/broker.log", self->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execl(bin ? bin : "build/puente-broker", "puente-broker", "--endpoint", self->endpoint[0],
              "--db", self->conninfo, "--keys", self->keys, "--sql", sql ? sql : "broker/sql",
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50 * 1000);
    }
    fprintf(stderr, "harness: broker still running after %d ms (see %s)\n", timeout_ms, log);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* --- added for the audit tests (issue 4) ------------------------------------ */

const char *pt_harness_dbname(const pt_harness_t *self)
{
    return self->dbname;
}

void pt_harness_conninfo_for(const pt_harness_t *self, const char *dbname, char *out, size_t cap)
{
    snprintf(out, cap, "%s dbname=%s", self->admin_conninfo, dbname);
}

int pt_harness_sql_exec(pt_harness_t *self, const char *dbname, const char *sql)
{
    char conninfo[1200];
    pt_harness_conninfo_for(self, dbname ? dbname : self->dbname, conninfo, sizeof conninfo);
    PGconn *conn = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            rc = 0;
        else
            fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
    } else {
        fprintf(stderr, "harness: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return rc;
}

const char *pt_harness_metrics_url(pt_harness_t *self)
{
    static char url[64];
    char listen[40];
    (void)self;
    if (url[0])
        return url;
    int port = s_free_port();
    if (port < 0)
        return NULL;
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    if (setenv("PUENTE_METRICS_LISTEN", listen, 1) != 0)
        return NULL;
    snprintf(url, sizeof url, "http://%s", listen);
    return url;
}

/* --- added for several brokers over one database (issue 9) ------------------- */

static int s_index_ok(const pt_harness_t *self, int index)
{
    if (self && index >= 0 && index < PT_HARNESS_BROKERS)
        return 1;
    fprintf(stderr, "harness: no broker %d (0..%d)\n", index, PT_HARNESS_BROKERS - 1);
    return 0;
}

int pt_harness_broker_start_at(pt_harness_t *self, int index)
{
    return s_index_ok(self, index) ? s_broker_start(self, index, 1) : -1;
}

int pt_harness_broker_stop_at(pt_harness_t *self, int index, int sig)
{
    return s_index_ok(self, index) ? s_broker_stop(self, index, sig) : -1;
}

int pt_harness_broker_pid_at(const pt_harness_t *self, int index)
{
    return s_index_ok(self, index) ? (int)self->broker[index] : 0;
}

const char *pt_harness_endpoint_at(const pt_harness_t *self, int index)
{
    return s_index_ok(self, index) ? self->endpoint[index] : NULL;
}

pt_client_t *pt_harness_client_at(pt_harness_t *self, int index, const char *org, int receive)
{
    return s_index_ok(self, index) ? s_client(self, index, org, receive) : NULL;
}

pt_raw_t *pt_raw_new_at(pt_harness_t *harness, int index, const char *org)
{
    return s_index_ok(harness, index) ? s_raw_new(harness, index, org) : NULL;
}

/* The client failover test's names for broker 1 (itest_failover). */
int pt_harness_second_broker_start(pt_harness_t *self)
{
    return pt_harness_broker_start_at(self, 1);
}

int pt_harness_second_broker_stop(pt_harness_t *self, int sig)
{
    return pt_harness_broker_stop_at(self, 1, sig);
}

const char *pt_harness_second_broker_endpoint(const pt_harness_t *self)
{
    const char *endpoint = pt_harness_endpoint_at(self, 1);
    return endpoint ? endpoint : "";
}

int pt_harness_second_broker_pid(const pt_harness_t *self)
{
    return pt_harness_broker_pid_at(self, 1);
}

/* --- shared helpers of the integration tests ------------------------------- */

pt_harness_t *pt_harness_new_started(const char *name, const char **metrics_url_out)
{
    pt_harness_t *self = pt_harness_new(name);
    if (!self)
        goto error;
    if (metrics_url_out && !(*metrics_url_out = pt_harness_metrics_url(self)))
        goto error;
    if (pt_harness_broker_start(self) != 0 || pt_harness_register_demo(self) != 0)
        goto error;
    return self;
error:
    pt_harness_destroy(&self);
    return NULL;
}

int pt_harness_cli(pt_harness_t *self, char *out, size_t out_cap, char *err, size_t err_cap,
                   const char *fmt, ...)
{
    const char *cli = getenv("PUENTE_CLI_BIN");
    char args[4096], command[4800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(command, sizeof command, "%s %s", cli ? cli : "build/puente", args);
    int rc = pt_harness_sh(self, command, out, out_cap, err, err_cap);
    if (getenv("PUENTE_TEST_VERBOSE"))
        fprintf(stderr, "\n$ %s -> %d\n%s%s", command, rc, out, err);
    return rc;
}

long pt_harness_env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : fallback;
}

typedef struct {
    char *data;
    size_t len;
} s_http_body_t;

/* libcurl's write callback: appends to an s_http_body_t, kept NUL-terminated. */
static size_t s_http_write(void *ptr, size_t size, size_t n, void *arg)
{
    s_http_body_t *body = arg;
    size_t add = size * n;
    char *grown = realloc(body->data, body->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + body->len, ptr, add);
    body->data = grown;
    body->len += add;
    body->data[body->len] = '\0';
    return add;
}

long pt_harness_http_get(const char *url, int timeout_ms, char **body_out)
{
    s_http_body_t body = {0};
    long status = -1;
    if (body_out)
        *body_out = NULL;
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_http_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (body_out)
        *body_out = body.data ? body.data : strdup("");
    else
        free(body.data);
    return status;
}

int pt_harness_metric_value(const char *text, const char *series, double *value_out)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            *value_out = strtod(line + n + 1, NULL);
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

int pt_harness_metric_scrape(const char *base_url, const char *series, int timeout_ms,
                             double *value_out)
{
    char url[512];
    char *text = NULL;
    snprintf(url, sizeof url, "%s/metrics", base_url);
    int rc = -1;
    if (pt_harness_http_get(url, timeout_ms, &text) == 200)
        rc = pt_harness_metric_value(text, series, value_out);
    free(text);
    return rc;
}

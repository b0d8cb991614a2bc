/*  fuzz_bridge — puente-bridge's HTTP request handling without a socket: each
    request of the input goes through pt_bridge_handle (adapters/bridge/bridge.h),
    i.e. routing, the bearer token, header and query checks, the JSON validation
    of a submit, field minimisation, sealing and the commit to the SDK outbox,
    idempotency keys, inbox paging, acks and status, of an offline bridge
    (pt_bridge_new_offline: no HTTP server, no broker, no receiver thread).

    The bridge is FUZZ_SENDER with token FUZZ_BRIDGE_TOKEN; its state lives in a
    temporary directory made at the first input: keys generated in-process, the
    outbox's cached key directory (signed by the broker's key: four enabled
    organisations, one disabled, agreements with a field set for social_inquiry),
    and in bridge.db the inbox messages and outbound rows named in fuzz_keys.h.
    That state is a template: after every input that changed it in a way a later
    input could see (an ack, a new Idempotency-Key, recorded progress) the bridge
    is rebuilt from it, so that every input runs against the same state; messages
    queued without a key cannot be named by a later input (random ids) and are
    cleared every 256 inputs that queued some.

    Input: HTTP/1.1 requests back to back, at most 8:
        METHOD SP TARGET [SP VERSION] LF         (a CR before LF is dropped)
        NAME ":" VALUE LF ...                    (headers; names case-insensitive,
                                                 the first one wins, as in libmicrohttpd)
        LF
        BODY                                     Content-Length bytes (cut at the end of
                                                 the input), else the rest of the input
    TARGET is PATH[?QUERY]; the path and each name=value of the query ('&'
    separated) are percent-decoded as libmicrohttpd does. A Content-Length or a
    body over max_body (16 KiB here) makes the body "too large" as the server
    flags it (and drops it).

    Checks on every answer: pt_bridge_handle succeeds; the body is JSON; the
    status is one the API documents (offline: 503 only as broker-unreachable, so
    never a storage failure); a request without the exact token gets 401 (the API
    description excepted); a problem document repeats the HTTP status.
    FUZZ_VERBOSE=1 in the environment prints every answer (to check seeds).
*/
#include "bridge.h"
#include "bridge_http.h"
#include "bridge_store.h"
#include "control.pb-c.h"
#include "fuzz_keys.h"
#include "pt_json.h"
#include "pt_keys.h"
#include "pt_sdk_internal.h"
#include "pt_types.h"
#include "puente.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_REQUESTS 8
#define S_MAX_BODY (16 * 1024)
#define S_PATH_MAX 1200

static char s_root[256];
static char s_keys[S_PATH_MAX], s_template[S_PATH_MAX], s_state[S_PATH_MAX];
static pt_bridge_config_t s_cfg;
static pt_bridge_t *s_bridge;

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_bridge: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* --- the template state ------------------------------------------------------------- */

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_cleanup(void)
{
    pt_bridge_destroy(&s_bridge);
    if (s_root[0])
        nftw(s_root, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void s_copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        s_die("cannot copy the template", from);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            s_die("cannot copy the template", to);
    fclose(in);
    if (fclose(out) != 0)
        s_die("cannot copy the template", to);
}

static pt_keyset_t *s_org(const char *id, int save)
{
    pt_keyset_t *k = pt_keyset_generate(id);
    if (!k || (save && pt_keyset_save(k, s_keys) != 0))
        s_die("cannot make keys", id);
    return k;
}

/* The broker-signed directory the outbox seals with. */
static void s_directory(pt_outbox_db_t *db, const pt_keyset_t *broker, pt_keyset_t *const *orgs,
                        size_t n_orgs)
{
    Puente__V1__OrgKeys keys[8], *list[8];
    uint8_t sign_public[8][32], seal_public[8][32];
    for (size_t i = 0; i < n_orgs; i++) {
        puente__v1__org_keys__init(&keys[i]);
        keys[i].org_id = (char *)pt_keyset_org(orgs[i]);
        pt_sign_key_public(pt_keyset_sign(orgs[i]), sign_public[i]);
        pt_seal_key_public(pt_keyset_seal(orgs[i]), seal_public[i]);
        keys[i].sign_public = (ProtobufCBinaryData){32, sign_public[i]};
        keys[i].seal_public = (ProtobufCBinaryData){32, seal_public[i]};
        keys[i].curve_public =
            (ProtobufCBinaryData){32, (uint8_t *)pt_keyset_curve_public(orgs[i])};
        keys[i].enabled = i + 1 < n_orgs; /* the last one is disabled */
        list[i] = &keys[i];
    }
    char *all_purposes[] = {"service_provision", "case_transfer", "social_inquiry",
                            "family_tracing", "reintegration"};
    char *all_types[] = {"*"};
    char *inquiry_fields[] = {"inquiry_id", "child.name_first", "child.sex", "questions"};
    Puente__V1__FieldSet inquiry = PUENTE__V1__FIELD_SET__INIT;
    inquiry.purpose = "social_inquiry";
    inquiry.fields = inquiry_fields;
    inquiry.n_fields = sizeof inquiry_fields / sizeof inquiry_fields[0];
    Puente__V1__FieldSet *sets[] = {&inquiry};
    Puente__V1__AgreementSpec agreements[3], *agreement_list[3];
    const char *peers[] = {fuzz_recipient_names[0], fuzz_recipient_names[1], "HN-DINAF"};
    for (size_t i = 0; i < 3; i++) {
        char *id = i == 0   ? "AGR-MX-GT-2025-01"
                   : i == 1 ? "AGR-MX-XI-2025-01"
                            : "AGR-MX-HN-2025-01";
        puente__v1__agreement_spec__init(&agreements[i]);
        agreements[i].agreement_id = id;
        agreements[i].org_a = FUZZ_SENDER;
        agreements[i].org_b = (char *)peers[i];
        agreements[i].purposes = all_purposes;
        agreements[i].n_purposes = sizeof all_purposes / sizeof all_purposes[0];
        agreements[i].message_types = all_types;
        agreements[i].n_message_types = 1;
        agreements[i].valid_from_ms = 1;
        if (i == 0) {
            agreements[i].field_sets = sets;
            agreements[i].n_field_sets = 1;
        }
        agreement_list[i] = &agreements[i];
    }
    Puente__V1__DirectoryEntries entries = PUENTE__V1__DIRECTORY_ENTRIES__INIT;
    entries.orgs = list;
    entries.n_orgs = n_orgs;
    entries.agreements = agreement_list;
    entries.n_agreements = 3;
    entries.issued_at_ms = FUZZ_EPOCH_MS;
    size_t len = puente__v1__directory_entries__get_packed_size(&entries);
    uint8_t *packed = malloc(len), sig[PT_ED25519_SIG_BYTES];
    if (!packed)
        s_die("out of memory", NULL);
    puente__v1__directory_entries__pack(&entries, packed);
    if (pt_sign(pt_keyset_sign(broker), PT_DOMAIN_DIRECTORY, packed, len, sig) != 0 ||
        pt_outbox_db_directory_save(db, packed, len, sig, sizeof sig) != 0)
        s_die("cannot store the directory", NULL);
    free(packed);
}

/* A received message as the receiver thread stores it (pt_bridge_message_json). */
static char *s_inbox_json(const char *id_text, const pt_keyset_t *sender)
{
    const pt_type_t *type = pt_types_find("referral.request");
    ProtobufCMessage *body = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (!type || pt_json_to_message(type->descriptor, type->example_json,
                                    strlen(type->example_json), &body, err, sizeof err) != 0)
        s_die("example does not parse", err);
    uint8_t id[PT_UUID_BYTES], cid[PT_UUID_BYTES];
    if (pt_uuid_parse(id_text, id) != 0 || pt_uuid_parse(FUZZ_BRIDGE_THREAD, cid) != 0)
        s_die("bad fixed id", id_text);
    char *to[] = {FUZZ_SENDER};
    Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
    h.message_id = (ProtobufCBinaryData){16, id};
    h.correlation_id = (ProtobufCBinaryData){16, cid};
    h.message_type = (char *)type->name;
    h.sender = (char *)pt_keyset_org(sender);
    h.recipients = to;
    h.n_recipients = 1;
    h.created_at_ms = FUZZ_EPOCH_MS;
    h.purpose = (char *)type->default_purpose;
    h.case_token = FUZZ_BRIDGE_CASE;
    json_t *o = pt_bridge_message_json(&h, body);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    protobuf_c_message_free_unpacked(body, NULL);
    if (!text)
        s_die("cannot render an inbox message", NULL);
    return text;
}

static void s_make_template(void)
{
    /* SQLite commits with fsync: on tmpfs they cost nothing. */
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    if (!tmp || !*tmp)
        tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                  ? "/dev/shm"
                  : "/tmp";
    snprintf(s_root, sizeof s_root, "%s/puente-fuzz-bridge.XXXXXX", tmp);
    if (!mkdtemp(s_root))
        s_die("mkdtemp", strerror(errno));
    snprintf(s_keys, sizeof s_keys, "%s/keys", s_root);
    snprintf(s_template, sizeof s_template, "%s/template", s_root);
    snprintf(s_state, sizeof s_state, "%s/state", s_root);
    if (mkdir(s_keys, 0700) != 0 || mkdir(s_template, 0700) != 0 || mkdir(s_state, 0700) != 0)
        s_die("mkdir", strerror(errno));

    pt_keyset_t *broker = s_org("broker", 1);
    /* After OpenSSL registered its own exit handler, so that ours runs first: the
       outbox thread must stop before OpenSSL is torn down. */
    atexit(s_cleanup);
    pt_keyset_t *orgs[5] = {s_org(FUZZ_SENDER, 1), s_org(fuzz_recipient_names[0], 0),
                            s_org(fuzz_recipient_names[1], 0), s_org("HN-DINAF", 0),
                            s_org("SV-CONNA", 0)};
    char path[S_PATH_MAX + 32], err[512];
    snprintf(path, sizeof path, "%s/outbox.db", s_template);
    pt_outbox_db_t *db = pt_outbox_db_open(path, err, sizeof err);
    if (!db)
        s_die("outbox.db", err);
    s_directory(db, broker, orgs, 5);
    /* One message only the outbox knows, and one the outbox has a receipt for while
       bridge.db still says queued. */
    uint8_t id[PT_UUID_BYTES];
    int64_t seq = 0;
    pt_receipt_info_t receipt;
    memset(&receipt, 0, sizeof receipt);
    if (pt_uuid_parse(FUZZ_BRIDGE_OUTBOX_ONLY, id) != 0 ||
        pt_outbox_db_enqueue(db, id, (const uint8_t *)"envelope", 8, NULL) != 0 ||
        pt_uuid_parse(FUZZ_BRIDGE_OUT_QUEUED, id) != 0 ||
        pt_outbox_db_enqueue(db, id, (const uint8_t *)"envelope", 8, &seq) != 0)
        s_die("outbox rows", pt_outbox_db_error(db));
    memcpy(receipt.message_id, id, PT_UUID_BYTES);
    receipt.stored_at_ms = FUZZ_EPOCH_MS + 1000;
    memset(receipt.header_sha256, 0xab, sizeof receipt.header_sha256);
    memset(receipt.event_hash, 0xcd, sizeof receipt.event_hash);
    if (pt_uuid_parse(FUZZ_BRIDGE_THREAD, receipt.correlation_id) != 0 ||
        pt_outbox_db_submitted(db, seq, &receipt) != 0)
        s_die("outbox receipt", pt_outbox_db_error(db));
    pt_outbox_db_close(&db);

    pt_bridge_store_t *store = pt_bridge_store_open(s_template, err, sizeof err);
    if (!store)
        s_die("bridge.db", err);
    for (size_t i = 0; i < FUZZ_BRIDGE_N_INBOX; i++) {
        char *json = s_inbox_json(fuzz_bridge_inbox_ids[i], orgs[1]);
        if (pt_bridge_inbox_put(store, fuzz_bridge_inbox_ids[i], FUZZ_BRIDGE_THREAD,
                                i ? fuzz_bridge_inbox_ids[0] : NULL, json, 0) != 1)
            s_die("inbox row", fuzz_bridge_inbox_ids[i]);
        free(json);
    }
    int already = 0;
    const char *to = "[\"GT-PGN\"]";
    if (pt_bridge_inbox_app_ack(store, fuzz_bridge_inbox_ids[2], &already) != 1 ||
        pt_bridge_out_queued(store, FUZZ_BRIDGE_OUT_QUEUED, FUZZ_BRIDGE_THREAD, "referral.request",
                             FUZZ_BRIDGE_CASE, to, "seed-key-1",
                             "0000000000000000000000000000000000000000000000000000000000000000") !=
            0 ||
        pt_bridge_out_queued(store, FUZZ_BRIDGE_OUT_SUBMITTED, FUZZ_BRIDGE_THREAD,
                             "referral.accept", FUZZ_BRIDGE_CASE, to, NULL, NULL) != 0 ||
        pt_bridge_out_submitted(store, FUZZ_BRIDGE_OUT_SUBMITTED, FUZZ_BRIDGE_OUT_SUBMITTED,
                                FUZZ_BRIDGE_THREAD,
                                "{\"stored_at\":\"2025-01-01T00:00:01Z\"}") != 0 ||
        pt_bridge_out_queued(store, FUZZ_BRIDGE_OUT_REJECTED, FUZZ_BRIDGE_THREAD, "referral.done",
                             FUZZ_BRIDGE_CASE, to, NULL, NULL) != 0 ||
        pt_bridge_out_failed(store, FUZZ_BRIDGE_OUT_REJECTED, "rejected", 12,
                             "REJECT_ILLEGAL_TRANSITION", "not in this state", NULL) != 0)
        s_die("outbound rows", NULL);
    pt_bridge_store_destroy(&store);
    pt_keyset_destroy(&broker);
    for (size_t i = 0; i < 5; i++)
        pt_keyset_destroy(&orgs[i]);

    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.listen_host, sizeof s_cfg.listen_host, "127.0.0.1");
    s_cfg.listen_port = 1;
    snprintf(s_cfg.org, sizeof s_cfg.org, "%s", FUZZ_SENDER);
    /* Nothing listens on port 1: the outbox thread fails to connect and backs off
       (a real endpoint, because pt_bridge_new_offline checks the list). */
    snprintf(s_cfg.broker, sizeof s_cfg.broker, "tcp://127.0.0.1:1");
    snprintf(s_cfg.keys, sizeof s_cfg.keys, "%s", s_keys);
    snprintf(s_cfg.state_dir, sizeof s_cfg.state_dir, "%s", s_state);
    snprintf(s_cfg.token, sizeof s_cfg.token, "%s", FUZZ_BRIDGE_TOKEN);
    s_cfg.max_body = S_MAX_BODY;
    s_cfg.timeout_ms = 100;
}

/* A fresh bridge on a fresh copy of the template. The keys are moved out of the
   way while the bridge runs: the outbox thread would otherwise load them again
   (several PEM decodes) on every send, when a send wakes it to try the broker,
   and that would be most of the cost of an input. */
static void s_reset(void)
{
    static const char *const files[] = {"bridge.db", "outbox.db"};
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char from[S_PATH_MAX + 32], to[S_PATH_MAX + 32], err[600];
    pt_bridge_destroy(&s_bridge);
    for (size_t f = 0; f < 2; f++) {
        for (size_t s = 0; s < 4; s++) {
            snprintf(to, sizeof to, "%s/%s%s", s_state, files[f], suffixes[s]);
            if (unlink(to) != 0 && errno != ENOENT)
                s_die("unlink", to);
        }
        snprintf(from, sizeof from, "%s/%s", s_template, files[f]);
        snprintf(to, sizeof to, "%s/%s", s_state, files[f]);
        s_copy(from, to);
    }
    snprintf(from, sizeof from, "%s.away", s_keys);
    if (rename(from, s_keys) != 0 && errno != ENOENT)
        s_die("rename", from);
    s_bridge = pt_bridge_new_offline(&s_cfg, err, sizeof err);
    if (!s_bridge)
        s_die("pt_bridge_new_offline", err);
    if (rename(s_keys, from) != 0)
        s_die("rename", s_keys);
}

/* --- the input ------------------------------------------------------------------- */

static int s_hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* In place, as MHD_http_unescape: %XX decoded, anything else kept. */
static void s_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && s_hex(r[1]) >= 0 && s_hex(r[2]) >= 0) {
            *w++ = (char)(s_hex(r[1]) * 16 + s_hex(r[2]));
            r += 2;
        } else
            *w++ = *r;
    }
    *w = '\0';
}

/* The next line of [*p, end) as a NUL-terminated copy without CR LF; NULL at the end. */
static char *s_line(const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return NULL;
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *line = malloc(len + 1);
    if (!line)
        s_die("out of memory", NULL);
    memcpy(line, *p, len);
    line[len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[len - 1] = '\0';
    *p = nl ? nl + 1 : end;
    return line;
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int s_status_documented(int status)
{
    /* 201: a replayed Idempotency-Key of a submitted message (openapi.json). */
    static const int ok[] = {200, 201, 202, 400, 401, 404, 405, 409, 413, 415, 422, 503};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (status == ok[i])
            return 1;
    return 0;
}

/* What a request did to the state (s_request). */
enum { S_SEEN = 1, S_QUEUED = 2 };

/* Runs one request. S_SEEN if a later request could see what it changed: an ack
   (inbox state), a new Idempotency-Key, the status of FUZZ_BRIDGE_OUT_QUEUED
   (which records the receipt the outbox holds); S_QUEUED if it queued a message
   no later request can name (its id is random), else 0. */
static int s_request(const pt_bridge_request_t *req)
{
    pt_bridge_response_t resp;
    if (pt_bridge_handle(s_bridge, req, &resp) != 0)
        s_die("pt_bridge_handle failed", req->path);
    char param[PT_BRIDGE_MAX_TOKEN + 8], allow[64];
    pt_route_t route =
        pt_bridge_route_match(req->method, req->path, param, sizeof param, allow, sizeof allow);
    if (!resp.body || !resp.content_type || !s_status_documented(resp.status))
        s_die("undocumented answer", resp.body);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%s %s -> %d %s\n", req->method, req->path, resp.status, resp.body);
    json_error_t jerr;
    json_t *o = json_loads(resp.body, 0, &jerr);
    if (!o)
        s_die("answer is not JSON", resp.body);
    int authorized =
        req->authorization && strcmp(req->authorization, "Bearer " FUZZ_BRIDGE_TOKEN) == 0;
    if (route == PT_ROUTE_OPENAPI ? resp.status != 200 : !authorized && resp.status != 401)
        s_die("unauthenticated request answered", resp.body);
    if (strcmp(resp.content_type, "application/problem+json") == 0) {
        if (json_integer_value(json_object_get(o, "status")) != resp.status)
            s_die("problem status differs from the HTTP status", resp.body);
        const char *type = json_string_value(json_object_get(o, "type"));
        if (resp.status == 503 &&
            (!type || strcmp(type, PT_BRIDGE_PROBLEM_BASE "broker-unreachable") != 0))
            s_die("503 other than broker-unreachable", resp.body);
    }
    int effect = 0;
    if (route == PT_ROUTE_ACK && resp.status < 300 &&
        !json_is_true(json_object_get(o, "already_acked")))
        effect = S_SEEN;
    else if (route == PT_ROUTE_STATUS && resp.status == 200 &&
             strcmp(param, FUZZ_BRIDGE_OUT_QUEUED) == 0)
        effect = S_SEEN;
    else if (route == PT_ROUTE_SUBMIT && resp.status == 202 &&
             !json_is_true(json_object_get(o, "idempotent_replay")))
        effect = req->idempotency_key ? S_SEEN : S_QUEUED;
    json_decref(o);
    pt_bridge_response_clear(&resp);
    return effect;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_root[0]) {
        s_make_template();
        s_reset();
    }
    const uint8_t *p = data, *end = data + size;
    int effects = 0;
    for (int n = 0; n < S_MAX_REQUESTS && p < end; n++) {
        char *request_line = s_line(&p, end);
        char *headers[64];
        size_t n_headers = 0;
        char *line;
        while ((line = s_line(&p, end)) != NULL) {
            if (!line[0] || n_headers == 64) {
                free(line);
                break;
            }
            headers[n_headers++] = line;
        }
        pt_bridge_request_t req;
        memset(&req, 0, sizeof req);
        /* METHOD SP TARGET [SP VERSION] */
        char *method = request_line, *target = strchr(request_line, ' ');
        if (target) {
            *target++ = '\0';
            char *version = strchr(target, ' ');
            if (version)
                *version = '\0';
        } else
            target = request_line + strlen(request_line); /* "" */
        char *query = strchr(target, '?');
        if (query)
            *query++ = '\0';
        s_unescape(target);
        req.method = method;
        req.path = target;
        for (char *arg = query; arg && *arg;) {
            char *next = strchr(arg, '&');
            if (next)
                *next++ = '\0';
            char *value = strchr(arg, '=');
            if (value) {
                *value++ = '\0';
                s_unescape(value);
            }
            s_unescape(arg);
            if (strcmp(arg, "since") == 0 && !req.since)
                req.since = value ? value : "";
            else if (strcmp(arg, "limit") == 0 && !req.limit)
                req.limit = value ? value : "";
            arg = next;
        }
        const char *content_length = NULL;
        for (size_t i = 0; i < n_headers; i++) {
            char *colon = strchr(headers[i], ':');
            if (!colon)
                continue;
            *colon = '\0';
            const char *name = headers[i], *value = s_trim(colon + 1);
            if (strcasecmp(name, "Authorization") == 0 && !req.authorization)
                req.authorization = value;
            else if (strcasecmp(name, "Content-Type") == 0 && !req.content_type)
                req.content_type = value;
            else if (strcasecmp(name, "Idempotency-Key") == 0 && !req.idempotency_key)
                req.idempotency_key = value;
            else if (strcasecmp(name, "Content-Length") == 0 && !content_length)
                content_length = value;
        }
        size_t left = (size_t)(end - p), body_len = left;
        if (content_length) {
            unsigned long long declared = strtoull(content_length, NULL, 10);
            if (declared > S_MAX_BODY)
                req.body_too_large = 1;
            body_len = declared < left ? (size_t)declared : left;
        }
        if (body_len > S_MAX_BODY)
            req.body_too_large = 1;
        if (!req.body_too_large && body_len > 0) {
            req.body = (const char *)p;
            req.body_len = body_len;
        }
        p += body_len;
        effects |= s_request(&req);
        for (size_t i = 0; i < n_headers; i++)
            free(headers[i]);
        free(request_line);
    }
    /* Queued messages are invisible to later inputs but fill the disk: a reset
       now and then bounds them. */
    static unsigned queued_inputs;
    if ((effects & S_QUEUED) && ++queued_inputs % 256 == 0)
        effects |= S_SEEN;
    if (effects & S_SEEN)
        s_reset();
    return 0;
}

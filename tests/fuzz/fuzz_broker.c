/*  fuzz_broker — the broker's dispatcher fed raw client messages: routing id,
    any number of frames, and the identity ZAP would have stamped on them, built
    into pt_inbound_t as pt_transport_recv builds them (pt_inbound_begin/add/end)
    and run through pt_broker_pass (broker.h): decode, envelope check, authn,
    verify, policy, consent, fan-out, lifecycle, the group commit with receipts,
    acks, and every other request (hello, directory, trail, admin, audit, ...).

    The broker is real (every broker/ source, built with the sanitizers) except
    its store: tests/fuzz/fake_store.c answers as an in-memory database
    (fake_store.h), so no PostgreSQL runs. No socket carries the input: the
    ROUTER is bound on an inproc endpoint, and every reply to a routing id no
    peer has is dropped there.
    The directory holds the organisations of fuzz_keys.h with their fixed keys
    (so the committed seed envelopes verify), a disabled one, agreements (one
    with a field set, one expired), an auditor and the operator.

    Input:
        byte 0            flags: bits 0-1 store mode (0, 1 up; 2 down; 3 refusing
                          writes), bit 2 re-sign (below)
        then messages, at most 64:
        byte              bits 0-3 identity (table s_identities; 15 = a string of up
                          to 40 bytes follows, NUL-terminated or cut), bit 7 starts
                          a new loop pass (at most 8 passes)
        byte              number of frames after the routing id, mod 4 (0 makes
                          an EMPTY message, 2 or 3 EXTRA_FRAMES)
        byte, bytes       routing id: length, then that many bytes
        per frame: 2 bytes big-endian length, then that many bytes (cut at the end)
    Re-sign: a frame that decodes as a ClientFrame carrying a submission is
    repaired before it is handed over, as a sender holding every fixed key could
    have made it: the header's times (created, expires, respond-by, follow-up
    due) are moved by now - FUZZ_EPOCH_MS, its payload digests recomputed from
    the sealed payloads, its key id and signature made with the key of the
    sender it names. So mutated headers reach policy, consent and lifecycle
    (which a signature would otherwise stop), and the committed seeds never
    expire. Without it the frame goes in byte for byte.

    Each input starts with an empty fake store, and with a fresh broker (made by
    pt_broker_new with the fake store) after an input that held an admin request
    (which may change the directory), so that no input depends on an earlier one:
    nothing else the broker keeps between loop passes changes what a pass does.

    Checks: the sanitizers (crashes, leaks, UB), and after each input what the
    stages promise about every stored message: sent by a connection with its
    sender's identity, signed by that sender's key over the header whose digest
    is stored, a registered type, addressed to other enabled organisations (the
    key and recipient checks need the directory as set up here, so they are
    skipped after an input with an admin request). FUZZ_VERBOSE=1 in the
    environment logs what the broker does (to check seeds).
*/
#include "broker.h"
#include "control.pb-c.h"
#include "envelope.pb-c.h"
#include "fake_store.h"
#include "fuzz_keys.h"
#include "log.h"
#include "pt_crypto.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "pt_types.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_MESSAGES 64
#define S_MAX_PASSES 8
#define S_MAX_FRAME (16 * 1024)

static const char *const s_identities[15] = {
    FUZZ_SENDER, "GT-PGN",       "XI-ISS",   "HN-DINAF",   "SV-CONNA",
    "operator",  "auditor:AUD1", "",         "broker",     "XX-UNKNOWN",
    "mx-dif",    "auditor:AUD9", "auditor:", "operator-x", "MX-DIF-AND-A-VERY-LONG-IDENTITY-NAME"};

/* The organisations with private keys (their submissions can be re-signed). */
#define S_N_SIGNERS 3
static pt_sign_key_t *s_signers[S_N_SIGNERS];
static const char *s_signer_names[S_N_SIGNERS];
static uint8_t s_signer_ids[S_N_SIGNERS][PT_KEY_ID_BYTES];

static pt_store_org_t s_orgs[5];
static pt_store_agreement_t s_agreements[4];
static pt_store_auditor_t s_auditor;
static char s_root[256], s_keys[300];
static pt_broker_config_t s_config;
static pt_broker_t *s_broker;

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_broker: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_cleanup(void)
{
    pt_broker_destroy(&s_broker);
    if (s_root[0])
        nftw(s_root, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* One organisation of the directory from fixed seeds (sign, seal). */
static void s_org(pt_store_org_t *org, const char *id, const uint8_t sign_seed[32],
                  const uint8_t seal_private[32], int enabled, const char *services)
{
    memset(org, 0, sizeof *org);
    snprintf(org->org_id, sizeof org->org_id, "%s", id);
    pt_sign_key_t *sign = pt_sign_key_from_private(sign_seed, 32);
    pt_seal_key_t *seal = pt_seal_key_from_private(seal_private, 32);
    if (!sign || !seal)
        s_die("bad fixed key", id);
    pt_sign_key_public(sign, org->sign_public);
    pt_seal_key_public(seal, org->seal_public);
    pt_sha256((const uint8_t *)id, strlen(id), org->curve_public); /* never used: no ZAP */
    org->enabled = enabled;
    snprintf(org->service_types, sizeof org->service_types, "%s", services);
    pt_sign_key_destroy(&sign);
    pt_seal_key_destroy(&seal);
}

static void s_setup(void)
{
    pt_log_set_level(getenv("FUZZ_VERBOSE") ? PT_LOG_DEBUG : PT_LOG_ERROR);
    /* Everything on the loop thread: runs are deterministic. */
    setenv("PUENTE_WORKERS", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(s_root, sizeof s_root, "%s/puente-fuzz-broker.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_root))
        s_die("mkdtemp", strerror(errno));
    snprintf(s_keys, sizeof s_keys, "%s/keys", s_root);
    if (mkdir(s_keys, 0700) != 0)
        s_die("mkdir", s_keys);
    pt_keyset_t *broker = pt_keyset_generate("broker");
    pt_keyset_t *operator_keys = pt_keyset_generate("operator");
    if (!broker || !operator_keys || pt_keyset_save(broker, s_keys) != 0 ||
        pt_keyset_save(operator_keys, s_keys) != 0)
        s_die("cannot make the broker's keys", s_keys);
    pt_keyset_destroy(&broker);
    pt_keyset_destroy(&operator_keys);
    atexit(s_cleanup); /* after OpenSSL's own exit handler: runs before it */

    static const uint8_t hn_sign[32] = {0x77}, hn_seal[32] = {0x78};
    static const uint8_t sv_sign[32] = {0x79}, sv_seal[32] = {0x7a};
    s_org(&s_orgs[0], FUZZ_SENDER, fuzz_sender_seed, fuzz_sender_seal_private, 1, "");
    s_org(&s_orgs[1], fuzz_recipient_names[0], fuzz_recipient_sign_seed[0],
          fuzz_recipient_private[0], 1, "psychosocial,legal_assistance,tracing_focal_point");
    s_org(&s_orgs[2], fuzz_recipient_names[1], fuzz_recipient_sign_seed[1],
          fuzz_recipient_private[1], 1, "");
    s_org(&s_orgs[3], "HN-DINAF", hn_sign, hn_seal, 1, "family_tracing_only");
    s_org(&s_orgs[4], "SV-CONNA", sv_sign, sv_seal, 0, "");
    const uint8_t *seeds[S_N_SIGNERS] = {fuzz_sender_seed, fuzz_recipient_sign_seed[0],
                                         fuzz_recipient_sign_seed[1]};
    for (size_t i = 0; i < S_N_SIGNERS; i++) {
        s_signers[i] = pt_sign_key_from_private(seeds[i], 32);
        if (!s_signers[i])
            s_die("bad fixed key", NULL);
        s_signer_names[i] = s_orgs[i].org_id;
        pt_sign_key_id(s_signers[i], s_signer_ids[i]);
    }

    static const char *const purposes[] = {"service_provision", "case_transfer", "social_inquiry",
                                           "family_tracing", "reintegration"};
    static const char *const all_types[] = {"*"};
    static const char *const some_types[] = {"referral.*", "tracing.request", "consent.withdraw"};
    static const char *const field_sets[] = {"social_inquiry=inquiry_id,child.name_first,questions",
                                             "service_provision=referral_id"};
    static const char *const one_purpose[] = {"family_tracing"};
    const char *pairs[4][3] = {{FUZZ_AGREEMENT, FUZZ_SENDER, "GT-PGN"},
                               {"AGR-FUZZ-2", FUZZ_SENDER, "XI-ISS"},
                               {"AGR-FUZZ-3", "GT-PGN", "XI-ISS"},
                               {"AGR-FUZZ-OLD", FUZZ_SENDER, "HN-DINAF"}};
    for (size_t i = 0; i < 4; i++) {
        pt_store_agreement_t *a = &s_agreements[i];
        memset(a, 0, sizeof *a);
        snprintf(a->agreement_id, sizeof a->agreement_id, "%s", pairs[i][0]);
        snprintf(a->org_a, sizeof a->org_a, "%s", pairs[i][1]);
        snprintf(a->org_b, sizeof a->org_b, "%s", pairs[i][2]);
        a->purposes = i == 2 ? one_purpose : purposes;
        a->n_purposes = i == 2 ? 1 : sizeof purposes / sizeof purposes[0];
        a->message_types = i == 1 ? some_types : all_types;
        a->n_message_types = i == 1 ? 3 : 1;
        a->valid_from_ms = 1;
        a->valid_until_ms = i == 3 ? FUZZ_EPOCH_MS - 86400000LL : 0; /* ended */
        if (i == 0) {
            a->field_sets = field_sets;
            a->n_field_sets = 2;
        }
    }
    memset(&s_auditor, 0, sizeof s_auditor);
    snprintf(s_auditor.auditor_id, sizeof s_auditor.auditor_id, "AUD1");
    snprintf(s_auditor.scope, sizeof s_auditor.scope, "GT,MX-DIF");
    memcpy(s_auditor.sign_public, s_orgs[1].sign_public, 32);
    pt_sha256((const uint8_t *)"AUD1", 4, s_auditor.curve_public);
    fake_store_directory(s_orgs, 5, s_agreements, 4, &s_auditor, 1);

    memset(&s_config, 0, sizeof s_config);
    s_config.endpoint = "inproc://puente-fuzz-broker";
    s_config.conninfo = "fake";
    s_config.keys_dir = s_keys;
    s_config.sql_dir = "";
    s_config.max_frame_bytes = S_MAX_FRAME;
}

/* --- re-signing ------------------------------------------------------------------- */

/* Times near the seeds' base move with the clock; others stay as they are. */
static int64_t s_shift(int64_t t, int64_t by)
{
    const int64_t decade = 10LL * 365 * 86400000;
    return t > FUZZ_EPOCH_MS - decade && t < FUZZ_EPOCH_MS + decade ? t + by : t;
}

/* The frame repaired as the top comment says, or NULL to take it as it is. by:
   now - FUZZ_EPOCH_MS, the same for the whole input (a frame sent twice is
   repaired to the same bytes). */
static uint8_t *s_resign(const uint8_t *data, size_t len, int64_t by, size_t *out_len)
{
    Puente__V1__ClientFrame *frame = puente__v1__client_frame__unpack(NULL, len, data);
    if (!frame)
        return NULL;
    uint8_t *out = NULL, *header = NULL;
    Puente__V1__Header *h = NULL;
    Puente__V1__Envelope *env = frame->submit;
    if (frame->body_case != PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT || !env || !env->header.len)
        goto done;
    h = puente__v1__header__unpack(NULL, env->header.len, env->header.data);
    if (!h)
        goto done;
    Puente__V1__Header fixed = *h;
    fixed.created_at_ms = s_shift(h->created_at_ms, by);
    fixed.expires_at_ms = s_shift(h->expires_at_ms, by);
    fixed.respond_by_ms = s_shift(h->respond_by_ms, by);
    fixed.follow_up_due_ms = s_shift(h->follow_up_due_ms, by);
    size_t signer = 0;
    for (size_t i = 0; i < S_N_SIGNERS; i++)
        if (h->sender && strcmp(h->sender, s_signer_names[i]) == 0)
            signer = i;
    fixed.sender_key_id = (ProtobufCBinaryData){PT_KEY_ID_BYTES, s_signer_ids[signer]};
    ProtobufCBinaryData digests[64];
    uint8_t sums[64][PT_SHA256_BYTES];
    size_t n = env->n_payloads < 64 ? env->n_payloads : 64;
    for (size_t i = 0; i < n; i++) {
        size_t plen = puente__v1__sealed_payload__get_packed_size(env->payloads[i]);
        uint8_t *packed = malloc(plen ? plen : 1);
        if (!packed)
            goto done;
        puente__v1__sealed_payload__pack(env->payloads[i], packed);
        pt_sha256(packed, plen, sums[i]);
        free(packed);
        digests[i] = (ProtobufCBinaryData){PT_SHA256_BYTES, sums[i]};
    }
    fixed.payload_sha256 = digests;
    fixed.n_payload_sha256 = n;
    size_t hlen = puente__v1__header__get_packed_size(&fixed);
    header = malloc(hlen ? hlen : 1);
    uint8_t sig[PT_ED25519_SIG_BYTES];
    if (!header)
        goto done;
    puente__v1__header__pack(&fixed, header);
    if (pt_sign(s_signers[signer], PT_DOMAIN_HEADER, header, hlen, sig) != 0)
        goto done;
    Puente__V1__Envelope resealed = *env;
    resealed.header = (ProtobufCBinaryData){hlen, header};
    resealed.header_signature = (ProtobufCBinaryData){sizeof sig, sig};
    Puente__V1__ClientFrame reframed = *frame;
    reframed.submit = &resealed;
    *out_len = puente__v1__client_frame__get_packed_size(&reframed);
    out = malloc(*out_len ? *out_len : 1);
    if (out)
        puente__v1__client_frame__pack(&reframed, out);
done:
    free(header);
    if (h)
        puente__v1__header__free_unpacked(h, NULL);
    puente__v1__client_frame__free_unpacked(frame, NULL);
    return out;
}

/* 1 if the frame is an admin request (which may change the broker's directory). */
static int s_is_admin(const uint8_t *data, size_t len)
{
    Puente__V1__ClientFrame *frame = puente__v1__client_frame__unpack(NULL, len, data);
    int admin = frame && frame->body_case == PUENTE__V1__CLIENT_FRAME__BODY_ADMIN;
    if (frame)
        puente__v1__client_frame__free_unpacked(frame, NULL);
    return admin;
}

/* --- the oracle ---------------------------------------------------------------------- */

/* The identities that sent a message in this input. */
static char s_senders[S_MAX_MESSAGES][41];
static size_t s_n_senders;

static const pt_store_org_t *s_directory_org(const char *id)
{
    for (size_t i = 0; i < sizeof s_orgs / sizeof s_orgs[0]; i++)
        if (strcmp(s_orgs[i].org_id, id) == 0)
            return &s_orgs[i];
    return NULL;
}

/* What the stages promise about everything that reaches the store: it came from
   the identity it names, is signed by that organisation's key over the very
   header bytes whose digest is stored, has a registered type, and goes to other
   enabled organisations. admin: the input may have changed the directory (keys,
   organisations), so only the checks that do not depend on it are made. */
static void s_check_stored(int admin)
{
    fake_store_message_t m;
    for (size_t i = 0; fake_store_message_at(i, &m) == 0; i++) {
        size_t k = 0;
        while (k < s_n_senders && strcmp(s_senders[k], m.sender) != 0)
            k++;
        if (k == s_n_senders)
            s_die("stored a message no connection of its sender sent", m.sender);
        if (!pt_types_find(m.message_type))
            s_die("stored a message of an unknown type", m.message_type);
        Puente__V1__Envelope *env = puente__v1__envelope__unpack(NULL, m.envelope_len, m.envelope);
        Puente__V1__Header *h =
            env ? puente__v1__header__unpack(NULL, env->header.len, env->header.data) : NULL;
        uint8_t digest[PT_SHA256_BYTES];
        if (!h || pt_sha256(env->header.data, env->header.len, digest) != 0 ||
            memcmp(digest, m.header_sha256, PT_SHA256_BYTES) != 0 ||
            strcmp(h->sender, m.sender) != 0)
            s_die("stored envelope does not match what was stored about it", m.sender);
        const pt_store_org_t *org = s_directory_org(m.sender);
        if (!admin) {
            pt_sign_key_t *key = org ? pt_sign_key_from_public(org->sign_public, 32) : NULL;
            if (!org || !org->enabled || !key || pt_envelope_verify_header(env, key) != PT_ENV_OK)
                s_die("stored a message its sender's key did not sign", m.sender);
            pt_sign_key_destroy(&key);
            for (size_t r = 0; r < h->n_recipients; r++) {
                const pt_store_org_t *to = s_directory_org(h->recipients[r]);
                if (!to || !to->enabled || strcmp(to->org_id, m.sender) == 0)
                    s_die("stored a message to a recipient that is not a party", h->recipients[r]);
            }
        }
        puente__v1__header__free_unpacked(h, NULL);
        puente__v1__envelope__free_unpacked(env, NULL);
    }
}

/* --- the input ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} s_reader_t;

static int s_byte(s_reader_t *r)
{
    return r->p < r->end ? *r->p++ : -1;
}

/* n bytes (fewer at the end of the input). */
static const uint8_t *s_bytes(s_reader_t *r, size_t n, size_t *got)
{
    size_t left = (size_t)(r->end - r->p);
    *got = n < left ? n : left;
    const uint8_t *at = r->p;
    r->p += *got;
    return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_root[0])
        s_setup();
    if (size < 1)
        return 0;
    s_reader_t r = {data + 1, data + size};
    int mode_bits = data[0] & 3, resign = data[0] & 4;
    int64_t by = pt_now_ms() - FUZZ_EPOCH_MS;
    fake_store_reset(FAKE_STORE_UP);
    if (!s_broker) {
        char err[512];
        volatile sig_atomic_t stop = 0;
        s_broker = pt_broker_new(&s_config, &stop, err, sizeof err);
        if (!s_broker)
            s_die("pt_broker_new", err);
    }
    pt_broker_t *broker = s_broker;
    int admin = 0;
    fake_store_reset(mode_bits == 2   ? FAKE_STORE_DOWN
                     : mode_bits == 3 ? FAKE_STORE_REFUSE
                                      : FAKE_STORE_UP);
    static pt_inbound_t inbound[S_MAX_MESSAGES];
    size_t n = 0, passes = 0;
    s_n_senders = 0;
    /* At most S_MAX_MESSAGES in all (s_senders, inbound), whatever the passes. */
    for (int c; s_n_senders < S_MAX_MESSAGES && (c = s_byte(&r)) >= 0;) {
        if ((c & 0x80) && n > 0 && passes + 1 < S_MAX_PASSES) {
            pt_broker_pass(broker, inbound, n);
            n = 0;
            passes++;
        }
        char identity[41] = "";
        if ((c & 15) == 15) {
            size_t got = 0;
            const uint8_t *text = s_bytes(&r, 40, &got);
            const uint8_t *nul = memchr(text, 0, got);
            if (nul) {
                r.p = nul + 1;
                got = (size_t)(nul - text);
            }
            memcpy(identity, text, got);
            identity[got] = '\0';
        } else
            snprintf(identity, sizeof identity, "%s", s_identities[c & 15]);
        /* As the transport keeps it: at most PT_STORE_ORG_ID_MAX - 1 bytes. */
        snprintf(s_senders[s_n_senders++], PT_STORE_ORG_ID_MAX, "%s", identity);
        int frames = s_byte(&r);
        size_t rid_len = 0;
        int rid_n = s_byte(&r);
        const uint8_t *rid = s_bytes(&r, rid_n < 0 ? 0 : (size_t)rid_n, &rid_len);
        pt_inbound_t *in = &inbound[n++];
        pt_inbound_begin(in, rid, rid_len);
        for (int f = 0; f < (frames < 0 ? 0 : frames % 4); f++) {
            int hi = s_byte(&r), lo = s_byte(&r);
            size_t len = 0;
            const uint8_t *frame = s_bytes(&r, hi < 0 || lo < 0 ? 0 : (size_t)(hi << 8 | lo), &len);
            admin |= f == 0 && s_is_admin(frame, len);
            size_t fixed_len = 0;
            uint8_t *fixed = resign && f == 0 ? s_resign(frame, len, by, &fixed_len) : NULL;
            pt_inbound_add(in, fixed ? fixed : frame, fixed ? fixed_len : len,
                           f == 0 && identity[0] ? identity : NULL, s_config.max_frame_bytes);
            free(fixed);
        }
        pt_inbound_end(in);
    }
    pt_broker_pass(broker, inbound, n);
    s_check_stored(admin);
    if (admin)
        pt_broker_destroy(&s_broker);
    return 0;
}

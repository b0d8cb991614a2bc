/*  itest_keys — key rotation and revocation end to end (issue 6): a real broker and
    PostgreSQL, the `puente` binary for the operator's commands, raw CURVE sockets
    for envelopes signed with former keys, SDK clients for connecting, and the
    metrics endpoint over HTTP.

    Each organisation plays one part:
      MX-DIF    rotates with an overlap: what its old key signs inside the window is
                accepted (also after its agency installed the new keys), the new key
                works, GT-PGN opens both; a SIGHUP picks up a revocation written
                straight into the database (another broker's).
      HN-DINAF  rotates with no overlap: an envelope created before the rotation and
                held back (an outbox) still gets through, one created after it with
                the old key is refused.
      GT-PGN    rotates as a recipient: a message sealed to its old sealing key before
                the rotation is still opened from KEYS/GT-PGN/retired/.
      SV-CONNA  rotates, then revokes the replaced set: what it signs is refused with
                REJECT_UNKNOWN_KEY while others are served, its CURVE key is refused,
                and a message it signed before stays verifiable by `audit verify`.
      US-ORR    revokes its current set: it can neither connect nor be sealed to until
                a rotation.
*/
#include <CUnit/Basic.h>
#include <curl/curl.h> /* curl_global_init: the harness scrapes with libcurl */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "cu_main.h"

static pt_harness_t *s_h;
static const char *s_metrics;
static char s_out[65536], s_err[16384];
static char s_reason[512];

static int s_suite_init(void)
{
    s_h = pt_harness_new_started("keys", &s_metrics);
    return s_h ? 0 : 1;
}

static int s_suite_clean(void)
{
    pt_harness_destroy(&s_h);
    return 0;
}

/* Runs `puente ARGS` (printf-style) with this harness's broker and keys. */
#define s_run(...) pt_harness_cli(s_h, s_out, sizeof s_out, s_err, sizeof s_err, __VA_ARGS__)

static int s_send(const char *from, const char *to, const char *case_token)
{
    static char body[700];
    if (!body[0]) {
        snprintf(body, sizeof body, "%s/referral.json", pt_harness_dir(s_h));
        if (s_run("example referral.request") != 0)
            return -1;
        FILE *f = fopen(body, "w");
        if (!f)
            return -1;
        fputs(s_out, f);
        fclose(f);
    }
    return s_run("send --as %s --to %s --type referral.request --case %s --json '%s'", from, to,
                 case_token, body);
}

/* A sealed, signed referral from sender to recipient with the keys now in the
   harness key directory; created_shift_ms moves its created time. Caller frees. */
static void s_shift(Puente__V1__Header *h, void *arg)
{
    h->created_at_ms += *(int64_t *)arg;
}

static uint8_t *s_envelope(const char *sender, const char *recipient, const char *case_token,
                           int64_t created_shift_ms, size_t *len)
{
    uint8_t *env = NULL;
    *len = 0;
    if (pt_harness_envelope(s_h, sender, recipient, "referral.request", case_token, s_shift,
                            &created_shift_ms, &env, len) != 0)
        return NULL;
    return env;
}

/* Submits env over a raw CURVE socket with the keys of `via` in the harness key
   directory. 0 for a receipt, the reject code (reason in s_reason), or -1 when
   nothing came back within the generous deadline. */
static int s_submit(const char *via, const uint8_t *env, size_t env_len)
{
    s_reason[0] = '\0';
    Puente__V1__Envelope *envelope = env ? puente__v1__envelope__unpack(NULL, env_len, env) : NULL;
    if (!envelope)
        return -1;
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = envelope;
    pt_raw_t *raw = pt_raw_new(s_h, via);
    int rc = -1;
    if (raw && pt_raw_send_frame(raw, &frame) == 0) {
        Puente__V1__BrokerFrame *reply = pt_raw_recv(raw, 15000);
        if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_RECEIPT)
            rc = 0;
        else if (reply && reply->body_case == PUENTE__V1__BROKER_FRAME__BODY_REJECT) {
            rc = reply->reject->code;
            snprintf(s_reason, sizeof s_reason, "%s", reply->reject->reason);
        }
        if (reply)
            puente__v1__broker_frame__free_unpacked(reply, NULL);
    }
    pt_raw_destroy(&raw);
    puente__v1__envelope__free_unpacked(envelope, NULL);
    return rc;
}

/* The signing key id (64 hex digits) of dir/org. */
static void s_key_id(const char *dir, const char *org, char out[65])
{
    char why[256];
    uint8_t id[32];
    out[0] = '\0';
    pt_keyset_t *ks = pt_keyset_load(dir, org, 0, why, sizeof why);
    if (!ks)
        return;
    pt_sign_key_id(pt_keyset_sign(ks), id);
    pt_hex(id, 32, out);
    pt_keyset_destroy(&ks);
}

/* A new key set of org in DIR/<name>/org/ (puente keygen); the directory in out. */
static int s_keygen(const char *org, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", pt_harness_dir(s_h), name);
    return s_run("keygen --org %s --keys %s", org, out);
}

/* Copies the key files of src/ into DIR/<name>/<org>/ plus the broker's public
   keys into DIR/<name>/broker/: a key directory where a former key set is the
   organisation's current one (what someone holding a stolen key would have). */
static int s_key_copy(const char *src, const char *org, const char *name, char *out, size_t cap)
{
    char command[8000], ignored[256];
    snprintf(out, cap, "%s/%s", pt_harness_dir(s_h), name);
    snprintf(command, sizeof command,
             "mkdir -p -m 700 '%s/%s' '%s/broker' && cp -p '%s'/*.key '%s'/*.pub '%s/%s/' && "
             "cp -p '%s'/broker/*.pub '%s/broker/'",
             out, org, out, src, src, out, org, pt_harness_keys(s_h), out);
    return pt_harness_sh(s_h, command, ignored, sizeof ignored, ignored, sizeof ignored);
}

/* Connects as org with the keys in keys_dir: 0 connected, else the SDK's error in s_reason. */
static int s_connect(const char *keys_dir, const char *org)
{
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = keys_dir,
                             .org_id = org,
                             .timeout_ms = 4000};
    pt_client_t *c = pt_client_new(&opts, s_reason, sizeof s_reason);
    int rc = c ? 0 : -1;
    pt_client_destroy(&c);
    return rc;
}

/* How many lines of the broker's log contain text. */
static int s_log_count(const char *text)
{
    return pt_harness_log_count(s_h, text, NULL);
}

/* --- metrics over HTTP --------------------------------------------------------- */

/* The value of one series in the broker's /metrics; -1e9 when absent or unreachable. */
static double s_metric(const char *series)
{
    double value = -1e9;
    return pt_harness_metric_scrape(s_metrics, series, 5000, &value) == 0 ? value : -1e9;
}

/* Polls the series until lo <= value <= hi (the gauges are set once a second);
   the last value seen. */
static double s_metric_wait(const char *series, double lo, double hi)
{
    double v = -1e9;
    for (int waited = 0; waited < 30000; waited += 200) {
        v = s_metric(series);
        if (v >= lo && v <= hi)
            break;
        usleep(200 * 1000);
    }
    return v;
}

/* --- MX-DIF: rotation with an overlap -------------------------------------------- */

static uint8_t *s_mx_old_late; /* signed with MX-DIF's old key, for the SIGHUP test */
static size_t s_mx_old_late_len;

static void test_rotate_with_overlap(void)
{
    char fresh[600], old_id[65], new_id[65];
    s_key_id(pt_harness_keys(s_h), "MX-DIF", old_id);
    /* Signed before the rotation and held back, as in an agency's outbox. */
    size_t early_len = 0;
    uint8_t *early = s_envelope("MX-DIF", "GT-PGN", "CASE-KEY-MX-1", 0, &early_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(early);
    CU_ASSERT_EQUAL_FATAL(s_keygen("MX-DIF", "new-mx", fresh, sizeof fresh), 0);
    s_key_id(fresh, "MX-DIF", new_id);

    CU_ASSERT_EQUAL_FATAL(s_run("key rotate --org MX-DIF --keys-from %s --overlap 1h", fresh), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "rotated the keys of MX-DIF"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "puente key install --org MX-DIF"));
    char id16[17];
    snprintf(id16, sizeof id16, "%.16s", new_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, id16));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM org_keys WHERE org_id = "
                                              "'MX-DIF' AND valid_until IS NULL"),
                    1);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM org_keys WHERE org_id = "
                                              "'MX-DIF' AND valid_until > now() + interval '59 "
                                              "minutes' AND valid_until < now() + interval "
                                              "'61 minutes'"),
                    1);
    /* The rotation is in the trail (and so in the Merkle log). */
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE case_token "
                                              "= 'keys:MX-DIF' AND kind = 'key_rotated'"),
                    1);
    /* Reusing a key set is refused. */
    CU_ASSERT_EQUAL(s_run("key rotate --org MX-DIF --keys-from %s", fresh), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "never reused"));

    /* Inside the window the old key still signs, the old CURVE key still connects:
       the envelope from before the rotation and one created now both pass. */
    CU_ASSERT_EQUAL(s_submit("MX-DIF", early, early_len), 0);
    size_t now_len = 0;
    uint8_t *now_env = s_envelope("MX-DIF", "GT-PGN", "CASE-KEY-MX-2", 0, &now_len);
    CU_ASSERT_EQUAL(s_submit("MX-DIF", now_env, now_len), 0);
    s_mx_old_late = s_envelope("MX-DIF", "GT-PGN", "CASE-KEY-MX-LATE", 0, &s_mx_old_late_len);
    CU_ASSERT_PTR_NOT_NULL(s_mx_old_late);
    free(early);
    free(now_env);

    /* The agency installs the new keys; the former set is kept. */
    CU_ASSERT_EQUAL_FATAL(s_run("key install --org MX-DIF --from %s", fresh), 0);
    char retired[900];
    snprintf(retired, sizeof retired, "%s/MX-DIF/retired/%.16s/seal.key", pt_harness_keys(s_h),
             old_id);
    struct stat st;
    CU_ASSERT_EQUAL(stat(retired, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 077, 0);
    char installed[65];
    s_key_id(pt_harness_keys(s_h), "MX-DIF", installed);
    CU_ASSERT_STRING_EQUAL(installed, new_id);
    /* A second install of the same set is refused. */
    CU_ASSERT_EQUAL(s_run("key install --org MX-DIF --from %s", fresh), 1);

    /* The new key works: through the SDK and the CLI, and in a raw envelope. */
    CU_ASSERT_EQUAL(s_send("MX-DIF", "GT-PGN", "CASE-KEY-MX-3"), 0);
    size_t new_len = 0;
    uint8_t *new_env = s_envelope("MX-DIF", "GT-PGN", "CASE-KEY-MX-4", 0, &new_len);
    CU_ASSERT_EQUAL(s_submit("MX-DIF", new_env, new_len), 0);
    free(new_env);

    /* key list: both sets, the old one in its overlap. */
    CU_ASSERT_EQUAL_FATAL(s_run("key list --org MX-DIF"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "KEY ID"));
    snprintf(id16, sizeof id16, "%.16s", old_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, id16));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "replaced, in overlap"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "current"));
    CU_ASSERT_EQUAL_FATAL(s_run("key list --org MX-DIF --json-output"), 0);
    char json_id[90];
    snprintf(json_id, sizeof json_id, "\"sign_key_id\": \"%s\"", new_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, json_id));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"valid_until_ms\": null"));
}

/* --- HN-DINAF: no overlap; the created time decides ------------------------------- */

static void test_rotate_without_overlap(void)
{
    char fresh[600];
    size_t held_len = 0, late_len = 0;
    uint8_t *held = s_envelope("HN-DINAF", "US-ORR", "CASE-KEY-HN-1", 0, &held_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    CU_ASSERT_EQUAL_FATAL(s_keygen("HN-DINAF", "new-hn", fresh, sizeof fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key rotate --org HN-DINAF --keys-from %s --overlap 0", fresh), 0);
    /* Created after the window ended (it ended at the rotation), old key. */
    uint8_t *late = s_envelope("HN-DINAF", "US-ORR", "CASE-KEY-HN-2", 1000, &late_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(late);
    CU_ASSERT_EQUAL_FATAL(s_run("key install --org HN-DINAF --from %s", fresh), 0);

    /* Over the new connection (the old CURVE key is past its window too). */
    CU_ASSERT_EQUAL(s_submit("HN-DINAF", late, late_len),
                    PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_reason, "replaced"));
    CU_ASSERT_EQUAL(s_submit("HN-DINAF", held, held_len), 0);
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token "
                                              "LIKE 'CASE-KEY-HN-%'"),
                    1);
    CU_ASSERT_EQUAL(s_send("HN-DINAF", "US-ORR", "CASE-KEY-HN-3"), 0);
    free(held);
    free(late);
}

/* --- GT-PGN: the recipient rotates; old sealed messages still open ---------------- */

static void test_recipient_rotation(void)
{
    /* Sealed to GT-PGN's current (soon old) sealing key and queued. */
    CU_ASSERT_EQUAL_FATAL(s_send("MX-DIF", "GT-PGN", "CASE-KEY-GT-OLD"), 0);
    char fresh[600];
    CU_ASSERT_EQUAL_FATAL(s_keygen("GT-PGN", "new-gt", fresh, sizeof fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key rotate --org GT-PGN --keys-from %s", fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key install --org GT-PGN --from %s", fresh), 0);
    /* Senders now seal to the new key. */
    CU_ASSERT_EQUAL_FATAL(s_send("MX-DIF", "GT-PGN", "CASE-KEY-GT-NEW"), 0);
    /* GT-PGN, with its new keys, receives everything: sealed to its old and new keys,
       signed by MX-DIF's old key (inside its window) and new key. */
    CU_ASSERT_EQUAL(s_run("recv --as GT-PGN --timeout 5s --json-output"), 0);
    const char *cases[] = {"CASE-KEY-MX-1", "CASE-KEY-MX-2",   "CASE-KEY-MX-3",
                           "CASE-KEY-MX-4", "CASE-KEY-GT-OLD", "CASE-KEY-GT-NEW"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"%s\"", cases[i]);
        if (!strstr(s_out, want))
            fprintf(stderr, "\nnot received: %s\n%s", cases[i], s_err);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_out, want));
    }
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM deliveries WHERE recipient = "
                                              "'GT-PGN' AND state <> 'acked'"),
                    0);
}

/* --- SV-CONNA: a replaced set turns out compromised ------------------------------- */

static char s_sv_retired[900];

static void test_revoke_replaced_set(void)
{
    char old_id[65], fresh[600], stolen[600];
    s_key_id(pt_harness_keys(s_h), "SV-CONNA", old_id);
    /* Stored before the revocation: must stay verifiable. */
    CU_ASSERT_EQUAL_FATAL(s_send("SV-CONNA", "GT-PGN", "CASE-KEY-SV-1"), 0);
    size_t held_len = 0;
    uint8_t *held = s_envelope("SV-CONNA", "GT-PGN", "CASE-KEY-SV-2", 0, &held_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    CU_ASSERT_EQUAL_FATAL(s_keygen("SV-CONNA", "new-sv", fresh, sizeof fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key rotate --org SV-CONNA --keys-from %s", fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key install --org SV-CONNA --from %s", fresh), 0);
    snprintf(s_sv_retired, sizeof s_sv_retired, "%s/SV-CONNA/retired/%.16s", pt_harness_keys(s_h),
             old_id);
    /* Whoever holds the old set can connect during the overlap... */
    CU_ASSERT_EQUAL_FATAL(s_key_copy(s_sv_retired, "SV-CONNA", "stolen-sv", stolen, sizeof stolen),
                          0);
    CU_ASSERT_EQUAL(s_connect(stolen, "SV-CONNA"), 0);
    /* and one such connection stays open, receiving for SV-CONNA. */
    char err[256] = "";
    pt_client_opts_t opts = {.endpoint = pt_harness_endpoint(s_h),
                             .keys_dir = stolen,
                             .org_id = "SV-CONNA",
                             .receive = 1,
                             .timeout_ms = 10000};
    pt_client_t *open_conn = pt_client_new(&opts, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(open_conn);
    int evicted = s_log_count("stopped delivering to a connection of SV-CONNA");

    /* ...until the old set is revoked. */
    CU_ASSERT_EQUAL(s_run("key revoke --org SV-CONNA --key-id %.16s", old_id), 1); /* no reason */
    CU_ASSERT_EQUAL(s_run("key revoke --org SV-CONNA --key-id 00000000 --reason test"), 2);
    CU_ASSERT_EQUAL_FATAL(s_run("key revoke --org SV-CONNA --key-id %.16s --reason "
                                "'backup tape of the old key lost'",
                                old_id),
                          0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "revoked key set"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "REJECT_UNKNOWN_KEY"));
    CU_ASSERT_PTR_NULL(strstr(s_out, "cannot send or connect")); /* not the current set */
    /* The connection opened before: no more deliveries, nothing it sends is served. */
    CU_ASSERT_EQUAL(s_log_count("stopped delivering to a connection of SV-CONNA"), evicted + 1);
    CU_ASSERT_EQUAL(pt_client_directory_refresh(open_conn, NULL, 0), PT_CLIENT_REJECTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(open_conn), "REJECT_UNAUTHENTICATED"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pt_client_error(open_conn), "revoked"));
    pt_client_destroy(&open_conn);

    /* Signed with the revoked key: refused with UNKNOWN_KEY, the reason says revoked. */
    CU_ASSERT_EQUAL(s_submit("SV-CONNA", held, held_len),
                    PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_reason, "revoked"));
    /* Meanwhile the others are served, SV-CONNA too with its current key. */
    CU_ASSERT_EQUAL(s_send("MX-DIF", "GT-PGN", "CASE-KEY-SV-3"), 0);
    CU_ASSERT_EQUAL(s_send("SV-CONNA", "GT-PGN", "CASE-KEY-SV-4"), 0);
    /* ZAP refuses the revoked CURVE key. */
    CU_ASSERT_NOT_EQUAL(s_connect(stolen, "SV-CONNA"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_reason, "refused the CURVE key"));
    CU_ASSERT_EQUAL(s_connect(pt_harness_keys(s_h), "SV-CONNA"), 0);

    CU_ASSERT_EQUAL_FATAL(s_run("key list --org SV-CONNA"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "revoked"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "backup tape of the old key lost"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM case_events WHERE case_token "
                                              "= 'keys:SV-CONNA' AND kind = 'key_revoked'"),
                    1);
    free(held);
}

/* --- US-ORR: the current set is revoked ------------------------------------------- */

static void test_revoke_current_set(void)
{
    CU_ASSERT_EQUAL_FATAL(s_connect(pt_harness_keys(s_h), "US-ORR"), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key revoke --org US-ORR --reason 'server compromised'"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "US-ORR cannot send or connect until"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "puente key rotate --org US-ORR"));
    /* Its keys no longer connect... */
    CU_ASSERT_NOT_EQUAL(s_connect(pt_harness_keys(s_h), "US-ORR"), 0);
    /* ...nothing is sealed to it: the SDK leaves it out of the directory, and the
       broker refuses what a stale directory sealed to the revoked key. */
    CU_ASSERT_EQUAL(s_send("HN-DINAF", "US-ORR", "CASE-KEY-US-1"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err, "revoked"));
    /* A raw envelope needs the recipient's public key from the key directory. */
    size_t len = 0;
    uint8_t *stale = s_envelope("HN-DINAF", "US-ORR", "CASE-KEY-US-2", 0, &len);
    CU_ASSERT_EQUAL(s_submit("HN-DINAF", stale, len), PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_reason, "sealed to a revoked key"));
    free(stale);
    /* The metric shows it (days since the revocation: <= 0). */
    CU_ASSERT(s_metric_wait("puente_key_expiry_days{org=\"US-ORR\"}", -1, 0) <= 0);

    /* A rotation brings it back. */
    char fresh[600];
    CU_ASSERT_EQUAL_FATAL(s_keygen("US-ORR", "new-us", fresh, sizeof fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key rotate --org US-ORR --keys-from %s", fresh), 0);
    CU_ASSERT_EQUAL_FATAL(s_run("key install --org US-ORR --from %s", fresh), 0);
    CU_ASSERT_EQUAL(s_connect(pt_harness_keys(s_h), "US-ORR"), 0);
    CU_ASSERT_EQUAL(s_send("HN-DINAF", "US-ORR", "CASE-KEY-US-3"), 0);
    CU_ASSERT_EQUAL(s_send("US-ORR", "HN-DINAF", "CASE-KEY-US-4"), 0);
    double days = s_metric_wait("puente_key_expiry_days{org=\"US-ORR\"}", 364.9, 365.0);
    CU_ASSERT(days >= 364.9 && days <= 365.0);
}

/* --- metrics ------------------------------------------------------------------------ */

static void test_expiry_metric(void)
{
    /* key_rotation_days is 365 by default; every current set was registered minutes ago. */
    for (int i = 0; i < 5; i++) {
        char series[96];
        snprintf(series, sizeof series, "puente_key_expiry_days{org=\"%s\"}", pt_harness_orgs[i]);
        double days = s_metric_wait(series, 364.9, 365.0);
        CU_ASSERT(days >= 364.9 && days <= 365.0);
    }
}

/* --- SIGHUP: a revocation written by another broker ----------------------------------- */

static void test_sighup_reload(void)
{
    /* Before: MX-DIF's old key is inside its window. Revoke it in the database only
       (another broker's change), then SIGHUP. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s_mx_old_late);
    CU_ASSERT_EQUAL_FATAL(
        pt_harness_sql_exec(s_h, NULL,
                            "UPDATE org_keys SET revoked_at = now(), "
                            "revoke_reason = 'revoked elsewhere' "
                            "WHERE org_id = 'MX-DIF' AND valid_until IS NOT NULL"),
        0);
    /* Submitting before the reload would store it (the broker still holds the old
       window), so wait for the broker to log the reload first. */
    int reloads = s_log_count("reloaded the directory");
    CU_ASSERT_EQUAL_FATAL(kill(pt_harness_broker_pid(s_h), SIGHUP), 0);
    for (int waited = 0; waited < 30000 && s_log_count("reloaded the directory") == reloads;
         waited += 100)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL_FATAL(s_log_count("reloaded the directory"), reloads + 1);
    CU_ASSERT_EQUAL(s_submit("MX-DIF", s_mx_old_late, s_mx_old_late_len),
                    PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_reason, "revoked"));
    CU_ASSERT_EQUAL(s_send("MX-DIF", "HN-DINAF", "CASE-KEY-HUP"), 0);
    free(s_mx_old_late);
    s_mx_old_late = NULL;
    /* The history only narrows: a revocation cannot be undone in the database. */
    CU_ASSERT_NOT_EQUAL(pt_harness_sql_exec(s_h, NULL,
                                            "UPDATE org_keys SET revoked_at = NULL, "
                                            "revoke_reason = NULL WHERE org_id = 'MX-DIF'"),
                        0);
}

/* --- audit verify: old signatures stay checkable ----------------------------------- */

static void test_audit_verify(void)
{
    /* A clean shutdown signs a checkpoint of everything. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_stop(s_h, SIGTERM), 0);
    /* Stored messages signed with since-replaced (MX-DIF, HN-DINAF) and since-revoked
       (SV-CONNA, US-ORR) keys all verify. */
    CU_ASSERT_EQUAL(s_run("audit verify --db '%s' --json", pt_harness_conninfo(s_h)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"ok\": true"));
    CU_ASSERT_EQUAL(pt_harness_sql_count(s_h, "SELECT count(*) FROM messages WHERE case_token "
                                              "= 'CASE-KEY-SV-1'"),
                    1);
    char bundle[700];
    snprintf(bundle, sizeof bundle, "%s/sv1.json", pt_harness_dir(s_h));
    CU_ASSERT_EQUAL(s_run("audit export --case CASE-KEY-SV-1 --db '%s' --out %s",
                          pt_harness_conninfo(s_h), bundle),
                    0);
    CU_ASSERT_EQUAL(s_run("audit verify --bundle %s", bundle), 0);
    /* A message recorded as signed after its key's revocation is named. */
    CU_ASSERT_EQUAL_FATAL(pt_harness_sql_exec(s_h, NULL,
                                              "UPDATE org_keys SET revoked_at = "
                                              "(SELECT min(stored_at) FROM messages WHERE "
                                              "case_token = 'CASE-KEY-SV-1') - interval '1 "
                                              "minute' WHERE org_id = 'SV-CONNA' AND revoked_at "
                                              "IS NOT NULL"),
                          0);
    CU_ASSERT_EQUAL(s_run("audit verify --db '%s'", pt_harness_conninfo(s_h)), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "revoked"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("keys", s_suite_init, s_suite_clean);
    CU_add_test(s, "rotate with an overlap: old key inside the window, new key, key list",
                test_rotate_with_overlap);
    CU_add_test(s, "rotate without overlap: created after the window is refused",
                test_rotate_without_overlap);
    CU_add_test(s, "recipient rotation: old sealed messages still open", test_recipient_rotation);
    CU_add_test(s, "revoke a replaced set: refused, others served, ZAP refuses",
                test_revoke_replaced_set);
    CU_add_test(s, "revoke the current set: no sending, no sealing, until a rotate",
                test_revoke_current_set);
    CU_add_test(s, "puente_key_expiry_days over HTTP", test_expiry_metric);
    CU_add_test(s, "SIGHUP picks up a revocation made elsewhere", test_sighup_reload);
    CU_add_test(s, "audit verify keeps old signatures verifiable", test_audit_verify);
    int status = pt_cu_main();
    curl_global_cleanup();
    return status;
}

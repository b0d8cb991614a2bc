#!/usr/bin/env bash
# bench/audit_verify.sh — how long `puente audit verify --db` takes on a log of
# BENCH_AUDIT_EVENTS case events (default 1 000 000). Starts a private PostgreSQL 15,
# generates the events through the store API directly (broker/store.h, no sockets):
# one real signed and sealed referral per 3 events (submitted, stored,
# acknowledged), committed in batches as the broker's group commit does, the Merkle
# log filled by the 006 trigger, a signed checkpoint every 100 000 leaves and at the
# end. Then times the verifier (every chain, every leaf, the root at every
# checkpoint, every checkpoint and header signature). Prints the figures and writes
# bench/results/<date>-<host>-audit-verify.txt.
#   needs: make (build/libptbroker.a, build/libptproto.a, build/puente)
set -euo pipefail
cd "$(dirname "$0")/.."

events=${BENCH_AUDIT_EVENTS:-1000000}
build=${BUILD:-build}
[ -f "$build/libptbroker.a" ] && [ -f "$build/libptproto.a" ] && [ -x "$build/puente" ] ||
    { echo "bench: run 'make' first" >&2; exit 1; }

tmp=$(mktemp -d /tmp/puente-bench-audit.XXXXXX)
cleanup() {
    tests/lib/pgcluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$candidate) 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "bench: no free port" >&2; exit 1; }
conninfo=$(tests/lib/pgcluster.sh start "$tmp/pg" "$port" | tail -n 1)
psql "$conninfo" -q -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null

# The generator: C against the broker's store and the proto library.
cat >"$tmp/gen.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_progress.h"
#include "envelope.pb-c.h"
#include "pt_audit.h"
#include "pt_crypto.h"
#include "pt_envelope.h"
#include "pt_keys.h"
#include "store.h"

#define BATCH 500

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Version 2 checkpoints (pt_audit.h): seq 1, 2, ..., each linked to the previous. */
static uint64_t s_cp_seq;
static uint8_t s_cp_hash[32];

static int s_checkpoint(pt_store_t *store, const pt_sign_key_t *broker)
{
    pt_store_checkpoint_t cp;
    memset(&cp, 0, sizeof cp);
    if (pt_store_audit_root(store, &cp.tree_size, cp.root) != PT_STORE_OK)
        return -1;
    cp.at_ms = pt_now_ms();
    cp.seq = s_cp_seq + 1;
    memcpy(cp.prev_hash, s_cp_hash, 32);
    pt_audit_checkpoint_t signed_cp = {.seq = cp.seq, .tree_size = cp.tree_size, .at_ms = cp.at_ms};
    memcpy(signed_cp.root, cp.root, 32);
    memcpy(signed_cp.prev_hash, cp.prev_hash, 32);
    pt_sign_key_public(broker, cp.signer);
    if (pt_audit_checkpoint2_sign(broker, &signed_cp, cp.signature) != 0 ||
        pt_store_checkpoint_put(store, &cp) != PT_STORE_OK)
        return -1;
    s_cp_seq = cp.seq;
    pt_audit_checkpoint2_hash(&signed_cp, cp.signature, s_cp_hash);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    const char *conninfo = argv[1], *sql_dir = argv[2], *keys_dir = argv[3];
    long messages = atol(argv[4]) / 3;
    char err[256];
    pt_store_t *store = pt_store_new(conninfo, err, sizeof err);
    if (!store || pt_store_migrate(store, sql_dir, err, sizeof err) != 0) {
        fprintf(stderr, "gen: %s\n", err);
        return 1;
    }
    pt_keyset_t *broker = pt_keyset_generate("broker");
    pt_keyset_t *mx = pt_keyset_generate("MX-DIF"), *gt = pt_keyset_generate("GT-PGN");
    if (!broker || !mx || !gt || pt_keyset_save(broker, keys_dir) != 0)
        return 1;
    pt_keyset_t *orgs[2] = {mx, gt};
    for (int i = 0; i < 2; i++) {
        pt_store_org_t org;
        memset(&org, 0, sizeof org);
        snprintf(org.org_id, sizeof org.org_id, "%s", pt_keyset_org(orgs[i]));
        pt_sign_key_public(pt_keyset_sign(orgs[i]), org.sign_public);
        pt_seal_key_public(pt_keyset_seal(orgs[i]), org.seal_public);
        memcpy(org.curve_public, pt_keyset_curve_public(orgs[i]), 32);
        org.enabled = 1;
        if (pt_store_org_put(store, &org) != PT_STORE_OK)
            return 1;
    }
    static pt_submission_t subs[BATCH];
    static pt_store_receipt_t receipts[BATCH];
    static uint8_t ids[BATCH][16], corr[BATCH][16], sha[BATCH][32];
    static uint8_t *envs[BATCH];
    static size_t env_len[BATCH];
    static char tokens[BATCH][32];
    static pt_store_ack_item_t acks[BATCH];
    const char *recipients[1] = {"GT-PGN"};
    const pt_seal_key_t *seal[1] = {pt_keyset_seal(gt)};
    uint8_t body[64];
    memset(body, 'x', sizeof body);
    double start = s_now(), sealing = 0;
    long done = 0, next_checkpoint = 100000;
    /* Messages stored so far, on stderr while it is a terminal. */
    cli_progress_t *line = cli_progress_new("gen: messages", (uint64_t)messages, stderr,
                                            cli_progress_wanted(stderr, 0), NULL, NULL);
    while (done < messages) {
        cli_progress_update(line, (uint64_t)done);
        size_t n = (size_t)(messages - done < BATCH ? messages - done : BATCH);
        double t0 = s_now();
        for (size_t i = 0; i < n; i++) {
            pt_uuidv7(ids[i]);
            pt_uuidv7(corr[i]);
            snprintf(tokens[i], sizeof tokens[i], "CASE-B-%ld", (done + (long)i) / 3);
            Puente__V1__Header h = PUENTE__V1__HEADER__INIT;
            h.message_id = (ProtobufCBinaryData){16, ids[i]};
            h.correlation_id = (ProtobufCBinaryData){16, corr[i]};
            h.message_type = "referral.request";
            h.sender = "MX-DIF";
            h.recipients = (char **)recipients;
            h.n_recipients = 1;
            h.created_at_ms = pt_now_ms();
            h.purpose = "service_provision";
            h.case_token = tokens[i];
            free(envs[i]);
            envs[i] = NULL;
            if (pt_envelope_seal(&h, body, sizeof body, pt_keyset_sign(mx), seal, 1, &envs[i],
                                 &env_len[i]) != PT_ENV_OK)
                return 1;
            Puente__V1__Envelope *e = puente__v1__envelope__unpack(NULL, env_len[i], envs[i]);
            pt_sha256(e->header.data, e->header.len, sha[i]);
            puente__v1__envelope__free_unpacked(e, NULL);
            subs[i] = (pt_submission_t){.message_id = ids[i], .correlation_id = corr[i],
                                        .message_type = "referral.request", .sender = "MX-DIF",
                                        .recipients = recipients, .n_recipients = 1,
                                        .case_token = tokens[i], .purpose = "service_provision",
                                        .created_at_ms = h.created_at_ms,
                                        .header_sha256 = sha[i], .envelope = envs[i],
                                        .envelope_len = env_len[i]};
        }
        sealing += s_now() - t0;
        if (pt_store_submit_batch(store, subs, n, receipts) != PT_STORE_OK) {
            cli_progress_done(&line);
            fprintf(stderr, "gen: submit: %s\n", pt_store_last_error(store));
            return 1;
        }
        /* The recipient's acknowledgement: the third event of each message. */
        for (size_t i = 0; i < n; i++) {
            acks[i].recipient = "GT-PGN";
            memcpy(acks[i].message_id, ids[i], 16);
        }
        if (pt_store_ack_batch(store, acks, n, pt_now_ms()) != PT_STORE_OK) {
            cli_progress_done(&line);
            fprintf(stderr, "gen: ack: %s\n", pt_store_last_error(store));
            return 1;
        }
        done += (long)n;
        uint64_t size;
        uint8_t root[32];
        if (pt_store_audit_root(store, &size, root) == PT_STORE_OK && (long)size >= next_checkpoint) {
            s_checkpoint(store, pt_keyset_sign(broker));
            next_checkpoint += 100000;
        }
    }
    cli_progress_done(&line);
    s_checkpoint(store, pt_keyset_sign(broker));
    uint64_t size;
    uint8_t root[32];
    pt_store_audit_root(store, &size, root);
    double total = s_now() - start;
    printf("generated %ld messages, %llu events in %.1f s (%.1f s sealing; %.0f events/s stored)\n",
           messages, (unsigned long long)size, total, sealing,
           (double)size / (total - sealing));
    for (size_t i = 0; i < BATCH; i++)
        free(envs[i]);
    pt_keyset_destroy(&broker);
    pt_keyset_destroy(&mx);
    pt_keyset_destroy(&gt);
    pt_store_destroy(&store);
    return 0;
}
EOF
cc -std=c11 -D_GNU_SOURCE -O2 -I"$build/gen" -Iproto -Ibroker -Iadapters/cli -I"$(pg_config --includedir)" \
    -o "$tmp/gen" "$tmp/gen.c" adapters/cli/cli_progress.c "$build/libptbroker.a" "$build/libptproto.a" \
    -lzmq -lprotobuf-c -lpq -lssl -lcrypto -ljansson -pthread

mkdir -p "$tmp/keys"
gen_out=$("$tmp/gen" "$conninfo" broker/sql "$tmp/keys" "$events")
echo "$gen_out"

start=$(date +%s.%N)
rc=0
verify_out=$("$build/puente" audit verify --db "$conninfo" --broker-key "$tmp/keys/broker/sign.pub") || rc=$?
end=$(date +%s.%N)
echo "$verify_out"
seconds=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
summary="audit verify: ${events} events requested; exit ${rc}; ${seconds} s wall clock"
echo "$summary"

mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$(hostname -s)-audit-verify.txt"
{ echo "$gen_out"; echo "$verify_out"; echo "$summary"; } >"$out"
echo "written to $out"
exit $rc

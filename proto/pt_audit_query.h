/*  pt_audit_query — the bytes an auditor signs for an AuditQuery (issue 4), shared
    by the SDK (which signs) and the broker (which verifies):
        be64(request_id) || be64(signed_at_ms) || lp16(nonce) || lp16(kind) ||
        lp16(case_token) || lp16(org_id) || be64(from_ms) || be64(until_ms) ||
        lp16(lifecycle_kind) || lp16(state) || be64(older_than_ms) ||
        be32(limit) || lp16(after)
    where lp16(x) = be16(len(x)) || x, signed with the domain PT_DOMAIN_AUDIT_QUERY
    (pt_sign adds "puente.v1 audit-query" || 0x00). docs/protocol.md "Auditor
    queries" documents the same.
*/
#ifndef PT_AUDIT_QUERY_H
#define PT_AUDIT_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "pt_crypto.h"

#define PT_DOMAIN_AUDIT_QUERY "puente.v1 audit-query"
#define PT_AUDIT_QUERY_SIGNED_MAX 1024
#define PT_AUDIT_QUERY_NONCE_BYTES 16
/* The broker refuses a signed_at_ms further than this from its clock. */
#define PT_AUDIT_QUERY_WINDOW_MS (5 * 60 * 1000)

/* Writes the signed bytes of q into out. Returns their length, or 0 if a field
   is too long for cap (hostile input: every length checked). */
size_t pt_audit_query_signed_bytes(const Puente__V1__AuditQuery *q, uint8_t *out, size_t cap);

/* Sets q->signed_at_ms = now_ms, a fresh random nonce (into nonce_buf, which
   q->nonce then borrows) and the signature (into sig_buf, borrowed by
   q->signature) by the auditor's key. 0 or -1. */
int pt_audit_query_sign(const pt_sign_key_t *auditor, Puente__V1__AuditQuery *q, int64_t now_ms,
                        uint8_t nonce_buf[PT_AUDIT_QUERY_NONCE_BYTES],
                        uint8_t sig_buf[PT_ED25519_SIG_BYTES]);

/* Verifies q->signature by the auditor's key. 0 if valid, -1 otherwise (also
   when unsigned or the nonce is not 16 bytes). */
int pt_audit_query_verify(const pt_sign_key_t *auditor, const Puente__V1__AuditQuery *q);

#endif

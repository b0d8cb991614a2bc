/*  pt_audit_query — see pt_audit_query.h. */
#include "pt_audit_query.h"

#include <string.h>

static int s_put_bytes(uint8_t *out, size_t cap, size_t *at, const void *data, size_t len)
{
    if (len > 0xFFFF || *at + 2 + len > cap)
        return -1;
    out[(*at)++] = (uint8_t)(len >> 8);
    out[(*at)++] = (uint8_t)len;
    if (len)
        memcpy(out + *at, data, len);
    *at += len;
    return 0;
}

static int s_put_str(uint8_t *out, size_t cap, size_t *at, const char *str)
{
    return s_put_bytes(out, cap, at, str, str ? strlen(str) : 0);
}

static int s_put_u(uint8_t *out, size_t cap, size_t *at, uint64_t v, int bytes)
{
    if (*at + (size_t)bytes > cap)
        return -1;
    for (int i = bytes - 1; i >= 0; i--)
        out[(*at)++] = (uint8_t)(v >> (8 * i));
    return 0;
}

size_t pt_audit_query_signed_bytes(const Puente__V1__AuditQuery *q, uint8_t *out, size_t cap)
{
    size_t at = 0;
    if (!q || !out)
        return 0;
    if (s_put_u(out, cap, &at, q->request_id, 8) ||
        s_put_u(out, cap, &at, (uint64_t)q->signed_at_ms, 8) ||
        s_put_bytes(out, cap, &at, q->nonce.data, q->nonce.len) ||
        s_put_str(out, cap, &at, q->kind) || s_put_str(out, cap, &at, q->case_token) ||
        s_put_str(out, cap, &at, q->org_id) || s_put_u(out, cap, &at, (uint64_t)q->from_ms, 8) ||
        s_put_u(out, cap, &at, (uint64_t)q->until_ms, 8) ||
        s_put_str(out, cap, &at, q->lifecycle_kind) || s_put_str(out, cap, &at, q->state) ||
        s_put_u(out, cap, &at, (uint64_t)q->older_than_ms, 8) ||
        s_put_u(out, cap, &at, q->limit, 4) || s_put_str(out, cap, &at, q->after))
        return 0;
    return at;
}

int pt_audit_query_sign(const pt_sign_key_t *auditor, Puente__V1__AuditQuery *q, int64_t now_ms,
                        uint8_t nonce_buf[PT_AUDIT_QUERY_NONCE_BYTES],
                        uint8_t sig_buf[PT_ED25519_SIG_BYTES])
{
    uint8_t bytes[PT_AUDIT_QUERY_SIGNED_MAX];
    if (!auditor || !q || pt_random(nonce_buf, PT_AUDIT_QUERY_NONCE_BYTES) != 0)
        return -1;
    q->signed_at_ms = now_ms;
    q->nonce = (ProtobufCBinaryData){PT_AUDIT_QUERY_NONCE_BYTES, nonce_buf};
    size_t len = pt_audit_query_signed_bytes(q, bytes, sizeof bytes);
    if (len == 0 || pt_sign(auditor, PT_DOMAIN_AUDIT_QUERY, bytes, len, sig_buf) != 0)
        return -1;
    q->signature = (ProtobufCBinaryData){PT_ED25519_SIG_BYTES, sig_buf};
    return 0;
}

int pt_audit_query_verify(const pt_sign_key_t *auditor, const Puente__V1__AuditQuery *q)
{
    uint8_t bytes[PT_AUDIT_QUERY_SIGNED_MAX];
    if (!auditor || !q || q->nonce.len != PT_AUDIT_QUERY_NONCE_BYTES ||
        q->signature.len != PT_ED25519_SIG_BYTES)
        return -1;
    size_t len = pt_audit_query_signed_bytes(q, bytes, sizeof bytes);
    if (len == 0)
        return -1;
    return pt_verify(auditor, PT_DOMAIN_AUDIT_QUERY, bytes, len, q->signature.data,
                     q->signature.len);
}

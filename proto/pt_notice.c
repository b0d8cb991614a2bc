/*  pt_notice — see pt_notice.h. */
#include "pt_notice.h"

#include <string.h>

static int s_notice_put_str(uint8_t *out, size_t cap, size_t *at, const char *str)
{
    size_t len = str ? strlen(str) : 0;
    if (len > 0xFFFF || *at + 2 + len > cap)
        return -1;
    out[(*at)++] = (uint8_t)(len >> 8);
    out[(*at)++] = (uint8_t)len;
    if (len)
        memcpy(out + *at, str, len);
    *at += len;
    return 0;
}

static void s_notice_put_u64(uint8_t *out, size_t *at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[(*at)++] = (uint8_t)(v >> (56 - 8 * i));
}

size_t pt_notice_signed_bytes(const Puente__V1__Notice *n, uint8_t *out, size_t cap)
{
    size_t at = 0;
    if (n->correlation_id.len != 16 || cap < 8)
        return 0;
    s_notice_put_u64(out, &at, n->notice_id);
    if (s_notice_put_str(out, cap, &at, n->kind) || s_notice_put_str(out, cap, &at, n->case_token))
        return 0;
    if (at + 16 > cap)
        return 0;
    memcpy(out + at, n->correlation_id.data, 16);
    at += 16;
    if (s_notice_put_str(out, cap, &at, n->message_type) || at + 16 > cap)
        return 0;
    s_notice_put_u64(out, &at, (uint64_t)n->due_at_ms);
    s_notice_put_u64(out, &at, (uint64_t)n->created_at_ms);
    return at;
}

int pt_notice_sign(const pt_sign_key_t *broker, const Puente__V1__Notice *n,
                   uint8_t sig[PT_ED25519_SIG_BYTES])
{
    uint8_t bytes[PT_NOTICE_SIGNED_MAX];
    size_t len = pt_notice_signed_bytes(n, bytes, sizeof bytes);
    if (len == 0)
        return -1;
    return pt_sign(broker, PT_DOMAIN_NOTICE, bytes, len, sig);
}

int pt_notice_verify(const pt_sign_key_t *broker, const Puente__V1__Notice *n)
{
    uint8_t bytes[PT_NOTICE_SIGNED_MAX];
    if (!broker || !n)
        return -1;
    size_t len = pt_notice_signed_bytes(n, bytes, sizeof bytes);
    if (len == 0)
        return -1;
    return pt_verify(broker, PT_DOMAIN_NOTICE, bytes, len, n->broker_signature.data,
                     n->broker_signature.len) == 0
               ? 0
               : -1;
}

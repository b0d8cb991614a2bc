/*  pt_trail — case trail hash chain (format in pt_trail.h). */
#include "pt_trail.h"

#include <string.h>

#include <openssl/evp.h>

/* Domain separation: the NUL is part of the hashed prefix (see pt_trail.h). */
static const char s_domain[] = "puente.v1 event";

static void s_be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static void s_be64(uint8_t out[8], uint64_t v)
{
    s_be32(out, (uint32_t)(v >> 32));
    s_be32(out + 4, (uint32_t)v);
}

/* lp(x) = be32(len) || x. A length that does not fit 32 bits cannot be encoded. */
static int s_update_lp(EVP_MD_CTX *ctx, const void *data, size_t len)
{
    uint8_t prefix[4];
    if (len > UINT32_MAX || (len > 0 && data == NULL))
        return -1;
    s_be32(prefix, (uint32_t)len);
    if (EVP_DigestUpdate(ctx, prefix, sizeof prefix) != 1)
        return -1;
    if (len > 0 && EVP_DigestUpdate(ctx, data, len) != 1)
        return -1;
    return 0;
}

/* Optional text fields (actor, counterparty, message_type) hash NULL as "". */
static int s_update_str(EVP_MD_CTX *ctx, const char *s)
{
    return s_update_lp(ctx, s, s ? strlen(s) : 0);
}

int pt_trail_hash(const uint8_t prev_hash[PT_TRAIL_HASH_BYTES], const pt_trail_event_t *ev,
                  uint8_t out[PT_TRAIL_HASH_BYTES])
{
    EVP_MD_CTX *ctx = NULL;
    uint8_t num[16];
    unsigned int out_len = 0;

    /* kind and case_token identify the event and its chain: they are required. */
    if (!prev_hash || !ev || !out || !ev->kind || !ev->case_token)
        goto error;
    if (ev->detail_len > 0 && !ev->detail)
        goto error;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        goto error;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto error;
    if (EVP_DigestUpdate(ctx, s_domain, sizeof s_domain) != 1)   /* includes the 0x00 */
        goto error;
    if (EVP_DigestUpdate(ctx, prev_hash, PT_TRAIL_HASH_BYTES) != 1)
        goto error;
    s_be64(num, ev->seq);
    s_be64(num + 8, (uint64_t)ev->at_ms);
    if (EVP_DigestUpdate(ctx, num, sizeof num) != 1)
        goto error;
    if (s_update_str(ctx, ev->kind) || s_update_str(ctx, ev->case_token) ||
        s_update_str(ctx, ev->actor) || s_update_str(ctx, ev->counterparty) ||
        s_update_str(ctx, ev->message_type))
        goto error;
    /* A NULL message id is lp("") (4 zero bytes), distinct from any 16-byte id. */
    if (s_update_lp(ctx, ev->message_id, ev->message_id ? 16 : 0))
        goto error;
    if (s_update_lp(ctx, ev->detail, ev->detail_len))
        goto error;
    if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1 || out_len != PT_TRAIL_HASH_BYTES)
        goto error;
    EVP_MD_CTX_free(ctx);
    return 0;

error:
    EVP_MD_CTX_free(ctx);
    if (out)
        memset(out, 0, PT_TRAIL_HASH_BYTES);
    return -1;
}

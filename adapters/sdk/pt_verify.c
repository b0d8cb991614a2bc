/*  pt_verify — checks of what the broker signs for clients: the key directory and
    receipts. A client trusts nothing else the broker says about keys. */
#include <string.h>

#include "pt_receipt.h"
#include "pt_sdk_internal.h"
#include "puente.h"

int puente_directory_verify(const Puente__V1__DirectoryReply *reply, const pt_sign_key_t *broker,
                            Puente__V1__DirectoryEntries **entries_p)
{
    if (!reply || !broker || !entries_p)
        return -1;
    *entries_p = NULL;
    if (!reply->entries.data && reply->entries.len > 0)
        return -1;
    if (pt_verify(broker, PT_DOMAIN_DIRECTORY, reply->entries.data, reply->entries.len,
                  reply->signature.data, reply->signature.len)
        != 0)
        return -1;
    Puente__V1__DirectoryEntries *entries =
        puente__v1__directory_entries__unpack(NULL, reply->entries.len, reply->entries.data);
    if (!entries)
        return -1;
    /* Signed but malformed keys would only fail later and less clearly. */
    for (size_t i = 0; i < entries->n_orgs; i++) {
        const Puente__V1__OrgKeys *o = entries->orgs[i];
        if (!o || !o->org_id || !pt_org_id_valid(o->org_id)
            || o->sign_public.len != PT_ED25519_PUBLIC_BYTES
            || o->seal_public.len != PT_X25519_PUBLIC_BYTES
            || o->curve_public.len != PT_CURVE_KEY_BYTES) {
            puente__v1__directory_entries__free_unpacked(entries, NULL);
            return -1;
        }
    }
    *entries_p = entries;
    return 0;
}

int puente_receipt_verify(const Puente__V1__Receipt *receipt, const pt_sign_key_t *broker)
{
    if (!receipt || !broker)
        return -1;
    /* The signed layouts are shared with the broker (pt_receipt), never re-derived here. */
    return pt_receipt_verify_message(broker, receipt, NULL);
}

/* --- Key history (issue 6) --------------------------------------------------------- */

static void s_window(const Puente__V1__KeySetInfo *k, pt_key_window_t *window)
{
    window->valid_from_ms = k->valid_from_ms;
    window->valid_until_ms = k->valid_until_ms;
    window->revoked_at_ms = k->revoked_at_ms;
}

int pt_sdk_org_revoked(const Puente__V1__OrgKeys *o, int64_t now_ms)
{
    if (!o || o->seal_public.len != PT_X25519_PUBLIC_BYTES)
        return 0;
    for (size_t i = 0; i < o->n_key_sets; i++) {
        const Puente__V1__KeySetInfo *k = o->key_sets[i];
        if (k && k->seal_public.len == PT_X25519_PUBLIC_BYTES &&
            memcmp(k->seal_public.data, o->seal_public.data, PT_X25519_PUBLIC_BYTES) == 0 &&
            k->revoked_at_ms != 0 && now_ms >= k->revoked_at_ms)
            return 1;
    }
    return 0;
}

int pt_sdk_org_key_set(const Puente__V1__OrgKeys *o, const uint8_t *key_id, size_t key_id_len,
                       pt_key_window_t *window, const uint8_t **sign_public)
{
    if (!o || !key_id || key_id_len != PT_KEY_ID_BYTES)
        return 0;
    for (size_t i = 0; i < o->n_key_sets; i++) {
        const Puente__V1__KeySetInfo *k = o->key_sets[i];
        uint8_t id[PT_KEY_ID_BYTES];
        if (!k || k->sign_public.len != PT_ED25519_PUBLIC_BYTES ||
            pt_sha256(k->sign_public.data, PT_ED25519_PUBLIC_BYTES, id) != 0 ||
            memcmp(id, key_id, PT_KEY_ID_BYTES) != 0)
            continue;
        s_window(k, window);
        *sign_public = k->sign_public.data;
        return 1;
    }
    return 0;
}

/*  verify — see verify.h. */
#include "verify.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pt_envelope.h"

/* "2026-01-31T12:00:00Z" (seconds are enough for a reject reason). */
static void s_time(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char secs[32];
    if (ms < 0 || !gmtime_r(&t, &tm) || strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, len, "%lld ms", (long long)ms);
    else
        snprintf(out, len, "%s.%03dZ", secs, (int)(ms % 1000));
}

Puente__V1__RejectCode pt_verify_check(const pt_directory_t *directory,
                                       const Puente__V1__Envelope *envelope,
                                       const Puente__V1__Header *header, int64_t now_ms,
                                       pt_verdict_t *verdict)
{
    const pt_directory_org_t *org = pt_directory_org(directory, header->sender);
    if (!org || !org->enabled)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                 "sender %s is not registered", header->sender);
    const pt_sign_key_t *key = NULL;
    if (org->n_key_sets == 0) {
        /* No history loaded (a directory built by hand): the current key only. */
        if (header->sender_key_id.len == PT_KEY_ID_BYTES &&
            memcmp(header->sender_key_id.data, org->sign_key_id, PT_KEY_ID_BYTES) == 0)
            key = org->sign_key;
    } else {
        const pt_directory_key_set_t *set = pt_directory_key_set(
            org, header->sender_key_id.data, header->sender_key_id.len);
        if (set) {
            char when[40];
            switch (pt_key_window_check(&set->window, header->created_at_ms, now_ms)) {
            case PT_KEY_WINDOW_OK:
                key = set->sign_key;
                break;
            case PT_KEY_WINDOW_REVOKED:
                s_time(set->window.revoked_at_ms, when, sizeof when);
                return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                         "the signing key of %s was revoked from %s",
                                         header->sender, when);
            case PT_KEY_WINDOW_REPLACED:
                s_time(set->window.valid_until_ms, when, sizeof when);
                return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                         "the signing key of %s was replaced: it signs nothing "
                                         "created from %s on; sign with the current key",
                                         header->sender, when);
            case PT_KEY_WINDOW_NOT_YET_VALID:
                s_time(set->window.valid_from_ms, when, sizeof when);
                return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                         "the signing key of %s is valid only from %s",
                                         header->sender, when);
            }
        }
    }
    if (!key)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                 "sender key id is not a registered signing key of %s",
                                 header->sender);
    if (pt_envelope_verify_header(envelope, key) != PT_ENV_OK)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_BAD_SIGNATURE,
                                 "header signature does not verify with the key of %s",
                                 header->sender);
    /* pt_envelope_check matched payloads to recipients one to one, in order. */
    for (size_t i = 0; i < envelope->n_payloads && i < header->n_recipients; i++) {
        const pt_directory_org_t *to = pt_directory_org(directory, header->recipients[i]);
        const pt_directory_key_set_t *sealed_to =
            to ? pt_directory_seal_key_set(to, envelope->payloads[i]->recipient_key_id.data,
                                           envelope->payloads[i]->recipient_key_id.len)
               : NULL;
        if (sealed_to && sealed_to->window.revoked_at_ms != 0 &&
            now_ms >= sealed_to->window.revoked_at_ms)
            return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                     "the payload for %s is sealed to a revoked key of it; "
                                     "fetch the directory again and seal to its current key",
                                     header->recipients[i]);
    }
    return PUENTE__V1__REJECT_CODE__REJECT_UNSPECIFIED;
}

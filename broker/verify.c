/*  verify — see verify.h. */
#include "verify.h"

#include <string.h>

#include "pt_envelope.h"

Puente__V1__RejectCode pt_verify_check(const pt_directory_t *directory,
                                       const Puente__V1__Envelope *envelope,
                                       const Puente__V1__Header *header, pt_verdict_t *verdict)
{
    const pt_directory_org_t *org = pt_directory_org(directory, header->sender);
    if (!org || !org->enabled)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                 "sender %s is not registered", header->sender);
    if (header->sender_key_id.len != PT_KEY_ID_BYTES ||
        memcmp(header->sender_key_id.data, org->sign_key_id, PT_KEY_ID_BYTES) != 0)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNKNOWN_KEY,
                                 "sender key id is not the registered signing key of %s",
                                 header->sender);
    if (pt_envelope_verify_header(envelope, org->sign_key) != PT_ENV_OK)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_BAD_SIGNATURE,
                                 "header signature does not verify with the key of %s",
                                 header->sender);
    return PUENTE__V1__REJECT_CODE__REJECT_UNSPECIFIED;
}

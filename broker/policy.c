/*  policy — see policy.h. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "fanout.h"
#include "lifecycle.h"
#include "pt_envelope.h"
#include "pt_types.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

int pt_policy_case_token_valid(const char *token)
{
    size_t len = strlen(token);
    if (len == 0 || len > PT_POLICY_CASE_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = token[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

Puente__V1__RejectCode pt_policy_check(const pt_directory_t *directory,
                                       const Puente__V1__Header *header, int64_t now_ms,
                                       char *agreement_id, pt_verdict_t *verdict)
{
    if (header->schema_version != PT_SCHEMA_VERSION)
        return pt_verdict_reject(verdict, REJ(REJECT_BAD_SCHEMA_VERSION),
                                 "schema version %u is not supported (this broker speaks %d)",
                                 header->schema_version, PT_SCHEMA_VERSION);
    const pt_type_t *type = pt_types_find(header->message_type);
    if (!type)
        return pt_verdict_reject(verdict, REJ(REJECT_UNKNOWN_TYPE),
                                 "unknown message type (see `puente types`)");
    if (!pt_policy_case_token_valid(header->case_token))
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "case_token must be 1-%d characters of A-Z a-z 0-9 . _ : -",
                                 PT_POLICY_CASE_TOKEN_MAX);
    if (!pt_purpose_valid(header->purpose))
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD), "purpose is not a known purpose");
    if (header->created_at_ms <= 0)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD), "created_at_ms is missing");
    if (header->created_at_ms > now_ms + PT_POLICY_MAX_SKEW_MS)
        return pt_verdict_reject(verdict, REJ(REJECT_CLOCK_SKEW),
                                 "created_at is %lld ms in the future (limit %d ms)",
                                 (long long)(header->created_at_ms - now_ms), PT_POLICY_MAX_SKEW_MS);
    if (header->expires_at_ms != 0 && header->expires_at_ms < header->created_at_ms)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "expires_at is before created_at");
    int64_t expires = header->expires_at_ms ? header->expires_at_ms
                                            : header->created_at_ms + PT_POLICY_DEFAULT_TTL_MS;
    if (expires <= now_ms)
        return pt_verdict_reject(verdict, REJ(REJECT_EXPIRED), "message expired %lld ms ago",
                                 (long long)(now_ms - expires));
    if (header->n_recipients == 0)
        return pt_verdict_reject(verdict, REJ(REJECT_UNKNOWN_RECIPIENT), "no recipient");
    int fanout = pt_fanout_type(header->message_type);
    if (header->n_recipients > 1 && strcmp(header->message_type, "tracing.request") != 0 &&
        !fanout)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "only tracing.request, consent.withdraw and "
                                 "case.erasure_request may have several recipients");

    for (size_t i = 0; i < header->n_recipients; i++) {
        const char *recipient = header->recipients[i];
        for (size_t k = 0; k < i; k++)
            if (strcmp(header->recipients[k], recipient) == 0)
                return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                         "recipient %s is listed twice", recipient);
        if (strcmp(recipient, header->sender) == 0)
            return pt_verdict_reject(verdict, REJ(REJECT_SELF_ADDRESSED),
                                     "a message cannot be addressed to its sender");
        const pt_directory_org_t *org = pt_directory_org(directory, recipient);
        if (!org || !org->enabled)
            return pt_verdict_reject(verdict, REJ(REJECT_UNKNOWN_RECIPIENT),
                                     "recipient %.40s is not a registered organisation",
                                     recipient);
        /* A withdrawal or erasure request must always be able to reach whoever
           holds the data: any valid agreement between the two is enough,
           whatever its purposes and message types. */
        const char *found =
            fanout ? pt_directory_agreement_any(directory, header->sender, recipient, now_ms)
                   : pt_directory_agreement_for(directory, header->sender, recipient,
                                                header->message_type, header->purpose,
                                                header->agreement_id, now_ms);
        if (!found)
            return pt_verdict_reject(
                verdict, REJ(REJECT_NO_AGREEMENT),
                "no valid agreement between %s and %s covers %s for purpose %s%s%s",
                header->sender, recipient, header->message_type, header->purpose,
                header->agreement_id[0] ? " under agreement " : "", header->agreement_id);
        if (header->service_type[0] && org->service_types[0] &&
            !pt_lifecycle_list_has(org->service_types, header->service_type))
            return pt_verdict_reject(verdict, REJ(REJECT_SERVICE_NOT_OFFERED),
                                     "%s does not offer the service type %.64s", recipient,
                                     header->service_type);
        /* A trace request fans out only to tracing focal points: organisations that
           registered the service type PT_POLICY_FOCAL_POINT (an organisation that
           registered no service types accepts everything, as everywhere). */
        if (strcmp(header->message_type, "tracing.request") == 0 && org->service_types[0] &&
            !pt_lifecycle_list_has(org->service_types, PT_POLICY_FOCAL_POINT))
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_FOCAL_POINT),
                                     "%s is not registered as a tracing focal point (service "
                                     "type %s)",
                                     recipient, PT_POLICY_FOCAL_POINT);
        if (i == 0)
            snprintf(agreement_id, PT_STORE_TEXT_MAX, "%s", found);
    }
    return REJ(REJECT_UNSPECIFIED);
}

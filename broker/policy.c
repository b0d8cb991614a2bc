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

int pt_policy_focal_point_of(const pt_directory_org_t *org, const char *country)
{
    return org && org->enabled &&
           pt_lifecycle_list_has(org->service_types, PT_POLICY_FOCAL_POINT) &&
           strlen(org->org_id) > 3 && org->org_id[2] == '-' &&
           memcmp(org->org_id, country, 2) == 0 && strlen(country) == 2;
}

static int s_has_country(const Puente__V1__Header *header, size_t n, const char *org_id)
{
    for (size_t k = 0; k < n; k++)
        if (strlen(org_id) > 3 && org_id[2] == '-' &&
            memcmp(org_id, header->search_countries[k], 2) == 0)
            return 1;
    return 0;
}

/* tracing.request: its recipients are exactly the enabled registered tracing
   focal points of the countries in search_countries. */
static Puente__V1__RejectCode s_tracing_fanout(const pt_directory_t *directory,
                                               const Puente__V1__Header *header,
                                               pt_verdict_t *verdict)
{
    size_t n = header->n_search_countries;
    if (n == 0)
        return pt_verdict_reject(verdict, REJ(REJECT_COUNTRY_MISSING),
                                 "a tracing.request names the countries to search in the "
                                 "header search_countries (puente send --countries GT,HN)");
    for (size_t k = 0; k < n; k++) {
        const char *c = header->search_countries[k];
        if (!c || strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
            return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                     "search_countries holds ISO 3166-1 alpha-2 codes (GT, HN)");
        for (size_t j = 0; j < k; j++)
            if (strcmp(header->search_countries[j], c) == 0)
                return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                         "country %s is listed twice", c);
    }
    for (size_t i = 0; i < header->n_recipients; i++) {
        const pt_directory_org_t *org = pt_directory_org(directory, header->recipients[i]);
        if (!org || !org->enabled)
            continue; /* refused as an unknown recipient below */
        if (!pt_lifecycle_list_has(org->service_types, PT_POLICY_FOCAL_POINT))
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_FOCAL_POINT),
                                     "%s is not registered as a tracing focal point (service "
                                     "type %s)",
                                     org->org_id, PT_POLICY_FOCAL_POINT);
        if (!s_has_country(header, n, org->org_id))
            return pt_verdict_reject(verdict, REJ(REJECT_NOT_FOCAL_POINT),
                                     "%s is not a focal point of a country in search_countries",
                                     org->org_id);
    }
    for (size_t k = 0; k < n; k++) {
        const char *c = header->search_countries[k];
        int found = 0;
        for (size_t j = 0; j < pt_directory_org_count(directory); j++) {
            const pt_directory_org_t *org = pt_directory_org_at(directory, j);
            if (!pt_policy_focal_point_of(org, c))
                continue;
            found = 1; /* the sender searches its own country itself */
            if (strcmp(org->org_id, header->sender) == 0)
                continue;
            int listed = 0;
            for (size_t i = 0; i < header->n_recipients && !listed; i++)
                listed = strcmp(header->recipients[i], org->org_id) == 0;
            if (!listed)
                return pt_verdict_reject(verdict, REJ(REJECT_FANOUT_INCOMPLETE),
                                         "%s is the tracing focal point of %s and must be a "
                                         "recipient",
                                         org->org_id, c);
        }
        if (!found)
            return pt_verdict_reject(verdict, REJ(REJECT_NO_FOCAL_POINT),
                                     "no organisation is registered as tracing focal point of %s",
                                     c);
    }
    return REJ(REJECT_UNSPECIFIED);
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

    if (strcmp(header->message_type, "referral.request") == 0 && !header->service_type[0])
        return pt_verdict_reject(verdict, REJ(REJECT_SERVICE_TYPE_MISSING),
                                 "a referral.request needs the header service_type (Primero "
                                 "lookup-service-type)");
    if (header->n_search_countries > 0 && strcmp(header->message_type, "tracing.request") != 0)
        return pt_verdict_reject(verdict, REJ(REJECT_INVALID_FIELD),
                                 "search_countries is only for tracing.request");

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
        /* A recipient must have registered the service type it is sent (an
           organisation that registered none receives no typed message). */
        if (header->service_type[0] &&
            !pt_lifecycle_list_has(org->service_types, header->service_type))
            return pt_verdict_reject(verdict, REJ(REJECT_SERVICE_NOT_OFFERED),
                                     "%s has not registered the service type %.64s", recipient,
                                     header->service_type);
        if (i == 0)
            snprintf(agreement_id, PT_STORE_TEXT_MAX, "%s", found);
    }
    if (strcmp(header->message_type, "tracing.request") == 0)
        return s_tracing_fanout(directory, header, verdict);
    return REJ(REJECT_UNSPECIFIED);
}

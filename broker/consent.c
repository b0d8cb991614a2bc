/*  consent — see consent.h. */
#include "consent.h"

#include <string.h>

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

int pt_consent_overridden(const Puente__V1__Header *header)
{
    return header->consent && header->consent->overridden;
}

Puente__V1__RejectCode pt_consent_check(const Puente__V1__Header *header, pt_verdict_t *verdict)
{
    static const Puente__V1__ConsentSummary none = PUENTE__V1__CONSENT_SUMMARY__INIT;
    const Puente__V1__ConsentSummary *c = header->consent ? header->consent : &none;
    const char *type = header->message_type ? header->message_type : "";

    for (size_t i = 0; i < header->n_recipients; i++)
        for (size_t k = 0; k < c->n_withhold_from; k++)
            if (c->withhold_from[k] && strcmp(header->recipients[i], c->withhold_from[k]) == 0)
                return pt_verdict_reject(verdict, REJ(REJECT_WITHHELD),
                                         "recipient %.40s is on the consent's withhold list",
                                         header->recipients[i]);
    if (c->overridden) {
        int basis_ok = c->legal_basis == PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_VITAL_INTERESTS ||
                       c->legal_basis == PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_BEST_INTERESTS;
        if (!basis_ok)
            return pt_verdict_reject(verdict, REJ(REJECT_OVERRIDE_INCOMPLETE),
                                     "a consent override needs legal basis vital_interests or "
                                     "best_interests");
        if (!c->override_approver || c->override_approver[0] == '\0')
            return pt_verdict_reject(verdict, REJ(REJECT_OVERRIDE_INCOMPLETE),
                                     "a consent override needs an override_approver");
        if (!header->reason_code || header->reason_code[0] == '\0')
            return pt_verdict_reject(verdict, REJ(REJECT_OVERRIDE_INCOMPLETE),
                                     "a consent override needs a justification code in "
                                     "reason_code");
        return REJ(REJECT_UNSPECIFIED);
    }
    if (strcmp(type, "referral.request") == 0 &&
        !(c->consent_for_services && c->disclosure_other_orgs))
        return pt_verdict_reject(verdict, REJ(REJECT_CONSENT_MISSING),
                                 "a referral needs consent_for_services and "
                                 "disclosure_other_orgs");
    if ((strcmp(type, "transfer.request") == 0 || strcmp(type, "transfer.ask") == 0) &&
        !c->disclosure_other_orgs)
        return pt_verdict_reject(verdict, REJ(REJECT_CONSENT_MISSING),
                                 "a case transfer or transfer request needs "
                                 "disclosure_other_orgs");
    if (strcmp(type, "tracing.request") == 0 && !c->consent_for_tracing)
        return pt_verdict_reject(verdict, REJ(REJECT_CONSENT_MISSING),
                                 "a tracing request needs consent_for_tracing");
    return REJ(REJECT_UNSPECIFIED);
}

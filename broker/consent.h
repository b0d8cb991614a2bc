/*  consent — part of stage 4 (policy): the consent gate and the withhold list,
    decided from the header's consent summary alone (the broker cannot read the
    payload's consent block; the SDK checks that one).

      referral.request   consent_for_services AND disclosure_other_orgs
      transfer.request, transfer.ask   disclosure_other_orgs
      tracing.request    consent_for_tracing
      any message        no recipient on consent.withhold_from

    An override (consent.overridden) replaces the consent flags; it needs legal
    basis VITAL_INTERESTS or BEST_INTERESTS, an override_approver and a
    justification code in reason_code. The store flags it in the trail with the
    case event "consent_overridden".
*/
#ifndef PT_CONSENT_H
#define PT_CONSENT_H

#include "stage.h"

/* 0 (pass) or REJECT_WITHHELD, REJECT_OVERRIDE_INCOMPLETE, REJECT_CONSENT_MISSING.
   A header without a consent summary counts as all flags false. */
Puente__V1__RejectCode pt_consent_check(const Puente__V1__Header *header, pt_verdict_t *verdict);

/* 1 if the header carries a consent override (valid or not). */
int pt_consent_overridden(const Puente__V1__Header *header);

#endif

/*  policy — stage 4: may this message be routed? Decided from the signed header
    alone (the broker cannot read the payload):
      schema version, known message type, well-formed case token and purpose,
      recipients registered and enabled, not addressed to the sender, several
      recipients only for tracing.request and the fan-out types (consent.withdraw,
      case.erasure_request: fanout.h), a valid agreement between sender and every
      recipient that covers the type and purpose (for the fan-out types: any valid
      agreement between the two, so that a withdrawal can always flow), not expired,
      not from the future, and a header service_type that every recipient registered
      (REJECT_SERVICE_NOT_OFFERED; an organisation that registered none receives no
      message with a service_type). A referral.request needs a service_type
      (REJECT_SERVICE_TYPE_MISSING).
    Tracing fan-out: a tracing.request names its countries in search_countries
      (REJECT_COUNTRY_MISSING if none; two-letter upper-case codes, each once,
      REJECT_INVALID_FIELD otherwise; no other type may carry them) and its
      recipients must be exactly the enabled organisations that registered the
      service type PT_POLICY_FOCAL_POINT and whose id starts with one of those
      countries ("GT-PGN" is of GT), the sender excepted: a recipient that is not
      one gets REJECT_NOT_FOCAL_POINT, a focal point left out
      REJECT_FANOUT_INCOMPLETE, a country without any REJECT_NO_FOCAL_POINT.
    The consent gate (consent.h) and the lifecycle stage (lifecycle.h) follow it.
*/
#ifndef PT_POLICY_H
#define PT_POLICY_H

#include <stdint.h>

#include "directory.h"
#include "stage.h"

#define PT_POLICY_MAX_SKEW_MS (5 * 60 * 1000)
#define PT_POLICY_DEFAULT_TTL_MS (30LL * 24 * 3600 * 1000)
#define PT_POLICY_CASE_TOKEN_MAX 128
/* The service type that makes an organisation a tracing focal point of its country. */
#define PT_POLICY_FOCAL_POINT "tracing_focal_point"

/* On pass, agreement_id (PT_STORE_TEXT_MAX bytes) receives the agreement that
   covers the first recipient. */
Puente__V1__RejectCode pt_policy_check(const pt_directory_t *directory,
                                       const Puente__V1__Header *header, int64_t now_ms,
                                       char *agreement_id, pt_verdict_t *verdict);

/* 1 if org is an enabled tracing focal point (service type PT_POLICY_FOCAL_POINT)
   of country (two letters; an org id "GT-PGN" is of GT). */
int pt_policy_focal_point_of(const pt_directory_org_t *org, const char *country);

/* 1 if token is 1..128 characters of [A-Za-z0-9._:-]. */
int pt_policy_case_token_valid(const char *token);

#endif

/*  pt_payload — rules on a family message's payload that the broker cannot check
    (it never reads a sealed payload), applied by the sending SDK before sealing.
    See puente.h (puente_payload_check). */
#include <stdio.h>
#include <string.h>

#include "puente.h"
#include "reintegration.pb-c.h"

/* reintegration.plan: versioned (1, 2, ... per plan id) and records whether the
   child took part, explicitly. */
static int s_plan_check(const Puente__V1__ReintegrationPlan *plan, char *why, size_t why_len)
{
    if (plan->version == 0) {
        snprintf(why, why_len,
                 "reintegration.plan: version must be 1 or more (plans are versioned)");
        return -1;
    }
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
        &puente__v1__child_participation__descriptor, (int)plan->child_participation);
    if (!ev || plan->child_participation ==
                   PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_UNSPECIFIED) {
        snprintf(why, why_len,
                 "reintegration.plan: child_participation must be recorded "
                 "(CHILD_PARTICIPATION_YES, _NO or _NOT_APPROPRIATE)");
        return -1;
    }
    /* The deprecated bool may still be sent for older receivers, never against it. */
    if (plan->child_participated &&
        plan->child_participation != PUENTE__V1__CHILD_PARTICIPATION__CHILD_PARTICIPATION_YES) {
        snprintf(why, why_len,
                 "reintegration.plan: child_participated (deprecated) is true but "
                 "child_participation is %s",
                 ev->name);
        return -1;
    }
    return 0;
}

int puente_payload_check(const char *message_type, const ProtobufCMessage *body, char *why,
                         size_t why_len)
{
    char scratch[8];
    if (!why || why_len == 0) {
        why = scratch;
        why_len = sizeof scratch;
    }
    why[0] = '\0';
    if (!message_type || !body)
        return 0;
    if (strcmp(message_type, "reintegration.plan") == 0) {
        if (body->descriptor != &puente__v1__reintegration_plan__descriptor) {
            snprintf(why, why_len, "reintegration.plan: body is not a ReintegrationPlan");
            return -1;
        }
        return s_plan_check((const Puente__V1__ReintegrationPlan *)body, why, why_len);
    }
    return 0;
}

/*  authn — see authn.h. */
#include "authn.h"

#include <string.h>

#include "directory.h"

Puente__V1__RejectCode pt_authn_check(const char *identity, const Puente__V1__Header *header,
                                      pt_verdict_t *verdict)
{
    if (!identity || !identity[0])
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNAUTHENTICATED,
                                 "connection has no authenticated identity");
    if (strcmp(identity, PT_OPERATOR_ID) == 0)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_NOT_PERMITTED,
                                 "the operator identity cannot send case messages");
    if (strcmp(identity, header->sender) != 0)
        return pt_verdict_reject(verdict, PUENTE__V1__REJECT_CODE__REJECT_UNAUTHENTICATED,
                                 "header sender does not match the connection identity %s",
                                 identity);
    return PUENTE__V1__REJECT_CODE__REJECT_UNSPECIFIED;
}

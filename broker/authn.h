/*  authn — stage 2: the organisation that signed the header must be the one the
    transport authenticated. The CURVE key admitted by the ZAP handler maps to one
    identity (directory.c); a header naming another sender is a spoof.
*/
#ifndef PT_AUTHN_H
#define PT_AUTHN_H

#include "stage.h"

/* Passes when identity (from the connection) equals header->sender. */
Puente__V1__RejectCode pt_authn_check(const char *identity, const Puente__V1__Header *header,
                                      pt_verdict_t *verdict);

#endif

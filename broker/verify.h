/*  verify — stage 3: the sender's signing key is registered (the header names it
    by key id) and the signature over the header bytes is valid. The payload stays
    sealed: its integrity is bound by the payload digests inside the signed header,
    which pt_envelope_check compared with the sealed payloads already.
*/
#ifndef PT_VERIFY_H
#define PT_VERIFY_H

#include "directory.h"
#include "stage.h"

Puente__V1__RejectCode pt_verify_check(const pt_directory_t *directory,
                                       const Puente__V1__Envelope *envelope,
                                       const Puente__V1__Header *header, pt_verdict_t *verdict);

#endif

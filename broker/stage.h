/*  stage — what every pipeline stage returns: pass (code 0) or a stable reject code
    with a human reason. Reasons name fields and identifiers, never payload content.

    The pipeline for a submitted envelope (docs/architecture.md):
        transport.c  receive (frame count, size)     → pt_decode (bounded decode)
        authn.c      CURVE identity == header sender
        verify.c     sender key known, header signature valid
        policy.c     schema, type, recipients, agreement, freshness
        consent.c    consent gate, override, withhold-from list
        lifecycle.c  legal transition for the correlation id's state (per batch, in order)
        store.c      persist (group commit)
        receipt.c    signed receipt after COMMIT
        deliver.c    to the recipient's receiving connection
        ack.c        the recipient's acks, committed per loop pass
*/
#ifndef PT_STAGE_H
#define PT_STAGE_H

#include "control.pb-c.h"
#include "envelope.pb-c.h"

typedef struct {
    Puente__V1__RejectCode code;   /* 0 (REJECT_UNSPECIFIED) means pass */
    char reason[200];
} pt_verdict_t;

/* Sets a reject verdict and returns its code (printf-style reason). */
Puente__V1__RejectCode pt_verdict_reject(pt_verdict_t *verdict, Puente__V1__RejectCode code,
                                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stable name of a reject code ("REJECT_NO_AGREEMENT"). */
const char *pt_reject_name(Puente__V1__RejectCode code);

#endif

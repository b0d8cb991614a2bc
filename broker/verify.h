/*  verify — stage 3: the sender's signing key is registered (the header names it
    by key id), usable for this message, and the signature over the header bytes
    is valid. The payload stays sealed: its integrity is bound by the payload
    digests inside the signed header, which pt_envelope_check compared with the
    sealed payloads already.

    Key history (issue 6): the key id is looked up among every key set of the
    sender (directory.h), and the set's window is checked with the header's
    created time and now_ms (proto/pt_key_window.h): a replaced set signs nothing
    created after its valid_until, a revoked set nothing created after, nor
    anything presented after, its revoked_at. Both are REJECT_UNKNOWN_KEY, the
    reason says which. Also refused with REJECT_UNKNOWN_KEY: a payload sealed to a
    recipient's sealing key that is revoked at now_ms (the sender's directory is
    stale; whoever holds the revoked key could read it).
*/
#ifndef PT_VERIFY_H
#define PT_VERIFY_H

#include "directory.h"
#include "stage.h"

Puente__V1__RejectCode pt_verify_check(const pt_directory_t *directory,
                                       const Puente__V1__Envelope *envelope,
                                       const Puente__V1__Header *header, int64_t now_ms,
                                       pt_verdict_t *verdict);

#endif

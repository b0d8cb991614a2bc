/*  pt_trail — the case trail's hash-chain format, shared by the broker (which
    writes events) and by verifiers (which recompute them). Changing this format
    breaks every stored trail: it is versioned by PT_TRAIL_FORMAT.

    event_hash = SHA-256( "puente.v1 event" || 0x00 ||
                          prev_hash(32) || be64(seq) || be64(at_ms) ||
                          lp(kind) || lp(case_token) || lp(actor) || lp(counterparty) ||
                          lp(message_type) || lp(message_id) || lp(detail) )
    where lp(x) = be32(len(x)) || x, and detail is the SHA-256 of the header for
    message events (empty otherwise). The first event of a case has prev_hash of
    32 zero bytes. Events carry no personal data: case tokens are pseudonyms.
*/
#ifndef PT_TRAIL_H
#define PT_TRAIL_H

#include <stddef.h>
#include <stdint.h>

#define PT_TRAIL_FORMAT 1
#define PT_TRAIL_HASH_BYTES 32

typedef struct {
    uint64_t seq;               /* 1-based position in the case's chain */
    int64_t at_ms;
    const char *kind;           /* submitted, stored, delivered, acknowledged, ... */
    const char *case_token;
    const char *actor;          /* organisation that caused the event */
    const char *counterparty;   /* the other organisation, or "" */
    const char *message_type;   /* or "" */
    const uint8_t *message_id;  /* 16 bytes or NULL */
    const uint8_t *detail;      /* may be NULL when detail_len is 0 */
    size_t detail_len;
} pt_trail_event_t;

/* Computes the hash of ev chained after prev_hash (32 bytes). 0 or -1. O(size). */
int pt_trail_hash(const uint8_t prev_hash[PT_TRAIL_HASH_BYTES], const pt_trail_event_t *ev,
                  uint8_t out[PT_TRAIL_HASH_BYTES]);

#endif

/*  pt_key_window — when a signing key may be used: the one rule that the broker
    (verify stage), recipients (the SDK) and auditors (`puente audit verify`)
    apply to an organisation's key history (org_keys, broker/sql/008).

    A key set has a window [valid_from, valid_until) (valid_until 0 = the current
    set, open-ended) and maybe a revocation time revoked_at (0 = not revoked).
    A signature on a header created at created_ms, presented at at_ms, is accepted
    when
        at_ms >= valid_from                     (the set was registered)
        created_ms <  valid_until               (a replaced set signs nothing newer)
        created_ms <  revoked_at                (nothing dated after a revocation)
        at_ms      <  revoked_at                (nothing at all once revoked)
    at_ms is when the signature is presented: the broker's clock at verify, the
    stored time for an auditor; 0 = unknown (a recipient, which does not learn the
    stored time), and the two at_ms tests are skipped.

    A replaced set is checked against the header's created time, not the clock:
    messages signed before the end of its window (an agency's outbox) still get
    through after it. The created time is the sender's word, bounded by the
    broker's freshness checks (policy.c: at most 5 minutes ahead; expires_at);
    a key that must stop at once is revoked, not rotated.
*/
#ifndef PT_KEY_WINDOW_H
#define PT_KEY_WINDOW_H

#include <stdint.h>

typedef struct {
    int64_t valid_from_ms;
    int64_t valid_until_ms; /* 0 = open-ended (the current set) */
    int64_t revoked_at_ms;  /* 0 = not revoked */
} pt_key_window_t;

typedef enum {
    PT_KEY_WINDOW_OK = 0,
    PT_KEY_WINDOW_NOT_YET_VALID, /* at_ms before valid_from */
    PT_KEY_WINDOW_REPLACED,      /* created at or after valid_until */
    PT_KEY_WINDOW_REVOKED        /* created or presented at or after revoked_at */
} pt_key_window_result_t;

/* Applies the rule above. A NULL window is NOT_YET_VALID. O(1), no side effects. */
pt_key_window_result_t pt_key_window_check(const pt_key_window_t *window, int64_t created_ms,
                                           int64_t at_ms);

/* 1 if a CURVE key of this set may open a connection at now_ms: registered, not
   past valid_until, not revoked. */
int pt_key_window_admits(const pt_key_window_t *window, int64_t now_ms);

/* A short English phrase for a result ("revoked", "replaced", ...). */
const char *pt_key_window_result_str(pt_key_window_result_t result);

#endif

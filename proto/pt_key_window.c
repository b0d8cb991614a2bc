/*  pt_key_window — see pt_key_window.h. */
#include "pt_key_window.h"

#include <stddef.h>

pt_key_window_result_t pt_key_window_check(const pt_key_window_t *window, int64_t created_ms,
                                           int64_t at_ms)
{
    if (!window)
        return PT_KEY_WINDOW_NOT_YET_VALID;
    const pt_key_window_t *w = window;
    /* Revocation first: it is the answer an operator needs to see. */
    if (w->revoked_at_ms != 0 &&
        (created_ms >= w->revoked_at_ms || (at_ms != 0 && at_ms >= w->revoked_at_ms)))
        return PT_KEY_WINDOW_REVOKED;
    if (at_ms != 0 && at_ms < w->valid_from_ms)
        return PT_KEY_WINDOW_NOT_YET_VALID;
    if (w->valid_until_ms != 0 && created_ms >= w->valid_until_ms)
        return PT_KEY_WINDOW_REPLACED;
    return PT_KEY_WINDOW_OK;
}

int pt_key_window_admits(const pt_key_window_t *window, int64_t now_ms)
{
    if (!window || now_ms < window->valid_from_ms)
        return 0;
    if (window->valid_until_ms != 0 && now_ms >= window->valid_until_ms)
        return 0;
    if (window->revoked_at_ms != 0 && now_ms >= window->revoked_at_ms)
        return 0;
    return 1;
}

const char *pt_key_window_result_str(pt_key_window_result_t result)
{
    switch (result) {
    case PT_KEY_WINDOW_OK:
        return "valid";
    case PT_KEY_WINDOW_NOT_YET_VALID:
        return "not yet valid";
    case PT_KEY_WINDOW_REPLACED:
        return "replaced before the message was created";
    case PT_KEY_WINDOW_REVOKED:
        return "revoked";
    }
    return "unknown";
}

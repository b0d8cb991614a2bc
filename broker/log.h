/*  log — one JSON object per line on stderr: time, level, component, message and,
    where relevant, message id and case token. Never payload content, names or
    dates of birth: callers pass identifiers only.
    Thread-safe (one write(2) per line).
*/
#ifndef PT_LOG_H
#define PT_LOG_H

#include <stdint.h>

typedef enum { PT_LOG_DEBUG = 0, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR } pt_log_level_t;

/* Messages below level are dropped. Default PT_LOG_INFO; PUENTE_LOG_LEVEL=debug|info|warn|error. */
void pt_log_set_level(pt_log_level_t level);
void pt_log_init_from_env(void);

/* Logs a printf-style message. message_id (16 bytes) and case_token may be NULL. */
void pt_log(pt_log_level_t level, const char *component, const uint8_t *message_id,
            const char *case_token, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif

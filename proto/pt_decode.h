/*  pt_decode — decode protobuf bytes from outside under limits.

    protobuf-c has no size, count or nesting limits of its own. pt_decode_message
    first walks the wire bytes guided by the descriptor (no allocation): it checks
    wire-format validity, nesting depth, the number of elements of every repeated
    field and the length of every string/bytes field. Only then does it unpack,
    with a budgeted allocator that fails (and so makes unpack fail) once the
    message would take more than limits->alloc_budget bytes of memory.

    Thread-safety: stateless; safe from any thread.
*/
#ifndef PT_DECODE_H
#define PT_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

typedef struct {
    size_t max_bytes;           /* whole input */
    unsigned max_depth;         /* nesting of sub-messages, top level = 1 */
    size_t max_repeated;        /* elements of any one repeated field */
    size_t max_field_bytes;     /* any one string/bytes field */
    size_t alloc_budget;        /* total heap bytes the decoded message may use */
} pt_decode_limits_t;

/* Defaults for a broker frame of up to max_frame_bytes: depth 16, 1024 repeated
   elements, fields up to max_frame_bytes, allocation budget 4 x max_frame_bytes + 64 KiB. */
pt_decode_limits_t pt_decode_default_limits(size_t max_frame_bytes);

typedef enum {
    PT_DECODE_OK = 0,
    PT_DECODE_TOO_LARGE = -1,   /* input, a field, a count or the allocation budget over the limit */
    PT_DECODE_TOO_DEEP = -2,
    PT_DECODE_MALFORMED = -3,   /* not valid protobuf for this descriptor */
    PT_DECODE_TRUNCATED = -4    /* the bytes end inside a field: a tag, varint, fixed-size or
                                   length-delimited field runs past the end of the input or of
                                   its enclosing message (a cut-off frame) */
} pt_decode_result_t;

/* Checks data against the limits, then unpacks it as desc. On PT_DECODE_OK, *msg_p
   holds the message, to be freed with pt_decode_free or
   protobuf_c_message_free_unpacked(msg, NULL) (plain malloc memory). why (may be NULL) receives a short reason without message content.
   O(len). */
pt_decode_result_t pt_decode_message(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                     size_t len, const pt_decode_limits_t *limits,
                                     ProtobufCMessage **msg_p, char *why, size_t why_len);

/* Frees a message returned by pt_decode_message; no-op on NULL; nulls the pointer.
   Same as protobuf_c_message_free_unpacked(msg, NULL). */
void pt_decode_free(ProtobufCMessage **msg_p);

#endif

/*  pt_json — the proto3 JSON mapping, driven by protobuf-c descriptors (no code
    per message type).

    Output follows https://protobuf.dev/programming-guides/json/ with the printer
    option "preserve proto field names" (name_first, not nameFirst) because that is
    what Primero-based systems use; the parser accepts both the proto name and the
    lowerCamelCase JSON name. Enums as their names (numbers accepted on input),
    64-bit integers as strings (numbers accepted), bytes as base64 (standard or
    URL-safe, padding optional on input), default values omitted on output.

    Parsing is strict: unknown fields, wrong types, out-of-range numbers, invalid
    enum names, invalid UTF-8, duplicate keys, nesting deeper than
    PT_JSON_MAX_DEPTH and input larger than PT_JSON_MAX_BYTES are errors, reported
    with the field path ("child.date_of_birth.month: expected integer").
*/
#ifndef PT_JSON_H
#define PT_JSON_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#define PT_JSON_MAX_DEPTH 32
#define PT_JSON_MAX_BYTES (1024 * 1024)
#define PT_JSON_ERR_BYTES 256

#define PT_JSON_PRETTY 0x1   /* indent output by 2 spaces */

/* Serialises msg to JSON text. NULL on allocation failure. Caller frees. */
char *pt_json_from_message(const ProtobufCMessage *msg, int flags);

/* Parses JSON text into a new message of type desc. On success returns 0 and
   *msg_p (caller frees with protobuf_c_message_free_unpacked(m, NULL)). On failure
   returns -1 and writes the path and reason into err (PT_JSON_ERR_BYTES). */
int pt_json_to_message(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                       ProtobufCMessage **msg_p, char *err, size_t err_len);

#endif

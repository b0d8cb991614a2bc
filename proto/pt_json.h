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

/* Serialises msg to JSON text (compact, or indented with PT_JSON_PRETTY), fields
   in field-number order under their proto names. NULL on allocation failure, on a
   string field that is not valid UTF-8 (protobuf-c does not check it on unpack)
   or on submessages nested deeper than PT_JSON_MAX_DEPTH. Caller frees the text.
   Floating-point values are printed with 17 significant digits so that they
   round-trip exactly (0.1 prints as 0.10000000000000001). Borrows msg.
   Thread-safe. O(size of msg). */
char *pt_json_from_message(const ProtobufCMessage *msg, int flags);

/* Parses JSON text into a new message of type desc. On success returns 0 and
   *msg_p (caller frees with protobuf_c_message_free_unpacked(m, NULL)). On failure
   returns -1, sets *msg_p to NULL and writes the path and reason into err
   (PT_JSON_ERR_BYTES; err may be NULL). Only len bytes of json are read; no NUL
   terminator is needed. Errors echo field names and enum names from the input
   (truncated, printable ASCII only) but never string values. Borrows desc and
   json. Thread-safe. O(len). */
int pt_json_to_message(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                       ProtobufCMessage **msg_p, char *err, size_t err_len);

#endif

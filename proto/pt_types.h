/*  pt_types — the registry of Puente message types.

    Every family message type has a dotted name ("referral.request"), a family
    (referral, tracing, reintegration), the protobuf message carried in the sealed
    payload, the default purpose an agreement must cover, a one-line summary and a
    complete example in the JSON mapping (what `puente example TYPE` prints).
    The table is static and read-only: safe from any thread.
*/
#ifndef PT_TYPES_H
#define PT_TYPES_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct {
    const char *name;
    const char *family;
    const ProtobufCMessageDescriptor *descriptor;
    const char *default_purpose;   /* service_provision, case_transfer, social_inquiry, family_tracing, reintegration */
    const char *summary;
    const char *example_json;      /* valid input for pt_json_to_message(descriptor, ...) */
} pt_type_t;

/* The type with this name (a static entry: never free it), or NULL for an
   unknown name or NULL. Thread-safe. O(number of types). */
const pt_type_t *pt_types_find(const char *name);

/* The number of registered types (indices 0..count-1 for pt_types_at).
   Thread-safe. */
size_t pt_types_count(void);

/* i-th type in a stable order (grouped by family): a static entry, never free
   it. NULL if out of range. Thread-safe. */
const pt_type_t *pt_types_at(size_t i);

/* 1 if purpose is one of the known purpose names, 0 otherwise (NULL
   included). Thread-safe. */
int pt_purpose_valid(const char *purpose);

#endif

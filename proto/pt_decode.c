/*  pt_decode — see pt_decode.h. */
#include "pt_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The budget counts every allocation unpack makes and refuses once it would be
   exceeded (unpack then fails and frees what it built). Memory comes from malloc
   and is never given back to the budget, which only lives for one unpack: the
   result is an ordinary message, freed with the default allocator. */
typedef struct {
    size_t left;
} s_budget_t;

static void *s_alloc(void *allocator_data, size_t size)
{
    s_budget_t *budget = allocator_data;
    if (size > budget->left)
        return NULL;
    budget->left -= size;
    return malloc(size);
}

static void s_free(void *allocator_data, void *pointer)
{
    (void)allocator_data;
    free(pointer);
}

pt_decode_limits_t pt_decode_default_limits(size_t max_frame_bytes)
{
    pt_decode_limits_t limits = {
        .max_bytes = max_frame_bytes,
        .max_depth = 16,
        .max_repeated = 1024,
        .max_field_bytes = max_frame_bytes,
        .alloc_budget = 4 * max_frame_bytes + 64 * 1024,
    };
    return limits;
}

#define S_VARINT_INVALID ((size_t)-1)

/* Reads a base-128 varint. Returns bytes consumed; 0 if the input ends inside it
   (truncated); S_VARINT_INVALID if it is over 10 bytes or over 64 bits. */
static size_t s_varint(const uint8_t *p, size_t len, uint64_t *value)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i == 9 && p[i] > 1)
                return S_VARINT_INVALID;
            *value = v;
            return i + 1;
        }
    }
    return len < 10 ? 0 : S_VARINT_INVALID;
}

typedef struct {
    const pt_decode_limits_t *limits;
    char *why;
    size_t why_len;
} s_scan_t;

static pt_decode_result_t s_fail(s_scan_t *scan, pt_decode_result_t code, const char *what,
                                 const char *field)
{
    if (scan->why && scan->why_len)
        snprintf(scan->why, scan->why_len, "%s%s%s", what, field ? " in field " : "",
                 field ? field : "");
    return code;
}

static pt_decode_result_t s_scan(s_scan_t *scan, const ProtobufCMessageDescriptor *desc,
                                 const uint8_t *p, size_t len, unsigned depth)
{
    if (depth > scan->limits->max_depth)
        return s_fail(scan, PT_DECODE_TOO_DEEP, "nesting too deep", desc->name);

    /* Element counts per field, indexed like desc->fields. Our messages have few fields. */
    size_t counts[64] = {0};
    size_t pos = 0;
    while (pos < len) {
        uint64_t key;
        size_t n = s_varint(p + pos, len - pos, &key);
        if (n == S_VARINT_INVALID)
            return s_fail(scan, PT_DECODE_MALFORMED, "invalid varint tag", NULL);
        if (!n)
            return s_fail(scan, PT_DECODE_TRUNCATED, "truncated tag", NULL);
        pos += n;
        uint32_t wire = (uint32_t)(key & 7);
        uint64_t number = key >> 3;
        if (number == 0 || number > 536870911u)
            return s_fail(scan, PT_DECODE_MALFORMED, "invalid field number", NULL);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
        size_t index = field ? (size_t)(field - desc->fields) : 0;

        uint64_t value = 0;
        const uint8_t *payload = NULL;
        size_t payload_len = 0;
        switch (wire) {
        case 0:
            n = s_varint(p + pos, len - pos, &value);
            if (n == S_VARINT_INVALID)
                return s_fail(scan, PT_DECODE_MALFORMED, "invalid varint", NULL);
            if (!n)
                return s_fail(scan, PT_DECODE_TRUNCATED, "truncated varint", NULL);
            pos += n;
            break;
        case 1:
            if (len - pos < 8)
                return s_fail(scan, PT_DECODE_TRUNCATED, "truncated fixed64", NULL);
            pos += 8;
            break;
        case 5:
            if (len - pos < 4)
                return s_fail(scan, PT_DECODE_TRUNCATED, "truncated fixed32", NULL);
            pos += 4;
            break;
        case 2:
            n = s_varint(p + pos, len - pos, &value);
            if (n == S_VARINT_INVALID)
                return s_fail(scan, PT_DECODE_MALFORMED, "invalid length", field ? field->name : NULL);
            if (!n || value > len - pos - n)
                return s_fail(scan, PT_DECODE_TRUNCATED, "truncated length-delimited field",
                              field ? field->name : NULL);
            pos += n;
            payload = p + pos;
            payload_len = (size_t)value;
            pos += payload_len;
            if (payload_len > scan->limits->max_field_bytes)
                return s_fail(scan, PT_DECODE_TOO_LARGE, "field too large",
                              field ? field->name : NULL);
            break;
        default:
            /* Groups (3, 4) are not used by proto3 and protobuf-c refuses them anyway. */
            return s_fail(scan, PT_DECODE_MALFORMED, "unsupported wire type", NULL);
        }
        if (!field)
            continue; /* unknown field: protobuf-c keeps it as bytes, bounded by the budget */

        if (field->label == PROTOBUF_C_LABEL_REPEATED && index < 64) {
            size_t add = 1;
            if (wire == 2 && field->type != PROTOBUF_C_TYPE_MESSAGE &&
                field->type != PROTOBUF_C_TYPE_STRING && field->type != PROTOBUF_C_TYPE_BYTES)
                add = payload_len; /* packed: at least one byte per element */
            counts[index] += add;
            if (counts[index] > scan->limits->max_repeated)
                return s_fail(scan, PT_DECODE_TOO_LARGE, "too many elements", field->name);
        }
        if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (wire != 2)
                return s_fail(scan, PT_DECODE_MALFORMED, "wrong wire type", field->name);
            pt_decode_result_t rc =
                s_scan(scan, field->descriptor, payload, payload_len, depth + 1);
            if (rc != PT_DECODE_OK)
                return rc;
        }
    }
    return PT_DECODE_OK;
}

pt_decode_result_t pt_decode_message(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                     size_t len, const pt_decode_limits_t *limits,
                                     ProtobufCMessage **msg_p, char *why, size_t why_len)
{
    s_scan_t scan = {limits, why, why_len};
    *msg_p = NULL;
    if (why && why_len)
        why[0] = '\0';
    if (len > limits->max_bytes)
        return s_fail(&scan, PT_DECODE_TOO_LARGE, "message too large", NULL);
    if (desc->n_fields > 64)
        return s_fail(&scan, PT_DECODE_MALFORMED, "descriptor has too many fields", NULL);
    pt_decode_result_t rc = s_scan(&scan, desc, data ? data : (const uint8_t *)"", len, 1);
    if (rc != PT_DECODE_OK)
        return rc;

    s_budget_t budget = {limits->alloc_budget};
    ProtobufCAllocator allocator = {s_alloc, s_free, &budget};
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &allocator, len, data);
    if (!msg)
        return s_fail(&scan, PT_DECODE_MALFORMED,
                      "protobuf rejected the bytes (invalid encoding or UTF-8, or over the "
                      "allocation budget)",
                      NULL);
    *msg_p = msg;
    return PT_DECODE_OK;
}

void pt_decode_free(ProtobufCMessage **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    protobuf_c_message_free_unpacked(*msg_p, NULL);
    *msg_p = NULL;
}

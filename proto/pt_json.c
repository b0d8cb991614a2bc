/*  pt_json — the proto3 JSON mapping over protobuf-c descriptors.

    Messages built here must be freed by protobuf_c_message_free_unpacked(m, NULL),
    so every allocation mirrors what that function frees: the message itself, every
    set string that is not the descriptor's default, bytes data, repeated arrays
    (and each string / bytes data / submessage in them) and submessages, but only
    the selected member of a oneof. We attach each allocation to the message as soon
    as it is made, so a parse error anywhere can free the partial message.
*/
#include "pt_json.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define S_PATH_BYTES 512

typedef struct {
    char path[S_PATH_BYTES];
    size_t path_len;
    char *err;
    size_t err_len;
} s_ctx_t;

#define S_MEMBER(type, msg, offset) (*(type *) ((char *) (msg) + (offset)))

//  --------------------------------------------------------------------------
//  Error reporting with the field path

static int s_fail(s_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
s_fail(s_ctx_t *ctx, const char *fmt, ...)
{
    if (!ctx->err || ctx->err_len == 0)
        return -1;
    char reason[PT_JSON_ERR_BYTES];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof reason, fmt, args);
    va_end(args);
    if (ctx->path_len > 0)
        snprintf(ctx->err, ctx->err_len, "%s: %s", ctx->path, reason);
    else
        snprintf(ctx->err, ctx->err_len, "%s", reason);
    return -1;
}

//  Input text echoed in errors (keys, enum names) is truncated and stripped of
//  anything unprintable so an error line can go to a log as is.
static void
s_sanitise(const char *text, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; text[i] && o + 4 < out_len; i++) {
        unsigned char c = (unsigned char) text[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char) c : '?';
        if (i >= 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
    }
    out[o] = '\0';
}

//  Appends ".name" or "name" (at the root) to the path; returns the old length.
static size_t
s_path_push_name(s_ctx_t *ctx, const char *name)
{
    size_t old = ctx->path_len;
    int n = snprintf(ctx->path + old, S_PATH_BYTES - old, "%s%s", old ? "." : "", name);
    if (n > 0)
        ctx->path_len = old + (size_t) n < S_PATH_BYTES ? old + (size_t) n : S_PATH_BYTES - 1;
    return old;
}

static size_t
s_path_push_index(s_ctx_t *ctx, size_t index)
{
    size_t old = ctx->path_len;
    int n = snprintf(ctx->path + old, S_PATH_BYTES - old, "[%zu]", index);
    if (n > 0)
        ctx->path_len = old + (size_t) n < S_PATH_BYTES ? old + (size_t) n : S_PATH_BYTES - 1;
    return old;
}

static void
s_path_pop(s_ctx_t *ctx, size_t old)
{
    ctx->path_len = old;
    ctx->path[old] = '\0';
}

//  --------------------------------------------------------------------------
//  Field names

//  protobuf's ToJsonName: drop each '_' and upper-case the character after it.
static int
s_json_name_equals(const char *proto_name, const char *key)
{
    int upper_next = 0;
    for (const char *p = proto_name; *p; p++) {
        if (*p == '_') {
            upper_next = 1;
            continue;
        }
        char c = *p;
        if (upper_next && c >= 'a' && c <= 'z')
            c = (char) (c - 'a' + 'A');
        upper_next = 0;
        if (*key++ != c)
            return 0;
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *
s_find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
    const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (field)
        return field;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (s_json_name_equals(desc->fields[i].name, key))
            return &desc->fields[i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Scalars from JSON

//  Strict decimal integer text: optional '-', digits, nothing else.
static int
s_parse_decimal(const char *text, int allow_negative, int *negative, uint64_t *magnitude)
{
    const char *p = text;
    *negative = 0;
    if (*p == '-') {
        if (!allow_negative)
            return -1;
        *negative = 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return -1;
    uint64_t value = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned digit = (unsigned) (*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -2;
        value = value * 10 + digit;
    }
    *magnitude = value;
    return 0;
}

//  Reads any JSON integer form (number, integral real, decimal string) into a
//  sign and magnitude so each width checks its own range once.
static int
s_json_integer(s_ctx_t *ctx, json_t *value, int *negative, uint64_t *magnitude, const char *type_name)
{
    if (json_is_integer(value)) {
        json_int_t v = json_integer_value(value);
        *negative = v < 0;
        *magnitude = v < 0 ? (uint64_t) (-(v + 1)) + 1 : (uint64_t) v;
        return 0;
    }
    if (json_is_real(value)) {
        double d = json_real_value(value);
        if (d != floor(d))
            return s_fail(ctx, "expected integer, got fraction");
        if (d >= 18446744073709551616.0 || d < -9223372036854775808.0)
            return s_fail(ctx, "integer out of range for %s", type_name);
        *negative = d < 0;
        *magnitude = d < 0 ? (uint64_t) (-d) : (uint64_t) d;
        return 0;
    }
    if (json_is_string(value)) {
        int rc = s_parse_decimal(json_string_value(value), 1, negative, magnitude);
        if (rc == -2)
            return s_fail(ctx, "integer out of range for %s", type_name);
        if (rc != 0)
            return s_fail(ctx, "expected integer");
        return 0;
    }
    return s_fail(ctx, "expected integer");
}

static int
s_json_signed(s_ctx_t *ctx, json_t *value, int64_t min, int64_t max, const char *type_name, int64_t *out)
{
    int negative;
    uint64_t magnitude;
    if (s_json_integer(ctx, value, &negative, &magnitude, type_name))
        return -1;
    if (negative) {
        if (magnitude > (uint64_t) (-(min + 1)) + 1)
            return s_fail(ctx, "integer out of range for %s", type_name);
        *out = magnitude == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) magnitude;
    }
    else {
        if (magnitude > (uint64_t) max)
            return s_fail(ctx, "integer out of range for %s", type_name);
        *out = (int64_t) magnitude;
    }
    return 0;
}

static int
s_json_unsigned(s_ctx_t *ctx, json_t *value, uint64_t max, const char *type_name, uint64_t *out)
{
    int negative;
    uint64_t magnitude;
    if (s_json_integer(ctx, value, &negative, &magnitude, type_name))
        return -1;
    if ((negative && magnitude != 0) || magnitude > max)
        return s_fail(ctx, "integer out of range for %s", type_name);
    *out = magnitude;
    return 0;
}

static int
s_json_floating(s_ctx_t *ctx, json_t *value, int is_float, double *out)
{
    double d;
    if (json_is_number(value))
        d = json_number_value(value);
    else if (json_is_string(value)) {
        const char *text = json_string_value(value);
        if (strcmp(text, "NaN") == 0)
            d = NAN;
        else if (strcmp(text, "Infinity") == 0)
            d = INFINITY;
        else if (strcmp(text, "-Infinity") == 0)
            d = -INFINITY;
        else {
            //  strtod also takes "inf", "nan", hex and leading blanks: allow only
            //  the characters of a JSON number.
            if (!(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
                return s_fail(ctx, "expected number");
            for (const char *p = text; *p; p++)
                if (!strchr("0123456789+-.eE", *p))
                    return s_fail(ctx, "expected number");
            char *end;
            errno = 0;
            d = strtod(text, &end);
            if (*end != '\0' || end == text)
                return s_fail(ctx, "expected number");
            if (errno == ERANGE && isinf(d))
                return s_fail(ctx, "number out of range for %s", is_float ? "float" : "double");
        }
    }
    else
        return s_fail(ctx, "expected number");
    if (is_float && isfinite(d) && fabs(d) > FLT_MAX)
        return s_fail(ctx, "number out of range for float");
    *out = d;
    return 0;
}

static int
s_base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

//  Standard or URL-safe alphabet, padding optional but correct if present.
static int
s_base64_decode(const char *text, size_t len, ProtobufCBinaryData *out)
{
    size_t padding = 0;
    while (len > 0 && text[len - 1] == '=' && padding < 2) {
        len--;
        padding++;
    }
    if (padding > 0 && (len + padding) % 4 != 0)
        return -1;
    if (len % 4 == 1)
        return -1;
    size_t out_len = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    uint8_t *data = out_len ? malloc(out_len) : NULL;
    if (out_len && !data)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_base64_value(text[i]);
        if (v < 0) {
            free(data);
            return -1;
        }
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[o++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->data = data;
    out->len = o;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parsing into a message

static int s_parse_message(s_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, json_t *object,
                           ProtobufCMessage *msg, int depth);

static ProtobufCMessage *
s_message_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (msg)
        protobuf_c_message_init(desc, msg);
    return msg;
}

static const char *
s_type_name(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32: return "int32";
    case PROTOBUF_C_TYPE_SINT32: return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
    case PROTOBUF_C_TYPE_UINT32: return "uint32";
    case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
    case PROTOBUF_C_TYPE_INT64: return "int64";
    case PROTOBUF_C_TYPE_SINT64: return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
    case PROTOBUF_C_TYPE_UINT64: return "uint64";
    case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
    case PROTOBUF_C_TYPE_ENUM: return "enum";
    default: return "value";
    }
}

static size_t
s_element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

//  Writes one JSON value into one slot (the member of a singular field or an
//  element of a repeated array). The slot's previous string, bytes or message
//  is released first the way protobuf_c_message_free_unpacked would.
static int
s_parse_value(s_ctx_t *ctx, const ProtobufCFieldDescriptor *field, json_t *value, void *slot, int depth)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int64_t v;
        if (s_json_signed(ctx, value, INT32_MIN, INT32_MAX, s_type_name(field->type), &v))
            return -1;
        *(int32_t *) slot = (int32_t) v;
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint64_t v;
        if (s_json_unsigned(ctx, value, UINT32_MAX, s_type_name(field->type), &v))
            return -1;
        *(uint32_t *) slot = (uint32_t) v;
        return 0;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        if (s_json_signed(ctx, value, INT64_MIN, INT64_MAX, s_type_name(field->type), &v))
            return -1;
        *(int64_t *) slot = v;
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;
        if (s_json_unsigned(ctx, value, UINT64_MAX, s_type_name(field->type), &v))
            return -1;
        *(uint64_t *) slot = v;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(value))
            return s_fail(ctx, "expected boolean");
        *(protobuf_c_boolean *) slot = json_is_true(value) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = 0;
        int is_float = field->type == PROTOBUF_C_TYPE_FLOAT;
        if (s_json_floating(ctx, value, is_float, &d))
            return -1;
        if (is_float)
            *(float *) slot = (float) d;
        else
            *(double *) slot = d;
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *enum_desc = field->descriptor;
        if (json_is_string(value)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(enum_desc, json_string_value(value));
            if (!ev) {
                char shown[64];
                s_sanitise(json_string_value(value), shown, sizeof shown);
                return s_fail(ctx, "unknown enum value \"%s\"", shown);
            }
            *(int32_t *) slot = ev->value;
            return 0;
        }
        if (json_is_number(value)) {
            //  proto3 enums are open: any int32 number is kept as is.
            int64_t v;
            if (s_json_signed(ctx, value, INT32_MIN, INT32_MAX, "enum", &v))
                return -1;
            *(int32_t *) slot = (int32_t) v;
            return 0;
        }
        return s_fail(ctx, "expected enum name or number");
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(value))
            return s_fail(ctx, "expected string");
        //  jansson has already rejected invalid UTF-8 and embedded NUL.
        char *copy = strdup(json_string_value(value));
        if (!copy)
            return s_fail(ctx, "out of memory");
        char **member = slot;
        if (*member && *member != (const char *) field->default_value)
            free(*member);
        *member = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(value))
            return s_fail(ctx, "expected base64 string");
        ProtobufCBinaryData decoded = {0, NULL};
        if (s_base64_decode(json_string_value(value), json_string_length(value), &decoded))
            return s_fail(ctx, "invalid base64");
        ProtobufCBinaryData *member = slot;
        const ProtobufCBinaryData *default_bd = field->default_value;
        if (member->data && (!default_bd || default_bd->data != member->data))
            free(member->data);
        *member = decoded;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(value))
            return s_fail(ctx, "expected object");
        const ProtobufCMessageDescriptor *sub_desc = field->descriptor;
        ProtobufCMessage **member = slot;
        if (*member && *member != field->default_value)
            protobuf_c_message_free_unpacked(*member, NULL);
        *member = s_message_new(sub_desc);
        if (!*member)
            return s_fail(ctx, "out of memory");
        return s_parse_message(ctx, sub_desc, value, *member, depth + 1);
    }
    }
    return s_fail(ctx, "unsupported field type");
}

static int
s_parse_repeated(s_ctx_t *ctx, const ProtobufCFieldDescriptor *field, json_t *value, ProtobufCMessage *msg,
                 int depth)
{
    if (json_is_null(value))
        return 0;
    if (!json_is_array(value))
        return s_fail(ctx, "expected array");
    size_t count = json_array_size(value);
    if (count == 0)
        return 0;
    size_t element_size = s_element_size(field->type);
    void *array = calloc(count, element_size);
    if (!array)
        return s_fail(ctx, "out of memory");
    //  Attach before filling: calloc'd slots (NULL pointers, zero lengths) are
    //  exactly what the free function skips, so a failure midway frees cleanly.
    S_MEMBER(void *, msg, field->offset) = array;
    S_MEMBER(size_t, msg, field->quantifier_offset) = count;
    for (size_t i = 0; i < count; i++) {
        json_t *element = json_array_get(value, i);
        size_t old = s_path_push_index(ctx, i);
        if (json_is_null(element))
            return s_fail(ctx, "null is not allowed in an array");
        if (s_parse_value(ctx, field, element, (char *) array + i * element_size, depth))
            return -1;
        s_path_pop(ctx, old);
    }
    return 0;
}

static int
s_parse_message(s_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, json_t *object, ProtobufCMessage *msg,
                int depth)
{
    if (depth > PT_JSON_MAX_DEPTH)
        return s_fail(ctx, "nesting deeper than %d levels", PT_JSON_MAX_DEPTH);
    //  Catches a field given under both its proto and its JSON name.
    unsigned char seen_small[64] = {0};
    unsigned char *seen = desc->n_fields <= sizeof seen_small ? seen_small : calloc(desc->n_fields, 1);
    if (!seen)
        return s_fail(ctx, "out of memory");

    int rc = -1;
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        const ProtobufCFieldDescriptor *field = s_find_field(desc, key);
        if (!field) {
            char shown[64];
            s_sanitise(key, shown, sizeof shown);
            s_fail(ctx, "unknown field \"%s\"", shown);
            goto error;
        }
        size_t index = (size_t) (field - desc->fields);
        size_t old = s_path_push_name(ctx, field->name);
        if (seen[index]) {
            s_fail(ctx, "field given twice (proto and JSON name)");
            goto error;
        }
        seen[index] = 1;

        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            if (s_parse_repeated(ctx, field, value, msg, depth))
                goto error;
        }
        else if (!json_is_null(value)) {
            //  null means "not set" for every singular field.
            if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t *oneof_case = &S_MEMBER(uint32_t, msg, field->quantifier_offset);
                if (*oneof_case != 0 && *oneof_case != field->id) {
                    const ProtobufCFieldDescriptor *other =
                        protobuf_c_message_descriptor_get_field(desc, *oneof_case);
                    s_fail(ctx, "another member of the same oneof is already set (\"%s\")",
                           other ? other->name : "?");
                    goto error;
                }
                //  Set the case first: the union member is only freed when selected.
                *oneof_case = field->id;
            }
            else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->type != PROTOBUF_C_TYPE_STRING
                     && field->type != PROTOBUF_C_TYPE_MESSAGE)
                S_MEMBER(protobuf_c_boolean, msg, field->quantifier_offset) = 1;
            if (s_parse_value(ctx, field, value, (char *) msg + field->offset, depth))
                goto error;
        }
        s_path_pop(ctx, old);
    }
    rc = 0;
error:
    if (seen != seen_small)
        free(seen);
    return rc;
}

//  Counts bracket depth outside strings before jansson sees the text, so a deep
//  document is refused in O(n) without recursing.
static int
s_depth_ok(const char *json, size_t len)
{
    int depth = 0, in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        }
        else if (c == '"')
            in_string = 1;
        else if (c == '{' || c == '[') {
            if (++depth > PT_JSON_MAX_DEPTH)
                return 0;
        }
        else if (c == '}' || c == ']')
            depth--;
    }
    return 1;
}

int
pt_json_to_message(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                   ProtobufCMessage **msg_p, char *err, size_t err_len)
{
    s_ctx_t ctx = {.path = "", .path_len = 0, .err = err, .err_len = err_len};
    json_t *root = NULL;
    ProtobufCMessage *msg = NULL;
    if (err && err_len)
        err[0] = '\0';
    if (msg_p)
        *msg_p = NULL;
    if (!desc || !msg_p || (!json && len > 0)) {
        s_fail(&ctx, "invalid arguments");
        goto error;
    }
    if (len > PT_JSON_MAX_BYTES) {
        s_fail(&ctx, "input larger than %d bytes", PT_JSON_MAX_BYTES);
        goto error;
    }
    if (!s_depth_ok(json, len)) {
        s_fail(&ctx, "nesting deeper than %d levels", PT_JSON_MAX_DEPTH);
        goto error;
    }
    json_error_t jerr;
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        //  jansson quotes the offending token ("near '\"Ana'"): that can be a
        //  child's data, and errors end up in logs, so keep only the reason.
        char *near = strstr(jerr.text, " near '");
        if (near)
            *near = '\0';
        s_fail(&ctx, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        goto error;
    }
    if (!json_is_object(root)) {
        s_fail(&ctx, "expected object at top level");
        goto error;
    }
    msg = s_message_new(desc);
    if (!msg) {
        s_fail(&ctx, "out of memory");
        goto error;
    }
    if (s_parse_message(&ctx, desc, root, msg, 1))
        goto error;
    json_decref(root);
    *msg_p = msg;
    return 0;
error:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    json_decref(root);
    return -1;
}

//  --------------------------------------------------------------------------
//  Message to JSON

static const char s_base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *
s_base64_encode(const ProtobufCBinaryData *bd)
{
    size_t out_len = (bd->len + 2) / 3 * 4;
    char *text = malloc(out_len + 1);
    if (!text)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < bd->len; i += 3) {
        uint32_t acc = (uint32_t) bd->data[i] << 16;
        if (i + 1 < bd->len)
            acc |= (uint32_t) bd->data[i + 1] << 8;
        if (i + 2 < bd->len)
            acc |= bd->data[i + 2];
        text[o++] = s_base64_alphabet[(acc >> 18) & 63];
        text[o++] = s_base64_alphabet[(acc >> 12) & 63];
        text[o++] = i + 1 < bd->len ? s_base64_alphabet[(acc >> 6) & 63] : '=';
        text[o++] = i + 2 < bd->len ? s_base64_alphabet[acc & 63] : '=';
    }
    json_t *result = json_stringn(text, o);
    free(text);
    return result;
}

static json_t *
s_floating_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static json_t *s_message_json(const ProtobufCMessage *msg, int depth);

static json_t *
s_value_json(const ProtobufCFieldDescriptor *field, const void *slot, int depth)
{
    char text[32];
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *) slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *) slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(text, sizeof text, "%" PRId64, *(const int64_t *) slot);
        return json_string(text);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(text, sizeof text, "%" PRIu64, *(const uint64_t *) slot);
        return json_string(text);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *) slot);
    case PROTOBUF_C_TYPE_FLOAT: return s_floating_json(*(const float *) slot);
    case PROTOBUF_C_TYPE_DOUBLE: return s_floating_json(*(const double *) slot);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *) slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(field->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *) slot;
        //  json_string refuses invalid UTF-8 (protobuf-c does not check it on
        //  unpack): the caller gets NULL rather than invalid JSON.
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: return s_base64_encode(slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *) slot;
        return sub ? s_message_json(sub, depth + 1) : json_object();
    }
    }
    return NULL;
}

//  proto3 presence: whether a field is written at all.
static int
s_field_present(const ProtobufCFieldDescriptor *field, const ProtobufCMessage *msg)
{
    const void *member = (const char *) msg + field->offset;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return S_MEMBER(uint32_t, msg, field->quantifier_offset) == field->id;
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return S_MEMBER(size_t, msg, field->quantifier_offset) > 0;
    if (field->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(ProtobufCMessage *const *) member != NULL;
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return 1;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (field->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(char *const *) member;
            return s != NULL && s != (const char *) field->default_value;
        }
        return S_MEMBER(protobuf_c_boolean, msg, field->quantifier_offset) != 0;
    }
    //  LABEL_NONE: omitted when equal to the proto3 default, with the same
    //  zero test protobuf-c's packer uses so JSON and wire agree.
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return *(const uint32_t *) member != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *) member != 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *) member != 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *) member != 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *) member != 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *) member;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *) member)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE: return 1;
    }
    return 0;
}

static json_t *
s_message_json(const ProtobufCMessage *msg, int depth)
{
    //  Unpacked messages have no depth limit of their own; refuse rather than
    //  recurse without bound.
    if (depth > PT_JSON_MAX_DEPTH)
        return NULL;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *object = json_object();
    if (!object)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        if (!s_field_present(field, msg))
            continue;
        json_t *value;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = S_MEMBER(size_t, msg, field->quantifier_offset);
            const char *array = S_MEMBER(const char *, msg, field->offset);
            size_t element_size = s_element_size(field->type);
            value = json_array();
            for (size_t j = 0; value && j < count; j++) {
                json_t *element = s_value_json(field, array + j * element_size, depth);
                if (!element || json_array_append_new(value, element)) {
                    json_decref(value);
                    value = NULL;
                }
            }
        }
        else
            value = s_value_json(field, (const char *) msg + field->offset, depth);
        if (!value || json_object_set_new(object, field->name, value)) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

char *
pt_json_from_message(const ProtobufCMessage *msg, int flags)
{
    if (!msg || !msg->descriptor)
        return NULL;
    json_t *root = s_message_json(msg, 1);
    if (!root)
        return NULL;
    size_t dump_flags = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17);
    dump_flags |= (flags & PT_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;
    char *text = json_dumps(root, dump_flags);
    json_decref(root);
    return text;
}

/*  pt_fields — field minimisation (issue 3): which agreement's field set applies,
    and whether a family message carries a field outside it. Descriptor-driven,
    so it works for every message type. See puente.h. */
#include <stdio.h>
#include <string.h>

#include "puente.h"

#define S_MAX_DEPTH 16

/* 1 if path is allowed: listed, or below a listed (message) path. */
static int s_allowed(const char *path, const char *const *allowed, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(allowed[i]);
        if (strncmp(path, allowed[i], len) == 0 && (path[len] == '\0' || path[len] == '.'))
            return 1;
    }
    return 0;
}

/* 1 if some allowed path lies below path (so a message field may be entered). */
static int s_allows_below(const char *path, const char *const *allowed, size_t n)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < n; i++)
        if (strncmp(allowed[i], path, len) == 0 && allowed[i][len] == '.')
            return 1;
    return 0;
}

/* Number of values the field holds: 0 when unset (proto3: default value). */
static size_t s_count(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    const void *member = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)member != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *str = *(const char *const *)member;
        return str && str[0];
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)member)->len > 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)member != 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member != 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)member != 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)member != 0;
    default: return *(const uint32_t *)member != 0;   /* 32-bit ints and enums */
    }
}

static int s_walk(const ProtobufCMessage *msg, const char *prefix, const char *const *allowed,
                  size_t n_allowed, int depth, char *offending, size_t offending_len)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t count = s_count(msg, f);
        if (count == 0)
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", f->name);
        if (s_allowed(path, allowed, n_allowed))
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth < S_MAX_DEPTH &&
            s_allows_below(path, allowed, n_allowed)) {
            const char *member = (const char *)msg + f->offset;
            for (size_t k = 0; k < count; k++) {
                const ProtobufCMessage *sub =
                    f->label == PROTOBUF_C_LABEL_REPEATED
                        ? (*(ProtobufCMessage *const *const *)member)[k]
                        : *(ProtobufCMessage *const *)member;
                if (sub && s_walk(sub, path, allowed, n_allowed, depth + 1, offending,
                                  offending_len) != 0)
                    return -1;
            }
            continue;
        }
        if (offending && offending_len)
            snprintf(offending, offending_len, "%s", path);
        return -1;
    }
    return 0;
}

int puente_fields_check(const ProtobufCMessage *body, const char *const *allowed, size_t n_allowed,
                        char *offending, size_t offending_len)
{
    if (offending && offending_len)
        offending[0] = '\0';
    if (!body)
        return 0;
    return s_walk(body, "", allowed, n_allowed, 0, offending, offending_len);
}

static int s_type_matches(const char *pattern, const char *type)
{
    size_t len = strlen(pattern);
    if (strcmp(pattern, "*") == 0)
        return 1;
    if (len >= 2 && pattern[len - 1] == '*' && pattern[len - 2] == '.')
        return strncmp(pattern, type, len - 1) == 0;
    return strcmp(pattern, type) == 0;
}

const Puente__V1__FieldSet *puente_field_set_for(Puente__V1__AgreementSpec *const *agreements,
                                                 size_t n, const char *a, const char *b,
                                                 const char *message_type, const char *purpose,
                                                 const char *agreement_id, int64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        const Puente__V1__AgreementSpec *ag = agreements[i];
        if (agreement_id && agreement_id[0] && strcmp(ag->agreement_id, agreement_id) != 0)
            continue;
        int parties = (strcmp(ag->org_a, a) == 0 && strcmp(ag->org_b, b) == 0) ||
                      (strcmp(ag->org_a, b) == 0 && strcmp(ag->org_b, a) == 0);
        if (!parties || now_ms < ag->valid_from_ms ||
            (ag->valid_until_ms && now_ms >= ag->valid_until_ms))
            continue;
        int purpose_ok = 0, type_ok = 0;
        for (size_t k = 0; k < ag->n_purposes && !purpose_ok; k++)
            purpose_ok = strcmp(ag->purposes[k], purpose) == 0;
        for (size_t k = 0; k < ag->n_message_types && !type_ok; k++)
            type_ok = s_type_matches(ag->message_types[k], message_type);
        if (!purpose_ok || !type_ok)
            continue;
        /* The agreement the broker routes under: its field set, or none. */
        for (size_t k = 0; k < ag->n_field_sets; k++)
            if (strcmp(ag->field_sets[k]->purpose, purpose) == 0)
                return ag->field_sets[k];
        return NULL;
    }
    return NULL;
}

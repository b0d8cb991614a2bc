/*  pt_util — SDK helpers with no connection: names of codes, durations, times,
    and the consent summary a header gets from a family message's consent block. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.pb-c.h"
#include "puente.h"

const char *puente_reject_name(int code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&puente__v1__reject_code__descriptor, code);
    return v ? v->name : "REJECT_UNKNOWN";
}

int puente_reject_retryable(int code)
{
    return code == PUENTE__V1__REJECT_CODE__REJECT_RETRY_LATER
           || code == PUENTE__V1__REJECT_CODE__REJECT_RATE_LIMITED
           || code == PUENTE__V1__REJECT_CODE__REJECT_QUOTA_EXCEEDED;
}

int puente_legal_basis_parse(const char *text)
{
    if (!text || !*text)
        return -1;
    char name[64];
    const char *prefix = "LEGAL_BASIS_";
    size_t plen = strlen(prefix);
    size_t tlen = strlen(text);
    if (tlen + plen + 1 > sizeof name)
        return -1;
    /* Accept both "vital_interests" and "LEGAL_BASIS_VITAL_INTERESTS". */
    if (strncasecmp(text, prefix, plen) == 0)
        name[0] = '\0';
    else
        memcpy(name, prefix, plen + 1);
    size_t at = strlen(name);
    for (size_t i = 0; i < tlen; i++) {
        char c = text[i];
        if (c == '-')
            c = '_';
        name[at++] = (char) toupper((unsigned char) c);
    }
    name[at] = '\0';
    if (strcmp(name, "LEGAL_BASIS_UNSPECIFIED") == 0)
        return -1;
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&puente__v1__legal_basis__descriptor, name);
    return v ? v->value : -1;
}

int puente_duration_parse(const char *text, int64_t *ms)
{
    if (!text || !isdigit((unsigned char) *text))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno)
        return -1;
    int64_t unit;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        unit = 86400 * 1000;
    else
        return -1;
    if (n > (unsigned long long) (INT64_MAX / unit))
        return -1;
    *ms = (int64_t) n * unit;
    return 0;
}

/* Reads exactly `digits` decimal digits. */
static int s_digits(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char) (*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *out = v;
    return 0;
}

int puente_time_parse(const char *text, int64_t *ms)
{
    if (!text)
        return -1;
    const char *p = text;
    int year, mon, day, hour = 0, min = 0, sec = 0, millis = 0;
    if (s_digits(&p, 4, &year) || *p++ != '-' || s_digits(&p, 2, &mon) || *p++ != '-'
        || s_digits(&p, 2, &day))
        return -1;
    int offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (s_digits(&p, 2, &hour) || *p++ != ':' || s_digits(&p, 2, &min))
            return -1;
        if (*p == ':') {
            p++;
            if (s_digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                p++;
                int scale = 100, n = 0;
                while (isdigit((unsigned char) *p)) {
                    millis += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                    n++;
                }
                if (n == 0)
                    return -1;
            }
        }
        if (*p == 'Z' || *p == 'z')
            p++;
        else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (s_digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (s_digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
        }
        else
            return -1; /* a time without a zone is ambiguous across countries */
    }
    if (*p != '\0')
        return -1;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour > 23
        || min > 59 || sec > 60)
        return -1;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon == 2 && day == 29 && !leap)
        return -1;
    struct tm tm = { 0 };
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t) -1)
        return -1;
    *ms = ((int64_t) t - (int64_t) offset_min * 60) * 1000 + millis;
    return 0;
}

void puente_time_format(int64_t ms, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return;
    int64_t secs = ms / 1000;
    int64_t rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs -= 1;
    }
    time_t t = (time_t) secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, out_len, "?");
        return;
    }
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) rem);
}

int puente_consent_derive(const ProtobufCMessage *body, Puente__V1__ConsentSummary *out)
{
    puente__v1__consent_summary__init(out);
    if (!body)
        return 0;
    /* Every family message that carries consent names the field "consent"; look it
       up by descriptor so new types need no code here. */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(body->descriptor, "consent");
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED
        || f->descriptor != &puente__v1__consent_block__descriptor)
        return 0;
    const Puente__V1__ConsentBlock *block =
        *(const Puente__V1__ConsentBlock *const *) ((const char *) body + f->offset);
    if (!block)
        return 0;
    out->consent_for_services = block->consent_for_services;
    out->disclosure_other_orgs = block->disclosure_other_orgs;
    out->consent_for_tracing = block->consent_for_tracing;
    if (block->n_legitimate_basis > 0)
        out->legal_basis = block->legitimate_basis[0];
    out->n_withhold_from = block->n_withhold_from;
    out->withhold_from = block->withhold_from;
    const Puente__V1__ConsentOverride *ov = block->override;
    if (ov && ((ov->approver && *ov->approver)
               || (ov->justification_code && *ov->justification_code))) {
        out->overridden = 1;
        out->override_approver = ov->approver ? ov->approver : (char *) "";
        /* An override states the basis it relies on; it outranks the listed ones. */
        if (ov->legal_basis != PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_UNSPECIFIED)
            out->legal_basis = ov->legal_basis;
    }
    return 1;
}

/*  stage — see stage.h. */
#include "stage.h"

#include <stdarg.h>
#include <stdio.h>

Puente__V1__RejectCode pt_verdict_reject(pt_verdict_t *verdict, Puente__V1__RejectCode code,
                                         const char *fmt, ...)
{
    verdict->code = code;
    va_list args;
    va_start(args, fmt);
    vsnprintf(verdict->reason, sizeof verdict->reason, fmt, args);
    va_end(args);
    return code;
}

const char *pt_reject_name(Puente__V1__RejectCode code)
{
    const ProtobufCEnumValue *value =
        protobuf_c_enum_descriptor_get_value(&puente__v1__reject_code__descriptor, (int)code);
    return value ? value->name : "REJECT_UNKNOWN";
}

/*  fuzz_json — the first byte picks a registered message type, the rest is JSON
    text for pt_json_to_message (what the CLI and the HTTP bridge take from
    national systems). Whatever parses must print, parse back to the same JSON,
    and survive pack and a bounded decode with the same JSON.
*/
#include "pt_decode.h"
#include "pt_json.h"
#include "pt_types.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_fail(const pt_type_t *type, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_json: %s: %s%s%s\n", type->name, what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const pt_type_t *type = pt_types_at(data[0] % pt_types_count());
    if (!type)
        abort();
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES];
    err[0] = '\0';
    if (pt_json_to_message(type->descriptor, (const char *) data + 1, size - 1, &msg, err,
                           sizeof err) != 0) {
        /* Contract: no message and a reason on every failure. */
        if (msg || err[0] == '\0')
            abort();
        return 0;
    }
    if (!msg || !protobuf_c_message_check(msg))
        s_fail(type, "parsed message fails protobuf_c_message_check", NULL);
    /* The parser refused invalid UTF-8 and deep nesting, so the printer has no reason to fail. */
    char *json = pt_json_from_message(msg, 0);
    if (!json)
        s_fail(type, "parsed message does not print", NULL);
    ProtobufCMessage *msg2 = NULL;
    if (pt_json_to_message(type->descriptor, json, strlen(json), &msg2, err, sizeof err) != 0)
        s_fail(type, "printed JSON does not parse back", err);
    char *json2 = pt_json_from_message(msg2, 0);
    if (!json2 || strcmp(json, json2) != 0)
        s_fail(type, "JSON -> message -> JSON is not stable", NULL);
    free(json2);
    protobuf_c_message_free_unpacked(msg2, NULL);

    /* Limits wide enough for anything the parser can build from max_len input. */
    size_t packed_len = protobuf_c_message_get_packed_size(msg);
    uint8_t *packed = malloc(packed_len ? packed_len : 1);
    if (!packed)
        abort();
    if (protobuf_c_message_pack(msg, packed) != packed_len)
        s_fail(type, "pack wrote another size than get_packed_size", NULL);
    pt_decode_limits_t limits = {
        .max_bytes = SIZE_MAX,
        .max_depth = 1000,
        .max_repeated = SIZE_MAX,
        .max_field_bytes = SIZE_MAX,
        .alloc_budget = SIZE_MAX / 2,
    };
    ProtobufCMessage *msg3 = NULL;
    char why[128];
    if (pt_decode_message(type->descriptor, packed, packed_len, &limits, &msg3, why, sizeof why) !=
        PT_DECODE_OK)
        s_fail(type, "packed message does not decode", why);
    char *json3 = pt_json_from_message(msg3, 0);
    if (!json3 || strcmp(json, json3) != 0)
        s_fail(type, "packed and decoded message prints other JSON", NULL);
    free(json3);
    pt_decode_free(&msg3);
    free(packed);
    free(json);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}

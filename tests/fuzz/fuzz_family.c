/*  fuzz_family — the first byte picks a registered message type, the rest is that
    family message's protobuf bytes, decoded under the broker's default limits.
    What decodes and prints as JSON must parse back, print the same JSON again
    (compact and pretty), and survive a pack/decode round trip with the same JSON.
    Bytes are not compared: protobuf encoding is not canonical and unknown fields
    are dropped by the JSON mapping.
*/
#include "pt_decode.h"
#include "pt_json.h"
#include "pt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_fail(const pt_type_t *type, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_family: %s: %s%s%s\n", type->name, what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* Parses json as type and returns its compact JSON; aborts if it does not parse. */
static char *s_reprint(const pt_type_t *type, const char *json)
{
    ProtobufCMessage *msg = NULL;
    char err[PT_JSON_ERR_BYTES];
    if (pt_json_to_message(type->descriptor, json, strlen(json), &msg, err, sizeof err) != 0)
        s_fail(type, "printed JSON does not parse back", err);
    char *again = pt_json_from_message(msg, 0);
    if (!again)
        s_fail(type, "parsed message does not print", NULL);
    protobuf_c_message_free_unpacked(msg, NULL);
    return again;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const pt_type_t *type = pt_types_at(data[0] % pt_types_count());
    if (!type)
        abort();
    pt_decode_limits_t limits = pt_decode_default_limits(1024 * 1024);
    ProtobufCMessage *msg = NULL;
    if (pt_decode_message(type->descriptor, data + 1, size - 1, &limits, &msg, NULL, 0) !=
        PT_DECODE_OK)
        return 0;
    /* NULL is allowed here: protobuf-c does not check UTF-8, the printer does. */
    char *json = pt_json_from_message(msg, 0);
    if (json) {
        char *again = s_reprint(type, json);
        if (strcmp(json, again) != 0)
            s_fail(type, "JSON -> message -> JSON is not stable", NULL);
        free(again);

        char *pretty = pt_json_from_message(msg, PT_JSON_PRETTY);
        if (!pretty)
            s_fail(type, "prints compact but not pretty", NULL);
        again = s_reprint(type, pretty);
        if (strcmp(json, again) != 0)
            s_fail(type, "pretty JSON parses to another message", NULL);
        free(again);
        free(pretty);

        /* message -> bytes -> message keeps what the JSON says. */
        size_t packed_len = protobuf_c_message_get_packed_size(msg);
        uint8_t *packed = malloc(packed_len ? packed_len : 1);
        if (!packed)
            abort();
        if (protobuf_c_message_pack(msg, packed) != packed_len)
            s_fail(type, "pack wrote another size than get_packed_size", NULL);
        ProtobufCMessage *msg2 = NULL;
        if (pt_decode_message(type->descriptor, packed, packed_len, &limits, &msg2, NULL, 0) !=
            PT_DECODE_OK)
            s_fail(type, "repacked message does not decode", NULL);
        char *json2 = pt_json_from_message(msg2, 0);
        if (!json2 || strcmp(json, json2) != 0)
            s_fail(type, "repacked message prints other JSON", NULL);
        free(json2);
        pt_decode_free(&msg2);
        free(packed);
        free(json);
    }
    pt_decode_free(&msg);
    return 0;
}

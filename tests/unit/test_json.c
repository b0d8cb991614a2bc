/*  test_json — the proto3 JSON mapping.

    The Puente schemas use only a few scalar types, so the scalar cases run on a
    hand-written protobuf-c descriptor (s_all) with one field of every type, a
    repeated field of several, a recursive submessage and a oneof, laid out
    exactly as protoc-c would lay them out. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "control.pb-c.h"
#include "pt_json.h"
#include "pt_types.h"
#include "referral.pb-c.h"
#include "cu_main.h"

//  --------------------------------------------------------------------------
//  The all-types test message

typedef struct s_all s_all_t;
struct s_all {
    ProtobufCMessage base;
    int32_t f_int32;
    int32_t f_sint32;
    int32_t f_sfixed32;
    uint32_t f_uint32;
    uint32_t f_fixed32;
    int64_t f_int64;
    int64_t f_sint64;
    int64_t f_sfixed64;
    uint64_t f_uint64;
    uint64_t f_fixed64;
    protobuf_c_boolean f_bool;
    float f_float;
    double f_double;
    char *f_string;
    ProtobufCBinaryData f_bytes;
    int f_enum;
    s_all_t *f_msg;
    size_t n_r_int64;
    int64_t *r_int64;
    size_t n_r_string;
    char **r_string;
    size_t n_r_bytes;
    ProtobufCBinaryData *r_bytes;
    size_t n_r_msg;
    s_all_t **r_msg;
    size_t n_r_enum;
    int *r_enum;
    size_t n_r_double;
    double *r_double;
    uint32_t choice_case;
    union {
        char *o_string;
        s_all_t *o_msg;
        int32_t o_int32;
    };
};

static const ProtobufCEnumValue s_enum_values[] = {
    {"TEST_ENUM_ZERO", "TEST_ENUM_ZERO", 0},
    {"TEST_ENUM_ONE", "TEST_ENUM_ONE", 1},
    {"TEST_ENUM_TWO", "TEST_ENUM_TWO", 2},
};
static const ProtobufCEnumValueIndex s_enum_by_name[] = {
    {"TEST_ENUM_ONE", 1},
    {"TEST_ENUM_TWO", 2},
    {"TEST_ENUM_ZERO", 0},
};
static const ProtobufCIntRange s_enum_ranges[] = {{0, 0}, {0, 3}};
static const ProtobufCEnumDescriptor s_enum_descriptor = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC, "test.TestEnum", "TestEnum", "TestEnum", "test", 3, s_enum_values, 3,
    s_enum_by_name, 1, s_enum_ranges, NULL, NULL, NULL, NULL};

static const ProtobufCMessageDescriptor s_all_descriptor;

#define S_F(name, id, label, type, quant, desc, dflt, flags)                                                     \
    {#name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, quant, offsetof(s_all_t, name), desc, dflt,   \
     flags, 0, NULL, NULL}
#define S_N(name, id, type) S_F(name, id, NONE, type, 0, NULL, NULL, 0)
#define S_R(name, id, type, desc) S_F(name, id, REPEATED, type, offsetof(s_all_t, n_##name), desc, NULL, 0)
#define S_O(name, id, type, desc)                                                                                \
    S_F(name, id, NONE, type, offsetof(s_all_t, choice_case), desc, NULL, PROTOBUF_C_FIELD_FLAG_ONEOF)

static const ProtobufCFieldDescriptor s_all_fields[] = {
    S_N(f_int32, 1, INT32),
    S_N(f_sint32, 2, SINT32),
    S_N(f_sfixed32, 3, SFIXED32),
    S_N(f_uint32, 4, UINT32),
    S_N(f_fixed32, 5, FIXED32),
    S_N(f_int64, 6, INT64),
    S_N(f_sint64, 7, SINT64),
    S_N(f_sfixed64, 8, SFIXED64),
    S_N(f_uint64, 9, UINT64),
    S_N(f_fixed64, 10, FIXED64),
    S_N(f_bool, 11, BOOL),
    S_N(f_float, 12, FLOAT),
    S_N(f_double, 13, DOUBLE),
    S_F(f_string, 14, NONE, STRING, 0, NULL, &protobuf_c_empty_string, 0),
    S_N(f_bytes, 15, BYTES),
    S_F(f_enum, 16, NONE, ENUM, 0, &s_enum_descriptor, NULL, 0),
    S_F(f_msg, 17, NONE, MESSAGE, 0, &s_all_descriptor, NULL, 0),
    S_R(r_int64, 18, INT64, NULL),
    S_R(r_string, 19, STRING, NULL),
    S_R(r_bytes, 20, BYTES, NULL),
    S_R(r_msg, 21, MESSAGE, &s_all_descriptor),
    S_R(r_enum, 22, ENUM, &s_enum_descriptor),
    S_R(r_double, 23, DOUBLE, NULL),
    S_O(o_string, 24, STRING, NULL),
    S_O(o_msg, 25, MESSAGE, &s_all_descriptor),
    S_O(o_int32, 26, INT32, NULL),
};
#define S_N_FIELDS (sizeof s_all_fields / sizeof s_all_fields[0])
static unsigned s_all_by_name[S_N_FIELDS];   // filled in main()
static const ProtobufCIntRange s_all_ranges[] = {{1, 0}, {0, S_N_FIELDS}};

static void
s_all_init(ProtobufCMessage *msg)
{
    memset(msg, 0, sizeof(s_all_t));
    msg->descriptor = &s_all_descriptor;
    ((s_all_t *) msg)->f_string = (char *) protobuf_c_empty_string;
}

static const ProtobufCMessageDescriptor s_all_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.All", "All", "All", "test", sizeof(s_all_t), S_N_FIELDS,
    s_all_fields, s_all_by_name, 1, s_all_ranges, s_all_init, NULL, NULL, NULL};

static int
s_by_name(const void *a, const void *b)
{
    return strcmp(s_all_fields[*(const unsigned *) a].name, s_all_fields[*(const unsigned *) b].name);
}

//  --------------------------------------------------------------------------
//  Helpers

static ProtobufCMessage *
s_parse(const ProtobufCMessageDescriptor *desc, const char *json, char *err)
{
    ProtobufCMessage *msg = NULL;
    int rc = pt_json_to_message(desc, json, strlen(json), &msg, err, PT_JSON_ERR_BYTES);
    if (rc != 0) {
        CU_ASSERT_PTR_NULL(msg);
        return NULL;
    }
    return msg;
}

static uint8_t *
s_pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    CU_ASSERT_EQUAL(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

//  JSON -> message -> bytes -> message -> JSON -> message -> bytes: both byte
//  strings and both JSON texts must be equal. Returns 1 on success.
static int
s_roundtrip(const ProtobufCMessageDescriptor *desc, const char *json, const char *label)
{
    char err[PT_JSON_ERR_BYTES] = "";
    int ok = 0;
    ProtobufCMessage *m1 = s_parse(desc, json, err);
    ProtobufCMessage *unpacked = NULL, *m2 = NULL;
    uint8_t *b1 = NULL, *b2 = NULL;
    char *j1 = NULL, *j2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (!m1) {
        fprintf(stderr, "\n%s: %s\n", label, err);
        goto done;
    }
    b1 = s_pack(m1, &l1);
    unpacked = protobuf_c_message_unpack(desc, NULL, l1, b1);
    if (!unpacked)
        goto done;
    j1 = pt_json_from_message(m1, 0);
    j2 = pt_json_from_message(unpacked, 0);
    if (!j1 || !j2 || strcmp(j1, j2) != 0)
        goto done;
    m2 = s_parse(desc, j2, err);
    if (!m2) {
        fprintf(stderr, "\n%s (reparse): %s\n", label, err);
        goto done;
    }
    b2 = s_pack(m2, &l2);
    ok = l1 == l2 && memcmp(b1, b2, l1) == 0 && l1 > 0;
done:
    if (!ok)
        fprintf(stderr, "\nround trip failed: %s\n", label);
    free(b1);
    free(b2);
    free(j1);
    free(j2);
    protobuf_c_message_free_unpacked(m1, NULL);
    protobuf_c_message_free_unpacked(m2, NULL);
    protobuf_c_message_free_unpacked(unpacked, NULL);
    return ok;
}

//  Parses, checks, and returns the compact JSON output (caller frees).
static char *
s_reprint(const ProtobufCMessageDescriptor *desc, const char *json)
{
    char err[PT_JSON_ERR_BYTES] = "";
    ProtobufCMessage *msg = s_parse(desc, json, err);
    if (!msg) {
        fprintf(stderr, "\nunexpected parse error: %s\n", err);
        return NULL;
    }
    char *out = pt_json_from_message(msg, 0);
    protobuf_c_message_free_unpacked(msg, NULL);
    return out;
}

#define S_ASSERT_REPRINT(desc, in, expected)                                                                     \
    do {                                                                                                         \
        char *out_ = s_reprint(desc, in);                                                                        \
        CU_ASSERT_PTR_NOT_NULL(out_);                                                                            \
        if (out_) {                                                                                              \
            if (strcmp(out_, expected) != 0)                                                                     \
                fprintf(stderr, "\n got: %s\nwant: %s\n", out_, expected);                                      \
            CU_ASSERT_STRING_EQUAL(out_, expected);                                                              \
        }                                                                                                        \
        free(out_);                                                                                              \
    } while (0)

//  --------------------------------------------------------------------------
//  Tests

static void
test_roundtrip_every_type(void)
{
    CU_ASSERT(pt_types_count() >= 29);
    for (size_t i = 0; i < pt_types_count(); i++) {
        const pt_type_t *type = pt_types_at(i);
        CU_ASSERT_TRUE(s_roundtrip(type->descriptor, type->example_json, type->name));
    }
}

static void
test_roundtrip_all_scalars(void)
{
    const char *json = "{\"f_int32\":-2147483648,\"f_sint32\":-7,\"f_sfixed32\":2147483647,"
                       "\"f_uint32\":4294967295,\"f_fixed32\":1,\"f_int64\":\"-9223372036854775808\","
                       "\"f_sint64\":\"9223372036854775807\",\"f_sfixed64\":\"-1\","
                       "\"f_uint64\":\"18446744073709551615\",\"f_fixed64\":\"18446744073709551615\","
                       "\"f_bool\":true,\"f_float\":1.5,\"f_double\":-0.001,\"f_string\":\"ñandú ✓\","
                       "\"f_bytes\":\"AAEC/w==\",\"f_enum\":\"TEST_ENUM_TWO\",\"f_msg\":{\"f_int32\":1},"
                       "\"r_int64\":[\"1\",\"-2\"],\"r_string\":[\"a\",\"\"],\"r_bytes\":[\"AQ==\",\"\"],"
                       "\"r_msg\":[{},{\"f_bool\":true}],\"r_enum\":[\"TEST_ENUM_ONE\",\"TEST_ENUM_ZERO\"],"
                       "\"r_double\":[\"NaN\",\"-Infinity\",2.5],\"o_msg\":{\"f_string\":\"x\"}}";
    CU_ASSERT_TRUE(s_roundtrip(&s_all_descriptor, json, "all scalars"));
    //  The output is the input: proto names, field order, canonical forms.
    S_ASSERT_REPRINT(&s_all_descriptor, json, json);
}

static void
test_int64_extremes(void)
{
    char err[PT_JSON_ERR_BYTES];
    s_all_t *m = (s_all_t *) s_parse(&s_all_descriptor,
                                      "{\"f_int64\":\"9223372036854775807\",\"f_sint64\":\"-9223372036854775808\","
                                      "\"f_sfixed64\":-9223372036854775808,\"f_uint64\":\"18446744073709551615\","
                                      "\"f_fixed64\":42,\"f_int32\":\"-2147483648\",\"f_uint32\":\"4294967295\"}",
                                      err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->f_int64, INT64_MAX);
    CU_ASSERT_EQUAL(m->f_sint64, INT64_MIN);
    CU_ASSERT_EQUAL(m->f_sfixed64, INT64_MIN);
    CU_ASSERT_EQUAL(m->f_uint64, UINT64_MAX);
    CU_ASSERT_EQUAL(m->f_fixed64, 42);
    CU_ASSERT_EQUAL(m->f_int32, INT32_MIN);
    CU_ASSERT_EQUAL(m->f_uint32, UINT32_MAX);
    char *out = pt_json_from_message(&m->base, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "{\"f_int32\":-2147483648,\"f_uint32\":4294967295,"
                                "\"f_int64\":\"9223372036854775807\",\"f_sint64\":\"-9223372036854775808\","
                                "\"f_sfixed64\":\"-9223372036854775808\",\"f_uint64\":\"18446744073709551615\","
                                "\"f_fixed64\":\"42\"}");
    free(out);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    //  Integral reals and exponents are integers too.
    m = (s_all_t *) s_parse(&s_all_descriptor,
                            "{\"f_int32\":1e3,\"f_uint32\":7.0,\"f_int64\":-2.0,\"f_sint64\":-9.223372036854775808e18}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->f_int32, 1000);
    CU_ASSERT_EQUAL(m->f_uint32, 7);
    CU_ASSERT_EQUAL(m->f_int64, -2);
    CU_ASSERT_EQUAL(m->f_sint64, INT64_MIN);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_float_specials(void)
{
    char err[PT_JSON_ERR_BYTES];
    s_all_t *m = (s_all_t *) s_parse(
        &s_all_descriptor,
        "{\"f_float\":\"NaN\",\"f_double\":\"-Infinity\",\"r_double\":[\"Infinity\",\"1.25\",-3e-2]}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(isnan(m->f_float));
    CU_ASSERT_TRUE(isinf(m->f_double) && m->f_double < 0);
    CU_ASSERT_EQUAL_FATAL(m->n_r_double, 3);
    CU_ASSERT_TRUE(isinf(m->r_double[0]) && m->r_double[0] > 0);
    CU_ASSERT_DOUBLE_EQUAL(m->r_double[1], 1.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(m->r_double[2], -0.03, 1e-15);
    char *out = pt_json_from_message(&m->base, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "{\"f_float\":\"NaN\",\"f_double\":\"-Infinity\","
                                "\"r_double\":[\"Infinity\",1.25,-0.029999999999999999]}");
    free(out);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    //  Exact round trip of values that have no short decimal form.
    CU_ASSERT_TRUE(s_roundtrip(&s_all_descriptor, "{\"f_float\":0.1,\"f_double\":0.1}", "float 0.1"));
    CU_ASSERT_TRUE(s_roundtrip(&s_all_descriptor, "{\"f_float\":3.4028234663852886e38,\"f_double\":1e-308}",
                               "float max"));
    CU_ASSERT_TRUE(s_roundtrip(&s_all_descriptor, "{\"f_float\":\"Infinity\",\"f_double\":\"NaN\"}", "specials"));
}

static void
test_bytes_base64(void)
{
    char err[PT_JSON_ERR_BYTES];
    const char *forms[] = {"\"+/8=\"", "\"-_8\"", "\"-_8=\"", "\"+/8\""};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"f_bytes\":%s}", forms[i]);
        s_all_t *m = (s_all_t *) s_parse(&s_all_descriptor, json, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL_FATAL(m->f_bytes.len, 2);
        CU_ASSERT_EQUAL(m->f_bytes.data[0], 0xfb);
        CU_ASSERT_EQUAL(m->f_bytes.data[1], 0xff);
        char *out = pt_json_from_message(&m->base, 0);
        CU_ASSERT_STRING_EQUAL(out, "{\"f_bytes\":\"+/8=\"}");
        free(out);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    //  No padding at every length, URL-safe, and the empty string.
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"r_bytes\":[\"AQ\",\"AQI\",\"AQID\",\"AQIDBA\",\"\"]}",
                     "{\"r_bytes\":[\"AQ==\",\"AQI=\",\"AQID\",\"AQIDBA==\",\"\"]}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"f_bytes\":\"\"}", "{}");
    s_all_t *m = (s_all_t *) s_parse(&s_all_descriptor, "{\"f_bytes\":\"aGVsbG8gd29ybGQ\"}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->f_bytes.len, 11);
    CU_ASSERT_EQUAL(memcmp(m->f_bytes.data, "hello world", 11), 0);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_enum_forms(void)
{
    char err[PT_JSON_ERR_BYTES];
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"f_enum\":2,\"r_enum\":[1,\"TEST_ENUM_TWO\",0]}",
                     "{\"f_enum\":\"TEST_ENUM_TWO\",\"r_enum\":[\"TEST_ENUM_ONE\",\"TEST_ENUM_TWO\",\"TEST_ENUM_ZERO\"]}");
    //  proto3 enums are open: an unknown number is kept and printed as a number.
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"f_enum\":7}", "{\"f_enum\":7}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"f_enum\":\"TEST_ENUM_ZERO\"}", "{}");
    Puente__V1__ChildIdentity *child = (Puente__V1__ChildIdentity *) s_parse(
        &puente__v1__child_identity__descriptor, "{\"sex\":1}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(child);
    CU_ASSERT_EQUAL(child->sex, PUENTE__V1__SEX__SEX_FEMALE);
    protobuf_c_message_free_unpacked(&child->base, NULL);
}

static void
test_camel_case_input(void)
{
    S_ASSERT_REPRINT(&puente__v1__child_identity__descriptor,
                     "{\"nameFirst\":\"Test\",\"dateOfBirth\":{\"year\":2010},\"externalIds\":[{\"idType\":\"x\"}],"
                     "\"name_last\":\"Ejemplo\"}",
                     "{\"name_first\":\"Test\",\"name_last\":\"Ejemplo\",\"date_of_birth\":{\"year\":2010},"
                     "\"external_ids\":[{\"id_type\":\"x\"}]}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"fSfixed64\":\"5\",\"rInt64\":[1],\"oString\":\"z\"}",
                     "{\"f_sfixed64\":\"5\",\"r_int64\":[\"1\"],\"o_string\":\"z\"}");
}

static void
test_output_exact(void)
{
    //  Defaults are omitted, proto names used, order is field number order.
    S_ASSERT_REPRINT(&puente__v1__child_identity__descriptor,
                     "{\"age\":0,\"estimated\":false,\"nationality\":[],\"sex\":\"SEX_FEMALE\",\"name_middle\":\"\","
                     "\"name_first\":\"Test\",\"date_of_birth\":{\"year\":0}}",
                     "{\"name_first\":\"Test\",\"sex\":\"SEX_FEMALE\",\"date_of_birth\":{}}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{}", "{}");

    char err[PT_JSON_ERR_BYTES];
    ProtobufCMessage *date = s_parse(&puente__v1__date__descriptor, "{\"month\":3,\"year\":2010}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(date);
    char *pretty = pt_json_from_message(date, PT_JSON_PRETTY);
    CU_ASSERT_STRING_EQUAL(pretty, "{\n  \"year\": 2010,\n  \"month\": 3\n}");
    free(pretty);
    protobuf_c_message_free_unpacked(date, NULL);

    //  A oneof member is printed when selected, even with a default value.
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"o_string\":\"\"}", "{\"o_string\":\"\"}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"o_int32\":0}", "{\"o_int32\":0}");
    S_ASSERT_REPRINT(&puente__v1__client_frame__descriptor, "{\"ack\":{}}", "{\"ack\":{}}");
}

static void
test_nulls(void)
{
    char err[PT_JSON_ERR_BYTES];
    Puente__V1__ReferralRequest *rr = (Puente__V1__ReferralRequest *) s_parse(
        &puente__v1__referral_request__descriptor,
        "{\"child\":null,\"services\":null,\"urgency\":null,\"referral_id\":\"TEST-1\"}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rr);
    CU_ASSERT_PTR_NULL(rr->child);
    CU_ASSERT_EQUAL(rr->n_services, 0);
    CU_ASSERT_STRING_EQUAL(rr->urgency, "");
    CU_ASSERT_STRING_EQUAL(rr->referral_id, "TEST-1");
    protobuf_c_message_free_unpacked(&rr->base, NULL);

    //  A null oneof member does not select the oneof.
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"o_msg\":null,\"o_int32\":5}", "{\"o_int32\":5}");
    S_ASSERT_REPRINT(&s_all_descriptor, "{\"o_int32\":5,\"o_msg\":null}", "{\"o_int32\":5}");
}

static void
test_oneof(void)
{
    char err[PT_JSON_ERR_BYTES];
    Puente__V1__ClientFrame *frame = (Puente__V1__ClientFrame *) s_parse(
        &puente__v1__client_frame__descriptor, "{\"hello\":{\"org_id\":\"MX-DIF\",\"receive\":true}}", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(frame);
    CU_ASSERT_EQUAL(frame->body_case, PUENTE__V1__CLIENT_FRAME__BODY_HELLO);
    CU_ASSERT_STRING_EQUAL(frame->hello->org_id, "MX-DIF");
    CU_ASSERT_TRUE(frame->hello->receive);
    protobuf_c_message_free_unpacked(&frame->base, NULL);

    CU_ASSERT_TRUE(s_roundtrip(&puente__v1__client_frame__descriptor,
                               "{\"admin\":{\"request_id\":\"12\",\"agreement_add\":{\"agreement_id\":\"TEST-AG-1\","
                               "\"purposes\":[\"family_tracing\"],\"valid_from_ms\":\"1700000000000\"}}}",
                               "admin frame"));
    CU_ASSERT_TRUE(s_roundtrip(&puente__v1__client_frame__descriptor,
                               "{\"submit\":{\"header\":\"AAEC\",\"payloads\":[{\"recipient\":\"GT-PGN\","
                               "\"nonce\":\"AAAAAAAAAAAAAAAA\"}]}}",
                               "submit frame"));
}

static void
test_invalid_utf8_output(void)
{
    //  protobuf-c does not check UTF-8 on unpack; the printer must refuse.
    Puente__V1__ReferralUpdate update = PUENTE__V1__REFERRAL_UPDATE__INIT;
    char bad[] = "ok \xff\xfe";
    update.note = bad;
    CU_ASSERT_PTR_NULL(pt_json_from_message(&update.base, 0));
    char good[] = "ok";
    update.note = good;
    char *out = pt_json_from_message(&update.base, 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"note\":\"ok\"}");
    free(out);
    CU_ASSERT_PTR_NULL(pt_json_from_message(NULL, 0));
}

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *json;
    const char *expected;   // the error must begin with this
} s_bad_t;

static void
test_bad_inputs(void)
{
    const ProtobufCMessageDescriptor *rr = &puente__v1__referral_request__descriptor;
    const ProtobufCMessageDescriptor *all = &s_all_descriptor;
    const ProtobufCMessageDescriptor *date = &puente__v1__date__descriptor;
    const ProtobufCMessageDescriptor *child = &puente__v1__child_identity__descriptor;
    const s_bad_t cases[] = {
        {rr, "{\"foo\":1}", "unknown field \"foo\""},
        {rr, "{\"child\":{\"foo\":1}}", "child: unknown field \"foo\""},
        {rr, "{\"services\":[{},{\"service_type\":5}]}", "services[1].service_type: expected string"},
        {rr, "{\"child\":{\"sex\":\"X\"}}", "child.sex: unknown enum value \"X\""},
        {rr, "{\"child\":{\"sex\":true}}", "child.sex: expected enum"},
        {date, "{\"year\":2147483648}", "year: integer out of range for int32"},
        {date, "{\"year\":\"2147483648\"}", "year: integer out of range for int32"},
        {date, "{\"year\":-2147483649}", "year: integer out of range for int32"},
        {child, "{\"age\":-1}", "age: integer out of range for uint32"},
        {child, "{\"age\":4294967296}", "age: integer out of range for uint32"},
        {date, "{\"year\":1.5}", "year: expected integer"},
        {date, "{\"year\":\" 12\"}", "year: expected integer"},
        {all, "{\"f_bytes\":\"!!!!\"}", "f_bytes: invalid base64"},
        {all, "{\"f_bytes\":\"AQI==\"}", "f_bytes: invalid base64"},
        {all, "{\"f_bytes\":\"A\"}", "f_bytes: invalid base64"},
        {all, "{\"f_bytes\":12}", "f_bytes: expected base64 string"},
        {all, "{\"f_int64\":\"9223372036854775808\"}", "f_int64: integer out of range for int64"},
        {all, "{\"f_int64\":\"-9223372036854775809\"}", "f_int64: integer out of range for int64"},
        {all, "{\"f_uint64\":\"-1\"}", "f_uint64: integer out of range for uint64"},
        {all, "{\"f_uint64\":\"18446744073709551616\"}", "f_uint64: integer out of range for uint64"},
        {all, "{\"f_int64\":\"12abc\"}", "f_int64: expected integer"},
        {all, "{\"f_int64\":\"+12\"}", "f_int64: expected integer"},
        {all, "{\"f_bool\":\"true\"}", "f_bool: expected boolean"},
        {all, "{\"f_bool\":1}", "f_bool: expected boolean"},
        {all, "{\"f_float\":3.5e38}", "f_float: number out of range for float"},
        {all, "{\"f_double\":\"nan\"}", "f_double: expected number"},
        {all, "{\"f_double\":\"0x10\"}", "f_double: expected number"},
        {all, "{\"f_string\":null,\"f_string\":\"a\"}", "invalid JSON"},
        {rr, "{\"urgency\":\"a\",\"urgency\":\"b\"}", "invalid JSON"},
        {rr, "{\"child\":{\"name_first\":\"\xff\xfe\"}}", "invalid JSON"},
        {rr, "{\"child\":{\"name_first\":\"Ana \xc3\"}}", "invalid JSON"},
        {rr, "{\"child\":{\"name_first\":\"a\\u0000b\"}}", "invalid JSON"},
        {rr, "[]", "expected object at top level"},
        {rr, "[{\"referral_id\":\"x\"}]", "expected object at top level"},
        {rr, "\"referral\"", "invalid JSON"},
        {rr, "{\"referral_id\":\"x\"", "invalid JSON"},
        {rr, "", "invalid JSON"},
        {rr, "{} {}", "invalid JSON"},
        {&puente__v1__client_frame__descriptor, "{\"hello\":{},\"ack\":{}}",
         "ack: another member of the same oneof is already set (\"hello\")"},
        {all, "{\"o_int32\":0,\"o_string\":\"\"}", "o_string: another member of the same oneof"},
        {rr, "{\"child\":\"Ana\"}", "child: expected object"},
        {rr, "{\"child\":[]}", "child: expected object"},
        {rr, "{\"services\":{}}", "services: expected array"},
        {rr, "{\"services\":[null]}", "services[0]: null is not allowed in an array"},
        {rr, "{\"child\":{\"name_first\":\"a\",\"nameFirst\":\"b\"}}", "child.name_first: field given twice"},
        {all, "{\"r_int64\":[\"1\",\"x\"]}", "r_int64[1]: expected integer"},
        {rr, "{\"protection\":{\"protection_concerns\":[\"migrant\",7]}}",
         "protection.protection_concerns[1]: expected string"},
        {rr, "{\"child\":{\"date_of_birth\":{\"month\":\"three\"}}}", "child.date_of_birth.month: expected integer"},
        {all, "{\"f_msg\":{\"f_msg\":{\"f_enum\":\"NOPE\"}}}", "f_msg.f_msg.f_enum: unknown enum value \"NOPE\""},
        {all, "{\"r_msg\":[{},{\"r_string\":[\"a\",\"b\",{}]}]}", "r_msg[1].r_string[2]: expected string"},
        {all, "{\"o_msg\":{\"r_bytes\":[\"AQ\",\"%%\"]}}", "o_msg.r_bytes[1]: invalid base64"},
        {rr, "{\"Referral_id\":\"x\"}", "unknown field \"Referral_id\""},
        {rr, "{\"referralID\":\"x\"}", "unknown field \"referralID\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[PT_JSON_ERR_BYTES] = "";
        ProtobufCMessage *msg = (ProtobufCMessage *) 0x1;
        int rc = pt_json_to_message(cases[i].desc, cases[i].json, strlen(cases[i].json), &msg, err, sizeof err);
        int matches = strncmp(err, cases[i].expected, strlen(cases[i].expected)) == 0;
        if (rc != -1 || !matches)
            fprintf(stderr, "\ncase %zu: %s\n  got rc %d: %s\n  want: %s\n", i, cases[i].json, rc, err,
                    cases[i].expected);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(msg);
        CU_ASSERT_TRUE(matches);
        if (rc == 0)
            protobuf_c_message_free_unpacked(msg, NULL);
    }
    CU_ASSERT(sizeof cases / sizeof cases[0] >= 20);
}

//  Builds {"f_msg":{"f_msg":...{}...}} with the given number of objects.
static char *
s_nested(size_t levels)
{
    char *json = malloc(levels * 10 + 1);
    size_t o = 0;
    for (size_t i = 0; i + 1 < levels; i++) {
        memcpy(json + o, "{\"f_msg\":", 9);
        o += 9;
    }
    json[o++] = '{';
    for (size_t i = 0; i < levels; i++)
        json[o++] = '}';
    json[o] = '\0';
    return json;
}

static void
test_limits(void)
{
    char err[PT_JSON_ERR_BYTES];
    ProtobufCMessage *msg = NULL;

    char *deep = s_nested(100);
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, deep, strlen(deep), &msg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nesting deeper than 32"));
    CU_ASSERT_PTR_NULL(msg);
    free(deep);

    //  Deep arrays inside a field we would reject anyway are refused before parsing.
    char brackets[256] = "{\"foo\":";
    for (int i = 0; i < 60; i++)
        strcat(brackets, "[");
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, brackets, strlen(brackets), &msg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nesting deeper than 32"));

    //  Brackets inside strings do not count.
    CU_ASSERT_TRUE(s_roundtrip(&s_all_descriptor,
                               "{\"f_string\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"
                               "\\\"\"}",
                               "brackets in a string"));

    deep = s_nested(PT_JSON_MAX_DEPTH);
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, deep, strlen(deep), &msg, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    char *out = pt_json_from_message(msg, 0);
    CU_ASSERT_STRING_EQUAL(out, deep);
    free(out);
    protobuf_c_message_free_unpacked(msg, NULL);
    msg = NULL;
    free(deep);

    deep = s_nested(PT_JSON_MAX_DEPTH + 1);
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, deep, strlen(deep), &msg, err, sizeof err), -1);
    free(deep);

    //  Size is checked before anything else.
    size_t big_len = PT_JSON_MAX_BYTES + 1;
    char *big = malloc(big_len + 1);
    memset(big, ' ', big_len);
    memcpy(big, "{\"f_string\":\"", 13);
    big[big_len - 2] = '"';
    big[big_len - 1] = '}';
    big[big_len] = '\0';
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, big, big_len, &msg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "input larger than"));
    CU_ASSERT_PTR_NULL(msg);
    //  One byte less is accepted (a long string of spaces).
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, big + 1, big_len - 1, &msg, err, sizeof err), -1);
    memcpy(big + 1, "{\"f_string\":\"", 13);
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, big + 1, big_len - 1, &msg, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(msg);
    if (msg)
        CU_ASSERT_EQUAL(strlen(((s_all_t *) msg)->f_string), big_len - 1 - 15);
    protobuf_c_message_free_unpacked(msg, NULL);
    free(big);

    //  Length is honoured: trailing bytes past len are not read.
    msg = NULL;
    const char *text = "{\"f_int32\":5}garbage";
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, text, 13, &msg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(msg ? ((s_all_t *) msg)->f_int32 : 0, 5);
    protobuf_c_message_free_unpacked(msg, NULL);

    //  Errors about malformed JSON do not quote the input (it may be a child's data).
    text = "{\"child\":{\"name_first\":\"Secreta";
    CU_ASSERT_EQUAL(pt_json_to_message(&puente__v1__referral_request__descriptor, text, strlen(text), &msg, err,
                                       sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid JSON at line 1"));
    CU_ASSERT_PTR_NULL(strstr(err, "Secreta"));
    text = "{\"referral_id\":\"Secreta\",\"referral_id\":\"Secreta\"}";
    CU_ASSERT_EQUAL(pt_json_to_message(&puente__v1__referral_request__descriptor, text, strlen(text), &msg, err,
                                       sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate object key"));
    CU_ASSERT_PTR_NULL(strstr(err, "Secreta"));
    //  err may be NULL; msg_p is cleared on failure.
    msg = (ProtobufCMessage *) 0x1;
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, "{\"x\":1}", 7, &msg, NULL, 0), -1);
    CU_ASSERT_PTR_NULL(msg);

    //  A short error buffer is truncated, not overrun.
    char small[8];
    CU_ASSERT_EQUAL(pt_json_to_message(&s_all_descriptor, "{\"zzzzzz\":1}", 12, &msg, small, sizeof small), -1);
    CU_ASSERT_STRING_EQUAL(small, "unknown");
}

int
main(void)
{
    for (unsigned i = 0; i < S_N_FIELDS; i++)
        s_all_by_name[i] = i;
    qsort(s_all_by_name, S_N_FIELDS, sizeof s_all_by_name[0], s_by_name);

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("json", NULL, NULL);
    if (!suite || !CU_add_test(suite, "round trip of every registered type", test_roundtrip_every_type)
        || !CU_add_test(suite, "round trip of every field type", test_roundtrip_all_scalars)
        || !CU_add_test(suite, "64-bit and 32-bit extremes", test_int64_extremes)
        || !CU_add_test(suite, "float special values", test_float_specials)
        || !CU_add_test(suite, "bytes base64 forms", test_bytes_base64)
        || !CU_add_test(suite, "enum names and numbers", test_enum_forms)
        || !CU_add_test(suite, "lowerCamelCase input", test_camel_case_input)
        || !CU_add_test(suite, "exact output", test_output_exact)
        || !CU_add_test(suite, "null values", test_nulls) || !CU_add_test(suite, "oneof", test_oneof)
        || !CU_add_test(suite, "invalid UTF-8 on output", test_invalid_utf8_output)
        || !CU_add_test(suite, "bad inputs", test_bad_inputs) || !CU_add_test(suite, "limits", test_limits)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

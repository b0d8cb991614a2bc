/*  test_decode — bounded decoding of hostile protobuf bytes. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "pt_decode.h"
#include "cu_main.h"

static uint8_t *s_pack_submit(size_t n_payloads, size_t ciphertext_len, size_t *len)
{
    Puente__V1__Envelope env = PUENTE__V1__ENVELOPE__INIT;
    Puente__V1__SealedPayload *payloads = calloc(n_payloads ? n_payloads : 1, sizeof *payloads);
    Puente__V1__SealedPayload **list = calloc(n_payloads ? n_payloads : 1, sizeof *list);
    uint8_t *ct = calloc(1, ciphertext_len ? ciphertext_len : 1);
    for (size_t i = 0; i < n_payloads; i++) {
        puente__v1__sealed_payload__init(&payloads[i]);
        payloads[i].recipient = "GT-PGN";
        payloads[i].ciphertext = (ProtobufCBinaryData){ciphertext_len, ct};
        list[i] = &payloads[i];
    }
    env.payloads = list;
    env.n_payloads = n_payloads;
    env.header = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
    Puente__V1__ClientFrame frame = PUENTE__V1__CLIENT_FRAME__INIT;
    frame.body_case = PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT;
    frame.submit = &env;
    *len = puente__v1__client_frame__get_packed_size(&frame);
    uint8_t *out = malloc(*len);
    puente__v1__client_frame__pack(&frame, out);
    free(ct);
    free(list);
    free(payloads);
    return out;
}

static void test_valid_frame_decodes(void)
{
    size_t len;
    uint8_t *bytes = s_pack_submit(2, 100, &len);
    pt_decode_limits_t limits = pt_decode_default_limits(1 << 20);
    ProtobufCMessage *msg = NULL;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, NULL, 0),
                    PT_DECODE_OK);
    Puente__V1__ClientFrame *frame = (Puente__V1__ClientFrame *)msg;
    CU_ASSERT_EQUAL_FATAL(frame->body_case, PUENTE__V1__CLIENT_FRAME__BODY_SUBMIT);
    CU_ASSERT_EQUAL(frame->submit->n_payloads, 2);
    CU_ASSERT_EQUAL(frame->submit->payloads[1]->ciphertext.len, 100);
    CU_ASSERT_STRING_EQUAL(frame->submit->payloads[0]->recipient, "GT-PGN");
    pt_decode_free(&msg);
    CU_ASSERT_PTR_NULL(msg);
    pt_decode_free(&msg); /* no-op */
    free(bytes);
}

static void test_limits(void)
{
    size_t len;
    char why[128];
    ProtobufCMessage *msg = NULL;
    pt_decode_limits_t limits = pt_decode_default_limits(1 << 20);

    uint8_t *bytes = s_pack_submit(1025, 1, &len); /* one over the repeated limit */
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "payloads"));
    CU_ASSERT_PTR_NULL(msg);
    free(bytes);

    bytes = s_pack_submit(1, 5000, &len);
    limits.max_field_bytes = 4096;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_TOO_LARGE);
    limits = pt_decode_default_limits(1 << 20);
    limits.max_bytes = len - 1;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_TOO_LARGE);
    /* The allocation budget stops what the byte limits let through. */
    limits = pt_decode_default_limits(1 << 20);
    limits.alloc_budget = 2048;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_MALFORMED);
    limits.alloc_budget = 1 << 20;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_OK);
    pt_decode_free(&msg);
    /* Depth: the submit envelope's payloads sit at depth 3. */
    limits.max_depth = 2;
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, bytes, len, &limits,
                                      &msg, why, sizeof why),
                    PT_DECODE_TOO_DEEP);
    free(bytes);
}

static void test_malformed_inputs(void)
{
    pt_decode_limits_t limits = pt_decode_default_limits(1 << 20);
    ProtobufCMessage *msg = NULL;
    struct {
        const char *name;
        const uint8_t bytes[16];
        size_t len;
        pt_decode_result_t expect;
    } cases[] = {
        /* The bytes end inside a field: TRUNCATED (REJECT_TRUNCATED at the broker). */
        {"truncated varint tag", {0x80}, 1, PT_DECODE_TRUNCATED},
        {"length beyond end", {0x0a, 0x7f, 0x01}, 3, PT_DECODE_TRUNCATED},
        {"truncated fixed64", {0x09, 1, 2, 3}, 4, PT_DECODE_TRUNCATED},
        {"truncated fixed32", {0x0d, 1}, 2, PT_DECODE_TRUNCATED},
        {"truncated varint value", {0x08, 0x80, 0x80}, 3, PT_DECODE_TRUNCATED},
        {"length cut off", {0x0a, 0x80}, 2, PT_DECODE_TRUNCATED},
        /* Not this protobuf at all: MALFORMED. */
        {"field number zero", {0x00, 0x01}, 2, PT_DECODE_MALFORMED},
        {"group wire type", {0x0b, 0x0c}, 2, PT_DECODE_MALFORMED},
        {"varint over 10 bytes", {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12, PT_DECODE_MALFORMED},
        {"tag over 10 bytes", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11, PT_DECODE_MALFORMED},
        {"message field with varint wire type", {0x08, 0x01}, 2, PT_DECODE_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_decode_result_t rc = pt_decode_message(&puente__v1__client_frame__descriptor,
                                                  cases[i].bytes, cases[i].len, &limits, &msg,
                                                  NULL, 0);
        if (rc != cases[i].expect)
            fprintf(stderr, "case '%s' gave %d\n", cases[i].name, rc);
        CU_ASSERT_EQUAL(rc, cases[i].expect);
        CU_ASSERT_PTR_NULL(msg);
    }
    /* Empty input is a valid, empty message (the broker refuses empty frames earlier). */
    CU_ASSERT_EQUAL(pt_decode_message(&puente__v1__client_frame__descriptor, NULL, 0, &limits, &msg,
                                      NULL, 0),
                    PT_DECODE_OK);
    pt_decode_free(&msg);
    /* Random bytes never crash and never leak. */
    srand(7);
    uint8_t noise[256];
    for (int round = 0; round < 5000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof noise);
        for (size_t i = 0; i < len; i++)
            noise[i] = (uint8_t)rand();
        if (pt_decode_message(&puente__v1__client_frame__descriptor, noise, len, &limits, &msg,
                              NULL, 0) == PT_DECODE_OK)
            pt_decode_free(&msg);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("decode", NULL, NULL);
    CU_add_test(suite, "valid frame decodes", test_valid_frame_decodes);
    CU_add_test(suite, "size, count, depth and budget limits", test_limits);
    CU_add_test(suite, "malformed inputs", test_malformed_inputs);
    return pt_cu_main();
}

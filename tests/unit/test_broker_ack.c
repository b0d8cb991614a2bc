/*  test_broker_ack — broker/ack.c: what an ack must carry to be queued, the
    batch handed to the store in one call in arrival order, and the answer for
    each store outcome (Acked for a first or repeated ack, NOT_FOUND, RETRY_LATER
    for a failed commit). The store is the seam: pt_store_ack_batch is stubbed
    below (linked in place of broker/store.c's), the rest is the real module. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "ack.h"
#include "control.pb-c.h"
#include "cu_main.h"

#define REJ(code) PUENTE__V1__REJECT_CODE__##code

/* --- the store seam -------------------------------------------------------- */

static size_t s_calls; /* pt_store_ack_batch calls */
static size_t s_last_n;
static int64_t s_last_now;
static char s_recipients[8][PT_STORE_ORG_ID_MAX];
static uint8_t s_ids[8][16];
static pt_store_result_t s_item_results[8]; /* what the stub answers per item */
static pt_store_result_t s_batch_result;

pt_store_result_t pt_store_ack_batch(pt_store_t *self, pt_store_ack_item_t *items, size_t n,
                                     int64_t now_ms)
{
    (void)self;
    s_calls++;
    s_last_n = n;
    s_last_now = now_ms;
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(s_recipients[i], sizeof s_recipients[i], "%s", items[i].recipient);
        memcpy(s_ids[i], items[i].message_id, 16);
        items[i].result = s_batch_result == PT_STORE_OK ? s_item_results[i] : s_batch_result;
    }
    return s_batch_result;
}

/* --- answers --------------------------------------------------------------- */

typedef struct {
    size_t n;
    char identity[8][PT_STORE_ORG_ID_MAX];
    uint8_t rid[8][8];
    size_t rid_len[8];
    uint8_t id[8][16];
    int first[8];
    Puente__V1__RejectCode code[8];
} s_answers_t;

static void s_answer(const pt_ack_outcome_t *out, void *arg)
{
    s_answers_t *a = arg;
    size_t i = a->n++;
    snprintf(a->identity[i], sizeof a->identity[i], "%s", out->identity);
    memcpy(a->rid[i], out->routing_id, out->routing_id_len);
    a->rid_len[i] = out->routing_id_len;
    memcpy(a->id[i], out->message_id, 16);
    a->first[i] = out->first;
    a->code[i] = out->verdict.code;
}

static void s_inbound(pt_inbound_t *in, const char *org, uint8_t rid_byte)
{
    memset(in, 0, sizeof *in);
    snprintf(in->identity, sizeof in->identity, "%s", org);
    memset(in->routing_id, rid_byte, 5);
    in->routing_id_len = 5;
}

static void test_queue_checks(void)
{
    pt_acks_t *acks = pt_acks_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(acks);
    pt_inbound_t in;
    s_inbound(&in, "GT-PGN", 1);
    uint8_t id[17];
    memset(id, 0x55, sizeof id);
    Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
    pt_verdict_t v = {0};
    /* No id, 15 and 17 bytes: INVALID_FIELD, nothing queued. */
    size_t lens[] = {0, 15, 17};
    for (size_t i = 0; i < 3; i++) {
        ack.message_id = (ProtobufCBinaryData){lens[i], id};
        memset(&v, 0, sizeof v);
        CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), REJ(REJECT_INVALID_FIELD));
        CU_ASSERT_EQUAL(v.code, REJ(REJECT_INVALID_FIELD));
        CU_ASSERT_STRING_EQUAL(v.reason, "ack message_id must be 16 bytes");
    }
    CU_ASSERT_EQUAL(pt_acks_count(acks), 0);
    ack.message_id = (ProtobufCBinaryData){16, id};
    memset(&v, 0, sizeof v);
    CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), 0);
    CU_ASSERT_EQUAL(v.code, 0);
    CU_ASSERT_EQUAL(pt_acks_full(acks), 0);
    CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), 0);
    CU_ASSERT_EQUAL(pt_acks_count(acks), 2);
    CU_ASSERT_EQUAL(pt_acks_full(acks), 1);
    /* Full: refused, retryable; the caller commits first. */
    CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), REJ(REJECT_RETRY_LATER));
    CU_ASSERT_EQUAL(pt_acks_count(acks), 2);
    pt_acks_destroy(&acks);
    CU_ASSERT_PTR_NULL(acks);
    pt_acks_destroy(&acks);
    CU_ASSERT_PTR_NULL(pt_acks_new(0));
}

static void test_commit_outcomes(void)
{
    pt_acks_t *acks = pt_acks_new(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(acks);
    s_answers_t answers;
    memset(&answers, 0, sizeof answers);
    /* Empty: the store is not called. */
    s_calls = 0;
    CU_ASSERT_EQUAL(pt_acks_commit(acks, NULL, 5, s_answer, &answers), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_calls, 0);
    CU_ASSERT_EQUAL(answers.n, 0);

    const char *orgs[4] = {"GT-PGN", "US-ORR", "GT-PGN", "HN-DINAF"};
    pt_store_result_t results[4] = {PT_STORE_OK, PT_STORE_DUPLICATE, PT_STORE_NOT_FOUND,
                                    PT_STORE_OK};
    for (int i = 0; i < 4; i++) {
        pt_inbound_t in;
        s_inbound(&in, orgs[i], (uint8_t)(0x10 + i));
        uint8_t id[16];
        memset(id, 0x20 + i, 16);
        Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
        ack.message_id = (ProtobufCBinaryData){16, id};
        pt_verdict_t v = {0};
        CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), 0);
        s_item_results[i] = results[i];
    }
    s_batch_result = PT_STORE_OK;
    CU_ASSERT_EQUAL(pt_acks_commit(acks, NULL, 1795000000000LL, s_answer, &answers), PT_STORE_OK);
    CU_ASSERT_EQUAL(s_calls, 1); /* one transaction for the pass */
    CU_ASSERT_EQUAL(s_last_n, 4);
    CU_ASSERT_EQUAL(s_last_now, 1795000000000LL);
    CU_ASSERT_EQUAL_FATAL(answers.n, 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(s_recipients[i], orgs[i]); /* in arrival order */
        CU_ASSERT_EQUAL(s_ids[i][0], 0x20 + i);
        CU_ASSERT_STRING_EQUAL(answers.identity[i], orgs[i]);
        CU_ASSERT_EQUAL(answers.rid_len[i], 5);
        CU_ASSERT_EQUAL(answers.rid[i][4], 0x10 + i);
        CU_ASSERT_EQUAL(answers.id[i][15], 0x20 + i);
    }
    CU_ASSERT_EQUAL(answers.code[0], 0);
    CU_ASSERT_EQUAL(answers.first[0], 1);
    CU_ASSERT_EQUAL(answers.code[1], 0); /* repeated ack: Acked again, not first */
    CU_ASSERT_EQUAL(answers.first[1], 0);
    CU_ASSERT_EQUAL(answers.code[2], REJ(REJECT_NOT_FOUND));
    CU_ASSERT_EQUAL(answers.first[2], 0);
    CU_ASSERT_EQUAL(answers.code[3], 0);
    CU_ASSERT_EQUAL(answers.first[3], 1);
    CU_ASSERT_EQUAL(pt_acks_count(acks), 0); /* emptied */

    /* A failed commit: every ack is answered RETRY_LATER, none is first. */
    memset(&answers, 0, sizeof answers);
    for (int i = 0; i < 2; i++) {
        pt_inbound_t in;
        s_inbound(&in, "US-ORR", 9);
        uint8_t id[16];
        memset(id, 0x70 + i, 16);
        Puente__V1__Ack ack = PUENTE__V1__ACK__INIT;
        ack.message_id = (ProtobufCBinaryData){16, id};
        pt_verdict_t v = {0};
        CU_ASSERT_EQUAL(pt_acks_queue(acks, &in, &ack, &v), 0);
    }
    s_batch_result = PT_STORE_UNAVAILABLE;
    CU_ASSERT_EQUAL(pt_acks_commit(acks, NULL, 7, s_answer, &answers), PT_STORE_UNAVAILABLE);
    CU_ASSERT_EQUAL_FATAL(answers.n, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(answers.code[i], REJ(REJECT_RETRY_LATER));
        CU_ASSERT_EQUAL(answers.first[i], 0);
    }
    CU_ASSERT_EQUAL(pt_acks_count(acks), 0);
    pt_acks_destroy(&acks);
}

static void test_acked_frame(void)
{
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0xC0 + i);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(pt_ack_acked_frame(id, &buf, &len), 0);
    Puente__V1__BrokerFrame *frame = puente__v1__broker_frame__unpack(NULL, len, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(frame);
    CU_ASSERT_EQUAL(frame->body_case, PUENTE__V1__BROKER_FRAME__BODY_ACKED);
    CU_ASSERT_EQUAL(frame->acked->message_id.len, 16);
    CU_ASSERT_EQUAL(memcmp(frame->acked->message_id.data, id, 16), 0);
    CU_ASSERT_EQUAL(frame->acked->notice_id, 0);
    puente__v1__broker_frame__free_unpacked(frame, NULL);
    free(buf);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("broker ack", NULL, NULL);
    CU_add_test(suite, "what is queued", test_queue_checks);
    CU_add_test(suite, "one commit, an answer per ack", test_commit_outcomes);
    CU_add_test(suite, "Acked frame", test_acked_frame);
    return pt_cu_main();
}

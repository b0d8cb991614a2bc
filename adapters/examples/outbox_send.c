/*  outbox_send — queue one referral in a durable outbox (./outbox.db) and wait
    for the broker's receipt. The message is sealed, signed and committed before
    pt_outbox_send returns; if the broker is down the program keeps waiting, and
    if it is killed the next run (same ./outbox.db) still delivers the message.

      cc outbox_send.c $(pkg-config --cflags --libs libpuente) -o outbox_send
      PUENTE_BROKER=tcp://127.0.0.1:7550 PUENTE_KEYS=var/keys ./outbox_send MX-DIF GT-PGN */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <puente.h>

int main(int argc, char **argv)
{
    const char *from = argc > 1 ? argv[1] : "MX-DIF";
    const char *to = argc > 2 ? argv[2] : "GT-PGN";
    char err[PUENTE_ERR_BYTES];
    pt_outbox_opts_t opts = { .client = { .endpoint = getenv("PUENTE_BROKER"),
                                          .keys_dir = getenv("PUENTE_KEYS"), .org_id = from },
                              .state_path = "outbox.db" };
    pt_outbox_t *outbox = pt_outbox_new(&opts, err, sizeof err);
    if (!outbox) {
        fprintf(stderr, "outbox: %s\n", err);
        return 1;
    }
    /* A fresh outbox must reach the broker once to learn the recipients' keys. */
    if (pt_outbox_wait_directory(outbox, 30000) != PT_CLIENT_OK) {
        fprintf(stderr, "no directory yet: is the broker running?\n");
        pt_outbox_destroy(&outbox);
        return 1;
    }
    /* The example referral of the type catalogue stands in for the case system's data. */
    const pt_type_t *type = pt_types_find("referral.request");
    ProtobufCMessage *body = NULL;
    char jerr[PT_JSON_ERR_BYTES];
    if (!type || pt_json_to_message(type->descriptor, type->example_json,
                                    strlen(type->example_json), &body, jerr, sizeof jerr) != 0) {
        fprintf(stderr, "example body: %s\n", jerr);
        pt_outbox_destroy(&outbox);
        return 1;
    }
    size_t len = protobuf_c_message_get_packed_size(body);
    uint8_t *bytes = malloc(len ? len : 1);
    protobuf_c_message_pack(body, bytes);
    protobuf_c_message_free_unpacked(body, NULL);

    Puente__V1__ConsentSummary consent = PUENTE__V1__CONSENT_SUMMARY__INIT;
    consent.consent_for_services = 1;
    consent.disclosure_other_orgs = 1;
    consent.legal_basis = PUENTE__V1__LEGAL_BASIS__LEGAL_BASIS_CONSENT;
    const char *recipients[1] = { to };
    pt_send_t msg = { .message_type = "referral.request", .recipients = recipients,
                      .n_recipients = 1, .case_token = "EXAMPLE-CASE-0001", .consent = &consent,
                      .body = bytes, .body_len = len };
    uint8_t id[PT_UUID_BYTES];
    char idtext[PT_UUID_STR_BYTES];
    int status = 1;
    if (pt_outbox_send(outbox, &msg, id) != PT_CLIENT_OK) {
        fprintf(stderr, "not queued: %s\n", pt_outbox_error(outbox));
        goto done;
    }
    pt_uuid_format(id, idtext);
    printf("queued %s (durable in outbox.db)\n", idtext);
    pt_outbox_flush(outbox, -1); /* waits as long as the broker is away */
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    switch (pt_outbox_status(outbox, id, &receipt, &rej)) {
    case PT_OUTBOX_SUBMITTED: {
        char when[32];
        puente_time_format(receipt.stored_at_ms, when, sizeof when);
        printf("receipt: %s stored at %s%s\n", idtext, when,
               receipt.duplicate ? " (duplicate: the original receipt)" : "");
        status = 0;
        break;
    }
    case PT_OUTBOX_REJECTED:
        printf("rejected: %s (%d): %s\n", rej.code_name, rej.code, rej.reason);
        break;
    default:
        printf("still queued\n");
    }
done:
    free(bytes);
    pt_outbox_destroy(&outbox);
    return status;
}

/*  hello_send — the smallest libpuente program: connect as an organisation, send a
    service referral built from the type's example body, print the broker's receipt.

    Build against an installed libpuente:
        cc -o hello_send hello_send.c $(pkg-config --cflags --libs libpuente)
    Run (after `make run`, from the repository root, or with your own keys/broker):
        ./hello_send [--broker tcp://127.0.0.1:7550] [--keys var/keys] [FROM [TO [CASE]]]
    Defaults: MX-DIF sends referral.request to GT-PGN about case HELLO-0001.
    Exit status: 0 receipt printed, 1 bad input, 2 rejected, 3 broker unreachable. */
#include <puente.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *broker = getenv("PUENTE_BROKER");
    const char *keys = getenv("PUENTE_KEYS");
    const char *positional[3] = { "MX-DIF", "GT-PGN", "HELLO-0001" };
    int n_positional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc)
            broker = argv[++i];
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            keys = argv[++i];
        else if (argv[i][0] != '-' && n_positional < 3)
            positional[n_positional++] = argv[i];
        else {
            fprintf(stderr, "usage: hello_send [--broker URL] [--keys DIR] [FROM [TO [CASE]]]\n");
            return 1;
        }
    }
    const char *from = positional[0], *to = positional[1], *case_token = positional[2];

    int status = 1;
    ProtobufCMessage *body = NULL;
    uint8_t *packed = NULL;
    pt_client_t *client = NULL;

    const pt_type_t *type = pt_types_find("referral.request");
    if (!type) {
        fprintf(stderr, "hello_send: this libpuente does not know referral.request\n");
        goto done;
    }
    char jerr[PT_JSON_ERR_BYTES];
    if (pt_json_to_message(type->descriptor, type->example_json, strlen(type->example_json), &body,
                           jerr, sizeof jerr) != 0) {
        fprintf(stderr, "hello_send: example body does not parse: %s\n", jerr);
        goto done;
    }
    size_t packed_len = protobuf_c_message_get_packed_size(body);
    packed = malloc(packed_len ? packed_len : 1);
    if (!packed)
        goto done;
    protobuf_c_message_pack(body, packed);

    /* The broker gates a referral on the consent recorded in the body. */
    Puente__V1__ConsentSummary consent;
    puente_consent_derive(body, &consent);

    pt_client_opts_t opts = { .endpoint = broker, .keys_dir = keys, .org_id = from,
                              .client_name = "hello_send/1" };
    char err[PUENTE_ERR_BYTES];
    pt_client_result_t code = PT_CLIENT_OK;
    client = pt_client_new_ex(&opts, err, sizeof err, &code);
    if (!client) {
        fprintf(stderr, "hello_send: %s\n", err);
        status = code == PT_CLIENT_UNREACHABLE ? 3 : 1;
        goto done;
    }
    const char *recipients[] = { to };
    pt_send_t msg = { .message_type = type->name,
                      .recipients = recipients,
                      .n_recipients = 1,
                      .case_token = case_token,
                      .consent = &consent,
                      .body = packed,
                      .body_len = packed_len };
    pt_receipt_info_t receipt;
    pt_reject_info_t rej;
    pt_client_result_t rc = pt_client_send(client, &msg, &receipt, &rej);
    if (rc == PT_CLIENT_OK) {
        char id[PT_UUID_STR_BYTES], stored[32];
        pt_uuid_format(receipt.message_id, id);
        puente_time_format(receipt.stored_at_ms, stored, sizeof stored);
        printf("receipt: message %s stored at %s%s\n", id, stored,
               receipt.duplicate ? " (duplicate)" : "");
        status = 0;
    } else if (rc == PT_CLIENT_REJECTED) {
        fprintf(stderr, "hello_send: rejected: %s (%d): %s\n", rej.code_name, rej.code, rej.reason);
        status = 2;
    } else {
        fprintf(stderr, "hello_send: %s\n", pt_client_error(client));
        status = 3;
    }
done:
    pt_client_destroy(&client);
    if (body)
        protobuf_c_message_free_unpacked(body, NULL);
    free(packed);
    return status;
}

/*  recv_ack — receive messages for an organisation, "store" each one, and only
    then acknowledge it. The durable inbox (./inbox.db) remembers every id handed
    over: a message acked once is never handed over again, and one handed over
    but not acked (the program died before storing it) comes back on the next run.

    Build against an installed libpuente (puente.h is the only header needed):
        cc -o recv_ack recv_ack.c $(pkg-config --cflags --libs libpuente)
    Run (after `make run`, or with your own keys/broker):
        PUENTE_BROKER=tcp://127.0.0.1:7550 PUENTE_KEYS=var/keys ./recv_ack GT-PGN [COUNT [WAIT_MS]]
    Receives until COUNT messages (default 1) were stored and acked, waiting at most
    WAIT_MS (default 30000) for each. Prints one line per message: ids, type and
    sender only (never payload content: it holds a child's data).
    Exit status: 0 COUNT acked, 1 bad input or local error, 3 broker unreachable or
    nothing arrived in time. */
#include <puente.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stands in for the case system's own storage: a real adapter commits the message
   to its database here and returns 0 only once that commit succeeded. */
static int s_store(const pt_message_t *msg)
{
    size_t len = 0;
    return pt_message_body_bytes(msg, &len) != NULL && len > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *org = argc > 1 ? argv[1] : "GT-PGN";
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    long wait_ms = argc > 3 ? strtol(argv[3], NULL, 10) : 30000;
    if (count < 1 || wait_ms < 1 || wait_ms > 3600000) {
        fprintf(stderr, "usage: recv_ack [ORG [COUNT [WAIT_MS]]]\n");
        return 1;
    }
    char err[PUENTE_ERR_BYTES];
    pt_client_opts_t opts = {.endpoint = getenv("PUENTE_BROKER"),
                             .keys_dir = getenv("PUENTE_KEYS"),
                             .org_id = org,
                             .receive = 1,
                             .client_name = "recv_ack example",
                             .inbox_path = "inbox.db"};
    pt_client_result_t why = PT_CLIENT_OK;
    pt_client_t *client = pt_client_new_ex(&opts, err, sizeof err, &why);
    if (!client) {
        fprintf(stderr, "recv_ack: %s\n", err);
        return why == PT_CLIENT_UNREACHABLE ? 3 : 1;
    }
    int status = 3;
    long acked = 0;
    while (acked < count) {
        pt_message_t *msg = NULL;
        pt_client_result_t rc = pt_client_recv(client, (int)wait_ms, &msg);
        if (rc == PT_CLIENT_REFUSED) {
            /* Failed a check (signature, field set ...): never handed over, never acked. */
            fprintf(stderr, "recv_ack: refused: %s\n", pt_client_error(client));
            continue;
        }
        if (rc != PT_CLIENT_OK) {
            fprintf(stderr, "recv_ack: %s\n",
                    rc == PT_CLIENT_TIMEOUT ? "nothing arrived in time" : pt_client_error(client));
            status = rc == PT_CLIENT_TIMEOUT || rc == PT_CLIENT_UNREACHABLE ? 3 : 1;
            goto done;
        }
        char id[PT_UUID_STR_BYTES];
        pt_uuid_format(pt_message_id(msg), id);
        const Puente__V1__Header *header = pt_message_header(msg);
        printf("received %s %s from %s\n", id, pt_message_type(msg)->name, header->sender);
        if (s_store(msg) != 0) {
            /* Not stored: not acked. The broker offers it again later. */
            fprintf(stderr, "recv_ack: cannot store %s; not acknowledged\n", id);
            pt_message_destroy(&msg);
            status = 1;
            goto done;
        }
        rc = pt_client_ack(client, pt_message_id(msg));
        pt_message_destroy(&msg);
        if (rc != PT_CLIENT_OK) {
            fprintf(stderr, "recv_ack: ack of %s: %s\n", id, pt_client_error(client));
            status = rc == PT_CLIENT_UNREACHABLE ? 3 : 1;
            goto done;
        }
        printf("acked %s\n", id);
        fflush(stdout);
        acked++;
    }
    status = 0;
done:
    pt_client_destroy(&client);
    return status;
}

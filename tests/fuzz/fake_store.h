/*  fake_store — broker/store.h without PostgreSQL, for fuzz_broker (the store
    seam: the harness links tests/fuzz/fake_store.c instead of broker/store.c).

    An in-memory case database for one fuzz input, so that the stages after the
    store read back what the input's earlier passes stored, as they would from
    PostgreSQL: submit_batch keeps message ids with their header digests (later
    resubmissions are DUPLICATE or CONFLICT), deliveries, the case events
    submitted / stored / state:* / owner_changed / acknowledged, lifecycle rows and
    case owners; lifecycle_load, trail, case_parties and ack_batch answer from
    them; as no delivery pass runs, an ack of the opening message of a lifecycle
    moves it to "received" as delivery and ack together would. The broker's directory
   (organisations, agreements, auditors) comes from fake_store_directory. Every organisation has one
   notice (id 1); a lifecycle with a respond-by date is listed as overdue; the queue of each
   recipient is its unacknowledged messages. Everything else answers as an empty database (no
    checkpoints, no deliveries due).

    No SQL runs, so store.c's own code is not fuzzed here; the integration tests
    run it against PostgreSQL. Not thread-safe (the broker calls the store from
    its loop thread only). Capacities are fixed; a batch that would pass them
    fails as ERROR, as a real constraint violation would.
*/
#ifndef FAKE_STORE_H
#define FAKE_STORE_H

#include "store.h"

typedef enum {
    FAKE_STORE_UP = 0,    /* a healthy database */
    FAKE_STORE_DOWN = 1,  /* every call answers UNAVAILABLE (the broker answers RETRY_LATER) */
    FAKE_STORE_REFUSE = 2 /* submit_batch and ack_batch answer ERROR (permanent failure) */
} fake_store_mode_t;

/* What pt_store_load_orgs / _agreements / _auditors hand to the broker. Borrowed:
   the arrays must outlive every broker made afterwards. */
void fake_store_directory(const pt_store_org_t *orgs, size_t n_orgs,
                          const pt_store_agreement_t *agreements, size_t n_agreements,
                          const pt_store_auditor_t *auditors, size_t n_auditors);

/* Forgets every message, event, lifecycle and owner, and sets the mode. */
void fake_store_reset(fake_store_mode_t mode);

/* Number of messages stored since the last reset. */
size_t fake_store_message_count(void);

/* The i-th stored message, as the broker handed it over (valid until the next
   call into the store). 0, or -1 past the end. */
typedef struct {
    const char *sender;
    const char *recipients; /* joined by ',' */
    const char *message_type;
    const char *case_token;
    const uint8_t *header_sha256;
    const uint8_t *envelope;
    size_t envelope_len;
} fake_store_message_t;
int fake_store_message_at(size_t i, fake_store_message_t *out);

#endif

/*  mapping — Primero v2 records <-> Puente family messages (pure: no I/O but
    loading the code lists).

    Primero side: the "data" object of a Primero v2 API record, as jansson values
    (a case, a transition row of GET /api/v2/cases/:id/referrals|transfers, a
    tracing request with its traces). Puente side: protobuf-c messages of the
    types in pt_types (allocated so that protobuf_c_message_free_unpacked(m, NULL)
    frees them).

    Lookup values (sex, service_type, closure_reason, ...) never pass as guessed
    strings: each goes through a versioned code list
    adapters/primero/codelists/<version>/<list>.csv ("primero_value,puente_value").
    Primero -> Puente is a function of the table; Puente -> Primero takes the
    FIRST row with that Puente value (so a table may map two Primero values onto
    one Puente value and still answer in one direction). A value that is not in
    the table is an error naming the field and the value; nothing is dropped.

    Choices (see README "Primero adapter"):
    - one referral.request per referred service (Primero refers one service per
      referral; referral_id = "<case id>#<service unique_id>"), the header's
      service_type being that service's Puente code;
    - a transfer.request carries the case without services (transfer_id = case id);
    - transitions: Referral in_progress/accepted/done/revoked -> referral.progress/
      accept/done/revoke, Referral rejected -> referral.reject, Transfer
      accepted/rejected/revoked -> transfer.accept/transfer.reject/transfer.revoke
      (Primero's remote Transfer has no in_progress/done message: it starts from
      the case, pt_primero_case_to_transfer; Primero has no "done" transfer);
    - follow-ups and closure: return_id = the case's "puente_return_id" when set,
      else its "id".
    Errors never echo free-text values (names, notes): only field names and
    code-list values.

    Thread-safety: a loaded pt_primero_codelists_t is read-only and may be shared.
*/
#ifndef PT_PRIMERO_MAPPING_H
#define PT_PRIMERO_MAPPING_H

#include <jansson.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#define PT_PRIMERO_ERR_BYTES 256

typedef struct _pt_primero_codelists_t pt_primero_codelists_t;

/* Loads every <dir>/<version>/<list>.csv (header line "primero_value,puente_value",
   then one pair per line; '#' lines and blank lines skipped). NULL on failure with
   the file and line in err (missing directory, a list the mapping needs missing,
   malformed line, duplicate primero_value). O(total rows). */
pt_primero_codelists_t *pt_primero_codelists_load(const char *dir, const char *version, char *err,
                                                  size_t err_len);

/* Frees the lists. No-op on NULL; nulls *self_p. */
void pt_primero_codelists_destroy(pt_primero_codelists_t **self_p);

/* The version the lists were loaded under ("v1"). Owned by the lists. */
const char *pt_primero_codelists_version(const pt_primero_codelists_t *self);

/* Puente value of a Primero value in list ("sex"), or NULL when the list or the
   value is unknown. Borrowed from the lists. O(rows of the list). */
const char *pt_primero_code_to_puente(const pt_primero_codelists_t *self, const char *list,
                                      const char *primero_value);

/* Primero value (first row) of a Puente value in list, or NULL. Borrowed. */
const char *pt_primero_code_to_primero(const pt_primero_codelists_t *self, const char *list,
                                       const char *puente_value);

/* A mapped message: its Puente type name and the message (caller frees with
   pt_primero_out_clear). service_type is the header service type (a code-list
   value borrowed from the lists) or NULL. */
typedef struct {
    const char *message_type;
    ProtobufCMessage *body;
    const char *service_type;
    char ref[160];   /* referral_id / transfer_id / tracing_request_id / return_id */
} pt_primero_out_t;

/* Frees out->body and resets out. No-op on an empty out. */
void pt_primero_out_clear(pt_primero_out_t *out);

/* Case -> referral.request, one per services_section row that is a cross-border
   referral to a Puente organisation (service_response_type
   "referral_to_other_country" and service_implementing_agency == to_org; to_org
   NULL = every such row). org is the sending organisation. On success returns the
   number of messages written to out (at most max), each to be cleared by the
   caller; -1 on a mapping error (err names the field and value; nothing in out
   needs clearing). */
int pt_primero_case_to_referrals(const pt_primero_codelists_t *lists, const json_t *case_data,
                                 const char *org, const char *to_org, pt_primero_out_t *out,
                                 size_t max, char *err, size_t err_len);

/* Case -> transfer.request (transfer_id = the case's "id"). 0 or -1 (err). */
int pt_primero_case_to_transfer(const pt_primero_codelists_t *lists, const json_t *case_data,
                                const char *org, pt_primero_out_t *out, char *err, size_t err_len);

/* Transition row (type Referral|Transfer, status, record_id, service_record_id,
   notes, rejected_reason, rejection_note) -> referral.progress/accept/done/
   revoke/reject or transfer.accept/reject/revoke (rejected_reason optional on a
   revoke). org is the responding (or, for a revoke, the sending) organisation.
   0 or -1 (err); a Transfer in_progress/done is an error (a transfer starts from
   the case: pt_primero_case_to_transfer). */
int pt_primero_transition_to_puente(const pt_primero_codelists_t *lists, const json_t *transition,
                                    const char *org, pt_primero_out_t *out, char *err,
                                    size_t err_len);

/* Tracing request with its traces (tracing_request_subform_section) ->
   tracing.request. search_countries come from the record's "search_countries"
   (ISO alpha-2 list) when present. 0 or -1 (err). */
int pt_primero_tracing_to_puente(const pt_primero_codelists_t *lists, const json_t *tracing_request,
                                 const char *org, pt_primero_out_t *out, char *err,
                                 size_t err_len);

/* The row-th followup_subform_section row of a case -> reintegration.followup.
   0 or -1 (err). */
int pt_primero_followup_to_puente(const pt_primero_codelists_t *lists, const json_t *case_data,
                                  size_t row, const char *org, pt_primero_out_t *out, char *err,
                                  size_t err_len);

/* A closed case (closure_reason, date_closure) -> reintegration.close. 0 or -1. */
int pt_primero_closure_to_puente(const pt_primero_codelists_t *lists, const json_t *case_data,
                                 const char *org, pt_primero_out_t *out, char *err,
                                 size_t err_len);

/* The other way: a Puente message of message_type -> a new Primero-shaped
   object (caller json_decref's it):
   - referral.request / transfer.request: case data (services_section rows
     marked service_status_referred), with puente_referral_id/puente_transfer_id
     and puente_sender;
   - referral.* / transfer.accept|reject|revoke: a transition row (type, status,
     record_id, service_record_id, notes, rejected_reason, rejection_note);
   - tracing.request: a tracing request with tracing_request_subform_section;
   - return.notice: case data with puente_return_id, puente_sender and
     date_of_return (the planned return date);
   - return.arrival / reintegration.assessment / reintegration.plan: the return's
     progress for the sender's case: {"puente_return_id", "puente_return_status":
     "arrived"|"assessed"|"planned", date_of_arrival, puente_plan_version,
     followup_needed_by_date};
   - reintegration.followup: {"puente_return_id", "followup_subform_section":[row]};
   - reintegration.close: {"puente_return_id", "status":"closed", closure_reason,
     date_closure}.
   NULL on a value with no code-list row or an unsupported type (err). */
json_t *pt_primero_from_puente(const pt_primero_codelists_t *lists, const char *message_type,
                               const ProtobufCMessage *body, char *err, size_t err_len);

#endif

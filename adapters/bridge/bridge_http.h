/*  bridge_http — the pure parts of puente-bridge's HTTP API: route matching,
    request validation, RFC 9457 problem documents, webhook signatures, and the
    JSON shapes of inbox messages, receipts, trails and outbound status. Nothing
    here touches a socket, the broker or the disk, so it is unit-tested directly
    (tests/unit/test_bridge_http.c). Every function is thread-safe.
*/
#ifndef PT_BRIDGE_HTTP_H
#define PT_BRIDGE_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "puente.h"

#define PT_BRIDGE_PROBLEM_BASE "https://puente.example/problems/"
#define PT_BRIDGE_MAX_RECIPIENTS 32
#define PT_BRIDGE_MAX_TOKEN 128
#define PT_BRIDGE_LIST_DEFAULT 50
#define PT_BRIDGE_LIST_MAX 500
#define PT_BRIDGE_PREFER_WAIT_MAX 10 /* seconds: the cap of Prefer: wait=N */

typedef enum {
    PT_ROUTE_NONE = 0,        /* no such path: 404 */
    PT_ROUTE_BAD_METHOD,      /* the path exists, not with this method: 405 */
    PT_ROUTE_OPENAPI,         /* GET  /v1/openapi.json */
    PT_ROUTE_SUBMIT,          /* POST /v1/messages */
    PT_ROUTE_INBOX,           /* GET  /v1/messages */
    PT_ROUTE_STATUS,          /* GET  /v1/messages/{id} */
    PT_ROUTE_ACK,             /* POST /v1/messages/{id}/ack */
    PT_ROUTE_TRAIL            /* GET  /v1/cases/{token}/trail */
} pt_route_t;

typedef struct {
    const char *method;
    const char *path;         /* OpenAPI template, "/v1/messages/{id}" */
    pt_route_t route;
} pt_route_entry_t;

/* The served routes (static table) and their count. */
const pt_route_entry_t *pt_bridge_routes(size_t *n);

/* Matches method and path (no query string). For a templated route, the
   {id}/{token} segment is copied into param (param_len >= 2; percent-decoding
   is not applied: ids and tokens are plain ASCII). PT_ROUTE_BAD_METHOD fills
   allow (e.g. "GET, POST"). */
pt_route_t pt_bridge_route_match(const char *method, const char *path, char *param,
                                 size_t param_len, char *allow, size_t allow_len);

/* An RFC 9457 problem. type is the last segment of the type URI. */
typedef struct {
    int status;
    char type[48];            /* "invalid-json" */
    char title[96];
    char detail[320];
    char path[160];           /* field path, "" if none */
    int reject_code;          /* Puente reject code, 0 if none */
    char reject_name[48];
} pt_problem_t;

/* One problem type the bridge emits: the last segment of its type URI and the
   title sent with it. */
typedef struct {
    const char *type;
    const char *title;
} pt_problem_type_t;

/* THE table of problem types (static, *n entries): pt_problem_set emits only
   these (an unknown type is a programmer error: assert, else "internal"), and
   openapi.json's Problem.type enum lists exactly these. */
const pt_problem_type_t *pt_bridge_problem_types(size_t *n);

/* Fills p (status, type, title from the type; detail printf-style). Detail and
   path are made valid UTF-8 (a byte that starts no valid sequence, e.g. of a
   client's method or a character cut by truncation, becomes '?'). */
void pt_problem_set(pt_problem_t *p, int status, const char *type, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The problem+json document (caller json_decref). extra (may be NULL) members
   are merged in (borrowed). */
json_t *pt_problem_json(const pt_problem_t *p, const json_t *extra);

/* A validated POST /v1/messages request. Owns everything it points to. */
typedef struct {
    const pt_type_t *type;
    char **to;
    size_t n_to;
    char *case_token, *purpose, *agreement_id, *service_type, *best_interests_ref, *reason_code;
    uint8_t correlation_id[PT_UUID_BYTES], causation_id[PT_UUID_BYTES];
    int has_correlation, has_causation;
    int64_t respond_by_ms, expires_in_ms, follow_up_due_ms;
    ProtobufCMessage *body;
    uint8_t *packed;
    size_t packed_len;
    Puente__V1__ConsentSummary *consent_given; /* "consent" member, parsed; NULL if absent */
    Puente__V1__ConsentSummary consent_derived; /* else from the body's consent block (borrows) */
} pt_submit_req_t;

/* Parses and validates a request body (len bytes, no NUL needed). 0 and *out
   (destroy with pt_submit_req_destroy) or -1 with problem filled: invalid-json,
   unknown-field, wrong-type, missing-field, invalid-value (each with its path).
   O(len). */
int pt_submit_req_parse(const char *text, size_t len, pt_submit_req_t **out, pt_problem_t *problem);

/* Frees a request; no-op on NULL, nulls *self_p. */
void pt_submit_req_destroy(pt_submit_req_t **self_p);

/* Fills a pt_send_t that borrows from req (valid while req lives). */
void pt_submit_req_to_send(const pt_submit_req_t *req, pt_send_t *msg);

/* Parses the query of GET /v1/messages ("since=12&limit=10"; NULL = none):
   since is the cursor (default 0), limit 1..PT_BRIDGE_LIST_MAX (default
   PT_BRIDGE_LIST_DEFAULT). 0, or -1 with problem (invalid-query). */
int pt_inbox_query_parse(const char *since, const char *limit, int64_t *since_out, int *limit_out,
                         pt_problem_t *problem);

/* The seconds a POST /v1/messages may wait for the broker's receipt, from a
   Prefer header (RFC 7240: "wait=N" among comma-separated preferences,
   case-insensitive, N decimal, optionally quoted): 0 when absent, NULL or not
   understood (an unknown preference is ignored, as the RFC says), capped at
   PT_BRIDGE_PREFER_WAIT_MAX. */
int pt_bridge_prefer_wait(const char *prefer);

/* The X-Puente-Signature value "t=TIMESTAMP,v1=HEX": HMAC-SHA256 with key over
   "TIMESTAMP.BODY". 0 or -1 (library failure, out too small: needs 96 bytes). */
int pt_bridge_sign(const char *key, size_t key_len, int64_t timestamp, const char *body,
                   size_t body_len, char *out, size_t out_len);

/* Checks a signature header against key, body and now; |now - t| must be within
   tolerance_s. 0 if valid, -1 if not. Constant-time on the MAC. */
int pt_bridge_verify(const char *key, size_t key_len, const char *header, const char *body,
                     size_t body_len, int64_t now_s, int64_t tolerance_s);

/* 1 if header is "Bearer <token>" with exactly this token (constant time in the
   token length), else 0. */
int pt_bridge_bearer_ok(const char *header, const char *token);

/* The JSON the bridge keeps and hands out for a received message: id, type,
   sender, recipients, case_token, correlation_id, causation_id, purpose,
   created_at, header routing fields, and body in the proto3 JSON mapping.
   NULL if the body cannot be rendered. Caller json_decref. */
json_t *pt_bridge_message_json(const Puente__V1__Header *h, const ProtobufCMessage *body);

/* A receipt as JSON (caller json_decref): message_id, correlation_id,
   stored_at, header_sha256, event_hash, duplicate, and leaf_index (the
   "stored" event's leaf in the audit log) when known. */
json_t *pt_bridge_receipt_json(const pt_receipt_info_t *r);

/* A trail as JSON {case_token, events:[...], pending_acknowledgement:[...]}. */
json_t *pt_bridge_trail_json(const Puente__V1__TrailReply *t);

/* Outbound delivery status from a case trail: for each recipient, "submitted",
   "delivered" or "acknowledged" from the trail events of message_id (36-char
   UUID text); the overall status is the least advanced of them. lifecycle_out
   (cap >= 2) receives the newest "state:*" event (without the prefix) among
   events whose message id is in related (UUID texts, the thread's messages),
   "" if none. Returns a json array of {org, status}; *overall set. */
json_t *pt_bridge_status_from_trail(const Puente__V1__TrailReply *t, const char *message_id,
                                    char *const *recipients, size_t n_recipients,
                                    const char *const *related, size_t n_related,
                                    const char **overall, char *lifecycle_out,
                                    size_t lifecycle_len);

#endif

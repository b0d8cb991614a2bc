/*  directory — the broker's in-memory view of who may talk to whom:
    organisations (keys, enabled), operators (CURVE keys admitted for admin), and
    information-sharing agreements. Loaded from the store at start and updated
    when an operator adds an organisation or agreement. Read by the ZAP handler and
    the pipeline stages. Single-threaded: owned by the broker loop.
*/
#ifndef PT_DIRECTORY_H
#define PT_DIRECTORY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_crypto.h"
#include "pt_key_window.h"
#include "store.h"

typedef struct _pt_directory_t pt_directory_t;

/* Issue 6: one key set of an organisation's history (org_keys), with its window. */
typedef struct {
    int64_t key_set_id;
    uint8_t sign_public[32];
    uint8_t seal_public[32];
    uint8_t curve_public[32];
    uint8_t sign_key_id[32];
    uint8_t seal_key_id[32];
    pt_sign_key_t *sign_key;    /* owned by the directory */
    pt_key_window_t window;
    char revoke_reason[PT_STORE_REASON_MAX];
} pt_directory_key_set_t;

typedef struct {
    char org_id[PT_STORE_ORG_ID_MAX];
    /* The current key set (valid_until NULL), as registered by org_add. */
    uint8_t sign_public[32];
    uint8_t seal_public[32];
    uint8_t curve_public[32];
    uint8_t sign_key_id[32];
    pt_sign_key_t *sign_key;    /* owned by the directory */
    int enabled;
    char service_types[PT_STORE_SERVICES_MAX];   /* joined by ','; "" = accepts all */
    /* Issue 6: every key set, oldest first, the current one included. Empty only
       for an organisation put without loading its history (unit tests): the
       current keys above then stand for a set valid since the epoch. */
    pt_directory_key_set_t *key_sets;
    size_t n_key_sets;
} pt_directory_org_t;

/* The reserved identity of operators (admin and audit of everything). */
#define PT_OPERATOR_ID "operator"

/* Auditors (issue 4) connect as "auditor:<ID>" with their own CURVE key. */
#define PT_AUDITOR_PREFIX "auditor:"
#define PT_DIRECTORY_AUDITOR_ID_MAX 24

typedef struct {
    char identity[PT_STORE_ORG_ID_MAX];          /* "auditor:<ID>" */
    char scope[PT_STORE_SERVICES_MAX];           /* "GT,HN-DINAF" */
    uint8_t sign_public[32];
    uint8_t curve_public[32];
} pt_directory_auditor_t;

pt_directory_t *pt_directory_new(void);
void pt_directory_destroy(pt_directory_t **self_p);

/* Adds or replaces an organisation. 0 or -1 (invalid key bytes, out of memory). */
int pt_directory_put_org(pt_directory_t *self, const pt_store_org_t *org);

/* Adds or replaces an agreement (copies everything). 0 or -1. */
int pt_directory_put_agreement(pt_directory_t *self, const pt_store_agreement_t *agreement);

/* Admits a CURVE public key as the operator identity. 0 or -1. */
int pt_directory_add_operator(pt_directory_t *self, const uint8_t curve_public[32]);

/* Loads all organisations and agreements from the store, replacing what is held. */
pt_store_result_t pt_directory_load(pt_directory_t *self, pt_store_t *store);

/* The organisation with this id, or NULL. O(n). */
const pt_directory_org_t *pt_directory_org(const pt_directory_t *self, const char *org_id);

/* Adds or replaces an auditor (id at most PT_DIRECTORY_AUDITOR_ID_MAX). 0 or -1. */
int pt_directory_put_auditor(pt_directory_t *self, const pt_store_auditor_t *auditor);

/* The auditor with this identity ("auditor:<ID>"), or NULL. O(n). */
const pt_directory_auditor_t *pt_directory_auditor(const pt_directory_t *self,
                                                   const char *identity);

/* 1 if org_id is in scope: a listed organisation, or of a listed country code. */
int pt_directory_in_scope(const char *scope, const char *org_id);

/* The identity a CURVE key stands for: an enabled organisation's id (the CURVE
   key of any of its key sets admitted now: registered, not past valid_until, not
   revoked; pt_key_window_admits), PT_OPERATOR_ID, "auditor:<ID>", or NULL if the
   key is not admitted. O(key sets). */
const char *pt_directory_identity_for_curve(const pt_directory_t *self,
                                            const uint8_t curve_public[32]);

/* The id of a valid agreement (at now_ms) between a and b (either order) that covers
   message_type and purpose, or NULL. If agreement_id is non-empty only that agreement
   is considered. O(agreements). */
const char *pt_directory_agreement_for(const pt_directory_t *self, const char *a, const char *b,
                                       const char *message_type, const char *purpose,
                                       const char *agreement_id, int64_t now_ms);

/* The id of any agreement valid at now_ms between a and b (either order), whatever
   its purposes and message types, or NULL: what a consent withdrawal or erasure
   request needs (policy.h). O(agreements). */
const char *pt_directory_agreement_any(const pt_directory_t *self, const char *a, const char *b,
                                       int64_t now_ms);

/* Number of agreements, and a view of the i-th (stable order) for directory
   replies: out's lists point into the directory, valid until it changes. 0, or -1
   past the end. */
size_t pt_directory_agreement_count(const pt_directory_t *self);
int pt_directory_agreement_at(const pt_directory_t *self, size_t i, pt_store_agreement_t *out);

/* Issue 6: marks a held organisation enabled or disabled (a disabled one is not
   admitted by ZAP and is not a valid recipient). 0, or -1 if it is not held. */
int pt_directory_set_org_enabled(pt_directory_t *self, const char *org_id, int enabled);

/* Issue 6: ends a held agreement at until_ms (keeps an earlier end). 0, or -1 if
   it is not held. */
int pt_directory_agreement_revoke(pt_directory_t *self, const char *agreement_id,
                                  int64_t until_ms);

/* Issue 6 (SIGHUP): loads organisations, agreements and auditors from the store
   into a fresh table and swaps it in only when everything loaded, so a failure
   leaves self unchanged. Operators are kept. Same thread rules as the rest. */
pt_store_result_t pt_directory_reload(pt_directory_t *self, pt_store_t *store);

/* Async-signal-safe (the SIGHUP handler): records that a reload was asked for. */
void pt_directory_request_reload(void);

/* 1 if a reload was asked for since the last call (and clears the request), else 0. */
int pt_directory_reload_requested(void);

/* --- issue 6: key history --------------------------------------------------- */

/* Loads the key sets of org_id (NULL = of every organisation) from the store,
   replacing those held for it. Organisations not held are skipped. */
pt_store_result_t pt_directory_load_key_sets(pt_directory_t *self, pt_store_t *store,
                                             const char *org_id);

/* The key set of org whose signing key id is key_id (32 bytes), or NULL. O(sets). */
const pt_directory_key_set_t *pt_directory_key_set(const pt_directory_org_t *org,
                                                   const uint8_t *key_id, size_t key_id_len);

/* The key set of org whose sealing key id is key_id (32 bytes), or NULL. O(sets). */
const pt_directory_key_set_t *pt_directory_seal_key_set(const pt_directory_org_t *org,
                                                        const uint8_t *key_id, size_t key_id_len);

/* 1 if curve_public is the CURVE key of a set of org admitted at now_ms
   (pt_key_window_admits; without a loaded history, the current key). For frames of
   connections opened before a revocation or the end of a window. O(sets). */
int pt_directory_curve_admitted(const pt_directory_org_t *org, const uint8_t curve_public[32],
                                int64_t now_ms);

/* The current key set of org (valid_until 0), or NULL (none loaded). */
const pt_directory_key_set_t *pt_directory_current_key_set(const pt_directory_org_t *org);

/* Number of organisations, and the i-th (stable order) for directory replies. */
size_t pt_directory_org_count(const pt_directory_t *self);
const pt_directory_org_t *pt_directory_org_at(const pt_directory_t *self, size_t i);

#endif

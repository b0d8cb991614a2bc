/*  directory — see directory.h. Small linear tables: a regional broker knows tens
    of organisations and agreements, not thousands. */
#include "directory.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char agreement_id[PT_STORE_TEXT_MAX];
    char org_a[PT_STORE_ORG_ID_MAX];
    char org_b[PT_STORE_ORG_ID_MAX];
    char **purposes;
    size_t n_purposes;
    char **message_types;
    size_t n_message_types;
    char **field_sets;        /* "purpose=path,path" (store.h) */
    size_t n_field_sets;
    int64_t valid_from_ms;
    int64_t valid_until_ms;
} s_agreement_t;

struct _pt_directory_t {
    pt_directory_org_t *orgs;
    size_t n_orgs;
    s_agreement_t *agreements;
    size_t n_agreements;
    uint8_t (*operators)[32];
    size_t n_operators;
    pt_directory_auditor_t *auditors;
    size_t n_auditors;
};

pt_directory_t *pt_directory_new(void)
{
    return calloc(1, sizeof(pt_directory_t));
}

static void s_strings_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static char **s_strings_copy(const char *const *list, size_t n)
{
    char **copy = calloc(n ? n : 1, sizeof(char *));
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(list[i]);
        if (!copy[i]) {
            s_strings_free(copy, i);
            return NULL;
        }
    }
    return copy;
}

static void s_key_sets_free(pt_directory_org_t *org)
{
    for (size_t k = 0; k < org->n_key_sets; k++)
        pt_sign_key_destroy(&org->key_sets[k].sign_key);
    free(org->key_sets);
    org->key_sets = NULL;
    org->n_key_sets = 0;
}

static void s_clear(pt_directory_t *self)
{
    for (size_t i = 0; i < self->n_orgs; i++) {
        pt_sign_key_destroy(&self->orgs[i].sign_key);
        s_key_sets_free(&self->orgs[i]);
    }
    free(self->orgs);
    self->orgs = NULL;
    self->n_orgs = 0;
    for (size_t i = 0; i < self->n_agreements; i++) {
        s_strings_free(self->agreements[i].purposes, self->agreements[i].n_purposes);
        s_strings_free(self->agreements[i].message_types, self->agreements[i].n_message_types);
        s_strings_free(self->agreements[i].field_sets, self->agreements[i].n_field_sets);
    }
    free(self->agreements);
    self->agreements = NULL;
    self->n_agreements = 0;
    free(self->auditors);
    self->auditors = NULL;
    self->n_auditors = 0;
}

void pt_directory_destroy(pt_directory_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_clear(*self_p);
    free((*self_p)->operators);
    free(*self_p);
    *self_p = NULL;
}

int pt_directory_put_org(pt_directory_t *self, const pt_store_org_t *org)
{
    pt_sign_key_t *key = pt_sign_key_from_public(org->sign_public, 32);
    if (!key)
        return -1;
    pt_directory_org_t *slot = (pt_directory_org_t *)pt_directory_org(self, org->org_id);
    if (!slot) {
        pt_directory_org_t *grown = realloc(self->orgs, (self->n_orgs + 1) * sizeof *grown);
        if (!grown) {
            pt_sign_key_destroy(&key);
            return -1;
        }
        self->orgs = grown;
        slot = &self->orgs[self->n_orgs++];
        memset(slot, 0, sizeof *slot);
    }
    pt_sign_key_destroy(&slot->sign_key);
    memcpy(slot->org_id, org->org_id, sizeof slot->org_id);
    memcpy(slot->sign_public, org->sign_public, 32);
    memcpy(slot->seal_public, org->seal_public, 32);
    memcpy(slot->curve_public, org->curve_public, 32);
    pt_sign_key_id(key, slot->sign_key_id);
    slot->sign_key = key;
    slot->enabled = org->enabled;
    memcpy(slot->service_types, org->service_types, sizeof slot->service_types);
    slot->service_types[sizeof slot->service_types - 1] = '\0';
    return 0;
}

int pt_directory_put_agreement(pt_directory_t *self, const pt_store_agreement_t *agreement)
{
    s_agreement_t fresh = {0};
    memcpy(fresh.agreement_id, agreement->agreement_id, sizeof fresh.agreement_id);
    memcpy(fresh.org_a, agreement->org_a, sizeof fresh.org_a);
    memcpy(fresh.org_b, agreement->org_b, sizeof fresh.org_b);
    fresh.valid_from_ms = agreement->valid_from_ms;
    fresh.valid_until_ms = agreement->valid_until_ms;
    fresh.purposes = s_strings_copy(agreement->purposes, agreement->n_purposes);
    fresh.n_purposes = agreement->n_purposes;
    fresh.message_types = s_strings_copy(agreement->message_types, agreement->n_message_types);
    fresh.n_message_types = agreement->n_message_types;
    fresh.field_sets = s_strings_copy(agreement->field_sets, agreement->n_field_sets);
    fresh.n_field_sets = agreement->n_field_sets;
    if (!fresh.purposes || !fresh.message_types || !fresh.field_sets)
        goto error;
    for (size_t i = 0; i < self->n_agreements; i++) {
        s_agreement_t *old = &self->agreements[i];
        if (strcmp(old->agreement_id, fresh.agreement_id) == 0) {
            s_strings_free(old->purposes, old->n_purposes);
            s_strings_free(old->message_types, old->n_message_types);
            s_strings_free(old->field_sets, old->n_field_sets);
            *old = fresh;
            return 0;
        }
    }
    s_agreement_t *grown =
        realloc(self->agreements, (self->n_agreements + 1) * sizeof(s_agreement_t));
    if (!grown)
        goto error;
    self->agreements = grown;
    self->agreements[self->n_agreements++] = fresh;
    return 0;
error:
    if (fresh.purposes)
        s_strings_free(fresh.purposes, fresh.n_purposes);
    if (fresh.message_types)
        s_strings_free(fresh.message_types, fresh.n_message_types);
    if (fresh.field_sets)
        s_strings_free(fresh.field_sets, fresh.n_field_sets);
    return -1;
}

int pt_directory_add_operator(pt_directory_t *self, const uint8_t curve_public[32])
{
    uint8_t(*grown)[32] = realloc(self->operators, (self->n_operators + 1) * 32);
    if (!grown)
        return -1;
    self->operators = grown;
    memcpy(self->operators[self->n_operators++], curve_public, 32);
    return 0;
}

static void s_load_org(const pt_store_org_t *org, void *arg)
{
    pt_directory_put_org(arg, org);
}

static void s_load_auditor(const pt_store_auditor_t *auditor, void *arg)
{
    pt_directory_put_auditor(arg, auditor);
}

static void s_load_agreement(const pt_store_agreement_t *agreement, void *arg)
{
    pt_directory_put_agreement(arg, agreement);
}

pt_store_result_t pt_directory_load(pt_directory_t *self, pt_store_t *store)
{
    s_clear(self);
    pt_store_result_t rc = pt_store_load_orgs(store, s_load_org, self);
    if (rc == PT_STORE_OK)
        rc = pt_directory_load_key_sets(self, store, NULL);
    if (rc == PT_STORE_OK)
        rc = pt_store_load_agreements(store, s_load_agreement, self);
    if (rc == PT_STORE_OK)
        rc = pt_store_load_auditors(store, s_load_auditor, self);
    return rc;
}

const pt_directory_org_t *pt_directory_org(const pt_directory_t *self, const char *org_id)
{
    for (size_t i = 0; i < self->n_orgs; i++)
        if (strcmp(self->orgs[i].org_id, org_id) == 0)
            return &self->orgs[i];
    return NULL;
}

const char *pt_directory_identity_for_curve(const pt_directory_t *self,
                                            const uint8_t curve_public[32])
{
    for (size_t i = 0; i < self->n_operators; i++)
        if (memcmp(self->operators[i], curve_public, 32) == 0)
            return PT_OPERATOR_ID;
    int64_t now = pt_now_ms();
    for (size_t i = 0; i < self->n_orgs; i++) {
        const pt_directory_org_t *org = &self->orgs[i];
        if (!org->enabled)
            continue;
        if (org->n_key_sets == 0 && memcmp(org->curve_public, curve_public, 32) == 0)
            return org->org_id;
        for (size_t k = 0; k < org->n_key_sets; k++)
            if (memcmp(org->key_sets[k].curve_public, curve_public, 32) == 0 &&
                pt_key_window_admits(&org->key_sets[k].window, now))
                return org->org_id;
    }
    for (size_t i = 0; i < self->n_auditors; i++)
        if (memcmp(self->auditors[i].curve_public, curve_public, 32) == 0)
            return self->auditors[i].identity;
    return NULL;
}

int pt_directory_put_auditor(pt_directory_t *self, const pt_store_auditor_t *auditor)
{
    char identity[PT_STORE_ORG_ID_MAX];
    if (!auditor || strlen(auditor->auditor_id) > PT_DIRECTORY_AUDITOR_ID_MAX)
        return -1;
    snprintf(identity, sizeof identity, "%s%s", PT_AUDITOR_PREFIX, auditor->auditor_id);
    pt_directory_auditor_t *slot = (pt_directory_auditor_t *)pt_directory_auditor(self, identity);
    if (!slot) {
        pt_directory_auditor_t *grown =
            realloc(self->auditors, (self->n_auditors + 1) * sizeof *self->auditors);
        if (!grown)
            return -1;
        self->auditors = grown;
        slot = &self->auditors[self->n_auditors++];
    }
    memset(slot, 0, sizeof *slot);
    memcpy(slot->identity, identity, sizeof identity);
    snprintf(slot->scope, sizeof slot->scope, "%s", auditor->scope);
    memcpy(slot->sign_public, auditor->sign_public, 32);
    memcpy(slot->curve_public, auditor->curve_public, 32);
    return 0;
}

const pt_directory_auditor_t *pt_directory_auditor(const pt_directory_t *self,
                                                   const char *identity)
{
    for (size_t i = 0; self && identity && i < self->n_auditors; i++)
        if (strcmp(self->auditors[i].identity, identity) == 0)
            return &self->auditors[i];
    return NULL;
}

int pt_directory_in_scope(const char *scope, const char *org_id)
{
    if (!scope || !org_id)
        return 0;
    const char *p = scope;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* "GT" covers every GT-* organisation; "HN-DINAF" exactly that one. */
        if (len == 2 && strncmp(org_id, p, 2) == 0 && org_id[2] == '-')
            return 1;
        if (len == strlen(org_id) && strncmp(org_id, p, len) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* "*" matches everything, "referral.*" a family prefix, anything else exactly. */
static int s_type_matches(const char *pattern, const char *message_type)
{
    if (strcmp(pattern, "*") == 0)
        return 1;
    size_t len = strlen(pattern);
    if (len >= 2 && pattern[len - 1] == '*' && pattern[len - 2] == '.')
        return strncmp(pattern, message_type, len - 1) == 0;
    return strcmp(pattern, message_type) == 0;
}

const char *pt_directory_agreement_for(const pt_directory_t *self, const char *a, const char *b,
                                       const char *message_type, const char *purpose,
                                       const char *agreement_id, int64_t now_ms)
{
    for (size_t i = 0; i < self->n_agreements; i++) {
        const s_agreement_t *ag = &self->agreements[i];
        if (agreement_id && agreement_id[0] && strcmp(ag->agreement_id, agreement_id) != 0)
            continue;
        int parties = (strcmp(ag->org_a, a) == 0 && strcmp(ag->org_b, b) == 0) ||
                      (strcmp(ag->org_a, b) == 0 && strcmp(ag->org_b, a) == 0);
        if (!parties || now_ms < ag->valid_from_ms ||
            (ag->valid_until_ms && now_ms >= ag->valid_until_ms))
            continue;
        int purpose_ok = 0, type_ok = 0;
        for (size_t k = 0; k < ag->n_purposes && !purpose_ok; k++)
            purpose_ok = strcmp(ag->purposes[k], purpose) == 0;
        for (size_t k = 0; k < ag->n_message_types && !type_ok; k++)
            type_ok = s_type_matches(ag->message_types[k], message_type);
        if (purpose_ok && type_ok)
            return ag->agreement_id;
    }
    return NULL;
}

const char *pt_directory_agreement_any(const pt_directory_t *self, const char *a, const char *b,
                                       int64_t now_ms)
{
    for (size_t i = 0; i < self->n_agreements; i++) {
        const s_agreement_t *ag = &self->agreements[i];
        int parties = (strcmp(ag->org_a, a) == 0 && strcmp(ag->org_b, b) == 0) ||
                      (strcmp(ag->org_a, b) == 0 && strcmp(ag->org_b, a) == 0);
        if (parties && now_ms >= ag->valid_from_ms &&
            (ag->valid_until_ms == 0 || now_ms < ag->valid_until_ms))
            return ag->agreement_id;
    }
    return NULL;
}

size_t pt_directory_agreement_count(const pt_directory_t *self)
{
    return self->n_agreements;
}

int pt_directory_agreement_at(const pt_directory_t *self, size_t i, pt_store_agreement_t *out)
{
    if (i >= self->n_agreements)
        return -1;
    const s_agreement_t *ag = &self->agreements[i];
    memset(out, 0, sizeof *out);
    memcpy(out->agreement_id, ag->agreement_id, sizeof out->agreement_id);
    memcpy(out->org_a, ag->org_a, sizeof out->org_a);
    memcpy(out->org_b, ag->org_b, sizeof out->org_b);
    out->purposes = (const char *const *)ag->purposes;
    out->n_purposes = ag->n_purposes;
    out->message_types = (const char *const *)ag->message_types;
    out->n_message_types = ag->n_message_types;
    out->field_sets = (const char *const *)ag->field_sets;
    out->n_field_sets = ag->n_field_sets;
    out->valid_from_ms = ag->valid_from_ms;
    out->valid_until_ms = ag->valid_until_ms;
    return 0;
}

size_t pt_directory_org_count(const pt_directory_t *self)
{
    return self->n_orgs;
}

const pt_directory_org_t *pt_directory_org_at(const pt_directory_t *self, size_t i)
{
    return i < self->n_orgs ? &self->orgs[i] : NULL;
}

int pt_directory_set_org_enabled(pt_directory_t *self, const char *org_id, int enabled)
{
    if (!self || !org_id)
        return -1;
    for (size_t i = 0; i < self->n_orgs; i++)
        if (strcmp(self->orgs[i].org_id, org_id) == 0) {
            self->orgs[i].enabled = enabled ? 1 : 0;
            return 0;
        }
    return -1;
}

int pt_directory_agreement_revoke(pt_directory_t *self, const char *agreement_id,
                                  int64_t until_ms)
{
    if (!self || !agreement_id)
        return -1;
    for (size_t i = 0; i < self->n_agreements; i++) {
        s_agreement_t *a = &self->agreements[i];
        if (strcmp(a->agreement_id, agreement_id) == 0) {
            if (a->valid_until_ms == 0 || a->valid_until_ms > until_ms)
                a->valid_until_ms = until_ms;
            return 0;
        }
    }
    return -1;
}

static volatile sig_atomic_t s_reload_requested = 0;

void pt_directory_request_reload(void)
{
    s_reload_requested = 1;
}

int pt_directory_reload_requested(void)
{
    if (!s_reload_requested)
        return 0;
    s_reload_requested = 0;
    return 1;
}

pt_store_result_t pt_directory_reload(pt_directory_t *self, pt_store_t *store)
{
    if (!self || !store)
        return PT_STORE_ERROR;
    pt_directory_t *fresh = pt_directory_new();
    if (!fresh)
        return PT_STORE_ERROR;
    pt_store_result_t rc = pt_directory_load(fresh, store);
    if (rc == PT_STORE_OK) {
        /* Swap everything but the operators, then free the old tables with fresh. */
        pt_directory_t old = *self;
        self->orgs = fresh->orgs;
        self->n_orgs = fresh->n_orgs;
        self->agreements = fresh->agreements;
        self->n_agreements = fresh->n_agreements;
        self->auditors = fresh->auditors;
        self->n_auditors = fresh->n_auditors;
        fresh->orgs = old.orgs;
        fresh->n_orgs = old.n_orgs;
        fresh->agreements = old.agreements;
        fresh->n_agreements = old.n_agreements;
        fresh->auditors = old.auditors;
        fresh->n_auditors = old.n_auditors;
    }
    pt_directory_destroy(&fresh);
    return rc;
}

/* --- issue 6: key history ---------------------------------------------------------- */

typedef struct {
    pt_directory_t *directory;
    int failed;
} s_key_load_t;

static void s_load_key_set(const pt_store_key_set_t *set, void *arg)
{
    s_key_load_t *load = arg;
    pt_directory_org_t *org = (pt_directory_org_t *)pt_directory_org(load->directory, set->org_id);
    if (!org || load->failed)
        return;
    pt_sign_key_t *key = pt_sign_key_from_public(set->sign_public, 32);
    pt_directory_key_set_t *grown =
        key ? realloc(org->key_sets, (org->n_key_sets + 1) * sizeof *grown) : NULL;
    if (!grown) {
        /* A key OpenSSL refuses cannot verify anything: leaving it out refuses what
           it signed, which is the safe side. Out of memory fails the load. */
        if (key)
            load->failed = 1;
        pt_sign_key_destroy(&key);
        return;
    }
    org->key_sets = grown;
    pt_directory_key_set_t *ks = &org->key_sets[org->n_key_sets++];
    memset(ks, 0, sizeof *ks);
    ks->key_set_id = set->key_set_id;
    memcpy(ks->sign_public, set->sign_public, 32);
    memcpy(ks->seal_public, set->seal_public, 32);
    memcpy(ks->curve_public, set->curve_public, 32);
    pt_sha256(set->sign_public, 32, ks->sign_key_id);
    pt_sha256(set->seal_public, 32, ks->seal_key_id);
    ks->sign_key = key;
    ks->window.valid_from_ms = set->valid_from_ms;
    ks->window.valid_until_ms = set->valid_until_ms;
    ks->window.revoked_at_ms = set->revoked_at_ms;
    snprintf(ks->revoke_reason, sizeof ks->revoke_reason, "%s", set->revoke_reason);
}

pt_store_result_t pt_directory_load_key_sets(pt_directory_t *self, pt_store_t *store,
                                             const char *org_id)
{
    if (!self || !store)
        return PT_STORE_ERROR;
    for (size_t i = 0; i < self->n_orgs; i++)
        if (!org_id || strcmp(self->orgs[i].org_id, org_id) == 0)
            s_key_sets_free(&self->orgs[i]);
    s_key_load_t load = {.directory = self};
    pt_store_result_t rc = pt_store_load_key_sets(store, org_id, s_load_key_set, &load);
    if (rc == PT_STORE_OK && load.failed)
        rc = PT_STORE_ERROR;
    return rc;
}

const pt_directory_key_set_t *pt_directory_key_set(const pt_directory_org_t *org,
                                                   const uint8_t *key_id, size_t key_id_len)
{
    if (!org || !key_id || key_id_len != 32)
        return NULL;
    for (size_t k = 0; k < org->n_key_sets; k++)
        if (memcmp(org->key_sets[k].sign_key_id, key_id, 32) == 0)
            return &org->key_sets[k];
    return NULL;
}

const pt_directory_key_set_t *pt_directory_seal_key_set(const pt_directory_org_t *org,
                                                        const uint8_t *key_id, size_t key_id_len)
{
    if (!org || !key_id || key_id_len != 32)
        return NULL;
    for (size_t k = 0; k < org->n_key_sets; k++)
        if (memcmp(org->key_sets[k].seal_key_id, key_id, 32) == 0)
            return &org->key_sets[k];
    return NULL;
}

int pt_directory_curve_admitted(const pt_directory_org_t *org, const uint8_t curve_public[32],
                                int64_t now_ms)
{
    if (!org || !curve_public)
        return 0;
    if (org->n_key_sets == 0)
        return memcmp(org->curve_public, curve_public, 32) == 0;
    for (size_t k = 0; k < org->n_key_sets; k++)
        if (memcmp(org->key_sets[k].curve_public, curve_public, 32) == 0 &&
            pt_key_window_admits(&org->key_sets[k].window, now_ms))
            return 1;
    return 0;
}

const pt_directory_key_set_t *pt_directory_current_key_set(const pt_directory_org_t *org)
{
    for (size_t k = 0; org && k < org->n_key_sets; k++)
        if (org->key_sets[k].window.valid_until_ms == 0)
            return &org->key_sets[k];
    return NULL;
}

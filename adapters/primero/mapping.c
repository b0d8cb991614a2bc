/*  mapping — Primero v2 records <-> Puente family messages. See mapping.h.

    Primero -> Puente builds the message in the proto3 JSON mapping (jansson) and
    parses it with pt_json_to_message: the strict parser then checks every enum
    name and type, and the message comes out owned by protobuf-c's allocator, so
    there is no hand-written ownership of nested structs. Puente -> Primero reads
    the typed structs directly.
*/
#include "mapping.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "pt_json.h"
#include "referral.pb-c.h"
#include "reintegration.pb-c.h"
#include "tracing.pb-c.h"

#define S_MAX_LISTS 64
#define S_MAX_VALUE 128

/* Lists the mapping cannot run without: a missing file is a load error, not a
   surprise at the first record. */
static const char *const s_required[] = {
    "sex",           "protection_status", "risk_level",       "interview_subject",
    "legitimate_basis", "nationality",    "protection_concerns", "service_type",
    "transition_status", "rejected_reason", "followup_type",  "closure_reason",
    "relationship",  "separation_cause"};

typedef struct {
    char *primero;
    char *puente;
} s_row_t;

typedef struct {
    char name[64];
    s_row_t *rows;
    size_t n_rows;
} s_list_t;

struct _pt_primero_codelists_t {
    char version[32];
    s_list_t lists[S_MAX_LISTS];
    size_t n_lists;
};

static void s_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* --- code lists ------------------------------------------------------------ */

static int s_valid_code(const char *text)
{
    if (!*text || strlen(text) >= S_MAX_VALUE)
        return 0;
    for (const char *p = text; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

static int s_list_load(s_list_t *list, const char *path, char *err, size_t err_len)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        s_err(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int line_no = 0, header_seen = 0;
    size_t cap = 0;
    while (fgets(line, sizeof line, file)) {
        line_no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            s_err(err, err_len, "%s:%d: line too long", path, line_no);
            goto error;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (!header_seen) {
            if (strcmp(line, "primero_value,puente_value") != 0) {
                s_err(err, err_len, "%s:%d: expected header primero_value,puente_value", path,
                      line_no);
                goto error;
            }
            header_seen = 1;
            continue;
        }
        char *comma = strchr(line, ',');
        if (!comma || strchr(comma + 1, ',')) {
            s_err(err, err_len, "%s:%d: expected two columns", path, line_no);
            goto error;
        }
        *comma = '\0';
        if (!s_valid_code(line) || !s_valid_code(comma + 1)) {
            s_err(err, err_len, "%s:%d: invalid code value", path, line_no);
            goto error;
        }
        for (size_t i = 0; i < list->n_rows; i++)
            if (strcmp(list->rows[i].primero, line) == 0) {
                s_err(err, err_len, "%s:%d: duplicate primero_value '%s'", path, line_no, line);
                goto error;
            }
        if (list->n_rows == cap) {
            size_t new_cap = cap ? cap * 2 : 16;
            s_row_t *rows = realloc(list->rows, new_cap * sizeof *rows);
            if (!rows) {
                s_err(err, err_len, "out of memory");
                goto error;
            }
            list->rows = rows;
            cap = new_cap;
        }
        s_row_t *row = &list->rows[list->n_rows];
        row->primero = strdup(line);
        row->puente = strdup(comma + 1);
        if (!row->primero || !row->puente) {
            free(row->primero);
            free(row->puente);
            s_err(err, err_len, "out of memory");
            goto error;
        }
        list->n_rows++;
    }
    if (!header_seen) {
        s_err(err, err_len, "%s: empty code list", path);
        goto error;
    }
    fclose(file);
    return 0;
error:
    fclose(file);
    return -1;
}

static const s_list_t *s_list_find(const pt_primero_codelists_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_lists; i++)
        if (strcmp(self->lists[i].name, name) == 0)
            return &self->lists[i];
    return NULL;
}

pt_primero_codelists_t *pt_primero_codelists_load(const char *dir, const char *version, char *err,
                                                  size_t err_len)
{
    DIR *dh = NULL;
    pt_primero_codelists_t *self = NULL;
    if (!dir || !version || !s_valid_code(version) || strlen(version) >= sizeof self->version) {
        s_err(err, err_len, "invalid code-list version");
        return NULL;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        s_err(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(self->version, sizeof self->version, "%s", version);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, version);
    dh = opendir(path);
    if (!dh) {
        s_err(err, err_len, "%s: %s", path, strerror(errno));
        goto error;
    }
    struct dirent *entry;
    while ((entry = readdir(dh))) {
        size_t len = strlen(entry->d_name);
        if (len <= 4 || strcmp(entry->d_name + len - 4, ".csv") != 0)
            continue;
        if (self->n_lists == S_MAX_LISTS || len - 4 >= sizeof self->lists[0].name) {
            s_err(err, err_len, "%s: too many code lists or name too long", path);
            goto error;
        }
        s_list_t *list = &self->lists[self->n_lists++];
        memcpy(list->name, entry->d_name, len - 4);
        list->name[len - 4] = '\0';
        char file[4400];
        snprintf(file, sizeof file, "%s/%s", path, entry->d_name);
        if (s_list_load(list, file, err, err_len) != 0)
            goto error;
    }
    for (size_t i = 0; i < sizeof s_required / sizeof s_required[0]; i++)
        if (!s_list_find(self, s_required[i])) {
            s_err(err, err_len, "%s: code list %s.csv missing", path, s_required[i]);
            goto error;
        }
    closedir(dh);
    return self;
error:
    if (dh)
        closedir(dh);
    pt_primero_codelists_destroy(&self);
    return NULL;
}

void pt_primero_codelists_destroy(pt_primero_codelists_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_primero_codelists_t *self = *self_p;
    for (size_t i = 0; i < self->n_lists; i++) {
        for (size_t j = 0; j < self->lists[i].n_rows; j++) {
            free(self->lists[i].rows[j].primero);
            free(self->lists[i].rows[j].puente);
        }
        free(self->lists[i].rows);
    }
    free(self);
    *self_p = NULL;
}

const char *pt_primero_codelists_version(const pt_primero_codelists_t *self)
{
    return self->version;
}

const char *pt_primero_code_to_puente(const pt_primero_codelists_t *self, const char *list,
                                      const char *primero_value)
{
    const s_list_t *found = s_list_find(self, list);
    for (size_t i = 0; found && primero_value && i < found->n_rows; i++)
        if (strcmp(found->rows[i].primero, primero_value) == 0)
            return found->rows[i].puente;
    return NULL;
}

const char *pt_primero_code_to_primero(const pt_primero_codelists_t *self, const char *list,
                                       const char *puente_value)
{
    const s_list_t *found = s_list_find(self, list);
    for (size_t i = 0; found && puente_value && i < found->n_rows; i++)
        if (strcmp(found->rows[i].puente, puente_value) == 0)
            return found->rows[i].primero;
    return NULL;
}

void pt_primero_out_clear(pt_primero_out_t *out)
{
    if (!out)
        return;
    if (out->body)
        protobuf_c_message_free_unpacked(out->body, NULL);
    memset(out, 0, sizeof *out);
}

/* --- Primero -> Puente helpers ------------------------------------------------ */

/* A mapping context: the lists, the error buffer, and the first error only. */
typedef struct {
    const pt_primero_codelists_t *lists;
    char *err;
    size_t err_len;
    int failed;
} s_ctx_t;

static void s_fail(s_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->failed)
        return;
    ctx->failed = 1;
    if (!ctx->err || ctx->err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->err_len, fmt, ap);
    va_end(ap);
}

/* The string at key, NULL when absent, null or "". Anything else is an error. */
static const char *s_str(s_ctx_t *ctx, const json_t *obj, const char *key)
{
    const json_t *value = json_object_get(obj, key);
    if (!value || json_is_null(value))
        return NULL;
    if (!json_is_string(value)) {
        s_fail(ctx, "%s: expected a string", key);
        return NULL;
    }
    const char *text = json_string_value(value);
    return *text ? text : NULL;
}

/* -1 absent, 0/1 as given; Primero sends booleans, some forms "true"/"false". */
static int s_bool(s_ctx_t *ctx, const json_t *obj, const char *key)
{
    const json_t *value = json_object_get(obj, key);
    if (!value || json_is_null(value))
        return -1;
    if (json_is_boolean(value))
        return json_is_true(value);
    if (json_is_string(value) && strcmp(json_string_value(value), "true") == 0)
        return 1;
    if (json_is_string(value) && strcmp(json_string_value(value), "false") == 0)
        return 0;
    s_fail(ctx, "%s: expected a boolean", key);
    return -1;
}

static void s_copy_str(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                       const char *src_key)
{
    const char *text = s_str(ctx, src, src_key);
    if (text)
        json_object_set_new(dst, dst_key, json_string(text));
}

static void s_copy_bool(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                        const char *src_key)
{
    int value = s_bool(ctx, src, src_key);
    if (value == 1)
        json_object_set_new(dst, dst_key, json_true());
}

/* Looks a Primero value up; unknown values fail naming field and value. */
static const char *s_code(s_ctx_t *ctx, const char *list, const char *field, const char *value)
{
    const char *mapped = pt_primero_code_to_puente(ctx->lists, list, value);
    if (!mapped)
        s_fail(ctx, "%s: unknown value '%.60s' (code list %s/%s.csv)", field,
               s_valid_code(value) ? value : "?", ctx->lists->version, list);
    return mapped;
}

static void s_copy_code(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                        const char *src_key, const char *list)
{
    const char *text = s_str(ctx, src, src_key);
    if (!text)
        return;
    const char *mapped = s_code(ctx, list, src_key, text);
    if (mapped)
        json_object_set_new(dst, dst_key, json_string(mapped));
}

/* A multi-select (array of strings; a lone string is taken as one value). */
static void s_copy_codes(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                         const char *src_key, const char *list)
{
    const json_t *value = json_object_get(src, src_key);
    if (!value || json_is_null(value))
        return;
    json_t *array = json_array();
    if (json_is_string(value)) {
        const char *mapped = s_code(ctx, list, src_key, json_string_value(value));
        if (mapped)
            json_array_append_new(array, json_string(mapped));
    } else if (json_is_array(value)) {
        size_t i;
        const json_t *item;
        json_array_foreach(value, i, item)
        {
            if (!json_is_string(item)) {
                s_fail(ctx, "%s[%zu]: expected a string", src_key, i);
                break;
            }
            const char *mapped = s_code(ctx, list, src_key, json_string_value(item));
            if (mapped)
                json_array_append_new(array, json_string(mapped));
        }
    } else {
        s_fail(ctx, "%s: expected a list", src_key);
    }
    if (json_array_size(array))
        json_object_set_new(dst, dst_key, array);
    else
        json_decref(array);
}

/* "2010-03-14" (a time part after it is ignored) -> {"year","month","day"}. */
static void s_copy_date(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                        const char *src_key)
{
    const char *text = s_str(ctx, src, src_key);
    if (!text)
        return;
    int year, month, day;
    char tail;
    int n = sscanf(text, "%4d-%2d-%2d%c", &year, &month, &day, &tail);
    if ((n != 3 && !(n == 4 && (tail == 'T' || tail == ' '))) || strlen(text) < 10 ||
        year < 1900 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31) {
        s_fail(ctx, "%s: expected a date YYYY-MM-DD", src_key);
        return;
    }
    json_object_set_new(dst, dst_key, json_pack("{s:i,s:i,s:i}", "year", year, "month", month,
                                                "day", day));
}

static void s_copy_uint(s_ctx_t *ctx, json_t *dst, const char *dst_key, const json_t *src,
                        const char *src_key)
{
    const json_t *value = json_object_get(src, src_key);
    if (!value || json_is_null(value))
        return;
    if (!json_is_integer(value) || json_integer_value(value) < 0 ||
        json_integer_value(value) > 150) {
        s_fail(ctx, "%s: expected an age in years", src_key);
        return;
    }
    json_object_set_new(dst, dst_key, json_integer(json_integer_value(value)));
}

/* Empty objects are left out so that the message has no empty submessages. */
static void s_set_obj(json_t *dst, const char *key, json_t *obj)
{
    if (json_object_size(obj))
        json_object_set_new(dst, key, obj);
    else
        json_decref(obj);
}

static json_t *s_child(s_ctx_t *ctx, const json_t *data)
{
    json_t *child = json_object();
    s_copy_str(ctx, child, "name_first", data, "name_first");
    s_copy_str(ctx, child, "name_middle", data, "name_middle");
    s_copy_str(ctx, child, "name_last", data, "name_last");
    s_copy_str(ctx, child, "name_nickname", data, "name_nickname");
    s_copy_code(ctx, child, "sex", data, "sex", "sex");
    s_copy_date(ctx, child, "date_of_birth", data, "date_of_birth");
    s_copy_uint(ctx, child, "age", data, "age");
    s_copy_bool(ctx, child, "estimated", data, "estimated");
    s_copy_codes(ctx, child, "nationality", data, "nationality", "nationality");
    return child;
}

static json_t *s_protection(s_ctx_t *ctx, const json_t *data)
{
    json_t *protection = json_object();
    s_copy_code(ctx, protection, "protection_status", data, "protection_status",
                "protection_status");
    s_copy_codes(ctx, protection, "protection_concerns", data, "protection_concerns",
                 "protection_concerns");
    s_copy_code(ctx, protection, "risk_level", data, "risk_level", "risk_level");
    s_copy_bool(ctx, protection, "urgent_protection_concern", data, "urgent_protection_concern");
    return protection;
}

static json_t *s_consent(s_ctx_t *ctx, const json_t *data)
{
    json_t *consent = json_object();
    s_copy_code(ctx, consent, "interview_subject", data, "interview_subject",
                "interview_subject");
    s_copy_bool(ctx, consent, "consent_for_services", data, "consent_for_services");
    s_copy_bool(ctx, consent, "disclosure_other_orgs", data, "disclosure_other_orgs");
    s_copy_bool(ctx, consent, "consent_for_tracing", data, "consent_for_tracing");
    s_copy_codes(ctx, consent, "legitimate_basis", data, "legitimate_basis", "legitimate_basis");
    return consent;
}

static json_t *s_by(const char *org)
{
    json_t *by = json_object();
    if (org && *org)
        json_object_set_new(by, "organisation", json_string(org));
    return by;
}

/* Parses the built JSON into a message of type. 0 or -1 (err set). */
static int s_finish(s_ctx_t *ctx, json_t *built, const char *type,
                    const ProtobufCMessageDescriptor *desc, pt_primero_out_t *out)
{
    memset(out, 0, sizeof *out);
    if (ctx->failed) {
        json_decref(built);
        return -1;
    }
    char *text = json_dumps(built, JSON_COMPACT);
    json_decref(built);
    if (!text) {
        s_fail(ctx, "out of memory");
        return -1;
    }
    char perr[PT_JSON_ERR_BYTES];
    ProtobufCMessage *body = NULL;
    int rc = pt_json_to_message(desc, text, strlen(text), &body, perr, sizeof perr);
    free(text);
    if (rc != 0) {
        s_fail(ctx, "mapped message invalid: %s", perr);
        return -1;
    }
    out->message_type = type;
    out->body = body;
    return 0;
}

static const char *s_case_id(s_ctx_t *ctx, const json_t *data)
{
    const char *id = s_str(ctx, data, "id");
    if (!id)
        id = s_str(ctx, data, "case_id");
    if (!id)
        s_fail(ctx, "id: missing");
    return id;
}

/* --- Primero -> Puente ----------------------------------------------------------- */

int pt_primero_case_to_referrals(const pt_primero_codelists_t *lists, const json_t *case_data,
                                 const char *org, const char *to_org, pt_primero_out_t *out,
                                 size_t max, char *err, size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    size_t n = 0;
    if (!json_is_object(case_data)) {
        s_fail(&ctx, "case: expected an object");
        return -1;
    }
    const char *case_id = s_case_id(&ctx, case_data);
    const json_t *services = json_object_get(case_data, "services_section");
    if (ctx.failed)
        return -1;
    if (services && !json_is_array(services)) {
        s_fail(&ctx, "services_section: expected a list");
        return -1;
    }
    size_t i;
    const json_t *service;
    json_array_foreach(services, i, service)
    {
        const char *response = s_str(&ctx, service, "service_response_type");
        const char *agency = s_str(&ctx, service, "service_implementing_agency");
        if (ctx.failed)
            goto error;
        if (!response || strcmp(response, "referral_to_other_country") != 0 || !agency ||
            (to_org && strcmp(agency, to_org) != 0))
            continue;
        if (n == max) {
            s_fail(&ctx, "services_section: more than %zu referred services", max);
            goto error;
        }
        const char *unique_id = s_str(&ctx, service, "unique_id");
        const char *type = s_str(&ctx, service, "service_type");
        if (!unique_id || !type) {
            s_fail(&ctx, "services_section[%zu]: unique_id and service_type are required", i);
            goto error;
        }
        json_t *built = json_object();
        char referral_id[160];
        snprintf(referral_id, sizeof referral_id, "%.80s#%.70s", case_id, unique_id);
        json_object_set_new(built, "referral_id", json_string(referral_id));
        s_set_obj(built, "referred_by", s_by(org));
        s_set_obj(built, "child", s_child(&ctx, case_data));
        s_set_obj(built, "protection", s_protection(&ctx, case_data));
        s_set_obj(built, "consent", s_consent(&ctx, case_data));
        json_t *request = json_object();
        const char *mapped = s_code(&ctx, "service_type", "service_type", type);
        if (mapped)
            json_object_set_new(request, "service_type", json_string(mapped));
        s_copy_str(&ctx, request, "implementing_agency", service, "service_implementing_agency");
        s_copy_str(&ctx, request, "notes", service, "service_referral_notes");
        json_object_set_new(built, "services", json_pack("[o]", request));
        if (s_finish(&ctx, built, "referral.request", &puente__v1__referral_request__descriptor,
                     &out[n]) != 0)
            goto error;
        out[n].service_type = mapped;
        snprintf(out[n].ref, sizeof out[n].ref, "%s", referral_id);
        n++;
    }
    return (int) n;
error:
    for (size_t k = 0; k < n; k++)
        pt_primero_out_clear(&out[k]);
    return -1;
}

int pt_primero_case_to_transfer(const pt_primero_codelists_t *lists, const json_t *case_data,
                                const char *org, pt_primero_out_t *out, char *err, size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    memset(out, 0, sizeof *out);
    if (!json_is_object(case_data)) {
        s_fail(&ctx, "case: expected an object");
        return -1;
    }
    const char *case_id = s_case_id(&ctx, case_data);
    if (ctx.failed)
        return -1;
    json_t *built = json_object();
    json_object_set_new(built, "transfer_id", json_string(case_id));
    s_set_obj(built, "from", s_by(org));
    s_set_obj(built, "child", s_child(&ctx, case_data));
    s_set_obj(built, "protection", s_protection(&ctx, case_data));
    s_set_obj(built, "consent", s_consent(&ctx, case_data));
    s_copy_str(&ctx, built, "transfer_reason", case_data, "transfer_reason");
    s_copy_str(&ctx, built, "notes", case_data, "transfer_notes");
    if (s_finish(&ctx, built, "transfer.request", &puente__v1__case_transfer__descriptor, out) != 0)
        return -1;
    snprintf(out->ref, sizeof out->ref, "%s", case_id);
    return 0;
}

int pt_primero_transition_to_puente(const pt_primero_codelists_t *lists, const json_t *transition,
                                    const char *org, pt_primero_out_t *out, char *err,
                                    size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    memset(out, 0, sizeof *out);
    const char *kind = s_str(&ctx, transition, "type");
    const char *status = s_str(&ctx, transition, "status");
    const char *record_id = s_str(&ctx, transition, "record_id");
    if (ctx.failed)
        return -1;
    if (!kind || !status || !record_id) {
        s_fail(&ctx, "transition: type, status and record_id are required");
        return -1;
    }
    const char *mapped = s_code(&ctx, "transition_status", "status", status);
    if (!mapped)
        return -1;
    json_t *built = json_object();
    if (strcmp(kind, "Referral") == 0) {
        const char *service_id = s_str(&ctx, transition, "service_record_id");
        if (!service_id) {
            s_fail(&ctx, "service_record_id: required for a Referral");
            json_decref(built);
            return -1;
        }
        char referral_id[160];
        snprintf(referral_id, sizeof referral_id, "%.80s#%.70s", record_id, service_id);
        json_object_set_new(built, "referral_id", json_string(referral_id));
        snprintf(out->ref, sizeof out->ref, "%s", referral_id);
        if (strcmp(mapped, "rejected") == 0) {
            const char *reason = s_str(&ctx, transition, "rejected_reason");
            if (!reason) {
                s_fail(&ctx, "rejected_reason: required when status is rejected");
                json_decref(built);
                return -1;
            }
            s_copy_code(&ctx, built, "rejected_reason", transition, "rejected_reason",
                        "rejected_reason");
            s_copy_str(&ctx, built, "rejection_note", transition, "rejection_note");
            s_set_obj(built, "by", s_by(org));
            return s_finish(&ctx, built, "referral.reject",
                            &puente__v1__referral_rejection__descriptor, out);
        }
        static const char *const types[][2] = {{"in_progress", "referral.progress"},
                                                 {"accepted", "referral.accept"},
                                                 {"done", "referral.done"},
                                                 {"revoked", "referral.revoke"}};
        const char *type = NULL;
        for (size_t i = 0; i < 4; i++)
            if (strcmp(types[i][0], mapped) == 0)
                type = types[i][1];
        if (!type) {
            s_fail(&ctx, "status: no Puente message for '%s'", mapped);
            json_decref(built);
            return -1;
        }
        json_object_set_new(built, "status", json_string(mapped));
        s_set_obj(built, "by", s_by(org));
        s_copy_str(&ctx, built, "note", transition, "notes");
        return s_finish(&ctx, built, type, &puente__v1__referral_update__descriptor, out);
    }
    if (strcmp(kind, "Transfer") == 0) {
        json_object_set_new(built, "transfer_id", json_string(record_id));
        snprintf(out->ref, sizeof out->ref, "%s", record_id);
        s_set_obj(built, "by", s_by(org));
        if (strcmp(mapped, "accepted") == 0) {
            json_object_set_new(built, "accepted", json_true());
            return s_finish(&ctx, built, "transfer.accept",
                            &puente__v1__transfer_response__descriptor, out);
        }
        if (strcmp(mapped, "rejected") == 0) {
            if (!s_str(&ctx, transition, "rejected_reason")) {
                s_fail(&ctx, "rejected_reason: required when status is rejected");
                json_decref(built);
                return -1;
            }
            s_copy_code(&ctx, built, "rejected_reason", transition, "rejected_reason",
                        "rejected_reason");
            return s_finish(&ctx, built, "transfer.reject",
                            &puente__v1__transfer_response__descriptor, out);
        }
        if (strcmp(mapped, "revoked") == 0) {
            /* The sender withdraws it; Primero's revoke has no reason, a
               rejected_reason on the row is carried when present. */
            s_copy_code(&ctx, built, "rejected_reason", transition, "rejected_reason",
                        "rejected_reason");
            return s_finish(&ctx, built, "transfer.revoke",
                            &puente__v1__transfer_response__descriptor, out);
        }
        s_fail(&ctx, "status: a Transfer '%s' has no Puente message", mapped);
        json_decref(built);
        return -1;
    }
    s_fail(&ctx, "type: unsupported transition type '%.40s'", s_valid_code(kind) ? kind : "?");
    json_decref(built);
    return -1;
}

static json_t *s_separation(s_ctx_t *ctx, const json_t *src)
{
    json_t *separation = json_object();
    s_copy_date(ctx, separation, "date_of_separation", src, "date_of_separation");
    s_copy_code(ctx, separation, "separation_cause", src, "separation_cause", "separation_cause");
    s_copy_str(ctx, separation, "location_separation", src, "location_separation");
    s_copy_str(ctx, separation, "location_last", src, "location_last");
    return separation;
}

int pt_primero_tracing_to_puente(const pt_primero_codelists_t *lists, const json_t *tracing_request,
                                 const char *org, pt_primero_out_t *out, char *err,
                                 size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    memset(out, 0, sizeof *out);
    const json_t *data = tracing_request;
    const char *tr_id = s_str(&ctx, data, "tracing_request_id");
    if (!tr_id) {
        s_fail(&ctx, "tracing_request_id: missing");
        return -1;
    }
    json_t *built = json_object();
    json_object_set_new(built, "tracing_request_id", json_string(tr_id));
    s_set_obj(built, "requested_by", s_by(org));
    json_t *inquirer = json_object();
    s_copy_str(&ctx, inquirer, "relation_name", data, "relation_name");
    s_copy_code(&ctx, inquirer, "relation", data, "relation", "relationship");
    s_copy_uint(&ctx, inquirer, "relation_age", data, "relation_age");
    s_copy_code(&ctx, inquirer, "relation_sex", data, "relation_sex", "sex");
    s_copy_codes(&ctx, inquirer, "relation_nationality", data, "relation_nationality",
                 "nationality");
    s_copy_date(&ctx, inquirer, "inquiry_date", data, "inquiry_date");
    s_set_obj(built, "inquirer", inquirer);
    const json_t *traces = json_object_get(data, "tracing_request_subform_section");
    if (traces && !json_is_array(traces))
        s_fail(&ctx, "tracing_request_subform_section: expected a list");
    json_t *sought = json_array();
    size_t i;
    const json_t *trace;
    json_array_foreach(traces, i, trace)
    {
        json_t *person = json_object();
        s_copy_str(&ctx, person, "trace_id", trace, "unique_id");
        s_copy_code(&ctx, person, "relation", trace, "relation", "relationship");
        /* A Primero trace has one full name; it travels in name_first. */
        json_t *identity = json_object();
        s_copy_str(&ctx, identity, "name_first", trace, "name");
        s_copy_str(&ctx, identity, "name_nickname", trace, "name_nickname");
        s_copy_code(&ctx, identity, "sex", trace, "sex", "sex");
        s_copy_uint(&ctx, identity, "age", trace, "age");
        s_copy_date(&ctx, identity, "date_of_birth", trace, "date_of_birth");
        s_set_obj(person, "identity", identity);
        s_set_obj(person, "separation", s_separation(&ctx, trace));
        json_array_append_new(sought, person);
    }
    json_object_set_new(built, "sought", sought);
    const json_t *countries = json_object_get(data, "search_countries");
    if (countries && json_is_array(countries))
        json_object_set(built, "search_countries", (json_t *) countries);
    else if (countries && !json_is_null(countries))
        s_fail(&ctx, "search_countries: expected a list");
    s_set_obj(built, "consent", s_consent(&ctx, data));
    s_copy_bool(&ctx, built, "wishes_child_family_tracing", data, "wishes_child_family_tracing");
    if (s_finish(&ctx, built, "tracing.request", &puente__v1__trace_request__descriptor, out) != 0)
        return -1;
    snprintf(out->ref, sizeof out->ref, "%s", tr_id);
    return 0;
}

static const char *s_return_id(s_ctx_t *ctx, const json_t *case_data)
{
    const char *id = s_str(ctx, case_data, "puente_return_id");
    return id ? id : s_case_id(ctx, case_data);
}

int pt_primero_followup_to_puente(const pt_primero_codelists_t *lists, const json_t *case_data,
                                  size_t row, const char *org, pt_primero_out_t *out, char *err,
                                  size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    memset(out, 0, sizeof *out);
    const char *return_id = s_return_id(&ctx, case_data);
    const json_t *rows = json_object_get(case_data, "followup_subform_section");
    const json_t *followup = json_array_get(rows, row);
    if (ctx.failed)
        return -1;
    if (!json_is_object(followup)) {
        s_fail(&ctx, "followup_subform_section[%zu]: missing", row);
        return -1;
    }
    json_t *built = json_object();
    json_object_set_new(built, "return_id", json_string(return_id));
    s_copy_code(&ctx, built, "followup_type", followup, "followup_type", "followup_type");
    s_copy_date(&ctx, built, "followup_date", followup, "followup_date");
    s_copy_bool(&ctx, built, "child_seen", followup, "child_was_seen");
    s_copy_str(&ctx, built, "not_seen_reason", followup, "reason_child_not_seen");
    s_copy_code(&ctx, built, "risk_level", followup, "risk_level", "risk_level");
    s_copy_date(&ctx, built, "next_follow_up_due", followup, "followup_needed_by_date");
    s_set_obj(built, "by", s_by(org));
    if (s_finish(&ctx, built, "reintegration.followup", &puente__v1__follow_up_report__descriptor,
                 out) != 0)
        return -1;
    snprintf(out->ref, sizeof out->ref, "%s", return_id);
    return 0;
}

int pt_primero_closure_to_puente(const pt_primero_codelists_t *lists, const json_t *case_data,
                                 const char *org, pt_primero_out_t *out, char *err,
                                 size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    memset(out, 0, sizeof *out);
    const char *return_id = s_return_id(&ctx, case_data);
    if (ctx.failed)
        return -1;
    if (!s_str(&ctx, case_data, "closure_reason")) {
        s_fail(&ctx, "closure_reason: missing");
        return -1;
    }
    json_t *built = json_object();
    json_object_set_new(built, "return_id", json_string(return_id));
    s_copy_code(&ctx, built, "closure_reason", case_data, "closure_reason", "closure_reason");
    s_copy_date(&ctx, built, "date_closure", case_data, "date_closure");
    s_copy_str(&ctx, built, "note", case_data, "closure_comments");
    s_set_obj(built, "by", s_by(org));
    if (s_finish(&ctx, built, "reintegration.close", &puente__v1__reintegration_closure__descriptor,
                 out) != 0)
        return -1;
    snprintf(out->ref, sizeof out->ref, "%s", return_id);
    return 0;
}

/* --- Puente -> Primero -------------------------------------------------------------- */

static void s_put_str(json_t *dst, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(dst, key, json_string(value));
}

static void s_put_date(json_t *dst, const char *key, const Puente__V1__Date *date)
{
    if (!date || date->year <= 0 || date->year > 9999 || date->month <= 0 || date->month > 12 ||
        date->day <= 0 || date->day > 31)
        return;
    char text[40];
    snprintf(text, sizeof text, "%04d-%02d-%02d", (int) date->year, (int) date->month,
             (int) date->day);
    json_object_set_new(dst, key, json_string(text));
}

static void s_put_code(s_ctx_t *ctx, json_t *dst, const char *key, const char *list,
                       const char *puente_value)
{
    if (!puente_value || !*puente_value)
        return;
    const char *mapped = pt_primero_code_to_primero(ctx->lists, list, puente_value);
    if (!mapped) {
        s_fail(ctx, "%s: no Primero value for '%.60s' (code list %s/%s.csv)", key,
               s_valid_code(puente_value) ? puente_value : "?", ctx->lists->version, list);
        return;
    }
    json_object_set_new(dst, key, json_string(mapped));
}

/* Enums travel as their names in the code lists ("SEX_FEMALE"); 0 is "not set". */
static void s_put_enum(s_ctx_t *ctx, json_t *dst, const char *key, const char *list,
                       const ProtobufCEnumDescriptor *desc, int value)
{
    if (value == 0)
        return;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(desc, value);
    if (!ev) {
        s_fail(ctx, "%s: unknown enum value %d", key, value);
        return;
    }
    s_put_code(ctx, dst, key, list, ev->name);
}

static void s_put_codes(s_ctx_t *ctx, json_t *dst, const char *key, const char *list,
                        char *const *values, size_t n)
{
    if (n == 0)
        return;
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *mapped = pt_primero_code_to_primero(ctx->lists, list, values[i]);
        if (!mapped) {
            s_fail(ctx, "%s: no Primero value for '%.60s' (code list %s/%s.csv)", key,
                   s_valid_code(values[i]) ? values[i] : "?", ctx->lists->version, list);
            break;
        }
        json_array_append_new(array, json_string(mapped));
    }
    json_object_set_new(dst, key, array);
}

static void s_put_child(s_ctx_t *ctx, json_t *dst, const Puente__V1__ChildIdentity *child)
{
    if (!child)
        return;
    s_put_str(dst, "name_first", child->name_first);
    s_put_str(dst, "name_middle", child->name_middle);
    s_put_str(dst, "name_last", child->name_last);
    s_put_str(dst, "name_nickname", child->name_nickname);
    s_put_enum(ctx, dst, "sex", "sex", &puente__v1__sex__descriptor, child->sex);
    s_put_date(dst, "date_of_birth", child->date_of_birth);
    if (child->age)
        json_object_set_new(dst, "age", json_integer(child->age));
    if (child->estimated)
        json_object_set_new(dst, "estimated", json_true());
    s_put_codes(ctx, dst, "nationality", "nationality", child->nationality, child->n_nationality);
}

static void s_put_protection(s_ctx_t *ctx, json_t *dst, const Puente__V1__ProtectionProfile *p)
{
    if (!p)
        return;
    s_put_enum(ctx, dst, "protection_status", "protection_status",
               &puente__v1__protection_status__descriptor, p->protection_status);
    s_put_codes(ctx, dst, "protection_concerns", "protection_concerns", p->protection_concerns,
                p->n_protection_concerns);
    s_put_enum(ctx, dst, "risk_level", "risk_level", &puente__v1__risk_level__descriptor,
               p->risk_level);
    if (p->urgent_protection_concern)
        json_object_set_new(dst, "urgent_protection_concern", json_true());
}

static void s_put_consent(s_ctx_t *ctx, json_t *dst, const Puente__V1__ConsentBlock *c)
{
    if (!c)
        return;
    s_put_enum(ctx, dst, "interview_subject", "interview_subject",
               &puente__v1__interview_subject__descriptor, c->interview_subject);
    json_object_set_new(dst, "consent_for_services", json_boolean(c->consent_for_services));
    json_object_set_new(dst, "disclosure_other_orgs", json_boolean(c->disclosure_other_orgs));
    json_object_set_new(dst, "consent_for_tracing", json_boolean(c->consent_for_tracing));
    if (c->n_legitimate_basis) {
        json_t *array = json_array();
        json_object_set_new(dst, "legitimate_basis", array);
        for (size_t i = 0; i < c->n_legitimate_basis; i++) {
            json_t *one = json_object();
            s_put_enum(ctx, one, "legitimate_basis", "legitimate_basis",
                       &puente__v1__legal_basis__descriptor, c->legitimate_basis[i]);
            json_t *value = json_object_get(one, "legitimate_basis");
            if (value)
                json_array_append(array, value);
            json_decref(one);
        }
    }
}

static void s_put_by(json_t *dst, const char *key, const Puente__V1__CaseworkerRef *by)
{
    if (by)
        s_put_str(dst, key, by->organisation);
}

static json_t *s_referral_case(s_ctx_t *ctx, const Puente__V1__ReferralRequest *r)
{
    json_t *data = json_object();
    s_put_str(data, "puente_referral_id", r->referral_id);
    s_put_by(data, "puente_sender", r->referred_by);
    s_put_child(ctx, data, r->child);
    s_put_protection(ctx, data, r->protection);
    s_put_consent(ctx, data, r->consent);
    json_t *services = json_array();
    /* The sender's case id and service unique id stay in the referral id; the
       receiving instance gives the rows its own ids. */
    const char *hash = r->referral_id ? strrchr(r->referral_id, '#') : NULL;
    for (size_t i = 0; i < r->n_services; i++) {
        const Puente__V1__ServiceRequest *s = r->services[i];
        json_t *row = json_object();
        s_put_code(ctx, row, "service_type", "service_type", s->service_type);
        s_put_str(row, "service_implementing_agency", s->implementing_agency);
        s_put_str(row, "service_referral_notes", s->notes);
        json_object_set_new(row, "service_response_type",
                            json_string("referral_to_other_country"));
        json_object_set_new(row, "service_status_referred", json_true());
        if (hash && hash[1] && r->n_services == 1)
            json_object_set_new(row, "unique_id", json_string(hash + 1));
        json_array_append_new(services, row);
    }
    json_object_set_new(data, "services_section", services);
    return data;
}

static json_t *s_transition(s_ctx_t *ctx, const char *kind, const char *status, const char *ref,
                            int split)
{
    json_t *data = json_object();
    json_object_set_new(data, "type", json_string(kind));
    s_put_code(ctx, data, "status", "transition_status", status);
    if (!ref)
        ref = "";
    const char *hash = split ? strrchr(ref, '#') : NULL;
    if (split && !hash) {
        s_fail(ctx, "referral_id: expected <record id>#<service id>");
        return data;
    }
    if (hash) {
        json_object_set_new(data, "record_id", json_stringn(ref, (size_t) (hash - ref)));
        json_object_set_new(data, "service_record_id", json_string(hash + 1));
    } else {
        json_object_set_new(data, "record_id", json_string(ref));
    }
    json_object_set_new(data, "remote", json_true());
    return data;
}

json_t *pt_primero_from_puente(const pt_primero_codelists_t *lists, const char *message_type,
                               const ProtobufCMessage *body, char *err, size_t err_len)
{
    s_ctx_t ctx = {lists, err, err_len, 0};
    json_t *data = NULL;
    if (!message_type || !body) {
        s_fail(&ctx, "no message");
        return NULL;
    }
    const ProtobufCMessageDescriptor *desc = body->descriptor;
    if (strcmp(message_type, "referral.request") == 0 &&
        desc == &puente__v1__referral_request__descriptor) {
        data = s_referral_case(&ctx, (const Puente__V1__ReferralRequest *) body);
    } else if (strcmp(message_type, "transfer.request") == 0 &&
               desc == &puente__v1__case_transfer__descriptor) {
        const Puente__V1__CaseTransfer *t = (const Puente__V1__CaseTransfer *) body;
        data = json_object();
        s_put_str(data, "puente_transfer_id", t->transfer_id);
        s_put_by(data, "puente_sender", t->from);
        s_put_child(&ctx, data, t->child);
        s_put_protection(&ctx, data, t->protection);
        s_put_consent(&ctx, data, t->consent);
        s_put_str(data, "transfer_reason", t->transfer_reason);
        s_put_str(data, "transfer_notes", t->notes);
    } else if (strncmp(message_type, "referral.", 9) == 0 &&
               desc == &puente__v1__referral_update__descriptor) {
        const Puente__V1__ReferralUpdate *u = (const Puente__V1__ReferralUpdate *) body;
        data = s_transition(&ctx, "Referral", u->status, u->referral_id, 1);
        s_put_str(data, "notes", u->note);
    } else if (strcmp(message_type, "referral.reject") == 0 &&
               desc == &puente__v1__referral_rejection__descriptor) {
        const Puente__V1__ReferralRejection *r = (const Puente__V1__ReferralRejection *) body;
        data = s_transition(&ctx, "Referral", "rejected", r->referral_id, 1);
        s_put_code(&ctx, data, "rejected_reason", "rejected_reason", r->rejected_reason);
        s_put_str(data, "rejection_note", r->rejection_note);
    } else if ((strcmp(message_type, "transfer.accept") == 0 ||
                strcmp(message_type, "transfer.reject") == 0 ||
                strcmp(message_type, "transfer.revoke") == 0) &&
               desc == &puente__v1__transfer_response__descriptor) {
        const Puente__V1__TransferResponse *r = (const Puente__V1__TransferResponse *) body;
        const char *status = strcmp(message_type, "transfer.revoke") == 0 ? "revoked"
                             : r->accepted                                ? "accepted"
                                                                          : "rejected";
        data = s_transition(&ctx, "Transfer", status, r->transfer_id, 0);
        s_put_code(&ctx, data, "rejected_reason", "rejected_reason", r->rejected_reason);
    } else if (strcmp(message_type, "tracing.request") == 0 &&
               desc == &puente__v1__trace_request__descriptor) {
        const Puente__V1__TraceRequest *t = (const Puente__V1__TraceRequest *) body;
        data = json_object();
        s_put_str(data, "tracing_request_id", t->tracing_request_id);
        s_put_by(data, "puente_sender", t->requested_by);
        if (t->inquirer) {
            const Puente__V1__Inquirer *q = t->inquirer;
            s_put_str(data, "relation_name", q->relation_name);
            s_put_code(&ctx, data, "relation", "relationship", q->relation);
            if (q->relation_age)
                json_object_set_new(data, "relation_age", json_integer(q->relation_age));
            s_put_enum(&ctx, data, "relation_sex", "sex", &puente__v1__sex__descriptor,
                       q->relation_sex);
            s_put_codes(&ctx, data, "relation_nationality", "nationality",
                        q->relation_nationality, q->n_relation_nationality);
            s_put_date(data, "inquiry_date", q->inquiry_date);
        }
        json_t *traces = json_array();
        for (size_t i = 0; i < t->n_sought; i++) {
            const Puente__V1__SoughtPerson *p = t->sought[i];
            json_t *row = json_object();
            s_put_str(row, "unique_id", p->trace_id);
            s_put_code(&ctx, row, "relation", "relationship", p->relation);
            if (p->identity) {
                s_put_str(row, "name", p->identity->name_first);
                s_put_str(row, "name_nickname", p->identity->name_nickname);
                s_put_enum(&ctx, row, "sex", "sex", &puente__v1__sex__descriptor,
                           p->identity->sex);
                if (p->identity->age)
                    json_object_set_new(row, "age", json_integer(p->identity->age));
                s_put_date(row, "date_of_birth", p->identity->date_of_birth);
            }
            if (p->separation) {
                s_put_date(row, "date_of_separation", p->separation->date_of_separation);
                s_put_code(&ctx, row, "separation_cause", "separation_cause",
                           p->separation->separation_cause);
                s_put_str(row, "location_separation", p->separation->location_separation);
                s_put_str(row, "location_last", p->separation->location_last);
            }
            json_array_append_new(traces, row);
        }
        json_object_set_new(data, "tracing_request_subform_section", traces);
        if (t->n_search_countries) {
            json_t *countries = json_array();
            for (size_t i = 0; i < t->n_search_countries; i++)
                json_array_append_new(countries, json_string(t->search_countries[i]));
            json_object_set_new(data, "search_countries", countries);
        }
        s_put_consent(&ctx, data, t->consent);
        if (t->wishes_child_family_tracing)
            json_object_set_new(data, "wishes_child_family_tracing", json_true());
    } else if (strcmp(message_type, "return.notice") == 0 &&
               desc == &puente__v1__return_notice__descriptor) {
        /* A child returning to this country: a case whose follow-ups and closure
           the adapter reports back into the return's thread. */
        const Puente__V1__ReturnNotice *r = (const Puente__V1__ReturnNotice *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", r->return_id);
        s_put_by(data, "puente_sender", r->sent_by);
        s_put_child(&ctx, data, r->child);
        s_put_protection(&ctx, data, r->protection);
        s_put_consent(&ctx, data, r->consent);
        s_put_date(data, "date_of_return", r->planned_return_date);
    } else if (strcmp(message_type, "return.arrival") == 0 &&
               desc == &puente__v1__arrival_confirmation__descriptor) {
        /* The return's progress, written onto the sender's case. */
        const Puente__V1__ArrivalConfirmation *a = (const Puente__V1__ArrivalConfirmation *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", a->return_id);
        json_object_set_new(data, "puente_return_status", json_string("arrived"));
        s_put_date(data, "date_of_arrival", a->arrival_date);
    } else if (strcmp(message_type, "reintegration.assessment") == 0 &&
               desc == &puente__v1__reintegration_assessment__descriptor) {
        const Puente__V1__ReintegrationAssessment *a =
            (const Puente__V1__ReintegrationAssessment *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", a->return_id);
        json_object_set_new(data, "puente_return_status", json_string("assessed"));
    } else if (strcmp(message_type, "reintegration.plan") == 0 &&
               desc == &puente__v1__reintegration_plan__descriptor) {
        const Puente__V1__ReintegrationPlan *r = (const Puente__V1__ReintegrationPlan *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", r->return_id);
        json_object_set_new(data, "puente_return_status", json_string("planned"));
        if (r->version)
            json_object_set_new(data, "puente_plan_version", json_integer(r->version));
        s_put_date(data, "followup_needed_by_date", r->next_follow_up_due);
    } else if (strcmp(message_type, "reintegration.followup") == 0 &&
               desc == &puente__v1__follow_up_report__descriptor) {
        const Puente__V1__FollowUpReport *f = (const Puente__V1__FollowUpReport *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", f->return_id);
        json_t *row = json_object();
        s_put_code(&ctx, row, "followup_type", "followup_type", f->followup_type);
        s_put_date(row, "followup_date", f->followup_date);
        json_object_set_new(row, "child_was_seen", json_boolean(f->child_seen));
        s_put_str(row, "reason_child_not_seen", f->not_seen_reason);
        s_put_enum(&ctx, row, "risk_level", "risk_level", &puente__v1__risk_level__descriptor,
                   f->risk_level);
        s_put_date(row, "followup_needed_by_date", f->next_follow_up_due);
        json_object_set_new(data, "followup_subform_section", json_pack("[o]", row));
    } else if (strcmp(message_type, "reintegration.close") == 0 &&
               desc == &puente__v1__reintegration_closure__descriptor) {
        const Puente__V1__ReintegrationClosure *c = (const Puente__V1__ReintegrationClosure *) body;
        data = json_object();
        s_put_str(data, "puente_return_id", c->return_id);
        json_object_set_new(data, "status", json_string("closed"));
        s_put_code(&ctx, data, "closure_reason", "closure_reason", c->closure_reason);
        s_put_date(data, "date_closure", c->date_closure);
        s_put_str(data, "closure_comments", c->note);
    } else {
        s_fail(&ctx, "%.40s: no Primero mapping for this type", message_type);
        return NULL;
    }
    if (ctx.failed || !data) {
        json_decref(data);
        return NULL;
    }
    return data;
}

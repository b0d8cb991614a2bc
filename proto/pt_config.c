/*  pt_config — schema-driven INI + environment + flags (see pt_config.h). */
#include "pt_config.h"
#include "pt_endpoints.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const pt_config_sections[] = {"broker", "bridge", "cli", NULL};

#define S_ORIGIN_MAX 320
#define S_VALUE_MAX 4096

typedef struct {
    char *value; /* NULL = unset */
    long long number;
    pt_config_source_t source;
    char origin[S_ORIGIN_MAX];
    int file_line; /* > 0 once set by the file: duplicates are errors */
} s_slot_t;

struct _pt_config_t {
    char *program;
    const pt_config_key_t *keys;
    size_t n_keys;
    s_slot_t *slots;
    char *file;
    int check;
    int help;
};

static int s_fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static long s_find(const pt_config_t *self, const char *section, const char *name)
{
    for (size_t i = 0; i < self->n_keys; i++)
        if (strcmp(self->keys[i].section, section) == 0 && strcmp(self->keys[i].name, name) == 0)
            return (long) i;
    return -1;
}

static int s_known_section(const char *section)
{
    for (size_t i = 0; pt_config_sections[i]; i++)
        if (strcmp(pt_config_sections[i], section) == 0)
            return 1;
    return 0;
}

static int s_own_section(const pt_config_t *self, const char *section)
{
    for (size_t i = 0; i < self->n_keys; i++)
        if (strcmp(self->keys[i].section, section) == 0)
            return 1;
    return 0;
}

/* Leading integer then optional spaces then a unit; *unit points at the unit. */
static int s_split_number(const char *text, long long *number, const char **unit)
{
    if (!isdigit((unsigned char) text[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text)
        return -1;
    while (*end == ' ')
        end++;
    *number = v;
    *unit = end;
    return 0;
}

static int s_scaled(long long v, long long factor, long long *out)
{
    if (v > 0 && factor > 0 && v > __LONG_LONG_MAX__ / factor)
        return -1;
    *out = v * factor;
    return 0;
}

static int s_parse_size(const char *text, long long *out)
{
    static const struct { const char *unit; long long factor; } units[] = {
        {"", 1},  {"B", 1},           {"K", 1024},   {"KiB", 1024}, {"k", 1024},
        {"M", 1024 * 1024},           {"MiB", 1024 * 1024},
        {"G", 1024LL * 1024 * 1024},  {"GiB", 1024LL * 1024 * 1024}};
    long long v;
    const char *unit;
    if (s_split_number(text, &v, &unit) != 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].unit) == 0)
            return s_scaled(v, units[i].factor, out);
    return -1;
}

static int s_parse_duration(const char *text, long long *out)
{
    static const struct { const char *unit; long long factor; } units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    long long v;
    const char *unit;
    if (s_split_number(text, &v, &unit) != 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].unit) == 0)
            return s_scaled(v, units[i].factor, out);
    return -1;
}

static int s_parse_port(const char *text, int allow_star)
{
    if (allow_star && strcmp(text, "*") == 0)
        return 0;
    char *end = NULL;
    long port = strtol(text, &end, 10);
    return (text[0] && end && !*end && port >= 1 && port <= 65535) ? 0 : -1;
}

/* HOST:PORT with a non-empty host (brackets allowed for IPv6). */
static int s_parse_hostport(const char *text, int allow_star)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return -1;
    for (const char *p = text; p < colon; p++)
        if (isspace((unsigned char) *p) || *p == '/')
            return -1;
    return s_parse_port(colon + 1, allow_star);
}

static int s_parse_endpoint(const char *text)
{
    if (strncmp(text, "tcp://", 6) == 0)
        return s_parse_hostport(text + 6, 1);
    if (strncmp(text, "ipc://", 6) == 0)
        return text[6] ? 0 : -1;
    if (strncmp(text, "http://", 7) == 0)
        return text[7] ? 0 : -1;
    if (strncmp(text, "https://", 8) == 0)
        return text[8] ? 0 : -1;
    if (strstr(text, "://"))
        return -1;
    return s_parse_hostport(text, 0);
}

static int s_parse_bool(const char *text, long long *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static const char *s_expected(pt_config_type_t type)
{
    switch (type) {
    case PT_CONFIG_INT: return "an integer";
    case PT_CONFIG_BOOL: return "true or false";
    case PT_CONFIG_DURATION: return "a duration like 10s or 500ms";
    case PT_CONFIG_SIZE: return "a size like 1MiB";
    case PT_CONFIG_PATH: return "a path";
    case PT_CONFIG_ENDPOINT: return "an endpoint like tcp://127.0.0.1:7550 or 127.0.0.1:9750";
    case PT_CONFIG_ENDPOINT_LIST: return "endpoints like tcp://10.0.0.1:7550,tcp://10.0.0.2:7550";
    default: return "text";
    }
}

/* Checks text against key; 0 with *number set, or -1 with the reason in err. */
static int s_check(const pt_config_key_t *key, const char *text, long long *number,
                   const char *origin, char *err, size_t err_len)
{
    long long v = 0;
    int rc = 0;
    switch (key->type) {
    case PT_CONFIG_INT: {
        char *end = NULL;
        errno = 0;
        v = strtoll(text, &end, 10);
        rc = (errno || end == text || *end) ? -1 : 0;
        break;
    }
    case PT_CONFIG_BOOL: rc = s_parse_bool(text, &v); break;
    case PT_CONFIG_DURATION: rc = s_parse_duration(text, &v); break;
    case PT_CONFIG_SIZE: rc = s_parse_size(text, &v); break;
    case PT_CONFIG_ENDPOINT: rc = s_parse_endpoint(text); break;
    case PT_CONFIG_ENDPOINT_LIST: {
        /* The list parser names the entry that is wrong. */
        char why[200];
        if (pt_endpoints_parse(text, NULL, NULL, why, sizeof why) != 0)
            return s_fail(err, err_len, "%s: [%s] %s: %s", origin, key->section, key->name, why);
        break;
    }
    case PT_CONFIG_PATH: rc = strchr(text, '\n') ? -1 : 0; break;
    case PT_CONFIG_STRING: break;
    }
    if (rc != 0) {
        /* A secret is never echoed, even when it is malformed. */
        return s_fail(err, err_len, "%s: [%s] %s: expected %s, got '%.80s'", origin, key->section,
                      key->name, s_expected(key->type), key->secret ? "********" : text);
    }
    if ((key->type == PT_CONFIG_INT || key->type == PT_CONFIG_DURATION
         || key->type == PT_CONFIG_SIZE)
        && key->min < key->max && (v < key->min || v > key->max))
        return s_fail(err, err_len, "%s: [%s] %s: %s is outside %lld..%lld%s", origin,
                      key->section, key->name, text, key->min, key->max,
                      key->type == PT_CONFIG_SIZE       ? " bytes"
                      : key->type == PT_CONFIG_DURATION ? " ms"
                                                        : "");
    *number = v;
    return 0;
}

pt_config_t *pt_config_new(const char *program, const pt_config_key_t *keys, size_t n_keys)
{
    pt_config_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->program = strdup(program ? program : "puente");
    self->keys = keys;
    self->n_keys = n_keys;
    self->slots = calloc(n_keys ? n_keys : 1, sizeof *self->slots);
    if (!self->program || !self->slots)
        goto error;
    for (size_t i = 0; i < n_keys; i++) {
        if (!keys[i].section || !keys[i].name || !s_known_section(keys[i].section)
            || s_find(self, keys[i].section, keys[i].name) != (long) i)
            goto error;
        s_slot_t *slot = &self->slots[i];
        snprintf(slot->origin, sizeof slot->origin, "default");
        if (keys[i].default_value && keys[i].default_value[0]) {
            if (s_check(&keys[i], keys[i].default_value, &slot->number, "default", NULL, 0) != 0)
                goto error;
            if (!(slot->value = strdup(keys[i].default_value)))
                goto error;
        }
    }
    return self;
error:
    pt_config_destroy(&self);
    return NULL;
}

void pt_config_destroy(pt_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_config_t *self = *self_p;
    for (size_t i = 0; self->slots && i < self->n_keys; i++) {
        if (self->slots[i].value && self->keys[i].secret)
            memset(self->slots[i].value, 0, strlen(self->slots[i].value));
        free(self->slots[i].value);
    }
    free(self->slots);
    free(self->program);
    free(self->file);
    free(self);
    *self_p = NULL;
}

static int s_set_index(pt_config_t *self, size_t i, const char *value, pt_config_source_t source,
                       const char *origin, char *err, size_t err_len)
{
    const pt_config_key_t *key = &self->keys[i];
    s_slot_t *slot = &self->slots[i];
    long long number = 0;
    char *copy = NULL;
    if (strlen(value) >= S_VALUE_MAX)
        return s_fail(err, err_len, "%s: [%s] %s: value longer than %d characters", origin,
                      key->section, key->name, S_VALUE_MAX - 1);
    if (value[0]) {
        if (s_check(key, value, &number, origin, err, err_len) != 0)
            return -1;
        if (!(copy = strdup(value)))
            return s_fail(err, err_len, "out of memory");
    }
    if (slot->value && key->secret)
        memset(slot->value, 0, strlen(slot->value));
    free(slot->value);
    slot->value = copy;
    slot->number = number;
    slot->source = source;
    snprintf(slot->origin, sizeof slot->origin, "%s", origin);
    return 0;
}

int pt_config_set(pt_config_t *self, const char *section, const char *name, const char *value,
                  pt_config_source_t source, const char *origin, char *err, size_t err_len)
{
    long i = s_find(self, section, name);
    if (i < 0)
        return s_fail(err, err_len, "%s: [%s] %s: unknown key", origin, section, name);
    return s_set_index(self, (size_t) i, value ? value : "", source, origin, err, err_len);
}

/* ---- the file --------------------------------------------------------------------- */

typedef struct {
    pt_config_t *self;
    FILE *file;
    const char *path;
    int line;         /* of the line inih is looking at */
    int too_long;     /* line number of the first over-long line */
    int failed;
    char *err;
    size_t err_len;
} s_reader_t;

/* inih's reader: one line per call, so counting calls gives line numbers even
   though Debian's libinih is built without INI_HANDLER_LINENO. */
static char *s_read_line(char *str, int num, void *stream)
{
    s_reader_t *r = stream;
    if (!fgets(str, num, r->file))
        return NULL;
    r->line++;
    size_t len = strlen(str);
    if (len == (size_t) num - 1 && str[len - 1] != '\n' && !feof(r->file)) {
        int c;
        while ((c = fgetc(r->file)) != EOF && c != '\n')
            ;
        if (!r->too_long)
            r->too_long = r->line;
    }
    return str;
}

static int s_on_pair(void *user, const char *section, const char *name, const char *value)
{
    s_reader_t *r = user;
    pt_config_t *self = r->self;
    if (r->failed)
        return 1;
    char where[S_ORIGIN_MAX];
    snprintf(where, sizeof where, "%.280s:%d", r->path, r->line);
    if (!section[0]) {
        s_fail(r->err, r->err_len, "%s: %s: key outside a section (start with [%s])", where, name,
               self->n_keys ? self->keys[0].section : "broker");
        goto fail;
    }
    if (!s_known_section(section)) {
        s_fail(r->err, r->err_len, "%s: [%s]: unknown section (known: broker, bridge, cli)", where,
               section);
        goto fail;
    }
    if (!s_own_section(self, section))
        return 1; /* another program's section: its owner checks it */
    long i = s_find(self, section, name);
    if (i < 0) {
        s_fail(r->err, r->err_len, "%s: [%s] %s: unknown key", where, section, name);
        goto fail;
    }
    if (self->slots[i].file_line > 0) {
        s_fail(r->err, r->err_len, "%s: [%s] %s: set twice (first on line %d)", where, section,
               name, self->slots[i].file_line);
        goto fail;
    }
    if (s_set_index(self, (size_t) i, value, PT_CONFIG_FROM_FILE, where, r->err, r->err_len) != 0)
        goto fail;
    self->slots[i].file_line = r->line;
    return 1;
fail:
    r->failed = 1;
    return 0;
}

int pt_config_load_file(pt_config_t *self, const char *path, char *err, size_t err_len)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return s_fail(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    s_reader_t r = {.self = self, .file = file, .path = path, .err = err, .err_len = err_len};
    int rc = ini_parse_stream(s_read_line, &r, s_on_pair, &r);
    int read_error = ferror(file);
    fclose(file);
    if (r.failed)
        return -1;
    if (r.too_long)
        return s_fail(err, err_len, "%s:%d: line longer than %d characters", path, r.too_long,
                      INI_MAX_LINE - 1);
    if (read_error)
        return s_fail(err, err_len, "%s: read error", path);
    if (rc > 0)
        return s_fail(err, err_len,
                      "%s:%d: syntax error: expected [section], key = value or a comment", path,
                      rc);
    if (rc != 0)
        return s_fail(err, err_len, "%s: cannot parse (error %d)", path, rc);
    char *copy = strdup(path);
    if (!copy)
        return s_fail(err, err_len, "out of memory");
    free(self->file);
    self->file = copy;
    return 0;
}

/* ---- environment and flags ------------------------------------------------------- */

static const char *s_getenv(const char *name)
{
    return getenv(name);
}

int pt_config_load(pt_config_t *self, int argc, char **argv,
                   const char *(*env)(const char *name), char *err, size_t err_len)
{
    const char *(*get)(const char *) = env ? env : s_getenv;
    size_t n_opts = 0;
    struct option *opts = calloc(self->n_keys + 4, sizeof *opts);
    /* The flag values, applied last: argv index of the value per key (0 = none). */
    const char **flag_value = calloc(self->n_keys ? self->n_keys : 1, sizeof *flag_value);
    const char *config_path = NULL;
    int rc = -1;
    if (!opts || !flag_value) {
        s_fail(err, err_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < self->n_keys; i++)
        if (self->keys[i].flag)
            opts[n_opts++] = (struct option){self->keys[i].flag, required_argument, NULL,
                                             (int) (1000 + i)};
    opts[n_opts++] = (struct option){"config", required_argument, NULL, 'c'};
    opts[n_opts++] = (struct option){"check-config", no_argument, NULL, 'C'};
    opts[n_opts++] = (struct option){"help", no_argument, NULL, 'h'};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h')
            self->help = 1;
        else if (c == 'C')
            self->check = 1;
        else if (c == 'c')
            config_path = optarg;
        else if (c >= 1000 && (size_t) (c - 1000) < self->n_keys)
            flag_value[c - 1000] = optarg;
        else {
            s_fail(err, err_len, "%s option %s", c == ':' ? "missing value for" : "unknown",
                   argv[optind - 1]);
            goto done;
        }
    }
    if (optind < argc) {
        s_fail(err, err_len, "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (self->help) {
        rc = 0;
        goto done;
    }
    if (!config_path) {
        const char *e = get("PUENTE_CONFIG");
        if (e && *e)
            config_path = e;
    }
    if (config_path && pt_config_load_file(self, config_path, err, err_len) != 0)
        goto done;
    for (size_t i = 0; i < self->n_keys; i++) {
        const char *e = self->keys[i].env ? get(self->keys[i].env) : NULL;
        if (e && *e
            && s_set_index(self, i, e, PT_CONFIG_FROM_ENV, self->keys[i].env, err, err_len) != 0)
            goto done;
    }
    for (size_t i = 0; i < self->n_keys; i++) {
        if (!flag_value[i])
            continue;
        char origin[S_ORIGIN_MAX];
        snprintf(origin, sizeof origin, "--%s", self->keys[i].flag);
        if (s_set_index(self, i, flag_value[i], PT_CONFIG_FROM_FLAG, origin, err, err_len) != 0)
            goto done;
    }
    for (size_t i = 0; i < self->n_keys; i++) {
        const pt_config_key_t *key = &self->keys[i];
        if (key->required && !self->slots[i].value) {
            char flag[96] = "", envv[96] = "";
            if (key->flag)
                snprintf(flag, sizeof flag, ", flag --%s", key->flag);
            if (key->env)
                snprintf(envv, sizeof envv, ", env %s", key->env);
            s_fail(err, err_len, "[%s] %s is required (config file%s%s)", key->section, key->name,
                   envv, flag);
            goto done;
        }
    }
    rc = 0;
done:
    free(opts);
    free(flag_value);
    return rc;
}

/* ---- queries and output ---------------------------------------------------------- */

int pt_config_check_requested(const pt_config_t *self)
{
    return self->check;
}

int pt_config_help_requested(const pt_config_t *self)
{
    return self->help;
}

const char *pt_config_file(const pt_config_t *self)
{
    return self->file;
}

const char *pt_config_get(const pt_config_t *self, const char *section, const char *name)
{
    long i = s_find(self, section, name);
    return i < 0 ? NULL : self->slots[i].value;
}

long long pt_config_number(const pt_config_t *self, const char *section, const char *name,
                           long long fallback)
{
    long i = s_find(self, section, name);
    return (i < 0 || !self->slots[i].value) ? fallback : self->slots[i].number;
}

pt_config_source_t pt_config_source(const pt_config_t *self, const char *section,
                                    const char *name)
{
    long i = s_find(self, section, name);
    return i < 0 ? PT_CONFIG_FROM_DEFAULT : self->slots[i].source;
}

int pt_config_print(const pt_config_t *self, FILE *out)
{
    fprintf(out, "# %s: effective configuration (file: %s)\n", self->program,
            self->file ? self->file : "none");
    const char *section = NULL;
    for (size_t i = 0; i < self->n_keys; i++) {
        const pt_config_key_t *key = &self->keys[i];
        const s_slot_t *slot = &self->slots[i];
        if (!section || strcmp(section, key->section) != 0) {
            section = key->section;
            fprintf(out, "[%s]\n", section);
        }
        const char *shown = !slot->value ? "" : key->secret ? "********" : slot->value;
        char source[S_ORIGIN_MAX + 16];
        switch (slot->source) {
        case PT_CONFIG_FROM_FILE: snprintf(source, sizeof source, "%s", slot->origin); break;
        case PT_CONFIG_FROM_ENV: snprintf(source, sizeof source, "env %s", slot->origin); break;
        case PT_CONFIG_FROM_FLAG: snprintf(source, sizeof source, "flag %s", slot->origin); break;
        default: snprintf(source, sizeof source, "default"); break;
        }
        fprintf(out, "%s = %s%*s; %s%s\n", key->name, shown,
                (int) (strlen(key->name) + 3 + strlen(shown) < 40
                           ? 40 - strlen(key->name) - 3 - strlen(shown)
                           : 1),
                "", source, slot->value ? "" : " (unset)");
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

void pt_config_usage(const pt_config_t *self, FILE *out)
{
    for (size_t i = 0; i < self->n_keys; i++) {
        const pt_config_key_t *key = &self->keys[i];
        char flag[96];
        snprintf(flag, sizeof flag, "--%s %s", key->flag ? key->flag : "",
                 key->type == PT_CONFIG_SIZE       ? "SIZE"
                 : key->type == PT_CONFIG_DURATION ? "TIME"
                 : key->type == PT_CONFIG_PATH     ? "PATH"
                 : key->type == PT_CONFIG_INT      ? "N"
                 : key->type == PT_CONFIG_BOOL     ? "BOOL"
                 : key->type == PT_CONFIG_ENDPOINT ? "ENDPOINT"
                                                   : "TEXT");
        fprintf(out, "  %-28s %s\n", key->flag ? flag : "(file/env only)", key->help);
        fprintf(out, "  %-28s [%s] %s, env %s%s%s%s\n", "", key->section, key->name,
                key->env ? key->env : "-", key->default_value ? ", default " : "",
                key->default_value ? key->default_value : "", key->required ? ", required" : "");
    }
    fprintf(out, "  %-28s read this INI file first (env PUENTE_CONFIG)\n", "--config PATH");
    fprintf(out, "  %-28s print the effective configuration and its sources, exit 0/1\n",
            "--check-config");
    fprintf(out, "  %-28s this text\n", "--help");
    fprintf(out, "Precedence: flags > environment > file > defaults.\n");
}

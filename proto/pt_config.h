/*  pt_config — one INI configuration format for puente-broker, puente-bridge and
    the CLI, read through libinih.

    Each program declares its keys in a static table (section, name, type, default,
    secret flag, environment variable, long flag, range, help). The loader applies,
    lowest first: the default, the file (--config PATH or PUENTE_CONFIG), the
    environment, the flags. Every value is checked against its type when it is set;
    errors name where the value came from and the key:

        puente.conf:12: [broker] max_frame: expected a size like 1MiB, got 'lots'
        PUENTE_MAX_FRAME: [broker] max_frame: expected a size like 1MiB, got 'lots'
        --max-frame: [broker] max_frame: ...

    The file may hold the sections of every program ([broker], [bridge], [cli]);
    a program checks only its own and skips the others, but an unknown section or
    an unknown key in its own section is an error. An empty value means "unset".
*/
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* Sections a Puente configuration file may hold (NULL-terminated). */
extern const char *const pt_config_sections[];

typedef enum {
    PT_CONFIG_STRING,   /* any text */
    PT_CONFIG_INT,      /* decimal integer, within [min, max] when min < max */
    PT_CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    PT_CONFIG_DURATION, /* 500ms, 10s, 5m, 1h; a bare number is milliseconds */
    PT_CONFIG_SIZE,     /* 1048576, 64KiB, 1MiB, 2GiB (K/M/G are binary too) */
    PT_CONFIG_PATH,     /* a file or directory name */
    PT_CONFIG_ENDPOINT, /* tcp://HOST:PORT, ipc://PATH, http(s)://..., or HOST:PORT */
    PT_CONFIG_ENDPOINT_LIST /* broker endpoints a client connects to, comma-separated:
                               tcp://HOST:PORT or ipc://PATH each (pt_endpoints.h) */
} pt_config_type_t;

typedef enum {
    PT_CONFIG_FROM_DEFAULT,
    PT_CONFIG_FROM_FILE,
    PT_CONFIG_FROM_ENV,
    PT_CONFIG_FROM_FLAG
} pt_config_source_t;

typedef struct {
    const char *section;       /* "broker", "bridge", "cli" */
    const char *name;          /* key in the file, e.g. "max_frame" */
    pt_config_type_t type;
    const char *default_value; /* text form, NULL = unset */
    int secret;                /* masked by pt_config_print */
    const char *env;           /* environment variable, NULL = none */
    const char *flag;          /* long flag without "--", NULL = none */
    long long min, max;        /* range of int/duration(ms)/size(bytes); ignored if min >= max */
    int required;              /* unset after loading is an error */
    const char *help;          /* one line */
} pt_config_key_t;

typedef struct _pt_config_t pt_config_t;

/* A configuration for program (used in messages) with the caller's key table,
   which must outlive it; every key starts at its default. NULL on failure (bad
   table: duplicate key, default that does not parse, unknown section). */
pt_config_t *pt_config_new(const char *program, const pt_config_key_t *keys, size_t n_keys);

void pt_config_destroy(pt_config_t **self_p);

/* Everything in order: parses argv (argv[0] is the program; the flags of the key
   table plus --config PATH, --check-config and --help), then the file named by
   --config or, without it, by env("PUENTE_CONFIG") if set, then the environment,
   then the flags, then checks required keys (unless --help). env NULL = getenv.
   0 on success; -1 with one line in err naming the source and the key. Not
   thread-safe (getopt). Call once. */
int pt_config_load(pt_config_t *self, int argc, char **argv,
                   const char *(*env)(const char *name), char *err, size_t err_len);

/* Reads one INI file over the current values (no environment, no flags). Keeps
   line numbers for messages and pt_config_print. 0 or -1 with err. */
int pt_config_load_file(pt_config_t *self, const char *path, char *err, size_t err_len);

/* Sets one key from text, as if it came from source; origin describes where
   ("PUENTE_DB", "--db", "file:12") and is copied. 0, or -1 with err
   ("ORIGIN: [section] name: expected ..., got '...'"). */
int pt_config_set(pt_config_t *self, const char *section, const char *name, const char *value,
                  pt_config_source_t source, const char *origin, char *err, size_t err_len);

/* 1 if --check-config / --help was on the command line (after pt_config_load). */
int pt_config_check_requested(const pt_config_t *self);
int pt_config_help_requested(const pt_config_t *self);

/* The file that was read, or NULL. Owned by self. */
const char *pt_config_file(const pt_config_t *self);

/* The current text of a key, NULL when unset or unknown. Owned by self. */
const char *pt_config_get(const pt_config_t *self, const char *section, const char *name);

/* The number of an int (its value), bool (0/1), duration (milliseconds) or size
   (bytes) key; fallback when unset or unknown. */
long long pt_config_number(const pt_config_t *self, const char *section, const char *name,
                           long long fallback);

/* Where a key's value came from; PT_CONFIG_FROM_DEFAULT for unknown keys. */
pt_config_source_t pt_config_source(const pt_config_t *self, const char *section,
                                    const char *name);

/* Writes the effective configuration as INI, one key a line with a comment
   giving its source (default, FILE:LINE, env NAME, flag --NAME); secret values
   print as ********. 0 or -1 on a write error. */
int pt_config_print(const pt_config_t *self, FILE *out);

/* Writes the flags of the key table with their environment variables, defaults
   and help, plus --config/--check-config/--help. */
void pt_config_usage(const pt_config_t *self, FILE *out);

#endif

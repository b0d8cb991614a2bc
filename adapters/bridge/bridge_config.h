/*  bridge_config — the puente-bridge options: one struct, one parse function.

    Every option comes from a flag or, when the flag is absent, from an
    environment variable (flags win). A later change moves this to an INI file;
    keep all option handling here so that change touches one place.

      --listen HOST:PORT          PUENTE_BRIDGE_LISTEN     (default 127.0.0.1:8081)
      --org ORG                   PUENTE_BRIDGE_ORG        (required)
      --token-file PATH           PUENTE_BRIDGE_TOKEN_FILE (required, mode 0600 or stricter)
      --broker ENDPOINT           PUENTE_BROKER            (default PUENTE_DEFAULT_BROKER)
      --keys DIR                  PUENTE_KEYS              (default PUENTE_DEFAULT_KEYS)
      --state DIR                 PUENTE_BRIDGE_STATE      (default var/bridge/<ORG>)
      --webhook URL               PUENTE_BRIDGE_WEBHOOK    (optional)
      --webhook-secret-file PATH  PUENTE_BRIDGE_WEBHOOK_SECRET_FILE (required with --webhook,
                                                           mode 0600 or stricter)
      --max-body BYTES            PUENTE_BRIDGE_MAX_BODY   (default 1 MiB)
      --timeout-ms MS             PUENTE_BRIDGE_TIMEOUT_MS (broker requests, default 10000)
*/
#ifndef PT_BRIDGE_CONFIG_H
#define PT_BRIDGE_CONFIG_H

#include <stddef.h>

#define PT_BRIDGE_DEFAULT_LISTEN "127.0.0.1:8081"
#define PT_BRIDGE_DEFAULT_MAX_BODY (1024 * 1024)
#define PT_BRIDGE_SECRET_MAX 4096

typedef struct {
    char listen_host[64];     /* numeric IPv4 address */
    int listen_port;          /* 1..65535 */
    char org[64];
    char broker[512];
    char keys[1024];
    char state_dir[1024];
    char webhook_url[1024];   /* "" = no webhook */
    char token[PT_BRIDGE_SECRET_MAX];           /* read from the token file, trailing newline cut */
    char webhook_secret[PT_BRIDGE_SECRET_MAX];  /* "" without a webhook */
    size_t max_body;
    int timeout_ms;
    int help;                 /* --help was given: print pt_bridge_config_usage() and exit 0 */
} pt_bridge_config_t;

/* Fills cfg from argv (argv[0] is the program) and, for options not given as
   flags, from getenv-style lookup env(name) (NULL = getenv). Reads the token and
   webhook secret files, refusing files readable or writable by group or others.
   0 on success; -1 with a one-line reason in err. Not thread-safe (getopt). */
int pt_bridge_config_parse(pt_bridge_config_t *cfg, int argc, char **argv,
                           const char *(*env)(const char *name), char *err, size_t err_len);

/* The --help text (static). */
const char *pt_bridge_config_usage(void);

/* Reads a secret from path: the file must be a regular file with no group/other
   permission bits, 1..cap-1 bytes after a trailing newline is cut. 0 or -1 with err. */
int pt_bridge_secret_read(const char *path, char *out, size_t cap, char *err, size_t err_len);

#endif

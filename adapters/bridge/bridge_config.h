/*  bridge_config — the puente-bridge options: one struct, one parse function.

    Options come from the [bridge] section of the INI file named by --config PATH
    (or PUENTE_CONFIG), then the environment, then flags (each overrides the one
    before), through proto/pt_config. `--check-config` validates everything
    (token files included) and prints the effective values with their sources.

      key                   flag                   environment
      listen                --listen HOST:PORT     PUENTE_BRIDGE_LISTEN     (default 127.0.0.1:8081;
                                                   numeric IPv4, or [IPv6]:PORT)
      org                   --org ORG              PUENTE_BRIDGE_ORG        (required)
      token_file            --token-file PATH      PUENTE_BRIDGE_TOKEN_FILE (required, mode 0600 or stricter)
      broker                --broker ENDPOINT[,..] PUENTE_BROKER            (default PUENTE_DEFAULT_BROKER;
                                                   a comma-separated list fails over, puente.h)
      keys                  --keys DIR             PUENTE_KEYS              (default PUENTE_DEFAULT_KEYS)
      state_dir             --state DIR            PUENTE_BRIDGE_STATE      (default var/bridge/<ORG>)
      webhook               --webhook URL          PUENTE_BRIDGE_WEBHOOK    (optional)
      webhook_secret_file   --webhook-secret-file PATH  PUENTE_BRIDGE_WEBHOOK_SECRET_FILE
                                                   (required with a webhook, mode 0600 or stricter)
      webhook_max_attempts  --webhook-max-attempts N  PUENTE_BRIDGE_WEBHOOK_MAX_ATTEMPTS (default 12)
      webhook_backoff       --webhook-backoff TIME     PUENTE_BRIDGE_WEBHOOK_BACKOFF (default 1s;
                                                   doubles after each failure)
      webhook_max_backoff   --webhook-max-backoff TIME PUENTE_BRIDGE_WEBHOOK_MAX_BACKOFF (default 60s)
      max_body              --max-body SIZE        PUENTE_BRIDGE_MAX_BODY   (default 1MiB)
      broker_timeout        --timeout-ms TIME      PUENTE_BRIDGE_TIMEOUT_MS (default 10s; bare
                                                   numbers are milliseconds)
*/
#ifndef PT_BRIDGE_CONFIG_H
#define PT_BRIDGE_CONFIG_H

#include <stddef.h>

#define PT_BRIDGE_DEFAULT_LISTEN "127.0.0.1:8081"
#define PT_BRIDGE_DEFAULT_MAX_BODY (1024 * 1024)
#define PT_BRIDGE_SECRET_MAX 4096
#define PT_BRIDGE_DEFAULT_WEBHOOK_ATTEMPTS 12
#define PT_BRIDGE_DEFAULT_WEBHOOK_BACKOFF_MS 1000
#define PT_BRIDGE_DEFAULT_WEBHOOK_MAX_BACKOFF_MS 60000

typedef struct {
    char listen_host[64];     /* numeric IPv4 or IPv6 address (without brackets) */
    int listen_port;          /* 1..65535 */
    char org[64];
    char broker[1024];        /* one endpoint or a comma-separated list */
    char keys[1024];
    char state_dir[1024];
    char webhook_url[1024];   /* "" = no webhook */
    char token[PT_BRIDGE_SECRET_MAX];           /* read from the token file, trailing newline cut */
    char webhook_secret[PT_BRIDGE_SECRET_MAX];  /* "" without a webhook */
    size_t max_body;
    int timeout_ms;
    int webhook_max_attempts;         /* attempts per message, then state "failed" */
    long long webhook_backoff_ms;     /* wait after the first failure; doubles */
    long long webhook_max_backoff_ms; /* longest wait between two attempts */
    int help;                 /* --help was given: print pt_bridge_config_usage() and exit 0 */
    int check_config;         /* --check-config was given: print check_report and exit 0 */
    char check_report[4096];  /* the effective configuration, secrets masked */
} pt_bridge_config_t;

/* Fills cfg from the configuration file (--config / PUENTE_CONFIG), then the
   getenv-style lookup env(name) (NULL = getenv), then argv (argv[0] is the
   program). Reads the token and
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

/*  puente-broker — the Puente message broker daemon. See README.md and
    docs/architecture.md.

    Configuration (flags override environment variables, which override defaults):
        --endpoint E   PUENTE_ENDPOINT   tcp://127.0.0.1:7550
        --db CONNINFO  PUENTE_DB         (required) libpq connection string
        --keys DIR     PUENTE_KEYS       var/keys  (DIR/broker/, DIR/operator/)
        --sql DIR      PUENTE_SQL_DIR    broker/sql
        --max-frame N  PUENTE_MAX_FRAME  1048576 bytes
*/
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int signum)
{
    (void)signum;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: puente-broker [--endpoint E] [--db CONNINFO] [--keys DIR] [--sql DIR]\n"
            "                     [--max-frame BYTES]\n"
            "  --endpoint E     ZeroMQ endpoint to bind (env PUENTE_ENDPOINT, default %s)\n"
            "  --db CONNINFO    libpq connection string (env PUENTE_DB; required)\n"
            "  --keys DIR       key directory holding broker/ and operator/ (env PUENTE_KEYS,\n"
            "                   default var/keys)\n"
            "  --sql DIR        SQL migrations (env PUENTE_SQL_DIR, default broker/sql)\n"
            "  --max-frame N    largest accepted frame in bytes (env PUENTE_MAX_FRAME,\n"
            "                   default %d)\n"
            "Stops cleanly on SIGINT or SIGTERM after committing and answering what it holds.\n",
            PT_BROKER_DEFAULT_ENDPOINT, PT_BROKER_DEFAULT_MAX_FRAME);
}

static const char *s_env_or(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return value && value[0] ? value : fallback;
}

int main(int argc, char **argv)
{
    pt_log_init_from_env();
    pt_broker_config_t config = {
        .endpoint = s_env_or("PUENTE_ENDPOINT", PT_BROKER_DEFAULT_ENDPOINT),
        .conninfo = s_env_or("PUENTE_DB", NULL),
        .keys_dir = s_env_or("PUENTE_KEYS", "var/keys"),
        .sql_dir = s_env_or("PUENTE_SQL_DIR", "broker/sql"),
        .max_frame_bytes = PT_BROKER_DEFAULT_MAX_FRAME,
    };
    const char *max_frame = s_env_or("PUENTE_MAX_FRAME", NULL);
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'}, {"db", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'},     {"sql", required_argument, NULL, 's'},
        {"max-frame", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'e': config.endpoint = optarg; break;
        case 'd': config.conninfo = optarg; break;
        case 'k': config.keys_dir = optarg; break;
        case 's': config.sql_dir = optarg; break;
        case 'm': max_frame = optarg; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "puente-broker: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 1;
    }
    if (max_frame) {
        char *end = NULL;
        unsigned long long value = strtoull(max_frame, &end, 10);
        if (!end || *end || value < 1024 || value > 64ULL * 1024 * 1024) {
            fprintf(stderr, "puente-broker: --max-frame must be 1024..67108864 bytes, got '%s'\n",
                    max_frame);
            return 1;
        }
        config.max_frame_bytes = (size_t)value;
    }
    if (!config.conninfo) {
        fprintf(stderr, "puente-broker: no database: set PUENTE_DB or pass --db CONNINFO\n");
        return 1;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    pt_broker_t *broker = pt_broker_new(&config, &s_stop, err, sizeof err);
    if (!broker) {
        pt_log(PT_LOG_ERROR, "broker", NULL, NULL, "cannot start: %s", err);
        fprintf(stderr, "puente-broker: cannot start: %s\n", err);
        return s_stop ? 0 : 3;
    }
    int rc = pt_broker_run(broker, &s_stop);
    pt_broker_destroy(&broker);
    return rc == 0 ? 0 : 3;
}

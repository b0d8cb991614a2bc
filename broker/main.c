/*  puente-broker — the Puente message broker daemon. See README.md and
    docs/architecture.md.

    Configuration: the [broker] section of the INI file named by --config PATH
    (or PUENTE_CONFIG), then environment variables, then flags (each overrides
    the one before); the key table below is the whole list, and
    `puente-broker --check-config` prints the effective values with their sources.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "directory.h"
#include "log.h"
#include "metrics.h"
#include "pt_config.h"

static volatile sig_atomic_t s_stop = 0;

static void s_on_hup(int signum)
{
    (void)signum;
    pt_directory_request_reload();
}

static void s_on_signal(int signum)
{
    (void)signum;
    s_stop = 1;
}

static const pt_config_key_t s_keys[] = {
    {"broker", "endpoint", PT_CONFIG_ENDPOINT, PT_BROKER_DEFAULT_ENDPOINT, 0, "PUENTE_ENDPOINT",
     "endpoint", 0, 0, 0, "ZeroMQ endpoint to bind (CURVE; loopback unless you mean it)"},
    {"broker", "db", PT_CONFIG_STRING, NULL, 1, "PUENTE_DB", "db", 0, 0, 1,
     "libpq connection string (secret: may hold a password)"},
    {"broker", "db_role", PT_CONFIG_STRING, NULL, 0, "PUENTE_DB_ROLE", "db-role", 0, 0, 0,
     "database role to SET ROLE to after connecting; the broker refuses to start without it. "
     "Empty: puente_broker when the login is a member, else a warning"},
    {"broker", "keys", PT_CONFIG_PATH, "var/keys", 0, "PUENTE_KEYS", "keys", 0, 0, 0,
     "key directory holding broker/ and operator/"},
    {"broker", "sql_dir", PT_CONFIG_PATH, "broker/sql", 0, "PUENTE_SQL_DIR", "sql", 0, 0, 0,
     "SQL migrations (installed: PREFIX/share/puente/sql)"},
    {"broker", "max_frame", PT_CONFIG_SIZE, "1MiB" /* PT_BROKER_DEFAULT_MAX_FRAME */, 0,
     "PUENTE_MAX_FRAME", "max-frame", 1024, 64LL * 1024 * 1024, 0,
     "largest accepted frame (1KiB..64MiB)"},
    {"broker", "log_level", PT_CONFIG_STRING, "info", 0, "PUENTE_LOG_LEVEL", "log-level", 0, 0, 0,
     "debug, info, warn or error (JSON lines on stderr)"},
    {"broker", "metrics_listen", PT_CONFIG_ENDPOINT, PT_METRICS_DEFAULT_LISTEN, 0,
     "PUENTE_METRICS_LISTEN", "metrics-listen", 0, 0, 0,
     "HOST:PORT for /metrics, /healthz, /readyz; empty = off"},
    {"broker", "key_rotation_days", PT_CONFIG_INT, "365", 0, "PUENTE_KEY_ROTATION_DAYS",
     "key-rotation-days", 0, 3650, 0,
     "days after registration a key set is due for rotation (puente_key_expiry_days; "
     "advisory); 0 = never"},
    /* Issue 6, dead letters; default PT_BROKER_DEFAULT_MAX_DELIVERY_ATTEMPTS. */
    {"broker", "max_delivery_attempts", PT_CONFIG_INT, "20", 0, "PUENTE_MAX_DELIVERY_ATTEMPTS",
     "max-delivery-attempts", 0, 1000000, 0,
     "offers without an acknowledgement before a delivery is dead-lettered; 0 = never"},
    /* Several brokers over one database (issue 9, docs/ha.md). */
    {"broker", "instance_id", PT_CONFIG_STRING, NULL, 0, "PUENTE_INSTANCE_ID", "instance-id", 0, 0,
     0, "this broker among those sharing the database (1-128 bytes); default HOSTNAME:PORT"},
    {"broker", "delivery_lease", PT_CONFIG_DURATION, "30s", 0, "PUENTE_DELIVERY_LEASE",
     "delivery-lease", 1000, 3600000, 0,
     "claim on a delivery; another broker takes it over this long after we die (1s..1h)"},
    {"broker", "delivery_poll", PT_CONFIG_DURATION, "1s", 0, "PUENTE_DELIVERY_POLL",
     "delivery-poll", 10, 600000, 0,
     "retries and the fallback for missed wake-ups: a delivery pass this often (10ms..10m)"},
    /* Issue 8: bounded outbound per recipient (store.h, pt_store_set_delivery_window). */
    {"broker", "delivery_window", PT_CONFIG_INT, "1024", 0, "PUENTE_DELIVERY_WINDOW",
     "delivery-window", 0, 1000000, 0,
     "new messages in flight (sent, unacknowledged) per recipient before it is offered "
     "more; 0 = no limit"},
    /* Checkpoint cadence (issue 4, broker/audit.h): whichever comes first. */
    {"broker", "checkpoint_events", PT_CONFIG_INT, "1000", 0, "PUENTE_CHECKPOINT_EVENTS",
     "checkpoint-events", 1, 100000000, 0,
     "sign a checkpoint after this many new audit log leaves (1..100000000)"},
    {"broker", "checkpoint_seconds", PT_CONFIG_INT, "10", 0, "PUENTE_CHECKPOINT_SECONDS",
     "checkpoint-seconds", 1, 86400, 0,
     "sign a checkpoint of a grown log after this many seconds (1..86400)"},
    /* Limits (issue 7, README "Limits"); 0 turns one off. */
    {"broker", "max_connections", PT_CONFIG_INT, "512" /* PT_BROKER_DEFAULT_MAX_CONNECTIONS */, 0,
     "PUENTE_MAX_CONNECTIONS", "max-connections", 0, 1000000, 0,
     "open client connections; handshakes beyond are refused (ZAP 500); 0 = no cap"},
    {"broker", "submit_rate", PT_CONFIG_INT, "500" /* PT_BROKER_DEFAULT_SUBMIT_RATE */, 0,
     "PUENTE_SUBMIT_RATE", "submit-rate", 0, 1000000, 0,
     "submissions per second per organisation (REJECT_RATE_LIMITED beyond); 0 = no limit"},
    {"broker", "submit_burst", PT_CONFIG_INT, "1000" /* PT_BROKER_DEFAULT_SUBMIT_BURST */, 0,
     "PUENTE_SUBMIT_BURST", "submit-burst", 1, 10000000, 0,
     "submissions an organisation may send at once above its rate (token bucket size)"},
    {"broker", "queue_quota", PT_CONFIG_INT, "100000" /* PT_BROKER_DEFAULT_QUEUE_QUOTA */, 0,
     "PUENTE_QUEUE_QUOTA", "queue-quota", 0, 1000000000, 0,
     "messages waiting for acknowledgement per recipient (REJECT_QUOTA_EXCEEDED beyond); "
     "0 = no quota"},
};
#define S_N_KEYS (sizeof s_keys / sizeof s_keys[0])

static void s_usage(pt_config_t *config, FILE *out)
{
    fprintf(out, "usage: puente-broker [--config PATH] [--check-config] [options]\n");
    pt_config_usage(config, out);
    fprintf(out, "Stops cleanly on SIGINT or SIGTERM after committing and answering what it "
                 "holds.\n"
                 "SIGHUP reloads organisations, keys and agreements from the database without "
                 "dropping connections.\n");
}

static int s_log_level(const char *text, pt_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(text, names[i]) == 0) {
            *out = (pt_log_level_t)i;
            return 0;
        }
    return -1;
}

int main(int argc, char **argv)
{
    int rc = 1;
    pt_metrics_t *metrics = NULL;
    pt_metrics_http_t *http = NULL;
    pt_broker_t *broker = NULL;
    char err[1024] = "";
    pt_config_t *cfg = pt_config_new("puente-broker", s_keys, S_N_KEYS);
    if (!cfg) {
        fprintf(stderr, "puente-broker: cannot set up the configuration\n");
        return 1;
    }
    if (pt_config_load(cfg, argc, argv, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "puente-broker: %s\n", err);
        if (!strstr(err, "]"))
            s_usage(cfg, stderr);
        goto done;
    }
    if (pt_config_help_requested(cfg)) {
        s_usage(cfg, stdout);
        rc = 0;
        goto done;
    }
    pt_log_level_t level;
    if (s_log_level(pt_config_get(cfg, "broker", "log_level"), &level) != 0) {
        fprintf(stderr, "puente-broker: [broker] log_level: expected debug, info, warn or error, "
                        "got '%s'\n", pt_config_get(cfg, "broker", "log_level"));
        goto done;
    }
    if (pt_config_check_requested(cfg)) {
        rc = pt_config_print(cfg, stdout) == 0 ? 0 : 1;
        goto done;
    }
    pt_log_set_level(level);
    pt_broker_config_t config = {
        .endpoint = pt_config_get(cfg, "broker", "endpoint"),
        .conninfo = pt_config_get(cfg, "broker", "db"),
        .db_role = pt_config_get(cfg, "broker", "db_role"),
        .keys_dir = pt_config_get(cfg, "broker", "keys"),
        .sql_dir = pt_config_get(cfg, "broker", "sql_dir"),
        .max_frame_bytes = (size_t)pt_config_number(cfg, "broker", "max_frame",
                                                     PT_BROKER_DEFAULT_MAX_FRAME),
        .key_rotation_days = (int)pt_config_number(cfg, "broker", "key_rotation_days", 365),
        .max_delivery_attempts = (uint32_t)pt_config_number(
            cfg, "broker", "max_delivery_attempts", PT_BROKER_DEFAULT_MAX_DELIVERY_ATTEMPTS),
        .instance_id = pt_config_get(cfg, "broker", "instance_id"),
        .delivery_lease_ms = pt_config_number(cfg, "broker", "delivery_lease", 30000),
        .delivery_poll_ms = pt_config_number(cfg, "broker", "delivery_poll", 1000),
        .delivery_window = pt_config_number(cfg, "broker", "delivery_window",
                                            PT_BROKER_DEFAULT_DELIVERY_WINDOW),
        .max_connections = (size_t)pt_config_number(cfg, "broker", "max_connections",
                                                    PT_BROKER_DEFAULT_MAX_CONNECTIONS),
        .submit_rate =
            (double)pt_config_number(cfg, "broker", "submit_rate", PT_BROKER_DEFAULT_SUBMIT_RATE),
        .submit_burst =
            (double)pt_config_number(cfg, "broker", "submit_burst", PT_BROKER_DEFAULT_SUBMIT_BURST),
        .queue_quota =
            pt_config_number(cfg, "broker", "queue_quota", PT_BROKER_DEFAULT_QUEUE_QUOTA),
        .checkpoint_events = (uint64_t)pt_config_number(cfg, "broker", "checkpoint_events", 1000),
        .checkpoint_seconds = pt_config_number(cfg, "broker", "checkpoint_seconds", 10),
    };
    if (!config.endpoint || !config.keys_dir || !config.sql_dir) {
        fprintf(stderr, "puente-broker: [broker] endpoint, keys and sql_dir must not be empty\n");
        goto done;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    /* SIGHUP: reload organisations, keys and agreements from the database (the loop
       does it between batches; connections stay open). */
    action.sa_handler = s_on_hup;
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The metrics endpoint runs beside the broker core, which fills the families
       and flips readiness (see metrics.h, pt_broker_metrics_t); /readyz answers 503
       "starting" until the database answered and migrations are applied. A port
       already in use is logged, not fatal: losing metrics must not stop case
       traffic. */
    pt_broker_metrics_t families;
    metrics = pt_metrics_new();
    if (!metrics || pt_metrics_broker_register(metrics, PT_BROKER_VERSION, &families) != 0) {
        fprintf(stderr, "puente-broker: cannot set up metrics\n");
        rc = 3;
        goto done;
    }
    const char *metrics_listen = pt_config_get(cfg, "broker", "metrics_listen");
    if (metrics_listen) {
        http = pt_metrics_http_new(metrics, metrics_listen, NULL, NULL, err, sizeof err);
        if (!http)
            pt_log(PT_LOG_ERROR, "metrics", NULL, NULL, "%s; continuing without metrics", err);
        else
            pt_log(PT_LOG_INFO, "metrics", NULL, NULL, "serving /metrics on %s",
                   metrics_listen);
    }

    config.metrics = metrics;
    config.families = &families;
    broker = pt_broker_new(&config, &s_stop, err, sizeof err);
    if (!broker) {
        pt_log(PT_LOG_ERROR, "broker", NULL, NULL, "cannot start: %s", err);
        fprintf(stderr, "puente-broker: cannot start: %s\n", err);
        rc = s_stop ? 0 : 3;
        goto done;
    }
    /* pt_broker_new returned: the database answered and migrations are applied. */
    pt_metrics_set_ready(metrics, 1, NULL);
    pt_metric_set(families.ready, NULL, 1);
    rc = pt_broker_run(broker, &s_stop) == 0 ? 0 : 3;
    pt_metrics_set_ready(metrics, 0, "shutting down");
done:
    pt_broker_destroy(&broker);
    pt_metrics_http_destroy(&http);
    pt_metrics_destroy(&metrics);
    pt_config_destroy(&cfg);
    return rc;
}

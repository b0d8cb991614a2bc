/*  puente-bridge — entry point: options, signals, run until SIGINT/SIGTERM. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    pt_bridge_config_t cfg;
    char err[600];
    if (pt_bridge_config_parse(&cfg, argc, argv, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "puente-bridge: %s\n%s", err, pt_bridge_config_usage());
        return 1;
    }
    if (cfg.help) {
        fputs(pt_bridge_config_usage(), stdout);
        return 0;
    }
    if (cfg.check_config) {
        memset(cfg.token, 0, sizeof cfg.token);
        memset(cfg.webhook_secret, 0, sizeof cfg.webhook_secret);
        fputs(cfg.check_report, stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "puente-bridge: cannot initialise libcurl\n");
        return 3;
    }
    pt_bridge_t *bridge = pt_bridge_new(&cfg, err, sizeof err);
    memset(cfg.token, 0, sizeof cfg.token);
    memset(cfg.webhook_secret, 0, sizeof cfg.webhook_secret);
    if (!bridge) {
        fprintf(stderr, "puente-bridge: %s\n", err);
        curl_global_cleanup();
        return 3;
    }
    while (!s_stop)
        sleep(1); /* a signal to any thread is seen within a second */
    pt_bridge_destroy(&bridge);
    curl_global_cleanup();
    return 0;
}

/*  puente types / example — the message type registry, offline. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *s_types_help =
    "usage: puente types [--json-output]\n"
    "Lists every message type with its family, default purpose and summary.\n";

static const char *s_example_help =
    "usage: puente example TYPE\n"
    "Prints a complete example body for TYPE in the JSON mapping: a starting point for\n"
    "`puente send --json`.\n";

static int s_help_only(int argc, char **argv, const char *cmd, const char *help, int *json_output)
{
    static const struct option longopts[] = { { "json-output", no_argument, 0, 'J' },
                                               { "help", no_argument, 0, 'h' },
                                               { 0, 0, 0, 0 } };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return -1;
        }
        if (c == 'J' && json_output) {
            *json_output = 1;
            continue;
        }
        return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
    }
    return CLI_OK;
}

int cmd_types(int argc, char **argv)
{
    int json_output = 0;
    int r = s_help_only(argc, argv, "types", s_types_help, &json_output);
    if (r != CLI_OK)
        return r < 0 ? CLI_OK : r;
    if (optind < argc)
        return cli_usage_error("types", "unexpected argument '%s'", argv[optind]);
    size_t n = pt_types_count();
    if (json_output) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const pt_type_t *t = pt_types_at(i);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", t->name,
                                                 "family", t->family, "message",
                                                 t->descriptor->name, "default_purpose",
                                                 t->default_purpose, "summary", t->summary));
        }
        cli_print_json(arr, 1);
        json_decref(arr);
        return CLI_OK;
    }
    printf("%-32s %-14s %-18s %s\n", "TYPE", "FAMILY", "DEFAULT PURPOSE", "SUMMARY");
    for (size_t i = 0; i < n; i++) {
        const pt_type_t *t = pt_types_at(i);
        printf("%-32s %-14s %-18s %s\n", t->name, t->family, t->default_purpose, t->summary);
    }
    return CLI_OK;
}

int cmd_example(int argc, char **argv)
{
    int r = s_help_only(argc, argv, "example", s_example_help, NULL);
    if (r != CLI_OK)
        return r < 0 ? CLI_OK : r;
    if (argc - optind != 1)
        return cli_usage_error("example", "expected one TYPE");
    const pt_type_t *t = pt_types_find(argv[optind]);
    if (!t) {
        fprintf(stderr, "puente example: unknown type '%s'; `puente types` lists them\n",
                argv[optind]);
        return CLI_USAGE;
    }
    json_error_t jerr;
    json_t *doc = json_loads(t->example_json, JSON_DECODE_ANY, &jerr);
    if (!doc) { /* print as stored rather than nothing */
        puts(t->example_json);
        return CLI_OK;
    }
    cli_print_json(doc, 0);
    json_decref(doc);
    return CLI_OK;
}

/*  pt_endpoints — the list of broker endpoints a client takes (issue 9).

    All brokers of one deployment work over one database and share one key pair
    (<keys>/broker/), so a client may talk to any of them; it is given them as one
    comma-separated string, in order of preference:

        tcp://broker1.example.org:7550,tcp://broker2.example.org:7550

    The same syntax everywhere a broker endpoint is configured: the SDK's
    pt_client_opts_t.endpoint, the CLI's --broker / PUENTE_BROKER, the bridge's
    [bridge] broker, puente-primero's --broker. One entry is the old single
    endpoint. Parsing is pure (no network, no name resolution) and thread-safe.
*/
#ifndef PT_ENDPOINTS_H
#define PT_ENDPOINTS_H

#include <stddef.h>

#define PT_ENDPOINTS_MAX 16     /* entries in one list */
#define PT_ENDPOINT_MAX_LEN 255 /* characters in one entry */

/* Parses list. Entries are separated by commas; spaces and tabs around an entry
   are ignored. Each entry must be tcp://HOST:PORT (HOST a name, an IPv4 address
   or a bracketed IPv6 address; PORT 1..65535) or ipc://PATH, and may appear once.
   0 with *out (a NULL-terminated array of *n >= 1 trimmed copies, caller frees
   with pt_endpoints_free) and *n; out and n may be NULL to only validate. -1 on
   bad input with one line in err naming the entry, e.g.
       broker endpoint list, entry 2 of 3 ('tcp://b.example.org'): no port
       (expected tcp://HOST:PORT)
   (a list of one: "broker endpoint 'x': ..."), or on allocation failure ("out of memory"). Cost:
   O(length of list). */
int pt_endpoints_parse(const char *list, char ***out, size_t *n, char *err, size_t err_len);

/* Frees a list from pt_endpoints_parse. No-op on NULL. */
void pt_endpoints_free(char **list);

#endif

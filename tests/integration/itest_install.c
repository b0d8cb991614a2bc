/*  itest_install — `make install DESTDIR=... PREFIX=/usr` produces the tree README
    "Installing" documents; an outside program (adapters/examples/hello_send.c) compiles
    against the INSTALLED headers and links with `pkg-config --cflags --libs libpuente`
    (shared) and against the installed libpuente.a (static); both binaries then send a
    referral through a real broker and GT-PGN receives it. The other examples
    (outbox_send.c, recv_ack.c) are built the same way from <puente.h> alone and run:
    MX-DIF queues a referral in a durable outbox and gets its receipt, GT-PGN receives,
    stores and acks it. Every function of every installed header has a contract
    comment. `make uninstall` removes every file again. Skipped under sanitizer builds
    (BUILD=build/san): installing is done from the plain build. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <glob.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cu_main.h"

static char s_tmp[512];       /* private scratch directory */
static char s_root[600];      /* DESTDIR */
static char s_build[256];     /* BUILD of this test run */
static int s_installed = 0;   /* make install succeeded */
static char s_hello_dyn[700], s_hello_static[700];
static char s_outbox_send[700], s_recv_ack[700];

/* Runs a shell command; its output goes to <tmp>/log (printed when it fails). */
static int s_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_sh(const char *fmt, ...)
{
    char command[8192], full[8800];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(command, sizeof command, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof command)
        return -1;
    snprintf(full, sizeof full, "( %s ) >%s/log 2>&1", command, s_tmp);
    int rc = system(full);
    int status = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
    if (status != 0) {
        fprintf(stderr, "\n$ %s\n(exit %d)\n", command, status);
        char log_cmd[700];
        snprintf(log_cmd, sizeof log_cmd, "tail -n 30 %s/log >&2", s_tmp);
        if (system(log_cmd) == -1)
            fprintf(stderr, "(cannot show the log)\n");
    }
    return status;
}

static int s_path(char *out, size_t cap, const char *rel)
{
    int n = snprintf(out, cap, "%s/usr/%s", s_root, rel);
    return n > 0 && (size_t) n < cap ? 0 : -1;
}

static int s_is_file(const char *rel, mode_t must_have)
{
    char path[1200];
    struct stat st;
    if (s_path(path, sizeof path, rel) != 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "\nmissing: %s\n", rel);
        return 0;
    }
    if ((st.st_mode & must_have) != must_have) {
        fprintf(stderr, "\n%s: mode %o lacks %o\n", rel, (unsigned) st.st_mode & 07777,
                (unsigned) must_have);
        return 0;
    }
    return 1;
}

/* 1 if the installed file rel contains needle. */
static int s_contains(const char *rel, const char *needle)
{
    char path[1200];
    if (s_path(path, sizeof path, rel) != 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static int s_suite_init(void)
{
    const char *build = getenv("BUILD");
    snprintf(s_build, sizeof s_build, "%s", build && *build ? build : "build");
    const char *base = getenv("PUENTE_TEST_TMP");
    snprintf(s_tmp, sizeof s_tmp, "%s/itest-install.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(s_root, sizeof s_root, "%s/root", s_tmp);
    snprintf(s_hello_dyn, sizeof s_hello_dyn, "%s/hello_send", s_tmp);
    snprintf(s_hello_static, sizeof s_hello_static, "%s/hello_send_static", s_tmp);
    snprintf(s_outbox_send, sizeof s_outbox_send, "%s/outbox_send", s_tmp);
    snprintf(s_recv_ack, sizeof s_recv_ack, "%s/recv_ack", s_tmp);
    return 0;
}

static int s_suite_clean(void)
{
    if (s_tmp[0] && !getenv("PUENTE_TEST_KEEP")) {
        char command[700];
        snprintf(command, sizeof command, "rm -rf '%s'", s_tmp);
        if (system(command) != 0)
            fprintf(stderr, "cannot remove %s\n", s_tmp);
    }
    return 0;
}

/* The Makefile that runs `make test` passes a jobserver in MAKEFLAGS; the nested make
   must not inherit it. */
#define MAKE_CMD "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s"

static void test_make_install(void)
{
    int rc = s_sh(MAKE_CMD " install BUILD=%s DESTDIR=%s PREFIX=/usr", s_build, s_root);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    s_installed = 1;
}

/* Function declarations of an installed header without a comment right above
   them (the contract: what, ownership, errors, thread-safety). A declaration is a
   line at column 0 that starts with a type and names a lower-case function
   followed by '('. Prints each one; returns how many. */
static int s_uncommented(const char *rel)
{
    char path[1200];
    if (s_path(path, sizeof path, rel) != 0)
        return 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "\ncannot read %s\n", rel);
        return 1;
    }
    regex_t decl;
    if (regcomp(&decl, "^(const |unsigned |struct )*[A-Za-z_][A-Za-z0-9_]*[ *]+[a-z_][a-z0-9_]*\\(",
                REG_EXTENDED | REG_NOSUB) != 0) {
        fclose(f);
        return 1;
    }
    char line[1024], prev[1024] = "";
    int missing = 0, n_decl = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "typedef", 7) != 0 && strncmp(line, "#", 1) != 0 &&
            regexec(&decl, line, 0, NULL, 0) == 0) {
            n_decl++;
            size_t len = strlen(prev);
            while (len > 0 && prev[len - 1] == ' ')
                len--;
            if (len < 2 || strncmp(prev + len - 2, "*/", 2) != 0) {
                fprintf(stderr, "\n%s: no contract comment above: %s\n", rel, line);
                missing++;
            }
        }
        if (line[0])
            snprintf(prev, sizeof prev, "%s", line);
    }
    regfree(&decl);
    fclose(f);
    if (n_decl == 0) {
        fprintf(stderr, "\n%s: no function declaration found (the check is broken)\n", rel);
        return 1;
    }
    return missing;
}

static void test_installed_tree(void)
{
    CU_ASSERT_FATAL(s_installed);
    /* programs */
    CU_ASSERT(s_is_file("bin/puente", 0755));
    CU_ASSERT(s_is_file("sbin/puente-broker", 0755));
    if (access("adapters/bridge/main.c", F_OK) == 0) {
        CU_ASSERT(s_is_file("sbin/puente-bridge", 0755));
        CU_ASSERT_EQUAL(s_sh("'%s/usr/sbin/puente-bridge' --help | grep -q -- '--token-file'",
                             s_root), 0);
    }
    if (access("adapters/primero/main.c", F_OK) == 0) {
        CU_ASSERT(s_is_file("sbin/puente-primero", 0755));
        CU_ASSERT_EQUAL(s_sh("'%s/usr/sbin/puente-primero' --help | grep -q -- '--focal-point'",
                             s_root), 0);
        CU_ASSERT(s_is_file("share/puente/primero/codelists/v1/sex.csv", 0644));
        CU_ASSERT(s_contains("share/puente/primero/codelists/v1/transition_status.csv",
                             "revoked,revoked\n"));
        CU_ASSERT(s_is_file("share/man/man8/puente-primero.8", 0644));
        CU_ASSERT(s_is_file("share/puente/primero.env.example", 0644));
        CU_ASSERT(s_is_file("lib/systemd/system/puente-primero@.service", 0644));
        CU_ASSERT(s_contains("lib/systemd/system/puente-primero@.service",
                             "ExecStart=/usr/sbin/puente-primero --org %i"));
        CU_ASSERT(s_contains("lib/systemd/system/puente-primero@.service",
                             "--codelists /usr/share/puente/primero/codelists \\\n"));
        /* the installed binary loads the installed code lists */
        CU_ASSERT_EQUAL(s_sh("cd '%s' && '%s/usr/sbin/puente-primero' --org MX-DIF --primero"
                             " http://127.0.0.1:1 --codelists '%s/usr/share/puente/primero/codelists'"
                             " --state x.db --broker tcp://127.0.0.1:1 2>&1 | grep -q 'broker:'",
                             s_tmp, s_root, s_root), 0);
    }
    CU_ASSERT_EQUAL(s_sh("'%s/usr/bin/puente' --help | grep -q '^usage: puente COMMAND'", s_root), 0);
    CU_ASSERT_EQUAL(s_sh("'%s/usr/sbin/puente-broker' --help | grep -q -- '--max-frame'", s_root), 0);

    /* libraries: the shared one with its soname and link, the static one complete */
    CU_ASSERT(s_is_file("lib/libpuente.so.0", 0755));
    CU_ASSERT(s_is_file("lib/libpuente.a", 0644));
    char link[1200], target[64] = "";
    s_path(link, sizeof link, "lib/libpuente.so");
    ssize_t n = readlink(link, target, sizeof target - 1);
    CU_ASSERT(n > 0);
    if (n > 0)
        target[n] = '\0';
    CU_ASSERT_STRING_EQUAL(target, "libpuente.so.0");
    CU_ASSERT_EQUAL(s_sh("readelf -d '%s/usr/lib/libpuente.so.0' | grep -q 'SONAME.*\\[libpuente.so.0\\]'",
                         s_root), 0);
    /* SDK and proto in one archive / one shared object: -lpuente is enough. */
    const char *symbols[] = { "pt_client_send", "pt_json_to_message", "pt_types_find",
                              "puente__v1__header__descriptor", "pt_uuid_format" };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        CU_ASSERT_EQUAL(s_sh("nm -g --defined-only '%s/usr/lib/libpuente.a' | grep -q ' %s$'",
                             s_root, symbols[i]), 0);
        CU_ASSERT_EQUAL(s_sh("nm -D --defined-only '%s/usr/lib/libpuente.so.0' | grep -q ' %s$'",
                             s_root, symbols[i]), 0);
    }

    /* headers: puente.h and everything it includes */
    const char *headers[] = { "puente.h", "pt_crypto.h", "pt_keys.h", "pt_types.h", "pt_json.h",
                              "control.pb-c.h", "envelope.pb-c.h", "common.pb-c.h",
                              "referral.pb-c.h" };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "include/puente/%s", headers[i]);
        CU_ASSERT(s_is_file(rel, 0644));
    }

    /* Each function of the hand-written public headers documents its contract. */
    const char *documented[] = {"puente.h", "pt_crypto.h", "pt_keys.h", "pt_types.h", "pt_json.h"};
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "include/puente/%s", documented[i]);
        CU_ASSERT_EQUAL(s_uncommented(rel), 0);
    }
    /* An application includes puente.h only: it pulls in the rest. */
    CU_ASSERT(s_contains("include/puente/puente.h", "#include \"pt_json.h\""));
    CU_ASSERT(s_contains("include/puente/puente.h", "#include \"referral.pb-c.h\""));

    /* pkg-config */
    CU_ASSERT(s_is_file("lib/pkgconfig/libpuente.pc", 0644));
    CU_ASSERT(s_contains("lib/pkgconfig/libpuente.pc", "prefix=/usr\n"));
    CU_ASSERT(s_contains("lib/pkgconfig/libpuente.pc", "Libs: -L${libdir} -lpuente"));
    CU_ASSERT(s_contains("lib/pkgconfig/libpuente.pc", "Requires.private: libzmq, openssl, jansson, sqlite3"));

    /* every migration of broker/sql, and nothing else */
    glob_t g;
    CU_ASSERT_EQUAL_FATAL(glob("broker/sql/*.sql", 0, NULL, &g), 0);
    CU_ASSERT(g.gl_pathc >= 4);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char rel[300];
        snprintf(rel, sizeof rel, "share/puente/sql/%s", strrchr(g.gl_pathv[i], '/') + 1);
        CU_ASSERT(s_is_file(rel, 0644));
    }
    char sql_dir[1200];
    s_path(sql_dir, sizeof sql_dir, "share/puente/sql");
    size_t installed = 0;
    DIR *d = opendir(sql_dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        installed += e->d_name[0] != '.';
    closedir(d);
    CU_ASSERT_EQUAL(installed, g.gl_pathc);
    globfree(&g);

    /* man pages, rendered without a warning when groff is there */
    const char *pages[] = { "share/man/man1/puente.1", "share/man/man8/puente-broker.8",
                            "share/man/man8/puente-bridge.8", "share/man/man8/puente-primero.8" };
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT(s_is_file(pages[i], 0644));
        if (access("/usr/bin/groff", X_OK) == 0)
            CU_ASSERT_EQUAL(s_sh("out=$(groff -man -Tutf8 -ww -z '%s/usr/%s' 2>&1) && [ -z \"$out\" ]",
                                 s_root, pages[i]), 0);
    }

    /* systemd units with the installed paths, the account, the example configuration */
    CU_ASSERT(s_is_file("lib/systemd/system/puente-broker.service", 0644));
    CU_ASSERT(s_is_file("lib/systemd/system/puente-bridge@.service", 0644));
    CU_ASSERT(s_contains("lib/systemd/system/puente-broker.service",
                         "ExecStart=/usr/sbin/puente-broker\n"));
    CU_ASSERT(s_contains("lib/systemd/system/puente-broker.service",
                         "PUENTE_SQL_DIR=/usr/share/puente/sql\n"));
    CU_ASSERT(s_contains("lib/systemd/system/puente-broker.service", "\nUser=puente\n"));
    CU_ASSERT(s_contains("lib/systemd/system/puente-broker.service", "\nKillSignal=SIGTERM\n"));
    CU_ASSERT(s_contains("lib/systemd/system/puente-bridge@.service",
                         "ExecStart=/usr/sbin/puente-bridge\n"));
    CU_ASSERT(s_is_file("lib/sysusers.d/puente.conf", 0644));
    CU_ASSERT(s_is_file("share/puente/puente.conf.example", 0644));
    CU_ASSERT(s_contains("share/puente/puente.conf.example", "PUENTE_DB="));
    CU_ASSERT(s_is_file("share/puente/broker.env.example", 0644));
    CU_ASSERT(s_is_file("share/puente/bridge.env.example", 0644));
    /* a staged install leaves nothing outside PREFIX */
    CU_ASSERT_EQUAL(s_sh("[ -z \"$(ls -A '%s' | grep -v '^usr$')\" ]", s_root), 0);
}

/* An outside program, built only from the installed tree. The .pc is copied with its
   prefix pointing into DESTDIR, as a staged (sysroot) build does. */
static void test_consumer_builds(void)
{
    CU_ASSERT_FATAL(s_installed);
    CU_ASSERT_EQUAL_FATAL(s_sh("mkdir -p '%s/pc' && sed 's|^prefix=.*|prefix=%s/usr|' "
                               "'%s/usr/lib/pkgconfig/libpuente.pc' > '%s/pc/libpuente.pc'",
                               s_tmp, s_root, s_root, s_tmp),
                          0);
    /* -I/-L of the source tree must not leak in: compile from inside the scratch dir. */
    CU_ASSERT_EQUAL_FATAL(s_sh("src=$PWD/adapters/examples/hello_send.c; cd '%s' && "
                               "export PKG_CONFIG_PATH='%s/pc' && "
                               "cc -std=c11 -Wall -Wextra -Werror -o '%s' \"$src\" "
                               "$(pkg-config --cflags --libs libpuente)",
                               s_tmp, s_tmp, s_hello_dyn),
                          0);
    CU_ASSERT_EQUAL(s_sh("readelf -d '%s' | grep -q 'NEEDED.*\\[libpuente.so.0\\]'", s_hello_dyn), 0);
    /* Static libpuente (Debian's libzmq.pc breaks `pkg-config --static`, so its
       dependencies are linked shared). */
    CU_ASSERT_EQUAL(s_sh("src=$PWD/adapters/examples/hello_send.c; cd '%s' && "
                         "export PKG_CONFIG_PATH='%s/pc' && "
                         "cc -std=c11 -Wall -Wextra -Werror -o '%s' \"$src\" "
                         "$(pkg-config --cflags libpuente) -L'%s/usr/lib' -l:libpuente.a "
                         "$(pkg-config --libs libzmq openssl jansson sqlite3 libprotobuf-c) -pthread",
                         s_tmp, s_tmp, s_hello_static, s_root),
                    0);
    CU_ASSERT_EQUAL(s_sh("! readelf -d '%s' | grep -q 'libpuente'", s_hello_static), 0);
    /* The other examples, from <puente.h> alone, with the same pkg-config line. */
    const char *examples[2][2] = {{"outbox_send.c", s_outbox_send}, {"recv_ack.c", s_recv_ack}};
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(s_sh("src=$PWD/adapters/examples/%s; cd '%s' && "
                             "export PKG_CONFIG_PATH='%s/pc' && "
                             "cc -std=c11 -Wall -Wextra -Werror -o '%s' \"$src\" "
                             "$(pkg-config --cflags --libs libpuente)",
                             examples[i][0], s_tmp, s_tmp, examples[i][1]),
                        0);
}

/* Both builds send a referral through a real broker; GT-PGN receives both. */
static void test_consumer_runs(void)
{
    CU_ASSERT_FATAL(access(s_hello_dyn, X_OK) == 0);
    pt_harness_t *h = pt_harness_new("install");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pt_client_t *gt = NULL;
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(h), 0);
    CU_ASSERT_EQUAL_FATAL(pt_harness_register_demo(h), 0);
    static char out[4096], err[4096];
    char command[2000];
    snprintf(command, sizeof command, "LD_LIBRARY_PATH='%s/usr/lib' '%s' MX-DIF GT-PGN HELLO-INSTALL-1",
             s_root, s_hello_dyn);
    int rc = pt_harness_sh(h, command, out, sizeof out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n%s%s", out, err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "receipt: message "));
    int sent = rc == 0;
    if (access(s_hello_static, X_OK) == 0) {
        snprintf(command, sizeof command, "'%s' MX-DIF GT-PGN HELLO-INSTALL-2", s_hello_static);
        rc = pt_harness_sh(h, command, out, sizeof out, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "\n%s%s", out, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "receipt: message "));
        sent += rc == 0;
    }
    /* No agreement between SV-CONNA and US-ORR: the broker's reject reaches the program
       (exit 2). */
    snprintf(command, sizeof command, "LD_LIBRARY_PATH='%s/usr/lib' '%s' SV-CONNA US-ORR HELLO-INSTALL-3",
             s_root, s_hello_dyn);
    CU_ASSERT_EQUAL(pt_harness_sh(h, command, out, sizeof out, err, sizeof err), 2);

    gt = pt_harness_client(h, "GT-PGN", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gt);
    int received = 0;
    for (int i = 0; i < sent; i++) {
        pt_message_t *msg = NULL;
        if (pt_client_recv(gt, 10000, &msg) != PT_CLIENT_OK)
            break;
        const Puente__V1__Header *header = pt_message_header(msg);
        CU_ASSERT_STRING_EQUAL(pt_message_type(msg)->name, "referral.request");
        CU_ASSERT_STRING_EQUAL(header->sender, "MX-DIF");
        CU_ASSERT_EQUAL(strncmp(header->case_token, "HELLO-INSTALL-", 14), 0);
        CU_ASSERT_EQUAL(pt_client_ack(gt, pt_message_id(msg)), PT_CLIENT_OK);
        pt_message_destroy(&msg);
        received++;
    }
    CU_ASSERT_EQUAL(received, sent);
    CU_ASSERT(sent >= 1);
    pt_client_destroy(&gt);
    pt_harness_destroy(&h);
}

/* outbox_send queues a referral in a durable outbox and prints its receipt;
   recv_ack, as GT-PGN, receives it, stores it and acks it; the broker records
   the ack. Both run in a scratch directory of their own (outbox.db, inbox.db). */
static void test_examples_run(void)
{
    CU_ASSERT_FATAL(access(s_outbox_send, X_OK) == 0);
    CU_ASSERT_FATAL(access(s_recv_ack, X_OK) == 0);
    pt_harness_t *h = pt_harness_new("install-examples");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL_FATAL(pt_harness_broker_start(h), 0);
    CU_ASSERT_EQUAL_FATAL(pt_harness_register_demo(h), 0);
    static char out[4096], err[4096];
    char command[4000], run_dir[700];
    snprintf(run_dir, sizeof run_dir, "%s/run", s_tmp);
    CU_ASSERT_EQUAL_FATAL(s_sh("mkdir -p '%s'", run_dir), 0);
    /* pt_harness_sh sets PUENTE_BROKER and PUENTE_KEYS for the first command: env. */
    snprintf(command, sizeof command, "env -C '%s' LD_LIBRARY_PATH='%s/usr/lib' '%s' MX-DIF GT-PGN",
             run_dir, s_root, s_outbox_send);
    int rc = pt_harness_sh(h, command, out, sizeof out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n%s%s", out, err);
    CU_ASSERT_EQUAL(rc, 0);
    char id[64] = "";
    CU_ASSERT_EQUAL(sscanf(out, "queued %36s", id), 1);
    CU_ASSERT_EQUAL(strlen(id), 36);
    char want[128];
    snprintf(want, sizeof want, "receipt: %s stored at ", id);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    char path[800];
    snprintf(path, sizeof path, "%s/outbox.db", run_dir);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);

    snprintf(command, sizeof command,
             "env -C '%s' LD_LIBRARY_PATH='%s/usr/lib' '%s' GT-PGN 1 30000", run_dir, s_root,
             s_recv_ack);
    rc = pt_harness_sh(h, command, out, sizeof out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n%s%s", out, err);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(want, sizeof want, "received %s referral.request from MX-DIF\nacked %s\n", id, id);
    CU_ASSERT_STRING_EQUAL(out, want);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE message_id = '%s' AND recipient = 'GT-PGN' "
             "AND state = 'acked'",
             id);
    CU_ASSERT_EQUAL(pt_harness_sql_count(h, sql), 1);
    /* No agreement between SV-CONNA and US-ORR: the broker's final reject reaches
       the program (no receipt, exit 1). Its own outbox file: one per organisation. */
    CU_ASSERT_EQUAL_FATAL(s_sh("mkdir -p '%s-sv'", run_dir), 0);
    snprintf(command, sizeof command,
             "env -C '%s-sv' LD_LIBRARY_PATH='%s/usr/lib' '%s' SV-CONNA US-ORR", run_dir, s_root,
             s_outbox_send);
    CU_ASSERT_EQUAL(pt_harness_sh(h, command, out, sizeof out, err, sizeof err), 1);
    CU_ASSERT_PTR_NULL(strstr(out, "receipt: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rejected: REJECT_"));
    pt_harness_destroy(&h);
}

static void test_make_uninstall(void)
{
    CU_ASSERT_FATAL(s_installed);
    CU_ASSERT_EQUAL_FATAL(s_sh(MAKE_CMD " uninstall BUILD=%s DESTDIR=%s PREFIX=/usr", s_build, s_root),
                          0);
    /* no file and no symlink left, only (empty) standard directories */
    CU_ASSERT_EQUAL(s_sh("[ -z \"$(find '%s' ! -type d)\" ]", s_root), 0);
    CU_ASSERT_EQUAL(s_sh("[ ! -e '%s/usr/include/puente' ] && [ ! -e '%s/usr/share/puente' ]",
                         s_root, s_root),
                    0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    const char *build = getenv("BUILD");
    if (build && strcmp(build, "build") != 0) {
        /* Installing links libpuente.so from a sanitizer build: not a shipped artefact. */
        printf("itest_install: skipped for BUILD=%s (install is tested on the plain build)\n", build);
        CU_cleanup_registry();
        return 0;
    }
    CU_pSuite suite = CU_add_suite("install", s_suite_init, s_suite_clean);
    if (!suite || !CU_add_test(suite, "make install", test_make_install) ||
        !CU_add_test(suite, "installed tree", test_installed_tree) ||
        !CU_add_test(suite, "consumer builds with pkg-config", test_consumer_builds) ||
        !CU_add_test(suite, "consumer sends through a broker", test_consumer_runs) ||
        !CU_add_test(suite, "examples: outbox_send, recv_ack", test_examples_run) ||
        !CU_add_test(suite, "make uninstall", test_make_uninstall)) {
        CU_cleanup_registry();
        return 1;
    }
    return pt_cu_main();
}

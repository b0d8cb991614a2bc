/*  itest_run — `make run` as a user runs it (issue 2): deploy/run.sh in a scratch
    copy of the tree (the scripts, the migrations and the built binaries) with its
    own ports (PUENTE_ENDPOINT, PUENTE_PGPORT, which run.sh honours), started under
    setsid as a terminal would; then the README's four commands of "Sending a
    referral", read from README.md and run verbatim from that directory WITHOUT
    PUENTE_BROKER / PUENTE_KEYS / PUENTE_DB in the environment: the CLI must find
    the broker (var/endpoint) and the demo keys (var/keys) by itself. The trail must
    read submitted, stored, delivered, acknowledged with times, parties and hashes.
    Ctrl-C (SIGINT to the process group) must stop the broker and PostgreSQL; a
    second start must reuse var/ (same keys, the same trail, nothing added).

    Processes are found by their working directory (/proc/PID/cwd inside the
    scratch copy): the broker runs in it, PostgreSQL in its data directory. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cu_main.h"

static char s_dir[PATH_MAX];      /* the scratch copy */
static char s_log[PATH_MAX + 32]; /* run.sh's output, both runs */
static int s_pgport, s_port;
static char s_commands[4][1024]; /* the README's commands, verbatim */
static size_t s_n_commands;
static char s_out[65536];

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback TCP port nobody listens on now. */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Runs a shell command line in dir (NULL = here) with PUENTE_BROKER, PUENTE_KEYS,
   PUENTE_DB and PUENTE_ENDPOINT removed from its environment; stdout into s_out,
   stderr appended to the log. Returns the exit status (-1 if it did not exit). */
static int s_sh(const char *dir, const char *line)
{
    char command[PATH_MAX * 3];
    /* The line travels in the environment, so that it needs no quoting here. */
    setenv("ITEST_RUN_LINE", line, 1);
    snprintf(command, sizeof command,
             "cd '%s' && env -u PUENTE_BROKER -u PUENTE_KEYS -u PUENTE_DB -u PUENTE_ENDPOINT "
             "bash -c \"$ITEST_RUN_LINE\" 2>>'%s'",
             dir ? dir : ".", s_log);
    FILE *p = popen(command, "r");
    if (!p)
        return -1;
    size_t n = fread(s_out, 1, sizeof s_out - 1, p);
    s_out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The commands of the README's "Sending a referral" block, without their comments. */
static int s_readme_commands(void)
{
    FILE *f = fopen("README.md", "r");
    if (!f)
        return -1;
    char line[1024];
    int in_section = 0, in_block = 0;
    while (fgets(line, sizeof line, f) && s_n_commands < 4) {
        if (strncmp(line, "### Sending a referral", 22) == 0)
            in_section = 1;
        else if (in_section && strncmp(line, "```", 3) == 0) {
            if (in_block)
                break;
            in_block = 1;
        } else if (in_block && strncmp(line, "build/puente ", 13) == 0) {
            char *comment = strstr(line, "  #");
            if (comment)
                *comment = '\0';
            size_t len = strcspn(line, "\n");
            while (len > 0 && line[len - 1] == ' ')
                len--;
            line[len] = '\0';
            snprintf(s_commands[s_n_commands++], sizeof s_commands[0], "%s", line);
        }
    }
    fclose(f);
    return s_n_commands == 4 ? 0 : -1;
}

/* Starts deploy/run.sh in the scratch copy under setsid (its own process group, as
   a terminal's foreground job); output appended to the log. The pid, or -1. */
static const char *s_db; /* non-NULL: run.sh gets PUENTE_DB (its own database) */

static pid_t s_start(void)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setsid();
    if (chdir(s_dir) != 0)
        _exit(126);
    int log = open(s_log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0)
        _exit(126);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    unsetenv("PUENTE_BROKER");
    unsetenv("PUENTE_KEYS");
    if (s_db)
        setenv("PUENTE_DB", s_db, 1);
    else
        unsetenv("PUENTE_DB");
    unsetenv("PUENTE_VAR");
    unsetenv("PUENTE_SQL_DIR");
    char value[64];
    snprintf(value, sizeof value, "tcp://127.0.0.1:%d", s_port);
    setenv("PUENTE_ENDPOINT", value, 1);
    snprintf(value, sizeof value, "%d", s_pgport);
    setenv("PUENTE_PGPORT", value, 1);
    execl("/bin/bash", "bash", "deploy/run.sh", (char *)NULL);
    _exit(127);
}

/* Waits until run.sh printed its banner for the n-th time (n = 1, 2), or it
   exited, or the deadline. 0 when ready. */
static int s_wait_ready(pid_t pid, int n, int deadline_ms)
{
    int64_t until = s_now_ms() + deadline_ms;
    while (s_now_ms() < until) {
        FILE *f = fopen(s_log, "r");
        int seen = 0;
        char line[1024];
        while (f && fgets(line, sizeof line, f))
            seen += strstr(line, "Puente broker running on") != NULL;
        if (f)
            fclose(f);
        if (seen >= n)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "itest_run: deploy/run.sh exited early (status %d); see %s\n", status,
                    s_log);
            return -1;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "itest_run: deploy/run.sh not ready in %d ms; see %s\n", deadline_ms, s_log);
    return -1;
}

/* Processes whose working directory is inside the scratch copy (the broker,
   PostgreSQL and its workers, run.sh itself). */
static int s_procs_inside(void)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    size_t len = strlen(s_dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(proc))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char link[300], cwd[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%s/cwd", e->d_name);
        ssize_t n = readlink(link, cwd, sizeof cwd - 1);
        if (n <= 0)
            continue;
        cwd[n] = '\0';
        if (strncmp(cwd, s_dir, len) == 0 && (cwd[len] == '\0' || cwd[len] == '/'))
            count++;
    }
    closedir(proc);
    return count;
}

/* Ctrl-C: SIGINT to run.sh's process group; run.sh must exit 0 and leave nothing
   running inside the scratch copy. */
static void s_interrupt(pid_t pid)
{
    CU_ASSERT_EQUAL(kill(-pid, SIGINT), 0);
    int status = -1;
    int64_t until = s_now_ms() + 60000;
    while (s_now_ms() < until && waitpid(pid, &status, WNOHANG) != pid)
        usleep(100 * 1000);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fprintf(stderr, "itest_run: run.sh after SIGINT: status %d; see %s\n", status, s_log);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int left = -1;
    until = s_now_ms() + 30000;
    while (s_now_ms() < until && (left = s_procs_inside()) != 0)
        usleep(200 * 1000);
    CU_ASSERT_EQUAL(left, 0);
    if (left != 0) {
        kill(-pid, SIGKILL);
        s_sh(s_dir, "tests/lib/pgcluster.sh stop var/pg");
    }
    /* Nobody listens on the broker's port any more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_NOT_EQUAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
}

/* Checks the plain trail of CASE-0001 in s_out: the four events in order, each line
   with its time, the parties and a chain hash. */
static void s_assert_trail(void)
{
    const char *kinds[] = {"submitted", "stored", "delivered", "acknowledged"};
    const char *parties[] = {"MX-DIF -> GT-PGN", "MX-DIF -> GT-PGN", "GT-PGN -> MX-DIF",
                             "GT-PGN -> MX-DIF"};
    const char *at = s_out;
    for (int i = 0; i < 4; i++) {
        char needle[40];
        snprintf(needle, sizeof needle, " %s ", kinds[i]);
        const char *found = strstr(at, needle);
        CU_ASSERT_PTR_NOT_NULL_FATAL(found);
        const char *line = found;
        while (line > s_out && line[-1] != '\n')
            line--;
        char text[400];
        snprintf(text, sizeof text, "%.*s", (int)strcspn(line, "\n"), line);
        unsigned long long seq = 0;
        char time[64] = "";
        CU_ASSERT_EQUAL(sscanf(text, "%llu %63s", &seq, time), 2);
        CU_ASSERT(strlen(time) == 24 && time[10] == 'T' && time[23] == 'Z');
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "referral.request"));
        CU_ASSERT_PTR_NOT_NULL(strstr(text, parties[i]));
        const char *hash = strrchr(text, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
        CU_ASSERT_EQUAL(strspn(hash + 1, "0123456789abcdef"), 16);
        at = found + 1;
    }
}

static int s_suite_init(void)
{
    const char *tmp = getenv("PUENTE_TEST_TMP");
    snprintf(s_dir, sizeof s_dir, "%s/itest_run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_dir))
        return -1;
    snprintf(s_log, sizeof s_log, "%s.log", s_dir);
    s_pgport = s_free_port();
    s_port = s_free_port();
    if (s_pgport <= 0 || s_port <= 0 || s_pgport == s_port || s_readme_commands() != 0)
        return -1;
    /* The parts of the tree run.sh uses, and the binaries built with this test
       (build/san ones under make test SAN=...). */
    const char *broker = getenv("PUENTE_BROKER_BIN");
    const char *cli = getenv("PUENTE_CLI_BIN");
    static char copy[16 * PATH_MAX];
    snprintf(copy, sizeof copy,
             "mkdir -p '%s/deploy' '%s/tests/lib' '%s/broker' '%s/build' && "
             "cp deploy/run.sh '%s/deploy/' && cp tests/lib/pgcluster.sh '%s/tests/lib/' && "
             "cp -r broker/sql '%s/broker/' && cp '%s' '%s/build/puente-broker' && "
             "cp '%s' '%s/build/puente'",
             s_dir, s_dir, s_dir, s_dir, s_dir, s_dir, s_dir,
             broker && *broker ? broker : "build/puente-broker", s_dir,
             cli && *cli ? cli : "build/puente", s_dir);
    if (s_sh(NULL, copy) != 0)
        return -1;
    return 0;
}

static int s_suite_clean(void)
{
    if (s_procs_inside() == 0) {
        char rm[PATH_MAX + 32];
        snprintf(rm, sizeof rm, "rm -rf '%s'", s_dir);
        if (system(rm) != 0)
            fprintf(stderr, "itest_run: could not remove %s\n", s_dir);
    }
    return 0;
}

static void test_make_run_readme_commands(void)
{
    CU_ASSERT_EQUAL_FATAL(s_n_commands, 4);
    CU_ASSERT_EQUAL(strncmp(s_commands[0], "build/puente example ", 21), 0);
    CU_ASSERT_EQUAL(strncmp(s_commands[1], "build/puente send ", 18), 0);
    CU_ASSERT_EQUAL(strncmp(s_commands[2], "build/puente recv ", 18), 0);
    CU_ASSERT_EQUAL(strncmp(s_commands[3], "build/puente trail ", 19), 0);

    pid_t run = s_start();
    CU_ASSERT_FATAL(run > 0);
    if (s_wait_ready(run, 1, 90000) != 0) {
        kill(-run, SIGINT);
        waitpid(run, NULL, 0);
        CU_FAIL_FATAL("make run did not come up");
    }
    /* run.sh wrote where the CLI finds the broker. */
    char endpoint_file[PATH_MAX + 32], expected[64], got[64] = "";
    snprintf(endpoint_file, sizeof endpoint_file, "%s/var/endpoint", s_dir);
    snprintf(expected, sizeof expected, "tcp://127.0.0.1:%d\n", s_port);
    FILE *f = fopen(endpoint_file, "r");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        CU_ASSERT_PTR_NOT_NULL(fgets(got, sizeof got, f));
        fclose(f);
    }
    CU_ASSERT_STRING_EQUAL(got, expected);

    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[0]), 0); /* example > referral.json */
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[1]), 0); /* send */
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "message_id"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "stored_at"));
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[2]), 0); /* recv */
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\": \"CASE-0001\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"sender\": \"MX-DIF\""));
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[3]), 0); /* trail */
    s_assert_trail();
    static char first_trail[sizeof s_out];
    snprintf(first_trail, sizeof first_trail, "%s", s_out);
    CU_ASSERT_EQUAL(s_sh(s_dir, "sha256sum var/keys/*/sign.pub"), 0);
    static char keys[sizeof s_out];
    snprintf(keys, sizeof keys, "%s", s_out);

    s_interrupt(run);

    /* Again, on the same var/: the same keys, the same trail, nothing added. */
    run = s_start();
    CU_ASSERT_FATAL(run > 0);
    if (s_wait_ready(run, 2, 90000) != 0) {
        kill(-run, SIGINT);
        waitpid(run, NULL, 0);
        CU_FAIL_FATAL("make run did not come up the second time");
    }
    CU_ASSERT_EQUAL(s_sh(s_dir, "sha256sum var/keys/*/sign.pub"), 0);
    CU_ASSERT_STRING_EQUAL(s_out, keys);
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[3]), 0);
    s_assert_trail();
    CU_ASSERT_STRING_EQUAL(s_out, first_trail);
    s_interrupt(run);
}

/* PUENTE_DB: run.sh starts no cluster and must leave the given database running. */
static void test_make_run_with_puente_db(void)
{
    const char *test_db = getenv("PUENTE_TEST_DB");
    CU_ASSERT_PTR_NOT_NULL_FATAL(test_db);
    static char line[2048], conninfo[1200];
    snprintf(line, sizeof line,
             "psql -X -q \"%s\" -c \"DROP DATABASE IF EXISTS itest_run_db\" -c \"CREATE DATABASE "
             "itest_run_db\"",
             test_db);
    CU_ASSERT_EQUAL_FATAL(s_sh(NULL, line), 0);
    snprintf(conninfo, sizeof conninfo, "%s dbname=itest_run_db", test_db);
    s_db = conninfo;
    int banners = 0;
    FILE *f = fopen(s_log, "r");
    char text[1024];
    while (f && fgets(text, sizeof text, f))
        banners += strstr(text, "Puente broker running on") != NULL;
    if (f)
        fclose(f);
    pid_t run = s_start();
    CU_ASSERT_FATAL(run > 0);
    if (s_wait_ready(run, banners + 1, 90000) != 0) {
        kill(-run, SIGINT);
        waitpid(run, NULL, 0);
        s_db = NULL;
        CU_FAIL_FATAL("make run with PUENTE_DB did not come up");
    }
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[0]), 0);
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[1]), 0);
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[2]), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "\"case_token\": \"CASE-0001\""));
    CU_ASSERT_EQUAL(s_sh(s_dir, s_commands[3]), 0);
    s_assert_trail();
    s_interrupt(run);
    s_db = NULL;
    /* The database run.sh was given is still up, and holds the message. */
    snprintf(line, sizeof line,
             "psql -X -q -t -A \"%s\" -c \"SELECT count(*) FROM messages WHERE case_token = "
             "'CASE-0001'\"",
             conninfo);
    CU_ASSERT_EQUAL(s_sh(NULL, line), 0);
    CU_ASSERT_STRING_EQUAL(s_out, "1\n");
}

/* [broker] db_role that cannot be taken: the broker refuses to start and says why. */
static void test_broker_refuses_a_role_it_cannot_take(void)
{
    const char *test_db = getenv("PUENTE_TEST_DB");
    CU_ASSERT_PTR_NOT_NULL_FATAL(test_db);
    static char line[2048];
    snprintf(line, sizeof line,
             "build/puente-broker --endpoint tcp://127.0.0.1:%d --db \"%s dbname=itest_run_db\" "
             "--db-role puente_nope --keys var/keys --sql broker/sql --metrics-listen '' 2>&1",
             s_port, test_db);
    int rc = s_sh(s_dir, line);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    if (!strstr(s_out, "database role: cannot take the configured database role puente_nope: "
                       "role puente_nope does not exist"))
        fprintf(stderr, "\nbroker said: %s\n", s_out);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_out, "database role: cannot take the configured database role "
                                         "puente_nope: role puente_nope does not exist"));
    CU_ASSERT_EQUAL(s_procs_inside(), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("make run", s_suite_init, s_suite_clean);
    CU_add_test(suite, "deploy/run.sh, the README's commands, Ctrl-C, again",
                test_make_run_readme_commands);
    CU_add_test(suite, "deploy/run.sh with PUENTE_DB", test_make_run_with_puente_db);
    CU_add_test(suite, "the broker refuses a db_role it cannot take",
                test_broker_refuses_a_role_it_cannot_take);
    return pt_cu_main();
}

/*  test_keys — key sets on disk: round trip, modes, overwrite refusal, org ids. */
#include "pt_keys.h"
#include "cu_main.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char s_tmpdir[64];

static void s_path(char *out, size_t len, const char *org, const char *name)
{
    snprintf(out, len, "%s/%s/%s", s_tmpdir, org, name);
}

static unsigned s_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0xFFFF;
    return st.st_mode & 07777;
}

static void s_rm_set(const char *org)
{
    const char *names[] = {"sign.key", "sign.pub", "seal.key", "seal.pub", "curve.key", "curve.pub"};
    char path[256];
    for (size_t i = 0; i < 6; i++) {
        s_path(path, sizeof path, org, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/%s", s_tmpdir, org);
    rmdir(path);
}

static void test_org_id_valid(void)
{
    const char *good[] = {"MX-DIF",   "XI-ISS", "GT-PGN", "HN-DINAF", "US-ORR", "broker",
                          "operator", "MX-1",   "SV-CONNA-2",
                          "MX-ABCDEFGHIJKLMNOPQRSTUVWXYZ12"}; /* 3 + 28 = 31 chars */
    const char *bad[] = {"",
                         "mx-dif",
                         "MXDIF",
                         "M-X",
                         "MX-",
                         "MX-ABCDEFGHIJKLMNOPQRSTUVWXYZ123", /* 3 + 29 */
                         "MX-DIFDIFDIFDIFDIFDIFDIFDIFDIFDIFDIFDIFX", /* 40 chars */
                         "MX-DIF;DROP",
                         "../x",
                         "MX-dif",
                         "MX_DIF",
                         "MX-DIF ",
                         " MX-DIF",
                         "MX-DIF/..",
                         "Broker",
                         "brokers",
                         "M1-DIF",
                         "MX-DIF\n"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!pt_org_id_valid(good[i]))
            fprintf(stderr, "\n  expected valid: \"%s\"", good[i]);
        CU_ASSERT_EQUAL(pt_org_id_valid(good[i]), 1);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (pt_org_id_valid(bad[i]))
            fprintf(stderr, "\n  expected invalid: \"%s\"", bad[i]);
        CU_ASSERT_EQUAL(pt_org_id_valid(bad[i]), 0);
    }
    CU_ASSERT_EQUAL(strlen("MX-DIFDIFDIFDIFDIFDIFDIFDIFDIFDIFDIFDIFX"), 40);
    CU_ASSERT_EQUAL(pt_org_id_valid(NULL), 0);
    CU_ASSERT_PTR_NULL(pt_keyset_generate("../x"));
    CU_ASSERT_PTR_NULL(pt_keyset_generate("mx-dif"));
}

static void test_round_trip(void)
{
    pt_keyset_t *keys = pt_keyset_generate("MX-DIF");
    CU_ASSERT_FATAL(keys != NULL);
    CU_ASSERT_STRING_EQUAL(pt_keyset_org(keys), "MX-DIF");
    CU_ASSERT_EQUAL(strlen(pt_keyset_curve_public_z85(keys)), 40);
    CU_ASSERT_EQUAL(strlen(pt_keyset_curve_secret_z85(keys)), 40);
    /* Raw CURVE public = Z85-decoded text. */
    uint8_t raw[32];
    CU_ASSERT_FATAL(zmq_z85_decode(raw, pt_keyset_curve_public_z85(keys)) != NULL);
    CU_ASSERT_EQUAL(memcmp(raw, pt_keyset_curve_public(keys), 32), 0);

    CU_ASSERT_EQUAL(pt_keyset_save(keys, s_tmpdir), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/MX-DIF", s_tmpdir);
    CU_ASSERT_EQUAL(s_mode(path), 0700);
    const char *priv[] = {"sign.key", "seal.key", "curve.key"};
    const char *pub[] = {"sign.pub", "seal.pub", "curve.pub"};
    for (int i = 0; i < 3; i++) {
        s_path(path, sizeof path, "MX-DIF", priv[i]);
        CU_ASSERT_EQUAL(s_mode(path), 0600);
        s_path(path, sizeof path, "MX-DIF", pub[i]);
        CU_ASSERT_EQUAL(s_mode(path), 0644);
    }
    /* curve.pub is the Z85 text and a newline. */
    s_path(path, sizeof path, "MX-DIF", "curve.pub");
    char line[64] = {0};
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(line, 1, sizeof line - 1, f), 41);
    fclose(f);
    CU_ASSERT_EQUAL(line[40], '\n');
    line[40] = '\0';
    CU_ASSERT_STRING_EQUAL(line, pt_keyset_curve_public_z85(keys));

    char err[256];
    pt_keyset_t *loaded = pt_keyset_load(s_tmpdir, "MX-DIF", 1, err, sizeof err);
    CU_ASSERT_FATAL(loaded != NULL);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(pt_sign_key_has_private(pt_keyset_sign(loaded)), 1);
    CU_ASSERT_EQUAL(pt_seal_key_has_private(pt_keyset_seal(loaded)), 1);
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_secret_z85(loaded), pt_keyset_curve_secret_z85(keys));
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_public_z85(loaded), pt_keyset_curve_public_z85(keys));
    CU_ASSERT_EQUAL(memcmp(pt_keyset_curve_public(loaded), pt_keyset_curve_public(keys), 32), 0);
    uint8_t a[32], b[32];
    pt_sign_key_public(pt_keyset_sign(keys), a);
    pt_sign_key_public(pt_keyset_sign(loaded), b);
    CU_ASSERT_EQUAL(memcmp(a, b, 32), 0);
    pt_seal_key_public(pt_keyset_seal(keys), a);
    pt_seal_key_public(pt_keyset_seal(loaded), b);
    CU_ASSERT_EQUAL(memcmp(a, b, 32), 0);
    /* The loaded signing key signs for the generated public key. */
    uint8_t sig[64];
    CU_ASSERT_EQUAL(pt_sign(pt_keyset_sign(loaded), PT_DOMAIN_HEADER, a, 32, sig), 0);
    CU_ASSERT_EQUAL(pt_verify(pt_keyset_sign(keys), PT_DOMAIN_HEADER, a, 32, sig, 64), 0);

    /* Public only: no private parts, empty CURVE secret. */
    pt_keyset_t *pub_only = pt_keyset_load(s_tmpdir, "MX-DIF", 0, err, sizeof err);
    CU_ASSERT_FATAL(pub_only != NULL);
    CU_ASSERT_EQUAL(pt_sign_key_has_private(pt_keyset_sign(pub_only)), 0);
    CU_ASSERT_EQUAL(pt_seal_key_has_private(pt_keyset_seal(pub_only)), 0);
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_secret_z85(pub_only), "");
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_public_z85(pub_only), pt_keyset_curve_public_z85(keys));
    /* A public-only set cannot be saved (it would be a key set nobody can use). */
    CU_ASSERT_EQUAL(pt_keyset_save(pub_only, s_tmpdir), -1);

    /* from_public gives the same public view. */
    uint8_t sign_pub[32], seal_pub[32];
    pt_sign_key_public(pt_keyset_sign(keys), sign_pub);
    pt_seal_key_public(pt_keyset_seal(keys), seal_pub);
    pt_keyset_t *fp = pt_keyset_from_public("MX-DIF", sign_pub, seal_pub, pt_keyset_curve_public(keys));
    CU_ASSERT_FATAL(fp != NULL);
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_public_z85(fp), pt_keyset_curve_public_z85(keys));
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_secret_z85(fp), "");
    CU_ASSERT_EQUAL(pt_verify(pt_keyset_sign(fp), PT_DOMAIN_HEADER, a, 32, sig, 64), 0);
    CU_ASSERT_PTR_NULL(pt_keyset_from_public("bad id", sign_pub, seal_pub, sign_pub));

    pt_keyset_destroy(&fp);
    pt_keyset_destroy(&pub_only);
    pt_keyset_destroy(&loaded);
    pt_keyset_destroy(&keys);
    CU_ASSERT_PTR_NULL(keys);
    pt_keyset_destroy(&keys); /* no-op on NULL */
    pt_keyset_destroy(NULL);
    s_rm_set("MX-DIF");
}

static void test_refuse_overwrite(void)
{
    pt_keyset_t *first = pt_keyset_generate("XI-ISS");
    pt_keyset_t *second = pt_keyset_generate("XI-ISS");
    CU_ASSERT_FATAL(first && second);
    CU_ASSERT_EQUAL(pt_keyset_save(first, s_tmpdir), 0);
    errno = 0;
    CU_ASSERT_EQUAL(pt_keyset_save(second, s_tmpdir), -1);
    CU_ASSERT_EQUAL(errno, EEXIST);
    /* The first set is intact. */
    char err[256];
    pt_keyset_t *loaded = pt_keyset_load(s_tmpdir, "XI-ISS", 1, err, sizeof err);
    CU_ASSERT_FATAL(loaded != NULL);
    CU_ASSERT_STRING_EQUAL(pt_keyset_curve_secret_z85(loaded), pt_keyset_curve_secret_z85(first));
    pt_keyset_destroy(&loaded);

    /* Even one leftover file blocks a save. */
    s_rm_set("XI-ISS");
    char path[256];
    snprintf(path, sizeof path, "%s/XI-ISS", s_tmpdir);
    CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
    s_path(path, sizeof path, "XI-ISS", "curve.pub");
    CU_ASSERT_FATAL(pt_file_write_durable(path, "x\n", 2, 0644) == 0);
    errno = 0;
    CU_ASSERT_EQUAL(pt_keyset_save(second, s_tmpdir), -1);
    CU_ASSERT_EQUAL(errno, EEXIST);
    s_rm_set("XI-ISS");
    /* Into a nested directory that does not exist yet. */
    char nested[128];
    snprintf(nested, sizeof nested, "%s/a/b", s_tmpdir);
    CU_ASSERT_EQUAL(pt_keyset_save(second, nested), 0);
    loaded = pt_keyset_load(nested, "XI-ISS", 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(loaded);
    pt_keyset_destroy(&loaded);
    const char *names[] = {"sign.key", "sign.pub", "seal.key", "seal.pub", "curve.key", "curve.pub"};
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/XI-ISS/%s", nested, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/XI-ISS", nested);
    rmdir(path);
    rmdir(nested);
    snprintf(path, sizeof path, "%s/a", s_tmpdir);
    rmdir(path);
    pt_keyset_destroy(&first);
    pt_keyset_destroy(&second);
}

static void test_modes_and_errors(void)
{
    pt_keyset_t *keys = pt_keyset_generate("GT-PGN");
    CU_ASSERT_FATAL(keys != NULL);
    CU_ASSERT_FATAL(pt_keyset_save(keys, s_tmpdir) == 0);
    char path[256], err[512], expected[512];

    /* chmod 644 on a private file: refused with a message the operator can act on. */
    const char *priv[] = {"sign.key", "seal.key", "curve.key"};
    for (int i = 0; i < 3; i++) {
        s_path(path, sizeof path, "GT-PGN", priv[i]);
        CU_ASSERT_FATAL(chmod(path, 0644) == 0);
        err[0] = '\0';
        CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
        snprintf(expected, sizeof expected,
                 "%s is readable by group/others (mode 0644); run chmod 600", path);
        CU_ASSERT_STRING_EQUAL(err, expected);
        /* The public view does not need the private files. */
        pt_keyset_t *pub = pt_keyset_load(s_tmpdir, "GT-PGN", 0, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL(pub);
        pt_keyset_destroy(&pub);
        CU_ASSERT_FATAL(chmod(path, 0600) == 0);
    }
    s_path(path, sizeof path, "GT-PGN", "sign.key");
    CU_ASSERT_FATAL(chmod(path, 0620) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(mode 0620); run chmod 600"));
    CU_ASSERT_FATAL(chmod(path, 0400) == 0); /* stricter than 0600 is fine */
    pt_keyset_t *ok = pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(ok);
    pt_keyset_destroy(&ok);
    CU_ASSERT_FATAL(chmod(path, 0600) == 0);

    /* Missing private file. */
    s_path(path, sizeof path, "GT-PGN", "seal.key");
    char moved[300];
    snprintf(moved, sizeof moved, "%s.moved", path);
    CU_ASSERT_FATAL(rename(path, moved) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "seal.key"));
    CU_ASSERT_FATAL(rename(moved, path) == 0);

    /* A private file that does not match its public half. */
    pt_seal_key_t *stranger = pt_seal_key_generate();
    CU_ASSERT_FATAL(stranger != NULL);
    CU_ASSERT_FATAL(rename(path, moved) == 0);
    CU_ASSERT_FATAL(pt_seal_key_save(stranger, path, NULL) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
    snprintf(expected, sizeof expected, "%s does not match", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, expected));
    CU_ASSERT_FATAL(rename(moved, path) == 0);
    pt_seal_key_destroy(&stranger);

    /* A CURVE secret that does not belong to curve.pub. */
    s_path(path, sizeof path, "GT-PGN", "curve.key");
    snprintf(moved, sizeof moved, "%s.moved", path);
    CU_ASSERT_FATAL(rename(path, moved) == 0);
    char pub_z85[41], sec_z85[41], line[42];
    CU_ASSERT_FATAL(zmq_curve_keypair(pub_z85, sec_z85) == 0);
    snprintf(line, sizeof line, "%s\n", sec_z85);
    CU_ASSERT_FATAL(pt_file_write_durable(path, line, 41, 0600) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "curve.key does not match"));
    /* Not Z85 at all. */
    CU_ASSERT_FATAL(pt_file_write_durable(path, "short\n", 6, 0600) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "curve.key"));
    CU_ASSERT_FATAL(rename(moved, path) == 0);

    /* A .pub that holds a private key is refused even for the public view. */
    s_path(path, sizeof path, "GT-PGN", "sign.pub");
    snprintf(moved, sizeof moved, "%s.moved", path);
    CU_ASSERT_FATAL(rename(path, moved) == 0);
    CU_ASSERT_FATAL(pt_sign_key_save(pt_keyset_sign(keys), path, NULL) == 0);
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "GT-PGN", 0, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "holds a private key"));
    CU_ASSERT_FATAL(rename(moved, path) == 0);

    /* Unknown org and invalid org. */
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "HN-DINAF", 0, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is missing"));
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "../x", 0, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "invalid organisation id");
    /* errmsg may be NULL. */
    CU_ASSERT_PTR_NULL(pt_keyset_load(s_tmpdir, "HN-DINAF", 1, NULL, 0));

    /* Everything restored: loads again. */
    ok = pt_keyset_load(s_tmpdir, "GT-PGN", 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(ok);
    pt_keyset_destroy(&ok);
    pt_keyset_destroy(&keys);
    s_rm_set("GT-PGN");
}

static void test_reserved_ids(void)
{
    pt_keyset_t *broker = pt_keyset_generate("broker");
    CU_ASSERT_FATAL(broker != NULL);
    CU_ASSERT_EQUAL(pt_keyset_save(broker, s_tmpdir), 0);
    char err[256];
    pt_keyset_t *loaded = pt_keyset_load(s_tmpdir, "broker", 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(loaded);
    pt_keyset_destroy(&loaded);
    pt_keyset_destroy(&broker);
    s_rm_set("broker");
}

/* Issue 6: `puente key install` and the former sealing keys the SDK loads. */
static void test_install_and_retired(void)
{
    char base[128], cur[160], fresh[160], path[512], err[512], name[17];
    snprintf(base, sizeof base, "%s/install", s_tmpdir);
    snprintf(cur, sizeof cur, "%s/keys", base);
    snprintf(fresh, sizeof fresh, "%s/new", base);
    pt_keyset_t *a = pt_keyset_generate("HN-DINAF");
    pt_keyset_t *b = pt_keyset_generate("HN-DINAF");
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT_FATAL(pt_keyset_save(b, fresh) == 0);
    /* Nothing installed yet: the set just lands, nothing is retired. */
    pt_seal_key_t **retired = NULL;
    size_t n = 99;
    CU_ASSERT_EQUAL(pt_keyset_load_retired_seal(cur, "HN-DINAF", &retired, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL(n, 0);
    free(retired);
    CU_ASSERT_EQUAL(pt_keyset_install(cur, "HN-DINAF", fresh, name, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(name, "");
    /* Start over with a as the current set. */
    char command[700];
    snprintf(command, sizeof command, "rm -rf '%s'", cur);
    CU_ASSERT_FATAL(system(command) == 0);
    CU_ASSERT_FATAL(pt_keyset_save(a, cur) == 0);

    CU_ASSERT_EQUAL(pt_keyset_install(cur, "HN-DINAF", fresh, name, err, sizeof err), 0);
    uint8_t id[PT_KEY_ID_BYTES];
    char hex[2 * PT_KEY_ID_BYTES + 1];
    pt_sign_key_id(pt_keyset_sign(a), id);
    pt_hex(id, sizeof id, hex);
    CU_ASSERT_EQUAL(strncmp(name, hex, 16), 0);
    CU_ASSERT_EQUAL(strlen(name), 16);
    /* The current set is b, the former one a, private files still 0600. */
    pt_keyset_t *now = pt_keyset_load(cur, "HN-DINAF", 1, err, sizeof err);
    CU_ASSERT_FATAL(now != NULL);
    uint8_t x[32], y[32];
    pt_sign_key_public(pt_keyset_sign(now), x);
    pt_sign_key_public(pt_keyset_sign(b), y);
    CU_ASSERT_EQUAL(memcmp(x, y, 32), 0);
    pt_keyset_destroy(&now);
    snprintf(path, sizeof path, "%s/HN-DINAF/retired/%s/seal.key", cur, name);
    CU_ASSERT_EQUAL(s_mode(path), 0600);
    CU_ASSERT_EQUAL(pt_keyset_load_retired_seal(cur, "HN-DINAF", &retired, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    uint8_t want[PT_KEY_ID_BYTES], got[PT_KEY_ID_BYTES];
    pt_seal_key_id(pt_keyset_seal(a), want);
    pt_seal_key_id(retired[0], got);
    CU_ASSERT_EQUAL(memcmp(want, got, sizeof want), 0);
    CU_ASSERT_TRUE(pt_seal_key_has_private(retired[0]));
    pt_seal_key_destroy(&retired[0]);
    free(retired);

    /* The same set again: refused, nothing moved. */
    CU_ASSERT_EQUAL(pt_keyset_install(cur, "HN-DINAF", fresh, name, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already holds"));
    /* A former private key readable by others is refused with a clear message. */
    CU_ASSERT_FATAL(chmod(path, 0644) == 0);
    CU_ASSERT_EQUAL(pt_keyset_load_retired_seal(cur, "HN-DINAF", &retired, &n, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
    CU_ASSERT_FATAL(chmod(path, 0600) == 0);
    /* A broken new set is refused before anything moves. */
    snprintf(path, sizeof path, "%s/HN-DINAF/seal.key", fresh);
    CU_ASSERT_FATAL(unlink(path) == 0);
    CU_ASSERT_EQUAL(pt_keyset_install(cur, "HN-DINAF", fresh, name, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "the new key set"));
    now = pt_keyset_load(cur, "HN-DINAF", 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(now);
    pt_keyset_destroy(&now);
    pt_keyset_destroy(&a);
    pt_keyset_destroy(&b);
    snprintf(command, sizeof command, "rm -rf '%s'", base);
    CU_ASSERT(system(command) == 0);
}

int main(void)
{
    snprintf(s_tmpdir, sizeof s_tmpdir, "/tmp/test_keys.XXXXXX");
    if (!mkdtemp(s_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("pt_keys", NULL, NULL);
    if (!suite || !CU_add_test(suite, "org id validation table", test_org_id_valid) ||
        !CU_add_test(suite, "generate/save/load round trip", test_round_trip) ||
        !CU_add_test(suite, "refuse to overwrite a key set", test_refuse_overwrite) ||
        !CU_add_test(suite, "modes and clear error messages", test_modes_and_errors) ||
        !CU_add_test(suite, "reserved id broker", test_reserved_ids) ||
        !CU_add_test(suite, "install keeps the former set; retired sealing keys",
                     test_install_and_retired)) {
        CU_cleanup_registry();
        return 2;
    }
    int status = pt_cu_main();
    rmdir(s_tmpdir);
    return status;
}

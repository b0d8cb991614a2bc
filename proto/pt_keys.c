/*  pt_keys — an organisation's key set on disk. See pt_keys.h for the contract. */
#include "pt_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zmq.h>

struct _pt_keyset_t {
    char org[PT_ORG_ID_MAX + 1];
    pt_sign_key_t *sign;
    pt_seal_key_t *seal;
    uint8_t curve_public[PT_CURVE_KEY_BYTES];
    char curve_public_z85[PT_Z85_KEY_CHARS + 1];
    char curve_secret_z85[PT_Z85_KEY_CHARS + 1]; /* "" without a private part */
};

static const char *const s_file_names[] = {"sign.key", "sign.pub",  "seal.key",
                                           "seal.pub", "curve.key", "curve.pub"};
#define S_FILE_COUNT (sizeof s_file_names / sizeof s_file_names[0])

int pt_org_id_valid(const char *id)
{
    if (!id)
        return 0;
    if (strcmp(id, "broker") == 0 || strcmp(id, "operator") == 0)
        return 1;
    if (!(id[0] >= 'A' && id[0] <= 'Z') || !(id[1] >= 'A' && id[1] <= 'Z') || id[2] != '-')
        return 0;
    size_t n = 0;
    for (const char *p = id + 3; *p; p++, n++) {
        int ok = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-';
        if (!ok || n >= 28)
            return 0;
    }
    return n >= 1;
}

static void s_errmsg(char *errmsg, size_t errmsg_len, const char *fmt, ...)
{
    if (!errmsg || errmsg_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errmsg_len, fmt, ap);
    va_end(ap);
}

static pt_keyset_t *s_keyset_new(const char *org_id)
{
    if (!pt_org_id_valid(org_id))
        return NULL;
    pt_keyset_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->org, sizeof self->org, "%s", org_id);
    return self;
}

/* Fills the raw CURVE public key from its Z85 text; 0 on success. */
static int s_curve_public_set(pt_keyset_t *self, const char *z85)
{
    if (strlen(z85) != PT_Z85_KEY_CHARS ||
        !zmq_z85_decode(self->curve_public, z85))
        return -1;
    memcpy(self->curve_public_z85, z85, PT_Z85_KEY_CHARS + 1);
    return 0;
}

pt_keyset_t *pt_keyset_generate(const char *org_id)
{
    char public_z85[PT_Z85_KEY_CHARS + 1];
    char secret_z85[PT_Z85_KEY_CHARS + 1];
    pt_keyset_t *self = s_keyset_new(org_id);
    if (!self)
        return NULL;
    self->sign = pt_sign_key_generate();
    self->seal = pt_seal_key_generate();
    if (!self->sign || !self->seal)
        goto error;
    if (zmq_curve_keypair(public_z85, secret_z85) != 0)
        goto error;
    if (s_curve_public_set(self, public_z85) != 0)
        goto error;
    memcpy(self->curve_secret_z85, secret_z85, sizeof secret_z85);
    OPENSSL_cleanse(secret_z85, sizeof secret_z85);
    return self;

error:
    OPENSSL_cleanse(secret_z85, sizeof secret_z85);
    pt_keyset_destroy(&self);
    return NULL;
}

pt_keyset_t *pt_keyset_from_public(const char *org_id, const uint8_t sign_public[32],
                                   const uint8_t seal_public[32], const uint8_t curve_public[32])
{
    if (!sign_public || !seal_public || !curve_public)
        return NULL;
    pt_keyset_t *self = s_keyset_new(org_id);
    if (!self)
        return NULL;
    self->sign = pt_sign_key_from_public(sign_public, 32);
    self->seal = pt_seal_key_from_public(seal_public, 32);
    if (!self->sign || !self->seal)
        goto error;
    memcpy(self->curve_public, curve_public, PT_CURVE_KEY_BYTES);
    if (!zmq_z85_encode(self->curve_public_z85, self->curve_public, PT_CURVE_KEY_BYTES))
        goto error;
    return self;

error:
    pt_keyset_destroy(&self);
    return NULL;
}

static char *s_path(const char *dir, const char *org, const char *name)
{
    size_t len = strlen(dir) + strlen(org) + (name ? strlen(name) : 0) + 3;
    char *path = malloc(len);
    if (!path)
        return NULL;
    if (name)
        snprintf(path, len, "%s/%s/%s", dir, org, name);
    else
        snprintf(path, len, "%s/%s", dir, org);
    return path;
}

/* mkdir -p: missing components are created 0700 (key directories are private);
   existing ones are left as they are. */
static int s_mkdir_p(const char *dir)
{
    char *copy = strdup(dir);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *p = copy + 1; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(copy, 0700) != 0 && errno != EEXIST)
        rc = -1;
    int saved = errno;
    free(copy);
    errno = saved;
    if (rc == 0) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
    }
    return rc;
}

static int s_fsync_path(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int pt_keyset_save(const pt_keyset_t *keys, const char *dir)
{
    char *paths[S_FILE_COUNT] = {NULL};
    char *org_dir = NULL;
    char line[PT_Z85_KEY_CHARS + 2];
    int written = 0;
    int saved_errno = 0;
    if (!keys || !dir || !pt_sign_key_has_private(keys->sign) ||
        !pt_seal_key_has_private(keys->seal) || strlen(keys->curve_secret_z85) != PT_Z85_KEY_CHARS) {
        errno = EINVAL;
        return -1;
    }
    org_dir = s_path(dir, keys->org, NULL);
    if (!org_dir)
        goto error;
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        if (!(paths[i] = s_path(dir, keys->org, s_file_names[i])))
            goto error;
    if (s_mkdir_p(org_dir) != 0)
        goto error;
    /* The directory entry of org_dir must survive a crash as well as the files. */
    if (s_fsync_path(dir) != 0)
        goto error;
    /* A key set is an identity: replacing one silently would orphan every message
       sealed to it and every signature registered with the broker. */
    for (size_t i = 0; i < S_FILE_COUNT; i++) {
        struct stat st;
        if (lstat(paths[i], &st) == 0) {
            errno = EEXIST;
            goto error;
        }
        if (errno != ENOENT)
            goto error;
    }
    written = 1;
    if (pt_sign_key_save(keys->sign, paths[0], paths[1]) != 0)
        goto error;
    if (pt_seal_key_save(keys->seal, paths[2], paths[3]) != 0)
        goto error;
    snprintf(line, sizeof line, "%s\n", keys->curve_secret_z85);
    if (pt_file_write_durable(paths[4], line, PT_Z85_KEY_CHARS + 1, 0600) != 0)
        goto error;
    snprintf(line, sizeof line, "%s\n", keys->curve_public_z85);
    if (pt_file_write_durable(paths[5], line, PT_Z85_KEY_CHARS + 1, 0644) != 0)
        goto error;
    OPENSSL_cleanse(line, sizeof line);
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        free(paths[i]);
    free(org_dir);
    return 0;

error:
    saved_errno = errno ? errno : EIO;
    OPENSSL_cleanse(line, sizeof line);
    /* Leave no half key set behind: it would block a retry with EEXIST. */
    for (size_t i = 0; i < S_FILE_COUNT; i++) {
        if (written && paths[i])
            unlink(paths[i]);
        free(paths[i]);
    }
    free(org_dir);
    errno = saved_errno;
    return -1;
}

/* Reads a one-line Z85 key file: exactly 40 characters, optionally a newline. */
static int s_read_z85(const char *path, char out[PT_Z85_KEY_CHARS + 1])
{
    char buf[PT_Z85_KEY_CHARS + 4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t used = 0;
    while (used < sizeof buf) {
        ssize_t n = read(fd, buf + used, sizeof buf - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t) n;
    }
    close(fd);
    int ok = used == PT_Z85_KEY_CHARS ||
             (used == PT_Z85_KEY_CHARS + 1 && buf[PT_Z85_KEY_CHARS] == '\n');
    for (size_t i = 0; ok && i < PT_Z85_KEY_CHARS; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            ok = 0;
    if (ok) {
        memcpy(out, buf, PT_Z85_KEY_CHARS);
        out[PT_Z85_KEY_CHARS] = '\0';
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (!ok) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Checks that a private key file exists and is 0600 or stricter, with a message
   the operator can act on. */
static int s_check_private_mode(const char *path, char *errmsg, size_t errmsg_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        s_errmsg(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        s_errmsg(errmsg, errmsg_len, "%s is not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        s_errmsg(errmsg, errmsg_len, "%s is %s by group/others (mode %04o); run chmod 600", path,
                 (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "accessible",
                 (unsigned) (st.st_mode & 07777));
        errno = EPERM;
        return -1;
    }
    return 0;
}

static void s_load_errmsg(const char *path, const char *what, char *errmsg, size_t errmsg_len)
{
    if (errno == ENOENT)
        s_errmsg(errmsg, errmsg_len, "%s is missing", path);
    else if (errno == EPERM)
        s_errmsg(errmsg, errmsg_len, "%s is readable by group/others; run chmod 600", path);
    else if (errno == EINVAL)
        s_errmsg(errmsg, errmsg_len, "%s is not a valid %s key file", path, what);
    else
        s_errmsg(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
}

pt_keyset_t *pt_keyset_load(const char *dir, const char *org_id, int need_private, char *errmsg,
                            size_t errmsg_len)
{
    char *paths[S_FILE_COUNT] = {NULL};
    pt_sign_key_t *sign_private = NULL;
    pt_seal_key_t *seal_private = NULL;
    char z85[PT_Z85_KEY_CHARS + 1];
    char derived[PT_Z85_KEY_CHARS + 1];
    uint8_t a[32], b[32];
    pt_keyset_t *self = NULL;
    s_errmsg(errmsg, errmsg_len, "%s", "");
    if (!dir || !pt_org_id_valid(org_id)) {
        s_errmsg(errmsg, errmsg_len, "invalid organisation id");
        errno = EINVAL;
        return NULL;
    }
    self = s_keyset_new(org_id);
    if (!self)
        goto nomem;
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        if (!(paths[i] = s_path(dir, org_id, s_file_names[i])))
            goto nomem;

    /* Public halves first: they are what every key set has. */
    self->sign = pt_sign_key_load(paths[1]);
    if (!self->sign) {
        s_load_errmsg(paths[1], "Ed25519 public", errmsg, errmsg_len);
        goto error;
    }
    self->seal = pt_seal_key_load(paths[3]);
    if (!self->seal) {
        s_load_errmsg(paths[3], "X25519 public", errmsg, errmsg_len);
        goto error;
    }
    if (pt_sign_key_has_private(self->sign) || pt_seal_key_has_private(self->seal)) {
        s_errmsg(errmsg, errmsg_len, "%s holds a private key; it must hold only the public key",
                 pt_sign_key_has_private(self->sign) ? paths[1] : paths[3]);
        goto error;
    }
    if (s_read_z85(paths[5], z85) != 0 || s_curve_public_set(self, z85) != 0) {
        s_load_errmsg(paths[5], "CURVE public", errmsg, errmsg_len);
        goto error;
    }
    if (!need_private)
        goto done;

    for (size_t i = 0; i < S_FILE_COUNT; i += 2)
        if (s_check_private_mode(paths[i], errmsg, errmsg_len) != 0)
            goto error;
    sign_private = pt_sign_key_load(paths[0]);
    if (!sign_private || !pt_sign_key_has_private(sign_private)) {
        if (sign_private)
            errno = EINVAL;
        s_load_errmsg(paths[0], "Ed25519 private", errmsg, errmsg_len);
        goto error;
    }
    pt_sign_key_public(sign_private, a);
    pt_sign_key_public(self->sign, b);
    if (memcmp(a, b, 32) != 0) {
        s_errmsg(errmsg, errmsg_len, "%s does not match %s", paths[0], paths[1]);
        goto error;
    }
    seal_private = pt_seal_key_load(paths[2]);
    if (!seal_private || !pt_seal_key_has_private(seal_private)) {
        if (seal_private)
            errno = EINVAL;
        s_load_errmsg(paths[2], "X25519 private", errmsg, errmsg_len);
        goto error;
    }
    pt_seal_key_public(seal_private, a);
    pt_seal_key_public(self->seal, b);
    if (memcmp(a, b, 32) != 0) {
        s_errmsg(errmsg, errmsg_len, "%s does not match %s", paths[2], paths[3]);
        goto error;
    }
    if (s_read_z85(paths[4], self->curve_secret_z85) != 0 ||
        !zmq_z85_decode(a, self->curve_secret_z85)) {
        s_load_errmsg(paths[4], "CURVE secret", errmsg, errmsg_len);
        goto error;
    }
    OPENSSL_cleanse(a, sizeof a);
    if (zmq_curve_public(derived, self->curve_secret_z85) != 0 ||
        strcmp(derived, self->curve_public_z85) != 0) {
        s_errmsg(errmsg, errmsg_len, "%s does not match %s", paths[4], paths[5]);
        goto error;
    }
    pt_sign_key_destroy(&self->sign);
    pt_seal_key_destroy(&self->seal);
    self->sign = sign_private;
    self->seal = seal_private;
    sign_private = NULL;
    seal_private = NULL;

done:
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        free(paths[i]);
    return self;

nomem:
    s_errmsg(errmsg, errmsg_len, "out of memory");
error:
    OPENSSL_cleanse(a, sizeof a);
    pt_sign_key_destroy(&sign_private);
    pt_seal_key_destroy(&seal_private);
    pt_keyset_destroy(&self);
    for (size_t i = 0; i < S_FILE_COUNT; i++)
        free(paths[i]);
    return NULL;
}

const char *pt_keyset_org(const pt_keyset_t *keys)
{
    return keys->org;
}

const pt_sign_key_t *pt_keyset_sign(const pt_keyset_t *keys)
{
    return keys->sign;
}

const pt_seal_key_t *pt_keyset_seal(const pt_keyset_t *keys)
{
    return keys->seal;
}

const uint8_t *pt_keyset_curve_public(const pt_keyset_t *keys)
{
    return keys->curve_public;
}

const char *pt_keyset_curve_public_z85(const pt_keyset_t *keys)
{
    return keys->curve_public_z85;
}

const char *pt_keyset_curve_secret_z85(const pt_keyset_t *keys)
{
    return keys->curve_secret_z85;
}

void pt_keyset_destroy(pt_keyset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pt_keyset_t *self = *self_p;
    pt_sign_key_destroy(&self->sign);
    pt_seal_key_destroy(&self->seal);
    OPENSSL_cleanse(self->curve_secret_z85, sizeof self->curve_secret_z85);
    free(self);
    *self_p = NULL;
}

/* --- former key sets (issue 6) ------------------------------------------------------ */

int pt_keyset_load_retired_seal(const char *dir, const char *org_id, pt_seal_key_t ***keys_p,
                                size_t *n_p, char *errmsg, size_t errmsg_len)
{
    pt_seal_key_t **keys = NULL;
    size_t n = 0;
    char *retired = NULL;
    DIR *d = NULL;
    s_errmsg(errmsg, errmsg_len, "%s", "");
    if (!dir || !pt_org_id_valid(org_id) || !keys_p || !n_p) {
        s_errmsg(errmsg, errmsg_len, "invalid arguments");
        return -1;
    }
    *keys_p = NULL;
    *n_p = 0;
    retired = s_path(dir, org_id, "retired");
    if (!retired)
        goto nomem;
    d = opendir(retired);
    if (!d) {
        int missing = errno == ENOENT;
        if (!missing)
            s_errmsg(errmsg, errmsg_len, "%s: %s", retired, strerror(errno));
        free(retired);
        return missing ? 0 : -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = strlen(retired) + strlen(de->d_name) + sizeof "/seal.key" + 1;
        char *path = malloc(len);
        if (!path)
            goto nomem;
        snprintf(path, len, "%s/%s/seal.key", retired, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 && errno == ENOENT) {
            free(path);     /* a NAME without a private sealing key opens nothing */
            continue;
        }
        pt_seal_key_t *key = NULL;
        if (s_check_private_mode(path, errmsg, errmsg_len) != 0 ||
            !(key = pt_seal_key_load(path)) || !pt_seal_key_has_private(key)) {
            if (key || errno == 0)
                errno = EINVAL;
            if (key || !errmsg || !errmsg[0])
                s_load_errmsg(path, "X25519 private", errmsg, errmsg_len);
            pt_seal_key_destroy(&key);
            free(path);
            goto error;
        }
        free(path);
        pt_seal_key_t **grown = realloc(keys, (n + 1) * sizeof *grown);
        if (!grown) {
            pt_seal_key_destroy(&key);
            goto nomem;
        }
        keys = grown;
        keys[n++] = key;
    }
    closedir(d);
    free(retired);
    *keys_p = keys;
    *n_p = n;
    return 0;

nomem:
    s_errmsg(errmsg, errmsg_len, "out of memory");
error:
    if (d)
        closedir(d);
    free(retired);
    for (size_t i = 0; i < n; i++)
        pt_seal_key_destroy(&keys[i]);
    free(keys);
    return -1;
}

/* Moves the first n of the six key files between two directories (from -> to). */
static int s_move_files(const char *from, const char *to, size_t n, size_t *moved)
{
    char a[4096], b[4096];
    *moved = 0;
    for (size_t i = 0; i < n; i++) {
        if ((size_t)snprintf(a, sizeof a, "%s/%s", from, s_file_names[i]) >= sizeof a ||
            (size_t)snprintf(b, sizeof b, "%s/%s", to, s_file_names[i]) >= sizeof b) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (rename(a, b) != 0)
            return -1;
        (*moved)++;
    }
    return 0;
}

int pt_keyset_install(const char *dir, const char *org_id, const char *from_dir,
                      char *retired_name, char *errmsg, size_t errmsg_len)
{
    pt_keyset_t *fresh = NULL, *current = NULL;
    char *org_dir = NULL, *probe = NULL;
    char retired[4096] = "", name[17] = "";
    size_t moved = 0;
    int rc = -1;
    s_errmsg(errmsg, errmsg_len, "%s", "");
    if (retired_name)
        retired_name[0] = '\0';
    if (!dir || !from_dir || !pt_org_id_valid(org_id)) {
        s_errmsg(errmsg, errmsg_len, "invalid organisation id");
        return -1;
    }
    char why[300] = "";
    fresh = pt_keyset_load(from_dir, org_id, 1, why, sizeof why);
    if (!fresh) {
        s_errmsg(errmsg, errmsg_len, "the new key set: %s", why);
        goto done;
    }
    org_dir = s_path(dir, org_id, NULL);
    probe = s_path(dir, org_id, "sign.pub");
    if (!org_dir || !probe) {
        s_errmsg(errmsg, errmsg_len, "out of memory");
        goto done;
    }
    struct stat st;
    if (stat(probe, &st) == 0) {
        why[0] = '\0';
        current = pt_keyset_load(dir, org_id, 1, why, sizeof why);
        if (!current) {
            s_errmsg(errmsg, errmsg_len, "the current key set: %s", why);
            goto done;
        }
        uint8_t a[PT_KEY_ID_BYTES], b[PT_KEY_ID_BYTES];
        pt_sign_key_id(pt_keyset_sign(current), a);
        pt_sign_key_id(pt_keyset_sign(fresh), b);
        if (memcmp(a, b, sizeof a) == 0) {
            s_errmsg(errmsg, errmsg_len, "%s/%s/ already holds that key set", dir, org_id);
            goto done;
        }
        char hex[2 * PT_KEY_ID_BYTES + 1];
        pt_hex(a, sizeof a, hex);
        memcpy(name, hex, 16);
        name[16] = '\0';
        if ((size_t)snprintf(retired, sizeof retired, "%s/retired/%s", org_dir, name) >=
            sizeof retired) {
            s_errmsg(errmsg, errmsg_len, "path too long");
            goto done;
        }
        if (s_mkdir_p(retired) != 0) {
            s_errmsg(errmsg, errmsg_len, "cannot create %s: %s", retired, strerror(errno));
            goto done;
        }
        /* A former set already kept under that name is never overwritten. */
        char taken[4200];
        snprintf(taken, sizeof taken, "%s/sign.pub", retired);
        if (lstat(taken, &st) == 0) {
            s_errmsg(errmsg, errmsg_len, "%s already holds a key set; refusing to overwrite",
                     retired);
            goto done;
        }
        if (s_move_files(org_dir, retired, S_FILE_COUNT, &moved) != 0) {
            s_errmsg(errmsg, errmsg_len, "cannot move the current keys to %s: %s", retired,
                     strerror(errno));
            goto done;
        }
        char parent[4200];
        snprintf(parent, sizeof parent, "%s/retired", org_dir);
        if (s_fsync_path(retired) != 0 || s_fsync_path(parent) != 0 || s_fsync_path(org_dir) != 0) {
            s_errmsg(errmsg, errmsg_len, "cannot sync %s: %s", retired, strerror(errno));
            goto done;
        }
    }
    if (pt_keyset_save(fresh, dir) != 0) {
        s_errmsg(errmsg, errmsg_len, "cannot write %s: %s", org_dir, strerror(errno));
        goto done;
    }
    if (retired_name)
        snprintf(retired_name, 17, "%s", name);
    moved = 0;   /* installed: the former set stays where it now is */
    rc = 0;
done:
    if (moved) {
        /* Put the current set back where the SDK looks for it. */
        size_t back = 0;
        if (s_move_files(retired, org_dir, moved, &back) != 0 || s_fsync_path(org_dir) != 0) {
            char first[300];
            snprintf(first, sizeof first, "%s", errmsg && errmsg[0] ? errmsg : "install failed");
            s_errmsg(errmsg, errmsg_len, "%s; and moving the current keys back from %s failed: "
                     "move them by hand", first, retired);
        }
    }
    pt_keyset_destroy(&fresh);
    pt_keyset_destroy(&current);
    free(org_dir);
    free(probe);
    return rc;
}

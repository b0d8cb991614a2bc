/*  pt_crypto — Ed25519, X25519 sealing, SHA-256, HKDF, ids and durable files
    over OpenSSL 3 EVP. See pt_crypto.h for the contract.
*/
#include "pt_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

/* A PEM key file is a few hundred bytes; anything much larger is not ours. */
#define S_MAX_KEY_FILE_BYTES 16384
#define S_AES_KEY_BYTES 32

/* Both key types share one layout; they are distinct types so that a signing key
   can never be passed where a sealing key is expected. */
struct _pt_sign_key_t {
    EVP_PKEY *pkey;
    int has_private;
    uint8_t public_key[PT_ED25519_PUBLIC_BYTES];
};

struct _pt_seal_key_t {
    EVP_PKEY *pkey;
    int has_private;
    uint8_t public_key[PT_X25519_PUBLIC_BYTES];
};

/* --- shared helpers ------------------------------------------------------ */

/* Fills *public_key from pkey; 0 on success. */
static int s_raw_public(EVP_PKEY *pkey, uint8_t public_key[32])
{
    size_t len = 32;
    if (EVP_PKEY_get_raw_public_key(pkey, public_key, &len) != 1 || len != 32)
        return -1;
    return 0;
}

/* Never prompt on a terminal for the passphrase of an encrypted PEM file: a
   daemon must fail instead of hanging. */
static int s_no_password(char *buf, int size, int rwflag, void *userdata)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) userdata;
    return -1;
}

static char *s_strcat2(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + lb + 1);
    if (!out)
        return NULL;
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return out;
}

static int s_fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        int saved = errno;
        close(fd);
        errno = saved;
    }
    int saved = errno;
    free(copy);
    errno = saved;
    return rc;
}

int pt_file_write_durable(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = -1;
    int saved_errno = 0;
    char *tmp = NULL;
    if (!path || (!data && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    tmp = s_strcat2(path, ".new");
    if (!tmp)
        goto error;
    /* A stale .new from a crash may have looser permissions: start from nothing. */
    if (unlink(tmp) != 0 && errno != ENOENT)
        goto error;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t) mode);
    if (fd < 0)
        goto error;
    /* umask must not widen or narrow what the caller asked for. */
    if (fchmod(fd, (mode_t) mode) != 0)
        goto error;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto error;
        }
        p += n;
        left -= (size_t) n;
    }
    if (fsync(fd) != 0)
        goto error;
    if (close(fd) != 0) {
        fd = -1;
        goto error;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto error;
    free(tmp);
    tmp = NULL;
    if (s_fsync_dir_of(path) != 0)
        return -1;
    return 0;

error:
    saved_errno = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    errno = saved_errno;
    return -1;
}

/* Reads a key file (bounded) and reports its mode from the opened descriptor, so
   that the mode checked is that of the file actually read (symlinks followed). */
static uint8_t *s_read_key_file(const char *path, size_t *len_p, mode_t *mode_p)
{
    uint8_t *buf = NULL;
    int saved_errno = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto error;
    if (!S_ISREG(st.st_mode) || st.st_size > S_MAX_KEY_FILE_BYTES) {
        errno = EINVAL;
        goto error;
    }
    buf = malloc(S_MAX_KEY_FILE_BYTES + 1);
    if (!buf)
        goto error;
    size_t used = 0;
    while (used <= S_MAX_KEY_FILE_BYTES) {
        ssize_t n = read(fd, buf + used, S_MAX_KEY_FILE_BYTES + 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto error;
        }
        if (n == 0)
            break;
        used += (size_t) n;
    }
    if (used > S_MAX_KEY_FILE_BYTES) {
        errno = EINVAL;
        goto error;
    }
    close(fd);
    *len_p = used;
    *mode_p = st.st_mode;
    return buf;

error:
    saved_errno = errno ? errno : EIO;
    close(fd);
    if (buf) {
        OPENSSL_cleanse(buf, S_MAX_KEY_FILE_BYTES + 1);
        free(buf);
    }
    errno = saved_errno;
    return NULL;
}

/* Loads a PEM private (PKCS#8) or public (SPKI) key of the given type. */
static EVP_PKEY *s_load_pem(const char *path, int type, int *has_private)
{
    size_t len = 0;
    mode_t mode = 0;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    uint8_t *buf = s_read_key_file(path, &len, &mode);
    if (!buf)
        return NULL;
    bio = BIO_new_mem_buf(buf, (int) len);
    if (!bio)
        goto fail;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, s_no_password, NULL);
    if (pkey) {
        *has_private = 1;
        if (mode & (S_IRWXG | S_IRWXO)) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
            errno = EPERM;
            goto done;
        }
    }
    else {
        ERR_clear_error();
        BIO_free(bio);
        bio = BIO_new_mem_buf(buf, (int) len);
        if (!bio)
            goto fail;
        pkey = PEM_read_bio_PUBKEY(bio, NULL, s_no_password, NULL);
        *has_private = 0;
        if (!pkey) {
            ERR_clear_error();
            errno = EINVAL;
            goto done;
        }
    }
    if (EVP_PKEY_get_id(pkey) != type) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        errno = EINVAL;
    }
    goto done;

fail:
    errno = ENOMEM;
done:
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return pkey;
}

/* Writes pkey's private part (PKCS#8, 0600) and/or public part (SPKI, 0644). */
static int s_save_pem(EVP_PKEY *pkey, int has_private, const char *private_path,
                      const char *public_path)
{
    BIO *bio = NULL;
    if (private_path) {
        if (!has_private) {
            errno = EINVAL;
            return -1;
        }
        /* The secure-memory BIO wipes its buffer when freed. */
        bio = BIO_new(BIO_s_secmem());
        if (!bio || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
            goto crypto_error;
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n <= 0 || pt_file_write_durable(private_path, data, (size_t) n, 0600) != 0)
            goto error;
        BIO_free(bio);
        bio = NULL;
    }
    if (public_path) {
        bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio_PUBKEY(bio, pkey) != 1)
            goto crypto_error;
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n <= 0 || pt_file_write_durable(public_path, data, (size_t) n, 0644) != 0)
            goto error;
        BIO_free(bio);
        bio = NULL;
    }
    return 0;

crypto_error:
    ERR_clear_error();
    errno = EIO;
error:;
    int saved = errno;
    BIO_free(bio);
    errno = saved;
    return -1;
}

static EVP_PKEY *s_generate(const char *name)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, name);
    if (!pkey)
        ERR_clear_error();
    return pkey;
}

/* --- Ed25519 ------------------------------------------------------------- */

/* Takes ownership of pkey (freed on failure). */
static pt_sign_key_t *s_sign_key_wrap(EVP_PKEY *pkey, int has_private)
{
    if (!pkey)
        return NULL;
    pt_sign_key_t *self = calloc(1, sizeof *self);
    if (!self || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
        s_raw_public(pkey, self->public_key) != 0) {
        EVP_PKEY_free(pkey);
        free(self);
        return NULL;
    }
    self->pkey = pkey;
    self->has_private = has_private;
    return self;
}

pt_sign_key_t *pt_sign_key_generate(void)
{
    return s_sign_key_wrap(s_generate("ED25519"), 1);
}

pt_sign_key_t *pt_sign_key_from_public(const uint8_t *public_key, size_t len)
{
    if (!public_key || len != PT_ED25519_PUBLIC_BYTES)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, public_key, len);
    if (!pkey)
        ERR_clear_error();
    return s_sign_key_wrap(pkey, 0);
}

pt_sign_key_t *pt_sign_key_from_private(const uint8_t *seed, size_t len)
{
    if (!seed || len != 32)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, len);
    if (!pkey)
        ERR_clear_error();
    return s_sign_key_wrap(pkey, 1);
}

pt_sign_key_t *pt_sign_key_load(const char *path)
{
    int has_private = 0;
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    EVP_PKEY *pkey = s_load_pem(path, EVP_PKEY_ED25519, &has_private);
    return s_sign_key_wrap(pkey, has_private);
}

int pt_sign_key_save(const pt_sign_key_t *key, const char *private_path, const char *public_path)
{
    if (!key) {
        errno = EINVAL;
        return -1;
    }
    return s_save_pem(key->pkey, key->has_private, private_path, public_path);
}

int pt_sign_key_has_private(const pt_sign_key_t *key)
{
    return key && key->has_private;
}

void pt_sign_key_public(const pt_sign_key_t *key, uint8_t out[PT_ED25519_PUBLIC_BYTES])
{
    memcpy(out, key->public_key, PT_ED25519_PUBLIC_BYTES);
}

void pt_sign_key_id(const pt_sign_key_t *key, uint8_t out[PT_KEY_ID_BYTES])
{
    pt_sha256(key->public_key, PT_ED25519_PUBLIC_BYTES, out);
}

int pt_sign_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len,
                uint8_t sig[PT_ED25519_SIG_BYTES])
{
    if (!key || !key->has_private || !sig || (!msg && len > 0))
        return -1;
    static const uint8_t empty[1] = {0};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = PT_ED25519_SIG_BYTES;
    int rc = -1;
    /* Ed25519 is "pure": no digest, the whole message in one call. */
    if (ctx && EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1 &&
        EVP_DigestSign(ctx, sig, &sig_len, msg ? msg : empty, len) == 1 &&
        sig_len == PT_ED25519_SIG_BYTES)
        rc = 0;
    if (rc != 0)
        ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

int pt_verify_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                  size_t sig_len)
{
    if (!key || !sig || sig_len != PT_ED25519_SIG_BYTES || (!msg && len > 0))
        return -1;
    static const uint8_t empty[1] = {0};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (ctx && EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, msg ? msg : empty, len) == 1)
        rc = 0;
    if (rc != 0)
        ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* domain || 0x00 || msg in one fresh buffer (Ed25519 needs the message contiguous). */
static uint8_t *s_domain_message(const char *domain, const uint8_t *msg, size_t len,
                                 size_t *out_len)
{
    if (!domain || (!msg && len > 0))
        return NULL;
    size_t dlen = strlen(domain);
    if (len > SIZE_MAX - dlen - 1)
        return NULL;
    uint8_t *buf = malloc(dlen + 1 + len);
    if (!buf)
        return NULL;
    memcpy(buf, domain, dlen);
    buf[dlen] = 0x00;
    if (len > 0)
        memcpy(buf + dlen + 1, msg, len);
    *out_len = dlen + 1 + len;
    return buf;
}

int pt_sign(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
            uint8_t sig[PT_ED25519_SIG_BYTES])
{
    size_t full_len = 0;
    uint8_t *full = s_domain_message(domain, msg, len, &full_len);
    if (!full)
        return -1;
    int rc = pt_sign_raw(key, full, full_len, sig);
    free(full);
    return rc;
}

int pt_verify(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
              const uint8_t *sig, size_t sig_len)
{
    if (!sig || sig_len != PT_ED25519_SIG_BYTES)
        return -1;
    size_t full_len = 0;
    uint8_t *full = s_domain_message(domain, msg, len, &full_len);
    if (!full)
        return -1;
    int rc = pt_verify_raw(key, full, full_len, sig, sig_len);
    free(full);
    return rc;
}

void pt_sign_key_destroy(pt_sign_key_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    EVP_PKEY_free((*self_p)->pkey);
    free(*self_p);
    *self_p = NULL;
}

/* --- X25519 -------------------------------------------------------------- */

static pt_seal_key_t *s_seal_key_wrap(EVP_PKEY *pkey, int has_private)
{
    if (!pkey)
        return NULL;
    pt_seal_key_t *self = calloc(1, sizeof *self);
    if (!self || EVP_PKEY_get_id(pkey) != EVP_PKEY_X25519 ||
        s_raw_public(pkey, self->public_key) != 0) {
        EVP_PKEY_free(pkey);
        free(self);
        return NULL;
    }
    self->pkey = pkey;
    self->has_private = has_private;
    return self;
}

pt_seal_key_t *pt_seal_key_generate(void)
{
    return s_seal_key_wrap(s_generate("X25519"), 1);
}

pt_seal_key_t *pt_seal_key_from_public(const uint8_t *public_key, size_t len)
{
    if (!public_key || len != PT_X25519_PUBLIC_BYTES)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, public_key, len);
    if (!pkey)
        ERR_clear_error();
    return s_seal_key_wrap(pkey, 0);
}

pt_seal_key_t *pt_seal_key_from_private(const uint8_t *private_key, size_t len)
{
    if (!private_key || len != 32)
        return NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, private_key, len);
    if (!pkey)
        ERR_clear_error();
    return s_seal_key_wrap(pkey, 1);
}

pt_seal_key_t *pt_seal_key_load(const char *path)
{
    int has_private = 0;
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    EVP_PKEY *pkey = s_load_pem(path, EVP_PKEY_X25519, &has_private);
    return s_seal_key_wrap(pkey, has_private);
}

int pt_seal_key_save(const pt_seal_key_t *key, const char *private_path, const char *public_path)
{
    if (!key) {
        errno = EINVAL;
        return -1;
    }
    return s_save_pem(key->pkey, key->has_private, private_path, public_path);
}

int pt_seal_key_has_private(const pt_seal_key_t *key)
{
    return key && key->has_private;
}

void pt_seal_key_public(const pt_seal_key_t *key, uint8_t out[PT_X25519_PUBLIC_BYTES])
{
    memcpy(out, key->public_key, PT_X25519_PUBLIC_BYTES);
}

void pt_seal_key_id(const pt_seal_key_t *key, uint8_t out[PT_KEY_ID_BYTES])
{
    pt_sha256(key->public_key, PT_X25519_PUBLIC_BYTES, out);
}

void pt_seal_key_destroy(pt_seal_key_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    EVP_PKEY_free((*self_p)->pkey);
    free(*self_p);
    *self_p = NULL;
}

/* Derives from a private key and a raw peer public key. */
static int s_x25519(EVP_PKEY *mine, const uint8_t *peer_public, uint8_t out[32])
{
    EVP_PKEY *peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer_public, 32);
    EVP_PKEY_CTX *ctx = NULL;
    size_t out_len = 32;
    int rc = -1;
    if (!peer)
        goto done;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
    /* OpenSSL refuses an all-zero result (RFC 7748 section 6.1 check) in derive. */
    if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
        EVP_PKEY_derive(ctx, out, &out_len) == 1 && out_len == 32)
        rc = 0;
done:
    if (rc == 0) {
        /* Belt and braces: never key a cipher from the all-zero secret. */
        uint8_t acc = 0;
        for (int i = 0; i < 32; i++)
            acc |= out[i];
        if (acc == 0)
            rc = -1;
    }
    if (rc != 0) {
        ERR_clear_error();
        OPENSSL_cleanse(out, 32);
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return rc;
}

int pt_x25519_shared(const pt_seal_key_t *mine, const pt_seal_key_t *peer,
                     uint8_t out[PT_X25519_PUBLIC_BYTES])
{
    if (!mine || !mine->has_private || !peer || !out)
        return -1;
    return s_x25519(mine->pkey, peer->public_key, out);
}

int pt_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    if (!out || out_len == 0 || out_len > 255 * 32 || (!ikm && ikm_len > 0) ||
        (!salt && salt_len > 0) || (!info && info_len > 0))
        return -1;
    static const uint8_t empty[1] = {0};
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int rc = -1;
    if (ctx) {
        OSSL_PARAM params[5];
        size_t n = 0;
        params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        params[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) (ikm ? ikm : empty), ikm_len);
        /* An absent salt means HashLen zero bytes (RFC 5869 2.2), which is what
           OpenSSL does when the parameter is not given. */
        if (salt_len > 0)
            params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt,
                                                            salt_len);
        if (info_len > 0)
            params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info,
                                                            info_len);
        params[n] = OSSL_PARAM_construct_end();
        if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
            rc = 0;
    }
    if (rc != 0) {
        ERR_clear_error();
        OPENSSL_cleanse(out, out_len);
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* The AES key for one seal: HKDF(shared, salt = ephemeral public || recipient public,
   info). Binding both public keys in the salt means a ciphertext cannot be replayed
   under a re-encoded (for instance high-bit-flipped) ephemeral key. */
static int s_seal_key_derive(const uint8_t shared[32], const uint8_t ephemeral_public[32],
                             const uint8_t recipient_public[32], const uint8_t *info,
                             size_t info_len, uint8_t aes_key[S_AES_KEY_BYTES])
{
    uint8_t salt[64];
    memcpy(salt, ephemeral_public, 32);
    memcpy(salt + 32, recipient_public, 32);
    return pt_hkdf_sha256(shared, 32, salt, sizeof salt, info, info_len, aes_key,
                          S_AES_KEY_BYTES);
}

static int s_gcm(int encrypt, const uint8_t key[S_AES_KEY_BYTES],
                 const uint8_t nonce[PT_GCM_NONCE_BYTES], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t in_len, uint8_t *out, uint8_t tag[PT_GCM_TAG_BYTES])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = -1;
    int n = 0;
    if (!ctx)
        return -1;
    /* The default GCM IV length is 12 bytes, which is what we use. */
    if (EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, encrypt, NULL) != 1)
        goto done;
    if (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1)
        goto done;
    if (in_len > 0 && (EVP_CipherUpdate(ctx, out, &n, in, (int) in_len) != 1 || (size_t) n != in_len))
        goto done;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
                                                  PT_GCM_TAG_BYTES);
    params[1] = OSSL_PARAM_construct_end();
    if (encrypt) {
        if (EVP_CipherFinal_ex(ctx, out + in_len, &n) != 1 || n != 0)
            goto done;
        if (EVP_CIPHER_CTX_get_params(ctx, params) != 1)
            goto done;
    }
    else {
        if (EVP_CIPHER_CTX_set_params(ctx, params) != 1)
            goto done;
        if (EVP_CipherFinal_ex(ctx, out + in_len, &n) != 1 || n != 0)
            goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int pt_seal_with(const pt_seal_key_t *recipient, const pt_seal_key_t *ephemeral,
                 const uint8_t nonce[PT_GCM_NONCE_BYTES], const uint8_t *info, size_t info_len,
                 const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
                 uint8_t **ciphertext_p, size_t *ciphertext_len)
{
    uint8_t shared[32];
    uint8_t aes_key[S_AES_KEY_BYTES];
    uint8_t *ct = NULL;
    int rc = -1;
    if (!recipient || !ephemeral || !ephemeral->has_private || !nonce || !ciphertext_p ||
        !ciphertext_len || (!info && info_len > 0) || (!aad && aad_len > 0) ||
        (!plaintext && len > 0) || len > (size_t) INT_MAX - PT_GCM_TAG_BYTES ||
        aad_len > (size_t) INT_MAX)
        return -1;
    if (s_x25519(ephemeral->pkey, recipient->public_key, shared) != 0)
        goto done;
    if (s_seal_key_derive(shared, ephemeral->public_key, recipient->public_key, info, info_len,
                          aes_key) != 0)
        goto done;
    ct = malloc(len + PT_GCM_TAG_BYTES);
    if (!ct)
        goto done;
    if (s_gcm(1, aes_key, nonce, aad, aad_len, plaintext, len, ct, ct + len) != 0)
        goto done;
    *ciphertext_p = ct;
    *ciphertext_len = len + PT_GCM_TAG_BYTES;
    ct = NULL;
    rc = 0;
done:
    free(ct);
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(aes_key, sizeof aes_key);
    return rc;
}

int pt_seal(const pt_seal_key_t *recipient, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
            uint8_t ephemeral_public[PT_X25519_PUBLIC_BYTES], uint8_t nonce[PT_GCM_NONCE_BYTES],
            uint8_t **ciphertext_p, size_t *ciphertext_len)
{
    if (!ephemeral_public || !nonce)
        return -1;
    pt_seal_key_t *ephemeral = pt_seal_key_generate();
    if (!ephemeral)
        return -1;
    uint8_t fresh_nonce[PT_GCM_NONCE_BYTES];
    int rc = -1;
    /* A fresh ephemeral key per seal already makes the AES key unique; the random
       nonce is defence in depth, never the only source of uniqueness. */
    if (pt_random(fresh_nonce, sizeof fresh_nonce) == 0 &&
        pt_seal_with(recipient, ephemeral, fresh_nonce, info, info_len, aad, aad_len, plaintext,
                     len, ciphertext_p, ciphertext_len) == 0) {
        memcpy(ephemeral_public, ephemeral->public_key, PT_X25519_PUBLIC_BYTES);
        memcpy(nonce, fresh_nonce, PT_GCM_NONCE_BYTES);
        rc = 0;
    }
    pt_seal_key_destroy(&ephemeral);
    return rc;
}

int pt_open(const pt_seal_key_t *recipient, const uint8_t *ephemeral_public, size_t eph_len,
            const uint8_t *nonce, size_t nonce_len, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *ciphertext, size_t ct_len,
            uint8_t **plaintext_p, size_t *plaintext_len)
{
    uint8_t shared[32];
    uint8_t aes_key[S_AES_KEY_BYTES];
    uint8_t tag[PT_GCM_TAG_BYTES];
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc = -1;
    if (!recipient || !recipient->has_private || !ephemeral_public ||
        eph_len != PT_X25519_PUBLIC_BYTES || !nonce || nonce_len != PT_GCM_NONCE_BYTES ||
        !ciphertext || ct_len < PT_GCM_TAG_BYTES || ct_len > (size_t) INT_MAX ||
        aad_len > (size_t) INT_MAX || (!info && info_len > 0) || (!aad && aad_len > 0) ||
        !plaintext_p || !plaintext_len)
        return -1;
    pt_len = ct_len - PT_GCM_TAG_BYTES;
    if (s_x25519(recipient->pkey, ephemeral_public, shared) != 0)
        goto done;
    if (s_seal_key_derive(shared, ephemeral_public, recipient->public_key, info, info_len,
                          aes_key) != 0)
        goto done;
    /* +1 so that an empty plaintext still yields a pointer the caller can free. */
    pt = malloc(pt_len + 1);
    if (!pt)
        goto done;
    memcpy(tag, ciphertext + pt_len, PT_GCM_TAG_BYTES);
    if (s_gcm(0, aes_key, nonce, aad, aad_len, ciphertext, pt_len, pt, tag) != 0)
        goto done;
    *plaintext_p = pt;
    *plaintext_len = pt_len;
    pt = NULL;
    rc = 0;
done:
    if (pt) {
        /* Unauthenticated plaintext must never escape, not even in freed memory. */
        OPENSSL_cleanse(pt, pt_len + 1);
        free(pt);
    }
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(aes_key, sizeof aes_key);
    return rc;
}

/* --- Hashing, randomness, ids --------------------------------------------- */

int pt_sha256(const void *data, size_t len, uint8_t out[PT_SHA256_BYTES])
{
    static const uint8_t empty[1] = {0};
    unsigned int out_len = 0;
    if (!out || (!data && len > 0))
        return -1;
    if (EVP_Digest(data ? data : empty, len, out, &out_len, EVP_sha256(), NULL) != 1 ||
        out_len != PT_SHA256_BYTES) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int pt_sha256_parts(const void *const *parts, const size_t *lens, size_t n,
                    uint8_t out[PT_SHA256_BYTES])
{
    if (!out || (n > 0 && (!parts || !lens)))
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int rc = -1;
    if (!ctx || EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) != 1)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            continue;
        if (!parts[i] || EVP_DigestUpdate(ctx, parts[i], lens[i]) != 1)
            goto done;
    }
    if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1 || out_len != PT_SHA256_BYTES)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

int pt_random(void *out, size_t len)
{
    uint8_t *p = out;
    if (!out && len > 0)
        return -1;
    while (len > 0) {
        int chunk = len > (size_t) INT_MAX ? INT_MAX : (int) len;
        if (RAND_bytes(p, chunk) != 1) {
            ERR_clear_error();
            return -1;
        }
        p += chunk;
        len -= (size_t) chunk;
    }
    return 0;
}

int64_t pt_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_mutex_t s_uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_uuid_last_ms;
static uint16_t s_uuid_counter;

int pt_uuidv7(uint8_t out[PT_UUID_BYTES])
{
    uint8_t rnd[PT_UUID_BYTES];
    if (!out || pt_random(rnd, sizeof rnd) != 0)
        return -1;
    int64_t now = pt_now_ms();
    if (now <= 0)
        return -1;
    uint64_t ms = (uint64_t) now & 0xFFFFFFFFFFFFull;
    uint16_t counter;

    pthread_mutex_lock(&s_uuid_lock);
    if (ms > s_uuid_last_ms) {
        /* Seed with the top bit clear, leaving at least 2048 increments in this ms. */
        s_uuid_counter = (uint16_t) (((rnd[6] << 8) | rnd[7]) & 0x07FF);
        s_uuid_last_ms = ms;
    }
    else if (s_uuid_counter < 0x0FFF) {
        s_uuid_counter++;
    }
    else {
        /* Counter exhausted: borrow the next millisecond (RFC 9562 6.2 allows it). */
        s_uuid_last_ms++;
        s_uuid_counter = (uint16_t) (((rnd[6] << 8) | rnd[7]) & 0x07FF);
    }
    ms = s_uuid_last_ms;
    counter = s_uuid_counter;
    pthread_mutex_unlock(&s_uuid_lock);

    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t) (ms >> (8 * (5 - i)));
    out[6] = (uint8_t) (0x70 | ((counter >> 8) & 0x0F));
    out[7] = (uint8_t) (counter & 0xFF);
    out[8] = (uint8_t) (0x80 | (rnd[8] & 0x3F));
    memcpy(out + 9, rnd + 9, 7);
    return 0;
}

static const char s_hex_digits[] = "0123456789abcdef";

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void pt_uuid_format(const uint8_t uuid[PT_UUID_BYTES], char out[PT_UUID_STR_BYTES])
{
    size_t o = 0;
    for (size_t i = 0; i < PT_UUID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = s_hex_digits[uuid[i] >> 4];
        out[o++] = s_hex_digits[uuid[i] & 0x0F];
    }
    out[o] = '\0';
}

int pt_uuid_parse(const char *text, uint8_t out[PT_UUID_BYTES])
{
    uint8_t tmp[PT_UUID_BYTES];
    if (!text || !out)
        return -1;
    size_t t = 0;
    for (size_t i = 0; i < PT_UUID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[t] != '-')
                return -1;
            t++;
        }
        int hi = s_hex_value(text[t]);
        int lo = hi < 0 ? -1 : s_hex_value(text[t + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        tmp[i] = (uint8_t) ((hi << 4) | lo);
        t += 2;
    }
    if (text[t] != '\0')
        return -1;
    memcpy(out, tmp, PT_UUID_BYTES);
    return 0;
}

void pt_hex(const uint8_t *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = s_hex_digits[data[i] >> 4];
        out[2 * i + 1] = s_hex_digits[data[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

int pt_unhex(const char *text, uint8_t *out, size_t len)
{
    if (!text || (!out && len > 0))
        return -1;
    /* Validate everything first so that out is untouched on failure. */
    for (size_t i = 0; i < 2 * len; i++)
        if (s_hex_value(text[i]) < 0)
            return -1;
    if (text[2 * len] != '\0')
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t) ((s_hex_value(text[2 * i]) << 4) | s_hex_value(text[2 * i + 1]));
    return 0;
}

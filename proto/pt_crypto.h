/*  pt_crypto — the cryptographic primitives Puente uses, over OpenSSL 3 EVP only.

    Ed25519 signing keys (pt_sign_key_t), X25519 sealing keys (pt_seal_key_t),
    SHA-256, random bytes, UUIDv7, hex. Every signature is made over a
    domain-separation prefix: sign(domain || 0x00 || message), so a signature made
    for one purpose ("puente.v1 header") can never be replayed for another.

    Sealing: ephemeral X25519 key agreement with the recipient's public key, then
    HKDF-SHA256 (salt = ephemeral public || recipient public, info = caller's
    context) producing a 32-byte AES-256-GCM key; a random 12-byte nonce; the
    caller's AAD is authenticated. Output ciphertext = GCM ciphertext || 16-byte tag.

    Thread-safety: key objects are immutable after creation and may be shared
    between threads for sign/verify/seal/open.
    Errors: functions returning int give 0 on success and -1 on failure.
*/
#ifndef PT_CRYPTO_H
#define PT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define PT_ED25519_PUBLIC_BYTES 32
#define PT_ED25519_SIG_BYTES 64
#define PT_X25519_PUBLIC_BYTES 32
#define PT_SHA256_BYTES 32
#define PT_KEY_ID_BYTES 32
#define PT_GCM_NONCE_BYTES 12
#define PT_GCM_TAG_BYTES 16
#define PT_UUID_BYTES 16
#define PT_UUID_STR_BYTES 37 /* 36 chars + NUL */

/* Domain-separation prefixes. */
#define PT_DOMAIN_HEADER "puente.v1 header"
#define PT_DOMAIN_PAYLOAD "puente.v1 payload"
#define PT_DOMAIN_RECEIPT "puente.v1 receipt"
#define PT_DOMAIN_DIRECTORY "puente.v1 directory"
#define PT_DOMAIN_SEAL "puente.v1 seal"
#define PT_DOMAIN_NOTICE "puente.v1 notice"
#define PT_DOMAIN_RECEIPT_BATCH "puente.v2 receipt batch"

typedef struct _pt_sign_key_t pt_sign_key_t;
typedef struct _pt_seal_key_t pt_seal_key_t;

/* --- Ed25519 ----------------------------------------------------------- */

/* Generates a fresh Ed25519 key pair from the OpenSSL CSPRNG. Returns a new key
   (caller destroys with pt_sign_key_destroy), NULL on failure (library error,
   out of memory). Thread-safe. */
pt_sign_key_t *pt_sign_key_generate(void);

/* Builds a public-only key from len raw bytes (must be 32). The bytes are copied.
   Returns a new key (caller destroys), NULL if len is wrong or the bytes are not
   a valid key. Thread-safe. */
pt_sign_key_t *pt_sign_key_from_public(const uint8_t *public_key, size_t len);

/* Builds a key pair from a len-byte raw private seed (must be 32; for
   known-answer tests). The seed is copied. Returns a new key (caller
   destroys), NULL on a wrong length or library failure. Thread-safe. */
pt_sign_key_t *pt_sign_key_from_private(const uint8_t *seed, size_t len);

/* Loads a PEM file: a private key (PKCS#8) or, if that fails, a public key (SPKI).
   Returns a new key (caller destroys); NULL with errno set when the file cannot
   be read or holds no Ed25519 key, and a private key file readable by group or
   others is refused (NULL, errno EPERM). Thread-safe (no shared state). */
pt_sign_key_t *pt_sign_key_load(const char *path);

/* Writes the private key (PKCS#8 PEM, mode 0600) and/or the public key (SPKI PEM,
   mode 0644) durably (write .new, fsync, rename, fsync dir). Either path may be NULL. */
int pt_sign_key_save(const pt_sign_key_t *key, const char *private_path, const char *public_path);

/* 1 if the key holds a private part, 0 if it is public-only. key is borrowed
   and must not be NULL. Thread-safe. */
int pt_sign_key_has_private(const pt_sign_key_t *key);

/* Copies the raw 32-byte public key into out (caller's buffer). Cannot fail
   for a valid key. Thread-safe. */
void pt_sign_key_public(const pt_sign_key_t *key, uint8_t out[PT_ED25519_PUBLIC_BYTES]);

/* The key id, SHA-256 of the raw public key, into out (caller's buffer).
   Thread-safe. */
void pt_sign_key_id(const pt_sign_key_t *key, uint8_t out[PT_KEY_ID_BYTES]);

/* Signs domain || 0x00 || msg into sig (caller's 64-byte buffer). Needs a
   private key: 0 on success, -1 for a public-only key or a library failure.
   Borrows every argument. Thread-safe. O(len). */
int pt_sign(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
            uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a signature made by pt_sign. 0 if valid, -1 otherwise (including a
   signature of the wrong length). Never asserts on its inputs. Borrows every
   argument. Thread-safe. O(len). */
int pt_verify(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
              const uint8_t *sig, size_t sig_len);

/* Frees the key (private bytes are cleared by OpenSSL). No-op on NULL or
   *self_p NULL; sets *self_p to NULL. Not to be called while another thread
   still uses the key. */
void pt_sign_key_destroy(pt_sign_key_t **self_p);

/* --- X25519 ------------------------------------------------------------ */

/* Generates a fresh X25519 key pair from the OpenSSL CSPRNG. Returns a new key
   (caller destroys with pt_seal_key_destroy), NULL on failure. Thread-safe. */
pt_seal_key_t *pt_seal_key_generate(void);

/* Builds a public-only key from len raw bytes (must be 32; copied). Returns a new
   key (caller destroys), NULL on a wrong length or invalid bytes. Thread-safe. */
pt_seal_key_t *pt_seal_key_from_public(const uint8_t *public_key, size_t len);

/* Builds a key pair from len raw private bytes (must be 32; copied; for
   known-answer tests). Returns a new key (caller destroys), NULL on failure.
   Thread-safe. */
pt_seal_key_t *pt_seal_key_from_private(const uint8_t *private_key, size_t len);

/* Loads a PEM file, private (PKCS#8) or public (SPKI), with the same rules as
   pt_sign_key_load: a new key (caller destroys), or NULL with errno set (EPERM
   for a private key file readable by group or others). Thread-safe. */
pt_seal_key_t *pt_seal_key_load(const char *path);

/* Writes the private key (PKCS#8 PEM, mode 0600) and/or the public key (SPKI
   PEM, mode 0644) durably, as pt_sign_key_save does; either path may be NULL.
   0 on success, -1 with errno set (or for a public-only key asked for its
   private part). Thread-safe for distinct paths. */
int pt_seal_key_save(const pt_seal_key_t *key, const char *private_path, const char *public_path);

/* 1 if the key holds a private part, 0 if it is public-only. Thread-safe. */
int pt_seal_key_has_private(const pt_seal_key_t *key);

/* Copies the raw 32-byte public key into out (caller's buffer). Thread-safe. */
void pt_seal_key_public(const pt_seal_key_t *key, uint8_t out[PT_X25519_PUBLIC_BYTES]);

/* The key id, SHA-256 of the raw public key, into out (caller's buffer).
   Thread-safe. */
void pt_seal_key_id(const pt_seal_key_t *key, uint8_t out[PT_KEY_ID_BYTES]);

/* Frees the key. No-op on NULL or *self_p NULL; sets *self_p to NULL. Not to be
   called while another thread still uses the key. */
void pt_seal_key_destroy(pt_seal_key_t **self_p);

/* Seals plaintext to recipient (public key suffices). Writes the ephemeral public
   key and the nonce (caller's buffers); *ciphertext_p (caller frees with free())
   holds *ciphertext_len = len + 16 bytes. info and aad bind the ciphertext to its
   context (message id, recipient). 0 on success; -1 on a library failure or out
   of memory (nothing allocated then). Thread-safe. O(len). */
int pt_seal(const pt_seal_key_t *recipient, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
            uint8_t ephemeral_public[PT_X25519_PUBLIC_BYTES], uint8_t nonce[PT_GCM_NONCE_BYTES],
            uint8_t **ciphertext_p, size_t *ciphertext_len);

/* Deterministic variant for known-answer tests: the caller supplies the ephemeral
   private key and the nonce (never reuse either outside tests). Output and
   errors as pt_seal. Thread-safe. O(len). */
int pt_seal_with(const pt_seal_key_t *recipient, const pt_seal_key_t *ephemeral,
                 const uint8_t nonce[PT_GCM_NONCE_BYTES], const uint8_t *info, size_t info_len,
                 const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
                 uint8_t **ciphertext_p, size_t *ciphertext_len);

/* Opens what pt_seal made; needs the recipient's private key. 0 and
   *plaintext_p (caller frees with free()) of *plaintext_len bytes; -1 on any
   authentication failure, wrong lengths, a public-only key or out of memory
   (nothing is written to *plaintext_p then). Never asserts on its inputs.
   Thread-safe. O(ct_len). */
int pt_open(const pt_seal_key_t *recipient, const uint8_t *ephemeral_public, size_t eph_len,
            const uint8_t *nonce, size_t nonce_len, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *ciphertext, size_t ct_len,
            uint8_t **plaintext_p, size_t *plaintext_len);

/* --- Raw primitives, for known-answer tests only ------------------------- */

/* Ed25519 over msg exactly as given: NO domain prefix. Only for known-answer tests
   against RFC 8032; protocol code must use pt_sign/pt_verify. 0, or -1 for a
   public-only key or a library failure. Thread-safe. */
int pt_sign_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len,
                uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a pt_sign_raw signature (no domain prefix; known-answer tests only).
   0 if valid, -1 otherwise. Thread-safe. */
int pt_verify_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                  size_t sig_len);

/* X25519(private of mine, public of peer) into out (32 bytes). -1 if mine has no
   private part or the result is all zeros (a low-order peer point). For RFC 7748
   tests. Thread-safe. */
int pt_x25519_shared(const pt_seal_key_t *mine, const pt_seal_key_t *peer,
                     uint8_t out[PT_X25519_PUBLIC_BYTES]);

/* HKDF-SHA256 (RFC 5869) extract-and-expand into out_len bytes (at most 255*32).
   salt and info may be empty. For RFC 5869 tests and the sealing code. 0, or -1
   when out_len is too large or the library fails. Thread-safe. */
int pt_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* --- Durable files ------------------------------------------------------- */

/* Writes len bytes to path durably: path.new (created fresh with mode), fsync, rename
   over path, fsync the directory. Nothing is left at path.new on failure.
   -1 with errno set on failure. Thread-safe for distinct paths. O(len). */
int pt_file_write_durable(const char *path, const void *data, size_t len, unsigned mode);

/* --- Hashing, randomness, ids ------------------------------------------- */

/* SHA-256 of len bytes into out (caller's buffer). 0, or -1 on a library
   failure. Thread-safe. O(len). */
int pt_sha256(const void *data, size_t len, uint8_t out[PT_SHA256_BYTES]);

/* SHA-256 over several parts in order (parts[i], lens[i]) into out. 0 or -1 as
   pt_sha256. Thread-safe. O(total length). */
int pt_sha256_parts(const void *const *parts, const size_t *lens, size_t n,
                    uint8_t out[PT_SHA256_BYTES]);

/* Fills out with len bytes from the OpenSSL CSPRNG. 0, or -1 when the
   generator fails (then out must not be used). Thread-safe. */
int pt_random(void *out, size_t len);

/* A fresh UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, variant 10, random rest.
   Within one process successive ids are strictly increasing (RFC 9562 section 6.2 method 1: a
   12-bit counter in rand_a, randomly seeded each millisecond; the timestamp never
   goes backwards even if the clock does). Thread-safe. 0, or -1 when no random
   bytes could be had. */
int pt_uuidv7(uint8_t out[PT_UUID_BYTES]);

/* Unix time in milliseconds (CLOCK_REALTIME). Never fails. Thread-safe. */
int64_t pt_now_ms(void);

/* Formats 16 bytes as the canonical 8-4-4-4-12 lowercase string into out
   (caller's 37-byte buffer, NUL-terminated). Never fails. Thread-safe. */
void pt_uuid_format(const uint8_t uuid[PT_UUID_BYTES], char out[PT_UUID_STR_BYTES]);

/* Parses the canonical form (case-insensitive) into out (caller's 16 bytes).
   0, or -1 on anything else (out untouched then). Thread-safe. */
int pt_uuid_parse(const char *text, uint8_t out[PT_UUID_BYTES]);

/* Lowercase hex of len bytes into out (caller's buffer of 2*len+1 bytes, NUL
   included). Never fails. Thread-safe. O(len). */
void pt_hex(const uint8_t *data, size_t len, char *out);

/* Parses exactly 2*len hex digits (either case) into out (caller's len bytes).
   0, or -1 on anything else. Thread-safe. O(len). */
int pt_unhex(const char *text, uint8_t *out, size_t len);

#endif

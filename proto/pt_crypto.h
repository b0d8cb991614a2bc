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

typedef struct _pt_sign_key_t pt_sign_key_t;
typedef struct _pt_seal_key_t pt_seal_key_t;

/* --- Ed25519 ----------------------------------------------------------- */

/* Generates a fresh Ed25519 key pair. NULL on failure. Caller destroys. */
pt_sign_key_t *pt_sign_key_generate(void);

/* Builds a public-only key from 32 raw bytes. NULL if the bytes are not a valid key. */
pt_sign_key_t *pt_sign_key_from_public(const uint8_t *public_key, size_t len);

/* Builds a key pair from a 32-byte raw private seed (for known-answer tests). */
pt_sign_key_t *pt_sign_key_from_private(const uint8_t *seed, size_t len);

/* Loads a PEM file: a private key (PKCS#8) or, if that fails, a public key (SPKI).
   A private key file readable by group or others is refused (NULL, errno EPERM). */
pt_sign_key_t *pt_sign_key_load(const char *path);

/* Writes the private key (PKCS#8 PEM, mode 0600) and/or the public key (SPKI PEM,
   mode 0644) durably (write .new, fsync, rename, fsync dir). Either path may be NULL. */
int pt_sign_key_save(const pt_sign_key_t *key, const char *private_path, const char *public_path);

/* 1 if the key holds a private part. */
int pt_sign_key_has_private(const pt_sign_key_t *key);

/* Copies the raw 32-byte public key into out. */
void pt_sign_key_public(const pt_sign_key_t *key, uint8_t out[PT_ED25519_PUBLIC_BYTES]);

/* Key id = SHA-256 of the raw public key. */
void pt_sign_key_id(const pt_sign_key_t *key, uint8_t out[PT_KEY_ID_BYTES]);

/* Signs domain || 0x00 || msg. Needs a private key. O(len). */
int pt_sign(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
            uint8_t sig[PT_ED25519_SIG_BYTES]);

/* Verifies a signature made by pt_sign. 0 if valid, -1 otherwise (including a
   signature of the wrong length). Never asserts on its inputs. O(len). */
int pt_verify(const pt_sign_key_t *key, const char *domain, const uint8_t *msg, size_t len,
              const uint8_t *sig, size_t sig_len);

void pt_sign_key_destroy(pt_sign_key_t **self_p);

/* --- X25519 ------------------------------------------------------------ */

pt_seal_key_t *pt_seal_key_generate(void);
pt_seal_key_t *pt_seal_key_from_public(const uint8_t *public_key, size_t len);
pt_seal_key_t *pt_seal_key_from_private(const uint8_t *private_key, size_t len);
pt_seal_key_t *pt_seal_key_load(const char *path);   /* same rules as pt_sign_key_load */
int pt_seal_key_save(const pt_seal_key_t *key, const char *private_path, const char *public_path);
int pt_seal_key_has_private(const pt_seal_key_t *key);
void pt_seal_key_public(const pt_seal_key_t *key, uint8_t out[PT_X25519_PUBLIC_BYTES]);
void pt_seal_key_id(const pt_seal_key_t *key, uint8_t out[PT_KEY_ID_BYTES]);
void pt_seal_key_destroy(pt_seal_key_t **self_p);

/* Seals plaintext to recipient (public key suffices). Writes the ephemeral public
   key and the nonce; *ciphertext_p (caller frees) holds len + 16 bytes. info and aad
   bind the ciphertext to its context (message id, recipient). */
int pt_seal(const pt_seal_key_t *recipient, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
            uint8_t ephemeral_public[PT_X25519_PUBLIC_BYTES], uint8_t nonce[PT_GCM_NONCE_BYTES],
            uint8_t **ciphertext_p, size_t *ciphertext_len);

/* Deterministic variant for known-answer tests: the caller supplies the ephemeral
   private key and the nonce. */
int pt_seal_with(const pt_seal_key_t *recipient, const pt_seal_key_t *ephemeral,
                 const uint8_t nonce[PT_GCM_NONCE_BYTES], const uint8_t *info, size_t info_len,
                 const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
                 uint8_t **ciphertext_p, size_t *ciphertext_len);

/* Opens what pt_seal made; needs the recipient's private key. -1 on any
   authentication failure (nothing is written to *plaintext_p then). */
int pt_open(const pt_seal_key_t *recipient, const uint8_t *ephemeral_public, size_t eph_len,
            const uint8_t *nonce, size_t nonce_len, const uint8_t *info, size_t info_len,
            const uint8_t *aad, size_t aad_len, const uint8_t *ciphertext, size_t ct_len,
            uint8_t **plaintext_p, size_t *plaintext_len);

/* --- Raw primitives, for known-answer tests only ------------------------- */

/* Ed25519 over msg exactly as given: NO domain prefix. Only for known-answer tests
   against RFC 8032; protocol code must use pt_sign/pt_verify. */
int pt_sign_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len,
                uint8_t sig[PT_ED25519_SIG_BYTES]);
int pt_verify_raw(const pt_sign_key_t *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                  size_t sig_len);

/* X25519(private of mine, public of peer) into out (32 bytes). -1 if mine has no
   private part or the result is all zeros (a low-order peer point). For RFC 7748 tests. */
int pt_x25519_shared(const pt_seal_key_t *mine, const pt_seal_key_t *peer,
                     uint8_t out[PT_X25519_PUBLIC_BYTES]);

/* HKDF-SHA256 (RFC 5869) extract-and-expand into out_len bytes (at most 255*32).
   salt and info may be empty. For RFC 5869 tests and the sealing code. */
int pt_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* --- Durable files ------------------------------------------------------- */

/* Writes len bytes to path durably: path.new (created fresh with mode), fsync, rename
   over path, fsync the directory. Nothing is left at path.new on failure.
   -1 with errno set on failure. O(len). */
int pt_file_write_durable(const char *path, const void *data, size_t len, unsigned mode);

/* --- Hashing, randomness, ids ------------------------------------------- */

int pt_sha256(const void *data, size_t len, uint8_t out[PT_SHA256_BYTES]);

/* SHA-256 over several parts in order (parts[i], lens[i]). */
int pt_sha256_parts(const void *const *parts, const size_t *lens, size_t n,
                    uint8_t out[PT_SHA256_BYTES]);

int pt_random(void *out, size_t len);

/* A fresh UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, variant 10, random rest.
   Within one process successive ids are strictly increasing (RFC 9562 section 6.2 method 1: a
   12-bit counter in rand_a, randomly seeded each millisecond; the timestamp never
   goes backwards even if the clock does). Thread-safe. */
int pt_uuidv7(uint8_t out[PT_UUID_BYTES]);

/* Unix time in milliseconds from the monotonic-safe realtime clock. */
int64_t pt_now_ms(void);

/* Formats 16 bytes as the canonical 8-4-4-4-12 lowercase string. */
void pt_uuid_format(const uint8_t uuid[PT_UUID_BYTES], char out[PT_UUID_STR_BYTES]);

/* Parses the canonical form (case-insensitive). -1 on anything else. */
int pt_uuid_parse(const char *text, uint8_t out[PT_UUID_BYTES]);

/* Lowercase hex of len bytes into out (2*len+1 bytes incl. NUL). */
void pt_hex(const uint8_t *data, size_t len, char *out);

/* Parses exactly 2*len hex digits. -1 on anything else. */
int pt_unhex(const char *text, uint8_t *out, size_t len);

#endif

/*  pt_keys — an organisation's key set on disk.

    Layout of a key directory (default var/keys, see README):
        <dir>/<ORG>/sign.key   Ed25519 private, PKCS#8 PEM, mode 0600
        <dir>/<ORG>/sign.pub   Ed25519 public, SPKI PEM
        <dir>/<ORG>/seal.key   X25519 private, PKCS#8 PEM, mode 0600
        <dir>/<ORG>/seal.pub   X25519 public, SPKI PEM
        <dir>/<ORG>/curve.key  CURVE secret key, Z85 (40 chars) + newline, mode 0600
        <dir>/<ORG>/curve.pub  CURVE public key, Z85 (40 chars) + newline
    The broker's own keys live under <dir>/broker/ in the same layout.
    A key set loaded without private parts (public files only) can verify, seal
    and be used as a CURVE server key, but not sign or open.

    Thread-safety: a key set is immutable after creation; every accessor below
    may be called from any thread. Functions touching files are safe for
    distinct directories. Ownership: accessors return pointers INTO the key set,
    valid until pt_keyset_destroy; never free them.
*/
#ifndef PT_KEYS_H
#define PT_KEYS_H

#include "pt_crypto.h"

#define PT_ORG_ID_MAX 32
#define PT_CURVE_KEY_BYTES 32
#define PT_Z85_KEY_CHARS 40

typedef struct _pt_keyset_t pt_keyset_t;

/* 1 if id is a valid organisation id: 2 uppercase letters, '-', then 1-28 of
   [A-Z0-9-] (e.g. MX-DIF, XI-ISS), or the reserved ids "broker" and "operator";
   0 otherwise (NULL included). Thread-safe. */
int pt_org_id_valid(const char *id);

/* Generates all three key pairs (Ed25519, X25519, CURVE) for org_id (copied).
   Returns a new key set (caller destroys with pt_keyset_destroy); NULL on an
   invalid org_id or a library failure. Thread-safe. */
pt_keyset_t *pt_keyset_generate(const char *org_id);

/* Writes the key set under dir/<org>/ (creating it, mode 0700), durably.
   Refuses (-1, errno EEXIST) to overwrite an existing key set; -1 with errno on
   any other failure (a set without private parts cannot be saved). 0 on success. */
int pt_keyset_save(const pt_keyset_t *keys, const char *dir);

/* Loads dir/<org_id>/. With need_private, all private files must exist and be
   mode 0600 or stricter; otherwise only the .pub files are read. NULL on failure;
   if errmsg is not NULL it receives a reason (no personal data) for the user.
   Returns a new key set (caller destroys with pt_keyset_destroy). */
pt_keyset_t *pt_keyset_load(const char *dir, const char *org_id, int need_private, char *errmsg,
                            size_t errmsg_len);

/* Builds a public-only key set from raw public keys (as in a directory entry);
   everything is copied. Returns a new key set (caller destroys), NULL on an
   invalid org_id, an invalid key or out of memory. Thread-safe. */
pt_keyset_t *pt_keyset_from_public(const char *org_id, const uint8_t sign_public[32],
                                   const uint8_t seal_public[32], const uint8_t curve_public[32]);

/* The organisation id of the set (owned by the set). Never NULL. Thread-safe. */
const char *pt_keyset_org(const pt_keyset_t *keys);

/* The Ed25519 signing key (owned by the set; public-only when the set is).
   Never NULL. Thread-safe. */
const pt_sign_key_t *pt_keyset_sign(const pt_keyset_t *keys);

/* The X25519 sealing key (owned by the set; public-only when the set is).
   Never NULL. Thread-safe. */
const pt_seal_key_t *pt_keyset_seal(const pt_keyset_t *keys);

/* The raw 32-byte CURVE public key (owned by the set). Thread-safe. */
const uint8_t *pt_keyset_curve_public(const pt_keyset_t *keys);

/* The CURVE public key in Z85 (40 characters + NUL; owned by the set), as
   zmq_setsockopt(ZMQ_CURVE_PUBLICKEY / ZMQ_CURVE_SERVERKEY) takes it.
   Thread-safe. */
const char *pt_keyset_curve_public_z85(const pt_keyset_t *keys);

/* The CURVE secret key in Z85 (owned by the set), or "" when the set has no
   private part. Secret: never log it. Thread-safe. */
const char *pt_keyset_curve_secret_z85(const pt_keyset_t *keys);

/* Frees the set and its keys, clearing the secret parts in memory. No-op on
   NULL or *self_p NULL; sets *self_p to NULL. Pointers obtained from the
   accessors become invalid. Not while another thread uses the set. */
void pt_keyset_destroy(pt_keyset_t **self_p);

/* --- former key sets (issue 6: `puente key rotate` / `puente key install`) ------
   After a rotation an organisation keeps its former key sets under
       <dir>/<ORG>/retired/<NAME>/   (same six files; NAME: the first 16 hex digits
                                      of the former signing key id)
   so that messages sealed to a former sealing key can still be opened. */

/* Loads the private sealing key (seal.key, mode 0600 or stricter) of every
   <dir>/<org_id>/retired/<NAME>/. *keys_p (caller frees each with
   pt_seal_key_destroy, then the array) holds *n_p keys; no retired/ directory or a
   NAME without seal.key adds none. 0, or -1 with errmsg (a key file that is not
   private or does not load; nothing to free then). Thread-safe for distinct
   directories. Cost: one directory scan. */
int pt_keyset_load_retired_seal(const char *dir, const char *org_id, pt_seal_key_t ***keys_p,
                                size_t *n_p, char *errmsg, size_t errmsg_len);

/* Installs the key set from_dir/<org_id>/ (all six files, checked as by
   pt_keyset_load with need_private) as dir/<org_id>/: the current files, if any,
   first move to dir/<org_id>/retired/<NAME>/ (rename, then fsync of both
   directories), then the new set is written durably (pt_keyset_save). On failure
   after the move the former files are moved back. retired_name (may be NULL,
   at least 17 bytes) receives NAME, or "" when there was no current set. 0, or -1
   with errmsg. Not safe against a concurrent install into the same directory
   (one administrator at a time). */
int pt_keyset_install(const char *dir, const char *org_id, const char *from_dir,
                      char *retired_name, char *errmsg, size_t errmsg_len);

#endif

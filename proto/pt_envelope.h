/*  pt_envelope — build, seal, sign, check, open and verify Puente envelopes.

    Sender:   pt_envelope_seal() serialises the header once, signs those bytes,
              signs and seals the payload body to each recipient.
    Broker:   pt_envelope_check() (structure and digests, no keys) then
              pt_envelope_verify_header() with the sender's public key.
    Recipient: pt_envelope_open() finds its sealed payload, decrypts, checks the
              digest in the header and the sender's payload signature.

    Contexts bound into the seal: HKDF info = "puente.v1 seal" || message_id ||
    recipient id; AAD = message_id || recipient key id. A payload sealed for one
    message or recipient cannot be moved to another.
*/
#ifndef PT_ENVELOPE_H
#define PT_ENVELOPE_H

#include "pt_crypto.h"
#include "envelope.pb-c.h"

#define PT_SCHEMA_VERSION 1

/* Limits pt_envelope_check enforces on what it decodes (hostile input). */
#define PT_ENV_MAX_HEADER_BYTES 65536 /* serialised header */
#define PT_ENV_MAX_RECIPIENTS 64      /* recipients, payloads, withhold_from entries */
#define PT_ENV_MAX_STRING_BYTES 256   /* any string field of the header */

/* Result codes; the broker maps them to RejectCode values. */
typedef enum {
    PT_ENV_OK = 0,
    PT_ENV_MALFORMED = -1,        /* header bytes do not decode, or counts/sizes out of range */
    PT_ENV_BAD_SIGNATURE = -2,    /* header or payload signature invalid */
    PT_ENV_PAYLOAD_MISMATCH = -3, /* digests/recipients inconsistent with the sealed payloads */
    PT_ENV_NOT_FOR_ME = -4,       /* no sealed payload for this recipient */
    PT_ENV_OPEN_FAILED = -5,      /* decryption failed (wrong key or tampered) */
    PT_ENV_INTERNAL = -6          /* allocation or crypto library failure */
} pt_env_result_t;

/* Seals body to every recipient and signs. header is a template the caller filled
   (message_id, types, sender, recipients, times, consent...); this function sets
   payload_sha256, sender_key_id and schema_version on a copy, never on the caller's
   struct. recipients[i] must be the sealing key of header->recipients[i].
   On success *out_p (caller frees) holds the packed Envelope. */
pt_env_result_t pt_envelope_seal(const Puente__V1__Header *header, const uint8_t *body,
                                 size_t body_len, const pt_sign_key_t *sender,
                                 const pt_seal_key_t *const *recipients, size_t n_recipients,
                                 uint8_t **out_p, size_t *out_len);

/* Decodes env->header (bounded) and checks structure: ids are 16 bytes,
   one sealed payload per recipient in the same order with matching names, each
   payload digest equals SHA-256 of that SealedPayload's packed bytes, sizes of
   keys/nonces are right. MALFORMED: header over PT_ENV_MAX_HEADER_BYTES or not
   decodable (including invalid UTF-8), message/correlation id not 16 bytes,
   causation id not 0 or 16, sender key id not 32, schema_version not
   PT_SCHEMA_VERSION, 0 or more than PT_ENV_MAX_RECIPIENTS recipients, a string
   over PT_ENV_MAX_STRING_BYTES, sender or a recipient not a valid organisation id
   (pt_org_id_valid), a recipient listed twice, a string that is not valid UTF-8
   (protobuf-c 1.4 does not check), or bytes that protobuf-c would not pack to the
   same length (embedded NUL in a string, a duplicated field: the decoded header
   would not say what the signed bytes say). PAYLOAD_MISMATCH: counts of
   payloads, digests and recipients differ, names differ in order, wrong sizes of
   key id (32), ephemeral key (32), nonce (12), ciphertext shorter than 16, or a
   digest differs. No keys are needed; cost O(size of the envelope). On success *header_p (caller frees with
   puente__v1__header__free_unpacked(h, NULL)) holds the decoded header. */
pt_env_result_t pt_envelope_check(const Puente__V1__Envelope *env, Puente__V1__Header **header_p);

/* Verifies env->header_signature with the sender's public key. */
pt_env_result_t pt_envelope_verify_header(const Puente__V1__Envelope *env,
                                          const pt_sign_key_t *sender);

/* Opens the payload addressed to me. header must come from pt_envelope_check on
   the same envelope (the digest of my payload is checked again anyway).
   NOT_FOR_ME if me is not a recipient; OPEN_FAILED if the payload was sealed to
   another key id than my_key's or does not decrypt; MALFORMED if the decrypted
   SignedPayload does not decode; BAD_SIGNATURE if the payload signature over
   message_id || body does not verify with sender.
   On success *body_p (caller frees) holds the family message bytes. */
pt_env_result_t pt_envelope_open(const Puente__V1__Envelope *env, const Puente__V1__Header *header,
                                 const char *me, const pt_seal_key_t *my_key,
                                 const pt_sign_key_t *sender, uint8_t **body_p, size_t *body_len);

/* Human-readable name of a result code. */
const char *pt_env_result_str(pt_env_result_t r);

/* 1 if s[0..len) is strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
   nothing past U+10FFFF), else 0. protobuf-c does not check proto3 strings. O(len). */
int pt_utf8_valid(const uint8_t *s, size_t len);

#endif

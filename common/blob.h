/* Wrapped private key, format version 1 (docs/keys.md, "Wrapped blob, format version 1").
 *
 *   0   4  magic "ICDW"            24  2  export count (big-endian)
 *   4   1  version 01              26 65  bound only: source ephemeral public point
 *   5   1  key type 01 (P-256)     26|91  12  GCM nonce
 *   6   1  key reference 01        38|103 32  ciphertext of the private scalar
 *   7   1  attributes: bit 0 bound 70|135 16  GCM tag
 *   8   8  KCV of the key group
 *   16  8  source card serial
 *
 *   Z  = bound ? ECDH(source ephemeral private, destination binding point).x : empty
 *   WK = HKDF-SHA-256(salt = Z, IKM = KEK, info = "icdup wrap v1", 32)
 *   ciphertext || tag = AES-256-GCM(WK, nonce, additional data = header, scalar)
 * The header (everything before the ciphertext) is the additional data: any changed bit fails
 * the tag. Shared by the card core and the host tools; secrets are wiped on every path. */
#ifndef BLOB_H
#define BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOB_LEN_UNBOUND 86
#define BLOB_LEN_BOUND 151
#define BLOB_MAX_LEN 151

#define BLOB_VERSION 0x01u
#define BLOB_KEY_TYPE_EC_P256 0x01u
#define BLOB_KEY_REF 0x01u
#define BLOB_ATTR_BOUND 0x01u /* the only defined attribute bit */

struct blob_header {
    uint8_t version, key_type, key_ref, attrs;
    uint8_t kcv[8];
    uint8_t src_serial[8];
    uint16_t export_count;
    bool bound;
    uint8_t src_eph_pub[65]; /* bound only; all zero when unbound */
    uint8_t nonce[12];
};

/* Deterministic core of the export (the caller draws nonce and ephemeral key): wraps scalar
 * under kek into out. h gives version, key type, key reference, attrs (must be BLOB_VERSION,
 * BLOB_KEY_TYPE_EC_P256, BLOB_KEY_REF, and BLOB_ATTR_BOUND exactly when h->bound), KCV, serial,
 * export count, bound and nonce; when bound, h->src_eph_pub is the public point of eph_priv
 * (ec_keygen gives both; it is not recomputed, so a mismatch makes a blob no card opens).
 * eph_priv and dst_bind_pub are required iff h->bound (NULL otherwise).
 * Returns CARD_OK with *out_len = 86 or 151 bytes written; CARD_E_WRONG_DATA when dst_bind_pub
 * is not a valid point or eph_priv not a valid scalar; CARD_E_INTERNAL for an inconsistent
 * header or arguments, cap too small, or an mbedtls failure (*out_len then 0, and the first
 * 86/151 bytes of out cleared when cap allowed writing them). */
int blob_wrap(const uint8_t kek[32], const struct blob_header *h, const uint8_t eph_priv[32],
              const uint8_t dst_bind_pub[65], const uint8_t scalar[32], uint8_t *out, size_t cap,
              size_t *out_len);

/* Parses a blob's header and checks magic, version, key type, key reference, attribute bits
 * and that len is 86 (unbound) or 151 (bound) as the bound bit says. No crypto: the KCV, the
 * ephemeral point and the tag are not checked. Returns CARD_OK with *h filled (src_eph_pub all
 * zero when unbound); CARD_E_WRONG_DATA for any malformed blob (*h then untouched). */
int blob_parse_header(const uint8_t *blob, size_t len, struct blob_header *h);

/* Opens a blob: parses it, for a bound blob computes Z = ECDH(bind_priv, h.src_eph_pub),
 * derives WK and decrypts and verifies with AES-256-GCM. bind_priv is required for a bound
 * blob and ignored for an unbound one; h may be NULL.
 * Returns CARD_OK with *h and scalar written; CARD_E_WRONG_DATA when the blob is malformed,
 * its ephemeral point invalid, or the tag fails (wrong KEK, wrong binding key, any changed
 * bit); CARD_E_INTERNAL for a bound blob without bind_priv or an mbedtls failure. On failure
 * scalar and *h are untouched. */
int blob_unwrap(const uint8_t kek[32], const uint8_t *bind_priv, const uint8_t *blob, size_t len,
                struct blob_header *h, uint8_t scalar[32]);

#endif

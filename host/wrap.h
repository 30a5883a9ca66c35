/* Approval station (SPEC §3, docs/clone.md "Approval station: loading an external key"): a
 * P-256 private key generated outside any card is loaded through the same wrapped-import path
 * as a clone. The terminal, which knows all N shares of the key group, derives the KEK and KCV
 * (common/kek.c) and wraps the key into an UNBOUND blob of format 1 (common/blob.c, docs/keys.md)
 * with source serial all zero and export count 0; IMPORT WRAPPED on any card of that group
 * takes it and records origin "external" (03) under the group's KCV.
 *
 * Nothing here prints. Messages never contain key or share bytes; the private scalar, the KEK
 * and every buffer that held key text are wiped on every path. */
#ifndef WRAP_H
#define WRAP_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "secrets.h"

#define WRAP_KEY_FILE_MAX 16384u /* longest key file accepted */

enum wrap_err {
    WRAP_OK = 0,
    WRAP_E_SHARES = -1, /* no share, or the share lines are not share.1 .. share.N */
    WRAP_E_KEY = -2,    /* the key: unreadable file, not P-256, malformed, invalid scalar */
    WRAP_E_RNG = -3,    /* the random generator could not be seeded or failed */
    WRAP_E_CRYPTO = -4, /* KEK derivation or wrapping failed (mbedtls) */
};

/* The share count N of s: share.1 .. share.N are present and no other. source names s in
 * messages ("secrets file shares.txt", "standard input"). Returns N (1..8), or 0 with a
 * message in err (no share at all; a gap: "... has shares 1 and 3: share 2 is missing ..."). */
unsigned wrap_share_count(const struct secrets *s, const char *source, char *err,
                          size_t errlen);

/* Decodes a private key from the len bytes of a key file (need not be NUL-terminated):
 *   - 64 hex digits (blanks and newlines around them allowed), the big-endian scalar; or
 *   - a PEM or DER private key that mbedtls' pk parser takes (SEC1 "EC PRIVATE KEY" or
 *     PKCS#8 "PRIVATE KEY", unencrypted) on the curve P-256 (secp256r1, prime256v1).
 * The scalar must be valid (1 <= d < n); a public key stored with it must be d * G.
 * source names the key in messages ("key file k.pem"). Returns WRAP_OK with priv written, or
 * WRAP_E_KEY with a message in err saying what is wrong (another key type or curve, encrypted,
 * not a key, wrong length); priv is then untouched. */
int wrap_parse_key(const uint8_t *data, size_t len, const char *source, uint8_t priv[32],
                   char *err, size_t errlen);

/* Reads a key file and decodes it with wrap_parse_key. Like a secrets file, it must be a
 * regular file not accessible by group or others (mode & 077 == 0) and at most
 * WRAP_KEY_FILE_MAX bytes. Returns WRAP_OK with priv written, or WRAP_E_KEY with a message in
 * err naming the file. */
int wrap_load_key(const char *path, uint8_t priv[32], char *err, size_t errlen);

struct wrap_result {
    unsigned n;                       /* shares in the key group */
    uint8_t kcv[8];                   /* the group's KCV: the card's DF10 must show the same */
    uint8_t pub[65];                  /* the public point of the wrapped key */
    uint8_t blob[BLOB_LEN_UNBOUND];   /* unbound, source serial zero, export count 0 */
    size_t blob_len;                  /* BLOB_LEN_UNBOUND */
};

/* Wraps priv under the KEK of all the shares of s (N = wrap_share_count(s)), with a random
 * GCM nonce from a CTR-DRBG seeded from getrandom (host/rng.h). source names s in messages.
 * Returns WRAP_OK with r filled; or WRAP_E_SHARES, WRAP_E_KEY (priv is not a valid scalar),
 * WRAP_E_RNG or WRAP_E_CRYPTO with a message in err, r then all zero. */
int wrap_key(const struct secrets *s, const char *source, const uint8_t priv[32],
             struct wrap_result *r, char *err, size_t errlen);

#endif

/* Key-group KEK and its check value (docs/keys.md, "KEK and KCV"):
 *   IKM = share_1 || ... || share_N
 *   PRK = HKDF-Extract(SHA-256, salt = "icdup key group v1", IKM)
 *   KEK = HKDF-Expand(SHA-256, PRK, info = "icdup kek" || N, 32)
 *   KCV = HMAC-SHA-256(KEK, "icdup kcv v1")[0..8)
 * Shared by the card core and the host tools; intermediates are wiped on every path. */
#ifndef KEK_H
#define KEK_H

#include <stddef.h>
#include <stdint.h>

#define KEK_LEN 32u
#define KEK_SHARE_LEN 32u
#define KEK_MAX_SHARES 8u
#define KEK_KCV_LEN 8u

/* Derives the KEK of n shares, in index order (shares[0] is share 1). Returns CARD_OK with kek
 * written; CARD_E_INTERNAL when n is not 1..8 or mbedtls fails (kek then untouched). */
int kek_derive(const uint8_t (*shares)[32], unsigned n, uint8_t kek[32]);

/* Computes the public key check value of a KEK. Returns CARD_OK with kcv written;
 * CARD_E_INTERNAL when mbedtls fails (kcv then untouched). */
int kek_kcv(const uint8_t kek[32], uint8_t kcv[8]);

#endif

/* EC P-256 helpers over mbedtls, shared by the card core and the host tools.
 * Private keys are 32-byte big-endian scalars (1 <= d < n); public points are the 65-byte
 * uncompressed encoding 04 || X || Y. Only that form is accepted: compressed (02/03), hybrid
 * (06/07) and the point at infinity (00) are rejected. Every function returns a card_err code
 * (card/core/card_err.h) and wipes its secret intermediates on all paths.
 *
 * Side-channel blinding: mbedtls_ecp_mul randomizes its intermediate results with an f_rng.
 * ec_public_from_private and ec_ecdh have no random source in their signature, so they use a
 * private, deterministic generator: SHA-256 in counter mode, seeded with
 * SHA-256("icdup ec blinding v1" || priv || peer point). Blinding values need only be
 * unpredictable to someone who does not know the private key, which this gives. NULL is not
 * passed: mbedtls 2.28 would then fall back to an internal generator seeded from the scalar,
 * but a firmware build with MBEDTLS_ECP_NO_INTERNAL_RNG would silently run unblinded. The
 * generator needs only mbedtls' SHA-256 (no DRBG module, no heap). ec_keygen blinds with the
 * caller's generator. */
#ifndef EC_H
#define EC_H

#include <stddef.h>
#include <stdint.h>

#define EC_P256_PRIV_LEN 32u
#define EC_P256_POINT_LEN 65u
#define EC_P256_X_LEN 32u

/* Generates a key pair with the caller's random generator (mbedtls f_rng convention: 0 on
 * success). Returns CARD_OK with priv and pub written; CARD_E_RNG when f_rng failed,
 * CARD_E_INTERNAL on any other failure (priv and pub then all zero). */
int ec_keygen(int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
              uint8_t priv[32], uint8_t pub[65]);

/* Computes the public point of a private scalar. Returns CARD_OK with pub written;
 * CARD_E_WRONG_DATA when priv is not a valid scalar (0 or >= the group order),
 * CARD_E_INTERNAL on any other failure (pub then untouched). */
int ec_public_from_private(const uint8_t priv[32], uint8_t pub[65]);

/* ECDH: the X coordinate of priv * peer_pub. Returns CARD_OK with shared_x written;
 * CARD_E_WRONG_DATA when peer_pub is not a valid uncompressed point of the curve (wrong prefix,
 * coordinate >= p, off the curve) or priv is not a valid scalar; CARD_E_INTERNAL on any other
 * failure. shared_x is written only on success. */
int ec_ecdh(const uint8_t priv[32], const uint8_t peer_pub[65], uint8_t shared_x[32]);

/* Validates a public point. Returns CARD_OK when pub is 04 || X || Y with X, Y < p on the
 * curve (not the point at infinity); CARD_E_WRONG_DATA otherwise; CARD_E_INTERNAL when
 * mbedtls failed for another reason (memory). */
int ec_check_point(const uint8_t pub[65]);

#endif

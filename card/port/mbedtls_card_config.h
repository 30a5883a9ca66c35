/* mbedtls configuration of the card firmware: only what the card core uses (SHA-256, HKDF,
 * HMAC, AES-GCM, P-256 ECDH and key generation, CTR-DRBG), a static buffer instead of a heap,
 * and no OS services (no threads, no file system, no time, no entropy module: the card seeds
 * its DRBG from the HAL random source). Host ports use Debian's library and its own config. */
#ifndef MBEDTLS_CARD_CONFIG_H
#define MBEDTLS_CARD_CONFIG_H

/* System support */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
/* The static buffer's allocator calls mbedtls_exit on a corrupt free list: no exit() on a card,
 * the core traps (the firmware's fault handler parks it; the terminal sees a mute card). */
#define MBEDTLS_PLATFORM_EXIT_MACRO(status) ((void)(status), __builtin_trap())

/* Symmetric: AES-256-GCM */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_CIPHER_C
#define MBEDTLS_GCM_C

/* Hashes and key derivation */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_HKDF_C

/* Random: CTR-DRBG seeded by the card */
#define MBEDTLS_CTR_DRBG_C

/* P-256 */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_MPI_MAX_SIZE 48

#include "mbedtls/check_config.h"

#endif

/* The host tools' random source: an mbedtls CTR-DRBG seeded from the kernel (getrandom).
 * Used wherever the host makes keys or nonces (ephemeral ECDH keys, content keys, file ids). */
#ifndef RNG_H
#define RNG_H

#include <stddef.h>

#include <mbedtls/ctr_drbg.h>

/* mbedtls entropy callback over getrandom(2) (blocking until the kernel pool is initialized,
 * retried on EINTR). Returns 0, or MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED. */
int rng_getrandom(void *ctx, unsigned char *buf, size_t len);

/* Initializes and seeds drbg from rng_getrandom with the personalization string pers (may be
 * NULL). Returns 0, or -1 (the DRBG is then freed; mbedtls_ctr_drbg_free on it stays safe).
 * The caller frees it with mbedtls_ctr_drbg_free, which wipes its state. */
int rng_drbg_seed(mbedtls_ctr_drbg_context *drbg, const char *pers);

#endif

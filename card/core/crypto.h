/* The card's random generator for mbedtls, and the mbedtls heap of firmware builds.
 * This header includes mbedtls headers: only card/core/cmd_keys.c (and tests) include it, never
 * card.h. Usage: crypto_rng_init, then crypto_rng_fill as the f_rng of mbedtls calls (p_rng =
 * the struct crypto_rng), then crypto_rng_free on every path (also after a failed init). */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/ctr_drbg.h>

#include "hal_rng.h"

/* Bytes of the static buffer mbedtls allocates from on a firmware build (see
 * crypto_platform_init). The most a card operation uses with the card's mbedtls configuration
 * (P-256, comb window 2) is about 2.9 KiB, measured by bench/bench_fw.c; every operation frees
 * all it took, so nothing fragments across commands. A port may override it with -D (a larger
 * MBEDTLS_ECP_WINDOW_SIZE needs more). */
#ifndef CARD_MBEDTLS_HEAP
#define CARD_MBEDTLS_HEAP 4096
#endif

/* A CTR-DRBG (AES-256) seeded from the platform's random source. */
struct crypto_rng {
    mbedtls_ctr_drbg_context drbg;
    const struct hal_rng *hal; /* entropy source; must outlive the generator */
    bool seeded;
};

/* Seeds r from hal through a custom entropy callback (no mbedtls entropy module, no OS calls);
 * hal->fill is asked for the DRBG's entropy and nonce bytes. Returns CARD_OK when r is ready;
 * CARD_E_RNG when hal is missing or its fill failed, CARD_E_INTERNAL when r is NULL. Call
 * crypto_rng_free afterwards in both cases. */
int crypto_rng_init(struct crypto_rng *r, const struct hal_rng *hal);

/* mbedtls f_rng: fills out with len bytes of the generator p_rng (a struct crypto_rng *), in
 * chunks of at most MBEDTLS_CTR_DRBG_MAX_REQUEST. Returns 0 on success; CARD_E_RNG (negative)
 * when the generator is not seeded or a reseed from the HAL failed (out then wiped). */
int crypto_rng_fill(void *p_rng, unsigned char *out, size_t len);

/* Wipes the generator's state; r may be NULL. Returns nothing; it cannot fail. */
void crypto_rng_free(struct crypto_rng *r);

/* Gives mbedtls its heap. When the mbedtls configuration has MBEDTLS_MEMORY_BUFFER_ALLOC_C (a
 * firmware build), the first call hands a static buffer of CARD_MBEDTLS_HEAP bytes to
 * mbedtls_memory_buffer_alloc_init, and later calls do nothing. Otherwise (host ports: the
 * simulator, the tests, the host tools; Debian's library has no buffer allocator) mbedtls uses
 * the platform allocator and this does nothing. Call it once at start-up, before any crypto.
 * Returns nothing; it cannot fail. */
void crypto_platform_init(void);

/* The firmware's mbedtls heap: its size in bytes, and the most of it ever in use since
 * crypto_platform_init (block headers and fragmentation included; measured by painting the
 * free space). Both 0 on host ports. */
size_t crypto_heap_size(void);
size_t crypto_heap_peak(void);

#endif

/* The card's CTR-DRBG over the HAL random source, and the firmware's static mbedtls heap.
 * See crypto.h. */
#include "crypto.h"

#include <string.h>

#include <mbedtls/platform_util.h>
#if defined(MBEDTLS_MEMORY_BUFFER_ALLOC_C)
#include <mbedtls/memory_buffer_alloc.h>
#endif

#include "card_err.h"

/* Personalization string of the card's DRBG (domain separation from other users of the HAL). */
static const unsigned char crypto_pers[] = "icdup card drbg v1";

/* mbedtls entropy callback: the HAL random source, nothing else. */
static int crypto_entropy(void *p, unsigned char *buf, size_t len)
{
    const struct hal_rng *hal = p;
    if (hal->fill(hal->ctx, buf, len) != 0) {
        mbedtls_platform_zeroize(buf, len);
        return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
    }
    return 0;
}

int crypto_rng_init(struct crypto_rng *r, const struct hal_rng *hal)
{
    if (r == NULL)
        return CARD_E_INTERNAL;
    mbedtls_ctr_drbg_init(&r->drbg);
    r->hal = hal;
    r->seeded = false;
    if (hal == NULL || hal->fill == NULL)
        return CARD_E_RNG;
    int ret = mbedtls_ctr_drbg_seed(&r->drbg, crypto_entropy, (void *)hal, crypto_pers,
                                    sizeof crypto_pers - 1);
    if (ret != 0)
        return CARD_E_RNG;
    r->seeded = true;
    return CARD_OK;
}

int crypto_rng_fill(void *p_rng, unsigned char *out, size_t len)
{
    struct crypto_rng *r = p_rng;
    if (len == 0)
        return 0;
    if (r == NULL || !r->seeded || out == NULL)
        return CARD_E_RNG;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done;
        if (n > MBEDTLS_CTR_DRBG_MAX_REQUEST)
            n = MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&r->drbg, out + done, n) != 0) {
            mbedtls_platform_zeroize(out, len);
            return CARD_E_RNG;
        }
        done += n;
    }
    return 0;
}

void crypto_rng_free(struct crypto_rng *r)
{
    if (r == NULL)
        return;
    mbedtls_ctr_drbg_free(&r->drbg); /* zeroizes the DRBG state */
    r->hal = NULL;
    r->seeded = false;
}

#if defined(MBEDTLS_MEMORY_BUFFER_ALLOC_C)
/* The firmware's only mutable globals of this module: mbedtls' heap and its once-flag. */
static unsigned char crypto_heap[CARD_MBEDTLS_HEAP];
static bool crypto_heap_ready;

/* High-water mark by painting: after mbedtls_memory_buffer_alloc_init (which zeroes the buffer
 * and writes one block header at its start) the free space is filled with a pattern. The
 * allocator never reads free space, calloc zeroes what it hands out and every split writes a
 * header, so the last byte that no longer holds the pattern ends the most ever used. The first
 * CRYPTO_HEAP_HEAD bytes are left alone: they hold the allocator's header (32 bytes on a 32-bit
 * core). */
#define CRYPTO_HEAP_PAINT 0xA5u
#define CRYPTO_HEAP_HEAD 64u

void crypto_platform_init(void)
{
    if (crypto_heap_ready)
        return;
    mbedtls_memory_buffer_alloc_init(crypto_heap, sizeof crypto_heap);
    memset(crypto_heap + CRYPTO_HEAP_HEAD, CRYPTO_HEAP_PAINT,
           sizeof crypto_heap - CRYPTO_HEAP_HEAD);
    crypto_heap_ready = true;
}

size_t crypto_heap_size(void)
{
    return sizeof crypto_heap;
}

size_t crypto_heap_peak(void)
{
    size_t n = sizeof crypto_heap;
    while (n > CRYPTO_HEAP_HEAD && crypto_heap[n - 1] == CRYPTO_HEAP_PAINT)
        n--;
    return n;
}
#else
void crypto_platform_init(void)
{
    /* Host port: mbedtls uses the platform's calloc/free. */
}

size_t crypto_heap_size(void)
{
    return 0;
}

size_t crypto_heap_peak(void)
{
    return 0;
}
#endif

#include "rng.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

int rng_getrandom(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    size_t off = 0;
    while (off < len) {
        ssize_t n = getrandom(buf + off, len - off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        off += (size_t)n;
    }
    return 0;
}

int rng_drbg_seed(mbedtls_ctr_drbg_context *drbg, const char *pers)
{
    mbedtls_ctr_drbg_init(drbg);
    size_t plen = pers != NULL ? strlen(pers) : 0;
    if (mbedtls_ctr_drbg_seed(drbg, rng_getrandom, NULL, (const unsigned char *)pers, plen) !=
        0) {
        mbedtls_ctr_drbg_free(drbg);
        mbedtls_ctr_drbg_init(drbg);
        return -1;
    }
    return 0;
}

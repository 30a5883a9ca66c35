/* Random source: a true or well-seeded random generator of the platform. */
#ifndef HAL_RNG_H
#define HAL_RNG_H

#include <stddef.h>
#include <stdint.h>

struct hal_rng {
    /* Fills buf with len random bytes. Returns 0, or a negative card_err when no entropy. */
    int (*fill)(void *ctx, uint8_t *buf, size_t len);
    void *ctx;
};

#endif

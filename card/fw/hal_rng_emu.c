/* Random source of the EMULATOR BUILD ONLY. NOT A TRUE RANDOM NUMBER GENERATOR.
 *
 * QEMU's mps2-an386 has no TRNG. This source is a SHA-256 hash chain over a FIXED seed, stirred
 * with what little varies between runs: the SysTick counter and the number of busy-poll
 * iterations the UART driver spent waiting for each frame from the host (host scheduling
 * jitter). Against anyone who can replay the host's timing it is predictable, and the first
 * bytes drawn after boot (before any frame arrived) are the same on every run. Keys generated
 * by this build are test keys: never use the emulator image for real secrets.
 *
 * The build refuses to compile this file unless ICDUP_FW_EMULATOR_RNG is defined (the Makefile's
 * firmware target defines it and names the image an emulator image in docs/firmware.md). A real
 * board provides hal_rng over its TRNG instead (docs/firmware.md, porting guide). */
#ifndef ICDUP_FW_EMULATOR_RNG
#error "hal_rng_emu.c is the emulator's NON-RANDOM source: a real board needs a TRNG driver"
#endif

#include <string.h>

#include <mbedtls/sha256.h>

#include "card_err.h"
#include "fw.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint8_t rng_pool[32];
static uint32_t rng_counter;

static const char rng_label[] = "icdup EMULATOR-ONLY deterministic rng v1 (NOT RANDOM)";

static void rng_hash(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    (void)mbedtls_sha256_starts_ret(&c, 0);
    (void)mbedtls_sha256_update_ret(&c, a, alen);
    (void)mbedtls_sha256_update_ret(&c, b, blen);
    (void)mbedtls_sha256_finish_ret(&c, out);
    mbedtls_sha256_free(&c);
}

void fw_rng_init(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 0x5u; /* processor clock, no interrupt, enabled */
    rng_hash(rng_label, sizeof rng_label - 1, "", 0, rng_pool);
    fw_rng_stir();
}

void fw_rng_stir(void)
{
    uint32_t s[3] = { SYST_CVR, fw_uart_polls, rng_counter };
    rng_hash(rng_pool, sizeof rng_pool, s, sizeof s, rng_pool);
}

static int fw_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    fw_rng_stir();
    while (len > 0) {
        uint8_t block[32];
        uint32_t ctr = ++rng_counter;
        rng_hash(rng_pool, sizeof rng_pool, &ctr, sizeof ctr, block);
        size_t n = len < sizeof block ? len : sizeof block;
        memcpy(buf, block, n);
        buf += n;
        len -= n;
    }
    /* Step the pool so earlier outputs cannot be recomputed from a later state. */
    rng_hash(rng_pool, sizeof rng_pool, "next", 4, rng_pool);
    return 0;
}

const struct hal_rng fw_rng = { fw_rng_fill, 0 };

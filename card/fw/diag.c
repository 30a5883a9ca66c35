/* The firmware's measurements, answered to the vendor control FW_CTL_STATS of the framing (see
 * main.c and docs/firmware.md): the timer ticks and the number of card operations since the
 * previous report, and the high-water marks of the stack and of mbedtls' heap. They cost one painted stack at boot and
 * two timer reads per command; nothing here reads or reports card data. */
#include "fw.h"

#include "crypto.h"

extern uint32_t __stack_limit, __stack_top;

/* The stack is painted below the running frame at boot; the lowest word that lost the pattern
 * is as deep as the stack ever went. */
#define DIAG_STACK_PAINT 0x5AC3A5C3u
/* Words left unpainted just below the current stack pointer: fw_diag_init's own frame. */
#define DIAG_STACK_SLACK 16u

static uint32_t diag_t0;
static uint32_t diag_ticks; /* since the last report */
static uint32_t diag_ops;

void fw_diag_init(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *w = &__stack_limit; w < sp - DIAG_STACK_SLACK; w++)
        *w = DIAG_STACK_PAINT;
}

void fw_diag_begin(void)
{
    diag_t0 = fw_timer_ticks();
}

void fw_diag_end(void)
{
    diag_ticks += fw_timer_ticks() - diag_t0;
    diag_ops++;
}

static size_t diag_stack_peak(void)
{
    const uint32_t *w = &__stack_limit;
    while (w < &__stack_top && *w == DIAG_STACK_PAINT)
        w++;
    return (size_t)((const uint8_t *)&__stack_top - (const uint8_t *)w);
}

static uint8_t *diag_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

size_t fw_diag_report(uint8_t out[FW_DIAG_REPORT_LEN])
{
    uint8_t *p = out;
    *p++ = FW_DIAG_VERSION;
    p = diag_put32(p, FW_PCLK_HZ);
    p = diag_put32(p, diag_ticks);
    p = diag_put32(p, diag_ops);
    p = diag_put32(p, (uint32_t)diag_stack_peak());
    p = diag_put32(p, (uint32_t)((const uint8_t *)&__stack_top - (const uint8_t *)&__stack_limit));
    p = diag_put32(p, (uint32_t)crypto_heap_peak());
    p = diag_put32(p, (uint32_t)crypto_heap_size());
    diag_ticks = 0;
    diag_ops = 0;
    return (size_t)(p - out);
}

/* Polled driver of the CMSDK APB timer (ARM Cortex-M System Design Kit), TIMER0 of the MPS2
 * boards at 0x40000000, clocked by PCLK. Registers (32-bit): CTRL 0x00 (bit 0 enable, bit 3
 * interrupt enable), VALUE 0x04 (counts down), RELOAD 0x08 (loaded when VALUE reaches 0).
 * Used as a free-running 32-bit counter to time card operations (fw_diag.c): under QEMU with
 * -icount shift=0 every instruction takes 1 ns of virtual time, so a tick of a 25 MHz PCLK is
 * 40 instructions. */
#include "fw.h"

#define TIMER_CTRL   0x00u
#define TIMER_VALUE  0x04u
#define TIMER_RELOAD 0x08u
#define CTRL_ENABLE  0x1u

static uintptr_t timer_base;

static inline volatile uint32_t *timer_reg(uint32_t off)
{
    return (volatile uint32_t *)(timer_base + off);
}

void fw_timer_init(uintptr_t base)
{
    timer_base = base;
    *timer_reg(TIMER_CTRL) = 0;
    *timer_reg(TIMER_RELOAD) = 0xFFFFFFFFu;
    *timer_reg(TIMER_VALUE) = 0xFFFFFFFFu;
    *timer_reg(TIMER_CTRL) = CTRL_ENABLE; /* no interrupt: read, never waited on */
}

uint32_t fw_timer_ticks(void)
{
    /* A down counter: its complement counts up, and differences wrap correctly mod 2^32. */
    return ~*timer_reg(TIMER_VALUE);
}

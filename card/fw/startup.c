/* Reset handler and vector table of the card firmware (Cortex-M4, ARMv7-M).
 * The core loads SP from word 0 and PC from word 1 of the table at 0x00000000 (the linker script
 * places .vectors first in FLASH). Reset copies .data from its load address in FLASH, zeroes
 * .bss and calls main; every fault or unexpected interrupt parks the core in a loop (the host
 * sees the card stop answering and times out). */
#include <stdint.h>
#include <string.h>

#include "fw.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;

int main(void);
void fw_reset_handler(void);
void fw_default_handler(void);

void fw_default_handler(void)
{
    for (;;) {
    }
}

void fw_reset_handler(void)
{
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;)
        *dst++ = *src++;
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;)
        *dst++ = 0;
    (void)main();
    fw_default_handler();
}

/* 16 system exceptions of ARMv7-M; the card uses no interrupt (the UART is polled). */
typedef void (*fw_vector)(void);
__attribute__((section(".vectors"), used))
const fw_vector fw_vectors[16] = {
    (fw_vector)(uintptr_t)&__stack_top, /* initial SP */
    fw_reset_handler,                   /* Reset */
    fw_default_handler,                 /* NMI */
    fw_default_handler,                 /* HardFault */
    fw_default_handler,                 /* MemManage */
    fw_default_handler,                 /* BusFault */
    fw_default_handler,                 /* UsageFault */
    0, 0, 0, 0,                         /* reserved */
    fw_default_handler,                 /* SVCall */
    fw_default_handler,                 /* DebugMonitor */
    0,                                  /* reserved */
    fw_default_handler,                 /* PendSV */
    fw_default_handler,                 /* SysTick */
};

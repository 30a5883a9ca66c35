/* The firmware port's own services (card/fw/): UART, timer, NVM and random source of the board,
 * the SysTick counter the emulator's random source samples, and the measurements. Not part of the portable core. */
#ifndef FW_H
#define FW_H

#include <stddef.h>
#include <stdint.h>

#include "hal_nvm.h"
#include "hal_rng.h"

/* CMSDK APB UART (ARM Cortex-M System Design Kit), polled, 8N1. */
void fw_uart_init(uintptr_t base, uint32_t pclk_hz, uint32_t baud);
uint8_t fw_uart_getc(void);
void fw_uart_putc(uint8_t c);
void fw_uart_read(uint8_t *buf, size_t len);
void fw_uart_write(const uint8_t *buf, size_t len);
/* Busy-poll iterations spent waiting for received bytes (host timing: jitter for the RNG). */
extern volatile uint32_t fw_uart_polls;
/* Bytes of the NVM region as linked. */
size_t fw_nvm_region_size(void);

#define FW_PCLK_HZ 25000000u /* MPS2 SYSCLK = PCLK: clocks the UART and the timer */

/* CMSDK APB timer as a free-running 32-bit up counter of PCLK ticks (timer_cmsdk.c). */
#define FW_TIMER0_BASE 0x40000000u
void fw_timer_init(uintptr_t base);
uint32_t fw_timer_ticks(void);

/* Measurements (diag.c): the stack is painted by fw_diag_init (first thing in main); begin/end
 * bracket one card operation. fw_diag_report writes FW_DIAG_REPORT_LEN bytes: version (1),
 * then big-endian 32-bit timer Hz, timer ticks and number of operations since the previous
 * report (both then restart from 0), stack peak, stack size, mbedtls heap peak, heap size
 * (bytes). */
#define FW_DIAG_VERSION 1u
#define FW_DIAG_REPORT_LEN 29u
void fw_diag_init(void);
void fw_diag_begin(void);
void fw_diag_end(void);
size_t fw_diag_report(uint8_t out[FW_DIAG_REPORT_LEN]);

/* Bytes of NVM: the LENGTH of the NVM region in icdup-card.ld (checked at boot). */
#define FW_NVM_SIZE 65536u

/* NVM over the linker script's NVM region (memory-mapped, byte-writable). */
extern const struct hal_nvm fw_nvm;
/* 1 when every NVM byte is 0x00 (fresh RAM / new backing file) or 0xFF (erased flash). */
int fw_nvm_blank(void);

/* Random source (see hal_rng_emu.c: EMULATOR ONLY, not a TRNG). */
extern const struct hal_rng fw_rng;
void fw_rng_init(void);
void fw_rng_stir(void); /* mixes the SysTick counter into the pool (called per frame) */

#endif

/* The firmware port's own services (card/fw/): UART, NVM and random source of the board, and
 * the SysTick counter the emulator's random source samples. Not part of the portable core. */
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

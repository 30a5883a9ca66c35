/* The card's NVM on the firmware: the linker script's NVM region (PSRAM at 0x21000000 on
 * mps2-an386), read and written as memory. Under QEMU that region is RAM: it is volatile
 * across QEMU runs unless QEMU backs the machine RAM with a file (-object
 * memory-backend-file,...,share=on -machine memory-backend=...), which the host transport
 * qemu:ELF,nvm=FILE does. A write is a plain copy: a QEMU kill during it is a torn write,
 * exactly what the transaction layer (card/core/nvm.c) is built for. A real board replaces this
 * file with its flash or EEPROM driver (docs/firmware.md). */
#include <string.h>

#include "card_err.h"
#include "fw.h"

extern uint8_t __nvm_start[], __nvm_end[];

static int fw_nvm_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
    (void)ctx;
    size_t size = (size_t)(__nvm_end - __nvm_start);
    if (addr > size || len > size - addr)
        return CARD_E_IO;
    memcpy(buf, (const uint8_t *)__nvm_start + addr, len);
    return 0;
}

static int fw_nvm_write(void *ctx, uint32_t addr, const void *buf, size_t len)
{
    (void)ctx;
    size_t size = (size_t)(__nvm_end - __nvm_start);
    if (addr > size || len > size - addr)
        return CARD_E_IO;
    volatile uint8_t *dst = __nvm_start + addr;
    const uint8_t *src = buf;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i];
    return 0;
}

static int fw_nvm_sync(void *ctx)
{
    (void)ctx;
    __asm__ volatile("dsb" ::: "memory"); /* earlier stores complete before later ones */
    return 0;
}

/* FW_NVM_SIZE (fw.h) is the NVM region's length; main() halts if the link disagrees. */
const struct hal_nvm fw_nvm = {
    .read = fw_nvm_read,
    .write = fw_nvm_write,
    .sync = fw_nvm_sync,
    .size = FW_NVM_SIZE,
    .ctx = 0,
};

int fw_nvm_blank(void)
{
    const volatile uint8_t *p = __nvm_start;
    size_t size = (size_t)(__nvm_end - __nvm_start);
    uint8_t first = p[0];
    if (first != 0x00u && first != 0xFFu)
        return 0;
    for (size_t i = 1; i < size; i++)
        if (p[i] != first)
            return 0;
    return 1;
}

size_t fw_nvm_region_size(void)
{
    return (size_t)(__nvm_end - __nvm_start);
}

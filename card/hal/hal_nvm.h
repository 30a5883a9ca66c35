/* Non-volatile memory service: byte-addressable, EEPROM-like storage.
 * A port supplies the ops and a context; the card core never touches hardware itself. */
#ifndef HAL_NVM_H
#define HAL_NVM_H

#include <stddef.h>
#include <stdint.h>

struct hal_nvm {
    /* Copies len bytes at addr into buf. Returns 0, or a negative card_err on failure. */
    int (*read)(void *ctx, uint32_t addr, void *buf, size_t len);
    /* Programs len bytes at addr. A power cut may leave the range partly written (torn):
     * the transaction layer is built to survive exactly that. Returns 0 or a negative card_err. */
    int (*write)(void *ctx, uint32_t addr, const void *buf, size_t len);
    /* Makes earlier writes durable before later ones (a barrier). May be NULL. Returns 0 or < 0. */
    int (*sync)(void *ctx);
    uint32_t size; /* bytes of NVM the card may use, from address 0 */
    void *ctx;
};

#endif

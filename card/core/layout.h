/* Where each persistent structure lives in the NVM user area (addresses from 0 = user base).
 * docs/nvm.md draws the same map. Every record carries a CRC-32 checked at mount. */
#ifndef LAYOUT_H
#define LAYOUT_H

#include "card_config.h"

#define LAYOUT_CARD_REC_ADDR   0u
#define LAYOUT_CARD_REC_SIZE   64u
#define LAYOUT_PIN_ADDR        (LAYOUT_CARD_REC_ADDR + LAYOUT_CARD_REC_SIZE)
#define LAYOUT_PIN_SLOTS       3u
#define LAYOUT_PIN_SIZE        32u
#define LAYOUT_FS_TABLE_ADDR   (LAYOUT_PIN_ADDR + LAYOUT_PIN_SLOTS * LAYOUT_PIN_SIZE)
#define LAYOUT_FS_ENTRY_SIZE   40u
#define LAYOUT_FS_HEAP_ADDR    (LAYOUT_FS_TABLE_ADDR + CARD_FS_MAX_FILES * LAYOUT_FS_ENTRY_SIZE)

#if CARD_PIN_MAX_LEN > 16
#error "a PIN slot holds at most 16 bytes of reference data"
#endif

static inline void layout_put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void layout_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint16_t layout_get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t layout_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif

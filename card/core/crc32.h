/* CRC-32 as in IEEE 802.3 / zlib: reflected, polynomial 0xEDB88320, initial value and final
 * xor 0xFFFFFFFF. Check value: card_crc32("123456789", 9) == 0xCBF43926.
 * Used for the NVM header and journal, file-system records and PIN records. Named card_crc32
 * because a global "crc32" would take the place of zlib's in a host process (libpng, under
 * cairo, then computes its PNG checksums with ours). */
#ifndef CRC32_H
#define CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over more data, zlib style: pass 0 to start, or the value a previous call
 * returned, so card_crc32_update(card_crc32(a), b) == card_crc32(a followed by b). len 0
 * returns crc unchanged (data may then be NULL). Returns the CRC so far; it cannot fail. */
uint32_t card_crc32_update(uint32_t crc, const void *data, size_t len);

/* CRC-32 of len bytes at data. Returns the CRC; it cannot fail. */
uint32_t card_crc32(const void *data, size_t len);

#endif

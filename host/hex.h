/* Hex text <-> bytes for the host tools (APDUs on the command line, traces, status output). */
#ifndef HEX_H
#define HEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Decodes hex text into out. Digits are case-insensitive; spaces, tabs, newlines and colons may
 * separate bytes ("00A4 000C", "00:a4:00:0c"), but every run of digits between separators must
 * have an even length (so "3 F00" is an error, not a guess). Empty text gives 0 bytes.
 * Returns 0 with *out_len set, or -1 with a message in err (odd digit count, non-hex
 * character with its position, more than cap bytes). The message never echoes the digits. */
int hex_decode(const char *text, uint8_t *out, size_t cap, size_t *out_len,
               char *err, size_t errlen);

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);

/* Number of bytes hex_decode would produce, or -1 when the text is not valid hex (no message). */
long hex_decoded_len(const char *text);

/* Formats len bytes as upper-case pairs separated by sep (0 for none) into out, NUL-terminated.
 * Returns the string length, or 0 with out = "" when cap is too small (cap >= 3*len is always
 * enough). */
size_t hex_encode(const uint8_t *buf, size_t len, char sep, char *out, size_t cap);

/* Prints len bytes as "AB CD EF" (no newline) to f. */
void hex_fprint(FILE *f, const uint8_t *buf, size_t len);

#endif

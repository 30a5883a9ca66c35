/* Command APDU parsing and building, response APDU splitting (ISO 7816-3 §12.1.3,
 * ISO 7816-4 §5.1). Strict: a command whose body matches none of the four cases exactly is
 * rejected. Firmware-safe: no allocation, no I/O, no state. */
#ifndef ICD_APDU_H
#define ICD_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw.h"

#define APDU_HEADER_LEN   4       /* CLA INS P1 P2 */
#define APDU_SHORT_MAX_NC 255     /* largest Nc in a short Lc field */
#define APDU_SHORT_MAX_NE 256     /* largest Ne in a short Le field (Le 00) */
#define APDU_EXT_MAX_NC   65535   /* largest Nc in an extended Lc field */
#define APDU_EXT_MAX_NE   65536   /* largest Ne in an extended Le field (Le 0000) */
#define APDU_MAX_LEN      (APDU_HEADER_LEN + 3 + APDU_EXT_MAX_NC + 2) /* longest command: 4E */

enum apdu_err {
    APDU_E_TOO_SHORT = -1, /* fewer than 4 command bytes, or fewer than 2 response bytes */
    APDU_E_LENGTH    = -2, /* body matches no case; or Nc/Ne out of range, data NULL (build) */
    APDU_E_BUFFER    = -3, /* output buffer too small (build) */
    APDU_E_ARG       = -4, /* NULL pointer where one is required */
};

struct capdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data;   /* points into the parsed buffer; NULL when nc == 0 */
    size_t nc;             /* command data length (Lc value) */
    size_t ne;             /* expected response length: 0 = no Le field; short Le 00 -> 256,
                              extended 0000 -> 65536 */
    bool extended;         /* Lc/Le used the extended (3-byte / 2-byte) form; false in case 1 */
    uint8_t apdu_case;     /* 1, 2, 3 or 4 (ISO 7816-3 cases, short or extended per 'extended') */
};

/* Decodes the command APDU buf[0..len) into *out (out->data points into buf).
 * Returns 0 on success; APDU_E_TOO_SHORT if len < 4, APDU_E_LENGTH if the body is none of
 * cases 1, 2S, 3S, 4S, 2E, 3E, 4E exactly (extended Lc 0000, missing or trailing bytes),
 * APDU_E_ARG if out is NULL or buf is NULL with len > 0. On failure *out is unspecified.
 * Never reads outside buf[0..len). */
int apdu_parse(const uint8_t *buf, size_t len, struct capdu *out);

/* Encodes c (header, c->nc bytes of c->data, c->ne; c->apdu_case and c->extended are ignored:
 * the case follows from nc/ne) into buf[0..cap). Short form when nc <= 255, ne <= 256 and
 * !force_extended, else extended (Lc 00 L1 L2, Le L1 L2 after the data, or 00 L1 L2 alone in
 * case 2; Ne 65536 is written as 0000, short Ne 256 as 00). Case 1 is always the bare header.
 * Returns 0 and sets *out_len to the bytes written on success; APDU_E_BUFFER if cap is too small
 * (then *out_len is set to the length needed, buf untouched), APDU_E_LENGTH if nc > 65535,
 * ne > 65536 or data is NULL with nc > 0, APDU_E_ARG if c or out_len is NULL.
 * c->data must not overlap buf. */
int apdu_build(const struct capdu *c, bool force_extended, uint8_t *buf, size_t cap,
               size_t *out_len);

/* Splits a response APDU: response data is buf[0..len-2), SW1-SW2 the last two bytes.
 * Returns 0 and sets *data_len (len - 2) and *sw on success (either pointer may be NULL);
 * APDU_E_TOO_SHORT if len < 2 or buf is NULL (outputs untouched). */
int apdu_split_response(const uint8_t *buf, size_t len, size_t *data_len, uint16_t *sw);

#endif

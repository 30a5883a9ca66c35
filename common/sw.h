/* ISO 7816-4 status words (SW1-SW2) used by the card and the host tools.
 * Values with a variable low byte or nibble are given as their base (low bits zero);
 * use the SW_*_N() helpers to build them and SW_SW1/SW_SW2 to take a word apart.
 * Firmware-safe: constants and one pure function, no state. */
#ifndef ICD_SW_H
#define ICD_SW_H

#include <stddef.h>
#include <stdint.h>

/* ---- normal processing ---------------------------------------------------------------- */
#define SW_OK                       0x9000u /* normal processing, no further qualification */
#define SW_BYTES_REMAINING          0x6100u /* 61xx: SW2 = response bytes still available */

/* ---- warnings, non-volatile memory unchanged (62xx) ----------------------------------- */
#define SW_DATA_CORRUPTED           0x6281u /* part of returned data may be corrupted */
#define SW_EOF_WARNING              0x6282u /* end of file reached before reading Ne bytes */
#define SW_FILE_DEACTIVATED         0x6283u /* selected file deactivated */

/* ---- warnings, non-volatile memory changed (63xx) ------------------------------------- */
#define SW_COUNTER                  0x63C0u /* 63Cx: verification failed, x = tries left */

/* ---- execution errors (64xx, 65xx) ----------------------------------------------------- */
#define SW_EXECUTION_ERROR          0x6400u /* execution error, NV memory unchanged */
#define SW_MEMORY_FAILURE           0x6581u /* memory failure (NV write/read failed) */

/* ---- checking errors -------------------------------------------------------------------- */
#define SW_WRONG_LENGTH             0x6700u /* wrong length (Lc/Le) */

#define SW_CHANNEL_NOT_SUPPORTED    0x6881u /* logical channel not supported */
#define SW_SM_NOT_SUPPORTED         0x6882u /* secure messaging not supported */
#define SW_LAST_COMMAND_EXPECTED    0x6883u /* last command of the chain expected */
#define SW_CHAINING_NOT_SUPPORTED   0x6884u /* command chaining not supported */

#define SW_INCOMPATIBLE_FILE        0x6981u /* command incompatible with file structure */
#define SW_SECURITY_STATUS          0x6982u /* security status not satisfied */
#define SW_AUTH_BLOCKED             0x6983u /* authentication method blocked */
#define SW_REF_DATA_UNUSABLE        0x6984u /* reference data not usable */
#define SW_CONDITIONS_NOT_SATISFIED 0x6985u /* conditions of use not satisfied */
#define SW_NO_CURRENT_EF            0x6986u /* command not allowed (no current EF) */
#define SW_SM_DO_MISSING            0x6987u /* expected secure messaging data objects missing */
#define SW_SM_DO_INCORRECT          0x6988u /* incorrect secure messaging data objects */

#define SW_WRONG_DATA               0x6A80u /* incorrect parameters in the command data field */
#define SW_FUNC_NOT_SUPPORTED       0x6A81u /* function not supported */
#define SW_FILE_NOT_FOUND           0x6A82u /* file or application not found */
#define SW_NOT_ENOUGH_MEMORY        0x6A84u /* not enough memory space in the file */
#define SW_INCORRECT_P1P2           0x6A86u /* incorrect parameters P1-P2 */
#define SW_NC_INCONSISTENT          0x6A87u /* Nc inconsistent with parameters P1-P2 */
#define SW_REF_DATA_NOT_FOUND       0x6A88u /* referenced data or reference data not found */
#define SW_FILE_EXISTS              0x6A89u /* file already exists */
#define SW_DF_NAME_EXISTS           0x6A8Au /* DF name already exists */

#define SW_WRONG_P1P2               0x6B00u /* wrong parameters P1-P2 (e.g. offset outside EF) */
#define SW_WRONG_LE                 0x6C00u /* 6Cxx: wrong Le, SW2 = exact number of bytes */
#define SW_INS_NOT_SUPPORTED        0x6D00u /* instruction code not supported or invalid */
#define SW_CLA_NOT_SUPPORTED        0x6E00u /* class not supported */
#define SW_UNKNOWN                  0x6F00u /* no precise diagnosis */

/* ---- helpers ------------------------------------------------------------------------------ */
#define SW_SW1(sw) ((uint8_t)(((unsigned)(sw) >> 8) & 0xFFu))
#define SW_SW2(sw) ((uint8_t)((unsigned)(sw) & 0xFFu))
#define SW_MAKE(sw1, sw2) ((uint16_t)((((unsigned)(sw1) & 0xFFu) << 8) | ((unsigned)(sw2) & 0xFFu)))

/* 61xx with xx = n (n > 255 is reported as 00, meaning "256 or more" as ISO 7816-4 allows). */
#define SW_BYTES_REMAINING_N(n) \
    ((uint16_t)(SW_BYTES_REMAINING | ((size_t)(n) > 255u ? 0u : ((unsigned)(n) & 0xFFu))))
/* 63Cx with x = tries left (clamped to 15). */
#define SW_COUNTER_N(n) ((uint16_t)(SW_COUNTER | ((unsigned)(n) > 15u ? 15u : (unsigned)(n))))
/* 6Cxx with xx = exact length (256 is encoded as 00). */
#define SW_WRONG_LE_N(n) ((uint16_t)(SW_WRONG_LE | ((unsigned)(n) & 0xFFu)))

#define SW_IS_BYTES_REMAINING(sw) (((unsigned)(sw) & 0xFF00u) == SW_BYTES_REMAINING)
#define SW_IS_COUNTER(sw)         (((unsigned)(sw) & 0xFFF0u) == SW_COUNTER)
#define SW_IS_WRONG_LE(sw)        (((unsigned)(sw) & 0xFF00u) == SW_WRONG_LE)
/* Normal processing: 9000 or 61xx. Warning: 62xx or 63xx (processing completed). */
#define SW_IS_SUCCESS(sw) ((unsigned)(sw) == SW_OK || SW_IS_BYTES_REMAINING(sw))
#define SW_IS_WARNING(sw) (SW_SW1(sw) == 0x62u || SW_SW1(sw) == 0x63u)

/* Short English text for a status word, for traces and error messages. 61xx, 63Cx and 6Cxx
 * are matched by their high byte/nibble; other unknown words fall back to a text for their
 * SW1 group. Always returns a non-empty static string (never NULL), "unknown status word" for
 * values outside ISO 7816-4. Defined in apdu.c. */
const char *sw_describe(uint16_t sw);

#endif

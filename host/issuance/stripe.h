/* Magnetic stripe data of an issued card (docs/cardface.md, "Magnetic stripe"): the PAN with
 * its Luhn check digit (ISO/IEC 7812-1), track 1 in format B (ISO/IEC 7813: 6-bit alphanumeric
 * characters, at most 79 with the sentinels and the LRC) and track 2 (4-bit numeric, at most
 * 40), the LRC and the odd parity bits of ISO/IEC 7811-2, and the text file an encoder reads.
 * The tracks are returned as text ("%B4111...?" + LRC); stripe_bits gives the bits as a
 * stripe carries them. No I/O but stripe_write_file. */
#ifndef STRIPE_H
#define STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRIPE_PAN_MIN 8u      /* 6-digit IIN, one account digit, the check digit */
#define STRIPE_PAN_MAX 19u
#define STRIPE_NAME_MIN 2u
#define STRIPE_NAME_MAX 26u    /* longer names are truncated (stripe_name) */
#define STRIPE_TRACK1_MAX 79u  /* characters, start sentinel through LRC */
#define STRIPE_TRACK2_MAX 40u
#define STRIPE_DEFAULT_SERVICE_CODE "220" /* chip card: use the chip where feasible, online
                                             authorization, PIN required (ISO/IEC 7813) */

/* The Luhn check digit ('0'..'9') that completes the digits of s, or -1 when s is empty or
 * holds a character other than a digit. */
int stripe_luhn_digit(const char *s);

/* True when s is at least two digits whose last one is their Luhn check digit. */
bool stripe_luhn_valid(const char *s);

/* Builds a PAN: iin (6 or 8 digits, ISO/IEC 7812-1) ‖ account (1 or more digits) ‖ the Luhn
 * check digit, at most STRIPE_PAN_MAX digits, into pan (cap bytes with the NUL). Returns 0, or
 * -1 with a message in err (a non-digit, a bad IIN length, too many digits, cap too small). */
int stripe_pan(const char *iin, const char *account, char *pan, size_t cap, char *err,
               size_t errlen);

/* "YYYY-MM-DD" (a real calendar date, year 2000..2099, since a stripe holds only YY) to
 * "YYMM". Returns 0, or -1 with a message in err. */
int stripe_expiry_yymm(const char *date, char yymm[5], char *err, size_t errlen);

/* The track 1 name of a holder: "Given Names Surname" becomes "SURNAME/GIVEN NAMES" (the last
 * word is the surname), "Surname/Given" is kept in that order; one word W gives "W/". Lower-case
 * letters are upper-cased, the accented letters of Latin-1 (U+00C0..U+00FF) lose their accent
 * (é -> E, Æ -> AE, ß -> SS), runs of spaces become one. Refused with a message in err:
 * invalid UTF-8, a control character, another character outside the track 1 set (' ' to '_',
 * without the sentinels '%', '?' and the separator '^'), more than one '/', a name without a
 * letter or digit. A result longer than STRIPE_NAME_MAX characters is cut to that length
 * (trailing spaces dropped), as card names are. out needs STRIPE_NAME_MAX + 1 bytes.
 * Returns 0 or -1. */
int stripe_name(const char *holder, char out[STRIPE_NAME_MAX + 1], char *err, size_t errlen);

struct stripe_input {
    const char *pan;           /* 8..19 digits, Luhn-valid (stripe_pan) */
    const char *holder;        /* "Given Surname" or "SURNAME/GIVEN" (see stripe_name) */
    const char *expiry;        /* YYYY-MM-DD */
    const char *service_code;  /* 3 digits; NULL: STRIPE_DEFAULT_SERVICE_CODE */
    const char *discretionary; /* digits, on both tracks; NULL or "": none */
};

/* Builds both tracks as text, each with its LRC character last:
 *   track 1  %B PAN ^ NAME ^ YYMM SSS DISCRETIONARY ? LRC   (spaces here for reading only)
 *   track 2  ; PAN = YYMM SSS DISCRETIONARY ? LRC
 * track1 needs STRIPE_TRACK1_MAX + 1 bytes at most, track2 STRIPE_TRACK2_MAX + 1. Returns 0,
 * or -1 with a message in err naming the field (PAN, name, expiry, service code, discretionary
 * data too long for a track, cap too small); the outputs are then "". */
int stripe_tracks(const struct stripe_input *in, char *track1, size_t cap1, char *track2,
                  size_t cap2, char *err, size_t errlen);

/* The LRC character of the characters s[0..len) of track 1 or 2 (start sentinel through end
 * sentinel): XOR of the character codes (track 1: c - 0x20, 6 bits; track 2: c - 0x30, 4 bits)
 * printed as a character of the same set. Returns it, or -1 for a character outside the
 * track's set or a track other than 1 or 2. */
int stripe_lrc(const char *s, size_t len, unsigned track);

/* The bits of a whole track (its text, LRC included) as written on the stripe: per character
 * its code (6 bits for track 1, 4 for track 2) least significant bit first, then an odd parity
 * bit; one bit per byte of out (0 or 1), no leading or trailing clocking zeros. Returns 0 with
 * *nbits set, or -1 (a character outside the track's set, track not 1 or 2, cap too small). */
int stripe_bits(const char *track, unsigned track_no, uint8_t *out, size_t cap,
                size_t *nbits);

/* Writes "track1=T1\ntrack2=T2\n" to path atomically (host/atomicfile.h). Returns 0, or -1
 * with a message in err (a track with a character outside printable ASCII, an unwritable
 * path; the file is then untouched). */
int stripe_write_file(const char *path, const char *track1, const char *track2, char *err,
                      size_t errlen);

#endif

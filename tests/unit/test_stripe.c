/* Magnetic stripe data (host/issuance/stripe.c):
 *   - Luhn check digits against published numbers, and that every single-digit change of a
 *     valid number is caught;
 *   - PAN construction from an IIN and an account number, and its limits;
 *   - two whole inputs, tracks 1 and 2 compared byte for byte with strings computed by an
 *     independent Python implementation of ISO/IEC 7813 (the script is quoted below), and the
 *     bits of one track 2 compared with the same script's output;
 *   - the LRC recomputed here and every character's parity (the LRC's too) odd;
 *   - holder name conversion, truncation to 26 characters, and refusals;
 *   - every bad input refused with a message and empty outputs;
 *   - the encoder file, its exact content, and an unwritable path.
 *
 * The expected tracks come from this Python 3 script (written from the standards, not from
 * stripe.c):
 *
 *   def luhn_check_digit(digits):
 *       total = 0
 *       for i, ch in enumerate(reversed(digits)):
 *           d = int(ch)
 *           if i % 2 == 0:
 *               d = d * 2
 *               if d > 9: d -= 9
 *           total += d
 *       return str((10 - total % 10) % 10)
 *   def lrc(chars, base, bits):
 *       x = 0
 *       for c in chars: x ^= (ord(c) - base) & ((1 << bits) - 1)
 *       return chr(x + base)
 *   def track1(pan, name, yymm, sc, dd):
 *       body = "%B" + pan + "^" + name + "^" + yymm + sc + dd + "?"
 *       return body + lrc(body, 0x20, 6)
 *   def track2(pan, yymm, sc, dd):
 *       body = ";" + pan + "=" + yymm + sc + dd + "?"
 *       return body + lrc(body, 0x30, 4)
 *   def bits(track, base, width):
 *       out = []
 *       for c in track:
 *           b = [((ord(c) - base) >> i) & 1 for i in range(width)]
 *           out += b + [1 - sum(b) % 2]
 *       return out
 *   pan = "999001" + "000123456"; pan += luhn_check_digit(pan)
 *   track1(pan, "LOVELACE/ADA", "2912", "220", "0042"); track2(pan, "2912", "220", "0042")
 *   pan2 = "99900123" + "4567890123"; pan2 += luhn_check_digit(pan2)
 *   track1(pan2, "NUNEZ/JOSE MARIA", "2802", "101", ""); track2(pan2, "2802", "101", "")
 *   "".join(map(str, bits(track2(pan, ...), 0x30, 4)))
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stripe.h"

#define ERR_LEN 512

/* Vector 1: IIN 999001, account 000123456, "Ada Lovelace", 2029-12-31, default service code
 * (220), discretionary 0042. */
#define V1_PAN "9990010001234568"
#define V1_T1 "%B9990010001234568^LOVELACE/ADA^29122200042?1"
#define V1_T2 ";9990010001234568=29122200042?0"
#define V1_T2_BITS                                                                          \
    "11010100111001110011000010000110000000010000100001100000100011001001001010101101000" \
    "101011001000100111000001000010000100000001000010000100100010001111100001"

/* Vector 2: IIN 99900123, account 4567890123 (a 19-digit PAN), "José María Núñez",
 * 2028-02-29, service code 101, no discretionary data. */
#define V2_PAN "9990012345678901230"
#define V2_HOLDER "Jos\xC3\xA9 Mar\xC3\xAD" "a N\xC3\xBA\xC3\xB1" "ez"
#define V2_T1 "%B9990012345678901230^NUNEZ/JOSE MARIA^2802101?X"
#define V2_T2 ";9990012345678901230=2802101?9"

/* ---- Luhn and PAN ------------------------------------------------------------------------- */

static void test_luhn_known(void **state)
{
    (void)state;
    assert_true(stripe_luhn_valid("4111111111111111"));
    assert_true(stripe_luhn_valid("79927398713")); /* the classic example */
    assert_true(stripe_luhn_valid("5555555555554444"));
    assert_true(stripe_luhn_valid("378282246310005"));
    assert_true(stripe_luhn_valid("00"));
    assert_false(stripe_luhn_valid("4111111111111112"));
    assert_false(stripe_luhn_valid("79927398710"));
    assert_false(stripe_luhn_valid("7992739871a"));
    assert_false(stripe_luhn_valid("0"));
    assert_false(stripe_luhn_valid(""));
    assert_false(stripe_luhn_valid(NULL));

    assert_int_equal(stripe_luhn_digit("7992739871"), '3');
    assert_int_equal(stripe_luhn_digit("411111111111111"), '1');
    assert_int_equal(stripe_luhn_digit("0"), '0');
    assert_int_equal(stripe_luhn_digit(""), -1);
    assert_int_equal(stripe_luhn_digit("12 3"), -1);
    assert_int_equal(stripe_luhn_digit(NULL), -1);
}

/* Luhn catches every single-digit error: change each digit of valid numbers to every other
 * value. */
static void test_luhn_single_errors(void **state)
{
    (void)state;
    static const char *const valid[] = { "4111111111111111", "79927398713", V1_PAN, V2_PAN };
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        char s[32];
        snprintf(s, sizeof s, "%s", valid[v]);
        for (size_t i = 0; s[i] != '\0'; i++) {
            char keep = s[i];
            for (char d = '0'; d <= '9'; d++) {
                s[i] = d;
                assert_int_equal(stripe_luhn_valid(s), d == keep);
            }
            s[i] = keep;
        }
    }
}

static void test_pan(void **state)
{
    (void)state;
    char pan[STRIPE_PAN_MAX + 1], err[ERR_LEN];
    assert_int_equal(stripe_pan("999001", "000123456", pan, sizeof pan, err, ERR_LEN), 0);
    assert_string_equal(pan, V1_PAN);
    assert_int_equal(stripe_pan("799273", "9871", pan, sizeof pan, err, ERR_LEN), 0);
    assert_string_equal(pan, "79927398713");
    assert_int_equal(stripe_pan("411111", "111111111", pan, sizeof pan, err, ERR_LEN), 0);
    assert_string_equal(pan, "4111111111111111");
    /* the longest: 8 + 10 + 1 = 19 digits, into an exactly sized buffer */
    assert_int_equal(stripe_pan("99900123", "4567890123", pan, sizeof pan, err, ERR_LEN), 0);
    assert_string_equal(pan, V2_PAN);
}

static void pan_refused(const char *iin, const char *account, size_t cap, const char *want)
{
    char pan[32], err[ERR_LEN] = "";
    memset(pan, 'x', sizeof pan);
    assert_int_equal(stripe_pan(iin, account, pan, cap, err, ERR_LEN), -1);
    assert_string_equal(pan, "");
    if (strstr(err, want) == NULL)
        fail_msg("stripe_pan(%s, %s): \"%s\" lacks \"%s\"", iin ? iin : "NULL",
                 account ? account : "NULL", err, want);
}

static void test_pan_refused(void **state)
{
    (void)state;
    pan_refused("99900", "1234", 32, "has 5 digits; it needs 6 or 8");
    pan_refused("9990012", "1234", 32, "has 7 digits");
    pan_refused("99900A", "1234", 32, "issuer identification number: 'A' at position 6");
    pan_refused("999001", "12-4", 32, "account number: '-' at position 3");
    pan_refused("999001", "12\x01", 32, "byte 0x01 at position 3");
    pan_refused("999001", "", 32, "empty account number");
    pan_refused(NULL, "1", 32, "no issuer identification number");
    pan_refused("999001", NULL, 32, "no account number");
    /* 6 + 13 + 1 = 20 digits */
    pan_refused("999001", "1234567890123", 32, "the PAN would have 20 digits");
    pan_refused("999001", "1234567890123", 32, "the account number may have 12 digits");
    /* a 16-digit account number (a member number) cannot follow a 6-digit IIN */
    pan_refused("999001", "6000000000000001", 32, "would have 23 digits");
    pan_refused("999001", "1", 8, "buffer of 8 bytes is too small");
}

/* ---- tracks ------------------------------------------------------------------------------- */

static void v1_input(struct stripe_input *in)
{
    memset(in, 0, sizeof *in);
    in->pan = V1_PAN;
    in->holder = "Ada Lovelace";
    in->expiry = "2029-12-31";
    in->discretionary = "0042";
}

static void test_tracks_vector1(void **state)
{
    (void)state;
    struct stripe_input in;
    v1_input(&in);
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN];
    assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_string_equal(t1, V1_T1);
    assert_string_equal(t2, V1_T2);
    /* the same with the name already in track form, and exact-size buffers */
    in.holder = "LOVELACE/ADA";
    char e1[sizeof V1_T1], e2[sizeof V1_T2];
    assert_int_equal(stripe_tracks(&in, e1, sizeof e1, e2, sizeof e2, err, ERR_LEN), 0);
    assert_string_equal(e1, V1_T1);
    assert_string_equal(e2, V1_T2);
    /* one byte less does not fit */
    assert_int_equal(stripe_tracks(&in, e1, sizeof e1 - 1, e2, sizeof e2, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "track 1 buffer"));
    assert_int_equal(stripe_tracks(&in, e1, sizeof e1, e2, sizeof e2 - 1, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "track 2 buffer"));
}

static void test_tracks_vector2(void **state)
{
    (void)state;
    struct stripe_input in = { .pan = V2_PAN, .holder = V2_HOLDER, .expiry = "2028-02-29",
                               .service_code = "101", .discretionary = NULL };
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN];
    assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_string_equal(t1, V2_T1);
    assert_string_equal(t2, V2_T2);
    in.discretionary = ""; /* the same as NULL */
    assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_string_equal(t2, V2_T2);
}

static void test_default_service_code(void **state)
{
    (void)state;
    struct stripe_input in;
    v1_input(&in);
    in.discretionary = NULL;
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN];
    assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_string_equal(STRIPE_DEFAULT_SERVICE_CODE, "220");
    assert_int_equal(strncmp(t1, "%B" V1_PAN "^LOVELACE/ADA^2912220?", 36), 0);
    assert_int_equal(strncmp(t2, ";" V1_PAN "=2912220?", 26), 0);
    assert_int_equal(strlen(t2), 27);
}

/* XOR of the codes of s[0..n), recomputed here. */
static char lrc_here(const char *s, size_t n, char base, unsigned mask)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= (unsigned)(s[i] - base) & mask;
    return (char)(base + (char)x);
}

/* The LRC and the parity of every character of track (number no). */
static void check_lrc_parity(const char *track, unsigned no)
{
    char base = no == 1 ? 0x20 : 0x30;
    unsigned width = no == 1 ? 6 : 4;
    size_t n = strlen(track);
    assert_true(n >= 3);
    assert_int_equal(track[n - 2], '?');
    assert_int_equal(track[n - 1], lrc_here(track, n - 1, base, (1u << width) - 1));
    assert_int_equal(stripe_lrc(track, n - 1, no), track[n - 1]);
    /* the XOR over the whole track, LRC included, is zero */
    assert_int_equal(lrc_here(track, n, base, (1u << width) - 1), base);

    uint8_t *bits = malloc(n * (width + 1)); /* exact size */
    assert_non_null(bits);
    size_t nbits = 0;
    assert_int_equal(stripe_bits(track, no, bits, n * (width + 1), &nbits), 0);
    assert_int_equal(nbits, n * (width + 1));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = bits + i * (width + 1);
        unsigned ones = 0, code = 0;
        for (unsigned b = 0; b <= width; b++) {
            assert_true(c[b] <= 1);
            ones += c[b];
        }
        for (unsigned b = 0; b < width; b++)
            code |= (unsigned)c[b] << b; /* least significant bit first */
        assert_int_equal(ones % 2, 1);  /* odd parity, the LRC (i = n - 1) included */
        assert_int_equal(code + (unsigned)base, (unsigned char)track[i]);
    }
    /* one bit of room less is refused */
    assert_int_equal(stripe_bits(track, no, bits, n * (width + 1) - 1, &nbits), -1);
    free(bits);
}

static void test_lrc_and_parity(void **state)
{
    (void)state;
    check_lrc_parity(V1_T1, 1);
    check_lrc_parity(V1_T2, 2);
    check_lrc_parity(V2_T1, 1);
    check_lrc_parity(V2_T2, 2);
    /* tracks from this module over many inputs */
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN];
    char pan[STRIPE_PAN_MAX + 1], acct[16], dd[8];
    for (unsigned i = 0; i < 200; i++) {
        snprintf(acct, sizeof acct, "%09u", i * 7919u);
        snprintf(dd, sizeof dd, "%u", i * 31u);
        assert_int_equal(stripe_pan("999001", acct, pan, sizeof pan, err, ERR_LEN), 0);
        struct stripe_input in = { .pan = pan, .holder = i % 2 ? "Ada Lovelace" : "Zo\xC3\xAB Q",
                                   .expiry = "2030-01-15", .service_code = "201",
                                   .discretionary = dd };
        assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
        check_lrc_parity(t1, 1);
        check_lrc_parity(t2, 2);
    }
}

static void test_bits_vector(void **state)
{
    (void)state;
    static const char want[] = V1_T2_BITS;
    uint8_t bits[sizeof want - 1];
    size_t nbits = 0;
    assert_int_equal(stripe_bits(V1_T2, 2, bits, sizeof bits, &nbits), 0);
    assert_int_equal(nbits, sizeof want - 1);
    for (size_t i = 0; i < nbits; i++)
        assert_int_equal(bits[i], want[i] - '0');
    /* characters outside a track's set, bad track numbers */
    assert_int_equal(stripe_bits("%B1?", 2, bits, sizeof bits, &nbits), -1);
    assert_int_equal(stripe_bits("abc", 1, bits, sizeof bits, &nbits), -1);
    assert_int_equal(stripe_bits(V1_T2, 3, bits, sizeof bits, &nbits), -1);
    assert_int_equal(stripe_lrc("%B", 2, 2), -1);
    assert_int_equal(stripe_lrc(";1", 2, 0), -1);
    assert_int_equal(stripe_lrc(";1?", 3, 2), ';' ^ '1' ^ '?'); /* 0x3B^0x31^0x3F = 0x35 */
}

/* ---- names -------------------------------------------------------------------------------- */

static void name_is(const char *holder, const char *want)
{
    char out[STRIPE_NAME_MAX + 1], err[ERR_LEN] = "";
    if (stripe_name(holder, out, err, ERR_LEN) != 0)
        fail_msg("stripe_name(\"%s\"): %s", holder, err);
    assert_string_equal(out, want);
    assert_true(strlen(out) >= STRIPE_NAME_MIN && strlen(out) <= STRIPE_NAME_MAX);
}

static void name_refused(const char *holder, const char *want)
{
    char out[STRIPE_NAME_MAX + 1], err[ERR_LEN] = "";
    memset(out, 'x', sizeof out);
    assert_int_equal(stripe_name(holder, out, err, ERR_LEN), -1);
    assert_string_equal(out, "");
    if (strstr(err, want) == NULL)
        fail_msg("stripe_name: \"%s\" lacks \"%s\"", err, want);
}

static void test_names(void **state)
{
    (void)state;
    name_is("Ada Lovelace", "LOVELACE/ADA");
    name_is("LOVELACE/ADA", "LOVELACE/ADA");
    name_is("  lovelace /  ada ", "LOVELACE/ADA");
    name_is("Augusta  Ada   King", "KING/AUGUSTA ADA");
    name_is("Madonna", "MADONNA/");
    name_is("Jean-Luc O'Neil", "O'NEIL/JEAN-LUC");
    name_is("Dr. J. Smith", "SMITH/DR. J.");
    name_is("Zo\xC3\xAB \xC3\x86r\xC3\xB8", "AERO/ZOE");           /* Zoë Ærø */
    name_is("\xC3\x9Eor Stra\xC3\x9F" "e", "STRASSE/THOR");       /* Þor Straße */
    name_is("Ren\xC3\xA9\xC2\xA0" "Fran\xC3\xA7ois", "FRANCOIS/RENE"); /* no-break space */
    name_is("Al 2", "2/AL");
    /* longer than 26: cut to 26 */
    name_is("Alexandrina Victoria Maria Louisa Wettin", "WETTIN/ALEXANDRINA VICTORI");
    name_is("Hubert Blaine Wolfeschlegelsteinhausen", "WOLFESCHLEGELSTEINHAUSEN/H");
    /* ... and a space at the cut dropped (25 characters) */
    name_is("abcdefghijklmnopqrstu vw Xyz", "XYZ/ABCDEFGHIJKLMNOPQRSTU");
}

static void test_names_refused(void **state)
{
    (void)state;
    name_refused(NULL, "no holder name");
    name_refused("", "no letter or digit");
    name_refused("   ", "no letter or digit");
    name_refused("- /", "no letter or digit");
    name_refused("Ada/Byron/King", "more than one '/'");
    name_refused("/Ada", "no surname before its '/'");
    name_refused(" / Ada", "no surname before its '/'");
    name_refused("Ada^Lovelace", "'^' at byte 4 cannot be written on a magnetic stripe");
    name_refused("Ada?", "'?' at byte 4");
    name_refused("100% Ada", "'%' at byte 4");
    name_refused("Ada{L}", "'{' at byte 4");
    name_refused("Ada\tLovelace", "the control character 0x09 at byte 4");
    name_refused("\xC8\x98tefan", "U+0218 at byte 1");            /* Ș */
    name_refused("\xD0\x98\xD0\xB2\xD0\xB0\xD0\xBD", "U+0418");    /* Иван */
    name_refused("A \xC3\x97 B", "U+00D7 at byte 3");             /* × */
    name_refused("Ada \xC3", "invalid UTF-8 at byte 5");
    name_refused("Ada \xC3\x28", "invalid UTF-8 at byte 5");
    name_refused("\xC0\x81", "invalid UTF-8 at byte 1");           /* overlong */
    name_refused("\xED\xA0\x80", "invalid UTF-8 at byte 1");       /* a surrogate */
    name_refused("\xF4\x90\x80\x80", "invalid UTF-8 at byte 1");   /* above U+10FFFF */
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    name_refused(longname, "holder name of 299 bytes is too long (at most 255)");
}

/* ---- refusals of stripe_tracks ------------------------------------------------------------ */

static void tracks_refused(const struct stripe_input *in, const char *want)
{
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN] = "";
    memset(t1, 'x', sizeof t1);
    memset(t2, 'x', sizeof t2);
    assert_int_equal(stripe_tracks(in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), -1);
    assert_string_equal(t1, "");
    assert_string_equal(t2, "");
    if (strstr(err, want) == NULL)
        fail_msg("stripe_tracks: \"%s\" lacks \"%s\"", err, want);
}

static void test_tracks_refused(void **state)
{
    (void)state;
    struct stripe_input in;
#define REFUSED(field, value, want) \
    do {                            \
        v1_input(&in);              \
        in.field = value;           \
        tracks_refused(&in, want);  \
    } while (0)
    REFUSED(pan, NULL, "no PAN");
    REFUSED(pan, "999001000123456A", "PAN: 'A' at position 16 is not a digit");
    REFUSED(pan, "9990 010001234568", "PAN: the byte 0x20 at position 5 is not a digit");
    REFUSED(pan, "99900100012345678905", "PAN has 20 digits; it needs 8 to 19");
    REFUSED(pan, "4111111", "PAN has 7 digits");
    REFUSED(pan, "", "PAN has 0 digits");
    REFUSED(pan, "9990010001234567", "fails the Luhn check (its last digit should be 8)");
    REFUSED(holder, NULL, "no holder name");
    REFUSED(holder, "Ada\nLovelace", "control character 0x0A");
    REFUSED(expiry, NULL, "no expiry date");
    REFUSED(expiry, "2029-12", "is not of the form YYYY-MM-DD");
    REFUSED(expiry, "29-12-31", "is not of the form YYYY-MM-DD");
    REFUSED(expiry, "2029/12/31", "is not of the form YYYY-MM-DD");
    REFUSED(expiry, "2029-12-31 ", "is not of the form YYYY-MM-DD");
    REFUSED(expiry, "2029-13-01", "is not a calendar date");
    REFUSED(expiry, "2029-00-10", "is not a calendar date");
    REFUSED(expiry, "2029-02-29", "is not a calendar date");
    REFUSED(expiry, "2029-04-31", "is not a calendar date");
    REFUSED(expiry, "2100-01-01", "the year must be 2000 to 2099");
    REFUSED(expiry, "1999-12-31", "the year must be 2000 to 2099");
    REFUSED(service_code, "22", "service code \"22\" must have 3 digits");
    REFUSED(service_code, "2201", "must have 3 digits");
    REFUSED(service_code, "2a0", "service code: 'a' at position 2");
    REFUSED(discretionary, "12a", "discretionary data: 'a' at position 3");
    /* track 2 holds 40: ; + 16 + = + 4 + 3 + DD + ? + LRC, so 13 digits fit, 14 do not */
    REFUSED(discretionary, "12345678901234",
            "discretionary data of 14 digits does not fit track 2 (at most 13");
#undef REFUSED
    v1_input(&in);
    in.discretionary = "1234567890123";
    char t1[STRIPE_TRACK1_MAX + 1], t2[STRIPE_TRACK2_MAX + 1], err[ERR_LEN];
    assert_int_equal(stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_int_equal(strlen(t2), STRIPE_TRACK2_MAX);
    check_lrc_parity(t1, 1);
    check_lrc_parity(t2, 2);
    /* the longest track 1: 19-digit PAN, 26-character name, 10 discretionary digits */
    struct stripe_input big = { .pan = V2_PAN, .holder = "Hubert Blaine Wolfeschlegelsteinhausen",
                                .expiry = "2099-12-31", .discretionary = "1234567890" };
    assert_int_equal(stripe_tracks(&big, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), 0);
    assert_int_equal(strlen(t1), 2 + 19 + 1 + 26 + 1 + 7 + 10 + 2);
    assert_true(strlen(t1) <= STRIPE_TRACK1_MAX);
    assert_int_equal(strlen(t2), STRIPE_TRACK2_MAX);
    check_lrc_parity(t1, 1);
    assert_int_equal(stripe_tracks(NULL, t1, sizeof t1, t2, sizeof t2, err, ERR_LEN), -1);
    assert_string_equal(t1, "");
}

static void test_expiry(void **state)
{
    (void)state;
    char yymm[5], err[ERR_LEN];
    assert_int_equal(stripe_expiry_yymm("2029-12-31", yymm, err, ERR_LEN), 0);
    assert_string_equal(yymm, "2912");
    assert_int_equal(stripe_expiry_yymm("2000-02-29", yymm, err, ERR_LEN), 0); /* leap */
    assert_string_equal(yymm, "0002");
    assert_int_equal(stripe_expiry_yymm("2099-01-01", yymm, err, ERR_LEN), 0);
    assert_string_equal(yymm, "9901");
    assert_int_equal(stripe_expiry_yymm("2100-02-29", yymm, err, ERR_LEN), -1);
    assert_string_equal(yymm, "");
}

/* ---- the encoder file --------------------------------------------------------------------- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_stripe.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/stripe.txt", dir);
    assert_int_equal(stripe_write_file(path, V1_T1, V1_T2, err, ERR_LEN), 0);
    assert_string_equal(read_text(path), "track1=" V1_T1 "\ntrack2=" V1_T2 "\n");
    /* replaced as a whole */
    assert_int_equal(stripe_write_file(path, V2_T1, V2_T2, err, ERR_LEN), 0);
    assert_string_equal(read_text(path), "track1=" V2_T1 "\ntrack2=" V2_T2 "\n");
    /* a track that would break the file's lines: refused, the file unchanged */
    assert_int_equal(stripe_write_file(path, V1_T1 "\ntrack2=1", V1_T2, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "track 1 data: byte 0x0A at position 46"));
    assert_int_equal(stripe_write_file(path, V1_T1, NULL, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "no track 2 data"));
    assert_string_equal(read_text(path), "track1=" V2_T1 "\ntrack2=" V2_T2 "\n");
    /* an unwritable path: a message, no file */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no-such-dir/stripe.txt", dir);
    err[0] = '\0';
    assert_int_equal(stripe_write_file(bad, V1_T1, V1_T2, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "no-such-dir/stripe.txt"));
    assert_non_null(strstr(err, "No such file or directory"));
    struct stat st;
    assert_int_equal(stat(bad, &st), -1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0); /* nothing else was left in it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn_known),
        cmocka_unit_test(test_luhn_single_errors),
        cmocka_unit_test(test_pan),
        cmocka_unit_test(test_pan_refused),
        cmocka_unit_test(test_tracks_vector1),
        cmocka_unit_test(test_tracks_vector2),
        cmocka_unit_test(test_default_service_code),
        cmocka_unit_test(test_lrc_and_parity),
        cmocka_unit_test(test_bits_vector),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_names_refused),
        cmocka_unit_test(test_tracks_refused),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_write_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

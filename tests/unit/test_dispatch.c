/* The APDU dispatcher through card_process: malformed and refused commands (every length below
 * a header, Lc/Le mismatches, extended lengths where they are and are not allowed, Nc above the
 * limit, unknown classes and instructions, bad P1-P2 for every command, offsets past the end),
 * each of which must leave the NVM image byte-identical and the current file unchanged; then
 * 61xx / GET RESPONSE chains, command chaining (CLA bit 10), the answer-to-reset, and a
 * response buffer of only 2 bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "card_fixture.h"
#include "fx_assert.h"
#include "nvm_sim.h"

#define APDU(fx, hex, sw) assert_int_equal(fx_apdu((fx), (hex)), (sw))

/* Data written to EF 5001 by the fixture: a refused command must not change what a READ BINARY
 * of the current file returns. */
#define EF5001_HEAD "0102030405060708"

/* ---- fixtures ----------------------------------------------------------------------------- */

/* Personalized, user PIN verified, EF 5001 current and holding EF5001_HEAD. */
static int setup_current(void **state)
{
    if (fx_setup_perso(state) != 0)
        return -1;
    struct fx *fx = *state;
    if (fx_apdu(fx, "0020 0081 06 313233343536") != 0x9000 ||
        fx_apdu(fx, "00A4 080C 04 50005001") != 0x9000 ||
        fx_apdu(fx, "00D6 0000 08 " EF5001_HEAD) != 0x9000)
        return -1;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint8_t *snapshot(const struct fx *fx)
{
    uint8_t *img = malloc(CARD_NVM_DEFAULT_SIZE);
    assert_non_null(img);
    nvm_sim_snapshot(&fx->nvm, img);
    return img;
}

static bool nvm_equals(const struct fx *fx, const uint8_t *img)
{
    uint8_t *now = snapshot(fx);
    bool same = memcmp(now, img, CARD_NVM_DEFAULT_SIZE) == 0;
    free(now);
    return same;
}

/* The current EF is still 5001 with its data (the check itself is read-only). */
static void expect_current_unchanged(struct fx *fx)
{
    APDU(fx, "00B0 0000 08", 0x9000);
    fx_expect_data(fx, EF5001_HEAD);
}

/* Sends raw bytes and checks SW, an untouched image and an unchanged current file. */
static void refused_raw(struct fx *fx, const uint8_t *apdu, size_t len, uint16_t want,
                        const char *what)
{
    uint8_t *img = snapshot(fx);
    unsigned long writes = fx->nvm.writes;
    uint16_t sw = fx_raw(fx, apdu, len);
    if (sw != want)
        fail_msg("%s: SW %04X, expected %04X", what, sw, want);
    if (!nvm_equals(fx, img) || fx->nvm.writes != writes)
        fail_msg("%s: NVM changed", what);
    free(img);
    if (sw != 0x9000 && fx_data_len(fx) != 0)
        fail_msg("%s: error with data", what);
    expect_current_unchanged(fx);
}

static void refused(struct fx *fx, const char *hex, uint16_t want)
{
    uint8_t buf[CARD_MAX_NC + 16];
    int n = fx_hex(hex, buf, sizeof buf);
    assert_true(n >= 0);
    refused_raw(fx, buf, (size_t)n, want, hex);
}

struct case_sw {
    const char *apdu;
    uint16_t sw;
};

static void run_refused(struct fx *fx, const struct case_sw *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        refused(fx, c[i].apdu, c[i].sw);
}

#define RUN(fx, table) run_refused((fx), (table), sizeof(table) / sizeof(table)[0])

/* An extended-length case 3 APDU: header, 00 Lc1 Lc2, nc bytes of data (byte i = i*7+seed). */
static uint8_t *build_ext(uint8_t ins, uint8_t p1, uint8_t p2, size_t nc, uint8_t seed,
                          size_t *len)
{
    uint8_t *b = malloc(7 + nc);
    assert_non_null(b);
    b[0] = 0x00;
    b[1] = ins;
    b[2] = p1;
    b[3] = p2;
    b[4] = 0x00;
    b[5] = (uint8_t)(nc >> 8);
    b[6] = (uint8_t)nc;
    for (size_t i = 0; i < nc; i++)
        b[7 + i] = (uint8_t)(i * 7u + seed);
    *len = 7 + nc;
    return b;
}

/* ---- lengths ------------------------------------------------------------------------------ */

static void test_shorter_than_header(void **state)
{
    struct fx *fx = *state;
    static const uint8_t hdr[4] = { 0x00, 0xB0, 0x00, 0x00 };
    static const uint8_t sel[4] = { 0x00, 0xA4, 0x00, 0x00 };
    static const uint8_t ff[4] = { 0xFF, 0xFF, 0xFF, 0xFF };
    for (size_t len = 0; len < 4; len++) {
        refused_raw(fx, hdr, len, 0x6700, "short READ BINARY header");
        refused_raw(fx, sel, len, 0x6700, "short SELECT header");
        refused_raw(fx, ff, len, 0x6700, "short FF header");
    }
}

static void test_lc_mismatch(void **state)
{
    static const struct case_sw c[] = {
        /* one byte short */
        { "00A4 080C 04 500050", 0x6700 },
        { "0020 0081 06 3132333435", 0x6700 },
        { "00D6 0000 04 AABBCC", 0x6700 },
        { "00DA DF02 04 544553", 0x6700 },
        { "0024 0081 0C 313233343536 3635343332", 0x6700 },
        { "002C 0181 08 31323334353637", 0x6700 },
        { "00E0 0000 15 6213 820101 83025009 80020040 8603000102 8801", 0x6700 },
        { "00E4 0000 02 50", 0x6700 },
        /* one byte long: read as Le, a case these commands do not have */
        { "0020 0081 06 31323334353637", 0x6700 },
        { "00D6 0000 04 AABBCCDDEE", 0x6700 },
        { "00DA DF02 04 5445535454", 0x6700 },
        { "0024 0081 0C 313233343536 36353433323131", 0x6700 },
        { "002C 0181 08 313233343536373839", 0x6700 },
        { "00E0 0000 15 6213 820101 83025009 80020040 8603000102 880108 00", 0x6700 },
        { "00E4 0000 02 500100", 0x6700 },
        { "0044 0000 02 500100", 0x6700 },
        { "0004 0000 02 500100", 0x6700 },
        /* two bytes long (no case at all) */
        { "00A4 080C 04 50005001 0000", 0x6700 },
        { "00B0 0000 01 AA 0000", 0x6700 },
        /* Lc byte 00 opens the extended form, which then does not match */
        { "00D6 0000 00 AA", 0x6700 },
        { "00D6 0000 00 AABB", 0x6700 },
        { "00D6 0000 000000 AA", 0x6700 },
        { "00D6 0000 000004 AABBCC", 0x6700 },
        { "00D6 0000 000002 AABBCC", 0x6700 },
        { "00B0 0000 0000", 0x6700 },
        { "00B0 0000 00000800", 0x6700 },
    };
    RUN(*state, c);
}

static void test_le_missing_or_unexpected(void **state)
{
    static const struct case_sw c[] = {
        { "00B0 0000", 0x6700 },           /* READ BINARY without Le */
        { "00B0 0000 01 08", 0x6700 },     /* ... with data instead */
        { "00B0 0000 01 08 08", 0x6700 },  /* ... with data and Le */
        { "0084 0000", 0x6700 },           /* GET CHALLENGE without Le */
        { "0084 0000 02 0000 08", 0x6700 },
        { "00CA DF01", 0x6700 },           /* GET DATA without Le */
        { "00CA DF05", 0x6700 },
        { "00CA DF01 01 00 08", 0x6700 },
        { "00C0 0000", 0x6700 },           /* GET RESPONSE without Le */
        { "00D6 0000 08", 0x6700 },        /* UPDATE BINARY with only Le */
        { "00D6 0000", 0x6700 },
        { "00E0 0000", 0x6700 },           /* CREATE FILE without data */
        { "00E0 0000 00", 0x6700 },
        { "0024 0081 00", 0x6700 },        /* CHANGE REFERENCE DATA case 2 */
        { "00DA DF02", 0x6700 },           /* PUT DATA without data */
        { "0020 0081 00", 0x6700 },        /* VERIFY with Le */
        { "00E4 0000 00", 0x6700 },        /* DELETE FILE with Le */
        { "0044 0000 00", 0x6700 },
        { "0004 0000 00", 0x6700 },
        { "00FE 0000 00", 0x6700 },        /* TERMINATE with Le */
        { "00FE 0000 01 00", 0x6700 },     /* ... with data */
        { "002C 0381 00", 0x6700 },
    };
    RUN(*state, c);
}

static void test_extended_where_not_allowed(void **state)
{
    static const struct case_sw c[] = {
        { "0020 0081 000006 313233343536", 0x6700 },
        { "0020 0081 000006 393939393939", 0x6700 },
        { "00A4 080C 000004 50005002", 0x6700 },
        { "00A4 0800 000004 50005002 0000", 0x6700 },
        { "00A4 0000 000000", 0x6700 },           /* SELECT case 2E */
        { "00E4 0000 000002 5001", 0x6700 },
        { "0044 0000 000002 5001", 0x6700 },
        { "0004 0000 000002 5001", 0x6700 },
        { "00DA DF02 000002 4142", 0x6700 },
        { "0024 0081 00000C 313233343536 363534333231", 0x6700 },
        { "002C 0181 000008 3132333435363738", 0x6700 },
        { "002C 0081 00000E 3132333435363738 393939393939", 0x6700 },
        /* allowed commands, but not in a case they have */
        { "00B0 0000 000001 00 0008", 0x6700 },
        { "00D6 0000 000001 AA 0001", 0x6700 },
    };
    RUN(*state, c);
}

static void test_nc_above_limit(void **state)
{
    struct fx *fx = *state;
    static const size_t sizes[] = { CARD_MAX_NC + 1, CARD_MAX_NC + 100, 4096, 65535 };
    static const uint8_t ins[] = { 0xD6, 0xE0, 0x20, 0xDA };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof ins; j++) {
            size_t len;
            uint8_t *a = build_ext(ins[j], 0x00, ins[j] == 0x20 ? 0x81 : 0x00, sizes[i], 1,
                                   &len);
            refused_raw(fx, a, len, 0x6700, "Nc above CARD_MAX_NC");
            free(a);
        }
    }
}

/* ---- classes and instructions ------------------------------------------------------------- */

static void test_unknown_class_and_instruction(void **state)
{
    static const struct case_sw c[] = {
        { "FFB0 0000 08", 0x6E00 }, { "FFA4 0000", 0x6E00 },   { "20B0 0000 08", 0x6E00 },
        { "3FB0 0000 08", 0x6E00 }, { "A0B0 0000 08", 0x6E00 }, { "B0B0 0000 08", 0x6E00 },
        { "C0B0 0000 08", 0x6E00 }, { "E0B0 0000 08", 0x6E00 }, { "FEB0 0000 08", 0x6E00 },
        /* interindustry: channel, secure messaging; chaining on a command without data */
        { "01B0 0000 08", 0x6881 }, { "02B0 0000 08", 0x6881 }, { "03B0 0000 08", 0x6881 },
        { "40B0 0000 08", 0x6881 }, { "60B0 0000 08", 0x6881 }, { "7FB0 0000 08", 0x6881 },
        { "04B0 0000 08", 0x6882 }, { "08B0 0000 08", 0x6882 }, { "0CB0 0000 08", 0x6882 },
        { "10B0 0000 08", 0x6700 }, { "14D6 0000 01 00", 0x6882 },
        { "0120 0081 06 313233343536", 0x6881 },
        /* proprietary class: no commands (yet) */
        { "80B0 0000 08", 0x6D00 }, { "80A4 0000", 0x6D00 },
        { "80C0 0000 00", 0x6D00 }, { "81B0 0000 08", 0x6881 }, { "84B0 0000 08", 0x6882 },
        { "90B0 0000 08", 0x6D00 },
        /* unknown instructions */
        { "0000 0000", 0x6D00 },    { "0012 0000", 0x6D00 },    { "00FF 0000", 0x6D00 },
        { "00B1 0000 08", 0x6D00 }, { "00D7 0000 01 00", 0x6D00 }, { "000E 0000", 0x6D00 },
        { "0088 0000 00", 0x6D00 }, { "0082 0000", 0x6D00 },    { "0022 41B6 00", 0x6D00 },
        { "00B2 0104 00", 0x6D00 }, { "0070 0000 01", 0x6D00 }, { "0060 0000", 0x6D00 },
    };
    RUN(*state, c);
}

static void test_bad_p1p2_every_command(void **state)
{
    static const struct case_sw c[] = {
        /* SELECT */
        { "00A4 0500 02 5001", 0x6A86 },
        { "00A4 0700 02 5001", 0x6A86 },
        { "00A4 0A00 02 5001", 0x6A86 },
        { "00A4 FF00 02 5001", 0x6A86 },
        { "00A4 0008 02 5001 00", 0x6A86 },
        { "00A4 0001 02 5001 00", 0x6A86 },
        { "00A4 0002 02 5001 00", 0x6A86 },
        { "00A4 000D 02 5001", 0x6A86 },
        { "00A4 0010 02 5001 00", 0x6A86 },
        { "00A4 0080 02 5001 00", 0x6A86 },
        { "00A4 0000 02 1234 00", 0x6A82 },
        { "00A4 0100 02 5001 00", 0x6A82 }, /* an EF is no child DF */
        { "00A4 0200 02 5000 00", 0x6A82 }, /* a DF is no EF */
        { "00A4 0000 01 50", 0x6A87 },
        { "00A4 0000 03 500150", 0x6A87 },
        { "00A4 0300 02 3F00", 0x6A87 },
        { "00A4 0800 03 500050", 0x6A87 },
        { "00A4 0800 0C 500050015000500150005001", 0x6A87 },
        { "00A4 0800 04 50015000 00", 0x6A82 },
        { "00A4 0900 04 5000 5001 00", 0x6A82 },
        { "00A4 0400 04 A0000006 00", 0x6A82 },
        { "00A4 0400 11 A000000647494344A000000647494344FF 00", 0x6A82 },
        /* READ BINARY */
        { "00B0 A100 01", 0x6A86 },
        { "00B0 C100 01", 0x6A86 },
        { "00B0 E100 01", 0x6A86 },
        { "00B0 9F00 01", 0x6A86 },
        { "00B0 9E00 01", 0x6A82 },
        { "00B0 8200 01", 0x6A82 },
        { "00B0 0040 01", 0x6B00 },
        { "00B0 0041 01", 0x6B00 },
        { "00B0 7FFF 01", 0x6B00 },
        { "00B0 0100 01", 0x6B00 },
        { "00B0 8140 01", 0x6B00 },
        { "00B0 81FF 00", 0x6B00 },
        /* UPDATE BINARY */
        { "00D6 A100 01 AA", 0x6A86 },
        { "00D6 9E00 01 AA", 0x6A82 },
        { "00D6 0040 01 AA", 0x6B00 },
        { "00D6 7FFF 01 AA", 0x6B00 },
        { "00D6 8140 01 AA", 0x6B00 },
        { "00D6 003F 02 AABB", 0x6A84 },
        { "00D6 0030 11 000102030405060708090A0B0C0D0E0F10", 0x6A84 },
        { "00D6 813F 02 AABB", 0x6A84 },
        /* CREATE FILE */
        { "00E0 0100 12 6210 820101 83025009 80020040 8603000000", 0x6A86 },
        { "00E0 0001 12 6210 820101 83025009 80020040 8603000000", 0x6A86 },
        /* DELETE / ACTIVATE / DEACTIVATE FILE */
        { "00E4 0100 02 5001", 0x6A86 },
        { "00E4 0001", 0x6A86 },
        { "00E4 0000 01 50", 0x6A87 },
        { "00E4 0000 03 500100", 0x6A87 },
        { "00E4 0000 02 1234", 0x6A82 },
        { "0044 0100", 0x6A86 },
        { "0044 0001 02 5001", 0x6A86 },
        { "0044 0000 02 1234", 0x6A82 },
        { "0004 0100", 0x6A86 },
        { "0004 0000 02 1234", 0x6A82 },
        { "0004 0000 01 12", 0x6A87 },
        /* VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER */
        { "0020 0181 06 313233343536", 0x6A86 },
        { "0020 0082 08 3132333435363738", 0x6A88 },
        { "0020 0084", 0x6A88 },
        { "0024 0281 0C 313233343536 363534333231", 0x6A86 },
        { "0024 0085 0C 313233343536 363534333231", 0x6A88 },
        { "002C 0481 08 3132333435363738", 0x6A86 },
        { "002C 0182 08 3132333435363738", 0x6A88 },
        /* GET DATA / PUT DATA */
        { "00CA 0000 00", 0x6A88 },
        { "00CA DF00 00", 0x6A88 },
        { "00CA DF07 00", 0x6A88 },
        { "00CA 5F50 00", 0x6A88 },
        { "00CA 00DF 00", 0x6A88 },
        { "00DA DF01 02 0102", 0x6A88 },
        { "00DA DF03 01 05", 0x6A88 },
        { "00DA 0000 01 00", 0x6A88 },
        /* GET CHALLENGE / TERMINATE / GET RESPONSE */
        { "0084 0100 08", 0x6A86 },
        { "0084 0001 08", 0x6A86 },
        { "00FE 0100", 0x6A86 },
        { "00FE 0001", 0x6A86 },
        { "00C0 0100 00", 0x6A86 },
        { "00C0 0000 00", 0x6985 }, /* nothing pending */
        { "00C0 0000 10", 0x6985 },
    };
    RUN(*state, c);
}

/* Access refusals with a current file: nothing changes either. */
static void test_refusals_keep_state(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0020 FF81", 0x9000);
    static const struct case_sw c[] = {
        { "00D6 0000 01 AA", 0x6982 },
        { "00D6 8100 01 AA", 0x6982 },
        { "00E4 0000", 0x6982 },
        { "00E4 0000 02 5001", 0x6982 },
        { "00DA DF02 02 4142", 0x6982 },
        { "00FE 0000", 0x6982 },
        { "0044 0000", 0x6982 },
        { "0004 0000", 0x6982 },
        { "002C 0381", 0x6982 },
        { "0024 0181 06 393939393939", 0x6985 },
        { "00E0 0000 12 6210 820101 83025009 80020040 8603000000", 0x6982 },
    };
    RUN(fx, c);
}

/* ISO 7816-4 (data unit handling): a command using a short EF identifier makes the EF current
 * "if the process is completed". A READ/UPDATE BINARY refused after the SFI lookup (offset past
 * the end, access condition, deactivated or internal EF) must leave the previous EF current.
 * (Regression test: binary_target() used to set the current EF before those checks.) */
static void test_sfi_refusal_keeps_current_ef(void **state)
{
    struct fx *fx = *state;
    /* EF 5003 in DF 5000: 16 bytes, SFI 3, read always, update never */
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00E0 0000 15 6213 820101 83025003 80020010 860300FF02 880118", 0x9000);
    APDU(fx, "00A4 020C 02 5001", 0x9000);
    expect_current_unchanged(fx);
    refused(fx, "00B0 8310 01", 0x6B00); /* offset past the end of EF 5003 */
    refused(fx, "00D6 8300 01 AA", 0x6982); /* update never */
}

/* ---- extended lengths where they are allowed ---------------------------------------------- */

/* Personalized, admin verified, EF 5003 of 1500 bytes (all ACs always) current in DF 5000. */
static void make_big_ef(struct fx *fx)
{
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00E0 0000 12 6210 820101 83025003 800205DC 8603000000", 0x9000);
}

static void check_pattern(const struct fx *fx, size_t off, size_t n)
{
    assert_int_equal(fx_data_len(fx), n);
    for (size_t i = 0; i < n; i++) {
        size_t at = off + i;
        uint8_t want = at < 1000 ? (uint8_t)(at * 7u + 3u) : (uint8_t)((at - 1000) * 7u + 9u);
        if (fx->rsp[i] != want)
            fail_msg("byte %zu: %02X, expected %02X", at, fx->rsp[i], want);
    }
}

static void test_extended_update_and_read(void **state)
{
    struct fx *fx = *state;
    make_big_ef(fx);
    size_t len;
    uint8_t *a = build_ext(0xD6, 0x00, 0x00, 1000, 3, &len);
    assert_int_equal(fx_raw(fx, a, len), 0x9000);
    free(a);
    a = build_ext(0xD6, 0x03, 0xE8, 500, 9, &len); /* offset 1000 */
    assert_int_equal(fx_raw(fx, a, len), 0x9000);
    free(a);
    /* more than the EF holds from that offset: not enough room, nothing written */
    a = build_ext(0xD6, 0x02, 0x58, 1000, 0x55, &len); /* offset 600 */
    uint8_t *img = snapshot(fx);
    assert_int_equal(fx_raw(fx, a, len), 0x6A84);
    assert_true(nvm_equals(fx, img));
    free(img);
    free(a);

    APDU(fx, "00B0 0000 00012C", 0x9000); /* 300 bytes, more than a short Le */
    check_pattern(fx, 0, 300);
    APDU(fx, "00B0 0000 000400", 0x9000); /* 1024 */
    check_pattern(fx, 0, 1024);
    APDU(fx, "00B0 0000 000000", 0x9000); /* Le 0000: as much as the card sends */
    check_pattern(fx, 0, 1024);
    APDU(fx, "00B0 01F4 000200", 0x9000); /* offset 500, 512 bytes over the seam at 1000 */
    check_pattern(fx, 500, 512);
    APDU(fx, "00B0 03E8 0001F4", 0x9000); /* exactly to the end */
    check_pattern(fx, 1000, 500);
    APDU(fx, "00B0 03E8 000200", 0x6282); /* 512 asked, 500 there */
    check_pattern(fx, 1000, 500);
    APDU(fx, "00B0 03E8 000000", 0x9000); /* Le 0000 reaching the end is no surprise */
    check_pattern(fx, 1000, 500);
    APDU(fx, "00B0 05DB 000002", 0x6282);
    check_pattern(fx, 1499, 1);
    APDU(fx, "00B0 05DC 000001", 0x6B00);
    APDU(fx, "00B0 0000 00", 0x9000); /* short Le 00: 256 */
    check_pattern(fx, 0, 256);
    /* the card's largest response is CARD_MAX_NE bytes */
    uint16_t sw = fx_apdu(fx, "00B0 0000 0005DC");
    assert_true(sw == 0x9000 || (sw & 0xFF00u) == 0x6100);
    check_pattern(fx, 0, CARD_MAX_NE);

    /* survives a power cycle */
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "00A4 080C 04 50005003", 0x9000);
    APDU(fx, "00B0 0258 0003E8", 0x6282); /* offset 600, 1000 asked, 900 there */
    check_pattern(fx, 600, 900);
}

static void test_extended_get_data_and_challenge(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00CA DF05 00", 0x9000);
    uint8_t list[48];
    assert_int_equal(fx_data_len(fx), sizeof list);
    memcpy(list, fx->rsp, sizeof list);
    APDU(fx, "00CA DF05 000000", 0x9000);
    assert_int_equal(fx_data_len(fx), sizeof list);
    assert_memory_equal(fx->rsp, list, sizeof list);
    APDU(fx, "00CA DF01 000008", 0x9000);
    assert_int_equal(fx_data_len(fx), 8);

    APDU(fx, "0084 0000 08", 0x9000);
    assert_int_equal(fx_data_len(fx), 8);
    uint8_t c1[8];
    memcpy(c1, fx->rsp, 8);
    APDU(fx, "0084 0000 08", 0x9000);
    assert_memory_not_equal(fx->rsp, c1, 8);
    APDU(fx, "0084 0000 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 256);
    APDU(fx, "0084 0000 000300", 0x9000);
    assert_int_equal(fx_data_len(fx), 0x300);
    APDU(fx, "0084 0000 000400", 0x9000);
    assert_int_equal(fx_data_len(fx), CARD_MAX_NE);
}

/* ---- 61xx and GET RESPONSE ------------------------------------------------------------------ */

static void test_get_response_chain(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00CA DF05 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 48);
    uint8_t full[48], got[48];
    memcpy(full, fx->rsp, sizeof full);

    APDU(fx, "00CA DF05 10", 0x6120);
    assert_int_equal(fx_data_len(fx), 16);
    memcpy(got, fx->rsp, 16);
    APDU(fx, "00C0 0000 10", 0x6110);
    assert_int_equal(fx_data_len(fx), 16);
    memcpy(got + 16, fx->rsp, 16);
    APDU(fx, "00C0 0000 10", 0x9000);
    assert_int_equal(fx_data_len(fx), 16);
    memcpy(got + 32, fx->rsp, 16);
    assert_memory_equal(got, full, sizeof full);
    APDU(fx, "00C0 0000 10", 0x6985);
    assert_int_equal(fx_data_len(fx), 0);
}

static void test_get_response_sizes(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00CA DF05 00", 0x9000);
    uint8_t full[48];
    memcpy(full, fx->rsp, sizeof full);
    APDU(fx, "00CA DF05 05", 0x612B);
    assert_int_equal(fx_data_len(fx), 5);
    assert_memory_equal(fx->rsp, full, 5);
    APDU(fx, "00C0 0000 01", 0x612A);
    assert_int_equal(fx_data_len(fx), 1);
    assert_memory_equal(fx->rsp, full + 5, 1);
    APDU(fx, "00C0 0000 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 42);
    assert_memory_equal(fx->rsp, full + 6, 42);
    APDU(fx, "00C0 0000 00", 0x6985);

    /* another command drops what was pending */
    APDU(fx, "00CA DF05 10", 0x6120);
    APDU(fx, "00CA DF03 01", 0x9000);
    APDU(fx, "00C0 0000 10", 0x6985);
    APDU(fx, "00CA DF05 10", 0x6120);
    APDU(fx, "00A4 0000 00", 0x9000);
    APDU(fx, "00C0 0000 10", 0x6985);
    /* so does a power event */
    APDU(fx, "00CA DF05 10", 0x6120);
    card_reset(&fx->card);
    APDU(fx, "00C0 0000 10", 0x6985);
    /* an exact Le leaves nothing */
    APDU(fx, "00CA DF05 30", 0x9000);
    APDU(fx, "00C0 0000 00", 0x6985);
}

static void test_get_response_over_256(void **state)
{
    struct fx *fx = *state; /* blank card: no access conditions, 30 more files */
    for (unsigned i = 0; i < 30; i++) {
        char apdu[80];
        /* EF 6000+i, 4 bytes, under the MF */
        snprintf(apdu, sizeof apdu, "00E0 0000 0D 620B 820101 8302%04X 80020004",
                 0x6000u + i);
        APDU(fx, apdu, 0x9000);
    }
    APDU(fx, "00CA DF05 000000", 0x9000);
    assert_int_equal(fx_data_len(fx), 31 * 12);
    uint8_t full[31 * 12];
    memcpy(full, fx->rsp, sizeof full);
    APDU(fx, "00CA DF05 10", 0x6100); /* 356 left: "256 or more" */
    assert_memory_equal(fx->rsp, full, 16);
    APDU(fx, "00C0 0000 00", 0x6164); /* 256 sent, 100 left */
    assert_int_equal(fx_data_len(fx), 256);
    assert_memory_equal(fx->rsp, full + 16, 256);
    APDU(fx, "00C0 0000 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 100);
    assert_memory_equal(fx->rsp, full + 272, 100);
}

/* ---- command chaining (ISO 7816-4 5.3.3) ----------------------------------------------------- */

/* Byte i of test data: i*7 + seed, as build_ext writes it. */
static void fill_pattern(uint8_t *buf, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7u + seed);
}

/* Sends CLA INS P1 P2 with nc bytes of data and Ne ne (0: no Le), short unless ext. */
static uint16_t send_cmd(struct fx *fx, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2,
                         const uint8_t *data, size_t nc, size_t ne, bool ext)
{
    struct capdu c = { .cla = cla, .ins = ins, .p1 = p1, .p2 = p2, .data = nc ? data : NULL,
                       .nc = nc, .ne = ne };
    uint8_t *buf = malloc(APDU_HEADER_LEN + 3 + nc + 3);
    assert_non_null(buf);
    size_t len = 0;
    assert_int_equal(apdu_build(&c, ext, buf, APDU_HEADER_LEN + 3 + nc + 3, &len), 0);
    uint16_t sw = fx_raw(fx, buf, len);
    free(buf);
    return sw;
}

/* Sends data as a chain of short commands of at most link bytes: all but the last with
 * CLA | 10. Returns the last SW; every link before must answer 9000 without data. */
static uint16_t send_chain(struct fx *fx, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2,
                           const uint8_t *data, size_t nc, size_t link, size_t ne)
{
    size_t off = 0;
    while (nc - off > link) {
        assert_int_equal(send_cmd(fx, cla | 0x10u, ins, p1, p2, data + off, link, 0, false),
                         0x9000);
        assert_int_equal(fx_data_len(fx), 0);
        off += link;
    }
    return send_cmd(fx, cla, ins, p1, p2, data + off, nc - off, ne, false);
}

static bool chain_wiped(const struct fx *fx)
{
    if (fx->card.chain.active || fx->card.chain.len != 0)
        return false;
    for (size_t i = 0; i < sizeof fx->card.chain.data; i++)
        if (fx->card.chain.data[i] != 0)
            return false;
    return true;
}

/* A 300-byte UPDATE BINARY as two chained short commands leaves the card exactly as the same
 * command sent once in extended form: same NVM image, same data read back. */
static void test_chain_update_equals_extended(void **state)
{
    (void)state;
    struct fx a, b;
    assert_int_equal(fx_open(&a), 0);
    assert_int_equal(fx_open(&b), 0);
    assert_int_equal(fx_personalize(&a), 0);
    assert_int_equal(fx_personalize(&b), 0);
    make_big_ef(&a);
    make_big_ef(&b);
    uint8_t data[300];
    fill_pattern(data, sizeof data, 3);

    assert_int_equal(send_chain(&a, 0x00, 0xD6, 0x00, 0x00, data, sizeof data, 255, 0),
                     0x9000);
    assert_int_equal(fx_data_len(&a), 0);
    assert_true(chain_wiped(&a));
    size_t len;
    uint8_t *ext = build_ext(0xD6, 0x00, 0x00, sizeof data, 3, &len);
    assert_int_equal(fx_raw(&b, ext, len), 0x9000);
    free(ext);

    uint8_t *ia = snapshot(&a), *ib = snapshot(&b);
    assert_memory_equal(ia, ib, CARD_NVM_DEFAULT_SIZE);
    free(ia);
    free(ib);
    APDU(&a, "00B0 0000 00012C", 0x9000);
    check_pattern(&a, 0, 300);
    APDU(&b, "00B0 0000 00012C", 0x9000);
    check_pattern(&b, 0, 300);

    /* links may be extended where the command allows it (300 + 200 at offset 500), and the
     * last command may carry no data: the chain's data is the command's */
    uint8_t big[1000];
    fill_pattern(big, sizeof big, 3);
    assert_int_equal(send_cmd(&a, 0x10, 0xD6, 0x01, 0xF4, big + 500, 300, 0, true), 0x9000);
    assert_int_equal(send_cmd(&a, 0x10, 0xD6, 0x01, 0xF4, big + 800, 200, 0, false), 0x9000);
    assert_int_equal(send_cmd(&a, 0x00, 0xD6, 0x01, 0xF4, NULL, 0, 0, false), 0x9000);
    APDU(&a, "00B0 01F4 0001F4", 0x9000);
    check_pattern(&a, 500, 500);
    fx_close(&a);
    fx_close(&b);
}

/* CREATE FILE with its FCP cut into three links, one cut inside a TLV. */
static void test_chain_create_file(void **state)
{
    struct fx *fx = *state; /* blank card */
    uint8_t fcp[32];
    int n = fx_hex("6213 820101 83026001 80020010 8603000000 880108", fcp, sizeof fcp);
    assert_true(n > 0);
    assert_int_equal(send_chain(fx, 0x00, 0xE0, 0x00, 0x00, fcp, (size_t)n, 7, 0), 0x9000);
    assert_true(chain_wiped(fx));
    APDU(fx, "00A4 0000 02 6001 00", 0x9000);
    assert_int_equal(fx->rsp[0], 0x62);
    APDU(fx, "00D6 8100 03 AABBCC", 0x9000); /* SFI 1 from the chained FCP */
    APDU(fx, "00B0 0000 03", 0x9000);
    fx_expect_data(fx, "AABBCC");
    /* the same file sent again in one command: the FID now exists */
    APDU(fx, "00A4 0000 00", 0x9000);
    assert_int_equal(send_cmd(fx, 0x00, 0xE0, 0x00, 0x00, fcp, (size_t)n, 0, false), 0x6A89);
}

/* A PIN sent in two links verifies; a wrong one counts one try; the chain buffer is wiped. */
static void test_chain_verify(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "1020 0081 03 313233", 0x9000);
    assert_int_equal(fx->card.chain.len, 3);
    APDU(fx, "0020 0081 03 343536", 0x9000);
    assert_true(chain_wiped(fx));
    APDU(fx, "0020 0081", 0x9000); /* verified */
    APDU(fx, "0020 FF81", 0x9000);
    APDU(fx, "1020 0081 02 3132", 0x9000);
    APDU(fx, "1020 0081 02 3334", 0x9000);
    APDU(fx, "0020 0081 02 3537", 0x63C2);
    assert_true(chain_wiped(fx));
    APDU(fx, "0020 0081 06 313233343536", 0x9000); /* back to 3 tries */
    /* longer than a PIN in total: refused as one VERIFY of that length would be */
    APDU(fx, "1020 0081 0A 31323334353637383930", 0x9000);
    APDU(fx, "0020 0081 0A 31323334353637383930", 0x6700);
    assert_true(chain_wiped(fx));
    APDU(fx, "0020 0081", 0x9000);
}

/* A command that does not continue the chain gets 6883, is not run, and ends the chain. */
static void test_chain_broken(void **state)
{
    struct fx *fx = *state;
    make_big_ef(fx);
    uint8_t data[255];
    fill_pattern(data, sizeof data, 0x40);
    uint8_t *img = snapshot(fx);
    unsigned long writes = fx->nvm.writes;
    static const char *const breakers[] = {
        "00B0 0000 08",           /* other INS */
        "00D6 0001 02 AABB",      /* other P2, a command that would write */
        "00D6 0100 02 AABB",      /* other P1 */
        "80D6 0000 02 AABB",      /* other class */
        "00C0 0000 00",           /* GET RESPONSE */
        "00CA DF01 08",
        "0020 0081 06 313233343536",
    };
    for (size_t i = 0; i < sizeof breakers / sizeof breakers[0]; i++) {
        assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, sizeof data, 0, false),
                         0x9000);
        uint16_t sw = fx_apdu(fx, breakers[i]);
        if (sw != 0x6883)
            fail_msg("%s in a chain: SW %04X", breakers[i], sw);
        assert_int_equal(fx_data_len(fx), 0);
        assert_true(chain_wiped(fx));
    }
    /* a malformed command ends it too (6700) */
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, sizeof data, 0, false), 0x9000);
    APDU(fx, "00D6 0000 05 AABB", 0x6700);
    assert_true(chain_wiped(fx));
    assert_true(nvm_equals(fx, img));
    assert_int_equal(fx->nvm.writes, writes);
    free(img);

    /* after the break the card answers normally again, and a command like the chain's last
     * one is a command of its own: only its 2 bytes are written */
    APDU(fx, "00CA DF01 08", 0x9000);
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, sizeof data, 0, false), 0x9000);
    APDU(fx, "00B0 0000 08", 0x6883);
    APDU(fx, "00D6 0000 02 AABB", 0x9000);
    APDU(fx, "00B0 0000 03", 0x9000);
    fx_expect_data(fx, "AABB00");

    /* pending GET RESPONSE data does not survive a chain either */
    assert_int_equal(fx_apdu(fx, "00CA DF05 10") & 0xFF00u, 0x6100);
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, 4, 0, false), 0x9000);
    APDU(fx, "00C0 0000 10", 0x6883);
    APDU(fx, "00C0 0000 10", 0x6985);
}

/* More than CARD_MAX_NC bytes in total: 6700, nothing written, the chain dropped. */
static void test_chain_over_limit(void **state)
{
    struct fx *fx = *state;
    make_big_ef(fx);
    uint8_t data[CARD_MAX_NC + 1];
    fill_pattern(data, sizeof data, 5);
    uint8_t *img = snapshot(fx);

    /* four links of 255 (1020), then a fifth link of 5 */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data + 255 * i, 255, 0, false),
                         0x9000);
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data + 1020, 5, 0, false), 0x6700);
    assert_true(chain_wiped(fx));
    /* ... or a last command of 5 */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data + 255 * i, 255, 0, false),
                         0x9000);
    assert_int_equal(send_cmd(fx, 0x00, 0xD6, 0x00, 0x00, data + 1020, 5, 0, false), 0x6700);
    assert_true(chain_wiped(fx));
    /* ... or one extended link of 1025 */
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, CARD_MAX_NC + 1, 0, true),
                     0x6700);
    assert_true(chain_wiped(fx));
    assert_true(nvm_equals(fx, img));
    free(img);
    /* the card takes the next command as a fresh one */
    APDU(fx, "00CA DF01 08", 0x9000);

    /* exactly CARD_MAX_NC is fine */
    assert_int_equal(send_chain(fx, 0x00, 0xD6, 0x00, 0x00, data, CARD_MAX_NC, 255, 0),
                     0x9000);
    APDU(fx, "00B0 0000 000400", 0x9000);
    assert_int_equal(fx_data_len(fx), CARD_MAX_NC);
    assert_memory_equal(fx->rsp, data, CARD_MAX_NC);
}

/* Reset and power-off drop a chain (and wipe it): the last command then stands alone. */
static void test_chain_dropped_by_reset(void **state)
{
    struct fx *fx = *state;
    make_big_ef(fx);
    uint8_t data[255];
    fill_pattern(data, sizeof data, 9);
    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, sizeof data, 0, false), 0x9000);
    card_reset(&fx->card);
    assert_true(chain_wiped(fx));
    APDU(fx, "00A4 080C 04 50005003", 0x9000); /* accepted: no chain waits any more */
    APDU(fx, "00D6 0000 02 AABB", 0x9000);
    APDU(fx, "00B0 0000 03", 0x9000);
    fx_expect_data(fx, "AABB00");

    assert_int_equal(send_cmd(fx, 0x10, 0xD6, 0x00, 0x00, data, sizeof data, 0, false), 0x9000);
    card_power_off(&fx->card);
    assert_true(chain_wiped(fx));
    card_power_on(&fx->card);
    APDU(fx, "00A4 080C 04 50005003", 0x9000);
    APDU(fx, "00B0 0000 03", 0x9000);
    fx_expect_data(fx, "AABB00");
}

/* Chaining bit where it cannot apply: refused with 6700 before any chain starts. */
static void test_chain_refused(void **state)
{
    static const struct case_sw c[] = {
        { "10B0 0000 08", 0x6700 },               /* READ BINARY takes no data */
        { "10CA DF01 08", 0x6700 },
        { "10FE 0000", 0x6700 },
        { "10C0 0000 00", 0x6700 },               /* GET RESPONSE */
        { "10D6 0000", 0x6700 },                  /* empty data field */
        { "1020 0081", 0x6700 },
        { "10A4 0000", 0x6700 },
        { "1020 0081 000003 313233", 0x6700 },    /* extended, VERIFY has no extended form */
        { "10D6 0000 000000", 0x6700 },           /* malformed extended Lc */
        { "11D6 0000 01 AA", 0x6881 },
        { "14D6 0000 01 AA", 0x6882 },
        { "10B1 0000 01 AA", 0x6D00 },
        { "90B0 0000 01 AA", 0x6D00 },
    };
    /* refused() also checks that no chain was left open: its READ BINARY would get 6883 */
    RUN(*state, c);
}

/* The last command of a chain has its own Le; a longer answer goes through 61xx/GET RESPONSE. */
static void test_chain_with_get_response(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00A4 0804 04 50005001 00", 0x9000);
    uint8_t fcp[CARD_MAX_NE];
    size_t n = fx_data_len(fx);
    assert_true(n > 5);
    memcpy(fcp, fx->rsp, n);

    APDU(fx, "10A4 0804 02 5000", 0x9000);
    assert_int_equal(fx_data_len(fx), 0);
    assert_int_equal(fx_apdu(fx, "00A4 0804 02 5001 05"), 0x6100 | (n - 5));
    assert_memory_equal(fx->rsp, fcp, 5);
    APDU(fx, "00C0 0000 00", 0x9000);
    assert_int_equal(fx_data_len(fx), n - 5);
    assert_memory_equal(fx->rsp, fcp + 5, n - 5);

    /* a Le on the last command of a chain for a command without response: 6700, no write */
    uint8_t *img = snapshot(fx);
    APDU(fx, "10D6 0000 01 AA", 0x9000);
    APDU(fx, "00D6 0000 01 BB 00", 0x6700);
    assert_true(chain_wiped(fx));
    assert_true(nvm_equals(fx, img));
    free(img);
    expect_current_unchanged(fx);

    /* proprietary commands chain as well (CLA 90), within their own class */
    APDU(fx, "90E6 0000 01 AA", 0x9000);
    APDU(fx, "00E6 0000 01 AA", 0x6883);
    expect_current_unchanged(fx);
}

/* ---- answer-to-reset -------------------------------------------------------------------------- */

/* Parses an ATR: interface bytes by the Y nibbles, K historical bytes, TCK when any T != 0 is
 * offered. Returns the historical bytes' offset, or -1. */
static int atr_hist(const uint8_t *atr, size_t n, size_t *k)
{
    if (n < 2 || (atr[0] != 0x3B && atr[0] != 0x3F))
        return -1;
    size_t i = 2;
    uint8_t y = atr[1] >> 4;
    *k = atr[1] & 0x0Fu;
    bool t_other = false;
    for (;;) {
        uint8_t td = 0;
        bool has_td = (y & 0x8u) != 0;
        i += (size_t)((y & 1u) + ((y >> 1) & 1u) + ((y >> 2) & 1u));
        if (!has_td)
            break;
        if (i >= n)
            return -1;
        td = atr[i++];
        if ((td & 0x0Fu) != 0)
            t_other = true;
        y = td >> 4;
    }
    if (i + *k + (t_other ? 1u : 0u) != n)
        return -1;
    return (int)i;
}

static void check_atr(struct fx *fx, uint8_t lcs)
{
    uint8_t atr[CARD_ATR_MAX];
    size_t n = card_atr(&fx->card, atr, sizeof atr);
    assert_true(n >= 2 && n <= CARD_ATR_MAX);
    assert_int_equal(atr[0], 0x3B);
    size_t k = 0;
    int h = atr_hist(atr, n, &k);
    assert_true(h > 0);
    uint8_t x = 0;
    for (size_t i = 1; i < n; i++)
        x ^= atr[i];
    assert_int_equal(x, 0); /* TCK: T0..TCK xor to zero */
    static const uint8_t hist_head[] = { 0x80, 0x31, 0x80, 0x73, 0xB4, 0x21, 0xC0, 0x83 };
    assert_int_equal(k, sizeof hist_head + 3);
    assert_memory_equal(atr + h, hist_head, sizeof hist_head);
    assert_int_equal(atr[h + 8], lcs);
    assert_int_equal(atr[h + 9], 0x90);
    assert_int_equal(atr[h + 10], 0x00);
    /* the same bytes whatever the buffer, nothing when it is too small */
    uint8_t *exact = malloc(n);
    assert_non_null(exact);
    assert_int_equal(card_atr(&fx->card, exact, n), n);
    assert_memory_equal(exact, atr, n);
    free(exact);
    uint8_t small[CARD_ATR_MAX];
    assert_int_equal(card_atr(&fx->card, small, n - 1), 0);
}

static void test_atr(void **state)
{
    struct fx *fx = *state; /* blank */
    check_atr(fx, 0x01);
    APDU(fx, "00DA DF02 04 54455354", 0x9000);
    check_atr(fx, 0x03);
    assert_int_equal(fx_personalize(fx), 0);
    check_atr(fx, 0x05);
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "00FE 0000", 0x9000);
    check_atr(fx, 0x0F);
    assert_int_equal(fx_reboot(fx), 0);
    check_atr(fx, 0x0F);
}

/* ---- response buffer of 2 bytes, no power --------------------------------------------------- */

static uint16_t process_cap(struct fx *fx, const char *hex, size_t cap, size_t *out)
{
    uint8_t cmd[64];
    int n = fx_hex(hex, cmd, sizeof cmd);
    assert_true(n >= 0);
    uint8_t *c = malloc((size_t)n);
    uint8_t *r = malloc(cap);
    assert_non_null(c);
    assert_non_null(r);
    memcpy(c, cmd, (size_t)n);
    size_t len = card_process(&fx->card, c, (size_t)n, r, cap);
    assert_int_equal(len, 2);
    uint16_t sw = (uint16_t)(r[0] << 8 | r[1]);
    free(c);
    free(r);
    *out = len;
    return sw;
}

static void test_process_cap_2(void **state)
{
    struct fx *fx = *state;
    size_t len;
    /* data that does not fit is cut: only the status word */
    uint16_t sw = process_cap(fx, "00CA DF01 08", 2, &len);
    assert_true(sw == 0x9000 || (sw & 0xFF00u) == 0x6100);
    assert_int_equal(process_cap(fx, "00A4 0000 00", 2, &len), 0x9000);
    assert_int_equal(process_cap(fx, "00B0 0000 08", 2, &len), 0x6986);
    assert_int_equal(process_cap(fx, "00A4 0000 02 1234", 2, &len), 0x6A82);
    assert_int_equal(process_cap(fx, "FFB0 0000 08", 2, &len), 0x6E00);
    assert_int_equal(process_cap(fx, "00", 2, &len), 0x6700);
    assert_int_equal(process_cap(fx, "0020 0081", 2, &len), 0x63C3);
    /* the card still works with a normal buffer */
    APDU(fx, "00CA DF01 08", 0x9000);
    assert_int_equal(fx_data_len(fx), 8);
}

static void test_unpowered(void **state)
{
    struct fx *fx = *state;
    card_power_off(&fx->card);
    uint8_t *img = snapshot(fx);
    APDU(fx, "00CA DF01 08", 0x6985);
    assert_int_equal(fx_data_len(fx), 0);
    APDU(fx, "0020 0081 06 313233343536", 0x6985);
    APDU(fx, "00A4 0000", 0x6985);
    APDU(fx, "00", 0x6985);
    assert_true(nvm_equals(fx, img));
    free(img);
    card_power_on(&fx->card);
    APDU(fx, "00CA DF01 08", 0x9000);
}

/* P1 = 80 (SFI 0) addresses the current EF with the offset in P2 (ISO 7816-4). */
static void test_sfi_zero_is_current_ef(void **state)
{
    (void)state;
    struct fx fx;
    assert_int_equal(fx_open(&fx), 0);
    assert_int_equal(fx_personalize(&fx), 0);
    assert_int_equal(fx_apdu(&fx, "0020008106313233343536"), 0x9000);
    assert_int_equal(fx_apdu(&fx, "00A4080C0450005001"), 0x9000);
    assert_int_equal(fx_apdu(&fx, "00D6000404 A1A2A3A4"), 0x9000);
    assert_int_equal(fx_apdu(&fx, "00B0800402"), 0x9000);
    assert_int_equal(fx_data_len(&fx), 2);
    assert_int_equal(fx.rsp[0], 0xA1);
    assert_int_equal(fx.rsp[1], 0xA2);
    assert_int_equal(fx_apdu(&fx, "00B0A00002"), 0x6A86); /* bits 7-6 of an SFI P1 are zero */
    fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sfi_zero_is_current_ef),
        cmocka_unit_test_setup_teardown(test_shorter_than_header, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lc_mismatch, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_le_missing_or_unexpected, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_extended_where_not_allowed, setup_current,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_nc_above_limit, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_class_and_instruction, setup_current,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_p1p2_every_command, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals_keep_state, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sfi_refusal_keeps_current_ef, setup_current,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_extended_update_and_read, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_extended_get_data_and_challenge, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_response_chain, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_response_sizes, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_response_over_256, fx_setup_blank, fx_teardown),
        cmocka_unit_test(test_chain_update_equals_extended),
        cmocka_unit_test_setup_teardown(test_chain_create_file, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_verify, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_broken, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_over_limit, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_dropped_by_reset, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_refused, setup_current, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_with_get_response, setup_current,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_atr, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_process_cap_2, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unpowered, fx_setup_perso, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

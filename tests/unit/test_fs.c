/* File system through APDUs: CREATE/SELECT/READ/UPDATE/DELETE of EFs and DFs (nested, every
 * SELECT form), SFI addressing, FCP bytes, access conditions before and in the operational
 * state, internal EFs, DELETE of a subtree (children gone, space back, internal data wiped from
 * the raw NVM), file life cycle, filling the card, TERMINATE CARD USAGE, GET/PUT DATA and
 * persistence across a power cycle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_fixture.h"
#include "fx_assert.h"
#include "nvm_sim.h"

#define APDU(fx, hex, sw) assert_int_equal(fx_apdu((fx), (hex)), (sw))
#define CREATE(fx, content, sw) assert_int_equal(create_file((fx), (content)), (sw))

/* ---- fixtures ----------------------------------------------------------------------------- */

/* ---- helpers ------------------------------------------------------------------------------ */

/* CREATE FILE with the given FCP content (the 62 template and Lc are added here). */
static uint16_t create_file(struct fx *fx, const char *content)
{
    uint8_t c[200];
    int n = fx_hex(content, c, sizeof c);
    assert_true(n >= 0 && n <= 127);
    uint8_t a[7 + 200];
    a[0] = 0x00;
    a[1] = 0xE0;
    a[2] = 0x00;
    a[3] = 0x00;
    a[4] = (uint8_t)(n + 2);
    a[5] = 0x62;
    a[6] = (uint8_t)n;
    memcpy(a + 7, c, (size_t)n);
    return fx_raw(fx, a, 7 + (size_t)n);
}

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

static size_t count_in(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    size_t hits = 0;
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(hay + i, needle, m) == 0)
            hits++;
    return hits;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* GET DATA DF06: total, used and free bytes. */
static void nvm_info(struct fx *fx, uint32_t *total, uint32_t *used, uint32_t *free_bytes)
{
    APDU(fx, "00CA DF06 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 12);
    *total = be32(fx->rsp);
    *used = be32(fx->rsp + 4);
    *free_bytes = be32(fx->rsp + 8);
    assert_int_equal(*total, *used + *free_bytes);
}

/* GET DATA DF05 (extended Le) copied out; returns its length. */
static size_t file_list(struct fx *fx, uint8_t *out, size_t cap)
{
    APDU(fx, "00CA DF05 000000", 0x9000);
    size_t n = fx_data_len(fx);
    assert_true(n % 12 == 0 && n <= cap);
    memcpy(out, fx->rsp, n);
    return n;
}

/* The current EF is the one whose first two data bytes are its FID (as the tests write them). */
static void expect_current_ef(struct fx *fx, unsigned fid)
{
    APDU(fx, "00B0 0000 02", 0x9000);
    assert_int_equal(fx_data_len(fx), 2);
    assert_int_equal((fx->rsp[0] << 8) | fx->rsp[1], fid);
}

/* The FID (tag 83) in the FCP of the last response. */
static unsigned fcp_fid(const struct fx *fx)
{
    size_t n = fx_data_len(fx);
    assert_true(n >= 2 && fx->rsp[0] == 0x62 && fx->rsp[1] == n - 2);
    for (size_t i = 2; i + 1 < n; i += 2u + fx->rsp[i + 1])
        if (fx->rsp[i] == 0x83 && fx->rsp[i + 1] == 2)
            return (unsigned)(fx->rsp[i + 2] << 8 | fx->rsp[i + 3]);
    fail_msg("no FID in FCP");
    return 0;
}

static void select_expect(struct fx *fx, const char *apdu, unsigned fid)
{
    APDU(fx, apdu, 0x9000);
    assert_int_equal(fcp_fid(fx), fid);
}

/* A 16-byte working EF with all ACs "always", its FID written into its first two bytes. */
static void make_ef(struct fx *fx, unsigned fid)
{
    char c[64], u[40];
    snprintf(c, sizeof c, "820101 8302%04X 80020010 8603000000", fid);
    CREATE(fx, c, 0x9000);
    snprintf(u, sizeof u, "00D6 0000 02 %04X", fid);
    APDU(fx, u, 0x9000); /* the new EF is current */
}

/* A DF with a name "D" + FID (5 bytes), default ACs; it becomes the current DF. */
static void make_df(struct fx *fx, unsigned fid)
{
    char c[64], name[16];
    snprintf(name, sizeof name, "%04X", fid);
    snprintf(c, sizeof c, "820138 8302%04X 8405 44%02X%02X%02X%02X", fid, name[0], name[1],
             name[2], name[3]);
    CREATE(fx, c, 0x9000);
}

static void verify_admin(struct fx *fx)
{
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
}

static void verify_user(struct fx *fx)
{
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
}

/* On the personalized card, with the admin PIN verified:
 *   MF: EF 2F00, DF 5000 (fixture: EF 5001, EF 5002; added: DF 5100, DF 5200),
 *       DF 6000 (EF 6001)
 *   DF 5100 "D5100": EF 5101, DF 5110 "D5110" (EF 5111)
 *   DF 5200 "D5200": EF 5201
 * Every added EF holds its FID in its first two bytes. Ends with the MF current. */
static void make_tree(struct fx *fx)
{
    verify_admin(fx);
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    make_ef(fx, 0x2F00);
    make_df(fx, 0x6000);
    make_ef(fx, 0x6001);
    APDU(fx, "00A4 080C 02 5000", 0x9000);
    make_df(fx, 0x5100);
    make_ef(fx, 0x5101);
    make_df(fx, 0x5110);
    make_ef(fx, 0x5111);
    APDU(fx, "00A4 080C 02 5000", 0x9000);
    make_df(fx, 0x5200);
    make_ef(fx, 0x5201);
    APDU(fx, "00A4 000C 00", 0x9000);
}

/* ---- FCP ---------------------------------------------------------------------------------- */

#define FCP_MF "620F 820138 83023F00 8A0105 86030002FF"
#define FCP_5000 "6219 820138 83025000 8408A000000647494344 8A0105 8603000202"
#define FCP_5001 "6216 820101 83025001 80020040 880108 8A0105 8603000102"
#define FCP_5002 "6213 820109 83025002 80020020 8A0105 8603FF0202"

static void test_fcp_bytes(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00A4 0000 00", 0x9000);
    fx_expect_data(fx, FCP_MF);
    APDU(fx, "00A4 0000 02 3F00 00", 0x9000);
    fx_expect_data(fx, FCP_MF);
    APDU(fx, "00A4 0004 02 3F00 00", 0x9000);
    fx_expect_data(fx, FCP_MF);
    APDU(fx, "00A4 0400 08 A000000647494344 00", 0x9000);
    fx_expect_data(fx, FCP_5000);
    APDU(fx, "00A4 0200 02 5001 00", 0x9000);
    fx_expect_data(fx, FCP_5001);
    APDU(fx, "00A4 0204 02 5002 00", 0x9000);
    fx_expect_data(fx, FCP_5002);
    APDU(fx, "00A4 0800 04 50005001 00", 0x9000);
    fx_expect_data(fx, FCP_5001);
    /* P2 0C: nothing; no Le: nothing either */
    APDU(fx, "00A4 080C 04 50005001 00", 0x9000);
    fx_expect_data(fx, "");
    APDU(fx, "00A4 0800 04 50005001", 0x9000);
    fx_expect_data(fx, "");
    /* a short Le takes the first bytes, the rest via GET RESPONSE */
    APDU(fx, "00A4 0800 04 50005002 05", 0x6110);
    fx_expect_data(fx, "6213820109");
    APDU(fx, "00C0 0000 10", 0x9000);
    fx_expect_data(fx, "83025002 80020020 8A0105 8603FF0202");
}

static void test_create_defaults_in_fcp(void **state)
{
    struct fx *fx = *state; /* blank card */
    CREATE(fx, "820101 83020101 80020010", 0x9000); /* no ACs: read always, others admin */
    APDU(fx, "00A4 0000 02 0101 00", 0x9000);
    fx_expect_data(fx, "6213 820101 83020101 80020010 8A0105 8603000202");
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820109 83020102 800110 8603000000", 0x9000); /* internal: read forced never */
    APDU(fx, "00A4 0000 02 0102 00", 0x9000);
    fx_expect_data(fx, "6213 820109 83020102 80020010 8A0105 8603FF0000");
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820101 83020103 80020100 8A0103 880110 86030101FF", 0x9000);
    APDU(fx, "00A4 0000 02 0103 00", 0x9000);
    fx_expect_data(fx, "6216 820101 83020103 80020100 880110 8A0103 86030101FF");
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820138 83020200", 0x9000); /* DF without a name */
    APDU(fx, "00A4 0000 02 0200 00", 0x9000);
    fx_expect_data(fx, "620F 820138 83020200 8A0105 8603000202");
    /* created deactivated */
    CREATE(fx, "820101 83020201 80020004 8A0104", 0x9000);
    APDU(fx, "00A4 0200 02 0201 00", 0x6283);
    fx_expect_data(fx, "6213 820101 83020201 80020004 8A0104 8603000202");
}

/* ---- SELECT ----------------------------------------------------------------------------- */

static void test_select_mf_forms(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00A4 0000", 0x9000); /* case 1: the MF */
    APDU(fx, "00B0 0000 01", 0x6986);
    APDU(fx, "00A4 0100 02 5000 00", 0x9000); /* so 5000 is a child of the current DF */
    select_expect(fx, "00A4 0000 00", 0x3F00);
    select_expect(fx, "00A4 0400 00", 0x3F00); /* empty DF name: the MF */
    select_expect(fx, "00A4 0000 02 3F00 00", 0x3F00);
    APDU(fx, "00A4 0300 00", 0x6A82); /* the MF has no parent */
}

static void test_select_by_fid(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    select_expect(fx, "00A4 0000 02 5000 00", 0x5000); /* child DF of the MF */
    select_expect(fx, "00A4 0000 02 5000 00", 0x5000); /* the current DF itself */
    select_expect(fx, "00A4 0000 02 5001 00", 0x5001); /* child EF */
    expect_current_ef(fx, 0x0000); /* EF 5001 holds zeros */
    select_expect(fx, "00A4 0000 02 6000 00", 0x6000); /* sibling DF of 5000 */
    select_expect(fx, "00A4 0000 02 6001 00", 0x6001);
    expect_current_ef(fx, 0x6001);
    select_expect(fx, "00A4 0000 02 3F00 00", 0x3F00);
    select_expect(fx, "00A4 0000 02 2F00 00", 0x2F00);
    expect_current_ef(fx, 0x2F00);
    select_expect(fx, "00A4 0000 02 5000 00", 0x5000);
    select_expect(fx, "00A4 0000 02 5100 00", 0x5100);
    select_expect(fx, "00A4 0000 02 5200 00", 0x5200); /* sibling DF */
    select_expect(fx, "00A4 0000 02 5000 00", 0x5000); /* parent */
    select_expect(fx, "00A4 0000 02 5100 00", 0x5100);
    select_expect(fx, "00A4 0000 02 5110 00", 0x5110);
    select_expect(fx, "00A4 0000 02 5111 00", 0x5111);
    expect_current_ef(fx, 0x5111);
    /* not reachable by FID from DF 5110: EFs of the parent, grandparent's children, cousins */
    APDU(fx, "00A4 0000 02 5101 00", 0x6A82);
    APDU(fx, "00A4 0000 02 5200 00", 0x6A82);
    APDU(fx, "00A4 0000 02 5001 00", 0x6A82);
    APDU(fx, "00A4 0000 02 6000 00", 0x6A82);
    APDU(fx, "00A4 0000 02 2F00 00", 0x6A82);
    expect_current_ef(fx, 0x5111);
}

static void test_select_child_ef_parent(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    select_expect(fx, "00A4 0100 02 5000 00", 0x5000);
    APDU(fx, "00A4 0100 02 5001 00", 0x6A82); /* an EF is no child DF */
    APDU(fx, "00A4 0200 02 5100 00", 0x6A82); /* a DF is no EF */
    APDU(fx, "00A4 0100 02 5110 00", 0x6A82); /* grandchild */
    select_expect(fx, "00A4 0100 02 5100 00", 0x5100);
    select_expect(fx, "00A4 0200 02 5101 00", 0x5101);
    expect_current_ef(fx, 0x5101);
    select_expect(fx, "00A4 0100 02 5110 00", 0x5110); /* P1 01 from DF 5100 */
    select_expect(fx, "00A4 0200 02 5111 00", 0x5111);
    /* parent of the current DF (5110, whose EF 5111 is current) */
    select_expect(fx, "00A4 0300 00", 0x5100);
    APDU(fx, "00B0 0000 02", 0x6986);
    select_expect(fx, "00A4 0300 00", 0x5000);
    select_expect(fx, "00A4 0304 00", 0x3F00);
    APDU(fx, "00A4 030C", 0x6A82);
    APDU(fx, "00A4 0200 02 2F00 00", 0x9000);
    expect_current_ef(fx, 0x2F00);
}

static void test_select_by_name_and_path(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    select_expect(fx, "00A4 0400 05 4435313130 00", 0x5110); /* "D5110" from the MF */
    select_expect(fx, "00A4 0400 05 4435323030 00", 0x5200); /* from anywhere */
    select_expect(fx, "00A4 0400 08 A000000647494344 00", 0x5000);
    APDU(fx, "00A4 0400 04 44353131 00", 0x6A82);         /* a prefix is not the name */
    APDU(fx, "00A4 0400 06 443531313000 00", 0x6A82);
    APDU(fx, "00A4 0400 05 4435313031 00", 0x6A82);
    /* path from the MF (without 3F00) */
    select_expect(fx, "00A4 0800 08 5000510051105111 00", 0x5111);
    expect_current_ef(fx, 0x5111);
    select_expect(fx, "00A4 0800 02 5000 00", 0x5000);
    select_expect(fx, "00A4 0800 04 60006001 00", 0x6001);
    select_expect(fx, "00A4 0800 02 2F00 00", 0x2F00);
    APDU(fx, "00A4 0800 04 3F005000 00", 0x6A82);
    APDU(fx, "00A4 0800 06 500050015002 00", 0x6A82); /* through an EF */
    APDU(fx, "00A4 0800 04 51005101 00", 0x6A82);     /* not from the MF */
    expect_current_ef(fx, 0x2F00);
    /* path from the current DF */
    APDU(fx, "00A4 080C 02 5000", 0x9000);
    select_expect(fx, "00A4 0900 04 51005101 00", 0x5101);
    select_expect(fx, "00A4 0900 04 51105111 00", 0x5111); /* now from DF 5100 */
    APDU(fx, "00A4 0900 04 50005001 00", 0x6A82);
    select_expect(fx, "00A4 0900 02 5111 00", 0x5111);     /* from DF 5110 */
    APDU(fx, "00A4 0300 00", 0x9000);
    select_expect(fx, "00A4 0900 02 5110 00", 0x5110);
}

static void test_select_failure_keeps_current(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    APDU(fx, "00A4 080C 06 510051015101", 0x6A82);
    APDU(fx, "00A4 080C 04 51005101", 0x6A82);
    APDU(fx, "00A4 080C 06 500051005101", 0x9000);
    static const char *const bad[] = {
        "00A4 0000 02 1234 00", "00A4 0100 02 5101 00", "00A4 0200 02 5110 00",
        "00A4 0400 03 010203 00", "00A4 0800 04 50005102 00", "00A4 0900 02 5102 00",
        "00A4 0800 03 500051 00", "00A4 0500 02 5000 00", "00A4 0008 02 5000 00",
        "00A4 0900 0C 510051105111511151115111 00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint16_t sw = fx_apdu(fx, bad[i]);
        assert_true(sw != 0x9000 && sw != 0x6283);
        assert_int_equal(fx_data_len(fx), 0);
        expect_current_ef(fx, 0x5101);
    }
    /* a current DF without EF stays so */
    APDU(fx, "00A4 000C 02 5110", 0x9000);
    APDU(fx, "00A4 0000 02 1234 00", 0x6A82);
    APDU(fx, "00B0 0000 02", 0x6986);
    APDU(fx, "00A4 0200 02 5111 00", 0x9000);
}

/* ---- READ / UPDATE BINARY ------------------------------------------------------------------- */

static void test_read_update_binary(void **state)
{
    struct fx *fx = *state;
    verify_user(fx);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00B0 0000 00", 0x9000); /* Le 00: to the end, no warning */
    assert_int_equal(fx_data_len(fx), 64);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(fx->rsp[i], 0);
    APDU(fx, "00D6 0000 04 DEADBEEF", 0x9000);
    APDU(fx, "00B0 0000 04", 0x9000);
    fx_expect_data(fx, "DEADBEEF");
    APDU(fx, "00D6 0002 03 010203", 0x9000);
    APDU(fx, "00B0 0000 06", 0x9000);
    fx_expect_data(fx, "DEAD01020300");
    APDU(fx, "00B0 0000 50", 0x6282); /* 80 asked, 64 there */
    assert_int_equal(fx_data_len(fx), 64);
    APDU(fx, "00B0 0030 20", 0x6282);
    assert_int_equal(fx_data_len(fx), 16);
    APDU(fx, "00B0 0030 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 16);
    APDU(fx, "00D6 003F 01 77", 0x9000);
    APDU(fx, "00B0 003F 01", 0x9000);
    fx_expect_data(fx, "77");
    APDU(fx, "00B0 003F 02", 0x6282);
    fx_expect_data(fx, "77");
    uint8_t *img = snapshot(fx);
    APDU(fx, "00B0 0040 01", 0x6B00);
    APDU(fx, "00D6 003F 02 7777", 0x6A84);
    APDU(fx, "00D6 0040 01 77", 0x6B00);
    APDU(fx, "00D6 0100 01 77", 0x6B00);
    assert_true(nvm_equals(fx, img));
    free(img);
    /* the whole EF at once */
    char apdu[4 + 1 + 64 * 2 + 16] = "00D6000040";
    for (unsigned i = 0; i < 64; i++)
        snprintf(apdu + 10 + 2 * i, 3, "%02X", (i * 5u + 1u) & 0xFFu);
    APDU(fx, apdu, 0x9000);
    APDU(fx, "00B0 0000 00", 0x9000);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(fx->rsp[i], (i * 5u + 1u) & 0xFFu);
    /* no current EF */
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00B0 0000 01", 0x6986);
    APDU(fx, "00D6 0000 01 00", 0x6986);
    /* persistent */
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00B0 0000 04", 0x9000);
    fx_expect_data(fx, "01060B10");
}

static void test_sfi_addressing(void **state)
{
    struct fx *fx = *state;
    verify_user(fx);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00B0 0000 01", 0x6986);
    APDU(fx, "00D6 8102 02 AABB", 0x9000); /* SFI 1 = EF 5001, offset 2 */
    APDU(fx, "00B0 8100 04", 0x9000);
    fx_expect_data(fx, "0000AABB");
    APDU(fx, "00B0 0002 01", 0x9000); /* EF 5001 is now current */
    fx_expect_data(fx, "AA");
    APDU(fx, "00B0 813F 02", 0x6282);
    fx_expect_data(fx, "00");
    APDU(fx, "00B0 8140 01", 0x6B00);
    APDU(fx, "00B0 8200 01", 0x6A82); /* no SFI 2 here */
    /* SFI are per DF: not found from the MF */
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    APDU(fx, "00B0 8100 01", 0x6A82);
    /* an internal EF with an SFI is still not readable, but updatable */
    verify_admin(fx);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    CREATE(fx, "820109 83025004 80020008 880120", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00B0 8400 01", 0x6981);
    APDU(fx, "00D6 8400 02 0102", 0x9000);
    /* SFI unique per DF, FIDs as well */
    CREATE(fx, "820101 83025005 80020008 880108", 0x6A89);
    CREATE(fx, "820101 83025005 80020008 880128", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00B0 8500 08", 0x9000);
    fx_expect_data(fx, "0000000000000000");
}

/* ---- internal EFs ------------------------------------------------------------------------- */

static void test_internal_ef_unreadable_before_perso(void **state)
{
    struct fx *fx = *state; /* blank: access conditions are not enforced, yet */
    CREATE(fx, "820109 83020101 80020010 880110 8603000000", 0x9000);
    APDU(fx, "00D6 0000 04 01020304", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6981);
    APDU(fx, "00B0 0000 00", 0x6981);
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    APDU(fx, "00B0 8200 04", 0x6981);
    APDU(fx, "00DA DF02 04 54455354", 0x9000); /* initialisation */
    APDU(fx, "00A4 000C 02 0101", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6981);
}

static void test_internal_ef_unreadable_after_perso(void **state)
{
    struct fx *fx = *state;
    verify_user(fx);
    verify_admin(fx);
    APDU(fx, "00A4 080C 04 50005002", 0x9000);
    APDU(fx, "00D6 0000 04 01020304", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6981);
    APDU(fx, "00B0 0000 00", 0x6981);
    APDU(fx, "00B0 0000 000000", 0x6981);
    assert_int_equal(fx_reboot(fx), 0);
    verify_admin(fx);
    APDU(fx, "00A4 080C 04 50005002", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6981);
}

static void test_deleted_internal_ef_is_wiped(void **state)
{
    struct fx *fx = *state;
    static const char secret_hex[] =
        "5EC2E7A1 B2C3D4E5 F6071829 3A4B5C6D 7E8F9AAB BCCDDEEF F0011223 34455667";
    uint8_t secret[32];
    assert_int_equal(fx_hex(secret_hex, secret, sizeof secret), 32);
    verify_admin(fx);
    APDU(fx, "00A4 080C 04 50005002", 0x9000);
    char apdu[128];
    snprintf(apdu, sizeof apdu, "00D6 0000 20 %s", secret_hex);
    APDU(fx, apdu, 0x9000);
    uint8_t *img = snapshot(fx);
    /* once, at its home: the journal copy of a secret update is scrubbed */
    assert_int_equal(count_in(img, CARD_NVM_DEFAULT_SIZE, secret, sizeof secret), 1);
    free(img);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00E4 0000 02 5002", 0x9000);
    APDU(fx, "00A4 020C 02 5002", 0x6A82);
    img = snapshot(fx);
    for (size_t i = 0; i + 8 <= sizeof secret; i += 8)
        assert_int_equal(count_in(img, CARD_NVM_DEFAULT_SIZE, secret + i, 8), 0);
    free(img);
    assert_int_equal(fx_reboot(fx), 0);
    img = snapshot(fx);
    assert_int_equal(count_in(img, CARD_NVM_DEFAULT_SIZE, secret, 8), 0);
    free(img);
}

/* ---- access conditions ---------------------------------------------------------------------- */

static void test_access_conditions_operational(void **state)
{
    struct fx *fx = *state;
    /* EF 5001: read always, update PIN, delete admin */
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00B0 0000 02", 0x9000);
    APDU(fx, "00D6 0000 02 0102", 0x6982);
    APDU(fx, "0020 0081 06 313233343530", 0x63C2);
    APDU(fx, "00D6 0000 02 0102", 0x6982);
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000); /* admin is not the user PIN */
    APDU(fx, "00D6 0000 02 0102", 0x6982);
    verify_user(fx);
    APDU(fx, "00D6 0000 02 0102", 0x9000);
    APDU(fx, "0020 FF83", 0x9000);
    APDU(fx, "00E4 0000", 0x6982);
    /* EF 5002: update admin */
    APDU(fx, "00A4 080C 04 50005002", 0x9000);
    APDU(fx, "00D6 0000 02 0102", 0x6982);
    verify_admin(fx);
    APDU(fx, "00D6 0000 02 0102", 0x9000);
    /* files with other conditions */
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    CREATE(fx, "820101 83025005 80020004 860301FF00", 0x9000); /* read PIN, upd never, del always */
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    CREATE(fx, "820101 83025006 80020004 86030202FF", 0x9000); /* read/upd admin, del never */
    APDU(fx, "0020 FF81", 0x9000);
    APDU(fx, "0020 FF83", 0x9000);
    APDU(fx, "00A4 020C 02 5005", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6982);
    APDU(fx, "00D6 0000 01 00", 0x6982);
    verify_user(fx);
    APDU(fx, "00B0 0000 04", 0x9000);
    verify_admin(fx);
    APDU(fx, "00D6 0000 01 00", 0x6982); /* never is never */
    APDU(fx, "00A4 020C 02 5006", 0x9000);
    APDU(fx, "00B0 0000 04", 0x9000);
    APDU(fx, "00D6 0000 01 00", 0x9000);
    APDU(fx, "00E4 0000", 0x6982);
    APDU(fx, "0020 FF83", 0x9000);
    APDU(fx, "00B0 0000 04", 0x6982);
    APDU(fx, "00D6 0000 01 00", 0x6982);
    /* delete always: no PIN needed */
    APDU(fx, "0020 FF81", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00E4 0000 02 5005", 0x9000);
    APDU(fx, "00E4 0000 02 5006", 0x6982);
    /* creating needs the DF's "update" condition (admin for the MF and DF 5000) */
    verify_user(fx);
    CREATE(fx, "820101 83025007 80020004", 0x6982);
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820101 83020107 80020004", 0x6982);
    APDU(fx, "0044 0000 02 5000", 0x6982);
    APDU(fx, "0004 0000 02 5000", 0x6982);
    APDU(fx, "00E4 0000 02 5000", 0x6982);
    verify_admin(fx);
    CREATE(fx, "820101 83020107 80020004", 0x9000);
}

static void test_access_not_enforced_before_operational(void **state)
{
    struct fx *fx = *state; /* blank */
    CREATE(fx, "820101 83020101 80020008 8603FFFFFF", 0x9000);
    APDU(fx, "00D6 0000 02 0101", 0x9000);
    APDU(fx, "00B0 0000 02", 0x9000);
    fx_expect_data(fx, "0101");
    APDU(fx, "0004 0000", 0x9000);
    APDU(fx, "0044 0000", 0x9000);
    APDU(fx, "00A4 000C 00", 0x9000);
    CREATE(fx, "820101 83020102 80020008 8603FFFFFF", 0x9000);
    APDU(fx, "00E4 0000", 0x9000);
    APDU(fx, "00DA DF02 04 54455354", 0x9000); /* initialisation: still not enforced */
    APDU(fx, "00A4 000C 02 0101", 0x9000);
    APDU(fx, "00D6 0000 02 0303", 0x9000);
    APDU(fx, "00B0 0000 02", 0x9000);
    fx_expect_data(fx, "0303");
    APDU(fx, "00A4 000C 00", 0x9000);
    CREATE(fx, "820101 83020103 80020008 8603FFFFFF", 0x9000);
    APDU(fx, "00A4 000C 00", 0x9000);
    APDU(fx, "0044 0000", 0x9000); /* operational from now on */
    APDU(fx, "00CA DF03 01", 0x9000);
    fx_expect_data(fx, "05");
    APDU(fx, "00A4 000C 02 0101", 0x9000);
    APDU(fx, "00B0 0000 02", 0x6982);
    APDU(fx, "00D6 0000 02 0404", 0x6982);
    APDU(fx, "00E4 0000", 0x6982);
    APDU(fx, "00A4 000C 00", 0x9000);
    CREATE(fx, "820101 83020104 80020008", 0x6982); /* admin PIN needed, and never set */
    APDU(fx, "0020 0083", 0x6984);
}

/* ---- DELETE ------------------------------------------------------------------------------- */

static void test_delete_df_subtree(void **state)
{
    struct fx *fx = *state;
    verify_admin(fx);
    uint32_t total0, used0, free0, total, used, free_bytes;
    nvm_info(fx, &total0, &used0, &free0);
    uint8_t list0[CARD_MAX_NE], list[CARD_MAX_NE];
    size_t n0 = file_list(fx, list0, sizeof list0);
    assert_int_equal(n0, 4 * 12);
    /* DF 6000: EF 6001 (100 bytes), internal EF 6002 (30), DF 6100 (EF 6101, 50 bytes) */
    CREATE(fx, "820138 83026000 8404 D2760001", 0x9000);
    CREATE(fx, "820101 83026001 80020064 8603000000", 0x9000);
    APDU(fx, "00D6 0000 02 6001", 0x9000);
    CREATE(fx, "820109 83026002 8002001E", 0x9000);
    APDU(fx, "00A4 030C", 0x9000); /* parent of DF 6000 ... */
    APDU(fx, "00A4 010C 02 6000", 0x9000); /* ... and back in */
    CREATE(fx, "820138 83026100", 0x9000);
    CREATE(fx, "820101 83026101 80020032 8603000000", 0x9000);
    nvm_info(fx, &total, &used, &free_bytes);
    assert_int_equal(total, total0);
    assert_int_equal(used, used0 + 180);
    assert_int_equal(file_list(fx, list, sizeof list), n0 + 5 * 12);

    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    APDU(fx, "00E4 0000 02 6000", 0x9000);
    APDU(fx, "00A4 000C 02 6000", 0x6A82);
    APDU(fx, "00A4 080C 04 60006001", 0x6A82);
    APDU(fx, "00A4 080C 04 60006002", 0x6A82);
    APDU(fx, "00A4 080C 04 60006100", 0x6A82);
    APDU(fx, "00A4 080C 06 600061006101", 0x6A82);
    APDU(fx, "00A4 040C 04 D2760001", 0x6A82);
    nvm_info(fx, &total, &used, &free_bytes);
    assert_int_equal(used, used0);
    assert_int_equal(free_bytes, free0);
    assert_int_equal(file_list(fx, list, sizeof list), n0);
    assert_memory_equal(list, list0, n0);
    assert_int_equal(fx_reboot(fx), 0);
    nvm_info(fx, &total, &used, &free_bytes);
    assert_int_equal(used, used0);
    assert_int_equal(file_list(fx, list, sizeof list), n0);
    assert_memory_equal(list, list0, n0);
    /* the FID can be used again; the new EF starts zeroed */
    verify_admin(fx);
    CREATE(fx, "820138 83026000", 0x9000);
    CREATE(fx, "820101 83026001 80020064 8603000000", 0x9000);
    APDU(fx, "00B0 0000 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(fx->rsp[i], 0);
}

static void test_delete_current_files(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    /* the current EF, without data: the DF stays current */
    APDU(fx, "00A4 080C 06 500051005101", 0x9000);
    APDU(fx, "00E4 0000", 0x9000);
    APDU(fx, "00B0 0000 01", 0x6986);
    APDU(fx, "00A4 020C 02 5101", 0x6A82);
    select_expect(fx, "00A4 0100 02 5110 00", 0x5110); /* child of DF 5100, still current */
    /* the current DF (5110), without data: its parent 5100 becomes current */
    APDU(fx, "00E4 0000", 0x9000);
    APDU(fx, "00A4 0200 02 5111 00", 0x6A82);
    APDU(fx, "00A4 040C 05 4435313130", 0x6A82);
    select_expect(fx, "00A4 0300 00", 0x5000); /* parent of 5100 */
    /* the MF cannot be deleted */
    APDU(fx, "00A4 000C 00", 0x9000);
    uint8_t *img = snapshot(fx);
    APDU(fx, "00E4 0000", 0x6985);
    APDU(fx, "00E4 0000 02 3F00", 0x6A82);
    APDU(fx, "00E4 0000 02 1234", 0x6A82);
    APDU(fx, "00E4 0000 02 5100", 0x6A82); /* not a child of the current DF */
    assert_true(nvm_equals(fx, img));
    free(img);
    select_expect(fx, "00A4 0000 02 3F00 00", 0x3F00);
}

/* ---- file life cycle ----------------------------------------------------------------------- */

static void test_file_deactivate_activate(void **state)
{
    struct fx *fx = *state;
    verify_user(fx);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00D6 0000 02 ABCD", 0x9000);
    APDU(fx, "0004 0000", 0x6982); /* admin needed */
    APDU(fx, "0044 0000", 0x6982);
    verify_admin(fx);
    APDU(fx, "0004 0000", 0x9000);
    APDU(fx, "0004 0000", 0x9000); /* again: no change, no error */
    APDU(fx, "00A4 0800 04 50005001 00", 0x6283);
    fx_expect_data(fx, "6216 820101 83025001 80020040 880108 8A0104 8603000102");
    APDU(fx, "00B0 0000 02", 0x6985);
    APDU(fx, "00D6 0000 02 0000", 0x6985);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00B0 8100 02", 0x6985);
    uint8_t list[CARD_MAX_NE];
    size_t n = file_list(fx, list, sizeof list);
    bool found = false;
    for (size_t i = 0; i < n; i += 12) {
        if (list[i] == 0x50 && list[i + 1] == 0x01) {
            assert_int_equal(list[i + 5], 0x04);
            found = true;
        }
    }
    assert_true(found);
    /* persistent */
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "00A4 080C 04 50005001", 0x6283);
    APDU(fx, "00B0 0000 02", 0x6985);
    verify_admin(fx);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "0044 0000 02 5001", 0x9000); /* by FID from the DF */
    APDU(fx, "00A4 0800 04 50005001 00", 0x9000);
    fx_expect_data(fx, FCP_5001);
    APDU(fx, "00B0 0000 02", 0x9000);
    fx_expect_data(fx, "ABCD");
    /* a DF */
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    APDU(fx, "0004 0000 02 5000", 0x9000);
    APDU(fx, "00A4 0000 02 5000 00", 0x6283);
    fx_expect_data(fx, "6219 820138 83025000 8408A000000647494344 8A0104 8603000202");
    APDU(fx, "0044 0000", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    /* the MF is never deactivated (the card is terminated instead) */
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    APDU(fx, "0004 0000", 0x6985);
}

/* ---- filling the card ---------------------------------------------------------------------- */

static void test_fill_heap(void **state)
{
    struct fx *fx = *state;
    verify_admin(fx);
    uint32_t total, used, free0, free_bytes;
    nvm_info(fx, &total, &used, &free0);
    assert_true(free0 > 0x7FFF);
    unsigned fid = 0x7000;
    char c[64];
    for (uint32_t left = free0; left > 0; fid++) {
        uint32_t size = left > 0x7FFF ? 0x7FFF : left;
        APDU(fx, "00A4 000C 00", 0x9000);
        snprintf(c, sizeof c, "820101 8302%04X 8002%04X", fid, (unsigned)size);
        CREATE(fx, c, 0x9000);
        left -= size;
        nvm_info(fx, &total, &used, &free_bytes);
        assert_int_equal(free_bytes, left);
    }
    APDU(fx, "00A4 000C 00", 0x9000);
    uint8_t *img = snapshot(fx);
    CREATE(fx, "820101 83027100 80020001", 0x6A84);
    assert_true(nvm_equals(fx, img));
    free(img);
    /* delete the first, create again */
    APDU(fx, "00E4 0000 02 7000", 0x9000);
    nvm_info(fx, &total, &used, &free_bytes);
    assert_int_equal(free_bytes, 0x7FFF);
    CREATE(fx, "820101 83027100 80027FFF", 0x9000);
    APDU(fx, "00B0 7FF0 00", 0x9000); /* all zero, up to the very end */
    assert_int_equal(fx_data_len(fx), 15);
    APDU(fx, "00D6 7FFE 01 5A", 0x9000);
    APDU(fx, "00A4 000C 00", 0x9000);
    CREATE(fx, "820101 83027101 80020001", 0x6A84);
    APDU(fx, "00A4 080C 02 7100", 0x9000);
    APDU(fx, "00B0 7FFE 01", 0x9000);
    fx_expect_data(fx, "5A");
}

static void test_fill_file_table(void **state)
{
    struct fx *fx = *state; /* blank: only the MF */
    unsigned made = 0;
    char c[64];
    for (;; made++) {
        assert_true(made < 300);
        snprintf(c, sizeof c, "820101 8302%04X 80020001", 0x1000u + made);
        uint16_t sw = create_file(fx, c);
        if (sw == 0x6A84)
            break;
        assert_int_equal(sw, 0x9000);
        APDU(fx, "00A4 000C 00", 0x9000);
    }
    assert_true(made >= 16);
    uint8_t list[CARD_MAX_NE];
    assert_int_equal(file_list(fx, list, sizeof list), (made + 1) * 12);
    CREATE(fx, "820138 83020200", 0x6A84);
    /* free one slot, use it again */
    APDU(fx, "00A4 000C 00", 0x9000);
    APDU(fx, "00E4 0000 02 1005", 0x9000);
    CREATE(fx, "820138 83020200", 0x9000);
    CREATE(fx, "820101 83020201 80020001", 0x6A84);
    APDU(fx, "00A4 000C 00", 0x9000);
    APDU(fx, "00E4 0000 02 0200", 0x9000);
    CREATE(fx, "820101 83021005 80020001", 0x9000);
    assert_int_equal(fx_reboot(fx), 0);
    assert_int_equal(file_list(fx, list, sizeof list), (made + 1) * 12);
}

static void test_depth_limit(void **state)
{
    struct fx *fx = *state; /* blank */
    CREATE(fx, "820138 83021000", 0x9000);
    CREATE(fx, "820138 83021100", 0x9000);
    CREATE(fx, "820138 83021110", 0x9000);
    make_ef(fx, 0x1112); /* depth 4: an EF is fine here */
    CREATE(fx, "820138 83021111 8402 4444", 0x9000); /* depth 4 DF */
    uint8_t *img = snapshot(fx);
    CREATE(fx, "820101 83021112 80020010", 0x6A84); /* would be at depth 5 */
    CREATE(fx, "820138 83021113", 0x6A84);
    assert_true(nvm_equals(fx, img));
    free(img);
    select_expect(fx, "00A4 0800 08 1000110011101111 00", 0x1111);
    select_expect(fx, "00A4 0800 08 1000110011101112 00", 0x1112);
    select_expect(fx, "00A4 0400 02 4444 00", 0x1111);
    APDU(fx, "00A4 0800 0A 10001100111011111112 00", 0x6A82);
    APDU(fx, "00A4 0800 0C 100011001110111111121113 00", 0x6A87);
    /* deleting the top DF takes all four levels */
    APDU(fx, "00A4 000C 00", 0x9000);
    APDU(fx, "00E4 0000 02 1000", 0x9000);
    uint8_t list[CARD_MAX_NE];
    assert_int_equal(file_list(fx, list, sizeof list), 12);
    APDU(fx, "00A4 040C 02 4444", 0x6A82);
}

/* ---- CREATE FILE refusals ------------------------------------------------------------------ */

static void test_create_file_refusals(void **state)
{
    struct fx *fx = *state;
    verify_admin(fx);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    static const struct {
        const char *content;
        uint16_t sw;
    } c[] = {
        { "820101 83025003 80020010 8603000000 850100", 0x6A80 }, /* unknown tag */
        { "820101 83025003 83025004 80020010", 0x6A80 },           /* duplicate tags */
        { "820101 820101 83025003 80020010", 0x6A80 },
        { "820101 83025003 80020010 80020010", 0x6A80 },
        { "820101 83025003 80020010 8603000000 8603000000", 0x6A80 },
        { "820101 83025003 80020010 880118 880120", 0x6A80 },
        { "820101 83025003 80020010 8A0105 8A0105", 0x6A80 },
        { "820138 83025300 8402 4142 8402 4143", 0x6A80 },
        { "820101 80020010", 0x6A80 },                             /* no FID */
        { "83025003 80020010", 0x6A80 },                           /* no descriptor */
        { "820101 83025003", 0x6A80 },                             /* EF without size */
        { "820101 83025003 80020010 8404 A0000001", 0x6A80 },      /* EF with a name */
        { "820138 83025300 80020010", 0x6A80 },                    /* DF with a size */
        { "820138 83025300 880108", 0x6A80 },                      /* DF with an SFI */
        { "820101 83025003 80020000", 0x6A80 },                    /* size 0 */
        { "820101 83025003 80028000", 0x6A80 },                    /* size > 7FFF */
        { "820101 83023F00 80020010", 0x6A80 },                    /* reserved FIDs */
        { "820101 83023FFF 80020010", 0x6A80 },
        { "820101 8302FFFF 80020010", 0x6A80 },
        { "820102 83025003 80020010", 0x6A80 },                    /* other structures */
        { "820111 83025003 80020010", 0x6A80 },
        { "820139 83025003", 0x6A80 },
        { "8200 83025003 80020010", 0x6A80 },
        { "82030101 01 83025003 80020010", 0x6A80 },
        { "820101 830150 80020010", 0x6A80 },                      /* FID of 1 byte */
        { "820101 8303500300 80020010", 0x6A80 },
        { "820101 83025003 8000", 0x6A80 },
        { "820101 83025003 8003000010", 0x6A80 },
        { "820101 83025003 80020010 8603000300", 0x6A80 },         /* AC 03 undefined */
        { "820101 83025003 80020010 8603000080", 0x6A80 },
        { "820101 83025003 80020010 86020000", 0x6A80 },
        { "820101 83025003 80020010 860400000000", 0x6A80 },
        { "820101 83025003 80020010 880109", 0x6A80 },             /* SFI bits 3-1 set */
        { "820101 83025003 80020010 880100", 0x6A80 },             /* SFI 0 */
        { "820101 83025003 80020010 8801F8", 0x6A80 },             /* SFI 31 */
        { "820101 83025003 80020010 88020800", 0x6A80 },
        { "820101 83025003 80020010 8A010F", 0x6A80 },             /* LCS values */
        { "820101 83025003 80020010 8A0100", 0x6A80 },
        { "820101 83025003 80020010 8A0107", 0x6A80 },
        { "820101 83025003 80020010 8A020505", 0x6A80 },
        { "820138 83025300 8411 4142434445464748494A4B4C4D4E4F5051", 0x6A80 }, /* name > 16 */
        { "820138 83025300 8400", 0x6A80 },
        { "820101 83025001 80020010", 0x6A89 },                    /* FID exists */
        { "820138 83025001", 0x6A89 },
        { "820101 83025000 80020010", 0x6A89 },                    /* the DF's own FID */
        { "820101 83025003 80020010 880108", 0x6A89 },             /* SFI 1 exists */
        { "820138 83025300 8408 A000000647494344", 0x6A8A },       /* name exists */
        { "", 0x6A80 },                                            /* empty template */
    };
    uint8_t *img = snapshot(fx);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint16_t sw = create_file(fx, c[i].content);
        if (sw != c[i].sw)
            fail_msg("CREATE %s: SW %04X, expected %04X", c[i].content, sw, c[i].sw);
        if (!nvm_equals(fx, img))
            fail_msg("CREATE %s changed the NVM", c[i].content);
    }
    /* malformed templates (written out whole) */
    static const char *const raw[] = {
        "00E0 0000 12 6F10 820101 83025003 80020010 8603000000",   /* not an FCP template */
        "00E0 0000 13 6210 820101 83025003 80020010 8603000000 00", /* trailing byte */
        "00E0 0000 12 620F 820101 83025003 80020010 8603000000",   /* template too short */
        "00E0 0000 12 6211 820101 83025003 80020010 8603000000",   /* template too long */
        "00E0 0000 08 6206 820101 830250",                          /* truncated object */
        "00E0 0000 01 62",
        "00E0 0000 02 6200",
        "00E0 0000 06 6204 00000000",
        "00E0 0000 13 628110 820101 83025003 80020010 8603000000",  /* long form: fine */
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        uint16_t want = i + 1 < sizeof raw / sizeof raw[0] ? 0x6A80 : 0x9000;
        uint16_t sw = fx_apdu(fx, raw[i]);
        if (sw != want)
            fail_msg("%s: SW %04X, expected %04X", raw[i], sw, want);
        if (want != 0x9000 && !nvm_equals(fx, img))
            fail_msg("%s changed the NVM", raw[i]);
    }
    free(img);
    /* the FID taken by a refused attempt is still free elsewhere; DF names in other DFs clash */
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820101 83025001 80020010", 0x9000); /* 5001 under the MF: a different parent */
    APDU(fx, "00A4 000C 02 3F00", 0x9000);
    CREATE(fx, "820138 83025300 8408 A000000647494344", 0x6A8A);
}

static void test_create_makes_current(void **state)
{
    struct fx *fx = *state; /* blank */
    CREATE(fx, "820138 83021000", 0x9000);
    CREATE(fx, "820101 83021001 80020004", 0x9000); /* inside DF 1000 */
    APDU(fx, "00D6 0000 02 1001", 0x9000);           /* the new EF is current */
    CREATE(fx, "820101 83021002 80020004", 0x9000); /* also inside DF 1000 */
    select_expect(fx, "00A4 0800 04 10001001 00", 0x1001);
    expect_current_ef(fx, 0x1001);
    select_expect(fx, "00A4 0800 04 10001002 00", 0x1002);
    APDU(fx, "00A4 0800 02 1001 00", 0x6A82);
}

/* ---- GET DATA / PUT DATA ---------------------------------------------------------------------- */

static void test_get_put_data(void **state)
{
    struct fx *fx = *state; /* blank */
    APDU(fx, "00CA DF01 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 8);
    uint8_t serial[8];
    memcpy(serial, fx->rsp, 8);
    APDU(fx, "00CA DF02 00", 0x6A88);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "01");
    APDU(fx, "00CA DF05 00", 0x9000);
    fx_expect_data(fx, "3F00 0000 38 05 0000 0002FF 00");
    uint32_t total, used, free_bytes;
    nvm_info(fx, &total, &used, &free_bytes);
    assert_int_equal(used, 0);
    assert_true(total > 0 && total < CARD_NVM_DEFAULT_SIZE);
    APDU(fx, "00DA DF02 21 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20",
         0x6A80);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "01");
    APDU(fx, "00DA DF02 20 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
         0x9000);
    APDU(fx, "00CA DF02 00", 0x9000);
    fx_expect_data(fx, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "03");
    assert_int_equal(fx_personalize(fx), 0);
    APDU(fx, "00CA DF02 00", 0x9000);
    fx_expect_data(fx, "54455354");
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "05");
    APDU(fx, "00CA DF05 00", 0x9000);
    fx_expect_data(fx, "3F00 0000 38 05 0000 0002FF 00"
                    "5000 3F00 38 05 0000 000202 00"
                    "5001 5000 01 05 0040 000102 01"
                    "5002 5000 09 05 0020 FF0202 00");
    uint32_t total2;
    nvm_info(fx, &total2, &used, &free_bytes);
    assert_int_equal(total2, total);
    assert_int_equal(used, 96);
    /* operational: PUT DATA needs the admin PIN, and keeps the life cycle */
    APDU(fx, "00DA DF02 02 4142", 0x6982);
    verify_user(fx);
    APDU(fx, "00DA DF02 02 4142", 0x6982);
    verify_admin(fx);
    APDU(fx, "00DA DF02 02 4142", 0x9000);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "05");
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "00CA DF02 00", 0x9000);
    fx_expect_data(fx, "4142");
    APDU(fx, "00CA DF01 00", 0x9000);
    assert_memory_equal(fx->rsp, serial, 8);
    APDU(fx, "00CA DF04 00", 0x9000);
    fx_expect_data(fx, "81010303 82010505 83010303");
}

/* ---- TERMINATE CARD USAGE ------------------------------------------------------------------- */

static void expect_terminated(struct fx *fx)
{
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "0F");
    APDU(fx, "00A4 0800 04 50005001 00", 0x9000); /* SELECT still works */
    fx_expect_data(fx, FCP_5001);
    APDU(fx, "00CA DF01 00", 0x9000);
    APDU(fx, "00CA DF05 00", 0x9000);
    assert_int_equal(fx_data_len(fx), 48);
    static const char *const refused[] = {
        "00B0 0000 02", "00B0 8100 02", "00D6 0000 01 00", "0020 0081 06 313233343536",
        "0020 0083 08 3837363534333231", "0020 0081", "0024 0081 0C 313233343536 363534333231",
        "002C 0181 08 3132333435363738", "0084 0000 08", "00E4 0000",
        "00E0 0000 0C 620A 820101 83020101 800110", "0044 0000", "0004 0000",
        "00DA DF02 02 4142", "00FE 0000",
    };
    uint8_t *img = snapshot(fx);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        uint16_t sw = fx_apdu(fx, refused[i]);
        if (sw != 0x6985)
            fail_msg("%s after TERMINATE: SW %04X", refused[i], sw);
    }
    assert_true(nvm_equals(fx, img));
    free(img);
}

static void test_terminate(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00FE 0000", 0x6982);
    verify_user(fx);
    APDU(fx, "00FE 0000", 0x6982);
    verify_admin(fx);
    APDU(fx, "00FE 0100", 0x6A86);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "05");
    APDU(fx, "00FE 0000", 0x9000);
    expect_terminated(fx);
    assert_int_equal(fx_reboot(fx), 0);
    expect_terminated(fx);
}

static void test_terminate_blank(void **state)
{
    struct fx *fx = *state; /* no access conditions before operational */
    APDU(fx, "00FE 0000", 0x9000);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "0F");
    APDU(fx, "0024 0181 06 313233343536", 0x6985);
    APDU(fx, "00E0 0000 0C 620A 820101 83020101 800110", 0x6985);
}

/* ---- persistence ---------------------------------------------------------------------------- */

static void test_persistence_across_reboot(void **state)
{
    struct fx *fx = *state;
    make_tree(fx);
    verify_user(fx);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00D6 0010 04 CAFEBABE", 0x9000);
    uint8_t list0[CARD_MAX_NE], list[CARD_MAX_NE];
    size_t n0 = file_list(fx, list0, sizeof list0);
    uint32_t t0, u0, f0, t, u, f;
    nvm_info(fx, &t0, &u0, &f0);
    assert_int_equal(fx_reboot(fx), 0);
    /* volatile state is gone */
    APDU(fx, "00B0 0000 01", 0x6986);
    APDU(fx, "0020 0081", 0x63C3);
    APDU(fx, "0020 0083", 0x63C3);
    /* persistent state is not */
    assert_int_equal(file_list(fx, list, sizeof list), n0);
    assert_memory_equal(list, list0, n0);
    nvm_info(fx, &t, &u, &f);
    assert_int_equal(u, u0);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00B0 0010 04", 0x9000);
    fx_expect_data(fx, "CAFEBABE");
    select_expect(fx, "00A4 0400 05 4435313130 00", 0x5110);
    select_expect(fx, "00A4 0200 02 5111 00", 0x5111);
    expect_current_ef(fx, 0x5111);
    APDU(fx, "00CA DF03 00", 0x9000);
    fx_expect_data(fx, "05");
    /* and a second power cycle changes nothing either */
    uint8_t *img = snapshot(fx);
    assert_int_equal(fx_reboot(fx), 0);
    assert_true(nvm_equals(fx, img));
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fcp_bytes, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_defaults_in_fcp, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_select_mf_forms, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_select_by_fid, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_select_child_ef_parent, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_select_by_name_and_path, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_select_failure_keeps_current, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_update_binary, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sfi_addressing, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_internal_ef_unreadable_before_perso, fx_setup_blank,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_internal_ef_unreadable_after_perso, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_internal_ef_is_wiped, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_access_conditions_operational, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_access_not_enforced_before_operational,
                                        fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_df_subtree, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_current_files, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_file_deactivate_activate, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fill_heap, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fill_file_table, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_file_refusals, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_makes_current, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_put_data, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_terminate, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_terminate_blank, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_persistence_across_reboot, fx_setup_perso, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

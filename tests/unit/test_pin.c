/* PIN commands through APDUs: VERIFY (all forms), retry counters and blocking, unblocking by
 * PUK and by the admin PIN, CHANGE REFERENCE DATA, the volatile security state, the PIN value
 * never leaving the card, and a power cut at every NVM write of a VERIFY (the counter is spent
 * and made durable before the candidate is compared).
 * A constant-time comparison is not observable through APDUs here and is not tested. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "card_fixture.h"
#include "fx_assert.h"
#include "nvm_sim.h"

/* Sends an APDU and checks its status word (the failing line is the caller's). */
#define APDU(fx, hex, sw) assert_int_equal(fx_apdu((fx), (hex)), (sw))

#define REF_USER 0x81u
#define REF_PUK 0x82u
#define REF_ADMIN 0x83u

/* ---- fixtures ----------------------------------------------------------------------------- */

/* ---- helpers ------------------------------------------------------------------------------ */

/* GET DATA DF04: 4 bytes per reference (ref, set, tries left, max tries). */
static void pin_record(struct fx *fx, uint8_t ref, uint8_t rec[4])
{
    APDU(fx, "00CADF04 0C", 0x9000);
    assert_int_equal(fx_data_len(fx), 12);
    for (size_t i = 0; i < 12; i += 4) {
        if (fx->rsp[i] == ref) {
            memcpy(rec, fx->rsp + i, 4);
            return;
        }
    }
    fail_msg("reference %02X missing from DF04", ref);
}

static int tries_left(struct fx *fx, uint8_t ref)
{
    uint8_t rec[4];
    pin_record(fx, ref, rec);
    return rec[2];
}

static uint8_t *snapshot(const struct fx *fx)
{
    uint8_t *img = malloc(CARD_NVM_DEFAULT_SIZE);
    assert_non_null(img);
    nvm_sim_snapshot(&fx->nvm, img);
    return img;
}

static void assert_nvm_equals(const struct fx *fx, const uint8_t *img)
{
    uint8_t *now = snapshot(fx);
    int same = memcmp(now, img, CARD_NVM_DEFAULT_SIZE) == 0;
    free(now);
    assert_true(same);
}

/* Blocks the user PIN with three wrong tries. */
static void block_user(struct fx *fx)
{
    APDU(fx, "0020 0081 06 393939393939", 0x63C2);
    APDU(fx, "0020 0081 06 393939393939", 0x63C1);
    APDU(fx, "0020 0081 06 393939393939", 0x63C0);
    APDU(fx, "0020 0081 06 313233343536", 0x6983);
}

/* Selects EF 5001 (update: user PIN) by path. */
static void select_ef5001(struct fx *fx)
{
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
}

/* ---- VERIFY ------------------------------------------------------------------------------- */

static void test_verify_unset_references(void **state)
{
    struct fx *fx = *state; /* blank card: no reference data yet */
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81000303 82000505 83000303");
    APDU(fx, "0020 0081", 0x6984);
    APDU(fx, "0020 0083", 0x6984);
    APDU(fx, "0020 0081 06 313233343536", 0x6984);
    APDU(fx, "0020 0083 08 3837363534333231", 0x6984);
    /* an unset reference costs nothing */
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81000303 82000505 83000303");
}

static void test_verify_status_and_success(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81010303 82010505 83010303");
    APDU(fx, "0020 0081", 0x63C3); /* not verified, 3 tries */
    APDU(fx, "0020 0083", 0x63C3);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    APDU(fx, "0020 0081", 0x9000); /* verified */
    APDU(fx, "0020 0083", 0x63C3); /* the admin PIN is separate */
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "0020 0083", 0x9000);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    assert_int_equal(tries_left(fx, REF_ADMIN), 3);
}

static void test_verify_wrong_blocks_user_after_3(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0020 0081 06 313233343537", 0x63C2);
    assert_int_equal(tries_left(fx, REF_USER), 2);
    APDU(fx, "0020 0081", 0x63C2);
    APDU(fx, "0020 0081 06 000000000000", 0x63C1);
    APDU(fx, "0020 0081 06 FFFFFFFFFFFF", 0x63C0);
    assert_int_equal(tries_left(fx, REF_USER), 0);
    /* blocked: the right PIN is refused and spends nothing */
    uint8_t *img = snapshot(fx);
    APDU(fx, "0020 0081 06 313233343536", 0x6983);
    APDU(fx, "0020 0081", 0x6983);
    assert_nvm_equals(fx, img);
    free(img);
    /* still blocked after a power cycle */
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "0020 0081 06 313233343536", 0x6983);
    assert_int_equal(tries_left(fx, REF_USER), 0);
    /* the other references are untouched */
    assert_int_equal(tries_left(fx, REF_PUK), 5);
    assert_int_equal(tries_left(fx, REF_ADMIN), 3);
}

static void test_verify_right_resets_counter(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0020 0081 06 393939393939", 0x63C2);
    APDU(fx, "0020 0081 06 393939393939", 0x63C1);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    APDU(fx, "0020 0081 06 393939393939", 0x63C2);
    /* a failed try withdraws the earlier success */
    APDU(fx, "0020 0081", 0x63C2);
}

static void test_verify_wrong_length_candidates(void **state)
{
    struct fx *fx = *state;
    /* a prefix of the PIN, the PIN plus a byte: both wrong, both cost a try */
    APDU(fx, "0020 0081 05 3132333435", 0x63C2);
    APDU(fx, "0020 0081 07 31323334353600", 0x63C1);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    /* longer than any PIN can be: wrong length, no try spent */
    uint8_t *img = snapshot(fx);
    APDU(fx, "0020 0081 11 3132333435363738393031323334353637", 0x6700);
    APDU(fx, "0020 0083 11 3837363534333231383736353433323100", 0x6700);
    assert_nvm_equals(fx, img);
    free(img);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    /* 16 bytes is a legal length: a plain wrong try */
    APDU(fx, "0020 0081 10 31323334353637383930313233343536", 0x63C2);
}

static void test_verify_admin_blocks_after_3(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0020 0083 08 3837363534333230", 0x63C2);
    APDU(fx, "0020 0083 08 3837363534333230", 0x63C1);
    APDU(fx, "0020 0083 08 3837363534333230", 0x63C0);
    APDU(fx, "0020 0083 08 3837363534333231", 0x6983);
    APDU(fx, "0020 0083", 0x6983);
    /* the admin PIN has no unblocking code here */
    APDU(fx, "002C 0183 08 3132333435363738", 0x6A88);
    assert_int_equal(tries_left(fx, REF_ADMIN), 0);
    assert_int_equal(tries_left(fx, REF_USER), 3);
}

static void test_verify_bad_parameters(void **state)
{
    struct fx *fx = *state;
    uint8_t *img = snapshot(fx);
    APDU(fx, "0020 0181 06 313233343536", 0x6A86);
    APDU(fx, "0020 8081 06 313233343536", 0x6A86);
    APDU(fx, "0020 0082 08 3132333435363738", 0x6A88); /* the PUK is not VERIFY-able */
    APDU(fx, "0020 0080 06 313233343536", 0x6A88);
    APDU(fx, "0020 0084 06 313233343536", 0x6A88);
    APDU(fx, "0020 0001 06 313233343536", 0x6A88);
    APDU(fx, "0020 0000", 0x6A88);
    APDU(fx, "0020 FF81 06 313233343536", 0x6700); /* reset form takes no data */
    APDU(fx, "0020 0081 00", 0x6700);              /* case 2: VERIFY returns no data */
    APDU(fx, "0020 0081 06 313233343536 00", 0x6700);
    assert_nvm_equals(fx, img);
    free(img);
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81010303 82010505 83010303");
}

static void test_verify_p1_ff_resets_status(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    select_ef5001(fx);
    APDU(fx, "00D6 0000 02 AABB", 0x9000);
    APDU(fx, "0020 FF81", 0x9000);
    APDU(fx, "0020 0081", 0x63C3);
    APDU(fx, "00D6 0000 02 CCDD", 0x6982);
    APDU(fx, "0020 0083", 0x9000); /* only the named reference is reset */
    APDU(fx, "0020 FF83", 0x9000);
    APDU(fx, "0020 0083", 0x63C3);
    APDU(fx, "0020 FF82", 0x6A88);
    /* resetting spends no try and the data stayed as written */
    assert_int_equal(tries_left(fx, REF_USER), 3);
    APDU(fx, "00B0 0000 02", 0x9000);
    fx_expect_data(fx, "AABB");
}

/* ---- the volatile security state ------------------------------------------------------------ */

static void verify_both_and_use(struct fx *fx)
{
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    select_ef5001(fx);
    APDU(fx, "00D6 0000 01 11", 0x9000);
}

static void expect_cleared(struct fx *fx)
{
    APDU(fx, "00B0 0000 01", 0x6986); /* no current EF after a power event */
    select_ef5001(fx);
    APDU(fx, "00D6 0000 01 22", 0x6982);
    APDU(fx, "0020 0081", 0x63C3);
    APDU(fx, "0020 0083", 0x63C3);
    APDU(fx, "00DA DF02 02 4142", 0x6982); /* PUT DATA needs the admin PIN */
    APDU(fx, "00B0 0000 01", 0x9000);
    fx_expect_data(fx, "11");
}

static void test_power_off_on_clears_security(void **state)
{
    struct fx *fx = *state;
    verify_both_and_use(fx);
    card_power_off(&fx->card);
    uint8_t *img = snapshot(fx);
    APDU(fx, "0020 0081", 0x6985); /* no power: nothing is processed */
    APDU(fx, "00D6 0000 01 33", 0x6985);
    assert_nvm_equals(fx, img);
    free(img);
    card_power_on(&fx->card);
    expect_cleared(fx);
}

static void test_reset_clears_security(void **state)
{
    struct fx *fx = *state;
    verify_both_and_use(fx);
    card_reset(&fx->card);
    expect_cleared(fx);
}

static void test_power_on_alone_clears_security(void **state)
{
    struct fx *fx = *state;
    verify_both_and_use(fx);
    card_power_on(&fx->card);
    expect_cleared(fx);
}

/* ---- CHANGE REFERENCE DATA ------------------------------------------------------------------- */

static void test_change_old_new(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0024 0081 0C 313233343536 363534333231", 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x63C2);
    APDU(fx, "0020 0081 06 363534333231", 0x9000);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    /* a different length for the new PIN */
    APDU(fx, "0024 0081 0E 363534333231 3131313131313131", 0x9000);
    assert_int_equal(fx_reboot(fx), 0);
    APDU(fx, "0020 0081 06 363534333231", 0x63C2);
    APDU(fx, "0020 0081 08 3131313131313131", 0x9000);
    /* admin PIN and PUK change the same way */
    APDU(fx, "0024 0083 10 3837363534333231 3132313231323132", 0x9000);
    APDU(fx, "0020 0083 08 3132313231323132", 0x9000);
    APDU(fx, "0024 0082 10 3132333435363738 3838383838383838", 0x9000);
    APDU(fx, "002C 0181 08 3132333435363738", 0x63C4); /* the old PUK is gone */
    APDU(fx, "002C 0181 08 3838383838383838", 0x9000);
}

static void test_change_wrong_old_costs_try(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0024 0081 0C 313233343530 363534333231", 0x63C2);
    assert_int_equal(tries_left(fx, REF_USER), 2);
    APDU(fx, "0024 0081 0C 313233343530 363534333231", 0x63C1);
    APDU(fx, "0024 0081 0C 313233343530 363534333231", 0x63C0);
    APDU(fx, "0024 0081 0C 313233343536 363534333231", 0x6983); /* blocked */
    APDU(fx, "0020 0081 06 363534333231", 0x6983);
    assert_int_equal(tries_left(fx, REF_USER), 0);
    /* shorter than the old PIN: a wrong try as well */
    APDU(fx, "0024 0083 04 38373635", 0x63C2);
}

static void test_change_new_length_checked(void **state)
{
    struct fx *fx = *state;
    APDU(fx, "0024 0081 09 313233343536 313233", 0x6A80);       /* 3 < minimum 4 */
    APDU(fx, "0024 0081 06 313233343536", 0x6A80);              /* no new PIN */
    APDU(fx, "0024 0081 17 313233343536 3132333435363738393031323334353637", 0x6A80);
    /* the old PIN stands, with a full counter */
    assert_int_equal(tries_left(fx, REF_USER), 3);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    /* minimum and maximum lengths are accepted */
    APDU(fx, "0024 0081 0A 313233343536 34343434", 0x9000);
    APDU(fx, "0024 0081 14 34343434 31323334353637383930313233343536", 0x9000);
    APDU(fx, "0020 0081 10 31323334353637383930313233343536", 0x9000);
}

static void test_change_parameters(void **state)
{
    struct fx *fx = *state;
    uint8_t *img = snapshot(fx);
    /* new-only form refused once operational and set */
    APDU(fx, "0024 0181 06 393939393939", 0x6985);
    APDU(fx, "0024 0183 06 393939393939", 0x6985);
    APDU(fx, "0024 0281 0C 313233343536 363534333231", 0x6A86);
    APDU(fx, "0024 FF81 0C 313233343536 363534333231", 0x6A86);
    APDU(fx, "0024 0084 0C 313233343536 363534333231", 0x6A88);
    APDU(fx, "0024 0000 0C 313233343536 363534333231", 0x6A88);
    APDU(fx, "0024 0081", 0x6700); /* case 1 */
    assert_nvm_equals(fx, img);
    free(img);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
}

static void test_change_new_only_before_operational(void **state)
{
    struct fx *fx = *state; /* blank card, life cycle "creation" */
    APDU(fx, "0024 0081 00", 0x6700);
    APDU(fx, "0024 0181 03 313233", 0x6A80);
    APDU(fx, "0024 0181 06 313233343536", 0x9000);
    APDU(fx, "0024 0181 06 393939393939", 0x9000); /* may be set again while personalizing */
    APDU(fx, "0020 0081 06 313233343536", 0x63C2);
    APDU(fx, "0020 0081 06 393939393939", 0x9000);
    /* old||new on an unset reference: not usable */
    APDU(fx, "0024 0083 0C 313233343536 363534333231", 0x6984);
    /* after PUT DATA (initialisation) still allowed */
    APDU(fx, "00DA DF02 02 4142", 0x9000);
    APDU(fx, "0024 0181 06 373737373737", 0x9000);
    APDU(fx, "0020 0081 06 373737373737", 0x9000);
}

static void test_change_new_only_when_unset_in_operational(void **state)
{
    struct fx *fx = *state; /* blank: set user and admin only, then go operational */
    APDU(fx, "0024 0181 06 313233343536", 0x9000);
    APDU(fx, "0024 0183 08 3837363534333231", 0x9000);
    APDU(fx, "0044 0000", 0x9000);
    APDU(fx, "00CADF03 01", 0x9000);
    fx_expect_data(fx, "05");
    APDU(fx, "0024 0181 06 393939393939", 0x6985);
    /* the PUK is still unset: its first value may be given */
    APDU(fx, "002C 0181 08 3132333435363738", 0x6984);
    APDU(fx, "0024 0182 08 3132333435363738", 0x9000);
    APDU(fx, "0024 0182 08 3132333435363739", 0x6985);
    block_user(fx);
    APDU(fx, "002C 0181 08 3132333435363738", 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
}

/* ---- RESET RETRY COUNTER ------------------------------------------------------------------ */

static void test_unblock_puk_with_new_pin(void **state)
{
    struct fx *fx = *state;
    block_user(fx);
    APDU(fx, "002C 0081 0E 3132333435363738 393939393939", 0x9000);
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81010303 82010505 83010303");
    APDU(fx, "0020 0081 06 313233343536", 0x63C2); /* the old PIN is replaced */
    APDU(fx, "0020 0081 06 393939393939", 0x9000);
    /* works without a block too */
    APDU(fx, "002C 0081 0C 3132333435363738 34343434", 0x9000);
    APDU(fx, "0020 0081 04 34343434", 0x9000);
}

static void test_unblock_puk_only(void **state)
{
    struct fx *fx = *state;
    block_user(fx);
    APDU(fx, "002C 0181 08 3132333435363738", 0x9000);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    APDU(fx, "0020 0081 06 313233343536", 0x9000); /* same PIN, new counter */
}

static void test_unblock_wrong_puk(void **state)
{
    struct fx *fx = *state;
    block_user(fx);
    APDU(fx, "002C 0181 08 3132333435363739", 0x63C4);
    APDU(fx, "002C 0081 0E 3132333435363739 393939393939", 0x63C3);
    APDU(fx, "002C 0181 07 31323334353637", 0x63C2); /* PUK prefix */
    APDU(fx, "002C 0081 04 31323334", 0x63C1);        /* too short to hold the PUK */
    assert_int_equal(tries_left(fx, REF_PUK), 1);
    assert_int_equal(tries_left(fx, REF_USER), 0);
    APDU(fx, "0020 0081 06 313233343536", 0x6983); /* still blocked */
    APDU(fx, "002C 0181 08 0000000000000000", 0x63C0);
    APDU(fx, "002C 0181 08 3132333435363738", 0x6983); /* PUK blocked after 5 */
    APDU(fx, "002C 0081 0E 3132333435363738 393939393939", 0x6983);
    APDU(fx, "00CADF04 0C", 0x9000);
    fx_expect_data(fx, "81010003 82010005 83010303");
    /* the admin can still help */
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "002C 0381", 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
}

static void test_unblock_by_admin(void **state)
{
    struct fx *fx = *state;
    block_user(fx);
    uint8_t *img = snapshot(fx);
    APDU(fx, "002C 0381", 0x6982);
    APDU(fx, "002C 0281 06 393939393939", 0x6982);
    APDU(fx, "0020 0081 06 313233343536", 0x6983);
    assert_nvm_equals(fx, img);
    /* the user PIN is no substitute for the admin PIN */
    APDU(fx, "0020 0083 08 3132333435363738", 0x63C2);
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "002C 0381", 0x9000);
    assert_int_equal(tries_left(fx, REF_USER), 3);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    block_user(fx);
    APDU(fx, "002C 0281 06 393939393939", 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x63C2);
    APDU(fx, "0020 0081 06 393939393939", 0x9000);
    APDU(fx, "002C 0281 03 393939", 0x6A80); /* new PIN too short */
    APDU(fx, "0020 FF83", 0x9000);
    APDU(fx, "002C 0381", 0x6982);
    free(img);
}

static void test_unblock_parameters(void **state)
{
    struct fx *fx = *state;
    uint8_t *img = snapshot(fx);
    APDU(fx, "002C 0082 0E 3132333435363738 393939393939", 0x6A88);
    APDU(fx, "002C 0083 0E 3132333435363738 393939393939", 0x6A88);
    APDU(fx, "002C 0481 08 3132333435363738", 0x6A86);
    APDU(fx, "002C FF81 08 3132333435363738", 0x6A86);
    APDU(fx, "002C 0381 02 0000", 0x6700); /* P1 03 takes no data */
    APDU(fx, "002C 0081", 0x6700);         /* P1 00..02 need data */
    APDU(fx, "002C 0181", 0x6700);
    APDU(fx, "002C 0281", 0x6700);
    assert_nvm_equals(fx, img);
    free(img);
    /* PUK only, no new PIN in the P1 00 form: the PUK is right, the new PIN is missing */
    APDU(fx, "002C 0081 08 3132333435363738", 0x6A80);
    assert_int_equal(tries_left(fx, REF_PUK), 5);
}

static void test_unblock_unset_user_pin(void **state)
{
    struct fx *fx = *state; /* blank: PUK set, user PIN not */
    APDU(fx, "0024 0182 08 3132333435363738", 0x9000);
    APDU(fx, "002C 0181 08 3132333435363738", 0x6984);
    APDU(fx, "002C 0381", 0x6984);
    APDU(fx, "002C 0081 0E 3132333435363738 313233343536", 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
}

/* ---- the PIN value never leaves the card ------------------------------------------------ */

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

static void test_pin_never_in_response(void **state)
{
    struct fx *fx = *state;
    static const uint8_t secrets[][8] = {
        { 0x31, 0x32, 0x33, 0x34, 0x35, 0x36 },
        { 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38 },
        { 0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31 },
        { 0x36, 0x35, 0x34, 0x33, 0x32, 0x31 },
    };
    static const size_t secret_len[] = { 6, 8, 8, 6 };
    static const char *const script[] = {
        "0020 0081", "0020 0081 06 313233343536", "0020 0081 06 313233343530",
        "0020 0083 08 3837363534333231", "0020 0082 08 3132333435363738",
        "00CADF01 00", "00CADF02 00", "00CADF03 00", "00CADF04 00", "00CADF05 00",
        "00CADF06 00", "00CA DF05 000000", "00A4 0000 00", "00A4 0800 04 50005002 00",
        "00A4 0800 04 50005001 00", "00B0 0000 00", "00B0 0000 000000",
        "0024 0081 0C 313233343536 363534333231", "0024 0081 0C 363534333231 313233343536",
        "002C 0181 08 3132333435363738", "002C 0081 0E 3132333435363738 313233343536",
        "0084 0000 00", "00A4 0800 04 50005002 00", "00B0 0000 20", "00C0 0000 00",
        "00CADF04 04", "00C0 0000 00", "0020 0081 06 313233343536",
    };
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        uint16_t sw = fx_apdu(fx, script[i]);
        (void)sw;
        for (size_t s = 0; s < sizeof secret_len / sizeof secret_len[0]; s++)
            assert_false(contains(fx->rsp, fx_data_len(fx), secrets[s], secret_len[s]));
    }
}

/* ---- power cut between decrement and compare ---------------------------------------------- */

static const enum nvm_sim_tear tears[] = { NVM_SIM_TEAR_NONE, NVM_SIM_TEAR_HALF,
                                           NVM_SIM_TEAR_GARBAGE };

/* Starting with the user PIN at 2 tries of 3, sends `verify` with the power cut after n device
 * writes, for n = 0, 1, ... until the command completes. Each cut command must answer 6581 and
 * leave, after a reboot, the old count (2) or the decremented one (1); for the right PIN also
 * the full count (3), but only at cut points after some where the decrement alone was durable:
 * the compare never happens before the spent try is on NVM. */
static void verify_cut_sweep(struct fx *fx, const char *verify, bool right)
{
    const int old = 2, max = 3;
    APDU(fx, "0020 0081 06 393939393939", 0x63C2);
    uint8_t *base = snapshot(fx);
    for (size_t m = 0; m < sizeof tears / sizeof tears[0]; m++) {
        bool seen_dec = false, seen_max = false;
        for (long n = 0;; n++) {
            assert_true(n < 200);
            nvm_sim_restore(&fx->nvm, base);
            assert_int_equal(fx_reboot(fx), 0);
            nvm_sim_cut_after(&fx->nvm, n, tears[m]);
            uint16_t sw = fx_apdu(fx, verify);
            if (!fx->nvm.dead) {
                /* the command ran to completion before the cut */
                nvm_sim_cut_after(&fx->nvm, -1, NVM_SIM_TEAR_NONE);
                assert_int_equal(sw, right ? 0x9000 : 0x63C1);
                assert_true(n >= (right ? 4 : 2)); /* two durable steps, or one */
                assert_true(seen_dec);
                assert_int_equal(tries_left(fx, REF_USER), right ? max : old - 1);
                APDU(fx, "0020 0081", right ? 0x9000 : 0x63C1);
                break;
            }
            /* cut: no verification result may leave the card */
            assert_int_equal(sw, 0x6581);
            assert_int_equal(fx_reboot(fx), 0);
            int t = tries_left(fx, REF_USER);
            if (n == 0)
                assert_int_equal(t, old);
            if (t == old) {
                assert_false(seen_dec);
                assert_false(seen_max);
            } else if (t == old - 1) {
                assert_false(seen_max);
                seen_dec = true;
            } else {
                assert_true(right);
                assert_int_equal(t, max);
                assert_true(seen_dec);
                seen_max = true;
            }
            /* after the cut nothing is verified */
            APDU(fx, "0020 0081", 0x63C0 | (unsigned)t);
            APDU(fx, "0020 0083", 0x63C3);
            APDU(fx, "00CADF04 0C", 0x9000);
            assert_int_equal(fx->rsp[6], 5); /* PUK */
            assert_int_equal(fx->rsp[10], 3); /* admin */
        }
        assert_true(seen_dec);
        assert_true(seen_max == right);
    }
    free(base);
}

static void test_cut_wrong_verify(void **state)
{
    verify_cut_sweep(*state, "0020 0081 06 393939393939", false);
}

static void test_cut_right_verify(void **state)
{
    verify_cut_sweep(*state, "0020 0081 06 313233343536", true);
}

/* The first write of a VERIFY is the spent try: a cut there changes nothing at all. */
static void test_cut_first_write_changes_nothing(void **state)
{
    struct fx *fx = *state;
    uint8_t *base = snapshot(fx);
    for (size_t m = 0; m < sizeof tears / sizeof tears[0]; m++) {
        nvm_sim_restore(&fx->nvm, base);
        assert_int_equal(fx_reboot(fx), 0);
        unsigned long w = fx->nvm.writes;
        nvm_sim_cut_after(&fx->nvm, 0, tears[m]);
        APDU(fx, "0020 0081 06 313233343536", 0x6581);
        assert_true(fx->nvm.dead);
        assert_int_equal(fx->nvm.writes - w, tears[m] == NVM_SIM_TEAR_NONE ? 0 : 1);
        assert_int_equal(fx_reboot(fx), 0);
        assert_int_equal(tries_left(fx, REF_USER), 3);
        APDU(fx, "0020 0081", 0x63C3);
    }
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_unset_references, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_status_and_success, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_wrong_blocks_user_after_3, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_right_resets_counter, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_wrong_length_candidates, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_admin_blocks_after_3, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_bad_parameters, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_p1_ff_resets_status, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_power_off_on_clears_security, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reset_clears_security, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_power_on_alone_clears_security, fx_setup_perso,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_old_new, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_wrong_old_costs_try, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_new_length_checked, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_parameters, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_new_only_before_operational, fx_setup_blank,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_new_only_when_unset_in_operational,
                                        fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_puk_with_new_pin, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_puk_only, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_wrong_puk, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_by_admin, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_parameters, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unblock_unset_user_pin, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pin_never_in_response, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cut_wrong_verify, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cut_right_verify, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cut_first_write_changes_nothing, fx_setup_perso,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

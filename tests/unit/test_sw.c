/* Status words: every named value checked against ISO 7816-4 written out independently,
 * the helper macros, and sw_describe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sw.h"

struct sw_case {
    const char *name;
    unsigned value;    /* the project's constant */
    unsigned expected; /* the ISO 7816-4 value, typed in here independently */
};

#define SWC(name, iso) { #name, name, iso }

static const struct sw_case sw_table[] = {
    SWC(SW_OK, 0x9000),
    SWC(SW_BYTES_REMAINING, 0x6100),
    SWC(SW_DATA_CORRUPTED, 0x6281),
    SWC(SW_EOF_WARNING, 0x6282),
    SWC(SW_FILE_DEACTIVATED, 0x6283),
    SWC(SW_COUNTER, 0x63C0),
    SWC(SW_EXECUTION_ERROR, 0x6400),
    SWC(SW_MEMORY_FAILURE, 0x6581),
    SWC(SW_WRONG_LENGTH, 0x6700),
    SWC(SW_CHANNEL_NOT_SUPPORTED, 0x6881),
    SWC(SW_SM_NOT_SUPPORTED, 0x6882),
    SWC(SW_LAST_COMMAND_EXPECTED, 0x6883),
    SWC(SW_CHAINING_NOT_SUPPORTED, 0x6884),
    SWC(SW_INCOMPATIBLE_FILE, 0x6981),
    SWC(SW_SECURITY_STATUS, 0x6982),
    SWC(SW_AUTH_BLOCKED, 0x6983),
    SWC(SW_REF_DATA_UNUSABLE, 0x6984),
    SWC(SW_CONDITIONS_NOT_SATISFIED, 0x6985),
    SWC(SW_NO_CURRENT_EF, 0x6986),
    SWC(SW_SM_DO_MISSING, 0x6987),
    SWC(SW_SM_DO_INCORRECT, 0x6988),
    SWC(SW_WRONG_DATA, 0x6A80),
    SWC(SW_FUNC_NOT_SUPPORTED, 0x6A81),
    SWC(SW_FILE_NOT_FOUND, 0x6A82),
    SWC(SW_NOT_ENOUGH_MEMORY, 0x6A84),
    SWC(SW_INCORRECT_P1P2, 0x6A86),
    SWC(SW_NC_INCONSISTENT, 0x6A87),
    SWC(SW_REF_DATA_NOT_FOUND, 0x6A88),
    SWC(SW_FILE_EXISTS, 0x6A89),
    SWC(SW_DF_NAME_EXISTS, 0x6A8A),
    SWC(SW_WRONG_P1P2, 0x6B00),
    SWC(SW_WRONG_LE, 0x6C00),
    SWC(SW_INS_NOT_SUPPORTED, 0x6D00),
    SWC(SW_CLA_NOT_SUPPORTED, 0x6E00),
    SWC(SW_UNKNOWN, 0x6F00),
};

#define N_SW (sizeof sw_table / sizeof sw_table[0])

static void test_values_match_iso(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SW; i++) {
        if (sw_table[i].value != sw_table[i].expected)
            print_error("%s = %04X, ISO 7816-4 says %04X\n", sw_table[i].name,
                        sw_table[i].value, sw_table[i].expected);
        assert_int_equal(sw_table[i].value, sw_table[i].expected);
        assert_true(sw_table[i].value <= 0xFFFFu);
    }
}

static void test_values_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SW; i++)
        for (size_t j = i + 1; j < N_SW; j++)
            assert_int_not_equal(sw_table[i].value, sw_table[j].value);
}

static void assert_text(uint16_t sw)
{
    const char *s = sw_describe(sw);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
}

static void test_describe_named(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SW; i++)
        assert_text((uint16_t)sw_table[i].value);
    assert_string_equal(sw_describe(0x9000), "OK");
    assert_string_equal(sw_describe(0x6700), "wrong length");
    assert_string_equal(sw_describe(0x6982), "security status not satisfied");
    /* named words have their own text, not the unknown fallback */
    for (size_t i = 0; i < N_SW; i++)
        assert_string_not_equal(sw_describe((uint16_t)sw_table[i].value), "unknown status word");
}

static void test_describe_families(void **state)
{
    (void)state;
    const char *t61 = sw_describe(0x6100);
    const char *t63 = sw_describe(0x63C0);
    const char *t6c = sw_describe(0x6C00);
    assert_string_not_equal(t61, t63);
    assert_string_not_equal(t61, t6c);
    for (unsigned x = 0; x <= 0xFF; x++) {
        assert_string_equal(sw_describe((uint16_t)(0x6100 | x)), t61);
        assert_string_equal(sw_describe((uint16_t)(0x6C00 | x)), t6c);
    }
    for (unsigned x = 0; x <= 0xF; x++)
        assert_string_equal(sw_describe((uint16_t)(0x63C0 | x)), t63);
    /* 63xx outside 63Cx is not a counter */
    assert_string_not_equal(sw_describe(0x6300), t63);
    assert_string_not_equal(sw_describe(0x63D0), t63);
}

static void test_describe_unknown(void **state)
{
    (void)state;
    static const uint16_t unknown[] = { 0x0000, 0x0001, 0x1234, 0x5FFF, 0x6000, 0x7000,
                                        0x8000, 0x9001, 0x90FF, 0xFFFF };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_text(unknown[i]);
        assert_string_equal(sw_describe(unknown[i]), "unknown status word");
    }
    /* every 16-bit value gets some non-empty text */
    for (unsigned sw = 0; sw <= 0xFFFF; sw++)
        assert_text((uint16_t)sw);
}

static void test_helpers(void **state)
{
    (void)state;
    assert_int_equal(SW_SW1(0x6A82), 0x6A);
    assert_int_equal(SW_SW2(0x6A82), 0x82);
    assert_int_equal(SW_MAKE(0x90, 0x00), 0x9000);
    assert_int_equal(SW_BYTES_REMAINING_N(0x20), 0x6120);
    assert_int_equal(SW_BYTES_REMAINING_N(255), 0x61FF);
    assert_int_equal(SW_BYTES_REMAINING_N(256), 0x6100);
    assert_int_equal(SW_BYTES_REMAINING_N(70000), 0x6100);
    assert_int_equal(SW_COUNTER_N(3), 0x63C3);
    assert_int_equal(SW_COUNTER_N(0), 0x63C0);
    assert_int_equal(SW_COUNTER_N(20), 0x63CF);
    assert_int_equal(SW_WRONG_LE_N(0x10), 0x6C10);
    assert_int_equal(SW_WRONG_LE_N(256), 0x6C00);
    assert_true(SW_IS_BYTES_REMAINING(0x6105));
    assert_false(SW_IS_BYTES_REMAINING(0x6205));
    assert_true(SW_IS_COUNTER(0x63C2));
    assert_false(SW_IS_COUNTER(0x6382));
    assert_true(SW_IS_WRONG_LE(0x6C01));
    assert_true(SW_IS_SUCCESS(0x9000));
    assert_true(SW_IS_SUCCESS(0x6110));
    assert_false(SW_IS_SUCCESS(0x6282));
    assert_true(SW_IS_WARNING(0x6282));
    assert_true(SW_IS_WARNING(0x63C1));
    assert_false(SW_IS_WARNING(0x6A82));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_match_iso),
        cmocka_unit_test(test_values_distinct),
        cmocka_unit_test(test_describe_named),
        cmocka_unit_test(test_describe_families),
        cmocka_unit_test(test_describe_unknown),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

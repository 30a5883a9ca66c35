/* cmocka assertions over the card fixture; include after <cmocka.h>. */
#ifndef FX_ASSERT_H
#define FX_ASSERT_H

#include "card_fixture.h"

/* Asserts that the last response's data is exactly the bytes written in hex. */
static inline void fx_expect_data(const struct fx *fx, const char *hex)
{
    uint8_t want[CARD_RAPDU_MAX];
    int n = fx_hex(hex, want, sizeof want);
    assert_true(n >= 0);
    assert_int_equal(fx_data_len(fx), (size_t)n);
    if (n > 0)
        assert_memory_equal(fx->rsp, want, (size_t)n);
}

#endif

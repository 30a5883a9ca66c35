/* Unit tests of the NVM transaction layer (card/core/nvm.c), CRC-32 and the simulated NVM
 * (card/sim/nvm_sim.c), including a power cut at every single device write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "card_err.h"
#include "crc32.h"
#include "nvm.h"
#include "nvm_sim.h"

/* Layout facts from docs/nvm.md that some tests poke at directly. */
#define T_HDR_SIZE 32u
#define T_CREC_OFF 32u
#define T_CREC_SIZE 16u
#define T_BODY_OFF 48u

/* user area of the test devices: room for a full journal of 100-byte records plus margin */
#define T_USER (2048u + CARD_NVM_JOURNAL_SIZE)

static const enum nvm_sim_tear t_modes[3] = {NVM_SIM_TEAR_NONE, NVM_SIM_TEAR_HALF,
                                             NVM_SIM_TEAR_GARBAGE};

/* ---- helpers -------------------------------------------------------------------------------- */

static uint32_t t_dev_size(void)
{
    return nvm_user_base() + T_USER;
}

static uint8_t *t_alloc(size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    return p;
}

/* Deterministic, well-mixed test data: byte i of pattern `fill`. */
static uint8_t t_pat(unsigned fill, size_t i)
{
    uint32_t x = (uint32_t)fill * 0x9E3779B1u + (uint32_t)i * 0x85EBCA77u + 0x165667B1u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    x *= 0x297A2D39u;
    x ^= x >> 15;
    return (uint8_t)x;
}

static uint8_t *t_pattern(unsigned fill, size_t n)
{
    uint8_t *p = t_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = t_pat(fill, i);
    return p;
}

static void t_sim_ram(struct nvm_sim *s, uint32_t size)
{
    assert_int_equal(nvm_sim_open_ram(s, size), 0);
}

static struct nvm *t_new_nvm(void)
{
    struct nvm *n = calloc(1, sizeof *n);
    assert_non_null(n);
    return n;
}

/* A RAM device of the test size, formatted; nvm is left mounted by the format. */
static struct nvm *t_formatted(struct nvm_sim *s)
{
    struct nvm *nvm = t_new_nvm();
    t_sim_ram(s, t_dev_size());
    assert_int_equal(nvm_format(nvm, &s->hal), 0);
    return nvm;
}

static const uint8_t *t_raw_user(const struct nvm_sim *s)
{
    return s->mem + nvm_user_base();
}

static bool t_contains(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn)
{
    if (nn == 0 || nn > hn)
        return nn == 0;
    for (size_t i = 0; i + nn <= hn; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0)
            return true;
    return false;
}

static uint8_t *t_snapshot(const struct nvm_sim *s)
{
    uint8_t *p = t_alloc(s->hal.size);
    nvm_sim_snapshot(s, p);
    return p;
}

static void t_assert_image(const struct nvm_sim *s, const uint8_t *expect)
{
    assert_memory_equal(s->mem, expect, s->hal.size);
}

/* ---- crc32 ---------------------------------------------------------------------------------- */

static void test_crc32_check_value(void **state)
{
    (void)state;
    static const char check[9] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
    assert_int_equal(card_crc32(check, sizeof check), 0xCBF43926u);
    assert_int_equal(card_crc32_update(card_crc32(check, 4), check + 4, 5), 0xCBF43926u);
    assert_int_equal(card_crc32(NULL, 0), 0);
    uint8_t *one = t_alloc(1);
    one[0] = 0;
    assert_int_equal(card_crc32(one, 1), 0xD202EF8Du);
    free(one);
}

/* ---- format / mount ------------------------------------------------------------------------- */

static void test_format_then_mount(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);

    assert_true(nvm->mounted);
    assert_int_equal(nvm->user_base, nvm_user_base());
    assert_int_equal(nvm->user_size, T_USER);

    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    assert_true(nvm->mounted);
    assert_int_equal(nvm->user_size, T_USER);
    assert_int_equal(nvm->bytes_written, 0); /* a clean mount writes nothing */

    uint8_t *buf = t_alloc(T_USER);
    assert_int_equal(nvm_read(nvm, 0, buf, T_USER), 0);
    for (size_t i = 0; i < T_USER; i++)
        assert_int_equal(buf[i], 0);

    free(buf);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_mount_blank_is_foreign(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_new_nvm();
    t_sim_ram(&s, t_dev_size());
    uint8_t *before = t_snapshot(&s);

    assert_int_equal(nvm_mount(nvm, &s.hal), CARD_E_FOREIGN);
    assert_false(nvm->mounted);
    t_assert_image(&s, before);
    memset(s.mem, 0, s.hal.size);
    assert_int_equal(nvm_mount(nvm, &s.hal), CARD_E_FOREIGN);

    /* an unmounted layer refuses to work */
    uint8_t *b = t_alloc(1);
    assert_int_equal(nvm_read(nvm, 0, b, 1), CARD_E_IO);
    assert_int_equal(nvm_begin(nvm, 0), CARD_E_IO);

    free(b);
    free(before);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_mount_flipped_header_byte(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *good = t_snapshot(&s);
    static const uint8_t bits[3] = {0x01, 0x10, 0x80};

    for (unsigned i = 0; i < T_HDR_SIZE; i++) {
        for (unsigned b = 0; b < 3; b++) {
            nvm_sim_restore(&s, good);
            s.mem[i] ^= bits[b];
            uint8_t *bad = t_snapshot(&s);
            int rc = nvm_mount(nvm, &s.hal);
            assert_true(rc == CARD_E_CORRUPT || rc == CARD_E_FOREIGN);
            assert_false(nvm->mounted);
            t_assert_image(&s, bad); /* a refused mount writes nothing */
            free(bad);
        }
    }
    nvm_sim_restore(&s, good);
    assert_int_equal(nvm_mount(nvm, &s.hal), 0);

    free(good);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_mount_wrong_device_size(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    static const int32_t deltas[2] = {-64, 64};

    for (unsigned d = 0; d < 2; d++) {
        struct nvm_sim o;
        uint32_t osize = (uint32_t)((int32_t)t_dev_size() + deltas[d]);
        t_sim_ram(&o, osize);
        memcpy(o.mem, s.mem, osize < s.hal.size ? osize : s.hal.size);
        assert_int_equal(nvm_mount(nvm, &o.hal), CARD_E_FOREIGN);
        nvm_sim_close(&o);
    }

    free(nvm);
    nvm_sim_close(&s);
}

static void test_device_too_small(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_new_nvm();
    t_sim_ram(&s, nvm_user_base() + 16);
    uint8_t *before = t_snapshot(&s);

    assert_int_equal(nvm_format(nvm, &s.hal), CARD_E_NO_SPACE);
    t_assert_image(&s, before);
    assert_int_equal(nvm_mount(nvm, &s.hal), CARD_E_FOREIGN);

    free(before);
    free(nvm);
    nvm_sim_close(&s);
}

/* Every write of a format cut (each tear mode), over a blank device and over a card with data:
 * the result never mounts half-formatted. */
static void test_torn_format_never_mounts(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_new_nvm();
    t_sim_ram(&s, t_dev_size());
    uint8_t *blank = t_snapshot(&s);
    uint8_t *data = t_pattern(77, 300);

    assert_int_equal(nvm_format(nvm, &s.hal), 0);
    assert_int_equal(nvm_write_atomic(nvm, 100, data, 300, 0), 0);
    uint8_t *with_data = t_snapshot(&s);
    uint8_t *old_user = t_alloc(T_USER);
    memcpy(old_user, t_raw_user(&s), T_USER);

    unsigned completed = 0;
    for (unsigned base = 0; base < 2; base++) {
        for (unsigned m = 0; m < 3; m++) {
            for (long n = 0;; n++) {
                assert_true(n < 10000);
                nvm_sim_restore(&s, base == 0 ? blank : with_data);
                nvm_sim_power_restore(&s);
                nvm_sim_cut_after(&s, n, t_modes[m]);
                int rc = nvm_format(nvm, &s.hal);
                if (rc == 0) {
                    nvm_sim_cut_after(&s, -1, NVM_SIM_TEAR_NONE);
                    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
                    completed++;
                    break;
                }
                assert_int_equal(rc, CARD_E_IO);
                assert_true(s.dead);
                nvm_sim_power_restore(&s);
                rc = nvm_mount(nvm, &s.hal);
                if (rc == 0) {
                    /* only possible when the cut hit the very first write and left the old
                     * header standing: then the old data must be all there */
                    assert_int_equal(base, 1);
                    assert_memory_equal(t_raw_user(&s), old_user, T_USER);
                } else {
                    assert_true(rc == CARD_E_FOREIGN || rc == CARD_E_CORRUPT);
                }
            }
        }
    }
    assert_int_equal(completed, 6);

    free(old_user);
    free(with_data);
    free(data);
    free(blank);
    free(nvm);
    nvm_sim_close(&s);
}

/* ---- transactions ---------------------------------------------------------------------------- */

static void test_read_your_writes(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *before = t_snapshot(&s);
    uint8_t model[64];
    struct {
        uint32_t addr;
        uint16_t len;
    } w[8] = {{10, 20}, {15, 15}, {12, 1}, {28, 8}, {10, 3}, {0, 2}, {32, 12}, {29, 6}};
    /* {12,1} and {10,3} may be merged into {10,20}; {29,6} lies inside {28,8} but {32,12}
     * came later and overlaps it, so it must not be merged there */

    memset(model, 0, sizeof model);
    assert_int_equal(nvm_begin(nvm, 0), 0);
    for (unsigned i = 0; i < 8; i++) {
        uint8_t *d = t_pattern(i + 1, w[i].len);
        assert_int_equal(nvm_write(nvm, w[i].addr, d, w[i].len), 0);
        memcpy(model + w[i].addr, d, w[i].len);
        free(d);
    }
    for (uint32_t start = 0; start <= 48; start++) {
        for (size_t len = 0; start + len <= 48; len++) {
            uint8_t *r = t_alloc(len);
            assert_int_equal(nvm_read(nvm, start, r, len), 0);
            assert_memory_equal(r, model + start, len);
            free(r);
        }
    }
    t_assert_image(&s, before); /* nothing reached the device yet */

    assert_int_equal(nvm_commit(nvm), 0);
    assert_false(nvm->in_txn);
    assert_memory_equal(t_raw_user(&s), model, sizeof model);
    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    uint8_t *r = t_alloc(sizeof model);
    assert_int_equal(nvm_read(nvm, 0, r, sizeof model), 0);
    assert_memory_equal(r, model, sizeof model);

    free(r);
    free(before);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_abort_leaves_device_untouched(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *first = t_pattern(3, 100);
    assert_int_equal(nvm_write_atomic(nvm, 500, first, 100, 0), 0);
    uint8_t *before = t_snapshot(&s);
    uint32_t bw = nvm->bytes_written;

    uint8_t *d = t_pattern(4, 200);
    assert_int_equal(nvm_begin(nvm, NVM_TXN_SECRET), 0);
    assert_int_equal(nvm_write(nvm, 450, d, 200), 0);
    assert_int_equal(nvm_write(nvm, 0, d, 1), 0);
    nvm_abort(nvm);
    assert_false(nvm->in_txn);
    assert_int_equal(nvm->jlen, 0);
    assert_int_equal(nvm->bytes_written, bw);
    t_assert_image(&s, before);

    uint8_t *r = t_alloc(100);
    assert_int_equal(nvm_read(nvm, 500, r, 100), 0);
    assert_memory_equal(r, first, 100);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(nvm->jbuf[i], 0); /* the aborted data is gone from RAM too */

    /* an empty transaction commits without touching the device */
    assert_int_equal(nvm_begin(nvm, 0), 0);
    assert_int_equal(nvm_write(nvm, 7, d, 0), 0);
    assert_int_equal(nvm_commit(nvm), 0);
    assert_int_equal(nvm->bytes_written, bw);
    t_assert_image(&s, before);

    free(r);
    free(d);
    free(before);
    free(first);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_txn_full(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *before = t_snapshot(&s);
    const size_t cap = CARD_NVM_JOURNAL_SIZE;
    uint8_t *big = t_pattern(9, cap);

    /* one record of exactly the capacity fits; one byte more does not */
    assert_int_equal(nvm_begin(nvm, 0), 0);
    assert_int_equal(nvm_write(nvm, 0, big, cap - 6), 0);
    assert_int_equal(nvm_write(nvm, (uint32_t)cap, big, 1), CARD_E_TXN_FULL);
    assert_true(nvm->in_txn); /* stays open until aborted */
    nvm_abort(nvm);
    assert_int_equal(nvm_begin(nvm, 0), 0);
    assert_int_equal(nvm_write(nvm, 0, big, cap - 5), CARD_E_TXN_FULL);
    nvm_abort(nvm);

    /* many records: 106 bytes each */
    assert_int_equal(nvm_begin(nvm, 0), 0);
    unsigned n = 0;
    int rc;
    while ((rc = nvm_write(nvm, n * 100u, big, 100)) == 0)
        n++;
    assert_int_equal(rc, CARD_E_TXN_FULL);
    assert_int_equal(n, cap / 106u);
    uint8_t *r = t_alloc(100);
    assert_int_equal(nvm_read(nvm, 100, r, 100), 0);
    assert_memory_equal(r, big, 100);
    nvm_abort(nvm);
    t_assert_image(&s, before);

    free(r);
    free(big);
    free(before);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_bad_ranges_and_misuse(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *before = t_snapshot(&s);
    uint8_t *d = t_pattern(5, 4);

    assert_int_equal(nvm_write(nvm, 0, d, 1), CARD_E_INTERNAL); /* no transaction */
    assert_int_equal(nvm_commit(nvm), CARD_E_INTERNAL);
    assert_int_equal(nvm_begin(nvm, 0), 0);
    assert_int_equal(nvm_begin(nvm, 0), CARD_E_INTERNAL);
    assert_int_equal(nvm_write(nvm, T_USER - 1, d, 2), CARD_E_INTERNAL);
    assert_int_equal(nvm_write(nvm, T_USER, d, 1), CARD_E_INTERNAL);
    assert_int_equal(nvm_write(nvm, UINT32_MAX, d, 2), CARD_E_INTERNAL);
    assert_int_equal(nvm_write(nvm, T_USER - 2, d, 2), 0);
    assert_int_equal(nvm_read(nvm, T_USER - 1, d, 2), CARD_E_INTERNAL);
    assert_int_equal(nvm_read(nvm, UINT32_MAX, d, 1), CARD_E_INTERNAL);
    assert_int_equal(nvm_write_atomic(nvm, 0, d, 1, 0), CARD_E_INTERNAL); /* txn open */
    nvm_abort(nvm);
    assert_int_equal(nvm_write_direct(nvm, T_USER - 3, d, 4), CARD_E_INTERNAL);
    assert_int_equal(nvm_write_atomic(nvm, T_USER - 3, d, 4, 0), CARD_E_INTERNAL);
    assert_false(nvm->in_txn);
    t_assert_image(&s, before);

    /* direct writes land at once and are counted */
    uint32_t bw = nvm->bytes_written, wr = nvm->writes;
    assert_int_equal(nvm_write_direct(nvm, T_USER - 4, d, 4), 0);
    assert_int_equal(nvm->bytes_written - bw, 4);
    assert_int_equal(nvm->writes - wr, 1);
    assert_memory_equal(t_raw_user(&s) + T_USER - 4, d, 4);

    free(d);
    free(before);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_write_amplification(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *d = t_pattern(6, 32);

    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    uint32_t bw = nvm->bytes_written, wr = nvm->writes;
    unsigned long sim_bytes = s.bytes;
    assert_int_equal(nvm_write_atomic(nvm, 1000, d, 32, 0), 0);
    uint32_t cost = nvm->bytes_written - bw;
    assert_true(cost <= 96);  /* <= 3x for an UPDATE BINARY of 32 bytes */
    assert_int_equal(cost, 90); /* body 6+32, commit record 16, apply 32, invalidate 4 */
    assert_int_equal(nvm->writes - wr, 4);
    assert_int_equal(s.bytes - sim_bytes, cost);
    assert_memory_equal(t_raw_user(&s) + 1000, d, 32);

    free(d);
    free(nvm);
    nvm_sim_close(&s);
}

/* The documented layout, checked by hand-made commit records. */
static void test_hand_made_commit_record(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *clean = t_snapshot(&s);
    uint8_t body[6 + 4];
    uint8_t cr[T_CREC_SIZE];
    static const uint32_t addrs[2] = {T_USER - 4, T_USER - 2};

    for (unsigned k = 0; k < 2; k++) {
        uint32_t a = addrs[k];
        nvm_sim_restore(&s, clean);
        body[0] = (uint8_t)a;
        body[1] = (uint8_t)(a >> 8);
        body[2] = (uint8_t)(a >> 16);
        body[3] = (uint8_t)(a >> 24);
        body[4] = 4;
        body[5] = 0;
        memcpy(body + 6, "\xDE\xAD\xBE\xEF", 4);
        cr[0] = 7; cr[1] = 0; cr[2] = 0; cr[3] = 0; /* seq 7 */
        cr[4] = sizeof body; cr[5] = 0;
        cr[6] = 0; cr[7] = 0;
        uint32_t c = card_crc32_update(card_crc32(cr, 8), body, sizeof body);
        cr[8] = (uint8_t)c;
        cr[9] = (uint8_t)(c >> 8);
        cr[10] = (uint8_t)(c >> 16);
        cr[11] = (uint8_t)(c >> 24);
        memcpy(cr + 12, "JRNL", 4);
        memcpy(s.mem + T_BODY_OFF, body, sizeof body);
        memcpy(s.mem + T_CREC_OFF, cr, sizeof cr);
        uint8_t *img = t_snapshot(&s);

        int rc = nvm_mount(nvm, &s.hal);
        if (k == 0) {
            /* in range: replayed, body scrubbed, record invalidated, next seq 8 */
            assert_int_equal(rc, 0);
            assert_memory_equal(t_raw_user(&s) + T_USER - 4, "\xDE\xAD\xBE\xEF", 4);
            assert_memory_equal(s.mem + T_CREC_OFF + 12, "\0\0\0\0", 4);
            for (unsigned i = 0; i < sizeof body; i++)
                assert_int_equal(s.mem[T_BODY_OFF + i], 0);
            assert_int_equal(nvm->seq, 8);
            assert_int_equal(nvm_mount(nvm, &s.hal), 0);
            assert_int_equal(nvm->bytes_written, 0);
        } else {
            /* valid CRC but a record past the user area: corrupt, image untouched */
            assert_int_equal(rc, CARD_E_CORRUPT);
            assert_false(nvm->mounted);
            t_assert_image(&s, img);
        }
        free(img);
    }

    free(clean);
    free(nvm);
    nvm_sim_close(&s);
}

/* A commit record torn at any byte (not just the half the simulator tears at) must not look
 * committed. Nasty case: the previous record's stale bytes remain, the new body starts with the
 * previous body, and a direct write changed that range since; replaying the stale record would
 * give a state that is neither old nor new. */
static void test_commit_record_torn_at_every_byte(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *y = t_pattern(60, 16);
    uint8_t *w = t_pattern(61, 16);
    uint8_t *z = t_pattern(62, 16);
    uint8_t newcr[T_CREC_SIZE];

    assert_int_equal(nvm_write_atomic(nvm, 0, y, 16, 0), 0);
    assert_int_equal(nvm_write_direct(nvm, 0, w, 16), 0);
    uint8_t *pre = t_snapshot(&s);
    uint8_t *old_user = t_alloc(T_USER);
    uint8_t *new_user = t_alloc(T_USER);
    memcpy(old_user, t_raw_user(&s), T_USER);
    memcpy(new_user, old_user, T_USER);
    memcpy(new_user, y, 16);
    memcpy(new_user + 100, z, 16);

    /* run 1: the body is written, the commit record not at all; run 2: the commit record is
     * complete and the cut hits the apply */
    uint8_t *base = NULL;
    for (long run = 1; run <= 2; run++) {
        nvm_sim_restore(&s, pre);
        nvm_sim_power_restore(&s);
        assert_int_equal(nvm_mount(nvm, &s.hal), 0);
        assert_int_equal(nvm_begin(nvm, 0), 0);
        assert_int_equal(nvm_write(nvm, 0, y, 16), 0);
        assert_int_equal(nvm_write(nvm, 100, z, 16), 0);
        nvm_sim_cut_after(&s, run, NVM_SIM_TEAR_NONE);
        assert_int_equal(nvm_commit(nvm), CARD_E_IO);
        nvm_sim_power_restore(&s);
        if (run == 1)
            base = t_snapshot(&s);
        else
            memcpy(newcr, s.mem + T_CREC_OFF, sizeof newcr);
    }
    for (size_t t = 0; t <= T_CREC_SIZE; t++) {
        nvm_sim_restore(&s, base);
        memcpy(s.mem + T_CREC_OFF, newcr, t);
        assert_int_equal(nvm_mount(nvm, &s.hal), 0);
        assert_memory_equal(t_raw_user(&s), t < T_CREC_SIZE ? old_user : new_user, T_USER);
    }

    free(base);
    free(new_user);
    free(old_user);
    free(pre);
    free(z);
    free(w);
    free(y);
    free(nvm);
    nvm_sim_close(&s);
}

/* ---- power cut at every write ---------------------------------------------------------------- */

struct t_op {
    uint32_t addr;
    uint16_t len;
    uint8_t fill;
};

struct t_txn {
    unsigned flags;
    size_t nops;
    struct t_op ops[6];
};

#define T_SECRET_TXN 2u
/* Every transaction's body stays under 320 bytes, the least journal card_config.h allows. */
static const struct t_txn t_script[] = {
    {0, 1, {{0, 300, 1}}},
    {0, 3, {{100, 50, 2}, {120, 10, 3}, {1000, 1, 4}}}, /* the second one coalesces */
    {NVM_TXN_SECRET, 2, {{400, 64, 5}, {410, 16, 6}}},
    {0, 6, {{0, 1, 7}, {299, 2, 8}, {50, 120, 9}, {40, 30, 10}, {1500, 100, 11}, {1790, 10, 12}}},
    {0, 4, {{1000, 48, 13}, {990, 30, 14}, {1010, 100, 15}, {0, 32, 16}}},
};
#define T_NTXN (sizeof t_script / sizeof t_script[0])

/* states[k] = user area after the first k transactions. */
static void t_model(uint8_t *states[T_NTXN + 1])
{
    states[0] = t_alloc(T_USER);
    memset(states[0], 0, T_USER);
    for (size_t k = 0; k < T_NTXN; k++) {
        states[k + 1] = t_alloc(T_USER);
        memcpy(states[k + 1], states[k], T_USER);
        for (size_t i = 0; i < t_script[k].nops; i++) {
            const struct t_op *op = &t_script[k].ops[i];
            for (size_t j = 0; j < op->len; j++)
                states[k + 1][op->addr + j] = t_pat(op->fill, j);
        }
        assert_memory_not_equal(states[k + 1], states[k], T_USER);
    }
}

/* Runs the script; returns the index of the transaction in which a call failed (its code in
 * *rc), or T_NTXN when all completed. */
static size_t t_run_script(struct nvm *nvm, int *rc)
{
    *rc = 0;
    for (size_t k = 0; k < T_NTXN; k++) {
        *rc = nvm_begin(nvm, t_script[k].flags);
        if (*rc != 0)
            return k;
        for (size_t i = 0; i < t_script[k].nops; i++) {
            const struct t_op *op = &t_script[k].ops[i];
            uint8_t *d = t_pattern(op->fill, op->len);
            *rc = nvm_write(nvm, op->addr, d, op->len);
            free(d);
            assert_int_equal(*rc, 0); /* buffering never touches the device */
        }
        *rc = nvm_commit(nvm);
        if (*rc != 0)
            return k;
    }
    return T_NTXN;
}

/* No copy of any 8 consecutive bytes of the secret transaction's data (as written, and as it
 * ends up after merging) outside the user area. */
static void t_assert_no_secret(const struct nvm_sim *s, const uint8_t *after_secret)
{
    const struct t_txn *t = &t_script[T_SECRET_TXN];
    for (size_t i = 0; i < t->nops; i++) {
        const struct t_op *op = &t->ops[i];
        uint8_t *d = t_pattern(op->fill, op->len);
        for (size_t j = 0; j + 8 <= op->len; j++) {
            assert_false(t_contains(s->mem, nvm_user_base(), d + j, 8));
            assert_false(t_contains(s->mem, nvm_user_base(), after_secret + op->addr + j, 8));
        }
        free(d);
    }
}

/* The user area must be states[k] or states[k+1]; returns which count it is. */
static size_t t_old_or_new(const struct nvm_sim *s, uint8_t *states[T_NTXN + 1], size_t k)
{
    if (memcmp(t_raw_user(s), states[k], T_USER) == 0)
        return k;
    assert_true(k < T_NTXN);
    assert_memory_equal(t_raw_user(s), states[k + 1], T_USER);
    return k + 1;
}

static void test_power_cut_at_every_write(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *fresh = t_snapshot(&s);
    uint8_t *cut = t_alloc(s.hal.size);
    uint8_t *states[T_NTXN + 1];
    unsigned long cuts = 0, replay_cuts = 0, saw_old = 0, saw_new = 0;

    t_model(states);
    for (unsigned m = 0; m < 3; m++) {
        long n;
        for (n = 0;; n++) {
            assert_true(n < 1000);
            nvm_sim_restore(&s, fresh);
            nvm_sim_power_restore(&s);
            s.tear_seed = 0x9E3779B9u * (uint32_t)(n + 1) + m;
            assert_int_equal(nvm_mount(nvm, &s.hal), 0);
            nvm_sim_cut_after(&s, n, t_modes[m]);

            int rc;
            size_t k = t_run_script(nvm, &rc);
            if (k == T_NTXN) {
                assert_false(s.dead);
                nvm_sim_cut_after(&s, -1, NVM_SIM_TEAR_NONE);
                assert_memory_equal(t_raw_user(&s), states[T_NTXN], T_USER);
                t_assert_no_secret(&s, states[T_SECRET_TXN + 1]);
                break;
            }
            cuts++;
            assert_int_equal(rc, CARD_E_IO);
            assert_true(s.dead);
            assert_false(nvm->in_txn);
            uint8_t one;
            assert_int_equal(nvm_read(nvm, 0, &one, 1), CARD_E_IO); /* remount required */

            nvm_sim_power_restore(&s);
            nvm_sim_snapshot(&s, cut);
            assert_int_equal(nvm_mount(nvm, &s.hal), 0);
            size_t got = t_old_or_new(&s, states, k);
            if (got == k)
                saw_old++;
            else
                saw_new++;
            if (got > T_SECRET_TXN)
                t_assert_no_secret(&s, states[T_SECRET_TXN + 1]);
            /* a second mount finds nothing left to do */
            uint8_t *after = t_snapshot(&s);
            assert_int_equal(nvm_mount(nvm, &s.hal), 0);
            assert_int_equal(nvm->bytes_written, 0);
            t_assert_image(&s, after);
            free(after);

            /* cut again at every write of the recovery itself, in every tear mode */
            for (unsigned m2 = 0; m2 < 3; m2++) {
                for (long r = 0;; r++) {
                    assert_true(r < 1000);
                    nvm_sim_restore(&s, cut);
                    nvm_sim_power_restore(&s);
                    nvm_sim_cut_after(&s, r, t_modes[m2]);
                    rc = nvm_mount(nvm, &s.hal);
                    if (rc == 0 && !s.dead) {
                        nvm_sim_cut_after(&s, -1, NVM_SIM_TEAR_NONE);
                        assert_memory_equal(t_raw_user(&s), states[got], T_USER);
                        break;
                    }
                    replay_cuts++;
                    assert_int_equal(rc, CARD_E_IO);
                    nvm_sim_power_restore(&s);
                    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
                    assert_memory_equal(t_raw_user(&s), states[got], T_USER);
                    if (got > T_SECRET_TXN)
                        t_assert_no_secret(&s, states[T_SECRET_TXN + 1]);
                }
            }

            /* and the card goes on working */
            uint8_t *d = t_pattern(99, 40);
            uint8_t *r = t_alloc(40);
            assert_int_equal(nvm_write_atomic(nvm, 1900, d, 40, 0), 0);
            assert_int_equal(nvm_read(nvm, 1900, r, 40), 0);
            assert_memory_equal(r, d, 40);
            free(r);
            free(d);
        }
        assert_true(n > 20); /* the script takes more than 20 writes */
    }
    assert_true(cuts > 60);
    assert_true(saw_old > 0 && saw_new > 0);
    assert_true(replay_cuts > 0);

    for (size_t k = 0; k <= T_NTXN; k++)
        free(states[k]);
    free(cut);
    free(fresh);
    free(nvm);
    nvm_sim_close(&s);
}

static void test_secret_scrubbed(void **state)
{
    (void)state;
    struct nvm_sim s;
    struct nvm *nvm = t_formatted(&s);
    uint8_t *key = t_pattern(42, 24);
    uint8_t *pub = t_pattern(43, 24);

    assert_int_equal(nvm_write_atomic(nvm, 64, pub, 24, 0), 0);
    assert_true(t_contains(s.mem, nvm_user_base(), pub, 24)); /* ordinary txns leave a copy */
    assert_int_equal(nvm_write_atomic(nvm, 128, key, 24, NVM_TXN_SECRET), 0);
    assert_false(t_contains(s.mem, nvm_user_base(), key, 24));
    assert_true(t_contains(t_raw_user(&s), T_USER, key, 24));
    for (size_t i = 0; i < sizeof nvm->jbuf; i++)
        assert_int_equal(nvm->jbuf[i], 0);

    free(pub);
    free(key);
    free(nvm);
    nvm_sim_close(&s);
}

/* ---- the simulator ----------------------------------------------------------------------------- */

static void test_sim_tear_modes(void **state)
{
    (void)state;
    struct nvm_sim s;
    uint8_t a[8], b[8], r[8];
    memset(a, 0x11, sizeof a);
    for (unsigned i = 0; i < 8; i++)
        b[i] = (uint8_t)(0x20 + i);

    t_sim_ram(&s, 64);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(s.mem[i], 0xFF);

    /* HALF: one write passes, the next programs its first half only, then all fails */
    nvm_sim_cut_after(&s, 1, NVM_SIM_TEAR_HALF);
    assert_int_equal(s.hal.write(s.hal.ctx, 0, a, 8), 0);
    assert_int_equal(s.hal.write(s.hal.ctx, 8, b, 8), CARD_E_IO);
    assert_true(s.dead);
    assert_int_equal(s.hal.read(s.hal.ctx, 0, r, 8), CARD_E_IO);
    assert_int_equal(s.hal.write(s.hal.ctx, 32, a, 8), CARD_E_IO);
    assert_int_equal(s.hal.sync(s.hal.ctx), CARD_E_IO);
    nvm_sim_power_restore(&s);
    assert_memory_equal(s.mem, a, 8);
    assert_memory_equal(s.mem + 8, b, 4);
    for (unsigned i = 12; i < 64; i++)
        assert_int_equal(s.mem[i], 0xFF);
    assert_int_equal(s.writes, 2);
    assert_int_equal(s.bytes, 12);

    /* NONE at once: nothing programmed */
    nvm_sim_cut_after(&s, 0, NVM_SIM_TEAR_NONE);
    assert_int_equal(s.hal.write(s.hal.ctx, 16, b, 8), CARD_E_IO);
    nvm_sim_power_restore(&s);
    for (unsigned i = 16; i < 24; i++)
        assert_int_equal(s.mem[i], 0xFF);

    /* GARBAGE: first half right, the rest random (deterministic seed) */
    s.tear_seed = 12345;
    nvm_sim_cut_after(&s, 0, NVM_SIM_TEAR_GARBAGE);
    assert_int_equal(s.hal.write(s.hal.ctx, 24, b, 8), CARD_E_IO);
    nvm_sim_power_restore(&s);
    assert_memory_equal(s.mem + 24, b, 4);
    assert_memory_not_equal(s.mem + 28, b + 4, 4);
    assert_true(s.mem[28] != 0xFF || s.mem[29] != 0xFF || s.mem[30] != 0xFF ||
                s.mem[31] != 0xFF);

    /* one byte: HALF programs nothing, GARBAGE one random byte */
    uint8_t before = s.mem[40];
    nvm_sim_cut_after(&s, 0, NVM_SIM_TEAR_HALF);
    assert_int_equal(s.hal.write(s.hal.ctx, 40, b, 1), CARD_E_IO);
    nvm_sim_power_restore(&s);
    assert_int_equal(s.mem[40], before);
    unsigned long bytes = s.bytes;
    nvm_sim_cut_after(&s, 0, NVM_SIM_TEAR_GARBAGE);
    assert_int_equal(s.hal.write(s.hal.ctx, 40, b, 1), CARD_E_IO);
    nvm_sim_power_restore(&s);
    assert_int_equal(s.bytes - bytes, 1);

    /* disarmed: no cut, out-of-range refused */
    nvm_sim_cut_after(&s, -1, NVM_SIM_TEAR_NONE);
    assert_int_equal(s.hal.write(s.hal.ctx, 60, a, 4), 0);
    assert_int_not_equal(s.hal.write(s.hal.ctx, 61, a, 4), 0);
    assert_int_not_equal(s.hal.read(s.hal.ctx, UINT32_MAX, r, 2), 0);
    assert_false(s.dead);

    nvm_sim_close(&s);
}

/* ---- file-backed images -------------------------------------------------------------------- */

static char *t_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Whole file contents (exact size) or NULL when absent; *len set. */
static uint8_t *t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *p = t_alloc((size_t)n);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void test_file_backed(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/icdup_test_nvm.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char *img = t_path(dir, "card.nvm");
    char *shortimg = t_path(dir, "short.nvm");
    char *missing = t_path(dir, "no/such/dir.nvm");
    struct nvm_sim s;
    struct nvm *nvm = t_new_nvm();
    char err[256];
    bool created = false;
    uint32_t size = t_dev_size();
    uint8_t *d = t_pattern(50, 100);
    uint8_t *d2 = t_pattern(51, 100);
    uint8_t *r = t_alloc(100);
    size_t flen = 0;

    /* created, erased, right size */
    assert_int_equal(nvm_sim_open_file(&s, img, size, &created, err, sizeof err), 0);
    assert_true(created);
    uint8_t *file = t_slurp(img, &flen);
    assert_non_null(file);
    assert_int_equal(flen, size);
    for (size_t i = 0; i < flen; i++)
        assert_int_equal(file[i], 0xFF);
    free(file);

    /* format and write; every write reaches the file at once */
    assert_int_equal(nvm_format(nvm, &s.hal), 0);
    assert_int_equal(nvm_write_atomic(nvm, 300, d, 100, 0), 0);
    file = t_slurp(img, &flen);
    assert_memory_equal(file, s.mem, size);
    free(file);
    nvm_sim_close(&s);

    /* reopened: not created, the data persisted */
    assert_int_equal(nvm_sim_open_file(&s, img, size, &created, err, sizeof err), 0);
    assert_false(created);
    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    assert_int_equal(nvm_read(nvm, 300, r, 100), 0);
    assert_memory_equal(r, d, 100);

    /* a cut mid-commit, then the process "dies" without restoring power: the file holds
     * exactly what the writes so far left, and the next open recovers old-or-new */
    nvm_sim_cut_after(&s, 3, NVM_SIM_TEAR_GARBAGE); /* the cut tears the invalidation */
    assert_int_equal(nvm_write_atomic(nvm, 300, d2, 100, 0), CARD_E_IO);
    nvm_sim_close(&s);
    assert_int_equal(nvm_sim_open_file(&s, img, size, &created, err, sizeof err), 0);
    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    assert_int_equal(nvm_read(nvm, 300, r, 100), 0);
    assert_memory_equal(r, d2, 100);
    nvm_sim_cut_after(&s, 0, NVM_SIM_TEAR_HALF); /* the cut tears the journal body */
    assert_int_equal(nvm_write_atomic(nvm, 300, d, 100, 0), CARD_E_IO);
    nvm_sim_close(&s);
    assert_int_equal(nvm_sim_open_file(&s, img, size, &created, err, sizeof err), 0);
    assert_int_equal(nvm_mount(nvm, &s.hal), 0);
    assert_int_equal(nvm_read(nvm, 300, r, 100), 0);
    assert_memory_equal(r, d2, 100);
    nvm_sim_close(&s);

    /* wrong size: refused with a message, the file untouched */
    uint8_t *before = t_slurp(img, &flen);
    err[0] = '\0';
    assert_int_not_equal(nvm_sim_open_file(&s, img, size + 1, &created, err, sizeof err), 0);
    assert_false(created);
    char expect[160];
    snprintf(expect, sizeof expect, "is %lu bytes, expected %lu", (unsigned long)size,
             (unsigned long)size + 1);
    assert_non_null(strstr(err, expect));
    assert_non_null(strstr(err, "refusing to touch it"));
    size_t flen2 = 0;
    uint8_t *after = t_slurp(img, &flen2);
    assert_int_equal(flen2, flen);
    assert_memory_equal(after, before, flen);
    free(after);
    free(before);

    /* a short foreign file: refused and untouched */
    uint8_t *junk = t_pattern(52, 100);
    FILE *f = fopen(shortimg, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, 100, f), 100);
    fclose(f);
    err[0] = '\0';
    assert_int_not_equal(nvm_sim_open_file(&s, shortimg, size, &created, err, sizeof err), 0);
    assert_non_null(strstr(err, "is 100 bytes"));
    after = t_slurp(shortimg, &flen2);
    assert_int_equal(flen2, 100);
    assert_memory_equal(after, junk, 100);
    free(after);
    free(junk);

    /* cannot open at all */
    err[0] = '\0';
    assert_int_not_equal(nvm_sim_open_file(&s, missing, size, &created, err, sizeof err), 0);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, strerror(ENOENT)));

    assert_int_equal(unlink(img), 0);
    assert_int_equal(unlink(shortimg), 0);
    assert_int_equal(rmdir(dir), 0);
    free(r);
    free(d2);
    free(d);
    free(nvm);
    free(missing);
    free(shortimg);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_format_then_mount),
        cmocka_unit_test(test_mount_blank_is_foreign),
        cmocka_unit_test(test_mount_flipped_header_byte),
        cmocka_unit_test(test_mount_wrong_device_size),
        cmocka_unit_test(test_device_too_small),
        cmocka_unit_test(test_torn_format_never_mounts),
        cmocka_unit_test(test_read_your_writes),
        cmocka_unit_test(test_abort_leaves_device_untouched),
        cmocka_unit_test(test_txn_full),
        cmocka_unit_test(test_bad_ranges_and_misuse),
        cmocka_unit_test(test_write_amplification),
        cmocka_unit_test(test_hand_made_commit_record),
        cmocka_unit_test(test_commit_record_torn_at_every_byte),
        cmocka_unit_test(test_power_cut_at_every_write),
        cmocka_unit_test(test_secret_scrubbed),
        cmocka_unit_test(test_sim_tear_modes),
        cmocka_unit_test(test_file_backed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

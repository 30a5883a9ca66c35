/* Key group, key generation, wrapped export/import on two simulated cards, through APDUs:
 * access conditions, the one-export rule and its repeat-to-same-binding exception, tampered
 * blobs, no secret in any response, and a power cut at every NVM write of each key command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "card_err.h"
#include "card_fixture.h"
#include "ec.h"
#include "fs.h"
#include "kek.h"
#include "keys.h"

#define PIN "0020008106313233343536"
#define ADMIN "0020008308 3837363534333231"

/* Every response of the test is kept here, to prove no share or private key ever left. */
static uint8_t g_log[1 << 20];
static size_t g_log_len;

static uint16_t send(struct fx *fx, const uint8_t *apdu, size_t len)
{
    uint16_t sw = fx_raw(fx, apdu, len);
    if (g_log_len + fx->rsp_len <= sizeof g_log) {
        memcpy(g_log + g_log_len, fx->rsp, fx->rsp_len);
        g_log_len += fx->rsp_len;
    }
    return sw;
}

static uint16_t sendh(struct fx *fx, const char *hex)
{
    uint8_t buf[512];
    int n = fx_hex(hex, buf, sizeof buf);
    assert_true(n >= 0);
    return send(fx, buf, (size_t)n);
}

static void share_value(unsigned i, uint8_t out[32])
{
    for (unsigned j = 0; j < 32; j++)
        out[j] = (uint8_t)(0x11 * i + j * 7 + 1);
}

static uint16_t set_share(struct fx *fx, unsigned i, const uint8_t share[32])
{
    uint8_t apdu[5 + 32] = { 0x80, 0xD8, 0x00, (uint8_t)i, 32 };
    memcpy(apdu + 5, share, 32);
    return send(fx, apdu, sizeof apdu);
}

/* A personalized card with the key profile (n shares), PIN verified, all shares set. */
static void open_card(struct fx *fx, unsigned n, uint8_t policy, bool shares)
{
    assert_int_equal(fx_open(fx), 0);
    /* Two cards must differ in serial: mix the address of the fixture into the seed. */
    fx->rng_state ^= (uint32_t)(uintptr_t)fx;
    assert_int_equal(fx_personalize(fx), 0);
    assert_int_equal(fx_key_profile(fx, n, policy), 0);
    assert_int_equal(sendh(fx, PIN), 0x9000);
    for (unsigned i = 1; shares && i <= n; i++) {
        uint8_t s[32];
        share_value(i, s);
        assert_int_equal(set_share(fx, i, s), 0x9000);
    }
}

static int test_rng(void *ctx, unsigned char *out, size_t len)
{
    uint32_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        out[i] = (uint8_t)(*s >> 16);
    }
    return 0;
}

/* The card's PSO DECIPHER answer for a host ephemeral key equals the host's own ECDH with
 * the card's public key: the card holds the private key of that public key. */
static void assert_card_holds_key_of(struct fx *fx, const uint8_t pub[65])
{
    uint32_t seed = 99;
    uint8_t eph[32], eph_pub[65], want[32];
    assert_int_equal(ec_keygen(test_rng, &seed, eph, eph_pub), 0);
    assert_int_equal(ec_ecdh(eph, pub, want), 0);
    uint8_t apdu[5 + 65 + 1] = { 0x00, 0x2A, 0x80, 0x86, 65 };
    memcpy(apdu + 5, eph_pub, 65);
    assert_int_equal(send(fx, apdu, sizeof apdu), 0x9000);
    assert_int_equal(fx_data_len(fx), 32);
    assert_memory_equal(fx->rsp, want, 32);
}

static void read_pub(struct fx *fx, uint8_t pub[65])
{
    assert_int_equal(sendh(fx, "0047810000"), 0x9000);
    assert_int_equal(fx_data_len(fx), 70);
    memcpy(pub, fx->rsp + 5, 65);
}

static void generate(struct fx *fx, uint8_t pub[65])
{
    assert_int_equal(sendh(fx, "0047800000"), 0x9000);
    assert_int_equal(fx_data_len(fx), 70);
    assert_memory_equal(fx->rsp, "\x7F\x49\x43\x86\x41", 5);
    memcpy(pub, fx->rsp + 5, 65);
}

static void binding_key(struct fx *fx, uint8_t p1, uint8_t point[65])
{
    uint8_t apdu[] = { 0x80, 0xE2, p1, 0x00, 0x00 };
    assert_int_equal(send(fx, apdu, sizeof apdu), 0x9000);
    assert_int_equal(fx_data_len(fx), 65);
    memcpy(point, fx->rsp, 65);
}

/* EXPORT WRAPPED; returns the SW, the blob in blob/len. */
static uint16_t export_blob(struct fx *fx, const uint8_t *point, uint8_t *blob, size_t *len)
{
    uint8_t apdu[5 + 65 + 1] = { 0x80, 0xE4, 0x00, 0x00 };
    size_t n = 4;
    if (point) {
        apdu[n++] = 65;
        memcpy(apdu + n, point, 65);
        n += 65;
    }
    apdu[n++] = 0x00;
    uint16_t sw = send(fx, apdu, n);
    *len = fx_data_len(fx);
    memcpy(blob, fx->rsp, *len);
    return sw;
}

static uint16_t import_blob(struct fx *fx, const uint8_t *blob, size_t len)
{
    uint8_t apdu[5 + 256] = { 0x80, 0xE6, 0x00, 0x00, (uint8_t)len };
    memcpy(apdu + 5, blob, len);
    return send(fx, apdu, 5 + len);
}

static void key_state(struct fx *fx, uint8_t out[22])
{
    assert_int_equal(sendh(fx, "00CADF1100"), 0x9000);
    assert_int_equal(fx_data_len(fx), 22);
    memcpy(out, fx->rsp, 22);
}

static void test_key_group_and_kcv(void **state)
{
    (void)state;
    struct fx fx;
    open_card(&fx, 3, 0, false);
    assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
    assert_int_equal(fx_data_len(&fx), 2);
    assert_int_equal(fx.rsp[0], 3);
    assert_int_equal(fx.rsp[1], 0);

    uint8_t shares[3][32];
    for (unsigned i = 0; i < 3; i++)
        share_value(i + 1, shares[i]);
    /* refusals: bad index, zero share, wrong length, no PIN */
    assert_int_equal(set_share(&fx, 0, shares[0]), 0x6A86);
    assert_int_equal(set_share(&fx, 4, shares[0]), 0x6A86);
    static const uint8_t zero[32];
    assert_int_equal(set_share(&fx, 1, zero), 0x6A80);
    assert_int_equal(sendh(&fx, "80D80001 1F 00000000000000000000000000000000000000000000000000000000000001"), 0x6700);
    card_reset(&fx.card);
    assert_int_equal(set_share(&fx, 1, shares[0]), 0x6982);
    assert_int_equal(sendh(&fx, PIN), 0x9000);

    assert_int_equal(set_share(&fx, 2, shares[1]), 0x9000);
    assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
    assert_int_equal(fx.rsp[1], 0x02);
    assert_int_equal(fx_data_len(&fx), 2); /* no KCV before the group is complete */
    assert_int_equal(set_share(&fx, 1, shares[0]), 0x9000);
    assert_int_equal(set_share(&fx, 3, shares[2]), 0x9000);
    assert_int_equal(set_share(&fx, 3, shares[2]), 0x6985); /* set shares stay */

    uint8_t kek[32], kcv[8];
    assert_int_equal(kek_derive((const uint8_t(*)[32])shares, 3, kek), 0);
    assert_int_equal(kek_kcv(kek, kcv), 0);
    assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
    assert_int_equal(fx_data_len(&fx), 10);
    assert_int_equal(fx.rsp[1], 0x07);
    assert_memory_equal(fx.rsp + 2, kcv, 8);
    /* the same KCV without login */
    card_reset(&fx.card);
    assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
    assert_memory_equal(fx.rsp + 2, kcv, 8);
    /* replacing a share takes the admin PIN */
    assert_int_equal(sendh(&fx, ADMIN), 0x9000);
    assert_int_equal(set_share(&fx, 3, shares[0]), 0x9000);
    assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
    assert_memory_not_equal(fx.rsp + 2, kcv, 8);
    fx_close(&fx);
}

static void test_clone_between_cards(void **state)
{
    (void)state;
    static struct fx a, b;
    open_card(&a, 3, 0, true);
    open_card(&b, 3, 0, true);
    uint8_t blob[256], pub[65], point[65], st[22];
    size_t len;
    assert_int_equal(export_blob(&a, NULL, blob, &len), 0x6985); /* no key yet */
    generate(&a, pub);
    read_pub(&a, point);
    assert_memory_equal(point, pub, 65);
    assert_card_holds_key_of(&a, pub);

    binding_key(&b, 0x00, point);
    uint8_t again[65];
    binding_key(&b, 0x00, again);
    assert_memory_equal(again, point, 65); /* P1 00 keeps the pending binding key */
    assert_int_equal(export_blob(&a, point, blob, &len), 0x9000);
    assert_int_equal(len, 151);
    assert_int_equal(import_blob(&b, blob, len), 0x9000);
    assert_card_holds_key_of(&b, pub);

    /* provenance */
    key_state(&b, st);
    uint8_t serial_a[8];
    assert_int_equal(sendh(&a, "00CADF0100"), 0x9000);
    memcpy(serial_a, a.rsp, 8);
    assert_int_equal(st[0], 1);
    assert_int_equal(st[3], KEYS_ORIGIN_IMPORTED);
    assert_memory_equal(st + 4, serial_a, 8);
    key_state(&a, st);
    assert_int_equal(st[3], KEYS_ORIGIN_GENERATED);
    assert_int_equal(st[2] & KEYS_FLAG_BACKUP, KEYS_FLAG_BACKUP);
    assert_int_equal(st[21], 1);

    /* the blob opened once: its binding key is gone */
    assert_int_equal(sendh(&b, ADMIN), 0x9000);
    assert_int_equal(import_blob(&b, blob, len), 0x6985);

    /* one export: another binding or an unbound export is refused; the same binding repeats */
    uint8_t other[65];
    binding_key(&b, 0x01, other);
    assert_int_equal(export_blob(&a, other, blob, &len), 0x6985);
    assert_int_equal(export_blob(&a, NULL, blob, &len), 0x6985);
    assert_int_equal(export_blob(&a, point, blob, &len), 0x9000);
    key_state(&a, st);
    assert_int_equal(st[21], 2);

    /* lock: never again */
    assert_int_equal(sendh(&a, "80E80000"), 0x9000);
    assert_int_equal(export_blob(&a, point, blob, &len), 0x6985);
    key_state(&a, st);
    assert_int_equal(st[2] & KEYS_FLAG_LOCKED, KEYS_FLAG_LOCKED);
    fx_close(&a);
    fx_close(&b);
}

static void test_reexport_policy_and_unbound(void **state)
{
    (void)state;
    static struct fx a, b;
    open_card(&a, 1, KEYS_POLICY_REEXPORT, true);
    open_card(&b, 1, 0, true);
    uint8_t pub[65], blob[256];
    size_t len;
    generate(&a, pub);
    assert_int_equal(export_blob(&a, NULL, blob, &len), 0x9000);
    assert_int_equal(len, 86);
    assert_int_equal(export_blob(&a, NULL, blob, &len), 0x9000); /* policy allows a second */
    assert_int_equal(import_blob(&b, blob, len), 0x9000);
    assert_card_holds_key_of(&b, pub);
    /* importing over a key needs the admin PIN */
    assert_int_equal(import_blob(&b, blob, len), 0x6985);
    assert_int_equal(sendh(&b, ADMIN), 0x9000);
    assert_int_equal(import_blob(&b, blob, len), 0x9000);
    fx_close(&a);
    fx_close(&b);
}

static void test_wrong_group_refused_before_anything(void **state)
{
    (void)state;
    static struct fx a, b;
    open_card(&a, 3, 0, true);
    open_card(&b, 3, 0, false);
    uint8_t s[32];
    share_value(1, s);
    assert_int_equal(set_share(&b, 1, s), 0x9000);
    share_value(2, s);
    assert_int_equal(set_share(&b, 2, s), 0x9000);
    share_value(3, s);
    s[5] ^= 1; /* officer 3 typed a wrong share on b */
    assert_int_equal(set_share(&b, 3, s), 0x9000);
    assert_int_equal(sendh(&a, "00CADF1000"), 0x9000);
    uint8_t kcv_a[8];
    memcpy(kcv_a, a.rsp + 2, 8);
    assert_int_equal(sendh(&b, "00CADF1000"), 0x9000);
    assert_memory_not_equal(b.rsp + 2, kcv_a, 8);

    /* even if a terminal ignored the KCVs, the import is refused and b is unchanged */
    uint8_t pub[65], point[65], blob[256];
    size_t len;
    generate(&a, pub);
    binding_key(&b, 0, point);
    assert_int_equal(export_blob(&a, point, blob, &len), 0x9000);
    uint8_t *before = malloc(CARD_NVM_DEFAULT_SIZE), *after = malloc(CARD_NVM_DEFAULT_SIZE);
    nvm_sim_snapshot(&b.nvm, before);
    assert_int_equal(import_blob(&b, blob, len), 0x6985);
    nvm_sim_snapshot(&b.nvm, after);
    assert_memory_equal(before, after, CARD_NVM_DEFAULT_SIZE);
    free(before);
    free(after);
    fx_close(&a);
    fx_close(&b);
}

static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    static struct fx a, b;
    open_card(&a, 3, 0, true);
    open_card(&b, 3, 0, true);
    uint8_t pub[65], point[65], blob[256];
    size_t len;
    generate(&a, pub);
    binding_key(&b, 0, point);
    assert_int_equal(export_blob(&a, point, blob, &len), 0x9000);
    uint8_t *before = malloc(CARD_NVM_DEFAULT_SIZE), *after = malloc(CARD_NVM_DEFAULT_SIZE);
    nvm_sim_snapshot(&b.nvm, before);
    for (size_t bit = 0; bit < len * 8; bit++) {
        blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint16_t sw = import_blob(&b, blob, len);
        blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (sw != 0x6A80 && sw != 0x6985)
            fail_msg("bit %zu flipped: SW %04X", bit, sw);
    }
    /* truncated and extended */
    assert_int_equal(import_blob(&b, blob, len - 1), 0x6A80);
    blob[len] = 0;
    assert_int_equal(import_blob(&b, blob, len + 1), 0x6A80);
    nvm_sim_snapshot(&b.nvm, after);
    assert_memory_equal(before, after, CARD_NVM_DEFAULT_SIZE);
    assert_int_equal(import_blob(&b, blob, len), 0x9000); /* the untouched blob still opens */
    assert_card_holds_key_of(&b, pub);
    free(before);
    free(after);
    fx_close(&a);
    fx_close(&b);
}

static void test_no_secret_in_any_response(void **state)
{
    (void)state;
    g_log_len = 0;
    static struct fx a, b;
    open_card(&a, 8, 0, true);
    open_card(&b, 8, 0, true);
    uint8_t pub[65], point[65], blob[256];
    size_t len;
    generate(&a, pub);
    binding_key(&b, 0, point);
    assert_int_equal(export_blob(&a, point, blob, &len), 0x9000);
    assert_int_equal(import_blob(&b, blob, len), 0x9000);
    assert_card_holds_key_of(&b, pub);
    assert_int_equal(sendh(&a, "00CADF1000"), 0x9000);
    assert_int_equal(sendh(&a, "00CADF1100"), 0x9000);
    /* read the private scalar straight from a's NVM through the key store */
    struct keys_files kf;
    uint8_t kp[97];
    assert_int_equal(keys_locate(&a.card.nvm, &kf), 0);
    assert_int_equal(fs_read(&a.card.nvm, &kf.priv, 0, kp, sizeof kp), 0);
    uint8_t secrets[9][32];
    memcpy(secrets[0], kp, 32);
    for (unsigned i = 1; i <= 8; i++)
        share_value(i, secrets[i]);
    for (unsigned s = 0; s < 9; s++)
        for (size_t w = 0; w + 8 <= 32; w += 8) /* any 8-byte window of a secret */
            for (size_t p = 0; p + 8 <= g_log_len; p++)
                if (memcmp(g_log + p, secrets[s] + w, 8) == 0)
                    fail_msg("secret %u appears in a response", s);
    fx_close(&a);
    fx_close(&b);
}

/* ---- power cuts -------------------------------------------------------------------------- */

/* Runs step on fx with a cut after n writes; returns true when the step completed uncut. */
typedef uint16_t (*step_fn)(struct fx *fx, void *arg);

static bool run_cut(struct fx *fx, step_fn step, void *arg, long n, enum nvm_sim_tear tear)
{
    nvm_sim_cut_after(&fx->nvm, n, tear);
    uint16_t sw = step(fx, arg);
    bool cut = fx->nvm.dead;
    nvm_sim_cut_after(&fx->nvm, -1, NVM_SIM_TEAR_NONE);
    if (cut)
        assert_int_equal(sw, 0x6581);
    else
        assert_int_equal(sw, 0x9000);
    assert_int_equal(fx_reboot(fx), 0); /* never a corrupt image */
    assert_int_equal(sendh(fx, PIN), 0x9000);
    return !cut;
}

static uint16_t step_share(struct fx *fx, void *arg)
{
    (void)arg;
    uint8_t s[32];
    share_value(2, s);
    return set_share(fx, 2, s);
}

static uint16_t step_generate(struct fx *fx, void *arg)
{
    (void)arg;
    return sendh(fx, "0047800000");
}

static void test_cut_share_and_generate(void **state)
{
    (void)state;
    static struct fx fx;
    static const enum nvm_sim_tear tears[] = { NVM_SIM_TEAR_NONE, NVM_SIM_TEAR_HALF,
                                               NVM_SIM_TEAR_GARBAGE };
    open_card(&fx, 2, 0, false);
    uint8_t s[32];
    share_value(1, s);
    assert_int_equal(set_share(&fx, 1, s), 0x9000);
    uint8_t *start = malloc(CARD_NVM_DEFAULT_SIZE);
    nvm_sim_snapshot(&fx.nvm, start);
    for (unsigned t = 0; t < 3; t++) {
        for (long n = 0;; n++) {
            nvm_sim_restore(&fx.nvm, start);
            assert_int_equal(fx_reboot(&fx), 0);
            assert_int_equal(sendh(&fx, PIN), 0x9000);
            bool done = run_cut(&fx, step_share, NULL, n, tears[t]);
            assert_int_equal(sendh(&fx, "00CADF1000"), 0x9000);
            assert_true(fx.rsp[1] == 0x01 || fx.rsp[1] == 0x03); /* old or new, nothing else */
            if (fx.rsp[1] == 0x03)
                assert_int_equal(fx_data_len(&fx), 10);
            if (done)
                break;
        }
    }
    /* generation: afterwards either no key, or a whole key pair the card can use */
    nvm_sim_restore(&fx.nvm, start);
    assert_int_equal(fx_reboot(&fx), 0);
    assert_int_equal(sendh(&fx, PIN), 0x9000);
    nvm_sim_snapshot(&fx.nvm, start);
    for (unsigned t = 0; t < 3; t++) {
        for (long n = 0;; n++) {
            nvm_sim_restore(&fx.nvm, start);
            assert_int_equal(fx_reboot(&fx), 0);
            assert_int_equal(sendh(&fx, PIN), 0x9000);
            bool done = run_cut(&fx, step_generate, NULL, n, tears[t]);
            uint8_t st[22];
            key_state(&fx, st);
            if (st[0]) {
                assert_int_equal(st[3], KEYS_ORIGIN_GENERATED);
                uint8_t pub[65];
                read_pub(&fx, pub);
                assert_card_holds_key_of(&fx, pub);
            } else {
                assert_int_equal(st[3], KEYS_ORIGIN_NONE);
                assert_int_equal(sendh(&fx, "0047810000"), 0x6A88);
            }
            if (done)
                break;
        }
    }
    free(start);
    fx_close(&fx);
}

struct xfer {
    uint8_t point[65];
    uint8_t blob[256];
    size_t len;
};

static uint16_t step_export(struct fx *fx, void *arg)
{
    struct xfer *x = arg;
    return export_blob(fx, x->point, x->blob, &x->len);
}

static uint16_t step_import(struct fx *fx, void *arg)
{
    struct xfer *x = arg;
    return import_blob(fx, x->blob, x->len);
}

static void test_cut_export_and_import(void **state)
{
    (void)state;
    static struct fx a, b;
    static const enum nvm_sim_tear tears[] = { NVM_SIM_TEAR_NONE, NVM_SIM_TEAR_HALF,
                                               NVM_SIM_TEAR_GARBAGE };
    open_card(&a, 3, 0, true);
    open_card(&b, 3, 0, true);
    uint8_t pub[65];
    generate(&a, pub);
    struct xfer x;
    binding_key(&b, 0, x.point);
    uint8_t *a0 = malloc(CARD_NVM_DEFAULT_SIZE), *b0 = malloc(CARD_NVM_DEFAULT_SIZE);
    nvm_sim_snapshot(&a.nvm, a0);
    nvm_sim_snapshot(&b.nvm, b0);
    for (unsigned t = 0; t < 3; t++) {
        for (long n = 0;; n++) {
            /* export cut at write n: either nothing happened, or the flag is set and the
             * documented recovery (export again to the same binding) gives a working blob */
            nvm_sim_restore(&a.nvm, a0);
            assert_int_equal(fx_reboot(&a), 0);
            assert_int_equal(sendh(&a, PIN), 0x9000);
            bool done = run_cut(&a, step_export, &x, n, tears[t]);
            uint8_t st[22];
            key_state(&a, st);
            assert_true(st[21] == 0 || st[21] == 1);
            assert_int_equal(!!(st[2] & KEYS_FLAG_BACKUP), st[21]);
            if (!done)
                assert_int_equal(step_export(&a, &x), 0x9000);
            if (done)
                break;
        }
    }
    /* the blob x now holds opens on b; cut the import at every write */
    for (unsigned t = 0; t < 3; t++) {
        for (long n = 0;; n++) {
            nvm_sim_restore(&b.nvm, b0);
            assert_int_equal(fx_reboot(&b), 0);
            assert_int_equal(sendh(&b, PIN), 0x9000);
            bool done = run_cut(&b, step_import, &x, n, tears[t]);
            uint8_t st[22];
            key_state(&b, st);
            if (!st[0]) {
                /* old state: the binding key still waits, so the same blob imports now */
                assert_int_equal(st[3], KEYS_ORIGIN_NONE);
                assert_int_equal(step_import(&b, &x), 0x9000);
            } else {
                assert_int_equal(st[3], KEYS_ORIGIN_IMPORTED);
            }
            assert_card_holds_key_of(&b, pub);
            if (done)
                break;
        }
    }
    free(a0);
    free(b0);
    fx_close(&a);
    fx_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_group_and_kcv),
        cmocka_unit_test(test_clone_between_cards),
        cmocka_unit_test(test_reexport_policy_and_unbound),
        cmocka_unit_test(test_wrong_group_refused_before_anything),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_no_secret_in_any_response),
        cmocka_unit_test(test_cut_share_and_generate),
        cmocka_unit_test(test_cut_export_and_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

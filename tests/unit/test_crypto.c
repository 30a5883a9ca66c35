/* Unit tests of the key-group crypto: KEK/KCV (common/kek.c), the wrapped blob v1
 * (common/blob.c), the P-256 helpers (common/ec.c) and the card's DRBG (card/core/crypto.c).
 * Known answers come from tests/vectors/{kek,blob}.txt, written by tests/vectors/gen_vectors.py,
 * an independent Python implementation of docs/keys.md. Run from the repo root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "card_err.h"
#include "crypto.h"
#include "ec.h"
#include "hal_rng.h"
#include "kek.h"

#define T_KEK_FILE "tests/vectors/kek.txt"
#define T_BLOB_FILE "tests/vectors/blob.txt"

/* ---- helpers -------------------------------------------------------------------------------- */

static uint8_t *t_alloc(size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    return p;
}

/* An exact-size heap copy, so that ASan sees any read past the end. */
static uint8_t *t_dup(const uint8_t *src, size_t n)
{
    uint8_t *p = t_alloc(n);
    if (n > 0)
        memcpy(p, src, n);
    return p;
}

static char *t_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run the tests from the repo root)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int t_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Value of `name = hex` in a vector file, as an exact-size heap buffer. */
static uint8_t *t_vec(const char *path, const char *name, size_t *len)
{
    char *text = t_read_text(path);
    size_t nlen = strlen(name);
    uint8_t *out = NULL;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] != '#' && strncmp(line, name, nlen) == 0 &&
            strncmp(line + nlen, " = ", 3) == 0) {
            const char *hex = line + nlen + 3;
            size_t hn = strcspn(hex, "\r");
            assert_int_equal(hn % 2, 0);
            out = t_alloc(hn / 2);
            for (size_t i = 0; i < hn / 2; i++) {
                int hi = t_hex_digit(hex[2 * i]), lo = t_hex_digit(hex[2 * i + 1]);
                assert_true(hi >= 0 && lo >= 0);
                out[i] = (uint8_t)(hi << 4 | lo);
            }
            *len = hn / 2;
            break;
        }
        line = next;
    }
    free(text);
    if (out == NULL)
        fail_msg("vector %s not found in %s", name, path);
    return out;
}

/* Same, and checks the length. */
static uint8_t *t_vecn(const char *path, const char *name, size_t want)
{
    size_t len = 0;
    uint8_t *v = t_vec(path, name, &len);
    assert_int_equal(len, want);
    return v;
}

static bool t_all(const uint8_t *p, uint8_t b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != b)
            return false;
    return true;
}

/* Deterministic, well-mixed test data: byte i of stream `seed`. */
static uint8_t t_pat(unsigned seed, size_t i)
{
    uint32_t x = (uint32_t)seed * 0x9E3779B1u + (uint32_t)i * 0x85EBCA77u + 0x165667B1u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    x *= 0x297A2D39u;
    x ^= x >> 15;
    return (uint8_t)x;
}

/* Fake platform random source: a deterministic stream, optionally failing. */
struct t_hal {
    unsigned seed;
    size_t pos;
    unsigned calls;
    bool fail;
};

static int t_hal_fill(void *ctx, uint8_t *buf, size_t len)
{
    struct t_hal *t = ctx;
    t->calls++;
    if (t->fail)
        return CARD_E_RNG;
    for (size_t i = 0; i < len; i++)
        buf[i] = t_pat(t->seed, t->pos++);
    return 0;
}

static void t_rng_open(struct crypto_rng *r, struct t_hal *th, struct hal_rng *hal, unsigned seed)
{
    memset(th, 0, sizeof *th);
    th->seed = seed;
    hal->fill = t_hal_fill;
    hal->ctx = th;
    assert_int_equal(crypto_rng_init(r, hal), CARD_OK);
}

static int t_failing_f_rng(void *p, unsigned char *out, size_t len)
{
    (void)p;
    (void)out;
    (void)len;
    return -1;
}

/* The blob vectors, loaded once per test. */
struct t_bv {
    uint8_t *kek, *kcv, *scalar, *serial, *un_count, *un_nonce, *un_blob;
    uint8_t *b_count, *b_nonce, *eph_priv, *eph_pub, *dst_priv, *dst_pub, *b_z, *b_blob;
};

static void t_bv_load(struct t_bv *v)
{
    v->kek = t_vecn(T_BLOB_FILE, "kek", 32);
    v->kcv = t_vecn(T_BLOB_FILE, "kcv", 8);
    v->scalar = t_vecn(T_BLOB_FILE, "scalar", 32);
    v->serial = t_vecn(T_BLOB_FILE, "src_serial", 8);
    v->un_count = t_vecn(T_BLOB_FILE, "unbound_export_count", 2);
    v->un_nonce = t_vecn(T_BLOB_FILE, "unbound_nonce", 12);
    v->un_blob = t_vecn(T_BLOB_FILE, "unbound_blob", BLOB_LEN_UNBOUND);
    v->b_count = t_vecn(T_BLOB_FILE, "bound_export_count", 2);
    v->b_nonce = t_vecn(T_BLOB_FILE, "bound_nonce", 12);
    v->eph_priv = t_vecn(T_BLOB_FILE, "eph_priv", 32);
    v->eph_pub = t_vecn(T_BLOB_FILE, "eph_pub", 65);
    v->dst_priv = t_vecn(T_BLOB_FILE, "dst_priv", 32);
    v->dst_pub = t_vecn(T_BLOB_FILE, "dst_pub", 65);
    v->b_z = t_vecn(T_BLOB_FILE, "bound_z", 32);
    v->b_blob = t_vecn(T_BLOB_FILE, "bound_blob", BLOB_LEN_BOUND);
}

static void t_bv_free(struct t_bv *v)
{
    uint8_t **f[] = { &v->kek, &v->kcv, &v->scalar, &v->serial, &v->un_count, &v->un_nonce,
                      &v->un_blob, &v->b_count, &v->b_nonce, &v->eph_priv, &v->eph_pub,
                      &v->dst_priv, &v->dst_pub, &v->b_z, &v->b_blob };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
}

/* The header of the vector blob (bound or not), as the card's export would fill it. */
static void t_bv_header(const struct t_bv *v, bool bound, struct blob_header *h)
{
    memset(h, 0, sizeof *h);
    h->version = BLOB_VERSION;
    h->key_type = BLOB_KEY_TYPE_EC_P256;
    h->key_ref = BLOB_KEY_REF;
    h->attrs = bound ? BLOB_ATTR_BOUND : 0;
    h->bound = bound;
    memcpy(h->kcv, v->kcv, 8);
    memcpy(h->src_serial, v->serial, 8);
    const uint8_t *c = bound ? v->b_count : v->un_count;
    h->export_count = (uint16_t)(c[0] << 8 | c[1]);
    memcpy(h->nonce, bound ? v->b_nonce : v->un_nonce, 12);
}

/* ---- KEK and KCV ---------------------------------------------------------------------------- */

static void test_kek_vectors(void **state)
{
    (void)state;
    static const char *const groups[] = { "seq1", "seq3", "seq8", "rnd2", "rnd8" };
    static const unsigned want_n[] = { 1, 3, 8, 2, 8 };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        char name[32];
        size_t slen = 0;
        snprintf(name, sizeof name, "%s_shares", groups[g]);
        uint8_t *shares = t_vec(T_KEK_FILE, name, &slen);
        assert_int_equal(slen, want_n[g] * 32u);
        snprintf(name, sizeof name, "%s_kek", groups[g]);
        uint8_t *want_kek = t_vecn(T_KEK_FILE, name, 32);
        snprintf(name, sizeof name, "%s_kcv", groups[g]);
        uint8_t *want_kcv = t_vecn(T_KEK_FILE, name, 8);

        uint8_t *kek = t_alloc(32), *kcv = t_alloc(8);
        assert_int_equal(kek_derive((const uint8_t(*)[32])shares, (unsigned)(slen / 32), kek),
                         CARD_OK);
        assert_memory_equal(kek, want_kek, 32);
        assert_int_equal(kek_kcv(kek, kcv), CARD_OK);
        assert_memory_equal(kcv, want_kcv, 8);
        free(kek);
        free(kcv);
        free(shares);
        free(want_kek);
        free(want_kcv);
    }
}

static void test_kek_bad_n(void **state)
{
    (void)state;
    size_t slen = 0;
    uint8_t *shares = t_vec(T_KEK_FILE, "seq8_shares", &slen);
    uint8_t kek[32];
    static const unsigned bad[] = { 0, 9, 100, 0xFFFFFFFFu };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(kek, 0xA5, sizeof kek);
        assert_int_equal(kek_derive((const uint8_t(*)[32])shares, bad[i], kek), CARD_E_INTERNAL);
        assert_true(t_all(kek, 0xA5, sizeof kek));
    }
    free(shares);
}

/* Every bit of every share, the order of the shares and N all change the KEK. */
static void test_kek_every_input_matters(void **state)
{
    (void)state;
    size_t slen = 0;
    uint8_t *shares = t_vec(T_KEK_FILE, "rnd8_shares", &slen);
    uint8_t *want = t_vecn(T_KEK_FILE, "rnd8_kek", 32);
    uint8_t kek[32];
    for (size_t bit = 0; bit < slen * 8; bit += 7) {
        shares[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(kek_derive((const uint8_t(*)[32])shares, 8, kek), CARD_OK);
        assert_memory_not_equal(kek, want, 32);
        shares[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* swap shares 1 and 2 */
    uint8_t tmp[32];
    memcpy(tmp, shares, 32);
    memcpy(shares, shares + 32, 32);
    memcpy(shares + 32, tmp, 32);
    assert_int_equal(kek_derive((const uint8_t(*)[32])shares, 8, kek), CARD_OK);
    assert_memory_not_equal(kek, want, 32);
    /* N - 1 shares give another KEK */
    memcpy(shares + 32, shares, 32);
    memcpy(shares, tmp, 32);
    assert_int_equal(kek_derive((const uint8_t(*)[32])shares, 7, kek), CARD_OK);
    assert_memory_not_equal(kek, want, 32);
    assert_int_equal(kek_derive((const uint8_t(*)[32])shares, 8, kek), CARD_OK);
    assert_memory_equal(kek, want, 32);
    free(shares);
    free(want);
}

/* ---- EC ------------------------------------------------------------------------------------- */

static const uint8_t t_p256_gx[32] = {
    0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4, 0x40, 0xF2,
    0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96,
};
static const uint8_t t_p256_p[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};
static const uint8_t t_p256_n[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

static void test_ec_vectors(void **state)
{
    (void)state;
    uint8_t *a_priv = t_vecn(T_BLOB_FILE, "ecdh_a_priv", 32);
    uint8_t *a_pub = t_vecn(T_BLOB_FILE, "ecdh_a_pub", 65);
    uint8_t *b_priv = t_vecn(T_BLOB_FILE, "ecdh_b_priv", 32); /* starts with a zero byte */
    uint8_t *b_pub = t_vecn(T_BLOB_FILE, "ecdh_b_pub", 65);
    uint8_t *x = t_vecn(T_BLOB_FILE, "ecdh_x", 32);
    struct t_bv v;
    t_bv_load(&v);
    assert_int_equal(b_priv[0], 0);

    uint8_t *pub = t_alloc(65), *out = t_alloc(32);
    assert_int_equal(ec_public_from_private(a_priv, pub), CARD_OK);
    assert_memory_equal(pub, a_pub, 65);
    assert_int_equal(ec_public_from_private(b_priv, pub), CARD_OK);
    assert_memory_equal(pub, b_pub, 65);
    assert_int_equal(ec_public_from_private(v.eph_priv, pub), CARD_OK);
    assert_memory_equal(pub, v.eph_pub, 65);
    assert_int_equal(ec_public_from_private(v.dst_priv, pub), CARD_OK);
    assert_memory_equal(pub, v.dst_pub, 65);

    assert_int_equal(ec_ecdh(a_priv, b_pub, out), CARD_OK);
    assert_memory_equal(out, x, 32);
    assert_int_equal(ec_ecdh(b_priv, a_pub, out), CARD_OK);
    assert_memory_equal(out, x, 32);
    assert_int_equal(ec_ecdh(v.eph_priv, v.dst_pub, out), CARD_OK);
    assert_memory_equal(out, v.b_z, 32);
    assert_int_equal(ec_ecdh(v.dst_priv, v.eph_pub, out), CARD_OK);
    assert_memory_equal(out, v.b_z, 32);

    assert_int_equal(ec_check_point(a_pub), CARD_OK);
    assert_int_equal(ec_check_point(b_pub), CARD_OK);
    assert_int_equal(ec_check_point(v.eph_pub), CARD_OK);
    assert_int_equal(ec_check_point(v.dst_pub), CARD_OK);

    free(pub);
    free(out);
    free(a_priv);
    free(a_pub);
    free(b_priv);
    free(b_pub);
    free(x);
    t_bv_free(&v);
}

/* Scalars 1 and n-1 give G and -G; 0, n, n+1 and 2^256-1 are rejected. */
static void test_ec_private_range(void **state)
{
    (void)state;
    uint8_t *priv = t_alloc(32), *pub = t_alloc(65), *out = t_alloc(32);
    uint8_t *peer = t_vecn(T_BLOB_FILE, "ecdh_a_pub", 65);

    memset(priv, 0, 32);
    priv[31] = 1;
    assert_int_equal(ec_public_from_private(priv, pub), CARD_OK);
    assert_int_equal(pub[0], 0x04);
    assert_memory_equal(pub + 1, t_p256_gx, 32);
    uint8_t g[65];
    memcpy(g, pub, 65);
    /* 1 * peer = peer */
    assert_int_equal(ec_ecdh(priv, peer, out), CARD_OK);
    assert_memory_equal(out, peer + 1, 32);

    memcpy(priv, t_p256_n, 32);
    priv[31]--; /* n - 1 */
    assert_int_equal(ec_public_from_private(priv, pub), CARD_OK);
    assert_memory_equal(pub + 1, t_p256_gx, 32);
    assert_memory_not_equal(pub + 33, g + 33, 32); /* y of -G = p - y of G */
    assert_int_equal(ec_check_point(pub), CARD_OK);

    uint8_t bad[4][32];
    memset(bad[0], 0, 32);
    memcpy(bad[1], t_p256_n, 32);
    memcpy(bad[2], t_p256_n, 32);
    bad[2][31]++;
    memset(bad[3], 0xFF, 32);
    for (size_t i = 0; i < 4; i++) {
        memcpy(priv, bad[i], 32);
        memset(pub, 0xA5, 65);
        memset(out, 0xA5, 32);
        assert_int_equal(ec_public_from_private(priv, pub), CARD_E_WRONG_DATA);
        assert_true(t_all(pub, 0xA5, 65));
        assert_int_equal(ec_ecdh(priv, peer, out), CARD_E_WRONG_DATA);
        assert_true(t_all(out, 0xA5, 32));
    }
    free(priv);
    free(pub);
    free(out);
    free(peer);
}

static void test_ec_invalid_points(void **state)
{
    (void)state;
    uint8_t *good = t_vecn(T_BLOB_FILE, "ecdh_b_pub", 65);
    uint8_t *priv = t_vecn(T_BLOB_FILE, "ecdh_a_priv", 32);
    enum { NBAD = 12 };
    uint8_t bad[NBAD][65];
    memset(bad[0], 0, 65);                /* all zero */
    memset(bad[1], 0, 65);                /* 04 || 0 || 0 */
    bad[1][0] = 0x04;
    memcpy(bad[2], good, 65);             /* compressed prefixes on a valid X, Y */
    bad[2][0] = 0x02;
    memcpy(bad[3], good, 65);
    bad[3][0] = 0x03;
    memcpy(bad[4], good, 65);             /* hybrid prefixes */
    bad[4][0] = 0x06;
    memcpy(bad[5], good, 65);
    bad[5][0] = 0x07;
    memcpy(bad[6], good, 65);             /* off the curve: Y changed */
    bad[6][64] ^= 0x01;
    memcpy(bad[7], good, 65);             /* off the curve: X changed */
    bad[7][1] ^= 0x80;
    memcpy(bad[8], good, 65);             /* X = p */
    memcpy(bad[8] + 1, t_p256_p, 32);
    memcpy(bad[9], good, 65);             /* Y = p */
    memcpy(bad[9] + 33, t_p256_p, 32);
    memset(bad[10], 0xFF, 65);            /* 04 || FF..FF || FF..FF */
    bad[10][0] = 0x04;
    memset(bad[11], 0, 65);               /* the point at infinity's one-byte encoding, padded */
    bad[11][0] = 0x00;
    bad[11][1] = 0x04;

    uint8_t *out = t_alloc(32);
    for (size_t i = 0; i < NBAD; i++) {
        uint8_t *pt = t_dup(bad[i], 65);
        assert_int_equal(ec_check_point(pt), CARD_E_WRONG_DATA);
        memset(out, 0x5A, 32);
        assert_int_equal(ec_ecdh(priv, pt, out), CARD_E_WRONG_DATA);
        assert_true(t_all(out, 0x5A, 32));
        free(pt);
    }
    /* every single-bit change of a valid point makes it invalid */
    uint8_t *pt = t_dup(good, 65);
    for (size_t bit = 0; bit < 65 * 8; bit++) {
        pt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(ec_check_point(pt), CARD_E_WRONG_DATA);
        pt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(ec_check_point(pt), CARD_OK);
    free(pt);
    free(out);
    free(good);
    free(priv);
}

static void test_ec_keygen_roundtrip(void **state)
{
    (void)state;
    struct t_hal th;
    struct hal_rng hal;
    struct crypto_rng rng;
    t_rng_open(&rng, &th, &hal, 1);
    enum { NKEYS = 6 };
    uint8_t *priv[NKEYS], *pub[NKEYS];
    uint8_t *chk = t_alloc(65), *x1 = t_alloc(32), *x2 = t_alloc(32);
    for (size_t i = 0; i < NKEYS; i++) {
        priv[i] = t_alloc(32);
        pub[i] = t_alloc(65);
        assert_int_equal(ec_keygen(crypto_rng_fill, &rng, priv[i], pub[i]), CARD_OK);
        assert_int_equal(ec_check_point(pub[i]), CARD_OK);
        assert_int_equal(ec_public_from_private(priv[i], chk), CARD_OK);
        assert_memory_equal(chk, pub[i], 65);
        for (size_t j = 0; j < i; j++)
            assert_memory_not_equal(priv[i], priv[j], 32);
    }
    for (size_t i = 0; i + 1 < NKEYS; i++) {
        assert_int_equal(ec_ecdh(priv[i], pub[i + 1], x1), CARD_OK);
        assert_int_equal(ec_ecdh(priv[i + 1], pub[i], x2), CARD_OK);
        assert_memory_equal(x1, x2, 32);
    }
    crypto_rng_free(&rng);

    /* the same seed gives the same key (the DRBG is deterministic over the HAL stream) */
    t_rng_open(&rng, &th, &hal, 1);
    assert_int_equal(ec_keygen(crypto_rng_fill, &rng, x1, chk), CARD_OK);
    assert_memory_equal(x1, priv[0], 32);
    assert_memory_equal(chk, pub[0], 65);
    crypto_rng_free(&rng);

    /* a failing generator: CARD_E_RNG and nothing left in the outputs */
    memset(x1, 0xA5, 32);
    memset(chk, 0xA5, 65);
    assert_int_equal(ec_keygen(t_failing_f_rng, NULL, x1, chk), CARD_E_RNG);
    assert_true(t_all(x1, 0, 32));
    assert_true(t_all(chk, 0, 65));
    /* an unseeded DRBG is a failing generator too */
    struct hal_rng bad_hal = { t_hal_fill, &th };
    th.fail = true;
    assert_int_equal(crypto_rng_init(&rng, &bad_hal), CARD_E_RNG);
    assert_int_equal(ec_keygen(crypto_rng_fill, &rng, x1, chk), CARD_E_RNG);
    crypto_rng_free(&rng);
    assert_int_equal(ec_keygen(NULL, NULL, x1, chk), CARD_E_INTERNAL);

    for (size_t i = 0; i < NKEYS; i++) {
        free(priv[i]);
        free(pub[i]);
    }
    free(chk);
    free(x1);
    free(x2);
}

/* ---- blob: known answers -------------------------------------------------------------------- */

static void test_blob_wrap_vectors(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    struct blob_header h;
    size_t len = 0;

    t_bv_header(&v, false, &h);
    uint8_t *out = t_alloc(BLOB_LEN_UNBOUND);
    assert_int_equal(blob_wrap(v.kek, &h, NULL, NULL, v.scalar, out, BLOB_LEN_UNBOUND, &len),
                     CARD_OK);
    assert_int_equal(len, BLOB_LEN_UNBOUND);
    assert_memory_equal(out, v.un_blob, BLOB_LEN_UNBOUND);
    free(out);

    t_bv_header(&v, true, &h);
    memcpy(h.src_eph_pub, v.eph_pub, sizeof h.src_eph_pub); /* the caller's, not recomputed */
    out = t_alloc(BLOB_LEN_BOUND);
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, v.dst_pub, v.scalar, out, BLOB_LEN_BOUND,
                               &len),
                     CARD_OK);
    assert_int_equal(len, BLOB_LEN_BOUND);
    assert_memory_equal(out, v.b_blob, BLOB_LEN_BOUND);
    free(out);

    /* a larger buffer: same bytes, nothing written after them */
    out = t_alloc(BLOB_MAX_LEN + 10);
    memset(out, 0xC3, BLOB_MAX_LEN + 10);
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, v.dst_pub, v.scalar, out, BLOB_MAX_LEN + 10,
                               &len),
                     CARD_OK);
    assert_int_equal(len, BLOB_LEN_BOUND);
    assert_memory_equal(out, v.b_blob, BLOB_LEN_BOUND);
    assert_true(t_all(out + BLOB_LEN_BOUND, 0xC3, BLOB_MAX_LEN + 10 - BLOB_LEN_BOUND));
    free(out);
    t_bv_free(&v);
}

static void test_blob_unwrap_vectors(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    struct blob_header h, want;
    uint8_t *scalar = t_alloc(32);

    t_bv_header(&v, false, &want);
    memset(&h, 0x77, sizeof h);
    memset(scalar, 0, 32);
    assert_int_equal(blob_unwrap(v.kek, NULL, v.un_blob, BLOB_LEN_UNBOUND, &h, scalar), CARD_OK);
    assert_memory_equal(scalar, v.scalar, 32);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.key_type, 1);
    assert_int_equal(h.key_ref, 1);
    assert_int_equal(h.attrs, 0);
    assert_false(h.bound);
    assert_memory_equal(h.kcv, v.kcv, 8);
    assert_memory_equal(h.src_serial, v.serial, 8);
    assert_int_equal(h.export_count, want.export_count);
    assert_int_equal(h.export_count, 0x0001);
    assert_memory_equal(h.nonce, v.un_nonce, 12);
    assert_true(t_all(h.src_eph_pub, 0, 65));
    /* a binding key given for an unbound blob is ignored */
    memset(scalar, 0, 32);
    assert_int_equal(blob_unwrap(v.kek, v.dst_priv, v.un_blob, BLOB_LEN_UNBOUND, NULL, scalar),
                     CARD_OK);
    assert_memory_equal(scalar, v.scalar, 32);

    memset(&h, 0x77, sizeof h);
    memset(scalar, 0, 32);
    assert_int_equal(blob_unwrap(v.kek, v.dst_priv, v.b_blob, BLOB_LEN_BOUND, &h, scalar),
                     CARD_OK);
    assert_memory_equal(scalar, v.scalar, 32);
    assert_int_equal(h.attrs, BLOB_ATTR_BOUND);
    assert_true(h.bound);
    assert_int_equal(h.export_count, 0x0102);
    assert_memory_equal(h.src_eph_pub, v.eph_pub, 65);
    assert_memory_equal(h.nonce, v.b_nonce, 12);
    assert_memory_equal(h.kcv, v.kcv, 8);

    /* blob_parse_header gives the same header without any key */
    struct blob_header p;
    assert_int_equal(blob_parse_header(v.b_blob, BLOB_LEN_BOUND, &p), CARD_OK);
    assert_int_equal(p.export_count, h.export_count);
    assert_memory_equal(p.src_eph_pub, h.src_eph_pub, 65);
    assert_memory_equal(p.nonce, h.nonce, 12);
    assert_memory_equal(p.src_serial, h.src_serial, 8);
    assert_int_equal(blob_parse_header(v.un_blob, BLOB_LEN_UNBOUND, &p), CARD_OK);
    assert_false(p.bound);

    free(scalar);
    t_bv_free(&v);
}

/* ---- blob: rejections ----------------------------------------------------------------------- */

/* Opens a mutated copy (exact size) and checks it is rejected with `want`, with the output
 * scalar and header untouched. */
static void t_expect_reject(const uint8_t *kek, const uint8_t *bind, const uint8_t *blob,
                            size_t len, int want)
{
    uint8_t *copy = t_dup(blob, len);
    uint8_t *scalar = t_alloc(32);
    struct blob_header h, h0;
    memset(scalar, 0x5A, 32);
    memset(&h, 0x3C, sizeof h);
    memcpy(&h0, &h, sizeof h);
    assert_int_equal(blob_unwrap(kek, bind, copy, len, &h, scalar), want);
    assert_true(t_all(scalar, 0x5A, 32));
    assert_memory_equal(&h, &h0, sizeof h);
    free(scalar);
    free(copy);
}

static void t_bitflips(const uint8_t *kek, const uint8_t *bind, const uint8_t *blob, size_t len)
{
    uint8_t *copy = t_dup(blob, len);
    uint8_t *scalar = t_alloc(32);
    struct blob_header h, h0;
    memset(&h0, 0x3C, sizeof h0);
    unsigned rejected = 0;
    for (size_t bit = 0; bit < len * 8; bit++) {
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memset(scalar, 0x5A, 32);
        memcpy(&h, &h0, sizeof h);
        int rc = blob_unwrap(kek, bind, copy, len, &h, scalar);
        if (rc != CARD_E_WRONG_DATA)
            fail_msg("bit %zu of byte %zu: rc %d", bit % 8, bit / 8, rc);
        assert_true(t_all(scalar, 0x5A, 32));
        assert_memory_equal(&h, &h0, sizeof h);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rejected++;
    }
    assert_int_equal(rejected, len * 8);
    /* and the unchanged copy still opens */
    assert_int_equal(blob_unwrap(kek, bind, copy, len, NULL, scalar), CARD_OK);
    free(scalar);
    free(copy);
}

static void test_blob_bitflips_unbound(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    t_bitflips(v.kek, NULL, v.un_blob, BLOB_LEN_UNBOUND);
    t_bv_free(&v);
}

static void test_blob_bitflips_bound(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    t_bitflips(v.kek, v.dst_priv, v.b_blob, BLOB_LEN_BOUND);
    t_bv_free(&v);
}

static void test_blob_wrong_keys(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    uint8_t *other = t_vecn(T_BLOB_FILE, "ecdh_a_priv", 32);
    uint8_t *zero = t_alloc(32);
    memset(zero, 0, 32);
    /* every single-bit change of the KEK */
    uint8_t *kek = t_dup(v.kek, 32);
    for (size_t bit = 0; bit < 256; bit += 5) {
        kek[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        t_expect_reject(kek, NULL, v.un_blob, BLOB_LEN_UNBOUND, CARD_E_WRONG_DATA);
        t_expect_reject(kek, v.dst_priv, v.b_blob, BLOB_LEN_BOUND, CARD_E_WRONG_DATA);
        kek[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* the KEK of another key group */
    uint8_t *kek8 = t_vecn(T_KEK_FILE, "seq8_kek", 32);
    t_expect_reject(kek8, NULL, v.un_blob, BLOB_LEN_UNBOUND, CARD_E_WRONG_DATA);
    /* another binding key, the source's own ephemeral key, an invalid one, none */
    t_expect_reject(v.kek, other, v.b_blob, BLOB_LEN_BOUND, CARD_E_WRONG_DATA);
    t_expect_reject(v.kek, v.eph_priv, v.b_blob, BLOB_LEN_BOUND, CARD_E_WRONG_DATA);
    t_expect_reject(v.kek, zero, v.b_blob, BLOB_LEN_BOUND, CARD_E_WRONG_DATA);
    t_expect_reject(v.kek, NULL, v.b_blob, BLOB_LEN_BOUND, CARD_E_INTERNAL);
    /* the bound blob's ciphertext as an unbound blob (header rewritten): tag fails */
    uint8_t *mix = t_alloc(BLOB_LEN_UNBOUND);
    memcpy(mix, v.b_blob, 26);
    mix[7] = 0;
    memcpy(mix + 26, v.b_blob + 91, BLOB_LEN_BOUND - 91);
    t_expect_reject(v.kek, NULL, mix, BLOB_LEN_UNBOUND, CARD_E_WRONG_DATA);
    free(mix);
    free(kek);
    free(kek8);
    free(other);
    free(zero);
    t_bv_free(&v);
}

static void t_lengths(const uint8_t *kek, const uint8_t *bind, const uint8_t *blob, size_t len)
{
    for (size_t n = 0; n < len; n++) /* truncated */
        t_expect_reject(kek, bind, blob, n, CARD_E_WRONG_DATA);
    uint8_t *big = t_alloc(len + 70);
    memcpy(big, blob, len);
    memset(big + len, 0, 70);
    for (size_t n = len + 1; n <= len + 70; n++) /* extended */
        t_expect_reject(kek, bind, big, n, CARD_E_WRONG_DATA);
    free(big);
    struct blob_header h;
    uint8_t scalar[32];
    memset(scalar, 0x5A, sizeof scalar);
    assert_int_equal(blob_parse_header(NULL, len, &h), CARD_E_WRONG_DATA);
    assert_int_equal(blob_unwrap(kek, bind, NULL, len, &h, scalar), CARD_E_WRONG_DATA);
    assert_true(t_all(scalar, 0x5A, sizeof scalar));
}

static void test_blob_lengths(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    t_lengths(v.kek, NULL, v.un_blob, BLOB_LEN_UNBOUND);
    t_lengths(v.kek, v.dst_priv, v.b_blob, BLOB_LEN_BOUND);
    t_bv_free(&v);
}

static void test_blob_parse_rejects(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    struct blob_header h;
    struct { size_t off; uint8_t val; } bad[] = {
        { 0, 'X' }, { 1, 'c' }, { 2, 'd' }, { 3, 'V' }, /* magic */
        { 4, 0x00 }, { 4, 0x02 }, { 4, 0xFF },           /* version */
        { 5, 0x00 }, { 5, 0x02 },                        /* key type */
        { 6, 0x00 }, { 6, 0x02 },                        /* key reference */
        { 7, 0x02 }, { 7, 0x80 }, { 7, 0x03 }, { 7, 0xFF }, /* reserved attribute bits */
        { 7, 0x01 },                                     /* bound bit on an 86-byte blob */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *b = t_dup(v.un_blob, BLOB_LEN_UNBOUND);
        b[bad[i].off] = bad[i].val;
        memset(&h, 0x11, sizeof h);
        assert_int_equal(blob_parse_header(b, BLOB_LEN_UNBOUND, &h), CARD_E_WRONG_DATA);
        assert_true(t_all((const uint8_t *)&h, 0x11, sizeof h));
        t_expect_reject(v.kek, NULL, b, BLOB_LEN_UNBOUND, CARD_E_WRONG_DATA);
        free(b);
    }
    /* bound bit cleared on a 151-byte blob */
    uint8_t *b = t_dup(v.b_blob, BLOB_LEN_BOUND);
    b[7] = 0;
    assert_int_equal(blob_parse_header(b, BLOB_LEN_BOUND, &h), CARD_E_WRONG_DATA);
    free(b);
    /* a parse that succeeds takes no key and does no crypto: a bad tag still parses */
    b = t_dup(v.b_blob, BLOB_LEN_BOUND);
    b[BLOB_LEN_BOUND - 1] ^= 1;
    assert_int_equal(blob_parse_header(b, BLOB_LEN_BOUND, &h), CARD_OK);
    free(b);
    t_bv_free(&v);
}

static void test_blob_wrap_rejects(void **state)
{
    (void)state;
    struct t_bv v;
    t_bv_load(&v);
    struct blob_header h;
    size_t len = 99;
    uint8_t *out = t_alloc(BLOB_MAX_LEN);

    /* inconsistent headers */
    for (int k = 0; k < 7; k++) {
        t_bv_header(&v, false, &h);
        switch (k) {
        case 0: h.version = 2; break;
        case 1: h.key_type = 0; break;
        case 2: h.key_ref = 2; break;
        case 3: h.attrs = 0x02; break;
        case 4: h.attrs = BLOB_ATTR_BOUND; break; /* attrs say bound, h.bound says not */
        case 5: h.bound = true; break;            /* and the other way round */
        default: h.version = 0; break;
        }
        len = 99;
        const bool b = h.bound;
        assert_int_equal(blob_wrap(v.kek, &h, b ? v.eph_priv : NULL, b ? v.dst_pub : NULL,
                                   v.scalar, out, BLOB_MAX_LEN, &len),
                         CARD_E_INTERNAL);
        assert_int_equal(len, 0);
    }
    /* keys required iff bound */
    t_bv_header(&v, true, &h);
    assert_int_equal(blob_wrap(v.kek, &h, NULL, v.dst_pub, v.scalar, out, BLOB_MAX_LEN, &len),
                     CARD_E_INTERNAL);
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, NULL, v.scalar, out, BLOB_MAX_LEN, &len),
                     CARD_E_INTERNAL);
    t_bv_header(&v, false, &h);
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, v.dst_pub, v.scalar, out, BLOB_MAX_LEN,
                               &len),
                     CARD_E_INTERNAL);
    /* buffer one byte short */
    assert_int_equal(blob_wrap(v.kek, &h, NULL, NULL, v.scalar, out, BLOB_LEN_UNBOUND - 1, &len),
                     CARD_E_INTERNAL);
    assert_int_equal(len, 0);
    t_bv_header(&v, true, &h);
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, v.dst_pub, v.scalar, out,
                               BLOB_LEN_BOUND - 1, &len),
                     CARD_E_INTERNAL);
    /* invalid destination point, invalid ephemeral scalar: WRONG_DATA and out cleared */
    uint8_t *pt = t_dup(v.dst_pub, 65);
    pt[64] ^= 1;
    memset(out, 0xC3, BLOB_MAX_LEN);
    len = 99;
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, pt, v.scalar, out, BLOB_MAX_LEN, &len),
                     CARD_E_WRONG_DATA);
    assert_int_equal(len, 0);
    assert_true(t_all(out, 0, BLOB_LEN_BOUND));
    pt[0] = 0x02;
    pt[64] ^= 1;
    assert_int_equal(blob_wrap(v.kek, &h, v.eph_priv, pt, v.scalar, out, BLOB_MAX_LEN, &len),
                     CARD_E_WRONG_DATA);
    uint8_t *zero = t_alloc(32);
    memset(zero, 0, 32);
    assert_int_equal(blob_wrap(v.kek, &h, zero, v.dst_pub, v.scalar, out, BLOB_MAX_LEN, &len),
                     CARD_E_WRONG_DATA);
    free(zero);
    free(pt);
    free(out);
    t_bv_free(&v);
}

/* ---- blob: random round trips --------------------------------------------------------------- */

static void test_blob_roundtrip_random(void **state)
{
    (void)state;
    struct t_hal th;
    struct hal_rng hal;
    struct crypto_rng rng;
    t_rng_open(&rng, &th, &hal, 77);
    for (unsigned it = 0; it < 12; it++) {
        const bool bound = it % 2 == 1;
        uint8_t *kek = t_alloc(32), *scalar = t_alloc(32), *got = t_alloc(32);
        uint8_t *eph = t_alloc(32), *eph_pub = t_alloc(65);
        uint8_t *dst = t_alloc(32), *dst_pub = t_alloc(65), *other = t_alloc(32);
        uint8_t *other_pub = t_alloc(65);
        assert_int_equal(crypto_rng_fill(&rng, kek, 32), 0);
        assert_int_equal(ec_keygen(crypto_rng_fill, &rng, scalar, eph_pub), CARD_OK);
        assert_int_equal(ec_keygen(crypto_rng_fill, &rng, eph, eph_pub), CARD_OK);
        assert_int_equal(ec_keygen(crypto_rng_fill, &rng, dst, dst_pub), CARD_OK);
        assert_int_equal(ec_keygen(crypto_rng_fill, &rng, other, other_pub), CARD_OK);

        struct blob_header h;
        memset(&h, 0, sizeof h);
        h.version = BLOB_VERSION;
        h.key_type = BLOB_KEY_TYPE_EC_P256;
        h.key_ref = BLOB_KEY_REF;
        h.attrs = bound ? BLOB_ATTR_BOUND : 0;
        h.bound = bound;
        assert_int_equal(kek_kcv(kek, h.kcv), CARD_OK);
        assert_int_equal(crypto_rng_fill(&rng, h.src_serial, sizeof h.src_serial), 0);
        assert_int_equal(crypto_rng_fill(&rng, h.nonce, sizeof h.nonce), 0);
        h.export_count = (uint16_t)(it * 0x1111u + 0xFF00u * (it & 1));
        if (bound)
            memcpy(h.src_eph_pub, eph_pub, 65);

        const size_t want_len = bound ? BLOB_LEN_BOUND : BLOB_LEN_UNBOUND;
        uint8_t *out = t_alloc(want_len);
        size_t len = 0;
        assert_int_equal(blob_wrap(kek, &h, bound ? eph : NULL, bound ? dst_pub : NULL, scalar,
                                   out, want_len, &len),
                         CARD_OK);
        assert_int_equal(len, want_len);

        struct blob_header p;
        assert_int_equal(blob_parse_header(out, len, &p), CARD_OK);
        assert_int_equal(p.bound, bound);
        assert_int_equal(p.export_count, h.export_count);
        assert_memory_equal(p.kcv, h.kcv, 8);
        assert_memory_equal(p.src_serial, h.src_serial, 8);
        assert_memory_equal(p.nonce, h.nonce, 12);
        if (bound)
            assert_memory_equal(p.src_eph_pub, eph_pub, 65);

        memset(got, 0, 32);
        assert_int_equal(blob_unwrap(kek, bound ? dst : NULL, out, len, &p, got), CARD_OK);
        assert_memory_equal(got, scalar, 32);
        if (bound)
            t_expect_reject(kek, other, out, len, CARD_E_WRONG_DATA);
        kek[it % 32] ^= 0x10;
        t_expect_reject(kek, bound ? dst : NULL, out, len, CARD_E_WRONG_DATA);

        free(out);
        free(kek);
        free(scalar);
        free(got);
        free(eph);
        free(eph_pub);
        free(dst);
        free(dst_pub);
        free(other);
        free(other_pub);
    }
    crypto_rng_free(&rng);
}

/* ---- card DRBG ------------------------------------------------------------------------------ */

static void test_crypto_rng_fake_hal(void **state)
{
    (void)state;
    struct t_hal th1, th2;
    struct hal_rng hal1, hal2;
    struct crypto_rng r1, r2;
    enum { BIG = 3000 }; /* more than MBEDTLS_CTR_DRBG_MAX_REQUEST: filled in chunks */
    uint8_t *a = t_alloc(BIG), *b = t_alloc(BIG);

    t_rng_open(&r1, &th1, &hal1, 5);
    t_rng_open(&r2, &th2, &hal2, 5);
    assert_true(th1.calls >= 1);
    assert_true(th1.pos >= 32); /* at least 256 bits of entropy drawn from the HAL */
    assert_int_equal(crypto_rng_fill(&r1, a, BIG), 0);
    assert_int_equal(crypto_rng_fill(&r2, b, BIG), 0);
    assert_memory_equal(a, b, BIG); /* same HAL stream, same output */
    assert_false(t_all(a, 0, BIG));
    assert_memory_not_equal(a, a + 1024, 1024); /* chunks differ */
    assert_int_equal(crypto_rng_fill(&r1, a, 16), 0);
    assert_memory_not_equal(a, b, 16); /* the stream moves on */
    assert_int_equal(crypto_rng_fill(&r1, NULL, 0), 0);
    crypto_rng_free(&r1);
    crypto_rng_free(&r2);

    t_rng_open(&r2, &th2, &hal2, 6);
    assert_int_equal(crypto_rng_fill(&r2, b, BIG), 0);
    t_rng_open(&r1, &th1, &hal1, 5);
    assert_int_equal(crypto_rng_fill(&r1, a, BIG), 0);
    assert_memory_not_equal(a, b, 64); /* another HAL stream, another output */
    crypto_rng_free(&r1);
    crypto_rng_free(&r2);

    /* after free the generator refuses */
    memset(a, 0xA5, 32);
    assert_int_equal(crypto_rng_fill(&r1, a, 32), CARD_E_RNG);
    crypto_rng_free(&r1); /* twice is harmless */
    crypto_rng_free(NULL);
    free(a);
    free(b);
}

static void test_crypto_rng_failing_hal(void **state)
{
    (void)state;
    struct t_hal th;
    memset(&th, 0, sizeof th);
    th.fail = true;
    struct hal_rng hal = { t_hal_fill, &th };
    struct crypto_rng r;
    uint8_t *out = t_alloc(32);

    assert_int_equal(crypto_rng_init(&r, &hal), CARD_E_RNG);
    assert_true(th.calls >= 1);
    assert_int_equal(crypto_rng_fill(&r, out, 32), CARD_E_RNG);
    crypto_rng_free(&r);

    assert_int_equal(crypto_rng_init(&r, NULL), CARD_E_RNG);
    assert_int_equal(crypto_rng_fill(&r, out, 32), CARD_E_RNG);
    crypto_rng_free(&r);
    struct hal_rng none = { NULL, NULL };
    assert_int_equal(crypto_rng_init(&r, &none), CARD_E_RNG);
    crypto_rng_free(&r);
    assert_int_equal(crypto_rng_init(NULL, &hal), CARD_E_INTERNAL);
    assert_int_equal(crypto_rng_fill(NULL, out, 32), CARD_E_RNG);
    free(out);
}

static void test_crypto_platform_init(void **state)
{
    (void)state;
    crypto_platform_init();
    crypto_platform_init(); /* idempotent */
    uint8_t *a = t_vecn(T_BLOB_FILE, "ecdh_a_priv", 32);
    uint8_t *b = t_vecn(T_BLOB_FILE, "ecdh_b_pub", 65);
    uint8_t *x = t_vecn(T_BLOB_FILE, "ecdh_x", 32);
    uint8_t *out = t_alloc(32);
    assert_int_equal(ec_ecdh(a, b, out), CARD_OK);
    assert_memory_equal(out, x, 32);
    free(a);
    free(b);
    free(x);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_vectors),
        cmocka_unit_test(test_kek_bad_n),
        cmocka_unit_test(test_kek_every_input_matters),
        cmocka_unit_test(test_ec_vectors),
        cmocka_unit_test(test_ec_private_range),
        cmocka_unit_test(test_ec_invalid_points),
        cmocka_unit_test(test_ec_keygen_roundtrip),
        cmocka_unit_test(test_blob_wrap_vectors),
        cmocka_unit_test(test_blob_unwrap_vectors),
        cmocka_unit_test(test_blob_bitflips_unbound),
        cmocka_unit_test(test_blob_bitflips_bound),
        cmocka_unit_test(test_blob_wrong_keys),
        cmocka_unit_test(test_blob_lengths),
        cmocka_unit_test(test_blob_parse_rejects),
        cmocka_unit_test(test_blob_wrap_rejects),
        cmocka_unit_test(test_blob_roundtrip_random),
        cmocka_unit_test(test_crypto_rng_fake_hal),
        cmocka_unit_test(test_crypto_rng_failing_hal),
        cmocka_unit_test(test_crypto_platform_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Encrypted data files v1 (host/filecrypt.c, host/filecard.c, docs/fileformat.md).
 *
 *   - known answers from tests/vectors/file_v1.txt (tests/vectors/gen_filevectors.py, an
 *     independent Python implementation): decryption with the fixed recipient keys on the host,
 *     and the same bytes again from the deterministic encryption and rewrap entry points;
 *   - the header parser on every field;
 *   - round trips through simulated cards: card A generates its key, card B is its clone
 *     (host/dup.c); files encrypted to A's public key open with B and with A, one PSO each, at
 *     sizes around the chunk size and over many chunks; several recipients (a partner key on
 *     the host) each open;
 *   - every class of damage rejected with a clear error and no plaintext left: a flipped bit in
 *     the fixed header, a recipient entry, a chunk body, a tag; swapped chunks; truncation at a
 *     chunk boundary and inside a chunk; data appended; a card that is not a recipient (no PSO
 *     sent); a card whose PIN is not verified;
 *   - rewrapping for a new key keeps the partner's entry and the chunks.
 * Run from the repo root (the vector file is read by relative path). */
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

#include "card_err.h"
#include "card_ops.h"
#include "ec.h"
#include "filecard.h"
#include "filecrypt.h"
#include "hex.h"
#include "ins.h"
#include "rng.h"

#include "file_env.h"

#define T_VEC "tests/vectors/file_v1.txt"

/* ---- group state: three cards and a partner key ------------------------------------------- */

struct g {
    char dir[64];
    char uri_a[160], uri_b[160], uri_w[160], state[128];
    struct fe_card a, b, w;   /* A: generated; B: clone of A; W: its own key */
    uint8_t p_priv[32], p_pub[65]; /* a partner's key pair, on the host */
};

static int group_setup(void **state)
{
    struct g *g = calloc(1, sizeof *g);
    assert_non_null(g);
    snprintf(g->dir, sizeof g->dir, "/tmp/icdup-test-filecrypt-XXXXXX");
    assert_non_null(mkdtemp(g->dir));
    *state = g;
    snprintf(g->uri_a, sizeof g->uri_a, "sim:%s/a.nvm", g->dir);
    snprintf(g->uri_b, sizeof g->uri_b, "sim:%s/b.nvm", g->dir);
    snprintf(g->uri_w, sizeof g->uri_w, "sim:%s/w.nvm", g->dir);
    snprintf(g->state, sizeof g->state, "%s/state", g->dir);
    fe_init_card(g->uri_a);
    fe_init_card(g->uri_b);
    fe_init_card(g->uri_w);
    uint8_t pub[65], wpub[65];
    fe_clone(g->uri_a, g->uri_b, g->state, pub);
    fe_generate(g->uri_w, wpub);
    fe_card_open(&g->a, g->uri_a, "A", true);
    fe_card_open(&g->b, g->uri_b, "B", true);
    fe_card_open(&g->w, g->uri_w, "W", true);
    assert_memory_equal(g->a.pub, pub, 65);
    assert_memory_equal(g->b.pub, pub, 65);
    assert_memory_equal(g->w.pub, wpub, 65);
    mbedtls_ctr_drbg_context drbg;
    assert_int_equal(rng_drbg_seed(&drbg, "test partner"), 0);
    assert_int_equal(ec_keygen(mbedtls_ctr_drbg_random, &drbg, g->p_priv, g->p_pub), CARD_OK);
    mbedtls_ctr_drbg_free(&drbg);
    return 0;
}

static int group_teardown(void **state)
{
    struct g *g = *state;
    if (g == NULL)
        return 0;
    fe_card_close(&g->a);
    fe_card_close(&g->b);
    fe_card_close(&g->w);
    fe_rm_dir(g->dir);
    free(g);
    return 0;
}

/* ---- in-memory helpers ------------------------------------------------------------------- */

/* Encrypts n bytes of pt for nr recipients; the ciphertext as an exact-size heap buffer. */
static uint8_t *enc(const uint8_t *pt, size_t n, const uint8_t (*rcpt)[65], unsigned nr,
                    unsigned e, size_t *out_len)
{
    uint8_t *copy = fe_dup(pt, n);
    FILE *in = n > 0 ? fmemopen(copy, n, "rb") : fopen("/dev/null", "rb");
    assert_non_null(in);
    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_non_null(out);
    char err[512];
    uint64_t plen = 99;
    int rc = filecrypt_encrypt(in, out, rcpt, nr, e, &plen, err, sizeof err);
    if (rc != FILECRYPT_OK)
        fail_msg("encrypt: %s", err);
    assert_int_equal(plen, n);
    fclose(in);
    fclose(out);
    free(copy);
    uint8_t *ct = fe_dup((const uint8_t *)buf, blen);
    free(buf);
    *out_len = blen;
    return ct;
}

/* Size of the encryption of n bytes: header, full chunks, the final chunk. */
static size_t enc_size(size_t n, unsigned nr, unsigned e)
{
    size_t chunk = (size_t)1 << e;
    size_t chunks = n == 0 ? 1 : (n + chunk - 1) / chunk;
    return FILECRYPT_FIXED_LEN + nr * FILECRYPT_ENTRY_LEN + n + chunks * FILECRYPT_TAG_LEN;
}

struct dec_out {
    int rc;
    char err[512];
    uint8_t *pt;
    size_t len;
    unsigned long apdus; /* command APDUs the card got */
};

/* Decrypts ct with a card (k) or, when k is NULL, with the host key pair priv/pub. */
static void dec(struct fe_card *k, const uint8_t *priv, const uint8_t *pub, const uint8_t *ct,
                size_t n, struct dec_out *d)
{
    memset(d, 0, sizeof *d);
    uint8_t *copy = fe_dup(ct, n);
    FILE *in = n > 0 ? fmemopen(copy, n, "rb") : fopen("/dev/null", "rb");
    assert_non_null(in);
    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_non_null(out);
    struct filecrypt_header h;
    uint8_t cek[32];
    unsigned long before = k != NULL ? k->c.apdus : 0;
    d->rc = filecrypt_read_header(in, &h, d->err, sizeof d->err);
    if (d->rc == FILECRYPT_OK && k != NULL) {
        d->rc = filecard_open(&k->c, k->pub, &h, cek, d->err, sizeof d->err);
    } else if (d->rc == FILECRYPT_OK) {
        uint8_t id[8], x[32];
        filecrypt_key_id(pub, id);
        int idx = filecrypt_find(&h, id);
        assert_true(idx >= 0);
        assert_int_equal(ec_ecdh(priv, h.entry[idx].eph_pub, x), CARD_OK);
        d->rc = filecrypt_open_with(&h, (unsigned)idx, x, pub, cek, d->err, sizeof d->err);
    }
    if (d->rc == FILECRYPT_OK) {
        uint64_t plen = 0;
        d->rc = filecrypt_decrypt_body(in, out, &h, cek, &plen, d->err, sizeof d->err);
        if (d->rc == FILECRYPT_OK)
            assert_int_equal(plen, blen);
    }
    if (k != NULL)
        d->apdus = k->c.apdus - before;
    fclose(in);
    fclose(out);
    free(copy);
    d->pt = fe_dup((const uint8_t *)buf, blen);
    d->len = blen;
    free(buf);
}

static void dec_free(struct dec_out *d)
{
    free(d->pt);
    d->pt = NULL;
}

static void expect_plain(const struct dec_out *d, const uint8_t *pt, size_t n)
{
    if (d->rc != FILECRYPT_OK)
        fail_msg("decrypt: %s", d->err);
    assert_int_equal(d->len, n);
    if (n > 0)
        assert_memory_equal(d->pt, pt, n);
}

/* ---- known answers ------------------------------------------------------------------------- */

struct vec {
    uint8_t *cek, *file_id, *r1_priv, *r1_pub, *r1_id, *r2_priv, *r2_pub, *r3_priv, *r3_pub;
    uint8_t *eph1, *eph1_pub, *eph2, *eph3;
    uint8_t *multi_pt, *multi_fixed, *multi_h, *r1_x, *r1_kwk, *r2_x, *r2_kwk, *multi;
    uint8_t *exact_pt, *exact, *empty, *rewrap;
    size_t multi_len, exact_len, empty_len, rewrap_len;
};

static void vec_load(struct vec *v)
{
    v->cek = fe_vecn(T_VEC, "cek", 32);
    v->file_id = fe_vecn(T_VEC, "file_id", 16);
    v->r1_priv = fe_vecn(T_VEC, "r1_priv", 32);
    v->r1_pub = fe_vecn(T_VEC, "r1_pub", 65);
    v->r1_id = fe_vecn(T_VEC, "r1_key_id", 8);
    v->r2_priv = fe_vecn(T_VEC, "r2_priv", 32);
    v->r2_pub = fe_vecn(T_VEC, "r2_pub", 65);
    v->r3_priv = fe_vecn(T_VEC, "r3_priv", 32);
    v->r3_pub = fe_vecn(T_VEC, "r3_pub", 65);
    v->eph1 = fe_vecn(T_VEC, "eph1_priv", 32);
    v->eph1_pub = fe_vecn(T_VEC, "eph1_pub", 65);
    v->eph2 = fe_vecn(T_VEC, "eph2_priv", 32);
    v->eph3 = fe_vecn(T_VEC, "eph3_priv", 32);
    v->multi_pt = fe_vecn(T_VEC, "multi_plaintext", 2500);
    v->multi_fixed = fe_vecn(T_VEC, "multi_fixed", 24);
    v->multi_h = fe_vecn(T_VEC, "multi_h", 32);
    v->r1_x = fe_vecn(T_VEC, "multi_r1_x", 32);
    v->r1_kwk = fe_vecn(T_VEC, "multi_r1_kwk", 32);
    v->r2_x = fe_vecn(T_VEC, "multi_r2_x", 32);
    v->r2_kwk = fe_vecn(T_VEC, "multi_r2_kwk", 32);
    v->multi = fe_vec(T_VEC, "multi_file", &v->multi_len);
    v->exact_pt = fe_vecn(T_VEC, "exact_plaintext", 2048);
    v->exact = fe_vec(T_VEC, "exact_file", &v->exact_len);
    v->empty = fe_vec(T_VEC, "empty_file", &v->empty_len);
    v->rewrap = fe_vec(T_VEC, "rewrap_file", &v->rewrap_len);
}

static void vec_free(struct vec *v)
{
    uint8_t **f[] = { &v->cek, &v->file_id, &v->r1_priv, &v->r1_pub, &v->r1_id, &v->r2_priv,
                      &v->r2_pub, &v->r3_priv, &v->r3_pub, &v->eph1, &v->eph1_pub, &v->eph2,
                      &v->eph3, &v->multi_pt, &v->multi_fixed, &v->multi_h, &v->r1_x,
                      &v->r1_kwk, &v->r2_x, &v->r2_kwk, &v->multi, &v->exact_pt, &v->exact,
                      &v->empty, &v->rewrap };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
}

static void test_vectors_decrypt(void **state)
{
    (void)state;
    struct vec v;
    vec_load(&v);
    assert_int_equal(v.multi_len, 24 + 2 * 122 + 2 * (1024 + 16) + 452 + 16);

    /* The pieces: header fields, H, key id, ECDH, KWK. */
    struct filecrypt_header h;
    size_t used = 0;
    char err[512];
    uint8_t *hb = fe_dup(v.multi, 24 + 2 * 122);
    assert_int_equal(filecrypt_header_parse(hb, 24 + 2 * 122, &h, &used, err, sizeof err),
                     FILECRYPT_OK);
    free(hb);
    assert_int_equal(used, 24 + 2 * 122);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.chunk_exp, 10);
    assert_int_equal(h.n, 2);
    assert_memory_equal(h.fixed, v.multi_fixed, 24);
    assert_memory_equal(h.file_id, v.file_id, 16);
    assert_memory_equal(h.hash, v.multi_h, 32);
    uint8_t id[8], x[32], kwk[32];
    filecrypt_key_id(v.r1_pub, id);
    assert_memory_equal(id, v.r1_id, 8);
    assert_int_equal(filecrypt_find(&h, id), 0);
    assert_memory_equal(h.entry[0].eph_pub, v.eph1_pub, 65);
    assert_int_equal(ec_ecdh(v.r1_priv, h.entry[0].eph_pub, x), CARD_OK);
    assert_memory_equal(x, v.r1_x, 32);
    assert_int_equal(filecrypt_derive_kwk(x, h.entry[0].eph_pub, v.r1_pub, kwk), FILECRYPT_OK);
    assert_memory_equal(kwk, v.r1_kwk, 32);
    assert_int_equal(ec_ecdh(v.r2_priv, h.entry[1].eph_pub, x), CARD_OK);
    assert_memory_equal(x, v.r2_x, 32);
    assert_int_equal(filecrypt_derive_kwk(x, h.entry[1].eph_pub, v.r2_pub, kwk), FILECRYPT_OK);
    assert_memory_equal(kwk, v.r2_kwk, 32);
    uint8_t cek[32];
    assert_int_equal(filecrypt_open_with(&h, 1, x, v.r2_pub, cek, err, sizeof err),
                     FILECRYPT_OK);
    assert_memory_equal(cek, v.cek, 32);
    /* The entry of r1 with r2's key: refused before any crypto. */
    assert_int_equal(filecrypt_open_with(&h, 0, x, v.r2_pub, cek, err, sizeof err),
                     FILECRYPT_E_ARG);
    assert_int_equal(filecrypt_open_with(&h, 2, x, v.r2_pub, cek, err, sizeof err),
                     FILECRYPT_E_ARG);

    /* Whole files, with each recipient. */
    struct dec_out d;
    dec(NULL, v.r1_priv, v.r1_pub, v.multi, v.multi_len, &d);
    expect_plain(&d, v.multi_pt, 2500);
    dec_free(&d);
    dec(NULL, v.r2_priv, v.r2_pub, v.multi, v.multi_len, &d);
    expect_plain(&d, v.multi_pt, 2500);
    dec_free(&d);
    dec(NULL, v.r1_priv, v.r1_pub, v.exact, v.exact_len, &d);
    expect_plain(&d, v.exact_pt, 2048);
    dec_free(&d);
    assert_int_equal(v.empty_len, 24 + 122 + 16);
    dec(NULL, v.r1_priv, v.r1_pub, v.empty, v.empty_len, &d);
    expect_plain(&d, NULL, 0);
    dec_free(&d);
    dec(NULL, v.r3_priv, v.r3_pub, v.rewrap, v.rewrap_len, &d);
    expect_plain(&d, v.multi_pt, 2500);
    dec_free(&d);
    dec(NULL, v.r2_priv, v.r2_pub, v.rewrap, v.rewrap_len, &d);
    expect_plain(&d, v.multi_pt, 2500);
    dec_free(&d);

    /* A failing chunk: the message names the chunk and holds no key material. */
    uint8_t *bad = fe_dup(v.multi, v.multi_len);
    bad[24 + 244 + 1040 + 5] ^= 0x01;
    dec(NULL, v.r1_priv, v.r1_pub, bad, v.multi_len, &d);
    assert_int_equal(d.rc, FILECRYPT_E_CORRUPT);
    assert_non_null(strstr(d.err, "chunk 1 failed authentication"));
    char hx[80];
    const uint8_t *secrets[] = { v.cek, v.r1_x, v.r1_kwk, v.r1_priv };
    for (size_t i = 0; i < 4; i++) {
        hex_encode(secrets[i], 8, 0, hx, sizeof hx);
        assert_null(strstr(d.err, hx));
    }
    dec_free(&d);
    free(bad);
    memset(cek, 0, sizeof cek);
    vec_free(&v);
}

/* Encrypts pt (n bytes) with the fixed inputs and compares with the vector. */
static void reencrypt(const struct vec *v, const uint8_t *pt, size_t n, unsigned e,
                      const uint8_t *r2_pub, const uint8_t *want, size_t want_len)
{
    struct filecrypt_randoms rnd;
    memset(&rnd, 0, sizeof rnd);
    memcpy(rnd.cek, v->cek, 32);
    memcpy(rnd.file_id, v->file_id, 16);
    memcpy(rnd.eph_priv[0], v->eph1, 32);
    memcpy(rnd.eph_priv[1], v->eph2, 32);
    uint8_t rcpt[2][65];
    memcpy(rcpt[0], v->r1_pub, 65);
    unsigned nr = 1;
    if (r2_pub != NULL) {
        memcpy(rcpt[1], r2_pub, 65);
        nr = 2;
    }
    uint8_t *copy = fe_dup(pt, n);
    FILE *in = n > 0 ? fmemopen(copy, n, "rb") : fopen("/dev/null", "rb");
    assert_non_null(in);
    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_non_null(out);
    char err[512];
    int rc = filecrypt_encrypt_with(in, out, (const uint8_t(*)[65])rcpt, nr, e, &rnd, NULL, err,
                                    sizeof err);
    if (rc != FILECRYPT_OK)
        fail_msg("encrypt_with: %s", err);
    fclose(in);
    fclose(out);
    assert_int_equal(blen, want_len);
    assert_memory_equal(buf, want, want_len);
    free(buf);
    free(copy);
}

static void test_vectors_encrypt(void **state)
{
    (void)state;
    struct vec v;
    vec_load(&v);
    reencrypt(&v, v.multi_pt, 2500, 10, v.r2_pub, v.multi, v.multi_len);
    reencrypt(&v, v.exact_pt, 2048, 10, NULL, v.exact, v.exact_len);
    reencrypt(&v, NULL, 0, 16, NULL, v.empty, v.empty_len);

    /* Recovery's rewrap: r1 replaced by r3 with eph3; r2's entry and the chunks unchanged. */
    struct filecrypt_header h, nh;
    char err[512];
    assert_int_equal(filecrypt_header_parse(v.multi, v.multi_len, &h, NULL, err, sizeof err),
                     FILECRYPT_OK);
    uint8_t eph[FILECRYPT_MAX_RECIPIENTS][32];
    memset(eph, 0, sizeof eph);
    memcpy(eph[0], v.eph3, 32);
    unsigned replaced = 0;
    assert_int_equal(filecrypt_rewrap_with(&h, v.cek, v.r1_id, v.r3_pub,
                                           (const uint8_t(*)[32])eph, &nh, &replaced, err,
                                           sizeof err),
                     FILECRYPT_OK);
    assert_int_equal(replaced, 1);
    uint8_t hb[FILECRYPT_HEADER_MAX];
    size_t hlen = 0;
    assert_int_equal(filecrypt_header_encode(&nh, hb, sizeof hb, &hlen, err, sizeof err),
                     FILECRYPT_OK);
    assert_int_equal(hlen, 24 + 2 * 122);
    assert_int_equal(v.rewrap_len, v.multi_len);
    assert_memory_equal(hb, v.rewrap, hlen);
    assert_memory_equal(v.rewrap + hlen, v.multi + hlen, v.multi_len - hlen);
    /* The unchanged original re-encodes to its own bytes. */
    assert_int_equal(filecrypt_header_encode(&h, hb, sizeof hb, &hlen, err, sizeof err),
                     FILECRYPT_OK);
    assert_memory_equal(hb, v.multi, hlen);
    vec_free(&v);
}

/* ---- header parser ------------------------------------------------------------------------- */

static int parse_mut(const uint8_t *hdr, size_t len, size_t at, uint8_t val, char *err,
                     size_t errlen)
{
    uint8_t *b = fe_dup(hdr, len);
    if (at < len)
        b[at] = val;
    struct filecrypt_header h;
    int rc = filecrypt_header_parse(b, len, &h, NULL, err, errlen);
    free(b);
    return rc;
}

static void test_header_parse(void **state)
{
    (void)state;
    struct vec v;
    vec_load(&v);
    const uint8_t *m = v.multi;
    const size_t hl = 24 + 2 * 122;
    char err[512];
    assert_int_equal(parse_mut(m, hl, hl, 0, err, sizeof err), FILECRYPT_OK);
    assert_int_equal(parse_mut(m, hl, 0, 'X', err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "not an icdup encrypted file"));
    assert_int_equal(parse_mut(m, hl, 4, 2, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "unsupported file format version 2"));
    assert_int_equal(parse_mut(m, hl, 5, 9, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "chunk size exponent 9"));
    assert_int_equal(parse_mut(m, hl, 5, 21, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_int_equal(parse_mut(m, hl, 5, 20, err, sizeof err), FILECRYPT_OK);
    assert_int_equal(parse_mut(m, hl, 6, 0, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "recipient count 0"));
    assert_int_equal(parse_mut(m, hl, 6, 9, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_int_equal(parse_mut(m, hl, 6, 3, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "truncated header"));
    assert_int_equal(parse_mut(m, hl, 6, 1, err, sizeof err), FILECRYPT_OK);
    assert_int_equal(parse_mut(m, hl, 7, 1, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "reserved byte"));
    /* Every length short of the whole header is refused, without reading past it. */
    for (size_t len = 0; len < hl; len++)
        assert_int_equal(parse_mut(m, len, hl, 0, err, sizeof err), FILECRYPT_E_FORMAT);
    /* An entry of an unknown type is kept and never matches. */
    uint8_t *b = fe_dup(m, hl);
    b[24] = 0x02;
    struct filecrypt_header h;
    assert_int_equal(filecrypt_header_parse(b, hl, &h, NULL, err, sizeof err), FILECRYPT_OK);
    assert_int_equal(filecrypt_find(&h, v.r1_id), -1);
    uint8_t out[FILECRYPT_HEADER_MAX];
    size_t olen = 0;
    assert_int_equal(filecrypt_header_encode(&h, out, sizeof out, &olen, err, sizeof err),
                     FILECRYPT_OK);
    assert_int_equal(olen, hl);
    assert_memory_equal(out, b, hl);
    free(b);
    /* From a stream: an empty input and a short one. */
    FILE *f = fopen("/dev/null", "rb");
    assert_int_equal(filecrypt_read_header(f, &h, err, sizeof err), FILECRYPT_E_FORMAT);
    assert_non_null(strstr(err, "empty input"));
    fclose(f);
    vec_free(&v);
}

/* ---- round trips through cards ------------------------------------------------------------- */

static void round_trip(struct g *g, size_t n, unsigned e, unsigned seed)
{
    uint8_t *pt = fe_data(seed, n);
    size_t ct_len = 0;
    uint8_t *ct = enc(pt, n, (const uint8_t(*)[65])g->a.pub, 1, e, &ct_len);
    assert_int_equal(ct_len, enc_size(n, 1, e));
    struct dec_out d;
    dec(&g->b, NULL, NULL, ct, ct_len, &d); /* the clone */
    expect_plain(&d, pt, n);
    assert_int_equal(d.apdus, 1); /* exactly one PSO per file */
    dec_free(&d);
    dec(&g->a, NULL, NULL, ct, ct_len, &d); /* the original */
    expect_plain(&d, pt, n);
    assert_int_equal(d.apdus, 1);
    dec_free(&d);
    free(ct);
    free(pt);
}

static void test_round_trips(void **state)
{
    struct g *g = *state;
    const size_t c10 = 1024, c16 = 65536;
    const size_t sizes10[] = { 0, 1, c10 - 1, c10, c10 + 1, 2 * c10, 3 * 1024 * 1024 + 7 };
    for (size_t i = 0; i < sizeof sizes10 / sizeof sizes10[0]; i++)
        round_trip(g, sizes10[i], 10, (unsigned)i);
    const size_t sizes16[] = { 0, 1, c16 - 1, c16, c16 + 1 };
    for (size_t i = 0; i < sizeof sizes16 / sizeof sizes16[0]; i++)
        round_trip(g, sizes16[i], FILECRYPT_CHUNK_EXP_DEFAULT, 100 + (unsigned)i);
    round_trip(g, 3 * ((size_t)1 << 20) + 5, 20, 200);
}

/* Every file has its own CEK, file id and ephemeral keys. */
static void test_fresh_randoms(void **state)
{
    struct g *g = *state;
    uint8_t *pt = fe_data(7, 100);
    size_t l1, l2;
    uint8_t *c1 = enc(pt, 100, (const uint8_t(*)[65])g->a.pub, 1, 10, &l1);
    uint8_t *c2 = enc(pt, 100, (const uint8_t(*)[65])g->a.pub, 1, 10, &l2);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(c1 + 8, c2 + 8, 16);          /* file id */
    assert_memory_not_equal(c1 + 24 + 9, c2 + 24 + 9, 65); /* ephemeral point */
    assert_memory_not_equal(c1 + 24 + 122, c2 + 24 + 122, 100);
    free(c1);
    free(c2);
    free(pt);
}

static void test_several_recipients(void **state)
{
    struct g *g = *state;
    uint8_t rcpt[8][65];
    memcpy(rcpt[0], g->p_pub, 65);
    memcpy(rcpt[1], g->a.pub, 65);
    size_t n = 5000, ct_len = 0;
    uint8_t *pt = fe_data(42, n);
    uint8_t *ct = enc(pt, n, (const uint8_t(*)[65])rcpt, 2, 10, &ct_len);
    struct dec_out d;
    dec(&g->b, NULL, NULL, ct, ct_len, &d);
    expect_plain(&d, pt, n);
    assert_int_equal(d.apdus, 1);
    dec_free(&d);
    dec(NULL, g->p_priv, g->p_pub, ct, ct_len, &d);
    expect_plain(&d, pt, n);
    dec_free(&d);
    free(ct);

    /* Eight recipients: the most a file takes; each one opens. */
    mbedtls_ctr_drbg_context drbg;
    assert_int_equal(rng_drbg_seed(&drbg, "test recipients"), 0);
    uint8_t privs[8][32];
    memcpy(rcpt[7], g->w.pub, 65);
    for (unsigned i = 1; i < 7; i++)
        assert_int_equal(ec_keygen(mbedtls_ctr_drbg_random, &drbg, privs[i], rcpt[i]), CARD_OK);
    mbedtls_ctr_drbg_free(&drbg);
    ct = enc(pt, n, (const uint8_t(*)[65])rcpt, 8, 10, &ct_len);
    assert_int_equal(ct_len, enc_size(n, 8, 10));
    dec(&g->w, NULL, NULL, ct, ct_len, &d);
    expect_plain(&d, pt, n);
    dec_free(&d);
    for (unsigned i = 1; i < 7; i++) {
        dec(NULL, privs[i], rcpt[i], ct, ct_len, &d);
        expect_plain(&d, pt, n);
        dec_free(&d);
    }
    dec(&g->b, NULL, NULL, ct, ct_len, &d);
    assert_int_equal(d.rc, FILECRYPT_E_NOT_RECIPIENT);
    assert_int_equal(d.apdus, 0);
    dec_free(&d);
    free(ct);

    /* Refused recipient lists: none, nine, the same key twice, an invalid point. */
    char err[512];
    FILE *in = fopen("/dev/null", "rb");
    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])rcpt, 0, 10, NULL, err,
                                       sizeof err),
                     FILECRYPT_E_ARG);
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])rcpt, 9, 10, NULL, err,
                                       sizeof err),
                     FILECRYPT_E_ARG);
    memcpy(rcpt[2], rcpt[0], 65);
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])rcpt, 3, 10, NULL, err,
                                       sizeof err),
                     FILECRYPT_E_ARG);
    assert_non_null(strstr(err, "recipients 1 and 3 are the same key"));
    rcpt[1][64] ^= 0x01;
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])rcpt, 2, 10, NULL, err,
                                       sizeof err),
                     FILECRYPT_E_ARG);
    assert_non_null(strstr(err, "recipient 2: not a valid P-256 public point"));
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])g->a.pub, 1, 9, NULL, err,
                                       sizeof err),
                     FILECRYPT_E_ARG);
    assert_int_equal(filecrypt_encrypt(in, out, (const uint8_t(*)[65])g->a.pub, 1, 21, NULL,
                                       err, sizeof err),
                     FILECRYPT_E_ARG);
    fclose(in);
    fclose(out);
    assert_int_equal(blen, 0); /* nothing written for a refused call */
    free(buf);
    free(pt);
}

/* ---- damage: decrypt to a file, nothing may remain ---------------------------------------- */

/* Decrypts data (len bytes) with card k through the path API into DIR/out.bin and checks: the
 * error code is want (one of two when want2 != want), the message contains text (may be NULL),
 * and neither the output nor a temporary file of it exists. */
static void expect_refused(struct g *g, struct fe_card *k, const uint8_t *data, size_t len,
                           int want, int want2, const char *text, const char *what)
{
    char in[160], out[160];
    snprintf(in, sizeof in, "%s/damaged.icd", g->dir);
    snprintf(out, sizeof out, "%s/out.bin", g->dir);
    fe_write_file(in, data, len);
    unlink(out);
    char err[1024];
    uint64_t plen = 77;
    unsigned long before = k->c.apdus;
    int rc = filecard_decrypt_path(&k->c, k->pub, NULL, in, out, &plen, err, sizeof err);
    if (rc != want && rc != want2)
        fail_msg("%s: got %d (%s), expected %d", what, rc, err, want);
    if (text != NULL && strstr(err, text) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", what, err, text);
    assert_non_null(strstr(err, in)); /* the message names the file */
    print_message("  %-34s -> %s\n", what, err + strlen(in) + 2);
    assert_int_equal(plen, 0);
    assert_false(fe_exists(out));
    assert_int_equal(fe_count(g->dir, ".tmp-"), 0);
    assert_true(k->c.apdus - before <= 1);
    unlink(in);
}

static void test_damage(void **state)
{
    struct g *g = *state;
    /* 3 full chunks of 1 KiB and a final one of 500 bytes; recipients A and the partner. */
    uint8_t rcpt[2][65];
    memcpy(rcpt[0], g->a.pub, 65);
    memcpy(rcpt[1], g->p_pub, 65);
    const size_t n = 3 * 1024 + 500, hl = 24 + 2 * 122, rec = 1024 + 16;
    uint8_t *pt = fe_data(9, n);
    size_t len = 0;
    uint8_t *ct = enc(pt, n, (const uint8_t(*)[65])rcpt, 2, 10, &len);
    assert_int_equal(len, hl + 3 * rec + 516);
    uint8_t *b = malloc(len + 2000);
    assert_non_null(b);
    const size_t e0 = 24, e1 = 24 + 122; /* A's entry, the partner's */

    /* Positive control through the same path. */
    char in[160], out[160], err[512];
    snprintf(in, sizeof in, "%s/good.icd", g->dir);
    snprintf(out, sizeof out, "%s/good.out", g->dir);
    fe_write_file(in, ct, len);
    uint64_t plen = 0;
    if (filecard_decrypt_path(&g->b.c, g->b.pub, NULL, in, out, &plen, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(plen, n);
    size_t got_len = 0;
    uint8_t *got = fe_read_file(out, &got_len);
    assert_int_equal(got_len, n);
    assert_memory_equal(got, pt, n);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* plaintext is private */
    free(got);
    unlink(out);
    unlink(in);

#define FLIP(off, bit, code, code2, text, what)                                                \
    do {                                                                                       \
        memcpy(b, ct, len);                                                                    \
        b[(off)] ^= (uint8_t)(1u << (bit));                                                    \
        expect_refused(g, &g->b, b, len, code, code2, text, what);                             \
    } while (0)

    FLIP(0, 1, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "not an icdup encrypted file", "magic");
    FLIP(4, 1, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "unsupported file format version",
         "version byte");
    FLIP(5, 0, FILECRYPT_E_KEY, FILECRYPT_E_KEY, "does not unwrap", "chunk size exponent 10->11");
    FLIP(7, 7, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "reserved byte", "reserved byte");
    FLIP(8, 0, FILECRYPT_E_KEY, FILECRYPT_E_KEY, "the file header or this recipient entry",
         "file id (fixed header)");
    FLIP(23, 6, FILECRYPT_E_KEY, FILECRYPT_E_KEY, NULL, "last byte of the fixed header");
    FLIP(e0 + 0, 1, FILECRYPT_E_NOT_RECIPIENT, FILECRYPT_E_NOT_RECIPIENT, "not a recipient",
         "entry type");
    FLIP(e0 + 3, 2, FILECRYPT_E_NOT_RECIPIENT, FILECRYPT_E_NOT_RECIPIENT, "not a recipient",
         "entry key id");
    FLIP(e0 + 9, 0, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "not a valid P-256 point",
         "entry ephemeral point prefix");
    FLIP(e0 + 40, 3, FILECRYPT_E_FORMAT, FILECRYPT_E_KEY, NULL, "entry ephemeral point X");
    FLIP(e0 + 74, 0, FILECRYPT_E_KEY, FILECRYPT_E_KEY, "does not unwrap", "wrapped key");
    FLIP(e0 + 121, 7, FILECRYPT_E_KEY, FILECRYPT_E_KEY, "does not unwrap", "wrapped key tag");
    FLIP(hl + 100, 4, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 0 failed", "chunk 0 body");
    FLIP(hl + rec + 1023, 0, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 1 failed",
         "chunk 1 body, last byte");
    FLIP(hl + 3 * rec + 10, 5, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 3 failed",
         "final chunk body");
    FLIP(hl + 1024 + 3, 2, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 0 failed",
         "chunk 0 tag");
    FLIP(len - 1, 0, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 3 failed",
         "final chunk tag");

    /* A damaged entry of another recipient does not lock this card out. */
    memcpy(b, ct, len);
    b[e1 + 9] ^= 0x01;
    b[e1 + 80] ^= 0x01;
    struct dec_out d;
    dec(&g->b, NULL, NULL, b, len, &d);
    expect_plain(&d, pt, n);
    dec_free(&d);

    /* Two chunks swapped; the final chunk moved earlier. */
    memcpy(b, ct, len);
    memcpy(b + hl, ct + hl + rec, rec);
    memcpy(b + hl + rec, ct + hl, rec);
    expect_refused(g, &g->b, b, len, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 0 failed",
                   "chunks 0 and 1 swapped");
    memcpy(b, ct, len);
    memcpy(b + hl + 2 * rec, ct + hl + 2 * rec, rec);
    memcpy(b + hl + 2 * rec, ct + hl + 3 * rec, 516);
    memcpy(b + hl + 2 * rec + 516, ct + hl + 2 * rec, rec);
    expect_refused(g, &g->b, b, len, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, "chunk 2 failed",
                   "final chunk moved before chunk 2");

    /* Truncation: at each chunk boundary (final chunk missing), inside chunks and tags, in and
     * right after the header. */
    expect_refused(g, &g->b, ct, hl + 3 * rec, FILECRYPT_E_TRUNCATED, FILECRYPT_E_TRUNCATED,
                   "ends after chunk 2, which is not the final chunk",
                   "cut before the final chunk");
    expect_refused(g, &g->b, ct, hl + rec, FILECRYPT_E_TRUNCATED, FILECRYPT_E_TRUNCATED,
                   "ends after chunk 0", "cut after chunk 0");
    expect_refused(g, &g->b, ct, hl + 3 * rec + 300, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT,
                   "truncated", "cut inside the final chunk");
    expect_refused(g, &g->b, ct, hl + rec + 500, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT,
                   "chunk 1 failed", "cut inside chunk 1");
    expect_refused(g, &g->b, ct, hl + rec + 10, FILECRYPT_E_TRUNCATED, FILECRYPT_E_TRUNCATED,
                   "shorter than its 16-byte tag", "cut 10 bytes into chunk 1");
    expect_refused(g, &g->b, ct, len - 1, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT, NULL,
                   "last byte missing");
    expect_refused(g, &g->b, ct, hl, FILECRYPT_E_TRUNCATED, FILECRYPT_E_TRUNCATED,
                   "no chunk after the header", "header only");
    expect_refused(g, &g->b, ct, hl - 1, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT,
                   "truncated header", "cut in the recipient table");
    expect_refused(g, &g->b, ct, 10, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "truncated header",
                   "cut in the fixed header");
    expect_refused(g, &g->b, ct, 0, FILECRYPT_E_FORMAT, FILECRYPT_E_FORMAT, "empty input",
                   "empty file");

    /* Data appended after the final chunk: merged into a short final chunk, or after a full
     * one (a file of whole chunks), or a copy of a whole chunk. */
    memcpy(b, ct, len);
    memset(b + len, 0xA5, 1);
    expect_refused(g, &g->b, b, len + 1, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT,
                   "chunk 3 failed", "1 byte appended");
    memcpy(b + len, ct + hl, rec);
    expect_refused(g, &g->b, b, len + rec, FILECRYPT_E_CORRUPT, FILECRYPT_E_CORRUPT,
                   "chunk 3 failed", "a chunk appended");
    size_t wl = 0;
    uint8_t *whole = enc(pt, 2048, (const uint8_t(*)[65])g->a.pub, 1, 10, &wl);
    assert_int_equal(wl, 24 + 122 + 2 * rec);
    memcpy(b, whole, wl);
    memset(b + wl, 0, 16);
    expect_refused(g, &g->b, b, wl + 16, FILECRYPT_E_TRAILING, FILECRYPT_E_TRAILING,
                   "data after the final chunk (chunk 1)", "16 bytes after a full final chunk");
    expect_refused(g, &g->b, whole, wl - rec, FILECRYPT_E_TRUNCATED, FILECRYPT_E_TRUNCATED,
                   "ends after chunk 0", "whole chunks, final one cut");
    free(whole);
#undef FLIP
    free(b);
    free(ct);
    free(pt);
}

/* A card whose key is not among the recipients: a clear error, no PSO, no output. */
static void test_wrong_card(void **state)
{
    struct g *g = *state;
    uint8_t rcpt[2][65];
    memcpy(rcpt[0], g->a.pub, 65);
    memcpy(rcpt[1], g->p_pub, 65);
    uint8_t *pt = fe_data(3, 3000);
    size_t len = 0;
    uint8_t *ct = enc(pt, 3000, (const uint8_t(*)[65])rcpt, 2, 10, &len);
    expect_refused(g, &g->w, ct, len, FILECRYPT_E_NOT_RECIPIENT, FILECRYPT_E_NOT_RECIPIENT,
                   "W is not a recipient of this file", "wrong card");
    struct dec_out d;
    dec(&g->w, NULL, NULL, ct, len, &d);
    assert_int_equal(d.rc, FILECRYPT_E_NOT_RECIPIENT);
    assert_int_equal(d.apdus, 0);
    assert_int_equal(d.len, 0);
    dec_free(&d);
    free(ct);
    free(pt);
}

/* The card refuses PSO DECIPHER until the user PIN is verified: the card's message comes
 * through. */
static void test_pin_not_verified(void **state)
{
    struct g *g = *state;
    uint8_t *pt = fe_data(4, 10);
    size_t len = 0;
    uint8_t *ct = enc(pt, 10, (const uint8_t(*)[65])g->b.pub, 1, 10, &len);
    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    char err[512];
    assert_int_equal(transport_reset(g->b.t, atr, sizeof atr, &atr_len, err, sizeof err), 0);
    struct dec_out d;
    dec(&g->b, NULL, NULL, ct, len, &d);
    assert_int_equal(d.rc, FILECRYPT_E_CARD);
    assert_non_null(strstr(d.err, "PSO DECIPHER on B"));
    assert_non_null(strstr(d.err, "user PIN is not verified"));
    assert_int_equal(d.len, 0);
    dec_free(&d);
    assert_int_equal(
        cardop_verify(&g->b.c, PIN_REF_USER, (const uint8_t *)FE_PIN, strlen(FE_PIN)), 0);
    dec(&g->b, NULL, NULL, ct, len, &d);
    expect_plain(&d, pt, 10);
    dec_free(&d);

    /* The path API verifies a PIN it is given, only once the card is known to be a recipient:
     * a wrong card gets no APDU at all, a wrong PIN is the card's message. */
    char in[160], out[160];
    snprintf(in, sizeof in, "%s/pin.icd", g->dir);
    snprintf(out, sizeof out, "%s/pin.out", g->dir);
    fe_write_file(in, ct, len);
    struct secret_pin pin, wrong;
    fe_make_pin(&pin, FE_PIN);
    fe_make_pin(&wrong, "999999");
    unsigned long before = g->w.c.apdus;
    assert_int_equal(filecard_decrypt_path(&g->w.c, g->w.pub, &wrong, in, out, NULL, err,
                                           sizeof err),
                     FILECRYPT_E_NOT_RECIPIENT);
    assert_int_equal(g->w.c.apdus, before);
    assert_int_equal(transport_reset(g->b.t, atr, sizeof atr, &atr_len, err, sizeof err), 0);
    assert_int_equal(filecard_decrypt_path(&g->b.c, g->b.pub, &wrong, in, out, NULL, err,
                                           sizeof err),
                     FILECRYPT_E_CARD);
    assert_non_null(strstr(err, "VERIFY user PIN on B: wrong PIN, 2 tries left"));
    assert_false(fe_exists(out));
    before = g->b.c.apdus;
    uint64_t plen = 0;
    if (filecard_decrypt_path(&g->b.c, g->b.pub, &pin, in, out, &plen, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(plen, 10);
    assert_int_equal(g->b.c.apdus - before, 2); /* VERIFY, PSO DECIPHER */
    unlink(in);
    unlink(out);
    free(ct);
    free(pt);
}

/* Recovery's rewrap on real cards: A's entry replaced by W's key; the partner's entry, the
 * fixed header and the chunks unchanged. */
static void test_rewrap(void **state)
{
    struct g *g = *state;
    uint8_t rcpt[2][65];
    memcpy(rcpt[0], g->p_pub, 65);
    memcpy(rcpt[1], g->a.pub, 65);
    const size_t n = 2600;
    uint8_t *pt = fe_data(5, n);
    size_t len = 0;
    uint8_t *ct = enc(pt, n, (const uint8_t(*)[65])rcpt, 2, 10, &len);
    struct filecrypt_header h, nh;
    char err[512];
    assert_int_equal(filecrypt_header_parse(ct, len, &h, NULL, err, sizeof err), FILECRYPT_OK);
    uint8_t cek[32], a_id[8];
    assert_int_equal(filecard_open(&g->b.c, g->b.pub, &h, cek, err, sizeof err), FILECRYPT_OK);
    filecrypt_key_id(g->a.pub, a_id);
    unsigned replaced = 0;
    assert_int_equal(filecrypt_rewrap(&h, cek, a_id, g->w.pub, &nh, &replaced, err, sizeof err),
                     FILECRYPT_OK);
    assert_int_equal(replaced, 1);
    uint8_t *nct = fe_dup(ct, len);
    size_t hl = 0;
    assert_int_equal(filecrypt_header_encode(&nh, nct, len, &hl, err, sizeof err), FILECRYPT_OK);
    assert_int_equal(hl, 24 + 2 * 122);
    assert_memory_equal(nct, ct, 24 + 122); /* fixed header and the partner's entry */
    assert_memory_not_equal(nct + 24 + 122, ct + 24 + 122, 122);
    struct dec_out d;
    dec(&g->w, NULL, NULL, nct, len, &d);
    expect_plain(&d, pt, n);
    dec_free(&d);
    dec(NULL, g->p_priv, g->p_pub, nct, len, &d);
    expect_plain(&d, pt, n);
    dec_free(&d);
    dec(&g->b, NULL, NULL, nct, len, &d);
    assert_int_equal(d.rc, FILECRYPT_E_NOT_RECIPIENT);
    dec_free(&d);
    /* Refusals: the new key already there, the old key absent, an invalid new point. */
    assert_int_equal(filecrypt_rewrap(&nh, cek, a_id, g->w.pub, &h, NULL, err, sizeof err),
                     FILECRYPT_E_ARG);
    assert_non_null(strstr(err, "already a recipient"));
    uint8_t w_id[8];
    filecrypt_key_id(g->w.pub, w_id);
    assert_int_equal(filecrypt_rewrap(&h, cek, w_id, g->a.pub, &nh, NULL, err, sizeof err),
                     FILECRYPT_E_ARG); /* A is a recipient already */
    uint8_t bad[65];
    memcpy(bad, g->w.pub, 65);
    bad[64] ^= 1;
    assert_int_equal(filecrypt_rewrap(&h, cek, a_id, bad, &nh, NULL, err, sizeof err),
                     FILECRYPT_E_ARG);
    uint8_t none[8] = { 0 };
    assert_int_equal(filecrypt_rewrap(&h, cek, none, g->w.pub, &nh, NULL, err, sizeof err),
                     FILECRYPT_E_NOT_RECIPIENT);
    memset(cek, 0, sizeof cek);
    free(nct);
    free(ct);
    free(pt);
}

/* The path API: encrypt a file and decrypt it back; a refused encryption leaves no output. */
static void test_paths(void **state)
{
    struct g *g = *state;
    char plain[160], enc_p[160], back[160], err[512];
    snprintf(plain, sizeof plain, "%s/plain.txt", g->dir);
    snprintf(enc_p, sizeof enc_p, "%s/plain.txt.icd", g->dir);
    snprintf(back, sizeof back, "%s/back.txt", g->dir);
    const size_t n = 70000;
    uint8_t *pt = fe_data(11, n);
    fe_write_file(plain, pt, n);
    uint64_t plen = 0;
    if (filecrypt_encrypt_path(plain, enc_p, (const uint8_t(*)[65])g->a.pub, 1,
                               FILECRYPT_CHUNK_EXP_DEFAULT, &plen, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(plen, n);
    if (filecard_decrypt_path(&g->a.c, g->a.pub, NULL, enc_p, back, &plen, err, sizeof err) !=
        0)
        fail_msg("%s", err);
    assert_int_equal(plen, n);
    size_t bl = 0;
    uint8_t *bb = fe_read_file(back, &bl);
    assert_int_equal(bl, n);
    assert_memory_equal(bb, pt, n);
    free(bb);
    /* Decrypting over an existing file replaces it only on success. */
    fe_write_file(back, (const uint8_t *)"old", 3);
    uint8_t *ct = fe_read_file(enc_p, &bl);
    ct[bl - 1] ^= 1;
    fe_write_file(enc_p, ct, bl);
    free(ct);
    assert_int_equal(filecard_decrypt_path(&g->a.c, g->a.pub, NULL, enc_p, back, &plen, err,
                                           sizeof err),
                     FILECRYPT_E_CORRUPT);
    bb = fe_read_file(back, &bl);
    assert_int_equal(bl, 3);
    assert_memory_equal(bb, "old", 3);
    free(bb);
    /* Missing input; an output directory that does not exist. */
    char missing[200], nodir[200];
    snprintf(missing, sizeof missing, "%s/missing", g->dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x", g->dir);
    assert_int_equal(filecrypt_encrypt_path(missing, enc_p, (const uint8_t(*)[65])g->a.pub, 1,
                                            10, NULL, err, sizeof err),
                     FILECRYPT_E_IO);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(filecrypt_encrypt_path(plain, nodir, (const uint8_t(*)[65])g->a.pub, 1,
                                            10, NULL, err, sizeof err),
                     FILECRYPT_E_IO);
    assert_non_null(strstr(err, "cannot create a temporary file"));
    assert_int_equal(fe_count(g->dir, ".tmp-"), 0);
    unlink(plain);
    unlink(enc_p);
    unlink(back);
    free(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_decrypt),
        cmocka_unit_test(test_vectors_encrypt),
        cmocka_unit_test(test_header_parse),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_fresh_randoms),
        cmocka_unit_test(test_several_recipients),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_wrong_card),
        cmocka_unit_test(test_pin_not_verified),
        cmocka_unit_test(test_rewrap),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

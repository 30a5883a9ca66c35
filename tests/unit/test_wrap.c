/* The approval station (host/wrap.c, docs/clone.md "Approval station"): an externally
 * generated P-256 key (PEM or DER written here by mbedtls, or 64 hex digits) is wrapped on the
 * host under the KEK of all the shares, imported into a simulated card personalized with the
 * default profile (host/profile.c), and then:
 *   - DF11 says origin external (03), source serial zero, the group's KCV, export count 0;
 *   - the card's public key and its NVM key file are that key's, and PSO DECIPHER answers
 *     exactly the host's ECDH with the known private key (the card holds that very key);
 *   - a blob wrapped under a wrong share set is refused (6985) and the card is unchanged;
 *   - a key of another type or curve, an encrypted key, a malformed or loose key file, and a
 *     share set that is not share.1 .. share.N are refused with a clear message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "blob.h"
#include "card_err.h"
#include "card_ops.h"
#include "dup.h"
#include "ec.h"
#include "fs.h"
#include "ins.h"
#include "kek.h"
#include "keys.h"
#include "profile.h"
#include "secrets.h"
#include "sim_card.h"
#include "sw.h"
#include "transport.h"
#include "wrap.h"

static const char PIN[] = "123456", PUK[] = "12345678", ADMIN[] = "87654321";

/* ---- fixtures ----------------------------------------------------------------------------- */

struct ctx {
    char dir[64];
    char nvm[160];
    char uri[180];
    mbedtls_ctr_drbg_context drbg; /* deterministic: the keys of a run are reproducible */
};

static int fixed_entropy(void *ctx, unsigned char *buf, size_t len)
{
    unsigned *counter = ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(*counter * 31u + i * 7u + 3u);
    (*counter)++;
    return 0;
}

static unsigned entropy_counter;

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    snprintf(c->dir, sizeof c->dir, "/tmp/icdup-test-wrap-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        free(c);
        return -1;
    }
    snprintf(c->nvm, sizeof c->nvm, "%s/card.nvm", c->dir);
    snprintf(c->uri, sizeof c->uri, "sim:%s", c->nvm);
    mbedtls_ctr_drbg_init(&c->drbg);
    entropy_counter = 0;
    static const char pers[] = "test_wrap";
    if (mbedtls_ctr_drbg_seed(&c->drbg, fixed_entropy, &entropy_counter,
                              (const unsigned char *)pers, sizeof pers - 1) != 0) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    DIR *d = opendir(c->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", c->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->dir);
    mbedtls_ctr_drbg_free(&c->drbg);
    free(c);
    return 0;
}

static void share_value(unsigned i, uint8_t out[32])
{
    for (unsigned j = 0; j < 32; j++)
        out[j] = (uint8_t)(0x23 * i + j * 5 + 9);
}

/* Shares 1..n of the test group (bitmap set to exactly those). */
static void group_shares(struct secrets *s, unsigned n)
{
    secrets_init(s);
    for (unsigned i = 1; i <= n; i++) {
        share_value(i, s->share[i - 1]);
        s->shares |= (uint8_t)(1u << (i - 1));
    }
}

static void make_pin(struct secret_pin *p, const char *v)
{
    memset(p, 0, sizeof *p);
    p->len = strlen(v);
    memcpy(p->v, v, p->len);
}

/* `icdup init` with every share of an n-share group set at issuance (the KCV is complete). */
static void init_card(const char *uri, unsigned n)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    struct cardop c;
    cardop_init(&c, t, "card");
    struct secrets s;
    group_shares(&s, n);
    make_pin(&s.pin, PIN);
    make_pin(&s.puk, PUK);
    make_pin(&s.admin, ADMIN);
    struct profile_options po = { .shares = n, .secrets = &s };
    if (profile_run(&c, &po, NULL, NULL, err, sizeof err) != 0)
        fail_msg("profile_run: %s", err);
    secrets_wipe(&s);
    transport_close(t);
}

static struct transport *open_card(const char *uri, struct cardop *c)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    cardop_init(c, t, "card");
    return t;
}

/* Writes len bytes to dir/name with the given mode. Returns the path in out. */
static void write_file(const char *dir, const char *name, const void *data, size_t len,
                       mode_t mode, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    unlink(out);
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *len = fread(buf, 1, cap, f);
    assert_int_equal(fgetc(f), EOF); /* all of it */
    fclose(f);
}

/* A fresh EC key on curve id in pk (set up here), from the test's deterministic generator. */
static void gen_ec(struct ctx *c, mbedtls_pk_context *pk, mbedtls_ecp_group_id id)
{
    mbedtls_pk_init(pk);
    assert_int_equal(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    assert_int_equal(mbedtls_ecp_gen_key(id, mbedtls_pk_ec(*pk), mbedtls_ctr_drbg_random,
                                         &c->drbg),
                     0);
}

/* The scalar and the public point of a P-256 key in pk. */
static void ec_parts(mbedtls_pk_context *pk, uint8_t d[32], uint8_t q[65])
{
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
    assert_int_equal(mbedtls_mpi_write_binary(&ec->d, d, 32), 0);
    size_t qlen = 0;
    assert_int_equal(mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q,
                                                    MBEDTLS_ECP_PF_UNCOMPRESSED, &qlen, q, 65),
                     0);
    assert_int_equal(qlen, 65);
}

/* Writes pk as PEM to dir/name (mode 0600). */
static void write_pem(struct ctx *c, mbedtls_pk_context *pk, const char *name, char *path,
                      size_t cap)
{
    unsigned char pem[4096];
    assert_int_equal(mbedtls_pk_write_key_pem(pk, pem, sizeof pem), 0);
    write_file(c->dir, name, pem, strlen((char *)pem), 0600, path, cap);
    memset(pem, 0, sizeof pem);
}

/* The private key pair (scalar || point) in 4B10 of a simulated card's NVM image. */
static void read_private_key(const char *nvm_path, uint8_t kp[97])
{
    struct sim_card sc;
    char err[256];
    if (sim_card_open(&sc, nvm_path, err, sizeof err) != 0)
        fail_msg("sim_card_open: %s", err);
    struct keys_files kf;
    assert_int_equal(keys_locate(&sc.card.nvm, &kf), CARD_OK);
    assert_int_equal(fs_read(&sc.card.nvm, &kf.priv, 0, kp, 97), CARD_OK);
    sim_card_close(&sc);
}

/* Asserts that wrap_load_key refuses path with a message containing each of the words, and
 * leaves priv untouched. */
static void expect_key_refused(const char *path, const char *w1, const char *w2)
{
    uint8_t priv[32];
    memset(priv, 0xA5, sizeof priv);
    char err[512] = "";
    assert_int_equal(wrap_load_key(path, priv, err, sizeof err), WRAP_E_KEY);
    print_message("refused: %s\n", err);
    if (strstr(err, w1) == NULL || (w2 != NULL && strstr(err, w2) == NULL))
        fail_msg("message \"%s\" lacks \"%s\"%s%s", err, w1, w2 ? " or " : "", w2 ? w2 : "");
    for (size_t i = 0; i < sizeof priv; i++)
        assert_int_equal(priv[i], 0xA5);
}

/* ---- wrap, import, prove ------------------------------------------------------------------ */

/* Wraps priv under the shares s, and checks the blob on the host: format 1, unbound, source
 * serial zero, export count 0, the group's KCV, and it opens to priv with the group's KEK. */
static void wrap_and_check(const struct secrets *s, unsigned n, const uint8_t priv[32],
                           const uint8_t pub[65], struct wrap_result *r)
{
    char err[512];
    if (wrap_key(s, "test shares", priv, r, err, sizeof err) != WRAP_OK)
        fail_msg("wrap_key: %s", err);
    assert_int_equal(r->n, n);
    assert_int_equal(r->blob_len, BLOB_LEN_UNBOUND);
    assert_memory_equal(r->pub, pub, 65);
    uint8_t kek[32], kcv[8];
    assert_int_equal(kek_derive((const uint8_t(*)[32])s->share, n, kek), CARD_OK);
    assert_int_equal(kek_kcv(kek, kcv), CARD_OK);
    assert_memory_equal(r->kcv, kcv, 8);
    struct blob_header h;
    assert_int_equal(blob_parse_header(r->blob, r->blob_len, &h), CARD_OK);
    static const uint8_t zero[8];
    assert_false(h.bound);
    assert_int_equal(h.attrs, 0);
    assert_memory_equal(h.src_serial, zero, 8);
    assert_int_equal(h.export_count, 0);
    assert_memory_equal(h.kcv, kcv, 8);
    uint8_t scalar[32];
    assert_int_equal(blob_unwrap(kek, NULL, r->blob, r->blob_len, NULL, scalar), CARD_OK);
    assert_memory_equal(scalar, priv, 32);
    memset(scalar, 0, sizeof scalar);
    memset(kek, 0, sizeof kek);
}

/* The card (user PIN verified) holds exactly priv: for a fresh host point E = e * G, its PSO
 * DECIPHER answers ECDH(priv, E), which the host computes with the known private key, and
 * which equals ECDH(e, pub). */
static void prove_same_key(struct ctx *c, struct cardop *card, const uint8_t priv[32],
                           const uint8_t pub[65])
{
    for (int round = 0; round < 2; round++) {
        uint8_t e[32], e_pub[65], host_x[32], eph_x[32], card_x[32];
        assert_int_equal(ec_keygen(mbedtls_ctr_drbg_random, &c->drbg, e, e_pub), CARD_OK);
        assert_int_equal(ec_ecdh(priv, e_pub, host_x), CARD_OK);
        assert_int_equal(ec_ecdh(e, pub, eph_x), CARD_OK);
        assert_memory_equal(host_x, eph_x, 32);
        if (cardop_decipher(card, e_pub, card_x) != 0)
            fail_msg("%s", card->err);
        assert_memory_equal(card_x, host_x, 32);
    }
    /* And the clone's proof agrees. */
    char err[512];
    if (dup_prove(card, pub, err, sizeof err) != DUP_OK)
        fail_msg("dup_prove: %s", err);
}

/* Imports r into the card behind uri and checks everything the card says about it. */
static void import_and_check(struct ctx *c, const struct wrap_result *r, const uint8_t priv[32],
                             const uint8_t pub[65])
{
    struct cardop card;
    struct transport *t = open_card(c->uri, &card);
    struct cardop_group g;
    assert_int_equal(cardop_key_group(&card, &g), 0);
    assert_true(g.complete);
    assert_memory_equal(g.kcv, r->kcv, 8);
    assert_int_equal(cardop_verify(&card, PIN_REF_USER, (const uint8_t *)PIN, strlen(PIN)), 0);
    if (cardop_import(&card, r->blob, r->blob_len) != 0)
        fail_msg("%s", card.err);

    struct cardop_key_state st;
    assert_int_equal(cardop_key_state(&card, &st), 0);
    static const uint8_t zero[8];
    assert_true(st.present);
    assert_int_equal(st.origin, CARDOP_ORIGIN_EXTERNAL);
    assert_int_equal(st.origin, 0x03);
    assert_memory_equal(st.src_serial, zero, 8);
    assert_memory_equal(st.src_kcv, r->kcv, 8);
    assert_int_equal(st.export_count, 0);
    assert_int_equal(st.flags & CARDOP_FLAG_BACKUP, 0);

    uint8_t card_pub[65];
    assert_int_equal(cardop_read_pubkey(&card, card_pub), 0);
    assert_memory_equal(card_pub, pub, 65);
    prove_same_key(c, &card, priv, pub);
    transport_close(t);

    uint8_t kp[97];
    read_private_key(c->nvm, kp);
    assert_memory_equal(kp, priv, 32);
    assert_memory_equal(kp + 32, pub, 65);
    memset(kp, 0, sizeof kp);
}

static void test_pem_key_wrapped_and_imported(void **state)
{
    struct ctx *c = *state;
    mbedtls_pk_context pk;
    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP256R1);
    uint8_t d[32], q[65];
    ec_parts(&pk, d, q);
    char path[256];
    write_pem(c, &pk, "key.pem", path, sizeof path);
    mbedtls_pk_free(&pk);

    uint8_t priv[32];
    char err[512];
    if (wrap_load_key(path, priv, err, sizeof err) != WRAP_OK)
        fail_msg("wrap_load_key: %s", err);
    assert_memory_equal(priv, d, 32);

    struct secrets s;
    group_shares(&s, 3);
    struct wrap_result r;
    wrap_and_check(&s, 3, priv, q, &r);
    /* A second wrap draws another nonce: another blob of the same key. */
    struct wrap_result r2;
    wrap_and_check(&s, 3, priv, q, &r2);
    assert_memory_not_equal(r.blob, r2.blob, BLOB_LEN_UNBOUND);
    secrets_wipe(&s);

    init_card(c->uri, 3);
    import_and_check(c, &r, priv, q);
    memset(priv, 0, sizeof priv);
    memset(d, 0, sizeof d);
}

/* DER (SEC1, as mbedtls writes it), PKCS#8 in DER and PEM, and the hex form give the same
 * scalar; N = 1 and N = 8. */
static void test_der_and_hex_forms(void **state)
{
    struct ctx *c = *state;
    mbedtls_pk_context pk;
    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP256R1);
    uint8_t d[32], q[65];
    ec_parts(&pk, d, q);
    unsigned char der[1024];
    int n = mbedtls_pk_write_key_der(&pk, der, sizeof der);
    assert_true(n > 0);
    char der_path[256], hex_path[256];
    write_file(c->dir, "key.der", der + sizeof der - (size_t)n, (size_t)n, 0600, der_path,
               sizeof der_path);
    mbedtls_pk_free(&pk);

    char hex[80];
    size_t hl = 0;
    hl += (size_t)snprintf(hex + hl, sizeof hex - hl, "  ");
    for (size_t i = 0; i < 32; i++)
        hl += (size_t)snprintf(hex + hl, sizeof hex - hl, i % 2 ? "%02x" : "%02X", d[i]);
    hl += (size_t)snprintf(hex + hl, sizeof hex - hl, "\r\n\n");
    write_file(c->dir, "key.hex", hex, hl, 0400, hex_path, sizeof hex_path);

    /* PKCS#8 (what openssl genpkey writes), built around the SEC1 key: SEQUENCE { version 0,
     * AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, OCTET STRING { SEC1 } }. */
    const uint8_t *sec1 = der + sizeof der - (size_t)n;
    assert_true(n < 128);
    static const uint8_t alg[] = { 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48,
                                   0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE,
                                   0x3D, 0x03, 0x01, 0x07 };
    uint8_t p8[256];
    size_t body = sizeof alg + 2 + (size_t)n, p8_len = 0;
    p8[p8_len++] = 0x30;
    p8[p8_len++] = 0x81;
    p8[p8_len++] = (uint8_t)body;
    memcpy(p8 + p8_len, alg, sizeof alg);
    p8_len += sizeof alg;
    p8[p8_len++] = 0x04;
    p8[p8_len++] = (uint8_t)n;
    memcpy(p8 + p8_len, sec1, (size_t)n);
    p8_len += (size_t)n;
    char p8_path[256], p8_pem_path[256];
    write_file(c->dir, "key.p8.der", p8, p8_len, 0600, p8_path, sizeof p8_path);
    unsigned char b64[512];
    size_t b64_len = 0;
    assert_int_equal(mbedtls_base64_encode(b64, sizeof b64, &b64_len, p8, p8_len), 0);
    char pem[700];
    size_t pl = (size_t)snprintf(pem, sizeof pem, "-----BEGIN PRIVATE KEY-----\n");
    for (size_t off = 0; off < b64_len; off += 64)
        pl += (size_t)snprintf(pem + pl, sizeof pem - pl, "%.64s\n", (const char *)b64 + off);
    pl += (size_t)snprintf(pem + pl, sizeof pem - pl, "-----END PRIVATE KEY-----\n");
    assert_true(pl < sizeof pem);
    write_file(c->dir, "key.p8.pem", pem, pl, 0600, p8_pem_path, sizeof p8_pem_path);

    uint8_t p1[32], p2[32], p3[32], p4[32];
    char err[512];
    if (wrap_load_key(der_path, p1, err, sizeof err) != WRAP_OK)
        fail_msg("DER: %s", err);
    if (wrap_load_key(hex_path, p2, err, sizeof err) != WRAP_OK)
        fail_msg("hex: %s", err);
    if (wrap_load_key(p8_path, p3, err, sizeof err) != WRAP_OK)
        fail_msg("PKCS#8 DER: %s", err);
    if (wrap_load_key(p8_pem_path, p4, err, sizeof err) != WRAP_OK)
        fail_msg("PKCS#8 PEM: %s", err);
    assert_memory_equal(p1, d, 32);
    assert_memory_equal(p2, d, 32);
    assert_memory_equal(p3, d, 32);
    assert_memory_equal(p4, d, 32);
    memset(p3, 0, sizeof p3);
    memset(p4, 0, sizeof p4);
    memset(p8, 0, sizeof p8);
    memset(pem, 0, sizeof pem);

    struct secrets s;
    struct wrap_result r;
    group_shares(&s, 8);
    wrap_and_check(&s, 8, p2, q, &r);
    init_card(c->uri, 8);
    import_and_check(c, &r, p2, q);

    /* N = 1 on another card, from the DER key. */
    snprintf(c->nvm, sizeof c->nvm, "%s/card1.nvm", c->dir);
    snprintf(c->uri, sizeof c->uri, "sim:%s", c->nvm);
    group_shares(&s, 1);
    wrap_and_check(&s, 1, p1, q, &r);
    init_card(c->uri, 1);
    import_and_check(c, &r, p1, q);
    secrets_wipe(&s);
    memset(p1, 0, sizeof p1);
    memset(p2, 0, sizeof p2);
}

/* A blob wrapped under a share set other than the card's is refused with 6985 at IMPORT, and
 * the card's NVM is byte for byte what it was: one share changed, a share missing (N = 2 for
 * a group of 3), an extra share (N = 4). A card that already holds a key keeps it too. */
static void test_wrong_shares_refused_card_unchanged(void **state)
{
    struct ctx *c = *state;
    mbedtls_pk_context pk;
    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP256R1);
    uint8_t d[32], q[65];
    ec_parts(&pk, d, q);
    mbedtls_pk_free(&pk);
    init_card(c->uri, 3);

    size_t img_len = 0;
    struct stat st;
    assert_int_equal(stat(c->nvm, &st), 0);
    img_len = (size_t)st.st_size;
    uint8_t *before = malloc(img_len), *after = malloc(img_len);
    assert_non_null(before);
    assert_non_null(after);

    for (int variant = 0; variant < 4; variant++) {
        struct secrets s;
        unsigned n = 3;
        group_shares(&s, 3);
        if (variant == 0) {
            s.share[1][7] ^= 0x01; /* share 2 off by one bit */
        } else if (variant == 1) {
            n = 2;
            group_shares(&s, 2);
        } else if (variant == 2) {
            n = 4;
            group_shares(&s, 4);
        } else {
            /* the right shares in the wrong order */
            uint8_t tmp[32];
            memcpy(tmp, s.share[0], 32);
            memcpy(s.share[0], s.share[2], 32);
            memcpy(s.share[2], tmp, 32);
        }
        struct wrap_result r;
        char err[512];
        if (wrap_key(&s, "test shares", d, &r, err, sizeof err) != WRAP_OK)
            fail_msg("wrap_key: %s", err);
        assert_int_equal(r.n, n);
        secrets_wipe(&s);

        struct cardop card;
        struct transport *t = open_card(c->uri, &card);
        struct cardop_group g;
        assert_int_equal(cardop_key_group(&card, &g), 0);
        assert_memory_not_equal(g.kcv, r.kcv, 8);
        assert_int_equal(cardop_verify(&card, PIN_REF_USER, (const uint8_t *)PIN, strlen(PIN)),
                         0);
        /* With a key on the card, the admin PIN allows a replacement: only the KCV refuses. */
        if (variant == 3)
            assert_int_equal(cardop_verify(&card, PIN_REF_ADMIN, (const uint8_t *)ADMIN,
                                           strlen(ADMIN)),
                             0);
        size_t got = 0;
        read_file(c->nvm, before, img_len, &got);
        assert_int_equal(got, img_len);
        assert_int_equal(cardop_import(&card, r.blob, r.blob_len), CARDOP_E_SW);
        assert_int_equal(card.sw, SW_CONDITIONS_NOT_SATISFIED);
        assert_int_equal(card.sw, 0x6985);
        assert_non_null(strstr(card.err, "KCV differs"));
        read_file(c->nvm, after, img_len, &got);
        assert_int_equal(got, img_len);
        assert_memory_equal(before, after, img_len);

        struct cardop_key_state ks;
        assert_int_equal(cardop_key_state(&card, &ks), 0);
        if (variant < 3) {
            assert_false(ks.present);
            assert_int_equal(ks.origin, CARDOP_ORIGIN_NONE);
            uint8_t pub[65];
            assert_int_equal(cardop_read_pubkey(&card, pub), CARDOP_E_SW);
            assert_int_equal(card.sw, SW_REF_DATA_NOT_FOUND);
        } else {
            assert_true(ks.present);
            assert_int_equal(ks.origin, CARDOP_ORIGIN_GENERATED);
        }
        if (variant == 2) {
            /* Before the last variant the card gets a key of its own: it keeps it too. */
            uint8_t pub[65];
            if (cardop_generate(&card, pub) != 0)
                fail_msg("%s", card.err);
        }
        transport_close(t);
    }
    free(before);
    free(after);
    memset(d, 0, sizeof d);
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void test_other_keys_refused(void **state)
{
    struct ctx *c = *state;
    char path[256];
    mbedtls_pk_context pk;

    /* P-384 and secp256k1 (a 256-bit curve, but not P-256). */
    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP384R1);
    write_pem(c, &pk, "p384.pem", path, sizeof path);
    mbedtls_pk_free(&pk);
    expect_key_refused(path, "not P-256", "secp384r1");

    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP256K1);
    write_pem(c, &pk, "k256.pem", path, sizeof path);
    mbedtls_pk_free(&pk);
    expect_key_refused(path, "not P-256", "secp256k1");

    /* RSA (a small one: only its type matters). */
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), mbedtls_ctr_drbg_random, &c->drbg,
                                         512, 65537),
                     0);
    write_pem(c, &pk, "rsa.pem", path, sizeof path);
    mbedtls_pk_free(&pk);
    expect_key_refused(path, "RSA", "not an EC P-256 private key");

    /* A public key only. */
    gen_ec(c, &pk, MBEDTLS_ECP_DP_SECP256R1);
    unsigned char pem[2048];
    assert_int_equal(mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof pem), 0);
    write_file(c->dir, "pub.pem", pem, strlen((char *)pem), 0600, path, sizeof path);
    expect_key_refused(path, "not a private key", NULL);

    /* A P-256 key whose stored public key is another key's. */
    mbedtls_pk_context other;
    gen_ec(c, &other, MBEDTLS_ECP_DP_SECP256R1);
    assert_int_equal(mbedtls_ecp_copy(&mbedtls_pk_ec(pk)->Q, &mbedtls_pk_ec(other)->Q), 0);
    write_pem(c, &pk, "mixed.pem", path, sizeof path);
    mbedtls_pk_free(&other);
    mbedtls_pk_free(&pk);
    expect_key_refused(path, "does not belong", NULL);

    /* An encrypted PEM (no passphrase is ever asked). */
    static const char enc[] =
        "-----BEGIN EC PRIVATE KEY-----\n"
        "Proc-Type: 4,ENCRYPTED\n"
        "DEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n"
        "\n"
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n"
        "-----END EC PRIVATE KEY-----\n";
    write_file(c->dir, "enc.pem", enc, sizeof enc - 1, 0600, path, sizeof path);
    expect_key_refused(path, "encrypted", NULL);
}

static void test_key_file_refusals(void **state)
{
    struct ctx *c = *state;
    char path[256];
    /* Hex of the wrong length, zero, the group order n and above it. */
    write_file(c->dir, "short.hex", "0011", 4, 0600, path, sizeof path);
    expect_key_refused(path, "4 hex digits", "64 digits");
    static const char zero[] =
        "0000000000000000000000000000000000000000000000000000000000000000\n";
    write_file(c->dir, "zero.hex", zero, sizeof zero - 1, 0600, path, sizeof path);
    expect_key_refused(path, "not a valid P-256 private key", NULL);
    static const char order[] =
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    write_file(c->dir, "order.hex", order, sizeof order - 1, 0600, path, sizeof path);
    expect_key_refused(path, "not a valid P-256 private key", NULL);
    /* n - 1 is the largest valid scalar. */
    static const char top[] =
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632550";
    write_file(c->dir, "top.hex", top, sizeof top - 1, 0600, path, sizeof path);
    uint8_t priv[32];
    char err[512];
    if (wrap_load_key(path, priv, err, sizeof err) != WRAP_OK)
        fail_msg("n - 1: %s", err);
    assert_int_equal(priv[31], 0x50);
    memset(priv, 0, sizeof priv);

    /* Not a key at all, empty, a directory, missing, readable by others. */
    write_file(c->dir, "junk", "hello, world\n", 13, 0600, path, sizeof path);
    expect_key_refused(path, "not a private key in PEM, DER or 64 hex digits", NULL);
    write_file(c->dir, "empty", "", 0, 0600, path, sizeof path);
    expect_key_refused(path, "is empty", NULL);
    expect_key_refused(c->dir, "not a regular file", NULL);
    snprintf(path, sizeof path, "%s/missing.pem", c->dir);
    expect_key_refused(path, "cannot open", NULL);
    write_file(c->dir, "loose.hex", top, sizeof top - 1, 0644, path, sizeof path);
    expect_key_refused(path, "group or others", "chmod 600");

    /* No key bytes in any message. */
    write_file(c->dir, "odd.hex", top, sizeof top - 2, 0600, path, sizeof path);
    assert_int_equal(wrap_load_key(path, priv, err, sizeof err), WRAP_E_KEY);
    assert_null(strstr(err, "FFFFFFFF"));
    assert_non_null(strstr(err, "63 hex digits"));
}

static void test_share_sets(void **state)
{
    (void)state;
    struct secrets s;
    char err[512];
    secrets_init(&s);
    assert_int_equal(wrap_share_count(&s, "secrets file x", err, sizeof err), 0);
    assert_non_null(strstr(err, "secrets file x has no share"));
    for (unsigned n = 1; n <= 8; n++) {
        group_shares(&s, n);
        assert_int_equal(wrap_share_count(&s, "x", err, sizeof err), n);
    }
    group_shares(&s, 3);
    s.shares = 0x05; /* 1 and 3 */
    assert_int_equal(wrap_share_count(&s, "secrets file x", err, sizeof err), 0);
    assert_non_null(strstr(err, "shares 1 and 3"));
    assert_non_null(strstr(err, "share 2 missing"));
    s.shares = 0x06; /* 2 and 3 */
    assert_int_equal(wrap_share_count(&s, "x", err, sizeof err), 0);
    assert_non_null(strstr(err, "share 1 missing"));
    s.shares = 0x8B; /* 1, 2, 4 and 8 */
    assert_int_equal(wrap_share_count(&s, "x", err, sizeof err), 0);
    assert_non_null(strstr(err, "shares 3, 5, 6 and 7 missing"));

    /* wrap_key refuses such a set, and an invalid scalar, leaving r zero. */
    uint8_t priv[32];
    memset(priv, 0x11, sizeof priv);
    struct wrap_result r;
    memset(&r, 0x77, sizeof r);
    s.shares = 0x05;
    assert_int_equal(wrap_key(&s, "x", priv, &r, err, sizeof err), WRAP_E_SHARES);
    assert_int_equal(r.blob_len, 0);
    group_shares(&s, 2);
    memset(priv, 0, sizeof priv);
    memset(&r, 0x77, sizeof r);
    assert_int_equal(wrap_key(&s, "x", priv, &r, err, sizeof err), WRAP_E_KEY);
    assert_int_equal(r.blob_len, 0);
    assert_int_equal(r.n, 0);
    secrets_wipe(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pem_key_wrapped_and_imported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_der_and_hex_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shares_refused_card_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_sets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Shared helpers of the data-file tests (test_filecrypt.c, test_recover.c): simulated cards
 * (sim: NVM images in a temporary directory) personalized with the default key profile
 * (host/profile.c), keys generated on a card and cloned to another with host/dup.c, vector
 * files, test data. Include after <cmocka.h>. Everything is static inline so that each test
 * uses only what it needs. */
#ifndef FILE_ENV_H
#define FILE_ENV_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "card_ops.h"
#include "dup.h"
#include "ins.h"
#include "profile.h"
#include "secrets.h"
#include "transport.h"

#define FE_PIN "123456"
#define FE_PUK "12345678"
#define FE_ADMIN "87654321"

static inline void fe_make_pin(struct secret_pin *p, const char *v)
{
    memset(p, 0, sizeof *p);
    p->len = strlen(v);
    memcpy(p->v, v, p->len);
}

/* Deterministic, well-mixed test data: byte i of stream seed. */
static inline uint8_t fe_pat(unsigned seed, size_t i)
{
    uint32_t x = (uint32_t)seed * 0x9E3779B1u + (uint32_t)i * 0x85EBCA77u + 0x165667B1u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    x *= 0x297A2D39u;
    x ^= x >> 15;
    return (uint8_t)x;
}

/* An exact-size heap buffer of n bytes of stream seed (ASan sees any read past the end). */
static inline uint8_t *fe_data(unsigned seed, size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = fe_pat(seed, i);
    return p;
}

static inline uint8_t *fe_dup(const uint8_t *src, size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    if (n > 0)
        memcpy(p, src, n);
    return p;
}

static inline void fe_rm_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        if ((size_t)snprintf(p, sizeof p, "%s/%.255s", path, e->d_name) >= sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            fe_rm_dir(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

/* Number of entries of dir whose name contains part (NULL: all but . and ..). */
static inline unsigned fe_count(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (part == NULL || strstr(e->d_name, part) != NULL)
            n++;
    }
    closedir(d);
    return n;
}

static inline bool fe_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads a whole file into an exact-size heap buffer. */
static inline uint8_t *fe_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static inline void fe_write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot create %s", path);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static inline struct transport *fe_open(const char *uri)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    return t;
}

/* Personalizes a blank card with the default profile: a group of one share (value 0x5C...),
 * set at issuance, so that a clone needs no share from the host. */
static inline void fe_init_card(const char *uri)
{
    struct transport *t = fe_open(uri);
    struct cardop c;
    cardop_init(&c, t, "card");
    struct secrets s;
    secrets_init(&s);
    memset(s.share[0], 0x5C, 32);
    s.shares = 0x01;
    fe_make_pin(&s.pin, FE_PIN);
    fe_make_pin(&s.puk, FE_PUK);
    fe_make_pin(&s.admin, FE_ADMIN);
    struct profile_options po = { .shares = 1, .secrets = &s };
    char err[512];
    if (profile_run(&c, &po, NULL, NULL, err, sizeof err) != 0)
        fail_msg("profile_run(%s): %s", uri, err);
    secrets_wipe(&s);
    transport_close(t);
}

/* Generates a key pair on a personalized card. */
static inline void fe_generate(const char *uri, uint8_t pub[65])
{
    struct transport *t = fe_open(uri);
    struct cardop c;
    cardop_init(&c, t, "card");
    if (cardop_verify(&c, PIN_REF_USER, (const uint8_t *)FE_PIN, strlen(FE_PIN)) != 0 ||
        cardop_generate(&c, pub) != 0)
        fail_msg("generate on %s: %s", uri, c.err);
    transport_close(t);
}

/* src generates its key and dst imports it (icdup clone), proved. pub gets the key. */
static inline void fe_clone(const char *src_uri, const char *dst_uri, const char *state_dir,
                            uint8_t pub[65])
{
    struct transport *src = fe_open(src_uri), *dst = fe_open(dst_uri);
    struct secret_pin sp, dp;
    fe_make_pin(&sp, FE_PIN);
    fe_make_pin(&dp, FE_PIN);
    struct dup_options o;
    memset(&o, 0, sizeof o);
    o.src_pin = &sp;
    o.dst_pin = &dp;
    o.state_dir = state_dir;
    struct dup_result r;
    char err[1024];
    if (dup_clone(src, dst, &o, &r, err, sizeof err) != 0)
        fail_msg("clone %s -> %s: %s", src_uri, dst_uri, err);
    assert_true(r.proved);
    memcpy(pub, r.src_pub, 65);
    transport_close(src);
    transport_close(dst);
}

/* An open card with the user PIN verified (verify false: not verified). */
struct fe_card {
    struct transport *t;
    struct cardop c;
    uint8_t pub[65];
};

static inline void fe_card_open(struct fe_card *k, const char *uri, const char *name,
                                bool verify)
{
    k->t = fe_open(uri);
    cardop_init(&k->c, k->t, name);
    if (cardop_read_pubkey(&k->c, k->pub) != 0)
        fail_msg("%s", k->c.err);
    if (verify && cardop_verify(&k->c, PIN_REF_USER, (const uint8_t *)FE_PIN, strlen(FE_PIN)) != 0)
        fail_msg("%s", k->c.err);
}

static inline void fe_card_close(struct fe_card *k)
{
    transport_close(k->t);
    k->t = NULL;
}

/* ---- vector files ("name = hex" lines) ---------------------------------------------------- */

static inline int fe_hex_digit(char c)
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
static inline uint8_t *fe_vec(const char *path, const char *name, size_t *len)
{
    size_t tlen = 0;
    uint8_t *raw = fe_read_file(path, &tlen);
    char *text = malloc(tlen + 1);
    assert_non_null(text);
    memcpy(text, raw, tlen);
    text[tlen] = '\0';
    free(raw);
    size_t nlen = strlen(name);
    uint8_t *out = NULL;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] != '#' && strncmp(line, name, nlen) == 0 &&
            strncmp(line + nlen, " =", 2) == 0) {
            const char *hex = line + nlen + 2;
            while (*hex == ' ')
                hex++;
            size_t hn = strcspn(hex, "\r");
            assert_int_equal(hn % 2, 0);
            out = malloc(hn / 2 > 0 ? hn / 2 : 1);
            assert_non_null(out);
            for (size_t i = 0; i < hn / 2; i++) {
                int hi = fe_hex_digit(hex[2 * i]), lo = fe_hex_digit(hex[2 * i + 1]);
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

static inline uint8_t *fe_vecn(const char *path, const char *name, size_t want)
{
    size_t len = 0;
    uint8_t *v = fe_vec(path, name, &len);
    assert_int_equal(len, want);
    return v;
}

#endif

/* BER-TLV parse/find/build. Inputs and outputs live in heap blocks of exactly their size so
 * AddressSanitizer reports any access past the given length. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tlv.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Heap copy of exactly n bytes (libc calloc: cmocka's test_malloc adds guard bytes). */
static uint8_t *dup_exact(const uint8_t *src, size_t n)
{
    uint8_t *p = calloc(n, 1); /* calloc: an empty block counts as initialized for GCC */
    if (n > 0) {
        assert_non_null(p);
        memcpy(p, src, n);
    }
    return p;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 13u + 5u);
}

static int parse_bytes(const uint8_t *src, size_t n)
{
    uint8_t *b = dup_exact(src, n);
    struct tlv t;
    const int rc = tlv_parse(b, n, &t);
    free(b);
    return rc;
}

#define PARSE(...) parse_bytes((const uint8_t[]){ __VA_ARGS__ }, \
                               sizeof((const uint8_t[]){ __VA_ARGS__ }))

/* Parses one object from an exact copy of src and checks tag, header size and value. */
static void expect_obj(const uint8_t *src, size_t n, uint32_t tag, size_t hdr, size_t len)
{
    uint8_t *b = dup_exact(src, n);
    struct tlv t;
    memset(&t, 0xA5, sizeof t);
    assert_int_equal(tlv_parse(b, n, &t), 0);
    assert_int_equal(t.tag, tag);
    assert_int_equal(t.len, len);
    assert_int_equal(t.total, hdr + len);
    assert_ptr_equal(t.value, b + hdr);
    if (len > 0)
        assert_memory_equal(t.value, src + hdr, len);
    free(b);
}

/* ---- parse ---------------------------------------------------------------------------------- */

static void test_tags(void **state)
{
    (void)state;
    const uint8_t t1[] = { 0x80, 0x02, 0xAA, 0xBB };
    expect_obj(t1, sizeof t1, 0x80, 2, 2);
    const uint8_t t1c[] = { 0x62, 0x03, 0x82, 0x01, 0x38 };
    expect_obj(t1c, sizeof t1c, 0x62, 2, 3);
    const uint8_t t2[] = { 0x5F, 0x20, 0x01, 0x41 };
    expect_obj(t2, sizeof t2, 0x5F20, 3, 1);
    const uint8_t t2b[] = { 0xDF, 0x01, 0x00 };
    expect_obj(t2b, sizeof t2b, 0xDF01, 3, 0);
    const uint8_t t2c[] = { 0x7F, 0x49, 0x02, 0x86, 0x00 };
    expect_obj(t2c, sizeof t2c, 0x7F49, 3, 2);
    const uint8_t t3[] = { 0xDF, 0x81, 0x01, 0x01, 0x99 };
    expect_obj(t3, sizeof t3, 0xDF8101, 4, 1);
    const uint8_t t3b[] = { 0x5F, 0xFF, 0x7F, 0x00 };
    expect_obj(t3b, sizeof t3b, 0x5FFF7F, 4, 0);
    /* trailing bytes after the object are not consumed */
    const uint8_t tr[] = { 0x80, 0x01, 0x11, 0x00, 0xFF, 0x12 };
    expect_obj(tr, sizeof tr, 0x80, 2, 1);
}

static void test_lengths(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        uint8_t hdr[5];
        size_t hdr_len;
    } cases[] = {
        { 0, { 0x80, 0x00 }, 2 },
        { 1, { 0x80, 0x01 }, 2 },
        { 127, { 0x80, 0x7F }, 2 },
        { 128, { 0x80, 0x81, 0x80 }, 3 },
        { 255, { 0x80, 0x81, 0xFF }, 3 },
        { 256, { 0x80, 0x82, 0x01, 0x00 }, 4 },
        { 65535, { 0x80, 0x82, 0xFF, 0xFF }, 4 },
        { 65536, { 0x80, 0x83, 0x01, 0x00, 0x00 }, 5 },
        { 70000, { 0x80, 0x83, 0x01, 0x11, 0x70 }, 5 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const size_t len = cases[i].len, hl = cases[i].hdr_len, n = hl + len;
        uint8_t *src = malloc(n);
        assert_non_null(src);
        memcpy(src, cases[i].hdr, hl);
        for (size_t j = 0; j < len; j++)
            src[hl + j] = pattern(j);
        expect_obj(src, n, 0x80, hl, len);
        /* one byte short: value past the end */
        assert_int_equal(parse_bytes(src, n - 1), TLV_E_TRUNCATED);
        /* the builder writes the same header */
        assert_int_equal(tlv_header_size(0x80, len), hl);
        uint8_t *out = malloc(n);
        assert_non_null(out);
        assert_int_equal(tlv_put(out, n, 0x80, src + hl, len), n);
        assert_memory_equal(out, src, n);
        assert_int_equal(tlv_put(out, n - 1, 0x80, src + hl, len), 0);
        free(out);
        free(src);
    }
    /* non-minimal length encodings are accepted by the parser */
    const uint8_t nm1[] = { 0x80, 0x81, 0x02, 0xAA, 0xBB };
    expect_obj(nm1, sizeof nm1, 0x80, 3, 2);
    const uint8_t nm2[] = { 0x80, 0x82, 0x00, 0x01, 0xAA };
    expect_obj(nm2, sizeof nm2, 0x80, 4, 1);
    const uint8_t nm3[] = { 0x80, 0x83, 0x00, 0x00, 0x00 };
    expect_obj(nm3, sizeof nm3, 0x80, 5, 0);
}

static void test_rejects(void **state)
{
    (void)state;
    struct tlv t;
    /* nothing at all */
    assert_int_equal(parse_bytes(NULL, 0), TLV_E_TRUNCATED);
    assert_int_equal(tlv_parse(NULL, 0, &t), TLV_E_TRUNCATED);
    assert_int_equal(tlv_parse(NULL, 3, &t), TLV_E_ARG);
    assert_int_equal(tlv_parse((const uint8_t[]){ 0x80, 0x00 }, 2, NULL), TLV_E_ARG);
    /* truncated tag */
    assert_int_equal(PARSE(0x5F), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x7F), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0xDF, 0x81), TLV_E_TRUNCATED);
    /* truncated length */
    assert_int_equal(PARSE(0x80), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x5F, 0x20), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0xDF, 0x81, 0x01), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x81), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x82, 0x01), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x83, 0x01, 0x00), TLV_E_TRUNCATED);
    /* value past the end */
    assert_int_equal(PARSE(0x80, 0x01), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x03, 0xAA, 0xBB), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x81, 0x80, 0x00), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x82, 0xFF, 0xFF, 0x00), TLV_E_TRUNCATED);
    assert_int_equal(PARSE(0x80, 0x83, 0xFF, 0xFF, 0xFF, 0x00), TLV_E_TRUNCATED);
    /* indefinite length, 84 and beyond */
    assert_int_equal(PARSE(0x80, 0x80, 0x00, 0x00), TLV_E_LENGTH);
    assert_int_equal(PARSE(0x62, 0x80, 0x80, 0x00, 0x00, 0x00), TLV_E_LENGTH);
    assert_int_equal(PARSE(0x80, 0x84, 0x00, 0x00, 0x00, 0x01, 0xAA), TLV_E_LENGTH);
    assert_int_equal(PARSE(0x80, 0x84), TLV_E_LENGTH);
    assert_int_equal(PARSE(0x80, 0x85, 0, 0, 0, 0, 0), TLV_E_LENGTH);
    assert_int_equal(PARSE(0x80, 0xFF, 0x00), TLV_E_LENGTH);
    /* a 4-byte tag */
    assert_int_equal(PARSE(0xDF, 0x81, 0x81, 0x01, 0x00), TLV_E_TAG);
    assert_int_equal(PARSE(0x5F, 0xFF, 0xFF, 0x7F, 0x00), TLV_E_TAG);
    /* a 4-byte tag cut after its 3rd byte: still a tag error, decided on the 3rd byte */
    assert_int_equal(PARSE(0xDF, 0x81, 0x81), TLV_E_TAG);
    /* leading 00 / FF (padding) */
    assert_int_equal(PARSE(0x00, 0x01, 0xAA), TLV_E_TAG);
    assert_int_equal(PARSE(0xFF, 0x01, 0xAA), TLV_E_TAG);
    assert_int_equal(PARSE(0x00), TLV_E_TAG);
    assert_int_equal(PARSE(0xFF), TLV_E_TAG);
    /* first subsequent tag byte 80 (leading zero bits in the tag number) */
    assert_int_equal(PARSE(0x9F, 0x80, 0x01, 0x00), TLV_E_TAG);
}

/* ---- find ----------------------------------------------------------------------------------- */

static void test_find(void **state)
{
    (void)state;
    const uint8_t objs[] = {
        0x80, 0x01, 0x11,                   /* 0 */
        0x5F, 0x20, 0x02, 0xAA, 0xBB,       /* 3 */
        0x62, 0x03, 0x82, 0x01, 0x38,       /* 8 */
        0x81, 0x00,                         /* 13 */
        0x80, 0x01, 0x22,                   /* 15: duplicate tag */
        0xDF, 0x81, 0x01, 0x01, 0x33,       /* 18 */
    };
    uint8_t *b = dup_exact(objs, sizeof objs);
    struct tlv t;
    assert_int_equal(tlv_find(b, sizeof objs, 0x80, &t), 0);
    assert_ptr_equal(t.value, b + 2);
    assert_int_equal(t.value[0], 0x11); /* the first of the two */
    assert_int_equal(tlv_find(b, sizeof objs, 0x5F20, &t), 0);
    assert_int_equal(t.len, 2);
    assert_ptr_equal(t.value, b + 6);
    assert_int_equal(tlv_find(b, sizeof objs, 0x62, &t), 0);
    assert_int_equal(t.total, 5);
    /* nested: search inside the template's value */
    struct tlv in;
    assert_int_equal(tlv_find(t.value, t.len, 0x82, &in), 0);
    assert_int_equal(in.value[0], 0x38);
    assert_int_equal(tlv_find(t.value, t.len, 0x80, &in), TLV_E_NOT_FOUND);
    assert_int_equal(tlv_find(b, sizeof objs, 0x81, &t), 0);
    assert_int_equal(t.len, 0);
    assert_int_equal(tlv_find(b, sizeof objs, 0xDF8101, &t), 0);
    assert_ptr_equal(t.value, b + 22);
    assert_int_equal(tlv_find(b, sizeof objs, 0x82, NULL), TLV_E_NOT_FOUND); /* not top level */
    assert_int_equal(tlv_find(b, sizeof objs, 0x99, &t), TLV_E_NOT_FOUND);
    assert_int_equal(tlv_find(b, sizeof objs, 0x62, NULL), 0);
    /* every prefix that cuts an object fails; prefixes on an object boundary do not */
    for (size_t n = 0; n < sizeof objs; n++) {
        const bool boundary = n == 0 || n == 3 || n == 8 || n == 13 || n == 15 || n == 18;
        uint8_t *p = dup_exact(objs, n);
        const int rc = tlv_find(p, n, 0x99, NULL);
        assert_int_equal(rc, boundary ? TLV_E_NOT_FOUND : TLV_E_TRUNCATED);
        free(p);
    }
    free(b);
    assert_int_equal(tlv_find(NULL, 0, 0x80, &t), TLV_E_NOT_FOUND);
    assert_int_equal(tlv_find(NULL, 2, 0x80, &t), TLV_E_ARG);
}

static void test_find_malformed_middle(void **state)
{
    (void)state;
    struct tlv t;
    /* length says 5, only 3 left: the search for the first object still fails */
    const uint8_t bad_len[] = { 0x80, 0x01, 0x11, 0x5F, 0x20, 0x05, 0xAA, 0xBB, 0xCC };
    uint8_t *b = dup_exact(bad_len, sizeof bad_len);
    assert_int_equal(tlv_find(b, sizeof bad_len, 0x80, &t), TLV_E_TRUNCATED);
    assert_int_equal(tlv_find(b, sizeof bad_len, 0x99, &t), TLV_E_TRUNCATED);
    free(b);
    const uint8_t indef[] = { 0x80, 0x01, 0x11, 0x62, 0x80, 0x00, 0x00, 0x81, 0x00 };
    b = dup_exact(indef, sizeof indef);
    assert_int_equal(tlv_find(b, sizeof indef, 0x81, &t), TLV_E_LENGTH);
    assert_int_equal(tlv_find(b, sizeof indef, 0x80, &t), TLV_E_LENGTH);
    free(b);
    /* padding between objects is not skipped */
    const uint8_t pad[] = { 0x80, 0x01, 0x11, 0x00, 0x81, 0x00 };
    b = dup_exact(pad, sizeof pad);
    assert_int_equal(tlv_find(b, sizeof pad, 0x81, &t), TLV_E_TAG);
    free(b);
    const uint8_t tag4[] = { 0x80, 0x01, 0x11, 0xDF, 0x81, 0x81, 0x01, 0x00, 0x81, 0x00 };
    b = dup_exact(tag4, sizeof tag4);
    assert_int_equal(tlv_find(b, sizeof tag4, 0x81, &t), TLV_E_TAG);
    free(b);
}

/* ---- small functions ------------------------------------------------------------------------ */

static void test_is_constructed(void **state)
{
    (void)state;
    assert_true(tlv_is_constructed(0x62));
    assert_true(tlv_is_constructed(0x6F));
    assert_true(tlv_is_constructed(0xA5));
    assert_true(tlv_is_constructed(0x7F49));
    assert_true(tlv_is_constructed(0xBF0C));
    assert_true(tlv_is_constructed(0x7F8101));
    assert_false(tlv_is_constructed(0x80));
    assert_false(tlv_is_constructed(0x4F));
    assert_false(tlv_is_constructed(0x5F20));
    assert_false(tlv_is_constructed(0xDF01));
    assert_false(tlv_is_constructed(0xDF8101));
    assert_false(tlv_is_constructed(0x01000000));
}

static void test_header_size(void **state)
{
    (void)state;
    assert_int_equal(tlv_header_size(0x80, 0), 2);
    assert_int_equal(tlv_header_size(0x80, 127), 2);
    assert_int_equal(tlv_header_size(0x80, 128), 3);
    assert_int_equal(tlv_header_size(0x80, 255), 3);
    assert_int_equal(tlv_header_size(0x80, 256), 4);
    assert_int_equal(tlv_header_size(0x5F20, 256), 5);
    assert_int_equal(tlv_header_size(0xDF8101, 65535), 6);
    assert_int_equal(tlv_header_size(0xDF8101, 65536), 7);
    assert_int_equal(tlv_header_size(0xDF8101, TLV_MAX_VALUE_LEN), TLV_MAX_HEADER);
    /* invalid */
    assert_int_equal(tlv_header_size(0x80, (size_t)TLV_MAX_VALUE_LEN + 1), 0);
    assert_int_equal(tlv_header_size(0x00, 1), 0);
    assert_int_equal(tlv_header_size(0xFF, 1), 0);
    assert_int_equal(tlv_header_size(0x1F, 1), 0);    /* needs more tag bytes */
    assert_int_equal(tlv_header_size(0x5F, 1), 0);
    assert_int_equal(tlv_header_size(0x0120, 1), 0);  /* 2 bytes but first isn't xx1F */
    assert_int_equal(tlv_header_size(0x5F81, 1), 0);  /* second byte says more follow */
    assert_int_equal(tlv_header_size(0xFF20, 1), 0);
    assert_int_equal(tlv_header_size(0xDF0101, 1), 0); /* middle byte lacks bit 8 */
    assert_int_equal(tlv_header_size(0xDF8181, 1), 0); /* last byte has bit 8 */
    assert_int_equal(tlv_header_size(0x9F8001, 1), 0); /* leading 80 */
    assert_int_equal(tlv_header_size(0x01000000, 1), 0);
}

static void test_put(void **state)
{
    (void)state;
    const uint8_t v[] = { 0x3F, 0x00 };
    const uint8_t want[] = { 0x83, 0x02, 0x3F, 0x00 };
    uint8_t *b = malloc(sizeof want);
    assert_non_null(b);
    assert_int_equal(tlv_put(b, sizeof want, 0x83, v, sizeof v), sizeof want);
    assert_memory_equal(b, want, sizeof want);
    /* too small: nothing written */
    memset(b, 0xEE, sizeof want);
    assert_int_equal(tlv_put(b, sizeof want - 1, 0x83, v, sizeof v), 0);
    for (size_t i = 0; i < sizeof want; i++)
        assert_int_equal(b[i], 0xEE);
    assert_int_equal(tlv_put(b, 0, 0x83, v, sizeof v), 0);
    assert_int_equal(tlv_put(NULL, 100, 0x83, v, sizeof v), 0);
    free(b);

    /* header only: value NULL */
    const uint8_t hdr[] = { 0x7F, 0x49, 0x82, 0x01, 0x04 };
    b = malloc(sizeof hdr);
    assert_non_null(b);
    assert_int_equal(tlv_put(b, sizeof hdr, 0x7F49, NULL, 260), sizeof hdr);
    assert_memory_equal(b, hdr, sizeof hdr);
    memset(b, 0, sizeof hdr);
    assert_int_equal(tlv_put_header(b, sizeof hdr, 0x7F49, 260), sizeof hdr);
    assert_memory_equal(b, hdr, sizeof hdr);
    assert_int_equal(tlv_put_header(b, sizeof hdr - 1, 0x7F49, 260), 0);
    free(b);

    /* empty object, value NULL or not */
    const uint8_t empty[] = { 0xDF, 0x81, 0x01, 0x00 };
    b = malloc(sizeof empty);
    assert_non_null(b);
    assert_int_equal(tlv_put(b, sizeof empty, 0xDF8101, NULL, 0), sizeof empty);
    assert_memory_equal(b, empty, sizeof empty);
    assert_int_equal(tlv_put(b, sizeof empty, 0xDF8101, v, 0), sizeof empty);
    assert_memory_equal(b, empty, sizeof empty);
    /* invalid tag or length */
    assert_int_equal(tlv_put(b, sizeof empty, 0x00, NULL, 0), 0);
    assert_int_equal(tlv_put(b, sizeof empty, 0x1F, NULL, 0), 0);
    assert_int_equal(tlv_put(b, sizeof empty, 0x5F81, NULL, 0), 0);
    assert_int_equal(tlv_put(b, sizeof empty, 0x80, NULL, (size_t)TLV_MAX_VALUE_LEN + 1), 0);
    free(b);

    /* value overlapping the output (moving an object's value forward over its own header) */
    uint8_t ov[6] = { 0x11, 0x22, 0x33, 0x44, 0x00, 0x00 };
    assert_int_equal(tlv_put(ov, sizeof ov, 0x80, ov, 4), 6);
    assert_memory_equal(ov, ((const uint8_t[]){ 0x80, 0x04, 0x11, 0x22, 0x33, 0x44 }), 6);
}

/* ---- builder -------------------------------------------------------------------------------- */

static void test_writer_fcp(void **state)
{
    (void)state;
    const uint8_t want[] = {
        0x62, 0x13,
        0x80, 0x02, 0x01, 0x00,
        0x82, 0x01, 0x01,
        0x83, 0x02, 0x3F, 0x00,
        0x86, 0x03, 0x00, 0x01, 0xFF,
        0x8A, 0x01, 0x05,
    };
    uint8_t *b = malloc(sizeof want);
    assert_non_null(b);
    struct tlv_writer w;
    tlv_w_init(&w, b, sizeof want);
    const size_t m = tlv_w_begin(&w, 0x62);
    assert_true(tlv_w_put_u16(&w, 0x80, 0x0100));
    assert_true(tlv_w_put_u8(&w, 0x82, 0x01));
    assert_true(tlv_w_put_u16(&w, 0x83, 0x3F00));
    assert_true(tlv_w_put(&w, 0x86, (const uint8_t[]){ 0x00, 0x01, 0xFF }, 3));
    assert_true(tlv_w_put_u8(&w, 0x8A, 0x05));
    assert_true(tlv_w_end(&w, m));
    assert_false(w.overflow);
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    /* the buffer is exactly full: one more byte overflows, and stays overflowed */
    assert_false(tlv_w_raw(&w, (const uint8_t[]){ 0x00 }, 1));
    assert_true(w.overflow);
    assert_int_equal(w.len, sizeof want);
    assert_true(tlv_w_raw(&w, NULL, 0) == false);
    free(b);
}

static void test_writer_empty_and_raw(void **state)
{
    (void)state;
    uint8_t *b = malloc(7);
    assert_non_null(b);
    struct tlv_writer w;
    tlv_w_init(&w, b, 7);
    const size_t m = tlv_w_begin(&w, 0xBF0C);
    assert_true(tlv_w_end(&w, m));
    assert_true(tlv_w_raw(&w, (const uint8_t[]){ 0x81, 0x00 }, 2));
    assert_true(tlv_w_put(&w, 0x82, NULL, 0));
    assert_false(w.overflow);
    assert_int_equal(w.len, 7);
    assert_memory_equal(b, ((const uint8_t[]){ 0xBF, 0x0C, 0x00, 0x81, 0x00, 0x82, 0x00 }), 7);
    free(b);

    /* value NULL with len > 0 is a failure in the writer */
    uint8_t small[8];
    tlv_w_init(&w, small, sizeof small);
    assert_false(tlv_w_put(&w, 0x80, NULL, 3));
    assert_true(w.overflow);
    /* invalid tag */
    tlv_w_init(&w, small, sizeof small);
    assert_false(tlv_w_put(&w, 0x1F, NULL, 0));
    assert_true(w.overflow);
    tlv_w_init(&w, small, sizeof small);
    (void)tlv_w_begin(&w, 0xFF);
    assert_true(w.overflow);
    /* bad marks */
    tlv_w_init(&w, small, sizeof small);
    assert_true(tlv_w_put_u8(&w, 0x80, 0x01)); /* 80 01 01: no 00 placeholder at the right spot */
    assert_false(tlv_w_end(&w, 0));
    assert_true(w.overflow);
    tlv_w_init(&w, small, sizeof small);
    assert_false(tlv_w_end(&w, 0)); /* nothing open */
    tlv_w_init(&w, small, sizeof small);
    (void)tlv_w_begin(&w, 0x62);
    assert_false(tlv_w_end(&w, 100));
    assert_true(w.overflow);
    /* NULL buffer writer */
    tlv_w_init(&w, NULL, 0);
    assert_false(tlv_w_put_u8(&w, 0x80, 1));
    assert_true(w.overflow);
    assert_int_equal(w.len, 0);
}

/* Builds 7F49 { 62 { 80 <inner bytes> } 81 01 AA } into a block of exactly cap bytes.
 * Returns whether the writer succeeded; on success, *len is the output length. */
static bool build_nested(uint8_t *b, size_t cap, size_t inner, size_t *len)
{
    static uint8_t val[70000];
    for (size_t i = 0; i < inner; i++)
        val[i] = pattern(i);
    struct tlv_writer w;
    tlv_w_init(&w, b, cap);
    const size_t outer = tlv_w_begin(&w, 0x7F49);
    const size_t mid = tlv_w_begin(&w, 0x62);
    tlv_w_put(&w, 0x80, val, inner);
    tlv_w_end(&w, mid);
    tlv_w_put_u8(&w, 0x81, 0xAA);
    const bool ok = tlv_w_end(&w, outer);
    assert_int_equal(ok, !w.overflow);
    *len = w.len;
    return ok;
}

static void check_nested(const uint8_t *b, size_t n, size_t inner)
{
    struct tlv o, m, v, x;
    assert_int_equal(tlv_parse(b, n, &o), 0);
    assert_int_equal(o.tag, 0x7F49);
    assert_int_equal(o.total, n);
    assert_int_equal(tlv_find(o.value, o.len, 0x62, &m), 0);
    assert_int_equal(tlv_find(m.value, m.len, 0x80, &v), 0);
    assert_int_equal(v.len, inner);
    assert_int_equal(v.total, m.len);
    for (size_t i = 0; i < inner; i++)
        assert_int_equal(v.value[i], pattern(i));
    assert_int_equal(tlv_find(o.value, o.len, 0x81, &x), 0);
    assert_int_equal(x.len, 1);
    assert_int_equal(x.value[0], 0xAA);
    /* lengths are minimal */
    assert_int_equal(o.total - o.len, tlv_header_size(0x7F49, o.len));
    assert_int_equal(m.total - m.len, tlv_header_size(0x62, m.len));
}

static void test_writer_nested_growth(void **state)
{
    (void)state;
    /* inner sizes around every length-form boundary of the three levels */
    const size_t inners[] = { 0, 1, 100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 200,
                              250, 251, 252, 253, 254, 255, 256, 300, 65000, 65530, 65531,
                              65532, 65533, 65534, 65535, 65536, 69000 };
    for (size_t i = 0; i < sizeof inners / sizeof inners[0]; i++) {
        const size_t inner = inners[i];
        size_t need = 0;
        /* find the size with a generous buffer */
        uint8_t *big = malloc(inner + 64);
        assert_non_null(big);
        assert_true(build_nested(big, inner + 64, inner, &need));
        check_nested(big, need, inner);
        const size_t hv = tlv_header_size(0x80, inner);
        const size_t h62 = tlv_header_size(0x62, hv + inner);
        const size_t h7f = tlv_header_size(0x7F49, h62 + hv + inner + 3);
        assert_int_equal(need, h7f + h62 + hv + inner + 3);
        /* exactly that size: succeeds with identical bytes */
        uint8_t *ex = malloc(need);
        assert_non_null(ex);
        size_t n2 = 0;
        assert_true(build_nested(ex, need, inner, &n2));
        assert_int_equal(n2, need);
        assert_memory_equal(ex, big, need);
        free(ex);
        /* one byte less: overflow (in a put or in a length fix-up), never out of bounds */
        uint8_t *sm = malloc(need - 1);
        assert_non_null(sm);
        assert_false(build_nested(sm, need - 1, inner, &n2));
        free(sm);
        free(big);
    }
}

static void test_writer_fixup_overflow(void **state)
{
    (void)state;
    /* 62 00 + 80 7E <126 bytes> = 130 bytes fits; the fix-up to 62 81 80 needs 131 */
    uint8_t val[126];
    memset(val, 0x42, sizeof val);
    uint8_t *b = malloc(130);
    assert_non_null(b);
    struct tlv_writer w;
    tlv_w_init(&w, b, 130);
    const size_t m = tlv_w_begin(&w, 0x62);
    assert_true(tlv_w_put(&w, 0x80, val, sizeof val));
    assert_int_equal(w.len, 130);
    assert_false(tlv_w_end(&w, m));
    assert_true(w.overflow);
    /* sticky: a later small put fails too */
    assert_false(tlv_w_put(&w, 0x81, NULL, 0));
    assert_true(w.overflow);
    free(b);

    /* with 131 bytes it fits exactly */
    b = malloc(131);
    assert_non_null(b);
    tlv_w_init(&w, b, 131);
    const size_t m2 = tlv_w_begin(&w, 0x62);
    assert_true(tlv_w_put(&w, 0x80, val, sizeof val));
    assert_true(tlv_w_end(&w, m2));
    assert_int_equal(w.len, 131);
    assert_memory_equal(b, ((const uint8_t[]){ 0x62, 0x81, 0x80, 0x80, 0x7E, 0x42 }), 6);
    free(b);

    /* overflow in a put leaves len unchanged; begin after overflow does nothing */
    uint8_t small[5];
    tlv_w_init(&w, small, sizeof small);
    assert_false(tlv_w_put(&w, 0x80, val, 4));
    assert_int_equal(w.len, 0);
    assert_false(tlv_w_put_u8(&w, 0x80, 1)); /* would fit, but the writer has failed */
    (void)tlv_w_begin(&w, 0x62);
    assert_int_equal(w.len, 0);
    assert_true(w.overflow);
}

/* ---- property: every length of random input ------------------------------------------------ */

static uint32_t rng_state = 0xC0FFEEu;
static uint32_t rnd(void)
{
    uint32_t x = rng_state; /* xorshift32, fixed seed */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static bool check_random(const uint8_t *src, size_t n)
{
    uint8_t *b = dup_exact(src, n);
    struct tlv t;
    const int rc = tlv_parse(b, n, &t);
    bool ok = false;
    if (rc == 0) {
        ok = true;
        assert_true(t.total >= 2 && t.total <= n);
        assert_true(t.len <= t.total);
        const size_t hdr = t.total - t.len;
        assert_true(hdr >= 2 && hdr <= TLV_MAX_HEADER);
        assert_ptr_equal(t.value, b + hdr);
        const size_t min_hdr = tlv_header_size(t.tag, t.len);
        assert_true(min_hdr >= 2 && min_hdr <= hdr);
        /* re-encoding gives the same bytes when the input length was minimal */
        uint8_t *re = malloc(min_hdr + t.len);
        assert_non_null(re);
        assert_int_equal(tlv_put(re, min_hdr + t.len, t.tag, t.value, t.len), min_hdr + t.len);
        if (min_hdr == hdr)
            assert_memory_equal(re, b, t.total);
        else
            assert_memory_equal(re + min_hdr, t.value, t.len);
        free(re);
    } else {
        assert_true(rc == TLV_E_TRUNCATED || rc == TLV_E_TAG || rc == TLV_E_LENGTH);
    }
    struct tlv f;
    const int frc = tlv_find(b, n, n > 0 ? b[0] : 0x80, &f);
    if (frc == 0)
        assert_true(f.value >= b && f.value + f.len <= b + n);
    free(b);
    return ok;
}

static void test_random_lengths(void **state)
{
    (void)state;
    uint8_t src[300];
    size_t accepted = 0;
    for (size_t n = 0; n <= 300; n++) {
        for (int variant = 0; variant < 5; variant++) {
            for (int rep = 0; rep < 8; rep++) {
                for (size_t i = 0; i < n; i++)
                    src[i] = (uint8_t)rnd();
                /* steer towards plausible objects with the value ending near the buffer end */
                if (n >= 2 && variant > 0) {
                    src[0] = (uint8_t)(0x80 | (rnd() & 0x1E)); /* 1-byte context tag */
                    const size_t want = n - 2 - (variant == 2 && n > 2 ? 1 : 0);
                    if (variant <= 2 && want < 0x80) {
                        src[1] = (uint8_t)want;
                    } else if (variant == 3 && n >= 3 && n - 3 <= 0xFF) {
                        src[1] = 0x81;
                        src[2] = (uint8_t)(n - 3);
                    } else if (variant == 4 && n >= 4) {
                        src[1] = 0x82;
                        src[2] = (uint8_t)((n - 4) >> 8);
                        src[3] = (uint8_t)(n - 4);
                    }
                }
                if (check_random(src, n))
                    accepted++;
            }
        }
    }
    assert_true(accepted > 300 * 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_find_malformed_middle),
        cmocka_unit_test(test_is_constructed),
        cmocka_unit_test(test_header_size),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_writer_fcp),
        cmocka_unit_test(test_writer_empty_and_raw),
        cmocka_unit_test(test_writer_nested_growth),
        cmocka_unit_test(test_writer_fixup_overflow),
        cmocka_unit_test(test_random_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

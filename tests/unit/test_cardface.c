/* The card face renderer (host/issuance/cardface.c): a face rendered to a temporary directory
 * and read back with cairo — the PNG signature, 1011 x 638 pixels, the design's colours where
 * the layout (docs/cardface.md) puts them, transparent corners, the chip's gold at ISO/IEC
 * 7816-2 contact C1, different designs giving different pixels, a long holder name cut inside
 * the margin; refusals (bad fields, an unwritable path) with a message and no file left; the
 * colour parser. At the end cairo's and fontconfig's caches are freed so that LeakSanitizer
 * reports only leaks of our own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo/cairo.h>

#include "cardface.h"

#define ERR_LEN 512

static const struct cardface_design classic = {
    .name = "classic", .background = 0x1D3557, .accent = 0xE63946, .text = 0xF1FAEE,
    .title = "ICDUP MEMBER CARD",
};
static const struct cardface_design teal = {
    .name = "teal", .background = 0x0B525B, .accent = 0xF4A261, .text = 0xFFFFFF,
    .title = "ICDUP MEMBER CARD DUAL",
};

static const struct cardface_fields ada = {
    .holder = "Ada Lovelace", .member = "6000000000000001", .expiry = "2029-12-31",
    .issue_count = 2, .card_type = "ICDUP-1",
};

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_cardface.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Number of entries of d other than . and .. */
static unsigned entries(const char *d)
{
    DIR *h = opendir(d);
    assert_non_null(h);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(h)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(h);
    return n;
}

static void path_in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int teardown(void **state)
{
    (void)state;
    DIR *h = opendir(dir);
    if (h != NULL) {
        struct dirent *e;
        while ((e = readdir(h)) != NULL) {
            char p[512];
            snprintf(p, sizeof p, "%s/%.255s", dir, e->d_name);
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlink(p);
        }
        closedir(h);
    }
    rmdir(dir);
    return 0;
}

static void render(const struct cardface_design *d, const struct cardface_fields *f,
                   const char *path)
{
    char err[ERR_LEN] = "";
    if (cardface_render_png(d, f, path, err, ERR_LEN) != 0)
        fail_msg("cardface_render_png(%s): %s", path, err);
}

static cairo_surface_t *load(const char *path)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        fail_msg("%s: %s", path, cairo_status_to_string(cairo_surface_status(s)));
    cairo_surface_flush(s);
    return s;
}

/* The pixel at (x, y) as 0xAARRGGBB (premultiplied: 0xFF000000 | rgb where opaque). */
static uint32_t pixel(cairo_surface_t *s, int x, int y)
{
    assert_true(x >= 0 && x < cairo_image_surface_get_width(s));
    assert_true(y >= 0 && y < cairo_image_surface_get_height(s));
    const unsigned char *data = cairo_image_surface_get_data(s);
    uint32_t v;
    memcpy(&v, data + (size_t)y * (size_t)cairo_image_surface_get_stride(s) + 4 * (size_t)x, 4);
    return v;
}

/* The pixel at a point given in mm from the card's top left corner. */
static uint32_t pixel_mm(cairo_surface_t *s, double x_mm, double y_mm)
{
    return pixel(s, (int)(x_mm * CARDFACE_WIDTH_PX / CARDFACE_WIDTH_MM),
                 (int)(y_mm * CARDFACE_HEIGHT_PX / CARDFACE_HEIGHT_MM));
}

static uint32_t opaque(uint32_t rgb)
{
    return 0xFF000000u | rgb;
}

/* Points of the layout (docs/cardface.md) where a colour is known. */
#define BG_X 60.0    /* right of the chip, between the small texts and the number: empty */
#define BG_Y 28.0
#define BAND_X 42.8  /* in the top band, above the title's letters */
#define BAND_Y 1.0
#define C1_X 11.25   /* the middle of contact C1 */
#define C1_Y 20.08

/* Pixels of the colour rgb (opaque) in the rectangle [x0, x1) x [y0, y1) mm. */
static unsigned count_color(cairo_surface_t *s, double x0, double y0, double x1, double y1,
                            uint32_t rgb)
{
    unsigned n = 0;
    for (int y = (int)(y0 * CARDFACE_HEIGHT_PX / CARDFACE_HEIGHT_MM);
         y < (int)(y1 * CARDFACE_HEIGHT_PX / CARDFACE_HEIGHT_MM); y++)
        for (int x = (int)(x0 * CARDFACE_WIDTH_PX / CARDFACE_WIDTH_MM);
             x < (int)(x1 * CARDFACE_WIDTH_PX / CARDFACE_WIDTH_MM); x++)
            n += pixel(s, x, y) == opaque(rgb);
    return n;
}

/* ---- rendering ---------------------------------------------------------------------------- */

static void test_render(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "face.png");
    render(&classic, &ada, path);
    assert_int_equal(entries(dir), 1); /* no temporary file left */

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, sizeof sig, f), sizeof sig);
    fclose(f);
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A };
    assert_memory_equal(sig, png_sig, sizeof sig);

    cairo_surface_t *s = load(path);
    assert_int_equal(cairo_image_surface_get_width(s), 1011);
    assert_int_equal(cairo_image_surface_get_height(s), 638);
    assert_int_equal(cairo_image_surface_get_format(s), CAIRO_FORMAT_ARGB32);

    assert_int_equal(pixel_mm(s, BG_X, BG_Y), opaque(classic.background));
    assert_int_equal(pixel(s, 505, 319), opaque(classic.background)); /* the centre */
    assert_int_equal(pixel_mm(s, BAND_X, BAND_Y), opaque(classic.accent));
    assert_int_equal(pixel_mm(s, BG_X, 53.5), opaque(classic.accent)); /* bottom band */
    /* the corners are transparent (radius 3.18 mm: 37 px) */
    assert_int_equal(pixel(s, 0, 0) >> 24, 0);
    assert_int_equal(pixel(s, 1010, 0) >> 24, 0);
    assert_int_equal(pixel(s, 0, 637) >> 24, 0);
    assert_int_equal(pixel(s, 1010, 637) >> 24, 0);
    assert_int_equal(pixel(s, 5, 5) >> 24, 0);
    /* ... but the edges between them are not */
    assert_int_equal(pixel(s, 505, 0), opaque(classic.accent));
    assert_int_equal(pixel(s, 0, 319), opaque(classic.background));
    /* gold at contact C1: opaque, red > green > blue */
    uint32_t c1 = pixel_mm(s, C1_X, C1_Y);
    unsigned r = c1 >> 16 & 0xFF, g = c1 >> 8 & 0xFF, b = c1 & 0xFF;
    assert_int_equal(c1 >> 24, 0xFF);
    assert_true(r > 150 && r > g && g > b + 40);
    /* text where the layout puts it: title, number, expiry, holder; small texts at the right */
    assert_true(count_color(s, 5, 2.5, 40, 7.5, classic.text) > 200);      /* title */
    assert_true(count_color(s, 5, 33.5, 70, 38, classic.text) > 500);      /* number */
    assert_true(count_color(s, 5, 40, 30, 43.5, classic.text) > 100);      /* expiry */
    assert_true(count_color(s, 5, 46, 40, 50.2, classic.text) > 200);      /* holder */
    assert_true(count_color(s, 60, 12.5, 80.6, 18.5, classic.text) > 50);  /* type, issue */
    assert_int_equal(count_color(s, 50, 22, 80, 32, classic.text), 0);     /* nothing here */
    cairo_surface_destroy(s);
}

static void test_two_designs(void **state)
{
    (void)state;
    char pa[128], pb[128];
    path_in_dir(pa, sizeof pa, "a.png");
    path_in_dir(pb, sizeof pb, "b.png");
    render(&classic, &ada, pa);
    render(&teal, &ada, pb);
    cairo_surface_t *a = load(pa), *b = load(pb);
    assert_int_equal(pixel_mm(b, BG_X, BG_Y), opaque(teal.background));
    assert_int_equal(pixel_mm(b, BAND_X, BAND_Y), opaque(teal.accent));
    assert_int_not_equal(pixel_mm(a, BG_X, BG_Y), pixel_mm(b, BG_X, BG_Y));
    assert_int_not_equal(pixel_mm(a, BAND_X, BAND_Y), pixel_mm(b, BAND_X, BAND_Y));
    /* the chip does not depend on the design */
    assert_int_equal(pixel_mm(a, C1_X, C1_Y), pixel_mm(b, C1_X, C1_Y));
    cairo_surface_destroy(a);
    cairo_surface_destroy(b);

    /* rendering over an existing file replaces it */
    render(&teal, &ada, pa);
    a = load(pa);
    assert_int_equal(pixel_mm(a, BG_X, BG_Y), opaque(teal.background));
    cairo_surface_destroy(a);
    assert_int_equal(entries(dir), 2);
}

/* A holder name far too long is cut with an ellipsis inside the right margin, and optional
 * fields may be absent. */
static void test_long_holder_and_optional(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "long.png");
    char holder[CARDFACE_FIELD_MAX + 1];
    memset(holder, 'W', sizeof holder - 1);
    holder[sizeof holder - 1] = '\0';
    struct cardface_fields f = ada;
    f.holder = holder;
    render(&classic, &f, path);
    cairo_surface_t *s = load(path);
    assert_true(count_color(s, 5, 46, 80.5, 50.2, classic.text) > 2000);
    /* nothing of it right of the margin (5 mm) */
    assert_int_equal(count_color(s, 80.7, 44, 85.6, 51.5, classic.text), 0);
    for (double x = 80.7; x < 84; x += 0.2)
        assert_int_equal(pixel_mm(s, x, 48), opaque(classic.background));
    cairo_surface_destroy(s);

    /* a multi-byte name cut at a character boundary (cairo refuses invalid UTF-8) */
    char accents[CARDFACE_FIELD_MAX + 1] = "";
    while (strlen(accents) + 2 <= CARDFACE_FIELD_MAX)
        strcat(accents, "\xC3\xA9"); /* é */
    f.holder = accents;
    render(&classic, &f, path);

    /* no expiry, no card type, count 0, empty holder, a short member number */
    struct cardface_fields bare = { .holder = "", .member = "42" };
    render(&classic, &bare, path);
    s = load(path);
    assert_int_equal(count_color(s, 5, 40, 30, 43.5, classic.text), 0);   /* no expiry */
    assert_int_equal(count_color(s, 5, 46, 40, 50.2, classic.text), 0);   /* no holder */
    assert_int_equal(count_color(s, 60, 12.5, 80.6, 18.5, classic.text), 0);
    assert_true(count_color(s, 5, 33.5, 12, 38, classic.text) > 20);      /* "42" */
    cairo_surface_destroy(s);
    bare.expiry = "";
    bare.card_type = "";
    render(&classic, &bare, path);
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void refused(const struct cardface_design *d, const struct cardface_fields *f,
                    const char *path, const char *want)
{
    char err[ERR_LEN] = "";
    unsigned before = entries(dir);
    assert_int_equal(cardface_render_png(d, f, path, err, ERR_LEN), -1);
    if (strstr(err, want) == NULL)
        fail_msg("\"%s\" lacks \"%s\"", err, want);
    assert_int_equal(entries(dir), before);
    struct stat st;
    if (path != NULL)
        assert_int_equal(stat(path, &st), -1);
}

static void test_bad_fields(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "bad.png");
    struct cardface_fields f;
#define BAD(field, value, want) \
    do {                        \
        f = ada;                \
        f.field = value;        \
        refused(&classic, &f, path, want); \
    } while (0)
    BAD(holder, NULL, "card face: no holder name");
    BAD(member, NULL, "card face: no member number");
    BAD(member, "", "card face: no member number");
    BAD(member, "1234567890123456789012345678901234567890",
        "card face: the member number \"1234 5678 9012 3456 7890 1234 5678 9012 ...\" is");
    BAD(holder, "Ada \xC3", "card face: holder name: invalid UTF-8 at byte 5");
    BAD(holder, "Ada\xC0\x80", "holder name: invalid UTF-8 at byte 4");
    BAD(holder, "Ada\nLovelace", "card face: holder name: control character at byte 4");
    BAD(holder, "Ada\xC2\x85", "holder name: control character at byte 4"); /* NEL */
    BAD(card_type, "T\x7F", "card type: control character at byte 2");
    BAD(expiry, "2029-02-30", "card face: expiry date 2029-02-30 is not a calendar date");
    BAD(expiry, "12/29", "is not of the form YYYY-MM-DD");
    char big[CARDFACE_FIELD_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    BAD(holder, big, "card face: holder name of 256 bytes is too long (at most 255)");
    BAD(member, big, "member number of 256 bytes is too long");
#undef BAD
    struct cardface_design d = classic;
    memset(d.title, 'A', sizeof d.title);
    refused(&d, &ada, path, "card face: design title is not terminated");
    d = classic;
    snprintf(d.title, sizeof d.title, "TAB\tTITLE");
    refused(&d, &ada, path, "card face: title: control character at byte 4");
    refused(NULL, &ada, path, "internal error: no design");
    refused(&classic, NULL, path, "internal error: no fields");
    refused(&classic, &ada, NULL, "no output path");
    refused(&classic, &ada, "", "no output path");
}

static void test_unwritable(void **state)
{
    (void)state;
    char path[160];
    path_in_dir(path, sizeof path, "no-such-dir/face.png");
    refused(&classic, &ada, path, "cannot create a temporary file next to");
    refused(&classic, &ada, path, "no-such-dir/face.png: No such file or directory");
    /* a directory as the target: the rename fails, the temporary file (created in the parent,
     * the test's directory) is removed */
    char sub[160];
    path_in_dir(sub, sizeof sub, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    char err[ERR_LEN] = "";
    assert_int_equal(cardface_render_png(&classic, &ada, sub, err, ERR_LEN), -1);
    assert_non_null(strstr(err, "rename of"));
    assert_non_null(strstr(err, "is unchanged"));
    assert_int_equal(entries(dir), 1); /* only sub */
    assert_int_equal(entries(sub), 0);
    assert_int_equal(rmdir(sub), 0);
}

/* ---- colours ------------------------------------------------------------------------------ */

static void test_parse_color(void **state)
{
    (void)state;
    uint32_t rgb = 0;
    assert_int_equal(cardface_parse_color("#1d3557", &rgb), 0);
    assert_int_equal(rgb, 0x1D3557);
    assert_int_equal(cardface_parse_color("#E63946", &rgb), 0);
    assert_int_equal(rgb, 0xE63946);
    assert_int_equal(cardface_parse_color("#aBcDeF", &rgb), 0);
    assert_int_equal(rgb, 0xABCDEF);
    assert_int_equal(cardface_parse_color("#000000", &rgb), 0);
    assert_int_equal(rgb, 0);
    assert_int_equal(cardface_parse_color("#ffffff", &rgb), 0);
    assert_int_equal(rgb, 0xFFFFFF);
    static const char *const bad[] = {
        "", "#", "1d3557", "#1d355", "#1d35577", "#1d355g", "# 1d355", "#1d 355",
        "#-1d355", "#+1d355", "#0x1d35", "1d3557#", "##1d355", "#1d3557\n", "rgb(1,2,3)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rgb = 0x123456;
        if (cardface_parse_color(bad[i], &rgb) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(rgb, 0x123456);
    }
    assert_int_equal(cardface_parse_color(NULL, &rgb), -1);
    assert_int_equal(cardface_parse_color("#1d3557", NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_designs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_holder_and_optional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test(test_parse_color),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cairo_debug_reset_static_data(); /* fontconfig's cache: tests/lsan.supp */
    return rc;
}

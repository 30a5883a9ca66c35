#include "cardface.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cairo/cairo.h>

#include "atomicfile.h"
#include "hex.h"
#include "stripe.h"

/* ---- layout, in mm from the card's top left corner (docs/cardface.md) --------------------- */

#define MARGIN 5.0
#define BAND_H 10.0          /* accent band at the top */
#define BOTTOM_BAND_H 1.6    /* accent band along the bottom edge */
#define TITLE_SIZE 4.0
#define TITLE_BASE 6.9
#define SMALL_SIZE 2.4       /* card type and issue count, right-aligned */
#define TYPE_BASE 14.6
#define ISSUE_BASE 18.0
#define SMALL_MAX_W 30.0
#define NUMBER_SIZE 4.6
#define NUMBER_BASE 37.5
#define LABEL_SIZE 1.8       /* "VALID THRU" */
#define EXPIRY_SIZE 3.4
#define EXPIRY_BASE 43.2
#define HOLDER_SIZE 3.8
#define HOLDER_BASE 49.2
#define TEXT_MAX_W (CARDFACE_WIDTH_MM - 2 * MARGIN)

/* The chip's contacts per ISO/IEC 7816-2: C1..C4 in the left column, C5..C8 in the right,
 * rows from the top edge; the plate around them is 1 mm larger on each side. */
#define CONTACT_LEFT_X 10.25
#define CONTACT_RIGHT_X 17.87
#define CONTACT_W 2.00
#define CONTACT_H 1.70
#define PLATE_MARGIN 1.0
static const double contact_rows[4] = { 19.23, 21.77, 24.31, 26.85 };

#define FONT_SANS "DejaVu Sans"
#define FONT_MONO "DejaVu Sans Mono"
#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */
#define LINE_MAX (CARDFACE_FIELD_MAX + 64u)

/* ---- colours and checks ------------------------------------------------------------------- */

int cardface_parse_color(const char *s, uint32_t *rgb)
{
    if (s == NULL || rgb == NULL || s[0] != '#' || strlen(s) != 7)
        return -1;
    uint32_t v = 0;
    for (size_t i = 1; i < 7; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *rgb = v;
    return 0;
}

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when invalid (truncated, overlong,
 * a surrogate, above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len;
    if (s[0] < 0x80)
        return 1;
    else if ((s[0] & 0xE0) == 0xC0)
        len = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    uint32_t v = s[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min_cp[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return len;
}

/* Checks a field to print: at most CARDFACE_FIELD_MAX bytes of UTF-8 without control
 * characters. Returns 0, or -1 with a message naming what. */
static int check_text(const char *s, const char *what, char *err, size_t errlen)
{
    size_t n = strlen(s);
    if (n > CARDFACE_FIELD_MAX) {
        snprintf(err, errlen, "card face: %s of %zu bytes is too long (at most %u)", what, n,
                 CARDFACE_FIELD_MAX);
        return -1;
    }
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(u + i, n - i);
        if (len == 0) {
            snprintf(err, errlen, "card face: %s: invalid UTF-8 at byte %zu", what, i + 1);
            return -1;
        }
        if (u[i] < 0x20 || u[i] == 0x7F || (u[i] == 0xC2 && u[i + 1] < 0xA0)) {
            snprintf(err, errlen, "card face: %s: control character at byte %zu", what, i + 1);
            return -1;
        }
        i += len;
    }
    return 0;
}

/* The checked fields, as printed. */
struct face_text {
    const char *title;
    const char *holder;
    char member[2 * CARDFACE_FIELD_MAX];
    char expiry[6];       /* "MM/YY" or "" */
    const char *card_type;
    char issue[24];       /* "ISSUE n" or "" */
};

/* member as printed: a number of 9 digits or more in groups of 4. */
static void format_member(const char *m, char *out, size_t cap)
{
    size_t n = strlen(m), o = 0;
    bool digits = n >= 9 && strspn(m, "0123456789") == n;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        if (digits && i > 0 && i % 4 == 0)
            out[o++] = ' ';
        out[o++] = m[i];
    }
    out[o] = '\0';
}

static int check_fields(const struct cardface_design *d, const struct cardface_fields *f,
                        struct face_text *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (d == NULL || f == NULL) {
        snprintf(err, errlen, "card face: internal error: no %s", d == NULL ? "design" : "fields");
        return -1;
    }
    if (memchr(d->title, '\0', sizeof d->title) == NULL ||
        memchr(d->name, '\0', sizeof d->name) == NULL) {
        snprintf(err, errlen, "card face: design %s is not terminated",
                 memchr(d->name, '\0', sizeof d->name) == NULL ? "name" : "title");
        return -1;
    }
    if (f->holder == NULL || f->member == NULL || f->member[0] == '\0') {
        snprintf(err, errlen, "card face: no %s", f->holder == NULL ? "holder name"
                                                                    : "member number");
        return -1;
    }
    t->card_type = f->card_type != NULL ? f->card_type : "";
    if (check_text(d->title, "title", err, errlen) != 0 ||
        check_text(f->holder, "holder name", err, errlen) != 0 ||
        check_text(f->member, "member number", err, errlen) != 0 ||
        check_text(t->card_type, "card type", err, errlen) != 0)
        return -1;
    if (f->expiry != NULL && f->expiry[0] != '\0') {
        char yymm[5], why[160];
        if (stripe_expiry_yymm(f->expiry, yymm, why, sizeof why) != 0) {
            snprintf(err, errlen, "card face: %s", why);
            return -1;
        }
        snprintf(t->expiry, sizeof t->expiry, "%.2s/%.2s", yymm + 2, yymm);
    }
    if (f->issue_count > 0)
        snprintf(t->issue, sizeof t->issue, "ISSUE %u", f->issue_count);
    t->title = d->title;
    t->holder = f->holder;
    format_member(f->member, t->member, sizeof t->member);
    return 0;
}

/* ---- drawing ------------------------------------------------------------------------------ */

static void set_rgb(cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 0xFF) / 255.0, (rgb >> 8 & 0xFF) / 255.0,
                         (rgb & 0xFF) / 255.0);
}

static void rounded_rect(cairo_t *cr, double x, double y, double w, double h, double r)
{
    const double quarter = 1.5707963267948966;
    cairo_new_sub_path(cr);
    cairo_arc(cr, x + w - r, y + r, r, -quarter, 0);
    cairo_arc(cr, x + w - r, y + h - r, r, 0, quarter);
    cairo_arc(cr, x + r, y + h - r, r, quarter, 2 * quarter);
    cairo_arc(cr, x + r, y + r, r, 2 * quarter, 3 * quarter);
    cairo_close_path(cr);
}

static void set_font(cairo_t *cr, const char *family, bool bold, double size)
{
    cairo_select_font_face(cr, family, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* s in the current font, cut at a character boundary with an ellipsis when wider than max_w,
 * into out (LINE_MAX bytes). */
static void fit_text(cairo_t *cr, const char *s, double max_w, char out[LINE_MAX])
{
    snprintf(out, LINE_MAX, "%s", s);
    size_t n = strlen(out);
    while (n > 0 && text_width(cr, out) > max_w) {
        do
            n--;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80);
        size_t k = n;
        while (k > 0 && s[k - 1] == ' ')
            k--;
        memcpy(out, s, k);
        memcpy(out + k, ELLIPSIS, sizeof ELLIPSIS);
    }
}

/* Shows s with its left end (right false) or right end (right true) at x on baseline y. */
static void show_at(cairo_t *cr, const char *s, double x, double y, bool right)
{
    cairo_move_to(cr, right ? x - text_width(cr, s) : x, y);
    cairo_show_text(cr, s);
}

static void draw_background(cairo_t *cr, const struct cardface_design *d)
{
    rounded_rect(cr, 0, 0, CARDFACE_WIDTH_MM, CARDFACE_HEIGHT_MM, CARDFACE_CORNER_MM);
    cairo_clip(cr);
    set_rgb(cr, d->background);
    cairo_paint(cr);
    set_rgb(cr, d->accent);
    cairo_rectangle(cr, 0, 0, CARDFACE_WIDTH_MM, BAND_H);
    cairo_rectangle(cr, 0, CARDFACE_HEIGHT_MM - BOTTOM_BAND_H, CARDFACE_WIDTH_MM, BOTTOM_BAND_H);
    cairo_fill(cr);
}

static void draw_chip(cairo_t *cr)
{
    double x0 = CONTACT_LEFT_X - PLATE_MARGIN, y0 = contact_rows[0] - PLATE_MARGIN;
    double x1 = CONTACT_RIGHT_X + CONTACT_W + PLATE_MARGIN;
    double y1 = contact_rows[3] + CONTACT_H + PLATE_MARGIN;
    cairo_pattern_t *gold = cairo_pattern_create_linear(x0, y0, x1, y1);
    cairo_pattern_add_color_stop_rgb(gold, 0.0, 0.80, 0.64, 0.20);
    cairo_pattern_add_color_stop_rgb(gold, 0.5, 0.96, 0.87, 0.55);
    cairo_pattern_add_color_stop_rgb(gold, 1.0, 0.72, 0.56, 0.14);
    rounded_rect(cr, x0, y0, x1 - x0, y1 - y0, 1.3);
    cairo_set_source(cr, gold);
    cairo_fill_preserve(cr);
    cairo_pattern_destroy(gold);
    /* the gaps between the contacts, as etched lines */
    cairo_set_source_rgb(cr, 0.50, 0.38, 0.08);
    cairo_set_line_width(cr, 0.15);
    cairo_stroke(cr);
    for (size_t r = 0; r < 4; r++) {
        cairo_rectangle(cr, CONTACT_LEFT_X, contact_rows[r], CONTACT_W, CONTACT_H);
        cairo_rectangle(cr, CONTACT_RIGHT_X, contact_rows[r], CONTACT_W, CONTACT_H);
    }
    cairo_rectangle(cr, CONTACT_LEFT_X + CONTACT_W + 0.6, contact_rows[0],
                    CONTACT_RIGHT_X - CONTACT_LEFT_X - CONTACT_W - 1.2,
                    contact_rows[3] + CONTACT_H - contact_rows[0]);
    cairo_stroke(cr);
}

/* Draws the text; returns 0, or -1 with a message when the member number is too wide. */
static int draw_text(cairo_t *cr, const struct cardface_design *d, const struct face_text *t,
                     char *err, size_t errlen)
{
    char line[LINE_MAX];
    set_rgb(cr, d->text);
    set_font(cr, FONT_MONO, true, NUMBER_SIZE);
    double w = text_width(cr, t->member);
    if (w > TEXT_MAX_W) {
        snprintf(err, errlen, "card face: the member number \"%.40s%s\" is %.1f mm wide; at most "
                 "%.1f mm fit", t->member, strlen(t->member) > 40 ? "..." : "", w, TEXT_MAX_W);
        return -1;
    }
    show_at(cr, t->member, MARGIN, NUMBER_BASE, false);

    set_font(cr, FONT_SANS, true, TITLE_SIZE);
    fit_text(cr, t->title, TEXT_MAX_W, line);
    show_at(cr, line, MARGIN, TITLE_BASE, false);

    set_font(cr, FONT_SANS, false, SMALL_SIZE);
    fit_text(cr, t->card_type, SMALL_MAX_W, line);
    show_at(cr, line, CARDFACE_WIDTH_MM - MARGIN, TYPE_BASE, true);
    show_at(cr, t->issue, CARDFACE_WIDTH_MM - MARGIN, ISSUE_BASE, true);

    if (t->expiry[0] != '\0') {
        set_font(cr, FONT_SANS, false, LABEL_SIZE);
        show_at(cr, "VALID THRU", MARGIN, EXPIRY_BASE, false);
        double x = MARGIN + text_width(cr, "VALID THRU") + 1.5;
        set_font(cr, FONT_MONO, true, EXPIRY_SIZE);
        show_at(cr, t->expiry, x, EXPIRY_BASE, false);
    }

    set_font(cr, FONT_SANS, true, HOLDER_SIZE);
    fit_text(cr, t->holder, TEXT_MAX_W, line);
    show_at(cr, line, MARGIN, HOLDER_BASE, false);
    return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len)
{
    FILE *f = closure;
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Draws everything on s. Returns 0, or -1 with a message. */
static int draw_face(cairo_surface_t *s, const struct cardface_design *d,
                     const struct face_text *t, char *err, size_t errlen)
{
    cairo_t *cr = cairo_create(s);
    cairo_scale(cr, CARDFACE_WIDTH_PX / CARDFACE_WIDTH_MM, CARDFACE_HEIGHT_PX / CARDFACE_HEIGHT_MM);
    draw_background(cr, d);
    draw_chip(cr);
    int rc = draw_text(cr, d, t, err, errlen);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (rc == 0 && st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "card face: drawing failed: %s", cairo_status_to_string(st));
        rc = -1;
    }
    return rc;
}

static int write_png(cairo_surface_t *s, const char *path, char *err, size_t errlen)
{
    struct atomic_file a;
    if (atomic_file_open(&a, path, -1, err, errlen) != 0)
        return -1;
    cairo_status_t st = cairo_surface_write_to_png_stream(s, png_write, a.f);
    if (st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "card face: cannot write the PNG to %s: %s", a.tmp,
                 cairo_status_to_string(st));
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err, errlen);
}

int cardface_render_png(const struct cardface_design *d, const struct cardface_fields *f,
                        const char *path, char *err, size_t errlen)
{
    struct face_text t;
    if (check_fields(d, f, &t, err, errlen) != 0)
        return -1;
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "card face: no output path");
        return -1;
    }
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_ARGB32, CARDFACE_WIDTH_PX, CARDFACE_HEIGHT_PX);
    cairo_status_t st = cairo_surface_status(s);
    int rc = 0;
    if (st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "card face: cannot create an image: %s", cairo_status_to_string(st));
        rc = -1;
    }
    if (rc == 0)
        rc = draw_face(s, d, &t, err, errlen);
    if (rc == 0)
        rc = write_png(s, path, err, errlen);
    cairo_surface_destroy(s);
    return rc;
}

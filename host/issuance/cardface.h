/* The printed face of an ID-1 card (ISO/IEC 7810, 85.60 x 53.98 mm, corners of radius
 * 3.18 mm), rendered to a PNG at 300 dpi with cairo for the card printer: a print design from
 * the card-type file (colours, title) and the holder's fields. The layout (docs/cardface.md):
 * an accent band with the title at the top, the card type and issue count at the top right,
 * the chip's contact plate at its ISO/IEC 7816-2 position, the member number, the expiry
 * ("VALID THRU MM/YY") and the holder's name below it, a thin accent band along the bottom
 * edge. Outside the rounded corners the image is transparent. */
#ifndef CARDFACE_H
#define CARDFACE_H

#include <stddef.h>
#include <stdint.h>

#define CARDFACE_WIDTH_MM 85.60
#define CARDFACE_HEIGHT_MM 53.98
#define CARDFACE_CORNER_MM 3.18
#define CARDFACE_WIDTH_PX 1011  /* 300 dpi */
#define CARDFACE_HEIGHT_PX 638
#define CARDFACE_FIELD_MAX 255u /* bytes of a field of struct cardface_fields */

struct cardface_design {            /* a print design, from the card-type file */
    char name[33];
    uint32_t background, accent, text;  /* 0xRRGGBB */
    char title[41];                 /* printed at the top, e.g. "ICDUP MEMBER CARD" */
};

/* The fields are UTF-8 without control characters, at most CARDFACE_FIELD_MAX bytes. */
struct cardface_fields {
    const char *holder;             /* holder name; "" prints none; cut with "…" to fit */
    const char *member;             /* member number, not empty; a number of 9 or more digits
                                       is printed in groups of 4; must fit the width */
    const char *expiry;             /* "YYYY-MM-DD" -> printed "VALID THRU MM/YY"; NULL or
                                       "": no expiry line */
    unsigned issue_count;           /* printed small, "ISSUE 2"; 0: not printed */
    const char *card_type;          /* printed small; NULL or "": not printed */
};

/* Renders the face of f in design d to a PNG of CARDFACE_WIDTH_PX x CARDFACE_HEIGHT_PX
 * (ARGB, transparent outside the corners) written atomically to path (host/atomicfile.h: a
 * temporary file next to it, renamed over it). Returns 0, or -1 with a message in err: a NULL
 * argument, holder or member; an empty member number or one too wide for the card; a field
 * that is too long, not UTF-8 or has a control character; a bad expiry date; a title not
 * terminated in its array; an unwritable path or a cairo failure. On failure path is
 * untouched and no temporary file is left. */
int cardface_render_png(const struct cardface_design *d, const struct cardface_fields *f,
                        const char *path, char *err, size_t errlen);

/* "#1d3557" (or "#1D3557") -> 0x1D3557: exactly '#' and 6 hex digits. Returns 0, or -1 (then
 * *rgb is unchanged) for anything else, NULL included. */
int cardface_parse_color(const char *s, uint32_t *rgb);

#endif

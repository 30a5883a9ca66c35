#include "stripe.h"

#include <stdio.h>
#include <string.h>

#include "atomicfile.h"

#define HOLDER_IN_MAX 255u /* bytes of a holder name given to stripe_name */

/* Character sets of the two tracks: codes are c - base, width bits each. */
struct track_set {
    char base;
    char last;
    unsigned width;
};

static const struct track_set track1_set = { 0x20, 0x5F, 6 };
static const struct track_set track2_set = { 0x30, 0x3F, 4 };

static const struct track_set *track_set_of(unsigned track)
{
    return track == 1 ? &track1_set : track == 2 ? &track2_set : NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of s when it is all digits, else -1 (NULL too). */
static long digits_len(const char *s)
{
    if (s == NULL)
        return -1;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!is_digit(s[n]))
            return -1;
    return (long)n;
}

/* Index of the first non-digit of s. */
static size_t first_non_digit(const char *s)
{
    size_t i = 0;
    while (is_digit(s[i]))
        i++;
    return i;
}

/* ---- PAN ---------------------------------------------------------------------------------- */

/* Luhn sum of the n digits of s as they stand left of a check digit still to come. */
static unsigned luhn_sum(const char *s, size_t n, bool double_last)
{
    unsigned sum = 0;
    bool dbl = double_last;
    for (size_t i = n; i-- > 0;) {
        unsigned d = (unsigned)(s[i] - '0');
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum;
}

/* The check digit of the first n digits of s. */
static char luhn_digit_n(const char *s, size_t n)
{
    unsigned sum = luhn_sum(s, n, true);
    return (char)('0' + (10 - sum % 10) % 10);
}

int stripe_luhn_digit(const char *s)
{
    long n = digits_len(s);
    if (n <= 0)
        return -1;
    return luhn_digit_n(s, (size_t)n);
}

bool stripe_luhn_valid(const char *s)
{
    long n = digits_len(s);
    if (n < 2)
        return false;
    return luhn_sum(s, (size_t)n, false) % 10 == 0;
}

/* Checks that s (named what) is all digits. Returns 0, or -1 with a message. */
static int need_digits(const char *s, const char *what, char *err, size_t errlen)
{
    if (s == NULL) {
        snprintf(err, errlen, "no %s", what);
        return -1;
    }
    if (digits_len(s) < 0) {
        size_t i = first_non_digit(s);
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x21 && c <= 0x7E)
            snprintf(err, errlen, "%s: '%c' at position %zu is not a digit", what, c, i + 1);
        else
            snprintf(err, errlen, "%s: the byte 0x%02X at position %zu is not a digit", what,
                     (unsigned)c, i + 1);
        return -1;
    }
    return 0;
}

int stripe_pan(const char *iin, const char *account, char *pan, size_t cap, char *err,
               size_t errlen)
{
    if (pan != NULL && cap > 0)
        pan[0] = '\0';
    if (need_digits(iin, "issuer identification number", err, errlen) != 0 ||
        need_digits(account, "account number", err, errlen) != 0)
        return -1;
    size_t ni = strlen(iin), na = strlen(account);
    if (ni != 6 && ni != 8) {
        snprintf(err, errlen, "issuer identification number \"%s\" has %zu digits; it needs 6 "
                 "or 8 (ISO/IEC 7812-1)", iin, ni);
        return -1;
    }
    if (na == 0) {
        snprintf(err, errlen, "empty account number");
        return -1;
    }
    if (ni + na + 1 > STRIPE_PAN_MAX) {
        snprintf(err, errlen, "the PAN would have %zu digits (IIN %zu, account number %zu, "
                 "check digit 1); at most %u fit, so the account number may have %zu digits "
                 "with this IIN", ni + na + 1, ni, na, STRIPE_PAN_MAX,
                 STRIPE_PAN_MAX - 1 - ni);
        return -1;
    }
    if (pan == NULL || cap < ni + na + 2) {
        snprintf(err, errlen, "internal error: PAN buffer of %zu bytes is too small", cap);
        return -1;
    }
    memcpy(pan, iin, ni);
    memcpy(pan + ni, account, na);
    pan[ni + na] = luhn_digit_n(pan, ni + na);
    pan[ni + na + 1] = '\0';
    return 0;
}

/* Checks a PAN given to stripe_tracks. */
static int check_pan(const char *pan, char *err, size_t errlen)
{
    if (need_digits(pan, "PAN", err, errlen) != 0)
        return -1;
    size_t n = strlen(pan);
    if (n < STRIPE_PAN_MIN || n > STRIPE_PAN_MAX) {
        snprintf(err, errlen, "PAN has %zu digits; it needs %u to %u", n, STRIPE_PAN_MIN,
                 STRIPE_PAN_MAX);
        return -1;
    }
    if (!stripe_luhn_valid(pan)) {
        snprintf(err, errlen, "PAN %s fails the Luhn check (its last digit should be %c)", pan,
                 luhn_digit_n(pan, n - 1));
        return -1;
    }
    return 0;
}

/* ---- expiry ------------------------------------------------------------------------------- */

static bool leap_year(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Value of the n digits at s (all checked to be digits). */
static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

int stripe_expiry_yymm(const char *date, char yymm[5], char *err, size_t errlen)
{
    yymm[0] = '\0';
    if (date == NULL) {
        snprintf(err, errlen, "no expiry date");
        return -1;
    }
    static const char shape[] = "DDDD-DD-DD";
    bool ok = strlen(date) == sizeof shape - 1;
    for (size_t i = 0; ok && i < sizeof shape - 1; i++)
        ok = shape[i] == 'D' ? is_digit(date[i]) : date[i] == shape[i];
    if (!ok) {
        snprintf(err, errlen, "expiry date \"%.40s\" is not of the form YYYY-MM-DD", date);
        return -1;
    }
    unsigned y = num(date, 4), m = num(date + 5, 2), d = num(date + 8, 2);
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
        snprintf(err, errlen, "expiry date %s is not a calendar date", date);
        return -1;
    }
    if (y < 2000 || y > 2099) {
        snprintf(err, errlen, "expiry date %s: the year must be 2000 to 2099 (a stripe holds "
                 "only its last two digits)", date);
        return -1;
    }
    memcpy(yymm, date + 2, 2);
    memcpy(yymm + 2, date + 5, 2);
    yymm[4] = '\0';
    return 0;
}

/* ---- holder name -------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length with *cp set, or 0 when it
 * is invalid (truncated, overlong, a surrogate, above U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len;
    uint32_t v;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        v = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        v = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        v = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min_cp[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Latin-1 letters U+00C0..U+00FF without their accents; NULL: not a letter (× and ÷). */
static const char *const latin1_letters[64] = {
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
    "D", "N", "O", "O", "O", "O", "O", NULL, "O", "U", "U", "U", "U", "Y", "TH", "SS",
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
    "D", "N", "O", "O", "O", "O", "O", NULL, "O", "U", "U", "U", "U", "Y", "TH", "Y",
};

/* What code point cp becomes on track 1: NULL when it cannot be written. */
static const char *track1_chars(uint32_t cp, char buf[2])
{
    if (cp >= 'a' && cp <= 'z')
        cp -= 'a' - 'A';
    if (cp >= 0x20 && cp <= 0x5F && cp != '%' && cp != '^' && cp != '?') {
        buf[0] = (char)cp;
        buf[1] = '\0';
        return buf;
    }
    if (cp == 0xA0) /* no-break space */
        return " ";
    if (cp >= 0xC0 && cp <= 0xFF)
        return latin1_letters[cp - 0xC0];
    return NULL;
}

static void describe_refused(uint32_t cp, size_t at, char *err, size_t errlen)
{
    char what[32];
    if (cp < 0x20 || cp == 0x7F)
        snprintf(what, sizeof what, "the control character 0x%02X", (unsigned)cp);
    else if (cp < 0x80)
        snprintf(what, sizeof what, "'%c'", (char)cp);
    else
        snprintf(what, sizeof what, "U+%04X", (unsigned)cp);
    snprintf(err, errlen, "holder name: %s at byte %zu cannot be written on a magnetic stripe "
             "(track 1 holds A-Z, 0-9, space and the punctuation of ASCII 0x20-0x5F but %% ^ ?; "
             "accented Latin-1 letters lose their accent)", what, at + 1);
}

/* Maps holder (UTF-8) to track 1 characters with runs of spaces made one and no space at either
 * end or next to '/'. out holds HOLDER_IN_MAX + 1 bytes. Returns 0, or -1 with a message. */
static int map_holder(const char *holder, char *out, char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)holder;
    size_t n = strlen(holder), o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            snprintf(err, errlen, "holder name: invalid UTF-8 at byte %zu", i + 1);
            return -1;
        }
        char buf[2];
        const char *m = track1_chars(cp, buf);
        if (m == NULL) {
            describe_refused(cp, i, err, errlen);
            return -1;
        }
        for (; *m != '\0'; m++) {
            bool space = *m == ' ';
            if (space && (o == 0 || out[o - 1] == ' ' || out[o - 1] == '/'))
                continue;
            if (*m == '/' && o > 0 && out[o - 1] == ' ')
                o--;
            out[o++] = *m; /* o <= i + len: no sequence maps to more bytes than it has */
        }
        i += len;
    }
    if (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return 0;
}

/* Appends s[0..n) to out (at *o). */
static void put(char *out, size_t *o, const char *s, size_t n)
{
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

int stripe_name(const char *holder, char out[STRIPE_NAME_MAX + 1], char *err, size_t errlen)
{
    out[0] = '\0';
    if (holder == NULL) {
        snprintf(err, errlen, "no holder name");
        return -1;
    }
    size_t n = strlen(holder);
    if (n > HOLDER_IN_MAX) {
        snprintf(err, errlen, "holder name of %zu bytes is too long (at most %u)", n,
                 HOLDER_IN_MAX);
        return -1;
    }
    char m[HOLDER_IN_MAX + 1];
    if (map_holder(holder, m, err, errlen) != 0)
        return -1;
    bool alnum = false;
    for (const char *p = m; *p != '\0'; p++)
        alnum = alnum || is_digit(*p) || (*p >= 'A' && *p <= 'Z');
    if (!alnum) {
        snprintf(err, errlen, "holder name has no letter or digit to write on the stripe");
        return -1;
    }
    const char *slash = strchr(m, '/');
    char full[2 * HOLDER_IN_MAX + 2];
    size_t o = 0;
    full[0] = '\0';
    if (slash != NULL) {
        if (strchr(slash + 1, '/') != NULL) {
            snprintf(err, errlen, "holder name has more than one '/' (write SURNAME/GIVEN)");
            return -1;
        }
        if (slash == m) {
            snprintf(err, errlen, "holder name has no surname before its '/'");
            return -1;
        }
        put(full, &o, m, strlen(m));
    } else {
        const char *sp = strrchr(m, ' ');
        const char *surname = sp != NULL ? sp + 1 : m;
        put(full, &o, surname, strlen(surname));
        put(full, &o, "/", 1);
        if (sp != NULL)
            put(full, &o, m, (size_t)(sp - m));
    }
    if (o > STRIPE_NAME_MAX) {
        o = STRIPE_NAME_MAX;
        while (o > 0 && full[o - 1] == ' ')
            o--;
    }
    memcpy(out, full, o);
    out[o] = '\0';
    return 0;
}

/* ---- tracks ------------------------------------------------------------------------------- */

int stripe_lrc(const char *s, size_t len, unsigned track)
{
    const struct track_set *t = track_set_of(track);
    if (t == NULL || s == NULL)
        return -1;
    unsigned lrc = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < t->base || s[i] > t->last)
            return -1;
        lrc ^= (unsigned)(s[i] - t->base);
    }
    return t->base + (int)lrc;
}

/* Appends the LRC to the track of *len characters in buf (cap bytes, room checked). */
static void add_lrc(char *buf, size_t *len, unsigned track)
{
    buf[*len] = (char)stripe_lrc(buf, *len, track);
    (*len)++;
    buf[*len] = '\0';
}

static int check_service_code(const char *sc, char *err, size_t errlen)
{
    if (need_digits(sc, "service code", err, errlen) != 0)
        return -1;
    if (strlen(sc) != 3) {
        snprintf(err, errlen, "service code \"%.8s\" must have 3 digits", sc);
        return -1;
    }
    return 0;
}

/* Checks that a track of len characters (LRC included) fits max and the caller's cap. dd is the
 * number of discretionary digits in it. */
static int check_fit(unsigned track, size_t len, size_t max, size_t dd, size_t cap, char *err,
                     size_t errlen)
{
    if (len > max) {
        size_t fixed = len - dd;
        if (fixed <= max)
            snprintf(err, errlen, "discretionary data of %zu digits does not fit track %u "
                     "(at most %zu with this PAN and name; a track holds %zu characters)", dd,
                     track, max - fixed, max);
        else
            snprintf(err, errlen, "track %u would have %zu characters; at most %zu", track,
                     len, max);
        return -1;
    }
    if (cap < len + 1) {
        snprintf(err, errlen, "internal error: track %u buffer of %zu bytes is too small "
                 "(%zu needed)", track, cap, len + 1);
        return -1;
    }
    return 0;
}

/* The validated fields of a stripe_input. */
struct fields {
    const char *pan;
    char name[STRIPE_NAME_MAX + 1];
    char yymm[5];
    const char *sc;
    const char *dd;
};

static int check_input(const struct stripe_input *in, struct fields *f, char *err,
                       size_t errlen)
{
    f->pan = in->pan;
    f->sc = in->service_code != NULL ? in->service_code : STRIPE_DEFAULT_SERVICE_CODE;
    f->dd = in->discretionary != NULL ? in->discretionary : "";
    if (check_pan(in->pan, err, errlen) != 0 ||
        stripe_name(in->holder, f->name, err, errlen) != 0 ||
        stripe_expiry_yymm(in->expiry, f->yymm, err, errlen) != 0 ||
        check_service_code(f->sc, err, errlen) != 0 ||
        need_digits(f->dd, "discretionary data", err, errlen) != 0)
        return -1;
    return 0;
}

int stripe_tracks(const struct stripe_input *in, char *track1, size_t cap1, char *track2,
                  size_t cap2, char *err, size_t errlen)
{
    if (track1 != NULL && cap1 > 0)
        track1[0] = '\0';
    if (track2 != NULL && cap2 > 0)
        track2[0] = '\0';
    if (in == NULL || track1 == NULL || track2 == NULL) {
        snprintf(err, errlen, "internal error: bad arguments to stripe_tracks");
        return -1;
    }
    struct fields f;
    if (check_input(in, &f, err, errlen) != 0)
        return -1;
    size_t np = strlen(f.pan), nn = strlen(f.name), nd = strlen(f.dd);
    size_t len1 = 2 + np + 1 + nn + 1 + 4 + 3 + nd + 1 + 1;
    size_t len2 = 1 + np + 1 + 4 + 3 + nd + 1 + 1;
    if (check_fit(2, len2, STRIPE_TRACK2_MAX, nd, cap2, err, errlen) != 0 ||
        check_fit(1, len1, STRIPE_TRACK1_MAX, nd, cap1, err, errlen) != 0)
        return -1;
    size_t o = 0;
    put(track1, &o, "%B", 2);
    put(track1, &o, f.pan, np);
    put(track1, &o, "^", 1);
    put(track1, &o, f.name, nn);
    put(track1, &o, "^", 1);
    put(track1, &o, f.yymm, 4);
    put(track1, &o, f.sc, 3);
    put(track1, &o, f.dd, nd);
    put(track1, &o, "?", 1);
    add_lrc(track1, &o, 1);
    o = 0;
    put(track2, &o, ";", 1);
    put(track2, &o, f.pan, np);
    put(track2, &o, "=", 1);
    put(track2, &o, f.yymm, 4);
    put(track2, &o, f.sc, 3);
    put(track2, &o, f.dd, nd);
    put(track2, &o, "?", 1);
    add_lrc(track2, &o, 2);
    return 0;
}

int stripe_bits(const char *track, unsigned track_no, uint8_t *out, size_t cap,
                size_t *nbits)
{
    const struct track_set *t = track_set_of(track_no);
    if (t == NULL || track == NULL || nbits == NULL)
        return -1;
    size_t n = strlen(track), o = 0;
    if (cap / (t->width + 1) < n || (out == NULL && n > 0))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (track[i] < t->base || track[i] > t->last)
            return -1;
        unsigned code = (unsigned)(track[i] - t->base), ones = 0;
        for (unsigned b = 0; b < t->width; b++) {
            out[o] = (uint8_t)(code >> b & 1u);
            ones += out[o++];
        }
        out[o++] = (uint8_t)(ones % 2 == 0); /* odd parity: an odd number of ones in all */
    }
    *nbits = o;
    return 0;
}

/* ---- the encoder's file ------------------------------------------------------------------- */

static int check_printable(const char *s, const char *what, char *err, size_t errlen)
{
    if (s == NULL) {
        snprintf(err, errlen, "no %s data", what);
        return -1;
    }
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E) {
            snprintf(err, errlen, "%s data: byte 0x%02X at position %zu is not printable ASCII",
                     what, (unsigned)c, i + 1);
            return -1;
        }
    }
    return 0;
}

int stripe_write_file(const char *path, const char *track1, const char *track2, char *err,
                      size_t errlen)
{
    if (check_printable(track1, "track 1", err, errlen) != 0 ||
        check_printable(track2, "track 2", err, errlen) != 0)
        return -1;
    struct atomic_file a;
    if (atomic_file_open(&a, path, -1, err, errlen) != 0)
        return -1;
    if (fprintf(a.f, "track1=%s\ntrack2=%s\n", track1, track2) < 0) {
        snprintf(err, errlen, "cannot write the stripe data to %s", a.tmp);
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err, errlen);
}

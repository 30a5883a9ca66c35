#include "cardtype.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"

static const char *const role_names[CT_ROLES] = { "original", "backup" };
static const char *const kind_names[] = { "text", "digits", "date", "secret", "hex" };
static const char *const encoding_names[] = { "ascii", "hex", "bcd" };
static const char *const builtin_items[] = { "identity", "card_type", "issue_count",
                                             "role", "puk", "admin_pin" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *ct_role_name(enum ct_role r)
{
    return (unsigned)r < CT_ROLES ? role_names[r] : "?";
}

int ct_role_parse(const char *s, enum ct_role *r)
{
    int i = name_index(role_names, CT_ROLES, s);
    if (i < 0)
        return -1;
    *r = (enum ct_role)i;
    return 0;
}

const char *ct_kind_name(enum ct_kind k)
{
    return (unsigned)k < COUNT(kind_names) ? kind_names[k] : "?";
}

int ct_kind_parse(const char *s, enum ct_kind *k)
{
    int i = name_index(kind_names, COUNT(kind_names), s);
    if (i < 0)
        return -1;
    *k = (enum ct_kind)i;
    return 0;
}

const char *ct_encoding_name(enum ct_encoding e)
{
    return (unsigned)e < COUNT(encoding_names) ? encoding_names[e] : "?";
}

int ct_encoding_parse(const char *s, enum ct_encoding *e)
{
    int i = name_index(encoding_names, COUNT(encoding_names), s);
    if (i < 0)
        return -1;
    *e = (enum ct_encoding)i;
    return 0;
}

const struct ct_item *ct_find_item(const struct ct_type *t, const char *name)
{
    for (size_t i = 0; i < t->nitems; i++)
        if (strcmp(t->items[i].name, name) == 0)
            return &t->items[i];
    return NULL;
}

bool ct_builtin_item(const char *name)
{
    return name_index(builtin_items, COUNT(builtin_items), name) >= 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool leap_year(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD" naming a real day of years 1900..2999. */
static bool valid_date(const char *v, size_t len, unsigned *y, unsigned *m, unsigned *d)
{
    if (len != 10 || v[4] != '-' || v[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !is_digit(v[i]))
            return false;
    *y = (unsigned)((v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0'));
    *m = (unsigned)((v[5] - '0') * 10 + (v[6] - '0'));
    *d = (unsigned)((v[8] - '0') * 10 + (v[9] - '0'));
    static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (*y < 1900 || *y > 2999 || *m < 1 || *m > 12 || *d < 1)
        return false;
    unsigned last = days[*m - 1] + (*m == 2 && leap_year(*y) ? 1u : 0u);
    return *d <= last;
}

/* Well-formed UTF-8 without control characters. */
static bool valid_text(const char *v, size_t len)
{
    const unsigned char *s = (const unsigned char *)v;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || i + n > len || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4))
            return false;
        if (n == 1 && (c < 0x20 || c == 0x7F))
            return false;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

int ct_check_value(const struct ct_item *it, const char *value, size_t len, char *err,
                   size_t errlen)
{
    /* Only digits and dates are echoed: they are never secret. */
    if (len == 0) {
        snprintf(err, errlen, "%s: empty value", it->name);
        return -1;
    }
    if (len > it->max_len) {
        snprintf(err, errlen, "%s: %zu characters, at most %u allowed", it->name, len,
                 it->max_len);
        return -1;
    }
    unsigned y, m, d;
    switch (it->kind) {
    case CT_TEXT:
        if (!valid_text(value, len)) {
            snprintf(err, errlen, "%s: not UTF-8 text without control characters", it->name);
            return -1;
        }
        return 0;
    case CT_DIGITS:
        for (size_t i = 0; i < len; i++)
            if (!is_digit(value[i])) {
                snprintf(err, errlen, "%s: \"%.*s\" is not a decimal number", it->name,
                         (int)len, value);
                return -1;
            }
        return 0;
    case CT_DATE:
        if (!valid_date(value, len, &y, &m, &d)) {
            snprintf(err, errlen, "%s: \"%.*s\" is not a date YYYY-MM-DD", it->name, (int)len,
                     value);
            return -1;
        }
        return 0;
    case CT_SECRET:
        if (len < 4) {
            snprintf(err, errlen, "%s: %zu characters, at least 4 needed", it->name, len);
            return -1;
        }
        for (size_t i = 0; i < len; i++)
            if (value[i] < 0x21 || value[i] > 0x7E) {
                snprintf(err, errlen, "%s: character %zu is not printable ASCII", it->name,
                         i + 1);
                return -1;
            }
        return 0;
    case CT_HEX:
        if (len % 2 != 0) {
            snprintf(err, errlen, "%s: an odd number of hex digits (%zu)", it->name, len);
            return -1;
        }
        for (size_t i = 0; i < len; i++)
            if (hex_digit(value[i]) < 0) {
                snprintf(err, errlen, "%s: character %zu is not a hex digit", it->name, i + 1);
                return -1;
            }
        return 0;
    }
    snprintf(err, errlen, "%s: unknown kind", it->name);
    return -1;
}

int ct_encode_value(enum ct_kind kind, const char *value, size_t len, uint8_t *out, size_t cap)
{
    unsigned y, m, d;
    switch (kind) {
    case CT_TEXT:
    case CT_DIGITS:
    case CT_SECRET:
        if (len > cap)
            return -1;
        memcpy(out, value, len);
        return (int)len;
    case CT_DATE:
        if (cap < 4 || !valid_date(value, len, &y, &m, &d))
            return -1;
        out[0] = (uint8_t)(((y / 1000) << 4) | ((y / 100) % 10));
        out[1] = (uint8_t)((((y / 10) % 10) << 4) | (y % 10));
        out[2] = (uint8_t)(((m / 10) << 4) | (m % 10));
        out[3] = (uint8_t)(((d / 10) << 4) | (d % 10));
        return 4;
    case CT_HEX:
        if (len % 2 != 0 || len / 2 > cap)
            return -1;
        for (size_t i = 0; i < len / 2; i++) {
            int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        return (int)(len / 2);
    }
    return -1;
}

int ct_decode_identity(enum ct_encoding enc, const uint8_t *data, size_t len, char *out,
                       size_t cap)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t n = 0;
    switch (enc) {
    case CT_ENC_ASCII:
        while (len > 0 && (data[len - 1] == 0x00 || data[len - 1] == 0xFF ||
                           data[len - 1] == ' '))
            len--;
        if (len == 0 || len >= cap)
            return -1;
        for (size_t i = 0; i < len; i++) {
            if (data[i] < 0x21 || data[i] > 0x7E)
                return -1;
            out[n++] = (char)data[i];
        }
        break;
    case CT_ENC_HEX:
        if (len == 0 || 2 * len >= cap)
            return -1;
        for (size_t i = 0; i < len; i++) {
            out[n++] = hexd[data[i] >> 4];
            out[n++] = hexd[data[i] & 15];
        }
        break;
    case CT_ENC_BCD:
        for (size_t i = 0; i < 2 * len; i++) {
            unsigned v = i % 2 == 0 ? data[i / 2] >> 4 : data[i / 2] & 15u;
            if (v == 0xF) {
                /* padding: only F nibbles may follow */
                for (size_t k = i + 1; k < 2 * len; k++)
                    if ((k % 2 == 0 ? data[k / 2] >> 4 : data[k / 2] & 15u) != 0xF)
                        return -1;
                break;
            }
            if (v > 9 || n + 1 >= cap)
                return -1;
            out[n++] = (char)('0' + v);
        }
        if (n == 0)
            return -1;
        break;
    default:
        return -1;
    }
    out[n] = '\0';
    return 0;
}

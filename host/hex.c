#include "hex.h"

#include <stdbool.h>
#include <string.h>

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex_is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':';
}

/* One pass that validates and, when out is not NULL, stores. */
static int hex_walk(const char *text, uint8_t *out, size_t cap, size_t *out_len,
                    char *err, size_t errlen)
{
    size_t n = 0;
    size_t i = 0;
    int hi = -1;       /* pending high nibble of the byte being read, -1 if none */
    size_t run_start = 0;

    for (;; i++) {
        char c = text[i];
        if (c == '\0' || hex_is_separator(c)) {
            if (hi >= 0) {
                if (err != NULL)
                    snprintf(err, errlen,
                             "odd number of hex digits in the group starting at offset %zu",
                             run_start);
                return -1;
            }
            if (c == '\0')
                break;
            continue;
        }
        int d = hex_digit(c);
        if (d < 0) {
            if (err != NULL) {
                if ((unsigned char)c >= 0x21 && (unsigned char)c <= 0x7E)
                    snprintf(err, errlen, "invalid hex character '%c' at offset %zu", c, i);
                else
                    snprintf(err, errlen, "invalid hex character (byte 0x%02X) at offset %zu",
                             (unsigned)(unsigned char)c, i);
            }
            return -1;
        }
        if (hi < 0) {
            if (i == 0 || hex_is_separator(text[i - 1]))
                run_start = i;
            hi = d;
            continue;
        }
        if (out != NULL) {
            if (n >= cap) {
                if (err != NULL)
                    snprintf(err, errlen, "hex data longer than %zu bytes", cap);
                return -1;
            }
            out[n] = (uint8_t)((hi << 4) | d);
        }
        n++;
        hi = -1;
    }
    if (out_len != NULL)
        *out_len = n;
    return 0;
}

int hex_decode(const char *text, uint8_t *out, size_t cap, size_t *out_len,
               char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL || out_len == NULL || (out == NULL && cap > 0)) {
        if (err != NULL)
            snprintf(err, errlen, "internal error: bad arguments to hex_decode");
        return -1;
    }
    /* out may be NULL only with cap 0: then any byte is "too long". */
    uint8_t dummy;
    return hex_walk(text, out != NULL ? out : &dummy, cap, out_len, err, errlen);
}

long hex_decoded_len(const char *text)
{
    size_t n;
    if (text == NULL || hex_walk(text, NULL, 0, &n, NULL, 0) != 0)
        return -1;
    return (long)n;
}

size_t hex_encode(const uint8_t *buf, size_t len, char sep, char *out, size_t cap)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t need = len * 2 + (sep != '\0' && len > 0 ? len - 1 : 0) + 1;
    if (out == NULL || cap == 0)
        return 0;
    if (cap < need) {
        out[0] = '\0';
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && sep != '\0')
            out[o++] = sep;
        out[o++] = digits[buf[i] >> 4];
        out[o++] = digits[buf[i] & 0x0F];
    }
    out[o] = '\0';
    return o;
}

void hex_fprint(FILE *f, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, i == 0 ? "%02X" : " %02X", buf[i]);
}

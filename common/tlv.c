/* BER-TLV parse/find/build. See tlv.h. */
#include "tlv.h"

#include <string.h>

/* Number of bytes of a valid tag, 0 if the tag is not one this module accepts. */
static size_t tag_bytes(uint32_t tag)
{
    if (tag == 0 || tag > 0xFFFFFFu)
        return 0;
    if (tag <= 0xFFu) {
        const uint32_t b0 = tag;
        if (b0 == 0xFFu || (b0 & 0x1Fu) == 0x1Fu)
            return 0;
        return 1;
    }
    if (tag <= 0xFFFFu) {
        const uint32_t b0 = tag >> 8, b1 = tag & 0xFFu;
        if (b0 == 0xFFu || (b0 & 0x1Fu) != 0x1Fu || (b1 & 0x80u) != 0)
            return 0;
        return 2;
    }
    const uint32_t b0 = tag >> 16, b1 = (tag >> 8) & 0xFFu, b2 = tag & 0xFFu;
    if (b0 == 0xFFu || (b0 & 0x1Fu) != 0x1Fu || (b1 & 0x80u) == 0 || b1 == 0x80u ||
        (b2 & 0x80u) != 0)
        return 0;
    return 3;
}

/* Number of bytes of the minimal length field for len, 0 if len is too large. */
static size_t len_bytes(size_t len)
{
    if (len < 0x80u)
        return 1;
    if (len <= 0xFFu)
        return 2;
    if (len <= 0xFFFFu)
        return 3;
    if (len <= TLV_MAX_VALUE_LEN)
        return 4;
    return 0;
}

/* Writes the length field of lb bytes (as returned by len_bytes) for len at p. */
static void write_len(uint8_t *p, size_t len, size_t lb)
{
    if (lb == 1) {
        p[0] = (uint8_t)len;
        return;
    }
    p[0] = (uint8_t)(0x80u | (lb - 1));
    for (size_t i = 1; i < lb; i++)
        p[i] = (uint8_t)((len >> (8 * (lb - 1 - i))) & 0xFFu);
}

static void write_tag(uint8_t *p, uint32_t tag, size_t tb)
{
    for (size_t i = 0; i < tb; i++)
        p[i] = (uint8_t)((tag >> (8 * (tb - 1 - i))) & 0xFFu);
}

int tlv_parse(const uint8_t *buf, size_t len, struct tlv *out)
{
    if (out == NULL || (buf == NULL && len > 0))
        return TLV_E_ARG;
    if (len == 0)
        return TLV_E_TRUNCATED;

    size_t p = 0;
    uint8_t b = buf[p++];
    if (b == 0x00u || b == 0xFFu)
        return TLV_E_TAG; /* padding, not an object */
    uint32_t tag = b;
    if ((b & 0x1Fu) == 0x1Fu) {
        if (p >= len)
            return TLV_E_TRUNCATED;
        b = buf[p++];
        tag = (tag << 8) | b;
        if (b & 0x80u) {
            if (b == 0x80u)
                return TLV_E_TAG; /* leading zero bits in the tag number */
            if (p >= len)
                return TLV_E_TRUNCATED;
            b = buf[p++];
            tag = (tag << 8) | b;
            if (b & 0x80u)
                return TLV_E_TAG; /* a 4th tag byte would follow */
        }
    }

    if (p >= len)
        return TLV_E_TRUNCATED;
    b = buf[p++];
    size_t vlen;
    if (b < 0x80u) {
        vlen = b;
    } else {
        const size_t n = b & 0x7Fu;
        if (n == 0 || n > 3)
            return TLV_E_LENGTH; /* 80 indefinite, 84..FF */
        if (len - p < n)
            return TLV_E_TRUNCATED;
        uint32_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = (v << 8) | buf[p++];
#if SIZE_MAX < 0xFFFFFFu
        if (v > SIZE_MAX)
            return TLV_E_LENGTH;
#endif
        vlen = (size_t)v;
    }
    if (vlen > len - p)
        return TLV_E_TRUNCATED;

    out->tag = tag;
    out->len = vlen;
    out->value = buf + p;
    out->total = p + vlen;
    return 0;
}

int tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tlv *out)
{
    if (buf == NULL && len > 0)
        return TLV_E_ARG;
    struct tlv cur, first;
    bool found = false;
    size_t off = 0;
    memset(&first, 0, sizeof first);
    while (off < len) {
        const int rc = tlv_parse(buf + off, len - off, &cur);
        if (rc != 0)
            return rc;
        if (!found && cur.tag == tag) {
            first = cur;
            found = true;
        }
        off += cur.total; /* total >= 2, never past len */
    }
    if (!found)
        return TLV_E_NOT_FOUND;
    if (out != NULL)
        *out = first;
    return 0;
}

bool tlv_is_constructed(uint32_t tag)
{
    uint32_t b0;
    if (tag > 0xFFFFFFu)
        return false;
    else if (tag > 0xFFFFu)
        b0 = tag >> 16;
    else if (tag > 0xFFu)
        b0 = tag >> 8;
    else
        b0 = tag;
    return (b0 & 0x20u) != 0;
}

size_t tlv_header_size(uint32_t tag, size_t len)
{
    const size_t tb = tag_bytes(tag);
    const size_t lb = len_bytes(len);
    if (tb == 0 || lb == 0)
        return 0;
    return tb + lb;
}

size_t tlv_put(uint8_t *buf, size_t cap, uint32_t tag, const uint8_t *value, size_t len)
{
    const size_t tb = tag_bytes(tag);
    const size_t lb = len_bytes(len);
    if (tb == 0 || lb == 0 || buf == NULL)
        return 0;
    const size_t hdr = tb + lb;
    /* len <= 0xFFFFFF, so hdr + len cannot wrap */
    const size_t total = value != NULL ? hdr + len : hdr;
    if (cap < total)
        return 0;
    if (value != NULL && len > 0)
        memmove(buf + hdr, value, len); /* first, in case value overlaps the header area */
    write_tag(buf, tag, tb);
    write_len(buf + tb, len, lb);
    return total;
}

size_t tlv_put_header(uint8_t *buf, size_t cap, uint32_t tag, size_t len)
{
    return tlv_put(buf, cap, tag, NULL, len);
}

/* ---- builder ------------------------------------------------------------------------------ */

void tlv_w_init(struct tlv_writer *w, uint8_t *buf, size_t cap)
{
    if (w == NULL)
        return;
    w->buf = buf;
    w->cap = buf != NULL ? cap : 0;
    w->len = 0;
    w->overflow = false;
}

/* True if the writer is usable; marks it failed otherwise. */
static bool w_ok(struct tlv_writer *w)
{
    if (w == NULL)
        return false;
    if (w->overflow)
        return false;
    if (w->buf == NULL || w->len > w->cap) {
        w->overflow = true;
        return false;
    }
    return true;
}

bool tlv_w_put(struct tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len)
{
    if (!w_ok(w))
        return false;
    if (value == NULL && len > 0) {
        w->overflow = true;
        return false;
    }
    const size_t n = tlv_put(w->buf + w->len, w->cap - w->len, tag, value, len);
    if (n == 0) {
        w->overflow = true;
        return false;
    }
    w->len += n;
    return true;
}

bool tlv_w_put_u8(struct tlv_writer *w, uint32_t tag, uint8_t v)
{
    return tlv_w_put(w, tag, &v, 1);
}

bool tlv_w_put_u16(struct tlv_writer *w, uint32_t tag, uint16_t v)
{
    const uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)(v & 0xFFu) };
    return tlv_w_put(w, tag, b, sizeof b);
}

bool tlv_w_raw(struct tlv_writer *w, const uint8_t *data, size_t len)
{
    if (!w_ok(w))
        return false;
    if (len == 0)
        return true;
    if (data == NULL || w->cap - w->len < len) {
        w->overflow = true;
        return false;
    }
    memmove(w->buf + w->len, data, len);
    w->len += len;
    return true;
}

size_t tlv_w_begin(struct tlv_writer *w, uint32_t tag)
{
    if (!w_ok(w))
        return w != NULL ? w->len : 0;
    const size_t mark = w->len;
    const size_t n = tlv_put(w->buf + w->len, w->cap - w->len, tag, NULL, 0);
    if (n == 0) {
        w->overflow = true;
        return mark;
    }
    w->len += n; /* tag + placeholder length byte 00 */
    return mark;
}

bool tlv_w_end(struct tlv_writer *w, size_t mark)
{
    if (!w_ok(w))
        return false;
    /* Re-read the tag written by tlv_w_begin at mark to find the length placeholder. */
    if (mark >= w->len) {
        w->overflow = true;
        return false;
    }
    size_t tb = 1;
    if ((w->buf[mark] & 0x1Fu) == 0x1Fu) {
        tb = 2;
        if (mark + 1 < w->len && (w->buf[mark + 1] & 0x80u) != 0)
            tb = 3;
    }
    if (w->len - mark < tb + 1 || w->buf[mark + tb] != 0x00u) {
        w->overflow = true; /* not an open template */
        return false;
    }
    const size_t start = mark + tb + 1; /* first content byte */
    const size_t clen = w->len - start;
    const size_t lb = len_bytes(clen);
    if (lb == 0 || w->cap - w->len < lb - 1) {
        w->overflow = true;
        return false;
    }
    if (lb > 1) {
        memmove(w->buf + start + (lb - 1), w->buf + start, clen);
        w->len += lb - 1;
    }
    write_len(w->buf + mark + tb, clen, lb);
    return true;
}

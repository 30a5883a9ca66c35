/* BER-TLV data objects (ISO 7816-4 §5.2, X.690 §8.1): parsing, searching, building.
 * Tags are handled as their bytes read as a big-endian number (0x62, 0x5F20, 0xDF01, 0x7F49,
 * 0xDF8101), 1 to 3 bytes. Lengths use the definite forms 00..7F, 81 xx, 82 xxxx, 83 xxxxxx;
 * the parser accepts non-minimal length encodings, the builders always write the minimal one.
 * Padding bytes 00/FF between objects are NOT skipped: callers strip them if they allow them.
 * Firmware-safe: no allocation, no I/O, no state. */
#ifndef ICD_TLV_H
#define ICD_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLV_MAX_TAG_BYTES 3
#define TLV_MAX_LEN_BYTES 4          /* 83 xx xx xx */
#define TLV_MAX_HEADER    (TLV_MAX_TAG_BYTES + TLV_MAX_LEN_BYTES)
#define TLV_MAX_VALUE_LEN 0xFFFFFFu  /* largest length encodable with 83 xxxxxx */

enum tlv_err {
    TLV_E_TRUNCATED = -1, /* tag, length field or value runs past the end of the buffer */
    TLV_E_TAG       = -2, /* first byte 00/FF, more than 3 tag bytes, or 1F 80.. form */
    TLV_E_LENGTH    = -3, /* length byte 80 (indefinite) or 84..FF */
    TLV_E_NOT_FOUND = -4, /* tlv_find: no top-level object with that tag */
    TLV_E_ARG       = -5, /* NULL pointer where one is required */
};

struct tlv {
    uint32_t tag;          /* tag bytes as a big-endian number, e.g. 0x62, 0x5F20, 0xDF01, 0x7F49 */
    size_t len;            /* value length */
    const uint8_t *value;  /* points into the buffer (one past the header, also when len == 0) */
    size_t total;          /* header + value bytes consumed */
};

/* Decodes the one object starting at buf[0], reading nothing past buf[len-1] (bytes after
 * the object are ignored). Returns 0 and fills *out on success; TLV_E_TRUNCATED if len is 0 or
 * the tag, length or value runs past len; TLV_E_TAG for a bad tag (first byte 00 or FF, a 4th
 * tag byte, a first subsequent tag byte 80); TLV_E_LENGTH for length byte 80 or 84..FF;
 * TLV_E_ARG if out is NULL or buf is NULL with len > 0. On failure *out is unspecified. */
int tlv_parse(const uint8_t *buf, size_t len, struct tlv *out);

/* Walks all top-level objects of buf[0..len) and validates every one of them, also those after
 * the match. Returns 0 and sets *out (if out is not NULL) to the first object with this tag;
 * TLV_E_NOT_FOUND if all objects parse and none has it (also for len 0); otherwise the error
 * of the first malformed object (a malformed object anywhere fails the search). */
int tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tlv *out);

/* Returns true if the tag denotes a constructed object (bit 6, 0x20, of its first byte set),
 * false if primitive (and for 0 or a tag wider than 3 bytes). */
bool tlv_is_constructed(uint32_t tag);

/* Returns the number of tag + length bytes the builders write for (tag, len), or 0 if the tag
 * is not a valid 1..3-byte tag (see TLV_E_TAG) or len > TLV_MAX_VALUE_LEN. */
size_t tlv_header_size(uint32_t tag, size_t len);

/* Writes tag, minimal length and the len value bytes to buf[0..cap). If value is NULL only the
 * header (announcing len) is written, so the caller can append the value itself; with len == 0
 * value may be NULL and the result is the complete empty object. value may overlap buf.
 * Returns the bytes written (header + len, or header only when value is NULL); 0 if it does not
 * fit in cap, buf is NULL, the tag is invalid or len > TLV_MAX_VALUE_LEN (nothing written). */
size_t tlv_put(uint8_t *buf, size_t cap, uint32_t tag, const uint8_t *value, size_t len);

/* Writes only the tag and minimal length field for a value of len bytes (same as tlv_put with
 * value NULL). Returns the header size, or 0 if it does not fit / tag or len invalid. */
size_t tlv_put_header(uint8_t *buf, size_t cap, uint32_t tag, size_t len);

/* ---- builder ---------------------------------------------------------------------------------
 * Appends objects to buf[0..cap). Any failure (no room, invalid tag or length, bad mark) sets
 * 'overflow', which is sticky: every later call does nothing, so callers check once at the end.
 * Nested templates: mark = tlv_w_begin(w, tag); ...put the content...; tlv_w_end(w, mark).
 * end fixes up the length, moving the content when the length needs more than one byte.
 * Templates must be ended innermost first. Result: buf[0..len) when !overflow. */
struct tlv_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;     /* bytes written so far */
    bool overflow;  /* sticky failure flag */
};

/* Starts an empty writer over buf[0..cap) (buf may be NULL only with cap 0). No return value. */
void tlv_w_init(struct tlv_writer *w, uint8_t *buf, size_t cap);

/* Appends one object (value may be NULL only when len == 0). Returns true on success, false if
 * it failed now or the writer had already failed (overflow set). */
bool tlv_w_put(struct tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len);

/* Appends one object with a 1-byte value. Returns true on success, false on (sticky) failure. */
bool tlv_w_put_u8(struct tlv_writer *w, uint32_t tag, uint8_t v);

/* Appends one object with a 2-byte big-endian value. Returns true on success, false on failure. */
bool tlv_w_put_u16(struct tlv_writer *w, uint32_t tag, uint16_t v);

/* Appends raw bytes (e.g. pre-encoded objects). Returns true on success, false on failure. */
bool tlv_w_raw(struct tlv_writer *w, const uint8_t *data, size_t len);

/* Opens a template: writes the tag and a one-byte length placeholder. Returns the mark to pass
 * to tlv_w_end (on failure overflow is set and the returned mark is meaningless). */
size_t tlv_w_begin(struct tlv_writer *w, uint32_t tag);

/* Closes the template opened at mark: writes the content length, moving the content right when
 * the length field needs 2..4 bytes. Returns true on success, false on (sticky) failure: no room
 * for the longer length field, a mark that is not an open template, or earlier failure. */
bool tlv_w_end(struct tlv_writer *w, size_t mark);

#endif

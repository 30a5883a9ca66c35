#include "trace.h"

#include "apdu.h"
#include "hex.h"
#include "ins.h"
#include "sw.h"

/* Proprietary (CLA 8x) instructions whose data field is secret. Add each one here when it is
 * defined in ins.h. (A wrapped blob is not secret: it is made to travel.) */
static bool trace_proprietary_ins_is_secret(uint8_t ins)
{
    switch (ins) {
    case INS_SET_SHARE:
        return true;
    default:
        return false;
    }
}

bool trace_is_secret_response(const uint8_t *capdu, size_t len)
{
    /* PSO DECIPHER answers an ECDH shared secret: the key material of whatever it protects. */
    return capdu != NULL && len >= 2 && (capdu[0] & 0x80u) == 0 && capdu[1] == INS_PSO;
}

bool trace_is_secret_command(const uint8_t *capdu, size_t len)
{
    if (capdu == NULL || len < 2)
        return false;
    uint8_t cla = capdu[0];
    uint8_t ins = capdu[1];
    if (cla == 0xFFu)
        return false; /* invalid class (PPS), never sent to the card */
    if ((cla & 0x80u) == 0) {
        switch (ins) {
        case INS_VERIFY:
        case INS_CHANGE_REF_DATA:
        case INS_RESET_RETRY_COUNTER:
            return true;
        default:
            return false;
        }
    }
    /* Proprietary classes: 80..9F with chaining, SM or channel bits. Deciding on the INS alone
     * over every proprietary class errs on the side of hiding. */
    return trace_proprietary_ins_is_secret(ins);
}

static void trace_command(FILE *f, const uint8_t *buf, size_t len, bool redact_data)
{
    if (!redact_data || len <= 4) {
        fputc(' ', f);
        hex_fprint(f, buf, len);
        return;
    }
    struct capdu c;
    if (apdu_parse(buf, len, &c) != 0) {
        fputc(' ', f);
        hex_fprint(f, buf, 4);
        fprintf(f, " [%zu bytes redacted]", len - 4);
        return;
    }
    if (c.nc == 0 || c.data == NULL || c.data < buf || c.data + c.nc > buf + len) {
        fputc(' ', f);
        hex_fprint(f, buf, len);
        return;
    }
    size_t off = (size_t)(c.data - buf);
    size_t end = off + c.nc;
    fputc(' ', f);
    hex_fprint(f, buf, off);
    fprintf(f, " [%zu bytes redacted]", c.nc);
    if (end < len) {
        fputc(' ', f);
        hex_fprint(f, buf + end, len - end);
    }
}

static void trace_response(FILE *f, const uint8_t *buf, size_t len, bool redact_data)
{
    if (len < 2) {
        if (len > 0) {
            fputc(' ', f);
            hex_fprint(f, buf, len);
        }
        fprintf(f, " (malformed response: %zu byte%s, no status word)", len,
                len == 1 ? "" : "s");
        return;
    }
    size_t dlen = len - 2;
    if (dlen > 0) {
        if (redact_data) {
            fprintf(f, " [%zu bytes redacted]", dlen);
        } else {
            fputc(' ', f);
            hex_fprint(f, buf, dlen);
        }
    }
    uint16_t sw = (uint16_t)((buf[dlen] << 8) | buf[dlen + 1]);
    const char *what = sw_describe(sw);
    fprintf(f, " %02X %02X (%s)", buf[dlen], buf[dlen + 1],
            what != NULL && what[0] != '\0' ? what : "unknown status word");
}

void trace_apdu(FILE *f, const char *dir, const uint8_t *buf, size_t len, bool redact_data)
{
    if (f == NULL)
        return;
    if (dir == NULL)
        dir = ">";
    if (buf == NULL)
        len = 0;
    fputs(dir, f);
    if (dir[0] == '>')
        trace_command(f, buf, len, redact_data);
    else
        trace_response(f, buf, len, redact_data);
    fputc('\n', f);
    fflush(f);
}

/* Command APDU parse/build and status-word texts. See apdu.h and sw.h. */
#include "apdu.h"

#include <string.h>

#include "sw.h"

const char *sw_describe(uint16_t sw)
{
    switch (sw) {
    case SW_OK:                       return "OK";
    case SW_DATA_CORRUPTED:           return "part of returned data may be corrupted";
    case SW_EOF_WARNING:              return "end of file reached before reading Ne bytes";
    case SW_FILE_DEACTIVATED:         return "selected file deactivated";
    case SW_EXECUTION_ERROR:          return "execution error, memory unchanged";
    case SW_MEMORY_FAILURE:           return "memory failure";
    case SW_WRONG_LENGTH:             return "wrong length";
    case SW_CHANNEL_NOT_SUPPORTED:    return "logical channel not supported";
    case SW_SM_NOT_SUPPORTED:         return "secure messaging not supported";
    case SW_LAST_COMMAND_EXPECTED:    return "last command of the chain expected";
    case SW_CHAINING_NOT_SUPPORTED:   return "command chaining not supported";
    case SW_INCOMPATIBLE_FILE:        return "command incompatible with file structure";
    case SW_SECURITY_STATUS:          return "security status not satisfied";
    case SW_AUTH_BLOCKED:             return "authentication method blocked";
    case SW_REF_DATA_UNUSABLE:        return "reference data not usable";
    case SW_CONDITIONS_NOT_SATISFIED: return "conditions of use not satisfied";
    case SW_NO_CURRENT_EF:            return "command not allowed (no current EF)";
    case SW_SM_DO_MISSING:            return "expected secure messaging data objects missing";
    case SW_SM_DO_INCORRECT:          return "incorrect secure messaging data objects";
    case SW_WRONG_DATA:               return "incorrect parameters in the data field";
    case SW_FUNC_NOT_SUPPORTED:       return "function not supported";
    case SW_FILE_NOT_FOUND:           return "file or application not found";
    case SW_NOT_ENOUGH_MEMORY:        return "not enough memory space";
    case SW_INCORRECT_P1P2:           return "incorrect parameters P1-P2";
    case SW_NC_INCONSISTENT:          return "Nc inconsistent with P1-P2";
    case SW_REF_DATA_NOT_FOUND:       return "referenced data not found";
    case SW_FILE_EXISTS:              return "file already exists";
    case SW_DF_NAME_EXISTS:           return "DF name already exists";
    case SW_WRONG_P1P2:               return "wrong parameters P1-P2 (offset)";
    case SW_INS_NOT_SUPPORTED:        return "instruction not supported";
    case SW_CLA_NOT_SUPPORTED:        return "class not supported";
    case SW_UNKNOWN:                  return "no precise diagnosis";
    default:                          break;
    }
    if (SW_IS_COUNTER(sw))
        return "verification failed, tries left in low nibble";
    switch (SW_SW1(sw)) {
    case 0x61: return "bytes remaining (count in SW2)";
    case 0x6C: return "wrong Le (exact length in SW2)";
    case 0x62: return "warning, memory unchanged";
    case 0x63: return "warning, memory changed";
    case 0x64: return "execution error, memory unchanged";
    case 0x65: return "execution error, memory changed";
    case 0x66: return "security-related issue";
    case 0x67: return "wrong length";
    case 0x68: return "function in CLA not supported";
    case 0x69: return "command not allowed";
    case 0x6A: return "wrong parameters P1-P2";
    default:   return "unknown status word";
    }
}

/* ---- parse ---------------------------------------------------------------------------------- */

static void set_header(const uint8_t *buf, struct capdu *out)
{
    out->cla = buf[0];
    out->ins = buf[1];
    out->p1 = buf[2];
    out->p2 = buf[3];
    out->data = NULL;
    out->nc = 0;
    out->ne = 0;
    out->extended = false;
    out->apdu_case = 1;
}

int apdu_parse(const uint8_t *buf, size_t len, struct capdu *out)
{
    if (out == NULL || (buf == NULL && len > 0))
        return APDU_E_ARG;
    if (len < APDU_HEADER_LEN)
        return APDU_E_TOO_SHORT;

    set_header(buf, out);
    const size_t body = len - APDU_HEADER_LEN; /* bytes after the header, all in buf */
    const uint8_t *b = buf + APDU_HEADER_LEN;

    if (body == 0)
        return 0; /* case 1 */

    if (body == 1) { /* case 2S: Le, 00 means 256 */
        out->apdu_case = 2;
        out->ne = b[0] == 0 ? APDU_SHORT_MAX_NE : b[0];
        return 0;
    }

    if (b[0] != 0) { /* short Lc = B1, body is Lc + data [+ Le] */
        const size_t lc = b[0];
        if (body == 1 + lc) {
            out->apdu_case = 3;
        } else if (body == 2 + lc) {
            out->apdu_case = 4;
            out->ne = b[1 + lc] == 0 ? APDU_SHORT_MAX_NE : b[1 + lc];
        } else {
            return APDU_E_LENGTH;
        }
        out->nc = lc;
        out->data = b + 1;
        return 0;
    }

    /* B1 == 0: extended form; needs at least 00 X1 X2 */
    if (body < 3)
        return APDU_E_LENGTH;
    const size_t x = ((size_t)b[1] << 8) | b[2];
    out->extended = true;

    if (body == 3) { /* case 2E: Le = X1X2, 0000 means 65536 */
        out->apdu_case = 2;
        out->ne = x == 0 ? APDU_EXT_MAX_NE : x;
        return 0;
    }
    if (x == 0) /* extended Lc 0000 followed by more bytes */
        return APDU_E_LENGTH;
    if (body == 3 + x) {
        out->apdu_case = 3;
    } else if (body == 5 + x) {
        const size_t le = ((size_t)b[3 + x] << 8) | b[4 + x];
        out->apdu_case = 4;
        out->ne = le == 0 ? APDU_EXT_MAX_NE : le;
    } else {
        return APDU_E_LENGTH;
    }
    out->nc = x;
    out->data = b + 3;
    return 0;
}

/* ---- build ---------------------------------------------------------------------------------- */

int apdu_build(const struct capdu *c, bool force_extended, uint8_t *buf, size_t cap,
               size_t *out_len)
{
    if (c == NULL || out_len == NULL)
        return APDU_E_ARG;
    if (c->nc > APDU_EXT_MAX_NC || c->ne > APDU_EXT_MAX_NE || (c->nc > 0 && c->data == NULL))
        return APDU_E_LENGTH;

    const bool ext = force_extended || c->nc > APDU_SHORT_MAX_NC || c->ne > APDU_SHORT_MAX_NE;
    size_t need = APDU_HEADER_LEN;
    if (c->nc > 0)
        need += (ext ? 3u : 1u) + c->nc;
    if (c->ne > 0) {
        if (!ext)
            need += 1;
        else if (c->nc > 0)
            need += 2;
        else
            need += 3; /* case 2E: 00 Le1 Le2 */
    }
    if (buf == NULL || cap < need) {
        *out_len = need;
        return APDU_E_BUFFER;
    }

    size_t o = 0;
    buf[o++] = c->cla;
    buf[o++] = c->ins;
    buf[o++] = c->p1;
    buf[o++] = c->p2;
    if (c->nc > 0) {
        if (ext) {
            buf[o++] = 0x00;
            buf[o++] = (uint8_t)(c->nc >> 8);
            buf[o++] = (uint8_t)c->nc;
        } else {
            buf[o++] = (uint8_t)c->nc;
        }
        memmove(buf + o, c->data, c->nc);
        o += c->nc;
    }
    if (c->ne > 0) {
        if (ext) {
            if (c->nc == 0)
                buf[o++] = 0x00;
            /* 65536 encodes as 0000 by truncation */
            buf[o++] = (uint8_t)((c->ne >> 8) & 0xFFu);
            buf[o++] = (uint8_t)(c->ne & 0xFFu);
        } else {
            buf[o++] = (uint8_t)(c->ne & 0xFFu); /* 256 -> 00 */
        }
    }
    *out_len = o;
    return 0;
}

/* ---- response -------------------------------------------------------------------------------- */

int apdu_split_response(const uint8_t *buf, size_t len, size_t *data_len, uint16_t *sw)
{
    if (buf == NULL || len < 2)
        return APDU_E_TOO_SHORT;
    if (data_len != NULL)
        *data_len = len - 2;
    if (sw != NULL)
        *sw = (uint16_t)(((unsigned)buf[len - 2] << 8) | buf[len - 1]);
    return 0;
}

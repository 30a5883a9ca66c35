#include "transport.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "apdu.h"
#include "hex.h"
#include "ins.h"
#include "trace.h"

/* Every backend, in the order help texts list them. A new transport is one more file defining
 * its ops (declared in transport.h) and one more line here. */
static const struct transport_ops *const transport_backends[] = {
    &transport_sim_ops,
    &transport_tcp_ops,
    &transport_pcsc_ops,
    &transport_nfc_ops,
    &transport_qemu_ops,
    &transport_serial_ops,
};
#define TRANSPORT_NBACKENDS (sizeof transport_backends / sizeof transport_backends[0])

/* Bound on GET RESPONSE rounds for one command: 256 rounds of 256 bytes cover the largest
 * extended response; a card that keeps answering 61xx past that is broken. */
#define TRANSPORT_MAX_GET_RESPONSE 257

static void transport_set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

uint16_t transport_sw(const uint8_t *rapdu, size_t rlen)
{
    if (rapdu == NULL || rlen < 2)
        return 0;
    return (uint16_t)((rapdu[rlen - 2] << 8) | rapdu[rlen - 1]);
}

void transport_print_uri_help(FILE *f)
{
    for (size_t i = 0; i < TRANSPORT_NBACKENDS; i++)
        fprintf(f, "  %-16s %s\n", transport_backends[i]->synopsis,
                transport_backends[i]->description);
}

int transport_open(const char *uri, struct transport **out, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (out == NULL) {
        transport_set_err(err, errlen, "internal error: transport_open without an out pointer");
        return TRANSPORT_E_ARG;
    }
    *out = NULL;
    if (uri == NULL || uri[0] == '\0') {
        transport_set_err(err, errlen, "no reader given (use --card URI or ICDUP_CARD)");
        return TRANSPORT_E_URI;
    }
    const char *colon = strchr(uri, ':');
    if (colon != NULL) {
        size_t slen = (size_t)(colon - uri);
        for (size_t i = 0; i < TRANSPORT_NBACKENDS; i++) {
            const struct transport_ops *ops = transport_backends[i];
            if (strlen(ops->scheme) == slen && memcmp(ops->scheme, uri, slen) == 0) {
                struct transport *t = NULL;
                int rc = ops->open(colon + 1, &t, err, errlen);
                if (rc != 0) {
                    if (err[0] == '\0')
                        snprintf(err, errlen, "cannot open reader %s", uri);
                    return rc < 0 ? rc : TRANSPORT_E_OPEN;
                }
                t->ops = ops;
                t->trace = NULL;
                *out = t;
                return 0;
            }
        }
    }

    /* Unknown scheme: say which ones exist. */
    size_t used = 0;
    int n;
    if (colon != NULL)
        n = snprintf(err, errlen, "unknown reader URI scheme \"%.*s:\"; supported:",
                     (int)(colon - uri > 32 ? 32 : colon - uri), uri);
    else
        n = snprintf(err, errlen, "reader URI \"%.64s\" has no scheme; supported:", uri);
    if (n > 0)
        used = (size_t)n < errlen ? (size_t)n : errlen;
    for (size_t i = 0; i < TRANSPORT_NBACKENDS && used + 1 < errlen; i++) {
        n = snprintf(err + used, errlen - used, "%s %s", i == 0 ? "" : ",",
                     transport_backends[i]->synopsis);
        if (n < 0)
            break;
        used += (size_t)n;
        if (used >= errlen)
            used = errlen - 1;
    }
    return TRANSPORT_E_URI;
}

void transport_redact_next(struct transport *t)
{
    t->redact_next = true;
}

void transport_set_trace(struct transport *t, FILE *f)
{
    if (t != NULL)
        t->trace = f;
}

void transport_close(struct transport *t)
{
    if (t != NULL && t->ops != NULL && t->ops->close != NULL)
        t->ops->close(t);
}

int transport_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                       size_t cap, size_t *rlen, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (rlen != NULL)
        *rlen = 0;
    if (t == NULL || capdu == NULL || len == 0 || rapdu == NULL || cap < 2 || rlen == NULL) {
        transport_set_err(err, errlen, "internal error: bad arguments to transport_transmit");
        return TRANSPORT_E_ARG;
    }
    if (len > TRANSPORT_CAPDU_MAX) {
        snprintf(err, errlen, "command APDU of %zu bytes exceeds the maximum of %u", len,
                 TRANSPORT_CAPDU_MAX);
        return TRANSPORT_E_ARG;
    }
    trace_apdu(t->trace, ">", capdu, len, t->redact_next || trace_is_secret_command(capdu, len));
    t->redact_next = false;
    int rc = t->ops->transmit(t, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc == 0 && *rlen < 2) {
        snprintf(err, errlen, "malformed response of %zu byte%s (no status word)", *rlen,
                 *rlen == 1 ? "" : "s");
        rc = TRANSPORT_E_PROTOCOL;
    }
    if (rc != 0) {
        if (err[0] == '\0')
            transport_set_err(err, errlen, "transmit failed");
        if (t->trace != NULL) {
            fprintf(t->trace, "< error: %s\n", err);
            fflush(t->trace);
        }
        *rlen = 0;
        return rc < 0 ? rc : TRANSPORT_E_IO;
    }
    trace_apdu(t->trace, "<", rapdu, *rlen, trace_is_secret_response(capdu, len));
    return 0;
}

/* Rebuilds capdu with Ne = ne into out (heap, caller frees). Returns the new length or 0 when
 * the command cannot be rebuilt (malformed: then the 6Cxx answer is handed back as is). */
static size_t transport_with_le(const uint8_t *capdu, size_t len, size_t ne, uint8_t **out)
{
    struct capdu c;
    *out = NULL;
    if (apdu_parse(capdu, len, &c) != 0)
        return 0;
    c.ne = ne;
    size_t cap = len + 3;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return 0;
    size_t n = 0;
    if (apdu_build(&c, c.extended, buf, cap, &n) != 0 || n == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    return n;
}

/* transmit, and on 6Cxx once more with Le = xx (redacted as the first was). */
static int transport_exchange_one(struct transport *t, const uint8_t *capdu, size_t len,
                                  uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                  size_t errlen)
{
    bool redact = t != NULL && t->redact_next;
    int rc = transport_transmit(t, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc != 0 || *rlen != 2 || rapdu[0] != 0x6Cu)
        return rc;
    size_t ne = rapdu[1] == 0 ? 256u : rapdu[1];
    uint8_t *again = NULL;
    size_t alen = transport_with_le(capdu, len, ne, &again);
    if (alen == 0)
        return 0;
    t->redact_next = redact;
    rc = transport_transmit(t, again, alen, rapdu, cap, rlen, err, errlen);
    mbedtls_platform_zeroize(again, alen);
    free(again);
    return rc;
}

/* rapdu[0..*rlen) ends with 61xx: issues GET RESPONSE until the card stops answering 61xx,
 * appending the data. Returns 0 or an error (*rlen = 0 then). */
static int transport_get_responses(struct transport *t, uint8_t *rapdu, size_t cap,
                                   size_t *rlen, char *err, size_t errlen)
{
    int rc = 0;
    size_t total = *rlen - 2; /* data already received (usually none) */
    uint8_t sw1 = rapdu[*rlen - 2];
    uint8_t sw2 = rapdu[*rlen - 1];
    uint8_t *part = malloc(TRANSPORT_RAPDU_MAX);
    if (part == NULL) {
        transport_set_err(err, errlen, "out of memory");
        *rlen = 0;
        return TRANSPORT_E_IO;
    }
    int rounds = 0;
    while (sw1 == 0x61u) {
        if (++rounds > TRANSPORT_MAX_GET_RESPONSE) {
            snprintf(err, errlen, "card keeps answering 61xx after %d GET RESPONSE commands",
                     TRANSPORT_MAX_GET_RESPONSE);
            rc = TRANSPORT_E_PROTOCOL;
            break;
        }
        const uint8_t get_response[5] = { 0x00, 0xC0, 0x00, 0x00, sw2 };
        size_t plen = 0;
        rc = transport_exchange_one(t, get_response, sizeof get_response, part,
                                    TRANSPORT_RAPDU_MAX, &plen, err, errlen);
        if (rc != 0)
            break;
        size_t dlen = plen - 2;
        if (total + dlen + 2 > cap) {
            snprintf(err, errlen, "response of more than %zu bytes does not fit the %zu-byte "
                     "buffer", total + dlen, cap);
            rc = TRANSPORT_E_SPACE;
            break;
        }
        memcpy(rapdu + total, part, dlen);
        total += dlen;
        sw1 = part[plen - 2];
        sw2 = part[plen - 1];
    }
    free(part);
    if (rc != 0) {
        *rlen = 0;
        return rc;
    }
    rapdu[total] = sw1;
    rapdu[total + 1] = sw2;
    *rlen = total + 2;
    return 0;
}

/* One command as given, then GET RESPONSE while the card answers 61xx. */
static int transport_exchange_plain(struct transport *t, const uint8_t *capdu, size_t len,
                                    uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                    size_t errlen)
{
    int rc = transport_exchange_one(t, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc != 0 || rapdu[*rlen - 2] != 0x61u)
        return rc;
    return transport_get_responses(t, rapdu, cap, rlen, err, errlen);
}

/* Short-only readers, extended command c: sends it as a chain of short commands (ISO 7816-4
 * command chaining): data in pieces of at most 255 bytes, each but the last with CLA | 10 and
 * no Le, the last with Le = min(Ne, 256) (Le 00 for 256). Every link is traced and redacted as
 * the command would be. An intermediate answer other than 9000 ends the exchange: it is handed
 * back as the card gave it, without GET RESPONSE. On 6Cxx to the last link the whole chain is
 * sent once more with Le = xx (the card has consumed the chain); on 61xx GET RESPONSE follows. */
static int transport_exchange_chained(struct transport *t, const struct capdu *c,
                                      uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                      size_t errlen)
{
    bool redact = t->redact_next;
    size_t ne = c->ne > APDU_SHORT_MAX_NE ? APDU_SHORT_MAX_NE : c->ne;
    uint8_t link[APDU_HEADER_LEN + 1 + APDU_SHORT_MAX_NC + 1];
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t off = 0;
        bool last = false;
        while (!last) {
            size_t n = c->nc - off > APDU_SHORT_MAX_NC ? APDU_SHORT_MAX_NC : c->nc - off;
            last = off + n == c->nc;
            struct capdu s = {
                .cla = last ? c->cla : (uint8_t)(c->cla | CLA_CHAIN_BIT),
                .ins = c->ins, .p1 = c->p1, .p2 = c->p2,
                .data = n ? c->data + off : NULL, .nc = n, .ne = last ? ne : 0,
            };
            size_t llen = 0;
            if (apdu_build(&s, false, link, sizeof link, &llen) != 0) {
                transport_set_err(err, errlen, "internal error: cannot build a chained APDU");
                t->redact_next = false;
                *rlen = 0;
                return TRANSPORT_E_ARG;
            }
            t->redact_next = redact; /* every link of a secret command is redacted */
            int rc = transport_transmit(t, link, llen, rapdu, cap, rlen, err, errlen);
            mbedtls_platform_zeroize(link, sizeof link);
            if (rc != 0)
                return rc;
            if (!last && transport_sw(rapdu, *rlen) != SW_OK)
                return 0; /* the card refused a link: its answer is the result */
            off += n;
        }
        if (attempt > 0 || *rlen != 2 || rapdu[0] != 0x6Cu)
            break;
        ne = rapdu[1] == 0 ? 256u : rapdu[1];
    }
    if (rapdu[*rlen - 2] != 0x61u)
        return 0;
    return transport_get_responses(t, rapdu, cap, rlen, err, errlen);
}

/* Short-only readers: a READ BINARY with Ne > 256. The card sizes a READ BINARY answer by Ne
 * (a short Le 00 reads 256 bytes and answers 9000, not 61xx), so it is read as short READ
 * BINARYs of at most 256 bytes at successive offsets; an SFI form reads its first piece by SFI
 * (which makes the EF current) and the rest by offset. The answer is what the extended command
 * gives: the data with 9000, or with 6282 when the EF ends before Ne bytes (not for Ne 65536,
 * "as much as there is", which is also bounded by cap); a refusal is handed back as the card
 * gave it. */
static int transport_read_binary_pieces(struct transport *t, const struct capdu *c,
                                        uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                        size_t errlen)
{
    bool redact = t->redact_next;
    bool le_max = c->ne == APDU_EXT_MAX_NE;
    size_t want = le_max && c->ne > cap - 2 ? cap - 2 : c->ne;
    size_t off = (c->p1 & 0x80u) ? c->p2 : ((size_t)c->p1 << 8 | c->p2);
    uint8_t p1 = c->p1, p2 = c->p2;
    uint8_t part[APDU_SHORT_MAX_NE + 2];
    size_t total = 0;
    *rlen = 0;
    while (total < want) {
        size_t n = want - total > APDU_SHORT_MAX_NE ? APDU_SHORT_MAX_NE : want - total;
        const uint8_t cmd[5] = { c->cla, c->ins, p1, p2, (uint8_t)n }; /* 256 -> Le 00 */
        size_t plen = 0;
        t->redact_next = redact;
        int rc = transport_exchange_plain(t, cmd, sizeof cmd, part, sizeof part, &plen, err,
                                          errlen);
        if (rc != 0)
            return rc;
        uint16_t sw = transport_sw(part, plen);
        size_t dlen = plen - 2;
        if (sw != SW_OK && sw != SW_EOF_WARNING) {
            if (total > 0 && sw == SW_WRONG_P1P2)
                break; /* the EF ended exactly where the previous piece did */
            if (plen > cap) {
                transport_set_err(err, errlen, "response does not fit the buffer");
                return TRANSPORT_E_SPACE;
            }
            memcpy(rapdu, part, plen); /* a refusal (or warning) as the card gave it */
            *rlen = plen;
            return 0;
        }
        if (dlen > n || total + dlen + 2 > cap) {
            snprintf(err, errlen, "READ BINARY answer of %zu bytes does not fit (%zu asked, "
                     "%zu-byte buffer)", total + dlen, n, cap);
            return dlen > n ? TRANSPORT_E_PROTOCOL : TRANSPORT_E_SPACE;
        }
        memcpy(rapdu + total, part, dlen);
        total += dlen;
        off += dlen;
        if (sw == SW_EOF_WARNING || dlen < n || off > 0x7FFFu)
            break; /* end of the EF (or of the 15-bit offset range) */
        p1 = (uint8_t)(off >> 8);
        p2 = (uint8_t)off;
    }
    uint16_t sw = (le_max || total >= c->ne) ? SW_OK : SW_EOF_WARNING;
    rapdu[total] = (uint8_t)(sw >> 8);
    rapdu[total + 1] = (uint8_t)sw;
    *rlen = total + 2;
    return 0;
}

int transport_exchange(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                       size_t cap, size_t *rlen, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    struct capdu c;
    if (t != NULL && t->short_only && capdu != NULL && rapdu != NULL && rlen != NULL &&
        cap >= 2 && apdu_parse(capdu, len, &c) == 0 && c.extended) {
        err[0] = '\0';
        if (c.ins == INS_READ_BINARY && (c.cla & 0x80u) == 0 && c.nc == 0 &&
            c.ne > APDU_SHORT_MAX_NE && ((c.p1 & 0x80u) == 0 || (c.p1 & 0xE0u) == 0x80u))
            return transport_read_binary_pieces(t, &c, rapdu, cap, rlen, err, errlen);
        return transport_exchange_chained(t, &c, rapdu, cap, rlen, err, errlen);
    }
    return transport_exchange_plain(t, capdu, len, rapdu, cap, rlen, err, errlen);
}

int transport_vendor(struct transport *t, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                     char *err, size_t errlen)
{
    if (t == NULL || out == NULL || len == NULL || code < 0x80) {
        transport_set_err(err, errlen, "internal error: bad arguments to transport_vendor");
        return TRANSPORT_E_ARG;
    }
    if (t->ops->vendor == NULL) {
        transport_set_err(err, errlen, "this reader has no vendor controls (only the card "
                          "firmware on qemu: and serial: has)");
        return TRANSPORT_E_ARG;
    }
    return t->ops->vendor(t, code, out, cap, len, err, errlen);
}

int transport_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
                    size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (atr_len != NULL)
        *atr_len = 0;
    if (t == NULL || atr == NULL || atr_len == NULL || cap == 0) {
        transport_set_err(err, errlen, "internal error: bad arguments to transport_reset");
        return TRANSPORT_E_ARG;
    }
    int rc = t->ops->reset(t, atr, cap, atr_len, err, errlen);
    if (t->trace != NULL) {
        if (rc == 0) {
            fputs("* reset, ATR ", t->trace);
            hex_fprint(t->trace, atr, *atr_len);
            fputc('\n', t->trace);
        } else {
            fprintf(t->trace, "* reset failed: %s\n", err);
        }
        fflush(t->trace);
    }
    if (rc != 0) {
        if (err[0] == '\0')
            transport_set_err(err, errlen, "reset failed");
        *atr_len = 0;
        return rc < 0 ? rc : TRANSPORT_E_IO;
    }
    return 0;
}

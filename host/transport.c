#include "transport.h"

#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "hex.h"
#include "trace.h"

/* Every backend, in the order help texts list them. A new transport is one more file defining
 * its ops (declared in transport.h) and one more line here. */
static const struct transport_ops *const transport_backends[] = {
    &transport_sim_ops,
    &transport_tcp_ops,
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

/* transmit, and on 6Cxx once more with Le = xx. */
static int transport_exchange_one(struct transport *t, const uint8_t *capdu, size_t len,
                                  uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                  size_t errlen)
{
    int rc = transport_transmit(t, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc != 0 || *rlen != 2 || rapdu[0] != 0x6Cu)
        return rc;
    size_t ne = rapdu[1] == 0 ? 256u : rapdu[1];
    uint8_t *again = NULL;
    size_t alen = transport_with_le(capdu, len, ne, &again);
    if (alen == 0)
        return 0;
    rc = transport_transmit(t, again, alen, rapdu, cap, rlen, err, errlen);
    free(again);
    return rc;
}

int transport_exchange(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                       size_t cap, size_t *rlen, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    int rc = transport_exchange_one(t, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc != 0 || rapdu[*rlen - 2] != 0x61u)
        return rc;

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

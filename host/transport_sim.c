/* sim:PATH — the card core in this process over a file-backed NVM image. */
#include <stdlib.h>
#include <string.h>

#include "sim_card.h"
#include "transport.h"

struct transport_sim {
    struct transport base; /* first: the generic layer sees only this */
    struct sim_card sc;
    uint8_t resp[CARD_RAPDU_MAX];
};

static int transport_sim_open(const char *rest, struct transport **out, char *err,
                              size_t errlen)
{
    if (rest == NULL || rest[0] == '\0') {
        snprintf(err, errlen, "reader URI sim:PATH needs the path of an NVM image file");
        return TRANSPORT_E_URI;
    }
    struct transport_sim *ts = calloc(1, sizeof *ts);
    if (ts == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRANSPORT_E_OPEN;
    }
    if (sim_card_open(&ts->sc, rest, err, errlen) != 0) {
        free(ts);
        return TRANSPORT_E_OPEN;
    }
    *out = &ts->base;
    return 0;
}

static int transport_sim_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                                  uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                  size_t errlen)
{
    struct transport_sim *ts = (struct transport_sim *)t;
    size_t n = card_process(&ts->sc.card, capdu, len, ts->resp, sizeof ts->resp);
    if (n > cap) {
        snprintf(err, errlen, "response of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(rapdu, ts->resp, n);
    *rlen = n;
    return 0;
}

static int transport_sim_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                               char *err, size_t errlen)
{
    struct transport_sim *ts = (struct transport_sim *)t;
    uint8_t buf[CARD_ATR_MAX];
    card_power_off(&ts->sc.card);
    card_power_on(&ts->sc.card);
    size_t n = card_atr(&ts->sc.card, buf, sizeof buf);
    if (n > cap) {
        snprintf(err, errlen, "ATR of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(atr, buf, n);
    *atr_len = n;
    return 0;
}

static void transport_sim_close(struct transport *t)
{
    struct transport_sim *ts = (struct transport_sim *)t;
    sim_card_close(&ts->sc);
    free(ts);
}

const struct transport_ops transport_sim_ops = {
    .scheme = "sim",
    .synopsis = "sim:PATH",
    .description = "in-process simulated card over the NVM image file PATH "
                   "(created on first use)",
    .open = transport_sim_open,
    .transmit = transport_sim_transmit,
    .reset = transport_sim_reset,
    .close = transport_sim_close,
};

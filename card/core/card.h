/* The card: one context that owns NVM, security state and buffers, and the APDU entry point.
 * No globals: a port may run several cards in one process (the host tools do). */
#ifndef CARD_H
#define CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_config.h"
#include "nvm.h"
#include "../hal/hal_rng.h"

#define CARD_ATR_MAX 33
#define CARD_RAPDU_MAX (CARD_MAX_NE + 2)
#define CARD_SERIAL_LEN 8

/* Volatile security state: cleared at power-on and reset. */
struct card_security {
    bool pin_verified;
    bool admin_verified;
};

/* Command chaining (ISO 7816-4 5.3.3): the data of the chained commands received so far.
 * Volatile: dropped (and wiped, it may hold a PIN) at power events, when a command breaks the
 * chain, and once the last command of the chain has run. */
struct card_chain {
    bool active;
    uint8_t cla;              /* CLA of the chain without the chaining bit */
    uint8_t ins, p1, p2;
    size_t len;
    uint8_t data[CARD_MAX_NC];
};

struct card {
    struct nvm nvm;
    const struct hal_rng *rng;
    bool powered;
    struct card_security sec;
    uint8_t cur_df;            /* file-table slot of the current DF */
    uint8_t cur_ef;            /* file-table slot of the current EF, or 0xFF */
    uint8_t lcs;               /* card life cycle (cached from NVM) */
    uint8_t resp[CARD_MAX_NE]; /* response data being built */
    size_t pending_off;        /* GET RESPONSE: bytes of resp still to deliver */
    size_t pending_len;
    struct card_chain chain;   /* command chaining: data received so far */
};

/* Lays out a blank card on the device: NVM header, card record (serial from the random
 * source), the MF and the PIN slots, life cycle "creation". Returns 0 or a negative card_err. */
int card_format(struct card *card, const struct hal_nvm *dev, const struct hal_rng *rng);

/* Mounts an existing image (replaying an interrupted transaction). Returns 0, or
 * CARD_E_FOREIGN / CARD_E_CORRUPT / CARD_E_IO, never reformatting anything. */
int card_mount(struct card *card, const struct hal_nvm *dev, const struct hal_rng *rng);

/* Power events: each clears the security state, the current file, GET RESPONSE data and a
 * command chain in progress. */
void card_power_on(struct card *card);
void card_power_off(struct card *card);
void card_reset(struct card *card);

/* Writes the answer-to-reset into atr (cap >= CARD_ATR_MAX). Returns its length. */
size_t card_atr(const struct card *card, uint8_t *atr, size_t cap);

/* Processes one command APDU; writes response data and SW1-SW2 to rapdu (cap >= 2; data is
 * cut to fit). Returns the response length, always >= 2. Never fails: every refusal is a SW. */
size_t card_process(struct card *card, const uint8_t *capdu, size_t len,
                    uint8_t *rapdu, size_t cap);

#endif

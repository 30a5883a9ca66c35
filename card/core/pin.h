/* PIN objects (user PIN 81, PUK 82, admin PIN 83): reference data and retry counters in NVM.
 * Verification decrements and commits the counter *before* comparing, so cutting the power
 * after seeing a wrong-PIN response (or at any other instant) never gives a free try. */
#ifndef PIN_H
#define PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_config.h"
#include "nvm.h"

struct pin_status {
    uint8_t ref;
    bool set;
    uint8_t tries_left;
    uint8_t max_tries;
    uint8_t len;        /* length of the stored reference data, 0 if not set */
};

/* Stages all PIN slots, unset with full counters, into the open transaction (card format).
 * Returns 0 or < 0. */
int pin_format(struct nvm *nvm);

/* Checks every slot's CRC. Returns 0, CARD_E_CORRUPT or CARD_E_IO. */
int pin_check(struct nvm *nvm);

/* Reads the status of ref. Returns 0, CARD_E_REF_NOT_FOUND for an unknown reference,
 * CARD_E_CORRUPT or CARD_E_IO. */
int pin_status(struct nvm *nvm, uint8_t ref, struct pin_status *st);

/* Verifies candidate against ref: refuses an unset (CARD_E_REF_UNUSABLE) or blocked
 * (CARD_E_BLOCKED) reference; commits the decremented counter; compares in constant time over
 * the stored length (the candidate must be exactly that long); on a match commits the full
 * counter again. Returns CARD_OK on a match, CARD_W_TRIES_LEFT with *tries_left on a mismatch,
 * or an error (nothing compared). */
int pin_verify(struct nvm *nvm, uint8_t ref, const uint8_t *candidate, size_t len,
               uint8_t *tries_left);

/* Sets new reference data and a full counter. Returns 0, CARD_E_WRONG_DATA for a length
 * outside CARD_PIN_MIN_LEN..CARD_PIN_MAX_LEN, or an NVM error. */
int pin_set(struct nvm *nvm, uint8_t ref, const uint8_t *value, size_t len);

/* Restores the full counter of a set reference. Returns 0 or < 0. */
int pin_unblock(struct nvm *nvm, uint8_t ref);

#endif

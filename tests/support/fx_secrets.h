/* The secrets of the test and bench cards: user PIN "123456", PUK "12345678", admin PIN
 * "87654321" (the PINs card_fixture.h personalizes with), and n key-group shares whose bytes
 * follow from seed, present in the share array but not in the shares bitmask (the caller says
 * which it hands over). */
#ifndef FX_SECRETS_H
#define FX_SECRETS_H

#include <stdint.h>

#include "secrets.h"

void fx_secrets(struct secrets *s, unsigned n, uint8_t seed);

#endif

/* A complete simulated card for host processes: file-backed NVM, the OS random source, and
 * the card core. Shared by icsim and the host's in-process transport (sim:PATH). */
#ifndef SIM_CARD_H
#define SIM_CARD_H

#include <stddef.h>

#include "card.h"
#include "nvm_sim.h"

struct sim_card {
    struct nvm_sim nvm;
    struct hal_rng rng;
    struct card card;
};

/* Opens the card whose NVM image is at path: formats a new blank card when the file does not
 * exist; otherwise mounts it, refusing a short, foreign or corrupt image (never reformatting).
 * Returns 0, or -1 with a clear message in err. The card is powered on. */
int sim_card_open(struct sim_card *sc, const char *path, char *err, size_t errlen);

/* Same, over a RAM-only image that is formatted fresh (tests, fuzzing, benchmarks). */
int sim_card_open_ram(struct sim_card *sc, char *err, size_t errlen);

void sim_card_close(struct sim_card *sc);

/* A hal_rng over the OS (getrandom). */
extern const struct hal_rng sim_os_rng;

#endif

/* Simulated NVM for the host ports (icsim, in-process transport, tests, fuzzer, bench):
 * a RAM image, optionally mirrored to a file so a card keeps its state between runs, with
 * power-cut injection for the tearing tests. This is a port: it may use the OS and the heap. */
#ifndef NVM_SIM_H
#define NVM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../hal/hal_nvm.h"

/* What the write that meets the power cut leaves behind. */
enum nvm_sim_tear {
    NVM_SIM_TEAR_NONE,    /* the cut write programs nothing */
    NVM_SIM_TEAR_HALF,    /* the first half of the range is programmed, the rest untouched */
    NVM_SIM_TEAR_GARBAGE, /* the first half is programmed, the rest gets random bytes */
};

struct nvm_sim {
    struct hal_nvm hal;     /* hand &hal to the card core; hal.ctx points back here */
    uint8_t *mem;           /* RAM image, hal.size bytes */
    int fd;                 /* backing file, or -1 for a RAM-only card */
    long cut_after;         /* writes still allowed before the cut; -1: no cut armed */
    enum nvm_sim_tear tear;
    bool dead;              /* power is off: every read and write fails with CARD_E_IO */
    unsigned long writes;   /* write calls that reached the image */
    unsigned long bytes;    /* bytes those calls programmed */
    uint32_t tear_seed;     /* xorshift state for GARBAGE tears (deterministic) */
};

/* A RAM-only NVM of size bytes, all 0xFF (erased). Returns 0 or -1 (out of memory). */
int nvm_sim_open_ram(struct nvm_sim *s, uint32_t size);

/* Opens the image file at path. When it does not exist, creates it with size bytes of 0xFF and
 * sets *created. An existing file of any other size is refused (never resized or rewritten).
 * Returns 0, or -1 with a message in err. */
int nvm_sim_open_file(struct nvm_sim *s, const char *path, uint32_t size, bool *created,
                      char *err, size_t errlen);

/* Releases the image (and closes the file; every write already reached it). */
void nvm_sim_close(struct nvm_sim *s);

/* Arms a power cut: n more writes succeed, the next one is cut as tear says, and from then on
 * every access fails until nvm_sim_power_restore. n = -1 disarms. */
void nvm_sim_cut_after(struct nvm_sim *s, long n, enum nvm_sim_tear tear);

/* Power comes back: accesses work again, no cut armed. The image is as the cut left it. */
void nvm_sim_power_restore(struct nvm_sim *s);

/* Copies the RAM image out / in (size bytes), for tests that compare or rewind states. */
void nvm_sim_snapshot(const struct nvm_sim *s, uint8_t *out);
void nvm_sim_restore(struct nvm_sim *s, const uint8_t *in);

#endif

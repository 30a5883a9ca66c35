#include "sim_card.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "card_err.h"

static int sim_os_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    size_t off = 0;
    while (off < len) {
        ssize_t n = getrandom(buf + off, len - off, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CARD_E_RNG;
        }
        if (n == 0)
            return CARD_E_RNG;
        off += (size_t)n;
    }
    return 0;
}

const struct hal_rng sim_os_rng = { sim_os_rng_fill, NULL };

static bool sim_card_all_erased(const struct nvm_sim *s)
{
    for (uint32_t i = 0; i < s->hal.size; i++)
        if (s->mem[i] != 0xFFu)
            return false;
    return true;
}

static void sim_card_mount_error(const struct sim_card *sc, const char *path, int rc,
                                 char *err, size_t errlen)
{
    switch (rc) {
    case CARD_E_FOREIGN:
        if (sim_card_all_erased(&sc->nvm))
            snprintf(err, errlen,
                     "NVM image %s is blank (every byte erased): its creation was interrupted "
                     "before the card was formatted; delete the file to start a new card",
                     path);
        else
            snprintf(err, errlen,
                     "NVM image %s is not an icdup card image (foreign, or another layout "
                     "version); refusing to use it, the file is left untouched", path);
        break;
    case CARD_E_CORRUPT:
        snprintf(err, errlen,
                 "NVM image %s is corrupt (its header or card record fails its checks); "
                 "refusing to use it, the file is left untouched", path);
        break;
    case CARD_E_IO:
        snprintf(err, errlen, "NVM image %s: I/O error while mounting the card", path);
        break;
    default:
        snprintf(err, errlen, "NVM image %s cannot be mounted (card error %d)", path, rc);
        break;
    }
}

/* Makes a new formatted card image at path as one step: the image is created and formatted
 * under a temporary name, then linked into place (never over an existing file), so a process
 * killed while creating a card leaves either no card or a whole blank one — never a short or
 * unformatted image that every later open would refuse. A killed creator may leave a
 * "PATH.new-XXXXXX" file behind, which nothing reads. Returns 0 (also when another process
 * made the card meanwhile) or -1 with a message. */
static int sim_card_create(struct sim_card *sc, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new-XXXXXX", path) >= sizeof tmp) {
        snprintf(err, errlen, "NVM image path too long: %s", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create NVM image %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(tmp); /* the name is ours; nvm_sim_open_file creates the file exclusively */
    bool created = false;
    if (nvm_sim_open_file(&sc->nvm, tmp, CARD_NVM_DEFAULT_SIZE, &created, err, errlen) != 0)
        return -1;
    int rc = card_format(&sc->card, &sc->nvm.hal, &sc->rng);
    int synced = rc == 0 ? fsync(sc->nvm.fd) : 0;
    nvm_sim_close(&sc->nvm);
    if (rc != 0 || synced != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot format a new card in NVM image %s (card error %d)", path,
                 rc);
        return -1;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "cannot create NVM image %s: %s", path, strerror(e));
        return -1;
    }
    unlink(tmp);
    return 0;
}

int sim_card_open(struct sim_card *sc, const char *path, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (sc == NULL || path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no NVM image path given");
        return -1;
    }
    memset(sc, 0, sizeof *sc);
    sc->rng = sim_os_rng;

    if (access(path, F_OK) != 0 && errno == ENOENT &&
        sim_card_create(sc, path, err, errlen) != 0)
        return -1;
    bool created = false;
    if (nvm_sim_open_file(&sc->nvm, path, CARD_NVM_DEFAULT_SIZE, &created, err, errlen) != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot open NVM image %s", path);
        return -1;
    }
    int rc = card_mount(&sc->card, &sc->nvm.hal, &sc->rng);
    if (rc != 0) {
        sim_card_mount_error(sc, path, rc, err, errlen);
        nvm_sim_close(&sc->nvm);
        return -1;
    }
    card_power_on(&sc->card);
    return 0;
}

int sim_card_open_ram(struct sim_card *sc, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (sc == NULL) {
        snprintf(err, errlen, "internal error: no card");
        return -1;
    }
    memset(sc, 0, sizeof *sc);
    sc->rng = sim_os_rng;
    if (nvm_sim_open_ram(&sc->nvm, CARD_NVM_DEFAULT_SIZE) != 0) {
        snprintf(err, errlen, "out of memory for a %u-byte NVM image",
                 (unsigned)CARD_NVM_DEFAULT_SIZE);
        return -1;
    }
    int rc = card_format(&sc->card, &sc->nvm.hal, &sc->rng);
    if (rc != 0) {
        nvm_sim_close(&sc->nvm);
        snprintf(err, errlen, "cannot format a RAM card (card error %d)", rc);
        return -1;
    }
    card_power_on(&sc->card);
    return 0;
}

void sim_card_close(struct sim_card *sc)
{
    if (sc == NULL)
        return;
    card_power_off(&sc->card);
    nvm_sim_close(&sc->nvm);
    /* Drop the volatile state (and any response data) of the closed card. */
    memset(&sc->card, 0, sizeof sc->card);
}

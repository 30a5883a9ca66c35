/* Simulated NVM (host port). See nvm_sim.h and docs/nvm.md.
 *
 * The RAM image is authoritative for reads. With a backing file, every write is mirrored to the
 * file at once with pwrite of the same range, so killing the process at any instant leaves the
 * file exactly as the writes so far: a valid power cut. sync() does not fsync by default (the
 * simulator models power cuts, not host crashes); set ICDUP_NVM_FSYNC=1 in the environment to
 * make every sync an fdatasync of the file. */
#include "nvm_sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "card_err.h"

#define NVM_SIM_SEED 0x2545F491u
#define NVM_SIM_FILL_CHUNK 4096u

/* "cannot WHAT NVM image PATH: WHY" into err (if any). */
static void nvm_sim_err(char *err, size_t errlen, const char *what, const char *path,
                        const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "cannot %s NVM image %s: %s", what, path, why);
}

/* Writes all of buf at off; returns 0 or -1 with errno set. */
static int nvm_sim_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Reads all of buf at off; returns 0 or -1 with errno set (EIO for a short file). */
static int nvm_sim_pread_all(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static bool nvm_sim_range_ok(const struct nvm_sim *s, uint32_t addr, size_t len)
{
    return len <= s->hal.size && addr <= s->hal.size - len;
}

static uint8_t nvm_sim_random_byte(struct nvm_sim *s)
{
    uint32_t x = s->tear_seed != 0 ? s->tear_seed : NVM_SIM_SEED;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->tear_seed = x;
    return (uint8_t)(x >> 24);
}

/* Programs mem[addr..addr+len) from buf and mirrors it to the file. */
static int nvm_sim_program(struct nvm_sim *s, uint32_t addr, const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (s->fd >= 0 && nvm_sim_pwrite_all(s->fd, buf, len, (off_t)addr) != 0)
        return CARD_E_IO;
    memcpy(s->mem + addr, buf, len);
    s->writes++;
    s->bytes += len;
    return 0;
}

static int nvm_sim_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
    struct nvm_sim *s = ctx;
    if (s->dead)
        return CARD_E_IO;
    if (!nvm_sim_range_ok(s, addr, len))
        return CARD_E_INTERNAL;
    if (len > 0)
        memcpy(buf, s->mem + addr, len);
    return 0;
}

/* The write that meets the cut: programs a prefix (and maybe garbage), then the power is off. */
static int nvm_sim_tear_write(struct nvm_sim *s, uint32_t addr, const uint8_t *buf, size_t len)
{
    size_t half = len / 2;

    s->dead = true;
    s->cut_after = -1;
    if (s->tear == NVM_SIM_TEAR_NONE)
        return CARD_E_IO;
    if (s->tear == NVM_SIM_TEAR_HALF) {
        (void)nvm_sim_program(s, addr, buf, half);
        return CARD_E_IO;
    }
    /* GARBAGE: the real prefix, then random bytes for the rest, as one program operation. */
    uint8_t *tmp = malloc(len > 0 ? len : 1);
    if (tmp == NULL)
        return CARD_E_IO;
    if (half > 0)
        memcpy(tmp, buf, half);
    for (size_t i = half; i < len; i++)
        tmp[i] = nvm_sim_random_byte(s);
    (void)nvm_sim_program(s, addr, tmp, len);
    free(tmp);
    return CARD_E_IO;
}

static int nvm_sim_write(void *ctx, uint32_t addr, const void *buf, size_t len)
{
    struct nvm_sim *s = ctx;
    if (s->dead)
        return CARD_E_IO;
    if (!nvm_sim_range_ok(s, addr, len))
        return CARD_E_INTERNAL;
    if (s->cut_after == 0)
        return nvm_sim_tear_write(s, addr, buf, len);
    if (s->cut_after > 0)
        s->cut_after--;
    return nvm_sim_program(s, addr, buf, len);
}

static bool nvm_sim_fsync_wanted(void)
{
    const char *v = getenv("ICDUP_NVM_FSYNC");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static int nvm_sim_sync(void *ctx)
{
    struct nvm_sim *s = ctx;
    if (s->dead)
        return CARD_E_IO;
    if (s->fd >= 0 && nvm_sim_fsync_wanted() && fdatasync(s->fd) != 0)
        return CARD_E_IO;
    return 0;
}

static void nvm_sim_init(struct nvm_sim *s, uint8_t *mem, uint32_t size, int fd)
{
    memset(s, 0, sizeof *s);
    s->mem = mem;
    s->fd = fd;
    s->cut_after = -1;
    s->tear = NVM_SIM_TEAR_NONE;
    s->dead = false;
    s->tear_seed = NVM_SIM_SEED;
    s->hal.read = nvm_sim_read;
    s->hal.write = nvm_sim_write;
    s->hal.sync = nvm_sim_sync;
    s->hal.size = size;
    s->hal.ctx = s;
}

int nvm_sim_open_ram(struct nvm_sim *s, uint32_t size)
{
    uint8_t *mem;

    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (size == 0)
        return -1;
    mem = malloc(size);
    if (mem == NULL)
        return -1;
    memset(mem, 0xFF, size);
    nvm_sim_init(s, mem, size, -1);
    return 0;
}

/* Fills a freshly created file with size bytes of 0xFF. Returns 0 or -1 with errno set. */
static int nvm_sim_fill_erased(int fd, uint32_t size)
{
    uint8_t chunk[NVM_SIM_FILL_CHUNK];
    uint32_t off = 0;

    memset(chunk, 0xFF, sizeof chunk);
    while (off < size) {
        uint32_t n = size - off < NVM_SIM_FILL_CHUNK ? size - off : NVM_SIM_FILL_CHUNK;
        if (nvm_sim_pwrite_all(fd, chunk, n, (off_t)off) != 0)
            return -1;
        off += n;
    }
    return 0;
}

int nvm_sim_open_file(struct nvm_sim *s, const char *path, uint32_t size, bool *created,
                      char *err, size_t errlen)
{
    struct stat st;
    uint8_t *mem;
    bool made = false;
    int fd;

    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (created != NULL)
        *created = false;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || size == 0) {
        nvm_sim_err(err, errlen, "open", path ? path : "(null)", "no path or zero size");
        return -1;
    }

    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            nvm_sim_err(err, errlen, "create", path, strerror(errno));
            return -1;
        }
        made = true;
        if (nvm_sim_fill_erased(fd, size) != 0) {
            int e = errno;
            close(fd);
            unlink(path); /* ours, and unusable: a short image would be refused forever */
            nvm_sim_err(err, errlen, "write", path, strerror(e));
            return -1;
        }
    } else if (fd < 0) {
        nvm_sim_err(err, errlen, "open", path, strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        nvm_sim_err(err, errlen, "stat", path, strerror(e));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size != (off_t)size) {
        close(fd);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "NVM image %s is %lld bytes, expected %lu (short or foreign image; "
                     "refusing to touch it)",
                     path, (long long)st.st_size, (unsigned long)size);
        return -1;
    }

    mem = malloc(size);
    if (mem == NULL) {
        close(fd);
        nvm_sim_err(err, errlen, "load", path, "out of memory");
        return -1;
    }
    if (nvm_sim_pread_all(fd, mem, size, 0) != 0) {
        int e = errno;
        free(mem);
        close(fd);
        nvm_sim_err(err, errlen, "read", path, strerror(e));
        return -1;
    }
    nvm_sim_init(s, mem, size, fd);
    if (created != NULL)
        *created = made;
    return 0;
}

void nvm_sim_close(struct nvm_sim *s)
{
    free(s->mem);
    s->mem = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->hal.size = 0;
    s->dead = true;
}

void nvm_sim_cut_after(struct nvm_sim *s, long n, enum nvm_sim_tear tear)
{
    s->cut_after = n < 0 ? -1 : n;
    s->tear = tear;
}

void nvm_sim_power_restore(struct nvm_sim *s)
{
    s->dead = false;
    s->cut_after = -1;
}

void nvm_sim_snapshot(const struct nvm_sim *s, uint8_t *out)
{
    memcpy(out, s->mem, s->hal.size);
}

void nvm_sim_restore(struct nvm_sim *s, const uint8_t *in)
{
    memcpy(s->mem, in, s->hal.size);
    /* keep the file equal to the image; a void API has no way to report a failure here */
    if (s->fd >= 0 && nvm_sim_pwrite_all(s->fd, s->mem, s->hal.size, 0) != 0)
        s->dead = true;
}

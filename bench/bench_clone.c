/* Measures `icdup clone` (host/dup.c) with N = 3 shares from blank key groups: the APDUs of
 * one clone (proof included), its wall time in-process (two sim: NVM files) and over two icsim
 * processes (tcp:), and the NVM bytes both cards' NVM devices write during one clone.
 * Each round personalizes two fresh cards with the default profile (not timed) and clones.
 * The NVM figure reads the nvm_sim counters of in-process cards reached through a transport of
 * this file that runs the same card core (struct sim_card, file-backed) as sim: does.
 * Usage: bench_clone PATH-TO-ICSIM, or bench_clone --uris A B for one clone between two blank
 * cards behind any reader URIs (bench/run.sh: pcsc: readers). Prints "key value" lines for bench/run.sh. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dup.h"
#include "profile.h"
#include "fx_secrets.h"
#include "secrets.h"
#include "sim_card.h"
#include "transport.h"

#define ROUNDS_INPROC 20
#define ROUNDS_SOCKET 5
#define SHARES 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a transport over a struct sim_card we can look into ---------------------------------- */

struct counted {
    struct transport base;
    struct sim_card sc;
    uint8_t resp[CARD_RAPDU_MAX];
};

static int counted_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                            uint8_t *rapdu, size_t cap, size_t *rlen, char *err, size_t errlen)
{
    struct counted *c = (struct counted *)t;
    size_t n = card_process(&c->sc.card, capdu, len, c->resp, sizeof c->resp);
    if (n > cap) {
        snprintf(err, errlen, "response too long");
        return TRANSPORT_E_SPACE;
    }
    memcpy(rapdu, c->resp, n);
    *rlen = n;
    return 0;
}

static int counted_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                         char *err, size_t errlen)
{
    struct counted *c = (struct counted *)t;
    (void)err;
    (void)errlen;
    card_power_off(&c->sc.card);
    card_power_on(&c->sc.card);
    *atr_len = card_atr(&c->sc.card, atr, cap);
    return 0;
}

static void counted_close(struct transport *t)
{
    struct counted *c = (struct counted *)t;
    sim_card_close(&c->sc);
    free(c);
}

static const struct transport_ops counted_ops = {
    .scheme = "counted",
    .synopsis = "counted",
    .description = "bench: sim card with visible NVM counters",
    .open = NULL,
    .transmit = counted_transmit,
    .reset = counted_reset,
    .close = counted_close,
};

static struct counted *counted_open(const char *path)
{
    struct counted *c = calloc(1, sizeof *c);
    char err[256];
    if (c == NULL || sim_card_open(&c->sc, path, err, sizeof err) != 0) {
        fprintf(stderr, "bench_clone: %s\n", c ? err : "out of memory");
        free(c);
        return NULL;
    }
    c->base.ops = &counted_ops;
    return c;
}

/* ---- cards and clones --------------------------------------------------------------------- */

static struct secrets g_sec;

static void make_secrets(void)
{
    fx_secrets(&g_sec, SHARES, 0x11);
}

static int init_card(struct transport *t)
{
    struct secrets s = g_sec; /* PINs only: shares are set by the clone */
    s.shares = 0;
    struct cardop c;
    cardop_init(&c, t, "card");
    struct profile_options po = { .shares = SHARES, .secrets = &s };
    char err[512];
    int rc = profile_run(&c, &po, NULL, NULL, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "bench_clone: init: %s\n", err);
    return rc;
}

static int init_uri(const char *uri)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0) {
        fprintf(stderr, "bench_clone: %s\n", err);
        return -1;
    }
    int rc = init_card(t);
    transport_close(t);
    return rc;
}

/* One clone; *seconds its wall time, *apdus its APDUs. Returns 0 or -1. */
static int clone_once(struct transport *src, struct transport *dst, const char *state,
                      double *seconds, unsigned long *apdus)
{
    struct secrets shares = g_sec;
    shares.shares = (uint8_t)((1u << SHARES) - 1u);
    struct dup_options o = {
        .src_pin = &g_sec.pin, .dst_pin = &g_sec.pin, .shares = &shares, .state_dir = state,
    };
    struct dup_result r;
    char err[1024];
    double t0 = now();
    int rc = dup_clone(src, dst, &o, &r, err, sizeof err);
    *seconds = now() - t0;
    *apdus = r.apdus_src + r.apdus_dst;
    if (rc != 0 || !r.proved) {
        fprintf(stderr, "bench_clone: clone: %s\n", err);
        return -1;
    }
    return 0;
}

static int start_icsim(const char *icsim, const char *nvm, pid_t *pid, char *uri, size_t cap)
{
    int pipefd[2];
    if (pipe(pipefd))
        return -1;
    *pid = fork();
    if (*pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(icsim, icsim, "--nvm", nvm, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *in = fdopen(pipefd[0], "r");
    char line[256] = "", addr[200];
    int ok = in && fgets(line, sizeof line, in) &&
             sscanf(line, "icsim: listening on %199s", addr) == 1;
    if (in)
        fclose(in);
    if (!ok)
        return -1;
    snprintf(uri, cap, "tcp:%s", addr);
    return 0;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* --uris A B: one clone between two blank cards behind reader URIs (e.g. pcsc: readers). */
static int clone_uris(const char *ua, const char *ub)
{
    char dir[] = "/tmp/icdup-bench-clone-XXXXXX", state[64], err[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(state, sizeof state, "%s/state", dir);
    make_secrets();
    struct transport *ta = NULL, *tb = NULL;
    double sec = 0;
    unsigned long apdus = 0;
    int rc = 1;
    if (init_uri(ua) || init_uri(ub) || transport_open(ua, &ta, err, sizeof err) ||
        transport_open(ub, &tb, err, sizeof err))
        fprintf(stderr, "bench_clone: %s\n", err);
    else if (clone_once(ta, tb, state, &sec, &apdus) == 0)
        rc = 0;
    transport_close(ta);
    transport_close(tb);
    if (rc == 0)
        printf("clone_uris_ms %.2f\nclone_uris_apdus %lu\n", sec * 1000.0, apdus);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? rc : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--uris") == 0)
        return clone_uris(argv[2], argv[3]);
    if (argc != 2) {
        fprintf(stderr, "usage: bench_clone PATH-TO-ICSIM | --uris URI-A URI-B\n");
        return 2;
    }
    char dir[] = "/tmp/icdup-bench-clone-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char state[64], a[64], b[64], ua[80], ub[80];
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(a, sizeof a, "%s/a.nvm", dir);
    snprintf(b, sizeof b, "%s/b.nvm", dir);
    snprintf(ua, sizeof ua, "sim:%s", a);
    snprintf(ub, sizeof ub, "sim:%s", b);
    make_secrets();
    int rc = 1;
    double total = 0, sec;
    unsigned long apdus = 0;

    /* In-process, through the sim: transport. */
    for (int i = 0; i < ROUNDS_INPROC; i++) {
        unlink(a);
        unlink(b);
        struct transport *ta = NULL, *tb = NULL;
        char err[512];
        if (init_uri(ua) || init_uri(ub) || transport_open(ua, &ta, err, sizeof err) ||
            transport_open(ub, &tb, err, sizeof err)) {
            transport_close(ta);
            goto out;
        }
        int c = clone_once(ta, tb, state, &sec, &apdus);
        transport_close(ta);
        transport_close(tb);
        if (c)
            goto out;
        total += sec;
    }
    printf("clone_n3_apdus %lu\n", apdus);
    printf("clone_inproc_ms %.2f\n", 1000.0 * total / ROUNDS_INPROC);

    /* NVM bytes written by both cards during one clone. */
    unlink(a);
    unlink(b);
    struct counted *ca = counted_open(a), *cb = counted_open(b);
    if (ca == NULL || cb == NULL || init_card(&ca->base) || init_card(&cb->base)) {
        if (ca)
            counted_close(&ca->base);
        if (cb)
            counted_close(&cb->base);
        goto out;
    }
    unsigned long bytes0 = ca->sc.nvm.bytes + cb->sc.nvm.bytes;
    unsigned long writes0 = ca->sc.nvm.writes + cb->sc.nvm.writes;
    int c = clone_once(&ca->base, &cb->base, state, &sec, &apdus);
    unsigned long bytes = ca->sc.nvm.bytes + cb->sc.nvm.bytes - bytes0;
    unsigned long writes = ca->sc.nvm.writes + cb->sc.nvm.writes - writes0;
    counted_close(&ca->base);
    counted_close(&cb->base);
    if (c)
        goto out;
    printf("clone_nvm_bytes %lu\n", bytes);
    printf("clone_nvm_writes %lu\n", writes);

    /* Over two icsim processes. */
    total = 0;
    for (int i = 0; i < ROUNDS_SOCKET; i++) {
        unlink(a);
        unlink(b);
        pid_t pa = 0, pb = 0;
        char uta[240], utb[240], err[512];
        struct transport *ta = NULL, *tb = NULL;
        int ok = start_icsim(argv[1], a, &pa, uta, sizeof uta) == 0 &&
                 start_icsim(argv[1], b, &pb, utb, sizeof utb) == 0 && init_uri(uta) == 0 &&
                 init_uri(utb) == 0 && transport_open(uta, &ta, err, sizeof err) == 0 &&
                 transport_open(utb, &tb, err, sizeof err) == 0;
        if (!ok)
            fprintf(stderr, "bench_clone: icsim setup failed\n");
        int cr = ok ? clone_once(ta, tb, state, &sec, &apdus) : -1;
        transport_close(ta);
        transport_close(tb);
        stop(pa);
        stop(pb);
        if (cr)
            goto out;
        total += sec;
    }
    printf("clone_socket_ms %.2f\n", 1000.0 * total / ROUNDS_SOCKET);
    rc = 0;
out:
    secrets_wipe(&g_sec);
    unlink(a);
    unlink(b);
    rmdir(state);
    rmdir(dir);
    return rc;
}

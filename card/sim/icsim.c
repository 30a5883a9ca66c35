/* icsim: the simulated card as a process, speaking the vsmartcard vpcd/vicc framing.
 *
 *   icsim --nvm FILE --listen HOST:PORT [-v]   serve host tools (tcp:HOST:PORT), one at a time
 *   icsim --nvm FILE --vpcd HOST[:PORT] [-v]   be the card in pcscd's vpcd reader (port 35963)
 *
 * Framing: every message is a 2-byte big-endian length then the payload. A 1-byte payload is a
 * control: 00 power off, 01 power on, 02 reset (no answer), 04 get ATR (answered with the ATR).
 * A longer payload is a command APDU, answered with the response APDU. The NVM image is written
 * through on every NVM write, so killing the process at any instant is a power cut. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "net.h"
#include "sim_card.h"
#include "trace.h"

#define ICSIM_VPCD_DEFAULT_PORT "35963"
#define ICSIM_MAX_MSG 65544u        /* largest extended command APDU */
#define ICSIM_RETRY_MS 200
#define ICSIM_CONNECT_TIMEOUT_MS 5000
#define ICSIM_MAX_LISTEN 4

enum {
    VICC_POWER_OFF = 0x00,
    VICC_POWER_ON = 0x01,
    VICC_RESET = 0x02,
    VICC_GET_ATR = 0x04,
};

struct icsim {
    struct sim_card sc;
    bool verbose;
    uint8_t in[ICSIM_MAX_MSG];
    uint8_t out[2 + CARD_RAPDU_MAX];
    uint8_t resp[CARD_RAPDU_MAX];
};

static void icsim_usage(FILE *f)
{
    fputs("usage: icsim --nvm FILE (--listen HOST:PORT | --vpcd HOST[:PORT]) [-v]\n"
          "\n"
          "Runs the icdup card core over the NVM image FILE (a new blank card is created when\n"
          "FILE does not exist; an existing image is never reformatted) and serves it over the\n"
          "vsmartcard vpcd/vicc framing.\n"
          "\n"
          "  --nvm FILE          NVM image of the card\n"
          "  --listen HOST:PORT  accept host tools (reader URI tcp:HOST:PORT), one connection\n"
          "                      at a time; PORT 0 picks a free port. Prints\n"
          "                      \"icsim: listening on HOST:PORT\" once listening.\n"
          "  --vpcd HOST[:PORT]  connect to pcscd's vpcd driver (default port 35963) and be\n"
          "                      the card in its reader; reconnects every 200 ms\n"
          "  -v, --verbose       trace every APDU and response to stderr (secrets redacted)\n"
          "  -h, --help          this help\n"
          "\n"
          "Runs until killed; a kill at any instant is a power cut of the card.\n"
          "Exit status: 2 usage error, 1 runtime failure (refused NVM image, bind failure).\n",
          f);
}

static void icsim_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void icsim_quickack(int fd)
{
#ifdef TCP_QUICKACK
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
    (void)fd;
#endif
}

static void icsim_tune_socket(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    icsim_quickack(fd);
}

/* Splits HOST:PORT or [V6]:PORT. A missing port takes default_port (NULL: required). */
static int icsim_split(const char *arg, const char *default_port, char *host, size_t hostcap,
                       char *port, size_t portcap)
{
    const char *h = arg;
    size_t hlen;
    const char *p = NULL;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (close == NULL)
            return -1;
        h = arg + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else {
        const char *colon = strrchr(arg, ':');
        if (colon != NULL && strchr(arg, ':') != colon)
            return -1; /* a bare IPv6 address needs brackets */
        hlen = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
        if (colon != NULL)
            p = colon + 1;
    }
    if (p == NULL)
        p = default_port;
    if (p == NULL || hlen == 0 || hlen >= hostcap)
        return -1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5 || plen >= portcap)
        return -1;
    long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* Reads exactly n bytes. Returns 1 done, 0 orderly close before any byte, -1 on an error or a
 * close in the middle (errno then tells which: 0 for a close). */
static int icsim_read_exact(int fd, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = recv(fd, buf + off, n - off, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return off == 0 ? 0 : -1;
        icsim_quickack(fd);
        off += (size_t)r;
    }
    return 1;
}

/* Sends a length-prefixed message with one send call (completing short writes). */
static int icsim_send_msg(struct icsim *sim, int fd, const uint8_t *payload, size_t len)
{
    sim->out[0] = (uint8_t)(len >> 8);
    sim->out[1] = (uint8_t)len;
    memmove(sim->out + 2, payload, len);
    size_t total = len + 2;
    size_t off = 0;
    while (off < total) {
        ssize_t n = send(fd, sim->out + off, total - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Serves one connection until it closes or breaks the framing. The card is powered off at the
 * end: the next connection starts from a cold card (no PIN state leaks between clients). */
static void icsim_serve(struct icsim *sim, int fd, const char *peer)
{
    struct card *card = &sim->sc.card;
    icsim_tune_socket(fd);
    card_power_on(card);
    for (;;) {
        uint8_t hdr[2];
        errno = 0;
        int r = icsim_read_exact(fd, hdr, 2);
        if (r == 0) {
            if (sim->verbose)
                fprintf(stderr, "icsim: %s closed the connection\n", peer);
            break;
        }
        if (r < 0) {
            fprintf(stderr, "icsim: connection with %s lost: %s\n", peer,
                    errno != 0 ? strerror(errno) : "closed in the middle of a message");
            break;
        }
        size_t len = ((size_t)hdr[0] << 8) | hdr[1];
        if (len == 0 || len > ICSIM_MAX_MSG) {
            fprintf(stderr, "icsim: %s sent a message of %zu bytes (allowed 1..%u); closing "
                    "that connection\n", peer, len, ICSIM_MAX_MSG);
            break;
        }
        errno = 0;
        if (icsim_read_exact(fd, sim->in, len) != 1) {
            fprintf(stderr, "icsim: connection with %s lost in the middle of a %zu-byte "
                    "message\n", peer, len);
            break;
        }

        if (len == 1) {
            switch (sim->in[0]) {
            case VICC_POWER_OFF:
                if (sim->verbose)
                    fprintf(stderr, "icsim: power off\n");
                card_power_off(card);
                continue;
            case VICC_POWER_ON:
                if (sim->verbose)
                    fprintf(stderr, "icsim: power on\n");
                card_power_on(card);
                continue;
            case VICC_RESET:
                if (sim->verbose)
                    fprintf(stderr, "icsim: reset\n");
                card_reset(card);
                continue;
            case VICC_GET_ATR: {
                uint8_t atr[CARD_ATR_MAX];
                size_t n = card_atr(card, atr, sizeof atr);
                if (sim->verbose) {
                    fprintf(stderr, "icsim: ATR ");
                    hex_fprint(stderr, atr, n);
                    fputc('\n', stderr);
                }
                if (icsim_send_msg(sim, fd, atr, n) != 0) {
                    fprintf(stderr, "icsim: cannot send to %s: %s\n", peer, strerror(errno));
                    goto done;
                }
                continue;
            }
            default:
                fprintf(stderr, "icsim: %s sent unknown control byte %02X; ignored\n", peer,
                        sim->in[0]);
                continue;
            }
        }

        if (sim->verbose)
            trace_apdu(stderr, ">", sim->in, len, trace_is_secret_command(sim->in, len));
        size_t rlen = card_process(card, sim->in, len, sim->resp, sizeof sim->resp);
        if (sim->verbose)
            trace_apdu(stderr, "<", sim->resp, rlen, trace_is_secret_response(sim->in, len));
        if (icsim_send_msg(sim, fd, sim->resp, rlen) != 0) {
            fprintf(stderr, "icsim: cannot send to %s: %s\n", peer, strerror(errno));
            break;
        }
    }
done:
    card_power_off(card);
}

static int icsim_listen(struct icsim *sim, const char *host, const char *port)
{
    /* Every address HOST resolves to (localhost: 127.0.0.1 and ::1), on one port: the first
     * bind picks the port when PORT is 0, the others follow it. */
    int fds[ICSIM_MAX_LISTEN];
    unsigned bound_port = 0;
    char err[512];
    int nfds = net_listen(host, port, fds, ICSIM_MAX_LISTEN, &bound_port, err, sizeof err);
    if (nfds < 0) {
        fprintf(stderr, "icsim: error: %s\n", err);
        return 1;
    }

    if (strchr(host, ':') != NULL)
        printf("icsim: listening on [%s]:%u\n", host, (unsigned)bound_port);
    else
        printf("icsim: listening on %s:%u\n", host, (unsigned)bound_port);
    fflush(stdout);

    struct pollfd pfds[ICSIM_MAX_LISTEN];
    for (;;) {
        for (int i = 0; i < nfds; i++) {
            pfds[i].fd = fds[i];
            pfds[i].events = POLLIN;
            pfds[i].revents = 0;
        }
        int pr = poll(pfds, (nfds_t)nfds, -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "icsim: error: poll: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < nfds; i++) {
            if ((pfds[i].revents & POLLIN) == 0)
                continue;
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int cfd = accept(fds[i], (struct sockaddr *)&ss, &sl);
            if (cfd < 0) {
                if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                    fprintf(stderr, "icsim: accept: %s\n", strerror(errno));
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    icsim_sleep_ms(ICSIM_RETRY_MS);
                continue;
            }
            char peer[NI_MAXHOST + NI_MAXSERV + 4];
            net_peer_name(&ss, sl, peer, sizeof peer);
            if (sim->verbose)
                fprintf(stderr, "icsim: connection from %s\n", peer);
            icsim_serve(sim, cfd, peer);
            close(cfd);
        }
    }
}

/* vpcd mode: connect, serve, and reconnect every 200 ms forever (pcscd restarts). */
static int icsim_vpcd(struct icsim *sim, const char *host, const char *port)
{
    char hp[NET_NAME_MAX], peer[NET_NAME_MAX + 16], err[NET_NAME_MAX + 160];
    net_host_port(host, port, hp, sizeof hp);
    snprintf(peer, sizeof peer, "vpcd at %s", hp);
    bool reported = false;
    for (;;) {
        int fd = net_connect(host, port, ICSIM_CONNECT_TIMEOUT_MS, peer, err, sizeof err);
        if (fd < 0) {
            if (!reported) {
                fprintf(stderr, "icsim: %s; retrying every %d ms\n", err, ICSIM_RETRY_MS);
                reported = true;
            }
            icsim_sleep_ms(ICSIM_RETRY_MS);
            continue;
        }
        fprintf(stderr, "icsim: connected to %s\n", peer);
        reported = false;
        icsim_serve(sim, fd, peer);
        close(fd);
        fprintf(stderr, "icsim: disconnected from %s; reconnecting\n", peer);
        icsim_sleep_ms(ICSIM_RETRY_MS);
    }
    return 1; /* not reached */
}

int main(int argc, char **argv)
{
    const char *nvm = NULL;
    const char *listen_arg = NULL;
    const char *vpcd_arg = NULL;
    bool verbose = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *value = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            icsim_usage(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
            continue;
        } else if (strncmp(a, "--nvm", 5) == 0 && (a[5] == '\0' || a[5] == '=')) {
            slot = &nvm;
            value = a[5] == '=' ? a + 6 : NULL;
        } else if (strncmp(a, "--listen", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            slot = &listen_arg;
            value = a[8] == '=' ? a + 9 : NULL;
        } else if (strncmp(a, "--vpcd", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
            slot = &vpcd_arg;
            value = a[6] == '=' ? a + 7 : NULL;
        } else {
            fprintf(stderr, "icsim: error: unknown argument \"%s\"\n", a);
            fputs("Try 'icsim --help'.\n", stderr);
            return 2;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "icsim: error: %s needs a value\n", a);
                return 2;
            }
            value = argv[++i];
        }
        if (*slot != NULL) {
            fprintf(stderr, "icsim: error: %s given twice\n", a);
            return 2;
        }
        *slot = value;
    }
    if (nvm == NULL || nvm[0] == '\0') {
        fprintf(stderr, "icsim: error: --nvm FILE is required\n");
        fputs("Try 'icsim --help'.\n", stderr);
        return 2;
    }
    if ((listen_arg == NULL) == (vpcd_arg == NULL)) {
        fprintf(stderr, "icsim: error: give exactly one of --listen HOST:PORT and "
                        "--vpcd HOST[:PORT]\n");
        fputs("Try 'icsim --help'.\n", stderr);
        return 2;
    }
    char host[256];
    char port[8];
    if (listen_arg != NULL) {
        if (icsim_split(listen_arg, NULL, host, sizeof host, port, sizeof port) != 0) {
            fprintf(stderr, "icsim: error: --listen wants HOST:PORT (PORT 0..65535, an IPv6 "
                            "address in brackets), not \"%s\"\n", listen_arg);
            return 2;
        }
    } else if (icsim_split(vpcd_arg, ICSIM_VPCD_DEFAULT_PORT, host, sizeof host, port,
                           sizeof port) != 0 || strcmp(port, "0") == 0) {
        fprintf(stderr, "icsim: error: --vpcd wants HOST or HOST:PORT (PORT 1..65535), not "
                        "\"%s\"\n", vpcd_arg);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);

    struct icsim *sim = calloc(1, sizeof *sim);
    if (sim == NULL) {
        fprintf(stderr, "icsim: error: out of memory\n");
        return 1;
    }
    sim->verbose = verbose;
    char err[512];
    if (sim_card_open(&sim->sc, nvm, err, sizeof err) != 0) {
        fprintf(stderr, "icsim: error: %s\n", err);
        free(sim);
        return 1;
    }
    /* Connections power the card on; until then it is a card without power. */
    card_power_off(&sim->sc.card);

    int rc = listen_arg != NULL ? icsim_listen(sim, host, port) : icsim_vpcd(sim, host, port);
    sim_card_close(&sim->sc);
    free(sim);
    return rc;
}

/* tcp:HOST:PORT — a client of icsim --listen, over the vsmartcard vpcd/vicc framing:
 * every message is a 2-byte big-endian length then the payload; a 1-byte payload is a control
 * (00 power off, 01 power on, 02 reset, 04 get ATR), a longer one an APDU. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

#define TCP_TIMEOUT_MS 10000     /* how long a command may take to be answered */
#define TCP_CONNECT_TIMEOUT_MS 5000

enum {
    VICC_POWER_OFF = 0x00,
    VICC_POWER_ON = 0x01,
    VICC_RESET = 0x02,
    VICC_GET_ATR = 0x04,
};

struct transport_tcp {
    struct transport base; /* first: the generic layer sees only this */
    int fd;
    bool broken;           /* an earlier failure left the stream out of sync */
    char peer[280];        /* "HOST:PORT" as the user wrote it, for messages */
    uint8_t frame[2 + TRANSPORT_RAPDU_MAX]; /* outgoing frames and incoming payloads */
};

static long tcp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void tcp_quickack(int fd)
{
#ifdef TCP_QUICKACK
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
    (void)fd;
#endif
}

/* Splits "HOST:PORT" or "[V6ADDR]:PORT". Returns 0 or -1. */
static int tcp_split(const char *rest, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *h = rest;
    size_t hlen;
    const char *p;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = rest + 1;
        hlen = (size_t)(close - h);
        p = close + 2;
    } else {
        const char *colon = strrchr(rest, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - rest);
        p = colon + 1;
    }
    if (hlen == 0 || hlen >= hostcap)
        return -1;
    size_t plen = strlen(p);
    if (plen == 0 || plen >= portcap || plen > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* Connects one address with a timeout. Returns the socket or -1 with errno set. */
static int tcp_connect_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int pr;
        do {
            pr = poll(&pfd, 1, TCP_CONNECT_TIMEOUT_MS);
        } while (pr < 0 && errno == EINTR);
        if (pr == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (pr < 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    if (fcntl(fd, F_SETFL, flags) < 0)
        goto fail;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tcp_quickack(fd);
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int tcp_fail(struct transport_tcp *tt, int code, char *err, size_t errlen,
                    const char *what)
{
    tt->broken = true;
    snprintf(err, errlen, "%s (icsim at %s)", what, tt->peer);
    return code;
}

/* Sends one length-prefixed message (len <= 65535) in one send call (short writes are
 * completed). */
static int tcp_send_msg(struct transport_tcp *tt, const uint8_t *payload, size_t len,
                        char *err, size_t errlen)
{
    if (tt->broken) {
        snprintf(err, errlen, "connection to icsim at %s is unusable after an earlier error",
                 tt->peer);
        return TRANSPORT_E_IO;
    }
    tt->frame[0] = (uint8_t)(len >> 8);
    tt->frame[1] = (uint8_t)len;
    memcpy(tt->frame + 2, payload, len);
    size_t total = len + 2;
    size_t off = 0;
    while (off < total) {
        ssize_t n = send(tt->fd, tt->frame + off, total - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET) {
                tt->broken = true;
                snprintf(err, errlen, "connection to icsim at %s closed", tt->peer);
                return TRANSPORT_E_IO;
            }
            char what[160];
            snprintf(what, sizeof what, "send failed: %s", strerror(errno));
            return tcp_fail(tt, TRANSPORT_E_IO, err, errlen, what);
        }
        off += (size_t)n;
    }
    return 0;
}

/* Reads exactly n bytes before the deadline. */
static int tcp_recv_exact(struct transport_tcp *tt, uint8_t *buf, size_t n, long deadline,
                          char *err, size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        long left = deadline - tcp_now_ms();
        if (left <= 0) {
            tt->broken = true;
            snprintf(err, errlen, "card did not answer within %d s (icsim at %s)",
                     TCP_TIMEOUT_MS / 1000, tt->peer);
            return TRANSPORT_E_TIMEOUT;
        }
        struct pollfd pfd = { .fd = tt->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            char what[160];
            snprintf(what, sizeof what, "poll failed: %s", strerror(errno));
            return tcp_fail(tt, TRANSPORT_E_IO, err, errlen, what);
        }
        if (pr == 0)
            continue; /* the deadline check above reports it */
        ssize_t r = recv(tt->fd, buf + off, n - off, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno == ECONNRESET) {
                tt->broken = true;
                snprintf(err, errlen, "connection to icsim at %s closed", tt->peer);
                return TRANSPORT_E_IO;
            }
            char what[160];
            snprintf(what, sizeof what, "receive failed: %s", strerror(errno));
            return tcp_fail(tt, TRANSPORT_E_IO, err, errlen, what);
        }
        if (r == 0) {
            tt->broken = true;
            snprintf(err, errlen, "connection to icsim at %s closed", tt->peer);
            return TRANSPORT_E_IO;
        }
        tcp_quickack(tt->fd);
        off += (size_t)r;
    }
    return 0;
}

/* Receives one message into tt->frame; *len gets the payload length. */
static int tcp_recv_msg(struct transport_tcp *tt, size_t *len, char *err, size_t errlen)
{
    long deadline = tcp_now_ms() + TCP_TIMEOUT_MS;
    uint8_t hdr[2];
    int rc = tcp_recv_exact(tt, hdr, 2, deadline, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = ((size_t)hdr[0] << 8) | hdr[1];
    if (n == 0 || n > TRANSPORT_RAPDU_MAX) {
        char what[96];
        snprintf(what, sizeof what, "protocol error: message of %zu bytes", n);
        return tcp_fail(tt, TRANSPORT_E_PROTOCOL, err, errlen, what);
    }
    rc = tcp_recv_exact(tt, tt->frame, n, deadline, err, errlen);
    if (rc != 0)
        return rc;
    *len = n;
    return 0;
}

static int tcp_control(struct transport_tcp *tt, uint8_t code, char *err, size_t errlen)
{
    return tcp_send_msg(tt, &code, 1, err, errlen);
}

static int tcp_get_atr(struct transport_tcp *tt, uint8_t *atr, size_t cap, size_t *atr_len,
                       char *err, size_t errlen)
{
    int rc = tcp_control(tt, VICC_GET_ATR, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = 0;
    rc = tcp_recv_msg(tt, &n, err, errlen);
    if (rc != 0)
        return rc;
    if (n > TRANSPORT_ATR_MAX) {
        char what[96];
        snprintf(what, sizeof what, "protocol error: ATR of %zu bytes", n);
        return tcp_fail(tt, TRANSPORT_E_PROTOCOL, err, errlen, what);
    }
    if (n > cap) {
        snprintf(err, errlen, "ATR of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(atr, tt->frame, n);
    *atr_len = n;
    return 0;
}

static void transport_tcp_close(struct transport *t)
{
    struct transport_tcp *tt = (struct transport_tcp *)t;
    if (tt->fd >= 0)
        close(tt->fd);
    free(tt);
}

static int transport_tcp_open(const char *rest, struct transport **out, char *err,
                              size_t errlen)
{
    char host[256];
    char port[8];
    if (rest == NULL || tcp_split(rest, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, errlen, "reader URI tcp:%.200s is not of the form tcp:HOST:PORT "
                 "(PORT 1..65535, an IPv6 address in brackets)", rest != NULL ? rest : "");
        return TRANSPORT_E_URI;
    }
    struct transport_tcp *tt = calloc(1, sizeof *tt);
    if (tt == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRANSPORT_E_OPEN;
    }
    tt->fd = -1;
    snprintf(tt->peer, sizeof tt->peer, "%s", rest);

    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        free(tt);
        return TRANSPORT_E_OPEN;
    }
    int last_errno = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        tt->fd = tcp_connect_one(ai);
        if (tt->fd >= 0)
            break;
        last_errno = errno;
    }
    freeaddrinfo(res);
    if (tt->fd < 0) {
        snprintf(err, errlen, "cannot connect to icsim at %s: %s", tt->peer,
                 strerror(last_errno));
        free(tt);
        return TRANSPORT_E_OPEN;
    }

    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    int rc = tcp_control(tt, VICC_POWER_ON, err, errlen);
    if (rc == 0)
        rc = tcp_get_atr(tt, atr, sizeof atr, &atr_len, err, errlen);
    if (rc != 0) {
        transport_tcp_close(&tt->base);
        return rc;
    }
    *out = &tt->base;
    return 0;
}

static int transport_tcp_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                                  uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                  size_t errlen)
{
    struct transport_tcp *tt = (struct transport_tcp *)t;
    if (len < 2) {
        /* A 1-byte payload is a control in this framing: it cannot carry an APDU. */
        snprintf(err, errlen, "a %zu-byte command APDU cannot be sent over the icsim framing",
                 len);
        return TRANSPORT_E_ARG;
    }
    if (len > 0xFFFFu) {
        /* The 2-byte length of the framing caps a message at 65535 bytes. */
        snprintf(err, errlen, "a %zu-byte command APDU does not fit the icsim framing "
                 "(at most 65535 bytes)", len);
        return TRANSPORT_E_ARG;
    }
    int rc = tcp_send_msg(tt, capdu, len, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = 0;
    rc = tcp_recv_msg(tt, &n, err, errlen);
    if (rc != 0)
        return rc;
    if (n < 2) {
        char what[96];
        snprintf(what, sizeof what, "protocol error: response APDU of %zu byte", n);
        return tcp_fail(tt, TRANSPORT_E_PROTOCOL, err, errlen, what);
    }
    if (n > cap) {
        snprintf(err, errlen, "response of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(rapdu, tt->frame, n);
    *rlen = n;
    return 0;
}

static int transport_tcp_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                               char *err, size_t errlen)
{
    struct transport_tcp *tt = (struct transport_tcp *)t;
    int rc = tcp_control(tt, VICC_POWER_OFF, err, errlen);
    if (rc == 0)
        rc = tcp_control(tt, VICC_POWER_ON, err, errlen);
    if (rc == 0)
        rc = tcp_get_atr(tt, atr, cap, atr_len, err, errlen);
    return rc;
}

const struct transport_ops transport_tcp_ops = {
    .scheme = "tcp",
    .synopsis = "tcp:HOST:PORT",
    .description = "a simulator started with icsim --listen HOST:PORT",
    .open = transport_tcp_open,
    .transmit = transport_tcp_transmit,
    .reset = transport_tcp_reset,
    .close = transport_tcp_close,
};

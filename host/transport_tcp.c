/* tcp:HOST:PORT — a client of icsim --listen, over the vsmartcard vpcd/vicc framing:
 * every message is a 2-byte big-endian length then the payload; a 1-byte payload is a control
 * (00 power off, 01 power on, 02 reset, 04 get ATR), a longer one an APDU (vpcd_frame.c). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "net.h"
#include "transport.h"
#include "vpcd_frame.h"

#define TCP_TIMEOUT_MS 10000     /* how long a command may take to be answered */
#define TCP_CONNECT_TIMEOUT_MS 5000

struct transport_tcp {
    struct transport base; /* first: the generic layer sees only this */
    struct vpcd_link link; /* its name is "icsim at HOST:PORT" */
};

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

static void transport_tcp_close(struct transport *t)
{
    struct transport_tcp *tt = (struct transport_tcp *)t;
    if (tt->link.fd >= 0)
        close(tt->link.fd);
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
    tt->link.fd = -1;
    tt->link.socket = true;
    tt->link.timeout_ms = TCP_TIMEOUT_MS;
    tt->link.after_read = tcp_quickack;
    snprintf(tt->link.name, sizeof tt->link.name, "icsim at %s", rest);

    tt->link.fd = net_connect(host, port, TCP_CONNECT_TIMEOUT_MS, tt->link.name, err, errlen);
    if (tt->link.fd < 0) {
        free(tt);
        return TRANSPORT_E_OPEN;
    }
    tcp_quickack(tt->link.fd);

    int rc = vpcd_power_on(&tt->link, err, errlen);
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
    return vpcd_transmit(&((struct transport_tcp *)t)->link, capdu, len, rapdu, cap, rlen, err,
                         errlen);
}

static int transport_tcp_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                               char *err, size_t errlen)
{
    return vpcd_reset(&((struct transport_tcp *)t)->link, atr, cap, atr_len, err, errlen);
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

/* The length-prefixed card framing, client side (see vpcd_frame.h). */
#include "vpcd_frame.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define VPCD_SLICE_MS 500 /* poll slice while a peer_gone hook is watched */

long vpcd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void vpcd_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool vpcd_gone(struct vpcd_link *l, char *err, size_t errlen)
{
    return l->peer_gone != NULL && l->peer_gone(l->ctx, err, errlen);
}

int vpcd_fail(struct vpcd_link *l, int code, char *err, size_t errlen, const char *what)
{
    l->broken = true;
    if (!vpcd_gone(l, err, errlen))
        snprintf(err, errlen, "%s (%s)", what, l->name);
    return code;
}

/* The peer closed the stream (EOF, EPIPE, ECONNRESET, a hung-up tty). */
static int vpcd_closed(struct vpcd_link *l, char *err, size_t errlen)
{
    l->broken = true;
    if (l->peer_gone != NULL)
        vpcd_sleep_ms(50); /* let a dying QEMU finish exiting so its status can be reported */
    if (!vpcd_gone(l, err, errlen))
        snprintf(err, errlen, "%s closed the connection", l->name);
    return TRANSPORT_E_IO;
}

int vpcd_send_msg(struct vpcd_link *l, const uint8_t *payload, size_t len, char *err,
                  size_t errlen)
{
    if (l->broken) {
        snprintf(err, errlen, "%s is unusable after an earlier error", l->name);
        return TRANSPORT_E_IO;
    }
    if (len > 0xFFFFu) {
        snprintf(err, errlen, "a %zu-byte message does not fit the card framing", len);
        return TRANSPORT_E_ARG;
    }
    l->frame[0] = (uint8_t)(len >> 8);
    l->frame[1] = (uint8_t)len;
    memcpy(l->frame + 2, payload, len);
    size_t total = len + 2, off = 0;
    while (off < total) {
        ssize_t n = l->socket ? send(l->fd, l->frame + off, total - off, MSG_NOSIGNAL)
                              : write(l->fd, l->frame + off, total - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = { .fd = l->fd, .events = POLLOUT };
                if (poll(&pfd, 1, l->timeout_ms) > 0)
                    continue;
                return vpcd_fail(l, TRANSPORT_E_TIMEOUT, err, errlen, "send timed out");
            }
            if (errno == EPIPE || errno == ECONNRESET || errno == EIO)
                return vpcd_closed(l, err, errlen);
            char what[160];
            snprintf(what, sizeof what, "send failed: %s", strerror(errno));
            return vpcd_fail(l, TRANSPORT_E_IO, err, errlen, what);
        }
        off += (size_t)n;
    }
    return 0;
}

/* Reads exactly n bytes before the deadline. */
static int vpcd_recv_exact(struct vpcd_link *l, uint8_t *buf, size_t n, long deadline,
                           char *err, size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        long left = deadline - vpcd_now_ms();
        if (left <= 0) {
            l->broken = true;
            if (!vpcd_gone(l, err, errlen))
                snprintf(err, errlen, "%s did not answer within %d s", l->name,
                         (l->timeout_ms + 999) / 1000);
            return TRANSPORT_E_TIMEOUT;
        }
        int wait = (int)left;
        if (l->peer_gone != NULL && wait > VPCD_SLICE_MS)
            wait = VPCD_SLICE_MS;
        struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, wait);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            char what[160];
            snprintf(what, sizeof what, "poll failed: %s", strerror(errno));
            return vpcd_fail(l, TRANSPORT_E_IO, err, errlen, what);
        }
        if (pr == 0) {
            if (vpcd_gone(l, err, errlen)) {
                l->broken = true;
                return TRANSPORT_E_IO;
            }
            continue; /* the deadline check above reports a timeout */
        }
        ssize_t r = l->socket ? recv(l->fd, buf + off, n - off, 0)
                              : read(l->fd, buf + off, n - off);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno == ECONNRESET || errno == EIO) /* EIO: the tty hung up */
                return vpcd_closed(l, err, errlen);
            char what[160];
            snprintf(what, sizeof what, "receive failed: %s", strerror(errno));
            return vpcd_fail(l, TRANSPORT_E_IO, err, errlen, what);
        }
        if (r == 0)
            return vpcd_closed(l, err, errlen);
        if (l->after_read != NULL)
            l->after_read(l->fd);
        off += (size_t)r;
    }
    return 0;
}

int vpcd_recv_msg(struct vpcd_link *l, size_t *len, char *err, size_t errlen)
{
    if (l->broken) {
        snprintf(err, errlen, "%s is unusable after an earlier error", l->name);
        return TRANSPORT_E_IO;
    }
    long deadline = vpcd_now_ms() + l->timeout_ms;
    uint8_t hdr[2];
    int rc = vpcd_recv_exact(l, hdr, 2, deadline, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = ((size_t)hdr[0] << 8) | hdr[1];
    if (n == 0)
        return vpcd_fail(l, TRANSPORT_E_PROTOCOL, err, errlen, "protocol error: empty message");
    rc = vpcd_recv_exact(l, l->frame, n, deadline, err, errlen);
    if (rc != 0)
        return rc;
    *len = n;
    return 0;
}

static int vpcd_control(struct vpcd_link *l, uint8_t code, char *err, size_t errlen)
{
    return vpcd_send_msg(l, &code, 1, err, errlen);
}

/* Sends a control that is answered and copies the answer (at most max bytes, else the peer
 * broke the protocol; more than cap: the caller's buffer is too small). what names the answer. */
static int vpcd_ask(struct vpcd_link *l, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                    size_t max, const char *what, char *err, size_t errlen)
{
    int rc = vpcd_control(l, code, err, errlen);
    size_t n = 0;
    if (rc == 0)
        rc = vpcd_recv_msg(l, &n, err, errlen);
    if (rc != 0)
        return rc;
    if (n > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "protocol error: %s of %zu bytes", what, n);
        return vpcd_fail(l, TRANSPORT_E_PROTOCOL, err, errlen, msg);
    }
    if (n > cap) {
        snprintf(err, errlen, "%s of %zu bytes does not fit the %zu-byte buffer", what, n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(out, l->frame, n);
    *len = n;
    return 0;
}

static int vpcd_get_atr(struct vpcd_link *l, uint8_t *atr, size_t cap, size_t *atr_len,
                        char *err, size_t errlen)
{
    return vpcd_ask(l, VPCD_GET_ATR, atr, cap, atr_len, TRANSPORT_ATR_MAX, "ATR", err, errlen);
}

int vpcd_power_on(struct vpcd_link *l, char *err, size_t errlen)
{
    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    int rc = vpcd_control(l, VPCD_POWER_ON, err, errlen);
    if (rc == 0)
        rc = vpcd_get_atr(l, atr, sizeof atr, &atr_len, err, errlen);
    return rc;
}

int vpcd_transmit(struct vpcd_link *l, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                  size_t cap, size_t *rlen, char *err, size_t errlen)
{
    if (len < 2 || len > 0xFFFFu) {
        /* A 1-byte payload is a control; the 2-byte length caps a message at 65535 bytes. */
        snprintf(err, errlen, "a %zu-byte command APDU cannot be sent over the card framing "
                 "(2..65535 bytes)", len);
        return TRANSPORT_E_ARG;
    }
    int rc = vpcd_send_msg(l, capdu, len, err, errlen);
    size_t n = 0;
    if (rc == 0)
        rc = vpcd_recv_msg(l, &n, err, errlen);
    if (rc != 0)
        return rc;
    if (n < 2) {
        char what[96];
        snprintf(what, sizeof what, "protocol error: response APDU of %zu byte", n);
        return vpcd_fail(l, TRANSPORT_E_PROTOCOL, err, errlen, what);
    }
    if (n > cap) {
        snprintf(err, errlen, "response of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(rapdu, l->frame, n);
    *rlen = n;
    return 0;
}

int vpcd_vendor(struct vpcd_link *l, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                char *err, size_t errlen)
{
    return vpcd_ask(l, code, out, cap, len, 0xFFFFu, "vendor control answer", err, errlen);
}

int vpcd_reset(struct vpcd_link *l, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
               size_t errlen)
{
    int rc = vpcd_control(l, VPCD_POWER_OFF, err, errlen);
    if (rc == 0)
        rc = vpcd_control(l, VPCD_POWER_ON, err, errlen);
    if (rc == 0)
        rc = vpcd_get_atr(l, atr, cap, atr_len, err, errlen);
    return rc;
}

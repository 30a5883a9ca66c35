/* The length-prefixed card framing (vsmartcard's vpcd/vicc framing, as icsim and the card
 * firmware speak it), client side, shared by the tcp:, qemu: and serial: transports:
 * every message is a 2-byte big-endian length then the payload; a 1-byte payload is a control
 * (00 power off, 01 power on, 02 reset, 04 get ATR), a longer one an APDU.
 *
 * A transport embeds a struct vpcd_link, sets fd, name, timeout_ms (and the optional hooks),
 * and calls the functions below. Every error message names the peer (name) and every failure
 * of the stream marks the link broken: later calls fail at once instead of reading a stream
 * that is out of step. Return values are 0 or a negative transport_err. */
#ifndef VPCD_FRAME_H
#define VPCD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

enum {
    VPCD_POWER_OFF = 0x00,
    VPCD_POWER_ON = 0x01,
    VPCD_RESET = 0x02,
    VPCD_GET_ATR = 0x04,
};

struct vpcd_link {
    int fd;
    bool broken;       /* an earlier failure left the stream out of sync */
    bool socket;       /* send()/recv() (MSG_NOSIGNAL); otherwise write()/read() (a tty) */
    int timeout_ms;    /* how long a message may take to arrive */
    char name[4224];   /* the peer in messages: "icsim at HOST:PORT", "QEMU card ELF" ... */
    /* Optional: true, with err describing it, when the process behind the stream has gone
     * (QEMU exiting). Asked every 500 ms while waiting and before a failure is reported. */
    bool (*peer_gone)(void *ctx, char *err, size_t errlen);
    void *ctx;
    /* Optional: called after every successful read (tcp: re-arm TCP_QUICKACK). */
    void (*after_read)(int fd);
    uint8_t frame[2 + TRANSPORT_RAPDU_MAX]; /* outgoing frames and incoming payloads */
};

/* Monotonic milliseconds, and a sleep that resumes after signals (for the backends' waits). */
long vpcd_now_ms(void);
void vpcd_sleep_ms(long ms);

/* Marks the link broken and writes "what (name)" to err, or the peer_gone description. */
int vpcd_fail(struct vpcd_link *l, int code, char *err, size_t errlen, const char *what);

/* One message (len <= 65535) out; short writes are completed. */
int vpcd_send_msg(struct vpcd_link *l, const uint8_t *payload, size_t len, char *err,
                  size_t errlen);

/* One message in, within timeout_ms, into l->frame; *len gets its payload length (>= 1). */
int vpcd_recv_msg(struct vpcd_link *l, size_t *len, char *err, size_t errlen);

/* Power on and read the ATR (what open does; the ATR is checked, not kept). */
int vpcd_power_on(struct vpcd_link *l, char *err, size_t errlen);

/* The struct transport_ops transmit and reset of a framed transport. */
int vpcd_transmit(struct vpcd_link *l, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                  size_t cap, size_t *rlen, char *err, size_t errlen);
/* A vendor control of the card firmware (code 0x80 and up, docs/firmware.md) and its answer.
 * The simulator ignores such controls: its link would wait for timeout_ms. */
int vpcd_vendor(struct vpcd_link *l, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                char *err, size_t errlen);

int vpcd_reset(struct vpcd_link *l, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
               size_t errlen);

#endif

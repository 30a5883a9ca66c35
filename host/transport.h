/* Host transports: one interface to a card, whatever connects it, chosen by a reader URI.
 *
 *   sim:PATH        the card core in-process over the NVM image file PATH (created on first use)
 *   tcp:HOST:PORT   an icsim started with --listen HOST:PORT (vpcd/vicc framing)
 *   pcsc:READER     a card in a PC/SC reader through pcscd (transport_pcsc.c)
 *
 * Tools call transport_exchange(); it handles 61xx (GET RESPONSE) and 6Cxx (repeat with the
 * right Le) for every transport in one place, and command chaining for readers that carry only
 * short APDUs (struct transport's short_only). transport_set_trace() makes every raw APDU and
 * status word go to a stream, with secrets redacted (see trace.h).
 *
 * Every call returns 0 on success or a negative transport_err with a clear message in err
 * (never a PIN or key byte). A backend is one more file: it defines a const struct
 * transport_ops and is listed in the table in transport.c. */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum transport_err {
    TRANSPORT_OK = 0,
    TRANSPORT_E_URI = -1,      /* unknown scheme or malformed reader URI */
    TRANSPORT_E_OPEN = -2,     /* the card or reader cannot be opened (refused image, refused
                                  connection, no such reader) */
    TRANSPORT_E_IO = -3,       /* send/receive failed, or the peer closed the connection */
    TRANSPORT_E_TIMEOUT = -4,  /* the card did not answer in time */
    TRANSPORT_E_PROTOCOL = -5, /* the peer broke the framing or sent a malformed response */
    TRANSPORT_E_SPACE = -6,    /* the response does not fit the caller's buffer */
    TRANSPORT_E_ARG = -7,      /* bad arguments (empty APDU, NULL buffer ...) */
};

/* Largest command APDU a transport carries: extended header (4) + Lc (3) + 65535 + Le (2). */
#define TRANSPORT_CAPDU_MAX 65544u
/* Largest response APDU: 65536 data bytes + SW1 SW2. */
#define TRANSPORT_RAPDU_MAX 65538u
/* Longest ATR (ISO 7816-3). */
#define TRANSPORT_ATR_MAX 33u

struct transport;

/* What a backend implements. Each function returns 0 or a negative transport_err with a message
 * in err (err is never NULL, errlen > 0). Tracing and argument checks are done by the generic
 * layer, not by the backend. */
struct transport_ops {
    const char *scheme;      /* URI scheme without the colon, e.g. "tcp" */
    const char *synopsis;    /* e.g. "tcp:HOST:PORT" */
    const char *description; /* one line for help texts */
    /* rest is the URI after "scheme:". Allocates the backend's object (which starts with a
     * struct transport) and stores it in *out; the card is powered on. */
    int (*open)(const char *rest, struct transport **out, char *err, size_t errlen);
    /* One raw exchange: capdu (len >= 1) out, the whole response APDU (>= 2 bytes) back. */
    int (*transmit)(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                    size_t cap, size_t *rlen, char *err, size_t errlen);
    /* Cold reset: power off, power on; writes the ATR (cap >= TRANSPORT_ATR_MAX). */
    int (*reset)(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
                 size_t errlen);
    /* Releases everything open allocated, including t itself. */
    void (*close)(struct transport *t);
    /* Optional (NULL: none): a vendor control of the card firmware and its answer (qemu:,
     * serial:; see transport_vendor). */
    int (*vendor)(struct transport *t, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                  char *err, size_t errlen);
};

/* The backends (host/transport_<scheme>.c), listed in the table in transport.c. */
extern const struct transport_ops transport_sim_ops;
extern const struct transport_ops transport_tcp_ops;
extern const struct transport_ops transport_pcsc_ops;
extern const struct transport_ops transport_nfc_ops;
extern const struct transport_ops transport_qemu_ops;
extern const struct transport_ops transport_serial_ops;

/* The common head of every backend's object. Backends set ops; the rest belongs to
 * transport.c. */
struct transport {
    const struct transport_ops *ops;
    FILE *trace;
    bool redact_next; /* the next command's data is secret, whatever its INS */
    /* Set by a backend's open when its reader carries only short APDUs (a PN53x frame, a PC/SC
     * reader without extended length). transport_exchange then sends an extended command as
     * short ones: its data by command chaining (CLA | 10, links of at most 255 bytes, each
     * answered 9000) and its Ne as short Le (00 when Ne > 256), the rest fetched by GET
     * RESPONSE; a READ BINARY with Ne > 256 as short READ BINARYs at successive offsets. */
    bool short_only;
};

/* Opens the reader named by uri. Returns 0 with *out set, or TRANSPORT_E_URI (the message
 * lists the supported schemes) / TRANSPORT_E_OPEN / another error with *out = NULL. */
int transport_open(const char *uri, struct transport **out, char *err, size_t errlen);

/* One raw exchange, traced: no 61xx/6Cxx handling. *rlen >= 2 on success. */
int transport_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                       size_t cap, size_t *rlen, char *err, size_t errlen);

/* The exchange tools use: transmits capdu; on 6Cxx re-issues it once with Le = xx; on 61xx
 * issues GET RESPONSE (00 C0 00 00 xx) until the card stops answering 61xx, concatenating the
 * data. With t->short_only an extended capdu goes out as short APDUs (see short_only); a link
 * of a chain answered other than 9000 ends the exchange with that answer. Each APDU sent is
 * traced, and redacted as the whole command would be (transport_redact_next covers every
 * link). rapdu gets all data followed by the final SW1 SW2. Returns 0 whatever the status word
 * is; an error only when the exchange itself failed or cap is too small (TRANSPORT_E_SPACE). */
int transport_exchange(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                       size_t cap, size_t *rlen, char *err, size_t errlen);

/* Cold reset (power off then on) and the ATR. The card's volatile state (PIN verified, current
 * file) is cleared. Returns 0 with the ATR in atr (cap >= TRANSPORT_ATR_MAX is always enough),
 * or an error. */
int transport_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
                    size_t errlen);

/* Sends a vendor control (code >= 0x80) of the framing the card firmware speaks and returns
 * its answer (docs/firmware.md: 80 = the firmware's measurements). TRANSPORT_E_ARG when the
 * reader has no such channel (only qemu: and serial: have). */
int transport_vendor(struct transport *t, uint8_t code, uint8_t *out, size_t cap, size_t *len,
                     char *err, size_t errlen);

/* Traces every APDU and response of t to f (NULL: off), redacting secrets. */
void transport_set_trace(struct transport *t, FILE *f);

/* The next command sent carries a secret in its data field although its instruction does not
 * tell (e.g. an UPDATE BINARY of a password during issuance): its trace is redacted. */
void transport_redact_next(struct transport *t);

/* Closes the reader and frees t. NULL is ignored. */
void transport_close(struct transport *t);

/* Calls fn for every PC/SC reader pcscd knows, with card presence and ATR (icdup readers).
 * No reader is not an error. Returns 0, or TRANSPORT_E_OPEN with a message (pcscd not
 * running). */
int transport_pcsc_list(void (*fn)(void *ctx, const char *reader, bool present,
                                   const uint8_t *atr, size_t atr_len),
                        void *ctx, char *err, size_t errlen);

/* For help texts: the supported URI forms, one "  synopsis  description" line each. */
void transport_print_uri_help(FILE *f);

/* Convenience: the two status-word bytes of a response as one value (0 when rlen < 2). */
uint16_t transport_sw(const uint8_t *rapdu, size_t rlen);

#endif

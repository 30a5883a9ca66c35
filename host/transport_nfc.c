/* nfc:CONNSTRING — an ISO 14443-4 (type A, 106 kbps) card on an NFC reader, through libnfc.
 *
 * CONNSTRING is a libnfc connection string: "pn532_uart:/dev/ttyUSB0", "acr122_usb",
 * "pn53x_usb:001:004" ...; empty ("nfc:") means the first device libnfc finds (or the one in
 * LIBNFC_DEFAULT_DEVICE / LIBNFC_DEVICE / libnfc.conf). open selects the first card in the field
 * and keeps its UID. reset is a cold reset: the card is deselected, the RF field switched off
 * and on (the card loses power and its volatile state), and the card with that UID selected
 * again, not another one that came in meanwhile.
 *
 * A PN53x frame carries at most 264 bytes of command or answer, so the reader takes short APDUs
 * only: t->short_only makes the generic layer chain longer commands (CLA bit 0x10) and fetch
 * long answers with GET RESPONSE (61xx). This backend transmits one short APDU per call.
 *
 * The ATR reported by reset is built from the card's ATS as PC/SC (part 3, contactless cards)
 * does it: 3B 8n 80 01, the n historical bytes of the ATS (at most 15), TCK. A card without
 * historical bytes gives 3B 80 80 01 01.
 *
 * libnfc logs to stderr on its own. Unless the user set LIBNFC_LOG_LEVEL (LIBNFC_LOG_LEVEL=3
 * shows every frame), open sets it to 0 so that only our messages reach stderr. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfc/nfc.h>

#include "hex.h"
#include "transport.h"

#define TNFC_APDU_TIMEOUT_MS 5000 /* how long a card may take to answer one APDU */
#define TNFC_FIELD_OFF_MS 10      /* field gap of a reset: long enough for a card to lose power */
/* A PN53x InDataExchange carries 264 bytes: command code, target number, then the APDU. The
 * longest short APDU (case 4: 4 + 1 + 255 + 1 = 261 bytes) fits. */
#define TNFC_CAPDU_MAX 262u
/* libnfc hands back at most 263 bytes of answer (264 minus the PN53x status byte). */
#define TNFC_RAPDU_MAX 264u
#define TNFC_NAME_MAX (4u + NFC_BUFSIZE_CONNSTRING)

struct transport_nfc {
    struct transport base; /* first: the generic layer sees only this */
    nfc_context *ctx;
    nfc_device *dev;
    nfc_target target;     /* the card selected at open (its UID is kept for reselection) */
    bool broken;           /* a transmit failed: only a reset may bring the card back */
    char name[TNFC_NAME_MAX]; /* "nfc:CONNSTRING", for messages */
    uint8_t rx[TNFC_RAPDU_MAX];
};

static const nfc_modulation tnfc_iso14443a_106 = { .nmt = NMT_ISO14443A, .nbr = NBR_106 };

/* What a libnfc error means for the user. */
static const char *tnfc_what(int rc)
{
    switch (rc) {
    case NFC_ETIMEOUT:
        return "card removed or mute, no answer in time";
    case NFC_ERFTRANS:
        return "card removed or mute, RF transmission error";
    case NFC_ETGRELEASED:
        return "card removed or mute, the reader released it";
    case NFC_EIO:
        return "card removed or mute, or the reader is gone";
    case NFC_EOVFLOW:
        return "answer longer than a PN53x frame";
    case NFC_EOPABORTED:
        return "operation aborted";
    case NFC_EDEVNOTSUPP:
    case NFC_ENOTIMPL:
        return "the reader does not support this";
    default:
        return "reader error";
    }
}

/* "NAME: [DOING: ]WHAT (libnfc: DETAIL)". */
static void tnfc_msg(const struct transport_nfc *tn, int rc, const char *doing, char *err,
                    size_t errlen)
{
    const char *detail = tn->dev != NULL ? nfc_strerror(tn->dev) : NULL;
    snprintf(err, errlen, "%s: %s%s%s (libnfc: %s)", tn->name, doing, doing[0] ? ": " : "",
             tnfc_what(rc), detail != NULL ? detail : "no detail");
}

/* Selects a type A target at 106 kbps: any (uid NULL) or the one with that UID. Returns 0, or a
 * transport error with a message. */
static int tnfc_select(struct transport_nfc *tn, const uint8_t *uid, size_t uid_len,
                      nfc_target *out, char *err, size_t errlen)
{
    nfc_target nt;
    memset(&nt, 0, sizeof nt);
    int rc = nfc_initiator_select_passive_target(tn->dev, tnfc_iso14443a_106, uid, uid_len, &nt);
    if (rc < 0) {
        tnfc_msg(tn, rc, "selecting the card", err, errlen);
        return rc == NFC_ETIMEOUT ? TRANSPORT_E_TIMEOUT : TRANSPORT_E_IO;
    }
    if (rc == 0) {
        if (uid != NULL) {
            char hex[3 * 10 + 1];
            hex_encode(uid, uid_len, 0, hex, sizeof hex);
            snprintf(err, errlen, "%s: card removed (the card with UID %s is no longer on the "
                     "reader)", tn->name, hex);
        } else {
            snprintf(err, errlen, "%s: no ISO 14443-A card on the reader", tn->name);
        }
        return TRANSPORT_E_IO;
    }
    /* SAK bit 6 (0x20): the card speaks ISO 14443-4, i.e. APDUs. */
    if ((nt.nti.nai.btSak & 0x20u) == 0) {
        snprintf(err, errlen, "%s: the card on the reader (SAK %02X) does not speak ISO 14443-4: "
                 "a memory card (MIFARE Classic, Ultralight ...) cannot run APDUs", tn->name,
                 nt.nti.nai.btSak);
        nfc_initiator_deselect_target(tn->dev);
        return TRANSPORT_E_OPEN;
    }
    *out = nt;
    return 0;
}

/* The PC/SC form of a contactless ATR from the target's ATS: 3B 8n 80 01 hist TCK. Returns the
 * length (at most 20). */
static size_t tnfc_atr_from_ats(const nfc_iso14443a_info *nai, uint8_t atr[20])
{
    /* libnfc keeps the ATS without its length byte: T0, then TA/TB/TC as T0 says, then the
     * historical bytes. */
    const uint8_t *hist = NULL;
    size_t hlen = 0;
    if (nai->szAtsLen >= 1 && nai->szAtsLen <= sizeof nai->abtAts) {
        uint8_t t0 = nai->abtAts[0];
        size_t off = 1;
        off += (t0 & 0x10u) ? 1 : 0;
        off += (t0 & 0x20u) ? 1 : 0;
        off += (t0 & 0x40u) ? 1 : 0;
        if (off < nai->szAtsLen) {
            hist = nai->abtAts + off;
            hlen = nai->szAtsLen - off;
        }
    }
    if (hlen > 15)
        hlen = 15;
    size_t n = 0;
    atr[n++] = 0x3B;
    atr[n++] = (uint8_t)(0x80u | hlen);
    atr[n++] = 0x80;
    atr[n++] = 0x01;
    if (hlen > 0)
        memcpy(atr + n, hist, hlen);
    n += hlen;
    uint8_t tck = 0;
    for (size_t i = 1; i < n; i++)
        tck ^= atr[i];
    atr[n++] = tck;
    return n;
}

static void transport_nfc_close(struct transport *t)
{
    struct transport_nfc *tn = (struct transport_nfc *)t;
    if (tn->dev != NULL)
        nfc_close(tn->dev); /* releases the target, switches the field off */
    if (tn->ctx != NULL)
        nfc_exit(tn->ctx);
    free(tn);
}

static int transport_nfc_open(const char *rest, struct transport **out, char *err,
                              size_t errlen)
{
    if (rest == NULL)
        rest = "";
    if (strlen(rest) >= NFC_BUFSIZE_CONNSTRING) {
        snprintf(err, errlen, "reader URI nfc:%.64s... is too long for a libnfc connection "
                 "string (at most %d characters)", rest, NFC_BUFSIZE_CONNSTRING - 1);
        return TRANSPORT_E_URI;
    }
    /* libnfc reads its log level from the environment at every message. */
    if (getenv("LIBNFC_LOG_LEVEL") == NULL)
        (void)setenv("LIBNFC_LOG_LEVEL", "0", 0);

    struct transport_nfc *tn = calloc(1, sizeof *tn);
    if (tn == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRANSPORT_E_OPEN;
    }
    snprintf(tn->name, sizeof tn->name, "nfc:%s", rest);
    nfc_init(&tn->ctx);
    if (tn->ctx == NULL) {
        snprintf(err, errlen, "%s: cannot initialise libnfc (out of memory)", tn->name);
        free(tn);
        return TRANSPORT_E_OPEN;
    }
    tn->dev = nfc_open(tn->ctx, rest[0] != '\0' ? rest : NULL);
    if (tn->dev == NULL) {
        if (rest[0] == '\0')
            snprintf(err, errlen, "nfc: no NFC reader found (give one as nfc:CONNSTRING, e.g. "
                     "nfc:pn532_uart:/dev/ttyUSB0; LIBNFC_LOG_LEVEL=3 shows what libnfc tried)");
        else
            snprintf(err, errlen, "%s: cannot open the NFC reader (no such device, in use, or "
                     "not answering as a PN53x; LIBNFC_LOG_LEVEL=3 shows why)", tn->name);
        transport_nfc_close(&tn->base);
        return TRANSPORT_E_OPEN;
    }
    if (rest[0] == '\0') {
        const char *cs = nfc_device_get_connstring(tn->dev);
        snprintf(tn->name, sizeof tn->name, "nfc:%s", cs != NULL ? cs : "");
    }
    int rc = nfc_initiator_init(tn->dev);
    /* Give up after a few polls when no card is there (libnfc's default polls forever). */
    if (rc >= 0)
        rc = nfc_device_set_property_bool(tn->dev, NP_INFINITE_SELECT, false);
    if (rc < 0) {
        tnfc_msg(tn, rc, "initialising the reader", err, errlen);
        transport_nfc_close(&tn->base);
        return TRANSPORT_E_OPEN;
    }
    rc = tnfc_select(tn, NULL, 0, &tn->target, err, errlen);
    if (rc != 0) {
        transport_nfc_close(&tn->base);
        return rc == TRANSPORT_E_TIMEOUT ? rc : TRANSPORT_E_OPEN;
    }
    tn->base.short_only = true;
    *out = &tn->base;
    return 0;
}

static int transport_nfc_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                                  uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                  size_t errlen)
{
    struct transport_nfc *tn = (struct transport_nfc *)t;
    if (tn->broken) {
        snprintf(err, errlen, "%s: the card is unusable after an earlier error (remove and "
                 "present it again)", tn->name);
        return TRANSPORT_E_IO;
    }
    if (len > TNFC_CAPDU_MAX) {
        /* libnfc copies the APDU into a fixed 264-byte frame without a check. */
        snprintf(err, errlen, "%s: a %zu-byte command APDU does not fit a PN53x frame (at most "
                 "%u bytes: short APDUs only)", tn->name, len, TNFC_CAPDU_MAX);
        return TRANSPORT_E_ARG;
    }
    int rc = nfc_initiator_transceive_bytes(tn->dev, capdu, len, tn->rx, sizeof tn->rx,
                                            TNFC_APDU_TIMEOUT_MS);
    if (rc < 0) {
        tn->broken = true;
        tnfc_msg(tn, rc, "", err, errlen);
        return rc == NFC_ETIMEOUT ? TRANSPORT_E_TIMEOUT : TRANSPORT_E_IO;
    }
    size_t n = (size_t)rc;
    if (n < 2) {
        snprintf(err, errlen, "%s: the card answered %zu byte%s (no status word)", tn->name, n,
                 n == 1 ? "" : "s");
        return TRANSPORT_E_PROTOCOL;
    }
    if (n > cap) {
        snprintf(err, errlen, "response of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(rapdu, tn->rx, n);
    *rlen = n;
    return 0;
}

/* Cold reset: deselects the card, switches the RF field off (the card loses power, and with it
 * its volatile state and its HALT state) and on again, then selects the same card by its UID. */
static int transport_nfc_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                               char *err, size_t errlen)
{
    struct transport_nfc *tn = (struct transport_nfc *)t;
    const char *doing = "deselecting the card";
    int rc = nfc_initiator_deselect_target(tn->dev);
    if (rc >= 0 || rc == NFC_ETGRELEASED) {
        /* (released already: the field cycle below powers the card up again if it is there) */
        doing = "switching the RF field off";
        rc = nfc_device_set_property_bool(tn->dev, NP_ACTIVATE_FIELD, false);
    }
    if (rc >= 0) {
        const struct timespec off = { .tv_sec = 0, .tv_nsec = TNFC_FIELD_OFF_MS * 1000000L };
        nanosleep(&off, NULL);
        doing = "switching the RF field on";
        rc = nfc_device_set_property_bool(tn->dev, NP_ACTIVATE_FIELD, true);
    }
    if (rc < 0) {
        tn->broken = true;
        tnfc_msg(tn, rc, doing, err, errlen);
        return rc == NFC_ETIMEOUT ? TRANSPORT_E_TIMEOUT : TRANSPORT_E_IO;
    }
    nfc_target nt;
    rc = tnfc_select(tn, tn->target.nti.nai.abtUid, tn->target.nti.nai.szUidLen, &nt, err,
                    errlen);
    if (rc != 0) {
        tn->broken = true;
        return rc;
    }
    tn->target = nt;
    tn->broken = false;
    uint8_t buf[20];
    size_t n = tnfc_atr_from_ats(&tn->target.nti.nai, buf);
    if (n > cap) {
        snprintf(err, errlen, "ATR of %zu bytes does not fit the %zu-byte buffer", n, cap);
        return TRANSPORT_E_SPACE;
    }
    memcpy(atr, buf, n);
    *atr_len = n;
    return 0;
}

const struct transport_ops transport_nfc_ops = {
    .scheme = "nfc",
    .synopsis = "nfc:CONNSTRING",
    .description = "a contactless card through libnfc, e.g. nfc:pn532_uart:/dev/ttyUSB0",
    .open = transport_nfc_open,
    .transmit = transport_nfc_transmit,
    .reset = transport_nfc_reset,
    .close = transport_nfc_close,
};

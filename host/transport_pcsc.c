/* pcsc:READER — a card in a PC/SC reader, through pcsc-lite (pcscd).
 *
 * READER is a reader's index in pcscd's list ("pcsc:0"), its full name, or a part of its name
 * that matches one reader only ("pcsc:vpcd 0 00 01"); empty ("pcsc:") means the only reader
 * that holds a card. The card is connected shared, T=0 or T=1 as it offers. Extended APDUs go
 * through when the reader says it carries them (CCID TLV property dwMaxAPDUDataSize) or the
 * protocol is T=1 and the reader does not say; on T=0, or a reader that says it does not,
 * t->short_only makes the generic layer send short APDUs with command chaining instead.
 * 61xx and 6Cxx are handled by the generic layer (transport.c), as for every transport. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <PCSC/reader.h>
#include <PCSC/winscard.h>

#include "transport.h"

#define PCSC_NAME_MAX 256u

struct pcsc_transport {
    struct transport base;
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD protocol;
    char reader[PCSC_NAME_MAX];
};

/* pcsc-lite's message, with what it means for the user where that is not obvious. */
static const char *pcsc_what(LONG rc)
{
    switch (rc) {
    case (LONG)SCARD_E_NO_SERVICE:
    case (LONG)SCARD_E_SERVICE_STOPPED:
        return "pcscd is not running (start it, e.g. /usr/sbin/pcscd)";
    case (LONG)SCARD_E_NO_READERS_AVAILABLE:
        return "no PC/SC reader is connected";
    case (LONG)SCARD_W_REMOVED_CARD:
    case (LONG)SCARD_E_NO_SMARTCARD:
        return "no card in the reader (removed?)";
    case (LONG)SCARD_W_UNRESPONSIVE_CARD:
        return "the card does not answer (mute)";
    case (LONG)SCARD_E_SHARING_VIOLATION:
        return "the reader is in exclusive use by another program";
    case (LONG)SCARD_E_TIMEOUT:
        return "timeout";
    default:
        return pcsc_stringify_error(rc);
    }
}

static int pcsc_fail(char *err, size_t errlen, const char *reader, const char *op, LONG rc,
                     int code)
{
    snprintf(err, errlen, "pcsc:%s: %s: %s", reader, op, pcsc_what(rc));
    return code;
}

/* The reader named by sel among the multi-string list. Returns 0 with the name in out. */
static int pcsc_pick(SCARDCONTEXT ctx, const char *list, const char *sel, char *out,
                     size_t cap, char *err, size_t errlen)
{
    size_t count = 0, matches = 0;
    const char *found = NULL;
    char *end = NULL;
    long index = sel[0] != '\0' ? strtol(sel, &end, 10) : -1;
    bool by_index = sel[0] != '\0' && end != NULL && *end == '\0' && index >= 0;
    for (const char *r = list; *r != '\0'; r += strlen(r) + 1, count++) {
        if (by_index) {
            if ((long)count == index)
                found = r, matches = 1;
        } else if (sel[0] == '\0') {
            SCARD_READERSTATE st = { .szReader = r, .dwCurrentState = SCARD_STATE_UNAWARE };
            if (SCardGetStatusChange(ctx, 0, &st, 1) == SCARD_S_SUCCESS &&
                (st.dwEventState & SCARD_STATE_PRESENT))
                found = r, matches++;
        } else if (strcmp(r, sel) == 0) {
            found = r, matches = 1;
            break;
        } else if (strstr(r, sel) != NULL) {
            found = r, matches++;
        }
    }
    if (matches == 1 && strlen(found) < cap) {
        snprintf(out, cap, "%s", found);
        return 0;
    }
    if (matches > 1)
        snprintf(err, errlen, "pcsc:%s: %s; name one (icdup readers lists them)", sel,
                 sel[0] == '\0' ? "several readers hold a card" : "matches several readers");
    else if (by_index)
        snprintf(err, errlen, "pcsc:%s: no reader with that index (%zu readers)", sel, count);
    else
        snprintf(err, errlen, "pcsc:%s: %s", sel,
                 sel[0] == '\0' ? "no reader holds a card" : "no such reader (icdup readers "
                                                             "lists them)");
    return TRANSPORT_E_OPEN;
}

/* Whether the reader carries extended APDUs: the CCID TLV property, when the driver has it. */
static bool pcsc_extended_ok(struct pcsc_transport *p)
{
    if (p->protocol != SCARD_PROTOCOL_T1)
        return false;
    uint8_t feat[256];
    DWORD n = 0;
    if (SCardControl(p->card, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0, feat, sizeof feat, &n) !=
        SCARD_S_SUCCESS)
        return true;
    for (DWORD i = 0; i + 6 <= n; i += 6) {
        if (feat[i] != FEATURE_GET_TLV_PROPERTIES || feat[i + 1] != 4)
            continue;
        DWORD ioctl = (DWORD)feat[i + 2] << 24 | (DWORD)feat[i + 3] << 16 |
                      (DWORD)feat[i + 4] << 8 | feat[i + 5];
        uint8_t tlv[256];
        DWORD tn = 0;
        if (SCardControl(p->card, ioctl, NULL, 0, tlv, sizeof tlv, &tn) != SCARD_S_SUCCESS)
            return true;
        for (DWORD k = 0; k + 2 <= tn; k += 2u + tlv[k + 1]) {
            if (tlv[k] == PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize && tlv[k + 1] == 4 &&
                k + 6 <= tn) {
                DWORD max = (DWORD)tlv[k + 2] | (DWORD)tlv[k + 3] << 8 |
                            (DWORD)tlv[k + 4] << 16 | (DWORD)tlv[k + 5] << 24;
                return max > 255;
            }
        }
    }
    return true;
}

static int pcsc_open(const char *rest, struct transport **out, char *err, size_t errlen)
{
    struct pcsc_transport *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "pcsc:%s: out of memory", rest);
        return TRANSPORT_E_OPEN;
    }
    LONG rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx);
    if (rc != SCARD_S_SUCCESS) {
        free(p);
        return pcsc_fail(err, errlen, rest, "cannot reach pcscd", rc, TRANSPORT_E_OPEN);
    }
    char *list = NULL;
    DWORD len = SCARD_AUTOALLOCATE;
    rc = SCardListReaders(p->ctx, NULL, (LPSTR)&list, &len);
    int res = TRANSPORT_E_OPEN;
    if (rc != SCARD_S_SUCCESS)
        pcsc_fail(err, errlen, rest, "listing readers", rc, TRANSPORT_E_OPEN);
    else
        res = pcsc_pick(p->ctx, list, rest, p->reader, sizeof p->reader, err, errlen);
    if (list != NULL)
        SCardFreeMemory(p->ctx, list);
    if (res == 0) {
        rc = SCardConnect(p->ctx, p->reader, SCARD_SHARE_SHARED,
                          SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &p->card, &p->protocol);
        if (rc != SCARD_S_SUCCESS)
            res = pcsc_fail(err, errlen, p->reader, "connecting to the card", rc,
                            TRANSPORT_E_OPEN);
    }
    if (res != 0) {
        SCardReleaseContext(p->ctx);
        free(p);
        return res;
    }
    p->base.short_only = !pcsc_extended_ok(p);
    *out = &p->base;
    return 0;
}

static int pcsc_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                         size_t cap, size_t *rlen, char *err, size_t errlen)
{
    struct pcsc_transport *p = (struct pcsc_transport *)t;
    const SCARD_IO_REQUEST *pci =
        p->protocol == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    DWORD n = (DWORD)cap;
    LONG rc = SCardTransmit(p->card, pci, capdu, (DWORD)len, NULL, rapdu, &n);
    if (rc == (LONG)SCARD_W_RESET_CARD) {
        /* Another program reset the card: reconnect; the command's effect is not known, so
         * it is not sent again. */
        DWORD proto;
        SCardReconnect(p->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                       SCARD_LEAVE_CARD, &proto);
        return pcsc_fail(err, errlen, p->reader, "transmit", rc, TRANSPORT_E_IO);
    }
    if (rc == (LONG)SCARD_E_INSUFFICIENT_BUFFER) {
        snprintf(err, errlen, "pcsc:%s: the response does not fit %zu bytes", p->reader, cap);
        return TRANSPORT_E_SPACE;
    }
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(err, errlen, p->reader, "transmit", rc,
                         rc == (LONG)SCARD_E_TIMEOUT ? TRANSPORT_E_TIMEOUT : TRANSPORT_E_IO);
    *rlen = n;
    return 0;
}

static int pcsc_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                      char *err, size_t errlen)
{
    struct pcsc_transport *p = (struct pcsc_transport *)t;
    LONG rc = SCardReconnect(p->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                             SCARD_UNPOWER_CARD, &p->protocol);
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(err, errlen, p->reader, "reset", rc, TRANSPORT_E_IO);
    uint8_t a[MAX_ATR_SIZE];
    DWORD alen = sizeof a, state = 0, proto = 0;
    char name[PCSC_NAME_MAX];
    DWORD nlen = sizeof name;
    rc = SCardStatus(p->card, name, &nlen, &state, &proto, a, &alen);
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(err, errlen, p->reader, "reading the ATR", rc, TRANSPORT_E_IO);
    if (alen > cap) {
        snprintf(err, errlen, "pcsc:%s: ATR of %lu bytes", p->reader, (unsigned long)alen);
        return TRANSPORT_E_PROTOCOL;
    }
    memcpy(atr, a, alen);
    *atr_len = alen;
    return 0;
}

static void pcsc_close(struct transport *t)
{
    struct pcsc_transport *p = (struct pcsc_transport *)t;
    SCardDisconnect(p->card, SCARD_LEAVE_CARD);
    SCardReleaseContext(p->ctx);
    free(p);
}

const struct transport_ops transport_pcsc_ops = {
    .scheme = "pcsc",
    .synopsis = "pcsc:READER",
    .description = "a PC/SC reader (pcscd): index, name or part of it; empty: the one with a "
                   "card",
    .open = pcsc_open,
    .transmit = pcsc_transmit,
    .reset = pcsc_reset,
    .close = pcsc_close,
};

int transport_pcsc_list(void (*fn)(void *ctx, const char *reader, bool present,
                                   const uint8_t *atr, size_t atr_len),
                        void *ctx, char *err, size_t errlen)
{
    SCARDCONTEXT c;
    LONG rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c);
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(err, errlen, "", "cannot reach pcscd", rc, TRANSPORT_E_OPEN);
    char *list = NULL;
    DWORD len = SCARD_AUTOALLOCATE;
    rc = SCardListReaders(c, NULL, (LPSTR)&list, &len);
    if (rc == (LONG)SCARD_E_NO_READERS_AVAILABLE) {
        SCardReleaseContext(c);
        return 0;
    }
    if (rc != SCARD_S_SUCCESS) {
        SCardReleaseContext(c);
        return pcsc_fail(err, errlen, "", "listing readers", rc, TRANSPORT_E_OPEN);
    }
    for (const char *r = list; *r != '\0'; r += strlen(r) + 1) {
        SCARD_READERSTATE st = { .szReader = r, .dwCurrentState = SCARD_STATE_UNAWARE };
        bool present = SCardGetStatusChange(c, 0, &st, 1) == SCARD_S_SUCCESS &&
                       (st.dwEventState & SCARD_STATE_PRESENT);
        fn(ctx, r, present, st.rgbAtr, present ? st.cbAtr : 0);
    }
    SCardFreeMemory(c, list);
    SCardReleaseContext(c);
    return 0;
}

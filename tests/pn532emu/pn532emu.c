/* pn532emu — a PN532 on a pseudo-terminal, with a simulated card in its field, for tests of the
 * nfc: transport through the real libnfc (its pn532_uart driver).
 *
 *   pn532emu --nvm CARD.nvm [--uid HEX8] [--mi-chunk N] [--hang-ins XX] [-v]
 *
 * It opens a pseudo-terminal, prints "pn532emu: /dev/pts/N" on stdout and speaks the PN532
 * host protocol over the HSU (UART) link as the NXP PN532 User Manual (UM0701-02) describes it:
 *
 *  - frames: normal information frames 00 00 FF LEN LCS TFI PD0..PDn DCS 00 (LEN + LCS = 0,
 *    TFI + PD0 + ... + PDn + DCS = 0, TFI D4 from the host, D5 to it) and extended ones
 *    00 00 FF FF FF LENm LENl LCS TFI PD... DCS 00 for more than 254 bytes, both ways. Bytes
 *    before a start code (the 55 55 00 ... wake-up preamble of the driver) are skipped.
 *  - every valid command frame is acknowledged with the ACK frame 00 00 FF 00 FF 00 before its
 *    answer; a frame with a wrong checksum is ignored (no ACK: the host times out); a NACK
 *    (00 00 FF FF 00 00) from the host makes the last answer be sent again; an ACK from the host
 *    (abort) is accepted and ignored (every command is answered at once).
 *  - a command the emulator does not know, or one with malformed parameters, is answered with
 *    the application-level error frame 00 00 FF 01 FF 7F 81 00 ("syntax error").
 *
 * Commands: Diagnose (00: tests 00 communication line, 01, 02, 06 card presence),
 * GetFirmwareVersion (02: IC 32, version 1.6, support 07 = PN532 v1.6), GetGeneralStatus (04),
 * ReadRegister/WriteRegister (06/08, over a 64 KiB register map), ReadGPIO/WriteGPIO (0C/0E),
 * SetSerialBaudRate (10), SetParameters (12), SAMConfiguration (14), PowerDown (16),
 * RFConfiguration (32), InDataExchange (40), InCommunicateThru (42: the card only speaks
 * ISO 14443-4, so raw frames time out), InDeselect (44), InListPassiveTarget (4A: one ISO
 * 14443-A target at 106 kbps, other modulations find nothing), InRelease (52), InSelect (54).
 *
 * The target: Tg 1, SENS_RES 00 04, SEL_RES 20 (ISO 14443-4 compliant), a 4-byte UID (08 and
 * three bytes derived from the NVM path: a "random" UID; --uid sets it) and, when automatic RATS
 * is on (SetParameters bit 4, libnfc's default), the ATS 10 78 00 81 02 + the 11 historical
 * bytes of the card's ATR, so the ATR a PC/SC-style reader rebuilds from it is the card's own.
 * Each activation (InListPassiveTarget, InSelect) powers the card off and on: a fresh ISO
 * 14443-4 session with the volatile state (PIN verified, current file) cleared. Switching the
 * field off (RFConfiguration, PowerDown) powers the card off.
 *
 * InDataExchange: Tg, then the APDU, which runs on the card (card_process). The answer goes
 * back as status 00 and the response APDU. A PN532 answers at most 262 bytes of target data per
 * InDataExchange; a longer answer is split: status 40 (MI, more information) with the first
 * part, and the host fetches the rest with InDataExchange commands without data (libnfc does
 * this by itself). The card answers a short APDU with at most 256 + 2 bytes, so with the
 * default this never happens; --mi-chunk N (1..262) splits answers at N bytes to exercise it.
 * A host that sets MI in Tg (its own chaining of a long command) gets status 00 for each part;
 * the last part (MI clear) runs the whole APDU.
 *
 * --hang-ins XX: the first APDU with INS XX is acknowledged and never answered (a card that
 * went mute, or a reader that died mid-command); "pn532emu: hanging" goes to stderr so a test
 * can kill the emulator at that point.
 *
 * It exits on SIGTERM, SIGINT or SIGHUP, or when the pseudo-terminal fails; the card's NVM
 * file is closed cleanly (every write already reached it). -v traces frames and APDUs (secrets
 * redacted) on stderr. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "hex.h"
#include "sim_card.h"
#include "trace.h"

#define EMU_TFI_HOST 0xD4u
#define EMU_TFI_CHIP 0xD5u
#define EMU_FRAME_DATA_MAX 265u  /* TFI + PD0..PDn of an extended frame (PD up to 264) */
#define EMU_NORMAL_DATA_MAX 255u /* TFI + PD of a normal frame (LEN is one byte) */
#define EMU_TARGET_DATA_MAX 262u /* target data in one InDataExchange answer */
#define EMU_INBUF 4096u

/* PN532 commands (UM0701-02 §7). */
enum {
    CMD_DIAGNOSE = 0x00,
    CMD_GET_FIRMWARE_VERSION = 0x02,
    CMD_GET_GENERAL_STATUS = 0x04,
    CMD_READ_REGISTER = 0x06,
    CMD_WRITE_REGISTER = 0x08,
    CMD_READ_GPIO = 0x0C,
    CMD_WRITE_GPIO = 0x0E,
    CMD_SET_SERIAL_BAUD_RATE = 0x10,
    CMD_SET_PARAMETERS = 0x12,
    CMD_SAM_CONFIGURATION = 0x14,
    CMD_POWER_DOWN = 0x16,
    CMD_RF_CONFIGURATION = 0x32,
    CMD_IN_DATA_EXCHANGE = 0x40,
    CMD_IN_COMMUNICATE_THRU = 0x42,
    CMD_IN_DESELECT = 0x44,
    CMD_IN_LIST_PASSIVE_TARGET = 0x4A,
    CMD_IN_RELEASE = 0x52,
    CMD_IN_SELECT = 0x54,
};

/* Status byte error codes (UM0701-02 §7.1). */
enum {
    ST_OK = 0x00,
    ST_TIMEOUT = 0x01,      /* the target did not answer */
    ST_INBUF_OVERFLOW = 0x0E,
    ST_WRONG_CONTEXT = 0x27, /* no such target, or not in a state for this command */
};

#define ST_MI 0x40u        /* more information: the answer continues */
#define PARAM_AUTO_RATS 0x10u

/* Registers libnfc touches, with plausible power-on values (the emulator only stores them). */
static const struct {
    uint16_t addr;
    uint8_t value;
} emu_reg_reset[] = {
    { 0x6301, 0x3B }, /* CIU_Mode */
    { 0x6302, 0x80 }, /* CIU_TxMode: TX CRC on */
    { 0x6303, 0x80 }, /* CIU_RxMode: RX CRC on */
    { 0x6304, 0x80 }, /* CIU_TxControl */
    { 0x6305, 0x40 }, /* CIU_TxAuto: 100 % ASK */
    { 0x630D, 0x00 }, /* CIU_ManualRCV: parity on */
    { 0x6338, 0x00 }, /* CIU_Status2: Crypto1 off */
    { 0x633C, 0x10 }, /* CIU_Control: initiator */
    { 0x633D, 0x00 }, /* CIU_BitFraming */
    { 0xFFB0, 0xFF }, /* P3 */
    { 0xFFF7, 0xFF }, /* P7 */
};

struct emu {
    int master;
    int slave; /* kept open: the line settings stay, and the master never sees a hang-up */
    char pts[64];
    bool verbose;
    struct sim_card sc;

    uint8_t reg[65536];
    uint8_t params;    /* SetParameters flags */
    uint8_t sam_mode;
    bool field;        /* RF field on */
    bool listed;       /* the target was found and keeps its number (until InRelease) */
    bool active;       /* ... and is in its ISO 14443-4 session (until InDeselect) */
    bool rats;         /* the session was opened with RATS (ISO 14443-4: APDUs work) */
    uint8_t uid[4];
    uint8_t ats[32];
    size_t ats_len;

    size_t mi_chunk;   /* most target data bytes per InDataExchange answer */
    int hang_ins;      /* -1, or the INS of the APDU never answered */
    bool hung;

    uint8_t chain[CARD_MAX_NC + 16]; /* a command the host sends in MI parts */
    size_t chain_len;
    uint8_t resp[CARD_RAPDU_MAX]; /* the card's answer still being handed out (MI) */
    size_t resp_len;
    size_t resp_off;

    uint8_t in[EMU_INBUF];
    size_t in_len;
    uint8_t last[EMU_FRAME_DATA_MAX + 16]; /* the last answer frame, for a NACK */
    size_t last_len;
    uint8_t out[EMU_FRAME_DATA_MAX];       /* PD of the answer being built */
};

static volatile sig_atomic_t emu_stop;

static void emu_on_signal(int sig)
{
    (void)sig;
    emu_stop = 1;
}

static void emu_usage(FILE *f)
{
    fputs("usage: pn532emu --nvm CARD.nvm [--uid HEX8] [--mi-chunk N] [--hang-ins XX] [-v]\n"
          "A PN532 NFC reader on a pseudo-terminal (HSU frames per NXP UM0701-02) with the\n"
          "simulated card of CARD.nvm (created on first use) in its field, for libnfc's\n"
          "pn532_uart driver. Prints \"pn532emu: /dev/pts/N\" on stdout; exits on SIGTERM.\n"
          "  --nvm FILE      the card's NVM image\n"
          "  --uid HEX8      the 4-byte UID (default: 08 and 3 bytes derived from FILE)\n"
          "  --mi-chunk N    split InDataExchange answers after N bytes (1..262, default 262)\n"
          "  --hang-ins XX   never answer the first APDU with INS XX (hex)\n"
          "  -v              trace frames and APDUs (secrets redacted) on stderr\n", f);
}

static int emu_write_all(struct emu *e, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(e->master, buf + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = { .fd = e->master, .events = POLLOUT };
                (void)poll(&p, 1, 100);
                continue;
            }
            fprintf(stderr, "pn532emu: write to %s failed: %s\n", e->pts, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

static void emu_trace(const struct emu *e, const char *dir, const uint8_t *buf, size_t len)
{
    if (!e->verbose)
        return;
    fprintf(stderr, "pn532emu: %s ", dir);
    hex_fprint(stderr, buf, len);
    fputc('\n', stderr);
}

static void emu_send_raw(struct emu *e, const uint8_t *frame, size_t len, bool remember)
{
    emu_trace(e, "<", frame, len);
    if (remember) {
        memcpy(e->last, frame, len);
        e->last_len = len;
    }
    (void)emu_write_all(e, frame, len);
}

static void emu_send_ack(struct emu *e)
{
    static const uint8_t ack[] = { 0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00 };
    emu_send_raw(e, ack, sizeof ack, false);
}

static void emu_send_error(struct emu *e)
{
    static const uint8_t syntax_error[] = { 0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00 };
    emu_send_raw(e, syntax_error, sizeof syntax_error, true);
}

/* Sends the answer to command cmd: TFI D5, cmd + 1, then n bytes of e->out. A normal frame when
 * TFI and PD fit LEN's one byte, an extended one otherwise. */
static void emu_answer(struct emu *e, uint8_t cmd, size_t n)
{
    uint8_t frame[EMU_FRAME_DATA_MAX + 16];
    size_t len = 2 + n; /* TFI + PD0 (cmd + 1) + data */
    if (len > EMU_FRAME_DATA_MAX) {
        fprintf(stderr, "pn532emu: internal error: answer of %zu bytes\n", n);
        emu_send_error(e);
        return;
    }
    size_t k = 0;
    frame[k++] = 0x00;
    frame[k++] = 0x00;
    frame[k++] = 0xFF;
    if (len <= EMU_NORMAL_DATA_MAX) {
        frame[k++] = (uint8_t)len;
        frame[k++] = (uint8_t)(0x100u - len);
    } else {
        frame[k++] = 0xFF;
        frame[k++] = 0xFF;
        frame[k++] = (uint8_t)(len >> 8);
        frame[k++] = (uint8_t)len;
        frame[k++] = (uint8_t)(0x100u - ((len >> 8) + (len & 0xFFu)));
    }
    uint8_t sum = EMU_TFI_CHIP + (uint8_t)(cmd + 1);
    frame[k++] = EMU_TFI_CHIP;
    frame[k++] = (uint8_t)(cmd + 1);
    for (size_t i = 0; i < n; i++) {
        frame[k++] = e->out[i];
        sum = (uint8_t)(sum + e->out[i]);
    }
    frame[k++] = (uint8_t)(0x100u - sum);
    frame[k++] = 0x00;
    emu_send_raw(e, frame, k, true);
}

/* ---- the card in the field -------------------------------------------------------------- */

/* The ATS: TL, T0 78 (TA, TB, TC follow; FSCI 8: frames up to 256 bytes), TA 00 (106 kbps
 * only), TB 81 (FWI 8, SFGI 1), TC 02 (CID supported), then the card's historical bytes. */
static void emu_build_ats(struct emu *e)
{
    uint8_t atr[CARD_ATR_MAX];
    size_t n = card_atr(&e->sc.card, atr, sizeof atr);
    const uint8_t *hist = NULL;
    size_t k = 0;
    if (n >= 2) {
        /* Walk the interface bytes: T0's Y1 and K, then each TDi's Yi+1. */
        k = atr[1] & 0x0Fu;
        uint8_t y = atr[1] >> 4;
        size_t i = 2;
        for (;;) {
            size_t td = 0;
            i += (y & 1u) ? 1 : 0;
            i += (y & 2u) ? 1 : 0;
            i += (y & 4u) ? 1 : 0;
            if (y & 8u) {
                td = i++;
                if (td >= n)
                    break;
                y = atr[td] >> 4;
                continue;
            }
            break;
        }
        if (i + k <= n)
            hist = atr + i;
        else
            k = 0;
    }
    if (k > sizeof e->ats - 5)
        k = sizeof e->ats - 5;
    size_t m = 0;
    e->ats[m++] = 0; /* TL, set below */
    e->ats[m++] = 0x78;
    e->ats[m++] = 0x00;
    e->ats[m++] = 0x81;
    e->ats[m++] = 0x02;
    if (k > 0)
        memcpy(e->ats + m, hist, k);
    m += k;
    e->ats[0] = (uint8_t)m;
    e->ats_len = m;
}

/* A new ISO 14443-4 session: the card is powered off and on. */
static void emu_activate(struct emu *e)
{
    card_power_off(&e->sc.card);
    card_power_on(&e->sc.card);
    e->field = true;
    e->listed = true;
    e->active = true;
    e->rats = (e->params & PARAM_AUTO_RATS) != 0;
    e->chain_len = 0;
    e->resp_len = e->resp_off = 0;
    emu_build_ats(e);
}

static void emu_field_off(struct emu *e)
{
    card_power_off(&e->sc.card);
    e->field = false;
    e->listed = false;
    e->active = false;
    e->chain_len = 0;
    e->resp_len = e->resp_off = 0;
}

/* ---- commands ------------------------------------------------------------------------------- */

static void emu_in_list_passive_target(struct emu *e, const uint8_t *a, size_t n)
{
    if (n < 2 || a[0] < 1 || a[0] > 2 || a[1] > 0x08) {
        emu_send_error(e);
        return;
    }
    uint8_t brty = a[1];
    const uint8_t *init = a + 2;
    size_t init_len = n - 2;
    size_t k = 0;
    /* Only ISO 14443-A at 106 kbps has a card; asked for a UID, only that one. */
    bool found = brty == 0x00 &&
                 (init_len == 0 || (init_len == sizeof e->uid &&
                                    memcmp(init, e->uid, sizeof e->uid) == 0));
    if (!found) {
        e->out[k++] = 0; /* NbTg */
        emu_answer(e, CMD_IN_LIST_PASSIVE_TARGET, k);
        return;
    }
    emu_activate(e);
    e->out[k++] = 1;    /* NbTg */
    e->out[k++] = 1;    /* Tg */
    e->out[k++] = 0x00; /* SENS_RES */
    e->out[k++] = 0x04;
    e->out[k++] = 0x20; /* SEL_RES: ISO 14443-4 compliant */
    e->out[k++] = sizeof e->uid;
    memcpy(e->out + k, e->uid, sizeof e->uid);
    k += sizeof e->uid;
    if (e->rats) {
        memcpy(e->out + k, e->ats, e->ats_len);
        k += e->ats_len;
    }
    if (e->verbose)
        fprintf(stderr, "pn532emu: card activated%s\n", e->rats ? " (ISO 14443-4)" : "");
    emu_answer(e, CMD_IN_LIST_PASSIVE_TARGET, k);
}

/* Hands out the next part of the card's answer: status (MI while more follows) and data. */
static void emu_data_answer(struct emu *e)
{
    size_t left = e->resp_len - e->resp_off;
    size_t part = left > e->mi_chunk ? e->mi_chunk : left;
    e->out[0] = (uint8_t)(part < left ? ST_MI : ST_OK);
    memcpy(e->out + 1, e->resp + e->resp_off, part);
    e->resp_off += part;
    if (e->resp_off == e->resp_len)
        e->resp_len = e->resp_off = 0;
    emu_answer(e, CMD_IN_DATA_EXCHANGE, 1 + part);
}

static void emu_status(struct emu *e, uint8_t cmd, uint8_t status)
{
    e->out[0] = status;
    emu_answer(e, cmd, 1);
}

static void emu_in_data_exchange(struct emu *e, const uint8_t *a, size_t n)
{
    if (n < 1) {
        emu_send_error(e);
        return;
    }
    uint8_t tg = a[0] & 0x3Fu;
    bool more = (a[0] & ST_MI) != 0;
    const uint8_t *data = a + 1;
    size_t dlen = n - 1;
    if (tg != 1 || !e->active) {
        emu_status(e, CMD_IN_DATA_EXCHANGE, ST_WRONG_CONTEXT);
        return;
    }
    if (!e->rats) {
        /* Without RATS the card is not in ISO 14443-4: it does not understand these frames. */
        emu_status(e, CMD_IN_DATA_EXCHANGE, ST_TIMEOUT);
        return;
    }
    if (e->resp_len > 0 && dlen == 0 && !more) {
        emu_data_answer(e); /* the host fetches the next part of a long answer */
        return;
    }
    e->resp_len = e->resp_off = 0;
    if (e->chain_len + dlen > sizeof e->chain) {
        e->chain_len = 0;
        emu_status(e, CMD_IN_DATA_EXCHANGE, ST_INBUF_OVERFLOW);
        return;
    }
    memcpy(e->chain + e->chain_len, data, dlen);
    e->chain_len += dlen;
    if (more) {
        emu_status(e, CMD_IN_DATA_EXCHANGE, ST_OK);
        return;
    }
    size_t clen = e->chain_len;
    e->chain_len = 0;
    if (clen == 0) {
        emu_status(e, CMD_IN_DATA_EXCHANGE, ST_TIMEOUT); /* an empty I-block: no answer */
        return;
    }
    if (e->hang_ins >= 0 && clen >= 2 && e->chain[1] == (uint8_t)e->hang_ins) {
        fprintf(stderr, "pn532emu: hanging on an APDU with INS %02X (no answer from now on)\n",
                (unsigned)e->hang_ins);
        fflush(stderr);
        e->hung = true;
        return;
    }
    if (e->verbose)
        trace_apdu(stderr, "pn532emu: card >", e->chain, clen,
                   trace_is_secret_command(e->chain, clen));
    size_t rlen = card_process(&e->sc.card, e->chain, clen, e->resp, sizeof e->resp);
    if (e->verbose)
        trace_apdu(stderr, "pn532emu: card <", e->resp, rlen,
                   trace_is_secret_response(e->chain, clen));
    e->resp_len = rlen;
    e->resp_off = 0;
    emu_data_answer(e);
}

static void emu_read_register(struct emu *e, const uint8_t *a, size_t n)
{
    if (n == 0 || n % 2 != 0 || n / 2 > EMU_TARGET_DATA_MAX) {
        emu_send_error(e);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i += 2)
        e->out[k++] = e->reg[((size_t)a[i] << 8) | a[i + 1]];
    emu_answer(e, CMD_READ_REGISTER, k);
}

static void emu_write_register(struct emu *e, const uint8_t *a, size_t n)
{
    if (n == 0 || n % 3 != 0) {
        emu_send_error(e);
        return;
    }
    for (size_t i = 0; i < n; i += 3)
        e->reg[((size_t)a[i] << 8) | a[i + 1]] = a[i + 2];
    emu_answer(e, CMD_WRITE_REGISTER, 0);
}

static void emu_diagnose(struct emu *e, const uint8_t *a, size_t n)
{
    if (n < 1) {
        emu_send_error(e);
        return;
    }
    switch (a[0]) {
    case 0x00: /* communication line test: the parameters come back */
        memcpy(e->out, a, n);
        emu_answer(e, CMD_DIAGNOSE, n);
        return;
    case 0x01: /* ROM test */
    case 0x02: /* RAM test */
        emu_status(e, CMD_DIAGNOSE, ST_OK);
        return;
    case 0x06: /* card presence */
        emu_status(e, CMD_DIAGNOSE, e->active ? ST_OK : ST_TIMEOUT);
        return;
    default:
        emu_send_error(e);
        return;
    }
}

static void emu_command(struct emu *e, const uint8_t *pd, size_t n)
{
    uint8_t cmd = pd[0];
    const uint8_t *a = pd + 1;
    size_t an = n - 1;
    size_t k = 0;
    switch (cmd) {
    case CMD_DIAGNOSE:
        emu_diagnose(e, a, an);
        return;
    case CMD_GET_FIRMWARE_VERSION:
        e->out[k++] = 0x32; /* IC: PN532 */
        e->out[k++] = 0x01; /* version 1 */
        e->out[k++] = 0x06; /* revision 6 */
        e->out[k++] = 0x07; /* ISO 14443-A, ISO 14443-B, ISO 18092 */
        emu_answer(e, cmd, k);
        return;
    case CMD_GET_GENERAL_STATUS:
        e->out[k++] = 0x00; /* last error */
        e->out[k++] = e->field ? 1 : 0;
        e->out[k++] = e->active ? 1 : 0;
        if (e->active) {
            e->out[k++] = 1;    /* Tg */
            e->out[k++] = 0x00; /* BrRx: 106 kbps */
            e->out[k++] = 0x00; /* BrTx */
            e->out[k++] = 0x00; /* modulation: ISO 14443-A */
        }
        e->out[k++] = 0x00; /* SAM status */
        emu_answer(e, cmd, k);
        return;
    case CMD_READ_REGISTER:
        emu_read_register(e, a, an);
        return;
    case CMD_WRITE_REGISTER:
        emu_write_register(e, a, an);
        return;
    case CMD_READ_GPIO:
        e->out[k++] = e->reg[0xFFB0];
        e->out[k++] = e->reg[0xFFF7];
        e->out[k++] = 0x00; /* I0/I1: HSU */
        emu_answer(e, cmd, k);
        return;
    case CMD_WRITE_GPIO:
        if (an != 2) {
            emu_send_error(e);
            return;
        }
        if (a[0] & 0x80u)
            e->reg[0xFFB0] = a[0] & 0x3Fu;
        if (a[1] & 0x80u)
            e->reg[0xFFF7] = a[1] & 0x06u;
        emu_answer(e, cmd, 0);
        return;
    case CMD_SET_SERIAL_BAUD_RATE: /* a pseudo-terminal has no baud rate */
        if (an != 1 || a[0] > 0x08) {
            emu_send_error(e);
            return;
        }
        emu_answer(e, cmd, 0);
        return;
    case CMD_SET_PARAMETERS:
        if (an != 1) {
            emu_send_error(e);
            return;
        }
        e->params = a[0];
        emu_answer(e, cmd, 0);
        return;
    case CMD_SAM_CONFIGURATION:
        if (an < 1 || an > 3 || a[0] < 1 || a[0] > 4) {
            emu_send_error(e);
            return;
        }
        e->sam_mode = a[0];
        emu_answer(e, cmd, 0);
        return;
    case CMD_POWER_DOWN:
        if (an < 1 || an > 2) {
            emu_send_error(e);
            return;
        }
        emu_field_off(e);
        emu_status(e, cmd, ST_OK);
        return;
    case CMD_RF_CONFIGURATION:
        if (an < 2) {
            emu_send_error(e);
            return;
        }
        if (a[0] == 0x01 && (a[1] & 0x01u) == 0)
            emu_field_off(e);
        else if (a[0] == 0x01)
            e->field = true;
        emu_answer(e, cmd, 0);
        return;
    case CMD_IN_DATA_EXCHANGE:
        emu_in_data_exchange(e, a, an);
        return;
    case CMD_IN_COMMUNICATE_THRU:
        emu_status(e, cmd, ST_TIMEOUT);
        return;
    case CMD_IN_DESELECT:
    case CMD_IN_RELEASE:
        if (an != 1) {
            emu_send_error(e);
            return;
        }
        if (a[0] == 0 || a[0] == 1) {
            e->active = false; /* the card goes to HALT; a new session starts afresh */
            e->chain_len = 0;
            e->resp_len = e->resp_off = 0;
            if (cmd == CMD_IN_RELEASE)
                e->listed = false;
        }
        emu_status(e, cmd, ST_OK);
        return;
    case CMD_IN_SELECT:
        if (an != 1) {
            emu_send_error(e);
            return;
        }
        if (a[0] != 1 || !e->listed) {
            emu_status(e, cmd, ST_WRONG_CONTEXT);
            return;
        }
        emu_activate(e);
        emu_status(e, cmd, ST_OK);
        return;
    case CMD_IN_LIST_PASSIVE_TARGET:
        emu_in_list_passive_target(e, a, an);
        return;
    default:
        if (e->verbose)
            fprintf(stderr, "pn532emu: command %02X not supported\n", cmd);
        emu_send_error(e);
        return;
    }
}

/* ---- frames from the host ------------------------------------------------------------------ */

static void emu_drop(struct emu *e, size_t n)
{
    if (n > e->in_len)
        n = e->in_len;
    memmove(e->in, e->in + n, e->in_len - n);
    e->in_len -= n;
}

/* Takes every complete frame out of the input buffer and handles it. */
static void emu_feed(struct emu *e)
{
    while (!e->hung) {
        size_t i = 0;
        while (i + 1 < e->in_len && !(e->in[i] == 0x00 && e->in[i + 1] == 0xFF))
            i++;
        if (i + 1 >= e->in_len) {
            /* No start code yet: keep a last 00, it may be the first half of one. */
            bool keep = e->in_len > 0 && e->in[e->in_len - 1] == 0x00;
            emu_drop(e, keep ? e->in_len - 1 : e->in_len);
            return;
        }
        emu_drop(e, i); /* preamble, wake-up bytes, junk */
        if (e->in_len < 4)
            return;
        uint8_t len = e->in[2];
        uint8_t lcs = e->in[3];
        if (len == 0x00 && lcs == 0xFF) { /* ACK from the host: abort, nothing is running */
            emu_trace(e, "> ACK", NULL, 0);
            emu_drop(e, 4);
            continue;
        }
        if (len == 0xFF && lcs == 0x00) { /* NACK: the last answer again */
            emu_trace(e, "> NACK", NULL, 0);
            emu_drop(e, 4);
            if (e->last_len > 0)
                emu_send_raw(e, e->last, e->last_len, false);
            continue;
        }
        size_t hdr;
        size_t n;
        if (len == 0xFF && lcs == 0xFF) {
            if (e->in_len < 7)
                return;
            if (((unsigned)e->in[4] + e->in[5] + e->in[6]) % 256u != 0) {
                emu_drop(e, 2); /* a bad length checksum: not a frame start after all */
                continue;
            }
            n = ((size_t)e->in[4] << 8) | e->in[5];
            hdr = 7;
        } else {
            if ((uint8_t)(len + lcs) != 0) {
                emu_drop(e, 2);
                continue;
            }
            n = len;
            hdr = 4;
        }
        if (n < 2 || n > EMU_FRAME_DATA_MAX) {
            emu_drop(e, 2);
            continue;
        }
        if (e->in_len < hdr + n + 1)
            return; /* wait for the rest */
        uint8_t sum = 0;
        for (size_t k = 0; k <= n; k++)
            sum = (uint8_t)(sum + e->in[hdr + k]);
        if (sum != 0 || e->in[hdr] != EMU_TFI_HOST) {
            if (e->verbose)
                fprintf(stderr, "pn532emu: frame with a bad %s ignored\n",
                        sum != 0 ? "checksum" : "TFI");
            emu_drop(e, hdr + n + 1);
            continue;
        }
        uint8_t pd[EMU_FRAME_DATA_MAX];
        memcpy(pd, e->in + hdr + 1, n - 1);
        emu_trace(e, ">", e->in, hdr + n + 1);
        emu_drop(e, hdr + n + 1);
        emu_send_ack(e);
        emu_command(e, pd, n - 1);
    }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int emu_open_pty(struct emu *e)
{
    e->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (e->master < 0) {
        fprintf(stderr, "pn532emu: error: posix_openpt: %s\n", strerror(errno));
        return -1;
    }
    const char *name = NULL;
    if (grantpt(e->master) != 0 || unlockpt(e->master) != 0 ||
        (name = ptsname(e->master)) == NULL) {
        fprintf(stderr, "pn532emu: error: cannot set up the pseudo-terminal: %s\n",
                strerror(errno));
        return -1;
    }
    snprintf(e->pts, sizeof e->pts, "%s", name);
    e->slave = open(e->pts, O_RDWR | O_NOCTTY);
    if (e->slave < 0) {
        fprintf(stderr, "pn532emu: error: cannot open %s: %s\n", e->pts, strerror(errno));
        return -1;
    }
    /* Raw 8-bit line as a UART: no echo, no line editing, no CR/LF mapping. */
    struct termios tio;
    if (tcgetattr(e->slave, &tio) != 0) {
        fprintf(stderr, "pn532emu: error: tcgetattr %s: %s\n", e->pts, strerror(errno));
        return -1;
    }
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    (void)cfsetispeed(&tio, B115200);
    (void)cfsetospeed(&tio, B115200);
    if (tcsetattr(e->slave, TCSANOW, &tio) != 0) {
        fprintf(stderr, "pn532emu: error: tcsetattr %s: %s\n", e->pts, strerror(errno));
        return -1;
    }
    (void)fcntl(e->master, F_SETFD, FD_CLOEXEC);
    (void)fcntl(e->slave, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* 08 (a "random" UID, ISO 14443-3) and three bytes of an FNV-1a hash of the path. */
static void emu_default_uid(const char *path, uint8_t uid[4])
{
    uint32_t h = 2166136261u;
    for (const char *p = path; *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    uid[0] = 0x08;
    uid[1] = (uint8_t)(h >> 16);
    uid[2] = (uint8_t)(h >> 8);
    uid[3] = (uint8_t)h;
}

static int emu_serve(struct emu *e)
{
    while (!emu_stop) {
        struct pollfd p = { .fd = e->master, .events = POLLIN };
        int pr = poll(&p, 1, -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "pn532emu: poll: %s\n", strerror(errno));
            return 1;
        }
        if (p.revents & (POLLERR | POLLNVAL)) {
            fprintf(stderr, "pn532emu: %s failed; exiting\n", e->pts);
            return 1;
        }
        if (e->in_len == sizeof e->in)
            emu_drop(e, sizeof e->in / 2); /* junk without any frame in it */
        ssize_t n = read(e->master, e->in + e->in_len, sizeof e->in - e->in_len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "pn532emu: read from %s: %s; exiting\n", e->pts, strerror(errno));
            return 1;
        }
        if (n == 0) {
            fprintf(stderr, "pn532emu: %s closed; exiting\n", e->pts);
            return 1;
        }
        if (e->hung) {
            e->in_len = 0; /* mute: everything is ignored until the test kills us */
            continue;
        }
        e->in_len += (size_t)n;
        emu_feed(e);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *nvm = NULL;
    const char *uid_arg = NULL;
    long mi_chunk = EMU_TARGET_DATA_MAX;
    int hang_ins = -1;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            emu_usage(stdout);
            return 0;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pn532emu: error: unknown argument or missing value: %s\n", a);
            emu_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (strcmp(a, "--nvm") == 0) {
            nvm = v;
        } else if (strcmp(a, "--uid") == 0) {
            uid_arg = v;
        } else if (strcmp(a, "--mi-chunk") == 0) {
            mi_chunk = strtol(v, &end, 10);
            if (end == v || *end != '\0' || mi_chunk < 1 || mi_chunk > EMU_TARGET_DATA_MAX) {
                fprintf(stderr, "pn532emu: error: --mi-chunk wants 1..%u\n",
                        EMU_TARGET_DATA_MAX);
                return 2;
            }
        } else if (strcmp(a, "--hang-ins") == 0) {
            long ins = strtol(v, &end, 16);
            if (end == v || *end != '\0' || ins < 0 || ins > 0xFF) {
                fprintf(stderr, "pn532emu: error: --hang-ins wants a hex byte\n");
                return 2;
            }
            hang_ins = (int)ins;
        } else {
            fprintf(stderr, "pn532emu: error: unknown argument %s\n", a);
            emu_usage(stderr);
            return 2;
        }
    }
    if (nvm == NULL || nvm[0] == '\0') {
        fprintf(stderr, "pn532emu: error: --nvm FILE is required\n");
        emu_usage(stderr);
        return 2;
    }

    struct emu *e = calloc(1, sizeof *e);
    if (e == NULL) {
        fprintf(stderr, "pn532emu: error: out of memory\n");
        return 1;
    }
    e->master = e->slave = -1;
    e->verbose = verbose;
    e->mi_chunk = (size_t)mi_chunk;
    e->hang_ins = hang_ins;
    e->params = PARAM_AUTO_RATS;
    for (size_t i = 0; i < sizeof emu_reg_reset / sizeof emu_reg_reset[0]; i++)
        e->reg[emu_reg_reset[i].addr] = emu_reg_reset[i].value;
    if (uid_arg != NULL) {
        size_t ulen = 0;
        char herr[128];
        if (hex_decode(uid_arg, e->uid, sizeof e->uid, &ulen, herr, sizeof herr) != 0 ||
            ulen != sizeof e->uid || e->uid[0] == 0x88) {
            fprintf(stderr, "pn532emu: error: --uid wants 4 bytes in hex (not starting with "
                            "88, the cascade tag)\n");
            free(e);
            return 2;
        }
    } else {
        emu_default_uid(nvm, e->uid);
    }

    char err[512];
    if (sim_card_open(&e->sc, nvm, err, sizeof err) != 0) {
        fprintf(stderr, "pn532emu: error: %s\n", err);
        free(e);
        return 1;
    }
    card_power_off(&e->sc.card); /* no field yet */

    int rc = 1;
    if (emu_open_pty(e) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = emu_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        printf("pn532emu: %s\n", e->pts);
        fflush(stdout);
        rc = emu_serve(e);
    }
    if (e->slave >= 0)
        close(e->slave);
    if (e->master >= 0)
        close(e->master);
    sim_card_close(&e->sc);
    free(e);
    return rc;
}

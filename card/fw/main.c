/* The card firmware's main loop: the card core behind UART0, speaking the icsim framing.
 *
 * Framing (the same as icsim and the tcp: transport, see docs/firmware.md): every message is a
 * 2-byte big-endian length then the payload. A 1-byte payload is a control: 00 power off,
 * 01 power on, 02 reset (none of these is answered), 04 get ATR (answered with the ATR). A
 * longer payload is a command APDU, answered with the response APDU. A zero length is ignored.
 * Vendor controls (not in vpcd): 80 answers the measurements of diag.c (duration of the last
 * command, stack and heap peaks); a bench build (ICDUP_FW_BENCH, bench/) also has 81 and 82,
 * which run the bare mbedtls P-256 key generation and ECDH and answer the same report. Other
 * vendor controls (80..FF) are answered 6A81.
 * A command longer than the card's buffer is read to its end (the stream stays in step) and
 * answered 6700.
 *
 * At boot the NVM region is mounted; a blank region (all 00 or all FF) is formatted as a new
 * blank card first. An image that does not mount (foreign, corrupt) is never reformatted: the
 * card then answers every APDU 6581 (memory failure) and still gives its ATR. */
#include <stdbool.h>
#include <stdint.h>

#include "card.h"
#include "crypto.h"
#include "fw.h"

#define FW_UART0_BASE 0x40004000u
#define FW_BAUD 115200u
/* Largest command APDU kept: extended header (4) + Lc (3) + CARD_MAX_NC + Le (2). */
#define FW_CAPDU_MAX (CARD_MAX_NC + 9u)

enum {
    FW_POWER_OFF = 0x00,
    FW_POWER_ON = 0x01,
    FW_RESET = 0x02,
    FW_GET_ATR = 0x04,
    FW_CTL_STATS = 0x80,
    FW_CTL_BENCH_KEYGEN = 0x81,
    FW_CTL_BENCH_ECDH = 0x82,
};

#if defined(ICDUP_FW_BENCH)
/* bench/fw_bench_prim.c: runs the primitive between fw_diag_begin and fw_diag_end. Returns 0
 * or -1. */
int fw_bench_primitive(int which);
#endif

static struct card fw_card;
static uint8_t fw_in[FW_CAPDU_MAX];
static uint8_t fw_out[CARD_RAPDU_MAX];

static void fw_send(const uint8_t *payload, size_t len)
{
    uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
    fw_uart_write(hdr, 2);
    fw_uart_write(payload, len);
}

static void fw_send_sw(uint16_t sw)
{
    uint8_t r[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
    fw_send(r, 2);
}

int main(void)
{
    fw_diag_init();
    fw_timer_init(FW_TIMER0_BASE);
    fw_uart_init(FW_UART0_BASE, FW_PCLK_HZ, FW_BAUD);
    fw_rng_init();
    crypto_platform_init();

    bool usable = false;
    if (fw_nvm_region_size() == FW_NVM_SIZE) {
        int rc;
        if (fw_nvm_blank())
            rc = card_format(&fw_card, &fw_nvm, &fw_rng);
        else
            rc = card_mount(&fw_card, &fw_nvm, &fw_rng);
        usable = rc == 0;
    }
    if (usable)
        card_power_on(&fw_card);

    for (;;) {
        uint8_t hdr[2];
        fw_uart_read(hdr, 2);
        fw_rng_stir(); /* the host's timing: see hal_rng_emu.c */
        size_t len = ((size_t)hdr[0] << 8) | hdr[1];
        if (len == 0)
            continue;
        if (len == 1) {
            uint8_t ctl = fw_uart_getc();
            switch (ctl) {
            case FW_POWER_OFF:
                if (usable)
                    card_power_off(&fw_card);
                break;
            case FW_POWER_ON:
                if (usable)
                    card_power_on(&fw_card);
                break;
            case FW_RESET:
                if (usable)
                    card_reset(&fw_card);
                break;
            case FW_GET_ATR: {
                uint8_t atr[CARD_ATR_MAX];
                size_t n = card_atr(&fw_card, atr, sizeof atr);
                fw_send(atr, n);
                break;
            }
            case FW_CTL_STATS: {
                uint8_t rep[FW_DIAG_REPORT_LEN];
                fw_send(rep, fw_diag_report(rep));
                break;
            }
#if defined(ICDUP_FW_BENCH)
            case FW_CTL_BENCH_KEYGEN:
            case FW_CTL_BENCH_ECDH: {
                if (fw_bench_primitive(ctl == FW_CTL_BENCH_ECDH) != 0) {
                    fw_send_sw(0x6F00u);
                    break;
                }
                uint8_t rep[FW_DIAG_REPORT_LEN];
                fw_send(rep, fw_diag_report(rep));
                break;
            }
#endif
            default:
                /* An unknown vendor control is refused, so its sender does not wait; other
                 * unknown controls are ignored, as icsim does. */
                if (ctl >= FW_CTL_STATS)
                    fw_send_sw(0x6A81u);
                break;
            }
            continue;
        }
        if (len > sizeof fw_in) {
            fw_uart_read(fw_in, sizeof fw_in);
            for (size_t i = sizeof fw_in; i < len; i++)
                (void)fw_uart_getc();
            fw_send_sw(0x6700u);
            continue;
        }
        fw_uart_read(fw_in, len);
        if (!usable) {
            fw_send_sw(0x6581u);
            continue;
        }
        fw_diag_begin();
        size_t n = card_process(&fw_card, fw_in, len, fw_out, sizeof fw_out);
        fw_diag_end();
        fw_send(fw_out, n);
    }
}

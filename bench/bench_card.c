/* Measures the card core in-process: APDUs per second on a trivial command (GET DATA of the
 * life-cycle byte, and SELECT MF), and NVM bytes written per UPDATE BINARY of 32 bytes.
 * Prints "key value" lines that bench/run.sh turns into docs/performance.md. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "card_fixture.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(struct fx *fx, const char *hex, double seconds)
{
    uint8_t apdu[64];
    int n = fx_hex(hex, apdu, sizeof apdu);
    uint8_t rsp[CARD_RAPDU_MAX];
    long count = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 1000; i++) {
            size_t r = card_process(&fx->card, apdu, (size_t)n, rsp, sizeof rsp);
            if (r < 2 || rsp[r - 2] != 0x90)
                abort();
        }
        count += 1000;
        t = now();
    } while (t - t0 < seconds);
    return (double)count / (t - t0);
}

int main(void)
{
    struct fx fx;
    if (fx_open(&fx) || fx_personalize(&fx)) {
        fprintf(stderr, "bench_card: cannot set up a card\n");
        return 1;
    }
    printf("inproc_getdata_apdu_per_s %.0f\n", rate(&fx, "00CADF0300", 1.0));
    printf("inproc_select_mf_apdu_per_s %.0f\n", rate(&fx, "00A4000C023F00", 1.0));

    /* Write amplification: NVM bytes written by the device per UPDATE BINARY of 32 bytes. */
    if (fx_apdu(&fx, "0020008106313233343536") != 0x9000 ||
        fx_apdu(&fx, "00A4080C0450005001") != 0x9000) {
        fprintf(stderr, "bench_card: setup failed\n");
        return 1;
    }
    const int rounds = 100;
    unsigned long bytes0 = fx.nvm.bytes, writes0 = fx.nvm.writes;
    for (int i = 0; i < rounds; i++) {
        uint16_t sw = fx_apdu(&fx, i % 2 ? "00D6000020 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                         : "00D6000020 5555555555555555555555555555555555555555555555555555555555555555");
        if (sw != 0x9000)
            abort();
    }
    double per = (double)(fx.nvm.bytes - bytes0) / rounds;
    printf("update32_nvm_bytes %.1f\n", per);
    printf("update32_nvm_writes %.1f\n", (double)(fx.nvm.writes - writes0) / rounds);
    printf("update32_amplification %.2f\n", per / 32.0);
    fx_close(&fx);
    return 0;
}

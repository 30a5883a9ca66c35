/* Measures the APDU round trip through a reader URI (bench/run.sh gives a pcsc: reader that
 * holds an icsim card behind pcscd's vpcd driver): 2,000 GET DATA (DF03) exchanges, each timed;
 * median and p99. Usage: bench_pcsc URI. Prints "key value" lines for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "transport.h"

#define ROUNDS 2000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_pcsc URI\n");
        return 2;
    }
    struct transport *t = NULL;
    char err[512];
    if (transport_open(argv[1], &t, err, sizeof err) != 0) {
        fprintf(stderr, "bench_pcsc: %s\n", err);
        return 1;
    }
    static const uint8_t apdu[] = { 0x00, 0xCA, 0xDF, 0x03, 0x00 };
    static double lat[ROUNDS];
    uint8_t rsp[300];
    size_t rlen;
    for (int i = 0; i < ROUNDS; i++) {
        double a = now();
        if (transport_transmit(t, apdu, sizeof apdu, rsp, sizeof rsp, &rlen, err, sizeof err) ||
            rlen < 2 || rsp[rlen - 2] != 0x90) {
            fprintf(stderr, "bench_pcsc: %s\n", err);
            transport_close(t);
            return 1;
        }
        lat[i] = now() - a;
    }
    transport_close(t);
    qsort(lat, ROUNDS, sizeof lat[0], cmp_double);
    printf("pcsc_apdu_rtt_median_ms %.3f\n", lat[ROUNDS / 2] * 1e3);
    printf("pcsc_apdu_rtt_p99_ms %.3f\n", lat[ROUNDS * 99 / 100] * 1e3);
    return 0;
}

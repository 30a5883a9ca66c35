/* Instructions per card operation of the card firmware under QEMU with -icount shift=0, where
 * every instruction takes 1 ns of virtual time: the firmware times each command with its
 * CMSDK timer (25 MHz, so one tick = 40 instructions) and answers the sums on the vendor
 * control 80 (card/fw/diag.c). Two blank cards of the bench image (make firmware-bench: the
 * same card core, plus controls 81/82 that run the bare mbedtls P-256 key generation and ECDH)
 * are personalized, then each operation of a clone and a decipher is run and read back: PIN
 * verify, share set (the share that completes the key group), key generation, binding key,
 * bound export, import, decipher. The stack and mbedtls heap peaks come last, after all of it.
 * Usage: bench_fw PATH-TO-BENCH-ELF. Prints "key value" lines for bench/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_ops.h"
#include "ins.h"
#include "profile.h"
#include "fx_secrets.h"
#include "secrets.h"
#include "transport.h"

#define SHARES 3
#define REPEAT 3              /* repeated operations report their median */
#define CTL_STATS 0x80u
#define CTL_KEYGEN 0x81u
#define CTL_ECDH 0x82u

struct fw_stats {
    uint32_t hz, ticks, ops, stack_peak, stack_size, heap_peak, heap_size;
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_fw: %s: %s\n", what, err);
    exit(1);
}

/* Sends a vendor control and decodes the report it answers. */
static struct fw_stats control(struct transport *t, uint8_t code)
{
    uint8_t rep[64];
    size_t n = 0;
    char err[512];
    if (transport_vendor(t, code, rep, sizeof rep, &n, err, sizeof err) != 0)
        die("vendor control", err);
    if (n != 29 || rep[0] != 1)
        die("vendor control", n == 2 ? "the firmware refused it (not the bench image?)"
                                     : "unexpected report");
    struct fw_stats s;
    uint32_t *f[7] = { &s.hz, &s.ticks, &s.ops, &s.stack_peak, &s.stack_size, &s.heap_peak,
                       &s.heap_size };
    for (int i = 0; i < 7; i++)
        *f[i] = get32(rep + 1 + 4 * i);
    return s;
}

/* Instructions in the card's commands since the previous report (shift 0: 1 ns each). */
static double instructions_of(struct fw_stats s)
{
    return (double)s.ticks * (1e9 / (double)s.hz);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static struct secrets g_sec;

static void make_secrets(void)
{
    fx_secrets(&g_sec, SHARES, 0x2D);
}

static void open_card(const char *uri, const char *name, struct transport **t, struct cardop *c)
{
    char err[1024];
    if (transport_open(uri, t, err, sizeof err) != 0)
        die(uri, err);
    cardop_init(c, *t, name);
    struct secrets s = g_sec;
    s.shares = 0; /* PINs only: the shares are set below, measured */
    struct profile_options po = { .shares = SHARES, .secrets = &s };
    if (profile_run(c, &po, NULL, NULL, err, sizeof err) != 0)
        die("personalization", err);
    if (cardop_verify(c, PIN_REF_USER, g_sec.pin.v, g_sec.pin.len) != 0)
        die("VERIFY", c->err);
    for (unsigned i = 1; i < SHARES; i++)
        if (cardop_set_share(c, i, g_sec.share[i - 1]) != 0)
            die("SET SHARE", c->err);
}

static void check(struct cardop *c, int rc, const char *what)
{
    if (rc != 0)
        die(what, c->err);
}

/* begin(t); end(t, c, operation(c, ...), what): the instructions of that operation. */
static void begin(struct transport *t)
{
    (void)control(t, CTL_STATS);
}

static double end(struct transport *t, struct cardop *c, int rc, const char *what)
{
    check(c, rc, what);
    return instructions_of(control(t, CTL_STATS));
}

static void print(const char *key, double insns)
{
    printf("fw_insn_%s %.0f\n", key, insns);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_fw PATH-TO-BENCH-ELF (make firmware-bench)\n");
        return 2;
    }
    make_secrets();
    char uri[4200];
    snprintf(uri, sizeof uri, "qemu:%s,icount=0", argv[1]);
    struct transport *ta, *tb;
    struct cardop a, b;
    open_card(uri, "A", &ta, &a);
    open_card(uri, "B", &tb, &b);

    double v[REPEAT];

    /* The bare primitives, on card A. */
    for (int i = 0; i < REPEAT; i++)
        v[i] = instructions_of(control(ta, CTL_KEYGEN));
    double prim_keygen = median(v, REPEAT);
    for (int i = 0; i < REPEAT; i++)
        v[i] = instructions_of(control(ta, CTL_ECDH));
    double prim_ecdh = median(v, REPEAT);

    /* Each card operation between two reports: begin() discards what came before it. */
    for (int i = 0; i < REPEAT; i++) {
        begin(ta);
        v[i] = end(ta, &a, cardop_verify(&a, PIN_REF_USER, g_sec.pin.v, g_sec.pin.len), "VERIFY");
    }
    double verify = median(v, REPEAT);

    begin(ta);
    double share = end(ta, &a, cardop_set_share(&a, SHARES, g_sec.share[SHARES - 1]), "SET SHARE");
    check(&b, cardop_set_share(&b, SHARES, g_sec.share[SHARES - 1]), "SET SHARE");

    uint8_t pub[65], point[65], blob[256], x[32];
    begin(ta);
    double keygen = end(ta, &a, cardop_generate(&a, pub), "GENERATE");
    begin(tb);
    double binding = end(tb, &b, cardop_binding_key(&b, false, point), "BINDING KEY");
    size_t blen = 0;
    begin(ta);
    double export = end(ta, &a, cardop_export(&a, point, blob, sizeof blob, &blen), "EXPORT");
    begin(tb);
    double import = end(tb, &b, cardop_import(&b, blob, blen), "IMPORT WRAPPED");
    for (int i = 0; i < REPEAT; i++) {
        begin(tb);
        v[i] = end(tb, &b, cardop_decipher(&b, point, x), "PSO DECIPHER");
    }
    double decipher = median(v, REPEAT);
    memset(x, 0, sizeof x);

    print("prim_keygen", prim_keygen);
    print("prim_ecdh", prim_ecdh);
    print("verify", verify);
    print("share", share);
    print("keygen", keygen);
    print("binding", binding);
    print("export", export);
    print("import", import);
    print("decipher", decipher);
    /* Each operation against the primitives it wraps (docs/firmware.md). */
    printf("fw_ratio_keygen %.3f\n", keygen / prim_keygen);
    printf("fw_ratio_binding %.3f\n", binding / prim_keygen);
    printf("fw_ratio_export %.3f\n", export / (prim_keygen + prim_ecdh));
    printf("fw_ratio_import %.3f\n", import / (prim_ecdh + prim_keygen));
    printf("fw_ratio_decipher %.3f\n", decipher / prim_ecdh);

    struct fw_stats sa = control(ta, CTL_STATS), sb = control(tb, CTL_STATS);
    printf("fw_stack_peak_bytes %u\n", sa.stack_peak > sb.stack_peak ? sa.stack_peak
                                                                     : sb.stack_peak);
    printf("fw_stack_size_bytes %u\n", sa.stack_size);
    printf("fw_heap_peak_bytes %u\n", sa.heap_peak > sb.heap_peak ? sa.heap_peak : sb.heap_peak);
    printf("fw_heap_size_bytes %u\n", sa.heap_size);
    transport_close(ta);
    transport_close(tb);
    secrets_wipe(&g_sec);
    return 0;
}

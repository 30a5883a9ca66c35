/* Host transports: the in-process sim: transport over a temporary NVM file (persistence,
 * refusal of corrupt / foreign / short images without touching them), the generic 61xx/6Cxx
 * handling over a scripted backend, short-only readers (command chaining, short Le, READ BINARY
 * in pieces, redaction of every link), hex decoding and trace redaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "trace.h"
#include "transport.h"

struct tmp {
    char dir[64];
    char path[128];
    char uri[160];
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/icdup-test-transport-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof t->path, "%s/card.nvm", t->dir);
    snprintf(t->uri, sizeof t->uri, "sim:%s", t->path);
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    unlink(t->path);
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Reads a whole file into a heap buffer. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Sends hex through transport_exchange on an exact-size buffer; returns the SW. */
static uint16_t xchg(struct transport *t, const char *hex, uint8_t *resp, size_t cap,
                     size_t *rlen)
{
    uint8_t tmp[300];
    size_t n = 0;
    char err[256];
    assert_int_equal(hex_decode(hex, tmp, sizeof tmp, &n, err, sizeof err), 0);
    uint8_t *exact = malloc(n);
    assert_non_null(exact);
    memcpy(exact, tmp, n);
    int rc = transport_exchange(t, exact, n, resp, cap, rlen, err, sizeof err);
    free(exact);
    if (rc != 0)
        fail_msg("transport_exchange: %s", err);
    return transport_sw(resp, *rlen);
}

static void read_serial(const char *uri, uint8_t serial[8])
{
    struct transport *t = NULL;
    char err[512];
    int rc = transport_open(uri, &t, err, sizeof err);
    if (rc != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    uint8_t resp[64];
    size_t rlen = 0;
    assert_int_equal(xchg(t, "00 CA DF 01 00", resp, sizeof resp, &rlen), 0x9000);
    assert_int_equal(rlen, 10);
    memcpy(serial, resp, 8);
    transport_close(t);
}

static void test_sim_select_mf(void **state)
{
    struct tmp *tm = *state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    uint8_t resp[64];
    size_t rlen = 0;
    assert_int_equal(xchg(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen), 0x9000);
    assert_int_equal(rlen, 2);

    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    assert_int_equal(transport_reset(t, atr, sizeof atr, &atr_len, err, sizeof err), 0);
    assert_true(atr_len >= 2);
    assert_int_equal(atr[0], 0x3B);
    transport_close(t);

    struct stat st;
    assert_int_equal(stat(tm->path, &st), 0);
    assert_true(st.st_size > 0);
}

static void test_sim_persistence(void **state)
{
    struct tmp *tm = *state;
    uint8_t s1[8], s2[8];
    read_serial(tm->uri, s1);
    read_serial(tm->uri, s2);
    assert_memory_equal(s1, s2, 8);
    static const uint8_t zero[8] = { 0 };
    assert_memory_not_equal(s1, zero, 8);
}

/* Flips one byte of the image; transport_open must refuse it and leave every byte as it was. */
static void expect_refused(struct tmp *tm, size_t flip_at, const char *expect_word)
{
    size_t len = 0;
    uint8_t *orig = read_file(tm->path, &len);
    assert_true(flip_at < len);
    orig[flip_at] ^= 0x5A;
    write_file(tm->path, orig, len);

    struct transport *t = NULL;
    char err[512] = "";
    int rc = transport_open(tm->uri, &t, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_null(t);
    assert_non_null(strstr(err, tm->path));
    if (strstr(err, expect_word) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, expect_word);

    size_t len2 = 0;
    uint8_t *after = read_file(tm->path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, orig, len);
    free(after);

    orig[flip_at] ^= 0x5A; /* put it back: the card mounts again */
    write_file(tm->path, orig, len);
    free(orig);
}

static void test_sim_refuses_damaged_images(void **state)
{
    struct tmp *tm = *state;
    uint8_t s1[8], s2[8];
    read_serial(tm->uri, s1);
    expect_refused(tm, 0, "not an icdup card image"); /* magic: foreign */
    expect_refused(tm, 10, "corrupt");                /* header field under the CRC */
    read_serial(tm->uri, s2);
    assert_memory_equal(s1, s2, 8);
}

static void test_sim_refuses_short_image(void **state)
{
    struct tmp *tm = *state;
    uint8_t buf[1000];
    memset(buf, 0xA5, sizeof buf);
    write_file(tm->path, buf, sizeof buf);

    struct transport *t = NULL;
    char err[512] = "";
    assert_int_not_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    assert_null(t);
    assert_true(strlen(err) > 0);

    size_t len = 0;
    uint8_t *after = read_file(tm->path, &len);
    assert_int_equal(len, sizeof buf);
    assert_memory_equal(after, buf, sizeof buf);
    free(after);
}

static void test_sim_refuses_blank_image(void **state)
{
    struct tmp *tm = *state;
    size_t len = 65536;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, 0xFF, len);
    write_file(tm->path, buf, len);
    struct transport *t = NULL;
    char err[512] = "";
    assert_int_not_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    assert_non_null(strstr(err, "blank"));
    size_t len2 = 0;
    uint8_t *after = read_file(tm->path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, buf, len);
    free(after);
    free(buf);
}

static void test_bad_uris(void **state)
{
    (void)state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open("smartcard:0", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_null(t);
    assert_non_null(strstr(err, "sim:PATH"));
    assert_non_null(strstr(err, "tcp:HOST:PORT"));
    assert_int_equal(transport_open("nocolon", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_int_equal(transport_open("sim:", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_int_equal(transport_open("tcp:localhost", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_int_equal(transport_open("tcp:localhost:99999", &t, err, sizeof err),
                     TRANSPORT_E_URI);
    assert_int_equal(transport_open("tcp::1", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_int_equal(transport_open("", &t, err, sizeof err), TRANSPORT_E_URI);
    assert_null(t);
}

/* ---- generic 61xx / 6Cxx handling over a scripted backend --------------------------------- */

struct script_step {
    const char *expect; /* command the backend must receive (hex) */
    const char *answer; /* response it gives (hex) */
};

struct mock {
    struct transport base;
    const struct script_step *steps;
    size_t nsteps;
    size_t at;
};

static int mock_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                         size_t cap, size_t *rlen, char *err, size_t errlen)
{
    struct mock *m = (struct mock *)t;
    (void)err;
    (void)errlen;
    assert_true(m->at < m->nsteps);
    const struct script_step *s = &m->steps[m->at++];
    uint8_t want[600];
    size_t wlen = 0;
    assert_int_equal(hex_decode(s->expect, want, sizeof want, &wlen, NULL, 0), 0);
    assert_int_equal(len, wlen);
    assert_memory_equal(capdu, want, len);
    assert_int_equal(hex_decode(s->answer, rapdu, cap, rlen, NULL, 0), 0);
    return 0;
}

static int mock_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                      char *err, size_t errlen)
{
    (void)t;
    (void)cap;
    (void)err;
    (void)errlen;
    atr[0] = 0x3B;
    atr[1] = 0x00;
    *atr_len = 2;
    return 0;
}

static void mock_close(struct transport *t)
{
    (void)t;
}

static const struct transport_ops mock_ops = {
    .scheme = "mock",
    .synopsis = "mock:",
    .description = "scripted",
    .open = NULL,
    .transmit = mock_transmit,
    .reset = mock_reset,
    .close = mock_close,
};

static void run_script(const struct script_step *steps, size_t n, const char *cmd,
                       const char *expect_resp)
{
    struct mock m = { .base = { .ops = &mock_ops, .trace = NULL }, .steps = steps,
                      .nsteps = n, .at = 0 };
    uint8_t resp[600];
    size_t rlen = 0;
    (void)xchg(&m.base, cmd, resp, sizeof resp, &rlen);
    assert_int_equal(m.at, n);
    uint8_t want[600];
    size_t wlen = 0;
    assert_int_equal(hex_decode(expect_resp, want, sizeof want, &wlen, NULL, 0), 0);
    assert_int_equal(rlen, wlen);
    assert_memory_equal(resp, want, wlen);
}

static void test_exchange_get_response(void **state)
{
    (void)state;
    static const struct script_step steps[] = {
        { "00 CA DF 05 00", "61 03" },
        { "00 C0 00 00 03", "01 02 03 61 02" },
        { "00 C0 00 00 02", "04 05 90 00" },
    };
    run_script(steps, 3, "00 CA DF 05 00", "01 02 03 04 05 90 00");
}

static void test_exchange_wrong_le(void **state)
{
    (void)state;
    static const struct script_step steps[] = {
        { "00 B0 00 00 10", "6C 04" },
        { "00 B0 00 00 04", "AA BB CC DD 90 00" },
    };
    run_script(steps, 2, "00 B0 00 00 10", "AA BB CC DD 90 00");

    /* 6Cxx then 61xx: both handled in one exchange. */
    static const struct script_step steps2[] = {
        { "00 CA DF 01 02", "6C 00" },
        { "00 CA DF 01 00", "61 01" },
        { "00 C0 00 00 01", "EE 90 00" },
    };
    run_script(steps2, 3, "00 CA DF 01 02", "EE 90 00");

    /* A refusal is passed through, not an error. */
    static const struct script_step steps3[] = {
        { "00 20 00 81 02 31 32", "63 C2" },
    };
    run_script(steps3, 1, "00 20 00 81 02 31 32", "63 C2");
}

static void test_exchange_too_small(void **state)
{
    (void)state;
    static const struct script_step steps[] = {
        { "00 CA DF 05 00", "61 08" },
        { "00 C0 00 00 08", "01 02 03 04 05 06 07 08 90 00" },
    };
    struct mock m = { .base = { .ops = &mock_ops, .trace = NULL }, .steps = steps,
                      .nsteps = 2, .at = 0 };
    uint8_t cmd[5] = { 0x00, 0xCA, 0xDF, 0x05, 0x00 };
    uint8_t resp[6];
    size_t rlen = 99;
    char err[256];
    assert_int_equal(transport_exchange(&m.base, cmd, sizeof cmd, resp, sizeof resp, &rlen,
                                        err, sizeof err),
                     TRANSPORT_E_SPACE);
    assert_int_equal(rlen, 0);
    assert_true(strlen(err) > 0);
}

/* ---- short-only readers: command chaining and short Le ------------------------------------- */

/* Sends raw bytes through transport_exchange from an exact-size copy; returns the SW. */
static uint16_t xchg_raw(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *resp,
                         size_t cap, size_t *rlen)
{
    uint8_t *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, capdu, len);
    char err[256];
    int rc = transport_exchange(t, exact, len, resp, cap, rlen, err, sizeof err);
    free(exact);
    if (rc != 0)
        fail_msg("transport_exchange: %s", err);
    return transport_sw(resp, *rlen);
}

/* An extended command: header, nc bytes of data (byte i = i*7 + seed), Ne ne (0: none).
 * Returns a heap buffer and its length. */
static uint8_t *ext_apdu(uint8_t ins, uint8_t p1, uint8_t p2, size_t nc, uint8_t seed,
                         size_t ne, size_t *len)
{
    uint8_t *b = malloc(4 + 3 + nc + 2);
    assert_non_null(b);
    size_t n = 0;
    b[n++] = 0x00;
    b[n++] = ins;
    b[n++] = p1;
    b[n++] = p2;
    b[n++] = 0x00;
    if (nc) {
        b[n++] = (uint8_t)(nc >> 8);
        b[n++] = (uint8_t)nc;
        for (size_t i = 0; i < nc; i++)
            b[n++] = (uint8_t)(i * 7u + seed);
    }
    if (ne) {
        b[n++] = (uint8_t)(ne >> 8); /* 65536 -> 00 00 */
        b[n++] = (uint8_t)ne;
    }
    *len = n;
    return b;
}

static uint16_t send_ext(struct transport *t, uint8_t ins, uint8_t p1, uint8_t p2, size_t nc,
                         uint8_t seed, size_t ne, uint8_t *resp, size_t cap, size_t *rlen)
{
    size_t len = 0;
    uint8_t *a = ext_apdu(ins, p1, p2, nc, seed, ne, &len);
    uint16_t sw = xchg_raw(t, a, len, resp, cap, rlen);
    free(a);
    return sw;
}

static char *open_trace(struct transport *t, FILE **f, char **text, size_t *tlen)
{
    *text = NULL;
    *f = open_memstream(text, tlen);
    assert_non_null(*f);
    transport_set_trace(t, *f);
    return *text;
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what))
        n++;
    return n;
}

/* UPDATE and READ BINARY of 600 bytes in extended form give the same over a short-only reader
 * (chained links, short READ BINARYs) as over the extended path. */
static void test_short_only_binary(void **state)
{
    struct tmp *tm = *state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    assert_false(t->short_only);
    uint8_t *r1 = malloc(TRANSPORT_RAPDU_MAX), *r2 = malloc(TRANSPORT_RAPDU_MAX);
    assert_non_null(r1);
    assert_non_null(r2);
    size_t l1 = 0, l2 = 0;
    /* blank card: working EF 6001 of 1500 bytes, SFI 1, under the MF */
    assert_int_equal(xchg(t, "00E0 0000 15 6213 820101 83026001 800205DC 8603000000 880108",
                          r1, TRANSPORT_RAPDU_MAX, &l1), 0x9000);

    /* extended path: 600 bytes at 0 */
    assert_int_equal(send_ext(t, 0xD6, 0x00, 0x00, 600, 3, 0, r1, TRANSPORT_RAPDU_MAX, &l1),
                     0x9000);
    /* short only: the same 600 bytes at 600, traced */
    t->short_only = true;
    FILE *f;
    char *text;
    size_t tlen;
    open_trace(t, &f, &text, &tlen);
    assert_int_equal(send_ext(t, 0xD6, 0x02, 0x58, 600, 3, 0, r1, TRANSPORT_RAPDU_MAX, &l1),
                     0x9000);
    assert_int_equal(l1, 2);
    assert_int_equal(send_ext(t, 0xB0, 0x02, 0x58, 0, 0, 600, r2, TRANSPORT_RAPDU_MAX, &l2),
                     0x9000);
    transport_set_trace(t, NULL);
    assert_int_equal(fclose(f), 0);
    /* 600 = 255 + 255 + 90 in links, 256 + 256 + 88 in reads, every one short */
    assert_int_equal(count_of(text, "> 10 D6 02 58 FF "), 2);
    assert_int_equal(count_of(text, "> 00 D6 02 58 5A "), 1);
    assert_int_equal(count_of(text, "90 00 (OK)"), 6);
    assert_non_null(strstr(text, "> 00 B0 02 58 00\n"));
    assert_non_null(strstr(text, "> 00 B0 03 58 00\n"));
    assert_non_null(strstr(text, "> 00 B0 04 58 58\n"));
    assert_int_equal(count_of(text, ">"), 6);
    free(text);

    /* the extended path reads the same bytes at 0 */
    t->short_only = false;
    assert_int_equal(send_ext(t, 0xB0, 0x00, 0x00, 0, 0, 600, r1, TRANSPORT_RAPDU_MAX, &l1),
                     0x9000);
    assert_int_equal(l1, 602);
    assert_int_equal(l2, 602);
    assert_memory_equal(r1, r2, 602);

    /* both paths, same answers: to the end of the EF (6282), by SFI, and across the seam */
    static const struct {
        uint8_t p1, p2;
        size_t ne;
    } reads[] = {
        { 0x03, 0xE8, 600 },   /* offset 1000: 500 bytes there, 6282 */
        { 0x04, 0x00, 0x1DC }, /* offset 1024: exactly to the end */
        { 0x03, 0xDC, 600 },   /* offset 988: the EF ends exactly after two pieces */
        { 0x81, 0x10, 600 },   /* SFI 1, offset 16 */
        { 0x81, 0x00, 0x100 + 1 },
        { 0x01, 0x00, 1024 },
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        t->short_only = false;
        uint16_t s1 = send_ext(t, 0xB0, reads[i].p1, reads[i].p2, 0, 0, reads[i].ne, r1,
                               TRANSPORT_RAPDU_MAX, &l1);
        t->short_only = true;
        uint16_t s2 = send_ext(t, 0xB0, reads[i].p1, reads[i].p2, 0, 0, reads[i].ne, r2,
                               TRANSPORT_RAPDU_MAX, &l2);
        if (s1 != s2 || l1 != l2 || memcmp(r1, r2, l1) != 0)
            fail_msg("READ BINARY %02X%02X Le %zu: extended %04X (%zu bytes), short only "
                     "%04X (%zu bytes)", reads[i].p1, reads[i].p2, reads[i].ne, s1, l1, s2,
                     l2);
    }
    /* a refusal comes back as the card gave it */
    assert_int_equal(send_ext(t, 0xB0, 0x05, 0xDC, 0, 0, 600, r2, TRANSPORT_RAPDU_MAX, &l2),
                     0x6B00);
    assert_int_equal(l2, 2);
    assert_int_equal(send_ext(t, 0xB0, 0x9E, 0x00, 0, 0, 600, r2, TRANSPORT_RAPDU_MAX, &l2),
                     0x6A82);
    /* the caller's buffer still bounds the answer */
    assert_int_equal(transport_exchange(t, (const uint8_t *)"\x00\xB0\x00\x00\x00\x02\x58", 7,
                                        r2, 300, &l2, err, sizeof err),
                     TRANSPORT_E_SPACE);
    free(r1);
    free(r2);
    transport_close(t);
}

/* Ne > 256 for a command other than READ BINARY: short Le 00, then GET RESPONSE. Data above
 * the card's 1024 bytes: an intermediate link refused ends the exchange with its answer. */
static void test_short_only_get_response_and_refusal(void **state)
{
    struct tmp *tm = *state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    uint8_t *r1 = malloc(TRANSPORT_RAPDU_MAX), *r2 = malloc(TRANSPORT_RAPDU_MAX);
    assert_non_null(r1);
    assert_non_null(r2);
    size_t l1 = 0, l2 = 0;
    for (unsigned i = 0; i < 30; i++) {
        char apdu[80];
        snprintf(apdu, sizeof apdu, "00E0 0000 0D 620B 820101 8302%04X 80020004",
                 0x6000u + i);
        assert_int_equal(xchg(t, apdu, r1, TRANSPORT_RAPDU_MAX, &l1), 0x9000);
    }
    assert_int_equal(send_ext(t, 0xCA, 0xDF, 0x05, 0, 0, 65536, r1, TRANSPORT_RAPDU_MAX, &l1),
                     0x9000);
    assert_int_equal(l1, 31 * 12 + 2);
    t->short_only = true;
    FILE *f;
    char *text;
    size_t tlen;
    open_trace(t, &f, &text, &tlen);
    assert_int_equal(send_ext(t, 0xCA, 0xDF, 0x05, 0, 0, 65536, r2, TRANSPORT_RAPDU_MAX, &l2),
                     0x9000);
    assert_int_equal(l2, l1);
    assert_memory_equal(r1, r2, l1);
    /* data above the card's limit: the fifth link (1275 bytes so far) is refused, no more */
    assert_int_equal(send_ext(t, 0xD6, 0x00, 0x00, 1300, 1, 0, r2, TRANSPORT_RAPDU_MAX, &l2),
                     0x6700);
    assert_int_equal(l2, 2);
    transport_set_trace(t, NULL);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "> 00 CA DF 05 00\n"));
    assert_non_null(strstr(text, "> 00 C0 00 00 "));
    assert_int_equal(count_of(text, "> 10 D6 00 00 FF "), 5);
    assert_int_equal(count_of(text, "> 00 D6"), 0);
    free(text);
    /* and the card answers the next command normally (the chain was dropped) */
    assert_int_equal(xchg(t, "00 CA DF 01 00", r2, TRANSPORT_RAPDU_MAX, &l2), 0x9000);
    free(r1);
    free(r2);
    transport_close(t);
}

/* A chained secret command: no secret byte in the trace, whether the INS says so (VERIFY) or
 * transport_redact_next does (it covers every link, and only that command). */
static void test_short_only_trace_redacts_links(void **state)
{
    struct tmp *tm = *state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    t->short_only = true;
    uint8_t resp[64];
    size_t rlen = 0;
    assert_int_equal(xchg(t, "00E0 0000 12 6210 820101 83026001 800205DC 8603000000", resp,
                          sizeof resp, &rlen), 0x9000);
    FILE *f;
    char *text;
    size_t tlen;
    open_trace(t, &f, &text, &tlen);
    /* VERIFY with 300 bytes of A7 (too long for a PIN: the card says 6700 at the end) */
    uint8_t verify[4 + 3 + 300];
    memcpy(verify, "\x00\x20\x00\x81\x00\x01\x2C", 7);
    memset(verify + 7, 0xA7, 300);
    assert_int_equal(xchg_raw(t, verify, sizeof verify, resp, sizeof resp, &rlen), 0x6700);
    /* UPDATE BINARY of 600 bytes of B5 marked secret by the caller */
    uint8_t update[4 + 3 + 600];
    memcpy(update, "\x00\xD6\x00\x00\x00\x02\x58", 7);
    memset(update + 7, 0xB5, 600);
    transport_redact_next(t);
    assert_int_equal(xchg_raw(t, update, sizeof update, resp, sizeof resp, &rlen), 0x9000);
    assert_false(t->redact_next);
    /* the next command is shown again */
    assert_int_equal(xchg(t, "00 D6 00 00 02 C3 C4", resp, sizeof resp, &rlen), 0x9000);
    transport_set_trace(t, NULL);
    assert_int_equal(fclose(f), 0);
    assert_null(strstr(text, "A7"));
    assert_null(strstr(text, "B5"));
    assert_non_null(strstr(text, "> 10 20 00 81 FF [255 bytes redacted]"));
    assert_non_null(strstr(text, "> 00 20 00 81 2D [45 bytes redacted]"));
    assert_int_equal(count_of(text, "> 10 D6 00 00 FF [255 bytes redacted]"), 2);
    assert_non_null(strstr(text, "> 00 D6 00 00 5A [90 bytes redacted]"));
    assert_non_null(strstr(text, "> 00 D6 00 00 02 C3 C4"));
    free(text);
    transport_close(t);
}

/* 6Cxx to the last link: the whole chain goes again with the right Le (scripted card). */
static void test_short_only_wrong_le(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    char l1[2 * (5 + 255) + 1], l2[2 * (5 + 45 + 1) + 1], l2b[sizeof l2];
    uint8_t b[5 + 255 + 1];
    memcpy(b, "\x10\x2A\x80\x86\xFF", 5);
    memcpy(b + 5, data, 255);
    assert_true(hex_encode(b, 5 + 255, 0, l1, sizeof l1) > 0);
    memcpy(b, "\x00\x2A\x80\x86\x2D", 5);
    memcpy(b + 5, data + 255, 45);
    b[50] = 0x10;
    assert_true(hex_encode(b, 51, 0, l2, sizeof l2) > 0);
    b[50] = 0x04;
    assert_true(hex_encode(b, 51, 0, l2b, sizeof l2b) > 0);
    const struct script_step steps[] = {
        { l1, "90 00" },
        { l2, "6C 04" },
        { l1, "90 00" },
        { l2b, "AA BB CC DD 90 00" },
    };
    struct mock m = { .base = { .ops = &mock_ops, .trace = NULL, .short_only = true },
                      .steps = steps, .nsteps = 4, .at = 0 };
    uint8_t cmd[4 + 3 + 300 + 2];
    memcpy(cmd, "\x00\x2A\x80\x86\x00\x01\x2C", 7);
    memcpy(cmd + 7, data, 300);
    cmd[307] = 0x00;
    cmd[308] = 0x10;
    uint8_t resp[16];
    size_t rlen = 0;
    assert_int_equal(xchg_raw(&m.base, cmd, sizeof cmd, resp, sizeof resp, &rlen), 0x9000);
    assert_int_equal(m.at, 4);
    assert_int_equal(rlen, 6);
    assert_memory_equal(resp, "\xAA\xBB\xCC\xDD\x90\x00", 6);

    /* a refused first link ends it: the answer as the card gave it */
    const struct script_step refused[] = { { l1, "6A 82" } };
    struct mock m2 = { .base = { .ops = &mock_ops, .trace = NULL, .short_only = true },
                       .steps = refused, .nsteps = 1, .at = 0 };
    assert_int_equal(xchg_raw(&m2.base, cmd, sizeof cmd, resp, sizeof resp, &rlen), 0x6A82);
    assert_int_equal(m2.at, 1);
    assert_int_equal(rlen, 2);
}

/* ---- hex -------------------------------------------------------------------------------- */

static void test_hex_decode(void **state)
{
    (void)state;
    uint8_t b[16];
    size_t n = 99;
    char err[128];
    assert_int_equal(hex_decode("00a4 000C:02:3f00", b, sizeof b, &n, err, sizeof err), 0);
    assert_int_equal(n, 7);
    static const uint8_t want[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
    assert_memory_equal(b, want, 7);
    assert_int_equal(hex_decode("", b, sizeof b, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(hex_decode("  \t\n", b, sizeof b, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);

    assert_int_equal(hex_decode("123", b, sizeof b, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "odd"));
    assert_int_equal(hex_decode("3 F00", b, sizeof b, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "odd"));
    assert_int_equal(hex_decode("0G", b, sizeof b, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "'G'"));
    assert_non_null(strstr(err, "offset 1"));
    assert_int_equal(hex_decode("0x12", b, sizeof b, &n, err, sizeof err), -1);
    assert_int_equal(hex_decode("00-11", b, sizeof b, &n, err, sizeof err), -1);
    assert_int_equal(hex_decode("000102", b, 2, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer"));

    assert_int_equal(hex_decoded_len("00 11:22"), 3);
    assert_int_equal(hex_decoded_len("0"), -1);

    char out[16];
    static const uint8_t in[] = { 0x00, 0xAB, 0xFF };
    assert_int_equal(hex_encode(in, 3, ' ', out, sizeof out), 8);
    assert_string_equal(out, "00 AB FF");
    assert_int_equal(hex_encode(in, 3, 0, out, sizeof out), 6);
    assert_string_equal(out, "00ABFF");
    assert_int_equal(hex_encode(in, 3, ' ', out, 8), 0); /* needs 9 with the NUL */
    assert_string_equal(out, "");
}

/* ---- trace ------------------------------------------------------------------------------ */

static char *trace_to_string(const uint8_t *apdu, size_t len, const char *dir, bool redact)
{
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    assert_non_null(f);
    trace_apdu(f, dir, apdu, len, redact);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_trace_redaction(void **state)
{
    (void)state;
    /* VERIFY user PIN "123456" with a PIN that is easy to spot in hex and in text. */
    static const uint8_t verify[] = { 0x00, 0x20, 0x00, 0x81, 0x06,
                                      0x31, 0x32, 0x33, 0x34, 0x35, 0x36 };
    assert_true(trace_is_secret_command(verify, sizeof verify));
    char *s = trace_to_string(verify, sizeof verify, ">", true);
    assert_null(strstr(s, "31"));
    assert_null(strstr(s, "36"));
    assert_null(strstr(s, "123456"));
    assert_non_null(strstr(s, "00 20 00 81 06"));
    assert_non_null(strstr(s, "[6 bytes redacted]"));
    free(s);

    /* CHANGE REFERENCE DATA and RESET RETRY COUNTER are secret too, with Le kept visible. */
    static const uint8_t change[] = { 0x00, 0x24, 0x00, 0x81, 0x02, 0x99, 0x98 };
    static const uint8_t reset_rc[] = { 0x00, 0x2C, 0x00, 0x81, 0x02, 0x97, 0x96 };
    assert_true(trace_is_secret_command(change, sizeof change));
    assert_true(trace_is_secret_command(reset_rc, sizeof reset_rc));
    s = trace_to_string(reset_rc, sizeof reset_rc, ">", true);
    assert_null(strstr(s, "97"));
    free(s);

    /* A malformed secret command: everything after the header is hidden. */
    static const uint8_t bad[] = { 0x00, 0x20, 0x00, 0x81, 0x09, 0x31, 0x32 };
    s = trace_to_string(bad, sizeof bad, ">", true);
    assert_null(strstr(s, "31"));
    assert_non_null(strstr(s, "[3 bytes redacted]"));
    free(s);

    /* Not secret: shown in full. */
    static const uint8_t select[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
    assert_false(trace_is_secret_command(select, sizeof select));
    s = trace_to_string(select, sizeof select, ">", false);
    assert_string_equal(s, "> 00 A4 00 0C 02 3F 00\n");
    free(s);

    static const uint8_t ok[] = { 0x90, 0x00 };
    s = trace_to_string(ok, sizeof ok, "<", false);
    assert_non_null(strstr(s, "< 90 00 ("));
    free(s);

    assert_false(trace_is_secret_command(verify, 1));
    assert_false(trace_is_secret_command(NULL, 0));
}

/* The generic layer traces through trace_apdu with redaction: a VERIFY sent over sim: never
 * shows the PIN in the -v output. */
static void test_transport_trace_redacts(void **state)
{
    struct tmp *tm = *state;
    struct transport *t = NULL;
    char err[512];
    assert_int_equal(transport_open(tm->uri, &t, err, sizeof err), 0);
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    assert_non_null(f);
    transport_set_trace(t, f);
    uint8_t resp[64];
    size_t rlen = 0;
    (void)xchg(t, "00 20 00 81 06 37 35 39 31 35 33", resp, sizeof resp, &rlen);
    (void)xchg(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen);
    transport_close(t);
    assert_int_equal(fclose(f), 0);
    assert_null(strstr(text, "37 35 39"));
    assert_non_null(strstr(text, "[6 bytes redacted]"));
    assert_non_null(strstr(text, "> 00 A4 00 0C 02 3F 00"));
    assert_non_null(strstr(text, "< 90 00"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sim_select_mf, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_sim_persistence, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_sim_refuses_damaged_images, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_sim_refuses_short_image, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_sim_refuses_blank_image, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_bad_uris),
        cmocka_unit_test(test_exchange_get_response),
        cmocka_unit_test(test_exchange_wrong_le),
        cmocka_unit_test(test_exchange_too_small),
        cmocka_unit_test_setup_teardown(test_short_only_binary, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_short_only_get_response_and_refusal, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_short_only_trace_redacts_links, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test(test_short_only_wrong_le),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_trace_redaction),
        cmocka_unit_test_setup_teardown(test_transport_trace_redacts, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

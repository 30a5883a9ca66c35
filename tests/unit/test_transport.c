/* Host transports: the in-process sim: transport over a temporary NVM file (persistence,
 * refusal of corrupt / foreign / short images without touching them), the generic 61xx/6Cxx
 * handling over a scripted backend, hex decoding and trace redaction. */
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
    assert_int_equal(transport_open("pcsc:0", &t, err, sizeof err), TRANSPORT_E_URI);
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
    uint8_t want[64];
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
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_trace_redaction),
        cmocka_unit_test_setup_teardown(test_transport_trace_redacts, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

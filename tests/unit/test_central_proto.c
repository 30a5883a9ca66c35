/* The central protocol's frames and envelope (host/central/proto.c) over a memory stream:
 * round trips, the 64 KiB limit on both sides (65536 passes, 65537 does not), malformed JSON
 * that leaves the stream in step, truncated frames, messages that never quote the payload,
 * request and response checks, fresh request ids. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "rng.h"

/* ---- a memory stream ---------------------------------------------------------------------- */

struct mem {
    uint8_t *data;
    size_t len, cap, pos;
    unsigned writes;
};

static int mem_read(void *ctx, uint8_t *buf, size_t len)
{
    struct mem *m = ctx;
    if (m->pos + len > m->len) {
        m->pos = m->len;
        return CENTRAL_IO_EOF;
    }
    memcpy(buf, m->data + m->pos, len);
    m->pos += len;
    return 0;
}

static int mem_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct mem *m = ctx;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->data = realloc(m->data, m->cap);
        assert_non_null(m->data);
    }
    memcpy(m->data + m->len, buf, len);
    m->len += len;
    m->writes++;
    return 0;
}

static void mem_put(struct mem *m, const void *bytes, size_t len)
{
    assert_int_equal(mem_write(m, bytes, len), 0);
}

static void mem_put_header(struct mem *m, uint32_t len)
{
    uint8_t h[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                     (uint8_t)len };
    mem_put(m, h, 4);
}

static struct central_io io_of(struct mem *m)
{
    struct central_io io = { mem_read, mem_write, m };
    return io;
}

/* A JSON object {"a":"xxx..."} of exactly len bytes (len >= 8). */
static json_t *object_of_size(size_t len)
{
    size_t n = len - 8;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'x', n);
    s[n] = '\0';
    json_t *o = json_pack("{s:s}", "a", s);
    free(s);
    assert_non_null(o);
    assert_int_equal(json_dumpb(o, NULL, 0, JSON_COMPACT), len);
    return o;
}

/* ---- frames ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    (void)state;
    struct mem m = { 0 };
    struct central_io io = io_of(&m);
    char err[256];
    json_t *req = json_pack("{s:s, s:s, s:i}", "op", "lookup", "request_id", "abc", "n", 7);
    assert_int_equal(central_frame_write(&io, req, err, sizeof err), CENTRAL_FRAME_OK);
    assert_int_equal(m.writes, 1); /* header and payload in one write */
    size_t plen = m.len - 4;
    assert_int_equal(m.data[0] << 24 | m.data[1] << 16 | m.data[2] << 8 | m.data[3], plen);
    json_t *got = NULL;
    assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err), CENTRAL_FRAME_OK);
    assert_true(json_equal(req, got));
    json_decref(got);
    /* the end of the stream between frames is a clean close */
    int ioe = 0;
    assert_int_equal(central_frame_read(&io, &got, &ioe, err, sizeof err),
                     CENTRAL_FRAME_CLOSED);
    assert_int_equal(ioe, CENTRAL_IO_EOF);
    assert_null(got);
    json_decref(req);
    free(m.data);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct mem m = { 0 };
    struct central_io io = io_of(&m);
    char err[256];
    json_t *max = object_of_size(CENTRAL_FRAME_MAX);
    json_t *over = object_of_size(CENTRAL_FRAME_MAX + 1);
    assert_int_equal(central_frame_write(&io, over, err, sizeof err), CENTRAL_FRAME_TOO_BIG);
    assert_int_equal(m.len, 0); /* nothing sent */
    assert_non_null(strstr(err, "65537 bytes"));
    assert_int_equal(central_frame_write(&io, max, err, sizeof err), CENTRAL_FRAME_OK);
    json_t *got = NULL;
    assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err), CENTRAL_FRAME_OK);
    assert_true(json_equal(max, got));
    json_decref(got);

    /* a header announcing 65537 bytes is refused before anything is read or allocated */
    mem_put_header(&m, CENTRAL_FRAME_MAX + 1);
    size_t pos = m.pos;
    assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err),
                     CENTRAL_FRAME_TOO_BIG);
    assert_int_equal(m.pos, pos + 4);
    assert_null(got);
    assert_non_null(strstr(err, "65537"));
    mem_put_header(&m, 0xFFFFFFFFu);
    assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err),
                     CENTRAL_FRAME_TOO_BIG);
    json_decref(max);
    json_decref(over);
    free(m.data);
}

static void test_bad_json_keeps_step(void **state)
{
    (void)state;
    struct mem m = { 0 };
    struct central_io io = io_of(&m);
    char err[256];
    static const char *const bad[] = {
        "{\"op\":\"lookup\",\"pin\":\"SECRET-4711\"",   /* cut short */
        "[\"SECRET-4711\"]",                           /* not an object */
        "{\"a\":1,\"a\":2}",                            /* duplicate key */
        "{\"a\":\"x\\u0000SECRET-4711\"}",              /* NUL in a string */
        "{\"a\":1} {\"b\":2}",                          /* two values */
        "",                                             /* empty */
        "SECRET-4711",                                  /* not JSON */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mem_put_header(&m, (uint32_t)strlen(bad[i]));
        mem_put(&m, bad[i], strlen(bad[i]));
    }
    json_t *good = json_pack("{s:s}", "op", "confirm");
    assert_int_equal(central_frame_write(&io, good, err, sizeof err), CENTRAL_FRAME_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *got = (json_t *)&m; /* must be reset to NULL */
        assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err),
                         CENTRAL_FRAME_BAD_JSON);
        assert_null(got);
        assert_null(strstr(err, "SECRET"));
    }
    json_t *got = NULL;
    assert_int_equal(central_frame_read(&io, &got, NULL, err, sizeof err), CENTRAL_FRAME_OK);
    assert_true(json_equal(good, got));
    json_decref(got);
    json_decref(good);
    free(m.data);
}

static void test_truncated(void **state)
{
    (void)state;
    char err[256];
    json_t *got = NULL;
    int ioe;
    /* half a header */
    struct mem m = { 0 };
    struct central_io io = io_of(&m);
    mem_put(&m, "\0\0", 2);
    assert_int_equal(central_frame_read(&io, &got, &ioe, err, sizeof err), CENTRAL_FRAME_IO);
    assert_int_equal(ioe, CENTRAL_IO_EOF);
    free(m.data);
    /* a payload shorter than announced */
    struct mem m2 = { 0 };
    io = io_of(&m2);
    mem_put_header(&m2, 10);
    mem_put(&m2, "{\"a\":", 5);
    assert_int_equal(central_frame_read(&io, &got, &ioe, err, sizeof err), CENTRAL_FRAME_IO);
    assert_non_null(strstr(err, "10-byte frame"));
    assert_null(got);
    free(m2.data);
}

/* ---- envelope ---------------------------------------------------------------------------- */

static void expect_bad_request(const char *json, const char *what)
{
    char err[256];
    json_t *r = json_loads(json, 0, NULL);
    assert_non_null(r);
    assert_int_equal(central_request_check(r, err, sizeof err), -1);
    assert_non_null(strstr(err, what));
    json_decref(r);
}

static void test_request_check(void **state)
{
    (void)state;
    char err[256];
    char id64[65], id65[66];
    memset(id64, 'A', 64);
    id64[64] = '\0';
    memset(id65, 'A', 65);
    id65[65] = '\0';
    json_t *r = json_pack("{s:s, s:s, s:s}", "op", "claim", "request_id", id64, "x", "y");
    assert_int_equal(central_request_check(r, err, sizeof err), 0);
    assert_string_equal(central_request_id(r), id64);
    json_decref(r);
    r = json_pack("{s:s, s:s}", "op", "claim", "request_id", "Az09_-");
    assert_int_equal(central_request_check(r, err, sizeof err), 0);
    json_decref(r);
    r = json_pack("{s:s, s:s}", "op", "claim", "request_id", id65);
    assert_int_equal(central_request_check(r, err, sizeof err), -1);
    assert_null(central_request_id(r));
    assert_null(strstr(err, "AAAA"));
    json_decref(r);

    expect_bad_request("{\"request_id\":\"a1\"}", "\"op\"");
    expect_bad_request("{\"op\":\"lookup\"}", "\"request_id\"");
    expect_bad_request("{\"op\":\"lookup\",\"request_id\":7}", "\"request_id\"");
    expect_bad_request("{\"op\":\"lookup\",\"request_id\":\"\"}", "\"request_id\"");
    expect_bad_request("{\"op\":\"lookup\",\"request_id\":\"a b\"}", "\"request_id\"");
    expect_bad_request("{\"op\":\"lookup\",\"request_id\":\"a/b\"}", "\"request_id\"");
    expect_bad_request("{\"op\":\"Lookup\",\"request_id\":\"a\"}", "\"op\"");
    expect_bad_request("{\"op\":\"\",\"request_id\":\"a\"}", "\"op\"");
    expect_bad_request("{\"op\":[],\"request_id\":\"a\"}", "\"op\"");
    expect_bad_request("{\"op\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"request_id\":\"a\"}",
                       "\"op\"");
    json_t *arr = json_array();
    assert_int_equal(central_request_check(arr, err, sizeof err), -1);
    json_decref(arr);
}

static void test_request_id_new(void **state)
{
    (void)state;
    mbedtls_ctr_drbg_context drbg;
    assert_int_equal(rng_drbg_seed(&drbg, "test_central_proto"), 0);
    char a[CENTRAL_REQUEST_ID_NEW + 1], b[CENTRAL_REQUEST_ID_NEW + 1];
    assert_int_equal(central_request_id_new(mbedtls_ctr_drbg_random, &drbg, a), 0);
    assert_int_equal(central_request_id_new(mbedtls_ctr_drbg_random, &drbg, b), 0);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_true(central_request_id_valid(a));
    assert_string_not_equal(a, b);
    mbedtls_ctr_drbg_free(&drbg);
}

static void test_status_names(void **state)
{
    (void)state;
    static const char *const names[] = { "ok", "not_found", "conflict", "bad_request",
                                         "unavailable", "internal" };
    assert_int_equal(sizeof names / sizeof names[0], CENTRAL_STATUS_COUNT);
    for (unsigned i = 0; i < CENTRAL_STATUS_COUNT; i++) {
        enum central_status s;
        assert_string_equal(central_status_name((enum central_status)i), names[i]);
        assert_int_equal(central_status_parse(names[i], &s), 0);
        assert_int_equal(s, i);
    }
    enum central_status s;
    assert_int_equal(central_status_parse("OK", &s), -1);
    assert_int_equal(central_status_parse("", &s), -1);
}

static void test_response(void **state)
{
    (void)state;
    char err[256];
    enum central_status st;
    json_t *r = central_response_new(CENTRAL_CONFLICT, "claimed by %s", "north");
    assert_non_null(r);
    assert_int_equal(central_response_finish(r, "id-1", err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(r, "request_id")), "id-1");
    assert_string_equal(json_string_value(json_object_get(r, "message")), "claimed by north");
    assert_int_equal(central_response_check(r, "id-1", &st, err, sizeof err), 0);
    assert_int_equal(st, CENTRAL_CONFLICT);
    assert_int_equal(central_response_check(r, "id-2", &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "id-2"));
    json_decref(r);

    /* a handler's response without a message gets "", without an id null */
    r = json_pack("{s:s, s:i}", "status", "ok", "count", 3);
    assert_int_equal(central_response_finish(r, NULL, err, sizeof err), 0);
    assert_true(json_is_null(json_object_get(r, "request_id")));
    assert_string_equal(json_string_value(json_object_get(r, "message")), "");
    json_decref(r);

    /* what a handler may not send */
    static const char *const bad[] = { "{}", "{\"status\":\"fine\"}", "{\"status\":1}",
                                       "{\"status\":\"ok\",\"message\":5}", "[1]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = json_loads(bad[i], 0, NULL);
        assert_non_null(r);
        assert_int_equal(central_response_finish(r, "x", err, sizeof err), -1);
        json_decref(r);
    }
    /* what a client does not accept */
    static const char *const badr[] = {
        "{\"request_id\":\"x\",\"status\":\"weird\",\"message\":\"\"}",
        "{\"request_id\":\"x\",\"status\":\"ok\"}",
        "{\"status\":\"ok\",\"message\":\"\"}",
    };
    for (size_t i = 0; i < sizeof badr / sizeof badr[0]; i++) {
        r = json_loads(badr[i], 0, NULL);
        assert_non_null(r);
        assert_int_equal(central_response_check(r, "x", &st, err, sizeof err), -1);
        json_decref(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_bad_json_keeps_step),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_request_check),
        cmocka_unit_test(test_request_id_new),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The central server and client over real TLS on 127.0.0.1 (host/central/server.c, client.c,
 * tls.c), with certificates made by certs.c in a temporary directory and a test handler in
 * the server's threads:
 *   - mutual authentication: the handler sees the branch name of the client certificate;
 *     several requests per connection; server names checked as IP address and DNS name;
 *   - refused: a client without certificate, a client certificate of another CA, a certificate
 *     revoked while the server runs (the CRL file is read again), a server certificate for
 *     another host name (refused by the client), plain TCP and HTTP (the server goes on);
 *   - frames: an oversized frame is answered and the connection closed, malformed JSON and a
 *     bad envelope answered on a connection that stays usable, handler failures and oversized
 *     responses answered "internal";
 *   - limits: silent and half-open clients do not delay a good one and are dropped after the
 *     handshake and request timeouts; connections beyond the maximum are closed at once;
 *   - 16 concurrent clients, 25 requests each;
 *   - a response lost on the way (a proxy drops the link) is asked for again with the same
 *     request_id, and a server that is not there is given up on after the attempts;
 *   - the log has a line per connection and request, and never a request's contents;
 *   - central_server_run stops cleanly on SIGTERM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "central_fixture.h"
#include "certs.h"
#include "client.h"
#include "crl.h"
#include "net.h"
#include "proto.h"
#include "readfile.h"
#include "server.h"
#include "tls.h"

/* ---- certificates, made once -------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (cf_setup() != 0)
        return -1;
    cf_make_ca_and_server();
    cf_make(CENTRAL_CERT_SERVER, "ca", "central", "other.example", "srv_other");
    cf_make(CENTRAL_CERT_BRANCH, "ca", "north", NULL, "north");
    cf_make(CENTRAL_CERT_BRANCH, "ca", "south", NULL, "south");
    cf_make(CENTRAL_CERT_BRANCH, "ca", "east", NULL, "east");
    cf_make(CENTRAL_CERT_CA, NULL, "test CA", NULL, "ca2"); /* same name, another key */
    cf_make(CENTRAL_CERT_BRANCH, "ca2", "west", NULL, "west");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_teardown();
}

/* ---- the test handler ---------------------------------------------------------------------- */

static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;
static char seen_ids[8][CENTRAL_REQUEST_ID_MAX + 1];
static unsigned seen_calls[8], nseen;
static atomic_bool proxy_drop; /* the proxy drops the next server-to-client bytes */

static unsigned count_call(const char *id)
{
    pthread_mutex_lock(&hlock);
    unsigned i = 0;
    while (i < nseen && strcmp(seen_ids[i], id) != 0)
        i++;
    if (i == nseen && nseen < 8)
        snprintf(seen_ids[nseen++], sizeof seen_ids[0], "%s", id);
    unsigned n = i < 8 ? ++seen_calls[i] : 0;
    pthread_mutex_unlock(&hlock);
    return n;
}

/* ops: echo (branch, op and "echo" back), once (counts calls per request_id; the first arms
 * the proxy's drop), sleep ("ms"), fail (returns -1), big (a 70 kB answer), conflict. */
static int handler(void *ctx, const char *branch, const json_t *req, json_t **resp)
{
    (void)ctx;
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *id = json_string_value(json_object_get(req, "request_id"));
    if (strcmp(op, "fail") == 0)
        return -1;
    if (strcmp(op, "conflict") == 0) {
        *resp = central_response_new(CENTRAL_CONFLICT, "claimed by another branch");
        return 0;
    }
    if (strcmp(op, "sleep") == 0)
        cf_sleep_ms((long)json_integer_value(json_object_get(req, "ms")));
    *resp = central_response_new(CENTRAL_OK, "done");
    json_object_set_new(*resp, "branch", json_string(branch));
    json_object_set_new(*resp, "op", json_string(op));
    json_t *echo = json_object_get(req, "echo");
    if (echo != NULL)
        json_object_set(*resp, "echo", echo);
    if (strcmp(op, "once") == 0) {
        unsigned n = count_call(id);
        json_object_set_new(*resp, "calls", json_integer(n));
        if (n == 1)
            atomic_store(&proxy_drop, true);
    }
    if (strcmp(op, "big") == 0) {
        char *s = malloc(70001);
        memset(s, 'x', 70000);
        s[70000] = '\0';
        json_object_set_new(*resp, "big", json_string(s));
        free(s);
    }
    return 0;
}

/* ---- a server in a thread ------------------------------------------------------------------ */

/* ---- clients -------------------------------------------------------------------------------- */

/* One "echo" call; returns the response (status checked by the caller). */
static json_t *echo(struct central_client *c, const char *text)
{
    json_t *req = json_pack("{s:s, s:s}", "op", "echo", "echo", text);
    json_t *resp = NULL;
    char err[512];
    int rc = central_call(c, req, &resp, err, sizeof err);
    if (rc != 0)
        fail_msg("central_call: %d: %s", rc, err);
    assert_string_equal(json_string_value(json_object_get(resp, "request_id")),
                        json_string_value(json_object_get(req, "request_id")));
    json_decref(req);
    return resp;
}

static void expect_refused(const char *port, const char *branch, const char *name,
                           const char *why)
{
    struct central_client *c = cf_client(port, branch, name, 1);
    char err[700] = "";
    int rc = central_client_connect(c, err, sizeof err);
    if (rc != CENTRAL_CALL_E_REFUSED)
        fail_msg("connect as %s: %d, expected refused: %s", branch, rc, err);
    if (why != NULL && strstr(err, why) == NULL)
        fail_msg("\"%s\" lacks \"%s\"", err, why);
    json_t *req = json_pack("{s:s}", "op", "echo");
    json_t *resp = (json_t *)req;
    assert_int_equal(central_call(c, req, &resp, err, sizeof err), CENTRAL_CALL_E_REFUSED);
    assert_null(resp);
    json_decref(req);
    central_client_close(c);
}

/* A raw TLS connection as branch, for frames the client would not send. */
struct raw {
    struct central_tls tls;
    struct central_conn conn;
};

static void raw_open(struct raw *r, const char *port, const char *branch)
{
    char crt[128], key[128], err[512];
    snprintf(crt, sizeof crt, "%s/%s.crt", cf_dir, branch);
    snprintf(key, sizeof key, "%s/%s.key", cf_dir, branch);
    struct central_tls_files f = { cf_path("ca.crt"), crt, key, NULL };
    assert_int_equal(central_tls_init(&r->tls, false, &f, err, sizeof err), 0);
    int fd = net_connect("127.0.0.1", port, 5000, "test server", err, sizeof err);
    assert_true(fd >= 0);
    assert_int_equal(central_conn_open(&r->conn, &r->tls, fd, "127.0.0.1", -1, err, sizeof err),
                     0);
    if (central_conn_handshake(&r->conn, net_now_ms() + 5000, err, sizeof err) != 0)
        fail_msg("raw handshake: %s", err);
    r->conn.deadline = net_now_ms() + 5000;
}

static void raw_close(struct raw *r)
{
    central_conn_close(&r->conn, CENTRAL_CLOSE_NOTIFY);
    central_tls_free(&r->tls);
}

static void raw_send(struct raw *r, const void *bytes, size_t len)
{
    assert_int_equal(r->conn.io.write(r->conn.io.ctx, bytes, len), 0);
}

static json_t *raw_read(struct raw *r, int want)
{
    json_t *o = NULL;
    char err[256];
    r->conn.deadline = net_now_ms() + 5000;
    int rc = central_frame_read(&r->conn.io, &o, NULL, err, sizeof err);
    if (rc != want)
        fail_msg("frame read: %d, expected %d: %s", rc, want, err);
    return o;
}

static void expect_status(const json_t *resp, const char *status)
{
    assert_non_null(resp);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), status);
}

/* A plain TCP connection to the server. */
static int tcp_to(const char *port)
{
    char err[256];
    int fd = net_connect("127.0.0.1", port, 5000, "test server", err, sizeof err);
    assert_true(fd >= 0);
    return fd;
}

/* Milliseconds until the server closes fd (reading and discarding), or -1 after max_ms. */
static long closed_after(int fd, long max_ms)
{
    long long t0 = net_now_ms();
    for (;;) {
        long long left = t0 + max_ms - net_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return (long)(net_now_ms() - t0);
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_mutual_auth(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .crl = cf_path("crl.pem") }, handler, NULL);
    struct central_client *c = cf_client(v.port_text, "north", NULL, 0);
    for (int i = 0; i < 5; i++) {
        json_t *r = echo(c, "hello");
        expect_status(r, "ok");
        assert_string_equal(json_string_value(json_object_get(r, "branch")), "north");
        assert_string_equal(json_string_value(json_object_get(r, "echo")), "hello");
        const char *id = json_string_value(json_object_get(r, "request_id"));
        assert_int_equal(strlen(id), CENTRAL_REQUEST_ID_NEW);
        char line[160];
        snprintf(line, sizeof line, "branch=north op=echo request_id=%s status=ok", id);
        assert_true(cf_wait_log(&v, line, 2000));
        json_decref(r);
    }
    central_client_close(c);
    assert_true(cf_wait_log(&v, "branch=north closed after 5 requests", 2000));
    assert_int_equal(cf_log_has(&v, "branch=north connected"), true);

    /* the server certificate also names localhost: a DNS name, checked by mbedtls */
    c = cf_client(v.port_text, "south", "localhost", 0);
    json_t *r = echo(c, "x");
    assert_string_equal(json_string_value(json_object_get(r, "branch")), "south");
    json_decref(r);
    /* a request with its own request_id keeps it */
    json_t *req = json_pack("{s:s, s:s}", "op", "conflict", "request_id", "my-id_1");
    char err[256];
    assert_int_equal(central_call(c, req, &r, err, sizeof err), 0);
    expect_status(r, "conflict");
    assert_string_equal(json_string_value(json_object_get(r, "request_id")), "my-id_1");
    assert_string_equal(json_string_value(json_object_get(r, "message")),
                        "claimed by another branch");
    json_decref(r);
    json_decref(req);
    /* a request the client will not send */
    req = json_pack("{s:s}", "op", "Bad Op");
    assert_int_equal(central_call(c, req, &r, err, sizeof err), CENTRAL_CALL_E_PROTOCOL);
    json_decref(req);
    central_client_close(c);
    cf_srv_stop(&v);
}

static void test_refusals(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .crl = cf_path("crl.pem") }, handler, NULL);
    expect_refused(v.port_text, NULL, NULL, "refused the handshake");
    assert_true(cf_wait_log(&v, "refused: the client sent no certificate", 2000));
    expect_refused(v.port_text, "west", NULL, "refused the handshake");
    assert_true(cf_wait_log(&v, "refused: the client's certificate CN=west was refused", 2000));
    cf_srv_stop(&v);

    /* the client refuses a server certificate for another host */
    cf_srv_start(&v, (struct central_server_config){ .cert = cf_path("srv_other.crt"),
                                                  .key = cf_path("srv_other.key") }, handler, NULL);
    expect_refused(v.port_text, "north", "127.0.0.1", "CN");
    expect_refused(v.port_text, "north", "localhost", "CN");
    struct central_client *c = cf_client(v.port_text, "north", "other.example", 0);
    json_t *r = echo(c, "ok");
    json_decref(r);
    central_client_close(c);
    cf_srv_stop(&v);
}

static void test_revoked_without_restart(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .crl = cf_path("crl.pem") }, handler, NULL);
    struct central_client *east = cf_client(v.port_text, "east", NULL, 2);
    json_t *r = echo(east, "before");
    json_decref(r);

    struct central_crl_req q = { .ca_cert = cf_path("ca.crt"), .ca_key = cf_path("ca.key"),
                                 .crl = cf_path("crl.pem"), .revoke = cf_path("east.crt") };
    char err[512];
    assert_int_equal(central_crl_update(&q, NULL, err, sizeof err), 0);
    /* the open connection ends at its next request, and east cannot come back */
    json_t *req = json_pack("{s:s}", "op", "echo");
    assert_int_equal(central_call(east, req, &r, err, sizeof err), CENTRAL_CALL_E_REFUSED);
    json_decref(req);
    central_client_close(east);
    assert_true(cf_wait_log(&v, "branch=east closed after 1 request: the certificate was revoked "
                         "while connected", 2000));
    expect_refused(v.port_text, "east", NULL, "refused the handshake");
    assert_true(cf_wait_log(&v, "read the changed CRL", 2000));
    assert_true(cf_wait_log(&v, "CN=east was refused: The certificate has been revoked", 2000));
    struct central_client *c = cf_client(v.port_text, "north", NULL, 1);
    r = echo(c, "still in");
    json_decref(r);
    central_client_close(c);

    /* a CRL file that turns bad lets nobody in until it is good again */
    uint8_t *good;
    size_t len;
    assert_int_equal(readfile_load(cf_path("crl.pem"), "crl", 1 << 20, false, &good, &len, err,
                                   sizeof err), 0);
    FILE *f = fopen(cf_path("crl.pem"), "w");
    fputs("not a CRL\n", f);
    fclose(f);
    c = cf_client(v.port_text, "north", NULL, 1); /* the server just closes: worth a retry */
    assert_int_equal(central_client_connect(c, err, sizeof err), CENTRAL_CALL_E_UNREACHABLE);
    central_client_close(c);
    assert_true(cf_wait_log(&v, "no usable CRL, so no client is let in", 2000));
    f = fopen(cf_path("crl.pem"), "w");
    fwrite(good, 1, len, f);
    fclose(f);
    readfile_free(good, len);
    c = cf_client(v.port_text, "north", NULL, 1);
    r = echo(c, "back");
    json_decref(r);
    central_client_close(c);
    cf_srv_stop(&v);
}

static void test_plain_tcp(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .handshake_ms = 2000 }, handler, NULL);
    static const char *const junk[] = {
        "GET / HTTP/1.1\r\nHost: central\r\n\r\n",
        "\x00\x00\x00\x10{\"op\":\"lookup\"}",
        "\x16\x03\x01\x00\x05hello",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int fd = tcp_to(v.port_text);
        size_t len = i == 1 ? 20 : strlen(junk[i]);
        assert_int_equal(send(fd, junk[i], len, MSG_NOSIGNAL), (ssize_t)len);
        long ms = closed_after(fd, 5000);
        if (ms < 0)
            fail_msg("junk %zu: the server did not close the connection", i);
        close(fd);
    }
    assert_true(cf_wait_log(&v, "refused: TLS handshake failed", 2000));
    struct central_client *c = cf_client(v.port_text, "north", NULL, 1);
    json_t *r = echo(c, "after junk");
    expect_status(r, "ok");
    json_decref(r);
    central_client_close(c);
    cf_srv_stop(&v);
}

static void test_frames(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ 0 }, handler, NULL);
    struct raw r;
    /* oversized: answered, then closed */
    raw_open(&r, v.port_text, "north");
    raw_send(&r, "\x00\x01\x00\x01", 4);
    json_t *o = raw_read(&r, CENTRAL_FRAME_OK);
    expect_status(o, "bad_request");
    assert_true(json_is_null(json_object_get(o, "request_id")));
    assert_non_null(strstr(json_string_value(json_object_get(o, "message")), "65537"));
    json_decref(o);
    o = raw_read(&r, CENTRAL_FRAME_CLOSED);
    raw_close(&r);
    assert_true(cf_wait_log(&v, "out of step after an oversized frame", 2000));

    /* malformed JSON and bad envelopes: answered, the connection stays */
    raw_open(&r, v.port_text, "north");
    raw_send(&r, "\x00\x00\x00\x0f{\"pin\":\"S3CR3T", 19);
    o = raw_read(&r, CENTRAL_FRAME_OK);
    expect_status(o, "bad_request");
    assert_null(strstr(json_string_value(json_object_get(o, "message")), "S3CR3T"));
    json_decref(o);
    char err[256];
    json_t *req = json_pack("{s:s, s:s}", "op", "echo", "request_id", "x y");
    assert_int_equal(central_frame_write(&r.conn.io, req, err, sizeof err), 0);
    json_decref(req);
    o = raw_read(&r, CENTRAL_FRAME_OK);
    expect_status(o, "bad_request");
    assert_true(json_is_null(json_object_get(o, "request_id")));
    json_decref(o);
    req = json_pack("{s:s, s:s}", "request_id", "id-7", "echo", "no op");
    assert_int_equal(central_frame_write(&r.conn.io, req, err, sizeof err), 0);
    json_decref(req);
    o = raw_read(&r, CENTRAL_FRAME_OK);
    expect_status(o, "bad_request");
    assert_string_equal(json_string_value(json_object_get(o, "request_id")), "id-7");
    json_decref(o);
    /* handler failures */
    static const char *const ops[] = { "fail", "big" };
    for (size_t i = 0; i < 2; i++) {
        req = json_pack("{s:s, s:s, s:s}", "op", ops[i], "request_id", ops[i], "secret",
                        "S3CR3T");
        assert_int_equal(central_frame_write(&r.conn.io, req, err, sizeof err), 0);
        json_decref(req);
        o = raw_read(&r, CENTRAL_FRAME_OK);
        expect_status(o, "internal");
        assert_string_equal(json_string_value(json_object_get(o, "request_id")), ops[i]);
        json_decref(o);
    }
    /* and the connection still serves */
    req = json_pack("{s:s, s:s}", "op", "echo", "request_id", "fine");
    assert_int_equal(central_frame_write(&r.conn.io, req, err, sizeof err), 0);
    json_decref(req);
    o = raw_read(&r, CENTRAL_FRAME_OK);
    expect_status(o, "ok");
    json_decref(o);
    raw_close(&r);
    assert_true(cf_wait_log(&v, "request_id=fine status=ok", 2000));
    assert_true(cf_log_has(&v, "op=fail request_id=fail status=internal"));
    assert_true(cf_log_has(&v, "request_id=big response not sent"));
    assert_true(cf_log_has(&v, "op=big request_id=big status=internal"));
    assert_false(cf_log_has(&v, "S3CR3T"));
    cf_srv_stop(&v);
}

static void test_slow_clients(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .handshake_ms = 1500, .idle_ms = 1500 }, handler, NULL);
    long long start = net_now_ms();
    int silent[4];
    for (int i = 0; i < 4; i++)
        silent[i] = tcp_to(v.port_text);
    int half = tcp_to(v.port_text); /* half a ClientHello record */
    assert_int_equal(send(half, "\x16\x03\x01\x00\x80\x01", 6, MSG_NOSIGNAL), 6);
    struct raw partial;            /* two bytes of a frame header */
    raw_open(&partial, v.port_text, "south");
    raw_send(&partial, "\x00\x00", 2);

    long long t0 = net_now_ms();
    struct central_client *c = cf_client(v.port_text, "north", NULL, 1);
    json_t *r = echo(c, "not delayed");
    long long took = net_now_ms() - t0;
    json_decref(r);
    central_client_close(c);
    print_message("good client with 6 slow ones: %lld ms\n", took);
    assert_true(took < 1000);

    /* the slow ones are dropped after their timeouts, not before */
    for (int i = 0; i < 4; i++) {
        long ms = closed_after(silent[i], 6000);
        assert_true(ms >= 0);
        close(silent[i]);
    }
    assert_true(closed_after(half, 6000) >= 0);
    close(half);
    long long waited = net_now_ms() - start;
    assert_true(waited >= 1500);
    raw_read(&partial, CENTRAL_FRAME_CLOSED); /* close_notify from the server */
    raw_close(&partial);
    assert_true(cf_wait_log(&v, "refused: timeout during the handshake", 2000));
    assert_true(cf_wait_log(&v, "branch=south closed after 0 requests: timeout while reading a "
                         "frame header", 2000));
    cf_srv_stop(&v);
}

static void test_max_conns(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .max_conns = 2 }, handler, NULL);
    int a = tcp_to(v.port_text), b = tcp_to(v.port_text);
    cf_sleep_ms(100);
    int x = tcp_to(v.port_text);
    long ms = closed_after(x, 3000);
    assert_true(ms >= 0 && ms < 2000);
    close(x);
    assert_true(cf_wait_log(&v, "refused: 2 connections open, the maximum", 2000));
    close(a);
    close(b);
    struct central_client *c = cf_client(v.port_text, "north", NULL, 0); /* retries */
    json_t *r = echo(c, "a slot again");
    json_decref(r);
    central_client_close(c);
    cf_srv_stop(&v);
}

struct worker {
    const char *port, *branch;
    int index, ok;
};

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    char err[512];
    struct central_client *c = NULL;
    char crt[128], key[128];
    snprintf(crt, sizeof crt, "%s/%s.crt", cf_dir, w->branch);
    snprintf(key, sizeof key, "%s/%s.key", cf_dir, w->branch);
    struct central_client_config cfg = { .host = "127.0.0.1", .port = w->port,
                                         .ca_cert = cf_path("ca.crt"), .cert = crt, .key = key };
    if (central_client_open(&cfg, &c, err, sizeof err) != 0)
        return NULL;
    for (int i = 0; i < 25; i++) {
        char text[32];
        snprintf(text, sizeof text, "w%d-r%d", w->index, i);
        json_t *req = json_pack("{s:s, s:s}", "op", "echo", "echo", text);
        json_t *resp = NULL;
        if (central_call(c, req, &resp, err, sizeof err) == 0 &&
            strcmp(json_string_value(json_object_get(resp, "echo")), text) == 0 &&
            strcmp(json_string_value(json_object_get(resp, "branch")), w->branch) == 0)
            w->ok++;
        json_decref(resp);
        json_decref(req);
    }
    central_client_close(c);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ .crl = cf_path("crl.pem") }, handler, NULL);
    enum { N = 16 };
    struct worker w[N];
    pthread_t t[N];
    long long t0 = net_now_ms();
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){ v.port_text, i % 2 ? "south" : "north", i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker_thread, &w[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        total += w[i].ok;
    }
    print_message("%d requests from %d clients in %lld ms\n", total, N, net_now_ms() - t0);
    assert_int_equal(total, N * 25);
    cf_srv_stop(&v);
}

/* ---- a proxy that drops the first response ------------------------------------------------ */

struct proxy {
    int lfd, stop[2];
    const char *to;
    unsigned port;
    char port_text[8];
    int conns, dropped;
    pthread_t thread;
};

static void proxy_pump(struct proxy *p, int a)
{
    char err[256];
    int b = net_connect("127.0.0.1", p->to, 5000, "server", err, sizeof err);
    if (b < 0)
        return;
    for (;;) {
        struct pollfd f[3] = { { a, POLLIN, 0 }, { b, POLLIN, 0 }, { p->stop[0], POLLIN, 0 } };
        if (poll(f, 3, -1) < 0 || f[2].revents != 0)
            break;
        char buf[16384];
        if (f[1].revents != 0 && atomic_exchange(&proxy_drop, false)) {
            p->dropped++; /* the server's answer is lost with the link */
            break;
        }
        int from = f[0].revents != 0 ? a : b, to = from == a ? b : a;
        ssize_t n = recv(from, buf, sizeof buf, 0);
        if (n <= 0 || send(to, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    }
    close(b);
}

static void *proxy_thread(void *arg)
{
    struct proxy *p = arg;
    for (;;) {
        struct pollfd f[2] = { { p->lfd, POLLIN, 0 }, { p->stop[0], POLLIN, 0 } };
        if (poll(f, 2, -1) < 0 || f[1].revents != 0)
            return NULL;
        int a = accept(p->lfd, NULL, NULL);
        if (a < 0)
            continue;
        p->conns++;
        proxy_pump(p, a);
        close(a);
    }
}

static void test_retry_same_id(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ 0 }, handler, NULL);
    struct proxy p = { .to = v.port_text };
    char err[256];
    assert_int_equal(net_listen("127.0.0.1", "0", &p.lfd, 1, &p.port, err, sizeof err), 1);
    snprintf(p.port_text, sizeof p.port_text, "%u", p.port);
    assert_int_equal(pipe(p.stop), 0);
    atomic_store(&proxy_drop, false);
    assert_int_equal(pthread_create(&p.thread, NULL, proxy_thread, &p), 0);

    struct central_client *c = cf_client(p.port_text, "north", "127.0.0.1", 3);
    json_t *req = json_pack("{s:s}", "op", "once");
    json_t *resp = NULL;
    assert_int_equal(central_call(c, req, &resp, err, sizeof err), 0);
    const char *id = json_string_value(json_object_get(req, "request_id"));
    assert_string_equal(json_string_value(json_object_get(resp, "request_id")), id);
    /* the server saw the same request twice and answered the second time */
    assert_int_equal(json_integer_value(json_object_get(resp, "calls")), 2);
    assert_int_equal(p.dropped, 1);
    assert_int_equal(p.conns, 2);
    char line[128];
    snprintf(line, sizeof line, "op=once request_id=%s status=ok", id);
    assert_true(cf_wait_log(&v, line, 2000));
    json_decref(resp);
    json_decref(req);
    central_client_close(c);
    assert_int_equal(write(p.stop[1], "s", 1), 1);
    pthread_join(p.thread, NULL);
    close(p.lfd);
    close(p.stop[0]);
    close(p.stop[1]);
    cf_srv_stop(&v);
}

static void test_retry_bounded(void **state)
{
    (void)state;
    /* a port nobody listens on */
    int fd;
    unsigned port;
    char err[512], port_text[8];
    assert_int_equal(net_listen("127.0.0.1", "0", &fd, 1, &port, err, sizeof err), 1);
    close(fd);
    snprintf(port_text, sizeof port_text, "%u", port);
    struct central_client *c = cf_client(port_text, "north", NULL, 3);
    json_t *req = json_pack("{s:s}", "op", "echo");
    json_t *resp = NULL;
    long long t0 = net_now_ms();
    assert_int_equal(central_call(c, req, &resp, err, sizeof err), CENTRAL_CALL_E_UNREACHABLE);
    long long took = net_now_ms() - t0;
    assert_null(resp);
    assert_non_null(strstr(err, "after 3 attempts"));
    assert_non_null(strstr(err, json_string_value(json_object_get(req, "request_id"))));
    assert_true(took >= 150 && took < 5000); /* pauses of 50 and 100 ms */
    json_decref(req);
    central_client_close(c);
}

static void test_stop_finishes_requests(void **state)
{
    (void)state;
    struct cf_srv v;
    cf_srv_start(&v, (struct central_server_config){ 0 }, handler, NULL);
    struct raw r;
    raw_open(&r, v.port_text, "north");
    char err[256];
    json_t *req = json_pack("{s:s, s:s, s:i}", "op", "sleep", "request_id", "slow", "ms", 500);
    assert_int_equal(central_frame_write(&r.conn.io, req, err, sizeof err), 0);
    json_decref(req);
    assert_true(cf_wait_log(&v, "branch=north connected", 2000));
    cf_sleep_ms(100);
    int idle = tcp_to(v.port_text); /* an open handshake, ended by the stop */
    cf_sleep_ms(50);
    long long t0 = net_now_ms();
    cf_srv_stop(&v); /* joins every connection thread */
    long long took = net_now_ms() - t0;
    assert_true(took < 3000);
    json_t *o = raw_read(&r, CENTRAL_FRAME_OK); /* the request under way was answered */
    expect_status(o, "ok");
    json_decref(o);
    raw_close(&r);
    assert_true(closed_after(idle, 1000) >= 0);
    close(idle);
}

/* central_server_run in a child process: it serves until SIGTERM, then stops cleanly. */
static void test_run_until_signal(void **state)
{
    (void)state;
    struct cf_srv v; /* only its log */
    memset(&v, 0, sizeof v);
    snprintf(v.log_path, sizeof v.log_path, "%s/run.log", cf_dir);
    FILE *log = fopen(v.log_path, "w");
    assert_non_null(log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct central_server_config cfg = {
            .host = "127.0.0.1", .port = "0", .ca_cert = cf_path("ca.crt"),
            .cert = cf_path("srv.crt"), .key = cf_path("srv.key"), .crl = cf_path("crl.pem"),
            .log = log,
        };
        _exit(central_server_run(&cfg, handler, NULL) == 0 ? 0 : 1);
    }
    fclose(log);
    assert_true(cf_wait_log(&v, "listening on 127.0.0.1:", 5000));
    uint8_t *text;
    size_t n;
    char err[256], port[8] = "";
    assert_int_equal(readfile_load(v.log_path, "log", 1 << 20, false, &text, &n, err,
                                   sizeof err), 0);
    const char *at = strstr((char *)text, "listening on 127.0.0.1:");
    sscanf(at + strlen("listening on 127.0.0.1:"), "%7[0-9]", port);
    readfile_free(text, n);
    struct central_client *c = cf_client(port, "north", NULL, 1);
    json_t *r = echo(c, "signal");
    json_decref(r);
    central_client_close(c);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = -1;
    long long end = net_now_ms() + 5000;
    while (waitpid(pid, &status, WNOHANG) == 0 && net_now_ms() < end)
        cf_sleep_ms(20);
    if (!WIFEXITED(status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("central_server_run did not stop on SIGTERM");
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(cf_log_has(&v, "central: SIGTERM received"));
    assert_true(cf_log_has(&v, "central: stopped"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_auth),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_revoked_without_restart),
        cmocka_unit_test(test_plain_tcp),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_retry_same_id),
        cmocka_unit_test(test_retry_bounded),
        cmocka_unit_test(test_stop_finishes_requests),
        cmocka_unit_test(test_run_until_signal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

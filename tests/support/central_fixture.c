/* See central_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "central_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crl.h"
#include "net.h"
#include "readfile.h"

char cf_dir[64];

const char *cf_path(const char *name)
{
    static char paths[32][128];
    static unsigned next;
    char *p = paths[next++ % 32];
    snprintf(p, sizeof paths[0], "%s/%s", cf_dir, name);
    return p;
}

int cf_setup(void)
{
    snprintf(cf_dir, sizeof cf_dir, "/tmp/icdup-central-XXXXXX");
    return mkdtemp(cf_dir) != NULL ? 0 : -1;
}

int cf_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cf_dir);
    return system(cmd) == 0 ? 0 : -1;
}

void cf_make(enum central_cert_kind kind, const char *ca, const char *name, const char *hosts,
             const char *out)
{
    char crt[128], key[128], cak[128], cac[128], err[512];
    snprintf(crt, sizeof crt, "%s/%s.crt", cf_dir, out);
    snprintf(key, sizeof key, "%s/%s.key", cf_dir, out);
    snprintf(cac, sizeof cac, "%s/%s.crt", cf_dir, ca != NULL ? ca : "-");
    snprintf(cak, sizeof cak, "%s/%s.key", cf_dir, ca != NULL ? ca : "-");
    struct central_cert_req r = { .kind = kind, .name = name, .hosts = hosts,
                                  .ca_cert = cac, .ca_key = cak, .out_cert = crt,
                                  .out_key = key };
    if (central_cert_make(&r, NULL, err, sizeof err) != 0)
        fail_msg("make %s: %s", out, err);
}

void cf_make_ca_and_server(void)
{
    cf_make(CENTRAL_CERT_CA, NULL, "test CA", NULL, "ca");
    cf_make(CENTRAL_CERT_SERVER, "ca", "central", "127.0.0.1,localhost", "srv");
    struct central_crl_req r = { .ca_cert = cf_path("ca.crt"), .ca_key = cf_path("ca.key"),
                                 .crl = cf_path("crl.pem") };
    char err[512];
    if (central_crl_update(&r, NULL, err, sizeof err) != 0)
        fail_msg("crl: %s", err);
}

static void *cf_serve_thread(void *arg)
{
    struct cf_srv *v = arg;
    v->rc = central_server_serve(v->s, v->handler, v->ctx);
    return NULL;
}

void cf_srv_start(struct cf_srv *v, struct central_server_config cfg, central_handler_fn handler,
                  void *ctx)
{
    static unsigned n;
    memset(v, 0, sizeof *v);
    v->handler = handler;
    v->ctx = ctx;
    snprintf(v->log_path, sizeof v->log_path, "%s/server-%u.log", cf_dir, n++);
    v->log = fopen(v->log_path, "w");
    assert_non_null(v->log);
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.log = v->log;
    if (cfg.ca_cert == NULL)
        cfg.ca_cert = cf_path("ca.crt");
    if (cfg.cert == NULL) {
        cfg.cert = cf_path("srv.crt");
        cfg.key = cf_path("srv.key");
    }
    char err[512];
    if (central_server_open(&cfg, &v->s, err, sizeof err) != 0)
        fail_msg("central_server_open: %s", err);
    v->port = central_server_port(v->s);
    assert_true(v->port > 0);
    snprintf(v->port_text, sizeof v->port_text, "%u", v->port);
    assert_int_equal(pthread_create(&v->thread, NULL, cf_serve_thread, v), 0);
}

void cf_srv_stop(struct cf_srv *v)
{
    central_server_stop(v->s);
    pthread_join(v->thread, NULL);
    assert_int_equal(v->rc, 0);
    central_server_close(v->s);
    fclose(v->log);
}

bool cf_log_has(const struct cf_srv *v, const char *text)
{
    uint8_t *b;
    size_t n;
    char err[256];
    if (readfile_load(v->log_path, "log", 1 << 22, false, &b, &n, err, sizeof err) != 0)
        return false;
    bool has = strstr((char *)b, text) != NULL;
    readfile_free(b, n);
    return has;
}

bool cf_wait_log(const struct cf_srv *v, const char *text, long ms)
{
    long long end = net_now_ms() + ms;
    while (!cf_log_has(v, text)) {
        if (net_now_ms() > end)
            return false;
        cf_sleep_ms(20);
    }
    return true;
}

struct central_client *cf_client(const char *port, const char *branch, const char *name,
                                 unsigned attempts)
{
    char crt[128], key[128], err[512];
    snprintf(crt, sizeof crt, "%s/%s.crt", cf_dir, branch != NULL ? branch : "");
    snprintf(key, sizeof key, "%s/%s.key", cf_dir, branch != NULL ? branch : "");
    struct central_client_config cfg = {
        .host = "127.0.0.1", .port = port, .ca_cert = cf_path("ca.crt"),
        .cert = branch != NULL ? crt : NULL, .key = branch != NULL ? key : NULL,
        .server_name = name, .attempts = attempts, .backoff_ms = 50,
        .connect_ms = 5000, .call_ms = 10000,
    };
    struct central_client *c;
    if (central_client_open(&cfg, &c, err, sizeof err) != 0)
        fail_msg("central_client_open: %s", err);
    return c;
}

void cf_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

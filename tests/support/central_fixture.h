/* What the tests of the central issuance system share: certificates made once into a temporary
 * directory (certs.c), a server in a thread of the test on 127.0.0.1 with a free port, and
 * clients with a branch certificate of that directory. Failures end the test (cmocka); include
 * after <cmocka.h>. */
#ifndef CENTRAL_FIXTURE_H
#define CENTRAL_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "certs.h"
#include "client.h"
#include "server.h"

extern char cf_dir[64]; /* the temporary directory */

/* cf_dir/name (a ring of 32 buffers: valid for the next 31 calls). */
const char *cf_path(const char *name);

/* Makes cf_dir. Returns 0 or -1. cf_teardown removes it with everything in it. */
int cf_setup(void);
int cf_teardown(void);

/* Makes cf_dir/out.crt and out.key of kind, signed by cf_dir/ca.crt/.key (ca NULL: a CA). */
void cf_make(enum central_cert_kind kind, const char *ca, const char *name, const char *hosts,
             const char *out);

/* The usual set: CA "ca", server "srv" for 127.0.0.1 and localhost, and an empty CRL of the CA
 * in crl.pem. */
void cf_make_ca_and_server(void);

struct cf_srv {
    struct central_server *s;
    pthread_t thread;
    central_handler_fn handler;
    void *ctx;
    int rc;
    FILE *log;
    char log_path[128];
    unsigned port;
    char port_text[8];
};

/* Starts a server with cfg on 127.0.0.1, a free port, its log in a file of cf_dir; unset
 * certificate files default to srv.crt/srv.key and ca.crt. */
void cf_srv_start(struct cf_srv *v, struct central_server_config cfg, central_handler_fn handler,
                  void *ctx);
void cf_srv_stop(struct cf_srv *v);

/* True when the server's log holds text; cf_wait_log waits up to ms for it. */
bool cf_log_has(const struct cf_srv *v, const char *text);
bool cf_wait_log(const struct cf_srv *v, const char *text, long ms);

/* A client of branch (cf_dir/branch.crt/.key; NULL: no certificate) for port, expecting the
 * server name name (NULL: the address), with attempts sends per call (0: the default). */
struct central_client *cf_client(const char *port, const char *branch, const char *name,
                                 unsigned attempts);

void cf_sleep_ms(long ms);

#endif

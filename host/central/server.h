/* The central issuance server (docs/central.md "Server"): listens on HOST:PORT, lets in
 * branches with a certificate of its CA (TLS 1.2, tls.h), and answers their requests (frames
 * of proto.h) through a handler. One thread per connection up to a maximum; a handshake and
 * every request must arrive within time limits, so a slow or silent client only holds its own
 * thread. One line per connection and per request goes to the log: time, connection, branch,
 * op, request_id, status — never a request's or response's contents. */
#ifndef CENTRAL_SERVER_H
#define CENTRAL_SERVER_H

#include <stdio.h>

#include <jansson.h>

#define CENTRAL_MAX_CONNS 64u        /* default connections at once */
#define CENTRAL_MAX_CONNS_LIMIT 4096u
#define CENTRAL_HANDSHAKE_MS 10000u  /* default time for a TLS handshake */
#define CENTRAL_IDLE_MS 30000u       /* default time for a whole request to arrive */

/* Answers one request of the branch (the CN of its verified certificate, never a field of the
 * request). The request has passed central_request_check (proto.h): "op" and "request_id" are
 * valid. Returns 0 with *response a new JSON object that the server takes over, holding
 * "status" (a status string of proto.h), "message" (optional) and the op's fields; the server
 * sets "request_id". A string "log" in the response is for the server's log alone (why a
 * request failed, in words the branch need not see: the database's address and message): the
 * server writes it on the request's log line and takes it out before sending. Any other
 * return, or a response that is not such an object, is answered "internal" and logged.
 *
 * The handler runs in the connection's thread: several calls run at once, for the same branch
 * too, and it must be thread-safe. It should not block for long: the branch waits for it (the
 * client's timeout), and stopping the server waits for every call under way. */
typedef int (*central_handler_fn)(void *ctx, const char *branch, const json_t *request,
                                  json_t **response);

struct central_server_config {
    const char *host;       /* listen address (getaddrinfo): "127.0.0.1", "::", "localhost";
                             * NULL or "": every address */
    const char *port;       /* "7443"; "0": a free port (central_server_port) */
    const char *ca_cert;    /* the CA of the branch certificates (PEM) */
    const char *cert;       /* the server's certificate (serverAuth, of the same CA) */
    const char *key;        /* and its key (PEM, mode 0600) */
    const char *crl;        /* the CA's CRL (PEM), read again when the file changes; NULL:
                             * none (then no certificate can be revoked) */
    unsigned max_conns;     /* connections at once; 0: CENTRAL_MAX_CONNS */
    unsigned handshake_ms;  /* 0: CENTRAL_HANDSHAKE_MS */
    unsigned idle_ms;       /* time for each whole request after the previous response (or the
                             * handshake), and for each response to go out; 0: CENTRAL_IDLE_MS */
    FILE *log;              /* NULL: stderr */
};

struct central_server;

/* Loads and checks the certificates, key and CRL, and starts listening. Returns 0 with *out,
 * or -1 with a message in err. */
int central_server_open(const struct central_server_config *cfg, struct central_server **out,
                        char *err, size_t errlen);

/* The port the server listens on (the one picked for port "0"). */
unsigned central_server_port(const struct central_server *s);

/* Accepts and serves connections until central_server_stop, then stops listening, ends every
 * connection (a request under way is answered first) and joins its thread. Returns 0, or -1
 * when listening failed (logged). */
int central_server_serve(struct central_server *s, central_handler_fn handler, void *ctx);

/* Makes central_server_serve return. Async-signal-safe, callable from any thread, any time
 * between open and close. */
void central_server_stop(struct central_server *s);

/* Frees the server; after central_server_serve returned, or instead of it. */
void central_server_close(struct central_server *s);

/* central_server_serve until SIGINT or SIGTERM, which are blocked in every thread of the server
 * (and in any thread the caller starts meanwhile, e.g. from the handler's context: block them
 * there first) and taken by a thread of its own. Returns 0 after a stop by signal or
 * central_server_stop, -1 when serving failed. The caller still closes s. */
int central_server_serve_until_signal(struct central_server *s, central_handler_fn handler,
                                      void *ctx);

/* open, then serve until SIGINT or SIGTERM (blocked in every thread of the server and taken
 * by a thread of its own), then close. Errors go to the log. Returns 0 after a stop by signal,
 * -1 when the server could not start. */
int central_server_run(const struct central_server_config *cfg, central_handler_fn handler,
                       void *ctx);

#endif

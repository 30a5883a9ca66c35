/* A branch's connection to the central issuance server (docs/central.md "Client"): TLS with
 * the branch certificate (tls.h), requests and responses as frames (proto.h). A dropped or
 * timed-out link is reconnected and the same request — the same request_id — sent again, a
 * bounded number of times with a growing pause, so the server can answer a repeated request
 * from its first result. One client is used by one thread at a time. */
#ifndef CENTRAL_CLIENT_H
#define CENTRAL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#define CENTRAL_CONNECT_MS 10000u  /* default time for TCP connect plus TLS handshake */
#define CENTRAL_CALL_MS 30000u     /* default time for a request to go out and its answer in */
#define CENTRAL_ATTEMPTS 4u        /* default sends of one request (1 + 3 retries) */
#define CENTRAL_BACKOFF_MS 200u    /* default pause before the first retry, doubled each time */
#define CENTRAL_BACKOFF_MAX_MS 5000u

struct central_client_config {
    const char *host;         /* the central's host name or address */
    const char *port;
    const char *ca_cert;      /* the CA of the server's certificate (PEM) */
    const char *cert;         /* the branch's certificate and key (PEM; key mode 0600); NULL */
    const char *key;          /*   for none, which the server refuses (diagnostics, tests) */
    const char *server_name;  /* the name the server certificate must carry; NULL: host */
    unsigned connect_ms;      /* 0: CENTRAL_CONNECT_MS */
    unsigned call_ms;         /* 0: CENTRAL_CALL_MS */
    unsigned attempts;        /* 0: CENTRAL_ATTEMPTS; 1: no retry */
    unsigned backoff_ms;      /* 0: CENTRAL_BACKOFF_MS */
};

/* What central_call and central_client_connect return. */
enum central_call_err {
    CENTRAL_CALL_OK = 0,
    CENTRAL_CALL_E_UNREACHABLE = -1, /* no answer after every attempt (connect, drop, timeout) */
    CENTRAL_CALL_E_REFUSED = -2,     /* TLS: the server's certificate was refused, or the
                                      * server refused this branch; never retried */
    CENTRAL_CALL_E_PROTOCOL = -3,    /* a bad request (envelope, too large) or a bad answer */
    CENTRAL_CALL_E_LOCAL = -4,       /* out of memory, no randomness */
};

struct central_client;

/* Loads and checks the certificates and key; does not connect yet. Returns 0 with *out, or -1
 * with a message in err. */
int central_client_open(const struct central_client_config *cfg, struct central_client **out,
                        char *err, size_t errlen);

/* Connects now, when not connected (central_call does it when needed). Returns
 * CENTRAL_CALL_OK or an error of enum central_call_err with a message in err (one attempt). */
int central_client_connect(struct central_client *c, char *err, size_t errlen);

/* Sends request and waits for its response. A request without "request_id" gets a new random
 * one (32 hex digits), set in request, so the caller can log it; the envelope is checked
 * before sending. Returns CENTRAL_CALL_OK with *response (a new object whose "request_id" is
 * the request's, and whose "status" — "ok" or an error code — the caller reads), or an error of
 * enum central_call_err with *response NULL and a message in err. */
int central_call(struct central_client *c, json_t *request, json_t **response, char *err,
                 size_t errlen);

/* Closes the connection (close_notify) and frees the client. NULL is fine. */
void central_client_close(struct central_client *c);

#endif

/* A branch's client of the central issuance server (client.h). */
#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"
#include "proto.h"
#include "tls.h"

struct central_client {
    struct central_tls tls;
    char host[256], port[16], name[256];
    char where[NET_NAME_MAX + 16]; /* "the central at HOST:PORT" */
    unsigned connect_ms, call_ms, attempts, backoff_ms;
    bool connected;
    struct central_conn conn;
};

int central_client_open(const struct central_client_config *cfg, struct central_client **out,
                        char *err, size_t errlen)
{
    const char *name = cfg->server_name != NULL ? cfg->server_name : cfg->host;
    if (cfg->host == NULL || cfg->port == NULL || strlen(cfg->host) >= 256 ||
        strlen(cfg->port) >= 16 || name == NULL || strlen(name) >= 256) {
        snprintf(err, errlen, "the central's host and port are needed");
        return -1;
    }
    struct central_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct central_tls_files f = { cfg->ca_cert, cfg->cert, cfg->key, NULL };
    if (central_tls_init(&c->tls, false, &f, err, errlen) != 0) {
        free(c);
        return -1;
    }
    snprintf(c->host, sizeof c->host, "%s", cfg->host);
    snprintf(c->port, sizeof c->port, "%s", cfg->port);
    snprintf(c->name, sizeof c->name, "%s", name);
    char hp[NET_NAME_MAX];
    net_host_port(c->host, c->port, hp, sizeof hp);
    snprintf(c->where, sizeof c->where, "the central at %s", hp);
    c->connect_ms = cfg->connect_ms != 0 ? cfg->connect_ms : CENTRAL_CONNECT_MS;
    c->call_ms = cfg->call_ms != 0 ? cfg->call_ms : CENTRAL_CALL_MS;
    c->attempts = cfg->attempts != 0 ? cfg->attempts : CENTRAL_ATTEMPTS;
    c->backoff_ms = cfg->backoff_ms != 0 ? cfg->backoff_ms : CENTRAL_BACKOFF_MS;
    *out = c;
    return 0;
}

int central_client_connect(struct central_client *c, char *err, size_t errlen)
{
    if (c->connected)
        return CENTRAL_CALL_OK;
    long long deadline = net_now_ms() + c->connect_ms;
    int fd = net_connect(c->host, c->port, (int)c->connect_ms, c->where, err, errlen);
    if (fd < 0)
        return CENTRAL_CALL_E_UNREACHABLE;
    if (central_conn_open(&c->conn, &c->tls, fd, c->name, -1, err, errlen) != 0)
        return CENTRAL_CALL_E_LOCAL;
    char why[700];
    int rc = central_conn_handshake(&c->conn, deadline, why, sizeof why);
    if (rc != CENTRAL_TLS_OK) {
        central_conn_close(&c->conn, CENTRAL_CLOSE_NOW);
        snprintf(err, errlen, "%s: %s", c->where, why);
        return rc == CENTRAL_TLS_E_IO ? CENTRAL_CALL_E_UNREACHABLE : CENTRAL_CALL_E_REFUSED;
    }
    c->connected = true;
    return CENTRAL_CALL_OK;
}

static void drop(struct central_client *c)
{
    if (c->connected)
        central_conn_close(&c->conn, CENTRAL_CLOSE_NOW);
    c->connected = false;
}

/* One attempt: (re)connect, send, receive, check. */
static int exchange(struct central_client *c, const json_t *request, const char *id,
                    json_t **response, char *err, size_t errlen)
{
    int rc = central_client_connect(c, err, errlen);
    if (rc != CENTRAL_CALL_OK)
        return rc;
    char why[300];
    c->conn.deadline = net_now_ms() + c->call_ms;
    int fr = central_frame_write(&c->conn.io, request, why, sizeof why);
    if (fr == CENTRAL_FRAME_TOO_BIG || fr == CENTRAL_FRAME_NOMEM) {
        snprintf(err, errlen, "request %s not sent: %s", id, why);
        return fr == CENTRAL_FRAME_TOO_BIG ? CENTRAL_CALL_E_PROTOCOL : CENTRAL_CALL_E_LOCAL;
    }
    json_t *resp = NULL;
    if (fr == CENTRAL_FRAME_OK)
        fr = central_frame_read(&c->conn.io, &resp, NULL, why, sizeof why);
    if (fr == CENTRAL_FRAME_IO || fr == CENTRAL_FRAME_CLOSED) {
        drop(c);
        snprintf(err, errlen, "%s", why);
        return CENTRAL_CALL_E_UNREACHABLE;
    }
    enum central_status st;
    if (fr != CENTRAL_FRAME_OK || central_response_check(resp, id, &st, why, sizeof why) != 0) {
        json_decref(resp);
        drop(c); /* the stream cannot be trusted to be in step */
        snprintf(err, errlen, "%s sent a bad answer: %s", c->where, why);
        return CENTRAL_CALL_E_PROTOCOL;
    }
    *response = resp;
    return CENTRAL_CALL_OK;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int central_call(struct central_client *c, json_t *request, json_t **response, char *err,
                 size_t errlen)
{
    *response = NULL;
    char id[CENTRAL_REQUEST_ID_NEW + 1], why[700];
    if (json_is_object(request) && json_object_get(request, "request_id") == NULL) {
        if (central_request_id_new(mbedtls_ctr_drbg_random, &c->tls.drbg, id) != 0 ||
            json_object_set_new(request, "request_id", json_string(id)) != 0) {
            snprintf(err, errlen, "cannot make a request id");
            return CENTRAL_CALL_E_LOCAL;
        }
    }
    if (central_request_check(request, why, sizeof why) != 0) {
        snprintf(err, errlen, "bad request: %s", why);
        return CENTRAL_CALL_E_PROTOCOL;
    }
    const char *rid = central_request_id(request);
    unsigned pause = c->backoff_ms;
    for (unsigned attempt = 1;; attempt++) {
        int rc = exchange(c, request, rid, response, why, sizeof why);
        if (rc != CENTRAL_CALL_E_UNREACHABLE) {
            if (rc != CENTRAL_CALL_OK)
                snprintf(err, errlen, "%s", why);
            return rc;
        }
        if (attempt >= c->attempts) {
            snprintf(err, errlen, "no answer from %s to request %s after %u attempt%s: %s",
                     c->where, rid, attempt, attempt == 1 ? "" : "s", why);
            return CENTRAL_CALL_E_UNREACHABLE;
        }
        pause_ms(pause);
        pause = pause * 2 > CENTRAL_BACKOFF_MAX_MS ? CENTRAL_BACKOFF_MAX_MS : pause * 2;
    }
}

void central_client_close(struct central_client *c)
{
    if (c == NULL)
        return;
    if (c->connected)
        central_conn_close(&c->conn, CENTRAL_CLOSE_NOTIFY);
    central_tls_free(&c->tls);
    free(c);
}

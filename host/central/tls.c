/* TLS endpoints and connections of the central issuance system (tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "net.h"
#include "readfile.h"


static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    0,
};

static void mbed_text(int ret, char *out, size_t cap)
{
    mbedtls_strerror(ret, out, cap);
}

/* ---- the shared endpoint ------------------------------------------------------------------ */

/* Checks the endpoint's own certificate: its key, its CA and its purpose. */
static int check_own(const struct central_tls *t, const struct central_tls_files *f, char *err,
                     size_t errlen)
{
    mbedtls_x509_crt ca, own;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&own);
    mbedtls_pk_init(&key);
    int rc = -1;
    uint32_t flags = 0;
    char why[200];
    static const char server_auth[] = MBEDTLS_OID_SERVER_AUTH;
    static const char client_auth[] = MBEDTLS_OID_CLIENT_AUTH;
    if (mbedtls_x509_crt_parse(&ca, t->ca, t->ca_len + 1) != 0) {
        snprintf(err, errlen, "CA certificate %.300s is not a certificate", f->ca_cert);
        goto out;
    }
    if (t->cert == NULL) {
        rc = 0;
        goto out;
    }
    if (mbedtls_x509_crt_parse(&own, t->cert, t->cert_len + 1) != 0) {
        snprintf(err, errlen, "certificate %.300s is not a certificate", f->cert);
        goto out;
    }
    if (mbedtls_pk_parse_key(&key, t->key, t->key_len + 1, NULL, 0) != 0) {
        snprintf(err, errlen, "key file %.300s is not an unencrypted private key", f->key);
        goto out;
    }
    if (mbedtls_pk_check_pair(&own.pk, &key) != 0) {
        snprintf(err, errlen, "the key in %.300s is not the key of the certificate %.300s",
                 f->key, f->cert);
        goto out;
    }
    /* The server's certificate comes from the CA of the branches (one CA, docs/central.md);
     * a branch's is checked by the server, which tells why it refuses it. */
    if (t->server && mbedtls_x509_crt_verify(&own, &ca, NULL, NULL, &flags, NULL, NULL) != 0) {
        mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
        why[strcspn(why, "\n")] = '\0';
        snprintf(err, errlen, "certificate %.300s does not verify against the CA %.300s: %s",
                 f->cert, f->ca_cert, why);
        goto out;
    }
    if (mbedtls_x509_crt_check_extended_key_usage(
            &own, t->server ? server_auth : client_auth,
            t->server ? MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)
                      : MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0) {
        snprintf(err, errlen, "certificate %.300s is not a %s certificate (extended key usage)",
                 f->cert, t->server ? "server" : "branch");
        goto out;
    }
    rc = 0;
out:
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&own);
    mbedtls_x509_crt_free(&ca);
    return rc;
}

int central_tls_init(struct central_tls *t, bool server, const struct central_tls_files *f,
                     char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->server = server;
    mbedtls_ctr_drbg_init(&t->drbg);
    if ((f->cert == NULL) != (f->key == NULL) || (server && f->cert == NULL)) {
        snprintf(err, errlen, "a certificate and its key are needed together%s",
                 server ? " (the server needs both)" : "");
        goto fail;
    }
    if (!server && f->crl != NULL) {
        snprintf(err, errlen, "a CRL is the server's");
        goto fail;
    }
    if (readfile_load(f->ca_cert, "CA certificate", CENTRAL_PEM_MAX, false, &t->ca, &t->ca_len,
                      err, errlen) != 0)
        goto fail;
    if (f->cert != NULL &&
        (readfile_load(f->cert, "certificate", CENTRAL_PEM_MAX, false, &t->cert, &t->cert_len,
                       err, errlen) != 0 ||
         readfile_load(f->key, "key file", CENTRAL_PEM_MAX, true, &t->key, &t->key_len, err,
                       errlen) != 0))
        goto fail;
    if (check_own(t, f, err, errlen) != 0 || central_drbg_seed(&t->drbg, err, errlen) != 0)
        goto fail;
    if (f->crl != NULL && central_crlwatch_open(f->crl, t->ca, t->ca_len, &t->crl, err,
                                                errlen) != 0)
        goto fail;
    return 0;
fail:
    central_tls_free(t);
    return -1;
}

void central_tls_free(struct central_tls *t)
{
    central_crlwatch_close(t->crl);
    readfile_free(t->ca, t->ca_len);
    readfile_free(t->cert, t->cert_len);
    readfile_free(t->key, t->key_len);
    mbedtls_ctr_drbg_free(&t->drbg);
    memset(t, 0, sizeof *t);
}

/* ---- the socket under TLS ----------------------------------------------------------------- */

/* Waits for events on the socket until the deadline; with watch_stop, a readable stop_fd ends
 * the wait. Returns 0 when ready, else the central_io_err. */
static int wait_fd(struct central_conn *c, short events, bool watch_stop)
{
    struct pollfd p[2] = { { .fd = c->fd, .events = events },
                           { .fd = c->stop_fd, .events = POLLIN } };
    nfds_t n = watch_stop && c->stop_fd >= 0 ? 2 : 1;
    for (;;) {
        long long left = c->deadline - net_now_ms();
        if (left <= 0)
            return CENTRAL_IO_TIMEOUT;
        int pr = poll(p, n, left > 60000 ? 60000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return CENTRAL_IO_FAIL;
        if (n == 2 && p[1].revents != 0)
            return CENTRAL_IO_FAIL;
        if (pr > 0 && p[0].revents != 0)
            return 0;
    }
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct central_conn *c = ctx;
    int w = wait_fd(c, POLLOUT, false); /* a response already made still goes out on a stop */
    if (w != 0) {
        c->last_io = w;
        return w == CENTRAL_IO_TIMEOUT ? MBEDTLS_ERR_SSL_TIMEOUT : MBEDTLS_ERR_NET_SEND_FAILED;
    }
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->last_io = CENTRAL_IO_FAIL;
            return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                         : MBEDTLS_ERR_NET_SEND_FAILED;
        }
        return (int)n;
    }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct central_conn *c = ctx;
    int w = wait_fd(c, POLLIN, true);
    if (w != 0) {
        c->last_io = w;
        return w == CENTRAL_IO_TIMEOUT ? MBEDTLS_ERR_SSL_TIMEOUT : MBEDTLS_ERR_NET_RECV_FAILED;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->last_io = CENTRAL_IO_FAIL;
            return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
        }
        if (n == 0)
            c->last_io = CENTRAL_IO_EOF;
        return (int)n;
    }
}

/* ---- frames over TLS (struct central_io) --------------------------------------------------- */

static int io_result(struct central_conn *c, int ret)
{
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF)
        return CENTRAL_IO_EOF;
    return c->last_io != CENTRAL_IO_OK ? c->last_io : CENTRAL_IO_FAIL;
}

/* Reads exactly len bytes into buf, or writes all len bytes of buf. */
static int conn_xfer(struct central_conn *c, uint8_t *buf, size_t len, bool write)
{
    c->last_io = CENTRAL_IO_OK;
    size_t off = 0;
    while (off < len) {
        int ret = write ? mbedtls_ssl_write(&c->ssl, buf + off, len - off)
                        : mbedtls_ssl_read(&c->ssl, buf + off, len - off);
        if (ret > 0)
            off += (size_t)ret;
        else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            return io_result(c, write && ret == 0 ? MBEDTLS_ERR_NET_SEND_FAILED : ret);
    }
    return 0;
}

static int conn_read(void *ctx, uint8_t *buf, size_t len)
{
    return conn_xfer(ctx, buf, len, false);
}

static int conn_write(void *ctx, const uint8_t *buf, size_t len)
{
    return conn_xfer(ctx, (uint8_t *)buf, len, true); /* mbedtls_ssl_write does not write it */
}

/* ---- verification ---------------------------------------------------------------------------- */

/* The one CN of crt, if it is a valid name, into out. Returns 0 or -1. */
static int cert_cn(const mbedtls_x509_crt *crt, char out[CENTRAL_NAME_MAX + 1])
{
    int found = 0;
    out[0] = '\0';
    for (const mbedtls_x509_name *n = &crt->subject; n != NULL; n = n->next) {
        if (n->oid.p == NULL || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        if (++found > 1 || n->val.len > CENTRAL_NAME_MAX) {
            out[0] = '\0';
            return -1;
        }
        memcpy(out, n->val.p, n->val.len);
        out[n->val.len] = '\0';
    }
    if (found == 1 && central_name_valid(out))
        return 0;
    out[0] = '\0'; /* never an unchecked name in a message */
    return -1;
}

/* True when crt names the address ip: an iPAddress of its subjectAltName, or, without that
 * extension, its CN written as the address. */
static bool names_ip(const mbedtls_x509_crt *crt, const struct central_conn *c)
{
    if ((crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) == 0) {
        for (const mbedtls_x509_name *n = &crt->subject; n != NULL; n = n->next)
            if (n->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
                n->val.len == strlen(c->expect_name) &&
                memcmp(n->val.p, c->expect_name, n->val.len) == 0)
                return true;
        return false;
    }
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next)
        if (s->buf.p != NULL && s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
            s->buf.len == c->expect_ip_len && memcmp(s->buf.p, c->expect_ip, s->buf.len) == 0)
            return true;
    return false;
}

static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct central_conn *c = ctx;
    if (depth != 0)
        return 0;
    bool server = c->server;
    if (cert_cn(crt, c->peer_cn) != 0 && server)
        *flags |= MBEDTLS_X509_BADCERT_OTHER; /* no branch name in it */
    if (!server && c->expect_ip_len > 0 && !names_ip(crt, c))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* ---- connections ---------------------------------------------------------------------------- */

static int parse_copies(struct central_conn *c, struct central_tls *t, char *err,
                        size_t errlen)
{
    if (mbedtls_x509_crt_parse(&c->ca, t->ca, t->ca_len + 1) != 0 ||
        (t->cert != NULL &&
         (mbedtls_x509_crt_parse(&c->own, t->cert, t->cert_len + 1) != 0 ||
          mbedtls_pk_parse_key(&c->key, t->key, t->key_len + 1, NULL, 0) != 0))) {
        snprintf(err, errlen, "cannot load the certificates (out of memory?)");
        return -1;
    }
    if (t->crl == NULL)
        return 0;
    uint8_t *pem;
    size_t len;
    char why[300];
    if (central_crlwatch_get(t->crl, &c->crl_version, &c->crl_reloaded, &pem, &len, why,
                             sizeof why) != 0) {
        snprintf(err, errlen, "no usable CRL, so no client is let in: %s", why);
        return -1;
    }
    int ret = mbedtls_x509_crl_parse(&c->crl, pem, len + 1);
    free(pem);
    if (ret != 0) {
        snprintf(err, errlen, "cannot load the CRL (out of memory?)");
        return -1;
    }
    c->have_crl = true;
    return 0;
}

int central_conn_open(struct central_conn *c, struct central_tls *t, int fd,
                      const char *server_name, int stop_fd, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->stop_fd = stop_fd;
    c->server = t->server;
    c->io = (struct central_io){ conn_read, conn_write, c };
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->own);
    mbedtls_pk_init(&c->key);
    mbedtls_x509_crl_init(&c->crl);
    if (!t->server) {
        if (server_name == NULL || strlen(server_name) >= sizeof c->expect_name) {
            snprintf(err, errlen, "no server name to check the server's certificate against");
            goto fail;
        }
        snprintf(c->expect_name, sizeof c->expect_name, "%s", server_name);
        if (inet_pton(AF_INET, server_name, c->expect_ip) == 1)
            c->expect_ip_len = 4;
        else if (inet_pton(AF_INET6, server_name, c->expect_ip) == 1)
            c->expect_ip_len = 16;
    }
    if (parse_copies(c, t, err, errlen) != 0)
        goto fail;
    int ret = mbedtls_ssl_config_defaults(&c->conf,
                                          t->server ? MBEDTLS_SSL_IS_SERVER
                                                    : MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret == 0) {
        mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_ciphersuites(&c->conf, suites);
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &t->drbg);
        mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, c->have_crl ? &c->crl : NULL);
        mbedtls_ssl_conf_verify(&c->conf, verify_cb, c);
        mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
        if (t->cert != NULL)
            ret = mbedtls_ssl_conf_own_cert(&c->conf, &c->own, &c->key);
    }
    if (ret == 0)
        ret = mbedtls_ssl_setup(&c->ssl, &c->conf);
    if (ret == 0 && !t->server && c->expect_ip_len == 0)
        ret = mbedtls_ssl_set_hostname(&c->ssl, server_name);
    if (ret != 0) {
        char m[160];
        mbed_text(ret, m, sizeof m);
        snprintf(err, errlen, "cannot set up TLS: %s", m);
        goto fail;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    return CENTRAL_TLS_OK;
fail:
    central_conn_close(c, CENTRAL_CLOSE_NOW);
    return CENTRAL_TLS_E_SETUP;
}

int central_conn_handshake(struct central_conn *c, long long deadline, char *err,
                           size_t errlen)
{
    c->deadline = deadline;
    c->last_io = CENTRAL_IO_OK;
    int ret;
    do
        ret = mbedtls_ssl_handshake(&c->ssl);
    while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret == 0)
        return CENTRAL_TLS_OK;
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
    bool server = c->server;
    const char *who = server ? "the client's" : "the server's";
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != 0 && flags != (uint32_t)-1) {
        char info[512];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        for (char *nl = strchr(info, '\n'); nl != NULL; nl = strchr(nl, '\n'))
            *nl = nl[1] != '\0' ? ';' : '\0';
        if ((flags & MBEDTLS_X509_BADCERT_OTHER) != 0)
            snprintf(info + strlen(info), sizeof info - strlen(info),
                     "%sno single CN of A-Z a-z 0-9 . _ - (the branch name)",
                     info[0] != '\0' ? "; " : "");
        snprintf(err, errlen, "%s certificate%s%s was refused: %s", who,
                 c->peer_cn[0] != '\0' ? " CN=" : "", c->peer_cn, info);
        return CENTRAL_TLS_E_PEER;
    }
    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
        /* mbedtls ends the handshake here without telling the client why */
        (void)mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                             MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
        snprintf(err, errlen, "the client sent no certificate");
        return CENTRAL_TLS_E_PEER;
    }
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        snprintf(err, errlen, "%s refused the handshake (TLS alert)%s",
                 server ? "the client" : "the server",
                 server ? "" : ": is this a branch certificate of the server's CA, not revoked?");
        return CENTRAL_TLS_E_PEER;
    }
    if (c->last_io != CENTRAL_IO_OK) {
        snprintf(err, errlen, "%s during the handshake",
                 c->last_io == CENTRAL_IO_TIMEOUT ? "timeout"
                 : c->last_io == CENTRAL_IO_EOF   ? "connection closed by the peer"
                                                  : "connection failed or stopped");
        return CENTRAL_TLS_E_IO;
    }
    char m[160];
    mbed_text(ret, m, sizeof m);
    snprintf(err, errlen, "TLS handshake failed: %s", m);
    return CENTRAL_TLS_E_PEER;
}

int central_conn_recheck(struct central_conn *c, struct central_tls *t, char *err,
                         size_t errlen)
{
    if (t->crl == NULL)
        return 0;
    unsigned long version;
    bool reloaded;
    uint8_t *pem = NULL;
    size_t len = 0;
    char why[300];
    int got = central_crlwatch_get(t->crl, &version, &reloaded, NULL, NULL, why, sizeof why);
    c->crl_reloaded = reloaded;
    if (got != 0) {
        snprintf(err, errlen, "no usable CRL: %s", why);
        return -1;
    }
    if (version == c->crl_version)
        return 0;
    if (central_crlwatch_get(t->crl, &version, &reloaded, &pem, &len, why, sizeof why) != 0) {
        snprintf(err, errlen, "no usable CRL: %s", why);
        return -1;
    }
    mbedtls_x509_crl crl;
    mbedtls_x509_crl_init(&crl);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&c->ssl);
    int rc = 0;
    if (mbedtls_x509_crl_parse(&crl, pem, len + 1) != 0 || peer == NULL) {
        snprintf(err, errlen, "cannot check the certificate against the changed CRL");
        rc = -1;
    } else if (mbedtls_x509_crt_is_revoked(peer, &crl)) {
        snprintf(err, errlen, "the certificate was revoked while connected");
        rc = -1;
    }
    mbedtls_x509_crl_free(&crl);
    free(pem);
    c->crl_version = version;
    return rc;
}

/* Reads and drops what the peer still sends until it closes or the deadline passes. */
static void drain(struct central_conn *c)
{
    if (shutdown(c->fd, SHUT_WR) != 0)
        return;
    unsigned char buf[4096];
    while (wait_fd(c, POLLIN, false) == 0) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
}

void central_conn_close(struct central_conn *c, int how)
{
    c->deadline = net_now_ms() + CENTRAL_CLOSE_MS;
    if ((how & CENTRAL_CLOSE_NOTIFY) != 0 && c->fd >= 0)
        (void)mbedtls_ssl_close_notify(&c->ssl);
    if ((how & CENTRAL_CLOSE_LINGER) != 0 && c->fd >= 0)
        drain(c);
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_x509_crt_free(&c->own);
    mbedtls_pk_free(&c->key);
    mbedtls_x509_crl_free(&c->crl);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

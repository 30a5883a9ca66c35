/* Mutually authenticated TLS for the central issuance system (docs/central.md "TLS"), over
 * mbedtls: TLS 1.2 only, ECDHE-ECDSA with AES-GCM, certificates required and verified on both
 * sides. The server takes the branch name from the verified client certificate's CN; the
 * client checks the server certificate against the CA and the expected host name (DNS names by
 * mbedtls, IP addresses against the certificate's iPAddress names here, which mbedtls 2.28
 * does not match).
 *
 * Threads: a struct central_tls is shared, read-only after central_tls_init, except for its
 * DRBG (mbedtls locks it: Debian's mbedtls has MBEDTLS_THREADING_C) and its CRL watcher (a
 * mutex). Each connection parses its own copies of the certificates and key from the shared
 * PEM text, because mbedtls 2.28 caches a table in an EC key's group on first use, which two
 * threads must not do at once. */
#ifndef CENTRAL_TLS_H
#define CENTRAL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "certs.h"
#include "crlwatch.h"
#include "proto.h"

struct central_tls_files {
    const char *ca_cert; /* the CA the peer's certificate must chain to (PEM) */
    const char *cert;    /* this side's certificate and key (PEM; the key mode 0600); a client */
    const char *key;     /*   may have none, and is then refused by the server */
    const char *crl;     /* server: the CA's CRL (PEM), watched for changes; NULL: none */
};

struct central_tls {
    bool server;
    uint8_t *ca, *cert, *key; /* PEM text of the files (the key wiped when freed) */
    size_t ca_len, cert_len, key_len;
    struct central_crlwatch *crl; /* server, NULL without a CRL */
    mbedtls_ctr_drbg_context drbg;
};

/* What a handshake or a connection setup returns. */
enum central_tls_err {
    CENTRAL_TLS_OK = 0,
    CENTRAL_TLS_E_IO = -1,     /* the connection failed, closed or timed out: worth a retry */
    CENTRAL_TLS_E_PEER = -2,   /* the peer's certificate was refused, or the peer refused ours
                                * or the handshake: no retry will help */
    CENTRAL_TLS_E_SETUP = -3,  /* local: out of memory, no usable CRL (the server refuses) */
};

/* Reads the files of one side and checks them: they parse, the key is the certificate's, the
 * certificate has the purpose of this side (serverAuth or clientAuth) and, for the server,
 * chains to the CA.
 * Returns 0, or -1 with a message in err (t is then freed). */
int central_tls_init(struct central_tls *t, bool server, const struct central_tls_files *f,
                     char *err, size_t errlen);

/* Frees t, wiping the key's text; after every connection of t is closed. */
void central_tls_free(struct central_tls *t);

/* One TLS connection over a connected socket. */
struct central_conn {
    bool server;
    int fd;
    int stop_fd;         /* -1, or a descriptor that becomes readable when reads must stop */
    long long deadline;  /* net_now_ms() value after which reads and writes time out */
    int last_io;         /* the central_io_err of the last failed read or write */
    struct central_io io;  /* frames over this connection (proto.h) */
    char peer_cn[CENTRAL_NAME_MAX + 1]; /* the peer certificate's CN, once verified */
    /* client: the name the server certificate must carry */
    char expect_name[256];
    uint8_t expect_ip[16];
    size_t expect_ip_len; /* 4 or 16 when expect_name is an IP address */
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca, own;
    mbedtls_pk_context key;
    mbedtls_x509_crl crl;
    bool have_crl, crl_reloaded;
    unsigned long crl_version; /* of the CRL the peer was last checked against */
};

/* Sets up a connection of t's side on fd (the connection owns it from now on, even on
 * failure). A client passes the name the server certificate must carry (a DNS name or an IP
 * address). stop_fd: see struct central_conn. Returns CENTRAL_TLS_OK, or CENTRAL_TLS_E_SETUP
 * with a message in err (the connection is then closed). */
int central_conn_open(struct central_conn *c, struct central_tls *t, int fd,
                      const char *server_name, int stop_fd, char *err, size_t errlen);

/* Runs the handshake, which must end by the deadline (net_now_ms() scale). Returns
 * CENTRAL_TLS_OK (a server has the branch name in c->peer_cn), or an error with the reason in
 * err: what the peer's certificate lacked, or the TLS error. */
int central_conn_handshake(struct central_conn *c, long long deadline, char *err,
                           size_t errlen);

/* Server, after the handshake: when the CRL file changed since the peer's certificate was last
 * checked, checks it against the new CRL (c->crl_reloaded tells that this call read the file).
 * Returns 0 when the peer may go on, or -1 with the reason in err (revoked now, or no usable
 * CRL): the connection must end. */
int central_conn_recheck(struct central_conn *c, struct central_tls *t, char *err,
                         size_t errlen);

/* How central_conn_close ends a connection. */
enum {
    CENTRAL_CLOSE_NOW = 0,    /* free and close the socket */
    CENTRAL_CLOSE_NOTIFY = 1, /* send close_notify first (bounded by CENTRAL_CLOSE_MS) */
    CENTRAL_CLOSE_LINGER = 2, /* shut the sending side and read until the peer closes, at most
                               * CENTRAL_CLOSE_MS: after a refused handshake or an answer to an
                               * oversized frame, so the peer reads the alert or answer instead
                               * of a reset for data the server never read */
};
#define CENTRAL_CLOSE_MS 1000

/* Ends the connection as how says (CENTRAL_CLOSE_* flags), frees the TLS state and closes the
 * socket. Safe on a connection that central_conn_open failed on. */
void central_conn_close(struct central_conn *c, int how);

#endif

/* The certificates of the central issuance system (docs/central.md "Certificates"): a CA that
 * signs one server certificate for the central and one client certificate per branch, all with
 * ECDSA P-256 keys made here. Private keys are written with mode 0600, every file atomically
 * (atomicfile.h), and an existing output file is never overwritten. */
#ifndef CENTRAL_CERTS_H
#define CENTRAL_CERTS_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#define CENTRAL_NAME_MAX 64u          /* characters of a CA, server or branch name */
#define CENTRAL_HOSTS_MAX 8u          /* host names and addresses of a server certificate */
#define CENTRAL_DAYS_MAX 36500u       /* longest validity, in days */
#define CENTRAL_CA_DAYS 3650u         /* default validity of a CA */
#define CENTRAL_CERT_DAYS 825u        /* default validity of a server or branch certificate */
#define CENTRAL_SERIAL_HEX_MAX 40u    /* hex digits of a serial number (20 bytes) */
#define CENTRAL_PEM_MAX (64u * 1024u) /* largest certificate or key file read */
#define CENTRAL_TIME_TEXT 24u         /* "2034-05-01 12:00:00 UTC" and its NUL */

enum central_cert_kind {
    CENTRAL_CERT_CA,     /* self-signed; basicConstraints CA:true; keyCertSign, cRLSign */
    CENTRAL_CERT_SERVER, /* serverAuth; subjectAltName: the hosts */
    CENTRAL_CERT_BRANCH, /* clientAuth; CN: the branch name */
};

struct central_cert_req {
    enum central_cert_kind kind;
    const char *name;     /* CN: CA name, server name, or branch name */
    const char *hosts;    /* server: DNS names and IP addresses, comma-separated */
    unsigned days;        /* validity from now; 0: CENTRAL_CA_DAYS or CENTRAL_CERT_DAYS */
    const char *ca_cert;  /* server, branch: the CA that signs (PEM files) */
    const char *ca_key;
    const char *out_cert; /* the new certificate (PEM, mode 0644 less the umask) */
    const char *out_key;  /* the new private key (PEM, SEC1, mode 0600) */
};

/* What was made, for the operator. */
struct central_cert_info {
    char serial[CENTRAL_SERIAL_HEX_MAX + 1]; /* upper-case hex */
    char not_after[CENTRAL_TIME_TEXT];       /* "2034-05-01 12:00:00 UTC" */
};

/* A loaded CA: its certificate and private key, checked to be a pair and a CA that may sign
 * certificates. */
struct central_ca {
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
};

/* True when name is 1..CENTRAL_NAME_MAX characters of [A-Za-z0-9._-] (branch and server names;
 * a CA name may also hold spaces). */
bool central_name_valid(const char *name);

/* Checks a server certificate's hosts: 1..CENTRAL_HOSTS_MAX DNS names or IPv4/IPv6 addresses,
 * comma-separated. Returns 0, or -1 with the reason in err. */
int central_hosts_check(const char *hosts, char *err, size_t errlen);

/* Makes a key pair and the certificate r asks for, checks the certificate against its CA, and
 * writes both files. Returns 0 with info filled in (may be NULL), or -1 with a message in err;
 * on failure no file is left behind. */
int central_cert_make(const struct central_cert_req *r, struct central_cert_info *info,
                      char *err, size_t errlen);

/* Loads the CA certificate and key files (the key file must have mode 0600 or stricter).
 * Returns 0, or -1 with a message in err (ca is then freed). Free with central_ca_free. */
int central_ca_load(const char *cert_path, const char *key_path, struct central_ca *ca,
                    char *err, size_t errlen);

/* Frees a CA loaded by central_ca_load (the key is wiped by mbedtls). */
void central_ca_free(struct central_ca *ca);

/* Seeds drbg for key generation and signatures (rng.h). Returns 0, or -1 with a message. */
int central_drbg_seed(mbedtls_ctr_drbg_context *drbg, char *err, size_t errlen);

/* A time as mbedtls writes it in certificates, "YYYYMMDDhhmmss" (UTC), for t + days. */
void central_time_string(long long t, unsigned days, char out[15]);

/* t as "2034-05-01 12:00:00 UTC". */
void central_time_text(const mbedtls_x509_time *t, char out[CENTRAL_TIME_TEXT]);

/* The serial of crt as upper-case hex into out. */
void central_serial_hex(const mbedtls_x509_crt *crt, char out[CENTRAL_SERIAL_HEX_MAX + 1]);

#endif

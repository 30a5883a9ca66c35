/* The certificate revocation list of the central's CA (docs/central.md "Revocation"): a PEM
 * X.509 v2 CRL signed by the CA, with a CRL number and the CA's key identifier. mbedtls 2.28
 * parses CRLs but has no writer: the TBSCertList is encoded here with asn1write and signed with
 * mbedtls_pk_sign. The server re-reads the file when it changes (crlwatch.h). */
#ifndef CENTRAL_CRL_H
#define CENTRAL_CRL_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "certs.h"

#define CENTRAL_CRL_DAYS 365u              /* default time to the CRL's nextUpdate */
#define CENTRAL_CRL_FILE_MAX (8u << 20)    /* largest CRL file read */
#define CENTRAL_CRL_ENTRIES_MAX 100000u    /* most serials in one list */

struct central_crl_req {
    const char *ca_cert;  /* the CA (PEM files; the key file mode 0600 or stricter) */
    const char *ca_key;
    const char *crl;      /* the CRL file: created when missing, else replaced atomically */
    const char *revoke;   /* a certificate file of this CA whose serial is added; NULL: only
                           * sign the list again with fresh dates */
    unsigned days;        /* nextUpdate = now + days; 0: CENTRAL_CRL_DAYS */
};

struct central_crl_info {
    bool created;                             /* there was no CRL file */
    bool already;                             /* the serial was in the list already */
    size_t entries;                           /* serials in the new list */
    char serial[CENTRAL_SERIAL_HEX_MAX + 1];  /* the revoked certificate's serial (hex) */
    char subject[128];                        /* and its subject ("CN=north") */
    char next_update[CENTRAL_TIME_TEXT];      /* "2026-05-01 12:00:00 UTC" */
};

/* Reads the CRL (when the file exists) and checks it is this CA's, adds the serial of
 * r->revoke (once), signs the list with thisUpdate now and a CRL number one higher, checks the
 * result parses and lists the serial, and replaces the file atomically. The CA's key file is
 * locked (flock) meanwhile, so two runs do not lose each other's serial. Returns 0 with info
 * filled in (may be NULL), or -1 with a message in err and the file unchanged. */
int central_crl_update(const struct central_crl_req *r, struct central_crl_info *info,
                       char *err, size_t errlen);

/* Checks that crl (the first of its chain) was issued and signed by ca. Returns 0, or -1 with
 * the reason in err. */
int central_crl_check(const mbedtls_x509_crl *crl, const mbedtls_x509_crt *ca, char *err,
                      size_t errlen);

#endif

/* CA, server and branch certificates with mbedtls x509write (certs.h). mbedtls 2.28 has no
 * writer for subjectAltName and extendedKeyUsage: both are encoded here with asn1write and
 * added as raw extensions. */
#include "certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509.h>

#include "atomicfile.h"
#include "readfile.h"
#include "rng.h"

#define PEM_OUT_MAX 4096u
#define EXT_MAX 4096u  /* more than CENTRAL_HOSTS_MAX names of 253 characters need */
#define SERIAL_LEN 16u /* random bytes of a serial number */

/* ---- names ------------------------------------------------------------------------------- */

static bool name_chars_ok(const char *name, bool space)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || (space && c == ' ');
        if (!ok || n >= CENTRAL_NAME_MAX)
            return false;
    }
    return n > 0 && name[0] != ' ' && name[n - 1] != ' ';
}

bool central_name_valid(const char *name)
{
    return name != NULL && name_chars_ok(name, false);
}

/* A DNS name: labels of [A-Za-z0-9-], 1..63 characters, not starting or ending with '-'. */
static bool dns_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- extensions -------------------------------------------------------------------------- */

/* Checks the comma-separated hosts and writes the subjectAltName value (GeneralNames:
 * dNSName or iPAddress per host) at the end of buf: *der points to it. Returns its length, or
 * -1 with a message. */
static int san_der(const char *hosts, unsigned char *buf, size_t cap, unsigned char **der,
                   char *err, size_t errlen)
{
    const char *items[CENTRAL_HOSTS_MAX];
    size_t lens[CENTRAL_HOSTS_MAX];
    size_t n = 0;
    if (hosts == NULL || hosts[0] == '\0') {
        snprintf(err, errlen, "a server certificate needs at least one host name or address");
        return -1;
    }
    for (const char *p = hosts;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == CENTRAL_HOSTS_MAX) {
            snprintf(err, errlen, "at most %u hosts", CENTRAL_HOSTS_MAX);
            return -1;
        }
        items[n] = p;
        lens[n++] = len;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    unsigned char *c = buf + cap;
    int total = 0, ret;
    snprintf(err, errlen, "the host list does not fit a certificate"); /* an ASN.1 failure */
    for (size_t i = n; i-- > 0;) {
        char h[256];
        unsigned char ip[16];
        if (lens[i] == 0 || lens[i] >= sizeof h) {
            snprintf(err, errlen, "host %zu of \"%.100s\" is empty or too long", i + 1, hosts);
            return -1;
        }
        memcpy(h, items[i], lens[i]);
        h[lens[i]] = '\0';
        size_t iplen = inet_pton(AF_INET, h, ip) == 1 ? 4 : inet_pton(AF_INET6, h, ip) == 1 ? 16
                                                                                             : 0;
        int len = 0;
        if (iplen > 0) {
            MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(&c, buf, ip, iplen));
            MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&c, buf, iplen));
            MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&c, buf,
                                                             MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
        } else if (dns_name_ok(h, lens[i])) {
            MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tagged_string(
                                          &c, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2, h,
                                          lens[i]));
        } else {
            snprintf(err, errlen, "\"%.100s\" is neither a host name nor an IP address", h);
            return -1;
        }
        total += len;
    }
    int len = total;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&c, buf, (size_t)total));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&c, buf, MBEDTLS_ASN1_CONSTRUCTED |
                                                                  MBEDTLS_ASN1_SEQUENCE));
    *der = c;
    return len;
}

int central_hosts_check(const char *hosts, char *err, size_t errlen)
{
    unsigned char buf[EXT_MAX], *der;
    return san_der(hosts, buf, sizeof buf, &der, err, errlen) < 0 ? -1 : 0;
}

/* extendedKeyUsage with one purpose (an OID string of oid.h) at the end of buf. */
static int eku_der(const char *oid, size_t oid_len, unsigned char *buf, size_t cap,
                   unsigned char **der)
{
    unsigned char *c = buf + cap;
    int len = 0, ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(&c, buf, oid, oid_len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&c, buf, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&c, buf, MBEDTLS_ASN1_CONSTRUCTED |
                                                                  MBEDTLS_ASN1_SEQUENCE));
    *der = c;
    return len;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void mbed_err(char *err, size_t errlen, const char *what, int ret)
{
    char m[160];
    mbedtls_strerror(ret, m, sizeof m);
    snprintf(err, errlen, "%s: %s (-0x%04X)", what, m, (unsigned)-ret);
}

int central_drbg_seed(mbedtls_ctr_drbg_context *drbg, char *err, size_t errlen)
{
    if (rng_drbg_seed(drbg, "icdup central") != 0) {
        snprintf(err, errlen, "cannot seed the random generator from the kernel");
        return -1;
    }
    return 0;
}

void central_time_string(long long t, unsigned days, char out[15])
{
    time_t when = (time_t)(t + (long long)days * 86400);
    struct tm tm;
    gmtime_r(&when, &tm);
    if (strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14)
        snprintf(out, 15, "99991231235959"); /* beyond year 9999: the latest time there is */
}

void central_time_text(const mbedtls_x509_time *t, char out[CENTRAL_TIME_TEXT])
{
    snprintf(out, CENTRAL_TIME_TEXT, "%04u-%02u-%02u %02u:%02u:%02u UTC",
             (unsigned)t->year % 10000u, (unsigned)t->mon % 100u, (unsigned)t->day % 100u,
             (unsigned)t->hour % 100u, (unsigned)t->min % 100u, (unsigned)t->sec % 100u);
}

void central_serial_hex(const mbedtls_x509_crt *crt, char out[CENTRAL_SERIAL_HEX_MAX + 1])
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = crt->serial.len;
    const unsigned char *p = crt->serial.p;
    while (n > 1 && p[0] == 0) { /* the sign byte of a positive INTEGER */
        p++;
        n--;
    }
    if (n > CENTRAL_SERIAL_HEX_MAX / 2)
        n = CENTRAL_SERIAL_HEX_MAX / 2;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int parse_cert_file(const char *path, const char *what, mbedtls_x509_crt *crt,
                           char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    if (readfile_load(path, what, CENTRAL_PEM_MAX, false, &buf, &len, err, errlen) != 0)
        return -1;
    int ret = mbedtls_x509_crt_parse(crt, buf, len + 1);
    readfile_free(buf, len);
    if (ret != 0) {
        char w[400];
        snprintf(w, sizeof w, "%s %.300s is not a certificate", what, path);
        mbed_err(err, errlen, w, ret);
        return -1;
    }
    return 0;
}

int central_ca_load(const char *cert_path, const char *key_path, struct central_ca *ca,
                    char *err, size_t errlen)
{
    mbedtls_x509_crt_init(&ca->cert);
    mbedtls_pk_init(&ca->key);
    if (parse_cert_file(cert_path, "CA certificate", &ca->cert, err, errlen) != 0)
        goto fail;
    if (!ca->cert.ca_istrue ||
        mbedtls_x509_crt_check_key_usage(&ca->cert, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0) {
        snprintf(err, errlen, "%.300s is not a CA certificate that may sign certificates",
                 cert_path);
        goto fail;
    }
    uint8_t *buf;
    size_t len;
    if (readfile_load(key_path, "CA key file", CENTRAL_PEM_MAX, true, &buf, &len, err,
                      errlen) != 0)
        goto fail;
    int ret = mbedtls_pk_parse_key(&ca->key, buf, len + 1, NULL, 0);
    readfile_free(buf, len);
    if (ret != 0) {
        char w[400];
        snprintf(w, sizeof w, "CA key file %.300s is not an unencrypted private key", key_path);
        mbed_err(err, errlen, w, ret);
        goto fail;
    }
    if (mbedtls_pk_check_pair(&ca->cert.pk, &ca->key) != 0) {
        snprintf(err, errlen, "the key in %.300s is not the key of the CA certificate %.300s",
                 key_path, cert_path);
        goto fail;
    }
    return 0;
fail:
    central_ca_free(ca);
    return -1;
}

void central_ca_free(struct central_ca *ca)
{
    mbedtls_x509_crt_free(&ca->cert);
    mbedtls_pk_free(&ca->key);
}

/* Refuses an output path that exists (nothing is ever overwritten). */
static int check_new(const char *path, const char *what, char *err, size_t errlen)
{
    struct stat st;
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no output file for the %s given", what);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen, "%.300s exists already: it is not overwritten; remove it or "
                 "choose another file for the %s", path, what);
        return -1;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "cannot check %.300s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes the key file (mode 0600) and then the certificate file, each atomically; when the
 * certificate cannot be written the key file is removed again. */
static int write_pair(const char *key_path, const char *key_pem, const char *cert_path,
                      const char *cert_pem, char *err, size_t errlen)
{
    struct atomic_file k, c;
    if (atomic_file_open(&k, key_path, 0600, err, errlen) != 0)
        return -1;
    if (atomic_file_open(&c, cert_path, -1, err, errlen) != 0) {
        atomic_file_abort(&k);
        return -1;
    }
    fputs(key_pem, k.f);
    fputs(cert_pem, c.f);
    if (atomic_file_commit(&k, err, errlen) != 0) {
        atomic_file_abort(&c);
        return -1;
    }
    if (atomic_file_commit(&c, err, errlen) != 0) {
        unlink(key_path);
        atomic_sync_parent(key_path);
        return -1;
    }
    return 0;
}

/* ---- making a certificate ---------------------------------------------------------------- */

static int check_req(const struct central_cert_req *r, char *err, size_t errlen)
{
    bool ca = r->kind == CENTRAL_CERT_CA;
    if (r->name == NULL || !name_chars_ok(r->name, ca)) {
        snprintf(err, errlen, "the %s name must be 1 to %u characters of A-Z a-z 0-9 . _ -%s",
                 ca ? "CA" : r->kind == CENTRAL_CERT_SERVER ? "server" : "branch",
                 CENTRAL_NAME_MAX, ca ? " and inner spaces" : "");
        return -1;
    }
    if (r->days > CENTRAL_DAYS_MAX) {
        snprintf(err, errlen, "a validity of at most %u days", CENTRAL_DAYS_MAX);
        return -1;
    }
    if (r->kind == CENTRAL_CERT_SERVER && central_hosts_check(r->hosts, err, errlen) != 0)
        return -1;
    if (check_new(r->out_key, "key", err, errlen) != 0 ||
        check_new(r->out_cert, "certificate", err, errlen) != 0)
        return -1;
    if (strcmp(r->out_key, r->out_cert) == 0) {
        snprintf(err, errlen, "the certificate and the key need two different files");
        return -1;
    }
    return 0;
}

/* The extensions of the kind: basic constraints, key usage, extended key usage and names. */
static int set_extensions(mbedtls_x509write_cert *w, const struct central_cert_req *r,
                          char *err, size_t errlen)
{
    unsigned char buf[EXT_MAX], *der;
    int ret, len;
    bool ca = r->kind == CENTRAL_CERT_CA;
    if ((ret = mbedtls_x509write_crt_set_basic_constraints(w, ca, ca ? 0 : -1)) != 0 ||
        (ret = mbedtls_x509write_crt_set_key_usage(
             w, ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN
                   : MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0 ||
        (ret = mbedtls_x509write_crt_set_subject_key_identifier(w)) != 0 ||
        (ret = mbedtls_x509write_crt_set_authority_key_identifier(w)) != 0) {
        mbed_err(err, errlen, "cannot set the certificate's extensions", ret);
        return -1;
    }
    if (ca)
        return 0;
    bool server = r->kind == CENTRAL_CERT_SERVER;
    len = server ? eku_der(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH),
                           buf, sizeof buf, &der)
                 : eku_der(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH),
                           buf, sizeof buf, &der);
    if (len < 0 || (ret = mbedtls_x509write_crt_set_extension(
                        w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                        MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, der,
                        (size_t)len)) != 0) {
        mbed_err(err, errlen, "cannot set the extended key usage", len < 0 ? len : ret);
        return -1;
    }
    if (!server)
        return 0;
    len = san_der(r->hosts, buf, sizeof buf, &der, err, errlen);
    if (len < 0)
        return -1;
    if ((ret = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                   0, der, (size_t)len)) != 0) {
        mbed_err(err, errlen, "cannot set the subject alternative names", ret);
        return -1;
    }
    return 0;
}

/* Checks the new certificate: it parses, and verifies against its CA (itself for a CA). */
static int self_check(const char *pem, const mbedtls_x509_crt *ca_cert,
                      mbedtls_x509_crt *out, char *err, size_t errlen)
{
    int ret = mbedtls_x509_crt_parse(out, (const unsigned char *)pem, strlen(pem) + 1);
    if (ret != 0) {
        mbed_err(err, errlen, "the new certificate does not parse", ret);
        return -1;
    }
    uint32_t flags = 0;
    ret = mbedtls_x509_crt_verify(out, (mbedtls_x509_crt *)(ca_cert != NULL ? ca_cert : out),
                                  NULL, NULL, &flags, NULL, NULL);
    if (ret != 0) {
        char info[256];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        info[strcspn(info, "\n")] = '\0';
        snprintf(err, errlen, "the new certificate does not verify against its CA: %s", info);
        return -1;
    }
    return 0;
}

static int make(const struct central_cert_req *r, const struct central_ca *ca,
                mbedtls_ctr_drbg_context *drbg, struct central_cert_info *info, char *err,
                size_t errlen)
{
    mbedtls_pk_context key;
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    mbedtls_x509_crt check;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    mbedtls_x509_crt_init(&check);
    unsigned char *key_pem = calloc(1, PEM_OUT_MAX), *cert_pem = calloc(1, PEM_OUT_MAX);
    int rc = -1, ret;
    char subject[16 + CENTRAL_NAME_MAX], issuer[512];
    char not_before[15], not_after[15];
    unsigned char rnd[SERIAL_LEN];
    long long now = (long long)time(NULL);
    unsigned days = r->days != 0 ? r->days
                                 : r->kind == CENTRAL_CERT_CA ? CENTRAL_CA_DAYS : CENTRAL_CERT_DAYS;
    if (key_pem == NULL || cert_pem == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((ret = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0 ||
        (ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                                   mbedtls_ctr_drbg_random, drbg)) != 0) {
        mbed_err(err, errlen, "cannot make a P-256 key", ret);
        goto out;
    }
    /* A random positive serial of 127 bits whose top byte is never 0: always 16 bytes. */
    if ((ret = mbedtls_ctr_drbg_random(drbg, rnd, sizeof rnd)) != 0) {
        mbed_err(err, errlen, "cannot make a serial number", ret);
        goto out;
    }
    rnd[0] = (unsigned char)((rnd[0] & 0x7F) | 0x40);
    if ((ret = mbedtls_mpi_read_binary(&serial, rnd, sizeof rnd)) != 0) {
        mbed_err(err, errlen, "cannot make a serial number", ret);
        goto out;
    }
    snprintf(subject, sizeof subject, "CN=%s", r->name);
    if (ca != NULL) {
        if (mbedtls_x509_dn_gets(issuer, sizeof issuer, &ca->cert.subject) < 0) {
            snprintf(err, errlen, "cannot read the CA's name");
            goto out;
        }
    } else {
        snprintf(issuer, sizeof issuer, "%s", subject);
    }
    central_time_string(now - 300, 0, not_before); /* five minutes of clock skew */
    central_time_string(now, days, not_after);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &key);
    mbedtls_x509write_crt_set_issuer_key(&w, ca != NULL ? (mbedtls_pk_context *)&ca->key : &key);
    if ((ret = mbedtls_x509write_crt_set_serial(&w, &serial)) != 0 ||
        (ret = mbedtls_x509write_crt_set_validity(&w, not_before, not_after)) != 0 ||
        (ret = mbedtls_x509write_crt_set_subject_name(&w, subject)) != 0 ||
        (ret = mbedtls_x509write_crt_set_issuer_name(&w, issuer)) != 0) {
        mbed_err(err, errlen, "cannot set up the certificate", ret);
        goto out;
    }
    if (set_extensions(&w, r, err, errlen) != 0)
        goto out;
    if ((ret = mbedtls_x509write_crt_pem(&w, cert_pem, PEM_OUT_MAX, mbedtls_ctr_drbg_random,
                                         drbg)) != 0 ||
        (ret = mbedtls_pk_write_key_pem(&key, key_pem, PEM_OUT_MAX)) != 0) {
        mbed_err(err, errlen, "cannot encode the certificate and key", ret);
        goto out;
    }
    if (self_check((const char *)cert_pem, ca != NULL ? &ca->cert : NULL, &check, err,
                   errlen) != 0)
        goto out;
    if (write_pair(r->out_key, (const char *)key_pem, r->out_cert, (const char *)cert_pem, err,
                   errlen) != 0)
        goto out;
    if (info != NULL) {
        central_serial_hex(&check, info->serial);
        central_time_text(&check.valid_to, info->not_after);
    }
    rc = 0;
out:
    if (key_pem != NULL)
        mbedtls_platform_zeroize(key_pem, PEM_OUT_MAX);
    free(key_pem);
    free(cert_pem);
    mbedtls_x509_crt_free(&check);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    mbedtls_pk_free(&key);
    return rc;
}

int central_cert_make(const struct central_cert_req *r, struct central_cert_info *info,
                      char *err, size_t errlen)
{
    if (check_req(r, err, errlen) != 0)
        return -1;
    struct central_ca ca;
    bool have_ca = r->kind != CENTRAL_CERT_CA;
    if (have_ca && central_ca_load(r->ca_cert, r->ca_key, &ca, err, errlen) != 0)
        return -1;
    mbedtls_ctr_drbg_context drbg;
    int rc = central_drbg_seed(&drbg, err, errlen);
    if (rc == 0)
        rc = make(r, have_ca ? &ca : NULL, &drbg, info, err, errlen);
    mbedtls_ctr_drbg_free(&drbg);
    if (have_ca)
        central_ca_free(&ca);
    return rc;
}

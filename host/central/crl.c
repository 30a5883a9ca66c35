/* Writing the CA's CRL (crl.h). The DER is built back to front, as asn1write works:
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version INTEGER (1 = v2), signature AlgorithmIdentifier,
 *       issuer Name, thisUpdate Time, nextUpdate Time,
 *       revokedCertificates SEQUENCE OF SEQUENCE { serial INTEGER, revocationDate Time }
 *           (absent when empty),
 *       crlExtensions [0] EXPLICIT SEQUENCE { cRLNumber, authorityKeyIdentifier } }
 *
 * ecdsa-with-SHA256 is written without parameters (RFC 5758), the same in both places. */
#include "crl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>

#include "atomicfile.h"
#include "readfile.h"

#define PEM_HEADER "-----BEGIN X509 CRL-----\n"
#define PEM_FOOTER "-----END X509 CRL-----\n"

struct entry {
    const unsigned char *serial; /* INTEGER contents, as in the certificate */
    size_t serial_len;
    mbedtls_x509_time date;
};

/* ---- reading ----------------------------------------------------------------------------- */

int central_crl_check(const mbedtls_x509_crl *crl, const mbedtls_x509_crt *ca, char *err,
                      size_t errlen)
{
    if (crl->issuer_raw.len != ca->subject_raw.len ||
        memcmp(crl->issuer_raw.p, ca->subject_raw.p, ca->subject_raw.len) != 0) {
        snprintf(err, errlen, "the CRL was issued by another CA");
        return -1;
    }
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(crl->sig_md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    if (md == NULL || mbedtls_md(md, crl->tbs.p, crl->tbs.len, hash) != 0 ||
        mbedtls_pk_verify_ext(crl->sig_pk, crl->sig_opts, (mbedtls_pk_context *)&ca->pk,
                              crl->sig_md, hash, mbedtls_md_get_size(md), crl->sig.p,
                              crl->sig.len) != 0) {
        snprintf(err, errlen, "the CRL's signature is not the CA's");
        return -1;
    }
    return 0;
}

/* The cRLNumber among the extensions of crl into n (0 when there is none). */
static int crl_number(const mbedtls_x509_crl *crl, mbedtls_mpi *n)
{
    mbedtls_mpi_lset(n, 0);
    if (crl->crl_ext.p == NULL || crl->crl_ext.len == 0)
        return 0;
    unsigned char *p = crl->crl_ext.p;
    const unsigned char *end = p + crl->crl_ext.len;
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return -1;
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len,
                                 MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return -1;
        const unsigned char *ext_end = p + len;
        size_t oid_len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID) != 0)
            return -1;
        bool is_number = oid_len == MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER) &&
                         memcmp(p, MBEDTLS_OID_CRL_NUMBER, oid_len) == 0;
        p += oid_len;
        int critical;
        if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN &&
            mbedtls_asn1_get_bool(&p, ext_end, &critical) != 0)
            return -1;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return -1;
        if (is_number)
            return mbedtls_asn1_get_mpi(&p, p + len, n) != 0 ? -1 : 0;
        p = (unsigned char *)ext_end;
    }
    return 0;
}

/* Reads and checks the existing CRL; *exists false when there is no file. */
static int load_old(const char *path, const struct central_ca *ca, mbedtls_x509_crl *crl,
                    bool *exists, char *err, size_t errlen)
{
    struct stat st;
    *exists = false;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read the CRL %.300s: %s", path, strerror(errno));
        return -1;
    }
    *exists = true;
    uint8_t *buf;
    size_t len;
    if (readfile_load(path, "CRL", CENTRAL_CRL_FILE_MAX, false, &buf, &len, err, errlen) != 0)
        return -1;
    int ret = mbedtls_x509_crl_parse(crl, buf, len + 1);
    readfile_free(buf, len);
    char why[160];
    if (ret != 0) {
        mbedtls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "%.300s is not a CRL (%s)", path, why);
        return -1;
    }
    if (crl->next != NULL) {
        snprintf(err, errlen, "%.300s holds more than one CRL", path);
        return -1;
    }
    if (central_crl_check(crl, &ca->cert, why, sizeof why) != 0) {
        snprintf(err, errlen, "%.300s: %s", path, why);
        return -1;
    }
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void time_of(time_t t, mbedtls_x509_time *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    out->year = tm.tm_year + 1900;
    out->mon = tm.tm_mon + 1;
    out->day = tm.tm_mday;
    out->hour = tm.tm_hour;
    out->min = tm.tm_min;
    out->sec = tm.tm_sec;
}

/* Time ::= UTCTime (1950..2049) | GeneralizedTime. */
static int write_time(unsigned char **p, unsigned char *start, const mbedtls_x509_time *t)
{
    char s[16];
    snprintf(s, sizeof s, "%04u%02u%02u%02u%02u%02uZ", (unsigned)t->year % 10000u,
             (unsigned)t->mon % 100u, (unsigned)t->day % 100u, (unsigned)t->hour % 100u,
             (unsigned)t->min % 100u, (unsigned)t->sec % 100u);
    bool utc = t->year >= 1950 && t->year < 2050;
    return mbedtls_asn1_write_tagged_string(p, start,
                                            utc ? MBEDTLS_ASN1_UTC_TIME
                                                : MBEDTLS_ASN1_GENERALIZED_TIME,
                                            utc ? s + 2 : s, utc ? 13 : 15);
}

/* SEQUENCE { OID ecdsa-with-SHA256 } */
static int write_sig_alg(unsigned char **p, unsigned char *start)
{
    int len = 0, ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_ECDSA_SHA256,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256)));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                   MBEDTLS_ASN1_SEQUENCE));
    return len;
}

/* Extension ::= SEQUENCE { extnID OID, extnValue OCTET STRING } around the value that ends at
 * *p and is value_len bytes long. */
static int wrap_extension(unsigned char **p, unsigned char *start, const char *oid,
                          size_t oid_len, int value_len)
{
    int len = value_len, ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)value_len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_OCTET_STRING));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, oid, oid_len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                   MBEDTLS_ASN1_SEQUENCE));
    return len;
}

/* crlExtensions [0] EXPLICIT SEQUENCE { cRLNumber number, authorityKeyIdentifier } */
static int write_extensions(unsigned char **p, unsigned char *start, const mbedtls_mpi *number,
                            const unsigned char keyid[20])
{
    int len = 0, v = 0, ret;
    /* authorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING } */
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_raw_buffer(p, start, keyid, 20));
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_len(p, start, 20));
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0));
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_len(p, start, (size_t)v));
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                 MBEDTLS_ASN1_SEQUENCE));
    MBEDTLS_ASN1_CHK_ADD(len, wrap_extension(p, start, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER),
                                             v));
    v = 0;
    MBEDTLS_ASN1_CHK_ADD(v, mbedtls_asn1_write_mpi(p, start, number));
    MBEDTLS_ASN1_CHK_ADD(len, wrap_extension(p, start, MBEDTLS_OID_CRL_NUMBER,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER), v));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                   MBEDTLS_ASN1_SEQUENCE));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC |
                                                                   MBEDTLS_ASN1_CONSTRUCTED | 0));
    return len;
}

struct tbs_args {
    const struct central_ca *ca;
    const struct entry *entries;
    size_t nentries;
    mbedtls_x509_time this_update, next_update;
    const mbedtls_mpi *number;
    unsigned char keyid[20];
};

static int write_tbs(unsigned char **p, unsigned char *start, const struct tbs_args *a)
{
    int len = 0, ret;
    MBEDTLS_ASN1_CHK_ADD(len, write_extensions(p, start, a->number, a->keyid));
    if (a->nentries > 0) {
        int list = 0;
        for (size_t i = a->nentries; i-- > 0;) {
            int e = 0;
            MBEDTLS_ASN1_CHK_ADD(e, write_time(p, start, &a->entries[i].date));
            MBEDTLS_ASN1_CHK_ADD(e, mbedtls_asn1_write_raw_buffer(p, start,
                                                                  a->entries[i].serial,
                                                                  a->entries[i].serial_len));
            MBEDTLS_ASN1_CHK_ADD(e, mbedtls_asn1_write_len(p, start, a->entries[i].serial_len));
            MBEDTLS_ASN1_CHK_ADD(e, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_INTEGER));
            MBEDTLS_ASN1_CHK_ADD(e, mbedtls_asn1_write_len(p, start, (size_t)e));
            MBEDTLS_ASN1_CHK_ADD(e, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                         MBEDTLS_ASN1_SEQUENCE));
            list += e;
        }
        len += list;
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)list));
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                       MBEDTLS_ASN1_SEQUENCE));
    }
    MBEDTLS_ASN1_CHK_ADD(len, write_time(p, start, &a->next_update));
    MBEDTLS_ASN1_CHK_ADD(len, write_time(p, start, &a->this_update));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, a->ca->cert.subject_raw.p,
                                                            a->ca->cert.subject_raw.len));
    MBEDTLS_ASN1_CHK_ADD(len, write_sig_alg(p, start));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_int(p, start, 1));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, (size_t)len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED |
                                                                   MBEDTLS_ASN1_SEQUENCE));
    return len;
}

/* SHA-1 of the CA's public key, as mbedtls computes the CA's subjectKeyIdentifier. */
static int key_id(const struct central_ca *ca, unsigned char out[20])
{
    unsigned char buf[MBEDTLS_MPI_MAX_SIZE * 2 + 20];
    unsigned char *c = buf + sizeof buf;
    int len = mbedtls_pk_write_pubkey(&c, buf, (mbedtls_pk_context *)&ca->cert.pk);
    if (len < 0)
        return len;
    return mbedtls_sha1_ret(c, (size_t)len, out);
}

/* Encodes and signs the CRL; *pem (heap, NUL-terminated) gets it. */
static int encode(const struct tbs_args *a, mbedtls_ctr_drbg_context *drbg, char **pem,
                  char *err, size_t errlen)
{
    size_t cap = a->nentries * 64 + a->ca->cert.subject_raw.len + 1024;
    unsigned char *tbs_buf = malloc(cap), *der_buf = malloc(cap + 256), *out = NULL;
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    int rc = -1, ret = MBEDTLS_ERR_ASN1_ALLOC_FAILED;
    if (tbs_buf == NULL || der_buf == NULL)
        goto fail;
    unsigned char *p = tbs_buf + cap;
    int tbs_len = write_tbs(&p, tbs_buf, a);
    if ((ret = tbs_len) < 0 ||
        (ret = mbedtls_sha256_ret(p, (size_t)tbs_len, hash, 0)) != 0 ||
        (ret = mbedtls_pk_sign((mbedtls_pk_context *)&a->ca->key, MBEDTLS_MD_SHA256, hash,
                               sizeof hash, sig, &sig_len, mbedtls_ctr_drbg_random, drbg)) != 0)
        goto fail;
    unsigned char *q = der_buf + cap + 256;
    int len = 0;
    if ((ret = mbedtls_asn1_write_bitstring(&q, der_buf, sig, sig_len * 8)) < 0)
        goto fail;
    len += ret;
    if ((ret = write_sig_alg(&q, der_buf)) < 0)
        goto fail;
    len += ret;
    if ((ret = mbedtls_asn1_write_raw_buffer(&q, der_buf, p, (size_t)tbs_len)) < 0)
        goto fail;
    len += ret;
    if ((ret = mbedtls_asn1_write_len(&q, der_buf, (size_t)len)) < 0)
        goto fail;
    len += ret;
    if ((ret = mbedtls_asn1_write_tag(&q, der_buf, MBEDTLS_ASN1_CONSTRUCTED |
                                                       MBEDTLS_ASN1_SEQUENCE)) < 0)
        goto fail;
    len += ret;
    size_t pem_cap = (size_t)len * 4 / 3 + (size_t)len / 32 + 128, olen;
    out = malloc(pem_cap);
    if (out == NULL) {
        ret = MBEDTLS_ERR_ASN1_ALLOC_FAILED;
        goto fail;
    }
    if ((ret = mbedtls_pem_write_buffer(PEM_HEADER, PEM_FOOTER, q, (size_t)len, out, pem_cap,
                                        &olen)) != 0)
        goto fail;
    *pem = (char *)out;
    out = NULL;
    rc = 0;
fail:
    if (rc != 0) {
        char m[160];
        mbedtls_strerror(ret, m, sizeof m);
        snprintf(err, errlen, "cannot encode and sign the CRL: %s (-0x%04X)", m,
                 (unsigned)-ret);
    }
    free(out);
    free(der_buf);
    free(tbs_buf);
    return rc;
}

/* ---- the update -------------------------------------------------------------------------- */

/* The certificate to revoke: one of this CA's (expired is fine), not the CA itself. */
static int load_target(const char *path, const struct central_ca *ca, mbedtls_x509_crt *crt,
                       char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    if (readfile_load(path, "certificate", CENTRAL_PEM_MAX, false, &buf, &len, err, errlen) !=
        0)
        return -1;
    int ret = mbedtls_x509_crt_parse(crt, buf, len + 1);
    readfile_free(buf, len);
    if (ret != 0) {
        snprintf(err, errlen, "%.300s is not a certificate", path);
        return -1;
    }
    if (crt->raw.len == ca->cert.raw.len &&
        memcmp(crt->raw.p, ca->cert.raw.p, crt->raw.len) == 0) {
        snprintf(err, errlen, "%.300s is the CA certificate itself", path);
        return -1;
    }
    uint32_t flags = 0;
    mbedtls_x509_crt_verify(crt, (mbedtls_x509_crt *)&ca->cert, NULL, NULL, &flags, NULL,
                            NULL);
    if ((flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) != 0) {
        snprintf(err, errlen, "%.300s was not issued by this CA", path);
        return -1;
    }
    return 0;
}

/* Collects the old list's entries and the new serial into *out (heap). */
static int collect(const mbedtls_x509_crl *old, bool have_old, const mbedtls_x509_crt *target,
                   struct entry **out, size_t *n, bool *already, char *err, size_t errlen)
{
    size_t count = 0;
    for (const mbedtls_x509_crl_entry *e = have_old ? &old->entry : NULL;
         e != NULL && e->raw.len != 0; e = e->next)
        count++;
    if (count + 1 > CENTRAL_CRL_ENTRIES_MAX) {
        snprintf(err, errlen, "the CRL holds %zu serials already, the most is %u", count,
                 CENTRAL_CRL_ENTRIES_MAX);
        return -1;
    }
    struct entry *v = calloc(count + 1, sizeof *v);
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *already = false;
    size_t i = 0;
    for (const mbedtls_x509_crl_entry *e = have_old ? &old->entry : NULL;
         e != NULL && e->raw.len != 0; e = e->next, i++) {
        v[i].serial = e->serial.p;
        v[i].serial_len = e->serial.len;
        v[i].date = e->revocation_date;
        if (target != NULL && e->serial.len == target->serial.len &&
            memcmp(e->serial.p, target->serial.p, e->serial.len) == 0)
            *already = true;
    }
    if (target != NULL && !*already) {
        v[i].serial = target->serial.p;
        v[i].serial_len = target->serial.len;
        time_of(time(NULL), &v[i].date);
        i++;
    }
    *out = v;
    *n = i;
    return 0;
}

/* Parses the new CRL back, checks it against the CA, and that it lists the target. */
static int check_new(const char *pem, const struct central_ca *ca,
                     const mbedtls_x509_crt *target, size_t nentries, char *err, size_t errlen)
{
    mbedtls_x509_crl crl;
    mbedtls_x509_crl_init(&crl);
    int rc = -1;
    size_t count = 0;
    char why[160];
    if (mbedtls_x509_crl_parse(&crl, (const unsigned char *)pem, strlen(pem) + 1) != 0) {
        snprintf(err, errlen, "the new CRL does not parse");
        goto out;
    }
    if (central_crl_check(&crl, &ca->cert, why, sizeof why) != 0) {
        snprintf(err, errlen, "the new CRL fails its check: %s", why);
        goto out;
    }
    for (const mbedtls_x509_crl_entry *e = &crl.entry; e != NULL && e->raw.len != 0;
         e = e->next)
        count++;
    if (count != nentries || (target != NULL && !mbedtls_x509_crt_is_revoked(target, &crl))) {
        snprintf(err, errlen, "the new CRL does not hold the serials it should");
        goto out;
    }
    rc = 0;
out:
    mbedtls_x509_crl_free(&crl);
    return rc;
}

static int write_file(const char *path, bool exists, const char *pem, char *err, size_t errlen)
{
    struct stat st;
    int mode = exists && stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
    struct atomic_file f;
    if (atomic_file_open(&f, path, mode, err, errlen) != 0)
        return -1;
    fputs(pem, f.f);
    return atomic_file_commit(&f, err, errlen);
}

static int update_locked(const struct central_crl_req *r, const struct central_ca *ca,
                         struct central_crl_info *info, char *err, size_t errlen)
{
    mbedtls_x509_crl old;
    mbedtls_x509_crt target;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_mpi number;
    mbedtls_x509_crl_init(&old);
    mbedtls_x509_crt_init(&target);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_mpi_init(&number);
    struct entry *entries = NULL;
    char *pem = NULL;
    int rc = -1;
    bool exists = false, already = false;
    struct tbs_args a;
    memset(&a, 0, sizeof a);
    a.ca = ca;
    if (load_old(r->crl, ca, &old, &exists, err, errlen) != 0)
        goto out;
    if (r->revoke != NULL && load_target(r->revoke, ca, &target, err, errlen) != 0)
        goto out;
    if (collect(&old, exists, r->revoke != NULL ? &target : NULL, &entries, &a.nentries,
                &already, err, errlen) != 0)
        goto out;
    if ((exists && crl_number(&old, &number) != 0) || mbedtls_mpi_add_int(&number, &number, 1)) {
        snprintf(err, errlen, "%.300s has a malformed CRL number", r->crl);
        goto out;
    }
    time_t now = time(NULL);
    unsigned days = r->days != 0 ? r->days : CENTRAL_CRL_DAYS;
    if (days > CENTRAL_DAYS_MAX) {
        snprintf(err, errlen, "a validity of at most %u days", CENTRAL_DAYS_MAX);
        goto out;
    }
    a.entries = entries;
    a.number = &number;
    time_of(now, &a.this_update);
    time_of(now + (time_t)days * 86400, &a.next_update);
    if (key_id(ca, a.keyid) != 0) {
        snprintf(err, errlen, "cannot compute the CA's key identifier");
        goto out;
    }
    if (central_drbg_seed(&drbg, err, errlen) != 0 || encode(&a, &drbg, &pem, err, errlen) != 0 ||
        check_new(pem, ca, r->revoke != NULL ? &target : NULL, a.nentries, err, errlen) != 0 ||
        write_file(r->crl, exists, pem, err, errlen) != 0)
        goto out;
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        info->created = !exists;
        info->already = already;
        info->entries = a.nentries;
        if (r->revoke != NULL) {
            central_serial_hex(&target, info->serial);
            mbedtls_x509_dn_gets(info->subject, sizeof info->subject, &target.subject);
        }
        central_time_text(&a.next_update, info->next_update);
    }
    rc = 0;
out:
    free(pem);
    free(entries);
    mbedtls_mpi_free(&number);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_x509_crt_free(&target);
    mbedtls_x509_crl_free(&old);
    return rc;
}

int central_crl_update(const struct central_crl_req *r, struct central_crl_info *info,
                       char *err, size_t errlen)
{
    if (r->crl == NULL || r->crl[0] == '\0') {
        snprintf(err, errlen, "no CRL file given");
        return -1;
    }
    struct central_ca ca;
    if (central_ca_load(r->ca_cert, r->ca_key, &ca, err, errlen) != 0)
        return -1;
    if (mbedtls_x509_crt_check_key_usage(&ca.cert, MBEDTLS_X509_KU_CRL_SIGN) != 0) {
        snprintf(err, errlen, "the CA certificate %.300s may not sign CRLs (no cRLSign)",
                 r->ca_cert);
        central_ca_free(&ca);
        return -1;
    }
    /* One CA operation at a time: the lock is on the CA's key file (the CRL file itself is
     * replaced by a rename, so it cannot hold a lock). */
    int fd = open(r->ca_key, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int rc = -1;
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
        snprintf(err, errlen, "cannot lock the CA key file %.300s: %s", r->ca_key,
                 strerror(errno));
    else
        rc = update_locked(r, &ca, info, err, errlen);
    if (fd >= 0)
        close(fd);
    central_ca_free(&ca);
    return rc;
}

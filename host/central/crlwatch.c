#include "crlwatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "crl.h"
#include "readfile.h"

struct central_crlwatch {
    pthread_mutex_t lock;
    char *path;
    mbedtls_x509_crt ca;  /* private to the watcher: verifying with it is not thread-safe */
    struct stat seen;     /* the file as last read */
    bool good;            /* pem holds the version seen */
    unsigned long version; /* good versions read so far */
    uint8_t *pem;         /* the last good version */
    size_t len;
    char why[640];        /* why the version seen is not good */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads the file seen as st; on success it becomes the current version. */
static void reload(struct central_crlwatch *w, const struct stat *st)
{
    w->seen = *st;
    w->good = false;
    uint8_t *buf;
    size_t len;
    char err[400];
    if (readfile_load(w->path, "CRL", CENTRAL_CRL_FILE_MAX, false, &buf, &len, err,
                      sizeof err) != 0) {
        snprintf(w->why, sizeof w->why, "%s", err);
        return;
    }
    mbedtls_x509_crl crl;
    mbedtls_x509_crl_init(&crl);
    int ret = mbedtls_x509_crl_parse(&crl, buf, len + 1);
    if (ret != 0)
        snprintf(w->why, sizeof w->why, "%.200s is not a CRL", w->path);
    else if (central_crl_check(&crl, &w->ca, err, sizeof err) != 0)
        snprintf(w->why, sizeof w->why, "%.200s: %s", w->path, err);
    mbedtls_x509_crl_free(&crl);
    if (ret != 0 || w->why[0] != '\0') {
        readfile_free(buf, len);
        return;
    }
    readfile_free(w->pem, w->len);
    w->pem = buf;
    w->len = len;
    w->good = true;
    w->version++;
}

/* Under the lock: stats the file and reads it when it changed. Returns 0 or -1 (err). */
static int refresh(struct central_crlwatch *w, bool *reloaded, char *err, size_t errlen)
{
    struct stat st;
    *reloaded = false;
    if (stat(w->path, &st) != 0) {
        snprintf(err, errlen, "cannot read the CRL %.200s: %s", w->path, strerror(errno));
        return -1;
    }
    if (w->pem == NULL || !same_file(&st, &w->seen)) {
        w->why[0] = '\0';
        reload(w, &st);
        *reloaded = w->good;
    }
    if (!w->good) {
        snprintf(err, errlen, "%s", w->why);
        return -1;
    }
    return 0;
}

int central_crlwatch_open(const char *path, const uint8_t *ca_pem, size_t ca_len,
                          struct central_crlwatch **out, char *err, size_t errlen)
{
    struct central_crlwatch *w = calloc(1, sizeof *w);
    if (w == NULL || (w->path = strdup(path)) == NULL) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    mbedtls_x509_crt_init(&w->ca);
    pthread_mutex_init(&w->lock, NULL);
    bool reloaded;
    if (mbedtls_x509_crt_parse(&w->ca, ca_pem, ca_len + 1) != 0) {
        snprintf(err, errlen, "the CA certificate does not parse");
        central_crlwatch_close(w);
        return -1;
    }
    if (refresh(w, &reloaded, err, errlen) != 0) {
        central_crlwatch_close(w);
        return -1;
    }
    *out = w;
    return 0;
}

int central_crlwatch_get(struct central_crlwatch *w, unsigned long *version, bool *reloaded,
                         uint8_t **pem, size_t *len, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->lock);
    int rc = refresh(w, reloaded, err, errlen);
    *version = w->version;
    if (rc == 0 && pem != NULL) {
        *pem = malloc(w->len + 1);
        if (*pem == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            memcpy(*pem, w->pem, w->len + 1);
            *len = w->len;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void central_crlwatch_close(struct central_crlwatch *w)
{
    if (w == NULL)
        return;
    readfile_free(w->pem, w->len);
    mbedtls_x509_crt_free(&w->ca);
    pthread_mutex_destroy(&w->lock);
    free(w->path);
    free(w);
}

/* Encrypted data files v1. See filecrypt.h and docs/fileformat.md. */
#include "filecrypt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "atomicfile.h"
#include "card_err.h"
#include "ec.h"
#include "rng.h"

#define CHUNK_AAD_LEN 33u /* H || final flag */
#define CHUNK_NONCE_LEN 12u

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *filecrypt_err_name(int code)
{
    switch (code) {
    case FILECRYPT_OK: return "ok";
    case FILECRYPT_E_ARG: return "bad arguments";
    case FILECRYPT_E_IO: return "input/output error";
    case FILECRYPT_E_FORMAT: return "not a valid icdup file";
    case FILECRYPT_E_NOT_RECIPIENT: return "not a recipient";
    case FILECRYPT_E_KEY: return "content key does not unwrap";
    case FILECRYPT_E_CORRUPT: return "corrupt chunk";
    case FILECRYPT_E_TRUNCATED: return "truncated file";
    case FILECRYPT_E_TRAILING: return "data after the final chunk";
    case FILECRYPT_E_RNG: return "random generator failure";
    case FILECRYPT_E_CRYPTO: return "crypto failure";
    case FILECRYPT_E_CARD: return "card failure";
    }
    return "unknown error";
}

/* ---- small pieces ------------------------------------------------------------------------ */

size_t filecrypt_header_len(const struct filecrypt_header *h)
{
    return FILECRYPT_FIXED_LEN + (size_t)h->n * FILECRYPT_ENTRY_LEN;
}

size_t filecrypt_chunk_len(const struct filecrypt_header *h)
{
    return (size_t)1 << h->chunk_exp;
}

void filecrypt_key_id(const uint8_t pub[65], uint8_t id[FILECRYPT_KEY_ID_LEN])
{
    uint8_t d[32];
    mbedtls_sha256_ret(pub, FILECRYPT_POINT_LEN, d, 0);
    memcpy(id, d, FILECRYPT_KEY_ID_LEN);
}

int filecrypt_find(const struct filecrypt_header *h, const uint8_t id[FILECRYPT_KEY_ID_LEN])
{
    for (unsigned i = 0; i < h->n && i < FILECRYPT_MAX_RECIPIENTS; i++)
        if (h->entry[i].type == FILECRYPT_TYPE_P256_ECDH &&
            memcmp(h->entry[i].key_id, id, FILECRYPT_KEY_ID_LEN) == 0)
            return (int)i;
    return -1;
}

int filecrypt_derive_kwk(const uint8_t shared_x[32], const uint8_t eph_pub[65],
                         const uint8_t recipient_pub[65], uint8_t kwk[32])
{
    static const unsigned char info[] = FILECRYPT_KWK_INFO;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL)
        return FILECRYPT_E_CRYPTO;
    uint8_t salt[2 * FILECRYPT_POINT_LEN];
    memcpy(salt, eph_pub, FILECRYPT_POINT_LEN);
    memcpy(salt + FILECRYPT_POINT_LEN, recipient_pub, FILECRYPT_POINT_LEN);
    int ret = mbedtls_hkdf(md, salt, sizeof salt, shared_x, 32, info, sizeof info - 1, kwk, 32);
    return ret == 0 ? FILECRYPT_OK : FILECRYPT_E_CRYPTO;
}

static void be64(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void chunk_nonce(const struct filecrypt_header *h, uint64_t index,
                        uint8_t nonce[CHUNK_NONCE_LEN])
{
    memcpy(nonce, h->file_id, 4);
    be64(index, nonce + 4);
}

static void chunk_aad(const struct filecrypt_header *h, bool final, uint8_t aad[CHUNK_AAD_LEN])
{
    memcpy(aad, h->hash, 32);
    aad[32] = final ? 0x01 : 0x00;
}

/* Reads up to n bytes (short only at end of input or on error). */
static size_t read_full(FILE *in, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t r = fread(buf + got, 1, n - got, in);
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

/* True when in has no more bytes. -1 on a read error. */
static int at_eof(FILE *in)
{
    int c = getc(in);
    if (c == EOF)
        return ferror(in) ? -1 : 1;
    if (ungetc(c, in) == EOF)
        return -1;
    return 0;
}

/* ---- the output ring ----------------------------------------------------------------------- */

/* Output is written by a writer thread so that the page cache copies and the writeback of the
 * output overlap with the crypto. The crypto thread seals or opens chunks one after the other
 * into a slot of about RING_BATCH bytes; a full slot is queued, and the writer writes the
 * queued slots in order with one fwrite each (few wake-ups, large writes). Constant memory:
 * RING_SLOTS slots. Every RING_SYNC bytes of a regular output file the writer starts the
 * writeback of what it wrote (POSIX_FADV_DONTNEED starts it without waiting and drops the pages
 * already on disk), so the caller's final fsync has little left to do. When the thread cannot
 * be started, each full slot is written synchronously. */
#define RING_SLOTS 4u
#define RING_BATCH ((size_t)1 << 20)
#define RING_SYNC ((off_t)8 << 20)

struct ring {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool threaded;
    FILE *out;
    uint8_t *mem;                /* RING_SLOTS slots of cap bytes */
    size_t cap;                  /* bytes of a slot: a whole number of units */
    size_t unit;                 /* the most bytes one chunk adds */
    size_t len[RING_SLOTS];
    uint8_t *cur;                /* the slot being filled, or NULL */
    size_t fill;                 /* bytes in it */
    unsigned long long produced; /* slots queued by the crypto thread */
    unsigned long long consumed; /* slots written by the writer */
    bool done;                   /* no more slots will be queued */
    bool writer_waits, producer_waits;
    bool failed;                 /* a write failed; werr is its errno */
    int werr;
    int fd;                      /* the output's descriptor when it is a regular file, else -1 */
    off_t start, written, synced;
};

/* Writes len bytes (and starts writeback now and then). 0, or an errno value. */
static int ring_write(struct ring *r, const uint8_t *p, size_t len)
{
    errno = 0;
    if (len > 0 && fwrite(p, 1, len, r->out) != len)
        return errno != 0 ? errno : EIO;
    if (r->fd < 0)
        return 0;
    r->written += (off_t)len;
    if (r->written - r->synced >= RING_SYNC) {
        errno = 0;
        if (fflush(r->out) != 0)
            return errno != 0 ? errno : EIO;
        (void)posix_fadvise(r->fd, r->start + r->synced, r->written - r->synced,
                            POSIX_FADV_DONTNEED);
        r->synced = r->written;
    }
    return 0;
}

static void *ring_writer(void *arg)
{
    struct ring *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->consumed == r->produced && !r->done) {
            r->writer_waits = true;
            pthread_cond_wait(&r->cv, &r->mu);
            r->writer_waits = false;
        }
        if (r->consumed == r->produced)
            break; /* done, and everything written */
        unsigned slot = (unsigned)(r->consumed % RING_SLOTS);
        size_t len = r->len[slot];
        pthread_mutex_unlock(&r->mu);
        int e = ring_write(r, r->mem + (size_t)slot * r->cap, len);
        pthread_mutex_lock(&r->mu);
        if (e != 0) {
            r->failed = true;
            r->werr = e;
        } else {
            r->consumed++;
        }
        if (r->producer_waits)
            pthread_cond_broadcast(&r->cv);
        if (e != 0)
            break;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Sets up the ring for out, for chunks adding at most unit bytes each. 0, or -1 when out of
 * memory. */
static int ring_start(struct ring *r, FILE *out, size_t unit)
{
    memset(r, 0, sizeof *r);
    r->out = out;
    r->unit = unit;
    r->cap = unit * (unit < RING_BATCH ? RING_BATCH / unit : 1);
    r->fd = -1;
    r->mem = malloc(RING_SLOTS * r->cap);
    if (r->mem == NULL)
        return -1;
    int fd = fileno(out);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        /* The position of the next byte written: what the stream holds is written first. */
        off_t pos = ftello(out);
        if (pos >= 0) {
            r->fd = fd;
            r->start = pos;
        }
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0)
        return 0;
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        return 0;
    }
    if (pthread_create(&r->thread, NULL, ring_writer, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        return 0;
    }
    r->threaded = true;
    return 0;
}

/* Space for the next chunk (unit bytes), or NULL when a write failed (r->werr). */
static uint8_t *ring_acquire(struct ring *r)
{
    if (!r->threaded && r->failed)
        return NULL;
    if (r->cur == NULL) {
        unsigned slot = 0;
        if (r->threaded) {
            pthread_mutex_lock(&r->mu);
            while (!r->failed && r->produced - r->consumed >= RING_SLOTS) {
                r->producer_waits = true;
                pthread_cond_wait(&r->cv, &r->mu);
                r->producer_waits = false;
            }
            bool failed = r->failed;
            slot = (unsigned)(r->produced % RING_SLOTS);
            pthread_mutex_unlock(&r->mu);
            if (failed)
                return NULL;
        }
        r->cur = r->mem + (size_t)slot * r->cap;
        r->fill = 0;
    }
    return r->cur + r->fill;
}

/* Queues the slot being filled. */
static void ring_queue(struct ring *r)
{
    if (r->cur == NULL)
        return;
    size_t len = r->fill;
    r->cur = NULL;
    r->fill = 0;
    if (!r->threaded) {
        int e = r->failed ? 0 : ring_write(r, r->mem, len);
        if (e != 0) {
            r->failed = true;
            r->werr = e;
        }
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->len[r->produced % RING_SLOTS] = len;
    r->produced++;
    if (r->writer_waits)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Adds the len bytes written at the last ring_acquire to the output. */
static void ring_submit(struct ring *r, size_t len)
{
    r->fill += len;
    if (r->fill + r->unit > r->cap)
        ring_queue(r);
}

/* Ends the ring: writes everything submitted, stops the writer, wipes and frees the slots.
 * Returns 0, or the errno of a failed write. Safe to call twice. */
static int ring_end(struct ring *r)
{
    if (r->mem != NULL && r->fill > 0)
        ring_queue(r); /* ignored by a writer that failed */
    if (r->threaded) {
        pthread_mutex_lock(&r->mu);
        r->done = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        r->threaded = false;
    }
    if (r->mem != NULL) {
        mbedtls_platform_zeroize(r->mem, RING_SLOTS * r->cap);
        free(r->mem);
        r->mem = NULL;
    }
    return r->failed ? r->werr : 0;
}

/* ---- progress ------------------------------------------------------------------------------ */

#define PROGRESS_STEP ((uint64_t)1 << 20)

static filecrypt_progress_fn progress_fn;
static void *progress_ctx;

void filecrypt_set_progress(filecrypt_progress_fn fn, void *ctx)
{
    progress_fn = fn;
    progress_ctx = ctx;
}

struct progress {
    uint64_t total, last;
};

/* The input bytes of in from its position on, when it is a regular file. */
static void progress_init(struct progress *p, FILE *in)
{
    memset(p, 0, sizeof *p);
    if (progress_fn == NULL)
        return;
    int fd = fileno(in);
    struct stat st;
    off_t pos = ftello(in);
    if (fd >= 0 && pos >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > pos)
        p->total = (uint64_t)(st.st_size - pos);
}

static void progress_step(struct progress *p, uint64_t done, bool final)
{
    if (progress_fn != NULL && (final || done - p->last >= PROGRESS_STEP)) {
        p->last = done;
        progress_fn(progress_ctx, done, p->total);
    }
}

/* ---- header -------------------------------------------------------------------------------- */

static int parse_fixed(const uint8_t *b, size_t len, struct filecrypt_header *h, char *err,
                       size_t errlen)
{
    if (len == 0)
        return fail(err, errlen, FILECRYPT_E_FORMAT, "empty input: not an icdup encrypted file");
    if (len < 4 || memcmp(b, FILECRYPT_MAGIC, 4) != 0)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "not an icdup encrypted file (no \"ICDF\" magic at the start)");
    if (len < 5)
        return fail(err, errlen, FILECRYPT_E_FORMAT, "truncated header: no format version");
    if (b[4] != FILECRYPT_VERSION)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "unsupported file format version %u (this icdup reads version %u)", b[4],
                    FILECRYPT_VERSION);
    if (len < FILECRYPT_FIXED_LEN)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "truncated header: %zu of the %u bytes of the fixed header", len,
                    FILECRYPT_FIXED_LEN);
    if (b[5] < FILECRYPT_CHUNK_EXP_MIN || b[5] > FILECRYPT_CHUNK_EXP_MAX)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "corrupt header: chunk size exponent %u outside %u..%u", b[5],
                    FILECRYPT_CHUNK_EXP_MIN, FILECRYPT_CHUNK_EXP_MAX);
    if (b[6] < 1 || b[6] > FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "corrupt header: recipient count %u outside 1..%u", b[6],
                    FILECRYPT_MAX_RECIPIENTS);
    if (b[7] != 0)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "corrupt header: reserved byte 7 is %02X, not 00", b[7]);
    memset(h, 0, sizeof *h);
    memcpy(h->fixed, b, FILECRYPT_FIXED_LEN);
    h->version = b[4];
    h->chunk_exp = b[5];
    h->n = b[6];
    memcpy(h->file_id, b + 8, FILECRYPT_FILE_ID_LEN);
    mbedtls_sha256_ret(h->fixed, FILECRYPT_FIXED_LEN, h->hash, 0);
    return FILECRYPT_OK;
}

static void parse_entry(const uint8_t *b, struct filecrypt_entry *e)
{
    e->type = b[0];
    memcpy(e->key_id, b + 1, FILECRYPT_KEY_ID_LEN);
    memcpy(e->eph_pub, b + 9, FILECRYPT_POINT_LEN);
    memcpy(e->wrapped, b + 74, sizeof e->wrapped);
}

static void encode_entry(const struct filecrypt_entry *e, uint8_t *b)
{
    b[0] = e->type;
    memcpy(b + 1, e->key_id, FILECRYPT_KEY_ID_LEN);
    memcpy(b + 9, e->eph_pub, FILECRYPT_POINT_LEN);
    memcpy(b + 74, e->wrapped, sizeof e->wrapped);
}

int filecrypt_header_parse(const uint8_t *buf, size_t len, struct filecrypt_header *h,
                           size_t *used, char *err, size_t errlen)
{
    struct filecrypt_header t;
    int rc = parse_fixed(buf, len, &t, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;
    size_t need = filecrypt_header_len(&t);
    if (len < need)
        return fail(err, errlen, FILECRYPT_E_FORMAT,
                    "truncated header: the recipient table of %u entries needs %zu bytes, "
                    "only %zu are there",
                    t.n, need - FILECRYPT_FIXED_LEN, len - FILECRYPT_FIXED_LEN);
    for (unsigned i = 0; i < t.n; i++)
        parse_entry(buf + FILECRYPT_FIXED_LEN + (size_t)i * FILECRYPT_ENTRY_LEN, &t.entry[i]);
    *h = t;
    if (used != NULL)
        *used = need;
    return FILECRYPT_OK;
}

int filecrypt_header_encode(const struct filecrypt_header *h, uint8_t *out, size_t cap,
                            size_t *len, char *err, size_t errlen)
{
    if (h->n < 1 || h->n > FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_ARG, "recipient count %u outside 1..%u", h->n,
                    FILECRYPT_MAX_RECIPIENTS);
    size_t need = filecrypt_header_len(h);
    if (cap < need)
        return fail(err, errlen, FILECRYPT_E_ARG, "header buffer too small");
    memcpy(out, h->fixed, FILECRYPT_FIXED_LEN);
    for (unsigned i = 0; i < h->n; i++)
        encode_entry(&h->entry[i], out + FILECRYPT_FIXED_LEN + (size_t)i * FILECRYPT_ENTRY_LEN);
    *len = need;
    return FILECRYPT_OK;
}

int filecrypt_read_header(FILE *in, struct filecrypt_header *h, char *err, size_t errlen)
{
    uint8_t buf[FILECRYPT_HEADER_MAX];
    size_t got = read_full(in, buf, FILECRYPT_FIXED_LEN);
    if (ferror(in))
        return fail(err, errlen, FILECRYPT_E_IO, "cannot read the header: %s", strerror(errno));
    struct filecrypt_header t;
    int rc = parse_fixed(buf, got, &t, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;
    size_t table = filecrypt_header_len(&t) - FILECRYPT_FIXED_LEN;
    got = read_full(in, buf + FILECRYPT_FIXED_LEN, table);
    if (ferror(in))
        return fail(err, errlen, FILECRYPT_E_IO, "cannot read the header: %s", strerror(errno));
    return filecrypt_header_parse(buf, FILECRYPT_FIXED_LEN + got, h, NULL, err, errlen);
}

int filecrypt_write_header(FILE *out, const struct filecrypt_header *h, char *err,
                           size_t errlen)
{
    uint8_t buf[FILECRYPT_HEADER_MAX];
    size_t len = 0;
    int rc = filecrypt_header_encode(h, buf, sizeof buf, &len, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;
    if (fwrite(buf, 1, len, out) != len)
        return fail(err, errlen, FILECRYPT_E_IO, "cannot write the header: %s",
                    strerror(errno));
    return FILECRYPT_OK;
}

/* ---- wrapping the content key ---------------------------------------------------------------- */

/* Fills entry e for recipient pub with the ephemeral private key eph: e's point, key id and
 * the CEK wrapped under the KWK, with the fixed header as additional data. */
static int wrap_entry(const struct filecrypt_header *h, const uint8_t cek[32],
                      const uint8_t pub[65], const uint8_t eph[32], struct filecrypt_entry *e,
                      char *err, size_t errlen)
{
    static const uint8_t zero_nonce[12] = { 0 };
    uint8_t x[32], kwk[32];
    int rc = FILECRYPT_OK;
    memset(e, 0, sizeof *e);
    e->type = FILECRYPT_TYPE_P256_ECDH;
    filecrypt_key_id(pub, e->key_id);
    if (ec_public_from_private(eph, e->eph_pub) != CARD_OK) {
        rc = fail(err, errlen, FILECRYPT_E_ARG, "invalid ephemeral private key");
        goto out;
    }
    if (ec_ecdh(eph, pub, x) != CARD_OK) {
        rc = fail(err, errlen, FILECRYPT_E_ARG, "ECDH with a recipient's key failed");
        goto out;
    }
    if (filecrypt_derive_kwk(x, e->eph_pub, pub, kwk) != FILECRYPT_OK) {
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "key derivation failed");
        goto out;
    }
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, kwk, 256);
    if (ret == 0)
        ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, 32, zero_nonce,
                                        sizeof zero_nonce, h->fixed, FILECRYPT_FIXED_LEN, cek,
                                        e->wrapped, FILECRYPT_TAG_LEN, e->wrapped + 32);
    mbedtls_gcm_free(&gcm);
    if (ret != 0)
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "wrapping the content key failed");
out:
    mbedtls_platform_zeroize(x, sizeof x);
    mbedtls_platform_zeroize(kwk, sizeof kwk);
    return rc;
}

int filecrypt_open_with(const struct filecrypt_header *h, unsigned index,
                        const uint8_t shared_x[32], const uint8_t recipient_pub[65],
                        uint8_t cek[32], char *err, size_t errlen)
{
    static const uint8_t zero_nonce[12] = { 0 };
    if (index >= h->n || index >= FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_ARG, "recipient %u does not exist (the file has %u)",
                    index + 1, h->n);
    const struct filecrypt_entry *e = &h->entry[index];
    if (e->type != FILECRYPT_TYPE_P256_ECDH)
        return fail(err, errlen, FILECRYPT_E_ARG,
                    "recipient entry %u has the unknown type %02X", index + 1, e->type);
    uint8_t id[FILECRYPT_KEY_ID_LEN];
    filecrypt_key_id(recipient_pub, id);
    if (memcmp(id, e->key_id, sizeof id) != 0)
        return fail(err, errlen, FILECRYPT_E_ARG,
                    "recipient entry %u is for another key than the one given", index + 1);
    uint8_t kwk[32], out[32];
    int rc = FILECRYPT_OK;
    if (filecrypt_derive_kwk(shared_x, e->eph_pub, recipient_pub, kwk) != FILECRYPT_OK) {
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "key derivation failed");
        goto out;
    }
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, kwk, 256);
    if (ret != 0) {
        mbedtls_gcm_free(&gcm);
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM key setup failed");
        goto out;
    }
    ret = mbedtls_gcm_auth_decrypt(&gcm, 32, zero_nonce, sizeof zero_nonce, h->fixed,
                                   FILECRYPT_FIXED_LEN, e->wrapped + 32, FILECRYPT_TAG_LEN,
                                   e->wrapped, out);
    mbedtls_gcm_free(&gcm);
    if (ret == MBEDTLS_ERR_GCM_AUTH_FAILED)
        rc = fail(err, errlen, FILECRYPT_E_KEY,
                  "the content key does not unwrap for recipient %u: the file header or this "
                  "recipient entry was modified",
                  index + 1);
    else if (ret != 0)
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM failed");
    else
        memcpy(cek, out, 32);
out:
    mbedtls_platform_zeroize(kwk, sizeof kwk);
    mbedtls_platform_zeroize(out, sizeof out);
    return rc;
}

/* ---- encryption -------------------------------------------------------------------------- */

static int check_recipients(const uint8_t (*recipients)[65], unsigned n, char *err,
                            size_t errlen)
{
    if (recipients == NULL || n < 1 || n > FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_ARG, "%u recipients: between 1 and %u are allowed",
                    recipients == NULL ? 0 : n, FILECRYPT_MAX_RECIPIENTS);
    uint8_t ids[FILECRYPT_MAX_RECIPIENTS][FILECRYPT_KEY_ID_LEN];
    for (unsigned i = 0; i < n; i++) {
        if (ec_check_point(recipients[i]) != CARD_OK)
            return fail(err, errlen, FILECRYPT_E_ARG,
                        "recipient %u: not a valid P-256 public point", i + 1);
        filecrypt_key_id(recipients[i], ids[i]);
        for (unsigned j = 0; j < i; j++)
            if (memcmp(ids[i], ids[j], FILECRYPT_KEY_ID_LEN) == 0)
                return fail(err, errlen, FILECRYPT_E_ARG,
                            "recipients %u and %u are the same key", j + 1, i + 1);
    }
    return FILECRYPT_OK;
}

int filecrypt_encrypt_with(FILE *in, FILE *out, const uint8_t (*recipients)[65], unsigned n,
                           unsigned chunk_exp, const struct filecrypt_randoms *rnd,
                           uint64_t *plain_len, char *err, size_t errlen)
{
    if (plain_len != NULL)
        *plain_len = 0;
    if (in == NULL || out == NULL || rnd == NULL)
        return fail(err, errlen, FILECRYPT_E_ARG, "missing input, output or random inputs");
    if (chunk_exp < FILECRYPT_CHUNK_EXP_MIN || chunk_exp > FILECRYPT_CHUNK_EXP_MAX)
        return fail(err, errlen, FILECRYPT_E_ARG,
                    "chunk size exponent %u outside %u..%u (1 KiB .. 1 MiB)", chunk_exp,
                    FILECRYPT_CHUNK_EXP_MIN, FILECRYPT_CHUNK_EXP_MAX);
    int rc = check_recipients(recipients, n, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;

    struct filecrypt_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.fixed, FILECRYPT_MAGIC, 4);
    h.fixed[4] = FILECRYPT_VERSION;
    h.fixed[5] = (uint8_t)chunk_exp;
    h.fixed[6] = (uint8_t)n;
    h.fixed[7] = 0;
    memcpy(h.fixed + 8, rnd->file_id, FILECRYPT_FILE_ID_LEN);
    h.version = FILECRYPT_VERSION;
    h.chunk_exp = chunk_exp;
    h.n = n;
    memcpy(h.file_id, rnd->file_id, FILECRYPT_FILE_ID_LEN);
    mbedtls_sha256_ret(h.fixed, FILECRYPT_FIXED_LEN, h.hash, 0);
    for (unsigned i = 0; i < n; i++) {
        rc = wrap_entry(&h, rnd->cek, recipients[i], rnd->eph_priv[i], &h.entry[i], err, errlen);
        if (rc != FILECRYPT_OK)
            return rc;
    }
    rc = filecrypt_write_header(out, &h, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;

    size_t chunk = (size_t)1 << chunk_exp;
    struct ring ring;
    if (ring_start(&ring, out, chunk + FILECRYPT_TAG_LEN) != 0)
        return fail(err, errlen, FILECRYPT_E_CRYPTO, "out of memory for a %zu-byte chunk", chunk);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, rnd->cek, 256) != 0) {
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM key setup failed");
        goto out;
    }
    struct progress prog;
    progress_init(&prog, in);
    uint64_t total = 0;
    for (uint64_t index = 0;; index++) {
        uint8_t *buf = ring_acquire(&ring);
        if (buf == NULL) {
            rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s",
                      strerror(ring.werr));
            goto out;
        }
        size_t got = read_full(in, buf, chunk);
        if (ferror(in)) {
            rc = fail(err, errlen, FILECRYPT_E_IO, "cannot read the input: %s", strerror(errno));
            goto out;
        }
        bool final = got < chunk;
        if (!final) {
            int e = at_eof(in);
            if (e < 0) {
                rc = fail(err, errlen, FILECRYPT_E_IO, "cannot read the input: %s",
                          strerror(errno));
                goto out;
            }
            final = e == 1;
        }
        uint8_t nonce[CHUNK_NONCE_LEN], aad[CHUNK_AAD_LEN];
        chunk_nonce(&h, index, nonce);
        chunk_aad(&h, final, aad);
        if (mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, got, nonce, sizeof nonce, aad,
                                      sizeof aad, buf, buf, FILECRYPT_TAG_LEN, buf + got) != 0) {
            rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM failed on chunk %llu",
                      (unsigned long long)index);
            goto out;
        }
        ring_submit(&ring, got + FILECRYPT_TAG_LEN);
        total += got;
        progress_step(&prog, total, final);
        if (final)
            break;
    }
    int werr = ring_end(&ring);
    if (werr != 0) {
        rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s", strerror(werr));
        goto out;
    }
    if (fflush(out) != 0 || ferror(out)) {
        rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s", strerror(errno));
        goto out;
    }
    if (plain_len != NULL)
        *plain_len = total;
out:
    ring_end(&ring);
    mbedtls_gcm_free(&gcm);
    return rc;
}

/* Draws the random inputs for n recipients. */
static int draw_randoms(struct filecrypt_randoms *rnd, unsigned n, const char *pers, char *err,
                        size_t errlen)
{
    mbedtls_ctr_drbg_context drbg;
    if (rng_drbg_seed(&drbg, pers) != 0)
        return fail(err, errlen, FILECRYPT_E_RNG,
                    "cannot seed the random generator from getrandom");
    int rc = FILECRYPT_OK;
    if (mbedtls_ctr_drbg_random(&drbg, rnd->cek, sizeof rnd->cek) != 0 ||
        mbedtls_ctr_drbg_random(&drbg, rnd->file_id, sizeof rnd->file_id) != 0)
        rc = fail(err, errlen, FILECRYPT_E_RNG, "the random generator failed");
    for (unsigned i = 0; rc == FILECRYPT_OK && i < n && i < FILECRYPT_MAX_RECIPIENTS; i++) {
        uint8_t pub[65];
        if (ec_keygen(mbedtls_ctr_drbg_random, &drbg, rnd->eph_priv[i], pub) != CARD_OK)
            rc = fail(err, errlen, FILECRYPT_E_RNG, "ephemeral key generation failed");
    }
    mbedtls_ctr_drbg_free(&drbg);
    return rc;
}

int filecrypt_encrypt(FILE *in, FILE *out, const uint8_t (*recipients)[65], unsigned n,
                      unsigned chunk_exp, uint64_t *plain_len, char *err, size_t errlen)
{
    if (plain_len != NULL)
        *plain_len = 0;
    int rc = check_recipients(recipients, n, err, errlen);
    if (rc != FILECRYPT_OK)
        return rc;
    struct filecrypt_randoms rnd;
    memset(&rnd, 0, sizeof rnd);
    rc = draw_randoms(&rnd, n, "icdup file encrypt v1", err, errlen);
    if (rc == FILECRYPT_OK)
        rc = filecrypt_encrypt_with(in, out, recipients, n, chunk_exp, &rnd, plain_len, err,
                                    errlen);
    mbedtls_platform_zeroize(&rnd, sizeof rnd);
    return rc;
}

/* ---- decryption -------------------------------------------------------------------------- */

/* Tries chunk `index` with final flag `final`: ct (len bytes, tag after it) into pt. Returns
 * 0 when authentic, 1 when not, -1 on another failure. */
static int open_chunk(mbedtls_gcm_context *gcm, const struct filecrypt_header *h, uint64_t index,
                      bool final, const uint8_t *ct, size_t len, uint8_t *pt)
{
    uint8_t nonce[CHUNK_NONCE_LEN], aad[CHUNK_AAD_LEN];
    chunk_nonce(h, index, nonce);
    chunk_aad(h, final, aad);
    int ret = mbedtls_gcm_auth_decrypt(gcm, len, nonce, sizeof nonce, aad, sizeof aad,
                                       ct + len, FILECRYPT_TAG_LEN, ct, pt);
    if (ret == 0)
        return 0;
    mbedtls_platform_zeroize(pt, len);
    return ret == MBEDTLS_ERR_GCM_AUTH_FAILED ? 1 : -1;
}

int filecrypt_decrypt_body(FILE *in, FILE *out, const struct filecrypt_header *h,
                           const uint8_t cek[32], uint64_t *plain_len, char *err,
                           size_t errlen)
{
    if (plain_len != NULL)
        *plain_len = 0;
    if (in == NULL || out == NULL || h == NULL || cek == NULL ||
        h->chunk_exp < FILECRYPT_CHUNK_EXP_MIN || h->chunk_exp > FILECRYPT_CHUNK_EXP_MAX)
        return fail(err, errlen, FILECRYPT_E_ARG, "bad arguments to decrypt");
    size_t chunk = filecrypt_chunk_len(h), rec = chunk + FILECRYPT_TAG_LEN;
    /* The ciphertext record is read into its own buffer and opened into a slot of the output
     * ring: GCM decryption may not run in place, and the record must survive a failed attempt
     * for the diagnosis below. */
    uint8_t *ct = malloc(rec);
    if (ct == NULL)
        return fail(err, errlen, FILECRYPT_E_CRYPTO, "out of memory for a %zu-byte chunk", chunk);
    struct ring ring;
    if (ring_start(&ring, out, chunk) != 0) {
        free(ct);
        return fail(err, errlen, FILECRYPT_E_CRYPTO, "out of memory for a %zu-byte chunk", chunk);
    }
    int rc = FILECRYPT_OK;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, cek, 256) != 0) {
        rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM key setup failed");
        goto out;
    }
    struct progress prog;
    progress_init(&prog, in);
    uint64_t total = 0, consumed = 0;
    for (uint64_t index = 0;; index++) {
        size_t got = read_full(in, ct, rec);
        if (ferror(in)) {
            rc = fail(err, errlen, FILECRYPT_E_IO, "cannot read the input: %s", strerror(errno));
            goto out;
        }
        if (got == 0) {
            /* Only possible for the first chunk: a later read follows a peek that saw data. */
            rc = fail(err, errlen, FILECRYPT_E_TRUNCATED,
                      "truncated file: no chunk after the header (even an empty file has one)");
            goto out;
        }
        if (got < FILECRYPT_TAG_LEN) {
            rc = fail(err, errlen, FILECRYPT_E_TRUNCATED,
                      "truncated file: chunk %llu is %zu bytes, shorter than its 16-byte tag",
                      (unsigned long long)index, got);
            goto out;
        }
        bool final = got < rec;
        if (!final) {
            int e = at_eof(in);
            if (e < 0) {
                rc = fail(err, errlen, FILECRYPT_E_IO, "cannot read the input: %s",
                          strerror(errno));
                goto out;
            }
            final = e == 1;
        }
        uint8_t *pt = ring_acquire(&ring);
        if (pt == NULL) {
            rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s",
                      strerror(ring.werr));
            goto out;
        }
        size_t len = got - FILECRYPT_TAG_LEN;
        int v = open_chunk(&gcm, h, index, final, ct, len, pt);
        if (v < 0) {
            rc = fail(err, errlen, FILECRYPT_E_CRYPTO, "AES-GCM failed on chunk %llu",
                      (unsigned long long)index);
            goto out;
        }
        if (v == 1) {
            /* Diagnosis only: is the chunk authentic with the other final flag? Then the chunks
             * themselves are intact and the file was cut or extended at a chunk boundary. */
            int w = open_chunk(&gcm, h, index, !final, ct, len, pt);
            mbedtls_platform_zeroize(pt, len);
            if (w == 0 && final)
                rc = fail(err, errlen, FILECRYPT_E_TRUNCATED,
                          "truncated file: it ends after chunk %llu, which is not the final "
                          "chunk",
                          (unsigned long long)index);
            else if (w == 0)
                rc = fail(err, errlen, FILECRYPT_E_TRAILING,
                          "data after the final chunk (chunk %llu): bytes were appended to the "
                          "file",
                          (unsigned long long)index);
            else
                rc = fail(err, errlen, FILECRYPT_E_CORRUPT,
                          "chunk %llu failed authentication: the file was modified, truncated, "
                          "extended or its chunks reordered",
                          (unsigned long long)index);
            goto out;
        }
        ring_submit(&ring, len);
        total += len;
        consumed += got;
        progress_step(&prog, consumed, final);
        if (final)
            break;
    }
    int werr = ring_end(&ring);
    if (werr != 0) {
        rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s", strerror(werr));
        goto out;
    }
    if (fflush(out) != 0 || ferror(out)) {
        rc = fail(err, errlen, FILECRYPT_E_IO, "cannot write the output: %s", strerror(errno));
        goto out;
    }
    if (plain_len != NULL)
        *plain_len = total;
out:
    /* On an error the chunks already queued (authentic ones) are still written, as they were
     * before the failure was found. */
    ring_end(&ring);
    mbedtls_gcm_free(&gcm);
    mbedtls_platform_zeroize(ct, rec);
    free(ct);
    return rc;
}

/* ---- recovery ------------------------------------------------------------------------------ */

int filecrypt_rewrap_with(const struct filecrypt_header *h, const uint8_t cek[32],
                          const uint8_t old_key_id[FILECRYPT_KEY_ID_LEN],
                          const uint8_t new_pub[65], const uint8_t (*eph_priv)[32],
                          struct filecrypt_header *out, unsigned *replaced, char *err,
                          size_t errlen)
{
    if (replaced != NULL)
        *replaced = 0;
    if (h == NULL || cek == NULL || old_key_id == NULL || new_pub == NULL || eph_priv == NULL ||
        out == NULL || h->n < 1 || h->n > FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_ARG, "bad arguments to rewrap");
    if (ec_check_point(new_pub) != CARD_OK)
        return fail(err, errlen, FILECRYPT_E_ARG, "the new key is not a valid P-256 point");
    uint8_t new_id[FILECRYPT_KEY_ID_LEN];
    filecrypt_key_id(new_pub, new_id);
    if (filecrypt_find(h, new_id) >= 0)
        return fail(err, errlen, FILECRYPT_E_ARG, "the new key is already a recipient");
    if (filecrypt_find(h, old_key_id) < 0)
        return fail(err, errlen, FILECRYPT_E_NOT_RECIPIENT,
                    "the key to replace is not a recipient of the file");
    struct filecrypt_header t = *h;
    unsigned k = 0;
    for (unsigned i = 0; i < h->n; i++) {
        const struct filecrypt_entry *e = &h->entry[i];
        if (e->type != FILECRYPT_TYPE_P256_ECDH ||
            memcmp(e->key_id, old_key_id, FILECRYPT_KEY_ID_LEN) != 0)
            continue;
        int rc = wrap_entry(h, cek, new_pub, eph_priv[k], &t.entry[i], err, errlen);
        if (rc != FILECRYPT_OK)
            return rc;
        k++;
    }
    *out = t;
    if (replaced != NULL)
        *replaced = k;
    return FILECRYPT_OK;
}

int filecrypt_rewrap(const struct filecrypt_header *h, const uint8_t cek[32],
                     const uint8_t old_key_id[FILECRYPT_KEY_ID_LEN], const uint8_t new_pub[65],
                     struct filecrypt_header *out, unsigned *replaced, char *err,
                     size_t errlen)
{
    if (replaced != NULL)
        *replaced = 0;
    if (h == NULL || h->n < 1 || h->n > FILECRYPT_MAX_RECIPIENTS)
        return fail(err, errlen, FILECRYPT_E_ARG, "bad arguments to rewrap");
    struct filecrypt_randoms rnd;
    memset(&rnd, 0, sizeof rnd);
    int rc = draw_randoms(&rnd, h->n, "icdup file rewrap v1", err, errlen);
    if (rc == FILECRYPT_OK)
        rc = filecrypt_rewrap_with(h, cek, old_key_id, new_pub,
                                   (const uint8_t(*)[32])rnd.eph_priv, out, replaced, err,
                                   errlen);
    mbedtls_platform_zeroize(&rnd, sizeof rnd);
    return rc;
}

/* ---- paths --------------------------------------------------------------------------------- */

int filecrypt_encrypt_path(const char *in_path, const char *out_path,
                           const uint8_t (*recipients)[65], unsigned n, unsigned chunk_exp,
                           uint64_t *plain_len, char *err, size_t errlen)
{
    if (in_path == NULL || out_path == NULL)
        return fail(err, errlen, FILECRYPT_E_ARG, "missing input or output path");
    bool in_std = strcmp(in_path, "-") == 0, out_std = strcmp(out_path, "-") == 0;
    FILE *in = in_std ? stdin : fopen(in_path, "rb");
    if (in == NULL)
        return fail(err, errlen, FILECRYPT_E_IO, "cannot open %s: %s", in_path, strerror(errno));
    char msg[512];
    int rc;
    if (out_std) {
        rc = filecrypt_encrypt(in, stdout, recipients, n, chunk_exp, plain_len, msg, sizeof msg);
    } else {
        struct atomic_file a;
        if (atomic_file_open(&a, out_path, -1, msg, sizeof msg) != 0) {
            rc = FILECRYPT_E_IO;
        } else {
            rc = filecrypt_encrypt(in, a.f, recipients, n, chunk_exp, plain_len, msg,
                                   sizeof msg);
            if (rc == FILECRYPT_OK && atomic_file_commit(&a, msg, sizeof msg) != 0)
                rc = FILECRYPT_E_IO;
            atomic_file_abort(&a);
        }
    }
    if (!in_std)
        fclose(in);
    if (rc != FILECRYPT_OK)
        fail(err, errlen, rc, "%s: %s", in_std ? "standard input" : in_path, msg);
    return rc;
}

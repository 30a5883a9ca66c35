/* Recovery of encrypted data files with the backup card. See recover.h. */
#include "recover.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/platform_util.h>

#include "atomicfile.h"
#include "card_ops.h"
#include "dup.h"
#include "filecard.h"
#include "filecrypt.h"
#include "hex.h"
#include "ins.h"

#define COPY_BUF 65536u

const char *recover_status_name(enum recover_status s)
{
    switch (s) {
    case RECOVER_PENDING: return "not attempted";
    case RECOVER_DONE: return "done";
    case RECOVER_SKIPPED: return "skipped";
    case RECOVER_FAILED: return "failed";
    }
    return "unknown";
}

static void set_reason(struct recover_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static int failf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

static int equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

struct run {
    const struct recover_options *o;
    struct cardop bk, nw;
    uint8_t bk_pub[65], nw_pub[65];
    uint8_t bk_id[8], nw_id[8];
    uint8_t *copy; /* COPY_BUF bytes */
};

/* Copies the rest of in to out. Returns 0, or -1 with a message. */
static int copy_rest(struct run *x, FILE *in, FILE *out, char *msg, size_t msglen)
{
    for (;;) {
        size_t n = fread(x->copy, 1, COPY_BUF, in);
        if (n > 0 && fwrite(x->copy, 1, n, out) != n) {
            snprintf(msg, msglen, "cannot write the new file: %s", strerror(errno));
            return -1;
        }
        if (n < COPY_BUF) {
            if (ferror(in)) {
                snprintf(msg, msglen, "cannot read the file: %s", strerror(errno));
                return -1;
            }
            if (feof(in))
                return 0;
        }
    }
}

/* One file. Returns 0, or -1 when the run must stop (a card refused or was lost): the file is
 * then marked failed with the card's message. */
static int recover_one(struct run *x, const char *path, struct recover_result *r)
{
    char msg[RECOVER_REASON_LEN];
    char *real = realpath(path, NULL);
    if (real == NULL) {
        r->status = RECOVER_FAILED;
        set_reason(r, "cannot open: %s", strerror(errno));
        return 0;
    }
    int stop = 0;
    FILE *in = NULL;
    uint8_t cek[32], cek2[32];
    struct filecrypt_header h, nh;
    struct atomic_file a;
    memset(&a, 0, sizeof a);
    r->status = RECOVER_FAILED;

    if (atomic_file_clean_stale(real, &r->stale_removed, msg, sizeof msg) != 0) {
        set_reason(r, "%s", msg);
        goto out;
    }
    in = fopen(real, "rb");
    struct stat st;
    if (in == NULL || fstat(fileno(in), &st) != 0) {
        set_reason(r, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_reason(r, "not a regular file");
        goto out;
    }
    if (filecrypt_read_header(in, &h, msg, sizeof msg) != FILECRYPT_OK) {
        set_reason(r, "%s", msg);
        goto out;
    }
    if (filecrypt_find(&h, x->nw_id) >= 0) {
        r->status = RECOVER_SKIPPED;
        set_reason(r, "already protected for the new card");
        goto out;
    }
    if (filecrypt_find(&h, x->bk_id) < 0) {
        char hx[17];
        hex_encode(x->bk_id, 8, 0, hx, sizeof hx);
        set_reason(r, "not encrypted to the backup card's key (key id %s): nothing to recover "
                   "with this backup", hx);
        goto out;
    }
    int rc = filecard_open(&x->bk, x->bk_pub, &h, cek, msg, sizeof msg);
    if (rc != FILECRYPT_OK) {
        set_reason(r, "%s", msg);
        if (rc == FILECRYPT_E_CARD)
            stop = -1;
        goto out;
    }
    if (filecrypt_rewrap(&h, cek, x->bk_id, x->nw_pub, &nh, &r->replaced, msg, sizeof msg) !=
        FILECRYPT_OK) {
        set_reason(r, "%s", msg);
        goto out;
    }
    if (x->o->new_pin != NULL) {
        rc = filecard_open(&x->nw, x->nw_pub, &nh, cek2, msg, sizeof msg);
        if (rc != FILECRYPT_OK || !equal_ct(cek, cek2, sizeof cek)) {
            set_reason(r, "the new card does not open the rewrapped key: %s",
                       rc != FILECRYPT_OK ? msg : "it opens to another key");
            if (rc == FILECRYPT_E_CARD)
                stop = -1;
            goto out;
        }
    }
    if (atomic_file_open(&a, real, (int)(st.st_mode & 07777), msg, sizeof msg) != 0) {
        set_reason(r, "%s", msg);
        goto out;
    }
    if (filecrypt_write_header(a.f, &nh, msg, sizeof msg) != FILECRYPT_OK ||
        copy_rest(x, in, a.f, msg, sizeof msg) != 0) {
        set_reason(r, "%s", msg);
        goto out;
    }
    if (atomic_file_commit(&a, msg, sizeof msg) != 0) {
        set_reason(r, "%s", msg);
        goto out;
    }
    r->status = RECOVER_DONE;
    r->reason[0] = '\0';
out:
    atomic_file_abort(&a);
    if (in != NULL)
        fclose(in);
    mbedtls_platform_zeroize(cek, sizeof cek);
    mbedtls_platform_zeroize(cek2, sizeof cek2);
    free(real);
    return stop;
}

int recover_files(struct transport *backup, struct transport *fresh, const char *const *paths,
                  size_t n, const struct recover_options *o, struct recover_result *results,
                  struct recover_summary *sum, char *err, size_t errlen)
{
    struct recover_summary s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; results != NULL && i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        set_reason(&results[i], "not attempted");
    }
    s.pending = n;
    int rc = RECOVER_OK;
    struct run x;
    memset(&x, 0, sizeof x);
    x.o = o;
    if (backup == NULL || fresh == NULL || o == NULL || results == NULL ||
        (n > 0 && paths == NULL)) {
        rc = failf(err, errlen, RECOVER_E_ARG, "recover: bad arguments");
        goto out;
    }
    if (o->backup_pin == NULL || o->backup_pin->len == 0) {
        rc = failf(err, errlen, RECOVER_E_ARG, "recover: the backup card's user PIN is needed");
        goto out;
    }
    cardop_init(&x.bk, backup, "backup");
    cardop_init(&x.nw, fresh, "new card");
    if (cardop_read_pubkey(&x.bk, x.bk_pub) != 0) {
        rc = failf(err, errlen, RECOVER_E_CARD, "%s; no file was changed", x.bk.err);
        goto out;
    }
    if (cardop_read_pubkey(&x.nw, x.nw_pub) != 0) {
        rc = failf(err, errlen, RECOVER_E_CARD, "%s; no file was changed", x.nw.err);
        goto out;
    }
    filecrypt_key_id(x.bk_pub, x.bk_id);
    filecrypt_key_id(x.nw_pub, x.nw_id);
    memcpy(s.backup_key_id, x.bk_id, 8);
    memcpy(s.new_key_id, x.nw_id, 8);
    if (memcmp(x.bk_pub, x.nw_pub, 65) == 0) {
        rc = failf(err, errlen, RECOVER_E_SAME_KEY,
                   "the new card holds the same key as the backup card: its files open with it "
                   "already; recovery needs a new card with a key of its own (icdup keys "
                   "generate)");
        goto out;
    }
    if (cardop_verify(&x.bk, PIN_REF_USER, o->backup_pin->v, o->backup_pin->len) != 0) {
        rc = failf(err, errlen, RECOVER_E_CARD, "%s; no file was changed", x.bk.err);
        goto out;
    }
    if (o->new_pin != NULL) {
        if (cardop_verify(&x.nw, PIN_REF_USER, o->new_pin->v, o->new_pin->len) != 0) {
            rc = failf(err, errlen, RECOVER_E_CARD, "%s; no file was changed", x.nw.err);
            goto out;
        }
        char perr[512];
        int prc = dup_prove(&x.nw, x.nw_pub, perr, sizeof perr);
        if (prc != DUP_OK) {
            rc = failf(err, errlen, prc == DUP_E_CARD ? RECOVER_E_CARD : RECOVER_E_PROOF,
                       "new card: %s; no file was changed", perr);
            goto out;
        }
        s.proved = true;
    }
    x.copy = malloc(COPY_BUF);
    if (x.copy == NULL) {
        rc = failf(err, errlen, RECOVER_E_ARG, "recover: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct recover_result *r = &results[i];
        r->reason[0] = '\0';
        int stop = recover_one(&x, paths[i], r);
        s.pending--;
        s.stale_removed += r->stale_removed;
        if (r->status == RECOVER_DONE)
            s.done++;
        else if (r->status == RECOVER_SKIPPED)
            s.skipped++;
        else
            s.failed++;
        if (o->progress != NULL)
            o->progress(o->progress_ctx, i, n, paths[i], r);
        if (stop != 0) {
            for (size_t j = i + 1; j < n; j++)
                set_reason(&results[j], "not attempted: the run stopped at %s", paths[i]);
            rc = failf(err, errlen, RECOVER_E_CARD,
                       "stopped at %s: %s; %zu files done, %zu skipped, the %zu not reached are "
                       "unchanged: rerun to continue",
                       paths[i], r->reason, s.done, s.skipped, s.pending);
            goto out;
        }
    }
    if (s.failed > 0)
        rc = failf(err, errlen, RECOVER_E_FILES,
                   "%zu of %zu files failed (unchanged); %zu done, %zu skipped", s.failed, n,
                   s.done, s.skipped);
out:
    free(x.copy);
    s.apdus_backup = x.bk.apdus;
    s.apdus_new = x.nw.apdus;
    if (sum != NULL)
        *sum = s;
    return rc;
}

/* Recovery of encrypted data files (host/recover.c) on simulated cards: A is the original (key
 * generated in the card), B its backup (clone of A, host/dup.c), C the new original with a key
 * of its own. Files encrypted to A are recovered with B to C:
 *   - 100 files, with a partner's key on some, plus files that cannot be recovered: all 100
 *     open with C afterwards and no longer with A's key, the partner still opens its files,
 *     the failures are unchanged, modes are kept, a rerun skips everything;
 *   - the recovery killed (SIGKILL, in a child process) after it replaced some files, then
 *     rerun: none lost, all 100 open with C, stale temporary files removed;
 *   - with the new card's PIN: the proof and the per-file check (one PSO on each card);
 *   - refusals before any change (wrong PIN, the new card holding the backup's key) and a
 *     backup card lost in the middle (the run stops, the rest untouched, a rerun finishes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "card_err.h"
#include "card_ops.h"
#include "ec.h"
#include "filecard.h"
#include "filecrypt.h"
#include "ins.h"
#include "recover.h"
#include "rng.h"

#include "file_env.h"

#define NFILES 100

struct g {
    char dir[64];
    char uri_a[160], uri_b[160], uri_c[160], state[128];
    uint8_t pub_a[65], pub_c[65];
    uint8_t id_a[8], id_c[8];
    uint8_t p_priv[32], p_pub[65];
};

static int group_setup(void **state)
{
    struct g *g = calloc(1, sizeof *g);
    assert_non_null(g);
    *state = g;
    snprintf(g->dir, sizeof g->dir, "/tmp/icdup-test-recover-XXXXXX");
    assert_non_null(mkdtemp(g->dir));
    snprintf(g->uri_a, sizeof g->uri_a, "sim:%s/a.nvm", g->dir);
    snprintf(g->uri_b, sizeof g->uri_b, "sim:%s/b.nvm", g->dir);
    snprintf(g->uri_c, sizeof g->uri_c, "sim:%s/c.nvm", g->dir);
    snprintf(g->state, sizeof g->state, "%s/state", g->dir);
    fe_init_card(g->uri_a);
    fe_init_card(g->uri_b);
    fe_init_card(g->uri_c);
    fe_clone(g->uri_a, g->uri_b, g->state, g->pub_a);
    fe_generate(g->uri_c, g->pub_c);
    filecrypt_key_id(g->pub_a, g->id_a);
    filecrypt_key_id(g->pub_c, g->id_c);
    mbedtls_ctr_drbg_context drbg;
    assert_int_equal(rng_drbg_seed(&drbg, "test partner"), 0);
    assert_int_equal(ec_keygen(mbedtls_ctr_drbg_random, &drbg, g->p_priv, g->p_pub), CARD_OK);
    mbedtls_ctr_drbg_free(&drbg);
    return 0;
}

static int group_teardown(void **state)
{
    struct g *g = *state;
    if (g == NULL)
        return 0;
    fe_rm_dir(g->dir);
    free(g);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

struct set {
    char dir[128];
    char *paths[NFILES + 8];
    size_t n;             /* recoverable files: paths[0 .. n) */
    size_t extra;         /* unrecoverable ones after them */
    uint8_t *pt[NFILES];
    size_t len[NFILES];
    bool partner[NFILES];
};

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void encrypt_to(const char *path, const uint8_t *pt, size_t n, const uint8_t (*rcpt)[65],
                       unsigned nr)
{
    char plain[256], err[512];
    snprintf(plain, sizeof plain, "%s.plain", path);
    fe_write_file(plain, pt, n);
    if (filecrypt_encrypt_path(plain, path, rcpt, nr, 10, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    unlink(plain);
}

/* n files encrypted to A (every 7th also to the partner, first or second), in DIR/name. */
static void make_set(struct g *g, struct set *s, const char *name, size_t n, bool extras)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/%s", g->dir, name);
    assert_int_equal(mkdir(s->dir, 0700), 0);
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        char fname[32];
        snprintf(fname, sizeof fname, "f%03zu.icd", i);
        s->paths[i] = path_in(s->dir, fname);
        s->len[i] = (i * 337) % 3000;
        s->pt[i] = fe_data((unsigned)(1000 + i), s->len[i]);
        uint8_t rcpt[2][65];
        unsigned nr = 1;
        memcpy(rcpt[0], g->pub_a, 65);
        if (i % 7 == 3) {
            s->partner[i] = true;
            nr = 2;
            if (i % 2 == 0) {
                memcpy(rcpt[1], g->pub_a, 65);
                memcpy(rcpt[0], g->p_pub, 65);
            } else {
                memcpy(rcpt[1], g->p_pub, 65);
            }
        }
        encrypt_to(s->paths[i], s->pt[i], s->len[i], (const uint8_t(*)[65])rcpt, nr);
        if (i % 10 == 5)
            assert_int_equal(chmod(s->paths[i], 0640), 0);
    }
    if (!extras)
        return;
    /* Not an icdup file; encrypted to the partner only; missing. */
    s->paths[n] = path_in(s->dir, "notes.txt");
    fe_write_file(s->paths[n], (const uint8_t *)"just text\n", 10);
    s->paths[n + 1] = path_in(s->dir, "partner-only.icd");
    uint8_t *pt = fe_data(5, 100);
    encrypt_to(s->paths[n + 1], pt, 100, (const uint8_t(*)[65])g->p_pub, 1);
    free(pt);
    s->paths[n + 2] = path_in(s->dir, "missing.icd");
    s->extra = 3;
}

static void free_set(struct set *s)
{
    for (size_t i = 0; i < s->n + s->extra; i++)
        free(s->paths[i]);
    for (size_t i = 0; i < s->n; i++)
        free(s->pt[i]);
}

/* True when the file's header has an entry for key id. */
static bool has_key(const char *path, const uint8_t id[8])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct filecrypt_header h;
    char err[256];
    int rc = filecrypt_read_header(f, &h, err, sizeof err);
    fclose(f);
    if (rc != FILECRYPT_OK)
        fail_msg("%s: %s", path, err);
    return filecrypt_find(&h, id) >= 0;
}

static size_t count_with(const struct set *s, const uint8_t id[8])
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (has_key(s->paths[i], id))
            k++;
    return k;
}

/* Every file of the set opens with card uri (one PSO each) to its plaintext; with the
 * partner's key too where it is a recipient. */
static void check_opens(struct g *g, const struct set *s, const char *uri)
{
    struct fe_card k;
    fe_card_open(&k, uri, "card", true);
    char out[256], err[512];
    snprintf(out, sizeof out, "%s/check.out", s->dir);
    for (size_t i = 0; i < s->n; i++) {
        unsigned long before = k.c.apdus;
        uint64_t plen = 0;
        if (filecard_decrypt_path(&k.c, k.pub, NULL, s->paths[i], out, &plen, err,
                                  sizeof err) != 0)
            fail_msg("file %zu: %s", i, err);
        assert_int_equal(k.c.apdus - before, 1);
        size_t len = 0;
        uint8_t *got = fe_read_file(out, &len);
        assert_int_equal(len, s->len[i]);
        if (len > 0)
            assert_memory_equal(got, s->pt[i], len);
        free(got);
        if (s->partner[i]) {
            FILE *f = fopen(s->paths[i], "rb");
            struct filecrypt_header h;
            assert_int_equal(filecrypt_read_header(f, &h, err, sizeof err), FILECRYPT_OK);
            uint8_t id[8], x[32], cek[32];
            filecrypt_key_id(g->p_pub, id);
            int idx = filecrypt_find(&h, id);
            assert_true(idx >= 0);
            assert_int_equal(ec_ecdh(g->p_priv, h.entry[idx].eph_pub, x), CARD_OK);
            assert_int_equal(filecrypt_open_with(&h, (unsigned)idx, x, g->p_pub, cek, err,
                                                 sizeof err),
                             FILECRYPT_OK);
            FILE *o = fopen("/dev/null", "wb");
            assert_int_equal(filecrypt_decrypt_body(f, o, &h, cek, NULL, err, sizeof err),
                             FILECRYPT_OK);
            fclose(o);
            fclose(f);
        }
    }
    unlink(out);
    fe_card_close(&k);
}

struct run {
    struct transport *b, *c;
    struct secret_pin bpin, cpin;
    struct recover_options o;
    struct recover_result *res;
    struct recover_summary sum;
    char err[1024];
    int rc;
};

static void run_recover(struct g *g, const struct set *s, size_t n, bool new_pin,
                        struct run *r)
{
    memset(r, 0, sizeof *r);
    r->b = fe_open(g->uri_b);
    r->c = fe_open(g->uri_c);
    fe_make_pin(&r->bpin, FE_PIN);
    fe_make_pin(&r->cpin, FE_PIN);
    r->o.backup_pin = &r->bpin;
    r->o.new_pin = new_pin ? &r->cpin : NULL;
    r->res = calloc(n > 0 ? n : 1, sizeof *r->res);
    assert_non_null(r->res);
    r->rc = recover_files(r->b, r->c, (const char *const *)s->paths, n, &r->o, r->res, &r->sum,
                          r->err, sizeof r->err);
    transport_close(r->b);
    transport_close(r->c);
}

static void run_free(struct run *r)
{
    free(r->res);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_recover_hundred(void **state)
{
    struct g *g = *state;
    struct set s;
    make_set(g, &s, "hundred", NFILES, true);
    size_t total = s.n + s.extra;
    uint8_t *before[3];
    size_t blen[3];
    for (size_t i = 0; i < 2; i++)
        before[i] = fe_read_file(s.paths[s.n + i], &blen[i]);
    (void)before[2];

    struct run r;
    run_recover(g, &s, total, false, &r);
    assert_int_equal(r.rc, RECOVER_E_FILES);
    assert_non_null(strstr(r.err, "3 of 103 files failed"));
    assert_int_equal(r.sum.done, NFILES);
    assert_int_equal(r.sum.skipped, 0);
    assert_int_equal(r.sum.failed, 3);
    assert_int_equal(r.sum.pending, 0);
    assert_false(r.sum.proved);
    assert_memory_equal(r.sum.backup_key_id, g->id_a, 8);
    assert_memory_equal(r.sum.new_key_id, g->id_c, 8);
    /* backup: read public key, VERIFY, one PSO per file; new card: read public key only */
    assert_int_equal(r.sum.apdus_backup, 2 + NFILES);
    assert_int_equal(r.sum.apdus_new, 1);
    for (size_t i = 0; i < NFILES; i++) {
        assert_int_equal(r.res[i].status, RECOVER_DONE);
        assert_int_equal(r.res[i].replaced, 1);
    }
    assert_int_equal(r.res[NFILES].status, RECOVER_FAILED);
    assert_non_null(strstr(r.res[NFILES].reason, "not an icdup encrypted file"));
    assert_int_equal(r.res[NFILES + 1].status, RECOVER_FAILED);
    assert_non_null(strstr(r.res[NFILES + 1].reason, "not encrypted to the backup card's key"));
    assert_int_equal(r.res[NFILES + 2].status, RECOVER_FAILED);
    assert_non_null(strstr(r.res[NFILES + 2].reason, "No such file"));
    print_message("recovered %zu files; failures: \"%s\", \"%s\", \"%s\"\n", r.sum.done,
                  r.res[NFILES].reason, r.res[NFILES + 1].reason, r.res[NFILES + 2].reason);
    run_free(&r);

    /* After: C opens all 100, A's key is gone from every one, the partner still opens its
     * files, modes are kept, the failed files are unchanged, no temporary file is left. */
    assert_int_equal(count_with(&s, g->id_c), NFILES);
    assert_int_equal(count_with(&s, g->id_a), 0);
    check_opens(g, &s, g->uri_c);
    struct fe_card b;
    fe_card_open(&b, g->uri_b, "backup", true);
    char err[512], out[256];
    snprintf(out, sizeof out, "%s/x.out", s.dir);
    assert_int_equal(filecard_decrypt_path(&b.c, b.pub, NULL, s.paths[0], out, NULL, err,
                                           sizeof err),
                     FILECRYPT_E_NOT_RECIPIENT);
    fe_card_close(&b);
    mode_t um = umask(022);
    umask(um);
    for (size_t i = 0; i < NFILES; i++) {
        struct stat st;
        assert_int_equal(stat(s.paths[i], &st), 0);
        assert_int_equal(st.st_mode & 0777, i % 10 == 5 ? 0640u : (0666u & ~(unsigned)um));
    }
    for (size_t i = 0; i < 2; i++) {
        size_t l = 0;
        uint8_t *now = fe_read_file(s.paths[s.n + i], &l);
        assert_int_equal(l, blen[i]);
        assert_memory_equal(now, before[i], l);
        free(now);
        free(before[i]);
    }
    assert_int_equal(fe_count(s.dir, ".tmp-"), 0);

    /* A rerun changes nothing: every file is skipped. */
    run_recover(g, &s, s.n, false, &r);
    assert_int_equal(r.rc, RECOVER_OK);
    assert_int_equal(r.sum.done, 0);
    assert_int_equal(r.sum.skipped, NFILES);
    assert_int_equal(r.sum.apdus_backup, 2);
    for (size_t i = 0; i < NFILES; i++) {
        assert_int_equal(r.res[i].status, RECOVER_SKIPPED);
        assert_string_equal(r.res[i].reason, "already protected for the new card");
    }
    run_free(&r);
    free_set(&s);
}

/* ---- killed part-way --------------------------------------------------------------------- */

struct child_ctx {
    int fd;
    size_t done;
};

static void child_progress(void *ctx, size_t index, size_t total, const char *path,
                           const struct recover_result *r)
{
    (void)index;
    (void)total;
    (void)path;
    struct child_ctx *c = ctx;
    if (r->status != RECOVER_DONE)
        return;
    c->done++;
    char b = 'x';
    if (write(c->fd, &b, 1) != 1)
        _exit(4);
    if (c->done >= 10)
        usleep(1000); /* slow down so that the kill lands in the middle of the run */
}

static void test_recover_killed(void **state)
{
    struct g *g = *state;
    struct set s;
    make_set(g, &s, "killed", NFILES, false);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct transport *b = NULL, *c = NULL;
        char err[512];
        if (transport_open(g->uri_b, &b, err, sizeof err) != 0 ||
            transport_open(g->uri_c, &c, err, sizeof err) != 0)
            _exit(3);
        struct secret_pin pin;
        fe_make_pin(&pin, FE_PIN);
        struct child_ctx cc = { .fd = p[1], .done = 0 };
        struct recover_options o = { .backup_pin = &pin, .progress = child_progress,
                                     .progress_ctx = &cc };
        struct recover_result *res = calloc(NFILES, sizeof *res);
        if (res == NULL)
            _exit(3);
        recover_files(b, c, (const char *const *)s.paths, NFILES, &o, res, NULL, err,
                      sizeof err);
        _exit(0); /* not reached in time, normally */
    }
    close(p[1]);
    size_t seen = 0;
    while (seen < 10) {
        char buf[16];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        seen += (size_t)n;
    }
    /* A varying delay: the kill lands anywhere in the next files, inside a write, between the
     * rename and the directory sync, or between files. */
    usleep((useconds_t)(((unsigned)getpid() * 2654435761u) % 20000u));
    kill(pid, SIGKILL);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(p[0]);
    assert_true(seen >= 10);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* Every file is either old (A's key) or new (C's key), never both nor neither. */
    size_t new_files = count_with(&s, g->id_c), old_files = count_with(&s, g->id_a);
    print_message("killed after %zu files reported; %zu new, %zu old, %u temporary files\n",
                  seen, new_files, old_files, fe_count(s.dir, ".tmp-"));
    assert_true(new_files >= 10);
    assert_true(new_files < NFILES);
    assert_int_equal(new_files + old_files, NFILES);

    /* Stale temporary files as a kill between create and rename leaves them. */
    char stale[2][256];
    snprintf(stale[0], sizeof stale[0], "%s" ATOMICFILE_TMP_MARK "Ab12Cd", s.paths[0]);
    snprintf(stale[1], sizeof stale[1], "%s" ATOMICFILE_TMP_MARK "zz9Y8x", s.paths[NFILES - 1]);
    fe_write_file(stale[0], (const uint8_t *)"partial", 7);
    fe_write_file(stale[1], (const uint8_t *)"partial", 7);
    unsigned tmp_before = fe_count(s.dir, ".tmp-");

    struct run r;
    run_recover(g, &s, NFILES, false, &r);
    if (r.rc != RECOVER_OK)
        fail_msg("rerun: %s", r.err);
    assert_int_equal(r.sum.done + r.sum.skipped, NFILES);
    assert_int_equal(r.sum.skipped, new_files);
    assert_int_equal(r.sum.stale_removed, tmp_before);
    assert_true(r.sum.stale_removed >= 2);
    run_free(&r);
    assert_int_equal(fe_count(s.dir, ".tmp-"), 0);
    assert_int_equal(count_with(&s, g->id_c), NFILES);
    assert_int_equal(count_with(&s, g->id_a), 0);
    check_opens(g, &s, g->uri_c);
    free_set(&s);
}

/* With the new card's PIN: the new card proves its key, and each rewrapped entry is opened by
 * the new card before the file is replaced. */
static void test_recover_checked(void **state)
{
    struct g *g = *state;
    struct set s;
    make_set(g, &s, "checked", 5, false);
    struct run r;
    run_recover(g, &s, s.n, true, &r);
    if (r.rc != RECOVER_OK)
        fail_msg("%s", r.err);
    assert_true(r.sum.proved);
    assert_int_equal(r.sum.done, 5);
    assert_int_equal(r.sum.apdus_backup, 2 + 5);
    /* new card: read public key, VERIFY, the proof's PSO, one PSO per file */
    assert_int_equal(r.sum.apdus_new, 3 + 5);
    run_free(&r);
    check_opens(g, &s, g->uri_c);
    free_set(&s);
}

/* Refusals before any file is touched. */
static void test_recover_refused(void **state)
{
    struct g *g = *state;
    struct set s;
    make_set(g, &s, "refused", 3, false);
    uint8_t *orig[3];
    size_t olen[3];
    for (size_t i = 0; i < 3; i++)
        orig[i] = fe_read_file(s.paths[i], &olen[i]);

    struct run r;
    memset(&r, 0, sizeof r);
    struct transport *b = fe_open(g->uri_b), *c = fe_open(g->uri_c), *a = NULL;
    struct secret_pin wrong, pin;
    fe_make_pin(&wrong, "654321");
    fe_make_pin(&pin, FE_PIN);
    struct recover_result res[3];
    struct recover_options o = { .backup_pin = &wrong };
    char err[1024];
    assert_int_equal(recover_files(b, c, (const char *const *)s.paths, 3, &o, res, NULL, err,
                                   sizeof err),
                     RECOVER_E_CARD);
    assert_non_null(strstr(err, "VERIFY user PIN on backup: wrong PIN, 2 tries left"));
    assert_non_null(strstr(err, "no file was changed"));
    assert_null(strstr(err, "654321"));
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(res[i].status, RECOVER_PENDING);
    o.backup_pin = &pin;
    o.new_pin = &wrong;
    assert_int_equal(recover_files(b, c, (const char *const *)s.paths, 3, &o, res, NULL, err,
                                   sizeof err),
                     RECOVER_E_CARD);
    assert_non_null(strstr(err, "on new card: wrong PIN"));
    o.new_pin = NULL;
    o.backup_pin = NULL;
    assert_int_equal(recover_files(b, c, (const char *const *)s.paths, 3, &o, res, NULL, err,
                                   sizeof err),
                     RECOVER_E_ARG);
    transport_close(c);
    /* The "new" card is the original A: same key as the backup. */
    a = fe_open(g->uri_a);
    o.backup_pin = &pin;
    assert_int_equal(recover_files(b, a, (const char *const *)s.paths, 3, &o, res, NULL, err,
                                   sizeof err),
                     RECOVER_E_SAME_KEY);
    assert_non_null(strstr(err, "same key as the backup"));
    transport_close(a);
    /* Reset the PIN counters with a good VERIFY. */
    struct cardop k;
    cardop_init(&k, b, "backup");
    assert_int_equal(cardop_verify(&k, PIN_REF_USER, pin.v, pin.len), 0);
    transport_close(b);
    c = fe_open(g->uri_c);
    cardop_init(&k, c, "new");
    assert_int_equal(cardop_verify(&k, PIN_REF_USER, pin.v, pin.len), 0);
    transport_close(c);
    for (size_t i = 0; i < 3; i++) {
        size_t l = 0;
        uint8_t *now = fe_read_file(s.paths[i], &l);
        assert_int_equal(l, olen[i]);
        assert_memory_equal(now, orig[i], l);
        free(now);
        free(orig[i]);
    }
    free_set(&s);
}

/* ---- a backup card lost in the middle ----------------------------------------------------- */

struct flaky {
    struct transport base;
    struct transport *inner;
    unsigned pso_left; /* PSO DECIPHER commands let through */
};

static int flaky_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                          size_t cap, size_t *rlen, char *err, size_t errlen)
{
    struct flaky *f = (struct flaky *)t;
    if (len >= 2 && capdu[1] == INS_PSO) {
        if (f->pso_left == 0) {
            snprintf(err, errlen, "test: card removed");
            return TRANSPORT_E_IO;
        }
        f->pso_left--;
    }
    return f->inner->ops->transmit(f->inner, capdu, len, rapdu, cap, rlen, err, errlen);
}

static int flaky_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                       char *err, size_t errlen)
{
    struct flaky *f = (struct flaky *)t;
    return f->inner->ops->reset(f->inner, atr, cap, atr_len, err, errlen);
}

static void flaky_close(struct transport *t)
{
    struct flaky *f = (struct flaky *)t;
    transport_close(f->inner);
    free(f);
}

static const struct transport_ops flaky_ops = {
    .scheme = "flaky",
    .synopsis = "flaky",
    .description = "test wrapper",
    .transmit = flaky_transmit,
    .reset = flaky_reset,
    .close = flaky_close,
};

static void test_backup_lost(void **state)
{
    struct g *g = *state;
    struct set s;
    make_set(g, &s, "lost", 8, false);
    struct flaky *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base.ops = &flaky_ops;
    f->inner = fe_open(g->uri_b);
    f->pso_left = 3;
    struct transport *c = fe_open(g->uri_c);
    struct secret_pin pin;
    fe_make_pin(&pin, FE_PIN);
    struct recover_options o = { .backup_pin = &pin };
    struct recover_result res[8];
    struct recover_summary sum;
    char err[1024];
    assert_int_equal(recover_files(&f->base, c, (const char *const *)s.paths, 8, &o, res, &sum,
                                   err, sizeof err),
                     RECOVER_E_CARD);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "card removed"));
    assert_non_null(strstr(err, "rerun to continue"));
    assert_int_equal(sum.done, 3);
    assert_int_equal(sum.failed, 1);
    assert_int_equal(sum.pending, 4);
    assert_int_equal(res[3].status, RECOVER_FAILED);
    for (size_t i = 4; i < 8; i++) {
        assert_int_equal(res[i].status, RECOVER_PENDING);
        assert_non_null(strstr(res[i].reason, "not attempted"));
    }
    transport_close(&f->base);
    transport_close(c);
    assert_int_equal(count_with(&s, g->id_c), 3);
    assert_int_equal(count_with(&s, g->id_a), 5);
    struct run r;
    run_recover(g, &s, s.n, false, &r);
    if (r.rc != RECOVER_OK)
        fail_msg("%s", r.err);
    assert_int_equal(r.sum.done, 5);
    assert_int_equal(r.sum.skipped, 3);
    run_free(&r);
    check_opens(g, &s, g->uri_c);
    free_set(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recover_hundred),
        cmocka_unit_test(test_recover_killed),
        cmocka_unit_test(test_recover_checked),
        cmocka_unit_test(test_recover_refused),
        cmocka_unit_test(test_backup_lost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

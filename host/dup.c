#include "dup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "blob.h"
#include "card_err.h"
#include "ec.h"
#include "hex.h"
#include "ins.h"
#include "kek.h"
#include "rng.h"
#include "sw.h"

/* ---- small helpers ------------------------------------------------------------------- */

const char *dup_step_name(enum dup_step step)
{
    switch (step) {
    case DUP_STEP_NONE: return "start";
    case DUP_STEP_VERIFIED: return "PIN verification";
    case DUP_STEP_GROUPS_READ: return "reading the key groups";
    case DUP_STEP_SHARES_SET: return "setting the shares";
    case DUP_STEP_KCV_CONFIRMED: return "the KCV check";
    case DUP_STEP_BOUND: return "the binding key";
    case DUP_STEP_KEY_READY: return "the source key";
    case DUP_STEP_EXPORTED: return "the export";
    case DUP_STEP_SAVED: return "saving the blob";
    case DUP_STEP_IMPORTED: return "the import";
    case DUP_STEP_PROVED: return "the proof";
    case DUP_STEP_LOCKED: return "locking the export";
    }
    return "unknown step";
}

/* Constant-time comparison of secrets. */
static int equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static const char *hex8(const uint8_t b[8], char out[17])
{
    hex_encode(b, 8, 0, out, 17);
    return out;
}

struct run {
    const struct dup_options *o;
    struct dup_result *r;
    struct cardop src, dst;
    char *err;
    size_t errlen;
};

static void say(struct run *x, const char *fmt, ...)
{
    if (x->o->progress == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    x->o->progress(x->o->progress_ctx, line);
}

static int fail(struct run *x, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* A card's own message (cardop err) as the clone's error. */
static int card_fail(struct run *x, const struct cardop *c)
{
    return fail(x, DUP_E_CARD, "%s", c->err);
}

/* Marks a step complete and lets the hook stop the clone there. */
static int step_done(struct run *x, enum dup_step step)
{
    x->r->last_step = step;
    if (x->o->after_step != NULL && x->o->after_step(x->o->step_ctx, step) != 0)
        return fail(x, DUP_E_INTERRUPTED, "clone interrupted after %s", dup_step_name(step));
    return 0;
}

/* ---- random source and proof -------------------------------------------------------- */

int dup_prove(struct cardop *card, const uint8_t src_pub[65], char *err, size_t errlen)
{
    mbedtls_ctr_drbg_context drbg;
    uint8_t eph[32], eph_pub[65], mine[32], theirs[32];
    int rc = DUP_OK;
    if (rng_drbg_seed(&drbg, "icdup clone proof v1") != 0) {
        snprintf(err, errlen, "proof: cannot seed the random generator from getrandom");
        rc = DUP_E_PROOF;
        goto out;
    }
    if (ec_check_point(src_pub) != CARD_OK) {
        snprintf(err, errlen, "proof: the source's public key is not a valid P-256 point");
        rc = DUP_E_PROOF;
        goto out;
    }
    if (ec_keygen(mbedtls_ctr_drbg_random, &drbg, eph, eph_pub) != CARD_OK ||
        ec_ecdh(eph, src_pub, mine) != CARD_OK) {
        snprintf(err, errlen, "proof: host ECDH failed");
        rc = DUP_E_PROOF;
        goto out;
    }
    if (cardop_decipher(card, eph_pub, theirs) != 0) {
        snprintf(err, errlen, "proof: %s", card->err);
        rc = DUP_E_CARD;
        goto out;
    }
    if (!equal_ct(mine, theirs, sizeof mine)) {
        snprintf(err, errlen, "proof failed: %s does not hold the private key of the source's "
                 "public key (its PSO DECIPHER differs from the host's ECDH)", card->name);
        rc = DUP_E_PROOF;
    }
out:
    mbedtls_platform_zeroize(eph, sizeof eph);
    mbedtls_platform_zeroize(mine, sizeof mine);
    mbedtls_platform_zeroize(theirs, sizeof theirs);
    mbedtls_ctr_drbg_free(&drbg);
    return rc;
}

/* ---- state files -------------------------------------------------------------------- */

int dup_state_dir(const char *dir, char *out, size_t cap, char *err, size_t errlen)
{
    if (dir != NULL && dir[0] != '\0') {
        if ((size_t)snprintf(out, cap, "%s", dir) >= cap) {
            snprintf(err, errlen, "state directory path too long");
            return -1;
        }
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0') {
            snprintf(err, errlen, "HOME is not set: give --state-dir DIR");
            return -1;
        }
        if ((size_t)snprintf(out, cap, "%s/.icdup", home) >= cap) {
            snprintf(err, errlen, "state directory path too long");
            return -1;
        }
    }
    struct stat st;
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "state directory %s is not a directory", out);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT || mkdir(out, 0700) != 0) {
        snprintf(err, errlen, "cannot create the state directory %s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* fsyncs the directory that holds path. Returns 0 or -1 (errno). */
static int sync_parent(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int dup_blob_save(const char *path, const uint8_t *blob, size_t len, char *err, size_t errlen)
{
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) {
        snprintf(err, errlen, "path %s too long", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file next to %s: %s", path, strerror(errno));
        return -1;
    }
    const char *what = "write";
    int rc = fchmod(fd, 0600);
    size_t off = 0;
    while (rc == 0 && off < len) {
        ssize_t n = write(fd, blob + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0) {
        what = "fsync";
        rc = -1;
    }
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        saved = errno;
        what = "close";
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        saved = errno;
        what = "rename";
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot save %s (%s): %s", path, what, strerror(saved));
        return -1;
    }
    if (sync_parent(path) != 0) {
        snprintf(err, errlen, "saved %s, but cannot fsync its directory: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int dup_blob_load(const char *path, uint8_t *blob, size_t cap, size_t *len, char *err,
                  size_t errlen)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    int rc = 0;
    for (;;) {
        uint8_t b[256];
        ssize_t got = read(fd, b, sizeof b);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        if (n + (size_t)got > cap) {
            snprintf(err, errlen, "%s is longer than %zu bytes: not a wrapped-key blob", path,
                     cap);
            rc = -1;
            break;
        }
        memcpy(blob + n, b, (size_t)got);
        n += (size_t)got;
    }
    close(fd);
    if (rc == 0)
        *len = n;
    return rc;
}

/* ---- the clone ---------------------------------------------------------------------- */

/* Step 3: sets the shares each card lacks. */
static int set_shares(struct run *x, const struct cardop_group *gs, const struct cardop_group *gd,
                      struct secrets *sec)
{
    const struct dup_options *o = x->o;
    uint8_t all = (uint8_t)((1u << gs->n) - 1u);
    uint8_t miss_s = (uint8_t)(all & ~gs->present), miss_d = (uint8_t)(all & ~gd->present);
    uint8_t needed = (uint8_t)(miss_s | miss_d);
    if (needed == 0)
        return 0;
    if (o->shares != NULL)
        *sec = *o->shares;
    uint8_t lacking = (uint8_t)(needed & ~sec->shares);
    if (lacking != 0 && o->get_shares != NULL) {
        char gerr[256] = "";
        if (o->get_shares(o->shares_ctx, lacking, sec, gerr, sizeof gerr) != 0)
            return fail(x, DUP_E_SHARES, "cannot get the shares the cards lack: %s "
                        "(nothing was changed on the cards)", gerr);
        lacking = (uint8_t)(needed & ~sec->shares);
    }
    if (lacking != 0) {
        char l[48], ls[40] = "none", ld[40] = "none";
        if (miss_s)
            secrets_share_list(miss_s, ls, sizeof ls);
        if (miss_d)
            secrets_share_list(miss_d, ld, sizeof ld);
        return fail(x, DUP_E_SHARES, "the secrets lack %s (src lacks %s, dst lacks %s); give "
                    "them with --shares FILE or at the prompt (nothing was changed on the cards)",
                    secrets_share_phrase(lacking, l, sizeof l), ls, ld);
    }
    for (int card = 0; card < 2; card++) {
        struct cardop *c = card == 0 ? &x->src : &x->dst;
        uint8_t miss = card == 0 ? miss_s : miss_d;
        for (unsigned i = 1; i <= gs->n; i++) {
            if (!((miss >> (i - 1)) & 1u))
                continue;
            if (cardop_set_share(c, i, sec->share[i - 1]) != 0)
                return card_fail(x, c);
            if (card == 0)
                x->r->src_set |= (uint8_t)(1u << (i - 1));
            else
                x->r->dst_set |= (uint8_t)(1u << (i - 1));
        }
        if (miss != 0) {
            char l[48];
            say(x, "%s: set %s", c->name, secrets_share_phrase(miss, l, sizeof l));
        }
    }
    return 0;
}

/* Step 4 for one card: its KCV from its first DF10 when complete, from the host when the host
 * set every share of it just now (the card holds exactly those values), else from DF10 again. */
static int card_kcv(struct run *x, struct cardop *c, const struct cardop_group *g, uint8_t set,
                    const struct secrets *sec, uint8_t kcv[8], bool *from_card)
{
    uint8_t all = (uint8_t)((1u << g->n) - 1u);
    if (g->complete) {
        memcpy(kcv, g->kcv, 8);
        *from_card = true;
        return 0;
    }
    if (set == all) {
        uint8_t kek[32];
        int rc = kek_derive((const uint8_t(*)[32])sec->share, g->n, kek);
        if (rc == CARD_OK)
            rc = kek_kcv(kek, kcv);
        mbedtls_platform_zeroize(kek, sizeof kek);
        *from_card = false;
        return rc == CARD_OK ? 0 : fail(x, DUP_E_ARG, "cannot derive the KCV on the host");
    }
    struct cardop_group again;
    if (cardop_key_group(c, &again) != 0)
        return card_fail(x, c);
    if (!again.complete) {
        char l[48];
        return fail(x, DUP_E_SHARES, "%s's key group is still incomplete (shares present: %s)",
                    c->name, secrets_share_list(again.present, l, sizeof l));
    }
    memcpy(kcv, again.kcv, 8);
    *from_card = true;
    return 0;
}

/* The state file of this clone: named after dst's binding point (bound), or after src's serial
 * (unbound). */
static void state_path(struct run *x, const char *dir, const uint8_t *bind_point)
{
    char name[64];
    if (bind_point != NULL) {
        uint8_t h[32];
        char hx[33];
        mbedtls_sha256_ret(bind_point, EC_POINT_LEN, h, 0);
        hex_encode(h, 16, 0, hx, sizeof hx);
        snprintf(name, sizeof name, "clone-%s.blob", hx);
    } else {
        char s[17];
        snprintf(name, sizeof name, "clone-%s-unbound.blob", hex8(x->r->src_serial, s));
    }
    snprintf(x->r->state_path, sizeof x->r->state_path, "%s/%s", dir, name);
}

static int need_src_serial(struct run *x)
{
    if (x->r->have_src_serial)
        return 0;
    if (cardop_serial(&x->src, x->r->src_serial) != 0)
        return card_fail(x, &x->src);
    x->r->have_src_serial = true;
    return 0;
}

/* Explains an EXPORT refusal (6985) from src's key state. */
static int explain_export_refusal(struct run *x, const struct cardop_key_state *ks)
{
    struct cardop_key_state now;
    if (cardop_key_state(&x->src, &now) != 0)
        now = *ks;
    if (!now.present)
        return fail(x, DUP_E_REFUSED, "EXPORT WRAPPED on src refused: src holds no key");
    if (now.flags & CARDOP_FLAG_LOCKED)
        return fail(x, DUP_E_REFUSED, "EXPORT WRAPPED on src refused: src's export is locked");
    if ((now.flags & CARDOP_FLAG_BACKUP) && !(now.policy & CARDOP_POLICY_REEXPORT))
        return fail(x, DUP_E_REFUSED,
                    "EXPORT WRAPPED on src refused: src already exported its key (export count "
                    "%u) to another destination binding key, and its policy allows no second "
                    "export. If that export was cut, rerun the clone with the destination card "
                    "of that run: it still holds the pending binding key and gets the same "
                    "export again (docs/clone.md, \"After a cut\")",
                    (unsigned)now.export_count);
    return fail(x, DUP_E_REFUSED, "%s", x->src.err);
}

/* dst already holds src's key: a blob an earlier run saved for it (the import was confirmed
 * by the card but not seen by the host) can never be imported again, since dst erased its
 * binding key. Such blobs (bound, same source serial and KCV) are removed when src's policy
 * allows no second export (then every bound blob of src went to this one destination);
 * otherwise they are only listed. */
static void leftover_blobs(struct run *x, bool single_export)
{
    char dir[900], derr[256];
    if (dup_state_dir(x->o->state_dir, dir, sizeof dir, derr, sizeof derr) != 0)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 11 || strncmp(e->d_name, "clone-", 6) != 0 ||
            strcmp(e->d_name + nl - 5, ".blob") != 0)
            continue;
        char path[1200], lerr[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint8_t b[BLOB_MAX_LEN];
        size_t blen = 0;
        struct blob_header h;
        if (dup_blob_load(path, b, sizeof b, &blen, lerr, sizeof lerr) != 0 ||
            blob_parse_header(b, blen, &h) != CARD_OK || !h.bound ||
            memcmp(h.src_serial, x->r->src_serial, 8) != 0 || memcmp(h.kcv, x->r->kcv, 8) != 0)
            continue;
        if (single_export && unlink(path) == 0) {
            say(x, "removed %s: its import was done in an earlier run", path);
            sync_parent(path);
        } else {
            say(x, "note: %s holds a bound export of src that dst no longer needs", path);
        }
    }
    closedir(d);
}

static int run_clone(struct run *x, struct secrets *sec, uint8_t *blob, size_t *blob_len)
{
    const struct dup_options *o = x->o;
    struct dup_result *r = x->r;
    int rc;

    r->bound = !o->unbound;

    /* 1: PINs */
    if (cardop_verify(&x->src, PIN_REF_USER, o->src_pin->v, o->src_pin->len) != 0)
        return card_fail(x, &x->src);
    if (cardop_verify(&x->dst, PIN_REF_USER, o->dst_pin->v, o->dst_pin->len) != 0)
        return card_fail(x, &x->dst);
    say(x, "src, dst: user PIN verified");
    if ((rc = step_done(x, DUP_STEP_VERIFIED)) != 0)
        return rc;

    /* 2: key groups, src's key state */
    struct cardop_group gs, gd;
    if (cardop_key_group(&x->src, &gs) != 0)
        return card_fail(x, &x->src);
    if (cardop_key_group(&x->dst, &gd) != 0)
        return card_fail(x, &x->dst);
    if (gs.n != gd.n)
        return fail(x, DUP_E_MISMATCH, "the key groups differ in size: src has %u shares, dst "
                    "%u; both cards need the same profile (nothing was changed)", gs.n, gd.n);
    r->n = gs.n;
    struct cardop_key_state ks;
    if (cardop_key_state(&x->src, &ks) != 0)
        return card_fail(x, &x->src);
    if (ks.flags & CARDOP_FLAG_LOCKED)
        return fail(x, DUP_E_REFUSED, "src's export is locked (LOCK EXPORT): it never exports "
                    "its key (nothing was changed)");
    {
        char ls[32], ld[32];
        say(x, "key group of %u share%s; present on src: %s, on dst: %s", gs.n,
            gs.n == 1 ? "" : "s",
            gs.present ? secrets_share_list(gs.present, ls, sizeof ls) : "none",
            gd.present ? secrets_share_list(gd.present, ld, sizeof ld) : "none");
    }
    if ((rc = step_done(x, DUP_STEP_GROUPS_READ)) != 0)
        return rc;

    /* 3: missing shares */
    if ((rc = set_shares(x, &gs, &gd, sec)) != 0)
        return rc;
    if ((rc = step_done(x, DUP_STEP_SHARES_SET)) != 0)
        return rc;

    /* 4: KCVs */
    uint8_t kcv_s[8], kcv_d[8];
    if ((rc = card_kcv(x, &x->src, &gs, r->src_set, sec, kcv_s, &r->src_kcv_from_card)) != 0)
        return rc;
    if ((rc = card_kcv(x, &x->dst, &gd, r->dst_set, sec, kcv_d, &r->dst_kcv_from_card)) != 0)
        return rc;
    char ks_hex[17], kd_hex[17];
    if (memcmp(kcv_s, kcv_d, 8) != 0)
        return fail(x, DUP_E_MISMATCH, "the key groups differ: KCV %s on src, %s on dst; the "
                    "cards hold different shares. Stopped before any export: nothing was "
                    "exported", hex8(kcv_s, ks_hex), hex8(kcv_d, kd_hex));
    memcpy(r->kcv, kcv_s, 8);
    say(x, "KCV %s on both cards", hex8(kcv_s, ks_hex));
    if ((rc = step_done(x, DUP_STEP_KCV_CONFIRMED)) != 0)
        return rc;

    /* Did an earlier run already finish the import? Only worth asking once src has exported. */
    if (ks.flags & CARDOP_FLAG_BACKUP) {
        struct cardop_key_state kd;
        if ((rc = need_src_serial(x)) != 0)
            return rc;
        if (cardop_key_state(&x->dst, &kd) != 0)
            return card_fail(x, &x->dst);
        if (kd.present && kd.origin == CARDOP_ORIGIN_IMPORTED &&
            memcmp(kd.src_serial, r->src_serial, 8) == 0 && memcmp(kd.src_kcv, r->kcv, 8) == 0) {
            r->already_cloned = true;
            say(x, "dst already holds src's key (imported from card %s under KCV %s): only "
                "the proof is left", hex8(r->src_serial, kd_hex), ks_hex);
            if (cardop_read_pubkey(&x->src, r->src_pub) != 0)
                return card_fail(x, &x->src);
            leftover_blobs(x, !(ks.policy & CARDOP_POLICY_REEXPORT));
            return step_done(x, DUP_STEP_KEY_READY);
        }
    }

    /* 5: binding key, state file */
    char dir[900];
    if (dup_state_dir(o->state_dir, dir, sizeof dir, x->err, x->errlen) != 0)
        return DUP_E_STATE;
    uint8_t point[EC_POINT_LEN];
    if (r->bound) {
        if (cardop_binding_key(&x->dst, false, point) != 0)
            return card_fail(x, &x->dst);
        state_path(x, dir, point);
    } else {
        if ((rc = need_src_serial(x)) != 0)
            return rc;
        state_path(x, dir, NULL);
    }
    char lerr[512];
    int lrc = dup_blob_load(r->state_path, blob, BLOB_MAX_LEN, blob_len, lerr, sizeof lerr);
    if (lrc < 0)
        return fail(x, DUP_E_STATE, "%s", lerr);
    if (lrc == 0) {
        struct blob_header h;
        if (blob_parse_header(blob, *blob_len, &h) != CARD_OK || h.bound != r->bound)
            return fail(x, DUP_E_STATE, "the saved blob %s is not a %s wrapped key; move it "
                        "away to export again", r->state_path, r->bound ? "bound" : "unbound");
        if ((rc = need_src_serial(x)) != 0)
            return rc;
        char hs[17];
        if (memcmp(h.src_serial, r->src_serial, 8) != 0)
            return fail(x, DUP_E_STATE, "a blob saved by an interrupted clone of card %s waits "
                        "in %s for this destination; finish that clone (icdup clone --src <that "
                        "card>) or delete the file to give it up",
                        hex8(h.src_serial, hs), r->state_path);
        if (memcmp(h.kcv, r->kcv, 8) != 0)
            return fail(x, DUP_E_STATE, "the saved blob %s is wrapped under KCV %s, not the "
                        "cards' %s; delete it to export again", r->state_path,
                        hex8(h.kcv, hs), ks_hex);
        r->resumed = true;
        r->state_kept = true;
        r->export_count = h.export_count;
        say(x, "resuming from %s (export %u of card %s)", r->state_path,
            (unsigned)h.export_count, hex8(h.src_serial, hs));
    }
    if (r->bound)
        say(x, "dst: binding key ready");
    else
        say(x, "unbound export: no binding key");
    if ((rc = step_done(x, DUP_STEP_BOUND)) != 0)
        return rc;

    /* 6: src's key */
    if (!r->resumed && (!ks.present || o->generate)) {
        if (cardop_generate(&x->src, r->src_pub) != 0)
            return card_fail(x, &x->src);
        r->generated = true;
        say(x, "src: generated a P-256 key pair");
    } else {
        if (r->resumed && o->generate)
            say(x, "src: not generating (--generate): the saved blob holds the key to finish "
                "with");
        if (cardop_read_pubkey(&x->src, r->src_pub) != 0)
            return card_fail(x, &x->src);
    }
    if ((rc = step_done(x, DUP_STEP_KEY_READY)) != 0)
        return rc;

    /* 7, 8: export, save */
    if (!r->resumed) {
        if (cardop_export(&x->src, r->bound ? point : NULL, blob, BLOB_MAX_LEN, blob_len) != 0) {
            if (x->src.sw == SW_CONDITIONS_NOT_SATISFIED)
                return explain_export_refusal(x, &ks);
            return card_fail(x, &x->src);
        }
        r->exported = true;
        if ((rc = step_done(x, DUP_STEP_EXPORTED)) != 0)
            return rc;
        char serr[512];
        if (dup_blob_save(r->state_path, blob, *blob_len, serr, sizeof serr) != 0)
            return fail(x, DUP_E_STATE, "%s; nothing was imported. Rerun the clone: %s", serr,
                        r->bound ? "src repeats the export to the same binding key"
                                 : "an unbound export is never repeated, so the key is lost "
                                   "for this clone unless the policy allows a second export");
        r->state_kept = true;
        struct blob_header h;
        if (blob_parse_header(blob, *blob_len, &h) != CARD_OK)
            return fail(x, DUP_E_STATE, "src answered a malformed blob (kept in %s)",
                        r->state_path);
        memcpy(r->src_serial, h.src_serial, 8);
        r->have_src_serial = true;
        r->export_count = h.export_count;
        char hs[17];
        if (memcmp(h.kcv, r->kcv, 8) != 0)
            return fail(x, DUP_E_MISMATCH, "src wrapped its key under KCV %s, not the %s both "
                        "cards showed; not importing (the blob is kept in %s)",
                        hex8(h.kcv, hs), ks_hex, r->state_path);
        say(x, "src: exported its key wrapped%s (export %u of card %s); saved to %s",
            r->bound ? " for dst's binding key" : " (unbound)", (unsigned)h.export_count,
            hex8(h.src_serial, hs), r->state_path);
        if ((rc = step_done(x, DUP_STEP_SAVED)) != 0)
            return rc;
    }

    /* 9: import */
    if (cardop_import(&x->dst, blob, *blob_len) != 0) {
        char why[CARDOP_ERR_LEN];
        snprintf(why, sizeof why, "%s", x->dst.err);
        struct cardop_key_state kd;
        if (x->dst.sw == SW_CONDITIONS_NOT_SATISFIED && cardop_key_state(&x->dst, &kd) == 0 &&
            kd.present)
            return fail(x, DUP_E_CARD, "IMPORT WRAPPED on dst refused: dst already holds a key "
                        "(%s) and replacing it needs the admin PIN (were --src and --dst "
                        "swapped?). The wrapped key is kept in %s: import it with 'icdup keys "
                        "import --replace' or give it up by deleting the file",
                        cardop_origin_name(kd.origin), r->state_path);
        return fail(x, DUP_E_CARD, "%s; the wrapped key is kept in %s: fix the cause and rerun "
                    "the clone to resume", why, r->state_path);
    }
    r->imported = true;
    say(x, "dst: imported the key");
    if (unlink(r->state_path) == 0 || errno == ENOENT) {
        r->state_kept = false;
        if (sync_parent(r->state_path) != 0)
            say(x, "warning: cannot fsync the directory of %s", r->state_path);
    } else {
        say(x, "warning: cannot remove %s: %s (it is no longer needed)", r->state_path,
            strerror(errno));
    }
    return step_done(x, DUP_STEP_IMPORTED);
}

int dup_clone(struct transport *src, struct transport *dst, const struct dup_options *o,
              struct dup_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (o == NULL || src == NULL || dst == NULL) {
        snprintf(err, errlen, "internal error: dup_clone without cards or options");
        return DUP_E_ARG;
    }
    if (o->src_pin == NULL || o->src_pin->len == 0 || o->dst_pin == NULL ||
        o->dst_pin->len == 0) {
        snprintf(err, errlen, "the user PINs of both cards are needed");
        return DUP_E_ARG;
    }
    struct run x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.r = r;
    x.err = err;
    x.errlen = errlen;
    cardop_init(&x.src, src, "src");
    cardop_init(&x.dst, dst, "dst");
    struct secrets sec;
    secrets_init(&sec);
    uint8_t blob[BLOB_MAX_LEN];
    size_t blob_len = 0;

    int rc = run_clone(&x, &sec, blob, &blob_len);
    secrets_wipe(&sec);
    if (rc == 0) {
        rc = dup_prove(&x.dst, r->src_pub, err, errlen);
        if (rc == 0) {
            r->proved = true;
            say(&x, "proof: dst decrypts what src's public key encrypted");
            rc = step_done(&x, DUP_STEP_PROVED);
        }
    }
    if (rc == 0 && o->lock_export) {
        if (cardop_lock_export(&x.src) != 0) {
            rc = card_fail(&x, &x.src);
        } else {
            r->locked = true;
            say(&x, "src: export locked for good");
            rc = step_done(&x, DUP_STEP_LOCKED);
        }
    }
    r->apdus_src = x.src.apdus;
    r->apdus_dst = x.dst.apdus;
    return rc;
}

/* icdup clone (host/dup.c) end to end on simulated cards personalized by the default profile
 * (host/profile.c): in-process cards (sim: NVM files) with N = 1, 3 and 8, and two icsim
 * processes over tcp:. Each clone is followed by the proof and a check of dst's provenance
 * (DF11). Also: the APDU budget, the KCV check before any export, the one-export rule, a locked
 * card, PIN blocking, resuming after a cut at each point that matters (hook and lost
 * connections), and no share or private key in any response.
 *
 * Every transport is wrapped in a "tap" (a transport of this file) that keeps every raw
 * response, counts the commands and can lose a connection before or after a given command
 * reaches the card. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "card_err.h"
#include "card_ops.h"
#include "dup.h"
#include "ec.h"
#include "fs.h"
#include "hex.h"
#include "ins.h"
#include "kek.h"
#include "keys.h"
#include "profile.h"
#include "secrets.h"
#include "sim_card.h"
#include "sw.h"
#include "transport.h"

#define WAIT_MS 15000

/* ---- the tap transport ------------------------------------------------------------------ */

enum tap_fault { TAP_OK, TAP_DROP_BEFORE, TAP_LOSE_ANSWER };

struct tap {
    struct transport base;
    struct transport *inner;
    uint8_t *log; /* every raw response, concatenated */
    size_t log_len, log_cap;
    unsigned long sent;
    uint8_t fault_ins;
    enum tap_fault fault;
};

static int tap_transmit(struct transport *t, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                        size_t cap, size_t *rlen, char *err, size_t errlen)
{
    struct tap *tp = (struct tap *)t;
    tp->sent++;
    enum tap_fault f = TAP_OK;
    if (tp->fault != TAP_OK && len >= 2 && capdu[1] == tp->fault_ins) {
        f = tp->fault;
        tp->fault = TAP_OK; /* once */
    }
    if (f == TAP_DROP_BEFORE) {
        snprintf(err, errlen, "test: connection lost before the command");
        return TRANSPORT_E_IO;
    }
    int rc = tp->inner->ops->transmit(tp->inner, capdu, len, rapdu, cap, rlen, err, errlen);
    if (rc == 0) {
        if (tp->log_len + *rlen > tp->log_cap) {
            size_t nc = (tp->log_cap + *rlen) * 2;
            uint8_t *nb = realloc(tp->log, nc);
            assert_non_null(nb);
            tp->log = nb;
            tp->log_cap = nc;
        }
        memcpy(tp->log + tp->log_len, rapdu, *rlen);
        tp->log_len += *rlen;
    }
    if (rc == 0 && f == TAP_LOSE_ANSWER) {
        snprintf(err, errlen, "test: connection lost before the answer");
        return TRANSPORT_E_IO;
    }
    return rc;
}

static int tap_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len, char *err,
                     size_t errlen)
{
    struct tap *tp = (struct tap *)t;
    return tp->inner->ops->reset(tp->inner, atr, cap, atr_len, err, errlen);
}

static void tap_close(struct transport *t)
{
    struct tap *tp = (struct tap *)t;
    transport_close(tp->inner); /* NULL once disconnected */
    free(tp->log);
    free(tp);
}

static const struct transport_ops tap_ops = {
    .scheme = "tap",
    .synopsis = "tap",
    .description = "test wrapper",
    .open = NULL,
    .transmit = tap_transmit,
    .reset = tap_reset,
    .close = tap_close,
};

static struct tap *tap_open(const char *uri)
{
    struct tap *tp = calloc(1, sizeof *tp);
    assert_non_null(tp);
    char err[512];
    if (transport_open(uri, &tp->inner, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    tp->base.ops = &tap_ops;
    tp->base.trace = NULL;
    return tp;
}

/* True when the n bytes of needle occur anywhere in the response log. */
static bool tap_saw(const struct tap *tp, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + n <= tp->log_len; i++)
        if (memcmp(tp->log + i, needle, n) == 0)
            return true;
    return false;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

struct ctx {
    char dir[64];
    char state[128];
    char nvm[4][128];
    char uri[4][160];
    pid_t pid[4];
    int out_fd[4];
};

static const char PIN[] = "123456", PUK[] = "12345678", ADMIN[] = "87654321";

static void share_value(unsigned i, uint8_t out[32])
{
    for (unsigned j = 0; j < 32; j++)
        out[j] = (uint8_t)(0x11 * i + j * 7 + 1);
}

static void make_pin(struct secret_pin *p, const char *v)
{
    memset(p, 0, sizeof *p);
    p->len = strlen(v);
    memcpy(p->v, v, p->len);
}

/* All shares 1..n of the test group. */
static void all_shares(struct secrets *s, unsigned n)
{
    secrets_init(s);
    for (unsigned i = 1; i <= n; i++) {
        share_value(i, s->share[i - 1]);
        s->shares |= (uint8_t)(1u << (i - 1));
    }
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    snprintf(c->dir, sizeof c->dir, "/tmp/icdup-test-clone-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        free(c);
        return -1;
    }
    snprintf(c->state, sizeof c->state, "%s/state", c->dir);
    char dir[64], path[128];
    memcpy(dir, c->dir, sizeof dir);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/card%d.nvm", dir, i);
        memcpy(c->nvm[i], path, sizeof path);
        snprintf(c->uri[i], sizeof c->uri[i], "sim:%s", path);
        c->out_fd[i] = -1;
    }
    *state = c;
    return 0;
}

static void rm_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_dir(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 4; i++) {
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGKILL);
            int st;
            waitpid(c->pid[i], &st, 0);
        }
        if (c->out_fd[i] >= 0)
            close(c->out_fd[i]);
    }
    rm_dir(c->dir);
    free(c);
    return 0;
}

/* Personalizes a blank card with the default profile: n shares, preset shares given at
 * issuance (bitmap; share 1 gets a wrong value when wrong1). */
static void init_card(const char *uri, unsigned n, bool reexport, uint8_t preset, bool wrong1)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    struct cardop c;
    cardop_init(&c, t, "card");
    struct secrets s;
    all_shares(&s, n);
    s.shares = preset;
    if (wrong1)
        memset(s.share[0], 0x5A, 32);
    make_pin(&s.pin, PIN);
    make_pin(&s.puk, PUK);
    make_pin(&s.admin, ADMIN);
    struct profile_options po = { .shares = n, .allow_reexport = reexport, .secrets = &s };
    if (profile_run(&c, &po, NULL, NULL, err, sizeof err) != 0)
        fail_msg("profile_run: %s", err);
    secrets_wipe(&s);
    transport_close(t);
}

struct clone_env {
    struct tap *src, *dst;
    FILE *trace;
    char *trace_buf;
    size_t trace_len;
    struct secret_pin src_pin, dst_pin;
    struct secrets shares;
    struct dup_options o;
    struct dup_result r;
    char err[1024];
    int rc;
};

static void env_open(struct clone_env *e, const char *src_uri, const char *dst_uri,
                     const char *state_dir, unsigned n)
{
    memset(e, 0, sizeof *e);
    e->src = tap_open(src_uri);
    e->dst = tap_open(dst_uri);
    e->trace = open_memstream(&e->trace_buf, &e->trace_len);
    assert_non_null(e->trace);
    transport_set_trace(&e->src->base, e->trace);
    transport_set_trace(&e->dst->base, e->trace);
    make_pin(&e->src_pin, PIN);
    make_pin(&e->dst_pin, PIN);
    all_shares(&e->shares, n);
    e->o.src_pin = &e->src_pin;
    e->o.dst_pin = &e->dst_pin;
    e->o.shares = &e->shares;
    e->o.state_dir = state_dir;
}

static int env_clone(struct clone_env *e)
{
    e->rc = dup_clone(&e->src->base, &e->dst->base, &e->o, &e->r, e->err, sizeof e->err);
    return e->rc;
}

/* Closes the readers (an icsim serves one connection at a time; a sim: image is opened by one
 * card at a time), keeping the logs. */
static void env_disconnect(struct clone_env *e)
{
    transport_close(e->src->inner);
    e->src->inner = NULL;
    transport_close(e->dst->inner);
    e->dst->inner = NULL;
}

static void env_close(struct clone_env *e)
{
    transport_close(&e->src->base);
    transport_close(&e->dst->base);
    fclose(e->trace);
    free(e->trace_buf);
    secrets_wipe(&e->shares);
}

/* Commands traced ("> " lines) in the trace so far. */
static unsigned long trace_commands(struct clone_env *e)
{
    fflush(e->trace);
    unsigned long n = 0;
    for (size_t i = 0; i < e->trace_len; i++)
        if ((i == 0 || e->trace_buf[i - 1] == '\n') && e->trace_buf[i] == '>')
            n++;
    return n;
}

/* A card of the test, opened through its own transport for checks. */
static struct transport *open_plain(const char *uri)
{
    struct transport *t = NULL;
    char err[512];
    if (transport_open(uri, &t, err, sizeof err) != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    return t;
}

static void read_state(const char *uri, struct cardop_key_state *st, uint8_t serial[8],
                       struct cardop_group *g)
{
    struct transport *t = open_plain(uri);
    struct cardop c;
    cardop_init(&c, t, "card");
    if (st != NULL && cardop_key_state(&c, st) != 0)
        fail_msg("%s", c.err);
    if (serial != NULL && cardop_serial(&c, serial) != 0)
        fail_msg("%s", c.err);
    if (g != NULL && cardop_key_group(&c, g) != 0)
        fail_msg("%s", c.err);
    transport_close(t);
}

/* The private key pair in 4B10 of a simulated card's NVM image, read through the card core. */
static void read_private_key(const char *nvm_path, uint8_t kp[97])
{
    struct sim_card sc;
    char err[256];
    if (sim_card_open(&sc, nvm_path, err, sizeof err) != 0)
        fail_msg("sim_card_open: %s", err);
    struct keys_files kf;
    assert_int_equal(keys_locate(&sc.card.nvm, &kf), CARD_OK);
    assert_int_equal(fs_read(&sc.card.nvm, &kf.priv, 0, kp, 97), CARD_OK);
    sim_card_close(&sc);
}

static unsigned count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* After a proven clone: dst's DF11 says imported from src's serial under the group's KCV; src's
 * says backup generated; both cards hold the same private key in NVM, and neither that key nor
 * any share was in any response. */
static void check_clone(struct clone_env *e, const char *src_uri, const char *dst_uri,
                        const char *src_nvm, const char *dst_nvm, unsigned n)
{
    assert_true(e->r.proved);
    env_disconnect(e);
    uint8_t src_serial[8];
    struct cardop_key_state ss, ds;
    read_state(src_uri, &ss, src_serial, NULL);
    read_state(dst_uri, &ds, NULL, NULL);
    assert_true(ds.present);
    assert_int_equal(ds.origin, CARDOP_ORIGIN_IMPORTED);
    assert_memory_equal(ds.src_serial, src_serial, 8);
    assert_memory_equal(ds.src_kcv, e->r.kcv, 8);
    assert_int_equal(ds.export_count, 0);
    assert_true(ss.present);
    assert_true(ss.flags & CARDOP_FLAG_BACKUP);
    assert_true(ss.export_count >= 1);
    assert_memory_equal(e->r.src_serial, src_serial, 8);

    /* The KCV both cards report is the group's, derived independently here. */
    uint8_t kek[32], kcv[8];
    struct secrets s;
    all_shares(&s, n);
    assert_int_equal(kek_derive((const uint8_t(*)[32])s.share, n, kek), CARD_OK);
    assert_int_equal(kek_kcv(kek, kcv), CARD_OK);
    assert_memory_equal(kcv, e->r.kcv, 8);

    if (src_nvm != NULL && dst_nvm != NULL) {
        uint8_t kp_s[97], kp_d[97];
        read_private_key(src_nvm, kp_s);
        read_private_key(dst_nvm, kp_d);
        assert_memory_equal(kp_s, kp_d, 97);
        assert_memory_equal(kp_s + 32, e->r.src_pub, 65);
        /* Positive control: the public key did cross, and is found both ways. */
        char pub_hex[200];
        hex_encode(e->r.src_pub, 65, ' ', pub_hex, sizeof pub_hex);
        assert_true(tap_saw(e->src, e->r.src_pub, 65));
        fflush(e->trace);
        assert_non_null(strstr(e->trace_buf, pub_hex));
        /* No response of the clone carried the private scalar, in raw bytes or as trace hex. */
        assert_false(tap_saw(e->src, kp_s, 32));
        assert_false(tap_saw(e->dst, kp_s, 32));
        char hx[100];
        hex_encode(kp_s, 32, ' ', hx, sizeof hx);
        fflush(e->trace);
        assert_null(strstr(e->trace_buf, hx));
        memset(kp_s, 0, sizeof kp_s);
        memset(kp_d, 0, sizeof kp_d);
    }
    for (unsigned i = 0; i < n; i++) {
        assert_false(tap_saw(e->src, s.share[i], 32));
        assert_false(tap_saw(e->dst, s.share[i], 32));
        /* The KEK neither. */
        char hx[100];
        hex_encode(s.share[i], 32, ' ', hx, sizeof hx);
        assert_null(strstr(e->trace_buf, hx));
    }
    assert_false(tap_saw(e->src, kek, 32));
    assert_false(tap_saw(e->dst, kek, 32));
    secrets_wipe(&s);
    memset(kek, 0, sizeof kek);
}

/* ---- in-process clones ------------------------------------------------------------------ */

static void clone_blank(void **state, unsigned n)
{
    struct ctx *c = *state;
    init_card(c->uri[0], n, false, 0, false);
    init_card(c->uri[1], n, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, n);
    if (env_clone(&e) != 0)
        fail_msg("clone N=%u: %s", n, e.err);
    assert_int_equal(e.r.n, n);
    assert_true(e.r.generated && e.r.exported && e.r.imported && e.r.proved);
    assert_false(e.r.resumed || e.r.already_cloned || e.r.state_kept);
    uint8_t all = (uint8_t)((1u << n) - 1u);
    assert_int_equal(e.r.src_set, all);
    assert_int_equal(e.r.dst_set, all);
    assert_int_equal(e.r.export_count, 1);
    /* The state file is gone once the import is confirmed. */
    assert_int_equal(count_files(c->state), 0);
    /* Every APDU is counted: the library's count equals the traced and the transmitted ones. */
    unsigned long apdus = e.r.apdus_src + e.r.apdus_dst;
    assert_int_equal(apdus, trace_commands(&e));
    assert_int_equal(apdus, e.src->sent + e.dst->sent);
    /* VERIFY x2, DF10 x2, DF11, SET SHARE x2N, GENERATE, BINDING KEY, EXPORT, IMPORT, PSO */
    assert_int_equal(apdus, 10 + 2 * n);
    if (n == 3)
        assert_true(apdus <= 16);
    print_message("clone N=%u from blank key groups: %lu APDUs (src %lu, dst %lu)\n", n, apdus,
                  e.r.apdus_src, e.r.apdus_dst);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], n);
    env_close(&e);
}

static void test_clone_n1(void **state)
{
    clone_blank(state, 1);
}

static void test_clone_n3(void **state)
{
    clone_blank(state, 3);
}

static void test_clone_n8(void **state)
{
    clone_blank(state, 8);
}

/* Share 1 set at issuance on both cards (the usual case), the others at duplication: the KCV of
 * each card is then read from the card. Shares come from a callback asked only for what is
 * missing. */
struct asked {
    int calls;
    uint8_t needed;
};

static int give_shares(void *ctx, uint8_t needed, struct secrets *s, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct asked *a = ctx;
    a->calls++;
    a->needed = needed;
    for (unsigned i = 1; i <= 8; i++)
        if ((needed >> (i - 1)) & 1u) {
            share_value(i, s->share[i - 1]);
            s->shares |= (uint8_t)(1u << (i - 1));
        }
    return 0;
}

static void test_share_one_at_issuance(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0x01, false);
    init_card(c->uri[1], 3, false, 0x01, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    struct asked a = { 0, 0 };
    e.o.shares = NULL;
    e.o.get_shares = give_shares;
    e.o.shares_ctx = &a;
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.needed, 0x06);
    assert_int_equal(e.r.src_set, 0x06);
    assert_int_equal(e.r.dst_set, 0x06);
    assert_true(e.r.src_kcv_from_card && e.r.dst_kcv_from_card);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
}

/* All shares at issuance: no share is asked for, the KCVs come from the first DF10. */
static void test_all_shares_at_issuance(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0x07, false);
    init_card(c->uri[1], 3, false, 0x07, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.o.shares = NULL;
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_int_equal(e.r.src_set, 0);
    assert_int_equal(e.r.dst_set, 0);
    assert_true(e.r.src_kcv_from_card && e.r.dst_kcv_from_card);
    assert_int_equal(e.r.apdus_src + e.r.apdus_dst, 10);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* dst got a wrong share 1 at issuance: the KCVs differ and nothing is exported. */
static void test_wrong_share_refused_before_export(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0x01, false);
    init_card(c->uri[1], 3, false, 0x01, true);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_MISMATCH);
    assert_non_null(strstr(e.err, "KCV"));
    assert_non_null(strstr(e.err, "nothing was exported"));
    assert_false(e.r.exported);
    assert_int_equal(e.r.last_step, DUP_STEP_SHARES_SET);
    env_close(&e);
    struct cardop_key_state ss, ds;
    read_state(c->uri[0], &ss, NULL, NULL);
    read_state(c->uri[1], &ds, NULL, NULL);
    assert_false(ss.present);
    assert_int_equal(ss.flags, 0);
    assert_int_equal(ss.export_count, 0);
    assert_false(ds.present);
    assert_int_equal(count_files(c->state), 0);
}

/* Different share counts, and secrets that lack a share: refused before any change. */
static void test_group_size_and_missing_shares(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 2, false, 0, false);
    init_card(c->uri[2], 3, false, 0x01, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_MISMATCH);
    assert_non_null(strstr(e.err, "src has 3 shares, dst 2"));
    env_close(&e);

    env_open(&e, c->uri[0], c->uri[2], c->state, 3);
    e.shares.shares = 0x03; /* share 3 is missing from the secrets */
    assert_int_equal(env_clone(&e), DUP_E_SHARES);
    assert_non_null(strstr(e.err, "lack share 3 (src lacks 1, 2 and 3, dst lacks 2 and 3)"));
    env_close(&e);
    struct cardop_group g;
    read_state(c->uri[0], NULL, NULL, &g);
    assert_int_equal(g.present, 0);
    read_state(c->uri[2], NULL, NULL, &g);
    assert_int_equal(g.present, 0x01);
}

/* A second export (to another destination) is refused; the first clone stays intact. */
static void test_second_export_refused(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 3; i++)
        init_card(c->uri[i], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    env_close(&e);

    env_open(&e, c->uri[0], c->uri[2], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_REFUSED);
    assert_non_null(strstr(e.err, "already exported"));
    assert_false(e.r.exported);
    env_close(&e);
    struct cardop_key_state ss, ds;
    read_state(c->uri[0], &ss, NULL, NULL);
    read_state(c->uri[2], &ds, NULL, NULL);
    assert_int_equal(ss.export_count, 1);
    assert_false(ds.present);
    assert_int_equal(count_files(c->state), 0);

    /* The raw command is refused too. */
    struct transport *t = open_plain(c->uri[0]);
    struct cardop op;
    cardop_init(&op, t, "src");
    struct secret_pin p;
    make_pin(&p, PIN);
    assert_int_equal(cardop_verify(&op, PIN_REF_USER, p.v, p.len), 0);
    uint8_t blob[BLOB_MAX_LEN];
    size_t len;
    assert_int_equal(cardop_export(&op, NULL, blob, sizeof blob, &len), CARDOP_E_SW);
    assert_int_equal(op.sw, 0x6985);
    transport_close(t);
}

/* A card whose export is locked never exports: clone refuses before changing anything. */
static void test_locked_never_exports(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0x07, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct transport *t = open_plain(c->uri[0]);
    struct cardop op;
    cardop_init(&op, t, "src");
    struct secret_pin p;
    make_pin(&p, PIN);
    uint8_t pub[65], blob[BLOB_MAX_LEN];
    size_t len;
    assert_int_equal(cardop_verify(&op, PIN_REF_USER, p.v, p.len), 0);
    assert_int_equal(cardop_generate(&op, pub), 0);
    assert_int_equal(cardop_lock_export(&op), 0);
    assert_int_equal(cardop_export(&op, NULL, blob, sizeof blob, &len), CARDOP_E_SW);
    assert_int_equal(op.sw, 0x6985);
    transport_close(t);

    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_REFUSED);
    assert_non_null(strstr(e.err, "locked"));
    assert_int_equal(e.r.last_step, DUP_STEP_VERIFIED);
    env_close(&e);
    struct cardop_key_state ss;
    struct cardop_group g;
    read_state(c->uri[0], &ss, NULL, NULL);
    read_state(c->uri[1], NULL, NULL, &g);
    assert_int_equal(ss.export_count, 0);
    assert_int_equal(ss.flags, CARDOP_FLAG_LOCKED);
    assert_int_equal(g.present, 0); /* dst untouched */

    /* --lock-export locks src after a proven clone. */
    init_card(c->uri[2], 3, false, 0, false);
    init_card(c->uri[3], 3, false, 0, false);
    env_open(&e, c->uri[2], c->uri[3], c->state, 3);
    e.o.lock_export = true;
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.locked);
    env_close(&e);
    read_state(c->uri[2], &ss, NULL, NULL);
    assert_int_equal(ss.flags, CARDOP_FLAG_LOCKED | CARDOP_FLAG_BACKUP);
}

/* A wrong dst PIN: each clone stops at VERIFY with the tries left; after the allowed tries the
 * PIN is blocked and the clone says so. src never exports. */
static void test_pin_blocked(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    static const char *const want[] = {
        "VERIFY user PIN on dst: wrong PIN, 2 tries left",
        "VERIFY user PIN on dst: wrong PIN, 1 try left",
        "VERIFY user PIN on dst: wrong PIN, no tries left: the user PIN is now blocked",
        "VERIFY user PIN on dst: blocked",
    };
    for (int i = 0; i < 4; i++) {
        struct clone_env e;
        env_open(&e, c->uri[0], c->uri[1], c->state, 3);
        make_pin(&e.dst_pin, "654321");
        assert_int_equal(env_clone(&e), DUP_E_CARD);
        if (strncmp(e.err, want[i], strlen(want[i])) != 0)
            fail_msg("try %d: \"%s\"", i + 1, e.err);
        assert_null(strstr(e.err, "654321"));
        env_close(&e);
    }
    /* The right PIN no longer helps. */
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_CARD);
    assert_non_null(strstr(e.err, "blocked"));
    env_close(&e);
    struct cardop_key_state ss;
    read_state(c->uri[0], &ss, NULL, NULL);
    assert_false(ss.present);
    assert_int_equal(ss.export_count, 0);
}

/* ---- resuming ----------------------------------------------------------------------------- */

static int stop_at(void *ctx, enum dup_step step)
{
    return step == *(enum dup_step *)ctx;
}

/* Interrupted after the blob was saved: the rerun imports the saved blob without exporting. */
static void test_resume_after_save(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    enum dup_step stop = DUP_STEP_SAVED;
    e.o.after_step = stop_at;
    e.o.step_ctx = &stop;
    assert_int_equal(env_clone(&e), DUP_E_INTERRUPTED);
    assert_true(e.r.state_kept);
    struct stat st;
    assert_int_equal(stat(e.r.state_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 151);
    char path[1024];
    snprintf(path, sizeof path, "%s", e.r.state_path);
    env_close(&e);

    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.resumed);
    assert_false(e.r.exported || e.r.generated);
    assert_string_equal(e.r.state_path, path);
    assert_int_equal(stat(path, &st), -1);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
    struct cardop_key_state ss;
    read_state(c->uri[0], &ss, NULL, NULL);
    assert_int_equal(ss.export_count, 1); /* one export in all */
}

/* The connection to dst is lost on IMPORT, before it reached the card: the blob is kept and
 * the rerun imports it. */
static void test_resume_after_failed_import(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.dst->fault_ins = INS_IMPORT_WRAPPED;
    e.dst->fault = TAP_DROP_BEFORE;
    assert_int_equal(env_clone(&e), DUP_E_CARD);
    assert_non_null(strstr(e.err, "kept in"));
    assert_true(e.r.state_kept);
    env_close(&e);
    assert_int_equal(count_files(c->state), 1);

    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.resumed);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
    assert_int_equal(count_files(c->state), 0);
}

/* dst imported, but its answer was lost: the rerun sees that dst already holds src's key,
 * removes the stale blob and only runs the proof. */
static void test_import_answer_lost(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.dst->fault_ins = INS_IMPORT_WRAPPED;
    e.dst->fault = TAP_LOSE_ANSWER;
    assert_int_equal(env_clone(&e), DUP_E_CARD);
    env_close(&e);
    assert_int_equal(count_files(c->state), 1);

    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.already_cloned);
    assert_false(e.r.exported || e.r.imported);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
    assert_int_equal(count_files(c->state), 0);
}

/* The export answer is lost (the cut after EXPORT committed the flag): the rerun gets the same
 * export again, since dst still holds the same pending binding key. */
static void test_export_answer_lost(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.src->fault_ins = INS_EXPORT_WRAPPED;
    e.src->fault = TAP_LOSE_ANSWER;
    assert_int_equal(env_clone(&e), DUP_E_CARD);
    assert_false(e.r.state_kept);
    env_close(&e);
    struct cardop_key_state ss;
    read_state(c->uri[0], &ss, NULL, NULL);
    assert_true(ss.flags & CARDOP_FLAG_BACKUP);

    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.exported);
    assert_false(e.r.generated);
    /* The card counts the repeat as a second export (docs/clone.md). */
    assert_int_equal(e.r.export_count, 2);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
}

/* The hook stops after the export, before the blob is saved: same as a lost answer. */
static void test_interrupted_before_save(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 2, false, 0, false);
    init_card(c->uri[1], 2, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 2);
    enum dup_step stop = DUP_STEP_EXPORTED;
    e.o.after_step = stop_at;
    e.o.step_ctx = &stop;
    assert_int_equal(env_clone(&e), DUP_E_INTERRUPTED);
    env_close(&e);
    assert_int_equal(count_files(c->state), 0);
    env_open(&e, c->uri[0], c->uri[1], c->state, 2);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 2);
    env_close(&e);
}

/* A blob saved for dst by a clone from another source is not imported by mistake. */
static void test_saved_blob_of_other_source(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    init_card(c->uri[2], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    enum dup_step stop = DUP_STEP_SAVED;
    e.o.after_step = stop_at;
    e.o.step_ctx = &stop;
    assert_int_equal(env_clone(&e), DUP_E_INTERRUPTED);
    env_close(&e);
    env_open(&e, c->uri[2], c->uri[1], c->state, 3);
    assert_int_equal(env_clone(&e), DUP_E_STATE);
    assert_non_null(strstr(e.err, "waits in"));
    assert_false(e.r.exported);
    env_close(&e);
    struct cardop_key_state ss;
    read_state(c->uri[2], &ss, NULL, NULL);
    assert_int_equal(ss.export_count, 0);
    assert_int_equal(count_files(c->state), 1);
}

/* Unbound: the blob is named after src's serial and opens without a binding key. */
static void test_unbound_clone(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 3, false, 0, false);
    init_card(c->uri[1], 3, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.o.unbound = true;
    enum dup_step stop = DUP_STEP_SAVED;
    e.o.after_step = stop_at;
    e.o.step_ctx = &stop;
    assert_int_equal(env_clone(&e), DUP_E_INTERRUPTED);
    assert_non_null(strstr(e.r.state_path, "-unbound.blob"));
    struct stat st;
    assert_int_equal(stat(e.r.state_path, &st), 0);
    assert_int_equal(st.st_size, 86);
    env_close(&e);
    env_open(&e, c->uri[0], c->uri[1], c->state, 3);
    e.o.unbound = true;
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_true(e.r.resumed);
    check_clone(&e, c->uri[0], c->uri[1], c->nvm[0], c->nvm[1], 3);
    env_close(&e);
}

/* ---- over icsim sockets ---------------------------------------------------------------- */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void start_icsim(struct ctx *c, int i)
{
    const char *icsim = getenv("ICSIM");
    if (icsim == NULL || icsim[0] == '\0')
        icsim = "build/check/bin/icsim";
    if (access(icsim, X_OK) != 0)
        fail_msg("%s is not an executable (set ICSIM)", icsim);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(icsim, icsim, "--listen", "127.0.0.1:0", "--nvm", c->nvm[i], (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    c->pid[i] = pid;
    c->out_fd[i] = p[0];
    char line[256];
    size_t n = 0;
    long deadline = now_ms() + WAIT_MS;
    while (n < sizeof line - 1) {
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("icsim printed no \"listening on\" line");
        struct pollfd pfd = { .fd = c->out_fd[i], .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        assert_true(pr >= 0);
        if (pr == 0)
            continue;
        ssize_t r = read(c->out_fd[i], line + n, 1);
        if (r <= 0)
            fail_msg("icsim exited before listening");
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    const char *prefix = "icsim: listening on 127.0.0.1:";
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        fail_msg("unexpected first line from icsim: \"%s\"", line);
    snprintf(c->uri[i], sizeof c->uri[i], "tcp:127.0.0.1:%d", atoi(line + strlen(prefix)));
}

static void clone_over_icsim(void **state, unsigned n)
{
    struct ctx *c = *state;
    start_icsim(c, 0);
    start_icsim(c, 1);
    init_card(c->uri[0], n, false, 0, false);
    init_card(c->uri[1], n, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, n);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_int_equal(e.r.apdus_src + e.r.apdus_dst, 10 + 2 * n);
    check_clone(&e, c->uri[0], c->uri[1], NULL, NULL, n);
    env_close(&e);

    /* The keys themselves, from the NVM files once icsim is gone (kill -9: a power cut). */
    for (int i = 0; i < 2; i++) {
        kill(c->pid[i], SIGKILL);
        int st;
        waitpid(c->pid[i], &st, 0);
        c->pid[i] = 0;
    }
    uint8_t kp_s[97], kp_d[97];
    read_private_key(c->nvm[0], kp_s);
    read_private_key(c->nvm[1], kp_d);
    assert_memory_equal(kp_s, kp_d, 97);
    assert_memory_equal(kp_s + 32, e.r.src_pub, 65);
}

static void test_clone_over_icsim_n1(void **state)
{
    clone_over_icsim(state, 1);
}

static void test_clone_over_icsim(void **state)
{
    clone_over_icsim(state, 3);
}

static void test_clone_over_icsim_n8(void **state)
{
    clone_over_icsim(state, 8);
}

/* ---- the library pieces --------------------------------------------------------------- */

static void test_secrets_file(void **state)
{
    struct ctx *c = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/secrets", c->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# officers' shares\n pin = 123456\nadmin=87654321\r\n\n"
               "share.2 = 0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20\n");
    fclose(f);
    struct secrets s;
    char err[512];
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(secrets_load(path, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    if (secrets_load(path, &s, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(s.pin.len, 6);
    assert_memory_equal(s.pin.v, "123456", 6);
    assert_int_equal(s.admin.len, 8);
    assert_int_equal(s.puk.len, 0);
    assert_int_equal(s.shares, 0x02);
    assert_int_equal(s.share[1][0], 0x01);
    assert_int_equal(s.share[1][31], 0x20);
    secrets_wipe(&s);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        { "pin = 12\n", "line 1: pin must be 4 to 16" },
        { "pin = 1234\npin = 5678\n", "line 2: pin given twice" },
        { "share.1 = 00\n", "line 1: share.1 must be 64 hex digits" },
        { "share.9 = 11\n", "unknown key \"share.9\"" },
        { "secretvalue\n", "line 1: expected KEY = VALUE" },
        { "share.3 = 0000000000000000000000000000000000000000000000000000000000000000\n",
          "not all zero" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(secrets_parse(bad[i].text, strlen(bad[i].text), "test", &s, err,
                                       sizeof err), -1);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("case %zu: \"%s\"", i, err);
        assert_null(strstr(err, "secretvalue"));
    }
    char list[32];
    assert_string_equal(secrets_share_list(0x16, list, sizeof list), "2, 3 and 5");
    /* No terminal here: prompting is a clear error. */
    uint8_t buf[16];
    size_t n;
    if (!secrets_have_terminal()) {
        assert_int_equal(secrets_read_hidden("x: ", buf, sizeof buf, &n, err, sizeof err), -1);
        assert_non_null(strstr(err, "not a terminal"));
    }
}

static void test_profile_table(void **state)
{
    (void)state;
    struct secrets s;
    all_shares(&s, 3);
    s.shares = 0x01;
    make_pin(&s.pin, PIN);
    make_pin(&s.puk, PUK);
    make_pin(&s.admin, ADMIN);
    struct profile_apdu steps[PROFILE_MAX_STEPS];
    size_t n = 0;
    char err[256];
    struct profile_options po = { .shares = 3, .allow_reexport = true, .secrets = &s };
    assert_int_equal(profile_build(&po, steps, PROFILE_MAX_STEPS, &n, err, sizeof err), 0);
    /* type, 3 PINs, select, DF, 3 share EFs, 4B10, 4B11, policy, 4B12, 4B20, share 1, select,
     * activate */
    assert_int_equal(n, 17);
    unsigned secret = 0;
    for (size_t i = 0; i < n; i++)
        secret += steps[i].secret;
    assert_int_equal(secret, 4);
    assert_string_equal(steps[n - 1].label, "activate the card");
    profile_wipe(steps, n);
    s.puk.len = 0;
    assert_int_equal(profile_build(&po, steps, PROFILE_MAX_STEPS, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "PUK"));
    make_pin(&s.puk, PUK);
    s.shares = 0x08;
    assert_int_equal(profile_build(&po, steps, PROFILE_MAX_STEPS, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "share 4"));
    secrets_wipe(&s);
}

/* The policy byte written by --allow-reexport lets src export a second time. */
static void test_reexport_policy(void **state)
{
    struct ctx *c = *state;
    init_card(c->uri[0], 1, true, 0, false);
    init_card(c->uri[1], 1, false, 0, false);
    init_card(c->uri[2], 1, false, 0, false);
    struct clone_env e;
    env_open(&e, c->uri[0], c->uri[1], c->state, 1);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    env_close(&e);
    env_open(&e, c->uri[0], c->uri[2], c->state, 1);
    if (env_clone(&e) != 0)
        fail_msg("%s", e.err);
    assert_int_equal(e.r.export_count, 2);
    check_clone(&e, c->uri[0], c->uri[2], c->nvm[0], c->nvm[2], 1);
    env_close(&e);
    /* A card that is not blank is refused by init. */
    struct transport *t = open_plain(c->uri[0]);
    struct cardop op;
    cardop_init(&op, t, "card");
    struct secrets s;
    secrets_init(&s);
    make_pin(&s.pin, PIN);
    make_pin(&s.puk, PUK);
    make_pin(&s.admin, ADMIN);
    struct profile_options po = { .shares = 1, .secrets = &s };
    char err[256];
    assert_int_equal(profile_run(&op, &po, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not blank"));
    transport_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clone_n1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_n3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_n8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_one_at_issuance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_shares_at_issuance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_share_refused_before_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_size_and_missing_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_export_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_never_exports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_failed_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_answer_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_answer_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_before_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saved_blob_of_other_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_over_icsim_n1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_over_icsim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_over_icsim_n8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reexport_policy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Issuance and reissuance on simulated cards (sim: NVM files) with the example card types
 * (examples/types.json): files checked byte for byte against the record, both roles, every
 * refusal leaving the issuance file unchanged, a wrong status word spoiling the card, identity
 * read through the correlation table for two types whose identity sits in different files,
 * reissue from a card and by identity, reruns, and SIGKILL at random instants of a reissue;
 * everything on both back ends of the issuance file (testdb.h). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "card_ops.h"
#include "idb.h"
#include "ins.h"
#include "issue.h"
#include "reissue.h"
#include "secrets.h"
#include "testdb.h"
#include "transport.h"

#define PUK "12345678"
#define ADMIN "87654321"
#define SHARE1 "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"

struct env {
    struct testdb t; /* t.dir holds the simulated cards */
    struct idb *db;
    struct secrets issuer;
    unsigned next_card;
};

static void make_pin(struct secret_pin *p, const char *v)
{
    memset(p, 0, sizeof *p);
    p->len = strlen(v);
    memcpy(p->v, v, p->len);
}

static void card_path(const struct env *e, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "sim:%s/%s.nvm", e->t.dir, name);
}

/* Opens (creating on first use) the simulated card name. */
static struct transport *card_open(const struct env *e, const char *name, struct cardop *c)
{
    char uri[160], err[256];
    struct transport *t = NULL;
    card_path(e, name, uri, sizeof uri);
    int rc = transport_open(uri, &t, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", uri, err);
    cardop_init(c, t, name);
    return t;
}

static void add_record(struct env *e, const char *identity, const char *type, bool share)
{
    struct idb_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.identity, sizeof r.identity, "%s", identity);
    snprintf(r.card_type, sizeof r.card_type, "%s", type);
    static const char *const kv[][2] = {
        { "holder", "Ada Lovelace" }, { "address", "12 St James's Square, London" },
        { "member", NULL },           { "expiry", "2029-12-31" },
        { "password", "246810" },
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        struct idb_item *it = &r.items[r.nitems++];
        snprintf(it->name, sizeof it->name, "%s", kv[i][0]);
        snprintf(it->value, sizeof it->value, "%s", kv[i][1] != NULL ? kv[i][1] : identity);
    }
    if (share) {
        struct idb_item *it = &r.items[r.nitems++];
        snprintf(it->name, sizeof it->name, "share1");
        snprintf(it->value, sizeof it->value, SHARE1);
    }
    char err[256];
    assert_int_equal(idb_record_insert(e->db, &r, err, sizeof err), IDB_OK);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (e == NULL || testdb_open("issue", "examples/types.json", &e->t, &e->db) != 0) {
        free(e);
        return -1;
    }
    secrets_init(&e->issuer);
    make_pin(&e->issuer.puk, PUK);
    make_pin(&e->issuer.admin, ADMIN);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    testdb_close(&e->t, e->db);
    free(e);
    return 0;
}

static struct issue_params params(struct env *e, const char *identity, enum ct_role role)
{
    struct issue_params p = { .db = e->db, .identity = identity, .role = role,
                              .issuer = &e->issuer, .operator_name = "test" };
    return p;
}

/* Reads an EF by path from the MF (DF, EF) with READ BINARY of len bytes. */
static void read_ef(struct cardop *c, uint16_t df, uint16_t ef, uint8_t *out, size_t len)
{
    uint8_t sel[] = { 0x00, 0xA4, 0x08, 0x0C, 0x04, (uint8_t)(df >> 8), (uint8_t)df,
                      (uint8_t)(ef >> 8), (uint8_t)ef };
    uint8_t rd[] = { 0x00, 0xB0, 0x00, 0x00, (uint8_t)len };
    size_t n = 0;
    assert_int_equal(cardop_command(c, "select", sel, sizeof sel, NULL, 0, NULL), 0);
    assert_int_equal(cardop_command(c, "read", rd, sizeof rd, out, len, &n), 0);
    assert_int_equal(n, len);
}

/* The EF holds value then zero bytes up to len. */
static void assert_ef_text(struct cardop *c, uint16_t df, uint16_t ef, size_t len,
                           const char *value)
{
    uint8_t buf[96] = { 0 }, want[96] = { 0 };
    read_ef(c, df, ef, buf, len);
    memcpy(want, value, strlen(value));
    assert_memory_equal(buf, want, len);
}

static uint8_t life_cycle(struct cardop *c)
{
    uint8_t lcs = 0;
    assert_int_equal(cardop_life_cycle(c, &lcs), 0);
    return lcs;
}

static unsigned history_count;
static char history_events[512];
static void count_event(void *ctx, const struct idb_event *ev)
{
    (void)ctx;
    history_count++;
    size_t l = strlen(history_events);
    snprintf(history_events + l, sizeof history_events - l, "%s%s", l ? "," : "", ev->event);
}

static const char *events_of(struct env *e, const char *identity)
{
    struct idb_record r;
    char err[256];
    history_count = 0;
    history_events[0] = '\0';
    assert_int_equal(idb_record_by_identity(e->db, identity, &r, err, sizeof err), IDB_OK);
    assert_int_equal(idb_history_list(e->db, r.id, count_event, NULL, err, sizeof err),
                     IDB_OK);
    return history_events;
}

static void get_record(struct env *e, const char *identity, struct idb_record *r)
{
    char err[256];
    assert_int_equal(idb_record_by_identity(e->db, identity, r, err, sizeof err), IDB_OK);
}

/* ---- issue ------------------------------------------------------------------------------ */

static void test_issue_original_files_match_record(void **state)
{
    struct env *e = *state;
    add_record(e, "1000000000000001", "ICDUP-1", true);
    struct cardop c;
    struct transport *t = card_open(e, "orig1", &c);
    struct issue_params p = params(e, "1000000000000001", CT_ORIGINAL);
    struct issue_result res;
    char err[512] = "";
    int rc = issue_card(&p, &c, &res, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(res.issue_count, 1);
    assert_false(res.spoiled);
    assert_int_equal(life_cycle(&c), LCS_OPERATIONAL);

    assert_ef_text(&c, 0x5000, 0x5001, 16, "1000000000000001");
    assert_ef_text(&c, 0x5000, 0x5002, 40, "Ada Lovelace");
    assert_ef_text(&c, 0x5000, 0x5003, 80, "12 St James's Square, London");
    uint8_t b[4];
    read_ef(&c, 0x5000, 0x5004, b, 4);
    assert_memory_equal(b, "\x20\x29\x12\x31", 4); /* BCD 20291231 */
    read_ef(&c, 0x5000, 0x5005, b, 2);
    assert_memory_equal(b, "\x00\x01", 2);
    read_ef(&c, 0x5000, 0x5006, b, 1);
    assert_int_equal(b[0], 'O');
    uint8_t type[40];
    size_t tl = 0;
    assert_int_equal(cardop_get_data(&c, 0xDF02, type, sizeof type, &tl), 0);
    assert_int_equal(tl, 7);
    assert_memory_equal(type, "ICDUP-1", 7);
    /* the key group: 3 shares, share 1 set from the record */
    struct cardop_group g;
    assert_int_equal(cardop_key_group(&c, &g), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.present, 0x01);
    /* the password is the user PIN */
    assert_int_equal(cardop_verify(&c, PIN_REF_USER, (const uint8_t *)"246810", 6), 0);
    assert_int_equal(cardop_verify(&c, PIN_REF_ADMIN, (const uint8_t *)ADMIN, 8), 0);

    struct idb_record r;
    get_record(e, "1000000000000001", &r);
    assert_true(r.issued);
    assert_int_equal(r.issue_count, 1);
    assert_true(r.has_serial);
    assert_memory_equal(r.card_serial, res.serial, 8);
    assert_false(r.has_pending);
    assert_string_equal(events_of(e, "1000000000000001"), "personalizing,issued");

    /* card face and stripe of the record: the PAN is the IIN and the member number's last 12
     * digits with the Luhn digit */
    char png[160], stripe[160], text[256] = "";
    snprintf(png, sizeof png, "%s/face.png", e->t.dir);
    snprintf(stripe, sizeof stripe, "%s/stripe.txt", e->t.dir);
    assert_int_equal(issue_print(e->db, &r, NULL, png, stripe, err, sizeof err), 0);
    FILE *f = fopen(png, "rb");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(text, "\x89PNG\r\n\x1a\n", 8);
    f = fopen(stripe, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "track1=%B9990010000000000019^LOVELACE/ADA^2912"));
    assert_non_null(strstr(text, "track2=;9990010000000000019=2912"));
    transport_close(t);
}

static void test_issue_backup_role(void **state)
{
    struct env *e = *state;
    add_record(e, "1000000000000002", "ICDUP-1", true);
    struct cardop c, b;
    struct transport *t = card_open(e, "orig2", &c), *tb = card_open(e, "back2", &b);
    struct issue_result res;
    char err[512] = "";
    struct issue_params p = params(e, "1000000000000002", CT_BACKUP);
    /* no original yet: refused, backup card still blank */
    assert_int_equal(issue_card(&p, &b, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "no original card"));
    assert_int_equal(life_cycle(&b), LCS_CREATION);
    p.role = CT_ORIGINAL;
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), 0);
    p.role = CT_BACKUP;
    assert_int_equal(issue_card(&p, &b, &res, err, sizeof err), 0);
    assert_int_equal(res.issue_count, 1);
    uint8_t role;
    read_ef(&b, 0x5000, 0x5006, &role, 1);
    assert_int_equal(role, 'B');
    uint8_t cnt[2];
    read_ef(&b, 0x5000, 0x5005, cnt, 2);
    assert_memory_equal(cnt, "\x00\x01", 2); /* the count of the original it backs */
    struct idb_record r;
    get_record(e, "1000000000000002", &r);
    assert_int_equal(r.issue_count, 1);
    assert_int_equal(r.backup_count, 1);
    transport_close(t);
    transport_close(tb);
}

static void test_issue_refusals_change_nothing(void **state)
{
    struct env *e = *state;
    add_record(e, "1000000000000003", "ICDUP-1", false);
    struct cardop c, d;
    struct transport *t = card_open(e, "orig3", &c), *td = card_open(e, "other3", &d);
    struct issue_result res;
    char err[512] = "";
    struct issue_params p = params(e, "1000000000000003", CT_ORIGINAL);

    /* unknown record */
    p.identity = "9999";
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "no record 9999"));
    /* missing issuer secrets: refused before the card is touched */
    p.identity = "1000000000000003";
    p.issuer = NULL;
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "--secrets"));
    assert_int_equal(life_cycle(&c), LCS_CREATION);
    /* unknown type and design */
    p.issuer = &e->issuer;
    p.card_type = "NOPE";
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "NOPE"));
    p.card_type = NULL;
    p.design = "nope";
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    p.design = NULL;
    assert_string_equal(events_of(e, "1000000000000003"), "");

    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), 0);
    /* already issued */
    assert_int_equal(issue_card(&p, &d, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "already issued"));
    assert_int_equal(life_cycle(&d), LCS_CREATION);
    /* card not blank: a second record onto the issued card */
    add_record(e, "1000000000000004", "ICDUP-1", false);
    p.identity = "1000000000000004";
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "not blank"));
    struct idb_record r;
    get_record(e, "1000000000000004", &r);
    assert_false(r.issued);
    assert_int_equal(r.issue_count, 0);
    assert_false(r.has_pending);
    assert_string_equal(events_of(e, "1000000000000004"), "");
    assert_int_equal(life_cycle(&c), LCS_OPERATIONAL); /* the good card is untouched */
    transport_close(t);
    transport_close(td);
}

static void test_wrong_status_word_spoils_card(void **state)
{
    struct env *e = *state;
    char err[512] = "";
    /* A type whose script expects 9000 from a command the card refuses (6A82). */
    struct ct_type *bad = calloc(1, sizeof *bad);
    assert_int_equal(idb_type_get(e->db, "ICDUP-1", bad, err, sizeof err), IDB_OK);
    struct ct_file *f = calloc(1, sizeof *f);
    f->types[0] = *bad;
    f->ntypes = 1;
    struct ct_type *t = &f->types[0];
    snprintf(t->name, sizeof t->name, "BROKEN");
    memcpy(t->type_value, "BROKEN", 6);
    t->type_value_len = 6;
    struct ct_step *s = &t->script[CT_ORIGINAL][5];
    static const uint8_t sel_missing[] = { 0x77, 0x77 };
    memcpy(s->header, "\x00\xA4\x00\x0C", 4);
    memcpy(s->data, sel_missing, 2);
    s->data_len = 2;
    s->item[0] = '\0';
    s->expect_sw = 0x9000;
    assert_int_equal(idb_types_store(e->db, f, err, sizeof err), IDB_OK);
    free(f);
    free(bad);

    add_record(e, "2000000000000001", "BROKEN", false);
    struct cardop c;
    struct transport *tr = card_open(e, "spoil", &c);
    struct issue_params p = params(e, "2000000000000001", CT_ORIGINAL);
    struct issue_result res;
    assert_int_equal(issue_card(&p, &c, &res, err, sizeof err), -1);
    assert_true(res.spoiled);
    assert_non_null(strstr(err, "step 6"));
    assert_non_null(strstr(err, "6A82"));
    assert_non_null(strstr(err, "spoiled"));
    assert_int_equal(life_cycle(&c), LCS_TERMINATED);
    struct idb_record r;
    get_record(e, "2000000000000001", &r);
    assert_false(r.issued);
    assert_int_equal(r.issue_count, 0);
    assert_false(r.has_pending);
    assert_string_equal(events_of(e, "2000000000000001"), "personalizing,spoiled");
    transport_close(tr);
}

/* ---- identity and reissue ---------------------------------------------------------------- */

static void issue_on(struct env *e, const char *identity, const char *card)
{
    struct cardop c;
    struct transport *t = card_open(e, card, &c);
    struct issue_params p = params(e, identity, CT_ORIGINAL);
    struct issue_result res;
    char err[512] = "";
    int rc = issue_card(&p, &c, &res, err, sizeof err);
    if (rc != 0)
        fail_msg("issue %s: %s", identity, err);
    transport_close(t);
}

static void test_identity_through_correlation(void **state)
{
    struct env *e = *state;
    add_record(e, "3000000000000001", "ICDUP-1", false);
    add_record(e, "3000000000000002", "ICDUP-DI", false);
    issue_on(e, "3000000000000001", "type1");
    issue_on(e, "3000000000000002", "typedi");
    char id[80], type[CT_NAME_MAX + 1], err[512];
    struct cardop c;
    struct transport *t = card_open(e, "type1", &c);
    assert_int_equal(issue_read_identity(e->db, &c, id, sizeof id, type, err, sizeof err), 0);
    assert_string_equal(id, "3000000000000001");
    assert_string_equal(type, "ICDUP-1");
    transport_close(t);
    t = card_open(e, "typedi", &c);
    assert_int_equal(issue_read_identity(e->db, &c, id, sizeof id, type, err, sizeof err), 0);
    assert_string_equal(id, "3000000000000002");
    assert_string_equal(type, "ICDUP-DI");
    /* the DI card has no EF 5001: its identity is not where ICDUP-1 keeps it */
    uint8_t sel[] = { 0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x01 };
    assert_int_equal(cardop_command(&c, "select", sel, sizeof sel, NULL, 0, NULL),
                     CARDOP_E_SW);
    assert_int_equal(c.sw, 0x6A82);
    transport_close(t);
    /* a blank card: no type readout answers */
    t = card_open(e, "blank-id", &c);
    assert_int_equal(issue_read_identity(e->db, &c, id, sizeof id, type, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown card type"));
    transport_close(t);
}

static struct reissue_params reissue_params(struct env *e, struct cardop *old,
                                            const char *identity)
{
    struct reissue_params rp = { .issue = params(e, identity, CT_ORIGINAL), .old_card = old };
    static char path[160];
    snprintf(path, sizeof path, "%s/reissue.json", e->t.dir);
    rp.reissue_file = path;
    return rp;
}

static void test_reissue_from_card_and_rerun(void **state)
{
    struct env *e = *state;
    add_record(e, "4000000000000001", "ICDUP-DI", true);
    issue_on(e, "4000000000000001", "r-old");
    struct cardop old, nw;
    struct transport *to = card_open(e, "r-old", &old), *tn = card_open(e, "r-new", &nw);
    struct reissue_params rp = reissue_params(e, &old, NULL);
    rp.issue.design = "classic";
    struct reissue_result res;
    char err[512] = "";
    int rc = reissue_card(&rp, &nw, &res, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(res.identity, "4000000000000001");
    assert_int_equal(res.issued.issue_count, 2);
    assert_false(res.already_done);
    assert_true(res.old_terminated);
    assert_int_equal(life_cycle(&old), LCS_TERMINATED);
    assert_int_equal(life_cycle(&nw), LCS_OPERATIONAL);
    uint8_t cnt[2];
    read_ef(&nw, 0x6000, 0x6014, cnt, 2);
    assert_memory_equal(cnt, "\x00\x02", 2);
    struct idb_record r;
    get_record(e, "4000000000000001", &r);
    assert_true(r.issued);
    assert_int_equal(r.issue_count, 2);
    assert_string_equal(r.design, "classic");
    assert_memory_equal(r.card_serial, res.issued.serial, 8);
    /* the reissuing file: the record, mode 0600 */
    struct stat sb;
    assert_int_equal(stat(rp.reissue_file, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    FILE *f = fopen(rp.reissue_file, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"identity\": \"4000000000000001\""));
    assert_non_null(strstr(text, "\"holder\": \"Ada Lovelace\""));
    assert_string_equal(events_of(e, "4000000000000001"),
                        "personalizing,issued,reissue,personalizing,issued,terminated");

    /* rerun: the old card is terminated, the new one current: nothing more happens */
    rc = reissue_card(&rp, &nw, &res, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_true(res.already_done);
    assert_int_equal(res.issued.issue_count, 2);
    get_record(e, "4000000000000001", &r);
    assert_int_equal(r.issue_count, 2);
    assert_string_equal(events_of(e, "4000000000000001"),
                        "personalizing,issued,reissue,personalizing,issued,terminated");
    transport_close(to);
    transport_close(tn);
}

static void test_reissue_lost_card_by_id(void **state)
{
    struct env *e = *state;
    add_record(e, "5000000000000001", "ICDUP-1", false);
    char err[512] = "";
    struct cardop nw;
    struct transport *tn = card_open(e, "lost-new", &nw);
    struct reissue_params rp = reissue_params(e, NULL, "5000000000000001");
    struct reissue_result res;
    /* never issued: refused */
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "never issued"));
    issue_on(e, "5000000000000001", "lost-old");
    rp.issue.card_type = "ICDUP-DI"; /* the new card is a dual-interface one */
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), 0);
    assert_int_equal(res.issued.issue_count, 2);
    assert_string_equal(res.issued.card_type, "ICDUP-DI");
    assert_false(res.old_terminated);
    char id[80], type[CT_NAME_MAX + 1];
    assert_int_equal(issue_read_identity(e->db, &nw, id, sizeof id, type, err, sizeof err), 0);
    assert_string_equal(type, "ICDUP-DI");
    struct idb_record r;
    get_record(e, "5000000000000001", &r);
    assert_string_equal(r.card_type, "ICDUP-DI");
    /* rerun with the same new card: already done, the count stays */
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), 0);
    assert_true(res.already_done);
    get_record(e, "5000000000000001", &r);
    assert_int_equal(r.issue_count, 2);
    /* unknown identity */
    rp.issue.identity = "nobody";
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "no record nobody"));
    transport_close(tn);
}

static void test_refused_reissue_keeps_old_card(void **state)
{
    struct env *e = *state;
    add_record(e, "5500000000000001", "ICDUP-1", false);
    issue_on(e, "5500000000000001", "keep-old");
    char err[512] = "";
    struct cardop old, nw, other;
    struct transport *to = card_open(e, "keep-old", &old), *tn = card_open(e, "keep-new", &nw);
    struct reissue_params rp = reissue_params(e, &old, NULL);
    struct reissue_result res;
    /* no issuer secrets: refused before the flag is reset */
    rp.issue.issuer = NULL;
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "--secrets"));
    /* an unknown card type for the new card: the same */
    rp.issue.issuer = &e->issuer;
    rp.issue.card_type = "NOPE";
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), -1);
    struct idb_record r;
    get_record(e, "5500000000000001", &r);
    assert_true(r.issued);
    assert_int_equal(r.issue_count, 1);
    assert_int_equal(life_cycle(&old), LCS_OPERATIONAL);
    assert_int_equal(life_cycle(&nw), LCS_CREATION);
    assert_string_equal(events_of(e, "5500000000000001"), "personalizing,issued");

    /* a reissue that reset the flag and then stopped: a plain issue may not take over (the
     * old card would stay live); the reissue rerun finishes and terminates the old card */
    char e2[256];
    assert_int_equal(idb_record_mark_unissued(e->db, r.id, e2, sizeof e2), IDB_OK);
    struct transport *tt = card_open(e, "keep-other", &other);
    struct issue_params p = params(e, "5500000000000001", CT_ORIGINAL);
    struct issue_result ir;
    assert_int_equal(issue_card(&p, &other, &ir, err, sizeof err), -1);
    assert_non_null(strstr(err, "reissue in progress"));
    assert_int_equal(life_cycle(&other), LCS_CREATION);
    rp.issue.card_type = NULL;
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), 0);
    assert_int_equal(res.issued.issue_count, 2);
    assert_true(res.old_terminated);
    transport_close(to);
    transport_close(tn);
    transport_close(tt);
}

/* A record claimed by a branch (idb_claim) is the branch's until it confirms or aborts: a local
 * issue or reissue may not make a second card for it meanwhile. */
static void test_claimed_record_not_issued_here(void **state)
{
    struct env *e = *state;
    add_record(e, "5600000000000001", "ICDUP-1", false);
    add_record(e, "5600000000000002", "ICDUP-1", false);
    issue_on(e, "5600000000000002", "claim-old");
    char err[512] = "";
    struct idb_claim c1, c2;
    assert_int_equal(idb_claim(e->db, "5600000000000001", "branch-9", "r1", 600, &c1, NULL, err,
                               sizeof err),
                     IDB_OK);
    assert_int_equal(idb_claim(e->db, "5600000000000002", "branch-9", "r2", 600, &c2, NULL, err,
                               sizeof err),
                     IDB_OK);
    struct cardop nw, old;
    struct transport *tn = card_open(e, "claim-new", &nw), *to = card_open(e, "claim-old", &old);
    struct issue_params p = params(e, "5600000000000001", CT_ORIGINAL);
    struct issue_result ir;
    assert_int_equal(issue_card(&p, &nw, &ir, err, sizeof err), -1);
    assert_non_null(strstr(err, "claimed by branch branch-9"));
    struct reissue_params rp = reissue_params(e, &old, NULL);
    struct reissue_result res;
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "claimed by branch branch-9"));
    assert_int_equal(life_cycle(&nw), LCS_CREATION);
    assert_int_equal(life_cycle(&old), LCS_OPERATIONAL);
    /* aborted: the old card is the live one again, and a local reissue goes ahead */
    assert_int_equal(idb_abort(e->db, c2.token, "branch-9", "r3", NULL, err, sizeof err), IDB_OK);
    assert_int_equal(reissue_card(&rp, &nw, &res, err, sizeof err), 0);
    assert_int_equal(res.issued.issue_count, 2);
    transport_close(tn);
    transport_close(to);
}

/* ---- SIGKILL at random instants ---------------------------------------------------------- */

static int child_reissue(struct env *e, const char *old_name, const char *new_name)
{
    char err[512];
    struct idb *db;
    if (idb_open(e->t.uri, false, &db, err, sizeof err) != IDB_OK)
        return 3;
    struct cardop old, nw;
    struct transport *to = card_open(e, old_name, &old), *tn = card_open(e, new_name, &nw);
    struct reissue_params rp = reissue_params(e, &old, NULL);
    rp.issue.db = db;
    struct reissue_result res;
    int rc = reissue_card(&rp, &nw, &res, err, sizeof err);
    transport_close(to);
    transport_close(tn);
    idb_close(db);
    return rc == 0 ? 0 : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Kills a reissue at an instant in [0, span) seconds, then reruns it to the end (a spoiled
 * card is replaced by a blank one, as an operator would). Checks that exactly one good new
 * card exists, the count went up by exactly one and the history is complete. */
static void kill_and_rerun(struct env *e, const char *identity, unsigned round, double at)
{
    char old_name[32], new_name[32];
    snprintf(old_name, sizeof old_name, "k%u-old", round);
    snprintf(new_name, sizeof new_name, "k%u-new0", round);
    issue_on(e, identity, old_name);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_reissue(e, old_name, new_name));
    struct timespec d = { (time_t)at, (long)((at - (double)(time_t)at) * 1e9) };
    nanosleep(&d, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);

    /* rerun until done, with a fresh blank card after each spoiled one */
    char err[512];
    struct reissue_result res;
    int rc = -1;
    unsigned cards = 1;
    for (unsigned attempt = 0; attempt < 3 && rc != 0; attempt++) {
        struct cardop old, nw;
        struct transport *to = card_open(e, old_name, &old), *tn = card_open(e, new_name, &nw);
        struct reissue_params rp = reissue_params(e, &old, NULL);
        rc = reissue_card(&rp, &nw, &res, err, sizeof err);
        transport_close(to);
        transport_close(tn);
        if (rc != 0) {
            if (strstr(err, "spoiled") == NULL)
                fail_msg("round %u: rerun: %s", round, err);
            snprintf(new_name, sizeof new_name, "k%u-new%u", round, cards++);
        }
    }
    assert_int_equal(rc, 0);

    struct idb_record r;
    get_record(e, identity, &r);
    assert_true(r.issued);
    assert_false(r.has_pending);
    /* exactly one good new card: the current one, operational, reading back as identity */
    unsigned good = 0;
    for (unsigned i = 0; i < cards; i++) {
        char name[32], id[80], type[CT_NAME_MAX + 1];
        snprintf(name, sizeof name, "k%u-new%u", round, i);
        struct cardop c;
        struct transport *t = card_open(e, name, &c);
        uint8_t serial[8];
        assert_int_equal(cardop_serial(&c, serial), 0);
        if (life_cycle(&c) == LCS_OPERATIONAL &&
            issue_read_identity(e->db, &c, id, sizeof id, type, err, sizeof err) == 0) {
            assert_string_equal(id, identity);
            assert_memory_equal(serial, r.card_serial, 8);
            good++;
        } else {
            assert_int_equal(life_cycle(&c) == LCS_TERMINATED ||
                                 life_cycle(&c) == LCS_CREATION, 1);
        }
        transport_close(t);
    }
    assert_int_equal(good, 1);
    struct cardop old;
    struct transport *to = card_open(e, old_name, &old);
    assert_int_equal(life_cycle(&old), LCS_TERMINATED);
    transport_close(to);
    const char *ev = events_of(e, identity);
    assert_non_null(strstr(ev, "reissue"));
    assert_non_null(strstr(ev, "terminated"));
    (void)ev;
}

static void test_sigkill_during_reissue(void **state)
{
    struct env *e = *state;
    /* How long a whole reissue takes here: kills are spread over it. */
    add_record(e, "6000000000000000", "ICDUP-1", true);
    issue_on(e, "6000000000000000", "timing-old");
    double t0 = now_s();
    assert_int_equal(child_reissue(e, "timing-old", "timing-new"), 0);
    double span = now_s() - t0;
    srand((unsigned)time(NULL));
    for (unsigned round = 0; round < 20; round++) {
        char identity[32];
        snprintf(identity, sizeof identity, "60000000000000%02u", round + 1);
        add_record(e, identity, "ICDUP-1", true);
        unsigned before_count = 1;
        double at = span * ((double)rand() / RAND_MAX) * 1.1;
        kill_and_rerun(e, identity, round, at);
        struct idb_record r;
        get_record(e, identity, &r);
        assert_int_equal(r.issue_count, before_count + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_original_files_match_record),
        cmocka_unit_test(test_issue_backup_role),
        cmocka_unit_test(test_issue_refusals_change_nothing),
        cmocka_unit_test(test_wrong_status_word_spoils_card),
        cmocka_unit_test(test_identity_through_correlation),
        cmocka_unit_test(test_reissue_from_card_and_rerun),
        cmocka_unit_test(test_reissue_lost_card_by_id),
        cmocka_unit_test(test_refused_reissue_keeps_old_card),
        cmocka_unit_test(test_claimed_record_not_issued_here),
        cmocka_unit_test(test_sigkill_during_reissue),
    };
    return TESTDB_RUN(tests, setup, teardown);
}

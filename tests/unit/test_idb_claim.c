/* Claims of the central issuance system (idb_claim, idb_confirm, idb_abort,
 * idb_claims_expire; docs/issuance.md "Claims"), on each back end, each test on a fresh
 * issuance file with the example card types and four records (C1 issued once, C2-C4 never):
 *   - claim then confirm: flag, issue number, count, serial, claim state, history; a
 *     confirm naming the card's type and design: known ones become the record's, an unknown
 *     type leaves the record's and is named in the history, a bad name is refused;
 *   - a live claim refuses every other claim and names its branch; unknown records and
 *     tokens; another branch's token; abort restores the flag as it was before the claim;
 *   - idempotency: a repeated request id gets the first result (success or refusal) and is
 *     not applied again; one reused for another request is refused; 8 threads sending the
 *     same request at once apply it once; bad request ids, tokens, leases refused;
 *   - leases: an expired claim may still be confirmed until released, another claim releases
 *     it, idb_claims_expire releases the rest;
 *   - 16 threads, each with its own connection, claiming 4 records at once: never two live
 *     claims on one record, and after the confirms each record's count equals its confirmed
 *     claims, whose issue numbers are 1, 2, 3, ...
 * Run from the repo root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "idb.h"
#include "testdb.h"

#define LEASE 600u

static const uint8_t SERIAL_OLD[IDB_SERIAL_LEN] = { 0xA0, 1, 2, 3, 4, 5, 6, 7 };
static const uint8_t SERIAL_NEW[IDB_SERIAL_LEN] = { 0xB0, 1, 2, 3, 4, 5, 6, 7 };

struct env {
    struct testdb t;
    struct idb *db;
    char err[512];
};

static void add_record(struct idb *db, const char *identity)
{
    struct idb_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.identity, sizeof r.identity, "%s", identity);
    snprintf(r.card_type, sizeof r.card_type, "ICDUP-1");
    static const char *const kv[][2] = { { "holder", "Ada Lovelace" }, { "member", "1001" },
                                         { "expiry", "2029-12-31" },
                                         { "password", "pw-secret-1" } };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        snprintf(r.items[i].name, sizeof r.items[i].name, "%s", kv[i][0]);
        snprintf(r.items[i].value, sizeof r.items[i].value, "%s", kv[i][1]);
    }
    r.nitems = sizeof kv / sizeof kv[0];
    char err[256];
    if (idb_record_insert(db, &r, err, sizeof err) != IDB_OK)
        fail_msg("%s", err);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (e == NULL || testdb_open("claim", "examples/types.json", &e->t, &e->db) != 0) {
        free(e);
        return -1;
    }
    for (int i = 1; i <= 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "C%d", i);
        add_record(e->db, id);
    }
    /* C1 has an original card */
    struct idb_record r;
    if (idb_record_by_identity(e->db, "C1", &r, e->err, sizeof e->err) != IDB_OK ||
        idb_record_mark_issued(e->db, r.id, SERIAL_OLD, "ICDUP-1", NULL, e->err,
                               sizeof e->err) != IDB_OK) {
        fprintf(stderr, "setup: %s\n", e->err);
        testdb_close(&e->t, e->db);
        free(e);
        return -1;
    }
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

/* ---- helpers --------------------------------------------------------------------------- */

static void get(struct env *e, const char *identity, struct idb_record *r)
{
    if (idb_record_by_identity(e->db, identity, r, e->err, sizeof e->err) != IDB_OK)
        fail_msg("%s", e->err);
}

struct events {
    char list[2048];
    char last_operator[IDB_OPERATOR_MAX + 1];
    char last_detail[512];
    bool last_has_serial;
    uint8_t last_serial[IDB_SERIAL_LEN];
};

static void add_event(void *ctx, const struct idb_event *ev)
{
    struct events *s = ctx;
    size_t n = strlen(s->list);
    snprintf(s->list + n, sizeof s->list - n, "%s%s", n > 0 ? "," : "", ev->event);
    snprintf(s->last_operator, sizeof s->last_operator, "%s", ev->operator_name);
    snprintf(s->last_detail, sizeof s->last_detail, "%s", ev->detail);
    s->last_has_serial = ev->has_serial;
    memcpy(s->last_serial, ev->card_serial, IDB_SERIAL_LEN);
}

static void keep_last(void *ctx, const struct idb_event *ev)
{
    *(struct idb_event *)ctx = *ev;
}

/* The events of a record, comma-separated, oldest first. */
static struct events events_of(struct env *e, const char *identity)
{
    struct idb_record r;
    struct events s;
    memset(&s, 0, sizeof s);
    get(e, identity, &r);
    assert_int_equal(idb_history_list(e->db, r.id, add_event, &s, e->err, sizeof e->err),
                     IDB_OK);
    return s;
}

static unsigned count_events(const char *list, const char *event)
{
    unsigned n = 0;
    size_t len = strlen(event);
    for (const char *p = list; (p = strstr(p, event)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            n++;
    return n;
}

static bool is_token(const char *s)
{
    if (strlen(s) != IDB_TOKEN_LEN)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* Field by field (a struct's padding is not part of its value). */
static void assert_same_claim(const struct idb_claim *a, const struct idb_claim *b)
{
    assert_string_equal(a->token, b->token);
    assert_string_equal(a->branch, b->branch);
    assert_string_equal(a->identity, b->identity);
    assert_int_equal(a->record_id, b->record_id);
    assert_int_equal(a->issue_number, b->issue_number);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->open, b->open);
}

static struct idb_claim claim_ok(struct env *e, const char *identity, const char *branch,
                                 const char *req, unsigned lease)
{
    struct idb_claim c;
    int rc = idb_claim(e->db, identity, branch, req, lease, &c, NULL, e->err, sizeof e->err);
    if (rc != IDB_OK)
        fail_msg("claim %s by %s: %d %s", identity, branch, rc, e->err);
    return c;
}

/* ---- claim, confirm, abort ------------------------------------------------------------- */

static void test_claim_then_confirm(void **state)
{
    struct env *e = *state;
    struct idb_claim c;
    struct idb_record rec;
    time_t before = time(NULL);
    assert_int_equal(idb_claim(e->db, "C1", "branch-7", "req-1", LEASE, &c, &rec, e->err,
                               sizeof e->err),
                     IDB_OK);
    assert_string_equal(e->err, "");
    assert_true(is_token(c.token));
    assert_string_equal(c.branch, "branch-7");
    assert_string_equal(c.identity, "C1");
    assert_int_equal(c.issue_number, 2);
    assert_true(c.open);
    /* the database's clock is this machine's */
    assert_true(c.expires_at >= (int64_t)before + LEASE - 2 &&
                c.expires_at <= (int64_t)time(NULL) + LEASE + 2);
    /* the record for the personalization: items included, flag reset, count unchanged */
    assert_string_equal(rec.identity, "C1");
    assert_string_equal(idb_record_item(&rec, "password"), "pw-secret-1");
    assert_false(rec.issued);
    assert_int_equal(rec.issue_count, 1);
    assert_memory_equal(rec.card_serial, SERIAL_OLD, IDB_SERIAL_LEN);
    assert_int_equal(rec.id, c.record_id);
    idb_record_wipe(&rec);
    struct events ev = events_of(e, "C1");
    assert_string_equal(ev.list, "claimed");
    assert_string_equal(ev.last_operator, "branch-7");
    assert_null(strstr(ev.last_detail, "pw-secret-1"));

    struct idb_claim done;
    assert_int_equal(idb_confirm(e->db, c.token, "branch-7", "req-2", SERIAL_NEW, &done,
                                 e->err, sizeof e->err),
                     IDB_OK);
    assert_string_equal(done.token, c.token);
    assert_false(done.open);
    assert_int_equal(done.issue_number, 2);
    get(e, "C1", &rec);
    assert_true(rec.issued);
    assert_int_equal(rec.issue_count, 2);
    assert_memory_equal(rec.card_serial, SERIAL_NEW, IDB_SERIAL_LEN);
    struct idb_claim now;
    assert_int_equal(idb_claim_get(e->db, c.token, &now, e->err, sizeof e->err), IDB_OK);
    assert_false(now.open);
    assert_int_equal(idb_record_claim(e->db, rec.id, &now, e->err, sizeof e->err),
                     IDB_E_NOTFOUND);
    ev = events_of(e, "C1");
    assert_string_equal(ev.list, "claimed,issued");
    assert_string_equal(ev.last_operator, "branch-7");
    assert_true(ev.last_has_serial);
    assert_memory_equal(ev.last_serial, SERIAL_NEW, IDB_SERIAL_LEN);
    /* a record never issued gets issue number 1 */
    c = claim_ok(e, "C2", "branch-7", "req-3", LEASE);
    assert_int_equal(c.issue_number, 1);
}

/* Claims identity for branch north and confirms it with a card of serial, card_type and
 * design (requests REQ-a and REQ-b); the record afterwards into rec. */
static void reissue_as(struct env *e, const char *identity, const char *req,
                       const uint8_t serial[IDB_SERIAL_LEN], const char *card_type,
                       const char *design, struct idb_record *rec)
{
    char ra[40], rb[40];
    snprintf(ra, sizeof ra, "%s-a", req);
    snprintf(rb, sizeof rb, "%s-b", req);
    struct idb_claim c = claim_ok(e, identity, "north", ra, LEASE);
    if (idb_confirm_card(e->db, c.token, "north", rb, serial, card_type, design, NULL, e->err,
                         sizeof e->err) != IDB_OK)
        fail_msg("confirm %s: %s", identity, e->err);
    get(e, identity, rec);
}

/* The card a confirm names: a type this file knows becomes the record's (with its design, or
 * the type's own for ""), an unknown one leaves the record's and is named in the history. */
static void test_confirm_card_type(void **state)
{
    struct env *e = *state;
    struct idb_record rec;
    reissue_as(e, "C2", "t1", SERIAL_NEW, "ICDUP-DI", "teal", &rec);
    assert_string_equal(rec.card_type, "ICDUP-DI");
    assert_string_equal(rec.design, "teal");
    assert_int_equal(rec.issue_count, 1);
    reissue_as(e, "C2", "t2", SERIAL_OLD, "ICDUP-1", "", &rec);
    assert_string_equal(rec.card_type, "ICDUP-1");
    assert_string_equal(rec.design, "");
    /* a type the central file lacks: the record keeps its own, the event names the card's */
    reissue_as(e, "C2", "t3", SERIAL_NEW, "OTHER-9", "teal", &rec);
    assert_string_equal(rec.card_type, "ICDUP-1");
    assert_string_equal(rec.design, "");
    assert_int_equal(rec.issue_count, 3);
    assert_true(rec.issued);
    struct idb_event last;
    memset(&last, 0, sizeof last);
    struct events ev = events_of(e, "C2");
    assert_non_null(strstr(ev.last_detail, "design teal"));
    assert_int_equal(idb_history_list(e->db, rec.id, keep_last, &last, e->err, sizeof e->err),
                     IDB_OK);
    assert_string_equal(last.event, "issued");
    assert_string_equal(last.card_type, "OTHER-9");
    /* a bad name is refused and changes nothing */
    struct idb_claim c = claim_ok(e, "C2", "north", "t4-a", LEASE);
    assert_int_equal(idb_confirm_card(e->db, c.token, "north", "t4-b", SERIAL_OLD, "bad type",
                                      NULL, NULL, e->err, sizeof e->err),
                     IDB_E_INVALID);
    get(e, "C2", &rec);
    assert_false(rec.issued);
    assert_int_equal(rec.issue_count, 3);
}

static void test_conflicts(void **state)
{
    struct env *e = *state;
    struct idb_claim c = claim_ok(e, "C2", "north", "n1", LEASE), other;
    assert_int_equal(idb_claim(e->db, "C2", "south", "s1", LEASE, &other, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "claimed by branch north"));
    assert_string_equal(other.token, "");
    /* the same branch with another request: the claim is live all the same */
    assert_int_equal(idb_claim(e->db, "C2", "north", "n2", LEASE, &other, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    assert_int_equal(idb_claim(e->db, "NOBODY", "south", "s2", LEASE, &other, NULL, e->err,
                               sizeof e->err),
                     IDB_E_NOTFOUND);
    assert_non_null(strstr(e->err, "NOBODY"));
    /* another branch's token */
    assert_int_equal(idb_confirm(e->db, c.token, "south", "s3", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "held by branch north"));
    assert_int_equal(idb_abort(e->db, c.token, "south", "s4", NULL, e->err, sizeof e->err),
                     IDB_E_CONFLICT);
    assert_int_equal(idb_confirm(e->db, "0123456789abcdef0123456789abcdef", "north", "n3",
                                 SERIAL_NEW, NULL, e->err, sizeof e->err),
                     IDB_E_NOTFOUND);
    /* nothing of that changed the claim */
    struct idb_record r;
    get(e, "C2", &r);
    assert_false(r.issued);
    assert_int_equal(r.issue_count, 0);
    assert_string_equal(events_of(e, "C2").list, "claimed");
    assert_int_equal(idb_confirm(e->db, c.token, "north", "n4", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_OK);
    /* confirmed: a confirm or abort with a new request id is refused */
    assert_int_equal(idb_confirm(e->db, c.token, "north", "n5", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "confirmed already"));
    assert_int_equal(idb_abort(e->db, c.token, "north", "n6", NULL, e->err, sizeof e->err),
                     IDB_E_CONFLICT);
    get(e, "C2", &r);
    assert_int_equal(r.issue_count, 1);
    /* a record with a card being personalized by icissue issue */
    uint8_t pend[IDB_SERIAL_LEN] = { 0xC0 };
    get(e, "C3", &r);
    assert_int_equal(idb_record_set_pending(e->db, r.id, pend, CT_ORIGINAL, e->err,
                                            sizeof e->err),
                     IDB_OK);
    assert_int_equal(idb_claim(e->db, "C3", "north", "n7", LEASE, &other, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "pending"));
}

static void test_abort_restores_flag(void **state)
{
    struct env *e = *state;
    struct idb_record r;
    struct idb_claim c = claim_ok(e, "C1", "east", "e1", LEASE);
    get(e, "C1", &r);
    assert_false(r.issued);
    assert_int_equal(idb_abort(e->db, c.token, "east", "e2", "card jammed in the printer",
                               e->err, sizeof e->err),
                     IDB_OK);
    get(e, "C1", &r);
    assert_true(r.issued); /* the old card is the live one again */
    assert_int_equal(r.issue_count, 1);
    assert_memory_equal(r.card_serial, SERIAL_OLD, IDB_SERIAL_LEN);
    struct events ev = events_of(e, "C1");
    assert_string_equal(ev.list, "claimed,claim aborted");
    assert_non_null(strstr(ev.last_detail, "card jammed in the printer"));
    assert_string_equal(ev.last_operator, "east");
    assert_int_equal(idb_confirm(e->db, c.token, "east", "e3", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "aborted"));
    /* a record never issued stays unissued; the next claim takes the same issue number */
    c = claim_ok(e, "C4", "east", "e4", LEASE);
    assert_int_equal(idb_abort(e->db, c.token, "east", "e5", NULL, e->err, sizeof e->err),
                     IDB_OK);
    get(e, "C4", &r);
    assert_false(r.issued);
    c = claim_ok(e, "C4", "west", "w1", LEASE);
    assert_int_equal(c.issue_number, 1);
}

/* ---- idempotency ----------------------------------------------------------------------- */

static void test_repeated_requests(void **state)
{
    struct env *e = *state;
    struct idb_claim c1 = claim_ok(e, "C1", "b1", "r-1", LEASE), again;
    struct idb_record rec;
    assert_int_equal(idb_claim(e->db, "C1", "b1", "r-1", LEASE, &again, &rec, e->err,
                               sizeof e->err),
                     IDB_OK);
    assert_same_claim(&again, &c1);
    assert_string_equal(idb_record_item(&rec, "holder"), "Ada Lovelace");
    idb_record_wipe(&rec);
    /* the same request id for another record or operation: refused, nothing stored */
    assert_int_equal(idb_claim(e->db, "C2", "b1", "r-1", LEASE, &again, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "used for another request"));
    assert_int_equal(idb_abort(e->db, c1.token, "b1", "r-1", NULL, e->err, sizeof e->err),
                     IDB_E_CONFLICT);
    /* a refusal is a result too: b2's r-1 stays refused after b1's claim ends */
    char first[512];
    assert_int_equal(idb_claim(e->db, "C1", "b2", "r-1", LEASE, &again, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    snprintf(first, sizeof first, "%s", e->err);
    assert_int_equal(idb_abort(e->db, c1.token, "b1", "r-2", "test", e->err, sizeof e->err),
                     IDB_OK);
    assert_int_equal(idb_abort(e->db, c1.token, "b1", "r-2", "test", e->err, sizeof e->err),
                     IDB_OK);
    assert_int_equal(idb_claim(e->db, "C1", "b2", "r-1", LEASE, &again, NULL, e->err,
                               sizeof e->err),
                     IDB_E_CONFLICT);
    assert_string_equal(e->err, first);
    /* confirm twice: applied once */
    struct idb_claim c2 = claim_ok(e, "C1", "b2", "r-3", LEASE), d1, d2;
    assert_int_equal(idb_confirm(e->db, c2.token, "b2", "r-4", SERIAL_NEW, &d1, e->err,
                                 sizeof e->err),
                     IDB_OK);
    assert_int_equal(idb_confirm(e->db, c2.token, "b2", "r-4", SERIAL_NEW, &d2, e->err,
                                 sizeof e->err),
                     IDB_OK);
    assert_same_claim(&d1, &d2);
    /* the same request id with another serial is another request */
    assert_int_equal(idb_confirm(e->db, c2.token, "b2", "r-4", SERIAL_OLD, &d2, e->err,
                                 sizeof e->err),
                     IDB_E_CONFLICT);
    struct idb_record r;
    get(e, "C1", &r);
    assert_int_equal(r.issue_count, 2);
    struct events ev = events_of(e, "C1");
    assert_string_equal(ev.list, "claimed,claim aborted,claimed,issued");
}

static void test_bad_arguments(void **state)
{
    struct env *e = *state;
    struct idb_claim c;
    char long_id[IDB_REQUEST_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *bad_ids[] = { "", "a b", "r/1", "r\xC3\xA4", long_id };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        assert_int_equal(idb_claim(e->db, "C1", "b1", bad_ids[i], LEASE, &c, NULL, e->err,
                                   sizeof e->err),
                         IDB_E_INVALID);
        assert_non_null(strstr(e->err, "request id"));
    }
    long_id[IDB_REQUEST_ID_MAX] = '\0'; /* 64 characters are allowed */
    claim_ok(e, "C2", "b1", long_id, LEASE);
    assert_int_equal(idb_claim(e->db, "C1", "", "r1", LEASE, &c, NULL, e->err, sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_claim(e->db, "C1", "b 1", "r1", LEASE, &c, NULL, e->err,
                               sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_claim(e->db, "C1", "b1", "r1", 0, &c, NULL, e->err, sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_claim(e->db, "C1", "b1", "r1", IDB_LEASE_MAX + 1, &c, NULL, e->err,
                               sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_claim(e->db, "", "b1", "r1", LEASE, &c, NULL, e->err, sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_confirm(e->db, "XYZ", "b1", "r1", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_confirm(e->db, "0123456789ABCDEF0123456789ABCDEF", "b1", "r1",
                                 SERIAL_NEW, NULL, e->err, sizeof e->err),
                     IDB_E_INVALID);
    assert_int_equal(idb_abort(e->db, "0123456789abcdef0123456789abcdef", "b1", "r1",
                               "line\nbreak", e->err, sizeof e->err),
                     IDB_E_INVALID);
    /* inside a caller's transaction */
    assert_int_equal(idb_begin(e->db, e->err, sizeof e->err), IDB_OK);
    assert_int_equal(idb_claim(e->db, "C1", "b1", "r1", LEASE, &c, NULL, e->err,
                               sizeof e->err),
                     IDB_E_INVALID);
    idb_rollback(e->db);
    /* none of those was stored: r1 is still free */
    claim_ok(e, "C1", "b1", "r1", LEASE);
}

/* ---- leases ---------------------------------------------------------------------------- */

static void wait_past(int64_t unix_s)
{
    while ((int64_t)time(NULL) <= unix_s) {
        struct timespec d = { 0, 50 * 1000 * 1000 };
        nanosleep(&d, NULL);
    }
}

static void test_leases(void **state)
{
    struct env *e = *state;
    /* C1 was issued, C2 to C4 never */
    struct idb_claim a = claim_ok(e, "C2", "b1", "a", 1), b = claim_ok(e, "C1", "b1", "b", 1),
                     c = claim_ok(e, "C3", "b1", "c", 1);
    struct idb_claim d = claim_ok(e, "C4", "b1", "d", LEASE);
    int64_t last = a.expires_at > b.expires_at ? a.expires_at : b.expires_at;
    wait_past(last > c.expires_at ? last : c.expires_at);
    /* an expired claim not yet released may still be confirmed */
    assert_int_equal(idb_confirm(e->db, a.token, "b1", "a2", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_OK);
    /* another claim releases an expired one; aborted, the record is as before both */
    struct idb_claim b2 = claim_ok(e, "C1", "b2", "b2", LEASE);
    assert_int_equal(b2.issue_number, 2);
    assert_int_equal(idb_abort(e->db, b.token, "b1", "b3", NULL, e->err, sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "expired"));
    assert_int_equal(idb_abort(e->db, b2.token, "b2", "b4", NULL, e->err, sizeof e->err),
                     IDB_OK);
    struct idb_record r;
    get(e, "C1", &r);
    assert_true(r.issued);
    assert_int_equal(r.issue_count, 1);
    assert_memory_equal(r.card_serial, SERIAL_OLD, IDB_SERIAL_LEN);
    assert_string_equal(events_of(e, "C1").list, "claimed,lease expired,claimed,claim aborted");
    /* the sweep releases the rest: c only (a confirmed, b released, d live) */
    unsigned released = 99;
    assert_int_equal(idb_claims_expire(e->db, &released, e->err, sizeof e->err), IDB_OK);
    assert_int_equal(released, 1);
    get(e, "C3", &r);
    assert_false(r.issued);
    assert_string_equal(events_of(e, "C3").list, "claimed,lease expired");
    assert_int_equal(idb_confirm(e->db, c.token, "b1", "c2", SERIAL_NEW, NULL, e->err,
                                 sizeof e->err),
                     IDB_E_CONFLICT);
    assert_non_null(strstr(e->err, "lease"));
    assert_int_equal(idb_claims_expire(e->db, &released, e->err, sizeof e->err), IDB_OK);
    assert_int_equal(released, 0);
    struct idb_claim now;
    assert_int_equal(idb_claim_get(e->db, d.token, &now, e->err, sizeof e->err), IDB_OK);
    assert_true(now.open);
    get(e, "C2", &r);
    assert_true(r.issued);
    assert_int_equal(r.issue_count, 1);
}

/* ---- concurrency ----------------------------------------------------------------------- */

#define THREADS 16
#define ROUNDS 12
#define IDS 4

struct shared {
    const char *uri;
    atomic_int holder[IDS];       /* the thread holding a claim on the record, or 0 */
    pthread_mutex_t lock;
    unsigned numbers[IDS][THREADS * ROUNDS]; /* issue numbers of the confirmed claims */
    unsigned nconfirmed[IDS];
    atomic_uint claims, conflicts, aborts, overlaps, failures;
};

struct worker {
    struct shared *sh;
    int id;
    pthread_t th;
    char err[512];
};

static void hold_briefly(void)
{
    struct timespec d = { 0, 1000 * 1000 };
    nanosleep(&d, NULL);
}

/* One round: claim, then confirm or abort. Returns 0, or -1 with w->err. */
static int worker_round(struct worker *w, struct idb *db, int round)
{
    struct shared *sh = w->sh;
    char branch[16], req[32], identity[16];
    int k = (w->id + round) % IDS;
    snprintf(branch, sizeof branch, "br%02d", w->id);
    snprintf(req, sizeof req, "claim-%d", round);
    snprintf(identity, sizeof identity, "C%d", k + 1);
    struct idb_claim c;
    int rc = idb_claim(db, identity, branch, req, LEASE, &c, NULL, w->err, sizeof w->err);
    if (rc == IDB_E_CONFLICT) {
        atomic_fetch_add(&sh->conflicts, 1);
        return 0;
    }
    if (rc != IDB_OK)
        return -1;
    atomic_fetch_add(&sh->claims, 1);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&sh->holder[k], &expected, w->id + 1))
        atomic_fetch_add(&sh->overlaps, 1);
    hold_briefly();
    /* no longer counted as held from here: the next claim can only follow the commit below */
    atomic_store(&sh->holder[k], 0);
    snprintf(req, sizeof req, "close-%d", round);
    if (round % 3 == 2) {
        atomic_fetch_add(&sh->aborts, 1);
        return idb_abort(db, c.token, branch, req, "test", w->err, sizeof w->err) == IDB_OK
                   ? 0
                   : -1;
    }
    uint8_t serial[IDB_SERIAL_LEN] = { (uint8_t)w->id, (uint8_t)round };
    if (idb_confirm(db, c.token, branch, req, serial, NULL, w->err, sizeof w->err) != IDB_OK)
        return -1;
    pthread_mutex_lock(&sh->lock);
    sh->numbers[k][sh->nconfirmed[k]++] = c.issue_number;
    pthread_mutex_unlock(&sh->lock);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct idb *db;
    if (idb_open(w->sh->uri, false, &db, w->err, sizeof w->err) != IDB_OK) {
        atomic_fetch_add(&w->sh->failures, 1);
        return NULL;
    }
    for (int round = 0; round < ROUNDS; round++)
        if (worker_round(w, db, round) != 0) {
            atomic_fetch_add(&w->sh->failures, 1);
            fprintf(stderr, "worker %d round %d: %s\n", w->id, round, w->err);
            break;
        }
    idb_close(db);
    return NULL;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrent_claims(void **state)
{
    struct env *e = *state;
    struct shared *sh = calloc(1, sizeof *sh);
    struct worker *w = calloc(THREADS, sizeof *w);
    assert_non_null(sh);
    assert_non_null(w);
    sh->uri = e->t.uri;
    pthread_mutex_init(&sh->lock, NULL);
    /* C1 starts issued with count 1; the others at 0 */
    unsigned base[IDS] = { 1, 0, 0, 0 };
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ .sh = sh, .id = i };
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i].th, NULL);
    print_message("%s: %u claims, %u conflicts, %u aborted\n", testdb_name(e->t.backend),
                  atomic_load(&sh->claims), atomic_load(&sh->conflicts),
                  atomic_load(&sh->aborts));
    assert_int_equal(atomic_load(&sh->failures), 0);
    assert_int_equal(atomic_load(&sh->overlaps), 0);
    assert_int_equal(atomic_load(&sh->claims) + atomic_load(&sh->conflicts), THREADS * ROUNDS);
    assert_true(atomic_load(&sh->claims) >= IDS);
    unsigned claimed_events = 0, total_confirmed = 0;
    for (int k = 0; k < IDS; k++) {
        char identity[16];
        snprintf(identity, sizeof identity, "C%d", k + 1);
        struct idb_record r;
        get(e, identity, &r);
        unsigned n = sh->nconfirmed[k];
        total_confirmed += n;
        /* the count went up by the confirmed claims; their issue numbers follow each other */
        assert_int_equal(r.issue_count, base[k] + n);
        qsort(sh->numbers[k], n, sizeof sh->numbers[k][0], cmp_unsigned);
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(sh->numbers[k][i], base[k] + i + 1);
        struct events ev = events_of(e, identity);
        assert_int_equal(count_events(ev.list, "issued"), n);
        claimed_events += count_events(ev.list, "claimed");
        struct idb_claim open;
        assert_int_equal(idb_record_claim(e->db, r.id, &open, e->err, sizeof e->err),
                         IDB_E_NOTFOUND);
    }
    assert_int_equal(claimed_events, atomic_load(&sh->claims));
    assert_int_equal(total_confirmed + atomic_load(&sh->aborts), atomic_load(&sh->claims));
    pthread_mutex_destroy(&sh->lock);
    free(sh);
    free(w);
}

/* 8 threads send one request (same branch, same request id) at once: one claim. */
struct same {
    const char *uri;
    struct idb_claim c;
    int rc;
    pthread_t th;
};

static void *same_main(void *arg)
{
    struct same *s = arg;
    struct idb *db;
    char err[512];
    s->rc = idb_open(s->uri, false, &db, err, sizeof err);
    if (s->rc == IDB_OK) {
        s->rc = idb_claim(db, "C3", "dup", "once", LEASE, &s->c, NULL, err, sizeof err);
        idb_close(db);
    }
    if (s->rc != IDB_OK)
        fprintf(stderr, "same_main: %s\n", err);
    return NULL;
}

static void test_concurrent_same_request(void **state)
{
    struct env *e = *state;
    struct same s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (struct same){ .uri = e->t.uri, .rc = -99 };
        assert_int_equal(pthread_create(&s[i].th, NULL, same_main, &s[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(s[i].th, NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(s[i].rc, IDB_OK);
        assert_same_claim(&s[i].c, &s[0].c);
    }
    assert_string_equal(events_of(e, "C3").list, "claimed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_then_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirm_card_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_restores_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_same_request, setup, teardown),
    };
    return TESTDB_RUN(tests, NULL, NULL);
}

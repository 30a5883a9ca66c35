/* The operations of the central issuance system (host/central/ops.c) behind the real TLS server
 * on 127.0.0.1, on each back end of the issuance file, with branch certificates made in a
 * temporary directory:
 *   - lookup (no items), claim (record with items, token, issue number), confirm (count up),
 *     abort (flag back), not_found, bad_request for an unknown op, missing or bad fields;
 *   - the branch is the certificate's: another branch cannot confirm a claim, and a claim
 *     held by north is refused to south with north named;
 *   - a confirm repeated with its request_id is answered the same and counted once;
 *   - 16 branches at once, each with its own certificate and connection, reissuing 6
 *     overlapping records 12 times each (claim, then confirm or now and then abort): every
 *     record's count equals its confirmed reissues, and no claim was granted twice at once;
 *   - central_ops_expire releases a claim whose lease passed (its confirm is then refused);
 *   - PostgreSQL only: the issuance database made unreachable under the running server (it
 *     refuses connections and its sessions are ended, twice: first met by a confirm, whose
 *     pipelined transaction runs into the dead connection, then by a lookup): lookup, claim,
 *     confirm and abort are answered "unavailable" within a few seconds, with no password in
 *     the message, on the same TLS connection, for every branch; nothing of them is stored;
 *     once the database is back the same requests (same request ids) are done once and the
 *     counts equal the confirmed reissues;
 *   - PostgreSQL only: a claim's session ended while it waits inside its transaction, in its
 *     first batch (the record's row held by another session) and in its COMMIT's batch (a
 *     trigger waiting for an advisory lock): "unavailable" at once, nothing stored, claimed
 *     once when sent again. SQLite has no honest equivalent that is fast (see the tests).
 * Run from the repo root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central_fixture.h"
#include "idb.h"
#include "net.h"
#include "ops.h"
#include "proto.h"
#include "testdb.h"

#define BRANCHES 16
#define RECORDS 6
#define ROUNDS 12

struct env {
    struct testdb t;
    struct idb *db;
    struct central_ops *ops;
    struct cf_srv srv;
    bool unreachable; /* the test's database refuses connections: teardown lets them in */
};

static int group_setup(void **state)
{
    (void)state;
    if (cf_setup() != 0)
        return -1;
    cf_make_ca_and_server();
    for (int i = 0; i < BRANCHES; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%02d", i);
        cf_make(CENTRAL_CERT_BRANCH, "ca", name, NULL, name);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_teardown();
}

static void add_record(struct idb *db, const char *identity)
{
    struct idb_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.identity, sizeof r.identity, "%s", identity);
    snprintf(r.card_type, sizeof r.card_type, "ICDUP-1");
    snprintf(r.items[0].name, sizeof r.items[0].name, "holder");
    snprintf(r.items[0].value, sizeof r.items[0].value, "Ada Lovelace");
    snprintf(r.items[1].name, sizeof r.items[1].name, "password");
    snprintf(r.items[1].value, sizeof r.items[1].value, "pw-secret-1");
    r.nitems = 2;
    char err[256];
    if (idb_record_insert(db, &r, err, sizeof err) != IDB_OK)
        fail_msg("insert %s: %s", identity, err);
    static const uint8_t serial[IDB_SERIAL_LEN] = { 0xA0, 1, 2, 3, 4, 5, 6, 7 };
    if (idb_record_mark_issued(db, r.id, serial, "ICDUP-1", NULL, err, sizeof err) != IDB_OK)
        fail_msg("mark issued %s: %s", identity, err);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (e == NULL || testdb_open("ops", "examples/types.json", &e->t, &e->db) != 0) {
        free(e);
        return -1;
    }
    for (int i = 0; i < RECORDS; i++) {
        char id[16];
        snprintf(id, sizeof id, "R%d", i);
        add_record(e->db, id);
    }
    char err[512];
    if (central_ops_open(e->t.uri, 8, 300, &e->ops, err, sizeof err) != 0) {
        print_error("central_ops_open: %s\n", err);
        return -1;
    }
    cf_srv_start(&e->srv, (struct central_server_config){ .crl = cf_path("crl.pem") },
                 central_ops_handle, e->ops);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char err[512];
    if (e->unreachable && testdb_pg_reachable(&e->t, true, err, sizeof err) != 0)
        print_error("%s\n", err);
    cf_srv_stop(&e->srv);
    central_ops_close(e->ops);
    testdb_close(&e->t, e->db);
    free(e);
    return 0;
}

/* One call with the fields of fmt/json_pack; returns the response (status checked by the
 * caller). rid: the request id to use (NULL: a new one). */
static json_t *call(struct central_client *c, const char *op, const char *rid, json_t *fields)
{
    json_t *req = fields != NULL ? fields : json_object();
    json_object_set_new(req, "op", json_string(op));
    if (rid != NULL)
        json_object_set_new(req, "request_id", json_string(rid));
    json_t *resp = NULL;
    char err[512];
    int rc = central_call(c, req, &resp, err, sizeof err);
    json_decref(req);
    if (rc != CENTRAL_CALL_OK)
        fail_msg("%s: %s", op, err);
    return resp;
}

static const char *status(const json_t *resp)
{
    return json_string_value(json_object_get(resp, "status"));
}

/* A claim of identity by c's branch (request id rid; NULL: a new one) that answers ok: its
 * token into token; returns its issue number. */
static unsigned claim_ok(struct central_client *c, const char *rid, const char *identity,
                         char token[65])
{
    json_t *r = call(c, "claim", rid, json_pack("{s:s}", "identity", identity));
    assert_string_equal(status(r), "ok");
    json_t *claim = json_object_get(r, "claim");
    snprintf(token, 65, "%s", json_string_value(json_object_get(claim, "token")));
    unsigned n = (unsigned)json_integer_value(json_object_get(claim, "issue_number"));
    json_decref(r);
    return n;
}

/* A confirm of token with the card serial (hex) that answers ok; returns the issuance count. */
static unsigned confirm_ok(struct central_client *c, const char *rid, const char *token,
                           const char *serial)
{
    json_t *r = call(c, "confirm", rid, json_pack("{s:s, s:s}", "token", token, "serial",
                                                  serial));
    assert_string_equal(status(r), "ok");
    unsigned n = (unsigned)json_integer_value(json_object_get(r, "issue_count"));
    json_decref(r);
    return n;
}

static unsigned count_of(struct idb *db, const char *identity)
{
    struct idb_record r;
    char err[256];
    if (idb_record_by_identity(db, identity, &r, err, sizeof err) != IDB_OK)
        fail_msg("%s: %s", identity, err);
    unsigned n = r.issue_count;
    idb_record_wipe(&r);
    return n;
}

static void test_operations(void **state)
{
    struct env *e = *state;
    struct central_client *north = cf_client(e->srv.port_text, "b00", NULL, 1);
    struct central_client *south = cf_client(e->srv.port_text, "b01", NULL, 1);

    json_t *r = call(north, "lookup", NULL, json_pack("{s:s}", "identity", "R0"));
    assert_string_equal(status(r), "ok");
    json_t *rec = json_object_get(r, "record");
    assert_string_equal(json_string_value(json_object_get(rec, "identity")), "R0");
    assert_int_equal(json_integer_value(json_object_get(rec, "issue_count")), 1);
    assert_null(json_object_get(rec, "items")); /* a lookup hands out no item */
    assert_string_equal(json_string_value(json_object_get(rec, "card_serial")),
                        "A001020304050607");
    json_decref(r);

    r = call(north, "lookup", NULL, json_pack("{s:s}", "identity", "NOPE"));
    assert_string_equal(status(r), "not_found");
    json_decref(r);
    r = call(north, "frobnicate", NULL, NULL);
    assert_string_equal(status(r), "bad_request");
    json_decref(r);
    r = call(north, "claim", NULL, NULL);
    assert_string_equal(status(r), "bad_request");
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "identity"));
    json_decref(r);
    r = call(north, "claim", NULL, json_pack("{s:s, s:i}", "identity", "R0", "lease_seconds", 0));
    assert_string_equal(status(r), "bad_request");
    json_decref(r);

    r = call(north, "claim", NULL, json_pack("{s:s}", "identity", "R0"));
    assert_string_equal(status(r), "ok");
    json_t *claim = json_object_get(r, "claim");
    char token[65];
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(claim, "token")));
    assert_int_equal(json_integer_value(json_object_get(claim, "issue_number")), 2);
    json_t *items = json_object_get(json_object_get(r, "record"), "items");
    assert_string_equal(json_string_value(json_object_get(items, "password")), "pw-secret-1");
    json_decref(r);

    /* South: the record is north's now; and north's token is not south's to confirm. */
    r = call(south, "claim", NULL, json_pack("{s:s}", "identity", "R0"));
    assert_string_equal(status(r), "conflict");
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "b00"));
    json_decref(r);
    r = call(south, "confirm", NULL,
             json_pack("{s:s, s:s}", "token", token, "serial", "B001020304050607"));
    assert_string_equal(status(r), "conflict");
    json_decref(r);
    r = call(north, "confirm", NULL, json_pack("{s:s, s:s}", "token", token, "serial", "B0"));
    assert_string_equal(status(r), "bad_request");
    json_decref(r);
    assert_int_equal(count_of(e->db, "R0"), 1);

    /* The confirm, then the same request again: the first answer, counted once. */
    for (int i = 0; i < 2; i++) {
        r = call(north, "confirm", "confirm-R0-once",
                 json_pack("{s:s, s:s}", "token", token, "serial", "B001020304050607"));
        assert_string_equal(status(r), "ok");
        assert_int_equal(json_integer_value(json_object_get(r, "issue_count")), 2);
        json_decref(r);
    }
    assert_int_equal(count_of(e->db, "R0"), 2);

    /* Abort: the flag back as before the claim, nothing counted. */
    r = call(south, "claim", NULL, json_pack("{s:s}", "identity", "R1"));
    assert_string_equal(status(r), "ok");
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_object_get(r, "claim"), "token")));
    json_decref(r);
    r = call(south, "abort", NULL, json_pack("{s:s, s:s}", "token", token, "reason", "test"));
    assert_string_equal(status(r), "ok");
    json_decref(r);
    r = call(north, "lookup", NULL, json_pack("{s:s}", "identity", "R1"));
    assert_true(json_is_true(json_object_get(json_object_get(r, "record"), "issued")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "record"),
                                                        "issue_count")), 1);
    json_decref(r);
    central_client_close(north);
    central_client_close(south);
}

static void test_lease_expires(void **state)
{
    struct env *e = *state;
    struct central_client *c = cf_client(e->srv.port_text, "b02", NULL, 1);
    json_t *r = call(c, "claim", NULL, json_pack("{s:s, s:i}", "identity", "R2",
                                                 "lease_seconds", 1));
    assert_string_equal(status(r), "ok");
    char token[65];
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(json_object_get(r, "claim"), "token")));
    json_decref(r);
    cf_sleep_ms(2100);
    char err[256];
    assert_int_equal(central_ops_expire(e->ops, err, sizeof err), 1);
    r = call(c, "confirm", NULL, json_pack("{s:s, s:s}", "token", token, "serial",
                                           "C001020304050607"));
    assert_string_equal(status(r), "conflict");
    json_decref(r);
    assert_int_equal(count_of(e->db, "R2"), 1);
    central_client_close(c);
}

/* ---- the issuance database unreachable ------------------------------------------------- */

/* Makes the database unreachable (or reachable again) under the running server. */
static void set_reachable(struct env *e, bool reachable)
{
    char err[512];
    e->unreachable = true; /* until it is surely back */
    if (testdb_pg_reachable(&e->t, reachable, err, sizeof err) != 0)
        fail_msg("%s", err);
    e->unreachable = !reachable;
}

/* The password of $ICDUP_TEST_PG (postgresql://USER:PASSWORD@HOST:PORT), "" when none. */
static void pg_password(char *out, size_t cap)
{
    const char *uri = getenv(TESTDB_PG_ENV), *p = uri != NULL ? strstr(uri, "://") : NULL;
    out[0] = '\0';
    if (p == NULL)
        return;
    const char *colon = strchr(p + 3, ':'), *at = strchr(p + 3, '@');
    if (colon != NULL && at != NULL && colon < at)
        snprintf(out, cap, "%.*s", (int)(at - colon - 1), colon + 1);
}

/* A request made while the database is unreachable: answered "unavailable" within a few
 * seconds (not libpq's 10 s connect timeout, not the client's call timeout) with a message
 * that names no password. */
static void call_unavailable(struct central_client *c, const char *op, const char *rid,
                             json_t *fields)
{
    char pw[256];
    pg_password(pw, sizeof pw);
    long long t0 = net_now_ms();
    json_t *r = call(c, op, rid, fields);
    long long took = net_now_ms() - t0;
    const char *msg = json_string_value(json_object_get(r, "message"));
    print_message("[ INFO     ] %s during the outage: %s in %lld ms: %s\n", op, status(r), took,
                  msg != NULL ? msg : "(none)");
    assert_string_equal(status(r), "unavailable");
    assert_true(took < 5000);
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_true(pw[0] == '\0' || strstr(msg, pw) == NULL);
    /* the branch is told no more: the database's address and message are for the log */
    assert_non_null(strstr(msg, "issuance database is unavailable"));
    assert_null(strstr(msg, "postgres"));
    assert_null(json_object_get(r, "log"));
    json_decref(r);
}

/* Fails when the query finds a row (PostgreSQL: testdb_exec returns no rows). */
static void assert_no_row(const struct env *e, const char *query)
{
    char sql[1024], err[512];
    snprintf(sql, sizeof sql, "DO $$BEGIN IF EXISTS (%s) THEN RAISE EXCEPTION 'found'; END IF; "
             "END$$", query);
    if (testdb_exec(&e->t, sql, err, sizeof err) != 0)
        fail_msg("%s: %s", query, err);
}

static int64_t record_id(struct idb *db, const char *identity)
{
    struct idb_record r;
    char err[256];
    if (idb_record_by_identity(db, identity, &r, err, sizeof err) != IDB_OK)
        fail_msg("%s: %s", identity, err);
    int64_t id = r.id;
    idb_record_wipe(&r);
    return id;
}

/* Lines of the server's log that hold text. */
static unsigned log_count(const struct cf_srv *v, const char *text)
{
    FILE *f = fopen(v->log_path, "r");
    char line[1024];
    unsigned n = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

static void test_database_unreachable(void **state)
{
    struct env *e = *state;
    /* SQLite is a file of this machine: it cannot go away under the server. Its nearest
     * equivalent, another connection holding the write lock, is no outage (a lookup still
     * reads, in WAL mode) and answers each write only after the 10 s busy timeout of
     * idb_sqlite.c: too slow for this test. */
    if (e->t.backend != TESTDB_PG) {
        print_message("[ INFO     ] %s: an unreachable database is tested on PostgreSQL only\n",
                      testdb_name(e->t.backend));
        skip();
    }
    struct central_client *c = cf_client(e->srv.port_text, "b03", NULL, 1);
    struct central_client *other = cf_client(e->srv.port_text, "b04", NULL, 1);

    /* Before: a reissue of R3 through the pool's connection, and a claim left open. */
    char token[65];
    claim_ok(c, NULL, "R3", token);
    confirm_ok(c, NULL, token, "D001020304050607");
    assert_int_equal(claim_ok(c, NULL, "R3", token), 3);

    /* The outage. The first request meets the pool's connection, whose backend was ended: a
     * transaction (BEGIN, the record's lock and the request id in one pipeline) on a dead
     * connection; the connection is dropped, and the next ones cannot open a new one. */
    set_reachable(e, false);
    call_unavailable(c, "confirm", "confirm-R3-outage",
                     json_pack("{s:s, s:s}", "token", token, "serial", "D101020304050607"));
    call_unavailable(c, "lookup", NULL, json_pack("{s:s}", "identity", "R3"));
    call_unavailable(c, "claim", "claim-R4-outage", json_pack("{s:s}", "identity", "R4"));
    call_unavailable(other, "lookup", NULL, json_pack("{s:s}", "identity", "R5"));
    call_unavailable(c, "claim", "claim-R4-outage", json_pack("{s:s}", "identity", "R4"));
    set_reachable(e, true);
    /* the server's log says why, without the password */
    assert_true(cf_log_has(&e->srv, "request_id=claim-R4-outage status=unavailable"));
    assert_true(cf_log_has(&e->srv, "log: "));
    char pw[256];
    pg_password(pw, sizeof pw);
    assert_true(pw[0] == '\0' || !cf_log_has(&e->srv, pw));

    /* The test's own connection was ended too. */
    char err[512];
    idb_close(e->db);
    e->db = NULL;
    if (idb_open(e->t.uri, false, &e->db, err, sizeof err) != IDB_OK)
        fail_msg("reopen: %s", err);

    /* Nothing of the outage's requests was kept: no claim of R4, no request id stored, R3's
     * claim still open and its count as before. */
    struct idb_claim cl;
    assert_int_equal(idb_record_claim(e->db, record_id(e->db, "R4"), &cl, err, sizeof err),
                     IDB_E_NOTFOUND);
    assert_no_row(e, "SELECT 1 FROM claim_requests WHERE request_id IN ('confirm-R3-outage', "
                     "'claim-R4-outage')");
    assert_no_row(e, "SELECT 1 FROM claims c JOIN records r ON r.id = c.record_id "
                     "WHERE r.identity = 'R4'");
    assert_int_equal(count_of(e->db, "R4"), 1);
    assert_int_equal(count_of(e->db, "R3"), 2);
    assert_int_equal(idb_claim_get(e->db, token, &cl, err, sizeof err), IDB_OK);
    assert_true(cl.open);

    /* The same client sends the same requests again: each done once. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(confirm_ok(c, "confirm-R3-outage", token, "D101020304050607"), 3);
    assert_int_equal(count_of(e->db, "R3"), 3);
    assert_int_equal(claim_ok(c, "claim-R4-outage", "R4", token), 2);
    confirm_ok(c, NULL, token, "D201020304050607");
    assert_int_equal(count_of(e->db, "R4"), 2);

    /* Another branch is served as before. */
    claim_ok(other, NULL, "R5", token);
    confirm_ok(other, NULL, token, "D301020304050607");
    assert_int_equal(count_of(e->db, "R5"), 2);

    /* A second outage met first by a lookup (a plain statement on the dead connection), and
     * an abort of a claim made before it. */
    claim_ok(other, NULL, "R5", token);
    set_reachable(e, false);
    call_unavailable(other, "lookup", NULL, json_pack("{s:s}", "identity", "R5"));
    call_unavailable(other, "abort", "abort-R5-outage", json_pack("{s:s}", "token", token));
    set_reachable(e, true);
    json_t *r = call(other, "abort", "abort-R5-outage", json_pack("{s:s}", "token", token));
    assert_string_equal(status(r), "ok");
    json_decref(r);
    r = call(other, "lookup", NULL, json_pack("{s:s}", "identity", "R5"));
    assert_string_equal(status(r), "ok");
    assert_true(json_is_true(json_object_get(json_object_get(r, "record"), "issued")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "record"),
                                                        "issue_count")), 2);
    json_decref(r);

    /* Each branch kept its one TLS connection through both outages. */
    assert_int_equal(log_count(&e->srv, "branch=b03 connected"), 1);
    assert_int_equal(log_count(&e->srv, "branch=b04 connected"), 1);
    central_client_close(c);
    central_client_close(other);
}

struct killed_call {
    struct central_client *c;
    const char *identity, *rid;
    json_t *resp;
    long long answered; /* net_now_ms() */
};

static void *killed_call_thread(void *arg)
{
    struct killed_call *k = arg;
    json_t *req = json_pack("{s:s, s:s, s:s}", "op", "claim", "identity", k->identity,
                            "request_id", k->rid);
    char err[512];
    if (central_call(k->c, req, &k->resp, err, sizeof err) != CENTRAL_CALL_OK)
        k->resp = NULL;
    k->answered = net_now_ms();
    json_decref(req);
    return NULL;
}

/* c claims identity (request id rid) while another session, after hold (SQL), holds a lock the
 * claim's transaction waits for; that backend is ended while it waits. The claim is answered
 * "unavailable" at once and leaves nothing; the same request again claims once. */
static void claim_killed_while_waiting(struct env *e, struct central_client *c,
                                       const char *identity, const char *rid, const char *hold)
{
    PGconn *locker = PQconnectdb(e->t.uri);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    PGresult *res = PQexec(locker, hold);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", hold, PQresultErrorMessage(res));
    PQclear(res);

    struct killed_call k = { .c = c, .identity = identity, .rid = rid };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, killed_call_thread, &k), 0);
    /* The claim's backend waits for the lock (pg_stat_activity): end it then. */
    char sql[512], err[512];
    long long waiting = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
             "AND wait_event_type = 'Lock'", e->t.name);
    for (long long end = net_now_ms() + 5000; waiting == 0 && net_now_ms() < end;) {
        if (testdb_pg_admin(sql, &waiting, err, sizeof err) != 0)
            fail_msg("%s", err);
        if (waiting == 0)
            cf_sleep_ms(20);
    }
    assert_int_equal(waiting, 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
             "FROM pg_stat_activity WHERE datname = '%s' AND wait_event_type = 'Lock'",
             e->t.name);
    long long killed = 0, t0 = net_now_ms();
    if (testdb_pg_admin(sql, &killed, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(killed, 1);
    pthread_join(th, NULL);
    assert_non_null(k.resp);
    const char *msg = json_string_value(json_object_get(k.resp, "message"));
    print_message("[ INFO     ] claim of %s whose session was ended: %s %lld ms after: %s\n",
                  identity, status(k.resp), k.answered - t0, msg != NULL ? msg : "(none)");
    assert_string_equal(status(k.resp), "unavailable");
    assert_true(k.answered - t0 < 5000);
    json_decref(k.resp);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);

    snprintf(sql, sizeof sql, "SELECT 1 FROM claim_requests WHERE request_id = '%s'", rid);
    assert_no_row(e, sql);
    struct idb_claim cl;
    assert_int_equal(idb_record_claim(e->db, record_id(e->db, identity), &cl, err, sizeof err),
                     IDB_E_NOTFOUND);

    /* The same request again, on the same connection: claimed once. */
    char token[65], again[65];
    claim_ok(c, rid, identity, token);
    claim_ok(c, rid, identity, again);
    assert_string_equal(again, token);
    confirm_ok(c, NULL, token, "E001020304050607");
    assert_int_equal(count_of(e->db, identity), 2);
}

/* The backend of a claim ended in the middle of its transaction, at two points: in its first
 * batch (BEGIN, the record's lock, the request id), the record's row held by another session;
 * in the batch of its COMMIT (the deferred writes), a trigger on the request's answer waiting
 * for an advisory lock another session holds. */
static void test_database_killed_mid_request(void **state)
{
    struct env *e = *state;
    if (e->t.backend != TESTDB_PG) {
        print_message("[ INFO     ] %s: a killed database session is tested on PostgreSQL "
                      "only\n", testdb_name(e->t.backend));
        skip();
    }
    struct central_client *c = cf_client(e->srv.port_text, "b05", NULL, 1);
    claim_killed_while_waiting(e, c, "R1", "claim-R1-killed",
                               "BEGIN; SELECT id FROM records WHERE identity = 'R1' FOR UPDATE");
    char err[512];
    if (testdb_exec(&e->t, "CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN PERFORM pg_advisory_xact_lock(4711); RETURN NEW; END$$; "
                    "CREATE TRIGGER test_hold BEFORE UPDATE ON claim_requests FOR EACH ROW "
                    "EXECUTE FUNCTION test_hold()", err, sizeof err) != 0)
        fail_msg("trigger: %s", err);
    claim_killed_while_waiting(e, c, "R2", "claim-R2-killed",
                               "BEGIN; SELECT pg_advisory_xact_lock(4711)");
    assert_int_equal(log_count(&e->srv, "branch=b05 connected"), 1);
    central_client_close(c);
}

struct branch_worker {
    const char *port;
    int index;
    unsigned confirmed[RECORDS];
    unsigned conflicts, failures;
};

static atomic_int live[RECORDS];   /* claims granted and not yet closed, per record */
static atomic_int overlap;         /* times a record had two at once */

static void *branch_thread(void *arg)
{
    struct branch_worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "b%02d", w->index);
    struct central_client *c = cf_client(w->port, name, NULL, 0);
    unsigned seed = (unsigned)w->index * 7919u + 17u;
    for (int round = 0; round < ROUNDS; round++) {
        int rec = (w->index + round) % RECORDS;
        char identity[16];
        snprintf(identity, sizeof identity, "R%d", rec);
        json_t *req = json_pack("{s:s, s:s}", "op", "claim", "identity", identity), *resp;
        char err[512];
        if (central_call(c, req, &resp, err, sizeof err) != CENTRAL_CALL_OK) {
            json_decref(req);
            w->failures++;
            continue;
        }
        json_decref(req);
        if (strcmp(status(resp), "ok") != 0) {
            w->conflicts += strcmp(status(resp), "conflict") == 0;
            w->failures += strcmp(status(resp), "conflict") != 0;
            json_decref(resp);
            continue;
        }
        if (atomic_fetch_add(&live[rec], 1) != 0)
            atomic_fetch_add(&overlap, 1);
        char token[65], serial[17];
        snprintf(token, sizeof token, "%s",
                 json_string_value(json_object_get(json_object_get(resp, "claim"), "token")));
        json_decref(resp);
        seed = seed * 1103515245u + 12345u;
        bool abort_it = (seed >> 16) % 5 == 0;
        snprintf(serial, sizeof serial, "%02X%02X%012X", w->index, round, seed & 0xFFFFFFu);
        atomic_fetch_sub(&live[rec], 1); /* closed by the next request, before its answer */
        req = abort_it ? json_pack("{s:s, s:s}", "op", "abort", "token", token)
                       : json_pack("{s:s, s:s, s:s}", "op", "confirm", "token", token,
                                   "serial", serial);
        if (central_call(c, req, &resp, err, sizeof err) != CENTRAL_CALL_OK) {
            json_decref(req);
            w->failures++;
            continue;
        }
        json_decref(req);
        if (strcmp(status(resp), "ok") == 0 && !abort_it)
            w->confirmed[rec]++;
        else if (strcmp(status(resp), "ok") != 0)
            w->failures++;
        json_decref(resp);
    }
    central_client_close(c);
    return NULL;
}

static void test_sixteen_branches(void **state)
{
    struct env *e = *state;
    struct branch_worker w[BRANCHES];
    pthread_t th[BRANCHES];
    for (int i = 0; i < RECORDS; i++)
        atomic_store(&live[i], 0);
    atomic_store(&overlap, 0);
    for (int i = 0; i < BRANCHES; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].port = e->srv.port_text;
        w[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, branch_thread, &w[i]), 0);
    }
    unsigned confirmed[RECORDS] = { 0 }, conflicts = 0, total = 0;
    for (int i = 0; i < BRANCHES; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        conflicts += w[i].conflicts;
        for (int r = 0; r < RECORDS; r++)
            confirmed[r] += w[i].confirmed[r];
    }
    assert_int_equal(atomic_load(&overlap), 0);
    for (int r = 0; r < RECORDS; r++) {
        char id[16];
        snprintf(id, sizeof id, "R%d", r);
        assert_int_equal(count_of(e->db, id), 1 + confirmed[r]);
        total += confirmed[r];
    }
    print_message("[ INFO     ] %s: %u confirmed, %u refused while another branch held the "
                  "record\n", testdb_name(testdb_current), total, conflicts);
    assert_true(total > 0);
    assert_true(conflicts > 0); /* the branches did meet on the same records */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_killed_mid_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sixteen_branches, setup, teardown),
    };
    if (group_setup(NULL) != 0)
        return 1;
    int failed = TESTDB_RUN(tests, NULL, NULL);
    group_teardown(NULL);
    return failed;
}

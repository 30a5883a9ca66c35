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
 *   - central_ops_expire releases a claim whose lease passed (its confirm is then refused).
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

#include "central_fixture.h"
#include "idb.h"
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
        cmocka_unit_test_setup_teardown(test_sixteen_branches, setup, teardown),
    };
    if (group_setup(NULL) != 0)
        return 1;
    int failed = TESTDB_RUN(tests, NULL, NULL);
    group_teardown(NULL);
    return failed;
}

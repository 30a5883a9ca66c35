/* Deferred statements and lazy transactions of the issuance file (idb_defer, idb_begin; on
 * PostgreSQL the pipeline of host/issuance/idb_pg.c), on each back end:
 *   - deferred writes run in order, before the statement stepped after them, and are
 *     committed with the transaction;
 *   - a deferred write that fails fails the transaction: at once (SQLite), or at the next
 *     statement or the commit (PostgreSQL), with the database's message; nothing of the
 *     transaction remains and the connection serves the next one;
 *   - a unique-key refusal of the statement stepped after deferred ones is still reported as
 *     one;
 *   - an empty transaction commits and rolls back; a deferred write outside a transaction is
 *     written at once; more deferred writes than one batch holds are all written;
 *   - PostgreSQL: the server side of the connection killed while a batch waits: the next
 *     statement fails at once (no hang), and nothing of the transaction is written;
 *   - a writer's transaction ended by commit, rollback or closing its connection lets the
 *     next writer of the same process in at once (SQLite: the file's gate is opened on every
 *     path; a gate left shut would hold the next one for the 10 s busy timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "idb_int.h"
#include "testdb.h"

static const char SQL_EVENT[] =
    "INSERT INTO history (record_id, at, event, card_serial, role, card_type, detail, "
    "operator) VALUES (?1, {now}, ?2, NULL, 'original', 'ICDUP-1', '', 'test')";
static const char SQL_EVENTS[] = "SELECT count(*) FROM history WHERE event LIKE 'batch-%'";
static const char SQL_REQUEST[] =
    "INSERT INTO claim_requests (branch, request_id, op, subject, rc, message, at) "
    "VALUES ('north', ?1, 'claim', 'X', 0, '', {now})";

struct fx {
    struct testdb t;
    struct idb *db;    /* the connection under test */
    struct idb *other; /* a second one, to see what is committed */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[512];
    if (f == NULL || testdb_open("batch", NULL, &f->t, &f->db) != 0) {
        free(f);
        return -1;
    }
    if (idb_open(f->t.uri, false, &f->other, err, sizeof err) != IDB_OK) {
        fprintf(stderr, "second connection: %s\n", err);
        testdb_close(&f->t, f->db);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    idb_close(f->other);
    testdb_close(&f->t, f->db);
    free(f);
    return 0;
}

/* Defers one event named batch-N of record_id (0: none). */
static enum idb_step defer_event(struct idb *db, int64_t record_id, int n)
{
    char err[256], name[32];
    struct idb_stmt *st = idb_sql(db, SQL_EVENT, err, sizeof err);
    assert_non_null(st);
    snprintf(name, sizeof name, "batch-%d", n);
    if (record_id != 0)
        idb_bind_int(st, 1, record_id);
    idb_bind_text(st, 2, name);
    return idb_defer(st);
}

/* The batch-% events db sees; -1 when the statement fails (its message in err). */
static int64_t events(struct idb *db, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_EVENTS, err, errlen);
    assert_non_null(st);
    enum idb_step s = idb_step(st);
    int64_t n = s == IDB_STEP_ROW ? idb_col_int(st, 0) : -1;
    if (s != IDB_STEP_ROW)
        snprintf(err, errlen, "%s", st->drv->errmsg(db->conn));
    idb_end(st);
    return n;
}

static int64_t committed_events(struct fx *f)
{
    char err[256];
    int64_t n = events(f->other, err, sizeof err);
    if (n < 0)
        fail_msg("counting events: %s", err);
    return n;
}

/* A transaction of one deferred event commits: the connection works. */
static void works(struct idb *db)
{
    char err[512];
    assert_int_equal(idb_begin(db, err, sizeof err), IDB_OK);
    assert_int_equal(defer_event(db, 0, 999), IDB_STEP_DONE);
    if (idb_commit(db, err, sizeof err) != IDB_OK)
        fail_msg("commit after the failure: %s", err);
}

static void test_deferred_in_order(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    assert_true(idb_in_transaction(f->db));
    for (int i = 0; i < 3; i++)
        assert_int_equal(defer_event(f->db, 0, i), IDB_STEP_DONE);
    /* the statement stepped next sees them; nobody else does before the commit */
    assert_int_equal(events(f->db, err, sizeof err), 3);
    assert_int_equal(committed_events(f), 0);
    assert_int_equal(defer_event(f->db, 0, 3), IDB_STEP_DONE);
    assert_int_equal(idb_commit(f->db, err, sizeof err), IDB_OK);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 4);
}

static void test_deferred_failure_at_commit(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    assert_int_equal(defer_event(f->db, 0, 1), IDB_STEP_DONE);
    /* no record 987654321: the history's foreign key refuses the event */
    if (defer_event(f->db, 987654321, 2) == IDB_STEP_DONE) {
        assert_int_equal(f->t.backend, TESTDB_PG); /* SQLite refuses at once */
        assert_int_equal(defer_event(f->db, 0, 3), IDB_STEP_DONE);
        assert_int_equal(idb_commit(f->db, err, sizeof err), IDB_E_DB);
        assert_non_null(strstr(err, "foreign key"));
    } else {
        assert_int_equal(f->t.backend, TESTDB_SQLITE);
        idb_rollback(f->db);
    }
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 0);
    works(f->db);
    assert_int_equal(committed_events(f), 1);
}

static void test_deferred_failure_at_next_statement(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    if (defer_event(f->db, 987654321, 1) == IDB_STEP_DONE) {
        assert_int_equal(f->t.backend, TESTDB_PG);
        assert_int_equal(events(f->db, err, sizeof err), -1);
        assert_non_null(strstr(err, "foreign key"));
    }
    idb_rollback(f->db);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 0);
    works(f->db);
    assert_int_equal(committed_events(f), 1);
}

static void test_unique_after_deferred(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    struct idb_stmt *st = idb_sql(f->db, SQL_REQUEST, err, sizeof err);
    assert_non_null(st);
    idb_bind_text(st, 1, "r1");
    assert_int_equal(idb_defer(st), IDB_STEP_DONE);
    assert_int_equal(defer_event(f->db, 0, 1), IDB_STEP_DONE);
    st = idb_sql(f->db, SQL_REQUEST, err, sizeof err);
    idb_bind_text(st, 1, "r1");
    assert_int_equal(idb_run(st), IDB_STEP_UNIQUE);
    idb_rollback(f->db);
    assert_int_equal(committed_events(f), 0);
    works(f->db);
}

static void test_empty_transactions(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_E_INVALID); /* open already */
    assert_int_equal(idb_commit(f->db, err, sizeof err), IDB_OK);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    idb_rollback(f->db);
    assert_false(idb_in_transaction(f->db));
    works(f->db);
    assert_int_equal(committed_events(f), 1);
}

static void test_deferred_outside_transaction(void **state)
{
    struct fx *f = *state;
    assert_int_equal(defer_event(f->db, 0, 1), IDB_STEP_DONE);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 1);
    /* and one that fails says so at once */
    assert_int_equal(defer_event(f->db, 987654321, 2), IDB_STEP_ERROR);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 1);
}

static void test_many_deferred(void **state)
{
    struct fx *f = *state;
    char err[512];
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    for (int i = 0; i < 100; i++) /* more than one batch holds */
        assert_int_equal(defer_event(f->db, 0, i), IDB_STEP_DONE);
    assert_int_equal(events(f->db, err, sizeof err), 100);
    for (int i = 100; i < 150; i++)
        assert_int_equal(defer_event(f->db, 0, i), IDB_STEP_DONE);
    assert_int_equal(idb_commit(f->db, err, sizeof err), IDB_OK);
    assert_int_equal(committed_events(f), 150);
}

static void test_link_lost_mid_batch(void **state)
{
    struct fx *f = *state;
    char err[512];
    if (f->t.backend != TESTDB_PG)
        skip();
    assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
    assert_int_equal(events(f->db, err, sizeof err), 0); /* BEGIN sent: a live transaction */
    assert_int_equal(defer_event(f->db, 0, 1), IDB_STEP_DONE);
    /* every other session of the test database is ended: the one under test */
    if (idb_exec(f->other, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                 err, sizeof err) != IDB_OK)
        fail_msg("terminating: %s", err);
    assert_int_equal(events(f->db, err, sizeof err), -1);
    assert_int_not_equal(idb_commit(f->db, err, sizeof err), IDB_OK);
    idb_rollback(f->db);
    assert_false(idb_in_transaction(f->db));
    assert_int_equal(committed_events(f), 0);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_writer_let_in(void **state)
{
    struct fx *f = *state;
    char err[512];
    struct idb *third = NULL;
    assert_int_equal(idb_open(f->t.uri, false, &third, err, sizeof err), IDB_OK);
    double t0 = seconds();
    const int64_t before[3] = { 0, 2, 3 }; /* committed: way 0's event, and one per works() */
    for (int way = 0; way < 3; way++) {
        assert_int_equal(idb_begin(f->db, err, sizeof err), IDB_OK);
        assert_int_equal(events(f->db, err, sizeof err), before[way]); /* a live transaction */
        assert_int_equal(defer_event(f->db, 0, 100 + way), IDB_STEP_DONE);
        if (way == 0) {
            assert_int_equal(idb_commit(f->db, err, sizeof err), IDB_OK);
        } else if (way == 1) {
            idb_rollback(f->db);
        } else {
            idb_close(f->db); /* rolled back */
            f->db = third;
        }
        works(f->other);
    }
    assert_int_equal(committed_events(f), 4); /* the commit's event and works' three */
    assert_true(seconds() - t0 < 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deferred_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failure_at_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failure_at_next_statement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unique_after_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_outside_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_lost_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_let_in, setup, teardown),
    };
    return TESTDB_RUN(tests, NULL, NULL);
}

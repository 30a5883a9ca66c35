/* Opening the issuance file on each back end (host/issuance/idb.c, idb_sqlite.c, idb_pg.c):
 *   - URI forms: a path and sqlite:PATH are SQLite, postgresql:// and postgres:// PostgreSQL,
 *     any other scheme is refused;
 *   - a missing file or empty database is IDB_E_NOTFOUND without create, made with it; the
 *     version found at open is reported (0 for a new file);
 *   - a file of schema version 1 is migrated to 2 and then takes claims; a newer version, and
 *     a database that holds other tables, are refused;
 *   - the history refuses UPDATE and DELETE (on PostgreSQL TRUNCATE too), from any client;
 *   - many threads opening one new database at once all find it made once;
 *   - PostgreSQL: a server that does not answer and a wrong password give a clear error, and
 *     no message nor idb_path shows a password.
 * Each test on a fresh database (testdb.h), on both back ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idb.h"
#include "testdb.h"

static int setup(void **state)
{
    struct testdb *t = calloc(1, sizeof *t);
    if (t == NULL || testdb_create("idb", t) != 0) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct testdb *t = *state;
    testdb_drop(t);
    free(t);
    return 0;
}

static struct idb *open_ok(const struct testdb *t, bool create)
{
    struct idb *db = NULL;
    char err[512];
    int rc = idb_open(t->uri, create, &db, err, sizeof err);
    if (rc != IDB_OK)
        fail_msg("idb_open %s: %s", testdb_name(t->backend), err);
    return db;
}

static void test_uri_forms(void **state)
{
    (void)state;
    assert_string_equal(idb_uri_file("/tmp/x.db"), "/tmp/x.db");
    assert_string_equal(idb_uri_file("x.db"), "x.db");
    assert_string_equal(idb_uri_file("sqlite:/tmp/x.db"), "/tmp/x.db");
    assert_null(idb_uri_file("postgresql://u@h/db"));
    assert_null(idb_uri_file("postgres://u@h/db"));
    struct idb *db = (struct idb *)1;
    char err[256];
    assert_int_equal(idb_open("mysql://u@h/db", true, &db, err, sizeof err), IDB_E_INVALID);
    assert_null(db);
    assert_non_null(strstr(err, "mysql"));
    assert_int_equal(idb_open("sqlite:", true, &db, err, sizeof err), IDB_E_INVALID);
}

static void test_missing_then_created(void **state)
{
    struct testdb *t = *state;
    struct idb *db = NULL;
    char err[512];
    assert_int_equal(idb_open(t->uri, false, &db, err, sizeof err), IDB_E_NOTFOUND);
    assert_null(db);
    assert_non_null(strstr(err, "icissue init"));
    db = open_ok(t, true);
    assert_int_equal(idb_schema_version(db), IDB_SCHEMA_VERSION);
    assert_int_equal(idb_opened_version(db), 0);
    assert_string_equal(idb_backend(db), t->backend == TESTDB_PG ? "PostgreSQL" : "SQLite");
    idb_close(db);
    db = open_ok(t, false);
    assert_int_equal(idb_opened_version(db), IDB_SCHEMA_VERSION);
    idb_close(db);
}

static void test_migrate_from_v1(void **state)
{
    struct testdb *t = *state;
    char err[512];
    idb_close(open_ok(t, true));
    /* back to version 1: the tables of version 2 gone */
    assert_int_equal(testdb_exec(t, "DROP TABLE claim_requests; DROP TABLE claims; "
                                    "UPDATE schema_version SET version = 1", err, sizeof err),
                     0);
    struct idb_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.identity, sizeof r.identity, "V1");
    snprintf(r.card_type, sizeof r.card_type, "T");
    assert_int_equal(testdb_exec(t, "INSERT INTO designs VALUES ('d', '#000000', '#000000', "
                                    "'#ffffff', ''); INSERT INTO card_types VALUES ('T', '', "
                                    "'contact', 'd', '')", err, sizeof err), 0);
    struct idb *db = open_ok(t, false);
    assert_int_equal(idb_opened_version(db), 1);
    assert_int_equal(idb_schema_version(db), 2);
    assert_int_equal(idb_record_insert(db, &r, err, sizeof err), IDB_OK);
    struct idb_claim c;
    assert_int_equal(idb_claim(db, "V1", "b1", "r1", 60, &c, NULL, err, sizeof err), IDB_OK);
    assert_int_equal(c.issue_number, 1);
    idb_close(db);
}

static void test_newer_and_foreign_refused(void **state)
{
    struct testdb *t = *state;
    char err[512];
    struct idb *db = NULL;
    idb_close(open_ok(t, true));
    assert_int_equal(testdb_exec(t, "UPDATE schema_version SET version = 99", err, sizeof err),
                     0);
    assert_int_equal(idb_open(t->uri, false, &db, err, sizeof err), IDB_E_DB);
    assert_non_null(strstr(err, "schema version 99"));
    assert_null(db);
    /* a database with tables of something else */
    struct testdb other;
    assert_int_equal(testdb_create("idb-other", &other), 0);
    idb_close(open_ok(&other, true));
    assert_int_equal(testdb_exec(&other, "DROP TABLE schema_version", err, sizeof err), 0);
    assert_int_equal(idb_open(other.uri, true, &db, err, sizeof err), IDB_E_DB);
    assert_non_null(strstr(err, "not an issuance file"));
    testdb_drop(&other);
}

static void test_history_append_only(void **state)
{
    struct testdb *t = *state;
    char err[512];
    struct idb *db = open_ok(t, true);
    assert_int_equal(idb_history_add(db, 0, "note", NULL, NULL, NULL, "x", "op", err,
                                     sizeof err),
                     IDB_OK);
    idb_close(db);
    assert_int_equal(testdb_exec(t, "UPDATE history SET detail = 'y'", err, sizeof err), -1);
    assert_non_null(strstr(err, "append-only"));
    assert_int_equal(testdb_exec(t, "DELETE FROM history", err, sizeof err), -1);
    assert_non_null(strstr(err, "append-only"));
    if (t->backend == TESTDB_PG) {
        assert_int_equal(testdb_exec(t, "TRUNCATE history", err, sizeof err), -1);
        assert_non_null(strstr(err, "append-only"));
    }
}

#define OPENERS 16

struct opener {
    const char *uri;
    int rc, version;
    pthread_t th;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct idb *db;
    char err[512];
    o->rc = idb_open(o->uri, true, &db, err, sizeof err);
    if (o->rc == IDB_OK) {
        o->version = idb_schema_version(db);
        idb_close(db);
    } else {
        fprintf(stderr, "open_thread: %s\n", err);
    }
    return NULL;
}

static void test_concurrent_first_open(void **state)
{
    struct testdb *t = *state;
    struct opener o[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        o[i] = (struct opener){ .uri = t->uri, .rc = -99 };
        assert_int_equal(pthread_create(&o[i].th, NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < OPENERS; i++)
        pthread_join(o[i].th, NULL);
    for (int i = 0; i < OPENERS; i++) {
        assert_int_equal(o[i].rc, IDB_OK);
        assert_int_equal(o[i].version, IDB_SCHEMA_VERSION);
    }
    char err[256];
    assert_int_equal(testdb_exec(t, "SELECT 1", err, sizeof err), 0);
}

/* The password of a URI of the form scheme://user:password@..., or "" */
static void uri_password(const char *uri, char *out, size_t cap)
{
    const char *p = strstr(uri, "://"), *at = p != NULL ? strchr(p + 3, '@') : NULL;
    const char *colon = p != NULL ? strchr(p + 3, ':') : NULL;
    out[0] = '\0';
    if (at != NULL && colon != NULL && colon < at)
        snprintf(out, cap, "%.*s", (int)(at - colon - 1), colon + 1);
}

static void test_pg_errors_and_password(void **state)
{
    struct testdb *t = *state;
    char err[512];
    struct idb *db = NULL;
    /* nothing listens on port 1 of the loopback */
    assert_int_equal(idb_open("postgresql://someone:hush-hush-42@127.0.0.1:1/issuance", false,
                              &db, err, sizeof err),
                     IDB_E_DB);
    assert_null(db);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    assert_non_null(strstr(err, "postgresql://someone@127.0.0.1:1/issuance"));
    assert_null(strstr(err, "hush-hush-42"));
    assert_int_equal(idb_open("postgres://127.0.0.1:1/x?password=hush-hush-42&connect_timeout"
                              "=5", false, &db, err, sizeof err),
                     IDB_E_DB);
    assert_null(strstr(err, "hush-hush-42"));
    assert_non_null(strstr(err, "postgres://127.0.0.1:1/x?connect_timeout=5"));
    if (t->backend != TESTDB_PG)
        return;
    char pw[128];
    uri_password(t->uri, pw, sizeof pw);
    db = open_ok(t, true);
    if (pw[0] != '\0')
        assert_null(strstr(idb_path(db), pw));
    assert_non_null(strstr(idb_path(db), t->name));
    idb_close(db);
    if (pw[0] == '\0')
        return;
    /* a wrong password: refused, and neither password shown */
    char wrong[600];
    const char *colon = strstr(t->uri, pw);
    snprintf(wrong, sizeof wrong, "%.*swrong-%s%s", (int)(colon - t->uri), t->uri, pw,
             colon + strlen(pw));
    assert_int_equal(idb_open(wrong, false, &db, err, sizeof err), IDB_E_DB);
    assert_null(strstr(err, pw));
    assert_non_null(strstr(err, "password authentication failed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_forms),
        cmocka_unit_test_setup_teardown(test_missing_then_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_and_foreign_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_errors_and_password, setup, teardown),
    };
    return TESTDB_RUN(tests, NULL, NULL);
}

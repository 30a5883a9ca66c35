/* Fresh issuance files for the tests, on each back end: SQLite always, PostgreSQL when
 * $ICDUP_TEST_PG names a server (tests/run-unit.sh starts one with scripts/pg-env.sh). Each
 * test gets a database of its own (CREATE DATABASE on PostgreSQL), so runs do not meet.
 *
 * ICDUP_TEST_PG is a server URI without a database: postgresql://USER[:PASSWORD]@HOST:PORT,
 * of a user that may create databases. Include after <cmocka.h>. */
#ifndef TESTDB_H
#define TESTDB_H

#include <stdbool.h>
#include <stddef.h>

#define TESTDB_PG_ENV "ICDUP_TEST_PG"

enum testdb_backend { TESTDB_SQLITE, TESTDB_PG, TESTDB_BACKENDS };

struct testdb {
    enum testdb_backend backend;
    char dir[64];    /* a new temporary directory for the test's files (the SQLite file) */
    char name[64];   /* the PostgreSQL database */
    char uri[512];   /* for idb_open: DIR/issuance.db, or $ICDUP_TEST_PG/NAME */
};

/* The back end of the group running now (testdb_run). */
extern enum testdb_backend testdb_current;

/* "sqlite", "postgresql". */
const char *testdb_name(enum testdb_backend b);

/* Makes an empty issuance file on the current back end (not opened: idb_open with create)
 * and a temporary directory; tag names it. Returns 0, or -1 with a message on stderr. */
int testdb_create(const char *tag, struct testdb *t);

/* Drops the database and removes the directory with everything in it. */
void testdb_drop(struct testdb *t);

struct idb;

/* testdb_create, then the issuance file opened (made) in *db and, when types is not NULL,
 * the card types of that card-type file stored. Returns 0, or -1 with a message on stderr
 * and nothing left behind. */
int testdb_open(const char *tag, const char *types, struct testdb *t, struct idb **db);

/* Closes db and drops t. */
void testdb_close(struct testdb *t, struct idb *db);

/* Runs SQL on t's database directly, not through idb (to set up a state the API cannot,
 * or check that the database refuses something). Returns 0, or -1 with the database's
 * message in err. */
int testdb_exec(const struct testdb *t, const char *sql, char *err, size_t errlen);

/* PostgreSQL only: runs sql on the server's maintenance database postgres (to watch or end the
 * sessions of a test's database); *value (may be NULL) gets the first column of its first row.
 * Returns 0, or -1 with the message in err. */
int testdb_pg_admin(const char *sql, long long *value, char *err, size_t errlen);

/* PostgreSQL only: with reachable false, t's database refuses new connections (ALTER DATABASE
 * ... ALLOW_CONNECTIONS false) and every session of it is ended, waiting until they are gone
 * (a database server that went away under a running central); with true, it lets connections
 * in again. Run from the server's maintenance database postgres. Returns 0, or -1 with the
 * message in err. testdb_drop drops the database either way. */
int testdb_pg_reachable(const struct testdb *t, bool reachable, char *err, size_t errlen);

/* Runs the cmocka group on each back end (PostgreSQL skipped, with a line saying so, when
 * $ICDUP_TEST_PG is not set); returns the number of failed tests. */
int testdb_run(const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
               CMFixtureFunction teardown);
#define TESTDB_RUN(tests, setup, teardown)                                                 \
    testdb_run(tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "idb.h"
#include "typefile.h"

enum testdb_backend testdb_current = TESTDB_SQLITE;

const char *testdb_name(enum testdb_backend b)
{
    return b == TESTDB_PG ? "postgresql" : "sqlite";
}

/* $ICDUP_TEST_PG without a trailing '/', or NULL with a message when it is not a server URI. */
static const char *pg_server(char *buf, size_t cap)
{
    const char *v = getenv(TESTDB_PG_ENV);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "testdb: %s is not set\n", TESTDB_PG_ENV);
        return NULL;
    }
    const char *auth = strstr(v, "://");
    if ((strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0) ||
        auth == NULL || strchr(auth + 3, '?') != NULL ||
        strcspn(auth + 3, "/") + 1 < strlen(auth + 3) ||
        (size_t)snprintf(buf, cap, "%s", v) >= cap) {
        fprintf(stderr, "testdb: %s must be a server URI without a database, "
                        "postgresql://USER[:PASSWORD]@HOST:PORT\n", TESTDB_PG_ENV);
        return NULL;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '/')
        buf[n - 1] = '\0';
    return buf;
}

/* Ends err at its first newline (libpq's messages end with one). */
static void one_line(char *err)
{
    err[strcspn(err, "\n")] = '\0';
}

/* A connection to the server's maintenance database postgres, or NULL with a message in err. */
static PGconn *pg_admin_connect(char *err, size_t errlen)
{
    char server[384], uri[448];
    snprintf(err, errlen, "%s is not a server URI", TESTDB_PG_ENV);
    if (pg_server(server, sizeof server) == NULL)
        return NULL;
    snprintf(uri, sizeof uri, "%s/postgres", server);
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the test server: %s", PQerrorMessage(c));
        one_line(err);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs sql on c: 0 with the first column of its first row in *value (when not NULL and the
 * statement gives one), or -1 with the server's message in err. */
static int pg_admin_run(PGconn *c, const char *sql, long long *value, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(r));
        one_line(err);
    } else if (value != NULL && st == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        *value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    return rc;
}

/* Runs one statement on the server's maintenance database postgres: 0, or -1. */
static int pg_admin(const char *sql)
{
    char err[512];
    PGconn *c = pg_admin_connect(err, sizeof err);
    int rc = c != NULL ? pg_admin_run(c, sql, NULL, err, sizeof err) : -1;
    if (rc != 0)
        fprintf(stderr, "testdb: %s\n", err);
    PQfinish(c);
    return rc;
}

int testdb_create(const char *tag, struct testdb *t)
{
    static unsigned seq;
    memset(t, 0, sizeof *t);
    t->backend = testdb_current;
    snprintf(t->dir, sizeof t->dir, "/tmp/icdup-%.16s-XXXXXX", tag);
    if (mkdtemp(t->dir) == NULL) {
        perror("testdb: mkdtemp");
        return -1;
    }
    if (t->backend == TESTDB_SQLITE) {
        snprintf(t->uri, sizeof t->uri, "%s/issuance.db", t->dir);
        return 0;
    }
    /* A database name of lower-case letters, digits and _: no quoting needed. */
    size_t n = (size_t)snprintf(t->name, sizeof t->name, "icdup_%.16s_%ld_%u", tag,
                                (long)getpid(), seq++);
    for (size_t i = 0; i < n; i++)
        if (!((t->name[i] >= 'a' && t->name[i] <= 'z') ||
              (t->name[i] >= '0' && t->name[i] <= '9')))
            t->name[i] = '_';
    char server[384], sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->name);
    if (pg_server(server, sizeof server) == NULL || pg_admin(sql) != 0) {
        testdb_drop(t);
        return -1;
    }
    snprintf(t->uri, sizeof t->uri, "%s/%s", server, t->name);
    return 0;
}

void testdb_drop(struct testdb *t)
{
    if (t->backend == TESTDB_PG && t->name[0] != '\0') {
        char sql[128];
        /* FORCE: a backend of a killed test process may not have noticed it yet. */
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
        (void)pg_admin(sql);
        t->name[0] = '\0';
    }
    if (t->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "testdb: cannot remove %s\n", t->dir);
        t->dir[0] = '\0';
    }
}

int testdb_open(const char *tag, const char *types, struct testdb *t, struct idb **db)
{
    char err[512] = "out of memory";
    *db = NULL;
    if (testdb_create(tag, t) != 0)
        return -1;
    int rc = idb_open(t->uri, true, db, err, sizeof err) == IDB_OK ? 0 : -1;
    if (rc == 0 && types != NULL) {
        struct ct_file *f = calloc(1, sizeof *f);
        if (f == NULL || typefile_load(types, f, err, sizeof err) != 0 ||
            idb_types_store(*db, f, err, sizeof err) != IDB_OK)
            rc = -1;
        free(f);
    }
    if (rc != 0) {
        fprintf(stderr, "testdb: %s\n", err);
        testdb_close(t, *db);
        *db = NULL;
    }
    return rc;
}

void testdb_close(struct testdb *t, struct idb *db)
{
    idb_close(db);
    testdb_drop(t);
}

int testdb_exec(const struct testdb *t, const char *sql, char *err, size_t errlen)
{
    int rc = -1;
    snprintf(err, errlen, "cannot connect");
    if (t->backend == TESTDB_SQLITE) {
        sqlite3 *db = NULL;
        char *msg = NULL;
        if (sqlite3_open_v2(t->uri, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
            rc = sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK ? 0 : -1;
            snprintf(err, errlen, "%s", msg != NULL ? msg : "");
        }
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc;
    }
    PGconn *c = PQconnectdb(t->uri);
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

int testdb_run(const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
               CMFixtureFunction teardown)
{
    int failed = 0;
    for (int b = 0; b < TESTDB_BACKENDS; b++) {
        testdb_current = (enum testdb_backend)b;
        if (b == TESTDB_PG && getenv(TESTDB_PG_ENV) == NULL) {
            printf("[ SKIPPED  ] %s: %s is not set (tests/run-unit.sh starts a server)\n",
                   testdb_name(testdb_current), TESTDB_PG_ENV);
            continue;
        }
        failed += _cmocka_run_group_tests(testdb_name(testdb_current), tests, n, setup,
                                          teardown);
    }
    return failed;
}

int testdb_pg_admin(const char *sql, long long *value, char *err, size_t errlen)
{
    PGconn *c = pg_admin_connect(err, errlen);
    int rc = c != NULL ? pg_admin_run(c, sql, value, err, errlen) : -1;
    PQfinish(c);
    return rc;
}

int testdb_pg_reachable(const struct testdb *t, bool reachable, char *err, size_t errlen)
{
    if (t->backend != TESTDB_PG || t->name[0] == '\0') {
        snprintf(err, errlen, "not a PostgreSQL test database");
        return -1;
    }
    PGconn *c = pg_admin_connect(err, errlen);
    if (c == NULL)
        return -1;
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s", t->name,
             reachable ? "true" : "false");
    int rc = pg_admin_run(c, sql, NULL, err, errlen);
    if (rc == 0 && !reachable) {
        /* With a timeout pg_terminate_backend waits for the backend to exit: after it no
         * request can slip into a session that was only told to end. */
        long long left = -1;
        snprintf(sql, sizeof sql, "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, "
                 "5000)) FROM pg_stat_activity WHERE datname = '%s' AND pid <> "
                 "pg_backend_pid()", t->name);
        rc = pg_admin_run(c, sql, &left, err, errlen);
        if (rc == 0 && left != 0) {
            snprintf(err, errlen, "%lld session%s of %s did not end within 5 s", left,
                     left == 1 ? "" : "s", t->name);
            rc = -1;
        }
    }
    PQfinish(c);
    return rc;
}

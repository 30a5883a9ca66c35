/* What a back end of the issuance file provides (internal to host/issuance/idb*.c): an ops
 * struct for a connection and its statements, a few SQL fragments of its dialect, and its
 * schema migrations. idb_sqlite.c and idb_pg.c are the back ends; each holds all of its SQL
 * that differs from the other's. The statements of idb_*.c are written once, for both, with
 * numbered parameters ?1, ?2, ... and the placeholders that idb.c replaces by the fragments
 * below: {now} (the UTC time as ISO 8601 text), {epoch} (unix seconds, an integer) and
 * {lock} (what makes a SELECT lock the rows it reads until the transaction ends).
 *
 * A statement binds values (an unbound parameter is NULL; text and blobs are copied), then
 * steps: each step gives a row or says that it is done, or how it failed. reset makes it
 * ready to bind and run again and unbinds everything. Columns are read while a row is there;
 * the text of one stays valid until the next step or reset. */
#ifndef IDB_DRV_H
#define IDB_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum idb_step {
    IDB_STEP_ROW = 1,      /* a row is ready */
    IDB_STEP_DONE = 0,     /* the statement has finished */
    IDB_STEP_UNIQUE = -1,  /* a unique or primary key refused the change */
    IDB_STEP_FOREIGN = -2, /* a foreign key refused the change */
    IDB_STEP_ERROR = -3,   /* any other failure; errmsg says what */
};

struct idb_driver;

/* The start of every back end's statement. */
struct idb_stmt {
    const struct idb_driver *drv;
};

struct idb_driver {
    const char *name; /* "SQLite", "PostgreSQL" */

    /* dialect */
    const char *now_text;     /* {now} */
    const char *now_epoch;    /* {epoch} */
    const char *lock_rows;    /* {lock} ("" where the transaction holds the write lock) */
    const char *begin_schema; /* begins the transaction of the migrations, serialized with
                                 every other process's */
    const char *has_version;  /* one integer: 1 when the table schema_version exists */
    const char *count_tables; /* one integer: the tables of the database (of its schema) */
    const char *const *migrations; /* migrations[v - 1] brings version v - 1 to v, for v up
                                      to IDB_SCHEMA_VERSION */

    /* The name to show for target (the URI without its password); out always terminated. */
    void (*display)(const char *target, char *out, size_t cap);
    /* Opens target. create: a missing SQLite file is made. Returns IDB_OK, IDB_E_NOTFOUND
     * (no such file; err left to the caller), or IDB_E_DB with a message in err. */
    int (*open)(const char *target, bool create, void **conn, char *err, size_t errlen);
    void (*close)(void *conn);
    /* The last failure of conn or of one of its statements (never a password). */
    const char *(*errmsg)(void *conn);
    /* Runs statements without parameters or rows (DDL, BEGIN). 0, or -1. */
    int (*exec)(void *conn, const char *sql);
    /* Begins a transaction (idb_begin): 0, or -1. A back end may send the BEGIN with the
     * transaction's first statement. */
    int (*begin)(void *conn);
    /* Commits; a transaction that failed part-way is rolled back instead and -1 returned. */
    int (*commit)(void *conn);
    bool (*in_transaction)(void *conn);

    int (*prepare)(void *conn, const char *sql, struct idb_stmt **st); /* 0, or -1 */
    void (*finalize)(struct idb_stmt *st);
    void (*reset)(struct idb_stmt *st);
    void (*bind_int)(struct idb_stmt *st, int i, int64_t v);
    void (*bind_text)(struct idb_stmt *st, int i, const char *v);
    void (*bind_blob)(struct idb_stmt *st, int i, const void *p, size_t n);
    enum idb_step (*step)(struct idb_stmt *st);
    /* Runs st (bound) for its effect alone, its rows ignored, and resets it (idb_defer). In a
     * transaction a back end may send it with the next statement that is stepped or with the
     * COMMIT; a failure then fails that one, and the transaction. 0, or -1 when it failed
     * already. */
    int (*defer)(struct idb_stmt *st);
    bool (*column_null)(struct idb_stmt *st, int col);
    int64_t (*column_int)(struct idb_stmt *st, int col);
    const char *(*column_text)(struct idb_stmt *st, int col); /* "" for NULL */
    /* Copies a blob column into out: 0 and its length, or -1 when it holds more than cap
     * bytes (or is not a blob). NULL reads as 0 bytes. */
    int (*column_blob)(struct idb_stmt *st, int col, uint8_t *out, size_t cap, size_t *len);
    int64_t (*changes)(struct idb_stmt *st); /* rows the finished statement changed */
};

extern const struct idb_driver idb_sqlite_driver;
extern const struct idb_driver idb_pg_driver;

#endif

/* What the modules of the issuance file share (internal to host/issuance/idb*.c): the open
 * file, its statements, errors. idb.c opens a file on its back end (idb_drv.h) and keeps the
 * statements; idb_types.c, idb_records.c and idb_claim.c hold the SQL of their tables,
 * written once for both back ends. */
#ifndef IDB_INT_H
#define IDB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idb.h"
#include "idb_drv.h"

#define IDB_CACHE_MAX 96

struct idb {
    const struct idb_driver *drv;
    void *conn;
    struct {
        const char *sql; /* the statement's text as the module wrote it (by address) */
        struct idb_stmt *st;
    } cache[IDB_CACHE_MAX];
    size_t ncache;
    int opened_version; /* the schema version found at open (0: new) */
    char path[1024];    /* what messages call the file: its path, or the URI sans password */
};

/* Writes "what" to err and returns rc. For IDB_E_DB with db, the message names the file and
 * adds the back end's own message. */
int idb_fail(struct idb *db, int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The statement of sql, ready to bind and step; NULL with a message when it cannot be
 * prepared. sql must be a string constant: statements are kept per open file by its address
 * and prepared once. Every use ends with idb_end. */
struct idb_stmt *idb_sql(struct idb *db, const char *sql, char *err, size_t errlen);

/* Ends the use of a statement (reset and unbound): a statement left running would hold a
 * SQLite read transaction. NULL is allowed. */
void idb_end(struct idb_stmt *st);

/* Steps st once and ends it: for INSERT, UPDATE and DELETE. */
enum idb_step idb_run(struct idb_stmt *st);

/* Runs st for its effect (its rows ignored) and ends it, where nobody waits for its result:
 * an UPDATE, INSERT or locking SELECT whose failure fails the transaction. In a transaction
 * PostgreSQL sends it with the next statement or the commit (one round trip for them all), so
 * its failure may show only there; IDB_STEP_DONE or IDB_STEP_ERROR. */
enum idb_step idb_defer(struct idb_stmt *st);

/* Runs statements without parameters (DDL, transaction control). */
int idb_exec(struct idb *db, const char *sql, char *err, size_t errlen);

/* A record's or history event's card serial from a blob column: true when it is there. */
bool idb_col_serial(struct idb_stmt *st, int col, uint8_t out[IDB_SERIAL_LEN]);

/* Copies a text column (NULL reads as "") into dst, cut to cap - 1 bytes. */
void idb_col_copy(struct idb_stmt *st, int col, char *dst, size_t cap);

static inline void idb_bind_int(struct idb_stmt *st, int i, int64_t v)
{
    st->drv->bind_int(st, i, v);
}

/* NULL binds SQL NULL. */
static inline void idb_bind_text(struct idb_stmt *st, int i, const char *v)
{
    if (v != NULL)
        st->drv->bind_text(st, i, v);
}

static inline void idb_bind_blob(struct idb_stmt *st, int i, const void *p, size_t n)
{
    st->drv->bind_blob(st, i, p, n);
}

static inline enum idb_step idb_step(struct idb_stmt *st)
{
    return st->drv->step(st);
}

static inline bool idb_col_null(struct idb_stmt *st, int col)
{
    return st->drv->column_null(st, col);
}

static inline int64_t idb_col_int(struct idb_stmt *st, int col)
{
    return st->drv->column_int(st, col);
}

static inline const char *idb_col_text(struct idb_stmt *st, int col)
{
    return st->drv->column_text(st, col);
}

static inline int idb_col_blob(struct idb_stmt *st, int col, uint8_t *out, size_t cap,
                               size_t *len)
{
    return st->drv->column_blob(st, col, out, cap, len);
}

static inline int64_t idb_changes(struct idb_stmt *st)
{
    return st->drv->changes(st);
}

#endif

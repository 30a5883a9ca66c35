/* The issuance file: opening it by URI on its back end, the schema migrations, transactions
 * and the statements the other idb modules run. */
#include "idb_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors and statements ------------------------------------------------------------- */

int idb_fail(struct idb *db, int rc, char *err, size_t errlen, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == IDB_E_DB && db != NULL && db->conn != NULL)
        snprintf(err, errlen, "%s: %s: %s", db->path, what, db->drv->errmsg(db->conn));
    else
        snprintf(err, errlen, "%s", what);
    return rc;
}

/* sql with the placeholders of idb_drv.h replaced by the back end's fragments; NULL when out
 * of memory. */
static char *expand(const struct idb_driver *drv, const char *sql)
{
    static const char *const names[] = { "{now}", "{epoch}", "{lock}" };
    const char *frags[] = { drv->now_text, drv->now_epoch, drv->lock_rows };
    size_t cap = strlen(sql) + 1;
    for (const char *p = strchr(sql, '{'); p != NULL; p = strchr(p + 1, '{'))
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strncmp(p, names[i], strlen(names[i])) == 0)
                cap += strlen(frags[i]);
    char *out = malloc(cap), *o = out;
    if (out == NULL)
        return NULL;
    while (*sql != '\0') {
        size_t i = 0;
        for (; i < sizeof names / sizeof names[0]; i++)
            if (strncmp(sql, names[i], strlen(names[i])) == 0)
                break;
        if (i < sizeof names / sizeof names[0]) {
            size_t n = strlen(frags[i]);
            memcpy(o, frags[i], n);
            o += n;
            sql += strlen(names[i]);
        } else {
            *o++ = *sql++;
        }
    }
    *o = '\0';
    return out;
}

struct idb_stmt *idb_sql(struct idb *db, const char *sql, char *err, size_t errlen)
{
    for (size_t i = 0; i < db->ncache; i++)
        if (db->cache[i].sql == sql) {
            db->drv->reset(db->cache[i].st);
            return db->cache[i].st;
        }
    if (db->ncache == IDB_CACHE_MAX) {
        idb_fail(NULL, IDB_E_DB, err, errlen, "%s: too many statements", db->path);
        return NULL;
    }
    char *text = expand(db->drv, sql);
    if (text == NULL) {
        idb_fail(NULL, IDB_E_DB, err, errlen, "out of memory");
        return NULL;
    }
    struct idb_stmt *st = NULL;
    int rc = db->drv->prepare(db->conn, text, &st);
    free(text);
    if (rc != 0) {
        idb_fail(db, IDB_E_DB, err, errlen, "cannot prepare \"%.48s\"", sql);
        return NULL;
    }
    db->cache[db->ncache].sql = sql;
    db->cache[db->ncache++].st = st;
    return st;
}

void idb_end(struct idb_stmt *st)
{
    if (st != NULL)
        st->drv->reset(st);
}

enum idb_step idb_run(struct idb_stmt *st)
{
    enum idb_step s = idb_step(st);
    idb_end(st);
    return s;
}

enum idb_step idb_defer(struct idb_stmt *st)
{
    return st->drv->defer(st) == 0 ? IDB_STEP_DONE : IDB_STEP_ERROR;
}

int idb_exec(struct idb *db, const char *sql, char *err, size_t errlen)
{
    if (db->drv->exec(db->conn, sql) != 0)
        return idb_fail(db, IDB_E_DB, err, errlen, "cannot run \"%.40s\"", sql);
    return IDB_OK;
}

bool idb_col_serial(struct idb_stmt *st, int col, uint8_t out[IDB_SERIAL_LEN])
{
    size_t n = 0;
    return !idb_col_null(st, col) && idb_col_blob(st, col, out, IDB_SERIAL_LEN, &n) == 0 &&
           n == IDB_SERIAL_LEN;
}

void idb_col_copy(struct idb_stmt *st, int col, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", idb_col_text(st, col));
}

/* ---- URIs ------------------------------------------------------------------------------ */

/* The length of uri's scheme ("postgresql" of "postgresql://"), 0 when it has none. */
static size_t scheme_len(const char *uri)
{
    size_t n = 0;
    while (isalpha((unsigned char)uri[n]) || (n > 0 && (isdigit((unsigned char)uri[n]) ||
                                                        uri[n] == '+' || uri[n] == '-')))
        n++;
    return n > 1 && strncmp(uri + n, "://", 3) == 0 ? n : 0;
}

static bool is_pg(const char *uri)
{
    return strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0;
}

const char *idb_uri_file(const char *uri)
{
    if (is_pg(uri))
        return NULL;
    return strncmp(uri, "sqlite:", 7) == 0 ? uri + 7 : uri;
}

/* ---- schema and migrations ------------------------------------------------------------- */

static int query_int(struct idb *db, const char *sql, int64_t *v, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, sql, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW)
        *v = idb_col_int(st, 0);
    idb_end(st);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the schema");
    return IDB_OK;
}

/* The schema version, 0 for an empty database; IDB_E_DB for a database that holds other
 * tables but no schema_version. */
static int read_version(struct idb *db, int *version, char *err, size_t errlen)
{
    int64_t has = 0, tables = 0, v = -1;
    int rc = query_int(db, db->drv->has_version, &has, err, errlen);
    if (rc == IDB_OK && !has) {
        rc = query_int(db, db->drv->count_tables, &tables, err, errlen);
        if (rc == IDB_OK && tables != 0)
            return idb_fail(NULL, IDB_E_DB, err, errlen, "%s is a %s database but not an "
                            "issuance file (no schema_version table)", db->path,
                            db->drv->name);
        *version = 0;
        return rc;
    }
    if (rc == IDB_OK)
        rc = query_int(db, "SELECT version FROM schema_version", &v, err, errlen);
    if (rc != IDB_OK)
        return rc;
    if (v < 0 || v > 1000000)
        return idb_fail(NULL, IDB_E_DB, err, errlen, "%s: the schema_version table is bad",
                        db->path);
    *version = (int)v;
    return IDB_OK;
}

static int migrate(struct idb *db, bool create, char *err, size_t errlen)
{
    int v = 0;
    if (idb_exec(db, db->drv->begin_schema, err, errlen) != IDB_OK)
        return IDB_E_DB;
    int rc = read_version(db, &v, err, errlen);
    db->opened_version = v;
    if (rc == IDB_OK && v == 0 && !create)
        rc = idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "%s: no issuance file (make one "
                      "with 'icissue init --db %s')", db->path, db->path);
    if (rc == IDB_OK && v > IDB_SCHEMA_VERSION)
        rc = idb_fail(NULL, IDB_E_DB, err, errlen, "%s has schema version %d; this icissue "
                      "knows versions up to %d: use a newer icissue", db->path, v,
                      IDB_SCHEMA_VERSION);
    for (; rc == IDB_OK && v < IDB_SCHEMA_VERSION; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", v + 1);
        rc = idb_exec(db, db->drv->migrations[v], err, errlen);
        if (rc == IDB_OK)
            rc = idb_exec(db, sql, err, errlen);
    }
    if (rc != IDB_OK) {
        idb_rollback(db);
        return rc;
    }
    return idb_commit(db, err, errlen);
}

/* ---- file ------------------------------------------------------------------------------ */

int idb_open(const char *uri, bool create, struct idb **out, char *err, size_t errlen)
{
    *out = NULL;
    const struct idb_driver *drv = is_pg(uri) ? &idb_pg_driver : &idb_sqlite_driver;
    const char *target = is_pg(uri) ? uri : idb_uri_file(uri);
    size_t sl = scheme_len(uri);
    if (sl > 0 && !is_pg(uri) && strncmp(uri, "sqlite:", 7) != 0)
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "%.*s: not a kind of issuance file "
                        "(a path, sqlite:PATH, or postgresql://...)", (int)sl, uri);
    if (target[0] == '\0')
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "no issuance file named");
    struct idb *db = calloc(1, sizeof *db);
    if (db == NULL)
        return idb_fail(NULL, IDB_E_DB, err, errlen, "out of memory");
    db->drv = drv;
    drv->display(target, db->path, sizeof db->path);
    int rc = drv->open(target, create, &db->conn, err, errlen);
    if (rc == IDB_E_NOTFOUND)
        idb_fail(NULL, rc, err, errlen, "%s: no issuance file (make one with 'icissue init "
                 "--db %s')", db->path, db->path);
    if (rc == IDB_OK)
        rc = migrate(db, create, err, errlen);
    if (rc != IDB_OK) {
        idb_close(db);
        return rc;
    }
    *out = db;
    return IDB_OK;
}

void idb_close(struct idb *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->ncache; i++)
        db->drv->finalize(db->cache[i].st);
    if (db->conn != NULL)
        db->drv->close(db->conn);
    free(db);
}

const char *idb_path(const struct idb *db)
{
    return db->path;
}

const char *idb_backend(const struct idb *db)
{
    return db->drv->name;
}

int idb_schema_version(struct idb *db)
{
    char err[256];
    int v = -1;
    return read_version(db, &v, err, sizeof err) == IDB_OK ? v : -1;
}

int idb_opened_version(const struct idb *db)
{
    return db->opened_version;
}

int idb_begin(struct idb *db, char *err, size_t errlen)
{
    if (db->drv->in_transaction(db->conn))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "%s: a transaction is open already",
                        db->path);
    if (db->drv->begin(db->conn) != 0)
        return idb_fail(db, IDB_E_DB, err, errlen, "cannot begin a transaction");
    return IDB_OK;
}

int idb_commit(struct idb *db, char *err, size_t errlen)
{
    if (db->drv->commit(db->conn) != 0)
        return idb_fail(db, IDB_E_DB, err, errlen, "cannot commit");
    return IDB_OK;
}

void idb_rollback(struct idb *db)
{
    if (db->drv->in_transaction(db->conn))
        (void)db->drv->exec(db->conn, "ROLLBACK");
}

bool idb_in_transaction(struct idb *db)
{
    return db->drv->in_transaction(db->conn);
}

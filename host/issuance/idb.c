#include "idb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/platform_util.h>
#include <sqlite3.h>

/* Statements used once per record on the hot paths (lookup at reissue, insert at import)
 * are prepared once per open file. */
enum idb_stmt {
    ST_RECORD_BY_IDENTITY,
    ST_RECORD_BY_ID,
    ST_ITEMS_OF_RECORD,
    ST_RECORD_INSERT,
    ST_ITEM_INSERT,
    ST_HISTORY_INSERT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_RECORD_BY_IDENTITY] =
        "SELECT id, identity, card_type, design, issued, issue_count, backup_count, "
        "card_serial, pending_serial, pending_role FROM records WHERE identity = ?1",
    [ST_RECORD_BY_ID] =
        "SELECT id, identity, card_type, design, issued, issue_count, backup_count, "
        "card_serial, pending_serial, pending_role FROM records WHERE id = ?1",
    [ST_ITEMS_OF_RECORD] = "SELECT item, value FROM record_items WHERE record_id = ?1 "
                           "ORDER BY item",
    [ST_RECORD_INSERT] = "INSERT INTO records (identity, card_type, design, created, updated) "
                         "VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ','now'), "
                         "strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
    [ST_ITEM_INSERT] = "INSERT INTO record_items (record_id, item, value) VALUES (?1, ?2, ?3)",
    [ST_HISTORY_INSERT] =
        "INSERT INTO history (record_id, at, event, card_serial, role, card_type, detail, "
        "operator) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?2, ?3, ?4, ?5, ?6, ?7)",
};

struct idb {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char path[1024];
};

/* ---- schema and migrations ------------------------------------------------------------- */

/* migrations[v - 1] brings a file from version v - 1 to v. Never edit a released one: add. */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (0);"
    "CREATE TABLE designs ("
    "  name TEXT PRIMARY KEY, background TEXT NOT NULL, accent TEXT NOT NULL,"
    "  text_color TEXT NOT NULL, title TEXT NOT NULL);"
    "CREATE TABLE type_readouts ("
    "  name TEXT PRIMARY KEY, apdu BLOB NOT NULL, expect_sw INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL);"
    "CREATE TABLE identity_readouts ("
    "  name TEXT PRIMARY KEY,"
    "  encoding TEXT NOT NULL CHECK (encoding IN ('ascii', 'hex', 'bcd')));"
    "CREATE TABLE identity_readout_steps ("
    "  readout TEXT NOT NULL REFERENCES identity_readouts(name) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, apdu BLOB NOT NULL, expect_sw INTEGER NOT NULL,"
    "  PRIMARY KEY (readout, seq));"
    "CREATE TABLE card_types ("
    "  name TEXT PRIMARY KEY, description TEXT NOT NULL, interface TEXT NOT NULL,"
    "  design TEXT NOT NULL REFERENCES designs(name), stripe_iin TEXT NOT NULL);"
    "CREATE TABLE type_items ("
    "  card_type TEXT NOT NULL REFERENCES card_types(name) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, item TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('text', 'digits', 'date', 'secret', 'hex')),"
    "  max_len INTEGER NOT NULL, required INTEGER NOT NULL,"
    "  PRIMARY KEY (card_type, item));"
    /* The correlation table: what a type readout returned -> card type, identity readout. */
    "CREATE TABLE correlation ("
    "  type_readout TEXT NOT NULL REFERENCES type_readouts(name),"
    "  type_value BLOB NOT NULL,"
    "  card_type TEXT NOT NULL UNIQUE REFERENCES card_types(name) ON DELETE CASCADE,"
    "  identity_readout TEXT NOT NULL REFERENCES identity_readouts(name),"
    "  PRIMARY KEY (type_readout, type_value));"
    "CREATE TABLE script_steps ("
    "  card_type TEXT NOT NULL REFERENCES card_types(name) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('original', 'backup')),"
    "  seq INTEGER NOT NULL, label TEXT NOT NULL, header BLOB NOT NULL, data BLOB NOT NULL,"
    "  item TEXT, expect_sw INTEGER NOT NULL,"
    "  PRIMARY KEY (card_type, role, seq));"
    "CREATE TABLE records ("
    "  id INTEGER PRIMARY KEY,"
    "  identity TEXT NOT NULL UNIQUE,"
    "  card_type TEXT NOT NULL REFERENCES card_types(name),"
    "  design TEXT REFERENCES designs(name),"
    "  issued INTEGER NOT NULL DEFAULT 0 CHECK (issued IN (0, 1)),"
    "  issue_count INTEGER NOT NULL DEFAULT 0,"
    "  backup_count INTEGER NOT NULL DEFAULT 0,"
    "  card_serial BLOB, pending_serial BLOB,"
    "  pending_role TEXT CHECK (pending_role IN ('original', 'backup')),"
    "  created TEXT NOT NULL, updated TEXT NOT NULL);"
    "CREATE TABLE record_items ("
    "  record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,"
    "  item TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (record_id, item)) WITHOUT ROWID;"
    "CREATE TABLE history ("
    "  id INTEGER PRIMARY KEY,"
    "  record_id INTEGER REFERENCES records(id),"
    "  at TEXT NOT NULL, event TEXT NOT NULL, card_serial BLOB, role TEXT, card_type TEXT,"
    "  detail TEXT NOT NULL, operator TEXT NOT NULL);"
    "CREATE INDEX history_by_record ON history (record_id, id);"
    "CREATE INDEX history_by_serial ON history (card_serial);"
    "CREATE INDEX records_by_serial ON records (card_serial);"
    "CREATE TRIGGER history_no_update BEFORE UPDATE ON history"
    "  BEGIN SELECT RAISE(ABORT, 'the history is append-only'); END;"
    "CREATE TRIGGER history_no_delete BEFORE DELETE ON history"
    "  BEGIN SELECT RAISE(ABORT, 'the history is append-only'); END;",
};
#define MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(MIGRATIONS == IDB_SCHEMA_VERSION, "one migration per schema version");

/* ---- helpers --------------------------------------------------------------------------- */

static int fail(struct idb *db, int rc, char *err, size_t errlen, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == IDB_E_DB && db != NULL && db->db != NULL)
        snprintf(err, errlen, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->db));
    else
        snprintf(err, errlen, "%s", what);
    return rc;
}

static int prep(struct idb *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(db, IDB_E_DB, err, errlen, "cannot prepare a statement");
    return IDB_OK;
}

/* A cached statement, reset and unbound. */
static sqlite3_stmt *cached(struct idb *db, enum idb_stmt which)
{
    sqlite3_stmt *st = db->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? (const char *)src : "");
}

static int exec(struct idb *db, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec(db->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, IDB_E_DB, err, errlen, "cannot run \"%.40s\"", sql);
    return IDB_OK;
}

static int read_version(struct idb *db, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int has = 0;
    if (prep(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                 "name = 'schema_version'", &st, err, errlen) != IDB_OK)
        return IDB_E_DB;
    if (sqlite3_step(st) == SQLITE_ROW)
        has = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!has) {
        /* An empty file is new; any other table means the file is something else. */
        int tables = 0;
        if (prep(db, "SELECT count(*) FROM sqlite_master", &st, err, errlen) != IDB_OK)
            return IDB_E_DB;
        if (sqlite3_step(st) == SQLITE_ROW)
            tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (tables != 0)
            return fail(db, IDB_E_DB, err, errlen, "%s is a SQLite file but not an issuance "
                        "file (no schema_version table)", db->path);
        *version = 0;
        return IDB_OK;
    }
    if (prep(db, "SELECT version FROM schema_version", &st, err, errlen) != IDB_OK)
        return IDB_E_DB;
    int rc = sqlite3_step(st);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (*version < 0)
        return fail(db, IDB_E_DB, err, errlen, "%s: the schema_version table is empty",
                    db->path);
    return IDB_OK;
}

static int migrate(struct idb *db, char *err, size_t errlen)
{
    int v;
    if (exec(db, "BEGIN IMMEDIATE", err, errlen) != IDB_OK)
        return IDB_E_DB;
    int rc = read_version(db, &v, err, errlen);
    if (rc == IDB_OK && v > IDB_SCHEMA_VERSION)
        rc = fail(db, IDB_E_DB, err, errlen, "%s has schema version %d; this icissue knows "
                  "versions up to %d: use a newer icissue", db->path, v, IDB_SCHEMA_VERSION);
    for (; rc == IDB_OK && v < IDB_SCHEMA_VERSION; v++) {
        char sql[64];
        rc = exec(db, migrations[v], err, errlen);
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", v + 1);
        if (rc == IDB_OK)
            rc = exec(db, sql, err, errlen);
    }
    if (rc != IDB_OK) {
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return exec(db, "COMMIT", err, errlen);
}

/* ---- file ------------------------------------------------------------------------------ */

int idb_open(const char *path, bool create, struct idb **out, char *err, size_t errlen)
{
    *out = NULL;
    struct stat sb;
    if (!create && stat(path, &sb) != 0)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "%s: no issuance file (make one with "
                    "'icissue init --db %s')", path, path);
    struct idb *db = calloc(1, sizeof *db);
    if (db == NULL)
        return fail(NULL, IDB_E_DB, err, errlen, "out of memory");
    snprintf(db->path, sizeof db->path, "%s", path);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = IDB_OK;
    if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
        rc = fail(db, IDB_E_DB, err, errlen, "cannot open");
        goto out;
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, 10000);
    /* WAL with full sync: a commit survives a crash of the process and of the machine. */
    if (sqlite3_exec(db->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fail(db, IDB_E_DB, err, errlen, "not a usable SQLite file");
        goto out;
    }
    rc = exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", err, errlen);
    if (rc == IDB_OK)
        rc = migrate(db, err, errlen);
    for (int i = 0; rc == IDB_OK && i < ST_COUNT; i++)
        rc = prep(db, stmt_sql[i], &db->st[i], err, errlen);
out:
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
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_close(db->db);
    free(db);
}

const char *idb_path(const struct idb *db)
{
    return db->path;
}

int idb_schema_version(struct idb *db)
{
    char err[256];
    int v = -1;
    return read_version(db, &v, err, sizeof err) == IDB_OK ? v : -1;
}

int idb_begin(struct idb *db, char *err, size_t errlen)
{
    return exec(db, "BEGIN IMMEDIATE", err, errlen);
}

int idb_commit(struct idb *db, char *err, size_t errlen)
{
    return exec(db, "COMMIT", err, errlen);
}

void idb_rollback(struct idb *db)
{
    if (!sqlite3_get_autocommit(db->db))
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

bool idb_in_transaction(struct idb *db)
{
    return !sqlite3_get_autocommit(db->db);
}

/* ---- card types ------------------------------------------------------------------------ */

static void color_text(uint32_t rgb, char out[8])
{
    snprintf(out, 8, "#%06x", (unsigned)(rgb & 0xFFFFFFu));
}

/* Runs a prepared statement to completion (an INSERT or DELETE) and finalizes it. */
static int run_done(struct idb *db, sqlite3_stmt *st, const char *what, char *err,
                    size_t errlen)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: it refers to something that does "
                    "not exist, or records still use what it replaces", what);
    if (rc != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "%s", what);
    return IDB_OK;
}

static int store_design(struct idb *db, const struct cardface_design *d, char *err,
                        size_t errlen)
{
    sqlite3_stmt *st;
    char bg[8], ac[8], tx[8];
    if (prep(db, "INSERT INTO designs VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO "
                 "UPDATE SET background = ?2, accent = ?3, text_color = ?4, title = ?5",
             &st, err, errlen) != IDB_OK)
        return IDB_E_DB;
    color_text(d->background, bg);
    color_text(d->accent, ac);
    color_text(d->text, tx);
    sqlite3_bind_text(st, 1, d->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, bg, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, ac, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, tx, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, d->title, -1, SQLITE_TRANSIENT);
    return run_done(db, st, "storing a design", err, errlen);
}

static int store_type_readout(struct idb *db, const struct ct_type_readout *r, char *err,
                              size_t errlen)
{
    sqlite3_stmt *st;
    if (prep(db, "INSERT INTO type_readouts VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO "
                 "UPDATE SET apdu = ?2, expect_sw = ?3, priority = ?4", &st, err, errlen) !=
        IDB_OK)
        return IDB_E_DB;
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, r->cmd.apdu, (int)r->cmd.len, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, r->cmd.expect_sw);
    sqlite3_bind_int(st, 4, r->priority);
    return run_done(db, st, "storing a type readout", err, errlen);
}

static int store_identity_readout(struct idb *db, const struct ct_identity_readout *r,
                                  char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prep(db, "INSERT INTO identity_readouts VALUES (?1, ?2) ON CONFLICT (name) DO "
                 "UPDATE SET encoding = ?2", &st, err, errlen) != IDB_OK)
        return IDB_E_DB;
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ct_encoding_name(r->encoding), -1, SQLITE_STATIC);
    int rc = run_done(db, st, "storing an identity readout", err, errlen);
    if (rc == IDB_OK &&
        (rc = prep(db, "DELETE FROM identity_readout_steps WHERE readout = ?1", &st, err,
                   errlen)) == IDB_OK) {
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
        rc = run_done(db, st, "replacing identity readout steps", err, errlen);
    }
    for (size_t i = 0; rc == IDB_OK && i < r->nsteps; i++) {
        if ((rc = prep(db, "INSERT INTO identity_readout_steps VALUES (?1, ?2, ?3, ?4)", &st,
                       err, errlen)) != IDB_OK)
            break;
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, (int)i);
        sqlite3_bind_blob(st, 3, r->steps[i].apdu, (int)r->steps[i].len, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, r->steps[i].expect_sw);
        rc = run_done(db, st, "storing an identity readout step", err, errlen);
    }
    return rc;
}

static int store_type(struct idb *db, const struct ct_type *t, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    char what[96];
    snprintf(what, sizeof what, "card type %s", t->name);
    int rc = prep(db, "INSERT INTO card_types VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) "
                      "DO UPDATE SET description = ?2, interface = ?3, design = ?4, "
                      "stripe_iin = ?5", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, t->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->interface, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, t->design, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, t->stripe_iin, -1, SQLITE_TRANSIENT);
    if ((rc = run_done(db, st, what, err, errlen)) != IDB_OK)
        return rc;
    static const char *const clear[] = {
        "DELETE FROM type_items WHERE card_type = ?1",
        "DELETE FROM script_steps WHERE card_type = ?1",
        "DELETE FROM correlation WHERE card_type = ?1",
    };
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++) {
        if ((rc = prep(db, clear[i], &st, err, errlen)) != IDB_OK)
            return rc;
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
        if ((rc = run_done(db, st, what, err, errlen)) != IDB_OK)
            return rc;
    }
    if ((rc = prep(db, "INSERT INTO correlation VALUES (?1, ?2, ?3, ?4)", &st, err, errlen)) !=
        IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, t->type_readout, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, t->type_value, (int)t->type_value_len, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, t->identity_readout, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
        return fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: another card type answers the "
                    "same value to type readout %s", what, t->type_readout);
    if (step == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: type readout %s or identity "
                    "readout %s is not defined", what, t->type_readout, t->identity_readout);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "%s: correlation", what);
    for (size_t i = 0; i < t->nitems; i++) {
        const struct ct_item *it = &t->items[i];
        if ((rc = prep(db, "INSERT INTO type_items VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st, err,
                       errlen)) != IDB_OK)
            return rc;
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, (int)i);
        sqlite3_bind_text(st, 3, it->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, ct_kind_name(it->kind), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, (int)it->max_len);
        sqlite3_bind_int(st, 6, it->required ? 1 : 0);
        if ((rc = run_done(db, st, what, err, errlen)) != IDB_OK)
            return rc;
    }
    for (int role = 0; role < CT_ROLES; role++)
        for (size_t i = 0; i < t->nsteps[role]; i++) {
            const struct ct_step *s = &t->script[role][i];
            if ((rc = prep(db, "INSERT INTO script_steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                               "?8)", &st, err, errlen)) != IDB_OK)
                return rc;
            sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, ct_role_name((enum ct_role)role), -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, (int)i);
            sqlite3_bind_text(st, 4, s->label, -1, SQLITE_TRANSIENT);
            sqlite3_bind_blob(st, 5, s->header, 4, SQLITE_TRANSIENT);
            sqlite3_bind_blob(st, 6, s->data, (int)s->data_len, SQLITE_TRANSIENT);
            if (s->item[0] != '\0')
                sqlite3_bind_text(st, 7, s->item, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 8, s->expect_sw);
            if ((rc = run_done(db, st, what, err, errlen)) != IDB_OK)
                return rc;
        }
    return IDB_OK;
}

int idb_types_store(struct idb *db, const struct ct_file *f, char *err, size_t errlen)
{
    int rc = idb_begin(db, err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < f->ndesigns; i++)
        rc = store_design(db, &f->designs[i], err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < f->ntype_readouts; i++)
        rc = store_type_readout(db, &f->type_readouts[i], err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < f->nidentity_readouts; i++)
        rc = store_identity_readout(db, &f->identity_readouts[i], err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < f->ntypes; i++)
        rc = store_type(db, &f->types[i], err, errlen);
    if (rc != IDB_OK) {
        idb_rollback(db);
        return rc;
    }
    return idb_commit(db, err, errlen);
}

static int blob_to(sqlite3_stmt *st, int col, uint8_t *out, size_t cap, size_t *len)
{
    int n = sqlite3_column_bytes(st, col);
    const void *b = sqlite3_column_blob(st, col);
    if (n < 0 || (size_t)n > cap)
        return -1;
    if (n > 0)
        memcpy(out, b, (size_t)n);
    *len = (size_t)n;
    return 0;
}

static int not_found(char *err, size_t errlen, const char *what, const char *name)
{
    return fail(NULL, IDB_E_NOTFOUND, err, errlen, "no %s named \"%s\" in the issuance file",
                what, name);
}

int idb_type_get(struct idb *db, const char *name, struct ct_type *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT t.name, t.description, t.interface, t.design, t.stripe_iin, "
                      "c.type_readout, c.type_value, c.identity_readout FROM card_types t "
                      "JOIN correlation c ON c.card_type = t.name WHERE t.name = ?1",
                  &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        copy_text(out->name, sizeof out->name, sqlite3_column_text(st, 0));
        copy_text(out->description, sizeof out->description, sqlite3_column_text(st, 1));
        copy_text(out->interface, sizeof out->interface, sqlite3_column_text(st, 2));
        copy_text(out->design, sizeof out->design, sqlite3_column_text(st, 3));
        copy_text(out->stripe_iin, sizeof out->stripe_iin, sqlite3_column_text(st, 4));
        copy_text(out->type_readout, sizeof out->type_readout, sqlite3_column_text(st, 5));
        if (blob_to(st, 6, out->type_value, sizeof out->type_value, &out->type_value_len) != 0)
            step = SQLITE_CORRUPT;
        copy_text(out->identity_readout, sizeof out->identity_readout,
                  sqlite3_column_text(st, 7));
    }
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return not_found(err, errlen, "card type", name);
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading card type %s", name);

    if ((rc = prep(db, "SELECT item, kind, max_len, required FROM type_items WHERE "
                       "card_type = ?1 ORDER BY seq", &st, err, errlen)) != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    while ((step = sqlite3_step(st)) == SQLITE_ROW && out->nitems < CT_MAX_ITEMS) {
        struct ct_item *it = &out->items[out->nitems++];
        copy_text(it->name, sizeof it->name, sqlite3_column_text(st, 0));
        if (ct_kind_parse((const char *)sqlite3_column_text(st, 1), &it->kind) != 0)
            step = SQLITE_CORRUPT;
        it->max_len = (unsigned)sqlite3_column_int(st, 2);
        it->required = sqlite3_column_int(st, 3) != 0;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "reading the items of card type %s", name);

    if ((rc = prep(db, "SELECT role, label, header, data, item, expect_sw FROM script_steps "
                       "WHERE card_type = ?1 ORDER BY role, seq", &st, err, errlen)) != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        enum ct_role role;
        size_t hl = 0;
        if (ct_role_parse((const char *)sqlite3_column_text(st, 0), &role) != 0 ||
            out->nsteps[role] == CT_MAX_STEPS) {
            step = SQLITE_CORRUPT;
            break;
        }
        struct ct_step *s = &out->script[role][out->nsteps[role]++];
        copy_text(s->label, sizeof s->label, sqlite3_column_text(st, 1));
        if (blob_to(st, 2, s->header, 4, &hl) != 0 || hl != 4 ||
            blob_to(st, 3, s->data, sizeof s->data, &s->data_len) != 0) {
            step = SQLITE_CORRUPT;
            break;
        }
        copy_text(s->item, sizeof s->item, sqlite3_column_text(st, 4));
        s->expect_sw = (uint16_t)sqlite3_column_int(st, 5);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "reading the scripts of card type %s", name);
    return IDB_OK;
}

int idb_design_get(struct idb *db, const char *name, struct cardface_design *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT name, background, accent, text_color, title FROM designs "
                      "WHERE name = ?1", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        copy_text(out->name, sizeof out->name, sqlite3_column_text(st, 0));
        if (cardface_parse_color((const char *)sqlite3_column_text(st, 1), &out->background) ||
            cardface_parse_color((const char *)sqlite3_column_text(st, 2), &out->accent) ||
            cardface_parse_color((const char *)sqlite3_column_text(st, 3), &out->text))
            step = SQLITE_CORRUPT;
        copy_text(out->title, sizeof out->title, sqlite3_column_text(st, 4));
    }
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return not_found(err, errlen, "print design", name);
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading print design %s", name);
    return IDB_OK;
}

int idb_identity_readout_get(struct idb *db, const char *name, struct ct_identity_readout *out,
                             char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT r.encoding, s.apdu, s.expect_sw FROM identity_readouts r "
                      "LEFT JOIN identity_readout_steps s ON s.readout = r.name "
                      "WHERE r.name = ?1 ORDER BY s.seq", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int step, rows = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        if (ct_encoding_parse((const char *)sqlite3_column_text(st, 0), &out->encoding) != 0) {
            step = SQLITE_CORRUPT;
            break;
        }
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue;
        if (out->nsteps == CT_MAX_READOUT_STEPS) {
            step = SQLITE_CORRUPT;
            break;
        }
        struct ct_command *c = &out->steps[out->nsteps++];
        if (blob_to(st, 1, c->apdu, sizeof c->apdu, &c->len) != 0) {
            step = SQLITE_CORRUPT;
            break;
        }
        c->expect_sw = (uint16_t)sqlite3_column_int(st, 2);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "reading identity readout %s", name);
    if (rows == 0)
        return not_found(err, errlen, "identity readout", name);
    snprintf(out->name, sizeof out->name, "%s", name);
    return IDB_OK;
}

int idb_type_readouts(struct idb *db, struct ct_type_readout *out, size_t cap, size_t *n,
                      char *err, size_t errlen)
{
    *n = 0;
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT name, apdu, expect_sw, priority FROM type_readouts "
                      "ORDER BY priority, name", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < cap) {
        struct ct_type_readout *r = &out[*n];
        memset(r, 0, sizeof *r);
        copy_text(r->name, sizeof r->name, sqlite3_column_text(st, 0));
        if (blob_to(st, 1, r->cmd.apdu, sizeof r->cmd.apdu, &r->cmd.len) != 0) {
            step = SQLITE_CORRUPT;
            break;
        }
        r->cmd.expect_sw = (uint16_t)sqlite3_column_int(st, 2);
        r->priority = sqlite3_column_int(st, 3);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading the type readouts");
    return IDB_OK;
}

int idb_correlate(struct idb *db, const char *type_readout, const uint8_t *value, size_t len,
                  char card_type[CT_NAME_MAX + 1], char identity_readout[CT_NAME_MAX + 1],
                  char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT card_type, identity_readout FROM correlation "
                      "WHERE type_readout = ?1 AND type_value = ?2", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_text(st, 1, type_readout, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        copy_text(card_type, CT_NAME_MAX + 1, sqlite3_column_text(st, 0));
        copy_text(identity_readout, CT_NAME_MAX + 1, sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "no card type answers that value to "
                    "type readout %s", type_readout);
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading the correlation table");
    return IDB_OK;
}

int idb_type_names(struct idb *db, void (*fn)(void *ctx, const char *name, const char *desc),
                   void *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT name, description FROM card_types ORDER BY name", &st, err,
                  errlen);
    if (rc != IDB_OK)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0),
           (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "listing card types");
    return IDB_OK;
}

/* ---- records --------------------------------------------------------------------------- */

int idb_record_insert(struct idb *db, struct idb_record *r, char *err, size_t errlen)
{
    sqlite3_stmt *st = cached(db, ST_RECORD_INSERT);
    sqlite3_bind_text(st, 1, r->identity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->card_type, -1, SQLITE_STATIC);
    if (r->design[0] != '\0')
        sqlite3_bind_text(st, 3, r->design, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step == SQLITE_CONSTRAINT_UNIQUE)
        return fail(NULL, IDB_E_CONFLICT, err, errlen, "identity %s is already in the "
                    "issuance file", r->identity);
    if (step == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "card type %s or design %s is not in "
                    "the issuance file", r->card_type, r->design);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "inserting record %s", r->identity);
    r->id = sqlite3_last_insert_rowid(db->db);
    r->issued = false;
    r->issue_count = r->backup_count = 0;
    r->has_serial = r->has_pending = false;
    for (size_t i = 0; i < r->nitems; i++) {
        st = cached(db, ST_ITEM_INSERT);
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_text(st, 2, r->items[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->items[i].value, -1, SQLITE_STATIC);
        step = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
            return fail(NULL, IDB_E_CONFLICT, err, errlen, "record %s: item %s given twice",
                        r->identity, r->items[i].name);
        if (step != SQLITE_DONE)
            return fail(db, IDB_E_DB, err, errlen, "inserting record %s", r->identity);
    }
    return IDB_OK;
}

static bool serial_col(sqlite3_stmt *st, int col, uint8_t out[IDB_SERIAL_LEN])
{
    size_t n = 0;
    if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
        blob_to(st, col, out, IDB_SERIAL_LEN, &n) != 0 || n != IDB_SERIAL_LEN)
        return false;
    return true;
}

static int load_record(struct idb *db, sqlite3_stmt *st, const char *key,
                       struct idb_record *out, char *err, size_t errlen)
{
    idb_record_wipe(out);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        copy_text(out->identity, sizeof out->identity, sqlite3_column_text(st, 1));
        copy_text(out->card_type, sizeof out->card_type, sqlite3_column_text(st, 2));
        copy_text(out->design, sizeof out->design, sqlite3_column_text(st, 3));
        out->issued = sqlite3_column_int(st, 4) != 0;
        out->issue_count = (unsigned)sqlite3_column_int(st, 5);
        out->backup_count = (unsigned)sqlite3_column_int(st, 6);
        out->has_serial = serial_col(st, 7, out->card_serial);
        out->has_pending = serial_col(st, 8, out->pending_serial);
        const unsigned char *role = sqlite3_column_text(st, 9);
        if (out->has_pending && ct_role_parse((const char *)role, &out->pending_role) != 0)
            step = SQLITE_CORRUPT;
    }
    sqlite3_reset(st);
    if (step == SQLITE_DONE)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "no record %s in the issuance file",
                    key);
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading record %s", key);
    st = cached(db, ST_ITEMS_OF_RECORD);
    sqlite3_bind_int64(st, 1, out->id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW && out->nitems < CT_MAX_ITEMS) {
        struct idb_item *it = &out->items[out->nitems++];
        copy_text(it->name, sizeof it->name, sqlite3_column_text(st, 0));
        copy_text(it->value, sizeof it->value, sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "reading the items of record %s", key);
    return IDB_OK;
}

int idb_record_by_identity(struct idb *db, const char *identity, struct idb_record *out,
                           char *err, size_t errlen)
{
    sqlite3_stmt *st = cached(db, ST_RECORD_BY_IDENTITY);
    sqlite3_bind_text(st, 1, identity, -1, SQLITE_TRANSIENT);
    return load_record(db, st, identity, out, err, errlen);
}

int idb_record_by_id(struct idb *db, int64_t id, struct idb_record *out, char *err,
                     size_t errlen)
{
    char key[32];
    snprintf(key, sizeof key, "#%lld", (long long)id);
    sqlite3_stmt *st = cached(db, ST_RECORD_BY_ID);
    sqlite3_bind_int64(st, 1, id);
    return load_record(db, st, key, out, err, errlen);
}

int idb_record_by_serial(struct idb *db, const uint8_t serial[IDB_SERIAL_LEN],
                         struct idb_record *out, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT id FROM records WHERE card_serial = ?1 UNION ALL "
                      "SELECT record_id FROM history WHERE card_serial = ?1 AND role = "
                      "'original' AND event IN ('issued', 'issued-resumed') LIMIT 1", &st, err,
                  errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_blob(st, 1, serial, IDB_SERIAL_LEN, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "no record was issued on that card");
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "looking a card up by serial");
    return idb_record_by_id(db, id, out, err, errlen);
}

const char *idb_record_item(const struct idb_record *r, const char *name)
{
    for (size_t i = 0; i < r->nitems; i++)
        if (strcmp(r->items[i].name, name) == 0)
            return r->items[i].value;
    return NULL;
}

void idb_record_wipe(struct idb_record *r)
{
    mbedtls_platform_zeroize(r, sizeof *r);
}

/* Runs an UPDATE of one record; IDB_E_NOTFOUND when no row changed. */
static int update_one(struct idb *db, sqlite3_stmt *st, int64_t id, const char *what,
                      char *err, size_t errlen)
{
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "%s of record #%lld", what, (long long)id);
    if (sqlite3_changes(db->db) != 1)
        return fail(NULL, IDB_E_NOTFOUND, err, errlen, "%s: no record #%lld", what,
                    (long long)id);
    return IDB_OK;
}

#define TOUCH "updated = strftime('%Y-%m-%dT%H:%M:%fZ','now')"

int idb_record_set_pending(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           enum ct_role role, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE records SET pending_serial = ?2, pending_role = ?3, " TOUCH
                      " WHERE id = ?1", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, serial, IDB_SERIAL_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, ct_role_name(role), -1, SQLITE_STATIC);
    return update_one(db, st, id, "setting the pending card", err, errlen);
}

int idb_record_clear_pending(struct idb *db, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE records SET pending_serial = NULL, pending_role = NULL, " TOUCH
                      " WHERE id = ?1", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return update_one(db, st, id, "clearing the pending card", err, errlen);
}

int idb_record_mark_issued(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           const char *card_type, const char *design, char *err,
                           size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE records SET issued = 1, issue_count = issue_count + 1, "
                      "card_serial = ?2, card_type = ?3, design = ?4, pending_serial = NULL, "
                      "pending_role = NULL, " TOUCH " WHERE id = ?1", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, serial, IDB_SERIAL_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, card_type, -1, SQLITE_TRANSIENT);
    if (design != NULL && design[0] != '\0')
        sqlite3_bind_text(st, 4, design, -1, SQLITE_TRANSIENT);
    return update_one(db, st, id, "marking issued", err, errlen);
}

int idb_record_mark_backup(struct idb *db, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE records SET backup_count = backup_count + 1, "
                      "pending_serial = NULL, pending_role = NULL, " TOUCH " WHERE id = ?1",
                  &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return update_one(db, st, id, "counting the backup card", err, errlen);
}

int idb_record_mark_unissued(struct idb *db, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE records SET issued = 0, " TOUCH " WHERE id = ?1", &st, err,
                  errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return update_one(db, st, id, "marking unissued", err, errlen);
}

int idb_records_list(struct idb *db, int64_t after_id, size_t limit,
                     void (*fn)(void *ctx, const struct idb_record *r), void *ctx, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT id, identity, card_type, design, issued, issue_count, "
                      "backup_count, card_serial, pending_serial, pending_role FROM records "
                      "WHERE id > ?1 ORDER BY id LIMIT ?2", &st, err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, limit == 0 ? -1 : (sqlite3_int64)limit);
    struct idb_record r;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(st, 0);
        copy_text(r.identity, sizeof r.identity, sqlite3_column_text(st, 1));
        copy_text(r.card_type, sizeof r.card_type, sqlite3_column_text(st, 2));
        copy_text(r.design, sizeof r.design, sqlite3_column_text(st, 3));
        r.issued = sqlite3_column_int(st, 4) != 0;
        r.issue_count = (unsigned)sqlite3_column_int(st, 5);
        r.backup_count = (unsigned)sqlite3_column_int(st, 6);
        r.has_serial = serial_col(st, 7, r.card_serial);
        r.has_pending = serial_col(st, 8, r.pending_serial);
        if (r.has_pending)
            (void)ct_role_parse((const char *)sqlite3_column_text(st, 9), &r.pending_role);
        fn(ctx, &r);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "listing records");
    return IDB_OK;
}

int idb_records_count(struct idb *db, uint64_t *total, uint64_t *issued, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT count(*), coalesce(sum(issued), 0) FROM records", &st, err,
                  errlen);
    if (rc != IDB_OK)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *total = (uint64_t)sqlite3_column_int64(st, 0);
        *issued = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW)
        return fail(db, IDB_E_DB, err, errlen, "counting records");
    return IDB_OK;
}

/* ---- history --------------------------------------------------------------------------- */

int idb_history_add(struct idb *db, int64_t record_id, const char *event,
                    const uint8_t *serial, const char *role, const char *card_type,
                    const char *detail, const char *operator_name, char *err, size_t errlen)
{
    sqlite3_stmt *st = cached(db, ST_HISTORY_INSERT);
    if (record_id > 0)
        sqlite3_bind_int64(st, 1, record_id);
    sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
    if (serial != NULL)
        sqlite3_bind_blob(st, 3, serial, IDB_SERIAL_LEN, SQLITE_STATIC);
    if (role != NULL)
        sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    if (card_type != NULL)
        sqlite3_bind_text(st, 5, card_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, detail != NULL ? detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, operator_name != NULL ? operator_name : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "appending to the history");
    return IDB_OK;
}

bool idb_history_has(struct idb *db, int64_t record_id, const char *event,
                     const uint8_t serial[IDB_SERIAL_LEN])
{
    sqlite3_stmt *st;
    char err[64];
    if (prep(db, "SELECT 1 FROM history WHERE record_id = ?1 AND event = ?2 AND "
                 "card_serial = ?3 LIMIT 1", &st, err, sizeof err) != IDB_OK)
        return false;
    sqlite3_bind_int64(st, 1, record_id);
    sqlite3_bind_text(st, 2, event, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, serial, IDB_SERIAL_LEN, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int idb_history_list(struct idb *db, int64_t record_id,
                     void (*fn)(void *ctx, const struct idb_event *e), void *ctx, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT id, record_id, at, event, card_serial, role, card_type, detail, "
                      "operator FROM history WHERE ?1 = 0 OR record_id = ?1 ORDER BY id", &st,
                  err, errlen);
    if (rc != IDB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, record_id);
    struct idb_event e;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&e, 0, sizeof e);
        e.id = sqlite3_column_int64(st, 0);
        e.record_id = sqlite3_column_int64(st, 1);
        copy_text(e.at, sizeof e.at, sqlite3_column_text(st, 2));
        copy_text(e.event, sizeof e.event, sqlite3_column_text(st, 3));
        e.has_serial = serial_col(st, 4, e.card_serial);
        copy_text(e.role, sizeof e.role, sqlite3_column_text(st, 5));
        copy_text(e.card_type, sizeof e.card_type, sqlite3_column_text(st, 6));
        copy_text(e.detail, sizeof e.detail, sqlite3_column_text(st, 7));
        copy_text(e.operator_name, sizeof e.operator_name, sqlite3_column_text(st, 8));
        fn(ctx, &e);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fail(db, IDB_E_DB, err, errlen, "reading the history");
    return IDB_OK;
}

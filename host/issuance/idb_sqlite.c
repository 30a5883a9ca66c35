/* The SQLite back end of the issuance file (idb_drv.h): one file, no server. The file runs
 * in WAL mode with synchronous = FULL and foreign keys on; a transaction takes the write lock
 * at once (BEGIN IMMEDIATE) and a connection waits up to 10 s for another's.
 *
 * SQLite's wait for the write lock is sleep-and-retry (sleeps of up to 100 ms), so with many
 * threads of one process writing (the central server's pool) a request could sleep long after
 * the lock was free. The connections of one process to one file therefore first queue on a
 * mutex of that file (its gate), held from BEGIN to the end of the transaction, and are woken
 * as soon as it is free; other processes still meet at SQLite's lock. */
#include "idb_drv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "idb.h"

#define BUSY_TIMEOUT_MS 10000

/* ---- schema ------------------------------------------------------------------------------ */

/* migrations[v - 1] brings a file from version v - 1 to v. Never edit a released one: add.
 * idb_pg.c has the same versions in PostgreSQL's dialect. */
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

    /* 2: claims of the central issuance system (idb_claim) and the results of its requests */
    "CREATE TABLE claims ("
    "  token TEXT PRIMARY KEY,"
    "  record_id INTEGER NOT NULL REFERENCES records(id),"
    "  branch TEXT NOT NULL,"
    "  issue_number INTEGER NOT NULL,"
    "  was_issued INTEGER NOT NULL CHECK (was_issued IN (0, 1)),"
    "  state TEXT NOT NULL CHECK (state IN ('open', 'confirmed', 'aborted', 'expired')),"
    "  claimed_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, closed_at INTEGER,"
    "  card_serial BLOB);"
    "CREATE UNIQUE INDEX claims_open ON claims (record_id) WHERE state = 'open';"
    "CREATE INDEX claims_expiry ON claims (expires_at) WHERE state = 'open';"
    "CREATE TABLE claim_requests ("
    "  branch TEXT NOT NULL, request_id TEXT NOT NULL,"
    "  op TEXT NOT NULL CHECK (op IN ('claim', 'confirm', 'abort')),"
    "  subject TEXT NOT NULL, rc INTEGER NOT NULL, message TEXT NOT NULL,"
    "  token TEXT, record_id INTEGER, issue_number INTEGER, expires_at INTEGER,"
    "  claim_open INTEGER, at TEXT NOT NULL,"
    "  PRIMARY KEY (branch, request_id));",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == IDB_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- the gates: one per open file of this process ----------------------------------------- */

#define GATES_MAX 64

struct sq_gate {
    dev_t dev;
    ino_t ino;
    unsigned users; /* connections open on the file */
    pthread_mutex_t lock;
};

static pthread_mutex_t gates_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sq_gate *gates[GATES_MAX];

/* The gate of the file at path, NULL when there is none to have (no such file, too many
 * files open, no memory): then only SQLite's busy wait orders the writers. */
static struct sq_gate *gate_get(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return NULL;
    struct sq_gate *g = NULL, **free_slot = NULL;
    pthread_mutex_lock(&gates_lock);
    for (size_t i = 0; i < GATES_MAX && g == NULL; i++) {
        if (gates[i] != NULL && gates[i]->dev == sb.st_dev && gates[i]->ino == sb.st_ino)
            g = gates[i];
        else if (gates[i] == NULL && free_slot == NULL)
            free_slot = &gates[i];
    }
    if (g == NULL && free_slot != NULL && (g = calloc(1, sizeof *g)) != NULL) {
        g->dev = sb.st_dev;
        g->ino = sb.st_ino;
        pthread_mutex_init(&g->lock, NULL);
        *free_slot = g;
    }
    if (g != NULL)
        g->users++;
    pthread_mutex_unlock(&gates_lock);
    return g;
}

static void gate_put(struct sq_gate *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&gates_lock);
    if (--g->users == 0) {
        for (size_t i = 0; i < GATES_MAX; i++)
            if (gates[i] == g)
                gates[i] = NULL;
        pthread_mutex_destroy(&g->lock);
        free(g);
    }
    pthread_mutex_unlock(&gates_lock);
}

/* ---- connection -------------------------------------------------------------------------- */

struct sq_conn {
    sqlite3 *db;
    struct sq_gate *gate; /* may be NULL */
    bool gated;           /* this connection holds its gate (a transaction is open) */
};

/* Opens the gate when this connection's transaction has ended (committed, rolled back, or
 * ended by SQLite itself after a failure). */
static void gate_leave_if_done(struct sq_conn *c)
{
    if (c->gated && sqlite3_get_autocommit(c->db)) {
        c->gated = false;
        pthread_mutex_unlock(&c->gate->lock);
    }
}

static void sq_display(const char *target, char *out, size_t cap)
{
    snprintf(out, cap, "%s", target);
}

static int sq_open(const char *target, bool create, void **conn, char *err, size_t errlen)
{
    struct stat sb;
    if (!create && stat(target, &sb) != 0)
        return IDB_E_NOTFOUND;
    struct sq_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "%s: out of memory", target);
        return IDB_E_DB;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    const char *what = "cannot open";
    if (sqlite3_open_v2(target, &c->db, flags, NULL) == SQLITE_OK) {
        sqlite3_extended_result_codes(c->db, 1);
        sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
        /* WAL with full sync: a commit survives a crash of the process and of the machine. */
        what = "not a usable SQLite file";
        if (sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) == SQLITE_OK &&
            sqlite3_exec(c->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL,
                         NULL, NULL) == SQLITE_OK) {
            c->gate = gate_get(target);
            *conn = c;
            return IDB_OK;
        }
    }
    snprintf(err, errlen, "%s: %s: %s", target, what,
             c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
    sqlite3_close(c->db);
    free(c);
    return IDB_E_DB;
}

static void sq_close(void *conn)
{
    struct sq_conn *c = conn;
    sqlite3_close(c->db); /* an open transaction is rolled back */
    if (c->gated)
        pthread_mutex_unlock(&c->gate->lock);
    gate_put(c->gate);
    free(c);
}

static const char *sq_errmsg(void *conn)
{
    return sqlite3_errmsg(((struct sq_conn *)conn)->db);
}

static int sq_exec(void *conn, const char *sql)
{
    struct sq_conn *c = conn;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    gate_leave_if_done(c);
    return rc;
}

static int sq_begin(void *conn)
{
    struct sq_conn *c = conn;
    if (c->gate != NULL && !c->gated) {
        /* bounded like SQLite's own wait; past it, BEGIN waits at SQLite's lock as well */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += BUSY_TIMEOUT_MS / 1000;
        c->gated = pthread_mutex_timedlock(&c->gate->lock, &until) == 0;
    }
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    gate_leave_if_done(c);
    return rc;
}

static int sq_commit(void *conn)
{
    struct sq_conn *c = conn;
    int rc = 0;
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = -1;
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    gate_leave_if_done(c);
    return rc;
}

static bool sq_in_transaction(void *conn)
{
    struct sq_conn *c = conn;
    gate_leave_if_done(c);
    return !sqlite3_get_autocommit(c->db);
}

/* ---- statements -------------------------------------------------------------------------- */

struct sq_stmt {
    struct idb_stmt base;
    sqlite3_stmt *st;
    int64_t changes;
};

static sqlite3_stmt *raw(struct idb_stmt *st)
{
    return ((struct sq_stmt *)st)->st;
}

static int sq_prepare(void *conn, const char *sql, struct idb_stmt **out)
{
    struct sq_stmt *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->base.drv = &idb_sqlite_driver;
    if (sqlite3_prepare_v2(((struct sq_conn *)conn)->db, sql, -1, &s->st, NULL) != SQLITE_OK) {
        free(s);
        return -1;
    }
    *out = &s->base;
    return 0;
}

static void sq_finalize(struct idb_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_finalize(raw(st));
    free(st);
}

static void sq_reset(struct idb_stmt *st)
{
    sqlite3_reset(raw(st));
    sqlite3_clear_bindings(raw(st));
}

static void sq_bind_int(struct idb_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(raw(st), i, v);
}

static void sq_bind_text(struct idb_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(raw(st), i, v, -1, SQLITE_TRANSIENT);
}

static void sq_bind_blob(struct idb_stmt *st, int i, const void *p, size_t n)
{
    sqlite3_bind_blob(raw(st), i, p, (int)n, SQLITE_TRANSIENT);
}

static enum idb_step sq_step(struct idb_stmt *st)
{
    struct sq_stmt *s = (struct sq_stmt *)st;
    int rc = sqlite3_step(s->st);
    switch (rc) {
    case SQLITE_ROW:
        return IDB_STEP_ROW;
    case SQLITE_DONE:
        s->changes = sqlite3_changes(sqlite3_db_handle(s->st));
        return IDB_STEP_DONE;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return IDB_STEP_UNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return IDB_STEP_FOREIGN;
    default:
        return IDB_STEP_ERROR;
    }
}

static int sq_defer(struct idb_stmt *st)
{
    enum idb_step s = sq_step(st);
    sq_reset(st);
    return s == IDB_STEP_DONE || s == IDB_STEP_ROW ? 0 : -1;
}

static bool sq_column_null(struct idb_stmt *st, int col)
{
    return sqlite3_column_type(raw(st), col) == SQLITE_NULL;
}

static int64_t sq_column_int(struct idb_stmt *st, int col)
{
    return sqlite3_column_int64(raw(st), col);
}

static const char *sq_column_text(struct idb_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(raw(st), col);
    return t != NULL ? (const char *)t : "";
}

static int sq_column_blob(struct idb_stmt *st, int col, uint8_t *out, size_t cap, size_t *len)
{
    int type = sqlite3_column_type(raw(st), col);
    if (type == SQLITE_NULL) {
        *len = 0;
        return 0;
    }
    if (type != SQLITE_BLOB)
        return -1;
    const void *b = sqlite3_column_blob(raw(st), col);
    int n = sqlite3_column_bytes(raw(st), col);
    if (n < 0 || (size_t)n > cap)
        return -1;
    if (n > 0)
        memcpy(out, b, (size_t)n);
    *len = (size_t)n;
    return 0;
}

static int64_t sq_changes(struct idb_stmt *st)
{
    return ((struct sq_stmt *)st)->changes;
}

const struct idb_driver idb_sqlite_driver = {
    .name = "SQLite",
    .now_text = "strftime('%Y-%m-%dT%H:%M:%fZ','now')",
    .now_epoch = "CAST(strftime('%s','now') AS INTEGER)",
    .lock_rows = "",
    .begin_schema = "BEGIN IMMEDIATE",
    .has_version = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                   "name = 'schema_version'",
    .count_tables = "SELECT count(*) FROM sqlite_master",
    .migrations = migrations,
    .display = sq_display,
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .in_transaction = sq_in_transaction,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .reset = sq_reset,
    .bind_int = sq_bind_int,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .step = sq_step,
    .defer = sq_defer,
    .column_null = sq_column_null,
    .column_int = sq_column_int,
    .column_text = sq_column_text,
    .column_blob = sq_column_blob,
    .changes = sq_changes,
};

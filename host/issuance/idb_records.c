/* Issuance records, their items and their history (docs/issuance.md, "The issuance file"). */
#include "idb_int.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

/* ---- records --------------------------------------------------------------------------- */

static const char SQL_RECORD_INSERT[] =
    "INSERT INTO records (identity, card_type, design, created, updated) "
    "VALUES (?1, ?2, ?3, {now}, {now}) ON CONFLICT (identity) DO NOTHING RETURNING id";
/* An item named twice is not an error of the statement: a failed statement would end a
 * PostgreSQL transaction, and the CSV import goes on checking after a bad row. */
static const char SQL_ITEM_INSERT[] =
    "INSERT INTO record_items (record_id, item, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (record_id, item) DO NOTHING";

int idb_record_insert(struct idb *db, struct idb_record *r, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_RECORD_INSERT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, r->identity);
    idb_bind_text(st, 2, r->card_type);
    idb_bind_text(st, 3, r->design[0] != '\0' ? r->design : NULL);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW)
        r->id = idb_col_int(st, 0);
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "identity %s is already in the "
                        "issuance file", r->identity);
    if (s == IDB_STEP_FOREIGN)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "card type %s or design %s is not "
                        "in the issuance file", r->card_type, r->design);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "inserting record %s", r->identity);
    r->issued = false;
    r->issue_count = r->backup_count = 0;
    r->has_serial = r->has_pending = false;
    for (size_t i = 0; i < r->nitems; i++) {
        if ((st = idb_sql(db, SQL_ITEM_INSERT, err, errlen)) == NULL)
            return IDB_E_DB;
        idb_bind_int(st, 1, r->id);
        idb_bind_text(st, 2, r->items[i].name);
        idb_bind_text(st, 3, r->items[i].value);
        s = idb_step(st);
        int64_t changed = s == IDB_STEP_DONE ? idb_changes(st) : 0;
        idb_end(st);
        if (s != IDB_STEP_DONE)
            return idb_fail(db, IDB_E_DB, err, errlen, "inserting record %s", r->identity);
        if (changed != 1)
            return idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "record %s: item %s given "
                            "twice", r->identity, r->items[i].name);
    }
    return IDB_OK;
}

#define RECORD_COLUMNS                                                                     \
    "SELECT id, identity, card_type, design, issued, issue_count, backup_count, "          \
    "card_serial, pending_serial, pending_role FROM records "

/* Inside a transaction a record is read to be changed: its row stays locked until the end
 * ({lock}; on SQLite the transaction holds the write lock already). */
static const char SQL_RECORD_BY_IDENTITY[] = RECORD_COLUMNS "WHERE identity = ?1";
static const char SQL_RECORD_BY_IDENTITY_LOCK[] = RECORD_COLUMNS "WHERE identity = ?1{lock}";
static const char SQL_RECORD_BY_ID[] = RECORD_COLUMNS "WHERE id = ?1";
static const char SQL_RECORD_BY_ID_LOCK[] = RECORD_COLUMNS "WHERE id = ?1{lock}";
static const char SQL_RECORDS_LIST[] = RECORD_COLUMNS "WHERE id > ?1 ORDER BY id LIMIT ?2";
static const char SQL_ITEMS_OF_RECORD[] =
    "SELECT item, value FROM record_items WHERE record_id = ?1 ORDER BY item";

/* The columns of RECORD_COLUMNS into r (items not read): 0, or -1 for a bad pending role. */
static int record_columns(struct idb_stmt *st, struct idb_record *r)
{
    r->id = idb_col_int(st, 0);
    idb_col_copy(st, 1, r->identity, sizeof r->identity);
    idb_col_copy(st, 2, r->card_type, sizeof r->card_type);
    idb_col_copy(st, 3, r->design, sizeof r->design);
    r->issued = idb_col_int(st, 4) != 0;
    r->issue_count = (unsigned)idb_col_int(st, 5);
    r->backup_count = (unsigned)idb_col_int(st, 6);
    r->has_serial = idb_col_serial(st, 7, r->card_serial);
    r->has_pending = idb_col_serial(st, 8, r->pending_serial);
    if (r->has_pending && ct_role_parse(idb_col_text(st, 9), &r->pending_role) != 0)
        return -1;
    return 0;
}

/* Reads the record that st (bound) selects, and its items. */
static int load_record(struct idb *db, struct idb_stmt *st, const char *key,
                       struct idb_record *out, char *err, size_t errlen)
{
    idb_record_wipe(out);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW && record_columns(st, out) != 0)
        s = IDB_STEP_ERROR;
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "no record %s in the issuance "
                        "file", key);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading record %s", key);
    if ((st = idb_sql(db, SQL_ITEMS_OF_RECORD, err, errlen)) == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, out->id);
    while ((s = idb_step(st)) == IDB_STEP_ROW && out->nitems < CT_MAX_ITEMS) {
        struct idb_item *it = &out->items[out->nitems++];
        idb_col_copy(st, 0, it->name, sizeof it->name);
        idb_col_copy(st, 1, it->value, sizeof it->value);
    }
    idb_end(st);
    if (s != IDB_STEP_DONE && s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the items of record %s", key);
    return IDB_OK;
}

int idb_record_by_identity(struct idb *db, const char *identity, struct idb_record *out,
                           char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, idb_in_transaction(db) ? SQL_RECORD_BY_IDENTITY_LOCK
                                                             : SQL_RECORD_BY_IDENTITY,
                                  err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, identity);
    return load_record(db, st, identity, out, err, errlen);
}

int idb_record_by_id(struct idb *db, int64_t id, struct idb_record *out, char *err,
                     size_t errlen)
{
    char key[32];
    snprintf(key, sizeof key, "#%lld", (long long)id);
    struct idb_stmt *st = idb_sql(db, idb_in_transaction(db) ? SQL_RECORD_BY_ID_LOCK
                                                             : SQL_RECORD_BY_ID,
                                  err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, id);
    return load_record(db, st, key, out, err, errlen);
}

static const char SQL_RECORD_BY_SERIAL[] =
    "SELECT id FROM records WHERE card_serial = ?1 UNION ALL "
    "SELECT record_id FROM history WHERE card_serial = ?1 AND role = 'original' AND "
    "event IN ('issued', 'issued-resumed', 'reissue') LIMIT 1";

int idb_record_by_serial(struct idb *db, const uint8_t serial[IDB_SERIAL_LEN],
                         struct idb_record *out, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_RECORD_BY_SERIAL, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_blob(st, 1, serial, IDB_SERIAL_LEN);
    enum idb_step s = idb_step(st);
    int64_t id = s == IDB_STEP_ROW ? idb_col_int(st, 0) : 0;
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "no record was issued on that "
                        "card");
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "looking a card up by serial");
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

/* ---- state changes --------------------------------------------------------------------- */

#define TOUCH "updated = {now}"

static const char SQL_SET_PENDING[] =
    "UPDATE records SET pending_serial = ?2, pending_role = ?3, " TOUCH " WHERE id = ?1";
static const char SQL_CLEAR_PENDING[] =
    "UPDATE records SET pending_serial = NULL, pending_role = NULL, " TOUCH " WHERE id = ?1";
static const char SQL_MARK_ISSUED[] =
    "UPDATE records SET issued = 1, issue_count = issue_count + 1, card_serial = ?2, "
    "card_type = ?3, design = ?4, pending_serial = NULL, pending_role = NULL, " TOUCH
    " WHERE id = ?1";
static const char SQL_MARK_BACKUP[] =
    "UPDATE records SET backup_count = backup_count + 1, pending_serial = NULL, "
    "pending_role = NULL, " TOUCH " WHERE id = ?1";
static const char SQL_MARK_UNISSUED[] =
    "UPDATE records SET issued = 0, " TOUCH " WHERE id = ?1";

/* The UPDATE sql of one record with id as ?1; bind adds the other parameters (may be NULL).
 * IDB_E_NOTFOUND when no row changed. */
static int update_one(struct idb *db, const char *sql, int64_t id,
                      void (*bind)(struct idb_stmt *st, const void *arg), const void *arg,
                      const char *what, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, sql, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, id);
    if (bind != NULL)
        bind(st, arg);
    enum idb_step s = idb_step(st);
    int64_t changed = s == IDB_STEP_DONE ? idb_changes(st) : 0;
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "%s of record #%lld", what, (long long)id);
    if (changed != 1)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "%s: no record #%lld", what,
                        (long long)id);
    return IDB_OK;
}

struct pending_arg {
    const uint8_t *serial;
    enum ct_role role;
};

static void bind_pending(struct idb_stmt *st, const void *arg)
{
    const struct pending_arg *a = arg;
    idb_bind_blob(st, 2, a->serial, IDB_SERIAL_LEN);
    idb_bind_text(st, 3, ct_role_name(a->role));
}

int idb_record_set_pending(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           enum ct_role role, char *err, size_t errlen)
{
    struct pending_arg a = { serial, role };
    return update_one(db, SQL_SET_PENDING, id, bind_pending, &a, "setting the pending card",
                      err, errlen);
}

int idb_record_clear_pending(struct idb *db, int64_t id, char *err, size_t errlen)
{
    return update_one(db, SQL_CLEAR_PENDING, id, NULL, NULL, "clearing the pending card",
                      err, errlen);
}

struct issued_arg {
    const uint8_t *serial;
    const char *card_type, *design;
};

static void bind_issued(struct idb_stmt *st, const void *arg)
{
    const struct issued_arg *a = arg;
    idb_bind_blob(st, 2, a->serial, IDB_SERIAL_LEN);
    idb_bind_text(st, 3, a->card_type);
    idb_bind_text(st, 4, a->design != NULL && a->design[0] != '\0' ? a->design : NULL);
}

int idb_record_mark_issued(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           const char *card_type, const char *design, char *err,
                           size_t errlen)
{
    struct issued_arg a = { serial, card_type, design };
    return update_one(db, SQL_MARK_ISSUED, id, bind_issued, &a, "marking issued", err,
                      errlen);
}

int idb_record_mark_backup(struct idb *db, int64_t id, char *err, size_t errlen)
{
    return update_one(db, SQL_MARK_BACKUP, id, NULL, NULL, "counting the backup card", err,
                      errlen);
}

int idb_record_mark_unissued(struct idb *db, int64_t id, char *err, size_t errlen)
{
    return update_one(db, SQL_MARK_UNISSUED, id, NULL, NULL, "marking unissued", err,
                      errlen);
}

/* ---- a branch's copy of a central record ------------------------------------------------ */

static const char SQL_SYNC_STATE[] =
    "UPDATE records SET card_type = ?2, design = ?3, issued = ?4, issue_count = ?5, "
    "backup_count = ?6, card_serial = ?7, " TOUCH " WHERE id = ?1";
static const char SQL_ITEMS_DELETE[] = "DELETE FROM record_items WHERE record_id = ?1";

struct sync_arg {
    const struct idb_record *r;
};

static void bind_sync(struct idb_stmt *st, const void *arg)
{
    const struct idb_record *r = ((const struct sync_arg *)arg)->r;
    idb_bind_text(st, 2, r->card_type);
    idb_bind_text(st, 3, r->design[0] != '\0' ? r->design : NULL);
    idb_bind_int(st, 4, r->issued ? 1 : 0);
    idb_bind_int(st, 5, r->issue_count);
    idb_bind_int(st, 6, r->backup_count);
    if (r->has_serial)
        idb_bind_blob(st, 7, r->card_serial, IDB_SERIAL_LEN);
}

/* Inside sync's transaction: the items of record id replaced by those of r. */
static int sync_items(struct idb *db, int64_t id, const struct idb_record *r, char *err,
                      size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_ITEMS_DELETE, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, id);
    enum idb_step s = idb_step(st);
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "replacing the items of record %s",
                        r->identity);
    for (size_t i = 0; i < r->nitems; i++) {
        if ((st = idb_sql(db, SQL_ITEM_INSERT, err, errlen)) == NULL)
            return IDB_E_DB;
        idb_bind_int(st, 1, id);
        idb_bind_text(st, 2, r->items[i].name);
        idb_bind_text(st, 3, r->items[i].value);
        s = idb_step(st);
        idb_end(st);
        if (s != IDB_STEP_DONE)
            return idb_fail(db, IDB_E_DB, err, errlen, "replacing the items of record %s",
                            r->identity);
    }
    return IDB_OK;
}

int idb_record_sync(struct idb *db, const struct idb_record *r, char *err, size_t errlen)
{
    int rc = idb_begin(db, err, errlen);
    if (rc != IDB_OK)
        return rc;
    struct idb_record now;
    int64_t id = 0;
    rc = idb_record_by_identity(db, r->identity, &now, err, errlen);
    if (rc == IDB_OK) {
        id = now.id;
        idb_record_wipe(&now);
        rc = sync_items(db, id, r, err, errlen);
    } else if (rc == IDB_E_NOTFOUND) {
        struct idb_record copy = *r;
        rc = idb_record_insert(db, &copy, err, errlen);
        id = copy.id;
        idb_record_wipe(&copy);
    }
    struct sync_arg a = { r };
    if (rc == IDB_OK)
        rc = update_one(db, SQL_SYNC_STATE, id, bind_sync, &a, "copying", err, errlen);
    if (rc == IDB_OK)
        rc = idb_commit(db, err, errlen);
    if (rc != IDB_OK)
        idb_rollback(db);
    return rc;
}

/* ---- listing --------------------------------------------------------------------------- */

int idb_records_list(struct idb *db, int64_t after_id, size_t limit,
                     void (*fn)(void *ctx, const struct idb_record *r), void *ctx, char *err,
                     size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_RECORDS_LIST, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, after_id);
    idb_bind_int(st, 2, limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    struct idb_record r;
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW) {
        memset(&r, 0, sizeof r);
        (void)record_columns(st, &r);
        fn(ctx, &r);
    }
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "listing records");
    return IDB_OK;
}

static const char SQL_RECORDS_COUNT[] =
    "SELECT count(*), coalesce(sum(issued), 0) FROM records";

int idb_records_count(struct idb *db, uint64_t *total, uint64_t *issued, char *err,
                      size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_RECORDS_COUNT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW) {
        *total = (uint64_t)idb_col_int(st, 0);
        *issued = (uint64_t)idb_col_int(st, 1);
    }
    idb_end(st);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "counting records");
    return IDB_OK;
}

/* ---- history --------------------------------------------------------------------------- */

static const char SQL_HISTORY_INSERT[] =
    "INSERT INTO history (record_id, at, event, card_serial, role, card_type, detail, "
    "operator) VALUES (?1, {now}, ?2, ?3, ?4, ?5, ?6, ?7)";

int idb_history_add(struct idb *db, int64_t record_id, const char *event,
                    const uint8_t *serial, const char *role, const char *card_type,
                    const char *detail, const char *operator_name, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_HISTORY_INSERT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    if (record_id > 0)
        idb_bind_int(st, 1, record_id);
    idb_bind_text(st, 2, event);
    if (serial != NULL)
        idb_bind_blob(st, 3, serial, IDB_SERIAL_LEN);
    idb_bind_text(st, 4, role);
    idb_bind_text(st, 5, card_type);
    idb_bind_text(st, 6, detail != NULL ? detail : "");
    idb_bind_text(st, 7, operator_name != NULL ? operator_name : "");
    if (idb_defer(st) != IDB_STEP_DONE) /* in a transaction, sent with what follows */
        return idb_fail(db, IDB_E_DB, err, errlen, "appending to the history");
    return IDB_OK;
}

static const char SQL_HISTORY_HAS[] =
    "SELECT 1 FROM history WHERE record_id = ?1 AND event = ?2 AND card_serial = ?3 LIMIT 1";

bool idb_history_has(struct idb *db, int64_t record_id, const char *event,
                     const uint8_t serial[IDB_SERIAL_LEN])
{
    char err[64];
    struct idb_stmt *st = idb_sql(db, SQL_HISTORY_HAS, err, sizeof err);
    if (st == NULL)
        return false;
    idb_bind_int(st, 1, record_id);
    idb_bind_text(st, 2, event);
    idb_bind_blob(st, 3, serial, IDB_SERIAL_LEN);
    bool found = idb_step(st) == IDB_STEP_ROW;
    idb_end(st);
    return found;
}

static const char SQL_HISTORY_LIST[] =
    "SELECT id, record_id, at, event, card_serial, role, card_type, detail, operator "
    "FROM history WHERE ?1 = 0 OR record_id = ?1 ORDER BY id";

int idb_history_list(struct idb *db, int64_t record_id,
                     void (*fn)(void *ctx, const struct idb_event *e), void *ctx, char *err,
                     size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_HISTORY_LIST, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, record_id);
    struct idb_event e;
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW) {
        memset(&e, 0, sizeof e);
        e.id = idb_col_int(st, 0);
        e.record_id = idb_col_int(st, 1);
        idb_col_copy(st, 2, e.at, sizeof e.at);
        idb_col_copy(st, 3, e.event, sizeof e.event);
        e.has_serial = idb_col_serial(st, 4, e.card_serial);
        idb_col_copy(st, 5, e.role, sizeof e.role);
        idb_col_copy(st, 6, e.card_type, sizeof e.card_type);
        idb_col_copy(st, 7, e.detail, sizeof e.detail);
        idb_col_copy(st, 8, e.operator_name, sizeof e.operator_name);
        fn(ctx, &e);
    }
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the history");
    return IDB_OK;
}

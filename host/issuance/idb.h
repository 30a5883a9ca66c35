/* The issuance file: a SQLite database (docs/issuance.md has the schema). This module holds
 * every SQL statement of the issuance system; the rest works on the structs below.
 *
 * The schema is versioned (table schema_version) and brought up to date by migrations when
 * the file is opened. Every function that changes more than one row runs in one transaction;
 * callers that must tie several changes to a card's answer use idb_begin/idb_commit. The
 * history table is append-only (triggers refuse UPDATE and DELETE).
 *
 * Functions return IDB_OK (0) or a negative idb_err with a message in err. Messages name
 * records by identity and items by name, never the value of a secret item. */
#ifndef IDB_H
#define IDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cardface.h"
#include "cardtype.h"

#define IDB_SCHEMA_VERSION 1
#define IDB_IDENTITY_MAX 64u
#define IDB_SERIAL_LEN 8u
#define IDB_OPERATOR_MAX 64u

enum idb_err {
    IDB_OK = 0,
    IDB_E_DB = -1,        /* SQLite failed, or the file is not an issuance file */
    IDB_E_NOTFOUND = -2,  /* no such record, type, design, readout or correlation */
    IDB_E_CONFLICT = -3,  /* the row exists already, or is in a state the change forbids */
    IDB_E_INVALID = -4,   /* bad argument */
};

struct idb; /* an open issuance file */

struct idb_item {
    char name[CT_NAME_MAX + 1];
    char value[CT_ITEM_MAX + 1]; /* as imported (text), NUL-terminated */
};

struct idb_record {
    int64_t id;
    char identity[IDB_IDENTITY_MAX + 1];
    char card_type[CT_NAME_MAX + 1];
    char design[CT_NAME_MAX + 1];     /* "" when the type's default applies */
    bool issued;                      /* the issuance flag */
    unsigned issue_count;             /* original cards issued from this record */
    unsigned backup_count;            /* backup cards issued */
    bool has_serial;                  /* card_serial: the current original card */
    uint8_t card_serial[IDB_SERIAL_LEN];
    bool has_pending;                 /* a card being personalized (see issue.h) */
    uint8_t pending_serial[IDB_SERIAL_LEN];
    enum ct_role pending_role;
    struct idb_item items[CT_MAX_ITEMS];
    size_t nitems;
};

/* ---- file ------------------------------------------------------------------------------ */

/* Opens the issuance file at path. create: make it when missing (icissue init); otherwise a
 * missing file is an error. Applies pending migrations; a file of a newer schema, or a SQLite
 * file that is not an issuance file, is refused. */
int idb_open(const char *path, bool create, struct idb **out, char *err, size_t errlen);
void idb_close(struct idb *db);

/* The path the file was opened with. */
const char *idb_path(const struct idb *db);

/* The schema version of an open file. */
int idb_schema_version(struct idb *db);

/* Transactions: idb_begin takes the write lock at once (BEGIN IMMEDIATE) so that of two
 * processes working on one record, the second waits and then sees the first's result. */
int idb_begin(struct idb *db, char *err, size_t errlen);
int idb_commit(struct idb *db, char *err, size_t errlen);
void idb_rollback(struct idb *db);
bool idb_in_transaction(struct idb *db);

/* ---- card types ------------------------------------------------------------------------ */

/* Stores every design, readout and type of f in one transaction, replacing those of the same
 * name (a type's items, scripts and correlation rows are replaced as a whole). Checks the
 * cross references (a type's design and readouts exist, in f or in the file already); on any
 * error nothing is stored. */
int idb_types_store(struct idb *db, const struct ct_file *f, char *err, size_t errlen);

int idb_type_get(struct idb *db, const char *name, struct ct_type *out, char *err,
                 size_t errlen);
int idb_design_get(struct idb *db, const char *name, struct cardface_design *out, char *err,
                   size_t errlen);
int idb_identity_readout_get(struct idb *db, const char *name, struct ct_identity_readout *out,
                             char *err, size_t errlen);

/* All type readouts, by priority. */
int idb_type_readouts(struct idb *db, struct ct_type_readout *out, size_t cap, size_t *n,
                      char *err, size_t errlen);

/* The correlation table: which card type answered value to type_readout, and which identity
 * readout reads its cards. IDB_E_NOTFOUND when no row matches. */
int idb_correlate(struct idb *db, const char *type_readout, const uint8_t *value, size_t len,
                  char card_type[CT_NAME_MAX + 1], char identity_readout[CT_NAME_MAX + 1],
                  char *err, size_t errlen);

/* Calls fn for every type name (for `icissue list --types`). */
int idb_type_names(struct idb *db, void (*fn)(void *ctx, const char *name, const char *desc),
                   void *ctx, char *err, size_t errlen);

/* ---- records --------------------------------------------------------------------------- */

/* Inserts r (id ignored, set on return; flag unissued, counts 0). IDB_E_CONFLICT when the
 * identity exists. Not a transaction of its own: the CSV import wraps many in one. */
int idb_record_insert(struct idb *db, struct idb_record *r, char *err, size_t errlen);

int idb_record_by_identity(struct idb *db, const char *identity, struct idb_record *out,
                           char *err, size_t errlen);
int idb_record_by_id(struct idb *db, int64_t id, struct idb_record *out, char *err,
                     size_t errlen);

/* The record a card was issued for, by the card's serial: the record whose current card it is,
 * else the one whose history shows it issued as an original. IDB_E_NOTFOUND when none. */
int idb_record_by_serial(struct idb *db, const uint8_t serial[IDB_SERIAL_LEN],
                         struct idb_record *out, char *err, size_t errlen);

/* The value of a record's item, or NULL. */
const char *idb_record_item(const struct idb_record *r, const char *name);

/* Zeroes r (it holds secrets). */
void idb_record_wipe(struct idb_record *r);

/* State changes of one record (inside the caller's transaction). */
int idb_record_set_pending(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           enum ct_role role, char *err, size_t errlen);
int idb_record_clear_pending(struct idb *db, int64_t id, char *err, size_t errlen);
/* An original card was issued: flag issued, count + 1, the card's serial current, type and
 * design those of the new card, pending cleared. */
int idb_record_mark_issued(struct idb *db, int64_t id, const uint8_t serial[IDB_SERIAL_LEN],
                           const char *card_type, const char *design, char *err,
                           size_t errlen);
/* A backup card was issued: backup count + 1, pending cleared. */
int idb_record_mark_backup(struct idb *db, int64_t id, char *err, size_t errlen);
/* Reissue: flag unissued (count and current serial unchanged). */
int idb_record_mark_unissued(struct idb *db, int64_t id, char *err, size_t errlen);

/* Calls fn for each record in id order, from after_id, at most limit (0: all). Items are not
 * loaded (nitems 0). */
int idb_records_list(struct idb *db, int64_t after_id, size_t limit,
                     void (*fn)(void *ctx, const struct idb_record *r), void *ctx, char *err,
                     size_t errlen);

/* Counts records, and those issued. */
int idb_records_count(struct idb *db, uint64_t *total, uint64_t *issued, char *err,
                      size_t errlen);

/* ---- history --------------------------------------------------------------------------- */

struct idb_event {
    int64_t id;
    int64_t record_id;
    char at[32];                        /* UTC, ISO 8601 */
    char event[24];                     /* "issued", "spoiled", "reissue", "terminated", ... */
    bool has_serial;
    uint8_t card_serial[IDB_SERIAL_LEN];
    char role[12];                      /* "original", "backup" or "" */
    char card_type[CT_NAME_MAX + 1];
    char detail[512];                   /* step results, messages (never a secret) */
    char operator_name[IDB_OPERATOR_MAX + 1];
};

/* Appends an event (inside the caller's transaction, or its own when none is open). serial
 * and role may be NULL. */
int idb_history_add(struct idb *db, int64_t record_id, const char *event,
                    const uint8_t *serial, const char *role, const char *card_type,
                    const char *detail, const char *operator_name, char *err, size_t errlen);

/* True when the history of a record holds event for the card serial. */
bool idb_history_has(struct idb *db, int64_t record_id, const char *event,
                     const uint8_t serial[IDB_SERIAL_LEN]);

/* Calls fn for each event of a record (record_id 0: all), oldest first. */
int idb_history_list(struct idb *db, int64_t record_id,
                     void (*fn)(void *ctx, const struct idb_event *e), void *ctx, char *err,
                     size_t errlen);

#endif

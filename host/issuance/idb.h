/* The issuance file: a SQLite file or a PostgreSQL database (docs/issuance.md has the schema
 * and the URI forms). The rest of the issuance system works on the structs below; the SQL is
 * in idb_types.c, idb_records.c and idb_claim.c (written once for both back ends) and in the
 * back ends idb_sqlite.c and idb_pg.c (their schema and dialect).
 *
 * The schema is versioned (table schema_version) and brought up to date by migrations when
 * the file is opened. Every function that changes more than one row runs in one transaction;
 * callers that must tie several changes to a card's answer use idb_begin/idb_commit. The
 * history table is append-only (triggers refuse UPDATE and DELETE).
 *
 * One struct idb is one connection, for one thread at a time; any number of threads and
 * processes may each open their own on one file or database at once.
 *
 * Functions return IDB_OK (0) or a negative idb_err with a message in err. Messages name
 * records by identity and items by name, never the value of a secret item, nor the password
 * of a PostgreSQL URI. */
#ifndef IDB_H
#define IDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cardface.h"
#include "cardtype.h"

#define IDB_SCHEMA_VERSION 2
#define IDB_IDENTITY_MAX 64u
#define IDB_SERIAL_LEN 8u
#define IDB_OPERATOR_MAX 64u

enum idb_err {
    IDB_OK = 0,
    IDB_E_DB = -1,        /* the database failed or cannot be reached, or is not an issuance
                             file */
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

/* Opens the issuance file uri: a path or sqlite:PATH (a SQLite file), or
 * postgresql://... or postgres://... (a libpq connection URI: a PostgreSQL database, which
 * its administrator has created). create: make a missing SQLite file, and the schema of an
 * empty database (icissue init); otherwise a missing file or an empty database is
 * IDB_E_NOTFOUND. Applies pending migrations; a file of a newer schema, or a database that
 * holds other tables but is not an issuance file, is refused. A PostgreSQL server that
 * cannot be reached is IDB_E_DB, with libpq's reason. */
int idb_open(const char *uri, bool create, struct idb **out, char *err, size_t errlen);
void idb_close(struct idb *db);

/* The file of a SQLite URI (PATH for PATH and sqlite:PATH), or NULL for a PostgreSQL one. */
const char *idb_uri_file(const char *uri);

/* What messages call the file: its path, or the PostgreSQL URI without its password. */
const char *idb_path(const struct idb *db);

/* "SQLite" or "PostgreSQL". */
const char *idb_backend(const struct idb *db);

/* The schema version of an open file. */
int idb_schema_version(struct idb *db);

/* The schema version the file had when idb_open found it: 0 when that open made it. */
int idb_opened_version(const struct idb *db);

/* Transactions: idb_begin begins one in which a record read (idb_record_by_identity/by_id)
 * stays locked until the end, so that of two processes working on one record, the second
 * waits and then sees the first's result. On SQLite the transaction takes the write lock at
 * once (BEGIN IMMEDIATE); on PostgreSQL it runs at READ COMMITTED and locks the rows of the
 * records it reads (SELECT ... FOR UPDATE). After a failed statement inside a transaction,
 * roll back: PostgreSQL runs no more statements in it, and idb_commit then fails. */
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

/* A record and its items; IDB_E_NOTFOUND when there is none. Inside a transaction the
 * record's row stays locked until its end (see idb_begin). */
int idb_record_by_identity(struct idb *db, const char *identity, struct idb_record *out,
                           char *err, size_t errlen);
int idb_record_by_id(struct idb *db, int64_t id, struct idb_record *out, char *err,
                     size_t errlen);

/* The record a card was issued for, by the card's serial: the record whose current card it is,
 * else the one whose history shows it issued as an original or replaced at a reissue (a branch
 * file knows the old cards it replaced, not how they were issued). IDB_E_NOTFOUND when none. */
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

/* A branch's copy of a record the central system handed out (host/central/branch.c): inserted
 * when missing, else its card type, design, flag, counts, current card serial and items
 * replaced by r's; a pending card of a local issuance stays as it is. Its own transaction.
 * IDB_E_NOTFOUND when r's card type or design is not in this issuance file. */
int idb_record_sync(struct idb *db, const struct idb_record *r, char *err, size_t errlen);

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

/* ---- claims: the central issuance system ------------------------------------------------ */

/* A branch claims a record, personalizes a card from it and confirms (or aborts) the claim;
 * the central system answers through these functions (docs/issuance.md, "Claims").
 *
 * A claim holds a record for one branch until it is confirmed or aborted, or its lease
 * passes: while it is open no other claim, and no `icissue issue` or `reissue`, gets the
 * record. Leases are timed by the database's clock (PostgreSQL's now(), SQLite's clock on
 * the machine of the file), so all processes agree.
 *
 * Every request carries the branch's request id: 1 to IDB_REQUEST_ID_MAX characters of
 * [0-9A-Za-z_-]. A request id that branch used before is answered with the result of its
 * first use (return code, message, claim, token) and is never applied twice; one used for
 * another request (another operation, record, token or serial) is refused with
 * IDB_E_CONFLICT. Refusals (IDB_E_NOTFOUND, IDB_E_CONFLICT) are results too and are answered
 * again the same way; IDB_E_INVALID and IDB_E_DB are not stored (nothing changed: try again).
 *
 * Each call runs in a transaction of its own (IDB_E_INVALID when one is open) and is atomic
 * under any number of concurrent connections: on PostgreSQL it locks the record's row
 * (SELECT ... FOR UPDATE) and the request id (its row), on SQLite it takes the write lock
 * (BEGIN IMMEDIATE, waiting up to 10 s for another connection's). */

#define IDB_TOKEN_LEN 32u        /* hex digits of a claim token */
#define IDB_REQUEST_ID_MAX 64u
#define IDB_LEASE_MAX 86400u     /* the longest lease, in seconds */

struct idb_claim {
    char token[IDB_TOKEN_LEN + 1];           /* random, lower-case hex: the claim's name */
    char branch[IDB_OPERATOR_MAX + 1];       /* the branch that holds it */
    char identity[IDB_IDENTITY_MAX + 1];     /* the record's identity */
    int64_t record_id;
    unsigned issue_number;                   /* the issuance count the new card carries */
    int64_t expires_at;                      /* unix seconds, the database's clock */
    bool open;                               /* neither confirmed nor released */
};

/* Claims the record of identity for branch for lease_seconds (1 to IDB_LEASE_MAX).
 * IDB_E_NOTFOUND: no such record. IDB_E_CONFLICT: the record has an open claim whose lease
 * has not passed (the message names the branch holding it and until when), or a card
 * pending from a local `icissue issue`. An open claim whose lease has passed is released
 * first ("lease expired"). Then: the record's flag is set to unissued, the claim made with
 * a new token and issue number = issuance count + 1 (the count itself changes at confirm),
 * and "claimed" appended to the history (operator: the branch). out gets the claim, rec the
 * record with its items (for the personalization; the caller wipes it). A repeated request
 * gets the first claim again and rec as the record is now. */
int idb_claim(struct idb *db, const char *identity, const char *branch, const char *request_id,
              unsigned lease_seconds, struct idb_claim *out, struct idb_record *rec,
              char *err, size_t errlen);

/* Confirms the claim token of branch: the card with serial was personalized. The claim must
 * be open (its lease may have passed as long as it was not released). IDB_E_NOTFOUND: no
 * such token. IDB_E_CONFLICT: another branch's claim, or one confirmed, aborted or released
 * after its lease (the message says which). The record becomes issued, serial its current
 * card and issue_count the claim's issue number; the claim is closed; "issued" is appended
 * (serial, operator: the branch). out (may be NULL) gets the closed claim. The record keeps
 * its card type and design. */
int idb_confirm(struct idb *db, const char *token, const char *branch, const char *request_id,
                const uint8_t serial[IDB_SERIAL_LEN], struct idb_claim *out, char *err,
                size_t errlen);

/* idb_confirm for a card of card_type and design (each may be NULL: the record's; design ""
 * is the type's own): they become the record's when this file knows that card type (a
 * design it does not know: the type's own); else the record keeps its own and the "issued"
 * event names the card's. */
int idb_confirm_card(struct idb *db, const char *token, const char *branch,
                     const char *request_id, const uint8_t serial[IDB_SERIAL_LEN],
                     const char *card_type, const char *design, struct idb_claim *out,
                     char *err, size_t errlen);

/* Aborts the open claim token of branch (the card was not made): the claim is released, the
 * record's flag set back to what it was before the claim (an issued record's old card is
 * still its live card), and "claim aborted" appended with reason (may be NULL; at most 200
 * printable characters). Errors as idb_confirm. */
int idb_abort(struct idb *db, const char *token, const char *branch, const char *request_id,
              const char *reason, char *err, size_t errlen);

/* Releases every open claim whose lease has passed, as idb_abort does, with the event
 * "lease expired"; *released (may be NULL) gets their number. One transaction. */
int idb_claims_expire(struct idb *db, unsigned *released, char *err, size_t errlen);

/* The claim of token, open or not; IDB_E_NOTFOUND when there is none. */
int idb_claim_get(struct idb *db, const char *token, struct idb_claim *out, char *err,
                  size_t errlen);

/* The open claim of a record (its lease passed or not); IDB_E_NOTFOUND when it has none. */
int idb_record_claim(struct idb *db, int64_t record_id, struct idb_claim *out, char *err,
                     size_t errlen);

#endif

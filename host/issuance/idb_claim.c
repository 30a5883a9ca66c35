/* Claims of the central issuance system (idb.h, docs/issuance.md "Claims"): a branch claims a
 * record, confirms or aborts; leases expire. Each request runs in one transaction that first
 * locks its record (its row on PostgreSQL; on SQLite the transaction holds the write lock),
 * then takes the branch's request id (a row of claim_requests: a repeated request waits for
 * the first and then reads its result), so that of any number of concurrent requests on one
 * record each sees the one before it complete. On PostgreSQL the lock goes with the BEGIN and
 * the request id in one round trip, and the writes nobody waits for go with the COMMIT
 * (idb_defer): a claim is 6 round trips, a confirm 4. */
#include "idb_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

#define REASON_MAX 200u

/* ---- arguments ------------------------------------------------------------------------- */

/* 1 to max characters, each printable ASCII and not a space. */
static bool valid_word(const char *s, size_t max)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (s[n] <= ' ' || s[n] > '~' || n == max)
            return false;
    return n > 0;
}

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (n == IDB_REQUEST_ID_MAX ||
            !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= 'a' && s[n] <= 'z') || s[n] == '_' || s[n] == '-'))
            return false;
    return n > 0;
}

static bool valid_token(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (n == IDB_TOKEN_LEN || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == IDB_TOKEN_LEN;
}

static bool valid_reason(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (s[n] < ' ' || s[n] > '~' || n == REASON_MAX)
            return false;
    return true;
}

/* The checks every request makes: its branch and request id. */
static int check_request(struct idb *db, const char *branch, const char *request_id,
                         char *err, size_t errlen)
{
    if (!valid_word(branch, IDB_OPERATOR_MAX))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "branch: 1 to %u printable "
                        "characters without spaces", IDB_OPERATOR_MAX);
    if (!valid_request_id(request_id))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "request id: 1 to %u characters "
                        "of 0-9 A-Z a-z _ -", IDB_REQUEST_ID_MAX);
    if (idb_in_transaction(db))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "a claim request runs in a "
                        "transaction of its own: commit or roll back first");
    return IDB_OK;
}

static int check_token(const char *token, char *err, size_t errlen)
{
    if (!valid_token(token))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "a claim token is %u lower-case hex "
                        "digits", IDB_TOKEN_LEN);
    return IDB_OK;
}

/* "2030-01-31 12:00:00 UTC" */
static void utc_text(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)unix_s);
}

/* ---- requests and their results -------------------------------------------------------- */

struct request {
    const char *branch, *request_id, *op;
    char subject[IDB_TOKEN_LEN + 2 * IDB_SERIAL_LEN + IDB_IDENTITY_MAX + 4];
};

/* What a request answered: stored with the request id and answered again. */
struct result {
    int rc;
    char message[512];
    bool has_claim;
    struct idb_claim claim;
};

/* A refusal to store as the result; returns IDB_OK (the request is answered). */
static int refuse(struct result *res, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct result *res, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
    res->rc = rc;
    res->has_claim = false;
    return IDB_OK;
}

static const char SQL_REQUEST_TAKE[] =
    "INSERT INTO claim_requests (branch, request_id, op, subject, rc, message, at) "
    "VALUES (?1, ?2, ?3, ?4, 1, '', {now}) ON CONFLICT (branch, request_id) DO NOTHING";
static const char SQL_REQUEST_GET[] =
    "SELECT op, subject, rc, message, token, record_id, issue_number, expires_at, claim_open "
    "FROM claim_requests WHERE branch = ?1 AND request_id = ?2";
static const char SQL_REQUEST_ANSWER[] =
    "UPDATE claim_requests SET rc = ?3, message = ?4, token = ?5, record_id = ?6, "
    "issue_number = ?7, expires_at = ?8, claim_open = ?9 WHERE branch = ?1 AND request_id = ?2";

/* Takes the request id: *seen is false for a new one; for one seen before, res gets its
 * first result. IDB_E_CONFLICT when it was used for another request. */
static int request_take(struct idb *db, const struct request *rq, bool *seen,
                        struct result *res, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_REQUEST_TAKE, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, rq->branch);
    idb_bind_text(st, 2, rq->request_id);
    idb_bind_text(st, 3, rq->op);
    idb_bind_text(st, 4, rq->subject);
    enum idb_step s = idb_step(st);
    int64_t taken = s == IDB_STEP_DONE ? idb_changes(st) : 0;
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "taking request id %s", rq->request_id);
    *seen = taken == 0;
    if (!*seen)
        return IDB_OK;
    if ((st = idb_sql(db, SQL_REQUEST_GET, err, errlen)) == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, rq->branch);
    idb_bind_text(st, 2, rq->request_id);
    int rc = IDB_OK;
    if ((s = idb_step(st)) != IDB_STEP_ROW) {
        rc = idb_fail(db, IDB_E_DB, err, errlen, "reading request id %s", rq->request_id);
    } else if (strcmp(idb_col_text(st, 0), rq->op) != 0 ||
               strcmp(idb_col_text(st, 1), rq->subject) != 0) {
        rc = idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "request id %s of branch %s was used "
                      "for another request (a %s)", rq->request_id, rq->branch,
                      idb_col_text(st, 0));
    } else {
        res->rc = (int)idb_col_int(st, 2);
        idb_col_copy(st, 3, res->message, sizeof res->message);
        res->has_claim = !idb_col_null(st, 4);
        idb_col_copy(st, 4, res->claim.token, sizeof res->claim.token);
        snprintf(res->claim.branch, sizeof res->claim.branch, "%s", rq->branch);
        res->claim.record_id = idb_col_int(st, 5);
        res->claim.issue_number = (unsigned)idb_col_int(st, 6);
        res->claim.expires_at = idb_col_int(st, 7);
        res->claim.open = idb_col_int(st, 8) != 0;
    }
    idb_end(st);
    return rc;
}

static int request_answer(struct idb *db, const struct request *rq, const struct result *res,
                          char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_REQUEST_ANSWER, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, rq->branch);
    idb_bind_text(st, 2, rq->request_id);
    idb_bind_int(st, 3, res->rc);
    idb_bind_text(st, 4, res->message);
    if (res->has_claim) {
        idb_bind_text(st, 5, res->claim.token);
        idb_bind_int(st, 6, res->claim.record_id);
        idb_bind_int(st, 7, res->claim.issue_number);
        idb_bind_int(st, 8, res->claim.expires_at);
        idb_bind_int(st, 9, res->claim.open ? 1 : 0);
    }
    if (idb_defer(st) != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "storing the result of request id %s",
                        rq->request_id);
    return IDB_OK;
}

/* What a kind of request does inside its transaction. lock (deferred: idb_defer) locks the
 * record it works on, before its request id is taken. apply does the work of a new request:
 * IDB_OK with the answer in res (success or refusal), or IDB_E_DB (the transaction is rolled
 * back). */
struct request_kind {
    int (*lock)(struct idb *db, const void *arg, char *err, size_t errlen);
    int (*apply)(struct idb *db, const struct request *rq, const void *arg, struct result *res,
                 char *err, size_t errlen);
};

/* Runs a request in its transaction: the result of its first use when the request id was
 * seen before (*seen, may be NULL), else apply's, stored with it. Returns the result's code,
 * its message in err. */
static int run_request(struct idb *db, const struct request *rq, const struct request_kind *k,
                       const void *arg, struct result *res, bool *seen_out, char *err,
                       size_t errlen)
{
    memset(res, 0, sizeof *res);
    bool seen = false;
    int rc = idb_begin(db, err, errlen);
    if (rc == IDB_OK)
        rc = k->lock(db, arg, err, errlen);
    if (rc == IDB_OK)
        rc = request_take(db, rq, &seen, res, err, errlen);
    if (seen_out != NULL)
        *seen_out = seen;
    if (rc == IDB_OK && !seen) {
        rc = k->apply(db, rq, arg, res, err, errlen);
        if (rc == IDB_OK)
            rc = request_answer(db, rq, res, err, errlen);
    }
    if (rc == IDB_OK)
        rc = idb_commit(db, err, errlen);
    if (rc != IDB_OK) {
        idb_rollback(db);
        return rc;
    }
    snprintf(err, errlen, "%s", res->message);
    return res->rc;
}

/* ---- claims ---------------------------------------------------------------------------- */

struct claim_row {
    struct idb_claim c;
    bool was_issued;                   /* the record's flag before the claim */
    char state[12];                    /* open, confirmed, aborted, expired */
    char card_type[CT_NAME_MAX + 1];   /* the record's */
    int64_t now;                       /* the database's clock when it was read */
};

#define CLAIM_COLUMNS                                                                      \
    "SELECT c.token, c.branch, r.identity, c.record_id, c.issue_number, c.expires_at, "    \
    "c.state, c.was_issued, r.card_type, {epoch} FROM claims c JOIN records r "            \
    "ON r.id = c.record_id "

static const char SQL_CLAIM_BY_TOKEN[] = CLAIM_COLUMNS "WHERE c.token = ?1";
static const char SQL_CLAIM_OF_RECORD[] =
    CLAIM_COLUMNS "WHERE c.record_id = ?1 AND c.state = 'open'";

/* The record a request works on, locked until the transaction ends (idb_defer: its row is
 * not read here; the statements after it read the record afresh). */
static const char SQL_LOCK_BY_IDENTITY[] = "SELECT id FROM records WHERE identity = ?1{lock}";
static const char SQL_LOCK_BY_TOKEN[] =
    "SELECT id FROM records WHERE id = (SELECT record_id FROM claims WHERE token = ?1){lock}";

static int lock_record(struct idb *db, const char *sql, const char *key, char *err,
                       size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, sql, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, key);
    if (idb_defer(st) != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "locking a record");
    return IDB_OK;
}

/* Reads the claim that sql selects by key (a token, or a record id when token is NULL). */
static int claim_read(struct idb *db, const char *sql, const char *token, int64_t record_id,
                      struct claim_row *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct idb_stmt *st = idb_sql(db, sql, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    if (token != NULL)
        idb_bind_text(st, 1, token);
    else
        idb_bind_int(st, 1, record_id);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW) {
        idb_col_copy(st, 0, out->c.token, sizeof out->c.token);
        idb_col_copy(st, 1, out->c.branch, sizeof out->c.branch);
        idb_col_copy(st, 2, out->c.identity, sizeof out->c.identity);
        out->c.record_id = idb_col_int(st, 3);
        out->c.issue_number = (unsigned)idb_col_int(st, 4);
        out->c.expires_at = idb_col_int(st, 5);
        idb_col_copy(st, 6, out->state, sizeof out->state);
        out->c.open = strcmp(out->state, "open") == 0;
        out->was_issued = idb_col_int(st, 7) != 0;
        idb_col_copy(st, 8, out->card_type, sizeof out->card_type);
        out->now = idb_col_int(st, 9);
    }
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "no such claim");
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading a claim");
    return IDB_OK;
}

int idb_claim_get(struct idb *db, const char *token, struct idb_claim *out, char *err,
                  size_t errlen)
{
    struct claim_row row;
    int rc = check_token(token, err, errlen);
    if (rc == IDB_OK)
        rc = claim_read(db, SQL_CLAIM_BY_TOKEN, token, 0, &row, err, errlen);
    *out = row.c;
    return rc;
}

int idb_record_claim(struct idb *db, int64_t record_id, struct idb_claim *out, char *err,
                     size_t errlen)
{
    struct claim_row row;
    int rc = claim_read(db, SQL_CLAIM_OF_RECORD, NULL, record_id, &row, err, errlen);
    *out = row.c;
    return rc;
}

static const char SQL_CLAIM_CLOSE[] =
    "UPDATE claims SET state = ?2, closed_at = {epoch}, card_serial = ?3 "
    "WHERE token = ?1 AND state = 'open'";
static const char SQL_RECORD_FLAG[] =
    "UPDATE records SET issued = ?2, updated = {now} WHERE id = ?1";

/* Closes an open claim as state (with the card's serial, or NULL). */
static int claim_close(struct idb *db, const struct claim_row *row, const char *state,
                       const uint8_t *serial, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_CLAIM_CLOSE, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, row->c.token);
    idb_bind_text(st, 2, state);
    if (serial != NULL)
        idb_bind_blob(st, 3, serial, IDB_SERIAL_LEN);
    enum idb_step s = idb_step(st);
    int64_t changed = s == IDB_STEP_DONE ? idb_changes(st) : 0;
    idb_end(st);
    if (s != IDB_STEP_DONE || changed != 1)
        return idb_fail(db, IDB_E_DB, err, errlen, "closing the claim of branch %s on %s",
                        row->c.branch, row->c.identity);
    return IDB_OK;
}

/* Sets the issued flag of a record (locked). */
static int record_flag(struct idb *db, int64_t record_id, const char *identity, bool issued,
                       char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_RECORD_FLAG, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, record_id);
    idb_bind_int(st, 2, issued ? 1 : 0);
    if (idb_defer(st) != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "setting the flag of %s", identity);
    return IDB_OK;
}

/* Releases an open claim (its record locked): closed as state, the record's flag back to
 * what it was before the claim, event appended with detail. */
static int claim_release(struct idb *db, const struct claim_row *row, const char *state,
                         const char *event, const char *detail, char *err, size_t errlen)
{
    int rc = claim_close(db, row, state, NULL, err, errlen);
    if (rc == IDB_OK)
        rc = record_flag(db, row->c.record_id, row->c.identity, row->was_issued, err, errlen);
    if (rc != IDB_OK)
        return rc;
    char text[REASON_MAX + 128];
    snprintf(text, sizeof text, "claim of branch %s for issue %u: %s", row->c.branch,
             row->c.issue_number, detail);
    return idb_history_add(db, row->c.record_id, event, NULL, "original", row->card_type, text,
                           row->c.branch, err, errlen);
}

/* Releases row's claim when its lease has passed (by the database's clock when the claim
 * was read): *released says whether it did. */
static int release_if_expired(struct idb *db, const struct claim_row *row, bool *released,
                              char *err, size_t errlen)
{
    char until[32];
    *released = false;
    if (!row->c.open || row->c.expires_at > row->now)
        return IDB_OK;
    *released = true;
    utc_text(row->c.expires_at, until);
    char detail[64];
    snprintf(detail, sizeof detail, "lease passed at %s", until);
    return claim_release(db, row, "expired", "lease expired", detail, err, errlen);
}

struct claim_arg {
    const char *identity;
    unsigned lease;
    struct idb_record *rec; /* the record as the claim leaves it */
};

static int lock_claim(struct idb *db, const void *arg, char *err, size_t errlen)
{
    return lock_record(db, SQL_LOCK_BY_IDENTITY, ((const struct claim_arg *)arg)->identity, err,
                       errlen);
}

static const char SQL_CLAIM_INSERT[] =
    "INSERT INTO claims (token, record_id, branch, issue_number, was_issued, state, "
    "claimed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'open', {epoch}, {epoch} + ?6) "
    "RETURNING expires_at";

static int new_token(char out[IDB_TOKEN_LEN + 1], char *err, size_t errlen)
{
    uint8_t rnd[IDB_TOKEN_LEN / 2];
    if (rng_getrandom(NULL, rnd, sizeof rnd) != 0)
        return idb_fail(NULL, IDB_E_DB, err, errlen, "no random numbers for a claim token");
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    return IDB_OK;
}

/* Makes the claim of rec (locked, no open claim, no pending card) for the request. */
static int claim_make(struct idb *db, const struct request *rq, const struct idb_record *rec,
                      unsigned lease, struct result *res, char *err, size_t errlen)
{
    struct idb_claim *c = &res->claim;
    *c = (struct idb_claim){ .record_id = rec->id, .issue_number = rec->issue_count + 1,
                             .open = true };
    snprintf(c->branch, sizeof c->branch, "%s", rq->branch);
    snprintf(c->identity, sizeof c->identity, "%s", rec->identity);
    if (new_token(c->token, err, errlen) != IDB_OK)
        return IDB_E_DB;
    struct idb_stmt *st = idb_sql(db, SQL_CLAIM_INSERT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, c->token);
    idb_bind_int(st, 2, rec->id);
    idb_bind_text(st, 3, rq->branch);
    idb_bind_int(st, 4, c->issue_number);
    idb_bind_int(st, 5, rec->issued ? 1 : 0);
    idb_bind_int(st, 6, lease);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW)
        c->expires_at = idb_col_int(st, 0);
    idb_end(st);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "claiming %s", rec->identity);
    int rc = record_flag(db, rec->id, rec->identity, false, err, errlen);
    char until[32], detail[160];
    utc_text(c->expires_at, until);
    snprintf(detail, sizeof detail, "issue %u for branch %s until %s (request %s)",
             c->issue_number, rq->branch, until, rq->request_id);
    if (rc == IDB_OK)
        rc = idb_history_add(db, rec->id, "claimed", NULL, "original", rec->card_type, detail,
                             rq->branch, err, errlen);
    res->has_claim = rc == IDB_OK;
    return rc;
}

static int apply_claim(struct idb *db, const struct request *rq, const void *arg,
                       struct result *res, char *err, size_t errlen)
{
    const struct claim_arg *a = arg;
    struct idb_record *rec = a->rec;
    struct claim_row row;
    bool live = false; /* an open claim whose lease has not passed */
    int rc = idb_record_by_identity(db, a->identity, rec, err, errlen);
    if (rc == IDB_E_NOTFOUND)
        return refuse(res, IDB_E_NOTFOUND, "no record %s in the issuance file", a->identity);
    if (rc == IDB_OK) {
        rc = claim_read(db, SQL_CLAIM_OF_RECORD, NULL, rec->id, &row, err, errlen);
        if (rc == IDB_OK) {
            bool released = false;
            rc = release_if_expired(db, &row, &released, err, errlen);
            live = !released;
            if (released) /* the flag is back to what it was before that claim */
                rec->issued = row.was_issued;
        } else if (rc == IDB_E_NOTFOUND) {
            rc = IDB_OK;
        }
    }
    if (rc != IDB_OK)
        return rc;
    if (live) {
        char until[32];
        utc_text(row.c.expires_at, until);
        return refuse(res, IDB_E_CONFLICT, "record %s is claimed by branch %s until %s",
                      a->identity, row.c.branch, until);
    }
    if (rec->has_pending)
        return refuse(res, IDB_E_CONFLICT, "record %s has a card being personalized here "
                      "(pending): finish it with icissue first", a->identity);
    rc = claim_make(db, rq, rec, a->lease, res, err, errlen);
    if (rc == IDB_OK)
        rec->issued = false;
    return rc;
}

/* Fills out with the identity of claim's record; rec (may be NULL) with the record: for the
 * answer of a request seen before. */
static int claim_record(struct idb *db, struct idb_claim *c, struct idb_record *rec,
                        char *err, size_t errlen)
{
    struct idb_record *r = rec != NULL ? rec : malloc(sizeof *r);
    if (r == NULL)
        return idb_fail(NULL, IDB_E_DB, err, errlen, "out of memory");
    int rc = idb_record_by_id(db, c->record_id, r, err, errlen);
    if (rc == IDB_OK)
        snprintf(c->identity, sizeof c->identity, "%s", r->identity);
    if (r != rec) {
        idb_record_wipe(r);
        free(r);
    }
    return rc;
}

/* Runs a request that answers with a claim: out gets it with its record's identity. rec (may
 * be NULL) gets the record as it is now: a new request's apply has filled it (fresh is
 * true); for one seen before it is read again. */
static int run_claim_request(struct idb *db, const struct request *rq,
                             const struct request_kind *k, const void *arg, bool fresh,
                             struct idb_claim *out, struct idb_record *rec, char *err,
                             size_t errlen)
{
    struct result res;
    bool seen = false;
    int rc = run_request(db, rq, k, arg, &res, &seen, err, errlen);
    if (rc != IDB_OK)
        return rc;
    *out = res.claim;
    if (seen || !fresh)
        rc = claim_record(db, out, seen ? rec : NULL, err, errlen);
    if (rc == IDB_OK)
        err[0] = '\0';
    return rc;
}

int idb_claim(struct idb *db, const char *identity, const char *branch, const char *request_id,
              unsigned lease_seconds, struct idb_claim *out, struct idb_record *rec,
              char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (rec != NULL)
        idb_record_wipe(rec);
    int rc = check_request(db, branch, request_id, err, errlen);
    if (rc != IDB_OK)
        return rc;
    if (!valid_word(identity, IDB_IDENTITY_MAX))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "identity: 1 to %u printable "
                        "characters without spaces", IDB_IDENTITY_MAX);
    if (lease_seconds == 0 || lease_seconds > IDB_LEASE_MAX)
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "a lease of %u s: it must be 1 to "
                        "%u s", lease_seconds, IDB_LEASE_MAX);
    struct idb_record *r = rec != NULL ? rec : malloc(sizeof *r);
    if (r == NULL)
        return idb_fail(NULL, IDB_E_DB, err, errlen, "out of memory");
    struct request rq = { .branch = branch, .request_id = request_id, .op = "claim" };
    snprintf(rq.subject, sizeof rq.subject, "%s", identity);
    static const struct request_kind kind = { lock_claim, apply_claim };
    struct claim_arg a = { identity, lease_seconds, r };
    rc = run_claim_request(db, &rq, &kind, &a, true, out, rec, err, errlen);
    if (r != rec) {
        idb_record_wipe(r);
        free(r);
    } else if (rc != IDB_OK) {
        idb_record_wipe(rec);
    }
    return rc;
}

/* ---- confirm and abort ----------------------------------------------------------------- */

/* The open claim token of branch (its record locked by lock_close): IDB_OK to go on; IDB_OK
 * with res->rc set (a refusal) when it is not one; IDB_E_DB. */
static int claim_of_branch(struct idb *db, const char *token, const char *branch,
                           struct claim_row *row, struct result *res, char *err, size_t errlen)
{
    res->rc = IDB_OK;
    int rc = claim_read(db, SQL_CLAIM_BY_TOKEN, token, 0, row, err, errlen);
    if (rc == IDB_E_NOTFOUND)
        return refuse(res, IDB_E_NOTFOUND, "no claim with that token");
    if (rc != IDB_OK)
        return rc;
    if (strcmp(row->c.branch, branch) != 0)
        return refuse(res, IDB_E_CONFLICT, "the claim on %s is held by branch %s, not %s",
                      row->c.identity, row->c.branch, branch);
    if (strcmp(row->state, "confirmed") == 0)
        return refuse(res, IDB_E_CONFLICT, "the claim on %s was confirmed already",
                      row->c.identity);
    if (strcmp(row->state, "aborted") == 0)
        return refuse(res, IDB_E_CONFLICT, "the claim on %s was aborted", row->c.identity);
    if (strcmp(row->state, "open") != 0)
        return refuse(res, IDB_E_CONFLICT, "the lease of the claim on %s expired and it was "
                      "released", row->c.identity);
    return IDB_OK;
}

/* The new card's type (?4, NULL: the record's) and design (?5; NULL or unknown: the type's
 * own) become the record's when this file knows that card type; else the record keeps its
 * own, and the history says what the card is. */
static const char SQL_RECORD_CONFIRM[] =
    "UPDATE records SET issued = 1, issue_count = ?2, card_serial = ?3, "
    "design = CASE WHEN EXISTS (SELECT 1 FROM card_types WHERE name = ?4) "
    "  THEN (SELECT name FROM designs WHERE name = ?5) ELSE design END, "
    "card_type = COALESCE((SELECT name FROM card_types WHERE name = ?4), card_type), "
    "pending_serial = NULL, pending_role = NULL, updated = {now} WHERE id = ?1";

/* A confirm request's argument. */
struct close_arg {
    const char *token;
    const uint8_t *serial;  /* confirm: the new card */
    const char *card_type;  /*   its type and design (may be NULL: the record's) */
    const char *design;
    const char *reason;     /* abort: why (may be NULL) */
};

/* The card of a's serial was made on row's claim: claim closed, record issued. */
static int confirm_record(struct idb *db, const struct request *rq, const struct claim_row *row,
                          const struct close_arg *a, char *err, size_t errlen)
{
    const uint8_t *serial = a->serial;
    int rc = claim_close(db, row, "confirmed", serial, err, errlen);
    struct idb_stmt *st = rc == IDB_OK ? idb_sql(db, SQL_RECORD_CONFIRM, err, errlen) : NULL;
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_int(st, 1, row->c.record_id);
    idb_bind_int(st, 2, row->c.issue_number);
    idb_bind_blob(st, 3, serial, IDB_SERIAL_LEN);
    idb_bind_text(st, 4, a->card_type);
    idb_bind_text(st, 5, a->design);
    if (idb_defer(st) != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "marking %s issued", row->c.identity);
    const char *type = a->card_type != NULL ? a->card_type : row->card_type;
    char detail[200];
    snprintf(detail, sizeof detail, "issue %u, claimed by branch %s (request %s)%s%s",
             row->c.issue_number, rq->branch, rq->request_id,
             a->design != NULL && a->design[0] != '\0' ? ", design " : "",
             a->design != NULL ? a->design : "");
    return idb_history_add(db, row->c.record_id, "issued", serial, "original", type, detail,
                           rq->branch, err, errlen);
}

/* The claim changes only under its record's lock: taken before it is read. */
static int lock_close(struct idb *db, const void *arg, char *err, size_t errlen)
{
    return lock_record(db, SQL_LOCK_BY_TOKEN, ((const struct close_arg *)arg)->token, err,
                       errlen);
}

static int apply_close(struct idb *db, const struct request *rq, const void *arg,
                       struct result *res, char *err, size_t errlen)
{
    const struct close_arg *a = arg;
    struct claim_row row;
    int rc = claim_of_branch(db, a->token, rq->branch, &row, res, err, errlen);
    if (rc != IDB_OK || res->rc != IDB_OK)
        return rc;
    if (a->serial != NULL) {
        res->claim = row.c;
        res->claim.open = false;
        res->has_claim = true;
        return confirm_record(db, rq, &row, a, err, errlen);
    }
    char detail[REASON_MAX + 64];
    snprintf(detail, sizeof detail, "aborted (request %s)%s%s", rq->request_id,
             a->reason != NULL && a->reason[0] != '\0' ? ": " : "",
             a->reason != NULL ? a->reason : "");
    return claim_release(db, &row, "aborted", "claim aborted", detail, err, errlen);
}

static const struct request_kind close_kind = { lock_close, apply_close };

int idb_confirm(struct idb *db, const char *token, const char *branch, const char *request_id,
                const uint8_t serial[IDB_SERIAL_LEN], struct idb_claim *out, char *err,
                size_t errlen)
{
    return idb_confirm_card(db, token, branch, request_id, serial, NULL, NULL, out, err,
                            errlen);
}

int idb_confirm_card(struct idb *db, const char *token, const char *branch,
                     const char *request_id, const uint8_t serial[IDB_SERIAL_LEN],
                     const char *card_type, const char *design, struct idb_claim *out,
                     char *err, size_t errlen)
{
    struct idb_claim dummy;
    if (out == NULL)
        out = &dummy;
    memset(out, 0, sizeof *out);
    int rc = check_request(db, branch, request_id, err, errlen);
    if (rc == IDB_OK)
        rc = check_token(token, err, errlen);
    if (rc == IDB_OK && serial == NULL)
        rc = idb_fail(NULL, IDB_E_INVALID, err, errlen, "no card serial");
    if (rc == IDB_OK && card_type != NULL && !valid_word(card_type, CT_NAME_MAX))
        rc = idb_fail(NULL, IDB_E_INVALID, err, errlen, "card type: 1 to %u printable "
                      "characters without spaces", CT_NAME_MAX);
    if (rc == IDB_OK && design != NULL && design[0] != '\0' && !valid_word(design, CT_NAME_MAX))
        rc = idb_fail(NULL, IDB_E_INVALID, err, errlen, "design: up to %u printable "
                      "characters without spaces", CT_NAME_MAX);
    if (rc != IDB_OK)
        return rc;
    struct request rq = { .branch = branch, .request_id = request_id, .op = "confirm" };
    size_t n = (size_t)snprintf(rq.subject, sizeof rq.subject, "%s:", token);
    for (size_t i = 0; i < IDB_SERIAL_LEN; i++)
        n += (size_t)snprintf(rq.subject + n, sizeof rq.subject - n, "%02X", serial[i]);
    struct close_arg a = { .token = token, .serial = serial, .card_type = card_type,
                           .design = design };
    return run_claim_request(db, &rq, &close_kind, &a, true, out, NULL, err, errlen);
}

int idb_abort(struct idb *db, const char *token, const char *branch, const char *request_id,
              const char *reason, char *err, size_t errlen)
{
    int rc = check_request(db, branch, request_id, err, errlen);
    if (rc == IDB_OK)
        rc = check_token(token, err, errlen);
    if (rc == IDB_OK && !valid_reason(reason))
        rc = idb_fail(NULL, IDB_E_INVALID, err, errlen, "reason: at most %u printable "
                      "characters", REASON_MAX);
    if (rc != IDB_OK)
        return rc;
    struct request rq = { .branch = branch, .request_id = request_id, .op = "abort" };
    snprintf(rq.subject, sizeof rq.subject, "%s", token);
    struct close_arg a = { .token = token, .reason = reason };
    struct result res;
    return run_request(db, &rq, &close_kind, &a, &res, NULL, err, errlen);
}

/* ---- expiry ---------------------------------------------------------------------------- */

static const char SQL_CLAIMS_EXPIRED[] =
    "SELECT token FROM claims WHERE state = 'open' AND expires_at <= {epoch} "
    "ORDER BY record_id";

/* The tokens of the open claims whose lease has passed, in record order (the order in which
 * their records are locked). */
static int expired_tokens(struct idb *db, char (**out)[IDB_TOKEN_LEN + 1], size_t *n,
                          char *err, size_t errlen)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    struct idb_stmt *st = idb_sql(db, SQL_CLAIMS_EXPIRED, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    enum idb_step s;
    int rc = IDB_OK;
    while (rc == IDB_OK && (s = idb_step(st)) == IDB_STEP_ROW) {
        if (*n == cap) {
            cap = cap == 0 ? 16 : 2 * cap;
            char(*more)[IDB_TOKEN_LEN + 1] = realloc(*out, cap * sizeof **out);
            if (more == NULL) {
                rc = idb_fail(NULL, IDB_E_DB, err, errlen, "out of memory");
                break;
            }
            *out = more;
        }
        idb_col_copy(st, 0, (*out)[(*n)++], IDB_TOKEN_LEN + 1);
    }
    idb_end(st);
    if (rc == IDB_OK && s != IDB_STEP_DONE)
        rc = idb_fail(db, IDB_E_DB, err, errlen, "listing the expired claims");
    return rc;
}

int idb_claims_expire(struct idb *db, unsigned *released, char *err, size_t errlen)
{
    unsigned count = 0;
    if (released != NULL)
        *released = 0;
    if (idb_in_transaction(db))
        return idb_fail(NULL, IDB_E_INVALID, err, errlen, "expiry runs in a transaction of "
                        "its own: commit or roll back first");
    char(*tokens)[IDB_TOKEN_LEN + 1] = NULL;
    size_t n = 0;
    int rc = idb_begin(db, err, errlen);
    if (rc == IDB_OK)
        rc = expired_tokens(db, &tokens, &n, err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < n; i++) {
        struct claim_row row;
        bool done = false;
        rc = lock_record(db, SQL_LOCK_BY_TOKEN, tokens[i], err, errlen);
        if (rc == IDB_OK) /* read under the record's lock */
            rc = claim_read(db, SQL_CLAIM_BY_TOKEN, tokens[i], 0, &row, err, errlen);
        if (rc == IDB_OK)
            rc = release_if_expired(db, &row, &done, err, errlen);
        count += done ? 1 : 0;
    }
    if (rc == IDB_OK)
        rc = idb_commit(db, err, errlen);
    if (rc != IDB_OK) {
        idb_rollback(db);
        count = 0;
    }
    free(tokens);
    if (released != NULL)
        *released = count;
    return rc;
}

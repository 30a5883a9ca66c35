#include "reissue.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "atomicfile.h"
#include "hex.h"
#include "ins.h"
#include "sw.h"

/* The reissuing file: the record as extracted before its flag is reset (docs/issuance.md).
 * It holds the record's secret items, so it is written with mode 0600. */
static int write_reissue_file(const char *path, const struct idb_record *r,
                              const uint8_t *old_serial, char *err, size_t errlen)
{
    char at[32], serial[2 * IDB_SERIAL_LEN + 1] = "";
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (old_serial != NULL)
        hex_encode(old_serial, IDB_SERIAL_LEN, 0, serial, sizeof serial);
    json_t *items = json_object();
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:s?}", "format",
                            "icissue-reissue/1", "extracted", at, "record_id",
                            (json_int_t)r->id, "identity", r->identity, "card_type",
                            r->card_type, "design", r->design, "issue_count",
                            (json_int_t)r->issue_count, "backup_count",
                            (json_int_t)r->backup_count, "reason",
                            old_serial != NULL ? "card returned" : "card lost", "old_card",
                            old_serial != NULL ? serial : NULL);
    int rc = -1;
    if (items == NULL || doc == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->nitems; i++)
        json_object_set_new(items, r->items[i].name, json_string(r->items[i].value));
    json_object_set(doc, "items", items);
    struct atomic_file af;
    if (atomic_file_open(&af, path, 0600, err, errlen) != 0)
        goto out;
    if (json_dumpf(doc, af.f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fputc('\n', af.f) < 0) {
        atomic_file_abort(&af);
        snprintf(err, errlen, "%s: cannot write the reissuing file", path);
        goto out;
    }
    rc = atomic_file_commit(&af, err, errlen);
out:
    json_decref(items);
    json_decref(doc);
    return rc;
}

/* Terminates the old card: TERMINATE CARD USAGE after VERIFY of the issuer's admin PIN.
 * Returns false when the card was terminated before (nothing to record). */
static bool terminate_old(const struct reissue_params *p, struct reissue_result *res)
{
    struct cardop *c = p->old_card;
    uint8_t lcs = 0;
    if (cardop_life_cycle(c, &lcs) == 0 && lcs == LCS_TERMINATED) {
        res->old_terminated = true;
        return false;
    }
    const struct secrets *s = p->issue.issuer;
    if (s == NULL || s->admin.len == 0) {
        snprintf(res->old_note, sizeof res->old_note, "no issuer admin PIN given (--secrets) "
                 "to terminate it");
        return true;
    }
    if (cardop_verify(c, PIN_REF_ADMIN, s->admin.v, s->admin.len) != 0 ||
        cardop_terminate(c) != 0) {
        snprintf(res->old_note, sizeof res->old_note, "%s", c->err);
        return true;
    }
    res->old_terminated = true;
    return true;
}

/* Terminates the old card and records what happened in the history. */
static void end_old_card(const struct reissue_params *p, const struct idb_record *r,
                         const uint8_t *serial, struct reissue_result *res)
{
    char e2[256];
    /* Terminated before: by an earlier run, which may have been killed before it said so. */
    if (!terminate_old(p, res) &&
        (serial == NULL || idb_history_has(p->issue.db, r->id, "terminated", serial)))
        return;
    idb_history_add(p->issue.db, r->id, res->old_terminated ? "terminated" : "not-terminated",
                    serial, "original", NULL,
                    res->old_terminated ? "old card terminated at reissue" : res->old_note,
                    p->issue.operator_name, e2, sizeof e2);
}

/* The record's current card is a card this reissue would make: report it, change nothing. */
static void already_current(const struct idb_record *rec, struct reissue_result *res)
{
    res->already_done = true;
    memcpy(res->issued.serial, rec->card_serial, IDB_SERIAL_LEN);
    res->issued.issue_count = rec->issue_count;
    snprintf(res->issued.card_type, sizeof res->issued.card_type, "%s", rec->card_type);
}

/* The reissuing file: the one given, else reissue-IDENTITY.json next to the issuance file. */
static int reissue_file_path(const char *given, struct idb *db, const char *identity,
                             char *out, size_t cap, char *err, size_t errlen)
{
    if (given != NULL) {
        if ((size_t)snprintf(out, cap, "%s", given) < cap)
            return 0;
        snprintf(err, errlen, "the reissuing file's path is too long");
        return -1;
    }
    char safe[IDB_IDENTITY_MAX + 1];
    issue_file_name(identity, safe, sizeof safe);
    /* A PostgreSQL database has no directory: the current one then. */
    const char *dbfile = idb_uri_file(idb_path(db));
    const char *slash = dbfile != NULL ? strrchr(dbfile, '/') : NULL;
    int dirlen = slash != NULL ? (int)(slash - dbfile) + 1 : 0;
    if ((size_t)snprintf(out, cap, "%.*sreissue-%s.json", dirlen, dirlen > 0 ? dbfile : "",
                         safe) < cap)
        return 0;
    snprintf(err, errlen, "the reissuing file's path is too long");
    return -1;
}

int reissue_identify(const struct reissue_params *p, struct reissue_result *res, char *err,
                     size_t errlen)
{
    memset(res, 0, sizeof *res);
    struct idb *db = p->issue.db;
    const uint8_t *old_serial = res->old_serial;
    struct idb_record rec;
    if (p->old_card != NULL) {
        uint8_t lcs = 0;
        res->have_old_serial = cardop_serial(p->old_card, res->old_serial) == 0;
        res->old_was_terminated = res->have_old_serial &&
                                  cardop_life_cycle(p->old_card, &lcs) == 0 &&
                                  lcs == LCS_TERMINATED;
        if (res->old_was_terminated) {
            /* A terminated card answers only SELECT and GET DATA: find it by its serial. */
            if (idb_record_by_serial(db, old_serial, &rec, err, errlen) != IDB_OK) {
                snprintf(err, errlen, "the old card is terminated and was not issued from "
                         "this issuance file: give --id IDENTITY");
                return -1;
            }
            snprintf(res->identity, sizeof res->identity, "%s", rec.identity);
            idb_record_wipe(&rec);
        } else if (issue_read_identity(db, p->old_card, res->identity, sizeof res->identity,
                                       NULL, err, errlen) != 0) {
            return -1;
        }
        if (p->issue.identity != NULL && strcmp(p->issue.identity, res->identity) != 0) {
            snprintf(err, errlen, "the old card holds identity %s, not %s", res->identity,
                     p->issue.identity);
            return -1;
        }
    } else if (p->issue.identity != NULL) {
        snprintf(res->identity, sizeof res->identity, "%s", p->issue.identity);
    } else {
        snprintf(err, errlen, "no old card and no identity: give one of them");
        return -1;
    }
    return 0;
}

void reissue_end_old_card(const struct reissue_params *p, struct reissue_result *res)
{
    struct idb_record rec;
    char e2[256];
    if (idb_record_by_identity(p->issue.db, res->identity, &rec, e2, sizeof e2) != IDB_OK) {
        snprintf(res->old_note, sizeof res->old_note, "%s", e2);
        return;
    }
    end_old_card(p, &rec, res->have_old_serial ? res->old_serial : NULL, res);
    idb_record_wipe(&rec);
}

int reissue_card(const struct reissue_params *p, struct cardop *new_card,
                 struct reissue_result *res, char *err, size_t errlen)
{
    if (reissue_identify(p, res, err, errlen) != 0)
        return -1;
    return reissue_identified(p, new_card, res, err, errlen);
}

int reissue_identified(const struct reissue_params *p, struct cardop *new_card,
                       struct reissue_result *res, char *err, size_t errlen)
{
    struct idb *db = p->issue.db;
    const uint8_t *old_serial = res->old_serial;
    struct idb_record rec;
    memset(&rec, 0, sizeof rec);
    if (idb_record_by_identity(db, res->identity, &rec, err, errlen) != IDB_OK) {
        if (p->old_card != NULL)
            snprintf(err + strlen(err), errlen - strlen(err), " (identity read from the card)");
        return -1;
    }
    int rc = -1;
    uint8_t new_serial[IDB_SERIAL_LEN];
    if (cardop_serial(new_card, new_serial) != 0) {
        snprintf(err, errlen, "%s", new_card->err);
        goto out;
    }
    if (res->have_old_serial && memcmp(old_serial, new_serial, IDB_SERIAL_LEN) == 0) {
        snprintf(err, errlen, "the old and the new card are the same card");
        goto out;
    }
    /* A rerun after the new card was recorded: the new card is the current one already. */
    if (rec.issued && rec.has_serial &&
        memcmp(rec.card_serial, new_serial, IDB_SERIAL_LEN) == 0) {
        already_current(&rec, res);
        if (p->old_card != NULL && res->have_old_serial && !p->keep_old_card)
            end_old_card(p, &rec, old_serial, res);
        rc = 0;
        goto out;
    }
    /* An old card that is no longer the record's current card was replaced already (by an
     * earlier run that was interrupted before it terminated the card, or by an earlier
     * reissue): only terminate it. */
    if (res->have_old_serial && rec.has_serial &&
        memcmp(rec.card_serial, old_serial, IDB_SERIAL_LEN) != 0 && rec.issued) {
        already_current(&rec, res);
        if (!p->keep_old_card)
            end_old_card(p, &rec, old_serial, res);
        rc = 0;
        goto out;
    }
    if (rec.issue_count == 0) {
        snprintf(err, errlen, "record %s was never issued: use 'icissue issue'", rec.identity);
        goto out;
    }
    struct issue_params ip = p->issue;
    ip.identity = rec.identity;
    ip.role = CT_ORIGINAL;
    ip.reissue = true;
    if (rec.issued) {
        /* Everything that could refuse the new card is checked before the flag is reset, so a
         * refused reissue leaves the old card the record's valid one. */
        if (issue_check(&ip, new_card, err, errlen) != 0)
            goto out;
        if (reissue_file_path(p->reissue_file, db, rec.identity, res->reissue_file,
                              sizeof res->reissue_file, err, errlen) != 0 ||
            write_reissue_file(res->reissue_file, &rec,
                               res->have_old_serial ? old_serial : NULL, err, errlen) != 0)
            goto out;
        char detail[ATOMICFILE_PATH_MAX + 64];
        snprintf(detail, sizeof detail, "%s; record extracted to %s",
                 p->old_card != NULL ? "card returned" : "card lost", res->reissue_file);
        if (idb_begin(db, err, errlen) != IDB_OK)
            goto out;
        /* Only the current card's record may be reset: the read above was outside the lock. */
        struct idb_record now;
        int st = idb_record_by_identity(db, rec.identity, &now, err, errlen);
        if (st == IDB_OK && (now.issued != rec.issued || now.issue_count != rec.issue_count)) {
            snprintf(err, errlen, "record %s changed while reissuing (another reissue?): run "
                     "again", rec.identity);
            st = IDB_E_CONFLICT;
        }
        idb_record_wipe(&now);
        if (st == IDB_OK)
            st = idb_record_mark_unissued(db, rec.id, err, errlen);
        if (st == IDB_OK)
            st = idb_history_add(db, rec.id, "reissue",
                                 res->have_old_serial ? old_serial : NULL, "original", rec.card_type, detail, p->issue.operator_name,
                                 err, errlen);
        if (st == IDB_OK)
            st = idb_commit(db, err, errlen);
        if (st != IDB_OK) {
            idb_rollback(db);
            goto out;
        }
    }
    /* The flag says unissued: issue the new card (issue_card refuses once it says issued). */
    if (issue_card(&ip, new_card, &res->issued, err, errlen) != 0)
        goto out;
    if (p->old_card != NULL) {
        if (!p->keep_old_card)
            end_old_card(p, &rec, res->have_old_serial ? old_serial : NULL, res);
    } else {
        snprintf(res->old_note, sizeof res->old_note, "the old card is lost");
    }
    rc = 0;
out:
    idb_record_wipe(&rec);
    return rc;
}

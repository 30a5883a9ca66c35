/* See branch.h. */
#include "branch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "hex.h"
#include "ins.h"
#include "proto.h"
#include "record_json.h"
#include "rng.h"

/* The claim file: what this branch asked the central system, so a rerun asks the same. */
struct claim_file {
    char path[ATOMICFILE_PATH_MAX];
    char rid_claim[CENTRAL_REQUEST_ID_NEW + 1];
    char rid_confirm[CENTRAL_REQUEST_ID_NEW + 1];
    char rid_abort[CENTRAL_REQUEST_ID_NEW + 1];
    char token[65];              /* "" until the claim was answered */
    unsigned issue_number;
    bool confirmed;
};

static int claim_path(const struct branch_params *p, const char *identity, char *out,
                      size_t cap, char *err, size_t errlen)
{
    char safe[IDB_IDENTITY_MAX + 1];
    issue_file_name(identity, safe, sizeof safe);
    /* Next to a file-based branch file; in the working directory for a database server. */
    const char *db = idb_path(p->reissue.issue.db);
    const char *slash = strstr(db, "://") == NULL ? strrchr(db, '/') : NULL;
    int dirlen = slash != NULL ? (int)(slash - db) + 1 : 0;
    if ((size_t)snprintf(out, cap, "%.*scentral-claim-%s.json", dirlen, db, safe) < cap)
        return 0;
    snprintf(err, errlen, "the claim file's path is too long");
    return -1;
}

static int claim_save(const struct claim_file *c, const char *identity, char *err,
                      size_t errlen)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "format",
                            "icissue-central-claim/1", "identity", identity, "claim_request",
                            c->rid_claim, "confirm_request", c->rid_confirm, "abort_request",
                            c->rid_abort, "token", c->token, "issue_number",
                            (json_int_t)c->issue_number, "confirmed", c->confirmed);
    if (doc == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct atomic_file af;
    int rc = atomic_file_open(&af, c->path, 0600, err, errlen);
    if (rc == 0 && (json_dumpf(doc, af.f, JSON_INDENT(2)) != 0 || fputc('\n', af.f) < 0)) {
        atomic_file_abort(&af);
        snprintf(err, errlen, "%s: cannot write the claim file", c->path);
        rc = -1;
    } else if (rc == 0) {
        rc = atomic_file_commit(&af, err, errlen);
    }
    json_decref(doc);
    return rc;
}

/* Loads the claim file of identity, or starts a new one with fresh request ids (not saved
 * yet). *existed tells which. */
static int claim_load(struct claim_file *c, const char *identity, bool *existed, char *err,
                      size_t errlen)
{
    *existed = false;
    unsigned stale = 0; /* temporary files of a run killed while it wrote the claim file */
    (void)atomic_file_clean_stale(c->path, &stale, err, errlen);
    json_error_t je;
    json_t *doc = json_load_file(c->path, 0, &je);
    if (doc == NULL) {
        if (access(c->path, F_OK) == 0) {
            snprintf(err, errlen, "%s: unreadable claim file (%s)", c->path, je.text);
            return -1;
        }
        if (central_request_id_new(rng_getrandom, NULL, c->rid_claim) != 0 ||
            central_request_id_new(rng_getrandom, NULL, c->rid_confirm) != 0 ||
            central_request_id_new(rng_getrandom, NULL, c->rid_abort) != 0) {
            snprintf(err, errlen, "no random numbers for the request ids");
            return -1;
        }
        return 0;
    }
    const char *id = json_string_value(json_object_get(doc, "identity"));
    json_t *n = json_object_get(doc, "issue_number");
    int rc = -1;
    if (id == NULL || strcmp(id, identity) != 0 ||
        json_text_copy(doc, "claim_request", c->rid_claim, sizeof c->rid_claim, false) ||
        json_text_copy(doc, "confirm_request", c->rid_confirm, sizeof c->rid_confirm, false) ||
        json_text_copy(doc, "abort_request", c->rid_abort, sizeof c->rid_abort, false) ||
        json_text_copy(doc, "token", c->token, sizeof c->token, true) || !json_is_integer(n) ||
        !json_is_boolean(json_object_get(doc, "confirmed"))) {
        snprintf(err, errlen, "%s: not a claim file of record %s", c->path, identity);
    } else {
        c->issue_number = (unsigned)json_integer_value(n);
        c->confirmed = json_is_true(json_object_get(doc, "confirmed"));
        *existed = true;
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

static void claim_remove(const struct claim_file *c)
{
    if (unlink(c->path) == 0)
        (void)atomic_sync_parent(c->path);
}

/* One request: {"op": op, "request_id": rid, ...fields}. Returns the status (>= 0) with *resp
 * set, or -1 when no answer came (err says why). The central system's message goes to err for
 * any status other than ok. */
static int ask(const struct branch_params *p, const char *op, const char *rid, json_t *fields,
               json_t **resp, char *err, size_t errlen)
{
    *resp = NULL;
    json_t *req = fields != NULL ? fields : json_object();
    if (req == NULL || json_object_set_new(req, "op", json_string(op)) != 0 ||
        json_object_set_new(req, "request_id", json_string(rid)) != 0) {
        json_decref(req);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char e[512];
    int rc = p->central->call(p->central->ctx, req, resp, e, sizeof e);
    json_decref(req);
    if (rc != 0) {
        snprintf(err, errlen, "central system: %s", e);
        return -1;
    }
    enum central_status st;
    if (central_response_check(*resp, rid, &st, e, sizeof e) != 0) {
        json_decref(*resp);
        *resp = NULL;
        snprintf(err, errlen, "central system: bad answer to %s: %s", op, e);
        return -1;
    }
    if (st != CENTRAL_OK)
        snprintf(err, errlen, "central system: %s: %s", central_status_name(st),
                 json_string_value(json_object_get(*resp, "message")));
    return (int)st;
}

/* The claimed record into the branch file, as it stood before the claim (issued, its count
 * one below the claim's number, its current card), so reissue_card reissues it. Skipped when
 * the branch file is ahead: a card pending there, or the reissue already recorded. */
static int sync_record(const struct branch_params *p, const struct claim_file *c,
                       const json_t *jrec, char *err, size_t errlen)
{
    struct idb *db = p->reissue.issue.db;
    struct idb_record central, local;
    if (record_from_json(jrec, &central, err, errlen) != 0)
        return -1;
    int rc = 0;
    int st = idb_record_by_identity(db, central.identity, &local, err, errlen);
    bool ahead = st == IDB_OK &&
                 (local.has_pending || (local.issued && local.issue_count == c->issue_number));
    if (st == IDB_OK)
        idb_record_wipe(&local);
    if (st != IDB_OK && st != IDB_E_NOTFOUND) {
        rc = -1;
    } else if (!ahead) {
        central.issued = true;
        central.issue_count = c->issue_number - 1;
        rc = idb_record_sync(db, &central, err, errlen) == IDB_OK ? 0 : -1;
    }
    idb_record_wipe(&central);
    return rc;
}

/* The claim the central system released: the new card must not pass for a good one. */
static void spoil_new_card(const struct branch_params *p, struct cardop *new_card,
                           struct reissue_result *res)
{
    const struct secrets *s = p->reissue.issue.issuer;
    bool done = s != NULL && s->admin.len > 0 &&
                cardop_verify(new_card, PIN_REF_ADMIN, s->admin.v, s->admin.len) == 0 &&
                cardop_terminate(new_card) == 0;
    res->issued.spoiled = done;
}

static void do_abort(const struct branch_params *p, struct claim_file *c, const char *why);

static int do_claim(const struct branch_params *p, struct claim_file *c, const char *identity,
                    char *err, size_t errlen)
{
    json_t *f = json_pack("{s:s}", "identity", identity), *resp = NULL;
    if (f != NULL && p->lease_seconds > 0)
        json_object_set_new(f, "lease_seconds", json_integer(p->lease_seconds));
    int st = ask(p, "claim", c->rid_claim, f, &resp, err, errlen);
    if (st < 0) {
        snprintf(err + strlen(err), errlen - strlen(err), "; nothing was reissued: run the "
                 "same command again");
        return -1;
    }
    int rc = -1;
    if (st != CENTRAL_OK) {
        claim_remove(c); /* refused: a later run claims anew */
        goto out;
    }
    json_t *claim = json_object_get(resp, "claim");
    json_t *num = json_object_get(claim, "issue_number");
    if (json_text_copy(claim, "token", c->token, sizeof c->token, false) != 0 ||
        !json_is_integer(num) || json_integer_value(num) < 1) {
        snprintf(err, errlen, "central system: a claim answer without token or number");
        goto out;
    }
    c->issue_number = (unsigned)json_integer_value(num);
    if (claim_save(c, identity, err, errlen) != 0)
        goto out;
    if (sync_record(p, c, json_object_get(resp, "record"), err, errlen) != 0) {
        /* The branch cannot use this record (its file lacks the card type, ...): give the
         * claim back now rather than hold the record until the lease ends. */
        do_abort(p, c, "the branch's issuance file cannot take the record");
        goto out;
    }
    rc = 0;
out:
    json_decref(resp);
    return rc;
}

/* Gives the claim back after a failed local issuance; the claim file goes with it. */
static void do_abort(const struct branch_params *p, struct claim_file *c, const char *why)
{
    char e[256];
    json_t *resp = NULL;
    int st = ask(p, "abort", c->rid_abort, json_pack("{s:s, s:s}", "token", c->token, "reason",
                                                        why), &resp, e, sizeof e);
    json_decref(resp);
    if (st == CENTRAL_OK || st == CENTRAL_CONFLICT || st == CENTRAL_NOT_FOUND)
        claim_remove(c); /* released, or gone already */
}

static int do_confirm(const struct branch_params *p, struct claim_file *c, const char *identity,
                      struct cardop *new_card, struct reissue_result *res, char *err,
                      size_t errlen)
{
    char serial[2 * IDB_SERIAL_LEN + 1];
    hex_encode(res->issued.serial, IDB_SERIAL_LEN, 0, serial, sizeof serial);
    json_t *resp = NULL;
    int st = ask(p, "confirm", c->rid_confirm,
                 json_pack("{s:s, s:s, s:s, s:s}", "token", c->token, "serial", serial,
                           "card_type", res->issued.card_type, "design", res->issued.design),
                 &resp, err, errlen);
    int rc = -1;
    if (st < 0 || st == CENTRAL_UNAVAILABLE || st == CENTRAL_INTERNAL) {
        snprintf(err + strlen(err), errlen - strlen(err), "; the new card %s is issued here "
                 "but not confirmed: run the same command again to confirm it", serial);
    } else if (st != CENTRAL_OK) {
        spoil_new_card(p, new_card, res);
        claim_remove(c);
        snprintf(err + strlen(err), errlen - strlen(err), "; the claim is gone, so the new card "
                 "%s %s and nothing was counted: run the reissue again with a blank card",
                 serial, res->issued.spoiled ? "was spoiled" : "must be destroyed (it could not "
                 "be terminated: no issuer admin PIN)");
    } else {
        json_t *n = json_object_get(resp, "issue_count");
        res->issued.issue_count = json_is_integer(n) ? (unsigned)json_integer_value(n)
                                                     : c->issue_number;
        c->confirmed = true;
        rc = claim_save(c, identity, err, errlen);
    }
    json_decref(resp);
    return rc;
}

/* Whether new_card is the card with serial. */
static bool is_card(struct cardop *new_card, const uint8_t serial[IDB_SERIAL_LEN])
{
    uint8_t s[IDB_SERIAL_LEN];
    return cardop_serial(new_card, s) == 0 && memcmp(s, serial, IDB_SERIAL_LEN) == 0;
}

/* Looks the record up at the central system: 1 when its current card is new_card (res filled
 * as "already done"), 0 when not, -1 on error. */
static int central_current(const struct branch_params *p, const char *identity,
                           struct cardop *new_card, struct reissue_result *res, char *err,
                           size_t errlen)
{
    uint8_t serial[IDB_SERIAL_LEN];
    if (cardop_serial(new_card, serial) != 0) {
        snprintf(err, errlen, "%s", new_card->err);
        return -1;
    }
    char rid[CENTRAL_REQUEST_ID_NEW + 1];
    if (central_request_id_new(rng_getrandom, NULL, rid) != 0) {
        snprintf(err, errlen, "no random numbers for the request id");
        return -1;
    }
    json_t *resp = NULL;
    int st = ask(p, "lookup", rid, json_pack("{s:s}", "identity", identity), &resp, err,
                 errlen);
    int rc = st == CENTRAL_OK ? 0 : -1;
    struct idb_record r;
    char e[256];
    if (rc == 0 && record_from_json_summary(json_object_get(resp, "record"), &r, e,
                                            sizeof e) != 0) {
        snprintf(err, errlen, "central system: %s", e);
        rc = -1;
    }
    if (rc == 0 && r.issued && r.has_serial &&
        memcmp(r.card_serial, serial, IDB_SERIAL_LEN) == 0) {
        res->already_done = true;
        memcpy(res->issued.serial, serial, IDB_SERIAL_LEN);
        res->issued.issue_count = r.issue_count;
        snprintf(res->issued.card_type, sizeof res->issued.card_type, "%s", r.card_type);
        rc = 1;
    }
    json_decref(resp);
    return rc;
}

int branch_reissue(const struct branch_params *p, struct cardop *new_card,
                   struct reissue_result *res, char *err, size_t errlen)
{
    struct reissue_params rp = p->reissue;
    rp.keep_old_card = true;
    if (reissue_identify(&rp, res, err, errlen) != 0)
        return -1;
    char identity[IDB_IDENTITY_MAX + 1];
    memcpy(identity, res->identity, sizeof identity);
    struct claim_file c;
    memset(&c, 0, sizeof c);
    bool existed = false;
    if (claim_path(p, identity, c.path, sizeof c.path, err, errlen) != 0 ||
        claim_load(&c, identity, &existed, err, errlen) != 0)
        return -1;
    if (!existed) {
        /* A rerun after everything was done: the new card is the central system's current
         * card already. Nothing to claim. */
        int done = central_current(p, identity, new_card, res, err, errlen);
        if (done < 0)
            return -1;
        if (done > 0)
            goto old_card;
        if (claim_save(&c, identity, err, errlen) != 0)
            return -1;
    }
    if (!c.confirmed) {
        /* A rerun repeats the claim with the same id: the central system answers it from its
         * first answer, and the branch file copy is refreshed only when it is behind. */
        if (do_claim(p, &c, identity, err, errlen) != 0)
            return -1;
        if (reissue_identified(&rp, new_card, res, err, errlen) != 0) {
            /* A card left pending is finished by a rerun under the same claim; otherwise the
             * claim goes back at once rather than when its lease ends. */
            struct idb_record r;
            char e2[256];
            bool pending = false;
            if (idb_record_by_identity(rp.issue.db, identity, &r, e2, sizeof e2) == IDB_OK) {
                pending = r.has_pending;
                idb_record_wipe(&r);
            }
            if (pending)
                snprintf(err + strlen(err), errlen - strlen(err), "; the claim is kept: run "
                         "the same command again with the same new card");
            else
                do_abort(p, &c, "the branch could not issue the new card");
            return -1;
        }
        if (res->already_done && !is_card(new_card, res->issued.serial)) {
            /* The old card was replaced before this claim (the record's current card is
             * another one, made by an earlier reissue): nothing was made under this claim,
             * so it goes back uncounted, and the old card is ended as a local reissue does. */
            do_abort(p, &c, "the old card was replaced already");
            goto old_card;
        }
        if (do_confirm(p, &c, identity, new_card, res, err, errlen) != 0)
            return -1;
    } else {
        /* Confirmed by an earlier run that stopped before the old card: report, finish. */
        struct idb_record r;
        if (idb_record_by_identity(rp.issue.db, identity, &r, err, errlen) != IDB_OK)
            return -1;
        res->already_done = true;
        memcpy(res->issued.serial, r.card_serial, IDB_SERIAL_LEN);
        res->issued.issue_count = r.issue_count;
        snprintf(res->issued.card_type, sizeof res->issued.card_type, "%s", r.card_type);
        idb_record_wipe(&r);
    }
old_card:
    if (rp.old_card != NULL)
        reissue_end_old_card(&rp, res);
    else
        snprintf(res->old_note, sizeof res->old_note, "the old card is lost");
    claim_remove(&c);
    return 0;
}

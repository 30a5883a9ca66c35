/* Card types of the issuance file: designs, type and identity readouts, card types with
 * their items, scripts and correlation rows (docs/issuance.md, "Card-type file"). */
#include "idb_int.h"

#include <stdio.h>
#include <string.h>

/* ---- storing --------------------------------------------------------------------------- */

static void color_text(uint32_t rgb, char out[8])
{
    snprintf(out, 8, "#%06x", (unsigned)(rgb & 0xFFFFFFu));
}

/* Runs st (an INSERT or DELETE) and ends it. */
static int run_done(struct idb *db, struct idb_stmt *st, const char *what, char *err,
                    size_t errlen)
{
    enum idb_step s = idb_run(st);
    if (s == IDB_STEP_FOREIGN)
        return idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: it refers to something that "
                        "does not exist, or records still use what it replaces", what);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "%s", what);
    return IDB_OK;
}

static const char SQL_DESIGN_PUT[] =
    "INSERT INTO designs VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO "
    "UPDATE SET background = ?2, accent = ?3, text_color = ?4, title = ?5";

static int store_design(struct idb *db, const struct cardface_design *d, char *err,
                        size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_DESIGN_PUT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    char bg[8], ac[8], tx[8];
    color_text(d->background, bg);
    color_text(d->accent, ac);
    color_text(d->text, tx);
    idb_bind_text(st, 1, d->name);
    idb_bind_text(st, 2, bg);
    idb_bind_text(st, 3, ac);
    idb_bind_text(st, 4, tx);
    idb_bind_text(st, 5, d->title);
    return run_done(db, st, "storing a design", err, errlen);
}

static const char SQL_TYPE_READOUT_PUT[] =
    "INSERT INTO type_readouts VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO "
    "UPDATE SET apdu = ?2, expect_sw = ?3, priority = ?4";

static int store_type_readout(struct idb *db, const struct ct_type_readout *r, char *err,
                              size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_TYPE_READOUT_PUT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, r->name);
    idb_bind_blob(st, 2, r->cmd.apdu, r->cmd.len);
    idb_bind_int(st, 3, r->cmd.expect_sw);
    idb_bind_int(st, 4, r->priority);
    return run_done(db, st, "storing a type readout", err, errlen);
}

/* Runs sql with name as its only parameter (the DELETEs of what a name's new rows replace). */
static int run_named(struct idb *db, const char *sql, const char *name, const char *what,
                     char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, sql, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    return run_done(db, st, what, err, errlen);
}

static const char SQL_ID_READOUT_PUT[] =
    "INSERT INTO identity_readouts VALUES (?1, ?2) ON CONFLICT (name) DO "
    "UPDATE SET encoding = ?2";
static const char SQL_ID_READOUT_CLEAR[] =
    "DELETE FROM identity_readout_steps WHERE readout = ?1";
static const char SQL_ID_READOUT_STEP[] =
    "INSERT INTO identity_readout_steps VALUES (?1, ?2, ?3, ?4)";

static int store_identity_readout(struct idb *db, const struct ct_identity_readout *r,
                                  char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_ID_READOUT_PUT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, r->name);
    idb_bind_text(st, 2, ct_encoding_name(r->encoding));
    int rc = run_done(db, st, "storing an identity readout", err, errlen);
    if (rc == IDB_OK)
        rc = run_named(db, SQL_ID_READOUT_CLEAR, r->name, "replacing identity readout steps",
                       err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < r->nsteps; i++) {
        if ((st = idb_sql(db, SQL_ID_READOUT_STEP, err, errlen)) == NULL)
            return IDB_E_DB;
        idb_bind_text(st, 1, r->name);
        idb_bind_int(st, 2, (int64_t)i);
        idb_bind_blob(st, 3, r->steps[i].apdu, r->steps[i].len);
        idb_bind_int(st, 4, r->steps[i].expect_sw);
        rc = run_done(db, st, "storing an identity readout step", err, errlen);
    }
    return rc;
}

static const char SQL_TYPE_PUT[] =
    "INSERT INTO card_types VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) "
    "DO UPDATE SET description = ?2, interface = ?3, design = ?4, stripe_iin = ?5";
static const char SQL_TYPE_CLEAR_ITEMS[] = "DELETE FROM type_items WHERE card_type = ?1";
static const char SQL_TYPE_CLEAR_STEPS[] = "DELETE FROM script_steps WHERE card_type = ?1";
static const char SQL_TYPE_CLEAR_CORR[] = "DELETE FROM correlation WHERE card_type = ?1";
static const char SQL_CORRELATION_PUT[] = "INSERT INTO correlation VALUES (?1, ?2, ?3, ?4)";
static const char SQL_TYPE_ITEM_PUT[] =
    "INSERT INTO type_items VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_SCRIPT_STEP_PUT[] =
    "INSERT INTO script_steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static int store_correlation(struct idb *db, const struct ct_type *t, const char *what,
                             char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_CORRELATION_PUT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, t->type_readout);
    idb_bind_blob(st, 2, t->type_value, t->type_value_len);
    idb_bind_text(st, 3, t->name);
    idb_bind_text(st, 4, t->identity_readout);
    enum idb_step s = idb_run(st);
    if (s == IDB_STEP_UNIQUE)
        return idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: another card type answers "
                        "the same value to type readout %s", what, t->type_readout);
    if (s == IDB_STEP_FOREIGN)
        return idb_fail(NULL, IDB_E_CONFLICT, err, errlen, "%s: type readout %s or identity "
                        "readout %s is not defined", what, t->type_readout,
                        t->identity_readout);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "%s: correlation", what);
    return IDB_OK;
}

static int store_script(struct idb *db, const struct ct_type *t, enum ct_role role,
                        const char *what, char *err, size_t errlen)
{
    int rc = IDB_OK;
    for (size_t i = 0; rc == IDB_OK && i < t->nsteps[role]; i++) {
        const struct ct_step *s = &t->script[role][i];
        struct idb_stmt *st = idb_sql(db, SQL_SCRIPT_STEP_PUT, err, errlen);
        if (st == NULL)
            return IDB_E_DB;
        idb_bind_text(st, 1, t->name);
        idb_bind_text(st, 2, ct_role_name(role));
        idb_bind_int(st, 3, (int64_t)i);
        idb_bind_text(st, 4, s->label);
        idb_bind_blob(st, 5, s->header, 4);
        idb_bind_blob(st, 6, s->data, s->data_len);
        idb_bind_text(st, 7, s->item[0] != '\0' ? s->item : NULL);
        idb_bind_int(st, 8, s->expect_sw);
        rc = run_done(db, st, what, err, errlen);
    }
    return rc;
}

static int store_type(struct idb *db, const struct ct_type *t, char *err, size_t errlen)
{
    char what[96];
    snprintf(what, sizeof what, "card type %s", t->name);
    struct idb_stmt *st = idb_sql(db, SQL_TYPE_PUT, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, t->name);
    idb_bind_text(st, 2, t->description);
    idb_bind_text(st, 3, t->interface);
    idb_bind_text(st, 4, t->design);
    idb_bind_text(st, 5, t->stripe_iin);
    int rc = run_done(db, st, what, err, errlen);
    static const char *const clear[] = { SQL_TYPE_CLEAR_ITEMS, SQL_TYPE_CLEAR_STEPS,
                                         SQL_TYPE_CLEAR_CORR };
    for (size_t i = 0; rc == IDB_OK && i < sizeof clear / sizeof clear[0]; i++)
        rc = run_named(db, clear[i], t->name, what, err, errlen);
    if (rc == IDB_OK)
        rc = store_correlation(db, t, what, err, errlen);
    for (size_t i = 0; rc == IDB_OK && i < t->nitems; i++) {
        const struct ct_item *it = &t->items[i];
        if ((st = idb_sql(db, SQL_TYPE_ITEM_PUT, err, errlen)) == NULL)
            return IDB_E_DB;
        idb_bind_text(st, 1, t->name);
        idb_bind_int(st, 2, (int64_t)i);
        idb_bind_text(st, 3, it->name);
        idb_bind_text(st, 4, ct_kind_name(it->kind));
        idb_bind_int(st, 5, it->max_len);
        idb_bind_int(st, 6, it->required ? 1 : 0);
        rc = run_done(db, st, what, err, errlen);
    }
    for (int role = 0; rc == IDB_OK && role < CT_ROLES; role++)
        rc = store_script(db, t, (enum ct_role)role, what, err, errlen);
    return rc;
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

/* ---- reading --------------------------------------------------------------------------- */

static int not_found(char *err, size_t errlen, const char *what, const char *name)
{
    return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "no %s named \"%s\" in the issuance "
                    "file", what, name);
}

/* A step result for data the file should not hold (a bad kind, an oversized blob). */
#define STEP_CORRUPT IDB_STEP_ERROR

static const char SQL_TYPE_GET[] =
    "SELECT t.name, t.description, t.interface, t.design, t.stripe_iin, "
    "c.type_readout, c.type_value, c.identity_readout FROM card_types t "
    "JOIN correlation c ON c.card_type = t.name WHERE t.name = ?1";
static const char SQL_TYPE_ITEMS[] =
    "SELECT item, kind, max_len, required FROM type_items WHERE card_type = ?1 ORDER BY seq";
static const char SQL_TYPE_SCRIPTS[] =
    "SELECT role, label, header, data, item, expect_sw FROM script_steps "
    "WHERE card_type = ?1 ORDER BY role, seq";

static enum idb_step read_type_row(struct idb_stmt *st, struct ct_type *out)
{
    enum idb_step s = idb_step(st);
    if (s != IDB_STEP_ROW)
        return s;
    idb_col_copy(st, 0, out->name, sizeof out->name);
    idb_col_copy(st, 1, out->description, sizeof out->description);
    idb_col_copy(st, 2, out->interface, sizeof out->interface);
    idb_col_copy(st, 3, out->design, sizeof out->design);
    idb_col_copy(st, 4, out->stripe_iin, sizeof out->stripe_iin);
    idb_col_copy(st, 5, out->type_readout, sizeof out->type_readout);
    if (idb_col_blob(st, 6, out->type_value, sizeof out->type_value, &out->type_value_len) !=
        0)
        return STEP_CORRUPT;
    idb_col_copy(st, 7, out->identity_readout, sizeof out->identity_readout);
    return s;
}

static enum idb_step read_type_items(struct idb_stmt *st, struct ct_type *out)
{
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW && out->nitems < CT_MAX_ITEMS) {
        struct ct_item *it = &out->items[out->nitems++];
        idb_col_copy(st, 0, it->name, sizeof it->name);
        if (ct_kind_parse(idb_col_text(st, 1), &it->kind) != 0)
            return STEP_CORRUPT;
        it->max_len = (unsigned)idb_col_int(st, 2);
        it->required = idb_col_int(st, 3) != 0;
    }
    return s;
}

static enum idb_step read_type_scripts(struct idb_stmt *st, struct ct_type *out)
{
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW) {
        enum ct_role role;
        size_t hl = 0;
        if (ct_role_parse(idb_col_text(st, 0), &role) != 0 ||
            out->nsteps[role] == CT_MAX_STEPS)
            return STEP_CORRUPT;
        struct ct_step *step = &out->script[role][out->nsteps[role]++];
        idb_col_copy(st, 1, step->label, sizeof step->label);
        if (idb_col_blob(st, 2, step->header, 4, &hl) != 0 || hl != 4 ||
            idb_col_blob(st, 3, step->data, sizeof step->data, &step->data_len) != 0)
            return STEP_CORRUPT;
        idb_col_copy(st, 4, step->item, sizeof step->item);
        step->expect_sw = (uint16_t)idb_col_int(st, 5);
    }
    return s;
}

int idb_type_get(struct idb *db, const char *name, struct ct_type *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct idb_stmt *st = idb_sql(db, SQL_TYPE_GET, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    enum idb_step s = read_type_row(st, out);
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return not_found(err, errlen, "card type", name);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading card type %s", name);

    if ((st = idb_sql(db, SQL_TYPE_ITEMS, err, errlen)) == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    s = read_type_items(st, out);
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the items of card type %s", name);

    if ((st = idb_sql(db, SQL_TYPE_SCRIPTS, err, errlen)) == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    s = read_type_scripts(st, out);
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the scripts of card type %s",
                        name);
    return IDB_OK;
}

static const char SQL_DESIGN_GET[] =
    "SELECT name, background, accent, text_color, title FROM designs WHERE name = ?1";

int idb_design_get(struct idb *db, const char *name, struct cardface_design *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct idb_stmt *st = idb_sql(db, SQL_DESIGN_GET, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW) {
        idb_col_copy(st, 0, out->name, sizeof out->name);
        if (cardface_parse_color(idb_col_text(st, 1), &out->background) ||
            cardface_parse_color(idb_col_text(st, 2), &out->accent) ||
            cardface_parse_color(idb_col_text(st, 3), &out->text))
            s = STEP_CORRUPT;
        idb_col_copy(st, 4, out->title, sizeof out->title);
    }
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return not_found(err, errlen, "print design", name);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading print design %s", name);
    return IDB_OK;
}

static const char SQL_ID_READOUT_GET[] =
    "SELECT r.encoding, s.apdu, s.expect_sw FROM identity_readouts r "
    "LEFT JOIN identity_readout_steps s ON s.readout = r.name "
    "WHERE r.name = ?1 ORDER BY s.seq";

int idb_identity_readout_get(struct idb *db, const char *name, struct ct_identity_readout *out,
                             char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct idb_stmt *st = idb_sql(db, SQL_ID_READOUT_GET, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, name);
    enum idb_step s;
    int rows = 0;
    while ((s = idb_step(st)) == IDB_STEP_ROW) {
        rows++;
        if (ct_encoding_parse(idb_col_text(st, 0), &out->encoding) != 0) {
            s = STEP_CORRUPT;
            break;
        }
        if (idb_col_null(st, 1))
            continue;
        if (out->nsteps == CT_MAX_READOUT_STEPS) {
            s = STEP_CORRUPT;
            break;
        }
        struct ct_command *c = &out->steps[out->nsteps++];
        if (idb_col_blob(st, 1, c->apdu, sizeof c->apdu, &c->len) != 0) {
            s = STEP_CORRUPT;
            break;
        }
        c->expect_sw = (uint16_t)idb_col_int(st, 2);
    }
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading identity readout %s", name);
    if (rows == 0)
        return not_found(err, errlen, "identity readout", name);
    snprintf(out->name, sizeof out->name, "%s", name);
    return IDB_OK;
}

static const char SQL_TYPE_READOUTS[] =
    "SELECT name, apdu, expect_sw, priority FROM type_readouts ORDER BY priority, name";

int idb_type_readouts(struct idb *db, struct ct_type_readout *out, size_t cap, size_t *n,
                      char *err, size_t errlen)
{
    *n = 0;
    struct idb_stmt *st = idb_sql(db, SQL_TYPE_READOUTS, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW && *n < cap) {
        struct ct_type_readout *r = &out[*n];
        memset(r, 0, sizeof *r);
        idb_col_copy(st, 0, r->name, sizeof r->name);
        if (idb_col_blob(st, 1, r->cmd.apdu, sizeof r->cmd.apdu, &r->cmd.len) != 0) {
            s = STEP_CORRUPT;
            break;
        }
        r->cmd.expect_sw = (uint16_t)idb_col_int(st, 2);
        r->priority = (int)idb_col_int(st, 3);
        (*n)++;
    }
    idb_end(st);
    if (s != IDB_STEP_DONE && s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the type readouts");
    return IDB_OK;
}

static const char SQL_CORRELATE[] =
    "SELECT card_type, identity_readout FROM correlation "
    "WHERE type_readout = ?1 AND type_value = ?2";

int idb_correlate(struct idb *db, const char *type_readout, const uint8_t *value, size_t len,
                  char card_type[CT_NAME_MAX + 1], char identity_readout[CT_NAME_MAX + 1],
                  char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_CORRELATE, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    idb_bind_text(st, 1, type_readout);
    idb_bind_blob(st, 2, value, len);
    enum idb_step s = idb_step(st);
    if (s == IDB_STEP_ROW) {
        idb_col_copy(st, 0, card_type, CT_NAME_MAX + 1);
        idb_col_copy(st, 1, identity_readout, CT_NAME_MAX + 1);
    }
    idb_end(st);
    if (s == IDB_STEP_DONE)
        return idb_fail(NULL, IDB_E_NOTFOUND, err, errlen, "no card type answers that value "
                        "to type readout %s", type_readout);
    if (s != IDB_STEP_ROW)
        return idb_fail(db, IDB_E_DB, err, errlen, "reading the correlation table");
    return IDB_OK;
}

static const char SQL_TYPE_NAMES[] = "SELECT name, description FROM card_types ORDER BY name";

int idb_type_names(struct idb *db, void (*fn)(void *ctx, const char *name, const char *desc),
                   void *ctx, char *err, size_t errlen)
{
    struct idb_stmt *st = idb_sql(db, SQL_TYPE_NAMES, err, errlen);
    if (st == NULL)
        return IDB_E_DB;
    enum idb_step s;
    while ((s = idb_step(st)) == IDB_STEP_ROW)
        fn(ctx, idb_col_text(st, 0), idb_col_text(st, 1));
    idb_end(st);
    if (s != IDB_STEP_DONE)
        return idb_fail(db, IDB_E_DB, err, errlen, "listing card types");
    return IDB_OK;
}

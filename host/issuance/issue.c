#include "issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "cardface.h"
#include "hex.h"
#include "ins.h"
#include "profile.h"
#include "stripe.h"
#include "sw.h"

/* ---- script expansion ------------------------------------------------------------------ */

/* What a step's item resolves to. */
struct item_source {
    const struct ct_type *type;
    const struct idb_record *rec;
    enum ct_role role;
    unsigned issue_count;          /* the count this card carries */
    const struct secrets *issuer;
};

/* Encodes the value of item name into out. Returns the length, 0 when the item is an
 * optional one the record lacks (the step is skipped), or -1 with a message. *secret is set
 * for values a trace must not show. */
static int item_value(const struct item_source *src, const char *name, uint8_t *out,
                      size_t cap, bool *secret, char *err, size_t errlen)
{
    *secret = false;
    if (strcmp(name, "identity") == 0) {
        size_t n = strlen(src->rec->identity);
        if (n > cap)
            goto too_long;
        memcpy(out, src->rec->identity, n);
        return (int)n;
    }
    if (strcmp(name, "card_type") == 0) {
        if (src->type->type_value_len > cap)
            goto too_long;
        memcpy(out, src->type->type_value, src->type->type_value_len);
        return (int)src->type->type_value_len;
    }
    if (strcmp(name, "issue_count") == 0) {
        if (cap < 2 || src->issue_count > 0xFFFF)
            goto too_long;
        out[0] = (uint8_t)(src->issue_count >> 8);
        out[1] = (uint8_t)src->issue_count;
        return 2;
    }
    if (strcmp(name, "role") == 0) {
        if (cap < 1)
            goto too_long;
        out[0] = src->role == CT_ORIGINAL ? 'O' : 'B';
        return 1;
    }
    if (strcmp(name, "puk") == 0 || strcmp(name, "admin_pin") == 0) {
        const struct secret_pin *pin = NULL;
        if (src->issuer != NULL)
            pin = name[0] == 'p' ? &src->issuer->puk : &src->issuer->admin;
        if (pin == NULL || pin->len == 0) {
            snprintf(err, errlen, "the script needs the issuer's %s: give --secrets FILE with "
                     "a \"%s = ...\" line", name[0] == 'p' ? "PUK" : "admin PIN",
                     name[0] == 'p' ? "puk" : "admin");
            return -1;
        }
        if (pin->len > cap)
            goto too_long;
        memcpy(out, pin->v, pin->len);
        *secret = true;
        return (int)pin->len;
    }
    const struct ct_item *it = ct_find_item(src->type, name);
    if (it == NULL) {
        snprintf(err, errlen, "card type %s has no item %s", src->type->name, name);
        return -1;
    }
    const char *v = idb_record_item(src->rec, name);
    if (v == NULL || v[0] == '\0') {
        if (!it->required)
            return 0;
        snprintf(err, errlen, "record %s has no %s, which card type %s requires",
                 src->rec->identity, name, src->type->name);
        return -1;
    }
    char why[256];
    if (ct_check_value(it, v, strlen(v), why, sizeof why) != 0) {
        snprintf(err, errlen, "record %s: %.200s", src->rec->identity, why);
        return -1;
    }
    int n = ct_encode_value(it->kind, v, strlen(v), out, cap);
    if (n < 0)
        goto too_long;
    *secret = it->kind == CT_SECRET || it->kind == CT_HEX;
    return n;
too_long:
    snprintf(err, errlen, "item %s does not fit the command", name);
    return -1;
}

/* Expands the script of src->role into steps (cap entries). Optional items the record lacks
 * skip their step. Returns 0, or -1 with a message. */
static int build_script(const struct item_source *src, struct profile_apdu *steps, size_t cap,
                        size_t *n, char *err, size_t errlen)
{
    *n = 0;
    const struct ct_type *t = src->type;
    for (size_t i = 0; i < t->nsteps[src->role]; i++) {
        const struct ct_step *s = &t->script[src->role][i];
        uint8_t data[CT_DATA_MAX];
        size_t dlen = s->data_len;
        bool secret = false;
        memcpy(data, s->data, dlen);
        if (s->item[0] != '\0') {
            char why[300];
            int v = item_value(src, s->item, data + dlen, sizeof data - dlen, &secret, why,
                               sizeof why);
            if (v < 0) {
                snprintf(err, errlen, "step %zu (%s): %s", i + 1, s->label, why);
                mbedtls_platform_zeroize(data, sizeof data);
                return -1;
            }
            if (v == 0)
                continue;
            dlen += (size_t)v;
        }
        if (*n == cap) {
            snprintf(err, errlen, "the script has more than %zu steps", cap);
            return -1;
        }
        profile_apdu_set(&steps[(*n)++], s->label, s->header, data, dlen, s->expect_sw, secret);
        mbedtls_platform_zeroize(data, sizeof data);
    }
    return 0;
}

/* "12/31 steps: 9000*11 6A80": the status words of a run, for the history. */
static void step_results(const uint16_t *sws, size_t answered, size_t total, char *out,
                         size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "%zu/%zu steps:", answered, total);
    for (size_t i = 0; i < answered && len < cap;) {
        size_t k = i;
        while (k < answered && sws[k] == sws[i])
            k++;
        if (k - i > 1)
            len += (size_t)snprintf(out + len, cap - len, " %04X*%zu", sws[i], k - i);
        else
            len += (size_t)snprintf(out + len, cap - len, " %04X", sws[i]);
        i = k;
    }
}

/* ---- reading a card's identity ---------------------------------------------------------- */

/* Sends one readout command; on the expected status word copies the data. */
static int readout(struct cardop *c, const char *what, const struct ct_command *cmd,
                   uint8_t *out, size_t cap, size_t *len)
{
    uint8_t r[CT_APDU_MAX + 2];
    size_t rlen = 0;
    char terr[256];
    if (transport_exchange(c->t, cmd->apdu, cmd->len, r, sizeof r, &rlen, terr,
                           sizeof terr) != 0) {
        snprintf(c->err, sizeof c->err, "%s on %s: %s", what, c->name, terr);
        return CARDOP_E_TRANSPORT;
    }
    c->apdus++;
    c->sw = (uint16_t)(r[rlen - 2] << 8 | r[rlen - 1]);
    if (c->sw != cmd->expect_sw) {
        snprintf(c->err, sizeof c->err, "%s on %s: the card answered %04X, not %04X", what,
                 c->name, c->sw, cmd->expect_sw);
        return CARDOP_E_SW;
    }
    *len = rlen - 2 < cap ? rlen - 2 : cap;
    memcpy(out, r, *len);
    return 0;
}

int issue_read_identity(struct idb *db, struct cardop *card, char *identity, size_t cap,
                        char card_type[CT_NAME_MAX + 1], char *err, size_t errlen)
{
    struct ct_type_readout ro[CT_MAX_READOUTS];
    size_t nro = 0;
    if (idb_type_readouts(db, ro, CT_MAX_READOUTS, &nro, err, errlen) != IDB_OK)
        return -1;
    char type[CT_NAME_MAX + 1] = "", idro[CT_NAME_MAX + 1] = "", last[CARDOP_ERR_LEN] = "";
    for (size_t i = 0; i < nro && type[0] == '\0'; i++) {
        uint8_t v[CT_APDU_MAX];
        size_t vlen = 0;
        char what[64], cerr[256];
        snprintf(what, sizeof what, "type readout %.32s", ro[i].name);
        int rc = readout(card, what, &ro[i].cmd, v, sizeof v, &vlen);
        if (rc == CARDOP_E_TRANSPORT) {
            snprintf(err, errlen, "%s", card->err);
            return -1;
        }
        if (rc != 0) {
            snprintf(last, sizeof last, "%s", card->err);
            continue;
        }
        if (idb_correlate(db, ro[i].name, v, vlen, type, idro, cerr, sizeof cerr) != IDB_OK) {
            type[0] = '\0';
            snprintf(last, sizeof last, "type readout %.32s: %.200s", ro[i].name, cerr);
        }
    }
    if (type[0] == '\0') {
        snprintf(err, errlen, "unknown card type on %s: no type readout answered a value of "
                 "the correlation table%s%s", card->name, last[0] ? " (last: " : "",
                 last[0] ? last : "");
        if (last[0])
            snprintf(err + strlen(err), errlen - strlen(err), ")");
        return -1;
    }
    struct ct_identity_readout ir;
    if (idb_identity_readout_get(db, idro, &ir, err, errlen) != IDB_OK)
        return -1;
    uint8_t data[CT_APDU_MAX];
    size_t dlen = 0;
    for (size_t i = 0; i < ir.nsteps; i++) {
        char what[80];
        snprintf(what, sizeof what, "identity readout %s step %zu", ir.name, i + 1);
        if (readout(card, what, &ir.steps[i], data, sizeof data, &dlen) != 0) {
            snprintf(err, errlen, "unreadable identity (card type %s): %s", type, card->err);
            return -1;
        }
    }
    if (ct_decode_identity(ir.encoding, data, dlen, identity, cap) != 0) {
        snprintf(err, errlen, "unreadable identity (card type %s): the %zu bytes read are not "
                 "%s", type, dlen, ct_encoding_name(ir.encoding));
        return -1;
    }
    if (card_type != NULL)
        snprintf(card_type, CT_NAME_MAX + 1, "%s", type);
    return 0;
}

void issue_file_name(const char *identity, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *c = identity; *c != '\0' && n + 1 < cap; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || (*c == '.' && n > 0);
        out[n++] = ok ? *c : '_'; /* no hidden file, no ".." */
    }
    if (cap > 0)
        out[n] = '\0';
}

/* ---- card face and stripe --------------------------------------------------------------- */

int issue_print(struct idb *db, const struct idb_record *r, const char *design,
                const char *face_png, const char *stripe_file, char *err, size_t errlen)
{
    struct ct_type *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = idb_type_get(db, r->card_type, t, err, errlen) == IDB_OK ? 0 : -1;
    const char *holder = idb_record_item(r, "holder");
    const char *member = idb_record_item(r, "member");
    const char *expiry = idb_record_item(r, "expiry");
    if (member == NULL)
        member = r->identity;
    if (rc == 0 && face_png != NULL) {
        const char *dn = design != NULL && design[0] ? design : r->design[0] ? r->design
                                                                            : t->design;
        struct cardface_design d;
        struct cardface_fields f = { .holder = holder != NULL ? holder : "",
                                     .member = member,
                                     .expiry = expiry,
                                     .issue_count = r->issue_count,
                                     .card_type = r->card_type };
        rc = idb_design_get(db, dn, &d, err, errlen) == IDB_OK ? 0 : -1;
        if (rc == 0)
            rc = cardface_render_png(&d, &f, face_png, err, errlen);
    }
    if (rc == 0 && stripe_file != NULL) {
        char pan[24], t1[96], t2[48];
        struct stripe_input in = { .pan = pan, .holder = holder, .expiry = expiry };
        if (t->stripe_iin[0] == '\0') {
            snprintf(err, errlen, "card type %s has no magnetic stripe (no stripe_iin)",
                     t->name);
            rc = -1;
        } else if (holder == NULL || expiry == NULL) {
            snprintf(err, errlen, "record %s needs a holder and an expiry for the stripe",
                     r->identity);
            rc = -1;
        }
        /* The account number is the member number's last digits that fit a 19-digit PAN
         * beside the IIN and the check digit. */
        size_t fit = STRIPE_PAN_MAX - 1 - strlen(t->stripe_iin), mlen = strlen(member);
        if (rc == 0)
            rc = stripe_pan(t->stripe_iin, member + (mlen > fit ? mlen - fit : 0), pan,
                            sizeof pan, err, errlen);
        if (rc == 0)
            rc = stripe_tracks(&in, t1, sizeof t1, t2, sizeof t2, err, errlen);
        if (rc == 0)
            rc = stripe_write_file(stripe_file, t1, t2, err, errlen);
    }
    free(t);
    return rc;
}

/* ---- issuance --------------------------------------------------------------------------- */

/* What check_and_claim decided; the caller commits all but CLAIM_REFUSED. */
enum claim {
    CLAIM_OK,       /* the card is claimed (pending): personalize it */
    CLAIM_FINISHED, /* an interrupted run on this card was finished and recorded */
    CLAIM_SPOILED,  /* an interrupted run's card was spoiled and recorded */
    CLAIM_REFUSED,  /* nothing to keep: roll back */
};

struct issue_run {
    const struct issue_params *p;
    struct cardop *card;
    struct issue_result *res;
    struct idb_record rec;
    struct ct_type *type;
    struct profile_apdu *steps; /* the expanded script, CT_MAX_STEPS entries */
    uint8_t lcs;
    char *err;
    size_t errlen;
};

static void hex_serial(const uint8_t s[IDB_SERIAL_LEN], char out[2 * IDB_SERIAL_LEN + 1])
{
    hex_encode(s, IDB_SERIAL_LEN, 0, out, 2 * IDB_SERIAL_LEN + 1);
}

/* Terminates a card that failed its script so it cannot pass for a good one. Before the card
 * is operational no PIN is needed; after, the issuer's admin PIN is verified first. */
static bool spoil(struct issue_run *r, char *note, size_t cap)
{
    struct cardop *c = r->card;
    if (cardop_terminate(c) == 0)
        return true;
    if (c->sw == SW_CONDITIONS_NOT_SATISFIED) {
        uint8_t lcs = 0;
        if (cardop_life_cycle(c, &lcs) == 0 && lcs == LCS_TERMINATED)
            return true;
    }
    const struct secrets *s = r->p->issuer;
    if (c->sw == SW_SECURITY_STATUS && s != NULL && s->admin.len > 0 &&
        cardop_verify(c, PIN_REF_ADMIN, s->admin.v, s->admin.len) == 0 &&
        cardop_terminate(c) == 0)
        return true;
    snprintf(note, cap, "%s", c->err);
    return false;
}

/* Records the end of a failed run: pending cleared, the failure in the history. In the
 * caller's transaction when one is open, else in one of its own. */
static void record_failure(struct issue_run *r, enum ct_role role, const char *event,
                           const char *detail)
{
    char e2[256];
    struct idb *db = r->p->db;
    bool own = !idb_in_transaction(db);
    if (own && idb_begin(db, e2, sizeof e2) != IDB_OK)
        return;
    if (idb_record_clear_pending(db, r->rec.id, e2, sizeof e2) != IDB_OK ||
        idb_history_add(db, r->rec.id, event, r->res->serial, ct_role_name(role),
                        r->type->name[0] ? r->type->name : r->rec.card_type, detail,
                        r->p->operator_name, e2, sizeof e2) != IDB_OK ||
        (own && idb_commit(db, e2, sizeof e2) != IDB_OK))
        idb_rollback(db);
}

/* Marks the record after a card of role passed its script: in the caller's transaction when
 * one is open, else in one of its own. */
static int record_success(struct issue_run *r, enum ct_role role_of_card, const char *detail)
{
    struct idb *db = r->p->db;
    const char *role = ct_role_name(role_of_card);
    const char *design = r->p->design != NULL ? r->p->design : r->rec.design;
    bool own = !idb_in_transaction(db);
    int rc = own ? idb_begin(db, r->err, r->errlen) : IDB_OK;
    if (rc == IDB_OK)
        rc = role_of_card == CT_ORIGINAL
                 ? idb_record_mark_issued(db, r->rec.id, r->res->serial, r->type->name, design,
                                          r->err, r->errlen)
                 : idb_record_mark_backup(db, r->rec.id, r->err, r->errlen);
    if (rc == IDB_OK)
        rc = idb_history_add(db, r->rec.id, r->res->resumed ? "issued-resumed" : "issued",
                             r->res->serial, role, r->type->name, detail,
                             r->p->operator_name, r->err, r->errlen);
    if (rc == IDB_OK && own)
        rc = idb_commit(db, r->err, r->errlen);
    if (rc != IDB_OK) {
        if (own)
            idb_rollback(db);
        return -1;
    }
    r->res->issue_count = role_of_card == CT_ORIGINAL ? r->rec.issue_count + 1
                                                    : r->rec.backup_count + 1;
    snprintf(r->res->card_type, sizeof r->res->card_type, "%s", r->type->name);
    snprintf(r->res->design, sizeof r->res->design, "%s",
             design[0] ? design : r->type->design);
    return 0;
}

/* A card pending from an interrupted run is in the reader again: if it completed its script
 * (operational, and it reads back as this record), record it; else spoil it. Runs inside the
 * claim transaction. Returns CLAIM_FINISHED when the card was recorded, CLAIM_OK when it is
 * still blank (the run starts over on it), CLAIM_SPOILED when it was spoiled, CLAIM_REFUSED
 * on a database error. */
static int finish_pending(struct issue_run *r)
{
    struct idb *db = r->p->db;
    char serial[2 * IDB_SERIAL_LEN + 1];
    hex_serial(r->res->serial, serial);
    enum ct_role role = r->rec.pending_role;
    if (r->lcs == LCS_CREATION)
        return CLAIM_OK;
    if (r->lcs == LCS_OPERATIONAL) {
        char identity[IDB_IDENTITY_MAX + 1], type[CT_NAME_MAX + 1], why[512];
        if (issue_read_identity(db, r->card, identity, sizeof identity, type, why,
                                sizeof why) == 0 &&
            strcmp(identity, r->rec.identity) == 0) {
            r->res->resumed = true;
            if (idb_type_get(db, type, r->type, r->err, r->errlen) != IDB_OK ||
                record_success(r, role, "completed before the previous run was "
                               "interrupted") != 0)
                return CLAIM_REFUSED;
            return CLAIM_FINISHED;
        }
    }
    char note[CARDOP_ERR_LEN] = "", detail[512];
    bool done = r->lcs == LCS_TERMINATED || spoil(r, note, sizeof note);
    r->res->spoiled = true;
    snprintf(detail, sizeof detail, "interrupted during personalization%s%s",
             done ? "" : "; could not terminate it: ", note);
    record_failure(r, role, "spoiled", detail);
    snprintf(r->err, r->errlen, "card %s was left part-personalized by an interrupted run and "
             "is spoiled%s; issue %s again on a blank card", serial,
             done ? " (terminated)" : " (could not terminate it)", r->rec.identity);
    return CLAIM_SPOILED;
}

/* The checks of the card and the script: the card is blank, the type and design exist, and
 * the script expands with the record's items and the issuer's secrets into steps. Touches
 * neither card nor issuance file. Returns 0 or -1 with a message. */
static int prepare_card(struct issue_run *r, struct profile_apdu *steps, size_t cap, size_t *n)
{
    const struct issue_params *p = r->p;
    struct idb *db = p->db;
    char serial[2 * IDB_SERIAL_LEN + 1];
    hex_serial(r->res->serial, serial);
    if (r->lcs != LCS_CREATION) {
        snprintf(r->err, r->errlen, "card %s is not blank (life cycle %02X, not 01 creation)",
                 serial, r->lcs);
        return -1;
    }
    const char *tname = p->card_type != NULL ? p->card_type : r->rec.card_type;
    if (idb_type_get(db, tname, r->type, r->err, r->errlen) != IDB_OK)
        return -1;
    if (p->design != NULL) {
        struct cardface_design d;
        if (idb_design_get(db, p->design, &d, r->err, r->errlen) != IDB_OK)
            return -1;
    }
    struct item_source src = {
        .type = r->type,
        .rec = &r->rec,
        .role = p->role,
        .issue_count = p->role == CT_ORIGINAL ? r->rec.issue_count + 1 : r->rec.issue_count,
        .issuer = p->issuer,
    };
    if (build_script(&src, steps, cap, n, r->err, r->errlen) != 0)
        return -1;
    return 0;
}

/* Everything that can be refused before the card is touched, with the write lock held. */
static enum claim check_and_claim(struct issue_run *r, struct profile_apdu *steps, size_t cap,
                           size_t *n)
{
    const struct issue_params *p = r->p;
    struct idb *db = p->db;
    char serial[2 * IDB_SERIAL_LEN + 1];
    hex_serial(r->res->serial, serial);
    if (idb_record_by_identity(db, p->identity, &r->rec, r->err, r->errlen) != IDB_OK)
        return CLAIM_REFUSED;
    struct idb_claim held;
    int held_rc = idb_record_claim(db, r->rec.id, &held, r->err, r->errlen);
    if (held_rc == IDB_OK)
        snprintf(r->err, r->errlen, "record %s is claimed by branch %s (issue %u): that "
                 "branch confirms or aborts it, or its lease expires", p->identity,
                 held.branch, held.issue_number);
    if (held_rc != IDB_E_NOTFOUND)
        return CLAIM_REFUSED;
    if (r->rec.has_pending) {
        if (memcmp(r->rec.pending_serial, r->res->serial, IDB_SERIAL_LEN) == 0) {
            enum claim c = finish_pending(r);
            if (c != CLAIM_OK)
                return c;
        } else if (!p->abandon_pending) {
            char other[2 * IDB_SERIAL_LEN + 1];
            hex_serial(r->rec.pending_serial, other);
            snprintf(r->err, r->errlen, "record %s has card %s pending from an interrupted "
                     "run: put that card in the reader to finish it, or give "
                     "--abandon-pending to record it as spoiled", p->identity, other);
            return CLAIM_REFUSED;
        } else {
            char e2[256];
            if (idb_history_add(db, r->rec.id, "abandoned", r->rec.pending_serial,
                                ct_role_name(r->rec.pending_role), r->rec.card_type,
                                "pending card abandoned by the operator; treat it as spoiled",
                                p->operator_name, e2, sizeof e2) != IDB_OK ||
                idb_record_clear_pending(db, r->rec.id, e2, sizeof e2) != IDB_OK) {
                snprintf(r->err, r->errlen, "%s", e2);
                return CLAIM_REFUSED;
            }
        }
    }
    if (p->role == CT_ORIGINAL && r->rec.issued) {
        snprintf(r->err, r->errlen, "record %s is already issued (issuance count %u): a new "
                 "card for it is a reissue", p->identity, r->rec.issue_count);
        return CLAIM_REFUSED;
    }
    if (p->role == CT_ORIGINAL && !p->reissue && r->rec.issue_count > 0) {
        snprintf(r->err, r->errlen, "record %s has a reissue in progress (issuance count %u): "
                 "finish it with 'icissue reissue', which also terminates the old card",
                 p->identity, r->rec.issue_count);
        return CLAIM_REFUSED;
    }
    if (p->role == CT_BACKUP && r->rec.issue_count == 0) {
        snprintf(r->err, r->errlen, "record %s has no original card yet: issue the original "
                 "first", p->identity);
        return CLAIM_REFUSED;
    }
    if (prepare_card(r, steps, cap, n) != 0)
        return CLAIM_REFUSED;
    if (idb_record_set_pending(db, r->rec.id, r->res->serial, p->role, r->err, r->errlen) !=
            IDB_OK ||
        idb_history_add(db, r->rec.id, "personalizing", r->res->serial, ct_role_name(p->role),
                        r->type->name, "", p->operator_name, r->err, r->errlen) != IDB_OK)
        return CLAIM_REFUSED;
    return CLAIM_OK;
}

/* Sets up r for the card behind card: buffers, the card's serial and life cycle. Returns 0 or
 * -1 with a message; run_end is due either way. */
static int run_begin(struct issue_run *r, const struct issue_params *p, struct cardop *card,
                     struct issue_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    *r = (struct issue_run){ .p = p, .card = card, .res = res, .err = err, .errlen = errlen };
    r->type = calloc(1, sizeof *r->type);
    r->steps = calloc(CT_MAX_STEPS, sizeof *r->steps);
    if (r->type == NULL || r->steps == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cardop_serial(card, res->serial) != 0 || cardop_life_cycle(card, &r->lcs) != 0) {
        snprintf(err, errlen, "%s", card->err);
        return -1;
    }
    return 0;
}

/* Frees and wipes what run_begin and the run set up (the script holds PINs). */
static void run_end(struct issue_run *r)
{
    if (r->steps != NULL) {
        profile_wipe(r->steps, CT_MAX_STEPS);
        free(r->steps);
    }
    free(r->type);
    idb_record_wipe(&r->rec);
}

int issue_check(const struct issue_params *p, struct cardop *card, char *err, size_t errlen)
{
    struct issue_result res;
    struct issue_run r;
    size_t n = 0;
    int rc = -1;
    if (run_begin(&r, p, card, &res, err, errlen) == 0 &&
        idb_record_by_identity(p->db, p->identity, &r.rec, err, errlen) == IDB_OK)
        rc = prepare_card(&r, r.steps, CT_MAX_STEPS, &n);
    run_end(&r);
    return rc;
}

int issue_card(const struct issue_params *p, struct cardop *card, struct issue_result *res,
               char *err, size_t errlen)
{
    struct issue_run r;
    uint16_t sws[CT_MAX_STEPS] = { 0 };
    size_t n = 0, done = 0;
    int rc = -1;
    if (run_begin(&r, p, card, res, err, errlen) != 0)
        goto out;
    struct profile_apdu *steps = r.steps;
    if (idb_begin(p->db, err, errlen) != IDB_OK)
        goto out;
    enum claim claim = check_and_claim(&r, steps, CT_MAX_STEPS, &n);
    if (claim == CLAIM_REFUSED) {
        idb_rollback(p->db);
        goto out;
    }
    if (idb_commit(p->db, err, errlen) != IDB_OK) {
        idb_rollback(p->db);
        goto out;
    }
    if (claim != CLAIM_OK) {
        rc = claim == CLAIM_FINISHED ? 0 : -1;
        goto print;
    }
    /* From here on the record says this card is pending: a kill at any instant is finished
     * or spoiled by the next run on this card. */
    char why[512], detail[1536];
    if (profile_send(card, steps, n, p->progress, p->ctx, sws, &done, why, sizeof why) != 0) {
        char note[CARDOP_ERR_LEN] = "";
        size_t answered = done < n && sws[done] != 0 ? done + 1 : done;
        bool terminated = spoil(&r, note, sizeof note);
        res->spoiled = true;
        step_results(sws, answered, n, detail, sizeof detail);
        snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "; %s%s%s", why,
                 terminated ? "" : "; could not terminate the card: ", note);
        record_failure(&r, p->role, "spoiled", detail);
        snprintf(err, errlen, "%s; the card is spoiled%s", why,
                 terminated ? " (terminated)" : " (could not terminate it)");
        goto out;
    }
    step_results(sws, done, n, detail, sizeof detail);
    rc = record_success(&r, p->role, detail);
print:
    if (rc == 0 && (p->face_png != NULL || p->stripe_file != NULL)) {
        char e2[512];
        if (idb_record_by_identity(p->db, p->identity, &r.rec, e2, sizeof e2) != IDB_OK ||
            issue_print(p->db, &r.rec, p->design, p->face_png, p->stripe_file, e2,
                        sizeof e2) != 0) {
            snprintf(err, errlen, "the card is issued, but printing failed: %s", e2);
            rc = -1;
        }
    }
out:
    run_end(&r);
    return rc;
}

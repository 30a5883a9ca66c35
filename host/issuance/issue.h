/* Issuing one card from a record of the issuance file: the card-type script for a role is
 * expanded with the record's items, run on a blank card with every status word checked, and
 * the record is updated in one transaction with the card's success.
 *
 * Interruption safety (docs/issuance.md, "Interrupted runs"): before the first command the
 * record is marked "pending" with the card's serial, durably. A rerun on the same card finishes
 * the work: a card that completed its script (operational, its identity readable) is recorded
 * as issued; a partly personalized one is spoiled. A run on another card while one is pending
 * is refused unless the pending card is abandoned explicitly. So the flag and the count always
 * match the good cards, whatever instant the process is killed at. */
#ifndef ISSUE_H
#define ISSUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_ops.h"
#include "cardtype.h"
#include "idb.h"
#include "secrets.h"

struct issue_params {
    struct idb *db;
    const char *identity;          /* the record */
    enum ct_role role;
    const char *card_type;         /* NULL: the record's (a reissue may choose another) */
    const char *design;            /* NULL: the record's, else the card type's */
    const struct secrets *issuer;  /* the issuer's puk and admin (may be NULL when the script
                                      does not use them) */
    const char *operator_name;     /* for the history */
    const char *face_png;          /* NULL: no card face rendered */
    const char *stripe_file;       /* NULL: no stripe data written */
    bool abandon_pending;          /* another card is pending: record it as spoiled, go on */
    bool reissue;                  /* set by reissue_card: an original for a record whose
                                      flag a reissue reset; otherwise such a record is refused
                                      (its old card would stay live) */
    void (*progress)(void *ctx, const char *line); /* one line per step; may be NULL */
    void *ctx;
};

struct issue_result {
    uint8_t serial[IDB_SERIAL_LEN];   /* the new card */
    unsigned issue_count;             /* original: the record's count now; backup: backups */
    char card_type[CT_NAME_MAX + 1];
    char design[CT_NAME_MAX + 1];
    bool resumed;                     /* an interrupted run on this card was finished */
    bool spoiled;                     /* the card was spoiled (the call failed) */
};

/* Issues the card behind card. Returns 0, or -1 with a message in err; the record is then
 * unchanged (a failure is recorded in the history only), and res->spoiled tells whether the
 * card was spoiled (terminated so it cannot pass for a good card). Refusals that leave card
 * and issuance file untouched: unknown record or type, record already issued (original role),
 * card not blank, a record lacking an item the script needs, a missing issuer secret. */
int issue_card(const struct issue_params *p, struct cardop *card, struct issue_result *res,
               char *err, size_t errlen);

/* The checks issue_card makes of the card and the script, without touching either the card
 * or the issuance file: the card is blank, the card type and design exist, and the script
 * expands with the record's items and the issuer's secrets. A reissue runs it before it
 * resets the record's flag. Returns 0, or -1 with a message. */
int issue_check(const struct issue_params *p, struct cardop *card, char *err, size_t errlen);

/* Reads the identity of the card behind card: the card-type readouts in priority order until
 * one answers a value of the correlation table, then that type's identity readout. card_type
 * gets the type (may be NULL). Returns 0, or -1 with a message: "unknown card type" when no
 * readout value correlates, "unreadable identity" when the identity readout fails. */
int issue_read_identity(struct idb *db, struct cardop *card, char *identity, size_t cap,
                        char card_type[CT_NAME_MAX + 1], char *err, size_t errlen);

/* An identity as a file name (reissuing file, card faces of a batch): characters other than
 * letters, digits, '-', '_' and a '.' that is not first become '_'. out gets cap bytes. */
void issue_file_name(const char *identity, char *out, size_t cap);

/* Renders the card face and writes the stripe data of a record (either path may be NULL). */
int issue_print(struct idb *db, const struct idb_record *r, const char *design,
                const char *face_png, const char *stripe_file, char *err, size_t errlen);

#endif

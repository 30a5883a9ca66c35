/* Reissuing a card: the old card (or, when it is lost, the identity given by the operator)
 * names the record; the record is extracted into a reissuing file, its flag set to unissued,
 * a new card issued (issue.h) only while the flag says unissued, the count incremented and
 * reported, and the old card terminated when it is present and answers.
 *
 * Reruns are safe at every point: the record keeps the serial of its current card, so an old
 * card that was already replaced is recognized and only terminated; an interrupted issuance is
 * finished or its card spoiled as issue.h describes. */
#ifndef REISSUE_H
#define REISSUE_H

#include <stdbool.h>
#include <stddef.h>

#include "atomicfile.h"
#include "card_ops.h"
#include "issue.h"

struct reissue_params {
    struct issue_params issue;     /* identity: NULL to read it from the old card */
    struct cardop *old_card;       /* NULL: the card is lost (issue.identity given) */
    const char *reissue_file;      /* where the record is extracted (JSON, mode 0600); NULL:
                                      reissue-IDENTITY.json next to the issuance file
                                      (on PostgreSQL, in the current directory) */
    bool keep_old_card;            /* read the old card but leave it live: a branch terminates
                                      it once the central system confirmed the new card
                                      (reissue_end_old_card) */
};

struct reissue_result {
    struct issue_result issued;
    char identity[IDB_IDENTITY_MAX + 1];
    bool already_done;             /* the old card had been replaced before this run */
    bool have_old_serial;          /* the old card answered its serial */
    uint8_t old_serial[IDB_SERIAL_LEN];
    bool old_was_terminated;       /* the old card was terminated before this run */
    char reissue_file[ATOMICFILE_PATH_MAX]; /* where the record was extracted ("" if not) */
    bool old_terminated;           /* the old card is terminated now */
    char old_note[CARDOP_ERR_LEN];   /* why the old card was not terminated, when it was not */
};

/* Names the record: reads the identity (and serial, life cycle) of the old card, or takes
 * p->issue.identity for a lost card; fills res->identity and the old-card fields (res is zeroed
 * first). A terminated old card is found by its serial in p->issue.db. Returns 0, or -1 with a
 * message. reissue_card starts with it. */
int reissue_identify(const struct reissue_params *p, struct reissue_result *res, char *err,
                     size_t errlen);

/* Terminates the old card of a finished reissue and records it in the history of the record
 * res->identity (after keep_old_card). Sets res->old_terminated or res->old_note. */
void reissue_end_old_card(const struct reissue_params *p, struct reissue_result *res);

/* reissue_card after reissue_identify filled res (its identity and old-card fields are kept,
 * the rest is filled): a branch identifies the card once, claims, then reissues. */
int reissue_identified(const struct reissue_params *p, struct cardop *new_card,
                       struct reissue_result *res, char *err, size_t errlen);

/* reissue_identify, then reissue_identified. Returns 0, or -1 with a message in err. */
int reissue_card(const struct reissue_params *p, struct cardop *new_card,
                 struct reissue_result *res, char *err, size_t errlen);

#endif

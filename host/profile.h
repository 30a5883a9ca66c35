/* The default card profile of icdup, as data: a table of command APDUs, each with the status
 * word it must get (docs/keys.md "Key files", docs/clone.md "Personalization"). `icdup init`
 * runs it on a blank card; the same table is meant to become an issuance script (instruction,
 * additional data item, expected status word).
 *
 *   PUT DATA card type; CHANGE REFERENCE DATA P1 01 for the user PIN, the PUK, the admin PIN;
 *   DF 4B00 (create: admin, delete: never); share EFs 4B01..4B0N (internal, 32 bytes, never
 *   updated or deleted by file commands: SET SHARE writes them); 4B10 key pair (internal, 97);
 *   4B11 key state (internal, 48, update never) and its policy byte when re-export is allowed;
 *   4B12 binding key (internal, 97); 4B20 partner's public key (working EF, 65, read always,
 *   update admin); SET SHARE of any share given at issuance; SELECT MF; ACTIVATE FILE (the card
 *   becomes operational). */
#ifndef PROFILE_H
#define PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_ops.h"
#include "secrets.h"

#define PROFILE_DEFAULT_SHARES 3u
#define PROFILE_DEFAULT_CARD_TYPE "ICDUP-1"
#define PROFILE_MAX_STEPS 40u
#define PROFILE_APDU_MAX 261u /* a short APDU: header, Lc, 255 bytes, Le */

struct profile_options {
    unsigned shares;          /* N, 1..8 */
    bool allow_reexport;      /* policy bit 0 of 4B11: a second export is allowed */
    const char *card_type;    /* 1..32 bytes; NULL: PROFILE_DEFAULT_CARD_TYPE */
    const struct secrets *secrets; /* pin, puk and admin required; share.i (i <= N) optional:
                                      set at issuance */
};

/* One concrete step: the APDU and the status word it must get. */
struct profile_apdu {
    const char *label;        /* e.g. "create share EF 4B02" */
    uint8_t apdu[PROFILE_APDU_MAX];
    size_t len;
    uint16_t expect_sw;
    bool secret;              /* the data field is a PIN or a share */
};

/* Sets a step: header, then Lc and data when dlen > 0 (1..255, the caller checks it fits). */
void profile_apdu_set(struct profile_apdu *a, const char *label, const uint8_t header[4],
                      const uint8_t *data, size_t dlen, uint16_t expect_sw, bool secret);

/* Expands the table for o into out (cap entries), *n set. Returns 0, or -1 with a message in
 * err (N outside 1..8, a PIN missing or of the wrong length, a card type of the wrong length,
 * cap too small). The caller wipes out (it holds PINs) with profile_wipe. */
int profile_build(const struct profile_options *o, struct profile_apdu *out, size_t cap,
                  size_t *n, char *err, size_t errlen);

/* Zeroes n expanded steps. */
void profile_wipe(struct profile_apdu *steps, size_t n);

/* Checks that the card behind c is blank (life cycle "creation"). Returns 0, or -1 with a
 * message in err ending with why ("init personalizes only a new card"). */
int profile_check_blank(struct cardop *c, const char *why, char *err, size_t errlen);

/* Sends n steps in order and checks each status word; stops at the first step that fails.
 * progress (may be NULL) gets "<card>: <label>: ok" per step; sws (may be NULL, n entries)
 * gets each answered status word (0: none); *done counts the steps that passed. Returns 0, or
 * a negative cardop_err with a message in err naming the step, what was expected and what the
 * card answered. Used by the default profile and by issuance scripts (host/issuance). */
int profile_send(struct cardop *c, const struct profile_apdu *steps, size_t n,
                 void (*progress)(void *ctx, const char *line), void *ctx, uint16_t *sws,
                 size_t *done, char *err, size_t errlen);

/* Personalizes the card behind c: checks that it is blank (life cycle "creation"), then sends
 * every step and checks its status word. progress (may be NULL) gets one line per step.
 * Returns 0, or a negative cardop_err / -1 with a message in err naming the step, what was
 * expected and what the card answered. */
int profile_run(struct cardop *c, const struct profile_options *o,
                void (*progress)(void *ctx, const char *line), void *ctx, char *err,
                size_t errlen);

#endif

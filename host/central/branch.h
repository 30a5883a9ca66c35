/* A reissue at a branch office through the central issuance system (docs/central.md, "Branch
 * reissue"). The branch's own issuance file holds the card types, readouts and correlation table
 * (to read the old card and to personalize the new one) and, once claimed, a copy of the record;
 * the central system holds the one true record and its issuance count.
 *
 *   1. identify the record from the old card (or --id for a lost card);
 *   2. claim it at the central system (flag unissued there, a lease for this branch);
 *   3. copy the record into the branch file and reissue locally (reissue.h: reissuing file,
 *      interrupted-run safety of issue.h), the old card left live;
 *   4. confirm at the central system with the new card's serial: its count goes up there;
 *   5. terminate the old card.
 *
 * A claim file next to the branch file (central-claim-IDENTITY.json, mode 0600, written before
 * each request goes out) keeps the request ids and the claim, so a run killed at any point is
 * reconciled by the same command: the central system answers a repeated request id with its
 * first answer, and the branch file shows how far the card got. A claim the central system
 * released (lease expired, aborted) before the confirm: the new card is spoiled and nothing is
 * counted. */
#ifndef CENTRAL_BRANCH_H
#define CENTRAL_BRANCH_H

#include <stddef.h>

#include <jansson.h>

#include "reissue.h"

/* How the branch reaches the central system: one request out, its response back (the TLS client
 * of client.h, or the handler itself in tests). Returns 0 with *resp (the caller owns it)
 * whatever its status, or -1 with a message when no response arrived. */
struct central_link {
    int (*call)(void *ctx, json_t *req, json_t **resp, char *err, size_t errlen);
    void *ctx;
};

struct branch_params {
    struct reissue_params reissue;   /* issue.db: the branch's file; keep_old_card is implied */
    const struct central_link *central;
    unsigned lease_seconds;          /* 0: the central system's default */
};

/* Returns 0 (res as reissue_card fills it; res->issued.issue_count is the central count), or -1
 * with a message that says whether running the same command again finishes the work. */
int branch_reissue(const struct branch_params *p, struct cardop *new_card,
                   struct reissue_result *res, char *err, size_t errlen);

#endif

/* Internal interface between the dispatcher (card.c) and the command handlers (cmd_*.c). */
#ifndef CMD_H
#define CMD_H

#include <stddef.h>
#include <stdint.h>

#include "apdu.h"
#include "card.h"
#include "fs.h"

/* Response under construction: handlers append to data (capacity cap) and return a card_err. */
struct rapdu {
    uint8_t *data;
    size_t len;
    size_t cap;
    uint8_t aux; /* extra value for the status word, e.g. tries left for 63Cx */
};

typedef int (*cmd_handler)(struct card *card, const struct capdu *cmd, struct rapdu *rsp);

/* Allowed ISO 7816-3 cases, as a bit mask (CMD_CASEn = 1 << n). */
#define CMD_CASE1 0x02u
#define CMD_CASE2 0x04u
#define CMD_CASE3 0x08u
#define CMD_CASE4 0x10u
/* Flags */
#define CMD_EXT_OK        0x01u /* extended Lc/Le accepted */
#define CMD_TERMINATED_OK 0x02u /* still answered after TERMINATE CARD USAGE */

struct cmd_entry {
    uint8_t cla;   /* CLA_ISO or CLA_PROPRIETARY (after removing channel/chaining bits) */
    uint8_t ins;
    uint8_t cases;
    uint8_t flags;
    cmd_handler handler;
};

/* Checks an access condition (AC_*) against the security state. Access conditions are
 * enforced from the operational state on; before it (personalization) they are not, per
 * ISO 7816-4. Returns 0 or CARD_E_SECURITY. */
int cmd_check_ac(const struct card *card, uint8_t ac);

/* True when the response buffer can take n more bytes. */
static inline int rsp_room(const struct rapdu *rsp, size_t n)
{
    return rsp->cap - rsp->len >= n;
}

/* Handlers (one file per command group). */
int cmd_select(struct card *, const struct capdu *, struct rapdu *);
int cmd_read_binary(struct card *, const struct capdu *, struct rapdu *);
int cmd_update_binary(struct card *, const struct capdu *, struct rapdu *);
int cmd_create_file(struct card *, const struct capdu *, struct rapdu *);
int cmd_delete_file(struct card *, const struct capdu *, struct rapdu *);
int cmd_activate_file(struct card *, const struct capdu *, struct rapdu *);
int cmd_deactivate_file(struct card *, const struct capdu *, struct rapdu *);
int cmd_verify(struct card *, const struct capdu *, struct rapdu *);
int cmd_change_ref_data(struct card *, const struct capdu *, struct rapdu *);
int cmd_reset_retry_counter(struct card *, const struct capdu *, struct rapdu *);
int cmd_get_data(struct card *, const struct capdu *, struct rapdu *);
int cmd_put_data(struct card *, const struct capdu *, struct rapdu *);
int cmd_get_challenge(struct card *, const struct capdu *, struct rapdu *);
int cmd_terminate_card(struct card *, const struct capdu *, struct rapdu *);
int cmd_set_share(struct card *, const struct capdu *, struct rapdu *);
int cmd_generate_key(struct card *, const struct capdu *, struct rapdu *);
int cmd_pso(struct card *, const struct capdu *, struct rapdu *);
int cmd_binding_key(struct card *, const struct capdu *, struct rapdu *);
int cmd_export_wrapped(struct card *, const struct capdu *, struct rapdu *);
int cmd_import_wrapped(struct card *, const struct capdu *, struct rapdu *);
int cmd_lock_export(struct card *, const struct capdu *, struct rapdu *);

/* GET DATA objects of the key store (DF10 key group, DF11 key state). Return 0 or < 0. */
int cmd_get_key_group(struct card *card, struct rapdu *rsp);
int cmd_get_key_state(struct card *card, struct rapdu *rsp);

/* Sets the card life cycle in NVM and in the cache. Returns 0 or < 0. */
int card_set_lcs(struct card *card, uint8_t lcs);

#endif

/* A card's identity and state as `icdup status` shows them, read and decoded without printing
 * (docs/commands.md GET DATA, docs/keys.md): a reset, SELECT MF, then GET DATA of
 *   DF01 serial, DF02 card type, DF03 life cycle, DF04 PIN status, DF05 file list,
 *   DF06 NVM usage, DF10 key group (cardop_key_group_decode), DF11 key state
 *   (cardop_key_state_decode).
 * Kept out of the CLI so that every front end (icdup, an issuance tool) reads and names things
 * the same way. Nothing here prints. */
#ifndef CARD_INFO_H
#define CARD_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* The GET DATA items, in the order they are read. */
enum card_info_index {
    CARD_INFO_SERIAL,
    CARD_INFO_TYPE,
    CARD_INFO_LCS,
    CARD_INFO_PINS,
    CARD_INFO_FILES,
    CARD_INFO_NVM,
    CARD_INFO_GROUP,
    CARD_INFO_KEY,
    CARD_INFO_ITEMS
};

/* Commands card_info_read sends after the reset: SELECT MF and one GET DATA per item. */
#define CARD_INFO_COMMANDS (CARD_INFO_ITEMS + 1)

struct card_info_item {
    uint16_t tag;       /* DO_CARD_SERIAL ... DO_KEY_STATE */
    const char *label;  /* "serial", "card type", ... "key state" */
    uint16_t sw;        /* the card's status word */
    uint8_t *data;      /* heap: the answer without its status word (also when refused) */
    size_t len;
};

struct card_info {
    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len;
    uint16_t select_sw;                    /* SELECT MF */
    struct card_info_item it[CARD_INFO_ITEMS];
    /* Commands the card refused: SELECT MF or an item not 9000. 6A88 for the card type (not
     * set), the key group and the key state (no key profile) is a state, not a refusal. */
    int refusals;
};

/* Resets the card behind t and reads every item. Returns 0 with ci filled (free it with
 * card_info_free), whatever status words the card gave; or -1 with a message in err when the
 * reader failed ("reset: ...", "SELECT MF: ...", "GET DATA DF04 (PIN status): ...") or memory
 * ran out ("out of memory"); ci then holds nothing to free. */
int card_info_read(struct transport *t, struct card_info *ci, char *err, size_t errlen);

/* Frees the items of ci (NULL and repeated calls are fine). */
void card_info_free(struct card_info *ci);

/* ---- decoding ----------------------------------------------------------------------- */

/* Name of an ISO 7816-4 life-cycle byte (a card's or a file's): "creation", "operational" ... */
const char *card_info_lcs_name(uint8_t lcs);

/* Name of an access condition: "always", "PIN", "admin", "never", else "0xNN" written to buf
 * (cap >= 5). */
const char *card_info_ac_name(uint8_t ac, char *buf, size_t cap);

/* DF04: one record of 4 bytes per PIN reference. */
#define CARD_INFO_PIN_REC_LEN 4u

struct card_info_pin {
    uint8_t ref;        /* PIN_REF_USER ... (name: cardop_pin_name) */
    bool set;
    bool blocked;       /* set, no tries left */
    uint8_t tries_left, max_tries;
};

void card_info_pin_decode(const uint8_t rec[CARD_INFO_PIN_REC_LEN], struct card_info_pin *p);

/* DF05: one record of 12 bytes per file. */
#define CARD_INFO_FILE_REC_LEN 12u

struct card_info_file {
    uint16_t fid, parent;   /* parent: the FID of its DF (0000 for the MF) */
    uint8_t fdb;            /* FDB_DF, FDB_WORKING_EF, FDB_INTERNAL_EF, else unknown */
    uint8_t lcs;
    uint16_t size;          /* EFs */
    uint8_t ac_read, ac_update, ac_delete; /* ac_update is "create" for a DF */
    uint8_t sfi;            /* 0: none */
};

void card_info_file_decode(const uint8_t rec[CARD_INFO_FILE_REC_LEN], struct card_info_file *f);

/* "MF", "DF", "working EF", "internal EF", or "file" for an unknown descriptor byte. */
const char *card_info_file_type(const struct card_info_file *f);

/* Index of the DF record (of n in recs) that is the parent of record i, or -1 for the MF and
 * for a record whose parent is not in the list. */
long card_info_file_parent(const uint8_t *recs, size_t n, size_t i);

/* DF06: NVM total, used and free bytes. */
struct card_info_nvm {
    uint32_t total, used, free;
};

/* Returns 0, or -1 when the answer is not 12 bytes. */
int card_info_nvm_decode(const uint8_t *data, size_t len, struct card_info_nvm *nvm);

#endif

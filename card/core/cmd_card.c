/* Card-level commands: GET DATA, PUT DATA, GET CHALLENGE, TERMINATE CARD USAGE. */
#include <string.h>

#include "card_err.h"
#include "card_rec.h"
#include "cmd.h"
#include "ins.h"
#include "layout.h"
#include "pin.h"

static int put_bytes(struct rapdu *rsp, const void *p, size_t n)
{
    if (!rsp_room(rsp, n))
        return CARD_E_INTERNAL;
    memcpy(rsp->data + rsp->len, p, n);
    rsp->len += n;
    return CARD_OK;
}

static int get_pin_status(struct card *card, struct rapdu *rsp)
{
    static const uint8_t refs[] = { PIN_REF_USER, PIN_REF_PUK, PIN_REF_ADMIN };
    for (size_t i = 0; i < sizeof refs; i++) {
        struct pin_status st;
        int rc = pin_status(&card->nvm, refs[i], &st);
        if (rc)
            return rc;
        uint8_t rec[4] = { st.ref, st.set, st.tries_left, st.max_tries };
        rc = put_bytes(rsp, rec, sizeof rec);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

/* One 12-byte record per file: FID, parent FID, FDB, LCS, size, AC x3, SFI. */
static int get_file_list(struct card *card, struct rapdu *rsp)
{
    for (uint8_t s = 0; s < CARD_FS_MAX_FILES; s++) {
        struct fs_file f, p;
        int rc = fs_load(&card->nvm, s, &f);
        if (rc == CARD_E_NOT_FOUND)
            continue;
        if (rc)
            return rc;
        uint16_t pfid = 0;
        if (f.parent != FS_NONE) {
            rc = fs_load(&card->nvm, f.parent, &p);
            if (rc)
                return rc;
            pfid = p.fid;
        }
        uint8_t rec[12];
        layout_put_u16(rec, f.fid);
        layout_put_u16(rec + 2, pfid);
        rec[4] = f.fdb;
        rec[5] = f.lcs;
        layout_put_u16(rec + 6, fs_is_df(&f) ? 0 : f.size);
        memcpy(rec + 8, f.ac, FS_AC_COUNT);
        rec[11] = f.sfi;
        rc = put_bytes(rsp, rec, sizeof rec);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

static int get_nvm_info(struct card *card, struct rapdu *rsp)
{
    uint32_t used, free_bytes;
    int rc = fs_usage(&card->nvm, &used, &free_bytes);
    if (rc)
        return rc;
    uint8_t rec[12];
    layout_put_u32(rec, used + free_bytes);
    layout_put_u32(rec + 4, used);
    layout_put_u32(rec + 8, free_bytes);
    return put_bytes(rsp, rec, sizeof rec);
}

int cmd_get_data(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    uint16_t tag = (uint16_t)((cmd->p1 << 8) | cmd->p2);
    struct card_rec rec;
    int rc;
    switch (tag) {
    case DO_CARD_SERIAL:
    case DO_CARD_TYPE:
        rc = card_rec_load(&card->nvm, &rec);
        if (rc)
            return rc;
        if (tag == DO_CARD_SERIAL)
            return put_bytes(rsp, rec.serial, sizeof rec.serial);
        if (rec.type_len == 0)
            return CARD_E_REF_NOT_FOUND;
        return put_bytes(rsp, rec.type, rec.type_len);
    case DO_CARD_LCS:
        return put_bytes(rsp, &card->lcs, 1);
    case DO_PIN_STATUS:
        return get_pin_status(card, rsp);
    case DO_FILE_LIST:
        return get_file_list(card, rsp);
    case DO_NVM_INFO:
        return get_nvm_info(card, rsp);
    case DO_KEY_GROUP:
        return cmd_get_key_group(card, rsp);
    case DO_KEY_STATE:
        return cmd_get_key_state(card, rsp);
    default:
        return CARD_E_REF_NOT_FOUND;
    }
}

int cmd_put_data(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    uint16_t tag = (uint16_t)((cmd->p1 << 8) | cmd->p2);
    if (tag != DO_CARD_TYPE)
        return CARD_E_REF_NOT_FOUND;
    int rc = cmd_check_ac(card, AC_ADMIN);
    if (rc)
        return rc;
    if (cmd->nc > CARD_REC_TYPE_MAX)
        return CARD_E_WRONG_DATA;
    struct card_rec rec;
    rc = card_rec_load(&card->nvm, &rec);
    if (rc)
        return rc;
    memset(rec.type, 0, sizeof rec.type);
    memcpy(rec.type, cmd->data, cmd->nc);
    rec.type_len = (uint8_t)cmd->nc;
    if (rec.lcs == LCS_CREATION)
        rec.lcs = LCS_INIT; /* personalization has begun */
    rc = nvm_begin(&card->nvm, 0);
    if (rc)
        return rc;
    rc = card_rec_stage(&card->nvm, &rec);
    if (rc) {
        nvm_abort(&card->nvm);
        return rc;
    }
    rc = nvm_commit(&card->nvm);
    if (rc == CARD_OK)
        card->lcs = rec.lcs;
    return rc;
}

int cmd_get_challenge(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    size_t n = cmd->ne < rsp->cap ? cmd->ne : rsp->cap;
    if (card->rng->fill(card->rng->ctx, rsp->data, n))
        return CARD_E_RNG;
    rsp->len = n;
    return CARD_OK;
}

int cmd_terminate_card(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    int rc = cmd_check_ac(card, AC_ADMIN);
    if (rc)
        return rc;
    rc = card_set_lcs(card, LCS_TERMINATED);
    if (rc == CARD_OK)
        memset(&card->sec, 0, sizeof card->sec);
    return rc;
}

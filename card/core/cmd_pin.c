/* PIN commands: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (ISO 7816-4 §11.5).
 * Every try at a secret goes through pin_verify, which commits the spent try first. */
#include "card_err.h"
#include "cmd.h"
#include "ins.h"
#include "pin.h"

/* The volatile "verified" flag of a reference that VERIFY can set, or NULL. */
static bool *verified_flag(struct card *card, uint8_t ref)
{
    if (ref == PIN_REF_USER)
        return &card->sec.pin_verified;
    if (ref == PIN_REF_ADMIN)
        return &card->sec.admin_verified;
    return NULL;
}

/* Maps a pin_verify mismatch to the 63Cx answer. */
static int tried(int rc, uint8_t tries_left, struct rapdu *rsp)
{
    if (rc == CARD_W_TRIES_LEFT)
        rsp->aux = tries_left;
    return rc;
}

int cmd_verify(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    bool *flag = verified_flag(card, cmd->p2);
    if (cmd->p1 != 0x00 && cmd->p1 != 0xFF)
        return CARD_E_P1P2;
    if (!flag)
        return CARD_E_REF_NOT_FOUND;
    if (cmd->p1 == 0xFF) {
        /* ISO 7816-4:2013: P1 = FF resets the verification status, no data. */
        if (cmd->nc)
            return CARD_E_WRONG_LENGTH;
        *flag = false;
        return CARD_OK;
    }
    struct pin_status st;
    int rc = pin_status(&card->nvm, cmd->p2, &st);
    if (rc)
        return rc;
    if (cmd->nc == 0) {
        /* No data: report the state without spending a try. */
        if (!st.set)
            return CARD_E_REF_UNUSABLE;
        if (*flag)
            return CARD_OK;
        if (st.tries_left == 0)
            return CARD_E_BLOCKED;
        rsp->aux = st.tries_left;
        return CARD_W_TRIES_LEFT;
    }
    if (cmd->nc > CARD_PIN_MAX_LEN)
        return CARD_E_WRONG_LENGTH;
    *flag = false; /* a failed or interrupted try never leaves an earlier success standing */
    uint8_t left = 0;
    rc = pin_verify(&card->nvm, cmd->p2, cmd->data, cmd->nc, &left);
    if (rc == CARD_OK)
        *flag = true;
    return tried(rc, left, rsp);
}

int cmd_change_ref_data(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    uint8_t ref = cmd->p2;
    if (cmd->p1 != 0x00 && cmd->p1 != 0x01)
        return CARD_E_P1P2;
    struct pin_status st;
    int rc = pin_status(&card->nvm, ref, &st);
    if (rc)
        return rc;
    if (cmd->p1 == 0x01) {
        /* New reference data only: to set it the first time, or during personalization. */
        if (st.set && card->lcs == LCS_OPERATIONAL)
            return CARD_E_CONDITIONS;
        return pin_set(&card->nvm, ref, cmd->data, cmd->nc);
    }
    /* Old || new: the card knows the old length, so it can split the field. */
    if (!st.set)
        return CARD_E_REF_UNUSABLE;
    size_t old_len = cmd->nc < st.len ? cmd->nc : st.len;
    uint8_t left = 0;
    rc = pin_verify(&card->nvm, ref, cmd->data, old_len, &left);
    if (rc)
        return tried(rc, left, rsp);
    rc = pin_set(&card->nvm, ref, cmd->data + old_len, cmd->nc - old_len);
    bool *flag = verified_flag(card, ref);
    if (rc == CARD_OK && flag)
        *flag = true;
    return rc;
}

int cmd_reset_retry_counter(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p2 != PIN_REF_USER)
        return CARD_E_REF_NOT_FOUND; /* only the user PIN has a resetting code */
    if (cmd->p1 > 0x03)
        return CARD_E_P1P2;
    bool with_puk = cmd->p1 == 0x00 || cmd->p1 == 0x01;
    bool with_new = cmd->p1 == 0x00 || cmd->p1 == 0x02;
    if ((cmd->nc == 0) != (cmd->p1 == 0x03))
        return CARD_E_WRONG_LENGTH;
    int rc;
    size_t puk_len = 0;
    if (with_puk) {
        struct pin_status puk;
        rc = pin_status(&card->nvm, PIN_REF_PUK, &puk);
        if (rc)
            return rc;
        if (!puk.set)
            return CARD_E_REF_UNUSABLE;
        puk_len = cmd->p1 == 0x01 || cmd->nc < puk.len ? cmd->nc : puk.len;
        uint8_t left = 0;
        rc = pin_verify(&card->nvm, PIN_REF_PUK, cmd->data, puk_len, &left);
        if (rc)
            return tried(rc, left, rsp);
    } else {
        rc = cmd_check_ac(card, AC_ADMIN);
        if (rc)
            return rc;
    }
    if (with_new)
        return pin_set(&card->nvm, PIN_REF_USER, cmd->data + puk_len, cmd->nc - puk_len);
    return pin_unblock(&card->nvm, PIN_REF_USER);
}

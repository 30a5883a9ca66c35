/* Card context, power events, answer-to-reset, and the APDU dispatcher: the one place where
 * internal results become ISO 7816-4 status words. */
#include "card.h"

#include <string.h>

#include "card_err.h"
#include "card_rec.h"
#include "cmd.h"
#include "ct.h"
#include "ins.h"
#include "pin.h"
#include "sw.h"

static const struct cmd_entry cmd_table[] = {
    { CLA_ISO, INS_SELECT, CMD_CASE1 | CMD_CASE2 | CMD_CASE3 | CMD_CASE4, CMD_TERMINATED_OK,
      cmd_select },
    { CLA_ISO, INS_READ_BINARY, CMD_CASE2, CMD_EXT_OK, cmd_read_binary },
    { CLA_ISO, INS_UPDATE_BINARY, CMD_CASE3, CMD_EXT_OK, cmd_update_binary },
    { CLA_ISO, INS_CREATE_FILE, CMD_CASE3, CMD_EXT_OK, cmd_create_file },
    { CLA_ISO, INS_DELETE_FILE, CMD_CASE1 | CMD_CASE3, 0, cmd_delete_file },
    { CLA_ISO, INS_ACTIVATE_FILE, CMD_CASE1 | CMD_CASE3, 0, cmd_activate_file },
    { CLA_ISO, INS_DEACTIVATE_FILE, CMD_CASE1 | CMD_CASE3, 0, cmd_deactivate_file },
    { CLA_ISO, INS_VERIFY, CMD_CASE1 | CMD_CASE3, 0, cmd_verify },
    { CLA_ISO, INS_CHANGE_REF_DATA, CMD_CASE3, 0, cmd_change_ref_data },
    { CLA_ISO, INS_RESET_RETRY_COUNTER, CMD_CASE1 | CMD_CASE3, 0, cmd_reset_retry_counter },
    { CLA_ISO, INS_GET_DATA, CMD_CASE2, CMD_EXT_OK | CMD_TERMINATED_OK, cmd_get_data },
    { CLA_ISO, INS_PUT_DATA, CMD_CASE3, 0, cmd_put_data },
    { CLA_ISO, INS_GET_CHALLENGE, CMD_CASE2, CMD_EXT_OK, cmd_get_challenge },
    { CLA_ISO, INS_TERMINATE_CARD, CMD_CASE1, 0, cmd_terminate_card },
    { CLA_ISO, INS_GENERATE_KEY_PAIR, CMD_CASE2, 0, cmd_generate_key },
    { CLA_ISO, INS_PSO, CMD_CASE4, 0, cmd_pso },
    { CLA_PROPRIETARY, INS_SET_SHARE, CMD_CASE3, 0, cmd_set_share },
    { CLA_PROPRIETARY, INS_BINDING_KEY, CMD_CASE2, 0, cmd_binding_key },
    { CLA_PROPRIETARY, INS_EXPORT_WRAPPED, CMD_CASE2 | CMD_CASE4, CMD_EXT_OK, cmd_export_wrapped },
    { CLA_PROPRIETARY, INS_IMPORT_WRAPPED, CMD_CASE3, CMD_EXT_OK, cmd_import_wrapped },
    { CLA_PROPRIETARY, INS_LOCK_EXPORT, CMD_CASE1, 0, cmd_lock_export },
};

int cmd_check_ac(const struct card *card, uint8_t ac)
{
    if (card->lcs == LCS_CREATION || card->lcs == LCS_INIT)
        return CARD_OK;
    switch (ac) {
    case AC_ALWAYS: return CARD_OK;
    case AC_PIN: return card->sec.pin_verified ? CARD_OK : CARD_E_SECURITY;
    case AC_ADMIN: return card->sec.admin_verified ? CARD_OK : CARD_E_SECURITY;
    default: return CARD_E_SECURITY;
    }
}

int card_set_lcs(struct card *card, uint8_t lcs)
{
    struct card_rec rec;
    int rc = card_rec_load(&card->nvm, &rec);
    if (rc)
        return rc;
    rec.lcs = lcs;
    rc = nvm_begin(&card->nvm, 0);
    if (rc)
        return rc;
    rc = card_rec_stage(&card->nvm, &rec);
    if (rc == CARD_OK)
        rc = nvm_commit(&card->nvm);
    else
        nvm_abort(&card->nvm);
    if (rc == CARD_OK)
        card->lcs = lcs;
    return rc;
}

/* Ends a command chain, wiping the data it gathered (it may be a PIN). */
static void chain_drop(struct card *card)
{
    ct_wipe(card->chain.data, card->chain.len);
    card->chain.len = 0;
    card->chain.active = false;
}

static void clear_volatile(struct card *card)
{
    chain_drop(card);
    memset(&card->sec, 0, sizeof card->sec);
    card->cur_df = FS_MF_SLOT;
    card->cur_ef = FS_NONE;
    card->pending_len = 0;
    card->pending_off = 0;
}

static int load_state(struct card *card)
{
    struct card_rec rec;
    int rc = card_rec_load(&card->nvm, &rec);
    if (rc == CARD_OK)
        rc = pin_check(&card->nvm);
    if (rc == CARD_OK)
        rc = fs_check(&card->nvm);
    if (rc == CARD_OK)
        card->lcs = rec.lcs;
    return rc;
}

int card_format(struct card *card, const struct hal_nvm *dev, const struct hal_rng *rng)
{
    memset(card, 0, sizeof *card);
    card->rng = rng;
    int rc = nvm_format(&card->nvm, dev);
    if (rc)
        return rc;
    struct card_rec rec = { .lcs = LCS_CREATION };
    rc = rng->fill(rng->ctx, rec.serial, sizeof rec.serial);
    if (rc)
        return CARD_E_RNG;
    rc = nvm_begin(&card->nvm, 0);
    if (rc)
        return rc;
    rc = card_rec_stage(&card->nvm, &rec);
    if (rc == CARD_OK)
        rc = pin_format(&card->nvm);
    if (rc == CARD_OK)
        rc = fs_format(&card->nvm);
    if (rc) {
        nvm_abort(&card->nvm);
        return rc;
    }
    rc = nvm_commit(&card->nvm);
    if (rc)
        return rc;
    rc = load_state(card);
    clear_volatile(card);
    return rc;
}

int card_mount(struct card *card, const struct hal_nvm *dev, const struct hal_rng *rng)
{
    memset(card, 0, sizeof *card);
    card->rng = rng;
    int rc = nvm_mount(&card->nvm, dev);
    if (rc == CARD_OK)
        rc = load_state(card);
    clear_volatile(card);
    return rc;
}

void card_power_on(struct card *card)
{
    clear_volatile(card);
    card->powered = true;
}

void card_power_off(struct card *card)
{
    clear_volatile(card);
    card->powered = false;
}

void card_reset(struct card *card)
{
    clear_volatile(card);
    card->powered = true;
}

size_t card_atr(const struct card *card, uint8_t *atr, size_t cap)
{
    /* TS 3B (direct convention); T0: TD1 present, K historical bytes; TD1 80: T=0, TD2
     * present; TD2 01: T=1. Historical bytes, COMPACT-TLV (docs/commands.md):
     * 80 category; 31 80 card service data: selection by full DF name;
     * 73 B4 21 C0 card capabilities: selection by full DF name, path, FID, SFI supported;
     * data unit one byte; command chaining, extended Lc/Le; 83 LCS 90 00 status indicator.
     * Then TCK. */
    const uint8_t hist[] = { 0x80, 0x31, 0x80, 0x73, 0xB4, 0x21, 0xC0, 0x83, card->lcs,
                             0x90, 0x00 };
    uint8_t buf[4 + sizeof hist + 1];
    size_t n = 0;
    buf[n++] = 0x3B;
    buf[n++] = (uint8_t)(0x80 | sizeof hist);
    buf[n++] = 0x80;
    buf[n++] = 0x01;
    memcpy(buf + n, hist, sizeof hist);
    n += sizeof hist;
    uint8_t tck = 0;
    for (size_t i = 1; i < n; i++)
        tck ^= buf[i];
    buf[n++] = tck;
    if (n > cap)
        return 0;
    memcpy(atr, buf, n);
    return n;
}

static uint16_t sw_from_result(int rc, uint8_t aux)
{
    switch (rc) {
    case CARD_OK: return SW_OK;
    case CARD_W_EOF: return SW_EOF_WARNING;
    case CARD_W_TRIES_LEFT: return (uint16_t)(SW_COUNTER | (aux & 0x0Fu));
    case CARD_W_FILE_DEACTIVATED: return SW_FILE_DEACTIVATED;
    case CARD_E_IO:
    case CARD_E_CORRUPT: return SW_MEMORY_FAILURE;
    case CARD_E_WRONG_LENGTH: return SW_WRONG_LENGTH;
    case CARD_E_INCOMPATIBLE: return SW_INCOMPATIBLE_FILE;
    case CARD_E_SECURITY: return SW_SECURITY_STATUS;
    case CARD_E_BLOCKED: return SW_AUTH_BLOCKED;
    case CARD_E_REF_UNUSABLE: return SW_REF_DATA_UNUSABLE;
    case CARD_E_CONDITIONS: return SW_CONDITIONS_NOT_SATISFIED;
    case CARD_E_NO_CURRENT_EF: return SW_NO_CURRENT_EF;
    case CARD_E_WRONG_DATA: return SW_WRONG_DATA;
    case CARD_E_FUNC_UNSUPPORTED: return SW_FUNC_NOT_SUPPORTED;
    case CARD_E_NOT_FOUND: return SW_FILE_NOT_FOUND;
    case CARD_E_NO_SPACE:
    case CARD_E_TXN_FULL: return SW_NOT_ENOUGH_MEMORY;
    case CARD_E_P1P2: return SW_INCORRECT_P1P2;
    case CARD_E_NC_INCONSISTENT: return SW_NC_INCONSISTENT;
    case CARD_E_REF_NOT_FOUND: return SW_REF_DATA_NOT_FOUND;
    case CARD_E_FILE_EXISTS: return SW_FILE_EXISTS;
    case CARD_E_NAME_EXISTS: return SW_DF_NAME_EXISTS;
    case CARD_E_OFFSET: return SW_WRONG_P1P2;
    case CARD_E_INS: return SW_INS_NOT_SUPPORTED;
    case CARD_E_CLA: return SW_CLA_NOT_SUPPORTED;
    case CARD_E_CHANNEL: return SW_CHANNEL_NOT_SUPPORTED;
    case CARD_E_SM: return SW_SM_NOT_SUPPORTED;
    case CARD_E_CHAIN_BROKEN: return SW_LAST_COMMAND_EXPECTED;
    default: return SW_UNKNOWN;
    }
}

/* Splits CLA into the table class and the chaining bit; refuses SM and other channels. */
static int class_of(uint8_t cla, uint8_t *cls, bool *chained)
{
    if (cla == 0xFF)
        return CARD_E_CLA;
    uint8_t base;
    if ((cla & 0xE0u) == 0x00u)
        base = CLA_ISO;
    else if ((cla & 0xE0u) == 0x80u)
        base = CLA_PROPRIETARY;
    else if ((cla & 0xC0u) == 0x40u)
        return CARD_E_CHANNEL; /* further interindustry class: channels 4..19 */
    else
        return CARD_E_CLA;
    if (cla & CLA_CHANNEL_MASK)
        return CARD_E_CHANNEL;
    if (cla & CLA_SM_MASK)
        return CARD_E_SM;
    *chained = (cla & CLA_CHAIN_BIT) != 0;
    *cls = base;
    return CARD_OK;
}

static const struct cmd_entry *lookup(uint8_t cls, uint8_t ins)
{
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        if (cmd_table[i].cla == cls && cmd_table[i].ins == ins)
            return &cmd_table[i];
    return NULL;
}

/* Hands out response data still held for GET RESPONSE. */
static int get_response(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    if (cmd->apdu_case != 2)
        return CARD_E_WRONG_LENGTH;
    if (card->pending_len == 0)
        return CARD_E_CONDITIONS;
    /* The remaining bytes already sit at resp[pending_off..]; the caller sends them. */
    rsp->data = card->resp + card->pending_off;
    rsp->len = card->pending_len;
    card->pending_len = 0;
    return CARD_OK;
}

/* True when cmd continues the chain in progress: same CLA (chaining bit aside), INS, P1, P2. */
static bool chain_matches(const struct card *card, const struct capdu *cmd)
{
    return card->chain.cla == (uint8_t)(cmd->cla & ~CLA_CHAIN_BIT) &&
           card->chain.ins == cmd->ins && card->chain.p1 == cmd->p1 && card->chain.p2 == cmd->p2;
}

/* A command with the chaining bit: its data joins the chain, the answer is 9000 without data.
 * Only commands that take a data field chain, and each link carries data. */
static int chain_append(struct card *card, const struct cmd_entry *e, const struct capdu *cmd)
{
    if (!(e->cases & (CMD_CASE3 | CMD_CASE4)) || cmd->nc == 0)
        return CARD_E_WRONG_LENGTH;
    if (cmd->nc > CARD_MAX_NC - card->chain.len)
        return CARD_E_WRONG_LENGTH;
    if (!card->chain.active) {
        card->chain.active = true;
        card->chain.cla = (uint8_t)(cmd->cla & ~CLA_CHAIN_BIT);
        card->chain.ins = cmd->ins;
        card->chain.p1 = cmd->p1;
        card->chain.p2 = cmd->p2;
    }
    memcpy(card->chain.data + card->chain.len, cmd->data, cmd->nc);
    card->chain.len += cmd->nc;
    return CARD_OK;
}

/* Runs one command (or a chain's last command); *link is set when it was a chain link that
 * keeps the chain open. */
static int route(struct card *card, const struct capdu *cmd, struct rapdu *rsp, bool *link)
{
    uint8_t cls = 0;
    bool chained = false;
    int rc = class_of(cmd->cla, &cls, &chained);
    if (rc)
        return rc;
    if (cls == CLA_ISO && cmd->ins == INS_GET_RESPONSE)
        return chained ? CARD_E_WRONG_LENGTH : get_response(card, cmd, rsp);
    card->pending_len = 0;
    const struct cmd_entry *e = lookup(cls, cmd->ins);
    if (!e)
        return CARD_E_INS;
    if (card->lcs == LCS_TERMINATED && !(e->flags & CMD_TERMINATED_OK))
        return CARD_E_CONDITIONS;
    if (cmd->extended && !(e->flags & CMD_EXT_OK))
        return CARD_E_WRONG_LENGTH;
    if (chained) {
        rc = chain_append(card, e, cmd);
        *link = rc == CARD_OK;
        return rc;
    }
    struct capdu whole;
    if (card->chain.active) {
        /* The last command of a chain: the handler sees the whole data, with this Le. */
        if (cmd->nc > CARD_MAX_NC - card->chain.len)
            return CARD_E_WRONG_LENGTH;
        if (cmd->nc)
            memcpy(card->chain.data + card->chain.len, cmd->data, cmd->nc);
        card->chain.len += cmd->nc;
        whole = *cmd;
        whole.data = card->chain.data;
        whole.nc = card->chain.len;
        whole.apdu_case = whole.ne ? 4 : 3;
        cmd = &whole;
    }
    if (!(e->cases & (1u << cmd->apdu_case)))
        return CARD_E_WRONG_LENGTH;
    if (cmd->nc > CARD_MAX_NC)
        return CARD_E_WRONG_LENGTH;
    return e->handler(card, cmd, rsp);
}

static int dispatch(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (card->chain.active && !chain_matches(card, cmd)) {
        /* Another command, GET RESPONSE included, while a chain waits for its last one. */
        chain_drop(card);
        card->pending_len = 0;
        return CARD_E_CHAIN_BROKEN;
    }
    bool link = false;
    int rc = route(card, cmd, rsp, &link);
    if (!link)
        chain_drop(card); /* the chain's last command has run, or a refusal ended the chain */
    return rc;
}

size_t card_process(struct card *card, const uint8_t *capdu, size_t len, uint8_t *rapdu,
                    size_t cap)
{
    struct rapdu rsp = { .data = card->resp, .len = 0, .cap = sizeof card->resp, .aux = 0 };
    struct capdu cmd;
    memset(&cmd, 0, sizeof cmd);
    int rc;
    if (cap < 2)
        return 0;
    if (!card->powered)
        rc = CARD_E_CONDITIONS;
    else if (apdu_parse(capdu, len, &cmd) != 0) {
        chain_drop(card); /* a malformed command breaks a chain too */
        rc = CARD_E_WRONG_LENGTH;
    } else {
        rc = dispatch(card, &cmd, &rsp);
    }

    uint16_t sw = sw_from_result(rc, rsp.aux);
    size_t n = rc < 0 ? 0 : rsp.len;
    if (n && cmd.ne == 0)
        n = 0; /* no Le field: the terminal expects no data */
    if (n > cmd.ne) {
        /* More than Ne: send Ne bytes now, keep the rest for GET RESPONSE (61xx). */
        size_t rest = n - cmd.ne;
        card->pending_off = (size_t)(rsp.data - card->resp) + cmd.ne;
        card->pending_len = rest;
        n = cmd.ne;
        if (sw == SW_OK)
            sw = (uint16_t)(SW_BYTES_REMAINING | (rest > 255 ? 0 : rest));
    }
    if (n > cap - 2)
        n = cap - 2;
    memcpy(rapdu, rsp.data, n);
    rapdu[n] = (uint8_t)(sw >> 8);
    rapdu[n + 1] = (uint8_t)sw;
    return n + 2;
}

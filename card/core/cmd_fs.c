/* File-system commands: SELECT, READ BINARY, UPDATE BINARY, CREATE FILE, DELETE FILE,
 * ACTIVATE FILE, DEACTIVATE FILE. Each checks everything before it writes, so a refusal
 * leaves the card as it was. */
#include <string.h>

#include "card_err.h"
#include "cmd.h"
#include "ins.h"
#include "tlv.h"

static void make_current(struct card *card, const struct fs_file *f)
{
    if (fs_is_df(f)) {
        card->cur_df = f->slot;
        card->cur_ef = FS_NONE;
    } else {
        card->cur_df = f->parent;
        card->cur_ef = f->slot;
    }
}

static uint16_t fid_of(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* File with this FID seen from the current DF: the DF itself, a child, the parent, or a
 * sibling DF (ISO 7816-4 "select by file identifier"). */
static int find_by_fid(struct card *card, uint16_t fid, struct fs_file *out)
{
    struct nvm *nvm = &card->nvm;
    if (fid == FID_MF)
        return fs_load(nvm, FS_MF_SLOT, out);
    struct fs_file df;
    int rc = fs_load(nvm, card->cur_df, &df);
    if (rc)
        return rc;
    if (df.fid == fid) {
        *out = df;
        return CARD_OK;
    }
    rc = fs_find_child(nvm, df.slot, fid, out);
    if (rc != CARD_E_NOT_FOUND || df.parent == FS_NONE)
        return rc;
    struct fs_file parent;
    rc = fs_load(nvm, df.parent, &parent);
    if (rc)
        return rc;
    if (parent.fid == fid) {
        *out = parent;
        return CARD_OK;
    }
    rc = fs_find_child(nvm, parent.slot, fid, out);
    if (rc == CARD_OK && !fs_is_df(out))
        return CARD_E_NOT_FOUND; /* EFs of the parent are not reachable this way */
    return rc;
}

static int follow_path(struct card *card, uint8_t from, const uint8_t *path, size_t len,
                       struct fs_file *out)
{
    if (len == 0 || len % 2 || len / 2 > CARD_FS_MAX_DEPTH + 1)
        return CARD_E_NC_INCONSISTENT;
    int rc = fs_load(&card->nvm, from, out);
    for (size_t i = 0; rc == CARD_OK && i < len; i += 2) {
        if (!fs_is_df(out))
            return CARD_E_NOT_FOUND; /* an EF has no children */
        rc = fs_find_child(&card->nvm, out->slot, fid_of(path + i), out);
    }
    return rc;
}

static int put_fcp(const struct fs_file *f, struct rapdu *rsp)
{
    struct tlv_writer w = { .buf = rsp->data + rsp->len, .cap = rsp->cap - rsp->len };
    size_t mark = tlv_w_begin(&w, FCP_TEMPLATE);
    uint8_t b[3];
    b[0] = f->fdb;
    tlv_w_put(&w, FCP_DESCRIPTOR, b, 1);
    b[0] = (uint8_t)(f->fid >> 8);
    b[1] = (uint8_t)f->fid;
    tlv_w_put(&w, FCP_FID, b, 2);
    if (fs_is_df(f)) {
        if (f->name_len)
            tlv_w_put(&w, FCP_DF_NAME, f->name, f->name_len);
    } else {
        b[0] = (uint8_t)(f->size >> 8);
        b[1] = (uint8_t)f->size;
        tlv_w_put(&w, FCP_SIZE, b, 2);
        if (f->sfi) {
            b[0] = (uint8_t)(f->sfi << 3);
            tlv_w_put(&w, FCP_SFI, b, 1);
        }
    }
    tlv_w_put(&w, FCP_LCS, &f->lcs, 1);
    tlv_w_put(&w, FCP_SEC_PROP, f->ac, FS_AC_COUNT);
    tlv_w_end(&w, mark);
    if (w.overflow)
        return CARD_E_INTERNAL;
    rsp->len += w.len;
    return CARD_OK;
}

int cmd_select(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    uint8_t fmt = cmd->p2 & 0x0Cu;
    if ((cmd->p2 & ~0x0Cu) != 0 || fmt == SEL_P2_FMD)
        return CARD_E_P1P2; /* first-or-only occurrence; FCI/FCP or nothing */
    struct fs_file f;
    int rc;
    switch (cmd->p1) {
    case SEL_P1_FID:
        if (cmd->nc == 0)
            rc = fs_load(&card->nvm, FS_MF_SLOT, &f);
        else if (cmd->nc != 2)
            rc = CARD_E_NC_INCONSISTENT;
        else
            rc = find_by_fid(card, fid_of(cmd->data), &f);
        break;
    case SEL_P1_CHILD_DF:
    case SEL_P1_EF:
        if (cmd->nc != 2)
            return CARD_E_NC_INCONSISTENT;
        rc = fs_find_child(&card->nvm, card->cur_df, fid_of(cmd->data), &f);
        if (rc == CARD_OK && fs_is_df(&f) != (cmd->p1 == SEL_P1_CHILD_DF))
            rc = CARD_E_NOT_FOUND;
        break;
    case SEL_P1_PARENT:
        if (cmd->nc != 0)
            return CARD_E_NC_INCONSISTENT;
        rc = fs_load(&card->nvm, card->cur_df, &f);
        if (rc == CARD_OK)
            rc = f.parent == FS_NONE ? CARD_E_NOT_FOUND : fs_load(&card->nvm, f.parent, &f);
        break;
    case SEL_P1_DF_NAME:
        if (cmd->nc == 0)
            rc = fs_load(&card->nvm, FS_MF_SLOT, &f);
        else if (cmd->nc > FS_NAME_MAX)
            rc = CARD_E_NOT_FOUND;
        else
            rc = fs_find_name(&card->nvm, cmd->data, (uint8_t)cmd->nc, &f);
        break;
    case SEL_P1_PATH_MF:
    case SEL_P1_PATH_DF:
        rc = follow_path(card, cmd->p1 == SEL_P1_PATH_MF ? FS_MF_SLOT : card->cur_df,
                         cmd->data, cmd->nc, &f);
        break;
    default:
        return CARD_E_P1P2;
    }
    if (rc)
        return rc;
    make_current(card, &f);
    if (fmt != SEL_P2_NONE) {
        rc = put_fcp(&f, rsp);
        if (rc)
            return rc;
    }
    return f.lcs == LCS_DEACTIVATED ? CARD_W_FILE_DEACTIVATED : CARD_OK;
}

/* The EF a READ/UPDATE BINARY addresses: by SFI in P1 or the current EF, plus the offset.
 * An EF named by SFI becomes current only when the command succeeds (see binary_done). */
static int binary_target(struct card *card, const struct capdu *cmd, struct fs_file *f,
                         uint16_t *off)
{
    int rc;
    uint8_t sfi = cmd->p1 & 0x1Fu;
    if ((cmd->p1 & 0x80u) && sfi != 0) {
        if ((cmd->p1 & 0x60u) || sfi == 0x1F)
            return CARD_E_P1P2;
        rc = fs_find_sfi(&card->nvm, card->cur_df, sfi, f);
        if (rc)
            return rc;
        *off = cmd->p2;
    } else {
        /* Offset in the current EF: 15 bits, or P2 alone after P1 = 80 (SFI 0 = current EF). */
        if ((cmd->p1 & 0x80u) && (cmd->p1 & 0x60u))
            return CARD_E_P1P2;
        if (card->cur_ef == FS_NONE)
            return CARD_E_NO_CURRENT_EF;
        rc = fs_load(&card->nvm, card->cur_ef, f);
        if (rc)
            return rc;
        *off = (cmd->p1 & 0x80u) ? cmd->p2 : (uint16_t)((cmd->p1 << 8) | cmd->p2);
    }
    if (f->lcs == LCS_DEACTIVATED || f->lcs >= 0x0Cu)
        return CARD_E_CONDITIONS;
    return CARD_OK;
}

/* Ends a READ/UPDATE BINARY: on success the addressed EF is the current one. */
static int binary_done(struct card *card, const struct fs_file *f, int rc)
{
    if (rc >= 0)
        card->cur_ef = f->slot;
    return rc;
}

static int read_binary(struct card *card, const struct capdu *cmd, struct rapdu *rsp,
                       struct fs_file *fp)
{
    struct fs_file f;
    uint16_t off;
    int rc = binary_target(card, cmd, &f, &off);
    *fp = f;
    if (rc)
        return rc;
    if (f.fdb == FDB_INTERNAL_EF)
        return CARD_E_INCOMPATIBLE; /* internal EFs are never readable */
    rc = cmd_check_ac(card, f.ac[FS_AC_READ]);
    if (rc)
        return rc;
    if (off >= f.size)
        return CARD_E_OFFSET;
    size_t avail = (size_t)f.size - off;
    size_t n = cmd->ne < avail ? cmd->ne : avail;
    if (n > rsp->cap)
        n = rsp->cap;
    rc = fs_read(&card->nvm, &f, off, rsp->data, (uint16_t)n);
    if (rc)
        return rc;
    rsp->len = n;
    /* Le 00 / 0000 means "up to the maximum": reaching the end early is then no surprise. */
    bool le_max = cmd->ne == (cmd->extended ? 65536u : 256u);
    return (n < cmd->ne && n == avail && !le_max) ? CARD_W_EOF : CARD_OK;
}

int cmd_read_binary(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    struct fs_file f;
    int rc = read_binary(card, cmd, rsp, &f);
    return binary_done(card, &f, rc);
}

static int update_binary(struct card *card, const struct capdu *cmd, struct fs_file *fp)
{
    struct fs_file f;
    uint16_t off;
    int rc = binary_target(card, cmd, &f, &off);
    *fp = f;
    if (rc)
        return rc;
    rc = cmd_check_ac(card, f.ac[FS_AC_UPDATE]);
    if (rc)
        return rc;
    if (off >= f.size)
        return CARD_E_OFFSET;
    if (cmd->nc > (size_t)f.size - off)
        return CARD_E_NO_SPACE;
    return fs_update(&card->nvm, &f, off, cmd->data, (uint16_t)cmd->nc);
}

int cmd_update_binary(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    struct fs_file f;
    int rc = update_binary(card, cmd, &f);
    return binary_done(card, &f, rc);
}

/* Reads the FCP of CREATE FILE into f. Returns 0 or CARD_E_WRONG_DATA. */
static int parse_fcp(const uint8_t *data, size_t len, struct fs_file *f)
{
    struct tlv t;
    if (tlv_parse(data, len, &t) || t.tag != FCP_TEMPLATE || t.total != len)
        return CARD_E_WRONG_DATA;
    bool have_fdb = false, have_fid = false, have_size = false, have_ac = false;
    bool have_lcs = false, have_sfi = false, have_name = false;
    size_t pos = 0;
    while (pos < t.len) {
        struct tlv o;
        if (tlv_parse(t.value + pos, t.len - pos, &o))
            return CARD_E_WRONG_DATA;
        pos += o.total;
        const uint8_t *v = o.value;
        switch (o.tag) {
        case FCP_DESCRIPTOR:
            if (have_fdb || o.len < 1 || o.len > 2)
                return CARD_E_WRONG_DATA;
            f->fdb = v[0];
            have_fdb = true;
            break;
        case FCP_FID:
            if (have_fid || o.len != 2)
                return CARD_E_WRONG_DATA;
            f->fid = fid_of(v);
            have_fid = true;
            break;
        case FCP_SIZE:
            if (have_size || o.len < 1 || o.len > 2)
                return CARD_E_WRONG_DATA;
            f->size = o.len == 2 ? fid_of(v) : v[0];
            have_size = true;
            break;
        case FCP_DF_NAME:
            if (have_name || o.len < 1 || o.len > FS_NAME_MAX)
                return CARD_E_WRONG_DATA;
            memcpy(f->name, v, o.len);
            f->name_len = (uint8_t)o.len;
            have_name = true;
            break;
        case FCP_SEC_PROP:
            if (have_ac || o.len != FS_AC_COUNT)
                return CARD_E_WRONG_DATA;
            for (unsigned i = 0; i < FS_AC_COUNT; i++)
                if (v[i] != AC_ALWAYS && v[i] != AC_PIN && v[i] != AC_ADMIN && v[i] != AC_NEVER)
                    return CARD_E_WRONG_DATA;
            memcpy(f->ac, v, FS_AC_COUNT);
            have_ac = true;
            break;
        case FCP_SFI:
            if (have_sfi || o.len != 1 || (v[0] & 0x07u) || (v[0] >> 3) == 0 ||
                (v[0] >> 3) == 0x1F)
                return CARD_E_WRONG_DATA;
            f->sfi = v[0] >> 3;
            have_sfi = true;
            break;
        case FCP_LCS:
            if (have_lcs || o.len != 1 ||
                (v[0] != LCS_CREATION && v[0] != LCS_INIT && v[0] != LCS_OPERATIONAL &&
                 v[0] != LCS_DEACTIVATED))
                return CARD_E_WRONG_DATA;
            f->lcs = v[0];
            have_lcs = true;
            break;
        default:
            return CARD_E_WRONG_DATA;
        }
    }
    if (!have_fdb || !have_fid)
        return CARD_E_WRONG_DATA;
    if (f->fid == FID_MF || f->fid == 0x3FFFu || f->fid == 0xFFFFu)
        return CARD_E_WRONG_DATA; /* reserved by ISO 7816-4 */
    bool df = f->fdb == FDB_DF;
    if (!df && f->fdb != FDB_WORKING_EF && f->fdb != FDB_INTERNAL_EF)
        return CARD_E_WRONG_DATA;
    if (df ? (have_size || have_sfi) : (have_name || !have_size))
        return CARD_E_WRONG_DATA;
    if (!df && (f->size == 0 || f->size > FS_EF_MAX_SIZE))
        return CARD_E_WRONG_DATA;
    if (!have_ac) {
        f->ac[FS_AC_READ] = AC_ALWAYS;
        f->ac[FS_AC_UPDATE] = AC_ADMIN;
        f->ac[FS_AC_DELETE] = AC_ADMIN;
    }
    if (f->fdb == FDB_INTERNAL_EF)
        f->ac[FS_AC_READ] = AC_NEVER;
    if (!have_lcs)
        f->lcs = LCS_OPERATIONAL;
    return CARD_OK;
}

int cmd_create_file(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    struct fs_file df;
    int rc = fs_load(&card->nvm, card->cur_df, &df);
    if (rc)
        return rc;
    rc = cmd_check_ac(card, df.ac[FS_AC_UPDATE]);
    if (rc)
        return rc;
    struct fs_file f;
    memset(&f, 0, sizeof f);
    rc = parse_fcp(cmd->data, cmd->nc, &f);
    if (rc)
        return rc;
    f.parent = df.slot;
    int depth = fs_depth(&card->nvm, df.slot);
    if (depth < 0)
        return depth;
    if (depth + 1 > CARD_FS_MAX_DEPTH)
        return CARD_E_NO_SPACE;
    rc = fs_create(&card->nvm, &f);
    if (rc)
        return rc;
    make_current(card, &f);
    return CARD_OK;
}

/* The file DELETE/ACTIVATE/DEACTIVATE FILE act on: a child of the current DF named by FID in
 * the data field, or without data the current EF, else the current DF. */
static int lifecycle_target(struct card *card, const struct capdu *cmd, struct fs_file *f)
{
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    if (cmd->nc == 2)
        return fs_find_child(&card->nvm, card->cur_df, fid_of(cmd->data), f);
    if (cmd->nc != 0)
        return CARD_E_NC_INCONSISTENT;
    return fs_load(&card->nvm, card->cur_ef != FS_NONE ? card->cur_ef : card->cur_df, f);
}

int cmd_delete_file(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    struct fs_file f;
    int rc = lifecycle_target(card, cmd, &f);
    if (rc)
        return rc;
    if (f.slot == FS_MF_SLOT)
        return CARD_E_CONDITIONS;
    rc = cmd_check_ac(card, f.ac[FS_AC_DELETE]);
    if (rc)
        return rc;
    rc = fs_delete(&card->nvm, f.slot);
    if (rc)
        return rc;
    if (f.slot == card->cur_df || f.slot == card->cur_ef) {
        card->cur_df = f.parent;
        card->cur_ef = FS_NONE;
    }
    return CARD_OK;
}

int cmd_activate_file(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    struct fs_file f;
    int rc = lifecycle_target(card, cmd, &f);
    if (rc)
        return rc;
    rc = cmd_check_ac(card, AC_ADMIN);
    if (rc)
        return rc;
    if (f.slot == FS_MF_SLOT) {
        /* Activating the MF ends personalization: access conditions apply from now on. */
        if (card->lcs == LCS_OPERATIONAL)
            return CARD_OK;
        return card_set_lcs(card, LCS_OPERATIONAL);
    }
    if (f.lcs == LCS_OPERATIONAL)
        return CARD_OK;
    return fs_set_lcs(&card->nvm, f.slot, LCS_OPERATIONAL);
}

int cmd_deactivate_file(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    struct fs_file f;
    int rc = lifecycle_target(card, cmd, &f);
    if (rc)
        return rc;
    if (f.slot == FS_MF_SLOT)
        return CARD_E_CONDITIONS; /* the card as a whole ends with TERMINATE CARD USAGE */
    rc = cmd_check_ac(card, AC_ADMIN);
    if (rc)
        return rc;
    if (f.lcs == LCS_DEACTIVATED)
        return CARD_OK;
    return fs_set_lcs(&card->nvm, f.slot, LCS_DEACTIVATED);
}

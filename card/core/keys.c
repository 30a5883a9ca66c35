#include "keys.h"

#include <string.h>

#include "card_err.h"
#include "ct.h"
#include "kek.h"

bool keys_is_zero(const uint8_t *p, unsigned len)
{
    uint8_t acc = 0;
    for (unsigned i = 0; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

static int need(struct nvm *nvm, uint8_t df, uint16_t fid, uint16_t min_size, struct fs_file *f)
{
    int rc = fs_find_child(nvm, df, fid, f);
    if (rc == CARD_E_NOT_FOUND)
        return CARD_E_REF_NOT_FOUND;
    if (rc)
        return rc;
    if (fs_is_df(f) || f->size < min_size)
        return CARD_E_REF_NOT_FOUND;
    return CARD_OK;
}

int keys_locate(struct nvm *nvm, struct keys_files *kf)
{
    struct fs_file df;
    int rc = fs_find_child(nvm, FS_MF_SLOT, FID_KEY_DF, &df);
    if (rc == CARD_E_NOT_FOUND || (rc == CARD_OK && !fs_is_df(&df)))
        return CARD_E_REF_NOT_FOUND;
    if (rc)
        return rc;
    kf->n = 0;
    while (kf->n < KEY_GROUP_MAX_SHARES) {
        rc = need(nvm, df.slot, (uint16_t)(FID_SHARE_FIRST + kf->n), KEY_SHARE_LEN,
                  &kf->share[kf->n]);
        if (rc == CARD_E_REF_NOT_FOUND)
            break;
        if (rc)
            return rc;
        kf->n++;
    }
    if (kf->n == 0)
        return CARD_E_REF_NOT_FOUND;
    rc = need(nvm, df.slot, FID_PRIV_KEY, KEYS_PRIV_FILE_LEN, &kf->priv);
    if (rc == CARD_OK)
        rc = need(nvm, df.slot, FID_KEY_STATE, KEYS_STATE_LEN, &kf->state);
    if (rc == CARD_OK)
        rc = need(nvm, df.slot, FID_BINDING_KEY, KEYS_PRIV_FILE_LEN, &kf->bind);
    return rc;
}

int keys_group(struct nvm *nvm, const struct keys_files *kf, uint8_t *bitmap, bool *complete,
               uint8_t kek[32])
{
    uint8_t shares[KEY_GROUP_MAX_SHARES][KEY_SHARE_LEN];
    int rc = CARD_OK;
    *bitmap = 0;
    for (unsigned i = 0; i < kf->n && rc == CARD_OK; i++) {
        rc = fs_read(nvm, &kf->share[i], 0, shares[i], KEY_SHARE_LEN);
        if (rc == CARD_OK && !keys_is_zero(shares[i], KEY_SHARE_LEN))
            *bitmap |= (uint8_t)(1u << i);
    }
    *complete = rc == CARD_OK && *bitmap == (uint8_t)((1u << kf->n) - 1u);
    if (*complete)
        rc = kek_derive((const uint8_t(*)[32])shares, kf->n, kek);
    ct_wipe(shares, sizeof shares);
    return rc;
}

int keys_state_load(struct nvm *nvm, const struct keys_files *kf, struct keys_state *st)
{
    uint8_t b[KEYS_STATE_LEN];
    int rc = fs_read(nvm, &kf->state, 0, b, sizeof b);
    if (rc)
        return rc;
    st->policy = b[0];
    st->flags = b[1];
    st->origin = b[2];
    memcpy(st->src_serial, b + 3, 8);
    memcpy(st->src_kcv, b + 11, KCV_LEN);
    st->export_count = (uint16_t)(b[19] << 8 | b[20]);
    memcpy(st->bind_hash, b + 21, KEYS_BIND_HASH_LEN);
    return CARD_OK;
}

int keys_state_stage(struct nvm *nvm, const struct keys_files *kf, const struct keys_state *st)
{
    uint8_t b[KEYS_STATE_LEN];
    b[0] = st->policy;
    b[1] = st->flags;
    b[2] = st->origin;
    memcpy(b + 3, st->src_serial, 8);
    memcpy(b + 11, st->src_kcv, KCV_LEN);
    b[19] = (uint8_t)(st->export_count >> 8);
    b[20] = (uint8_t)st->export_count;
    memcpy(b + 21, st->bind_hash, KEYS_BIND_HASH_LEN);
    return fs_stage_update(nvm, &kf->state, 0, b, sizeof b);
}

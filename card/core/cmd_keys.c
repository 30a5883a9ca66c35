/* Key commands (docs/keys.md): SET SHARE, GENERATE ASYMMETRIC KEY PAIR, PSO DECIPHER,
 * BINDING KEY, EXPORT WRAPPED, IMPORT WRAPPED, LOCK EXPORT, and the key GET DATA objects.
 * Every handler checks everything before its one transaction; secrets are wiped on all paths. */
#include <string.h>

#include <mbedtls/sha256.h>

#include "blob.h"
#include "card_err.h"
#include "card_rec.h"
#include "cmd.h"
#include "crypto.h"
#include "ct.h"
#include "ec.h"
#include "kek.h"
#include "keys.h"

/* Key commands need the user PIN once the card is operational. */
static int need_pin(const struct card *card)
{
    return cmd_check_ac(card, AC_PIN);
}

/* Replacing existing key material needs the admin PIN once the card is operational. */
static int may_replace(const struct card *card)
{
    return cmd_check_ac(card, AC_ADMIN) == CARD_OK ? CARD_OK : CARD_E_CONDITIONS;
}

static int put_point_template(struct rapdu *rsp, const uint8_t pub[EC_POINT_LEN])
{
    /* 7F49 41 { 86 41 point } */
    static const uint8_t head[] = { 0x7F, 0x49, 0x43, 0x86, 0x41 };
    if (!rsp_room(rsp, sizeof head + EC_POINT_LEN))
        return CARD_E_INTERNAL;
    memcpy(rsp->data + rsp->len, head, sizeof head);
    memcpy(rsp->data + rsp->len + sizeof head, pub, EC_POINT_LEN);
    rsp->len += sizeof head + EC_POINT_LEN;
    return CARD_OK;
}

/* Reads a 97-byte key file (private || public). Returns 0, CARD_E_REF_NOT_FOUND when empty. */
static int load_keypair(struct card *card, const struct fs_file *f, uint8_t kp[KEYS_PRIV_FILE_LEN])
{
    int rc = fs_read(&card->nvm, f, 0, kp, KEYS_PRIV_FILE_LEN);
    if (rc == CARD_OK && keys_is_zero(kp, KEYS_PRIV_FILE_LEN))
        rc = CARD_E_REF_NOT_FOUND;
    return rc;
}

/* Fresh key pair from the card's DRBG. */
static int fresh_keypair(struct card *card, uint8_t kp[KEYS_PRIV_FILE_LEN])
{
    struct crypto_rng rng;
    int rc = crypto_rng_init(&rng, card->rng);
    if (rc == CARD_OK)
        rc = ec_keygen(crypto_rng_fill, &rng, kp, kp + EC_PRIV_LEN);
    crypto_rng_free(&rng);
    return rc;
}

static int commit_or_abort(struct nvm *nvm, int rc)
{
    if (rc == CARD_OK)
        return nvm_commit(nvm);
    nvm_abort(nvm);
    return rc;
}

/* Commits the key state alone. Returns 0 or an NVM error. */
static int save_state(struct card *card, const struct keys_files *kf, const struct keys_state *st)
{
    int rc = nvm_begin(&card->nvm, 0);
    if (rc)
        return rc;
    return commit_or_abort(&card->nvm, keys_state_stage(&card->nvm, kf, st));
}

/* The state of a freshly placed key: never exported from here, with this provenance; the
 * policy and an export lock stay. serial and kcv may be NULL (a key generated here). */
static void state_for_new_key(struct keys_state *st, uint8_t origin, const uint8_t *serial,
                              const uint8_t *kcv)
{
    st->flags &= KEYS_FLAG_LOCKED;
    st->origin = origin;
    memset(st->src_serial, 0, sizeof st->src_serial);
    memset(st->src_kcv, 0, sizeof st->src_kcv);
    if (serial)
        memcpy(st->src_serial, serial, sizeof st->src_serial);
    if (kcv)
        memcpy(st->src_kcv, kcv, sizeof st->src_kcv);
    st->export_count = 0;
    memset(st->bind_hash, 0, sizeof st->bind_hash);
}

/* Commits a new key pair with its state (and, after an import, the binding key's erasure) in
 * one secret transaction: a cut leaves the old key and state or the new ones. */
static int save_key(struct card *card, const struct keys_files *kf,
                    const uint8_t kp[KEYS_PRIV_FILE_LEN], const struct keys_state *st,
                    bool erase_binding)
{
    static const uint8_t zero[KEYS_PRIV_FILE_LEN];
    int rc = nvm_begin(&card->nvm, NVM_TXN_SECRET);
    if (rc)
        return rc;
    rc = fs_stage_update(&card->nvm, &kf->priv, 0, kp, KEYS_PRIV_FILE_LEN);
    if (rc == CARD_OK)
        rc = keys_state_stage(&card->nvm, kf, st);
    if (rc == CARD_OK && erase_binding)
        rc = fs_stage_update(&card->nvm, &kf->bind, 0, zero, KEYS_PRIV_FILE_LEN);
    return commit_or_abort(&card->nvm, rc);
}

int cmd_set_share(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    struct keys_files kf;
    int rc = keys_locate(&card->nvm, &kf);
    if (rc)
        return rc;
    if (cmd->p1 != 0 || cmd->p2 < 1 || cmd->p2 > kf.n)
        return CARD_E_P1P2;
    if (cmd->nc != KEY_SHARE_LEN)
        return CARD_E_WRONG_LENGTH;
    if (keys_is_zero(cmd->data, KEY_SHARE_LEN))
        return CARD_E_WRONG_DATA;
    if (need_pin(card) && cmd_check_ac(card, AC_ADMIN))
        return CARD_E_SECURITY;
    const struct fs_file *f = &kf.share[cmd->p2 - 1];
    uint8_t cur[KEY_SHARE_LEN];
    rc = fs_read(&card->nvm, f, 0, cur, sizeof cur);
    bool present = !keys_is_zero(cur, sizeof cur);
    ct_wipe(cur, sizeof cur);
    if (rc)
        return rc;
    if (present && may_replace(card))
        return CARD_E_CONDITIONS;
    return fs_update(&card->nvm, f, 0, cmd->data, KEY_SHARE_LEN);
}

int cmd_generate_key(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p2 != 0 || (cmd->p1 != GEN_P1_GENERATE && cmd->p1 != GEN_P1_READ_PUB))
        return CARD_E_P1P2;
    struct keys_files kf;
    int rc = keys_locate(&card->nvm, &kf);
    if (rc)
        return rc;
    uint8_t kp[KEYS_PRIV_FILE_LEN];
    rc = load_keypair(card, &kf.priv, kp);
    bool have_key = rc == CARD_OK;
    if (rc && rc != CARD_E_REF_NOT_FOUND)
        goto out;
    if (cmd->p1 == GEN_P1_READ_PUB) {
        rc = have_key ? put_point_template(rsp, kp + EC_PRIV_LEN) : CARD_E_REF_NOT_FOUND;
        goto out;
    }
    rc = need_pin(card);
    if (rc == CARD_OK && have_key)
        rc = may_replace(card);
    struct keys_state st;
    if (rc == CARD_OK)
        rc = keys_state_load(&card->nvm, &kf, &st);
    if (rc == CARD_OK)
        rc = fresh_keypair(card, kp);
    if (rc == CARD_OK) {
        state_for_new_key(&st, KEYS_ORIGIN_GENERATED, NULL, NULL);
        rc = save_key(card, &kf, kp, &st, false);
    }
    if (rc == CARD_OK)
        rc = put_point_template(rsp, kp + EC_PRIV_LEN);
out:
    ct_wipe(kp, sizeof kp);
    return rc;
}

int cmd_pso(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p1 != PSO_P1_DECIPHER || cmd->p2 != PSO_P2_DECIPHER)
        return CARD_E_P1P2;
    if (cmd->nc != EC_POINT_LEN)
        return CARD_E_WRONG_LENGTH;
    int rc = need_pin(card);
    if (rc)
        return rc;
    struct keys_files kf;
    rc = keys_locate(&card->nvm, &kf);
    if (rc)
        return rc;
    uint8_t kp[KEYS_PRIV_FILE_LEN];
    rc = load_keypair(card, &kf.priv, kp);
    if (rc == CARD_OK && !rsp_room(rsp, 32))
        rc = CARD_E_INTERNAL;
    if (rc == CARD_OK)
        rc = ec_ecdh(kp, cmd->data, rsp->data + rsp->len);
    if (rc == CARD_OK)
        rsp->len += 32;
    ct_wipe(kp, sizeof kp);
    return rc;
}

int cmd_binding_key(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p1 > 0x01 || cmd->p2 != 0)
        return CARD_E_P1P2;
    int rc = need_pin(card);
    if (rc)
        return rc;
    struct keys_files kf;
    rc = keys_locate(&card->nvm, &kf);
    if (rc)
        return rc;
    uint8_t kp[KEYS_PRIV_FILE_LEN];
    rc = load_keypair(card, &kf.bind, kp);
    if (rc == CARD_E_REF_NOT_FOUND || (rc == CARD_OK && cmd->p1 == 0x01)) {
        rc = fresh_keypair(card, kp);
        if (rc == CARD_OK)
            rc = fs_update(&card->nvm, &kf.bind, 0, kp, KEYS_PRIV_FILE_LEN);
    }
    if (rc == CARD_OK && !rsp_room(rsp, EC_POINT_LEN))
        rc = CARD_E_INTERNAL;
    if (rc == CARD_OK) {
        memcpy(rsp->data + rsp->len, kp + EC_PRIV_LEN, EC_POINT_LEN);
        rsp->len += EC_POINT_LEN;
    }
    ct_wipe(kp, sizeof kp);
    return rc;
}

/* Everything export and import both need: the files, a complete group's KEK and KCV, the state. */
struct key_ctx {
    struct keys_files kf;
    struct keys_state st;
    uint8_t kek[32];
    uint8_t kcv[KCV_LEN];
};

static int key_ctx_load(struct card *card, struct key_ctx *k)
{
    int rc = keys_locate(&card->nvm, &k->kf);
    if (rc)
        return rc;
    uint8_t bitmap;
    bool complete;
    rc = keys_group(&card->nvm, &k->kf, &bitmap, &complete, k->kek);
    if (rc == CARD_OK && !complete)
        rc = CARD_E_CONDITIONS; /* no export or import before the whole group is present */
    if (rc == CARD_OK)
        rc = kek_kcv(k->kek, k->kcv);
    if (rc == CARD_OK)
        rc = keys_state_load(&card->nvm, &k->kf, &k->st);
    return rc;
}

static void bind_hash(const uint8_t point[EC_POINT_LEN], uint8_t out[KEYS_BIND_HASH_LEN])
{
    uint8_t h[32];
    mbedtls_sha256_ret(point, EC_POINT_LEN, h, 0);
    memcpy(out, h, KEYS_BIND_HASH_LEN);
}

int cmd_export_wrapped(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    bool bound = cmd->nc != 0;
    if (bound && cmd->nc != EC_POINT_LEN)
        return CARD_E_WRONG_LENGTH;
    int rc = need_pin(card);
    if (rc)
        return rc;
    if (bound && ec_check_point(cmd->data))
        return CARD_E_WRONG_DATA;
    struct key_ctx k;
    uint8_t kp[KEYS_PRIV_FILE_LEN], eph[KEYS_PRIV_FILE_LEN];
    memset(eph, 0, sizeof eph);
    rc = key_ctx_load(card, &k);
    if (rc == CARD_OK)
        rc = load_keypair(card, &k.kf.priv, kp);
    if (rc == CARD_E_REF_NOT_FOUND)
        rc = CARD_E_CONDITIONS; /* nothing to export */
    uint8_t hash[KEYS_BIND_HASH_LEN] = { 0 };
    if (bound)
        bind_hash(cmd->data, hash);
    if (rc == CARD_OK && (k.st.flags & KEYS_FLAG_LOCKED))
        rc = CARD_E_CONDITIONS;
    if (rc == CARD_OK && (k.st.flags & KEYS_FLAG_BACKUP) && !(k.st.policy & KEYS_POLICY_REEXPORT)) {
        /* Only a repeat to the same binding key: the blob of a cut export (docs/keys.md). */
        bool same = bound && memcmp(hash, k.st.bind_hash, sizeof hash) == 0;
        if (!same)
            rc = CARD_E_CONDITIONS;
    }
    struct card_rec rec;
    if (rc == CARD_OK)
        rc = card_rec_load(&card->nvm, &rec);
    struct blob_header h;
    memset(&h, 0, sizeof h);
    if (rc == CARD_OK) {
        struct crypto_rng rng;
        rc = crypto_rng_init(&rng, card->rng);
        if (rc == CARD_OK)
            rc = crypto_rng_fill(&rng, h.nonce, sizeof h.nonce) ? CARD_E_RNG : CARD_OK;
        if (rc == CARD_OK && bound)
            rc = ec_keygen(crypto_rng_fill, &rng, eph, eph + EC_PRIV_LEN);
        crypto_rng_free(&rng);
    }
    size_t blob_len = 0;
    if (rc == CARD_OK) {
        h.version = BLOB_VERSION;
        h.key_type = BLOB_KEY_TYPE_EC_P256;
        h.key_ref = BLOB_KEY_REF;
        h.attrs = bound ? BLOB_ATTR_BOUND : 0;
        h.bound = bound;
        memcpy(h.kcv, k.kcv, KCV_LEN);
        memcpy(h.src_serial, rec.serial, sizeof h.src_serial);
        h.export_count = k.st.export_count == 0xFFFF ? 0xFFFF : (uint16_t)(k.st.export_count + 1);
        if (bound)
            memcpy(h.src_eph_pub, eph + EC_PRIV_LEN, sizeof h.src_eph_pub);
        rc = blob_wrap(k.kek, &h, bound ? eph : NULL, bound ? cmd->data : NULL, kp,
                       rsp->data + rsp->len, rsp->cap - rsp->len, &blob_len);
    }
    if (rc == CARD_OK) {
        /* The flag is durable before the blob leaves the card. */
        k.st.flags |= KEYS_FLAG_BACKUP;
        k.st.export_count = h.export_count;
        memcpy(k.st.bind_hash, hash, sizeof hash);
        rc = save_state(card, &k.kf, &k.st);
    }
    if (rc == CARD_OK)
        rsp->len += blob_len;
    ct_wipe(&k, sizeof k);
    ct_wipe(kp, sizeof kp);
    ct_wipe(eph, sizeof eph);
    return rc;
}

int cmd_import_wrapped(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    int rc = need_pin(card);
    if (rc)
        return rc;
    struct blob_header h;
    rc = blob_parse_header(cmd->data, cmd->nc, &h);
    if (rc)
        return CARD_E_WRONG_DATA;
    struct key_ctx k;
    uint8_t kp[KEYS_PRIV_FILE_LEN], bind[KEYS_PRIV_FILE_LEN];
    memset(bind, 0, sizeof bind);
    rc = key_ctx_load(card, &k);
    if (rc == CARD_OK) {
        rc = load_keypair(card, &k.kf.priv, kp);
        if (rc == CARD_OK)
            rc = may_replace(card);
        else if (rc == CARD_E_REF_NOT_FOUND)
            rc = CARD_OK;
    }
    if (rc == CARD_OK && memcmp(h.kcv, k.kcv, KCV_LEN) != 0)
        rc = CARD_E_CONDITIONS; /* wrapped under another key group */
    if (rc == CARD_OK && h.bound) {
        rc = load_keypair(card, &k.kf.bind, bind);
        if (rc == CARD_E_REF_NOT_FOUND)
            rc = CARD_E_CONDITIONS; /* bound blob, but no binding key waits for it */
    }
    if (rc == CARD_OK)
        rc = blob_unwrap(k.kek, h.bound ? bind : NULL, cmd->data, cmd->nc, &h, kp) ?
                 CARD_E_WRONG_DATA : CARD_OK;
    if (rc == CARD_OK)
        rc = ec_public_from_private(kp, kp + EC_PRIV_LEN) ? CARD_E_WRONG_DATA : CARD_OK;
    if (rc == CARD_OK) {
        /* Key, provenance and the binding key's erasure commit together. */
        bool external = keys_is_zero(h.src_serial, sizeof h.src_serial);
        state_for_new_key(&k.st, external ? KEYS_ORIGIN_EXTERNAL : KEYS_ORIGIN_IMPORTED,
                          h.src_serial, h.kcv);
        rc = save_key(card, &k.kf, kp, &k.st, h.bound);
    }
    ct_wipe(&k, sizeof k);
    ct_wipe(kp, sizeof kp);
    ct_wipe(bind, sizeof bind);
    return rc;
}

int cmd_lock_export(struct card *card, const struct capdu *cmd, struct rapdu *rsp)
{
    (void)rsp;
    if (cmd->p1 || cmd->p2)
        return CARD_E_P1P2;
    int rc = need_pin(card);
    if (rc)
        return rc;
    struct keys_files kf;
    struct keys_state st;
    rc = keys_locate(&card->nvm, &kf);
    if (rc == CARD_OK)
        rc = keys_state_load(&card->nvm, &kf, &st);
    if (rc || (st.flags & KEYS_FLAG_LOCKED))
        return rc;
    st.flags |= KEYS_FLAG_LOCKED;
    return save_state(card, &kf, &st);
}

int cmd_get_key_group(struct card *card, struct rapdu *rsp)
{
    struct keys_files kf;
    int rc = keys_locate(&card->nvm, &kf);
    if (rc)
        return rc;
    uint8_t kek[32], bitmap;
    bool complete;
    rc = keys_group(&card->nvm, &kf, &bitmap, &complete, kek);
    uint8_t out[2 + KCV_LEN] = { (uint8_t)kf.n, bitmap };
    if (rc == CARD_OK && complete)
        rc = kek_kcv(kek, out + 2);
    ct_wipe(kek, sizeof kek);
    size_t n = complete ? sizeof out : 2;
    if (rc == CARD_OK && !rsp_room(rsp, n))
        rc = CARD_E_INTERNAL;
    if (rc == CARD_OK) {
        memcpy(rsp->data + rsp->len, out, n);
        rsp->len += n;
    }
    return rc;
}

int cmd_get_key_state(struct card *card, struct rapdu *rsp)
{
    struct keys_files kf;
    struct keys_state st;
    int rc = keys_locate(&card->nvm, &kf);
    if (rc == CARD_OK)
        rc = keys_state_load(&card->nvm, &kf, &st);
    uint8_t kp[KEYS_PRIV_FILE_LEN];
    int have = rc == CARD_OK ? load_keypair(card, &kf.priv, kp) : rc;
    ct_wipe(kp, sizeof kp);
    if (rc == CARD_OK && have != CARD_OK && have != CARD_E_REF_NOT_FOUND)
        rc = have;
    if (rc)
        return rc;
    /* key present, policy, flags, origin, source serial (8), source KCV (8), export count (2) */
    uint8_t out[22];
    out[0] = have == CARD_OK;
    out[1] = st.policy;
    out[2] = st.flags;
    out[3] = st.origin;
    memcpy(out + 4, st.src_serial, 8);
    memcpy(out + 12, st.src_kcv, KCV_LEN);
    out[20] = (uint8_t)(st.export_count >> 8);
    out[21] = (uint8_t)st.export_count;
    if (!rsp_room(rsp, sizeof out))
        return CARD_E_INTERNAL;
    memcpy(rsp->data + rsp->len, out, sizeof out);
    rsp->len += sizeof out;
    return CARD_OK;
}

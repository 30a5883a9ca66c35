/* The card's key store: finds the key files of DF 4B00 (docs/keys.md), reads the key group and
 * derives its KEK, and encodes the key-state record. Used by the key commands. */
#ifndef KEYS_H
#define KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "fs.h"
#include "ins.h"
#include "nvm.h"

#define KEYS_PRIV_FILE_LEN (EC_PRIV_LEN + EC_POINT_LEN)
#define KEYS_STATE_LEN 37u
#define KEYS_BIND_HASH_LEN 16u

/* Key-state policy and flag bits (bytes 0 and 1 of EF 4B11). */
#define KEYS_POLICY_REEXPORT 0x01u
#define KEYS_FLAG_BACKUP     0x01u
#define KEYS_FLAG_LOCKED     0x02u

enum keys_origin {
    KEYS_ORIGIN_NONE = 0,
    KEYS_ORIGIN_GENERATED = 1,
    KEYS_ORIGIN_IMPORTED = 2,
    KEYS_ORIGIN_EXTERNAL = 3,
};

struct keys_files {
    unsigned n; /* shares in the group */
    struct fs_file share[KEY_GROUP_MAX_SHARES];
    struct fs_file priv, state, bind;
};

struct keys_state {
    uint8_t policy;
    uint8_t flags;
    uint8_t origin;
    uint8_t src_serial[8];
    uint8_t src_kcv[KCV_LEN];
    uint16_t export_count;
    uint8_t bind_hash[KEYS_BIND_HASH_LEN];
};

/* Finds DF 4B00 under the MF and its key files. Returns 0, CARD_E_REF_NOT_FOUND when the card
 * has no key profile (no DF, no share EF, or a key file missing or too small), or an NVM error. */
int keys_locate(struct nvm *nvm, struct keys_files *kf);

/* Reads which shares are set (bit i-1 for share i) and, when all are, derives the KEK.
 * Returns 0 (with *complete telling whether kek was written) or an NVM error. */
int keys_group(struct nvm *nvm, const struct keys_files *kf, uint8_t *bitmap, bool *complete,
               uint8_t kek[32]);

/* Reads and decodes EF 4B11. Returns 0 or an NVM error. */
int keys_state_load(struct nvm *nvm, const struct keys_files *kf, struct keys_state *st);

/* Stages EF 4B11 into the open transaction. Returns 0 or the nvm error. */
int keys_state_stage(struct nvm *nvm, const struct keys_files *kf, const struct keys_state *st);

/* True when the len bytes at p are all zero (an empty key file); time depends on len only. */
bool keys_is_zero(const uint8_t *p, unsigned len);

#endif

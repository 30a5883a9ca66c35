#include "card_rec.h"

#include <string.h>

#include "ins.h"
#include "card_err.h"
#include "crc32.h"
#include "layout.h"

/* Byte layout: 0-3 magic "ICDC", 4 lcs, 5-12 serial, 13 type length, 14-45 type,
 * 46-59 zero, 60-63 CRC-32 of bytes 0..59. */
#define REC_MAGIC "ICDC"
#define REC_CRC_OFF 60u

static int lcs_valid(uint8_t lcs)
{
    return lcs == LCS_CREATION || lcs == LCS_INIT || lcs == LCS_OPERATIONAL ||
           lcs == LCS_TERMINATED;
}

int card_rec_load(struct nvm *nvm, struct card_rec *rec)
{
    uint8_t b[LAYOUT_CARD_REC_SIZE];
    int rc = nvm_read(nvm, LAYOUT_CARD_REC_ADDR, b, sizeof b);
    if (rc)
        return rc;
    if (memcmp(b, REC_MAGIC, 4) != 0 || card_crc32(b, REC_CRC_OFF) != layout_get_u32(b + REC_CRC_OFF))
        return CARD_E_CORRUPT;
    if (!lcs_valid(b[4]) || b[13] > CARD_REC_TYPE_MAX)
        return CARD_E_CORRUPT;
    rec->lcs = b[4];
    memcpy(rec->serial, b + 5, CARD_REC_SERIAL_LEN);
    rec->type_len = b[13];
    memset(rec->type, 0, sizeof rec->type);
    memcpy(rec->type, b + 14, rec->type_len);
    return CARD_OK;
}

int card_rec_stage(struct nvm *nvm, const struct card_rec *rec)
{
    uint8_t b[LAYOUT_CARD_REC_SIZE];
    memset(b, 0, sizeof b);
    memcpy(b, REC_MAGIC, 4);
    b[4] = rec->lcs;
    memcpy(b + 5, rec->serial, CARD_REC_SERIAL_LEN);
    b[13] = rec->type_len;
    memcpy(b + 14, rec->type, rec->type_len);
    layout_put_u32(b + REC_CRC_OFF, card_crc32(b, REC_CRC_OFF));
    return nvm_write(nvm, LAYOUT_CARD_REC_ADDR, b, sizeof b);
}

/* The card record: card life cycle, serial number and card-type record, kept in NVM. */
#ifndef CARD_REC_H
#define CARD_REC_H

#include <stdint.h>

#include "nvm.h"

#define CARD_REC_SERIAL_LEN 8
#define CARD_REC_TYPE_MAX 32

struct card_rec {
    uint8_t lcs;
    uint8_t serial[CARD_REC_SERIAL_LEN];
    uint8_t type_len; /* 0: card type not set */
    uint8_t type[CARD_REC_TYPE_MAX];
};

/* Reads and checks the record. Returns 0, CARD_E_IO, or CARD_E_CORRUPT (bad magic, CRC or
 * life-cycle value). */
int card_rec_load(struct nvm *nvm, struct card_rec *rec);

/* Stages the record into the open transaction. Returns 0 or the nvm_write error. */
int card_rec_stage(struct nvm *nvm, const struct card_rec *rec);

#endif

/* Internal result codes of the card core. Handlers return these; the dispatcher turns them into
 * an ISO 7816-4 status word in exactly one place (card_sw_from_result in card.c).
 * 0 is success, positive values are warnings that still return data, negative are errors. */
#ifndef CARD_ERR_H
#define CARD_ERR_H

enum card_err {
    CARD_OK = 0,

    /* warnings (processing completed) */
    CARD_W_EOF = 1,              /* 6282 end of file reached before Ne bytes */
    CARD_W_TRIES_LEFT = 2,       /* 63Cx x = rapdu.aux (retries left) */
    CARD_W_FILE_DEACTIVATED = 3, /* 6283 selected file deactivated */

    /* errors (card state unchanged) */
    CARD_E_IO = -1,              /* 6581 memory failure (NVM read/write failed, power cut) */
    CARD_E_CORRUPT = -2,         /* 6581 NVM content fails its checks */
    CARD_E_FOREIGN = -3,         /* NVM image of another layout or product: not mounted */
    CARD_E_WRONG_LENGTH = -4,    /* 6700 Lc/Le absent, present or wrong for this command */
    CARD_E_INCOMPATIBLE = -5,    /* 6981 command incompatible with file structure */
    CARD_E_SECURITY = -6,        /* 6982 security status not satisfied */
    CARD_E_BLOCKED = -7,         /* 6983 authentication method blocked */
    CARD_E_REF_UNUSABLE = -8,    /* 6984 reference data not usable (e.g. PIN never set) */
    CARD_E_CONDITIONS = -9,      /* 6985 conditions of use not satisfied */
    CARD_E_NO_CURRENT_EF = -10,  /* 6986 command not allowed (no current EF) */
    CARD_E_WRONG_DATA = -11,     /* 6A80 incorrect parameters in the command data field */
    CARD_E_FUNC_UNSUPPORTED = -12, /* 6A81 function not supported */
    CARD_E_NOT_FOUND = -13,      /* 6A82 file or application not found */
    CARD_E_NO_SPACE = -14,       /* 6A84 not enough memory space */
    CARD_E_P1P2 = -15,           /* 6A86 incorrect parameters P1-P2 */
    CARD_E_NC_INCONSISTENT = -16,/* 6A87 Nc inconsistent with P1-P2 */
    CARD_E_REF_NOT_FOUND = -17,  /* 6A88 referenced data or reference data not found */
    CARD_E_FILE_EXISTS = -18,    /* 6A89 file already exists */
    CARD_E_NAME_EXISTS = -19,    /* 6A8A DF name already exists */
    CARD_E_OFFSET = -20,         /* 6B00 wrong parameters P1-P2 (offset outside the EF) */
    CARD_E_INS = -21,            /* 6D00 instruction code not supported */
    CARD_E_CLA = -22,            /* 6E00 class not supported */
    CARD_E_CHANNEL = -23,        /* 6881 logical channel not supported */
    CARD_E_SM = -24,             /* 6882 secure messaging not supported */
    CARD_E_CHAIN_BROKEN = -25,   /* 6883 last command of the chain expected */
    CARD_E_INTERNAL = -26,       /* 6F00 no precise diagnosis */
    CARD_E_RNG = -27,            /* 6F00 random source failed */
    CARD_E_TXN_FULL = -28,       /* 6A84 transaction larger than the journal */
};

#endif

/* The card's command set as both sides see it: class bytes, instruction codes, data-object
 * tags, FCP tags, access-condition and life-cycle values, PIN references.
 * docs/commands.md documents each with its bytes. */
#ifndef ICD_INS_H
#define ICD_INS_H

/* Class bytes */
#define CLA_ISO          0x00u /* interindustry, no SM, logical channel 0 */
#define CLA_PROPRIETARY  0x80u /* proprietary commands (key group, wrapped export/import ...) */
#define CLA_CHAIN_BIT    0x10u /* command chaining */
#define CLA_SM_MASK      0x0Cu /* secure messaging indication (first interindustry form) */
#define CLA_CHANNEL_MASK 0x03u /* logical channel number (first interindustry form) */

/* ISO 7816-4/-8/-9 instructions */
#define INS_DEACTIVATE_FILE     0x04u
#define INS_VERIFY              0x20u
#define INS_CHANGE_REF_DATA     0x24u
#define INS_PSO                 0x2Au
#define INS_RESET_RETRY_COUNTER 0x2Cu
#define INS_ACTIVATE_FILE       0x44u
#define INS_GENERATE_KEY_PAIR   0x47u
#define INS_GET_CHALLENGE       0x84u
#define INS_SELECT              0xA4u
#define INS_READ_BINARY         0xB0u
#define INS_GET_RESPONSE        0xC0u
#define INS_GET_DATA            0xCAu
#define INS_UPDATE_BINARY       0xD6u
#define INS_PUT_DATA            0xDAu
#define INS_CREATE_FILE         0xE0u
#define INS_DELETE_FILE         0xE4u
#define INS_TERMINATE_CARD      0xFEu

/* SELECT P1 */
#define SEL_P1_FID        0x00u /* MF, DF or EF by file identifier (empty data: MF) */
#define SEL_P1_CHILD_DF   0x01u
#define SEL_P1_EF         0x02u /* EF under the current DF */
#define SEL_P1_PARENT     0x03u
#define SEL_P1_DF_NAME    0x04u
#define SEL_P1_PATH_MF    0x08u
#define SEL_P1_PATH_DF    0x09u
/* SELECT P2 (response) */
#define SEL_P2_FCI        0x00u
#define SEL_P2_FCP        0x04u
#define SEL_P2_FMD        0x08u
#define SEL_P2_NONE       0x0Cu

/* GET DATA / PUT DATA tags (P1-P2) */
#define DO_CARD_SERIAL    0xDF01u /* 8 bytes, set once when the NVM is formatted */
#define DO_CARD_TYPE      0xDF02u /* card-type record, 1..32 bytes, PUT DATA before operational */
#define DO_CARD_LCS       0xDF03u /* 1 byte, ISO 7816-4 life-cycle status byte of the card */
#define DO_PIN_STATUS     0xDF04u /* per reference: ref, set?, tries left, max tries */
#define DO_FILE_LIST      0xDF05u /* every file: FID path, descriptor, size, LCS */
#define DO_NVM_INFO       0xDF06u /* NVM total, used and free bytes */

/* FCP template and its tags (CREATE FILE data, SELECT response) */
#define FCP_TEMPLATE      0x62u
#define FCP_SIZE          0x80u /* 2 bytes: number of data bytes of a transparent EF */
#define FCP_DESCRIPTOR    0x82u /* file descriptor byte */
#define FCP_FID           0x83u
#define FCP_DF_NAME       0x84u
#define FCP_SEC_PROP      0x86u /* security attributes, proprietary: AC read, update, delete */
#define FCP_SFI           0x88u
#define FCP_LCS           0x8Au

/* File descriptor bytes (ISO 7816-4 table 12) */
#define FDB_WORKING_EF    0x01u /* working EF, transparent */
#define FDB_INTERNAL_EF   0x09u /* internal EF, transparent: never readable by READ BINARY */
#define FDB_DF            0x38u

/* Access conditions, one byte each in FCP tag 86 (read, update, delete).
 * For a DF: "update" is the condition to create files in it. */
#define AC_ALWAYS 0x00u
#define AC_PIN    0x01u /* user PIN verified */
#define AC_ADMIN  0x02u /* admin (security officer) PIN verified */
#define AC_NEVER  0xFFu

/* Life-cycle status bytes (ISO 7816-4 table 13) */
#define LCS_CREATION     0x01u
#define LCS_INIT         0x03u
#define LCS_OPERATIONAL  0x05u /* activated */
#define LCS_DEACTIVATED  0x04u
#define LCS_TERMINATED   0x0Fu

/* Reference data (P2 of VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER) */
#define PIN_REF_USER  0x81u
#define PIN_REF_PUK   0x82u
#define PIN_REF_ADMIN 0x83u

#define FID_MF 0x3F00u

/* ---- Key group, first keys, wrapped export/import (docs/keys.md) ------------------------- */

/* Proprietary instructions (CLA 80) */
#define INS_SET_SHARE        0xD8u /* P2 = share index 1..N, data = 32-byte share */
#define INS_BINDING_KEY      0xE2u /* destination: P1 00 current-or-new, 01 fresh; returns 65-byte point */
#define INS_EXPORT_WRAPPED   0xE4u /* data: destination binding point (65) or none (unbound) */
#define INS_IMPORT_WRAPPED   0xE6u /* data: wrapped blob */
#define INS_LOCK_EXPORT      0xE8u /* no data: export refused forever */

/* GENERATE ASYMMETRIC KEY PAIR P1 */
#define GEN_P1_GENERATE 0x80u
#define GEN_P1_READ_PUB 0x81u
/* PERFORM SECURITY OPERATION: DECIPHER (P1P2 80 86) = ECDH with the card's private key */
#define PSO_P1_DECIPHER 0x80u
#define PSO_P2_DECIPHER 0x86u

/* GET DATA tags */
#define DO_KEY_GROUP  0xDF10u /* N, bitmap of shares present, KCV (8) when complete */
#define DO_KEY_STATE  0xDF11u /* key present, provenance, export count, flags */

/* Key files: internal EFs in DF 4B00, created by the profile (icdup init / issuance script) */
#define FID_KEY_DF         0x4B00u
#define FID_SHARE_FIRST    0x4B01u /* 4B01..4B08: share i, 32 bytes, all zero = not set */
#define FID_PRIV_KEY       0x4B10u /* private scalar (32) || public point (65) */
#define FID_KEY_STATE      0x4B11u /* policy, flags, provenance (docs/keys.md) */
#define FID_BINDING_KEY    0x4B12u /* destination's ephemeral private (32) || public (65) */
#define FID_PARTNER_PUB    0x4B20u /* partner's public encoding key (65), working EF */

#define KEY_GROUP_MAX_SHARES 8u
#define KEY_SHARE_LEN 32u
#define EC_PRIV_LEN 32u
#define EC_POINT_LEN 65u  /* uncompressed P-256 point 04 || X || Y */
#define KCV_LEN 8u

#endif

/* Card types as the issuance system holds them in memory: what the card-type file
 * (docs/issuance.md, "Card-type file") defines and the issuance file stores. typefile.c parses
 * the JSON file into a struct ct_file; idb.c stores it and reads one type back.
 *
 *   design            a print design of the card face (cardface.h)
 *   type readout      a command that reads a card's type (e.g. GET DATA DF02)
 *   identity readout  the commands that read a card's identity (SELECT EF, READ BINARY); the
 *                     identity is the response data of the last one, decoded
 *   correlation       (type readout, value it returned) -> card type and identity readout
 *   card type         data items its records carry, and per role (original, backup) the
 *                     personalization script: instruction template, additional data item,
 *                     expected status word */
#ifndef CARDTYPE_H
#define CARDTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cardface.h"

#define CT_NAME_MAX 32u        /* names of types, designs, readouts, items */
#define CT_LABEL_MAX 64u
#define CT_TEXT_MAX 128u       /* descriptions */
#define CT_APDU_MAX 261u       /* a short APDU: 4 + 1 + 255 + 1 */
#define CT_DATA_MAX 255u       /* literal data plus item of one step */
#define CT_TYPE_VALUE_MAX 32u  /* the card-type record of a card (PUT DATA DF02) */
#define CT_MAX_ITEMS 16u
#define CT_MAX_STEPS 64u
#define CT_MAX_READOUT_STEPS 4u
#define CT_MAX_TYPES 16u
#define CT_MAX_DESIGNS 16u
#define CT_MAX_READOUTS 16u
#define CT_ITEM_MAX 255u       /* longest value of a data item, in bytes once encoded */

enum ct_role { CT_ORIGINAL = 0, CT_BACKUP = 1 };
#define CT_ROLES 2

/* How a record's data item is checked at import and encoded into a command. */
enum ct_kind {
    CT_TEXT,   /* UTF-8 text, sent as is */
    CT_DIGITS, /* decimal digits, sent as ASCII */
    CT_DATE,   /* YYYY-MM-DD, sent as 4 bytes of BCD YYYYMMDD */
    CT_SECRET, /* a password or PIN, printable ASCII, sent as is; never shown */
    CT_HEX,    /* hex digits, sent decoded (e.g. a key share: 64 digits, 32 bytes); never shown */
};

/* How the identity readout's response data becomes the identity string. */
enum ct_encoding {
    CT_ENC_ASCII, /* printable ASCII; trailing 00, FF and spaces are padding */
    CT_ENC_HEX,   /* the bytes as upper-case hex */
    CT_ENC_BCD,   /* packed BCD digits; a trailing F nibble is padding */
};

struct ct_item {
    char name[CT_NAME_MAX + 1];
    enum ct_kind kind;
    unsigned max_len;  /* bytes of the imported value (UTF-8 for text), 1..CT_ITEM_MAX */
    bool required;
};

/* One personalization step. The command is header, then (when data or an item is present)
 * Lc and data ‖ the item's encoded value. Built-in items, beside the record's own: "identity",
 * "card_type" (the type value), "issue_count" (2 bytes big-endian: the count this card will
 * carry), "role" (1 byte 'O' or 'B'), and the issuer's "puk" and "admin_pin" (from the
 * issuer's secrets file, never stored in the issuance file). */
struct ct_step {
    char label[CT_LABEL_MAX + 1];
    uint8_t header[4];
    uint8_t data[CT_DATA_MAX];
    size_t data_len;
    char item[CT_NAME_MAX + 1]; /* "" when none */
    uint16_t expect_sw;
};

struct ct_command {
    uint8_t apdu[CT_APDU_MAX];
    size_t len;
    uint16_t expect_sw;
};

struct ct_type_readout {
    char name[CT_NAME_MAX + 1];
    struct ct_command cmd;
    int priority; /* tried in increasing order */
};

struct ct_identity_readout {
    char name[CT_NAME_MAX + 1];
    enum ct_encoding encoding;
    struct ct_command steps[CT_MAX_READOUT_STEPS];
    size_t nsteps;
};

struct ct_type {
    char name[CT_NAME_MAX + 1];
    char description[CT_TEXT_MAX + 1];
    char interface[CT_NAME_MAX + 1];       /* "contact", "dual", "contactless" */
    char design[CT_NAME_MAX + 1];          /* default print design */
    char stripe_iin[12];                   /* issuer identification number for the stripe PAN;
                                              "" when the type has no stripe */
    /* Correlation: reading this type's cards with type_readout returns type_value; their
     * identity is read with identity_readout. */
    char type_readout[CT_NAME_MAX + 1];
    uint8_t type_value[CT_TYPE_VALUE_MAX];
    size_t type_value_len;
    char identity_readout[CT_NAME_MAX + 1];
    struct ct_item items[CT_MAX_ITEMS];
    size_t nitems;
    struct ct_step script[CT_ROLES][CT_MAX_STEPS];
    size_t nsteps[CT_ROLES];
};

/* Everything a card-type file defines (large: allocate it, do not put it on the stack). */
struct ct_file {
    struct cardface_design designs[CT_MAX_DESIGNS];
    size_t ndesigns;
    struct ct_type_readout type_readouts[CT_MAX_READOUTS];
    size_t ntype_readouts;
    struct ct_identity_readout identity_readouts[CT_MAX_READOUTS];
    size_t nidentity_readouts;
    struct ct_type types[CT_MAX_TYPES];
    size_t ntypes;
};

/* "original" / "backup" and back. ct_role_parse returns 0 or -1. */
const char *ct_role_name(enum ct_role r);
int ct_role_parse(const char *s, enum ct_role *r);

const char *ct_kind_name(enum ct_kind k);
int ct_kind_parse(const char *s, enum ct_kind *k);

const char *ct_encoding_name(enum ct_encoding e);
int ct_encoding_parse(const char *s, enum ct_encoding *e);

/* The item of a type named name, or NULL. */
const struct ct_item *ct_find_item(const struct ct_type *t, const char *name);

/* True for the built-in item names of struct ct_step. */
bool ct_builtin_item(const char *name);

/* Checks a value imported for item it (text of len bytes): length, characters, a real calendar
 * date for CT_DATE, an even number of hex digits for CT_HEX. Returns 0, or -1 with a message in
 * err that never contains the value of a CT_SECRET or CT_HEX item. */
int ct_check_value(const struct ct_item *it, const char *value, size_t len, char *err,
                   size_t errlen);

/* Encodes a checked value as a command carries it (see enum ct_kind) into out (cap bytes).
 * Returns the length, or -1 when it does not fit or the value is malformed. */
int ct_encode_value(enum ct_kind kind, const char *value, size_t len, uint8_t *out, size_t cap);

/* Decodes an identity readout's response per enc into out (NUL-terminated). Returns 0, or -1
 * (empty after padding, a byte outside the encoding, or too long for cap). */
int ct_decode_identity(enum ct_encoding enc, const uint8_t *data, size_t len, char *out,
                       size_t cap);

#endif

/* Typed wrappers over transport_exchange for every card command the host tools use
 * (docs/commands.md, docs/keys.md). One struct cardop per card names it in messages ("src",
 * "dst", "card"), counts the command APDUs sent and keeps the last status word.
 *
 * Every function returns CARDOP_OK (0) when the card answered 9000 with a well-formed answer,
 * or a negative cardop_err with a message in c->err built from the operation, the card's name
 * and the status word, e.g. "VERIFY user PIN on dst: wrong PIN, 2 tries left". Messages never
 * contain a PIN, a share or any other secret byte; command buffers that carried one are wiped. */
#ifndef CARD_OPS_H
#define CARD_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

enum cardop_err {
    CARDOP_OK = 0,
    CARDOP_E_TRANSPORT = -1, /* the exchange itself failed (reader, socket, simulator) */
    CARDOP_E_SW = -2,        /* the card refused: c->sw holds its status word */
    CARDOP_E_RESPONSE = -3,  /* 9000, but the answer has the wrong length or form */
    CARDOP_E_ARG = -4,       /* bad arguments (e.g. a PIN longer than 16 bytes) */
};

#define CARDOP_ERR_LEN 384u
#define CARDOP_SERIAL_LEN 8u
#define CARDOP_PIN_MAX 16u
#define CARDOP_PIN_MIN 4u

struct cardop {
    struct transport *t;
    char name[24];          /* how messages call this card: "src", "dst", "card" */
    unsigned long apdus;    /* command exchanges (a GET RESPONSE added by the transport is not
                               counted; no command here needs one: answers fit Le 00) */
    uint16_t sw;            /* status word of the last command, 0 when none was answered */
    char err[CARDOP_ERR_LEN];
};

/* Binds c to an open transport. name (NULL: "card") is copied. */
void cardop_init(struct cardop *c, struct transport *t, const char *name);

/* ---- generic -------------------------------------------------------------------------- */

/* Sends one command APDU. what names it in messages ("SELECT MF"). On 9000 copies the response
 * data into out (cap bytes; out may be NULL when cap is 0) and sets *out_len (may be NULL).
 * Any other status word: CARDOP_E_SW with "<what> on <name>: <meaning> (SW)". A command
 * buffer carrying a secret is the caller's to wipe; nothing of any command is echoed. The
 * internal response buffer is wiped after use. */
int cardop_command(struct cardop *c, const char *what, const uint8_t *capdu, size_t len,
                   uint8_t *out, size_t cap, size_t *out_len);

/* ---- files and personalization -------------------------------------------------------- */

/* SELECT by FID (00 A4 00 0C 02 FID), no FCP returned. */
int cardop_select_fid(struct cardop *c, uint16_t fid);

/* PUT DATA (00 DA tag) of len bytes. */
int cardop_put_data(struct cardop *c, uint16_t tag, const uint8_t *data, size_t len);

/* CHANGE REFERENCE DATA P1 01 (new value only, while unset or during personalization) of the
 * reference ref (PIN_REF_USER, PIN_REF_PUK, PIN_REF_ADMIN). len 4..16. */
int cardop_set_pin(struct cardop *c, uint8_t ref, const uint8_t *pin, size_t len);

/* CREATE FILE in the current DF: fdb FDB_DF / FDB_WORKING_EF / FDB_INTERNAL_EF, size for EFs,
 * access conditions read, update (create for a DF), delete; sfi 0 for none. */
int cardop_create_file(struct cardop *c, uint16_t fid, uint8_t fdb, uint16_t size,
                       const uint8_t ac[3], uint8_t sfi);

/* UPDATE BINARY of the current EF at offset (short APDU, len 1..255). */
int cardop_update_binary(struct cardop *c, uint16_t offset, const uint8_t *data, size_t len);

/* ACTIVATE FILE on the current file (on the MF: the card becomes operational). */
int cardop_activate(struct cardop *c);

/* TERMINATE CARD USAGE: the card's life cycle becomes "terminated" for good (admin PIN
 * verified once the card is operational; 6985 when it is terminated already). */
int cardop_terminate(struct cardop *c);

/* ---- identity and PINs ---------------------------------------------------------------- */

/* GET DATA of a tag into out (cap bytes), *out_len set. 6A88 is CARDOP_E_SW like any refusal. */
int cardop_get_data(struct cardop *c, uint16_t tag, uint8_t *out, size_t cap, size_t *out_len);

/* GET DATA DF01: the 8-byte serial. */
int cardop_serial(struct cardop *c, uint8_t serial[CARDOP_SERIAL_LEN]);

/* GET DATA DF03: the card life-cycle byte. */
int cardop_life_cycle(struct cardop *c, uint8_t *lcs);

/* VERIFY (00 20 00 ref) with a PIN of 4..16 bytes. 63Cx: "wrong PIN, x tries left";
 * 6983: blocked; 6984: never set. */
int cardop_verify(struct cardop *c, uint8_t ref, const uint8_t *pin, size_t len);

/* Name of a PIN reference for messages: "user PIN", "PUK", "admin PIN". */
const char *cardop_pin_name(uint8_t ref);

/* ---- key group and keys (docs/keys.md) ------------------------------------------------ */

struct cardop_group {
    unsigned n;          /* shares in the group, 1..8 */
    uint8_t present;     /* bit i-1: share i is set */
    bool complete;       /* all n present: kcv is valid */
    uint8_t kcv[8];
};

/* GET DATA DF10. 6A88: "<name> has no key profile (DF 4B00): personalize it with icdup init". */
int cardop_key_group(struct cardop *c, struct cardop_group *g);

/* Decodes a DF10 answer: N (1..8), the bitmap of shares present (within N), and the KCV
 * exactly when all N are present (n = 10 bytes, else 2). Returns 0, or -1 when malformed with
 * *why (may be NULL) set to a short reason ("not 2 or 10 bytes"); g is untouched then. */
int cardop_key_group_decode(const uint8_t *data, size_t len, struct cardop_group *g,
                            const char **why);

struct cardop_key_state {
    bool present;           /* a key pair is in 4B10 */
    uint8_t policy;         /* bit 0: a second export is allowed */
    uint8_t flags;          /* bit 0: backup generated, bit 1: export locked */
    uint8_t origin;         /* 0 none, 1 generated here, 2 imported from a card, 3 external */
    uint8_t src_serial[8];  /* origin 2: the source card's serial */
    uint8_t src_kcv[8];     /* origin 2/3: the KCV the key arrived under */
    uint16_t export_count;
};

#define CARDOP_POLICY_REEXPORT 0x01u
#define CARDOP_FLAG_BACKUP 0x01u
#define CARDOP_FLAG_LOCKED 0x02u
#define CARDOP_ORIGIN_NONE 0x00u
#define CARDOP_ORIGIN_GENERATED 0x01u
#define CARDOP_ORIGIN_IMPORTED 0x02u
#define CARDOP_ORIGIN_EXTERNAL 0x03u

/* GET DATA DF11. */
int cardop_key_state(struct cardop *c, struct cardop_key_state *st);

/* Decodes a DF11 answer (22 bytes). Returns 0 or -1 when malformed. */
int cardop_key_state_decode(const uint8_t *data, size_t len, struct cardop_key_state *st);

/* Short text for an origin byte: "none", "generated here", "imported from a card",
 * "imported from an external generator". */
const char *cardop_origin_name(uint8_t origin);

/* SET SHARE index (1..8) with a 32-byte share. 6985: already set. */
int cardop_set_share(struct cardop *c, unsigned index, const uint8_t share[32]);

/* GENERATE ASYMMETRIC KEY PAIR (00 47 80 00): the new public point. 6985: a key exists and the
 * admin PIN is not verified. */
int cardop_generate(struct cardop *c, uint8_t pub[65]);

/* Read public key (00 47 81 00). 6A88 (c->sw): no key. */
int cardop_read_pubkey(struct cardop *c, uint8_t pub[65]);

/* PSO DECIPHER: the X coordinate of ECDH(card key, point). The answer is a secret: the caller
 * wipes x. */
int cardop_decipher(struct cardop *c, const uint8_t point[65], uint8_t x[32]);

/* BINDING KEY: fresh = false (P1 00) returns the pending binding point or a new one; true
 * (P1 01) always a new one. */
int cardop_binding_key(struct cardop *c, bool fresh, uint8_t point[65]);

/* EXPORT WRAPPED: bound to bind_point (65 bytes) or unbound (NULL). blob gets the wrapped key
 * (cap >= 151), *len its length (86 unbound, 151 bound). */
int cardop_export(struct cardop *c, const uint8_t *bind_point, uint8_t *blob, size_t cap,
                  size_t *len);

/* IMPORT WRAPPED of a blob (1..255 bytes). */
int cardop_import(struct cardop *c, const uint8_t *blob, size_t len);

/* LOCK EXPORT: export refused forever. */
int cardop_lock_export(struct cardop *c);

#endif

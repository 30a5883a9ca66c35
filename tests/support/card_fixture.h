/* Test fixture: a card core over a RAM NVM with a deterministic random source, plus helpers
 * to send APDUs written in hex and to snapshot the NVM for "unchanged" assertions. */
#ifndef CARD_FIXTURE_H
#define CARD_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "card.h"
#include "nvm_sim.h"

struct fx {
    struct nvm_sim nvm;
    struct hal_rng rng;
    uint32_t rng_state;
    struct card card;
    uint8_t rsp[CARD_RAPDU_MAX];
    size_t rsp_len;
};

/* Formats a fresh card (serial from a fixed seed) and powers it on. Returns 0 or < 0. */
int fx_open(struct fx *fx);
void fx_close(struct fx *fx);

/* cmocka group fixtures: *state becomes a heap fx, blank or personalized (fx_personalize);
 * fx_teardown closes and frees it. Return 0, or -1 when the card cannot be set up. */
int fx_setup_blank(void **state);
int fx_setup_perso(void **state);
int fx_teardown(void **state);

/* Remounts from the NVM image as after a power cycle (power restored first).
 * Returns the card_mount result. */
int fx_reboot(struct fx *fx);

/* Sends an APDU given in hex (spaces allowed), copied into an exact-size heap buffer so ASan
 * catches over-reads. Returns SW1SW2; the data is in fx->rsp[0 .. fx->rsp_len - 2). */
uint16_t fx_apdu(struct fx *fx, const char *hex);

/* Sends raw bytes (again through an exact-size copy). Returns SW1SW2. */
uint16_t fx_raw(struct fx *fx, const uint8_t *apdu, size_t len);

/* Response data length of the last APDU. */
size_t fx_data_len(const struct fx *fx);

/* A personalized card: user PIN "123456", PUK "12345678", admin "87654321", a DF 5000 with
 * AID A0 00 00 06 47 49 43 44 (ACs create=admin), in it a working EF 5001 (64 bytes, read
 * always, update PIN, SFI 1) and an internal EF 5002 (32 bytes), card type "TEST", MF activated.
 * Returns 0 or the first failing SW. */
uint16_t fx_personalize(struct fx *fx);

/* Creates a file in the current DF through CREATE FILE (fdb 01 working EF, 09 internal EF,
 * 38 DF; size ignored for a DF). Returns the status word. */
uint16_t fx_create(struct fx *fx, uint16_t fid, uint8_t fdb, uint16_t size, uint8_t ac_read,
                   uint8_t ac_update, uint8_t ac_delete);

/* On a personalized card: verifies the admin PIN and lays out the key profile of docs/keys.md
 * (DF 4B00, n share EFs, key, state, binding and partner files); policy is written to the
 * state's byte 0. Leaves the security state cleared (power cycle). Returns 0 or the failing SW. */
uint16_t fx_key_profile(struct fx *fx, unsigned n, uint8_t policy);

/* Parses hex into buf (cap bytes). Returns the byte count or -1. */
int fx_hex(const char *hex, uint8_t *buf, size_t cap);

#endif

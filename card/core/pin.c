#include "pin.h"

#include <string.h>

#include "card_err.h"
#include "crc32.h"
#include "ct.h"
#include "ins.h"
#include "layout.h"

/* PIN slot, LAYOUT_PIN_SIZE bytes: 0 reference, 1 set (0/1), 2 tries left, 3 max tries,
 * 4 length, 5-20 value (zero padded), 21-27 zero, 28-31 CRC-32 of bytes 0..27. */
#define PIN_CRC_OFF 28u
#define PIN_VAL_OFF 5u

struct pin_slot {
    uint8_t ref, set, tries, max, len;
    uint8_t value[16];
};

static const uint8_t pin_refs[LAYOUT_PIN_SLOTS] = { PIN_REF_USER, PIN_REF_PUK, PIN_REF_ADMIN };
static const uint8_t pin_max[LAYOUT_PIN_SLOTS] = { CARD_PIN_TRIES, CARD_PUK_TRIES,
                                                   CARD_ADMIN_TRIES };

static int slot_of(uint8_t ref)
{
    for (unsigned i = 0; i < LAYOUT_PIN_SLOTS; i++)
        if (pin_refs[i] == ref)
            return (int)i;
    return CARD_E_REF_NOT_FOUND;
}

static uint32_t addr_of(int slot)
{
    return LAYOUT_PIN_ADDR + (uint32_t)slot * LAYOUT_PIN_SIZE;
}

static int load(struct nvm *nvm, int slot, struct pin_slot *p)
{
    uint8_t b[LAYOUT_PIN_SIZE];
    int rc = nvm_read(nvm, addr_of(slot), b, sizeof b);
    if (rc == CARD_OK) {
        if (card_crc32(b, PIN_CRC_OFF) != layout_get_u32(b + PIN_CRC_OFF) ||
            b[0] != pin_refs[slot] || b[1] > 1 || b[3] == 0 || b[3] > 15 || b[2] > b[3] ||
            b[4] > CARD_PIN_MAX_LEN || (b[1] == 1) != (b[4] != 0)) {
            rc = CARD_E_CORRUPT;
        } else {
            p->ref = b[0];
            p->set = b[1];
            p->tries = b[2];
            p->max = b[3];
            p->len = b[4];
            memcpy(p->value, b + PIN_VAL_OFF, sizeof p->value);
        }
    }
    ct_wipe(b, sizeof b);
    return rc;
}

/* Writes the slot as one secret transaction (the journal copy of the value is wiped). */
static int store(struct nvm *nvm, int slot, const struct pin_slot *p)
{
    uint8_t b[LAYOUT_PIN_SIZE];
    memset(b, 0, sizeof b);
    b[0] = p->ref;
    b[1] = p->set;
    b[2] = p->tries;
    b[3] = p->max;
    b[4] = p->len;
    memcpy(b + PIN_VAL_OFF, p->value, sizeof p->value);
    layout_put_u32(b + PIN_CRC_OFF, card_crc32(b, PIN_CRC_OFF));
    int rc = nvm_write_atomic(nvm, addr_of(slot), b, sizeof b, NVM_TXN_SECRET);
    ct_wipe(b, sizeof b);
    return rc;
}

int pin_format(struct nvm *nvm)
{
    for (unsigned i = 0; i < LAYOUT_PIN_SLOTS; i++) {
        uint8_t b[LAYOUT_PIN_SIZE];
        memset(b, 0, sizeof b);
        b[0] = pin_refs[i];
        b[2] = pin_max[i];
        b[3] = pin_max[i];
        layout_put_u32(b + PIN_CRC_OFF, card_crc32(b, PIN_CRC_OFF));
        int rc = nvm_write(nvm, addr_of((int)i), b, sizeof b);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

int pin_check(struct nvm *nvm)
{
    for (unsigned i = 0; i < LAYOUT_PIN_SLOTS; i++) {
        struct pin_slot p;
        int rc = load(nvm, (int)i, &p);
        ct_wipe(&p, sizeof p);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

int pin_status(struct nvm *nvm, uint8_t ref, struct pin_status *st)
{
    int slot = slot_of(ref);
    if (slot < 0)
        return slot;
    struct pin_slot p;
    int rc = load(nvm, slot, &p);
    if (rc == CARD_OK) {
        st->ref = ref;
        st->set = p.set;
        st->tries_left = p.tries;
        st->max_tries = p.max;
        st->len = p.len;
    }
    ct_wipe(&p, sizeof p);
    return rc;
}

int pin_verify(struct nvm *nvm, uint8_t ref, const uint8_t *candidate, size_t len,
               uint8_t *tries_left)
{
    int slot = slot_of(ref);
    if (slot < 0)
        return slot;
    struct pin_slot p;
    int rc = load(nvm, slot, &p);
    if (rc == CARD_OK && !p.set)
        rc = CARD_E_REF_UNUSABLE;
    else if (rc == CARD_OK && p.tries == 0)
        rc = CARD_E_BLOCKED;
    if (rc == CARD_OK) {
        /* Spend the try first and make it durable; only then look at the candidate. */
        p.tries--;
        rc = store(nvm, slot, &p);
    }
    if (rc == CARD_OK) {
        uint8_t padded[16] = { 0 };
        size_t n = len <= sizeof padded ? len : sizeof padded;
        memcpy(padded, candidate, n);
        int same = ct_equal(padded, p.value, sizeof padded) & (len == p.len);
        ct_wipe(padded, sizeof padded);
        if (same) {
            p.tries = p.max;
            rc = store(nvm, slot, &p);
        } else {
            *tries_left = p.tries;
            rc = CARD_W_TRIES_LEFT;
        }
    }
    ct_wipe(&p, sizeof p);
    return rc;
}

int pin_set(struct nvm *nvm, uint8_t ref, const uint8_t *value, size_t len)
{
    int slot = slot_of(ref);
    if (slot < 0)
        return slot;
    if (len < CARD_PIN_MIN_LEN || len > CARD_PIN_MAX_LEN)
        return CARD_E_WRONG_DATA;
    struct pin_slot p;
    int rc = load(nvm, slot, &p);
    if (rc == CARD_OK) {
        memset(p.value, 0, sizeof p.value);
        memcpy(p.value, value, len);
        p.len = (uint8_t)len;
        p.set = 1;
        p.tries = p.max;
        rc = store(nvm, slot, &p);
    }
    ct_wipe(&p, sizeof p);
    return rc;
}

int pin_unblock(struct nvm *nvm, uint8_t ref)
{
    int slot = slot_of(ref);
    if (slot < 0)
        return slot;
    struct pin_slot p;
    int rc = load(nvm, slot, &p);
    if (rc == CARD_OK && !p.set)
        rc = CARD_E_REF_UNUSABLE;
    if (rc == CARD_OK && p.tries != p.max) {
        p.tries = p.max;
        rc = store(nvm, slot, &p);
    }
    ct_wipe(&p, sizeof p);
    return rc;
}

#include "profile.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "ins.h"
#include "sw.h"

/* Where a step's data comes from when it is not a literal of the table. */
enum profile_value {
    PV_LITERAL,   /* data/data_len of the row */
    PV_CARD_TYPE, /* options: card type */
    PV_PIN_USER,  /* secrets: pin */
    PV_PIN_PUK,   /* secrets: puk */
    PV_PIN_ADMIN, /* secrets: admin */
    PV_POLICY,    /* the policy byte of 4B11 */
    PV_SHARE,     /* secrets: share.P2 */
};

/* When a row applies. */
enum profile_when {
    PW_ALWAYS,
    PW_SHARE_EF,   /* share EF number arg exists: arg <= N */
    PW_REEXPORT,   /* --allow-reexport */
    PW_SHARE_GIVEN /* share arg is in the secrets (and arg <= N) */
};

struct profile_row {
    const char *label;
    uint8_t header[4];        /* CLA INS P1 P2 */
    const uint8_t *data;      /* literal data (PV_LITERAL) */
    uint8_t data_len;
    enum profile_value value;
    enum profile_when when;
    uint8_t arg;              /* share number for PW_SHARE_EF / PW_SHARE_GIVEN */
    uint16_t expect_sw;
};

/* FCP templates (docs/commands.md): 82 descriptor, 83 FID, 80 size, 86 AC read/update/delete. */
#define FCP_DF(fid_hi, fid_lo, r, u, d) \
    { 0x62, 0x0C, 0x82, 0x01, 0x38, 0x83, 0x02, fid_hi, fid_lo, 0x86, 0x03, r, u, d }
#define FCP_EF(fdb, fid_hi, fid_lo, size, r, u, d)                                          \
    { 0x62, 0x10, 0x82, 0x01, fdb, 0x83, 0x02, fid_hi, fid_lo, 0x80, 0x02, 0x00, size, 0x86, \
      0x03, r, u, d }

static const uint8_t mf[] = { 0x3F, 0x00 };
static const uint8_t fcp_4b00[] = FCP_DF(0x4B, 0x00, 0x00, 0x02, 0xFF);
static const uint8_t fcp_share[8][18] = {
    FCP_EF(0x09, 0x4B, 0x01, 32, 0xFF, 0xFF, 0xFF), FCP_EF(0x09, 0x4B, 0x02, 32, 0xFF, 0xFF, 0xFF),
    FCP_EF(0x09, 0x4B, 0x03, 32, 0xFF, 0xFF, 0xFF), FCP_EF(0x09, 0x4B, 0x04, 32, 0xFF, 0xFF, 0xFF),
    FCP_EF(0x09, 0x4B, 0x05, 32, 0xFF, 0xFF, 0xFF), FCP_EF(0x09, 0x4B, 0x06, 32, 0xFF, 0xFF, 0xFF),
    FCP_EF(0x09, 0x4B, 0x07, 32, 0xFF, 0xFF, 0xFF), FCP_EF(0x09, 0x4B, 0x08, 32, 0xFF, 0xFF, 0xFF),
};
static const uint8_t fcp_4b10[] = FCP_EF(0x09, 0x4B, 0x10, 97, 0xFF, 0xFF, 0xFF);
static const uint8_t fcp_4b11[] = FCP_EF(0x09, 0x4B, 0x11, 48, 0xFF, 0xFF, 0xFF);
static const uint8_t fcp_4b12[] = FCP_EF(0x09, 0x4B, 0x12, 97, 0xFF, 0xFF, 0xFF);
static const uint8_t fcp_4b20[] = FCP_EF(0x01, 0x4B, 0x20, 65, 0x00, 0x02, 0x02);

#define CREATE { 0x00, INS_CREATE_FILE, 0x00, 0x00 }
#define SHARE_EF(i) \
    { "create share EF 4B0" #i, CREATE, fcp_share[i - 1], 18, PV_LITERAL, PW_SHARE_EF, i, SW_OK }
#define SET_SHARE(i)                                                                   \
    { "set share " #i, { CLA_PROPRIETARY, INS_SET_SHARE, 0x00, i }, NULL, 0, PV_SHARE, \
      PW_SHARE_GIVEN, i, SW_OK }

/* The profile. Files are created in the current DF; a created EF becomes current and its DF
 * stays the current DF, so no SELECT is needed between the creations in 4B00. Access
 * conditions are not enforced before ACTIVATE FILE on the MF (personalization), which is how
 * 4B11's policy byte is written although its update condition is "never". */
static const struct profile_row profile_table[] = {
    { "card type", { 0x00, INS_PUT_DATA, 0xDF, 0x02 }, NULL, 0, PV_CARD_TYPE, PW_ALWAYS, 0, SW_OK },
    { "user PIN", { 0x00, INS_CHANGE_REF_DATA, 0x01, PIN_REF_USER }, NULL, 0, PV_PIN_USER,
      PW_ALWAYS, 0, SW_OK },
    { "PUK", { 0x00, INS_CHANGE_REF_DATA, 0x01, PIN_REF_PUK }, NULL, 0, PV_PIN_PUK, PW_ALWAYS, 0,
      SW_OK },
    { "admin PIN", { 0x00, INS_CHANGE_REF_DATA, 0x01, PIN_REF_ADMIN }, NULL, 0, PV_PIN_ADMIN,
      PW_ALWAYS, 0, SW_OK },
    { "select MF", { 0x00, INS_SELECT, SEL_P1_FID, SEL_P2_NONE }, mf, 2, PV_LITERAL, PW_ALWAYS, 0,
      SW_OK },
    { "create DF 4B00", CREATE, fcp_4b00, sizeof fcp_4b00, PV_LITERAL, PW_ALWAYS, 0, SW_OK },
    SHARE_EF(1), SHARE_EF(2), SHARE_EF(3), SHARE_EF(4),
    SHARE_EF(5), SHARE_EF(6), SHARE_EF(7), SHARE_EF(8),
    { "create key EF 4B10", CREATE, fcp_4b10, sizeof fcp_4b10, PV_LITERAL, PW_ALWAYS, 0, SW_OK },
    { "create key state EF 4B11", CREATE, fcp_4b11, sizeof fcp_4b11, PV_LITERAL, PW_ALWAYS, 0,
      SW_OK },
    { "key state policy: re-export allowed", { 0x00, INS_UPDATE_BINARY, 0x00, 0x00 }, NULL, 0,
      PV_POLICY, PW_REEXPORT, 0, SW_OK },
    { "create binding key EF 4B12", CREATE, fcp_4b12, sizeof fcp_4b12, PV_LITERAL, PW_ALWAYS, 0,
      SW_OK },
    { "create partner key EF 4B20", CREATE, fcp_4b20, sizeof fcp_4b20, PV_LITERAL, PW_ALWAYS, 0,
      SW_OK },
    SET_SHARE(1), SET_SHARE(2), SET_SHARE(3), SET_SHARE(4),
    SET_SHARE(5), SET_SHARE(6), SET_SHARE(7), SET_SHARE(8),
    { "select MF", { 0x00, INS_SELECT, SEL_P1_FID, SEL_P2_NONE }, mf, 2, PV_LITERAL, PW_ALWAYS, 0,
      SW_OK },
    { "activate the card", { 0x00, INS_ACTIVATE_FILE, 0x00, 0x00 }, NULL, 0, PV_LITERAL,
      PW_ALWAYS, 0, SW_OK },
};
#define PROFILE_ROWS (sizeof profile_table / sizeof profile_table[0])

void profile_wipe(struct profile_apdu *steps, size_t n)
{
    if (steps != NULL && n > 0)
        mbedtls_platform_zeroize(steps, n * sizeof *steps);
}

static int need_pin(const struct secret_pin *p, const char *name, char *err, size_t errlen)
{
    if (p->len < SECRETS_PIN_MIN || p->len > SECRETS_PIN_MAX) {
        snprintf(err, errlen, "the %s is missing from the secrets (a PIN has 4 to 16 "
                 "characters)", name);
        return -1;
    }
    return 0;
}

void profile_apdu_set(struct profile_apdu *a, const char *label, const uint8_t header[4],
                      const uint8_t *data, size_t dlen, uint16_t expect_sw, bool secret)
{
    memset(a, 0, sizeof *a);
    a->label = label;
    memcpy(a->apdu, header, 4);
    a->len = 4;
    if (dlen > 0) {
        a->apdu[4] = (uint8_t)dlen;
        memcpy(a->apdu + 5, data, dlen);
        a->len = 5 + dlen;
    }
    a->expect_sw = expect_sw;
    a->secret = secret;
}

int profile_build(const struct profile_options *o, struct profile_apdu *out, size_t cap,
                  size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (o == NULL || o->secrets == NULL) {
        snprintf(err, errlen, "no PINs given for the profile");
        return -1;
    }
    if (o->shares < 1 || o->shares > KEY_GROUP_MAX_SHARES) {
        snprintf(err, errlen, "a key group has 1 to 8 shares, not %u", o->shares);
        return -1;
    }
    const char *type = o->card_type != NULL ? o->card_type : PROFILE_DEFAULT_CARD_TYPE;
    size_t type_len = strlen(type);
    if (type_len < 1 || type_len > 32) {
        snprintf(err, errlen, "a card type has 1 to 32 bytes, not %zu", type_len);
        return -1;
    }
    const struct secrets *s = o->secrets;
    if (need_pin(&s->pin, "user PIN (pin)", err, errlen) ||
        need_pin(&s->puk, "PUK (puk)", err, errlen) ||
        need_pin(&s->admin, "admin PIN (admin)", err, errlen))
        return -1;
    uint8_t extra = (uint8_t)(s->shares & (uint8_t)~((1u << o->shares) - 1u));
    if (extra != 0) {
        char list[48];
        snprintf(err, errlen, "the secrets hold %s, but the profile has only %u shares",
                 secrets_share_phrase(extra, list, sizeof list), o->shares);
        return -1;
    }
    static const uint8_t policy = 0x01;

    size_t k = 0;
    for (size_t r = 0; r < PROFILE_ROWS; r++) {
        const struct profile_row *row = &profile_table[r];
        switch (row->when) {
        case PW_ALWAYS:
            break;
        case PW_SHARE_EF:
            if (row->arg > o->shares)
                continue;
            break;
        case PW_REEXPORT:
            if (!o->allow_reexport)
                continue;
            break;
        case PW_SHARE_GIVEN:
            if (row->arg > o->shares || !((s->shares >> (row->arg - 1)) & 1u))
                continue;
            break;
        }
        const uint8_t *data = row->data;
        size_t dlen = row->data_len;
        bool secret = false;
        switch (row->value) {
        case PV_LITERAL:
            break;
        case PV_CARD_TYPE:
            data = (const uint8_t *)type;
            dlen = type_len;
            break;
        case PV_PIN_USER:
            data = s->pin.v, dlen = s->pin.len, secret = true;
            break;
        case PV_PIN_PUK:
            data = s->puk.v, dlen = s->puk.len, secret = true;
            break;
        case PV_PIN_ADMIN:
            data = s->admin.v, dlen = s->admin.len, secret = true;
            break;
        case PV_POLICY:
            data = &policy, dlen = 1;
            break;
        case PV_SHARE:
            data = s->share[row->arg - 1], dlen = SECRETS_SHARE_LEN, secret = true;
            break;
        }
        if (k == cap || 5 + dlen > PROFILE_APDU_MAX) {
            snprintf(err, errlen, "internal error: the profile does not fit %zu steps", cap);
            profile_wipe(out, k);
            return -1;
        }
        profile_apdu_set(&out[k++], row->label, row->header, data, dlen, row->expect_sw,
                         secret);
    }
    *n = k;
    return 0;
}

int profile_check_blank(struct cardop *c, const char *why, char *err, size_t errlen)
{
    uint8_t lcs = 0;
    if (cardop_life_cycle(c, &lcs) != 0) {
        snprintf(err, errlen, "%s", c->err);
        return -1;
    }
    if (lcs != LCS_CREATION) {
        snprintf(err, errlen, "%s is not blank (life cycle %02X, not 01 creation): %s", c->name,
                 lcs, why);
        return -1;
    }
    return 0;
}

int profile_send(struct cardop *c, const struct profile_apdu *steps, size_t n,
                 void (*progress)(void *ctx, const char *line), void *ctx, uint16_t *sws,
                 size_t *done, char *err, size_t errlen)
{
    *done = 0;
    for (size_t i = 0; i < n; i++) {
        const struct profile_apdu *a = &steps[i];
        char what[96];
        snprintf(what, sizeof what, "step %zu (%s)", i + 1, a->label);
        /* cardop_command wants 9000; a row expecting another status word is checked here. */
        uint8_t out[64];
        size_t olen = 0;
        c->sw = 0;
        if (a->secret)
            transport_redact_next(c->t);
        int rc = cardop_command(c, what, a->apdu, a->len, out, sizeof out, &olen);
        if (sws != NULL)
            sws[i] = c->sw;
        if (rc == CARDOP_E_SW && c->sw == a->expect_sw)
            rc = 0;
        else if (rc == 0 && c->sw != a->expect_sw) {
            snprintf(c->err, sizeof c->err, "%s on %s: the card answered %04X", what, c->name,
                     c->sw);
            rc = CARDOP_E_SW;
        }
        if (rc == CARDOP_E_SW) {
            snprintf(err, errlen, "%s; the script expects %04X", c->err, a->expect_sw);
            return rc;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s", c->err);
            return rc;
        }
        *done = i + 1;
        if (progress != NULL) {
            char line[128];
            snprintf(line, sizeof line, "%s: %s: ok", c->name, a->label);
            progress(ctx, line);
        }
    }
    return 0;
}

int profile_run(struct cardop *c, const struct profile_options *o,
                void (*progress)(void *ctx, const char *line), void *ctx, char *err,
                size_t errlen)
{
    struct profile_apdu steps[PROFILE_MAX_STEPS];
    size_t n = 0, done = 0;
    if (profile_build(o, steps, PROFILE_MAX_STEPS, &n, err, errlen) != 0)
        return -1;
    int rc = profile_check_blank(c, "init personalizes only a new card", err, errlen);
    if (rc == 0)
        rc = profile_send(c, steps, n, progress, ctx, NULL, &done, err, errlen);
    profile_wipe(steps, n);
    return rc;
}

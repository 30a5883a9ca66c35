#include "card_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "ins.h"
#include "sw.h"

/* A status word with the meaning it has for one command, for messages. */
struct sw_text {
    uint16_t sw;
    const char *text;
};

void cardop_init(struct cardop *c, struct transport *t, const char *name)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    snprintf(c->name, sizeof c->name, "%s", name != NULL && name[0] != '\0' ? name : "card");
}

const char *cardop_pin_name(uint8_t ref)
{
    switch (ref) {
    case PIN_REF_USER:
        return "user PIN";
    case PIN_REF_PUK:
        return "PUK";
    case PIN_REF_ADMIN:
        return "admin PIN";
    default:
        return "PIN";
    }
}

const char *cardop_origin_name(uint8_t origin)
{
    switch (origin) {
    case CARDOP_ORIGIN_NONE:
        return "none";
    case CARDOP_ORIGIN_GENERATED:
        return "generated here";
    case CARDOP_ORIGIN_IMPORTED:
        return "imported from a card";
    case CARDOP_ORIGIN_EXTERNAL:
        return "imported from an external generator";
    default:
        return "unknown origin";
    }
}

/* Sets the message for a refusal: the command's own text for sw when the table has one, else
 * the ISO meaning. */
static int fail_sw(struct cardop *c, const char *what, const struct sw_text *texts)
{
    const char *text = NULL;
    for (const struct sw_text *s = texts; s != NULL && s->text != NULL; s++)
        if (s->sw == c->sw)
            text = s->text;
    if (text == NULL)
        text = sw_describe(c->sw);
    snprintf(c->err, sizeof c->err, "%s on %s: %s (%04X)", what, c->name, text, c->sw);
    return CARDOP_E_SW;
}

static int fail_response(struct cardop *c, const char *what, const char *why)
{
    snprintf(c->err, sizeof c->err, "%s on %s: malformed answer: %s", what, c->name, why);
    return CARDOP_E_RESPONSE;
}

/* One exchange: sends capdu, returns 0 when the card answered (whatever the status word), with
 * c->sw set and the response data (up to cap bytes) in out. Data beyond cap is an error. */
static int exchange(struct cardop *c, const char *what, const uint8_t *capdu, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    size_t dummy;
    if (out_len == NULL)
        out_len = &dummy;
    *out_len = 0;
    c->sw = 0;
    c->err[0] = '\0';
    if (c->t == NULL || capdu == NULL || len < 4) {
        snprintf(c->err, sizeof c->err, "%s on %s: internal error: bad arguments", what,
                 c->name);
        return CARDOP_E_ARG;
    }
    uint8_t *resp = malloc(TRANSPORT_RAPDU_MAX);
    if (resp == NULL) {
        snprintf(c->err, sizeof c->err, "%s on %s: out of memory", what, c->name);
        return CARDOP_E_TRANSPORT;
    }
    char terr[320];
    size_t rlen = 0;
    c->apdus++;
    int rc = transport_exchange(c->t, capdu, len, resp, TRANSPORT_RAPDU_MAX, &rlen, terr,
                                sizeof terr);
    if (rc != 0) {
        snprintf(c->err, sizeof c->err, "%s on %s: %s", what, c->name, terr);
        rc = CARDOP_E_TRANSPORT;
    } else {
        c->sw = transport_sw(resp, rlen);
        size_t dlen = rlen - 2;
        if (dlen > cap) {
            rc = fail_response(c, what, "more data than expected");
        } else {
            if (dlen > 0)
                memcpy(out, resp, dlen);
            *out_len = dlen;
        }
    }
    mbedtls_platform_zeroize(resp, rlen);
    free(resp);
    return rc;
}

int cardop_command(struct cardop *c, const char *what, const uint8_t *capdu, size_t len,
                   uint8_t *out, size_t cap, size_t *out_len)
{
    int rc = exchange(c, what, capdu, len, out, cap, out_len);
    if (rc == 0 && c->sw != SW_OK)
        return fail_sw(c, what, NULL);
    return rc;
}

/* Sends and checks for 9000 with the command's own texts for refusals. */
static int run(struct cardop *c, const char *what, const struct sw_text *texts,
               const uint8_t *capdu, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    int rc = exchange(c, what, capdu, len, out, cap, out_len);
    if (rc == 0 && c->sw != SW_OK)
        return fail_sw(c, what, texts);
    return rc;
}

/* ---- files and personalization ------------------------------------------------------- */

int cardop_select_fid(struct cardop *c, uint16_t fid)
{
    const uint8_t apdu[] = { 0x00, INS_SELECT, SEL_P1_FID, SEL_P2_NONE, 0x02,
                             (uint8_t)(fid >> 8), (uint8_t)fid };
    char what[32];
    snprintf(what, sizeof what, "SELECT %04X", fid);
    static const struct sw_text texts[] = { { SW_FILE_NOT_FOUND, "no such file" }, { 0, NULL } };
    return run(c, what, texts, apdu, sizeof apdu, NULL, 0, NULL);
}

int cardop_put_data(struct cardop *c, uint16_t tag, const uint8_t *data, size_t len)
{
    char what[32];
    snprintf(what, sizeof what, "PUT DATA %04X", tag);
    if (data == NULL || len == 0 || len > 255) {
        snprintf(c->err, sizeof c->err, "%s on %s: %zu bytes of data (1..255 allowed)", what,
                 c->name, len);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + 255] = { 0x00, INS_PUT_DATA, (uint8_t)(tag >> 8), (uint8_t)tag,
                              (uint8_t)len };
    memcpy(apdu + 5, data, len);
    static const struct sw_text texts[] = {
        { SW_SECURITY_STATUS, "the admin PIN is not verified" },
        { SW_WRONG_DATA, "value refused (a card type is 1..32 bytes)" },
        { 0, NULL },
    };
    return run(c, what, texts, apdu, 5 + len, NULL, 0, NULL);
}

int cardop_set_pin(struct cardop *c, uint8_t ref, const uint8_t *pin, size_t len)
{
    char what[64];
    snprintf(what, sizeof what, "CHANGE REFERENCE DATA (set %s)", cardop_pin_name(ref));
    if (pin == NULL || len < CARDOP_PIN_MIN || len > CARDOP_PIN_MAX) {
        snprintf(c->err, sizeof c->err, "%s on %s: a PIN has 4 to 16 characters, not %zu", what,
                 c->name, pin == NULL ? (size_t)0 : len);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + CARDOP_PIN_MAX] = { 0x00, INS_CHANGE_REF_DATA, 0x01, ref, (uint8_t)len };
    memcpy(apdu + 5, pin, len);
    static const struct sw_text texts[] = {
        { SW_CONDITIONS_NOT_SATISFIED, "already set on an operational card" },
        { SW_WRONG_DATA, "PIN length refused (4..16)" },
        { 0, NULL },
    };
    int rc = run(c, what, texts, apdu, 5 + len, NULL, 0, NULL);
    mbedtls_platform_zeroize(apdu, sizeof apdu);
    return rc;
}

int cardop_create_file(struct cardop *c, uint16_t fid, uint8_t fdb, uint16_t size,
                       const uint8_t ac[3], uint8_t sfi)
{
    uint8_t apdu[40];
    size_t n = 5;
    apdu[0] = 0x00;
    apdu[1] = INS_CREATE_FILE;
    apdu[2] = apdu[3] = 0x00;
    apdu[n++] = FCP_TEMPLATE;
    size_t len_at = n++;
    apdu[n++] = FCP_DESCRIPTOR, apdu[n++] = 1, apdu[n++] = fdb;
    apdu[n++] = FCP_FID, apdu[n++] = 2, apdu[n++] = (uint8_t)(fid >> 8), apdu[n++] = (uint8_t)fid;
    if (fdb != FDB_DF) {
        apdu[n++] = FCP_SIZE, apdu[n++] = 2;
        apdu[n++] = (uint8_t)(size >> 8), apdu[n++] = (uint8_t)size;
    }
    apdu[n++] = FCP_SEC_PROP, apdu[n++] = 3;
    apdu[n++] = ac[0], apdu[n++] = ac[1], apdu[n++] = ac[2];
    if (sfi != 0 && fdb != FDB_DF)
        apdu[n++] = FCP_SFI, apdu[n++] = 1, apdu[n++] = (uint8_t)(sfi << 3);
    apdu[len_at] = (uint8_t)(n - len_at - 1);
    apdu[4] = (uint8_t)(n - 5);
    char what[32];
    snprintf(what, sizeof what, "CREATE FILE %04X", fid);
    static const struct sw_text texts[] = {
        { SW_FILE_EXISTS, "the file already exists" },
        { SW_NOT_ENOUGH_MEMORY, "no space left on the card" },
        { SW_SECURITY_STATUS, "the DF's create condition is not satisfied" },
        { 0, NULL },
    };
    return run(c, what, texts, apdu, n, NULL, 0, NULL);
}

int cardop_update_binary(struct cardop *c, uint16_t offset, const uint8_t *data, size_t len)
{
    char what[48];
    snprintf(what, sizeof what, "UPDATE BINARY at offset %u", (unsigned)offset);
    if (data == NULL || len == 0 || len > 255 || offset > 0x7FFF) {
        snprintf(c->err, sizeof c->err, "%s on %s: internal error: bad arguments", what,
                 c->name);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + 255] = { 0x00, INS_UPDATE_BINARY, (uint8_t)(offset >> 8), (uint8_t)offset,
                              (uint8_t)len };
    memcpy(apdu + 5, data, len);
    int rc = run(c, what, NULL, apdu, 5 + len, NULL, 0, NULL);
    mbedtls_platform_zeroize(apdu, sizeof apdu);
    return rc;
}

int cardop_activate(struct cardop *c)
{
    static const uint8_t apdu[] = { 0x00, INS_ACTIVATE_FILE, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_SECURITY_STATUS, "the admin PIN is not verified" },
        { 0, NULL },
    };
    return run(c, "ACTIVATE FILE", texts, apdu, sizeof apdu, NULL, 0, NULL);
}

int cardop_terminate(struct cardop *c)
{
    static const uint8_t apdu[] = { 0x00, INS_TERMINATE_CARD, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_SECURITY_STATUS, "the admin PIN is not verified" },
        { 0, NULL },
    };
    return run(c, "TERMINATE CARD USAGE", texts, apdu, sizeof apdu, NULL, 0, NULL);
}

/* ---- identity and PINs ---------------------------------------------------------------- */

int cardop_get_data(struct cardop *c, uint16_t tag, uint8_t *out, size_t cap, size_t *out_len)
{
    const uint8_t apdu[] = { 0x00, INS_GET_DATA, (uint8_t)(tag >> 8), (uint8_t)tag, 0x00 };
    char what[32];
    snprintf(what, sizeof what, "GET DATA %04X", tag);
    static const struct sw_text texts[] = {
        { SW_REF_DATA_NOT_FOUND, "no such data object" },
        { 0, NULL },
    };
    return run(c, what, texts, apdu, sizeof apdu, out, cap, out_len);
}

int cardop_serial(struct cardop *c, uint8_t serial[CARDOP_SERIAL_LEN])
{
    size_t n = 0;
    int rc = cardop_get_data(c, DO_CARD_SERIAL, serial, CARDOP_SERIAL_LEN, &n);
    if (rc == 0 && n != CARDOP_SERIAL_LEN)
        rc = fail_response(c, "GET DATA DF01 (serial)", "not 8 bytes");
    return rc;
}

int cardop_life_cycle(struct cardop *c, uint8_t *lcs)
{
    size_t n = 0;
    int rc = cardop_get_data(c, DO_CARD_LCS, lcs, 1, &n);
    if (rc == 0 && n != 1)
        rc = fail_response(c, "GET DATA DF03 (life cycle)", "not 1 byte");
    return rc;
}

int cardop_verify(struct cardop *c, uint8_t ref, const uint8_t *pin, size_t len)
{
    char what[48];
    snprintf(what, sizeof what, "VERIFY %s", cardop_pin_name(ref));
    if (pin == NULL || len < CARDOP_PIN_MIN || len > CARDOP_PIN_MAX) {
        snprintf(c->err, sizeof c->err, "%s on %s: a PIN has 4 to 16 characters, not %zu", what,
                 c->name, pin == NULL ? (size_t)0 : len);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + CARDOP_PIN_MAX] = { 0x00, INS_VERIFY, 0x00, ref, (uint8_t)len };
    memcpy(apdu + 5, pin, len);
    int rc = exchange(c, what, apdu, 5 + len, NULL, 0, NULL);
    mbedtls_platform_zeroize(apdu, sizeof apdu);
    if (rc != 0 || c->sw == SW_OK)
        return rc;
    if (SW_IS_COUNTER(c->sw)) {
        unsigned left = c->sw & 0x0Fu;
        if (left == 0)
            snprintf(c->err, sizeof c->err, "%s on %s: wrong PIN, no tries left: the %s is now "
                     "blocked", what, c->name, cardop_pin_name(ref));
        else
            snprintf(c->err, sizeof c->err, "%s on %s: wrong PIN, %u %s left", what, c->name,
                     left, left == 1 ? "try" : "tries");
        return CARDOP_E_SW;
    }
    static const struct sw_text texts[] = {
        { SW_AUTH_BLOCKED, "blocked (no tries left; the user PIN is unblocked with the PUK or "
                           "the admin PIN)" },
        { SW_REF_DATA_UNUSABLE, "never set on this card" },
        { SW_REF_DATA_NOT_FOUND, "no such PIN reference" },
        { 0, NULL },
    };
    return fail_sw(c, what, texts);
}

/* ---- key group and keys --------------------------------------------------------------- */

static const struct sw_text no_profile[] = {
    { SW_REF_DATA_NOT_FOUND, "no key profile (DF 4B00 and its key files): personalize the card "
                             "with 'icdup init'" },
    { 0, NULL },
};

int cardop_key_group_decode(const uint8_t *d, size_t n, struct cardop_group *g,
                            const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (d == NULL || (n != 2 && n != 10)) {
        *why = "not 2 or 10 bytes";
        return -1;
    }
    if (d[0] < 1 || d[0] > KEY_GROUP_MAX_SHARES) {
        *why = "share count outside 1..8";
        return -1;
    }
    uint8_t all = (uint8_t)((1u << d[0]) - 1u);
    if ((d[1] & (uint8_t)~all) != 0 || (n == 10) != (d[1] == all)) {
        *why = "inconsistent share bitmap";
        return -1;
    }
    memset(g, 0, sizeof *g);
    g->n = d[0];
    g->present = d[1];
    g->complete = n == 10;
    if (g->complete)
        memcpy(g->kcv, d + 2, 8);
    return 0;
}

int cardop_key_group(struct cardop *c, struct cardop_group *g)
{
    static const uint8_t apdu[] = { 0x00, INS_GET_DATA, 0xDF, 0x10, 0x00 };
    uint8_t d[16];
    size_t n = 0;
    memset(g, 0, sizeof *g);
    int rc = run(c, "GET DATA DF10 (key group)", no_profile, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc != 0)
        return rc;
    const char *why = NULL;
    if (cardop_key_group_decode(d, n, g, &why) != 0)
        return fail_response(c, "GET DATA DF10 (key group)", why);
    return 0;
}

int cardop_key_state_decode(const uint8_t *d, size_t n, struct cardop_key_state *st)
{
    if (d == NULL || n != 22 || d[0] > 1)
        return -1;
    memset(st, 0, sizeof *st);
    st->present = d[0] == 1;
    st->policy = d[1];
    st->flags = d[2];
    st->origin = d[3];
    memcpy(st->src_serial, d + 4, 8);
    memcpy(st->src_kcv, d + 12, 8);
    st->export_count = (uint16_t)((d[20] << 8) | d[21]);
    return 0;
}

int cardop_key_state(struct cardop *c, struct cardop_key_state *st)
{
    static const uint8_t apdu[] = { 0x00, INS_GET_DATA, 0xDF, 0x11, 0x00 };
    uint8_t d[32];
    size_t n = 0;
    memset(st, 0, sizeof *st);
    int rc = run(c, "GET DATA DF11 (key state)", no_profile, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc == 0 && cardop_key_state_decode(d, n, st) != 0)
        rc = fail_response(c, "GET DATA DF11 (key state)", "not the 22-byte key state");
    return rc;
}

int cardop_set_share(struct cardop *c, unsigned index, const uint8_t share[32])
{
    char what[32];
    snprintf(what, sizeof what, "SET SHARE %u", index);
    if (index < 1 || index > KEY_GROUP_MAX_SHARES || share == NULL) {
        snprintf(c->err, sizeof c->err, "%s on %s: share index outside 1..8", what, c->name);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + 32] = { CLA_PROPRIETARY, INS_SET_SHARE, 0x00, (uint8_t)index, 32 };
    memcpy(apdu + 5, share, 32);
    static const struct sw_text texts[] = {
        { SW_INCORRECT_P1P2, "the card's key group has fewer shares" },
        { SW_WRONG_DATA, "an all-zero share is refused" },
        { SW_CONDITIONS_NOT_SATISFIED, "this share is already set (replacing it needs the "
                                       "admin PIN)" },
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { SW_REF_DATA_NOT_FOUND, "no key profile (DF 4B00): personalize the card with "
                                 "'icdup init'" },
        { 0, NULL },
    };
    int rc = run(c, what, texts, apdu, sizeof apdu, NULL, 0, NULL);
    mbedtls_platform_zeroize(apdu, sizeof apdu);
    return rc;
}

/* Extracts the point of a 7F49 { 86 41 point } answer. */
static int parse_point_template(struct cardop *c, const char *what, const uint8_t *d, size_t n,
                                uint8_t pub[65])
{
    /* 7F49 L { 86 41 04 X Y }: L = 0x43 (2 + 65). Parsed as TLV, not as a fixed prefix. */
    if (n < 3 || d[0] != 0x7F || d[1] != 0x49)
        return fail_response(c, what, "no 7F49 template");
    size_t len = d[2], off = 3;
    if (len == 0x81 && n >= 4) {
        len = d[3];
        off = 4;
    }
    if (off + len != n || len != 2 + EC_POINT_LEN || d[off] != 0x86 || d[off + 1] != EC_POINT_LEN)
        return fail_response(c, what, "no 86 41 point in the template");
    if (d[off + 2] != 0x04)
        return fail_response(c, what, "not an uncompressed point");
    memcpy(pub, d + off + 2, EC_POINT_LEN);
    return 0;
}

int cardop_generate(struct cardop *c, uint8_t pub[65])
{
    static const uint8_t apdu[] = { 0x00, INS_GENERATE_KEY_PAIR, GEN_P1_GENERATE, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_CONDITIONS_NOT_SATISFIED, "a key pair exists; replacing it needs the admin PIN" },
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { SW_REF_DATA_NOT_FOUND, "no key profile (DF 4B00): personalize the card with "
                                 "'icdup init'" },
        { 0, NULL },
    };
    uint8_t d[80];
    size_t n = 0;
    int rc = run(c, "GENERATE ASYMMETRIC KEY PAIR", texts, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc == 0)
        rc = parse_point_template(c, "GENERATE ASYMMETRIC KEY PAIR", d, n, pub);
    return rc;
}

int cardop_read_pubkey(struct cardop *c, uint8_t pub[65])
{
    static const uint8_t apdu[] = { 0x00, INS_GENERATE_KEY_PAIR, GEN_P1_READ_PUB, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_REF_DATA_NOT_FOUND, "no key pair on the card (or no key profile)" },
        { 0, NULL },
    };
    uint8_t d[80];
    size_t n = 0;
    int rc = run(c, "read public key", texts, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc == 0)
        rc = parse_point_template(c, "read public key", d, n, pub);
    return rc;
}

int cardop_decipher(struct cardop *c, const uint8_t point[65], uint8_t x[32])
{
    uint8_t apdu[5 + EC_POINT_LEN + 1] = { 0x00, INS_PSO, PSO_P1_DECIPHER, PSO_P2_DECIPHER,
                                          EC_POINT_LEN };
    memcpy(apdu + 5, point, EC_POINT_LEN);
    apdu[sizeof apdu - 1] = 0x00;
    static const struct sw_text texts[] = {
        { SW_WRONG_DATA, "the point is not on the curve" },
        { SW_REF_DATA_NOT_FOUND, "no key pair on the card" },
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { 0, NULL },
    };
    uint8_t d[64];
    size_t n = 0;
    int rc = run(c, "PSO DECIPHER", texts, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc == 0 && n != 32)
        rc = fail_response(c, "PSO DECIPHER", "not 32 bytes");
    if (rc == 0)
        memcpy(x, d, 32);
    mbedtls_platform_zeroize(d, sizeof d);
    return rc;
}

int cardop_binding_key(struct cardop *c, bool fresh, uint8_t point[65])
{
    const uint8_t apdu[] = { CLA_PROPRIETARY, INS_BINDING_KEY, fresh ? 0x01 : 0x00, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { SW_REF_DATA_NOT_FOUND, "no key profile (DF 4B00): personalize the card with "
                                 "'icdup init'" },
        { 0, NULL },
    };
    uint8_t d[80];
    size_t n = 0;
    int rc = run(c, "BINDING KEY", texts, apdu, sizeof apdu, d, sizeof d, &n);
    if (rc == 0 && (n != EC_POINT_LEN || d[0] != 0x04))
        rc = fail_response(c, "BINDING KEY", "not a 65-byte uncompressed point");
    if (rc == 0)
        memcpy(point, d, EC_POINT_LEN);
    return rc;
}

int cardop_export(struct cardop *c, const uint8_t *bind_point, uint8_t *blob, size_t cap,
                  size_t *len)
{
    uint8_t apdu[5 + EC_POINT_LEN + 1] = { CLA_PROPRIETARY, INS_EXPORT_WRAPPED, 0x00, 0x00 };
    size_t alen;
    if (bind_point != NULL) {
        apdu[4] = EC_POINT_LEN;
        memcpy(apdu + 5, bind_point, EC_POINT_LEN);
        apdu[5 + EC_POINT_LEN] = 0x00;
        alen = sizeof apdu;
    } else {
        apdu[4] = 0x00;
        alen = 5;
    }
    static const struct sw_text texts[] = {
        { SW_CONDITIONS_NOT_SATISFIED, "refused: the key group is incomplete, there is no key, "
                                       "export is locked, or the key was already exported" },
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { SW_WRONG_DATA, "the binding point is not on the curve" },
        { 0, NULL },
    };
    uint8_t d[256];
    size_t n = 0;
    *len = 0;
    int rc = run(c, "EXPORT WRAPPED", texts, apdu, alen, d, sizeof d, &n);
    if (rc == 0 && n != (bind_point != NULL ? 151u : 86u))
        rc = fail_response(c, "EXPORT WRAPPED", "not a blob of the expected length");
    if (rc == 0 && n > cap)
        rc = fail_response(c, "EXPORT WRAPPED", "blob larger than the buffer");
    if (rc == 0) {
        memcpy(blob, d, n);
        *len = n;
    }
    return rc;
}

int cardop_import(struct cardop *c, const uint8_t *blob, size_t len)
{
    if (blob == NULL || len == 0 || len > 255) {
        snprintf(c->err, sizeof c->err, "IMPORT WRAPPED on %s: a blob of %zu bytes cannot be "
                 "sent", c->name, len);
        return CARDOP_E_ARG;
    }
    uint8_t apdu[5 + 255] = { CLA_PROPRIETARY, INS_IMPORT_WRAPPED, 0x00, 0x00, (uint8_t)len };
    memcpy(apdu + 5, blob, len);
    static const struct sw_text texts[] = {
        { SW_WRONG_DATA, "the blob is malformed or fails its authentication tag (tampered, or "
                         "bound to another binding key)" },
        { SW_CONDITIONS_NOT_SATISFIED, "refused: the blob's KCV differs from this card's key "
                                       "group, the group is incomplete, a bound blob meets no "
                                       "pending binding key, or a key exists and the admin PIN "
                                       "is not verified" },
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { 0, NULL },
    };
    return run(c, "IMPORT WRAPPED", texts, apdu, 5 + len, NULL, 0, NULL);
}

int cardop_lock_export(struct cardop *c)
{
    static const uint8_t apdu[] = { CLA_PROPRIETARY, INS_LOCK_EXPORT, 0x00, 0x00 };
    static const struct sw_text texts[] = {
        { SW_SECURITY_STATUS, "the user PIN is not verified" },
        { 0, NULL },
    };
    return run(c, "LOCK EXPORT", texts, apdu, sizeof apdu, NULL, 0, NULL);
}

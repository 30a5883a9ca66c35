#include "card_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "card_err.h"
#include "hex.h"

static int fx_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
    uint32_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        buf[i] = (uint8_t)*s;
    }
    return 0;
}

int fx_open(struct fx *fx)
{
    memset(fx, 0, sizeof *fx);
    if (nvm_sim_open_ram(&fx->nvm, CARD_NVM_DEFAULT_SIZE))
        return CARD_E_IO;
    fx->rng_state = 0x12345678u;
    fx->rng.fill = fx_rng_fill;
    fx->rng.ctx = &fx->rng_state;
    int rc = card_format(&fx->card, &fx->nvm.hal, &fx->rng);
    if (rc == CARD_OK)
        card_power_on(&fx->card);
    return rc;
}

void fx_close(struct fx *fx)
{
    nvm_sim_close(&fx->nvm);
}

int fx_setup_blank(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    if (fx_open(fx) != 0) {
        fx_close(fx);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

int fx_setup_perso(void **state)
{
    if (fx_setup_blank(state) != 0)
        return -1;
    return fx_personalize(*state) == 0 ? 0 : -1;
}

int fx_teardown(void **state)
{
    struct fx *fx = *state;
    if (fx != NULL) {
        fx_close(fx);
        free(fx);
    }
    return 0;
}

int fx_reboot(struct fx *fx)
{
    nvm_sim_power_restore(&fx->nvm);
    int rc = card_mount(&fx->card, &fx->nvm.hal, &fx->rng);
    if (rc == CARD_OK)
        card_power_on(&fx->card);
    return rc;
}

int fx_hex(const char *hex, uint8_t *buf, size_t cap)
{
    size_t n;
    char err[128];
    return hex_decode(hex, buf, cap, &n, err, sizeof err) == 0 ? (int)n : -1;
}

uint16_t fx_raw(struct fx *fx, const uint8_t *apdu, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, apdu, len);
    fx->rsp_len = card_process(&fx->card, copy, len, fx->rsp, sizeof fx->rsp);
    free(copy);
    if (fx->rsp_len < 2)
        abort();
    return (uint16_t)(fx->rsp[fx->rsp_len - 2] << 8 | fx->rsp[fx->rsp_len - 1]);
}

uint16_t fx_apdu(struct fx *fx, const char *hex)
{
    uint8_t buf[CARD_MAX_NC + 16];
    int n = fx_hex(hex, buf, sizeof buf);
    if (n < 0)
        abort();
    return fx_raw(fx, buf, (size_t)n);
}

size_t fx_data_len(const struct fx *fx)
{
    return fx->rsp_len - 2;
}

uint16_t fx_personalize(struct fx *fx)
{
    static const char *const steps[] = {
        "00DADF0204 54455354",                               /* card type "TEST" */
        "00240181 06 313233343536",                          /* user PIN 123456 */
        "00240182 08 3132333435363738",                      /* PUK 12345678 */
        "00240183 08 3837363534333231",                      /* admin 87654321 */
        /* DF 5000 with AID, ACs: read always, create admin, delete admin */
        "00E00000 18 6216 820138 83025000 8408A000000647494344 8603000202",
        /* working EF 5001, 64 bytes, read always / update PIN / delete admin, SFI 1 */
        "00E00000 15 6213 820101 83025001 80020040 8603000102 880108",
        "00A40000 02 5000",
        /* internal EF 5002, 32 bytes, update admin / delete admin */
        "00E00000 12 6210 820109 83025002 80020020 8603FF0202",
        "00A40000 02 3F00",
        "00440000",                                           /* activate MF: operational */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        uint16_t sw = fx_apdu(fx, steps[i]);
        if (sw != 0x9000)
            return sw;
    }
    return 0;
}

uint16_t fx_create(struct fx *fx, uint16_t fid, uint8_t fdb, uint16_t size, uint8_t ac_read,
                   uint8_t ac_update, uint8_t ac_delete)
{
    uint8_t apdu[32];
    size_t n = 5;
    apdu[0] = 0x00;
    apdu[1] = 0xE0;
    apdu[2] = apdu[3] = 0x00;
    apdu[n++] = 0x62;
    size_t len_at = n++;
    apdu[n++] = 0x82, apdu[n++] = 1, apdu[n++] = fdb;
    apdu[n++] = 0x83, apdu[n++] = 2, apdu[n++] = (uint8_t)(fid >> 8), apdu[n++] = (uint8_t)fid;
    if (fdb != 0x38) {
        apdu[n++] = 0x80, apdu[n++] = 2;
        apdu[n++] = (uint8_t)(size >> 8), apdu[n++] = (uint8_t)size;
    }
    apdu[n++] = 0x86, apdu[n++] = 3;
    apdu[n++] = ac_read, apdu[n++] = ac_update, apdu[n++] = ac_delete;
    apdu[len_at] = (uint8_t)(n - len_at - 1);
    apdu[4] = (uint8_t)(n - 5);
    return fx_raw(fx, apdu, n);
}

uint16_t fx_key_profile(struct fx *fx, unsigned n, uint8_t policy)
{
    uint16_t sw = fx_apdu(fx, "0020008308 3837363534333231");
    if (sw == 0x9000)
        sw = fx_apdu(fx, "00A4000C023F00");
    if (sw == 0x9000)
        sw = fx_create(fx, 0x4B00, 0x38, 0, 0x00, 0x02, 0xFF);
    for (unsigned i = 1; i <= n && sw == 0x9000; i++) {
        sw = fx_create(fx, (uint16_t)(0x4B00 + i), 0x09, 32, 0xFF, 0xFF, 0xFF);
        if (sw == 0x9000)
            sw = fx_apdu(fx, "00A4000C024B00");
    }
    if (sw == 0x9000)
        sw = fx_create(fx, 0x4B10, 0x09, 97, 0xFF, 0xFF, 0xFF);
    if (sw == 0x9000)
        sw = fx_apdu(fx, "00A4000C024B00");
    if (sw == 0x9000)
        sw = fx_create(fx, 0x4B11, 0x09, 48, 0xFF, 0x02, 0xFF);
    if (sw == 0x9000) {
        uint8_t upd[] = { 0x00, 0xD6, 0x00, 0x00, 0x01, policy };
        sw = fx_raw(fx, upd, sizeof upd);
    }
    if (sw == 0x9000)
        sw = fx_apdu(fx, "00A4000C024B00");
    if (sw == 0x9000)
        sw = fx_create(fx, 0x4B12, 0x09, 97, 0xFF, 0xFF, 0xFF);
    if (sw == 0x9000)
        sw = fx_apdu(fx, "00A4000C024B00");
    if (sw == 0x9000)
        sw = fx_create(fx, 0x4B20, 0x01, 65, 0x00, 0x02, 0x02);
    card_power_off(&fx->card);
    card_power_on(&fx->card);
    return sw == 0x9000 ? 0 : sw;
}

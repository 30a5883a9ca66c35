#include "card_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "card_err.h"

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
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else if (*p == ' ' || *p == ':')
            continue;
        else
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap)
                return -1;
            buf[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? (int)n : -1;
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

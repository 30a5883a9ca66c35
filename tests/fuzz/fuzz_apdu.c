/* libFuzzer harness at the raw-APDU entry point (card_process).
 * Input: byte 0 picks the starting card (bit 0: blank or personalized, bit 2: personalized
 * with the key profile, three shares set and a key generated; bit 1: user PIN verified first); then records of [length byte][APDU bytes]; a length byte of 0xFF is a
 * power cycle instead. Each APDU is copied into an exact-size buffer (ASan sees over-reads).
 * Invariants checked: every answer is at least a status word, and after the whole sequence
 * the NVM image still mounts (no command sequence can corrupt the card). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "card_err.h"
#include "card_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fx g_fx;
static uint8_t *g_blank, *g_perso, *g_keys;

static void prepare(void)
{
    if (g_blank)
        return;
    g_blank = malloc(CARD_NVM_DEFAULT_SIZE);
    g_perso = malloc(CARD_NVM_DEFAULT_SIZE);
    g_keys = malloc(CARD_NVM_DEFAULT_SIZE);
    if (!g_blank || !g_perso || !g_keys || fx_open(&g_fx) != 0)
        abort();
    nvm_sim_snapshot(&g_fx.nvm, g_blank);
    if (fx_personalize(&g_fx) != 0)
        abort();
    nvm_sim_snapshot(&g_fx.nvm, g_perso);
    static const char *const keys[] = {
        "0020008106313233343536",
        "80D8000120 0101010101010101010101010101010101010101010101010101010101010101",
        "80D8000220 0202020202020202020202020202020202020202020202020202020202020202",
        "80D8000320 0303030303030303030303030303030303030303030303030303030303030303",
        "0047800000",
    };
    if (fx_key_profile(&g_fx, 3, 0) != 0)
        abort();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (fx_apdu(&g_fx, keys[i]) != 0x9000)
            abort();
    nvm_sim_snapshot(&g_fx.nvm, g_keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prepare();
    if (size < 1)
        return 0;
    nvm_sim_restore(&g_fx.nvm, (data[0] & 4) ? g_keys : (data[0] & 1) ? g_perso : g_blank);
    if (fx_reboot(&g_fx) != CARD_OK)
        abort();
    if (data[0] & 2)
        fx_apdu(&g_fx, "00200081 06 313233343536");
    size_t pos = 1;
    while (pos < size) {
        size_t len = data[pos++];
        if (len == 0xFF) {
            card_power_off(&g_fx.card);
            card_power_on(&g_fx.card);
            continue;
        }
        if (len > size - pos)
            len = size - pos;
        uint8_t *apdu = malloc(len ? len : 1);
        memcpy(apdu, data + pos, len);
        size_t n = card_process(&g_fx.card, apdu, len, g_fx.rsp, sizeof g_fx.rsp);
        free(apdu);
        if (n < 2)
            abort();
        pos += len;
    }
    if (fx_reboot(&g_fx) != CARD_OK)
        abort(); /* the command sequence left an image that no longer mounts */
    return 0;
}

#include "filecard.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "atomicfile.h"
#include "card_err.h"
#include "ec.h"
#include "hex.h"
#include "ins.h"

int filecard_open(struct cardop *c, const uint8_t card_pub[65], const struct filecrypt_header *h,
                  uint8_t cek[32], char *err, size_t errlen)
{
    uint8_t id[FILECRYPT_KEY_ID_LEN];
    filecrypt_key_id(card_pub, id);
    int idx = filecrypt_find(h, id);
    if (idx < 0) {
        char hx[2 * FILECRYPT_KEY_ID_LEN + 1];
        hex_encode(id, sizeof id, 0, hx, sizeof hx);
        snprintf(err, errlen,
                 "%s is not a recipient of this file: no entry for its key (key id %s) among "
                 "the %u recipients",
                 c->name, hx, h->n);
        return FILECRYPT_E_NOT_RECIPIENT;
    }
    const uint8_t *eph = h->entry[idx].eph_pub;
    if (ec_check_point(eph) != CARD_OK) {
        snprintf(err, errlen,
                 "recipient entry %d of the file is corrupt: its ephemeral key is not a valid "
                 "P-256 point",
                 idx + 1);
        return FILECRYPT_E_FORMAT;
    }
    uint8_t x[32];
    if (cardop_decipher(c, eph, x) != CARDOP_OK) {
        snprintf(err, errlen, "%s", c->err);
        return FILECRYPT_E_CARD;
    }
    int rc = filecrypt_open_with(h, (unsigned)idx, x, card_pub, cek, err, errlen);
    mbedtls_platform_zeroize(x, sizeof x);
    return rc;
}

int filecard_decrypt_path(struct cardop *c, const uint8_t card_pub[65],
                          const struct secret_pin *pin, const char *in_path,
                          const char *out_path, uint64_t *plain_len, char *err, size_t errlen)
{
    if (plain_len != NULL)
        *plain_len = 0;
    if (in_path == NULL || out_path == NULL) {
        snprintf(err, errlen, "missing input or output path");
        return FILECRYPT_E_ARG;
    }
    bool in_std = strcmp(in_path, "-") == 0, out_std = strcmp(out_path, "-") == 0;
    const char *in_name = in_std ? "standard input" : in_path;
    FILE *in = in_std ? stdin : fopen(in_path, "rb");
    if (in == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", in_path, strerror(errno));
        return FILECRYPT_E_IO;
    }
    char msg[512];
    uint8_t cek[32];
    struct filecrypt_header h;
    int rc = filecrypt_read_header(in, &h, msg, sizeof msg);
    if (rc == FILECRYPT_OK && pin != NULL) {
        uint8_t id[FILECRYPT_KEY_ID_LEN];
        filecrypt_key_id(card_pub, id);
        /* Not a recipient: filecard_open says so without any APDU; no PIN try is spent. */
        if (filecrypt_find(&h, id) >= 0 &&
            cardop_verify(c, PIN_REF_USER, pin->v, pin->len) != CARDOP_OK) {
            snprintf(msg, sizeof msg, "%s", c->err);
            rc = FILECRYPT_E_CARD;
        }
    }
    if (rc == FILECRYPT_OK)
        rc = filecard_open(c, card_pub, &h, cek, msg, sizeof msg);
    if (rc == FILECRYPT_OK) {
        if (out_std) {
            rc = filecrypt_decrypt_body(in, stdout, &h, cek, plain_len, msg, sizeof msg);
        } else {
            struct atomic_file a;
            if (atomic_file_open(&a, out_path, 0600, msg, sizeof msg) != 0) {
                rc = FILECRYPT_E_IO;
            } else {
                rc = filecrypt_decrypt_body(in, a.f, &h, cek, plain_len, msg, sizeof msg);
                if (rc == FILECRYPT_OK && atomic_file_commit(&a, msg, sizeof msg) != 0)
                    rc = FILECRYPT_E_IO;
                atomic_file_abort(&a);
            }
            if (rc != FILECRYPT_OK && plain_len != NULL)
                *plain_len = 0;
        }
    }
    mbedtls_platform_zeroize(cek, sizeof cek);
    if (!in_std)
        fclose(in);
    if (rc != FILECRYPT_OK)
        snprintf(err, errlen, "%s: %s", in_name, msg);
    return rc;
}

/* Key-group KEK and KCV over mbedtls HKDF and HMAC. See kek.h and docs/keys.md. */
#include "kek.h"

#include <string.h>

#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "card_err.h"

static const unsigned char kek_salt[] = "icdup key group v1";
static const unsigned char kek_info[] = "icdup kek";
static const unsigned char kek_kcv_msg[] = "icdup kcv v1";

int kek_derive(const uint8_t (*shares)[32], unsigned n, uint8_t kek[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (shares == NULL || n < 1 || n > KEK_MAX_SHARES || md == NULL)
        return CARD_E_INTERNAL;
    uint8_t ikm[KEK_MAX_SHARES * KEK_SHARE_LEN];
    uint8_t prk[32];
    uint8_t okm[KEK_LEN];
    uint8_t info[sizeof kek_info]; /* "icdup kek" || N: the terminator's byte holds N */
    for (unsigned i = 0; i < n; i++)
        memcpy(ikm + (size_t)i * KEK_SHARE_LEN, shares[i], KEK_SHARE_LEN);
    memcpy(info, kek_info, sizeof kek_info - 1);
    info[sizeof kek_info - 1] = (uint8_t)n;
    int ret = mbedtls_hkdf_extract(md, kek_salt, sizeof kek_salt - 1, ikm,
                                   (size_t)n * KEK_SHARE_LEN, prk);
    if (ret == 0)
        ret = mbedtls_hkdf_expand(md, prk, sizeof prk, info, sizeof info, okm, sizeof okm);
    if (ret == 0)
        memcpy(kek, okm, sizeof okm);
    mbedtls_platform_zeroize(ikm, sizeof ikm);
    mbedtls_platform_zeroize(prk, sizeof prk);
    mbedtls_platform_zeroize(okm, sizeof okm);
    return ret ? CARD_E_INTERNAL : CARD_OK;
}

int kek_kcv(const uint8_t kek[32], uint8_t kcv[8])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL)
        return CARD_E_INTERNAL;
    uint8_t mac[32];
    int ret = mbedtls_md_hmac(md, kek, KEK_LEN, kek_kcv_msg, sizeof kek_kcv_msg - 1, mac);
    if (ret == 0)
        memcpy(kcv, mac, KEK_KCV_LEN);
    mbedtls_platform_zeroize(mac, sizeof mac);
    return ret ? CARD_E_INTERNAL : CARD_OK;
}

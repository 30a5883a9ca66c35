/* Wrapped private key, format version 1, over mbedtls HKDF and AES-GCM. See blob.h and
 * docs/keys.md. The header is encoded and decoded byte by byte (no struct overlays). */
#include "blob.h"

#include <string.h>

#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "card_err.h"
#include "ec.h"

#define BLOB_OFF_VERSION 4u
#define BLOB_OFF_TYPE 5u
#define BLOB_OFF_REF 6u
#define BLOB_OFF_ATTRS 7u
#define BLOB_OFF_KCV 8u
#define BLOB_OFF_SERIAL 16u
#define BLOB_OFF_COUNT 24u
#define BLOB_OFF_EPH 26u
#define BLOB_HDR_UNBOUND 38u  /* header (= GCM additional data) of an unbound blob */
#define BLOB_HDR_BOUND 103u   /* ... of a bound blob */
#define BLOB_KCV_LEN 8u
#define BLOB_SERIAL_LEN 8u
#define BLOB_POINT_LEN 65u
#define BLOB_NONCE_LEN 12u
#define BLOB_SCALAR_LEN 32u
#define BLOB_TAG_LEN 16u
#define BLOB_WK_LEN 32u

static const uint8_t blob_magic[4] = { 'I', 'C', 'D', 'W' };
static const unsigned char blob_wrap_info[] = "icdup wrap v1";

static size_t blob_header_len(bool bound)
{
    return bound ? BLOB_HDR_BOUND : BLOB_HDR_UNBOUND;
}

static size_t blob_total_len(bool bound)
{
    return bound ? BLOB_LEN_BOUND : BLOB_LEN_UNBOUND;
}

/* Writes the header of h (with eph_pub when bound) at out. Returns its length. */
static size_t blob_encode_header(const struct blob_header *h, const uint8_t *eph_pub, uint8_t *out)
{
    memcpy(out, blob_magic, sizeof blob_magic);
    out[BLOB_OFF_VERSION] = h->version;
    out[BLOB_OFF_TYPE] = h->key_type;
    out[BLOB_OFF_REF] = h->key_ref;
    out[BLOB_OFF_ATTRS] = h->attrs;
    memcpy(out + BLOB_OFF_KCV, h->kcv, BLOB_KCV_LEN);
    memcpy(out + BLOB_OFF_SERIAL, h->src_serial, BLOB_SERIAL_LEN);
    out[BLOB_OFF_COUNT] = (uint8_t)(h->export_count >> 8);
    out[BLOB_OFF_COUNT + 1] = (uint8_t)(h->export_count & 0xFFu);
    size_t off = BLOB_OFF_EPH;
    if (h->bound) {
        memcpy(out + off, eph_pub, BLOB_POINT_LEN);
        off += BLOB_POINT_LEN;
    }
    memcpy(out + off, h->nonce, BLOB_NONCE_LEN);
    return off + BLOB_NONCE_LEN;
}

/* WK = HKDF-SHA-256(salt = Z or empty, IKM = KEK, info = "icdup wrap v1", 32). An empty salt is
 * passed as NULL: mbedtls then uses HashLen zero bytes, the same HMAC key (RFC 5869 2.2). */
static int blob_wk(const uint8_t kek[32], const uint8_t *z, uint8_t wk[BLOB_WK_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL)
        return CARD_E_INTERNAL;
    int ret = mbedtls_hkdf(md, z, z != NULL ? 32u : 0u, kek, 32, blob_wrap_info,
                           sizeof blob_wrap_info - 1, wk, BLOB_WK_LEN);
    return ret ? CARD_E_INTERNAL : CARD_OK;
}

static bool blob_header_ok(const struct blob_header *h)
{
    return h->version == BLOB_VERSION && h->key_type == BLOB_KEY_TYPE_EC_P256 &&
           h->key_ref == BLOB_KEY_REF && h->attrs == (h->bound ? BLOB_ATTR_BOUND : 0u);
}

int blob_wrap(const uint8_t kek[32], const struct blob_header *h, const uint8_t eph_priv[32],
              const uint8_t dst_bind_pub[65], const uint8_t scalar[32], uint8_t *out, size_t cap,
              size_t *out_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (kek == NULL || h == NULL || scalar == NULL || out == NULL || out_len == NULL ||
        !blob_header_ok(h))
        return CARD_E_INTERNAL;
    const bool bound = h->bound;
    if (bound != (eph_priv != NULL) || bound != (dst_bind_pub != NULL))
        return CARD_E_INTERNAL;
    const size_t total = blob_total_len(bound);
    if (cap < total)
        return CARD_E_INTERNAL;

    static const uint8_t no_point[BLOB_POINT_LEN];
    uint8_t z[32];
    uint8_t wk[BLOB_WK_LEN];
    int rc = CARD_OK;
    /* The caller's key generation gave the ephemeral point with its scalar: not recomputed
     * here (a P-256 multiplication, a third of an export). */
    if (bound)
        rc = ec_ecdh(eph_priv, dst_bind_pub, z);
    size_t hlen = 0;
    if (rc == CARD_OK) {
        hlen = blob_encode_header(h, bound ? h->src_eph_pub : no_point, out);
        rc = hlen == blob_header_len(bound) ? CARD_OK : CARD_E_INTERNAL;
    }
    if (rc == CARD_OK)
        rc = blob_wk(kek, bound ? z : NULL, wk);
    if (rc == CARD_OK) {
        mbedtls_gcm_context gcm;
        mbedtls_gcm_init(&gcm);
        int ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, wk, 8 * BLOB_WK_LEN);
        if (ret == 0)
            ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, BLOB_SCALAR_LEN,
                                            out + hlen - BLOB_NONCE_LEN, BLOB_NONCE_LEN, out, hlen,
                                            scalar, out + hlen, BLOB_TAG_LEN,
                                            out + hlen + BLOB_SCALAR_LEN);
        mbedtls_gcm_free(&gcm);
        rc = ret ? CARD_E_INTERNAL : CARD_OK;
    }
    if (rc == CARD_OK)
        *out_len = total;
    else
        mbedtls_platform_zeroize(out, total);
    mbedtls_platform_zeroize(z, sizeof z);
    mbedtls_platform_zeroize(wk, sizeof wk);
    return rc;
}

int blob_parse_header(const uint8_t *blob, size_t len, struct blob_header *h)
{
    if (blob == NULL || h == NULL || len < BLOB_OFF_KCV)
        return CARD_E_WRONG_DATA;
    if (memcmp(blob, blob_magic, sizeof blob_magic) != 0 ||
        blob[BLOB_OFF_VERSION] != BLOB_VERSION || blob[BLOB_OFF_TYPE] != BLOB_KEY_TYPE_EC_P256 ||
        blob[BLOB_OFF_REF] != BLOB_KEY_REF ||
        (blob[BLOB_OFF_ATTRS] & (uint8_t)~BLOB_ATTR_BOUND) != 0)
        return CARD_E_WRONG_DATA;
    const bool bound = (blob[BLOB_OFF_ATTRS] & BLOB_ATTR_BOUND) != 0;
    if (len != blob_total_len(bound))
        return CARD_E_WRONG_DATA;

    struct blob_header t;
    memset(&t, 0, sizeof t);
    t.version = blob[BLOB_OFF_VERSION];
    t.key_type = blob[BLOB_OFF_TYPE];
    t.key_ref = blob[BLOB_OFF_REF];
    t.attrs = blob[BLOB_OFF_ATTRS];
    memcpy(t.kcv, blob + BLOB_OFF_KCV, BLOB_KCV_LEN);
    memcpy(t.src_serial, blob + BLOB_OFF_SERIAL, BLOB_SERIAL_LEN);
    t.export_count = (uint16_t)((unsigned)blob[BLOB_OFF_COUNT] << 8 | blob[BLOB_OFF_COUNT + 1]);
    t.bound = bound;
    size_t off = BLOB_OFF_EPH;
    if (bound) {
        memcpy(t.src_eph_pub, blob + off, BLOB_POINT_LEN);
        off += BLOB_POINT_LEN;
    }
    memcpy(t.nonce, blob + off, BLOB_NONCE_LEN);
    *h = t;
    return CARD_OK;
}

int blob_unwrap(const uint8_t kek[32], const uint8_t *bind_priv, const uint8_t *blob, size_t len,
                struct blob_header *h, uint8_t scalar[32])
{
    if (kek == NULL || scalar == NULL)
        return CARD_E_INTERNAL;
    struct blob_header t;
    int rc = blob_parse_header(blob, len, &t);
    if (rc != CARD_OK)
        return rc;
    if (t.bound && bind_priv == NULL)
        return CARD_E_INTERNAL;

    uint8_t z[32];
    uint8_t wk[BLOB_WK_LEN];
    uint8_t pt[BLOB_SCALAR_LEN];
    if (t.bound)
        rc = ec_ecdh(bind_priv, t.src_eph_pub, z);
    if (rc == CARD_OK)
        rc = blob_wk(kek, t.bound ? z : NULL, wk);
    if (rc == CARD_OK) {
        const size_t hlen = blob_header_len(t.bound);
        mbedtls_gcm_context gcm;
        mbedtls_gcm_init(&gcm);
        int ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, wk, 8 * BLOB_WK_LEN);
        if (ret != 0) {
            rc = CARD_E_INTERNAL;
        } else {
            /* The tag comparison inside mbedtls is constant-time. */
            ret = mbedtls_gcm_auth_decrypt(&gcm, BLOB_SCALAR_LEN, blob + hlen - BLOB_NONCE_LEN,
                                           BLOB_NONCE_LEN, blob, hlen,
                                           blob + hlen + BLOB_SCALAR_LEN, BLOB_TAG_LEN,
                                           blob + hlen, pt);
            rc = ret == 0                           ? CARD_OK
                 : ret == MBEDTLS_ERR_GCM_AUTH_FAILED ? CARD_E_WRONG_DATA
                                                      : CARD_E_INTERNAL;
        }
        mbedtls_gcm_free(&gcm);
    }
    if (rc == CARD_OK) {
        memcpy(scalar, pt, sizeof pt);
        if (h != NULL)
            *h = t;
    }
    mbedtls_platform_zeroize(pt, sizeof pt);
    mbedtls_platform_zeroize(z, sizeof z);
    mbedtls_platform_zeroize(wk, sizeof wk);
    return rc;
}

#include "wrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include "card_err.h"
#include "ec.h"
#include "hex.h"
#include "kek.h"
#include "rng.h"

unsigned wrap_share_count(const struct secrets *s, const char *source, char *err,
                          size_t errlen)
{
    uint8_t have = s->shares;
    if (have == 0) {
        snprintf(err, errlen, "%s has no share.i line: wrapping needs all N shares of the "
                 "key group (share.1 .. share.N)", source);
        return 0;
    }
    unsigned n = 0;
    while (n < SECRETS_MAX_SHARES && ((have >> n) & 1u))
        n++;
    if ((have >> n) != 0) {
        char list[48], missing[48];
        uint8_t top = (uint8_t)(have | (have >> 1) | (have >> 2) | (have >> 3) | (have >> 4) |
                                (have >> 5) | (have >> 6) | (have >> 7));
        snprintf(err, errlen, "%s has shares %s: the shares must be share.1 .. share.N, "
                 "all N of the key group (%s missing)", source,
                 secrets_share_list(have, list, sizeof list),
                 secrets_share_phrase((uint8_t)(top & ~have), missing, sizeof missing));
        return 0;
    }
    return n;
}

/* ---- key files ---------------------------------------------------------------------- */

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The hex form: only hex digits between optional blanks. Returns 1 when data is of that form
 * (then 0 digits or 64 and priv written, or -1 with a message), 0 when it is not hex text. */
static int parse_hex_key(const uint8_t *data, size_t len, const char *source, uint8_t priv[32],
                         char *err, size_t errlen)
{
    size_t a = 0, b = len;
    while (a < b && is_blank(data[a]))
        a++;
    while (b > a && is_blank(data[b - 1]))
        b--;
    if (a == b)
        return 0;
    for (size_t i = a; i < b; i++)
        if (hex_digit((char)data[i]) < 0)
            return 0;
    if (b - a != 64) {
        snprintf(err, errlen, "%s holds %zu hex digits: a private key in hex is 64 digits "
                 "(32 bytes)", source, b - a);
        return -1;
    }
    for (size_t i = 0; i < 32; i++)
        priv[i] = (uint8_t)((hex_digit((char)data[a + 2 * i]) << 4) |
                            hex_digit((char)data[a + 2 * i + 1]));
    return 1;
}

static bool contains(const uint8_t *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0)
            return true;
    return false;
}

/* A PEM or DER key through mbedtls' pk parser. Returns 0 with priv written, or -1. */
static int parse_pk_key(const uint8_t *data, size_t len, const char *source, uint8_t priv[32],
                        char *err, size_t errlen)
{
    /* PEM wants the terminating NUL counted in the length (as mbedtls_pk_parse_keyfile does);
     * DER must be given exactly. */
    bool pem = contains(data, len, "-----BEGIN ");
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(buf, data, len);
    buf[len] = '\0';
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    uint8_t q[EC_P256_POINT_LEN], pub[EC_P256_POINT_LEN], d[EC_P256_PRIV_LEN];
    int rc = -1;
    int prc = mbedtls_pk_parse_key(&pk, buf, pem ? len + 1 : len, NULL, 0);
    if (prc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || prc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        snprintf(err, errlen, "%s is encrypted: give the key unencrypted (on the approval "
                 "station, never on a networked machine)", source);
        goto out;
    }
    if (prc == MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE) {
        snprintf(err, errlen, "%s is an EC key on a curve other than P-256: only EC P-256 "
                 "(secp256r1) private keys can be wrapped", source);
        goto out;
    }
    if (prc != 0) {
        snprintf(err, errlen, "%s is not a private key in PEM, DER or 64 hex digits "
                 "(mbedtls: -0x%04X)", source, (unsigned)-prc);
        goto out;
    }
    mbedtls_pk_type_t type = mbedtls_pk_get_type(&pk);
    if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECKEY_DH && type != MBEDTLS_PK_ECDSA) {
        snprintf(err, errlen, "%s is an %s key, not an EC P-256 private key", source,
                 mbedtls_pk_get_name(&pk));
        goto out;
    }
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
    if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(ec->grp.id);
        snprintf(err, errlen, "%s is an EC key on the curve %s, not P-256: only EC P-256 "
                 "(secp256r1) private keys can be wrapped", source,
                 ci != NULL ? ci->name : "(unknown)");
        goto out;
    }
    size_t qlen = 0;
    if (mbedtls_mpi_write_binary(&ec->d, d, sizeof d) != 0 ||
        mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &qlen, q,
                                       sizeof q) != 0 ||
        qlen != sizeof q) {
        snprintf(err, errlen, "%s: cannot read the P-256 key", source);
        goto out;
    }
    if (ec_public_from_private(d, pub) != CARD_OK) {
        snprintf(err, errlen, "%s is not a valid P-256 private key (zero or not below the "
                 "group order)", source);
        goto out;
    }
    /* mbedtls takes the public key stored in the file as it is: it must be the private one's. */
    if (memcmp(pub, q, sizeof pub) != 0) {
        snprintf(err, errlen, "%s holds a public key that does not belong to its private key",
                 source);
        goto out;
    }
    memcpy(priv, d, sizeof d);
    rc = 0;
out:
    mbedtls_pk_free(&pk);
    mbedtls_platform_zeroize(d, sizeof d);
    mbedtls_platform_zeroize(buf, len + 1);
    free(buf);
    return rc;
}

int wrap_parse_key(const uint8_t *data, size_t len, const char *source, uint8_t priv[32],
                   char *err, size_t errlen)
{
    uint8_t d[EC_P256_PRIV_LEN], pub[EC_P256_POINT_LEN];
    int rc = WRAP_E_KEY;
    int hex = data != NULL ? parse_hex_key(data, len, source, d, err, errlen) : 0;
    if (hex < 0)
        goto out;
    if (hex > 0) {
        if (ec_public_from_private(d, pub) != CARD_OK) {
            snprintf(err, errlen, "%s is not a valid P-256 private key (zero or not below the "
                     "group order)", source);
            goto out;
        }
    } else if (data == NULL || len == 0) {
        snprintf(err, errlen, "%s is empty", source);
        goto out;
    } else if (parse_pk_key(data, len, source, d, err, errlen) != 0) {
        goto out;
    }
    memcpy(priv, d, sizeof d);
    rc = WRAP_OK;
out:
    mbedtls_platform_zeroize(d, sizeof d);
    return rc;
}

int wrap_load_key(const char *path, uint8_t priv[32], char *err, size_t errlen)
{
    char source[320];
    snprintf(source, sizeof source, "key file %.280s", path != NULL ? path : "");
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no key file given");
        return WRAP_E_KEY;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", source, strerror(errno));
        return WRAP_E_KEY;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", source, strerror(errno));
        close(fd);
        return WRAP_E_KEY;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", source);
        close(fd);
        return WRAP_E_KEY;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s is accessible by group or others (mode %04o): refusing to "
                 "use it; run chmod 600 on it", source, (unsigned)(st.st_mode & 07777));
        close(fd);
        return WRAP_E_KEY;
    }
    uint8_t *buf = malloc(WRAP_KEY_FILE_MAX + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return WRAP_E_KEY;
    }
    size_t n = 0;
    int rc = WRAP_OK;
    for (;;) {
        ssize_t got = read(fd, buf + n, WRAP_KEY_FILE_MAX + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", source, strerror(errno));
            rc = WRAP_E_KEY;
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > WRAP_KEY_FILE_MAX) {
            snprintf(err, errlen, "%s is longer than %u bytes: not a P-256 private key", source,
                     WRAP_KEY_FILE_MAX);
            rc = WRAP_E_KEY;
            break;
        }
    }
    close(fd);
    if (rc == WRAP_OK)
        rc = wrap_parse_key(buf, n, source, priv, err, errlen);
    mbedtls_platform_zeroize(buf, WRAP_KEY_FILE_MAX + 1);
    free(buf);
    return rc;
}

/* ---- wrapping ----------------------------------------------------------------------- */

int wrap_key(const struct secrets *s, const char *source, const uint8_t priv[32],
             struct wrap_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    unsigned n = wrap_share_count(s, source, err, errlen);
    if (n == 0)
        return WRAP_E_SHARES;
    uint8_t kek[KEK_LEN];
    struct blob_header h;
    mbedtls_ctr_drbg_context drbg;
    int rc = WRAP_OK;
    if (rng_drbg_seed(&drbg, "icdup approval station wrap v1") != 0) {
        snprintf(err, errlen, "cannot seed the random generator from getrandom");
        rc = WRAP_E_RNG;
        goto out;
    }
    if (ec_public_from_private(priv, r->pub) != CARD_OK) {
        snprintf(err, errlen, "the key is not a valid P-256 private key (zero or not below the "
                 "group order)");
        rc = WRAP_E_KEY;
        goto out;
    }
    if (kek_derive((const uint8_t(*)[32])s->share, n, kek) != CARD_OK ||
        kek_kcv(kek, r->kcv) != CARD_OK) {
        snprintf(err, errlen, "cannot derive the KEK of the key group");
        rc = WRAP_E_CRYPTO;
        goto out;
    }
    memset(&h, 0, sizeof h);
    h.version = BLOB_VERSION;
    h.key_type = BLOB_KEY_TYPE_EC_P256;
    h.key_ref = BLOB_KEY_REF;
    h.attrs = 0;
    h.bound = false;
    memcpy(h.kcv, r->kcv, sizeof h.kcv);
    /* h.src_serial all zero: an external generator (docs/keys.md); export count 0. */
    if (mbedtls_ctr_drbg_random(&drbg, h.nonce, sizeof h.nonce) != 0) {
        snprintf(err, errlen, "the random generator failed");
        rc = WRAP_E_RNG;
        goto out;
    }
    if (blob_wrap(kek, &h, NULL, NULL, priv, r->blob, sizeof r->blob, &r->blob_len) !=
            CARD_OK ||
        r->blob_len != BLOB_LEN_UNBOUND) {
        snprintf(err, errlen, "cannot wrap the key (blob format 1)");
        rc = WRAP_E_CRYPTO;
        goto out;
    }
    r->n = n;
out:
    mbedtls_platform_zeroize(kek, sizeof kek);
    mbedtls_ctr_drbg_free(&drbg);
    if (rc != WRAP_OK)
        memset(r, 0, sizeof *r);
    return rc;
}

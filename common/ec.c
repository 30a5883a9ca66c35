/* EC P-256 helpers over mbedtls. See ec.h (and its note on the blinding generator). */
#include "ec.h"

#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "card_err.h"

/* Domain label of the blinding generator's seed. */
static const unsigned char ec_blind_label[] = "icdup ec blinding v1";

/* Deterministic blinding generator (see ec.h): block i of the output stream is
 * SHA-256(seed || i), i a 32-bit big-endian counter, with seed = SHA-256(label || priv || peer).
 * Only mbedtls' SHA-256 (no heap, no DRBG module) is needed. */
struct ec_blind {
    uint8_t seed[32];
    uint32_t counter;
};

/* mbedtls f_rng over struct ec_blind. Returns 0, or MBEDTLS_ERR_ECP_RANDOM_FAILED. */
static int ec_blind_fill(void *p, unsigned char *out, size_t len)
{
    struct ec_blind *b = p;
    uint8_t in[36], block[32];
    int ret = 0;
    memcpy(in, b->seed, sizeof b->seed);
    while (len > 0 && ret == 0) {
        in[32] = (uint8_t)(b->counter >> 24);
        in[33] = (uint8_t)(b->counter >> 16);
        in[34] = (uint8_t)(b->counter >> 8);
        in[35] = (uint8_t)b->counter;
        b->counter++;
        ret = mbedtls_sha256_ret(in, sizeof in, block, 0);
        size_t n = len < sizeof block ? len : sizeof block;
        memcpy(out, block, n);
        out += n;
        len -= n;
    }
    mbedtls_platform_zeroize(in, sizeof in);
    mbedtls_platform_zeroize(block, sizeof block);
    return ret ? MBEDTLS_ERR_ECP_RANDOM_FAILED : 0;
}

/* The working set of one operation: the group, a scalar, a point and a result. */
struct ec_work {
    mbedtls_ecp_group grp;
    mbedtls_mpi d;
    mbedtls_mpi z;
    mbedtls_ecp_point q;
    mbedtls_ecp_point r;
    struct ec_blind blind;
};

static void ec_work_init(struct ec_work *w)
{
    mbedtls_ecp_group_init(&w->grp);
    mbedtls_mpi_init(&w->d);
    mbedtls_mpi_init(&w->z);
    mbedtls_ecp_point_init(&w->q);
    mbedtls_ecp_point_init(&w->r);
    memset(&w->blind, 0, sizeof w->blind);
}

/* mbedtls_*_free zeroize what they free (the limbs of the scalar); the seed is wiped here. */
static void ec_work_free(struct ec_work *w)
{
    mbedtls_platform_zeroize(&w->blind, sizeof w->blind);
    mbedtls_ecp_point_free(&w->r);
    mbedtls_ecp_point_free(&w->q);
    mbedtls_mpi_free(&w->z);
    mbedtls_mpi_free(&w->d);
    mbedtls_ecp_group_free(&w->grp);
}

/* mbedtls result -> card_err: memory failures are internal, anything else is `invalid`. */
static int ec_map(int ret, int invalid)
{
    if (ret == 0)
        return CARD_OK;
    if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED || ret == MBEDTLS_ERR_ECP_ALLOC_FAILED)
        return CARD_E_INTERNAL;
    return invalid;
}

static int ec_load_group(struct ec_work *w)
{
    return mbedtls_ecp_group_load(&w->grp, MBEDTLS_ECP_DP_SECP256R1) ? CARD_E_INTERNAL : CARD_OK;
}

/* Reads and checks a private scalar into w->d. */
static int ec_read_priv(struct ec_work *w, const uint8_t priv[32])
{
    int ret = mbedtls_mpi_read_binary(&w->d, priv, EC_P256_PRIV_LEN);
    if (ret == 0)
        ret = mbedtls_ecp_check_privkey(&w->grp, &w->d);
    return ec_map(ret, CARD_E_WRONG_DATA);
}

/* Reads and checks an uncompressed public point into *p. */
static int ec_read_point(const mbedtls_ecp_group *grp, mbedtls_ecp_point *p, const uint8_t pub[65])
{
    if (pub[0] != 0x04)
        return CARD_E_WRONG_DATA; /* only 04 || X || Y */
    int ret = mbedtls_ecp_point_read_binary(grp, p, pub, EC_P256_POINT_LEN);
    if (ret == 0)
        ret = mbedtls_ecp_check_pubkey(grp, p); /* not infinity, X, Y < p, on the curve */
    return ec_map(ret, CARD_E_WRONG_DATA);
}

/* Seeds the blinding generator with SHA-256(label || priv || extra). */
static int ec_blind_seed(struct ec_work *w, const uint8_t priv[32], const uint8_t *extra,
                         size_t extra_len)
{
    mbedtls_sha256_context sha;
    mbedtls_sha256_init(&sha);
    int ret = mbedtls_sha256_starts_ret(&sha, 0);
    if (ret == 0)
        ret = mbedtls_sha256_update_ret(&sha, ec_blind_label, sizeof ec_blind_label - 1);
    if (ret == 0)
        ret = mbedtls_sha256_update_ret(&sha, priv, EC_P256_PRIV_LEN);
    if (ret == 0 && extra_len > 0)
        ret = mbedtls_sha256_update_ret(&sha, extra, extra_len);
    if (ret == 0)
        ret = mbedtls_sha256_finish_ret(&sha, w->blind.seed);
    mbedtls_sha256_free(&sha); /* zeroizes the context */
    w->blind.counter = 0;
    return ret ? CARD_E_INTERNAL : CARD_OK;
}

/* Writes w->r as 04 || X || Y into pub. */
static int ec_write_point(struct ec_work *w, uint8_t pub[65])
{
    uint8_t buf[EC_P256_POINT_LEN];
    size_t olen = 0;
    int ret = mbedtls_ecp_point_write_binary(&w->grp, &w->r, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                             buf, sizeof buf);
    if (ret != 0 || olen != EC_P256_POINT_LEN || buf[0] != 0x04)
        return CARD_E_INTERNAL;
    memcpy(pub, buf, EC_P256_POINT_LEN);
    return CARD_OK;
}

/* Calls the caller's generator and remembers whether it failed, to tell CARD_E_RNG apart. */
struct ec_rng_shim {
    int (*f_rng)(void *, unsigned char *, size_t);
    void *p_rng;
    int failed;
};

static int ec_rng_shim_fill(void *p, unsigned char *out, size_t len)
{
    struct ec_rng_shim *s = p;
    if (s->f_rng(s->p_rng, out, len) != 0) {
        s->failed = 1;
        return MBEDTLS_ERR_ECP_RANDOM_FAILED;
    }
    return 0;
}

int ec_keygen(int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
              uint8_t priv[32], uint8_t pub[65])
{
    if (f_rng == NULL)
        return CARD_E_INTERNAL;
    struct ec_rng_shim shim = { f_rng, p_rng, 0 };
    struct ec_work w;
    ec_work_init(&w);
    int rc = ec_load_group(&w);
    if (rc == CARD_OK) {
        /* The caller's generator draws the scalar and blinds the multiplication. */
        int ret = mbedtls_ecp_gen_keypair(&w.grp, &w.d, &w.r, ec_rng_shim_fill, &shim);
        rc = ret == 0 ? CARD_OK : shim.failed ? CARD_E_RNG : CARD_E_INTERNAL;
    }
    if (rc == CARD_OK)
        rc = mbedtls_mpi_write_binary(&w.d, priv, EC_P256_PRIV_LEN) ? CARD_E_INTERNAL : CARD_OK;
    if (rc == CARD_OK)
        rc = ec_write_point(&w, pub);
    if (rc != CARD_OK) {
        mbedtls_platform_zeroize(priv, EC_P256_PRIV_LEN);
        mbedtls_platform_zeroize(pub, EC_P256_POINT_LEN);
    }
    ec_work_free(&w);
    return rc;
}

int ec_public_from_private(const uint8_t priv[32], uint8_t pub[65])
{
    struct ec_work w;
    ec_work_init(&w);
    int rc = ec_load_group(&w);
    if (rc == CARD_OK)
        rc = ec_read_priv(&w, priv);
    if (rc == CARD_OK)
        rc = ec_blind_seed(&w, priv, NULL, 0);
    if (rc == CARD_OK)
        rc = mbedtls_ecp_mul(&w.grp, &w.r, &w.d, &w.grp.G, ec_blind_fill, &w.blind) ?
                 CARD_E_INTERNAL : CARD_OK;
    if (rc == CARD_OK)
        rc = ec_write_point(&w, pub);
    ec_work_free(&w);
    return rc;
}

int ec_ecdh(const uint8_t priv[32], const uint8_t peer_pub[65], uint8_t shared_x[32])
{
    uint8_t x[EC_P256_X_LEN];
    struct ec_work w;
    ec_work_init(&w);
    int rc = ec_load_group(&w);
    if (rc == CARD_OK)
        rc = ec_read_point(&w.grp, &w.q, peer_pub);
    if (rc == CARD_OK)
        rc = ec_read_priv(&w, priv);
    if (rc == CARD_OK)
        rc = ec_blind_seed(&w, priv, peer_pub, EC_P256_POINT_LEN);
    if (rc == CARD_OK)
        rc = mbedtls_ecdh_compute_shared(&w.grp, &w.z, &w.q, &w.d, ec_blind_fill,
                                         &w.blind) ? CARD_E_INTERNAL : CARD_OK;
    if (rc == CARD_OK)
        rc = mbedtls_mpi_write_binary(&w.z, x, sizeof x) ? CARD_E_INTERNAL : CARD_OK;
    if (rc == CARD_OK)
        memcpy(shared_x, x, sizeof x);
    mbedtls_platform_zeroize(x, sizeof x);
    ec_work_free(&w);
    return rc;
}

int ec_check_point(const uint8_t pub[65])
{
    struct ec_work w;
    ec_work_init(&w);
    int rc = ec_load_group(&w);
    if (rc == CARD_OK)
        rc = ec_read_point(&w.grp, &w.q, pub);
    ec_work_free(&w);
    return rc;
}

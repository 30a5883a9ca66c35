/* Linked only into the bench firmware (build/firmware/icdup-card-bench.elf, bench/fw_icount.sh):
 * the bare mbedtls primitives the card's key generation and ECDH wrap, timed alone, so each
 * card operation can be set against the primitive under the same QEMU -icount clock. Set-up
 * (group, DRBG seeding, the peer's key) happens outside the timed span. */
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>

#include "crypto.h"
#include "fw.h"

int fw_bench_primitive(int ecdh);

int fw_bench_primitive(int ecdh)
{
    struct crypto_rng rng;
    mbedtls_ecp_group grp;
    mbedtls_mpi d, peer_d, z;
    mbedtls_ecp_point q, peer_q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&peer_d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point_init(&q);
    mbedtls_ecp_point_init(&peer_q);
    int ret = crypto_rng_init(&rng, &fw_rng) != 0 ? -1 : 0;
    if (ret == 0)
        ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    if (ret == 0 && ecdh) {
        ret = mbedtls_ecp_gen_keypair(&grp, &d, &q, crypto_rng_fill, &rng);
        if (ret == 0)
            ret = mbedtls_ecp_gen_keypair(&grp, &peer_d, &peer_q, crypto_rng_fill, &rng);
        if (ret == 0) {
            fw_diag_begin();
            ret = mbedtls_ecdh_compute_shared(&grp, &z, &peer_q, &d, crypto_rng_fill, &rng);
            fw_diag_end();
        }
    } else if (ret == 0) {
        fw_diag_begin();
        ret = mbedtls_ecp_gen_keypair(&grp, &d, &q, crypto_rng_fill, &rng);
        fw_diag_end();
    }
    mbedtls_ecp_point_free(&peer_q);
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    mbedtls_mpi_free(&peer_d);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
    crypto_rng_free(&rng);
    return ret == 0 ? 0 : -1;
}

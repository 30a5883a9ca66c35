/* Measures the data path of `icdup encrypt` / `decrypt` on a large file against raw mbedtls
 * AES-256-GCM measured in the same run: file to file through filecrypt (64 KiB chunks), the
 * recipient key's ECDH done on the host here (the card's part is one PSO per file, counted
 * separately by bench/run.sh from a traced CLI run). Usage: bench_files [MiB] (default 1024).
 * Prints "key value" lines for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/gcm.h>

#include "ec.h"
#include "filecrypt.h"
#include "rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "bench_files: %s: %s\n", what, err);
    return 1;
}

/* Raw AES-256-GCM over mib MiB in 64 KiB records with a fresh nonce each, in memory. */
static double raw_gcm_mib_s(unsigned mib)
{
    static uint8_t in[1 << 16], out[1 << 16];
    uint8_t key[32] = { 1 }, iv[12] = { 0 }, tag[16];
    memset(in, 0xA5, sizeof in);
    mbedtls_gcm_context g;
    mbedtls_gcm_init(&g);
    mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
    unsigned records = mib * 16;
    double t0 = now();
    for (unsigned i = 0; i < records; i++) {
        memcpy(iv + 8, &i, sizeof i);
        mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, sizeof in, iv, sizeof iv, NULL, 0,
                                  in, out, sizeof tag, tag);
    }
    double t = now() - t0;
    mbedtls_gcm_free(&g);
    return mib / t;
}

int main(int argc, char **argv)
{
    unsigned mib = argc > 1 ? (unsigned)atoi(argv[1]) : 1024;
    if (mib == 0)
        return fail("usage", "bench_files [MiB]");
    char dir[] = "/tmp/icdup-bench-files-XXXXXX";
    if (!mkdtemp(dir))
        return fail("mkdtemp", "cannot create a work directory");
    char plain[64], enc[64], dec[64], err[256];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(enc, sizeof enc, "%s/enc", dir);
    snprintf(dec, sizeof dec, "%s/dec", dir);

    /* input: mib MiB, written once (not timed) */
    FILE *f = fopen(plain, "wb");
    static uint8_t block[1 << 20];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)(i * 131u + 7u);
    for (unsigned i = 0; f && i < mib; i++)
        fwrite(block, 1, sizeof block, f);
    if (!f || fclose(f))
        return fail("input", "cannot write the input file");

    /* recipient key pair (on the host: the bulk path is what is measured here) */
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ctr_drbg_init(&drbg);
    uint8_t priv[32], pub[65];
    if (rng_drbg_seed(&drbg, "icdup bench files") || ec_keygen(mbedtls_ctr_drbg_random, &drbg, priv, pub))
        return fail("key", "cannot make a key pair");
    mbedtls_ctr_drbg_free(&drbg);

    double raw = raw_gcm_mib_s(mib);

    uint64_t n = 0;
    double t0 = now();
    if (filecrypt_encrypt_path(plain, enc, (const uint8_t(*)[65])pub, 1,
                               FILECRYPT_CHUNK_EXP_DEFAULT, &n, err, sizeof err))
        return fail("encrypt", err);
    double t_enc = now() - t0;

    t0 = now();
    FILE *in = fopen(enc, "rb"), *out = fopen(dec, "wb");
    struct filecrypt_header h;
    uint8_t x[32], cek[32];
    if (!in || !out || filecrypt_read_header(in, &h, err, sizeof err) ||
        ec_ecdh(priv, h.entry[0].eph_pub, x) ||
        filecrypt_open_with(&h, 0, x, pub, cek, err, sizeof err) ||
        filecrypt_decrypt_body(in, out, &h, cek, &n, err, sizeof err) || fclose(out))
        return fail("decrypt", err);
    fclose(in);
    double t_dec = now() - t0;
    if (n != (uint64_t)mib << 20)
        return fail("decrypt", "length differs");

    printf("files_mib %u\n", mib);
    printf("raw_gcm_mib_s %.0f\n", raw);
    printf("encrypt_mib_s %.0f\n", mib / t_enc);
    printf("decrypt_mib_s %.0f\n", mib / t_dec);
    printf("encrypt_vs_raw %.2f\n", mib / t_enc / raw);
    printf("decrypt_vs_raw %.2f\n", mib / t_dec / raw);
    unlink(plain);
    unlink(enc);
    unlink(dec);
    rmdir(dir);
    return 0;
}

/* Encrypted data files, format v1 (docs/fileformat.md): a per-file content key (CEK) wrapped
 * for up to 8 P-256 recipients (ECDH with a fresh ephemeral key per recipient, HKDF-SHA-256,
 * AES-256-GCM), and the plaintext in chunks of 2^e bytes, each sealed with AES-256-GCM under
 * the CEK with its index in the nonce and a "final" flag in the additional data.
 *
 *   fixed header (24)   "ICDF" | 01 | e | r | 00 | file id (16)        H = SHA-256(fixed header)
 *   r entries (122)     01 | key id (8) | ephemeral point (65) | wrapped CEK (32) | tag (16)
 *   chunks              AES-256-GCM(CEK, file id[0..4) || BE64(i), H || final, chunk) || tag
 *
 * The library is host code: it reads and writes stdio streams with constant memory (an output
 * ring of 4 slots of about 1 MiB, filled by the crypto and written by a writer thread so that
 * the output's I/O overlaps with the crypto; plus one record buffer to decrypt), never prints,
 * and reports every failure as a negative filecrypt_err with a message
 * in err that names what is wrong and never contains key material. Secrets (CEK, KWK, shared
 * secrets, ephemeral private keys, plaintext buffers) are wiped after use.
 *
 * The card side (one PSO DECIPHER per file) is in filecard.h; recovery with a backup card is
 * in recover.h. */
#ifndef FILECRYPT_H
#define FILECRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FILECRYPT_MAGIC "ICDF"
#define FILECRYPT_VERSION 0x01u
#define FILECRYPT_FIXED_LEN 24u
#define FILECRYPT_ENTRY_LEN 122u
#define FILECRYPT_MAX_RECIPIENTS 8u
#define FILECRYPT_HEADER_MAX (FILECRYPT_FIXED_LEN + FILECRYPT_MAX_RECIPIENTS * FILECRYPT_ENTRY_LEN)
#define FILECRYPT_TYPE_P256_ECDH 0x01u
#define FILECRYPT_FILE_ID_LEN 16u
#define FILECRYPT_KEY_ID_LEN 8u
#define FILECRYPT_POINT_LEN 65u
#define FILECRYPT_KEY_LEN 32u
#define FILECRYPT_TAG_LEN 16u
#define FILECRYPT_CHUNK_EXP_MIN 10u
#define FILECRYPT_CHUNK_EXP_MAX 20u
#define FILECRYPT_CHUNK_EXP_DEFAULT 16u
#define FILECRYPT_KWK_INFO "icdup file kwk v1"

enum filecrypt_err {
    FILECRYPT_OK = 0,
    FILECRYPT_E_ARG = -1,           /* bad arguments (recipient count, chunk size, bad point) */
    FILECRYPT_E_IO = -2,            /* reading the input or writing the output failed */
    FILECRYPT_E_FORMAT = -3,        /* not an icdup file, unsupported version, bad header */
    FILECRYPT_E_NOT_RECIPIENT = -4, /* the key is not among the file's recipients */
    FILECRYPT_E_KEY = -5,           /* the content key does not unwrap (header or entry
                                       modified, or a wrong shared secret) */
    FILECRYPT_E_CORRUPT = -6,       /* a chunk failed authentication (modified, reordered) */
    FILECRYPT_E_TRUNCATED = -7,     /* the file ends before its final chunk */
    FILECRYPT_E_TRAILING = -8,      /* data follows the final chunk */
    FILECRYPT_E_RNG = -9,           /* the random generator failed */
    FILECRYPT_E_CRYPTO = -10,       /* an mbedtls primitive failed (memory) */
    FILECRYPT_E_CARD = -11,         /* the card refused or the reader failed (filecard.h) */
};

/* One recipient entry as stored. Entries of an unknown type are kept as they are and never
 * match a key. */
struct filecrypt_entry {
    uint8_t type;                            /* FILECRYPT_TYPE_P256_ECDH */
    uint8_t key_id[FILECRYPT_KEY_ID_LEN];    /* SHA-256(recipient point)[0..8) */
    uint8_t eph_pub[FILECRYPT_POINT_LEN];    /* the ephemeral public point of this entry */
    uint8_t wrapped[FILECRYPT_KEY_LEN + FILECRYPT_TAG_LEN]; /* GCM ciphertext of the CEK, tag */
};

struct filecrypt_header {
    uint8_t fixed[FILECRYPT_FIXED_LEN];      /* the immutable header, byte for byte */
    uint8_t hash[32];                        /* H = SHA-256(fixed) */
    unsigned version;
    unsigned chunk_exp;                      /* chunk = 2^chunk_exp bytes */
    unsigned n;                              /* recipients, 1..8 */
    uint8_t file_id[FILECRYPT_FILE_ID_LEN];
    struct filecrypt_entry entry[FILECRYPT_MAX_RECIPIENTS];
};

/* The random inputs of one encryption. The real path draws them from a CTR-DRBG seeded from
 * getrandom; tests pass fixed ones (known-answer vectors). */
struct filecrypt_randoms {
    uint8_t cek[FILECRYPT_KEY_LEN];
    uint8_t file_id[FILECRYPT_FILE_ID_LEN];
    uint8_t eph_priv[FILECRYPT_MAX_RECIPIENTS][32]; /* one per recipient, in order */
};

/* Bytes of the header (fixed part and recipient table): 24 + 122 * h->n. */
size_t filecrypt_header_len(const struct filecrypt_header *h);

/* Chunk size of a header in bytes. */
size_t filecrypt_chunk_len(const struct filecrypt_header *h);

/* Key id of a public point: SHA-256(point)[0..8). */
void filecrypt_key_id(const uint8_t pub[65], uint8_t id[FILECRYPT_KEY_ID_LEN]);

/* Index of the first P-256 entry whose key id is id, or -1. */
int filecrypt_find(const struct filecrypt_header *h, const uint8_t id[FILECRYPT_KEY_ID_LEN]);

/* KWK = HKDF-SHA-256(salt = eph_pub || recipient_pub, IKM = shared_x,
 * info = "icdup file kwk v1", 32 bytes). Returns FILECRYPT_OK or FILECRYPT_E_CRYPTO. */
int filecrypt_derive_kwk(const uint8_t shared_x[32], const uint8_t eph_pub[65],
                         const uint8_t recipient_pub[65], uint8_t kwk[32]);

/* Parses a header from the len bytes of buf (which may continue with the body); *used gets
 * the header length. Checks the magic, the version, the chunk size exponent (10..20), the
 * recipient count (1..8), the zero byte and that the whole table is present; it does not
 * judge the entries (a damaged entry of another recipient must not lock out the others).
 * Returns FILECRYPT_OK or FILECRYPT_E_FORMAT with a message. */
int filecrypt_header_parse(const uint8_t *buf, size_t len, struct filecrypt_header *h,
                           size_t *used, char *err, size_t errlen);

/* Serializes h (its fixed bytes and n entries) into out (cap bytes), *len set. */
int filecrypt_header_encode(const struct filecrypt_header *h, uint8_t *out, size_t cap,
                            size_t *len, char *err, size_t errlen);

/* Reads and parses the header at the current position of in, leaving in at the first chunk. */
int filecrypt_read_header(FILE *in, struct filecrypt_header *h, char *err, size_t errlen);

/* Writes the header of h to out. */
int filecrypt_write_header(FILE *out, const struct filecrypt_header *h, char *err,
                           size_t errlen);

/* Encrypts everything in `in` to out for n recipients (1..8 distinct valid P-256 points), in
 * chunks of 2^chunk_exp bytes (10..20). Constant memory: the output ring. A plaintext whose
 * length is a multiple of the chunk size ends with a full final chunk; an empty one is a single
 * empty final chunk. *plain_len (may be NULL) gets the plaintext length. out is flushed but
 * neither synced nor closed. */
int filecrypt_encrypt(FILE *in, FILE *out, const uint8_t (*recipients)[65], unsigned n,
                      unsigned chunk_exp, uint64_t *plain_len, char *err, size_t errlen);

/* The same with the random inputs given: the one implementation behind filecrypt_encrypt, and
 * the deterministic entry point of the known-answer tests. */
int filecrypt_encrypt_with(FILE *in, FILE *out, const uint8_t (*recipients)[65], unsigned n,
                           unsigned chunk_exp, const struct filecrypt_randoms *rnd,
                           uint64_t *plain_len, char *err, size_t errlen);

/* Opens the CEK from entry `index` given the ECDH shared secret of that entry's ephemeral
 * point with the recipient's private key (done by the card) and the recipient's public point.
 * Returns FILECRYPT_OK with cek written; FILECRYPT_E_ARG when the index is out of range, the
 * entry is not P-256 or its key id is not that of recipient_pub; FILECRYPT_E_KEY when the
 * wrapped key fails authentication (cek then untouched). */
int filecrypt_open_with(const struct filecrypt_header *h, unsigned index,
                        const uint8_t shared_x[32], const uint8_t recipient_pub[65],
                        uint8_t cek[32], char *err, size_t errlen);

/* Decrypts the chunks from the current position of in (just after the header) to out,
 * streaming. Every chunk is authenticated before its plaintext is written; an error stops at
 * the first bad chunk, so out may already hold the plaintext of the chunks before it: a caller
 * that writes a file writes it to a temporary name and removes it on error
 * (filecard_decrypt_path does). Errors: FILECRYPT_E_CORRUPT, _TRUNCATED, _TRAILING, _IO.
 * *plain_len (may be NULL) gets the plaintext bytes written. */
int filecrypt_decrypt_body(FILE *in, FILE *out, const struct filecrypt_header *h,
                           const uint8_t cek[32], uint64_t *plain_len, char *err,
                           size_t errlen);

/* Recovery: a copy of h in out whose entries with key id old_key_id (at least one) are each
 * replaced by a fresh entry for new_pub wrapping cek; other entries (a partner's key) are kept
 * as they are, and the fixed header is unchanged, so the chunks stay valid. *replaced (may be
 * NULL) gets the number of entries replaced. FILECRYPT_E_NOT_RECIPIENT when no entry has
 * old_key_id; FILECRYPT_E_ARG when new_pub is not a valid point or is already a recipient. */
int filecrypt_rewrap(const struct filecrypt_header *h, const uint8_t cek[32],
                     const uint8_t old_key_id[FILECRYPT_KEY_ID_LEN], const uint8_t new_pub[65],
                     struct filecrypt_header *out, unsigned *replaced, char *err,
                     size_t errlen);

/* The same with the ephemeral private keys given (eph_priv[k] for the k-th replaced entry;
 * FILECRYPT_MAX_RECIPIENTS of them are always enough). */
int filecrypt_rewrap_with(const struct filecrypt_header *h, const uint8_t cek[32],
                          const uint8_t old_key_id[FILECRYPT_KEY_ID_LEN],
                          const uint8_t new_pub[65], const uint8_t (*eph_priv)[32],
                          struct filecrypt_header *out, unsigned *replaced, char *err,
                          size_t errlen);

/* Encrypts the file in_path to out_path ("-": standard input / output). A file target is
 * written to a temporary file next to it, synced and renamed over out_path only on success
 * (mode 0666 & ~umask); on failure nothing is left. */
int filecrypt_encrypt_path(const char *in_path, const char *out_path,
                           const uint8_t (*recipients)[65], unsigned n, unsigned chunk_exp,
                           uint64_t *plain_len, char *err, size_t errlen);

/* Progress of the encryptions and decryptions of this process (filecrypt_encrypt*,
 * filecrypt_decrypt_body): fn(ctx, done, total) is called from the calling thread about every
 * MiB and once after the final chunk, done being the input bytes consumed after the header and
 * total those the input has after the header (0 when it is not a regular file). For the CLI's
 * progress bar; fn NULL (the default) turns it off. Not for concurrent use from threads. */
typedef void (*filecrypt_progress_fn)(void *ctx, uint64_t done, uint64_t total);
void filecrypt_set_progress(filecrypt_progress_fn fn, void *ctx);

/* Short name of an error code ("corrupt chunk", ...). */
const char *filecrypt_err_name(int code);

#endif

/* Recovery of encrypted data files (docs/fileformat.md "Recovery"): the original card is lost
 * or broken; its backup (same key, cloned with icdup clone) opens each file and a new original
 * card, with a new key of its own, takes the backup's place among the file's recipients.
 *
 * For each file:
 *   1  stale temporary files "FILE.tmp-XXXXXX" of an earlier, killed run are removed
 *   2  the header is read; a file that already has an entry for the new card's key is skipped
 *   3  one PSO DECIPHER on the backup card opens the content key (CEK)
 *   4  the entries of the backup's key are rewrapped for the new card's key (fresh ephemeral
 *      keys); other entries (a partner's key), the fixed header and the chunks are unchanged
 *   5  with the new card's PIN: one PSO DECIPHER on the new card checks that the new entry
 *      opens to the same CEK
 *   6  the new header and the unchanged chunk bytes go to FILE.tmp-XXXXXX in the same
 *      directory (mode of the original), fsync, rename over FILE, fsync of the directory
 * A crash at any instant leaves every file either old (still opened by the backup) or new
 * (opened by the new card); a rerun skips the files already done and continues.
 *
 * Only one recovery at a time may work on a given file. The library prints nothing. */
#ifndef RECOVER_H
#define RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secrets.h"
#include "transport.h"

enum recover_err {
    RECOVER_OK = 0,         /* every file done or skipped */
    RECOVER_E_FILES = -1,   /* some files failed (see the results); the others are done */
    RECOVER_E_CARD = -2,    /* a card refused or was lost; files not reached are untouched */
    RECOVER_E_ARG = -3,     /* bad arguments (no PIN, no files) */
    RECOVER_E_SAME_KEY = -4,/* the new card holds the backup's key: nothing to recover */
    RECOVER_E_PROOF = -5,   /* the new card does not hold the private key of its public key */
};

enum recover_status {
    RECOVER_PENDING = 0, /* not attempted (the run stopped before it) */
    RECOVER_DONE,        /* rewritten for the new card */
    RECOVER_SKIPPED,     /* already had an entry for the new card: unchanged */
    RECOVER_FAILED,      /* unchanged; reason says why */
};

#define RECOVER_REASON_LEN 384u

struct recover_result {
    enum recover_status status;
    char reason[RECOVER_REASON_LEN]; /* failed: why; pending: why not attempted; else "" */
    unsigned replaced;               /* done: entries rewrapped (normally 1) */
    unsigned stale_removed;          /* stale temporary files of this file removed */
};

struct recover_options {
    const struct secret_pin *backup_pin; /* user PIN of the backup card (required) */
    const struct secret_pin *new_pin;    /* user PIN of the new card (optional): proof that it
                                            holds its key, and step 5 for every file */
    /* Called after each file with its result (index 0-based). May be NULL. */
    void (*progress)(void *ctx, size_t index, size_t total, const char *path,
                     const struct recover_result *r);
    void *progress_ctx;
};

struct recover_summary {
    size_t done, skipped, failed, pending;
    unsigned stale_removed;
    bool proved;                   /* the new card proved it holds its key (new_pin given) */
    uint8_t backup_key_id[8], new_key_id[8];
    unsigned long apdus_backup, apdus_new;
};

/* Recovers the n files of paths from the backup card to the new card (both open transports).
 * results has n entries and is always filled (RECOVER_PENDING for files not reached); sum may
 * be NULL. Returns RECOVER_OK, or a negative recover_err with a message in err. Before any
 * file is touched: the public keys of both cards are read, the backup's PIN verified, and with
 * new_pin the new card's PIN verified and its key proved (an ECDH on the host compared with
 * its PSO DECIPHER). */
int recover_files(struct transport *backup, struct transport *fresh, const char *const *paths,
                  size_t n, const struct recover_options *o, struct recover_result *results,
                  struct recover_summary *sum, char *err, size_t errlen);

/* "done", "skipped", "failed", "not attempted". */
const char *recover_status_name(enum recover_status s);

#endif

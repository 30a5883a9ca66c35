/* Duplication of a card's key (docs/clone.md): the source card ("src") exports its private key
 * wrapped under the key group's KEK and bound to the destination card ("dst"), which imports
 * it; then the host proves that dst decrypts what src's public key encrypted.
 *
 *   1  VERIFY the user PIN on both cards
 *   2  GET DATA DF10 (key group) on both, DF11 (key state) on src
 *   3  SET SHARE on each card for the shares it lacks, from the secrets
 *   4  the KCVs of both cards must match, or nothing is exported
 *   5  BINDING KEY P1 00 on dst (the pending binding key, or a new one)
 *   6  GENERATE on src when it has no key (or --generate), else read its public key
 *   7  EXPORT WRAPPED on src, bound to dst's binding point
 *   8  the blob is saved to a state file (0600, fsync, atomic rename) before it is imported
 *   9  IMPORT WRAPPED on dst; the state file is removed once dst confirms
 *   10 proof: ECDH of a host ephemeral key with src's public key equals dst's PSO DECIPHER
 *   11 LOCK EXPORT on src when asked
 * A rerun after a failure resumes: a blob saved for dst's pending binding key is imported
 * without a new export; a destination that already holds src's key is only proved.
 *
 * The library prints nothing: progress lines go to a callback. Secrets are wiped after use. */
#ifndef DUP_H
#define DUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_ops.h"
#include "secrets.h"
#include "transport.h"

enum dup_err {
    DUP_OK = 0,
    DUP_E_CARD = -1,        /* a card refused a command or the reader failed */
    DUP_E_SHARES = -2,      /* the secrets lack shares a card needs */
    DUP_E_MISMATCH = -3,    /* the cards' key groups differ (share count or KCV) */
    DUP_E_STATE = -4,       /* the state file could not be written, read or is not usable */
    DUP_E_PROOF = -5,       /* dst does not decrypt what src's public key encrypted */
    DUP_E_INTERRUPTED = -6, /* the after_step callback stopped the clone */
    DUP_E_ARG = -7,         /* bad options (no PIN, no state directory) */
    DUP_E_REFUSED = -8,     /* a card's state forbids the clone (export locked or used) */
};

/* Steps reported to after_step once they are complete. */
enum dup_step {
    DUP_STEP_NONE = 0,
    DUP_STEP_VERIFIED,      /* both user PINs verified */
    DUP_STEP_GROUPS_READ,   /* DF10 of both cards and DF11 of src read */
    DUP_STEP_SHARES_SET,    /* every missing share set */
    DUP_STEP_KCV_CONFIRMED, /* both cards hold the same key group */
    DUP_STEP_BOUND,         /* dst's binding point known, state file looked up */
    DUP_STEP_KEY_READY,     /* src's public key known (generated or read) */
    DUP_STEP_EXPORTED,      /* the blob left src (not yet saved) */
    DUP_STEP_SAVED,         /* the blob is in the state file */
    DUP_STEP_IMPORTED,      /* dst confirmed the import */
    DUP_STEP_PROVED,        /* the proof succeeded */
    DUP_STEP_LOCKED,        /* src's export locked (--lock-export) */
};

struct dup_options {
    const struct secret_pin *src_pin; /* user PIN of src (required) */
    const struct secret_pin *dst_pin; /* user PIN of dst (required) */
    /* Shares known up front (may be NULL). Only shares a card lacks are used. */
    const struct secrets *shares;
    /* Called when shares lacks some share a card needs (bit i-1 of needed: share i); adds what
     * it can to *s. May be NULL. Returns 0, or -1 with a message in err. */
    int (*get_shares)(void *ctx, uint8_t needed, struct secrets *s, char *err, size_t errlen);
    void *shares_ctx;
    bool generate;      /* generate a key pair on src even when it holds one (needs admin) */
    bool lock_export;   /* LOCK EXPORT on src after a proven clone */
    bool unbound;       /* export unbound (the blob opens on any card of the group) */
    const char *state_dir; /* where blobs wait for import; NULL: $HOME/.icdup */
    void (*progress)(void *ctx, const char *line); /* may be NULL */
    void *progress_ctx;
    /* Called after each completed step; a non-zero return stops the clone there, as a power
     * cut or a lost connection would (DUP_E_INTERRUPTED). May be NULL. */
    int (*after_step)(void *ctx, enum dup_step step);
    void *step_ctx;
};

struct dup_result {
    unsigned n;                 /* shares in the key group */
    uint8_t kcv[8];             /* the group's KCV (valid from DUP_STEP_KCV_CONFIRMED) */
    uint8_t src_set, dst_set;   /* shares set in this run (bit i-1: share i) */
    bool src_kcv_from_card;     /* the KCV was read from the card; else the host set every
                                   share of that card in this run and computed it */
    bool dst_kcv_from_card;
    bool generated;             /* a key pair was generated on src */
    bool exported;              /* src exported in this run */
    bool resumed;               /* the blob came from a state file of an earlier run */
    bool already_cloned;        /* dst already held src's key: nothing exported or imported */
    bool imported;
    bool proved;
    bool locked;
    bool bound;
    bool have_src_serial;
    uint8_t src_serial[8];
    uint16_t export_count;      /* src's export count in the blob (0 when none) */
    uint8_t src_pub[65];        /* src's public key (valid from DUP_STEP_KEY_READY) */
    char state_path[1024];      /* the state file of this clone ("" before it is known) */
    bool state_kept;            /* the blob is still on disk: rerun to resume */
    unsigned long apdus_src, apdus_dst; /* command APDUs sent to each card */
    enum dup_step last_step;    /* last completed step */
};

/* Clones src's key into dst. r is always filled as far as the clone went. Returns DUP_OK, or a
 * negative dup_err with a message in err that says what happened and what is kept. */
int dup_clone(struct transport *src, struct transport *dst, const struct dup_options *o,
              struct dup_result *r, char *err, size_t errlen);

/* Proof that dst holds the private key of src_pub: an ephemeral P-256 key (CTR-DRBG seeded
 * from getrandom), ECDH with src_pub on the host, PSO DECIPHER of its point on the card, the
 * two X coordinates compared in constant time. The user PIN must be verified. Returns DUP_OK,
 * DUP_E_PROOF when they differ, DUP_E_CARD with the card's message. */
int dup_prove(struct cardop *card, const uint8_t src_pub[65], char *err, size_t errlen);

/* The state directory: dir when given, else $HOME/.icdup, created (mode 0700) when missing.
 * Returns 0 with the path in out, or -1 with a message in err. */
int dup_state_dir(const char *dir, char *out, size_t cap, char *err, size_t errlen);

/* Writes a blob file: a temporary file of mode 0600 in the same directory, written, fsynced,
 * renamed over path, then the directory fsynced. Returns 0, or -1 with a message in err (the
 * temporary file removed). */
int dup_blob_save(const char *path, const uint8_t *blob, size_t len, char *err, size_t errlen);

/* Reads a blob file (at most cap bytes). Returns 0 with *len set, 1 when path does not exist,
 * or -1 with a message in err (unreadable, longer than cap). */
int dup_blob_load(const char *path, uint8_t *blob, size_t cap, size_t *len, char *err,
                  size_t errlen);

/* Name of a step for messages ("export", "import" ...). */
const char *dup_step_name(enum dup_step step);

#endif

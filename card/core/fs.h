/* ISO 7816-4 file system on NVM: a table of file records (MF, DFs, working and internal EFs)
 * and a heap holding the EF contents. Files are created and deleted at run time (CREATE FILE,
 * DELETE FILE); every change is one NVM transaction. */
#ifndef FS_H
#define FS_H

#include <stdbool.h>
#include <stdint.h>

#include "nvm.h"

#define FS_NONE 0xFFu        /* "no slot" */
#define FS_MF_SLOT 0u
#define FS_NAME_MAX 16u
#define FS_EF_MAX_SIZE 0x7FFFu /* READ/UPDATE BINARY offsets are 15 bits */

enum fs_ac_index { FS_AC_READ, FS_AC_UPDATE, FS_AC_DELETE, FS_AC_COUNT };

struct fs_file {
    uint8_t slot;       /* index in the file table */
    uint16_t fid;
    uint8_t fdb;        /* file descriptor byte: FDB_DF, FDB_WORKING_EF, FDB_INTERNAL_EF */
    uint8_t lcs;
    uint8_t parent;     /* slot of the parent DF, FS_NONE for the MF */
    uint8_t sfi;        /* short EF identifier 1..30, 0 for none */
    uint8_t ac[FS_AC_COUNT];
    uint8_t name_len;   /* DF name (AID) length, 0 for none */
    uint8_t name[FS_NAME_MAX];
    uint16_t size;      /* EF data bytes */
    uint32_t off;       /* EF data address in the user area */
};

static inline bool fs_is_df(const struct fs_file *f) { return f->fdb == 0x38u; }

/* Stages the MF (slot 0) into the open transaction of a fresh format. Returns 0 or < 0. */
int fs_format(struct nvm *nvm);

/* Checks every record (CRC, parent links, data ranges inside the heap and not overlapping).
 * Returns 0, CARD_E_CORRUPT or CARD_E_IO. */
int fs_check(struct nvm *nvm);

/* Loads the record in slot. Returns 0, CARD_E_NOT_FOUND for a free slot, CARD_E_CORRUPT,
 * CARD_E_IO. */
int fs_load(struct nvm *nvm, uint8_t slot, struct fs_file *out);

/* Finds the child of DF slot df with this FID. Returns 0 or CARD_E_NOT_FOUND (or IO/CORRUPT). */
int fs_find_child(struct nvm *nvm, uint8_t df, uint16_t fid, struct fs_file *out);

/* Finds the EF with short identifier sfi directly under DF slot df. Returns 0 or
 * CARD_E_NOT_FOUND. */
int fs_find_sfi(struct nvm *nvm, uint8_t df, uint8_t sfi, struct fs_file *out);

/* Finds a DF by its exact name anywhere in the tree. Returns 0 or CARD_E_NOT_FOUND. */
int fs_find_name(struct nvm *nvm, const uint8_t *name, uint8_t len, struct fs_file *out);

/* Depth of slot (MF = 0). Returns the depth, or a negative card_err. */
int fs_depth(struct nvm *nvm, uint8_t slot);

/* Creates f under f->parent: takes a free slot and heap space (zeroed before the record
 * commits), fills f->slot and f->off. Checks FID/SFI/name uniqueness. Returns 0,
 * CARD_E_FILE_EXISTS, CARD_E_NAME_EXISTS, CARD_E_NO_SPACE, or an NVM error. */
int fs_create(struct nvm *nvm, struct fs_file *f);

/* Deletes the file in slot and, for a DF, everything below it, in one transaction; the freed
 * data is then zeroed. Returns 0 or an NVM error. */
int fs_delete(struct nvm *nvm, uint8_t slot);

/* Reads len bytes at off of EF f (range already checked by the caller). Returns 0 or < 0. */
int fs_read(struct nvm *nvm, const struct fs_file *f, uint16_t off, void *buf, uint16_t len);

/* Writes len bytes at off of EF f atomically; internal EFs use a secret transaction.
 * Returns 0 or < 0. */
int fs_update(struct nvm *nvm, const struct fs_file *f, uint16_t off, const void *buf,
              uint16_t len);

/* Stages a write of len bytes at off of EF f into the caller's open transaction, so that
 * writes to several files commit together. Returns 0 or the nvm_write error. */
int fs_stage_update(struct nvm *nvm, const struct fs_file *f, uint16_t off, const void *buf,
                    uint16_t len);

/* Sets the life-cycle byte of the file in slot atomically. Returns 0 or < 0. */
int fs_set_lcs(struct nvm *nvm, uint8_t slot, uint8_t lcs);

/* Heap bytes in use and free. Returns 0 or < 0. */
int fs_usage(struct nvm *nvm, uint32_t *used, uint32_t *free_bytes);

#endif

/* NVM transaction layer: atomic multi-write updates over a hal_nvm device.
 *
 * Layout (details in docs/nvm.md): a header at address 0 (magic, layout version, sizes, CRC),
 * then the journal area, then the *user area* that the rest of the core addresses from 0.
 *
 * Scheme: a redo journal. Writes made between nvm_begin() and nvm_commit() are collected in a
 * RAM buffer; reads see them (read-your-writes). Commit writes the records to the journal area,
 * then a commit record whose CRC covers the whole journal, then applies the records to their
 * home addresses, then invalidates the commit record. At mount a valid commit record means the
 * transaction is replayed (replay is idempotent). So a power cut at any single write, including
 * a torn one, leaves the user area either as before the transaction or as after it. */
#ifndef NVM_H
#define NVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card_config.h"
#include "../hal/hal_nvm.h"

/* Flags for nvm_begin. */
#define NVM_TXN_SECRET 0x01u /* the journal copy is zeroed after apply (key material, PINs) */

struct nvm {
    const struct hal_nvm *dev;
    uint32_t user_base;     /* absolute address of user address 0 */
    uint32_t user_size;     /* bytes in the user area */
    bool mounted;
    bool in_txn;
    uint8_t txn_flags;
    uint32_t seq;           /* sequence number of the next commit record */
    size_t jlen;            /* bytes used in jbuf */
    uint8_t jbuf[CARD_NVM_JOURNAL_SIZE]; /* pending records: addr(4) len(2) data(len) ... */
    /* statistics for bench/ and tests: bytes handed to dev->write since mount/format */
    uint32_t bytes_written;
    uint32_t writes;
};

/* Writes a fresh header and empty journal; the user area is filled with 0x00.
 * Returns 0, CARD_E_IO, or CARD_E_NO_SPACE if the device is too small. */
int nvm_format(struct nvm *nvm, const struct hal_nvm *dev);

/* Checks the header (CARD_E_FOREIGN for another magic/layout/size, CARD_E_CORRUPT for a bad
 * CRC), replays a committed but unapplied transaction, and readies the layer.
 * Returns 0 or a negative card_err; on error the image is left untouched except for replay. */
int nvm_mount(struct nvm *nvm, const struct hal_nvm *dev);

/* Reads user-area bytes, including writes pending in an open transaction.
 * Returns 0, CARD_E_IO, or CARD_E_INTERNAL when the range is outside the user area. */
int nvm_read(struct nvm *nvm, uint32_t addr, void *buf, size_t len);

/* Opens a transaction (flags: NVM_TXN_*). Returns 0, or CARD_E_INTERNAL if one is open. */
int nvm_begin(struct nvm *nvm, unsigned flags);

/* Records a write inside the open transaction (nothing reaches the device yet).
 * Returns 0, CARD_E_TXN_FULL when the journal cannot hold it (the transaction stays open and
 * must be aborted), or CARD_E_INTERNAL for a bad range or no open transaction. */
int nvm_write(struct nvm *nvm, uint32_t addr, const void *buf, size_t len);

/* Makes the open transaction durable and applies it. Returns 0 or CARD_E_IO. After CARD_E_IO
 * the in-RAM state is unknown: the caller must remount (a real card would be powering down). */
int nvm_commit(struct nvm *nvm);

/* Drops the open transaction; the device was never touched by it. */
void nvm_abort(struct nvm *nvm);

/* Writes outside any transaction, for space no committed structure refers to yet
 * (e.g. zeroing a file's data before the file record commits). Returns 0 or CARD_E_IO. */
int nvm_write_direct(struct nvm *nvm, uint32_t addr, const void *buf, size_t len);

/* Convenience: one write as its own transaction. Returns as nvm_commit. */
int nvm_write_atomic(struct nvm *nvm, uint32_t addr, const void *buf, size_t len, unsigned flags);

/* Bytes of overhead the layout takes before the user area, for a device of the given size. */
uint32_t nvm_user_base(void);

#endif

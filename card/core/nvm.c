/* NVM transaction layer: a redo journal over a hal_nvm device. The byte layout, the commit
 * sequence and the argument for why any power cut leaves old-or-new are in docs/nvm.md.
 *
 * All multi-byte fields on NVM are little-endian and are (de)serialized byte by byte; no struct
 * is ever copied to or from the device.
 *
 * Beyond the return codes listed in nvm.h: when nvm_commit fails the layer marks itself
 * unmounted, and until nvm_mount succeeds again nvm_read, nvm_begin and nvm_write_direct return
 * CARD_E_IO (a later commit must never overwrite the journal of a committed, unapplied
 * transaction). nvm_format leaves the layer mounted. */
#include <string.h>

#include "card_err.h"
#include "crc32.h"
#include "nvm.h"

#if CARD_NVM_JOURNAL_SIZE > 65535u
#error "CARD_NVM_JOURNAL_SIZE must fit the 16-bit body length of the commit record"
#endif

/* ---- layout (absolute device addresses) ---------------------------------------------------
 * header           0 .. 31   see nvm_header_build
 * commit record   32 .. 47   see nvm_crec_build
 * journal body    48 .. 48 + CARD_NVM_JOURNAL_SIZE - 1
 * user area       NVM_USER_BASE .. dev->size - 1 */
#define NVM_LAYOUT_VERSION 1u
#define NVM_HDR_SIZE 32u
#define NVM_HDR_CRC_AT 28u          /* the header CRC covers bytes 0..27 */
#define NVM_JOURNAL_OFF NVM_HDR_SIZE
#define NVM_CREC_SIZE 16u
#define NVM_CREC_SEQ_AT 0u
#define NVM_CREC_LEN_AT 4u
#define NVM_CREC_CRC_AT 8u          /* the commit CRC covers bytes 0..7, then the body */
#define NVM_CREC_MAGIC_AT 12u       /* last, so a record torn anywhere lacks a whole magic */
#define NVM_CREC_MAGIC_SIZE 4u      /* invalidation zeroes exactly these bytes */
#define NVM_BODY_OFF (NVM_JOURNAL_OFF + NVM_CREC_SIZE)
#define NVM_JOURNAL_TOTAL (NVM_CREC_SIZE + CARD_NVM_JOURNAL_SIZE)
#define NVM_USER_BASE (NVM_JOURNAL_OFF + NVM_JOURNAL_TOTAL)
#define NVM_REC_HDR 6u              /* body record: addr u32, len u16, then data */
#define NVM_MIN_USER 256u           /* smallest user area a device must offer */
#define NVM_ZERO_CHUNK 256u

static const uint8_t nvm_hdr_magic[6] = {'I', 'C', 'D', 'N', 'V', 'M'};
static const uint8_t nvm_crec_magic[NVM_CREC_MAGIC_SIZE] = {'J', 'R', 'N', 'L'};
static const uint8_t nvm_zeros[NVM_ZERO_CHUNK] = {0};

/* ---- little-endian helpers ---------------------------------------------------------------- */

static void nvm_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void nvm_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t nvm_get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static uint32_t nvm_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* ---- device access: every write is counted, every failure is returned at once ------------- */

static int nvm_dev_rc(int rc)
{
    if (rc == 0)
        return 0;
    return rc < 0 ? rc : CARD_E_IO;
}

static int nvm_dev_read(const struct nvm *nvm, uint32_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    return nvm_dev_rc(nvm->dev->read(nvm->dev->ctx, addr, buf, len));
}

static int nvm_dev_write(struct nvm *nvm, uint32_t addr, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    nvm->writes++;
    nvm->bytes_written += (uint32_t)len;
    return nvm_dev_rc(nvm->dev->write(nvm->dev->ctx, addr, buf, len));
}

static int nvm_dev_sync(struct nvm *nvm)
{
    if (nvm->dev->sync == NULL)
        return 0;
    return nvm_dev_rc(nvm->dev->sync(nvm->dev->ctx));
}

static int nvm_dev_zero(struct nvm *nvm, uint32_t addr, uint32_t len)
{
    while (len > 0) {
        uint32_t n = len < NVM_ZERO_CHUNK ? len : NVM_ZERO_CHUNK;
        int rc = nvm_dev_write(nvm, addr, nvm_zeros, n);
        if (rc != 0)
            return rc;
        addr += n;
        len -= n;
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void nvm_reset(struct nvm *nvm, const struct hal_nvm *dev)
{
    memset(nvm, 0, sizeof *nvm);
    nvm->dev = dev;
    nvm->user_base = NVM_USER_BASE;
}

static bool nvm_dev_usable(const struct hal_nvm *dev)
{
    return dev != NULL && dev->read != NULL && dev->write != NULL;
}

static bool nvm_range_ok(const struct nvm *nvm, uint32_t addr, size_t len)
{
    return len <= nvm->user_size && addr <= nvm->user_size - len;
}

/* Header: magic[6] "ICDNVM", version u16, device size u32, journal offset u32, journal size u32
 * (commit record + body capacity), user base u32, reserved u32 (0), CRC-32 of bytes 0..27. */
static void nvm_header_build(uint8_t h[NVM_HDR_SIZE], uint32_t dev_size)
{
    memset(h, 0, NVM_HDR_SIZE);
    memcpy(h, nvm_hdr_magic, sizeof nvm_hdr_magic);
    nvm_put_u16(h + 6, NVM_LAYOUT_VERSION);
    nvm_put_u32(h + 8, dev_size);
    nvm_put_u32(h + 12, NVM_JOURNAL_OFF);
    nvm_put_u32(h + 16, NVM_JOURNAL_TOTAL);
    nvm_put_u32(h + 20, NVM_USER_BASE);
    nvm_put_u32(h + 24, 0);
    nvm_put_u32(h + NVM_HDR_CRC_AT, card_crc32(h, NVM_HDR_CRC_AT));
}

/* Magic and version first (another product or layout is foreign even if its header would not
 * pass our CRC), then the CRC (a damaged header is corrupt), then the sizes it records. */
static int nvm_header_check(const uint8_t h[NVM_HDR_SIZE], uint32_t dev_size)
{
    if (memcmp(h, nvm_hdr_magic, sizeof nvm_hdr_magic) != 0)
        return CARD_E_FOREIGN;
    if (nvm_get_u16(h + 6) != NVM_LAYOUT_VERSION)
        return CARD_E_FOREIGN;
    if (nvm_get_u32(h + NVM_HDR_CRC_AT) != card_crc32(h, NVM_HDR_CRC_AT))
        return CARD_E_CORRUPT;
    if (nvm_get_u32(h + 8) != dev_size || nvm_get_u32(h + 12) != NVM_JOURNAL_OFF ||
        nvm_get_u32(h + 16) != NVM_JOURNAL_TOTAL || nvm_get_u32(h + 20) != NVM_USER_BASE)
        return CARD_E_FOREIGN;
    return 0;
}

/* Checks that body[0..len) is a whole number of records, each inside the user area. */
static int nvm_body_check(const struct nvm *nvm, size_t len)
{
    size_t off = 0;

    while (off < len) {
        if (len - off < NVM_REC_HDR)
            return CARD_E_CORRUPT;
        uint32_t a = nvm_get_u32(nvm->jbuf + off);
        uint16_t l = nvm_get_u16(nvm->jbuf + off + 4);
        off += NVM_REC_HDR;
        if (l > len - off || !nvm_range_ok(nvm, a, l))
            return CARD_E_CORRUPT;
        off += l;
    }
    return 0;
}

/* Writes each record of jbuf[0..len) to its home address, in order. */
static int nvm_apply(struct nvm *nvm, size_t len)
{
    size_t off = 0;

    while (off < len) {
        uint32_t a = nvm_get_u32(nvm->jbuf + off);
        uint16_t l = nvm_get_u16(nvm->jbuf + off + 4);
        off += NVM_REC_HDR;
        int rc = nvm_dev_write(nvm, nvm->user_base + a, nvm->jbuf + off, l);
        if (rc != 0)
            return rc;
        off += l;
    }
    return 0;
}

/* After the apply: make it durable, optionally zero body[0..body_len), then invalidate the
 * commit record. The scrub comes before the invalidation so that a cut in between leaves a
 * record with a valid magic and a failing CRC, which the next mount scrubs again. */
static int nvm_retire(struct nvm *nvm, size_t body_len, bool scrub)
{
    int rc = nvm_dev_sync(nvm);
    if (rc == 0 && scrub && body_len > 0) {
        rc = nvm_dev_zero(nvm, NVM_BODY_OFF, (uint32_t)body_len);
        if (rc == 0)
            rc = nvm_dev_sync(nvm);
    }
    if (rc == 0)
        rc = nvm_dev_write(nvm, NVM_JOURNAL_OFF + NVM_CREC_MAGIC_AT, nvm_zeros,
                           NVM_CREC_MAGIC_SIZE);
    if (rc == 0)
        rc = nvm_dev_sync(nvm);
    return rc;
}

/* Commit record: seq u32, body length u16, reserved u16 (0), CRC-32 over bytes 0..7 followed
 * by the body, magic[4] "JRNL". The magic comes last: the previous commit left zeros there, so
 * a record torn at any byte has no whole magic, whatever stale bytes the rest still holds. */
static void nvm_crec_build(uint8_t cr[NVM_CREC_SIZE], uint32_t seq, const uint8_t *body,
                           size_t len)
{
    nvm_put_u32(cr + NVM_CREC_SEQ_AT, seq);
    nvm_put_u16(cr + NVM_CREC_LEN_AT, (uint16_t)len);
    nvm_put_u16(cr + 6, 0);
    nvm_put_u32(cr + NVM_CREC_CRC_AT,
                card_crc32_update(card_crc32(cr, NVM_CREC_CRC_AT), body, len));
    memcpy(cr + NVM_CREC_MAGIC_AT, nvm_crec_magic, NVM_CREC_MAGIC_SIZE);
}

static int nvm_commit_steps(struct nvm *nvm, size_t len, bool secret)
{
    uint8_t cr[NVM_CREC_SIZE];
    int rc;

    rc = nvm_dev_write(nvm, NVM_BODY_OFF, nvm->jbuf, len);          /* 1 body */
    if (rc == 0)
        rc = nvm_dev_sync(nvm);                                     /* 2 */
    if (rc != 0)
        return rc;
    nvm_crec_build(cr, nvm->seq, nvm->jbuf, len);
    rc = nvm_dev_write(nvm, NVM_JOURNAL_OFF, cr, sizeof cr);        /* 3 commit point */
    if (rc == 0)
        rc = nvm_dev_sync(nvm);                                     /* 4 */
    if (rc != 0)
        return rc;
    nvm->seq++;
    rc = nvm_apply(nvm, len);                                       /* 5 */
    if (rc != 0)
        return rc;
    return nvm_retire(nvm, len, secret); /* 6 sync, 7 scrub if secret, 8 invalidate, 9 sync */
}

/* If a record that wholly contains [addr, addr+len) exists and no later record overlaps that
 * range, patches the data in place (same result as appending, less journal). */
static bool nvm_coalesce(struct nvm *nvm, uint32_t addr, const uint8_t *src, size_t len)
{
    size_t off = 0, hit_data = 0;
    uint32_t hit_addr = 0;
    bool found = false;
    size_t end = (size_t)addr + len;

    while (off < nvm->jlen) {
        uint32_t ra = nvm_get_u32(nvm->jbuf + off);
        uint16_t rl = nvm_get_u16(nvm->jbuf + off + 4);
        size_t rend = (size_t)ra + rl;
        off += NVM_REC_HDR;
        if (ra <= addr && end <= rend) {
            found = true;
            hit_data = off;
            hit_addr = ra;
        } else if (addr < rend && ra < end) {
            found = false;
        }
        off += rl;
    }
    if (!found)
        return false;
    memcpy(nvm->jbuf + hit_data + (addr - hit_addr), src, len);
    return true;
}

/* ---- public API ---------------------------------------------------------------------------- */

uint32_t nvm_user_base(void)
{
    return NVM_USER_BASE;
}

int nvm_format(struct nvm *nvm, const struct hal_nvm *dev)
{
    uint8_t h[NVM_HDR_SIZE];
    int rc;

    nvm_reset(nvm, dev);
    if (!nvm_dev_usable(dev))
        return CARD_E_INTERNAL;
    if (dev->size < NVM_USER_BASE + NVM_MIN_USER)
        return CARD_E_NO_SPACE;

    /* Kill any old header first and write the new one last: a torn format never mounts. */
    rc = nvm_dev_write(nvm, 0, nvm_zeros, NVM_HDR_SIZE);
    if (rc == 0)
        rc = nvm_dev_sync(nvm);
    if (rc == 0) /* commit record (zero = invalid), journal body and user area */
        rc = nvm_dev_zero(nvm, NVM_JOURNAL_OFF, dev->size - NVM_JOURNAL_OFF);
    if (rc == 0)
        rc = nvm_dev_sync(nvm);
    if (rc != 0)
        return rc;
    nvm_header_build(h, dev->size);
    rc = nvm_dev_write(nvm, 0, h, sizeof h);
    if (rc == 0)
        rc = nvm_dev_sync(nvm);
    if (rc != 0)
        return rc;

    nvm->user_size = dev->size - NVM_USER_BASE;
    nvm->seq = 1;
    nvm->mounted = true;
    return 0;
}

int nvm_mount(struct nvm *nvm, const struct hal_nvm *dev)
{
    uint8_t h[NVM_HDR_SIZE];
    uint8_t cr[NVM_CREC_SIZE];
    int rc;

    nvm_reset(nvm, dev);
    if (!nvm_dev_usable(dev))
        return CARD_E_INTERNAL;
    if (dev->size < NVM_USER_BASE + NVM_MIN_USER)
        return CARD_E_FOREIGN;
    rc = nvm_dev_read(nvm, 0, h, sizeof h);
    if (rc != 0)
        return rc;
    rc = nvm_header_check(h, dev->size);
    if (rc != 0)
        return rc;
    nvm->user_size = dev->size - NVM_USER_BASE;

    rc = nvm_dev_read(nvm, NVM_JOURNAL_OFF, cr, sizeof cr);
    if (rc != 0)
        return rc;
    nvm->seq = nvm_get_u32(cr + NVM_CREC_SEQ_AT) + 1u;

    if (memcmp(cr + NVM_CREC_MAGIC_AT, nvm_crec_magic, NVM_CREC_MAGIC_SIZE) == 0) {
        size_t len = nvm_get_u16(cr + NVM_CREC_LEN_AT);
        bool valid = false;

        if (len <= CARD_NVM_JOURNAL_SIZE) {
            rc = nvm_dev_read(nvm, NVM_BODY_OFF, nvm->jbuf, len);
            if (rc == 0)
                valid = nvm_get_u32(cr + NVM_CREC_CRC_AT) ==
                        card_crc32_update(card_crc32(cr, NVM_CREC_CRC_AT), nvm->jbuf, len);
        } else {
            len = CARD_NVM_JOURNAL_SIZE;
        }
        if (rc == 0 && valid) {
            /* Committed but maybe not (fully) applied: redo it. */
            rc = nvm_body_check(nvm, len);
            if (rc == 0)
                rc = nvm_apply(nvm, len);
        }
        /* Valid or not (torn commit record, or a cut during a secret scrub), scrub the body it
         * names and invalidate it, so no stale record survives the mount. */
        if (rc == 0)
            rc = nvm_retire(nvm, len, true);
        memset(nvm->jbuf, 0, sizeof nvm->jbuf);
        if (rc != 0)
            return rc;
    }
    nvm->mounted = true;
    return 0;
}

int nvm_read(struct nvm *nvm, uint32_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;
    size_t off = 0;
    size_t end = (size_t)addr + len;
    int rc;

    if (!nvm->mounted)
        return CARD_E_IO;
    if (!nvm_range_ok(nvm, addr, len) || (buf == NULL && len > 0))
        return CARD_E_INTERNAL;
    if (len == 0)
        return 0;
    rc = nvm_dev_read(nvm, nvm->user_base + addr, buf, len);
    if (rc != 0)
        return rc;

    /* Overlay the pending records in order: later writes win. */
    while (off < nvm->jlen) {
        uint32_t ra = nvm_get_u32(nvm->jbuf + off);
        uint16_t rl = nvm_get_u16(nvm->jbuf + off + 4);
        size_t rend = (size_t)ra + rl;
        size_t lo = ra > addr ? ra : addr;
        size_t hi = rend < end ? rend : end;
        off += NVM_REC_HDR;
        if (lo < hi)
            memcpy(out + (lo - addr), nvm->jbuf + off + (lo - ra), hi - lo);
        off += rl;
    }
    return 0;
}

int nvm_begin(struct nvm *nvm, unsigned flags)
{
    if (!nvm->mounted)
        return CARD_E_IO;
    if (nvm->in_txn)
        return CARD_E_INTERNAL;
    nvm->in_txn = true;
    nvm->txn_flags = (uint8_t)(flags & 0xFFu);
    nvm->jlen = 0;
    return 0;
}

int nvm_write(struct nvm *nvm, uint32_t addr, const void *buf, size_t len)
{
    if (!nvm->mounted || !nvm->in_txn)
        return CARD_E_INTERNAL;
    if (!nvm_range_ok(nvm, addr, len) || (buf == NULL && len > 0))
        return CARD_E_INTERNAL;
    if (len == 0)
        return 0;
    if (nvm_coalesce(nvm, addr, buf, len))
        return 0;
    if (len > CARD_NVM_JOURNAL_SIZE - NVM_REC_HDR ||
        nvm->jlen > CARD_NVM_JOURNAL_SIZE - NVM_REC_HDR - len)
        return CARD_E_TXN_FULL;

    uint8_t *rec = nvm->jbuf + nvm->jlen;
    nvm_put_u32(rec, addr);
    nvm_put_u16(rec + 4, (uint16_t)len);
    memcpy(rec + NVM_REC_HDR, buf, len);
    nvm->jlen += NVM_REC_HDR + len;
    return 0;
}

int nvm_commit(struct nvm *nvm)
{
    size_t len = nvm->jlen;
    bool secret = (nvm->txn_flags & NVM_TXN_SECRET) != 0;
    int rc = 0;

    if (!nvm->in_txn)
        return CARD_E_INTERNAL;
    nvm->in_txn = false;
    if (len > 0)
        rc = nvm_commit_steps(nvm, len, secret);
    memset(nvm->jbuf, 0, len);
    nvm->jlen = 0;
    nvm->txn_flags = 0;
    if (rc != 0)
        nvm->mounted = false; /* the journal state is unknown: only a remount may continue */
    return rc;
}

void nvm_abort(struct nvm *nvm)
{
    memset(nvm->jbuf, 0, nvm->jlen);
    nvm->jlen = 0;
    nvm->in_txn = false;
    nvm->txn_flags = 0;
}

int nvm_write_direct(struct nvm *nvm, uint32_t addr, const void *buf, size_t len)
{
    if (!nvm->mounted)
        return CARD_E_IO;
    if (!nvm_range_ok(nvm, addr, len) || (buf == NULL && len > 0))
        return CARD_E_INTERNAL;
    return nvm_dev_write(nvm, nvm->user_base + addr, buf, len);
}

int nvm_write_atomic(struct nvm *nvm, uint32_t addr, const void *buf, size_t len, unsigned flags)
{
    int rc = nvm_begin(nvm, flags);
    if (rc != 0)
        return rc;
    rc = nvm_write(nvm, addr, buf, len);
    if (rc != 0) {
        nvm_abort(nvm);
        return rc;
    }
    return nvm_commit(nvm);
}

#include "fs.h"

#include <string.h>

#include "card_err.h"
#include "crc32.h"
#include "ins.h"
#include "layout.h"

/* File record, LAYOUT_FS_ENTRY_SIZE bytes:
 *  0 state (0x00 free, FS_USED used)   1-2 FID   3 FDB   4 LCS   5 parent slot   6 SFI
 *  7-9 AC read/update/delete   10 name length   11-26 name   27-28 size   29-32 data address
 *  33-35 zero   36-39 CRC-32 of bytes 0..35.
 * A free slot is one whose state byte is not FS_USED; deleting writes that one byte. */
#define FS_USED 0xA5u
#define FS_CRC_OFF 36u

static uint32_t slot_addr(uint8_t slot)
{
    return LAYOUT_FS_TABLE_ADDR + (uint32_t)slot * LAYOUT_FS_ENTRY_SIZE;
}

static void encode(const struct fs_file *f, uint8_t b[LAYOUT_FS_ENTRY_SIZE])
{
    memset(b, 0, LAYOUT_FS_ENTRY_SIZE);
    b[0] = FS_USED;
    layout_put_u16(b + 1, f->fid);
    b[3] = f->fdb;
    b[4] = f->lcs;
    b[5] = f->parent;
    b[6] = f->sfi;
    memcpy(b + 7, f->ac, FS_AC_COUNT);
    b[10] = f->name_len;
    memcpy(b + 11, f->name, f->name_len);
    layout_put_u16(b + 27, f->size);
    layout_put_u32(b + 29, f->off);
    layout_put_u32(b + FS_CRC_OFF, card_crc32(b, FS_CRC_OFF));
}

int fs_load(struct nvm *nvm, uint8_t slot, struct fs_file *out)
{
    uint8_t b[LAYOUT_FS_ENTRY_SIZE];
    if (slot >= CARD_FS_MAX_FILES)
        return CARD_E_NOT_FOUND;
    int rc = nvm_read(nvm, slot_addr(slot), b, sizeof b);
    if (rc)
        return rc;
    if (b[0] != FS_USED)
        return CARD_E_NOT_FOUND;
    if (card_crc32(b, FS_CRC_OFF) != layout_get_u32(b + FS_CRC_OFF) || b[10] > FS_NAME_MAX)
        return CARD_E_CORRUPT;
    out->slot = slot;
    out->fid = layout_get_u16(b + 1);
    out->fdb = b[3];
    out->lcs = b[4];
    out->parent = b[5];
    out->sfi = b[6];
    memcpy(out->ac, b + 7, FS_AC_COUNT);
    out->name_len = b[10];
    memset(out->name, 0, sizeof out->name);
    memcpy(out->name, b + 11, out->name_len);
    out->size = layout_get_u16(b + 27);
    out->off = layout_get_u32(b + 29);
    return CARD_OK;
}

static int stage(struct nvm *nvm, const struct fs_file *f)
{
    uint8_t b[LAYOUT_FS_ENTRY_SIZE];
    encode(f, b);
    return nvm_write(nvm, slot_addr(f->slot), b, sizeof b);
}

int fs_format(struct nvm *nvm)
{
    struct fs_file mf = {
        .slot = FS_MF_SLOT, .fid = FID_MF, .fdb = FDB_DF, .lcs = LCS_OPERATIONAL,
        .parent = FS_NONE, .ac = { AC_ALWAYS, AC_ADMIN, AC_NEVER },
    };
    return stage(nvm, &mf);
}

/* Visits every used slot; stops at the first non-zero return of fn (passed through). */
typedef int (*fs_visit_fn)(const struct fs_file *f, void *arg);
static int fs_each(struct nvm *nvm, fs_visit_fn fn, void *arg)
{
    for (uint8_t s = 0; s < CARD_FS_MAX_FILES; s++) {
        struct fs_file f;
        int rc = fs_load(nvm, s, &f);
        if (rc == CARD_E_NOT_FOUND)
            continue;
        if (rc)
            return rc;
        rc = fn(&f, arg);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

struct match {
    uint8_t df;
    uint16_t fid;
    uint8_t sfi;
    const uint8_t *name;
    uint8_t name_len;
    struct fs_file *out;
};

static int match_child(const struct fs_file *f, void *arg)
{
    struct match *m = arg;
    if (f->parent != m->df || f->fid != m->fid)
        return 0;
    *m->out = *f;
    return 1;
}

static int match_sfi(const struct fs_file *f, void *arg)
{
    struct match *m = arg;
    if (f->parent != m->df || fs_is_df(f) || f->sfi != m->sfi)
        return 0;
    *m->out = *f;
    return 1;
}

static int match_name(const struct fs_file *f, void *arg)
{
    struct match *m = arg;
    if (!fs_is_df(f) || f->name_len != m->name_len || memcmp(f->name, m->name, m->name_len))
        return 0;
    *m->out = *f;
    return 1;
}

static int found_or_not(int rc)
{
    return rc == 1 ? CARD_OK : rc == 0 ? CARD_E_NOT_FOUND : rc;
}

int fs_find_child(struct nvm *nvm, uint8_t df, uint16_t fid, struct fs_file *out)
{
    struct match m = { .df = df, .fid = fid, .out = out };
    return found_or_not(fs_each(nvm, match_child, &m));
}

int fs_find_sfi(struct nvm *nvm, uint8_t df, uint8_t sfi, struct fs_file *out)
{
    struct match m = { .df = df, .sfi = sfi, .out = out };
    return found_or_not(fs_each(nvm, match_sfi, &m));
}

int fs_find_name(struct nvm *nvm, const uint8_t *name, uint8_t len, struct fs_file *out)
{
    struct match m = { .name = name, .name_len = len, .out = out };
    return found_or_not(fs_each(nvm, match_name, &m));
}

int fs_depth(struct nvm *nvm, uint8_t slot)
{
    int depth = 0;
    while (slot != FS_MF_SLOT) {
        struct fs_file f;
        int rc = fs_load(nvm, slot, &f);
        if (rc)
            return rc == CARD_E_NOT_FOUND ? CARD_E_CORRUPT : rc;
        slot = f.parent;
        if (++depth > CARD_FS_MAX_DEPTH + 1)
            return CARD_E_CORRUPT; /* a cycle or an impossibly deep tree */
    }
    return depth;
}

static uint32_t heap_end(const struct nvm *nvm)
{
    return nvm->user_size;
}

/* Data extents of all EFs, for allocation and checks. */
struct extents {
    uint8_t n;
    uint32_t start[CARD_FS_MAX_FILES];
    uint32_t end[CARD_FS_MAX_FILES];
};

static int collect_extent(const struct fs_file *f, void *arg)
{
    struct extents *e = arg;
    if (fs_is_df(f) || f->size == 0)
        return 0;
    e->start[e->n] = f->off;
    e->end[e->n] = f->off + f->size;
    e->n++;
    return 0;
}

static void sort_extents(struct extents *e)
{
    for (uint8_t i = 1; i < e->n; i++) {
        for (uint8_t j = i; j > 0 && e->start[j - 1] > e->start[j]; j--) {
            uint32_t s = e->start[j], t = e->end[j];
            e->start[j] = e->start[j - 1];
            e->end[j] = e->end[j - 1];
            e->start[j - 1] = s;
            e->end[j - 1] = t;
        }
    }
}

static int load_extents(struct nvm *nvm, struct extents *e)
{
    e->n = 0;
    int rc = fs_each(nvm, collect_extent, e);
    if (rc)
        return rc;
    sort_extents(e);
    return CARD_OK;
}

/* First fit in the heap; returns the address or 0 when nothing fits (0 is never in the heap). */
static uint32_t heap_alloc(const struct nvm *nvm, const struct extents *e, uint32_t size)
{
    uint32_t at = LAYOUT_FS_HEAP_ADDR;
    for (uint8_t i = 0; i < e->n; i++) {
        if (e->start[i] >= at && e->start[i] - at >= size)
            return at;
        if (e->end[i] > at)
            at = e->end[i];
    }
    return heap_end(nvm) >= at && heap_end(nvm) - at >= size ? at : 0;
}

struct check_ctx {
    struct nvm *nvm;
    int rc;
};

static int check_one(const struct fs_file *f, void *arg)
{
    struct check_ctx *c = arg;
    bool is_mf = f->slot == FS_MF_SLOT;
    if (is_mf != (f->parent == FS_NONE) || (is_mf && (f->fid != FID_MF || !fs_is_df(f))))
        return CARD_E_CORRUPT;
    if (f->fdb != FDB_DF && f->fdb != FDB_WORKING_EF && f->fdb != FDB_INTERNAL_EF)
        return CARD_E_CORRUPT;
    if (!is_mf) {
        struct fs_file p;
        int rc = fs_load(c->nvm, f->parent, &p);
        if (rc || !fs_is_df(&p))
            return CARD_E_CORRUPT;
        rc = fs_depth(c->nvm, f->slot);
        if (rc < 0)
            return rc;
    }
    if (!fs_is_df(f) && f->size > 0) {
        if (f->size > FS_EF_MAX_SIZE || f->off < LAYOUT_FS_HEAP_ADDR ||
            f->off > heap_end(c->nvm) || heap_end(c->nvm) - f->off < f->size)
            return CARD_E_CORRUPT;
    }
    return 0;
}

int fs_check(struct nvm *nvm)
{
    struct fs_file mf;
    int rc = fs_load(nvm, FS_MF_SLOT, &mf);
    if (rc)
        return rc == CARD_E_NOT_FOUND ? CARD_E_CORRUPT : rc;
    struct check_ctx c = { .nvm = nvm, .rc = 0 };
    rc = fs_each(nvm, check_one, &c);
    if (rc)
        return rc;
    struct extents e;
    rc = load_extents(nvm, &e);
    if (rc)
        return rc;
    for (uint8_t i = 1; i < e.n; i++)
        if (e.start[i] < e.end[i - 1])
            return CARD_E_CORRUPT;
    return CARD_OK;
}

struct clash {
    const struct fs_file *nf;
    int rc;
};

static int find_clash(const struct fs_file *f, void *arg)
{
    struct clash *c = arg;
    const struct fs_file *nf = c->nf;
    if (f->parent == nf->parent && f->fid == nf->fid)
        return CARD_E_FILE_EXISTS;
    if (f->slot == nf->parent && f->fid == nf->fid)
        return CARD_E_FILE_EXISTS; /* same FID as the DF it is created in */
    if (nf->sfi && f->parent == nf->parent && !fs_is_df(f) && f->sfi == nf->sfi)
        return CARD_E_FILE_EXISTS;
    if (nf->name_len && fs_is_df(f) && f->name_len == nf->name_len &&
        memcmp(f->name, nf->name, nf->name_len) == 0)
        return CARD_E_NAME_EXISTS;
    return 0;
}

static uint8_t free_slot(struct nvm *nvm)
{
    for (uint8_t s = 1; s < CARD_FS_MAX_FILES; s++) {
        struct fs_file f;
        if (fs_load(nvm, s, &f) == CARD_E_NOT_FOUND)
            return s;
    }
    return FS_NONE;
}

static int zero_range(struct nvm *nvm, uint32_t addr, uint32_t len)
{
    static const uint8_t zeros[64];
    while (len) {
        uint32_t n = len < sizeof zeros ? len : (uint32_t)sizeof zeros;
        int rc = nvm_write_direct(nvm, addr, zeros, n);
        if (rc)
            return rc;
        addr += n;
        len -= n;
    }
    return CARD_OK;
}

int fs_create(struct nvm *nvm, struct fs_file *f)
{
    struct clash c = { .nf = f, .rc = 0 };
    int rc = fs_each(nvm, find_clash, &c);
    if (rc)
        return rc;
    uint8_t slot = free_slot(nvm);
    if (slot == FS_NONE)
        return CARD_E_NO_SPACE;
    f->slot = slot;
    f->off = 0;
    if (!fs_is_df(f) && f->size > 0) {
        struct extents e;
        rc = load_extents(nvm, &e);
        if (rc)
            return rc;
        f->off = heap_alloc(nvm, &e, f->size);
        if (!f->off)
            return CARD_E_NO_SPACE;
        /* The space is free, so no committed state refers to it yet: zero it first, then
         * commit the record that makes it a file. A cut in between leaves free space. */
        rc = zero_range(nvm, f->off, f->size);
        if (rc)
            return rc;
    }
    rc = nvm_begin(nvm, 0);
    if (rc)
        return rc;
    rc = stage(nvm, f);
    if (rc) {
        nvm_abort(nvm);
        return rc;
    }
    return nvm_commit(nvm);
}

/* Marks every slot under (and including) root in the open transaction; collects their data. */
static int stage_delete_tree(struct nvm *nvm, uint8_t root, struct extents *freed)
{
    /* Tree order is not slot order: repeat passes until no slot's ancestor chain reaches a
     * slot already marked. Marked slots are tracked here, not in NVM, until commit. */
    bool marked[CARD_FS_MAX_FILES] = { false };
    marked[root] = true;
    bool grew = true;
    while (grew) {
        grew = false;
        for (uint8_t s = 1; s < CARD_FS_MAX_FILES; s++) {
            struct fs_file f;
            int rc = fs_load(nvm, s, &f);
            if (rc == CARD_E_NOT_FOUND)
                continue;
            if (rc)
                return rc;
            if (!marked[s] && f.parent < CARD_FS_MAX_FILES && marked[f.parent]) {
                marked[s] = true;
                grew = true;
            }
        }
    }
    static const uint8_t free_state = 0x00;
    freed->n = 0;
    for (uint8_t s = 1; s < CARD_FS_MAX_FILES; s++) {
        if (!marked[s])
            continue;
        struct fs_file f;
        int rc = fs_load(nvm, s, &f);
        if (rc)
            return rc;
        if (!fs_is_df(&f) && f.size) {
            freed->start[freed->n] = f.off;
            freed->end[freed->n] = f.off + f.size;
            freed->n++;
        }
        rc = nvm_write(nvm, slot_addr(s), &free_state, 1);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

int fs_delete(struct nvm *nvm, uint8_t slot)
{
    if (slot == FS_MF_SLOT || slot >= CARD_FS_MAX_FILES)
        return CARD_E_INTERNAL;
    struct extents freed;
    int rc = nvm_begin(nvm, 0);
    if (rc)
        return rc;
    rc = stage_delete_tree(nvm, slot, &freed);
    if (rc) {
        nvm_abort(nvm);
        return rc;
    }
    rc = nvm_commit(nvm);
    if (rc)
        return rc;
    /* Wipe what the deleted files held (keys in internal EFs among them). After the commit
     * the space is free, so a cut during the wipe only leaves stale bytes in free space,
     * which fs_create zeroes before reuse. */
    for (uint8_t i = 0; i < freed.n; i++) {
        rc = zero_range(nvm, freed.start[i], freed.end[i] - freed.start[i]);
        if (rc)
            return rc;
    }
    return CARD_OK;
}

int fs_read(struct nvm *nvm, const struct fs_file *f, uint16_t off, void *buf, uint16_t len)
{
    if ((uint32_t)off + len > f->size)
        return CARD_E_INTERNAL;
    return nvm_read(nvm, f->off + off, buf, len);
}

int fs_update(struct nvm *nvm, const struct fs_file *f, uint16_t off, const void *buf,
              uint16_t len)
{
    if ((uint32_t)off + len > f->size)
        return CARD_E_INTERNAL;
    unsigned flags = f->fdb == FDB_INTERNAL_EF ? NVM_TXN_SECRET : 0;
    return nvm_write_atomic(nvm, f->off + off, buf, len, flags);
}

int fs_stage_update(struct nvm *nvm, const struct fs_file *f, uint16_t off, const void *buf,
                    uint16_t len)
{
    if ((uint32_t)off + len > f->size)
        return CARD_E_INTERNAL;
    return nvm_write(nvm, f->off + off, buf, len);
}

int fs_set_lcs(struct nvm *nvm, uint8_t slot, uint8_t lcs)
{
    struct fs_file f;
    int rc = fs_load(nvm, slot, &f);
    if (rc)
        return rc;
    f.lcs = lcs;
    rc = nvm_begin(nvm, 0);
    if (rc)
        return rc;
    rc = stage(nvm, &f);
    if (rc) {
        nvm_abort(nvm);
        return rc;
    }
    return nvm_commit(nvm);
}

int fs_usage(struct nvm *nvm, uint32_t *used, uint32_t *free_bytes)
{
    struct extents e;
    int rc = load_extents(nvm, &e);
    if (rc)
        return rc;
    uint32_t u = 0;
    for (uint8_t i = 0; i < e.n; i++)
        u += e.end[i] - e.start[i];
    uint32_t heap = heap_end(nvm) > LAYOUT_FS_HEAP_ADDR ? heap_end(nvm) - LAYOUT_FS_HEAP_ADDR : 0;
    *used = u;
    *free_bytes = heap - u;
    return CARD_OK;
}

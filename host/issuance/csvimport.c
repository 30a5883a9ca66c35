/* CSV import of issuance records (csvimport.h). libcsv does the RFC 4180 parsing; this module
 * feeds it one physical line at a time so that it knows the line where each record starts,
 * checks each record against its card type when libcsv hands it over, and inserts the good
 * ones inside one transaction that is committed only when the whole file was clean. It keeps
 * no more than one record in memory, plus the identities seen so far (to name the line of a
 * duplicate) and a few card types. Field and record buffers, which hold secret items, are
 * wiped after each record. */
#include "csvimport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <mbedtls/platform_util.h>

#define TYPE_CACHE 8u      /* card types kept loaded */
#define DESIGN_CACHE 8u    /* design names known to exist or not */
#define SHOW_MAX 40u       /* characters of a name or identity echoed in a message */
#define ID_BLOCK 65536u    /* identities are stored in blocks of this size */
#define ID_SET_MIN 1024u
#define PARSE_BLOCK 4096u  /* libcsv's field buffer: large enough that a valid field never
                              makes it grow (a grown buffer leaves the old one unwiped) */

static const char BOM[3] = { '\xEF', '\xBB', '\xBF' };

/* ---- identities seen in the file -------------------------------------------------------- */

struct id_block {
    struct id_block *next;
    size_t used;
    char data[ID_BLOCK];
};

struct id_slot {
    const char *id; /* NULL: free */
    unsigned long line;
};

struct id_set {
    struct id_slot *slots;
    size_t cap, n; /* cap a power of two, at most half full */
    struct id_block *blocks;
};

static size_t id_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return (size_t)(h ^ (h >> 32));
}

static void id_place(struct id_slot *slots, size_t cap, struct id_slot e)
{
    size_t i = id_hash(e.id) & (cap - 1);
    while (slots[i].id != NULL)
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

static int id_set_grow(struct id_set *s)
{
    size_t cap = s->cap == 0 ? ID_SET_MIN : s->cap * 2;
    struct id_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id != NULL)
            id_place(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* A stored copy of id (len bytes, len < ID_BLOCK), or NULL when out of memory. */
static const char *id_copy(struct id_set *s, const char *id, size_t len)
{
    struct id_block *b = s->blocks;
    if (b == NULL || ID_BLOCK - b->used < len + 1) {
        b = malloc(sizeof *b);
        if (b == NULL)
            return NULL;
        b->next = s->blocks;
        b->used = 0;
        s->blocks = b;
    }
    char *copy = b->data + b->used;
    memcpy(copy, id, len);
    copy[len] = '\0';
    b->used += len + 1;
    return copy;
}

/* Looks id up: *seen is the line where it appeared before, or 0 when it is new (it is then
 * added with line). Returns 0, or -1 when out of memory. */
static int id_set_add(struct id_set *s, const char *id, size_t len, unsigned long line,
                      unsigned long *seen)
{
    if ((s->n + 1) * 2 > s->cap && id_set_grow(s) != 0)
        return -1;
    size_t i = id_hash(id) & (s->cap - 1);
    for (; s->slots[i].id != NULL; i = (i + 1) & (s->cap - 1))
        if (strcmp(s->slots[i].id, id) == 0) {
            *seen = s->slots[i].line;
            return 0;
        }
    const char *copy = id_copy(s, id, len);
    if (copy == NULL)
        return -1;
    s->slots[i].id = copy;
    s->slots[i].line = line;
    s->n++;
    *seen = 0;
    return 0;
}

static void id_set_free(struct id_set *s)
{
    while (s->blocks != NULL) {
        struct id_block *next = s->blocks->next;
        free(s->blocks);
        s->blocks = next;
    }
    free(s->slots);
    memset(s, 0, sizeof *s);
}

/* ---- import state ------------------------------------------------------------------------ */

/* One field of the current record: its length, and its first CT_ITEM_MAX bytes (no valid
 * value is longer), NUL-terminated. */
struct field {
    size_t len;
    char v[CT_ITEM_MAX + 1];
};

enum col_role { COL_ITEM, COL_IDENTITY, COL_TYPE, COL_DESIGN };

struct column {
    char name[CT_NAME_MAX + 1];
    enum col_role role;
};

/* A card type as loaded, with its items mapped to the file's columns. t NULL: no such type. */
struct type_entry {
    bool used;
    char name[CT_NAME_MAX + 1];
    struct ct_type *t;
    int *col_item;                /* per column: the index of its item in t, or -1 */
    int item_col[CT_MAX_ITEMS];   /* per item of t: its column, or -1 */
};

struct design_entry {
    bool used;
    char name[CT_NAME_MAX + 1];
    bool exists;
};

struct imp {
    struct idb *db;
    const char *source;
    struct csvimport_report *rep;
    char *err;
    size_t errlen;
    bool in_tx;
    struct csv_parser parser;
    bool parser_ok;
    /* where the parser is */
    bool started;            /* bytes were fed (the BOM is looked for before) */
    unsigned long line;      /* physical line of the next byte fed */
    bool prev_cr;            /* the last byte fed was a CR (a following LF ends no line) */
    bool between;            /* between records: the next byte that is not CR/LF starts one */
    unsigned long rec_line;  /* line where the current record starts */
    /* the current record */
    struct field *fields;    /* CSVIMPORT_MAX_COLUMNS */
    size_t nfields;          /* fields seen, may exceed CSVIMPORT_MAX_COLUMNS */
    struct idb_record *rec;
    /* the header */
    bool have_header;
    unsigned long header_line;
    struct column *cols;
    size_t ncols;
    int col_identity, col_type, col_design;
    /* caches */
    struct type_entry types[TYPE_CACHE];
    unsigned next_type;
    struct design_entry designs[DESIGN_CACHE];
    unsigned next_design;
    struct cardface_design *design_buf;
    struct id_set ids;
    bool stop;               /* a parse error or a bad header: no more records */
    bool fatal;              /* reading or the database failed: err says why */
};

static void fatal(struct imp *im, const char *fmt, ...)
{
    if (im->fatal)
        return;
    im->fatal = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->err, im->errlen, fmt, ap);
    va_end(ap);
}

/* Counts a problem at line, and keeps its message while there is room. */
static void report(struct imp *im, unsigned long line, const char *fmt, ...)
{
    struct csvimport_report *rep = im->rep;
    rep->errors++;
    if (rep->nmessages >= CSVIMPORT_MESSAGES)
        return;
    char *m = rep->messages[rep->nmessages++];
    int n = snprintf(m, CSVIMPORT_MESSAGE_MAX, "%s:%lu: ", im->source, line);
    if (n < 0 || (size_t)n >= CSVIMPORT_MESSAGE_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m + n, CSVIMPORT_MESSAGE_MAX - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A name or identity from the file as a message may show it: at most SHOW_MAX characters,
 * bytes outside printable ASCII as '?'. Never used for item values. */
static const char *show(const struct field *f, char buf[SHOW_MAX + 4])
{
    size_t n = f->len < SHOW_MAX ? f->len : SHOW_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f->v[i];
        buf[i] = c >= 0x20 && c < 0x7F && c != '"' ? (char)c : '?';
    }
    if (f->len > SHOW_MAX)
        memcpy(buf + n, "...", 4);
    else
        buf[n] = '\0';
    return buf;
}

/* Printable ASCII without spaces. */
static bool graphic(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7E)
            return false;
    return true;
}

static void wipe_fields(struct imp *im)
{
    size_t n = im->nfields < CSVIMPORT_MAX_COLUMNS ? im->nfields : CSVIMPORT_MAX_COLUMNS;
    for (size_t i = 0; i < n; i++) {
        struct field *f = &im->fields[i];
        size_t used = f->len < CT_ITEM_MAX ? f->len : CT_ITEM_MAX;
        mbedtls_platform_zeroize(f->v, used + 1);
        f->len = 0;
    }
    im->nfields = 0;
}

static void wipe_items(struct idb_record *r)
{
    mbedtls_platform_zeroize(r->items, r->nitems * sizeof r->items[0]);
    r->nitems = 0;
}

/* ---- the header ---------------------------------------------------------------------------- */

static int column_index(const struct imp *im, const char *name)
{
    for (size_t j = 0; j < im->ncols; j++)
        if (strcmp(im->cols[j].name, name) == 0)
            return (int)j;
    return -1;
}

/* Takes column j's name from the header field; false (reported) when it is not a name. */
static bool take_column(struct imp *im, size_t j)
{
    const struct field *f = &im->fields[j];
    unsigned long line = im->header_line;
    char shown[SHOW_MAX + 4];
    if (f->len == 0) {
        report(im, line, "column %zu has no name", j + 1);
        return false;
    }
    if (f->len > CT_NAME_MAX || !graphic(f->v, f->len)) {
        report(im, line, "column %zu: \"%s\" is not a name (1 to %u printable characters, no "
               "spaces)", j + 1, show(f, shown), CT_NAME_MAX);
        return false;
    }
    if (column_index(im, f->v) >= 0) {
        report(im, line, "column \"%s\" appears twice", f->v);
        return false;
    }
    struct column *c = &im->cols[im->ncols++];
    memcpy(c->name, f->v, f->len + 1);
    c->role = strcmp(c->name, "identity") == 0    ? COL_IDENTITY
              : strcmp(c->name, "card_type") == 0 ? COL_TYPE
              : strcmp(c->name, "design") == 0    ? COL_DESIGN
                                                  : COL_ITEM;
    return true;
}

static void take_header(struct imp *im)
{
    im->have_header = true;
    im->header_line = im->rec_line;
    if (im->nfields > CSVIMPORT_MAX_COLUMNS) {
        report(im, im->header_line, "%zu columns, at most %u allowed", im->nfields,
               CSVIMPORT_MAX_COLUMNS);
        im->stop = true;
        return;
    }
    im->cols = calloc(im->nfields, sizeof *im->cols);
    if (im->cols == NULL) {
        fatal(im, "out of memory");
        return;
    }
    bool ok = true;
    for (size_t j = 0; j < im->nfields; j++)
        ok = take_column(im, j) && ok;
    im->col_identity = column_index(im, "identity");
    im->col_type = column_index(im, "card_type");
    im->col_design = column_index(im, "design");
    if (im->col_identity < 0 || im->col_type < 0) {
        report(im, im->header_line, "the header has no column \"%s\" (the first line names "
               "the columns)", im->col_identity < 0 ? "identity" : "card_type");
        ok = false;
    }
    if (!ok)
        im->stop = true;
}

/* ---- card types and designs ----------------------------------------------------------------- */

static void type_entry_clear(struct type_entry *e)
{
    free(e->t);
    free(e->col_item);
    memset(e, 0, sizeof *e);
}

static int type_entry_map(const struct imp *im, struct type_entry *e)
{
    e->col_item = malloc(im->ncols * sizeof *e->col_item);
    if (e->col_item == NULL)
        return -1;
    for (size_t k = 0; k < CT_MAX_ITEMS; k++)
        e->item_col[k] = -1;
    for (size_t j = 0; j < im->ncols; j++) {
        e->col_item[j] = -1;
        const struct ct_item *it = im->cols[j].role == COL_ITEM
                                       ? ct_find_item(e->t, im->cols[j].name)
                                       : NULL;
        if (it != NULL) {
            e->col_item[j] = (int)(it - e->t->items);
            e->item_col[e->col_item[j]] = (int)j;
        }
    }
    return 0;
}

/* Loads type name into a cache entry (t stays NULL when there is no such type). */
static struct type_entry *type_load(struct imp *im, const char *name)
{
    struct type_entry *e = &im->types[im->next_type++ % TYPE_CACHE];
    type_entry_clear(e);
    e->t = malloc(sizeof *e->t);
    if (e->t == NULL) {
        fatal(im, "out of memory");
        return NULL;
    }
    char msg[256];
    int rc = idb_type_get(im->db, name, e->t, msg, sizeof msg);
    if (rc == IDB_E_NOTFOUND) {
        free(e->t);
        e->t = NULL;
    } else if (rc != IDB_OK) {
        fatal(im, "%s", msg);
        type_entry_clear(e);
        return NULL;
    } else if (type_entry_map(im, e) != 0) {
        fatal(im, "out of memory");
        type_entry_clear(e);
        return NULL;
    }
    e->used = true;
    memcpy(e->name, name, strlen(name) + 1);
    return e;
}

/* The card type of the record's card_type field, or NULL (reported, or fatal). */
static const struct type_entry *row_type(struct imp *im, unsigned long line)
{
    const struct field *f = &im->fields[im->col_type];
    char shown[SHOW_MAX + 4];
    if (f->len == 0) {
        report(im, line, "card_type: empty");
        return NULL;
    }
    const struct type_entry *e = NULL;
    if (f->len <= CT_NAME_MAX && strlen(f->v) == f->len) {
        for (size_t i = 0; i < TYPE_CACHE && e == NULL; i++)
            if (im->types[i].used && strcmp(im->types[i].name, f->v) == 0)
                e = &im->types[i];
        if (e == NULL)
            e = type_load(im, f->v);
        if (e == NULL)
            return NULL;
    }
    if (e == NULL || e->t == NULL) {
        report(im, line, "card type \"%s\" does not exist", show(f, shown));
        return NULL;
    }
    return e;
}

/* Checks the design field; returns the design ("" when none is given), or NULL. */
static const char *row_design(struct imp *im, unsigned long line)
{
    if (im->col_design < 0 || im->fields[im->col_design].len == 0)
        return "";
    const struct field *f = &im->fields[im->col_design];
    struct design_entry *e = NULL;
    char shown[SHOW_MAX + 4];
    if (f->len <= CT_NAME_MAX && strlen(f->v) == f->len) {
        for (size_t i = 0; i < DESIGN_CACHE && e == NULL; i++)
            if (im->designs[i].used && strcmp(im->designs[i].name, f->v) == 0)
                e = &im->designs[i];
        if (e == NULL) {
            char msg[256];
            int rc = idb_design_get(im->db, f->v, im->design_buf, msg, sizeof msg);
            if (rc != IDB_OK && rc != IDB_E_NOTFOUND) {
                fatal(im, "%s", msg);
                return NULL;
            }
            e = &im->designs[im->next_design++ % DESIGN_CACHE];
            e->used = true;
            e->exists = rc == IDB_OK;
            memcpy(e->name, f->v, f->len + 1);
        }
    }
    if (e == NULL || !e->exists) {
        report(im, line, "design \"%s\" does not exist", show(f, shown));
        return NULL;
    }
    return f->v;
}

/* ---- records -------------------------------------------------------------------------------- */

static bool row_identity(struct imp *im, unsigned long line)
{
    const struct field *f = &im->fields[im->col_identity];
    if (f->len == 0) {
        report(im, line, "identity: empty");
        return false;
    }
    if (f->len > IDB_IDENTITY_MAX) {
        report(im, line, "identity: %zu characters, at most %u allowed", f->len,
               IDB_IDENTITY_MAX);
        return false;
    }
    for (size_t i = 0; i < f->len; i++)
        if (f->v[i] < 0x21 || f->v[i] > 0x7E) {
            report(im, line, "identity: character %zu is a space or not printable ASCII", i + 1);
            return false;
        }
    return true;
}

/* Checks one item's field and, when good, adds it to the record. */
static void row_item(struct imp *im, unsigned long line, const struct ct_item *it,
                     const struct field *f)
{
    if (f->len == 0) {
        if (it->required)
            report(im, line, "%s: empty, the item is required", it->name);
        return;
    }
    if (f->len > CT_ITEM_MAX) {
        report(im, line, "%s: %zu characters, at most %u allowed", it->name, f->len,
               it->max_len);
        return;
    }
    char msg[CSVIMPORT_MESSAGE_MAX];
    if (ct_check_value(it, f->v, f->len, msg, sizeof msg) != 0) {
        report(im, line, "%s", msg);
        return;
    }
    struct idb_item *out = &im->rec->items[im->rec->nitems++];
    memcpy(out->name, it->name, sizeof out->name);
    memcpy(out->value, f->v, f->len + 1);
}

static void row_items(struct imp *im, unsigned long line, const struct type_entry *e)
{
    const struct ct_type *t = e->t;
    for (size_t k = 0; k < t->nitems && k < CT_MAX_ITEMS; k++) {
        const struct ct_item *it = &t->items[k];
        if (e->item_col[k] >= 0)
            row_item(im, line, it, &im->fields[e->item_col[k]]);
        else if (it->required)
            report(im, line, "%s: required, and the file has no column \"%s\"", it->name,
                   it->name);
    }
    for (size_t j = 0; j < im->ncols; j++)
        if (im->cols[j].role == COL_ITEM && e->col_item[j] < 0 && im->fields[j].len > 0)
            report(im, line, "column \"%s\" is not an item of card type \"%s\"",
                   im->cols[j].name, t->name);
}

/* A record with a good identity: is it new to the file? */
static bool row_unique(struct imp *im, unsigned long line)
{
    const struct field *f = &im->fields[im->col_identity];
    unsigned long seen;
    if (id_set_add(&im->ids, f->v, f->len, line, &seen) != 0) {
        fatal(im, "out of memory");
        return false;
    }
    if (seen != 0) {
        report(im, line, "identity \"%s\" appears already on line %lu", f->v, seen);
        return false;
    }
    return true;
}

/* A bad record whose identity is good: say so too when the issuance file has it. */
static void row_known(struct imp *im, unsigned long line)
{
    const char *id = im->fields[im->col_identity].v;
    char msg[256];
    wipe_items(im->rec);
    int rc = idb_record_by_identity(im->db, id, im->rec, msg, sizeof msg);
    idb_record_wipe(im->rec);
    if (rc == IDB_OK)
        report(im, line, "identity \"%s\" exists already in the issuance file", id);
    else if (rc != IDB_E_NOTFOUND)
        fatal(im, "%s", msg);
}

static void row_insert(struct imp *im, unsigned long line, const struct ct_type *t,
                       const char *design)
{
    struct idb_record *r = im->rec;
    const struct field *id = &im->fields[im->col_identity];
    memcpy(r->identity, id->v, id->len + 1);
    memcpy(r->card_type, t->name, sizeof r->card_type);
    size_t dlen = strnlen(design, CT_NAME_MAX); /* row_design allows no longer one */
    memcpy(r->design, design, dlen);
    r->design[dlen] = '\0';
    char msg[256];
    int rc = idb_record_insert(im->db, r, msg, sizeof msg);
    if (rc == IDB_E_CONFLICT)
        report(im, line, "identity \"%s\" exists already in the issuance file", r->identity);
    else if (rc == IDB_E_DB)
        fatal(im, "%s:%lu: %s", im->source, line, msg);
    else if (rc != IDB_OK)
        report(im, line, "%s", msg); /* idb's messages show no item value */
}

static void take_row(struct imp *im)
{
    unsigned long line = im->rec_line, before = im->rep->errors;
    im->rep->rows++;
    if (im->nfields != im->ncols) {
        report(im, line, "%zu field%s, the header has %zu", im->nfields,
               im->nfields == 1 ? "" : "s", im->ncols);
        return;
    }
    bool id_ok = row_identity(im, line);
    const struct type_entry *e = row_type(im, line);
    const char *design = im->fatal ? NULL : row_design(im, line);
    if (e != NULL && !im->fatal)
        row_items(im, line, e);
    bool fresh = id_ok && !im->fatal && row_unique(im, line);
    if (im->fatal) {
        wipe_items(im->rec);
        return;
    }
    if (im->rep->errors == before)
        row_insert(im, line, e->t, design);
    else if (fresh)
        row_known(im, line);
    wipe_items(im->rec);
}

/* ---- parsing -------------------------------------------------------------------------------- */

static void on_field(void *data, size_t len, void *ctx)
{
    struct imp *im = ctx;
    size_t i = im->nfields++;
    if (im->stop || im->fatal || i >= CSVIMPORT_MAX_COLUMNS)
        return;
    struct field *f = &im->fields[i];
    size_t n = len < CT_ITEM_MAX ? len : CT_ITEM_MAX;
    f->len = len;
    if (n > 0)
        memcpy(f->v, data, n);
    f->v[n] = '\0';
}

static void on_record(int c, void *ctx)
{
    (void)c;
    struct imp *im = ctx;
    if (!im->stop && !im->fatal) {
        if (!im->have_header)
            take_header(im);
        else
            take_row(im);
    }
    wipe_fields(im);
    im->between = true;
}

/* Bytes up to and including the first CR or LF, or all. */
static size_t segment_len(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n')
            return i + 1;
    return len;
}

static void parse_error(struct imp *im)
{
    int e = csv_error(&im->parser);
    if (e != CSV_EPARSE) {
        fatal(im, "%s:%lu: %s", im->source, im->line, csv_strerror(e));
        return;
    }
    char at[48] = "";
    if (im->line != im->rec_line)
        snprintf(at, sizeof at, " (on line %lu)", im->line);
    report(im, im->rec_line, "malformed quotes%s: a quote inside an unquoted field, or a "
           "character after a closing quote", at);
    im->stop = true;
}

/* Counts the line ends of a segment (a CR LF pair is one). */
static void advance_line(struct imp *im, const char *seg, size_t n)
{
    char last = seg[n - 1];
    if (last == '\r' || (last == '\n' && !(n == 1 && im->prev_cr)))
        im->line++;
    im->prev_cr = last == '\r';
}

static void feed(struct imp *im, const char *buf, size_t len)
{
    if (!im->started && len > 0) {
        im->started = true;
        if (len >= sizeof BOM && memcmp(buf, BOM, sizeof BOM) == 0) {
            buf += sizeof BOM;
            len -= sizeof BOM;
        }
    }
    while (len > 0 && !im->stop && !im->fatal) {
        size_t n = segment_len(buf, len);
        if (im->between && buf[0] != '\r' && buf[0] != '\n') {
            im->between = false;
            im->rec_line = im->line;
        }
        if (csv_parse(&im->parser, buf, n, on_field, on_record, im) != n) {
            parse_error(im);
            return;
        }
        if (csv_get_buffer_size(&im->parser) > CSVIMPORT_FIELD_MAX) {
            report(im, im->rec_line, "a field longer than %u bytes (a quote not closed?)",
                   CSVIMPORT_FIELD_MAX);
            im->stop = true;
            return;
        }
        advance_line(im, buf, n);
        buf += n;
        len -= n;
    }
}

/* The end of the input: the last record, and the checks of the file as a whole. */
static void finish(struct imp *im)
{
    if (im->stop || im->fatal)
        return;
    if (csv_fini(&im->parser, on_field, on_record, im) != 0) {
        if (csv_error(&im->parser) == CSV_EPARSE)
            report(im, im->rec_line, "a quoted field is not closed before the end of the file");
        else
            fatal(im, "%s: %s", im->source, csv_strerror(csv_error(&im->parser)));
        return;
    }
    if (im->fatal || im->stop)
        return;
    if (!im->have_header)
        report(im, 1, "empty file: the first line must name the columns");
    else if (im->rep->rows == 0)
        report(im, im->header_line, "no records after the header");
}

static int no_space(unsigned char c)
{
    (void)c;
    return 0; /* RFC 4180: spaces are part of a field */
}

static int imp_start(struct imp *im, struct idb *db, const char *source,
                     struct csvimport_report *rep, char *err, size_t errlen)
{
    memset(im, 0, sizeof *im);
    memset(rep, 0, sizeof *rep);
    im->db = db;
    im->source = source;
    im->rep = rep;
    im->err = err;
    im->errlen = errlen;
    im->line = 1;
    im->between = true;
    im->col_identity = im->col_type = im->col_design = -1;
    im->fields = calloc(CSVIMPORT_MAX_COLUMNS, sizeof *im->fields);
    im->rec = calloc(1, sizeof *im->rec);
    im->design_buf = calloc(1, sizeof *im->design_buf);
    if (im->fields == NULL || im->rec == NULL || im->design_buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (csv_init(&im->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    im->parser_ok = true;
    csv_set_space_func(&im->parser, no_space);
    csv_set_blk_size(&im->parser, PARSE_BLOCK);
    if (idb_begin(db, err, errlen) != IDB_OK)
        return -1;
    im->in_tx = true;
    return 0;
}

static void imp_free(struct imp *im)
{
    if (im->parser_ok) {
        if (im->parser.entry_buf != NULL)
            mbedtls_platform_zeroize(im->parser.entry_buf, im->parser.entry_size);
        csv_free(&im->parser);
    }
    if (im->fields != NULL)
        mbedtls_platform_zeroize(im->fields, CSVIMPORT_MAX_COLUMNS * sizeof *im->fields);
    free(im->fields);
    if (im->rec != NULL)
        idb_record_wipe(im->rec);
    free(im->rec);
    free(im->design_buf);
    free(im->cols);
    for (size_t i = 0; i < TYPE_CACHE; i++)
        type_entry_clear(&im->types[i]);
    id_set_free(&im->ids);
}

/* Commits when the file was clean, else rolls back; frees the state. */
static int imp_end(struct imp *im)
{
    struct csvimport_report *rep = im->rep;
    int rc = -1;
    if (im->in_tx && !im->fatal && rep->errors == 0) {
        if (idb_commit(im->db, im->err, im->errlen) == IDB_OK) {
            im->in_tx = false;
            rep->imported = rep->rows;
            rc = 0;
        }
    } else if (!im->fatal && rep->errors > 0) {
        snprintf(im->err, im->errlen, "%s: %lu error%s, nothing imported (%lu row%s read)",
                 im->source, rep->errors, rep->errors == 1 ? "" : "s", rep->rows,
                 rep->rows == 1 ? "" : "s");
    }
    if (im->in_tx)
        idb_rollback(im->db);
    imp_free(im);
    return rc;
}

/* ---- entry points ----------------------------------------------------------------------- */

int csvimport_text(struct idb *db, const char *text, size_t len, const char *source,
                   struct csvimport_report *rep, char *err, size_t errlen)
{
    struct imp im;
    if (imp_start(&im, db, source, rep, err, errlen) != 0) {
        imp_free(&im);
        return -1;
    }
    feed(&im, text, len);
    finish(&im);
    return imp_end(&im);
}

int csvimport_file(struct idb *db, const char *path, struct csvimport_report *rep, char *err,
                   size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CSVIMPORT_CHUNK);
    struct imp im;
    if (buf == NULL || imp_start(&im, db, path, rep, err, errlen) != 0) {
        if (buf != NULL)
            imp_free(&im);
        else
            snprintf(err, errlen, "out of memory");
        free(buf);
        fclose(fp);
        return -1;
    }
    while (!im.stop && !im.fatal) {
        size_t n = fread(buf, 1, CSVIMPORT_CHUNK, fp);
        feed(&im, buf, n);
        if (n < CSVIMPORT_CHUNK) {
            if (ferror(fp))
                fatal(&im, "%s: %s", path, strerror(errno));
            break;
        }
    }
    mbedtls_platform_zeroize(buf, CSVIMPORT_CHUNK);
    free(buf);
    fclose(fp);
    finish(&im);
    return imp_end(&im);
}

void csvimport_report_print(const struct csvimport_report *rep, FILE *out)
{
    for (unsigned i = 0; i < rep->nmessages && i < CSVIMPORT_MESSAGES; i++)
        fprintf(out, "%s\n", rep->messages[i]);
    if (rep->errors > rep->nmessages)
        fprintf(out, "... and %lu more error%s\n", rep->errors - rep->nmessages,
                rep->errors - rep->nmessages == 1 ? "" : "s");
}

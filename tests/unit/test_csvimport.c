/* The CSV import of issuance records (host/issuance/csvimport.c, docs/issuance.md "Importing
 * records (CSV)"), against a fresh issuance file per test whose card types are built here in C
 * (no dependency on the example type file): T1 with the items holder (text 40, required),
 * member (digits 16, required), expiry (date, required), password (secret 16, required) and
 * share1 (hex 64, optional); T2 with holder and pin (secret 8, required). Every file starts
 * with one record, EXIST1, already imported.
 *   - good files import every row, and the items read back equal: plain, quoted fields with
 *     commas and quotes, CRLF line ends, a byte order mark, rows of two card types sharing
 *     columns, a large file read over many chunks;
 *   - every kind of bad input fails with the line where its record starts (line breaks inside
 *     quoted fields counted), and the issuance file keeps the records it had: nothing is
 *     half-imported, and all bad rows of a file are reported in one run;
 *   - a secret or hex value never appears in a message, even when it is the bad one;
 *   - 25 bad rows give 20 messages and "... and 5 more errors".
 * Everything on both back ends of the issuance file (testdb.h). Run from the repo root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cardtype.h"
#include "csvimport.h"
#include "idb.h"
#include "testdb.h"

#define HEADER "identity,card_type,design,holder,member,expiry,password,share1\n"
#define SHARE "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct g {
    struct testdb t;
    char csv_path[128];
    struct idb *db;
    struct csvimport_report rep;
    char err[512];
};

/* ---- fixture: an issuance file with two card types ------------------------------------ */

static void add_item(struct ct_type *t, const char *name, enum ct_kind kind, unsigned max_len,
                     bool required)
{
    struct ct_item *it = &t->items[t->nitems++];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->kind = kind;
    it->max_len = max_len;
    it->required = required;
}

/* One personalization step per role: PUT DATA of the holder. */
static void add_script(struct ct_type *t)
{
    for (int role = 0; role < CT_ROLES; role++) {
        struct ct_step *s = &t->script[role][0];
        snprintf(s->label, sizeof s->label, "holder name");
        memcpy(s->header, "\x00\xDA\x01\x01", 4);
        snprintf(s->item, sizeof s->item, "holder");
        s->expect_sw = 0x9000;
        t->nsteps[role] = 1;
    }
}

static void add_type(struct ct_file *f, const char *name, uint8_t value)
{
    struct ct_type *t = &f->types[f->ntypes++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->description, sizeof t->description, "test type %s", name);
    snprintf(t->interface, sizeof t->interface, "contact");
    snprintf(t->design, sizeof t->design, "D1");
    snprintf(t->type_readout, sizeof t->type_readout, "TR1");
    t->type_value[0] = 'T';
    t->type_value[1] = value;
    t->type_value_len = 2;
    snprintf(t->identity_readout, sizeof t->identity_readout, "IR1");
    add_script(t);
}

static void add_design(struct ct_file *f, const char *name, uint32_t background)
{
    struct cardface_design *d = &f->designs[f->ndesigns++];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->title, sizeof d->title, "Design %s", name);
    d->background = background;
    d->accent = 0x336699;
    d->text = 0x000000;
}

static struct ct_file *make_types(void)
{
    struct ct_file *f = calloc(1, sizeof *f);
    assert_non_null(f);
    add_design(f, "D1", 0xFFFFFF);
    add_design(f, "D2", 0xEEEEEE);

    struct ct_type_readout *tr = &f->type_readouts[f->ntype_readouts++];
    snprintf(tr->name, sizeof tr->name, "TR1");
    memcpy(tr->cmd.apdu, "\x00\xCA\xDF\x02\x00", 5);
    tr->cmd.len = 5;
    tr->cmd.expect_sw = 0x9000;
    tr->priority = 1;

    struct ct_identity_readout *ir = &f->identity_readouts[f->nidentity_readouts++];
    snprintf(ir->name, sizeof ir->name, "IR1");
    ir->encoding = CT_ENC_ASCII;
    memcpy(ir->steps[0].apdu, "\x00\xB0\x81\x00\x00", 5);
    ir->steps[0].len = 5;
    ir->steps[0].expect_sw = 0x9000;
    ir->nsteps = 1;

    add_type(f, "T1", '1');
    struct ct_type *t1 = &f->types[0];
    add_item(t1, "holder", CT_TEXT, 40, true);
    add_item(t1, "member", CT_DIGITS, 16, true);
    add_item(t1, "expiry", CT_DATE, 10, true);
    add_item(t1, "password", CT_SECRET, 16, true);
    add_item(t1, "share1", CT_HEX, 64, false);

    add_type(f, "T2", '2');
    struct ct_type *t2 = &f->types[1];
    add_item(t2, "holder", CT_TEXT, 40, true);
    add_item(t2, "pin", CT_SECRET, 8, true);
    return f;
}

static int setup(void **state)
{
    struct g *g = calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(testdb_open("csvimport", NULL, &g->t, &g->db), 0);
    snprintf(g->csv_path, sizeof g->csv_path, "%s/records.csv", g->t.dir);
    struct ct_file *f = make_types();
    int rc = idb_types_store(g->db, f, g->err, sizeof g->err);
    free(f);
    if (rc != IDB_OK)
        print_error("%s\n", g->err);
    assert_int_equal(rc, IDB_OK);
    static const char first[] = HEADER "EXIST1,T1,,First Holder,1,2030-01-01,exist-pw,\n";
    assert_int_equal(csvimport_text(g->db, first, strlen(first), "first.csv", &g->rep, g->err,
                                     sizeof g->err), 0);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    struct g *g = *state;
    testdb_close(&g->t, g->db);
    free(g);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t count(struct g *g)
{
    uint64_t total = 0, issued = 0;
    assert_int_equal(idb_records_count(g->db, &total, &issued, g->err, sizeof g->err), IDB_OK);
    return total;
}

static void dump(const struct g *g)
{
    for (unsigned i = 0; i < g->rep.nmessages; i++)
        print_error("  %s\n", g->rep.messages[i]);
    print_error("  err: %s\n", g->err);
}

static int import(struct g *g, const char *text)
{
    return csvimport_text(g->db, text, strlen(text), "bad.csv", &g->rep, g->err, sizeof g->err);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Asserts that some message is "SOURCE:LINE: ..." and contains fragment. */
static void expect_message(const struct g *g, const char *source, unsigned long line,
                           const char *fragment)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s:%lu: ", source, line);
    for (unsigned i = 0; i < g->rep.nmessages; i++)
        if (strncmp(g->rep.messages[i], prefix, strlen(prefix)) == 0 &&
            strstr(g->rep.messages[i], fragment) != NULL)
            return;
    print_error("no message \"%s...%s\" among:\n", prefix, fragment);
    dump(g);
    fail();
}

/* Imports a bad text: -1, nothing imported, the issuance file unchanged, a message at line
 * naming fragment. */
static void expect_bad(struct g *g, const char *text, unsigned long line, const char *fragment)
{
    uint64_t before = count(g);
    assert_int_equal(import(g, text), -1);
    assert_int_equal(g->rep.imported, 0);
    assert_true(g->rep.errors >= 1);
    assert_true(g->rep.nmessages >= 1);
    expect_message(g, "bad.csv", line, fragment);
    assert_non_null(strstr(g->err, "nothing imported"));
    assert_int_equal(count(g), before);
}

static void expect_item(struct idb_record *r, const char *name, const char *value)
{
    const char *v = idb_record_item(r, name);
    if (value == NULL) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, value);
}

/* Reads identity back and checks its type, design and holder. */
static void expect_record(struct g *g, const char *identity, const char *type,
                          const char *design, const char *holder, struct idb_record *r)
{
    int rc = idb_record_by_identity(g->db, identity, r, g->err, sizeof g->err);
    if (rc != IDB_OK)
        print_error("%s\n", g->err);
    assert_int_equal(rc, IDB_OK);
    assert_string_equal(r->identity, identity);
    assert_string_equal(r->card_type, type);
    assert_string_equal(r->design, design);
    assert_false(r->issued);
    assert_int_equal(r->issue_count, 0);
    expect_item(r, "holder", holder);
}

/* ---- good files ------------------------------------------------------------------------- */

static void test_good_file(void **state)
{
    struct g *g = *state;
    static const char text[] =
        HEADER
        "A1,T1,,Jane Doe,1234567890123456,2030-12-31,pw-one-1,\n"
        "A2,T1,D2,Jürgen Groß,42,2028-02-29,p@ss:w0rd!," SHARE "\n"
        "A3,T1,D1,Ann,0,1999-01-01,abcd,00ff\n";
    write_file(g->csv_path, text, strlen(text));
    int rc = csvimport_file(g->db, g->csv_path, &g->rep, g->err, sizeof g->err);
    if (rc != 0)
        dump(g);
    assert_int_equal(rc, 0);
    assert_int_equal(g->rep.rows, 3);
    assert_int_equal(g->rep.imported, 3);
    assert_int_equal(g->rep.errors, 0);
    assert_int_equal(g->rep.nmessages, 0);
    assert_int_equal(count(g), 4);

    struct idb_record r;
    expect_record(g, "A1", "T1", "", "Jane Doe", &r);
    assert_int_equal(r.nitems, 4);
    expect_item(&r, "member", "1234567890123456");
    expect_item(&r, "expiry", "2030-12-31");
    expect_item(&r, "password", "pw-one-1");
    expect_item(&r, "share1", NULL);
    expect_record(g, "A2", "T1", "D2", "Jürgen Groß", &r);
    assert_int_equal(r.nitems, 5);
    expect_item(&r, "member", "42");
    expect_item(&r, "expiry", "2028-02-29");
    expect_item(&r, "password", "p@ss:w0rd!");
    expect_item(&r, "share1", SHARE);
    expect_record(g, "A3", "T1", "D1", "Ann", &r);
    expect_item(&r, "share1", "00ff");
    idb_record_wipe(&r);
}

static void test_quoted_fields(void **state)
{
    struct g *g = *state;
    static const char text[] =
        "\"identity\",card_type,holder,\"member\",expiry,password\n"
        "Q1,T1,\"Doe, John \"\"JD\"\"\",\"77\",2030-01-31,\"pass,word\"\n"
        "\"Q2\",\"T1\",\"\",\"\",2030-01-31,\"\"\"qq\"\"\"\n";
    /* Q2's holder and member are empty, quoted or not: both required. */
    expect_bad(g, text, 3, "holder: empty, the item is required");
    expect_message(g, "bad.csv", 3, "member: empty, the item is required");
    assert_int_equal(g->rep.errors, 2);

    static const char good[] =
        "\"identity\",card_type,holder,\"member\",expiry,password\n"
        "Q1,T1,\"Doe, John \"\"JD\"\"\",\"77\",2030-01-31,\"pass,word\"\n"
        "\"Q2\",\"T1\",\"x\",\"1\",2030-01-31,\"\"\"qq\"\"\"\n";
    assert_int_equal(import(g, good), 0);
    struct idb_record r;
    expect_record(g, "Q1", "T1", "", "Doe, John \"JD\"", &r);
    expect_item(&r, "member", "77");
    expect_item(&r, "password", "pass,word");
    expect_record(g, "Q2", "T1", "", "x", &r);
    expect_item(&r, "password", "\"qq\"");
    idb_record_wipe(&r);
}

static void test_quoted_newline(void **state)
{
    struct g *g = *state;
    /* A text item holds no control characters, so the line break inside the quoted holder
     * is refused, on the line where that record starts; the next record's line number
     * counts the break (and the one inside its own quoted field: line 6 starts "N3"). */
    static const char text[] =
        HEADER
        "N1,T1,,\"two\nlines\",1,2030-01-01,secret1,\n"
        "N2,T1,,\"a, \"\"b\"\"\nc\",1,2030-01-01,secret2,\n"
        "N3,T1,,Ok,x1,2030-01-01,secret3,\n";
    expect_bad(g, text, 2, "holder: not UTF-8 text without control characters");
    expect_message(g, "bad.csv", 4, "holder: not UTF-8 text without control characters");
    expect_message(g, "bad.csv", 6, "member: \"x1\" is not a decimal number");
    assert_int_equal(g->rep.errors, 3);
    assert_int_equal(g->rep.rows, 3);
}

static void test_crlf(void **state)
{
    struct g *g = *state;
    static const char text[] =
        "identity,card_type,holder,member,expiry,password\r\n"
        "C1,T1,Carl,11,2031-03-31,crlf-pass\r\n"
        "C2,T1,\"Two\",12,2031-04-30,\"crlf,pass\"\r\n"
        "\r\n"
        "C3,T1,Three,13,2031-05-31,abcd";
    assert_int_equal(import(g, text), 0);
    assert_int_equal(g->rep.imported, 3);
    struct idb_record r;
    expect_record(g, "C1", "T1", "", "Carl", &r);
    expect_item(&r, "password", "crlf-pass");
    expect_record(g, "C2", "T1", "", "Two", &r);
    expect_item(&r, "password", "crlf,pass");
    expect_record(g, "C3", "T1", "", "Three", &r);
    expect_item(&r, "password", "abcd");
    idb_record_wipe(&r);

    /* CR LF counts as one line end, a blank line as one */
    static const char bad[] =
        "identity,card_type,holder,member,expiry,password\r\n"
        "C4,T1,Four,14,2031-03-31,crlf-pass\r\n"
        "\r\n"
        "C5,T1,Five,15,2031-02-29,crlf-pass\r\n";
    expect_bad(g, bad, 4, "expiry: \"2031-02-29\" is not a date");
}

static void test_bom(void **state)
{
    struct g *g = *state;
    static const char text[] =
        "\xEF\xBB\xBF" "identity,card_type,holder,member,expiry,password\n"
        "B1,T1,Bom,1,2030-01-01,bom-pass\n";
    write_file(g->csv_path, text, strlen(text));
    assert_int_equal(csvimport_file(g->db, g->csv_path, &g->rep, g->err, sizeof g->err), 0);
    assert_int_equal(g->rep.imported, 1);
    struct idb_record r;
    expect_record(g, "B1", "T1", "", "Bom", &r);
    idb_record_wipe(&r);
}

static void test_two_types(void **state)
{
    struct g *g = *state;
    /* Rows of T1 leave pin empty, rows of T2 the items only T1 has. */
    static const char text[] =
        "identity,card_type,holder,member,expiry,password,pin\n"
        "M1,T1,One,1,2030-01-01,pass-one,\n"
        "M2,T2,Two,,,,12345678\n"
        "M3,T1,Three,3,2030-01-01,pass-three,\n"
        "M4,T2,Four,,,,8765\n";
    assert_int_equal(import(g, text), 0);
    assert_int_equal(g->rep.imported, 4);
    struct idb_record r;
    expect_record(g, "M2", "T2", "", "Two", &r);
    assert_int_equal(r.nitems, 2);
    expect_item(&r, "pin", "12345678");
    expect_record(g, "M3", "T1", "", "Three", &r);
    expect_item(&r, "pin", NULL);
    idb_record_wipe(&r);

    /* a value in a column that is not an item of the row's type */
    static const char bad[] =
        "identity,card_type,holder,member,expiry,password,pin\n"
        "M5,T1,Five,5,2030-01-01,pass-five,1234\n"
        "M6,T2,Six,6,,,12345678\n";
    expect_bad(g, bad, 2, "column \"pin\" is not an item of card type \"T1\"");
    expect_message(g, "bad.csv", 3, "column \"member\" is not an item of card type \"T2\"");
    assert_int_equal(g->rep.errors, 2);
    for (unsigned i = 0; i < g->rep.nmessages; i++)
        assert_null(strstr(g->rep.messages[i], "1234"));
}

static void test_unknown_column_empty(void **state)
{
    struct g *g = *state;
    static const char text[] =
        "identity,card_type,holder,member,expiry,password,note\n"
        "U1,T1,One,1,2030-01-01,pass-one,\n";
    assert_int_equal(import(g, text), 0);
    static const char bad[] =
        "identity,card_type,holder,member,expiry,password,note\n"
        "U2,T1,Two,2,2030-01-01,pass-two,\n"
        "U3,T1,Three,3,2030-01-01,pass-three,hello\n";
    expect_bad(g, bad, 3, "column \"note\" is not an item of card type \"T1\"");
}

/* A file of n rows over many chunks, with quoted fields and CRLF line ends; bad_row (0: none)
 * gets an impossible date. */
static char *big_text(unsigned n, unsigned bad_row, size_t *len)
{
    size_t cap = 128 + (size_t)n * 96;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t used = (size_t)snprintf(s, cap, "identity,card_type,holder,member,expiry,password\r\n");
    for (unsigned i = 1; i <= n; i++)
        used += (size_t)snprintf(s + used, cap - used,
                                 "ID%07u,T1,\"Holder %u, \"\"big\"\"\",%u,%s,pw%06u\r\n", i,
                                 i, i * 7u, i == bad_row ? "2029-13-01" : "2029-12-01", i);
    *len = used;
    return s;
}

static void test_large_file(void **state)
{
    struct g *g = *state;
    size_t len;
    char *text = big_text(20000, 0, &len);
    assert_true(len > 10 * CSVIMPORT_CHUNK);
    write_file(g->csv_path, text, len);
    int rc = csvimport_file(g->db, g->csv_path, &g->rep, g->err, sizeof g->err);
    if (rc != 0)
        dump(g);
    assert_int_equal(rc, 0);
    assert_int_equal(g->rep.imported, 20000);
    assert_int_equal(count(g), 20001);
    struct idb_record r;
    expect_record(g, "ID0012345", "T1", "", "Holder 12345, \"big\"", &r);
    expect_item(&r, "member", "86415");
    expect_item(&r, "password", "pw012345");
    idb_record_wipe(&r);
    free(text);

    /* one bad row near the end: the line is counted over all chunks, nothing is imported */
    text = big_text(20000, 19990, &len);
    for (size_t i = 0; i < len; i++)
        if (memcmp(text + i, "ID", 2) == 0)
            text[i] = 'J'; /* new identities */
    write_file(g->csv_path, text, len);
    free(text);
    assert_int_equal(csvimport_file(g->db, g->csv_path, &g->rep, g->err, sizeof g->err), -1);
    assert_int_equal(g->rep.rows, 20000);
    assert_int_equal(g->rep.errors, 1);
    expect_message(g, g->csv_path, 19991, "expiry: \"2029-13-01\" is not a date");
    assert_int_equal(count(g), 20001);
}

/* ---- bad input --------------------------------------------------------------------------- */

#define ROW_OK(id) id ",T1,,Holder,1,2030-01-01,pass-ok,\n"

static void test_bad_values(void **state)
{
    struct g *g = *state;
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK("V2") "V3,T1,,H,1,2025-02-30,pass-ok,\n", 4,
               "expiry: \"2025-02-30\" is not a date YYYY-MM-DD");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H,12a4,2030-01-01,pass-ok,\n", 3,
               "member: \"12a4\" is not a decimal number");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,12345678901234567890123456789012345678901,1,"
               "2030-01-01,pass-ok,\n", 3, "holder: 41 characters, at most 40 allowed");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H,12345678901234567,2030-01-01,pass-ok,\n", 3,
               "member: 17 characters, at most 16 allowed");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H,,2030-01-01,pass-ok,\n", 3,
               "member: empty, the item is required");
    expect_bad(g, "identity,card_type,holder,member,expiry\n"
               "V1,T1,H,1,2030-01-01\n", 2,
               "password: required, and the file has no column \"password\"");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T9,,H,1,2030-01-01,pass-ok,\n", 3,
               "card type \"T9\" does not exist");
    expect_bad(g, HEADER ROW_OK("V1") "V2,,,H,1,2030-01-01,pass-ok,\n", 3, "card_type: empty");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,D9,H,1,2030-01-01,pass-ok,\n", 3,
               "design \"D9\" does not exist");
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK("V2") "V3,T1,,H,1,2030-01-01,pass-ok,abc\n", 4,
               "share1: an odd number of hex digits");
}

static void test_bad_identity(void **state)
{
    struct g *g = *state;
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK("V2") ROW_OK("V1"), 4,
               "identity \"V1\" appears already on line 2");
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK("EXIST1"), 3,
               "identity \"EXIST1\" exists already in the issuance file");
    /* a bad row whose identity is in the file already is told both */
    expect_bad(g, HEADER ROW_OK("V1") "EXIST1,T1,,H,x,2030-01-01,pass-ok,\n", 3,
               "identity \"EXIST1\" exists already in the issuance file");
    expect_message(g, "bad.csv", 3, "member: \"x\" is not a decimal number");
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK("has space"), 3,
               "identity: character 4 is a space or not printable ASCII");
    expect_bad(g, HEADER ROW_OK("V1") ROW_OK(""), 3, "identity: empty");
    expect_bad(g, HEADER ROW_OK("V1")
               ROW_OK("12345678901234567890123456789012345678901234567890123456789012345"), 3,
               "identity: 65 characters, at most 64 allowed");
    /* 64 characters are fine */
    static const char longest[] =
        HEADER ROW_OK("1234567890123456789012345678901234567890123456789012345678901234");
    assert_int_equal(import(g, longest), 0);
}

static void test_bad_structure(void **state)
{
    struct g *g = *state;
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H,1,2030-01-01,pass-ok\n", 3,
               "7 fields, the header has 8");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H,1,2030-01-01,pass-ok,,\n", 3,
               "9 fields, the header has 8");
    /* the quote opened on line 3 is never closed: the rest of the file is its field */
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,\"H,1,2030-01-01,pass-ok,\n" ROW_OK("V3"), 3,
               "a quoted field is not closed before the end of the file");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,H\"x,1,2030-01-01,pass-ok,\n", 3,
               "malformed quotes");
    expect_bad(g, HEADER ROW_OK("V1") "V2,T1,,\"a\nb\"x,1,2030-01-01,pass-ok,\n", 3,
               "malformed quotes (on line 4)");
    expect_bad(g, "", 1, "empty file");
    expect_bad(g, "\n\n", 1, "empty file");
    expect_bad(g, "\xEF\xBB\xBF", 1, "empty file");
    expect_bad(g, HEADER, 1, "no records after the header");
    expect_bad(g, "identity,holder\nV1,H\n", 1, "the header has no column \"card_type\"");
    expect_bad(g, "card_type,holder\nT1,H\n", 1, "the header has no column \"identity\"");
    expect_bad(g, "identity,card_type,holder,holder\nV1,T1,H,H\n", 1,
               "column \"holder\" appears twice");
    expect_bad(g, "identity,card_type,,holder\nV1,T1,,H\n", 1, "column 3 has no name");
    expect_bad(g, "identity,card_type,hol der\nV1,T1,H\n", 1, "column 3: \"hol der\" is not");

    /* a file that cannot be read */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.csv", g->t.dir);
    assert_int_equal(csvimport_file(g->db, missing, &g->rep, g->err, sizeof g->err), -1);
    assert_non_null(strstr(g->err, "missing.csv"));
    assert_int_equal(g->rep.imported, 0);
}

static void test_open_transaction(void **state)
{
    struct g *g = *state;
    /* the import is its own transaction: a caller's open one is refused, and kept */
    assert_int_equal(idb_begin(g->db, g->err, sizeof g->err), IDB_OK);
    assert_int_equal(import(g, HEADER ROW_OK("T1")), -1);
    assert_int_equal(g->rep.imported, 0);
    assert_int_equal(g->rep.errors, 0);
    assert_true(strlen(g->err) > 0);
    idb_rollback(g->db);
    assert_int_equal(count(g), 1);
    assert_int_equal(import(g, HEADER ROW_OK("T1")), 0);
    assert_int_equal(count(g), 2);
}

static void test_all_rows_reported(void **state)
{
    struct g *g = *state;
    static const char text[] =
        HEADER
        ROW_OK("R1")
        "R2,T1,,H,1,2030-02-30,pass-ok,\n"
        ROW_OK("R3")
        "R4,T1,,H,1x,2030-01-01,pass-ok,\n"
        "R5,T9,,H,1,2030-01-01,pass-ok,\n"
        "R6,T1,,H,1,2030-01-01\n"
        ROW_OK("R7");
    expect_bad(g, text, 3, "expiry");
    expect_message(g, "bad.csv", 5, "member");
    expect_message(g, "bad.csv", 6, "card type \"T9\"");
    expect_message(g, "bad.csv", 7, "6 fields, the header has 8");
    assert_int_equal(g->rep.errors, 4);
    assert_int_equal(g->rep.rows, 7);
    assert_non_null(strstr(g->err, "4 errors"));
}

/* ---- secrets and the report -------------------------------------------------------------- */

static void expect_hidden(const struct g *g, const char *secret)
{
    for (unsigned i = 0; i < g->rep.nmessages; i++)
        assert_null(strstr(g->rep.messages[i], secret));
    assert_null(strstr(g->err, secret));
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    csvimport_report_print(&g->rep, out);
    assert_int_equal(fclose(out), 0);
    assert_null(strstr(buf, secret));
    free(buf);
}

static void test_secrets_hidden(void **state)
{
    struct g *g = *state;
    expect_bad(g, HEADER ROW_OK("S1") "S2,T1,,H,1,2030-01-01,TopSecretPassw0rd!,\n", 3,
               "password: 18 characters, at most 16 allowed");
    expect_hidden(g, "TopSecretPassw0rd");
    expect_bad(g, HEADER "S2,T1,,H,1,2030-01-01,Top Secret,\n", 2,
               "password: character 4 is not printable ASCII");
    expect_hidden(g, "Top Secret");
    expect_bad(g, HEADER "S2,T1,,H,1,2030-01-01,abc,\n", 2, "password");
    expect_hidden(g, ",abc");
    expect_bad(g, HEADER "S2,T1,,H,1,2030-01-01,pass-ok,00112233xx5566\n", 2,
               "share1: character 9 is not a hex digit");
    expect_hidden(g, "00112233");
    /* a secret in a column that is not an item of the row's type */
    expect_bad(g, "identity,card_type,holder,pin\nS3,T2,H,1234567890\nS4,T1,H,98765432\n",
               2, "pin: 10 characters, at most 8 allowed");
    expect_message(g, "bad.csv", 3, "column \"pin\" is not an item of card type \"T1\"");
    expect_hidden(g, "1234567890");
    expect_hidden(g, "98765432");
}

static void test_many_errors(void **state)
{
    struct g *g = *state;
    size_t cap = 4096;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, cap, "%s", HEADER);
    for (unsigned i = 1; i <= 25; i++)
        used += (size_t)snprintf(text + used, cap - used, "E%u,T1,,H,%ux,2030-01-01,pw%04u,\n",
                                 i, i, i);
    expect_bad(g, text, 2, "member: \"1x\" is not a decimal number");
    free(text);
    assert_int_equal(g->rep.rows, 25);
    assert_int_equal(g->rep.errors, 25);
    assert_int_equal(g->rep.nmessages, CSVIMPORT_MESSAGES);
    expect_message(g, "bad.csv", 21, "member: \"20x\"");
    assert_non_null(strstr(g->err, "25 errors"));

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    csvimport_report_print(&g->rep, out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(buf, "bad.csv:2: member: \"1x\" is not a decimal number\n"));
    const char *tail = "\n... and 5 more errors\n";
    assert_true(len > strlen(tail));
    assert_string_equal(buf + len - strlen(tail), tail);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_column_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_rows_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_errors, setup, teardown),
    };
    return TESTDB_RUN(tests, NULL, NULL);
}

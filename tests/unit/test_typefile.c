/* The card-type file parser (host/issuance/typefile.c) and the example file examples/types.json:
 *   - the example parses, with the values it is meant to have (designs, readouts, types, items,
 *     steps), and its original and backup scripts are the same steps;
 *   - its scripts, run on simulated cards with a record's values as issuance encodes them, get
 *     every expected status word; the identity and type readouts read back what was written; the
 *     key files are those `icdup init` creates (same FIDs, sizes, access conditions); and
 *     `icdup clone` (host/dup.c) clones an ICDUP-1 original into an ICDUP-DI backup;
 *   - one test per validation rule: a small bad file is refused (-1, the output zeroed) with a
 *     message naming the JSON path, a syntax error with its line and column.
 * Run from the repository root (the example is read as examples/types.json).
 *
 * The small JSON texts below are written with ' for " (see dq). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_ops.h"
#include "cardtype.h"
#include "dup.h"
#include "ins.h"
#include "profile.h"
#include "secrets.h"
#include "transport.h"
#include "typefile.h"

#include "file_env.h"

#define EXAMPLE "examples/types.json"
#define ERR_LEN 512

/* ---- helpers ------------------------------------------------------------------------------ */

/* text with every ' turned into ", in an exact-size heap buffer without a terminator (ASan
 * sees a read past the end); *len set. */
static char *dq(const char *text, size_t *len)
{
    *len = strlen(text);
    char *p = malloc(*len > 0 ? *len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < *len; i++)
        p[i] = text[i] == '\'' ? '"' : text[i];
    return p;
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* Parses text (' for ") named types.json; returns the result, message in err. */
static int parse(const char *text, struct ct_file *f, char err[ERR_LEN])
{
    size_t len;
    char *p = dq(text, &len);
    err[0] = '\0';
    int rc = typefile_parse(p, len, "types.json", f, err, ERR_LEN);
    free(p);
    return rc;
}

/* Asserts that text is refused with a message containing want, and that the output is zeroed. */
static void refused(const char *text, const char *want)
{
    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    memset(f, 0xA5, sizeof *f);
    char err[ERR_LEN];
    int rc = parse(text, f, err);
    bool zeroed = all_zero(f, sizeof *f);
    free(f);
    if (rc != -1 || strstr(err, want) == NULL)
        fail_msg("expected -1 with \"%s\", got %d: %s", want, rc, err);
    assert_true(zeroed);
}

static void accepted(const char *text)
{
    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    int rc = parse(text, f, err);
    free(f);
    if (rc != 0)
        fail_msg("refused: %s", err);
}

/* A growing string for files too large to write out (limits). */
struct sb {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void sb_add(struct sb *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (s->len + (size_t)n + 1 > s->cap) {
        s->cap = (s->len + (size_t)n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

/* The parts of a small valid file; the tests change one thing. */
#define D_OK "{'name': 'd', 'background': '#000000', 'accent': '#ff0000', 'text': '#ffffff'}"
#define TR_OK "{'name': 'tr', 'apdu': '00 CA DF 02 00', 'priority': 1}"
#define IR_OK "{'name': 'ir', 'encoding': 'ascii', 'steps': [{'apdu': '00 B0 00 00 10'}]}"
#define ITEMS_OK "'items': [{'name': 'holder', 'kind': 'text', 'max': 40}]"
#define STEP_OK "{'label': 'write holder', 'apdu': '00 D6 00 00', 'item': 'holder'}"
#define SCRIPTS(o, b) "'scripts': {'original': [" o "], 'backup': [" b "]}"
#define TYPE_HEAD(name) "'name': '" name "', 'interface': 'contact', 'design': 'd', " \
                        "'type_readout': 'tr', 'identity_readout': 'ir'"
/* A type with its value, items and the step of both roles given. */
#define TYPE_X(name, value, items, step) \
    "{" TYPE_HEAD(name) ", " value ", " items ", " SCRIPTS(step, step) "}"
#define TYPE_STEP(step) TYPE_X("T", "'type_value': 'T'", ITEMS_OK, step)
#define TYPE_ITEMS(items, step) TYPE_X("T", "'type_value': 'T'", items, step)
#define TYPE_OK TYPE_STEP(STEP_OK)
#define FILE_OF(d, tr, ir, ty) \
    "{'format': 'icissue-types/1', 'designs': [" d "], 'type_readouts': [" tr "], " \
    "'identity_readouts': [" ir "], 'card_types': [" ty "]}"
#define WITH_TYPE(ty) FILE_OF(D_OK, TR_OK, IR_OK, ty)
#define WITH_STEP(step) WITH_TYPE(TYPE_STEP(step))

/* ---- the example file --------------------------------------------------------------------- */

static struct ct_file *load_example(void)
{
    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    if (typefile_load(EXAMPLE, f, err, sizeof err) != 0)
        fail_msg("%s", err);
    return f;
}

static const struct ct_type *type_named(const struct ct_file *f, const char *name)
{
    for (size_t i = 0; i < f->ntypes; i++)
        if (strcmp(f->types[i].name, name) == 0)
            return &f->types[i];
    fail_msg("no type %s", name);
    return NULL;
}

static const struct ct_step *step_labelled(const struct ct_type *t, enum ct_role r,
                                           const char *label)
{
    for (size_t i = 0; i < t->nsteps[r]; i++)
        if (strcmp(t->script[r][i].label, label) == 0)
            return &t->script[r][i];
    fail_msg("%s has no step \"%s\"", t->name, label);
    return NULL;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *hex)
{
    uint8_t want[CT_APDU_MAX];
    size_t n = 0;
    for (const char *p = hex; *p != '\0';) {
        if (*p == ' ') {
            p++;
            continue;
        }
        assert_true(n < sizeof want);
        want[n++] = (uint8_t)(fe_hex_digit(p[0]) << 4 | fe_hex_digit(p[1]));
        p += 2;
    }
    assert_int_equal(got_len, n);
    assert_memory_equal(got, want, n);
}

static void test_example_designs_and_readouts(void **state)
{
    (void)state;
    struct ct_file *f = load_example();
    assert_int_equal(f->ndesigns, 2);
    assert_string_equal(f->designs[0].name, "classic");
    assert_int_equal(f->designs[0].background, 0x1d3557);
    assert_int_equal(f->designs[0].accent, 0xe63946);
    assert_int_equal(f->designs[0].text, 0xf1faee);
    assert_string_equal(f->designs[0].title, "ICDUP MEMBER CARD");
    assert_string_equal(f->designs[1].name, "teal");
    assert_int_equal(f->designs[1].background, 0x0b525b);

    assert_int_equal(f->ntype_readouts, 1);
    const struct ct_type_readout *tr = &f->type_readouts[0];
    assert_string_equal(tr->name, "get-data-df02");
    assert_bytes(tr->cmd.apdu, tr->cmd.len, "00 CA DF 02 00");
    assert_int_equal(tr->cmd.expect_sw, 0x9000);
    assert_int_equal(tr->priority, 1);

    assert_int_equal(f->nidentity_readouts, 2);
    const struct ct_identity_readout *ir = &f->identity_readouts[0];
    assert_string_equal(ir->name, "member-ef-5001");
    assert_int_equal(ir->encoding, CT_ENC_ASCII);
    assert_int_equal(ir->nsteps, 2);
    assert_bytes(ir->steps[0].apdu, ir->steps[0].len, "00 A4 08 0C 04 50 00 50 01");
    assert_int_equal(ir->steps[0].expect_sw, 0x9000);
    assert_bytes(ir->steps[1].apdu, ir->steps[1].len, "00 B0 00 00 10");
    ir = &f->identity_readouts[1];
    assert_string_equal(ir->name, "member-ef-6010");
    assert_bytes(ir->steps[0].apdu, ir->steps[0].len, "00 A4 08 0C 04 60 00 60 10");
    free(f);
}

static void test_example_types(void **state)
{
    (void)state;
    struct ct_file *f = load_example();
    assert_int_equal(f->ntypes, 2);
    const struct ct_type *t = type_named(f, "ICDUP-1");
    assert_string_equal(t->interface, "contact");
    assert_string_equal(t->design, "classic");
    assert_string_equal(t->stripe_iin, "999001");
    assert_string_equal(t->type_readout, "get-data-df02");
    assert_int_equal(t->type_value_len, 7);
    assert_memory_equal(t->type_value, "ICDUP-1", 7);
    assert_string_equal(t->identity_readout, "member-ef-5001");

    assert_int_equal(t->nitems, 6);
    const struct ct_item *it = ct_find_item(t, "holder");
    assert_non_null(it);
    assert_int_equal(it->kind, CT_TEXT);
    assert_int_equal(it->max_len, 40);
    assert_true(it->required);
    it = ct_find_item(t, "address");
    assert_non_null(it);
    assert_false(it->required);
    it = ct_find_item(t, "expiry");
    assert_non_null(it);
    assert_int_equal(it->kind, CT_DATE);
    assert_int_equal(it->max_len, 10);
    it = ct_find_item(t, "password");
    assert_non_null(it);
    assert_int_equal(it->kind, CT_SECRET);
    assert_int_equal(it->max_len, 16);
    it = ct_find_item(t, "share1");
    assert_non_null(it);
    assert_int_equal(it->kind, CT_HEX);
    assert_int_equal(it->max_len, 64);
    assert_false(it->required);
    it = ct_find_item(t, "member");
    assert_non_null(it);
    assert_int_equal(it->kind, CT_DIGITS);
    assert_null(ct_find_item(t, "identity")); /* the record's identity, not an item */

    assert_int_equal(t->nsteps[CT_ORIGINAL], 30);
    const struct ct_step *s = &t->script[CT_ORIGINAL][0];
    assert_string_equal(s->label, "card type");
    assert_bytes(s->header, 4, "00 DA DF 02");
    assert_int_equal(s->data_len, 0);
    assert_string_equal(s->item, "card_type");
    assert_int_equal(s->expect_sw, 0x9000);
    s = step_labelled(t, CT_ORIGINAL, "user PIN");
    assert_bytes(s->header, 4, "00 24 01 81");
    assert_string_equal(s->item, "password");
    s = step_labelled(t, CT_ORIGINAL, "PUK");
    assert_bytes(s->header, 4, "00 24 01 82");
    assert_string_equal(s->item, "puk");
    s = step_labelled(t, CT_ORIGINAL, "admin PIN");
    assert_bytes(s->header, 4, "00 24 01 83");
    assert_string_equal(s->item, "admin_pin");
    s = step_labelled(t, CT_ORIGINAL, "create DF 5000");
    assert_bytes(s->header, 4, "00 E0 00 00");
    assert_bytes(s->data, s->data_len, "62 0C 82 01 38 83 02 50 00 86 03 00 02 FF");
    assert_string_equal(s->item, "");
    s = step_labelled(t, CT_ORIGINAL, "create partner key EF 4B20");
    assert_bytes(s->data, s->data_len, "62 10 82 01 01 83 02 4B 20 80 02 00 41 86 03 00 02 02");
    s = step_labelled(t, CT_ORIGINAL, "set share 1");
    assert_bytes(s->header, 4, "80 D8 00 01");
    assert_string_equal(s->item, "share1");
    s = step_labelled(t, CT_ORIGINAL, "write member number");
    assert_bytes(s->header, 4, "00 D6 00 00");
    assert_string_equal(s->item, "identity");
    s = &t->script[CT_ORIGINAL][29];
    assert_string_equal(s->label, "activate the card");
    assert_bytes(s->header, 4, "00 44 00 00");
    assert_int_equal(s->data_len, 0);
    assert_string_equal(s->item, "");

    t = type_named(f, "ICDUP-DI");
    assert_string_equal(t->interface, "dual");
    assert_string_equal(t->design, "teal");
    assert_int_equal(t->type_value_len, 8);
    assert_memory_equal(t->type_value, "ICDUP-DI", 8);
    assert_string_equal(t->identity_readout, "member-ef-6010");
    s = step_labelled(t, CT_BACKUP, "create DF 6000");
    assert_bytes(s->data, s->data_len,
                 "62 16 82 01 38 83 02 60 00 84 08 F0 49 43 44 55 50 44 49 86 03 00 02 FF");
    s = step_labelled(t, CT_BACKUP, "write role");
    assert_string_equal(s->item, "role");
    free(f);
}

/* The roles differ only by the value of the built-in "role": the steps are the same. */
static void test_example_roles_same_steps(void **state)
{
    (void)state;
    struct ct_file *f = load_example();
    for (size_t i = 0; i < f->ntypes; i++) {
        const struct ct_type *t = &f->types[i];
        assert_int_equal(t->nsteps[CT_ORIGINAL], t->nsteps[CT_BACKUP]);
        for (size_t k = 0; k < t->nsteps[CT_ORIGINAL]; k++) {
            const struct ct_step *a = &t->script[CT_ORIGINAL][k], *b = &t->script[CT_BACKUP][k];
            assert_string_equal(a->label, b->label);
            assert_memory_equal(a->header, b->header, 4);
            assert_int_equal(a->data_len, b->data_len);
            assert_memory_equal(a->data, b->data, a->data_len);
            assert_string_equal(a->item, b->item);
            assert_int_equal(a->expect_sw, b->expect_sw);
        }
    }
    free(f);
}

/* ---- the example's scripts on simulated cards ---------------------------------------------- */

#define T_PUK "12345678"
#define T_ADMIN "87654321"
#define T_SHARE1 "5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C"

struct rec {
    const char *identity;
    const char *items[CT_MAX_ITEMS][2]; /* name, value; ends with a NULL name */
};

static const struct rec ada = {
    "1000000000000042",
    { { "holder", "Ada Lovelace" }, { "address", "12 St James's Square, London" },
      { "member", "1000000000000042" }, { "expiry", "2029-12-31" }, { "password", FE_PIN },
      { "share1", T_SHARE1 }, { NULL, NULL } },
};

static const char *rec_value(const struct rec *r, const char *name)
{
    for (size_t i = 0; i < CT_MAX_ITEMS && r->items[i][0] != NULL; i++)
        if (strcmp(r->items[i][0], name) == 0)
            return r->items[i][1];
    return NULL;
}

/* The value of item name as a command carries it (cardtype.h); 0 for an optional item the
 * record lacks: the step is skipped. */
static size_t item_bytes(const struct ct_type *t, const struct rec *r, enum ct_role role,
                         const char *name, uint8_t *out, size_t cap)
{
    const char *v = NULL;
    if (strcmp(name, "identity") == 0)
        v = r->identity;
    else if (strcmp(name, "puk") == 0)
        v = T_PUK;
    else if (strcmp(name, "admin_pin") == 0)
        v = T_ADMIN;
    if (v != NULL) {
        assert_true(strlen(v) <= cap);
        memcpy(out, v, strlen(v));
        return strlen(v);
    }
    if (strcmp(name, "card_type") == 0) {
        memcpy(out, t->type_value, t->type_value_len);
        return t->type_value_len;
    }
    if (strcmp(name, "issue_count") == 0) {
        out[0] = 0x00;
        out[1] = 0x01;
        return 2;
    }
    if (strcmp(name, "role") == 0) {
        out[0] = role == CT_ORIGINAL ? 'O' : 'B';
        return 1;
    }
    const struct ct_item *it = ct_find_item(t, name);
    assert_non_null(it);
    v = rec_value(r, name);
    if (v == NULL) {
        assert_false(it->required);
        return 0;
    }
    char err[256];
    if (ct_check_value(it, v, strlen(v), err, sizeof err) != 0)
        fail_msg("%s", err);
    int n = ct_encode_value(it->kind, v, strlen(v), out, cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* Runs the script of role for record r on the card at uri, checking every status word. */
static void issue(const char *uri, const struct ct_type *t, enum ct_role role,
                  const struct rec *r)
{
    struct transport *tr = fe_open(uri);
    struct cardop c;
    cardop_init(&c, tr, "card");
    for (size_t i = 0; i < t->nsteps[role]; i++) {
        const struct ct_step *s = &t->script[role][i];
        uint8_t apdu[CT_APDU_MAX];
        size_t len = 4;
        memcpy(apdu, s->header, 4);
        memcpy(apdu + 5, s->data, s->data_len);
        size_t dlen = s->data_len;
        if (s->item[0] != '\0') {
            size_t n = item_bytes(t, r, role, s->item, apdu + 5 + dlen, CT_DATA_MAX - dlen);
            if (n == 0)
                continue;
            dlen += n;
        }
        if (dlen > 0) {
            apdu[4] = (uint8_t)dlen;
            len = 5 + dlen;
        }
        int rc = cardop_command(&c, s->label, apdu, len, NULL, 0, NULL);
        if (rc != 0 && rc != CARDOP_E_SW)
            fail_msg("%s: %s", t->name, c.err);
        if ((rc == 0 ? 0x9000 : c.sw) != s->expect_sw)
            fail_msg("%s step %zu (%s): %04X, expected %04X", t->name, i + 1, s->label,
                     rc == 0 ? 0x9000 : c.sw, s->expect_sw);
    }
    transport_close(tr);
}

/* The identity the card at uri gives through readout ir. */
static void read_identity(const char *uri, const struct ct_identity_readout *ir, char *out,
                          size_t cap)
{
    struct transport *tr = fe_open(uri);
    struct cardop c;
    cardop_init(&c, tr, "card");
    uint8_t data[256];
    size_t n = 0;
    for (size_t i = 0; i < ir->nsteps; i++) {
        assert_int_equal(ir->steps[i].expect_sw, 0x9000);
        if (cardop_command(&c, "readout", ir->steps[i].apdu, ir->steps[i].len, data,
                           sizeof data, &n) != 0)
            fail_msg("%s", c.err);
    }
    assert_int_equal(ct_decode_identity(ir->encoding, data, n, out, cap), 0);
    transport_close(tr);
}

/* The answer to a whole command APDU given in hex. */
static size_t card_answer(const char *uri, const char *select_hex, const char *hex,
                          uint8_t *out, size_t cap)
{
    struct transport *tr = fe_open(uri);
    struct cardop c;
    cardop_init(&c, tr, "card");
    uint8_t apdu[64];
    size_t n = 0, len = 0;
    const char *cmds[2] = { select_hex, hex };
    for (int k = 0; k < 2; k++) {
        if (cmds[k] == NULL)
            continue;
        len = 0;
        for (const char *p = cmds[k]; *p != '\0'; p += *p == ' ' ? 1 : 2)
            if (*p != ' ')
                apdu[len++] = (uint8_t)(fe_hex_digit(p[0]) << 4 | fe_hex_digit(p[1]));
        if (cardop_command(&c, cmds[k], apdu, len, out, cap, &n) != 0)
            fail_msg("%s", c.err);
    }
    transport_close(tr);
    return n;
}

/* The DF05 file-list entries (12 bytes each) of the files in DF 4B00 and of DF 4B00 itself. */
static size_t key_files(const char *uri, uint8_t *out, size_t cap)
{
    uint8_t list[512];
    size_t n = card_answer(uri, NULL, "00 CA DF 05 00", list, sizeof list), k = 0;
    assert_int_equal(n % 12, 0);
    for (size_t i = 0; i < n; i += 12)
        if (list[i] == 0x4B) {
            assert_true(k + 12 <= cap);
            memcpy(out + k, list + i, 12);
            k += 12;
        }
    return k;
}

/* A card personalized by `icdup init` with N = 3 and share 1 set, as the example's are. */
static void init_reference(const char *uri)
{
    struct transport *tr = fe_open(uri);
    struct cardop c;
    cardop_init(&c, tr, "reference");
    struct secrets s;
    secrets_init(&s);
    fe_make_pin(&s.pin, FE_PIN);
    fe_make_pin(&s.puk, T_PUK);
    fe_make_pin(&s.admin, T_ADMIN);
    assert_int_equal(secrets_parse_share(T_SHARE1, strlen(T_SHARE1), s.share[0]), 0);
    s.shares = 0x01;
    struct profile_options po = { .shares = 3, .card_type = "ICDUP-1", .secrets = &s };
    char err[512];
    if (profile_run(&c, &po, NULL, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    secrets_wipe(&s);
    transport_close(tr);
}

static void test_example_issues_cards_that_clone(void **state)
{
    (void)state;
    struct ct_file *f = load_example();
    const struct ct_type *t1 = type_named(f, "ICDUP-1"), *tdi = type_named(f, "ICDUP-DI");
    char dir[64] = "/tmp/icdup-test-typefile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[128], b[128], ref[128], st[128];
    snprintf(a, sizeof a, "sim:%s/a.nvm", dir);
    snprintf(b, sizeof b, "sim:%s/b.nvm", dir);
    snprintf(ref, sizeof ref, "sim:%s/ref.nvm", dir);
    snprintf(st, sizeof st, "%s/state", dir);

    /* a: ICDUP-1 original of ada; b: ICDUP-DI backup of ada without an address. */
    struct rec ada_b = ada;
    ada_b.items[1][0] = "_none";
    issue(a, t1, CT_ORIGINAL, &ada);
    issue(b, tdi, CT_BACKUP, &ada_b);
    init_reference(ref);

    char id[64];
    read_identity(a, &f->identity_readouts[0], id, sizeof id);
    assert_string_equal(id, "1000000000000042");
    read_identity(b, &f->identity_readouts[1], id, sizeof id);
    assert_string_equal(id, "1000000000000042");
    uint8_t out[512];
    size_t n = card_answer(a, NULL, "00 CA DF 02 00", out, sizeof out);
    assert_int_equal(n, t1->type_value_len);
    assert_memory_equal(out, t1->type_value, n);
    n = card_answer(b, NULL, "00 CA DF 02 00", out, sizeof out);
    assert_int_equal(n, tdi->type_value_len);
    assert_memory_equal(out, tdi->type_value, n);
    n = card_answer(a, NULL, "00 CA DF 03 00", out, sizeof out);
    assert_bytes(out, n, "05");

    /* the member data, read by path */
    n = card_answer(a, "00 A4 08 0C 04 50 00 50 02", "00 B0 00 00 00", out, sizeof out);
    assert_int_equal(n, 40);
    assert_memory_equal(out, "Ada Lovelace", 12);
    assert_true(all_zero(out + 12, 28));
    n = card_answer(a, "00 A4 08 0C 04 50 00 50 04", "00 B0 00 00 00", out, sizeof out);
    assert_bytes(out, n, "20 29 12 31");
    n = card_answer(a, "00 A4 08 0C 04 50 00 50 05", "00 B0 00 00 00", out, sizeof out);
    assert_bytes(out, n, "00 01");
    n = card_answer(a, "00 A4 08 0C 04 50 00 50 06", "00 B0 00 00 00", out, sizeof out);
    assert_bytes(out, n, "4F");
    n = card_answer(b, "00 A4 08 0C 04 60 00 60 15", "00 B0 00 00 00", out, sizeof out);
    assert_bytes(out, n, "42");
    n = card_answer(b, "00 A4 08 0C 04 60 00 60 12", "00 B0 00 00 00", out, sizeof out);
    assert_int_equal(n, 80);
    assert_true(all_zero(out, 80)); /* no address: the step was skipped */
    n = card_answer(b, NULL, "00 A4 04 04 08 F0 49 43 44 55 50 44 49 00", out, sizeof out);
    assert_true(n > 9);
    assert_bytes(out + 2, 7, "82 01 38 83 02 60 00"); /* DF 6000, selected by its name */

    /* the key files, PIN states and key group are those of icdup init */
    uint8_t kr[256], ka[256], kb[256];
    size_t nr = key_files(ref, kr, sizeof kr), na = key_files(a, ka, sizeof ka),
           nb = key_files(b, kb, sizeof kb);
    assert_int_equal(nr, 8 * 12); /* 4B00, 4B01..4B03, 4B10, 4B11, 4B12, 4B20 */
    assert_int_equal(na, nr);
    assert_memory_equal(ka, kr, nr);
    assert_int_equal(nb, nr);
    assert_memory_equal(kb, kr, nr);
    uint8_t xr[64], xa[64];
    static const char *const same[] = { "00 CA DF 04 00", "00 CA DF 10 00", "00 CA DF 11 00" };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        size_t lr = card_answer(ref, NULL, same[i], xr, sizeof xr);
        size_t la = card_answer(a, NULL, same[i], xa, sizeof xa);
        assert_int_equal(la, lr);
        assert_memory_equal(xa, xr, lr);
        la = card_answer(b, NULL, same[i], xa, sizeof xa);
        assert_int_equal(la, lr);
        assert_memory_equal(xa, xr, lr);
    }

    /* icdup clone a -> b, shares 2 and 3 from the officers */
    struct secrets sh;
    secrets_init(&sh);
    memset(sh.share[1], 0x22, 32);
    memset(sh.share[2], 0x33, 32);
    sh.shares = 0x06;
    struct secret_pin pin;
    fe_make_pin(&pin, FE_PIN);
    struct dup_options o;
    memset(&o, 0, sizeof o);
    o.src_pin = &pin;
    o.dst_pin = &pin;
    o.shares = &sh;
    o.state_dir = st;
    struct transport *ta = fe_open(a), *tb = fe_open(b);
    struct dup_result r;
    char err[1024];
    if (dup_clone(ta, tb, &o, &r, err, sizeof err) != 0)
        fail_msg("clone: %s", err);
    assert_int_equal(r.n, 3);
    assert_true(r.imported);
    assert_true(r.proved);
    transport_close(ta);
    transport_close(tb);
    secrets_wipe(&sh);
    fe_rm_dir(dir);
    free(f);
}

/* ---- validation: one test per rule ----------------------------------------------------------- */

static void test_minimal_file_accepted(void **state)
{
    (void)state;
    accepted(WITH_TYPE(TYPE_OK));
    accepted("{'format': 'icissue-types/1', 'designs': [" D_OK "]}");
}

static void test_syntax_error_line_column(void **state)
{
    (void)state;
    refused("{\n  'format': 'icissue-types/1',\n  'designs': [,]\n}", "types.json:3:15: ");
    refused("{\n  'format': 'icissue-types/1',\n  'designs': [,]\n}", "JSON syntax error");
    refused("", "types.json:");
    refused("{'format': 'icissue-types/1'} x", "types.json:1:");
}

static void test_duplicate_key_refused(void **state)
{
    (void)state;
    refused("{'format': 'icissue-types/1',\n 'format': 'icissue-types/1'}", "types.json:2:");
    refused("{'format': 'icissue-types/1',\n 'format': 'icissue-types/1'}", "duplicate");
}

static void test_root_must_be_object(void **state)
{
    (void)state;
    refused("[{'format': 'icissue-types/1'}]", "types.json: an array, expected an object");
}

static void test_format_exact(void **state)
{
    (void)state;
    refused("{'designs': [" D_OK "]}", "types.json: format: missing");
    refused("{'format': 'icissue-types/2', 'designs': [" D_OK "]}",
            "types.json: format: \"icissue-types/2\", expected \"icissue-types/1\"");
    refused("{'format': ' icissue-types/1', 'designs': [" D_OK "]}", "format: ");
    refused("{'format': 1, 'designs': [" D_OK "]}", "format: an integer, expected a string");
}

static void test_defines_nothing(void **state)
{
    (void)state;
    refused("{'format': 'icissue-types/1'}", "types.json: defines nothing");
    refused("{'format': 'icissue-types/1', 'designs': [], 'card_types': []}", "defines nothing");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    refused("{'format': 'icissue-types/1', 'colour': 1}", "types.json: unknown key \"colour\"");
    refused(FILE_OF("{'name': 'd', 'background': '#000000', 'accent': '#ff0000', "
                    "'text': '#ffffff', 'font': 'x'}", TR_OK, IR_OK, TYPE_OK),
            "designs[0]: unknown key \"font\"");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 00', 'priority': 1, 'le': 0}",
                    IR_OK, TYPE_OK), "type_readouts[0]: unknown key \"le\"");
    refused(FILE_OF(D_OK, TR_OK, "{'name': 'ir', 'encoding': 'ascii', "
                    "'steps': [{'apdu': '00 B0 00 00 10', 'label': 'x'}]}", TYPE_OK),
            "identity_readouts[0].steps[0]: unknown key \"label\"");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'T', 'colour': 'red'", ITEMS_OK, STEP_OK)),
            "card_types[0]: unknown key \"colour\"");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 40, "
                                 "'min': 1}]", STEP_OK)),
            "card_types[0].items[0]: unknown key \"min\"");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'lc': '05'}"),
            "card_types[0].scripts.original[0]: unknown key \"lc\"");
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK ", 'scripts': "
                      "{'original': [" STEP_OK "], 'backup': [" STEP_OK "], 'spare': []}}"),
            "card_types[0].scripts: unknown key \"spare\" (known: original, backup)");
}

static void test_wrong_json_types(void **state)
{
    (void)state;
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': '40'}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: a string, expected an integer");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 40.0}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: a real number, expected an integer");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 40, "
                                 "'required': 'yes'}]", STEP_OK)),
            "card_types[0].items[0].required: a string, expected a boolean");
    refused("{'format': 'icissue-types/1', 'designs': {}}",
            "designs: an object, expected an array");
    refused("{'format': 'icissue-types/1', 'designs': ['classic']}",
            "designs[0]: a string, expected an object");
    refused(WITH_STEP("{'label': 'x', 'apdu': null}"),
            "card_types[0].scripts.original[0].apdu: null, expected a string");
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK ", 'scripts': []}"),
            "card_types[0].scripts: an array, expected an object");
}

static void test_missing_members(void **state)
{
    (void)state;
    refused(FILE_OF("{'name': 'd', 'background': '#000000', 'accent': '#ff0000'}", TR_OK,
                    IR_OK, TYPE_OK), "designs[0].text: missing");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 00'}", IR_OK, TYPE_OK),
            "type_readouts[0].priority: missing");
    refused(WITH_STEP("{'apdu': '00 D6 00 00', 'item': 'holder'}"),
            "card_types[0].scripts.original[0].label: missing");
    refused(WITH_TYPE("{'name': 'T', 'design': 'd', 'type_readout': 'tr', 'type_value': 'T', "
                      "'identity_readout': 'ir', " SCRIPTS(STEP_OK, STEP_OK) "}"),
            "card_types[0].interface: missing");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text'}]", STEP_OK)),
            "card_types[0].items[0].max: missing");
}

static void test_names(void **state)
{
    (void)state;
    refused("{'format': 'icissue-types/1', 'designs': [{'name': 'cl assic', 'background': "
            "'#000000', 'accent': '#000000', 'text': '#000000'}]}",
            "designs[0].name: \"cl assic\" is not a name (1 to 32 characters of A-Z a-z 0-9 . "
            "_ -)");
    refused("{'format': 'icissue-types/1', 'designs': [{'name': '', 'background': "
            "'#000000', 'accent': '#000000', 'text': '#000000'}]}",
            "designs[0].name: \"\" is not a name");
    refused("{'format': 'icissue-types/1', 'designs': [{'name': "
            "'abcdefghijklmnopqrstuvwxyz0123456', 'background': '#000000', 'accent': "
            "'#000000', 'text': '#000000'}]}", "designs[0].name: ");
    accepted("{'format': 'icissue-types/1', 'designs': [{'name': "
             "'abcdefghijklmnopqrstuvwxyz.-_ABC', 'background': '#000000', 'accent': "
             "'#000000', 'text': '#000000'}]}");
    refused(WITH_TYPE(TYPE_X("ICDUP 1", "'type_value': 'T'", ITEMS_OK, STEP_OK)),
            "card_types[0].name: \"ICDUP 1\" is not a name");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder/1', 'kind': 'text', 'max': 40}]",
                                 STEP_OK)),
            "card_types[0].items[0].name: \"holder/1\" is not a name");
}

static void test_duplicate_names(void **state)
{
    (void)state;
    refused(FILE_OF(D_OK ", " D_OK, TR_OK, IR_OK, TYPE_OK),
            "designs[1].name: design \"d\" is defined twice (entries 0 and 1)");
    refused(FILE_OF(D_OK, TR_OK ", {'name': 'tr', 'apdu': '00 CA DF 01 00', 'priority': 2}",
                    IR_OK, TYPE_OK), "type_readouts[1].name: type readout \"tr\" is defined");
    refused(FILE_OF(D_OK, TR_OK, IR_OK ", " IR_OK, TYPE_OK),
            "identity_readouts[1].name: identity readout \"ir\" is defined twice");
    refused(WITH_TYPE(TYPE_OK ", " TYPE_X("T", "'type_value': 'U'", ITEMS_OK, STEP_OK)),
            "card_types[1].name: card type \"T\" is defined twice");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 40}, "
                                 "{'name': 'holder', 'kind': 'digits', 'max': 4}]", STEP_OK)),
            "card_types[0].items[1].name: item \"holder\" is defined twice");
}

static void test_limits_of_lists(void **state)
{
    (void)state;
    struct sb s = { 0 };
    sb_add(&s, "{'format': 'icissue-types/1', 'designs': [");
    for (unsigned i = 0; i <= CT_MAX_DESIGNS; i++)
        sb_add(&s, "%s{'name': 'd%u', 'background': '#000000', 'accent': '#000000', "
               "'text': '#000000'}", i > 0 ? ", " : "", i);
    sb_add(&s, "]}");
    refused(s.p, "types.json: designs: 17 entries, at most 16 allowed");
    free(s.p);

    memset(&s, 0, sizeof s);
    sb_add(&s, "{'format': 'icissue-types/1', 'type_readouts': [");
    for (unsigned i = 0; i <= CT_MAX_READOUTS; i++)
        sb_add(&s, "%s{'name': 'r%u', 'apdu': '00 CA DF 02 00', 'priority': %u}",
               i > 0 ? ", " : "", i, i);
    sb_add(&s, "]}");
    refused(s.p, "type_readouts: 17 entries, at most 16 allowed");
    free(s.p);

    refused(FILE_OF(D_OK, TR_OK, "{'name': 'ir', 'encoding': 'ascii', 'steps': [{'apdu': '00 "
                    "B0 00 00 10'}, {'apdu': '00 B0 00 00 10'}, {'apdu': '00 B0 00 00 10'}, "
                    "{'apdu': '00 B0 00 00 10'}, {'apdu': '00 B0 00 00 10'}]}", TYPE_OK),
            "identity_readouts[0].steps: 5 entries, at most 4 allowed");
    refused(FILE_OF(D_OK, TR_OK, "{'name': 'ir', 'encoding': 'ascii', 'steps': []}", TYPE_OK),
            "identity_readouts[0].steps: 0 entries, at least 1 needed");

    memset(&s, 0, sizeof s);
    sb_add(&s, "{'format': 'icissue-types/1', 'designs': [" D_OK "], 'type_readouts': ["
           TR_OK "], 'identity_readouts': [" IR_OK "], 'card_types': [{" TYPE_HEAD("T")
           ", 'type_value': 'T', 'items': [");
    for (unsigned i = 0; i <= CT_MAX_ITEMS; i++)
        sb_add(&s, "%s{'name': 'i%u', 'kind': 'text', 'max': 4}", i > 0 ? ", " : "", i);
    sb_add(&s, "], " SCRIPTS("{'label': 'x', 'apdu': '00 44 00 00'}",
                             "{'label': 'x', 'apdu': '00 44 00 00'}") "}]}");
    refused(s.p, "card_types[0].items: 17 entries, at most 16 allowed");
    free(s.p);

    memset(&s, 0, sizeof s);
    sb_add(&s, "{'format': 'icissue-types/1', 'designs': [" D_OK "], 'type_readouts': ["
           TR_OK "], 'identity_readouts': [" IR_OK "], 'card_types': [{" TYPE_HEAD("T")
           ", 'type_value': 'T', 'scripts': {'original': [");
    for (unsigned i = 0; i <= CT_MAX_STEPS; i++)
        sb_add(&s, "%s{'label': 's%u', 'apdu': '00 44 00 00'}", i > 0 ? ", " : "", i);
    sb_add(&s, "], 'backup': [{'label': 'x', 'apdu': '00 44 00 00'}]}}]}");
    refused(s.p, "card_types[0].scripts.original: 65 entries, at most 64 allowed");
    free(s.p);

    memset(&s, 0, sizeof s);
    sb_add(&s, "{'format': 'icissue-types/1', 'designs': [" D_OK "], 'type_readouts': ["
           TR_OK "], 'identity_readouts': [" IR_OK "], 'card_types': [");
    for (unsigned i = 0; i <= CT_MAX_TYPES; i++)
        sb_add(&s, "%s{" TYPE_HEAD("T%u") ", 'type_value': 'T%u', " SCRIPTS(
               "{'label': 'x', 'apdu': '00 44 00 00'}", "{'label': 'x', 'apdu': '00 44 00 00'}")
               "}", i > 0 ? ", " : "", i, i);
    sb_add(&s, "]}");
    refused(s.p, "card_types: 17 entries, at most 16 allowed");
    free(s.p);
}

static void test_limits_of_text(void **state)
{
    (void)state;
    /* label 64 bytes accepted, 65 refused */
    accepted(WITH_STEP("{'label': '0123456789012345678901234567890123456789012345678901234567"
                       "890123', 'apdu': '00 44 00 00'}"));
    refused(WITH_STEP("{'label': '0123456789012345678901234567890123456789012345678901234567"
                      "8901234', 'apdu': '00 44 00 00'}"),
            "card_types[0].scripts.original[0].label: 65 bytes, expected 1 to 64");
    refused(WITH_STEP("{'label': '', 'apdu': '00 44 00 00'}"),
            "card_types[0].scripts.original[0].label: 0 bytes, expected 1 to 64");
    refused(WITH_STEP("{'label': 'a\\tb', 'apdu': '00 44 00 00'}"),
            "card_types[0].scripts.original[0].label: contains a control character");
    refused("{'format': 'icissue-types/1', 'designs': [{'name': 'd', 'background': '#000000', "
            "'accent': '#000000', 'text': '#000000', 'title': "
            "'01234567890123456789012345678901234567890'}]}",
            "designs[0].title: 41 bytes, expected 0 to 40");
    struct sb s = { 0 };
    sb_add(&s, "%s", "{'format': 'icissue-types/1', 'designs': [" D_OK "], 'type_readouts': ["
           TR_OK "], 'identity_readouts': [" IR_OK "], 'card_types': [{" TYPE_HEAD("T")
           ", 'type_value': 'T', 'description': '");
    for (unsigned i = 0; i <= CT_TEXT_MAX; i++)
        sb_add(&s, "x");
    sb_add(&s, "%s", "', " SCRIPTS("{'label': 'x', 'apdu': '00 44 00 00'}",
                                   "{'label': 'x', 'apdu': '00 44 00 00'}") "}]}");
    refused(s.p, "card_types[0].description: 129 bytes, expected 0 to 128");
    free(s.p);
}

static void test_hex_strings(void **state)
{
    (void)state;
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00A4000C', 'data': '3f00'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00A4 000C', 'data': '3F 00'}"));
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C', 'data': '3F 0'}"),
            "card_types[0].scripts.original[0].data: \"3F 0\": odd number of hex digits");
    refused(WITH_STEP("{'label': 'x', 'apdu': '0 0A4 00 0C'}"),
            "card_types[0].scripts.original[0].apdu: \"0 0A4 00 0C\": odd number of hex digits");
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C', 'data': '3F:00'}"));
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C', 'data': '3G00'}"),
            "card_types[0].scripts.original[0].data: \"3G00\": invalid hex character 'G' at "
            "offset 1");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C', 'data': ''}"),
            "card_types[0].scripts.original[0].data: empty");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C', 'data': '  '}"),
            "card_types[0].scripts.original[0].data: empty");
}

static void test_step_apdu_is_header(void **state)
{
    (void)state;
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00 0C 02 3F 00'}"),
            "card_types[0].scripts.original[0].apdu: \"00 A4 00 0C 02 3F 00\" is 7 bytes, but "
            "a step's apdu is the 4-byte header");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 A4 00'}"),
            "card_types[0].scripts.original[0].apdu: \"00 A4 00\" is 3 bytes");
}

static void test_status_words(void **state)
{
    (void)state;
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 44 00 00', 'sw': '90000'}"),
            "types.json: card_types[0].scripts.original[0].sw: \"90000\" is not 4 hex digits");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 44 00 00', 'sw': '90 00'}"),
            "card_types[0].scripts.original[0].sw: \"90 00\" is not 4 hex digits");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 44 00 00', 'sw': '9G00'}"),
            "card_types[0].scripts.original[0].sw: \"9G00\" is not 4 hex digits");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 44 00 00', 'sw': '1234'}"),
            "card_types[0].scripts.original[0].sw: \"1234\" is not a status word");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 44 00 00', 'sw': 9000}"),
            "card_types[0].scripts.original[0].sw: an integer, expected a string");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 00', 'sw': '900', "
                    "'priority': 1}", IR_OK, TYPE_OK),
            "type_readouts[0].sw: \"900\" is not 4 hex digits");

    /* absent: 9000; given: as written */
    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    assert_int_equal(parse(WITH_TYPE(TYPE_X("T", "'type_value': 'T'", ITEMS_OK,
                                            "{'label': 'x', 'apdu': '00 44 00 00', "
                                            "'sw': '6a82'}")), f, err), 0);
    assert_int_equal(f->types[0].script[CT_ORIGINAL][0].expect_sw, 0x6A82);
    assert_int_equal(parse(WITH_TYPE(TYPE_OK), f, err), 0);
    assert_int_equal(f->types[0].script[CT_ORIGINAL][0].expect_sw, 0x9000);
    assert_int_equal(f->identity_readouts[0].steps[0].expect_sw, 0x9000);
    free(f);
}

static void test_readout_commands(void **state)
{
    (void)state;
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF', 'priority': 1}", IR_OK,
                    TYPE_OK),
            "type_readouts[0].apdu: \"00 CA DF\" is not a short command APDU");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 05 00', 'priority': 1}", IR_OK,
                    TYPE_OK), "type_readouts[0].apdu: \"00 CA DF 02 05 00\" is not a short");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 00 00 00', 'priority': 1}",
                    IR_OK, TYPE_OK), "type_readouts[0].apdu: ");
    refused(FILE_OF(D_OK, TR_OK, "{'name': 'ir', 'encoding': 'ascii', 'steps': [{'apdu': "
                    "'00 A4 08 0C 04 50 00 50'}]}", TYPE_OK),
            "identity_readouts[0].steps[0].apdu: \"00 A4 08 0C 04 50 00 50\" is not a short");
    refused(FILE_OF(D_OK, TR_OK, "{'name': 'ir', 'encoding': 'ebcdic', 'steps': [{'apdu': "
                    "'00 B0 00 00 10'}]}", TYPE_OK),
            "identity_readouts[0].encoding: \"ebcdic\" is not an encoding (ascii, hex or bcd)");
}

static void test_priorities(void **state)
{
    (void)state;
    refused(FILE_OF(D_OK, TR_OK ", {'name': 'tr2', 'apdu': '00 CA DF 01 00', 'priority': 1}",
                    IR_OK, TYPE_OK),
            "type_readouts[1].priority: 1 is already the priority of tr");
    refused(FILE_OF(D_OK, "{'name': 'tr', 'apdu': '00 CA DF 02 00', 'priority': -1}", IR_OK,
                    TYPE_OK), "type_readouts[0].priority: -1 is outside 0..65535");
}

static void test_colors(void **state)
{
    (void)state;
    refused("{'format': 'icissue-types/1', 'designs': [{'name': 'd', 'background': '#00000', "
            "'accent': '#000000', 'text': '#000000'}]}",
            "designs[0].background: \"#00000\" is not a color #rrggbb");
    refused("{'format': 'icissue-types/1', 'designs': [{'name': 'd', 'background': '#000000', "
            "'accent': 'red', 'text': '#000000'}]}",
            "designs[0].accent: \"red\" is not a color #rrggbb");
    refused("{'format': 'icissue-types/1', 'designs': [{'name': 'd', 'background': '#000000', "
            "'accent': '#000000', 'text': '#00000g'}]}",
            "designs[0].text: \"#00000g\" is not a color #rrggbb");
}

static void test_references_in_same_file(void **state)
{
    (void)state;
    refused(WITH_TYPE("{'name': 'T', 'interface': 'contact', 'design': 'gold', 'type_readout': "
                      "'tr', 'identity_readout': 'ir', 'type_value': 'T', "
                      SCRIPTS(STEP_OK, STEP_OK) ", " ITEMS_OK "}"),
            "card_types[0].design: \"gold\" is not a design defined in this file");
    refused(WITH_TYPE("{'name': 'T', 'interface': 'contact', 'design': 'd', 'type_readout': "
                      "'atr', 'identity_readout': 'ir', 'type_value': 'T', "
                      SCRIPTS(STEP_OK, STEP_OK) ", " ITEMS_OK "}"),
            "card_types[0].type_readout: \"atr\" is not a type readout defined in this file");
    refused(WITH_TYPE("{'name': 'T', 'interface': 'contact', 'design': 'd', 'type_readout': "
                      "'tr', 'identity_readout': 'ef-9000', 'type_value': 'T', "
                      SCRIPTS(STEP_OK, STEP_OK) ", " ITEMS_OK "}"),
            "card_types[0].identity_readout: \"ef-9000\" is not an identity readout defined");
    refused("{'format': 'icissue-types/1', 'card_types': [" TYPE_OK "]}",
            "card_types[0].design: \"d\" is not a design defined in this file");
}

static void test_scripts_both_roles(void **state)
{
    (void)state;
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK ", 'scripts': "
                      "{'original': [" STEP_OK "]}}"),
            "card_types[0].scripts.backup: missing");
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK ", 'scripts': "
                      "{'original': [], 'backup': [" STEP_OK "]}}"),
            "card_types[0].scripts.original: 0 entries, at least 1 needed");
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK ", 'scripts': "
                      "{'original': [" STEP_OK "], 'backup': []}}"),
            "card_types[0].scripts.backup: 0 entries, at least 1 needed");
    refused(WITH_TYPE("{" TYPE_HEAD("T") ", 'type_value': 'T', " ITEMS_OK "}"),
            "card_types[0].scripts: missing");
}

static void test_step_items(void **state)
{
    (void)state;
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'item': 'phone'}"),
            "card_types[0].scripts.original[0].item: \"phone\" is neither an item of T nor a "
            "built-in");
    refused(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'item': ''}"),
            "card_types[0].scripts.original[0].item: \"\" is neither an item");
    /* every built-in is accepted */
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'item': 'identity'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 DA DF 02', 'item': 'card_type'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'item': 'issue_count'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'item': 'role'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 24 01 82', 'item': 'puk'}"));
    accepted(WITH_STEP("{'label': 'x', 'apdu': '00 24 01 83', 'item': 'admin_pin'}"));
    /* an item may not take a built-in's name */
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'role', 'kind': 'text', 'max': 1}]",
                                 STEP_OK)),
            "card_types[0].items[0].name: \"role\" is a built-in item");
}

static void test_items(void **state)
{
    (void)state;
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'blob', 'max': 4}]",
                                 STEP_OK)),
            "card_types[0].items[0].kind: \"blob\" is not a kind (text, digits, date, secret or "
            "hex)");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 0}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: 0 is outside 1..255");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'text', 'max': 256}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: 256 is outside 1..255");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'hex', 'max': 63}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: 63, but a hex value has an even number of digits");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'secret', 'max': 3}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: 3, but a secret has at least 4 characters");
    refused(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'date', 'max': 8}]",
                                 STEP_OK)),
            "card_types[0].items[0].max: 8, but a date has 10 characters");
    accepted(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'date', 'max': 10}]",
                                  STEP_OK)));

    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    assert_int_equal(parse(WITH_TYPE(TYPE_ITEMS("'items': [{'name': 'holder', 'kind': 'date'}, "
                                                "{'name': 'pin', 'kind': 'secret', 'max': 8, "
                                                "'required': true}]", STEP_OK)), f, err), 0);
    assert_int_equal(f->types[0].nitems, 2);
    assert_int_equal(f->types[0].items[0].kind, CT_DATE);
    assert_int_equal(f->types[0].items[0].max_len, 10);
    assert_false(f->types[0].items[0].required);
    assert_int_equal(f->types[0].items[1].kind, CT_SECRET);
    assert_true(f->types[0].items[1].required);
    free(f);
}

/* n bytes "AA AA ..." as hex into buf. */
static const char *hex_bytes(char *buf, size_t cap, size_t n)
{
    assert_true(3 * n <= cap);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 3 * i, "AA ", 3);
    buf[n > 0 ? 3 * n - 1 : 0] = '\0';
    return buf;
}

/* Literal data plus the item's most encoded bytes must fit 255: text max, date 4, hex max/2. */
static void test_step_size(void **state)
{
    (void)state;
    char data[3 * 256], text[4096];
/* (The step is both roles' script: its arguments are given twice.) */
#define TEXT_STEP(n, item) \
    (snprintf(text, sizeof text, WITH_STEP("{'label': 'x', 'apdu': '00 D6 00 00', 'data': '%s', " \
                                           "'item': '%s'}"), hex_bytes(data, sizeof data, n), \
              item, data, item), text)
#define KIND_STEP(n, items) \
    (snprintf(text, sizeof text, WITH_TYPE(TYPE_ITEMS(items, "{'label': 'x', 'apdu': '00 D6 00 " \
                                                      "00', 'data': '%s', 'item': 'v'}")), \
              hex_bytes(data, sizeof data, n), data), text)

    /* text of 40 */
    refused(TEXT_STEP(216, "holder"), "card_types[0].scripts.original[0]: 216 bytes of data and "
            "up to 40 of item holder exceed the 255 bytes of a command");
    accepted(TEXT_STEP(215, "holder"));

    /* a date adds 4 */
    refused(KIND_STEP(252, "'items': [{'name': 'v', 'kind': 'date'}]"),
            "252 bytes of data and up to 4 of item v exceed");
    accepted(KIND_STEP(251, "'items': [{'name': 'v', 'kind': 'date'}]"));

    /* 64 hex digits add 32 */
    refused(KIND_STEP(224, "'items': [{'name': 'v', 'kind': 'hex', 'max': 64}]"),
            "224 bytes of data and up to 32 of item v exceed");
    accepted(KIND_STEP(223, "'items': [{'name': 'v', 'kind': 'hex', 'max': 64}]"));

    /* digits and secrets add their max */
    refused(KIND_STEP(240, "'items': [{'name': 'v', 'kind': 'secret', 'max': 16}]"),
            "240 bytes of data and up to 16 of item v exceed");
    accepted(KIND_STEP(235, "'items': [{'name': 'v', 'kind': 'digits', 'max': 20}]"));

    /* built-ins: the identity up to 64, the PUK 16, the card type its length (1 here) */
    refused(TEXT_STEP(192, "identity"), "192 bytes of data and up to 64 of item identity exceed");
    accepted(TEXT_STEP(191, "identity"));
    refused(TEXT_STEP(240, "puk"), "240 bytes of data and up to 16 of item puk exceed");
    accepted(TEXT_STEP(254, "card_type"));
    refused(TEXT_STEP(255, "card_type"), "255 bytes of data and up to 1 of item card_type");
    accepted(TEXT_STEP(253, "issue_count"));
    accepted(TEXT_STEP(254, "role"));
#undef TEXT_STEP
#undef KIND_STEP

    /* 256 bytes of data alone */
    struct sb s = { 0 };
    sb_add(&s, "%s", "{'format': 'icissue-types/1', 'designs': [" D_OK "], 'type_readouts': ["
           TR_OK "], 'identity_readouts': [" IR_OK "], 'card_types': [{" TYPE_HEAD("T")
           ", 'type_value': 'T', 'scripts': {'original': [{'label': 'x', 'apdu': "
           "'00 D6 00 00', 'data': '");
    for (unsigned i = 0; i < 256; i++)
        sb_add(&s, "00");
    sb_add(&s, "%s", "'}], 'backup': [{'label': 'x', 'apdu': '00 44 00 00'}]}}]}");
    refused(s.p, "card_types[0].scripts.original[0].data: \"0000");
    refused(s.p, "hex data longer than 255 bytes");
    free(s.p);
}

static void test_type_value(void **state)
{
    (void)state;
    refused(WITH_TYPE(TYPE_X("T", "'type_value': ''", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value: \"\" is not 1 to 32 printable ASCII characters");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': '0123456789012345678901234567890123'", ITEMS_OK,
                             STEP_OK)),
            "card_types[0].type_value: \"0123456789012345678901234567890123\" is not 1 to 32");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'caf\\u00e9'", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value: ");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'T', 'type_value_hex': '54'", ITEMS_OK,
                             STEP_OK)),
            "card_types[0]: both type_value and type_value_hex given");
    refused(WITH_TYPE(TYPE_X("T", "'description': 'no value'", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value: missing (or type_value_hex)");
    refused(WITH_TYPE(TYPE_X("T", "'type_value_hex': ''", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value_hex: empty, expected 1 to 32 bytes");
    refused(WITH_TYPE(TYPE_X("T", "'type_value_hex': '00112233445566778899AABBCCDDEEFF"
                             "00112233445566778899AABBCCDDEEFF00'", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value_hex: \"00112233445566778899AABBCCDDEEFF00112233...\": "
            "hex data longer than 32 bytes");

    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    assert_int_equal(parse(WITH_TYPE(TYPE_X("T", "'type_value_hex': '00 FF 10'", ITEMS_OK,
                                            STEP_OK)), f, err), 0);
    assert_int_equal(f->types[0].type_value_len, 3);
    assert_memory_equal(f->types[0].type_value, "\x00\xFF\x10", 3);
    assert_int_equal(parse(WITH_TYPE(TYPE_X("T", "'type_value': '01234567890123456789012345678901'",
                                            ITEMS_OK, STEP_OK)), f, err), 0);
    assert_int_equal(f->types[0].type_value_len, 32);
    free(f);
}

/* The correlation (type readout, value) -> type must be unambiguous. */
static void test_correlation_unambiguous(void **state)
{
    (void)state;
    refused(WITH_TYPE(TYPE_OK ", " TYPE_X("U", "'type_value': 'T'", ITEMS_OK, STEP_OK)),
            "card_types[1]: type_readout tr and this type value already identify T");
    /* the same bytes written in hex */
    refused(WITH_TYPE(TYPE_OK ", " TYPE_X("U", "'type_value_hex': '54'", ITEMS_OK, STEP_OK)),
            "card_types[1]: type_readout tr and this type value already identify T");
    /* another value, or the same value through another readout: fine */
    accepted(WITH_TYPE(TYPE_OK ", " TYPE_X("U", "'type_value': 'U'", ITEMS_OK, STEP_OK)));
    accepted(FILE_OF(D_OK, TR_OK ", {'name': 'tr2', 'apdu': '00 CA 01 01 00', 'priority': 2}",
                     IR_OK, TYPE_OK ", {'name': 'U', 'interface': 'dual', 'design': 'd', "
                     "'type_readout': 'tr2', 'identity_readout': 'ir', 'type_value': 'T', "
                     SCRIPTS(STEP_OK, STEP_OK) ", " ITEMS_OK "}"));
}

static void test_interface_and_iin(void **state)
{
    (void)state;
    refused(WITH_TYPE("{'name': 'T', 'interface': 'nfc', 'design': 'd', 'type_readout': 'tr', "
                      "'identity_readout': 'ir', 'type_value': 'T', " SCRIPTS(STEP_OK, STEP_OK)
                      ", " ITEMS_OK "}"),
            "card_types[0].interface: \"nfc\" is not an interface (contact, dual or "
            "contactless)");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'T', 'stripe_iin': '99900'", ITEMS_OK,
                             STEP_OK)),
            "card_types[0].stripe_iin: \"99900\" is not an issuer identification number (6 or 8 "
            "digits)");
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'T', 'stripe_iin': '99900A'", ITEMS_OK,
                             STEP_OK)), "card_types[0].stripe_iin: \"99900A\" is not");
    accepted(WITH_TYPE(TYPE_X("T", "'type_value': 'T', 'stripe_iin': '99900123'", ITEMS_OK,
                              STEP_OK)));
}

static void test_load_errors(void **state)
{
    (void)state;
    struct ct_file *f = malloc(sizeof *f);
    assert_non_null(f);
    char err[ERR_LEN];
    assert_int_equal(typefile_load("examples/no-such-types.json", f, err, sizeof err), -1);
    assert_non_null(strstr(err, "examples/no-such-types.json"));
    assert_true(all_zero(f, sizeof *f));
    assert_int_equal(typefile_load("examples", f, err, sizeof err), -1);
    assert_string_equal(err, "examples: not a regular file");
    free(f);
}

/* A message quotes at most 40 bytes of a value and never a control character. */
static void test_message_quotes_safely(void **state)
{
    (void)state;
    refused(WITH_TYPE(TYPE_X("T", "'type_value': 'a\\nb'", ITEMS_OK, STEP_OK)),
            "card_types[0].type_value: \"a?b\" is not");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_designs_and_readouts),
        cmocka_unit_test(test_example_types),
        cmocka_unit_test(test_example_roles_same_steps),
        cmocka_unit_test(test_example_issues_cards_that_clone),
        cmocka_unit_test(test_minimal_file_accepted),
        cmocka_unit_test(test_syntax_error_line_column),
        cmocka_unit_test(test_duplicate_key_refused),
        cmocka_unit_test(test_root_must_be_object),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_defines_nothing),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_json_types),
        cmocka_unit_test(test_missing_members),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_limits_of_lists),
        cmocka_unit_test(test_limits_of_text),
        cmocka_unit_test(test_hex_strings),
        cmocka_unit_test(test_step_apdu_is_header),
        cmocka_unit_test(test_status_words),
        cmocka_unit_test(test_readout_commands),
        cmocka_unit_test(test_priorities),
        cmocka_unit_test(test_colors),
        cmocka_unit_test(test_references_in_same_file),
        cmocka_unit_test(test_scripts_both_roles),
        cmocka_unit_test(test_step_items),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_step_size),
        cmocka_unit_test(test_type_value),
        cmocka_unit_test(test_correlation_unambiguous),
        cmocka_unit_test(test_interface_and_iin),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_message_quotes_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Card-type file parser (typefile.h): JSON by jansson, loaded with duplicate keys refused, then
 * walked member by member into a struct ct_file. Every object is first checked for unknown
 * keys; every value for its JSON type, then for its range. The JSON path of the value being
 * read is built as the walk descends, so that every message can name it. */
#include "typefile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "apdu.h"
#include "hex.h"
#include "idb.h"
#include "secrets.h"

#define TF_PATH 160  /* a JSON path such as card_types[15].scripts.original[63].apdu */
#define TF_QUOTE 48  /* a value quoted in a message */
#define TF_QUOTE_KEEP 40
#define TF_DATE_LEN 10u /* YYYY-MM-DD */
#define TF_PRIORITY_MAX 65535

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Where messages go and what they name. */
struct tf {
    const char *source;
    char *err;
    size_t errlen;
};

/* Writes "source: at: message" (or "source: message" at the root) into err. Returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(const struct tf *t, const char *at, const char *fmt, ...)
{
    if (t->err == NULL || t->errlen == 0)
        return -1;
    int n = at[0] != '\0' ? snprintf(t->err, t->errlen, "%s: %s: ", t->source, at)
                          : snprintf(t->err, t->errlen, "%s: ", t->source);
    if (n >= 0 && (size_t)n < t->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->err + n, t->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Marks a path cut short by snprintf (n its return value) with a trailing "...". */
static const char *path_end(char out[TF_PATH], int n)
{
    if (n < 0 || n >= TF_PATH)
        memcpy(out + TF_PATH - 4, "...", 4);
    return out;
}

/* at.key, or key at the root. */
static const char *path_key(char out[TF_PATH], const char *at, const char *key)
{
    return path_end(out, snprintf(out, TF_PATH, "%s%s%s", at, at[0] != '\0' ? "." : "", key));
}

/* at[i]. */
static const char *path_index(char out[TF_PATH], const char *at, size_t i)
{
    return path_end(out, snprintf(out, TF_PATH, "%s[%zu]", at, i));
}

/* s in double quotes for a message: its first TF_QUOTE_KEEP bytes (then "..."), control
 * characters shown as '?'. */
static const char *quote(char buf[TF_QUOTE], const char *s)
{
    size_t n = strlen(s), keep = n > TF_QUOTE_KEEP ? TF_QUOTE_KEEP : n;
    while (keep > 0 && keep < n && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--; /* do not cut a UTF-8 sequence */
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < keep; i++)
        buf[k++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i];
    if (keep < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k++] = '"';
    buf[k] = '\0';
    return buf;
}

static const char *json_kind(json_type ty)
{
    switch (ty) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* ---- members of an object ---------------------------------------------------------------- */

/* Refuses a key of obj (at path at) that is not one of keys[0..n). */
static int check_keys(const struct tf *t, json_t *obj, const char *at, const char *const *keys,
                      size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        (void)v;
        size_t i = 0;
        while (i < n && strcmp(keys[i], k) != 0)
            i++;
        if (i < n)
            continue;
        char list[256] = "", q[TF_QUOTE];
        size_t used = 0;
        for (i = 0; i < n && used < sizeof list; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i > 0 ? ", " : "", keys[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return fail(t, at, "unknown key %s (known: %s)", quote(q, k), list);
    }
    return 0;
}

/* The member key of obj, which must have the JSON type want (JSON_TRUE: a boolean). *out is
 * NULL when the member is absent and not required. */
static int member(const struct tf *t, json_t *obj, const char *at, const char *key,
                  json_type want, bool required, json_t **out)
{
    char p[TF_PATH];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return required ? fail(t, path_key(p, at, key), "missing") : 0;
    bool ok = want == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == want;
    if (!ok)
        return fail(t, path_key(p, at, key), "%s, expected %s", json_kind(json_typeof(v)),
                    json_kind(want));
    *out = v;
    return 0;
}

/* A string member (*s NULL when absent and optional). jansson refuses \u0000 in strings, so
 * strlen gives the length. */
static int string_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                         bool required, const char **s)
{
    json_t *v;
    *s = NULL;
    if (member(t, obj, at, key, JSON_STRING, required, &v) != 0)
        return -1;
    if (v != NULL)
        *s = json_string_value(v);
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A required name: 1..CT_NAME_MAX characters of A-Z a-z 0-9 . _ - */
static int name_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                       char out[CT_NAME_MAX + 1])
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, key, true, &s) != 0)
        return -1;
    if (!valid_name(s))
        return fail(t, path_key(p, at, key), "%s is not a name (1 to %u characters of A-Z a-z "
                    "0-9 . _ -)", quote(q, s), CT_NAME_MAX);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* Text without control characters (jansson has checked the UTF-8). */
static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return false;
    return true;
}

/* A text member of min..max bytes into out (max + 1 bytes); "" when absent and optional. */
static int text_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                       bool required, size_t min, size_t max, char *out)
{
    const char *s;
    char p[TF_PATH];
    out[0] = '\0';
    if (string_member(t, obj, at, key, required, &s) != 0)
        return -1;
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n < min || n > max)
        return fail(t, path_key(p, at, key), "%zu bytes, expected %zu to %zu", n, min, max);
    if (!printable(s))
        return fail(t, path_key(p, at, key), "contains a control character");
    memcpy(out, s, n + 1);
    return 0;
}

/* An integer member in lo..hi; def when absent and optional. */
static int int_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                      bool required, long long lo, long long hi, long long def, long long *out)
{
    json_t *v;
    char p[TF_PATH];
    *out = def;
    if (member(t, obj, at, key, JSON_INTEGER, required, &v) != 0)
        return -1;
    if (v == NULL)
        return 0;
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(t, path_key(p, at, key), "%lld is outside %lld..%lld", x, lo, hi);
    *out = x;
    return 0;
}

/* A boolean member; def when absent. */
static int bool_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                       bool def, bool *out)
{
    json_t *v;
    *out = def;
    if (member(t, obj, at, key, JSON_TRUE, false, &v) != 0)
        return -1;
    if (v != NULL)
        *out = json_is_true(v);
    return 0;
}

/* An array member of min..max entries (*arr NULL, *n 0 when absent and optional). */
static int array_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                        bool required, size_t min, size_t max, json_t **arr, size_t *n)
{
    char p[TF_PATH];
    *n = 0;
    if (member(t, obj, at, key, JSON_ARRAY, required, arr) != 0)
        return -1;
    if (*arr == NULL)
        return 0;
    size_t len = json_array_size(*arr);
    if (len < min)
        return fail(t, path_key(p, at, key), "%zu entries, at least %zu needed", len, min);
    if (len > max)
        return fail(t, path_key(p, at, key), "%zu entries, at most %zu allowed", len, max);
    *n = len;
    return 0;
}

/* Entry i of arr (path at), which must be an object with only the given keys; its path into
 * p. */
static int entry(const struct tf *t, json_t *arr, const char *at, size_t i,
                 const char *const *keys, size_t nkeys, char p[TF_PATH], json_t **out)
{
    json_t *v = json_array_get(arr, i);
    path_index(p, at, i);
    if (!json_is_object(v))
        return fail(t, p, "%s, expected an object", json_kind(json_typeof(v)));
    *out = v;
    return check_keys(t, v, p, keys, nkeys);
}

/* ---- hex, status words, commands --------------------------------------------------------- */

/* Hex text (hex_decode's rules: bytes may be separated by spaces) decoded into out (cap
 * bytes); at is the path of the string for messages. */
static int hex_field(const struct tf *t, const char *at, const char *s, uint8_t *out,
                     size_t cap, size_t *len)
{
    char q[TF_QUOTE], why[160];
    if (hex_decode(s, out, cap, len, why, sizeof why) != 0)
        return fail(t, at, "%s: %s", quote(q, s), why);
    return 0;
}

/* The optional "sw" member: 4 hex digits, SW1 6x or 9x; 9000 when absent. */
static int sw_member(const struct tf *t, json_t *obj, const char *at, uint16_t *sw)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    *sw = 0x9000;
    if (string_member(t, obj, at, "sw", false, &s) != 0)
        return -1;
    if (s == NULL)
        return 0;
    path_key(p, at, "sw");
    unsigned v = 0;
    bool ok = strlen(s) == 4;
    for (size_t i = 0; ok && i < 4; i++) {
        int d = hex_digit(s[i]);
        ok = d >= 0;
        v = v << 4 | (unsigned)(ok ? d : 0);
    }
    if (!ok)
        return fail(t, p, "%s is not 4 hex digits", quote(q, s));
    if ((v >> 12) != 6 && (v >> 12) != 9)
        return fail(t, p, "%s is not a status word (SW1 is 6x or 9x)", quote(q, s));
    *sw = (uint16_t)v;
    return 0;
}

/* A readout's command: "apdu", a whole short command APDU (case 1 to 4), and "sw". */
static int command_member(const struct tf *t, json_t *obj, const char *at,
                          struct ct_command *c)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "apdu", true, &s) != 0)
        return -1;
    path_key(p, at, "apdu");
    if (hex_field(t, p, s, c->apdu, sizeof c->apdu, &c->len) != 0)
        return -1;
    struct capdu cmd;
    if (apdu_parse(c->apdu, c->len, &cmd) != 0 || cmd.extended)
        return fail(t, p, "%s is not a short command APDU (CLA INS P1 P2, then Lc and data, "
                    "Le, or both)", quote(q, s));
    return sw_member(t, obj, at, &c->expect_sw);
}

/* ---- names ------------------------------------------------------------------------------- */

/* Index of the entry named name among n entries of stride bytes whose name is at offset off;
 * n when none. */
static size_t find_name(const void *base, size_t n, size_t stride, size_t off, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp((const char *)base + i * stride + off, name) == 0)
            return i;
    return n;
}

#define FIND(arr, n, type, key) find_name((arr), (n), sizeof(type), offsetof(type, name), (key))

/* Refuses the name of entry i (path at) when one of the i entries before it has it. */
static int unique(const struct tf *t, const char *at, const char *what, size_t found, size_t i,
                  const char *name)
{
    char p[TF_PATH], q[TF_QUOTE];
    if (found == i)
        return 0;
    return fail(t, path_key(p, at, "name"), "%s %s is defined twice (entries %zu and %zu)",
                what, quote(q, name), found, i);
}

/* ---- designs and readouts ---------------------------------------------------------------- */

static int color_member(const struct tf *t, json_t *obj, const char *at, const char *key,
                        uint32_t *rgb)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, key, true, &s) != 0)
        return -1;
    if (cardface_parse_color(s, rgb) != 0)
        return fail(t, path_key(p, at, key), "%s is not a color #rrggbb", quote(q, s));
    return 0;
}

static int parse_designs(const struct tf *t, json_t *root, struct ct_file *f)
{
    static const char *const keys[] = { "name", "background", "accent", "text", "title" };
    json_t *arr, *o;
    size_t n;
    char p[TF_PATH];
    if (array_member(t, root, "", "designs", false, 0, CT_MAX_DESIGNS, &arr, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct cardface_design *d = &f->designs[i];
        if (entry(t, arr, "designs", i, keys, COUNT(keys), p, &o) != 0 ||
            name_member(t, o, p, "name", d->name) != 0 ||
            unique(t, p, "design", FIND(f->designs, i, struct cardface_design, d->name), i,
                   d->name) != 0 ||
            color_member(t, o, p, "background", &d->background) != 0 ||
            color_member(t, o, p, "accent", &d->accent) != 0 ||
            color_member(t, o, p, "text", &d->text) != 0 ||
            text_member(t, o, p, "title", false, 0, sizeof d->title - 1, d->title) != 0)
            return -1;
        f->ndesigns = i + 1;
    }
    return 0;
}

static int parse_type_readouts(const struct tf *t, json_t *root, struct ct_file *f)
{
    static const char *const keys[] = { "name", "apdu", "sw", "priority" };
    json_t *arr, *o;
    size_t n;
    char p[TF_PATH], pp[TF_PATH];
    if (array_member(t, root, "", "type_readouts", false, 0, CT_MAX_READOUTS, &arr, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct ct_type_readout *r = &f->type_readouts[i];
        long long prio;
        if (entry(t, arr, "type_readouts", i, keys, COUNT(keys), p, &o) != 0 ||
            name_member(t, o, p, "name", r->name) != 0 ||
            unique(t, p, "type readout",
                   FIND(f->type_readouts, i, struct ct_type_readout, r->name), i, r->name) != 0 ||
            command_member(t, o, p, &r->cmd) != 0 ||
            int_member(t, o, p, "priority", true, 0, TF_PRIORITY_MAX, 0, &prio) != 0)
            return -1;
        r->priority = (int)prio;
        for (size_t j = 0; j < i; j++)
            if (f->type_readouts[j].priority == r->priority)
                return fail(t, path_key(pp, p, "priority"), "%d is already the priority of %s "
                            "(the order of the readouts must be defined)", r->priority,
                            f->type_readouts[j].name);
        f->ntype_readouts = i + 1;
    }
    return 0;
}

static int encoding_member(const struct tf *t, json_t *obj, const char *at,
                           enum ct_encoding *e)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "encoding", true, &s) != 0)
        return -1;
    if (ct_encoding_parse(s, e) != 0)
        return fail(t, path_key(p, at, "encoding"), "%s is not an encoding (%s, %s or %s)",
                    quote(q, s), ct_encoding_name(CT_ENC_ASCII), ct_encoding_name(CT_ENC_HEX),
                    ct_encoding_name(CT_ENC_BCD));
    return 0;
}

static int parse_identity_readout(const struct tf *t, json_t *o, const char *at,
                                  struct ct_identity_readout *r)
{
    static const char *const step_keys[] = { "apdu", "sw" };
    json_t *arr, *s;
    size_t n;
    char p[TF_PATH], sp[TF_PATH];
    if (encoding_member(t, o, at, &r->encoding) != 0 ||
        array_member(t, o, at, "steps", true, 1, CT_MAX_READOUT_STEPS, &arr, &n) != 0)
        return -1;
    path_key(p, at, "steps");
    for (size_t i = 0; i < n; i++) {
        if (entry(t, arr, p, i, step_keys, COUNT(step_keys), sp, &s) != 0 ||
            command_member(t, s, sp, &r->steps[i]) != 0)
            return -1;
        r->nsteps = i + 1;
    }
    return 0;
}

static int parse_identity_readouts(const struct tf *t, json_t *root, struct ct_file *f)
{
    static const char *const keys[] = { "name", "encoding", "steps" };
    json_t *arr, *o;
    size_t n;
    char p[TF_PATH];
    if (array_member(t, root, "", "identity_readouts", false, 0, CT_MAX_READOUTS, &arr, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct ct_identity_readout *r = &f->identity_readouts[i];
        if (entry(t, arr, "identity_readouts", i, keys, COUNT(keys), p, &o) != 0 ||
            name_member(t, o, p, "name", r->name) != 0 ||
            unique(t, p, "identity readout",
                   FIND(f->identity_readouts, i, struct ct_identity_readout, r->name), i,
                   r->name) != 0 ||
            parse_identity_readout(t, o, p, r) != 0)
            return -1;
        f->nidentity_readouts = i + 1;
    }
    return 0;
}

/* ---- card types -------------------------------------------------------------------------- */

/* The most bytes item it adds to a command (see enum ct_kind). */
static size_t item_encoded_max(const struct ct_item *it)
{
    switch (it->kind) {
    case CT_DATE:
        return 4;
    case CT_HEX:
        return it->max_len / 2;
    case CT_TEXT:
    case CT_DIGITS:
    case CT_SECRET:
        break;
    }
    return it->max_len;
}

/* The most bytes the built-in item name adds to a command of type ty (struct ct_step). */
static size_t builtin_encoded_max(const char *name, const struct ct_type *ty)
{
    if (strcmp(name, "identity") == 0)
        return IDB_IDENTITY_MAX;
    if (strcmp(name, "card_type") == 0)
        return ty->type_value_len;
    if (strcmp(name, "issue_count") == 0)
        return 2;
    if (strcmp(name, "role") == 0)
        return 1;
    if (strcmp(name, "puk") == 0 || strcmp(name, "admin_pin") == 0)
        return SECRETS_PIN_MAX;
    return CT_DATA_MAX; /* unknown here: assume the worst */
}

static int kind_member(const struct tf *t, json_t *obj, const char *at, enum ct_kind *k)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "kind", true, &s) != 0)
        return -1;
    if (ct_kind_parse(s, k) != 0)
        return fail(t, path_key(p, at, "kind"), "%s is not a kind (%s, %s, %s, %s or %s)",
                    quote(q, s), ct_kind_name(CT_TEXT), ct_kind_name(CT_DIGITS),
                    ct_kind_name(CT_DATE), ct_kind_name(CT_SECRET), ct_kind_name(CT_HEX));
    return 0;
}

/* "max": characters of an imported value. A date has exactly 10 (YYYY-MM-DD; "max" may be left
 * out), a secret at least 4 (ct_check_value), hex digits an even number. */
static int max_member(const struct tf *t, json_t *obj, const char *at, struct ct_item *it)
{
    char p[TF_PATH];
    long long v;
    bool date = it->kind == CT_DATE;
    if (int_member(t, obj, at, "max", !date, 1, CT_ITEM_MAX, TF_DATE_LEN, &v) != 0)
        return -1;
    path_key(p, at, "max");
    if (date && v != TF_DATE_LEN)
        return fail(t, p, "%lld, but a date has %u characters (YYYY-MM-DD)", v, TF_DATE_LEN);
    if (it->kind == CT_SECRET && v < 4)
        return fail(t, p, "%lld, but a secret has at least 4 characters", v);
    if (it->kind == CT_HEX && v % 2 != 0)
        return fail(t, p, "%lld, but a hex value has an even number of digits", v);
    it->max_len = (unsigned)v;
    return 0;
}

static int parse_items(const struct tf *t, json_t *obj, const char *at, struct ct_type *ty)
{
    static const char *const keys[] = { "name", "kind", "max", "required" };
    json_t *arr, *o;
    size_t n;
    char ap[TF_PATH], p[TF_PATH], pp[TF_PATH], q[TF_QUOTE];
    if (array_member(t, obj, at, "items", false, 0, CT_MAX_ITEMS, &arr, &n) != 0)
        return -1;
    path_key(ap, at, "items");
    for (size_t i = 0; i < n; i++) {
        struct ct_item *it = &ty->items[i];
        if (entry(t, arr, ap, i, keys, COUNT(keys), p, &o) != 0 ||
            name_member(t, o, p, "name", it->name) != 0)
            return -1;
        if (ct_builtin_item(it->name))
            return fail(t, path_key(pp, p, "name"), "%s is a built-in item", quote(q, it->name));
        if (unique(t, p, "item", FIND(ty->items, i, struct ct_item, it->name), i, it->name) != 0 ||
            kind_member(t, o, p, &it->kind) != 0 || max_member(t, o, p, it) != 0 ||
            bool_member(t, o, p, "required", false, &it->required) != 0)
            return -1;
        ty->nitems = i + 1;
    }
    return 0;
}

/* A step's "item": one of the type's items or a built-in; *max its most encoded bytes. */
static int step_item(const struct tf *t, json_t *o, const char *at, const struct ct_type *ty,
                     struct ct_step *s, size_t *max)
{
    const char *v;
    char p[TF_PATH], q[TF_QUOTE];
    *max = 0;
    if (string_member(t, o, at, "item", false, &v) != 0)
        return -1;
    if (v == NULL)
        return 0;
    path_key(p, at, "item");
    const struct ct_item *it = valid_name(v) ? ct_find_item(ty, v) : NULL;
    if (it != NULL)
        *max = item_encoded_max(it);
    else if (valid_name(v) && ct_builtin_item(v))
        *max = builtin_encoded_max(v, ty);
    else
        return fail(t, p, "%s is neither an item of %s nor a built-in (identity, card_type, "
                    "issue_count, role, puk, admin_pin)", quote(q, v), ty->name);
    memcpy(s->item, v, strlen(v) + 1);
    return 0;
}

/* A personalization step: label, 4-byte header, optional literal data and item, sw. */
static int parse_step(const struct tf *t, json_t *o, const char *at, const struct ct_type *ty,
                      struct ct_step *s)
{
    const char *v;
    char p[TF_PATH], q[TF_QUOTE];
    uint8_t hdr[CT_APDU_MAX];
    size_t len, item_max;
    if (text_member(t, o, at, "label", true, 1, CT_LABEL_MAX, s->label) != 0 ||
        string_member(t, o, at, "apdu", true, &v) != 0 ||
        hex_field(t, path_key(p, at, "apdu"), v, hdr, sizeof hdr, &len) != 0)
        return -1;
    if (len != 4)
        return fail(t, p, "%s is %zu bytes, but a step's apdu is the 4-byte header CLA INS P1 "
                    "P2 (Lc follows from data and item)", quote(q, v), len);
    memcpy(s->header, hdr, 4);
    if (string_member(t, o, at, "data", false, &v) != 0)
        return -1;
    if (v != NULL) {
        if (hex_field(t, path_key(p, at, "data"), v, s->data, sizeof s->data, &s->data_len) != 0)
            return -1;
        if (s->data_len == 0)
            return fail(t, p, "empty (leave \"data\" out for none)");
    }
    if (step_item(t, o, at, ty, s, &item_max) != 0 || sw_member(t, o, at, &s->expect_sw) != 0)
        return -1;
    if (s->data_len + item_max > CT_DATA_MAX)
        return fail(t, at, "%zu bytes of data and up to %zu of item %s exceed the %u bytes of a "
                    "command", s->data_len, item_max, s->item, CT_DATA_MAX);
    return 0;
}

static int parse_scripts(const struct tf *t, json_t *obj, const char *at, struct ct_type *ty)
{
    const char *keys[CT_ROLES];
    json_t *scripts, *arr, *o;
    size_t n;
    char sp[TF_PATH], rp[TF_PATH], p[TF_PATH];
    for (int r = 0; r < CT_ROLES; r++)
        keys[r] = ct_role_name((enum ct_role)r);
    if (member(t, obj, at, "scripts", JSON_OBJECT, true, &scripts) != 0 ||
        check_keys(t, scripts, path_key(sp, at, "scripts"), keys, CT_ROLES) != 0)
        return -1;
    for (int r = 0; r < CT_ROLES; r++) {
        if (array_member(t, scripts, sp, keys[r], true, 1, CT_MAX_STEPS, &arr, &n) != 0)
            return -1;
        path_key(rp, sp, keys[r]);
        for (size_t i = 0; i < n; i++) {
            static const char *const step_keys[] = { "label", "apdu", "data", "item", "sw" };
            if (entry(t, arr, rp, i, step_keys, COUNT(step_keys), p, &o) != 0 ||
                parse_step(t, o, p, ty, &ty->script[r][i]) != 0)
                return -1;
            ty->nsteps[r] = i + 1;
        }
    }
    return 0;
}

/* "type_value" (printable ASCII) or "type_value_hex": 1..CT_TYPE_VALUE_MAX bytes. */
static int parse_type_value(const struct tf *t, json_t *obj, const char *at, struct ct_type *ty)
{
    const char *text, *hex;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "type_value", false, &text) != 0 ||
        string_member(t, obj, at, "type_value_hex", false, &hex) != 0)
        return -1;
    if (text != NULL && hex != NULL)
        return fail(t, at, "both type_value and type_value_hex given: one only");
    if (text == NULL && hex == NULL)
        return fail(t, path_key(p, at, "type_value"), "missing (or type_value_hex)");
    if (hex != NULL) {
        if (hex_field(t, path_key(p, at, "type_value_hex"), hex, ty->type_value,
                       sizeof ty->type_value, &ty->type_value_len) != 0)
            return -1;
        if (ty->type_value_len == 0)
            return fail(t, p, "empty, expected 1 to %u bytes", CT_TYPE_VALUE_MAX);
        return 0;
    }
    size_t n = strlen(text);
    bool ok = n >= 1 && n <= CT_TYPE_VALUE_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = text[i] >= 0x20 && text[i] <= 0x7E;
    if (!ok)
        return fail(t, path_key(p, at, "type_value"), "%s is not 1 to %u printable ASCII "
                    "characters (type_value_hex takes any bytes)", quote(q, text),
                    CT_TYPE_VALUE_MAX);
    memcpy(ty->type_value, text, n);
    ty->type_value_len = n;
    return 0;
}

static int interface_member(const struct tf *t, json_t *obj, const char *at, struct ct_type *ty)
{
    static const char *const names[] = { "contact", "dual", "contactless" };
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "interface", true, &s) != 0)
        return -1;
    for (size_t i = 0; i < COUNT(names); i++)
        if (strcmp(s, names[i]) == 0) {
            memcpy(ty->interface, s, strlen(s) + 1);
            return 0;
        }
    return fail(t, path_key(p, at, "interface"), "%s is not an interface (contact, dual or "
                "contactless)", quote(q, s));
}

/* Optional "stripe_iin": an issuer identification number of 6 or 8 digits (ISO/IEC 7812-1). */
static int iin_member(const struct tf *t, json_t *obj, const char *at, struct ct_type *ty)
{
    const char *s;
    char p[TF_PATH], q[TF_QUOTE];
    if (string_member(t, obj, at, "stripe_iin", false, &s) != 0)
        return -1;
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    bool ok = n == 6 || n == 8;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (!ok)
        return fail(t, path_key(p, at, "stripe_iin"), "%s is not an issuer identification "
                    "number (6 or 8 digits)", quote(q, s));
    memcpy(ty->stripe_iin, s, n + 1);
    return 0;
}

/* A reference to a part defined in the same file: found says whether it is. */
static int reference(const struct tf *t, const char *at, const char *key, const char *what,
                     const char *name, size_t found, size_t n)
{
    char p[TF_PATH], q[TF_QUOTE];
    if (found < n)
        return 0;
    return fail(t, path_key(p, at, key), "%s is not %s defined in this file", quote(q, name),
                what);
}

/* Design, type readout and identity readout of ty: names, then defined in f. */
static int parse_references(const struct tf *t, json_t *o, const char *at,
                            const struct ct_file *f, struct ct_type *ty)
{
    if (name_member(t, o, at, "design", ty->design) != 0 ||
        reference(t, at, "design", "a design", ty->design,
                  FIND(f->designs, f->ndesigns, struct cardface_design, ty->design),
                  f->ndesigns) != 0)
        return -1;
    if (name_member(t, o, at, "type_readout", ty->type_readout) != 0 ||
        reference(t, at, "type_readout", "a type readout", ty->type_readout,
                  FIND(f->type_readouts, f->ntype_readouts, struct ct_type_readout,
                       ty->type_readout), f->ntype_readouts) != 0)
        return -1;
    if (name_member(t, o, at, "identity_readout", ty->identity_readout) != 0 ||
        reference(t, at, "identity_readout", "an identity readout", ty->identity_readout,
                  FIND(f->identity_readouts, f->nidentity_readouts, struct ct_identity_readout,
                       ty->identity_readout), f->nidentity_readouts) != 0)
        return -1;
    return 0;
}

/* Refuses a second type reached by the same (type readout, type value). */
static int unambiguous(const struct tf *t, const char *at, const struct ct_file *f, size_t i)
{
    const struct ct_type *ty = &f->types[i];
    for (size_t j = 0; j < i; j++) {
        const struct ct_type *o = &f->types[j];
        if (strcmp(o->type_readout, ty->type_readout) == 0 &&
            o->type_value_len == ty->type_value_len &&
            memcmp(o->type_value, ty->type_value, ty->type_value_len) == 0)
            return fail(t, at, "type_readout %s and this type value already identify %s: the "
                        "correlation would be ambiguous", ty->type_readout, o->name);
    }
    return 0;
}

static int parse_types(const struct tf *t, json_t *root, struct ct_file *f)
{
    static const char *const keys[] = { "name", "description", "interface", "design",
                                        "stripe_iin", "type_readout", "type_value",
                                        "type_value_hex", "identity_readout", "items",
                                        "scripts" };
    json_t *arr, *o;
    size_t n;
    char p[TF_PATH];
    if (array_member(t, root, "", "card_types", false, 0, CT_MAX_TYPES, &arr, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct ct_type *ty = &f->types[i];
        if (entry(t, arr, "card_types", i, keys, COUNT(keys), p, &o) != 0 ||
            name_member(t, o, p, "name", ty->name) != 0 ||
            unique(t, p, "card type", FIND(f->types, i, struct ct_type, ty->name), i,
                   ty->name) != 0 ||
            text_member(t, o, p, "description", false, 0, CT_TEXT_MAX, ty->description) != 0 ||
            interface_member(t, o, p, ty) != 0 || iin_member(t, o, p, ty) != 0 ||
            parse_references(t, o, p, f, ty) != 0 || parse_type_value(t, o, p, ty) != 0 ||
            unambiguous(t, p, f, i) != 0 || parse_items(t, o, p, ty) != 0 ||
            parse_scripts(t, o, p, ty) != 0)
            return -1;
        f->ntypes = i + 1;
    }
    return 0;
}

/* ---- the file ---------------------------------------------------------------------------- */

static int parse_root(const struct tf *t, json_t *root, struct ct_file *f)
{
    static const char *const keys[] = { "format", "designs", "type_readouts",
                                        "identity_readouts", "card_types" };
    const char *format;
    char q[TF_QUOTE];
    if (!json_is_object(root))
        return fail(t, "", "%s, expected an object", json_kind(json_typeof(root)));
    if (check_keys(t, root, "", keys, COUNT(keys)) != 0 ||
        string_member(t, root, "", "format", true, &format) != 0)
        return -1;
    if (strcmp(format, TYPEFILE_FORMAT) != 0)
        return fail(t, "format", "%s, expected \"%s\"", quote(q, format), TYPEFILE_FORMAT);
    if (parse_designs(t, root, f) != 0 || parse_type_readouts(t, root, f) != 0 ||
        parse_identity_readouts(t, root, f) != 0 || parse_types(t, root, f) != 0)
        return -1;
    if (f->ndesigns + f->ntype_readouts + f->nidentity_readouts + f->ntypes == 0)
        return fail(t, "", "defines nothing (no designs, readouts or card types)");
    return 0;
}

/* Parses what jansson loaded (root NULL: it failed with je) and releases it. */
static int finish(const struct tf *t, json_t *root, const json_error_t *je, struct ct_file *out)
{
    int rc = -1;
    if (root != NULL) {
        rc = parse_root(t, root, out);
        json_decref(root);
    } else if (t->err != NULL && t->errlen > 0) {
        if (json_error_code(je) == json_error_cannot_open_file)
            snprintf(t->err, t->errlen, "%s", je->text);
        else
            snprintf(t->err, t->errlen, "%s:%d:%d: JSON syntax error: %s", t->source, je->line,
                     je->column, je->text);
    }
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int typefile_parse(const char *text, size_t len, const char *source, struct ct_file *out,
                   char *err, size_t errlen)
{
    struct tf t = { source != NULL ? source : "card-type file", err, errlen };
    json_error_t je;
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    return finish(&t, root, &je, out);
}

int typefile_load(const char *path, struct ct_file *out, char *err, size_t errlen)
{
    struct tf t = { path, err, errlen };
    json_error_t je;
    struct stat st;
    memset(out, 0, sizeof *out);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fail(&t, "", "not a regular file");
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    return finish(&t, root, &je, out);
}

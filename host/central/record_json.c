/* See record_json.h. */
#include "record_json.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"

json_t *record_to_json(const struct idb_record *r, bool with_items)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "identity", r->identity,
                          "card_type", r->card_type, "design", r->design, "issued",
                          r->issued, "issue_count", (json_int_t)r->issue_count, "backup_count",
                          (json_int_t)r->backup_count);
    if (j != NULL && r->has_serial) {
        char serial[2 * IDB_SERIAL_LEN + 1];
        hex_encode(r->card_serial, IDB_SERIAL_LEN, 0, serial, sizeof serial);
        if (json_object_set_new(j, "card_serial", json_string(serial)) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    if (j == NULL || !with_items)
        return j;
    json_t *items = json_object();
    if (items == NULL || json_object_set_new(j, "items", items) != 0) {
        json_decref(j);
        return NULL;
    }
    for (size_t i = 0; i < r->nitems; i++) {
        if (json_object_set_new(items, r->items[i].name, json_string(r->items[i].value)) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

int json_text_copy(const json_t *j, const char *name, char *out, size_t cap, bool may_be_empty)
{
    const char *s = json_string_value(json_object_get(j, name));
    if (s == NULL || strlen(s) >= cap || (!may_be_empty && s[0] == '\0'))
        return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int record_text(const json_t *j, const char *name, char *out, size_t cap,
                       bool may_be_empty, char *err, size_t errlen)
{
    if (json_text_copy(j, name, out, cap, may_be_empty) == 0)
        return 0;
    snprintf(err, errlen, "record field \"%s\" is missing, not a string or too long", name);
    return -1;
}

static int record_count(const json_t *j, const char *name, unsigned *out, char *err,
                        size_t errlen)
{
    json_t *v = json_object_get(j, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xFFFF) {
        snprintf(err, errlen, "record field \"%s\" is not a count", name);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

/* The fields of a record other than its items. */
static int record_fields(const json_t *j, struct idb_record *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(j)) {
        snprintf(err, errlen, "the record is not a JSON object");
        return -1;
    }
    if (record_text(j, "identity", out->identity, sizeof out->identity, false, err, errlen) ||
        record_text(j, "card_type", out->card_type, sizeof out->card_type, false, err, errlen) ||
        record_text(j, "design", out->design, sizeof out->design, true, err, errlen) ||
        record_count(j, "issue_count", &out->issue_count, err, errlen) ||
        record_count(j, "backup_count", &out->backup_count, err, errlen))
        return -1;
    json_t *issued = json_object_get(j, "issued");
    if (!json_is_boolean(issued)) {
        snprintf(err, errlen, "record field \"issued\" is not a boolean");
        return -1;
    }
    out->issued = json_is_true(issued);
    const char *serial = json_string_value(json_object_get(j, "card_serial"));
    if (serial != NULL) {
        size_t n = 0;
        char e[64];
        if (hex_decode(serial, out->card_serial, IDB_SERIAL_LEN, &n, e, sizeof e) != 0 ||
            n != IDB_SERIAL_LEN) {
            snprintf(err, errlen, "record field \"card_serial\" is not %u bytes of hex",
                     IDB_SERIAL_LEN);
            return -1;
        }
        out->has_serial = true;
    }
    return 0;
}

int record_from_json_summary(const json_t *j, struct idb_record *out, char *err, size_t errlen)
{
    return record_fields(j, out, err, errlen);
}

int record_from_json(const json_t *j, struct idb_record *out, char *err, size_t errlen)
{
    if (record_fields(j, out, err, errlen) != 0)
        return -1;
    json_t *items = json_object_get(j, "items");
    if (!json_is_object(items) || json_object_size(items) > CT_MAX_ITEMS) {
        snprintf(err, errlen, "record field \"items\" is missing or holds more than %u items",
                 CT_MAX_ITEMS);
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach(items, name, v) {
        struct idb_item *it = &out->items[out->nitems];
        const char *s = json_string_value(v);
        if (strlen(name) == 0 || strlen(name) >= sizeof it->name || s == NULL ||
            strlen(s) >= sizeof it->value) {
            snprintf(err, errlen, "record item \"%.*s\" has a bad name or value",
                     (int)(strlen(name) < 40 ? strlen(name) : 40), name);
            idb_record_wipe(out);
            return -1;
        }
        memcpy(it->name, name, strlen(name) + 1);
        memcpy(it->value, s, strlen(s) + 1);
        out->nitems++;
    }
    return 0;
}

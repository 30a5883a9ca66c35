/* An issuance record as the JSON of the central protocol (docs/central.md, "Operations"):
 *   {"identity": "...", "card_type": "...", "design": "...", "issued": true,
 *    "issue_count": 3, "backup_count": 1, "card_serial": "0011223344556677",
 *    "items": {"name": "value", ...}}
 * ("card_serial": the record's current card, absent when it has none).
 * "items" only when the record is handed over for personalization (claim), never in a lookup.
 * The values of items travel inside the mutually authenticated TLS connection only and are
 * never logged. */
#ifndef CENTRAL_RECORD_JSON_H
#define CENTRAL_RECORD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "idb.h"

/* A new JSON object for r, with its items when with_items. NULL when out of memory. */
json_t *record_to_json(const struct idb_record *r, bool with_items);

/* Fills out (zeroed first; id 0, no serial, no pending) from the JSON of a record with its
 * items. Returns 0, or -1 with a message naming the field (never a value) in err. */
int record_from_json(const json_t *j, struct idb_record *out, char *err, size_t errlen);

/* Copies the string field name of the object j into out (cap bytes with its NUL). Returns 0,
 * or -1 when it is missing, not a string, too long, or empty and !may_be_empty. */
int json_text_copy(const json_t *j, const char *name, char *out, size_t cap, bool may_be_empty);

/* The same for a record without items (a lookup's answer). */
int record_from_json_summary(const json_t *j, struct idb_record *out, char *err,
                             size_t errlen);

#endif

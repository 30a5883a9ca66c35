/* The card-type file of icissue (docs/issuance.md, "Card-type file"): a human-readable JSON
 * document defining print designs, type readouts, identity readouts and card types with their
 * data items and personalization scripts. This module parses it, strictly, into a struct
 * ct_file (cardtype.h) that idb_types_store puts into the issuance file; it is the one place
 * that knows the JSON layout.
 *
 * Everything is checked before anything is stored: unknown keys, JSON types, names, the limits
 * of cardtype.h, hex strings, status words, colors, references between the parts of the file
 * (a type's design and readouts must be defined in the same file), duplicate names, and that
 * the correlation table (type readout, type value) -> card type stays unambiguous. A message
 * names the file and the JSON path of the offending value, e.g.
 *   types.json: card_types[0].scripts.original[3].sw: "90000" is not 4 hex digits
 * and a JSON syntax error its line and column (types.json:12:5: ...). The file holds no
 * secrets: PINs and shares come from records and the issuer's secrets at issuance. */
#ifndef TYPEFILE_H
#define TYPEFILE_H

#include <stddef.h>

#include "cardtype.h"

#define TYPEFILE_FORMAT "icissue-types/1" /* the "format" member, exactly */

/* Parses a card-type file held in text (len bytes, need not be NUL-terminated) into *out.
 * source names the input in messages (NULL: "card-type file"). Returns 0, or -1 with a message
 * in err naming the JSON path (or the line and column of a syntax error); *out is then zeroed.
 * out is large (see struct ct_file): allocate it. */
int typefile_parse(const char *text, size_t len, const char *source, struct ct_file *out,
                   char *err, size_t errlen);

/* Reads and parses the card-type file at path, named by path in messages. Returns 0, or -1 with
 * a message in err (the file cannot be read, or as typefile_parse); *out is then zeroed. */
int typefile_load(const char *path, struct ct_file *out, char *err, size_t errlen);

#endif

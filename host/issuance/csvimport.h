/* Importing issuance records from a CSV file (`icissue import --csv FILE`; docs/issuance.md,
 * "Importing records (CSV)").
 *
 * The file is RFC 4180 CSV (quoted fields with commas, quotes and line breaks; CRLF or LF; an
 * optional UTF-8 byte order mark). Its first row names the columns: "identity" and
 * "card_type" are required, "design" is optional, every other column is a data item. Each row
 * is checked against its card type as the issuance file holds it (cardtype.h, idb.h), and all
 * rows go in as one transaction: when any row is bad, nothing is imported, and the report
 * lists the problems by line so that one run shows them all. The file is streamed in chunks,
 * never read whole. Messages never contain the value of a secret or hex item. */
#ifndef CSVIMPORT_H
#define CSVIMPORT_H

#include <stddef.h>
#include <stdio.h>

#include "idb.h"

#define CSVIMPORT_MESSAGES 20u     /* error lines kept; the others are only counted */
#define CSVIMPORT_MESSAGE_MAX 256u
#define CSVIMPORT_CHUNK 65536u     /* bytes read and parsed at a time */
#define CSVIMPORT_MAX_COLUMNS 512u
#define CSVIMPORT_FIELD_MAX 65536u /* a longer field stops the import (a lost quote) */

struct csvimport_report {
    unsigned long rows;     /* data rows read (the header not counted) */
    unsigned long imported; /* records inserted: rows on success, 0 on failure */
    unsigned long errors;   /* problems found, all of them */
    char messages[CSVIMPORT_MESSAGES][CSVIMPORT_MESSAGE_MAX]; /* "FILE:LINE: what" */
    unsigned nmessages;     /* the first min(errors, CSVIMPORT_MESSAGES) */
};

/* Imports the CSV file at path into db in one transaction (the caller must not have one
 * open). Line numbers in the report are those where a record starts. Returns 0 when every
 * row was imported; -1 when nothing was: either the file has errors (rep lists them, err
 * sums them up) or reading the file or the database failed (err says why). rep is filled in
 * both cases. */
int csvimport_file(struct idb *db, const char *path, struct csvimport_report *rep, char *err,
                   size_t errlen);

/* The same for CSV text held in memory (len bytes); source names it in messages. */
int csvimport_text(struct idb *db, const char *text, size_t len, const char *source,
                   struct csvimport_report *rep, char *err, size_t errlen);

/* Writes the report's messages to out, one a line, then "... and N more errors" when some
 * were only counted. */
void csvimport_report_print(const struct csvimport_report *rep, FILE *out);

#endif

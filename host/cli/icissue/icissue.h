/* What the command files of icissue share (icissue.c defines it): the issuance file option,
 * messages, the issuer's secrets, serial numbers and JSON strings. The commands: cmd_db.c
 * (init, types, import, list, show, history), cmd_issue.c (issue, reissue, batch, print),
 * cmd_cert.c (cert: the central's certificates).
 *
 * Conventions are those of cli.h: "icissue: error: <command>: <text>" on stderr, exit 0
 * success, 1 failure, EXIT_USAGE for a usage error; the values of secret and hex items, PINs
 * and shares are never printed. */
#ifndef ICISSUE_H
#define ICISSUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "idb.h"
#include "secrets.h"

#define ICISSUE_DB_DEFAULT "issuance.db"
#define ICISSUE_DB_ENV "ICISSUE_DB"

/* ---- commands (argv after the command name) ------------------------------------------ */

int icissue_cmd_init(int argc, char **argv);
int icissue_cmd_types(int argc, char **argv);
int icissue_cmd_import(int argc, char **argv);
int icissue_cmd_list(int argc, char **argv);
int icissue_cmd_show(int argc, char **argv);
int icissue_cmd_history(int argc, char **argv);
int icissue_cmd_issue(int argc, char **argv);
int icissue_cmd_reissue(int argc, char **argv);
int icissue_cmd_batch(int argc, char **argv);
int icissue_cmd_print(int argc, char **argv);
int icissue_cmd_cert(int argc, char **argv);
int icissue_cmd_serve(int argc, char **argv);

/* ---- helpers ------------------------------------------------------------------------- */

/* "icissue: error: CMD: ..." on stderr. Returns 1. */
int icissue_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The issuance file: opt (--db), else $ICISSUE_DB, else ICISSUE_DB_DEFAULT. */
const char *icissue_db_path(const char *opt);

/* Opens the existing issuance file at path (icissue_db_path). Returns 0, or 1 after printing
 * the error. */
int icissue_open_db(const char *cmd, const char *path, struct idb **db);

/* The operator's name for the history: opt, else $USER, else "operator". NULL after a usage
 * error was printed (longer than IDB_OPERATOR_MAX or with control characters). */
const char *icissue_operator(const char *cmd, const char *opt);

/* Reads the issuer's secrets file (puk = ..., admin = ...) into s when file is not NULL
 * (s stays empty otherwise). Returns 0, or 1 after printing the error (s wiped). */
int icissue_load_issuer(const char *cmd, const char *file, struct secrets *s);

/* A card serial as 16 upper-case hex digits. */
void icissue_serial_hex(const uint8_t s[IDB_SERIAL_LEN], char out[2 * IDB_SERIAL_LEN + 1]);

/* Parses a positive decimal count (1..max). Returns 0 or -1. */
int icissue_parse_count(const char *s, unsigned long max, unsigned long *out);

/* JSON string of a NUL-terminated text (NULL: null). */
void icissue_json_str(FILE *f, const char *s);

/* "HOST:PORT" or "[IPV6]:PORT" into host and port. Returns 0, or -1 when malformed or too
 * long. */
int icissue_split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap);

/* The help line of --db, its text at column width + 3 as the other options of the help text;
 * the reader URIs. Shared by the commands' help texts. */
void icissue_print_db_help(FILE *f, int width);
void icissue_print_uri_help(FILE *f);

#endif

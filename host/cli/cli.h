/* What the command-line programs share (host/cli/cli.c defines it): option parsing, error
 * and usage messages, opening a card, reading PINs and shares, JSON output, a progress bar,
 * the dispatch of main. Each program has its folder: icdup/ (icdup.c with main, then
 * cmd_raw.c (apdu, status), cmd_keys.c (init, keys), cmd_clone.c (clone), cmd_files.c
 * (encrypt, decrypt, recover)) and icissue/ (icissue.c with main, cmd_db.c, cmd_issue.c).
 *
 * Conventions: messages go to stderr as "<prog>: error: <command>: <text>"; a usage error adds
 * "Try '<prog> <command> --help'." and exits EXIT_USAGE; secrets are never printed. */
#ifndef ICDUP_CLI_H
#define ICDUP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "secrets.h"
#include "transport.h"

/* Exit status: 0 success, 1 failure, EXIT_USAGE for a usage error. */
#define EXIT_USAGE 2

/* The program's name in messages ("icdup"); each program's main file defines it. */
extern const char *const cli_prog;

/* -v / --verbose: trace every APDU of the cards opened by cli_open_card to stderr. */
extern bool cli_verbose;

/* ---- commands (argv after the command name) ----------------------------------------- */

int cli_cmd_apdu(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_readers(int argc, char **argv);
int cli_cmd_init(int argc, char **argv);
int cli_cmd_keys(int argc, char **argv);
int cli_cmd_clone(int argc, char **argv);
int cli_cmd_encrypt(int argc, char **argv);
int cli_cmd_decrypt(int argc, char **argv);
int cli_cmd_recover(int argc, char **argv);

/* ---- main --------------------------------------------------------------------------- */

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv after the command name */
};

/* Global options (-h, -v), then the command named by the first argument; usage prints the
 * program's help. Returns the exit status. */
int cli_main(int argc, char **argv, const struct cli_command *cmds, size_t ncmds,
             void (*usage)(FILE *f));

/* ---- messages ----------------------------------------------------------------------- */

/* "Try 'icdup CMD --help'." (or 'icdup --help' when cmd is NULL) on stderr. */
void cli_usage_hint(const char *cmd);

/* "icdup: error: CMD: MSG" and the hint; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *msg);

/* The reader-URI part of every help text. */
void cli_print_uri_help(FILE *f);

/* ---- options ------------------------------------------------------------------------ */

struct cli_opt {
    const char *name;   /* "--card" */
    bool has_arg;
    const char **value; /* has_arg */
    bool *flag;         /* !has_arg */
};

/* Parses argv against opts (terminated by a NULL name), plus -h/--help (sets *help) and
 * -v/--verbose (sets cli_verbose); positional arguments go to pos (capacity argc), "--" ends
 * the options. --name=value and --name value are both accepted. Returns 0 or EXIT_USAGE after
 * printing the error. */
int cli_parse_opts(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
                   bool *help, int *npos, char **pos);

/* cli_parse_opts with --help answered and the positional arguments in *pos, allocated:
 * returns -1 when the command goes on (free *pos then), else the exit status to return, *pos
 * freed: 0 after usage was printed for --help, 1 (out of memory) or EXIT_USAGE after the
 * error. */
int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              void (*usage)(FILE *f), int *npos, char ***pos);

/* cli_parse for a command that takes options only: a positional argument is refused with
 * noarg_msg. Returns -1 when the command goes on, else the exit status to return. */
int cli_parse_plain(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
                    void (*usage)(FILE *f), const char *noarg_msg);

/* ---- cards -------------------------------------------------------------------------- */

/* Opens the reader uri (NULL: "no card given" usage error) with tracing when verbose.
 * Returns 0, 1 (the reader failed) or EXIT_USAGE (no or bad URI), the message printed. */
int cli_open_card(const char *cmd, const char *uri, struct transport **t);

/* Same, for a card named by a required option opt ("--src"): "--src URI is required". */
int cli_open_named(const char *cmd, const char *uri, const char *opt, struct transport **t);

/* ---- secrets ------------------------------------------------------------------------ */

/* Reads the user PIN (want_pin) and/or the admin PIN (want_admin) from a secrets file or "-"
 * ("pin = ...", "admin = ..."), or asks for them on the terminal when file is NULL. what names
 * the card in prompts ("source card"). Returns 0, 1 (failure) or EXIT_USAGE. */
int cli_load_pins(const char *cmd, const char *file, const char *what, bool want_pin,
                  struct secret_pin *pin, bool want_admin, struct secret_pin *admin);

/* Where missing shares come from: a secrets file ("-": standard input), else the terminal. */
struct cli_share_source {
    const char *file;
};

/* dup_options.get_shares for a struct cli_share_source: adds every share of the file, or
 * asks the officers for the needed ones on the terminal. */
int cli_get_shares(void *ctx, uint8_t needed, struct secrets *s, char *err, size_t errlen);

/* ---- output ------------------------------------------------------------------------- */

/* A progress callback printing each line to stdout (flushed). */
void cli_progress_stdout(void *ctx, const char *line);

/* JSON string of len bytes (control and non-ASCII bytes as \u00XX). */
void cli_json_string(FILE *f, const uint8_t *s, size_t len);

/* JSON string of upper-case hex digits. */
void cli_json_hex(FILE *f, const uint8_t *b, size_t len);

/* JSON array of the share numbers in a bitmap ([1, 3]). */
void cli_json_share_list(FILE *f, uint8_t bitmap);

/* Flushes stdout. When that fails and rc is 0, prints "cannot write the output" and returns 1;
 * else returns rc. */
int cli_flush_stdout(int rc);

/* ---- progress bar ------------------------------------------------------------------- */

/* A progress bar on stderr, "WHAT [#########...............]  40%" (or " 12/30" in count
 * mode), redrawn in place on one line and erased when the work is done. Meant for a terminal:
 * the caller decides whether to draw it at all (on, usually isatty(STDERR_FILENO)). */
struct cli_bar {
    const char *what; /* the label before the bar */
    bool on;          /* draw at all */
    bool count;       /* "done/total" instead of a percentage */
    bool drawn;       /* a bar is on the screen */
    int pct;          /* the percentage drawn last (percentage mode) */
};

/* Sets b up; nothing is drawn yet. */
void cli_bar_init(struct cli_bar *b, const char *what, bool on, bool count);

/* Shows done of total (nothing when off or total is 0): in percentage mode only when the
 * percentage changed. Once done reaches total the line is erased. */
void cli_bar_update(struct cli_bar *b, uint64_t done, uint64_t total);

/* Erases the bar when one is drawn (before other output, or when the work stopped early); the
 * next cli_bar_update draws it again. */
void cli_bar_clear(struct cli_bar *b);

#endif

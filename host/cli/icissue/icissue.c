/* icissue: the issuance CLI. A thin front end over host/issuance/ (docs/issuance.md).
 * Exit status: 0 success, 1 failure (database, card, refusal), 2 usage.
 *
 * This file: main, the command table, the main usage and the helpers of icissue.h; the
 * commands are in cmd_db.c (init, types, import, list, show, history), cmd_issue.c (issue,
 * reissue, batch, print), cmd_cert.c (cert) and cmd_serve.c (serve); the helpers shared with icdup are in ../cli.c. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "cli.h"
#include "hex.h"
#include "icissue.h"
#include "idb.h"
#include "secrets.h"
#include "transport.h"

const char *const cli_prog = "icissue";

static void usage_main(FILE *f)
{
    fputs("usage: icissue [-v] COMMAND [options]\n"
          "\n"
          "Issues smart cards from an issuance file (SQLite, or PostgreSQL) and reissues\n"
          "lost or broken ones. Every command takes --db FILE|URI (default $" ICISSUE_DB_ENV
          ", else " ICISSUE_DB_DEFAULT "): a path or sqlite:PATH, or a PostgreSQL URI\n"
          "postgresql://USER@HOST[:PORT]/DATABASE (the password from ~/.pgpass or\n"
          "PGPASSWORD rather than the URI).\n"
          "\n"
          "Commands:\n"
          "  init                         create the issuance file, or bring its schema up\n"
          "                               to date\n"
          "  types   load FILE | list     load card types from a JSON card-type file; list\n"
          "                               the card types\n"
          "  import  --csv FILE           import records (all rows or none)\n"
          "  list    [--issued|--unissued] [--json] [--limit N]\n"
          "                               one line per record\n"
          "  show    ID | --id IDENTITY   a record, its items (secrets hidden) and history\n"
          "  history [--id IDENTITY]      the history of one record or of all\n"
          "  issue   --id IDENTITY --card URI [--role original|backup]\n"
          "                               personalize a blank card from a record\n"
          "  reissue (--from-card URI | --id IDENTITY) --to URI\n"
          "                               issue a new card for a broken or lost one and\n"
          "                               terminate the old card (--central HOST:PORT:\n"
          "                               at a branch, through the central system)\n"
          "  batch   --ids FILE --card-pool TEMPLATE\n"
          "                               issue one card per identity of a file\n"
          "  print   --id IDENTITY [--face OUT.png] [--stripe OUT.txt]\n"
          "                               render a record's card face and stripe data\n"
          "  cert    ca | server | branch | revoke | crl\n"
          "                               certificates and CRL of the central issuance\n"
          "                               system (mutually authenticated TLS)\n"
          "  serve   --listen HOST:PORT --cert --key --ca [--crl]\n"
          "                               the central issuance system for branches\n"
          "\n"
          "Options:\n"
          "  -v, --verbose  trace every APDU and status word to stderr (secrets redacted)\n"
          "  -h, --help     this help; 'icissue COMMAND --help' for one command\n"
          "\n",
          f);
    icissue_print_uri_help(f);
    fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
}

/* ---- helpers (icissue.h) ------------------------------------------------------------------ */

int icissue_fail(const char *cmd, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "icissue: error: %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

const char *icissue_db_path(const char *opt)
{
    if (opt != NULL)
        return opt;
    const char *env = getenv(ICISSUE_DB_ENV);
    if (env != NULL && env[0] != '\0')
        return env;
    return ICISSUE_DB_DEFAULT;
}

int icissue_open_db(const char *cmd, const char *path, struct idb **db)
{
    char err[1024];
    if (idb_open(path, false, db, err, sizeof err) != IDB_OK)
        return icissue_fail(cmd, "%s", err);
    return 0;
}

const char *icissue_operator(const char *cmd, const char *opt)
{
    const char *name = opt;
    if (name == NULL) {
        name = getenv("USER");
        if (name == NULL || name[0] == '\0' || strlen(name) > IDB_OPERATOR_MAX)
            name = "operator";
    }
    if (name[0] == '\0' || strlen(name) > IDB_OPERATOR_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "--operator needs 1 to %u characters", IDB_OPERATOR_MAX);
        cli_usage_error(cmd, msg);
        return NULL;
    }
    for (const char *c = name; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F) {
            cli_usage_error(cmd, "--operator contains a control character");
            return NULL;
        }
    return name;
}

int icissue_load_issuer(const char *cmd, const char *file, struct secrets *s)
{
    secrets_init(s);
    if (file == NULL)
        return 0;
    char err[512];
    if (secrets_load(file, s, err, sizeof err) != 0)
        return icissue_fail(cmd, "%s", err);
    return 0;
}

void icissue_serial_hex(const uint8_t s[IDB_SERIAL_LEN], char out[2 * IDB_SERIAL_LEN + 1])
{
    hex_encode(s, IDB_SERIAL_LEN, 0, out, 2 * IDB_SERIAL_LEN + 1);
}

int icissue_parse_count(const char *s, unsigned long max, unsigned long *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long v = 0;
    for (const char *c = s; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        unsigned d = (unsigned)(*c - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

void icissue_json_str(FILE *f, const char *s)
{
    if (s == NULL)
        fputs("null", f);
    else
        cli_json_string(f, (const uint8_t *)s, strlen(s));
}

void icissue_print_db_help(FILE *f, int width)
{
    fprintf(f, "  %-*s the issuance file: a path, sqlite:PATH or postgresql://...\n"
            "  %-*s (default: $" ICISSUE_DB_ENV ", else " ICISSUE_DB_DEFAULT ")\n", width,
            "--db FILE|URI", width, "");
}

int icissue_split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= pcap)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hcap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

void icissue_print_uri_help(FILE *f)
{
    fputs("Reader URIs:\n", f);
    transport_print_uri_help(f);
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct cli_command commands[] = {
    { "init", icissue_cmd_init },
    { "types", icissue_cmd_types },
    { "import", icissue_cmd_import },
    { "list", icissue_cmd_list },
    { "show", icissue_cmd_show },
    { "history", icissue_cmd_history },
    { "issue", icissue_cmd_issue },
    { "reissue", icissue_cmd_reissue },
    { "batch", icissue_cmd_batch },
    { "print", icissue_cmd_print },
    { "cert", icissue_cmd_cert },
    { "serve", icissue_cmd_serve },
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv, commands, sizeof commands / sizeof commands[0], usage_main);
}

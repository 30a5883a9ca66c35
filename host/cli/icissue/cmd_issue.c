/* icissue issue, reissue, batch, print: cards from records, over host/issuance/issue.c and
 * reissue.c (docs/issuance.md). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "card_ops.h"
#include "cardtype.h"
#include "cli.h"
#include "icissue.h"
#include "idb.h"
#include "ins.h"
#include "issue.h"
#include "branch.h"
#include "client.h"
#include "reissue.h"
#include "secrets.h"
#include "transport.h"

/* ---- help texts ------------------------------------------------------------------------- */

/* The options every card command of this file takes, and the card URIs. */
static void print_common_options(FILE *f)
{
    icissue_print_db_help(f, 18);
    fputs("  -v, --verbose      trace every APDU to stderr (PINs and shares redacted)\n"
          "  -h, --help         this help\n"
          "\n",
          f);
    icissue_print_uri_help(f);
}

static void usage_issue(FILE *f)
{
    fputs("usage: icissue issue --id IDENTITY --card URI [--role original|backup]\n"
          "                     [--type NAME] [--design NAME] [--secrets FILE]\n"
          "                     [--face OUT.png] [--stripe OUT.txt] [--operator NAME]\n"
          "                     [--abandon-pending] [--steps] [--db FILE]\n"
          "\n"
          "Personalizes a blank card from the record of IDENTITY: the personalization script\n"
          "of the record's card type for the role is run with the record's items, every\n"
          "status word checked, and the record is updated in one transaction with the card's\n"
          "success: an original card sets the issuance flag and increments the issuance\n"
          "count, a backup card increments the backup count. On any failure the record is\n"
          "not changed (the failure goes into the history) and the card, once a command was\n"
          "sent, is spoiled: terminated so it cannot pass for a good card. Refused before the\n"
          "card is touched: unknown record or type, an original for a record already issued\n"
          "(that is a reissue), a card that is not blank, an item or secret the script needs\n"
          "but lacks. A run interrupted on a card is finished (or its card spoiled) by the\n"
          "next run on the same card.\n"
          "\n"
          "  --id IDENTITY      the record\n"
          "  --card URI         the blank card\n"
          "  --role ROLE        original (default) or backup\n"
          "  --type NAME        another card type than the record's\n"
          "  --design NAME      another print design than the record's or the type's\n"
          "  --secrets FILE     the issuer's secrets file: \"puk = ...\" and \"admin = ...\"\n"
          "                     (mode 0600), for scripts that set the PUK and admin PIN\n"
          "  --face OUT.png     render the card face to OUT.png\n"
          "  --stripe OUT.txt   write the magnetic stripe tracks 1 and 2 to OUT.txt\n"
          "  --operator NAME    who issues, for the history (default: $USER)\n"
          "  --abandon-pending  another card of this record is pending from an interrupted\n"
          "                     run and cannot be brought back: record it as spoiled\n"
          "  --steps            print each script step as it passes (also with -v)\n",
          f);
    print_common_options(f);
    fputs("\nExit status: 0 issued, 1 refused or failed (the card is spoiled when it says so),\n"
          "2 usage error.\n",
          f);
}

static void usage_reissue(FILE *f)
{
    fputs("usage: icissue reissue --from-card URI --to URI [options]\n"
          "       icissue reissue --id IDENTITY --to URI [options]\n"
          "\n"
          "Issues a new card in place of a broken card (--from-card: still answers) or a lost\n"
          "one (--id). With --from-card the card type is read with the type readouts, the\n"
          "identity readout is chosen through the correlation table and the identity read\n"
          "from the card. The record is extracted into the reissuing file (JSON, mode 0600),\n"
          "its flag set to unissued, the new card issued while the flag says unissued and\n"
          "the issuance count incremented; then the old card, when present, is terminated\n"
          "(TERMINATE CARD USAGE after VERIFY of the issuer's admin PIN). A rerun after any\n"
          "interruption is safe: it finishes the work and never issues a second new card.\n"
          "\n"
          "  --from-card URI    the old card, read for its identity and terminated\n"
          "  --id IDENTITY      the record of a lost card (with --from-card: a check)\n"
          "  --to URI           the new, blank card\n"
          "  --type NAME        card type of the new card (e.g. a dual-interface card in\n"
          "                     place of a contact one); default: the record's\n"
          "  --design NAME      print design of the new card\n"
          "  --secrets FILE     the issuer's secrets file (puk, admin): the admin PIN also\n"
          "                     terminates the old card\n"
          "  --reissue-file PATH\n"
          "                     where the record is extracted (default:\n"
          "                     reissue-IDENTITY.json next to the issuance file; in the\n"
          "                     current directory on PostgreSQL)\n"
          "  --face OUT.png     render the new card's face\n"
          "  --stripe OUT.txt   write the new card's stripe data\n"
          "  --operator NAME    who reissues, for the history (default: $USER)\n"
          "  --abandon-pending  as for issue\n"
          "  --steps            print each script step as it passes (also with -v)\n"
          "\n"
          "At a branch office (docs/central.md): the record comes from the central issuance\n"
          "system, claimed for this branch, and is confirmed there with the new card; --db\n"
          "is the branch's own issuance file (card types; a copy of the claimed record).\n"
          "  --central HOST:PORT  the central system (icissue serve)\n"
          "  --cert FILE, --key FILE\n"
          "                     this branch's certificate and key (icissue cert branch)\n"
          "  --ca FILE          the CA of the central's certificate\n"
          "  --server-name NAME the name the central's certificate must carry (default:\n"
          "                     HOST)\n"
          "  --lease SECONDS    how long the claim stays reserved (default: the central's)\n",
          f);
    print_common_options(f);
    fputs("\nExit status: 0 reissued (or found reissued already), 1 failure, or the new card\n"
          "is issued but the old card present could not be terminated (rerun to terminate\n"
          "it), or the central system could not confirm it (rerun to confirm), 2 usage\n"
          "error.\n",
          f);
}

static void usage_batch(FILE *f)
{
    fputs("usage: icissue batch --ids FILE --card-pool TEMPLATE [--role original|backup]\n"
          "                     [--secrets FILE] [--faces DIR] [--design NAME]\n"
          "                     [--first N] [--operator NAME] [--db FILE]\n"
          "\n"
          "Issues one card per identity of FILE (one a line; blank lines and lines starting\n"
          "with '#' are skipped) on a pool of blank cards: TEMPLATE is a reader URI with \"%d\"\n"
          "or \"{n}\" where the card's number goes, 1 for the first identity, 2 for the next\n"
          "... (sim:/tmp/pool/card-%d.nvm). Each card is issued as 'icissue issue' does; a\n"
          "failure spoils that card only and the batch goes on. A progress bar goes to\n"
          "standard error when it is a terminal, else one line per card to standard output.\n"
          "The summary gives the cards issued and failed, the failed identities with the\n"
          "reason, and the rate in cards per second.\n"
          "\n"
          "  --ids FILE         the identities\n"
          "  --card-pool TMPL   the reader URI template of the blank cards\n"
          "  --first N          the number of the first card (default 1)\n"
          "  --role ROLE        original (default) or backup\n"
          "  --secrets FILE     the issuer's secrets file (puk, admin; mode 0600)\n"
          "  --faces DIR        render each card face to DIR/IDENTITY.png\n"
          "  --design NAME      print design of the cards\n"
          "  --operator NAME    who issues, for the history (default: $USER)\n",
          f);
    print_common_options(f);
    fputs("\nExit status: 0 every card issued, 1 a card failed or the batch could not start,\n"
          "2 usage error.\n",
          f);
}

static void usage_print(FILE *f)
{
    fputs("usage: icissue print --id IDENTITY [--face OUT.png] [--stripe OUT.txt]\n"
          "                     [--design NAME] [--db FILE]\n"
          "\n"
          "Renders the card face of a record to a PNG image (design, holder, member number,\n"
          "expiry, issuance count) and writes its magnetic stripe data (tracks 1 and 2, ISO/IEC\n"
          "7811/7813), without a card. The design is --design, else the record's, else its\n"
          "card type's.\n"
          "\n"
          "  --id IDENTITY      the record\n"
          "  --face OUT.png     the card face image\n"
          "  --stripe OUT.txt   the stripe data\n"
          "  --design NAME      another print design\n",
          f);
    icissue_print_db_help(f, 18);
    fputs("  -h, --help         this help\n"
          "\n"
          "Exit status: 0 written, 1 failure, 2 usage error.\n",
          f);
}

/* ---- shared ----------------------------------------------------------------------------- */

/* Parses --role (NULL: original). Returns 0, or EXIT_USAGE after the message. */
static int parse_role(const char *cmd, const char *s, enum ct_role *role)
{
    *role = CT_ORIGINAL;
    if (s != NULL && ct_role_parse(s, role) != 0)
        return cli_usage_error(cmd, "--role is original or backup");
    return 0;
}

static void print_outputs(const char *face, const char *stripe)
{
    if (face != NULL)
        printf("card face written to %s\n", face);
    if (stripe != NULL)
        printf("stripe data written to %s\n", stripe);
}

/* Prints an issuance failure; "the card is spoiled" is added unless err says it already. */
static void print_issue_failure(const char *cmd, const char *err, const struct issue_result *res)
{
    icissue_fail(cmd, "%s", err);
    if (res->spoiled && strstr(err, "spoiled") == NULL)
        icissue_fail(cmd, "the card is spoiled (terminated)");
}

/* ---- issue ------------------------------------------------------------------------------ */

int icissue_cmd_issue(int argc, char **argv)
{
    const char *dbopt = NULL, *identity = NULL, *card = NULL, *role_s = NULL, *design = NULL,
               *type = NULL, *secrets_file = NULL, *face = NULL, *stripe = NULL, *op = NULL;
    bool abandon = false, steps = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--id", true, &identity, NULL },
        { "--card", true, &card, NULL },
        { "--role", true, &role_s, NULL },
        { "--design", true, &design, NULL },
        { "--type", true, &type, NULL },
        { "--secrets", true, &secrets_file, NULL },
        { "--face", true, &face, NULL },
        { "--stripe", true, &stripe, NULL },
        { "--operator", true, &op, NULL },
        { "--abandon-pending", false, NULL, &abandon },
        { "--steps", false, NULL, &steps },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("issue", argc, argv, opts, usage_issue,
                                 "takes no argument (the record: --id IDENTITY)");
    if (rc >= 0)
        return rc;
    if (identity == NULL)
        return cli_usage_error("issue", "--id IDENTITY is required");
    if (card == NULL)
        return cli_usage_error("issue", "--card URI is required");
    enum ct_role role;
    if ((rc = parse_role("issue", role_s, &role)) != 0)
        return rc;
    const char *operator_name = icissue_operator("issue", op);
    if (operator_name == NULL)
        return EXIT_USAGE;

    struct secrets issuer;
    if ((rc = icissue_load_issuer("issue", secrets_file, &issuer)) != 0)
        return rc;
    struct idb *db = NULL;
    struct transport *t = NULL;
    rc = icissue_open_db("issue", icissue_db_path(dbopt), &db);
    if (rc == 0)
        rc = cli_open_named("issue", card, "--card", &t);
    if (rc != 0)
        goto out;
    struct cardop c;
    cardop_init(&c, t, "card");
    struct issue_params p = {
        .db = db,
        .identity = identity,
        .role = role,
        .card_type = type,
        .design = design,
        .issuer = secrets_file != NULL ? &issuer : NULL,
        .operator_name = operator_name,
        .face_png = face,
        .stripe_file = stripe,
        .abandon_pending = abandon,
        .progress = steps || cli_verbose ? cli_progress_stdout : NULL,
    };
    struct issue_result res;
    char err[1024];
    if (issue_card(&p, &c, &res, err, sizeof err) != 0) {
        print_issue_failure("issue", err, &res);
        rc = 1;
        goto out;
    }
    char serial[2 * IDB_SERIAL_LEN + 1];
    icissue_serial_hex(res.serial, serial);
    if (res.resumed)
        printf("the card had completed its script before an earlier run was interrupted: "
               "recorded now\n");
    if (role == CT_ORIGINAL)
        printf("issued card %s for %s: issuance count %u\n", serial, identity, res.issue_count);
    else
        printf("issued backup card %s for %s: backup count %u\n", serial, identity,
               res.issue_count);
    print_outputs(face, stripe);
    rc = cli_flush_stdout(0);
out:
    transport_close(t);
    idb_close(db);
    secrets_wipe(&issuer);
    return rc;
}

/* ---- reissue ---------------------------------------------------------------------------- */

/* The TLS client of a branch for --central HOST:PORT. Returns 0, or 1 after the message. */
static int icissue_open_central(const char *cmd, const char *hostport, const char *cert,
                                const char *key, const char *ca, const char *server_name,
                                struct central_client **out)
{
    char host[256], port[16], err[512];
    if (icissue_split_hostport(hostport, host, sizeof host, port, sizeof port) != 0)
        return icissue_fail(cmd, "--central %s is not HOST:PORT", hostport);
    struct central_client_config cfg = {
        .host = host, .port = port, .ca_cert = ca, .cert = cert, .key = key,
        .server_name = server_name,
    };
    if (central_client_open(&cfg, out, err, sizeof err) != 0)
        return icissue_fail(cmd, "%s", err);
    return 0;
}

/* struct central_link over the TLS client. */
static int icissue_central_call(void *ctx, json_t *req, json_t **resp, char *err, size_t errlen)
{
    return central_call(ctx, req, resp, err, errlen) == CENTRAL_CALL_OK ? 0 : -1;
}

int icissue_cmd_reissue(int argc, char **argv)
{
    const char *dbopt = NULL, *identity = NULL, *from = NULL, *to = NULL, *design = NULL,
               *type = NULL, *secrets_file = NULL, *face = NULL, *stripe = NULL, *op = NULL,
               *rfile = NULL, *central = NULL, *cert = NULL, *key = NULL, *ca = NULL,
               *server_name = NULL, *lease_s = NULL;
    bool abandon = false, steps = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--central", true, &central, NULL },
        { "--cert", true, &cert, NULL },
        { "--key", true, &key, NULL },
        { "--ca", true, &ca, NULL },
        { "--server-name", true, &server_name, NULL },
        { "--lease", true, &lease_s, NULL },
        { "--id", true, &identity, NULL },
        { "--from-card", true, &from, NULL },
        { "--to", true, &to, NULL },
        { "--design", true, &design, NULL },
        { "--type", true, &type, NULL },
        { "--secrets", true, &secrets_file, NULL },
        { "--reissue-file", true, &rfile, NULL },
        { "--face", true, &face, NULL },
        { "--stripe", true, &stripe, NULL },
        { "--operator", true, &op, NULL },
        { "--abandon-pending", false, NULL, &abandon },
        { "--steps", false, NULL, &steps },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("reissue", argc, argv, opts, usage_reissue, "takes no argument");
    if (rc >= 0)
        return rc;
    if (from == NULL && identity == NULL)
        return cli_usage_error("reissue", "give the old card (--from-card URI) or, when it "
                                          "is lost, the record (--id IDENTITY)");
    if (to == NULL)
        return cli_usage_error("reissue", "--to URI (the new card) is required");
    if (from != NULL && strcmp(from, to) == 0)
        return cli_usage_error("reissue", "--from-card and --to name the same card");
    if (rfile != NULL && rfile[0] == '\0')
        return cli_usage_error("reissue", "--reissue-file needs a path");
    const char *operator_name = icissue_operator("reissue", op);
    if (operator_name == NULL)
        return EXIT_USAGE;
    unsigned long lease = 0;
    if (central == NULL && (cert || key || ca || server_name || lease_s))
        return cli_usage_error("reissue", "--cert, --key, --ca, --server-name and --lease go "
                                          "with --central");
    if (central != NULL && (cert == NULL || key == NULL || ca == NULL))
        return cli_usage_error("reissue", "--central needs --cert, --key and --ca");
    if (lease_s != NULL && icissue_parse_count(lease_s, 3600, &lease) != 0)
        return cli_usage_error("reissue", "--lease takes 1..3600 seconds");

    struct secrets issuer;
    if ((rc = icissue_load_issuer("reissue", secrets_file, &issuer)) != 0)
        return rc;
    struct idb *db = NULL;
    struct transport *told = NULL, *tnew = NULL;
    struct central_client *cc = NULL;
    if (central != NULL && icissue_open_central("reissue", central, cert, key, ca, server_name,
                                                &cc) != 0) {
        secrets_wipe(&issuer);
        return 1;
    }
    rc = icissue_open_db("reissue", icissue_db_path(dbopt), &db);
    if (rc == 0 && from != NULL)
        rc = cli_open_named("reissue", from, "--from-card", &told);
    if (rc == 0)
        rc = cli_open_named("reissue", to, "--to", &tnew);
    if (rc != 0)
        goto out;
    struct cardop cold, cnew;
    cardop_init(&cold, told, "old card");
    cardop_init(&cnew, tnew, "new card");
    struct reissue_params p = {
        .issue = {
            .db = db,
            .identity = identity,
            .role = CT_ORIGINAL,
            .card_type = type,
            .design = design,
            .issuer = secrets_file != NULL ? &issuer : NULL,
            .operator_name = operator_name,
            .face_png = face,
            .stripe_file = stripe,
            .abandon_pending = abandon,
            .progress = steps || cli_verbose ? cli_progress_stdout : NULL,
        },
        .old_card = told != NULL ? &cold : NULL,
        .reissue_file = rfile,
    };
    struct reissue_result res;
    char err[1024];
    struct central_link link = { icissue_central_call, cc };
    struct branch_params bp = { .reissue = p, .central = &link, .lease_seconds = (unsigned)lease };
    if ((cc != NULL ? branch_reissue(&bp, &cnew, &res, err, sizeof err)
                    : reissue_card(&p, &cnew, &res, err, sizeof err)) != 0) {
        print_issue_failure("reissue", err, &res.issued);
        rc = 1;
        goto out;
    }
    char serial[2 * IDB_SERIAL_LEN + 1], oserial[2 * IDB_SERIAL_LEN + 1] = "";
    icissue_serial_hex(res.issued.serial, serial);
    if (res.have_old_serial)
        icissue_serial_hex(res.old_serial, oserial);
    if (res.already_done) {
        printf("%s was reissued already: card %s is its current card, issuance count %u\n",
               res.identity, serial, res.issued.issue_count);
    } else {
        if (res.issued.resumed)
            printf("the new card had completed its script before an earlier run was "
                   "interrupted: recorded now\n");
        printf("reissued %s on card %s: issuance count %u%s\n", res.identity, serial,
               res.issued.issue_count, cc != NULL ? " (confirmed by the central system)" : "");
        printf("record extracted to %s\n", res.reissue_file);
        print_outputs(face, stripe);
    }
    rc = 0;
    if (told == NULL) {
        printf("old card: lost, not terminated\n");
    } else if (res.old_terminated) {
        printf("old card%s%s: %s\n", oserial[0] ? " " : "", oserial,
               res.old_was_terminated ? "terminated already" : "terminated");
    } else {
        printf("old card%s%s: not terminated: %s\n", oserial[0] ? " " : "", oserial,
               res.old_note[0] ? res.old_note : "no reason given");
        rc = icissue_fail("reissue", "the new card is issued, but the old card is not "
                          "terminated: %s; once that is fixed, run the same command again: "
                          "it only terminates the old card",
                          res.old_note[0] ? res.old_note : "no reason given");
    }
    rc = cli_flush_stdout(rc);
out:
    transport_close(told);
    transport_close(tnew);
    idb_close(db);
    central_client_close(cc);
    secrets_wipe(&issuer);
    return rc;
}

/* ---- batch ------------------------------------------------------------------------------ */

struct batch_id {
    char identity[IDB_IDENTITY_MAX + 1];
    unsigned long line;
};

/* Reads the identities of path (one a line; blank and '#' lines skipped), checks their length
 * and that none repeats. Returns 0 with *ids (free it) and *n, or 1 after the messages. */
static int read_ids(const char *path, struct batch_id **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return icissue_fail("batch", "%s: %s", path, strerror(errno));
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    int bad = 0;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strlen(s);
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                           s[len - 1] == '\t'))
            s[--len] = '\0';
        if (len == 0 || s[0] == '#')
            continue;
        if (len > IDB_IDENTITY_MAX) {
            fprintf(stderr, "%s:%lu: identity of %zu characters, at most %u allowed\n", path,
                    lineno, len, IDB_IDENTITY_MAX);
            bad++;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            if (strcmp((*ids)[i].identity, s) == 0) {
                fprintf(stderr, "%s:%lu: %s appears already on line %lu\n", path, lineno, s,
                        (*ids)[i].line);
                dup = true;
            }
        if (dup) {
            bad++;
            continue;
        }
        if (*n == cap) {
            size_t nc = cap == 0 ? 64 : cap * 2;
            struct batch_id *ni = realloc(*ids, nc * sizeof *ni);
            if (ni == NULL) {
                bad = -1;
                break;
            }
            *ids = ni;
            cap = nc;
        }
        memcpy((*ids)[*n].identity, s, len + 1);
        (*ids)[*n].line = lineno;
        (*n)++;
    }
    bool rerr = ferror(f) != 0;
    free(line);
    fclose(f);
    int rc = 0;
    if (bad < 0)
        rc = icissue_fail("batch", "out of memory");
    else if (rerr)
        rc = icissue_fail("batch", "%s: read error", path);
    else if (bad > 0)
        rc = icissue_fail("batch", "%s: %d bad line%s; no card issued", path, bad,
                          bad == 1 ? "" : "s");
    else if (*n == 0)
        rc = icissue_fail("batch", "%s has no identity", path);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* Where the card number goes in a pool template: "%d" or "{n}", exactly once. Returns 0
 * with the offset and length of the placeholder, or -1. */
static int pool_placeholder(const char *tmpl, size_t *at, size_t *len)
{
    const char *a = strstr(tmpl, "%d"), *b = strstr(tmpl, "{n}");
    if ((a == NULL) == (b == NULL))
        return -1;
    const char *p = a != NULL ? a : b;
    size_t l = a != NULL ? 2 : 3;
    if (strstr(p + l, a != NULL ? "%d" : "{n}") != NULL)
        return -1;
    *at = (size_t)(p - tmpl);
    *len = l;
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct batch_failure {
    size_t index;
    char reason[512];
};

int icissue_cmd_batch(int argc, char **argv)
{
    const char *dbopt = NULL, *ids_file = NULL, *pool = NULL, *role_s = NULL, *design = NULL,
               *secrets_file = NULL, *faces = NULL, *op = NULL, *first_s = NULL;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--ids", true, &ids_file, NULL },
        { "--card-pool", true, &pool, NULL },
        { "--first", true, &first_s, NULL },
        { "--role", true, &role_s, NULL },
        { "--design", true, &design, NULL },
        { "--secrets", true, &secrets_file, NULL },
        { "--faces", true, &faces, NULL },
        { "--operator", true, &op, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("batch", argc, argv, opts, usage_batch, "takes no argument");
    if (rc >= 0)
        return rc;
    if (ids_file == NULL)
        return cli_usage_error("batch", "--ids FILE is required");
    if (pool == NULL)
        return cli_usage_error("batch", "--card-pool TEMPLATE is required");
    size_t ph_at, ph_len;
    if (pool_placeholder(pool, &ph_at, &ph_len) != 0)
        return cli_usage_error("batch", "--card-pool needs one \"%d\" or one \"{n}\" where the "
                                        "card number goes (sim:/tmp/pool/card-%d.nvm)");
    unsigned long first = 1;
    if (first_s != NULL && icissue_parse_count(first_s, 1000000000UL, &first) != 0)
        return cli_usage_error("batch", "--first needs a number of 1 or more");
    enum ct_role role;
    if ((rc = parse_role("batch", role_s, &role)) != 0)
        return rc;
    const char *operator_name = icissue_operator("batch", op);
    if (operator_name == NULL)
        return EXIT_USAGE;
    if (faces != NULL) {
        struct stat st;
        if (stat(faces, &st) != 0 && errno == ENOENT && mkdir(faces, 0700) != 0)
            return icissue_fail("batch", "cannot create %s: %s", faces, strerror(errno));
        if (stat(faces, &st) != 0 || !S_ISDIR(st.st_mode))
            return icissue_fail("batch", "--faces %s is not a directory", faces);
    }

    struct batch_id *ids = NULL;
    size_t n = 0;
    if ((rc = read_ids(ids_file, &ids, &n)) != 0)
        return rc;
    struct secrets issuer;
    if ((rc = icissue_load_issuer("batch", secrets_file, &issuer)) != 0) {
        free(ids);
        return rc;
    }
    struct idb *db = NULL;
    struct batch_failure *fails = NULL;
    size_t nfail = 0, nok = 0;
    rc = icissue_open_db("batch", icissue_db_path(dbopt), &db);
    if (rc != 0)
        goto out;
    fails = calloc(n, sizeof *fails);
    size_t urimax = strlen(pool) + 24, facemax = faces != NULL ? strlen(faces) + 80 : 1;
    char *uri = malloc(urimax), *face = malloc(facemax);
    if (fails == NULL || uri == NULL || face == NULL) {
        free(uri);
        free(face);
        rc = icissue_fail("batch", "out of memory");
        goto out;
    }

    bool tty = isatty(STDERR_FILENO) == 1;
    struct cli_bar bar;
    cli_bar_init(&bar, "batch", tty, true);
    cli_bar_update(&bar, 0, n);
    double t0 = now_seconds();
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[i].identity;
        snprintf(uri, urimax, "%.*s%lu%s", (int)ph_at, pool, first + i, pool + ph_at + ph_len);
        if (faces != NULL) {
            char safe[IDB_IDENTITY_MAX + 1];
            issue_file_name(id, safe, sizeof safe);
            snprintf(face, facemax, "%s/%s.png", faces, safe);
        }
        struct batch_failure *fl = &fails[nfail];
        struct issue_result res;
        memset(&res, 0, sizeof res);
        struct transport *t = NULL;
        char err[512];
        bool ok = false;
        if (transport_open(uri, &t, err, sizeof err) != 0) {
            snprintf(fl->reason, sizeof fl->reason, "%s", err);
        } else {
            if (cli_verbose)
                transport_set_trace(t, stderr);
            struct cardop c;
            cardop_init(&c, t, "card");
            struct issue_params p = {
                .db = db,
                .identity = id,
                .role = role,
                .design = design,
                .issuer = secrets_file != NULL ? &issuer : NULL,
                .operator_name = operator_name,
                .face_png = faces != NULL ? face : NULL,
            };
            ok = issue_card(&p, &c, &res, fl->reason, sizeof fl->reason) == 0;
            if (!ok && res.spoiled && strstr(fl->reason, "spoiled") == NULL) {
                size_t l = strlen(fl->reason);
                snprintf(fl->reason + l, sizeof fl->reason - l, "; the card is spoiled");
            }
            transport_close(t);
        }
        if (ok) {
            nok++;
        } else {
            fl->index = i;
            nfail++;
        }
        if (tty) {
            cli_bar_update(&bar, i + 1, n);
        } else {
            char serial[2 * IDB_SERIAL_LEN + 1];
            icissue_serial_hex(res.serial, serial);
            if (ok)
                printf("%zu/%zu %s: card %s (%s): %s count %u\n", i + 1, n, id, serial, uri,
                       role == CT_ORIGINAL ? "issuance" : "backup", res.issue_count);
            else
                printf("%zu/%zu %s: failed (%s): %s\n", i + 1, n, id, uri, fl->reason);
            fflush(stdout);
        }
    }
    double secs = now_seconds() - t0;
    cli_bar_clear(&bar);
    free(uri);
    free(face);
    printf("issued %zu of %zu, %zu failed\n", nok, n, nfail);
    for (size_t k = 0; k < nfail; k++)
        printf("  failed %s (%s line %lu): %s\n", ids[fails[k].index].identity, ids_file,
               ids[fails[k].index].line, fails[k].reason);
    printf("%zu card%s in %.2f s: %.1f cards/s\n", nok, nok == 1 ? "" : "s", secs,
           secs > 0 ? (double)nok / secs : 0.0);
    rc = cli_flush_stdout(nfail > 0 ? 1 : 0);
    if (nfail > 0)
        icissue_fail("batch", "%zu of %zu card%s failed", nfail, n, n == 1 ? "" : "s");
out:
    free(fails);
    free(ids);
    idb_close(db);
    secrets_wipe(&issuer);
    return rc;
}

/* ---- print ------------------------------------------------------------------------------ */

int icissue_cmd_print(int argc, char **argv)
{
    const char *dbopt = NULL, *identity = NULL, *face = NULL, *stripe = NULL, *design = NULL;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--id", true, &identity, NULL },
        { "--face", true, &face, NULL },
        { "--stripe", true, &stripe, NULL },
        { "--design", true, &design, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("print", argc, argv, opts, usage_print,
                                 "takes no argument (the record: --id IDENTITY)");
    if (rc >= 0)
        return rc;
    if (identity == NULL)
        return cli_usage_error("print", "--id IDENTITY is required");
    if (face == NULL && stripe == NULL)
        return cli_usage_error("print", "give --face OUT.png, --stripe OUT.txt or both");
    struct idb *db;
    rc = icissue_open_db("print", icissue_db_path(dbopt), &db);
    if (rc != 0)
        return rc;
    struct idb_record *r = calloc(1, sizeof *r);
    char err[1024];
    if (r == NULL) {
        rc = icissue_fail("print", "out of memory");
    } else if (idb_record_by_identity(db, identity, r, err, sizeof err) != IDB_OK ||
               issue_print(db, r, design, face, stripe, err, sizeof err) != 0) {
        rc = icissue_fail("print", "%s", err);
    } else {
        print_outputs(face, stripe);
        rc = cli_flush_stdout(0);
    }
    if (r != NULL)
        idb_record_wipe(r);
    free(r);
    idb_close(db);
    return rc;
}

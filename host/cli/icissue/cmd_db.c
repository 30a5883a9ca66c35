/* icissue init, types, import, list, show, history: the issuance file itself, over
 * host/issuance/idb.c, typefile.c and csvimport.c. No card is touched here. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cardtype.h"
#include "cli.h"
#include "csvimport.h"
#include "icissue.h"
#include "idb.h"
#include "typefile.h"

/* ---- help texts ------------------------------------------------------------------------- */

static void usage_init(FILE *f)
{
    fputs("usage: icissue init [--db FILE|URI]\n"
          "\n"
          "Creates the issuance file (a SQLite file, readable by its owner only, or the tables\n"
          "of an empty PostgreSQL database) with the current schema, or brings an existing\n"
          "one up to date by running its pending migrations, and prints the schema version.\n"
          "A file of a newer schema, or a database that is not an issuance file, is refused.\n"
          "\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 success, 1 the file cannot be created or is refused, 2 usage error.\n",
          f);
}

static void usage_types(FILE *f)
{
    fputs("usage: icissue types load FILE [--db FILE]\n"
          "       icissue types list [--json] [--db FILE]\n"
          "\n"
          "load: reads a card-type file (JSON, docs/issuance.md \"Card-type file\"; example:\n"
          "examples/types.json), checks all of it, and stores its designs, type readouts,\n"
          "identity readouts and card types in one transaction, replacing those of the same\n"
          "names. On any error nothing is stored and the message names the JSON path of the\n"
          "bad value. Prints what was stored.\n"
          "list: the card types of the issuance file with their interface, default design,\n"
          "data items and script lengths.\n"
          "\n"
          "  --json         list as one JSON array\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 success, 1 a bad card-type file or a database error, 2 usage error.\n",
          f);
}

static void usage_import(FILE *f)
{
    fputs("usage: icissue import --csv FILE [--db FILE]\n"
          "\n"
          "Imports issuance records from a CSV file (RFC 4180; first row: the column names,\n"
          "\"identity\" and \"card_type\" required, \"design\" optional, every other column a\n"
          "data item of the card type). Every row is checked against its card type and all\n"
          "rows go in as one transaction: when any row is bad nothing is imported, and every\n"
          "bad row is reported as FILE:LINE: what. Values of secret and hex items are never\n"
          "shown.\n"
          "\n"
          "  --csv FILE     the records\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 all rows imported, 1 nothing imported, 2 usage error.\n",
          f);
}

static void usage_list(FILE *f)
{
    fputs("usage: icissue list [--issued | --unissued] [--json] [--limit N] [--db FILE]\n"
          "\n"
          "One line per record, in the order of import: record id, identity, card type,\n"
          "issuance flag, issuance count (original cards issued), backup cards issued, the\n"
          "serial of the current card, and a card pending from an interrupted run.\n"
          "\n"
          "  --issued       only records whose flag says issued\n"
          "  --unissued     only records whose flag says unissued\n"
          "  --limit N      at most N records\n"
          "  --json         one JSON array\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 success, 1 a database error, 2 usage error.\n",
          f);
}

static void usage_show(FILE *f)
{
    fputs("usage: icissue show ID [--json] [--db FILE]\n"
          "       icissue show --id IDENTITY [--json] [--db FILE]\n"
          "\n"
          "Shows one record, by its record id (the first column of 'icissue list') or by its\n"
          "identity: card type, design, issuance flag and counts, current card, its data\n"
          "items and its history. The values of secret and hex items (passwords, key shares)\n"
          "are shown as (secret).\n"
          "\n"
          "  --id IDENTITY  the record of this identity\n"
          "  --json         one JSON object\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 success, 1 no such record or a database error, 2 usage error.\n",
          f);
}

static void usage_history(FILE *f)
{
    fputs("usage: icissue history [--id IDENTITY] [--json] [--db FILE]\n"
          "\n"
          "The append-only history, oldest first: when, event (personalizing, issued,\n"
          "spoiled, reissue, terminated ...), identity, role, card serial, card type,\n"
          "operator and details (step results; never a secret).\n"
          "\n"
          "  --id IDENTITY  only the events of this record\n"
          "  --json         one JSON array\n",
          f);
    icissue_print_db_help(f, 14);
    fputs("  -h, --help     this help\n"
          "\n"
          "Exit status: 0 success, 1 no such record or a database error, 2 usage error.\n",
          f);
}

/* ---- init ------------------------------------------------------------------------------- */

int icissue_cmd_init(int argc, char **argv)
{
    const char *dbopt = NULL;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { NULL, false, NULL, NULL },
    };
    char **pos;
    int npos;
    int rc = cli_parse("init", argc, argv, opts, usage_init, &npos, &pos);
    if (rc >= 0)
        return rc;
    if (npos > 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "unexpected argument \"%.100s\"", pos[0]);
        free(pos);
        return cli_usage_error("init", msg);
    }
    free(pos);
    const char *uri = icissue_db_path(dbopt), *file = idb_uri_file(uri);
    /* A new SQLite file is made here, empty and with mode 0600 (it will hold passwords and
     * key shares), before SQLite turns it into a database; its WAL files take the same mode.
     * A PostgreSQL database is made by its administrator; init makes its tables. */
    bool made = false;
    if (file != NULL) {
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            made = true;
            close(fd);
        } else if (errno != EEXIST) {
            return icissue_fail("init", "%s: %s", file, strerror(errno));
        }
    }
    struct idb *db;
    char err[1024];
    if (idb_open(uri, true, &db, err, sizeof err) != IDB_OK) {
        if (made)
            unlink(file);
        return icissue_fail("init", "%s", err);
    }
    int v = idb_schema_version(db), was = idb_opened_version(db);
    if (was == 0)
        printf("created issuance file %s: schema version %d\n", idb_path(db), v);
    else if (was < v)
        printf("issuance file %s: schema version %d (migrated from version %d)\n",
               idb_path(db), v, was);
    else
        printf("issuance file %s: schema version %d (up to date)\n", idb_path(db), v);
    idb_close(db);
    return cli_flush_stdout(0);
}

/* ---- types ------------------------------------------------------------------------------ */

static void print_stored(const char *file, const struct ct_file *f)
{
    printf("stored from %s: %zu design%s, %zu type readout%s, %zu identity readout%s, "
           "%zu card type%s\n",
           file, f->ndesigns, f->ndesigns == 1 ? "" : "s", f->ntype_readouts,
           f->ntype_readouts == 1 ? "" : "s", f->nidentity_readouts,
           f->nidentity_readouts == 1 ? "" : "s", f->ntypes, f->ntypes == 1 ? "" : "s");
    for (size_t i = 0; i < f->ndesigns; i++)
        printf("  design %s%s%s%s\n", f->designs[i].name, f->designs[i].title[0] ? " (\"" : "",
               f->designs[i].title, f->designs[i].title[0] ? "\")" : "");
    for (size_t i = 0; i < f->ntype_readouts; i++)
        printf("  type readout %s (priority %d)\n", f->type_readouts[i].name,
               f->type_readouts[i].priority);
    for (size_t i = 0; i < f->nidentity_readouts; i++)
        printf("  identity readout %s (%zu step%s, %s)\n", f->identity_readouts[i].name,
               f->identity_readouts[i].nsteps, f->identity_readouts[i].nsteps == 1 ? "" : "s",
               ct_encoding_name(f->identity_readouts[i].encoding));
    for (size_t i = 0; i < f->ntypes; i++) {
        const struct ct_type *t = &f->types[i];
        printf("  card type %s: %s, design %s, %zu item%s, scripts of %zu (original) and %zu "
               "(backup) steps; read by %s, identity by %s\n",
               t->name, t->interface, t->design, t->nitems, t->nitems == 1 ? "" : "s",
               t->nsteps[CT_ORIGINAL], t->nsteps[CT_BACKUP], t->type_readout,
               t->identity_readout);
    }
}

static int types_load(const char *dbpath, const char *file)
{
    struct ct_file *f = calloc(1, sizeof *f);
    if (f == NULL)
        return icissue_fail("types", "out of memory");
    char err[1024];
    int rc = 0;
    struct idb *db = NULL;
    if (typefile_load(file, f, err, sizeof err) != 0) {
        rc = icissue_fail("types", "%s; nothing stored", err);
        goto out;
    }
    rc = icissue_open_db("types", dbpath, &db);
    if (rc != 0)
        goto out;
    if (idb_types_store(db, f, err, sizeof err) != IDB_OK) {
        rc = icissue_fail("types", "%s; nothing stored", err);
        goto out;
    }
    print_stored(file, f);
    rc = cli_flush_stdout(0);
out:
    idb_close(db);
    free(f);
    return rc;
}

struct name_list {
    char (*names)[CT_NAME_MAX + 1];
    size_t n, cap;
    bool oom;
};

static void collect_name(void *ctx, const char *name, const char *desc)
{
    (void)desc;
    struct name_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap == 0 ? 16 : l->cap * 2;
        char (*nn)[CT_NAME_MAX + 1] = realloc(l->names, nc * sizeof *nn);
        if (nn == NULL) {
            l->oom = true;
            return;
        }
        l->names = nn;
        l->cap = nc;
    }
    snprintf(l->names[l->n++], CT_NAME_MAX + 1, "%s", name);
}

static void type_json(FILE *o, const struct ct_type *t)
{
    fputs("{\"name\": ", o);
    icissue_json_str(o, t->name);
    fputs(", \"description\": ", o);
    icissue_json_str(o, t->description);
    fputs(", \"interface\": ", o);
    icissue_json_str(o, t->interface);
    fputs(", \"design\": ", o);
    icissue_json_str(o, t->design);
    fputs(", \"stripe_iin\": ", o);
    icissue_json_str(o, t->stripe_iin[0] ? t->stripe_iin : NULL);
    fputs(", \"type_readout\": ", o);
    icissue_json_str(o, t->type_readout);
    fputs(", \"type_value\": ", o);
    cli_json_hex(o, t->type_value, t->type_value_len);
    fputs(", \"identity_readout\": ", o);
    icissue_json_str(o, t->identity_readout);
    fputs(", \"items\": [", o);
    for (size_t i = 0; i < t->nitems; i++) {
        fputs(i == 0 ? "{\"name\": " : ", {\"name\": ", o);
        icissue_json_str(o, t->items[i].name);
        fprintf(o, ", \"kind\": \"%s\", \"max\": %u, \"required\": %s}",
                ct_kind_name(t->items[i].kind), t->items[i].max_len,
                t->items[i].required ? "true" : "false");
    }
    fprintf(o, "], \"steps\": {\"original\": %zu, \"backup\": %zu}}", t->nsteps[CT_ORIGINAL],
            t->nsteps[CT_BACKUP]);
}

static void type_text(FILE *o, const struct ct_type *t)
{
    fprintf(o, "%-16s %-11s design %-12s %zu item%s, %zu/%zu steps (original/backup)", t->name,
            t->interface, t->design, t->nitems, t->nitems == 1 ? " " : "s",
            t->nsteps[CT_ORIGINAL], t->nsteps[CT_BACKUP]);
    if (t->description[0])
        fprintf(o, "  %s", t->description);
    fputc('\n', o);
    for (size_t i = 0; i < t->nitems; i++) {
        const struct ct_item *it = &t->items[i];
        fprintf(o, "    %-16s %-6s", it->name, ct_kind_name(it->kind));
        if (it->kind != CT_DATE)
            fprintf(o, " max %u", it->max_len);
        fprintf(o, "%s\n", it->required ? " required" : "");
    }
}

static int types_list(const char *dbpath, bool json)
{
    struct idb *db;
    int rc = icissue_open_db("types", dbpath, &db);
    if (rc != 0)
        return rc;
    char err[1024];
    struct name_list l = { 0 };
    struct ct_type *t = calloc(1, sizeof *t);
    if (t == NULL) {
        rc = icissue_fail("types", "out of memory");
        goto out;
    }
    if (idb_type_names(db, collect_name, &l, err, sizeof err) != IDB_OK) {
        rc = icissue_fail("types", "%s", err);
        goto out;
    }
    if (l.oom) {
        rc = icissue_fail("types", "out of memory");
        goto out;
    }
    if (json)
        fputc('[', stdout);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        if (idb_type_get(db, l.names[i], t, err, sizeof err) != IDB_OK) {
            rc = icissue_fail("types", "%s", err);
            break;
        }
        if (json) {
            fputs(i == 0 ? "\n  " : ",\n  ", stdout);
            type_json(stdout, t);
        } else {
            type_text(stdout, t);
        }
    }
    if (json)
        fputs(l.n > 0 ? "\n]\n" : "]\n", stdout);
    else if (l.n == 0 && rc == 0)
        printf("(no card types: load some with 'icissue types load FILE')\n");
    rc = cli_flush_stdout(rc);
out:
    free(t);
    free(l.names);
    idb_close(db);
    return rc;
}

int icissue_cmd_types(int argc, char **argv)
{
    const char *dbopt = NULL;
    bool json = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--json", false, NULL, &json },
        { NULL, false, NULL, NULL },
    };
    char **pos;
    int npos;
    int rc = cli_parse("types", argc, argv, opts, usage_types, &npos, &pos);
    if (rc >= 0)
        return rc;
    const char *dbpath = icissue_db_path(dbopt);
    if (npos == 0) {
        rc = cli_usage_error("types", "give a sub-command: load FILE or list");
    } else if (strcmp(pos[0], "load") == 0) {
        if (npos != 2)
            rc = cli_usage_error("types", npos < 2 ? "load needs the card-type FILE"
                                                  : "load takes one FILE");
        else if (json)
            rc = cli_usage_error("types", "--json goes with list");
        else
            rc = types_load(dbpath, pos[1]);
    } else if (strcmp(pos[0], "list") == 0) {
        if (npos != 1)
            rc = cli_usage_error("types", "list takes no argument");
        else
            rc = types_list(dbpath, json);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown sub-command \"%.60s\" (load or list)", pos[0]);
        rc = cli_usage_error("types", msg);
    }
    free(pos);
    return rc;
}

/* ---- import ----------------------------------------------------------------------------- */

int icissue_cmd_import(int argc, char **argv)
{
    const char *dbopt = NULL, *csv = NULL;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--csv", true, &csv, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("import", argc, argv, opts, usage_import,
                                 "give the file as --csv FILE");
    if (rc >= 0)
        return rc;
    if (csv == NULL)
        return cli_usage_error("import", "--csv FILE is required");
    struct idb *db;
    rc = icissue_open_db("import", icissue_db_path(dbopt), &db);
    if (rc != 0)
        return rc;
    struct csvimport_report *rep = calloc(1, sizeof *rep);
    if (rep == NULL) {
        idb_close(db);
        return icissue_fail("import", "out of memory");
    }
    char err[1024];
    if (csvimport_file(db, csv, rep, err, sizeof err) == 0) {
        printf("imported %lu record%s from %s\n", rep->imported, rep->imported == 1 ? "" : "s",
               csv);
        rc = cli_flush_stdout(0);
    } else {
        fflush(stdout);
        csvimport_report_print(rep, stderr);
        rc = icissue_fail("import", "%s%s", err,
                          strstr(err, "nothing imported") ? "" : "; nothing imported");
    }
    free(rep);
    idb_close(db);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------- */

enum list_filter { LIST_ALL, LIST_ISSUED, LIST_UNISSUED };

struct list_ctx {
    enum list_filter filter;
    bool json;
    unsigned long limit; /* 0: all */
    unsigned long shown;
    unsigned long rows;  /* of the current page */
    int64_t last_id;
};

/* A record's JSON object from its opening brace to its "pending" field; the caller closes
 * it. With show_effective, "effective_design" (effective: the design the card gets, NULL for
 * none) follows "design". */
static void record_json_fields(FILE *o, const struct idb_record *r, bool show_effective,
                               const char *effective)
{
    char serial[2 * IDB_SERIAL_LEN + 1];
    fprintf(o, "{\"id\": %lld, \"identity\": ", (long long)r->id);
    icissue_json_str(o, r->identity);
    fputs(", \"card_type\": ", o);
    icissue_json_str(o, r->card_type);
    fputs(", \"design\": ", o);
    icissue_json_str(o, r->design[0] ? r->design : NULL);
    if (show_effective) {
        fputs(", \"effective_design\": ", o);
        icissue_json_str(o, effective);
    }
    fprintf(o, ", \"issued\": %s, \"issue_count\": %u, \"backup_count\": %u, \"card_serial\": ",
            r->issued ? "true" : "false", r->issue_count, r->backup_count);
    if (r->has_serial) {
        icissue_serial_hex(r->card_serial, serial);
        icissue_json_str(o, serial);
    } else {
        fputs("null", o);
    }
    fputs(", \"pending\": ", o);
    if (r->has_pending) {
        icissue_serial_hex(r->pending_serial, serial);
        fprintf(o, "{\"card_serial\": \"%s\", \"role\": \"%s\"}", serial,
                ct_role_name(r->pending_role));
    } else {
        fputs("null", o);
    }
}

static void record_json(FILE *o, const struct idb_record *r)
{
    record_json_fields(o, r, false, NULL);
    fputc('}', o);
}

static void list_row(void *ctx, const struct idb_record *r)
{
    struct list_ctx *l = ctx;
    l->rows++;
    l->last_id = r->id;
    if ((l->filter == LIST_ISSUED && !r->issued) || (l->filter == LIST_UNISSUED && r->issued))
        return;
    if (l->limit != 0 && l->shown >= l->limit)
        return;
    if (l->json) {
        fputs(l->shown == 0 ? "\n  " : ",\n  ", stdout);
        record_json(stdout, r);
    } else {
        char serial[2 * IDB_SERIAL_LEN + 1] = "-";
        if (r->has_serial)
            icissue_serial_hex(r->card_serial, serial);
        if (l->shown == 0)
            printf("%-8s %-16s %-12s %-6s %5s %7s  %s\n", "ID", "IDENTITY", "CARD TYPE",
                   "ISSUED", "COUNT", "BACKUPS", "CARD");
        printf("%-8lld %-16s %-12s %-6s %5u %7u  %s", (long long)r->id, r->identity,
               r->card_type, r->issued ? "yes" : "no", r->issue_count, r->backup_count,
               serial);
        if (r->has_pending) {
            char ps[2 * IDB_SERIAL_LEN + 1];
            icissue_serial_hex(r->pending_serial, ps);
            printf("  (pending: %s card %s)", ct_role_name(r->pending_role), ps);
        }
        fputc('\n', stdout);
    }
    l->shown++;
}

int icissue_cmd_list(int argc, char **argv)
{
    const char *dbopt = NULL, *limit = NULL;
    bool json = false, issued = false, unissued = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--json", false, NULL, &json },
        { "--issued", false, NULL, &issued },
        { "--unissued", false, NULL, &unissued },
        { "--limit", true, &limit, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("list", argc, argv, opts, usage_list, "takes no argument");
    if (rc >= 0)
        return rc;
    if (issued && unissued)
        return cli_usage_error("list", "--issued and --unissued exclude each other");
    struct list_ctx l = { .filter = issued ? LIST_ISSUED : unissued ? LIST_UNISSUED : LIST_ALL,
                          .json = json };
    if (limit != NULL && icissue_parse_count(limit, 1000000000UL, &l.limit) != 0)
        return cli_usage_error("list", "--limit needs a count of 1 or more");
    struct idb *db;
    rc = icissue_open_db("list", icissue_db_path(dbopt), &db);
    if (rc != 0)
        return rc;
    if (json)
        fputc('[', stdout);
    /* Pages of records, so that a filter with a limit stops early in a large file. */
    const size_t page = 1024;
    char err[1024];
    do {
        l.rows = 0;
        if (idb_records_list(db, l.last_id, page, list_row, &l, err, sizeof err) != IDB_OK) {
            rc = icissue_fail("list", "%s", err);
            break;
        }
    } while (l.rows == page && (l.limit == 0 || l.shown < l.limit));
    if (json)
        fputs(l.shown > 0 ? "\n]\n" : "]\n", stdout);
    else if (rc == 0 && l.shown == 0)
        printf("(no records)\n");
    idb_close(db);
    return cli_flush_stdout(rc);
}

/* ---- show and history -------------------------------------------------------------------- */

struct hist_ctx {
    struct idb *db;
    bool json;
    bool indent;           /* show: lines under "history" */
    unsigned long n;
    int64_t cached_id;     /* the record whose identity is cached */
    char cached_identity[IDB_IDENTITY_MAX + 1];
    struct idb_record *scratch;
};

/* The identity of a history event's record ("" when it has none). */
static const char *event_identity(struct hist_ctx *h, int64_t record_id)
{
    if (record_id <= 0)
        return "";
    if (record_id != h->cached_id) {
        char err[256];
        h->cached_id = record_id;
        if (h->scratch != NULL &&
            idb_record_by_id(h->db, record_id, h->scratch, err, sizeof err) == IDB_OK)
            snprintf(h->cached_identity, sizeof h->cached_identity, "%s", h->scratch->identity);
        else
            snprintf(h->cached_identity, sizeof h->cached_identity, "#%lld",
                     (long long)record_id);
        if (h->scratch != NULL)
            idb_record_wipe(h->scratch);
    }
    return h->cached_identity;
}

static void hist_row(void *ctx, const struct idb_event *e)
{
    struct hist_ctx *h = ctx;
    char serial[2 * IDB_SERIAL_LEN + 1] = "-";
    if (e->has_serial)
        icissue_serial_hex(e->card_serial, serial);
    const char *identity = event_identity(h, e->record_id);
    if (h->json) {
        fputs(h->n == 0 ? "\n  " : ",\n  ", stdout);
        fprintf(stdout, "{\"id\": %lld, \"at\": ", (long long)e->id);
        icissue_json_str(stdout, e->at);
        fputs(", \"event\": ", stdout);
        icissue_json_str(stdout, e->event);
        fputs(", \"identity\": ", stdout);
        icissue_json_str(stdout, identity[0] ? identity : NULL);
        fputs(", \"role\": ", stdout);
        icissue_json_str(stdout, e->role[0] ? e->role : NULL);
        fputs(", \"card_serial\": ", stdout);
        icissue_json_str(stdout, e->has_serial ? serial : NULL);
        fputs(", \"card_type\": ", stdout);
        icissue_json_str(stdout, e->card_type[0] ? e->card_type : NULL);
        fputs(", \"operator\": ", stdout);
        icissue_json_str(stdout, e->operator_name);
        fputs(", \"detail\": ", stdout);
        icissue_json_str(stdout, e->detail);
        fputc('}', stdout);
    } else {
        printf("%s%-24s %-14s %-16s %-8s %-16s %-10s ", h->indent ? "  " : "", e->at,
               e->event, identity[0] ? identity : "-", e->role[0] ? e->role : "-", serial,
               e->card_type[0] ? e->card_type : "-");
        if (e->detail[0])
            printf("%-12s %s\n", e->operator_name[0] ? e->operator_name : "-", e->detail);
        else
            printf("%s\n", e->operator_name[0] ? e->operator_name : "-");
    }
    h->n++;
}

/* The kind of a record's item per its card type; CT_SECRET (hidden) when unknown. */
static enum ct_kind item_kind(const struct ct_type *t, const char *name)
{
    const struct ct_item *it = t != NULL ? ct_find_item(t, name) : NULL;
    return it != NULL ? it->kind : CT_SECRET;
}

static bool kind_hidden(enum ct_kind k)
{
    return k == CT_SECRET || k == CT_HEX;
}

static void show_text(const struct idb_record *r, const struct ct_type *t)
{
    char serial[2 * IDB_SERIAL_LEN + 1];
    printf("record       %lld\n", (long long)r->id);
    printf("identity     %s\n", r->identity);
    printf("card type    %s\n", r->card_type);
    if (r->design[0])
        printf("design       %s\n", r->design);
    else if (t != NULL)
        printf("design       %s (the card type's)\n", t->design);
    else
        printf("design       (the card type's)\n");
    printf("issued       %s\n", r->issued ? "yes" : "no");
    printf("issue count  %u\n", r->issue_count);
    printf("backups      %u\n", r->backup_count);
    if (r->has_serial) {
        icissue_serial_hex(r->card_serial, serial);
        printf("card         %s\n", serial);
    } else {
        printf("card         none\n");
    }
    if (r->has_pending) {
        icissue_serial_hex(r->pending_serial, serial);
        printf("pending      %s card %s (an interrupted run: put the card in the reader and "
               "issue again)\n", ct_role_name(r->pending_role), serial);
    }
    printf("items\n");
    size_t w = 4;
    for (size_t i = 0; i < r->nitems; i++)
        if (strlen(r->items[i].name) > w)
            w = strlen(r->items[i].name);
    for (size_t i = 0; i < r->nitems; i++) {
        const struct idb_item *it = &r->items[i];
        printf("  %-*s  %s\n", (int)w, it->name,
               kind_hidden(item_kind(t, it->name)) ? "(secret)" : it->value);
    }
    if (r->nitems == 0)
        printf("  (none)\n");
}

static void show_json_head(const struct idb_record *r, const struct ct_type *t)
{
    record_json_fields(stdout, r, true,
                       r->design[0] ? r->design : t != NULL ? t->design : NULL);
    fputs(", \"items\": [", stdout);
    for (size_t i = 0; i < r->nitems; i++) {
        const struct idb_item *it = &r->items[i];
        enum ct_kind k = item_kind(t, it->name);
        fputs(i == 0 ? "{\"name\": " : ", {\"name\": ", stdout);
        icissue_json_str(stdout, it->name);
        printf(", \"kind\": \"%s\", \"secret\": %s, \"value\": ", ct_kind_name(k),
               kind_hidden(k) ? "true" : "false");
        icissue_json_str(stdout, kind_hidden(k) ? NULL : it->value);
        fputc('}', stdout);
    }
    fputs("], \"history\": [", stdout);
}

/* Reads the record named by a record id (text) or an identity. Returns 0 or 1 (printed). */
static int load_record(const char *cmd, struct idb *db, const char *id_text,
                       const char *identity, struct idb_record *r)
{
    char err[1024];
    int st;
    if (identity != NULL) {
        st = idb_record_by_identity(db, identity, r, err, sizeof err);
    } else {
        unsigned long id;
        if (icissue_parse_count(id_text, 0x7FFFFFFFFFFFFFFFUL, &id) != 0)
            return icissue_fail(cmd, "\"%.60s\" is not a record id", id_text);
        st = idb_record_by_id(db, (int64_t)id, r, err, sizeof err);
    }
    if (st != IDB_OK)
        return icissue_fail(cmd, "%s", err);
    return 0;
}

int icissue_cmd_show(int argc, char **argv)
{
    const char *dbopt = NULL, *identity = NULL;
    bool json = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--id", true, &identity, NULL },
        { "--json", false, NULL, &json },
        { NULL, false, NULL, NULL },
    };
    char **pos;
    int npos;
    int rc = cli_parse("show", argc, argv, opts, usage_show, &npos, &pos);
    if (rc >= 0)
        return rc;
    const char *id_text = npos > 0 ? pos[0] : NULL;
    free(pos);
    if (npos > 1)
        return cli_usage_error("show", "give one record");
    if ((id_text == NULL) == (identity == NULL))
        return cli_usage_error("show", "give the record id or --id IDENTITY (one of them)");
    unsigned long idv;
    if (id_text != NULL && icissue_parse_count(id_text, 0x7FFFFFFFFFFFFFFFUL, &idv) != 0)
        return cli_usage_error("show", "ID is a record id (a number, see 'icissue list'); "
                                       "give an identity as --id IDENTITY");
    struct idb *db;
    rc = icissue_open_db("show", icissue_db_path(dbopt), &db);
    if (rc != 0)
        return rc;
    struct idb_record *r = calloc(1, sizeof *r);
    struct ct_type *t = calloc(1, sizeof *t);
    struct hist_ctx h = { .db = db, .json = json, .indent = true };
    h.scratch = calloc(1, sizeof *h.scratch);
    if (r == NULL || t == NULL || h.scratch == NULL) {
        rc = icissue_fail("show", "out of memory");
        goto out;
    }
    rc = load_record("show", db, id_text, identity, r);
    if (rc != 0)
        goto out;
    char err[1024];
    const struct ct_type *tp = t;
    if (idb_type_get(db, r->card_type, t, err, sizeof err) != IDB_OK)
        tp = NULL; /* every item hidden */
    h.cached_id = r->id;
    snprintf(h.cached_identity, sizeof h.cached_identity, "%s", r->identity);
    if (json)
        show_json_head(r, tp);
    else {
        show_text(r, tp);
        printf("history\n");
    }
    if (idb_history_list(db, r->id, hist_row, &h, err, sizeof err) != IDB_OK)
        rc = icissue_fail("show", "%s", err);
    if (json)
        fputs(h.n > 0 ? "\n]}\n" : "]}\n", stdout);
    else if (h.n == 0)
        printf("  (none)\n");
    rc = cli_flush_stdout(rc);
out:
    if (r != NULL)
        idb_record_wipe(r);
    if (h.scratch != NULL)
        idb_record_wipe(h.scratch);
    free(r);
    free(h.scratch);
    free(t);
    idb_close(db);
    return rc;
}

int icissue_cmd_history(int argc, char **argv)
{
    const char *dbopt = NULL, *identity = NULL;
    bool json = false;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--id", true, &identity, NULL },
        { "--json", false, NULL, &json },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("history", argc, argv, opts, usage_history,
                                 "takes no argument (a record: --id IDENTITY)");
    if (rc >= 0)
        return rc;
    struct idb *db;
    rc = icissue_open_db("history", icissue_db_path(dbopt), &db);
    if (rc != 0)
        return rc;
    struct hist_ctx h = { .db = db, .json = json };
    h.scratch = calloc(1, sizeof *h.scratch);
    if (h.scratch == NULL) {
        idb_close(db);
        return icissue_fail("history", "out of memory");
    }
    int64_t rid = 0;
    if (identity != NULL) {
        rc = load_record("history", db, NULL, identity, h.scratch);
        rid = h.scratch->id;
        idb_record_wipe(h.scratch);
    }
    char err[1024];
    if (rc == 0) {
        if (json)
            fputc('[', stdout);
        else
            printf("%-24s %-14s %-16s %-8s %-16s %-10s %-12s %s\n", "AT", "EVENT", "IDENTITY",
                   "ROLE", "CARD", "CARD TYPE", "OPERATOR", "DETAIL");
        if (idb_history_list(db, rid, hist_row, &h, err, sizeof err) != IDB_OK)
            rc = icissue_fail("history", "%s", err);
        if (json)
            fputs(h.n > 0 ? "\n]\n" : "]\n", stdout);
        else if (h.n == 0)
            printf("(no events)\n");
        rc = cli_flush_stdout(rc);
    }
    free(h.scratch);
    idb_close(db);
    return rc;
}

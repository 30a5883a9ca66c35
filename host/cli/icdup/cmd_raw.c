/* icdup apdu and icdup status: raw command APDUs, and a card's identity and state as read by
 * host/card_info.c. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card_info.h"
#include "card_ops.h"
#include "cli.h"
#include "hex.h"
#include "ins.h"
#include "secrets.h"
#include "sw.h"
#include "transport.h"

static void usage_apdu(FILE *f)
{
    fputs("usage: icdup apdu --card URI HEX...\n"
          "       icdup apdu --card URI -        (APDUs from standard input, one per line)\n"
          "\n"
          "Sends each command APDU in order and prints each response on its own line as\n"
          "hex bytes, data then SW1 SW2 (e.g. \"6F 07 82 01 38 83 02 3F 00 90 00\").\n"
          "Each HEX argument is one APDU; bytes may be separated by spaces or colons when\n"
          "quoted (\"00 A4 00 0C 02 3F 00\", 00:a4:00:0c:02:3f:00). On standard input blank\n"
          "lines and lines starting with '#' are skipped. 61xx and 6Cxx are handled\n"
          "(GET RESPONSE, repeat with the right Le); any other status word is printed and\n"
          "is not an error: the exit status is 1 only when the reader fails, 2 for bad hex.\n"
          "\n"
          "  --card URI     the reader (default: $ICDUP_CARD)\n"
          "  -v, --verbose  trace every APDU to stderr (PINs redacted)\n"
          "  -h, --help     this help\n"
          "\n",
          f);
    cli_print_uri_help(f);
}

static void usage_status(FILE *f)
{
    fputs("usage: icdup status --card URI [--json]\n"
          "\n"
          "Resets the card, selects the MF and reads with GET DATA: serial number (DF01),\n"
          "card type (DF02), life cycle (DF03), PIN status (DF04), file list (DF05), NVM\n"
          "usage (DF06), key group (DF10: shares present, KCV) and key state (DF11: key\n"
          "present, origin, export count, backup flag, export lock). Prints them for\n"
          "people, or as one JSON object with --json.\n"
          "Exit status 1 when the reader fails or the card refuses an item.\n"
          "\n"
          "  --card URI     the reader (default: $ICDUP_CARD)\n"
          "  --json         machine-readable output\n"
          "  -v, --verbose  trace every APDU to stderr\n"
          "  -h, --help     this help\n"
          "\n",
          f);
    cli_print_uri_help(f);
}

/* ---- shared option handling ------------------------------------------------------------- */

struct cmd_opts {
    const char *card;
    bool json;
    bool help;
    int npos;
    char **pos;
};

/* Parses the options of one command. allow_json: --json is known. Returns 0, or EXIT_USAGE
 * after printing the error. */
static int parse_cmd_opts(const char *cmd, int argc, char **argv, bool allow_json,
                          struct cmd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
    if (o->pos == NULL) {
        fprintf(stderr, "icdup: error: out of memory\n");
        return 1;
    }
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            cli_verbose = true;
        } else if (allow_json && strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--card") == 0 || strncmp(a, "--card=", 7) == 0) {
            const char *v = a[6] == '=' ? a + 7 : NULL;
            if (v == NULL) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "icdup: error: --card needs a reader URI\n");
                    cli_usage_hint(cmd);
                    return EXIT_USAGE;
                }
                v = argv[++i];
            }
            o->card = v;
        } else {
            fprintf(stderr, "icdup: error: %s: unknown option \"%s\"\n", cmd, a);
            cli_usage_hint(cmd);
            return EXIT_USAGE;
        }
    }
    if (o->card == NULL) {
        const char *env = getenv("ICDUP_CARD");
        if (env != NULL && env[0] != '\0')
            o->card = env;
    }
    return 0;
}
/* ---- apdu ------------------------------------------------------------------------------- */

struct apdu_list {
    uint8_t **buf;
    size_t *len;
    size_t n;
    size_t cap;
};

static void apdu_list_free(struct apdu_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->buf[i]);
    free(l->buf);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* Decodes one APDU and appends it. what names it in messages. Returns 0, EXIT_USAGE or 1. */
static int apdu_list_add(struct apdu_list *l, const char *text, const char *what)
{
    if (l->n == l->cap) {
        size_t nc = l->cap == 0 ? 8 : l->cap * 2;
        uint8_t **nb = realloc(l->buf, nc * sizeof *nb);
        if (nb == NULL)
            goto oom;
        l->buf = nb;
        size_t *nl = realloc(l->len, nc * sizeof *nl);
        if (nl == NULL)
            goto oom;
        l->len = nl;
        l->cap = nc;
    }
    size_t cap = strlen(text) / 2 + 1;
    uint8_t *b = malloc(cap);
    if (b == NULL)
        goto oom;
    size_t n = 0;
    char err[160];
    if (hex_decode(text, b, cap, &n, err, sizeof err) != 0) {
        free(b);
        fprintf(stderr, "icdup: error: apdu: %s: %s\n", what, err);
        return EXIT_USAGE;
    }
    if (n == 0 || n > TRANSPORT_CAPDU_MAX) {
        free(b);
        if (n == 0)
            fprintf(stderr, "icdup: error: apdu: %s is empty\n", what);
        else
            fprintf(stderr, "icdup: error: apdu: %s has %zu bytes, more than the %u of the "
                    "longest extended APDU\n", what, n, TRANSPORT_CAPDU_MAX);
        return EXIT_USAGE;
    }
    l->buf[l->n] = b;
    l->len[l->n] = n;
    l->n++;
    return 0;
oom:
    fprintf(stderr, "icdup: error: out of memory\n");
    return 1;
}

static int apdu_read_stdin(struct apdu_list *l)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
            continue;
        char what[64];
        snprintf(what, sizeof what, "standard input line %lu", lineno);
        rc = apdu_list_add(l, s, what);
    }
    free(line);
    return rc;
}

int cli_cmd_apdu(int argc, char **argv)
{
    struct cmd_opts o;
    int rc = parse_cmd_opts("apdu", argc, argv, false, &o);
    if (rc != 0)
        goto out_opts;
    if (o.help) {
        usage_apdu(stdout);
        goto out_opts;
    }

    struct apdu_list list;
    memset(&list, 0, sizeof list);
    bool from_stdin = o.npos == 1 && strcmp(o.pos[0], "-") == 0;
    if (from_stdin) {
        rc = apdu_read_stdin(&list);
    } else {
        for (int i = 0; i < o.npos && rc == 0; i++) {
            char what[32];
            snprintf(what, sizeof what, "APDU %d", i + 1);
            if (strcmp(o.pos[i], "-") == 0) {
                fprintf(stderr, "icdup: error: apdu: '-' (standard input) cannot be mixed "
                                "with HEX arguments\n");
                rc = EXIT_USAGE;
                break;
            }
            rc = apdu_list_add(&list, o.pos[i], what);
        }
    }
    if (rc == 0 && list.n == 0) {
        fprintf(stderr, "icdup: error: apdu: no APDU given\n");
        cli_usage_hint("apdu");
        rc = EXIT_USAGE;
    }
    if (rc != 0)
        goto out_list;

    struct transport *t = NULL;
    rc = cli_open_card("apdu", o.card, &t);
    if (rc != 0)
        goto out_list;
    uint8_t *resp = malloc(TRANSPORT_RAPDU_MAX);
    if (resp == NULL) {
        fprintf(stderr, "icdup: error: out of memory\n");
        rc = 1;
        goto out_card;
    }
    for (size_t i = 0; i < list.n; i++) {
        char err[512];
        size_t rlen = 0;
        if (transport_exchange(t, list.buf[i], list.len[i], resp, TRANSPORT_RAPDU_MAX, &rlen,
                               err, sizeof err) != 0) {
            fflush(stdout);
            fprintf(stderr, "icdup: error: APDU %zu: %s\n", i + 1, err);
            rc = 1;
            break;
        }
        hex_fprint(stdout, resp, rlen);
        fputc('\n', stdout);
    }
    rc = cli_flush_stdout(rc);
    free(resp);
out_card:
    transport_close(t);
out_list:
    apdu_list_free(&list);
out_opts:
    free(o.pos);
    return rc;
}


/* ---- status ----------------------------------------------------------------------------- */

static bool is_printable(const uint8_t *b, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] < 0x20 || b[i] > 0x7E)
            return false;
    return true;
}

static void print_file(FILE *f, const uint8_t *r, int depth)
{
    char b1[8], b2[8], b3[8];
    struct card_info_file fi;
    card_info_file_decode(r, &fi);
    bool df = fi.fdb == FDB_DF;
    char fid[48];
    int d = depth > 16 ? 16 : depth;
    snprintf(fid, sizeof fid, "%*s%04X", 2 * d, "", (unsigned)fi.fid);
    fprintf(f, "  %-12s  %-11s", fid, card_info_file_type(&fi));
    if (!df)
        fprintf(f, "  %5u bytes", (unsigned)fi.size);
    else
        fprintf(f, "  %11s", "");
    if (fi.fdb != FDB_DF && fi.fdb != FDB_WORKING_EF && fi.fdb != FDB_INTERNAL_EF)
        fprintf(f, "  (FDB %02X)", fi.fdb);
    fprintf(f, "  %s  read: %s, %s: %s, delete: %s", card_info_lcs_name(fi.lcs),
            card_info_ac_name(fi.ac_read, b1, sizeof b1), df ? "create" : "update",
            card_info_ac_name(fi.ac_update, b2, sizeof b2),
            card_info_ac_name(fi.ac_delete, b3, sizeof b3));
    if (fi.sfi != 0)
        fprintf(f, "  SFI %u", fi.sfi);
    fputc('\n', f);
}

static void print_tree(FILE *f, const uint8_t *recs, size_t n, const long *parent, bool *done,
                       size_t i, int depth)
{
    done[i] = true;
    print_file(f, recs + i * CARD_INFO_FILE_REC_LEN, depth);
    if (depth > 16)
        return;
    for (size_t j = 0; j < n; j++)
        if (!done[j] && parent[j] == (long)i)
            print_tree(f, recs, n, parent, done, j, depth + 1);
}

static void print_item_error(FILE *f, const struct card_info_item *it)
{
    fprintf(f, "(unavailable: %04X %s)\n", it->sw, sw_describe(it->sw));
}

static void hex_fprint_compact(FILE *f, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", b[i]);
}

static void status_text(FILE *f, const char *uri, const struct card_info *s)
{
    char atr_hex[3 * TRANSPORT_ATR_MAX + 1];
    hex_encode(s->atr, s->atr_len, ' ', atr_hex, sizeof atr_hex);
    fprintf(f, "reader      %s\n", uri);
    fprintf(f, "ATR         %s\n", atr_hex);
    if (s->select_sw != SW_OK)
        fprintf(f, "MF          (SELECT refused: %04X %s)\n", s->select_sw,
                sw_describe(s->select_sw));

    const struct card_info_item *it = &s->it[CARD_INFO_SERIAL];
    fprintf(f, "serial      ");
    if (it->sw == SW_OK) {
        hex_fprint(f, it->data, it->len);
        fputc('\n', f);
    } else {
        print_item_error(f, it);
    }

    it = &s->it[CARD_INFO_TYPE];
    fprintf(f, "card type   ");
    if (it->sw == SW_OK && is_printable(it->data, it->len))
        fprintf(f, "%.*s\n", (int)it->len, (const char *)it->data);
    else if (it->sw == SW_OK) {
        hex_fprint(f, it->data, it->len);
        fputc('\n', f);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND)
        fprintf(f, "(not set)\n");
    else
        print_item_error(f, it);

    it = &s->it[CARD_INFO_LCS];
    fprintf(f, "life cycle  ");
    if (it->sw == SW_OK && it->len == 1)
        fprintf(f, "%s (%02X)\n", card_info_lcs_name(it->data[0]), it->data[0]);
    else if (it->sw == SW_OK)
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    else
        print_item_error(f, it);

    it = &s->it[CARD_INFO_PINS];
    fprintf(f, "PINs\n");
    if (it->sw == SW_OK && it->len % CARD_INFO_PIN_REC_LEN == 0) {
        for (size_t i = 0; i + CARD_INFO_PIN_REC_LEN <= it->len; i += CARD_INFO_PIN_REC_LEN) {
            struct card_info_pin p;
            card_info_pin_decode(it->data + i, &p);
            fprintf(f, "  %s (%02X): ", cardop_pin_name(p.ref), p.ref);
            if (!p.set)
                fprintf(f, "not set\n");
            else if (p.blocked)
                fprintf(f, "blocked (0 of %u tries left)\n", p.max_tries);
            else
                fprintf(f, "set, %u of %u tries left\n", p.tries_left, p.max_tries);
        }
        if (it->len == 0)
            fprintf(f, "  (none)\n");
    } else if (it->sw == SW_OK) {
        fprintf(f, "  (malformed: %zu bytes)\n", it->len);
    } else {
        fprintf(f, "  ");
        print_item_error(f, it);
    }

    it = &s->it[CARD_INFO_FILES];
    fprintf(f, "files\n");
    if (it->sw == SW_OK && it->len % CARD_INFO_FILE_REC_LEN == 0 && it->len > 0) {
        size_t n = it->len / CARD_INFO_FILE_REC_LEN;
        long *parent = calloc(n, sizeof *parent);
        bool *done = calloc(n, sizeof *done);
        if (parent != NULL && done != NULL) {
            for (size_t i = 0; i < n; i++)
                parent[i] = card_info_file_parent(it->data, n, i);
            for (size_t i = 0; i < n; i++)
                if (!done[i] && parent[i] < 0)
                    print_tree(f, it->data, n, parent, done, i, 0);
            for (size_t i = 0; i < n; i++) /* cycles: never reached from a root */
                if (!done[i])
                    print_tree(f, it->data, n, parent, done, i, 0);
        }
        free(parent);
        free(done);
    } else if (it->sw == SW_OK && it->len == 0) {
        fprintf(f, "  (none)\n");
    } else if (it->sw == SW_OK) {
        fprintf(f, "  (malformed: %zu bytes)\n", it->len);
    } else {
        fprintf(f, "  ");
        print_item_error(f, it);
    }

    it = &s->it[CARD_INFO_NVM];
    struct card_info_nvm nvm;
    fprintf(f, "NVM         ");
    if (it->sw == SW_OK && card_info_nvm_decode(it->data, it->len, &nvm) == 0)
        fprintf(f, "%lu bytes total, %lu used, %lu free\n", (unsigned long)nvm.total,
                (unsigned long)nvm.used, (unsigned long)nvm.free);
    else if (it->sw == SW_OK)
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    else
        print_item_error(f, it);

    it = &s->it[CARD_INFO_GROUP];
    struct cardop_group g;
    fprintf(f, "key group   ");
    if (it->sw == SW_OK && cardop_key_group_decode(it->data, it->len, &g, NULL) == 0) {
        char list[48];
        fprintf(f, "%u share%s; present: %s", g.n, g.n == 1 ? "" : "s",
                g.present ? secrets_share_list(g.present, list, sizeof list) : "none");
        if (g.complete) {
            fputs("; KCV ", f);
            hex_fprint_compact(f, g.kcv, 8);
        } else {
            fputs("; incomplete (no KCV)", f);
        }
        fputc('\n', f);
    } else if (it->sw == SW_OK) {
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fprintf(f, "(no key profile: personalize the card with 'icdup init')\n");
    } else {
        print_item_error(f, it);
    }

    it = &s->it[CARD_INFO_KEY];
    struct cardop_key_state ks;
    fprintf(f, "key         ");
    if (it->sw == SW_OK && cardop_key_state_decode(it->data, it->len, &ks) == 0) {
        if (!ks.present) {
            fprintf(f, "none");
        } else {
            fprintf(f, "present, ");
            if (ks.origin == CARDOP_ORIGIN_IMPORTED) {
                fputs("imported from card ", f);
                hex_fprint_compact(f, ks.src_serial, 8);
                fputs(" under KCV ", f);
                hex_fprint_compact(f, ks.src_kcv, 8);
            } else if (ks.origin == CARDOP_ORIGIN_EXTERNAL) {
                fputs("imported from an external generator under KCV ", f);
                hex_fprint_compact(f, ks.src_kcv, 8);
            } else {
                fputs(cardop_origin_name(ks.origin), f);
            }
        }
        fprintf(f, "\n            exported %u time%s; backup %s; export %s; policy: %s\n",
                (unsigned)ks.export_count, ks.export_count == 1 ? "" : "s",
                (ks.flags & CARDOP_FLAG_BACKUP) ? "generated" : "not generated",
                (ks.flags & CARDOP_FLAG_LOCKED) ? "locked" : "open",
                (ks.policy & CARDOP_POLICY_REEXPORT) ? "re-export allowed" : "one export");
    } else if (it->sw == SW_OK) {
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fprintf(f, "(no key profile)\n");
    } else {
        print_item_error(f, it);
    }
}

static void json_item_error(FILE *f, const struct card_info_item *it)
{
    fprintf(f, "{\"error\": {\"sw\": \"%04X\", \"text\": ", it->sw);
    const char *d = sw_describe(it->sw);
    cli_json_string(f, (const uint8_t *)d, strlen(d));
    fputs("}}", f);
}

static void status_json(FILE *f, const char *uri, const struct card_info *s)
{
    char b1[8], b2[8], b3[8];
    fputs("{\"reader\": ", f);
    cli_json_string(f, (const uint8_t *)uri, strlen(uri));
    fputs(", \"atr\": ", f);
    cli_json_hex(f, s->atr, s->atr_len);
    fprintf(f, ", \"select_mf_sw\": \"%04X\"", s->select_sw);

    const struct card_info_item *it = &s->it[CARD_INFO_SERIAL];
    fputs(", \"serial\": ", f);
    if (it->sw == SW_OK)
        cli_json_hex(f, it->data, it->len);
    else
        json_item_error(f, it);

    it = &s->it[CARD_INFO_TYPE];
    fputs(", \"card_type\": ", f);
    if (it->sw == SW_OK) {
        fputs("{\"hex\": ", f);
        cli_json_hex(f, it->data, it->len);
        if (is_printable(it->data, it->len)) {
            fputs(", \"text\": ", f);
            cli_json_string(f, it->data, it->len);
        }
        fputc('}', f);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fputs("null", f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[CARD_INFO_LCS];
    fputs(", \"life_cycle\": ", f);
    if (it->sw == SW_OK && it->len == 1)
        fprintf(f, "{\"value\": %u, \"name\": \"%s\"}", it->data[0],
                card_info_lcs_name(it->data[0]));
    else
        json_item_error(f, it);

    it = &s->it[CARD_INFO_PINS];
    fputs(", \"pins\": ", f);
    if (it->sw == SW_OK && it->len % CARD_INFO_PIN_REC_LEN == 0) {
        fputc('[', f);
        for (size_t i = 0; i + CARD_INFO_PIN_REC_LEN <= it->len; i += CARD_INFO_PIN_REC_LEN) {
            struct card_info_pin p;
            card_info_pin_decode(it->data + i, &p);
            fprintf(f, "%s{\"ref\": \"%02X\", \"name\": \"%s\", \"set\": %s, "
                    "\"tries_left\": %u, \"max_tries\": %u, \"blocked\": %s}",
                    i == 0 ? "" : ", ", p.ref, cardop_pin_name(p.ref), p.set ? "true" : "false",
                    p.tries_left, p.max_tries, p.blocked ? "true" : "false");
        }
        fputc(']', f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[CARD_INFO_FILES];
    fputs(", \"files\": ", f);
    if (it->sw == SW_OK && it->len % CARD_INFO_FILE_REC_LEN == 0) {
        fputc('[', f);
        for (size_t i = 0; i + CARD_INFO_FILE_REC_LEN <= it->len; i += CARD_INFO_FILE_REC_LEN) {
            struct card_info_file fi;
            card_info_file_decode(it->data + i, &fi);
            fprintf(f, "%s{\"fid\": \"%04X\", \"parent\": \"%04X\", \"type\": \"%s\", "
                    "\"fdb\": %u, \"size\": %u, \"lcs\": %u, \"lcs_name\": \"%s\", "
                    "\"read\": \"%s\", \"update\": \"%s\", \"delete\": \"%s\", \"sfi\": %u}",
                    i == 0 ? "" : ", ", (unsigned)fi.fid, (unsigned)fi.parent,
                    card_info_file_type(&fi), fi.fdb, (unsigned)fi.size, fi.lcs,
                    card_info_lcs_name(fi.lcs), card_info_ac_name(fi.ac_read, b1, sizeof b1),
                    card_info_ac_name(fi.ac_update, b2, sizeof b2),
                    card_info_ac_name(fi.ac_delete, b3, sizeof b3), fi.sfi);
        }
        fputc(']', f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[CARD_INFO_NVM];
    struct card_info_nvm nvm;
    fputs(", \"nvm\": ", f);
    if (it->sw == SW_OK && card_info_nvm_decode(it->data, it->len, &nvm) == 0)
        fprintf(f, "{\"total\": %lu, \"used\": %lu, \"free\": %lu}", (unsigned long)nvm.total,
                (unsigned long)nvm.used, (unsigned long)nvm.free);
    else
        json_item_error(f, it);

    it = &s->it[CARD_INFO_GROUP];
    struct cardop_group g;
    fputs(", \"key_group\": ", f);
    if (it->sw == SW_OK && cardop_key_group_decode(it->data, it->len, &g, NULL) == 0) {
        fprintf(f, "{\"shares\": %u, \"present\": ", g.n);
        cli_json_share_list(f, g.present);
        fprintf(f, ", \"complete\": %s, \"kcv\": ", g.complete ? "true" : "false");
        if (g.complete)
            cli_json_hex(f, g.kcv, 8);
        else
            fputs("null", f);
        fputc('}', f);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fputs("null", f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[CARD_INFO_KEY];
    struct cardop_key_state ks;
    fputs(", \"key\": ", f);
    if (it->sw == SW_OK && cardop_key_state_decode(it->data, it->len, &ks) == 0) {
        static const char *const origins[] = { "none", "generated", "imported", "external" };
        fprintf(f, "{\"present\": %s, \"origin\": \"%s\", \"source_serial\": ",
                ks.present ? "true" : "false", ks.origin < 4 ? origins[ks.origin] : "unknown");
        if (ks.origin == CARDOP_ORIGIN_IMPORTED)
            cli_json_hex(f, ks.src_serial, 8);
        else
            fputs("null", f);
        fputs(", \"source_kcv\": ", f);
        if (ks.origin == CARDOP_ORIGIN_IMPORTED || ks.origin == CARDOP_ORIGIN_EXTERNAL)
            cli_json_hex(f, ks.src_kcv, 8);
        else
            fputs("null", f);
        fprintf(f, ", \"export_count\": %u, \"backup_generated\": %s, \"export_locked\": %s, "
                "\"reexport_allowed\": %s}", (unsigned)ks.export_count,
                (ks.flags & CARDOP_FLAG_BACKUP) ? "true" : "false",
                (ks.flags & CARDOP_FLAG_LOCKED) ? "true" : "false",
                (ks.policy & CARDOP_POLICY_REEXPORT) ? "true" : "false");
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fputs("null", f);
    } else {
        json_item_error(f, it);
    }
    fputs("}\n", f);
}

int cli_cmd_status(int argc, char **argv)
{
    struct cmd_opts o;
    int rc = parse_cmd_opts("status", argc, argv, true, &o);
    if (rc != 0)
        goto out_opts;
    if (o.help) {
        usage_status(stdout);
        goto out_opts;
    }
    if (o.npos != 0) {
        fprintf(stderr, "icdup: error: status: unexpected argument \"%s\"\n", o.pos[0]);
        cli_usage_hint("status");
        rc = EXIT_USAGE;
        goto out_opts;
    }
    struct transport *t = NULL;
    rc = cli_open_card("status", o.card, &t);
    if (rc != 0)
        goto out_opts;

    struct card_info s;
    char err[640];
    if (card_info_read(t, &s, err, sizeof err) != 0) {
        fprintf(stderr, "icdup: error: %s\n", err);
        rc = 1;
        goto out_card;
    }
    if (o.json)
        status_json(stdout, o.card, &s);
    else
        status_text(stdout, o.card, &s);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "icdup: error: cannot write the output\n");
        rc = 1;
    } else if (s.refusals > 0) {
        fprintf(stderr, "icdup: error: status: the card refused %d of %d commands\n",
                s.refusals, CARD_INFO_COMMANDS);
        rc = 1;
    }
    card_info_free(&s);
out_card:
    transport_close(t);
out_opts:
    free(o.pos);
    return rc;
}

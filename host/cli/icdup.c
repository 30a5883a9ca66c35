/* icdup: the duplication and data-protection CLI. A thin front end over host/ libraries.
 * Exit status: 0 success, 1 failure (transport, card refusal where it matters), 2 usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "ins.h"
#include "sw.h"
#include "transport.h"

#define EXIT_USAGE 2

static bool g_verbose;

static void die_usage_hint(const char *cmd)
{
    if (cmd != NULL)
        fprintf(stderr, "Try 'icdup %s --help'.\n", cmd);
    else
        fprintf(stderr, "Try 'icdup --help'.\n");
}

static void print_uri_help(FILE *f)
{
    fputs("Reader URIs (--card URI, or the environment variable ICDUP_CARD):\n", f);
    transport_print_uri_help(f);
}

static void usage_main(FILE *f)
{
    fputs("usage: icdup [-v] COMMAND [options]\n"
          "\n"
          "Commands:\n"
          "  apdu    --card URI HEX...   send raw command APDUs, print each response\n"
          "  status  --card URI [--json] show a card's identity, life cycle, PINs, files, NVM\n"
          "\n"
          "Options:\n"
          "  -v, --verbose  trace every APDU and status word to stderr (secrets redacted)\n"
          "  -h, --help     this help; 'icdup COMMAND --help' for one command\n"
          "\n",
          f);
    print_uri_help(f);
    fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
}

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
    print_uri_help(f);
}

static void usage_status(FILE *f)
{
    fputs("usage: icdup status --card URI [--json]\n"
          "\n"
          "Resets the card, selects the MF and reads with GET DATA: serial number (DF01),\n"
          "card type (DF02), life cycle (DF03), PIN status (DF04), file list (DF05) and NVM\n"
          "usage (DF06). Prints them for people, or as one JSON object with --json.\n"
          "Exit status 1 when the reader fails or the card refuses an item.\n"
          "\n"
          "  --card URI     the reader (default: $ICDUP_CARD)\n"
          "  --json         machine-readable output\n"
          "  -v, --verbose  trace every APDU to stderr\n"
          "  -h, --help     this help\n"
          "\n",
          f);
    print_uri_help(f);
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
            g_verbose = true;
        } else if (allow_json && strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--card") == 0 || strncmp(a, "--card=", 7) == 0) {
            const char *v = a[6] == '=' ? a + 7 : NULL;
            if (v == NULL) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "icdup: error: --card needs a reader URI\n");
                    die_usage_hint(cmd);
                    return EXIT_USAGE;
                }
                v = argv[++i];
            }
            o->card = v;
        } else {
            fprintf(stderr, "icdup: error: %s: unknown option \"%s\"\n", cmd, a);
            die_usage_hint(cmd);
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

static int open_card(const char *cmd, const char *uri, struct transport **t)
{
    char err[512];
    if (uri == NULL) {
        fprintf(stderr, "icdup: error: %s: no card given: use --card URI or set ICDUP_CARD\n",
                cmd);
        die_usage_hint(cmd);
        return EXIT_USAGE;
    }
    int rc = transport_open(uri, t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "icdup: error: %s\n", err);
        return rc == TRANSPORT_E_URI ? EXIT_USAGE : 1;
    }
    if (g_verbose)
        transport_set_trace(*t, stderr);
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

static int cmd_apdu(int argc, char **argv)
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
        die_usage_hint("apdu");
        rc = EXIT_USAGE;
    }
    if (rc != 0)
        goto out_list;

    struct transport *t = NULL;
    rc = open_card("apdu", o.card, &t);
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
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "icdup: error: cannot write the output\n");
        rc = 1;
    }
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

static const char *lcs_name(uint8_t lcs)
{
    if (lcs == 0x00)
        return "no information";
    if (lcs == LCS_CREATION)
        return "creation";
    if (lcs == LCS_INIT)
        return "initialisation";
    if ((lcs & 0xFCu) == 0x0Cu)
        return "terminated";
    if ((lcs & 0xFDu) == 0x05u)
        return "operational";
    if ((lcs & 0xFDu) == 0x04u)
        return "deactivated";
    return "proprietary";
}

static const char *pin_name(uint8_t ref)
{
    switch (ref) {
    case PIN_REF_USER:
        return "user PIN";
    case PIN_REF_PUK:
        return "PUK";
    case PIN_REF_ADMIN:
        return "admin PIN";
    default:
        return "PIN";
    }
}

static const char *ac_name(uint8_t ac, char *buf, size_t cap)
{
    switch (ac) {
    case AC_ALWAYS:
        return "always";
    case AC_PIN:
        return "PIN";
    case AC_ADMIN:
        return "admin";
    case AC_NEVER:
        return "never";
    default:
        snprintf(buf, cap, "0x%02X", ac);
        return buf;
    }
}

#define FILE_REC_LEN 12

static const char *file_type(const uint8_t *r)
{
    uint16_t fid = (uint16_t)((r[0] << 8) | r[1]);
    switch (r[4]) {
    case FDB_DF:
        return fid == FID_MF ? "MF" : "DF";
    case FDB_WORKING_EF:
        return "working EF";
    case FDB_INTERNAL_EF:
        return "internal EF";
    default:
        return "file";
    }
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One GET DATA item as read from the card. */
struct item {
    uint16_t tag;
    const char *label;
    int rc;          /* transport result */
    uint16_t sw;
    uint8_t *data;   /* heap */
    size_t len;
};

struct status {
    char atr_hex[3 * TRANSPORT_ATR_MAX + 1];
    uint16_t select_sw;
    struct item it[6];
    int failures;
};

static void json_string(FILE *f, const uint8_t *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7F)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_hex(FILE *f, const uint8_t *b, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", b[i]);
    fputc('"', f);
}

static bool is_printable(const uint8_t *b, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] < 0x20 || b[i] > 0x7E)
            return false;
    return true;
}

/* Index of the DF record that is the parent of record i, or -1 (a root). */
static long file_parent(const uint8_t *recs, size_t n, size_t i)
{
    const uint8_t *r = recs + i * FILE_REC_LEN;
    uint16_t fid = (uint16_t)((r[0] << 8) | r[1]);
    uint16_t parent = (uint16_t)((r[2] << 8) | r[3]);
    if (fid == FID_MF)
        return -1;
    for (size_t j = 0; j < n; j++) {
        const uint8_t *p = recs + j * FILE_REC_LEN;
        if (j != i && p[4] == FDB_DF && ((p[0] << 8) | p[1]) == parent)
            return (long)j;
    }
    return -1;
}

static void print_file(FILE *f, const uint8_t *r, int depth)
{
    char b1[8], b2[8], b3[8];
    bool df = r[4] == FDB_DF;
    char fid[48];
    int d = depth > 16 ? 16 : depth;
    snprintf(fid, sizeof fid, "%*s%02X%02X", 2 * d, "", r[0], r[1]);
    fprintf(f, "  %-12s  %-11s", fid, file_type(r));
    if (!df)
        fprintf(f, "  %5u bytes", (unsigned)((r[6] << 8) | r[7]));
    else
        fprintf(f, "  %11s", "");
    if (r[4] != FDB_DF && r[4] != FDB_WORKING_EF && r[4] != FDB_INTERNAL_EF)
        fprintf(f, "  (FDB %02X)", r[4]);
    fprintf(f, "  %s  read: %s, %s: %s, delete: %s", lcs_name(r[5]),
            ac_name(r[8], b1, sizeof b1), df ? "create" : "update",
            ac_name(r[9], b2, sizeof b2), ac_name(r[10], b3, sizeof b3));
    if (r[11] != 0)
        fprintf(f, "  SFI %u", r[11]);
    fputc('\n', f);
}

static void print_tree(FILE *f, const uint8_t *recs, size_t n, const long *parent, bool *done,
                       size_t i, int depth)
{
    done[i] = true;
    print_file(f, recs + i * FILE_REC_LEN, depth);
    if (depth > 16)
        return;
    for (size_t j = 0; j < n; j++)
        if (!done[j] && parent[j] == (long)i)
            print_tree(f, recs, n, parent, done, j, depth + 1);
}

static void print_item_error(FILE *f, const struct item *it)
{
    fprintf(f, "(unavailable: %04X %s)\n", it->sw, sw_describe(it->sw));
}

static void status_text(FILE *f, const char *uri, const struct status *s)
{
    fprintf(f, "reader      %s\n", uri);
    fprintf(f, "ATR         %s\n", s->atr_hex);
    if (s->select_sw != SW_OK)
        fprintf(f, "MF          (SELECT refused: %04X %s)\n", s->select_sw,
                sw_describe(s->select_sw));

    const struct item *it = &s->it[0];
    fprintf(f, "serial      ");
    if (it->sw == SW_OK) {
        hex_fprint(f, it->data, it->len);
        fputc('\n', f);
    } else {
        print_item_error(f, it);
    }

    it = &s->it[1];
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

    it = &s->it[2];
    fprintf(f, "life cycle  ");
    if (it->sw == SW_OK && it->len == 1)
        fprintf(f, "%s (%02X)\n", lcs_name(it->data[0]), it->data[0]);
    else if (it->sw == SW_OK)
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    else
        print_item_error(f, it);

    it = &s->it[3];
    fprintf(f, "PINs\n");
    if (it->sw == SW_OK && it->len % 4 == 0) {
        for (size_t i = 0; i + 4 <= it->len; i += 4) {
            const uint8_t *r = it->data + i;
            fprintf(f, "  %s (%02X): ", pin_name(r[0]), r[0]);
            if (r[1] == 0)
                fprintf(f, "not set\n");
            else if (r[2] == 0)
                fprintf(f, "blocked (0 of %u tries left)\n", r[3]);
            else
                fprintf(f, "set, %u of %u tries left\n", r[2], r[3]);
        }
        if (it->len == 0)
            fprintf(f, "  (none)\n");
    } else if (it->sw == SW_OK) {
        fprintf(f, "  (malformed: %zu bytes)\n", it->len);
    } else {
        fprintf(f, "  ");
        print_item_error(f, it);
    }

    it = &s->it[4];
    fprintf(f, "files\n");
    if (it->sw == SW_OK && it->len % FILE_REC_LEN == 0 && it->len > 0) {
        size_t n = it->len / FILE_REC_LEN;
        long *parent = calloc(n, sizeof *parent);
        bool *done = calloc(n, sizeof *done);
        if (parent != NULL && done != NULL) {
            for (size_t i = 0; i < n; i++)
                parent[i] = file_parent(it->data, n, i);
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

    it = &s->it[5];
    fprintf(f, "NVM         ");
    if (it->sw == SW_OK && it->len == 12)
        fprintf(f, "%lu bytes total, %lu used, %lu free\n", (unsigned long)be32(it->data),
                (unsigned long)be32(it->data + 4), (unsigned long)be32(it->data + 8));
    else if (it->sw == SW_OK)
        fprintf(f, "(malformed: %zu bytes)\n", it->len);
    else
        print_item_error(f, it);
}

static void json_item_error(FILE *f, const struct item *it)
{
    fprintf(f, "{\"error\": {\"sw\": \"%04X\", \"text\": ", it->sw);
    const char *d = sw_describe(it->sw);
    json_string(f, (const uint8_t *)d, strlen(d));
    fputs("}}", f);
}

static void status_json(FILE *f, const char *uri, const struct status *s)
{
    char b1[8], b2[8], b3[8];
    fputs("{\"reader\": ", f);
    json_string(f, (const uint8_t *)uri, strlen(uri));
    fprintf(f, ", \"atr\": \"");
    for (const char *p = s->atr_hex; *p != '\0'; p++)
        if (*p != ' ')
            fputc(*p, f);
    fprintf(f, "\", \"select_mf_sw\": \"%04X\"", s->select_sw);

    const struct item *it = &s->it[0];
    fputs(", \"serial\": ", f);
    if (it->sw == SW_OK)
        json_hex(f, it->data, it->len);
    else
        json_item_error(f, it);

    it = &s->it[1];
    fputs(", \"card_type\": ", f);
    if (it->sw == SW_OK) {
        fputs("{\"hex\": ", f);
        json_hex(f, it->data, it->len);
        if (is_printable(it->data, it->len)) {
            fputs(", \"text\": ", f);
            json_string(f, it->data, it->len);
        }
        fputc('}', f);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fputs("null", f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[2];
    fputs(", \"life_cycle\": ", f);
    if (it->sw == SW_OK && it->len == 1)
        fprintf(f, "{\"value\": %u, \"name\": \"%s\"}", it->data[0], lcs_name(it->data[0]));
    else
        json_item_error(f, it);

    it = &s->it[3];
    fputs(", \"pins\": ", f);
    if (it->sw == SW_OK && it->len % 4 == 0) {
        fputc('[', f);
        for (size_t i = 0; i + 4 <= it->len; i += 4) {
            const uint8_t *r = it->data + i;
            fprintf(f, "%s{\"ref\": \"%02X\", \"name\": \"%s\", \"set\": %s, "
                    "\"tries_left\": %u, \"max_tries\": %u, \"blocked\": %s}",
                    i == 0 ? "" : ", ", r[0], pin_name(r[0]), r[1] ? "true" : "false", r[2],
                    r[3], r[1] && r[2] == 0 ? "true" : "false");
        }
        fputc(']', f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[4];
    fputs(", \"files\": ", f);
    if (it->sw == SW_OK && it->len % FILE_REC_LEN == 0) {
        fputc('[', f);
        for (size_t i = 0; i + FILE_REC_LEN <= it->len; i += FILE_REC_LEN) {
            const uint8_t *r = it->data + i;
            fprintf(f, "%s{\"fid\": \"%02X%02X\", \"parent\": \"%02X%02X\", \"type\": \"%s\", "
                    "\"fdb\": %u, \"size\": %u, \"lcs\": %u, \"lcs_name\": \"%s\", "
                    "\"read\": \"%s\", \"update\": \"%s\", \"delete\": \"%s\", \"sfi\": %u}",
                    i == 0 ? "" : ", ", r[0], r[1], r[2], r[3], file_type(r), r[4],
                    (unsigned)((r[6] << 8) | r[7]), r[5], lcs_name(r[5]),
                    ac_name(r[8], b1, sizeof b1), ac_name(r[9], b2, sizeof b2),
                    ac_name(r[10], b3, sizeof b3), r[11]);
        }
        fputc(']', f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[5];
    fputs(", \"nvm\": ", f);
    if (it->sw == SW_OK && it->len == 12)
        fprintf(f, "{\"total\": %lu, \"used\": %lu, \"free\": %lu}",
                (unsigned long)be32(it->data), (unsigned long)be32(it->data + 4),
                (unsigned long)be32(it->data + 8));
    else
        json_item_error(f, it);
    fputs("}\n", f);
}

static int cmd_status(int argc, char **argv)
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
        die_usage_hint("status");
        rc = EXIT_USAGE;
        goto out_opts;
    }
    struct transport *t = NULL;
    rc = open_card("status", o.card, &t);
    if (rc != 0)
        goto out_opts;

    struct status s;
    memset(&s, 0, sizeof s);
    static const struct {
        uint16_t tag;
        const char *label;
    } items[6] = {
        { DO_CARD_SERIAL, "serial" },  { DO_CARD_TYPE, "card type" },
        { DO_CARD_LCS, "life cycle" }, { DO_PIN_STATUS, "PIN status" },
        { DO_FILE_LIST, "file list" }, { DO_NVM_INFO, "NVM info" },
    };
    char err[512];
    uint8_t *resp = malloc(TRANSPORT_RAPDU_MAX);
    if (resp == NULL) {
        fprintf(stderr, "icdup: error: out of memory\n");
        rc = 1;
        goto out_card;
    }

    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    if (transport_reset(t, atr, sizeof atr, &atr_len, err, sizeof err) != 0) {
        fprintf(stderr, "icdup: error: reset: %s\n", err);
        rc = 1;
        goto out_resp;
    }
    hex_encode(atr, atr_len, ' ', s.atr_hex, sizeof s.atr_hex);

    static const uint8_t select_mf[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
    size_t rlen = 0;
    if (transport_exchange(t, select_mf, sizeof select_mf, resp, TRANSPORT_RAPDU_MAX, &rlen,
                           err, sizeof err) != 0) {
        fprintf(stderr, "icdup: error: SELECT MF: %s\n", err);
        rc = 1;
        goto out_resp;
    }
    s.select_sw = transport_sw(resp, rlen);
    if (s.select_sw != SW_OK)
        s.failures++;

    for (size_t i = 0; i < 6; i++) {
        struct item *it = &s.it[i];
        it->tag = items[i].tag;
        it->label = items[i].label;
        const uint8_t get_data[5] = { 0x00, INS_GET_DATA, (uint8_t)(it->tag >> 8),
                                      (uint8_t)it->tag, 0x00 };
        if (transport_exchange(t, get_data, sizeof get_data, resp, TRANSPORT_RAPDU_MAX, &rlen,
                               err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: GET DATA %04X (%s): %s\n", it->tag, it->label, err);
            rc = 1;
            goto out_items;
        }
        it->sw = transport_sw(resp, rlen);
        it->len = rlen - 2;
        it->data = malloc(it->len + 1);
        if (it->data == NULL) {
            fprintf(stderr, "icdup: error: out of memory\n");
            rc = 1;
            goto out_items;
        }
        memcpy(it->data, resp, it->len);
        if (it->sw != SW_OK && !(it->tag == DO_CARD_TYPE && it->sw == SW_REF_DATA_NOT_FOUND))
            s.failures++;
    }

    if (o.json)
        status_json(stdout, o.card, &s);
    else
        status_text(stdout, o.card, &s);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "icdup: error: cannot write the output\n");
        rc = 1;
    } else if (s.failures > 0) {
        fprintf(stderr, "icdup: error: status: the card refused %d of 7 commands\n",
                s.failures);
        rc = 1;
    }
out_items:
    for (size_t i = 0; i < 6; i++)
        free(s.it[i].data);
out_resp:
    free(resp);
out_card:
    transport_close(t);
out_opts:
    free(o.pos);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "apdu", cmd_apdu },
    { "status", cmd_status },
};

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage_main(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            g_verbose = true;
        } else {
            fprintf(stderr, "icdup: error: unknown option \"%s\"\n", a);
            die_usage_hint(NULL);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "help") == 0) {
        usage_main(stdout);
        return 0;
    }
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(cmd, commands[c].name) == 0)
            return commands[c].run(argc - i - 1, argv + i + 1);
    fprintf(stderr, "icdup: error: unknown command \"%s\"\n", cmd);
    die_usage_hint(NULL);
    return EXIT_USAGE;
}

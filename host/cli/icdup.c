/* icdup: the duplication and data-protection CLI. A thin front end over host/ libraries.
 * Exit status: 0 success, 1 failure (transport, card refusal where it matters), 2 usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "card_ops.h"
#include "dup.h"
#include "hex.h"
#include "ins.h"
#include "profile.h"
#include "secrets.h"
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
          "  status  --card URI [--json] show a card's identity, life cycle, PINs, files, NVM,\n"
          "                              key group and key state\n"
          "  init    --card URI ...      personalize a blank card with the default profile\n"
          "  clone   --src URI --dst URI copy the source card's key into the destination\n"
          "  keys    SUB --card URI ...  key group and key commands one at a time: kcv, share,\n"
          "                              generate, pubkey, binding, export, import, lock\n"
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

#define STATUS_ITEMS 8

struct status {
    char atr_hex[3 * TRANSPORT_ATR_MAX + 1];
    uint16_t select_sw;
    struct item it[STATUS_ITEMS];
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

static void hex_fprint_compact(FILE *f, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", b[i]);
}

/* A DF10 answer: N (1..8), a bitmap within N, and the KCV exactly when complete. */
static bool key_group_ok(const struct item *it)
{
    if (it->len != 2 && it->len != 10)
        return false;
    uint8_t n = it->data[0];
    if (n < 1 || n > 8)
        return false;
    uint8_t all = (uint8_t)((1u << n) - 1u);
    return (it->data[1] & (uint8_t)~all) == 0 && (it->len == 10) == (it->data[1] == all);
}

static void json_share_list(FILE *f, uint8_t bitmap)
{
    fputc('[', f);
    bool first = true;
    for (unsigned i = 0; i < 8; i++)
        if ((bitmap >> i) & 1u) {
            fprintf(f, "%s%u", first ? "" : ", ", i + 1);
            first = false;
        }
    fputc(']', f);
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

    it = &s->it[6];
    fprintf(f, "key group   ");
    if (it->sw == SW_OK && key_group_ok(it)) {
        char list[48];
        uint8_t n = it->data[0], present = it->data[1];
        fprintf(f, "%u share%s; present: %s", n, n == 1 ? "" : "s",
                present ? secrets_share_list(present, list, sizeof list) : "none");
        if (it->len == 10) {
            fputs("; KCV ", f);
            hex_fprint_compact(f, it->data + 2, 8);
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

    it = &s->it[7];
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

    it = &s->it[6];
    fputs(", \"key_group\": ", f);
    if (it->sw == SW_OK && key_group_ok(it)) {
        fprintf(f, "{\"shares\": %u, \"present\": ", it->data[0]);
        json_share_list(f, it->data[1]);
        fprintf(f, ", \"complete\": %s, \"kcv\": ", it->len == 10 ? "true" : "false");
        if (it->len == 10)
            json_hex(f, it->data + 2, 8);
        else
            fputs("null", f);
        fputc('}', f);
    } else if (it->sw == SW_REF_DATA_NOT_FOUND) {
        fputs("null", f);
    } else {
        json_item_error(f, it);
    }

    it = &s->it[7];
    struct cardop_key_state ks;
    fputs(", \"key\": ", f);
    if (it->sw == SW_OK && cardop_key_state_decode(it->data, it->len, &ks) == 0) {
        static const char *const origins[] = { "none", "generated", "imported", "external" };
        fprintf(f, "{\"present\": %s, \"origin\": \"%s\", \"source_serial\": ",
                ks.present ? "true" : "false", ks.origin < 4 ? origins[ks.origin] : "unknown");
        if (ks.origin == CARDOP_ORIGIN_IMPORTED)
            json_hex(f, ks.src_serial, 8);
        else
            fputs("null", f);
        fputs(", \"source_kcv\": ", f);
        if (ks.origin == CARDOP_ORIGIN_IMPORTED || ks.origin == CARDOP_ORIGIN_EXTERNAL)
            json_hex(f, ks.src_kcv, 8);
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
    } items[STATUS_ITEMS] = {
        { DO_CARD_SERIAL, "serial" },  { DO_CARD_TYPE, "card type" },
        { DO_CARD_LCS, "life cycle" }, { DO_PIN_STATUS, "PIN status" },
        { DO_FILE_LIST, "file list" }, { DO_NVM_INFO, "NVM info" },
        { DO_KEY_GROUP, "key group" }, { DO_KEY_STATE, "key state" },
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

    for (size_t i = 0; i < STATUS_ITEMS; i++) {
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
        /* Unset card type, and no key profile (DF10/DF11), are states, not failures. */
        bool optional = it->tag == DO_CARD_TYPE || it->tag == DO_KEY_GROUP ||
                        it->tag == DO_KEY_STATE;
        if (it->sw != SW_OK && !(optional && it->sw == SW_REF_DATA_NOT_FOUND))
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
        fprintf(stderr, "icdup: error: status: the card refused %d of %d commands\n",
                s.failures, STATUS_ITEMS + 1);
        rc = 1;
    }
out_items:
    for (size_t i = 0; i < STATUS_ITEMS; i++)
        free(s.it[i].data);
out_resp:
    free(resp);
out_card:
    transport_close(t);
out_opts:
    free(o.pos);
    return rc;
}

/* ---- options of the key commands ------------------------------------------------------ */

struct opt {
    const char *name;   /* "--card" */
    bool has_arg;
    const char **value; /* has_arg */
    bool *flag;         /* !has_arg */
};

/* Parses argv against opts (plus -h/--help and -v/--verbose); positional arguments go to pos
 * (capacity argc). --name=value and --name value are both accepted. Returns 0 or EXIT_USAGE
 * after printing the error. */
static int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts, bool *help,
                      int *npos, char **pos)
{
    *npos = 0;
    *help = false;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            g_verbose = true;
            continue;
        }
        const struct opt *o = NULL;
        const char *inline_val = NULL;
        for (const struct opt *p = opts; p->name != NULL; p++) {
            size_t n = strlen(p->name);
            if (strncmp(a, p->name, n) == 0 && (a[n] == '\0' || (a[n] == '=' && p->has_arg))) {
                o = p;
                inline_val = a[n] == '=' ? a + n + 1 : NULL;
                break;
            }
        }
        if (o == NULL) {
            fprintf(stderr, "icdup: error: %s: unknown option \"%s\"\n", cmd, a);
            die_usage_hint(cmd);
            return EXIT_USAGE;
        }
        if (!o->has_arg) {
            *o->flag = true;
            continue;
        }
        if (inline_val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "icdup: error: %s: %s needs a value\n", cmd, o->name);
                die_usage_hint(cmd);
                return EXIT_USAGE;
            }
            inline_val = argv[++i];
        }
        *o->value = inline_val;
    }
    return 0;
}

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "icdup: error: %s: %s\n", cmd, msg);
    die_usage_hint(cmd);
    return EXIT_USAGE;
}

/* Reads the user PIN (want_pin) and/or the admin PIN (want_admin) from a secrets file or "-"
 * ("pin = ...", "admin = ..."), or asks for them on the terminal when file is NULL. what names
 * the card in prompts ("source card"). Returns 0, 1 (failure) or EXIT_USAGE. */
static int load_pins(const char *cmd, const char *file, const char *what, bool want_pin,
                     struct secret_pin *pin, bool want_admin, struct secret_pin *admin)
{
    char err[512];
    if (file != NULL) {
        struct secrets s;
        if (secrets_load(file, &s, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
            return 1;
        }
        const char *src = strcmp(file, "-") == 0 ? "standard input" : file;
        int rc = 0;
        if (want_pin && s.pin.len == 0) {
            fprintf(stderr, "icdup: error: %s: %s has no \"pin = ...\" line\n", cmd, src);
            rc = 1;
        } else if (want_admin && s.admin.len == 0) {
            fprintf(stderr, "icdup: error: %s: %s has no \"admin = ...\" line\n", cmd, src);
            rc = 1;
        } else {
            if (want_pin)
                *pin = s.pin;
            if (want_admin)
                *admin = s.admin;
        }
        secrets_wipe(&s);
        return rc;
    }
    if (!secrets_have_terminal()) {
        fprintf(stderr, "icdup: error: %s: no PIN file given for the %s and standard input is "
                "not a terminal to ask on\n", cmd, what);
        die_usage_hint(cmd);
        return EXIT_USAGE;
    }
    char prompt[96];
    if (want_pin) {
        snprintf(prompt, sizeof prompt, "user PIN of the %s", what);
        if (secrets_prompt_pin(prompt, false, pin, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
            return 1;
        }
    }
    if (want_admin) {
        snprintf(prompt, sizeof prompt, "admin PIN of the %s", what);
        if (secrets_prompt_pin(prompt, false, admin, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
            return 1;
        }
    }
    return 0;
}

/* Where missing shares come from: a secrets file ("-": standard input), else the terminal. */
struct share_source {
    const char *file;
};

static int get_shares_cb(void *ctx, uint8_t needed, struct secrets *s, char *err, size_t errlen)
{
    const struct share_source *src = ctx;
    if (src->file != NULL) {
        struct secrets f;
        if (secrets_load(src->file, &f, err, errlen) != 0)
            return -1;
        for (unsigned i = 0; i < SECRETS_MAX_SHARES; i++)
            if ((f.shares >> i) & 1u) {
                memcpy(s->share[i], f.share[i], SECRETS_SHARE_LEN);
                s->shares |= (uint8_t)(1u << i);
            }
        secrets_wipe(&f);
        return 0;
    }
    if (!secrets_have_terminal()) {
        char list[48];
        snprintf(err, errlen, "%s needed, no --shares FILE was given and standard input is "
                 "not a terminal to ask the officers on",
                 secrets_share_phrase(needed, list, sizeof list));
        return -1;
    }
    return secrets_prompt_shares(needed, s, err, errlen);
}

static void progress_stdout(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
    fflush(stdout);
}

static int open_named(const char *cmd, const char *uri, const char *opt, struct transport **t)
{
    if (uri == NULL) {
        fprintf(stderr, "icdup: error: %s: %s URI is required\n", cmd, opt);
        die_usage_hint(cmd);
        return EXIT_USAGE;
    }
    return open_card(cmd, uri, t);
}

/* ---- init ----------------------------------------------------------------------------- */

static void usage_init(FILE *f)
{
    fputs("usage: icdup init --card URI [--shares-count N] [--allow-reexport] [--pin FILE|-]\n"
          "                  [--card-type TEXT]\n"
          "\n"
          "Personalizes a blank card with the default profile (docs/clone.md): card type,\n"
          "user PIN, PUK and admin PIN, DF 4B00 with N share EFs, the key pair, key state,\n"
          "binding key and partner key files, then activates the card (operational).\n"
          "Shares present in the secrets file (share.1 = ...) are set now, at issuance; the\n"
          "others are set later by 'icdup clone' or 'icdup keys share'.\n"
          "\n"
          "  --card URI          the blank card (default: $ICDUP_CARD)\n"
          "  --shares-count N    shares in the key group, 1..8 (default 3)\n"
          "  --allow-reexport    policy: the key may be exported more than once\n"
          "  --pin FILE|-        secrets file with pin, puk and admin (and optional share.i);\n"
          "                      without it the three PINs are asked on the terminal\n"
          "  --card-type TEXT    card-type record, 1..32 bytes (default " PROFILE_DEFAULT_CARD_TYPE
          ")\n"
          "  -v, --verbose       trace every APDU to stderr (secrets redacted)\n"
          "  -h, --help          this help\n"
          "\n"
          "A secrets file has one KEY = VALUE per line and must not be readable by group or\n"
          "others (chmod 600).\n\n",
          f);
    print_uri_help(f);
}

static int cmd_init(int argc, char **argv)
{
    const char *card = NULL, *count = NULL, *pin_file = NULL, *card_type = NULL;
    bool reexport = false, help = false;
    const struct opt opts[] = {
        { "--card", true, &card, NULL },
        { "--shares-count", true, &count, NULL },
        { "--allow-reexport", false, NULL, &reexport },
        { "--pin", true, &pin_file, NULL },
        { "--card-type", true, &card_type, NULL },
        { NULL, false, NULL, NULL },
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return 1;
    int npos = 0;
    int rc = parse_opts("init", argc, argv, opts, &help, &npos, pos);
    if (rc != 0 || help) {
        if (help)
            usage_init(stdout);
        free(pos);
        return rc;
    }
    free(pos);
    if (npos != 0)
        return usage_error("init", "unexpected argument");
    if (card == NULL)
        card = getenv("ICDUP_CARD");
    unsigned n = PROFILE_DEFAULT_SHARES;
    if (count != NULL) {
        char *end = NULL;
        unsigned long v = strtoul(count, &end, 10);
        if (end == count || *end != '\0' || v < 1 || v > 8)
            return usage_error("init", "--shares-count wants a number from 1 to 8");
        n = (unsigned)v;
    }
    if (card_type != NULL && (strlen(card_type) < 1 || strlen(card_type) > 32))
        return usage_error("init", "--card-type wants 1 to 32 bytes");

    struct secrets s;
    secrets_init(&s);
    char err[768];
    if (pin_file != NULL) {
        if (secrets_load(pin_file, &s, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: init: %s\n", err);
            return 1;
        }
    } else {
        if (!secrets_have_terminal()) {
            fprintf(stderr, "icdup: error: init: no --pin FILE given and standard input is not "
                            "a terminal to ask for the PINs on\n");
            die_usage_hint("init");
            return EXIT_USAGE;
        }
        if (secrets_prompt_pin("new user PIN", true, &s.pin, err, sizeof err) != 0 ||
            secrets_prompt_pin("new PUK", true, &s.puk, err, sizeof err) != 0 ||
            secrets_prompt_pin("new admin PIN", true, &s.admin, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: init: %s\n", err);
            secrets_wipe(&s);
            return 1;
        }
    }
    struct transport *t = NULL;
    rc = open_card("init", card, &t);
    if (rc != 0) {
        secrets_wipe(&s);
        return rc;
    }
    struct cardop c;
    cardop_init(&c, t, "card");
    struct profile_options po = {
        .shares = n, .allow_reexport = reexport, .card_type = card_type, .secrets = &s,
    };
    uint8_t given = s.shares;
    rc = profile_run(&c, &po, NULL, NULL, err, sizeof err);
    secrets_wipe(&s);
    if (rc != 0) {
        fprintf(stderr, "icdup: error: init: %s\n", err);
        transport_close(t);
        return 1;
    }
    uint8_t serial[8];
    char serial_hex[17] = "?";
    if (cardop_serial(&c, serial) == 0)
        hex_encode(serial, 8, 0, serial_hex, sizeof serial_hex);
    char list[48];
    printf("initialized %s: serial %s, card type %s, key group of %u share%s (set now: %s), "
           "%s; the card is operational\n",
           card, serial_hex, card_type != NULL ? card_type : PROFILE_DEFAULT_CARD_TYPE, n,
           n == 1 ? "" : "s", given ? secrets_share_list(given, list, sizeof list) : "none",
           reexport ? "re-export allowed" : "one export only");
    transport_close(t);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- clone ---------------------------------------------------------------------------- */

static void usage_clone(FILE *f)
{
    fputs("usage: icdup clone --src URI --dst URI [--shares FILE|-] [--src-pin FILE|-]\n"
          "                   [--dst-pin FILE|-] [--generate] [--lock-export] [--unbound]\n"
          "                   [--state-dir DIR] [--json]\n"
          "\n"
          "Copies the key of the source card into the destination card (docs/clone.md):\n"
          "verifies both user PINs, sets the shares each card lacks, checks that both KCVs\n"
          "match (nothing is exported otherwise), generates a key on the source when it has\n"
          "none, exports it wrapped for the destination's binding key, saves the blob in the\n"
          "state directory, imports it, and proves that the destination decrypts what the\n"
          "source's public key encrypts. A rerun after a failure resumes from the saved blob.\n"
          "\n"
          "  --src URI, --dst URI  the two cards\n"
          "  --shares FILE|-       secrets file with share.1 .. share.N (only the shares a card\n"
          "                        lacks are used); without it the officers are asked on the\n"
          "                        terminal, each for their share\n"
          "  --src-pin FILE|-      secrets file with the source's user PIN (pin = ...)\n"
          "  --dst-pin FILE|-      same for the destination; without them the PINs are asked\n"
          "  --generate            generate a new key pair on the source even if it holds one\n"
          "                        (the card then wants its admin PIN: see 'icdup keys')\n"
          "  --lock-export         lock the source's export for good after the proof\n"
          "  --unbound             export unbound (the blob opens on any card of the group)\n"
          "  --state-dir DIR       where the blob waits for its import (default ~/.icdup)\n"
          "  --json                one JSON summary on standard output instead of progress\n"
          "  -v, --verbose         trace every APDU to stderr (secrets redacted)\n"
          "  -h, --help            this help\n"
          "\n"
          "Only one of the files may be '-' (standard input).\n"
          "Exit status: 0 cloned and proved, 1 failure (see the message: what is kept, how\n"
          "to resume), 2 usage error.\n\n",
          f);
    print_uri_help(f);
}

static void json_bitmap(FILE *f, uint8_t bitmap)
{
    json_share_list(f, bitmap);
}

static void clone_json(FILE *f, const char *src, const char *dst, const struct dup_result *r,
                       int rc, const char *err)
{
    fputs("{\"ok\": ", f);
    fputs(rc == 0 ? "true" : "false", f);
    fputs(", \"src\": ", f);
    json_string(f, (const uint8_t *)src, strlen(src));
    fputs(", \"dst\": ", f);
    json_string(f, (const uint8_t *)dst, strlen(dst));
    fputs(", \"error\": ", f);
    if (rc == 0)
        fputs("null", f);
    else
        json_string(f, (const uint8_t *)err, strlen(err));
    fprintf(f, ", \"last_step\": \"%s\"", dup_step_name(r->last_step));
    fprintf(f, ", \"shares\": %u, \"kcv\": ", r->n);
    if (r->last_step >= DUP_STEP_KCV_CONFIRMED)
        json_hex(f, r->kcv, 8);
    else
        fputs("null", f);
    fputs(", \"shares_set\": {\"src\": ", f);
    json_bitmap(f, r->src_set);
    fputs(", \"dst\": ", f);
    json_bitmap(f, r->dst_set);
    fputs("}", f);
    if (r->last_step >= DUP_STEP_KCV_CONFIRMED)
        fprintf(f, ", \"kcv_from\": {\"src\": \"%s\", \"dst\": \"%s\"}",
                r->src_kcv_from_card ? "card" : "host", r->dst_kcv_from_card ? "card" : "host");
    fputs(", \"src_serial\": ", f);
    if (r->have_src_serial)
        json_hex(f, r->src_serial, 8);
    else
        fputs("null", f);
    fputs(", \"public_key\": ", f);
    if (r->last_step >= DUP_STEP_KEY_READY)
        json_hex(f, r->src_pub, 65);
    else
        fputs("null", f);
    fprintf(f, ", \"generated\": %s, \"bound\": %s, \"exported\": %s, \"export_count\": %u, "
            "\"resumed\": %s, \"already_cloned\": %s, \"imported\": %s, \"proved\": %s, "
            "\"locked\": %s",
            r->generated ? "true" : "false", r->bound ? "true" : "false",
            r->exported ? "true" : "false", (unsigned)r->export_count,
            r->resumed ? "true" : "false", r->already_cloned ? "true" : "false",
            r->imported ? "true" : "false", r->proved ? "true" : "false",
            r->locked ? "true" : "false");
    fputs(", \"state_file\": ", f);
    if (r->state_path[0] != '\0')
        json_string(f, (const uint8_t *)r->state_path, strlen(r->state_path));
    else
        fputs("null", f);
    fprintf(f, ", \"state_kept\": %s, \"apdus\": {\"src\": %lu, \"dst\": %lu, \"total\": %lu}}\n",
            r->state_kept ? "true" : "false", r->apdus_src, r->apdus_dst,
            r->apdus_src + r->apdus_dst);
}

static int cmd_clone(int argc, char **argv)
{
    const char *src = NULL, *dst = NULL, *shares = NULL, *src_pin = NULL, *dst_pin = NULL,
               *state_dir = NULL;
    bool generate = false, lock = false, unbound = false, json = false, help = false;
    const struct opt opts[] = {
        { "--src", true, &src, NULL },
        { "--dst", true, &dst, NULL },
        { "--shares", true, &shares, NULL },
        { "--src-pin", true, &src_pin, NULL },
        { "--dst-pin", true, &dst_pin, NULL },
        { "--state-dir", true, &state_dir, NULL },
        { "--generate", false, NULL, &generate },
        { "--lock-export", false, NULL, &lock },
        { "--unbound", false, NULL, &unbound },
        { "--json", false, NULL, &json },
        { NULL, false, NULL, NULL },
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return 1;
    int npos = 0;
    int rc = parse_opts("clone", argc, argv, opts, &help, &npos, pos);
    free(pos);
    if (rc != 0)
        return rc;
    if (help) {
        usage_clone(stdout);
        return 0;
    }
    if (npos != 0)
        return usage_error("clone", "unexpected argument");
    if (src == NULL || dst == NULL)
        return usage_error("clone", "both --src URI and --dst URI are required");
    if (strcmp(src, dst) == 0)
        return usage_error("clone", "--src and --dst name the same card");
    int dashes = (shares != NULL && strcmp(shares, "-") == 0) +
                 (src_pin != NULL && strcmp(src_pin, "-") == 0) +
                 (dst_pin != NULL && strcmp(dst_pin, "-") == 0);
    if (dashes > 1)
        return usage_error("clone", "only one of --shares, --src-pin and --dst-pin may read "
                                    "standard input ('-')");

    struct secret_pin spin, dpin;
    memset(&spin, 0, sizeof spin);
    memset(&dpin, 0, sizeof dpin);
    rc = load_pins("clone", src_pin, "source card", true, &spin, false, NULL);
    if (rc == 0)
        rc = load_pins("clone", dst_pin, "destination card", true, &dpin, false, NULL);
    struct transport *ts = NULL, *td = NULL;
    if (rc == 0)
        rc = open_named("clone", src, "--src", &ts);
    if (rc == 0)
        rc = open_named("clone", dst, "--dst", &td);
    if (rc != 0) {
        transport_close(ts);
        memset(&spin, 0, sizeof spin);
        memset(&dpin, 0, sizeof dpin);
        return rc;
    }
    struct share_source ss = { shares };
    struct dup_options o = {
        .src_pin = &spin,
        .dst_pin = &dpin,
        .get_shares = get_shares_cb,
        .shares_ctx = &ss,
        .generate = generate,
        .lock_export = lock,
        .unbound = unbound,
        .state_dir = state_dir,
        .progress = json ? NULL : progress_stdout,
    };
    struct dup_result r;
    char err[1024];
    rc = dup_clone(ts, td, &o, &r, err, sizeof err);
    memset(&spin, 0, sizeof spin);
    memset(&dpin, 0, sizeof dpin);
    transport_close(ts);
    transport_close(td);
    if (json) {
        clone_json(stdout, src, dst, &r, rc, err);
    } else if (rc == 0) {
        char kcv[17];
        hex_encode(r.kcv, 8, 0, kcv, sizeof kcv);
        printf("clone done: dst holds src's key (KCV %s); %lu APDUs (src %lu, dst %lu)\n", kcv,
               r.apdus_src + r.apdus_dst, r.apdus_src, r.apdus_dst);
    }
    if (rc != 0)
        fprintf(stderr, "icdup: error: clone: %s\n", err);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "icdup: error: cannot write the output\n");
        return 1;
    }
    return rc == 0 ? 0 : 1;
}

/* ---- keys ----------------------------------------------------------------------------- */

static void usage_keys(FILE *f)
{
    fputs("usage: icdup keys kcv      --card URI [--json]\n"
          "       icdup keys share    --card URI [--pin FILE|-] [--shares FILE|-]\n"
          "       icdup keys generate --card URI [--pin FILE|-] [--replace]\n"
          "       icdup keys pubkey   --card URI\n"
          "       icdup keys binding  --card URI [--pin FILE|-] [--new]\n"
          "       icdup keys export   --card URI [--pin FILE|-] (--binding HEX | --unbound)\n"
          "                           --out FILE\n"
          "       icdup keys import   --card URI [--pin FILE|-] [--replace] --in FILE\n"
          "       icdup keys lock     --card URI [--pin FILE|-] --yes\n"
          "\n"
          "The key commands one at a time (docs/keys.md, docs/clone.md):\n"
          "  kcv       key group: share count, shares present, KCV when complete (no PIN)\n"
          "  share     set the shares the card lacks, from --shares FILE or the officers\n"
          "  generate  generate a key pair in the card, print its public key; --replace\n"
          "            replaces an existing key (the admin PIN, admin = ..., is verified too)\n"
          "  pubkey    print the card's public key (no PIN)\n"
          "  binding   print the pending destination binding point (--new: a fresh one)\n"
          "  export    export the key wrapped, bound to a destination's binding point\n"
          "            (from 'keys binding' on the destination) or --unbound; writes the blob\n"
          "            to a new file of mode 0600 (an existing file is never overwritten)\n"
          "  import    import a blob file; --replace replaces an existing key (admin PIN)\n"
          "  lock      lock the export for good (irreversible: needs --yes)\n"
          "\n"
          "  --card URI      the card (default: $ICDUP_CARD)\n"
          "  --pin FILE|-    secrets file with pin = ... (and admin = ... for --replace);\n"
          "                  without it the PINs are asked on the terminal\n"
          "  -v, --verbose   trace every APDU to stderr (secrets redacted)\n"
          "  -h, --help      this help\n\n",
          f);
    print_uri_help(f);
}

static void print_hex_line(const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        printf("%02X", b[i]);
    putchar('\n');
}

static void print_group(const struct cardop_group *g)
{
    char list[48];
    printf("key group: %u share%s; present: %s", g->n, g->n == 1 ? "" : "s",
           g->present ? secrets_share_list(g->present, list, sizeof list) : "none");
    if (g->complete) {
        char kcv[17];
        hex_encode(g->kcv, 8, 0, kcv, sizeof kcv);
        printf("; KCV %s\n", kcv);
    } else {
        printf("; incomplete (no KCV)\n");
    }
}

/* Verifies the user PIN (and the admin PIN when admin) of c. Returns 0 or 1. */
static int keys_verify(const char *cmd, struct cardop *c, const char *pin_file, bool admin)
{
    struct secret_pin pin, adm;
    memset(&pin, 0, sizeof pin);
    memset(&adm, 0, sizeof adm);
    int rc = load_pins(cmd, pin_file, "card", true, &pin, admin, &adm);
    if (rc == 0 && cardop_verify(c, PIN_REF_USER, pin.v, pin.len) != 0)
        rc = 1;
    if (rc == 0 && admin && cardop_verify(c, PIN_REF_ADMIN, adm.v, adm.len) != 0)
        rc = 1;
    if (rc == 1 && c->err[0] != '\0')
        fprintf(stderr, "icdup: error: %s: %s\n", cmd, c->err);
    memset(&pin, 0, sizeof pin);
    memset(&adm, 0, sizeof adm);
    return rc;
}

static int keys_fail(const char *cmd, const struct cardop *c)
{
    fprintf(stderr, "icdup: error: %s: %s\n", cmd, c->err);
    return 1;
}

static int cmd_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        usage_keys(argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[0];
    static const char *const subs[] = { "kcv", "share", "generate", "pubkey", "binding",
                                        "export", "import", "lock" };
    bool known = false;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (!known) {
        fprintf(stderr, "icdup: error: keys: unknown sub-command \"%s\"\n", sub);
        die_usage_hint("keys");
        return EXIT_USAGE;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "keys %s", sub);

    const char *card = NULL, *pin_file = NULL, *shares = NULL, *binding = NULL, *out = NULL,
               *in = NULL;
    bool json = false, replace = false, fresh = false, unbound = false, yes = false,
         help = false;
    const struct opt opts[] = {
        { "--card", true, &card, NULL },
        { "--pin", true, &pin_file, NULL },
        { "--shares", true, &shares, NULL },
        { "--binding", true, &binding, NULL },
        { "--out", true, &out, NULL },
        { "--in", true, &in, NULL },
        { "--json", false, NULL, &json },
        { "--replace", false, NULL, &replace },
        { "--new", false, NULL, &fresh },
        { "--unbound", false, NULL, &unbound },
        { "--yes", false, NULL, &yes },
        { NULL, false, NULL, NULL },
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return 1;
    int npos = 0;
    int rc = parse_opts("keys", argc - 1, argv + 1, opts, &help, &npos, pos);
    free(pos);
    if (rc != 0)
        return rc;
    if (help) {
        usage_keys(stdout);
        return 0;
    }
    if (npos != 0)
        return usage_error("keys", "unexpected argument");
    if (card == NULL)
        card = getenv("ICDUP_CARD");
    /* Options that belong to other sub-commands are usage errors, not silently ignored. */
    bool is_export = strcmp(sub, "export") == 0, is_import = strcmp(sub, "import") == 0;
    if ((json && strcmp(sub, "kcv") != 0) || (shares && strcmp(sub, "share") != 0) ||
        (replace && strcmp(sub, "generate") != 0 && !is_import) ||
        (fresh && strcmp(sub, "binding") != 0) || ((binding || unbound || out) && !is_export) ||
        (in && !is_import) || (yes && strcmp(sub, "lock") != 0) ||
        (pin_file && (strcmp(sub, "kcv") == 0 || strcmp(sub, "pubkey") == 0)))
        return usage_error(cmd, "an option of another sub-command was given");
    if (shares != NULL && pin_file != NULL && strcmp(shares, "-") == 0 &&
        strcmp(pin_file, "-") == 0)
        return usage_error(cmd, "only one of --pin and --shares may read standard input");
    if (is_export && (binding != NULL) == unbound)
        return usage_error(cmd, "give exactly one of --binding HEX and --unbound");
    if (is_export && out == NULL)
        return usage_error(cmd, "--out FILE is required");
    if (is_import && in == NULL)
        return usage_error(cmd, "--in FILE is required");
    if (strcmp(sub, "lock") == 0 && !yes)
        return usage_error(cmd, "locking the export is irreversible: add --yes");

    uint8_t point[EC_POINT_LEN];
    if (binding != NULL) {
        size_t n = 0;
        char herr[160];
        if (hex_decode(binding, point, sizeof point, &n, herr, sizeof herr) != 0 ||
            n != EC_POINT_LEN || point[0] != 0x04)
            return usage_error(cmd, "--binding wants the 65-byte point (130 hex digits, 04...) "
                                    "printed by 'icdup keys binding' on the destination");
    }
    uint8_t blob[BLOB_MAX_LEN];
    size_t blob_len = 0;
    if (is_export && access(out, F_OK) == 0) {
        fprintf(stderr, "icdup: error: %s: %s exists; not overwriting a blob\n", cmd, out);
        return 1;
    }
    if (is_import) {
        char lerr[512];
        int lrc = dup_blob_load(in, blob, sizeof blob, &blob_len, lerr, sizeof lerr);
        if (lrc != 0) {
            if (lrc > 0)
                snprintf(lerr, sizeof lerr, "%s does not exist", in);
            fprintf(stderr, "icdup: error: %s: %s\n", cmd, lerr);
            return 1;
        }
        struct blob_header h;
        if (blob_parse_header(blob, blob_len, &h) != 0) {
            fprintf(stderr, "icdup: error: %s: %s is not a wrapped-key blob (format 1)\n", cmd,
                    in);
            return 1;
        }
    }

    struct transport *t = NULL;
    rc = open_card(cmd, card, &t);
    if (rc != 0)
        return rc;
    struct cardop c;
    cardop_init(&c, t, "card");
    uint8_t pub[EC_POINT_LEN];
    char hx[40];

    if (strcmp(sub, "kcv") == 0) {
        struct cardop_group g;
        if (cardop_key_group(&c, &g) != 0) {
            rc = keys_fail(cmd, &c);
        } else if (json) {
            printf("{\"shares\": %u, \"present\": ", g.n);
            json_share_list(stdout, g.present);
            printf(", \"complete\": %s, \"kcv\": ", g.complete ? "true" : "false");
            if (g.complete)
                json_hex(stdout, g.kcv, 8);
            else
                fputs("null", stdout);
            fputs("}\n", stdout);
        } else {
            print_group(&g);
        }
    } else if (strcmp(sub, "pubkey") == 0) {
        if (cardop_read_pubkey(&c, pub) != 0)
            rc = keys_fail(cmd, &c);
        else
            print_hex_line(pub, sizeof pub);
    } else if ((rc = keys_verify(cmd, &c, pin_file, replace)) != 0) {
        /* message printed */
    } else if (strcmp(sub, "share") == 0) {
        struct cardop_group g;
        if (cardop_key_group(&c, &g) != 0) {
            rc = keys_fail(cmd, &c);
        } else {
            uint8_t missing = (uint8_t)(((1u << g.n) - 1u) & ~g.present);
            struct secrets s;
            secrets_init(&s);
            struct share_source src = { shares };
            char err[512];
            if (missing != 0 && get_shares_cb(&src, missing, &s, err, sizeof err) != 0) {
                fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
                rc = 1;
            } else if ((missing & ~s.shares) != 0) {
                char list[48];
                fprintf(stderr, "icdup: error: %s: the secrets lack %s (nothing was set)\n",
                        cmd, secrets_share_phrase(missing & ~s.shares, list, sizeof list));
                rc = 1;
            }
            for (unsigned i = 1; rc == 0 && i <= g.n; i++)
                if (((missing >> (i - 1)) & 1u) && cardop_set_share(&c, i, s.share[i - 1]) != 0)
                    rc = keys_fail(cmd, &c);
            secrets_wipe(&s);
            if (rc == 0 && missing != 0 && cardop_key_group(&c, &g) != 0)
                rc = keys_fail(cmd, &c);
            if (rc == 0)
                print_group(&g);
        }
    } else if (strcmp(sub, "generate") == 0) {
        if (cardop_generate(&c, pub) != 0)
            rc = keys_fail(cmd, &c);
        else
            print_hex_line(pub, sizeof pub);
    } else if (strcmp(sub, "binding") == 0) {
        if (cardop_binding_key(&c, fresh, point) != 0)
            rc = keys_fail(cmd, &c);
        else
            print_hex_line(point, sizeof point);
    } else if (is_export) {
        char serr[512];
        if (cardop_export(&c, binding != NULL ? point : NULL, blob, sizeof blob, &blob_len) != 0) {
            rc = keys_fail(cmd, &c);
        } else if (dup_blob_save(out, blob, blob_len, serr, sizeof serr) != 0) {
            fprintf(stderr, "icdup: error: %s: %s\n", cmd, serr);
            rc = 1;
        } else {
            struct blob_header h;
            memset(&h, 0, sizeof h);
            blob_parse_header(blob, blob_len, &h);
            hex_encode(h.kcv, 8, 0, hx, sizeof hx);
            printf("wrote %s blob of %zu bytes to %s (KCV %s, export %u)\n",
                   h.bound ? "a bound" : "an unbound", blob_len, out, hx,
                   (unsigned)h.export_count);
        }
    } else if (is_import) {
        if (cardop_import(&c, blob, blob_len) != 0) {
            rc = keys_fail(cmd, &c);
        } else {
            struct blob_header h;
            blob_parse_header(blob, blob_len, &h);
            char sx[17];
            hex_encode(h.kcv, 8, 0, hx, sizeof hx);
            hex_encode(h.src_serial, 8, 0, sx, sizeof sx);
            printf("imported the key of card %s (KCV %s, export %u)\n", sx, hx,
                   (unsigned)h.export_count);
        }
    } else if (strcmp(sub, "lock") == 0) {
        if (cardop_lock_export(&c) != 0)
            rc = keys_fail(cmd, &c);
        else
            printf("export locked for good\n");
    }
    transport_close(t);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "icdup: error: cannot write the output\n");
        rc = 1;
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "apdu", cmd_apdu },
    { "status", cmd_status },
    { "init", cmd_init },
    { "clone", cmd_clone },
    { "keys", cmd_keys },
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

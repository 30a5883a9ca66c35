/* The helpers the command-line programs share (cli.h): messages, option parsing, opening
 * cards, reading PINs and shares, JSON output, the progress bar and the command dispatch of
 * main. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secrets.h"
#include "transport.h"

bool cli_verbose;

/* ---- messages --------------------------------------------------------------------------- */

void cli_usage_hint(const char *cmd)
{
    if (cmd != NULL)
        fprintf(stderr, "Try '%s %s --help'.\n", cli_prog, cmd);
    else
        fprintf(stderr, "Try '%s --help'.\n", cli_prog);
}

int cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "%s: error: %s: %s\n", cli_prog, cmd, msg);
    cli_usage_hint(cmd);
    return EXIT_USAGE;
}

void cli_print_uri_help(FILE *f)
{
    fputs("Reader URIs (--card URI, or the environment variable ICDUP_CARD):\n", f);
    transport_print_uri_help(f);
}

/* ---- options ---------------------------------------------------------------------------- */

int cli_parse_opts(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
                   bool *help, int *npos, char **pos)
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
            cli_verbose = true;
            continue;
        }
        const struct cli_opt *o = NULL;
        const char *inline_val = NULL;
        for (const struct cli_opt *p = opts; p->name != NULL; p++) {
            size_t n = strlen(p->name);
            if (strncmp(a, p->name, n) == 0 && (a[n] == '\0' || (a[n] == '=' && p->has_arg))) {
                o = p;
                inline_val = a[n] == '=' ? a + n + 1 : NULL;
                break;
            }
        }
        if (o == NULL) {
            fprintf(stderr, "%s: error: %s: unknown option \"%s\"\n", cli_prog, cmd, a);
            cli_usage_hint(cmd);
            return EXIT_USAGE;
        }
        if (!o->has_arg) {
            *o->flag = true;
            continue;
        }
        if (inline_val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: error: %s: %s needs a value\n", cli_prog, cmd, o->name);
                cli_usage_hint(cmd);
                return EXIT_USAGE;
            }
            inline_val = argv[++i];
        }
        *o->value = inline_val;
    }
    return 0;
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              void (*usage)(FILE *f), int *npos, char ***pos)
{
    bool help = false;
    *npos = 0;
    *pos = calloc((size_t)argc + 1, sizeof **pos);
    if (*pos == NULL) {
        fprintf(stderr, "%s: error: %s: out of memory\n", cli_prog, cmd);
        return 1;
    }
    int rc = cli_parse_opts(cmd, argc, argv, opts, &help, npos, *pos);
    if (rc == 0 && !help)
        return -1;
    if (rc == 0)
        usage(stdout);
    free(*pos);
    *pos = NULL;
    return rc;
}

int cli_parse_plain(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
                    void (*usage)(FILE *f), const char *noarg_msg)
{
    char **pos;
    int npos;
    int rc = cli_parse(cmd, argc, argv, opts, usage, &npos, &pos);
    if (rc >= 0)
        return rc;
    free(pos);
    return npos > 0 ? cli_usage_error(cmd, noarg_msg) : -1;
}

/* ---- cards ------------------------------------------------------------------------------ */

int cli_open_card(const char *cmd, const char *uri, struct transport **t)
{
    char err[512];
    if (uri == NULL) {
        fprintf(stderr, "%s: error: %s: no card given: use --card URI or set ICDUP_CARD\n",
                cli_prog, cmd);
        cli_usage_hint(cmd);
        return EXIT_USAGE;
    }
    int rc = transport_open(uri, t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: error: %s\n", cli_prog, err);
        return rc == TRANSPORT_E_URI ? EXIT_USAGE : 1;
    }
    if (cli_verbose)
        transport_set_trace(*t, stderr);
    return 0;
}

int cli_open_named(const char *cmd, const char *uri, const char *opt, struct transport **t)
{
    if (uri == NULL) {
        fprintf(stderr, "%s: error: %s: %s URI is required\n", cli_prog, cmd, opt);
        cli_usage_hint(cmd);
        return EXIT_USAGE;
    }
    return cli_open_card(cmd, uri, t);
}

/* ---- secrets ---------------------------------------------------------------------------- */

int cli_load_pins(const char *cmd, const char *file, const char *what, bool want_pin,
                  struct secret_pin *pin, bool want_admin, struct secret_pin *admin)
{
    char err[512];
    if (file != NULL) {
        struct secrets s;
        if (secrets_load(file, &s, err, sizeof err) != 0) {
            fprintf(stderr, "%s: error: %s: %s\n", cli_prog, cmd, err);
            return 1;
        }
        const char *src = strcmp(file, "-") == 0 ? "standard input" : file;
        int rc = 0;
        if (want_pin && s.pin.len == 0) {
            fprintf(stderr, "%s: error: %s: %s has no \"pin = ...\" line\n", cli_prog, cmd,
                    src);
            rc = 1;
        } else if (want_admin && s.admin.len == 0) {
            fprintf(stderr, "%s: error: %s: %s has no \"admin = ...\" line\n", cli_prog, cmd,
                    src);
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
        fprintf(stderr, "%s: error: %s: no PIN file given for the %s and standard input is "
                "not a terminal to ask on\n", cli_prog, cmd, what);
        cli_usage_hint(cmd);
        return EXIT_USAGE;
    }
    char prompt[96];
    if (want_pin) {
        snprintf(prompt, sizeof prompt, "user PIN of the %s", what);
        if (secrets_prompt_pin(prompt, false, pin, err, sizeof err) != 0) {
            fprintf(stderr, "%s: error: %s: %s\n", cli_prog, cmd, err);
            return 1;
        }
    }
    if (want_admin) {
        snprintf(prompt, sizeof prompt, "admin PIN of the %s", what);
        if (secrets_prompt_pin(prompt, false, admin, err, sizeof err) != 0) {
            fprintf(stderr, "%s: error: %s: %s\n", cli_prog, cmd, err);
            return 1;
        }
    }
    return 0;
}

int cli_get_shares(void *ctx, uint8_t needed, struct secrets *s, char *err, size_t errlen)
{
    const struct cli_share_source *src = ctx;
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

/* ---- output ----------------------------------------------------------------------------- */

void cli_progress_stdout(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
    fflush(stdout);
}

void cli_json_string(FILE *f, const uint8_t *s, size_t len)
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

void cli_json_hex(FILE *f, const uint8_t *b, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", b[i]);
    fputc('"', f);
}

void cli_json_share_list(FILE *f, uint8_t bitmap)
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

int cli_flush_stdout(int rc)
{
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: cannot write the output\n", cli_prog);
        return 1;
    }
    return rc;
}

/* ---- progress bar ----------------------------------------------------------------------- */

#define CLI_BAR_WIDTH 40u

void cli_bar_init(struct cli_bar *b, const char *what, bool on, bool count)
{
    b->what = what;
    b->on = on;
    b->count = count;
    b->drawn = false;
    b->pct = -1;
}

void cli_bar_update(struct cli_bar *b, uint64_t done, uint64_t total)
{
    if (!b->on || total == 0)
        return;
    if (done > total)
        done = total;
    int pct = (int)(done * 100 / total);
    if (!b->count && pct == b->pct)
        return;
    b->pct = pct;
    if (done >= total) {
        cli_bar_clear(b);
        return;
    }
    char line[CLI_BAR_WIDTH + 1];
    size_t fill = (size_t)(CLI_BAR_WIDTH * done / total);
    memset(line, '#', fill);
    memset(line + fill, '.', CLI_BAR_WIDTH - fill);
    line[CLI_BAR_WIDTH] = '\0';
    if (b->count)
        fprintf(stderr, "\r%s [%s] %llu/%llu", b->what, line, (unsigned long long)done,
                (unsigned long long)total);
    else
        fprintf(stderr, "\r%s [%s] %3d%%", b->what, line, pct);
    b->drawn = true;
    fflush(stderr);
}

void cli_bar_clear(struct cli_bar *b)
{
    if (!b->drawn)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    b->drawn = false;
    b->pct = -1;
}

/* ---- main ------------------------------------------------------------------------------- */

int cli_main(int argc, char **argv, const struct cli_command *cmds, size_t ncmds,
             void (*usage)(FILE *f))
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            cli_verbose = true;
        } else {
            fprintf(stderr, "%s: error: unknown option \"%s\"\n", cli_prog, a);
            cli_usage_hint(NULL);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t c = 0; c < ncmds; c++)
        if (strcmp(cmd, cmds[c].name) == 0)
            return cmds[c].run(argc - i - 1, argv + i + 1);
    fprintf(stderr, "%s: error: unknown command \"%s\"\n", cli_prog, cmd);
    cli_usage_hint(NULL);
    return EXIT_USAGE;
}

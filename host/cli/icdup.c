/* icdup: the duplication and data-protection CLI. A thin front end over host/ libraries.
 * Exit status: 0 success, 1 failure (transport, card refusal where it matters), 2 usage.
 *
 * This file: main, the global options, the command table, the main usage and the helpers the
 * command files share (cli.h). The commands: cmd_raw.c (apdu, status), cmd_keys.c (init,
 * keys), cmd_clone.c (clone), cmd_files.c (encrypt, decrypt, recover). */
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
        fprintf(stderr, "Try 'icdup %s --help'.\n", cmd);
    else
        fprintf(stderr, "Try 'icdup --help'.\n");
}

int cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "icdup: error: %s: %s\n", cmd, msg);
    cli_usage_hint(cmd);
    return EXIT_USAGE;
}

void cli_print_uri_help(FILE *f)
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
          "                              generate, pubkey, binding, export, import, lock;\n"
          "                              wrap (approval station: an external key, no card)\n"
          "  encrypt --to URI|KEY.pem IN OUT\n"
          "                              encrypt a file for cards' or partners' public keys\n"
          "  decrypt --card URI IN OUT   decrypt a file with the card (one PSO DECIPHER)\n"
          "  recover --backup URI --new URI FILE...\n"
          "                              re-protect files for a new card, opened by the backup\n"
          "\n"
          "Options:\n"
          "  -v, --verbose  trace every APDU and status word to stderr (secrets redacted)\n"
          "  -h, --help     this help; 'icdup COMMAND --help' for one command\n"
          "\n",
          f);
    cli_print_uri_help(f);
    fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
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
            fprintf(stderr, "icdup: error: %s: unknown option \"%s\"\n", cmd, a);
            cli_usage_hint(cmd);
            return EXIT_USAGE;
        }
        if (!o->has_arg) {
            *o->flag = true;
            continue;
        }
        if (inline_val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "icdup: error: %s: %s needs a value\n", cmd, o->name);
                cli_usage_hint(cmd);
                return EXIT_USAGE;
            }
            inline_val = argv[++i];
        }
        *o->value = inline_val;
    }
    return 0;
}

/* ---- cards ------------------------------------------------------------------------------ */

int cli_open_card(const char *cmd, const char *uri, struct transport **t)
{
    char err[512];
    if (uri == NULL) {
        fprintf(stderr, "icdup: error: %s: no card given: use --card URI or set ICDUP_CARD\n",
                cmd);
        cli_usage_hint(cmd);
        return EXIT_USAGE;
    }
    int rc = transport_open(uri, t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "icdup: error: %s\n", err);
        return rc == TRANSPORT_E_URI ? EXIT_USAGE : 1;
    }
    if (cli_verbose)
        transport_set_trace(*t, stderr);
    return 0;
}

int cli_open_named(const char *cmd, const char *uri, const char *opt, struct transport **t)
{
    if (uri == NULL) {
        fprintf(stderr, "icdup: error: %s: %s URI is required\n", cmd, opt);
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
        cli_usage_hint(cmd);
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
        fprintf(stderr, "icdup: error: cannot write the output\n");
        return 1;
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "apdu", cli_cmd_apdu },
    { "status", cli_cmd_status },
    { "init", cli_cmd_init },
    { "clone", cli_cmd_clone },
    { "keys", cli_cmd_keys },
    { "encrypt", cli_cmd_encrypt },
    { "decrypt", cli_cmd_decrypt },
    { "recover", cli_cmd_recover },
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
            cli_verbose = true;
        } else {
            fprintf(stderr, "icdup: error: unknown option \"%s\"\n", a);
            cli_usage_hint(NULL);
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
    cli_usage_hint(NULL);
    return EXIT_USAGE;
}

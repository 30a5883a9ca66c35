/* icdup init and icdup keys: personalization with the default profile (host/profile.c), and
 * the key commands one at a time (host/card_ops.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "blob.h"
#include "card_ops.h"
#include "cli.h"
#include "dup.h"
#include "hex.h"
#include "ins.h"
#include "profile.h"
#include "secrets.h"
#include "transport.h"
#include "wrap.h"

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
    cli_print_uri_help(f);
}

int cli_cmd_init(int argc, char **argv)
{
    const char *card = NULL, *count = NULL, *pin_file = NULL, *card_type = NULL;
    bool reexport = false;
    const struct cli_opt opts[] = {
        { "--card", true, &card, NULL },
        { "--shares-count", true, &count, NULL },
        { "--allow-reexport", false, NULL, &reexport },
        { "--pin", true, &pin_file, NULL },
        { "--card-type", true, &card_type, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("init", argc, argv, opts, usage_init, "unexpected argument");
    if (rc >= 0)
        return rc;
    if (card == NULL)
        card = getenv("ICDUP_CARD");
    unsigned n = PROFILE_DEFAULT_SHARES;
    if (count != NULL) {
        char *end = NULL;
        unsigned long v = strtoul(count, &end, 10);
        if (end == count || *end != '\0' || v < 1 || v > 8)
            return cli_usage_error("init", "--shares-count wants a number from 1 to 8");
        n = (unsigned)v;
    }
    if (card_type != NULL && (strlen(card_type) < 1 || strlen(card_type) > 32))
        return cli_usage_error("init", "--card-type wants 1 to 32 bytes");

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
            cli_usage_hint("init");
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
    rc = cli_open_card("init", card, &t);
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
          "       icdup keys wrap     --shares FILE|- --key FILE --out FILE [--json]\n"
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
          "  wrap      approval station, no card: wrap an externally generated EC P-256\n"
          "            private key (--key FILE: PEM, DER or 64 hex digits, mode 0600) under\n"
          "            the KEK of all the shares in --shares (share.1 .. share.N) into an\n"
          "            unbound blob (source serial zero), written to a new file of mode 0600;\n"
          "            prints the KCV and the public key. 'keys import' loads it into any\n"
          "            card of the group, which records the origin \"external\"\n"
          "\n"
          "  --card URI      the card (default: $ICDUP_CARD)\n"
          "  --pin FILE|-    secrets file with pin = ... (and admin = ... for --replace);\n"
          "                  without it the PINs are asked on the terminal\n"
          "  -v, --verbose   trace every APDU to stderr (secrets redacted)\n"
          "  -h, --help      this help\n\n",
          f);
    cli_print_uri_help(f);
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
    int rc = cli_load_pins(cmd, pin_file, "card", true, &pin, admin, &adm);
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

/* keys wrap: the approval station (host/wrap.c). No card is opened. Returns 0 or 1. */
static int keys_wrap(const char *cmd, const char *shares, const char *key, const char *out,
                     bool json)
{
    if (access(out, F_OK) == 0) {
        fprintf(stderr, "icdup: error: %s: %s exists; not overwriting a blob\n", cmd, out);
        return 1;
    }
    char err[768], source[320];
    struct secrets s;
    if (secrets_load(shares, &s, err, sizeof err) != 0) {
        fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
        return 1;
    }
    if (strcmp(shares, "-") == 0)
        snprintf(source, sizeof source, "standard input");
    else
        snprintf(source, sizeof source, "secrets file %.280s", shares);
    uint8_t priv[32];
    struct wrap_result r;
    memset(&r, 0, sizeof r);
    int rc = wrap_share_count(&s, source, err, sizeof err) == 0 ? WRAP_E_SHARES : WRAP_OK;
    if (rc == WRAP_OK)
        rc = wrap_load_key(key, priv, err, sizeof err);
    if (rc == WRAP_OK)
        rc = wrap_key(&s, source, priv, &r, err, sizeof err);
    secrets_wipe(&s);
    mbedtls_platform_zeroize(priv, sizeof priv);
    if (rc == WRAP_OK && dup_blob_save(out, r.blob, r.blob_len, err, sizeof err) != 0)
        rc = -1; /* err says what was not saved */
    if (rc != WRAP_OK) {
        memset(&r, 0, sizeof r);
        fprintf(stderr, "icdup: error: %s: %s\n", cmd, err);
        return 1;
    }
    if (json) {
        fputs("{\"out\": ", stdout);
        cli_json_string(stdout, (const uint8_t *)out, strlen(out));
        printf(", \"bytes\": %zu, \"shares\": %u, \"kcv\": ", r.blob_len, r.n);
        cli_json_hex(stdout, r.kcv, sizeof r.kcv);
        fputs(", \"source_serial\": \"0000000000000000\", \"export_count\": 0, "
              "\"public_key\": ", stdout);
        cli_json_hex(stdout, r.pub, sizeof r.pub);
        fputs("}\n", stdout);
    } else {
        char kcv[17];
        hex_encode(r.kcv, sizeof r.kcv, 0, kcv, sizeof kcv);
        printf("wrote an unbound blob of %zu bytes to %s (KCV %s, key group of %u share%s, "
               "external key)\npublic key ", r.blob_len, out, kcv, r.n, r.n == 1 ? "" : "s");
        print_hex_line(r.pub, sizeof r.pub);
    }
    return 0;
}

static int keys_fail(const char *cmd, const struct cardop *c)
{
    fprintf(stderr, "icdup: error: %s: %s\n", cmd, c->err);
    return 1;
}

int cli_cmd_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        usage_keys(argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[0];
    static const char *const subs[] = { "kcv", "share", "generate", "pubkey", "binding",
                                        "export", "import", "lock", "wrap" };
    bool known = false;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (!known) {
        fprintf(stderr, "icdup: error: keys: unknown sub-command \"%s\"\n", sub);
        cli_usage_hint("keys");
        return EXIT_USAGE;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "keys %s", sub);

    const char *card = NULL, *pin_file = NULL, *shares = NULL, *binding = NULL, *out = NULL,
               *in = NULL, *key = NULL;
    bool json = false, replace = false, fresh = false, unbound = false, yes = false;
    const struct cli_opt opts[] = {
        { "--card", true, &card, NULL },
        { "--pin", true, &pin_file, NULL },
        { "--shares", true, &shares, NULL },
        { "--binding", true, &binding, NULL },
        { "--out", true, &out, NULL },
        { "--in", true, &in, NULL },
        { "--key", true, &key, NULL },
        { "--json", false, NULL, &json },
        { "--replace", false, NULL, &replace },
        { "--new", false, NULL, &fresh },
        { "--unbound", false, NULL, &unbound },
        { "--yes", false, NULL, &yes },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("keys", argc - 1, argv + 1, opts, usage_keys,
                             "unexpected argument");
    if (rc >= 0)
        return rc;
    bool is_wrap = strcmp(sub, "wrap") == 0;
    if (is_wrap && card != NULL)
        return cli_usage_error(cmd, "wrap needs no card (--card): load its blob with 'icdup "
                                    "keys import --card URI --in FILE'");
    if (card == NULL)
        card = getenv("ICDUP_CARD");
    /* Options that belong to other sub-commands are usage errors, not silently ignored. */
    bool is_export = strcmp(sub, "export") == 0, is_import = strcmp(sub, "import") == 0;
    if ((json && strcmp(sub, "kcv") != 0 && !is_wrap) ||
        (shares && strcmp(sub, "share") != 0 && !is_wrap) ||
        (replace && strcmp(sub, "generate") != 0 && !is_import) ||
        (fresh && strcmp(sub, "binding") != 0) || ((binding || unbound) && !is_export) ||
        (out && !is_export && !is_wrap) || (in && !is_import) || (key && !is_wrap) ||
        (yes && strcmp(sub, "lock") != 0) ||
        (pin_file && (strcmp(sub, "kcv") == 0 || strcmp(sub, "pubkey") == 0 || is_wrap)))
        return cli_usage_error(cmd, "an option of another sub-command was given");
    if (shares != NULL && pin_file != NULL && strcmp(shares, "-") == 0 &&
        strcmp(pin_file, "-") == 0)
        return cli_usage_error(cmd, "only one of --pin and --shares may read standard input");
    if (is_export && (binding != NULL) == unbound)
        return cli_usage_error(cmd, "give exactly one of --binding HEX and --unbound");
    if (is_export && out == NULL)
        return cli_usage_error(cmd, "--out FILE is required");
    if (is_import && in == NULL)
        return cli_usage_error(cmd, "--in FILE is required");
    if (strcmp(sub, "lock") == 0 && !yes)
        return cli_usage_error(cmd, "locking the export is irreversible: add --yes");
    if (is_wrap) {
        if (shares == NULL || key == NULL || out == NULL)
            return cli_usage_error(cmd, "--shares FILE|-, --key FILE and --out FILE are "
                                        "required");
        if (strcmp(key, "-") == 0)
            return cli_usage_error(cmd, "--key wants a file (of mode 0600), not standard "
                                        "input");
        return cli_flush_stdout(keys_wrap(cmd, shares, key, out, json));
    }

    uint8_t point[EC_POINT_LEN];
    if (binding != NULL) {
        size_t n = 0;
        char herr[160];
        if (hex_decode(binding, point, sizeof point, &n, herr, sizeof herr) != 0 ||
            n != EC_POINT_LEN || point[0] != 0x04)
            return cli_usage_error(cmd, "--binding wants the 65-byte point (130 hex digits, 04...) "
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
    rc = cli_open_card(cmd, card, &t);
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
            cli_json_share_list(stdout, g.present);
            printf(", \"complete\": %s, \"kcv\": ", g.complete ? "true" : "false");
            if (g.complete)
                cli_json_hex(stdout, g.kcv, 8);
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
            struct cli_share_source src = { shares };
            char err[512];
            if (missing != 0 && cli_get_shares(&src, missing, &s, err, sizeof err) != 0) {
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
            static const uint8_t zero[8];
            char sx[17];
            hex_encode(h.kcv, 8, 0, hx, sizeof hx);
            hex_encode(h.src_serial, 8, 0, sx, sizeof sx);
            if (memcmp(h.src_serial, zero, sizeof zero) == 0)
                printf("imported an external key (KCV %s, export %u)\n", hx,
                       (unsigned)h.export_count);
            else
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
    return cli_flush_stdout(rc);
}


/* icdup clone: a front end over dup_clone (host/dup.c, docs/clone.md). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dup.h"
#include "hex.h"
#include "secrets.h"
#include "transport.h"

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
    cli_print_uri_help(f);
}

static void json_bitmap(FILE *f, uint8_t bitmap)
{
    cli_json_share_list(f, bitmap);
}

static void clone_json(FILE *f, const char *src, const char *dst, const struct dup_result *r,
                       int rc, const char *err)
{
    fputs("{\"ok\": ", f);
    fputs(rc == 0 ? "true" : "false", f);
    fputs(", \"src\": ", f);
    cli_json_string(f, (const uint8_t *)src, strlen(src));
    fputs(", \"dst\": ", f);
    cli_json_string(f, (const uint8_t *)dst, strlen(dst));
    fputs(", \"error\": ", f);
    if (rc == 0)
        fputs("null", f);
    else
        cli_json_string(f, (const uint8_t *)err, strlen(err));
    fprintf(f, ", \"last_step\": \"%s\"", dup_step_name(r->last_step));
    fprintf(f, ", \"shares\": %u, \"kcv\": ", r->n);
    if (r->last_step >= DUP_STEP_KCV_CONFIRMED)
        cli_json_hex(f, r->kcv, 8);
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
        cli_json_hex(f, r->src_serial, 8);
    else
        fputs("null", f);
    fputs(", \"public_key\": ", f);
    if (r->last_step >= DUP_STEP_KEY_READY)
        cli_json_hex(f, r->src_pub, 65);
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
        cli_json_string(f, (const uint8_t *)r->state_path, strlen(r->state_path));
    else
        fputs("null", f);
    fprintf(f, ", \"state_kept\": %s, \"apdus\": {\"src\": %lu, \"dst\": %lu, \"total\": %lu}}\n",
            r->state_kept ? "true" : "false", r->apdus_src, r->apdus_dst,
            r->apdus_src + r->apdus_dst);
}

int cli_cmd_clone(int argc, char **argv)
{
    const char *src = NULL, *dst = NULL, *shares = NULL, *src_pin = NULL, *dst_pin = NULL,
               *state_dir = NULL;
    bool generate = false, lock = false, unbound = false, json = false;
    const struct cli_opt opts[] = {
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
    int rc = cli_parse_plain("clone", argc, argv, opts, usage_clone, "unexpected argument");
    if (rc >= 0)
        return rc;
    if (src == NULL || dst == NULL)
        return cli_usage_error("clone", "both --src URI and --dst URI are required");
    if (strcmp(src, dst) == 0)
        return cli_usage_error("clone", "--src and --dst name the same card");
    int dashes = (shares != NULL && strcmp(shares, "-") == 0) +
                 (src_pin != NULL && strcmp(src_pin, "-") == 0) +
                 (dst_pin != NULL && strcmp(dst_pin, "-") == 0);
    if (dashes > 1)
        return cli_usage_error("clone", "only one of --shares, --src-pin and --dst-pin may read "
                                    "standard input ('-')");

    struct secret_pin spin, dpin;
    memset(&spin, 0, sizeof spin);
    memset(&dpin, 0, sizeof dpin);
    rc = cli_load_pins("clone", src_pin, "source card", true, &spin, false, NULL);
    if (rc == 0)
        rc = cli_load_pins("clone", dst_pin, "destination card", true, &dpin, false, NULL);
    struct transport *ts = NULL, *td = NULL;
    if (rc == 0)
        rc = cli_open_named("clone", src, "--src", &ts);
    if (rc == 0)
        rc = cli_open_named("clone", dst, "--dst", &td);
    if (rc != 0) {
        transport_close(ts);
        memset(&spin, 0, sizeof spin);
        memset(&dpin, 0, sizeof dpin);
        return rc;
    }
    struct cli_share_source ss = { shares };
    struct dup_options o = {
        .src_pin = &spin,
        .dst_pin = &dpin,
        .get_shares = cli_get_shares,
        .shares_ctx = &ss,
        .generate = generate,
        .lock_export = lock,
        .unbound = unbound,
        .state_dir = state_dir,
        .progress = json ? NULL : cli_progress_stdout,
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
    return cli_flush_stdout(rc == 0 ? 0 : 1);
}


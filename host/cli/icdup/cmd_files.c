/* icdup encrypt, decrypt, recover: front ends over host/filecrypt.c, host/filecard.c and
 * host/recover.c (docs/fileformat.md). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include "card_ops.h"
#include "cli.h"
#include "filecard.h"
#include "filecrypt.h"
#include "hex.h"
#include "recover.h"
#include "secrets.h"
#include "transport.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static bool is_dash(const char *s)
{
    return s != NULL && strcmp(s, "-") == 0;
}

#define DATA_BAR_MIN ((uint64_t)64 << 20) /* inputs from 64 MiB on get a progress bar */

/* The progress bar of encrypt and decrypt (cli_bar, percentage mode) for filecrypt. */
static void data_bar_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_bar_update(ctx, done, total);
}

/* Turns the bar on for an input file path of at least DATA_BAR_MIN bytes when stderr is a
 * terminal. */
static void data_bar_begin(struct cli_bar *b, const char *what, const char *path)
{
    cli_bar_init(b, what, false, false);
    struct stat st;
    if (path != NULL && !is_dash(path) && isatty(STDERR_FILENO) == 1 && stat(path, &st) == 0 &&
        S_ISREG(st.st_mode) && (uint64_t)st.st_size >= DATA_BAR_MIN) {
        b->on = true;
        filecrypt_set_progress(data_bar_progress, b);
    }
}

static void data_bar_end(struct cli_bar *b)
{
    filecrypt_set_progress(NULL, NULL);
    cli_bar_clear(b);
}

/* Reads a P-256 public key from a PEM (or DER) SubjectPublicKeyInfo file into pub. Returns 0,
 * or -1 with a message. */
static int load_pubkey_file(const char *path, uint8_t pub[65], char *err, size_t errlen)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = -1;
    int ret = mbedtls_pk_parse_public_keyfile(&pk, path);
    if (ret != 0) {
        snprintf(err, errlen, "%s is not a readable PEM or DER public key file (mbedtls -0x%04X)",
                 path, (unsigned)-ret);
        goto out;
    }
    mbedtls_pk_type_t type = mbedtls_pk_get_type(&pk);
    if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECKEY_DH) {
        snprintf(err, errlen, "%s holds a %s key, not an EC P-256 public key", path,
                 mbedtls_pk_get_name(&pk));
        goto out;
    }
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
    if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        snprintf(err, errlen, "%s holds an EC key of another curve, not P-256", path);
        goto out;
    }
    size_t olen = 0;
    if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub,
                                       65) != 0 ||
        olen != 65) {
        snprintf(err, errlen, "%s: cannot encode its public point", path);
        goto out;
    }
    rc = 0;
out:
    mbedtls_pk_free(&pk);
    return rc;
}

/* The public key of a recipient named by --to: an existing regular file is a PEM/DER public
 * key, anything else a reader URI whose card's key is read (no PIN). Returns 0, 1 or
 * EXIT_USAGE (message printed). */
static int recipient_key(const char *to, uint8_t pub[65])
{
    struct stat st;
    char err[512];
    if (stat(to, &st) == 0 && S_ISREG(st.st_mode)) {
        if (load_pubkey_file(to, pub, err, sizeof err) != 0) {
            fprintf(stderr, "icdup: error: encrypt: --to %s\n", err);
            return 1;
        }
        return 0;
    }
    struct transport *t = NULL;
    int rc = cli_open_card("encrypt", to, &t);
    if (rc != 0)
        return rc;
    struct cardop c;
    cardop_init(&c, t, "card");
    rc = cardop_read_pubkey(&c, pub);
    if (rc != 0)
        fprintf(stderr, "icdup: error: encrypt: --to %s: %s\n", to, c.err);
    transport_close(t);
    return rc != 0 ? 1 : 0;
}

/* Moves every "--to X" / "--to=X" of argv into tos (capacity argc) and the rest into rest.
 * Returns 0, or EXIT_USAGE when a --to lacks its value. */
static int split_to(int argc, char **argv, const char **tos, int *nto, char **rest, int *nrest)
{
    *nto = *nrest = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0)
            only_pos = true;
        if (!only_pos && strcmp(a, "--to") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("encrypt", "--to needs a value");
            tos[(*nto)++] = argv[++i];
        } else if (!only_pos && strncmp(a, "--to=", 5) == 0) {
            tos[(*nto)++] = a + 5;
        } else {
            rest[(*nrest)++] = a;
        }
    }
    return 0;
}

/* ---- encrypt ---------------------------------------------------------------------------- */

static void usage_encrypt(FILE *f)
{
    fputs("usage: icdup encrypt --to URI|PUBKEY.pem [--to ...] [--chunk-exp E] IN OUT\n"
          "\n"
          "Encrypts the file IN into OUT for up to 8 recipients (docs/fileformat.md): a fresh\n"
          "content key per file, AES-256-GCM in chunks on the host, the content key wrapped\n"
          "for each recipient's P-256 key. No PIN is needed: a card's public key is read with\n"
          "00 47 81 00 00. OUT is written to a temporary file next to it and renamed over it\n"
          "only when complete. IN and OUT may be '-' (standard input / output).\n"
          "\n"
          "  --to URI            a card: its public key is read from the reader\n"
          "  --to PUBKEY.pem     a public key file (PEM or DER, EC P-256), e.g. a partner's\n"
          "  --chunk-exp E       chunks of 2^E bytes, E = 10..20 (default 16: 64 KiB)\n"
          "  -v, --verbose       trace every APDU to stderr\n"
          "  -h, --help          this help\n"
          "\n"
          "Exit status: 0 encrypted, 1 failure (nothing is left at OUT), 2 usage error.\n\n",
          f);
    cli_print_uri_help(f);
}

int cli_cmd_encrypt(int argc, char **argv)
{
    const char **tos = calloc((size_t)argc + 1, sizeof *tos);
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int rc = 1;
    if (tos == NULL || rest == NULL || pos == NULL)
        goto out;
    int nto = 0, nrest = 0, npos = 0;
    rc = split_to(argc, argv, tos, &nto, rest, &nrest);
    if (rc != 0)
        goto out;
    const char *chunk = NULL;
    bool help = false;
    const struct cli_opt opts[] = {
        { "--chunk-exp", true, &chunk, NULL },
        { NULL, false, NULL, NULL },
    };
    rc = cli_parse_opts("encrypt", nrest, rest, opts, &help, &npos, pos);
    if (rc != 0)
        goto out;
    if (help) {
        usage_encrypt(stdout);
        rc = 0;
        goto out;
    }
    if (npos != 2) {
        rc = cli_usage_error("encrypt", "give the input and the output file (IN OUT, '-' for "
                                        "standard input / output)");
        goto out;
    }
    if (nto == 0) {
        rc = cli_usage_error("encrypt", "at least one --to URI|PUBKEY.pem is required");
        goto out;
    }
    if (nto > (int)FILECRYPT_MAX_RECIPIENTS) {
        rc = cli_usage_error("encrypt", "at most 8 recipients (--to) per file");
        goto out;
    }
    unsigned exp = FILECRYPT_CHUNK_EXP_DEFAULT;
    if (chunk != NULL) {
        char *end = NULL;
        long v = strtol(chunk, &end, 10);
        if (end == chunk || *end != '\0' || v < (long)FILECRYPT_CHUNK_EXP_MIN ||
            v > (long)FILECRYPT_CHUNK_EXP_MAX) {
            rc = cli_usage_error("encrypt", "--chunk-exp must be a number from 10 to 20");
            goto out;
        }
        exp = (unsigned)v;
    }
    const char *in = pos[0], *outp = pos[1];
    if (is_dash(outp) && isatty(STDOUT_FILENO)) {
        rc = cli_usage_error("encrypt", "not writing ciphertext to a terminal: give an output "
                                        "file or redirect standard output");
        goto out;
    }
    uint8_t keys[FILECRYPT_MAX_RECIPIENTS][65];
    for (int i = 0; i < nto; i++) {
        rc = recipient_key(tos[i], keys[i]);
        if (rc != 0)
            goto out;
    }
    char err[1024];
    uint64_t plen = 0;
    struct cli_bar bar;
    data_bar_begin(&bar, "encrypt", in);
    rc = filecrypt_encrypt_path(in, outp, (const uint8_t(*)[65])keys, (unsigned)nto, exp, &plen,
                                err, sizeof err);
    data_bar_end(&bar);
    if (rc != FILECRYPT_OK) {
        fprintf(stderr, "icdup: error: encrypt: %s\n", err);
        rc = 1;
        goto out;
    }
    if (!is_dash(outp)) {
        printf("encrypted %llu bytes to %s for %d recipient%s (key id", (unsigned long long)plen,
               outp, nto, nto == 1 ? "" : "s");
        for (int i = 0; i < nto; i++) {
            uint8_t id[FILECRYPT_KEY_ID_LEN];
            char hx[2 * FILECRYPT_KEY_ID_LEN + 1];
            filecrypt_key_id(keys[i], id);
            hex_encode(id, sizeof id, 0, hx, sizeof hx);
            printf("%s %s", i == 0 ? "" : ",", hx);
        }
        printf(")\n");
    }
    rc = cli_flush_stdout(0);
out:
    free(tos);
    free(rest);
    free(pos);
    return rc;
}

/* ---- decrypt ---------------------------------------------------------------------------- */

static void usage_decrypt(FILE *f)
{
    fputs("usage: icdup decrypt --card URI [--pin FILE|-] IN OUT\n"
          "\n"
          "Decrypts the file IN into OUT with the card: the card's key must be a recipient of\n"
          "the file (else nothing is sent to the card and no PIN try is spent), then the user\n"
          "PIN is verified and one PSO DECIPHER opens the content key; the chunks are\n"
          "decrypted on the host. Every chunk is authenticated: a modified, truncated,\n"
          "extended or reordered file is refused. OUT is written to a temporary file next to\n"
          "it (mode 0600) and renamed over it only when the whole file authenticated, so\n"
          "nothing partial is ever left at OUT. IN and OUT may be '-': with OUT '-' the\n"
          "plaintext of the chunks before a bad chunk is already on standard output when\n"
          "the error is reported (exit status 1).\n"
          "\n"
          "  --card URI     the card (default: $ICDUP_CARD)\n"
          "  --pin FILE|-   secrets file with the user PIN (pin = ...); else it is asked\n"
          "  -v, --verbose  trace every APDU to stderr (the PIN redacted)\n"
          "  -h, --help     this help\n"
          "\n"
          "Exit status: 0 decrypted, 1 failure, 2 usage error.\n\n",
          f);
    cli_print_uri_help(f);
}

int cli_cmd_decrypt(int argc, char **argv)
{
    const char *card = NULL, *pin_file = NULL;
    const struct cli_opt opts[] = {
        { "--card", true, &card, NULL },
        { "--pin", true, &pin_file, NULL },
        { NULL, false, NULL, NULL },
    };
    char **pos;
    int npos;
    int rc = cli_parse("decrypt", argc, argv, opts, usage_decrypt, &npos, &pos);
    if (rc >= 0)
        return rc;
    const char *in = npos > 0 ? pos[0] : NULL, *outp = npos > 1 ? pos[1] : NULL;
    free(pos);
    if (npos != 2)
        return cli_usage_error("decrypt", "give the input and the output file (IN OUT, '-' for "
                                          "standard input / output)");
    if (is_dash(in) && is_dash(pin_file))
        return cli_usage_error("decrypt", "the input and --pin cannot both be standard input");
    if (card == NULL)
        card = getenv("ICDUP_CARD");
    struct secret_pin pin;
    memset(&pin, 0, sizeof pin);
    rc = cli_load_pins("decrypt", pin_file, "card", true, &pin, false, NULL);
    struct transport *t = NULL;
    if (rc == 0)
        rc = cli_open_card("decrypt", card, &t);
    if (rc != 0) {
        memset(&pin, 0, sizeof pin);
        return rc;
    }
    struct cardop c;
    cardop_init(&c, t, "card");
    uint8_t pub[65];
    char err[1024];
    uint64_t plen = 0;
    if (cardop_read_pubkey(&c, pub) != 0) {
        fprintf(stderr, "icdup: error: decrypt: %s\n", c.err);
        rc = 1;
    } else {
        struct cli_bar bar;
        data_bar_begin(&bar, "decrypt", in);
        int r = filecard_decrypt_path(&c, pub, &pin, in, outp, &plen, err, sizeof err);
        data_bar_end(&bar);
        if (r != 0) {
            fprintf(stderr, "icdup: error: decrypt: %s\n", err);
            rc = 1;
        } else if (!is_dash(outp)) {
            printf("decrypted %llu bytes to %s\n", (unsigned long long)plen, outp);
        }
    }
    memset(&pin, 0, sizeof pin);
    transport_close(t);
    return cli_flush_stdout(rc);
}

/* ---- recover ---------------------------------------------------------------------------- */

static void usage_recover(FILE *f)
{
    fputs("usage: icdup recover --backup URI --new URI [--backup-pin FILE|-]\n"
          "                     [--new-pin FILE|-] [--json] FILE...\n"
          "\n"
          "The original card is lost: its backup (same key, made by 'icdup clone') opens each\n"
          "FILE (one PSO DECIPHER) and the new card's key replaces the backup's key among the\n"
          "file's recipients; a partner's key and the encrypted data stay as they are. Each\n"
          "file is rewritten through a temporary file in its directory, fsync and rename: a\n"
          "crash leaves each file old or new, and a rerun skips the files already done and\n"
          "removes stale temporary files (docs/fileformat.md).\n"
          "\n"
          "  --backup URI          the backup card (its user PIN is needed)\n"
          "  --new URI             the new card: only its public key is read, unless --new-pin\n"
          "  --backup-pin FILE|-   secrets file with the backup's user PIN; else it is asked\n"
          "  --new-pin FILE|-      the new card's user PIN: the new card then proves it holds\n"
          "                        its key and opens every rewritten entry before the file is\n"
          "                        replaced (one more PSO per file)\n"
          "  --json                one JSON summary on standard output\n"
          "  -v, --verbose         trace every APDU to stderr (PINs redacted)\n"
          "  -h, --help            this help\n"
          "\n"
          "A progress bar goes to standard error when it is a terminal. The summary lists the\n"
          "files done, skipped (already protected for the new card) and failed, with the\n"
          "reason of each failure.\n"
          "Exit status: 0 every file done or skipped, 1 a file failed or a card failed (files\n"
          "not reached are unchanged: rerun), 2 usage error.\n\n",
          f);
    cli_print_uri_help(f);
}


/* The files done so far, on a cli_bar in count mode. */
static void bar_progress(void *ctx, size_t index, size_t total, const char *path,
                         const struct recover_result *r)
{
    (void)path;
    (void)r;
    cli_bar_update(ctx, index + 1, total);
}

static void recover_json(FILE *f, char **files, size_t n, const struct recover_result *res,
                         const struct recover_summary *s, int rc, const char *err)
{
    static const uint8_t zero[8] = { 0 };
    fprintf(f, "{\"ok\": %s, \"error\": ", rc == RECOVER_OK ? "true" : "false");
    if (rc == RECOVER_OK)
        fputs("null", f);
    else
        cli_json_string(f, (const uint8_t *)err, strlen(err));
    fputs(", \"backup_key_id\": ", f);
    if (memcmp(s->backup_key_id, zero, 8) != 0)
        cli_json_hex(f, s->backup_key_id, 8);
    else
        fputs("null", f);
    fputs(", \"new_key_id\": ", f);
    if (memcmp(s->new_key_id, zero, 8) != 0)
        cli_json_hex(f, s->new_key_id, 8);
    else
        fputs("null", f);
    fprintf(f, ", \"proved\": %s, \"done\": %zu, \"skipped\": %zu, \"failed\": %zu, "
            "\"not_attempted\": %zu, \"stale_removed\": %u, \"apdus\": {\"backup\": %lu, "
            "\"new\": %lu}, \"files\": [",
            s->proved ? "true" : "false", s->done, s->skipped, s->failed, s->pending,
            s->stale_removed, s->apdus_backup, s->apdus_new);
    for (size_t i = 0; i < n; i++) {
        fputs(i == 0 ? "\n  {\"path\": " : ",\n  {\"path\": ", f);
        cli_json_string(f, (const uint8_t *)files[i], strlen(files[i]));
        fprintf(f, ", \"status\": \"%s\", \"reason\": ", recover_status_name(res[i].status));
        if (res[i].reason[0] != '\0')
            cli_json_string(f, (const uint8_t *)res[i].reason, strlen(res[i].reason));
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs(n > 0 ? "\n]}\n" : "]}\n", f);
}

int cli_cmd_recover(int argc, char **argv)
{
    const char *backup = NULL, *fresh = NULL, *bpin_file = NULL, *npin_file = NULL;
    bool json = false;
    const struct cli_opt opts[] = {
        { "--backup", true, &backup, NULL },
        { "--new", true, &fresh, NULL },
        { "--backup-pin", true, &bpin_file, NULL },
        { "--new-pin", true, &npin_file, NULL },
        { "--json", false, NULL, &json },
        { NULL, false, NULL, NULL },
    };
    char **pos;
    int npos;
    int rc = cli_parse("recover", argc, argv, opts, usage_recover, &npos, &pos);
    if (rc >= 0)
        return rc;
    if (backup == NULL || fresh == NULL) {
        free(pos);
        return cli_usage_error("recover", "both --backup URI and --new URI are required");
    }
    if (strcmp(backup, fresh) == 0) {
        free(pos);
        return cli_usage_error("recover", "--backup and --new name the same card");
    }
    if (npos == 0) {
        free(pos);
        return cli_usage_error("recover", "give the files to recover");
    }
    if (is_dash(bpin_file) && is_dash(npin_file)) {
        free(pos);
        return cli_usage_error("recover", "only one of --backup-pin and --new-pin may read "
                                          "standard input ('-')");
    }
    struct secret_pin bpin, npin;
    memset(&bpin, 0, sizeof bpin);
    memset(&npin, 0, sizeof npin);
    rc = cli_load_pins("recover", bpin_file, "backup card", true, &bpin, false, NULL);
    if (rc == 0 && npin_file != NULL)
        rc = cli_load_pins("recover", npin_file, "new card", true, &npin, false, NULL);
    struct transport *tb = NULL, *tn = NULL;
    if (rc == 0)
        rc = cli_open_named("recover", backup, "--backup", &tb);
    if (rc == 0)
        rc = cli_open_named("recover", fresh, "--new", &tn);
    struct recover_result *res = NULL;
    if (rc == 0) {
        res = calloc((size_t)npos, sizeof *res);
        if (res == NULL) {
            fprintf(stderr, "icdup: error: recover: out of memory\n");
            rc = 1;
        }
    }
    if (rc != 0) {
        transport_close(tb);
        memset(&bpin, 0, sizeof bpin);
        memset(&npin, 0, sizeof npin);
        free(pos);
        return rc;
    }
    struct cli_bar bar;
    cli_bar_init(&bar, "recover", isatty(STDERR_FILENO) == 1, true);
    struct recover_options o = {
        .backup_pin = &bpin,
        .new_pin = npin_file != NULL ? &npin : NULL,
        .progress = bar_progress,
        .progress_ctx = &bar,
    };
    struct recover_summary s;
    char err[1024];
    int r = recover_files(tb, tn, (const char *const *)pos, (size_t)npos, &o, res, &s, err,
                          sizeof err);
    cli_bar_clear(&bar);
    memset(&bpin, 0, sizeof bpin);
    memset(&npin, 0, sizeof npin);
    transport_close(tb);
    transport_close(tn);
    if (json) {
        recover_json(stdout, pos, (size_t)npos, res, &s, r, err);
    } else {
        bool started = s.pending < (size_t)npos;
        for (int i = 0; i < npos; i++)
            if (res[i].status == RECOVER_FAILED ||
                (started && res[i].status == RECOVER_PENDING))
                printf("%s %s: %s\n", res[i].status == RECOVER_FAILED ? "failed" : "not attempted",
                       pos[i], res[i].reason);
        printf("recover: %zu done, %zu skipped, %zu failed", s.done, s.skipped, s.failed);
        if (s.pending > 0)
            printf(", %zu not attempted", s.pending);
        if (s.stale_removed > 0)
            printf(" (%u stale temporary file%s removed)", s.stale_removed,
                   s.stale_removed == 1 ? "" : "s");
        printf("\n");
    }
    if (r != RECOVER_OK)
        fprintf(stderr, "icdup: error: recover: %s\n", err);
    free(res);
    free(pos);
    return cli_flush_stdout(r == RECOVER_OK ? 0 : 1);
}

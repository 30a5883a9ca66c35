/* icissue cert ca|server|branch|revoke|crl: the certificates of the central issuance system,
 * over host/central/certs.c and crl.c (docs/central.md "Certificates"). No issuance file. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "cli.h"
#include "crl.h"
#include "icissue.h"

#define CERT_DEFAULT_CA_NAME "icdup demo CA"
#define CERT_DEFAULT_SERVER_NAME "central"

static void usage_cert(FILE *f)
{
    fputs("usage: icissue cert ca --out-cert FILE --out-key FILE [--name NAME] [--days N]\n"
          "       icissue cert server --ca-cert FILE --ca-key FILE --host HOSTS\n"
          "                           --out-cert FILE --out-key FILE [--name NAME] [--days N]\n"
          "       icissue cert branch --ca-cert FILE --ca-key FILE --name BRANCH\n"
          "                           --out-cert FILE --out-key FILE [--days N]\n"
          "       icissue cert revoke --ca-cert FILE --ca-key FILE --cert FILE --crl FILE\n"
          "                           [--days N]\n"
          "       icissue cert crl --ca-cert FILE --ca-key FILE --crl FILE [--days N]\n"
          "\n"
          "Certificates for the central issuance server and its branches (mutually\n"
          "authenticated TLS, docs/central.md). Every key is a new ECDSA P-256 key; key files\n"
          "are written with mode 0600 and an existing file is never overwritten.\n"
          "\n"
          "  ca      a self-signed CA (basicConstraints CA:true, keyCertSign and cRLSign)\n"
          "  server  the central's certificate (serverAuth), valid for the HOSTS clients\n"
          "          connect to: host names and IP addresses, comma-separated\n"
          "          (\"127.0.0.1,localhost\")\n"
          "  branch  a branch's certificate (clientAuth); its name, the certificate's CN, is\n"
          "          the branch name the central sees\n"
          "  revoke  add the certificate's serial to the CA's CRL (created when missing) and\n"
          "          sign it again; a running server reads the new CRL at the next connection\n"
          "  crl     create the CRL, or sign it again with fresh dates before its next update\n"
          "\n"
          "  --out-cert FILE  the new certificate (PEM)\n"
          "  --out-key FILE   the new private key (PEM, mode 0600)\n"
          "  --name NAME      ca: the CA's name (default \"" CERT_DEFAULT_CA_NAME "\";\n"
          "                   A-Z a-z 0-9 . _ - and spaces); server: its name (default\n"
          "                   \"" CERT_DEFAULT_SERVER_NAME "\"); branch: the branch name, 1 to 64 of\n"
          "                   A-Z a-z 0-9 . _ -\n"
          "  --host HOSTS     server: the DNS names and IP addresses it is reached at\n"
          "  --days N         validity in days (ca 3650, server and branch 825, CRL 365)\n"
          "  --ca-cert FILE   the CA's certificate\n"
          "  --ca-key FILE    the CA's private key (mode 0600)\n"
          "  --cert FILE      revoke: the certificate to revoke\n"
          "  --crl FILE       the CRL (PEM), replaced atomically\n"
          "  -h, --help       this help\n"
          "\n"
          "Exit status: 0 success, 1 failure (nothing written), 2 usage error.\n",
          f);
}

enum {
    O_OUT_CERT = 1u << 0,
    O_OUT_KEY = 1u << 1,
    O_NAME = 1u << 2,
    O_DAYS = 1u << 3,
    O_CA_CERT = 1u << 4,
    O_CA_KEY = 1u << 5,
    O_HOST = 1u << 6,
    O_CERT = 1u << 7,
    O_CRL = 1u << 8,
};

static const char *const opt_names[] = { "--out-cert", "--out-key", "--name", "--days",
                                         "--ca-cert", "--ca-key", "--host", "--cert",
                                         "--crl" };

struct sub {
    const char *name;
    unsigned required, allowed;
};

static const struct sub subs[] = {
    { "ca", O_OUT_CERT | O_OUT_KEY, O_OUT_CERT | O_OUT_KEY | O_NAME | O_DAYS },
    { "server", O_OUT_CERT | O_OUT_KEY | O_CA_CERT | O_CA_KEY | O_HOST,
      O_OUT_CERT | O_OUT_KEY | O_CA_CERT | O_CA_KEY | O_HOST | O_NAME | O_DAYS },
    { "branch", O_OUT_CERT | O_OUT_KEY | O_CA_CERT | O_CA_KEY | O_NAME,
      O_OUT_CERT | O_OUT_KEY | O_CA_CERT | O_CA_KEY | O_NAME | O_DAYS },
    { "revoke", O_CA_CERT | O_CA_KEY | O_CERT | O_CRL, O_CA_CERT | O_CA_KEY | O_CERT | O_CRL |
                                                           O_DAYS },
    { "crl", O_CA_CERT | O_CA_KEY | O_CRL, O_CA_CERT | O_CA_KEY | O_CRL | O_DAYS },
};

/* Which options were given, against what the sub-command needs and takes. Returns 0 or the
 * exit status of the usage error printed. */
static int check_opts(const struct sub *s, const char *const *vals)
{
    char msg[160];
    for (unsigned i = 0; i < sizeof opt_names / sizeof opt_names[0]; i++) {
        unsigned bit = 1u << i;
        if (vals[i] != NULL && (s->allowed & bit) == 0) {
            snprintf(msg, sizeof msg, "%s does not go with cert %s", opt_names[i], s->name);
            return cli_usage_error("cert", msg);
        }
        if (vals[i] == NULL && (s->required & bit) != 0) {
            snprintf(msg, sizeof msg, "cert %s needs %s", s->name, opt_names[i]);
            return cli_usage_error("cert", msg);
        }
    }
    return 0;
}

static int run_make(const struct sub *s, const char *const *v, unsigned days)
{
    struct central_cert_req r = {
        .kind = strcmp(s->name, "ca") == 0       ? CENTRAL_CERT_CA
                : strcmp(s->name, "server") == 0 ? CENTRAL_CERT_SERVER
                                                 : CENTRAL_CERT_BRANCH,
        .name = v[2],
        .hosts = v[6],
        .days = days,
        .ca_cert = v[4],
        .ca_key = v[5],
        .out_cert = v[0],
        .out_key = v[1],
    };
    char err[1024];
    if (r.name == NULL)
        r.name = r.kind == CENTRAL_CERT_CA ? CERT_DEFAULT_CA_NAME : CERT_DEFAULT_SERVER_NAME;
    if (r.kind != CENTRAL_CERT_CA && !central_name_valid(r.name)) {
        snprintf(err, sizeof err, "--name must be 1 to %u characters of A-Z a-z 0-9 . _ -",
                 CENTRAL_NAME_MAX);
        return cli_usage_error("cert", err);
    }
    if (r.kind == CENTRAL_CERT_SERVER && central_hosts_check(r.hosts, err, sizeof err) != 0)
        return cli_usage_error("cert", err);
    struct central_cert_info info;
    if (central_cert_make(&r, &info, err, sizeof err) != 0)
        return icissue_fail("cert", "%s", err);
    printf("made %s certificate \"%s\": %s (serial %s, valid until %s), key %s (mode 0600)\n",
           s->name, r.name, r.out_cert, info.serial, info.not_after, r.out_key);
    return cli_flush_stdout(0);
}

static int run_crl(const struct sub *s, const char *const *v, unsigned days)
{
    struct central_crl_req r = {
        .ca_cert = v[4],
        .ca_key = v[5],
        .crl = v[8],
        .revoke = v[7],
        .days = days,
    };
    char err[1024];
    struct central_crl_info info;
    if (central_crl_update(&r, &info, err, sizeof err) != 0)
        return icissue_fail("cert", "%s", err);
    if (strcmp(s->name, "revoke") == 0)
        printf(info.already ? "serial %s (%s) was revoked already\n" : "revoked serial %s (%s)\n",
               info.serial, info.subject);
    printf("%s %s: %zu revoked serial%s, next update %s\n", info.created ? "created" : "signed",
           r.crl, info.entries, info.entries == 1 ? "" : "s", info.next_update);
    return cli_flush_stdout(0);
}

int icissue_cmd_cert(int argc, char **argv)
{
    const char *v[sizeof opt_names / sizeof opt_names[0]] = { NULL };
    struct cli_opt opts[sizeof opt_names / sizeof opt_names[0] + 1];
    for (unsigned i = 0; i < sizeof opt_names / sizeof opt_names[0]; i++)
        opts[i] = (struct cli_opt){ opt_names[i], true, &v[i], NULL };
    opts[sizeof opt_names / sizeof opt_names[0]] = (struct cli_opt){ NULL, false, NULL, NULL };
    char **pos;
    int npos;
    int rc = cli_parse("cert", argc, argv, opts, usage_cert, &npos, &pos);
    if (rc >= 0)
        return rc;
    const struct sub *s = NULL;
    char msg[160];
    if (npos == 0) {
        rc = cli_usage_error("cert", "give a sub-command: ca, server, branch, revoke or crl");
        goto out;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(pos[0], subs[i].name) == 0)
            s = &subs[i];
    if (s == NULL || npos > 1) {
        snprintf(msg, sizeof msg, s == NULL ? "unknown sub-command \"%.60s\" (ca, server, "
                 "branch, revoke or crl)" : "unexpected argument \"%.60s\"",
                 pos[s == NULL ? 0 : 1]);
        rc = cli_usage_error("cert", msg);
        goto out;
    }
    if ((rc = check_opts(s, v)) != 0)
        goto out;
    unsigned long days = 0;
    if (v[3] != NULL && icissue_parse_count(v[3], CENTRAL_DAYS_MAX, &days) != 0) {
        snprintf(msg, sizeof msg, "--days needs a number of days from 1 to %u",
                 CENTRAL_DAYS_MAX);
        rc = cli_usage_error("cert", msg);
        goto out;
    }
    rc = s->required & O_CRL ? run_crl(s, v, (unsigned)days) : run_make(s, v, (unsigned)days);
out:
    free(pos);
    return rc;
}

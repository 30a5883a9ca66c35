/* icissue serve: the central issuance system (docs/central.md) — the TLS server of
 * host/central/server.c answering with the operations of host/central/ops.c, plus a thread that
 * releases expired leases every second. Stops on SIGINT or SIGTERM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "icissue.h"
#include "ops.h"
#include "server.h"

static void usage_serve(FILE *f)
{
    fputs("usage: icissue serve --listen HOST:PORT --cert FILE --key FILE --ca FILE "
          "[--crl FILE]\n"
          "                     [--db URI] [options]\n"
          "The central issuance system: branches (each with a client certificate of the CA)\n"
          "look up, claim, confirm and abort reissues over mutually authenticated TLS. The\n"
          "branch name is the certificate's common name. Prints \"listening on HOST:PORT\"\n"
          "once ready; stops on SIGINT or SIGTERM.\n\n"
          "  --listen HOST:PORT  address to listen on (port 0: a free one, printed)\n"
          "  --cert, --key       the server's certificate and key (icissue cert server)\n"
          "  --ca FILE           the CA of the branch certificates\n"
          "  --crl FILE          the CA's revocation list, read again when it changes\n"
          "  --lease SECONDS     how long a claim stays reserved (default 300)\n"
          "  --pool N            database connections (default 16)\n"
          "  --max-conns N       branch connections at once (default 64)\n", f);
    icissue_print_db_help(f, 18);
    fputs("\nExit status: 0 stopped by a signal, 1 could not start, 2 usage.\n", f);
}

struct serve_reaper {
    struct central_ops *ops;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

/* Releases expired claims every second until told to stop. */
static void *serve_reap(void *arg)
{
    struct serve_reaper *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        char err[512];
        int n = central_ops_expire(r->ops, err, sizeof err);
        if (n > 0)
            fprintf(stderr, "icissue serve: %d expired claim%s released\n", n, n == 1 ? "" : "s");
        else if (n < 0)
            fprintf(stderr, "icissue serve: releasing expired claims: %s\n", err);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int icissue_cmd_serve(int argc, char **argv)
{
    const char *dbopt = NULL, *listen = NULL, *cert = NULL, *key = NULL, *ca = NULL,
               *crl = NULL, *lease_s = NULL, *pool_s = NULL, *conns_s = NULL;
    const struct cli_opt opts[] = {
        { "--db", true, &dbopt, NULL },
        { "--listen", true, &listen, NULL },
        { "--cert", true, &cert, NULL },
        { "--key", true, &key, NULL },
        { "--ca", true, &ca, NULL },
        { "--crl", true, &crl, NULL },
        { "--lease", true, &lease_s, NULL },
        { "--pool", true, &pool_s, NULL },
        { "--max-conns", true, &conns_s, NULL },
        { NULL, false, NULL, NULL },
    };
    int rc = cli_parse_plain("serve", argc, argv, opts, usage_serve, "takes no argument");
    if (rc >= 0)
        return rc;
    char host[256], port[16];
    if (listen == NULL || icissue_split_hostport(listen, host, sizeof host, port, sizeof port) != 0)
        return cli_usage_error("serve", "--listen HOST:PORT is required");
    if (cert == NULL || key == NULL || ca == NULL)
        return cli_usage_error("serve", "--cert, --key and --ca are required");
    unsigned long lease = CENTRAL_LEASE_DEFAULT, pool = 16, conns = CENTRAL_MAX_CONNS;
    if ((lease_s != NULL && icissue_parse_count(lease_s, CENTRAL_LEASE_MAX, &lease) != 0) ||
        (pool_s != NULL && icissue_parse_count(pool_s, 256, &pool) != 0) ||
        (conns_s != NULL && icissue_parse_count(conns_s, CENTRAL_MAX_CONNS_LIMIT, &conns) != 0))
        return cli_usage_error("serve", "--lease (1..3600), --pool (1..256) and --max-conns "
                               "(1..4096) take a count");
    char err[1024];
    struct central_ops *ops = NULL;
    if (central_ops_open(icissue_db_path(dbopt), (unsigned)pool, (unsigned)lease, &ops, err,
                         sizeof err) != 0)
        return icissue_fail("serve", "%s", err);
    /* SIGINT and SIGTERM are taken by the server's signal thread: blocked here first, so the
     * reaper started below does not take them either. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    struct central_server_config cfg = {
        .host = host, .port = port, .ca_cert = ca, .cert = cert, .key = key, .crl = crl,
        .max_conns = (unsigned)conns,
    };
    struct central_server *srv = NULL;
    if (central_server_open(&cfg, &srv, err, sizeof err) != 0) {
        central_ops_close(ops);
        return icissue_fail("serve", "%s", err);
    }
    struct serve_reaper reaper = { .ops = ops, .stop = false };
    pthread_mutex_init(&reaper.lock, NULL);
    pthread_cond_init(&reaper.wake, NULL);
    pthread_t treap;
    bool have_reap = pthread_create(&treap, NULL, serve_reap, &reaper) == 0;
    if (!have_reap) {
        rc = icissue_fail("serve", "cannot start a thread: %s", strerror(errno));
    } else {
        printf("listening on %s:%u\n", host, central_server_port(srv));
        fflush(stdout);
        rc = central_server_serve_until_signal(srv, central_ops_handle, ops) == 0 ? 0 : 1;
        pthread_mutex_lock(&reaper.lock);
        reaper.stop = true;
        pthread_cond_signal(&reaper.wake);
        pthread_mutex_unlock(&reaper.lock);
        pthread_join(treap, NULL);
    }
    central_server_close(srv);
    central_ops_close(ops);
    pthread_cond_destroy(&reaper.wake);
    pthread_mutex_destroy(&reaper.lock);
    return rc;
}

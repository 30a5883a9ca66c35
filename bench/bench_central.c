/* Reissues per second through the central issuance system: the real TLS server (one thread per
 * branch connection) with the operations of host/central/ops.c on an issuance file, and 16
 * branches on loopback, each with its own certificate and connection, each reissuing records
 * of its own: claim, then confirm (the protocol round trips and database work of a reissue; the
 * cards are not part of it). The clock starts once every branch has connected (its TLS
 * handshake done) and made a warm-up reissue of each of its records (the server's database
 * connections open, their statements prepared): what is measured is a central system in
 * service, not its start. Reports throughput over
 * the run and the p50/p99 latency of one reissue (claim + confirm). Checks afterwards that
 * every record counts exactly its confirmed reissues.
 * Usage: bench_central DB-URI TAG [REISSUES-PER-BRANCH]   (DB-URI: a SQLite path that does not
 * exist yet, or an empty PostgreSQL database; run from the repo root for examples/types.json).
 * Prints "key value" lines (central_TAG_...) for bench/run.sh. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs.h"
#include "client.h"
#include "crl.h"
#include "idb.h"
#include "ops.h"
#include "server.h"
#include "typefile.h"

#define BRANCHES_MAX 16
static int BRANCHES = BRANCHES_MAX;
#define RECORDS_PER_BRANCH 8
#define WARMUP RECORDS_PER_BRANCH /* reissues per branch before the clock starts */

static char dir[64];
static const char *port;
static pthread_barrier_t ready; /* every branch connected and warm, and the main thread */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_central: %s: %s\n", what, err);
    exit(1);
}

static void make(enum central_cert_kind kind, const char *name, const char *hosts,
                 const char *out)
{
    char crt[128], key[128], cac[128], cak[128], err[512];
    snprintf(crt, sizeof crt, "%s/%s.crt", dir, out);
    snprintf(key, sizeof key, "%s/%s.key", dir, out);
    snprintf(cac, sizeof cac, "%s/ca.crt", dir);
    snprintf(cak, sizeof cak, "%s/ca.key", dir);
    struct central_cert_req r = { .kind = kind, .name = name, .hosts = hosts, .ca_cert = cac,
                                  .ca_key = cak, .out_cert = crt, .out_key = key };
    if (central_cert_make(&r, NULL, err, sizeof err) != 0)
        die("certificate", err);
}

static void fill(const char *uri)
{
    struct idb *db;
    char err[512];
    struct ct_file *f = calloc(1, sizeof *f);
    if (f == NULL || idb_open(uri, true, &db, err, sizeof err) != IDB_OK ||
        typefile_load("examples/types.json", f, err, sizeof err) != 0 ||
        idb_types_store(db, f, err, sizeof err) != IDB_OK || idb_begin(db, err, sizeof err))
        die("issuance file", f == NULL ? "out of memory" : err);
    free(f);
    for (int b = 0; b < BRANCHES; b++) {
        for (int i = 0; i < RECORDS_PER_BRANCH; i++) {
            struct idb_record r;
            memset(&r, 0, sizeof r);
            snprintf(r.identity, sizeof r.identity, "B%02dR%d", b, i);
            snprintf(r.card_type, sizeof r.card_type, "ICDUP-1");
            snprintf(r.items[0].name, sizeof r.items[0].name, "holder");
            snprintf(r.items[0].value, sizeof r.items[0].value, "Holder %d-%d", b, i);
            r.nitems = 1;
            if (idb_record_insert(db, &r, err, sizeof err) != IDB_OK)
                die("record", err);
        }
    }
    if (idb_commit(db, err, sizeof err) != IDB_OK)
        die("commit", err);
    idb_close(db);
}

struct branch {
    int index;
    unsigned n;
    double *lat;       /* seconds per reissue */
    unsigned confirmed[RECORDS_PER_BRANCH];
    int failed;
};

static const char *status_of(const json_t *r)
{
    return json_string_value(json_object_get(r, "status"));
}

/* One reissue (claim, then confirm) of the branch's record number seq % RECORDS_PER_BRANCH
 * with a new card of serial seq: its time in *secs; 0, or -1 (b->failed set). */
static int reissue(struct branch *b, struct central_client *c, unsigned seq, double *secs)
{
    unsigned rec = seq % RECORDS_PER_BRANCH;
    char identity[16], serial[17], err[512];
    snprintf(identity, sizeof identity, "B%02dR%u", b->index, rec);
    snprintf(serial, sizeof serial, "%02X%014X", b->index, seq);
    double t0 = now();
    json_t *req = json_pack("{s:s, s:s}", "op", "claim", "identity", identity), *resp;
    int rc = central_call(c, req, &resp, err, sizeof err);
    json_decref(req);
    if (rc != 0 || strcmp(status_of(resp), "ok") != 0) {
        fprintf(stderr, "bench_central: claim: %s\n", rc != 0 ? err : status_of(resp));
        if (rc == 0)
            json_decref(resp);
        b->failed = 1;
        return -1;
    }
    req = json_pack("{s:s, s:O, s:s}", "op", "confirm", "token",
                    json_object_get(json_object_get(resp, "claim"), "token"), "serial", serial);
    json_decref(resp);
    rc = central_call(c, req, &resp, err, sizeof err);
    json_decref(req);
    if (rc != 0 || strcmp(status_of(resp), "ok") != 0) {
        fprintf(stderr, "bench_central: confirm: %s\n", rc != 0 ? err : status_of(resp));
        b->failed = 1;
    } else {
        b->confirmed[rec]++;
        *secs = now() - t0;
    }
    if (rc == 0)
        json_decref(resp);
    return b->failed ? -1 : 0;
}

static void *branch_run(void *arg)
{
    struct branch *b = arg;
    char name[16], crt[128], key[128], ca[128], err[512];
    snprintf(name, sizeof name, "b%02d", b->index);
    snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    struct central_client_config cfg = { .host = "127.0.0.1", .port = port, .ca_cert = ca,
                                         .cert = crt, .key = key };
    struct central_client *c = NULL;
    double unused;
    if (central_client_open(&cfg, &c, err, sizeof err) != 0 ||
        central_client_connect(c, err, sizeof err) != 0) {
        fprintf(stderr, "bench_central: %s: %s\n", name, err);
        b->failed = 1;
    }
    /* the warm-up: one reissue of each record, counted but not timed */
    for (unsigned i = 0; i < WARMUP && !b->failed; i++)
        (void)reissue(b, c, b->n + i, &unused);
    pthread_barrier_wait(&ready);
    for (unsigned i = 0; i < b->n && !b->failed; i++)
        (void)reissue(b, c, i, &b->lat[i]);
    if (c != NULL)
        central_client_close(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct serve_arg {
    struct central_server *s;
    struct central_ops *ops;
};

static void *serve(void *arg)
{
    struct serve_arg *a = arg;
    central_server_serve(a->s, central_ops_handle, a->ops);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_central DB-URI TAG [REISSUES-PER-BRANCH [BRANCHES]]\n");
        return 2;
    }
    const char *uri = argv[1], *tag = argv[2];
    unsigned per = argc >= 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 60;
    if (per == 0)
        per = 60;
    if (argc == 5)
        BRANCHES = atoi(argv[4]);
    if (BRANCHES < 1 || BRANCHES > BRANCHES_MAX)
        BRANCHES = BRANCHES_MAX;
    snprintf(dir, sizeof dir, "/tmp/icdup-bench-central-XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("temporary directory", "mkdtemp failed");
    make(CENTRAL_CERT_CA, "bench CA", NULL, "ca");
    make(CENTRAL_CERT_SERVER, "central", "127.0.0.1", "srv");
    for (int i = 0; i < BRANCHES; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%02d", i);
        make(CENTRAL_CERT_BRANCH, name, NULL, name);
    }
    fill(uri);

    char err[512], ca[128], crt[128], key[128], logp[128];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(crt, sizeof crt, "%s/srv.crt", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    snprintf(logp, sizeof logp, "%s/server.log", dir);
    FILE *log = fopen(logp, "w");
    struct serve_arg sa;
    if (log == NULL || central_ops_open(uri, BRANCHES, 300, &sa.ops, err, sizeof err) != 0)
        die("central", log == NULL ? "log file" : err);
    struct central_server_config cfg = { .host = "127.0.0.1", .port = "0", .ca_cert = ca,
                                         .cert = crt, .key = key, .log = log };
    if (central_server_open(&cfg, &sa.s, err, sizeof err) != 0)
        die("server", err);
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", central_server_port(sa.s));
    port = port_text;
    pthread_t st;
    pthread_create(&st, NULL, serve, &sa);

    struct branch b[BRANCHES_MAX];
    pthread_t th[BRANCHES_MAX];
    double *lat = calloc((size_t)BRANCHES * per, sizeof *lat);
    if (lat == NULL)
        die("latencies", "out of memory");
    pthread_barrier_init(&ready, NULL, (unsigned)BRANCHES + 1);
    for (int i = 0; i < BRANCHES; i++) {
        memset(&b[i], 0, sizeof b[i]);
        b[i].index = i;
        b[i].n = per;
        b[i].lat = lat + (size_t)i * per;
        pthread_create(&th[i], NULL, branch_run, &b[i]);
    }
    pthread_barrier_wait(&ready);
    double t0 = now();
    int failed = 0;
    for (int i = 0; i < BRANCHES; i++) {
        pthread_join(th[i], NULL);
        failed |= b[i].failed;
    }
    double secs = now() - t0;
    pthread_barrier_destroy(&ready);
    central_server_stop(sa.s);
    pthread_join(st, NULL);
    central_server_close(sa.s);
    central_ops_close(sa.ops);
    fclose(log);

    /* Every record counts exactly its confirmed reissues. */
    struct idb *db;
    if (idb_open(uri, false, &db, err, sizeof err) != IDB_OK)
        die("check", err);
    for (int i = 0; i < BRANCHES && !failed; i++) {
        for (unsigned r = 0; r < RECORDS_PER_BRANCH; r++) {
            char identity[16];
            snprintf(identity, sizeof identity, "B%02dR%u", i, r);
            struct idb_record rec;
            if (idb_record_by_identity(db, identity, &rec, err, sizeof err) != IDB_OK ||
                rec.issue_count != b[i].confirmed[r]) {
                fprintf(stderr, "bench_central: %s counts %u, %u confirmed\n", identity,
                        rec.issue_count, b[i].confirmed[r]);
                failed = 1;
            }
            idb_record_wipe(&rec);
        }
    }
    idb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_central: could not remove %s\n", dir);
    if (failed)
        return 1;
    size_t n = (size_t)BRANCHES * per;
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("central_%s_branches %d\n", tag, BRANCHES);
    printf("central_%s_reissues %zu\n", tag, n);
    printf("central_%s_reissues_per_s %.0f\n", tag, (double)n / secs);
    printf("central_%s_p50_ms %.2f\n", tag, lat[n / 2] * 1e3);
    printf("central_%s_p99_ms %.2f\n", tag, lat[(size_t)((double)n * 0.99)] * 1e3);
    free(lat);
    return 0;
}

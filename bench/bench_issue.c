/* Measures the issuance system (host/issuance) on the example card types:
 *   - reissue lookup latency in an issuance file of RECORDS records (default 1,000,000): the
 *     database part of a reissue from a card — correlation of the type readout's value, then
 *     the record and its items by identity — for random identities; p50, p99 and max;
 *   - the same lookup preceded by the identity readout from an in-process simulated card;
 *   - the issuance rate of a batch on in-process simulated cards (sim: NVM files, fresh
 *     blank cards), whole `issue_card` runs with the issuance file updated per card.
 * Usage: bench_issue [RECORDS [BATCH]]. Prints "key value" lines for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card_ops.h"
#include "idb.h"
#include "issue.h"
#include "secrets.h"
#include "transport.h"
#include "typefile.h"

#define LOOKUPS 20000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_issue: %s: %s\n", what, err);
    exit(1);
}

static void identity_of(unsigned long i, char *out, size_t cap)
{
    snprintf(out, cap, "%016lu", 7000000000000000ul + i);
}

static void fill(struct idb *db, unsigned long n)
{
    char err[512];
    struct idb_record r;
    if (idb_begin(db, err, sizeof err) != IDB_OK)
        die("begin", err);
    for (unsigned long i = 0; i < n; i++) {
        memset(&r, 0, sizeof r);
        identity_of(i, r.identity, sizeof r.identity);
        snprintf(r.card_type, sizeof r.card_type, "%s", i % 2 ? "ICDUP-DI" : "ICDUP-1");
        static const char *const names[] = { "holder", "address", "member", "expiry",
                                             "password" };
        const char *values[] = { "Grace Hopper", "1 Navy Yard, Arlington", r.identity,
                                 "2030-06-30", "135790" };
        for (size_t k = 0; k < 5; k++) {
            snprintf(r.items[k].name, sizeof r.items[k].name, "%s", names[k]);
            snprintf(r.items[k].value, sizeof r.items[k].value, "%s", values[k]);
        }
        r.nitems = 5;
        if (idb_record_insert(db, &r, err, sizeof err) != IDB_OK)
            die("insert", err);
    }
    if (idb_commit(db, err, sizeof err) != IDB_OK)
        die("commit", err);
}

static void report(const char *key, double *lat, size_t n)
{
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("%s_p50_us %.1f\n", key, lat[n / 2] * 1e6);
    printf("%s_p99_us %.1f\n", key, lat[(n * 99) / 100] * 1e6);
    printf("%s_max_us %.1f\n", key, lat[n - 1] * 1e6);
}

static struct transport *open_card(const char *dir, const char *name, struct cardop *c)
{
    char uri[300], err[256];
    struct transport *t = NULL;
    snprintf(uri, sizeof uri, "sim:%s/%s.nvm", dir, name);
    if (transport_open(uri, &t, err, sizeof err) != 0)
        die(uri, err);
    cardop_init(c, t, name);
    return t;
}

int main(int argc, char **argv)
{
    unsigned long records = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000ul;
    unsigned batch = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 200u;
    if (records < 1000 || batch < 1) {
        fprintf(stderr, "usage: bench_issue [RECORDS >= 1000 [BATCH >= 1]]\n");
        return 2;
    }
    char dir[] = "/tmp/bench_issue.XXXXXX", path[256], err[512];
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", "failed");
    snprintf(path, sizeof path, "%s/issuance.db", dir);
    struct idb *db;
    struct ct_file *f = calloc(1, sizeof *f);
    if (f == NULL || idb_open(path, true, &db, err, sizeof err) != IDB_OK ||
        typefile_load("examples/types.json", f, err, sizeof err) != 0 ||
        idb_types_store(db, f, err, sizeof err) != IDB_OK)
        die("setup", err);
    free(f);

    double t0 = now();
    fill(db, records);
    printf("issue_records %lu\n", records);
    printf("issue_fill_s %.1f\n", now() - t0);

    /* database part of a reissue lookup */
    double *lat = calloc(LOOKUPS, sizeof *lat);
    struct idb_record r;
    char type[CT_NAME_MAX + 1], idro[CT_NAME_MAX + 1], id[32];
    srand(12345);
    for (size_t i = 0; i < LOOKUPS; i++) {
        unsigned long k = ((unsigned long)rand() * 65536ul + (unsigned long)rand()) % records;
        identity_of(k, id, sizeof id);
        const char *tv = k % 2 ? "ICDUP-DI" : "ICDUP-1";
        double a = now();
        if (idb_correlate(db, "get-data-df02", (const uint8_t *)tv, strlen(tv), type, idro,
                          err, sizeof err) != IDB_OK ||
            idb_record_by_identity(db, id, &r, err, sizeof err) != IDB_OK)
            die("lookup", err);
        lat[i] = now() - a;
        if (strcmp(r.identity, id) != 0 || r.nitems != 5)
            die("lookup", "wrong record");
    }
    report("reissue_lookup", lat, LOOKUPS);

    /* batch issuance on fresh in-process cards, then identity readout + lookup from them */
    struct secrets issuer;
    secrets_init(&issuer);
    memcpy(issuer.puk.v, "12345678", 8);
    issuer.puk.len = 8;
    memcpy(issuer.admin.v, "87654321", 8);
    issuer.admin.len = 8;
    unsigned long apdus = 0;
    t0 = now();
    for (unsigned i = 0; i < batch; i++) {
        struct cardop c;
        char name[32];
        snprintf(name, sizeof name, "card-%u", i);
        struct transport *t = open_card(dir, name, &c);
        identity_of(i, id, sizeof id);
        struct issue_params p = { .db = db, .identity = id, .role = CT_ORIGINAL,
                                  .issuer = &issuer, .operator_name = "bench" };
        struct issue_result res;
        if (issue_card(&p, &c, &res, err, sizeof err) != 0)
            die("issue", err);
        apdus += c.apdus;
        transport_close(t);
    }
    double el = now() - t0;
    printf("issue_batch_cards %u\n", batch);
    printf("issue_batch_cards_per_s %.1f\n", batch / el);
    printf("issue_apdus_per_card %.0f\n", (double)apdus / batch);

    size_t n = batch < LOOKUPS ? batch : LOOKUPS;
    for (size_t i = 0; i < n; i++) {
        struct cardop c;
        char name[32];
        snprintf(name, sizeof name, "card-%zu", i);
        struct transport *t = open_card(dir, name, &c);
        double a = now();
        if (issue_read_identity(db, &c, id, sizeof id, type, err, sizeof err) != 0 ||
            idb_record_by_identity(db, id, &r, err, sizeof err) != IDB_OK)
            die("readout", err);
        lat[i] = now() - a;
        transport_close(t);
    }
    report("reissue_readout_lookup", lat, n);
    free(lat);
    idb_record_wipe(&r);
    idb_close(db);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

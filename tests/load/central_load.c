/* central_load — many branches reissuing at once through a running central issuance server,
 * for the test that kills the server mid-load (tests/e2e/central_load.sh).
 *
 *   central_load HOST:PORT CERT-DIR BRANCHES REISSUES RECORDS [SHARED]
 *
 * Branch b (0 .. BRANCHES-1) is a thread with a client of its own: CERT-DIR/ca.crt and the
 * branch certificate CERT-DIR/bNN.crt with its key bNN.key (icissue cert branch --name bNN).
 * It makes up to REISSUES reissues, by turns of a record of its own (LNN-R, R < RECORDS) and
 * of one of SHARED records that every branch reissues (S-R, picked at random, so that branches
 * meet on them): claim; "conflict" (another branch holds the record) skips it; else confirm
 * with a new card serial. The client rides over a dropped link and a restarting server: it
 * reconnects and sends the same request, with the same request_id, again (up to 40 times, the
 * pause from 50 ms doubled up to 5 s), so the server answers a request that it applied before
 * it died from that first result. SIGTERM or SIGINT ends the run early: each branch finishes
 * the reissue under way and stops (so a test can keep the load going for as long as it needs,
 * however fast the machine, and no claim is left open).
 *
 * Prints "IDENTITY CONFIRMED" for every record (own ones, then shared ones): the confirms
 * answered "ok", which the issuance file must count exactly. A summary goes to stderr. Exit
 * status: 0; 1 when a call failed for good or was answered otherwise than ok or conflict
 * (claim) or ok (confirm) — the counts are printed all the same; 2 usage. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

#define LOAD_BRANCHES_MAX 99u   /* bNN */
#define LOAD_COUNT_MAX 10000u   /* reissues per branch, records */
#define LOAD_ATTEMPTS 40u
#define LOAD_BACKOFF_MS 50u
#define LOAD_IDENTITY_MAX 32u

struct load {
    char host[256], port[16];
    const char *dir;
    unsigned branches, reissues, records, shared;
};

static atomic_bool stopping; /* SIGTERM or SIGINT came */

struct branch {
    const struct load *load;
    unsigned index;
    unsigned *confirmed;   /* per identity: own ones of every branch, then the shared ones */
    unsigned claims, conflicts;
    long long slowest_ms;  /* the longest call: a restart it waited through */
    bool failed;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The identity of record number i: the own records of every branch, then the shared ones. */
static void identity_of(const struct load *l, unsigned i, char out[LOAD_IDENTITY_MAX])
{
    if (i < l->branches * l->records)
        snprintf(out, LOAD_IDENTITY_MAX, "L%02u-%u", i / l->records, i % l->records);
    else
        snprintf(out, LOAD_IDENTITY_MAX, "S-%u", i - l->branches * l->records);
}

static const char *status_of(const json_t *resp)
{
    const char *s = json_string_value(json_object_get(resp, "status"));
    return s != NULL ? s : "?";
}

/* One call; its time counts towards b->slowest_ms. Returns 0 with *resp, or -1 (b->failed,
 * reported). req is the caller's. */
static int call(struct branch *b, struct central_client *c, json_t *req, json_t **resp)
{
    char err[1024];
    long long t0 = now_ms();
    int rc = central_call(c, req, resp, err, sizeof err);
    long long ms = now_ms() - t0;
    if (ms > b->slowest_ms)
        b->slowest_ms = ms;
    if (rc == CENTRAL_CALL_OK)
        return 0;
    fprintf(stderr, "central_load: b%02u: %s %s: %s\n", b->index,
            json_string_value(json_object_get(req, "op")),
            json_string_value(json_object_get(req, "request_id")), err);
    b->failed = true;
    return -1;
}

/* One reissue of record number rec: claim, then (unless another branch holds it) confirm
 * with the card serial NN (branch) and seq. Returns 0, or -1 (b->failed). */
static int reissue(struct branch *b, struct central_client *c, unsigned rec, unsigned seq)
{
    char identity[LOAD_IDENTITY_MAX], serial[17];
    identity_of(b->load, rec, identity);
    snprintf(serial, sizeof serial, "%02X%014X", b->index, seq);
    /* no request_id: central_call makes a new one for each request and keeps it for resends */
    json_t *req = json_pack("{s:s, s:s}", "op", "claim", "identity", identity), *resp = NULL;
    if (req == NULL || call(b, c, req, &resp) != 0) {
        json_decref(req);
        b->failed = true;
        return -1;
    }
    json_decref(req);
    b->claims++;
    const char *st = status_of(resp);
    if (strcmp(st, "conflict") == 0) {
        b->conflicts++;
        json_decref(resp);
        return 0;
    }
    json_t *token = json_object_get(json_object_get(resp, "claim"), "token");
    if (strcmp(st, "ok") != 0 || !json_is_string(token)) {
        fprintf(stderr, "central_load: b%02u: claim of %s answered %s: %s\n", b->index,
                identity, st, json_string_value(json_object_get(resp, "message")));
        json_decref(resp);
        b->failed = true;
        return -1;
    }
    req = json_pack("{s:s, s:O, s:s}", "op", "confirm", "token", token, "serial", serial);
    json_decref(resp);
    resp = NULL;
    if (req == NULL || call(b, c, req, &resp) != 0) {
        json_decref(req);
        b->failed = true;
        return -1;
    }
    json_decref(req);
    if (strcmp(status_of(resp), "ok") != 0) {
        fprintf(stderr, "central_load: b%02u: confirm of %s answered %s: %s\n", b->index,
                identity, status_of(resp), json_string_value(json_object_get(resp, "message")));
        b->failed = true;
    } else {
        b->confirmed[rec]++;
    }
    json_decref(resp);
    return b->failed ? -1 : 0;
}

static void *branch_run(void *arg)
{
    struct branch *b = arg;
    const struct load *l = b->load;
    char crt[4096], key[4096], ca[4096], err[1024];
    snprintf(crt, sizeof crt, "%s/b%02u.crt", l->dir, b->index);
    snprintf(key, sizeof key, "%s/b%02u.key", l->dir, b->index);
    snprintf(ca, sizeof ca, "%s/ca.crt", l->dir);
    struct central_client_config cfg = { .host = l->host, .port = l->port, .ca_cert = ca,
                                         .cert = crt, .key = key, .attempts = LOAD_ATTEMPTS,
                                         .backoff_ms = LOAD_BACKOFF_MS };
    struct central_client *c = NULL;
    if (central_client_open(&cfg, &c, err, sizeof err) != 0) {
        fprintf(stderr, "central_load: b%02u: %s\n", b->index, err);
        b->failed = true;
        return NULL;
    }
    uint32_t rnd = 2654435761u * (b->index + 1); /* a fixed sequence per branch */
    for (unsigned i = 0; i < l->reissues && !b->failed && !atomic_load(&stopping); i++) {
        unsigned rec;
        if (i % 2 == 0 || l->shared == 0) {
            rec = b->index * l->records + (i / 2) % l->records;
        } else {
            rnd = rnd * 1664525u + 1013904223u;
            rec = l->branches * l->records + (rnd >> 16) % l->shared;
        }
        (void)reissue(b, c, rec, i);
    }
    central_client_close(c);
    return NULL;
}

/* Takes SIGTERM and SIGINT (blocked in every other thread) and tells the branches to stop. */
static void *signal_run(void *arg)
{
    int sig = 0;
    if (sigwait(arg, &sig) == 0)
        atomic_store(&stopping, true);
    return NULL;
}

/* A count of 1..max from text. */
static int parse_count(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || v < 1 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct load l = { .shared = 0 };
    const char *colon = argc > 1 ? strrchr(argv[1], ':') : NULL;
    if (argc < 6 || argc > 7 || colon == NULL || colon == argv[1] ||
        (size_t)(colon - argv[1]) >= sizeof l.host || strlen(colon + 1) >= sizeof l.port ||
        parse_count(argv[3], LOAD_BRANCHES_MAX, &l.branches) != 0 ||
        parse_count(argv[4], LOAD_COUNT_MAX, &l.reissues) != 0 ||
        parse_count(argv[5], LOAD_COUNT_MAX, &l.records) != 0 ||
        (argc == 7 && parse_count(argv[6], LOAD_COUNT_MAX, &l.shared) != 0)) {
        fprintf(stderr, "usage: central_load HOST:PORT CERT-DIR BRANCHES REISSUES RECORDS "
                        "[SHARED]\n");
        return 2;
    }
    memcpy(l.host, argv[1], (size_t)(colon - argv[1]));
    snprintf(l.port, sizeof l.port, "%s", colon + 1);
    l.dir = argv[2];
    if (argc == 6)
        l.shared = l.records;
    unsigned nrec = l.branches * l.records + l.shared;
    struct branch *b = calloc(l.branches, sizeof *b);
    pthread_t *th = calloc(l.branches, sizeof *th);
    unsigned *counts = calloc((size_t)l.branches * nrec, sizeof *counts);
    if (b == NULL || th == NULL || counts == NULL) {
        fprintf(stderr, "central_load: out of memory\n");
        return 1;
    }
    /* blocked before the branches start, so that they inherit it and sigwait gets them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_t sig_thread;
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        pthread_create(&sig_thread, NULL, signal_run, &sigs) != 0) {
        fprintf(stderr, "central_load: cannot start the signal thread\n");
        return 1;
    }
    bool failed = false;
    unsigned started = 0;
    for (unsigned i = 0; i < l.branches; i++) {
        b[i] = (struct branch){ .load = &l, .index = i, .confirmed = counts + (size_t)i * nrec };
        if (pthread_create(&th[i], NULL, branch_run, &b[i]) != 0) {
            fprintf(stderr, "central_load: cannot start a thread\n");
            failed = true;
            break;
        }
        started++;
    }
    unsigned claims = 0, conflicts = 0, confirmed = 0;
    long long slowest = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        failed |= b[i].failed;
        claims += b[i].claims;
        conflicts += b[i].conflicts;
        if (b[i].slowest_ms > slowest)
            slowest = b[i].slowest_ms;
    }
    bool stopped = atomic_load(&stopping);
    pthread_kill(sig_thread, SIGTERM); /* ends its sigwait when no signal came */
    pthread_join(sig_thread, NULL);
    for (unsigned r = 0; r < nrec; r++) {
        unsigned n = 0;
        for (unsigned i = 0; i < l.branches; i++)
            n += b[i].confirmed[r];
        char identity[LOAD_IDENTITY_MAX];
        identity_of(&l, r, identity);
        printf("%s %u\n", identity, n);
        confirmed += n;
    }
    fprintf(stderr, "central_load: %u branches, %u claims: %u confirmed, %u conflicts; "
                    "slowest call %lld ms%s%s\n", started, claims, confirmed, conflicts, slowest,
            stopped ? "; stopped by a signal" : "", failed ? "; FAILED" : "");
    free(counts);
    free(th);
    free(b);
    return failed ? 1 : 0;
}

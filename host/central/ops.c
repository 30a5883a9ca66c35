/* See ops.h. */
#include "ops.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "idb.h"
#include "proto.h"
#include "record_json.h"

struct central_ops {
    char uri[1024];
    unsigned lease;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct idb **idle;   /* open connections nobody uses */
    size_t nidle;
    size_t open;         /* connections open in all */
    size_t max;
};

int central_ops_open(const char *db_uri, unsigned pool, unsigned lease_seconds,
                     struct central_ops **out, char *err, size_t errlen)
{
    *out = NULL;
    if (pool == 0 || lease_seconds == 0 || lease_seconds > CENTRAL_LEASE_MAX ||
        strlen(db_uri) >= sizeof ((struct central_ops *)0)->uri) {
        snprintf(err, errlen, "bad pool size, lease or database URI");
        return -1;
    }
    struct central_ops *o = calloc(1, sizeof *o);
    if (o == NULL || (o->idle = calloc(pool, sizeof *o->idle)) == NULL) {
        free(o);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(o->uri, db_uri, strlen(db_uri) + 1);
    o->lease = lease_seconds;
    o->max = pool;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->freed, NULL);
    if (idb_open(db_uri, false, &o->idle[0], err, errlen) != IDB_OK) {
        central_ops_close(o);
        return -1;
    }
    o->nidle = o->open = 1;
    *out = o;
    return 0;
}

void central_ops_close(struct central_ops *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->nidle; i++)
        idb_close(o->idle[i]);
    pthread_cond_destroy(&o->freed);
    pthread_mutex_destroy(&o->lock);
    free(o->idle);
    free(o);
}

/* Borrows a connection: an idle one, a new one while under the maximum, else waits. NULL (with
 * err) when a new connection cannot be opened. */
static struct idb *ops_get(struct central_ops *o, char *err, size_t errlen)
{
    pthread_mutex_lock(&o->lock);
    while (o->nidle == 0 && o->open >= o->max)
        pthread_cond_wait(&o->freed, &o->lock);
    if (o->nidle > 0) {
        struct idb *db = o->idle[--o->nidle];
        pthread_mutex_unlock(&o->lock);
        return db;
    }
    o->open++;
    pthread_mutex_unlock(&o->lock);
    struct idb *db = NULL;
    if (idb_open(o->uri, false, &db, err, errlen) != IDB_OK) {
        pthread_mutex_lock(&o->lock);
        o->open--;
        pthread_cond_signal(&o->freed);
        pthread_mutex_unlock(&o->lock);
        return NULL;
    }
    return db;
}

/* Returns a connection; one that failed (broken) is closed instead, so the next borrower opens
 * a fresh one (a restarted database server). */
static void ops_put(struct central_ops *o, struct idb *db, bool broken)
{
    if (broken)
        idb_close(db);
    pthread_mutex_lock(&o->lock);
    if (broken)
        o->open--;
    else
        o->idle[o->nidle++] = db;
    pthread_cond_signal(&o->freed);
    pthread_mutex_unlock(&o->lock);
}

/* The answer to a request the issuance file failed (rc of idb.h, message err): a refusal
 * says why; a database failure says only that (the database's address and message go to the
 * server's log: server.h). */
static json_t *ops_failed(int rc, const char *err);

static enum central_status ops_status(int idb_rc)
{
    switch (idb_rc) {
    case IDB_OK: return CENTRAL_OK;
    case IDB_E_NOTFOUND: return CENTRAL_NOT_FOUND;
    case IDB_E_CONFLICT: return CENTRAL_CONFLICT;
    case IDB_E_INVALID: return CENTRAL_BAD_REQUEST;
    default: return CENTRAL_UNAVAILABLE;
    }
}

static json_t *ops_failed(int rc, const char *err)
{
    enum central_status st = ops_status(rc);
    if (st != CENTRAL_UNAVAILABLE)
        return central_response_new(st, "%s", err);
    json_t *resp = central_response_new(st, "the issuance database is unavailable; the request "
                                        "was not applied: send it again later");
    if (resp != NULL && json_object_set_new(resp, "log", json_string(err)) != 0) {
        json_decref(resp);
        resp = NULL;
    }
    return resp;
}

/* A string field of the request: required unless optional (then NULL when absent). */
static int ops_field(const json_t *req, const char *name, bool optional, size_t max,
                     const char **out, json_t **resp)
{
    json_t *v = json_object_get(req, name);
    *out = json_string_value(v);
    if ((v == NULL && optional) ||
        (*out != NULL && (*out)[0] != '\0' && strlen(*out) <= max))
        return 0;
    *resp = central_response_new(CENTRAL_BAD_REQUEST, "field \"%s\" is missing or not a "
                                 "string of 1..%zu characters", name, max);
    return -1;
}

static json_t *ops_lookup(struct central_ops *o, struct idb *db, const char *branch,
                          const char *id, const json_t *req, int *rc)
{
    (void)o;
    (void)branch;
    (void)id;
    const char *identity;
    json_t *resp = NULL;
    if (ops_field(req, "identity", false, IDB_IDENTITY_MAX, &identity, &resp) != 0)
        return resp;
    struct idb_record r;
    char err[512];
    *rc = idb_record_by_identity(db, identity, &r, err, sizeof err);
    if (*rc != IDB_OK)
        return ops_failed(*rc, err);
    resp = central_response_new(CENTRAL_OK, "record %s", r.identity);
    if (resp != NULL && json_object_set_new(resp, "record", record_to_json(&r, false)) != 0) {
        json_decref(resp);
        resp = NULL;
    }
    idb_record_wipe(&r);
    return resp;
}

static json_t *ops_claim(struct central_ops *o, struct idb *db, const char *branch,
                         const char *id, const json_t *req, int *rc)
{
    const char *identity;
    json_t *resp = NULL;
    if (ops_field(req, "identity", false, IDB_IDENTITY_MAX, &identity, &resp) != 0)
        return resp;
    unsigned lease = o->lease;
    json_t *l = json_object_get(req, "lease_seconds");
    if (l != NULL) {
        if (!json_is_integer(l) || json_integer_value(l) < 1 ||
            json_integer_value(l) > CENTRAL_LEASE_MAX)
            return central_response_new(CENTRAL_BAD_REQUEST, "field \"lease_seconds\" is not "
                                        "1..%u", CENTRAL_LEASE_MAX);
        lease = (unsigned)json_integer_value(l);
    }
    struct idb_claim c;
    struct idb_record r;
    char err[512];
    *rc = idb_claim(db, identity, branch, id, lease, &c, &r, err, sizeof err);
    if (*rc != IDB_OK)
        return ops_failed(*rc, err);
    resp = central_response_new(CENTRAL_OK, "record %s claimed for branch %s until %lld",
                                r.identity, branch, (long long)c.expires_at);
    json_t *claim = json_pack("{s:s, s:I, s:I}", "token", c.token, "issue_number",
                              (json_int_t)c.issue_number, "expires_at", (json_int_t)c.expires_at);
    if (resp == NULL || claim == NULL || json_object_set_new(resp, "claim", claim) != 0 ||
        json_object_set_new(resp, "record", record_to_json(&r, true)) != 0) {
        json_decref(resp);
        resp = NULL;
    }
    idb_record_wipe(&r);
    return resp;
}

static json_t *ops_confirm(struct central_ops *o, struct idb *db, const char *branch,
                           const char *id, const json_t *req, int *rc)
{
    (void)o;
    const char *token, *serial_hex, *card_type, *design;
    json_t *resp = NULL;
    if (ops_field(req, "token", false, 64, &token, &resp) != 0 ||
        ops_field(req, "serial", false, 2 * IDB_SERIAL_LEN, &serial_hex, &resp) != 0 ||
        ops_field(req, "card_type", true, CT_NAME_MAX, &card_type, &resp) != 0)
        return resp;
    /* design: optional, "" for the card type's own */
    json_t *d = json_object_get(req, "design");
    design = json_string_value(d);
    if (d != NULL && (design == NULL || strlen(design) > CT_NAME_MAX))
        return central_response_new(CENTRAL_BAD_REQUEST, "field \"design\" is not a string of "
                                    "0..%u characters", CT_NAME_MAX);
    uint8_t serial[IDB_SERIAL_LEN];
    size_t n = 0;
    char herr[128];
    if (hex_decode(serial_hex, serial, sizeof serial, &n, herr, sizeof herr) != 0 ||
        n != sizeof serial)
        return central_response_new(CENTRAL_BAD_REQUEST, "field \"serial\" is not %u bytes "
                                    "of hex", IDB_SERIAL_LEN);
    struct idb_claim c;
    char err[512];
    *rc = idb_confirm_card(db, token, branch, id, serial, card_type, design, &c, err,
                           sizeof err);
    if (*rc != IDB_OK)
        return ops_failed(*rc, err);
    resp = central_response_new(CENTRAL_OK, "issuance count %u", c.issue_number);
    if (resp != NULL &&
        json_object_set_new(resp, "issue_count", json_integer(c.issue_number)) != 0) {
        json_decref(resp);
        resp = NULL;
    }
    return resp;
}

static json_t *ops_abort(struct central_ops *o, struct idb *db, const char *branch,
                         const char *id, const json_t *req, int *rc)
{
    (void)o;
    const char *token, *reason;
    json_t *resp = NULL;
    if (ops_field(req, "token", false, 64, &token, &resp) != 0 ||
        ops_field(req, "reason", true, 400, &reason, &resp) != 0)
        return resp;
    char err[512];
    *rc = idb_abort(db, token, branch, id, reason != NULL ? reason : "aborted by the branch",
                    err, sizeof err);
    if (*rc != IDB_OK)
        return ops_failed(*rc, err);
    return central_response_new(CENTRAL_OK, "claim released");
}

int central_ops_handle(void *ctx, const char *branch, const json_t *request,
                       json_t **response)
{
    struct central_ops *o = ctx;
    const char *op = json_string_value(json_object_get(request, "op"));
    const char *id = central_request_id(request);
    char err[512];
    *response = NULL;
    if (op == NULL || id == NULL) {
        *response = central_response_new(CENTRAL_BAD_REQUEST, "no op or request_id");
        return *response != NULL ? 0 : -1;
    }
    static const struct {
        const char *name;
        json_t *(*fn)(struct central_ops *o, struct idb *db, const char *branch,
                      const char *id, const json_t *req, int *rc);
    } table[] = {
        { "lookup", ops_lookup },
        { "claim", ops_claim },
        { "confirm", ops_confirm },
        { "abort", ops_abort },
    };
    size_t i = 0;
    while (i < sizeof table / sizeof table[0] && strcmp(table[i].name, op) != 0)
        i++;
    if (i == sizeof table / sizeof table[0]) {
        *response = central_response_new(CENTRAL_BAD_REQUEST, "unknown op \"%s\"", op);
        return *response != NULL ? 0 : -1;
    }
    struct idb *db = ops_get(o, err, sizeof err);
    if (db == NULL) {
        *response = ops_failed(IDB_E_DB, err);
        return *response != NULL ? 0 : -1;
    }
    int rc = IDB_OK;
    *response = table[i].fn(o, db, branch, id, request, &rc);
    ops_put(o, db, rc == IDB_E_DB);
    return *response != NULL ? 0 : -1;
}

int central_ops_expire(struct central_ops *o, char *err, size_t errlen)
{
    struct idb *db = ops_get(o, err, errlen);
    if (db == NULL)
        return -1;
    unsigned released = 0;
    int rc = idb_claims_expire(db, &released, err, errlen);
    ops_put(o, db, rc == IDB_E_DB);
    return rc == IDB_OK ? (int)released : -1;
}

/* The operations of the central issuance system (icissue serve; docs/central.md,
 * "Operations"): lookup, claim, confirm and abort on the issuance file, for the branch named by
 * the client certificate. Called by the TLS server (server.h) from many threads at once: each
 * call borrows one of a pool of database connections (struct idb is not shared across threads).
 *
 *   lookup  {"identity"}                      -> {"record" without items}
 *   claim   {"identity", "lease_seconds"?}    -> {"claim": {"token", "issue_number",
 *                                                 "expires_at"}, "record" with items}
 *   confirm {"token", "serial", "card_type"?, "design"?} -> {"issue_count"}
 *   abort   {"token", "reason"?}              -> {}
 *
 * claim, confirm and abort are idempotent by (branch, request_id): the database keeps their
 * first answer, so a request retried after a dropped link is answered the same and applied once.
 * Status: not_found (no record), conflict (claimed elsewhere, lease gone, wrong branch),
 * bad_request (fields), unavailable (the database cannot be reached; retry), internal. */
#ifndef CENTRAL_OPS_H
#define CENTRAL_OPS_H

#include <stddef.h>

#include <jansson.h>

#define CENTRAL_LEASE_DEFAULT 300u  /* seconds a claim stays reserved for its branch */
#define CENTRAL_LEASE_MAX 3600u

struct central_ops;

/* Opens the pool on the issuance file db_uri (a path or postgresql://...; up to pool
 * connections, opened on demand, the first one at once so a bad URI fails here). Returns 0, or
 * -1 with a message. */
int central_ops_open(const char *db_uri, unsigned pool, unsigned lease_seconds,
                     struct central_ops **out, char *err, size_t errlen);
void central_ops_close(struct central_ops *ops);

/* The server's handler (ctx: the struct central_ops). Returns 0 with *response set (the server
 * adds request_id), or -1 when out of memory. */
int central_ops_handle(void *ctx, const char *branch, const json_t *request,
                       json_t **response);

/* Releases the claims whose lease has passed (the server calls it every second). Returns the
 * number released, or -1 with a message. */
int central_ops_expire(struct central_ops *ops, char *err, size_t errlen);

#endif

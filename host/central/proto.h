/* The central issuance protocol's framing and envelope (docs/central.md "Protocol"): a frame is
 * a 4-byte big-endian length and that many bytes of payload (at most CENTRAL_FRAME_MAX), the
 * payload one JSON object. A request has "op" and "request_id", a response "request_id",
 * "status" and "message"; the fields of each op are the handler's business, not this module's.
 *
 * The byte stream under the frames is a struct central_io (the TLS connection of tls.h, or a
 * memory buffer in the tests), so this module does no I/O of its own. */
#ifndef CENTRAL_PROTO_H
#define CENTRAL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CENTRAL_FRAME_MAX 65536u      /* largest payload of a frame, in bytes */
#define CENTRAL_FRAME_HEADER 4u       /* the big-endian length before it */
#define CENTRAL_REQUEST_ID_MAX 64u    /* characters of a request_id */
#define CENTRAL_REQUEST_ID_NEW 32u    /* characters of an id made by central_request_id_new */
#define CENTRAL_OP_MAX 32u            /* characters of an op name */

/* A read or write of the stream: 0, or one of these. */
enum central_io_err {
    CENTRAL_IO_OK = 0,
    CENTRAL_IO_EOF = -1,     /* the peer closed the stream */
    CENTRAL_IO_TIMEOUT = -2, /* nothing (or not enough) arrived in time */
    CENTRAL_IO_FAIL = -3,    /* any other failure: reset, TLS alert, stopped server */
};

/* The byte stream: read fills exactly len bytes, write sends all len bytes; both return 0 or a
 * negative central_io_err. */
struct central_io {
    int (*read)(void *ctx, uint8_t *buf, size_t len);
    int (*write)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
};

/* What central_frame_read and central_frame_write return. */
enum central_frame_err {
    CENTRAL_FRAME_OK = 0,
    CENTRAL_FRAME_CLOSED = -1,   /* the stream ended (or timed out) between two frames */
    CENTRAL_FRAME_IO = -2,       /* the stream failed, or ended in the middle of a frame */
    CENTRAL_FRAME_TOO_BIG = -3,  /* a length above CENTRAL_FRAME_MAX: the stream is unusable */
    CENTRAL_FRAME_BAD_JSON = -4, /* a whole frame whose payload is not one JSON object */
    CENTRAL_FRAME_NOMEM = -5,
};

/* Reads one frame and decodes its payload. Returns CENTRAL_FRAME_OK with *obj a new JSON
 * object (the caller owns it), or an error with *obj NULL and a message in err that never
 * quotes the payload. After CENTRAL_FRAME_BAD_JSON the stream is still in step; after any other
 * error it is not. *io_err gets the central_io_err of a failed read (may be NULL). */
int central_frame_read(const struct central_io *io, json_t **obj, int *io_err, char *err,
                       size_t errlen);

/* Encodes obj (compact) into one frame and writes it with one write. Returns CENTRAL_FRAME_OK,
 * CENTRAL_FRAME_TOO_BIG (nothing written), CENTRAL_FRAME_NOMEM or CENTRAL_FRAME_IO, with a
 * message in err. */
int central_frame_write(const struct central_io *io, const json_t *obj, char *err,
                        size_t errlen);

/* ---- envelope ------------------------------------------------------------------------- */

/* The status codes of a response, as the strings of the wire. */
enum central_status {
    CENTRAL_OK,          /* "ok" */
    CENTRAL_NOT_FOUND,   /* "not_found": no such record */
    CENTRAL_CONFLICT,    /* "conflict": the record is claimed by another branch, or changed */
    CENTRAL_BAD_REQUEST, /* "bad_request": malformed frame, envelope or fields */
    CENTRAL_UNAVAILABLE, /* "unavailable": try again later (database busy, server stopping) */
    CENTRAL_INTERNAL,    /* "internal": the server failed; details in its log only */
    CENTRAL_STATUS_COUNT
};

/* The wire string of s ("internal" for a value out of range). */
const char *central_status_name(enum central_status s);

/* The status of a wire string. Returns 0, or -1 for a string that names none. */
int central_status_parse(const char *s, enum central_status *out);

/* True when id is 1..CENTRAL_REQUEST_ID_MAX characters of [0-9A-Za-z_-]. */
bool central_request_id_valid(const char *id);

/* A fresh request_id: CENTRAL_REQUEST_ID_NEW lower-case hex digits of 16 bytes of f_rng.
 * Returns 0, or -1 when f_rng fails. */
int central_request_id_new(int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
                           char out[CENTRAL_REQUEST_ID_NEW + 1]);

/* Checks the envelope of a request: an object whose "op" is 1..CENTRAL_OP_MAX characters of
 * [a-z_] and whose "request_id" is valid. Returns 0, or -1 with the reason in err (for a
 * "bad_request" answer; it names the field, never quotes a value other than a valid id). */
int central_request_check(const json_t *req, char *err, size_t errlen);

/* The request_id of a request, if it is a valid one; else NULL. */
const char *central_request_id(const json_t *req);

/* A new response {"status": s, "message": printf(fmt, ...)}; the handler adds its fields.
 * NULL when out of memory. */
json_t *central_response_new(enum central_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Completes a response before it is sent: sets "request_id" to id (JSON null when id is NULL),
 * "message" to "" when absent. Returns 0, or -1 with a message in err when resp is not an object
 * whose "status" is a known status string and whose "message" (if present) is a string. */
int central_response_finish(json_t *resp, const char *id, char *err, size_t errlen);

/* Checks a response received for the request id: an object with "request_id" equal to id, a
 * known "status" (into *status) and a string "message". Returns 0, or -1 with the reason in
 * err. */
int central_response_check(const json_t *resp, const char *id, enum central_status *status,
                           char *err, size_t errlen);

#endif

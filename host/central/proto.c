/* Framing and envelope of the central protocol (proto.h, docs/central.md "Protocol"). */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[CENTRAL_STATUS_COUNT] = {
    [CENTRAL_OK] = "ok",
    [CENTRAL_NOT_FOUND] = "not_found",
    [CENTRAL_CONFLICT] = "conflict",
    [CENTRAL_BAD_REQUEST] = "bad_request",
    [CENTRAL_UNAVAILABLE] = "unavailable",
    [CENTRAL_INTERNAL] = "internal",
};

/* ---- frames ------------------------------------------------------------------------------ */

int central_frame_read(const struct central_io *io, json_t **obj, int *io_err, char *err,
                       size_t errlen)
{
    *obj = NULL;
    if (io_err != NULL)
        *io_err = CENTRAL_IO_OK;
    uint8_t hdr[CENTRAL_FRAME_HEADER];
    int rc = io->read(io->ctx, hdr, 1);
    if (rc == 0)
        rc = io->read(io->ctx, hdr + 1, sizeof hdr - 1);
    else if (rc == CENTRAL_IO_EOF || rc == CENTRAL_IO_TIMEOUT) {
        if (io_err != NULL)
            *io_err = rc;
        snprintf(err, errlen, rc == CENTRAL_IO_EOF ? "the peer closed the connection"
                                                   : "no request within the idle timeout");
        return CENTRAL_FRAME_CLOSED;
    }
    if (rc != 0) {
        if (io_err != NULL)
            *io_err = rc;
        snprintf(err, errlen, "%s while reading a frame header",
                 rc == CENTRAL_IO_TIMEOUT ? "timeout" : "connection lost");
        return CENTRAL_FRAME_IO;
    }
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
                   hdr[3];
    if (len > CENTRAL_FRAME_MAX) {
        snprintf(err, errlen, "a frame of %lu bytes, more than the %u allowed",
                 (unsigned long)len, CENTRAL_FRAME_MAX);
        return CENTRAL_FRAME_TOO_BIG;
    }
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return CENTRAL_FRAME_NOMEM;
    }
    rc = len > 0 ? io->read(io->ctx, buf, len) : 0;
    if (rc != 0) {
        if (io_err != NULL)
            *io_err = rc;
        snprintf(err, errlen, "%s in the middle of a %lu-byte frame",
                 rc == CENTRAL_IO_TIMEOUT ? "timeout" : "connection lost", (unsigned long)len);
        free(buf);
        return CENTRAL_FRAME_IO;
    }
    json_error_t je;
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (v == NULL) {
        /* je.text can quote the payload: only the position is reported. */
        snprintf(err, errlen, "the frame is not valid JSON (line %d, column %d)", je.line,
                 je.column);
        return CENTRAL_FRAME_BAD_JSON;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(err, errlen, "the frame is JSON but not an object");
        return CENTRAL_FRAME_BAD_JSON;
    }
    *obj = v;
    return CENTRAL_FRAME_OK;
}

int central_frame_write(const struct central_io *io, const json_t *obj, char *err,
                        size_t errlen)
{
    size_t need = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (need == 0) {
        snprintf(err, errlen, "cannot encode the message as JSON");
        return CENTRAL_FRAME_NOMEM;
    }
    if (need > CENTRAL_FRAME_MAX) {
        snprintf(err, errlen, "a message of %zu bytes, more than the %u a frame holds", need,
                 CENTRAL_FRAME_MAX);
        return CENTRAL_FRAME_TOO_BIG;
    }
    uint8_t *frame = malloc(CENTRAL_FRAME_HEADER + need);
    if (frame == NULL) {
        snprintf(err, errlen, "out of memory");
        return CENTRAL_FRAME_NOMEM;
    }
    if (json_dumpb(obj, (char *)frame + CENTRAL_FRAME_HEADER, need, JSON_COMPACT) != need) {
        free(frame);
        snprintf(err, errlen, "cannot encode the message as JSON");
        return CENTRAL_FRAME_NOMEM;
    }
    frame[0] = (uint8_t)(need >> 24);
    frame[1] = (uint8_t)(need >> 16);
    frame[2] = (uint8_t)(need >> 8);
    frame[3] = (uint8_t)need;
    int rc = io->write(io->ctx, frame, CENTRAL_FRAME_HEADER + need);
    free(frame);
    if (rc != 0) {
        snprintf(err, errlen, "%s while sending a frame",
                 rc == CENTRAL_IO_TIMEOUT ? "timeout" : "connection lost");
        return CENTRAL_FRAME_IO;
    }
    return CENTRAL_FRAME_OK;
}

/* ---- envelope ---------------------------------------------------------------------------- */

const char *central_status_name(enum central_status s)
{
    if ((unsigned)s >= CENTRAL_STATUS_COUNT)
        return status_names[CENTRAL_INTERNAL];
    return status_names[s];
}

int central_status_parse(const char *s, enum central_status *out)
{
    for (unsigned i = 0; i < CENTRAL_STATUS_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum central_status)i;
            return 0;
        }
    return -1;
}

/* True when s is 1..max characters, each in the class: 'i' for [0-9A-Za-z_-], 'o' for [a-z_]. */
static bool token_ok(const char *s, size_t max, char cls)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || c == '_';
        if (cls == 'i')
            ok = ok || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || n >= max)
            return false;
    }
    return n > 0;
}

bool central_request_id_valid(const char *id)
{
    return id != NULL && token_ok(id, CENTRAL_REQUEST_ID_MAX, 'i');
}

int central_request_id_new(int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
                           char out[CENTRAL_REQUEST_ID_NEW + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char r[CENTRAL_REQUEST_ID_NEW / 2];
    if (f_rng(p_rng, r, sizeof r) != 0)
        return -1;
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = digits[r[i] >> 4];
        out[2 * i + 1] = digits[r[i] & 15];
    }
    out[CENTRAL_REQUEST_ID_NEW] = '\0';
    return 0;
}

const char *central_request_id(const json_t *req)
{
    const char *id = json_string_value(json_object_get(req, "request_id"));
    return central_request_id_valid(id) ? id : NULL;
}

int central_request_check(const json_t *req, char *err, size_t errlen)
{
    if (!json_is_object(req)) {
        snprintf(err, errlen, "a request must be a JSON object");
        return -1;
    }
    const json_t *id = json_object_get(req, "request_id");
    if (!json_is_string(id)) {
        snprintf(err, errlen, "\"request_id\" is missing or not a string");
        return -1;
    }
    if (!central_request_id_valid(json_string_value(id))) {
        snprintf(err, errlen, "\"request_id\" must be 1 to %u characters of 0-9 A-Z a-z _ -",
                 CENTRAL_REQUEST_ID_MAX);
        return -1;
    }
    const json_t *op = json_object_get(req, "op");
    if (!json_is_string(op)) {
        snprintf(err, errlen, "\"op\" is missing or not a string");
        return -1;
    }
    if (!token_ok(json_string_value(op), CENTRAL_OP_MAX, 'o')) {
        snprintf(err, errlen, "\"op\" must be 1 to %u characters of a-z and _", CENTRAL_OP_MAX);
        return -1;
    }
    return 0;
}

json_t *central_response_new(enum central_status s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s}", "status", central_status_name(s), "message", msg);
}

int central_response_finish(json_t *resp, const char *id, char *err, size_t errlen)
{
    enum central_status st;
    if (!json_is_object(resp)) {
        snprintf(err, errlen, "the handler's response is not a JSON object");
        return -1;
    }
    const char *s = json_string_value(json_object_get(resp, "status"));
    if (s == NULL || central_status_parse(s, &st) != 0) {
        snprintf(err, errlen, "the handler's response has no known \"status\"");
        return -1;
    }
    const json_t *m = json_object_get(resp, "message");
    if (m != NULL && !json_is_string(m)) {
        snprintf(err, errlen, "the handler's \"message\" is not a string");
        return -1;
    }
    if ((m == NULL && json_object_set_new(resp, "message", json_string("")) != 0) ||
        json_object_set_new(resp, "request_id", id != NULL ? json_string(id) : json_null()) !=
            0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int central_response_check(const json_t *resp, const char *id, enum central_status *status,
                           char *err, size_t errlen)
{
    const char *got = json_string_value(json_object_get(resp, "request_id"));
    if (got == NULL || strcmp(got, id) != 0) {
        snprintf(err, errlen, "the response is not for request %s", id);
        return -1;
    }
    const char *s = json_string_value(json_object_get(resp, "status"));
    if (s == NULL || central_status_parse(s, status) != 0) {
        snprintf(err, errlen, "the response to request %s has no known \"status\"", id);
        return -1;
    }
    if (!json_is_string(json_object_get(resp, "message"))) {
        snprintf(err, errlen, "the response to request %s has no \"message\"", id);
        return -1;
    }
    return 0;
}

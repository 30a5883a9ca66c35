/* The central issuance server (server.h): an accept loop in the caller's thread, one thread per
 * connection in a fixed table of slots, a stop pipe that every wait also watches. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "proto.h"
#include "tls.h"

struct slot {
    struct central_server *srv;
    pthread_t thread;
    bool used;            /* a thread was started and is not joined yet */
    atomic_bool done;     /* the thread has finished */
    int fd;
    unsigned long id;     /* connection number, for the log */
    char peer[NET_NAME_MAX];
};

struct central_server {
    struct central_tls tls;
    FILE *log;
    unsigned max_conns, handshake_ms, idle_ms, port;
    char where[NET_NAME_MAX];
    int lfds[NET_LISTEN_MAX];
    int nlfds;
    int stop_pipe[2];     /* readable once stopping: every wait watches it */
    int wake_pipe[2];     /* a connection thread finished */
    atomic_bool stopping;
    unsigned long next_id;
    struct slot *slots;
    central_handler_fn handler;
    void *ctx;
};

/* ---- log ---------------------------------------------------------------------------------- */

/* One line: "2026-05-01T12:00:00Z " and the text, written at once. */
static void slog(struct central_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void slog(struct central_server *s, const char *fmt, ...)
{
    char line[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fputs(line, s->log);
    fflush(s->log);
}

/* ---- one connection ----------------------------------------------------------------------- */

/* Sends resp (made complete with id) on c; a response too large for a frame becomes an
 * "internal" one. *status gets the status sent. Returns 0 or -1 (the connection is unusable). */
static int send_response(struct central_server *s, struct slot *sl, struct central_conn *c,
                         json_t *resp, const char *id, const char **status)
{
    char err[256];
    *status = json_string_value(json_object_get(resp, "status"));
    c->deadline = net_now_ms() + s->idle_ms;
    int rc = central_frame_write(&c->io, resp, err, sizeof err);
    if (rc == CENTRAL_FRAME_TOO_BIG || rc == CENTRAL_FRAME_NOMEM) {
        slog(s, "conn=%lu branch=%s request_id=%s response not sent: %s", sl->id, c->peer_cn,
             id != NULL ? id : "-", err);
        *status = central_status_name(CENTRAL_INTERNAL);
        json_t *r = central_response_new(CENTRAL_INTERNAL, "the central could not send its "
                                         "answer; see its log");
        rc = r != NULL && central_response_finish(r, id, err, sizeof err) == 0
                 ? central_frame_write(&c->io, r, err, sizeof err)
                 : CENTRAL_FRAME_NOMEM;
        json_decref(r);
    }
    return rc == CENTRAL_FRAME_OK ? 0 : -1;
}

/* The response to one request: the handler's, or "bad_request" / "internal". */
static json_t *answer(struct central_server *s, struct slot *sl, const char *branch,
                      const json_t *req, const char *id)
{
    char err[256];
    if (central_request_check(req, err, sizeof err) != 0)
        return central_response_new(CENTRAL_BAD_REQUEST, "%s", err);
    json_t *resp = NULL;
    int hr = s->handler(s->ctx, branch, req, &resp);
    if (hr == 0 && resp != NULL && central_response_finish(resp, id, err, sizeof err) == 0)
        return resp;
    slog(s, "conn=%lu branch=%s request_id=%s handler failed: %s", sl->id, branch, id,
         hr != 0 ? "it returned an error" : resp == NULL ? "no response" : err);
    json_decref(resp);
    return central_response_new(CENTRAL_INTERNAL, "the central failed on this request; see "
                                "its log");
}

/* Requests until the branch closes, a limit passes, the stream breaks or the server stops.
 * Returns how to close the connection (CENTRAL_CLOSE_* of tls.h). */
static int serve_requests(struct central_server *s, struct slot *sl, struct central_conn *c)
{
    int how = CENTRAL_CLOSE_NOTIFY;
    unsigned long n = 0;
    const char *branch = c->peer_cn;
    char err[256], why[300] = "";
    for (;;) {
        c->deadline = net_now_ms() + s->idle_ms;
        json_t *req = NULL;
        int fr = central_frame_read(&c->io, &req, NULL, err, sizeof err);
        if (fr != CENTRAL_FRAME_OK && fr != CENTRAL_FRAME_BAD_JSON &&
            fr != CENTRAL_FRAME_TOO_BIG) {
            snprintf(why, sizeof why, "%s", atomic_load(&s->stopping) ? "the server stops" : err);
            break;
        }
        int checked = central_conn_recheck(c, &s->tls, err, sizeof err);
        if (c->crl_reloaded)
            slog(s, "central: read the changed CRL");
        if (checked != 0) {
            json_decref(req);
            snprintf(why, sizeof why, "%s", err);
            how = CENTRAL_CLOSE_NOW;
            break;
        }
        long long t0 = net_now_ms();
        const char *id = fr == CENTRAL_FRAME_OK ? central_request_id(req) : NULL;
        const char *op = json_string_value(json_object_get(req, "op"));
        json_t *resp = fr == CENTRAL_FRAME_OK
                           ? answer(s, sl, branch, req, id)
                           : central_response_new(CENTRAL_BAD_REQUEST, "%s", err);
        char ferr[256];
        if (resp == NULL || central_response_finish(resp, id, ferr, sizeof ferr) != 0) {
            json_decref(resp);
            json_decref(req);
            snprintf(why, sizeof why, "out of memory");
            break;
        }
        /* the handler's words for the log only (server.h) */
        char note[300] = "";
        const char *log_note = json_string_value(json_object_get(resp, "log"));
        if (log_note != NULL)
            snprintf(note, sizeof note, " log: %s", log_note);
        json_object_del(resp, "log");
        const char *status;
        int sent = send_response(s, sl, c, resp, id, &status);
        bool op_ok = id != NULL && central_request_check(req, ferr, sizeof ferr) == 0;
        slog(s, "conn=%lu branch=%s op=%s request_id=%s status=%s ms=%lld%s%s%s", sl->id,
             branch, op_ok ? op : "-", id != NULL ? id : "-", status, net_now_ms() - t0,
             fr != CENTRAL_FRAME_OK ? " frame: " : "", fr != CENTRAL_FRAME_OK ? err : "", note);
        n++;
        json_decref(resp);
        json_decref(req);
        if (sent != 0) {
            snprintf(why, sizeof why, "the response could not be sent");
            break;
        }
        if (fr == CENTRAL_FRAME_TOO_BIG) {
            snprintf(why, sizeof why, "the stream is out of step after an oversized frame");
            how |= CENTRAL_CLOSE_LINGER;
            break;
        }
    }
    slog(s, "conn=%lu branch=%s closed after %lu request%s: %s", sl->id, branch, n,
         n == 1 ? "" : "s", why);
    return how;
}

static void *connection_thread(void *arg)
{
    struct slot *sl = arg;
    struct central_server *s = sl->srv;
    struct central_conn c;
    char err[700];
    if (central_conn_open(&c, &s->tls, sl->fd, NULL, s->stop_pipe[0], err, sizeof err) != 0) {
        slog(s, "conn=%lu peer=%s refused: %s", sl->id, sl->peer, err);
        goto done;
    }
    if (c.crl_reloaded)
        slog(s, "central: read the changed CRL");
    if (central_conn_handshake(&c, net_now_ms() + s->handshake_ms, err, sizeof err) != 0) {
        slog(s, "conn=%lu peer=%s refused: %s", sl->id, sl->peer, err);
        central_conn_close(&c, CENTRAL_CLOSE_LINGER);
        goto done;
    }
    slog(s, "conn=%lu peer=%s branch=%s connected", sl->id, sl->peer, c.peer_cn);
    central_conn_close(&c, serve_requests(s, sl, &c));
done:
    atomic_store(&sl->done, true);
    ssize_t w = write(s->wake_pipe[1], "w", 1); /* full pipe: a wake-up is pending anyway */
    (void)w;
    return NULL;
}

/* ---- the accept loop ---------------------------------------------------------------------- */

/* Joins finished threads (all of them when all is true, waiting). Returns the open count. */
static unsigned reap(struct central_server *s, bool all)
{
    unsigned open = 0;
    for (unsigned i = 0; i < s->max_conns; i++) {
        struct slot *sl = &s->slots[i];
        if (!sl->used)
            continue;
        if (all || atomic_load(&sl->done)) {
            pthread_join(sl->thread, NULL);
            sl->used = false;
        } else {
            open++;
        }
    }
    return open;
}

static void accept_one(struct central_server *s, int lfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
                    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            slog(s, "central: cannot accept a connection: %s", strerror(errno));
            struct timespec pause = { 0, 100 * 1000000L };
            nanosleep(&pause, NULL);
        }
        return;
    }
    unsigned long id = ++s->next_id;
    char peer[NET_NAME_MAX];
    net_peer_name(&ss, sl, peer, sizeof peer);
    struct slot *free_slot = NULL;
    for (unsigned i = 0; i < s->max_conns && free_slot == NULL; i++)
        if (!s->slots[i].used)
            free_slot = &s->slots[i];
    if (free_slot == NULL) {
        close(fd);
        slog(s, "conn=%lu peer=%s refused: %u connections open, the maximum", id, peer,
             s->max_conns);
        return;
    }
    free_slot->srv = s;
    free_slot->fd = fd;
    free_slot->id = id;
    snprintf(free_slot->peer, sizeof free_slot->peer, "%s", peer);
    atomic_store(&free_slot->done, false);
    int err = pthread_create(&free_slot->thread, NULL, connection_thread, free_slot);
    if (err != 0) {
        close(fd);
        slog(s, "conn=%lu peer=%s refused: cannot start a thread: %s", id, peer, strerror(err));
        return;
    }
    free_slot->used = true;
}

int central_server_serve(struct central_server *s, central_handler_fn handler, void *ctx)
{
    s->handler = handler;
    s->ctx = ctx;
    slog(s, "central: listening on %s (at most %u connections, handshake timeout %u ms, "
         "request timeout %u ms)", s->where, s->max_conns, s->handshake_ms, s->idle_ms);
    struct pollfd p[NET_LISTEN_MAX + 2];
    int rc = 0;
    while (!atomic_load(&s->stopping)) {
        reap(s, false);
        nfds_t n = 0;
        p[n++] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = s->wake_pipe[0], .events = POLLIN };
        for (int i = 0; i < s->nlfds; i++)
            p[n++] = (struct pollfd){ .fd = s->lfds[i], .events = POLLIN };
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            slog(s, "central: error: poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (p[0].revents != 0)
            break;
        if (p[1].revents != 0) {
            char buf[64];
            while (read(s->wake_pipe[0], buf, sizeof buf) > 0) {
            }
        }
        for (nfds_t i = 2; i < n; i++)
            if (p[i].revents != 0)
                accept_one(s, p[i].fd);
    }
    for (int i = 0; i < s->nlfds; i++)
        close(s->lfds[i]);
    s->nlfds = 0;
    unsigned open = reap(s, false);
    slog(s, "central: stopping; waiting for %u connection%s", open, open == 1 ? "" : "s");
    reap(s, true);
    slog(s, "central: stopped");
    return rc;
}

/* ---- life cycle --------------------------------------------------------------------------- */

void central_server_stop(struct central_server *s)
{
    atomic_store(&s->stopping, true);
    ssize_t w = write(s->stop_pipe[1], "s", 1);
    (void)w;
}

unsigned central_server_port(const struct central_server *s)
{
    return s->port;
}

static int open_pipe(int p[2], bool nonblocking)
{
    if (pipe(p) != 0) {
        p[0] = p[1] = -1;
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0 ||
            (nonblocking && fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK) != 0))
            return -1;
    return 0;
}

int central_server_open(const struct central_server_config *cfg, struct central_server **out,
                        char *err, size_t errlen)
{
    struct central_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->stop_pipe[0] = s->stop_pipe[1] = s->wake_pipe[0] = s->wake_pipe[1] = -1;
    s->log = cfg->log != NULL ? cfg->log : stderr;
    s->max_conns = cfg->max_conns != 0 ? cfg->max_conns : CENTRAL_MAX_CONNS;
    s->handshake_ms = cfg->handshake_ms != 0 ? cfg->handshake_ms : CENTRAL_HANDSHAKE_MS;
    s->idle_ms = cfg->idle_ms != 0 ? cfg->idle_ms : CENTRAL_IDLE_MS;
    atomic_init(&s->stopping, false);
    struct central_tls_files f = { cfg->ca_cert, cfg->cert, cfg->key, cfg->crl };
    if (s->max_conns > CENTRAL_MAX_CONNS_LIMIT) {
        snprintf(err, errlen, "at most %u connections", CENTRAL_MAX_CONNS_LIMIT);
        free(s);
        return -1;
    }
    if (central_tls_init(&s->tls, true, &f, err, errlen) != 0) {
        free(s);
        return -1;
    }
    s->slots = calloc(s->max_conns, sizeof *s->slots);
    if (s->slots == NULL || open_pipe(s->stop_pipe, false) != 0 ||
        open_pipe(s->wake_pipe, true) != 0) {
        snprintf(err, errlen, "out of memory or file descriptors");
        goto fail;
    }
    const char *port = cfg->port != NULL ? cfg->port : "0";
    s->nlfds = net_listen(cfg->host, port, s->lfds, NET_LISTEN_MAX, &s->port, err, errlen);
    if (s->nlfds < 0) {
        s->nlfds = 0;
        goto fail;
    }
    for (int i = 0; i < s->nlfds; i++)
        (void)fcntl(s->lfds[i], F_SETFL, fcntl(s->lfds[i], F_GETFL) | O_NONBLOCK);
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", s->port);
    net_host_port(cfg->host != NULL && cfg->host[0] != '\0' ? cfg->host : "*", port_text,
                  s->where, sizeof s->where);
    *out = s;
    return 0;
fail:
    central_server_close(s);
    return -1;
}

void central_server_close(struct central_server *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->nlfds; i++)
        close(s->lfds[i]);
    for (int i = 0; i < 2; i++) {
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
        if (s->wake_pipe[i] >= 0)
            close(s->wake_pipe[i]);
    }
    free(s->slots);
    central_tls_free(&s->tls);
    free(s);
}

/* ---- run with signals --------------------------------------------------------------------- */

struct signal_waiter {
    struct central_server *srv;
    sigset_t set;
};

static void *signal_thread(void *arg)
{
    struct signal_waiter *w = arg;
    int sig = 0;
    if (sigwait(&w->set, &sig) == 0 && !atomic_load(&w->srv->stopping)) {
        slog(w->srv, "central: %s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
        central_server_stop(w->srv);
    }
    return NULL;
}

int central_server_serve_until_signal(struct central_server *s, central_handler_fn handler,
                                      void *ctx)
{
    struct signal_waiter w = { .srv = s };
    sigset_t old;
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &w.set, &old); /* every thread started from here inherits it */
    pthread_t th;
    bool have_thread = pthread_create(&th, NULL, signal_thread, &w) == 0;
    int rc = have_thread ? central_server_serve(s, handler, ctx) : -1;
    if (have_thread) {
        atomic_store(&s->stopping, true);
        pthread_kill(th, SIGTERM); /* wakes its sigwait when serve ended otherwise */
        pthread_join(th, NULL);
    } else {
        slog(s, "central: error: cannot start the signal thread");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int central_server_run(const struct central_server_config *cfg, central_handler_fn handler,
                       void *ctx)
{
    char err[1024];
    struct central_server *s;
    if (central_server_open(cfg, &s, err, sizeof err) != 0) {
        struct central_server tmp = { .log = cfg->log != NULL ? cfg->log : stderr };
        slog(&tmp, "central: error: %s", err);
        return -1;
    }
    int rc = central_server_serve_until_signal(s, handler, ctx);
    central_server_close(s);
    return rc;
}

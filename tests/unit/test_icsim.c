/* icsim end to end over real sockets: the icsim binary (env ICSIM, default
 * build/check/bin/icsim) is started with --listen 127.0.0.1:0 on a temporary NVM file and
 * reached with the tcp: transport and with raw frames; a kill -9 is a power cut that keeps the
 * card; broken framing drops only that connection; --vpcd connects out to a fake vpcd and
 * reconnects. Every child is killed in teardown; every wait is bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "transport.h"

#define WAIT_MS 15000 /* generous bound for a sanitizer build on a loaded machine */

struct ctx {
    char dir[64];
    char nvm[128];
    const char *icsim;
    pid_t pid;    /* running icsim, or 0 */
    int out_fd;   /* read end of its stdout */
    int port;
    int lfd;      /* fake vpcd listener, or -1 */
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Starts icsim with args (NULL-terminated, after argv[0]); stdout to a pipe, stderr inherited. */
static pid_t spawn(struct ctx *c, const char *const *args, int *out_fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        const char *argv[12];
        size_t n = 0;
        argv[n++] = c->icsim;
        for (size_t i = 0; args[i] != NULL && n < 11; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(c->icsim, (char *const *)argv);
        fprintf(stderr, "test_icsim: cannot run %s: %s\n", c->icsim, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Waits for pid with a bound; returns its wait status, or fails the test. */
static int wait_exit(pid_t pid)
{
    long deadline = now_ms() + WAIT_MS;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        assert_true(r == 0);
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("child %d did not exit in time", (int)pid);
        }
        sleep_ms(10);
    }
}

static void stop_icsim(struct ctx *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        int st;
        waitpid(c->pid, &st, 0);
        c->pid = 0;
    }
    if (c->out_fd >= 0) {
        close(c->out_fd);
        c->out_fd = -1;
    }
}

/* Starts icsim --listen 127.0.0.1:0 and reads the port from its one stdout line. */
static void start_icsim(struct ctx *c)
{
    const char *args[] = { "--listen", "127.0.0.1:0", "--nvm", c->nvm, NULL };
    c->pid = spawn(c, args, &c->out_fd);
    char line[256];
    size_t n = 0;
    long deadline = now_ms() + WAIT_MS;
    while (n < sizeof line - 1) {
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("icsim printed no \"listening on\" line");
        struct pollfd pfd = { .fd = c->out_fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        assert_true(pr >= 0);
        if (pr == 0)
            continue;
        ssize_t r = read(c->out_fd, line + n, 1);
        if (r <= 0)
            fail_msg("icsim exited before listening");
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    const char *prefix = "icsim: listening on 127.0.0.1:";
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        fail_msg("unexpected first line from icsim: \"%s\"", line);
    c->port = atoi(line + strlen(prefix));
    assert_true(c->port > 0 && c->port < 65536);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->out_fd = -1;
    c->lfd = -1;
    c->icsim = getenv("ICSIM");
    if (c->icsim == NULL || c->icsim[0] == '\0')
        c->icsim = "build/check/bin/icsim";
    if (access(c->icsim, X_OK) != 0) {
        fprintf(stderr, "test_icsim: %s is not an executable (set ICSIM)\n", c->icsim);
        free(c);
        return -1;
    }
    snprintf(c->dir, sizeof c->dir, "/tmp/icdup-test-icsim-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        free(c);
        return -1;
    }
    snprintf(c->nvm, sizeof c->nvm, "%s/card.nvm", c->dir);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    stop_icsim(c);
    if (c->lfd >= 0)
        close(c->lfd);
    unlink(c->nvm);
    char other[160];
    snprintf(other, sizeof other, "%s/short.nvm", c->dir);
    unlink(other);
    rmdir(c->dir);
    free(c);
    return 0;
}

static struct transport *open_tcp(const struct ctx *c)
{
    char uri[64];
    char err[512];
    snprintf(uri, sizeof uri, "tcp:127.0.0.1:%d", c->port);
    struct transport *t = NULL;
    int rc = transport_open(uri, &t, err, sizeof err);
    if (rc != 0)
        fail_msg("transport_open(%s): %s", uri, err);
    return t;
}

/* One raw exchange of hex bytes; returns the SW. */
static uint16_t tx(struct transport *t, const char *hex, uint8_t *resp, size_t cap,
                   size_t *rlen)
{
    uint8_t cmd[300];
    size_t n = 0;
    char err[512];
    assert_int_equal(hex_decode(hex, cmd, sizeof cmd, &n, err, sizeof err), 0);
    if (transport_exchange(t, cmd, n, resp, cap, rlen, err, sizeof err) != 0)
        fail_msg("exchange %s: %s", hex, err);
    return transport_sw(resp, *rlen);
}

static void get_serial(struct transport *t, uint8_t serial[8])
{
    uint8_t resp[64];
    size_t rlen = 0;
    assert_int_equal(tx(t, "00 CA DF 01 00", resp, sizeof resp, &rlen), 0x9000);
    assert_int_equal(rlen, 10);
    memcpy(serial, resp, 8);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void raw_send(int fd, const uint8_t *buf, size_t len)
{
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads exactly n bytes within the bound; returns 0, or -1 if the peer closed first. */
static int raw_recv(int fd, uint8_t *buf, size_t n)
{
    size_t off = 0;
    long deadline = now_ms() + WAIT_MS;
    while (off < n) {
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("no answer in time");
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr <= 0)
            continue;
        ssize_t r = recv(fd, buf + off, n - off, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return -1;
        assert_true(r > 0);
        off += (size_t)r;
    }
    return 0;
}

/* Waits until the peer closes fd (EOF or reset), failing after the bound. */
static void expect_closed(int fd)
{
    uint8_t b[16];
    int rc = raw_recv(fd, b, sizeof b);
    assert_int_equal(rc, -1);
}

/* Sends a framed message and reads one framed answer into out (returns its length). */
static size_t raw_msg(int fd, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                      bool answer)
{
    uint8_t frame[300];
    assert_true(len + 2 <= sizeof frame);
    frame[0] = (uint8_t)(len >> 8);
    frame[1] = (uint8_t)len;
    memcpy(frame + 2, payload, len);
    raw_send(fd, frame, len + 2);
    if (!answer)
        return 0;
    uint8_t hdr[2];
    assert_int_equal(raw_recv(fd, hdr, 2), 0);
    size_t n = ((size_t)hdr[0] << 8) | hdr[1];
    assert_true(n <= cap);
    assert_int_equal(raw_recv(fd, out, n), 0);
    return n;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_listen_basic_and_power_cut(void **state)
{
    struct ctx *c = *state;
    start_icsim(c);
    struct transport *t = open_tcp(c);

    uint8_t atr[TRANSPORT_ATR_MAX];
    size_t atr_len = 0;
    char err[512];
    assert_int_equal(transport_reset(t, atr, sizeof atr, &atr_len, err, sizeof err), 0);
    assert_true(atr_len > 0);
    assert_int_equal(atr[0], 0x3B);

    uint8_t resp[600];
    size_t rlen = 0;
    assert_int_equal(tx(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen), 0x9000);

    /* A malformed APDU is the card's business: 6700, and the link stays usable. */
    static const uint8_t bad[3] = { 0x00, 0xA4, 0x00 };
    assert_int_equal(transport_transmit(t, bad, sizeof bad, resp, sizeof resp, &rlen, err,
                                        sizeof err),
                     0);
    assert_int_equal(transport_sw(resp, rlen), 0x6700);
    assert_int_equal(tx(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen), 0x9000);

    uint8_t s1[8];
    get_serial(t, s1);
    transport_close(t);

    /* kill -9 is a power cut: same image, same card. */
    stop_icsim(c);
    start_icsim(c);
    t = open_tcp(c);
    uint8_t s2[8];
    get_serial(t, s2);
    assert_memory_equal(s1, s2, 8);

    /* icsim died under the open transport: a clear error, not a hang. */
    stop_icsim(c);
    int rc = transport_exchange(t, (const uint8_t *)"\x00\xA4\x00\x0C\x02\x3F\x00", 7, resp,
                                sizeof resp, &rlen, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "closed"));
    transport_close(t);
}

static void test_bad_frames_drop_only_that_connection(void **state)
{
    struct ctx *c = *state;
    start_icsim(c);

    /* Length 0: icsim closes this connection. */
    int fd = raw_connect(c->port);
    static const uint8_t zero[2] = { 0, 0 };
    raw_send(fd, zero, sizeof zero);
    expect_closed(fd);
    close(fd);

    /* A message cut short by the client: the connection ends, icsim goes on. */
    fd = raw_connect(c->port);
    static const uint8_t cut[5] = { 0x00, 0x0A, 0x00, 0xA4, 0x00 };
    raw_send(fd, cut, sizeof cut);
    close(fd);

    /* Raw frames on a fresh connection: power on, ATR, an APDU. */
    fd = raw_connect(c->port);
    uint8_t out[300];
    static const uint8_t on = 0x01, get_atr = 0x04;
    raw_msg(fd, &on, 1, NULL, 0, false);
    size_t n = raw_msg(fd, &get_atr, 1, out, sizeof out, true);
    assert_true(n >= 2);
    assert_int_equal(out[0], 0x3B);
    static const uint8_t select_mf[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
    n = raw_msg(fd, select_mf, sizeof select_mf, out, sizeof out, true);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0x90);
    assert_int_equal(out[1], 0x00);
    close(fd);

    /* And the tcp transport still works, with long extended APDUs too. */
    struct transport *t = open_tcp(c);
    uint8_t resp[64];
    size_t rlen = 0;
    assert_int_equal(tx(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen), 0x9000);
    size_t big_len = 7 + 3000;
    uint8_t *big = calloc(1, big_len); /* UPDATE BINARY, extended Lc 3000: too long for the card */
    assert_non_null(big);
    big[1] = 0xD6;
    big[5] = (uint8_t)(3000 >> 8);
    big[6] = (uint8_t)(3000 & 0xFF);
    char err[512];
    assert_int_equal(transport_transmit(t, big, big_len, resp, sizeof resp, &rlen, err,
                                        sizeof err),
                     0);
    assert_int_equal(rlen, 2);
    assert_int_equal(transport_sw(resp, rlen), 0x6700);
    free(big);
    assert_int_equal(tx(t, "00 A4 00 0C 02 3F 00", resp, sizeof resp, &rlen), 0x9000);
    transport_close(t);
}

static void test_refused_image_and_usage(void **state)
{
    struct ctx *c = *state;
    char shortp[160];
    snprintf(shortp, sizeof shortp, "%s/short.nvm", c->dir);
    FILE *f = fopen(shortp, "wb");
    assert_non_null(f);
    static const uint8_t junk[100] = { 1, 2, 3 };
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    assert_int_equal(fclose(f), 0);

    const char *args[] = { "--listen", "127.0.0.1:0", "--nvm", shortp, NULL };
    c->pid = spawn(c, args, &c->out_fd);
    int st = wait_exit(c->pid);
    c->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    close(c->out_fd);
    c->out_fd = -1;
    struct stat sb;
    assert_int_equal(stat(shortp, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)sizeof junk);

    const char *usage1[] = { "--nvm", c->nvm, NULL }; /* neither --listen nor --vpcd */
    c->pid = spawn(c, usage1, &c->out_fd);
    st = wait_exit(c->pid);
    c->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    close(c->out_fd);
    c->out_fd = -1;

    const char *usage2[] = { "--listen", "127.0.0.1", "--nvm", c->nvm, NULL }; /* no port */
    c->pid = spawn(c, usage2, &c->out_fd);
    st = wait_exit(c->pid);
    c->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    close(c->out_fd);
    c->out_fd = -1;
}

/* Accepts one connection on c->lfd within the bound. */
static int accept_bounded(struct ctx *c)
{
    struct pollfd pfd = { .fd = c->lfd, .events = POLLIN };
    long deadline = now_ms() + WAIT_MS;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("icsim --vpcd did not connect in time");
        int pr = poll(&pfd, 1, (int)left);
        if (pr > 0)
            break;
    }
    int fd = accept(c->lfd, NULL, NULL);
    assert_true(fd >= 0);
    return fd;
}

/* --vpcd: icsim connects out to the reader driver, retries while it is refused, serves the
 * vicc framing, and reconnects when the driver goes away (pcscd restarting). */
static void test_vpcd_mode(void **state)
{
    struct ctx *c = *state;
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->lfd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&a, &al), 0);
    int port = ntohs(a.sin_port);

    /* Bound but not listening: connections are refused until listen(). */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    const char *args[] = { "--vpcd", target, "--nvm", c->nvm, NULL };
    c->pid = spawn(c, args, &c->out_fd);
    sleep_ms(300);
    assert_int_equal(listen(c->lfd, 4), 0);

    uint8_t out[300];
    for (int round = 0; round < 2; round++) {
        int fd = accept_bounded(c);
        static const uint8_t on = 0x01, get_atr = 0x04, reset = 0x02;
        raw_msg(fd, &on, 1, NULL, 0, false);
        size_t n = raw_msg(fd, &get_atr, 1, out, sizeof out, true);
        assert_true(n >= 2);
        assert_int_equal(out[0], 0x3B);
        raw_msg(fd, &reset, 1, NULL, 0, false);
        static const uint8_t select_mf[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
        n = raw_msg(fd, select_mf, sizeof select_mf, out, sizeof out, true);
        assert_int_equal(n, 2);
        assert_int_equal(out[0], 0x90);
        close(fd); /* the driver goes away; icsim must come back */
    }
    int st;
    assert_int_equal(waitpid(c->pid, &st, WNOHANG), 0); /* still running */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listen_basic_and_power_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frames_drop_only_that_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_image_and_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vpcd_mode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

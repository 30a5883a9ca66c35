/* qemu:PATH-TO-ELF[,nvm=FILE][,icount=SHIFT] — the card firmware (make firmware) running in QEMU's mps2-an386,
 * its UART0 on a loopback TCP port, spoken to with the icsim framing (see docs/firmware.md):
 * every message is a 2-byte big-endian length then the payload; a 1-byte payload is a control
 * (00 power off, 01 power on, 02 reset, 04 get ATR), a longer one an APDU.
 *
 * open picks a free loopback port, starts
 *   qemu-system-arm -M mps2-an386 -nographic -monitor none -kernel ELF
 *                   -serial tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on
 * (without nodelay every round trip costs ~44 ms of Nagle delay), connects with TCP_NODELAY and
 * powers the card on. close kills that QEMU by its PID. The card's NVM is QEMU RAM: a new blank
 * card on every open, unless nvm=FILE backs it with a file (QEMU memory-backend-file, shared
 * mapping), which keeps the card across opens. QEMU's binary is $ICDUP_QEMU or qemu-system-arm
 * from PATH; its messages go to a pipe and are quoted when it exits early. The framing itself is
 * vpcd_frame.c, shared with tcp: and serial:. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "transport.h"
#include "vpcd_frame.h"

#define QEMU_TIMEOUT_MS 30000        /* how long a command may take to be answered */
#define QEMU_START_TIMEOUT_MS 10000  /* QEMU start until its serial port accepts */
#define QEMU_NVM_BACKEND_SIZE "16M"  /* mps2's machine RAM (PSRAM at 0x21000000) is 16 MiB */

struct transport_qemu {
    struct transport base; /* first: the generic layer sees only this */
    pid_t pid;
    int errfd;             /* read end of QEMU's stderr */
    char elf[4096];
    struct vpcd_link link; /* its name is "QEMU card ELF" */
};

/* Finds the QEMU binary: $ICDUP_QEMU, or qemu-system-arm in PATH. */
static int qemu_find_binary(char *out, size_t cap)
{
    const char *env = getenv("ICDUP_QEMU");
    if (env != NULL && env[0] != '\0') {
        if (access(env, X_OK) != 0 || (size_t)snprintf(out, cap, "%s", env) >= cap)
            return -1;
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path != '\0') {
        const char *end = strchr(path, ':');
        size_t n = end != NULL ? (size_t)(end - path) : strlen(path);
        if (n > 0 && (size_t)snprintf(out, cap, "%.*s/qemu-system-arm", (int)n, path) < cap &&
            access(out, X_OK) == 0)
            return 0;
        path += n;
        if (*path == ':')
            path++;
    }
    return -1;
}

/* A free loopback TCP port (bound and released: QEMU binds it right after). */
static int qemu_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* QEMU's stderr so far, one line, for messages. */
static void qemu_stderr_text(struct transport_qemu *tq, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    if (tq->errfd < 0)
        return;
    while (n + 1 < cap) {
        ssize_t r = read(tq->errfd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = (i + 1 == n) ? '\0' : ' ';
}

/* If QEMU has exited, describes how (with its stderr) in err and returns true. */
static bool qemu_exited(struct transport_qemu *tq, char *err, size_t errlen)
{
    if (tq->pid <= 0)
        return false;
    int st = 0;
    pid_t r = waitpid(tq->pid, &st, WNOHANG);
    if (r != tq->pid)
        return false;
    tq->pid = -1;
    char text[512];
    qemu_stderr_text(tq, text, sizeof text);
    char how[64];
    if (WIFEXITED(st))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(st));
    else
        snprintf(how, sizeof how, "stopped");
    snprintf(err, errlen, "QEMU running %s %s%s%s", tq->elf, how, text[0] ? ": " : "", text);
    return true;
}

static bool qemu_peer_gone(void *ctx, char *err, size_t errlen)
{
    return qemu_exited(ctx, err, errlen);
}

static void transport_qemu_close(struct transport *t)
{
    struct transport_qemu *tq = (struct transport_qemu *)t;
    if (tq->link.fd >= 0)
        close(tq->link.fd);
    if (tq->pid > 0) {
        kill(tq->pid, SIGKILL); /* a power cut: NVM writes already made stay in the file */
        while (waitpid(tq->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    if (tq->errfd >= 0)
        close(tq->errfd);
    free(tq);
}

/* Appends s to the QEMU option value in out, doubling commas (QEMU's option escaping). */
static int qemu_opt_escape(char *out, size_t cap, const char *prefix, const char *s)
{
    size_t n = (size_t)snprintf(out, cap, "%s", prefix);
    if (n >= cap)
        return -1;
    for (; *s != '\0'; s++) {
        if (n + 3 >= cap)
            return -1;
        out[n++] = *s;
        if (*s == ',')
            out[n++] = ',';
    }
    out[n] = '\0';
    return 0;
}

/* Starts QEMU serving its UART0 on port. Returns 0 (tq->pid set) or -1 with errno. */
static int qemu_spawn(struct transport_qemu *tq, const char *qemu, int port, const char *nvm,
                      int icount)
{
    char serial[96], machine[64], object[4200], shift[32];
    snprintf(serial, sizeof serial, "tcp:127.0.0.1:%d,server=on,wait=on,nodelay=on", port);
    snprintf(machine, sizeof machine, "mps2-an386%s", nvm ? ",memory-backend=icdup-nvm" : "");
    if (nvm != NULL) {
        char pre[96];
        snprintf(pre, sizeof pre, "memory-backend-file,id=icdup-nvm,size=%s,share=on,mem-path=",
                 QEMU_NVM_BACKEND_SIZE);
        if (qemu_opt_escape(object, sizeof object, pre, nvm) != 0) {
            errno = ENAMETOOLONG;
            return -1;
        }
    }
    const char *argv[16];
    int a = 0;
    argv[a++] = qemu;
    argv[a++] = "-M";
    argv[a++] = machine;
    argv[a++] = "-nographic";
    argv[a++] = "-monitor";
    argv[a++] = "none";
    argv[a++] = "-kernel";
    argv[a++] = tq->elf;
    argv[a++] = "-serial";
    argv[a++] = serial;
    if (nvm != NULL) {
        argv[a++] = "-object";
        argv[a++] = object;
    }
    if (icount >= 0) {
        snprintf(shift, sizeof shift, "shift=%d", icount);
        argv[a++] = "-icount";
        argv[a++] = shift;
    }
    argv[a] = NULL;

    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    (void)fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        errno = e;
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan QEMU if the tool dies */
#endif
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        dup2(pipefd[1], 2);
        execv(qemu, (char *const *)argv);
        dprintf(2, "cannot run %s: %s\n", qemu, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    tq->errfd = pipefd[0];
    (void)fcntl(tq->errfd, F_SETFL, fcntl(tq->errfd, F_GETFL) | O_NONBLOCK);
    tq->pid = pid;
    return 0;
}

/* Connects to QEMU's serial port, retrying until it listens, QEMU exits or time is up. */
static int qemu_connect(struct transport_qemu *tq, int port, char *err, size_t errlen)
{
    long deadline = vpcd_now_ms() + QEMU_START_TIMEOUT_MS;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return TRANSPORT_E_OPEN;
        }
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            tq->link.fd = fd;
            return 0;
        }
        int e = errno;
        close(fd);
        if (qemu_exited(tq, err, errlen))
            return TRANSPORT_E_OPEN;
        if (vpcd_now_ms() > deadline) {
            snprintf(err, errlen, "QEMU running %s did not open its serial port "
                     "127.0.0.1:%d within %d s: %s", tq->elf, port,
                     QEMU_START_TIMEOUT_MS / 1000, strerror(e));
            return TRANSPORT_E_OPEN;
        }
        vpcd_sleep_ms(20);
    }
}

/* The options after the ELF: ",nvm=FILE" and ",icount=SHIFT" (QEMU's -icount shift: every
 * instruction takes 2^SHIFT ns of virtual time, which the firmware's timer measures; bench/). */
static int qemu_parse_options(const char *opts, char *nvm, size_t nvm_cap, bool *have_nvm,
                              int *icount)
{
    while (opts != NULL && *opts == ',') {
        const char *val = strchr(opts, '=');
        const char *end = strchr(opts + 1, ',');
        size_t len = end != NULL ? (size_t)(end - opts - 1) : strlen(opts + 1);
        if (val == NULL || (end != NULL && val > end) || val[1] == '\0' || val + 1 == end)
            return -1;
        size_t vlen = len - (size_t)(val - opts);
        if (strncmp(opts + 1, "nvm=", 4) == 0 && vlen < nvm_cap) {
            memcpy(nvm, val + 1, vlen);
            nvm[vlen] = '\0';
            *have_nvm = true;
        } else if (strncmp(opts + 1, "icount=", 7) == 0 && vlen <= 2) {
            char *e;
            long v = strtol(val + 1, &e, 10);
            if (e != val + 1 + vlen || v < 0 || v > 10)
                return -1;
            *icount = (int)v;
        } else {
            return -1;
        }
        opts = end;
    }
    return 0;
}

static int transport_qemu_open(const char *rest, struct transport **out, char *err,
                               size_t errlen)
{
    if (rest == NULL || rest[0] == '\0' || rest[0] == ',') {
        snprintf(err, errlen, "reader URI qemu:%.200s is not of the form "
                 "qemu:PATH-TO-ELF[,nvm=FILE][,icount=SHIFT]", rest != NULL ? rest : "");
        return TRANSPORT_E_URI;
    }
    struct transport_qemu *tq = calloc(1, sizeof *tq);
    if (tq == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRANSPORT_E_OPEN;
    }
    tq->link.fd = -1;
    tq->link.socket = true;
    tq->link.timeout_ms = QEMU_TIMEOUT_MS;
    tq->link.peer_gone = qemu_peer_gone;
    tq->link.ctx = tq;
    tq->errfd = -1;
    tq->pid = -1;
    const char *comma = strchr(rest, ',');
    size_t elen = comma != NULL ? (size_t)(comma - rest) : strlen(rest);
    char nvm[4096];
    bool have_nvm = false;
    int icount = -1;
    if (qemu_parse_options(comma, nvm, sizeof nvm, &have_nvm, &icount) != 0) {
        snprintf(err, errlen, "reader URI qemu:%.200s: bad option \"%.40s\" (nvm=FILE, "
                 "icount=0..10)", rest, comma + 1);
        free(tq);
        return TRANSPORT_E_URI;
    }
    if (elen >= sizeof tq->elf) {
        snprintf(err, errlen, "firmware path too long");
        free(tq);
        return TRANSPORT_E_URI;
    }
    memcpy(tq->elf, rest, elen);
    tq->elf[elen] = '\0';
    snprintf(tq->link.name, sizeof tq->link.name, "QEMU card %s", tq->elf);
    struct stat st;
    if (stat(tq->elf, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "firmware image %s: %s (build it with make firmware)", tq->elf,
                 stat(tq->elf, &st) != 0 ? strerror(errno) : "not a regular file");
        free(tq);
        return TRANSPORT_E_OPEN;
    }
    char qemu[4096];
    if (qemu_find_binary(qemu, sizeof qemu) != 0) {
        snprintf(err, errlen, "qemu-system-arm not found (%s); install it (apt-get install "
                 "qemu-system-arm, or make deps) or set ICDUP_QEMU",
                 getenv("ICDUP_QEMU") ? "ICDUP_QEMU is not executable" : "not in PATH");
        free(tq);
        return TRANSPORT_E_OPEN;
    }
    /* The port is free when picked but another process may take it before QEMU binds it:
     * QEMU then exits at once and a new port is tried. */
    int rc = TRANSPORT_E_OPEN;
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = qemu_free_port();
        if (port <= 0) {
            snprintf(err, errlen, "cannot find a free loopback port: %s", strerror(errno));
            break;
        }
        if (qemu_spawn(tq, qemu, port, have_nvm ? nvm : NULL, icount) != 0) {
            snprintf(err, errlen, "cannot start %s: %s", qemu, strerror(errno));
            break;
        }
        rc = qemu_connect(tq, port, err, errlen);
        if (rc == 0 || tq->pid > 0 || strstr(err, "ddress already in use") == NULL)
            break;
        if (tq->errfd >= 0)
            close(tq->errfd);
        tq->errfd = -1;
    }
    if (rc == 0)
        rc = vpcd_power_on(&tq->link, err, errlen);
    if (rc != 0) {
        transport_qemu_close(&tq->base);
        return rc;
    }
    *out = &tq->base;
    return 0;
}

static int transport_qemu_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                                   uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                   size_t errlen)
{
    return vpcd_transmit(&((struct transport_qemu *)t)->link, capdu, len, rapdu, cap, rlen,
                         err, errlen);
}

static int transport_qemu_reset(struct transport *t, uint8_t *atr, size_t cap, size_t *atr_len,
                                char *err, size_t errlen)
{
    return vpcd_reset(&((struct transport_qemu *)t)->link, atr, cap, atr_len, err, errlen);
}

static int transport_qemu_vendor(struct transport *t, uint8_t code, uint8_t *out, size_t cap,
                                 size_t *len, char *err, size_t errlen)
{
    return vpcd_vendor(&((struct transport_qemu *)t)->link, code, out, cap, len, err, errlen);
}

const struct transport_ops transport_qemu_ops = {
    .scheme = "qemu",
    .synopsis = "qemu:ELF[,nvm=FILE][,icount=SHIFT]",
    .description = "the card firmware (make firmware) in qemu-system-arm mps2-an386; "
                   "nvm=FILE keeps its NVM across runs; icount=0 counts instructions",
    .open = transport_qemu_open,
    .transmit = transport_qemu_transmit,
    .reset = transport_qemu_reset,
    .close = transport_qemu_close,
    .vendor = transport_qemu_vendor,
};

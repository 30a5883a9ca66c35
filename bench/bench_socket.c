/* Measures APDUs per second over an icsim socket: starts `icsim --listen 127.0.0.1:0` on a
 * fresh NVM file, connects with the tcp: transport, and sends GET DATA (DF03) for a second.
 * Usage: bench_socket PATH-TO-ICSIM. Prints "key value" lines for bench/run.sh. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_socket PATH-TO-ICSIM\n");
        return 2;
    }
    char dir[] = "/tmp/icdup-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char nvm[sizeof dir + 16];
    snprintf(nvm, sizeof nvm, "%s/card.nvm", dir);
    int pipefd[2];
    if (pipe(pipefd))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(argv[1], argv[1], "--nvm", nvm, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *in = fdopen(pipefd[0], "r");
    char line[256] = "", uri[300];
    int ok = in && fgets(line, sizeof line, in) &&
             sscanf(line, "icsim: listening on %255s", uri + 4) == 1;
    int rc = 1;
    struct transport *t = NULL;
    char err[256];
    if (ok) {
        memcpy(uri, "tcp:", 4);
        if (transport_open(uri, &t, err, sizeof err) == 0) {
            static const uint8_t apdu[] = { 0x00, 0xCA, 0xDF, 0x03, 0x00 };
            uint8_t rsp[300];
            size_t rlen;
            long count = 0;
            double t0 = now(), t1;
            do {
                for (int i = 0; i < 500; i++) {
                    if (transport_transmit(t, apdu, sizeof apdu, rsp, sizeof rsp, &rlen, err,
                                           sizeof err) || rlen < 2 || rsp[rlen - 2] != 0x90) {
                        fprintf(stderr, "bench_socket: %s\n", err);
                        goto done;
                    }
                }
                count += 500;
                t1 = now();
            } while (t1 - t0 < 1.0);
            printf("socket_getdata_apdu_per_s %.0f\n", (double)count / (t1 - t0));
            rc = 0;
        } else {
            fprintf(stderr, "bench_socket: %s\n", err);
        }
    } else {
        fprintf(stderr, "bench_socket: icsim did not start\n");
    }
done:
    if (t)
        transport_close(t);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (in)
        fclose(in);
    unlink(nvm);
    rmdir(dir);
    return rc;
}

/* TCP for the host tools: listening on every address a host name resolves to, connecting with
 * a timeout, naming peers, and the monotonic clock the timeouts are measured with. IPv4 and
 * IPv6 alike (getaddrinfo). */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_LISTEN_MAX 4u        /* sockets of one net_listen ("localhost": 127.0.0.1, ::1) */
#define NET_NAME_MAX 300u        /* "[v6 address]:port" and its NUL, with room */

/* Monotonic milliseconds. */
long long net_now_ms(void);

/* Listens on every address host resolves to (NULL or "": all IPv4 and IPv6 addresses), on one
 * port: port "0" picks a free one, which every address then shares. Sockets are close-on-exec,
 * SO_REUSEADDR, IPv6 sockets IPv6-only. Returns the number of sockets (1..max) in fds with the
 * port in *bound, or -1 with a message in err. */
int net_listen(const char *host, const char *port, int *fds, unsigned max, unsigned *bound,
               char *err, size_t errlen);

/* Connects to host:port (every address in turn), each attempt within timeout_ms. name is the
 * peer in messages ("the central at HOST:PORT"). Returns a blocking, close-on-exec socket with
 * TCP_NODELAY, or -1 with a message in err. */
int net_connect(const char *host, const char *port, int timeout_ms, const char *name, char *err,
                size_t errlen);

/* "HOST:PORT", or "[HOST]:PORT" for an IPv6 address. */
void net_host_port(const char *host, const char *port, char *out, size_t cap);

/* The numeric address and port of a peer, as net_host_port writes them ("a client" when it
 * cannot be told). */
void net_peer_name(const struct sockaddr_storage *ss, socklen_t sl, char *out, size_t cap);

#endif

/* The central server's view of its CRL file: the last good version, read again whenever the
 * file changes (another inode, size or modification time: `icissue cert revoke` replaces it by
 * a rename), so a revocation takes effect at the next connection without a restart. A version
 * is good when it parses and was signed by the CA. Thread-safe: one mutex. */
#ifndef CENTRAL_CRLWATCH_H
#define CENTRAL_CRLWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct central_crlwatch;

/* Reads and checks the CRL at path against the CA certificate ca_pem (ca_len bytes and a NUL).
 * Returns 0 with *w, or -1 with a message in err. */
int central_crlwatch_open(const char *path, const uint8_t *ca_pem, size_t ca_len,
                          struct central_crlwatch **w, char *err, size_t errlen);

/* The current CRL, first read again if the file changed. *version gets its number (1 for the
 * first version, one more for each good change since); *reloaded tells that it was read again
 * now (for the log). With pem not NULL, *pem gets a heap copy of its PEM text (*len bytes and a
 * NUL; free it). Returns 0, or -1 with the reason in err when the file is gone, unreadable or not
 * a good CRL of the CA: then no client may be let in (a revocation could be hidden in it). */
int central_crlwatch_get(struct central_crlwatch *w, unsigned long *version, bool *reloaded,
                         uint8_t **pem, size_t *len, char *err, size_t errlen);

/* Frees the watcher (NULL is fine). */
void central_crlwatch_close(struct central_crlwatch *w);

#endif

/* Reading a small file whole into memory (certificates, private keys, CRLs). A file that holds
 * a secret must be a regular file that neither group nor others can access, as for the secrets
 * files of secrets.h; its bytes are wiped when freed. */
#ifndef READFILE_H
#define READFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads path (at most max bytes) into *out, a heap buffer with a NUL after the *len bytes (so
 * PEM parsers can be given *len + 1). what names the file in messages ("CA key file"). With
 * secret, a file that is not regular or is accessible by group or others is refused. Returns 0,
 * or -1 with a message in err ("cannot open CA key file ca.key: No such file or directory");
 * the message never holds the file's contents. Free with readfile_free. */
int readfile_load(const char *path, const char *what, size_t max, bool secret, uint8_t **out,
                  size_t *len, char *err, size_t errlen);

/* Wipes len + 1 bytes of buf and frees it (NULL is fine). */
void readfile_free(uint8_t *buf, size_t len);

#endif

#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

int readfile_load(const char *path, const char *what, size_t max, bool secret, uint8_t **out,
                  size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no %s given", what);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s %.300s: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s %.300s: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %.300s is not a regular file", what, path);
        close(fd);
        return -1;
    }
    if (secret && (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s %.300s is accessible by group or others (mode %04o): "
                 "refusing to use it; run chmod 600 on it", what, path,
                 (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if ((uintmax_t)st.st_size > max) {
        snprintf(err, errlen, "%s %.300s is larger than %zu bytes", what, path, max);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1; /* the file may grow while read: never beyond cap */
    uint8_t *buf = malloc(cap + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -1;
    }
    size_t n = 0;
    while (n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s %.300s: %s", what, path, strerror(errno));
            close(fd);
            readfile_free(buf, cap);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (n == cap) {
        snprintf(err, errlen, "%s %.300s changed while it was read", what, path);
        readfile_free(buf, cap);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void readfile_free(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    mbedtls_platform_zeroize(buf, len + 1);
    free(buf);
}

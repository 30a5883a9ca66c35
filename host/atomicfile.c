#include "atomicfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Directory part of path into dir ("." when none). Returns 0 or -1 when it does not fit. */
static int parent_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return (size_t)snprintf(dir, cap, ".") >= cap ? -1 : 0;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n + 1 > cap)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int atomic_sync_parent(const char *path)
{
    char dir[ATOMICFILE_PATH_MAX];
    if (parent_of(path, dir, sizeof dir) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static mode_t current_umask(void)
{
    mode_t m = umask(077);
    umask(m);
    return m;
}

int atomic_file_open(struct atomic_file *a, const char *path, int mode, char *err,
                     size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "empty output path");
        return -1;
    }
    if ((size_t)snprintf(a->path, sizeof a->path, "%s", path) >= sizeof a->path ||
        (size_t)snprintf(a->tmp, sizeof a->tmp, "%s" ATOMICFILE_TMP_MARK "XXXXXX", path) >=
            sizeof a->tmp) {
        snprintf(err, errlen, "path too long: %.200s...", path);
        a->tmp[0] = '\0';
        return -1;
    }
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file next to %s: %s", path,
                 strerror(errno));
        a->tmp[0] = '\0';
        return -1;
    }
    mode_t m = mode < 0 ? (mode_t)0666 & ~current_umask() : (mode_t)mode & 07777;
    if (fchmod(fd, m) != 0) {
        snprintf(err, errlen, "cannot set the mode of %s: %s", a->tmp, strerror(errno));
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return -1;
    }
    a->f = fdopen(fd, "wb");
    if (a->f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", a->tmp, strerror(errno));
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

int atomic_file_commit(struct atomic_file *a, char *err, size_t errlen)
{
    if (a->f == NULL || a->tmp[0] == '\0') {
        snprintf(err, errlen, "no temporary file open for %s", a->path);
        return -1;
    }
    const char *what = NULL;
    int saved = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) {
        what = "write";
        saved = errno;
    } else if (fsync(fileno(a->f)) != 0) {
        what = "fsync";
        saved = errno;
    }
    if (fclose(a->f) != 0 && what == NULL) {
        what = "close";
        saved = errno;
    }
    a->f = NULL;
    if (what == NULL && rename(a->tmp, a->path) != 0) {
        what = "rename";
        saved = errno;
    }
    if (what != NULL) {
        snprintf(err, errlen, "cannot write %s (%s of %s failed: %s); %s is unchanged", a->path,
                 what, a->tmp, strerror(saved != 0 ? saved : EIO), a->path);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return -1;
    }
    a->tmp[0] = '\0';
    if (atomic_sync_parent(a->path) != 0) {
        snprintf(err, errlen, "wrote %s, but cannot fsync its directory: %s", a->path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

void atomic_file_abort(struct atomic_file *a)
{
    if (a->f != NULL) {
        fclose(a->f);
        a->f = NULL;
    }
    if (a->tmp[0] != '\0') {
        unlink(a->tmp);
        a->tmp[0] = '\0';
    }
}

static int is_tmp_suffix(const char *s)
{
    if (strlen(s) != 6)
        return 0;
    for (int i = 0; i < 6; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

int atomic_file_clean_stale(const char *path, unsigned *removed, char *err, size_t errlen)
{
    char dir[ATOMICFILE_PATH_MAX];
    if (parent_of(path, dir, sizeof dir) != 0) {
        snprintf(err, errlen, "path too long: %.200s...", path);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    size_t blen = strlen(base), mlen = strlen(ATOMICFILE_TMP_MARK);
    if (blen == 0) {
        snprintf(err, errlen, "%s names a directory, not a file", path);
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read the directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 ||
            strncmp(name + blen, ATOMICFILE_TMP_MARK, mlen) != 0 ||
            !is_tmp_suffix(name + blen + mlen))
            continue;
        char p[ATOMICFILE_PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlink(p) != 0) {
            snprintf(err, errlen, "cannot remove the stale temporary file %s: %s", p,
                     strerror(errno));
            rc = -1;
            break;
        }
        if (removed != NULL)
            (*removed)++;
    }
    closedir(d);
    return rc;
}

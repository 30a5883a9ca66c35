/* Replacing a file so that a crash at any instant leaves either the old or the new content:
 * write a temporary file "PATH.tmp-XXXXXX" in the same directory, fsync it, rename it over PATH,
 * fsync the directory. Used for decrypted and encrypted outputs and by recovery. */
#ifndef ATOMICFILE_H
#define ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ATOMICFILE_PATH_MAX 4096u
#define ATOMICFILE_TMP_MARK ".tmp-"

struct atomic_file {
    FILE *f;                         /* write here between open and commit */
    char path[ATOMICFILE_PATH_MAX];  /* the target */
    char tmp[ATOMICFILE_PATH_MAX];   /* the temporary file ("" when none is open) */
};

/* Creates the temporary file next to path with the permission bits mode, exactly (recovery
 * keeps a file's mode); mode < 0: 0666 & ~umask, as a new file gets. Returns 0, or -1 with a
 * message in err. */
int atomic_file_open(struct atomic_file *a, const char *path, int mode, char *err,
                     size_t errlen);

/* Flushes, fsyncs and closes the temporary file, renames it over the target and fsyncs the
 * directory. Returns 0, or -1 with a message in err; on failure before the rename the temporary
 * file is removed and the target is untouched. */
int atomic_file_commit(struct atomic_file *a, char *err, size_t errlen);

/* Closes and removes the temporary file (nothing happens to the target). Safe to call twice and
 * after a commit. */
void atomic_file_abort(struct atomic_file *a);

/* Removes stale temporary files of path ("NAME.tmp-" and 6 characters of [A-Za-z0-9], regular
 * files in the same directory) left by a process that was killed before its rename. Adds the
 * count to *removed (may be NULL). Returns 0, or -1 with a message in err. Only one process at
 * a time may work on a given path. */
int atomic_file_clean_stale(const char *path, unsigned *removed, char *err, size_t errlen);

/* fsyncs the directory that holds path. Returns 0 or -1 (errno set). */
int atomic_sync_parent(const char *path);

#endif

/* Trust checks for the places ryft loads code from (the cpu backend's
 * compile cache, PJRT plugins), and the one safe way to open files there.
 *
 * A directory is trusted when nobody but the current user (and root) can
 * change what it holds: it is a real directory owned by the effective user
 * with no group/other write bit, and every directory above it (after
 * resolving symbolic links) is owned by that user or by root and is either
 * not group/other writable or sticky (as /tmp is). This is OpenSSH's
 * StrictModes rule. */
#ifndef RYFT_CORE_TRUST_H
#define RYFT_CORE_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* true when path is trusted (see above); then real (may be NULL) gets its
 * canonical path. When not, why gets the reason, naming the directory at
 * fault, e.g. "/tmp/c is owned by uid 65534, not by uid 0". allow_root: the
 * directory itself may also be owned by root (a system-wide plugin folder). */
bool ry__dir_trusted(const char *path, bool allow_root, char *real, size_t real_size, char *why, size_t why_size);

/* Create path and any missing parents with mode 0700 (existing ones are left
 * as they are: ry__dir_trusted judges them). false with errno set on error. */
bool ry__mkdirs_private(const char *path);

/* open(2) that never follows a symbolic link in the last component and is
 * close-on-exec; with O_CREAT it also adds O_EXCL, so a name planted in
 * advance is an error instead of a file someone else controls. */
int ry__open_safe(const char *path, int flags, mode_t mode);

/* fd is a regular file owned by the effective user (or by root, with
 * allow_root) and not writable by group or others; false with the reason
 * in why. */
bool ry__file_trusted(int fd, bool allow_root, char *why, size_t why_size);

/* A shared object to dlopen by path: it exists (false and errno ENOENT when
 * not, leaving the error to dlopen), resolves to a file that passes
 * ry__file_trusted(allow_root) in a directory that passes ry__dir_trusted
 * (allow_root). */
bool ry__object_trusted(const char *path, char *why, size_t why_size);

#endif

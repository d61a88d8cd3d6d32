/* Trust checks for directories ryft loads code from, and a safe open
 * (see trust.h). */
#define _DEFAULT_SOURCE /* realpath, S_ISVTX */
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool group_or_other_writable(const struct stat *st) { return (st->st_mode & (S_IWGRP | S_IWOTH)) != 0; }

/* one directory: owner and write bits; sticky ones only as ancestors */
static bool dir_ok(const char *path, bool self, bool allow_root, char *why, size_t why_size) {
  struct stat st;
  uid_t me = geteuid();
  if (lstat(path, &st) != 0) {
    snprintf(why, why_size, "cannot stat %s: %s", path, strerror(errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, why_size, "%s is not a directory", path);
    return false;
  }
  if (st.st_uid != me && !((allow_root || !self) && st.st_uid == 0)) {
    snprintf(why, why_size, "%s is owned by uid %ld, not by uid %ld", path, (long)st.st_uid, (long)me);
    return false;
  }
  if (group_or_other_writable(&st) && (self || !(st.st_mode & S_ISVTX))) {
    snprintf(why, why_size, "%s is writable by group or others (mode %04o)", path, (unsigned)(st.st_mode & 07777));
    return false;
  }
  return true;
}

bool ry__dir_trusted(const char *path, bool allow_root, char *real, size_t real_size, char *why, size_t why_size) {
  char canon[PATH_MAX];
  if (!path || !*path) {
    snprintf(why, why_size, "empty directory name");
    return false;
  }
  if (!realpath(path, canon)) {
    snprintf(why, why_size, "cannot resolve %s: %s", path, strerror(errno));
    return false;
  }
  if (!dir_ok(canon, true, allow_root, why, why_size)) return false;
  /* every ancestor of the canonical path, "/" included */
  char up[PATH_MAX];
  snprintf(up, sizeof up, "%s", canon);
  for (char *slash = strrchr(up, '/'); slash; slash = strrchr(up, '/')) {
    if (slash == up) {
      if (!dir_ok("/", false, false, why, why_size)) return false;
      break;
    }
    *slash = 0;
    if (!dir_ok(up, false, false, why, why_size)) return false;
  }
  if (real) snprintf(real, real_size, "%s", canon);
  return true;
}

bool ry__mkdirs_private(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return false;
  }
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0700) != 0 && errno != EEXIST) return false;
      *p = '/';
    }
  return mkdir(buf, 0700) == 0 || errno == EEXIST;
}

int ry__open_safe(const char *path, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (flags & O_CREAT) flags |= O_EXCL;
  return open(path, flags, mode);
}

bool ry__file_trusted(int fd, bool allow_root, char *why, size_t why_size) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(why, why_size, "cannot stat: %s", strerror(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, why_size, "not a regular file");
    return false;
  }
  if (st.st_uid != geteuid() && !(allow_root && st.st_uid == 0)) {
    snprintf(why, why_size, "owned by uid %ld, not by uid %ld", (long)st.st_uid, (long)geteuid());
    return false;
  }
  if (group_or_other_writable(&st)) {
    snprintf(why, why_size, "writable by group or others (mode %04o)", (unsigned)(st.st_mode & 07777));
    return false;
  }
  return true;
}

bool ry__object_trusted(const char *path, char *why, size_t why_size) {
  char canon[PATH_MAX];
  if (!realpath(path, canon)) {
    snprintf(why, why_size, "cannot resolve %s: %s", path, strerror(errno));
    return false;
  }
  int fd = open(canon, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, why_size, "cannot open %s: %s", canon, strerror(errno));
    return false;
  }
  char fwhy[200];
  bool ok = ry__file_trusted(fd, true, fwhy, sizeof fwhy);
  close(fd);
  if (!ok) {
    snprintf(why, why_size, "%s is %s", canon, fwhy);
    return false;
  }
  char *slash = strrchr(canon, '/');
  if (slash == canon) slash[1] = 0;
  else *slash = 0;
  return ry__dir_trusted(canon, true, NULL, 0, why, why_size);
}

/* Whole-file reads and atomic writes (temp file + fsync + rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/trust.h"
#include "io_internal.h"

ry_status (*ry__atomic_write_hook)(const char *final_path, size_t written);

ry_status ry__read_file(const char *path, unsigned char **buf, size_t *size) {
  *buf = NULL;
  *size = 0;
  if (!path) return ry__err(RY_ERR_INVALID_ARGUMENT, "NULL path");
  FILE *f = fopen(path, "rb");
  if (!f) return ry__err(RY_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    fclose(f);
    return ry__err(RY_ERR_IO, "%s: not a regular file%s%s", path, e ? ": " : "", e ? strerror(e) : "");
  }
  size_t n = (size_t)st.st_size;
  unsigned char *b = ry__malloc(n + 1);
  if (!b) {
    fclose(f);
    return ry__err(RY_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, n);
  }
  size_t got = n ? fread(b, 1, n, f) : 0;
  int err = ferror(f);
  fclose(f);
  if (got != n || err) {
    ry__free(b, n + 1);
    return ry__err(RY_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, n);
  }
  b[n] = 0;
  *buf = b;
  *size = n;
  return NULL;
}

ry_status ry__atomic_open(ry_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  if (!path || !*path) return ry__err(RY_ERR_INVALID_ARGUMENT, "empty path");
  if (strlen(path) >= sizeof f->path) return ry__err(RY_ERR_INVALID_ARGUMENT, "%.100s...: path too long", path);
  snprintf(f->path, sizeof f->path, "%s", path);
  snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
  /* a predictable name: never follow or reuse one planted there (a stale one
     of a crashed process with this pid is removed: unlink never follows) */
  unlink(f->tmp);
  int fd = ry__open_safe(f->tmp, O_WRONLY | O_CREAT, 0666);
  FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!fp && fd >= 0) close(fd);
  if (!fp) return ry__err(RY_ERR_IO, "%s: cannot create %s: %s", path, f->tmp, strerror(errno));
  f->fp = fp;
  return NULL;
}

void ry__atomic_abort(ry_atomic_file *f) {
  if (f->fp) fclose((FILE *)f->fp);
  f->fp = NULL;
  if (f->tmp[0]) remove(f->tmp);
  f->tmp[0] = 0;
}

ry_status ry__atomic_write(ry_atomic_file *f, const void *data, size_t n) {
  if (!f->fp) return ry__err(RY_ERR_IO, "%s: write after close", f->path);
  if (n && fwrite(data, 1, n, (FILE *)f->fp) != n) {
    ry_status s = ry__err(RY_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    ry__atomic_abort(f);
    return s;
  }
  f->written += n;
  if (ry__atomic_write_hook) {
    ry_status s = ry__atomic_write_hook(f->path, f->written);
    if (s) {
      ry__atomic_abort(f);
      return s;
    }
  }
  return NULL;
}

ry_status ry__atomic_commit(ry_atomic_file *f) {
  FILE *fp = f->fp;
  if (!fp) return ry__err(RY_ERR_IO, "%s: commit after close", f->path);
  if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
    ry_status s = ry__err(RY_ERR_IO, "%s: flush failed: %s", f->path, strerror(errno));
    ry__atomic_abort(f);
    return s;
  }
  f->fp = NULL;
  if (fclose(fp) != 0) {
    ry_status s = ry__err(RY_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    ry__atomic_abort(f);
    return s;
  }
  if (rename(f->tmp, f->path) != 0) {
    ry_status s = ry__err(RY_ERR_IO, "%s: rename from %s failed: %s", f->path, f->tmp, strerror(errno));
    ry__atomic_abort(f);
    return s;
  }
  f->tmp[0] = 0;
  /* make the rename durable */
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", f->path);
  char *slash = strrchr(dir, '/');
  if (slash) *(slash == dir ? slash + 1 : slash) = 0;
  else snprintf(dir, sizeof dir, ".");
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return NULL;
}

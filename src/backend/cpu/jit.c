/* The compiler driver and the compile cache of the cpu backend.
 *
 * A module's key hashes its C source, the compiler flags and the compiler's
 * version line. Lookup order: modules loaded in this process (refcounted;
 * up to IDLE_MAX unused ones stay loaded), then the disk cache
 * ($RYFT_CACHE_DIR, else $XDG_CACHE_HOME/ryft, else ~/.cache/ryft, else
 * $TMPDIR-or-/tmp/ryft-cache-<euid>), then the compiler: `$RYFT_CC
 * $RYFT_CFLAGS -fPIC -shared` (default `cc -O3 -march=native`). A disk
 * entry is <key>.so followed by a trailer (magic, length, checksum) that is
 * verified before dlopen; it is written to a temporary name and renamed into
 * place, so concurrent processes never see a partial file. A bad entry is
 * reported once on stderr and rebuilt.
 *
 * Whoever can write the cache directory chooses the code that runs, so it
 * is created 0700 and used only when trusted (core/trust.h: ours, no
 * group/other write, nor on any directory above it); entries are opened
 * without following symbolic links and must be ours and not group/other
 * writable, temporary files are created O_EXCL. An untrusted directory is
 * reported once and bypassed: modules are then compiled in a private
 * mkdtemp directory and unlinked as soon as they are loaded. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../core/trust.h"
#include "jit.h"
#include "tune.h"

extern char **environ;

#define IDLE_MAX 16
#define SPLIT_MIN_BYTES 24000 /* smaller modules: one compiler process */
#define DEFAULT_CFLAGS "-O3 -march=native -fno-math-errno -fno-trapping-math"

struct ryc_module {
  ryc_module *next;
  char key[40];
  void *handle;
  int refs;
  unsigned long last_use;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ryc_module *g_mods;
static unsigned long g_tick;
static ryc_cache_stats g_stats;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_have_cc;
static char g_cc[256], g_cflags[1024], g_ccver[256];

/* ---- hashing ---- */

uint64_t ryc_fnv(const void *p, size_t n, uint64_t h) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

/* ---- running a command ---- */

int ryc_run_sh(const char *cmd) {
  pid_t pid;
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0) return -1;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* 'x' with embedded quotes escaped, for sh */
void ryc_shquote(const char *s, char *out, size_t size) {
  size_t n = 0;
  if (size < 3) return;
  out[n++] = '\'';
  for (; *s && n + 5 < size; s++) {
    if (*s == '\'') {
      memcpy(out + n, "'\\''", 4);
      n += 4;
    } else {
      out[n++] = *s;
    }
  }
  out[n++] = '\'';
  out[n] = 0;
}

static void detect(void) {
  const char *cc = getenv("RYFT_CC"), *fl = getenv("RYFT_CFLAGS");
  snprintf(g_cc, sizeof g_cc, "%s", cc && *cc ? cc : "cc");
  snprintf(g_cflags, sizeof g_cflags, "%s", fl ? fl : DEFAULT_CFLAGS);
  char tmpl[] = "/tmp/ryft-ccver-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return;
  close(fd);
  char cmd[1024], q[512];
  ryc_shquote(tmpl, q, sizeof q);
  snprintf(cmd, sizeof cmd, "%s --version > %s 2>/dev/null", g_cc, q);
  int rc = ryc_run_sh(cmd);
  FILE *f = fopen(tmpl, "r");
  if (f) {
    if (!fgets(g_ccver, sizeof g_ccver, f)) g_ccver[0] = 0;
    fclose(f);
  }
  unlink(tmpl);
  g_have_cc = rc == 0 && g_ccver[0];
  /* the default flags get this machine's measured vector width (tune.c) */
  int w = g_have_cc && !fl ? ryc_tune_vector_width(g_cc, g_cflags, g_ccver, NULL) : 0;
  if (w) {
    size_t n = strlen(g_cflags);
    snprintf(g_cflags + n, sizeof g_cflags - n, " -mprefer-vector-width=%d", w);
  }
}

bool ryc_have_compiler(void) {
  pthread_once(&g_once, detect);
  return g_have_cc;
}

/* ---- the cache directory ---- */

void ryc_cache_dir(char *buf, size_t size) {
  const char *d = getenv("RYFT_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME"), *t = getenv("TMPDIR");
  if (d && *d) snprintf(buf, size, "%s", d);
  else if (x && *x) snprintf(buf, size, "%s/ryft", x);
  else if (h && *h) snprintf(buf, size, "%s/.cache/ryft", h);
  else snprintf(buf, size, "%s/ryft-cache-%ld", t && *t ? t : "/tmp", (long)geteuid());
}

static char g_warned[PATH_MAX]; /* the untrusted directory last reported (under g_lock) */

/* The disk cache directory, created 0700 where missing, as a canonical path
 * in dir; false when it is not trusted (trust.h): that is said once per
 * directory on stderr (unless quiet: a lookup that will be followed by a
 * compile, which says it), and the caller compiles without the disk cache. */
bool ryc_cache_dir_trusted(char *dir, size_t size, bool quiet) {
  char want[PATH_MAX], why[PATH_MAX + 128];
  ryc_cache_dir(want, sizeof want);
  bool ok;
  if (access(want, F_OK) != 0 && !ry__mkdirs_private(want)) {
    snprintf(why, sizeof why, "cannot create it: %s", strerror(errno));
    ok = false;
  } else {
    ok = ry__dir_trusted(want, false, dir, size, why, sizeof why);
  }
  if (ok || quiet) return ok;
  pthread_mutex_lock(&g_lock);
  bool say = strcmp(g_warned, want) != 0;
  if (say) snprintf(g_warned, sizeof g_warned, "%s", want);
  g_stats.untrusted++;
  pthread_mutex_unlock(&g_lock);
  if (say)
    fprintf(stderr, "ryft: cpu: not using the compile cache %s: %s; compiling without the disk cache\n", want, why);
  return false;
}

/* Without a trusted cache: a private directory of this process (mkdtemp,
 * 0700, under $TMPDIR when that is trusted, else /tmp), emptied as each
 * module is loaded and removed at exit. */
static char g_private[PATH_MAX];
static pthread_once_t g_private_once = PTHREAD_ONCE_INIT;

static void private_remove(void) { rmdir(g_private); }

static void private_make(void) {
  const char *t = getenv("TMPDIR");
  char why[PATH_MAX + 128], path[PATH_MAX];
  bool tmpdir_ok = t && *t && ry__dir_trusted(t, true, NULL, 0, why, sizeof why);
  snprintf(path, sizeof path, "%s/ryft-jit-XXXXXX", tmpdir_ok ? t : "/tmp");
  if (mkdtemp(path) && ry__dir_trusted(path, false, g_private, sizeof g_private, why, sizeof why)) atexit(private_remove);
  else g_private[0] = 0;
}

/* ---- disk entries ---- */

#define TRAILER_MAGIC "RYFTSO01"
typedef struct {
  char magic[8];
  uint64_t len, sum;
} trailer;

/* 0 = valid, 1 = missing, 2 = corrupt or untrusted (reason in why). The
 * entry is opened without following a symbolic link, and must be a regular
 * file of this user that nobody else may write. */
static int check_entry(const char *path, char *why, size_t why_size) {
  int fd = ry__open_safe(path, O_RDONLY, 0);
  if (fd < 0) {
    if (errno == ENOENT) return 1;
    snprintf(why, why_size, "%s", errno == ELOOP ? "a symbolic link (not followed)" : strerror(errno));
    return 2;
  }
  if (!ry__file_trusted(fd, false, why, why_size)) {
    close(fd);
    return 2;
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    snprintf(why, why_size, "unreadable");
    return 2;
  }
  int rc = 2;
  snprintf(why, why_size, "unreadable");
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size < (long)sizeof(trailer)) {
      snprintf(why, why_size, "truncated");
    } else {
      trailer t;
      uint64_t h = 1469598103934665603ull, left = (uint64_t)size - sizeof t;
      char buf[65536];
      rewind(f);
      bool ok = true;
      while (left > 0 && ok) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        ok = fread(buf, 1, want, f) == want;
        h = ryc_fnv(buf, want, h);
        left -= want;
      }
      ok = ok && fread(&t, sizeof t, 1, f) == 1;
      const char *bad = !ok                                           ? "unreadable"
                        : memcmp(t.magic, TRAILER_MAGIC, 8) != 0     ? "truncated or not written by ryft (no trailer)"
                        : t.len != (uint64_t)size - sizeof t          ? "truncated (length mismatch)"
                        : t.sum != h                                  ? "checksum mismatch"
                                                                      : NULL;
      if (bad) snprintf(why, why_size, "%s", bad);
      else rc = 0;
    }
  }
  fclose(f);
  return rc;
}

/* Also makes the entry 0700 whatever the umask: check_entry refuses one
 * that group or others may write. */
static bool append_trailer(const char *path) {
  int fd = ry__open_safe(path, O_RDWR, 0);
  if (fd < 0) return false;
  FILE *f = fchmod(fd, 0700) == 0 ? fdopen(fd, "r+b") : NULL;
  if (!f) {
    close(fd);
    return false;
  }
  uint64_t h = 1469598103934665603ull, len = 0;
  char buf[65536];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
    h = ryc_fnv(buf, k, h);
    len += k;
  }
  trailer t;
  memcpy(t.magic, TRAILER_MAGIC, 8);
  t.len = len;
  t.sum = h;
  bool ok = fseek(f, 0, SEEK_END) == 0 && fwrite(&t, sizeof t, 1, f) == 1;
  ok = (fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0 || true) && ok;
  return (fclose(f) == 0) && ok;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Where to cut a big module in two (0: do not): at the RYC_SPLIT marker
 * nearest its middle. Both halves get the prelude (everything up to
 * RYC_PRELUDE_END); a module without that marker is never cut. */
static size_t split_point(const char *src, size_t len, size_t *prelude) {
  const char *end = strstr(src, RYC_PRELUDE_END);
  const char *first = end ? strstr(end, RYC_SPLIT) : NULL;
  if (!first || len < SPLIT_MIN_BYTES || sysconf(_SC_NPROCESSORS_ONLN) < 2) return 0;
  *prelude = (size_t)(end - src) + strlen(RYC_PRELUDE_END);
  size_t mid = *prelude + (len - *prelude) / 2, best = 0;
  for (const char *m = first; m; m = strstr(m + 1, RYC_SPLIT)) {
    size_t at = (size_t)(m - src);
    if (at > *prelude && (!best || (at > mid ? at - mid : mid - at) < (best > mid ? best - mid : mid - best))) best = at;
  }
  return best;
}

int ryc_module_processes(const char *src, size_t len) {
  size_t prelude;
  return split_point(src, len, &prelude) ? 2 : 1;
}

/* a new temporary file: never one planted under its name (O_EXCL, O_NOFOLLOW) */
static bool write_file(const char *path, const char *a, size_t na, const char *b, size_t nb) {
  unlink(path); /* a stale one of a crashed process with this pid */
  int fd = ry__open_safe(path, O_WRONLY | O_CREAT, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    return false;
  }
  bool ok = fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
  return (fclose(f) == 0) && ok;
}

static ry_status compile_to(const char *dir, const char *key, const char *src, size_t len, const char *final,
                            const ryc_dump *d, bool *split) {
  static atomic_uint counter;
  unsigned c = atomic_fetch_add(&counter, 1);
  char base[900], csrc[1000], csrc2[1000], obj[1000], obj2[1000], so[1000], err[1000], err2[1000];
  if (strlen(dir) > 800) return ry__err(RY_ERR_IO, "cpu: the cache directory name is too long: %.100s...", dir);
  snprintf(base, sizeof base, "%.800s/tmp-%s-%ld-%u", dir, key, (long)getpid(), c);
  snprintf(csrc, sizeof csrc, "%s.c", base);
  snprintf(csrc2, sizeof csrc2, "%s-2.c", base);
  snprintf(obj, sizeof obj, "%s.o", base);
  snprintf(obj2, sizeof obj2, "%s-2.o", base);
  snprintf(so, sizeof so, "%s.so", base);
  snprintf(err, sizeof err, "%s.err", base);
  snprintf(err2, sizeof err2, "%s-2.err", base);
  /* a big module is compiled as two halves at once (one per core), then linked */
  size_t prelude = 0, cut = split_point(src, len, &prelude);
  bool ok = cut ? write_file(csrc, src, cut, NULL, 0) && write_file(csrc2, src, prelude, src + cut, len - cut)
                : write_file(csrc, src, len, NULL, 0);
  if (!ok) {
    unlink(csrc);
    unlink(csrc2);
    return ry__err(RY_ERR_IO, "cpu: cannot write %s", csrc);
  }
  char qc[1100], qc2[1100], qo[1100], qo2[1100], qs[1100], qe[1100], qe2[1100];
  ryc_shquote(csrc, qc, sizeof qc);
  ryc_shquote(csrc2, qc2, sizeof qc2);
  ryc_shquote(obj, qo, sizeof qo);
  ryc_shquote(obj2, qo2, sizeof qo2);
  ryc_shquote(so, qs, sizeof qs);
  ryc_shquote(err, qe, sizeof qe);
  ryc_shquote(err2, qe2, sizeof qe2);
  size_t cmdsz = 16384;
  char *cmd = ry__malloc(cmdsz);
  if (!cmd) {
    unlink(csrc);
    unlink(csrc2);
    return ry__oom();
  }
  double t0 = now_s();
  int rc = -1;
  for (int attempt = 0; attempt < 4 && rc != 0; attempt++) {
    if (attempt == 2) { /* the split build failed both ways: one compiler over the whole module */
      if (!cut || !write_file(csrc, src, len, NULL, 0)) break;
      unlink(err2);
      cut = 0;
    }
    /* odd attempts: no libmvec here, plain libm */
    const char *def = attempt & 1 ? "-DRY_NO_MVEC " : "", *libs = attempt & 1 ? "-lm" : "-lmvec -lm";
    if (cut)
      snprintf(cmd, cmdsz,
               "%s %s %s-fPIC -c -o %s %s 2> %s & p=$!; %s %s %s-fPIC -c -o %s %s 2> %s; r=$?; wait $p || r=1; "
               "[ $r = 0 ] && %s %s -fPIC -shared -o %s %s %s %s 2>> %s",
               g_cc, g_cflags, def, qo, qc, qe, g_cc, g_cflags, def, qo2, qc2, qe2, g_cc, g_cflags, qs, qo, qo2, libs,
               qe);
    else
      snprintf(cmd, cmdsz, "%s %s %s-fPIC -shared -o %s %s %s 2> %s", g_cc, g_cflags, def, qs, qc, libs, qe);
    rc = ryc_run_sh(cmd);
  }
  double t1 = now_s();
  FILE *log = ryc_dump_open(d, "compile.txt");
  if (log) {
    fprintf(log, "command: %s\ncompiler: %sexit: %d\ntime: %.3f s\nsource bytes: %zu\nentry: %s\n", cmd, g_ccver, rc,
            t1 - t0, len, final);
    fclose(log);
  }
  ry_status s = NULL;
  if (rc != 0) {
    char msg[2048] = "";
    size_t k = 0;
    const char *errs[2] = {err, err2};
    for (int i = 0; i < 2; i++) {
      FILE *e = fopen(errs[i], "r");
      if (!e) continue;
      k += fread(msg + k, 1, sizeof msg - 1 - k, e);
      fclose(e);
    }
    msg[k] = 0;
    s = ry__err(RY_ERR_INTERNAL, "cpu: the C compiler failed (%s, exit %d): %s", g_cc, rc, msg);
  } else if (!append_trailer(so)) {
    s = ry__err(RY_ERR_IO, "cpu: cannot finish %s", so);
  } else if (rename(so, final) != 0) {
    s = ry__err(RY_ERR_IO, "cpu: cannot move %s to %s: %s", so, final, strerror(errno));
  }
  *split = !s && cut;
  ry__free(cmd, cmdsz);
  const char *tmp[] = {csrc, csrc2, obj, obj2, err, err2, so};
  for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) unlink(tmp[i]);
  return s;
}

/* ---- modules ---- */

static void key_of(const char *src, size_t len, char out[40]) {
  uint64_t a = ryc_fnv(src, len, 1469598103934665603ull), b = ryc_fnv(src, len, 0x9e3779b97f4a7c15ull);
  a = ryc_fnv(g_cflags, strlen(g_cflags) + 1, a);
  a = ryc_fnv(g_ccver, strlen(g_ccver) + 1, a);
  b = ryc_fnv(g_cflags, strlen(g_cflags) + 1, b);
  b = ryc_fnv(g_ccver, strlen(g_ccver) + 1, b);
  snprintf(out, 40, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static void trim_locked(int keep) {
  for (;;) {
    int idle = 0;
    ryc_module *oldest = NULL;
    for (ryc_module *m = g_mods; m; m = m->next)
      if (m->refs == 0) {
        idle++;
        if (!oldest || m->last_use < oldest->last_use) oldest = m;
      }
    if (idle <= keep || !oldest) return;
    for (ryc_module **pp = &g_mods; *pp; pp = &(*pp)->next)
      if (*pp == oldest) {
        *pp = oldest->next;
        break;
      }
    dlclose(oldest->handle);
    ry__free(oldest, sizeof *oldest);
  }
}

void ryc_cache_trim(void) {
  pthread_mutex_lock(&g_lock);
  trim_locked(0);
  pthread_mutex_unlock(&g_lock);
}

/* The memory cache, then the disk cache, then (when `compile`) the
 * compiler. Without `compile` a miss leaves *out NULL and says nothing (a
 * corrupt entry is reported and rebuilt by the compiling call). */
static ry_status module_get(const char *src, size_t len, const ryc_dump *d, bool compile, ryc_module **out) {
  *out = NULL;
  if (!ryc_have_compiler()) return ry__err(RY_ERR_UNSUPPORTED, "cpu: no C compiler (%s) found", g_cc);
  char key[40];
  key_of(src, len, key);
  pthread_mutex_lock(&g_lock);
  for (ryc_module *m = g_mods; m; m = m->next)
    if (strcmp(m->key, key) == 0) {
      m->refs++;
      m->last_use = ++g_tick;
      g_stats.mem_hits++;
      pthread_mutex_unlock(&g_lock);
      *out = m;
      return NULL;
    }
  pthread_mutex_unlock(&g_lock);

  char dir[PATH_MAX], path[PATH_MAX + 64], why[256];
  bool cached = ryc_cache_dir_trusted(dir, sizeof dir, !compile);
  int st = 1;
  if (cached) {
    snprintf(path, sizeof path, "%s/%s.so", dir, key);
    st = check_entry(path, why, sizeof why);
  }
  if (!compile && st != 0) return NULL;
  if (!cached) {
    pthread_once(&g_private_once, private_make);
    if (!g_private[0]) return ry__err(RY_ERR_IO, "cpu: cannot create a private directory to compile in under /tmp");
    static atomic_uint seq; /* names unique in this process: each file is unlinked once loaded */
    snprintf(dir, sizeof dir, "%s", g_private);
    snprintf(path, sizeof path, "%s/%s-%u.so", dir, key, atomic_fetch_add(&seq, 1));
  }
  ry_status s = NULL;
  bool compiled = false, split = false;
  if (st == 2) {
    fprintf(stderr, "ryft: cpu: cache entry %s is corrupt (%s); rebuilding it\n", path, why);
    pthread_mutex_lock(&g_lock);
    g_stats.corrupt++;
    pthread_mutex_unlock(&g_lock);
  }
  if (st != 0) {
    s = compile_to(dir, key, src, len, path, d, &split);
    compiled = true;
    if (s) return s;
  }
  /* a trusted directory: only this user can have changed path since it was checked */
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!cached) unlink(path);
  if (!h) {
    const char *e = dlerror();
    return ry__err(RY_ERR_INTERNAL, "cpu: cannot load %s: %s", path, e ? e : "?");
  }
  ryc_module *m = ry__calloc(1, sizeof *m);
  if (!m) {
    dlclose(h);
    return ry__oom();
  }
  snprintf(m->key, sizeof m->key, "%s", key);
  m->handle = h;
  m->refs = 1;
  pthread_mutex_lock(&g_lock);
  m->last_use = ++g_tick;
  if (compiled) g_stats.compiles++;
  else g_stats.disk_hits++;
  if (split) g_stats.split++;
  /* another thread may have loaded it meanwhile: keep one */
  for (ryc_module *o = g_mods; o; o = o->next)
    if (strcmp(o->key, key) == 0) {
      o->refs++;
      pthread_mutex_unlock(&g_lock);
      dlclose(h);
      ry__free(m, sizeof *m);
      *out = o;
      return NULL;
    }
  m->next = g_mods;
  g_mods = m;
  pthread_mutex_unlock(&g_lock);
  *out = m;
  return NULL;
}

ry_status ryc_module_get(const char *src, size_t len, const ryc_dump *d, ryc_module **out) {
  return module_get(src, len, d, true, out);
}

ry_status ryc_module_find(const char *src, size_t len, ryc_module **out) {
  return module_get(src, len, NULL, false, out);
}

void *ryc_module_sym(ryc_module *m, const char *name) { return m ? dlsym(m->handle, name) : NULL; }

void ryc_module_release(ryc_module *m) {
  if (!m) return;
  pthread_mutex_lock(&g_lock);
  m->refs--;
  trim_locked(IDLE_MAX);
  pthread_mutex_unlock(&g_lock);
}

void ryc_cache_stats_get(ryc_cache_stats *s) {
  pthread_mutex_lock(&g_lock);
  *s = g_stats;
  s->live_modules = 0;
  for (ryc_module *m = g_mods; m; m = m->next) s->live_modules++;
  pthread_mutex_unlock(&g_lock);
}

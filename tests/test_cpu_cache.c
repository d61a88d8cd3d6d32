/* Tests of the compile cache's trust boundary (src/core/trust.c, the cache
 * directory of src/backend/cpu/jit.c) and of the cpu backend under
 * concurrency (run by CI's ThreadSanitizer job):
 *
 * - a cache directory writable by group/other, or owned by another user, is
 *   refused with one message naming it and the reason; programs still run
 *   correctly and nothing is written there;
 * - a symbolic link planted as a cache entry is not followed, and an entry
 *   others may write is rebuilt;
 * - the $TMPDIR-or-/tmp fallback (no HOME, no XDG_CACHE_HOME) is created
 *   0700 and used, and one pre-created by another user is refused;
 * - compiles of the same and of different programs from several threads at
 *   once, and several callers of the thread pool at once. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/jit.h"
#include "backend/cpu/tune.h"
#include "cpu_testlib.h"
#include "testlib.h"

#define NOBODY 65534

/* ---- helpers ---- */

typedef struct {
  int saved;
  char path[300];
} captured;

/* stderr into dir/stderr.txt until capture_end, which returns the text */
static void capture_begin(captured *c, const char *dir) {
  snprintf(c->path, sizeof c->path, "%s/stderr.txt", dir);
  fflush(stderr);
  c->saved = dup(2);
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  close(fd);
}

static char *capture_end(captured *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  char *text = rt_read_file(c->path, NULL);
  unlink(c->path);
  return text ? text : strdup("");
}

/* files in dir whose name ends in ".so"; the first one's name into first */
static int count_entries(const char *dir, char *first, size_t size) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 3 || strcmp(e->d_name + len - 3, ".so") != 0) continue;
    if (n++ == 0 && first) snprintf(first, size, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  return n;
}

static void remove_tree(const char *dir) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Run a fresh program twice (the second time as a new process would: the
 * memory cache trimmed) with the cache at dir (RYFT_CACHE_DIR, or NULL: the
 * fallback, named `dir`), which must be refused with the message naming it
 * and `reason`: results right, two compiles, no disk hit, one message,
 * nothing written into dir. */
static void check_refused(const char *dir, bool set_env, const char *reason, double salt) {
  char *old = set_env ? use_cache_dir(dir) : NULL;
  ry_graph *g = salted(salt);
  ryc_cache_stats a, b;
  captured cap;
  char scratch[256];
  temp_dir(scratch, sizeof scratch, "stderr");
  capture_begin(&cap, scratch);
  ryc_cache_stats_get(&a);
  bool ok1 = run_salted(g, salt);
  ryc_cache_trim();
  bool ok2 = run_salted(g, salt);
  ryc_cache_stats_get(&b);
  char *err = capture_end(&cap);
  CHECK_MSG(ok1 && ok2, "the program ran wrong with the cache at %s refused", dir);
  CHECK_EQ_INT(b.compiles, a.compiles + 2);
  CHECK_EQ_INT(b.disk_hits, a.disk_hits);
  CHECK_EQ_INT(b.untrusted, a.untrusted + 2);
  char want[400];
  snprintf(want, sizeof want, "not using the compile cache %s: ", dir);
  CHECK_MSG(count_of(err, want) == 1 && strstr(err, reason) && strstr(err, "without the disk cache"),
            "expected one message naming %s and \"%s\", got: %s", dir, reason, err);
  CHECK_EQ_INT(count_entries(dir, NULL, 0), 0);
  free(err);
  ry_graph_release(g);
  if (set_env) restore_cache_dir(old);
  rmdir(scratch);
}

/* ---- untrusted directories ---- */

TEST(cpu_cache_group_writable_dir_is_refused) {
  char dir[256];
  temp_dir(dir, sizeof dir, "open");
  CHECK(chmod(dir, 0777) == 0);
  check_refused(dir, true, "is writable by group or others (mode 0777)", unique_salt() + 0.0625);
  CHECK(chmod(dir, 0770) == 0);
  char sub[300]; /* a different path, so it is reported again */
  snprintf(sub, sizeof sub, "%s/.", dir);
  check_refused(sub, true, "is writable by group or others (mode 0770)", unique_salt() + 0.125);
  /* a private directory below an open one is refused too (the parent could swap it) */
  snprintf(sub, sizeof sub, "%s/inner", dir);
  CHECK(mkdir(sub, 0700) == 0);
  check_refused(sub, true, "writable by group or others (mode 0770)", unique_salt() + 0.1875);
  remove_tree(dir);
}

TEST(cpu_cache_dir_of_another_user_is_refused) {
  if (geteuid() != 0) {
    rt_skip("root", "chown to nobody needs root");
    return;
  }
  char dir[256];
  temp_dir(dir, sizeof dir, "nobody");
  CHECK(chown(dir, NOBODY, NOBODY) == 0);
  check_refused(dir, true, "is owned by uid 65534, not by uid 0", unique_salt() + 0.25);
  remove_tree(dir);
}

/* ---- entries ---- */

TEST(cpu_cache_symlinked_entry_is_not_followed) {
  char dir[256], other[256];
  temp_dir(dir, sizeof dir, "link");
  temp_dir(other, sizeof other, "linktarget");
  char *old = use_cache_dir(other);
  /* program B's valid entry, outside the cache */
  double sa = unique_salt() + 0.3125, sb = sa + 1.0;
  ry_graph *ga = salted(sa), *gb = salted(sb);
  CHECK(run_salted(gb, sb));
  char target[600], entry[600];
  CHECK_EQ_INT(count_entries(other, target, sizeof target), 1);
  /* program A's entry in the cache, replaced by a link to B's */
  setenv("RYFT_CACHE_DIR", dir, 1);
  CHECK(run_salted(ga, sa));
  CHECK_EQ_INT(count_entries(dir, entry, sizeof entry), 1);
  CHECK(unlink(entry) == 0 && symlink(target, entry) == 0);
  ryc_cache_trim();
  ryc_cache_stats a, b;
  captured cap;
  capture_begin(&cap, other);
  ryc_cache_stats_get(&a);
  bool ok = run_salted(ga, sa); /* B's code would give B's numbers */
  ryc_cache_stats_get(&b);
  char *err = capture_end(&cap);
  CHECK_MSG(ok, "A ran wrong: the planted link was followed?");
  CHECK_EQ_INT(b.disk_hits, a.disk_hits);
  CHECK_EQ_INT(b.corrupt, a.corrupt + 1);
  CHECK_EQ_INT(b.compiles, a.compiles + 1);
  CHECK_MSG(strstr(err, entry) && strstr(err, "symbolic link (not followed)"), "message: %s", err);
  free(err);
  /* the link itself was replaced by a regular file; its target is intact */
  struct stat st;
  CHECK(lstat(entry, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0700);
  CHECK(lstat(target, &st) == 0 && S_ISREG(st.st_mode));
  /* an entry others may write is rebuilt as well */
  CHECK(chmod(entry, 0666) == 0);
  ryc_cache_trim();
  capture_begin(&cap, other);
  ryc_cache_stats_get(&a);
  ok = run_salted(ga, sa);
  ryc_cache_stats_get(&b);
  err = capture_end(&cap);
  CHECK(ok);
  CHECK_EQ_INT(b.corrupt, a.corrupt + 1);
  CHECK_MSG(strstr(err, "writable by group or others (mode 0666)"), "message: %s", err);
  free(err);
  ry_graph_release(ga);
  ry_graph_release(gb);
  restore_cache_dir(old);
  remove_tree(dir);
  remove_tree(other);
}

/* ---- the /tmp fallback ---- */

typedef struct {
  char *home, *xdg, *tmpdir, *cache;
} saved_env;

static char *dup_env(const char *name) { return getenv(name) ? strdup(getenv(name)) : NULL; }

static void put_env(const char *name, char *v) {
  if (v) setenv(name, v, 1);
  else unsetenv(name);
  free(v);
}

/* no RYFT_CACHE_DIR, HOME or XDG_CACHE_HOME; TMPDIR=tmpdir (a scratch
 * directory standing for /tmp, so that the test never touches the real
 * /tmp/ryft-cache-<uid> other processes may use) */
static saved_env fallback_env(const char *tmpdir) {
  saved_env e = {dup_env("HOME"), dup_env("XDG_CACHE_HOME"), dup_env("TMPDIR"), dup_env("RYFT_CACHE_DIR")};
  unsetenv("HOME");
  unsetenv("XDG_CACHE_HOME");
  unsetenv("RYFT_CACHE_DIR");
  setenv("TMPDIR", tmpdir, 1);
  return e;
}

static void restore_env(saved_env e) {
  put_env("HOME", e.home);
  put_env("XDG_CACHE_HOME", e.xdg);
  put_env("TMPDIR", e.tmpdir);
  put_env("RYFT_CACHE_DIR", e.cache);
}

TEST(cpu_cache_tmp_fallback_is_private) {
  char tmp[256], want[400], got[400];
  temp_dir(tmp, sizeof tmp, "fallback");
  CHECK(chmod(tmp, 01777) == 0); /* as /tmp is */
  saved_env e = fallback_env(tmp);
  snprintf(want, sizeof want, "%s/ryft-cache-%ld", tmp, (long)geteuid());
  ryc_cache_dir(got, sizeof got);
  CHECK_STR(got, want);
  double salt = unique_salt() + 0.375;
  ry_graph *g = salted(salt);
  ryc_cache_stats a, b;
  ryc_cache_stats_get(&a);
  CHECK(run_salted(g, salt));
  ryc_cache_trim();
  CHECK(run_salted(g, salt));
  ryc_cache_stats_get(&b);
  CHECK_EQ_INT(b.compiles, a.compiles + 1);
  CHECK_EQ_INT(b.disk_hits, a.disk_hits + 1);
  CHECK_EQ_INT(b.untrusted, a.untrusted);
  struct stat st;
  CHECK(lstat(want, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700 && st.st_uid == geteuid());
  ry_graph_release(g);
  restore_env(e);
  remove_tree(tmp);
}

TEST(cpu_cache_tmp_fallback_precreated_by_another_user_is_refused) {
  if (geteuid() != 0) {
    rt_skip("root", "pre-creating the fallback as nobody needs root");
    return;
  }
  char tmp[256], planted[400];
  temp_dir(tmp, sizeof tmp, "fallback");
  CHECK(chmod(tmp, 01777) == 0);
  saved_env e = fallback_env(tmp);
  /* another user got there first, with a directory anyone may write */
  snprintf(planted, sizeof planted, "%s/ryft-cache-%ld", tmp, (long)geteuid());
  CHECK(mkdir(planted, 0777) == 0 && chmod(planted, 0777) == 0 && chown(planted, NOBODY, NOBODY) == 0);
  check_refused(planted, false, "is owned by uid 65534, not by uid 0", unique_salt() + 0.4375);
  /* the same with a private-looking one (0700) of theirs */
  CHECK(chmod(planted, 0700) == 0);
  char tmp2[300], again[450];
  snprintf(tmp2, sizeof tmp2, "%s/", tmp); /* another spelling: reported again */
  setenv("TMPDIR", tmp2, 1);
  snprintf(again, sizeof again, "%s/ryft-cache-%ld", tmp2, (long)geteuid());
  check_refused(again, false, "is owned by uid 65534, not by uid 0", unique_salt() + 0.5);
  restore_env(e);
  remove_tree(tmp);
}

/* ---- concurrency (the ThreadSanitizer job runs these) ---- */

typedef struct {
  ry_graph *g;
  double salt;
  int fails;
} compiler_arg;

static void *compile_and_run(void *p) {
  compiler_arg *c = p;
  for (int k = 0; k < 3; k++) {
    if (!run_salted(c->g, c->salt)) c->fails++;
    ryc_cache_trim(); /* the next one goes to the disk cache (or compiles) again */
  }
  return NULL;
}

/* Six threads at once: pairs share a program, so the same program and
 * different ones are compiled, loaded, trimmed and read from disk at once;
 * every result is right and each program has one valid entry. */
TEST(cpu_concurrent_compiles_same_and_different_programs) {
  char dir[256];
  temp_dir(dir, sizeof dir, "conc");
  char *old = use_cache_dir(dir);
  enum { PROGS = 3, THREADS = 6 };
  double base = unique_salt() + 0.5625;
  ry_graph *gs[PROGS];
  for (int i = 0; i < PROGS; i++) gs[i] = salted(base + i);
  pthread_t th[THREADS];
  compiler_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (compiler_arg){gs[i % PROGS], base + i % PROGS, 0};
    CHECK(pthread_create(&th[i], NULL, compile_and_run, &args[i]) == 0);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    CHECK_MSG(args[i].fails == 0, "thread %d: %d wrong runs", i, args[i].fails);
  }
  CHECK_EQ_INT(count_entries(dir, NULL, 0), PROGS);
  ryc_cache_stats a, b;
  ryc_cache_trim();
  ryc_cache_stats_get(&a);
  for (int i = 0; i < PROGS; i++) CHECK(run_salted(gs[i], base + i));
  ryc_cache_stats_get(&b);
  CHECK_EQ_INT(b.disk_hits, a.disk_hits + PROGS);
  for (int i = 0; i < PROGS; i++) ry_graph_release(gs[i]);
  restore_cache_dir(old);
  remove_tree(dir);
}

typedef struct {
  int64_t n;
  int64_t *out;
  int fails;
} pool_arg;

static void square_range(void *ctx, int64_t lo, int64_t hi) {
  pool_arg *p = ctx;
  for (int64_t i = lo; i < hi; i++) p->out[i] = i * i + (int64_t)(uintptr_t)p % 7;
}

static void *pool_caller(void *p) {
  pool_arg *a = p;
  for (int round = 0; round < 200; round++) {
    memset(a->out, 0xff, (size_t)a->n * sizeof(int64_t));
    ryc_parallel_for(a->n, 16, square_range, a);
    for (int64_t i = 0; i < a->n; i++)
      if (a->out[i] != i * i + (int64_t)(uintptr_t)a % 7) {
        a->fails++;
        break;
      }
  }
  return NULL;
}

/* Four threads submit jobs to the pool at once (one runs on the pool, the
 * others inline): every element of every job is written exactly right. */
TEST(cpu_pool_concurrent_callers) {
  ryc_set_num_threads(4);
  enum { CALLERS = 4, N = 4096 };
  pthread_t th[CALLERS];
  pool_arg args[CALLERS];
  for (int i = 0; i < CALLERS; i++) {
    args[i] = (pool_arg){N, malloc(N * sizeof(int64_t)), 0};
    CHECK(pthread_create(&th[i], NULL, pool_caller, &args[i]) == 0);
  }
  for (int i = 0; i < CALLERS; i++) {
    pthread_join(th[i], NULL);
    CHECK_MSG(args[i].fails == 0, "caller %d: %d wrong jobs", i, args[i].fails);
    free(args[i].out);
  }
  ryc_set_num_threads(0);
}

/* ryc_tune_parse on n bytes of text */
static int tune_parse(const char *text, size_t n) {
  char buf[1200];
  memcpy(buf, text, n);
  FILE *f = fmemopen(buf, n, "r");
  if (!f) return -1;
  int w = ryc_tune_parse(f);
  fclose(f);
  return w;
}

/* text: a first line of `len` bytes (its newline included, if any), the
   first byte `first` and the others spaces, then `rest` */
static size_t tune_long_line(char *text, char first, size_t len, bool newline, const char *rest) {
  memset(text, ' ', len);
  text[0] = first;
  if (newline) text[len - 1] = '\n';
  memcpy(text + len, rest, strlen(rest));
  return len + strlen(rest);
}

/* The tune file's reader on texts whose answer is known by construction:
 * a width only from a whole line that names 256 or 512, else 0 (measure
 * again); fuzz_tune.c tries any bytes. */
TEST(cpu_tune_file_parse) {
#define TUNE_CASE(lit, want) CHECK_MSG(tune_parse(lit, sizeof lit - 1) == (want), "%s: want %d", #lit, want)
  TUNE_CASE("# ryft: a note\nvector_width 256\n", 256);
  TUNE_CASE("vector_width 512", 512);
  TUNE_CASE("vector_width   256\r\n", 256);
  TUNE_CASE("vector_width 300\nvector_width 512\n", 512);
  TUNE_CASE("vector_width 300\n", 0);
  TUNE_CASE("vector_width -256\n", 0);
  TUNE_CASE("vector_width 4294967552\n", 0); /* 2^32 + 256: sscanf's %d wraps it to 256 */
  TUNE_CASE("vector_width 99999999999999999999999\n", 0);
  TUNE_CASE("vector_width\n", 0);
  TUNE_CASE("vector_widths 256\n", 0);
  TUNE_CASE(" vector_width 256\n", 0);
  TUNE_CASE("", 0);
  TUNE_CASE("vector_width\0 256\n\0vector_width 512\n", 0);
#undef TUNE_CASE
  /* lines about the reader's 512-byte buffer: a width after a long line's
     newline counts, a width in the rest of a long line does not */
  char t[1200];
  const char *w512 = "vector_width 512\n";
  for (size_t len = 509; len <= 513; len++) {
    CHECK_MSG(tune_parse(t, tune_long_line(t, '#', len, true, w512)) == 512, "after a line of %zu bytes", len);
    CHECK_MSG(tune_parse(t, tune_long_line(t, '#', len, false, w512)) == 0, "%zu bytes before it on its line", len);
    CHECK_MSG(tune_parse(t, tune_long_line(t, '\0', len, false, w512)) == 0, "%zu bytes before it, a NUL first", len);
  }
}

/* The per-machine vector width (tune.c): measured once, written to the
 * cache directory, read back without measuring; RYFT_VECTOR_WIDTH chooses;
 * a tune file with a bad value is measured again. */
TEST(cpu_tune_vector_width_is_measured_once) {
  if (!ryc_have_compiler()) {
    rt_skip("cc", "no C compiler");
    return;
  }
  char dir[256];
  temp_dir(dir, sizeof dir, "tune");
  char *old = use_cache_dir(dir);
  const char *cc = "cc", *fl = "-O3 -march=native -fno-math-errno -fno-trapping-math", *ver = "test compiler 1";
  bool measured = true;
  int w = ryc_tune_vector_width(cc, fl, ver, &measured);
  FILE *cpu = fopen("/proc/cpuinfo", "r");
  char line[8192];
  bool avx512 = false;
  while (cpu && !avx512 && fgets(line, sizeof line, cpu)) avx512 = !strncmp(line, "flags", 5) && strstr(line, " avx512f");
  if (cpu) fclose(cpu);
  if (!avx512) {
    CHECK_EQ_INT(w, 0);
    CHECK(!measured);
    rt_skip("avx512", "this CPU has one vector width; nothing to measure");
  } else {
    CHECK_MSG((w == 256 || w == 512) && measured, "width %d, measured %d", w, measured);
    DIR *d = opendir(dir);
    char path[600] = "";
    for (struct dirent *e; d && (e = readdir(d));)
      if (!strncmp(e->d_name, "tune-", 5)) snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (d) closedir(d);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    char text[2048] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    char want[64];
    snprintf(want, sizeof want, "vector_width %d\n", w);
    CHECK_MSG(strstr(text, want) && strstr(text, "gelu"), "tune file %s: %s", path, text);
    /* read back, not measured */
    CHECK_EQ_INT(ryc_tune_vector_width(cc, fl, ver, &measured), w);
    CHECK(!measured);
    /* another compiler: another key, measured again */
    CHECK_EQ_INT(ryc_tune_vector_width(cc, fl, "test compiler 2", &measured) != 0, 1);
    CHECK(measured);
    /* a bad value in the file: measured again and rewritten */
    f = path[0] ? fopen(path, "w") : NULL;
    if (f) fputs("vector_width 300\n", f), fclose(f);
    int w2 = ryc_tune_vector_width(cc, fl, ver, &measured);
    CHECK(measured && (w2 == 256 || w2 == 512));
  }
  setenv("RYFT_VECTOR_WIDTH", "512", 1);
  CHECK_EQ_INT(ryc_tune_vector_width(cc, fl, ver, &measured), 512);
  CHECK(!measured);
  unsetenv("RYFT_VECTOR_WIDTH");
  restore_cache_dir(old);
  remove_tree(dir);
}

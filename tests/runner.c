/* The test runner: runs every registered TEST (or those whose name contains
 * any of argv[1..]) and ends with "N passed, M failed, K skipped". */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "testlib.h"

typedef struct {
  const char *name, *file;
  rt_fn fn;
} rt_test;

static rt_test *g_tests;
static int g_n, g_cap;
static int g_passed, g_failed, g_skipped;
static int g_case_failures; /* failures in the current case */
static int g_case_skipped;  /* the current case called rt_skip */
static char g_skip_reason[256];
static const char *g_case_name;
static int g_in_dynamic;

void rt_register(const char *name, rt_fn fn, const char *file) {
  if (g_n == g_cap) {
    g_cap = g_cap ? g_cap * 2 : 64;
    g_tests = realloc(g_tests, (size_t)g_cap * sizeof *g_tests);
    if (!g_tests) abort();
  }
  g_tests[g_n++] = (rt_test){name, file, fn};
}

void rt_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "  FAIL [%s] %s:%d: ", g_case_name ? g_case_name : "?", file, line);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  g_case_failures++;
}

void rt_check_err(const char *file, int line, const char *expr, ry_status s, ry_code code, ...) {
  if (!s) {
    rt_fail(file, line, "%s succeeded; expected %s", expr, ry_code_name(code));
    return;
  }
  const char *msg = ry_status_message(s);
  if (ry_status_code(s) != code)
    rt_fail(file, line, "%s: code %s, expected %s (message: %s)", expr, ry_code_name(ry_status_code(s)),
            ry_code_name(code), msg);
  va_list ap;
  va_start(ap, code);
  for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *))
    if (!strstr(msg, k)) rt_fail(file, line, "%s: message lacks \"%s\": %s", expr, k, msg);
  va_end(ap);
  ry_status_free(s);
}

int rt_failures_in_case(void) { return g_case_failures; }

/* need is required when RYFT_TEST_REQUIRE is "all" or lists it */
static int required(const char *need) {
  const char *req = getenv("RYFT_TEST_REQUIRE");
  if (!req || !*req) return 0;
  if (!strcmp(req, "all")) return 1;
  size_t n = strlen(need);
  for (const char *p = req; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, need, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int rt_skip(const char *need, const char *fmt, ...) {
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (required(need)) {
    rt_fail("runner", 0, "skipped, but RYFT_TEST_REQUIRE says %s is present: %s", need, why);
    return 1;
  }
  g_case_skipped = 1;
  snprintf(g_skip_reason, sizeof g_skip_reason, "needs %s: %s", need, why);
  return 1;
}

static const char *g_outer_name;
static int g_outer_failures;

void rt_case_begin(const char *name) {
  g_in_dynamic = 1;
  g_outer_failures += g_case_failures;
  g_case_failures = 0;
  g_case_skipped = 0;
  g_case_name = name;
}

void rt_case_end(void) {
  if (g_case_failures)
    g_failed++;
  else if (g_case_skipped)
    g_skipped++;
  else
    g_passed++;
  if (g_case_skipped && !g_case_failures) printf("  skip [%s] %s\n", g_case_name, g_skip_reason);
  g_case_failures = 0;
  g_case_skipped = 0;
  g_case_name = g_outer_name;
}

const char *rt_source_dir(void) { return RYFT_SOURCE_DIR; }

const char *rt_smollm2_path(void) {
  static char buf[1024];
  const char *env = getenv("RYFT_TEST_SMOLLM2");
  if (env && *env) return env;
  const char *cands[2] = {RYFT_BINARY_DIR, RYFT_SOURCE_DIR "/build"};
  for (int i = 0; i < 2; i++) {
    snprintf(buf, sizeof buf, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cands[i]);
    if (access(buf, R_OK) == 0) return buf;
  }
  return NULL;
}

char *rt_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = 0;
    if (len) *len = (size_t)n;
  }
  return buf;
}

char *rt_read_dump(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) return NULL;
  struct dirent *e;
  char best[512] = "";
  while ((e = readdir(d)))
    if (strstr(e->d_name, suffix) && strcmp(e->d_name, best) > 0) snprintf(best, sizeof best, "%s", e->d_name);
  closedir(d);
  if (!best[0]) return NULL;
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, best);
  return rt_read_file(path, NULL);
}

void rt_write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

const char *rt_tmp_path(const char *prefix, const char *name) {
  static char buf[4][1024];
  static int k;
  char *b = buf[k++ & 3];
  char dir[900];
  snprintf(dir, sizeof dir, "%s/test_tmp", RYFT_BINARY_DIR);
  mkdir(dir, 0777);
  snprintf(b, sizeof buf[0], "%s/%s_%ld_%s", dir, prefix, (long)getpid(), name);
  return b;
}

int rt_sh(char *out, size_t size, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = 0;
  out[0] = 0;
  for (size_t got; n + 1 < size && (got = fread(out + n, 1, size - n - 1, p)) > 0;) n += got;
  out[n] = 0;
  char drain[4096];
  while (fread(drain, 1, sizeof drain, p) > 0) {
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static struct {
  long calls, fail_at;
  int all_after, failed;
  long long live;
} g_oom;

/* the size of every block allocated while armed, by address (open
 * addressing), so that a block freed or reallocated with another size than
 * it was allocated with (a lie to a user's allocator) is a failure */
#define OOM_SLOTS (1 << 18)
static struct {
  void *p;
  size_t n;
} g_oom_blocks[OOM_SLOTS];

static size_t oom_slot(void *p) {
  size_t h = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull;
  return (h >> 20) & (OOM_SLOTS - 1);
}

static void oom_track(void *p, size_t n) {
  for (size_t i = oom_slot(p), k = 0; k < OOM_SLOTS; i = (i + 1) & (OOM_SLOTS - 1), k++)
    if (!g_oom_blocks[i].p || g_oom_blocks[i].p == p) {
      g_oom_blocks[i].p = p;
      g_oom_blocks[i].n = n;
      return;
    }
}

/* forget p (allocated while armed, if it was), checking its size */
static void oom_untrack(void *p, size_t old) {
  size_t i = oom_slot(p);
  for (size_t k = 0; g_oom_blocks[i].p && k < OOM_SLOTS; i = (i + 1) & (OOM_SLOTS - 1), k++)
    if (g_oom_blocks[i].p == p) break;
  if (g_oom_blocks[i].p != p) return;
  if (g_oom_blocks[i].n != old)
    rt_fail("runner", 0, "a block of %zu bytes was freed or reallocated as %zu bytes", g_oom_blocks[i].n, old);
  /* delete by re-inserting the rest of the cluster */
  g_oom_blocks[i].p = NULL;
  for (size_t j = (i + 1) & (OOM_SLOTS - 1); g_oom_blocks[j].p; j = (j + 1) & (OOM_SLOTS - 1)) {
    void *q = g_oom_blocks[j].p;
    size_t qn = g_oom_blocks[j].n;
    g_oom_blocks[j].p = NULL;
    oom_track(q, qn);
  }
}

static void *oom_alloc(void *ud, void *p, size_t old, size_t n) {
  (void)ud;
  if (p) oom_untrack(p, old);
  if (n == 0) {
    g_oom.live -= (long long)old;
    free(p);
    return NULL;
  }
  long c = g_oom.calls++;
  if (c == g_oom.fail_at || (g_oom.all_after && c > g_oom.fail_at)) {
    g_oom.failed = 1;
    return NULL;
  }
  void *q = realloc(p, n);
  if (q) g_oom.live += (long long)n - (long long)(p ? old : 0);
  if (q) oom_track(q, n);
  else if (p) oom_track(p, old);
  return q;
}

void rt_oom_arm(long k, int all_after) {
  g_oom.calls = 0;
  g_oom.fail_at = k;
  g_oom.all_after = all_after;
  g_oom.failed = 0;
  g_oom.live = 0;
  memset(g_oom_blocks, 0, sizeof g_oom_blocks);
  ry_set_allocator(oom_alloc, NULL);
}

long long rt_oom_disarm(void) {
  ry_set_allocator(NULL, NULL);
  return g_oom.live;
}

int rt_oom_failed(void) { return g_oom.failed; }

long long rt_oom_live(void) { return g_oom.live; }

void rt_check_roundtrip(const char *file, int line, ry_graph *g) {
  if (!g) return;
  char *t1 = NULL, *t2 = NULL;
  ry_graph *g2 = NULL;
  ry_status s = ry_graph_to_string(g, &t1);
  if (!s) s = ry_graph_parse(t1, -1, "printed", &g2);
  if (!s) s = ry_graph_verify(g2);
  if (!s) s = ry_graph_to_string(g2, &t2);
  if (s)
    rt_fail(file, line, "round trip: %s\n%s", ry_status_message(s), t1 ? t1 : "");
  else if (strcmp(t1, t2) != 0)
    rt_fail(file, line, "print(parse(print(g))) differs:\n%s\n---\n%s", t1, t2);
  ry_status_free(s);
  ry_free(t1);
  ry_free(t2);
  ry_graph_release(g2);
}

static bool selected(const char *name, int argc, char **argv) {
  for (int k = 1; k < argc; k++)
    if (strstr(name, argv[k])) return true;
  return argc <= 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef RYFT_PJRT_TEST_PLUGIN
  /* every test may use the pjrt device: point it at the plugin the build fetched */
  setenv("RYFT_PJRT_PLUGIN", RYFT_PJRT_TEST_PLUGIN, 0);
#endif
  /* the cpu backend's compiled kernels are what most tests check (plans,
   * cache statistics, buffers, bits): compile before the first run, in the
   * tools the tests start too. tests/test_cpu_cold.c turns the background
   * compiles on where it tests them. */
  setenv("RYFT_COMPILE_SYNC", "1", 0);
  for (int i = 0; i < g_n; i++) {
    if (!selected(g_tests[i].name, argc, argv)) continue;
    g_case_name = g_outer_name = g_tests[i].name;
    g_case_failures = 0;
    g_case_skipped = 0;
    g_outer_failures = 0;
    g_in_dynamic = 0;
    int before_p = g_passed, before_f = g_failed, before_s = g_skipped;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_tests[i].fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    int own = g_case_failures + g_outer_failures;
    if (g_in_dynamic) {
      /* failures outside any dynamic case count as one failed case; a skip
         outside any case skips the test */
      if (own) g_failed++;
      else if (g_case_skipped) g_skipped++;
    } else if (own) {
      g_failed++;
    } else if (g_case_skipped) {
      g_skipped++;
    } else {
      g_passed++;
    }
    int p = g_passed - before_p, f = g_failed - before_f, sk = g_skipped - before_s;
    /* the time is information for whoever waits on the suite, never a check */
    printf("%-4s %s", f ? "FAIL" : p || !sk ? "ok" : "skip", g_tests[i].name);
    if (g_in_dynamic) printf(" (%d cases passed, %d failed, %d skipped)", p, f, sk);
    else if (sk && !f) printf(" (%s)", g_skip_reason);
    printf(secs >= 1.0 ? "  [%.1f s]\n" : "\n", secs);
  }
  printf("\n%d passed, %d failed, %d skipped\n", g_passed, g_failed, g_skipped);
  free(g_tests);
  return g_failed ? 1 : 0;
}

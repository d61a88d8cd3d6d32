/* Core: dtypes and JAX promotion, shapes, arrays, printing, status, the
 * replaceable allocator (with allocation failure injected). */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "testlib.h"

TEST(core_promotion_matches_jax) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/promotion.txt", rt_source_dir());
  FILE *f = fopen(path, "r");
  CHECK_MSG(f != NULL, "cannot open %s", path);
  if (!f) return;
  char line[128], a[16], b[16], r[16];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    if (sscanf(line, "%15s %15s %15s", a, b, r) != 3) continue;
    ry_dtype ta = RY_F32, tb = RY_F32, tr = RY_F32;
    CHECK(ry_dtype_from_name(a, &ta) && ry_dtype_from_name(b, &tb) && ry_dtype_from_name(r, &tr));
    CHECK_MSG(ry_promote(ta, tb) == tr, "promote(%s, %s) = %s, JAX says %s", a, b, ry_dtype_name(ry_promote(ta, tb)), r);
    n++;
  }
  fclose(f);
  CHECK_EQ_INT(n, RY_DTYPE_COUNT * RY_DTYPE_COUNT);
}

TEST(core_array_roundtrip_and_refcount) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  ry_array *a = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(2, 3), data, &a));
  CHECK_EQ_INT(ry_array_numel(a), 6);
  CHECK_EQ_INT(ry_array_nbytes(a), 24);
  float back[6];
  CHECK_OK(ry_array_to_host(a, back, sizeof back));
  CHECK(memcmp(back, data, sizeof data) == 0);
  CHECK_ERR(ry_array_to_host(a, back, 8), RY_ERR_INVALID_ARGUMENT, "8 bytes", "24");
  ry_array_retain(a);
  ry_array_release(a);
  CHECK_NEAR(ry_array_get_f64(a, 5), 6, 0);
  ry_array_release(a);
}

TEST(core_array_bad_input) {
  ry_array *a = NULL;
  CHECK_ERR(ry_array_from_host(RY_F32, RY_SHAPE(2, -1), NULL, &a), RY_ERR_SHAPE, "negative");
  CHECK_ERR(ry_array_from_host((ry_dtype)99, RY_SHAPE(2), NULL, &a), RY_ERR_DTYPE, "invalid dtype");
  CHECK_ERR(ry_array_from_host(RY_F32, RY_SHAPE(2), NULL, &a), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_array_full(RY_F32, RY_SHAPE(1 << 30, 1 << 30, 1 << 30), 0, &a), RY_ERR_SHAPE, "too large");
  CHECK(a == NULL);
}

static void count_release(void *ctx) { ++*(int *)ctx; }

/* a borrowed array views the caller's memory; the callback runs once, when
 * the last reference goes */
TEST(core_array_borrow) {
  float mem[6] = {1, 2, 3, 4, 5, 6};
  int released = 0;
  ry_array *a = NULL;
  CHECK_OK(ry_array_borrow(RY_F32, RY_SHAPE(2, 3), mem, count_release, &released, &a));
  CHECK(a && ry_array_data(a) == (const void *)mem && ry_array_nbytes(a) == sizeof mem);
  CHECK(a && ry_array_get_f64(a, 5) == 6.0);
  ry_array *b = ry_array_retain(a);
  ry_array_release(a);
  CHECK_EQ_INT(released, 0);
  ry_array_release(b);
  CHECK_EQ_INT(released, 1);
  CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE(0), NULL, NULL, NULL, &a)); /* empty: no memory needed */
  ry_array_release(a);
  CHECK_ERR(ry_array_borrow(RY_F32, RY_SHAPE(2), NULL, NULL, NULL, &a), RY_ERR_INVALID_ARGUMENT, "data is NULL");
  CHECK_ERR(ry_array_borrow(RY_F32, RY_SHAPE(-1), mem, NULL, NULL, &a), RY_ERR_INVALID_ARGUMENT, "negative");
  CHECK(a == NULL);
}

/* the resident bytes (smaps "Rss:") of the mapping that holds address a */
static long mapping_rss_kb(const void *a) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  bool in = false;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
      continue;
    }
    if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb;
}

/* ry__array_drop_pages gives back the pages of an array that maps a file
 * read-only (file_pages, which the GGUF loader sets): the mapping's resident
 * size falls to what lies outside the array's whole pages, and reading the
 * bytes again gives the file's. Any other array keeps its bytes. */
TEST(core_array_drop_pages_of_a_file_mapping) {
  char path[] = "/tmp/ryft-drop-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  long ps = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)(64 * ps);
  uint8_t *bytes = malloc(len);
  for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 7 + 1);
  CHECK(write(fd, bytes, len) == (ssize_t)len);
  uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  unlink(path);
  CHECK(m != MAP_FAILED);
  if (m == MAP_FAILED) {
    free(bytes);
    return;
  }
  CHECK(memcmp(m, bytes, len) == 0); /* every page read: resident */
  long before = mapping_rss_kb(m);
  if (before < 0) {
    rt_skip("smaps", "/proc/self/smaps cannot be read");
    munmap(m, len);
    free(bytes);
    return;
  }
  ry_array *a = NULL, *plain = NULL;
  /* from the middle of the first page to the middle of the last: 62 whole pages inside */
  CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE((int64_t)(len - (size_t)ps)), m + ps / 2, NULL, NULL, &a));
  a->file_pages = true;
  ry__array_drop_pages(a);
  long after = mapping_rss_kb(m);
  CHECK_MSG(before >= (long)(len / 1024) && after >= 0 && after <= 2 * ps / 1024,
            "the mapping's resident size went %ld -> %ld kB", before, after);
  CHECK(memcmp(ry_array_data(a), bytes + ps / 2, len - (size_t)ps) == 0); /* faulted in again from the file */
  ry__array_drop_pages(a); /* once: the second call gives nothing back */
  CHECK(mapping_rss_kb(m) >= (long)((len - 2 * (size_t)ps) / 1024));
  /* a caller's memory is never given back */
  uint8_t *mine = malloc(len);
  memcpy(mine, bytes, len);
  CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE((int64_t)len), mine, NULL, NULL, &plain));
  ry__array_drop_pages(plain);
  CHECK(memcmp(mine, bytes, len) == 0);
  ry_array_release(a);
  ry_array_release(plain);
  munmap(m, len);
  free(mine);
  free(bytes);
}

TEST(core_array_full_and_convert_semantics) {
  ry_array *a = NULL;
  CHECK_OK(ry_array_full(RY_I8, RY_SHAPE(2), 1000.0, &a));
  CHECK_EQ_INT(ry_array_get_i64(a, 0), 127); /* float->int saturates */
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_U8, RY_SHAPE(1), -5.0, &a));
  CHECK_EQ_INT(ry_array_get_i64(a, 0), 0);
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_BF16, RY_SHAPE(1), 1.00390625, &a)); /* ties to even: 1.0 */
  CHECK_NEAR(ry_array_get_f64(a, 0), 1.0, 0);
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_F16, RY_SHAPE(1), 65520.0, &a)); /* rounds to inf */
  CHECK(isinf(ry_array_get_f64(a, 0)));
  ry_array_release(a);
}

static char *fmt(const ry_array *a) {
  static char buf[4096];
  ry_array_format(a, buf, sizeof buf);
  return buf;
}

TEST(core_array_print_like_numpy) {
  ry_array *a = NULL;
  float f[6] = {1, 2.5f, -3, 4, 5, 6};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(2, 3), f, &a));
  CHECK_STR(fmt(a), "[[ 1.   2.5 -3. ]\n [ 4.   5.   6. ]]");
  ry_array_release(a);
  int32_t i[3] = {1, -20, 300};
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(3), i, &a));
  CHECK_STR(fmt(a), "[  1 -20 300]");
  ry_array_release(a);
  uint8_t bo[2] = {1, 0};
  CHECK_OK(ry_array_from_host(RY_BOOL, RY_SHAPE(2), bo, &a));
  CHECK_STR(fmt(a), "[ True False]");
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_F32, RY_SCALAR, 2.0, &a));
  CHECK_STR(fmt(a), "2.");
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(0, 3), 0, &a));
  CHECK_STR(fmt(a), "[]");
  ry_array_release(a);
  /* large arrays are summarised */
  CHECK_OK(ry_array_full(RY_I32, RY_SHAPE(2000), 7, &a));
  CHECK_STR(fmt(a), "[7 7 7 ... 7 7 7]");
  ry_array_release(a);
  float g[4] = {0.5f, 100.25f, -1, 3};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), g, &a));
  CHECK_STR(fmt(a), "[  0.5  100.25  -1.     3.  ]");
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_I32, RY_SHAPE(3, 1000), 1, &a));
  CHECK_STR(fmt(a), "[[1 1 1 ... 1 1 1]\n [1 1 1 ... 1 1 1]\n [1 1 1 ... 1 1 1]]");
  ry_array_release(a);
  CHECK_OK(ry_array_full(RY_I32, RY_SHAPE(100, 100), 1, &a));
  const char *s = fmt(a);
  CHECK(strstr(s, "...") != NULL);
  CHECK(strlen(s) < 400);
  ry_array_release(a);
}

TEST(core_status_and_names) {
  CHECK_EQ_INT(ry_status_code(NULL), RY_OK);
  CHECK_STR(ry_status_message(NULL), "");
  ry_status s = ry_status_make(RY_ERR_IO, "file %s missing", "x.bin");
  CHECK_EQ_INT(ry_status_code(s), RY_ERR_IO);
  CHECK_STR(ry_status_message(s), "file x.bin missing");
  ry_status_free(s);
  CHECK_STR(ry_code_name(RY_ERR_SHAPE), "shape error");
  CHECK_STR(ry_dtype_name(RY_BF16), "bf16");
  char buf[64];
  CHECK_STR(ry_type_str((ry_type){RY_F32, RY_SHAPE(2, 3)}, buf, sizeof buf), "f32[2,3]");
  CHECK_STR(ry_type_str((ry_type){RY_I64, RY_SCALAR}, buf, sizeof buf), "i64[]");
  CHECK_STR(ry_version(), "0.1.0");
}

static int mlp(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_matmul(b, in[0], in[1]));
  out[0] = ry_sum(b, ry_softmax(b, h, -1), RY_AXES(0, 1));
  return 1;
}

TEST(core_allocation_failure_is_reported) {
  /* Every allocation point in a trace + run fails in turn: each must give
   * RY_ERR_OUT_OF_MEMORY (or succeed), never crash or leak. */
  ry_type in[2] = {{RY_F32, RY_SHAPE(2, 3)}, {RY_F32, RY_SHAPE(3, 4)}};
  int failures = 0, successes = 0;
  for (long k = 0; k < 400; k++) {
    rt_oom_arm(k, 1);
    ry_graph *g = NULL;
    ry_status s = ry_trace("mlp", mlp, NULL, 2, in, NULL, &g);
    ry_array *x = NULL, *w = NULL, *o = NULL;
    if (!s) s = ry_array_full(RY_F32, RY_SHAPE(2, 3), 0.5, &x);
    if (!s) s = ry_array_full(RY_F32, RY_SHAPE(3, 4), 0.25, &w);
    ry_device *dev = NULL;
    if (!s) s = ry_device_get("interp", &dev);
    if (!s) {
      ry_array *args[2] = {x, w};
      s = ry_run(g, dev, 2, args, 1, &o);
    }
    if (s) {
      CHECK_MSG(ry_status_code(s) == RY_ERR_OUT_OF_MEMORY, "budget %ld: %s", k, ry_status_message(s));
      failures++;
    } else {
      successes++;
    }
    ry_status_free(s);
    ry_array_release(o);
    ry_array_release(x);
    ry_array_release(w);
    ry_graph_release(g);
    long long live = rt_oom_disarm();
    CHECK_MSG(live == 0, "budget %ld: %lld bytes leaked", k, live);
    if (successes) break;
  }
  CHECK(failures > 10);
  CHECK_EQ_INT(successes, 1);
}

/* Released large array buffers are handed to the next array of the same
 * size (no page faults for a training loop's repeated buffers); small ones
 * and a replaced allocator are not cached; ry_array_zeros still zeroes a
 * reused block. */
TEST(core_large_buffers_are_reused) {
  ry_array *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(512, 1024), 7.0, &a));
  if (!a) return;
  const void *pa = ry_array_data(a);
  ry_array_release(a);
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(1024, 512), &b));
  if (!b) return;
  CHECK(ry_array_data(b) == pa);
  int nonzero = 0;
  for (int64_t i = 0; i < ry_array_numel(b); i++) nonzero += ry_array_get_f64(b, i) != 0;
  CHECK_EQ_INT(nonzero, 0);
  /* a different size does not take it */
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(1024, 513), &c));
  if (c) CHECK(ry_array_data(c) != pa);
  ry_array_release(b);
  ry_array_release(c);
  /* with a replaced allocator every buffer comes from it (and none is left) */
  rt_oom_arm(-1, 0);
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(512, 1024), &a));
  CHECK_MSG(rt_oom_live() >= 512 * 1024 * 4, "%lld bytes from the replaced allocator", rt_oom_live());
  ry_array_release(a);
  long long live = rt_oom_disarm();
  CHECK_MSG(live == 0, "%lld bytes left", live);
}

/* .npy reading and writing: round trips for every dtype, files written by
 * NumPy (tests/data/np_*.npy, made by tests/data/gen_npy_fixtures.py), byte
 * identity with np.save, atomic writes, and every malformed input refused
 * with the right code and a message that names the problem. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "testlib.h"

/* ---- helpers -------------------------------------------------------------- */

static const char *fixture(const char *name) {
  static char buf[4][1024];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, sizeof buf[0], "%s/tests/data/%s", rt_source_dir(), name);
  return b;
}

/* A fresh scratch directory under the build tree, unique to this process. */
static char g_scratch[1024];
static void remove_scratch(void) { rmdir(g_scratch); }

static const char *scratch_dir(void) {
  char *dir = g_scratch;
  if (!dir[0]) {
    snprintf(dir, sizeof g_scratch, "%s/test_tmp", RYFT_BINARY_DIR);
    mkdir(dir, 0777);
    snprintf(dir, sizeof g_scratch, "%s/test_tmp/npy_%ld", RYFT_BINARY_DIR, (long)getpid());
    mkdir(dir, 0777);
    atexit(remove_scratch); /* empty by then: every test removes its files */
  }
  return dir;
}

static const char *scratch(const char *name) {
  static char buf[4][1100];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, sizeof buf[0], "%s/%s", scratch_dir(), name);
  return b;
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  *n = b ? fread(b, 1, (size_t)len, f) : 0;
  fclose(f);
  return b;
}

static void spit(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

/* Build a .npy image in buf: given version, the dict text (padded here to a
 * multiple of 64 with '\n'), then `ndata` bytes of data. Returns its size. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data, size_t ndata) {
  size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
  size_t hlen = ((pre + len + 1 + 63) / 64) * 64 - pre;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  for (size_t i = 8; i < pre; i++) buf[i] = (unsigned char)(hlen >> (8 * (i - 8)));
  memcpy(buf + pre, dict, len);
  memset(buf + pre + len, ' ', hlen - len - 1);
  buf[pre + hlen - 1] = '\n';
  if (ndata) memcpy(buf + pre + hlen, data, ndata);
  return pre + hlen + ndata;
}

/* An array of dtype t and shape s with distinct, dtype-typical values. */
static ry_array *sample(ry_dtype t, ry_shape s) {
  ry_array *a = NULL;
  ry_status st = ry__array_new((ry_type){t, s}, &a);
  if (st) {
    ry_status_free(st);
    return NULL;
  }
  int64_t n = ry_shape_numel(s);
  for (int64_t i = 0; i < n; i++) {
    if (ry_dtype_is_float(t))
      ry__store_f64(t, ry__array_mut(a), i, (double)(i * 7 % 11) * 0.25 - 1.0);
    else if (t == RY_BOOL)
      ry__store_i64(t, ry__array_mut(a), i, (i * 5) % 3 == 0);
    else
      ry__store_i64(t, ry__array_mut(a), i, (int64_t)(i * 2654435761u) - (ry_dtype_is_signed(t) ? 99 : 0));
  }
  return a;
}

static int same_array(const ry_array *a, const ry_array *b) {
  return a && b && ry_type_equal(ry_array_type(a), ry_array_type(b)) && ry_array_nbytes(a) == ry_array_nbytes(b) &&
         memcmp(ry_array_data(a), ry_array_data(b), ry_array_nbytes(a)) == 0;
}

/* Write a, read it back from the file and from memory, compare. */
static void roundtrip(ry_array *a, const char *name) {
  CHECK(a != NULL);
  if (!a) return;
  const char *path = scratch(name);
  CHECK_OK(ry_npy_write(path, a));
  ry_array *b = NULL;
  CHECK_OK(ry_npy_read(path, &b));
  char ty[128];
  CHECK_MSG(same_array(a, b), "round trip of %s changed the array", ry_type_str(ry_array_type(a), ty, sizeof ty));
  size_t n = 0;
  unsigned char *bytes = slurp(path, &n);
  CHECK(bytes != NULL && n % 64 == (ry_array_nbytes(a) % 64));
  ry_array *c = NULL;
  CHECK_OK(ry_npy_parse(bytes, n, path, &c));
  CHECK(same_array(a, c));
  free(bytes);
  ry_array_release(b);
  ry_array_release(c);
  remove(path);
}

/* ---- round trips ---------------------------------------------------------- */

TEST(npy_roundtrip_every_dtype) {
  for (int t = 0; t < RY_DTYPE_COUNT; t++) {
    if (t == RY_BF16) continue;
    ry_array *a = sample((ry_dtype)t, RY_SHAPE(2, 3));
    char name[64];
    snprintf(name, sizeof name, "rt_%s.npy", ry_dtype_name((ry_dtype)t));
    roundtrip(a, name);
    ry_array_release(a);
  }
}

TEST(npy_roundtrip_scalars) {
  for (int t = 0; t < RY_DTYPE_COUNT; t++) {
    if (t == RY_BF16) continue;
    ry_array *a = sample((ry_dtype)t, RY_SCALAR);
    roundtrip(a, "scalar.npy");
    ry_array_release(a);
  }
  ry_array *a = NULL;
  CHECK_OK(ry_array_full(RY_F64, RY_SCALAR, -0.0, &a));
  roundtrip(a, "negzero.npy");
  ry_array_release(a);
}

TEST(npy_roundtrip_empty_and_rank8) {
  ry_array *a = sample(RY_F32, RY_SHAPE(0));
  roundtrip(a, "empty0.npy");
  ry_array_release(a);
  a = sample(RY_I64, RY_SHAPE(2, 0, 3));
  roundtrip(a, "empty203.npy");
  ry_array_release(a);
  a = sample(RY_U8, RY_SHAPE(1, 2, 1, 2, 1, 2, 1, 3));
  roundtrip(a, "rank8.npy");
  ry_array_release(a);
  a = sample(RY_F16, RY_SHAPE(1000)); /* a 2000-byte payload */
  roundtrip(a, "big.npy");
  ry_array_release(a);
}

TEST(npy_write_overwrites_atomically) {
  const char *path = scratch("over.npy");
  ry_array *a = sample(RY_I32, RY_SHAPE(4)), *b = sample(RY_F64, RY_SHAPE(2, 2)), *c = NULL;
  int before = count_entries(scratch_dir());
  CHECK_OK(ry_npy_write(path, a));
  CHECK_OK(ry_npy_write(path, b));
  CHECK_OK(ry_npy_read(path, &c));
  CHECK(same_array(b, c));
  /* exactly one new entry: the target, no temporary left behind */
  CHECK_EQ_INT(count_entries(scratch_dir()), before + 1);
  remove(path);
  ry_array_release(a);
  ry_array_release(b);
  ry_array_release(c);
}

TEST(npy_bool_bytes_are_normalised) {
  unsigned char buf[256], data[3] = {0, 1, 7};
  size_t n = make_npy(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", data, 3);
  ry_array *a = NULL;
  CHECK_OK(ry_npy_parse(buf, n, "mem", &a));
  if (a) {
    CHECK_EQ_INT(ry_array_dtype(a), RY_BOOL);
    CHECK_EQ_INT(((const uint8_t *)ry_array_data(a))[2], 1);
  }
  ry_array_release(a);
}

TEST(npy_header_variants) {
  /* other quoting, key order, spacing, Python 2 longs, '<' on a 1-byte type */
  unsigned char buf[256];
  int16_t d[2] = {-5, 6};
  size_t n = make_npy(buf, 1, "{\"shape\":(2L,),\"fortran_order\":False,\"descr\":\"<i2\"}", d, sizeof d);
  ry_array *a = NULL;
  CHECK_OK(ry_npy_parse(buf, n, "mem", &a));
  if (a) {
    CHECK_EQ_INT(ry_array_get_i64(a, 0), -5);
    CHECK_EQ_INT(ry_array_get_i64(a, 1), 6);
  }
  ry_array_release(a);
  uint8_t u = 9;
  n = make_npy(buf, 1, "{'descr': '<u1', 'fortran_order': False, 'shape': (), }", &u, 1);
  CHECK_OK(ry_npy_parse(buf, n, "mem", &a));
  if (a) CHECK_EQ_INT(ry_array_get_i64(a, 0), 9);
  ry_array_release(a);
}

/* ---- files made by NumPy ---------------------------------------------------- */

static ry_array *read_fixture(const char *name) {
  ry_array *a = NULL;
  ry_status s = ry_npy_read(fixture(name), &a);
  if (s) rt_fail(__FILE__, __LINE__, "reading %s: %s", name, ry_status_message(s));
  ry_status_free(s);
  return a;
}

static void check_type_str(const ry_array *a, const char *want) {
  char ty[128];
  if (!a) return;
  CHECK_STR(ry_type_str(ry_array_type(a), ty, sizeof ty), want);
}

TEST(npy_read_numpy_files) {
  ry_array *a = read_fixture("np_f32_2x3.npy");
  check_type_str(a, "f32[2,3]");
  for (int i = 0; a && i < 6; i++) CHECK_NEAR(ry_array_get_f64(a, i), i * 0.5 - 1, 0);
  ry_array_release(a);

  a = read_fixture("np_f64_3.npy");
  check_type_str(a, "f64[3]");
  if (a) {
    CHECK(ry_array_get_f64(a, 0) == 0.1);
    CHECK(ry_array_get_f64(a, 1) == -2.5e300);
    CHECK(isinf(ry_array_get_f64(a, 2)));
  }
  ry_array_release(a);

  a = read_fixture("np_f16_3.npy");
  check_type_str(a, "f16[3]");
  if (a) {
    CHECK(ry_array_get_f64(a, 0) == 1.5);
    CHECK(ry_array_get_f64(a, 1) == -2.0);
    CHECK(ry_array_get_f64(a, 2) == 65504.0);
  }
  ry_array_release(a);

  static const struct {
    const char *file, *type;
    int64_t v[4];
    int n;
  } ints[] = {
      {"np_i8_3.npy", "i8[3]", {-128, 0, 127}, 3},
      {"np_i16_2x2.npy", "i16[2,2]", {-32768, 1, 2, 32767}, 4},
      {"np_i32_4.npy", "i32[4]", {-7, 0, 1 << 30, INT32_MIN}, 4},
      {"np_i64_3.npy", "i64[3]", {-3, INT64_C(1) << 40, -(INT64_C(1) << 62)}, 3},
      {"np_u8_scalar.npy", "u8[]", {200}, 1},
      {"np_u32_2.npy", "u32[2]", {0, 4294967295}, 2},
      {"np_bool_2x2.npy", "bool[2,2]", {1, 0, 0, 1}, 4},
      {"np_i32_v2.npy", "i32[3]", {1, 2, 3}, 3},
  };
  for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
    a = read_fixture(ints[k].file);
    check_type_str(a, ints[k].type);
    for (int i = 0; a && i < ints[k].n; i++)
      CHECK_MSG(ry_array_get_i64(a, i) == ints[k].v[i], "%s[%d] = %lld, want %lld", ints[k].file, i,
                (long long)ry_array_get_i64(a, i), (long long)ints[k].v[i]);
    ry_array_release(a);
  }

  a = read_fixture("np_f64_0x3.npy");
  check_type_str(a, "f64[0,3]");
  if (a) CHECK_EQ_INT(ry_array_nbytes(a), 0);
  ry_array_release(a);

  a = read_fixture("np_f32_v3.npy");
  check_type_str(a, "f32[2,1]");
  if (a) CHECK(ry_array_get_f64(a, 0) == 4.0 && ry_array_get_f64(a, 1) == 5.0);
  ry_array_release(a);
}

TEST(npy_write_matches_numpy_bytes) {
  /* np.save's bytes exactly, growth padding included (format 1.0 files) */
  static const char *files[] = {"np_f32_2x3.npy", "np_f64_3.npy",   "np_f16_3.npy",     "np_i8_3.npy",
                                "np_i16_2x2.npy", "np_i32_4.npy",   "np_i64_3.npy",     "np_u8_scalar.npy",
                                "np_u32_2.npy",   "np_bool_2x2.npy", "np_f64_0x3.npy"};
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    ry_array *a = read_fixture(files[k]);
    if (!a) continue;
    const char *out = scratch("same.npy");
    CHECK_OK(ry_npy_write(out, a));
    size_t n1 = 0, n2 = 0;
    unsigned char *want = slurp(fixture(files[k]), &n1), *got = slurp(out, &n2);
    CHECK_MSG(want && got && n1 == n2 && memcmp(want, got, n1) == 0, "%s: ryft's bytes differ from NumPy's (%zu vs %zu)",
              files[k], n2, n1);
    free(want);
    free(got);
    remove(out);
    ry_array_release(a);
  }
}

/* ---- refused inputs --------------------------------------------------------- */

TEST(npy_err_missing_file) {
  ry_array *a = (ry_array *)1;
  CHECK_ERR(ry_npy_read(fixture("no_such_file.npy"), &a), RY_ERR_IO, "no_such_file.npy", "No such file");
  CHECK(a == NULL);
}

TEST(npy_err_directory) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(scratch_dir(), &a), RY_ERR_IO, "npy_", "directory");
}

TEST(npy_err_bad_magic) {
  const char *p = scratch("magic.npy");
  spit(p, "PK\x03\x04 this is a zip, not an npy file", 36);
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(p, &a), RY_ERR_PARSE, "magic.npy", "not a .npy file", "magic");
  spit(p, "", 0);
  CHECK_ERR(ry_npy_read(p, &a), RY_ERR_PARSE, "magic.npy", "not a .npy file");
  CHECK_ERR(ry_npy_parse("\x93NUMPZ\x01\x00", 8, "mem.npy", &a), RY_ERR_PARSE, "mem.npy", "magic");
  remove(p);
}

TEST(npy_err_truncated_header) {
  size_t n = 0;
  unsigned char *b = slurp(fixture("np_f32_2x3.npy"), &n);
  ry_array *a = NULL;
  CHECK(b != NULL);
  if (!b) return;
  CHECK_ERR(ry_npy_parse(b, 7, "t.npy", &a), RY_ERR_PARSE, "t.npy", "truncated .npy header");
  CHECK_ERR(ry_npy_parse(b, 9, "t.npy", &a), RY_ERR_PARSE, "t.npy", "truncated .npy header");
  CHECK_ERR(ry_npy_parse(b, 50, "t.npy", &a), RY_ERR_PARSE, "t.npy", "truncated .npy header", "118");
  const char *p = scratch("trunc_header.npy");
  spit(p, b, 50);
  CHECK_ERR(ry_npy_read(p, &a), RY_ERR_PARSE, "trunc_header.npy", "truncated .npy header");
  remove(p);
  free(b);
}

TEST(npy_err_truncated_data) {
  size_t n = 0;
  unsigned char *b = slurp(fixture("np_f32_2x3.npy"), &n);
  ry_array *a = NULL;
  CHECK(b != NULL && n == 152);
  if (!b) return;
  const char *p = scratch("trunc_data.npy");
  spit(p, b, n - 4);
  CHECK_ERR(ry_npy_read(p, &a), RY_ERR_PARSE, "trunc_data.npy", "f32[2,3]", "needs 24 bytes", "has 20", "truncated");
  CHECK_ERR(ry_npy_parse(b, n - 1, "mem.npy", &a), RY_ERR_PARSE, "mem.npy", "24", "23");
  remove(p);
  free(b);
}

TEST(npy_err_trailing_bytes) {
  size_t n = 0;
  unsigned char *b = slurp(fixture("np_i32_4.npy"), &n);
  ry_array *a = NULL;
  if (!b) return;
  unsigned char *c = malloc(n + 3);
  memcpy(c, b, n);
  memset(c + n, 0, 3);
  CHECK_ERR(ry_npy_parse(c, n + 3, "long.npy", &a), RY_ERR_PARSE, "long.npy", "needs 16 bytes", "has 19", "trailing");
  free(c);
  free(b);
}

TEST(npy_err_big_endian) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(fixture("np_bad_f4_bigendian.npy"), &a), RY_ERR_DTYPE, "np_bad_f4_bigendian.npy", "'>f4'",
            "big-endian");
  CHECK(a == NULL);
}

TEST(npy_reads_u16) {
  ry_array *a = NULL;
  CHECK_OK(ry_npy_read(fixture("np_u16.npy"), &a));
  if (!a) return;
  CHECK(ry_array_dtype(a) == RY_U16 && ry_array_shape(a).rank == 1 && ry_array_shape(a).dims[0] == 2);
  const uint16_t *v = ry_array_data(a);
  CHECK(v && v[0] == 1 && v[1] == 2);
  ry_array_release(a);
}

TEST(npy_err_unsupported_descr) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(fixture("np_bad_c8.npy"), &a), RY_ERR_DTYPE, "np_bad_c8.npy", "'<c8'", "unsupported");
  unsigned char buf[256];
  size_t n = make_npy(buf, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "12345678", 8);
  CHECK_ERR(ry_npy_parse(buf, n, "obj.npy", &a), RY_ERR_DTYPE, "obj.npy", "'|O'");
  n = make_npy(buf, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "rec.npy", &a), RY_ERR_DTYPE, "rec.npy", "structured");
}

TEST(npy_err_fortran_order) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(fixture("np_bad_fortran.npy"), &a), RY_ERR_PARSE, "np_bad_fortran.npy", "fortran_order",
            "Fortran");
}

TEST(npy_err_rank_too_large) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(fixture("np_bad_rank9.npy"), &a), RY_ERR_PARSE, "np_bad_rank9.npy", "rank 9", "8");
}

TEST(npy_err_negative_dim) {
  unsigned char buf[256];
  ry_array *a = NULL;
  size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", NULL, 0);
  CHECK_ERR(ry_npy_parse(buf, n, "neg.npy", &a), RY_ERR_PARSE, "neg.npy", "negative", "-3");
}

TEST(npy_err_overflowing_dims) {
  unsigned char buf[256];
  ry_array *a = NULL;
  size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", NULL, 0);
  CHECK_ERR(ry_npy_parse(buf, n, "ovf.npy", &a), RY_ERR_PARSE, "ovf.npy", "overflows");
  n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", NULL, 0);
  CHECK_ERR(ry_npy_parse(buf, n, "ovf2.npy", &a), RY_ERR_PARSE, "ovf2.npy", "overflows");
  /* a huge shape with a zero dim is just empty */
  n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0), }", NULL, 0);
  ry_status s = ry_npy_parse(buf, n, "zero.npy", &a);
  /* (ryft's own limit on dims still applies; accept either outcome but no crash) */
  ry_status_free(s);
  ry_array_release(a);
  a = NULL;
  /* a plausible shape whose data is absent is a size mismatch, not an allocation */
  n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", NULL, 0);
  CHECK_ERR(ry_npy_parse(buf, n, "huge.npy", &a), RY_ERR_PARSE, "huge.npy", "8000000000000 bytes", "has 0");
}

TEST(npy_err_bad_version) {
  unsigned char buf[256];
  ry_array *a = NULL;
  size_t n = make_npy(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "abcd", 4);
  buf[6] = 4;
  CHECK_ERR(ry_npy_parse(buf, n, "v4.npy", &a), RY_ERR_PARSE, "v4.npy", "version 4.0");
}

TEST(npy_err_malformed_dict) {
  unsigned char buf[256];
  ry_array *a = NULL;
  size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, }", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d1.npy", &a), RY_ERR_PARSE, "d1.npy", "missing key 'shape'");
  n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d2.npy", &a), RY_ERR_PARSE, "d2.npy", "unexpected key 'extra'");
  n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': ()}", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d3.npy", &a), RY_ERR_PARSE, "d3.npy", "fortran_order");
  n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d4.npy", &a), RY_ERR_PARSE, "d4.npy", "shape");
  n = make_npy(buf, 1, "{'descr' '<f4', 'fortran_order': False, 'shape': ()}", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d5.npy", &a), RY_ERR_PARSE, "d5.npy", "malformed", "expected ':'");
  n = make_npy(buf, 1, "not a dict", "abcd", 4);
  CHECK_ERR(ry_npy_parse(buf, n, "d6.npy", &a), RY_ERR_PARSE, "d6.npy", "expected '{'");
}

TEST(npy_err_write_bf16) {
  ry_array *a = sample(RY_BF16, RY_SHAPE(2));
  const char *p = scratch("bf16.npy");
  CHECK_ERR(ry_npy_write(p, a), RY_ERR_DTYPE, "bf16.npy", "bf16", "f32");
  CHECK(access(p, F_OK) != 0); /* nothing written */
  ry_array_release(a);
}

TEST(npy_err_write_io) {
  ry_array *a = sample(RY_F32, RY_SHAPE(2));
  CHECK_ERR(ry_npy_write("/nonexistent-ryft-dir/x.npy", a), RY_ERR_IO, "/nonexistent-ryft-dir/x.npy", "No such file");
  /* the target is a directory: rename fails, the temporary file is removed */
  const char *d = scratch("is_a_dir.npy");
  mkdir(d, 0777);
  int before = count_entries(scratch_dir());
  CHECK_ERR(ry_npy_write(d, a), RY_ERR_IO, "is_a_dir.npy", "cannot write");
  CHECK_EQ_INT(count_entries(scratch_dir()), before);
  rmdir(d);
  ry_array_release(a);
}

TEST(npy_err_null_arguments) {
  ry_array *a = NULL;
  CHECK_ERR(ry_npy_read(NULL, &a), RY_ERR_INVALID_ARGUMENT, "path");
  CHECK_ERR(ry_npy_read("x.npy", NULL), RY_ERR_INVALID_ARGUMENT, "out");
  CHECK_ERR(ry_npy_parse(NULL, 10, "x", &a), RY_ERR_INVALID_ARGUMENT, "data");
  CHECK_ERR(ry_npy_write("x.npy", NULL), RY_ERR_INVALID_ARGUMENT, "array");
}

/* ---- robustness ------------------------------------------------------------- */

TEST(npy_parse_survives_truncation_and_corruption) {
  size_t n = 0;
  unsigned char *b = slurp(fixture("np_i16_2x2.npy"), &n);
  CHECK(b != NULL);
  if (!b) return;
  int accepted = 0;
  for (size_t len = 0; len <= n; len++) {
    ry_array *a = NULL;
    ry_status s = ry_npy_parse(b, len, "cut.npy", &a);
    if (!s) accepted++;
    CHECK(s ? a == NULL : len == n);
    ry_status_free(s);
    ry_array_release(a);
  }
  CHECK_EQ_INT(accepted, 1);
  /* every byte of the prefix and header set to a few awkward values */
  unsigned char *c = malloc(n);
  static const unsigned char vals[] = {0, '\'', '(', ')', ',', '-', '9', '{', '}', 0xff};
  for (size_t i = 0; i + 8 < n; i++)
    for (size_t v = 0; v < sizeof vals; v++) {
      memcpy(c, b, n);
      c[i] = vals[v];
      ry_array *a = NULL;
      ry_status s = ry_npy_parse(c, n, "flip.npy", &a);
      if (s) CHECK(a == NULL && ry_status_code(s) != RY_OK && strstr(ry_status_message(s), "flip.npy"));
      ry_status_free(s);
      ry_array_release(a);
    }
  free(c);
  free(b);
}

TEST(npy_out_of_memory_is_clean) {
  ry_array *src = sample(RY_F32, RY_SHAPE(3, 2));
  const char *path = scratch("oom.npy");
  int ok_read = 0, ok_write = 0;
  for (int budget = 0; budget < 20 && !(ok_read && ok_write); budget++) {
    ry_array *a = NULL;
    rt_oom_arm(budget, 1);
    ry_status sw = ok_write ? NULL : ry_npy_write(path, src);
    ry_status sr = ry_npy_read(fixture("np_f32_2x3.npy"), &a);
    ry_code cw = ry_status_code(sw), cr = ry_status_code(sr);
    int a_null = a == NULL;
    ry_status_free(sw);
    ry_status_free(sr);
    ry_array_release(a);
    long long live = rt_oom_disarm();
    CHECK_MSG(live == 0, "budget %d: %lld bytes leaked", budget, live);
    if (!sw) ok_write = 1;
    if (!sr) ok_read = 1;
    if (sw) CHECK_EQ_INT(cw, RY_ERR_OUT_OF_MEMORY);
    if (sr) CHECK(cr == RY_ERR_OUT_OF_MEMORY && a_null);
  }
  CHECK(ok_read && ok_write);
  remove(path);
  ry_array_release(src);
}

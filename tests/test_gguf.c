/* GGUF (src/io/gguf.c, gguf_write.c) and ggml's quantization formats
 * (src/io/quant.c), against files the gguf Python package wrote
 * (tests/data/gen_gguf_fixtures.py): every metadata type, v2 and v3,
 * alignment, dequantization and quantization bit-identical to gguf-py,
 * the writer byte-identical to gguf-py's, malformed files each refused with
 * a message naming the problem, and every truncation of a valid file. */
#include <stdlib.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "testlib.h"

static const char *fixture(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/tests/data/gguf/%s", rt_source_dir(), name);
  return buf[k];
}

static ry_gguf *open_fixture(const char *name) {
  ry_gguf *g = NULL;
  ry_status s = ry_gguf_open(fixture(name), &g);
  if (s) rt_fail(__FILE__, __LINE__, "open %s: %s", name, ry_status_message(s));
  ry_status_free(s);
  return g;
}

static int64_t get_int(const ry_gguf *g, const char *key) {
  int64_t v = -999;
  CHECK_OK(ry_gguf_get_int(g, key, &v));
  return v;
}

static int contains(const char *s, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (!memcmp(s + i, needle, k)) return 1;
  return 0;
}

static int str_is(const char *s, size_t n, const char *want) { return s && n == strlen(want) && !memcmp(s, want, n); }

TEST(gguf_every_metadata_type) {
  ry_gguf *g = open_fixture("all_types.gguf");
  if (!g) return;
  CHECK_EQ_INT(ry_gguf_version(g), 3);
  CHECK_EQ_INT(ry_gguf_alignment(g), 32);
  CHECK_EQ_INT(ry_gguf_data_offset(g) % 32, 0);
  CHECK_EQ_INT(ry_gguf_n_kv(g), 29);
  CHECK_STR(ry_gguf_key(g, 0), "general.architecture");
  CHECK(ry_gguf_key(g, 29) == NULL && ry_gguf_key(g, -1) == NULL);
  CHECK_EQ_INT(get_int(g, "v.u8"), 200);
  CHECK_EQ_INT(get_int(g, "v.i8"), -100);
  CHECK_EQ_INT(get_int(g, "v.u16"), 60000);
  CHECK_EQ_INT(get_int(g, "v.i16"), -30000);
  CHECK_EQ_INT(get_int(g, "v.u32"), 4000000000LL);
  CHECK_EQ_INT(get_int(g, "v.i32"), -2000000000LL);
  CHECK_EQ_INT(get_int(g, "v.i64"), -(1LL << 62));
  double f = 0;
  CHECK_OK(ry_gguf_get_float(g, "v.f32", &f));
  CHECK(f == 1.5);
  CHECK_OK(ry_gguf_get_float(g, "v.f64", &f));
  CHECK(f == 3.141592653589793);
  int b = 0;
  CHECK_OK(ry_gguf_get_bool(g, "v.bool", &b));
  CHECK(b == 1);
  const char *s = NULL;
  size_t n = 0;
  CHECK_OK(ry_gguf_get_str(g, "v.str", &s, &n));
  CHECK(str_is(s, n, "h\xc3\xa9llo \xe2\x9c\x93"));
  CHECK_OK(ry_gguf_get_str(g, "v.empty_str", &s, &n));
  CHECK(n == 0);
  CHECK_OK(ry_gguf_get_str(g, "general.architecture", &s, &n));
  CHECK(str_is(s, n, "ryfttest"));
  /* u64 above INT64_MAX: read its bytes, refused by the int getter */
  const ry_gguf_value *v = ry_gguf_find(g, "v.u64");
  CHECK(v && v->type == RY_GGUF_U64);
  uint64_t u = 0;
  if (v) memcpy(&u, v->data, 8);
  CHECK(u == (1ULL << 63) + 5);
  int64_t i64;
  CHECK_ERR(ry_gguf_get_int(g, "v.u64", &i64), RY_ERR_DTYPE, "v.u64", "does not fit");
  /* type mismatches and missing keys name the key and both types */
  CHECK_ERR(ry_gguf_get_int(g, "v.str", &i64), RY_ERR_DTYPE, "all_types.gguf", "'v.str'", "string", "integer");
  CHECK_ERR(ry_gguf_get_str(g, "v.u8", &s, &n), RY_ERR_DTYPE, "'v.u8'", "u8", "string");
  CHECK_ERR(ry_gguf_get_float(g, "v.i32", &f), RY_ERR_DTYPE, "'v.i32'", "i32", "f32 or f64");
  CHECK_ERR(ry_gguf_get_bool(g, "a.bool", &b), RY_ERR_DTYPE, "'a.bool'", "array of bool");
  CHECK_ERR(ry_gguf_get_int(g, "no.such.key", &i64), RY_ERR_NOT_FOUND, "no.such.key");
  CHECK(ry_gguf_find(g, "no.such.key") == NULL);
  ry_gguf_close(g);
}

/* element i of an array key as int64 / double */
static int64_t arr_int(const ry_gguf *g, const char *key, uint64_t i) {
  ry_gguf_value a, e;
  int64_t x = -999;
  CHECK_OK(ry_gguf_get_arr(g, key, RY_GGUF_TYPE_COUNT, &a));
  CHECK_OK(ry_gguf_arr_get(&a, i, &e));
  CHECK_OK(ry_gguf_value_int(&e, &x));
  return x;
}

TEST(gguf_arrays_and_nested_arrays) {
  ry_gguf *g = open_fixture("all_types.gguf");
  if (!g) return;
  CHECK_EQ_INT(arr_int(g, "a.u8", 2), 255);
  CHECK_EQ_INT(arr_int(g, "a.i8", 2), -128);
  CHECK_EQ_INT(arr_int(g, "a.u16", 1), 65535);
  CHECK_EQ_INT(arr_int(g, "a.i16", 0), -32768);
  CHECK_EQ_INT(arr_int(g, "a.u32", 1), 4294967295LL);
  CHECK_EQ_INT(arr_int(g, "a.i32", 2), -7);
  CHECK_EQ_INT(arr_int(g, "a.i64", 0), INT64_MIN);
  CHECK_EQ_INT(arr_int(g, "a.i64", 1), 9);
  ry_gguf_value a, e;
  CHECK_OK(ry_gguf_get_arr(g, "a.f32", RY_GGUF_F32, &a));
  CHECK_EQ_INT(a.n, 3);
  double f;
  CHECK_OK(ry_gguf_arr_get(&a, 1, &e));
  CHECK_OK(ry_gguf_value_float(&e, &f));
  CHECK(f == -2.25);
  float packed[3];
  memcpy(packed, a.data, sizeof packed); /* numbers are packed in place */
  CHECK(packed[2] == 1e-3f);
  CHECK_OK(ry_gguf_get_arr(g, "a.f64", RY_GGUF_F64, &a));
  CHECK_OK(ry_gguf_arr_get(&a, 1, &e));
  CHECK_OK(ry_gguf_value_float(&e, &f));
  CHECK(f == -1e300);
  CHECK_OK(ry_gguf_get_arr(g, "a.bool", RY_GGUF_BOOL, &a));
  int bv = -1;
  CHECK_OK(ry_gguf_arr_get(&a, 1, &e));
  CHECK_OK(ry_gguf_value_bool(&e, &bv));
  CHECK(bv == 0);
  CHECK_OK(ry_gguf_get_arr(g, "a.u64", RY_GGUF_U64, &a));
  CHECK_OK(ry_gguf_arr_get(&a, 0, &e));
  int64_t x;
  CHECK_ERR(ry_gguf_value_int(&e, &x), RY_ERR_DTYPE, "does not fit");
  /* strings */
  CHECK_OK(ry_gguf_get_arr(g, "a.str", RY_GGUF_STRING, &a));
  CHECK_EQ_INT(a.n, 4);
  const char *s;
  size_t n;
  CHECK_OK(ry_gguf_arr_str(&a, 0, &s, &n));
  CHECK(str_is(s, n, "a"));
  CHECK_OK(ry_gguf_arr_str(&a, 1, &s, &n));
  CHECK(n == 0);
  CHECK_OK(ry_gguf_arr_str(&a, 2, &s, &n));
  CHECK(str_is(s, n, "\xc3\xbc"));
  CHECK_OK(ry_gguf_arr_str(&a, 3, &s, &n));
  CHECK(str_is(s, n, "tok en"));
  CHECK_ERR(ry_gguf_arr_str(&a, 4, &s, &n), RY_ERR_INVALID_ARGUMENT, "index 4 out of range");
  CHECK_ERR(ry_gguf_get_arr(g, "a.str", RY_GGUF_I32, &a), RY_ERR_DTYPE, "'a.str'", "array of string", "array of i32");
  CHECK_ERR(ry_gguf_get_arr(g, "v.u8", RY_GGUF_TYPE_COUNT, &a), RY_ERR_DTYPE, "'v.u8'", "an array");
  /* nested: [[1, 2], [3], [4, 5, 6]] */
  CHECK_OK(ry_gguf_get_arr(g, "a.nested", RY_GGUF_ARRAY, &a));
  CHECK_EQ_INT(a.n, 3);
  int64_t want[3][3] = {{1, 2, 0}, {3, 0, 0}, {4, 5, 6}};
  uint64_t lens[3] = {2, 1, 3};
  for (uint64_t i = 0; i < 3; i++) {
    ry_gguf_value in, y;
    CHECK_OK(ry_gguf_arr_get(&a, i, &in));
    CHECK(in.type == RY_GGUF_ARRAY && in.elem == RY_GGUF_I32 && in.n == lens[i]);
    for (uint64_t j = 0; j < in.n && j < 3; j++) {
      CHECK_OK(ry_gguf_arr_get(&in, j, &y));
      CHECK_OK(ry_gguf_value_int(&y, &x));
      CHECK_EQ_INT(x, want[i][j]);
    }
  }
  /* nested strings [["x", "yz"], ["w"]] and three levels [[[7, 8]], [[9], [10, 11]]] */
  ry_gguf_value in, y, z;
  CHECK_OK(ry_gguf_get_arr(g, "a.nested_str", RY_GGUF_ARRAY, &a));
  CHECK_OK(ry_gguf_arr_get(&a, 0, &in));
  CHECK_OK(ry_gguf_arr_str(&in, 1, &s, &n));
  CHECK(str_is(s, n, "yz"));
  CHECK_OK(ry_gguf_get_arr(g, "a.nested3", RY_GGUF_ARRAY, &a));
  CHECK_OK(ry_gguf_arr_get(&a, 1, &in));
  CHECK_OK(ry_gguf_arr_get(&in, 1, &y));
  CHECK(y.elem == RY_GGUF_I32 && y.n == 2);
  CHECK_OK(ry_gguf_arr_get(&y, 1, &z));
  CHECK_OK(ry_gguf_value_int(&z, &x));
  CHECK_EQ_INT(x, 11);
  ry_gguf_close(g);
}

TEST(gguf_tensor_infos) {
  ry_gguf *g = open_fixture("all_types.gguf");
  if (!g) return;
  CHECK_EQ_INT(ry_gguf_n_tensors(g), 15);
  const ry_gguf_tensor *t = ry_gguf_tensor_at(g, 0);
  CHECK(t && !strcmp(t->name, "input") && t->type == RY_GGML_F32 && t->n_dims == 2);
  CHECK(t && t->dims[0] == 256 && t->dims[1] == 3 && t->offset == 0 && t->size == 3 * 256 * 4);
  t = ry_gguf_find_tensor(g, "t.Q4_1");
  CHECK(t && t->type == RY_GGML_Q4_1 && t->size == 3 * 8 * 20 && t->offset % 32 == 0);
  CHECK(t && (const uint8_t *)t->data == (const uint8_t *)ry_gguf_tensor_at(g, 0)->data + t->offset);
  t = ry_gguf_find_tensor(g, "t.Q6_K");
  CHECK(t && t->type == RY_GGML_Q6_K && t->size == 3 * 210);
  CHECK(ry_gguf_find_tensor(g, "nope") == NULL && ry_gguf_tensor_at(g, 15) == NULL);
  /* a 4-d tensor: numpy shape (2,3,4,5) is ggml dims [5,4,3,2] */
  t = ry_gguf_find_tensor(g, "t.4d");
  CHECK(t && t->n_dims == 4 && t->dims[0] == 5 && t->dims[3] == 2);
  ry_shape sh = ry_gguf_tensor_shape(t);
  CHECK(ry_shape_equal(sh, RY_SHAPE(2, 3, 4, 5)));
  ry_array *a = NULL;
  CHECK_OK(ry_gguf_tensor_to_f32(t, &a));
  if (a) {
    CHECK(ry_shape_equal(ry_array_shape(a), RY_SHAPE(2, 3, 4, 5)));
    CHECK(ry_array_get_f64(a, 0) == 0 && ry_array_get_f64(a, 119) == 119);
  }
  ry_array_release(a);
  CHECK_STR(ry_ggml_type_name(RY_GGML_Q5_K), "Q5_K");
  CHECK(ry_ggml_type_name(4) == NULL && ry_ggml_type_name(-1) == NULL && ry_ggml_type_size(99) == 0);
  ry_gguf_close(g);
}

static const int k_simple[] = {RY_GGML_F32, RY_GGML_F16, RY_GGML_BF16, RY_GGML_Q4_0,
                               RY_GGML_Q4_1, RY_GGML_Q5_0, RY_GGML_Q5_1, RY_GGML_Q8_0};
static const int k_kquant[] = {RY_GGML_Q2_K, RY_GGML_Q3_K, RY_GGML_Q4_K, RY_GGML_Q5_K, RY_GGML_Q6_K};

static void check_dequant(const ry_gguf *g, const ry_gguf *e, int type) {
  char name[32];
  snprintf(name, sizeof name, "t.%s", ry_ggml_type_name(type));
  const ry_gguf_tensor *t = ry_gguf_find_tensor(g, name), *x = ry_gguf_find_tensor(e, name);
  CHECK_MSG(t && x && (int)t->type == type && x->type == RY_GGML_F32, "%s missing", name);
  if (!t || !x) return;
  int64_t n = t->dims[0] * t->dims[1];
  float *y = calloc((size_t)n, sizeof *y);
  CHECK_OK(ry_ggml_dequantize(type, t->data, y, n));
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; i++)
    if (memcmp(&y[i], (const float *)x->data + i, 4)) bad = i;
  CHECK_MSG(bad < 0, "%s: element %lld is %.9g, gguf-py says %.9g", name, (long long)bad, bad < 0 ? 0 : y[bad],
            bad < 0 ? 0 : ((const float *)x->data)[bad]);
  free(y);
}

TEST(gguf_dequantize_bit_identical_to_gguf_py) {
  ry_gguf *g = open_fixture("all_types.gguf"), *e = open_fixture("expect_dequant.gguf");
  if (g && e) {
    for (size_t i = 0; i < sizeof k_simple / sizeof *k_simple; i++) check_dequant(g, e, k_simple[i]);
    for (size_t i = 0; i < sizeof k_kquant / sizeof *k_kquant; i++) check_dequant(g, e, k_kquant[i]);
  }
  ry_gguf_close(g);
  ry_gguf_close(e);
}

TEST(gguf_quantize_bit_identical_to_gguf_py) {
  ry_gguf *g = open_fixture("all_types.gguf");
  if (!g) return;
  const ry_gguf_tensor *in = ry_gguf_find_tensor(g, "input");
  CHECK(in && in->type == RY_GGML_F32);
  if (!in) {
    ry_gguf_close(g);
    return;
  }
  int64_t n = 3 * 256;
  for (size_t i = 0; i < sizeof k_simple / sizeof *k_simple; i++) {
    int type = k_simple[i];
    char name[32];
    snprintf(name, sizeof name, "t.%s", ry_ggml_type_name(type));
    const ry_gguf_tensor *t = ry_gguf_find_tensor(g, name);
    size_t bytes = 0;
    CHECK_OK(ry_ggml_row_size(type, n, &bytes));
    CHECK(t && t->size == bytes);
    if (!t || t->size != bytes) continue;
    unsigned char *q = calloc(bytes, 1);
    CHECK_OK(ry_ggml_quantize(type, in->data, q, n));
    size_t bad = bytes;
    for (size_t k = 0; k < bytes && bad == bytes; k++)
      if (q[k] != ((const unsigned char *)t->data)[k]) bad = k;
    CHECK_MSG(bad == bytes, "%s: byte %zu (block %zu) is %02x, gguf-py wrote %02x", name, bad,
              bad / ry_ggml_type_size(type), bad < bytes ? q[bad] : 0,
              bad < bytes ? ((const unsigned char *)t->data)[bad] : 0);
    free(q);
  }
  ry_gguf_close(g);
}

TEST(gguf_quant_api_errors) {
  float x[64] = {0};
  unsigned char q[256];
  size_t n;
  CHECK_ERR(ry_ggml_row_size(RY_GGML_Q4_0, 48, &n), RY_ERR_SHAPE, "48", "Q4_0", "32");
  CHECK_ERR(ry_ggml_row_size(5, 32, &n), RY_ERR_UNSUPPORTED, "unknown ggml type 5");
  CHECK_ERR(ry_ggml_dequantize(RY_GGML_IQ2_XXS, q, x, 256), RY_ERR_UNSUPPORTED, "IQ2_XXS");
  CHECK_ERR(ry_ggml_quantize(RY_GGML_Q4_K, x, q, 256), RY_ERR_UNSUPPORTED, "Q4_K");
  CHECK_ERR(ry_ggml_quantize(RY_GGML_Q8_0, x, q, 33), RY_ERR_SHAPE, "33");
  CHECK_OK(ry_ggml_row_size(RY_GGML_Q6_K, 512, &n));
  CHECK_EQ_INT(n, 420);
  /* a round trip through Q8_0 is close */
  for (int i = 0; i < 64; i++) x[i] = (float)sin(i * 0.3);
  float y[64];
  CHECK_OK(ry_ggml_quantize(RY_GGML_Q8_0, x, q, 64));
  CHECK_OK(ry_ggml_dequantize(RY_GGML_Q8_0, q, y, 64));
  for (int i = 0; i < 64; i++) CHECK_NEAR(y[i], x[i], 0.01);
}

TEST(gguf_null_arguments) {
  int64_t i;
  double f;
  const char *s;
  size_t n;
  ry_gguf_value v;
  ry_gguf *g = NULL;
  CHECK_ERR(ry_gguf_get_int(NULL, "k", &i), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_get_float(NULL, NULL, &f), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_get_str(NULL, "k", &s, &n), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_get_arr(NULL, "k", RY_GGUF_U8, &v), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_open(NULL, &g), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_parse(NULL, 4, "x", &g), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_value_int(NULL, &i), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_arr_get(NULL, 0, &v), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_tensor_to_f32(NULL, NULL), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK(ry_gguf_find(NULL, "k") == NULL && ry_gguf_find_tensor(NULL, "t") == NULL && ry_gguf_n_kv(NULL) == 0);
  CHECK(ry_gguf_tensor_at(NULL, 0) == NULL && ry_gguf_key(NULL, 0) == NULL && ry_gguf_version(NULL) == 0);
  /* a hand-made array of strings has no element index to read */
  ry_gguf_value fake = {RY_GGUF_ARRAY, RY_GGUF_STRING, 3, "abc", NULL}, e;
  CHECK_ERR(ry_gguf_arr_get(&fake, 0, &e), RY_ERR_INVALID_ARGUMENT, "not read from a file");
  ry_gguf_value fake_int = {RY_GGUF_I32, RY_GGUF_U8, 0, NULL, NULL};
  CHECK_ERR(ry_gguf_value_int(&fake_int, &i), RY_ERR_INVALID_ARGUMENT, "NULL");
  ry_gguf_close(NULL);
  ry_gguf_writer_free(NULL);
  CHECK_ERR(ry_gguf_writer_write(NULL, "x"), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_gguf_writer_add_all(NULL, NULL), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_ggml_dequantize(RY_GGML_Q4_0, NULL, NULL, 32), RY_ERR_INVALID_ARGUMENT, "NULL");
}

TEST(gguf_v2_and_custom_alignment) {
  ry_gguf *g = open_fixture("v2.gguf");
  if (g) {
    CHECK_EQ_INT(ry_gguf_version(g), 2);
    CHECK_EQ_INT(get_int(g, "small.n"), 7);
    const ry_gguf_tensor *b = ry_gguf_find_tensor(g, "b");
    CHECK(b && b->type == RY_GGML_F16 && b->dims[0] == 3 && b->dims[1] == 2);
    ry_array *a = NULL;
    CHECK_OK(ry_gguf_tensor_to_f32(b, &a));
    CHECK(a && ry_array_get_f64(a, 5) == 6.0);
    ry_array_release(a);
  }
  ry_gguf_close(g);
  g = open_fixture("align64.gguf");
  if (g) {
    CHECK_EQ_INT(ry_gguf_alignment(g), 64);
    CHECK_EQ_INT(ry_gguf_data_offset(g) % 64, 0);
    const ry_gguf_tensor *c = ry_gguf_find_tensor(g, "c");
    CHECK(c && c->offset == 128 && c->size == 4 && *(const float *)c->data == 9.0f);
  }
  ry_gguf_close(g);
  g = open_fixture("raw_edge.gguf");
  if (g) {
    ry_gguf_value a;
    CHECK_OK(ry_gguf_get_arr(g, "e.arr", RY_GGUF_I32, &a));
    CHECK(a.n == 0);
    ry_gguf_value e;
    CHECK_ERR(ry_gguf_arr_get(&a, 0, &e), RY_ERR_INVALID_ARGUMENT, "out of range");
    const char *s;
    size_t n = 9;
    CHECK_OK(ry_gguf_get_str(g, "e.str", &s, &n));
    CHECK(n == 0);
    CHECK_EQ_INT(ry_gguf_n_tensors(g), 0);
  }
  ry_gguf_close(g);
}

/* every malformed fixture, with what its error must say */
TEST(gguf_bad_files) {
  static const struct {
    const char *file;
    ry_code code;
    const char *what[3];
  } cases[] = {
      {"bad_magic.gguf", RY_ERR_PARSE, {"bad magic", "at byte 0"}},
      {"bad_version1.gguf", RY_ERR_PARSE, {"version 1 is not supported"}},
      {"bad_version9.gguf", RY_ERR_PARSE, {"unsupported GGUF version 9"}},
      {"bad_bigendian.gguf", RY_ERR_PARSE, {"big-endian"}},
      {"bad_trunc_3.gguf", RY_ERR_PARSE, {"truncated", "magic"}},
      {"bad_trunc_10.gguf", RY_ERR_PARSE, {"truncated", "tensor count"}},
      {"bad_trunc_20.gguf", RY_ERR_PARSE, {"truncated", "key/value count"}},
      {"bad_trunc_30.gguf", RY_ERR_PARSE, {"key/value count 1 is more than"}},
      {"bad_trunc_60.gguf", RY_ERR_PARSE, {"key 'general.architecture'", "truncated", "string"}},
      {"bad_trunc_104.gguf", RY_ERR_PARSE, {"data section", "truncated", "padding"}},
      {"bad_trunc_143.gguf", RY_ERR_PARSE, {"tensor 'w'", "runs past the end"}},
      {"bad_dup_key.gguf", RY_ERR_PARSE, {"duplicate key 'k'"}},
      {"bad_dup_tensor.gguf", RY_ERR_PARSE, {"duplicate tensor name 'w'"}},
      {"bad_offset_past_end.gguf", RY_ERR_PARSE, {"tensor 'w'", "runs past the end"}},
      {"bad_size_past_end.gguf", RY_ERR_PARSE, {"tensor 'w'", "runs past the end"}},
      {"bad_misaligned.gguf", RY_ERR_PARSE, {"tensor 'w'", "not a multiple of the alignment 32"}},
      {"bad_overflow.gguf", RY_ERR_PARSE, {"tensor 'w'", "overflows"}},
      {"bad_dim_too_large.gguf", RY_ERR_PARSE, {"tensor 'w'", "too large"}},
      {"bad_vtype.gguf", RY_ERR_PARSE, {"key 'k'", "unknown value type 13"}},
      {"bad_elem_type.gguf", RY_ERR_PARSE, {"key 'k'", "unknown array element type 77"}},
      {"bad_ggml_type.gguf", RY_ERR_PARSE, {"tensor 'w'", "unknown ggml type 4"}},
      {"bad_ggml_type99.gguf", RY_ERR_PARSE, {"tensor 'w'", "unknown ggml type 99"}},
      {"bad_str_len.gguf", RY_ERR_PARSE, {"key 'k'", "string length", "past the end"}},
      {"bad_key_len.gguf", RY_ERR_PARSE, {"key/value 0", "key length", "past the end"}},
      {"bad_arr_count.gguf", RY_ERR_PARSE, {"key 'k'", "array of 1152921504606846976 u32"}},
      {"bad_kv_count.gguf", RY_ERR_PARSE, {"key/value count 1099511627776"}},
      {"bad_tensor_count.gguf", RY_ERR_PARSE, {"tensor count 1099511627776"}},
      {"bad_alignment.gguf", RY_ERR_PARSE, {"general.alignment", "48 is not a power of two"}},
      {"bad_alignment_type.gguf", RY_ERR_PARSE, {"general.alignment", "string, expected u32"}},
      {"bad_bool.gguf", RY_ERR_PARSE, {"key 'k'", "bool value 2"}},
      {"bad_ndims.gguf", RY_ERR_PARSE, {"tensor 'w'", "5 dims"}},
      {"bad_block.gguf", RY_ERR_PARSE, {"tensor 'w'", "row length 16", "Q4_0 block size 32"}},
      {"bad_overlap.gguf", RY_ERR_PARSE, {"tensor 'b'", "overlaps tensor 'a'"}},
      {"bad_empty_key.gguf", RY_ERR_PARSE, {"key/value 0", "empty key"}},
      {"bad_nul_name.gguf", RY_ERR_PARSE, {"tensor info 0", "NUL"}},
      {"bad_nest_depth.gguf", RY_ERR_PARSE, {"key 'deep'", "nested deeper than 8"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ry_gguf *g = NULL;
    ry_status s = ry_gguf_open(fixture(cases[i].file), &g);
    CHECK_MSG(s && !g, "%s opened", cases[i].file);
    CHECK_MSG(ry_status_code(s) == cases[i].code, "%s: code %s: %s", cases[i].file, ry_code_name(ry_status_code(s)),
              ry_status_message(s));
    const char *msg = ry_status_message(s);
    CHECK_MSG(strstr(msg, cases[i].file), "%s: message does not name the file: %s", cases[i].file, msg);
    CHECK_MSG(strstr(msg, "at byte "), "%s: message has no byte offset: %s", cases[i].file, msg);
    for (int k = 0; k < 3 && cases[i].what[k]; k++)
      CHECK_MSG(strstr(msg, cases[i].what[k]), "%s: message lacks \"%s\": %s", cases[i].file, cases[i].what[k], msg);
    ry_status_free(s);
    ry_gguf_close(g);
  }
  /* not a file at all */
  ry_gguf *g = NULL;
  CHECK_ERR(ry_gguf_open(fixture("does_not_exist.gguf"), &g), RY_ERR_IO, "does_not_exist.gguf");
  CHECK_ERR(ry_gguf_parse("", 0, "empty", &g), RY_ERR_PARSE, "empty", "truncated");
}

/* Every prefix of a valid file (each byte through the tensor infos, then
 * steps through the data) fails cleanly; the whole file parses. */
TEST(gguf_every_truncation_fails_cleanly) {
  size_t len = 0;
  char *buf = rt_read_file(fixture("all_types.gguf"), &len);
  CHECK(buf != NULL);
  if (!buf) return;
  ry_gguf *g = NULL;
  CHECK_OK(ry_gguf_parse(buf, len, "all", &g));
  size_t data = ry_gguf_data_offset(g);
  ry_gguf_close(g);
  for (size_t cut = 0; cut < len; cut += cut < data ? 1 : 97) {
    g = NULL;
    ry_status s = ry_gguf_parse(buf, cut, "cut", &g);
    CHECK_MSG(s && !g && ry_status_code(s) == RY_ERR_PARSE, "prefix of %zu bytes: %s", cut,
              s ? ry_status_message(s) : "parsed");
    ry_status_free(s);
    ry_gguf_close(g);
  }
  free(buf);
}

static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  char *x = rt_read_file(a, &na), *y = rt_read_file(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  if (x && y && !same) {
    size_t i = 0;
    while (i < na && i < nb && x[i] == y[i]) i++;
    rt_fail(__FILE__, __LINE__, "%s (%zu bytes) and %s (%zu bytes) differ from byte %zu", a, na, b, nb, i);
  }
  free(x);
  free(y);
  return same;
}

/* Reading a gguf-py file and writing it back gives the same bytes. */
TEST(gguf_writer_roundtrip_is_byte_identical) {
  static const char *files[] = {"all_types.gguf", "align64.gguf", "writer_expected.gguf", "expect_dequant.gguf"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    ry_gguf *g = open_fixture(files[i]);
    if (!g) continue;
    ry_gguf_writer *w = NULL;
    CHECK_OK(ry_gguf_writer_new(&w));
    CHECK_OK(ry_gguf_writer_add_all(w, g));
    const char *out = rt_tmp_path("gguf", files[i]);
    CHECK_OK(ry_gguf_writer_write(w, out));
    CHECK_MSG(same_file(fixture(files[i]), out), "%s: rewrite differs", files[i]);
    ry_gguf_writer_free(w);
    ry_gguf_close(g);
  }
  /* v2 comes back as v3, otherwise equal */
  ry_gguf *g = open_fixture("v2.gguf"), *h = NULL;
  ry_gguf_writer *w = NULL;
  CHECK_OK(ry_gguf_writer_new(&w));
  if (g) CHECK_OK(ry_gguf_writer_add_all(w, g));
  const char *out = rt_tmp_path("gguf", "v2_to_v3.gguf");
  CHECK_OK(ry_gguf_writer_write(w, out));
  CHECK_OK(ry_gguf_open(out, &h));
  if (g && h) {
    CHECK_EQ_INT(ry_gguf_version(h), 3);
    CHECK_EQ_INT(ry_gguf_n_kv(h), ry_gguf_n_kv(g));
    CHECK_EQ_INT(ry_gguf_n_tensors(h), 3);
    const ry_gguf_tensor *a = ry_gguf_find_tensor(h, "b"), *b = ry_gguf_find_tensor(g, "b");
    CHECK(a && b && a->size == b->size && !memcmp(a->data, b->data, a->size));
  }
  ry_gguf_close(h);
  ry_gguf_writer_free(w);
  ry_gguf_close(g);
}

/* The writer API builds the same bytes as gguf-py's GGUFWriter
 * (gen_gguf_fixtures.py write_writer_expected). */
TEST(gguf_writer_matches_gguf_py) {
  ry_gguf_writer *w = NULL;
  CHECK_OK(ry_gguf_writer_new(&w));
  if (!w) return;
  CHECK_OK(ry_gguf_writer_add_str(w, "general.architecture", "ryfttest", 8));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.u32", RY_GGUF_U32, 123456));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.i32", RY_GGUF_I32, -42));
  CHECK_OK(ry_gguf_writer_add_float(w, "w.f32", RY_GGUF_F32, 0.25));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.bool", RY_GGUF_BOOL, 0));
  CHECK_OK(ry_gguf_writer_add_str(w, "w.str", "ryft", 4));
  CHECK_OK(ry_gguf_writer_add_float(w, "w.f64", RY_GGUF_F64, -1.5));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.u64", RY_GGUF_U64, 1LL << 40));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.i64", RY_GGUF_I64, -(1LL << 40)));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.u8", RY_GGUF_U8, 9));
  CHECK_OK(ry_gguf_writer_add_int(w, "w.i16", RY_GGUF_I16, -300));
  float af[3] = {1, 2, 3.5f};
  int32_t ai[3] = {-1, 0, 1};
  const char *as[3] = {"<s>", "</s>", "hello"};
  CHECK_OK(ry_gguf_writer_add_arr(w, "w.af32", RY_GGUF_F32, 3, af));
  CHECK_OK(ry_gguf_writer_add_arr(w, "w.ai32", RY_GGUF_I32, 3, ai));
  CHECK_OK(ry_gguf_writer_add_str_arr(w, "w.astr", 3, as, NULL));
  float t0[6] = {0, 1, 2, 3, 4, 5};
  int64_t d0[2] = {3, 2};
  CHECK_OK(ry_gguf_writer_add_tensor(w, "w.f32", RY_GGML_F32, 2, d0, t0, sizeof t0));
  float lin[64];
  for (int i = 0; i < 64; i++) lin[i] = (float)(-1.0 + 2.0 * i / 63.0); /* np.linspace(-1, 1, 64) in f32 */
  unsigned char q8[68];
  CHECK_OK(ry_ggml_quantize(RY_GGML_Q8_0, lin, q8, 64));
  int64_t d1[2] = {32, 2};
  CHECK_OK(ry_gguf_writer_add_tensor(w, "w.q8", RY_GGML_Q8_0, 2, d1, q8, sizeof q8));
  const char *out = rt_tmp_path("gguf", "writer.gguf");
  CHECK_OK(ry_gguf_writer_write(w, out));
  CHECK(same_file(fixture("writer_expected.gguf"), out));
  ry_gguf_writer_free(w);
}

TEST(gguf_writer_errors) {
  ry_gguf_writer *w = NULL;
  CHECK_OK(ry_gguf_writer_new(&w));
  if (!w) return;
  CHECK_OK(ry_gguf_writer_add_int(w, "k", RY_GGUF_U8, 1));
  CHECK_ERR(ry_gguf_writer_add_int(w, "k", RY_GGUF_U8, 2), RY_ERR_INVALID_ARGUMENT, "duplicate key 'k'");
  CHECK_ERR(ry_gguf_writer_add_int(w, "big", RY_GGUF_U8, 256), RY_ERR_INVALID_ARGUMENT, "'big'", "256", "u8");
  CHECK_ERR(ry_gguf_writer_add_int(w, "b", RY_GGUF_BOOL, 2), RY_ERR_INVALID_ARGUMENT, "'b'");
  CHECK_ERR(ry_gguf_writer_add_int(w, "s", RY_GGUF_STRING, 2), RY_ERR_DTYPE, "'s'", "not an integer type");
  CHECK_ERR(ry_gguf_writer_add_float(w, "f", RY_GGUF_I32, 2), RY_ERR_DTYPE, "'f'");
  CHECK_ERR(ry_gguf_writer_add_arr(w, "a", RY_GGUF_STRING, 1, "x"), RY_ERR_DTYPE, "'a'");
  CHECK_ERR(ry_gguf_writer_add_int(w, "", RY_GGUF_U8, 1), RY_ERR_INVALID_ARGUMENT, "empty key");
  float x[32] = {0};
  int64_t d[2] = {16, 2};
  CHECK_ERR(ry_gguf_writer_add_tensor(w, "t", RY_GGML_F32, 2, d, x, 100), RY_ERR_SHAPE, "'t'", "100 bytes", "128");
  CHECK_ERR(ry_gguf_writer_add_tensor(w, "t", RY_GGML_Q4_0, 2, d, x, 36), RY_ERR_SHAPE, "'t'", "Q4_0");
  CHECK_ERR(ry_gguf_writer_add_tensor(w, "t", (ry_ggml_type)5, 2, d, x, 36), RY_ERR_UNSUPPORTED, "'t'", "unknown ggml type 5");
  CHECK_ERR(ry_gguf_writer_add_tensor(w, "t", RY_GGML_F32, 5, d, x, 128), RY_ERR_SHAPE, "'t'", "5 dims");
  CHECK_OK(ry_gguf_writer_add_tensor(w, "t", RY_GGML_F32, 2, d, x, 128));
  CHECK_ERR(ry_gguf_writer_add_tensor(w, "t", RY_GGML_F32, 2, d, x, 128), RY_ERR_INVALID_ARGUMENT, "duplicate tensor name 't'");
  CHECK_OK(ry_gguf_writer_add_int(w, "general.alignment", RY_GGUF_U32, 48));
  const char *out = rt_tmp_path("gguf", "bad_align.gguf");
  CHECK_ERR(ry_gguf_writer_write(w, out), RY_ERR_INVALID_ARGUMENT, "general.alignment");
  ry_gguf_writer_free(w);
  /* a failed write leaves nothing behind and an earlier file intact */
  CHECK_OK(ry_gguf_writer_new(&w));
  CHECK_OK(ry_gguf_writer_add_int(w, "k", RY_GGUF_U8, 1));
  CHECK_ERR(ry_gguf_writer_write(w, "/nonexistent-dir/x.gguf"), RY_ERR_IO, "/nonexistent-dir/x.gguf");
  ry_gguf_writer_free(w);
}

static ry_status fail_after_header(const char *final_path, size_t written) {
  return written > 64 ? ry_status_make(RY_ERR_IO, "%s: simulated failure at byte %zu", final_path, written) : NULL;
}

/* A write that fails midway leaves the earlier file at the path untouched
 * and no temporary file behind. */
TEST(gguf_failed_write_keeps_the_old_file) {
  const char *out = rt_tmp_path("gguf", "atomic.gguf");
  ry_gguf *g = open_fixture("align64.gguf"), *h = open_fixture("all_types.gguf");
  ry_gguf_writer *w = NULL, *w2 = NULL;
  CHECK_OK(ry_gguf_writer_new(&w));
  CHECK_OK(ry_gguf_writer_new(&w2));
  if (g && h && w && w2) {
    CHECK_OK(ry_gguf_writer_add_all(w, g));
    CHECK_OK(ry_gguf_writer_write(w, out));
    CHECK_OK(ry_gguf_writer_add_all(w2, h));
    ry__atomic_write_hook = fail_after_header;
    CHECK_ERR(ry_gguf_writer_write(w2, out), RY_ERR_IO, "simulated failure");
    ry__atomic_write_hook = NULL;
    CHECK(same_file(fixture("align64.gguf"), out));
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    FILE *f = fopen(tmp, "rb");
    CHECK_MSG(f == NULL, "%s left behind", tmp);
    if (f) fclose(f);
  }
  ry_gguf_writer_free(w);
  ry_gguf_writer_free(w2);
  ry_gguf_close(g);
  ry_gguf_close(h);
}

/* ---- allocation failures ---------------------------------------------------------------
 * An allocator that fails after a budget and checks that every block is
 * freed (or resized) with the size it was allocated with. */
#define MAX_LIVE 8192
static struct {
  void *p;
  size_t n;
} g_blocks[MAX_LIVE];
static long g_budget, g_bad_size, g_untracked;

static int find_block(void *p) {
  for (int i = 0; i < MAX_LIVE; i++)
    if (g_blocks[i].p == p) return i;
  return -1;
}

static void *sized_alloc(void *ud, void *p, size_t old, size_t n) {
  (void)ud;
  int i = p ? find_block(p) : -1;
  if (p && i < 0) g_untracked++;
  if (p && i >= 0 && g_blocks[i].n != old) g_bad_size++;
  if (n == 0) {
    if (i >= 0) g_blocks[i].p = NULL;
    free(p);
    return NULL;
  }
  if (g_budget-- <= 0) return NULL;
  void *q = realloc(p, n);
  if (!q) return NULL;
  if (i < 0) i = find_block(NULL);
  if (i >= 0) g_blocks[i].p = q, g_blocks[i].n = n;
  else g_untracked++;
  return q;
}

static long live_blocks(void) {
  long k = 0;
  for (int i = 0; i < MAX_LIVE; i++) k += g_blocks[i].p != NULL;
  return k;
}

/* Every allocation of parsing a file, copying it into a writer and writing
 * it fails in turn: each gives RY_ERR_OUT_OF_MEMORY, frees everything, and
 * frees every block with its own size. */
TEST(gguf_allocation_failures) {
  size_t len = 0;
  char *buf = rt_read_file(fixture("all_types.gguf"), &len);
  CHECK(buf != NULL);
  if (!buf) return;
  const char *out = rt_tmp_path("gguf", "oom.gguf");
  int ok = 0, oom = 0;
  for (long k = 0; k < 5000 && !ok; k++) {
    memset(g_blocks, 0, sizeof g_blocks);
    g_budget = k;
    g_bad_size = g_untracked = 0;
    ry_set_allocator(sized_alloc, NULL);
    ry_gguf *g = NULL;
    ry_gguf_writer *w = NULL;
    ry_status s = ry_gguf_parse(buf, len, "all_types", &g);
    if (!s) s = ry_gguf_writer_new(&w);
    if (!s) s = ry_gguf_writer_add_all(w, g);
    if (!s) s = ry_gguf_writer_write(w, out);
    if (s) {
      CHECK_MSG(ry_status_code(s) == RY_ERR_OUT_OF_MEMORY, "budget %ld: %s", k, ry_status_message(s));
      oom++;
    } else {
      ok = 1;
    }
    ry_status_free(s);
    ry_gguf_writer_free(w);
    ry_gguf_close(g);
    ry_set_allocator(NULL, NULL);
    CHECK_MSG(live_blocks() == 0, "budget %ld: %ld blocks leaked", k, live_blocks());
    CHECK_MSG(g_bad_size == 0 && g_untracked == 0, "budget %ld: %ld frees with the wrong size, %ld untracked", k,
              g_bad_size, g_untracked);
  }
  CHECK(ok && oom > 20);
  CHECK(same_file(fixture("all_types.gguf"), out));
  free(buf);
}

/* ---- the real model -------------------------------------------------------------------- */

/* Bits of a float buffer folded the way tests/data/gen_gguf_fixtures.py
 * --smollm2 does: sum over i of bits[i] * (2i + 1) mod 2^64 (any single
 * changed element changes it). */
static uint64_t fold(const float *y, int64_t n) {
  uint64_t h = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t b;
    memcpy(&b, &y[i], 4);
    h += (uint64_t)b * (uint64_t)(2 * i + 1);
  }
  return h;
}

TEST(gguf_smollm2) {
  const char *path = rt_smollm2_path();
  if (!path) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  ry_gguf *g = NULL;
  CHECK_OK(ry_gguf_open(path, &g));
  if (!g) return;
  CHECK_EQ_INT(ry_gguf_file_size(g), 98362432);
  CHECK_EQ_INT(ry_gguf_version(g), 3);
  const char *s;
  size_t n;
  CHECK_OK(ry_gguf_get_str(g, "general.architecture", &s, &n));
  CHECK(str_is(s, n, "llama"));
  CHECK_EQ_INT(get_int(g, "llama.block_count"), 30);
  CHECK_EQ_INT(get_int(g, "llama.embedding_length"), 576);
  CHECK_EQ_INT(get_int(g, "llama.feed_forward_length"), 1536);
  CHECK_EQ_INT(get_int(g, "llama.attention.head_count"), 9);
  CHECK_EQ_INT(get_int(g, "llama.attention.head_count_kv"), 3);
  CHECK_EQ_INT(get_int(g, "llama.context_length"), 8192);
  CHECK_EQ_INT(get_int(g, "llama.vocab_size"), 49152);
  CHECK_EQ_INT(get_int(g, "llama.rope.dimension_count"), 64); /* head dim */
  CHECK_EQ_INT(get_int(g, "tokenizer.ggml.bos_token_id"), 1);
  CHECK_EQ_INT(get_int(g, "tokenizer.ggml.eos_token_id"), 2);
  double f = 0;
  CHECK_OK(ry_gguf_get_float(g, "llama.rope.freq_base", &f));
  CHECK(f == 100000.0);
  CHECK_OK(ry_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &f));
  CHECK(fabs(f - 1e-5) < 1e-12);
  CHECK_OK(ry_gguf_get_str(g, "tokenizer.ggml.model", &s, &n));
  CHECK(str_is(s, n, "gpt2"));
  CHECK_OK(ry_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n));
  CHECK(str_is(s, n, "smollm"));
  ry_gguf_value a;
  CHECK_OK(ry_gguf_get_arr(g, "tokenizer.ggml.tokens", RY_GGUF_STRING, &a));
  CHECK_EQ_INT(a.n, 49152);
  CHECK_OK(ry_gguf_arr_str(&a, 1, &s, &n));
  CHECK(str_is(s, n, "<|im_start|>"));
  CHECK_OK(ry_gguf_get_arr(g, "tokenizer.ggml.merges", RY_GGUF_STRING, &a));
  CHECK_EQ_INT(a.n, 48900);
  CHECK_OK(ry_gguf_get_str(g, "tokenizer.chat_template", &s, &n));
  CHECK(n > 0 && contains(s, n, "<|im_start|>"));
  /* tensors: 210 Q4_1, 61 F32, token_embd Q8_0, no output.weight */
  int counts[RY_GGML_TYPE_LIMIT] = {0};
  for (int64_t i = 0; i < ry_gguf_n_tensors(g); i++) counts[ry_gguf_tensor_at(g, i)->type]++;
  CHECK_EQ_INT(ry_gguf_n_tensors(g), 272);
  CHECK_EQ_INT(counts[RY_GGML_Q4_1], 210);
  CHECK_EQ_INT(counts[RY_GGML_F32], 61);
  CHECK_EQ_INT(counts[RY_GGML_Q8_0], 1);
  const ry_gguf_tensor *emb = ry_gguf_find_tensor(g, "token_embd.weight");
  CHECK(emb && emb->type == RY_GGML_Q8_0 && emb->dims[0] == 576 && emb->dims[1] == 49152);
  CHECK(ry_gguf_find_tensor(g, "output.weight") == NULL);
  const ry_gguf_tensor *q = ry_gguf_find_tensor(g, "blk.0.attn_q.weight");
  CHECK(q && q->type == RY_GGML_Q4_1 && q->dims[0] == 576 && q->dims[1] == 576);
  const ry_gguf_tensor *k = ry_gguf_find_tensor(g, "blk.29.attn_k.weight");
  CHECK(k && k->dims[0] == 576 && k->dims[1] == 192); /* 3 KV heads of 64 */
  /* dequantized tensors against gguf-py (tests/data/gguf/smollm2_golden.txt) */
  size_t glen = 0;
  char golden_path[1024];
  snprintf(golden_path, sizeof golden_path, "%s/tests/data/gguf/smollm2_golden.txt", rt_source_dir());
  char *golden = rt_read_file(golden_path, &glen);
  CHECK(golden != NULL);
  int checked = 0;
  for (char *line = golden ? strtok(golden, "\n") : NULL; line; line = strtok(NULL, "\n")) {
    char name[128];
    unsigned long long want, nel;
    float first, last;
    if (line[0] == '#' || sscanf(line, "%127s %llu %llx %g %g", name, &nel, &want, &first, &last) != 5) continue;
    const ry_gguf_tensor *t = ry_gguf_find_tensor(g, name);
    CHECK_MSG(t != NULL, "no tensor %s", name);
    if (!t) continue;
    ry_array *y = NULL;
    CHECK_OK(ry_gguf_tensor_to_f32(t, &y));
    if (!y) continue;
    CHECK_EQ_INT(ry_array_numel(y), (long long)nel);
    const float *d = ry_array_data(y);
    uint64_t h = fold(d, ry_array_numel(y));
    CHECK_MSG(h == want, "%s: dequantized bits fold to %llx, gguf-py's to %llx", name, (unsigned long long)h, want);
    CHECK(d[0] == first && d[ry_array_numel(y) - 1] == last);
    ry_array_release(y);
    checked++;
  }
  CHECK(checked >= 4);
  free(golden);
  ry_gguf_close(g);
}

/* safetensors (src/io/safetensors.c): round trips of every dtype, a file
 * written by Python's safetensors package (tests/data/st_python.safetensors,
 * from tests/data/gen_io_fixtures.py), bad input, checkpoint loading with
 * missing/mismatched tensors, and interrupted writes (an error mid-write, and
 * a child process killed mid-write) that leave the previous file intact. */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "testlib.h"

static const char *tmp_path(const char *name) { return rt_tmp_path("st", name); }

static void write_bytes(const char *path, const void *d, size_t n) { rt_write_bytes(path, d, n); }

/* A tree with one array of every dtype, filled with distinct bytes. */
static ry_params *every_dtype_tree(int salt) {
  ry_params *p = ry_params_new();
  for (int t = 0; t < RY_DTYPE_COUNT; t++) {
    ry_shape s = t % 3 == 0 ? RY_SHAPE(2, 3) : t % 3 == 1 ? RY_SHAPE(5) : RY_SCALAR;
    size_t nb = (size_t)ry_shape_numel(s) * ry_dtype_size((ry_dtype)t);
    unsigned char buf[64];
    for (size_t i = 0; i < nb; i++) buf[i] = (unsigned char)(i * 37 + (size_t)t * 11 + (size_t)salt);
    if (t == RY_BOOL)
      for (size_t i = 0; i < nb; i++) buf[i] &= 1;
    ry_array *a = NULL;
    ry_status st = ry_array_from_host((ry_dtype)t, s, buf, &a);
    ry_status_free(st);
    char path[64];
    snprintf(path, sizeof path, "layer%d/%s", t % 2, ry_dtype_name((ry_dtype)t));
    ry_status_free(ry_params_set_owned(p, path, a));
  }
  return p;
}

TEST(safetensors_roundtrip_every_dtype) {
  ry_params *p = every_dtype_tree(0);
  CHECK_EQ_INT(ry_params_count(p), RY_DTYPE_COUNT);
  const char *path = tmp_path("all.safetensors");
  ry_meta meta[2] = {{"epoch", "3"}, {"note", "quote \" backslash \\ tab \t"}};
  CHECK_OK(ry_safetensors_write(path, p, 2, meta));
  ry_params *q = NULL;
  CHECK_OK(ry_safetensors_read(path, &q));
  CHECK(ry_params_equal(p, q)); /* same paths, order, types, bytes (bf16 included) */
  ry_params_free(q);
  CHECK_OK(ry_safetensors_load(path, p, &q));
  CHECK(ry_params_equal(p, q));
  ry_params_free(q);
  char *v = NULL;
  CHECK_OK(ry_safetensors_metadata(path, "note", &v));
  CHECK_STR(v, "quote \" backslash \\ tab \t");
  ry_free(v);
  CHECK_OK(ry_safetensors_metadata(path, "missing", &v));
  CHECK(v == NULL);
  /* the header is 8-byte aligned */
  FILE *f = fopen(path, "rb");
  unsigned char len8[8] = {0};
  if (f) {
    CHECK(fread(len8, 1, 8, f) == 8);
    fclose(f);
  }
  CHECK_EQ_INT(len8[0] % 8, 0);
  /* an empty tree */
  ry_params *e = ry_params_new();
  CHECK_OK(ry_safetensors_write(path, e, 0, NULL));
  CHECK_OK(ry_safetensors_read(path, &q));
  CHECK_EQ_INT(ry_params_count(q), 0);
  ry_params_free(q);
  ry_params_free(e);
  ry_params_free(p);
  remove(path);
}

TEST(safetensors_reads_python_file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/st_python.safetensors", rt_source_dir());
  ry_params *p = NULL;
  CHECK_OK(ry_safetensors_read(path, &p));
  CHECK_EQ_INT(ry_params_count(p), 6);
  ry_array *w = ry_params_get(p, "mlp/fc1/w");
  CHECK(w && ry_array_dtype(w) == RY_F32 && ry_shape_equal(ry_array_shape(w), RY_SHAPE(2, 3)));
  if (w) CHECK(ry_array_get_f64(w, 5) == 1.25);
  ry_array *b = ry_params_get(p, "mlp/fc1/b");
  CHECK(b && ry_array_dtype(b) == RY_I64 && ry_array_get_i64(b, 1) == -2);
  ry_array *h = ry_params_get(p, "half");
  CHECK(h && ry_array_dtype(h) == RY_F16 && ry_array_get_f64(h, 1) == -1.0);
  ry_array *fl = ry_params_get(p, "flags");
  CHECK(fl && ry_array_dtype(fl) == RY_BOOL && ry_array_get_i64(fl, 0) == 1 && ry_array_get_i64(fl, 1) == 0);
  ry_array *by = ry_params_get(p, "bytes");
  CHECK(by && ry_array_dtype(by) == RY_U8 && ry_array_get_i64(by, 3) == 255);
  ry_array *sc = ry_params_get(p, "scalar");
  CHECK(sc && ry_array_shape(sc).rank == 0 && ry_array_get_f64(sc, 0) == 2.5);
  char *v = NULL;
  CHECK_OK(ry_safetensors_metadata(path, "step", &v));
  CHECK_STR(v, "12");
  ry_free(v);
  ry_params_free(p);
}

/* A file from a header string and data bytes. */
static void make_file(const char *path, const char *header, const void *data, size_t n) {
  size_t hl = strlen(header);
  unsigned char *buf = calloc(1, 8 + hl + n + 1);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, header, hl);
  if (n) memcpy(buf + 8 + hl, data, n);
  write_bytes(path, buf, 8 + hl + n);
  free(buf);
}

TEST(safetensors_bad_input) {
  const char *p = tmp_path("bad.safetensors");
  ry_params *q = NULL;
  float d[4] = {1, 2, 3, 4};
  CHECK_ERR(ry_safetensors_read(tmp_path("nope.safetensors"), &q), RY_ERR_IO, "nope.safetensors", "cannot open");
  write_bytes(p, "\x10\0\0", 3);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "bad.safetensors", "truncated safetensors file");
  /* header length beyond the file */
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16);
  FILE *f = fopen(p, "r+b");
  if (f) {
    unsigned char big = 0xff;
    fwrite(&big, 1, 1, f);
    fclose(f);
  }
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "truncated safetensors header");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "bad safetensors header");
  make_file(p, "{\"a\" {\"dtype\":\"F32\"}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "bad safetensors header", "header byte");
  make_file(p, "[1,2]", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "not a JSON object");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "\"a\"", "data_offsets [0, 32] out of range", "16 bytes");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "\"a\"", "f32[3] needs 12 bytes");
  make_file(p, "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_DTYPE, "\"a\"", "F8_E4M3");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "\"a\" lacks \"data_offsets\"");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "\"a\" appears twice");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "non-negative integer");
  make_file(p, "{\"__metadata__\":{\"k\":3}}", d, 0);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "expected a string", "header byte");
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "trailing characters");
  /* dims whose product overflows (found by fuzz_safetensors) */
  make_file(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[20000000001,3000000000,1,3],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "more than 2^48 elements");
  /* an empty tensor whose other dims multiply past 2^63: no overflow on the
     way (found by fuzz_safetensors); arrays refuse dims that large */
  make_file(p, "{\"e\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,0],\"data_offsets\":[0,0]}}", d, 0);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_SHAPE, "tensor \"e\"", "shape is too large");
  make_file(p, "{\"e\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[0,0]}}", d, 0);
  CHECK_OK(ry_safetensors_read(p, &q));
  if (q) CHECK_EQ_INT(ry_array_numel(ry_params_get(q, "e")), 0);
  ry_params_free(q);
  q = NULL;
  /* a name that is no parameter path is the file's fault (found by fuzz_safetensors) */
  make_file(p, "{\"a//b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_ERR(ry_safetensors_read(p, &q), RY_ERR_PARSE, "bad.safetensors", "tensor \"a//b\"", "empty segment");
  CHECK(q == NULL);
  /* unknown keys are skipped; escapes in names are decoded */
  make_file(p, "{\"a\\/b\\u00e9\":{\"extra\":[1,{\"x\":null}],\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d, 16);
  CHECK_OK(ry_safetensors_read(p, &q));
  CHECK(ry_params_get(q, "a/b\xc3\xa9") != NULL);
  ry_params_free(q);
  remove(p);
}

TEST(safetensors_checkpoint_mismatch) {
  ry_params *p = ry_params_new();
  ry_array *a = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(784, 128), &a));
  CHECK_OK(ry_params_set_owned(p, "mlp/fc1/w", a));
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(128), &a));
  CHECK_OK(ry_params_set_owned(p, "mlp/fc1/b", a));
  const char *path = tmp_path("ckpt.safetensors");
  CHECK_OK(ry_safetensors_write(path, p, 0, NULL));
  /* the model now expects a different shape, an extra tensor, another dtype */
  ry_params *like = NULL;
  CHECK_OK(ry_params_clone(p, &like));
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(784, 64), &a));
  CHECK_OK(ry_params_set_owned(like, "mlp/fc1/w", a));
  ry_params *q = NULL;
  CHECK_ERR(ry_safetensors_load(path, like, &q), RY_ERR_SHAPE, "ckpt.safetensors", "mlp/fc1/w", "file has f32[784,128]",
            "expected f32[784,64]");
  ry_params_free(like);
  CHECK_OK(ry_params_clone(p, &like));
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(10), &a));
  CHECK_OK(ry_params_set_owned(like, "mlp/fc2/b", a));
  CHECK_ERR(ry_safetensors_load(path, like, &q), RY_ERR_NOT_FOUND, "no tensor \"mlp/fc2/b\"", "f32[10]");
  ry_params_free(like);
  CHECK_OK(ry_params_clone(p, &like));
  CHECK_OK(ry_array_zeros(RY_BF16, RY_SHAPE(128), &a));
  CHECK_OK(ry_params_set_owned(like, "mlp/fc1/b", a));
  CHECK_ERR(ry_safetensors_load(path, like, &q), RY_ERR_DTYPE, "mlp/fc1/b", "file has f32[128]", "expected bf16[128]");
  CHECK(q == NULL);
  ry_params_free(like);
  ry_params_free(p);
  remove(path);
}

static size_t g_fail_at;
static ry_status fail_hook(const char *path, size_t written) {
  if (written >= g_fail_at) return ry_status_make(RY_ERR_IO, "%s: simulated failure after %zu bytes", path, written);
  return NULL;
}
static ry_status kill_hook(const char *path, size_t written) {
  (void)path;
  if (written >= g_fail_at) raise(SIGKILL);
  return NULL;
}

static int count_tmp_files(const char *final_path) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", final_path, (long)getpid());
  return access(tmp, F_OK) == 0;
}

TEST(safetensors_interrupted_write_keeps_previous) {
  const char *path = tmp_path("keep.safetensors");
  ry_params *old = every_dtype_tree(1), *neu = every_dtype_tree(2);
  CHECK_OK(ry_safetensors_write(path, old, 0, NULL));
  /* 1: an error after part of the data is written */
  g_fail_at = 200;
  ry__atomic_write_hook = fail_hook;
  CHECK_ERR(ry_safetensors_write(path, neu, 0, NULL), RY_ERR_IO, "simulated failure");
  ry__atomic_write_hook = NULL;
  CHECK(!count_tmp_files(path)); /* the temp file is gone */
  ry_params *q = NULL;
  CHECK_OK(ry_safetensors_read(path, &q));
  CHECK(ry_params_equal(q, old));
  ry_params_free(q);
  /* 2: a child process killed mid-write */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    g_fail_at = 100;
    ry__atomic_write_hook = kill_hook;
    ry_status s = ry_safetensors_write(path, neu, 0, NULL);
    (void)s;
    _exit(0); /* not reached: killed in the hook */
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK_OK(ry_safetensors_read(path, &q));
  CHECK(ry_params_equal(q, old)); /* the previous checkpoint is intact */
  ry_params_free(q);
  /* the killed writer's temp file is left behind; remove it */
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
  CHECK(access(tmp, F_OK) == 0);
  remove(tmp);
  /* 3: a write that completes replaces the file */
  CHECK_OK(ry_safetensors_write(path, neu, 0, NULL));
  CHECK_OK(ry_safetensors_read(path, &q));
  CHECK(ry_params_equal(q, neu));
  ry_params_free(q);
  ry_params_free(old);
  ry_params_free(neu);
  remove(path);
  /* a directory that does not exist */
  CHECK_ERR(ry_safetensors_write("/nonexistent-dir/x.safetensors", neu = every_dtype_tree(0), 0, NULL), RY_ERR_IO,
            "/nonexistent-dir/x.safetensors", "cannot create");
  ry_params_free(neu);
}

/* IDX reading (src/io/idx.c): committed fixtures (raw and gzip, made by
 * tests/data/gen_io_fixtures.py), the real Fashion-MNIST files when the
 * Debian package is installed, bad input of every kind, and the shuffling
 * batch iterator (same order as jax.random.permutation). */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static const char *fx(const char *name) {
  static char buf[4][1024];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, sizeof buf[0], "%s/tests/data/%s", rt_source_dir(), name);
  return b;
}

static const char *tmp_path(const char *name) { return rt_tmp_path("idx", name); }

static void write_bytes(const char *path, const void *d, size_t n) { rt_write_bytes(path, d, n); }

static void check_fixture_images(ry_array *x) {
  CHECK(x != NULL);
  if (!x) return;
  CHECK_EQ_INT(ry_array_dtype(x), RY_U8);
  CHECK(ry_shape_equal(ry_array_shape(x), RY_SHAPE(3, 4, 5)));
  const unsigned char *d = ry_array_data(x);
  int bad = 0;
  for (int i = 0; i < 3; i++)
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 5; c++) bad += d[(i * 4 + r) * 5 + c] != 10 * i + 2 * r + c;
  CHECK_EQ_INT(bad, 0);
}

TEST(idx_fixtures_raw_and_gz) {
  const char *names[2] = {"idx_images_3x4x5.idx", "idx_images_3x4x5.idx.gz"};
  for (int k = 0; k < 2; k++) {
    ry_array *x = NULL;
    CHECK_OK(ry_idx_read_images(fx(names[k]), &x));
    check_fixture_images(x);
    ry_array_release(x);
  }
  ry_array *x = NULL, *y = NULL;
  CHECK_OK(ry_idx_read_pair(fx("idx_images_3x4x5.idx.gz"), fx("idx_labels_3.idx.gz"), 10, &x, &y));
  check_fixture_images(x);
  CHECK(y && ry_shape_equal(ry_array_shape(y), RY_SHAPE(3)));
  if (y) CHECK(ry_array_get_i64(y, 0) == 7 && ry_array_get_i64(y, 1) == 0 && ry_array_get_i64(y, 2) == 9);
  ry_array_release(x);
  ry_array_release(y);
  /* other element types, big-endian */
  CHECK_OK(ry_idx_read(fx("idx_i16_2x3.idx"), &x));
  CHECK(x && ry_array_dtype(x) == RY_I16 && ry_array_get_i64(x, 1) == -2 && ry_array_get_i64(x, 2) == 300 &&
        ry_array_get_i64(x, 3) == -32768 && ry_array_get_i64(x, 4) == 32767);
  ry_array_release(x);
  CHECK_OK(ry_idx_read(fx("idx_f32_4.idx"), &x));
  CHECK(x && ry_array_dtype(x) == RY_F32 && ry_array_get_f64(x, 0) == 1.5 && ry_array_get_f64(x, 1) == -0.25 &&
        ry_array_get_f64(x, 2) == (double)1e30f && signbit(ry_array_get_f64(x, 3)));
  /* write + read round trip */
  const char *p = tmp_path("rt.idx");
  CHECK_OK(ry_idx_write(p, x));
  ry_array *back = NULL;
  CHECK_OK(ry_idx_read(p, &back));
  CHECK(back && ry_array_nbytes(back) == 16 && memcmp(ry_array_data(back), ry_array_data(x), 16) == 0);
  ry_array_release(back);
  ry_array_release(x);
  remove(p);
}

TEST(idx_bad_input) {
  ry_array *x = NULL;
  CHECK_ERR(ry_idx_read(tmp_path("does_not_exist.idx"), &x), RY_ERR_IO, "does_not_exist.idx", "cannot open");
  /* truncated data */
  unsigned char good[4 + 12 + 6] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
  const char *p = tmp_path("trunc.idx");
  write_bytes(p, good, sizeof good - 2);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "trunc.idx", "truncated IDX data", "[1,2,3]", "needs 6 bytes", "has 4");
  write_bytes(p, good, 9);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "truncated IDX header");
  write_bytes(p, good, 2);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "truncated IDX file");
  write_bytes(p, good, 0);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "truncated");
  /* trailing bytes */
  unsigned char more[sizeof good + 3];
  memcpy(more, good, sizeof good);
  write_bytes(p, more, sizeof more);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "3 bytes of trailing data");
  /* wrong magic */
  unsigned char bad[sizeof good];
  memcpy(bad, good, sizeof good);
  bad[0] = 0x12;
  write_bytes(p, bad, sizeof bad);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "not an IDX file", "magic 0x12000803");
  bad[0] = 0;
  bad[2] = 0x07;
  write_bytes(p, bad, sizeof bad);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "not an IDX file", "0x00000703");
  /* rank 0 and rank 9 */
  bad[2] = 8;
  bad[3] = 0;
  write_bytes(p, bad, sizeof bad);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "rank 0");
  bad[3] = 9;
  write_bytes(p, bad, sizeof bad);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "rank 9");
  /* labels file where images are expected, and the other way round */
  CHECK_ERR(ry_idx_read_images(fx("idx_labels_3.idx"), &x), RY_ERR_PARSE, "idx_labels_3.idx", "not an IDX image file",
            "0x00000801", "expected 0x00000803");
  CHECK_ERR(ry_idx_read_labels(fx("idx_images_3x4x5.idx.gz"), &x), RY_ERR_PARSE, "not an IDX label file", "0x00000803");
  /* wrong dims: images and labels disagree */
  ry_array *y = NULL;
  write_bytes(p, (unsigned char[]){0, 0, 8, 1, 0, 0, 0, 2, 1, 2}, 10);
  CHECK_ERR(ry_idx_read_pair(fx("idx_images_3x4x5.idx"), p, 10, &x, &y), RY_ERR_SHAPE, "3 images", "2 labels");
  write_bytes(p, (unsigned char[]){0, 0, 8, 1, 0, 0, 0, 3, 1, 12, 2}, 11);
  CHECK_ERR(ry_idx_read_pair(fx("idx_images_3x4x5.idx"), p, 10, &x, &y), RY_ERR_PARSE, "label 12 at index 1");
  CHECK(x == NULL && y == NULL);
  /* huge dims are refused before allocating */
  write_bytes(p, (unsigned char[]){0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9}, 16);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "too large");
  /* truncated and corrupt gzip */
  size_t n = 0;
  FILE *f = fopen(fx("idx_images_3x4x5.idx.gz"), "rb");
  unsigned char gz[256];
  if (f) {
    n = fread(gz, 1, sizeof gz, f);
    fclose(f);
  }
  CHECK(n > 20);
  write_bytes(p, gz, n - 10);
  CHECK_ERR(ry_idx_read(p, &x), RY_ERR_PARSE, "trunc.idx", "truncated gzip");
  gz[12] ^= 0xff;
  gz[13] ^= 0x55;
  write_bytes(p, gz, n);
  ry_status s = ry_idx_read(p, &x);
  CHECK(s != NULL && ry_status_code(s) == RY_ERR_PARSE && strstr(ry_status_message(s), "trunc.idx"));
  ry_status_free(s);
  CHECK(x == NULL);
  remove(p);
}

#define FMNIST "/usr/share/datasets/fashion-mnist"

TEST(idx_fashion_mnist) {
  if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0) {
    rt_skip("fashion-mnist", "%s not installed (apt-get install dataset-fashion-mnist)", FMNIST);
    return;
  }
  ry_array *x = NULL, *y = NULL;
  CHECK_OK(ry_idx_read_pair(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz", 10, &x, &y));
  CHECK(x && ry_shape_equal(ry_array_shape(x), RY_SHAPE(60000, 28, 28)));
  CHECK(y && ry_shape_equal(ry_array_shape(y), RY_SHAPE(60000)));
  if (y) {
    int64_t count[10] = {0};
    const unsigned char *l = ry_array_data(y);
    for (int64_t i = 0; i < 60000; i++) count[l[i]]++;
    for (int c = 0; c < 10; c++) CHECK_EQ_INT(count[c], 6000); /* Fashion-MNIST is balanced */
  }
  ry_array_release(x);
  ry_array_release(y);
  CHECK_OK(ry_idx_read_pair(FMNIST "/t10k-images-idx3-ubyte.gz", FMNIST "/t10k-labels-idx1-ubyte.gz", 10, &x, &y));
  CHECK(x && ry_shape_equal(ry_array_shape(x), RY_SHAPE(10000, 28, 28)));
  CHECK(y && ry_shape_equal(ry_array_shape(y), RY_SHAPE(10000)));
  ry_array_release(x);
  ry_array_release(y);
}

TEST(idx_batches) {
  /* 10 rows: x[i] = (i, 100 + i), y[i] = i */
  int32_t xs[20], ys[10];
  for (int i = 0; i < 10; i++) {
    xs[2 * i] = i;
    xs[2 * i + 1] = 100 + i;
    ys[i] = i;
  }
  ry_array *arr[2] = {NULL, NULL};
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(10, 2), xs, &arr[0]));
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(10), ys, &arr[1]));
  ry_key key = ry_key_from_seed(42);
  int64_t perm[10];
  CHECK_OK(ry_key_permutation(key, 10, perm));
  /* jax.random.permutation(PRNGKey(42), 10) */
  static const int64_t jax_perm[10] = {7, 4, 2, 5, 3, 6, 8, 9, 0, 1};
  CHECK(memcmp(perm, jax_perm, sizeof perm) == 0);
  for (int drop = 0; drop < 2; drop++) {
    ry_batches *it = NULL;
    CHECK_OK(ry_batches_new(2, arr, 4, &key, drop, &it));
    CHECK_EQ_INT(ry_batches_count(it), drop ? 2 : 3);
    int64_t seen = 0, nb = 0;
    for (;;) {
      ry_array *out[2];
      CHECK_OK(ry_batches_next(it, out));
      if (!out[0]) break;
      int64_t m = ry_array_shape(out[0]).dims[0];
      CHECK(m == 4 || (!drop && m == 2));
      for (int64_t r = 0; r < m; r++) {
        CHECK_EQ_INT(ry_array_get_i64(out[1], r), jax_perm[seen + r]);
        CHECK_EQ_INT(ry_array_get_i64(out[0], 2 * r + 1), 100 + jax_perm[seen + r]);
      }
      seen += m;
      nb++;
      ry_array_release(out[0]);
      ry_array_release(out[1]);
    }
    CHECK_EQ_INT(seen, drop ? 8 : 10);
    CHECK_EQ_INT(nb, ry_batches_count(it));
    /* a new pass with another key reshuffles; NULL keeps the order */
    ry_key k2 = ry_key_fold_in(key, 1);
    CHECK_OK(ry_batches_reset(it, &k2));
    CHECK_OK(ry_key_permutation(k2, 10, perm));
    CHECK(memcmp(ry_batches_order(it), perm, sizeof perm) == 0);
    ry_batches_free(it);
  }
  /* no key: in order */
  ry_batches *it = NULL;
  CHECK_OK(ry_batches_new(2, arr, 3, NULL, 0, &it));
  ry_array *out[2];
  CHECK_OK(ry_batches_next(it, out));
  CHECK(out[1] && ry_array_get_i64(out[1], 0) == 0 && ry_array_get_i64(out[1], 2) == 2);
  ry_array_release(out[0]);
  ry_array_release(out[1]);
  ry_batches_free(it);
  /* bad input */
  ry_array *bad[2] = {arr[0], NULL};
  CHECK_OK(ry_array_zeros(RY_I32, RY_SHAPE(9), &bad[1]));
  CHECK_ERR(ry_batches_new(2, bad, 4, NULL, 0, &it), RY_ERR_SHAPE, "[10,2]", "[9]", "leading dims differ");
  CHECK_ERR(ry_batches_new(2, arr, 0, NULL, 0, &it), RY_ERR_INVALID_ARGUMENT, "batch size 0");
  ry_array_release(bad[1]);
  ry_array_release(arr[0]);
  ry_array_release(arr[1]);
}

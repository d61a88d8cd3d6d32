/* Test helpers for `ryft train` (tests/test_nn.c, tests/test_dist.c). */
#ifndef RYFT_TRAIN_TESTLIB_H
#define RYFT_TRAIN_TESTLIB_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "testlib.h"

/* A small English-like corpus for `ryft train-lm`, fortune-file style:
 * documents separated by "%" lines (tests/test_lm_train.c, test_dist.c). */
static inline const char *write_corpus(const char *name, int n_docs) {
  static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "house", "of", "my", "friend"};
  const char *path = rt_tmp_path("lmtrain", name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return path;
  for (int d = 0; d < n_docs; d++) {
    for (int w = 0; w < 12; w++) fprintf(f, "%s%s", w ? " " : "", words[(d * 5 + w * w + 3 * w) % 14]);
    fprintf(f, ".\n\t\t-- Someone %d\n%%\n", d);
  }
  fclose(f);
  return path;
}

/* A small synthetic Fashion-MNIST: images whose mean brightness encodes the
 * label, so a model can learn something in a few steps. */
static inline void write_dataset(const char *dir, int n_train, int n_test) {
  mkdir(dir, 0777);
  const char *split[2] = {"train", "t10k"};
  for (int s = 0; s < 2; s++) {
    int n = s ? n_test : n_train;
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
      lab[i] = (uint8_t)((i * 7 + s) % 10);
      for (int k = 0; k < 784; k++) img[(size_t)i * 784 + k] = (uint8_t)((lab[i] * 25 + (k * 13 + i) % 20) & 0xff);
    }
    ry_array *a = NULL, *l = NULL;
    char p[1400];
    CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n, 28, 28), img, &a));
    CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n), lab, &l));
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, split[s]);
    CHECK_OK(ry_idx_write(p, a));
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, split[s]);
    CHECK_OK(ry_idx_write(p, l));
    ry_array_release(a);
    ry_array_release(l);
    free(img);
    free(lab);
  }
}

#endif

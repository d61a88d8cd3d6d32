/* Tokenizer throughput: encode and decode about 1 MB of mixed text (English,
 * code, numbers, whitespace, CJK, emoji) with a GGUF model's tokenizer.
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude bench/tokenizer_bench.c \
 *      build/libryft.a -lpcre2-8 -lz -lm -lpthread -ldl -o build/tokenizer_bench
 *   build/tokenizer_bench build/models/SmolLM2-135M-Instruct.Q4_1.gguf */
#include <ryft/ryft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this process: the machine may be shared */
static double cpu(void) { return (double)clock() / CLOCKS_PER_SEC; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
    return 2;
  }
  static const char *units[] = {
      "The quick brown fox jumps over the lazy dog. It's 12:30 and we've 1,234,567 reasons. ",
      "int main(void) {\n\tfor (int i = 0; i < n; i++) x[i] = y[i] * 2;\n    return 0;\n}\n",
      "Tokyo 東京は日本の首都です。你好，世界！ café naïve résumé 😀👍🏽 ",
      "    \n\n  \t  whitespace   runs\r\n", "Supercalifragilisticexpialidocious antidisestablishmentarianism "};
  size_t n = 0, cap = (1 << 20) + 256;
  char *text = malloc(cap);
  for (int i = 0; n + 128 < (1u << 20); i++) {
    size_t l = strlen(units[i % 5]);
    memcpy(text + n, units[i % 5], l);
    n += l;
  }
  text[n] = 0;
  double t0 = now();
  ry_gguf *g = NULL;
  ry_tokenizer *tok = NULL;
  ry_status s = ry_gguf_open(argv[1], &g);
  if (!s) s = ry_tokenizer_from_gguf(g, &tok);
  ry_gguf_close(g);
  double t1 = now(), c1 = cpu();
  int32_t *ids = NULL;
  int64_t nid = 0;
  if (!s) s = ry_tokenize(tok, text, (long)n, 0, &ids, &nid);
  double t2 = now(), c2 = cpu();
  char *back = NULL;
  size_t blen = 0;
  if (!s) s = ry_detokenize(tok, ids, nid, 0, &back, &blen);
  double t3 = now();
  if (s) {
    fprintf(stderr, "error: %s\n", ry_status_message(s));
    return 1;
  }
  printf("load %.3f s; encode %zu bytes -> %lld tokens in %.3f s wall, %.3f s CPU (%.1f MB/s CPU); decode %.4f s; "
         "round trip %s\n",
         t1 - t0, n, (long long)nid, t2 - t1, c2 - c1, (double)n / (c2 - c1) / 1e6, t3 - t2,
         blen == n && memcmp(back, text, n) == 0 ? "exact" : "DIFFERS");
  ry_free(back);
  ry_free(ids);
  ry_tokenizer_free(tok);
  free(text);
  return 0;
}

/* Language-model speed of ryft on a GGUF file, for bench/lm.sh:
 *   lm_bench MODEL.gguf [prefill tokens] [decode tokens]
 * prints one line per measurement, "ryft <what> <value> <unit>": the load
 * time, the time to the first token of a 128-token prompt (including the
 * compiles on an empty compile cache: `cold`, and with the cache warm), the
 * prefill rate of 128 and 512 tokens, the decode rate over 128 tokens, and
 * the peak resident memory. Prompts are fixed token ids (no tokenizer time). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "ryft/ryft.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int check(ry_status s) {
  if (!s) return 0;
  fprintf(stderr, "lm_bench: %s\n", ry_status_message(s));
  ry_status_free(s);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lm_bench MODEL.gguf\n");
    return 2;
  }
  ry_device *cpu = NULL;
  check(ry_device_get("cpu", &cpu));
  double t0 = now();
  ry_lm *m = NULL;
  check(ry_lm_load(argv[1], cpu, 1024, &m));
  printf("ryft load %.3f s\n", now() - t0);
  int V = ry_lm_config_of(m)->n_vocab;
  int32_t tok[640];
  for (int i = 0; i < 640; i++) tok[i] = 100 + (i * 7919) % (V - 200);
  float *lg = malloc((size_t)V * sizeof *lg);
  /* first token of a 128-token prompt: compiles included (the compile cache may be warm) */
  t0 = now();
  check(ry_lm_eval(m, tok, 128, lg));
  printf("ryft first_token_128_first_run %.3f s\n", now() - t0);
  for (int n = 128; n <= 512; n *= 4) {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
      ry_lm_reset(m);
      t0 = now();
      check(ry_lm_eval(m, tok, n, lg));
      double t = now() - t0;
      if (t < best) best = t;
    }
    printf("ryft prefill_%d %.1f tokens/s\n", n, n / best);
  }
  /* decode 128 tokens after a 16-token prompt (greedy, fed back) */
  ry_lm_reset(m);
  check(ry_lm_eval(m, tok, 16, lg));
  int32_t t = tok[16];
  check(ry_lm_eval(m, &t, 1, lg)); /* the decode program compiled */
  t0 = now();
  for (int i = 0; i < 128; i++) {
    int best = 0;
    for (int v = 1; v < V; v++)
      if (lg[v] > lg[best]) best = v;
    t = best;
    check(ry_lm_eval(m, &t, 1, lg));
  }
  printf("ryft decode_128 %.1f tokens/s\n", 128 / (now() - t0));
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("ryft peak_rss %.0f MB\n", ru.ru_maxrss / 1024.0);
  ry_lm_free(m);
  free(lg);
  return 0;
}

/* Training speed of a GPT-2 with ryft/lm_train.h: one config, fixed random
 * tokens, the first step (trace + compile) timed apart, then `steps` timed
 * updates. Prints one line of key=value pairs for bench/lm_train.sh.
 *
 *   lm_train_bench small|gpt2 BATCH CTX STEPS [f32|bf16] [VOCAB]
 * bf16: mixed precision (bf16 matrix products, f32 master weights). */
#define _POSIX_C_SOURCE 200809L
#include <ryft/ryft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void check(ry_status s) {
  if (s) {
    fprintf(stderr, "lm_train_bench: %s\n", ry_status_message(s));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s small|gpt2 BATCH CTX STEPS [f32|bf16] [VOCAB]\n", argv[0]);
    return 2;
  }
  int gpt2 = !strcmp(argv[1], "gpt2"), B = atoi(argv[2]), T = atoi(argv[3]), steps = atoi(argv[4]);
  int bf16 = argc > 5 && !strcmp(argv[5], "bf16");
  int V = argc > 6 ? atoi(argv[6]) : gpt2 ? 50257 : 49152;
  ry_lm_config c = {RY_LM_GPT2, 4, 128, 512, 4, 4, 32, V, 256, 10000.0, 1e-5, RY_ROPE_NONE, 1, 0};
  if (gpt2) c = (ry_lm_config){RY_LM_GPT2, 12, 768, 3072, 12, 12, 64, V, 1024, 10000.0, 1e-5, RY_ROPE_NONE, 1};
  ry_device *dev;
  ry_params *w;
  ry_lm_trainer *t;
  check(ry_device_get("cpu", &dev));
  check(ry_lm_init_gpt2(&c, 0, dev, &w));
  ry_lm_train_opts o = ry_lm_train_defaults();
  o.batch = B;
  o.ctx = T;
  o.opt.lr.value = 1e-4;
  o.matmul_dtype = bf16 ? RY_BF16 : RY_F32;
  check(ry_lm_trainer_new(&c, w, &o, dev, &t));
  double P = (double)ry_params_numel(w);
  ry_params_free(w); /* the trainer holds the weights: its step updates them in place */
  int32_t *tok = malloc(sizeof(int32_t) * B * (T + 1));
  for (int i = 0; i < B * (T + 1); i++) tok[i] = (int32_t)((i * 2654435761u) % (unsigned)V);
  double loss, t0 = now();
  check(ry_lm_trainer_step(t, tok, &loss));
  double first = now() - t0;
  t0 = now();
  for (int i = 0; i < steps; i++) check(ry_lm_trainer_step(t, tok, &loss));
  double per = (now() - t0) / steps;
  /* FLOPs per step: 6 per parameter per token (forward + backward of the
     matrix products; the tied head counted once) + attention's 12 L T E per
     token, as llm.c and nanoGPT count them */
  double tokens = (double)B * T;
  double flop = 6 * P * tokens + 12.0 * c.n_layers * T * c.n_embd * tokens;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("system=ryft-%s config=%s batch=%d ctx=%d vocab=%d params=%.0f first_step_s=%.2f step_s=%.4f tokens_per_s=%.1f "
         "gflop_per_step=%.1f gflops=%.1f peak_rss_mb=%.0f loss=%.4f\n",
         bf16 ? "bf16" : "f32", argv[1], B, T, V, P, first, per, tokens / per, flop / 1e9, flop / per / 1e9, ru.ru_maxrss / 1024.0, loss);
  ry_lm_trainer_free(t);
  free(tok);
  return 0;
}

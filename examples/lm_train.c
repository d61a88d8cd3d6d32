/* Train a small GPT-2 on a text file, then let it write. */
#include <ryft/ryft.h>
#include <stdio.h>
#include <stdlib.h>

static void check(ry_status s) {
  if (s) {
    fprintf(stderr, "error: %s\n", ry_status_message(s));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s TOKENIZER.gguf TEXT_FILE [STEPS]\n", argv[0]);
    return 2;
  }
  int steps = argc > 3 ? atoi(argv[3]) : 300;
  /* the text as tokens, with the GGUF model's tokenizer */
  ry_gguf *g;
  ry_tokenizer *tok;
  check(ry_gguf_open(argv[1], &g));
  check(ry_tokenizer_from_gguf(g, &tok));
  ry_gguf_close(g);
  static char text[1 << 20];
  FILE *f = fopen(argv[2], "rb");
  if (!f) return perror(argv[2]), 1;
  size_t len = fread(text, 1, sizeof text, f);
  fclose(f);
  int32_t *ids;
  int64_t n;
  check(ry_tokenize(tok, text, (long)len, 0, &ids, &n));

  /* GPT-2 with 2 layers, 64 wide, 4 heads, 64 positions, tied embeddings */
  ry_lm_config c = {RY_LM_GPT2, 2, 64, 256, 4, 4, 16, ry_tokenizer_n_tokens(tok), 64, 0, 1e-5, RY_ROPE_NONE, 1, 0};
  ry_device *dev;
  ry_params *w;
  check(ry_device_get("cpu", &dev));
  check(ry_lm_init_gpt2(&c, 0, dev, &w));

  /* AdamW (weight decay on matrices only), clipping, warmup + cosine */
  ry_lm_train_opts o = ry_lm_train_defaults();
  o.batch = 8;
  o.ctx = 32;
  o.opt.lr = (ry_nn_schedule){RY_NN_SCHED_WARMUP_COSINE, 3e-3, 0, 3e-4, steps / 10, steps, 0, 0};
  ry_lm_trainer *t;
  check(ry_lm_trainer_new(&c, w, &o, dev, &t));
  int32_t *batch = malloc(sizeof(int32_t) * o.batch * (o.ctx + 1));
  ry_key key = ry_key_from_seed(0);
  for (int i = 0; i < steps; i++) {
    double loss;
    check(ry_lm_sample_batch(ids, n, ry_key_fold_in(key, (uint32_t)i), o.batch, o.ctx, batch));
    check(ry_lm_trainer_step(t, batch, &loss)); /* one jitted step */
    if ((i + 1) % 50 == 0 || i + 1 == steps) printf("step %d: loss %.3f\n", i + 1, loss);
  }

  /* the trained weights run as any model: greedy text after the first token */
  ry_params *trained;
  ry_lm *m;
  check(ry_lm_trainer_weights(t, &trained));
  check(ry_lm_new(&c, trained, dev, 64, &m));
  int32_t out[32];
  int n_out = 0;
  ry_sample_opts greedy = RY_SAMPLE_DEFAULTS;
  greedy.temperature = 0;
  ry_sampler *sm;
  float *logits = malloc(sizeof(float) * c.n_vocab);
  check(ry_sampler_new(&greedy, c.n_vocab, &sm));
  check(ry_lm_eval(m, ids, 1, logits));
  for (; n_out < 32; n_out++) {
    out[n_out] = ry_sampler_next(sm, logits, out, n_out);
    check(ry_lm_eval(m, &out[n_out], 1, logits));
  }
  char *s;
  size_t s_len;
  check(ry_detokenize(tok, out, n_out, 0, &s, &s_len));
  printf("sample: %.*s\n", (int)s_len, s);

  ry_free(s);
  free(logits);
  free(batch);
  ry_sampler_free(sm);
  ry_lm_free(m);
  ry_params_free(trained);
  ry_lm_trainer_free(t);
  ry_params_free(w);
  ry_free(ids);
  ry_tokenizer_free(tok);
  return 0;
}

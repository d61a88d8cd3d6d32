/* Sampling and generation (ryft/model.h): greedy and its ties, the
 * distribution of temperature sampling against the softmax, what top-k,
 * top-p, min-p and the repetition penalty may draw, determinism by seed, and
 * ry_lm_generate on the tiny llama model (greedy = the argmax chain, stop
 * tokens, the callback, bad options). */
#include <stdlib.h>

#include "ryft/model.h"
#include "testlib.h"

static ry_sampler *sampler(float temp, int top_k, float top_p, float min_p, float pen, uint64_t seed, int V) {
  ry_sample_opts o = {temp, top_k, top_p, min_p, pen, 64, seed};
  ry_sampler *s = NULL;
  CHECK_OK(ry_sampler_new(&o, V, &s));
  return s;
}

TEST(sample_greedy_ties_and_nan) {
  float lg[5] = {1, 3, NAN, 3, -2};
  ry_sampler *s = sampler(0, 0, 1, 0, 1, 0, 5);
  if (!s) return;
  CHECK_EQ_INT(ry_sampler_next(s, lg, NULL, 0), 1); /* the lowest id of the tie; NaN never wins */
  ry_sampler_free(s);
}

/* draws of n samples: counts per token */
static void draw(ry_sampler *s, const float *lg, int V, int n, int *count) {
  memset(count, 0, (size_t)V * sizeof *count);
  for (int i = 0; i < n; i++) {
    int32_t t = ry_sampler_next(s, lg, NULL, 0);
    if (t >= 0 && t < V) count[t]++;
  }
}

TEST(sample_temperature_follows_the_softmax) {
  float lg[5] = {0.5f, 1.5f, -1, 0, 1};
  for (int k = 0; k < 2; k++) {
    float temp = k ? 0.5f : 1.0f;
    ry_sampler *s = sampler(temp, 0, 1, 0, 1, 7, 5);
    if (!s) return;
    int n = 20000, count[5];
    draw(s, lg, 5, n, count);
    double z = 0, p[5];
    for (int i = 0; i < 5; i++) z += p[i] = exp(lg[i] / temp);
    for (int i = 0; i < 5; i++) {
      double want = n * p[i] / z, sd = sqrt(want * (1 - p[i] / z));
      CHECK_MSG(fabs(count[i] - want) < 4.5 * sd, "temperature %g: token %d drawn %d times, expected %.0f +- %.0f", temp, i,
                count[i], want, sd);
    }
    ry_sampler_free(s);
  }
}

TEST(sample_top_k_top_p_min_p) {
  /* probabilities 0.4, 0.3, 0.2, 0.1 */
  float lg[4] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f)};
  int count[4];
  ry_sampler *s = sampler(1, 2, 1, 0, 1, 1, 4); /* top-k 2: {0, 1} */
  if (s) {
    draw(s, lg, 4, 4000, count);
    CHECK(count[0] > 0 && count[1] > 0 && count[2] == 0 && count[3] == 0);
    ry_sampler_free(s);
  }
  s = sampler(1, 0, 0.65f, 0, 1, 2, 4); /* top-p 0.65: 0.4 + 0.3 reaches it: {0, 1} */
  if (s) {
    draw(s, lg, 4, 4000, count);
    CHECK(count[0] > 0 && count[1] > 0 && count[2] == 0 && count[3] == 0);
    ry_sampler_free(s);
  }
  s = sampler(1, 0, 1, 0.4f, 1, 3, 4); /* min-p 0.4: p >= 0.16: {0, 1, 2} */
  if (s) {
    draw(s, lg, 4, 4000, count);
    CHECK(count[0] > 0 && count[1] > 0 && count[2] > 0 && count[3] == 0);
    ry_sampler_free(s);
  }
}

TEST(sample_repetition_penalty) {
  float lg[4] = {2.0f, 1.9f, -1.0f, -1.1f};
  ry_sampler *s = sampler(0, 0, 1, 0, 2, 0, 4);
  if (!s) return;
  int32_t h0[1] = {0}; /* 2 / 2 = 1 < 1.9 */
  CHECK_EQ_INT(ry_sampler_next(s, lg, h0, 1), 1);
  float lg2[4] = {-1.0f, -1.1f, -5, -6};
  int32_t h1[2] = {0, 0}; /* -1 * 2 = -2 < -1.1; a repeated token is penalised once */
  CHECK_EQ_INT(ry_sampler_next(s, lg2, h1, 2), 1);
  ry_sampler_free(s);
}

TEST(sample_same_seed_same_draws) {
  float lg[8] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
  ry_sampler *a = sampler(1, 0, 1, 0, 1, 42, 8), *b = sampler(1, 0, 1, 0, 1, 42, 8), *c = sampler(1, 0, 1, 0, 1, 43, 8);
  int same = 1, diff = 0;
  for (int i = 0; i < 200 && a && b && c; i++) {
    int32_t x = ry_sampler_next(a, lg, NULL, 0), y = ry_sampler_next(b, lg, NULL, 0), z = ry_sampler_next(c, lg, NULL, 0);
    same &= x == y;
    diff |= x != z;
  }
  CHECK(same);
  CHECK(diff);
  ry_sampler_free(a);
  ry_sampler_free(b);
  ry_sampler_free(c);
  ry_sampler *bad = NULL;
  ry_sample_opts o = {1, 0, 1.5f, 0, 1, 64, 0};
  CHECK_ERR(ry_sampler_new(&o, 8, &bad), RY_ERR_INVALID_ARGUMENT, "top_p in (0, 1] (1.5)");
  CHECK(bad == NULL);
}

typedef struct gen_log {
  int32_t toks[64];
  int n, stop_at;
} gen_log;

static int on_tok(int32_t t, int i, void *ctx) {
  gen_log *g = ctx;
  if (g->n < 64) g->toks[g->n++] = t;
  return g->stop_at >= 0 && i >= g->stop_at;
}

TEST(sample_generate_greedy_is_the_argmax_chain) {
  ry_params *w = NULL;
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/data/lm/llama.safetensors", rt_source_dir());
  CHECK_OK(ry_safetensors_read(p, &w));
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("cpu", &dev));
  ry_lm_config c = {RY_LM_LLAMA, 2, 32, 48, 4, 2, 8, 64, 128, 10000.0, 1e-5, RY_ROPE_NORM, 1, 0};
  ry_lm *m = NULL;
  if (w && dev) CHECK_OK(ry_lm_new(&c, w, dev, 64, &m));
  if (!m) {
    ry_params_free(w);
    return;
  }
  int32_t prompt[3] = {5, 17, 42};
  ry_sample_opts greedy = {0, 0, 1, 0, 1, 64, 0};
  gen_log g = {{0}, 0, -1};
  ry_gen_stats st;
  CHECK_OK(ry_lm_generate(m, prompt, 3, &greedy, 12, NULL, 0, on_tok, &g, &st));
  CHECK_EQ_INT(g.n, 12);
  CHECK_EQ_INT(st.prompt_tokens, 3);
  CHECK_EQ_INT(st.generated_tokens, 12);
  CHECK_EQ_INT(ry_lm_position(m), 3 + 11);
  /* the same chain by hand */
  ry_lm_reset(m);
  float lg[64];
  CHECK_OK(ry_lm_eval(m, prompt, 3, lg));
  for (int i = 0; i < 12; i++) {
    int best = 0;
    for (int v = 1; v < 64; v++)
      if (lg[v] > lg[best]) best = v;
    CHECK_MSG(g.toks[i] == best, "token %d: generated %d, argmax %d", i, g.toks[i], best);
    if (i < 11) CHECK_OK(ry_lm_eval(m, (int32_t[]){best}, 1, lg));
  }
  /* a stop token ends it (and is reported); so does the callback */
  ry_lm_reset(m);
  gen_log g2 = {{0}, 0, -1};
  int32_t stop = g.toks[4];
  CHECK_OK(ry_lm_generate(m, prompt, 3, &greedy, 12, &stop, 1, on_tok, &g2, NULL));
  int first = 0;
  while (first < 12 && g.toks[first] != stop) first++;
  CHECK_EQ_INT(g2.n, first + 1);
  ry_lm_reset(m);
  gen_log g3 = {{0}, 0, 2};
  CHECK_OK(ry_lm_generate(m, prompt, 3, &greedy, 12, NULL, 0, on_tok, &g3, NULL));
  CHECK_EQ_INT(g3.n, 3);
  /* a prompt that does not fit */
  ry_lm_reset(m);
  int32_t longp[70] = {0};
  CHECK_ERR(ry_lm_generate(m, longp, 70, &greedy, 4, NULL, 0, NULL, NULL, NULL), RY_ERR_INVALID_ARGUMENT, "context of 64");
  ry_lm_free(m);
  ry_params_free(w);
}

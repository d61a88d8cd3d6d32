/* Sampling and the generation loop (ryft/model.h): llama.cpp's default
 * sampler chain (repetition penalty, top-k, top-p, min-p, temperature) with
 * ryft's threefry as the source of randomness, and ry_lm_generate, which
 * feeds a prompt and samples tokens until a stop token, a callback or the
 * limit. Public API only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ryft/model.h"
#include "ryft/random.h"

struct cand;
struct ry_sampler {
  ry_sample_opts o;
  int n_vocab;
  ry_key key;
  uint32_t step;
  float *work;       /* n_vocab: adjusted logits */
  struct cand *cand; /* n_vocab: candidates, sorted by logit */
};

typedef struct cand {
  float logit;
  int32_t id;
} cand;

ry_status ry_sampler_new(const ry_sample_opts *o, int n_vocab, ry_sampler **out) {
  *out = NULL;
  ry_sample_opts d = o ? *o : RY_SAMPLE_DEFAULTS;
  if (n_vocab < 1) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "sampler: n_vocab %d is not positive", n_vocab);
  if (!(d.temperature >= 0) || d.top_k < 0 || !(d.top_p > 0 && d.top_p <= 1) || !(d.min_p >= 0 && d.min_p < 1) ||
      !(d.repeat_penalty > 0) || d.repeat_last_n < 0)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT,
                          "sampler: want temperature >= 0 (%g), top_k >= 0 (%d), top_p in (0, 1] (%g), min_p in [0, 1) (%g), "
                          "repeat_penalty > 0 (%g), repeat_last_n >= 0 (%d)",
                          d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.repeat_last_n);
  ry_sampler *s = calloc(1, sizeof *s);
  if (s) {
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
  }
  if (!s || !s->work || !s->cand) {
    ry_sampler_free(s);
    return ry_status_make(RY_ERR_OUT_OF_MEMORY, "sampler: out of memory");
  }
  s->o = d;
  s->n_vocab = n_vocab;
  s->key = ry_key_from_seed((int64_t)(d.seed & 0x7fffffffffffffffull));
  *out = s;
  return NULL;
}

void ry_sampler_free(ry_sampler *s) {
  if (!s) return;
  free(s->work);
  free(s->cand);
  free(s);
}

/* by logit, descending; ties by id, ascending (a total order: deterministic) */
static int by_logit(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* a float in [0, 1) from the step's key, as jax.random.uniform makes f32 */
static float uniform01(ry_sampler *s) {
  uint32_t bits;
  ry_key_bits32(ry_key_fold_in(s->key, s->step), 1, &bits);
  uint32_t u = (bits >> 9) | 0x3f800000u;
  float f;
  memcpy(&f, &u, sizeof f);
  return f - 1.0f;
}

int32_t ry_sampler_next(ry_sampler *s, const float *logits, const int32_t *history, int n_history) {
  int V = s->n_vocab;
  float *w = s->work;
  memcpy(w, logits, (size_t)V * sizeof *w);
  /* NaN logits never win */
  for (int i = 0; i < V; i++)
    if (isnan(w[i])) w[i] = -INFINITY;
  /* repetition penalty over the recent history (each token once) */
  if (s->o.repeat_penalty != 1.0f && history && n_history > 0) {
    int from = n_history > s->o.repeat_last_n ? n_history - s->o.repeat_last_n : 0;
    for (int i = from; i < n_history; i++) {
      int32_t t = history[i];
      if (t < 0 || t >= V) continue;
      bool seen = false;
      for (int j = from; j < i && !seen; j++) seen = history[j] == t;
      if (seen) continue;
      w[t] = w[t] > 0 ? w[t] / s->o.repeat_penalty : w[t] * s->o.repeat_penalty;
    }
  }
  s->step++;
  if (s->o.temperature <= 0) { /* greedy */
    int32_t best = 0;
    for (int i = 1; i < V; i++)
      if (w[i] > w[best]) best = i;
    return best;
  }
  /* candidates, most likely first */
  int n = V;
  cand *cd = s->cand;
  for (int i = 0; i < V; i++) cd[i] = (cand){w[i], i};
  qsort(cd, (size_t)V, sizeof *cd, by_logit);
  if (s->o.top_k > 0 && s->o.top_k < n) n = s->o.top_k;
  /* probabilities of the candidates (at temperature 1, as llama.cpp's top-p
     and min-p see them) */
  double mx = cd[0].logit, sum = 0;
  if (!isfinite(mx)) return cd[0].id;
  double *p = malloc((size_t)n * sizeof *p);
  if (!p) return cd[0].id; /* out of memory: the most likely token */
  for (int i = 0; i < n; i++) sum += p[i] = exp((double)cd[i].logit - mx);
  if (s->o.top_p < 1) {
    double acc = 0;
    for (int i = 0; i < n; i++) {
      acc += p[i] / sum;
      if (acc >= s->o.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (s->o.min_p > 0) {
    int keep = 1;
    while (keep < n && p[keep] >= s->o.min_p * p[0]) keep++;
    n = keep;
  }
  /* temperature, then one draw */
  sum = 0;
  for (int i = 0; i < n; i++) sum += p[i] = exp(((double)cd[i].logit - mx) / s->o.temperature);
  double r = (double)uniform01(s) * sum, acc = 0;
  int32_t pick = cd[n - 1].id;
  for (int i = 0; i < n; i++) {
    acc += p[i];
    if (r < acc) {
      pick = cd[i].id;
      break;
    }
  }
  free(p);
  return pick;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

ry_status ry_lm_generate(ry_lm *m, const int32_t *prompt, int n_prompt, const ry_sample_opts *o, int max_tokens,
                         const int32_t *stop_ids, int n_stop, ry_token_fn on_token, void *ctx, ry_gen_stats *stats) {
  if (!m || !prompt || n_prompt < 1 || max_tokens < 0)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_generate: need a model, a prompt of at least one token and max_tokens >= 0");
  const ry_lm_config *c = ry_lm_config_of(m);
  ry_sampler *smp = NULL;
  ry_status s = ry_sampler_new(o, c->n_vocab, &smp);
  if (s) return s;
  float *logits = malloc((size_t)c->n_vocab * sizeof *logits);
  int32_t *hist = malloc(((size_t)n_prompt + (size_t)max_tokens + 1) * sizeof *hist);
  if (!logits || !hist) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_generate: out of memory");
  ry_gen_stats st = {n_prompt, 0, 0, 0, 0};
  double t0 = now_s(), t1 = t0;
  if (!s) {
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    s = ry_lm_eval(m, prompt, n_prompt, logits);
    t1 = now_s();
  }
  int n_hist = n_prompt;
  for (int i = 0; !s && i < max_tokens; i++) {
    int32_t tok = ry_sampler_next(smp, logits, hist, n_hist);
    hist[n_hist++] = tok;
    st.generated_tokens++;
    if (i == 0) st.first_token_s = now_s() - t0;
    int stop = 0;
    for (int k = 0; k < n_stop; k++) stop |= stop_ids[k] == tok;
    if (on_token && on_token(tok, i, ctx)) stop = 1;
    if (stop || i + 1 == max_tokens) break;
    if ((s = ry_lm_eval(m, &tok, 1, logits))) break;
  }
  double t2 = now_s();
  st.prefill_tok_s = t1 > t0 ? n_prompt / (t1 - t0) : 0;
  /* decode: the steps after the first token, each one model evaluation */
  st.decode_tok_s = st.generated_tokens > 1 && t2 > t1 ? (st.generated_tokens - 1) / (t2 - t1) : 0;
  if (stats) *stats = st;
  free(logits);
  free(hist);
  ry_sampler_free(smp);
  return s;
}

/* ry_lm (ryft/model.h): a language model ready to run, over the forward pass
 * of model.c. Prompts run in chunks padded to 1, 16, 64, 128 or 256 tokens
 * and attention reads a power-of-two window of the key/value caches (one
 * pair of arrays per layer, donated to each step and updated in place), so
 * a model compiles a handful of programs, one jit object per window and
 * chunk kind; the one-token program of the next window is traced ahead on a
 * thread of the model's own. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/jit.h"
#include "ryft/model.h"
#include "ryft/nn.h"
#include "lm_internal.h"

/* ---- ry_lm: bucketed programs over a persistent cache ---- */

#define N_WINDOWS 24
static const int k_chunks[] = {1, 16, 64, 128, 256};
#define MAX_CHUNK 256

typedef struct step_ctx {
  const ry_lm_config *c;
  const ry_params *w;
  const int *qtype; /* per weight: its ggml type when it is raw blocks, else -1 */
  bool exact;       /* products with quantized weights in f32, not int8 */
  int64_t window;
  bool ggml;        /* ry_lm_set_ggml_numerics */
} step_ctx;

struct ry_lm {
  ry_lm_config c;
  ry_params *w;
  int *qtype; /* per weight of w */
  bool exact, ggml;
  ry_device *dev;
  int max_ctx, pos;
  int64_t cache_len; /* max_ctx + MAX_CHUNK: a padded chunk always fits */
  ry_array **kc, **vc; /* n_layers each */
  ry_jit *jits[N_WINDOWS][2]; /* per window: chunks of several tokens, one token (traced apart, so ahead too) */
  step_ctx ctx[N_WINDOWS];
  int64_t windows[N_WINDOWS];
  int n_windows;
  /* the one-token program of the window a chunk uses, and of the next one
     from half the window on, traced and planned ahead on a thread of their
     own (ry_jit_lower), so decoding does not stop when the window grows */
  pthread_t pre;
  bool pre_running, pre_asked[N_WINDOWS];
  atomic_bool pre_done;
  int pre_wi, pre_n;
  ry_type *pre_types;
};

/* in: weights..., k caches (L), v caches (L), tokens[1, T], pos0, last;
   out: logits, k caches, v caches */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  step_ctx *sc = vctx;
  int n = ry_params_count(sc->w), L = sc->c->n_layers;
  ry_pvalues *pv = NULL;
  ry_status s = ry_pvalues_from(b, sc->w, in, &pv);
  if (s) return ry_builder_set_error(b, s);
  /* quantized matrices: the forward pass sees them dequantized; the cpu
     backend multiplies by the blocks (int8 activations, as llama.cpp) */
  bool quantized = false;
  for (int i = 0; i < n; i++) {
    if (sc->qtype[i] < 0) continue;
    quantized = true;
    ry_pvalues_set(pv, ry_params_path(sc->w, i),
                   sc->exact ? ry_dequantize(b, in[i], sc->qtype[i]) : ry_dequantize_act8(b, in[i], sc->qtype[i]));
  }
  const ry_value *kc = in + n, *vc = in + n + L, *rest = in + n + 2 * L;
  ry_lm_config c = *sc->c;
  /* with the int8 products, llama.cpp's arithmetic; not in chunks of more
     than 64 tokens, whose products take the cpu backend's faster f32 panels
     (qgemm.c's INT8_MAX_ROWS) and so would not agree bit for bit anyway */
  c.ggml_numerics = sc->ggml && quantized && !sc->exact && ry_value_shape(b, rest[0]).dims[1] <= 64;
  int k = ry_lm_forward(b, &c, pv, rest[0], rest[1], rest[2], kc, vc, sc->window, out, out + 1, out + 1 + L);
  ry_pvalues_free(pv);
  return k ? k : -1;
}

/* zeroed caches, n_layers of each */
static ry_status new_caches(ry_lm *m) {
  ry_shape cs = RY_SHAPE(1, m->c.n_kv_heads, m->cache_len, m->c.head_dim);
  ry_status s = NULL;
  for (int l = 0; l < m->c.n_layers && !s; l++) {
    ry_array_release(m->kc[l]);
    ry_array_release(m->vc[l]);
    m->kc[l] = m->vc[l] = NULL;
    s = ry_array_zeros(RY_F32, cs, &m->kc[l]);
    if (!s) s = ry_array_zeros(RY_F32, cs, &m->vc[l]);
  }
  return s;
}

ry_status ry_lm_new(const ry_lm_config *c, const ry_params *weights, ry_device *dev, int max_ctx, ry_lm **out) {
  return ryl_lm_new(c, weights, NULL, NULL, dev, max_ctx, out);
}

ry_status ryl_lm_new(const ry_lm_config *c, const ry_params *weights, ryl_qtype_fn qtype, void *qctx, ry_device *dev,
                     int max_ctx, ry_lm **out) {
  *out = NULL;
  ry_status s = ryl_check_weights(c, weights, qtype, qctx);
  if (s) return s;
  if (!dev) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_new: no device");
  if (max_ctx < 1 || max_ctx > c->n_ctx_train)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_new: max_ctx %d must be in [1, %d] (the model's context)", max_ctx,
                          c->n_ctx_train);
  ry_lm *m = calloc(1, sizeof *m);
  if (!m) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_new: out of memory");
  m->c = *c;
  m->dev = dev;
  m->max_ctx = max_ctx;
  m->cache_len = (int64_t)max_ctx + MAX_CHUNK;
  /* the model's own tree, in the order of the weight specs (the program's inputs) */
  m->w = ry_params_new();
  int nw = ryl_weight_names(c, NULL, NULL, 0);
  char (*names)[64] = nw > 0 ? calloc((size_t)nw, sizeof *names) : NULL;
  int *ranks = nw > 0 ? calloc((size_t)nw, sizeof *ranks) : NULL;
  m->qtype = nw > 0 ? calloc((size_t)nw, sizeof *m->qtype) : NULL;
  if (!m->w || !names || !ranks || !m->qtype || ryl_weight_names(c, names, ranks, nw) != nw)
    s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_new: out of memory");
  for (int i = 0; !s && i < nw; i++) {
    ry_array *a = ry_params_get(weights, names[i]);
    int qt = qtype && ranks[i] == 2 && a ? qtype(names[i], qctx) : -1;
    if (a) m->qtype[ry_params_count(m->w)] = qt;
    if (a && qt < 0 && ry_array_dtype(a) != RY_F32)
      s = ry_status_make(RY_ERR_DTYPE, "ry_lm_new: tensor '%s' is %s; convert the weights to f32 first", names[i],
                         ry_dtype_name(ry_array_dtype(a)));
    if (!s && a) s = ry_params_set(m->w, names[i], a);
  }
  free(names);
  free(ranks);
  if (!s) {
    m->kc = calloc((size_t)c->n_layers, sizeof *m->kc);
    m->vc = calloc((size_t)c->n_layers, sizeof *m->vc);
    if (!m->kc || !m->vc) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_new: out of memory");
  }
  if (!s) s = new_caches(m);
  /* attention windows: 64, 128, ... up to the cache length */
  for (int64_t wlen = 64; !s && m->n_windows < N_WINDOWS; wlen *= 2) {
    if (wlen > m->cache_len) wlen = m->cache_len;
    m->windows[m->n_windows++] = wlen;
    if (wlen == m->cache_len) break;
  }
  if (s) {
    ry_lm_free(m);
    return s;
  }
  *out = m;
  return NULL;
}

static void *pre_main(void *arg) {
  ry_lm *m = arg;
  ry_executable *e = NULL; /* the jit keeps it */
  ry_status_free(ry_jit_lower(m->jits[m->pre_wi][1], m->pre_n, m->pre_types, &e)); /* a failure shows in the call */
  atomic_store(&m->pre_done, true);
  return NULL;
}

/* wait for the thread tracing ahead, if one runs; before the programs or the
   weights change, and when the model goes */
static void pre_join(ry_lm *m) {
  if (!m->pre_running) return;
  pthread_join(m->pre, NULL);
  m->pre_running = false;
  free(m->pre_types);
  m->pre_types = NULL;
}

static ry_status window_jit(ry_lm *m, int wi, bool one) {
  if (m->jits[wi][one]) return NULL;
  if (!m->jits[wi][!one]) /* else set, and maybe read by a trace ahead */
    m->ctx[wi] = (step_ctx){&m->c, m->w, m->qtype, m->exact, m->windows[wi], m->ggml};
  char name[48];
  snprintf(name, sizeof name, "lm_step_w%lld", (long long)m->windows[wi]);
  return ry_jit_new(name, step_fn, &m->ctx[wi], m->dev, &m->jits[wi][one]);
}

/* The input types of a step of T tokens, in run_chunk's order: the
   weights, the key and value caches (read from the caches themselves), the
   tokens, the position and the last token's index. False without caches
   (a failed call that could not make new ones). */
static bool step_types(const ry_lm *m, int T, ry_type *t) {
  int nw = ry_params_count(m->w), L = m->c.n_layers;
  for (int i = 0; i < nw; i++) t[i] = ry_params_type(m->w, i);
  for (int l = 0; l < L; l++) {
    if (!m->kc[l] || !m->vc[l]) return false;
    t[nw + l] = (ry_type){ry_array_dtype(m->kc[l]), ry_array_shape(m->kc[l])};
    t[nw + L + l] = (ry_type){ry_array_dtype(m->vc[l]), ry_array_shape(m->vc[l])};
  }
  t[nw + 2 * L] = (ry_type){RY_I32, RY_SHAPE(1, T)};
  t[nw + 2 * L + 1] = t[nw + 2 * L + 2] = (ry_type){RY_I32, RY_SCALAR};
  return true;
}

/* Before a chunk of T tokens at window wi: trace the one-token program of
   wi (after a prompt) or of the next window (from half of wi on) ahead. */
static void prefetch(ry_lm *m, int wi, int T) {
  if (m->pre_running && !atomic_load(&m->pre_done)) return; /* one at a time */
  pre_join(m);
  int want = T > 1 ? wi : wi + 1;
  if (want >= m->n_windows || m->pre_asked[want] || (T == 1 && 2 * ((int64_t)m->pos + 1) < m->windows[wi])) return;
  int nw = ry_params_count(m->w), L = m->c.n_layers, n_in = nw + 2 * L + 3;
  ry_type *t = malloc((size_t)n_in * sizeof *t);
  if (!t || !step_types(m, 1, t) || window_jit(m, want, true)) { /* nothing ahead: the call traces it */
    free(t);
    return;
  }
  m->pre_asked[want] = true;
  m->pre_wi = want;
  m->pre_n = n_in;
  m->pre_types = t;
  atomic_store(&m->pre_done, false);
  if (pthread_create(&m->pre, NULL, pre_main, m) == 0) {
    m->pre_running = true;
  } else {
    free(t);
    m->pre_types = NULL;
  }
}

void ry_lm_free(ry_lm *m) {
  if (!m) return;
  pre_join(m);
  for (int i = 0; i < N_WINDOWS; i++) ry_jit_free(m->jits[i][0]), ry_jit_free(m->jits[i][1]);
  for (int l = 0; l < m->c.n_layers; l++) {
    if (m->kc) ry_array_release(m->kc[l]);
    if (m->vc) ry_array_release(m->vc[l]);
  }
  free(m->kc);
  free(m->vc);
  ry_params_free(m->w);
  free(m->qtype);
  free(m);
}

ry_status ry_lm_set_weights(ry_lm *m, const ry_params *w) {
  if (!m || !w) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_set_weights: no model or no weights");
  int n = ry_params_count(m->w);
  pre_join(m); /* a trace ahead reads the tree */
  for (int i = 0; i < n; i++) { /* every tensor there with its type, before anything changes */
    const char *p = ry_params_path(m->w, i);
    ry_array *a = ry_params_get(w, p);
    if (!a) return ry_status_make(RY_ERR_NOT_FOUND, "ry_lm_set_weights: tensor '%s' is missing", p);
    if (!ry_type_equal(ry_params_type(m->w, i), (ry_type){ry_array_dtype(a), ry_array_shape(a)})) {
      char t1[64], t2[64];
      return ry_status_make(RY_ERR_SHAPE, "ry_lm_set_weights: tensor '%s' is %s, the model has %s", p,
                            ry_type_str((ry_type){ry_array_dtype(a), ry_array_shape(a)}, t1, sizeof t1),
                            ry_type_str(ry_params_type(m->w, i), t2, sizeof t2));
    }
  }
  for (int i = 0; i < n; i++) {
    ry_status s = ry_params_replace(m->w, ry_params_path(m->w, i), ry_params_get(w, ry_params_path(m->w, i)));
    if (s) return s;
  }
  m->pos = 0;
  return NULL;
}

/* the programs go (compiled again, the other way, when next used) */
static void drop_programs(ry_lm *m) {
  pre_join(m);
  memset(m->pre_asked, 0, sizeof m->pre_asked);
  for (int i = 0; i < N_WINDOWS; i++) {
    ry_jit_free(m->jits[i][0]);
    ry_jit_free(m->jits[i][1]);
    m->jits[i][0] = m->jits[i][1] = NULL;
  }
}

void ry_lm_set_exact(ry_lm *m, int exact) {
  if (!m || m->exact == (exact != 0)) return;
  drop_programs(m);
  m->exact = exact != 0;
}

void ry_lm_set_ggml_numerics(ry_lm *m, int on) {
  if (!m || m->ggml == (on != 0)) return;
  drop_programs(m);
  m->ggml = on != 0;
}

void ry_lm_reset(ry_lm *m) {
  if (m) m->pos = 0;
}

int ry_lm_position(const ry_lm *m) { return m ? m->pos : 0; }

const ry_lm_config *ry_lm_config_of(const ry_lm *m) { return m ? &m->c : NULL; }

static ry_status run_chunk(ry_lm *m, const int32_t *tokens, int n, int T, float *logits) {
  int wi = 0;
  while (wi + 1 < m->n_windows && m->windows[wi] < (int64_t)m->pos + T) wi++;
  ry_status s = window_jit(m, wi, T == 1);
  if (s) return s;
  prefetch(m, wi, T);
  int32_t tok[MAX_CHUNK] = {0};
  memcpy(tok, tokens, (size_t)n * sizeof *tok);
  int32_t pos0 = m->pos, last = n - 1;
  int nw = ry_params_count(m->w), L = m->c.n_layers, n_in = nw + 2 * L + 3, n_out = 1 + 2 * L;
  ry_array **in = calloc((size_t)(n_in + n_out), sizeof *in), **out = in ? in + n_in : NULL;
  bool *donate = calloc((size_t)n_in, sizeof *donate);
  s = in && donate ? NULL : ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_eval: out of memory");
  if (s) {
    free(in);
    free(donate);
    return s;
  }
  ry_array **rest = in + nw + 2 * L;
  for (int i = 0; i < nw; i++) in[i] = ry_params_at(m->w, i);
  s = ry_array_from_host(RY_I32, RY_SHAPE(1, T), tok, &rest[0]);
  if (!s) s = ry_array_from_host(RY_I32, RY_SCALAR, &pos0, &rest[1]);
  if (!s) s = ry_array_from_host(RY_I32, RY_SCALAR, &last, &rest[2]);
  if (!s) {
    /* the caches are donated: the step writes the new keys and values in place */
    for (int l = 0; l < L; l++) {
      in[nw + l] = m->kc[l];
      in[nw + L + l] = m->vc[l];
      donate[nw + l] = donate[nw + L + l] = true;
      m->kc[l] = m->vc[l] = NULL;
    }
    s = ry_jit_call_donated(m->jits[wi][T == 1], n_in, in, donate, n_out, out);
    if (s) { /* the caches went with the failed call: start over */
      ry_status_free(new_caches(m));
      m->pos = 0;
    } else {
      for (int l = 0; l < L; l++) {
        m->kc[l] = out[1 + l];
        m->vc[l] = out[1 + L + l];
      }
      m->pos += n;
      if (logits) s = ry_array_to_host(out[0], logits, (size_t)m->c.n_vocab * sizeof(float));
    }
  }
  ry_array_release(out[0]);
  for (int i = 0; i < 3; i++) ry_array_release(rest[i]);
  free(in);
  free(donate);
  return s;
}

ry_status ry_lm_eval(ry_lm *m, const int32_t *tokens, int n, float *logits) {
  if (!m || !tokens || n < 1) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_eval: need a model and at least one token");
  if ((int64_t)m->pos + n > m->max_ctx)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_eval: %d tokens after %d would exceed the context of %d", n, m->pos,
                          m->max_ctx);
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= m->c.n_vocab)
      return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_eval: token %d (at %d) is not in [0, %d)", tokens[i], i,
                            m->c.n_vocab);
  ry_status s = NULL;
  for (int done = 0; done < n && !s;) {
    int rem = n - done, T = MAX_CHUNK;
    for (size_t k = 0; k < sizeof k_chunks / sizeof k_chunks[0]; k++)
      if (k_chunks[k] >= rem) {
        T = k_chunks[k];
        break;
      }
    int take = rem < T ? rem : T;
    s = run_chunk(m, tokens + done, take, T, done + take == n ? logits : NULL);
    done += take;
  }
  return s;
}

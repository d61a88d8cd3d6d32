/* Transformer language models (ryft/model.h) against an independent
 * float64 NumPy forward pass (tests/data/gen_lm_goldens.py) of tiny random
 * llama, qwen2, gemma and gpt2 models: the whole prompt at once, one token at a time
 * through the key/value cache, and split prompts, on every device; and bad
 * configurations, weights and inputs named in their errors. */
#include <stdlib.h>

#include "ryft/model.h"
#include "testlib.h"

static ry_lm_config tiny(ry_lm_arch arch) {
  ry_lm_config c = {arch, 2, 32, 48, 4, 2, 8, 64, 128, 10000.0, 1e-5, RY_ROPE_NORM, 1, 0};
  if (arch == RY_LM_QWEN2) {
    c.rope = RY_ROPE_NEOX;
    c.tied_embeddings = 0;
  }
  if (arch == RY_LM_GEMMA) {
    c.rope = RY_ROPE_NEOX;
    c.head_dim = 16; /* heads * head_dim = 64, not n_embd */
  }
  if (arch == RY_LM_GPT2) {
    c.rope = RY_ROPE_NONE;
    c.n_kv_heads = 4;
  }
  return c;
}

typedef struct lm_data {
  ry_params *w;
  ry_array *tokens, *logits;
} lm_data;

static lm_data load(const char *arch) {
  lm_data d = {0};
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/data/lm/%s.safetensors", rt_source_dir(), arch);
  CHECK_OK(ry_safetensors_read(p, &d.w));
  snprintf(p, sizeof p, "%s/tests/data/lm/%s_tokens.npy", rt_source_dir(), arch);
  CHECK_OK(ry_npy_read(p, &d.tokens));
  snprintf(p, sizeof p, "%s/tests/data/lm/%s_logits.npy", rt_source_dir(), arch);
  CHECK_OK(ry_npy_read(p, &d.logits));
  return d;
}

static void unload(lm_data *d) {
  ry_params_free(d->w);
  ry_array_release(d->tokens);
  ry_array_release(d->logits);
}

/* logits after the prefix ending at position t, against the reference */
static int check_logits(const char *what, const float *got, const ry_array *ref, int t) {
  int64_t V = ry_array_shape(ref).dims[1];
  const float *want = (const float *)ry_array_data(ref) + (int64_t)t * V;
  for (int64_t i = 0; i < V; i++)
    if (!(fabsf(got[i] - want[i]) <= 2e-4f + 1e-4f * fabsf(want[i]))) {
      rt_fail(__FILE__, __LINE__, "%s: position %d logit %lld is %.7g, NumPy (f64) has %.7g", what, t, (long long)i, got[i],
              want[i]);
      return 0;
    }
  return 1;
}

static void run_arch(const char *arch_name, ry_lm_arch arch, const char *device) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(device, &dev);
  if (s) {
    rt_skip(device, "device %s: %s", device, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  lm_data d = load(arch_name);
  ry_lm_config c = tiny(arch);
  ry_lm *m = NULL;
  if (d.w) CHECK_OK(ry_lm_new(&c, d.w, dev, 64, &m));
  if (!m || !d.tokens || !d.logits) {
    unload(&d);
    return;
  }
  const int32_t *tok = ry_array_data(d.tokens);
  int T = (int)ry_array_numel(d.tokens);
  float logits[64];
  char what[128];
  /* the whole prompt in one padded chunk */
  snprintf(what, sizeof what, "%s on %s, one prompt", arch_name, device);
  CHECK_OK(ry_lm_eval(m, tok, T, logits));
  CHECK_EQ_INT(ry_lm_position(m), T);
  check_logits(what, logits, d.logits, T - 1);
  /* one token at a time through the cache */
  ry_lm_reset(m);
  snprintf(what, sizeof what, "%s on %s, token by token", arch_name, device);
  for (int t = 0; t < T; t++) {
    s = ry_lm_eval(m, tok + t, 1, logits);
    CHECK_OK(s);
    if (s || !check_logits(what, logits, d.logits, t)) break;
  }
  /* a prompt in two pieces, then decoding */
  ry_lm_reset(m);
  snprintf(what, sizeof what, "%s on %s, 17 + 20 + 1 + 1 + 1", arch_name, device);
  CHECK_OK(ry_lm_eval(m, tok, 17, logits));
  check_logits(what, logits, d.logits, 16);
  CHECK_OK(ry_lm_eval(m, tok + 17, 20, logits));
  check_logits(what, logits, d.logits, 36);
  for (int t = 37; t < T; t++) {
    CHECK_OK(ry_lm_eval(m, tok + t, 1, logits));
    check_logits(what, logits, d.logits, t);
  }
  /* past the context: an error, and the model still works after it */
  CHECK_ERR(ry_lm_eval(m, tok, 25, logits), RY_ERR_INVALID_ARGUMENT, "exceed the context of 64");
  int32_t bad = 64;
  ry_lm_reset(m);
  CHECK_ERR(ry_lm_eval(m, &bad, 1, logits), RY_ERR_INVALID_ARGUMENT, "token 64", "[0, 64)");
  CHECK_OK(ry_lm_eval(m, tok, 1, logits));
  check_logits(what, logits, d.logits, 0);
  ry_lm_free(m);
  unload(&d);
}

/* the same models from GGUF files (tests/data/lm/<arch>.gguf): the
   hyperparameters read from llama.cpp's keys, the same logits */
static void from_gguf(const char *arch_name, ry_lm_arch arch) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  lm_data d = load(arch_name);
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/data/lm/%s.gguf", rt_source_dir(), arch_name);
  ry_lm *m = NULL;
  CHECK_OK(ry_lm_load(p, dev, 64, &m));
  if (m && d.tokens && d.logits) {
    ry_lm_config want = tiny(arch);
    const ry_lm_config *c = ry_lm_config_of(m);
    CHECK(c->arch == want.arch && c->n_layers == want.n_layers && c->n_embd == want.n_embd && c->n_ff == want.n_ff &&
          c->n_heads == want.n_heads && c->n_kv_heads == want.n_kv_heads && c->head_dim == want.head_dim &&
          c->n_vocab == want.n_vocab && c->n_ctx_train == want.n_ctx_train && c->rope == want.rope &&
          c->tied_embeddings == want.tied_embeddings);
    CHECK_NEAR(c->norm_eps, want.norm_eps, 1e-12);
    if (c->rope != RY_ROPE_NONE) CHECK_NEAR(c->rope_base, want.rope_base, 1e-9);
    float logits[64];
    int T = (int)ry_array_numel(d.tokens);
    CHECK_OK(ry_lm_eval(m, ry_array_data(d.tokens), T, logits));
    check_logits(p, logits, d.logits, T - 1);
  }
  ry_lm_free(m);
  unload(&d);
}

TEST(model_from_gguf_every_arch) {
  from_gguf("llama", RY_LM_LLAMA);
  from_gguf("qwen2", RY_LM_QWEN2);
  from_gguf("gemma", RY_LM_GEMMA);
  from_gguf("gpt2", RY_LM_GPT2);
}

TEST(model_llama_interp) { run_arch("llama", RY_LM_LLAMA, "interp"); }
TEST(model_llama_cpu) { run_arch("llama", RY_LM_LLAMA, "cpu"); }
TEST(model_qwen2_interp) { run_arch("qwen2", RY_LM_QWEN2, "interp"); }
TEST(model_qwen2_cpu) { run_arch("qwen2", RY_LM_QWEN2, "cpu"); }
TEST(model_gemma_interp) { run_arch("gemma", RY_LM_GEMMA, "interp"); }
TEST(model_gemma_cpu) { run_arch("gemma", RY_LM_GEMMA, "cpu"); }
TEST(model_gpt2_interp) { run_arch("gpt2", RY_LM_GPT2, "interp"); }
TEST(model_gpt2_cpu) { run_arch("gpt2", RY_LM_GPT2, "cpu"); }
TEST(model_llama_pjrt) { run_arch("llama", RY_LM_LLAMA, "pjrt"); }
TEST(model_gpt2_pjrt) { run_arch("gpt2", RY_LM_GPT2, "pjrt"); }

TEST(model_bad_configs_and_weights) {
  lm_data d = load("llama");
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  ry_lm *m = NULL;
  ry_lm_config c = tiny(RY_LM_LLAMA);
  c.n_kv_heads = 3;
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 64, &m), RY_ERR_INVALID_ARGUMENT, "n_heads 4", "n_kv_heads 3");
  c = tiny(RY_LM_LLAMA);
  c.n_ff = 0;
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 64, &m), RY_ERR_INVALID_ARGUMENT, "n_ff is 0");
  c = tiny(RY_LM_LLAMA);
  c.n_embd = 48; /* contradicts the tensors */
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 64, &m), RY_ERR_SHAPE, "token_embd.weight", "[64,32]", "[64,48]");
  c = tiny(RY_LM_LLAMA);
  c.tied_embeddings = 0; /* no output.weight in the file */
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 64, &m), RY_ERR_NOT_FOUND, "output.weight");
  c = tiny(RY_LM_QWEN2); /* llama weights have no biases */
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 64, &m), RY_ERR_NOT_FOUND, "blk.0.attn_q.bias");
  c = tiny(RY_LM_LLAMA);
  CHECK_ERR(ry_lm_new(&c, d.w, dev, 129, &m), RY_ERR_INVALID_ARGUMENT, "max_ctx 129", "[1, 128]");
  CHECK(m == NULL);
  unload(&d);
}

/* ---- the real model: SmolLM2-135M-Instruct (Q4_1) ----
 * Loaded from its GGUF (dequantized to f32) and run on the cpu device, the
 * logits of the last position of three prompts against an f32 forward pass
 * in NumPy over the gguf package's dequantized tensors, computed in float64
 * (tests/data/gen_smollm2_goldens.py). ryft computes in f32 through 30
 * layers: the tolerance is 1e-4 relative to the largest logit. */
TEST(model_smollm2_matches_numpy) {
  const char *path = rt_smollm2_path();
  if (!path) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("cpu", &dev));
  ry_lm *m = NULL;
  CHECK_OK(ry_lm_load(path, dev, 256, &m));
  if (!m) return;
  ry_lm_set_exact(m, 1); /* NumPy's f32 forward pass: no 8-bit activations */
  const ry_lm_config *c = ry_lm_config_of(m);
  CHECK(c->arch == RY_LM_LLAMA && c->n_layers == 30 && c->n_embd == 576 && c->n_ff == 1536 && c->n_heads == 9 &&
        c->n_kv_heads == 3 && c->head_dim == 64 && c->n_vocab == 49152 && c->n_ctx_train == 8192 && c->tied_embeddings);
  CHECK_NEAR(c->rope_base, 100000.0, 1e-9);
  CHECK_NEAR(c->norm_eps, 1e-5, 1e-12);
  char rp[1024];
  snprintf(rp, sizeof rp, "%s/tests/data/lm/smollm2_ref.txt", rt_source_dir());
  char *text = rt_read_file(rp, NULL);
  CHECK_MSG(text != NULL, "cannot read %s", rp);
  float *lg = malloc(49152 * sizeof *lg);
  int prompts = 0;
  double worst = 0;
  for (char *line = text ? strtok(text, "\n") : NULL; line && lg; line = strtok(NULL, "\n")) {
    if (line[0] == '#') continue;
    int32_t tok[64];
    int n = 0;
    char *p = line;
    while (n < 64 && *p && *p != '|') {
      tok[n++] = (int32_t)strtol(p, &p, 10);
      if (*p == ',') p++;
      while (*p == ' ') p++;
    }
    int argmax = (int)strtol(p + 1, &p, 10);
    ry_lm_reset(m);
    ry_status s = ry_lm_eval(m, tok, n, lg);
    CHECK_OK(s);
    if (s) break;
    int best = 0;
    for (int v = 1; v < 49152; v++)
      if (lg[v] > lg[best]) best = v;
    CHECK_MSG(best == argmax, "prompt %d: argmax %d, NumPy has %d", prompts, best, argmax);
    double mx = fabs(lg[best]);
    p = strchr(p + 1, '|');
    for (p = p ? p + 1 : NULL; p && *p;) {
      long i = strtol(p, &p, 10);
      if (*p != ':') break;
      double want = strtod(p + 1, &p);
      double d = fabs(lg[i] - want) / mx;
      if (d > worst) worst = d;
      CHECK_MSG(d <= 1e-4, "prompt %d: logit %ld is %.6f, NumPy has %.6f", prompts, i, lg[i], want);
    }
    prompts++;
  }
  CHECK_EQ_INT(prompts, 3);
  printf("  smollm2: 3 prompts, worst logit difference %.2e of the largest logit\n", worst);
  free(lg);
  free(text);
  ry_lm_free(m);
}

TEST(model_gguf_bad_files) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  ry_lm *m = NULL;
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/data/gguf/all_types.gguf", rt_source_dir());
  CHECK_ERR(ry_lm_load(p, dev, 64, &m), RY_ERR_UNSUPPORTED, "all_types.gguf", "architecture 'ryfttest' is not supported");
  snprintf(p, sizeof p, "%s/tests/data/lm/llama_bad_shape.gguf", rt_source_dir());
  CHECK_ERR(ry_lm_load(p, dev, 64, &m), RY_ERR_SHAPE, "llama_bad_shape.gguf", "blk.0.attn_q.weight", "[31,32]", "[32,32]");
  snprintf(p, sizeof p, "%s/tests/data/lm/llama_bad_type.gguf", rt_source_dir());
  CHECK_ERR(ry_lm_load(p, dev, 64, &m), RY_ERR_UNSUPPORTED, "llama_bad_type.gguf", "blk.1.attn_k.weight", "Q8_1");
  snprintf(p, sizeof p, "%s/tests/data/gguf/bad_magic.gguf", rt_source_dir());
  CHECK_ERR(ry_lm_load(p, dev, 64, &m), RY_ERR_PARSE, "bad_magic.gguf");
  snprintf(p, sizeof p, "%s/tests/data/gguf/nonexistent.gguf", rt_source_dir());
  CHECK_ERR(ry_lm_load(p, dev, 64, &m), RY_ERR_IO, "nonexistent.gguf");
  CHECK(m == NULL);
}

/* ---- against llama.cpp on the same file ----
 * tests/data/gen_llamacpp_goldens.py recorded, for 10 prompts, llama.cpp's
 * token ids, next-token logits and greedy continuation of 32 tokens. ryft's
 * tokenizer must give the same ids. ry_lm's default (int8) mode follows
 * llama.cpp's CPU arithmetic op by op (ry_lm_config.ggml_numerics, docs/
 * QUANT.md): 8-bit activations with llama.cpp's lanes and sums, f16
 * attention operands, ggml's RMS norm, RoPE angles, exp and dot-product
 * orders, so its K/V caches are bit-identical to llama.cpp's (measured with
 * tests/data/dump_llamacpp_tensors.py). The logits then differ only where
 * llama.cpp computes the prompt's logits with another kernel (tinyBLAS,
 * for its logits_all) than its own decoding: 3e-7 of the largest measured.
 * LLAMACPP_TOL allows 300 times that and still catches a single moved
 * 8-bit code (1e-3 and more), the way these runs part; all 10 greedy
 * continuations agree, and at least 9 must. */
#define LLAMACPP_TOL 1e-4

static char *unescape(const char *s) {
  char *o = malloc(strlen(s) + 1), *q = o;
  for (; o && *s; s++) {
    if (*s != '\\' || !s[1]) {
      *q++ = *s;
      continue;
    }
    s++;
    *q++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
  }
  if (q) *q = 0;
  return o;
}

TEST(model_smollm2_matches_llamacpp) {
  const char *path = rt_smollm2_path();
  if (!path) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("cpu", &dev));
  ry_gguf *g = NULL;
  ry_tokenizer *tok = NULL;
  ry_lm *m = NULL;
  CHECK_OK(ry_gguf_open(path, &g));
  if (g) CHECK_OK(ry_tokenizer_from_gguf(g, &tok));
  ry_gguf_close(g);
  CHECK_OK(ry_lm_load(path, dev, 256, &m));
  ry_lm_set_ggml_numerics(m, 1); /* llama.cpp's arithmetic op by op */
  char rp[1024];
  snprintf(rp, sizeof rp, "%s/tests/data/lm/smollm2_llamacpp.txt", rt_source_dir());
  char *text = rt_read_file(rp, NULL);
  CHECK_MSG(text != NULL, "cannot read %s", rp);
  float *lg = malloc(49152 * sizeof *lg);
  int prompts = 0, same_greedy = 0, decided = 0;
  double worst = 0;
  char *prompt = NULL;
  int32_t want_ids[256];
  int n_want = 0;
  for (char *line = (text && m && tok && lg) ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "prompt ", 7)) {
      free(prompt);
      prompt = unescape(line + 7);
    } else if (!strncmp(line, "ids ", 4)) {
      n_want = 0;
      for (char *p = line + 4; *p && n_want < 256;) want_ids[n_want++] = (int32_t)strtol(p, &p, 10);
    } else if (!strncmp(line, "logits ", 7) && prompt) {
      int32_t *ids = NULL;
      int64_t n = 0;
      CHECK_OK(ry_tokenize(tok, prompt, -1, RY_TOK_PARSE_SPECIAL, &ids, &n));
      int same = n == n_want;
      for (int64_t i = 0; same && i < n; i++) same = ids[i] == want_ids[i];
      CHECK_MSG(same, "prompt %d: ryft's token ids differ from llama.cpp's", prompts);
      ry_lm_reset(m);
      ry_status s = n > 0 ? ry_lm_eval(m, ids, (int)n, lg) : ry_status_make(RY_ERR_INTERNAL, "no tokens");
      ry_free(ids);
      CHECK_OK(s);
      if (s) break;
      double mx = 0, top1 = -INFINITY, top2 = -INFINITY;
      long best_lc = -1;
      for (int v = 0; v < 49152; v++) mx = fmax(mx, fabs(lg[v]));
      for (char *p = line + 7; *p;) {
        long i = strtol(p, &p, 10);
        if (*p != ':') break;
        double want = strtod(p + 1, &p), d = fabs(lg[i] - want) / mx;
        if (d > worst) worst = d;
        CHECK_MSG(d <= LLAMACPP_TOL, "prompt %d: logit %ld is %.4f, llama.cpp has %.4f", prompts, i, lg[i], want);
        if (want > top1) {
          top2 = top1;
          top1 = want;
          best_lc = i;
        } else if (want > top2 && i != best_lc) {
          top2 = want;
        }
      }
      int best = 0;
      for (int v = 1; v < 49152; v++)
        if (lg[v] > lg[best]) best = v;
      if (top1 - top2 > 2 * LLAMACPP_TOL * mx) {
        decided++;
        CHECK_MSG(best == best_lc, "prompt %d: ryft's next token is %d, llama.cpp's %ld (%.3f ahead)", prompts, best, best_lc,
                  top1 - top2);
      }
    } else if (!strncmp(line, "greedy ", 7)) {
      int ok = 1, diverged_at = -1;
      char *p = line + 7;
      for (int k = 0; k < 32 && ok; k++) {
        int32_t want = (int32_t)strtol(p, &p, 10), best = 0;
        for (int v = 1; v < 49152; v++)
          if (lg[v] > lg[best]) best = v;
        ok = best == want;
        if (!ok) diverged_at = k;
        if (ok && k < 31) {
          ry_status s = ry_lm_eval(m, &best, 1, lg);
          CHECK_OK(s);
          ok = !s;
        }
      }
      if (!ok) printf("  smollm2 vs llama.cpp: prompt %d: greedy diverges from llama.cpp's at token %d\n", prompts, diverged_at);
      same_greedy += ok;
      prompts++;
    }
  }
  CHECK_EQ_INT(prompts, 10);
  CHECK_MSG(same_greedy >= 9, "greedy 32 tokens equal to llama.cpp's for only %d of 10 prompts", same_greedy);
  printf("  smollm2 vs llama.cpp: %d prompts with llama.cpp's token ids; logits within %.2e of the largest (worst); next token "
         "equal where llama.cpp's best two are apart (%d prompts); greedy 32 tokens equal for %d of %d\n",
         prompts, worst, decided, same_greedy, prompts);
  free(prompt);
  free(lg);
  free(text);
  ry_lm_free(m);
  ry_tokenizer_free(tok);
}

/* Decoding through growing attention windows while ry_lm traces the next
 * window's one-token program on a thread of its own (and the model changes
 * mode, or goes, with a trace ahead possibly running): every call succeeds
 * and the logits after 128 tokens one at a time are those of the same 128
 * tokens as one prompt. (TSan runs it: "from_threads".) */
TEST(model_decode_traces_ahead_from_threads) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("cpu", &dev));
  lm_data d = load("llama");
  ry_lm_config c = tiny(RY_LM_LLAMA);
  ry_lm *a = NULL, *b = NULL;
  if (d.w) {
    CHECK_OK(ry_lm_new(&c, d.w, dev, 128, &a));
    CHECK_OK(ry_lm_new(&c, d.w, dev, 128, &b));
  }
  if (a && b && d.tokens) {
    const int32_t *tok = ry_array_data(d.tokens);
    int T = (int)ry_array_numel(d.tokens);
    int32_t seq[128];
    for (int i = 0; i < 128; i++) seq[i] = tok[(i * 7) % T];
    float la[64], lb[64];
    for (int i = 0; i < 128; i++) {
      CHECK_OK(ry_lm_eval(a, seq + i, 1, la));
      if (i == 40) { /* the next window is being traced ahead: both programs go and come back */
        ry_lm_set_exact(a, 1);
        ry_lm_set_exact(a, 0);
      }
    }
    CHECK_OK(ry_lm_eval(b, seq, 128, lb));
    float top = 0.0f;
    for (int v = 0; v < 64; v++) top = fmaxf(top, fabsf(lb[v]));
    for (int v = 0; v < 64; v++)
      CHECK_MSG(fabsf(la[v] - lb[v]) <= 1e-4f * top, "logit %d: %g one token at a time, %g as one prompt", v, la[v], lb[v]);
    ry_lm_reset(a);
    CHECK_OK(ry_lm_eval(a, seq, 33, la)); /* from half the window on: a trace ahead starts, and the model goes */
    CHECK_OK(ry_lm_eval(a, seq + 33, 1, la));
  }
  ry_lm_free(a);
  ry_lm_free(b);
  unload(&d);
}

/* Transformer language models (ryft/model.h) against an independent
 * float64 NumPy forward pass (tests/data/gen_lm_goldens.py) of tiny random
 * llama, qwen2, gemma and gpt2 models: the whole prompt at once, one token at a time
 * through the key/value cache, and split prompts, on every device; and bad
 * configurations, weights and inputs named in their errors. */
#include <stdlib.h>

#include "ryft/model.h"
#include "testlib.h"

static ry_lm_config tiny(ry_lm_arch arch) {
  ry_lm_config c = {arch, 2, 32, 48, 4, 2, 8, 64, 128, 10000.0, 1e-5, RY_ROPE_NORM, 1};
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

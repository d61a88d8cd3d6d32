/* Language models from GGUF files (ryft/model.h): the hyperparameters under
 * llama.cpp's keys, the weights dequantized to f32 under their GGUF names,
 * and ry_lm_load, which does both and builds an ry_lm. Public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/gguf.h"
#include "ryft/model.h"
#include "lm_internal.h"
#include "../core/internal.h"
#include "../io/io_internal.h"

/* "<arch>.<key>" as an integer or a float (out_i or out_f); when absent,
   an error if required, else *out is kept */
static ry_status arch_num(const ry_gguf *g, const char *arch, const char *key, int required, int64_t *out_i,
                          double *out_f) {
  char k[128];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  if (!ry_gguf_find(g, k))
    return required ? ry_status_make(RY_ERR_PARSE, "gguf model: the file lacks '%s'", k) : NULL;
  return out_i ? ry_gguf_get_int(g, k, out_i) : ry_gguf_get_float(g, k, out_f);
}
#define arch_int(g, arch, key, req, out) arch_num((g), (arch), (key), (req), (out), NULL)
#define arch_float(g, arch, key, req, out) arch_num((g), (arch), (key), (req), NULL, (out))

static ry_status int_field(int64_t v, const char *what, int *out) {
  if (v <= 0 || v > (1 << 24)) return ry_status_make(RY_ERR_PARSE, "gguf model: %s is %lld, not in [1, 2^24]", what, (long long)v);
  *out = (int)v;
  return NULL;
}

ry_status ry_lm_config_from_gguf(const ry_gguf *g, ry_lm_config *out) {
  memset(out, 0, sizeof *out);
  const char *an = NULL;
  size_t alen = 0;
  ry_status s = ry_gguf_get_str(g, "general.architecture", &an, &alen);
  if (s) return s;
  char arch[64];
  snprintf(arch, sizeof arch, "%.*s", (int)(alen < 63 ? alen : 63), an);
  if (!ry_lm_arch_from_name(arch, &out->arch))
    return ry_status_make(RY_ERR_UNSUPPORTED, "gguf model: architecture '%s' is not supported (llama, qwen2, gemma, gpt2 are)", arch);
  int64_t n_layers = 0, n_embd = 0, n_ff = 0, n_heads = 0, n_kv = 0, ctx = 0, head_dim = 0, vocab = 0;
  double eps = 0, base = 10000.0;
  if (!s) s = arch_int(g, arch, "block_count", 1, &n_layers);
  if (!s) s = arch_int(g, arch, "embedding_length", 1, &n_embd);
  if (!s) s = arch_int(g, arch, "feed_forward_length", 1, &n_ff);
  if (!s) s = arch_int(g, arch, "attention.head_count", 1, &n_heads);
  n_kv = n_heads;
  if (!s) s = arch_int(g, arch, "attention.head_count_kv", 0, &n_kv);
  if (!s) s = arch_int(g, arch, "context_length", 1, &ctx);
  if (!s && n_heads > 0) head_dim = n_embd / n_heads;
  if (!s) s = arch_int(g, arch, "attention.key_length", 0, &head_dim);
  if (!s) s = arch_float(g, arch, out->arch == RY_LM_GPT2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon", 1, &eps);
  if (!s) s = arch_float(g, arch, "rope.freq_base", 0, &base);
  /* the vocabulary: the embedding table's rows */
  const ry_gguf_tensor *emb = s ? NULL : ry_gguf_find_tensor(g, "token_embd.weight");
  if (!s && !emb) s = ry_status_make(RY_ERR_PARSE, "gguf model: the file has no tensor 'token_embd.weight'");
  if (!s) vocab = emb->n_dims == 2 ? emb->dims[1] : 0;
  if (!s) s = int_field(n_layers, "block_count", &out->n_layers);
  if (!s) s = int_field(n_embd, "embedding_length", &out->n_embd);
  if (!s) s = int_field(n_ff, "feed_forward_length", &out->n_ff);
  if (!s) s = int_field(n_heads, "attention.head_count", &out->n_heads);
  if (!s) s = int_field(n_kv, "attention.head_count_kv", &out->n_kv_heads);
  if (!s) s = int_field(head_dim, "the head dimension", &out->head_dim);
  if (!s) s = int_field(vocab, "the vocabulary size (token_embd rows)", &out->n_vocab);
  if (!s) s = int_field(ctx, "context_length", &out->n_ctx_train);
  if (s) return s;
  out->norm_eps = eps;
  out->rope_base = base;
  out->rope = out->arch == RY_LM_LLAMA ? RY_ROPE_NORM : out->arch == RY_LM_GPT2 ? RY_ROPE_NONE : RY_ROPE_NEOX;
  out->tied_embeddings = ry_gguf_find_tensor(g, "output.weight") == NULL;
  return ry_lm_config_check(out);
}

/* ry_lm_load keeps a quantized matrix as its blocks, borrowed from the
   mapping; the mapping stays open until the last such array goes */
typedef struct keeper {
  ry_gguf *g;
  int refs;
} keeper;

static void keeper_drop(void *ctx) {
  keeper *k = ctx;
  if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    ry_gguf_close(k->g);
    free(k);
  }
}

static bool keeps_blocks(const ry_gguf_tensor *t) {
  if (!t || t->n_dims != 2 || ry_ggml_block_size(t->type) <= 1) return false;
  ry_status s = ry_ggml_dequantize(t->type, NULL, NULL, 0); /* has a dequantizer */
  ry_status_free(s);
  return s == NULL;
}

static int qtype_of(const char *name, void *ctx) {
  const ry_gguf_tensor *t = ry_gguf_find_tensor(ctx, name);
  return keeps_blocks(t) ? (int)t->type : -1;
}

static ry_status load_weights(const ry_gguf *g, const ry_lm_config *c, keeper *k, ry_params **out);

ry_status ry_lm_weights_from_gguf(const ry_gguf *g, const ry_lm_config *c, ry_params **out) {
  return load_weights(g, c, NULL, out);
}

/* k: quantized matrices become borrowed blocks (else every tensor is f32) */
static ry_status load_weights(const ry_gguf *g, const ry_lm_config *c, keeper *k, ry_params **out) {
  *out = NULL;
  ry_status s = ry_lm_config_check(c);
  if (s) return s;
  ry_params *p = ry_params_new();
  if (!p) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "gguf model: out of memory");
  /* every tensor the architecture reads (the rest, e.g. rope_freqs, is not needed) */
  for (int64_t i = 0; !s && i < ry_gguf_n_tensors(g); i++) {
    const ry_gguf_tensor *t = ry_gguf_tensor_at(g, i);
    if (strncmp(t->name, "blk.", 4) != 0 && strcmp(t->name, "token_embd.weight") != 0 && strcmp(t->name, "output.weight") != 0 &&
        strncmp(t->name, "output_norm.", 12) != 0 && strcmp(t->name, "position_embd.weight") != 0)
      continue;
    if (t->n_dims > 2) {
      s = ry_status_make(RY_ERR_UNSUPPORTED, "gguf model: tensor '%s' has %d dims; a model's weights have 1 or 2", t->name, t->n_dims);
      break;
    }
    ry_shape sh = t->n_dims == 1 ? RY_SHAPE(t->dims[0]) : RY_SHAPE(t->dims[1], t->dims[0]);
    if (k && keeps_blocks(t)) {
      ry_array *a = NULL;
      __atomic_add_fetch(&k->refs, 1, __ATOMIC_ACQ_REL);
      s = ry_array_borrow(RY_U8, RY_SHAPE(t->dims[1], (int64_t)(t->size / (size_t)t->dims[1])), t->data, keeper_drop, k, &a);
      if (s) keeper_drop(k);
      else a->file_pages = ry__gguf_mapped(g); /* ry_gguf_open's read-only mapping, not a caller's memory */
      if (!s) s = ry_params_set_owned(p, t->name, a);
      continue;
    }
    int64_t n = t->n_dims == 1 ? t->dims[0] : t->dims[0] * t->dims[1];
    float *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
    if (!buf) {
      s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "gguf model: out of memory for tensor '%s'", t->name);
      break;
    }
    s = ry_ggml_dequantize(t->type, t->data, buf, n);
    ry_array *a = NULL;
    if (!s) s = ry_array_from_host(RY_F32, sh, buf, &a);
    free(buf);
    if (!s) s = ry_params_set_owned(p, t->name, a);
    if (s) {
      ry_status e = ry_status_make(ry_status_code(s), "gguf model: tensor '%s' (%s): %s", t->name, ry_ggml_type_name(t->type)
                                                                                                   ? ry_ggml_type_name(t->type)
                                                                                                   : "?",
                                   ry_status_message(s));
      ry_status_free(s);
      s = e;
    }
  }
  if (!s && !k) s = ry_lm_check_weights(c, p);
  if (s) {
    ry_params_free(p);
    return s;
  }
  *out = p;
  return NULL;
}

ry_status ry_lm_load(const char *path, ry_device *dev, int max_ctx, ry_lm **out) {
  *out = NULL;
  ry_gguf *g = NULL;
  ry_status s = ry_gguf_open(path, &g);
  ry_lm_config c;
  ry_params *w = NULL;
  keeper *k = NULL;
  if (!s && !(k = malloc(sizeof *k))) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "out of memory");
  if (k) *k = (keeper){g, 1}; /* the loader's own reference */
  else ry_gguf_close(g);
  if (!s) s = ry_lm_config_from_gguf(g, &c);
  if (!s && max_ctx <= 0) max_ctx = c.n_ctx_train < 2048 ? c.n_ctx_train : 2048;
  if (!s) s = load_weights(g, &c, k, &w);
  if (!s) s = ryl_lm_new(&c, w, qtype_of, g, dev, max_ctx, out);
  ry_params_free(w);
  if (k) keeper_drop(k);
  if (s) {
    ry_status e = ry_status_make(ry_status_code(s), "%s: %s", path, ry_status_message(s));
    ry_status_free(s);
    s = e;
  }
  return s;
}

ry_status ry_lm_save_gguf(const char *path, const ry_lm_config *c, const ry_params *w, const ry_gguf *tokenizer_from) {
  ry_status s = ry_lm_check_weights(c, w);
  if (s) return s;
  const char *arch = ry_lm_arch_name(c->arch);
  if (c->arch != RY_LM_GPT2 && c->arch != RY_LM_LLAMA)
    return ry_status_make(RY_ERR_UNSUPPORTED, "ry_lm_save_gguf: writing '%s' models is not supported (gpt2, llama are)", arch);
  ry_gguf_writer *gw = NULL;
  if ((s = ry_gguf_writer_new(&gw))) return s;
  char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", arch, suffix), k)
  s = ry_gguf_writer_add_str(gw, "general.architecture", arch, strlen(arch));
  if (!s) s = ry_gguf_writer_add_str(gw, "general.name", "ryft", 4);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("block_count"), RY_GGUF_U32, c->n_layers);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("context_length"), RY_GGUF_U32, c->n_ctx_train);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("embedding_length"), RY_GGUF_U32, c->n_embd);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("feed_forward_length"), RY_GGUF_U32, c->n_ff);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("attention.head_count"), RY_GGUF_U32, c->n_heads);
  if (!s) s = ry_gguf_writer_add_int(gw, KEY("attention.head_count_kv"), RY_GGUF_U32, c->n_kv_heads);
  if (c->arch == RY_LM_GPT2) {
    if (!s) s = ry_gguf_writer_add_float(gw, KEY("attention.layer_norm_epsilon"), RY_GGUF_F32, c->norm_eps);
  } else {
    if (!s) s = ry_gguf_writer_add_float(gw, KEY("attention.layer_norm_rms_epsilon"), RY_GGUF_F32, c->norm_eps);
    if (!s) s = ry_gguf_writer_add_float(gw, KEY("rope.freq_base"), RY_GGUF_F32, c->rope_base);
    if (!s) s = ry_gguf_writer_add_int(gw, KEY("attention.key_length"), RY_GGUF_U32, c->head_dim);
    if (!s) s = ry_gguf_writer_add_int(gw, KEY("attention.value_length"), RY_GGUF_U32, c->head_dim);
  }
#undef KEY
  /* the tokenizer: every tokenizer.* key of the source, as is */
  for (int64_t i = 0; !s && tokenizer_from && i < ry_gguf_n_kv(tokenizer_from); i++) {
    const char *key = ry_gguf_key(tokenizer_from, i);
    if (!strncmp(key, "tokenizer.", 10)) s = ry_gguf_writer_add_value(gw, key, ry_gguf_kv_value(tokenizer_from, i));
  }
  /* the tensors as f32, in the tree's order, dims in ggml's order */
  float **bufs = calloc((size_t)ry_params_count(w) + 1, sizeof *bufs);
  if (!s && !bufs) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_save_gguf: out of memory");
  for (int i = 0; !s && i < ry_params_count(w); i++) {
    const ry_array *a = ry_params_at(w, i);
    ry_shape sh = ry_array_shape(a);
    int64_t n = ry_array_numel(a);
    if (sh.rank < 1 || sh.rank > 2) continue; /* not a model tensor */
    const float *data = ry_array_dtype(a) == RY_F32 ? ry_array_data(a) : NULL;
    if (!data) { /* other float dtypes: converted */
      bufs[i] = malloc((size_t)(n ? n : 1) * sizeof(float));
      if (!bufs[i]) {
        s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_save_gguf: out of memory");
        break;
      }
      for (int64_t j = 0; j < n; j++) bufs[i][j] = (float)ry_array_get_f64(a, j);
      data = bufs[i];
    }
    int64_t dims[2] = {sh.dims[sh.rank - 1], sh.rank == 2 ? sh.dims[0] : 1};
    s = ry_gguf_writer_add_tensor(gw, ry_params_path(w, i), RY_GGML_F32, sh.rank, dims, data, (size_t)n * sizeof(float));
  }
  if (!s) s = ry_gguf_writer_write(gw, path);
  for (int i = 0; bufs && i < ry_params_count(w); i++) free(bufs[i]);
  free(bufs);
  ry_gguf_writer_free(gw);
  return s;
}

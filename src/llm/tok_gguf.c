/* A tokenizer from a GGUF file's tokenizer.* keys. */
#include <string.h>

#include "llm/tok_internal.h"
#include "ryft/graph.h" /* ry_free */
#include "ryft/gguf.h"

/* an optional integer key: *out unchanged when absent */
static ry_status opt_int(const ry_gguf *g, const char *key, int32_t *out) {
  if (!ry_gguf_find(g, key)) return NULL;
  int64_t v;
  ry_status s = ry_gguf_get_int(g, key, &v);
  if (s) return s;
  if (v < INT32_MIN || v > INT32_MAX) return ry__err(RY_ERR_PARSE, "tokenizer: %s = %lld is out of range", key, (long long)v);
  *out = (int32_t)v;
  return NULL;
}

static ry_status opt_bool(const ry_gguf *g, const char *key, int *out) {
  if (!ry_gguf_find(g, key)) return NULL;
  return ry_gguf_get_bool(g, key, out);
}

ry_status ry_tokenizer_from_gguf(const ry_gguf *g, ry_tokenizer **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer_from_gguf: NULL output");
  *out = NULL;
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer_from_gguf: NULL file");
  const char *model;
  size_t model_len;
  ry_status s = ry_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len);
  if (s) return ry__err_prefix(s, "tokenizer");
  ry_tokenizer_config c;
  if (model_len == 4 && memcmp(model, "gpt2", 4) == 0) c = ry_tokenizer_config_init(RY_TOK_BPE);
  else if (model_len == 5 && memcmp(model, "llama", 5) == 0) c = ry_tokenizer_config_init(RY_TOK_SPM);
  else
    return ry__err(RY_ERR_UNSUPPORTED, "tokenizer: tokenizer.ggml.model \"%.*s\" is not supported (gpt2 or llama)",
                   (int)(model_len > 60 ? 60 : model_len), model);

  ry_gguf_value toks, scores, types, merges;
  if ((s = ry_gguf_get_arr(g, "tokenizer.ggml.tokens", RY_GGUF_STRING, &toks))) return ry__err_prefix(s, "tokenizer");
  if (toks.n == 0 || toks.n > INT32_MAX / 2)
    return ry__err(RY_ERR_PARSE, "tokenizer: tokenizer.ggml.tokens has %llu entries", (unsigned long long)toks.n);
  bool have_scores = ry_gguf_find(g, "tokenizer.ggml.scores") != NULL;
  bool have_types = ry_gguf_find(g, "tokenizer.ggml.token_type") != NULL;
  bool have_merges = ry_gguf_find(g, "tokenizer.ggml.merges") != NULL;
  if (have_scores && (s = ry_gguf_get_arr(g, "tokenizer.ggml.scores", RY_GGUF_TYPE_COUNT, &scores)))
    return ry__err_prefix(s, "tokenizer");
  if (have_scores && scores.elem != RY_GGUF_F32 && scores.elem != RY_GGUF_I32) /* llama.cpp takes both */
    return ry__err(RY_ERR_DTYPE, "tokenizer: tokenizer.ggml.scores is an array of %s, not f32 or i32",
                   ry_gguf_type_name(scores.elem));
  if (have_types && (s = ry_gguf_get_arr(g, "tokenizer.ggml.token_type", RY_GGUF_I32, &types))) return ry__err_prefix(s, "tokenizer");
  if (have_merges && (s = ry_gguf_get_arr(g, "tokenizer.ggml.merges", RY_GGUF_STRING, &merges))) return ry__err_prefix(s, "tokenizer");
  if (have_scores && scores.n < toks.n)
    return ry__err(RY_ERR_PARSE, "tokenizer: tokenizer.ggml.scores has %llu entries for %llu tokens",
                   (unsigned long long)scores.n, (unsigned long long)toks.n);
  if (have_types && types.n < toks.n)
    return ry__err(RY_ERR_PARSE, "tokenizer: tokenizer.ggml.token_type has %llu entries for %llu tokens",
                   (unsigned long long)types.n, (unsigned long long)toks.n);
  if (have_merges && merges.n > INT32_MAX / 4)
    return ry__err(RY_ERR_PARSE, "tokenizer: tokenizer.ggml.merges has %llu entries", (unsigned long long)merges.n);
  if (c.model == RY_TOK_BPE && !have_merges) return ry__err(RY_ERR_PARSE, "tokenizer: gpt2 tokenizer without tokenizer.ggml.merges");

  int32_t n = (int32_t)toks.n;
  int64_t nm = have_merges ? (int64_t)merges.n : 0;
  const char **tv = ry__calloc((size_t)n, sizeof *tv);
  size_t *tl = ry__calloc((size_t)n, sizeof *tl);
  float *sc = have_scores ? ry__calloc((size_t)n, sizeof *sc) : NULL;
  int32_t *ty = have_types ? ry__calloc((size_t)n, sizeof *ty) : NULL;
  char **mv = nm ? ry__calloc((size_t)nm, sizeof *mv) : NULL;
  char *pre = NULL, *tmpl = NULL;
  if (!tv || !tl || (have_scores && !sc) || (have_types && !ty) || (nm && !mv)) {
    s = ry__oom();
    goto done;
  }
  for (int32_t i = 0; i < n && !s; i++) s = ry_gguf_arr_str(&toks, (uint64_t)i, &tv[i], &tl[i]);
  for (int32_t i = 0; i < n && !s; i++) {
    if (sc && scores.elem == RY_GGUF_F32) memcpy(&sc[i], (const char *)scores.data + 4 * (size_t)i, 4);
    if (sc && scores.elem == RY_GGUF_I32) {
      int32_t v;
      memcpy(&v, (const char *)scores.data + 4 * (size_t)i, 4);
      sc[i] = (float)v;
    }
    if (ty) memcpy(&ty[i], (const char *)types.data + 4 * (size_t)i, 4);
    /* a type outside 1..6 is llama.cpp's UNDEFINED: treat it as unused */
    if (ty && (ty[i] < RY_TOKEN_NORMAL || ty[i] > RY_TOKEN_BYTE)) ty[i] = RY_TOKEN_UNUSED;
  }
  for (int64_t i = 0; i < nm && !s; i++) {
    const char *m;
    size_t ml;
    s = ry_gguf_arr_str(&merges, (uint64_t)i, &m, &ml);
    if (!s && !(mv[i] = tok_hand_out(m, ml))) s = ry__oom();
  }
  if (s) goto done;
  /* empty tokens: llama.cpp names them "[EMPTY_<id>]" */
  char (*empty)[24] = NULL;
  int32_t n_empty = 0;
  for (int32_t i = 0; i < n; i++) n_empty += tl[i] == 0;
  if (n_empty) {
    empty = ry__calloc((size_t)n_empty, sizeof *empty);
    if (!empty) {
      s = ry__oom();
      goto done;
    }
    for (int32_t i = 0, k = 0; i < n; i++)
      if (!tl[i]) {
        tl[i] = (size_t)snprintf(empty[k], sizeof empty[k], "[EMPTY_%d]", (int)i);
        tv[i] = empty[k++];
      }
  }
  const char *str;
  size_t len;
  if (ry_gguf_find(g, "tokenizer.ggml.pre")) {
    if (!(s = ry_gguf_get_str(g, "tokenizer.ggml.pre", &str, &len)) && !(pre = tok_hand_out(str, len))) s = ry__oom();
  }
  if (!s && ry_gguf_find(g, "tokenizer.chat_template")) {
    if (!(s = ry_gguf_get_str(g, "tokenizer.chat_template", &str, &len)) && !(tmpl = tok_hand_out(str, len)))
      s = ry__oom();
  }
  if (!s) s = opt_int(g, "tokenizer.ggml.bos_token_id", &c.bos_id);
  if (!s) s = opt_int(g, "tokenizer.ggml.eos_token_id", &c.eos_id);
  if (!s) s = opt_int(g, "tokenizer.ggml.unknown_token_id", &c.unk_id);
  if (!s) s = opt_int(g, "tokenizer.ggml.padding_token_id", &c.pad_id);
  if (!s) s = opt_bool(g, "tokenizer.ggml.add_bos_token", &c.add_bos);
  if (!s) s = opt_bool(g, "tokenizer.ggml.add_eos_token", &c.add_eos);
  if (!s) s = opt_bool(g, "tokenizer.ggml.add_space_prefix", &c.add_space_prefix);
  if (!s) {
    /* llama.cpp ignores special ids outside the vocabulary */
    int32_t *ids[4] = {&c.bos_id, &c.eos_id, &c.unk_id, &c.pad_id};
    for (int i = 0; i < 4; i++)
      if (*ids[i] < -1 || *ids[i] >= n) *ids[i] = -1;
    c.n_tokens = n;
    c.tokens = tv;
    c.token_lens = tl;
    c.scores = sc;
    c.types = ty;
    c.n_merges = nm;
    c.merges = (const char *const *)mv;
    c.pre = pre;
    c.chat_template = tmpl;
    s = ry_tokenizer_new(&c, out);
  }
  ry__free(empty, (size_t)n_empty * sizeof *empty);
done:
  for (int64_t i = 0; mv && i < nm; i++) ry_free(mv[i]);
  ry__free(mv, (size_t)nm * sizeof *mv);
  ry__free(tv, (size_t)n * sizeof *tv);
  ry__free(tl, (size_t)n * sizeof *tl);
  ry__free(sc, (size_t)n * sizeof *sc);
  ry__free(ty, (size_t)n * sizeof *ty);
  ry_free(pre);
  ry_free(tmpl);
  return s;
}

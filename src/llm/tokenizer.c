/* Tokenizers: the vocabulary, special tokens, encode (special-token
 * partition, then the model's encoder on each stretch of plain text) and
 * decode, following llama.cpp's llama-vocab.cpp for the same vocabulary. */
#include <stdlib.h>
#include <string.h>

#include "llm/tok_internal.h"

/* ---- small helpers ---- */

bool tok_buf_put(tok_buf *b, const void *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = ry__realloc(b->p, b->cap, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return true;
}

void tok_buf_free(tok_buf *b) {
  ry__free(b->p, b->cap);
  memset(b, 0, sizeof *b);
}

size_t tok_utf8_valid(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}

int32_t tok_find(const ry_tokenizer *t, const char *s, size_t n) {
  for (uint32_t h = (uint32_t)tok_hash(s, n) & t->hmask;; h = (h + 1) & t->hmask) {
    int32_t id = t->htab[h];
    if (id < 0) return -1;
    if (t->slen[id] == n && memcmp(tok_sym_text(t, id), s, n) == 0) return id;
  }
}

/* Put symbol `id` (its text already stored) into the hash; a later token
 * with the same text replaces an earlier one, as llama.cpp's token_to_id. */
static void tok_hash_put(ry_tokenizer *t, int32_t id) {
  const char *s = tok_sym_text(t, id);
  size_t n = t->slen[id];
  for (uint32_t h = (uint32_t)tok_hash(s, n) & t->hmask;; h = (h + 1) & t->hmask) {
    int32_t o = t->htab[h];
    if (o < 0 || (t->slen[o] == n && memcmp(tok_sym_text(t, o), s, n) == 0)) {
      t->htab[h] = id;
      return;
    }
  }
}

static bool tok_add_sym(ry_tokenizer *t, const char *s, size_t n) {
  if (t->n_syms >= t->sym_cap || t->text.n + n >= UINT32_MAX) return false;
  int32_t id = t->n_syms++;
  t->soff[id] = (uint32_t)t->text.n;
  t->slen[id] = (uint32_t)n;
  if (!tok_buf_put(&t->text, s, n)) return false;
  tok_hash_put(t, id);
  return true;
}

int32_t tok_intern(ry_tokenizer *t, const char *s, size_t n) {
  int32_t id = tok_find(t, s, n);
  if (id >= 0) return id;
  return tok_add_sym(t, s, n) ? t->n_syms - 1 : -1;
}


/* A copy of n bytes that ry_free releases (it carries its size in front, as
 * ry__strdup's strings), NUL-terminated; NULL on OOM. */
void *tok_hand_out(const void *p, size_t n) {
  size_t *h = ry__malloc(sizeof(size_t) + n + 1);
  if (!h) return NULL;
  h[0] = sizeof(size_t) + n + 1;
  char *d = (char *)(h + 1);
  if (n) memcpy(d, p, n);
  d[n] = 0;
  return d;
}

/* ---- construction ---- */

ry_tokenizer_config ry_tokenizer_config_init(ry_tok_model model) {
  ry_tokenizer_config c;
  memset(&c, 0, sizeof c);
  c.model = model;
  c.bos_id = c.eos_id = c.unk_id = c.pad_id = -1;
  if (model == RY_TOK_SPM) c.bos_id = 1, c.eos_id = 2, c.unk_id = 0;
  c.add_bos = c.add_eos = c.add_space_prefix = -1;
  return c;
}

void ry_tokenizer_free(ry_tokenizer *t) {
  if (!t) return;
  tok_bpe_free(t);
  tok_buf_free(&t->text);
  tok_buf_free(&t->pieces);
  ry__free(t->soff, (size_t)t->sym_cap * sizeof *t->soff);
  ry__free(t->slen, (size_t)t->sym_cap * sizeof *t->slen);
  ry__free(t->scores, (size_t)t->n_tokens * sizeof *t->scores);
  ry__free(t->types, (size_t)t->n_tokens);
  ry__free(t->poff, (size_t)t->n_tokens * sizeof *t->poff);
  ry__free(t->plen, (size_t)t->n_tokens * sizeof *t->plen);
  ry__free(t->htab, ((size_t)t->hmask + 1) * sizeof *t->htab);
  ry__free(t->special, (size_t)t->n_special * sizeof *t->special);
  ry__strfree(t->chat_template);
  ry__free(t, sizeof *t);
}

/* The bytes token `id` decodes to (without RY_TOK_RENDER_SPECIAL's text of
 * control tokens, which comes from the raw text). */
static bool tok_make_piece(ry_tokenizer *t, int32_t id) {
  const char *s = tok_sym_text(t, id);
  size_t n = t->slen[id];
  t->poff[id] = (uint32_t)t->pieces.n;
  int type = t->types[id];
  bool ok = true;
  if (type == RY_TOKEN_USER_DEFINED) {
    ok = tok_buf_put(&t->pieces, s, n);
  } else if (type == RY_TOKEN_NORMAL && t->model == RY_TOK_BPE) {
    /* GPT-2 characters back to bytes; a character outside the map is
     * written as llama.cpp does: "[UNK_BYTE_0x..]" with its UTF-8 bytes */
    for (size_t i = 0; i < n && ok;) {
      size_t used = 0;
      int b = tok_utf8_to_byte(s + i, n - i, &used);
      if (b >= 0) {
        char c = (char)b;
        ok = tok_buf_put(&t->pieces, &c, 1);
      } else {
        char tmp[32];
        int k = snprintf(tmp, sizeof tmp, "[UNK_BYTE_0x");
        for (size_t j = 0; j < used; j++) k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%02x", (uint8_t)s[i + j]);
        k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%.*s]", (int)used, s + i);
        ok = tok_buf_put(&t->pieces, tmp, (size_t)k);
      }
      i += used;
    }
  } else if (type == RY_TOKEN_NORMAL) { /* SPM: U+2581 is a space */
    for (size_t i = 0; i < n && ok;) {
      if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
        ok = tok_buf_put(&t->pieces, " ", 1);
        i += 3;
      } else {
        ok = tok_buf_put(&t->pieces, s + i, 1);
        i++;
      }
    }
  } else if (type == RY_TOKEN_BYTE && t->model == RY_TOK_SPM) {
    /* "<0xNN>" */
    unsigned v = 0;
    if (n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
      for (int i = 3; i < 5; i++) {
        char c = s[i];
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0);
      }
      char c = (char)v;
      ok = tok_buf_put(&t->pieces, &c, 1);
    }
  }
  /* CONTROL, UNKNOWN, UNUSED (and BPE byte tokens, as llama.cpp): nothing */
  t->plen[id] = (uint32_t)(t->pieces.n - t->poff[id]);
  return ok;
}

static int cmp_special(const void *a, const void *b, const ry_tokenizer *t) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (t->slen[x] != t->slen[y]) return t->slen[x] > t->slen[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* insertion sort (the special list is short and qsort has no context) */
static void sort_special(ry_tokenizer *t) {
  for (int32_t i = 1; i < t->n_special; i++) {
    int32_t v = t->special[i], j = i;
    while (j > 0 && cmp_special(&t->special[j - 1], &v, t) > 0) {
      t->special[j] = t->special[j - 1];
      j--;
    }
    t->special[j] = v;
  }
}

static ry_status tok_bad(const char *fmt, const char *what, long long v) {
  return ry__err(RY_ERR_INVALID_ARGUMENT, fmt, what, v);
}

ry_status ry_tokenizer_new(const ry_tokenizer_config *cfg, ry_tokenizer **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: NULL output");
  *out = NULL;
  if (!cfg) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: NULL config");
  if (cfg->model != RY_TOK_BPE && cfg->model != RY_TOK_SPM)
    return ry__err(RY_ERR_UNSUPPORTED, "tokenizer: unknown model kind %d (RY_TOK_BPE or RY_TOK_SPM)", (int)cfg->model);
  if (cfg->n_tokens <= 0 || !cfg->tokens)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: no tokens (n_tokens %d)", (int)cfg->n_tokens);
  if (cfg->n_merges < 0 || (cfg->n_merges > 0 && !cfg->merges) || cfg->n_merges > INT32_MAX / 4)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: bad merge list (n_merges %lld)", (long long)cfg->n_merges);
  const int32_t ids[4] = {cfg->bos_id, cfg->eos_id, cfg->unk_id, cfg->pad_id};
  static const char *id_names[4] = {"bos", "eos", "unknown", "padding"};
  for (int i = 0; i < 4; i++)
    if (ids[i] < -1 || ids[i] >= cfg->n_tokens)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: %s token id %d out of range [0, %d)", id_names[i], (int)ids[i],
                     (int)cfg->n_tokens);
  for (int32_t i = 0; i < cfg->n_tokens; i++) {
    if (!cfg->tokens[i]) return tok_bad("tokenizer: %s %lld is NULL", "token", i);
    size_t n = cfg->token_lens ? cfg->token_lens[i] : strlen(cfg->tokens[i]);
    if (n == 0) return tok_bad("tokenizer: %s %lld is empty", "token", i);
    if (cfg->types && (cfg->types[i] < RY_TOKEN_NORMAL || cfg->types[i] > RY_TOKEN_BYTE))
      return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: token %d has unknown type %d", (int)i, (int)cfg->types[i]);
  }

  ry_tokenizer *t = ry__calloc(1, sizeof *t);
  if (!t) return ry__oom();
  t->model = cfg->model;
  t->n_tokens = cfg->n_tokens;
  uint64_t max_syms = (uint64_t)cfg->n_tokens + 3 * (uint64_t)cfg->n_merges;
  t->sym_cap = (int32_t)max_syms;
  t->hmask = pow2_at_least_u64(2 * max_syms) - 1;
  t->soff = ry__malloc((size_t)t->sym_cap * sizeof *t->soff);
  t->slen = ry__malloc((size_t)t->sym_cap * sizeof *t->slen);
  t->scores = ry__calloc((size_t)t->n_tokens, sizeof *t->scores);
  t->types = ry__malloc((size_t)t->n_tokens);
  t->poff = ry__malloc((size_t)t->n_tokens * sizeof *t->poff);
  t->plen = ry__malloc((size_t)t->n_tokens * sizeof *t->plen);
  t->htab = ry__malloc(((size_t)t->hmask + 1) * sizeof *t->htab);
  if (!t->soff || !t->slen || !t->scores || !t->types || !t->poff || !t->plen || !t->htab) goto oom;
  memset(t->htab, 0xff, ((size_t)t->hmask + 1) * sizeof *t->htab);
  for (int32_t i = 0; i < t->n_tokens; i++) {
    size_t n = cfg->token_lens ? cfg->token_lens[i] : strlen(cfg->tokens[i]);
    if (!tok_add_sym(t, cfg->tokens[i], n)) goto oom;
    t->types[i] = (uint8_t)(cfg->types ? cfg->types[i] : RY_TOKEN_NORMAL);
    if (cfg->scores) t->scores[i] = cfg->scores[i];
    if (t->types[i] == RY_TOKEN_CONTROL || t->types[i] == RY_TOKEN_USER_DEFINED || t->types[i] == RY_TOKEN_UNKNOWN)
      t->n_special++;
  }
  t->bos = cfg->bos_id, t->eos = cfg->eos_id, t->unk = cfg->unk_id, t->pad = cfg->pad_id;
  if (t->n_special) {
    t->special = ry__malloc((size_t)t->n_special * sizeof *t->special);
    if (!t->special) goto oom;
    int32_t k = 0;
    for (int32_t i = 0; i < t->n_tokens; i++)
      if (t->types[i] == RY_TOKEN_CONTROL || t->types[i] == RY_TOKEN_USER_DEFINED || t->types[i] == RY_TOKEN_UNKNOWN)
        t->special[k++] = i;
    sort_special(t);
  }
  for (int i = 0; i < 4; i++) t->eog[i] = -1;
  {
    static const char *eog_names[] = {"<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>"};
    int k = 0;
    if (t->eos >= 0) t->eog[k++] = t->eos;
    for (int i = 0; i < 4 && k < 4; i++) {
      int32_t id = tok_find(t, eog_names[i], strlen(eog_names[i]));
      if (id >= 0 && id != t->eos) t->eog[k++] = id;
    }
  }

  ry_status s = NULL;
  if (t->model == RY_TOK_BPE) {
    s = tok_bpe_init(t, cfg->pre, cfg->n_merges, cfg->merges);
    t->add_bos = cfg->add_bos >= 0 ? cfg->add_bos != 0 : t->pre == TOK_PRE_LLAMA3;
    t->add_space_prefix = cfg->add_space_prefix > 0;
  } else {
    t->add_bos = cfg->add_bos != 0; /* -1: on */
    t->add_space_prefix = cfg->add_space_prefix != 0;
  }
  t->add_eos = cfg->add_eos > 0;
  if (s) {
    ry_tokenizer_free(t);
    return s;
  }
  for (int32_t i = 0; i < t->n_tokens; i++)
    if (!tok_make_piece(t, i)) goto oom;
  if (cfg->chat_template && !(t->chat_template = ry__strdup(cfg->chat_template))) goto oom;
  *out = t;
  return NULL;
oom:
  ry_tokenizer_free(t);
  return ry__oom();
}

/* ---- lookups ---- */

int32_t ry_tokenizer_n_tokens(const ry_tokenizer *t) { return t ? t->n_tokens : 0; }
ry_tok_model ry_tokenizer_model(const ry_tokenizer *t) { return t ? t->model : (ry_tok_model)0; }
int32_t ry_tokenizer_bos(const ry_tokenizer *t) { return t ? t->bos : -1; }
int32_t ry_tokenizer_eos(const ry_tokenizer *t) { return t ? t->eos : -1; }
const char *ry_tokenizer_chat_template(const ry_tokenizer *t) { return t ? t->chat_template : NULL; }

int ry_tokenizer_is_eog(const ry_tokenizer *t, int32_t id) {
  if (!t || id < 0) return 0;
  for (int i = 0; i < 4; i++)
    if (t->eog[i] == id) return 1;
  return 0;
}

ry_status ry_token_to_id(const ry_tokenizer *t, const char *text, size_t len, int32_t *id) {
  if (!t || !text || !id) return ry__err(RY_ERR_INVALID_ARGUMENT, "token_to_id: NULL argument");
  int32_t i = tok_find(t, text, len);
  if (i < 0 || i >= t->n_tokens)
    return ry__err(RY_ERR_NOT_FOUND, "token_to_id: no token \"%.*s\" in the vocabulary", (int)(len > 200 ? 200 : len), text);
  *id = i;
  return NULL;
}

const char *ry_token_text(const ry_tokenizer *t, int32_t id, size_t *len) {
  if (!t || id < 0 || id >= t->n_tokens) return NULL;
  if (len) *len = t->slen[id];
  return tok_sym_text(t, id);
}

ry_token_type ry_token_type_of(const ry_tokenizer *t, int32_t id) {
  if (!t || id < 0 || id >= t->n_tokens) return (ry_token_type)0;
  return (ry_token_type)t->types[id];
}

/* ---- encode ---- */

/* Encode plain text (no special tokens matched in it). `first` says whether
 * it follows the start of the text or a special token (SPM's space prefix). */
static ry_status encode_plain(const ry_tokenizer *t, const char *s, size_t n, bool after_special, ry_ivec *out) {
  if (t->model == RY_TOK_BPE) return tok_bpe_encode(t, s, n, out);
  /* SPM: a space in front (after the start or a special token), spaces as U+2581 */
  tok_buf b = {0};
  bool ok = true;
  if (t->add_space_prefix && after_special) ok = tok_buf_put(&b, "\xE2\x96\x81", 3);
  for (size_t i = 0; i < n && ok; i++) ok = s[i] == ' ' ? tok_buf_put(&b, "\xE2\x96\x81", 3) : tok_buf_put(&b, s + i, 1);
  ry_status st = ok ? tok_spm_encode(t, b.p ? b.p : "", b.n, out) : ry__oom();
  tok_buf_free(&b);
  return st;
}

/* The first occurrence of special token `id` in s[0..n), or NULL. */
static const char *find_special(const ry_tokenizer *t, int32_t id, const char *s, size_t n) {
  size_t m = t->slen[id];
  const char *p = tok_sym_text(t, id);
  if (m > n) return NULL;
  for (const char *q = s; q + m <= s + n;) {
    q = memchr(q, p[0], (size_t)(s + n - q) - m + 1);
    if (!q) return NULL;
    if (memcmp(q, p, m) == 0) return q;
    q++;
  }
  return NULL;
}

/* Encode s[0..n) with the special tokens from index `k` of the special list
 * on: split at the first special token that occurs (the longest first, as
 * llama.cpp's partition gives the same fragments), recursing on the pieces. */
typedef struct frag {
  size_t off, len;
  int32_t id; /* -1 for text */
} frag;

static ry_status partition(const ry_tokenizer *t, const char *text, size_t n, bool parse_special, frag **out, size_t *nout,
                           size_t *ncap) {
  size_t cap = 8, cnt = 1;
  frag *f = ry__malloc(cap * sizeof *f);
  if (!f) return ry__oom();
  f[0] = (frag){0, n, -1};
  for (int32_t k = 0; k < t->n_special; k++) {
    int32_t id = t->special[k];
    int type = t->types[id];
    if (!parse_special && (type == RY_TOKEN_CONTROL || type == RY_TOKEN_UNKNOWN)) continue;
    for (size_t i = 0; i < cnt; i++) {
      if (f[i].id >= 0) continue;
      const char *p = find_special(t, id, text + f[i].off, f[i].len);
      if (!p) continue;
      /* split f[i] into before, the token, after (after is looked at next) */
      if (cnt + 2 > cap) {
        frag *nf = ry__realloc(f, cap * sizeof *f, 2 * cap * sizeof *f);
        if (!nf) {
          ry__free(f, cap * sizeof *f);
          return ry__oom();
        }
        f = nf;
        cap *= 2;
      }
      size_t at = (size_t)(p - text), m = t->slen[id];
      frag before = {f[i].off, at - f[i].off, -1}, tok = {at, m, id},
           after = {at + m, f[i].off + f[i].len - at - m, -1};
      frag parts[3];
      size_t np = 0;
      if (before.len) parts[np++] = before;
      parts[np++] = tok;
      if (after.len) parts[np++] = after;
      memmove(f + i + np, f + i + 1, (cnt - i - 1) * sizeof *f);
      memcpy(f + i, parts, np * sizeof *f);
      cnt += np - 1;
      i += before.len ? 1 : 0; /* continue with `after` (the loop's i++ skips the token) */
    }
  }
  *out = f;
  *nout = cnt;
  *ncap = cap;
  return NULL;
}

ry_status ry_tokenize(const ry_tokenizer *t, const char *text, long len, int flags, int32_t **ids, int64_t *n) {
  if (!ids || !n) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenize: NULL output");
  *ids = NULL;
  *n = 0;
  if (!t) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenize: NULL tokenizer");
  if (!text && len != 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenize: NULL text");
  if (flags & ~(RY_TOK_ADD_SPECIAL | RY_TOK_PARSE_SPECIAL))
    return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenize: unknown flags 0x%x", (unsigned)flags);
  size_t size = len < 0 ? strlen(text) : (size_t)len;
  for (size_t i = 0; i < size;) {
    size_t k = tok_utf8_valid((const uint8_t *)text + i, size - i);
    if (!k)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenize: invalid UTF-8 at byte %zu (0x%02x)", i, (unsigned)(uint8_t)text[i]);
    i += k;
  }
  ry_ivec out = {0};
  frag *f = NULL;
  size_t nf = 0, fcap = 0;
  ry_status s = NULL;
  bool add = (flags & RY_TOK_ADD_SPECIAL) != 0;
  if (add && t->add_bos && t->bos >= 0 && !ry__ivec_push(&out, t->bos)) s = ry__oom();
  if (!s && size) s = partition(t, text, size, (flags & RY_TOK_PARSE_SPECIAL) != 0, &f, &nf, &fcap);
  bool after_special = true;
  for (size_t i = 0; !s && i < nf; i++) {
    if (f[i].id >= 0) {
      if (!ry__ivec_push(&out, f[i].id)) s = ry__oom();
      after_special = true;
    } else {
      s = encode_plain(t, text + f[i].off, f[i].len, after_special, &out);
      after_special = false;
    }
  }
  if (!s && add && t->add_eos && t->eos >= 0 && !ry__ivec_push(&out, t->eos)) s = ry__oom();
  ry__free(f, fcap * sizeof *f);
  if (!s) {
    *ids = tok_hand_out(out.v, (size_t)out.n * sizeof(int32_t));
    if (!*ids) s = ry__oom();
    else *n = out.n;
  }
  ry__ivec_free(&out);
  return s;
}

/* ---- decode ---- */

ry_status ry_token_piece(const ry_tokenizer *t, int32_t id, int flags, const char **piece, size_t *len) {
  if (!t || !piece || !len) return ry__err(RY_ERR_INVALID_ARGUMENT, "token_piece: NULL argument");
  *piece = "";
  *len = 0;
  if (id < 0 || id >= t->n_tokens)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "decode: token id %d out of range [0, %d)", (int)id, (int)t->n_tokens);
  int type = t->types[id];
  if ((flags & RY_TOK_RENDER_SPECIAL) && (type == RY_TOKEN_CONTROL || type == RY_TOKEN_UNKNOWN)) {
    *piece = tok_sym_text(t, id);
    *len = t->slen[id];
  } else {
    *piece = t->pieces.p + t->poff[id];
    *len = t->plen[id];
  }
  return NULL;
}

ry_status ry_detokenize(const ry_tokenizer *t, const int32_t *ids, int64_t n, int flags, char **out, size_t *len) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "detokenize: NULL output");
  *out = NULL;
  if (len) *len = 0;
  if (!t || (!ids && n > 0) || n < 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "detokenize: NULL tokenizer or ids");
  tok_buf b = {0};
  bool strip = t->add_space_prefix; /* the space encode put in front */
  for (int64_t i = 0; i < n; i++) {
    const char *p;
    size_t m;
    ry_status s = ry_token_piece(t, ids[i], flags, &p, &m);
    if (s) {
      tok_buf_free(&b);
      return ry__err_prefix(s, "detokenize: id %lld", (long long)i);
    }
    if (strip && t->types[ids[i]] != RY_TOKEN_CONTROL) { /* the first token after BOS */
      if (m && p[0] == ' ') p++, m--;
      strip = false;
    }
    if (!tok_buf_put(&b, p, m)) {
      tok_buf_free(&b);
      return ry__oom();
    }
  }
  *out = tok_hand_out(b.p, b.n);
  size_t total = b.n;
  tok_buf_free(&b);
  if (!*out) return ry__oom();
  if (len) *len = total;
  return NULL;
}

struct ry_detok_stream {
  const ry_tokenizer *t;
  int flags;
  bool first;     /* nothing written yet (SPM's space prefix) */
  char held[4];   /* the start of an incomplete UTF-8 character */
  size_t n_held;
  tok_buf out;
};

ry_status ry_detok_stream_new(const ry_tokenizer *t, int flags, ry_detok_stream **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "detok_stream: NULL output");
  *out = NULL;
  if (!t) return ry__err(RY_ERR_INVALID_ARGUMENT, "detok_stream: NULL tokenizer");
  ry_detok_stream *s = ry__calloc(1, sizeof *s);
  if (!s) return ry__oom();
  s->t = t;
  s->flags = flags;
  s->first = true;
  *out = s;
  return NULL;
}

void ry_detok_stream_free(ry_detok_stream *s) {
  if (!s) return;
  tok_buf_free(&s->out);
  ry__free(s, sizeof *s);
}

/* Could these n bytes start a valid UTF-8 character that is not complete? */
static bool utf8_incomplete_prefix(const uint8_t *p, size_t n) {
  size_t need = tok_utf8_len(p[0]);
  if (need <= n || p[0] < 0xC2 || p[0] > 0xF4) return false;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return false;
  /* the second byte's range for E0, ED, F0, F4 */
  if (n >= 2) {
    if (p[0] == 0xE0 && p[1] < 0xA0) return false;
    if (p[0] == 0xED && p[1] > 0x9F) return false;
    if (p[0] == 0xF0 && p[1] < 0x90) return false;
    if (p[0] == 0xF4 && p[1] > 0x8F) return false;
  }
  return true;
}

static const char k_replacement[] = "\xEF\xBF\xBD";

/* Append bytes to the output, replacing what can never be UTF-8 by U+FFFD
 * and holding back an incomplete character at the end. */
static bool stream_feed(ry_detok_stream *s, const char *p, size_t m) {
  for (size_t i = 0; i < m; i++) {
    s->held[s->n_held++] = p[i];
    const uint8_t *h = (const uint8_t *)s->held;
    for (;;) {
      if (!s->n_held) break;
      size_t k = tok_utf8_valid(h, s->n_held);
      if (k) { /* a complete character: k == n_held, as bytes arrive one at a time */
        if (!tok_buf_put(&s->out, s->held, k)) return false;
        memmove(s->held, s->held + k, s->n_held - k);
        s->n_held -= k;
        continue;
      }
      if (utf8_incomplete_prefix(h, s->n_held)) break;
      /* bad: the first byte can start nothing; emit U+FFFD and retry the rest */
      if (!tok_buf_put(&s->out, k_replacement, 3)) return false;
      memmove(s->held, s->held + 1, --s->n_held);
    }
  }
  return true;
}

ry_status ry_detok_stream_push(ry_detok_stream *s, int32_t id, const char **text, size_t *len) {
  if (!s || !text || !len) return ry__err(RY_ERR_INVALID_ARGUMENT, "detok_stream_push: NULL argument");
  *text = "";
  *len = 0;
  const char *p;
  size_t m;
  ry_status st = ry_token_piece(s->t, id, s->flags, &p, &m);
  if (st) return st;
  if (s->first && s->t->types[id] != RY_TOKEN_CONTROL) {
    if (s->t->add_space_prefix && m && p[0] == ' ') p++, m--;
    s->first = false;
  }
  s->out.n = 0;
  if (!stream_feed(s, p, m)) return ry__oom();
  *text = s->out.p ? s->out.p : "";
  *len = s->out.n;
  return NULL;
}

ry_status ry_detok_stream_flush(ry_detok_stream *s, const char **text, size_t *len) {
  if (!s || !text || !len) return ry__err(RY_ERR_INVALID_ARGUMENT, "detok_stream_flush: NULL argument");
  s->out.n = 0;
  if (s->n_held && !tok_buf_put(&s->out, k_replacement, 3)) return ry__oom();
  s->n_held = 0;
  s->first = true;
  *text = s->out.p ? s->out.p : "";
  *len = s->out.n;
  return NULL;
}

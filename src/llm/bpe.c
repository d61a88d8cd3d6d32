/* Byte-level BPE (GGUF "gpt2"): the pre-tokenizer regexes of each family,
 * run with PCRE2 in UTF + UCP mode, GPT-2's byte-to-character map, and the
 * merges applied lowest rank first with a heap over a linked list of
 * symbols, as llama.cpp's llm_tokenizer_bpe_session. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "llm/tok_internal.h"

/* ---- GPT-2's byte map: printable bytes stand for themselves, the others
 * (0-32, 127-160, 173) for U+0100 upwards in byte order ---- */

static bool byte_is_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174); }

static uint32_t byte_to_cpt(uint8_t b) {
  if (byte_is_printable(b)) return b;
  uint32_t n = 0;
  for (int c = 0; c < b; c++)
    if (!byte_is_printable(c)) n++;
  return 256 + n;
}

int tok_byte_to_utf8(uint8_t b, char buf[2]) {
  static char map[256][2];
  static int len[256];
  static int ready;
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    /* idempotent, so a race between threads writes the same values */
    for (int i = 0; i < 256; i++) {
      uint32_t c = byte_to_cpt((uint8_t)i);
      if (c < 0x80) map[i][0] = (char)c, len[i] = 1;
      else map[i][0] = (char)(0xC0 | (c >> 6)), map[i][1] = (char)(0x80 | (c & 0x3F)), len[i] = 2;
    }
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
  }
  memcpy(buf, map[b], (size_t)len[b]);
  return len[b];
}

int tok_utf8_to_byte(const char *s, size_t n, size_t *used) {
  size_t k = tok_utf8_valid((const uint8_t *)s, n);
  if (!k) k = 1;
  *used = k;
  uint32_t c;
  const uint8_t *u = (const uint8_t *)s;
  if (k == 1) c = u[0];
  else if (k == 2) c = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
  else return -1;
  if (c < 256 && byte_is_printable((int)c)) return (int)c;
  if (c >= 256 && c < 256 + 68) {
    uint32_t n2 = 0;
    for (int b = 0; b < 256; b++)
      if (!byte_is_printable(b) && n2++ == c - 256) return b;
  }
  return -1;
}

/* ---- pre-tokenizer regexes ----
 * llama.cpp's patterns, with \s spelled out as the whitespace set of
 * llama.cpp's unicode tables (PCRE2's \s also takes U+180E). */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define S_ "[" WS "]"
#define NS_ "[^" WS "]"
/* GPT-2's pattern; llama.cpp's custom matcher for it also takes a lone
 * whitespace run (\s+), which the last alternative spells out */
static const char re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" S_ "+(?!" NS_ ")|" S_ "+";
#define RE_LLAMA3_LIKE(NUM)                                                                                  \
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" NUM "| ?[^" WS \
  "\\p{L}\\p{N}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS_ ")|" S_ "+"
static const char re_llama3[] = RE_LLAMA3_LIKE("\\p{N}{1,3}");
static const char re_qwen2[] = RE_LLAMA3_LIKE("\\p{N}");

static const struct {
  const char *names[6]; /* tokenizer.ggml.pre values */
  tok_pre pre;
  const char *re[TOK_MAX_RE];
  bool ignore_merges;
} k_pres[] = {
    {{"default"}, TOK_PRE_DEFAULT, {"[\\p{P}\\$\\+<=>\\^~\\|]+", re_gpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, false},
    {{"gpt2", "gpt-2", "phi-2", "mpt", "olmo"}, TOK_PRE_GPT2, {re_gpt2}, false},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"}, TOK_PRE_LLAMA3, {re_llama3}, true},
    {{"smollm", "starcoder", "refact", "command-r", "codeshell"}, TOK_PRE_SMOLLM, {"\\p{N}", re_gpt2}, false},
    {{"qwen2", "deepseek-r1-qwen", "stablelm2"}, TOK_PRE_QWEN2, {re_qwen2}, false},
};

void tok_bpe_free(ry_tokenizer *t) {
  for (int i = 0; i < t->n_re; i++) pcre2_code_free((pcre2_code *)t->re[i]);
  t->n_re = 0;
  ry__free(t->mkey, ((size_t)t->mmask + 1) * sizeof *t->mkey);
  ry__free(t->mrank, ((size_t)t->mmask + 1) * sizeof *t->mrank);
  ry__free(t->mres, ((size_t)t->mmask + 1) * sizeof *t->mres);
  t->mkey = NULL;
}

static ry_status compile_re(ry_tokenizer *t, const char *pattern, const char *pre) {
  int err = 0;
  PCRE2_SIZE at = 0;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return ry__err(RY_ERR_INTERNAL, "tokenizer: pre-tokenizer \"%s\": PCRE2 refuses its regex at %zu: %s", pre,
                   (size_t)at, (const char *)msg);
  }
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT the interpreter runs it */
  t->re[t->n_re++] = re;
  return NULL;
}

ry_status tok_bpe_init(ry_tokenizer *t, const char *pre, int64_t n_merges, const char *const *merges) {
  const char *name = pre ? pre : "default";
  int which = -1;
  for (size_t i = 0; i < sizeof k_pres / sizeof k_pres[0] && which < 0; i++)
    for (int j = 0; j < 6 && k_pres[i].names[j]; j++)
      if (strcmp(k_pres[i].names[j], name) == 0) which = (int)i;
  if (which < 0)
    return ry__err(RY_ERR_UNSUPPORTED,
                   "tokenizer: unknown pre-tokenizer \"%.100s\" (ryft has gpt2, llama3/llama-bpe, smollm, qwen2, "
                   "default and their aliases)",
                   name);
  t->pre = k_pres[which].pre;
  t->ignore_merges = k_pres[which].ignore_merges;
  for (int i = 0; i < TOK_MAX_RE && k_pres[which].re[i]; i++) {
    ry_status s = compile_re(t, k_pres[which].re[i], name);
    if (s) return s;
  }
  t->mmask = pow2_at_least_u64(2 * (uint64_t)n_merges + 1) - 1;
  size_t cap = (size_t)t->mmask + 1;
  t->mkey = ry__malloc(cap * sizeof *t->mkey);
  t->mrank = ry__malloc(cap * sizeof *t->mrank);
  t->mres = ry__malloc(cap * sizeof *t->mres);
  if (!t->mkey || !t->mrank || !t->mres) return ry__oom();
  memset(t->mkey, 0xff, cap * sizeof *t->mkey);
  for (int64_t r = 0; r < n_merges; r++) {
    const char *m = merges[r];
    if (!m) return ry__err(RY_ERR_INVALID_ARGUMENT, "tokenizer: merge %lld is NULL", (long long)r);
    /* "left right", split at the first space after the first byte; a merge
     * without one pairs two empty strings, as in llama.cpp: it never applies */
    size_t len = strlen(m);
    const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
    if (!sp) continue;
    size_t ln = (size_t)(sp - m), rn = len - ln - 1;
    int32_t l = tok_intern(t, m, ln), rr = tok_intern(t, sp + 1, rn);
    if (l < 0 || rr < 0) return ry__oom();
    /* the merged text: left and right side by side in the merge string, but
     * for the space; build it in a small buffer */
    tok_buf b = {0};
    if (!tok_buf_put(&b, m, ln) || !tok_buf_put(&b, sp + 1, rn)) {
      tok_buf_free(&b);
      return ry__oom();
    }
    int32_t res = tok_intern(t, b.p, b.n);
    tok_buf_free(&b);
    if (res < 0) return ry__oom();
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)rr;
    for (uint32_t h = (uint32_t)(key * 0x9E3779B97F4A7C15ull >> 32) & t->mmask;; h = (h + 1) & t->mmask) {
      if (t->mkey[h] == key) break; /* the first rank of a pair wins */
      if (t->mkey[h] == UINT64_MAX) {
        t->mkey[h] = key;
        t->mrank[h] = (int32_t)r;
        t->mres[h] = res;
        break;
      }
    }
  }
  return NULL;
}

/* rank and merged id of the pair (l, r), or rank -1 */
static int32_t merge_rank(const ry_tokenizer *t, int32_t l, int32_t r, int32_t *res) {
  if (l < 0 || r < 0) return -1;
  uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
  for (uint32_t h = (uint32_t)(key * 0x9E3779B97F4A7C15ull >> 32) & t->mmask;; h = (h + 1) & t->mmask) {
    if (t->mkey[h] == key) {
      *res = t->mres[h];
      return t->mrank[h];
    }
    if (t->mkey[h] == UINT64_MAX) return -1;
  }
}

/* ---- merging one pre-tokenized word ---- */

typedef struct sym {
  int32_t id;   /* symbol id of its text, -1 when no symbol has it */
  int32_t prev, next;
  uint32_t off, n; /* its bytes in the word; n 0 once merged away */
} sym;

typedef struct bigram {
  int32_t rank, left, right, res;
  int32_t lid, rid; /* the symbol ids when it was made (stale when they changed) */
} bigram;

typedef struct work {
  tok_buf word;
  sym *syms;
  size_t sym_cap;
  bigram *heap;
  size_t nheap, heap_cap;
} work;

static bool heap_less(const bigram *a, const bigram *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(work *w, bigram g) {
  if (w->nheap == w->heap_cap) {
    size_t cap = w->heap_cap ? 2 * w->heap_cap : 64;
    bigram *h = ry__realloc(w->heap, w->heap_cap * sizeof *h, cap * sizeof *h);
    if (!h) return false;
    w->heap = h;
    w->heap_cap = cap;
  }
  size_t i = w->nheap++;
  while (i > 0 && heap_less(&g, &w->heap[(i - 1) / 2])) {
    w->heap[i] = w->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  w->heap[i] = g;
  return true;
}

static bigram heap_pop(work *w) {
  bigram top = w->heap[0], last = w->heap[--w->nheap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= w->nheap) break;
    if (c + 1 < w->nheap && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
    if (!heap_less(&w->heap[c], &last)) break;
    w->heap[i] = w->heap[c];
    i = c;
  }
  if (w->nheap) w->heap[i] = last;
  return top;
}

static bool try_pair(const ry_tokenizer *t, work *w, int32_t l, int32_t r) {
  if (l < 0 || r < 0) return true;
  int32_t res;
  int32_t rank = merge_rank(t, w->syms[l].id, w->syms[r].id, &res);
  if (rank < 0) return true;
  return heap_push(w, (bigram){rank, l, r, res, w->syms[l].id, w->syms[r].id});
}

static ry_status bpe_word(const ry_tokenizer *t, work *w, ry_ivec *out) {
  const char *s = w->word.p;
  size_t n = w->word.n;
  int32_t whole = tok_find(t, s, n);
  if (t->ignore_merges && whole >= 0 && whole < t->n_tokens) return ry__ivec_push(out, whole) ? NULL : ry__oom();
  /* one symbol per character */
  if (n > w->sym_cap) {
    sym *ns = ry__realloc(w->syms, w->sym_cap * sizeof *ns, n * sizeof *ns);
    if (!ns) return ry__oom();
    w->syms = ns;
    w->sym_cap = n;
  }
  int32_t ns = 0;
  for (size_t i = 0; i < n;) {
    size_t k = tok_utf8_len((uint8_t)s[i]);
    if (k > n - i) k = n - i;
    w->syms[ns] = (sym){tok_find(t, s + i, k), ns - 1, -1, (uint32_t)i, (uint32_t)k};
    if (ns > 0) w->syms[ns - 1].next = ns;
    ns++;
    i += k;
  }
  w->nheap = 0;
  for (int32_t i = 0; i + 1 < ns; i++)
    if (!try_pair(t, w, i, i + 1)) return ry__oom();
  while (w->nheap) {
    bigram g = heap_pop(w);
    sym *l = &w->syms[g.left], *r = &w->syms[g.right];
    if (!l->n || !r->n || l->id != g.lid || r->id != g.rid || l->next != g.right) continue; /* stale */
    l->n += r->n;
    l->id = g.res;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0) w->syms[r->next].prev = g.left;
    if (!try_pair(t, w, l->prev, g.left) || !try_pair(t, w, g.left, l->next)) return ry__oom();
  }
  for (int32_t i = 0; i >= 0 && ns > 0; i = w->syms[i].next) {
    const sym *y = &w->syms[i];
    if (y->id >= 0 && y->id < t->n_tokens) {
      if (!ry__ivec_push(out, y->id)) return ry__oom();
      continue;
    }
    /* no token for it: each of its bytes that is a token by itself */
    for (uint32_t j = 0; j < y->n; j++) {
      int32_t b = tok_find(t, s + y->off + j, 1);
      if (b >= 0 && b < t->n_tokens && !ry__ivec_push(out, b)) return ry__oom();
    }
  }
  return NULL;
}

/* ---- pre-tokenizing: each regex splits every piece further; the text
 * between matches stays a piece of its own ---- */

typedef struct span {
  size_t off, len;
} span;

typedef struct spans {
  span *v;
  size_t n, cap;
} spans;

static bool spans_push(spans *a, size_t off, size_t len) {
  if (!len) return true;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 64;
    span *v = ry__realloc(a->v, a->cap * sizeof *v, cap * sizeof *v);
    if (!v) return false;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = (span){off, len};
  return true;
}

static void spans_free(spans *a) { ry__free(a->v, a->cap * sizeof *a->v); }

static ry_status split_re(const pcre2_code *re, pcre2_match_data *md, const char *text, const spans *in, spans *out) {
  out->n = 0;
  for (size_t i = 0; i < in->n; i++) {
    PCRE2_SPTR sub = (PCRE2_SPTR)(text + in->v[i].off);
    size_t len = in->v[i].len, pos = 0, last = 0;
    while (pos < len) {
      int rc = pcre2_match(re, sub, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return ry__err(RY_ERR_INTERNAL, "tokenize: PCRE2 match failed: %s", (const char *)msg);
      }
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
      size_t a = ov[0], b = ov[1];
      if (b == a) { /* an empty match: step over one character */
        pos = a + tok_utf8_len(sub[a]);
        continue;
      }
      if (!spans_push(out, in->v[i].off + last, a - last) || !spans_push(out, in->v[i].off + a, b - a)) return ry__oom();
      last = pos = b;
    }
    if (!spans_push(out, in->v[i].off + last, len - last)) return ry__oom();
  }
  return NULL;
}

ry_status tok_bpe_encode(const ry_tokenizer *t, const char *s, size_t n, ry_ivec *out) {
  spans a = {0}, b = {0};
  work w = {0};
  ry_status st = NULL;
  pcre2_match_data *md = pcre2_match_data_create(4, NULL);
  if (!md || !spans_push(&a, 0, n)) st = ry__oom();
  for (int r = 0; !st && r < t->n_re; r++) {
    st = split_re((const pcre2_code *)t->re[r], md, s, &a, &b);
    spans tmp = a;
    a = b;
    b = tmp;
  }
  for (size_t i = 0; !st && i < a.n; i++) {
    w.word.n = 0;
    for (size_t j = 0; j < a.v[i].len; j++) {
      char buf[2];
      int k = tok_byte_to_utf8((uint8_t)s[a.v[i].off + j], buf);
      if (!tok_buf_put(&w.word, buf, (size_t)k)) {
        st = ry__oom();
        break;
      }
    }
    if (!st) st = bpe_word(t, &w, out);
  }
  pcre2_match_data_free(md);
  spans_free(&a);
  spans_free(&b);
  tok_buf_free(&w.word);
  ry__free(w.syms, w.sym_cap * sizeof *w.syms);
  ry__free(w.heap, w.heap_cap * sizeof *w.heap);
  return st;
}

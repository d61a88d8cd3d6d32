/* SentencePiece-style encoding (GGUF "llama"), as llama.cpp's
 * llm_tokenizer_spm_session: start from one symbol per UTF-8 character,
 * repeatedly merge the adjacent pair whose joined text is the token with the
 * highest score (leftmost on ties), and write characters that no token
 * covers as their byte tokens <0xNN>. */
#include <string.h>

#include "llm/tok_internal.h"

typedef struct sym {
  int32_t prev, next;
  uint32_t off, n;
} sym;

typedef struct bigram {
  float score;
  int32_t left, right;
  uint32_t size; /* bytes of the joined text when it was made */
} bigram;

static bool better(const bigram *a, const bigram *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct heap {
  bigram *v;
  size_t n, cap;
} heap;

static bool push(heap *h, bigram g) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? 2 * h->cap : 64;
    bigram *v = ry__realloc(h->v, h->cap * sizeof *v, cap * sizeof *v);
    if (!v) return false;
    h->v = v;
    h->cap = cap;
  }
  size_t i = h->n++;
  while (i > 0 && better(&g, &h->v[(i - 1) / 2])) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = g;
  return true;
}

static bigram pop(heap *h) {
  bigram top = h->v[0], last = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && better(&h->v[c + 1], &h->v[c])) c++;
    if (!better(&h->v[c], &last)) break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n) h->v[i] = last;
  return top;
}

static bool try_pair(const ry_tokenizer *t, const char *s, const sym *y, heap *h, int32_t l, int32_t r) {
  if (l < 0 || r < 0) return true;
  uint32_t n = y[l].n + y[r].n;
  int32_t id = tok_find(t, s + y[l].off, n);
  if (id < 0 || id >= t->n_tokens) return true;
  return push(h, (bigram){t->scores[id], l, r, n});
}

/* the token of byte c: "<0xNN>", else the byte itself as a token, else unk */
static int32_t byte_token(const ry_tokenizer *t, uint8_t c) {
  static const char hex[] = "0123456789ABCDEF";
  char buf[6] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>'};
  int32_t id = tok_find(t, buf, 6);
  if (id < 0 || id >= t->n_tokens) id = tok_find(t, (const char *)&c, 1);
  if (id < 0 || id >= t->n_tokens) id = t->unk;
  return id;
}

ry_status tok_spm_encode(const ry_tokenizer *t, const char *s, size_t n, ry_ivec *out) {
  if (!n) return NULL;
  sym *y = ry__malloc(n * sizeof *y);
  heap h = {0};
  ry_status st = NULL;
  if (!y) return ry__oom();
  int32_t ny = 0;
  for (size_t i = 0; i < n;) {
    size_t k = tok_utf8_len((uint8_t)s[i]);
    if (k > n - i) k = n - i;
    y[ny] = (sym){ny - 1, -1, (uint32_t)i, (uint32_t)k};
    if (ny > 0) y[ny - 1].next = ny;
    ny++;
    i += k;
  }
  for (int32_t i = 0; i + 1 < ny && !st; i++)
    if (!try_pair(t, s, y, &h, i, i + 1)) st = ry__oom();
  while (!st && h.n) {
    bigram g = pop(&h);
    sym *l = &y[g.left], *r = &y[g.right];
    if (!l->n || !r->n || l->n + r->n != g.size) continue; /* stale */
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0) y[r->next].prev = g.left;
    if (!try_pair(t, s, y, &h, l->prev, g.left) || !try_pair(t, s, y, &h, g.left, l->next)) st = ry__oom();
  }
  for (int32_t i = 0; !st && i >= 0; i = y[i].next) {
    int32_t id = tok_find(t, s + y[i].off, y[i].n);
    if (id >= 0 && id < t->n_tokens) {
      if (!ry__ivec_push(out, id)) st = ry__oom();
      continue;
    }
    for (uint32_t j = 0; j < y[i].n && !st; j++) {
      int32_t b = byte_token(t, (uint8_t)s[y[i].off + j]);
      if (b < 0)
        st = ry__err(RY_ERR_INVALID_ARGUMENT,
                     "tokenize: byte 0x%02x has no token (no <0x%02X> byte token and no unknown token)",
                     (unsigned)(uint8_t)s[y[i].off + j], (unsigned)(uint8_t)s[y[i].off + j]);
      else if (!ry__ivec_push(out, b)) st = ry__oom();
    }
  }
  ry__free(y, n * sizeof *y);
  ry__free(h.v, h.cap * sizeof *h.v);
  return st;
}

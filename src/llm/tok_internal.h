/* Shared parts of the tokenizer (src/llm/tokenizer.c): the vocabulary with
 * its text hash, the merge table, and the encoders of the two model kinds
 * (bpe.c, spm.c). */
#ifndef RYFT_TOK_INTERNAL_H
#define RYFT_TOK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"
#include "ryft/llm.h"

/* a growable byte buffer */
typedef struct tok_buf {
  char *p;
  size_t n, cap;
} tok_buf;
bool tok_buf_put(tok_buf *b, const void *s, size_t n); /* false on OOM */
void tok_buf_free(tok_buf *b);
/* A NUL-terminated copy of n bytes that ry_free releases; NULL on OOM. */
void *tok_hand_out(const void *p, size_t n);

/* pre-tokenizer families (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*) */
typedef enum tok_pre { TOK_PRE_DEFAULT, TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_SMOLLM, TOK_PRE_QWEN2 } tok_pre;
#define TOK_MAX_RE 4

struct ry_tokenizer {
  ry_tok_model model;
  int32_t n_tokens;    /* vocabulary size */
  int32_t n_syms;      /* tokens, then BPE merge parts and results that are no token */
  int32_t sym_cap;
  tok_buf text;        /* every symbol's text */
  uint32_t *soff;      /* [sym_cap] offset of symbol i in text */
  uint32_t *slen;      /* [sym_cap] */
  float *scores;       /* [n_tokens] */
  uint8_t *types;      /* [n_tokens] ry_token_type */
  tok_buf pieces;      /* decoded bytes of every token */
  uint32_t *poff, *plen; /* [n_tokens] */
  int32_t *htab;       /* [hmask + 1] symbol text -> id, -1 empty */
  uint32_t hmask;
  uint64_t *mkey;      /* [mmask + 1] merge (left id << 32 | right id), UINT64_MAX empty */
  int32_t *mrank, *mres; /* its rank and the id of the merged text */
  uint32_t mmask;
  int32_t *special;    /* CONTROL, USER_DEFINED and UNKNOWN ids, longest text first */
  int32_t n_special;
  int32_t bos, eos, unk, pad;
  int32_t eog[4];      /* end-of-generation ids, -1 unused */
  bool add_bos, add_eos, add_space_prefix, ignore_merges;
  tok_pre pre;
  void *re[TOK_MAX_RE]; /* pcre2_code_8 *, applied in order */
  int n_re;
  char *chat_template;
};

static inline const char *tok_sym_text(const ry_tokenizer *t, int32_t id) { return t->text.p + t->soff[id]; }

/* the smallest power of two >= n, at least 16 (hash table sizes) */
static inline uint32_t pow2_at_least_u64(uint64_t n) {
  uint64_t c = 16;
  while (c < n) c *= 2;
  return (uint32_t)c;
}

/* FNV-1a */
static inline uint64_t tok_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}
/* The symbol id of a text, -1 when none. */
int32_t tok_find(const ry_tokenizer *t, const char *s, size_t n);
/* The id of a text, adding it as a non-token symbol when new (-1 on OOM). */
int32_t tok_intern(ry_tokenizer *t, const char *s, size_t n);
/* Length of the UTF-8 sequence that starts with byte c (1 for a stray byte),
 * as llama.cpp's unicode_len_utf8. */
static inline size_t tok_utf8_len(uint8_t c) {
  static const uint8_t lookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[c >> 4];
}
/* Bytes of the valid UTF-8 sequence at s (n bytes left), 0 when invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
size_t tok_utf8_valid(const uint8_t *s, size_t n);

/* bpe.c: the pre-tokenizer regexes and the merge table; encoding a stretch
 * of plain text (no special tokens in it) by appending ids to out. */
ry_status tok_bpe_init(ry_tokenizer *t, const char *pre, int64_t n_merges, const char *const *merges);
void tok_bpe_free(ry_tokenizer *t);
ry_status tok_bpe_encode(const ry_tokenizer *t, const char *s, size_t n, ry_ivec *out);
/* GPT-2's byte <-> printable character map: the UTF-8 of byte b's character
 * into buf (returns its length, 1 or 2); and back (-1: no such character). */
int tok_byte_to_utf8(uint8_t b, char buf[2]);
int tok_utf8_to_byte(const char *s, size_t n, size_t *used);

/* spm.c: encoding text that already has its U+2581 spaces. */
ry_status tok_spm_encode(const ry_tokenizer *t, const char *s, size_t n, ry_ivec *out);

#endif

/* parse_internal.h - the text IR parser's lexer, scratch stacks and state,
 * shared by parse.c (types, values, instructions) and parse_attr.c */
#ifndef RYFT_IR_PARSE_INTERNAL_H
#define RYFT_IR_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"

#define MAX_DEPTH 64                      /* nested regions */
#define MAX_NUMEL (INT64_C(1) << 53)      /* elements of any type (nonzero dims) */
#define MAX_ITEMS (INT32_C(1) << 26)      /* values per function, operands per op */
typedef enum tkind {
  T_EOF, T_IDENT, T_VALUE, T_FUNC, T_NUMBER, T_STRING, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK,
  T_LBRACE, T_RBRACE, T_COMMA, T_COLON, T_EQUAL, T_ARROW, T_BAD
} tkind;

typedef struct tok {
  tkind k;
  const char *s; /* token text (with the % or @ sigil; strings with quotes) */
  size_t n;
  long line, col;
  const char *bad; /* T_BAD: what is wrong */
} tok;

typedef struct lexer {
  const char *p, *end, *line_start;
  long line;
} lexer;
typedef struct entry {
  const char *k; /* NULL = empty */
  size_t n;
  int32_t val;    /* value id, graph index; 0 = reserved, not yet defined */
  int32_t region; /* region of the value */
} entry;

typedef struct map {
  entry *e;
  size_t cap, n;
} map;
#define STACK(T) struct { T *v; size_t n, cap; }
typedef STACK(ry_type) type_stack;
typedef STACK(int32_t) int_stack;
typedef STACK(tok) tok_stack;
typedef STACK(uint64_t) u64_stack;
#define RESERVE(st, k) ryg_stack_reserve((void **)&(st).v, &(st).cap, (st).n + (k), sizeof *(st).v)
#define STACK_FREE(st) (ry__free((st).v, (st).cap * sizeof *(st).v), (st).v = NULL, (st).n = (st).cap = 0)
typedef struct parser {
  lexer L;
  tok cur, nxt;
  const char *source;
  ry_status err;
  /* module */
  map funcs;           /* name -> index in graphs */
  ry_graph **graphs;   /* every function parsed so far (owned) */
  int32_t n_graphs, cap_graphs;
  /* current function */
  ry_graph *g;
  map vals;            /* name -> value id and region */
  int32_t scope[MAX_DEPTH + 1]; /* open regions, scope[depth] is current */
  int depth;
  /* scratch */
  type_stack types;
  int_stack ints;
  tok_stack toks;
  tok_stack rets; /* the values of the last `return`, for messages */
  tok ret_kw;     /* its `return` */
  u64_stack elems;
  char *sbuf;
  size_t sbuf_cap;
} parser;

void ryg_advance(parser *p);
bool ryg_check_missing(parser *p, ry_op op, const tok *optok, uint32_t seen);
const char *ryg_cstr(parser *p, const char *s, size_t n);
const char *ryg_describe(const tok *t, char *buf, size_t size);
bool ryg_expect(parser *p, tkind k, const char *what);
bool ryg_expected(parser *p, const char *what);
bool ryg_fail_at(parser *p, const tok *t, const char *fmt, ...) RY_PRINTF(3, 4);
bool ryg_float_of(const tok *t, double *out, bool *finite_text);
bool ryg_is_word(const tok *t, const char *w);
entry *ryg_map_find(const map *m, const char *k, size_t n);
bool ryg_oom(parser *p);
bool ryg_parse_attrs(parser *p, ry_op op, const tok *optok, ry_attrs *a, int nres, const ry_type *res0);
bool ryg_parse_u64(parser *p, const char *what, uint64_t *out);
bool ryg_parse_int(parser *p, int64_t lo, int64_t hi, const char *what, int64_t *out);
const char *ryg_sym(const tok *t, char *buf, size_t size);

bool ryg_stack_reserve(void **v, size_t *cap, size_t need, size_t elem);

#endif

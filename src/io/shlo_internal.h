/* The StableHLO importer's internal interface (docs/STABLEHLO_IMPORT.md).
 *
 * Two layers: shlo_syntax.c reads MLIR text (the pretty and the generic form
 * of ops) into a syntax tree whose attribute values and types stay text spans
 * into the source; shlo_attr.c reads those spans (types, integer lists,
 * dense literals, #stablehlo.* structs); shlo_import.c and shlo_ops.c map the
 * tree onto an ry_graph through the builder, op by op. */
#ifndef RYFT_IO_SHLO_INTERNAL_H
#define RYFT_IO_SHLO_INTERNAL_H

#include "../ir/builder.h"
#include "ryft/stablehlo.h"

/* A piece of the source text (not NUL-terminated). */
typedef struct shlo_span {
  const char *p;
  int n;
} shlo_span;

typedef struct shlo_kv {
  shlo_span key, val;
} shlo_kv;

typedef struct shlo_region shlo_region;

/* One op, in either syntax. Values are names with the sigil ("%x", "%2#1"). */
typedef struct shlo_op {
  const char *at;         /* start of the op, for line:column */
  shlo_span name;         /* "stablehlo.add", "func.return", "check.expect_eq_const" */
  int n_resg;             /* result groups: `%a, %b = ` or `%2:5 = ` */
  shlo_span *resg;
  int *resg_count;
  int n_opd;              /* operands, in the generic form's order */
  shlo_span *opd;
  int n_barg;             /* pretty while: `(%iterArg = %init, ...)` block argument names */
  shlo_span *barg;
  int n_kv;               /* attributes (pretty keywords, <{properties}>, {attr-dict}) */
  shlo_kv *kv;
  int n_word;             /* positional words and literals: GT, FLOAT, @callee, dense<..>, [0:2] */
  shlo_span *word;
  int n_reg;
  shlo_region **reg;
  bool fn_type;           /* `: (ins) -> outs`; otherwise `: t, t, ...` in tout */
  int n_tin, n_tout;
  shlo_span *tin, *tout;
} shlo_op;

struct shlo_region {
  const char *at;
  int n_arg;
  shlo_span *arg_name, *arg_type;
  int n_op;
  shlo_op **op;
};

typedef struct shlo_func {
  const char *at;
  shlo_span name;         /* without '@' */
  bool is_private;
  int n_res;
  shlo_span *res_type;
  shlo_region *body;      /* its arguments are the function's */
  shlo_span *arg_sharding, *res_sharding; /* `sdy.sharding` values ({0} when absent) */
} shlo_func;

typedef struct shlo_mesh {
  shlo_span name;         /* without '@' */
  shlo_span axes;         /* `<["x"=2, "y"=2]>` */
} shlo_mesh;

typedef struct shlo_chunk shlo_chunk;
typedef struct shlo_module {
  const char *src, *end, *source; /* the text and its name for messages */
  int n_func;
  shlo_func *func;
  int n_mesh;
  shlo_mesh *mesh;
  shlo_chunk *arena;
} shlo_module;

/* ---- syntax (shlo_syntax.c) ---- */
/* Parse text into m (m->arena owns everything; free with shlo_module_free,
 * also after an error). Errors are RY_ERR_PARSE "source:line:col: ...". */
ry_status shlo_parse_module(const char *text, size_t len, const char *source, shlo_module *m);
void shlo_module_free(shlo_module *m);
/* "source:line:col" of a position in the module's text into buf. */
const char *shlo_where(const shlo_module *m, const char *at, char *buf, size_t size);

/* ---- attribute and type text (shlo_attr.c) ---- */
bool shlo_span_is(shlo_span s, const char *lit);
/* The value of attribute `key` of op (NULL when absent). */
const shlo_span *shlo_kv_get(const shlo_op *op, const char *key);
/* A tensor type. Returns 1 on success, 0 for a malformed type, -1 for a
 * well-formed one ryft cannot hold (dtype or rank); why says what. */
int shlo_type(shlo_span s, ry_type *t, char *why, size_t why_size);
/* An integer: `3`, `3 : i64`, `true`. */
bool shlo_int(shlo_span s, int64_t *v);
/* An integer list: `[1, 2]`, `array<i64: 1, 2>`, `dense<[1, 2]> : tensor<2xi64>`,
 * `[true, false]`; nested lists are flattened (padding [[lo, hi], ...]) up to cap. */
bool shlo_ints(shlo_span s, int64_t *v, int cap, int *n);
bool shlo_axes(shlo_span s, ry_axes *a);
/* Field `name` of a struct attribute `#stablehlo.gather<a = [..], b = 1>`. */
bool shlo_field(shlo_span s, const char *name, shlo_span *out);
/* A dense literal (`dense<...>` with or without the trailing `: type`) of
 * type t into a new array. Returns NULL with *err set. */
ry_array *shlo_dense(shlo_span s, ry_type t, ry_status *err);
/* A Shardy sharding `#sdy.sharding<@mesh, [{"x"}, {}]>` (or the same
 * without `#sdy.sharding`) of a rank-`rank` value over the module's meshes:
 * 1 with mesh sizes and per-dimension mesh axes (-1 unsplit), 0 malformed,
 * -1 a form ryft cannot hold (why says which). */
int shlo_sharding(const shlo_module *m, shlo_span s, int rank, ry_axes *mesh, ry_axes *dims, char *why, size_t why_size);
/* A GSPMD sharding string `"{devices=[2,1]0,1}"` (ryft's own export, older
 * JAX): 1 with mesh and dims, 2 replicated, 0 malformed, -1 a form ryft
 * cannot hold. */
int shlo_gspmd(shlo_span s, int rank, ry_axes *mesh, ry_axes *dims, char *why, size_t why_size);
/* The word after `#stablehlo<comparison_direction GT>` or a bare `GT`. */
shlo_span shlo_enum_word(shlo_span s);

/* ---- import (shlo_import.c, shlo_ops.c) ---- */
/* A check.* op met with collect_checks set: output `output` of the graph
 * must equal (or almost equal) `expected`, or output `other`. */
typedef struct shlo_check {
  int output, other;      /* other: -1, or the output it is compared with */
  bool almost;
  double tol;
  ry_array *expected;     /* owned; NULL when other >= 0 */
  int line;
} shlo_check;

typedef struct shlo_result {
  ry_graph *g;
  shlo_check *checks;
  int n_checks, cap_checks;
} shlo_result;
void shlo_result_free(shlo_result *r);

typedef struct shlo_scope shlo_scope;
typedef struct shlo_imp {
  const shlo_module *m;
  ry_graph **graphs;      /* per function, once converted */
  int *state;             /* 0 not yet, 1 converting, 2 done */
  bool collect_checks;
  shlo_result *res;       /* checks go here (main function only) */
  bool has_chk;
  struct { ry_value *v; int n, cap; } chk; /* checked values, appended to main's outputs */
  int depth;
} shlo_imp;

/* Import text into a graph of its public (or only, or `main`) function. */
ry_status shlo_import(const char *text, size_t len, const char *source, bool collect_checks, shlo_result *out);

/* Convert one op in the builder (shlo_ops.c); values from the scope. */
bool shlo_convert_op(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op);
/* Shared with shlo_ops.c (shlo_import.c). */
ry_value shlo_lookup(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op, shlo_span name);
bool shlo_bind(ry_builder *b, shlo_scope *sc, shlo_span name, int n, const ry_value *v);
bool shlo_bind_results(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op, int n, const ry_value *v);
int shlo_fail(shlo_imp *im, ry_builder *b, const char *at, ry_code code, const char *fmt, ...) RY_PRINTF(5, 6);
ry_loc shlo_loc(shlo_imp *im, const char *at);
/* The written result types of op (n of them) into t; false (failed) otherwise. */
bool shlo_result_types(shlo_imp *im, ry_builder *b, const shlo_op *op, int n, ry_type *t);
int shlo_n_results(const shlo_op *op);
/* Regions: convert a region's ops with its block arguments bound to in;
 * writes the returned values; returns their count, -1 on error. */
int shlo_region_run(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_region *r, int n_in, const ry_value *in,
                    ry_value *out, int cap);
/* The graph of function @name (converting it on first use). */
ry_graph *shlo_callee(shlo_imp *im, ry_builder *b, const shlo_op *op, shlo_span name);
/* The constant a value holds, when it is a constant node (else NULL). */
const ry_array *shlo_const_of(ry_builder *b, ry_value v);
/* v with the Shardy sharding spec applied (a `sharding` op); {0} on error. */
ry_value shlo_sharded(shlo_imp *im, ry_builder *b, const char *at, shlo_span spec, ry_value v);
bool shlo_record_check(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op);


/* ---- one op's conversion (shlo_ops.c, shlo_control.c, shlo_window.c) ---- */
typedef struct shlo_x {
  shlo_imp *im;
  ry_builder *b;
  shlo_scope *sc;
  const shlo_op *op;
  int n_in;
  ry_value *in;
  int n_res;
  ry_type *rt;
  ry_loc loc;
} shlo_x;
/* "where: op: message" as the builder's error; false. */
bool shlo_xfail(shlo_x *x, ry_code code, const char *fmt, ...) RY_PRINTF(3, 4);
/* Bind n results, checking their types against the written ones. */
bool shlo_finish(shlo_x *x, int n, const ry_value *v);
bool shlo_finish1(shlo_x *x, ry_value v);
/* Region helpers: the op defining `name` in r (NULL: an argument or outside),
 * the index of `name` among names, the region's last op (its return). */
const shlo_op *shlo_def_in(const shlo_region *r, shlo_span name);
int shlo_arg_index(const shlo_region *r, const shlo_span *names, int n_names, shlo_span name);
const shlo_op *shlo_region_ret(const shlo_region *r);
/* Shared by the converters (shlo_ops.c): an attribute under either name
 * (b2 may be NULL); one that must be an axis list; the reduction kind a body
 * computes on its arguments a and b (`op(a, b)`, or IEEE max/min spelled
 * with selects) as a StableHLO op name, and that name as a ryft kind for
 * dtype d; whether constant c is kind k's identity; r combined with init
 * (broadcast) unless init is the identity. */
const shlo_span *shlo_attr(shlo_x *x, const char *a, const char *b2);
bool shlo_need_axes(shlo_x *x, const char *a, const char *b2, ry_axes *out);
bool shlo_body_kind(const shlo_region *r, int a, int b, shlo_span *opname);
bool shlo_kind_of(shlo_span name, ry_dtype d, ry_reduce_kind *k);
bool shlo_is_identity(const ry_array *c, ry_reduce_kind k);
ry_value shlo_with_init(shlo_x *x, ry_value r, ry_value init, ry_reduce_kind k);
bool shlo_c_reduce_window(shlo_x *x); /* shlo_window.c */
bool shlo_c_select_and_scatter(shlo_x *x);
bool shlo_c_bitcast_resize(shlo_x *x); /* shlo_bits.c */
bool shlo_c_rng_bit_generator(shlo_x *x);
bool shlo_c_reduce_precision(shlo_x *x);
bool shlo_c_triangular_solve(shlo_x *x); /* shlo_linalg.c */
bool shlo_c_lapack_trsm(shlo_x *x);
bool shlo_c_while(shlo_x *x);
bool shlo_c_case(shlo_x *x, bool is_if);
bool shlo_c_call(shlo_x *x);
bool shlo_c_collective(shlo_x *x); /* shlo_collective.c */

#endif

/* The attribute schema: for every attribute kind of ops.def (ATTRS), its
 * fields in print order, each a name, a type and an offset into ry_attrs.
 * The parser (parse_attr.c) reads by it, the printer (print.c) writes by it,
 * and freeing, copying and comparing attributes (here) walk it, so a new
 * attribute is one line of this table. */
#include <stddef.h>

#include "graph.h"

#define FLD(nm, ty, member) {nm, ty, offsetof(ry_attrs, member), false}
#define OPT(nm, ty, member) {nm, ty, offsetof(ry_attrs, member), true}
static const ryg_field fs_compare[] = {FLD("dir", RYG_F_CMP, compare.dir)};
static const ryg_field fs_broadcast[] = {FLD("dims", RYG_F_AXES, broadcast.dims)};
static const ryg_field fs_transpose[] = {FLD("perm", RYG_F_AXES, transpose.perm)};
static const ryg_field fs_slice[] = {FLD("start", RYG_F_AXES, slice.start), FLD("limit", RYG_F_AXES, slice.limit),
                                 FLD("stride", RYG_F_AXES, slice.stride)};
static const ryg_field fs_dynamic_slice[] = {FLD("sizes", RYG_F_AXES, dynamic_slice.sizes)};
static const ryg_field fs_concatenate[] = {FLD("dim", RYG_F_INT, concatenate.dim)};
static const ryg_field fs_pad[] = {FLD("low", RYG_F_AXES, pad.low), FLD("high", RYG_F_AXES, pad.high),
                               FLD("interior", RYG_F_AXES, pad.interior)};
static const ryg_field fs_reverse[] = {FLD("dims", RYG_F_AXES, reverse.dims)};
static const ryg_field fs_iota[] = {FLD("dim", RYG_F_INT, iota.dim)};
static const ryg_field fs_constant[] = {FLD("value", RYG_F_CONST, constant.value)};
static const ryg_field fs_reduce[] = {FLD("kind", RYG_F_REDUCE, reduce.kind), FLD("axes", RYG_F_AXES, reduce.axes)};
static const ryg_field fs_arg[] = {FLD("axis", RYG_F_INT, arg.axis)};
static const ryg_field fs_cumulative[] = {FLD("kind", RYG_F_REDUCE, cumulative.kind), FLD("axis", RYG_F_INT, cumulative.axis),
                                      FLD("reverse", RYG_F_BOOL, cumulative.reverse)};
static const ryg_field fs_window[] = {
    FLD("kind", RYG_F_REDUCE, window.kind),           FLD("window", RYG_F_AXES, window.w.window),
    FLD("stride", RYG_F_AXES, window.w.stride),       FLD("base_dilation", RYG_F_AXES, window.w.base_dilation),
    FLD("window_dilation", RYG_F_AXES, window.w.window_dilation), FLD("pad_low", RYG_F_AXES, window.w.pad_low),
    FLD("pad_high", RYG_F_AXES, window.w.pad_high)};
static const ryg_field fs_dot[] = {FLD("lhs_batch", RYG_F_AXES, dot.lhs_batch), FLD("rhs_batch", RYG_F_AXES, dot.rhs_batch),
                               FLD("lhs_contract", RYG_F_AXES, dot.lhs_contract), FLD("rhs_contract", RYG_F_AXES, dot.rhs_contract)};
static const ryg_field fs_conv[] = {
    FLD("stride", RYG_F_AXES, conv.stride),           FLD("pad_low", RYG_F_AXES, conv.pad_low),
    FLD("pad_high", RYG_F_AXES, conv.pad_high),       FLD("lhs_dilation", RYG_F_AXES, conv.lhs_dilation),
    FLD("rhs_dilation", RYG_F_AXES, conv.rhs_dilation), FLD("feature_groups", RYG_F_INT, conv.feature_groups),
    FLD("batch_groups", RYG_F_INT, conv.batch_groups), FLD("input_dims", RYG_F_AXES, conv.input_dims),
    FLD("kernel_dims", RYG_F_AXES, conv.kernel_dims), FLD("output_dims", RYG_F_AXES, conv.output_dims)};
static const ryg_field fs_gather[] = {
    FLD("offset_dims", RYG_F_AXES, gather.offset_dims), FLD("collapsed_slice_dims", RYG_F_AXES, gather.collapsed_slice_dims),
    FLD("start_index_map", RYG_F_AXES, gather.start_index_map), FLD("index_vector_dim", RYG_F_INT, gather.index_vector_dim),
    FLD("slice_sizes", RYG_F_AXES, gather.slice_sizes)};
static const ryg_field fs_scatter[] = {
    FLD("update_window_dims", RYG_F_AXES, scatter.update_window_dims),
    FLD("inserted_window_dims", RYG_F_AXES, scatter.inserted_window_dims),
    FLD("scatter_dims_to_operand_dims", RYG_F_AXES, scatter.scatter_dims_to_operand_dims),
    FLD("index_vector_dim", RYG_F_INT, scatter.index_vector_dim), FLD("kind", RYG_F_SCATTER, scatter.kind)};
static const ryg_field fs_sort[] = {FLD("dim", RYG_F_INT, sort.dim), FLD("num_keys", RYG_F_INT, sort.num_keys),
                                FLD("descending", RYG_F_BOOL, sort.descending), FLD("stable", RYG_F_BOOL, sort.stable)};
static const ryg_field fs_while[] = {FLD("n_consts", RYG_F_INT, while_.n_consts)};
static const ryg_field fs_scan[] = {FLD("length", RYG_F_INT, scan.length), FLD("n_consts", RYG_F_INT, scan.n_consts),
                                FLD("n_carry", RYG_F_INT, scan.n_carry), FLD("reverse", RYG_F_BOOL, scan.reverse)};
static const ryg_field fs_call[] = {FLD("callee", RYG_F_CALLEE, call.callee), OPT("jvp", RYG_F_CALLEE, call.jvp),
                                OPT("fwd", RYG_F_CALLEE, call.fwd), OPT("bwd", RYG_F_CALLEE, call.bwd),
                                OPT("remat", RYG_F_INT, call.remat)};
static const ryg_field fs_custom[] = {FLD("target", RYG_F_STRING, custom.target)};
static const ryg_field fs_all_reduce[] = {FLD("kind", RYG_F_REDUCE, collective.kind), FLD("mesh", RYG_F_AXES, collective.mesh),
                                      FLD("axes", RYG_F_AXES, collective.axes)};
static const ryg_field fs_all_gather[] = {FLD("dim", RYG_F_INT, collective.dim), FLD("mesh", RYG_F_AXES, collective.mesh),
                                      FLD("axes", RYG_F_AXES, collective.axes)};
static const ryg_field fs_reduce_scatter[] = {FLD("dim", RYG_F_INT, collective.dim), FLD("kind", RYG_F_REDUCE, collective.kind),
                                          FLD("mesh", RYG_F_AXES, collective.mesh), FLD("axes", RYG_F_AXES, collective.axes)};
static const ryg_field fs_collective_broadcast[] = {FLD("source", RYG_F_INT, collective.source),
                                                FLD("mesh", RYG_F_AXES, collective.mesh), FLD("axes", RYG_F_AXES, collective.axes)};
static const ryg_field fs_quant[] = {FLD("format", RYG_F_INT, quant.format), OPT("act8", RYG_F_BOOL, quant.act8)};
static const ryg_field fs_sharding[] = {FLD("mesh", RYG_F_AXES, sharding.mesh), FLD("dims", RYG_F_AXES, sharding.dims)};
#undef FLD
#undef OPT

#define SCHEMA(fs) {fs, (int)(sizeof fs / sizeof fs[0])}
const ryg_schema ryg_attr_schemas[RY_ATTR_KIND_COUNT] = {
    [RY_ATTR_NONE] = {NULL, 0},
    [RY_ATTR_COMPARE] = SCHEMA(fs_compare),
    [RY_ATTR_BROADCAST] = SCHEMA(fs_broadcast),
    [RY_ATTR_TRANSPOSE] = SCHEMA(fs_transpose),
    [RY_ATTR_SLICE] = SCHEMA(fs_slice),
    [RY_ATTR_DYNAMIC_SLICE] = SCHEMA(fs_dynamic_slice),
    [RY_ATTR_CONCATENATE] = SCHEMA(fs_concatenate),
    [RY_ATTR_PAD] = SCHEMA(fs_pad),
    [RY_ATTR_REVERSE] = SCHEMA(fs_reverse),
    [RY_ATTR_IOTA] = SCHEMA(fs_iota),
    [RY_ATTR_CONSTANT] = SCHEMA(fs_constant),
    [RY_ATTR_REDUCE] = SCHEMA(fs_reduce),
    [RY_ATTR_ARG] = SCHEMA(fs_arg),
    [RY_ATTR_CUMULATIVE] = SCHEMA(fs_cumulative),
    [RY_ATTR_WINDOW] = SCHEMA(fs_window),
    [RY_ATTR_DOT] = SCHEMA(fs_dot),
    [RY_ATTR_CONV] = SCHEMA(fs_conv),
    [RY_ATTR_GATHER] = SCHEMA(fs_gather),
    [RY_ATTR_SCATTER] = SCHEMA(fs_scatter),
    [RY_ATTR_SORT] = SCHEMA(fs_sort),
    [RY_ATTR_WHILE] = SCHEMA(fs_while),
    [RY_ATTR_SCAN] = SCHEMA(fs_scan),
    [RY_ATTR_CALL] = SCHEMA(fs_call),
    [RY_ATTR_CUSTOM] = SCHEMA(fs_custom),
    [RY_ATTR_ALL_REDUCE] = SCHEMA(fs_all_reduce),
    [RY_ATTR_ALL_GATHER] = SCHEMA(fs_all_gather),
    [RY_ATTR_REDUCE_SCATTER] = SCHEMA(fs_reduce_scatter),
    [RY_ATTR_COLLECTIVE_BROADCAST] = SCHEMA(fs_collective_broadcast),
    [RY_ATTR_SHARDING] = SCHEMA(fs_sharding),
    [RY_ATTR_QUANT] = SCHEMA(fs_quant),
};
#undef SCHEMA

/* ---- freeing, copying, comparing: by field type ---- */

#define AT(a, f, T) ((T *)((char *)(a) + (f)->off))
#define CAT(a, f, T) ((const T *)((const char *)(a) + (f)->off))

void ry__attrs_free(ry_op op, ry_attrs *a) {
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[op].attrs];
  for (int i = 0; i < sc->n; i++) {
    const ryg_field *f = &sc->f[i];
    switch (f->type) {
    case RYG_F_CONST: ry_array_release(*AT(a, f, ry_array *)); *AT(a, f, ry_array *) = NULL; break;
    case RYG_F_CALLEE: ry_graph_release(*AT(a, f, ry_graph *)); *AT(a, f, ry_graph *) = NULL; break;
    case RYG_F_STRING: ry__strfree(*AT(a, f, char *)); *AT(a, f, char *) = NULL; break;
    default: break;
    }
  }
}

bool ry__attrs_copy(ry_op op, ry_attrs *dst, const ry_attrs *src) {
  *dst = *src;
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[op].attrs];
  int i = 0;
  for (; i < sc->n; i++) {
    const ryg_field *f = &sc->f[i];
    if (f->type == RYG_F_CONST) ry_array_retain(*AT(dst, f, ry_array *));
    else if (f->type == RYG_F_CALLEE) ry_graph_retain(*AT(dst, f, ry_graph *));
    else if (f->type == RYG_F_STRING && *CAT(src, f, char *)) {
      char *c = ry__strdup(*CAT(src, f, char *));
      *AT(dst, f, char *) = c;
      if (!c) break;
    }
  }
  if (i == sc->n) return true;
  /* out of memory at field i: drop what fields 0..i-1 took, clear the rest */
  for (int j = i; j < sc->n; j++) {
    const ryg_field *f = &sc->f[j];
    if (f->type == RYG_F_CONST || f->type == RYG_F_CALLEE || f->type == RYG_F_STRING) *AT(dst, f, void *) = NULL;
  }
  ry__attrs_free(op, dst);
  return false;
}

static bool axes_eq(const ry_axes *a, const ry_axes *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++)
    if (a->v[i] != b->v[i]) return false;
  return true;
}

bool ry__attrs_equal(ry_op op, const ry_attrs *a, const ry_attrs *b) {
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[op].attrs];
  for (int i = 0; i < sc->n; i++) {
    const ryg_field *f = &sc->f[i];
    bool eq = true;
    switch (f->type) {
    case RYG_F_AXES: eq = axes_eq(CAT(a, f, ry_axes), CAT(b, f, ry_axes)); break;
    case RYG_F_INT: eq = *CAT(a, f, int64_t) == *CAT(b, f, int64_t); break;
    case RYG_F_BOOL: eq = *CAT(a, f, bool) == *CAT(b, f, bool); break;
    case RYG_F_CMP: eq = *CAT(a, f, ry_cmp) == *CAT(b, f, ry_cmp); break;
    case RYG_F_REDUCE: eq = *CAT(a, f, ry_reduce_kind) == *CAT(b, f, ry_reduce_kind); break;
    case RYG_F_SCATTER: eq = *CAT(a, f, ry_scatter_kind) == *CAT(b, f, ry_scatter_kind); break;
    case RYG_F_CONST: {
      const ry_array *x = *CAT(a, f, ry_array *), *y = *CAT(b, f, ry_array *);
      eq = x == y || (x && y && ry_type_equal(x->type, y->type) && memcmp(x->data, y->data, x->nbytes) == 0);
      break;
    }
    case RYG_F_CALLEE: eq = *CAT(a, f, ry_graph *) == *CAT(b, f, ry_graph *); break;
    case RYG_F_STRING: {
      const char *x = *CAT(a, f, char *), *y = *CAT(b, f, char *);
      eq = x == y || (x && y && strcmp(x, y) == 0);
      break;
    }
    }
    if (!eq) return false;
  }
  return true;
}

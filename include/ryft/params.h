/* ryft/params.h - parameter trees: ordered, named collections of arrays.
 *
 * A tree maps paths ("mlp/fc1/w") to arrays, in insertion order. It is ryft's
 * pytree: the order is the order of graph inputs and outputs when a tree is
 * flattened, so a tree, a graph traced from it and the arrays a run returns
 * line up by index. Nested trees (optimizer state) are ordinary trees whose
 * paths carry a prefix: "adam/mu/mlp/fc1/w".
 *
 * Paths are non-empty, at most RY_PARAMS_MAX_PATH-1 bytes, made of segments
 * separated by '/', with no empty segment (no leading, trailing or doubled
 * '/'). Arrays are immutable and refcounted: a tree holds one reference to
 * each of its arrays, and "shallow" copies share arrays.
 *
 * Patterns (filter, partition) are globs over paths: '*' matches any run of
 * characters within one segment, '?' one character other than '/', and a
 * segment that is exactly "**" matches zero or more whole segments. So
 * "mlp/ * /w" (without the spaces) matches "mlp/fc1/w", and "** /b" matches
 * every path whose last segment is "b", including "b" itself. */
#ifndef RYFT_PARAMS_H
#define RYFT_PARAMS_H

#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RY_PARAMS_MAX_PATH 256

typedef struct ry_params ry_params;

/* ---- building and reading --------------------------------------------- */

RY_API ry_params *ry_params_new(void);            /* empty tree; NULL on out of memory */
RY_API void ry_params_free(ry_params *p);         /* releases its arrays; NULL is fine */
/* A new tree with the same paths sharing the same arrays. */
RY_API ry_status ry_params_clone(const ry_params *p, ry_params **out);

/* Insert or replace: a new path is appended, an existing one keeps its
 * position and gets the new array (any type). The tree retains `a`. */
RY_API ry_status ry_params_set(ry_params *p, const char *path, ry_array *a);
/* The same, but the tree takes over the caller's reference to `a` (also on
 * failure, when `a` is released), so `ry_params_set_owned(p, "w", fresh)`
 * needs no release afterwards. */
RY_API ry_status ry_params_set_owned(ry_params *p, const char *path, ry_array *a);
/* Replace an existing entry with an array of the same dtype and shape
 * (RY_ERR_NOT_FOUND / RY_ERR_SHAPE / RY_ERR_DTYPE naming the path and the
 * types otherwise). Retains `a`. */
RY_API ry_status ry_params_replace(ry_params *p, const char *path, ry_array *a);
/* Remove an entry (RY_ERR_NOT_FOUND when missing); later entries move up. */
RY_API ry_status ry_params_remove(ry_params *p, const char *path);

RY_API int ry_params_count(const ry_params *p);   /* number of entries; 0 for NULL */
/* The array at `path` (borrowed), or NULL when there is none. */
RY_API ry_array *ry_params_get(const ry_params *p, const char *path);
/* The same as a status: RY_ERR_NOT_FOUND names the path (borrowed *out). */
RY_API ry_status ry_params_find(const ry_params *p, const char *path, ry_array **out);
RY_API int ry_params_index(const ry_params *p, const char *path); /* -1 when missing */
/* Iterate in order: i in [0, count). Borrowed; NULL when i is out of range. */
RY_API const char *ry_params_path(const ry_params *p, int i);
RY_API ry_array *ry_params_at(const ry_params *p, int i);
RY_API ry_type ry_params_type(const ry_params *p, int i);
/* Contiguous views of the paths / arrays in order (borrowed; valid until
 * the tree changes): ready for ry_trace's input_names and ry_execute. */
RY_API const char *const *ry_params_paths(const ry_params *p);
RY_API ry_array *const *ry_params_arrays(const ry_params *p);
/* Every entry's type, in order, into types[count]. */
RY_API void ry_params_types(const ry_params *p, ry_type *types);

RY_API int64_t ry_params_numel(const ry_params *p); /* total elements ("parameters") */
RY_API size_t ry_params_nbytes(const ry_params *p); /* total bytes */
/* 1 when both trees have the same paths in the same order and bitwise equal
 * arrays of the same types. */
RY_API int ry_params_equal(const ry_params *a, const ry_params *b);

/* ---- transforming -------------------------------------------------------- */

/* fn returns a new array for an entry (the new tree takes its reference) or
 * an error, which stops the map and is returned with the path prefixed. */
typedef ry_status (*ry_params_map_fn)(void *ctx, const char *path, const ry_array *a, ry_array **out);
RY_API ry_status ry_params_map(const ry_params *p, ry_params_map_fn fn, void *ctx, ry_params **out);
/* A tree of zeros (or `value`) with p's paths, dtypes and shapes. */
RY_API ry_status ry_params_full_like(const ry_params *p, double value, ry_params **out);
#define ry_params_zeros_like(p, out) ry_params_full_like((p), 0.0, (out))

/* 1 when the glob `pattern` matches `path` (see above). */
RY_API int ry_path_match(const char *pattern, const char *path);
/* The entries whose path matches `pattern`, in order (shared arrays). */
RY_API ry_status ry_params_filter(const ry_params *p, const char *pattern, ry_params **out);
/* Split p in two by a pattern: matching entries go to *matched, the rest to
 * *rest (either out pointer may be NULL). Both keep p's relative order. */
RY_API ry_status ry_params_partition(const ry_params *p, const char *pattern, ry_params **matched, ry_params **rest);
/* The same with a predicate (nonzero = matched). */
typedef int (*ry_params_pred_fn)(void *ctx, const char *path, const ry_array *a);
RY_API ry_status ry_params_partition_fn(const ry_params *p, ry_params_pred_fn pred, void *ctx, ry_params **matched,
                                 ry_params **rest);
/* Join two disjoint trees (a path in both is RY_ERR_INVALID_ARGUMENT naming
 * it). With `like` (may be NULL) the result follows like's order and must
 * hold exactly like's paths (so partition + combine restores the original
 * order); without it, a's entries come first, then b's. */
RY_API ry_status ry_params_combine(const ry_params *a, const ry_params *b, const ry_params *like, ry_params **out);

/* Nesting: "prefix/" + every path (prefix must be a valid path). */
RY_API ry_status ry_params_prefixed(const ry_params *p, const char *prefix, ry_params **out);
/* The entries under "prefix/", with that prefix removed (may be empty). */
RY_API ry_status ry_params_subtree(const ry_params *p, const char *prefix, ry_params **out);
/* Set every entry of src into dst as "prefix/path" (prefix NULL or "" = as
 * is), appending or replacing like ry_params_set. */
RY_API ry_status ry_params_merge(ry_params *dst, const char *prefix, const ry_params *src);

/* ---- flatten / unflatten ------------------------------------------------- */

/* A tree with like's paths holding arrays[0..n) in order; n must equal
 * like's count and every array's type must equal the entry's (errors name
 * the path and both types). The new tree retains the arrays. */
RY_API ry_status ry_params_unflatten(const ry_params *like, int n, ry_array *const *arrays, ry_params **out);
/* The same, taking over the caller's references to all n arrays (they are
 * released on failure too), for arrays fresh from ry_execute. */
RY_API ry_status ry_params_unflatten_owned(const ry_params *like, int n, ry_array **arrays, ry_params **out);

/* ---- summary -------------------------------------------------------------- */

/* A table: one row per entry (path, dtype, shape, numel) and a total line
 * ("total: 3 arrays, 101,770 parameters, 397.5 KiB"). */
RY_API void ry_params_print_summary(const ry_params *p, FILE *f);
/* The same text into buf; returns the length it needed (like snprintf). */
RY_API size_t ry_params_summary(const ry_params *p, char *buf, size_t size);

/* ---- in traced code: a path -> ry_value view --------------------------------
 *
 * A ry_pvalues maps paths to values of one builder, in order. Lookups of a
 * missing path set the builder's sticky error ("params: no entry
 * \"mlp/fc3/w\" ..." with the caller's file:line) and return an invalid
 * value, so a traced function can use the view without checking each call.
 * The view belongs to the caller (ry_pvalues_free), not to the builder. */
typedef struct ry_pvalues ry_pvalues;

/* Add every entry of `tree` as a graph input named by its path (types from
 * the arrays), in order, and return the view. Errors also set the builder's
 * sticky error. */
RY_API ry_status ry_params_inputs(ry_builder *b, const ry_params *tree, ry_pvalues **out);
/* A view over values that already exist, e.g. the `in` of an ry_fn traced
 * with ry_params_types/ry_params_paths: in[i] is tree's entry i. */
RY_API ry_status ry_pvalues_from(ry_builder *b, const ry_params *tree, const ry_value *in, ry_pvalues **out);
/* An empty view to fill with ry_pvalues_set (e.g. updated parameters). */
RY_API ry_pvalues *ry_pvalues_new(ry_builder *b); /* NULL on out of memory */
RY_API void ry_pvalues_free(ry_pvalues *v);       /* NULL is fine */

RY_API ry_value ry_pvalues_get_(ry_pvalues *v, ry_loc loc, const char *path);
#define ry_pvalues_get(v, path) ry_pvalues_get_((v), RY_HERE, (path))
RY_API int ry_pvalues_has(const ry_pvalues *v, const char *path);
/* Insert or replace (appends a new path). Returns 0 and sets the builder's
 * error on a bad path or out of memory, else 1. */
RY_API int ry_pvalues_set_(ry_pvalues *v, ry_loc loc, const char *path, ry_value x);
#define ry_pvalues_set(v, path, x) ry_pvalues_set_((v), RY_HERE, (path), (x))
RY_API int ry_pvalues_count(const ry_pvalues *v);
RY_API const char *ry_pvalues_path(const ry_pvalues *v, int i); /* NULL out of range */
RY_API ry_value ry_pvalues_at(const ry_pvalues *v, int i);      /* invalid out of range */
RY_API ry_builder *ry_pvalues_builder(const ry_pvalues *v);
/* The values under "prefix/" as a new view with the prefix removed, e.g.
 * ry_pvalues_subtree(state, "adam/mu"). NULL (and the builder's error set)
 * on out of memory; an empty view when nothing is under the prefix. */
RY_API ry_pvalues *ry_pvalues_subtree(const ry_pvalues *v, const char *prefix);
/* Write the values for like's paths, in like's order, to out[count(like)]
 * (ready for ry_builder_finish or an ry_fn's outputs), checking that each
 * value has the entry's type. Returns the count written, or -1 with the
 * builder's error set naming the first missing or mismatched path. `prefix`
 * (may be NULL) is put before like's paths for the lookup, so state trees
 * "adam/mu/..." can be written from a view holding all of them. */
RY_API int ry_pvalues_outputs_(ry_pvalues *v, ry_loc loc, const ry_params *like, const char *prefix, ry_value *out);
#define ry_pvalues_outputs(v, like, prefix, out) ry_pvalues_outputs_((v), RY_HERE, (like), (prefix), (out))

#ifdef __cplusplus
}
#endif
#endif

/* ryft/stablehlo.h - export a graph as StableHLO (MLIR text).
 *
 * The module has a public `func.func @main` with the graph's inputs and
 * outputs, one private `func.func` per called graph, and `stablehlo.*` ops
 * (plus `chlo.erf`/`chlo.erf_inv`) in MLIR's generic syntax, which any XLA
 * PJRT plugin and JAX's own compiler parse. Control flow becomes
 * `stablehlo.case` / `stablehlo.while`, threefry2x32 is expanded into u32
 * arithmetic, and custom_call becomes `stablehlo.custom_call` (which only a
 * runtime that registers the target can execute). */
#ifndef RYFT_STABLEHLO_H
#define RYFT_STABLEHLO_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Import: StableHLO text (what ry_stablehlo_emit writes, or JAX's
 * `jax.jit(f).lower(...).as_text()`; ops in MLIR's pretty or generic form)
 * into a new graph (refcount 1) of the module's `main` function (else its
 * only public one). Other functions become callees of `call` nodes. len < 0
 * means NUL-terminated; source names the text in messages. Malformed text is
 * RY_ERR_PARSE "source:line:col: ..."; what ryft cannot represent (an op, a
 * dtype, a dynamic shape) is RY_ERR_UNSUPPORTED naming it and its place.
 * The supported ops and how regions map onto ryft's ops:
 * docs/STABLEHLO_IMPORT.md. */
RY_API ry_status ry_stablehlo_parse(const char *text, long len, const char *source, ry_graph **out);
RY_API ry_status ry_stablehlo_parse_file(const char *path, ry_graph **out);

/* The module text into a new NUL-terminated string; free it with ry_free(). */
RY_API ry_status ry_stablehlo_emit(const ry_graph *g, char **out);
/* The module text into the file at `path` (created or truncated). */
RY_API ry_status ry_stablehlo_emit_file(const ry_graph *g, const char *path);

#ifdef __cplusplus
}
#endif
#endif

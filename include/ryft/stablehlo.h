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

/* The module text into a new NUL-terminated string; free it with ry_free(). */
RY_API ry_status ry_stablehlo_emit(const ry_graph *g, char **out);
/* The module text into the file at `path` (created or truncated). */
RY_API ry_status ry_stablehlo_emit_file(const ry_graph *g, const char *path);

#ifdef __cplusplus
}
#endif
#endif

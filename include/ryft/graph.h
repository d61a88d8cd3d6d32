/* ryft/graph.h - finished programs: inspection, the text IR, verification.
 *
 * A graph is immutable once traced or parsed and is refcounted. Its text form
 * is described in docs/IR.md. */
#ifndef RYFT_GRAPH_H
#define RYFT_GRAPH_H

#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

RY_API ry_graph *ry_graph_retain(ry_graph *g); /* returns g; NULL is fine */
RY_API void ry_graph_release(ry_graph *g);     /* NULL is fine */

RY_API const char *ry_graph_name(const ry_graph *g);
RY_API int ry_graph_num_inputs(const ry_graph *g);
RY_API int ry_graph_num_outputs(const ry_graph *g);
RY_API ry_type ry_graph_input_type(const ry_graph *g, int i);
RY_API ry_type ry_graph_output_type(const ry_graph *g, int i);
/* The input's name, or NULL when it has none. */
RY_API const char *ry_graph_input_name(const ry_graph *g, int i);
/* Number of operations, counting those inside regions. */
RY_API int ry_graph_num_ops(const ry_graph *g);

/* Text IR: the graph and every graph it calls, callees first. */
RY_API ry_status ry_graph_print(const ry_graph *g, FILE *f);
/* The text into a new NUL-terminated string; free it with ry_free(). */
RY_API ry_status ry_graph_to_string(const ry_graph *g, char **out);

/* Parse a module (docs/IR.md) and return its @main, verified. Errors are
 * RY_ERR_PARSE ("<source>:LINE:COL: message") or RY_ERR_VERIFY. `source`
 * names the text in messages (NULL = "<input>"); `len` may be -1 for a
 * NUL-terminated string. */
RY_API ry_status ry_graph_parse(const char *text, long len, const char *source, ry_graph **out);
RY_API ry_status ry_graph_parse_file(const char *path, ry_graph **out);

/* Check every invariant: operand/result types against the op's rules,
 * SSA dominance, closed regions and region signatures. */
RY_API ry_status ry_graph_verify(const ry_graph *g);

#ifdef __cplusplus
}
#endif
#endif

/* The StableHLO emitter's public API (always built; the PJRT tests run the
 * emitted text on XLA): module shape, callees, files, bad arguments. */
#include <stdlib.h>

#include "testlib.h"

static const char *k_prog =
    "func @twice(%x: f32[2]) -> (f32[2]) {\n"
    "  %0: f32[2] = add %x, %x\n"
    "  return %0\n"
    "}\n"
    "func @main(%x: f32[2]) -> (f32[2], f32[]) {\n"
    "  %0: f32[2] = call %x {callee=@twice}\n"
    "  %1: f32[] = reduce %0 {kind=max, axes=[0]}\n"
    "  return %0, %1\n"
    "}\n";

TEST(stablehlo_emit_module) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_prog, -1, "test", &g));
  char *text = NULL;
  CHECK_OK(ry_stablehlo_emit(g, &text));
  if (text) {
    CHECK(strstr(text, "func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>, tensor<f32>)") != NULL);
    CHECK(strstr(text, "func.func private @twice_1") != NULL);
    CHECK(strstr(text, "\"func.call\"(%arg0) {callee = @twice_1}") != NULL);
    CHECK(strstr(text, "\"stablehlo.reduce\"") != NULL);
    CHECK(strstr(text, "\"stablehlo.add\"") != NULL);
    /* -inf as the max identity, exact bits */
    CHECK(strstr(text, "dense<\"0x000080FF\"> : tensor<f32>") != NULL);
  }
  ry_free(text);
  ry_graph_release(g);
}

TEST(stablehlo_emit_errors) {
  char *text = (char *)1;
  CHECK_ERR(ry_stablehlo_emit(NULL, &text), RY_ERR_INVALID_ARGUMENT, "graph is NULL");
  CHECK(text == NULL);
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_prog, -1, "test", &g));
  CHECK_ERR(ry_stablehlo_emit(g, NULL), RY_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(ry_stablehlo_emit_file(g, NULL), RY_ERR_INVALID_ARGUMENT, "path is NULL");
  CHECK_ERR(ry_stablehlo_emit_file(g, "/nonexistent/dir/out.mlir"), RY_ERR_IO, "cannot open", "/nonexistent/dir/out.mlir");
  char path[1024];
  snprintf(path, sizeof path, "%s/stablehlo_test.mlir", RYFT_BINARY_DIR);
  CHECK_OK(ry_stablehlo_emit_file(g, path));
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (f) {
    char line[128] = {0};
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK_STR(line, "module @ryft {\n");
    fclose(f);
  }
  remove(path);
  ry_graph_release(g);
}

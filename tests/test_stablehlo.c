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

/* collective_broadcast: one replica group per group of the mesh, the source
 * member first and the others after it in group order (as JAX's pbroadcast
 * lowers), no reducer region. */
TEST(stablehlo_emit_collective_broadcast) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse("func @main(%x: i8[3]) -> (i8[3], i8[3], i8[3]) {\n"
                          "  %0: i8[3] = collective_broadcast %x {source=2, mesh=[4], axes=[0]}\n"
                          "  %1: i8[3] = collective_broadcast %x {source=1, mesh=[2,2], axes=[0]}\n"
                          "  %2: i8[3] = collective_broadcast %x {source=0, mesh=[2,2], axes=[1]}\n"
                          "  return %0, %1, %2\n}\n",
                          -1, "test", &g));
  char *text = NULL;
  if (g) CHECK_OK(ry_stablehlo_emit(g, &text));
  if (text) {
    CHECK_MSG(strstr(text, "\"stablehlo.collective_broadcast\"(%arg0) {replica_groups = dense<[[2, 0, 1, 3]]> : tensor<1x4xi64>}"),
              "%s", text);
    CHECK_MSG(strstr(text, "replica_groups = dense<[[2, 0], [3, 1]]> : tensor<2x2xi64>"), "%s", text);
    CHECK_MSG(strstr(text, "replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>"), "%s", text);
    CHECK(strstr(text, "(tensor<3xi8>) -> tensor<3xi8>") != NULL);
  }
  ry_free(text);
  ry_graph_release(g);
  /* the source is a member of the group */
  CHECK_ERR(ry_graph_parse("func @main(%x: f32[3]) -> (f32[3]) {\n"
                           "  %0: f32[3] = collective_broadcast %x {source=2, mesh=[2,2], axes=[1]}\n  return %0\n}\n",
                           -1, "test", &g),
            RY_ERR_PARSE, "source 2 is not a member of a group of 2 devices");
}

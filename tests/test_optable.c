/* The op table is the spine: every op must have every rule. Adding an op to
 * ops.def without its shape rule, interpreter kernel and printer/parser
 * support fails here, naming the op and the missing rule. */
#include <dirent.h>
#include <stdlib.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/fuse.h"
#include "backend/interp/interp.h"
#include "backend/stablehlo/stablehlo.h"
#include "ir/graph.h"
#include "transform/transform.h"
#include "testlib.h"

TEST(optable_complete) {
  for (int op = 0; op < RY_OP_COUNT; op++) {
    const ry_op_info *info = &ryg_op_table[op];
    CHECK_MSG(info->name && info->name[0], "op %d has no name", op);
    CHECK_MSG(ryg_shape_rules[op] != NULL, "op %s has no shape rule", info->name);
    CHECK_MSG(ryi_kernels[op] != NULL, "op %s has no interpreter kernel", info->name);
    CHECK_MSG(ryt_jvp_rules[op] != NULL, "op %s has no JVP rule", info->name);
    CHECK_MSG(ryt_batch_rules[op] != NULL, "op %s has no batching rule", info->name);
    CHECK_MSG(rys_rules[op] != NULL, "op %s has no StableHLO emission rule", info->name);
    bool schema = info->attrs == RY_ATTR_NONE || ryg_attr_schemas[info->attrs].n > 0; /* attrs.c drives both */
    CHECK_MSG(schema, "op %s: attributes cannot be printed", info->name);
    CHECK_MSG(schema, "op %s: attributes cannot be parsed", info->name);
    ry_op back;
    CHECK_MSG(ryg_op_from_name(info->name, strlen(info->name), &back) && back == (ry_op)op, "op %s: name lookup fails",
              info->name);
    for (int j = 0; j < op; j++) CHECK_MSG(strcmp(ryg_op_table[j].name, info->name) != 0, "op name %s is used twice", info->name);
  }
}

/* Every elementwise op compiles on the cpu backend for every dtype its row
 * of ops.def allows: a missing rule in ew_rules.c fails here, naming the op
 * and the dtype, instead of the op silently running on the interpreter. */
TEST(optable_cpu_elementwise_rules) {
  int rules = 0;
  for (int op = 0; op < RY_OP_COUNT; op++) {
    const ry_op_info *info = &ryg_op_table[op];
    bool ew = info->kind == RY_KIND_UNARY || info->kind == RY_KIND_UNARY_PRED || info->kind == RY_KIND_BINARY;
    for (int t = 0; t < RY_DTYPE_COUNT; t++) {
      const char *rule = ryf_ew_rule_for((ry_op)op, (ry_dtype)t);
      if (!ew) {
        CHECK_MSG(rule == NULL, "op %s is not elementwise but has a cpu elementwise rule", info->name);
        continue;
      }
      bool allowed = ryg_dt_class_has(info->dtypes, (ry_dtype)t);
      CHECK_MSG(!allowed || rule != NULL, "op %s has no cpu codegen rule (src/backend/cpu/ew_rules.c) for %s", info->name,
                ry_dtype_name((ry_dtype)t));
      if (!rule) continue;
      rules++;
      /* only %0 %1 %T %U %B, and %1 only for binary ops */
      for (const char *p = strchr(rule, '%'); p; p = strchr(p + 2, '%'))
        CHECK_MSG(strchr(info->kind == RY_KIND_BINARY ? "01TUB" : "0TUB", p[1]) != NULL,
                  "op %s: rule \"%s\" uses %%%c", info->name, rule, p[1]);
    }
  }
  CHECK(rules > 100);
}

/* trace.h's lists of public elementwise constructors (ry_<name>) and the
 * elementwise ops of ops.def are the same set. */
TEST(optable_public_elementwise_names) {
#define NAME(n) #n,
  static const char *const unary[] = {RY__UNARY(NAME)}, *const binary[] = {RY__BINARY(NAME)};
#undef NAME
  int n_unary = (int)(sizeof unary / sizeof *unary), n_binary = (int)(sizeof binary / sizeof *binary), found = 0;
  for (int op = 0; op < RY_OP_COUNT; op++) {
    const ry_op_info *info = &ryg_op_table[op];
    bool is_unary = info->kind == RY_KIND_UNARY || info->kind == RY_KIND_UNARY_PRED, is_binary = info->kind == RY_KIND_BINARY;
    if (!is_unary && !is_binary) continue;
    const char *const *list = is_unary ? unary : binary;
    int n = is_unary ? n_unary : n_binary, hit = 0;
    for (int i = 0; i < n; i++) hit += strcmp(list[i], info->name) == 0;
    CHECK_MSG(hit == 1, "elementwise op %s: listed %d times in trace.h's RY__%s", info->name, hit, is_unary ? "UNARY" : "BINARY");
    found += hit;
  }
  CHECK_MSG(found == n_unary + n_binary, "trace.h lists %d elementwise names, ops.def has %d of them", n_unary + n_binary, found);
}

/* Every op has golden cases from JAX (the .golden and .tgolden files),
 * except those whose oracle is elsewhere, named here with where. */
TEST(optable_golden_coverage) {
  static const char *const elsewhere[][2] = {
      {"custom_call", "test_trace.c / test_pjrt.c (user functions)"},
      {"all_reduce", "test_pjrt.c multi-device and test_dist.c (MPI)"},
      {"all_gather", "test_pjrt.c multi-device and test_dist.c (MPI)"},
      {"reduce_scatter", "test_pjrt.c multi-device and test_dist.c (MPI)"},
      {"collective_broadcast", "test_dist.c (MPI; its gradient against JAX, tests/data/gen_collective_broadcast.py)"},
      {"sharding", "test_pjrt.c SPMD"},
      {"dequantize", "test_dequant.c (gguf-py's dequantizers, every format, on every device)"},
  };
  static char text[1 << 24];
  size_t len = 0;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cat '%s'/tests/golden/*.golden '%s'/tests/golden/*.tgolden", RYFT_SOURCE_DIR, RYFT_SOURCE_DIR);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL);
  if (!f) return;
  len = fread(text, 1, sizeof text - 1, f);
  text[len] = 0;
  pclose(f);
  CHECK_MSG(len > 1000 && len < sizeof text - 1, "read %zu bytes of goldens", len);
  for (int op = 0; op < RY_OP_COUNT; op++) {
    const char *name = ryg_op_table[op].name;
    bool other = false;
    for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++) other |= strcmp(elsewhere[i][0], name) == 0;
    char pat[80];
    snprintf(pat, sizeof pat, "= %s ", name);
    bool found = strstr(text, pat) != NULL;
    if (!found) {
      snprintf(pat, sizeof pat, "= %s\n", name);
      found = strstr(text, pat) != NULL;
    }
    CHECK_MSG(found || other, "op %s has no golden case (tests/golden/gen_goldens.py)", name);
  }
}

TEST(optable_enums_named) {
  for (int i = 0; i < RY_CMP_COUNT; i++) CHECK(ryg_cmp_names[i] != NULL);
  for (int i = 0; i < RY_REDUCE_COUNT; i++) CHECK(ryg_reduce_names[i] != NULL);
  for (int i = 0; i < RY_SCATTER_COUNT; i++) CHECK(ryg_scatter_names[i] != NULL);
  for (int i = 0; i < RY_DTYPE_COUNT; i++) {
    ry_dtype t;
    CHECK(ry_dtype_from_name(ry_dtype_name((ry_dtype)i), &t) && t == (ry_dtype)i);
    CHECK(ry_dtype_size((ry_dtype)i) > 0);
  }
}

/* ---- the printer and the parser, op by op ----
 * The flag tables above say an op's attributes can be printed and parsed; this
 * checks that they are: every IR program of the golden files, and every
 * valid program of the parser's fuzz corpus, is parsed, printed, parsed again
 * and printed again (the two texts identical, the graph valid), and every op
 * of the table must occur in at least one of them. */

static void mark_ops(const ry_graph *g, bool *seen, int depth) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const ry_node *nd = &g->nodes[i];
    seen[nd->op] = true;
    if (nd->op == RY_OP_CALL && depth < 8) {
      const ry_graph *subs[] = {nd->attrs.call.callee, nd->attrs.call.jvp, nd->attrs.call.fwd, nd->attrs.call.bwd};
      for (int k = 0; k < 4; k++)
        if (subs[k]) mark_ops(subs[k], seen, depth + 1);
    }
  }
}

/* every "ir" ... "end_ir" block of one golden file; returns how many */
static int roundtrip_file(const char *path, bool *seen) {
  char *text = rt_read_file(path, NULL);
  CHECK_MSG(text != NULL, "cannot read %s", path);
  if (!text) return 0;
  int n = 0;
  for (char *p = text; (p = strstr(p, "\nir\n"));) {
    char *start = p + 4, *end = strstr(start, "\nend_ir");
    if (!end) break;
    *end = 0;
    ry_graph *g = NULL;
    ry_status s = ry_graph_parse(start, -1, path, &g);
    if (s) {
      rt_fail(__FILE__, __LINE__, "%s: program %d does not parse: %s", path, n, ry_status_message(s));
      ry_status_free(s);
    } else {
      CHECK_ROUNDTRIP(g);
      mark_ops(g, seen, 0);
      ry_graph_release(g);
    }
    n++;
    p = end + 1;
  }
  free(text);
  return n;
}

/* a fuzz corpus file: it may be meant not to parse; when it parses it must
 * round-trip */
static int roundtrip_corpus_file(const char *path, bool *seen) {
  char *text = rt_read_file(path, NULL);
  if (!text) return 0;
  ry_graph *g = NULL;
  ry_status s = ry_graph_parse(text, -1, path, &g);
  free(text);
  if (s) {
    ry_status_free(s);
    return 0;
  }
  CHECK_ROUNDTRIP(g);
  mark_ops(g, seen, 0);
  ry_graph_release(g);
  return 1;
}

TEST(optable_every_op_prints_and_parses) {
  bool seen[RY_OP_COUNT] = {0};
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/golden", rt_source_dir());
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  if (!d) return;
  int programs = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (!(len > 7 && !strcmp(e->d_name + len - 7, ".golden")) && !(len > 8 && !strcmp(e->d_name + len - 8, ".tgolden")))
      continue;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    programs += roundtrip_file(path, seen);
  }
  closedir(d);
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/parse", rt_source_dir());
  d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    programs += roundtrip_corpus_file(path, seen);
  }
  if (d) closedir(d);
  CHECK_MSG(programs >= 500, "only %d programs in %s", programs, dir);
  for (int op = 0; op < RY_OP_COUNT; op++)
    CHECK_MSG(seen[op], "op %s occurs in no golden program, so its printing and parsing are untested", ryg_op_table[op].name);
}

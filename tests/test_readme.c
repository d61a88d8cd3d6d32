/* The README's complete examples are files of examples/ verbatim
 * (quickstart.c, xla.c and xla_train.c for "Running on XLA devices",
 * data_parallel.c for "Several processes and hosts (MPI)"; tests/test_dist.c
 * runs that one under mpirun), and
 * the built quickstart (and, with PJRT, xla_train) runs and prints a result. */
#include <stdlib.h>

#include "testlib.h"

/* The first C block after `heading` in the README is examples/<file>. */
static void check_block(const char *heading, const char *file) {
  char p1[1024], p2[1024];
  snprintf(p1, sizeof p1, "%s/README.md", rt_source_dir());
  snprintf(p2, sizeof p2, "%s/examples/%s", rt_source_dir(), file);
  char *readme = rt_read_file(p1, NULL), *ex = rt_read_file(p2, NULL);
  CHECK(readme && ex);
  if (readme && ex) {
    const char *sec = strstr(readme, heading);
    const char *code = sec ? strstr(sec, "```c\n") : NULL;
    CHECK_MSG(code != NULL, "README has no C block under '%s'", heading);
    if (code) CHECK_MSG(strncmp(code + 5, ex, strlen(ex)) == 0, "README's example under '%s' differs from examples/%s", heading, file);
  }
  free(readme);
  free(ex);
}

TEST(readme_example_is_quickstart) {
  check_block("## A complete example", "quickstart.c");
  char path[1024];
  snprintf(path, sizeof path, "%s/README.md", rt_source_dir());
  char *readme = rt_read_file(path, NULL);
  CHECK(readme && strstr(readme, "make run") && strstr(readme, "make test"));
  free(readme);
}

TEST(readme_lm_example_is_a_file) { check_block("## Language models", "lm_generate.c"); }
TEST(readme_mpi_example_is_a_file) { check_block("## Several processes and hosts (MPI)", "data_parallel.c"); }

TEST(readme_lm_train_example_is_a_file) { check_block("### Training a language model", "lm_train.c"); }

TEST(readme_xla_examples_are_files) {
  check_block("## Running on XLA devices", "xla.c");
  check_block("### Arrays that stay on the device", "xla_train.c");
}

static void run_example(const char *cmd_tail, char *out, size_t size, int *rc) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "%s/%s 2>&1", RYFT_BINARY_DIR, cmd_tail);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  *rc = -1;
  out[0] = 0;
  if (!p) return;
  size_t n = fread(out, 1, size - 1, p);
  out[n] = 0;
  *rc = pclose(p);
}

#ifdef RYFT_HAVE_PJRT
TEST(readme_xla_train_runs) {
  char out[16384];
  int rc;
  if (!getenv("RYFT_PJRT_PLUGIN")) setenv("RYFT_PJRT_PLUGIN", RYFT_PJRT_TEST_PLUGIN, 1);
  run_example("example_xla_train", out, sizeof out, &rc);
  CHECK_MSG(rc == 0, "example exited with %d:\n%s", rc, out);
  /* |w - t|^2 = 14 / 4^(k-1), exact in f32 at step 5 */
  CHECK_MSG(strstr(out, "step  5: loss 0.0546875") != NULL, "%s", out);
  CHECK_MSG(strstr(out, "w (on the device): [0.9999") != NULL, "%s", out);
}
#else
/* the PJRT tests (tests/test_pjrt*.c) are not built either: say so */
TEST(readme_xla_train_runs) { rt_skip("pjrt", "ryft was built without the PJRT backend (make test fetches the XLA plugin)"); }
#endif

TEST(readme_jax_model_example) {
  check_block("## Models from JAX", "jax_model.c");
  char out[8192], cmd[1200];
  int rc;
  snprintf(cmd, sizeof cmd, "example_jax_model %s/tests/data/stablehlo/mlp.mlir", rt_source_dir());
  run_example(cmd, out, sizeof out, &rc);
  CHECK_MSG(rc == 0, "example exited with %d:\n%s", rc, out);
  const char *a = strstr(out, "step   0: loss "), *b = strstr(out, "step 200: loss ");
  CHECK_MSG(a && b, "%s", out);
  if (a && b) CHECK_MSG(atof(b + 15) < 0.1 * atof(a + 15), "SGD did not train the imported model:\n%s", out);
}

TEST(readme_example_runs) {
  char out[8192];
  int rc;
  run_example("example_quickstart", out, sizeof out, &rc);
  CHECK_MSG(rc == 0, "example exited with %d:\n%s", rc, out);
  CHECK(strstr(out, "func @main(%x: f32[2,4], %w: f32[4,3])") != NULL);
  CHECK(strstr(out, "result:") != NULL);
}

TEST(readme_tokenizer_example) {
  check_block("### Tokenizer", "tokenize.c");
  char out[16384], tail[1200];
  int rc;
  snprintf(tail, sizeof tail, "example_tokenize %s/tests/data/tokenizer/tiny_bpe_smollm.gguf 'Hi 123!'", rt_source_dir());
  run_example(tail, out, sizeof out, &rc);
  CHECK_MSG(rc == 0, "example exited with %d:\n%s", rc, out);
  /* the ChatML prompt comes back whole from the stream decoder */
  CHECK_MSG(strstr(out, "<|im_start|>user\nHi 123!<|im_end|>\n<|im_start|>assistant\n") != NULL, "%s", out);
  CHECK_MSG(strstr(out, " tokens: 1 ") != NULL, "%s", out);
}

TEST(readme_lm_example_runs) {
  const char *model = rt_smollm2_path();
  if (!model) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  char out[8192], tail[1200];
  int rc;
  snprintf(tail, sizeof tail, "example_lm_generate '%s'", model);
  run_example(tail, out, sizeof out, &rc);
  CHECK_MSG(rc == 0 && strstr(out, "The capital of France is Paris.") != NULL, "status %d:\n%s", rc, out);
}

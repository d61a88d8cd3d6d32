/* The README's complete example is examples/quickstart.c verbatim, and the
 * built example runs and prints a result. */
#include <stdlib.h>

#include "testlib.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

TEST(readme_example_is_quickstart) {
  char p1[1024], p2[1024];
  snprintf(p1, sizeof p1, "%s/README.md", rt_source_dir());
  snprintf(p2, sizeof p2, "%s/examples/quickstart.c", rt_source_dir());
  char *readme = slurp(p1), *ex = slurp(p2);
  CHECK(readme && ex);
  if (readme && ex) {
    const char *sec = strstr(readme, "## A complete example");
    const char *code = sec ? strstr(sec, "```c\n") : NULL;
    CHECK_MSG(code != NULL, "README has no C block under '## A complete example'");
    if (code) CHECK_MSG(strncmp(code + 5, ex, strlen(ex)) == 0, "README's example differs from examples/quickstart.c");
    CHECK(strstr(readme, "make run") && strstr(readme, "make test"));
  }
  free(readme);
  free(ex);
}

TEST(readme_example_runs) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s/example_quickstart 2>&1", RYFT_BINARY_DIR);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  char out[8192];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int rc = pclose(p);
  CHECK_MSG(rc == 0, "example exited with %d:\n%s", rc, out);
  CHECK(strstr(out, "func @main(%x: f32[2,4], %w: f32[4,3])") != NULL);
  CHECK(strstr(out, "result:") != NULL);
}

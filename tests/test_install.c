/* Installing: `cmake --install` into a temporary prefix, the prefix moved
 * elsewhere (an installed tree is relocatable), then a user's program
 * (examples/quickstart.c) built against it both ways the README documents:
 * pkg-config (`pkg-config --cflags --libs ryft`, with the library's
 * directory as the program's run path) and CMake (`find_package(ryft)` with
 * the targets ryft::ryft and ryft::ryft_static). Each program must run and
 * print its result. The programs are built with the suite's compiler and,
 * in the sanitizer build, its sanitizer flags (the library needs their
 * runtime). */
#include <ctype.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

/* run a shell command, its output into out; the exit status */
static int sh_out(char *out, size_t size, const char *cmd) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, size - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have(const char *tool) {
  char cmd[256], out[256];
  snprintf(cmd, sizeof cmd, "command -v %s 2>/dev/null", tool);
  return sh_out(out, sizeof out, cmd) == 0 && out[0];
}

TEST(install_relocated_prefix_pkgconfig_and_cmake) {
  if (!have("cmake")) {
    rt_skip("cmake", "cmake is not installed");
    return;
  }
  if (!have("pkg-config")) {
    rt_skip("pkg-config", "pkg-config is not installed (apt-get install pkgconf)");
    return;
  }
  static char out[65536], cmd[8192];
  char root[1100], moved[1200], pc[1300];
  snprintf(root, sizeof root, "%s", rt_tmp_path("install", "root"));
  snprintf(moved, sizeof moved, "%s/moved", root);
  snprintf(pc, sizeof pc, "PKG_CONFIG_PATH=%s/%s/pkgconfig", moved, RYFT_INSTALL_LIBDIR);
  /* install to one prefix, then move the tree */
  snprintf(cmd, sizeof cmd,
           "rm -rf '%s' && mkdir -p '%s' && cmake --install '%s' --prefix '%s/first' >/dev/null 2>&1 && "
           "mv '%s/first' '%s' && echo installed",
           root, root, RYFT_BINARY_DIR, root, root, moved);
  int rc = sh_out(out, sizeof out, cmd);
  CHECK_MSG(rc == 0 && strstr(out, "installed"), "install failed (%d): %s", rc, out);
  if (rc) return;

  /* pkg-config: paths under the moved prefix, and a program that builds and runs */
  snprintf(cmd, sizeof cmd, "%s pkg-config --cflags --libs ryft 2>&1", pc);
  rc = sh_out(out, sizeof out, cmd);
  CHECK_MSG(rc == 0, "pkg-config: %s", out);
  CHECK_MSG(strstr(out, "moved/") && strstr(out, "/include") && strstr(out, "-lryft"), "pkg-config --cflags --libs: %s", out);
  snprintf(cmd, sizeof cmd,
           "cd '%s' && '%s' %s -o prog_pc '%s/examples/quickstart.c' $(%s pkg-config --cflags --libs ryft) "
           "-Wl,-rpath,$(%s pkg-config --variable=libdir ryft) 2>&1 && ./prog_pc 2>&1",
           root, RYFT_TEST_CC, RYFT_TEST_CFLAGS, rt_source_dir(), pc, pc);
  rc = sh_out(out, sizeof out, cmd);
  CHECK_MSG(rc == 0 && strstr(out, "result:"), "pkg-config build or run failed (%d):\n%s", rc, out);
  /* the program really uses the installed shared library */
  snprintf(cmd, sizeof cmd, "cd '%s' && ldd ./prog_pc 2>&1", root);
  rc = sh_out(out, sizeof out, cmd);
  CHECK_MSG(strstr(out, "moved/") && strstr(out, "libryft.so"), "ldd prog_pc:\n%s", out);

  /* CMake: find_package(ryft) from the moved prefix, shared and static targets */
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s/user' && cd '%s/user' && cp '%s/examples/quickstart.c' main.c && "
           "printf 'cmake_minimum_required(VERSION 3.16)\\nproject(user C)\\nfind_package(ryft 0.1 REQUIRED)\\n"
           "add_executable(prog_shared main.c)\\ntarget_link_libraries(prog_shared PRIVATE ryft::ryft)\\n"
           "add_executable(prog_static main.c)\\ntarget_link_libraries(prog_static PRIVATE ryft::ryft_static)\\n' > CMakeLists.txt && "
           "cmake -S . -B b -DCMAKE_PREFIX_PATH='%s' -DCMAKE_C_COMPILER='%s' -DCMAKE_C_FLAGS='%s' >/dev/null 2>&1 && "
           "cmake --build b >/dev/null 2>&1 && ./b/prog_shared && ./b/prog_static && ldd ./b/prog_shared",
           root, root, rt_source_dir(), moved, RYFT_TEST_CC, RYFT_TEST_CFLAGS);
  rc = sh_out(out, sizeof out, cmd);
  CHECK_MSG(rc == 0, "find_package build or run failed (%d):\n%s", rc, out);
  int results = 0;
  for (const char *p = out; (p = strstr(p, "result:")); p++) results++;
  CHECK_MSG(results == 2, "expected both programs to print a result:\n%s", out);
  CHECK_MSG(strstr(out, "moved/") && strstr(out, "libryft.so"), "prog_shared does not use the installed library:\n%s", out);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK_EQ_INT(system(cmd), 0);
}

/* word-boundary search: `name` as a whole identifier in `text` */
static int has_ident(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    int after = isalnum((unsigned char)p[n]) || p[n] == '_';
    if (!before && !after) return 1;
  }
  return 0;
}

/* The library is built with hidden visibility: libryft.so exports exactly
 * the functions that the headers in include/ryft mark RY_API, nothing internal. Every
 * exported symbol must be a ry_* name the public headers spell, and every
 * name declared RY_API must be exported (a definition that does not see its
 * declaration would silently be hidden). Names the sanitizers' instrumentation
 * adds (they start with "__") are not ryft's. */
TEST(exported_symbols_are_the_public_api) {
  if (!have("nm")) {
    rt_skip("nm", "nm (binutils) is not installed");
    return;
  }
  static char headers[1 << 20], cmd[2048];
  size_t len = 0;
  snprintf(cmd, sizeof cmd, "cat '%s'/include/ryft/*.h", RYFT_SOURCE_DIR);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  len = fread(headers, 1, sizeof headers - 1, p);
  headers[len] = 0;
  pclose(p);
  CHECK(len > 0 && len < sizeof headers - 1);

  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s/libryft.so' | awk '{print $3}'", RYFT_BINARY_DIR);
  p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  int exported = 0, stray = 0;
  char exports[1 << 15];
  size_t elen = 0;
  exports[0] = 0;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0] || !strncmp(line, "__", 2)) continue;
    exported++;
    if (strncmp(line, "ry_", 3) || !has_ident(headers, line)) {
      CHECK_MSG(0, "libryft.so exports %s, which no public header declares", line);
      stray++;
    }
    size_t n = strlen(line);
    if (elen + n + 2 < sizeof exports) {
      exports[elen++] = ' ';
      memcpy(exports + elen, line, n + 1);
      elen += n;
    }
  }
  pclose(p);
  CHECK_MSG(exported > 300, "only %d exported symbols", exported);
  CHECK(stray == 0);

  /* every RY_API declaration names an exported function */
  int declared = 0;
  for (const char *q = strstr(headers, "RY_API "); q; q = strstr(q + 1, "RY_API ")) {
    const char *paren = strchr(q, '(');
    const char *nl = strchr(q, '\n');
    if (!paren || (nl && nl < paren)) continue; /* the #define itself */
    const char *e = paren;
    while (e > q && isspace((unsigned char)e[-1])) e--;
    const char *s = e;
    while (s > q && (isalnum((unsigned char)s[-1]) || s[-1] == '_')) s--;
    char name[128];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof name || strncmp(s, "ry_", 3)) continue; /* the X-macro declarators */
    memcpy(name, s, n);
    name[n] = 0;
    declared++;
    CHECK_MSG(has_ident(exports, name), "%s is declared RY_API but libryft.so does not export it", name);
  }
  CHECK_MSG(declared > 300, "only %d RY_API declarations found", declared);
}

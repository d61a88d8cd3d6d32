/* A small test framework: TEST(name) registers a case; CHECK* record
 * failures and continue; the runner (runner.c) prints
 * "N passed, M failed, K skipped".
 * Tests may also open cases dynamically (rt_case_begin/rt_case_end), which the
 * golden harness does for every case in the data files. */
#ifndef RYFT_TESTLIB_H
#define RYFT_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ryft/ryft.h"

typedef void (*rt_fn)(void);
void rt_register(const char *name, rt_fn fn, const char *file);
void rt_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Dynamic cases inside a TEST: each begin/end pair counts as one case. */
void rt_case_begin(const char *name);
void rt_case_end(void);
int rt_failures_in_case(void);
/* Marks the current test (or dynamic case) as skipped: it counts as skipped,
 * never as passed, and the runner prints the reason. `need` names the missing
 * prerequisite ("pjrt", "fashion-mnist", "cc", "smollm2", ...). When the
 * environment variable RYFT_TEST_REQUIRE lists `need` (comma-separated, or
 * "all"), the skip is a failure instead: CI sets it for everything it installs,
 * so a test that silently stopped running turns CI red. Returns 1 when the
 * test should stop (always), so `if (!dev) { rt_skip(...); return; }` reads
 * naturally. */
int rt_skip(const char *need, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *rt_source_dir(void); /* the repository root */
/* The SmolLM2-135M-Instruct GGUF: $RYFT_TEST_SMOLLM2, else `make model`'s
 * build/models/ (of this build or of the source tree's build); NULL when
 * absent (then rt_skip("smollm2", ...)). */
const char *rt_smollm2_path(void);
/* Files for tests: a whole file into a new NUL-terminated buffer (free(); len
 * may be NULL), NULL on error; bytes into a file; a scratch path
 * BUILD/test_tmp/<prefix>_<pid>_<name> (4 rotating buffers). */
char *rt_read_file(const char *path, size_t *len);
/* dir/prog*.<suffix> with the highest number (a RYFT_DUMP stage), or NULL */
char *rt_read_dump(const char *dir, const char *suffix);
void rt_write_bytes(const char *path, const void *data, size_t n);
const char *rt_tmp_path(const char *prefix, const char *name);
/* Run a shell command line (printf-style), its stdout and stderr into
 * out[size] (NUL-terminated, cut at size - 1); returns the exit status (128
 * when it did not exit normally, -1 when it could not start). */
int rt_sh(char *out, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Out-of-memory tests: after rt_oom_arm(k), ryft's allocator (ry_set_allocator)
 * fails the k-th allocation from now (0-based) and, when `all_after`, every
 * later one too. rt_oom_disarm() restores the default allocator and returns
 * the bytes still allocated from while it was armed: after the operation has
 * released what it returned, anything left is a leak. rt_oom_failed() says
 * whether an allocation was refused (0: the budget was never reached). */
void rt_oom_arm(long k, int all_after);
long long rt_oom_disarm(void);
int rt_oom_failed(void);
long long rt_oom_live(void); /* bytes allocated and not freed since rt_oom_arm */

/* print(g), parse it back, print again: the two texts must be identical and
 * the reparsed graph must verify. Failures are recorded; NULL g is ignored. */
void rt_check_roundtrip(const char *file, int line, ry_graph *g);
#define CHECK_ROUNDTRIP(g) rt_check_roundtrip(__FILE__, __LINE__, (g))

#define RT_CAT2(a, b) a##b
#define RT_CAT(a, b) RT_CAT2(a, b)
#define TEST(name)                                                              \
  static void name(void);                                                       \
  __attribute__((constructor)) static void RT_CAT(rt_reg_, name)(void) {        \
    rt_register(#name, name, __FILE__);                                         \
  }                                                                             \
  static void name(void)

#define CHECK(cond)                                      \
  do {                                                   \
    if (!(cond)) rt_fail(__FILE__, __LINE__, "%s", #cond); \
  } while (0)
#define CHECK_MSG(cond, ...)                                \
  do {                                                      \
    if (!(cond)) rt_fail(__FILE__, __LINE__, __VA_ARGS__);  \
  } while (0)
#define CHECK_EQ_INT(a, b)                                                                        \
  do {                                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                                           \
    if (a_ != b_) rt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);          \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                                     \
  do {                                                                                            \
    double a_ = (a), b_ = (b);                                                                    \
    if (!(fabs(a_ - b_) <= (tol))) rt_fail(__FILE__, __LINE__, "%s ~ %s: %.17g vs %.17g", #a, #b, a_, b_); \
  } while (0)
#define CHECK_STR(a, b)                                                                           \
  do {                                                                                            \
    const char *a_ = (a), *b_ = (b);                                                              \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                        \
      rt_fail(__FILE__, __LINE__, "%s == %s:\n  got:  %s\n  want: %s", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
  } while (0)
/* A status must be success; frees it. */
#define CHECK_OK(expr)                                                                            \
  do {                                                                                            \
    ry_status s_ = (expr);                                                                        \
    if (s_) rt_fail(__FILE__, __LINE__, "%s failed: %s", #expr, ry_status_message(s_));           \
    ry_status_free(s_);                                                                           \
  } while (0)
/* A status must be an error with `code` whose message contains every
 * NULL-terminated keyword; frees it. */
void rt_check_err(const char *file, int line, const char *expr, ry_status s, ry_code code, ...);
#define CHECK_ERR(expr, code, ...) rt_check_err(__FILE__, __LINE__, #expr, (expr), (code), __VA_ARGS__, (const char *)NULL)

#endif

/* The StableHLO conformance runner (conformance.c): every module of a
 * StableHLO checkout's stablehlo/tests/interpret suite (third-party text,
 * read in place, never committed) imported with its check.* ops, run on
 * interp and cpu, and reported as a markdown table. */
#ifndef RYFT_TESTS_CONFORMANCE_H
#define RYFT_TESTS_CONFORMANCE_H
#include <stdio.h>

typedef struct conf_stats {
  int files, modules, passed, failed, unsupported;
} conf_stats;

/* root: the checkout (holding stablehlo/tests/interpret). Writes the report
 * to md (may be NULL); 0 on success, -1 when the suite cannot be read. */
int conformance_run(const char *root, FILE *md, conf_stats *st);
#endif

/* The golden-suite harness (test_golden.c), for every backend's tests: runs
 * every case of tests/golden/ (the .golden files) on the named device, one test case
 * each (named "golden/<case>@<device>"), and returns how many ran. */
#ifndef RYFT_TESTS_GOLDEN_H
#define RYFT_TESTS_GOLDEN_H
#include <stddef.h>

#include "ryft/core.h"

int golden_run_all(const char *device_name);
/* The same cases, each program exported to StableHLO and imported back
 * (test_stablehlo_import.c checks the round trip in
 * golden_stablehlo_round_trip: 0 imported, 1 refused as unsupported, -1 failed). */
int golden_run_all_stablehlo(const char *device_name);
typedef struct ry_graph ry_graph;
int golden_stablehlo_round_trip(const char *name, const ry_graph *g, ry_graph **out);
/* The JAX-lowered corpus (tests/data/stablehlo): import, run, ry_grad and
 * ry_vmap on the device against JAX; returns the number of cases. */
int jax_corpus_run(const char *device_name);
/* A whole file into a new NUL-terminated buffer (free()), NULL on error. */
char *golden_read_file(const char *path, size_t *len);
/* "f32[3] 0000803f..." (FORMAT.md) into a new array; NULL when malformed. */
ry_array *golden_parse_array(const char *line);
#endif

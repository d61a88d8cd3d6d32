/* jit.h - the C compiler driver: the memory and disk cache of compiled
 * modules, the loader. */
#ifndef RYFT_BACKEND_CPU_JIT_H
#define RYFT_BACKEND_CPU_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dump.h"

/* ---- compiler driver and cache (jit.c) ---- */
/* sh -c cmd (posix_spawn): its exit status, -1 when it could not run */
int ryc_run_sh(const char *cmd);
/* s single-quoted for sh into out */
void ryc_shquote(const char *s, char *out, size_t size);
uint64_t ryc_fnv(const void *p, size_t n, uint64_t h); /* FNV-1a over n bytes from h */
/* The disk cache directory (created 0700 where missing) as a canonical path
 * in dir; false when it is not trusted (said once on stderr unless quiet). */
bool ryc_cache_dir_trusted(char *dir, size_t size, bool quiet);
/* Codegen ends the prelude with RYC_PRELUDE_END and puts RYC_SPLIT before
 * each top-level kernel function; the driver may cut a big module at a
 * RYC_SPLIT to compile its halves in parallel, each with the prelude. */
#define RYC_PRELUDE_END "\n/* ryc:end of prelude */\n"
#define RYC_SPLIT "\n/* ryc:split */\n"
typedef struct ryc_module ryc_module;
/* True when a C compiler runs here (checked once per process). */
bool ryc_have_compiler(void);
/* Compile `src` (or find it in the memory / disk cache) and load it. */
ry_status ryc_module_get(const char *src, size_t len, const ryc_dump *d, ryc_module **out);
/* The same lookup without the compiler: the memory or disk cache's module
 * in *out, or NULL on a miss (nothing compiled, nothing reported). */
ry_status ryc_module_find(const char *src, size_t len, ryc_module **out);
/* How many compiler processes a compile of src runs at once (1, or 2 for a
 * module cut in halves). */
int ryc_module_processes(const char *src, size_t len);
void *ryc_module_sym(ryc_module *m, const char *name);
void ryc_module_release(ryc_module *m);
/* Statistics for tests: live modules held in memory, disk hits, compiles
 * (split: of them, compiled as two halves at once), bad entries rebuilt,
 * lookups that found the cache directory untrusted. */
typedef struct ryc_cache_stats {
  int live_modules;
  long mem_hits, disk_hits, compiles, split, corrupt, untrusted;
} ryc_cache_stats;
void ryc_cache_stats_get(ryc_cache_stats *s);
/* The configured cache directory ($RYFT_CACHE_DIR, $XDG_CACHE_HOME/ryft,
 * ~/.cache/ryft, else $TMPDIR-or-/tmp/ryft-cache-<euid>), before the trust
 * check of jit.c that decides whether it is used. */
void ryc_cache_dir(char *buf, size_t size);
/* Drop idle modules from the memory cache (tests). */
void ryc_cache_trim(void);

#endif

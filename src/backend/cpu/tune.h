/* tune.h - choices the cpu backend makes per machine by measurement. */
#ifndef RYFT_BACKEND_CPU_TUNE_H
#define RYFT_BACKEND_CPU_TUNE_H

#include <stdbool.h>
#include <stdio.h>

/* The vector width (256 or 512 bits) for gcc's -mprefer-vector-width on
 * this machine, or 0 to leave the compiler's default (no AVX-512, or the
 * probe could not be compiled). RYFT_VECTOR_WIDTH=256|512 chooses; else the
 * answer is read from the trusted cache directory (tune-<key>.txt, the key
 * hashing the CPU model and flags, the compiler and cflags) or measured
 * once: a probe module of generated-style loops (gelu through the prelude's
 * erf, a softmax through its exp) compiled both ways and timed in
 * alternation on 16 MB, 512 chosen only when it is at least 10% faster. *measured (may be NULL)
 * says whether this call measured. */
int ryc_tune_vector_width(const char *cc, const char *cflags, const char *ccver, bool *measured);

/* The width a tune file read from f names: the first line that reads
 * `vector_width 256` or `vector_width 512`; other lines, such as the `#`
 * line ryft writes above it, are skipped, one longer than the 511 bytes read
 * at a time skipped whole. 0 when none does, so that the caller measures
 * again. Any contents are safe (tests/fuzz/fuzz_tune.c). */
int ryc_tune_parse(FILE *f);

#endif

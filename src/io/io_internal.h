/* Helpers shared by the file readers and writers of src/io/. */
#ifndef RYFT_IO_INTERNAL_H
#define RYFT_IO_INTERNAL_H

#include <stddef.h>

#include "core/internal.h"

/* Read a whole file into a new buffer (free with ry__free(buf, size + 1); a
 * NUL follows the data). Errors name the file. */
ry_status ry__read_file(const char *path, unsigned char **buf, size_t *size);

/* Atomic writer: ry__atomic_open makes "<path>.tmp.<pid>" next to path;
 * write with ry__atomic_write; ry__atomic_commit flushes, fsyncs, closes
 * and renames over path (then fsyncs the directory); ry__atomic_abort closes
 * and removes the temp file. Errors name the final path. */
typedef struct ry_atomic_file {
  void *fp;          /* FILE* */
  char path[1024];   /* final */
  char tmp[1100];    /* temporary */
  size_t written;
} ry_atomic_file;
ry_status ry__atomic_open(ry_atomic_file *f, const char *path);
ry_status ry__atomic_write(ry_atomic_file *f, const void *data, size_t n);
ry_status ry__atomic_commit(ry_atomic_file *f);
void ry__atomic_abort(ry_atomic_file *f);

/* Test hook: when set, called after every ry__atomic_write with the bytes
 * written so far; a non-NULL status fails the write (the temp file is then
 * removed). Tests use it to simulate a failure or a kill mid-write. */
extern ry_status (*ry__atomic_write_hook)(const char *final_path, size_t written);

/* Whether g's bytes are ry_gguf_open's read-only private mapping of its
 * file (not a caller's memory, as with ry_gguf_parse). */
struct ry_gguf;
bool ry__gguf_mapped(const struct ry_gguf *g);

#endif

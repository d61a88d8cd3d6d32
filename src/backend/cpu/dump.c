/* RYFT_DUMP=dir: every stage of every program the cpu backend compiles,
 * written to dir/progNNN.<stage>. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dump.h"

static atomic_int g_dump_seq;

void ryc_dump_init(ryc_dump *d) {
  const char *dir = getenv("RYFT_DUMP");
  d->dir[0] = 0;
  if (!dir || !*dir) return;
  snprintf(d->dir, sizeof d->dir, "%s", dir);
  d->seq = atomic_fetch_add(&g_dump_seq, 1);
}

FILE *ryc_dump_open(const ryc_dump *d, const char *stage) {
  if (!d || !d->dir[0]) return NULL;
  char path[1024];
  snprintf(path, sizeof path, "%s/prog%03d.%s", d->dir, d->seq, stage);
  FILE *f = fopen(path, "a");
  if (!f) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "%s", d->dir);
    /* create the directory once (one level is enough for RYFT_DUMP) */
    if (mkdir(cmd, 0755) == 0) f = fopen(path, "a");
  }
  return f;
}

void ryc_dump_graph(const ryc_dump *d, const char *stage, const ry_graph *g) {
  FILE *f = ryc_dump_open(d, stage);
  if (!f) return;
  ry_status s = ry_graph_print(g, f);
  if (s) {
    fprintf(f, "# print failed: %s\n", ry_status_message(s));
    ry_status_free(s);
  }
  fclose(f);
}

void ryc_dump_text(const ryc_dump *d, const char *stage, const char *text) {
  FILE *f = ryc_dump_open(d, stage);
  if (!f) return;
  fputs(text ? text : "", f);
  fclose(f);
}

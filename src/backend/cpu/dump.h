/* dump.h - RYFT_DUMP=dir: every stage of every program written to dir. */
#ifndef RYFT_BACKEND_CPU_DUMP_H
#define RYFT_BACKEND_CPU_DUMP_H

#include <stdio.h>
#include "../../ir/graph.h"

/* ---- dump (dump.c): RYFT_DUMP=dir ---- */
typedef struct ryc_dump {
  char dir[768]; /* empty: no dump */
  int seq;       /* program number in this process */
} ryc_dump;
/* Open dir/<prog>.<stage> for writing; NULL when not dumping. */
FILE *ryc_dump_open(const ryc_dump *d, const char *stage);
void ryc_dump_graph(const ryc_dump *d, const char *stage, const ry_graph *g);

/* Set d from $RYFT_DUMP for the next program (numbered in this process). */
void ryc_dump_init(ryc_dump *d);
/* Append text to dir/<prog>.<stage>. */
void ryc_dump_text(const ryc_dump *d, const char *stage, const char *text);

#endif

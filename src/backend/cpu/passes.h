/* passes.h - the graph passes before planning. */
#ifndef RYFT_BACKEND_CPU_PASSES_H
#define RYFT_BACKEND_CPU_PASSES_H

#include "dump.h"

/* ---- passes (passes.c) ---- */
/* Inline calls, simplify, fold constants, CSE, then DCE; a new graph. Each
 * stage is dumped when d is dumping. */
ry_status ryc_optimize(const ry_graph *g, const ryc_dump *d, ry_graph **out);

#endif

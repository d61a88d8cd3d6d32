/* dequant.h - the dequantize op's expansion into integer ops (dequant.c),
 * for the backends that have no kernel of their own for it: the StableHLO
 * emitter writes it as a private function. Bit-identical to the reference
 * dequantizers where the backend does not contract a*b+c into an FMA. */
#ifndef RYFT_NN_DEQUANT_H
#define RYFT_NN_DEQUANT_H

#include "ryft/trace.h"

ry_value ryn_dequantize_expand(ry_builder *b, ry_loc loc, ry_value blocks, int type);

#endif

/* Shorthands of the JVP rules (jvp.c, jvp_array.c): a rule reads its
 * builder, location, primal inputs x, tangents tx and primal outputs y from
 * its ryt_jvp_args `a`; a symbolic-zero tangent has value id 0. */
#ifndef RYFT_JVP_SHORTHAND_H
#define RYFT_JVP_SHORTHAND_H

#include "transform.h"

static inline bool Z(ry_value v) { return v.id == 0; }
static inline ry_type T(ry_builder *b, ry_value v) { return ry_value_type(b, v); }
#define B (a->b)
#define L (a->loc)
#define X(i) (a->x[i])
#define TX(i) (a->tx[i])
#define Y(i) (a->y[i])
#define C(v, c) ry_const_like_(B, L, (v), (c))

#endif

/* The C of every elementwise unary and binary op, one row per op: the only
 * place the cpu backend spells an elementwise op's math. plan.c compiles
 * an op for an operand dtype exactly when its row has a rule for that
 * dtype's class; expr.c expands the rule; tests/test_optable.c fails when an
 * op of ops.def lacks a rule for a class its dtypes allow. XLA's semantics
 * where C's differ come from ../xla_scalar.h (ryx_*), which the generated
 * module holds; ry_expf / ry_erff are the prelude's vectorizable f32 forms (the logistic is
 * xla_scalar.h's formula over ry_expf).
 *
 * A rule is a format: %0 and %1 are the operands' temps, %T the result's C
 * type, %U the unsigned C type of the operand's width, %B its width in bits.
 * Classes: f32 (f16, bf16 and f32, computed in float), f64, integers, bool.
 * NULL: not compiled for that class (the op runs on the interpreter). */
#include "fuse.h"

#define F(f32, f64) {f32, f64, NULL, NULL}
const ryf_ew_rule ryf_ew_rules[RY_OP_COUNT] = {
    /* unary */
    [RY_OP_NEG] = {"-%0", "-%0", "(%T)(0u - (%U)%0)", NULL},
    [RY_OP_ABS] = {"fabsf(%0)", "fabs(%0)", "(%T)(%0 < 0 ? 0u - (%U)%0 : (%U)%0)", NULL},
    [RY_OP_SIGN] = {"ryx_signf(%0)", "ryx_sign(%0)", "(%T)((%0 > 0) - (%0 < 0))", NULL},
    [RY_OP_EXP] = F("ry_expf(%0)", "exp(%0)"),
    [RY_OP_EXP2] = F("exp2f(%0)", "exp2(%0)"),
    [RY_OP_LOG] = F("logf(%0)", "log(%0)"),
    [RY_OP_LOG1P] = F("log1pf(%0)", "log1p(%0)"),
    [RY_OP_EXPM1] = F("expm1f(%0)", "expm1(%0)"),
    [RY_OP_SQRT] = F("sqrtf(%0)", "sqrt(%0)"),
    [RY_OP_RSQRT] = F("1.0f / sqrtf(%0)", "1.0 / sqrt(%0)"),
    [RY_OP_CBRT] = F("cbrtf(%0)", "cbrt(%0)"),
    [RY_OP_SIN] = F("sinf(%0)", "sin(%0)"),
    [RY_OP_COS] = F("cosf(%0)", "cos(%0)"),
    [RY_OP_TAN] = F("tanf(%0)", "tan(%0)"),
    [RY_OP_TANH] = F("tanhf(%0)", "tanh(%0)"),
    [RY_OP_LOGISTIC] = F("ryx_logistic_e(%0, ry_expf(-fabsf(%0)))", "ryx_logistic(%0)"),
    [RY_OP_ERF] = F("ry_erff(%0)", "erf(%0)"),
    [RY_OP_ERF_INV] = F("(float)ryx_erf_inv((double)%0)", "ryx_erf_inv(%0)"),
    [RY_OP_ATANH] = F("atanhf(%0)", "atanh(%0)"),
    [RY_OP_FLOOR] = F("floorf(%0)", "floor(%0)"),
    [RY_OP_CEIL] = F("ceilf(%0)", "ceil(%0)"),
    [RY_OP_ROUND] = F("roundf(%0)", "round(%0)"),
    [RY_OP_ROUND_EVEN] = F("rintf(%0)", "rint(%0)"),
    [RY_OP_IS_FINITE] = F("isfinite(%0) != 0", "isfinite(%0) != 0"),
    [RY_OP_NOT] = {NULL, NULL, "(%T)~%0", "!%0"},
    [RY_OP_POPCNT] = {NULL, NULL, "(%T)__builtin_popcountll(ryx_zext((uint64_t)(int64_t)%0, %B))", NULL},
    [RY_OP_CLZ] = {NULL, NULL, "(%T)ryx_clz(ryx_zext((uint64_t)(int64_t)%0, %B), %B)", NULL},
    /* binary */
    [RY_OP_ADD] = {"%0 + %1", "%0 + %1", "(%T)((%U)%0 + (%U)%1)", NULL},
    [RY_OP_SUB] = {"%0 - %1", "%0 - %1", "(%T)((%U)%0 - (%U)%1)", NULL},
    [RY_OP_MUL] = {"%0 * %1", "%0 * %1", "(%T)((%U)%0 * (%U)%1)", NULL},
    [RY_OP_DIV] = {"%0 / %1", "%0 / %1", "(%T)((%T)-1 > 0 ? (int64_t)ryx_udiv(%0, %1) : ryx_idiv(%0, %1))", NULL},
    [RY_OP_REM] = {"fmodf(%0, %1)", "fmod(%0, %1)", "(%T)((%T)-1 > 0 ? (int64_t)ryx_urem(%0, %1) : ryx_irem(%0, %1))", NULL},
    [RY_OP_POW] = {"powf(%0, %1)", "pow(%0, %1)", "(%T)ryx_ipow(%0, %1)", NULL},
    [RY_OP_MAX] = {"ryx_fmaxf(%0, %1)", "ryx_fmax(%0, %1)", "%0 > %1 ? %0 : %1", "%0 > %1 ? %0 : %1"},
    [RY_OP_MIN] = {"ryx_fminf(%0, %1)", "ryx_fmin(%0, %1)", "%0 < %1 ? %0 : %1", "%0 < %1 ? %0 : %1"},
    [RY_OP_ATAN2] = F("atan2f(%0, %1)", "atan2(%0, %1)"),
    [RY_OP_AND] = {NULL, NULL, "(%T)(%0 & %1)", "(%T)(%0 & %1)"},
    [RY_OP_OR] = {NULL, NULL, "(%T)(%0 | %1)", "(%T)(%0 | %1)"},
    [RY_OP_XOR] = {NULL, NULL, "(%T)(%0 ^ %1)", "(%T)(%0 ^ %1)"},
    [RY_OP_SHL] = {NULL, NULL, "(%T)ryx_shl(%0, %1, %B)", NULL},
    [RY_OP_SHR_LOGICAL] = {NULL, NULL, "(%T)ryx_shrl(%0, %1, %B)", NULL},
    [RY_OP_SHR_ARITH] = {NULL, NULL, "(%T)ryx_shra(%0, %1, %B)", NULL},
};
#undef F

/* Ops whose element costs tens of operations (a polynomial or a libm
 * call): a kernel holding one is worth compiling at full optimization even
 * over few elements (loops.c). */
bool ryf_ew_costly(ry_op op) {
  switch (op) {
  case RY_OP_EXP: case RY_OP_EXP2: case RY_OP_LOG: case RY_OP_LOG1P: case RY_OP_EXPM1: case RY_OP_CBRT:
  case RY_OP_SIN: case RY_OP_COS: case RY_OP_TAN: case RY_OP_TANH: case RY_OP_LOGISTIC: case RY_OP_ERF:
  case RY_OP_ERF_INV: case RY_OP_ATANH: case RY_OP_POW: case RY_OP_ATAN2: case RY_OP_REM: return true;
  default: return false;
  }
}

const char *ryf_ew_rule_for(ry_op op, ry_dtype operand) {
  if ((int)op < 0 || op >= RY_OP_COUNT) return NULL;
  const ryf_ew_rule *r = &ryf_ew_rules[op];
  if (operand == RY_F64) return r->f64;
  if (ry_dtype_is_float(operand)) return r->f32;
  if (operand == RY_BOOL) return r->b;
  return r->i;
}

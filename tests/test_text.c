/* The text IR: canonical round trips (parse -> print -> parse -> print) for
 * every op and attribute kind, control flow, calls and constants of every
 * dtype; naming rules of the printer; malformed text refused with RY_ERR_PARSE
 * at the right line:col; verifier errors on hand-broken graphs; and a replay
 * of the fuzz corpus. */
#include <dirent.h>
#include <stdlib.h>
#include <time.h>

#include "ir/graph.h"
#include "testlib.h"

/* ---- helpers ---------------------------------------------------------------- */

/* print(parse(text)); NULL (and a recorded failure) on error. */
static char *reprint(const char *text, const char *what, int line) {
  ry_graph *g = NULL;
  ry_status s = ry_graph_parse(text, -1, what, &g);
  if (s) {
    rt_fail(__FILE__, line, "%s: parse failed: %s", what, ry_status_message(s));
    ry_status_free(s);
    return NULL;
  }
  char *out = NULL;
  s = ry_graph_to_string(g, &out);
  if (s) {
    rt_fail(__FILE__, line, "%s: print failed: %s", what, ry_status_message(s));
    ry_status_free(s);
  }
  ry_graph_release(g);
  return out;
}

/* text must be canonical: print(parse(text)) == text, and printing is a fixed point. */
static void check_canonical_(const char *text, const char *what, int line) {
  char *a = reprint(text, what, line);
  if (!a) return;
  if (strcmp(a, text) != 0) rt_fail(__FILE__, line, "%s: not canonical:\n--- got ---\n%s--- want ---\n%s", what, a, text);
  char *b = reprint(a, what, line);
  if (b && strcmp(a, b) != 0) rt_fail(__FILE__, line, "%s: second print differs:\n%s\nvs\n%s", what, a, b);
  ry_free(a);
  ry_free(b);
}
#define CHECK_CANONICAL(text) check_canonical_((text), #text, __LINE__)

/* print(parse(text)) == want, and want is canonical. */
static void check_prints_as_(const char *text, const char *want, int line) {
  char *a = reprint(text, "input", line);
  if (!a) return;
  if (strcmp(a, want) != 0) rt_fail(__FILE__, line, "prints as:\n%s--- want ---\n%s", a, want);
  ry_free(a);
  check_canonical_(want, "expected", line);
}
#define CHECK_PRINTS_AS(text, want) check_prints_as_((text), (want), __LINE__)

static ry_status parse(const char *text) {
  ry_graph *g = NULL;
  ry_status s = ry_graph_parse(text, -1, "t.ir", &g);
  ry_graph_release(g);
  return s;
}

/* ---- round trips --------------------------------------------------------------- */

static const char *k_unary =
    "func @main(%x: f32[2,3], %i: i32[4]) -> (f32[2,3], bool[2,3], i32[4], i32[4]) {\n"
    "  %0: f32[2,3] = neg %x\n"
    "  %1: f32[2,3] = abs %0\n"
    "  %2: f32[2,3] = sign %1\n"
    "  %3: f32[2,3] = exp %2\n"
    "  %4: f32[2,3] = exp2 %3\n"
    "  %5: f32[2,3] = log %4\n"
    "  %6: f32[2,3] = log1p %5\n"
    "  %7: f32[2,3] = expm1 %6\n"
    "  %8: f32[2,3] = sqrt %7\n"
    "  %9: f32[2,3] = rsqrt %8\n"
    "  %10: f32[2,3] = cbrt %9\n"
    "  %11: f32[2,3] = sin %10\n"
    "  %12: f32[2,3] = cos %11\n"
    "  %13: f32[2,3] = tan %12\n"
    "  %14: f32[2,3] = tanh %13\n"
    "  %15: f32[2,3] = logistic %14\n"
    "  %16: f32[2,3] = erf %15\n"
    "  %17: f32[2,3] = erf_inv %16\n"
    "  %18: f32[2,3] = floor %17\n"
    "  %19: f32[2,3] = ceil %18\n"
    "  %20: f32[2,3] = round %19\n"
    "  %21: f32[2,3] = round_even %20\n"
    "  %22: bool[2,3] = is_finite %21\n"
    "  %23: i32[4] = not %i\n"
    "  %24: i32[4] = popcnt %23\n"
    "  %25: i32[4] = abs %24\n"
    "  return %21, %22, %24, %25\n"
    "}\n";

static const char *k_binary =
    "func @main(%a: f32[3], %b: f32[3], %i: i32[3], %j: i32[3], %p: bool[3]) -> (f32[3], i32[3], u32[3], bool[3]) {\n"
    "  %0: f32[3] = add %a, %b\n"
    "  %1: f32[3] = sub %0, %b\n"
    "  %2: f32[3] = mul %1, %a\n"
    "  %3: f32[3] = div %2, %b\n"
    "  %4: f32[3] = rem %3, %a\n"
    "  %5: f32[3] = pow %4, %b\n"
    "  %6: f32[3] = max %5, %a\n"
    "  %7: f32[3] = min %6, %b\n"
    "  %8: f32[3] = atan2 %7, %a\n"
    "  %9: i32[3] = and %i, %j\n"
    "  %10: i32[3] = or %9, %j\n"
    "  %11: i32[3] = xor %10, %i\n"
    "  %12: i32[3] = shift_left %11, %j\n"
    "  %13: i32[3] = shift_right_logical %12, %j\n"
    "  %14: i32[3] = shift_right_arithmetic %13, %j\n"
    "  %15: bool[3] = compare %8, %a {dir=lt}\n"
    "  %16: bool[3] = compare %i, %j {dir=eq}\n"
    "  %17: bool[3] = compare %i, %j {dir=ne}\n"
    "  %18: bool[3] = compare %a, %b {dir=le}\n"
    "  %19: bool[3] = compare %a, %b {dir=gt}\n"
    "  %20: bool[3] = compare %p, %p {dir=ge}\n"
    "  %21: bool[3] = and %15, %p\n"
    "  %22: bool[3] = or %21, %16\n"
    "  %23: bool[3] = xor %22, %17\n"
    "  %24: bool[3] = not %23\n"
    "  %25: f32[3] = select %24, %8, %b\n"
    "  %26: f32[] = constant {value=[0]}\n"
    "  %27: f32[] = constant {value=[1]}\n"
    "  %28: f32[3] = clamp %26, %25, %27\n"
    "  %29: f32[3] = clamp %a, %28, %b\n"
    "  %30: bool[] = constant {value=[true]}\n"
    "  %31: f32[3] = select %30, %29, %a\n"
    "  %32: i32[3] = convert %31\n"
    "  %33: f32[3] = bitcast_convert %14\n"
    "  %34: u32[3] = bitcast_convert %33\n"
    "  %35: bool[3] = and %18, %19\n"
    "  %36: bool[3] = or %35, %20\n"
    "  return %31, %32, %34, %36\n"
    "}\n";

static const char *k_shape =
    "func @main(%x: f32[2,3], %s: f32[], %k: i32[]) -> (f32[5,6], i32[3,4], f32[2,2], f32[0,3], f32[1,2], f32[2,3]) {\n"
    "  %0: f32[4,2,3] = broadcast_in_dim %x {dims=[1, 2]}\n"
    "  %1: f32[6,4] = reshape %0\n"
    "  %2: f32[4,6] = transpose %1 {perm=[1, 0]}\n"
    "  %3: f32[2,3] = slice %2 {start=[0, 1], limit=[4, 6], stride=[2, 2]}\n"
    "  %4: f32[1,2] = dynamic_slice %3, %k, %k {sizes=[1, 2]}\n"
    "  %5: f32[2,3] = dynamic_update_slice %3, %4, %k, %k\n"
    "  %6: f32[4,3] = concatenate %5, %x {dim=0}\n"
    "  %7: f32[5,6] = pad %6, %s {low=[1, 0], high=[0, -1], interior=[0, 2]}\n"
    "  %8: f32[5,6] = reverse %7 {dims=[0, 1]}\n"
    "  %9: i32[3,4] = iota {dim=1}\n"
    "  %10: f32[2,2] = constant {value=[1, 2.5, -0.0, nan]}\n"
    "  %11: f32[0,3] = slice %x {start=[0, 0], limit=[0, 3], stride=[1, 1]}\n"
    "  %12: f32[2,3] = concatenate %x {dim=1}\n"
    "  %13: f32[2,3] = reverse %12 {dims=[]}\n"
    "  return %8, %9, %10, %11, %4, %13\n"
    "}\n";

static const char *k_reduce =
    "func @main(%x: f32[2,3], %m: f32[3,4], %b: bool[4]) -> (f32[2], f32[], f32[3], f32[2,3], bool[], bool[], i32[2], "
    "i64[3], f32[2,3], f32[2,4], f64[2,4]) {\n"
    "  %0: f32[2] = reduce %x {kind=sum, axes=[1]}\n"
    "  %1: f32[] = reduce %x {kind=prod, axes=[0, 1]}\n"
    "  %2: f32[3] = reduce %x {kind=max, axes=[0]}\n"
    "  %3: f32[2,3] = reduce %x {kind=min, axes=[]}\n"
    "  %4: bool[] = reduce %b {kind=and, axes=[0]}\n"
    "  %5: bool[] = reduce %b {kind=or, axes=[0]}\n"
    "  %6: i32[2] = argmax %x {axis=1}\n"
    "  %7: i64[3] = argmin %x {axis=0}\n"
    "  %8: f32[2,3] = cumulative %x {kind=sum, axis=1, reverse=false}\n"
    "  %9: f32[2,3] = cumulative %8 {kind=prod, axis=0, reverse=true}\n"
    "  %10: f32[2,3] = cumulative %9 {kind=max, axis=0, reverse=false}\n"
    "  %11: f32[2,3] = cumulative %10 {kind=min, axis=1, reverse=true}\n"
    "  %12: f32[2,4] = dot_general %x, %m {lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[0]}\n"
    "  %13: f64[2,4] = dot_general %x, %m {lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[0]}\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %11, %12, %13\n"
    "}\n";

static const char *k_index =
    "func @main(%l: f32[1,2,5,5], %r: f32[3,2,3,3], %o: f32[5,3], %i: i32[2,1], %u: f32[2,3], %v: i32[4], %k: u32[2]) -> "
    "(f32[1,3,5,5], f32[2,3], f32[5,3], f32[4], i32[4], u32[2], u32[2], f32[5,3]) {\n"
    "  %0: f32[1,3,5,5] = convolution %l, %r {stride=[1, 1], pad_low=[1, 1], pad_high=[1, 1], lhs_dilation=[1, 1], "
    "rhs_dilation=[1, 1], feature_groups=1, batch_groups=1, input_dims=[0, 1, 2, 3], kernel_dims=[0, 1, 2, 3], "
    "output_dims=[0, 1, 2, 3]}\n"
    "  %1: f32[2,3] = gather %o, %i {offset_dims=[1], collapsed_slice_dims=[0], start_index_map=[0], index_vector_dim=1, "
    "slice_sizes=[1, 3]}\n"
    "  %2: f32[5,3] = scatter %o, %i, %u {update_window_dims=[1], inserted_window_dims=[0], "
    "scatter_dims_to_operand_dims=[0], index_vector_dim=1, kind=add}\n"
    "  %3: f32[5,3] = scatter %o, %i, %u {update_window_dims=[1], inserted_window_dims=[0], "
    "scatter_dims_to_operand_dims=[0], index_vector_dim=1, kind=replace}\n"
    "  %4: f32[4] = convert %v\n"
    "  %5: f32[4], %6: i32[4] = sort %4, %v {dim=0, num_keys=1, descending=false, stable=true}\n"
    "  %7: i32[4] = sort %6 {dim=0, num_keys=1, descending=true, stable=false}\n"
    "  %8: u32[2], %9: u32[2] = threefry2x32 %k, %k, %k, %k\n"
    "  return %0, %1, %2, %5, %7, %8, %9, %3\n"
    "}\n";

static const char *k_scatter_kinds =
    "func @main(%o: i32[5], %i: i32[2,1], %u: i32[2]) -> (i32[5], i32[5], i32[5]) {\n"
    "  %0: i32[5] = scatter %o, %i, %u {update_window_dims=[], inserted_window_dims=[0], "
    "scatter_dims_to_operand_dims=[0], index_vector_dim=1, kind=mul}\n"
    "  %1: i32[5] = scatter %0, %i, %u {update_window_dims=[], inserted_window_dims=[0], "
    "scatter_dims_to_operand_dims=[0], index_vector_dim=1, kind=max}\n"
    "  %2: i32[5] = scatter %1, %i, %u {update_window_dims=[], inserted_window_dims=[0], "
    "scatter_dims_to_operand_dims=[0], index_vector_dim=1, kind=min}\n"
    "  return %0, %1, %2\n"
    "}\n";

/* the example of docs/IR.md */
static const char *k_while =
    "func @main(%n: i32[]) -> (i32[], f32[]) {\n"
    "  %0: i32[] = constant {value=[0]}\n"
    "  %1: f32[] = constant {value=[1]}\n"
    "  %2: i32[], %3: f32[] = while %n, %0, %1 {n_consts=1}\n"
    "    cond (%4: i32[], %5: i32[], %6: f32[]) {\n"
    "      %7: bool[] = compare %5, %4 {dir=lt}\n"
    "      return %7\n"
    "    }\n"
    "    body (%8: i32[], %9: i32[], %10: f32[]) {\n"
    "      %11: i32[] = constant {value=[1]}\n"
    "      %12: i32[] = add %9, %11\n"
    "      %13: f32[] = add %10, %10\n"
    "      return %12, %13\n"
    "    }\n"
    "  return %2, %3\n"
    "}\n";

/* cond with bool and i32 indices, nested regions, zero-result instructions */
static const char *k_cond =
    "func @main(%p: bool[], %i: i32[], %x: f32[2]) -> (f32[2], f32[2]) {\n"
    "  %0: f32[2] = cond %p, %x\n"
    "    branch (%1: f32[2]) {\n"
    "      %2: f32[2] = neg %1\n"
    "      return %2\n"
    "    }\n"
    "    branch (%3: f32[2]) {\n"
    "      %4: i32[] = constant {value=[3]}\n"
    "      %5: i32[], %6: f32[2] = while %4, %3 {n_consts=0}\n"
    "        cond (%7: i32[], %8: f32[2]) {\n"
    "          %9: i32[] = constant {value=[0]}\n"
    "          %10: bool[] = compare %7, %9 {dir=gt}\n"
    "          return %10\n"
    "        }\n"
    "        body (%11: i32[], %12: f32[2]) {\n"
    "          %13: i32[] = constant {value=[1]}\n"
    "          %14: i32[] = sub %11, %13\n"
    "          %15: f32[2] = add %12, %12\n"
    "          return %14, %15\n"
    "        }\n"
    "      return %6\n"
    "    }\n"
    "  %16: f32[2] = cond %i, %0, %x\n"
    "    branch (%17: f32[2], %18: f32[2]) {\n"
    "      return %17\n"
    "    }\n"
    "    branch (%19: f32[2], %20: f32[2]) {\n"
    "      return %20\n"
    "    }\n"
    "    branch (%21: f32[2], %22: f32[2]) {\n"
    "      %23: f32[2] = mul %21, %22\n"
    "      return %23\n"
    "    }\n"
    "  cond %i\n"
    "    branch () {\n"
    "      return\n"
    "    }\n"
    "  custom_call %x {target=\"log\\tit \\\"now\\\"\\\\\\x01\"}\n"
    "  return %0, %16\n"
    "}\n";

static const char *k_calls =
    "func @sq(%x: f32[3]) -> (f32[3]) {\n"
    "  %0: f32[3] = mul %x, %x\n"
    "  return %0\n"
    "}\n"
    "\n"
    "func @twice(%x: f32[3]) -> (f32[3]) {\n"
    "  %0: f32[3] = call %x {callee=@sq}\n"
    "  %1: f32[3] = call %0 {callee=@sq}\n"
    "  return %1\n"
    "}\n"
    "\n"
    "func @nothing() -> () {\n"
    "  return\n"
    "}\n"
    "\n"
    "func @main(%x: f32[3]) -> (f32[3], f32[3], f32[], i32[2]) {\n"
    "  %0: f32[3] = call %x {callee=@twice}\n"
    "  %1: f32[3] = call %0 {callee=@sq}\n"
    "  call {callee=@nothing}\n"
    "  %2: f32[], %3: i32[2] = custom_call %x, %1 {target=\"my.fn\"}\n"
    "  return %0, %1, %2, %3\n"
    "}\n";

/* scan (IR.md does not document it yet: see the report) */
static const char *k_scan =
    "func @main(%c: f32[], %h: f32[2], %xs: f32[3,2]) -> (f32[2], f32[3,2], i32[], i32[0,4]) {\n"
    "  %0: f32[2], %1: f32[3,2] = scan %c, %h, %xs {length=3, n_consts=1, n_carry=1, reverse=false}\n"
    "    body (%2: f32[], %3: f32[2], %4: f32[2]) {\n"
    "      %5: f32[2] = add %3, %4\n"
    "      %6: f32[2] = broadcast_in_dim %2 {dims=[]}\n"
    "      %7: f32[2] = mul %5, %6\n"
    "      return %5, %7\n"
    "    }\n"
    "  %8: i32[] = constant {value=[0]}\n"
    "  %9: i32[], %10: i32[0,4] = scan %8 {length=0, n_consts=0, n_carry=1, reverse=true}\n"
    "    body (%11: i32[]) {\n"
    "      %12: i32[4] = iota {dim=0}\n"
    "      return %11, %12\n"
    "    }\n"
    "  return %0, %1, %9, %10\n"
    "}\n";

/* calls carrying differentiation rules and a remat policy */
static const char *k_call_rules =
    "func @f(%x: f32[3]) -> (f32[3]) {\n"
    "  %0: f32[3] = sin %x\n"
    "  return %0\n"
    "}\n"
    "\n"
    "func @f_jvp(%x: f32[3], %t: f32[3]) -> (f32[3], f32[3]) {\n"
    "  %0: f32[3] = sin %x\n"
    "  %1: f32[3] = cos %x\n"
    "  %2: f32[3] = mul %1, %t\n"
    "  return %0, %2\n"
    "}\n"
    "\n"
    "func @f_fwd(%x: f32[3]) -> (f32[3], f32[3]) {\n"
    "  %0: f32[3] = sin %x\n"
    "  %1: f32[3] = cos %x\n"
    "  return %0, %1\n"
    "}\n"
    "\n"
    "func @f_bwd(%r: f32[3], %ct: f32[3]) -> (f32[3]) {\n"
    "  %0: f32[3] = mul %r, %ct\n"
    "  return %0\n"
    "}\n"
    "\n"
    "func @main(%x: f32[3]) -> (f32[3], f32[3], f32[3]) {\n"
    "  %0: f32[3] = call %x {callee=@f, jvp=@f_jvp}\n"
    "  %1: f32[3] = call %x {callee=@f, fwd=@f_fwd, bwd=@f_bwd}\n"
    "  %2: f32[3] = call %x {callee=@f, remat=2}\n"
    "  return %0, %1, %2\n"
    "}\n";

static const char *k_constants =
    "func @main() -> (bool[3], i8[2], i16[2], i32[2], i64[2], u8[2], u32[2], f16[6], bf16[4], f32[7], f64[5], f32[0], "
    "f32[2,0,3], f32[]) {\n"
    "  %0: bool[3] = constant {value=[true, false, true]}\n"
    "  %1: i8[2] = constant {value=[-128, 127]}\n"
    "  %2: i16[2] = constant {value=[-32768, 32767]}\n"
    "  %3: i32[2] = constant {value=[-2147483648, 2147483647]}\n"
    "  %4: i64[2] = constant {value=[-9223372036854775808, 9223372036854775807]}\n"
    "  %5: u8[2] = constant {value=[0, 255]}\n"
    "  %6: u32[2] = constant {value=[0, 4294967295]}\n"
    "  %7: f16[6] = constant {value=[1, -0.0, nan, inf, 65504, 5.96046448e-08]}\n"
    "  %8: bf16[4] = constant {value=[0.100097656, -inf, nan, 3.38953139e+38]}\n"
    "  %9: f32[7] = constant {value=[0.100000001, -0.0, 0, inf, -inf, 3.40282347e+38, 1.40129846e-45]}\n"
    "  %10: f64[5] = constant {value=[0.10000000000000001, 1.7976931348623157e+308, 4.9406564584124654e-324, -0.0, "
    "-1.5]}\n"
    "  %11: f32[0] = constant {value=[]}\n"
    "  %12: f32[2,0,3] = constant {value=[]}\n"
    "  %13: f32[] = constant {value=[-0.375]}\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13\n"
    "}\n";

TEST(text_roundtrip_ops) {
  CHECK_CANONICAL(k_unary);
  CHECK_CANONICAL(k_binary);
  CHECK_CANONICAL(k_shape);
  CHECK_CANONICAL(k_reduce);
  CHECK_CANONICAL(k_index);
  CHECK_CANONICAL(k_scatter_kinds);
}

TEST(text_roundtrip_control_flow) {
  CHECK_CANONICAL(k_while);
  CHECK_CANONICAL(k_cond);
  CHECK_CANONICAL(k_calls);
  CHECK_CANONICAL(k_scan);
  CHECK_CANONICAL(k_call_rules);
  /* the rules are retained by the call and checked against the callee */
  CHECK_ERR(parse("func @f(%x: f32[3]) -> (f32[3]) {\n  return %x\n}\n"
                  "func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = call %x {callee=@f, jvp=@f}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:5:16:", "the jvp rule @f takes 1 inputs");
  CHECK_ERR(parse("func @f(%x: f32[3]) -> (f32[3]) {\n  return %x\n}\n"
                  "func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = call %x {jvp=@f}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:5:16:", "attribute 'callee' is missing for call");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = scan %x {length=3, n_consts=0, n_carry=1, "
                  "reverse=false}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:3:3:", "expected region 'body' but found 'return'");
}

TEST(text_roundtrip_constants) {
  CHECK_CANONICAL(k_constants);
  /* the values survive bit for bit */
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_constants, -1, "c", &g));
  if (!g) return;
  const ry_array *f32 = g->nodes[9].attrs.constant.value, *f64 = g->nodes[10].attrs.constant.value;
  const ry_array *i64 = g->nodes[4].attrs.constant.value, *f16 = g->nodes[7].attrs.constant.value;
  float fv[7];
  double dv[5];
  CHECK_OK(ry_array_to_host(f32, fv, sizeof fv));
  CHECK_OK(ry_array_to_host(f64, dv, sizeof dv));
  CHECK(fv[0] == 0.1f && signbit(fv[1]) && fv[1] == 0 && !signbit(fv[2]) && isinf(fv[3]) && fv[5] == 3.40282347e+38f);
  CHECK(fv[6] == 0x1p-149f);
  CHECK(dv[0] == 0.1 && dv[1] == 1.7976931348623157e308 && dv[2] > 0 && signbit(dv[3]));
  CHECK(ry_array_get_i64(i64, 0) == INT64_MIN && ry_array_get_i64(i64, 1) == INT64_MAX);
  CHECK(isnan(ry_array_get_f64(f16, 2)) && ry_array_get_f64(f16, 4) == 65504);
  ry_graph_release(g);
}

/* Any order of attributes, comments, free spacing and any names in; canonical text out. */
TEST(text_canonicalizes) {
  CHECK_PRINTS_AS("# a comment\n"
                  "func   @helper ( %a:f32[2] )->( f32[2] ){ %r : f32[2]=neg %a  return %r }\n"
                  "func @unused() -> () { return }  # dropped: not called by @main\n"
                  "func @main(%in.put: f32[2], %0: i32[], %arg1: f32[2]) -> (f32[2], f32[2,2]) {\n"
                  "  %t: f32[2] = call %in.put {callee=@helper}  # a call\n"
                  "  %u: f32[2,2] = broadcast_in_dim %t {dims=[1]}\n"
                  "  %s: f32[2,2] = slice %u {stride=[1,1], limit=[2,2], start=[0,0]}\n"
                  "  return %arg1, %u\n"
                  "}\n",
                  "func @helper(%a: f32[2]) -> (f32[2]) {\n"
                  "  %0: f32[2] = neg %a\n"
                  "  return %0\n"
                  "}\n"
                  "\n"
                  "func @main(%in.put: f32[2], %0.1: i32[], %arg1: f32[2]) -> (f32[2], f32[2,2]) {\n"
                  "  %0: f32[2] = call %in.put {callee=@helper}\n"
                  "  %1: f32[2,2] = broadcast_in_dim %0 {dims=[1]}\n"
                  "  %2: f32[2,2] = slice %1 {start=[0, 0], limit=[2, 2], stride=[1, 1]}\n"
                  "  return %arg1, %1\n"
                  "}\n");
}

static int trace_neg(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_neg(b, in[0]);
  return 1;
}

/* Graphs from the builder: the entry prints as @main whatever its name, a
 * callee named main or two callees with one name are disambiguated, unnamed,
 * duplicate and numeric input names are made unique. */
TEST(text_printer_naming) {
  ry_type t = {RY_F32, RY_SHAPE(2)};
  ry_graph *f1 = NULL, *f2 = NULL, *m = NULL, *g = NULL;
  CHECK_OK(ry_trace("f", trace_neg, NULL, 1, &t, NULL, &f1));
  CHECK_OK(ry_trace("f", trace_neg, NULL, 1, &t, NULL, &f2));
  CHECK_OK(ry_trace("main", trace_neg, NULL, 1, &t, NULL, &m));
  if (!f1 || !f2 || !m) goto done;
  ry_builder *b = ry_builder_new("entry point!");
  ry_value x = ry_input(b, "x", t), x2 = ry_input(b, "x", t), u = ry_input(b, NULL, t), a1 = ry_input(b, "arg3", t),
           z = ry_input(b, "0", t), w = ry_input(b, "a b", t);
  ry_value r[6];
  ry_call(b, f1, 1, &x, &r[0]);
  ry_call(b, f2, 1, &x2, &r[1]);
  ry_call(b, m, 1, &u, &r[2]);
  ry_call(b, f1, 1, &r[0], &r[3]);
  r[4] = ry_add(b, a1, z);
  r[5] = w;
  CHECK_OK(ry_builder_finish(b, 6, r, &g));
  if (!g) goto done;
  char *s = NULL;
  CHECK_OK(ry_graph_to_string(g, &s));
  CHECK_STR(s, "func @f(%arg0: f32[2]) -> (f32[2]) {\n"
               "  %0: f32[2] = neg %arg0\n"
               "  return %0\n"
               "}\n"
               "\n"
               "func @f.1(%arg0: f32[2]) -> (f32[2]) {\n"
               "  %0: f32[2] = neg %arg0\n"
               "  return %0\n"
               "}\n"
               "\n"
               "func @main.1(%arg0: f32[2]) -> (f32[2]) {\n"
               "  %0: f32[2] = neg %arg0\n"
               "  return %0\n"
               "}\n"
               "\n"
               "func @main(%x: f32[2], %x.1: f32[2], %arg2: f32[2], %arg3: f32[2], %0.1: f32[2], %a_b: f32[2]) -> "
               "(f32[2], f32[2], f32[2], f32[2], f32[2], f32[2]) {\n"
               "  %0: f32[2] = call %x {callee=@f}\n"
               "  %1: f32[2] = call %x.1 {callee=@f.1}\n"
               "  %2: f32[2] = call %arg2 {callee=@main.1}\n"
               "  %3: f32[2] = call %0 {callee=@f}\n"
               "  %4: f32[2] = add %arg3, %0.1\n"
               "  return %0, %1, %2, %3, %4, %a_b\n"
               "}\n");
  if (s) CHECK_CANONICAL(s);
  /* ry_graph_print writes the same text */
  FILE *f = tmpfile();
  if (f && s) {
    CHECK_OK(ry_graph_print(g, f));
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    if (buf) CHECK_STR(buf, s);
    free(buf);
    fclose(f);
  }
  ry_free(s);
done:
  ry_graph_release(f1);
  ry_graph_release(f2);
  ry_graph_release(m);
  ry_graph_release(g);
}

TEST(text_parse_api) {
  ry_graph *g = NULL;
  /* len bounds the text: the rest of the buffer is not read */
  const char *two = "func @main(%x: f32[]) -> (f32[]) {\n  return %x\n}\ngarbage";
  CHECK_OK(ry_graph_parse(two, (long)(strlen(two) - 7), NULL, &g));
  CHECK(g && ry_graph_num_inputs(g) == 1 && strcmp(ry_graph_input_name(g, 0), "x") == 0);
  CHECK(g && strcmp(ry_graph_name(g), "main") == 0);
  ry_graph_release(g);
  g = NULL;
  CHECK_ERR(ry_graph_parse(two, -1, NULL, &g), RY_ERR_PARSE, "<input>:4:1:", "expected 'func'", "'garbage'");
  CHECK(g == NULL);
  /* an embedded NUL is just an invalid character */
  CHECK_ERR(ry_graph_parse("func @main() -> () {\0 return }", 30, "nul", &g), RY_ERR_PARSE, "nul:1:21:", "invalid character");
  CHECK_ERR(ry_graph_parse(NULL, -1, NULL, &g), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_graph_parse("", -1, "empty", &g), RY_ERR_PARSE, "empty:1:1:", "no function @main");
  CHECK_ERR(ry_graph_parse_file("/nonexistent/dir/x.ir", &g), RY_ERR_IO, "/nonexistent/dir/x.ir", "No such file");
  /* parse_file reads what print wrote */
  char path[1100];
  snprintf(path, sizeof path, "%s/text_test_%ld.ir", RYFT_BINARY_DIR, (long)time(NULL));
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs(k_while, f);
    fclose(f);
    CHECK_OK(ry_graph_parse_file(path, &g));
    CHECK(g && ry_graph_num_ops(g) == 7);
    ry_graph_release(g);
    g = NULL;
    remove(path);
  }
}

/* ---- malformed text ------------------------------------------------------------- */

TEST(text_errors_syntax) {
  CHECK_ERR(parse("func @main(%x: f32[3}) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:21:",
            "expected ',' or ']' but found '}'");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = addd %x, %x\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:16:", "unknown op 'addd'");
  CHECK_ERR(parse("func @main(%x: f31[3]) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:16:", "unknown dtype 'f31'");
  CHECK_ERR(parse("func @main() -> () {\n  return \"abc\n}\n"), RY_ERR_PARSE, "t.ir:2:10:", "unterminated string");
  CHECK_ERR(parse("func @main() -> () {\n  $\n}\n"), RY_ERR_PARSE, "t.ir:2:3:", "expected an instruction or 'return'",
            "invalid character '$'");
  CHECK_ERR(parse("func @main(%x: f32[]) -> (f32[]) {\n  return %x\n"), RY_ERR_PARSE, "t.ir:3:1:",
            "but found end of input");
  CHECK_ERR(parse("func @main(%x: f32[1,1,1,1,1,1,1,1,1]) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:36:",
            "at most 8 dimensions");
  CHECK_ERR(parse("func @main(%x: f32[4294967296,4294967296]) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:16:",
            "too many elements");
  CHECK_ERR(parse("func @main(%x: f32[99999999999999999999]) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:20:",
            "out of range");
  CHECK_ERR(parse("func @main(%x: f32[-1]) -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:1:20:", "dimension size",
            "'-1'");
  CHECK_ERR(parse("func @f() -> () {\n  return\n}\nfunc @f() -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:4:6:",
            "function @f is defined twice");
  CHECK_ERR(parse("func @f() -> () {\n  return\n}\n"), RY_ERR_PARSE, "t.ir:4:1:", "no function @main");
}

TEST(text_errors_names) {
  CHECK_ERR(parse("func @main(%y: f32[3]) -> (f32[3]) {\n  %0: f32[3] = neg %x\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:20:", "value %x is not defined");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %3: f32[3] = neg %x\n  %3: f32[3] = neg %x\n  return %3\n}\n"),
            RY_ERR_PARSE, "t.ir:3:3:", "value %3 is defined twice");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = neg %0\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:20:", "value %0 is not defined");
  CHECK_ERR(parse("func @main(%p: bool[], %y: f32[]) -> (f32[]) {\n"
                  "  %0: f32[] = cond %p\n"
                  "    branch () {\n"
                  "      %1: f32[] = neg %y\n"
                  "      return %1\n"
                  "    }\n"
                  "    branch () {\n"
                  "      return %y\n"
                  "    }\n"
                  "  return %0\n"
                  "}\n"),
            RY_ERR_PARSE, "t.ir:4:23:", "use of %y from an enclosing scope: regions are closed");
  CHECK_ERR(parse("func @main(%p: bool[], %y: f32[]) -> (f32[]) {\n"
                  "  %0: f32[] = cond %p, %y\n"
                  "    branch (%a: f32[]) {\n"
                  "      return %a\n"
                  "    }\n"
                  "    branch (%b: f32[]) {\n"
                  "      return %a\n"
                  "    }\n"
                  "  return %0\n"
                  "}\n"),
            RY_ERR_PARSE, "t.ir:7:14:", "value %a is not defined");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = call %x {callee=@later}\n  return %0\n}\n"
                  "func @later(%x: f32[3]) -> (f32[3]) {\n  return %x\n}\n"),
            RY_ERR_PARSE, "t.ir:2:32:", "function @later is not defined", "before it is called");
}

TEST(text_errors_attributes) {
  CHECK_ERR(parse("func @main(%x: f32[2,3]) -> (f32[3,2]) {\n  %0: f32[3,2] = transpose %x\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:18:", "attribute 'perm' is missing for transpose");
  CHECK_ERR(parse("func @main(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = reverse %x {dims=[0], foo=1}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:38:", "unknown attribute 'foo' for reverse");
  CHECK_ERR(parse("func @main(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = reverse %x {dims=[0], dims=[0]}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:38:", "attribute 'dims' is given twice");
  CHECK_ERR(parse("func @main(%x: f32[2]) -> (f32[]) {\n  %0: f32[] = reduce %x {kind=mean, axes=[0]}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:31:", "expected kind (one of sum, prod, max, min, and, or) but found 'mean'");
  CHECK_ERR(parse("func @main(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = reverse %x {dims=[0,1,2,3,4,5,6,7,8]}\n"
                  "  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:50:", "list 'dims' has more than 8 entries");
  CHECK_ERR(parse("func @main() -> (i8[2]) {\n  %0: i8[2] = constant {value=[1, 128]}\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:35:", "an i8 element '128' is out of range (-128..127)");
  CHECK_ERR(parse("func @main() -> (f32[2]) {\n  %0: f32[2] = constant {value=[1, 2, 3]}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:32:", "needs 2 elements but 3 are given");
  CHECK_ERR(parse("func @main() -> (f32[1]) {\n  %0: f32[1] = constant {value=[1e39]}\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:33:", "'1e39' is out of range for f32");
  CHECK_ERR(parse("func @main() -> (f16[1]) {\n  %0: f16[1] = constant {value=[70000]}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:33:", "out of range for f16");
  CHECK_ERR(parse("func @main() -> (bool[1]) {\n  %0: bool[1] = constant {value=[1]}\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:34:", "expected true or false");
  CHECK_ERR(parse("func @main() -> (f32[1]) {\n  %0: f32[1] = constant {value=[1.5.2]}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:33:", "expected a f32 element", "'1.5.2'");
  CHECK_ERR(parse("func @main(%x: f32[2]) -> () {\n  custom_call %x {target=\"a\\qb\"}\n  return\n}\n"), RY_ERR_PARSE,
            "t.ir:2:26:", "invalid escape");
}

TEST(text_errors_types) {
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[2]) {\n  %0: f32[2] = neg %x\n  return %0\n}\n"), RY_ERR_PARSE,
            "t.ir:2:7:", "%0 has type f32[2] but neg gives f32[3]");
  CHECK_ERR(parse("func @main(%x: f32[3], %y: f32[4]) -> (f32[3]) {\n  %0: f32[3] = add %x, %y\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:16:", "add:", "shapes [3] and [4] differ");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3], %1: f32[3] = neg %x\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:3:", "neg gives 1 result but 2 are written");
  /* at the returned value, or at the `return`, not at the closing brace */
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (i32[3]) {\n  return %x\n}\n"), RY_ERR_PARSE, "t.ir:2:10:",
            "return value 0 has type f32[3] but @main returns i32[3]");
  CHECK_ERR(parse("func @main(%x: f32[3], %y: i32[3]) -> (f32[3], f32[3]) {\n  return %x,  %y\n}\n"), RY_ERR_PARSE,
            "t.ir:2:15:", "return value 1 has type i32[3] but @main returns f32[3]");
  CHECK_ERR(parse("func @main(%x: f32[3]) -> (f32[3], f32[3]) {\n  return %x\n}\n"), RY_ERR_PARSE, "t.ir:2:3:",
            "returns 2 values but 1 are returned");
  CHECK_ERR(parse("func @main(%n: i32[]) -> (i32[]) {\n"
                  "  %0: i32[] = while %n {n_consts=0}\n"
                  "    cond (%1: i32[]) {\n"
                  "      return %1\n"
                  "    }\n"
                  "    body (%2: i32[]) {\n"
                  "      return %2\n"
                  "    }\n"
                  "  return %0\n"
                  "}\n"),
            RY_ERR_PARSE, "t.ir:2:15:", "cond must return one bool[]");
  CHECK_ERR(parse("func @main(%n: i32[]) -> (i32[]) {\n"
                  "  %0: i32[] = while %n {n_consts=0}\n"
                  "    cond (%1: i32[]) {\n"
                  "      %2: bool[] = constant {value=[false]}\n"
                  "      return %2\n"
                  "    }\n"
                  "    loop (%3: i32[]) {\n"
                  "      return %3\n"
                  "    }\n"
                  "  return %0\n"
                  "}\n"),
            RY_ERR_PARSE, "t.ir:7:5:", "expected region 'body' but found 'loop'");
  CHECK_ERR(parse("func @main(%x: f32[]) -> (f32[]) {\n  %0: f32[] = neg %x\n    branch () {\n      return\n    }\n"
                  "  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:3:5:", "neg takes no regions");
  CHECK_ERR(parse("func @main(%x: f32[]) -> (f32[]) {\n  %0: f32[] = call %x {callee=@main}\n  return %0\n}\n"),
            RY_ERR_PARSE, "t.ir:2:31:", "function @main is not defined");
}

/* Deep nesting is refused, not a stack overflow; long programs parse in linear time. */
static char *nested_cond(int depth) {
  size_t cap = (size_t)depth * 200 + 200, n = 0;
  char *s = malloc(cap);
  if (!s) return NULL;
  n += (size_t)snprintf(s + n, cap - n, "func @main(%%i: i32[]) -> () {\n  cond %%i\n");
  for (int d = 0; d < depth; d++)
    n += (size_t)snprintf(s + n, cap - n, "branch () {\n%%v%d: i32[] = constant {value=[0]}\ncond %%v%d\n", d, d);
  n += (size_t)snprintf(s + n, cap - n, "branch () {\nreturn\n}\n");
  for (int d = 0; d < depth; d++) n += (size_t)snprintf(s + n, cap - n, "return\n}\n");
  snprintf(s + n, cap - n, "return\n}\n");
  return s;
}

TEST(text_limits) {
  char *ok = nested_cond(63), *deep = nested_cond(64), *deeper = nested_cond(100000);
  if (ok) CHECK_OK(parse(ok));
  if (deep) CHECK_ERR(parse(deep), RY_ERR_PARSE, "t.ir:", "nested more than 64 deep");
  if (deeper) CHECK_ERR(parse(deeper), RY_ERR_PARSE, "t.ir:", "nested more than 64 deep");
  if (ok) {
    char *a = reprint(ok, "nested", __LINE__);
    if (a) CHECK_CANONICAL(a);
    ry_free(a);
  }
  free(ok);
  free(deep);
  free(deeper);
  /* a 200k-instruction chain */
  int n = 200000;
  size_t cap = (size_t)n * 48 + 256, k = 0;
  char *s = malloc(cap);
  if (!s) return;
  k += (size_t)snprintf(s + k, cap - k, "func @main(%%x: f32[4]) -> (f32[4]) {\n  %%0: f32[4] = neg %%x\n");
  for (int i = 1; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "  %%%d: f32[4] = neg %%%d\n", i, i - 1);
  snprintf(s + k, cap - k, "  return %%%d\n}\n", n - 1);
  clock_t t0 = clock();
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(s, -1, "big", &g));
  char *out = NULL;
  if (g) CHECK_OK(ry_graph_to_string(g, &out));
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  CHECK_MSG(secs < 5, "parse + print of %d instructions took %.2f s", n, secs);
  if (out) CHECK_STR(out, s);
  ry_free(out);
  ry_graph_release(g);
  free(s);
}

/* ---- the verifier on hand-built graphs -------------------------------------------- */

TEST(text_verify_errors) {
  ry_type t3 = {RY_F32, RY_SHAPE(3)}, t4 = {RY_F32, RY_SHAPE(4)};
  ry_loc loc = {"model.c", 42};
  /* a result type the rule disagrees with */
  ry_graph *g = ry__graph_new("bad");
  int32_t x = ry__graph_add_param(g, 0, t3, "x");
  int32_t n = ry__graph_add_node(g, 0, RY_OP_NEG, 1, &x, 1, &t4, 0, NULL, NULL, loc);
  ry__ivec_push(&g->regions[0].results, ry_node_results(g, &g->nodes[n])[0]);
  CHECK_ERR(ry_graph_verify(g), RY_ERR_VERIFY, "verify @bad", "neg (node 0) at model.c:42", "f32[4]", "f32[3]");
  ry_graph_release(g);
  /* an operand id out of range */
  g = ry__graph_new("bad");
  x = ry__graph_add_param(g, 0, t3, "x");
  int32_t bogus = 999;
  n = ry__graph_add_node(g, 0, RY_OP_NEG, 1, &bogus, 1, &t3, 0, NULL, NULL, loc);
  CHECK_ERR(ry_graph_verify(g), RY_ERR_VERIFY, "neg (node 0) at model.c:42", "invalid value id 999");
  ry_graph_release(g);
  /* use before definition */
  g = ry__graph_new("bad");
  x = ry__graph_add_param(g, 0, t3, "x");
  int32_t later = 3; /* the result of the second node */
  ry__graph_add_node(g, 0, RY_OP_NEG, 1, &later, 1, &t3, 0, NULL, NULL, (ry_loc){NULL, 7});
  ry__graph_add_node(g, 0, RY_OP_NEG, 1, &x, 1, &t3, 0, NULL, NULL, loc);
  CHECK_ERR(ry_graph_verify(g), RY_ERR_VERIFY, "neg (node 0) at line 7", "used before its definition");
  ry_graph_release(g);
  /* a region using a value of the enclosing region; a branch with wrong result types */
  g = ry__graph_new("closed");
  int32_t p = ry__graph_add_param(g, 0, (ry_type){RY_BOOL, RY_SCALAR}, "p");
  x = ry__graph_add_param(g, 0, t3, "x");
  int32_t r1 = ry__graph_add_region(g, -1), r2 = ry__graph_add_region(g, -1);
  int32_t inner = ry__graph_add_node(g, r1, RY_OP_NEG, 1, &x, 1, &t3, 0, NULL, NULL, loc);
  ry__ivec_push(&g->regions[r1].results, ry_node_results(g, &g->nodes[inner])[0]);
  int32_t rp = ry__graph_add_param(g, r2, t3, NULL);
  ry__ivec_push(&g->regions[r2].results, rp);
  int32_t ops[2] = {p, x}, regs[2] = {r1, r2};
  (void)ops;
  ry__graph_add_node(g, 0, RY_OP_COND, 1, &p, 1, &t3, 2, regs, NULL, (ry_loc){"cf.c", 9});
  CHECK_ERR(ry_graph_verify(g), RY_ERR_VERIFY, "verify @closed", "neg (node 0) at model.c:42", "regions are closed");
  ry_graph_release(g);
  /* a while whose body returns the wrong type */
  g = ry__graph_new("loop");
  x = ry__graph_add_param(g, 0, t3, "x");
  r1 = ry__graph_add_region(g, -1);
  r2 = ry__graph_add_region(g, -1);
  ry__graph_add_param(g, r1, t3, NULL);
  ry_array *fa = NULL;
  CHECK_OK(ry_array_full(RY_BOOL, RY_SCALAR, 0, &fa));
  ry_attrs ca;
  memset(&ca, 0, sizeof ca);
  ca.constant.value = fa;
  int32_t cn = ry__graph_add_node(g, r1, RY_OP_CONSTANT, 0, NULL, 1, &(ry_type){RY_BOOL, RY_SCALAR}, 0, NULL, &ca, loc);
  ry__ivec_push(&g->regions[r1].results, ry_node_results(g, &g->nodes[cn])[0]);
  rp = ry__graph_add_param(g, r2, t3, NULL);
  int32_t bn = ry__graph_add_node(g, r2, RY_OP_IS_FINITE, 1, &rp, 1, &(ry_type){RY_BOOL, RY_SHAPE(3)}, 0, NULL, NULL, loc);
  ry__ivec_push(&g->regions[r2].results, ry_node_results(g, &g->nodes[bn])[0]);
  regs[0] = r1;
  regs[1] = r2;
  ry_attrs wa;
  memset(&wa, 0, sizeof wa);
  int32_t wn = ry__graph_add_node(g, 0, RY_OP_WHILE, 1, &x, 1, &t3, 2, regs, &wa, (ry_loc){"loop.c", 5});
  ry__ivec_push(&g->regions[0].results, ry_node_results(g, &g->nodes[wn])[0]);
  CHECK_ERR(ry_graph_verify(g), RY_ERR_VERIFY, "while (node 2) at loop.c:5", "body result 0 has type bool[3]");
  ry_graph_release(g);
  /* a valid parse verifies */
  ry_graph *ok = NULL;
  CHECK_OK(ry_graph_parse(k_cond, -1, "cond", &ok));
  if (ok) CHECK_OK(ry_graph_verify(ok));
  ry_graph_release(ok);
}

TEST(text_attr_tables) {
  for (int k = 0; k < RY_ATTR_KIND_COUNT; k++) {
    /* printing and parsing walk the schema: every kind but NONE has fields */
    bool fields = ryg_attr_schemas[k].n > 0 && ryg_attr_schemas[k].f != NULL;
    CHECK_MSG(k == RY_ATTR_NONE || fields, "attribute kind %d has no schema (src/ir/attrs.c): no printer", k);
    CHECK_MSG(k == RY_ATTR_NONE || fields, "attribute kind %d has no schema (src/ir/attrs.c): no parser", k);
  }
}

/* Every seed of the fuzz corpus goes through parse (and, when it parses, the
 * print/parse/print round trip) without crashing. */
TEST(text_fuzz_corpus) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/parse", rt_source_dir());
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  if (!d) return;
  int files = 0, parsed = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) continue;
    files++;
    ry_graph *g = NULL;
    ry_status s = ry_graph_parse(buf, (long)n, e->d_name, &g);
    if (!s) {
      parsed++;
      buf[n] = 0;
      char *a = NULL, *b = NULL;
      CHECK_OK(ry_graph_to_string(g, &a));
      if (a) {
        b = reprint(a, e->d_name, __LINE__);
        if (b) CHECK_MSG(strcmp(a, b) == 0, "%s: print is not a fixed point", e->d_name);
      }
      ry_free(a);
      ry_free(b);
    } else {
      CHECK_MSG(ry_status_code(s) == RY_ERR_PARSE || ry_status_code(s) == RY_ERR_VERIFY, "%s: %s", e->d_name,
                ry_status_message(s));
    }
    ry_status_free(s);
    ry_graph_release(g);
    free(buf);
  }
  closedir(d);
  CHECK_MSG(files >= 30, "only %d corpus files", files);
  CHECK_MSG(parsed >= 20, "only %d corpus files parse", parsed);
}

/* ---- allocation failure at every point ------------------------------------------- */

/* Parse, verify and print with the k-th allocation failing, for every k:
 * each attempt fails cleanly or succeeds, and nothing leaks. */
static void check_oom(const char *text, int line) {
  for (long k = 0; k < 100000; k++) {
    rt_oom_arm(k, 1);
    ry_graph *g = NULL;
    char *s = NULL;
    ry_status st = ry_graph_parse(text, -1, "oom", &g);
    if (!st) st = ry_graph_verify(g);
    if (!st) st = ry_graph_to_string(g, &s);
    bool done = !st;
    ry_code code = ry_status_code(st);
    ry_status_free(st);
    ry_free(s);
    ry_graph_release(g);
    long long live = rt_oom_disarm();
    if (!done && code != RY_ERR_OUT_OF_MEMORY) rt_fail(__FILE__, line, "allocation %ld failing gave %s", k, ry_code_name(code));
    if (live != 0) {
      rt_fail(__FILE__, line, "allocation %ld failing leaked %lld bytes", k, live);
      return;
    }
    if (done) {
      CHECK_MSG(k > 20, "only %ld allocations: the allocator was not exercised", k);
      return;
    }
  }
  rt_fail(__FILE__, line, "never succeeded");
}

TEST(text_out_of_memory) {
  check_oom(k_calls, __LINE__);
  check_oom(k_call_rules, __LINE__);
  check_oom(k_scan, __LINE__);
  check_oom(k_cond, __LINE__);
  check_oom(k_constants, __LINE__);
}

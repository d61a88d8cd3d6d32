/* ryft/transform.h - program transformations, named as in JAX.
 *
 * Every transformation is a function from graph to new graph, so they
 * compose in any order: ry_grad of ry_grad, ry_vmap of ry_grad, ry_jvp of
 * ry_grad (a Hessian-vector product), ... Calls are inlined first.
 *
 * Differentiation: float inputs and outputs are differentiable. Integer and
 * bool values carry zero tangents (JAX's float0): their tangent inputs are
 * ignored and their tangent outputs are zeros of their own type. */
#ifndef RYFT_TRANSFORM_H
#define RYFT_TRANSFORM_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* f(x_0..x_{n-1}) -> (y_0..y_{m-1}) becomes
 * f_jvp(x_0..x_{n-1}, t_0..t_{n-1}) -> (y_0..y_{m-1}, ty_0..ty_{m-1}),
 * each tangent of its primal's type. */
RY_API ry_status ry_jvp(ry_graph *f, ry_graph **out);

/* Reverse mode in two graphs: fwd(x...) -> (y..., residuals...) and
 * bwd(residuals..., ct_y...) -> (ct_x...). The backward graph is built from
 * ordinary ops, so it can be differentiated again. */
RY_API ry_status ry_vjp(ry_graph *f, ry_graph **fwd, ry_graph **bwd, int *n_residuals);
/* Linearization (jax.linearize): the same fwd graph, and lin(residuals...,
 * t...) -> ty..., the JVP as a program linear in the tangents that reuses
 * the residuals instead of recomputing the primal. */
RY_API ry_status ry_linearize(ry_graph *f, ry_graph **fwd, ry_graph **lin, int *n_residuals);

/* Which inputs to differentiate, and whether outputs after the first are
 * auxiliary values passed through (JAX's has_aux). NULL options mean
 * argnums = {0}, no aux. */
typedef struct ry_grad_opts {
  int n_argnums;
  const int *argnums;
  int has_aux;
} ry_grad_opts;

/* f's first output must be a float scalar. The result graph takes f's inputs
 * and returns (grad_argnum0, ..., aux...). */
RY_API ry_status ry_grad(ry_graph *f, const ry_grad_opts *opts, ry_graph **out);
/* As ry_grad, returning (value, grads..., aux...). */
RY_API ry_status ry_value_and_grad(ry_graph *f, const ry_grad_opts *opts, ry_graph **out);

/* Second order and Jacobians, for output 0 of f with respect to input
 * `argnum` (a float input).
 * ry_hvp: graph (x..., v) -> H v where H is the Hessian of the float scalar
 *   output 0 (forward-over-reverse: jvp of grad).
 * ry_jacfwd / ry_jacrev: graph (x...) -> J with shape out0.shape + in.shape
 *   (forward mode over a basis of tangents / reverse mode over a basis of
 *   cotangents, both vectorized with ry_vmap); they agree.
 * ry_hessian: jacfwd of jacrev, shape in.shape + in.shape. */
RY_API ry_status ry_hvp(ry_graph *f, int argnum, ry_graph **out);
RY_API ry_status ry_jacfwd(ry_graph *f, int argnum, ry_graph **out);
RY_API ry_status ry_jacrev(ry_graph *f, int argnum, ry_graph **out);
RY_API ry_status ry_hessian(ry_graph *f, int argnum, ry_graph **out);

/* Vectorizing map. f is traced for one example; the result maps it over a
 * new axis of size axis_size. in_axes[i] is where that axis sits in input i
 * of the result (negative counting from the end), or RY_NOT_BATCHED for an
 * input shared by all lanes (at least one input must be mapped); NULL means
 * axis 0 for every input. out_axes[j] is where the mapped axis goes in output
 * j (negative from the end); NULL means 0. Transformations compose: vmap of
 * grad gives per-example gradients, vmap of vmap maps over two axes. */
#define RY_NOT_BATCHED (-2147483647 - 1)
RY_API ry_status ry_vmap(ry_graph *f, int64_t axis_size, const int *in_axes, const int *out_axes, ry_graph **out);
/* The same with the batched input types given (f's types with the mapped
 * axis inserted; RY_NOT_BATCHED inputs keep f's type): the mapped sizes must
 * agree, as JAX checks its arguments. */
RY_API ry_status ry_vmap_typed(ry_graph *f, const ry_type *in_types, const int *in_axes, const int *out_axes, ry_graph **out);

/* Simplify a graph: dead-code elimination, common subexpressions, constant
 * folding of small constants. Transforms call this on what they produce. */
RY_API ry_status ry_simplify(ry_graph *f, ry_graph **out);

#ifdef __cplusplus
}
#endif
#endif

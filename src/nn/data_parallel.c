/* Data parallelism over the processes of an MPI job (ryft/dist.h): the mean
 * over the ranks of a train step's loss and gradients, inside the step.
 *
 * The values of each dtype travel as one buffer: they are flattened and
 * concatenated, all-reduced once (one exchange per step rather than one per
 * parameter, which would pay MPI's latency n times), divided by the rank
 * count as ry_pmean does, then sliced and reshaped back. */
#include "nn_internal.h"

#include <string.h>

#define DP_MAX 256

void ry_nn_data_parallel_mean_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int n_ranks, ry_value *out) {
  if (n < 0 || n > DP_MAX || (n > 0 && (!xs || !out))) {
    nn_fail(b, loc, "ry_nn_data_parallel_mean", "%d values (0 to %d, xs and out not NULL)", n, DP_MAX);
    return;
  }
  if (n_ranks < 1) {
    nn_fail(b, loc, "ry_nn_data_parallel_mean", "n_ranks is %d (ry_dist_size(), at least 1)", n_ranks);
    return;
  }
  ry_value in[DP_MAX];
  memcpy(in, xs, (size_t)n * sizeof *in); /* out may alias xs */
  if (n_ranks == 1) {
    memcpy(out, in, (size_t)n * sizeof *in);
    return;
  }
  bool done[DP_MAX] = {false};
  for (int i = 0; i < n; i++) {
    if (done[i]) continue;
    ry_dtype t = ry_value_dtype(b, in[i]);
    int idx[DP_MAX], m = 0;
    ry_value flat[DP_MAX];
    int64_t len[DP_MAX];
    for (int j = i; j < n; j++) {
      if (done[j] || ry_value_dtype(b, in[j]) != t) continue;
      len[m] = ry_shape_numel(ry_value_shape(b, in[j]));
      flat[m] = ry_reshape_(b, loc, in[j], RY_SHAPE(len[m]));
      idx[m++] = j;
      done[j] = true;
    }
    ry_value all = m == 1 ? flat[0] : ry_concatenate_(b, loc, m, flat, 0);
    ry_value mean = ry_pmean_(b, loc, all, n_ranks);
    int64_t off = 0;
    for (int k = 0; k < m; k++) {
      ry_value part = m == 1 ? mean : ry_slice_(b, loc, mean, RY_AXES(off), RY_AXES(off + len[k]), RY_AXES(1));
      out[idx[k]] = ry_reshape_(b, loc, part, ry_value_shape(b, in[idx[k]]));
      off += len[k];
    }
  }
}

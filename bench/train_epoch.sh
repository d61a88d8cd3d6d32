#!/bin/sh
# Time per epoch of the Fashion-MNIST CNN of `ryft train` (issue 6, item 6):
# ryft vs JAX + Optax vs PyTorch, same model, init scheme, batch 128, Adam with
# warmup + cosine, same IDX files, same thread count; peak RSS of each process
# by /usr/bin/time -v. Appends a section with the table to bench/RESULTS.md.
#   bench/train_epoch.sh        # THREADS (default 2), BENCH_VENV (default /work/jaxenv)
# ryft: `build/ryft train --epochs 2`; epoch 1 is the warm-up (it includes the
# lazy JIT compile of the train step), epoch 2's training time is the number.
# JAX / PyTorch: WARMUP_STEPS (20) steps, then one full timed epoch (468 steps).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
threads=${THREADS:-2}
venv=${BENCH_VENV:-/work/jaxenv}
py=$venv/bin/python
export RYFT_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=true"  # XLA:CPU's pool; the 2-core box caps it at 2
export RYFT_DATA=${RYFT_DATA:-/usr/share/datasets/fashion-mnist}
ryft=${RYFT_BIN:-$root/build/ryft}
[ -x "$ryft" ] || { echo "train_epoch: $ryft not built (make)" >&2; exit 1; }
"$py" -c 'import jax, optax' || { echo "train_epoch: $venv lacks jax/optax" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || "$venv/bin/pip" install -q torch || echo "train_epoch: torch does not install; skipped" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rss() { sed -n 's/.*Maximum resident set size (kbytes): *//p' "$1" | awk '{printf "%.0f", $1/1024}'; }

echo "== ryft" >&2
/usr/bin/time -v "$ryft" train --epochs 2 --limit-test 1000 --no-plot --data "$RYFT_DATA" --out "$tmp/ryft-out" \
  >"$tmp/ryft.out" 2>"$tmp/ryft.time"
cat "$tmp/ryft.out" >&2
# "epoch 2/2: train loss ..., test accuracy ...% (12.3 s, 38.0 steps/s)"
ryft_s=$(sed -n 's/^epoch 2\/2:.*(\([0-9.]*\) s, .*/\1/p' "$tmp/ryft.out")
ryft_first=$(sed -n 's/^epoch 1\/2:.*(\([0-9.]*\) s, .*/\1/p' "$tmp/ryft.out")
ryft_rss=$(rss "$tmp/ryft.time")

jax_s=- jax_rss=- torch_s=- torch_rss=- jax_ver=- torch_ver=-
echo "== jax" >&2
if /usr/bin/time -v "$py" "$root/bench/peers/train_jax.py" >"$tmp/jax.out" 2>"$tmp/jax.time"; then
  jax_s=$(awk '/^RESULT jax/{print $3}' "$tmp/jax.out"); jax_rss=$(rss "$tmp/jax.time")
  jax_ver=$(sed -n 's/^\(jax [^,]*\),.*/\1/p' "$tmp/jax.time")
fi
cat "$tmp/jax.out" >&2
echo "== torch" >&2
if "$py" -c 'import torch' 2>/dev/null &&
   /usr/bin/time -v "$py" "$root/bench/peers/train_torch.py" >"$tmp/torch.out" 2>"$tmp/torch.time"; then
  torch_s=$(awk '/^RESULT torch/{print $3}' "$tmp/torch.out"); torch_rss=$(rss "$tmp/torch.time")
  torch_ver=$(sed -n 's/^\(torch [^,]*\),.*/\1/p' "$tmp/torch.time")
  cat "$tmp/torch.out" >&2
fi

ratio() { [ "$2" = - ] && echo - || awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", b/a}'; }
{
  echo
  echo "## Fashion-MNIST CNN, seconds per training epoch ($(date -u +%Y-%m-%d), $threads threads)"
  echo
  echo "Command: \`bench/train_epoch.sh\` (THREADS=$threads, venv $venv). Model: conv3x3(16)-relu-maxpool2-conv3x3(32)-relu-maxpool2-dense128-relu-dense10,"
  echo "LeCun-normal weights, zero biases, batch 128, Adam (warmup + cosine, peak 3e-3), 468 steps per epoch over the same gz IDX files,"
  echo "loss read back every step in every system. ryft: \`build/ryft train --epochs 2\`, epoch 2's training time (epoch 1, the warm-up with"
  echo "the JIT compile, took ${ryft_first} s). JAX ($jax_ver, \`jax.jit\` step with donated params/state, Optax adam) and PyTorch ($torch_ver, eager,"
  echo "\`torch.optim.Adam\`, \`torch.set_num_threads($threads)\`): 20 warm-up steps, then one timed epoch. Peak RSS: /usr/bin/time -v of each whole process"
  echo "(the training set loaded, interpreter and libraries included). The machine is shared with other engineers' builds and tests running"
  echo "at the same time (load average $(cut -d' ' -f1-3 /proc/loadavg) at the end of this run on $(nproc) cores): numbers are noisy, take ratios within one run only."
  echo
  echo "| system | s/epoch | steps/s | peak RSS | peer s/epoch over ryft's |"
  echo "|---|---|---|---|---|"
  for row in "ryft $ryft_s $ryft_rss" "jax $jax_s $jax_rss" "torch $torch_s $torch_rss"; do
    set -- $row
    sps=$([ "$2" = - ] && echo - || awk -v t="$2" 'BEGIN{printf "%.1f", 468/t}')
    r=$([ "$1" = ryft ] && echo "1.00x" || ratio "$ryft_s" "$2")
    echo "| $1 | $2 | $sps | $3 MB | $r |"
  done
  echo
  echo "Targets (issue 6): ryft >= 1.3x JAX, >= 1.5x PyTorch. Measured: $(ratio "$ryft_s" "$jax_s") vs JAX, $(ratio "$ryft_s" "$torch_s") vs PyTorch."
} >>"$root/bench/RESULTS.md"
echo "train_epoch: ryft ${ryft_s} s, jax ${jax_s} s, torch ${torch_s} s per epoch; appended to bench/RESULTS.md" >&2

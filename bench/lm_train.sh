#!/bin/sh
# Language-model training speed: ryft (bench/lm_train_bench.c, ryft/lm_train.h)
# against PyTorch (bench/peers/lm_train_torch.py: eager, and torch.compile
# when it works) on the same GPT-2s, same threads, one run:
#   GPT-2 124M (12 layers, 768, vocabulary 50257), batch 4, context 64 (the
#   configuration llm.c reports for CPUs), and train-lm's small config
#   (4 layers, 128, vocabulary 49152), batch 8, context 64.
#   bench/lm_train.sh          # threads = RYFT_NUM_THREADS or the core count
# PyTorch comes from the package index into a virtualenv (TORCH_VENV, default
# build-bench/torchenv). Prints the CPU, the load, then one key=value line
# per system and config: seconds per step, tokens/s, GFLOP/s (6 per
# parameter per token + attention's 12 L T E), peak RSS.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
threads=${RYFT_NUM_THREADS:-$(nproc)}
steps=${STEPS:-3}
export RYFT_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
mkdir -p "$out"
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" --target ryft_static -j"$threads" >/dev/null
# what the static library needs (zlib, PCRE2, MPI where the build found them)
libs=$(sed -n 's/^Libs.private: //p' "$out/ryft.pc")
cc -std=c11 -O2 -I"$root/include" "$root/bench/lm_train_bench.c" "$out/libryft.a" $libs -o "$out/lm_train_bench"
venv=${TORCH_VENV:-$out/torchenv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads: $threads"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
torch() { "$venv/bin/python" "$root/bench/peers/lm_train_torch.py" "$@" 2>/dev/null | grep '^system=' || echo "system=torch $* failed"; }
for cfg in "small 8 64" "gpt2 4 64"; do
  # shellcheck disable=SC2086
  "$out/lm_train_bench" $cfg "$steps" f32
  # shellcheck disable=SC2086
  "$out/lm_train_bench" $cfg "$steps" bf16
  torch $cfg "$steps"
  torch $cfg "$steps" --compile
  torch $cfg "$steps" --bf16 --compile
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

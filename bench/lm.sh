#!/bin/sh
# Language-model speed: ryft (bench/lm_bench.c) against llama.cpp
# (llama-cpp-python, built from the package index into a virtualenv) on the
# SmolLM2-135M-Instruct Q4_1 GGUF, same threads, same token ids, in ROUNDS
# alternating rounds (default 3).
#   bench/lm.sh    # threads = RYFT_NUM_THREADS or the core count
# Prints the CPU, the memcpy bandwidth and what it allows in tokens/s (the
# weights read once per decoded token), both systems' numbers and ryft's
# ratio to llama.cpp for each.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
threads=${RYFT_NUM_THREADS:-$(nproc)}
export RYFT_NUM_THREADS=$threads
mkdir -p "$out"
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" --target ryft_static -j"$threads" >/dev/null
# what the static library needs (zlib, PCRE2, MPI where the build found them)
libs=$(sed -n 's/^Libs.private: //p' "$out/ryft.pc")
cc -std=c11 -O2 -I"$root/include" "$root/bench/lm_bench.c" "$out/libryft.a" $libs -o "$out/lm_bench"
sh "$root/tools/fetch-model.sh" "$out/models"
model="$out/models/SmolLM2-135M-Instruct.Q4_1.gguf"
venv=${LLAMACPP_VENV:-$out/llamaenv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  python3 -m venv "$venv"
  # GGML_NATIVE=OFF: the native build crashes in its AMX path on the Intel
  # machine kind (FACTS.md); so the vector levels are named, the CPU's own
  # (AVX-512 only where it has it: an AVX2-only CPU would fault on them)
  has() { grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -qx "$1"; }
  ggml="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  if has avx512f; then ggml="$ggml -DGGML_AVX512=ON"; fi
  if has avx512_vnni; then ggml="$ggml -DGGML_AVX512_VNNI=ON"; fi
  CMAKE_ARGS="$ggml" "$venv/bin/pip" install -q llama-cpp-python==0.3.36
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_fp16|avx512_vnni|avx_vnni|amx_bf16|amx_int8|fma)$' | tr '\n' ' ')"
echo "threads: $threads"
python3 - "$model" <<'PY'
import os, sys, time
n = 256 << 20
a = bytearray(n); b = bytearray(n)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); b[:] = a; best = min(best, time.perf_counter() - t)
gbs = 2 * n / best / 1e9
w = os.path.getsize(sys.argv[1])
print("memcpy: %.1f GB/s (read + write, one thread); reading the %d MB of weights once per decoded token at that rate: %.0f tokens/s"
      % (gbs, w >> 20, gbs * 1e9 / w))
PY
# rounds alternate the two systems, so a slow spell of a shared machine
# falls on both; the table gives each metric's median and the ratio's range
rounds=${ROUNDS:-3}
for r in $(seq "$rounds"); do
  echo "round $r of $rounds"
  "$out/lm_bench" "$model" | tee "$out/lm_ryft_$r.txt"
  "$venv/bin/python" "$root/bench/peers/llamacpp_bench.py" "$model" "$threads" | tee "$out/lm_llamacpp_$r.txt"
done
python3 - "$out" "$rounds" <<'PY'
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name, r):
    return {l.split()[1]: float(l.split()[2]) for l in open("%s/lm_%s_%d.txt" % (out, name, r))}
ry = [load("ryft", r) for r in range(1, rounds + 1)]
lc = [load("llamacpp", r) for r in range(1, rounds + 1)]
print("%d rounds: medians, and ryft's ratio to llama.cpp per round (higher is better for ryft)" % rounds)
print("%-30s %10s %10s %8s  %s" % ("", "ryft", "llama.cpp", "ratio", "range"))
for k in ry[0]:
    if k not in lc[0]:
        continue
    hi = k.startswith("prefill") or k.startswith("decode")  # higher is better
    ratios = [(a[k] / b[k] if hi else b[k] / a[k]) for a, b in zip(ry, lc)]
    mr = statistics.median(a[k] for a in ry)
    ml = statistics.median(b[k] for b in lc)
    print("%-30s %10.2f %10.2f %7.2fx  %.2f-%.2fx" % (k, mr, ml, mr / ml if hi else ml / mr, min(ratios), max(ratios)))
PY

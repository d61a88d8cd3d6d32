#!/bin/sh
# One command for the benchmark suite: builds ryft, creates a virtualenv with
# jax[cpu] and numpy (and torch when a CPU wheel installs from the package
# index), runs every workload on every system with the same thread count in
# the same run, and writes the ratio table to bench/RESULTS.md (keeping the
# hand-written sections after its marker line). The PJRT bench runs when the
# XLA CPU plugin could be fetched (tools/fetch-pjrt.sh, Linux x86-64).
#   bench/run.sh            # threads = RYFT_NUM_THREADS or the core count
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
threads=${RYFT_NUM_THREADS:-$(nproc)}
export RYFT_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads BLIS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
mkdir -p "$out"
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=Release -DRYFT_PJRT=ON >/dev/null
cmake --build "$out" --target ryft_static -j"$threads" >/dev/null
# what the static library needs (zlib, PCRE2, MPI where the build found them)
libs=$(sed -n 's/^Libs.private: //p' "$out/ryft.pc")
cc -std=c11 -O2 -march=native -ffp-contract=fast -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/src" \
  "$root/bench/ryft_bench.c" "$out/libryft.a" $libs -o "$out/ryft_bench"
cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/src" \
  "$root/bench/gemm_compare.c" "$out/libryft.a" $libs -o "$out/gemm_compare"
plugin="$out/pjrt/xla_cpu_pjrt.so"
if [ -f "$plugin" ]; then
  cc -std=c11 -O2 -march=native -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/src" \
    "$root/bench/pjrt_bench.c" "$out/libryft.a" $libs -o "$out/pjrt_bench"
else
  echo "bench: no PJRT plugin (tools/fetch-pjrt.sh failed); the PJRT bench is skipped" >&2
  rm -f "$out/pjrt_bench"
fi
venv=${BENCH_VENV:-$out/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "jax[cpu]" numpy
  "$venv/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null ||
    "$venv/bin/pip" install -q torch 2>/dev/null || echo "bench: torch does not install here; skipped" >&2
fi
log="$out/bench.log"
: > "$log"
"$out/ryft_bench" | tee -a "$log"
"$out/gemm_compare" | tee -a "$log"
if [ -x "$out/pjrt_bench" ]; then # XLA's log lines go to pjrt_bench.err
  "$out/pjrt_bench" "$plugin" 2>"$out/pjrt_bench.err" | tee -a "$log"
fi
"$venv/bin/python" "$root/bench/peers/jax_bench.py" jax numpy mlp torch grads 2>/dev/null | tee -a "$log"
"$venv/bin/python" "$root/bench/report.py" "$log" "$threads" "$root/bench/RESULTS.md" > "$out/RESULTS.md"
mv "$out/RESULTS.md" "$root/bench/RESULTS.md"
echo "bench: wrote bench/RESULTS.md"

#!/bin/sh
# One command for the benchmark suite: builds ryft, creates a virtualenv with
# jax[cpu] and numpy (and torch when a CPU wheel installs from the package
# index), runs every workload on every system with the same thread count in
# the same run, and writes the ratio table to bench/RESULTS.md (keeping the
# hand-written sections after its marker line). It first prints where it runs
# (CPU, features, gcc's -march=native, caches, load) and installs the GEMM
# peers from Debian when missing. The PJRT bench runs when the
# XLA CPU plugin could be fetched (tools/fetch-pjrt.sh, Linux x86-64).
#   bench/run.sh            # threads = RYFT_NUM_THREADS or the core count
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
threads=${RYFT_NUM_THREADS:-$(nproc)}
export RYFT_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads BLIS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
mkdir -p "$out"
log="$out/bench.log"
: > "$log"
# Where it ran: the CPU, the features the kernels could use, what gcc makes of
# -march=native, caches and load (into the log too: report.py prints them)
machine() { echo "MACHINE $1: $2" | tee -a "$log"; }
machine cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
machine features "$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' '\n' |
  grep -E '^(fma|avx2|avx512.*|amx.*|avx_vnni.*|.*bf16.*|.*fp16.*)$' | tr '\n' ' ')"
machine gcc "$(cc --version | head -1); -march=native is $(cc -march=native -Q --help=target 2>/dev/null |
  sed -n 's/^[[:space:]]*-march=[[:space:]]*//p' | head -1), -mprefer-vector-width=$(cc -march=native -Q --help=target 2>/dev/null |
  sed -n 's/^[[:space:]]*-mprefer-vector-width=[[:space:]]*//p' | head -1)"
machine caches "$(lscpu 2>/dev/null | sed -n 's/^\(L[123][di]* cache\):[[:space:]]*/\1 /p' | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
machine load "$(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
# The GEMM peers bench/gemm_compare.c dlopens (OpenBLAS, BLIS, oneDNN):
# installed from Debian when missing, so every run compares against them
peers=""
for p in libopenblas.so.0:libopenblas0 libblis.so.4:libblis4 libdnnl.so.2:libdnnl2; do
  /sbin/ldconfig -p 2>/dev/null | grep -q "${p%%:*}" || peers="$peers ${p#*:}"
done
if [ -n "$peers" ] && command -v apt-get >/dev/null 2>&1; then
  echo "bench: installing the GEMM peers:$peers" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $peers; } >&2 ||
    echo "bench: could not install$peers; gemm_compare measures without them" >&2
fi
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
"$out/ryft_bench" | tee -a "$log"
"$out/gemm_compare" | tee -a "$log"
if [ -x "$out/pjrt_bench" ]; then # XLA's log lines go to pjrt_bench.err
  "$out/pjrt_bench" "$plugin" 2>"$out/pjrt_bench.err" | tee -a "$log"
fi
"$venv/bin/python" "$root/bench/peers/jax_bench.py" jax numpy mlp torch grads 2>/dev/null | tee -a "$log"
"$venv/bin/python" "$root/bench/report.py" "$log" "$threads" "$root/bench/RESULTS.md" > "$out/RESULTS.md"
mv "$out/RESULTS.md" "$root/bench/RESULTS.md"
echo "bench: wrote bench/RESULTS.md"

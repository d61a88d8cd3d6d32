#!/bin/sh
# The latency of the job's key-value store across 2 MPI ranks (bench/dist_kv.c):
# builds it against build/libryft.a and runs it under mpirun -np 2.
set -e
# MPIRUN_FLAGS: more mpirun options; in a container that blocks cross-memory
# attach, "--mca btl_vader_single_copy_mechanism none" (slower: see RESULTS)
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpicc -O2 -I"$root/include" "$root/bench/dist_kv.c" -o "$tmp/dist_kv" "$root/build/libryft.a" \
  $(pkg-config --libs libpcre2-8) -lz -lm -ldl -lpthread
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
RYFT_NUM_THREADS=1 mpirun -np 2 -x RYFT_NUM_THREADS ${MPIRUN_FLAGS:-} "$tmp/dist_kv"

# Sourced by the MPI benchmarks (bench/dist_*.sh): $root (the repository),
# mpirun allowed as root (containers), $tmp (removed on exit), and
# `mpi_bench NAME`, which builds bench/NAME.c against build/libryft.a, prints
# the load and the CPU, and runs it under mpirun -np 2 with 1 thread a rank.
# MPIRUN_FLAGS: more mpirun options; in a container that blocks cross-memory
# attach, "--mca btl_vader_single_copy_mechanism none" (slower: see RESULTS)
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mpi_bench() {
  mpicc -O2 -I"$root/include" "$root/bench/$1.c" -o "$tmp/$1" "$root/build/libryft.a" \
    $(pkg-config --libs libpcre2-8) -lz -lm -ldl -lpthread
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
  RYFT_NUM_THREADS=1 mpirun -np 2 -x RYFT_NUM_THREADS ${MPIRUN_FLAGS:-} "$tmp/$1"
}

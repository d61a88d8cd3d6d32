#!/bin/sh
# The latency of the job's key-value store across 2 MPI ranks (bench/dist_kv.c):
# builds it against build/libryft.a and runs it under mpirun -np 2
# (bench/mpi_common.sh; MPIRUN_FLAGS adds mpirun options).
set -e
. "$(dirname "$0")/mpi_common.sh"
mpi_bench dist_kv

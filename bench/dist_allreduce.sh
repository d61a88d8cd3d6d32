#!/bin/sh
# The all_reduce across 2 MPI ranks on this machine (shared memory) at the
# sizes of a train step's gradients (bench/dist_allreduce.c): builds the
# program against build/libryft.a and runs it under mpirun -np 2
# (bench/mpi_common.sh; MPIRUN_FLAGS adds mpirun options).
set -e
. "$(dirname "$0")/mpi_common.sh"
mpi_bench dist_allreduce

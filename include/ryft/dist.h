/* ryft/dist.h - programs over several processes and hosts, with MPI.
 *
 * A program whose collectives (ry_all_reduce, ry_all_gather,
 * ry_reduce_scatter, ry_psum, ry_pmean) use a device mesh of exactly
 * ry_dist_size() devices runs, on the interp and cpu devices, with one
 * process per device of the mesh: process (rank) r is device r of the
 * row-major mesh, and every collective combines the values of the processes
 * in its group, with the same results as the single-process multi-device
 * run (ry_pjrt_execute_per_device). Reductions combine the members of a
 * group in their order in the group, so results are the same on every run
 * and every rank. Every rank must run the same programs in the same order.
 *
 * Start the processes with MPI's launcher: `mpirun -np 2 ./prog`. MPI is an
 * optional dependency (CMake option RYFT_MPI, on when MPI is found): in a
 * build without it ry_dist_init fails with RY_ERR_UNSUPPORTED and the rest of
 * ryft works as before. A collective that gets no answer from another rank
 * within RYFT_DIST_TIMEOUT seconds (default 60) fails with a message that
 * names the rank it waited for; the job cannot continue after that, and
 * ry_dist_finalize then ends it on every rank (MPI_Abort). */
#ifndef RYFT_DIST_H
#define RYFT_DIST_H
#include "core.h"
#include "trace.h" /* ry_reduce_kind */
#ifdef __cplusplus
extern "C" {
#endif

/* Join the job (MPI_Init_thread; argc/argv may be NULL). Called once per
 * process, before any program with a cross-process collective runs. Outside
 * a launcher the job is this one process (size 1). */
RY_API ry_status ry_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize; MPI_Abort if a collective failed, which
 * ends every rank). Nothing of ryft's distributed API works afterwards. */
RY_API ry_status ry_dist_finalize(void);
/* End the job on every rank now (MPI_Abort with status code), after a
 * failure on this rank that the others cannot see; exits this process too.
 * Outside a job it is exit(code). */
RY_API void ry_dist_abort(int code);
/* This process's rank in [0, size) and the number of processes; 0 and 1
 * before ry_dist_init, after ry_dist_finalize, and without MPI. */
RY_API int ry_dist_rank(void);
RY_API int ry_dist_size(void);
/* Whether this process was started by an MPI launcher (its environment
 * names a world size above 1); ry_dist_init is then required. */
RY_API int ry_dist_launched(void);
/* The rows of a global batch that this rank trains on: rows
 * [rank*B/size, (rank+1)*B/size) of dimension 0 (B divisible by size). */
RY_API ry_status ry_dist_shard_rows(const ry_array *global, ry_array **local);
/* Collectives on host arrays between programs, for devices whose programs
 * cannot reach the other processes (each process drives its own PJRT
 * client: run the gradient program, all-reduce its outputs here, run the
 * update program). Every rank calls them with an array of the same type.
 * all_reduce: x combined over all ranks (RY_SUM, RY_PROD, RY_MAX, RY_MIN),
 * the same bits as the all_reduce op in a program; broadcast: rank root's
 * x on every rank. Outside a job both return x's values. */
RY_API ry_status ry_dist_all_reduce(const ry_array *x, ry_reduce_kind kind, ry_array **out);
RY_API ry_status ry_dist_broadcast(const ry_array *x, int root, ry_array **out);
/* The job's key-value store, for processes that must find each other
 * before they can talk (PJRT plugins of several nodes: ryft hands it to
 * them, see ryft/pjrt.h). Rank 0 holds it and serves the other ranks from
 * a thread that ry_dist_init starts, so a put or get needs no matching call
 * on another rank; outside a job the store is this process's own, and it
 * is emptied by ry_dist_finalize. Keys are C strings, values any bytes.
 * put stores a copy of value (size bytes), replacing an earlier value of
 * the key. get waits up to timeout_ms (0: just look) for the key to be set
 * and returns a copy of its value (*value, freed with ry_free; NUL-
 * terminated for convenience, *size without the NUL; size may be NULL):
 * RY_ERR_NOT_FOUND naming the key when the time passes first, RY_ERR_IO
 * when rank 0 does not answer within RYFT_DIST_TIMEOUT seconds. */
RY_API ry_status ry_dist_kv_put(const char *key, const void *value, size_t size);
RY_API ry_status ry_dist_kv_get(const char *key, int timeout_ms, void **value, size_t *size);
/* Seconds this process has spent in cross-process collectives so far
 * (waiting included): the communication time of a step. */
RY_API double ry_dist_comm_seconds(void);

#ifdef __cplusplus
}
#endif
#endif

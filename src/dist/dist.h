/* Internal side of ryft/dist.h: the transport the cross-process collectives
 * (src/backend/interp/collective_dist.c) use. Prefix rydist_. */
#ifndef RYFT_DIST_INTERNAL_H
#define RYFT_DIST_INTERNAL_H
#include "../core/internal.h"
#include "ryft/dist.h"

/* True when this process is one of several ranks of an initialized job. */
bool rydist_active(void);
/* One exchange among the n members of a group (world ranks peers[0..n),
 * this process is member me): send[j] (sbytes[j] bytes) goes to member j and
 * recv[j] (rbytes[j] bytes) comes from member j, for every j != me. Waits at
 * most the job's timeout; `what` names the collective in the error. Once an
 * exchange has failed every later one fails (the job is broken). */
ry_status rydist_exchange(const char *what, int n, const int *peers, int me, void *const *send, const size_t *sbytes,
                          void *const *recv, const size_t *rbytes);

/* What dist.c shares with kv.c: the mutex that serializes every MPI call
 * (MPI_THREAD_SERIALIZED), the clock, the job's timeout (RYFT_DIST_TIMEOUT
 * seconds), and marking the job broken after a transport failure. */
void rydist_lock(void);
void rydist_unlock(void);
double rydist_now(void);
double rydist_timeout(void);
void rydist_set_broken(void);
/* The key-value store's service (kv.c): started by ry_dist_init (rank 0
 * serves the store on its own communicator from a thread), stopped and the
 * store emptied by ry_dist_finalize, after every rank has come to it
 * (wait_for_all; not in a broken job). */
ry_status rydist_kv_start(void);
void rydist_kv_stop(bool wait_for_all);

#endif

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

#endif

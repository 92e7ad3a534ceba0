/*
 * volume_open.h
 *	  The storage half of opening a volume under a new epoch, as a new
 *	  compute does at every start (docs/architecture.md, "Epochs and
 *	  recovery"): find the highest volume epoch any segment knows, fence
 *	  every PG at the next one so that the writer before can never again
 *	  collect a write quorum, and, once VDL is known, truncate every PG's
 *	  ragged edge under that epoch.  Blocking calls over common/client.c;
 *	  one connection per node, shared by every PG.
 */
#ifndef COMPUTE_INIT_VOLUME_OPEN_H
#define COMPUTE_INIT_VOLUME_OPEN_H

#include "postgres_fe.h"

#include "epochmsg.h"			/* aurora_trunc_entry */
#include "logmsg.h"				/* aurora_member */
#include "volume.h"				/* aurora_geometry */

typedef struct VolumeOpen VolumeOpen;

/* What one PG said while the volume was opened. */
typedef struct PgOpenState
{
	int			answered;		/* members that answered SEGMENT_INFO */
	int			fenced;			/* members that acknowledged the fence */
	int			truncated;		/* members that acknowledged the truncation */
	uint64		highest_scl;	/* highest SCL an answering member reported */
	uint64		seeded_lsn;		/* highest seed LSN a member reported */
	uint64		truncated_scl;	/* highest SCL a member reported after the truncation */
	uint64		records_dropped;	/* the most any one member dropped */
	uint64		bytes_dropped;
	char		missing[512];	/* members that did not take the last step, and why */
} PgOpenState;

/*
 * Connect nothing yet; nodes[0 .. n) is the volume's node list (kept, not
 * copied).  NULL only when out of memory.
 */
extern VolumeOpen *volume_open_begin(const aurora_member *nodes, int n, uint64 volume_id,
									 int timeout_ms);
extern void volume_open_end(VolumeOpen *vo);

/*
 * Ask the six members of every PG for their state.  Fills *g from PG 0
 * (n_pgs 0 when no segment of PG 0 exists: a volume not created yet),
 * *max_epoch (the highest volume epoch any member reported), and the
 * longest truncation history any member holds (malloc'd into *history,
 * *n_history; NULL, 0 when none).  Returns 0, or -1 with err when fewer
 * than read_quorum members of a PG answered or histories contradict.
 */
extern int	volume_open_discover(VolumeOpen *vo, int read_quorum, aurora_geometry *g,
								 uint64 *max_epoch, aurora_trunc_entry **history,
								 int *n_history, char *err, size_t errlen);

/*
 * Fence every PG at epoch.  Succeeds (0) when at least min_fenced members
 * of each PG acknowledged (6 - min_fenced < write quorum: the writer
 * before can no longer make anything durable); -1 with err otherwise, or
 * when a member holds a higher epoch already (another compute is opening
 * the volume).
 */
extern int	volume_open_fence(VolumeOpen *vo, const aurora_geometry *g, uint64 epoch,
							  int min_fenced, char *err, size_t errlen);

/*
 * Send every member of every PG the truncation history[0 .. n) (its last
 * entry (epoch, VDL)).  Returns the number of PGs a write quorum of whose
 * members applied it; -1 with err when a member refuses it (CONFLICT,
 * STALE_EPOCH: someone else opened the volume meanwhile).
 */
extern int	volume_open_truncate(VolumeOpen *vo, const aurora_geometry *g,
								 const aurora_trunc_entry *history, int n, int write_quorum,
								 char *err, size_t errlen);

/* Per node of the list: whether it failed to answer (it is not asked again). */
extern const bool *volume_open_dead_nodes(const VolumeOpen *vo);

/* What PG pg said (after the steps above). */
extern const PgOpenState *volume_open_pg(const VolumeOpen *vo, uint32 pg);

#endif							/* COMPUTE_INIT_VOLUME_OPEN_H */

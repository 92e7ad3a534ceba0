/*
 * volume_read.h
 *	  Read a volume's WAL back from storage: for every protection group, a
 *	  read quorum of its six segments is asked for its state, and the log of
 *	  the member with the highest SCL is read from the redo point up to that
 *	  SCL (READ_LOG, in pieces), falling back to the next best member on an
 *	  error.  What comes back goes to the walk (wal_walk.h).
 */
#ifndef COMPUTE_INIT_VOLUME_READ_H
#define COMPUTE_INIT_VOLUME_READ_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

#include "logmsg.h"				/* aurora_member */
#include "volume.h"				/* aurora_geometry */
#include "wal_walk.h"			/* WalPgLog */

typedef struct VolumeReadOptions
{
	const aurora_member *nodes; /* the volume's storage nodes */
	int			n_nodes;
	uint64		volume_id;
	XLogRecPtr	from;			/* R: read records starting at or above it */
	int			read_quorum;	/* segments of a PG that must answer (3) */
	int			timeout_ms;		/* per request */
	bool		progress;		/* report long reads on stderr */
	const bool *skip;			/* per node: do not ask (it did not answer earlier); may be NULL */
} VolumeReadOptions;

/*
 * Read every PG of the volume.  The geometry comes from the SEGMENT_INFO of
 * PG 0's segments (placement of PG 0 needs none); *logs is a malloc'd array
 * of g->n_pgs logs, logs[p] PG p's with the SCL it was read to (free with
 * volume_read_free).  Returns 0, or -1 with err: fewer than read_quorum
 * segments of a PG answered, the answers disagree on the geometry, or no
 * member could be read.
 */
extern int	volume_read(const VolumeReadOptions *o, aurora_geometry *g, WalPgLog **logs,
						char *err, size_t errlen);
extern void volume_read_free(WalPgLog *logs, uint32 n_pgs);

#endif							/* COMPUTE_INIT_VOLUME_READ_H */

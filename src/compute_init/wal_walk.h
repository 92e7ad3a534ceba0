/*
 * wal_walk.h
 *	  From the records read out of every protection group of a volume to the
 *	  WAL PostgreSQL wrote: merge the PGs' logs by start LSN, walk the chain
 *	  of records from the redo point R and find VDL, the end of the longest
 *	  prefix every PG durably holds (docs/architecture.md, "Epochs and
 *	  recovery").  Pure logic: no network, no files (test_wal.c tests it).
 */
#ifndef COMPUTE_INIT_WAL_WALK_H
#define COMPUTE_INIT_WAL_WALK_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

#include "logmsg.h"				/* aurora_log_record */
#include "volume.h"				/* aurora_geometry */

/* One record as one PG's log holds it: a copy of envelope + WAL record. */
typedef struct WalPgRecord
{
	XLogRecPtr	start_lsn;
	XLogRecPtr	end_lsn;
	uint32		len;
	uint8	   *payload;
} WalPgRecord;

/*
 * What was read from one PG: its records from R in LSN order, and the SCL
 * of the member they came from (the PG holds every record ending at or
 * below it).
 */
typedef struct WalPgLog
{
	uint32		pg;
	XLogRecPtr	scl;
	int			n;
	int			cap;
	WalPgRecord *recs;
} WalPgLog;

/*
 * Append a copy of r to log (records must come in increasing start LSN).
 * Returns 0, or -1 with err (out of memory, out of order).
 */
extern int	wal_pg_log_add(WalPgLog *log, const aurora_log_record *r,
						   char *err, size_t errlen);
extern void wal_pg_log_reset(WalPgLog *log);

/* A record of the merged WAL; points into a WalPgLog's copy. */
typedef struct WalRecord
{
	XLogRecPtr	start_lsn;
	XLogRecPtr	end_lsn;
	const uint8 *payload;		/* envelope + WAL record */
	uint32		len;
	const uint8 *wal;			/* the WAL record in it, xl_tot_len bytes */
	uint32		wal_len;
	uint32		first_pg;		/* the first PG found holding it */
} WalRecord;

/* Why the walk ended where it did. */
typedef enum WalWalkStop
{
	WAL_WALK_END_OF_LOG,		/* no record after the last one kept */
	WAL_WALK_GAP,				/* the next record held does not follow (xl_prev) */
	WAL_WALK_ABOVE_SCL,			/* the next record ends above a PG's SCL */
	WAL_WALK_BAD_CRC			/* the next record's xl_crc does not match */
} WalWalkStop;

typedef struct WalWalk
{
	int			n_records;		/* merged records of every PG, by start LSN */
	WalRecord  *records;
	int			n_kept;			/* records[0 .. n_kept) continue the WAL from R */
	uint64		bytes_kept;		/* their WAL bytes (xl_tot_len summed) */
	XLogRecPtr	vdl;			/* end of the last kept record (R if none) */
	WalWalkStop stop;
	char		stop_reason[256];
	/* the ragged edge: records held beyond the prefix */
	int			n_beyond;
	XLogRecPtr	beyond_from;	/* start of the first */
	XLogRecPtr	beyond_to;		/* end of the last */
} WalWalk;

/*
 * Merge logs[0 .. g->n_pgs) (logs[p] is PG p's) and walk from redo.  A record
 * held by several PGs must be byte-identical in each; the first record must
 * start at redo; a record continues the WAL iff its xl_prev is the previous
 * record's start (it must then start where that one ended), it ends at or
 * below the SCL of every PG it belongs to (routing from its envelope and g)
 * and its CRC is right.  Returns 0 with *w filled (free with wal_walk_free),
 * or -1 with err when storage contradicts itself (records that differ
 * between PGs, a record missing from a PG whose SCL covers it, a malformed
 * envelope, no record at redo, a record that follows but lies elsewhere).
 */
extern int	wal_walk_run(const WalPgLog *logs, const aurora_geometry *g, XLogRecPtr redo,
						 uint32 seg_size, WalWalk *w, char *err, size_t errlen);
extern void wal_walk_free(WalWalk *w);

/* PostgreSQL's CRC-32C of a WAL record (XLogRecord's xl_crc) is right. */
extern bool wal_record_crc_ok(const uint8 *wal, uint32 len);

#endif							/* COMPUTE_INIT_WAL_WALK_H */

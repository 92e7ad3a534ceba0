/*
 * wal_write.h
 *	  Write the WAL kept by the walk (wal_walk.h) as PostgreSQL's own segment
 *	  files, byte for byte as PostgreSQL lays WAL out from R to VDL, so that
 *	  crash recovery in a new compute replays exactly that and ends at VDL.
 */
#ifndef COMPUTE_INIT_WAL_WRITE_H
#define COMPUTE_INIT_WAL_WRITE_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

#include "wal_walk.h"

/* What the segment files are for (from pg_control, or options). */
typedef struct WalTarget
{
	uint32		seg_size;		/* wal_segment_size */
	TimeLineID	tli;			/* the files' timeline and every xlp_tli */
	uint64		sysid;			/* system identifier of the long headers */
} WalTarget;

/*
 * Build the image of segment segno (seg_size bytes, which the caller zeroed)
 * from recs[0 .. n): consecutive records, the first starting at redo.  Every
 * page from redo's to the last record's gets a page header (the long one
 * first in a segment); a record continuing from the previous page sets
 * XLP_FIRST_IS_CONTRECORD and xlp_rem_len; after an XLOG_SWITCH the segment
 * stays zero, and so does everything after the last record.  The page
 * holding redo says that what precedes redo on it is continuation data, so
 * readers that scan the page from its start (pg_waldump) land on redo; its
 * bytes before redo are zeros, but for the long header of redo's segment's
 * first page, which PostgreSQL's reader checks before any other page of the
 * segment.  Every page is marked XLP_BKP_REMOVABLE, as
 * PostgreSQL marks it outside an online backup.
 */
extern void wal_build_segment(const WalTarget *t, XLogSegNo segno, XLogRecPtr redo,
							  const WalRecord *recs, int n, uint8 *image);

/*
 * Write the segment files holding [redo, vdl) (recs[0 .. n), vdl the end of
 * the last) into dir, then fsync them and dir.  Refuses, writing nothing,
 * when one of the files exists already.  Returns the number of files
 * written, or -1 with err.
 */
extern int	wal_write_segments(const char *dir, const WalTarget *t, XLogRecPtr redo,
							   const WalRecord *recs, int n, XLogRecPtr vdl,
							   char *err, size_t errlen);

/*
 * Continue the WAL in dir, which holds it up to from (a record's end, below
 * which the files stay as they are), with recs[0 .. n) up to vdl: from's
 * segment keeps its bytes below from and is rewritten above it, the later
 * ones are written whole (zeros after vdl), each through a temporary file
 * renamed over the old one; then every segment file after vdl's is removed
 * and dir fsynced.  Returns the number of files written, or -1 with err.
 */
extern int	wal_write_segments_from(const char *dir, const WalTarget *t, XLogRecPtr from,
									const WalRecord *recs, int n, XLogRecPtr vdl,
									char *err, size_t errlen);

/* The first keep bytes of the file at path into image: 0, or -1 with err. */
extern int	wal_read_file_prefix(const char *path, uint8 *image, size_t keep,
								 char *err, size_t errlen);

#endif							/* COMPUTE_INIT_WAL_WRITE_H */

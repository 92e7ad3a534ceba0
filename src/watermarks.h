/*
 * watermarks.h
 *	  The one owner of the volume's watermarks on the compute: PGCL per
 *	  protection group, VCL, VDL and the read points (docs/architecture.md
 *	  "Watermarks").  watermarks.c says who writes and who reads what.
 */
#ifndef AURORA_WATERMARKS_H
#define AURORA_WATERMARKS_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"

/* ---- any process (shared memory) ---- */

extern void aurora_watermarks_init(void);

/* The highest VDL released to commits since the server started (0: none). */
extern XLogRecPtr aurora_released_vdl(void);

/* Raise the released VDL to vdl (never backwards); returns the result. */
extern XLogRecPtr aurora_release_vdl(XLogRecPtr vdl);

/* The shipper streams and VDL covers the WAL the compute recovered. */
extern bool aurora_watermarks_ready(void);

extern bool aurora_watermarks_streaming(void);

/* PG pg's read point as the shipper published it with a VDL (0: none). */
extern XLogRecPtr aurora_published_read_point(int pg);

/* What aurora.watermarks() shows; false while the shipper is not streaming. */
typedef struct AuroraWatermarkView
{
	XLogRecPtr	vcl;
	XLogRecPtr	vdl;
	TimestampTz vdl_advanced_at;
} AuroraWatermarkView;
extern bool aurora_watermarks_view(AuroraWatermarkView *view);

/* The end of the local WAL when the first shipper started (0: none yet). */
extern XLogRecPtr aurora_recovered_wal_end(void);
extern void aurora_note_recovered_wal_end(XLogRecPtr flush);

/* ---- the shipper process only (durable_lock inside) ---- */

extern void aurora_watermarks_start(int n_pgs);
extern void aurora_watermarks_resume(XLogRecPtr resume);
extern void aurora_watermarks_seeded(int pg, XLogRecPtr seeded);
extern void aurora_watermarks_track(XLogRecPtr end, bool cpl, int npgs,
									const uint32 *pgs);
extern void aurora_watermarks_advance(void);
extern XLogRecPtr aurora_watermarks_pgcl_advanced(int pg, XLogRecPtr pgcl,
												  bool *main_waited);
extern XLogRecPtr aurora_watermarks_publish(bool running);
extern void aurora_watermarks_main_waits(bool waits);
extern XLogRecPtr aurora_watermarks_vdl(void);
extern int	aurora_watermarks_in_flight(void);

#endif							/* AURORA_WATERMARKS_H */

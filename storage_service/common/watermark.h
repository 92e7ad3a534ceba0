/*
 * watermark.h - the arithmetic of VCL and VDL (docs/architecture.md
 * "Watermarks"), without PostgreSQL headers, so that it is unit-tested on
 * its own (test/unit/test_watermark.c).
 *
 * The compute's shipper (src/watermarks.c) keeps every record it shipped in
 * an aurora_vcl_ring, in LSN order, each with the protection groups it went
 * to.  Given the PGCL of every PG, aurora_vcl_ring_advance() drops the
 * records that are durable from the front and moves VCL and VDL:
 *
 *   VCL = end LSN of the longest prefix whose records each have
 *         PGCL >= their end LSN in every PG they went to;
 *   VDL = the highest end LSN in that prefix that is a CPL.
 *
 * Neither ever moves backwards.  The ring does not allocate and takes no
 * lock: the caller grows it (aurora_vcl_ring_regrow) and serialises access.
 */
#ifndef AURORA_WATERMARK_H
#define AURORA_WATERMARK_H

#include <stdbool.h>
#include <stdint.h>

#include "walmeta.h"

/* the pages of one record lie in at most this many PGs */
#define AURORA_RECORD_MAX_PGS	AURORA_WALMETA_MAX_BLOCKS

/* every PG: a record that changes relations (any PG may hold their chunks) */
#define AURORA_RECORD_EVERY_PG	(-1)

/* A record shipped and not yet at PGCL in all its PGs. */
typedef struct aurora_inflight_record
{
	uint64_t	end;			/* end LSN */
	bool		cpl;			/* its end is a consistency point */
	int			npgs;			/* AURORA_RECORD_EVERY_PG, or entries in pgs */
	uint32_t	pgs[AURORA_RECORD_MAX_PGS];
} aurora_inflight_record;

typedef struct aurora_vcl_ring
{
	aurora_inflight_record *recs;	/* cap entries, count used from head */
	int			head;
	int			count;
	int			cap;
	uint64_t	vcl;
	uint64_t	vdl;
} aurora_vcl_ring;

/* An empty ring whose VCL and VDL start at start (0, or a resume point). */
extern void aurora_vcl_ring_init(aurora_vcl_ring *ring, uint64_t start);

/* The capacity the ring must grow to before the next push (0: it has room). */
extern int	aurora_vcl_ring_grow_to(const aurora_vcl_ring *ring);

/*
 * Move the records into buf (cap entries, cap >= count) and use it from now
 * on; returns the old buffer for the caller to free.
 */
extern aurora_inflight_record *aurora_vcl_ring_regrow(aurora_vcl_ring *ring,
													  aurora_inflight_record *buf,
													  int cap);

/*
 * Append a record (the ring must have room).  npgs is
 * AURORA_RECORD_EVERY_PG or the number of PGs in pgs.
 */
extern void aurora_vcl_ring_push(aurora_vcl_ring *ring, uint64_t end, bool cpl,
								 int npgs, const uint32_t *pgs);

/*
 * Drop the durable prefix given pgcl[0 .. n_pgs - 1] and move VCL and VDL.
 * A record sent to a PG at or beyond n_pgs never becomes durable.
 */
extern void aurora_vcl_ring_advance(aurora_vcl_ring *ring, const uint64_t *pgcl,
									int n_pgs);

#endif							/* AURORA_WATERMARK_H */

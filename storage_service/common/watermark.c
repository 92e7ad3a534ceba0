/*
 * watermark.c - VCL and VDL from the records in flight and the PGCLs
 * (docs/architecture.md "Watermarks"); see watermark.h.
 *
 * Used by the compute's shipper only (src/watermarks.c holds the ring under
 * its lock and publishes the result); it is here, not in src/, so that the
 * definitions are tested without a server.
 */
#include "watermark.h"

#include <string.h>

void
aurora_vcl_ring_init(aurora_vcl_ring *ring, uint64_t start)
{
	memset(ring, 0, sizeof(*ring));
	ring->vcl = start;
	ring->vdl = start;
}

int
aurora_vcl_ring_grow_to(const aurora_vcl_ring *ring)
{
	if (ring->count < ring->cap)
		return 0;
	return ring->cap ? ring->cap * 2 : 1024;
}

aurora_inflight_record *
aurora_vcl_ring_regrow(aurora_vcl_ring *ring, aurora_inflight_record *buf, int cap)
{
	aurora_inflight_record *old = ring->recs;

	for (int i = 0; i < ring->count; i++)
		buf[i] = ring->recs[(ring->head + i) % ring->cap];
	ring->recs = buf;
	ring->cap = cap;
	ring->head = 0;
	return old;
}

void
aurora_vcl_ring_push(aurora_vcl_ring *ring, uint64_t end, bool cpl, int npgs,
					 const uint32_t *pgs)
{
	aurora_inflight_record *r = &ring->recs[(ring->head + ring->count) % ring->cap];

	r->end = end;
	r->cpl = cpl;
	r->npgs = npgs;
	if (npgs > 0)
		memcpy(r->pgs, pgs, sizeof(uint32_t) * (size_t) npgs);
	ring->count++;
}

static bool
record_durable(const aurora_inflight_record *r, const uint64_t *pgcl, int n_pgs)
{
	if (r->npgs == AURORA_RECORD_EVERY_PG)
	{
		for (int p = 0; p < n_pgs; p++)
			if (pgcl[p] < r->end)
				return false;
		return true;
	}
	for (int i = 0; i < r->npgs; i++)
		if (r->pgs[i] >= (uint32_t) n_pgs || pgcl[r->pgs[i]] < r->end)
			return false;
	return true;
}

void
aurora_vcl_ring_advance(aurora_vcl_ring *ring, const uint64_t *pgcl, int n_pgs)
{
	while (ring->count > 0)
	{
		const aurora_inflight_record *r = &ring->recs[ring->head];

		/* the first record not durable everywhere stops VCL: a gap */
		if (!record_durable(r, pgcl, n_pgs))
			break;
		ring->vcl = r->end;
		if (r->cpl)
			ring->vdl = r->end;
		ring->head = (ring->head + 1) % ring->cap;
		ring->count--;
	}
}

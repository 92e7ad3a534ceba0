/*
 * test_watermark.c - unit tests of VCL and VDL (storage_service/common/
 * watermark.c) against the definitions in docs/architecture.md
 * "Watermarks": VCL is the end of the longest prefix of records at PGCL in
 * every PG they went to, so it stops at the first gap; VDL is the highest
 * CPL at or below VCL; neither moves backwards; a record for every PG needs
 * every PGCL.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "tap.h"
#include "watermark.h"

#define N_PGS 4

static aurora_vcl_ring ring;
static uint64_t pgcl[N_PGS];

static void
start(uint64_t at)
{
	free(ring.recs);
	aurora_vcl_ring_init(&ring, at);
	for (int p = 0; p < N_PGS; p++)
		pgcl[p] = 0;
}

/* push, growing the ring as its users do */
static void
push(uint64_t end, bool cpl, int npgs, const uint32_t *pgs)
{
	int			cap = aurora_vcl_ring_grow_to(&ring);

	if (cap > 0)
		free(aurora_vcl_ring_regrow(&ring, malloc(sizeof(aurora_inflight_record) * (size_t) cap),
									cap));
	aurora_vcl_ring_push(&ring, end, cpl, npgs, pgs);
}

static void
push1(uint64_t end, bool cpl, uint32_t pg)
{
	push(end, cpl, 1, &pg);
}

static void
advance(void)
{
	aurora_vcl_ring_advance(&ring, pgcl, N_PGS);
}

int
main(void)
{
	/* empty: VCL = VDL = the start point */
	start(0);
	advance();
	is_uint(ring.vcl, 0, "empty ring: VCL 0");
	start(500);
	advance();
	is_uint(ring.vdl, 500, "resumed ring: VDL starts at the resume point");

	/* one PG: VCL follows its PGCL record by record */
	start(0);
	push1(100, true, 0);
	push1(200, true, 0);
	push1(300, true, 0);
	pgcl[0] = 250;
	advance();
	is_uint(ring.vcl, 200, "VCL is the last record end at or below PGCL, not PGCL itself");
	is_int(ring.count, 1, "durable records leave the ring");
	pgcl[0] = 300;
	advance();
	is_uint(ring.vcl, 300, "PGCL at the last end: VCL there");
	is_int(ring.count, 0, "ring empty");

	/* VCL stops at the first gap, even when later records are durable */
	start(0);
	push1(100, true, 0);
	push1(200, true, 1);
	push1(300, true, 0);
	pgcl[0] = 300;
	advance();
	is_uint(ring.vcl, 100, "a record not yet at PGCL in its PG (PG 1) stops VCL");
	is_uint(ring.vdl, 100, "and VDL with it");
	pgcl[1] = 200;
	advance();
	is_uint(ring.vcl, 300, "the gap filled: VCL jumps over records already durable");

	/* a record in two PGs needs both */
	start(0);
	{
		uint32_t	two[2] = {1, 2};

		push(100, true, 2, two);
	}
	pgcl[1] = 100;
	advance();
	is_uint(ring.vcl, 0, "record in PGs 1 and 2: PG 1 alone is not enough");
	pgcl[2] = 100;
	advance();
	is_uint(ring.vcl, 100, "both PGs at PGCL: durable");

	/* a record for every PG needs every PGCL, PGs it names none */
	start(0);
	push(100, true, AURORA_RECORD_EVERY_PG, NULL);
	pgcl[0] = pgcl[1] = pgcl[2] = 100;
	advance();
	is_uint(ring.vcl, 0, "every-PG record: three PGs of four are not enough");
	pgcl[3] = 100;
	advance();
	is_uint(ring.vcl, 100, "every-PG record: all four PGs");

	/* VDL is the highest CPL at or below VCL */
	start(0);
	push1(100, true, 0);
	push1(200, false, 0);
	push1(300, false, 0);
	pgcl[0] = 300;
	advance();
	is_uint(ring.vcl, 300, "VCL counts records whose end is no CPL");
	is_uint(ring.vdl, 100, "VDL stays at the last CPL below VCL");
	push1(400, true, 0);
	advance();
	is_uint(ring.vdl, 100, "a CPL above VCL does not move VDL");
	pgcl[0] = 400;
	advance();
	is_uint(ring.vdl, 400, "VCL reaches the CPL: VDL = VCL");

	/* never backwards: a lower PGCL afterwards changes nothing */
	pgcl[0] = 50;
	advance();
	is_uint(ring.vcl, 400, "VCL never moves backwards");
	is_uint(ring.vdl, 400, "VDL never moves backwards");

	/* a PG the compute does not have never becomes durable */
	start(0);
	push1(100, true, N_PGS);
	pgcl[0] = pgcl[1] = pgcl[2] = pgcl[3] = 1000;
	advance();
	is_uint(ring.vcl, 0, "a record for an unknown PG stays in flight");

	/* growth keeps order across the wrap-around */
	start(0);
	for (int i = 1; i <= 1000; i++)
		push1((uint64_t) i * 10, true, (uint32_t) (i % N_PGS));
	for (int p = 0; p < N_PGS; p++)
		pgcl[p] = 5000;
	advance();
	is_uint(ring.vcl, 5000, "1000 records, half durable: VCL 5000");
	for (int i = 1001; i <= 3000; i++)
		push1((uint64_t) i * 10, true, (uint32_t) (i % N_PGS));
	ok(ring.cap >= 2500, "the ring grew past its first 1024 entries (cap %d)", ring.cap);
	pgcl[0] = pgcl[1] = pgcl[3] = 30000;
	pgcl[2] = 20000;
	advance();
	is_uint(ring.vcl, 20010, "after a wrap and a regrow VCL stops at the first record PG 2 lacks");
	pgcl[2] = 30000;
	advance();
	is_uint(ring.vcl, 30000, "all durable");
	is_int(ring.count, 0, "ring empty");

	free(ring.recs);
	return done_testing();
}

/*
 * test_volume.c - unit tests of volume geometry (common/volume.c): block
 * routing is pinned to fixed values (it is a durable contract), keeps a
 * chunk together, keeps a visibility-map page with its heap chunk and
 * spreads chunks evenly; placement always yields six
 * distinct nodes, two in each of three AZs, ignores the order nodes are
 * listed in, balances segments over AZs and nodes, and refuses layouts that
 * cannot survive an AZ failure.
 */
#include <stdio.h>
#include <string.h>

#include "quorum.h"
#include "tap.h"
#include "volume.h"

static void
node(aurora_member *m, const char *id, const char *az)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->node_id, sizeof(m->node_id), "%s", id);
	snprintf(m->az, sizeof(m->az), "%s", az);
	snprintf(m->url, sizeof(m->url), "tcp://%s:7000", id);
}

/* Six distinct members, exactly two per AZ, three AZs. */
static bool
placement_ok(const aurora_member *m)
{
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		int			same_az = 0;

		for (int j = 0; j < AURORA_PG_COPIES; j++)
		{
			if (i != j && strcmp(m[i].node_id, m[j].node_id) == 0)
				return false;
			if (strcmp(m[i].az, m[j].az) == 0)
				same_az++;
		}
		if (same_az != AURORA_PG_COPIES / AURORA_PG_AZS)
			return false;
	}
	return true;
}

static void
test_geometry(void)
{
	aurora_geometry g = {16, 1024};
	char		err[256];

	ok(aurora_geometry_valid(&g, err, sizeof(err)), "16 PGs of 1024-block chunks is valid");
	g.n_pgs = 0;
	ok(!aurora_geometry_valid(&g, err, sizeof(err)), "0 PGs is not");
	like(err, "between 1 and 65536", "and says the range");
	g.n_pgs = 65537;
	ok(!aurora_geometry_valid(&g, err, sizeof(err)), "65537 PGs is not");
	g.n_pgs = 4;
	g.blocks_per_segment = 0;
	ok(!aurora_geometry_valid(&g, err, sizeof(err)), "0 blocks per segment is not");
	like(err, "blocks per segment", "and says which");
}

static void
test_routing(void)
{
	aurora_geometry g = {16, 128};
	aurora_block_ref b = {1663, 5, 16384, 0, 0};
	uint32_t	first = aurora_block_pg(&g, &b);
	int			per_pg[16] = {0};
	int			same = 1;
	int			min = 1 << 30,
				max = 0;

	/*
	 * Pinned (a change here re-routes every existing volume); the values
	 * come from an independent implementation of PROTOCOL.md's rule.
	 */
	is_uint(aurora_block_pg(&g, &b), 6, "block 0 of 1663/5/16384 main goes to PG 6");
	b.fork = 1;
	is_uint(aurora_block_pg(&g, &b), 15, "its FSM fork goes to PG 15");
	{
		/* a VM page goes with the heap chunk of the first block it covers */
		aurora_geometry geoms[] = {{16, 1024}, {4, 131072}, {7, 8}, {65536, 40000}};
		bool		same = true;

		for (int i = 0; i < 4; i++)
			for (uint32_t v = 0; v < 20; v++)
			{
				aurora_block_ref vm = b,
							heap = b;

				vm.fork = AURORA_VM_FORK;
				vm.blkno = v;
				heap.fork = AURORA_MAIN_FORK;
				heap.blkno = v * AURORA_HEAP_BLOCKS_PER_VM_PAGE;
				same &= aurora_block_pg(&geoms[i], &vm) == aurora_block_pg(&geoms[i], &heap);
			}
		ok(same, "a visibility-map page goes to the PG of the heap chunk it starts in");
	}
	b.fork = 0;
	b.blkno = 2 * 128 + 5;
	is_uint(aurora_block_pg(&g, &b), 12, "block 261 (third chunk) goes to PG 12");
	b.blkno = 3 * 128;
	is_uint(aurora_block_pg(&g, &b), 8, "block 384 (fourth chunk) goes to PG 8");
	b.rel_number = 16385;
	b.blkno = 0;
	is_uint(aurora_block_pg(&g, &b), 12, "block 0 of the next relation goes to PG 12");
	b.rel_number = 16384;

	for (uint32_t blk = 0; blk < 128; blk++)
	{
		b.blkno = blk;
		same &= aurora_block_pg(&g, &b) == first;
	}
	ok(same, "all 128 blocks of a chunk share a PG");

	for (uint32_t rel = 16384; rel < 16384 + 400; rel++)
		for (uint32_t chunk = 0; chunk < 40; chunk++)
		{
			aurora_block_ref r = {1663, 5, rel, 0, chunk * 128 + 7};

			per_pg[aurora_block_pg(&g, &r)]++;
		}
	for (int i = 0; i < 16; i++)
	{
		min = per_pg[i] < min ? per_pg[i] : min;
		max = per_pg[i] > max ? per_pg[i] : max;
	}
	ok(min > 1000 * 0.9 && max < 1000 * 1.1,
	   "16 000 chunks spread evenly over 16 PGs (min %d, max %d, ideal 1000)", min, max);

	g.n_pgs = 1;
	is_uint(aurora_block_pg(&g, &b), 0, "one PG: everything in PG 0");
}

static void
test_placement(void)
{
	aurora_member six[6],
				nine[9],
				shuffled[9],
				m[AURORA_PG_COPIES],
				m2[AURORA_PG_COPIES];
	const char *azs[3] = {"a", "b", "c"};
	char		err[256];
	int			all_ok = 1;
	int			same_order = 1;
	int			count[9] = {0};
	int			min = 1 << 30,
				max = 0;

	for (int i = 0; i < 6; i++)
	{
		char		id[8];

		snprintf(id, sizeof(id), "%s%d", azs[i / 2], i % 2 + 1);
		node(&six[i], id, azs[i / 2]);
	}
	is_int(aurora_place_pg(six, 6, 0, m, err, sizeof(err)), 0, "six nodes in three AZs: PG 0 placed");
	ok(placement_ok(m), "six distinct members, two per AZ");
	is_str(m[0].node_id, "a1", "replica 0 is a1");
	is_str(m[5].node_id, "c2", "replica 5 is c2");
	is_str(m[5].url, "tcp://c2:7000", "members keep their URLs");

	/* nine nodes, three per AZ, listed in a scrambled order */
	for (int i = 0; i < 9; i++)
	{
		char		id[8];

		snprintf(id, sizeof(id), "%s%d", azs[i / 3], i % 3 + 1);
		node(&nine[i], id, azs[i / 3]);
		shuffled[(i * 4) % 9] = nine[i];
	}
	for (uint32_t pg = 0; pg < 300; pg++)
	{
		if (aurora_place_pg(nine, 9, pg, m, err, sizeof(err)) != 0 ||
			aurora_place_pg(shuffled, 9, pg, m2, err, sizeof(err)) != 0)
			all_ok = 0;
		all_ok &= placement_ok(m);
		same_order &= memcmp(m, m2, sizeof(m)) == 0;
		for (int r = 0; r < AURORA_PG_COPIES; r++)
			for (int i = 0; i < 9; i++)
				if (strcmp(m[r].node_id, nine[i].node_id) == 0)
					count[i]++;
	}
	ok(all_ok, "300 PGs on nine nodes: every placement valid");
	ok(same_order, "the order nodes are listed in does not matter");
	for (int i = 0; i < 9; i++)
	{
		min = count[i] < min ? count[i] : min;
		max = count[i] > max ? count[i] : max;
	}
	ok(max - min <= 1, "each node holds 200 segments give or take one (min %d, max %d)", min, max);

	/* four AZs of two: AZ use rotates, each node in 3/4 of the PGs */
	{
		aurora_member eight[8];
		const char *four[4] = {"a", "b", "c", "d"};
		int			c8[8] = {0};

		for (int i = 0; i < 8; i++)
		{
			char		id[8];

			snprintf(id, sizeof(id), "%s%d", four[i / 2], i % 2 + 1);
			node(&eight[i], id, four[i / 2]);
		}
		all_ok = 1;
		for (uint32_t pg = 0; pg < 400; pg++)
		{
			all_ok &= aurora_place_pg(eight, 8, pg, m, err, sizeof(err)) == 0 && placement_ok(m);
			for (int r = 0; r < AURORA_PG_COPIES; r++)
				for (int i = 0; i < 8; i++)
					if (strcmp(m[r].node_id, eight[i].node_id) == 0)
						c8[i]++;
		}
		ok(all_ok, "four AZs: every placement uses three of them, two nodes each");
		ok(c8[0] == 300 && c8[7] == 300, "and each node holds 300 of 400 PGs (a1 %d, d2 %d)",
		   c8[0], c8[7]);
	}

	/* layouts that cannot survive an AZ failure */
	node(&six[5], "c2", "d");	/* AZ c now has one node */
	is_int(aurora_place_pg(six, 6, 0, m, err, sizeof(err)), -1, "an AZ with one node: refused");
	like(err, "needs 3 availability zones with at least 2", "with the reason");
	node(&six[5], "a1", "c");	/* a1 twice */
	is_int(aurora_place_pg(six, 6, 0, m, err, sizeof(err)), -1, "a node id listed twice: refused");
	like(err, "a1 appears twice", "with the reason");
	is_int(aurora_place_pg(six, 0, 0, m, err, sizeof(err)), -1, "no nodes: refused");
}

int
main(void)
{
	test_geometry();
	test_routing();
	test_placement();
	return done_testing();
}

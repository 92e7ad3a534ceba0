/*
 * test_blockset.c - unit tests of the page service's lazily sorted block set
 * (storage_service/node/blockset.c): order, de-duplication, merging what is
 * added between rounds into the sorted rest, taking from the end, the size
 * limit, and a randomized run against a brute-force model.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockset.h"
#include "tap.h"

static aurora_block_ref
blk(uint32_t rel, uint8_t fork, uint32_t blkno)
{
	aurora_block_ref b = {.spc_oid = 1663, .db_oid = 5, .rel_number = rel, .fork = fork, .blkno = blkno};

	return b;
}

static int
cmp_model(const void *a, const void *b)
{
	return aurora_block_ref_cmp(a, b);
}

/* s holds exactly want[0, n) in order */
static bool
holds(const aurora_blockset *s, const aurora_block_ref *want, size_t n)
{
	if (aurora_blockset_count(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (aurora_block_ref_cmp(aurora_blockset_from_end(s, n - 1 - i), &want[i]) != 0)
			return false;
	return true;
}

int
main(void)
{
	aurora_blockset s;
	aurora_block_ref b;

	/* order: tablespace, database, relation, fork, block */
	{
		aurora_block_ref x = blk(10, 0, 7),
					y = blk(10, 1, 0),
					z = blk(11, 0, 0);

		ok(aurora_block_ref_cmp(&x, &y) < 0, "fork orders before block number");
		ok(aurora_block_ref_cmp(&y, &z) < 0, "relation orders before fork");
		ok(aurora_block_ref_cmp(&z, &z) == 0, "a block equals itself");
		z.db_oid = 4;
		ok(aurora_block_ref_cmp(&z, &x) < 0, "database orders before relation");
	}

	aurora_blockset_init(&s, 0);
	b = blk(10, 0, 3);
	ok(aurora_blockset_add(&s, &b) && aurora_blockset_add(&s, &b),
	   "adding the same block twice in a row succeeds");
	is_uint(aurora_blockset_count(&s), 1, "and keeps it once");

	{
		aurora_block_ref in[] = {blk(10, 0, 5), blk(10, 0, 1), blk(10, 0, 3), blk(10, 0, 5)};
		aurora_block_ref want[] = {blk(10, 0, 1), blk(10, 0, 3), blk(10, 0, 5)};

		for (size_t i = 0; i < 4; i++)
			aurora_blockset_add(&s, &in[i]);
		aurora_blockset_normalize(&s);
		ok(holds(&s, want, 3), "normalize sorts and drops duplicates (first round)");
	}
	{
		/* new entries below, between, equal to and above the sorted rest */
		aurora_block_ref in[] = {blk(10, 0, 9), blk(10, 0, 0), blk(10, 0, 3), blk(10, 0, 2)};
		aurora_block_ref want[] = {blk(10, 0, 0), blk(10, 0, 1), blk(10, 0, 2), blk(10, 0, 3),
		blk(10, 0, 5), blk(10, 0, 9)};

		for (size_t i = 0; i < 4; i++)
			aurora_blockset_add(&s, &in[i]);
		aurora_blockset_normalize(&s);
		ok(holds(&s, want, 6), "what was added since is merged into the sorted rest");
		aurora_blockset_normalize(&s);
		ok(holds(&s, want, 6), "normalizing again changes nothing");
		ok(aurora_block_ref_cmp(aurora_blockset_from_end(&s, 0), &want[5]) == 0,
		   "the last entry is the highest block");
		aurora_blockset_drop_last(&s, 2);
		ok(holds(&s, want, 4), "dropping the last two leaves the lower four, in order");
		b = blk(10, 0, 9);
		aurora_blockset_add(&s, &b);
		aurora_blockset_normalize(&s);
		{
			aurora_block_ref want2[] = {blk(10, 0, 0), blk(10, 0, 1), blk(10, 0, 2), blk(10, 0, 3),
			blk(10, 0, 9)};

			ok(holds(&s, want2, 5), "a dropped block added again comes back");
		}
		aurora_blockset_drop_last(&s, 100);
		is_uint(aurora_blockset_count(&s), 0, "dropping more than there is empties the set");
	}
	aurora_blockset_free(&s);

	/* the limit: appends beyond max are refused, what is held stays */
	aurora_blockset_init(&s, 300);
	{
		bool		all_ok = true;
		bool		refused;

		for (uint32_t i = 0; i < 300; i++)
		{
			b = blk(20, 0, i);
			all_ok &= aurora_blockset_add(&s, &b);
		}
		b = blk(20, 0, 300);
		refused = !aurora_blockset_add(&s, &b);
		ok(all_ok && refused, "a set limited to 300 takes 300 blocks and refuses the 301st");
		is_uint(aurora_blockset_count(&s), 300, "and still holds 300");
		b = blk(20, 0, 299);
		ok(aurora_blockset_add(&s, &b), "a repeat of the last block is no new entry, so it is taken");
		aurora_blockset_clear(&s);
		is_uint(aurora_blockset_count(&s), 0, "clear empties it");
		b = blk(20, 0, 1);
		ok(aurora_blockset_add(&s, &b), "and it takes blocks again");
	}
	aurora_blockset_free(&s);

	/* randomized rounds against a model: add, normalize, take from the end */
	{
		aurora_block_ref *model = malloc(200000 * sizeof(*model));
		size_t		nm = 0;
		bool		same = true;
		int			round;

		srand(42);
		aurora_blockset_init(&s, 0);
		for (round = 0; round < 200 && same; round++)
		{
			int			adds = rand() % 400;
			size_t		take = (size_t) (rand() % 40),
						w;

			for (int i = 0; i < adds; i++)
			{
				b = blk((uint32_t) (rand() % 3), (uint8_t) (rand() % 2), (uint32_t) (rand() % 500));
				aurora_blockset_add(&s, &b);
				model[nm++] = b;
			}
			/* lookups first: they sort in what was just added */
			for (int q = 0; q < 20 && same; q++)
			{
				aurora_block_ref p = blk((uint32_t) (rand() % 4), (uint8_t) (rand() % 3),
										 (uint32_t) (rand() % 520));
				bool		from = false,
							any = false,
							held = false;

				for (size_t i = 0; i < nm; i++)
				{
					bool		fork = model[i].rel_number == p.rel_number && model[i].fork == p.fork;

					from |= fork && model[i].blkno >= p.blkno;
					any |= fork;
					held |= aurora_block_ref_cmp(&model[i], &p) == 0;
				}
				same = aurora_blockset_holds_from(&s, &p) == from &&
					aurora_blockset_holds(&s, &p) == held;
				p.blkno = 0;
				same &= aurora_blockset_holds_from(&s, &p) == any;
			}
			aurora_blockset_normalize(&s);
			qsort(model, nm, sizeof(*model), cmp_model);
			w = 0;
			for (size_t i = 0; i < nm; i++)
				if (w == 0 || aurora_block_ref_cmp(&model[w - 1], &model[i]) != 0)
					model[w++] = model[i];
			nm = w;
			same = holds(&s, model, nm);
			w = take < nm ? take : nm;
			aurora_blockset_drop_last(&s, w);
			nm -= w;
		}
		ok(same, "200 random rounds of adds, merges, lookups (a block, a block of a fork from a number on, "
		   "any block of a fork) and takes match a brute-force model (%d rounds)",
		   round);
		aurora_blockset_free(&s);
		free(model);
	}
	return done_testing();
}

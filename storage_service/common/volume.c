/*
 * volume.c - block routing and PG placement (volume.h).
 *
 * Routing hash: CRC-32C of the 17 little-endian bytes spc_oid, db_oid,
 * rel_number (u32 each), fork (u8), chunk (u32), put through MurmurHash3's
 * 32-bit finalizer (CRC alone spreads poorly under a modulus), modulo n_pgs.
 * Placement: AZs with at least two nodes, sorted by name; PG p takes the
 * three consecutive AZs starting at p mod n_az; in each, the j-th use of the
 * AZ takes its nodes 2j and 2j+1 (mod the AZ's node count, nodes sorted by
 * id).  j is counted in closed form, so placing a PG costs the same for
 * PG 0 and PG 65535 (O(n^2) in the handful of nodes, for the duplicate check).
 * PROTOCOL.md repeats both rules; changing either strands existing volumes.
 */
#include "volume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "util.h"
#include "wire.h"

bool
aurora_geometry_valid(const aurora_geometry *g, char *err, size_t errlen)
{
	if (g->n_pgs < 1 || g->n_pgs > AURORA_VOLUME_MAX_PGS)
	{
		aurora_seterr(err, errlen, "number of protection groups must be between 1 and %u (got %u)",
					  AURORA_VOLUME_MAX_PGS, (unsigned) g->n_pgs);
		return false;
	}
	if (g->blocks_per_segment < 1 || g->blocks_per_segment > AURORA_VOLUME_MAX_BLOCKS_PER_SEGMENT)
	{
		aurora_seterr(err, errlen, "blocks per segment must be between 1 and %u (got %u)",
					  AURORA_VOLUME_MAX_BLOCKS_PER_SEGMENT, (unsigned) g->blocks_per_segment);
		return false;
	}
	return true;
}

static uint32_t
fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t
aurora_block_pg(const aurora_geometry *g, const aurora_block_ref *b)
{
	uint8_t		key[17];
	aurora_buf	w;

	if (g->n_pgs <= 1 || g->blocks_per_segment == 0)
		return 0;
	aurora_buf_init_writer(&w, key, sizeof(key));
	aurora_buf_put_u32(&w, b->spc_oid);
	aurora_buf_put_u32(&w, b->db_oid);
	aurora_buf_put_u32(&w, b->rel_number);
	if (b->fork == AURORA_VM_FORK)
	{
		/*
		 * A visibility-map page lives with the heap chunk of the first heap
		 * block it covers: heap records clear its bits (IMPLICIT blocks of
		 * the envelope), and this way such a record, often a full-page
		 * image, usually goes to one PG, not two.
		 */
		uint64_t	first_heap_block = (uint64_t) b->blkno * AURORA_HEAP_BLOCKS_PER_VM_PAGE;

		aurora_buf_put_u8(&w, AURORA_MAIN_FORK);
		aurora_buf_put_u32(&w, (uint32_t) (first_heap_block / g->blocks_per_segment));
	}
	else
	{
		aurora_buf_put_u8(&w, b->fork);
		aurora_buf_put_u32(&w, b->blkno / g->blocks_per_segment);
	}
	return fmix32(aurora_crc32c(0, key, sizeof(key))) % g->n_pgs;
}

static int
cmp_member(const void *a, const void *b)
{
	const aurora_member *x = a;
	const aurora_member *y = b;
	int			c = strcmp(x->az, y->az);

	return c != 0 ? c : strcmp(x->node_id, y->node_id);
}

/* PGs q in [0, pg) whose window of AURORA_PG_AZS AZs (from q mod n_az) holds az. */
static uint32_t
prior_uses(uint32_t pg, uint32_t n_az, uint32_t az)
{
	uint32_t	uses = (pg / n_az) * AURORA_PG_AZS;
	uint32_t	rest = pg % n_az;
	int			k;

	/* in the partial cycle, the starts q mod n_az that cover az: az, az-1, az-2 */
	for (k = 0; k < AURORA_PG_AZS; k++)
	{
		uint32_t	start = (az + n_az - (uint32_t) k) % n_az;

		if (start < rest)
			uses++;
	}
	return uses;
}

int
aurora_place_pg(const aurora_member *nodes, int n, uint32_t pg,
				aurora_member members[AURORA_PG_COPIES], char *err, size_t errlen)
{
	const int	per_az = AURORA_PG_COPIES / AURORA_PG_AZS;
	aurora_member *sorted;
	int		   *az_first;		/* index in sorted of each usable AZ's first node */
	int		   *az_size;
	uint32_t	n_az = 0;
	int			i;
	int			k;

	if (n <= 0)
	{
		aurora_seterr(err, errlen, "no storage nodes to place protection group %u on", (unsigned) pg);
		return -1;
	}
	sorted = malloc((size_t) n * sizeof(*sorted));
	az_first = malloc((size_t) n * sizeof(*az_first));
	az_size = malloc((size_t) n * sizeof(*az_size));
	if (sorted == NULL || az_first == NULL || az_size == NULL)
	{
		free(sorted);
		free(az_first);
		free(az_size);
		aurora_seterr(err, errlen, "out of memory");
		return -1;
	}
	memcpy(sorted, nodes, (size_t) n * sizeof(*sorted));
	qsort(sorted, (size_t) n, sizeof(*sorted), cmp_member);

	for (i = 0; i < n;)
	{
		int			j = i + 1;

		while (j < n && strcmp(sorted[j].az, sorted[i].az) == 0)
			j++;
		if (j - i >= per_az)
		{
			az_first[n_az] = i;
			az_size[n_az] = j - i;
			n_az++;
		}
		i = j;
	}
	/* the same id twice would put two replicas on one node */
	for (i = 0; i < n; i++)
		for (k = i + 1; k < n; k++)
			if (strcmp(sorted[i].node_id, sorted[k].node_id) == 0)
			{
				aurora_seterr(err, errlen, "node id %s appears twice", sorted[i].node_id);
				goto fail;
			}
	if (n_az < AURORA_PG_AZS)
	{
		aurora_seterr(err, errlen,
					  "placing a protection group needs %d availability zones with at least %d "
					  "storage nodes each; %u have that many", AURORA_PG_AZS, per_az,
					  (unsigned) n_az);
		goto fail;
	}

	for (k = 0; k < AURORA_PG_AZS; k++)
	{
		uint32_t	az = (pg % n_az + (uint32_t) k) % n_az;
		uint32_t	use = prior_uses(pg, n_az, az);
		int			r;

		for (r = 0; r < per_az; r++)
		{
			uint32_t	slot = (use * (uint32_t) per_az + (uint32_t) r) % (uint32_t) az_size[az];

			members[k * per_az + r] = sorted[az_first[az] + (int) slot];
		}
	}
	free(sorted);
	free(az_first);
	free(az_size);
	return 0;

fail:
	free(sorted);
	free(az_first);
	free(az_size);
	return -1;
}

void
aurora_block_tag_put(aurora_buf *b, const aurora_block_ref *ref)
{
	aurora_buf_put_u32(b, ref->spc_oid);
	aurora_buf_put_u32(b, ref->db_oid);
	aurora_buf_put_u32(b, ref->rel_number);
	aurora_buf_put_u8(b, ref->fork);
	aurora_buf_put_u32(b, ref->blkno);
}

void
aurora_block_tag_get(aurora_buf *b, aurora_block_ref *ref)
{
	ref->spc_oid = aurora_buf_get_u32(b);
	ref->db_oid = aurora_buf_get_u32(b);
	ref->rel_number = aurora_buf_get_u32(b);
	ref->fork = aurora_buf_get_u8(b);
	ref->blkno = aurora_buf_get_u32(b);
}

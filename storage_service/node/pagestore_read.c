/*
 * pagestore_read.c - what requests and coalescing read from a segment's
 * page store (pagestore.h, pagestore_int.h): the plan of a page (newest
 * image at or below an LSN and the records after it), chain lengths for
 * coalescing, a fork's size and the store's statistics.  Read-only LMDB
 * transactions, so any number of threads may read at once.  The answers
 * when there is nothing to build a page from: docs/architecture.md,
 * "Pitfalls of pages from the log".
 */
#define _DEFAULT_SOURCE

#include "pagestore_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"

/* ---- reads ---- */

void
aurora_page_plan_free(aurora_page_plan *plan)
{
	free(plan->rec_start);
	free(plan->rec_end);
	plan->rec_start = plan->rec_end = NULL;
	plan->n_recs = 0;
}

/*
 * The oldest entry of a block in dbi (images or recs): 1 with its LSN and
 * value, 0 if the block has none, -1 if the store cannot be read.
 */
static int
block_oldest(MDB_txn *txn, MDB_dbi dbi, const uint8_t *bkey, uint64_t *lsn, MDB_val *val)
{
	MDB_cursor *c;
	MDB_val		k;
	uint8_t		start[REC_KEY_LEN];
	int			found = 0;
	int			rc;

	memcpy(start, bkey, BLOCK_KEY_LEN);
	memset(start + BLOCK_KEY_LEN, 0, 8);
	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return -1;
	k.mv_data = start;
	k.mv_size = REC_KEY_LEN;
	rc = mdb_cursor_get(c, &k, val, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == REC_KEY_LEN && memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) == 0)
	{
		*lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		found = 1;
	}
	else if (rc != 0 && rc != MDB_NOTFOUND)
		found = -1;
	mdb_cursor_close(c);
	return found;
}

/*
 * For a read at an LSN below everything the store holds of a block: whether
 * the block had no content yet then (1), rather than content the store
 * cannot rebuild (0); -1 if the store cannot be read.  It had none when its
 * history begins with a record that needs no earlier page: one that
 * initializes it (WILL_INIT), or any record of a map fork, which PostgreSQL
 * extends with zero pages without WAL.  Blocks inside a relation's size that
 * no record has reached yet are ordinary: PostgreSQL extends a heap by many
 * blocks at once under contention for the extension lock
 * (RelationAddExtraBlocks) and logs each only when a tuple first lands on
 * it, with an initializing record.  A history that begins with an image
 * (seeded, or kept at a horizon) or with a record that changes an existing
 * page says the block existed before what is stored.
 */
static int
block_unwritten_before_history(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey,
							   uint8_t fork)
{
	uint64_t	image_lsn = 0,
				rec_end = 0;
	MDB_val		image_val,
				rec_val;
	int			has_image = block_oldest(txn, ps->images, bkey, &image_lsn, &image_val);
	int			has_rec = block_oldest(txn, ps->recs, bkey, &rec_end, &rec_val);

	if (has_image < 0 || has_rec < 0)
		return -1;
	if (!has_rec)
		return !has_image;
	/*
	 * An image at the first record's own LSN was built from that record
	 * (coalescing stores a page its record sets whole at once): the record
	 * still decides.
	 */
	if (has_image && image_lsn < rec_end)
		return 0;
	if (fork == AURORA_FORK_FSM || fork == AURORA_FORK_VM)
		return 1;
	/* a damaged entry proves nothing: not "unwritten" */
	return rec_val.mv_size == REC_VAL_LEN &&
		(((uint8_t *) rec_val.mv_data)[8] & AURORA_BLOCK_WILL_INIT) != 0;
}

/* Append a record to plan (newest first while walking; reversed later). */
static int
plan_push(aurora_page_plan *p, int *cap, uint64_t start, uint64_t end)
{
	if (p->n_recs == *cap)
	{
		int			ncap = *cap ? *cap * 2 : 16;
		uint64_t   *s = realloc(p->rec_start, (size_t) ncap * sizeof(uint64_t));

		if (s == NULL)
			return -1;
		p->rec_start = s;
		s = realloc(p->rec_end, (size_t) ncap * sizeof(uint64_t));
		if (s == NULL)
			return -1;
		p->rec_end = s;
		*cap = ncap;
	}
	p->rec_start[p->n_recs] = start;
	p->rec_end[p->n_recs] = end;
	p->n_recs++;
	return 0;
}

/*
 * The fork's size at lsn rules the block out: it does not exist then, or the
 * block lies past its end.  *known: the size at lsn is recorded at all.
 */
static int
plan_check_size(MDB_txn *txn, aurora_pagestore *ps, const aurora_block_ref *block, uint64_t lsn,
				bool *known, char *err, size_t errlen)
{
	uint8_t		rk[REL_KEY_LEN];
	bool		exists;
	uint32_t	nblocks;

	pagestore_rel_key(rk, block->spc_oid, block->db_oid, block->rel_number, block->fork);
	*known = pagestore_size_at(txn, ps->sizes, rk, lsn, &exists, &nblocks);
	if (*known && !exists)
	{
		snprintf(err, errlen, "relation %u/%u/%u fork %u does not exist at LSN %llX/%llX",
				 block->spc_oid, block->db_oid, block->rel_number, block->fork,
				 (unsigned long long) (lsn >> 32), (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_RELATION;
	}
	if (*known && block->blkno >= nblocks)
	{
		snprintf(err, errlen, "block %u is beyond the %u blocks of relation %u/%u/%u fork %u at LSN %llX/%llX",
				 block->blkno, nblocks, block->spc_oid, block->db_oid, block->rel_number,
				 block->fork, (unsigned long long) (lsn >> 32),
				 (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_BLOCK;
	}
	return 0;
}

/* The newest image of the block at or below lsn into plan, if there is one. */
static int
plan_newest_image(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey, uint64_t lsn,
				  aurora_page_plan *plan, char *err, size_t errlen)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	int			rc;

	if ((rc = mdb_cursor_open(txn, ps->images, &c)) != 0)
		return pagestore_lmdb_fail(rc, "cannot read", ps, err, errlen);
	if (pagestore_last_at_or_below(c, bkey, BLOCK_KEY_LEN, lsn, &k, &v) && v.mv_size == AURORA_PAGE_BYTES)
	{
		plan->has_image = true;
		plan->image_lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		memcpy(plan->image, v.mv_data, AURORA_PAGE_BYTES);
	}
	mdb_cursor_close(c);
	return 0;
}

/*
 * The block's records after plan's image up to lsn into plan, newest first,
 * down to a WILL_INIT one (*from_init then).
 */
static int
plan_records(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey, uint64_t lsn,
			 aurora_page_plan *plan, bool *from_init, char *err, size_t errlen)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	int			cap = 0;
	int			rc = 0;

	*from_init = false;
	if ((rc = mdb_cursor_open(txn, ps->recs, &c)) != 0)
		return pagestore_lmdb_fail(rc, "cannot read", ps, err, errlen);
	if (pagestore_last_at_or_below(c, bkey, BLOCK_KEY_LEN, lsn, &k, &v))
	{
		for (;;)
		{
			uint64_t	end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
			uint8_t		flags;

			if (plan->has_image && end <= plan->image_lsn)
				break;
			if (v.mv_size != REC_VAL_LEN)
			{
				snprintf(err, errlen, "page store %s: bad record entry", ps->dir);
				rc = AURORA_ERR_CORRUPT;
				break;
			}
			flags = ((uint8_t *) v.mv_data)[8];
			if (plan_push(plan, &cap, aurora_get_le64(v.mv_data), end) != 0)
			{
				snprintf(err, errlen, "out of memory");
				rc = AURORA_ERR_INTERNAL;
				break;
			}
			if (flags & AURORA_BLOCK_WILL_INIT)
			{
				*from_init = true;
				break;
			}
			if (mdb_cursor_get(c, &k, &v, MDB_PREV) != 0 || k.mv_size != REC_KEY_LEN ||
				memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) != 0)
				break;
		}
	}
	mdb_cursor_close(c);
	return rc;
}

/*
 * Why a block with neither an image nor an initializing record cannot be
 * built (see "Pitfalls of pages from the log" in docs/architecture.md):
 * always an error code, with the reason in err.
 */
static int
plan_no_base(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey,
			 const aurora_block_ref *block, uint64_t lsn, bool known,
			 const aurora_page_plan *plan, char *err, size_t errlen)
{
	int			unwritten = plan->n_recs > 0 ? 0 :
		block_unwritten_before_history(txn, ps, bkey, block->fork);

	if (unwritten < 0)
	{
		snprintf(err, errlen, "page store %s: cannot read the history of block %u of "
				 "relation %u/%u/%u fork %u", ps->dir, block->blkno, block->spc_oid,
				 block->db_oid, block->rel_number, block->fork);
		return AURORA_ERR_INTERNAL;
	}
	if (unwritten == 0)
	{
		snprintf(err, errlen, "block %u of relation %u/%u/%u fork %u has no image or "
				 "initializing record at or below LSN %llX/%llX (below the horizon)",
				 block->blkno, block->spc_oid, block->db_oid, block->rel_number,
				 block->fork, (unsigned long long) (lsn >> 32),
				 (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_BELOW_HORIZON;
	}
	if (!known)
	{
		snprintf(err, errlen, "relation %u/%u/%u fork %u is unknown at LSN %llX/%llX",
				 block->spc_oid, block->db_oid, block->rel_number, block->fork,
				 (unsigned long long) (lsn >> 32), (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_RELATION;
	}
	snprintf(err, errlen, "block %u of relation %u/%u/%u fork %u was not written at or "
			 "below LSN %llX/%llX", block->blkno, block->spc_oid, block->db_oid,
			 block->rel_number, block->fork, (unsigned long long) (lsn >> 32),
			 (unsigned long long) (lsn & 0xffffffffu));
	return AURORA_ERR_NO_BLOCK;
}

/* Oldest first, the order redo applies them. */
static void
plan_reverse_records(aurora_page_plan *plan)
{
	for (int i = 0, j = plan->n_recs - 1; i < j; i++, j--)
	{
		uint64_t	t = plan->rec_start[i];

		plan->rec_start[i] = plan->rec_start[j];
		plan->rec_start[j] = t;
		t = plan->rec_end[i];
		plan->rec_end[i] = plan->rec_end[j];
		plan->rec_end[j] = t;
	}
}

int
aurora_pagestore_plan(aurora_pagestore *ps, const aurora_block_ref *block, uint64_t lsn,
					  aurora_page_plan *plan, char *err, size_t errlen)
{
	MDB_txn    *txn;
	uint8_t		bkey[REC_KEY_LEN];
	bool		known,
				from_init = false;
	int			rc;

	memset(plan, 0, offsetof(aurora_page_plan, image));
	plan->n_recs = 0;
	plan->rec_start = plan->rec_end = NULL;
	if ((rc = mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn)) != 0)
		return pagestore_lmdb_fail(rc, "cannot begin a read transaction", ps, err, errlen);
	pagestore_block_key(bkey, block, 0);

	if ((rc = plan_check_size(txn, ps, block, lsn, &known, err, errlen)) != 0 ||
		(rc = plan_newest_image(txn, ps, bkey, lsn, plan, err, errlen)) != 0 ||
		(rc = plan_records(txn, ps, bkey, lsn, plan, &from_init, err, errlen)) != 0)
		goto done;
	if (from_init)
		plan->has_image = false;	/* the WILL_INIT record sets the whole page */

	/*
	 * A free-space-map or visibility-map page is created without WAL (the
	 * fork is extended with zero pages), and PostgreSQL's redo reads such a
	 * page as zeros when it is missing (RBM_ZERO_ON_ERROR).  Without
	 * full-page images no record ever initializes it, so its chain (every
	 * record of the block: the walk above stopped at neither an image nor a
	 * WILL_INIT record) starts from zeros here too.  Both forks are hints
	 * that only say less than the truth this way: a visibility-map bit is
	 * set only by a record that set it (and later records clear it again),
	 * so a page rebuilt from zeros never claims more than the compute's.
	 */
	if (!plan->has_image && !from_init && plan->n_recs > 0 &&
		(block->fork == AURORA_FORK_FSM || block->fork == AURORA_FORK_VM))
		from_init = true;

	if (!plan->has_image && !from_init)
		rc = plan_no_base(txn, ps, bkey, block, lsn, known, plan, err, errlen);
	else
		plan_reverse_records(plan);

done:
	mdb_txn_abort(txn);
	if (rc != 0)
		aurora_page_plan_free(plan);
	return rc;
}

int
aurora_pagestore_chain_length(aurora_pagestore *ps, const aurora_block_ref *block, int max,
							  uint64_t *newest_end, bool *from_init)
{
	MDB_txn    *txn;
	MDB_cursor *c;
	MDB_val		k,
				v;
	uint8_t		bkey[REC_KEY_LEN];
	uint64_t	image_lsn = 0;
	int			n = 0;

	*newest_end = 0;
	*from_init = false;
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	pagestore_block_key(bkey, block, 0);
	if (mdb_cursor_open(txn, ps->images, &c) == 0)
	{
		if (pagestore_last_at_or_below(c, bkey, BLOCK_KEY_LEN, UINT64_MAX, &k, &v))
			image_lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		mdb_cursor_close(c);
	}
	if (mdb_cursor_open(txn, ps->recs, &c) == 0)
	{
		if (pagestore_last_at_or_below(c, bkey, BLOCK_KEY_LEN, UINT64_MAX, &k, &v))
		{
			*newest_end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
			while (n <= max)
			{
				uint64_t	end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);

				if (end <= image_lsn)
					break;
				n++;
				if (v.mv_size == REC_VAL_LEN && (((uint8_t *) v.mv_data)[8] & AURORA_BLOCK_WILL_INIT))
				{
					*from_init = true;
					break;
				}
				if (mdb_cursor_get(c, &k, &v, MDB_PREV) != 0 || k.mv_size != REC_KEY_LEN ||
					memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) != 0)
					break;
			}
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return n;
}

int
aurora_pagestore_rel_size(aurora_pagestore *ps, uint32_t spc, uint32_t db, uint32_t rel,
						  uint8_t fork, uint64_t lsn, bool *known, bool *exists,
						  uint32_t *nblocks)
{
	MDB_txn    *txn;
	uint8_t		rk[REL_KEY_LEN];

	*known = *exists = false;
	*nblocks = 0;
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return AURORA_ERR_IO;
	pagestore_rel_key(rk, spc, db, rel, fork);
	*known = pagestore_size_at(txn, ps->sizes, rk, lsn, exists, nblocks);
	mdb_txn_abort(txn);
	return 0;
}

void
aurora_pagestore_get_stats(aurora_pagestore *ps, aurora_pagestore_stats *out)
{
	MDB_txn    *txn;
	MDB_stat	st;

	memset(out, 0, sizeof(*out));
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_stat(txn, ps->images, &st) == 0)
		out->images = st.ms_entries;
	if (mdb_stat(txn, ps->recs, &st) == 0)
		out->record_entries = st.ms_entries;
	if (mdb_stat(txn, ps->sizes, &st) == 0)
		out->size_entries = st.ms_entries;
	mdb_txn_abort(txn);
}

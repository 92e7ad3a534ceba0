/*
 * blockset.h - a set of block references that grows by appending and is
 * sorted lazily: the page service's list of blocks the indexer touched and
 * coalescing still has to look at (indexer.c, coalesce.c), and the blocks
 * the unindexed tail touches.
 *
 * Appends are cheap (a block repeated by consecutive records is kept once)
 * and the set becomes sorted and distinct only when asked.  Then only what
 * was appended since the last time is sorted, and merged with the rest:
 * coalescing asks before every round, and re-sorting a backlog of a few
 * hundred thousand blocks to take 16 of them was most of the page-service
 * thread's CPU.  Rounds take from the end, so the rest stays sorted in place.
 * The page service also keeps the blocks of its unindexed log tail in one,
 * to answer "does the tail touch this block" (aurora_blockset_holds_from).
 */
#ifndef AURORA_NODE_BLOCKSET_H
#define AURORA_NODE_BLOCKSET_H

#include <stdbool.h>
#include <stddef.h>

#include "volume.h"

typedef struct aurora_blockset
{
	aurora_block_ref *v;
	size_t		n;
	size_t		cap;
	size_t		nsorted;		/* v[0, nsorted): sorted and distinct */
	size_t		max;			/* appends beyond this many are dropped */
} aurora_blockset;

/* An empty set that holds at most max entries (0: no limit). */
void		aurora_blockset_init(aurora_blockset *s, size_t max);
void		aurora_blockset_free(aurora_blockset *s);
void		aurora_blockset_clear(aurora_blockset *s);

/* Remember b; false when it had to be dropped (full, or out of memory). */
bool		aurora_blockset_add(aurora_blockset *s, const aurora_block_ref *b);

/*
 * Sort and de-duplicate what was added since the last call into the rest.
 * Without memory for the merge the new entries stay unsorted until a later
 * call finds it; nothing is lost.
 */
void		aurora_blockset_normalize(aurora_blockset *s);

/* Entries (distinct after aurora_blockset_normalize). */
static inline size_t
aurora_blockset_count(const aurora_blockset *s)
{
	return s->n;
}

/* The i-th entry from the end (0: the last). */
static inline const aurora_block_ref *
aurora_blockset_from_end(const aurora_blockset *s, size_t i)
{
	return &s->v[s->n - 1 - i];
}

/*
 * Whether the set holds a block of b's relation fork numbered b's block or
 * later (b's block number 0: any block of the fork).  Normalizes first, so
 * it is a binary search.
 */
bool		aurora_blockset_holds_from(aurora_blockset *s, const aurora_block_ref *b);

/* Whether the set holds b (normalizes first, like aurora_blockset_holds_from). */
bool		aurora_blockset_holds(aurora_blockset *s, const aurora_block_ref *b);

/* Forget the last k entries. */
void		aurora_blockset_drop_last(aurora_blockset *s, size_t k);

/* Block order: tablespace, database, relation, fork, block number. */
int			aurora_block_ref_cmp(const aurora_block_ref *a, const aurora_block_ref *b);

#endif

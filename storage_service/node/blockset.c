/*
 * blockset.c - lazily sorted set of block references (blockset.h).
 */
#include "blockset.h"

#include <stdlib.h>
#include <string.h>

int
aurora_block_ref_cmp(const aurora_block_ref *x, const aurora_block_ref *y)
{
	if (x->spc_oid != y->spc_oid)
		return x->spc_oid < y->spc_oid ? -1 : 1;
	if (x->db_oid != y->db_oid)
		return x->db_oid < y->db_oid ? -1 : 1;
	if (x->rel_number != y->rel_number)
		return x->rel_number < y->rel_number ? -1 : 1;
	if (x->fork != y->fork)
		return x->fork < y->fork ? -1 : 1;
	if (x->blkno != y->blkno)
		return x->blkno < y->blkno ? -1 : 1;
	return 0;
}

static int
cmp_qsort(const void *a, const void *b)
{
	return aurora_block_ref_cmp(a, b);
}

void
aurora_blockset_init(aurora_blockset *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

void
aurora_blockset_free(aurora_blockset *s)
{
	free(s->v);
	aurora_blockset_init(s, s->max);
}

void
aurora_blockset_clear(aurora_blockset *s)
{
	s->n = s->nsorted = 0;
}

bool
aurora_blockset_add(aurora_blockset *s, const aurora_block_ref *b)
{
	/* the same block touched by consecutive records is remembered once */
	if (s->n > 0 && aurora_block_ref_cmp(&s->v[s->n - 1], b) == 0)
		return true;
	if (s->n == s->cap)
	{
		size_t		ncap = s->cap ? s->cap * 2 : 256;
		aurora_block_ref *n;

		if (s->max > 0 && ncap > s->max)
			ncap = s->max;
		if (ncap <= s->cap || (n = realloc(s->v, ncap * sizeof(*n))) == NULL)
			return false;
		s->v = n;
		s->cap = ncap;
	}
	s->v[s->n++] = *b;
	return true;
}

/* Sort v[from, n) and squeeze out duplicates; returns the new n. */
static size_t
sort_distinct(aurora_block_ref *v, size_t from, size_t n)
{
	size_t		w = from + 1;

	if (n - from < 2)
		return n;
	qsort(v + from, n - from, sizeof(*v), cmp_qsort);
	for (size_t i = from + 1; i < n; i++)
		if (aurora_block_ref_cmp(&v[w - 1], &v[i]) != 0)
			v[w++] = v[i];
	return w;
}

void
aurora_blockset_normalize(aurora_blockset *s)
{
	aurora_block_ref *merged;
	size_t		i,
				j,
				w,
				tail_end;

	if (s->nsorted == s->n)
		return;
	tail_end = sort_distinct(s->v, s->nsorted, s->n);
	if (s->nsorted == 0)
	{
		s->n = s->nsorted = tail_end;
		return;
	}
	if ((merged = malloc(tail_end * sizeof(*merged))) == NULL)
	{
		s->n = tail_end;		/* the tail waits, sorted, for a later call */
		return;
	}
	for (i = 0, j = s->nsorted, w = 0; i < s->nsorted || j < tail_end;)
	{
		int			c = i == s->nsorted ? 1 : j == tail_end ? -1 :
			aurora_block_ref_cmp(&s->v[i], &s->v[j]);

		merged[w++] = c <= 0 ? s->v[i] : s->v[j];
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	memcpy(s->v, merged, w * sizeof(*merged));
	free(merged);
	s->n = s->nsorted = w;
}

static bool
same_fork(const aurora_block_ref *x, const aurora_block_ref *y)
{
	return x->spc_oid == y->spc_oid && x->db_oid == y->db_oid &&
		x->rel_number == y->rel_number && x->fork == y->fork;
}

/*
 * The first entry at or after b, by index into v (n: none): a binary search
 * of the sorted part, then a look at what normalize could not merge (no
 * memory), which is still unsorted.  *exact: that entry is b itself, or b is
 * among the unsorted ones.
 */
static const aurora_block_ref *
first_from(aurora_blockset *s, const aurora_block_ref *b, bool *exact)
{
	const aurora_block_ref *best = NULL;
	size_t		lo = 0,
				hi;

	aurora_blockset_normalize(s);
	for (hi = s->nsorted; lo < hi;)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (aurora_block_ref_cmp(&s->v[mid], b) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nsorted)
		best = &s->v[lo];
	for (size_t i = s->nsorted; i < s->n; i++)
		if (aurora_block_ref_cmp(&s->v[i], b) >= 0 &&
			(best == NULL || aurora_block_ref_cmp(&s->v[i], best) < 0))
			best = &s->v[i];
	*exact = best != NULL && aurora_block_ref_cmp(best, b) == 0;
	return best;
}

bool
aurora_blockset_holds(aurora_blockset *s, const aurora_block_ref *b)
{
	bool		exact;

	(void) first_from(s, b, &exact);
	return exact;
}

bool
aurora_blockset_holds_from(aurora_blockset *s, const aurora_block_ref *b)
{
	bool		exact;
	const aurora_block_ref *f = first_from(s, b, &exact);

	return f != NULL && same_fork(f, b);
}

void
aurora_blockset_drop_last(aurora_blockset *s, size_t k)
{
	s->n = k < s->n ? s->n - k : 0;
	if (s->nsorted > s->n)
		s->nsorted = s->n;
}

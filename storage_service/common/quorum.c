/*
 * quorum.c - quorum validity rules and the "have we got enough acks" test.
 * See quorum.h; the messages are shown to operators, so they name the rule
 * and the numbers that broke it.
 */
#include "quorum.h"

#include <stdio.h>

bool
aurora_quorum_config_valid(int n_copies, int write_q, int read_q,
						   char *err, size_t errlen)
{
	char		dummy[1];

	if (err == NULL || errlen == 0)
	{
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';

	if (n_copies < 1)
	{
		snprintf(err, errlen, "number of copies must be at least 1 (got %d)", n_copies);
		return false;
	}
	if (write_q < 1 || write_q > n_copies)
	{
		snprintf(err, errlen, "write quorum must be between 1 and %d copies (got %d)",
				 n_copies, write_q);
		return false;
	}
	if (read_q < 1 || read_q > n_copies)
	{
		snprintf(err, errlen, "read quorum must be between 1 and %d copies (got %d)",
				 n_copies, read_q);
		return false;
	}
	/* Two write quorums must intersect, or two writers could both "win". */
	if (write_q * 2 <= n_copies)
	{
		snprintf(err, errlen,
				 "write quorum %d of %d is not a majority (need 2*w > n, i.e. w >= %d)",
				 write_q, n_copies, n_copies / 2 + 1);
		return false;
	}
	/* A read quorum must intersect every write quorum to see the last write. */
	if (write_q + read_q <= n_copies)
	{
		snprintf(err, errlen,
				 "write quorum %d plus read quorum %d must exceed %d copies "
				 "(need w + r > n, i.e. r >= %d)",
				 write_q, read_q, n_copies, n_copies - write_q + 1);
		return false;
	}
	return true;
}

bool
aurora_quorum_met(int acks, int quorum)
{
	return quorum > 0 && acks >= quorum;
}

/*
 * The highest LSN that at least k of the n values reach: the k-th highest.
 * With the six SCLs of a protection group and k = the write quorum this is
 * its PGCL.  Copies into a small array so the caller's order is kept.
 */
uint64_t
aurora_quorum_kth_highest(const uint64_t *values, int n, int k)
{
	uint64_t	sorted[64];
	int			i,
				j;

	if (k < 1 || k > n || n > (int) (sizeof(sorted) / sizeof(sorted[0])))
		return 0;
	for (i = 0; i < n; i++)
	{
		/* insertion sort, descending: n is six */
		uint64_t	v = values[i];

		for (j = i; j > 0 && sorted[j - 1] < v; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = v;
	}
	return sorted[k - 1];
}

/*
 * Whether enough members are up for a quorum: a write needs write_q of the
 * six, a read read_q.  The views use it to say which PGs can still write.
 */
bool
aurora_quorum_available(const bool *up, int n, int quorum)
{
	int			count = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (up[i])
			count++;
	return aurora_quorum_met(count, quorum);
}

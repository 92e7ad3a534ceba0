/*
 * quorum.h - the one place that knows quorum arithmetic (docs/architecture.md,
 * "A write's path", "A commit's path").
 *
 * Both the compute (deciding when a write is durable) and the storage tools
 * (validating a cluster layout) ask these functions instead of repeating
 * "4 of 6" logic, so a later change of quorum rules happens here only.
 */
#ifndef AURORA_QUORUM_H
#define AURORA_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The paper's layout: six copies, write quorum 4/6, read quorum 3/6. */
#define AURORA_PG_COPIES		6
#define AURORA_DEFAULT_WRITE_QUORUM	4
#define AURORA_DEFAULT_READ_QUORUM	3
/* Distinct AZs of a PG; each holds AURORA_PG_COPIES / AURORA_PG_AZS copies. */
#define AURORA_PG_AZS			3

/*
 * A configuration is valid when 1 <= r <= n, 1 <= w <= n, w is a majority
 * (2w > n, so two writes always overlap) and w + r > n (every read quorum
 * sees the latest write).  On failure err (if errlen > 0) explains which
 * rule failed.
 */
bool		aurora_quorum_config_valid(int n_copies, int write_q, int read_q,
									   char *err, size_t errlen);

/* True when acks reach a (positive) quorum. */
bool		aurora_quorum_met(int acks, int quorum);

/*
 * The k-th highest of n values (0 if k is out of range): the LSN at least k
 * of them reach.  PGCL = aurora_quorum_kth_highest(scl, 6, write_quorum).
 */
uint64_t	aurora_quorum_kth_highest(const uint64_t *values, int n, int k);

/* Whether at least quorum of the n members marked up are available. */
bool		aurora_quorum_available(const bool *up, int n, int quorum);

#endif

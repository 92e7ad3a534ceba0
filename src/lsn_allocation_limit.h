/*
 * lsn_allocation_limit.h
 *	  The LSN allocation limit: backends wait when their WAL runs too far
 *	  beyond VDL (lsn_allocation_limit.c).
 */
#ifndef AURORA_LSN_ALLOCATION_LIMIT_H
#define AURORA_LSN_ALLOCATION_LIMIT_H

extern void aurora_lsn_allocation_limit_define_gucs(void);
extern void aurora_lsn_allocation_limit_init(void);
extern void aurora_lsn_allocation_limit_stats(uint64 *waits, uint64 *wait_us, int *limit_mb);

#endif							/* AURORA_LSN_ALLOCATION_LIMIT_H */

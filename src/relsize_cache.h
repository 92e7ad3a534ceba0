/*
 * relsize_cache.h
 *	  The compute's shared cache of relation fork sizes (relsize_cache.c),
 *	  for the storage manager (smgr.c).
 */
#ifndef AURORA_RELSIZE_CACHE_H
#define AURORA_RELSIZE_CACHE_H

#include "common/relpath.h"
#include "storage/block.h"
#include "storage/relfilenode.h"

extern int	aurora_relsize_cache_entries;

extern void aurora_relsize_cache_define_gucs(void);
extern void aurora_relsize_cache_init(void);

/* The cached size of a fork; false when the cache does not hold it. */
extern bool aurora_relsize_cache_find(RelFileNode rnode, ForkNumber fork,
									  bool *exists, BlockNumber *nblocks);

/*
 * Enter the size storage answered, unless another process entered one
 * meanwhile; *exists and *nblocks are then what the cache holds.
 */
extern void aurora_relsize_cache_learn(RelFileNode rnode, ForkNumber fork,
									   bool fetched_exists, BlockNumber fetched_nblocks,
									   bool *exists, BlockNumber *nblocks);

/*
 * Record a size the compute set.  grow_only: an extension (never shrinks
 * what is known); otherwise the size is set (create, truncate).
 */
extern void aurora_relsize_cache_set(RelFileNode rnode, ForkNumber fork,
									 BlockNumber nblocks, bool grow_only);

/* The size of a fork the compute changed (false: not changed, or gone). */
extern bool aurora_relsize_cache_changed(RelFileNode rnode, ForkNumber fork,
										 BlockNumber *nblocks);

/* Drop a fork's size (InvalidForkNumber: every fork's). */
extern void aurora_relsize_cache_forget(RelFileNode rnode, ForkNumber fork);

#endif							/* AURORA_RELSIZE_CACHE_H */

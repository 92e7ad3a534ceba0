/*
 * smgr.h
 *	  The aurora storage manager (smgr.c): permanent relations live in the
 *	  storage service.
 */
#ifndef AURORA_SMGR_H
#define AURORA_SMGR_H

#include "storage/buf_internals.h"

#include "local_pages.h"

extern bool aurora_storage_manager;
extern int	aurora_eviction_wait_ms;

extern void aurora_smgr_define_gucs(void);
extern void aurora_smgr_init(void);
extern void aurora_smgr_count_read(uint64 us, int retries);
extern void aurora_smgr_janitor(void);

/* What aurora.storage_manager_stats() shows (sql_functions.c). */
typedef struct AuroraSmgrStats
{
	uint64		reads;			/* pages read from storage */
	uint64		read_us;		/* their total latency */
	uint64		read_retries;	/* segments tried after the first */
	uint64		size_requests;	/* fork sizes asked from storage */
	uint64		evictions;		/* dirty pages written by PostgreSQL */
	uint64		evicted_to_storage; /* dropped: storage rebuilds them */
	uint64		evicted_locally;	/* kept in the local page store */
	uint64		eviction_waits; /* evictions that waited for VDL */
	uint64		map_images;		/* FSM/VM pages logged as images */
	uint64		recovery_reads; /* pages read by the startup process */
	AuroraLocalPagesStats local;
} AuroraSmgrStats;

extern bool aurora_smgr_stats(AuroraSmgrStats *st);

#endif							/* AURORA_SMGR_H */

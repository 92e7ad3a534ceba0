/*
 * redo_filter.c
 *	  Recovery without page redo (docs/architecture.md "Epochs and
 *	  recovery"): with the storage manager on, relation pages live in the
 *	  storage service, which rebuilds them from the log itself.  Replaying a
 *	  record's page changes on the compute would only fetch each page from
 *	  storage to change it the way storage already has, one round trip at a
 *	  time: that is what made crash recovery run at about 1.4 MB/s of WAL.
 *
 *	  Through xlog_redo_filter_hook (core patch 0006) the startup process
 *	  skips the redo of every record whose only effect is on pages storage
 *	  serves, and replays the rest with PostgreSQL's own code: transaction
 *	  status (CLOG, subtransactions, two-phase state), multixacts, relation
 *	  maps, counters (next OID; next XID advances for every record before the
 *	  hook is asked), database and tablespace directories, relation creation,
 *	  logical messages and replication origins.  Kept too: records of any
 *	  fork that lives on local disk (an unlogged relation's init fork, which
 *	  redo must write for the reset at the end of recovery), and the logical
 *	  rewrite mappings of heap2 (files, not pages).
 *
 *	  Why it is safe: after recovery every read goes to storage at a read
 *	  point published by the shipper, and no session starts before VDL covers
 *	  the WAL recovered (the session gate, volume_session.c), so every page
 *	  change skipped here is in what those reads see.
 *
 *	  Not skipped: a relation's truncation (smgr rmgr).  Its redo also cuts
 *	  the compute's own caches (size cache, last-written LSNs, the local page
 *	  store), and to trim the free-space and visibility maps it reads the map
 *	  pages at the cut from storage: the only pages recovery still reads.
 */
#include "postgres.h"

#include "access/heapam_xlog.h"
#include "access/rmgr.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_control.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "redo_filter.h"
#include "smgr.h"

typedef struct RedoFilterShared
{
	pg_atomic_uint64 records_replayed;
	pg_atomic_uint64 records_skipped;
	pg_atomic_uint64 bytes_skipped;
} RedoFilterShared;

static RedoFilterShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
redo_filter_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RedoFilterShared)));
}

static void
redo_filter_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora redo filter", sizeof(RedoFilterShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->records_replayed, 0);
		pg_atomic_init_u64(&shared->records_skipped, 0);
		pg_atomic_init_u64(&shared->bytes_skipped, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Resource managers whose records change nothing but relation pages. */
static bool
rmgr_changes_only_pages(RmgrId rmid, uint8 info)
{
	switch (rmid)
	{
		case RM_HEAP_ID:
		case RM_BTREE_ID:
		case RM_HASH_ID:
		case RM_GIN_ID:
		case RM_GIST_ID:
		case RM_SEQ_ID:
		case RM_SPGIST_ID:
		case RM_BRIN_ID:
		case RM_GENERIC_ID:
			return true;
		case RM_HEAP2_ID:
			/* a rewrite's mapping files serve logical decoding */
			return (info & XLOG_HEAP_OPMASK) != XLOG_HEAP2_REWRITE;
		case RM_XLOG_ID:
			return info == XLOG_FPI || info == XLOG_FPI_FOR_HINT;
		default:
			return false;
	}
}

/* A page the record changes lives on local disk (md.c), not in storage. */
static bool
record_touches_local_fork(XLogReaderState *record)
{
	for (int b = 0; b <= XLogRecMaxBlockId(record); b++)
	{
		RelFileNode rnode;
		ForkNumber	fork;
		BlockNumber blkno;

		if (!XLogRecGetBlockTagExtended(record, b, &rnode, &fork, &blkno, NULL))
			continue;
		if (fork == INIT_FORKNUM)
			return true;
	}
	return false;
}

static bool
redo_filter(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	bool		skip = rmgr_changes_only_pages(XLogRecGetRmid(record), info) &&
		!record_touches_local_fork(record);

	if (shared != NULL)
	{
		if (skip)
		{
			pg_atomic_fetch_add_u64(&shared->records_skipped, 1);
			pg_atomic_fetch_add_u64(&shared->bytes_skipped, XLogRecGetTotalLen(record));
		}
		else
			pg_atomic_fetch_add_u64(&shared->records_replayed, 1);
	}
	return skip;
}

void
aurora_redo_filter_stats(uint64 *replayed, uint64 *skipped, uint64 *bytes_skipped)
{
	*replayed = shared ? pg_atomic_read_u64(&shared->records_replayed) : 0;
	*skipped = shared ? pg_atomic_read_u64(&shared->records_skipped) : 0;
	*bytes_skipped = shared ? pg_atomic_read_u64(&shared->bytes_skipped) : 0;
}

/* From _PG_init, after the storage manager's settings are known. */
void
aurora_redo_filter_init(void)
{
	if (!aurora_storage_manager)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = redo_filter_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = redo_filter_shmem_startup;
	xlog_redo_filter_hook = redo_filter;
}

/*
 * lsn_allocation_limit.c
 *	  The LSN allocation limit (the paper's LAL; docs/architecture.md
 *	  "Watermarks"): a backend whose WAL runs more than
 *	  aurora.lsn_allocation_limit beyond VDL waits until storage catches up,
 *	  so the WAL above VDL, all of which a restart discards, stays bounded.
 *
 *	  Two hooks of core patch 0006.  xlog_insert_hook runs after every
 *	  record a process inserts, often inside a critical section with buffer
 *	  locks held, where waiting would stall other backends on those buffers
 *	  and could not be interrupted: it only compares the record's end with
 *	  VDL (one atomic read) and, when over the limit, asks for an interrupt.
 *	  process_interrupts_hook then waits at the backend's next
 *	  CHECK_FOR_INTERRUPTS, where no lightweight lock is held and a cancel or
 *	  termination is still served.
 *
 *	  Only client backends and autovacuum workers wait, and only once they
 *	  wrote LAL_GRACE_BYTES of WAL since their last wait.  The processes
 *	  storage's progress depends on (the shipper, the WAL writer, the
 *	  checkpointer) and recovery never do.  Without a shipper streaming
 *	  there is no VDL to compare with, and nothing waits.
 */
#include "postgres.h"

#include "access/xloginsert.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "lsn_allocation_limit.h"
#include "watermarks.h"

/* MB of WAL a backend may run ahead of VDL; 0 turns the limit off */
static int	lsn_allocation_limit_mb = 32;

/*
 * A process waits only once it has written this much WAL since its last
 * wait: a session that prunes a page or sets a hint while others load data
 * (monitoring, a read-only query) is not held up for their WAL, and the WAL
 * beyond VDL stays within the limit plus this much per backend.
 */
#define LAL_GRACE_BYTES		(1024 * 1024)

/* this process's WAL bytes (pgWalUsage) when it last waited */
static uint64 wal_bytes_at_last_wait = 0;

/* the end of the record that went over the limit, 0 when none */
static XLogRecPtr over_limit_end = InvalidXLogRecPtr;
static bool in_wait = false;

typedef struct LalShared
{
	pg_atomic_uint64 waits;		/* waits begun (counted when they begin) */
	pg_atomic_uint64 wait_us;	/* and for how long in all */
} LalShared;

static LalShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static process_interrupts_hook_type prev_process_interrupts_hook = NULL;
static xlog_insert_hook_type prev_xlog_insert_hook = NULL;

static void
lal_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(LalShared)));
}

static void
lal_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora lsn allocation limit", sizeof(LalShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->waits, 0);
		pg_atomic_init_u64(&shared->wait_us, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static uint64
limit_bytes(void)
{
	return (uint64) lsn_allocation_limit_mb * 1024 * 1024;
}

static bool
subject_to_limit(void)
{
	return MyBackendType == B_BACKEND || MyBackendType == B_AUTOVAC_WORKER;
}

/* Beyond the limit: VDL more than the limit below end. */
static bool
beyond_limit(XLogRecPtr end)
{
	XLogRecPtr	vdl = aurora_released_vdl();

	return vdl != InvalidXLogRecPtr && end > vdl && end - vdl > limit_bytes() &&
		aurora_watermarks_streaming();
}

static void
lal_xlog_inserted(XLogRecPtr end)
{
	if (prev_xlog_insert_hook)
		prev_xlog_insert_hook(end);
	if (lsn_allocation_limit_mb == 0 || in_wait || !subject_to_limit())
		return;
	/* cheap test first: the atomic read, the spinlock only when over */
	if (beyond_limit(end) && pgWalUsage.wal_bytes - wal_bytes_at_last_wait >= LAL_GRACE_BYTES)
	{
		over_limit_end = end;
		InterruptPending = true;
	}
}

static void
lal_process_interrupts(void)
{
	TimestampTz started;
	XLogRecPtr	end = over_limit_end;

	if (prev_process_interrupts_hook)
		prev_process_interrupts_hook();
	if (end == InvalidXLogRecPtr || in_wait)
		return;
	over_limit_end = InvalidXLogRecPtr;
	started = GetCurrentTimestamp();
	in_wait = true;
	if (shared != NULL)
		pg_atomic_fetch_add_u64(&shared->waits, 1);
	PG_TRY();
	{
		while (lsn_allocation_limit_mb > 0 && beyond_limit(end))
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			/* a cancel or termination while waiting is served here */
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		in_wait = false;
		wal_bytes_at_last_wait = pgWalUsage.wal_bytes;
		if (shared != NULL)
		{
			long		secs;
			int			us;

			TimestampDifference(started, GetCurrentTimestamp(), &secs, &us);
			pg_atomic_fetch_add_u64(&shared->wait_us, (uint64) secs * 1000000 + us);
		}
	}
	PG_END_TRY();
}

void
aurora_lsn_allocation_limit_stats(uint64 *waits, uint64 *wait_us, int *limit_mb)
{
	*waits = shared ? pg_atomic_read_u64(&shared->waits) : 0;
	*wait_us = shared ? pg_atomic_read_u64(&shared->wait_us) : 0;
	*limit_mb = lsn_allocation_limit_mb;
}

void
aurora_lsn_allocation_limit_define_gucs(void)
{
	DefineCustomIntVariable("aurora.lsn_allocation_limit",
							"How far a backend's WAL may run beyond VDL before it waits for storage.",
							"The WAL above VDL is what a restart discards; this bounds it. 0 turns the limit off.",
							&lsn_allocation_limit_mb,
							32, 0, 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
}

/* From _PG_init when the compute ships its WAL. */
void
aurora_lsn_allocation_limit_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = lal_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = lal_shmem_startup;
	prev_xlog_insert_hook = xlog_insert_hook;
	xlog_insert_hook = lal_xlog_inserted;
	prev_process_interrupts_hook = process_interrupts_hook;
	process_interrupts_hook = lal_process_interrupts;
}

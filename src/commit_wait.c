/*
 * commit_wait.c
 *	  The commit rule (docs/architecture.md "A commit's path"): no commit is
 *	  acknowledged, or seen by another session, before VDL covers its commit
 *	  record.
 *
 *	  Core patch 0002 calls syncrep_wait_hook from SyncRepWaitForLSN(), where
 *	  a committing backend has flushed its commit record and is still in the
 *	  proc array.  There the backend writes the LSN it needs into its slot of
 *	  a shared array (one per PGPROC), sets the shipper's latch so that the
 *	  WAL goes out now rather than at the shipper's next poll, and sleeps on
 *	  its own latch until the released VDL (watermarks.c, its one owner)
 *	  reaches the LSN.  The shipper releases each new VDL there and then,
 *	  here, sets the latch of every backend whose slot it covers: one hop each way, no walsender and no
 *	  synchronous_standby_names.
 *
 *	  Ordering: a backend writes its slot before it reads VDL, the shipper
 *	  publishes VDL before it reads the slots, both with a full barrier in
 *	  between, so one of them always sees the other.
 *
 *	  A commit that waits cannot be cancelled: stock PostgreSQL ends a
 *	  synchronous-commit wait on a cancel and lets the transaction become
 *	  visible although it is not durable, so it could vanish with the
 *	  compute.  Here a cancel is refused with a warning and a termination
 *	  takes effect once the commit is durable.  Only the postmaster's death
 *	  (the whole server restarts, and sessions are turned away until VDL
 *	  covers the recovered WAL) ends the wait early.
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "replication/syncrep.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/ps_status.h"
#include "utils/timestamp.h"

#include "commit_wait.h"
#include "watermarks.h"
#include "volume_start.h"

typedef struct CommitWaitShared
{
	slock_t		mutex;			/* protects shipper_latch */
	Latch	   *shipper_latch;	/* NULL while no shipper runs */
	int			n_slots;
	pg_atomic_uint64 waiting[FLEXIBLE_ARRAY_MEMBER];	/* per PGPROC: LSN, 0 = none */
} CommitWaitShared;

static CommitWaitShared *cw = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int
slot_count(void)
{
	/* every PGPROC, as InitProcGlobal() counts them */
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
commit_wait_shmem_size(void)
{
	return add_size(offsetof(CommitWaitShared, waiting),
					mul_size(slot_count(), sizeof(pg_atomic_uint64)));
}

static void
commit_wait_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(commit_wait_shmem_size());
}

static void
commit_wait_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cw = ShmemInitStruct("aurora commit wait", commit_wait_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&cw->mutex);
		cw->shipper_latch = NULL;
		cw->n_slots = slot_count();
		for (int i = 0; i < cw->n_slots; i++)
			pg_atomic_init_u64(&cw->waiting[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
wake_shipper(void)
{
	Latch	   *latch;

	SpinLockAcquire(&cw->mutex);
	latch = cw->shipper_latch;
	SpinLockRelease(&cw->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* Said once per commit, at the first cancel or termination request. */
static void
refuse_interrupt(XLogRecPtr lsn, bool die)
{
	ereport(WARNING,
			(errcode(die ? ERRCODE_ADMIN_SHUTDOWN : ERRCODE_QUERY_CANCELED),
			 errmsg("cannot %s while the commit at %X/%X waits to become durable in storage",
					die ? "terminate the session" : "cancel the wait",
					LSN_FORMAT_ARGS(lsn)),
			 errdetail("aurora never lets other sessions see a transaction that a write quorum of storage does not hold."),
			 errhint("The wait ends when enough storage nodes are reachable again%s.",
					 die ? "; the session ends then" : "")));
}

/*
 * syncrep_wait_hook: wait until VDL >= lsn.  Like synchronous replication,
 * only when synchronous_commit asks for more than a local flush (on,
 * remote_write, remote_apply); 'local' and 'off' are a session's explicit
 * choice not to wait for anything beyond this server.
 */
static void
wait_for_vdl(XLogRecPtr lsn, bool commit)
{
	pg_atomic_uint64 *slot;
	bool		warned = false;
	char	   *new_status = NULL;
	const char *old_status = NULL;
	int			len;

	(void) commit;
	if (cw == NULL || synchronous_commit <= SYNCHRONOUS_COMMIT_LOCAL_FLUSH ||
		MyProc == NULL || MyProc->pgprocno >= cw->n_slots)
		return;
	if (aurora_released_vdl() >= lsn)
		return;

	slot = &cw->waiting[MyProc->pgprocno];
	pg_atomic_write_u64(slot, lsn);
	pg_memory_barrier();
	wake_shipper();

	if (update_process_title)
	{
		old_status = get_ps_display(&len);
		new_status = (char *) palloc(len + 32 + 1);
		memcpy(new_status, old_status, len);
		sprintf(new_status + len, " waiting for %X/%X", LSN_FORMAT_ARGS(lsn));
		set_ps_display(new_status);
		new_status[len] = '\0'; /* truncate off " waiting ..." */
	}

	for (;;)
	{
		int			rc;

		ResetLatch(MyLatch);
		if (aurora_released_vdl() >= lsn)
			break;
		if ((ProcDiePending || QueryCancelPending) && !warned)
		{
			refuse_interrupt(lsn, ProcDiePending);
			warned = true;
		}
		/* a termination stays pending until the commit is durable */
		QueryCancelPending = false;

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_POSTMASTER_DEATH, -1,
					   WAIT_EVENT_SYNC_REP);
		/* fenced: storage will take nothing more from this compute */
		if (aurora_fenced(NULL, 0, NULL))
			rc |= WL_POSTMASTER_DEATH;
		if (rc & WL_POSTMASTER_DEATH)
		{
			/*
			 * The server restarts: the client must not take the commit for
			 * durable, and nothing else runs before crash recovery.
			 */
			ProcDiePending = true;
			whereToSendOutput = DestNone;
			break;
		}
	}
	pg_atomic_write_u64(slot, 0);

	if (new_status)
	{
		set_ps_display(new_status);
		pfree(new_status);
	}
}

/*
 * Wait until VDL >= lsn, at most timeout_ms, without reacting to
 * interrupts (the storage manager waits here inside a buffer write, where
 * an error would be worse than the short wait).  Uses the process's commit
 * slot, so the shipper ships at once and does not stop meanwhile.  Returns
 * whether VDL reached lsn.
 */
bool
aurora_wake_shipper_and_wait_vdl_covers(XLogRecPtr lsn, int timeout_ms)
{
	pg_atomic_uint64 *slot;
	TimestampTz deadline;
	bool		reached;

	if (cw == NULL)
		return false;
	if (aurora_released_vdl() >= lsn)
		return true;
	if (MyProc == NULL || MyProc->pgprocno >= cw->n_slots || timeout_ms <= 0)
		return false;
	/* no shipper (shutdown, crash recovery): VDL cannot move */
	SpinLockAcquire(&cw->mutex);
	if (cw->shipper_latch == NULL)
	{
		SpinLockRelease(&cw->mutex);
		return false;
	}
	SpinLockRelease(&cw->mutex);
	slot = &cw->waiting[MyProc->pgprocno];
	pg_atomic_write_u64(slot, lsn);
	pg_memory_barrier();
	wake_shipper();
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;)
	{
		long		left;
		int			rc;

		ResetLatch(MyLatch);
		if ((reached = aurora_released_vdl() >= lsn))
			break;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
			break;
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH, left,
					   WAIT_EVENT_SYNC_REP);
		if (rc & WL_POSTMASTER_DEATH)
			break;
	}
	pg_atomic_write_u64(slot, 0);
	/* a commit wait or a latch user may have been woken with us: keep it set */
	SetLatch(MyLatch);
	return reached;
}

void
aurora_commit_wait_init(void)
{
	syncrep_wait_hook = wait_for_vdl;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = commit_wait_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = commit_wait_shmem_startup;
}

/* The shipper announces itself (latch) or its exit (NULL). */
void
aurora_commit_wait_set_shipper(Latch *latch)
{
	SpinLockAcquire(&cw->mutex);
	cw->shipper_latch = latch;
	SpinLockRelease(&cw->mutex);
}

/*
 * Release vdl (watermarks.c keeps it, never backwards) and wake the commits
 * it covers.
 */
void
aurora_commit_wait_release(XLogRecPtr vdl)
{
	vdl = aurora_release_vdl(vdl);
	for (int i = 0; i < cw->n_slots; i++)
	{
		XLogRecPtr	want = pg_atomic_read_u64(&cw->waiting[i]);

		if (want != 0 && want <= vdl)
			SetLatch(&ProcGlobal->allProcs[i].procLatch);
	}
}

/* Whether any backend waits for VDL now. */
bool
aurora_commit_wait_pending(void)
{
	pg_memory_barrier();
	for (int i = 0; i < cw->n_slots; i++)
		if (pg_atomic_read_u64(&cw->waiting[i]) != 0)
			return true;
	return false;
}

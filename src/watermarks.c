/*
 * watermarks.c
 *	  The compute's watermarks (docs/architecture.md "Watermarks"), owned
 *	  here and nowhere else: the commit wait (commit_wait.c), the storage
 *	  manager (smgr.c), the reader (page_reader.c), the session gate
 *	  (volume_session.c) and the views (sql_functions.c) ask this module.
 *
 *	  Two halves:
 *
 *	  - In the shipper process: the records in flight and each PG's PGCL,
 *	    from which storage_service/common/watermark.c computes VCL and VDL.
 *	    They move on whichever thread learns first that they can: mostly the
 *	    quorum writer's thread whose acknowledgement advanced a PGCL, which
 *	    publishes the new VDL and releases the commits it covers itself, one
 *	    hop fewer than through the main loop; else the main loop.
 *	    durable_lock guards the ring, the PGCLs, publishing and
 *	    main_waits_for_acks.  Lock order: a writer's mutex (held while it
 *	    calls back, see wal_routing.c), then durable_lock, then the shared
 *	    spinlock.  So the main loop never calls into a writer while holding
 *	    durable_lock, and never allocates under it (an ERROR would leave it
 *	    locked for the exit callback).
 *
 *	  - In shared memory, for every backend: the read points, VCL and VDL of
 *	    the running shipper for the views, and the released VDL, the highest
 *	    VDL any shipper published since the server started, which releases
 *	    commits and never moves backwards (a restarted shipper's VDL may read
 *	    lower for a moment).  Published in the order readers rely on: read
 *	    points, then the views, then the released VDL (the caller then wakes
 *	    the commits, commit_wait.c).
 */
#include "postgres.h"

#include <pthread.h>

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compute_volume.h"
#include "watermark.h"
#include "watermarks.h"
#include "volume_start.h"

typedef struct WatermarksShared
{
	slock_t		mutex;			/* running, vcl, vdl, vdl_advanced_at,
								 * recovered_wal_end */
	bool		running;		/* streaming, vcl and vdl meaningful */
	XLogRecPtr	vcl;
	XLogRecPtr	vdl;
	TimestampTz vdl_advanced_at;
	XLogRecPtr	recovered_wal_end;	/* end of the local WAL when the first
									 * shipper since the server started
									 * began; 0 = none yet */
	pg_atomic_uint64 released_vdl;

	/*
	 * Per PG, max(PGCL, seeded LSN) published with each VDL, before the
	 * commits it releases: every record of the PG that VDL covers ends at or
	 * below it, so a page read there is at least as new as any page the
	 * compute has evicted (smgr.c).  Storage serves seeded images from their
	 * LSN on, hence the seed.
	 */
	int			n_pgs;
	pg_atomic_uint64 read_point[FLEXIBLE_ARRAY_MEMBER];
} WatermarksShared;

static WatermarksShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the shipper process's half */
static pthread_mutex_t durable_lock = PTHREAD_MUTEX_INITIALIZER;
static aurora_vcl_ring ring;
static int	n_pgs = 0;
static uint64_t *pgcl = NULL;	/* n_pgs entries, as last reported */
static XLogRecPtr *seeded = NULL;	/* LSN of each PG's seeded images, 0 = none */
static bool publishing = false; /* streaming: acknowledgements publish VDL */
static bool main_waits_for_acks = false;	/* a batch waits for window room */

static Size
watermarks_shmem_size(void)
{
	return add_size(offsetof(WatermarksShared, read_point),
					mul_size(aurora_protection_groups, sizeof(pg_atomic_uint64)));
}

static void
watermarks_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(watermarks_shmem_size());
}

static void
watermarks_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora watermarks", watermarks_shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, watermarks_shmem_size());
		SpinLockInit(&shared->mutex);
		pg_atomic_init_u64(&shared->released_vdl, 0);
		shared->n_pgs = aurora_protection_groups;
		for (int p = 0; p < shared->n_pgs; p++)
			pg_atomic_init_u64(&shared->read_point[p], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Request the shared memory (from _PG_init, when shipping). */
void
aurora_watermarks_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = watermarks_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = watermarks_shmem_startup;
}

XLogRecPtr
aurora_released_vdl(void)
{
	return shared == NULL ? InvalidXLogRecPtr : pg_atomic_read_u64(&shared->released_vdl);
}

XLogRecPtr
aurora_release_vdl(XLogRecPtr vdl)
{
	XLogRecPtr	cur = pg_atomic_read_u64(&shared->released_vdl);

	while (vdl > cur && !pg_atomic_compare_exchange_u64(&shared->released_vdl, &cur, vdl))
		;
	pg_memory_barrier();
	return pg_atomic_read_u64(&shared->released_vdl);
}

bool
aurora_watermarks_ready(void)
{
	bool		ready;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	ready = shared->running && shared->recovered_wal_end != InvalidXLogRecPtr &&
		shared->vdl >= shared->recovered_wal_end;
	SpinLockRelease(&shared->mutex);
	return ready;
}

XLogRecPtr
aurora_published_read_point(int pg)
{
	if (shared == NULL || pg < 0 || pg >= shared->n_pgs)
		return InvalidXLogRecPtr;
	pg_read_barrier();
	return pg_atomic_read_u64(&shared->read_point[pg]);
}

bool
aurora_watermarks_view(AuroraWatermarkView *view)
{
	bool		running;

	memset(view, 0, sizeof(*view));
	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	running = shared->running;
	view->vcl = shared->vcl;
	view->vdl = shared->vdl;
	view->vdl_advanced_at = shared->vdl_advanced_at;
	SpinLockRelease(&shared->mutex);
	return running;
}

/* Whether a shipper streams (its VCL, VDL and status are meaningful). */
bool
aurora_watermarks_streaming(void)
{
	bool		running;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	running = shared->running;
	SpinLockRelease(&shared->mutex);
	return running;
}

XLogRecPtr
aurora_recovered_wal_end(void)
{
	XLogRecPtr	end;

	if (shared == NULL)
		return InvalidXLogRecPtr;
	SpinLockAcquire(&shared->mutex);
	end = shared->recovered_wal_end;
	SpinLockRelease(&shared->mutex);
	return end;
}

/* Only the first shipper since the server started sets it. */
void
aurora_note_recovered_wal_end(XLogRecPtr flush)
{
	SpinLockAcquire(&shared->mutex);
	if (shared->recovered_wal_end == InvalidXLogRecPtr)
		shared->recovered_wal_end = flush;
	SpinLockRelease(&shared->mutex);
}

/* The shipper starts, with npgs PGs, before their writers call back. */
void
aurora_watermarks_start(int npgs)
{
	uint64_t   *pgcl_new = MemoryContextAllocZero(TopMemoryContext, sizeof(uint64_t) * npgs);
	XLogRecPtr *seeded_new = MemoryContextAllocZero(TopMemoryContext, sizeof(XLogRecPtr) * npgs);

	pthread_mutex_lock(&durable_lock);
	n_pgs = npgs;
	pgcl = pgcl_new;
	seeded = seeded_new;
	aurora_vcl_ring_init(&ring, InvalidXLogRecPtr);
	pthread_mutex_unlock(&durable_lock);
}

/* Resume where a VDL published before stood. */
void
aurora_watermarks_resume(XLogRecPtr resume)
{
	pthread_mutex_lock(&durable_lock);
	ring.vcl = ring.vdl = resume;
	pthread_mutex_unlock(&durable_lock);
}

void
aurora_watermarks_seeded(int pg, XLogRecPtr lsn)
{
	pthread_mutex_lock(&durable_lock);
	seeded[pg] = lsn;
	pthread_mutex_unlock(&durable_lock);
}

/* Queue a record for VCL (the ring grows outside durable_lock). */
void
aurora_watermarks_track(XLogRecPtr end, bool cpl, int npgs, const uint32 *rec_pgs)
{
	aurora_inflight_record *grown = NULL;
	aurora_inflight_record *old = NULL;
	int			cap;

	pthread_mutex_lock(&durable_lock);
	cap = aurora_vcl_ring_grow_to(&ring);
	pthread_mutex_unlock(&durable_lock);
	if (cap > 0)
		grown = MemoryContextAlloc(TopMemoryContext, sizeof(aurora_inflight_record) * cap);

	pthread_mutex_lock(&durable_lock);
	/* only this thread adds: acknowledgements meanwhile only made room */
	if (grown != NULL)
		old = aurora_vcl_ring_regrow(&ring, grown, cap);
	aurora_vcl_ring_push(&ring, end, cpl, npgs, rec_pgs);
	pthread_mutex_unlock(&durable_lock);
	if (old != NULL)
		pfree(old);
}

/* A record just queued may already be durable (its batch went out at once). */
void
aurora_watermarks_advance(void)
{
	pthread_mutex_lock(&durable_lock);
	aurora_vcl_ring_advance(&ring, pgcl, n_pgs);
	pthread_mutex_unlock(&durable_lock);
}

/*
 * Publish with durable_lock held (see the top of the file); releases it.
 * Returns the VDL the caller must release to the commits
 * (aurora_commit_wait_release; 0: none, not streaming).
 */
static XLogRecPtr
publish_unlock(void)
{
	XLogRecPtr	vcl = ring.vcl;
	XLogRecPtr	vdl = ring.vdl;
	bool		running = publishing;

	if (running)
	{
		for (int p = 0; p < n_pgs && p < shared->n_pgs; p++)
		{
			/*
			 * A compute opened from the volume may read up to where its PGs
			 * stood at the open at once: storage holds that even while a
			 * write quorum is not reachable and PGCL lags (opened with an
			 * AZ and a node down).
			 */
			XLogRecPtr	rp = Max(Max(pgcl[p], seeded[p]), aurora_opened_read_point(p));

			if (rp > pg_atomic_read_u64(&shared->read_point[p]))
				pg_atomic_write_u64(&shared->read_point[p], rp);
		}
		pg_write_barrier();
	}
	SpinLockAcquire(&shared->mutex);
	shared->running = running;
	if (vcl > shared->vcl || !running)
		shared->vcl = vcl;
	if (vdl > shared->vdl || !running)
	{
		shared->vdl = vdl;
		shared->vdl_advanced_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&shared->mutex);
	pthread_mutex_unlock(&durable_lock);
	/* after the views: a released commit must see VDL past it there too */
	return running ? vdl : InvalidXLogRecPtr;
}

/*
 * A quorum writer's thread: PG pg's PGCL moved.  Moves VDL and publishes it
 * while streaming.  *main_waited says whether the main loop held a batch
 * back for window room (it wants a wake-up; the flag is cleared).
 */
XLogRecPtr
aurora_watermarks_pgcl_advanced(int pg, XLogRecPtr new_pgcl, bool *main_waited)
{
	pthread_mutex_lock(&durable_lock);
	if (new_pgcl > pgcl[pg])
		pgcl[pg] = new_pgcl;
	aurora_vcl_ring_advance(&ring, pgcl, n_pgs);
	*main_waited = main_waits_for_acks;
	main_waits_for_acks = false;
	if (publishing)
		return publish_unlock();
	pthread_mutex_unlock(&durable_lock);
	return InvalidXLogRecPtr;
}

/* Publish VCL, VDL and read points (running) or that nothing streams. */
XLogRecPtr
aurora_watermarks_publish(bool running)
{
	pthread_mutex_lock(&durable_lock);
	publishing = running;
	return publish_unlock();
}

void
aurora_watermarks_main_waits(bool waits)
{
	pthread_mutex_lock(&durable_lock);
	main_waits_for_acks = waits;
	pthread_mutex_unlock(&durable_lock);
}

/* The shipper's current VDL (durable_lock is brief). */
XLogRecPtr
aurora_watermarks_vdl(void)
{
	XLogRecPtr	v;

	pthread_mutex_lock(&durable_lock);
	v = ring.vdl;
	pthread_mutex_unlock(&durable_lock);
	return v;
}

int
aurora_watermarks_in_flight(void)
{
	int			n;

	pthread_mutex_lock(&durable_lock);
	n = ring.count;
	pthread_mutex_unlock(&durable_lock);
	return n;
}

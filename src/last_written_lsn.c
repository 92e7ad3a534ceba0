/*
 * last_written_lsn.c
 *	  The last-written LSN of each block, for the storage manager (smgr.c;
 *	  docs/architecture.md "A read's path"): a page missing from shared
 *	  buffers is asked from storage at the LSN of its last write, which
 *	  the storage manager records here when PostgreSQL evicts the page.
 *	  Shared memory is bounded, so the cache is a direct-mapped array: a
 *	  collision drops the older entry, and a block whose entry was dropped
 *	  is read at its PG's read point instead (smgr.c), a higher LSN that is
 *	  always safe.  Losing an entry never yields a wrong page.
 *
 *	  One LWLock (its own tranche) guards the array; no other lock is taken
 *	  under it.  Installed by aurora_smgr_init, only with
 *	  aurora.storage_manager on.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "last_written_lsn.h"

int			aurora_lwlsn_cache_entries = 65536;

typedef struct LwlsnEntry
{
	BufferTag	tag;
	XLogRecPtr	lsn;			/* 0 = empty */
} LwlsnEntry;

typedef struct LwlsnShared
{
	LWLock	   *lock;
	LwlsnEntry	entries[FLEXIBLE_ARRAY_MEMBER];
} LwlsnShared;

static LwlsnShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
lwlsn_shmem_size(void)
{
	return add_size(offsetof(LwlsnShared, entries),
					mul_size(aurora_lwlsn_cache_entries, sizeof(LwlsnEntry)));
}

static void
lwlsn_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(lwlsn_shmem_size());
	RequestNamedLWLockTranche("aurora_last_written_lsn", 1);
}

static void
lwlsn_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora last-written LSNs", lwlsn_shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, lwlsn_shmem_size());
		shared->lock = &GetNamedLWLockTranche("aurora_last_written_lsn")[0].lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
aurora_lwlsn_define_gucs(void)
{
	DefineCustomIntVariable("aurora.lwlsn_cache_size",
							"Blocks whose last-written LSN the compute remembers.",
							"A block not remembered is read at its protection group's read point.",
							&aurora_lwlsn_cache_entries,
							65536, 1024, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/* Request the shared memory (from aurora_smgr_init). */
void
aurora_lwlsn_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = lwlsn_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = lwlsn_shmem_startup;
}

static LwlsnEntry *
lwlsn_slot(const BufferTag *tag)
{
	uint32		h = DatumGetUInt32(hash_any((const unsigned char *) tag, sizeof(BufferTag)));

	return &shared->entries[h % (uint32) aurora_lwlsn_cache_entries];
}

void
aurora_lwlsn_set(const BufferTag *tag, XLogRecPtr lsn)
{
	LwlsnEntry *e = lwlsn_slot(tag);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	e->tag = *tag;
	e->lsn = lsn;
	LWLockRelease(shared->lock);
}

XLogRecPtr
aurora_lwlsn_get(const BufferTag *tag)
{
	LwlsnEntry *e = lwlsn_slot(tag);
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	LWLockAcquire(shared->lock, LW_SHARED);
	if (e->lsn != InvalidXLogRecPtr && BUFFERTAGS_EQUAL(e->tag, *tag))
		lsn = e->lsn;
	LWLockRelease(shared->lock);
	return lsn;
}

void
aurora_lwlsn_forget_from(RelFileNode rnode, ForkNumber fork, BlockNumber from)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < aurora_lwlsn_cache_entries; i++)
	{
		LwlsnEntry *e = &shared->entries[i];

		if (e->lsn != InvalidXLogRecPtr && RelFileNodeEquals(e->tag.rnode, rnode) &&
			e->tag.forkNum == fork && e->tag.blockNum >= from)
			e->lsn = InvalidXLogRecPtr;
	}
	LWLockRelease(shared->lock);
}

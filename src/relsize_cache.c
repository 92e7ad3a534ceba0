/*
 * relsize_cache.c
 *	  The relation size cache of the storage manager (smgr.c; docs/
 *	  architecture.md "A read's path"): storage derives every fork's size
 *	  from the log (REL_SIZE, the largest answer of all PGs), so asking it
 *	  costs a round trip to every PG.  This shared hash holds the sizes the
 *	  compute has asked for or changed; an entry the compute changed
 *	  (create, extend, truncate) is never evicted, so a relation extended
 *	  but not yet WAL-logged cannot shrink.  Sizes asked from storage are
 *	  evicted to make room.
 *
 *	  One LWLock (its own tranche) guards the hash; it is never held while
 *	  asking storage, and no other lock is taken under it.  Installed by
 *	  aurora_smgr_init, only with aurora.storage_manager on.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#include "relsize_cache.h"

int			aurora_relsize_cache_entries = 16384;

typedef struct RelSizeKey
{
	RelFileNode rnode;
	ForkNumber	fork;
} RelSizeKey;

typedef struct RelSizeEntry
{
	RelSizeKey	key;
	bool		exists;
	BlockNumber nblocks;
	bool		changed;		/* set by the compute: never evicted */
} RelSizeEntry;

typedef struct RelSizeShared
{
	LWLock	   *lock;
} RelSizeShared;

static RelSizeShared *shared = NULL;
static HTAB *relsize = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
relsize_cache_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(RelSizeShared));
	RequestAddinShmemSpace(hash_estimate_size(aurora_relsize_cache_entries, sizeof(RelSizeEntry)));
	RequestNamedLWLockTranche("aurora_relsize_cache", 1);
}

static void
relsize_cache_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora relation size cache", sizeof(RelSizeShared), &found);
	if (!found)
		shared->lock = &GetNamedLWLockTranche("aurora_relsize_cache")[0].lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RelSizeKey);
	info.entrysize = sizeof(RelSizeEntry);
	relsize = ShmemInitHash("aurora relation sizes", aurora_relsize_cache_entries,
							aurora_relsize_cache_entries, &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
aurora_relsize_cache_define_gucs(void)
{
	DefineCustomIntVariable("aurora.relsize_cache_size",
							"Relation fork sizes the compute keeps in shared memory.",
							NULL,
							&aurora_relsize_cache_entries,
							16384, 128, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/* Request the shared memory (from aurora_smgr_init). */
void
aurora_relsize_cache_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = relsize_cache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = relsize_cache_shmem_startup;
}

static void
relsize_key(RelSizeKey *key, RelFileNode rnode, ForkNumber fork)
{
	memset(key, 0, sizeof(*key));
	key->rnode = rnode;
	key->fork = fork;
}

/* Caller holds the lock exclusively; makes room if the table is full. */
static RelSizeEntry *
relsize_enter(const RelSizeKey *key, bool *found)
{
	RelSizeEntry *e = hash_search(relsize, key, HASH_ENTER_NULL, found);

	if (e == NULL)
	{
		HASH_SEQ_STATUS seq;
		RelSizeEntry *victim = NULL;
		RelSizeEntry *cur;

		hash_seq_init(&seq, relsize);
		while ((cur = hash_seq_search(&seq)) != NULL)
			if (!cur->changed)
			{
				victim = cur;
				hash_seq_term(&seq);
				break;
			}
		if (victim == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("aurora relation size cache is full of sizes storage may not know yet"),
					 errhint("Raise aurora.relsize_cache_size (now %d).", aurora_relsize_cache_entries)));
		hash_search(relsize, &victim->key, HASH_REMOVE, NULL);
		e = hash_search(relsize, key, HASH_ENTER, found);
	}
	return e;
}

bool
aurora_relsize_cache_find(RelFileNode rnode, ForkNumber fork, bool *exists, BlockNumber *nblocks)
{
	RelSizeKey	key;
	RelSizeEntry *e;

	relsize_key(&key, rnode, fork);
	LWLockAcquire(shared->lock, LW_SHARED);
	e = hash_search(relsize, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		*exists = e->exists;
		*nblocks = e->nblocks;
	}
	LWLockRelease(shared->lock);
	return e != NULL;
}

void
aurora_relsize_cache_learn(RelFileNode rnode, ForkNumber fork,
						   bool fetched_exists, BlockNumber fetched_nblocks,
						   bool *exists, BlockNumber *nblocks)
{
	RelSizeKey	key;
	RelSizeEntry *e;
	bool		found;

	relsize_key(&key, rnode, fork);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	e = relsize_enter(&key, &found);
	if (!found)
	{
		e->exists = fetched_exists;
		e->nblocks = fetched_nblocks;
		e->changed = false;
	}
	*exists = e->exists;
	*nblocks = e->nblocks;
	LWLockRelease(shared->lock);
}

void
aurora_relsize_cache_set(RelFileNode rnode, ForkNumber fork, BlockNumber nblocks, bool grow_only)
{
	RelSizeKey	key;
	RelSizeEntry *e;
	bool		found;

	relsize_key(&key, rnode, fork);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	e = relsize_enter(&key, &found);
	if (!found || !grow_only || !e->exists || nblocks > e->nblocks)
		e->nblocks = nblocks;
	e->exists = true;
	e->changed = true;
	LWLockRelease(shared->lock);
}

bool
aurora_relsize_cache_changed(RelFileNode rnode, ForkNumber fork, BlockNumber *nblocks)
{
	RelSizeKey	key;
	RelSizeEntry *e;
	bool		changed = false;

	relsize_key(&key, rnode, fork);
	LWLockAcquire(shared->lock, LW_SHARED);
	e = hash_search(relsize, &key, HASH_FIND, NULL);
	if (e != NULL && e->exists && e->changed)
	{
		*nblocks = e->nblocks;
		changed = true;
	}
	LWLockRelease(shared->lock);
	return changed;
}

void
aurora_relsize_cache_forget(RelFileNode rnode, ForkNumber fork)
{
	RelSizeKey	key;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int f = 0; f <= MAX_FORKNUM; f++)
	{
		if (fork != InvalidForkNumber && f != fork)
			continue;
		relsize_key(&key, rnode, (ForkNumber) f);
		hash_search(relsize, &key, HASH_REMOVE, NULL);
	}
	LWLockRelease(shared->lock);
}

/*
 * smgr.c
 *	  The aurora storage manager (aurora.storage_manager; docs/architecture.md
 *	  "A read's path" and "Pitfalls of pages from the log"): permanent
 *	  relations live in the storage service, not in the compute's data
 *	  directory.  Installed through smgr_hook (core patch
 *	  0001); temporary and unlogged relations stay with md.c.
 *
 *	  Read: a page missing from shared buffers (and from the local page
 *	  store, local_pages.c) is asked from a segment of its protection group
 *	  (page_reader.c) at its last-written LSN, which a bounded shared cache
 *	  keeps per block (last_written_lsn.c); a block whose entry was dropped
 *	  falls back to its PG's read point, a higher LSN that is always safe.
 *	  A block storage does not hold (never WAL-logged: a hole, an extension
 *	  not yet used) reads as zeros, as md.c reads a hole.
 *
 *	  Write (eviction): nothing goes over the network.  The shipper already
 *	  has the WAL, so the page can be dropped once VDL covers its LSN; the
 *	  evicting process waits up to aurora.eviction_wait for that.  A page
 *	  that storage cannot rebuild, or not yet, goes to the local page store
 *	  instead (see local_pages.c for the cases).  Free-space and visibility
 *	  map pages change without WAL, so a backend evicting one logs it as a
 *	  full-page image first.
 *
 *	  Sizes: storage derives every fork's size from the log (REL_SIZE, the
 *	  largest answer of all PGs).  A shared cache (relsize_cache.c) holds
 *	  the sizes the compute has asked for or changed; an entry the compute
 *	  changed (create, extend, truncate) is never evicted, so a relation
 *	  extended but not yet WAL-logged cannot shrink.
 *
 *	  Unlogged relations: smgropen cannot know a relation's persistence, so
 *	  an unlogged relation is recognized by its init fork on local disk; the
 *	  relation that creates one (in the transaction that creates it, or in
 *	  redo) moves to md.c with whatever it has written so far.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/visibilitymap.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "access/xlogrecovery.h"
#include "catalog/catalog.h"
#include "commands/defrem.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/md.h"
#include "storage/shmem.h"
#include "storage/smgr.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "commit_wait.h"
#include "compute_volume.h"
#include "copy_guard.h"
#include "last_written_lsn.h"
#include "local_pages.h"
#include "page_reader.h"
#include "relsize_cache.h"
#include "smgr.h"
#include "watermarks.h"

bool		aurora_storage_manager = false;
int			aurora_eviction_wait_ms = 100;

/* how long a truncation waits for storage to hold it (then it warns) */
#define TRUNCATE_WAIT_MS	10000
/*
 * An eviction waits for VDL only when storage is this close behind the page
 * (bytes of WAL); further behind, storage is slow or stalled and waiting
 * page by page would stall PostgreSQL: the page is kept locally instead.
 */
#define EVICTION_WAIT_MAX_LAG	(1024 * 1024)
/* how long an eviction waits when the local page store is full */
#define FULL_STORE_WAIT_MS	60000

typedef struct SmgrShared
{
	pg_atomic_uint64 reads;		/* pages read from storage */
	pg_atomic_uint64 read_us;	/* their total latency */
	pg_atomic_uint64 read_retries;	/* segments tried after the first */
	pg_atomic_uint64 local_reads;	/* pages read from the local page store */
	pg_atomic_uint64 evictions; /* dirty pages written by PostgreSQL */
	pg_atomic_uint64 evicted_to_storage;	/* dropped: storage rebuilds them */
	pg_atomic_uint64 evicted_locally;	/* kept in the local page store */
	pg_atomic_uint64 eviction_waits;	/* evictions that waited for VDL */
	pg_atomic_uint64 map_images;	/* FSM/VM pages logged as images */
	pg_atomic_uint64 size_requests; /* fork sizes asked from storage */
	pg_atomic_uint64 recovery_reads;	/* pages the startup process read */
} SmgrShared;

static SmgrShared *ss = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static const f_smgr aurora_smgr;

/* ---- shared memory ---- */

static void
smgr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(SmgrShared));
	aurora_local_pages_shmem_request();
}

static void
smgr_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ss = ShmemInitStruct("aurora smgr", sizeof(SmgrShared), &found);
	if (!found)
	{
		memset(ss, 0, sizeof(SmgrShared));
		pg_atomic_init_u64(&ss->reads, 0);
		pg_atomic_init_u64(&ss->read_us, 0);
		pg_atomic_init_u64(&ss->read_retries, 0);
		pg_atomic_init_u64(&ss->local_reads, 0);
		pg_atomic_init_u64(&ss->evictions, 0);
		pg_atomic_init_u64(&ss->evicted_to_storage, 0);
		pg_atomic_init_u64(&ss->evicted_locally, 0);
		pg_atomic_init_u64(&ss->eviction_waits, 0);
		pg_atomic_init_u64(&ss->map_images, 0);
		pg_atomic_init_u64(&ss->size_requests, 0);
		pg_atomic_init_u64(&ss->recovery_reads, 0);
	}
	aurora_local_pages_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

void
aurora_smgr_count_read(uint64 us, int retries)
{
	pg_atomic_fetch_add_u64(&ss->reads, 1);
	pg_atomic_fetch_add_u64(&ss->read_us, us);
	pg_atomic_fetch_add_u64(&ss->read_retries, (uint64) retries);
	if (AmStartupProcess())
		pg_atomic_fetch_add_u64(&ss->recovery_reads, 1);
}

/*
 * The LSN to read a block at: its last write, or its PG's read point (also
 * when the entry says InvalidXLogRecPtr: a map page evicted at a covering
 * LSN, which need not be the end of any record of its PG).
 */
static XLogRecPtr
read_lsn(const BufferTag *tag)
{
	XLogRecPtr	lsn = aurora_lwlsn_get(tag);

	if (lsn == InvalidXLogRecPtr || RecoveryInProgress())
		lsn = aurora_read_point(aurora_tag_pg(tag));
	return lsn;
}

/* ---- relation sizes ---- */

/* A fork's size: from the cache, else from storage (then cached). */
static void
relsize_lookup(RelFileNode rnode, ForkNumber fork, bool *exists, BlockNumber *nblocks)
{
	bool		s_exists;
	BlockNumber s_nblocks;

	if (aurora_relsize_cache_find(rnode, fork, exists, nblocks))
		return;
	pg_atomic_fetch_add_u64(&ss->size_requests, 1);
	s_exists = aurora_fetch_rel_size(rnode, fork, &s_nblocks);
	aurora_relsize_cache_learn(rnode, fork, s_exists, s_nblocks, exists, nblocks);
}

/* ---- the storage manager ---- */

/*
 * Every permanent relation keeps an empty main-fork file (md.c's, never
 * written): PostgreSQL looks at those files to avoid reusing a relfilenode
 * and to refuse dropping a tablespace that is not empty.
 */
static void
aur_open(SMgrRelation reln)
{
	smgr_standard(reln->smgr_rnode.backend, reln->smgr_rnode.node)->smgr_open(reln);
}

static void
aur_close(SMgrRelation reln, ForkNumber forknum)
{
	smgr_standard(reln->smgr_rnode.backend, reln->smgr_rnode.node)->smgr_close(reln, forknum);
}

static bool
aur_exists(SMgrRelation reln, ForkNumber forknum)
{
	bool		exists;
	BlockNumber nblocks;

	relsize_lookup(reln->smgr_rnode.node, forknum, &exists, &nblocks);
	return exists;
}

static BlockNumber
aur_nblocks(SMgrRelation reln, ForkNumber forknum)
{
	bool		exists;
	BlockNumber nblocks;

	relsize_lookup(reln->smgr_rnode.node, forknum, &exists, &nblocks);
	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not open relation %u/%u/%u fork %d: it does not exist in storage",
						reln->smgr_rnode.node.spcNode, reln->smgr_rnode.node.dbNode,
						reln->smgr_rnode.node.relNode, (int) forknum)));
	return nblocks;
}

static void aur_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer);

/*
 * An unlogged relation (its init fork is being created) moves to md.c with
 * the pages it has so far (an index build writes its main fork first).
 */
static void
move_to_md(SMgrRelation reln, bool isRedo)
{
	const f_smgr *md = smgr_standard(reln->smgr_rnode.backend, reln->smgr_rnode.node);
	PGAlignedBlock page;
	List	   *forks = NIL;
	List	   *sizes = NIL;
	ListCell   *fc,
			   *sc;

	for (int f = 0; f <= MAX_FORKNUM; f++)
	{
		BlockNumber nblocks;

		if (f == INIT_FORKNUM)
			continue;
		if (aurora_relsize_cache_changed(reln->smgr_rnode.node, (ForkNumber) f, &nblocks))
		{
			forks = lappend_int(forks, f);
			sizes = lappend_int(sizes, (int) nblocks);
		}
	}
	reln->smgr = md;
	md->smgr_open(reln);
	forboth(fc, forks, sc, sizes)
	{
		ForkNumber	f = (ForkNumber) lfirst_int(fc);
		BlockNumber n = (BlockNumber) lfirst_int(sc);

		/* the main fork has its (empty) file already */
		if (!md->smgr_exists(reln, f))
			md->smgr_create(reln, f, isRedo);
		for (BlockNumber b = 0; b < n; b++)
		{
			aur_read(reln, f, b, page.data);
			md->smgr_extend(reln, f, b, page.data, false);
		}
	}
	aurora_relsize_cache_forget(reln->smgr_rnode.node, InvalidForkNumber);
	aurora_local_pages_forget_rel(reln->smgr_rnode.node, InvalidForkNumber, 0);
}

static void
aur_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
	bool		cached;
	bool		cached_exists;
	BlockNumber cached_nblocks;

	if (forknum == INIT_FORKNUM)
	{
		move_to_md(reln, isRedo);
		reln->smgr->smgr_create(reln, forknum, isRedo);
		return;
	}
	cached = aurora_relsize_cache_find(reln->smgr_rnode.node, forknum,
									   &cached_exists, &cached_nblocks);

	/*
	 * Redo creates forks that may well exist, with pages in storage: learn
	 * their size first.  Outside redo a fork is created new (a fresh
	 * relfilenode) or after smgrexists() said it is missing (cached).
	 */
	if (forknum == MAIN_FORKNUM)
		smgr_standard(reln->smgr_rnode.backend, reln->smgr_rnode.node)->smgr_create(reln, forknum, isRedo);
	if (!cached && isRedo)
	{
		bool		exists;
		BlockNumber nblocks;

		relsize_lookup(reln->smgr_rnode.node, forknum, &exists, &nblocks);
		aurora_relsize_cache_set(reln->smgr_rnode.node, forknum, nblocks, true);
	}
	else
		aurora_relsize_cache_set(reln->smgr_rnode.node, forknum, 0, true);
}

static void
aur_unlink(RelFileNodeBackend rnode, ForkNumber forknum, bool isRedo)
{
	aurora_relsize_cache_forget(rnode.node, forknum);
	aurora_local_pages_forget_rel(rnode.node, forknum, 0);
	/* the empty main-fork file, removed as md.c removes its files */
	smgr_standard(rnode.backend, rnode.node)->smgr_unlink(rnode, forknum, isRedo);
}

static bool
aur_prefetch(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum)
{
	return true;
}

static void
aur_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer)
{
	BufferTag	tag;
	XLogRecPtr	local_lsn;
	uint32		flags;

	INIT_BUFFERTAG(tag, reln->smgr_rnode.node, forknum, blocknum);
	if (aurora_local_pages_read(&tag, buffer, &local_lsn, &flags))
	{
		pg_atomic_fetch_add_u64(&ss->local_reads, 1);
		if ((flags & AURORA_LP_VERIFY) && (flags & AURORA_LP_MAP))
			aurora_local_pages_verified(&tag);	/* LSNs say nothing of map bits */
		else if (flags & AURORA_LP_VERIFY)
		{
			/* kept from before a restart: storage may have a newer version */
			PGAlignedBlock stored;

			if (aurora_fetch_page(&tag, read_lsn(&tag), stored.data) &&
				PageGetLSN((Page) stored.data) > local_lsn)
			{
				memcpy(buffer, stored.data, BLCKSZ);
				aurora_local_pages_forget(&tag);
			}
			else
				aurora_local_pages_verified(&tag);
		}
		return;
	}
	if (aurora_fetch_page(&tag, read_lsn(&tag), buffer))
		aurora_local_pages_cache_put(&tag, buffer, PageGetLSN((Page) buffer));
	else
		MemSet(buffer, 0, BLCKSZ);
}

/*
 * A sequence's page (its special space holds the sequence magic).  nextval
 * logs a value 32 ahead of the one it returns, so the page storage rebuilds
 * jumps ahead, as after a crash; kept locally, it does not.
 */
#define SEQUENCE_PAGE_MAGIC	0x1717

static bool
is_sequence_page(Page page)
{
	return PageGetSpecialSize(page) == MAXALIGN(sizeof(uint32)) &&
		*(uint32 *) PageGetSpecialPointer(page) == SEQUENCE_PAGE_MAGIC;
}

/* Processes that may write WAL when they evict a map page. */
static bool
may_log_here(void)
{
	return (MyBackendType == B_BACKEND || MyBackendType == B_AUTOVAC_WORKER ||
			MyBackendType == B_BG_WORKER) && XLogInsertAllowed();
}

/*
 * Whether VDL covers lsn.  If not yet, flushes the WAL up to lsn (the
 * shipper ships only flushed WAL) and waits for VDL up to
 * aurora.eviction_wait (no_wait: not at all).
 */
static bool
flush_and_wait_vdl_covers(XLogRecPtr lsn, bool no_wait)
{
	XLogRecPtr	vdl = aurora_released_vdl();

	if (vdl >= lsn)
		return true;
	XLogFlush(lsn);
	/* storage far behind (or stalled): do not wait page by page */
	if (no_wait || lsn - vdl > EVICTION_WAIT_MAX_LAG)
		return false;
	pg_atomic_fetch_add_u64(&ss->eviction_waits, 1);
	return aurora_wake_shipper_and_wait_vdl_covers(lsn, aurora_eviction_wait_ms);
}

/*
 * A page PostgreSQL writes (eviction, checkpoint, extension with data):
 * drop it if storage can rebuild it, else keep it locally.  sync_later:
 * the caller will call smgrimmedsync (bulk writes), so a local copy need
 * not be synced now.
 */
static void
write_page(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer,
		   bool sync_later)
{
	BufferTag	tag;
	Page		page = (Page) buffer;
	XLogRecPtr	lsn = PageGetLSN(page);
	uint32		flags = 0;
	bool		recovery = RecoveryInProgress();
	bool		is_map = forknum == FSM_FORKNUM || forknum == VISIBILITYMAP_FORKNUM;
	bool		sync;
	XLogRecPtr	read_at = lsn;	/* for the next read of the page (lwlsn) */

	INIT_BUFFERTAG(tag, reln->smgr_rnode.node, forknum, blocknum);

	/* zeros, or an empty page never logged: storage's "no block" reads back the same */
	if (PageIsNew(page) ||
		(lsn < 2 && PageIsEmpty(page) && PageGetSpecialSize(page) == 0))
	{
		aurora_local_pages_forget(&tag);
		aurora_lwlsn_set(&tag, InvalidXLogRecPtr);
		pg_atomic_fetch_add_u64(&ss->evicted_to_storage, 1);
		return;
	}
	if (is_map && (recovery || !may_log_here()))
	{
		/*
		 * A map page's bits change without WAL and without its LSN: storage
		 * holds its content once it holds every record up to the current
		 * end of WAL (replay position in recovery), the page's covering
		 * LSN.  Wait for that briefly, else keep the page (durably) until
		 * VDL passes the covering LSN.
		 */
		lsn = recovery ? GetXLogReplayRecPtr(NULL) : GetXLogInsertRecPtr();
		if (recovery || !flush_and_wait_vdl_covers(lsn, false))
			flags |= AURORA_LP_MAP;
		/* no record of the page's PG need end there: read at its read point */
		read_at = InvalidXLogRecPtr;
	}
	else if (lsn < 2 && !is_map)
	{
		flags |= AURORA_LP_UNLOGGED;
		read_at = InvalidXLogRecPtr;
	}
	else
	{
		if (is_map)
		{
			PGAlignedBlock copy;

			/* map pages keep their data in the "hole": not page_std */
			memcpy(copy.data, buffer, BLCKSZ);
			lsn = log_newpage(&tag.rnode, forknum, blocknum, (Page) copy.data, false);
			pg_atomic_fetch_add_u64(&ss->map_images, 1);
		}
		if (forknum == MAIN_FORKNUM && !recovery && aurora_page_has_running_xacts(buffer))
			flags |= AURORA_LP_XACT;
		if (forknum == MAIN_FORKNUM && is_sequence_page(page))
			flags |= AURORA_LP_SEQUENCE;
		if (recovery || !flush_and_wait_vdl_covers(lsn, sync_later))
			flags |= AURORA_LP_AWAIT;
		read_at = lsn;
	}
	if (flags == 0)
	{
		aurora_lwlsn_set(&tag, read_at);
		aurora_local_pages_forget(&tag);
		/* the newest version: what a read would fetch next */
		aurora_local_pages_cache_put(&tag, buffer, lsn);
		pg_atomic_fetch_add_u64(&ss->evicted_to_storage, 1);
		return;
	}

	/*
	 * Only AWAIT and MAP pages need to survive a crash (see local_pages.c),
	 * also those written during recovery: they replace copies recovery
	 * started from.  The checkpointer's copies are synced at writeback
	 * (aur_writeback), before the checkpoint can complete, unless
	 * writebacks are off.
	 */
	sync = (flags & (AURORA_LP_AWAIT | AURORA_LP_MAP)) != 0 && !sync_later &&
		!(MyBackendType == B_CHECKPOINTER && checkpoint_flush_after > 0);
	while (!aurora_local_pages_write(&tag, buffer, lsn, flags, sync))
	{
		/* full: let go of what storage holds by now, or wait for storage */
		aurora_local_pages_reap(aurora_released_vdl());
		if (aurora_local_pages_write(&tag, buffer, lsn, flags, sync))
			break;
		/* a sequence dropped to storage only jumps ahead */
		flags &= ~AURORA_LP_SEQUENCE;
		if ((flags & ~AURORA_LP_AWAIT) == 0 && !recovery &&
			(flags == 0 || aurora_wake_shipper_and_wait_vdl_covers(lsn, FULL_STORE_WAIT_MS)))
		{
			flags = 0;
			break;
		}
		ereport(ERROR,
				(errcode(ERRCODE_DISK_FULL),
				 errmsg("aurora local page store is full (%d pages)", aurora_local_store_blocks),
				 errdetail("Block %u of relation %u/%u/%u fork %d cannot be rebuilt by storage yet.",
						   blocknum, tag.rnode.spcNode, tag.rnode.dbNode, tag.rnode.relNode,
						   (int) forknum),
				 errhint("Raise aurora.local_store_size, or check that storage is reachable.")));
	}
	aurora_lwlsn_set(&tag, read_at);
	if (flags == 0)
	{
		aurora_local_pages_forget(&tag);
		aurora_local_pages_cache_put(&tag, buffer, lsn);
		pg_atomic_fetch_add_u64(&ss->evicted_to_storage, 1);
	}
	else
		pg_atomic_fetch_add_u64(&ss->evicted_locally, 1);
}

static void
aur_write(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer,
		  bool skipFsync)
{
	pg_atomic_fetch_add_u64(&ss->evictions, 1);
	write_page(reln, forknum, blocknum, buffer, skipFsync);
}

static void
aur_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, char *buffer,
		   bool skipFsync)
{
	bool		exists;
	BlockNumber nblocks;

	/* the known size first: the cache may have let go of it */
	relsize_lookup(reln->smgr_rnode.node, forknum, &exists, &nblocks);
	aurora_relsize_cache_set(reln->smgr_rnode.node, forknum, blocknum + 1, true);
	write_page(reln, forknum, blocknum, buffer, skipFsync);
}

static void
aur_writeback(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum, BlockNumber nblocks)
{
	/* the checkpointer's local copies become durable here (write_page) */
	aurora_local_pages_sync();
}

static void
aur_truncate(SMgrRelation reln, ForkNumber forknum, BlockNumber old_blocks, BlockNumber nblocks)
{
	aurora_relsize_cache_set(reln->smgr_rnode.node, forknum, nblocks, false);
	/* a block past the end, extended again, must not be read at its old LSN */
	aurora_lwlsn_forget_from(reln->smgr_rnode.node, forknum, nblocks);
	aurora_local_pages_forget_rel(reln->smgr_rnode.node, forknum, nblocks);

	/*
	 * Blocks past the end may come back as zeros (extension) and be evicted
	 * without WAL: a read must then find storage past the truncation, whose
	 * record the caller has flushed.
	 */
	if (!RecoveryInProgress() &&
		!aurora_wake_shipper_and_wait_vdl_covers(GetFlushRecPtr(NULL), TRUNCATE_WAIT_MS))
		ereport(WARNING,
				(errmsg("aurora: storage did not confirm the truncation of relation %u/%u/%u within %d ms",
						reln->smgr_rnode.node.spcNode, reln->smgr_rnode.node.dbNode,
						reln->smgr_rnode.node.relNode, TRUNCATE_WAIT_MS)));
}

static void
aur_immedsync(SMgrRelation reln, ForkNumber forknum)
{
	/* pages written with skipFsync and kept locally become durable */
	aurora_local_pages_sync();
}

static const f_smgr aurora_smgr = {
	.smgr_init = NULL,
	.smgr_shutdown = NULL,
	.smgr_open = aur_open,
	.smgr_close = aur_close,
	.smgr_create = aur_create,
	.smgr_exists = aur_exists,
	.smgr_unlink = aur_unlink,
	.smgr_extend = aur_extend,
	.smgr_prefetch = aur_prefetch,
	.smgr_read = aur_read,
	.smgr_write = aur_write,
	.smgr_writeback = aur_writeback,
	.smgr_nblocks = aur_nblocks,
	.smgr_truncate = aur_truncate,
	.smgr_immedsync = aur_immedsync,
};

/* smgr_hook: permanent relations come from storage. */
static const f_smgr *
choose_smgr(BackendId backend, RelFileNode rnode)
{
	char	   *init_path;
	struct stat st;
	bool		unlogged;

	if (backend != InvalidBackendId || IsBootstrapProcessingMode() || ss == NULL)
		return smgr_standard(backend, rnode);
	init_path = relpathperm(rnode, INIT_FORKNUM);
	unlogged = stat(init_path, &st) == 0;
	pfree(init_path);
	return unlogged ? smgr_standard(backend, rnode) : &aurora_smgr;
}

/* The shipper, about once a second: local pages that storage now holds. */
void
aurora_smgr_janitor(void)
{
	if (aurora_storage_manager && ss != NULL)
		aurora_local_pages_reap(aurora_released_vdl());
}

void
aurora_smgr_define_gucs(void)
{
	DefineCustomBoolVariable("aurora.storage_manager",
							 "Keep permanent relations in the storage service, not in the data directory.",
							 "Pages come from storage nodes at their last-written LSN; evicting a page "
							 "writes nothing.  Needs aurora.shipping and a volume seeded from this "
							 "data directory (aurora-ctl seed).",
							 &aurora_storage_manager,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	aurora_local_pages_define_gucs();
	aurora_relsize_cache_define_gucs();
	aurora_lwlsn_define_gucs();
	DefineCustomIntVariable("aurora.eviction_wait",
							"How long evicting a page waits for VDL to cover it before keeping it locally.",
							NULL,
							&aurora_eviction_wait_ms,
							100, 0, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * With aurora.storage_manager on: install the storage manager, its shared
 * memory and the utility hook (from _PG_init, after the settings are
 * final).
 */
void
aurora_smgr_init(void)
{
	if (!aurora_storage_manager)
		return;
	/* pages are dropped once VDL covers them: that needs the shipper */
	if (!aurora_shipping)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aurora.storage_manager needs aurora.shipping"),
				 errdetail("Storage can only serve pages whose WAL the compute ships to it."),
				 errhint("Turn aurora.shipping on, or aurora.storage_manager off.")));
	/* the heap page's LSN must cover XLOG_HEAP2_VISIBLE (core patch 0005) */
	heap_visible_sets_page_lsn = true;
	smgr_hook = choose_smgr;
	aurora_page_reader_count_reads(aurora_smgr_count_read);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = smgr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = smgr_shmem_startup;
	aurora_relsize_cache_init();
	aurora_lwlsn_init();
	aurora_copy_guard_init();
}

/*
 * What the storage manager did since the server started, for
 * aurora.storage_manager_stats(); false (and all zero) when it is off.
 */
bool
aurora_smgr_stats(AuroraSmgrStats *st)
{
	memset(st, 0, sizeof(*st));
	if (ss == NULL)
		return false;
	st->reads = pg_atomic_read_u64(&ss->reads);
	st->read_us = pg_atomic_read_u64(&ss->read_us);
	st->read_retries = pg_atomic_read_u64(&ss->read_retries);
	st->size_requests = pg_atomic_read_u64(&ss->size_requests);
	st->evictions = pg_atomic_read_u64(&ss->evictions);
	st->evicted_to_storage = pg_atomic_read_u64(&ss->evicted_to_storage);
	st->evicted_locally = pg_atomic_read_u64(&ss->evicted_locally);
	st->eviction_waits = pg_atomic_read_u64(&ss->eviction_waits);
	st->map_images = pg_atomic_read_u64(&ss->map_images);
	st->recovery_reads = pg_atomic_read_u64(&ss->recovery_reads);
	aurora_local_pages_stats(&st->local);
	return true;
}

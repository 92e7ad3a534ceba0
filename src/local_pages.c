/*
 * local_pages.c
 *	  The compute's local page store: pages that storage cannot rebuild (yet)
 *	  and that the storage manager (smgr.c) must therefore keep when
 *	  PostgreSQL evicts them (docs/architecture.md "Pitfalls of pages from
 *	  the log").
 *
 *	  Why a page is here (flags, more than one may hold):
 *	    UNLOGGED  never WAL-logged (page LSN below 2): GIN, GiST and SP-GiST
 *	              builds log their pages only at the end, hint bits set on
 *	              pages that initdb wrote without WAL;
 *	    AWAIT     its LSN is not yet covered by VDL (the wait timed out,
 *	              crash recovery, storage unreachable): storage will be able
 *	              to rebuild it once the shipper has made that WAL durable;
 *	    XACT      a heap page with tuples of transactions still running:
 *	              redo would rebuild it with command ids reset, and those
 *	              transactions would see their own rows wrongly;
 *	    MAP       a free-space or visibility map page changed without WAL
 *	              that could not be logged by the process evicting it (the
 *	              checkpointer, recovery); its LSN here is a covering one,
 *	              the end of WAL when it was evicted: once VDL passes it,
 *	              storage has every bit change, and until then the copy is
 *	              newer than storage's whatever their page LSNs say;
 *	    SEQUENCE  a sequence's page: the one storage rebuilds holds the
 *	              value nextval logged, up to 32 ahead of the last one it
 *	              returned (as after a crash); not durable either.
 *	    VERIFY    read back from the file at server start: a later version
 *	              may have reached storage before a crash, so the first read
 *	              compares LSNs with storage and keeps the newer.
 *	  The shipper reaps AWAIT and XACT pages once VDL covers them and their
 *	  transactions have ended (aurora_local_pages_reap); a page written back
 *	  to storage's care by a later eviction is forgotten at once.
 *
 *	  File: $PGDATA/aurora_local_pages, aurora.local_store_size slots of a
 *	  40-byte header (magic, flags, tag, LSN, CRC-32C of header and page)
 *	  and the page.  AWAIT pages are written with fdatasync: a checkpoint
 *	  may complete after their eviction, and crash recovery then needs them.
 *	  The others are not (a lost UNLOGGED page belongs to an index build
 *	  that a crash aborts, or only carries hint bits; a lost XACT page is
 *	  rebuilt by storage).  Syncs are grouped: processes that wrote while
 *	  another synced share its fdatasync; the checkpointer syncs at
 *	  writeback time (aurora_local_pages_sync).  Forgetting a relation's pages
 *	  (truncate, drop) rewrites their headers durably so that a crash
 *	  cannot bring them back.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/transam.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/bufpage.h"
#include "storage/buf_internals.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#include "local_pages.h"

int			aurora_local_store_blocks = 16384;
int			aurora_local_page_cache_blocks = 0;

/* Define the local store's settings (from the storage manager's). */
void
aurora_local_pages_define_gucs(void)
{
	DefineCustomIntVariable("aurora.local_store_size",
							"Pages the compute can keep locally because storage cannot rebuild them yet.",
							"Never-logged pages of index builds, pages whose WAL is not durable yet, "
							"heap pages of running transactions.",
							&aurora_local_store_blocks,
							16384, 64, INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_BLOCKS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("aurora.local_page_cache",
							"Size of the local page cache: clean copies of pages read from or evicted to storage.",
							"0 disables it.  Saves storage reads for pages that fall out of shared_buffers; "
							"kept in the same file as the local page store, and emptied at every start.",
							&aurora_local_page_cache_blocks,
							0, 0, INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_BLOCKS,
							NULL, NULL, NULL);
}

#define LOCAL_PAGES_FILE	"aurora_local_pages"
#define SLOT_MAGIC			0x414c5047	/* "ALPG" */
#define SLOT_HEADER_SIZE	40
#define SLOT_SIZE			(SLOT_HEADER_SIZE + BLCKSZ)

typedef struct SlotHeader
{
	uint32		magic;			/* SLOT_MAGIC, 0 = free */
	uint32		flags;
	uint32		spc;
	uint32		db;
	uint32		rel;
	uint32		fork;
	uint32		blkno;
	uint32		lsn_hi;
	uint32		lsn_lo;
	uint32		crc;			/* CRC-32C of the header before it and the page */
} SlotHeader;

StaticAssertDecl(sizeof(SlotHeader) == SLOT_HEADER_SIZE, "slot header layout");

typedef struct LocalSlot
{
	BufferTag	tag;
	XLogRecPtr	lsn;
	uint32		flags;			/* 0 = free */
	int			next_free;
} LocalSlot;

typedef struct LocalIndexEntry
{
	BufferTag	tag;			/* hash key */
	int			slot;
} LocalIndexEntry;

typedef struct LocalPagesShared
{
	LWLock	   *lock;
	LWLock	   *sync_lock;		/* one fdatasync at a time; others ride on it */
	int			nslots;			/* pinned capacity + cache capacity */
	int			used;			/* in the index (pinned or cached) */
	int			pinned;			/* slots of pages storage cannot rebuild yet */
	int			cached;			/* slots of the page cache */
	int			clock_hand;		/* next slot the cache looks at for a victim */
	int			free_head;
	uint64		write_seq;		/* slot writes so far (under lock) */
	uint64		synced_seq;		/* writes up to this one are durable (under sync_lock) */
	uint64		writes;
	uint64		reads;
	uint64		cache_reads;
	uint64		reaped;
	LocalSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} LocalPagesShared;

static LocalPagesShared *lp = NULL;
static HTAB *lp_index = NULL;
static int	lp_fd = -1;

/* A slot written, out of the index, whose header is not cleared on disk yet. */
#define SLOT_LIMBO	0x80000000u

static int
total_slots(void)
{
	return aurora_local_store_blocks + aurora_local_page_cache_blocks;
}

static Size
local_pages_shmem_size(void)
{
	return add_size(offsetof(LocalPagesShared, slots),
					mul_size(total_slots(), sizeof(LocalSlot)));
}

void
aurora_local_pages_shmem_request(void)
{
	RequestAddinShmemSpace(local_pages_shmem_size());
	RequestAddinShmemSpace(hash_estimate_size(total_slots(), sizeof(LocalIndexEntry)));
	RequestNamedLWLockTranche("aurora_local_pages", 2);
}

static int
open_file(void)
{
	if (lp_fd < 0)
	{
		lp_fd = BasicOpenFile(LOCAL_PAGES_FILE, O_RDWR | O_CREAT | PG_BINARY);
		if (lp_fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open aurora local page store \"%s\": %m", LOCAL_PAGES_FILE)));
	}
	return lp_fd;
}

static pg_crc32c
slot_crc(const SlotHeader *h, const char *page)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, h, offsetof(SlotHeader, crc));
	COMP_CRC32C(crc, page, BLCKSZ);
	FIN_CRC32C(crc);
	return crc;
}

static void
header_to_tag(const SlotHeader *h, BufferTag *tag)
{
	RelFileNode rnode;

	rnode.spcNode = h->spc;
	rnode.dbNode = h->db;
	rnode.relNode = h->rel;
	INIT_BUFFERTAG(*tag, rnode, (ForkNumber) h->fork, h->blkno);
}

/* Postmaster: build the index from the file a previous run left. */
static void
load_store_file(void)
{
	int			fd = BasicOpenFile(LOCAL_PAGES_FILE, O_RDONLY | PG_BINARY);
	char	   *buf;
	int			loaded = 0;

	if (fd < 0)
		return;
	buf = palloc(SLOT_SIZE);
	for (int i = 0; i < lp->nslots; i++)
	{
		SlotHeader *h = (SlotHeader *) buf;
		LocalIndexEntry *e;
		bool		found;
		BufferTag	tag;
		XLogRecPtr	lsn;

		if (pg_pread(fd, buf, SLOT_SIZE, (off_t) i * SLOT_SIZE) != SLOT_SIZE)
			break;
		/*
		 * A sequence's copy is older than the values handed out from
		 * shared buffers before a crash; storage's (as logged) is not.
		 */
		if (h->magic != SLOT_MAGIC || (h->flags & (AURORA_LP_SEQUENCE | AURORA_LP_CACHED)) != 0)
			continue;
		if (h->crc != slot_crc(h, buf + SLOT_HEADER_SIZE))
		{
			ereport(WARNING,
					(errmsg("aurora local page store: slot %d is damaged (torn write?) and is ignored", i)));
			continue;
		}
		header_to_tag(h, &tag);
		lsn = ((XLogRecPtr) h->lsn_hi << 32) | h->lsn_lo;
		e = hash_search(lp_index, &tag, HASH_ENTER, &found);
		if (found)
		{
			/* a crash between writing a new copy and clearing the old one */
			if (lp->slots[e->slot].lsn >= lsn)
				continue;
			lp->slots[e->slot].flags = 0;
			loaded--;
		}
		e->slot = i;
		lp->slots[i].tag = tag;
		lp->slots[i].lsn = lsn;
		lp->slots[i].flags = h->flags | AURORA_LP_VERIFY;
		loaded++;
	}
	close(fd);
	pfree(buf);
	if (loaded > 0)
		ereport(LOG,
				(errmsg("aurora local page store: %d pages kept from the previous run", loaded)));
	lp->used = loaded;
	lp->pinned = loaded;
}

void
aurora_local_pages_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	lp = ShmemInitStruct("aurora local pages", local_pages_shmem_size(), &found);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(BufferTag);
	info.entrysize = sizeof(LocalIndexEntry);
	lp_index = ShmemInitHash("aurora local page index", total_slots(), total_slots(),
							 &info, HASH_ELEM | HASH_BLOBS);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("aurora_local_pages");

		memset(lp, 0, local_pages_shmem_size());
		lp->lock = &locks[0].lock;
		lp->sync_lock = &locks[1].lock;
		lp->nslots = total_slots();
		/* (only the storage manager, when on, sets up this store) */
		load_store_file();
		lp->free_head = -1;
		for (int i = lp->nslots - 1; i >= 0; i--)
			if (lp->slots[i].flags == 0)
			{
				lp->slots[i].next_free = lp->free_head;
				lp->free_head = i;
			}
	}
}

static void
write_slot(int slot, const BufferTag *tag, XLogRecPtr lsn, uint32 flags, const char *page)
{
	char	   *buf = palloc(SLOT_SIZE);
	SlotHeader *h = (SlotHeader *) buf;

	memset(h, 0, sizeof(*h));
	h->magic = SLOT_MAGIC;
	h->flags = flags & ~AURORA_LP_VERIFY;
	h->spc = tag->rnode.spcNode;
	h->db = tag->rnode.dbNode;
	h->rel = tag->rnode.relNode;
	h->fork = (uint32) tag->forkNum;
	h->blkno = tag->blockNum;
	h->lsn_hi = (uint32) (lsn >> 32);
	h->lsn_lo = (uint32) lsn;
	memcpy(buf + SLOT_HEADER_SIZE, page, BLCKSZ);
	h->crc = slot_crc(h, page);
	errno = 0;
	if (pg_pwrite(open_file(), buf, SLOT_SIZE, (off_t) slot * SLOT_SIZE) != SLOT_SIZE)
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write aurora local page store \"%s\": %m", LOCAL_PAGES_FILE)));
	}
	pfree(buf);
}

static void
clear_slot_on_disk(int slot)
{
	uint32		zero = 0;

	if (pg_pwrite(open_file(), &zero, sizeof(zero), (off_t) slot * SLOT_SIZE) != sizeof(zero))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write aurora local page store \"%s\": %m", LOCAL_PAGES_FILE)));
}

/*
 * Make every write up to write number seq durable.  Group sync: processes
 * that wrote while another one synced ride on its fdatasync or the next.
 */
static void
sync_through(uint64 seq)
{
	uint64		target;

	LWLockAcquire(lp->sync_lock, LW_EXCLUSIVE);
	if (lp->synced_seq >= seq)
	{
		LWLockRelease(lp->sync_lock);
		return;
	}
	LWLockAcquire(lp->lock, LW_SHARED);
	target = lp->write_seq;
	LWLockRelease(lp->lock);
	if (pg_fdatasync(open_file()) != 0)
	{
		LWLockRelease(lp->sync_lock);
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync aurora local page store \"%s\": %m", LOCAL_PAGES_FILE)));
	}
	lp->synced_seq = target;
	LWLockRelease(lp->sync_lock);
}

void
aurora_local_pages_sync(void)
{
	uint64		seq;

	if (lp == NULL)
		return;
	LWLockAcquire(lp->lock, LW_SHARED);
	seq = lp->write_seq;
	LWLockRelease(lp->lock);
	sync_through(seq);
}

/* Caller holds the lock exclusively. */
static void
release_slot(int slot)
{
	hash_search(lp_index, &lp->slots[slot].tag, HASH_REMOVE, NULL);
	if (lp->slots[slot].flags == AURORA_LP_CACHED)
		lp->cached--;
	else
		lp->pinned--;
	lp->slots[slot].flags = 0;
	lp->slots[slot].next_free = lp->free_head;
	lp->free_head = slot;
	lp->used--;
}

/* Caller holds the lock exclusively: a free slot, or -1. */
static int
take_free_slot(void)
{
	int			slot = lp->free_head;

	if (slot >= 0)
		lp->free_head = lp->slots[slot].next_free;
	return slot;
}

/* Caller holds the lock exclusively: the slot of a cached page, freed, or -1. */
static int
evict_cached(void)
{
	for (int n = 0; n < lp->nslots; n++)
	{
		int			slot = lp->clock_hand;

		lp->clock_hand = (lp->clock_hand + 1) % lp->nslots;
		if (lp->slots[slot].flags == AURORA_LP_CACHED)
		{
			release_slot(slot);
			return take_free_slot();
		}
	}
	return -1;
}

bool
aurora_local_pages_write(const BufferTag *tag, const char *page, XLogRecPtr lsn, uint32 flags,
						 bool sync)
{
	LocalIndexEntry *e;
	bool		found;
	int			slot;
	int			old = -1;
	uint64		seq;

	Assert(flags != 0 && flags != AURORA_LP_CACHED);
	LWLockAcquire(lp->lock, LW_EXCLUSIVE);
	e = hash_search(lp_index, tag, HASH_FIND, NULL);
	if (e != NULL && lp->slots[e->slot].flags == AURORA_LP_CACHED)
	{
		release_slot(e->slot);
		e = NULL;
	}
	if (e == NULL && lp->pinned >= aurora_local_store_blocks)
	{
		LWLockRelease(lp->lock);
		return false;
	}
	if ((slot = take_free_slot()) < 0 && (slot = evict_cached()) < 0)
	{
		LWLockRelease(lp->lock);
		return false;
	}

	/*
	 * Copy on write: the new copy goes to a fresh slot and the old one is
	 * cleared only once the new one is durable, so a torn write (its CRC
	 * fails at the next start) never costs the copy it replaces.
	 */
	e = hash_search(lp_index, tag, HASH_ENTER, &found);
	if (found)
	{
		old = e->slot;
		lp->slots[old].flags = SLOT_LIMBO;
	}
	else
	{
		lp->used++;
		lp->pinned++;
	}
	e->slot = slot;
	lp->slots[slot].tag = *tag;
	lp->slots[slot].lsn = lsn;
	lp->slots[slot].flags = flags;
	lp->writes++;
	/* under the lock: a reader of this slot must not see half a page */
	write_slot(slot, tag, lsn, flags, page);
	seq = ++lp->write_seq;
	LWLockRelease(lp->lock);
	if (sync)
		sync_through(seq);
	if (old >= 0)
	{
		LWLockAcquire(lp->lock, LW_EXCLUSIVE);
		clear_slot_on_disk(old);
		lp->slots[old].flags = 0;
		lp->slots[old].next_free = lp->free_head;
		lp->free_head = old;
		LWLockRelease(lp->lock);
	}
	return true;
}

/*
 * The page cache (aurora.local_page_cache): keep a clean copy, one storage
 * can rebuild, to save a later read.  A pinned copy of the page is left
 * alone (the caller forgets it first when it is stale).  Clock eviction.
 */
void
aurora_local_pages_cache_put(const BufferTag *tag, const char *page, XLogRecPtr lsn)
{
	LocalIndexEntry *e;
	bool		found;
	int			slot;

	if (lp == NULL || aurora_local_page_cache_blocks == 0)
		return;
	LWLockAcquire(lp->lock, LW_EXCLUSIVE);
	e = hash_search(lp_index, tag, HASH_FIND, NULL);
	if (e != NULL)
	{
		if (lp->slots[e->slot].flags != AURORA_LP_CACHED)
		{
			LWLockRelease(lp->lock);
			return;
		}
		slot = e->slot;
	}
	else
	{
		slot = lp->cached < aurora_local_page_cache_blocks ? take_free_slot() : -1;
		if (slot < 0 && (slot = evict_cached()) < 0)
		{
			LWLockRelease(lp->lock);
			return;
		}
		e = hash_search(lp_index, tag, HASH_ENTER, &found);
		e->slot = slot;
		lp->used++;
		lp->cached++;
	}
	lp->slots[slot].tag = *tag;
	lp->slots[slot].lsn = lsn;
	lp->slots[slot].flags = AURORA_LP_CACHED;
	write_slot(slot, tag, lsn, AURORA_LP_CACHED, page);
	LWLockRelease(lp->lock);
}

bool
aurora_local_pages_read(const BufferTag *tag, char *page, XLogRecPtr *lsn, uint32 *flags)
{
	LocalIndexEntry *e;
	char	   *buf;
	SlotHeader *h;
	bool		ok;

	if (lp == NULL || lp->used == 0)
		return false;
	LWLockAcquire(lp->lock, LW_SHARED);
	e = hash_search(lp_index, tag, HASH_FIND, NULL);
	if (e == NULL)
	{
		LWLockRelease(lp->lock);
		return false;
	}
	buf = palloc(SLOT_SIZE);
	h = (SlotHeader *) buf;
	ok = pg_pread(open_file(), buf, SLOT_SIZE, (off_t) e->slot * SLOT_SIZE) == SLOT_SIZE &&
		h->magic == SLOT_MAGIC && h->crc == slot_crc(h, buf + SLOT_HEADER_SIZE);
	*lsn = lp->slots[e->slot].lsn;
	*flags = lp->slots[e->slot].flags;
	if (*flags == AURORA_LP_CACHED)
		lp->cache_reads++;
	else
		lp->reads++;
	LWLockRelease(lp->lock);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("aurora local page store: the copy of block %u of relation %u/%u/%u fork %d is damaged",
						tag->blockNum, tag->rnode.spcNode, tag->rnode.dbNode, tag->rnode.relNode,
						(int) tag->forkNum)));
	memcpy(page, buf + SLOT_HEADER_SIZE, BLCKSZ);
	pfree(buf);
	return true;
}

/* The copy was compared with storage: it no longer needs that. */
void
aurora_local_pages_verified(const BufferTag *tag)
{
	LocalIndexEntry *e;

	LWLockAcquire(lp->lock, LW_EXCLUSIVE);
	e = hash_search(lp_index, tag, HASH_FIND, NULL);
	if (e != NULL)
		lp->slots[e->slot].flags &= ~AURORA_LP_VERIFY;
	LWLockRelease(lp->lock);
}

void
aurora_local_pages_forget(const BufferTag *tag)
{
	LocalIndexEntry *e;

	if (lp == NULL || lp->used == 0)
		return;
	LWLockAcquire(lp->lock, LW_EXCLUSIVE);
	e = hash_search(lp_index, tag, HASH_FIND, NULL);
	if (e != NULL)
	{
		int			slot = e->slot;

		release_slot(slot);
		/* a crash may bring it back: then it is older than storage's (VERIFY) */
		clear_slot_on_disk(slot);
	}
	LWLockRelease(lp->lock);
}

/*
 * Forget every page of a relation fork (all forks: InvalidForkNumber) from
 * block from on, durably: after a truncation or a drop, a copy brought back
 * by a crash would not be older than storage's, it would be wrong.
 */
void
aurora_local_pages_forget_rel(RelFileNode rnode, ForkNumber fork, BlockNumber from)
{
	bool		cleared = false;

	if (lp == NULL || lp->used == 0)
		return;
	LWLockAcquire(lp->lock, LW_EXCLUSIVE);
	for (int i = 0; i < lp->nslots; i++)
	{
		LocalSlot  *s = &lp->slots[i];

		if (s->flags != 0 && s->flags != SLOT_LIMBO && RelFileNodeEquals(s->tag.rnode, rnode) &&
			(fork == InvalidForkNumber || s->tag.forkNum == fork) && s->tag.blockNum >= from)
		{
			release_slot(i);
			clear_slot_on_disk(i);
			cleared = true;
		}
	}
	LWLockRelease(lp->lock);
	if (cleared)
		aurora_local_pages_sync();
}

/*
 * Whether a heap page holds tuples of transactions that are still running
 * with a command id other than the first (redo resets them to the first,
 * and the transaction would see those rows wrongly).  Pages
 * with a special space are not heap pages.
 */
bool
aurora_page_has_running_xacts(const char *page)
{
	Page		p = (Page) page;
	OffsetNumber maxoff;
	TransactionId last = InvalidTransactionId;

	if (PageIsNew(p) || PageGetSpecialSize(p) != 0)
		return false;
	maxoff = PageGetMaxOffsetNumber(p);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId		lpp = PageGetItemId(p, off);
		HeapTupleHeader tup;
		TransactionId xmin,
					xmax;

		if (!ItemIdIsNormal(lpp))
			continue;
		tup = (HeapTupleHeader) PageGetItem(p, lpp);
		/* redo sets command ids to FirstCommandId: only other ids are lost */
		if (HeapTupleHeaderGetRawCommandId(tup) == FirstCommandId &&
			!(tup->t_infomask & HEAP_COMBOCID))
			continue;
		xmin = HeapTupleHeaderGetRawXmin(tup);
		if (!(tup->t_infomask & (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID)) &&
			TransactionIdIsNormal(xmin) && xmin != last)
		{
			if (TransactionIdIsInProgress(xmin))
				return true;
			last = xmin;
		}
		if (tup->t_infomask & HEAP_XMAX_INVALID)
			continue;
		xmax = HeapTupleHeaderGetRawXmax(tup);
		if (tup->t_infomask & HEAP_XMAX_IS_MULTI)
		{
			if (MultiXactIdIsValid(xmax) && MultiXactIdIsRunning(xmax, false))
				return true;
		}
		else if (!(tup->t_infomask & HEAP_XMAX_COMMITTED) && TransactionIdIsNormal(xmax) &&
				 xmax != last)
		{
			if (TransactionIdIsInProgress(xmax))
				return true;
			last = xmax;
		}
	}
	return false;
}

/*
 * Let go of the pages that storage can now rebuild: AWAIT and MAP pages
 * whose (covering) LSN VDL covers, XACT pages whose transactions ended as well (a copy kept
 * from before a restart too: if storage got a newer version meanwhile,
 * dropping the copy is right all the more).  The shipper
 * calls this about once a second.
 */
void
aurora_local_pages_reap(XLogRecPtr vdl)
{
	char	   *page;

	if (lp == NULL || lp->used == 0)
		return;
	page = palloc(BLCKSZ);
	for (int i = 0; i < lp->nslots; i++)
	{
		LocalSlot	s;
		XLogRecPtr	lsn;
		uint32		flags;

		LWLockAcquire(lp->lock, LW_SHARED);
		s = lp->slots[i];
		LWLockRelease(lp->lock);
		if (s.flags == 0 || s.lsn > vdl ||
			(s.flags & (AURORA_LP_UNLOGGED | AURORA_LP_SEQUENCE |
						AURORA_LP_CACHED | SLOT_LIMBO)) != 0)
			continue;
		/* (after a restart no transaction of before runs any more) */
		if ((s.flags & (AURORA_LP_XACT | AURORA_LP_VERIFY)) == AURORA_LP_XACT)
		{
			if (!aurora_local_pages_read(&s.tag, page, &lsn, &flags) ||
				aurora_page_has_running_xacts(page))
				continue;
		}
		LWLockAcquire(lp->lock, LW_EXCLUSIVE);
		/* unchanged since we looked: a newer eviction may have replaced it */
		if (lp->slots[i].flags == s.flags && lp->slots[i].lsn == s.lsn &&
			BUFFERTAGS_EQUAL(lp->slots[i].tag, s.tag))
		{
			release_slot(i);
			clear_slot_on_disk(i);
			lp->reaped++;
		}
		LWLockRelease(lp->lock);
	}
	pfree(page);
}

void
aurora_local_pages_stats(AuroraLocalPagesStats *st)
{
	LWLockAcquire(lp->lock, LW_SHARED);
	st->pinned = lp->pinned;
	st->pinned_capacity = aurora_local_store_blocks;
	st->cached = lp->cached;
	st->cache_capacity = aurora_local_page_cache_blocks;
	st->reads = (int64) lp->reads;
	st->cache_reads = (int64) lp->cache_reads;
	st->reaped = (int64) lp->reaped;
	LWLockRelease(lp->lock);
}

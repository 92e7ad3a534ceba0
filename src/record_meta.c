/*-------------------------------------------------------------------------
 *
 * record_meta.c
 *	  Builds the envelope the shipper puts in front of every WAL record
 *	  (PROTOCOL.md 11): the pages the record changes and what it does to
 *	  relation sizes.
 *
 * Storage indexes records by page and tracks relation sizes from this
 * alone: it has no PostgreSQL headers and must not decode WAL, while the
 * shipper has just decoded the record with PostgreSQL's own reader.  Besides
 * the block references, two kinds of change are not visible in them and are
 * spelled out here:
 *
 * - visibility-map pages that heap redo changes without the record
 *   referencing them (the *_ALL_VISIBLE_CLEARED / ALL_FROZEN_CLEARED flags,
 *   and a truncation that trims the VM page holding the new end), listed as
 *   IMPLICIT blocks so that the VM page's protection group gets the record
 *   and its page store applies it;
 * - relation-level changes (fork created, truncated, relations dropped at
 *   commit or abort, database dropped), listed as events; the shipper sends
 *   such records to every protection group, since any of them may hold
 *   chunks of the relation.
 *
 * Not covered: free-space-map truncation sizes (the FSM is not reliably
 * WAL-logged by PostgreSQL, and its page math is private to freespace.c)
 * and CREATE DATABASE ... STRATEGY FILE_COPY, which copies files without
 * logging their pages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam_xlog.h"
#include "access/rmgr.h"
#include "access/xact.h"
#include "access/xlogrecord.h"
#include "catalog/storage_xlog.h"
#include "commands/dbcommands_xlog.h"
#include "common/relpath.h"
#include "storage/bufpage.h"
#include "utils/memutils.h"

#include "record_meta.h"

/*
 * visibilitymap.c's layout, which it keeps private: each heap block has two
 * bits in the map, on pages after a MAXALIGN'd page header.
 */
#define VM_BYTES_PER_PAGE	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData))
#define VM_HEAPBLOCKS_PER_PAGE	(VM_BYTES_PER_PAGE * 4)

/* storage routes a VM page with the heap chunk it covers (volume.c) */
StaticAssertDecl(VM_HEAPBLOCKS_PER_PAGE == AURORA_HEAP_BLOCKS_PER_VM_PAGE,
				 "storage's visibility-map layout differs from this server's");
StaticAssertDecl(VISIBILITYMAP_FORKNUM == AURORA_VM_FORK && MAIN_FORKNUM == AURORA_MAIN_FORK,
				 "storage's fork numbers differ from this server's");

static void
add_block(RecordMeta *meta, const RelFileNode *rnode, ForkNumber fork,
		  BlockNumber blkno, uint8 flags)
{
	aurora_walmeta_block *b;

	for (int i = 0; i < meta->nblocks; i++)
	{
		b = &meta->blocks[i];
		if (b->ref.spc_oid == rnode->spcNode && b->ref.db_oid == rnode->dbNode &&
			b->ref.rel_number == rnode->relNode && b->ref.fork == (uint8) fork &&
			b->ref.blkno == blkno)
		{
			/* a referenced block is never implicit; init wins */
			if (!(flags & AURORA_BLOCK_IMPLICIT))
				b->flags &= ~AURORA_BLOCK_IMPLICIT;
			b->flags |= flags & AURORA_BLOCK_WILL_INIT;
			return;
		}
	}
	/* 33 referenced blocks plus at most two implicit VM pages each */
	if (meta->nblocks >= AURORA_WALMETA_MAX_BLOCKS)
		elog(ERROR, "aurora: WAL record changes more than %d pages",
			 AURORA_WALMETA_MAX_BLOCKS);
	b = &meta->blocks[meta->nblocks++];
	b->ref.spc_oid = rnode->spcNode;
	b->ref.db_oid = rnode->dbNode;
	b->ref.rel_number = rnode->relNode;
	b->ref.fork = (uint8) fork;
	b->ref.blkno = blkno;
	b->flags = flags;
}

static void
add_event(RecordMeta *meta, aurora_rel_op op, const RelFileNode *rnode,
		  ForkNumber fork, BlockNumber nblocks)
{
	aurora_walmeta_event *e;

	if (meta->nevents == meta->capevents)
	{
		meta->capevents = meta->capevents ? meta->capevents * 2 : 16;
		meta->events = meta->events ?
			repalloc(meta->events, sizeof(*meta->events) * meta->capevents) :
			MemoryContextAlloc(TopMemoryContext, sizeof(*meta->events) * meta->capevents);
	}
	e = &meta->events[meta->nevents++];
	e->op = (uint8) op;
	e->spc_oid = rnode->spcNode;
	e->db_oid = rnode->dbNode;
	e->rel_number = op == AURORA_REL_DROP_DATABASE ? 0 : rnode->relNode;
	e->fork = (op == AURORA_REL_CREATE || op == AURORA_REL_TRUNCATE) ? (uint8) fork : 0;
	e->nblocks = op == AURORA_REL_TRUNCATE ? nblocks : 0;
}

/* The VM page holding heap block heap_blkno of block reference block_id. */
static void
add_vm_page_of(XLogReaderState *r, RecordMeta *meta, uint8 block_id)
{
	RelFileNode rnode;
	BlockNumber heap_blkno;

	if (!XLogRecGetBlockTagExtended(r, block_id, &rnode, NULL, &heap_blkno, NULL))
		return;
	add_block(meta, &rnode, VISIBILITYMAP_FORKNUM,
			  heap_blkno / VM_HEAPBLOCKS_PER_PAGE, AURORA_BLOCK_IMPLICIT);
}

static void
heap_implicit_pages(XLogReaderState *r, RecordMeta *meta)
{
	uint8		info = XLogRecGetInfo(r) & XLOG_HEAP_OPMASK;
	char	   *data = XLogRecGetData(r);

	switch (info)
	{
		case XLOG_HEAP_INSERT:
			if (((xl_heap_insert *) data)->flags & XLH_INSERT_ALL_VISIBLE_CLEARED)
				add_vm_page_of(r, meta, 0);
			break;
		case XLOG_HEAP_DELETE:
			if (((xl_heap_delete *) data)->flags & XLH_DELETE_ALL_VISIBLE_CLEARED)
				add_vm_page_of(r, meta, 0);
			break;
		case XLOG_HEAP_UPDATE:
		case XLOG_HEAP_HOT_UPDATE:
			{
				uint8		flags = ((xl_heap_update *) data)->flags;

				/* block 0 is the new page; block 1 the old one, if different */
				if (flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED)
					add_vm_page_of(r, meta, 0);
				if (flags & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED)
					add_vm_page_of(r, meta, XLogRecHasBlockRef(r, 1) ? 1 : 0);
			}
			break;
		case XLOG_HEAP_LOCK:
			if (((xl_heap_lock *) data)->flags & XLH_LOCK_ALL_FROZEN_CLEARED)
				add_vm_page_of(r, meta, 0);
			break;
		default:
			break;
	}
}

static void
heap2_implicit_pages(XLogReaderState *r, RecordMeta *meta)
{
	uint8		info = XLogRecGetInfo(r) & XLOG_HEAP_OPMASK;
	char	   *data = XLogRecGetData(r);

	switch (info)
	{
		case XLOG_HEAP2_MULTI_INSERT:
			if (((xl_heap_multi_insert *) data)->flags & XLH_INSERT_ALL_VISIBLE_CLEARED)
				add_vm_page_of(r, meta, 0);
			break;
		case XLOG_HEAP2_LOCK_UPDATED:
			if (((xl_heap_lock_updated *) data)->flags & XLH_LOCK_ALL_FROZEN_CLEARED)
				add_vm_page_of(r, meta, 0);
			break;
		default:
			break;
	}
}

static void
smgr_events(XLogReaderState *r, RecordMeta *meta)
{
	uint8		info = XLogRecGetInfo(r) & ~XLR_INFO_MASK;

	if (info == XLOG_SMGR_CREATE)
	{
		xl_smgr_create *xlrec = (xl_smgr_create *) XLogRecGetData(r);

		add_event(meta, AURORA_REL_CREATE, &xlrec->rnode, xlrec->forkNum, 0);
	}
	else if (info == XLOG_SMGR_TRUNCATE)
	{
		xl_smgr_truncate *xlrec = (xl_smgr_truncate *) XLogRecGetData(r);

		if (xlrec->flags & SMGR_TRUNCATE_HEAP)
			add_event(meta, AURORA_REL_TRUNCATE, &xlrec->rnode, MAIN_FORKNUM, xlrec->blkno);
		if (xlrec->flags & SMGR_TRUNCATE_VM)
		{
			/*
			 * As visibilitymap_prepare_truncate: the VM keeps the page holding
			 * the new end's bits, whose bits beyond the end redo clears.
			 */
			BlockNumber vm_block = xlrec->blkno / VM_HEAPBLOCKS_PER_PAGE;
			bool		partial = xlrec->blkno % VM_HEAPBLOCKS_PER_PAGE != 0;

			if (partial)
				add_block(meta, &xlrec->rnode, VISIBILITYMAP_FORKNUM, vm_block,
						  AURORA_BLOCK_IMPLICIT);
			add_event(meta, AURORA_REL_TRUNCATE, &xlrec->rnode, VISIBILITYMAP_FORKNUM,
					  vm_block + (partial ? 1 : 0));
		}
	}
}

static void
xact_events(XLogReaderState *r, RecordMeta *meta)
{
	uint8		info = XLogRecGetInfo(r) & XLOG_XACT_OPMASK;
	int			nrels = 0;
	RelFileNode *rels = NULL;

	if (info == XLOG_XACT_COMMIT || info == XLOG_XACT_COMMIT_PREPARED)
	{
		xl_xact_parsed_commit parsed;

		ParseCommitRecord(XLogRecGetInfo(r), (xl_xact_commit *) XLogRecGetData(r), &parsed);
		nrels = parsed.nrels;
		rels = parsed.xnodes;
	}
	else if (info == XLOG_XACT_ABORT || info == XLOG_XACT_ABORT_PREPARED)
	{
		xl_xact_parsed_abort parsed;

		ParseAbortRecord(XLogRecGetInfo(r), (xl_xact_abort *) XLogRecGetData(r), &parsed);
		nrels = parsed.nrels;
		rels = parsed.xnodes;
	}
	for (int i = 0; i < nrels; i++)
		add_event(meta, AURORA_REL_DROP, &rels[i], MAIN_FORKNUM, 0);
}

static void
dbase_events(XLogReaderState *r, RecordMeta *meta)
{
	uint8		info = XLogRecGetInfo(r) & ~XLR_INFO_MASK;

	if (info == XLOG_DBASE_DROP)
	{
		xl_dbase_drop_rec *xlrec = (xl_dbase_drop_rec *) XLogRecGetData(r);

		for (int i = 0; i < xlrec->ntablespaces; i++)
		{
			RelFileNode db = {xlrec->tablespace_ids[i], xlrec->db_id, InvalidOid};

			add_event(meta, AURORA_REL_DROP_DATABASE, &db, MAIN_FORKNUM, 0);
		}
	}
}

void
aurora_record_meta(XLogReaderState *r, RecordMeta *meta)
{
	meta->nblocks = 0;
	meta->nevents = 0;

	for (int b = 0; b <= XLogRecMaxBlockId(r); b++)
	{
		RelFileNode rnode;
		ForkNumber	fork;
		BlockNumber blkno;
		uint8		flags = 0;

		if (!XLogRecGetBlockTagExtended(r, b, &rnode, &fork, &blkno, NULL))
			continue;
		if (XLogRecBlockImageApply(r, b) ||
			(XLogRecGetBlock(r, b)->flags & BKPBLOCK_WILL_INIT))
			flags |= AURORA_BLOCK_WILL_INIT;
		add_block(meta, &rnode, fork, blkno, flags);
	}

	switch (XLogRecGetRmid(r))
	{
		case RM_HEAP_ID:
			heap_implicit_pages(r, meta);
			break;
		case RM_HEAP2_ID:
			heap2_implicit_pages(r, meta);
			break;
		case RM_SMGR_ID:
			smgr_events(r, meta);
			break;
		case RM_XACT_ID:
			xact_events(r, meta);
			break;
		case RM_DBASE_ID:
			dbase_events(r, meta);
			break;
		default:
			break;
	}
}

void
aurora_record_meta_append(const RecordMeta *meta, StringInfo out)
{
	size_t		size = aurora_walmeta_size(meta->nblocks, meta->nevents);
	aurora_buf	b;

	enlargeStringInfo(out, (int) size);
	aurora_buf_init_writer(&b, (uint8_t *) out->data + out->len, size);
	aurora_walmeta_put(&b, meta->blocks, meta->nblocks, meta->events, meta->nevents);
	Assert(aurora_buf_ok(&b) && aurora_buf_len(&b) == size);
	out->len += (int) size;
	out->data[out->len] = '\0';
}

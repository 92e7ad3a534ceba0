/*
 * local_pages.h
 *	  The compute's local store of pages that storage cannot rebuild yet,
 *	  and its cache of clean pages (local_pages.c).
 */
#ifndef AURORA_LOCAL_PAGES_H
#define AURORA_LOCAL_PAGES_H

#include "storage/buf_internals.h"
#include "storage/relfilenode.h"

extern int	aurora_local_store_blocks;
extern int	aurora_local_page_cache_blocks;

extern void aurora_local_pages_define_gucs(void);

/* why a page is kept (see local_pages.c) */
#define AURORA_LP_UNLOGGED	0x01
#define AURORA_LP_AWAIT		0x02
#define AURORA_LP_XACT		0x04
#define AURORA_LP_MAP		0x08
#define AURORA_LP_VERIFY	0x10
#define AURORA_LP_SEQUENCE	0x20
#define AURORA_LP_CACHED	0x40	/* alone: a clean copy in the page cache */

extern void aurora_local_pages_shmem_request(void);
extern void aurora_local_pages_shmem_startup(void);
extern bool aurora_local_pages_write(const BufferTag *tag, const char *page, XLogRecPtr lsn,
									 uint32 flags, bool sync);
extern bool aurora_local_pages_read(const BufferTag *tag, char *page, XLogRecPtr *lsn,
									uint32 *flags);
extern void aurora_local_pages_verified(const BufferTag *tag);
extern void aurora_local_pages_forget(const BufferTag *tag);
extern void aurora_local_pages_forget_rel(RelFileNode rnode, ForkNumber fork, BlockNumber from);
extern void aurora_local_pages_sync(void);
extern void aurora_local_pages_reap(XLogRecPtr vdl);
extern bool aurora_page_has_running_xacts(const char *page);
extern void aurora_local_pages_cache_put(const BufferTag *tag, const char *page, XLogRecPtr lsn);

typedef struct AuroraLocalPagesStats
{
	int64		pinned;			/* pages storage cannot rebuild yet */
	int64		pinned_capacity;
	int64		cached;			/* clean copies in the page cache */
	int64		cache_capacity;
	int64		reads;			/* pinned copies read */
	int64		cache_reads;	/* cache hits */
	int64		reaped;			/* pinned copies released once storage held them */
} AuroraLocalPagesStats;

extern void aurora_local_pages_stats(AuroraLocalPagesStats *st);

#endif							/* AURORA_LOCAL_PAGES_H */

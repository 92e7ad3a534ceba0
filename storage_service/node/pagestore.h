/*
 * pagestore.h - one segment's page index and page images
 * (docs/architecture.md, "The storage node", "A read's path"),
 * kept in an LMDB environment in <segment dir>/pages/.
 *
 * The segment's log stays the source of truth: this store only says, for
 * each block of the segment's PG, which records change it (block -> end LSN
 * -> where the record is in the log, i.e. its start LSN) and which page
 * images exist ((block, LSN) -> 8192 bytes), plus every relation fork's size
 * history (what PROTOCOL.md 5.9 "Relation sizes" derives from envelopes and
 * seeded images).  Everything except seeded images is rebuilt from the log
 * if the environment is lost; the "indexed up to" position is written in the
 * same transaction as the entries it covers, so the two never disagree.
 *
 * The on-disk layout is described at the top of pagestore.c and in
 * PROTOCOL.md 9.  No knowledge of the segment module, the indexer's
 * scheduling or redo: the page service (node/indexer.c, coalesce.c,
 * pageservice.c) drives it.
 *
 * Thread safety: any number of threads may read (plan, rel_size, stats)
 * while one writes; writers are serialized by LMDB.
 */
#ifndef AURORA_NODE_PAGESTORE_H
#define AURORA_NODE_PAGESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagemsg.h"			/* AURORA_PAGE_BYTES, aurora_seed_page */
#include "volume.h"
#include "walmeta.h"

typedef struct aurora_pagestore aurora_pagestore;
typedef struct aurora_pagestore_txn aurora_pagestore_txn;

/* How far the log has been indexed (all 0 in a new store). */
typedef struct aurora_pagestore_pos
{
	uint64_t	last_start;		/* start LSN of the last record indexed */
	uint64_t	last_end;		/* its end LSN */
	uint64_t	scl;			/* every chain record ending <= scl is indexed */
} aurora_pagestore_pos;

/*
 * Open (or create) the store in dir.  A store that cannot be opened or has
 * an unknown format is moved aside to dir.broken (replacing an older one)
 * and a new, empty one created: *rebuilt is set and the caller re-indexes
 * from the log.  Returns 0 or AURORA_ERR_IO with err.
 */
int			aurora_pagestore_open(const char *dir, aurora_pagestore **out, bool *rebuilt,
								  char *err, size_t errlen);
void		aurora_pagestore_close(aurora_pagestore *ps);

void		aurora_pagestore_get_pos(aurora_pagestore *ps, aurora_pagestore_pos *out);

/* The highest LSN pages were seeded at (0 if none). */
uint64_t	aurora_pagestore_seeded_lsn(aurora_pagestore *ps);

/* ---- indexing (one writer) ---- */

int			aurora_pagestore_begin(aurora_pagestore *ps, aurora_pagestore_txn **out,
								   char *err, size_t errlen);

/*
 * Index one record [start, end) with envelope m for segment PG pg_id of
 * geometry g: its blocks of that PG, the size effects of registered blocks
 * and its relation events.  touched (may be NULL) receives up to max_touched
 * blocks indexed; *n_touched their count.
 */
int			aurora_pagestore_index_record(aurora_pagestore_txn *t, const aurora_geometry *g,
										  uint32_t pg_id, uint64_t start, uint64_t end,
										  const aurora_walmeta *m, aurora_block_ref *touched,
										  int max_touched, int *n_touched, char *err,
										  size_t errlen);

/* Commit with the new position (durable by the environment's sync rules). */
int			aurora_pagestore_commit(aurora_pagestore_txn *t, const aurora_pagestore_pos *pos,
									char *err, size_t errlen);
void		aurora_pagestore_abort(aurora_pagestore_txn *t);

/*
 * Drop every record, image and size entry above lsn and move the position
 * back to it (the log was cut below what had been indexed).
 */
int			aurora_pagestore_discard_above(aurora_pagestore *ps, uint64_t lsn,
										   const aurora_pagestore_pos *pos, char *err,
										   size_t errlen);

/* ---- images ---- */

/*
 * Store base images at lsn (SEED_PAGES): each page at (block, lsn), and the
 * fork marked existing with at least blkno + 1 blocks from lsn on.  Durable
 * (synced) before returning.
 */
int			aurora_pagestore_seed(aurora_pagestore *ps, uint64_t lsn,
								  const aurora_seed_page *pages, int n, char *err, size_t errlen);

/* A page materialized by coalescing: block as of lsn. */
typedef struct aurora_page_image
{
	aurora_block_ref block;
	uint64_t	lsn;
	uint8_t		page[AURORA_PAGE_BYTES];
} aurora_page_image;

/*
 * Store materialized images in one transaction.  Each commit costs an
 * fdatasync of the store (MDB_NOMETASYNC syncs data pages; LMDB has no
 * commit that is safe without one), so coalescing stores its images
 * together, with the next index commit when one is due.  They need no
 * durability of their own (the log rebuilds them); the sync only keeps the
 * tree intact.
 */
int			aurora_pagestore_put_images(aurora_pagestore *ps, const aurora_page_image *images,
										int n, char *err, size_t errlen);

/* The same inside an indexing transaction: they share its commit (and sync). */
int			aurora_pagestore_txn_put_images(aurora_pagestore_txn *t,
											const aurora_page_image *images, int n,
											char *err, size_t errlen);

/* ---- reads ---- */

/* What GETPAGE(block, lsn) needs: a base and the records to apply on it. */
typedef struct aurora_page_plan
{
	bool		has_image;		/* base = image (else zeros: starts at a WILL_INIT) */
	uint64_t	image_lsn;
	uint8_t		image[AURORA_PAGE_BYTES];
	int			n_recs;			/* records to apply, oldest first */
	uint64_t   *rec_start;		/* malloc'd; aurora_page_plan_free */
	uint64_t   *rec_end;
} aurora_page_plan;

/*
 * Plan block as of lsn (every record with end <= lsn).  Returns 0, or
 * AURORA_ERR_NO_RELATION (the fork does not exist at lsn),
 * AURORA_ERR_NO_BLOCK (past its size, or never seen), AURORA_ERR_BELOW_HORIZON
 * (the block is known but has no image or WILL_INIT record at or below
 * lsn), AURORA_ERR_IO; err says which.
 */
int			aurora_pagestore_plan(aurora_pagestore *ps, const aurora_block_ref *block,
								  uint64_t lsn, aurora_page_plan *plan, char *err,
								  size_t errlen);
void		aurora_page_plan_free(aurora_page_plan *plan);

/*
 * Records of block after its newest base (image or WILL_INIT), counting at
 * most max + 1.  *newest_end is the end LSN of the newest record (0 if none);
 * *from_init says the chain counted starts at a WILL_INIT record (no image
 * is newer), so the page at *newest_end can be built from the log alone.
 */
int			aurora_pagestore_chain_length(aurora_pagestore *ps, const aurora_block_ref *block,
										  int max, uint64_t *newest_end, bool *from_init);

/*
 * The fork's size as of lsn: *known false when no entry exists at or below
 * lsn (then exists false, nblocks 0).  Returns 0 or AURORA_ERR_IO.
 */
int			aurora_pagestore_rel_size(aurora_pagestore *ps, uint32_t spc, uint32_t db,
									  uint32_t rel, uint8_t fork, uint64_t lsn, bool *known,
									  bool *exists, uint32_t *nblocks);

typedef struct aurora_pagestore_stats
{
	uint64_t	images;			/* page images held */
	uint64_t	record_entries; /* (block, record) entries */
	uint64_t	size_entries;
} aurora_pagestore_stats;

void		aurora_pagestore_get_stats(aurora_pagestore *ps, aurora_pagestore_stats *out);

#endif							/* AURORA_NODE_PAGESTORE_H */

/*
 * redo.h - the storage node's pool of WAL-redo helper processes.
 *
 * A page is rebuilt from the log by PostgreSQL's own redo routines, run in a
 * helper process: the patched server started as `postgres --wal-redo`, whose
 * logic lives in the aurora extension (src/walredo.c).  The node talks to
 * each helper over a pair of pipes (protocol: PROTOCOL.md 12): begin a
 * block, push its base image, apply records, get the page.
 *
 * The pool starts helpers lazily, hands one to each request, restarts one
 * that dies or stops answering, and never returns a page from a helper that
 * failed.  A record a helper cannot apply is an error for that request only
 * (logged with the record's LSN and resource manager); it never takes the
 * node down.  Thread-safe: any number of threads may call
 * aurora_redo_get_page at once; each waits for a free helper.
 */
#ifndef AURORA_NODE_REDO_H
#define AURORA_NODE_REDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.h"				/* aurora_block_ref */

#define AURORA_PAGE_SIZE		8192

/* Errors of aurora_redo_get_page (0 is success). */
#define AURORA_REDO_OK			0
#define AURORA_REDO_FAILED		1	/* a record could not be applied */
#define AURORA_REDO_UNAVAILABLE	2	/* no helper could be started */
#define AURORA_REDO_TIMEOUT		3	/* the helper did not answer in time */

typedef struct aurora_redo_pool aurora_redo_pool;

typedef struct aurora_redo_config
{
	const char *postgres;		/* path of the patched server binary */
	int			helpers;		/* pool size (>= 1) */
	int			timeout_ms;		/* per request; a helper over it is killed */
	int			nice;			/* 0, or the nice value helpers run at (background pools) */
} aurora_redo_config;

/* One record to apply: its LSNs and the WAL bytes (envelope removed). */
typedef struct aurora_redo_record
{
	uint64_t	start_lsn;
	uint64_t	end_lsn;
	const uint8_t *wal;
	uint32_t	wal_len;
} aurora_redo_record;

typedef struct aurora_redo_stats
{
	uint64_t	requests;		/* aurora_redo_get_page calls */
	uint64_t	records_applied;
	uint64_t	failures;		/* requests that returned an error */
	uint64_t	helper_starts;	/* helpers started, including restarts */
	int			helpers_running;
} aurora_redo_stats;

/*
 * Create a pool (no helper is started yet).  Returns 0, or -1 with a message
 * in err (bad config).
 */
int			aurora_redo_pool_create(const aurora_redo_config *cfg, aurora_redo_pool **out,
									char *err, size_t errlen);

/*
 * Rebuild block: start from base (AURORA_PAGE_SIZE bytes) or, with base
 * NULL, from a page of zeros, apply recs[0..n) in order (the helper applies
 * each one only to this block; records that do not change it leave it
 * alone), and copy the result to page.  The helper stamps the page's
 * checksum (pd_checksum) for blkno, so a compute with data checksums can
 * verify it.  Returns AURORA_REDO_* with a message in err.
 */
int			aurora_redo_get_page(aurora_redo_pool *pool, const aurora_block_ref *block,
								 const uint8_t *base, const aurora_redo_record *recs, int n,
								 uint8_t *page, char *err, size_t errlen);

/*
 * Mask page in (blkno) with resource manager rmid's rm_mask, the masking
 * wal_consistency_checking applies before comparing pages (LSN, checksum,
 * hint bits, unused space...), into out.  For tests and tools that compare
 * rebuilt pages with a compute's.  Returns AURORA_REDO_* with a message.
 */
int			aurora_redo_mask_page(aurora_redo_pool *pool, uint8_t rmid, uint32_t blkno,
								  const uint8_t *in, uint8_t *out, char *err, size_t errlen);

void		aurora_redo_get_stats(aurora_redo_pool *pool, aurora_redo_stats *out);

/* Process ids of the running helpers (at most max); for tests. */
int			aurora_redo_helper_pids(aurora_redo_pool *pool, int *pids, int max);

/* Stop every helper and free the pool (no call may be running). */
void		aurora_redo_pool_destroy(aurora_redo_pool *pool);

#endif							/* AURORA_NODE_REDO_H */

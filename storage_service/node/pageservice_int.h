/*
 * pageservice_int.h - what the page service's three files share: the
 * service object, the per-segment state and the few functions one file
 * calls in another.  Private to node/pageservice.c (page requests, the
 * service's life cycle), node/indexer.c (the background thread and
 * indexing) and node/coalesce.c (rebuilding pages, coalescing); everyone
 * else uses pageservice.h.
 *
 * Threads and locks: the background thread (indexer.c) is the only one that
 * indexes and coalesces, so the fields marked "indexer thread only" need no
 * lock.  ps->mu guards the segment list and the kick/stop flags; a
 * segment's tail_mu guards its unindexed tail.  tail_mu is never taken
 * with ps->mu held.
 */
#ifndef AURORA_NODE_PAGESERVICE_INT_H
#define AURORA_NODE_PAGESERVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "blockset.h"
#include "pageservice.h"
#include "pagestore.h"
#include "redo.h"
#include "volume.h"

struct timespec;

/* an emit's "stop here" (indexing, reading a record back): not a segment error */
#define INDEX_STOP			1000
/* nice value of the indexer/coalescer thread and of coalescing's helper */
#define BACKGROUND_NICE		10

#define LSN_ARGS(l)	(unsigned) ((l) >> 32), (unsigned) (l)

typedef struct ps_seg
{
	struct aurora_segment *seg;
	uint64_t	volume_id;
	uint32_t	pg_id;
	aurora_geometry geom;
	aurora_pagestore *store;	/* NULL: could not be opened (open_err) */
	char		open_err[300];
	/* indexing stopped at a record whose envelope does not decode */
	atomic_bool broken;			/* set after broken_* are written */
	uint64_t	broken_start;
	uint64_t	broken_end;
	char		broken_msg[400];
	/* coalescing candidates (indexer thread only) */
	aurora_blockset dirty;
	uint64_t	last_index_ms;	/* indexer thread only */
	uint64_t	last_scl;		/* indexer thread only: SCL last seen */
	uint64_t	last_append_ms; /* when last_scl was seen to move */
	uint64_t	last_coalesce_ms;
	/*
	 * Images coalescing made, waiting to share the next index commit (each
	 * page-store commit is a sync): indexer thread only.
	 */
	aurora_page_image *pending;
	int			n_pending;
	/* coalescing log lines: at most one of each kind per COALESCE_LOG_MS */
	uint64_t	coalesced_unlogged;
	uint64_t	failed_unlogged;
	uint64_t	last_coalesce_log_ms;

	/*
	 * The unindexed tail (see check_ready): the blocks that records between
	 * the last index commit and tail_end touch, decoded by the indexer
	 * between commits.  tail_mu guards tail_blocks, tail_end and
	 * tail_opaque; tail_last_start (where the next scan resumes) is the
	 * indexer thread's.
	 */
	pthread_mutex_t tail_mu;
	aurora_blockset tail_blocks;
	uint64_t	tail_end;
	bool		tail_opaque;	/* a relation event, a bad envelope, a full set */
	uint64_t	tail_last_start;
	struct ps_seg *next;
} ps_seg;

struct aurora_pageservice
{
	struct aurora_segment_table *store;
	aurora_pageservice_config cfg;
	aurora_redo_pool *redo;		/* NULL: no helper configured/startable */
	aurora_redo_pool *redo_bg;	/* coalescing's, at lower priority; NULL: none */
	char		redo_err[300];
	pthread_t	thread;
	bool		thread_started;

	pthread_mutex_t mu;			/* segs, stop, kicked, commit_wanted */
	/*
	 * Held by the background thread over each pass (indexing, coalescing)
	 * and by a truncation cutting a store: a cut never races an index
	 * commit.  Taken before mu, never with it held.
	 */
	pthread_mutex_t work_mu;
	pthread_cond_t progress_cv; /* indexer made progress (waiters) */
	pthread_cond_t kick_cv;		/* a waiter wants the indexer now */
	bool		stop;
	bool		kicked;			/* a request waits: look at the tails now */
	bool		commit_wanted;	/* ... and only an index commit can answer it */
	ps_seg	   *segs;

	atomic_uint_least64_t records_indexed;
	atomic_uint_least64_t getpage_requests;
	atomic_uint_least64_t pages_seeded;
	atomic_uint_least64_t images_written;
	atomic_uint_least64_t index_errors;
	atomic_uint_least64_t redo_failures;
	atomic_uint_least64_t index_backlog_bytes;
	atomic_uint_least64_t coalesce_backlog;
};

/* pageservice.c */

/*
 * The page service state of seg, opening its page store on first use.
 * NULL if seg has no geometry.  Safe from any thread.
 */
ps_seg	   *ps_get_seg(aurora_pageservice *ps, struct aurora_segment *seg);

/* Drop the store's entries above the log's chain ending at scl (see pageservice.c). */
void		ps_discard_beyond_log(ps_seg *s, uint64_t scl);

/* A request's failure: code and the printf-formatted reason into res. */
void		ps_set_error(aurora_page_result *res, uint32_t code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* CLOCK_REALTIME (the condition variables' clock) + ms, for a timed wait. */
void		ps_deadline_after(struct timespec *ts, uint32_t ms);

/* indexer.c */

/* The background thread: indexing, tail scans and coalescing rounds. */
void	   *ps_indexer_main(void *arg);

/* coalesce.c */

/*
 * Rebuild block from plan into page with pool's redo helpers.  Returns 0
 * or an AURORA_ERR_* code with the reason in res.
 */
uint32_t	ps_materialize(aurora_pageservice *ps, aurora_redo_pool *pool, ps_seg *s,
						   const aurora_block_ref *block, const aurora_page_plan *plan,
						   uint8_t *page, aurora_page_result *res);

/*
 * One coalescing round of s at monotonic time now; true if it looked at
 * any block.  Indexer thread only.
 */
bool		ps_coalesce_segment(aurora_pageservice *ps, ps_seg *s, uint64_t now);

#endif

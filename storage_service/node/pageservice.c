/*
 * pageservice.c - indexer, coalescer and page requests (pageservice.h).
 *
 * One background thread does the indexing and coalescing for every segment:
 * for each segment with a geometry whose SCL is past what its page store
 * has indexed, it reads the chain records after the indexed position
 * (aurora_segment_read, in LSN order, only start < SCL: exactly the
 * unbroken chain), decodes each envelope and indexes it in one LMDB
 * transaction per batch together with the new position.  The append path
 * never waits for it.  A request that needs an LSN not yet indexed kicks
 * the thread awake and either waits on progress_cv, bounded by its wait_ms
 * (aurora_pageservice_getpage & co.), or is asked again later by the
 * server (aurora_pageservice_ready), which keeps waiting requests off its
 * page threads.  Kicked, the thread first decodes the unindexed tail of
 * the log (the records after the last index commit) into a set of the
 * blocks they touch, without writing anything: a request whose block (or
 * relation fork) that tail does not touch is answered from the index as
 * committed, which is what its LSN sees of it.  Only a request the tail
 * concerns makes the thread commit the index at once instead of at most
 * every index_interval_ms.  Under pgbench most page reads are of blocks
 * nobody just changed (pages that fell out of the compute's cache), and
 * each forced commit was an fdatasync on the read's path.
 *
 * A record whose envelope does not decode stops indexing of that segment
 * (logged once with its LSN): requests for later LSNs get CORRUPT, earlier
 * ones are still served.  LOG_APPEND refuses such records up front, so only
 * records that reached the log another way (an older node) can do this.
 *
 * Coalescing: blocks touched by the indexer are remembered; when one's
 * chain of records after its newest image (or WILL_INIT record) is longer
 * than coalesce_threshold, the page at its newest record is rebuilt by the
 * redo pool and stored as an image, so later requests apply fewer records;
 * one whose newest record sets it whole (a full-page image, a page init) is
 * stored as an image at once.  Both use a separate one-helper pool; that
 * helper and this thread run at BACKGROUND_NICE, so the foreground (appends,
 * acknowledgements, page requests) gets the CPU first.  Images are
 * rebuildable, but every LMDB commit syncs (MDB_NOMETASYNC), so they wait
 * to share the next index commit (their own only when many are waiting or
 * the segment is idle).  The set of touched blocks is in memory only:
 * after a restart a block is coalesced again the next time a record
 * touches it.
 */
#define _DEFAULT_SOURCE

#include "pageservice.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blockset.h"
#include "log.h"
#include "pagestore.h"
#include "redo.h"
#include "segment.h"
#include "store.h"
#include "util.h"
#include "walmeta.h"

/* payload bytes read per indexing batch (one LMDB commit each) */
#define INDEX_BATCH_BYTES	(4u << 20)
/* blocks remembered per segment for coalescing before new ones are dropped */
#define DIRTY_MAX			(1u << 20)
/* blocks of the unindexed tail remembered before it answers nothing more */
#define TAIL_BLOCKS_MAX		(1u << 18)
#define INDEX_STOP			1000	/* emit's "stop here": not a segment error */
/*
 * Each index commit costs an fdatasync (MDB_NOMETASYNC) and rewrites the
 * B-tree pages it touched: under a steady stream of records a segment is
 * indexed at most this often (index_interval_ms), unless a request the
 * unindexed tail concerns needs it (then at once).  1000 ms rather than
 * 250 halved the indexer's CPU per transaction under pgbench (hot pages'
 * keys share leaf pages within a commit); once reads of untouched blocks
 * stopped forcing commits, 5000 ms cut the index commits of six nodes
 * under pgbench from about 11 to 4 a second.
 */
#define INDEX_MIN_INTERVAL_MS	5000
/* blocks coalesced per segment per round, so waiting requests come first */
#define COALESCE_PER_ROUND	16
/* images that wait for an index commit before they get one of their own */
#define PENDING_IMAGES_MAX	(8 * COALESCE_PER_ROUND)
/*
 * Coalescing yields to appends (DESIGN.md 8: background work is throttled
 * under foreground load).  A segment whose SCL moved within the last
 * COALESCE_IDLE_MS is busy: it gets one round every COALESCE_BUSY_ROUND_MS,
 * enough to keep chains bounded; an idle one gets a round every loop.  Under
 * pgbench on the 2-core reference machine coalescing every loop took about
 * two fifths of the indexer thread's CPU, most of it rebuilding pages no one
 * asked for yet.
 */
#define COALESCE_IDLE_MS	200
#define COALESCE_BUSY_ROUND_MS	1000
#define COALESCE_LOG_MS		10000
/*
 * A pass that found nothing to do doubles the indexer's sleep, from poll_ms
 * up to this: an idle node (or one whose only news is appends it will index
 * later anyway) should not wake 200 times a second.  Requests that wait for
 * the index kick the thread, so the longer sleep never delays a reader;
 * it stays under COALESCE_IDLE_MS so an idle segment is still noticed.
 */
#define IDLE_POLL_MAX_MS	100
/* nice value of the indexer/coalescer thread and of coalescing's helper */
#define BACKGROUND_NICE		10

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
	struct aurora_store *store;
	aurora_pageservice_config cfg;
	aurora_redo_pool *redo;		/* NULL: no helper configured/startable */
	aurora_redo_pool *redo_bg;	/* coalescing's, at lower priority; NULL: none */
	char		redo_err[300];
	pthread_t	thread;
	bool		thread_started;

	pthread_mutex_t mu;			/* segs, stop, kicked, commit_wanted */
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

static void
deadline_after(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	aurora_timespec_add_ms(ts, ms);
}

static void
set_error(aurora_page_result *res, uint32_t code, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
set_error(aurora_page_result *res, uint32_t code, const char *fmt,...)
{
	va_list		ap;

	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

#define LSN_ARGS(l)	(unsigned) ((l) >> 32), (unsigned) (l)

/*
 * The page service state of seg, opening its page store on first use.
 * NULL if seg has no geometry.  Safe from any thread.
 */
static ps_seg *
get_seg(aurora_pageservice *ps, struct aurora_segment *seg)
{
	ps_seg	   *s;
	aurora_segment_meta meta;
	char		dir[1200];
	bool		rebuilt = false;

	pthread_mutex_lock(&ps->mu);
	for (s = ps->segs; s != NULL; s = s->next)
		if (s->seg == seg)
			break;
	if (s != NULL)
	{
		pthread_mutex_unlock(&ps->mu);
		return s;
	}
	aurora_segment_get_meta(seg, &meta);
	if (meta.n_pgs == 0 || meta.blocks_per_segment == 0)
	{
		pthread_mutex_unlock(&ps->mu);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
	{
		pthread_mutex_unlock(&ps->mu);
		return NULL;
	}
	s->seg = seg;
	aurora_blockset_init(&s->dirty, DIRTY_MAX);
	s->volume_id = meta.volume_id;
	s->pg_id = meta.pg_id;
	s->geom.n_pgs = meta.n_pgs;
	s->geom.blocks_per_segment = meta.blocks_per_segment;
	aurora_store_segment_path(ps->store, meta.volume_id, meta.pg_id, dir, sizeof(dir) - 8);
	strcat(dir, "/pages");
	if (aurora_pagestore_open(dir, &s->store, &rebuilt, s->open_err, sizeof(s->open_err)) != 0)
	{
		aurora_log("page service: segment %016" PRIx64 "-%u: %s; its pages cannot be served",
				   meta.volume_id, meta.pg_id, s->open_err);
		s->store = NULL;
	}
	else
	{
		aurora_pagestore_pos pos;
		aurora_segment_stats st;

		aurora_pagestore_get_pos(s->store, &pos);
		aurora_segment_get_stats(seg, &st);
		/* the log was cut below what was indexed (torn tail): forget the rest */
		if (pos.scl > st.scl)
		{
			aurora_pagestore_pos back;
			aurora_log_record rec;
			char		err[300];

			memset(&back, 0, sizeof(back));
			if (aurora_segment_record_before(seg, st.scl, &rec))
			{
				back.last_start = rec.start_lsn;
				back.last_end = rec.end_lsn;
			}
			back.scl = back.last_end;
			aurora_log("page service: segment %016" PRIx64 "-%u: log ends at %X/%X but the "
					   "index reached %X/%X; dropping index entries above %X/%X",
					   meta.volume_id, meta.pg_id, LSN_ARGS(st.scl), LSN_ARGS(pos.scl),
					   LSN_ARGS(back.scl));
			if (aurora_pagestore_discard_above(s->store, back.scl, &back, err, sizeof(err)) != 0)
				aurora_log("page service: %s", err);
		}
		if (rebuilt)
			aurora_log("page service: segment %016" PRIx64 "-%u: page index will be rebuilt "
					   "from the log (seeded images are lost)", meta.volume_id, meta.pg_id);
		aurora_pagestore_get_pos(s->store, &pos);
		s->tail_end = pos.scl;
		s->tail_last_start = pos.last_start;
	}
	pthread_mutex_init(&s->tail_mu, NULL);
	aurora_blockset_init(&s->tail_blocks, TAIL_BLOCKS_MAX);
	s->next = ps->segs;
	ps->segs = s;
	pthread_mutex_unlock(&ps->mu);
	return s;
}

/* ---- indexing ---- */

typedef struct index_ctx
{
	aurora_pageservice *ps;
	ps_seg	   *s;
	aurora_pagestore_txn *txn;
	aurora_pagestore_pos pos;
	uint64_t	n;
	bool		hit_bad;		/* stopped at a malformed envelope */
	int			rc;				/* first pagestore error */
	char		err[400];
} index_ctx;

static int
index_emit(void *arg, const aurora_log_record *r)
{
	index_ctx  *c = arg;
	aurora_walmeta m;
	char		why[256];
	aurora_block_ref touched[AURORA_WALMETA_MAX_BLOCKS];
	int			nt = 0;

	if (aurora_walmeta_decode(r->payload, r->len, &m, why, sizeof(why)) != 0)
	{
		ps_seg	   *s = c->s;

		/* published by index_segment after the records before it are committed */
		s->broken_start = r->start_lsn;
		s->broken_end = r->end_lsn;
		snprintf(s->broken_msg, sizeof(s->broken_msg),
				 "record [%X/%X, %X/%X) of segment %016" PRIx64 "-%u has a malformed envelope (%s); "
				 "pages after it cannot be served", LSN_ARGS(r->start_lsn), LSN_ARGS(r->end_lsn),
				 s->volume_id, s->pg_id, why);
		c->hit_bad = true;
		return INDEX_STOP;
	}
	if (aurora_pagestore_index_record(c->txn, &c->s->geom, c->s->pg_id, r->start_lsn, r->end_lsn,
									  &m, touched, AURORA_WALMETA_MAX_BLOCKS, &nt,
									  c->err, sizeof(c->err)) != 0)
	{
		c->rc = -1;
		return INDEX_STOP;
	}
	for (int i = 0; i < nt; i++)
		(void) aurora_blockset_add(&c->s->dirty, &touched[i]);
	c->pos.last_start = r->start_lsn;
	c->pos.last_end = r->end_lsn;
	c->pos.scl = r->end_lsn;
	c->n++;
	return 0;
}

/*
 * The index now covers pos: the tail starts again there.  Records after pos
 * that the last scan already looked at are scanned again: the next commit
 * is seconds away, a rescan is a few milliseconds of log.
 */
static void
tail_restart(ps_seg *s, const aurora_pagestore_pos *pos)
{
	pthread_mutex_lock(&s->tail_mu);
	aurora_blockset_clear(&s->tail_blocks);
	s->tail_end = pos->scl;
	s->tail_opaque = false;
	pthread_mutex_unlock(&s->tail_mu);
	s->tail_last_start = pos->last_start;
}

typedef struct tail_ctx
{
	ps_seg	   *s;
	uint64_t	last_start;
	uint64_t	last_end;
} tail_ctx;

static int
tail_emit(void *arg, const aurora_log_record *r)
{
	tail_ctx   *c = arg;
	ps_seg	   *s = c->s;
	aurora_walmeta m;
	char		why[256];
	bool		opaque;

	opaque = aurora_walmeta_decode(r->payload, r->len, &m, why, sizeof(why)) != 0 ||
		m.n_events > 0;
	pthread_mutex_lock(&s->tail_mu);
	for (int i = 0; i < (opaque ? 0 : m.n_blocks); i++)
	{
		aurora_walmeta_block b;

		aurora_walmeta_block_at(&m, i, &b);
		if (aurora_block_pg(&s->geom, &b.ref) == s->pg_id &&
			!aurora_blockset_add(&s->tail_blocks, &b.ref))
			opaque = true;
	}
	if (opaque)
		s->tail_opaque = true;
	pthread_mutex_unlock(&s->tail_mu);
	c->last_start = r->start_lsn;
	c->last_end = r->end_lsn;
	/* an opaque tail answers nothing until the next commit: stop reading */
	return opaque ? INDEX_STOP : 0;
}

/*
 * Decode the records after the tail up to scl and note the blocks they
 * touch, without indexing them: no page store write and no sync.  Only
 * when a request waits: most passes have nobody to answer.  True if the
 * tail moved (or became opaque).
 */
static bool
tail_scan(ps_seg *s, uint64_t scl)
{
	tail_ctx	c = {.s = s};
	bool		truncated = false;
	int			rc;

	pthread_mutex_lock(&s->tail_mu);
	if (s->tail_opaque || s->tail_end >= scl || s->broken)
	{
		pthread_mutex_unlock(&s->tail_mu);
		return false;
	}
	pthread_mutex_unlock(&s->tail_mu);
	rc = aurora_segment_read(s->seg, s->tail_last_start + 1, scl, INDEX_BATCH_BYTES, tail_emit, &c,
							 &truncated);
	pthread_mutex_lock(&s->tail_mu);
	if (rc != AURORA_SEG_OK && rc != INDEX_STOP)
		s->tail_opaque = true;	/* the indexer reports it when it gets there */
	else if (c.last_end > 0 && !s->tail_opaque)
		s->tail_end = truncated ? c.last_end : scl;
	else if (!truncated && !s->tail_opaque)
		s->tail_end = scl;
	pthread_mutex_unlock(&s->tail_mu);
	if (c.last_end > 0)
		s->tail_last_start = c.last_start;
	return true;
}

/* Index seg's chain up to scl; true if anything was indexed. */
static bool
index_segment(aurora_pageservice *ps, ps_seg *s, uint64_t scl)
{
	bool		progress = false;

	for (;;)
	{
		index_ctx	c;
		bool		truncated = false;
		int			rc;

		memset(&c, 0, sizeof(c));
		c.ps = ps;
		c.s = s;
		aurora_pagestore_get_pos(s->store, &c.pos);
		if (c.pos.scl >= scl || s->broken)
			break;
		if (aurora_pagestore_begin(s->store, &c.txn, c.err, sizeof(c.err)) != 0)
		{
			aurora_log("page service: %s", c.err);
			break;
		}
		rc = aurora_segment_read(s->seg, c.pos.last_start + 1, scl, INDEX_BATCH_BYTES,
								 index_emit, &c, &truncated);
		if (c.rc != 0 || (rc != AURORA_SEG_OK && rc != INDEX_STOP))
		{
			aurora_pagestore_abort(c.txn);
			if (c.rc != 0)
				aurora_log("page service: %s", c.err);
			else
				aurora_log("page service: segment %016" PRIx64 "-%u: cannot read the log "
						   "(error %d); indexing retries", s->volume_id, s->pg_id, rc);
			break;
		}
		/* everything below scl is indexed once a read was not cut short */
		if (!truncated && !c.hit_bad)
			c.pos.scl = scl;
		/*
		 * Coalescing's images ride along: one sync for both.  If they cannot
		 * be stored they are dropped (the log rebuilds them) and the batch is
		 * indexed again without them, so they never hold the index back.
		 */
		if (s->n_pending > 0 &&
			aurora_pagestore_txn_put_images(c.txn, s->pending, s->n_pending, c.err, sizeof(c.err)) != 0)
		{
			aurora_pagestore_abort(c.txn);
			aurora_log("page service: coalescing: %s; %d images dropped", c.err, s->n_pending);
			s->n_pending = 0;
			continue;
		}
		if (aurora_pagestore_commit(c.txn, &c.pos, c.err, sizeof(c.err)) != 0)
		{
			aurora_log("page service: %s", c.err);
			break;
		}
		atomic_fetch_add(&ps->records_indexed, c.n);
		atomic_fetch_add(&ps->images_written, (uint64_t) s->n_pending);
		s->n_pending = 0;
		progress = true;
		tail_restart(s, &c.pos);
		if (c.hit_bad)
		{
			aurora_log("page service: %s", s->broken_msg);
			atomic_fetch_add(&ps->index_errors, 1);
			atomic_store(&s->broken, true);
			break;
		}
		if (!truncated)
			break;
	}
	return progress;
}

/* ---- reading records back and rebuilding pages ---- */

typedef struct fetch_ctx
{
	uint64_t	start;
	uint64_t	end;
	uint8_t    *wal;
	uint32_t	wal_len;
	bool		found;
	bool		bad;
} fetch_ctx;

static int
fetch_emit(void *arg, const aurora_log_record *r)
{
	fetch_ctx  *f = arg;
	const uint8_t *wal;
	uint32_t	len;

	if (r->start_lsn != f->start)
		return INDEX_STOP;
	wal = aurora_walmeta_wal(r->payload, r->len, &len);
	if (wal == NULL || r->end_lsn != f->end || (f->wal = malloc(len)) == NULL)
	{
		f->bad = true;
		return INDEX_STOP;
	}
	memcpy(f->wal, wal, len);
	f->wal_len = len;
	f->found = true;
	return INDEX_STOP;
}

/*
 * Rebuild block from plan into page.  Returns 0 or an AURORA_ERR_* code with
 * the reason in res.
 */
static uint32_t
materialize(aurora_pageservice *ps, aurora_redo_pool *pool, ps_seg *s,
			const aurora_block_ref *block, const aurora_page_plan *plan, uint8_t *page,
			aurora_page_result *res)
{
	aurora_redo_record *recs;
	fetch_ctx  *f;
	uint32_t	code = 0;
	char		err[AURORA_ERROR_MESSAGE_MAX - 64];
	int			i,
				rc;

	if (plan->n_recs == 0)
	{
		memcpy(page, plan->image, AURORA_PAGE_BYTES);
		return 0;
	}
	if (ps->redo == NULL)
	{
		set_error(res, AURORA_ERR_UNAVAILABLE, "block %u needs %d records applied but this node "
				  "has no WAL-redo helper: %s", block->blkno, plan->n_recs, ps->redo_err);
		return AURORA_ERR_UNAVAILABLE;
	}
	recs = calloc((size_t) plan->n_recs, sizeof(*recs));
	f = calloc((size_t) plan->n_recs, sizeof(*f));
	if (recs == NULL || f == NULL)
	{
		free(recs);
		free(f);
		set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return AURORA_ERR_INTERNAL;
	}
	for (i = 0; i < plan->n_recs; i++)
	{
		f[i].start = plan->rec_start[i];
		f[i].end = plan->rec_end[i];
		rc = aurora_segment_read(s->seg, f[i].start, f[i].start + 1, SIZE_MAX, fetch_emit,
								 &f[i], NULL);
		if ((rc != AURORA_SEG_OK && rc != INDEX_STOP) || !f[i].found)
		{
			code = rc == AURORA_SEG_ERR_CORRUPT ? AURORA_ERR_CORRUPT : AURORA_ERR_IO;
			set_error(res, code, "cannot read record at %X/%X back from the log%s",
					  LSN_ARGS(f[i].start), f[i].bad ? " (it does not match the index)" : "");
			goto out;
		}
		recs[i].start_lsn = f[i].start;
		recs[i].end_lsn = f[i].end;
		recs[i].wal = f[i].wal;
		recs[i].wal_len = f[i].wal_len;
	}
	rc = aurora_redo_get_page(pool, block, plan->has_image ? plan->image : NULL,
							  recs, plan->n_recs, page, err, sizeof(err));
	if (rc != AURORA_REDO_OK)
	{
		atomic_fetch_add(&ps->redo_failures, 1);
		code = rc == AURORA_REDO_UNAVAILABLE ? AURORA_ERR_UNAVAILABLE : AURORA_ERR_REDO_FAILED;
		set_error(res, code, "redo of block %u/%u/%u/%u/%u failed: %s", block->spc_oid,
				  block->db_oid, block->rel_number, block->fork, block->blkno, err);
		/* err names the record (LSN, resource manager) the helper could not apply */
		aurora_log("page service: segment %016" PRIx64 "-%u: %s", s->volume_id, s->pg_id,
				   res->message);
	}
out:
	for (i = 0; i < plan->n_recs; i++)
		free(f[i].wal);
	free(f);
	free(recs);
	return code;
}

/* ---- coalescing ---- */

/* A waiting request has asked the indexer to hurry. */
static bool
kicked(aurora_pageservice *ps)
{
	bool		k;

	pthread_mutex_lock(&ps->mu);
	k = ps->kicked || ps->stop;
	pthread_mutex_unlock(&ps->mu);
	return k;
}

/*
 * Look at up to COALESCE_PER_ROUND distinct blocks the indexer touched and
 * materialize those whose chain is over the threshold; the rest wait for
 * the next round.
 */
static bool
coalesce_segment(aurora_pageservice *ps, ps_seg *s, uint64_t now)
{
	size_t		taken = 0;
	int			made = 0;
	char		err[400];

	if (aurora_blockset_count(&s->dirty) == 0)
		return false;
	if (now - s->last_append_ms < COALESCE_IDLE_MS &&
		now - s->last_coalesce_ms < COALESCE_BUSY_ROUND_MS)
		return false;
	s->last_coalesce_ms = now;
	if (ps->cfg.coalesce_threshold == 0 || ps->redo_bg == NULL)
	{
		aurora_blockset_clear(&s->dirty);
		return false;
	}
	if (s->pending == NULL &&
		(s->pending = malloc(sizeof(*s->pending) * PENDING_IMAGES_MAX)) == NULL)
		return false;
	aurora_blockset_normalize(&s->dirty);
	/* from the end, so what is left stays sorted where it is */
	for (; taken < aurora_blockset_count(&s->dirty) && taken < COALESCE_PER_ROUND && !kicked(ps);
		 taken++)
	{
		const aurora_block_ref *b = aurora_blockset_from_end(&s->dirty, taken);
		aurora_page_plan plan;
		aurora_page_result res;
		uint64_t	newest;
		bool		from_init;
		int			len;

		len = aurora_pagestore_chain_length(s->store, b, (int) ps->cfg.coalesce_threshold, &newest,
											&from_init);
		/*
		 * A long chain is shortened; a page whose newest record sets it
		 * whole (a full-page image, a page init) is stored as an image at
		 * once, so no later request needs that record's redo.
		 */
		if (len <= (int) ps->cfg.coalesce_threshold && !(from_init && len == 1))
			continue;
		if (aurora_pagestore_plan(s->store, b, newest, &plan, err, sizeof(err)) != 0)
			continue;			/* below the horizon etc.: nothing to build on */
		memset(&res, 0, sizeof(res));
		if (materialize(ps, ps->redo_bg, s, b, &plan, s->pending[s->n_pending].page, &res) == 0)
		{
			s->pending[s->n_pending].block = *b;
			s->pending[s->n_pending].lsn = newest;
			s->n_pending++;
			made++;
		}
		else
		{
			if (s->failed_unlogged++ == 0)
				aurora_log("page service: coalescing segment %016" PRIx64 "-%u: %s",
						   s->volume_id, s->pg_id, res.message);
		}
		aurora_page_plan_free(&plan);
	}
	aurora_blockset_drop_last(&s->dirty, taken);
	/*
	 * The images wait for the next index commit (each commit is a sync),
	 * unless no room is left for another round or the segment is idle, so
	 * that no index commit is coming.
	 */
	if (s->n_pending > PENDING_IMAGES_MAX - COALESCE_PER_ROUND ||
		(s->n_pending > 0 && now - s->last_append_ms >= COALESCE_IDLE_MS))
	{
		if (aurora_pagestore_put_images(s->store, s->pending, s->n_pending, err, sizeof(err)) == 0)
			atomic_fetch_add(&ps->images_written, (uint64_t) s->n_pending);
		else
			aurora_log("page service: coalescing: %s", err);
		s->n_pending = 0;
	}
	s->coalesced_unlogged += (uint64_t) made;
	if ((s->coalesced_unlogged > 0 || s->failed_unlogged > 1) &&
		(uint64_t) aurora_monotonic_ms() - s->last_coalesce_log_ms >= COALESCE_LOG_MS)
	{
		aurora_log("page service: coalesced %" PRIu64 " blocks of segment %016" PRIx64
				   "-%u into new images%s", s->coalesced_unlogged, s->volume_id, s->pg_id,
				   s->failed_unlogged > 1 ? " (some could not be rebuilt, see above)" : "");
		s->coalesced_unlogged = 0;
		s->failed_unlogged = 0;
		s->last_coalesce_log_ms = (uint64_t) aurora_monotonic_ms();
	}
	return taken > 0;
}

/* ---- the background thread ---- */

typedef struct seg_list
{
	struct aurora_segment **v;
	size_t		n;
	size_t		cap;
} seg_list;

static int
collect_seg(void *arg, struct aurora_segment *seg)
{
	seg_list   *l = arg;

	if (l->n == l->cap)
	{
		size_t		ncap = l->cap ? l->cap * 2 : 16;
		struct aurora_segment **n = realloc(l->v, ncap * sizeof(*n));

		if (n == NULL)
			return 1;
		l->v = n;
		l->cap = ncap;
	}
	l->v[l->n++] = seg;
	return 0;
}

/*
 * What the background still has to do, for STATUS: an operator (and the
 * benchmark, before it measures) can tell a node that keeps up from one
 * that is behind.  A segment whose indexing stopped at a bad record counts
 * nothing: it is reported as an index error instead.
 */
static void
publish_backlog(aurora_pageservice *ps, const seg_list *l)
{
	uint64_t	bytes = 0;
	uint64_t	blocks = 0;

	for (size_t i = 0; i < l->n; i++)
	{
		ps_seg	   *s = get_seg(ps, l->v[i]);
		aurora_pagestore_pos pos;

		if (s == NULL || s->store == NULL || s->broken)
			continue;
		aurora_pagestore_get_pos(s->store, &pos);
		if (s->last_scl > pos.scl)
			bytes += s->last_scl - pos.scl;
		if (ps->cfg.coalesce_threshold > 0 && ps->redo_bg != NULL)
			blocks += aurora_blockset_count(&s->dirty);
	}
	atomic_store(&ps->index_backlog_bytes, bytes);
	atomic_store(&ps->coalesce_backlog, blocks);
}

static void *
indexer_main(void *arg)
{
	aurora_pageservice *ps = arg;
	uint32_t	sleep_ms = ps->cfg.poll_ms;

	/* background work (DESIGN.md 8): this thread yields to the foreground */
	if (setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), BACKGROUND_NICE) != 0)
		aurora_log("page service: cannot lower the indexer's priority: %s", strerror(errno));

	for (;;)
	{
		seg_list	l = {0};
		bool		progress = false;
		bool		coalesced = false;
		struct timespec ts;

		bool		urgent;
		bool		commit_now;
		bool		tails_moved = false;
		uint64_t	now;

		pthread_mutex_lock(&ps->mu);
		if (ps->stop)
		{
			pthread_mutex_unlock(&ps->mu);
			break;
		}
		urgent = ps->kicked;
		commit_now = ps->commit_wanted;
		ps->kicked = ps->commit_wanted = false;
		pthread_mutex_unlock(&ps->mu);

		aurora_store_foreach(ps->store, collect_seg, &l);
		now = (uint64_t) aurora_monotonic_ms();
		for (size_t i = 0; i < l.n; i++)
		{
			ps_seg	   *s = get_seg(ps, l.v[i]);
			aurora_segment_stats st;

			if (s == NULL || s->store == NULL || s->broken)
				continue;
			aurora_segment_get_stats(l.v[i], &st);
			if (st.scl != s->last_scl)
			{
				s->last_scl = st.scl;
				s->last_append_ms = now;
			}
			/* a waiting request may be answerable from the tail alone */
			if (urgent)
				tails_moved |= tail_scan(s, st.scl);
			if (!commit_now && now - s->last_index_ms < ps->cfg.index_interval_ms)
				continue;		/* the next round will take it */
			if (index_segment(ps, s, st.scl))
			{
				progress = true;
				s->last_index_ms = now;
			}
		}
		if (progress || tails_moved)
		{
			pthread_mutex_lock(&ps->mu);
			pthread_cond_broadcast(&ps->progress_cv);
			pthread_mutex_unlock(&ps->mu);
		}
		for (size_t i = 0; i < l.n; i++)
		{
			ps_seg	   *s = get_seg(ps, l.v[i]);

			if (s != NULL && s->store != NULL && coalesce_segment(ps, s, now))
				coalesced = true;
		}
		publish_backlog(ps, &l);
		free(l.v);

		if (progress || coalesced || urgent)
			sleep_ms = ps->cfg.poll_ms;
		else if (sleep_ms < IDLE_POLL_MAX_MS)
			sleep_ms = sleep_ms * 2 < IDLE_POLL_MAX_MS ? sleep_ms * 2 : IDLE_POLL_MAX_MS;
		pthread_mutex_lock(&ps->mu);
		if (!progress && !ps->kicked && !ps->stop)
		{
			deadline_after(&ts, sleep_ms);
			pthread_cond_timedwait(&ps->kick_cv, &ps->mu, &ts);
		}
		pthread_mutex_unlock(&ps->mu);
	}
	return NULL;
}

int
aurora_pageservice_start(struct aurora_store *store, const aurora_pageservice_config *cfg,
						 aurora_pageservice **out, char *err, size_t errlen)
{
	aurora_pageservice *ps = calloc(1, sizeof(*ps));

	*out = NULL;
	if (ps == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ps->store = store;
	ps->cfg = *cfg;
	if (ps->cfg.poll_ms == 0)
		ps->cfg.poll_ms = 5;
	if (ps->cfg.index_interval_ms == 0)
		ps->cfg.index_interval_ms = INDEX_MIN_INTERVAL_MS;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_cond_init(&ps->progress_cv, NULL);
	pthread_cond_init(&ps->kick_cv, NULL);
	if (cfg->walredo_postgres != NULL && cfg->walredo_postgres[0] != '\0')
	{
		aurora_redo_config rc;

		rc.postgres = cfg->walredo_postgres;
		rc.helpers = cfg->walredo_helpers;
		rc.timeout_ms = cfg->walredo_timeout_ms;
		rc.nice = 0;
		if (aurora_redo_pool_create(&rc, &ps->redo, ps->redo_err, sizeof(ps->redo_err)) != 0)
		{
			aurora_log("page service: no WAL-redo helpers: %s; pages that need redo will "
					   "fail with UNAVAILABLE", ps->redo_err);
			ps->redo = NULL;
		}
		else
		{
			/*
			 * Coalescing is background work: its one helper runs at a lower
			 * priority, so that under load appends, acknowledgements and
			 * page requests get the CPU first (DESIGN.md 8).
			 */
			rc.helpers = 1;
			rc.nice = BACKGROUND_NICE;
			if (aurora_redo_pool_create(&rc, &ps->redo_bg, ps->redo_err, sizeof(ps->redo_err)) != 0)
				ps->redo_bg = NULL;
		}
	}
	else
		snprintf(ps->redo_err, sizeof(ps->redo_err), "walredo_postgres is not set");
	if (pthread_create(&ps->thread, NULL, indexer_main, ps) != 0)
	{
		snprintf(err, errlen, "cannot start the page indexer thread");
		aurora_pageservice_stop(ps);
		return -1;
	}
	ps->thread_started = true;
	*out = ps;
	return 0;
}

void
aurora_pageservice_interrupt(aurora_pageservice *ps)
{
	if (ps == NULL)
		return;
	pthread_mutex_lock(&ps->mu);
	ps->stop = true;
	pthread_cond_broadcast(&ps->kick_cv);
	pthread_cond_broadcast(&ps->progress_cv);
	pthread_mutex_unlock(&ps->mu);
}

void
aurora_pageservice_stop(aurora_pageservice *ps)
{
	ps_seg	   *s;

	if (ps == NULL)
		return;
	pthread_mutex_lock(&ps->mu);
	ps->stop = true;
	pthread_cond_broadcast(&ps->kick_cv);
	pthread_cond_broadcast(&ps->progress_cv);
	pthread_mutex_unlock(&ps->mu);
	if (ps->thread_started)
		pthread_join(ps->thread, NULL);
	while ((s = ps->segs) != NULL)
	{
		ps->segs = s->next;
		aurora_pagestore_close(s->store);
		aurora_blockset_free(&s->dirty);
		aurora_blockset_free(&s->tail_blocks);
		pthread_mutex_destroy(&s->tail_mu);
		free(s->pending);
		free(s);
	}
	if (ps->redo != NULL)
		aurora_redo_pool_destroy(ps->redo);
	if (ps->redo_bg != NULL)
		aurora_redo_pool_destroy(ps->redo_bg);
	pthread_cond_destroy(&ps->progress_cv);
	pthread_cond_destroy(&ps->kick_cv);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

/* ---- requests ---- */

/*
 * Whether the unindexed tail (tail_mu held, reaching the request's LSN)
 * concerns a GETPAGE of block, or a REL_SIZE of its fork (whole_fork).  A
 * fork's size changes in the tail only by blocks written past its end
 * (relation events make the tail opaque).  So a block's page is concerned
 * when the tail touches it, or when it lies past the fork's end as
 * committed and the tail touches a later block of the fork; a fork's size
 * when the tail touches any of its blocks.
 */
static bool
tail_concerns(ps_seg *s, const aurora_block_ref *block, bool whole_fork)
{
	aurora_block_ref from = *block;
	bool		known,
				exists;
	uint32_t	nblocks;

	if (whole_fork)
	{
		from.blkno = 0;
		return aurora_blockset_holds_from(&s->tail_blocks, &from);
	}
	if (aurora_blockset_holds(&s->tail_blocks, block))
		return true;
	if (aurora_pagestore_rel_size(s->store, block->spc_oid, block->db_oid, block->rel_number,
								  block->fork, UINT64_MAX, &known, &exists, &nblocks) == 0 &&
		exists && block->blkno < nblocks)
		return false;
	return aurora_blockset_holds_from(&s->tail_blocks, block);
}

/*
 * Whether s can answer a GETPAGE of block (or a REL_SIZE of its fork:
 * whole_fork) at lsn: 0, AURORA_PAGE_WAIT (not yet), or an error code set
 * in res.  It can once the index covers lsn, or once the unindexed tail
 * reaches lsn without concerning the request (tail_concerns): then the
 * index as committed is what lsn sees of it.  Index commits are seconds
 * apart and each costs a sync; most requests are for blocks nobody just
 * changed (under pgbench: pages that fell out of the compute's cache).
 * *need_commit: only an index commit can answer it.
 */
static uint32_t
check_ready(ps_seg *s, uint64_t lsn, const aurora_block_ref *block, bool whole_fork,
			bool *need_commit, aurora_page_result *res)
{
	aurora_pagestore_pos pos;
	uint32_t	rc = AURORA_PAGE_WAIT;

	*need_commit = false;
	if (s->store == NULL)
	{
		set_error(res, AURORA_ERR_IO, "page store of this segment cannot be opened: %s",
				  s->open_err);
		return AURORA_ERR_IO;
	}
	aurora_pagestore_get_pos(s->store, &pos);
	if (pos.scl >= lsn)
		return 0;
	/*
	 * At or below the seed LSN the seeded images are the base: records
	 * ending there are not expected in the log, so only what the log already
	 * holds must be indexed.
	 */
	if (lsn <= aurora_pagestore_seeded_lsn(s->store) && !s->broken)
	{
		aurora_segment_stats st;

		aurora_segment_get_stats(s->seg, &st);
		if (pos.scl >= st.scl)
			return 0;
	}
	if (s->broken)
	{
		set_error(res, AURORA_ERR_CORRUPT, "%s", s->broken_msg);
		return AURORA_ERR_CORRUPT;
	}
	pthread_mutex_lock(&s->tail_mu);
	if (s->tail_opaque)
		*need_commit = true;
	else if (s->tail_end >= lsn)
	{
		if (tail_concerns(s, block, whole_fork))
			*need_commit = true;
		else
			rc = 0;
	}
	pthread_mutex_unlock(&s->tail_mu);
	return rc;
}

/* Ask the indexer for the tails now (ps->mu held); need_commit: and a commit. */
static void
kick_locked(aurora_pageservice *ps, bool need_commit)
{
	ps->kicked = true;
	ps->commit_wanted |= need_commit;
	pthread_cond_signal(&ps->kick_cv);
}

static uint32_t
not_ready(ps_seg *s, uint64_t lsn, aurora_page_result *res)
{
	aurora_segment_stats st;
	aurora_pagestore_pos pos;

	aurora_segment_get_stats(s->seg, &st);
	aurora_pagestore_get_pos(s->store, &pos);
	set_error(res, AURORA_ERR_NOT_READY, "segment is not complete to %X/%X in time "
			  "(SCL %X/%X, indexed to %X/%X)", LSN_ARGS(lsn), LSN_ARGS(st.scl), LSN_ARGS(pos.scl));
	return AURORA_ERR_NOT_READY;
}

/* check_ready, waiting at most wait_ms for the log and the indexer. */
static uint32_t
wait_indexed(aurora_pageservice *ps, ps_seg *s, uint64_t lsn, const aurora_block_ref *block,
			 bool whole_fork, uint32_t wait_ms, aurora_page_result *res)
{
	uint64_t	deadline;
	uint32_t	rc;
	bool		need_commit;

	if (wait_ms > AURORA_PAGE_WAIT_MAX_MS)
		wait_ms = AURORA_PAGE_WAIT_MAX_MS;
	deadline = (uint64_t) aurora_monotonic_ms() + wait_ms;
	while ((rc = check_ready(s, lsn, block, whole_fork, &need_commit, res)) == AURORA_PAGE_WAIT)
	{
		struct timespec ts;
		uint64_t	now = (uint64_t) aurora_monotonic_ms();

		if (now >= deadline)
			return not_ready(s, lsn, res);
		pthread_mutex_lock(&ps->mu);
		if (ps->stop)
		{
			pthread_mutex_unlock(&ps->mu);
			return not_ready(s, lsn, res);
		}
		kick_locked(ps, need_commit);
		/* SCL moves without telling us: look again at least every poll */
		deadline_after(&ts, (uint32_t) (deadline - now < ps->cfg.poll_ms ? deadline - now : ps->cfg.poll_ms));
		pthread_cond_timedwait(&ps->progress_cv, &ps->mu, &ts);
		pthread_mutex_unlock(&ps->mu);
	}
	return rc;
}

uint32_t
aurora_pageservice_ready(aurora_pageservice *ps, struct aurora_segment *seg, uint64_t lsn,
						 const aurora_block_ref *block, bool whole_fork,
						 aurora_page_result *res)
{
	ps_seg	   *s = get_seg(ps, seg);
	uint32_t	rc;
	bool		need_commit;

	memset(res, 0, sizeof(*res));
	if (s == NULL)
		return 0;				/* the request itself reports the missing geometry */
	rc = check_ready(s, lsn, block, whole_fork, &need_commit, res);
	if (rc == AURORA_PAGE_WAIT)
	{
		pthread_mutex_lock(&ps->mu);
		if (ps->stop)
			rc = not_ready(s, lsn, res);
		else
			kick_locked(ps, need_commit);
		pthread_mutex_unlock(&ps->mu);
	}
	return rc;
}

static bool
require_geometry(ps_seg *s, aurora_page_result *res)
{
	if (s == NULL)
	{
		set_error(res, AURORA_ERR_CONFLICT, "this segment has no volume geometry, so it "
				  "serves no pages");
		return false;
	}
	return true;
}

void
aurora_pageservice_getpage(aurora_pageservice *ps, struct aurora_segment *seg,
						   const aurora_getpage_req *req, aurora_page_result *res)
{
	ps_seg	   *s = get_seg(ps, seg);
	aurora_page_plan plan;
	aurora_page_resp *resp;
	uint32_t	code;
	const aurora_block_ref *b = &req->block;

	memset(res, 0, sizeof(*res));
	atomic_fetch_add(&ps->getpage_requests, 1);
	if (!require_geometry(s, res))
		return;
	if (aurora_block_pg(&s->geom, b) != s->pg_id)
	{
		set_error(res, AURORA_ERR_MALFORMED, "block %u/%u/%u/%u/%u belongs to PG %u, not %u",
				  b->spc_oid, b->db_oid, b->rel_number, b->fork, b->blkno,
				  aurora_block_pg(&s->geom, b), s->pg_id);
		return;
	}
	if (wait_indexed(ps, s, req->lsn, b, false, req->wait_ms, res) != 0)
		return;
	code = (uint32_t) aurora_pagestore_plan(s->store, b, req->lsn, &plan, res->message,
											sizeof(res->message));
	if (code != 0)
	{
		res->code = code;
		return;
	}
	resp = malloc(sizeof(*resp));
	if (resp == NULL)
	{
		aurora_page_plan_free(&plan);
		set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	code = materialize(ps, ps->redo, s, b, &plan, resp->page, res);
	aurora_page_plan_free(&plan);
	if (code != 0)
	{
		free(resp);
		return;
	}
	/* PageHeaderData on a little-endian host: pd_lsn {xlogid, xrecoff}, pd_checksum */
	resp->page_lsn = ((uint64_t) (resp->page[0] | resp->page[1] << 8 | resp->page[2] << 16 |
								  (uint32_t) resp->page[3] << 24) << 32) |
		(uint32_t) (resp->page[4] | resp->page[5] << 8 | resp->page[6] << 16 |
					(uint32_t) resp->page[7] << 24);
	resp->checksum = (uint16_t) (resp->page[8] | resp->page[9] << 8);
	res->body = malloc(AURORA_PAGE_RESP_SIZE);
	if (res->body == NULL)
	{
		free(resp);
		set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	res->len = aurora_page_resp_encode(resp, res->body, AURORA_PAGE_RESP_SIZE);
	res->type = AURORA_MSG_PAGE;
	free(resp);
}

void
aurora_pageservice_rel_size(aurora_pageservice *ps, struct aurora_segment *seg,
							const aurora_rel_size_req *req, aurora_page_result *res)
{
	ps_seg	   *s = get_seg(ps, seg);
	aurora_rel_size_resp r;
	bool		known;
	aurora_block_ref fork;

	memset(res, 0, sizeof(*res));
	if (!require_geometry(s, res))
		return;
	memset(&fork, 0, sizeof(fork));
	fork.spc_oid = req->spc_oid;
	fork.db_oid = req->db_oid;
	fork.rel_number = req->rel_number;
	fork.fork = req->fork;
	if (wait_indexed(ps, s, req->lsn, &fork, true, req->wait_ms, res) != 0)
		return;
	memset(&r, 0, sizeof(r));
	if (aurora_pagestore_rel_size(s->store, req->spc_oid, req->db_oid, req->rel_number,
								  req->fork, req->lsn, &known, &r.exists, &r.nblocks) != 0)
	{
		set_error(res, AURORA_ERR_IO, "cannot read the size of relation %u/%u/%u",
				  req->spc_oid, req->db_oid, req->rel_number);
		return;
	}
	res->body = malloc(8);
	if (res->body == NULL)
	{
		set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	res->len = aurora_rel_size_resp_encode(&r, res->body, 8);
	res->type = AURORA_MSG_REL_SIZE;
}

void
aurora_pageservice_seed(aurora_pageservice *ps, struct aurora_segment *seg, uint64_t lsn,
						const aurora_seed_page *pages, int n, aurora_page_result *res)
{
	ps_seg	   *s = get_seg(ps, seg);

	memset(res, 0, sizeof(*res));
	if (!require_geometry(s, res))
		return;
	if (s->store == NULL)
	{
		set_error(res, AURORA_ERR_IO, "page store of this segment cannot be opened: %s",
				  s->open_err);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		const aurora_block_ref *b = &pages[i].block;

		if (b->blkno != AURORA_SEED_FORK_EXISTS && aurora_block_pg(&s->geom, b) != s->pg_id)
		{
			set_error(res, AURORA_ERR_MALFORMED, "page %d (block %u/%u/%u/%u/%u) belongs to "
					  "PG %u, not %u; nothing was stored", i, b->spc_oid, b->db_oid,
					  b->rel_number, b->fork, b->blkno, aurora_block_pg(&s->geom, b), s->pg_id);
			return;
		}
	}
	if (aurora_pagestore_seed(s->store, lsn, pages, n, res->message, sizeof(res->message)) != 0)
	{
		res->code = AURORA_ERR_IO;
		return;
	}
	atomic_fetch_add(&ps->pages_seeded, (uint64_t) n);
	res->body = malloc(4);
	if (res->body == NULL)
	{
		set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	res->len = aurora_seed_ack_encode((uint32_t) n, res->body, 4);
	res->type = AURORA_MSG_SEED_ACK;
}

bool
aurora_pageservice_check_envelopes(const aurora_log_record *recs, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++)
	{
		aurora_walmeta m;
		char		why[200];

		if (aurora_walmeta_decode(recs[i].payload, recs[i].len, &m, why, sizeof(why)) != 0)
		{
			snprintf(err, errlen, "record [%X/%X, %X/%X) has no valid envelope (%s); "
					 "nothing was written", LSN_ARGS(recs[i].start_lsn),
					 LSN_ARGS(recs[i].end_lsn), why);
			return false;
		}
	}
	return true;
}

void
aurora_pageservice_get_stats(aurora_pageservice *ps, aurora_pageservice_stats *out)
{
	aurora_redo_stats rs;

	memset(out, 0, sizeof(*out));
	if (ps == NULL)
		return;
	out->redo_configured = ps->cfg.walredo_postgres != NULL && ps->cfg.walredo_postgres[0] != '\0';
	out->coalesce_threshold = ps->cfg.coalesce_threshold;
	out->records_indexed = atomic_load(&ps->records_indexed);
	out->getpage_requests = atomic_load(&ps->getpage_requests);
	out->pages_seeded = atomic_load(&ps->pages_seeded);
	out->images_written = atomic_load(&ps->images_written);
	out->redo_failures = atomic_load(&ps->redo_failures);
	out->index_errors = atomic_load(&ps->index_errors);
	out->index_backlog_bytes = atomic_load(&ps->index_backlog_bytes);
	out->coalesce_backlog = atomic_load(&ps->coalesce_backlog);
	if (ps->redo != NULL)
	{
		aurora_redo_get_stats(ps->redo, &rs);
		out->records_applied = rs.records_applied;
	}
	if (ps->redo_bg != NULL)
	{
		aurora_redo_get_stats(ps->redo_bg, &rs);
		out->records_applied += rs.records_applied;
	}
}

uint64_t
aurora_pageservice_seeded_lsn(aurora_pageservice *ps, struct aurora_segment *seg)
{
	ps_seg	   *s;

	if (ps == NULL || (s = get_seg(ps, seg)) == NULL || s->store == NULL)
		return 0;
	return aurora_pagestore_seeded_lsn(s->store);
}

void
aurora_pageservice_segment_stats(aurora_pageservice *ps, struct aurora_segment *seg,
								 uint64_t *indexed_lsn, uint64_t *images)
{
	ps_seg	   *s;

	*indexed_lsn = 0;
	*images = 0;
	if (ps == NULL)
		return;
	pthread_mutex_lock(&ps->mu);
	for (s = ps->segs; s != NULL; s = s->next)
		if (s->seg == seg)
			break;
	pthread_mutex_unlock(&ps->mu);
	if (s != NULL && s->store != NULL)
	{
		aurora_pagestore_pos pos;
		aurora_pagestore_stats st;

		aurora_pagestore_get_pos(s->store, &pos);
		aurora_pagestore_get_stats(s->store, &st);
		*indexed_lsn = pos.scl;
		*images = st.images;
	}
}

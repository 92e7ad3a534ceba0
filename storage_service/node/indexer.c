/*
 * indexer.c - the page service's background thread (pageservice_int.h):
 * indexing every segment's log into its page store, scanning the unindexed
 * tail for waiting requests, and the coalescing rounds of coalesce.c.
 *
 * One thread for every segment: for each segment with a geometry whose SCL
 * is past what its page store has indexed, it reads the chain records after
 * the indexed position (aurora_segment_read, in LSN order, only start <
 * SCL: exactly the unbroken chain), decodes each envelope and indexes it in
 * one LMDB transaction per batch together with the new position.  The
 * append path never waits for it.  When a request waits (pageservice.c
 * kicks the thread), it first decodes the records after the last index
 * commit into the set of blocks they touch (tail_scan), so that requests
 * the tail does not concern need no commit.  A segment is committed at
 * most every index_interval_ms unless such a request needs it.  The thread
 * runs at BACKGROUND_NICE: appends, acknowledgements and page requests get
 * the CPU first (docs/architecture.md, "The storage node").
 *
 * A record whose envelope does not decode stops indexing of that segment
 * (logged once with its LSN).  LOG_APPEND refuses such records up front,
 * so only records that reached the log another way (an older node) can do
 * this.
 */
#define _DEFAULT_SOURCE

#include "pageservice_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "segment.h"
#include "segment_table.h"
#include "util.h"
#include "walmeta.h"

/* payload bytes read per indexing batch (one LMDB commit each) */
#define INDEX_BATCH_BYTES	(4u << 20)
/*
 * A pass that found nothing to do doubles the indexer's sleep, from poll_ms
 * up to this: an idle node (or one whose only news is appends it will index
 * later anyway) should not wake 200 times a second.  Requests that wait for
 * the index kick the thread, so the longer sleep never delays a reader;
 * it stays under COALESCE_IDLE_MS so an idle segment is still noticed.
 */
#define IDLE_POLL_MAX_MS	100

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
		ps_seg	   *s = ps_get_seg(ps, l->v[i]);
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

void *
ps_indexer_main(void *arg)
{
	aurora_pageservice *ps = arg;
	uint32_t	sleep_ms = ps->cfg.poll_ms;

	/* background work: this thread yields to the foreground */
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

		pthread_mutex_lock(&ps->work_mu);
		aurora_segment_table_foreach(ps->store, collect_seg, &l);
		now = (uint64_t) aurora_monotonic_ms();
		for (size_t i = 0; i < l.n; i++)
		{
			ps_seg	   *s = ps_get_seg(ps, l.v[i]);
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
			ps_seg	   *s = ps_get_seg(ps, l.v[i]);

			if (s != NULL && s->store != NULL && ps_coalesce_segment(ps, s, now))
				coalesced = true;
		}
		publish_backlog(ps, &l);
		pthread_mutex_unlock(&ps->work_mu);
		free(l.v);

		if (progress || coalesced || urgent)
			sleep_ms = ps->cfg.poll_ms;
		else if (sleep_ms < IDLE_POLL_MAX_MS)
			sleep_ms = sleep_ms * 2 < IDLE_POLL_MAX_MS ? sleep_ms * 2 : IDLE_POLL_MAX_MS;
		pthread_mutex_lock(&ps->mu);
		if (!progress && !ps->kicked && !ps->stop)
		{
			ps_deadline_after(&ts, sleep_ms);
			pthread_cond_timedwait(&ps->kick_cv, &ps->mu, &ts);
		}
		pthread_mutex_unlock(&ps->mu);
	}
	return NULL;
}


/*
 * pageservice.c - the page service's requests and life cycle
 * (pageservice.h): GETPAGE, REL_SIZE and SEED_PAGES as the server's page
 * threads run them, and the per-segment state every part of the service
 * finds through ps_get_seg.
 *
 * The work is done in the background: node/indexer.c feeds each segment's
 * log into its page store, node/coalesce.c shortens long record chains
 * (docs/architecture.md, "The storage node").  A request that needs an LSN
 * not yet indexed kicks the indexer awake and either waits on progress_cv,
 * bounded by its wait_ms (aurora_pageservice_getpage & co.), or is asked
 * again later by the server (aurora_pageservice_ready), which keeps waiting
 * requests off its page threads.  Kicked, the indexer first decodes the
 * unindexed tail of the log (the records after the last index commit) into
 * a set of the blocks they touch, without writing anything: a request whose
 * block (or relation fork) that tail does not touch is answered from the
 * index as committed, which is what its LSN sees of it (check_ready).  Only
 * a request the tail concerns makes the indexer commit at once instead of
 * at most every index_interval_ms.  Under pgbench most page reads are of
 * blocks nobody just changed (pages that fell out of the compute's cache),
 * and each forced commit was an fdatasync on the read's path.
 *
 * A segment whose indexing stopped at a record with a malformed envelope
 * answers CORRUPT for later LSNs; earlier ones are still served.
 */
#define _DEFAULT_SOURCE

#include "pageservice.h"
#include "pageservice_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockset.h"
#include "log.h"
#include "pagestore.h"
#include "redo.h"
#include "segment.h"
#include "segment_table.h"
#include "util.h"
#include "walmeta.h"

/* blocks remembered per segment for coalescing before new ones are dropped */
#define DIRTY_MAX			(1u << 20)
/* blocks of the unindexed tail remembered before it answers nothing more */
#define TAIL_BLOCKS_MAX		(1u << 18)
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

void
ps_deadline_after(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	aurora_timespec_add_ms(ts, ms);
}

void
ps_set_error(aurora_page_result *res, uint32_t code, const char *fmt,...)
{
	va_list		ap;

	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

/*
 * The segment's log now ends its chain at scl, below what the store may
 * have indexed: drop every entry above the chain record before scl and move
 * the position (and the unindexed tail) back there, so the indexer indexes
 * again whatever the log holds from there on.  Images coalescing made and
 * not yet committed are dropped with them (the log rebuilds them).  Caller
 * holds ps->mu while attaching s (not yet in the list: nobody else can hold
 * its tail_mu, so taking it there breaks no lock order) or ps->work_mu (a
 * truncation), so the indexer is not using s.
 */
void
ps_discard_beyond_log(ps_seg *s, uint64_t scl)
{
	aurora_pagestore_pos pos,
				back;
	aurora_segment_meta meta;
	aurora_log_record rec;
	char		err[300];

	aurora_pagestore_get_pos(s->store, &pos);
	if (pos.scl <= scl)
		return;
	aurora_segment_get_meta(s->seg, &meta);
	memset(&back, 0, sizeof(back));
	if (aurora_segment_record_before(s->seg, scl + 1, &rec))
	{
		back.last_start = rec.start_lsn;
		back.last_end = rec.end_lsn;
	}
	back.scl = back.last_end > meta.base_lsn ? back.last_end : meta.base_lsn;
	aurora_log("page service: segment %016" PRIx64 "-%u: log ends at %X/%X but the "
			   "index reached %X/%X; dropping index entries above %X/%X",
			   s->volume_id, s->pg_id, LSN_ARGS(scl), LSN_ARGS(pos.scl), LSN_ARGS(back.scl));
	if (aurora_pagestore_discard_above(s->store, back.scl, &back, err, sizeof(err)) != 0)
		aurora_log("page service: %s", err);
	s->n_pending = 0;
	if (atomic_load(&s->broken) && s->broken_start >= back.scl)
		atomic_store(&s->broken, false);	/* the bad record is gone with the rest */
	aurora_pagestore_get_pos(s->store, &pos);
	pthread_mutex_lock(&s->tail_mu);
	aurora_blockset_clear(&s->tail_blocks);
	s->tail_end = pos.scl;
	s->tail_opaque = false;
	pthread_mutex_unlock(&s->tail_mu);
	s->tail_last_start = pos.last_start;
}

int
aurora_pageservice_truncate(aurora_pageservice *ps, struct aurora_segment *seg, char *err,
							size_t errlen)
{
	ps_seg	   *s;
	aurora_segment_stats st;

	(void) err;
	(void) errlen;
	if (ps == NULL)
		return 0;
	pthread_mutex_lock(&ps->work_mu);
	s = ps_get_seg(ps, seg);
	if (s != NULL && s->store != NULL)
	{
		aurora_segment_get_stats(seg, &st);
		ps_discard_beyond_log(s, st.scl);
	}
	pthread_mutex_unlock(&ps->work_mu);
	return 0;
}

ps_seg *
ps_get_seg(aurora_pageservice *ps, struct aurora_segment *seg)
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
	pthread_mutex_init(&s->tail_mu, NULL);
	aurora_blockset_init(&s->tail_blocks, TAIL_BLOCKS_MAX);
	s->volume_id = meta.volume_id;
	s->pg_id = meta.pg_id;
	s->geom.n_pgs = meta.n_pgs;
	s->geom.blocks_per_segment = meta.blocks_per_segment;
	aurora_segment_table_segment_path(ps->store, meta.volume_id, meta.pg_id, dir, sizeof(dir) - 8);
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
		/* the log was cut below what was indexed (torn tail, truncation): forget the rest */
		ps_discard_beyond_log(s, st.scl);
		if (rebuilt)
			aurora_log("page service: segment %016" PRIx64 "-%u: page index will be rebuilt "
					   "from the log (seeded images are lost)", meta.volume_id, meta.pg_id);
		aurora_pagestore_get_pos(s->store, &pos);
		s->tail_end = pos.scl;
		s->tail_last_start = pos.last_start;
	}
	/* a truncation committed before a restart is finished once the store is cut too */
	if (meta.cut_pending)
	{
		char		err[300];

		if (aurora_segment_truncate_done(seg, err, sizeof(err)) != AURORA_SEG_OK)
			aurora_log("page service: %s", err);
	}
	s->next = ps->segs;
	ps->segs = s;
	pthread_mutex_unlock(&ps->mu);
	return s;
}

int
aurora_pageservice_start(struct aurora_segment_table *store, const aurora_pageservice_config *cfg,
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
	pthread_mutex_init(&ps->work_mu, NULL);
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
			 * page requests get the CPU first (docs/architecture.md, "The
			 * storage node").
			 */
			rc.helpers = 1;
			rc.nice = BACKGROUND_NICE;
			if (aurora_redo_pool_create(&rc, &ps->redo_bg, ps->redo_err, sizeof(ps->redo_err)) != 0)
				ps->redo_bg = NULL;
		}
	}
	else
		snprintf(ps->redo_err, sizeof(ps->redo_err), "walredo_postgres is not set");
	if (pthread_create(&ps->thread, NULL, ps_indexer_main, ps) != 0)
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
	aurora_pageservice_interrupt(ps);
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
	pthread_mutex_destroy(&ps->work_mu);
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
		ps_set_error(res, AURORA_ERR_IO, "page store of this segment cannot be opened: %s",
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
		ps_set_error(res, AURORA_ERR_CORRUPT, "%s", s->broken_msg);
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
	ps_set_error(res, AURORA_ERR_NOT_READY, "segment is not complete to %X/%X in time "
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
		ps_deadline_after(&ts, (uint32_t) (deadline - now < ps->cfg.poll_ms ? deadline - now : ps->cfg.poll_ms));
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
	ps_seg	   *s = ps_get_seg(ps, seg);
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
		ps_set_error(res, AURORA_ERR_CONFLICT, "this segment has no volume geometry, so it "
				  "serves no pages");
		return false;
	}
	return true;
}

void
aurora_pageservice_getpage(aurora_pageservice *ps, struct aurora_segment *seg,
						   const aurora_getpage_req *req, aurora_page_result *res)
{
	ps_seg	   *s = ps_get_seg(ps, seg);
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
		ps_set_error(res, AURORA_ERR_MALFORMED, "block %u/%u/%u/%u/%u belongs to PG %u, not %u",
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
		ps_set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	code = ps_materialize(ps, ps->redo, s, b, &plan, resp->page, res);
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
		ps_set_error(res, AURORA_ERR_INTERNAL, "out of memory");
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
	ps_seg	   *s = ps_get_seg(ps, seg);
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
		ps_set_error(res, AURORA_ERR_IO, "cannot read the size of relation %u/%u/%u",
				  req->spc_oid, req->db_oid, req->rel_number);
		return;
	}
	res->body = malloc(8);
	if (res->body == NULL)
	{
		ps_set_error(res, AURORA_ERR_INTERNAL, "out of memory");
		return;
	}
	res->len = aurora_rel_size_resp_encode(&r, res->body, 8);
	res->type = AURORA_MSG_REL_SIZE;
}

void
aurora_pageservice_seed(aurora_pageservice *ps, struct aurora_segment *seg, uint64_t lsn,
						const aurora_seed_page *pages, int n, aurora_page_result *res)
{
	ps_seg	   *s = ps_get_seg(ps, seg);

	memset(res, 0, sizeof(*res));
	if (!require_geometry(s, res))
		return;
	if (s->store == NULL)
	{
		ps_set_error(res, AURORA_ERR_IO, "page store of this segment cannot be opened: %s",
				  s->open_err);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		const aurora_block_ref *b = &pages[i].block;

		if (b->blkno != AURORA_SEED_FORK_EXISTS && aurora_block_pg(&s->geom, b) != s->pg_id)
		{
			ps_set_error(res, AURORA_ERR_MALFORMED, "page %d (block %u/%u/%u/%u/%u) belongs to "
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
		ps_set_error(res, AURORA_ERR_INTERNAL, "out of memory");
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

	if (ps == NULL || (s = ps_get_seg(ps, seg)) == NULL || s->store == NULL)
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

/*
 * coalesce.c - rebuilding pages from the log, and coalescing
 * (pageservice_int.h): the "coalescing" of the Aurora paper, done by the
 * indexer thread (indexer.c) in rounds between its indexing passes.
 *
 * ps_materialize reads a plan's records back from the segment log and has
 * a WAL-redo helper apply them; GETPAGE (pageservice.c) uses it with the
 * foreground pool, coalescing with its own one-helper pool at
 * BACKGROUND_NICE.  Coalescing: blocks touched by the indexer are
 * remembered; when one's chain of records after its newest image (or
 * WILL_INIT record) is longer than coalesce_threshold, the page at its
 * newest record is rebuilt and stored as an image, so later requests apply
 * fewer records; one whose newest record sets it whole (a full-page image,
 * a page init) is stored as an image at once.  Images are rebuildable, but
 * every LMDB commit syncs (MDB_NOMETASYNC), so they wait to share the next
 * index commit (their own only when many are waiting or the segment is
 * idle).  The set of touched blocks is in memory only: after a restart a
 * block is coalesced again the next time a record touches it.
 */
#define _DEFAULT_SOURCE

#include "pageservice_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "segment.h"
#include "util.h"
#include "walmeta.h"

/* blocks coalesced per segment per round, so waiting requests come first */
#define COALESCE_PER_ROUND	16
/* images that wait for an index commit before they get one of their own */
#define PENDING_IMAGES_MAX	(8 * COALESCE_PER_ROUND)
/*
 * Coalescing yields to appends (docs/architecture.md, "The storage node":
 * background work is throttled under foreground load).  A segment whose SCL moved within the last
 * COALESCE_IDLE_MS is busy: it gets one round every COALESCE_BUSY_ROUND_MS,
 * enough to keep chains bounded; an idle one gets a round every loop.  Under
 * pgbench on the 2-core reference machine coalescing every loop took about
 * two fifths of the indexer thread's CPU, most of it rebuilding pages no one
 * asked for yet.
 */
#define COALESCE_IDLE_MS	200
#define COALESCE_BUSY_ROUND_MS	1000
#define COALESCE_LOG_MS		10000

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

uint32_t
ps_materialize(aurora_pageservice *ps, aurora_redo_pool *pool, ps_seg *s,
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
		ps_set_error(res, AURORA_ERR_UNAVAILABLE, "block %u needs %d records applied but this node "
				  "has no WAL-redo helper: %s", block->blkno, plan->n_recs, ps->redo_err);
		return AURORA_ERR_UNAVAILABLE;
	}
	recs = calloc((size_t) plan->n_recs, sizeof(*recs));
	f = calloc((size_t) plan->n_recs, sizeof(*f));
	if (recs == NULL || f == NULL)
	{
		free(recs);
		free(f);
		ps_set_error(res, AURORA_ERR_INTERNAL, "out of memory");
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
			ps_set_error(res, code, "cannot read record at %X/%X back from the log%s",
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
		ps_set_error(res, code, "redo of block %u/%u/%u/%u/%u failed: %s", block->spc_oid,
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
bool
ps_coalesce_segment(aurora_pageservice *ps, ps_seg *s, uint64_t now)
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
		if (ps_materialize(ps, ps->redo_bg, s, b, &plan, s->pending[s->n_pending].page, &res) == 0)
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

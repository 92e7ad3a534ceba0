/*
 * gossip.c - background gap filling between a PG's segments (gossip.h).
 *
 * One thread, one round per interval, segments visited one after another.
 * Connections to peers are kept open (NNG redials a restarted peer by
 * itself) and shared by every segment that names the same URL.  A peer that
 * does not answer is left alone for a growing back-off, so a dead node
 * costs one timeout now and then, not one per segment per round.
 *
 * The fetch rule, per segment and round:
 *   target = the highest same-epoch peer SCL seen in the previous round
 *   if own SCL < target: READ_LOG [own SCL, best peer SCL now) from that
 *   peer, in pieces of at most max_body / 2 bytes, appending and syncing
 *   each piece before asking for the next.
 * Every record with start below a peer's SCL belongs to that peer's
 * unbroken chain, so the range is exactly what we may be missing; records
 * we hold already come back as duplicates and are skipped by the append.
 *
 * Volume epochs (PROTOCOL.md 5.7): a peer is a source only when both
 * segments are at the same volume epoch, truncated for it (truncated
 * epoch == volume epoch on both sides).  A segment that missed a
 * truncation (it was down or cut off while the new compute opened the
 * volume) sees a peer truncated at a higher epoch with a history that
 * extends its own, and applies that history exactly as a TRUNCATE_REQ
 * would (truncation.h): its ragged edge is gone before it fetches anything.
 */
#define _POSIX_C_SOURCE 200809L

#include "gossip.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "logmsg.h"
#include "segment.h"
#include "segment_table.h"
#include "truncation.h"
#include "util.h"
#include "wire.h"

#define BACKOFF_FIRST_MS	250.0
#define BACKOFF_MAX_MS		5000.0
#define FETCH_MAX_BYTES		(4u << 20)
/*
 * A round in which every segment was in step with its peers doubles the
 * wait before the next one, up to this many intervals; any segment behind,
 * holed or fetching brings the interval back.  Each probe costs both nodes
 * a request's worth of thread hand-offs, and on an idle cluster six nodes
 * probing five peers four times a second were the only thing running.  A
 * segment that misses a batch under writes gets a hole at the next batch,
 * so the longer wait applies only to a segment that missed the very last
 * writes of a quiet volume.
 */
#define QUIET_MAX_INTERVALS	8

typedef struct peer
{
	char		url[AURORA_URL_MAX + 1];
	aurora_conn *conn;
	int			failures;		/* consecutive transport failures */
	double		retry_at_ms;	/* monotonic; skip the peer until then */
} peer;

struct aurora_gossip
{
	struct aurora_segment_table *store;
	char		self[AURORA_NODE_ID_MAX + 1];
	uint32_t	interval_ms;
	uint32_t	timeout_ms;
	uint32_t	max_body;
	struct aurora_pageservice *pages;
	struct aurora_start_states *states;
	uint64_t	next_request_id;
	bool		round_in_step;	/* this round: every segment in step so far */

	pthread_t	thread;
	bool		thread_started;
	pthread_mutex_t mu;			/* stopping and the peer table */
	pthread_cond_t cv;
	bool		stopping;
	peer	  **peers;			/* individually allocated: pointers stay valid */
	int			n_peers;
	int			cap_peers;
};

static bool
stopping(aurora_gossip *g)
{
	bool		s;

	pthread_mutex_lock(&g->mu);
	s = g->stopping;
	pthread_mutex_unlock(&g->mu);
	return s;
}

/* The shared connection to url, opened on first use (NULL: bad URL / OOM). */
static peer *
peer_get(aurora_gossip *g, const char *url)
{
	peer	   *p = NULL;
	char		err[256];
	int			i;

	pthread_mutex_lock(&g->mu);
	for (i = 0; i < g->n_peers && p == NULL; i++)
		if (strcmp(g->peers[i]->url, url) == 0)
			p = g->peers[i];
	if (p != NULL || g->stopping)
		goto out;
	if (g->n_peers == g->cap_peers)
	{
		int			cap = g->cap_peers ? g->cap_peers * 2 : 8;
		peer	  **grown = realloc(g->peers, (size_t) cap * sizeof(*grown));

		if (grown == NULL)
			goto out;
		g->peers = grown;
		g->cap_peers = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto out;
	snprintf(p->url, sizeof(p->url), "%s", url);
	if (aurora_conn_open(url, &p->conn, err, sizeof(err)) != 0)
	{
		aurora_log("gossip: cannot use peer %s: %s", url, err);
		/* keep the entry so the failure is not retried (and logged) every round */
		p->conn = NULL;
	}
	g->peers[g->n_peers++] = p;
out:
	pthread_mutex_unlock(&g->mu);
	return p;
}

static void
peer_failed(peer *p, const char *why)
{
	double		backoff = BACKOFF_FIRST_MS;
	int			i;

	if (p->failures == 0)
		aurora_log("gossip: peer %s does not answer (%s); retrying with back-off", p->url, why);
	p->failures++;
	for (i = 1; i < p->failures && backoff < BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	p->retry_at_ms = aurora_monotonic_ms() + backoff;
}

static void
peer_answered(peer *p)
{
	if (p->failures > 0)
		aurora_log("gossip: peer %s answers again", p->url);
	p->failures = 0;
	p->retry_at_ms = 0;
}

/*
 * Send one request about meta's segment (our epochs in the header) and
 * decode the reply.  Returns 0 with *reply (free it) and rh/rbody set; 1 if
 * the peer answered with something unusable (logged, counted as an
 * answer); -1 on a transport failure (peer marked failed).
 */
static int
peer_call(aurora_gossip *g, peer *p, const aurora_segment_meta *meta, uint16_t type,
		  const uint8_t *body, size_t body_len,
		  aurora_header *rh, uint8_t **reply, const uint8_t **rbody)
{
	aurora_header h;
	uint8_t		req[AURORA_HEADER_SIZE + 64];
	size_t		len,
				reply_len;
	char		err[256];

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = meta->volume_id;
	h.pg_id = meta->pg_id;
	h.volume_epoch = meta->volume_epoch;
	h.membership_epoch = meta->membership_epoch;
	h.request_id = ++g->next_request_id;
	len = aurora_encode(&h, body, body_len, req, sizeof(req));
	if (aurora_conn_request(p->conn, (int) g->timeout_ms, req, len, reply, &reply_len,
							err, sizeof(err)) != 0)
	{
		if (!stopping(g))
			peer_failed(p, err);
		return -1;
	}
	peer_answered(p);
	if (aurora_decode(*reply, reply_len, AURORA_CLIENT_MAX_REPLY, rh, rbody) != 0 ||
		rh->request_id != h.request_id)
	{
		aurora_log("gossip: peer %s sent an undecodable reply to %s", p->url,
				   aurora_msg_type_name(type));
		free(*reply);
		return 1;
	}
	return 0;
}

/*
 * The peer p is truncated at a higher epoch than seg: if its history
 * extends ours, apply it (exactly like a TRUNCATE_REQ).  True if seg
 * changed.
 */
static bool
adopt_truncation(aurora_gossip *g, peer *p, aurora_segment *seg, const aurora_segment_meta *meta,
				 const aurora_segment_info *info)
{
	aurora_trunc_entry *theirs = NULL,
			   *ours = NULL;
	aurora_segment_truncation res;
	char		err[300];
	int			n_ours;
	bool		changed = false;
	int			rc;

	if (info->history.n == 0)
		return false;
	theirs = malloc((size_t) info->history.n * sizeof(*theirs));
	ours = malloc(AURORA_TRUNC_HISTORY_MAX * sizeof(*ours));
	if (theirs == NULL || ours == NULL)
		goto out;
	aurora_trunc_list_copy(&info->history, theirs);
	n_ours = aurora_segment_get_history(seg, ours, AURORA_TRUNC_HISTORY_MAX);
	/* a peer whose history is not ours extended, or that ends below our epoch: not ours to follow */
	if (theirs[info->history.n - 1].epoch != info->truncated_epoch ||
		info->truncated_epoch < meta->volume_epoch ||
		!aurora_trunc_history_check(theirs, info->history.n, NULL, 0) ||
		!aurora_trunc_history_is_prefix(ours, n_ours, theirs, info->history.n))
		goto out;
	rc = aurora_truncation_apply(seg, g->pages, g->states, theirs, info->history.n, &res, err, sizeof(err));
	if (rc != AURORA_SEG_OK)
	{
		aurora_log("gossip: volume %016" PRIx64 " PG %" PRIu32 ": cannot adopt the truncation "
				   "of %s: %s", meta->volume_id, meta->pg_id, p->url, err);
		goto out;
	}
	aurora_log("gossip: volume %016" PRIx64 " PG %" PRIu32 ": adopted truncation epoch %" PRIu64
			   " at LSN %" PRIu64 " from %s, dropped %" PRIu64 " records",
			   meta->volume_id, meta->pg_id, info->truncated_epoch,
			   theirs[info->history.n - 1].lsn, p->url, res.records_dropped);
	changed = true;
out:
	free(theirs);
	free(ours);
	return changed;
}

/*
 * Ask a peer for its segment's SCL.  Returns true with *scl set if the peer
 * holds the segment in exactly our epochs and both are truncated for the
 * volume epoch.  *adopted: the peer's truncation was applied to seg (its
 * meta changed: this round is over for it).
 */
static bool
probe(aurora_gossip *g, peer *p, aurora_segment *seg, const aurora_segment_meta *meta,
	  uint64_t *scl, bool *adopted)
{
	aurora_header rh;
	uint8_t    *reply;
	const uint8_t *body;
	aurora_segment_info info;
	bool		ok = false;

	if (peer_call(g, p, meta, AURORA_MSG_SEGMENT_INFO_REQ, NULL, 0, &rh, &reply, &body) != 0)
		return false;
	if (rh.type == AURORA_MSG_SEGMENT_INFO &&
		aurora_segment_info_decode(body, rh.body_len, &info) == 0)
	{
		if (info.truncated_epoch > meta->truncated_epoch &&
			rh.volume_epoch == info.truncated_epoch)
			*adopted = adopt_truncation(g, p, seg, meta, &info);
		else if (rh.volume_epoch == meta->volume_epoch &&
				 rh.membership_epoch == meta->membership_epoch &&
				 info.truncated_epoch == rh.volume_epoch &&
				 meta->truncated_epoch == meta->volume_epoch && !meta->cut_pending)
		{
			*scl = info.scl;
			ok = true;
		}
	}
	/* NO_SEGMENT, another epoch, an older node: simply not a source this round */
	free(reply);
	return ok;
}

/* Fetch [from, to) from p into seg; returns the number of new records. */
static uint64_t
fetch(aurora_gossip *g, peer *p, aurora_segment *seg, const aurora_segment_meta *meta,
	  uint64_t from, uint64_t to)
{
	uint64_t	fetched = 0;
	uint32_t	budget = g->max_body / 2 < FETCH_MAX_BYTES ? g->max_body / 2 : FETCH_MAX_BYTES;

	while (from < to && !stopping(g))
	{
		aurora_read_log rl = {.from_lsn = from,.to_lsn = to,.max_bytes = budget};
		uint8_t		body[32];
		size_t		body_len = aurora_read_log_encode(&rl, body, sizeof(body));
		aurora_header rh;
		uint8_t    *reply;
		const uint8_t *rbody;
		aurora_read_log_resp resp;
		char		err[256];
		int			n_new = 0;
		int			rc;

		if (peer_call(g, p, meta, AURORA_MSG_READ_LOG, body, body_len, &rh, &reply, &rbody) != 0)
			break;
		if (rh.type != AURORA_MSG_READ_LOG_RESP ||
			aurora_read_log_resp_decode(rbody, rh.body_len, &resp) != 0)
		{
			aurora_error_body e;

			if (rh.type == AURORA_MSG_ERROR &&
				aurora_error_body_decode(rbody, rh.body_len, &e) == 0)
				aurora_log("gossip: PG %" PRIu32 ": READ_LOG from %s failed: %s: %s",
						   meta->pg_id, p->url, aurora_error_name(e.code), e.message);
			else
				aurora_log("gossip: PG %" PRIu32 ": bad READ_LOG reply from %s",
						   meta->pg_id, p->url);
			free(reply);
			break;
		}
		if (resp.n == 0)
		{
			free(resp.recs);
			free(reply);
			break;
		}
		rc = aurora_segment_append(seg, resp.recs, resp.n, g->max_body, &n_new,
								   err, sizeof(err));
		if (rc == AURORA_SEG_OK)
			rc = aurora_segment_sync(seg, err, sizeof(err));
		from = resp.recs[resp.n - 1].start_lsn + 1;
		free(resp.recs);
		free(reply);
		if (rc != AURORA_SEG_OK)
		{
			/* a peer's records that contradict ours are a real inconsistency: say so */
			aurora_log("gossip: PG %" PRIu32 ": records from %s refused: %s",
					   meta->pg_id, p->url, err);
			break;
		}
		fetched += (uint64_t) n_new;
		if (!resp.truncated)
			break;
	}
	return fetched;
}

static int
gossip_segment(void *arg, aurora_segment *seg)
{
	aurora_gossip *g = arg;
	aurora_segment_meta meta;
	aurora_segment_stats st;
	peer	   *source = NULL;
	bool		adopted = false;
	uint64_t	best = 0;
	uint64_t	fetched = 0;
	int			answered = 0;
	int			i;

	if (stopping(g))
		return 1;
	aurora_segment_get_meta(seg, &meta);
	aurora_segment_get_stats(seg, &st);

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		peer	   *p;
		uint64_t	scl;

		if (i == (int) meta.replica_index || strcmp(meta.members[i].node_id, g->self) == 0)
			continue;
		p = peer_get(g, meta.members[i].url);
		if (p == NULL || p->conn == NULL || aurora_monotonic_ms() < p->retry_at_ms)
			continue;
		if (!probe(g, p, seg, &meta, &scl, &adopted))
		{
			if (adopted)
			{
				/* new epochs and log: gossip normally from the next round on */
				g->round_in_step = false;
				aurora_segment_note_gossip(seg, 0, 0);
				return 0;
			}
			continue;
		}
		answered++;
		if (scl > best)
		{
			best = scl;
			source = p;
		}
	}

	/* st.peer_scl is what the previous round saw: fetch only what stayed missing */
	if (source != NULL && st.scl < st.peer_scl && st.scl < best)
	{
		aurora_segment_stats after;

		fetched = fetch(g, source, seg, &meta, st.scl, best);
		aurora_segment_get_stats(seg, &after);
		if (fetched > 0)
			aurora_log("gossip: volume %016" PRIx64 " PG %" PRIu32 ": fetched %" PRIu64
					   " records from %s, SCL %" PRIu64 " -> %" PRIu64 " (peer SCL %" PRIu64 ")",
					   meta.volume_id, meta.pg_id, fetched, source->url, st.scl, after.scl, best);
	}
	aurora_segment_note_gossip(seg, best, fetched);
	/* in step: nothing missing now, and not behind what peers held a round ago */
	if (answered == 0 || fetched > 0 || st.n_holes > 0 || st.scl < st.peer_scl ||
		(st.peer_scl == 0 && best > st.scl))
		g->round_in_step = false;
	return 0;
}

void
aurora_gossip_round(aurora_gossip *g)
{
	g->round_in_step = true;
	aurora_segment_table_foreach(g->store, gossip_segment, g);
}

static void *
gossip_main(void *arg)
{
	aurora_gossip *g = arg;
	uint64_t	wait_ms = g->interval_ms;

	for (;;)
	{
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		aurora_timespec_add_ms(&until, wait_ms);
		pthread_mutex_lock(&g->mu);
		while (!g->stopping &&
			   pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
			;
		if (g->stopping)
		{
			pthread_mutex_unlock(&g->mu);
			break;
		}
		pthread_mutex_unlock(&g->mu);
		aurora_gossip_round(g);
		if (!g->round_in_step)
			wait_ms = g->interval_ms;
		else if (wait_ms < (uint64_t) g->interval_ms * QUIET_MAX_INTERVALS)
			wait_ms *= 2;
	}
	return NULL;
}

int
aurora_gossip_start(struct aurora_segment_table *store, const aurora_gossip_config *cfg,
					aurora_gossip **out, char *err, size_t errlen)
{
	aurora_gossip *g;

	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		return -1;
	}
	g->store = store;
	snprintf(g->self, sizeof(g->self), "%s", cfg->self_node_id);
	g->interval_ms = cfg->interval_ms;
	g->timeout_ms = cfg->peer_timeout_ms > 0 ? cfg->peer_timeout_ms : 1;
	g->max_body = cfg->max_body;
	g->pages = cfg->pages;
	g->states = cfg->states;
	pthread_mutex_init(&g->mu, NULL);
	{
		/* timed waits on the monotonic clock: a clock step must not stall gossip */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&g->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (g->interval_ms > 0)
	{
		if (pthread_create(&g->thread, NULL, gossip_main, g) != 0)
		{
			aurora_seterr(err, errlen, "cannot start the gossip thread");
			pthread_mutex_destroy(&g->mu);
			pthread_cond_destroy(&g->cv);
			free(g);
			return -1;
		}
		g->thread_started = true;
	}
	*out = g;
	return 0;
}

void
aurora_gossip_stop(aurora_gossip *g)
{
	int			i;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stopping = true;
	pthread_cond_signal(&g->cv);
	/* a peer that is itself shutting down must not hold us for a timeout */
	for (i = 0; i < g->n_peers; i++)
		aurora_conn_abort(g->peers[i]->conn);
	pthread_mutex_unlock(&g->mu);
	if (g->thread_started)
		pthread_join(g->thread, NULL);
	for (i = 0; i < g->n_peers; i++)
	{
		aurora_conn_close(g->peers[i]->conn);
		free(g->peers[i]);
	}
	free(g->peers);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

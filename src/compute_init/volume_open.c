/*
 * volume_open.c
 *	  Fencing and truncating a volume under a new epoch (volume_open.h).
 *
 *	  The quorum arithmetic is the storage contract's (quorum.h); the calls
 *	  are client.c's.  A node that does not answer once is not asked again
 *	  during this open: a start with a node partitioned away must not wait
 *	  out its timeout once per PG and step.
 */
#include "postgres_fe.h"

#include "client.h"
#include "quorum.h"
#include "volume_open.h"
#include "wire.h"

struct VolumeOpen
{
	const aurora_member *nodes;
	int			n_nodes;
	uint64		volume_id;
	int			timeout_ms;
	aurora_conn **conn;
	bool	   *dead;			/* did not answer: skipped from then on */
	PgOpenState *pgs;
	uint32		n_pgs;
};

VolumeOpen *
volume_open_begin(const aurora_member *nodes, int n, uint64 volume_id, int timeout_ms)
{
	VolumeOpen *vo = calloc(1, sizeof(*vo));

	if (vo == NULL)
		return NULL;
	vo->nodes = nodes;
	vo->n_nodes = n;
	vo->volume_id = volume_id;
	vo->timeout_ms = timeout_ms;
	vo->conn = calloc(n > 0 ? n : 1, sizeof(*vo->conn));
	vo->dead = calloc(n > 0 ? n : 1, sizeof(*vo->dead));
	if (vo->conn == NULL || vo->dead == NULL)
	{
		volume_open_end(vo);
		return NULL;
	}
	return vo;
}

void
volume_open_end(VolumeOpen *vo)
{
	if (vo == NULL)
		return;
	for (int k = 0; k < vo->n_nodes && vo->conn != NULL; k++)
		if (vo->conn[k] != NULL)
			aurora_conn_close(vo->conn[k]);
	free(vo->conn);
	free(vo->dead);
	free(vo->pgs);
	free(vo);
}

const bool *
volume_open_dead_nodes(const VolumeOpen *vo)
{
	return vo->dead;
}

const PgOpenState *
volume_open_pg(const VolumeOpen *vo, uint32 pg)
{
	return pg < vo->n_pgs ? &vo->pgs[pg] : NULL;
}

/* The connection to member m's node, or NULL (err set) if it is not to be asked. */
static aurora_conn *
conn_for(VolumeOpen *vo, const aurora_member *m, int *node, char *err, size_t errlen)
{
	for (int k = 0; k < vo->n_nodes; k++)
		if (strcmp(vo->nodes[k].node_id, m->node_id) == 0)
		{
			*node = k;
			if (vo->dead[k])
			{
				snprintf(err, errlen, "did not answer earlier");
				return NULL;
			}
			if (vo->conn[k] == NULL &&
				aurora_conn_open(vo->nodes[k].url, &vo->conn[k], err, errlen) != 0)
				return NULL;
			return vo->conn[k];
		}
	snprintf(err, errlen, "not in the node list");
	return NULL;
}

static void
note_missing(PgOpenState *s, const aurora_member *m, const char *why)
{
	size_t		len = strlen(s->missing);

	if (len < sizeof(s->missing) - 1)
		snprintf(s->missing + len, sizeof(s->missing) - len, "%s%s (%s)",
				 len > 0 ? ", " : "", m->node_id, why);
}

/* Whether a is a prefix of b (entry by entry). */
static bool
history_is_prefix(const aurora_trunc_entry *a, int na, const aurora_trunc_entry *b, int nb)
{
	if (na > nb)
		return false;
	for (int i = 0; i < na; i++)
		if (a[i].epoch != b[i].epoch || a[i].lsn != b[i].lsn)
			return false;
	return true;
}

static bool
ensure_pgs(VolumeOpen *vo, uint32 n_pgs, char *err, size_t errlen)
{
	if (vo->n_pgs >= n_pgs)
		return true;
	free(vo->pgs);
	vo->pgs = calloc(n_pgs, sizeof(*vo->pgs));
	if (vo->pgs == NULL)
	{
		vo->n_pgs = 0;
		snprintf(err, errlen, "out of memory");
		return false;
	}
	vo->n_pgs = n_pgs;
	return true;
}

int
volume_open_discover(VolumeOpen *vo, int read_quorum, aurora_geometry *g, uint64 *max_epoch,
					 aurora_trunc_entry **history, int *n_history, char *err, size_t errlen)
{
	aurora_trunc_entry *best = NULL;
	int			n_best = 0;
	uint32		n_pgs = 1;		/* PG 0 first: it says how many there are */

	*max_epoch = 0;
	*history = NULL;
	*n_history = 0;
	g->n_pgs = 0;
	g->blocks_per_segment = 0;
	if (!ensure_pgs(vo, 1, err, errlen))
		return -1;
	for (uint32 pg = 0; pg < n_pgs; pg++)
	{
		aurora_member members[AURORA_PG_COPIES];
		PgOpenState *s = &vo->pgs[pg];

		if (aurora_place_pg(vo->nodes, vo->n_nodes, pg, members, err, errlen) != 0)
			goto fail;
		memset(s, 0, sizeof(*s));
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			aurora_segment_info_result r;
			uint32_t	code = 0;
			char		why[256];
			int			node;
			aurora_conn *conn = conn_for(vo, &members[i], &node, why, sizeof(why));
			aurora_call_result cr;

			if (conn == NULL)
			{
				note_missing(s, &members[i], why);
				continue;
			}
			cr = aurora_get_segment_info(conn, vo->timeout_ms, vo->volume_id, pg, &r, &code,
										 why, sizeof(why));
			if (cr == AURORA_CALL_NO_REPLY)
				vo->dead[node] = true;
			if (cr != AURORA_CALL_OK)
			{
				/* a node without the segment answered: it counts, with nothing */
				if (cr == AURORA_CALL_BAD_REPLY && code == AURORA_ERR_NO_SEGMENT)
					s->answered++;
				else
					note_missing(s, &members[i], why);
				continue;
			}
			s->answered++;
			if (r.volume_epoch > *max_epoch)
				*max_epoch = r.volume_epoch;
			if (r.info.scl > s->highest_scl)
				s->highest_scl = r.info.scl;
			if (r.info.seeded_lsn > s->seeded_lsn)
				s->seeded_lsn = r.info.seeded_lsn;
			if (pg == 0)
			{
				if (g->n_pgs == 0)
				{
					g->n_pgs = r.info.n_pgs;
					g->blocks_per_segment = r.info.blocks_per_segment;
				}
				else if (g->n_pgs != r.info.n_pgs ||
						 g->blocks_per_segment != r.info.blocks_per_segment)
				{
					snprintf(err, errlen, "PG 0's segments disagree on the volume's geometry");
					aurora_segment_info_result_free(&r);
					goto fail;
				}
			}
			/* histories are prefixes of one another: a member may have missed the latest */
			if (history_is_prefix(best, n_best, r.history, r.n_history))
			{
				if (r.n_history > n_best)
				{
					free(best);
					best = malloc(sizeof(*best) * r.n_history);
					if (best == NULL)
					{
						snprintf(err, errlen, "out of memory");
						aurora_segment_info_result_free(&r);
						goto fail;
					}
					memcpy(best, r.history, sizeof(*best) * r.n_history);
					n_best = r.n_history;
				}
			}
			else if (!history_is_prefix(r.history, r.n_history, best, n_best))
			{
				snprintf(err, errlen, "PG %u, %s: its truncation history contradicts another segment's",
						 pg, members[i].node_id);
				aurora_segment_info_result_free(&r);
				goto fail;
			}
			aurora_segment_info_result_free(&r);
		}
		if (s->answered < read_quorum)
		{
			snprintf(err, errlen, "PG %u: only %d of %d segments answered, opening the volume needs %d: %s",
					 pg, s->answered, AURORA_PG_COPIES, read_quorum, s->missing);
			goto fail;
		}
		if (pg == 0)
		{
			if (g->n_pgs == 0)
				break;			/* no segment of PG 0: the volume does not exist yet */
			if (!aurora_geometry_valid(g, err, errlen))
				goto fail;
			n_pgs = g->n_pgs;
			{
				PgOpenState first = vo->pgs[0];

				if (!ensure_pgs(vo, n_pgs, err, errlen))
					goto fail;
				vo->pgs[0] = first;
			}
		}
	}
	*history = best;
	*n_history = n_best;
	return 0;

fail:
	free(best);
	return -1;
}

int
volume_open_fence(VolumeOpen *vo, const aurora_geometry *g, uint64 epoch, int min_fenced,
				  char *err, size_t errlen)
{
	if (!ensure_pgs(vo, g->n_pgs, err, errlen))
		return -1;
	for (uint32 pg = 0; pg < g->n_pgs; pg++)
	{
		aurora_member members[AURORA_PG_COPIES];
		PgOpenState *s = &vo->pgs[pg];

		if (aurora_place_pg(vo->nodes, vo->n_nodes, pg, members, err, errlen) != 0)
			return -1;
		s->fenced = 0;
		s->missing[0] = '\0';
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			aurora_fence_result f;
			uint64_t	seg_epoch = 0;
			uint32_t	code = 0;
			char		why[256];
			int			node;
			aurora_conn *conn = conn_for(vo, &members[i], &node, why, sizeof(why));
			aurora_call_result cr;

			if (conn == NULL)
			{
				note_missing(s, &members[i], why);
				continue;
			}
			cr = aurora_fence_segment(conn, vo->timeout_ms, vo->volume_id, pg, epoch, 1, &f,
									  &seg_epoch, &code, why, sizeof(why));
			if (cr == AURORA_CALL_OK)
			{
				s->fenced++;
				aurora_fence_result_free(&f);
				continue;
			}
			if (cr == AURORA_CALL_NO_REPLY)
				vo->dead[node] = true;
			if (code == AURORA_ERR_STALE_EPOCH)
			{
				snprintf(err, errlen, "PG %u, %s: the segment is at volume epoch %llu, above %llu: another compute is opening the volume",
						 pg, members[i].node_id, (unsigned long long) seg_epoch,
						 (unsigned long long) epoch);
				return -1;
			}
			note_missing(s, &members[i], why);
		}
		if (s->fenced < min_fenced)
		{
			snprintf(err, errlen, "PG %u: only %d of %d segments could be fenced at epoch %llu, it needs %d (the writer before could still reach a write quorum): %s",
					 pg, s->fenced, AURORA_PG_COPIES, (unsigned long long) epoch, min_fenced,
					 s->missing);
			return -1;
		}
	}
	return 0;
}

int
volume_open_truncate(VolumeOpen *vo, const aurora_geometry *g, const aurora_trunc_entry *history,
					 int n, int write_quorum, char *err, size_t errlen)
{
	int			quorate = 0;

	if (!ensure_pgs(vo, g->n_pgs, err, errlen))
		return -1;
	for (uint32 pg = 0; pg < g->n_pgs; pg++)
	{
		aurora_member members[AURORA_PG_COPIES];
		PgOpenState *s = &vo->pgs[pg];

		if (aurora_place_pg(vo->nodes, vo->n_nodes, pg, members, err, errlen) != 0)
			return -1;
		s->truncated = 0;
		s->truncated_scl = 0;
		s->records_dropped = s->bytes_dropped = 0;
		s->missing[0] = '\0';
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			aurora_truncate_ack a;
			uint64_t	seg_epoch = 0;
			uint32_t	code = 0;
			char		why[256];
			int			node;
			aurora_conn *conn = conn_for(vo, &members[i], &node, why, sizeof(why));
			aurora_call_result cr;

			if (conn == NULL)
			{
				note_missing(s, &members[i], why);
				continue;
			}
			cr = aurora_truncate_segment(conn, vo->timeout_ms, vo->volume_id, pg, 1, history, n,
										 &a, &seg_epoch, &code, why, sizeof(why));
			if (cr == AURORA_CALL_OK)
			{
				s->truncated++;
				if (a.scl > s->truncated_scl)
					s->truncated_scl = a.scl;
				if (a.records_dropped > s->records_dropped)
					s->records_dropped = a.records_dropped;
				if (a.bytes_dropped > s->bytes_dropped)
					s->bytes_dropped = a.bytes_dropped;
				continue;
			}
			if (cr == AURORA_CALL_NO_REPLY)
				vo->dead[node] = true;
			if (code == AURORA_ERR_STALE_EPOCH || code == AURORA_ERR_CONFLICT)
			{
				snprintf(err, errlen, "PG %u, %s refused the truncation (%s): another compute opened the volume meanwhile",
						 pg, members[i].node_id, why);
				return -1;
			}
			note_missing(s, &members[i], why);
		}
		if (s->truncated >= write_quorum)
			quorate++;
	}
	return quorate;
}

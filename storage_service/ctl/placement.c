/*
 * placement.c - aurora-ctl placement (placement.h).
 *
 * Three steps: ask the nodes what they hold of the volume (query_nodes),
 * settle its geometry (decide_geometry), then walk the PGs, placing each
 * with aurora_place_pg() and comparing every replica with the holdings
 * (compare).  A node that answers STATUS but then fails a request counts as
 * down: what it holds cannot be trusted to be complete.
 */
#define _POSIX_C_SOURCE 200809L

#include "placement.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "logtool.h"
#include "quorum.h"
#include "util.h"

/* The segments of the volume one node holds, sorted by PG. */
typedef struct holdings
{
	aurora_segment_state *segs;
	aurora_geometry *geo;		/* the geometry segs[i] was created with */
	bool	   *placed;			/* segs[i] is a replica placement puts here */
	int			n;
} holdings;

/* Distinct geometries a disagreement names; any beyond are only mentioned. */
#define GEOMETRIES_NAMED	4

const char *
ctl_seg_state_name(ctl_seg_state s)
{
	switch (s)
	{
		case CTL_SEG_OK:
			return "ok";
		case CTL_SEG_MISSING:
			return "missing";
		case CTL_SEG_DOWN:
			return "down";
		case CTL_SEG_MISPLACED:
			return "misplaced";
	}
	return "?";
}

static void
holdings_free(holdings *h)
{
	free(h->segs);
	free(h->geo);
	free(h->placed);
	memset(h, 0, sizeof(*h));
}

static int
cmp_state_pg(const void *a, const void *b)
{
	const aurora_segment_state *x = a;
	const aurora_segment_state *y = b;

	return x->pg_id < y->pg_id ? -1 : x->pg_id > y->pg_id;
}

static const aurora_segment_state *
holdings_find(const holdings *h, uint32_t pg, int *index)
{
	aurora_segment_state key;
	const aurora_segment_state *s;

	key.pg_id = pg;
	s = h->n > 0 ? bsearch(&key, h->segs, (size_t) h->n, sizeof(key), cmp_state_pg) : NULL;
	if (s != NULL)
		*index = (int) (s - h->segs);
	return s;
}

/*
 * Keep the volume's segments out of a node's SEGMENTS listing (in place;
 * a node holds at most one segment per volume and PG) and sort them by PG.
 */
static int
keep_volume(aurora_segment_state *all, int n, uint64_t volume_id, holdings *h)
{
	int			i;

	h->segs = all;
	h->n = 0;
	for (i = 0; i < n; i++)
		if (all[i].volume_id == volume_id)
			all[h->n++] = all[i];
	qsort(h->segs, (size_t) h->n, sizeof(*h->segs), cmp_state_pg);
	h->geo = calloc((size_t) h->n + 1, sizeof(*h->geo));
	h->placed = calloc((size_t) h->n + 1, sizeof(*h->placed));
	return h->geo != NULL && h->placed != NULL ? 0 : -1;
}

/* SEGMENT_INFO_REQ (never fenced, changes nothing): the segment's geometry. */
static ctl_req_result
fetch_geometry(aurora_conn *conn, int timeout_ms, uint64_t volume_id, uint32_t pg,
			   aurora_geometry *g, char *err, size_t errlen)
{
	aurora_header h,
				rh;
	aurora_segment_info info;
	uint8_t    *reply;
	const uint8_t *body;
	ctl_req_result r;

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_SEGMENT_INFO_REQ;
	h.volume_id = volume_id;
	h.pg_id = pg;
	h.request_id = (uint64_t) pg + 1;
	r = ctl_request(conn, timeout_ms, &h, NULL, 0, AURORA_MSG_SEGMENT_INFO, &rh, &reply, &body,
					err, errlen);
	if (r != CTL_REQ_OK)
		return r;
	if (aurora_segment_info_decode(body, rh.body_len, &info) != 0)
	{
		aurora_seterr(err, errlen, "bad SEGMENT_INFO");
		r = CTL_REQ_BAD_REPLY;
	}
	else
	{
		g->n_pgs = info.n_pgs;
		g->blocks_per_segment = info.blocks_per_segment;
	}
	free(reply);
	return r;
}

/* What a node that answered STATUS holds of the volume; false (a) if it fails. */
static bool
fetch_holdings(const ctl_node *node, int timeout_ms, uint64_t volume_id, holdings *h,
			   ctl_node_answer *a)
{
	aurora_conn *conn;
	aurora_segment_state *all;
	int			n,
				i;
	char		err[200];

	if (aurora_conn_open(node->dial_url, &conn, err, sizeof(err)) != 0)
	{
		snprintf(a->error, sizeof(a->error), "%s", err);
		return false;
	}
	if (ctl_fetch_segments(conn, timeout_ms, &all, &n, err, sizeof(err)) != CTL_REQ_OK)
	{
		snprintf(a->error, sizeof(a->error), "segments: %s", err);
		aurora_conn_close(conn);
		return false;
	}
	if (keep_volume(all, n, volume_id, h) != 0)
	{
		snprintf(a->error, sizeof(a->error), "out of memory");
		aurora_conn_close(conn);
		return false;
	}
	for (i = 0; i < h->n; i++)
		if (fetch_geometry(conn, timeout_ms, volume_id, h->segs[i].pg_id, &h->geo[i],
						   err, sizeof(err)) != CTL_REQ_OK)
		{
			snprintf(a->error, sizeof(a->error), "segment info of PG %u: %s",
					 (unsigned) h->segs[i].pg_id, err);
			aurora_conn_close(conn);
			return false;
		}
	aurora_conn_close(conn);
	return true;
}

/*
 * STATUS to every node at once (one shared deadline, so down nodes cost one
 * timeout in all), then the segments of those that answered as themselves.
 */
static int
query_nodes(const ctl_cluster *c, uint64_t volume_id, int timeout_ms, ctl_node_answer *answers,
			holdings *h)
{
	const char **urls = calloc((size_t) c->n, sizeof(*urls));
	aurora_status_result *res = calloc((size_t) c->n, sizeof(*res));
	int			i;

	if (urls == NULL || res == NULL)
	{
		free(urls);
		free(res);
		return -1;
	}
	for (i = 0; i < c->n; i++)
		urls[i] = c->nodes[i].dial_url;
	aurora_status_many(urls, c->n, timeout_ms, res);
	for (i = 0; i < c->n; i++)
	{
		ctl_node_answer *a = &answers[i];
		const char *id = c->nodes[i].cfg.node_id;

		if (!res[i].reachable)
			snprintf(a->error, sizeof(a->error), "%s", res[i].error);
		else if (res[i].error[0] != '\0')
			snprintf(a->error, sizeof(a->error), "status: %s", res[i].error);
		else if (strcmp(res[i].status.node_id, id) != 0)
			snprintf(a->error, sizeof(a->error), "answers as node '%s', config says '%s'",
					 res[i].status.node_id, id);
		else
			a->up = fetch_holdings(&c->nodes[i], timeout_ms, volume_id, &h[i], a);
		if (!a->up)
			holdings_free(&h[i]);
	}
	free(urls);
	free(res);
	return 0;
}

typedef struct geometry_seen
{
	aurora_geometry g;
	int			segments;
	int			node;			/* one holder, for the message */
	uint32_t	pg;
} geometry_seen;

static bool
same_geometry(const aurora_geometry *a, const aurora_geometry *b)
{
	return a->n_pgs == b->n_pgs && a->blocks_per_segment == b->blocks_per_segment;
}

/*
 * The distinct geometries the segments record: the first GEOMETRIES_NAMED
 * in seen[], *more set if there are others.  Returns the segments counted.
 */
static int
collect_geometries(const holdings *h, int n_nodes, geometry_seen *seen, int *n_seen, bool *more)
{
	int			total = 0;
	int			k,
				i,
				j;

	*n_seen = 0;
	*more = false;
	for (k = 0; k < n_nodes; k++)
		for (i = 0; i < h[k].n; i++, total++)
		{
			for (j = 0; j < *n_seen; j++)
				if (same_geometry(&seen[j].g, &h[k].geo[i]))
					break;
			if (j == *n_seen && j == GEOMETRIES_NAMED)
				*more = true;
			else if (j == *n_seen)
				seen[(*n_seen)++] = (geometry_seen) {h[k].geo[i], 1, k, h[k].segs[i].pg_id};
			else
				seen[j].segments++;
		}
	return total;
}

static void
describe_disagreement(const ctl_cluster *c, uint64_t volume_id, const geometry_seen *seen,
					  int n_seen, bool more, char *out, size_t cap)
{
	size_t		used;
	int			j;

	used = (size_t) snprintf(out, cap, "the segments of volume 0x%016" PRIx64
							 " disagree on its geometry:", volume_id);
	for (j = 0; j < n_seen && used < cap; j++)
		used += (size_t) snprintf(out + used, cap - used,
								  "%s n_pgs %u blocks_per_segment %u on %d segment%s (%s PG %u)",
								  j > 0 ? ";" : "", (unsigned) seen[j].g.n_pgs,
								  (unsigned) seen[j].g.blocks_per_segment, seen[j].segments,
								  seen[j].segments == 1 ? "" : "s",
								  c->nodes[seen[j].node].cfg.node_id, (unsigned) seen[j].pg);
	if (more && used < cap)
		snprintf(out + used, cap - used, "; and others");
}

/*
 * The table's geometry: what every segment of the volume records, or
 * want_pgs when given (then a disagreement is only a warning).  Returns 0,
 * or 1 with err when the segments cannot tell the number of PGs.
 */
static int
decide_geometry(const ctl_cluster *c, const holdings *h, const ctl_node_answer *answers,
				uint32_t want_pgs, ctl_placement *p, char *err, size_t errlen)
{
	geometry_seen seen[GEOMETRIES_NAMED];
	int			n_seen;
	bool		more;
	int			total = collect_geometries(h, c->n, seen, &n_seen, &more);

	p->geometry.n_pgs = want_pgs;
	p->geometry.blocks_per_segment = n_seen == 1 ? seen[0].g.blocks_per_segment : 0;
	if (n_seen > 1)
	{
		describe_disagreement(c, p->volume_id, seen, n_seen, more, err, errlen);
		if (want_pgs == 0)
			return 1;
		p->geometry_mixed = true;
		snprintf(p->warning, sizeof(p->warning), "%s", err);
		err[0] = '\0';
	}
	else if (n_seen == 1 && want_pgs != 0 && seen[0].g.n_pgs == 0)
		snprintf(p->warning, sizeof(p->warning),
				 "the segments of volume 0x%016" PRIx64 " record no geometry; showing --pgs %u",
				 p->volume_id, (unsigned) want_pgs);
	else if (n_seen == 1 && want_pgs != 0 && seen[0].g.n_pgs != want_pgs)
		snprintf(p->warning, sizeof(p->warning),
				 "showing --pgs %u, but the segments of volume 0x%016" PRIx64 " record n_pgs %u",
				 (unsigned) want_pgs, p->volume_id, (unsigned) seen[0].g.n_pgs);
	if (want_pgs != 0)
		return 0;

	if (total == 0)
	{
		int			down = 0;
		int			k;

		for (k = 0; k < c->n; k++)
			down += !answers[k].up;
		aurora_seterr(err, errlen, "no %snode holds a segment of volume 0x%016" PRIx64
					  ": no volume yet%s (a compute creates it when it starts shipping); "
					  "--pgs N shows where it would be placed", down > 0 ? "reachable " : "",
					  p->volume_id, down > 0 ? ", or only on nodes that did not answer" : "");
		return 1;
	}
	if (seen[0].g.n_pgs == 0)
	{
		aurora_seterr(err, errlen, "the segments of volume 0x%016" PRIx64 " record no geometry "
					  "(created by a tool such as aurora-ctl stream, not by a compute); "
					  "give --pgs N", p->volume_id);
		return 1;
	}
	if (!aurora_geometry_valid(&seen[0].g, err, errlen))
		return 1;
	p->geometry = seen[0].g;
	return 0;
}

static int
node_index(const ctl_cluster *c, const char *node_id)
{
	int			i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->nodes[i].cfg.node_id, node_id) == 0)
			return i;
	return -1;
}

static void
fill_held(ctl_placement_row *r, const aurora_segment_state *s)
{
	r->held = true;
	r->held_replica = s->replica_index;
	r->scl = s->scl;
	r->volume_epoch = s->volume_epoch;
	r->membership_epoch = s->membership_epoch;
}

/* Replica `replica` of pg, placed on node k: what k holds in its place. */
static ctl_placement_row
placed_row(uint32_t pg, uint32_t replica, int k, const ctl_node_answer *a, holdings *h)
{
	ctl_placement_row r;
	const aurora_segment_state *s;
	int			i;

	memset(&r, 0, sizeof(r));
	r.pg = pg;
	r.replica = replica;
	r.node = k;
	if (!a->up)
		r.state = CTL_SEG_DOWN;
	else if ((s = holdings_find(h, pg, &i)) == NULL)
		r.state = CTL_SEG_MISSING;
	else
	{
		fill_held(&r, s);
		h->placed[i] = true;
		r.state = s->replica_index == replica ? CTL_SEG_OK : CTL_SEG_MISPLACED;
	}
	return r;
}

static ctl_placement_row
extra_row(int k, const aurora_segment_state *s)
{
	ctl_placement_row r;

	memset(&r, 0, sizeof(r));
	r.pg = s->pg_id;
	r.replica = s->replica_index;
	r.node = k;
	r.state = CTL_SEG_MISPLACED;
	r.extra = true;
	fill_held(&r, s);
	return r;
}

static int
cmp_row_pg_node(const void *a, const void *b)
{
	const ctl_placement_row *x = a;
	const ctl_placement_row *y = b;

	if (x->pg != y->pg)
		return x->pg < y->pg ? -1 : 1;
	return x->node - y->node;
}

/*
 * Place every PG and compare; then the segments of PGs beyond n_pgs, which
 * no placement covers.  Returns 0, or 2 with err if a PG cannot be placed.
 */
static int
compare(const ctl_cluster *c, holdings *h, ctl_placement *p, char *err, size_t errlen)
{
	aurora_member *all = calloc((size_t) c->n, sizeof(*all));
	aurora_member members[AURORA_PG_COPIES];
	uint32_t	pg;
	int			k,
				i,
				r,
				beyond;

	if (all == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		return 1;
	}
	for (k = 0; k < c->n; k++)
		ctl_node_member(&c->nodes[k], &all[k]);
	for (pg = 0; pg < p->geometry.n_pgs; pg++)
	{
		if (aurora_place_pg(all, c->n, pg, members, err, errlen) != 0)
		{
			free(all);
			return 2;
		}
		for (r = 0; r < AURORA_PG_COPIES; r++)
		{
			/* found: members are copies of all[] */
			k = node_index(c, members[r].node_id);
			p->rows[p->n_rows++] = placed_row(pg, (uint32_t) r, k, &p->nodes[k], &h[k]);
		}
		for (k = 0; k < c->n; k++)
			if (holdings_find(&h[k], pg, &i) != NULL && !h[k].placed[i])
				p->rows[p->n_rows++] = extra_row(k, &h[k].segs[i]);
	}
	beyond = p->n_rows;
	for (k = 0; k < c->n; k++)
		for (i = 0; i < h[k].n; i++)
			if (h[k].segs[i].pg_id >= p->geometry.n_pgs)
				p->rows[p->n_rows++] = extra_row(k, &h[k].segs[i]);
	qsort(p->rows + beyond, (size_t) (p->n_rows - beyond), sizeof(*p->rows), cmp_row_pg_node);
	free(all);
	return 0;
}

static void
summarize(ctl_placement *p)
{
	uint32_t	pg;
	int			i;

	for (i = 0; i < p->n_rows; i++)
	{
		if (p->rows[i].extra)
			p->extra_rows++;
		else if (p->rows[i].state == CTL_SEG_OK)
			p->pg_ok[p->rows[i].pg]++;
	}
	for (pg = 0; pg < p->geometry.n_pgs; pg++)
	{
		p->pgs_all_ok += p->pg_ok[pg] == AURORA_PG_COPIES;
		p->pgs_write_quorum += aurora_quorum_met(p->pg_ok[pg], AURORA_DEFAULT_WRITE_QUORUM);
		p->pgs_read_quorum += aurora_quorum_met(p->pg_ok[pg], AURORA_DEFAULT_READ_QUORUM);
	}
	for (i = 0; i < p->n_nodes; i++)
		p->nodes_down += !p->nodes[i].up;
}

int
ctl_placement_build(const ctl_cluster *c, uint64_t volume_id, uint32_t n_pgs, int timeout_ms,
					ctl_placement *p, char *err, size_t errlen)
{
	holdings   *h = calloc((size_t) c->n, sizeof(*h));
	size_t		max_rows;
	int			rc = 1;
	int			k;

	memset(p, 0, sizeof(*p));
	err[0] = '\0';
	p->volume_id = volume_id;
	p->n_nodes = c->n;
	p->nodes = calloc((size_t) c->n, sizeof(*p->nodes));
	if (h == NULL || p->nodes == NULL || query_nodes(c, volume_id, timeout_ms, p->nodes, h) != 0)
		goto oom;
	if ((rc = decide_geometry(c, h, p->nodes, n_pgs, p, err, errlen)) != 0)
		goto out;
	/* one row per placed replica, and at most one per segment held besides */
	max_rows = (size_t) p->geometry.n_pgs * AURORA_PG_COPIES;
	for (k = 0; k < c->n; k++)
		max_rows += (size_t) h[k].n;
	p->rows = calloc(max_rows, sizeof(*p->rows));
	p->pg_ok = calloc(p->geometry.n_pgs, sizeof(*p->pg_ok));
	if (p->rows == NULL || p->pg_ok == NULL)
		goto oom;
	if ((rc = compare(c, h, p, err, errlen)) == 0)
		summarize(p);
	goto out;
oom:
	aurora_seterr(err, errlen, "out of memory");
	rc = 1;
out:
	for (k = 0; h != NULL && k < c->n; k++)
		holdings_free(&h[k]);
	free(h);
	if (rc != 0)
		ctl_placement_free(p);
	return rc;
}

void
ctl_placement_free(ctl_placement *p)
{
	free(p->nodes);
	free(p->rows);
	free(p->pg_ok);
	p->nodes = NULL;
	p->rows = NULL;
	p->pg_ok = NULL;
	p->n_rows = 0;
}

bool
ctl_placement_complete(const ctl_placement *p)
{
	return p->pgs_all_ok == (int) p->geometry.n_pgs && p->nodes_down == 0 &&
		p->extra_rows == 0 && !p->geometry_mixed;
}

/* Why a row is not simply ok or missing, as one word (scripts split on spaces). */
static const char *
row_note(const ctl_placement_row *r, const ctl_placement *p, char *buf, size_t cap)
{
	if (r->extra && r->pg >= p->geometry.n_pgs)
		return "pg-beyond-n_pgs";
	if (r->extra)
		return "not-placed-here";
	if (r->state == CTL_SEG_MISPLACED)
	{
		snprintf(buf, cap, "holds-replica-%u", (unsigned) r->held_replica);
		return buf;
	}
	return "-";
}

static void
print_row(FILE *out, const ctl_cluster *c, const ctl_placement *p, const ctl_placement_row *r,
		  int w_node, int w_az)
{
	char		scl[24] = "-";
	char		epochs[48] = "-";
	char		note[32];

	if (r->held)
	{
		snprintf(scl, sizeof(scl), "%" PRIu64, r->scl);
		snprintf(epochs, sizeof(epochs), "%" PRIu64 "/%" PRIu64, r->volume_epoch,
				 r->membership_epoch);
	}
	fprintf(out, "%5u  %7u  %-*s  %-*s  %-9s  %12s  %-7s  %s\n", (unsigned) r->pg,
			(unsigned) r->replica, w_node, c->nodes[r->node].cfg.node_id, w_az,
			c->nodes[r->node].cfg.az, ctl_seg_state_name(r->state), scl, epochs,
			row_note(r, p, note, sizeof(note)));
}

void
ctl_placement_print(FILE *out, const ctl_cluster *c, const ctl_placement *p)
{
	int			w_node = (int) strlen("NODE");
	int			w_az = (int) strlen("AZ");
	uint32_t	pg;
	int			i;

	for (i = 0; i < c->n; i++)
	{
		if ((int) strlen(c->nodes[i].cfg.node_id) > w_node)
			w_node = (int) strlen(c->nodes[i].cfg.node_id);
		if ((int) strlen(c->nodes[i].cfg.az) > w_az)
			w_az = (int) strlen(c->nodes[i].cfg.az);
	}
	fprintf(out, "placement: volume 0x%016" PRIx64 " n_pgs %u blocks_per_segment ",
			p->volume_id, (unsigned) p->geometry.n_pgs);
	if (p->geometry.blocks_per_segment != 0)
		fprintf(out, "%u", (unsigned) p->geometry.blocks_per_segment);
	else
		fprintf(out, "-");
	fprintf(out, " nodes %d\n", p->n_nodes);
	fprintf(out, "%5s  %7s  %-*s  %-*s  %-9s  %12s  %-7s  %s\n", "PG", "REPLICA", w_node, "NODE",
			w_az, "AZ", "STATE", "SCL", "EPOCHS", "NOTE");
	for (i = 0; i < p->n_rows; i++)
		print_row(out, c, p, &p->rows[i], w_node, w_az);
	for (i = 0; i < p->n_nodes; i++)
		if (!p->nodes[i].up)
			fprintf(out, "node %s down: %s\n", c->nodes[i].cfg.node_id, p->nodes[i].error);
	for (pg = 0; pg < p->geometry.n_pgs; pg++)
		if (p->pg_ok[pg] < AURORA_PG_COPIES)
			fprintf(out, "pg %u: %d/%d ok, %s\n", (unsigned) pg, p->pg_ok[pg], AURORA_PG_COPIES,
					aurora_quorum_met(p->pg_ok[pg], AURORA_DEFAULT_WRITE_QUORUM) ?
					"write quorum" : "below write quorum");
	fprintf(out, "summary: pgs %u all_ok %d write_quorum %d below_write_quorum %d "
			"read_quorum %d nodes_down %d extra_segments %d\n",
			(unsigned) p->geometry.n_pgs, p->pgs_all_ok, p->pgs_write_quorum,
			(int) p->geometry.n_pgs - p->pgs_write_quorum, p->pgs_read_quorum, p->nodes_down,
			p->extra_rows);
}

int
ctl_placement_command(const ctl_cluster *c, uint64_t volume_id, uint32_t n_pgs, int timeout_ms)
{
	ctl_placement p;
	char		err[1024];
	int			rc;

	rc = ctl_placement_build(c, volume_id, n_pgs, timeout_ms, &p, err, sizeof(err));
	if (rc != 0)
	{
		fprintf(stderr, "aurora-ctl: placement: %s\n", err);
		return rc;
	}
	if (p.warning[0] != '\0')
		fprintf(stderr, "aurora-ctl: placement: warning: %s\n", p.warning);
	ctl_placement_print(stdout, c, &p);
	rc = ctl_placement_complete(&p) ? 0 : 1;
	ctl_placement_free(&p);
	return rc;
}

/*
 * volume_read.c
 *	  Reading the WAL of every PG back from its segments (volume_read.h).
 *
 *	  Placement is the storage contract's (common/volume.c) over the same
 *	  node list the compute is given (common/nodelist.c), so the members are
 *	  those the compute wrote to.  Requests carry each segment's own epochs,
 *	  as its SEGMENT_INFO reports them: READ_LOG is fenced, and a higher
 *	  epoch would raise the segment's; reading must change nothing.
 */
#include "postgres_fe.h"

#include "client.h"
#include "volume_read.h"

/* Bytes of payload asked for per READ_LOG (the node's limit is higher). */
#define READ_PIECE_BYTES	(4u << 20)
/* Report progress on stderr every this many bytes read. */
#define PROGRESS_BYTES		(64u << 20)

/* A member's answer to SEGMENT_INFO_REQ. */
typedef struct MemberState
{
	const aurora_member *member;
	bool		answered;
	aurora_segment_info info;
	uint64		volume_epoch;
	uint64		membership_epoch;
	char		error[256];
} MemberState;

/* One connection per storage node, opened on first use. */
typedef struct Conns
{
	const VolumeReadOptions *o;
	aurora_conn **conn;
} Conns;

static aurora_conn *
conn_for(Conns *c, const aurora_member *m, char *err, size_t errlen)
{
	for (int k = 0; k < c->o->n_nodes; k++)
		if (strcmp(c->o->nodes[k].node_id, m->node_id) == 0)
		{
			if (c->o->skip != NULL && c->o->skip[k])
			{
				snprintf(err, errlen, "did not answer earlier");
				return NULL;
			}
			if (c->conn[k] == NULL &&
				aurora_conn_open(c->o->nodes[k].url, &c->conn[k], err, errlen) != 0)
				return NULL;
			return c->conn[k];
		}
	snprintf(err, errlen, "node %s is not in the node list", m->node_id);
	return NULL;
}

/* Ask the six members of PG pg for their state. */
static int
probe_pg(Conns *c, uint32 pg, MemberState st[AURORA_PG_COPIES],
		 aurora_member members[AURORA_PG_COPIES], char *err, size_t errlen)
{
	int			answered = 0;

	if (aurora_place_pg(c->o->nodes, c->o->n_nodes, pg, members, err, errlen) != 0)
		return -1;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_header h,
					rh;
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		aurora_conn *conn;

		memset(&st[i], 0, sizeof(st[i]));
		st[i].member = &members[i];
		conn = conn_for(c, &members[i], st[i].error, sizeof(st[i].error));
		if (conn == NULL)
			continue;
		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_SEGMENT_INFO_REQ;
		h.volume_id = c->o->volume_id;
		h.pg_id = pg;
		h.request_id = 1;
		if (aurora_conn_call(conn, c->o->timeout_ms, &h, NULL, 0, AURORA_MSG_SEGMENT_INFO,
							 &rh, &reply, &rbody, NULL, st[i].error,
							 sizeof(st[i].error)) != AURORA_CALL_OK)
			continue;
		if (aurora_segment_info_decode(rbody, rh.body_len, &st[i].info) != 0)
			snprintf(st[i].error, sizeof(st[i].error), "bad SEGMENT_INFO");
		else if (st[i].info.replica_index != (uint32) i)
			snprintf(st[i].error, sizeof(st[i].error),
					 "holds replica %u, placement says %d", st[i].info.replica_index, i);
		else
		{
			st[i].answered = true;
			st[i].volume_epoch = rh.volume_epoch;
			st[i].membership_epoch = rh.membership_epoch;
			answered++;
		}
		free(reply);
	}
	if (answered < c->o->read_quorum)
	{
		int			len = snprintf(err, errlen,
								   "PG %u: only %d of %d segments answered, a read needs %d:",
								   pg, answered, AURORA_PG_COPIES, c->o->read_quorum);

		for (int i = 0; i < AURORA_PG_COPIES && len >= 0 && (size_t) len < errlen; i++)
			if (!st[i].answered)
				len += snprintf(err + len, errlen - len, " %s (%s)",
								members[i].node_id, st[i].error);
		return -1;
	}
	return 0;
}

/* Read [from, to) of PG pg from member m into log; false with err. */
static bool
read_member(Conns *c, uint32 pg, const MemberState *m, XLogRecPtr to, WalPgLog *log,
			char *err, size_t errlen)
{
	XLogRecPtr	next = c->o->from;
	uint64		bytes = 0,
				reported = 0;
	aurora_conn *conn = conn_for(c, m->member, err, errlen);

	if (conn == NULL)
		return false;
	while (next < to)
	{
		aurora_header h,
					rh;
		aurora_read_log rl;
		aurora_read_log_resp resp;
		uint8_t		body[32];
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		size_t		n;

		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_READ_LOG;
		h.volume_id = c->o->volume_id;
		h.volume_epoch = m->volume_epoch;
		h.membership_epoch = m->membership_epoch;
		h.pg_id = pg;
		h.request_id = 1;
		rl.from_lsn = next;
		rl.to_lsn = to;
		rl.max_bytes = READ_PIECE_BYTES;
		n = aurora_read_log_encode(&rl, body, sizeof(body));
		if (aurora_conn_call(conn, c->o->timeout_ms, &h, body, n, AURORA_MSG_READ_LOG_RESP,
							 &rh, &reply, &rbody, NULL, err, errlen) != AURORA_CALL_OK)
			return false;
		if (aurora_read_log_resp_decode(rbody, rh.body_len, &resp) != 0)
		{
			snprintf(err, errlen, "bad READ_LOG_RESP");
			free(reply);
			return false;
		}
		if (resp.scl < to)
		{
			snprintf(err, errlen, "its SCL went down from %X/%X to %X/%X",
					 LSN_FORMAT_ARGS(to), LSN_FORMAT_ARGS(resp.scl));
			free(resp.recs);
			free(reply);
			return false;
		}
		for (int i = 0; i < resp.n; i++)
		{
			const aurora_log_record *r = &resp.recs[i];

			/* what was asked for, nothing else: a node's reply is input */
			if (r->start_lsn < next || r->start_lsn >= to || r->end_lsn <= r->start_lsn)
			{
				snprintf(err, errlen, "READ_LOG [%X/%X, %X/%X) answered a record [%X/%X, %X/%X)",
						 LSN_FORMAT_ARGS(next), LSN_FORMAT_ARGS(to),
						 LSN_FORMAT_ARGS(r->start_lsn), LSN_FORMAT_ARGS(r->end_lsn));
				free(resp.recs);
				free(reply);
				return false;
			}
			if (wal_pg_log_add(log, r, err, errlen) != 0)
			{
				free(resp.recs);
				free(reply);
				return false;
			}
			bytes += resp.recs[i].len;
			next = resp.recs[i].start_lsn + 1;
		}
		free(resp.recs);
		free(reply);
		if (c->o->progress && bytes - reported >= PROGRESS_BYTES)
		{
			fprintf(stderr, "aurora-compute-init: PG %u: read %llu MB from %s, at %X/%X of %X/%X\n",
					pg, (unsigned long long) (bytes >> 20), m->member->node_id,
					LSN_FORMAT_ARGS(next), LSN_FORMAT_ARGS(to));
			reported = bytes;
		}
		if (!resp.truncated || resp.n == 0)
			break;
	}
	return true;
}

/* Read PG pg from its best member, then the next best, until one works. */
static int
read_pg(Conns *c, uint32 pg, MemberState st[AURORA_PG_COPIES], WalPgLog *log,
		char *err, size_t errlen)
{
	bool		tried[AURORA_PG_COPIES] = {false};
	char		errs[1024] = "";
	size_t		len = 0;

	log->pg = pg;
	for (;;)
	{
		int			best = -1;
		char		why[256];

		for (int i = 0; i < AURORA_PG_COPIES; i++)
			if (st[i].answered && !tried[i] &&
				(best < 0 || st[i].info.scl > st[best].info.scl))
				best = i;
		if (best < 0)
		{
			snprintf(err, errlen, "PG %u: no segment could be read:%s", pg, errs);
			return -1;
		}
		tried[best] = true;
		log->scl = st[best].info.scl;
		if (log->scl <= c->o->from ||
			read_member(c, pg, &st[best], log->scl, log, why, sizeof(why)))
			return 0;
		wal_pg_log_reset(log);
		fprintf(stderr, "aurora-compute-init: PG %u: reading %s failed (%s), trying the next member\n",
				pg, st[best].member->node_id, why);
		if (len < sizeof(errs))
			len += snprintf(errs + len, sizeof(errs) - len, " %s: %s;",
							st[best].member->node_id, why);
	}
}

int
volume_read(const VolumeReadOptions *o, aurora_geometry *g, WalPgLog **logs_out,
			char *err, size_t errlen)
{
	Conns		c;
	MemberState st[AURORA_PG_COPIES];
	aurora_member members[AURORA_PG_COPIES];
	WalPgLog   *logs = NULL;
	int			rc = -1;

	*logs_out = NULL;
	c.o = o;
	c.conn = calloc(o->n_nodes > 0 ? o->n_nodes : 1, sizeof(*c.conn));
	if (c.conn == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (probe_pg(&c, 0, st, members, err, errlen) != 0)
		goto done;
	g->n_pgs = 0;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (!st[i].answered)
			continue;
		if (g->n_pgs == 0)
		{
			g->n_pgs = st[i].info.n_pgs;
			g->blocks_per_segment = st[i].info.blocks_per_segment;
		}
		else if (g->n_pgs != st[i].info.n_pgs ||
				 g->blocks_per_segment != st[i].info.blocks_per_segment)
		{
			snprintf(err, errlen, "PG 0's segments disagree on the volume's geometry");
			goto done;
		}
	}
	if (!aurora_geometry_valid(g, err, errlen))
		goto done;
	logs = calloc(g->n_pgs, sizeof(*logs));
	if (logs == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (uint32 pg = 0; pg < g->n_pgs; pg++)
	{
		if (pg > 0 && probe_pg(&c, pg, st, members, err, errlen) != 0)
			goto done;
		if (read_pg(&c, pg, st, &logs[pg], err, errlen) != 0)
			goto done;
		if (o->progress)
			fprintf(stderr, "aurora-compute-init: PG %u: %d records read up to SCL %X/%X\n",
					pg, logs[pg].n, LSN_FORMAT_ARGS(logs[pg].scl));
	}
	*logs_out = logs;
	logs = NULL;
	rc = 0;

done:
	if (logs != NULL)
		volume_read_free(logs, g->n_pgs);
	for (int k = 0; k < o->n_nodes; k++)
		if (c.conn[k] != NULL)
			aurora_conn_close(c.conn[k]);
	free(c.conn);
	return rc;
}

void
volume_read_free(WalPgLog *logs, uint32 n_pgs)
{
	for (uint32 p = 0; p < n_pgs; p++)
		wal_pg_log_reset(&logs[p]);
	free(logs);
}

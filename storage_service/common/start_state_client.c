/*
 * start_state_client.c - put and get of start states on a PG's six
 * members (start_state_client.h).  One thread per member, each on its own
 * client.h connection; quorum.h decides when enough of them did their
 * part.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "start_state_client.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "quorum.h"
#include "start_state.h"
#include "start_state_msg.h"
#include "util.h"
#include "wire.h"

/* One member's part of a put or of the first round of a get. */
typedef struct member_call
{
	const aurora_pg_target *t;
	int			index;
	int			timeout_ms;
	/* put */
	const uint8_t *bundle;
	size_t		len;
	uint64_t	lsn;
	uint32_t	piece;
	/* get (first round): what the member has */
	uint64_t	max_lsn;
	bool		answered;
	bool		found;
	uint64_t	found_lsn;
	uint64_t	found_len;
	/* both */
	bool		ok;
	char		error[200];
	pthread_t	thread;
	bool		started;
} member_call;

static void
header_for(const aurora_pg_target *t, uint16_t type, uint64_t request_id, aurora_header *h)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->volume_id = t->volume_id;
	h->pg_id = t->pg_id;
	h->volume_epoch = t->volume_epoch;
	h->membership_epoch = t->membership_epoch;
	h->request_id = request_id;
}

/* One START_STATE_GET on conn; 0 with *r (r->data points into *reply: free it). */
static int
get_piece(aurora_conn *conn, const aurora_pg_target *t, uint64_t max_lsn, uint64_t offset,
		  uint32_t max_bytes, int timeout_ms, aurora_start_state_resp *r, uint8_t **reply,
		  char *err, size_t errlen)
{
	aurora_start_state_get g = {max_lsn, offset, max_bytes};
	uint8_t		body[AURORA_START_STATE_GET_SIZE];
	aurora_header h,
				rh;
	const uint8_t *rbody;
	size_t		n = aurora_start_state_get_encode(&g, body, sizeof(body));

	header_for(t, AURORA_MSG_START_STATE_GET, offset + 1, &h);
	if (aurora_conn_call(conn, timeout_ms, &h, body, n, AURORA_MSG_START_STATE, &rh, reply, &rbody,
						 NULL, err, errlen) != AURORA_CALL_OK)
		return -1;
	if (aurora_start_state_resp_decode(rbody, rh.body_len, r) != 0)
	{
		aurora_seterr(err, errlen, "START_STATE reply does not decode");
		free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

static void *
put_main(void *arg)
{
	member_call *c = arg;
	aurora_conn *conn;
	uint8_t    *body;
	size_t		off = 0;

	if (aurora_conn_open(c->t->members[c->index].url, &conn, c->error, sizeof(c->error)) != 0)
		return NULL;
	body = malloc(AURORA_START_STATE_PUT_FIXED + (size_t) c->piece);
	if (body == NULL)
	{
		aurora_conn_close(conn);
		snprintf(c->error, sizeof(c->error), "out of memory");
		return NULL;
	}
	while (off < c->len)
	{
		size_t		n = c->len - off < c->piece ? c->len - off : c->piece;
		aurora_start_state_put p = {c->lsn, c->len, off, (uint32_t) n, c->bundle + off};
		aurora_start_state_ack ack;
		aurora_header h,
					rh;
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		size_t		blen = aurora_start_state_put_encode(&p, body, AURORA_START_STATE_PUT_FIXED + n);

		header_for(c->t, AURORA_MSG_START_STATE_PUT, off + 1, &h);
		if (aurora_conn_call(conn, c->timeout_ms, &h, body, blen, AURORA_MSG_START_STATE_ACK, &rh,
							 &reply, &rbody, NULL, c->error, sizeof(c->error)) != AURORA_CALL_OK)
			break;
		/* a member that already holds it answers the first piece "complete" */
		if (aurora_start_state_ack_decode(rbody, rh.body_len, &ack) != 0 ||
			ack.consistent_lsn != c->lsn ||
			(ack.received != off + n && !(ack.complete && ack.received == c->len)))
		{
			snprintf(c->error, sizeof(c->error), "bad START_STATE_ACK");
			free(reply);
			break;
		}
		free(reply);
		off += n;
		if (ack.complete)
		{
			/* the member held it already, or this was the last piece */
			c->ok = true;
			break;
		}
	}
	if (off == c->len && !c->ok && c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "the last piece was not acknowledged complete");
	free(body);
	aurora_conn_close(conn);
	return NULL;
}

static void *
probe_main(void *arg)
{
	member_call *c = arg;
	aurora_conn *conn;
	aurora_start_state_resp r;
	uint8_t    *reply = NULL;

	if (aurora_conn_open(c->t->members[c->index].url, &conn, c->error, sizeof(c->error)) != 0)
		return NULL;
	if (get_piece(conn, c->t, c->max_lsn, 0, 0, c->timeout_ms, &r, &reply, c->error,
				  sizeof(c->error)) == 0)
	{
		c->answered = true;
		c->found = r.found == 1;
		c->found_lsn = r.consistent_lsn;
		c->found_len = r.total_len;
		free(reply);
	}
	aurora_conn_close(conn);
	return NULL;
}

/* Run fn for the six members at once (inline for any thread that cannot start). */
static void
fan_out(member_call *calls, void *(*fn) (void *))
{
	sigset_t	all,
				old;

	/* the threads are ours; no signal handler of the caller may run on them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		calls[i].started = pthread_create(&calls[i].thread, NULL, fn, &calls[i]) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (calls[i].started)
			pthread_join(calls[i].thread, NULL);
		else
			fn(&calls[i]);
	}
}

/* "m1: why; m2: why" into err after prefix. */
static void
member_errors(const aurora_pg_target *t, const member_call *calls, bool only_failed_ok,
			  char *err, size_t errlen, const char *prefix)
{
	size_t		l;

	aurora_seterr(err, errlen, "%s", prefix);
	for (int i = 0; i < AURORA_PG_COPIES && err != NULL; i++)
	{
		if (only_failed_ok ? calls[i].ok : calls[i].answered)
			continue;
		l = strlen(err);
		if (l + 1 < errlen)
			snprintf(err + l, errlen - l, " %s: %s;", t->members[i].node_id,
					 calls[i].error[0] ? calls[i].error : "no answer");
	}
}

static uint32_t
piece_or_default(uint32_t piece)
{
	return piece == 0 ? AURORA_START_STATE_DEFAULT_PIECE : piece;
}

int
aurora_start_state_put_pg(const aurora_pg_target *t, int write_quorum, const uint8_t *bundle,
						  size_t len, uint64_t consistent_lsn, uint32_t piece_bytes, int timeout_ms,
						  aurora_start_state_put_result *res, char *err, size_t errlen)
{
	member_call calls[AURORA_PG_COPIES];
	int			complete = 0;
	char		prefix[160];

	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		calls[i].t = t;
		calls[i].index = i;
		calls[i].timeout_ms = timeout_ms;
		calls[i].bundle = bundle;
		calls[i].len = len;
		calls[i].lsn = consistent_lsn;
		calls[i].piece = piece_or_default(piece_bytes);
	}
	fan_out(calls, put_main);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (calls[i].ok)
			complete++;
	if (res != NULL)
	{
		memset(res, 0, sizeof(*res));
		res->complete = complete;
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			res->member_complete[i] = calls[i].ok;
			snprintf(res->member_error[i], sizeof(res->member_error[i]), "%s", calls[i].error);
		}
	}
	if (aurora_quorum_met(complete, write_quorum))
		return 0;
	snprintf(prefix, sizeof(prefix), "PG %u: only %d of 6 segments stored the start state "
			 "(a write quorum needs %d):", (unsigned) t->pg_id, complete, write_quorum);
	member_errors(t, calls, true, err, errlen, prefix);
	return -1;
}

/* The whole bundle lsn from member i, in pieces, verified.  0, or -1 with why. */
static int
fetch_from(const aurora_pg_target *t, int i, uint64_t lsn, uint64_t total, uint32_t piece,
		   int timeout_ms, uint8_t **out, char *why, size_t whylen)
{
	aurora_conn *conn;
	uint8_t    *buf;
	uint64_t	off = 0,
				got_lsn;
	int			rc = 0;

	if (total > AURORA_START_STATE_MAX_BYTES)
	{
		aurora_seterr(why, whylen, "announces %llu bytes, more than a start state may have",
					  (unsigned long long) total);
		return -1;
	}
	if (aurora_conn_open(t->members[i].url, &conn, why, whylen) != 0)
		return -1;
	if ((buf = malloc(total > 0 ? (size_t) total : 1)) == NULL)
	{
		aurora_conn_close(conn);
		aurora_seterr(why, whylen, "out of memory");
		return -1;
	}
	while (rc == 0 && off < total)
	{
		aurora_start_state_resp r;
		uint8_t    *reply = NULL;

		/* max_lsn = lsn: the node answers with this one even if a newer one arrived */
		if (get_piece(conn, t, lsn, off, piece, timeout_ms, &r, &reply, why, whylen) != 0)
			rc = -1;
		else if (!r.found || r.consistent_lsn != lsn || r.total_len != total || r.offset != off ||
				 r.len == 0)
		{
			aurora_seterr(why, whylen, "its start state %llX changed or went away while reading",
						  (unsigned long long) lsn);
			rc = -1;
		}
		else
		{
			memcpy(buf + off, r.data, r.len);
			off += r.len;
		}
		free(reply);
	}
	aurora_conn_close(conn);
	if (rc == 0 && aurora_start_state_check(buf, (size_t) total, &got_lsn, NULL, NULL, why, whylen) != 0)
		rc = -1;
	else if (rc == 0 && got_lsn != lsn)
	{
		aurora_seterr(why, whylen, "the bundle names LSN %llX, not %llX",
					  (unsigned long long) got_lsn, (unsigned long long) lsn);
		rc = -1;
	}
	if (rc != 0)
	{
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

int
aurora_start_state_get_pg(const aurora_pg_target *t, int read_quorum, uint64_t max_lsn,
						  uint32_t piece_bytes, int timeout_ms, uint8_t **bundle, size_t *len,
						  uint64_t *lsn, char *err, size_t errlen)
{
	member_call calls[AURORA_PG_COPIES];
	int			answered = 0;
	bool		any = false;
	uint64_t	newest = 0;
	char		prefix[160];
	char		why[AURORA_PG_COPIES][200];

	*bundle = NULL;
	*len = 0;
	*lsn = 0;
	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		calls[i].t = t;
		calls[i].index = i;
		calls[i].timeout_ms = timeout_ms;
		calls[i].max_lsn = max_lsn;
	}
	fan_out(calls, probe_main);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (calls[i].answered)
		{
			answered++;
			if (calls[i].found && (!any || calls[i].found_lsn > newest))
				newest = calls[i].found_lsn;
			any = any || calls[i].found;
		}
	if (!aurora_quorum_met(answered, read_quorum))
	{
		snprintf(prefix, sizeof(prefix), "PG %u: only %d of 6 segments answered; a read quorum "
				 "needs %d:", (unsigned) t->pg_id, answered, read_quorum);
		member_errors(t, calls, false, err, errlen, prefix);
		return -1;
	}
	if (!any)
		return 0;
	memset(why, 0, sizeof(why));
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (!calls[i].answered || !calls[i].found || calls[i].found_lsn != newest)
			continue;
		if (fetch_from(t, i, newest, calls[i].found_len, piece_or_default(piece_bytes), timeout_ms,
					   bundle, why[i], sizeof(why[i])) == 0)
		{
			*len = (size_t) calls[i].found_len;
			*lsn = newest;
			return 1;
		}
	}
	aurora_seterr(err, errlen, "PG %u: no segment could deliver start state %llX:",
				  (unsigned) t->pg_id, (unsigned long long) newest);
	for (int i = 0; i < AURORA_PG_COPIES && err != NULL; i++)
		if (why[i][0] != '\0')
		{
			size_t		l = strlen(err);

			if (l + 1 < errlen)
				snprintf(err + l, errlen - l, " %s: %s;", t->members[i].node_id, why[i]);
		}
	return -1;
}

int
aurora_start_state_probe(const char *url, const aurora_pg_target *t, uint64_t max_lsn,
						 int timeout_ms, bool *found, uint64_t *lsn, uint64_t *total_len,
						 char *err, size_t errlen)
{
	aurora_conn *conn;
	aurora_start_state_resp r;
	uint8_t    *reply = NULL;
	int			rc;

	*found = false;
	*lsn = 0;
	*total_len = 0;
	if (aurora_conn_open(url, &conn, err, errlen) != 0)
		return -1;
	rc = get_piece(conn, t, max_lsn, 0, 0, timeout_ms, &r, &reply, err, errlen);
	if (rc == 0)
	{
		*found = r.found == 1;
		*lsn = r.consistent_lsn;
		*total_len = r.total_len;
	}
	free(reply);
	aurora_conn_close(conn);
	return rc;
}

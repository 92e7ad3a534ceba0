/*
 * pgwriter.c - quorum writes to the six segments of a protection group
 * (pgwriter.h).
 *
 * One req0 socket per member, dialed once without blocking; each request
 * walks SEND -> RECV in the aio callback of a context.  Replies update the
 * member's SCL under the writer's mutex; PGCL is then recomputed with the
 * shared quorum arithmetic (quorum.c), and waiters and latency bookkeeping
 * are woken.  Contexts and aios are kept per member and reused: opening a
 * context and reaping an aio for every batch cost the shipper about one
 * thread hand-off (NNG's reaper) per LOG_APPEND on top of the exchange
 * itself.  They are freed when the writer is closed.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "pgwriter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "quorum.h"
#include "util.h"
#include "wire.h"

#define PENDING_MAX		4096	/* batches waiting for quorum (latency only) */
#define SAMPLES_MAX		4096	/* quorum latency samples kept for p50/p99 */
#define ACK_SAMPLES_MAX	1024	/* per segment: LOG_APPEND sent -> its LOG_ACK */

typedef struct pending_batch
{
	uint64_t	end_lsn;
	double		sent_ms;
} pending_batch;

struct aurora_pgwriter
{
	aurora_pg_target target;
	int			write_quorum;
	int			timeout_ms;
	nng_socket	socks[AURORA_PG_COPIES];
	bool		sock_open[AURORA_PG_COPIES];

	nng_mtx    *mtx;
	nng_cv     *cv;
	aurora_segment_view seg[AURORA_PG_COPIES];
	uint64_t	pgcl;
	uint64_t	seeded_lsn;		/* highest seed LSN a segment reported */
	uint64_t	batches_sent;
	uint64_t	bytes_sent;
	int			in_flight_total;
	uint64_t	next_request_id;
	struct request *idle[AURORA_PG_COPIES];	/* reusable contexts per member */
	struct request *all;

	uint64_t	sent_end;		/* highest end_lsn sent */
	void		(*on_pgcl) (void *arg, uint64_t pgcl);	/* see aurora_pgwriter_on_pgcl */
	void	   *on_pgcl_arg;

	pending_batch pending[PENDING_MAX];
	int			pending_head;
	int			pending_count;
	double		samples[SAMPLES_MAX];
	double		samples_at[SAMPLES_MAX];	/* monotonic ms of each sample */
	uint64_t	n_samples;
	double		ack_samples[AURORA_PG_COPIES][ACK_SAMPLES_MAX];
	double		ack_samples_at[AURORA_PG_COPIES][ACK_SAMPLES_MAX];
	uint64_t	n_ack_samples[AURORA_PG_COPIES];
};

typedef struct request
{
	aurora_pgwriter *w;
	int			seg;
	bool		sending;
	double		start_ms;
	nng_ctx		ctx;
	nng_aio    *aio;
	struct request *next_free;	/* on w->idle[seg] while not in flight */
	struct request *next_all;	/* every request of w, for close */
} request;


/* Called with the mutex held after any SCL change. */
static void
recompute_pgcl(aurora_pgwriter *w, double now)
{
	uint64_t	scl[AURORA_PG_COPIES];
	uint64_t	pgcl;
	int			i;

	for (i = 0; i < AURORA_PG_COPIES; i++)
		scl[i] = w->seg[i].scl;
	pgcl = aurora_quorum_kth_highest(scl, AURORA_PG_COPIES, w->write_quorum);
	if (pgcl <= w->pgcl)
		return;
	w->pgcl = pgcl;
	while (w->pending_count > 0 && w->pending[w->pending_head].end_lsn <= pgcl)
	{
		w->samples[w->n_samples % SAMPLES_MAX] = now - w->pending[w->pending_head].sent_ms;
		w->samples_at[w->n_samples % SAMPLES_MAX] = now;
		w->n_samples++;
		w->pending_head = (w->pending_head + 1) % PENDING_MAX;
		w->pending_count--;
	}
	nng_cv_wake(w->cv);
	if (w->on_pgcl != NULL)
		w->on_pgcl(w->on_pgcl_arg, pgcl);
}

void
aurora_pgwriter_on_pgcl(aurora_pgwriter *w, void (*fn) (void *arg, uint64_t pgcl), void *arg)
{
	nng_mtx_lock(w->mtx);
	w->on_pgcl = fn;
	w->on_pgcl_arg = arg;
	nng_mtx_unlock(w->mtx);
}

uint64_t
aurora_pgwriter_pgcl(aurora_pgwriter *w)
{
	uint64_t	pgcl;

	nng_mtx_lock(w->mtx);
	pgcl = w->pgcl;
	nng_mtx_unlock(w->mtx);
	return pgcl;
}

static void
note_error(aurora_segment_view *s, uint32_t code, const char *msg)
{
	s->errors++;
	s->last_error_code = code;
	snprintf(s->last_error, sizeof(s->last_error), "%.*s", (int) sizeof(s->last_error) - 1, msg);
}

/* Interpret one reply (or transport failure rv) for request r; mutex held. */
static int
absorb_reply(aurora_pgwriter *w, request *r, int rv, nng_msg *msg)
{
	aurora_segment_view *s = &w->seg[r->seg];
	aurora_header h;
	const uint8_t *body;
	int			rc;
	char		text[160];

	if (rv != 0)
	{
		note_error(s, AURORA_ERR_INTERNAL, nng_strerror(rv));
		return AURORA_ERR_INTERNAL;
	}
	rc = aurora_decode(nng_msg_body(msg), nng_msg_len(msg), AURORA_DEFAULT_MAX_BODY, &h, &body);
	if (rc != 0)
	{
		snprintf(text, sizeof(text), "undecodable reply: %s", aurora_error_name((uint32_t) rc));
		note_error(s, (uint32_t) rc, text);
		return rc;
	}
	if (h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		if (aurora_error_body_decode(body, h.body_len, &e) != 0)
		{
			e.code = AURORA_ERR_MALFORMED;
			snprintf(e.message, sizeof(e.message), "bad ERROR body");
		}
		if (e.code == AURORA_ERR_STALE_EPOCH)
			s->fenced = true;
		note_error(s, e.code, e.message);
		return (int) e.code;
	}
	if (h.type == AURORA_MSG_LOG_ACK)
	{
		aurora_log_ack ack;

		if (aurora_log_ack_decode(body, h.body_len, &ack) != 0)
		{
			note_error(s, AURORA_ERR_MALFORMED, "bad LOG_ACK body");
			return AURORA_ERR_MALFORMED;
		}
		s->acks++;
		s->last_ack_ms = aurora_monotonic_ms();
		s->last_error_code = 0;
		w->ack_samples[r->seg][w->n_ack_samples[r->seg] % ACK_SAMPLES_MAX] =
			s->last_ack_ms - r->start_ms;
		w->ack_samples_at[r->seg][w->n_ack_samples[r->seg] % ACK_SAMPLES_MAX] = s->last_ack_ms;
		w->n_ack_samples[r->seg]++;
		if (ack.scl > s->scl)
		{
			s->scl = ack.scl;
			recompute_pgcl(w, s->last_ack_ms);
		}
		return 0;
	}
	if (h.type == AURORA_MSG_SEGMENT_INFO)
	{
		aurora_segment_info info;

		if (aurora_segment_info_decode(body, h.body_len, &info) != 0)
		{
			note_error(s, AURORA_ERR_MALFORMED, "bad SEGMENT_INFO body");
			return AURORA_ERR_MALFORMED;
		}
		s->last_error_code = 0;
		if (info.seeded_lsn > w->seeded_lsn)
			w->seeded_lsn = info.seeded_lsn;
		if (info.scl > s->scl)
		{
			s->scl = info.scl;
			recompute_pgcl(w, aurora_monotonic_ms());
		}
		return 0;
	}
	snprintf(text, sizeof(text), "unexpected reply type %s", aurora_msg_type_name(h.type));
	note_error(s, AURORA_ERR_MALFORMED, text);
	return AURORA_ERR_MALFORMED;
}

/* r's exchange is over: its context waits for the next request; mutex held. */
static void
push_idle_locked(aurora_pgwriter *w, request *r)
{
	r->next_free = w->idle[r->seg];
	w->idle[r->seg] = r;
}

static void
request_cb(void *arg)
{
	request    *r = arg;
	aurora_pgwriter *w = r->w;
	int			rv = nng_aio_result(r->aio);
	nng_msg    *msg = NULL;

	if (r->sending && rv == 0)
	{
		r->sending = false;
		nng_aio_set_timeout(r->aio, w->timeout_ms);
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (r->sending)
	{
		/* the message was not sent: it is still ours */
		nng_msg_free(nng_aio_get_msg(r->aio));
		nng_aio_set_msg(r->aio, NULL);
	}
	else if (rv == 0)
		msg = nng_aio_get_msg(r->aio);

	nng_mtx_lock(w->mtx);
	(void) absorb_reply(w, r, rv, msg);
	w->seg[r->seg].in_flight--;
	w->in_flight_total--;
	/* from here on another thread may reuse r: it is not touched again */
	push_idle_locked(w, r);
	nng_cv_wake(w->cv);
	nng_mtx_unlock(w->mtx);

	if (msg != NULL)
		nng_msg_free(msg);
}

/* An idle context of member i, or a new one; mutex NOT held. */
static int
take_request(aurora_pgwriter *w, int i, request **out)
{
	request    *r;
	int			rv;

	nng_mtx_lock(w->mtx);
	if ((r = w->idle[i]) != NULL)
		w->idle[i] = r->next_free;
	nng_mtx_unlock(w->mtx);
	if (r == NULL)
	{
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return NNG_ENOMEM;
		if ((rv = nng_ctx_open(&r->ctx, w->socks[i])) != 0)
		{
			free(r);
			return rv;
		}
		if ((rv = nng_aio_alloc(&r->aio, request_cb, r)) != 0)
		{
			nng_ctx_close(r->ctx);
			free(r);
			return rv;
		}
		r->w = w;
		r->seg = i;
		nng_mtx_lock(w->mtx);
		r->next_all = w->all;
		w->all = r;
		nng_mtx_unlock(w->mtx);
	}
	*out = r;
	return 0;
}

static void
return_request(aurora_pgwriter *w, request *r)
{
	nng_mtx_lock(w->mtx);
	push_idle_locked(w, r);
	nng_mtx_unlock(w->mtx);
}

/* Start one request to member i; mutex NOT held.  Returns 0 or NNG error. */
static int
start_request(aurora_pgwriter *w, int i, uint16_t type, const uint8_t *body, size_t body_len)
{
	request    *r;
	nng_msg    *msg;
	aurora_header h;
	size_t		n;
	int			rv;

	if ((rv = take_request(w, i, &r)) != 0)
		return rv;
	if ((rv = nng_msg_alloc(&msg, AURORA_HEADER_SIZE + body_len)) != 0)
	{
		return_request(w, r);
		return rv;
	}
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = w->target.volume_id;
	h.pg_id = w->target.pg_id;
	h.volume_epoch = w->target.volume_epoch;
	h.membership_epoch = w->target.membership_epoch;
	nng_mtx_lock(w->mtx);
	h.request_id = ++w->next_request_id;
	nng_mtx_unlock(w->mtx);
	n = aurora_encode(&h, body, body_len, nng_msg_body(msg), AURORA_HEADER_SIZE + body_len);

	r->sending = true;
	r->start_ms = aurora_monotonic_ms();

	nng_mtx_lock(w->mtx);
	w->seg[i].in_flight++;
	w->in_flight_total++;
	w->bytes_sent += n;
	w->seg[i].bytes_sent += n;
	if (type == AURORA_MSG_LOG_APPEND)
		w->seg[i].batches_sent++;
	nng_mtx_unlock(w->mtx);

	nng_aio_set_msg(r->aio, msg);
	nng_aio_set_timeout(r->aio, w->timeout_ms);
	nng_ctx_send(r->ctx, r->aio);
	return 0;
}

int
aurora_pgwriter_open(const aurora_pg_target *t, int write_quorum, int timeout_ms,
					 aurora_pgwriter **out, char *err, size_t errlen)
{
	aurora_pgwriter *w;
	int			i,
				rv;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->target = *t;
	w->write_quorum = write_quorum;
	w->timeout_ms = timeout_ms;
	w->pgcl = t->base_lsn;
	for (i = 0; i < AURORA_PG_COPIES; i++)
		w->seg[i].scl = t->base_lsn;
	if ((rv = nng_mtx_alloc(&w->mtx)) != 0 || (rv = nng_cv_alloc(&w->cv, w->mtx)) != 0)
	{
		snprintf(err, errlen, "cannot allocate a mutex: %s", nng_strerror(rv));
		aurora_pgwriter_close(w);
		return -1;
	}
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		if ((rv = nng_req0_open(&w->socks[i])) != 0)
		{
			snprintf(err, errlen, "cannot open a socket: %s", nng_strerror(rv));
			aurora_pgwriter_close(w);
			return -1;
		}
		w->sock_open[i] = true;
		/* we never want NNG to resend a request by itself: acks are counted */
		nng_socket_set_ms(w->socks[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		nng_socket_set_ms(w->socks[i], NNG_OPT_RECONNMINT, 50);
		nng_socket_set_ms(w->socks[i], NNG_OPT_RECONNMAXT, 1000);
		nng_socket_set_size(w->socks[i], NNG_OPT_RECVMAXSZ,
							AURORA_HEADER_SIZE + AURORA_DEFAULT_MAX_BODY + 4096);
		if ((rv = nng_dial(w->socks[i], t->members[i].url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		{
			snprintf(err, errlen, "cannot dial %s: %s", t->members[i].url, nng_strerror(rv));
			aurora_pgwriter_close(w);
			return -1;
		}
	}
	*out = w;
	return 0;
}

void
aurora_pgwriter_close(aurora_pgwriter *w)
{
	int			i;

	if (w == NULL)
		return;
	/* closing a socket aborts its requests; their callbacks free them */
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (w->sock_open[i])
			nng_close(w->socks[i]);
	if (w->mtx != NULL && w->cv != NULL)
	{
		nng_mtx_lock(w->mtx);
		while (w->in_flight_total > 0)
			nng_cv_wait(w->cv);
		nng_mtx_unlock(w->mtx);
	}
	while (w->all != NULL)
	{
		request    *r = w->all;

		w->all = r->next_all;
		nng_aio_free(r->aio);	/* waits for a callback still returning */
		nng_ctx_close(r->ctx);
		free(r);
	}
	if (w->cv)
		nng_cv_free(w->cv);
	if (w->mtx)
		nng_mtx_free(w->mtx);
	free(w);
}

int
aurora_pgwriter_probe(aurora_pgwriter *w, bool all)
{
	bool		ask[AURORA_PG_COPIES];
	int			i,
				asked = 0;

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		ask[i] = w->seg[i].in_flight == 0 && (all || w->seg[i].scl < w->sent_end);
	nng_mtx_unlock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (ask[i] && start_request(w, i, AURORA_MSG_SEGMENT_INFO_REQ, NULL, 0) == 0)
			asked++;
	return asked;
}

int
aurora_pgwriter_create_segments(aurora_pgwriter *w, char *err, size_t errlen)
{
	int			i,
				ok = 0;
	uint64_t	errors_before[AURORA_PG_COPIES];

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		errors_before[i] = w->seg[i].errors;
	nng_mtx_unlock(w->mtx);

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_create_segment c;
		uint8_t		body[2048];
		size_t		n;

		memset(&c, 0, sizeof(c));
		c.replica_index = (uint32_t) i;
		c.base_lsn = w->target.base_lsn;
		c.n_pgs = w->target.n_pgs;
		c.blocks_per_segment = w->target.blocks_per_segment;
		memcpy(c.members, w->target.members, sizeof(c.members));
		n = aurora_create_segment_encode(&c, body, sizeof(body));
		if (n == 0)
		{
			snprintf(err, errlen, "cannot encode CREATE_SEGMENT (member names too long?)");
			return 0;
		}
		if (start_request(w, i, AURORA_MSG_CREATE_SEGMENT, body, n) != 0)
		{
			nng_mtx_lock(w->mtx);
			note_error(&w->seg[i], AURORA_ERR_INTERNAL, "cannot send CREATE_SEGMENT");
			nng_mtx_unlock(w->mtx);
		}
	}
	aurora_pgwriter_drain(w, w->timeout_ms + 1000);

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (w->seg[i].errors == errors_before[i])
			ok++;
	nng_mtx_unlock(w->mtx);
	if (ok < AURORA_PG_COPIES)
		snprintf(err, errlen, "%d of %d segments created", ok, AURORA_PG_COPIES);
	return ok;
}

int
aurora_pgwriter_append(aurora_pgwriter *w, const aurora_log_record *recs, int n,
					   char *err, size_t errlen)
{
	return aurora_pgwriter_append_to(w, recs, n, AURORA_PGWRITER_ALL_MEMBERS, err, errlen);
}

int
aurora_pgwriter_append_to(aurora_pgwriter *w, const aurora_log_record *recs, int n,
						  unsigned member_mask, char *err, size_t errlen)
{
	size_t		size = aurora_records_encoded_size(recs, n);
	uint8_t    *body;
	int			i,
				sent = 0;
	bool		skip[AURORA_PG_COPIES];

	if (n <= 0)
		return 0;
	if (size > AURORA_DEFAULT_MAX_BODY)
	{
		snprintf(err, errlen, "batch of %d records is %zu bytes, over the %u-byte message limit",
				 n, size, (unsigned) AURORA_DEFAULT_MAX_BODY);
		return -1;
	}
	body = malloc(size);
	if (body == NULL || aurora_log_append_encode(recs, n, body, size) != size)
	{
		free(body);
		snprintf(err, errlen, "cannot encode the batch");
		return -1;
	}

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		skip[i] = (member_mask & (1u << i)) == 0 ||
			w->seg[i].in_flight >= AURORA_PGWRITER_MAX_IN_FLIGHT;
		if (skip[i])
			w->seg[i].skipped++;
	}
	if (w->pending_count < PENDING_MAX)
	{
		int			slot = (w->pending_head + w->pending_count) % PENDING_MAX;

		w->pending[slot].end_lsn = recs[n - 1].end_lsn;
		w->pending[slot].sent_ms = aurora_monotonic_ms();
		w->pending_count++;
	}
	w->batches_sent++;
	if (recs[n - 1].end_lsn > w->sent_end)
		w->sent_end = recs[n - 1].end_lsn;
	nng_mtx_unlock(w->mtx);

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (skip[i])
			continue;
		if (start_request(w, i, AURORA_MSG_LOG_APPEND, body, size) == 0)
		{
			nng_mtx_lock(w->mtx);
			w->seg[i].records_sent += (uint64_t) n;
			nng_mtx_unlock(w->mtx);
			sent++;
		}
	}
	free(body);
	if (sent == 0)
	{
		snprintf(err, errlen, "the batch could not be sent to any segment");
		return -1;
	}
	return 0;
}

bool
aurora_pgwriter_wait_pgcl(aurora_pgwriter *w, uint64_t lsn, int timeout_ms)
{
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	bool		reached;

	nng_mtx_lock(w->mtx);
	while (w->pgcl < lsn)
	{
		if (nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	reached = w->pgcl >= lsn;
	nng_mtx_unlock(w->mtx);
	return reached;
}

bool
aurora_pgwriter_drain(aurora_pgwriter *w, int timeout_ms)
{
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	bool		drained;

	nng_mtx_lock(w->mtx);
	while (w->in_flight_total > 0)
	{
		if (nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	drained = w->in_flight_total == 0;
	nng_mtx_unlock(w->mtx);
	return drained;
}

int
aurora_pgwriter_ack_latencies(aurora_pgwriter *w, int seg, double max_age_ms,
							  double *out, int cap)
{
	int			kept;
	int			n = 0;
	double		now = aurora_monotonic_ms();

	if (seg < 0 || seg >= AURORA_PG_COPIES || cap <= 0)
		return 0;
	nng_mtx_lock(w->mtx);
	kept = w->n_ack_samples[seg] < ACK_SAMPLES_MAX ? (int) w->n_ack_samples[seg] : ACK_SAMPLES_MAX;
	/* ring order does not matter: the caller takes percentiles */
	for (int i = 0; i < kept && n < cap; i++)
		if (max_age_ms <= 0 || now - w->ack_samples_at[seg][i] <= max_age_ms)
			out[n++] = w->ack_samples[seg][i];
	nng_mtx_unlock(w->mtx);
	return n;
}

void
aurora_pgwriter_view_get(aurora_pgwriter *w, aurora_pgwriter_view *out)
{
	memset(out, 0, sizeof(*out));
	nng_mtx_lock(w->mtx);
	memcpy(out->seg, w->seg, sizeof(out->seg));
	out->pgcl = w->pgcl;
	out->seeded_lsn = w->seeded_lsn;
	out->batches_sent = w->batches_sent;
	out->bytes_sent = w->bytes_sent;
	out->sent_end = w->sent_end;
	out->latency_samples = w->n_samples;
	nng_mtx_unlock(w->mtx);
}

uint64_t
aurora_pgwriter_quorum_latency(aurora_pgwriter *w, double max_age_ms,
							   double *p50_ms, double *p99_ms)
{
	double	   *sorted = malloc(SAMPLES_MAX * sizeof(double));
	uint64_t	kept;
	uint64_t	n = 0;
	double		now = aurora_monotonic_ms();

	if (sorted == NULL)
		return 0;
	nng_mtx_lock(w->mtx);
	kept = w->n_samples < SAMPLES_MAX ? w->n_samples : SAMPLES_MAX;
	for (uint64_t i = 0; i < kept; i++)
		if (max_age_ms <= 0 || now - w->samples_at[i] <= max_age_ms)
			sorted[n++] = w->samples[i];
	nng_mtx_unlock(w->mtx);
	aurora_p50_p99(sorted, (size_t) n, p50_ms, p99_ms);
	free(sorted);
	return n;
}
